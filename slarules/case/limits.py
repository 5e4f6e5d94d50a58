"""What one case may cost before slarules looks at it: bounds a caller can raise.

A service that adjudicates untrusted input must not be made to parse 15 MB or
validate 100,000 scans to find out that the case is too big. The two things
whose cost grows with the input are its size in bytes (parsing) and its number
of scans (validation, facts, matching); every other part of a case is bounded
by the contract itself (codes and timestamps at most 64 characters, at most 32
issues, nesting fixed by the model). Both limits are checked before anything
else reads the case, in constant time, and so is the length of every list the
contract bounds (complaint.issues: 5,000,000 issues were validated one by one
to be told "at most 32"). The error says how to raise a limit:
`Engine(...).with_limits(Limits(scans=5000))`, or `--limit scans=5000` on the
command line.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields as dc_fields
from typing import Any

from ..echo import quote
from ..errors import CaseError, InputError
from . import contract as C, fields

_SIZE = re.compile(r"([0-9]+)\s*(|k|kib|m|mib)\Z", re.IGNORECASE)     # ASCII digits: not ١٠ or １０
_UNITS = {"": 1, "k": 1024, "kib": 1024, "m": 1 << 20, "mib": 1 << 20}


CEILINGS = {"case_bytes": 256 << 20, "scans": 1_000_000}     # past these a limit is no limit
# A rule pack, pack test or clause catalogue file (a shipped one is at most 25 KB): bounded like
# a case, so `--packs /dev/zero` or a runaway generated pack is refused, not read. Not a limit a
# caller raises: a pack set is written by the network, not sent by a stranger.
PACK_BYTES = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Per-case bounds; the defaults fit any real parcel with room to spare (a case is ~2 KB)."""

    case_bytes: int = 1 << 20        # one case file, standard input or JSON Lines row
    scans: int = C.MAX_SCANS         # scans in one case

    def __post_init__(self) -> None:
        for f in dc_fields(self):
            value, most = getattr(self, f.name), CEILINGS[f.name]
            if type(value) is not int or not 1 <= value <= most:
                raise InputError(f"limit `{f.name}` must be a whole number from 1 to {most:,}, "
                                 f"got {quote(repr(value))}",
                                 field="--limit")

    @classmethod
    def parse(cls, items: list[str] | None) -> Limits:
        """Limits from `NAME=VALUE` strings (`scans=5000`, `case_bytes=4MiB`); unnamed ones keep their default."""
        names = [f.name for f in dc_fields(cls)]
        given: dict[str, int] = {}
        for item in items or []:
            name, sep, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in names:
                raise InputError(f"`{quote(item)}` is not a limit: expected NAME=VALUE with NAME one of "
                                 f"{', '.join(names)}", field="--limit")
            m = _SIZE.match(value.strip())
            if not m:
                raise InputError(f"limit `{name}` needs a whole number (bytes may end in KiB or MiB), got "
                                 f"`{quote(value)}`", field="--limit")
            if m.group(2) and name != "case_bytes":
                raise InputError(f"limit `{name}` is a count, not a size: `{quote(value)}`", field="--limit")
            given[name] = int(m.group(1)) * _UNITS[m.group(2).lower()]
        return cls(**given)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def too_long(self, file: str | None, what: str, line: int | None = None) -> InputError:
        """The error for a JSON Lines row over `case_bytes` (with its line)."""
        return InputError(f"the {'line' if line is not None else 'case'} {what}", file=file, line=line,
                          hint=raise_hint("case_bytes"))

    def check_case(self, data: Any, file: str | None = None, document: Any = None) -> None:
        """Refuse a case with more scans than allowed, or a longer list than the contract allows,
        before validating any item (`document`, a sources.Document of `data`, locates the list)."""
        if type(data) is not dict:
            return
        for block, name, limit, bound in _LISTS:
            value = data.get(name) if block is None else data.get(block)
            if block is not None:
                value = value.get(name) if type(value) is dict else None
            if type(value) is list and len(value) > (getattr(self, limit) if limit else bound):
                raise self._too_many(len(value), (name,) if block is None else (block, name), limit, bound,
                                     file, document)

    def _too_many(self, count: int, path: tuple[str, ...], limit: str | None, bound: int, file: str | None,
                  document: Any) -> CaseError:
        line, column = document.where(path) if document is not None else (None, None)
        file = document.file if document is not None else file
        if limit:
            return CaseError(f"{count:,} {path[-1]}; a case may have at most {getattr(self, limit):,}", file=file,
                             line=line, column=column, field=".".join(path), hint=raise_hint(limit))
        return CaseError(f"{count:,} items; the contract allows at most {bound:,}", file=file, line=line,
                         column=column, field=".".join(path))


def _lists() -> list[tuple[str | None, str, str | None, int]]:
    """(block or None at the top, field, the Limits field bounding it or None, the contract's bound)
    of every list in the case field table, so each is counted before an item is validated."""
    limit_names = {f.name for f in dc_fields(Limits)}
    out: list[tuple[str | None, str, str | None, int]] = []
    for f in fields.CASE.fields:
        inner = [f] if f.kind in ("enums", "blocks") else list(f.block.fields) if f.block is not None else []
        for g in inner:
            if g.kind == "blocks" and g.name not in limit_names:
                raise fields.mismatch("case.limits", f"`{g.name}` is a list of blocks without a limit of its name")
            if g.block is not None and g.kind == "blocks" and any(h.kind in ("enums", "blocks", "block")
                                                                 for h in g.block.fields):
                raise fields.mismatch("case.limits", f"the items of `{g.name}` hold lists, which are not counted")
            if g.kind in ("block", "blocks") and g is not f:
                raise fields.mismatch("case.limits", f"`{f.name}.{g.name}`: a block inside a block")
            if g.kind in ("enums", "blocks"):
                block = None if g is f else f.name
                out.append((block, g.name, g.name if g.kind == "blocks" else None, g.max_items or 0))
    return out


def raise_hint(name: str) -> str:
    return f"if such cases are real, raise the limit: --limit {name}=N, or Engine.with_limits(Limits({name}=N))"


_LISTS = _lists()
DEFAULT = Limits()
