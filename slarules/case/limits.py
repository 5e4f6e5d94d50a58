"""What one case may cost before slarules looks at it: bounds a caller can raise.

A service that adjudicates untrusted input must not be made to parse 15 MB or
validate 100,000 scans to find out that the case is too big. The two things
whose cost grows with the input are its size in bytes (parsing) and its number
of scans (validation, facts, matching); every other part of a case is bounded
by the contract itself (codes and timestamps at most 64 characters, at most 32
issues, nesting fixed by the model). Both limits are checked before anything
else reads the case, in constant time, and the error says how to raise them:
`Engine(...).with_limits(Limits(scans=5000))`, or `--limit scans=5000` on the
command line.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import CaseError, InputError
from . import contract as C

_SIZE = re.compile(r"([0-9]+)\s*(|k|kib|m|mib)\Z", re.IGNORECASE)     # ASCII digits: not ١٠ or １０
_UNITS = {"": 1, "k": 1024, "kib": 1024, "m": 1 << 20, "mib": 1 << 20}


CEILINGS = {"case_bytes": 256 << 20, "scans": 1_000_000}     # past these a limit is no limit


@dataclass(frozen=True)
class Limits:
    """Per-case bounds; the defaults fit any real parcel with room to spare (a case is ~2 KB)."""

    case_bytes: int = 1 << 20        # one case file, standard input or JSON Lines row
    scans: int = C.MAX_SCANS         # scans in one case

    def __post_init__(self) -> None:
        for f in fields(self):
            value, most = getattr(self, f.name), CEILINGS[f.name]
            if type(value) is not int or not 1 <= value <= most:
                raise InputError(f"limit `{f.name}` must be a whole number from 1 to {most:,}, got {value!r}",
                                 field="--limit")

    @classmethod
    def parse(cls, items: list[str] | None) -> Limits:
        """Limits from `NAME=VALUE` strings (`scans=5000`, `case_bytes=4MiB`); unnamed ones keep their default."""
        names = [f.name for f in fields(cls)]
        given: dict[str, int] = {}
        for item in items or []:
            name, sep, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in names:
                raise InputError(f"`{item}` is not a limit: expected NAME=VALUE with NAME one of "
                                 f"{', '.join(names)}", field="--limit")
            m = _SIZE.match(value.strip())
            if not m:
                raise InputError(f"limit `{name}` needs a whole number (bytes may end in KiB or MiB), got "
                                 f"`{value}`", field="--limit")
            if m.group(2) and name != "case_bytes":
                raise InputError(f"limit `{name}` is a count, not a size: `{value}`", field="--limit")
            given[name] = int(m.group(1)) * _UNITS[m.group(2).lower()]
        return cls(**given)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def check_bytes(self, size: int, file: str | None) -> None:
        """Refuse a case's text before parsing it."""
        if size > self.case_bytes:
            raise self.too_long(file, f"is {size:,} bytes; a case may have at most {self.case_bytes:,}")

    def too_long(self, file: str | None, what: str, line: int | None = None) -> InputError:
        """The error for a case over `case_bytes`: standard input, or a JSON Lines row (with its line)."""
        return InputError(f"the {'line' if line is not None else 'case'} {what}", file=file, line=line,
                          hint=raise_hint("case_bytes"))

    def check_case(self, data: Any, file: str | None = None) -> None:
        """Refuse a case with more scans than allowed, before validating any of them."""
        if type(data) is dict:
            scans = data.get("scans")
            if type(scans) is list and len(scans) > self.scans:
                raise CaseError(f"{len(scans):,} scans; a case may have at most {self.scans:,}", file=file,
                                field="scans", hint=raise_hint("scans"))


def raise_hint(name: str) -> str:
    return f"if such cases are real, raise the limit: --limit {name}=N, or Engine.with_limits(Limits({name}=N))"


DEFAULT = Limits()
