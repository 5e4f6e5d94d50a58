"""One text boundary: every string slarules takes in is Unicode scalar values, checked where it enters.

Text read from a file or a row is decoded as strict UTF-8, which refuses an
encoded surrogate, so the one way left for a lone surrogate (U+D800-U+DFFF,
half of a UTF-16 pair) to get in is an escape: `"\\ud800"` is valid JSON, and
YAML's double quotes take `\\ud800` and `\\U0000d800` too (PyYAML does not join
a pair of them, as JSON does: in YAML each half is a lone surrogate). Such a string cannot
be written as UTF-8: it would fail later, where a verdict, an error record or a
message is written, far from the row that brought it. So each reader calls
`check_parsed` once on what it parsed: the text is searched for a surrogate
escape (a substring search, nothing more, on the valid hot path) and only when
there is one is the data walked to find and locate the string. (A library
caller may pass text as a Python str, which can hold a surrogate itself: a
non-ASCII text is searched for one too.)

The readers that call it: case/sources.py (JSON and YAML files, standard input,
JSON Lines rows on the per-case path and on Spark; packs, catalogues and pack
tests read through it too), tools/decisions.py (decision logs). Python data that
no reader saw (a dict given to the library, a Parquet or Spark row) is walked by
`check_data` in facts.case_from_document, on the path every refused case takes;
an accepted case cannot hold a surrogate, since each of its strings is a
pattern, a listed value, a timestamp or a zone. Arrow text (Parquet, Spark) is
bytes that may not be UTF-8 at all: `invalid_rows` finds those rows.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .echo import quote
from .errors import CaseError, SlaRulesError

Loc = tuple     # a path of keys and indexes
_ESCAPE = re.compile(r"\\(?:u|U0000)[dD][89a-fA-F]")      # \ud800-\udfff, YAML's \U0000d800 too
_SURROGATE = re.compile("[\ud800-\udfff]")
HINT = ("a \\uD800-\\uDFFF escape is half of a UTF-16 pair, not a character: write the character itself "
        "(JSON also takes both halves, \\ud83d\\ude00; YAML takes \\U0001F600)")


def may_escape_surrogate(text: str) -> bool:
    """Whether parsing `text` (decoded from UTF-8) could give a lone surrogate: only through an escape."""
    return "\\" in text and _ESCAPE.search(text) is not None     # a one-character search is a memchr


def has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def lone_surrogate(data: Any, loc: Loc = ()) -> Loc | None:
    """The path of the first key or string in `data` (JSON-like) that holds a lone surrogate; None if none."""
    if type(data) is str:
        return loc if has_surrogate(data) else None
    if isinstance(data, dict):
        for key, value in data.items():
            if type(key) is str and has_surrogate(key):
                return loc + (key,)
            found = lone_surrogate(value, loc + (key,))
            if found is not None:
                return found
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found = lone_surrogate(value, loc + (i,))
            if found is not None:
                return found
    return None


def check_data(data: Any, *, file: str | None = None, line: int | None = None,
               where: Callable[[Loc], tuple[int | None, int | None]] | None = None,
               error: type[SlaRulesError] = CaseError) -> None:
    """Refuse `data` holding a lone surrogate: one `error` naming the field, and its line and column
    when `where` (a path -> (line, column), as Document.where) can tell them."""
    loc = lone_surrogate(data)
    if loc is None:
        return
    text = loc[-1] if loc and type(loc[-1]) is str and has_surrogate(loc[-1]) else _at(data, loc)
    at_line, column = where(loc) if where is not None else (None, None)
    bad = next(c for c in text if "\ud800" <= c <= "\udfff")
    raise error(f"`{quote(text)}` is not Unicode text: it holds a lone surrogate (U+{ord(bad):04X})",
                file=file, line=line or at_line, column=column,
                field=".".join(str(p) for p in loc) or None, hint=HINT)


def check_parsed(text: str, data: Any, **where: Any) -> None:
    """`check_data` for data parsed from `text`, walked only when the text has a surrogate escape (or,
    given as a Python str rather than decoded from bytes, a surrogate itself)."""
    if may_escape_surrogate(text) or has_surrogate(text):
        check_data(data, **where)


def _at(data: Any, loc: Loc) -> str:
    for part in loc:
        data = data[part]
    return data


# ---- Arrow text: bytes that may not be UTF-8 -----------------------------------------------------

def invalid_rows(batch: Any) -> dict[int, str]:
    """Rows of an Arrow record batch with a string that is not UTF-8, as {index: the column's name}.

    Arrow's strings are bytes said to be UTF-8; a Parquet file or a Spark frame may
    hold others, and Polars takes them as they are. One full validation of the batch
    (in C++, a fraction of reading it) finds whether any row does; only then is
    each row validated to find which.
    """
    import pyarrow as pa
    try:
        batch.validate(full=True)
        return {}
    except pa.ArrowInvalid:
        pass
    bad: dict[int, str] = {}
    for name, column in zip(batch.schema.names, batch.columns):
        try:
            column.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        for i in range(len(column)):
            if i not in bad:
                try:
                    column.slice(i, 1).validate(full=True)
                except pa.ArrowInvalid:
                    bad[i] = name
    return bad


def not_utf8(field: str, file: str | None = None, line: int | None = None) -> CaseError:
    """The error for a row whose column `field` holds bytes that are not UTF-8."""
    return CaseError("the text is not UTF-8 (a string holds bytes no UTF-8 text has)", file=file, line=line,
                     field=field, hint="write the file as UTF-8")
