"""Where a run writes: never over what it reads, never two of its outputs on one file.

`--errors cases.jsonl` once replaced a 500-line input with 12 error lines. Every
command that writes files names its inputs and outputs here first, and nothing
is opened for writing until they are all distinct: the same path, a symbolic
link to it, a hard link, or an output inside an input directory.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputError


def _identity(path: str | Path) -> tuple[str, tuple[int, int] | None]:
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
        return real, (st.st_dev, st.st_ino)
    except OSError:
        return real, None


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def is_uri(path: str | Path) -> bool:
    return "://" in str(path)


def refuse_overlaps(inputs: Mapping[str, str | Path], outputs: Mapping[str, str | Path]) -> None:
    """Raise InputError naming both when an output is an input, is inside an input directory, or is another output."""
    seen: list[tuple[str, str, tuple[int, int] | None, bool]] = []      # (label, real path, inode, is input)
    for label, path in inputs.items():
        if not is_uri(path):
            real, inode = _identity(path)
            seen.append((label, real, inode, True))
    for label, path in outputs.items():
        real, inode = _identity(path)
        for other, other_real, other_inode, is_input in seen:
            same = real == other_real or (inode is not None and inode == other_inode)
            inside = is_input and os.path.isdir(other_real) and _under(real, other_real)
            holds = is_input and _under(other_real, real)      # an output folder (.parts, --statement) holding the input
            if same or inside or holds:
                how = "is the same file as" if same else "is inside" if inside else "is a folder holding"
                raise InputError(f"{label} ({path}) {how} {other}; nothing was written", file=str(path),
                                 hint=f"give {label} a path of its own")
        seen.append((label, real, inode, False))
