"""Where a path of keys and indexes stands in JSON text, found by walking that path only.

An error names a field (`scans.3.at`); the message should name its line and column too. The
JSON reader does not keep positions, and building a table of every key's position (PyYAML's
composer, in Python) cost seconds and hundreds of MiB for a 1 MiB case of 75,000 unknown keys:
more than refusing it was worth. Here the walk goes down the one path asked for; each member
passed on the way is skipped by the json module's own scanner (C), so finding a place costs at
most one more parse of the text, however many problems the case has.

The text is JSON already read once (its syntax is valid), with or without what slarules then
refuses (NaN, a repeated key, a number a float cannot hold): the scanner here accepts those.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

Loc = tuple

# The json module's own scanners (C where it has them); typeshed does not declare these names.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once   # type: ignore[attr-defined]
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring   # type: ignore[attr-defined]
_SPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, i: int) -> int:
    m = _SPACE.match(text, i)        # matches the empty string too: never None
    return m.end() if m else i


def _members(text: str, i: int) -> Iterator[tuple[Any, int, int]]:
    """(key or index, where the key or item starts, where its value starts) of the object or
    array at `i`, in order; each value is skipped only when the next member is asked for."""
    opening = text[i]
    i = _skip(text, i + 1)
    index = 0
    while i < len(text) and text[i] not in "}]":
        if opening == "{":
            key, after = _scanstring(text, i + 1)
            value = _skip(text, _skip(text, after) + 1)      # past the `:`
            yield key, i, value
        else:
            value = key_at = i
            yield index, key_at, value
        index += 1
        try:
            _, i = _scan(text, value)
        except StopIteration:
            return
        i = _skip(text, i)
        if i < len(text) and text[i] == ",":
            i = _skip(text, i + 1)


def line_column(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def where(text: str, loc: Loc, occurrence: int = 1) -> tuple[int | None, int | None]:
    """Line and column of the key (in an object) or item (in an array) at `loc`, else of its
    nearest ancestor found; `occurrence`: of the last key, the n-th in its object (a repeated key).
    (None, None) when the text is not JSON after all."""
    try:
        at = _skip(text, 0)
        if at >= len(text):
            return None, None
        best = at
        for depth, part in enumerate(loc):
            if at >= len(text) or text[at] not in "{[":
                break
            wanted = occurrence if depth == len(loc) - 1 else 1
            found = None
            for key, key_at, value_at in _members(text, at):
                if key == part:
                    wanted -= 1
                    if not wanted:
                        found = key_at, value_at
                        break
            if found is None:
                break
            best, at = found[0], _skip(text, found[1])
        return line_column(text, best)
    except (ValueError, IndexError, RecursionError, StopIteration):
        return None, None


def path_at(text: str, offset: int) -> Loc | None:
    """The path of the value that starts at `offset` (a NaN, a long number), or None."""
    path: list = []
    try:
        at = _skip(text, 0)
        while at != offset:
            if at >= len(text) or text[at] not in "{[":
                return None
            inside = None
            for key, _, value_at in _members(text, at):
                if value_at > offset:
                    break
                inside = key, value_at
            if inside is None:
                return None
            path.append(inside[0])
            at = inside[1]
        return tuple(path)
    except (ValueError, IndexError, RecursionError, StopIteration):
        return None
