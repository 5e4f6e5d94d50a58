"""Every input slarules reads is opened here: a regular file only, and never more than its limit.

A size check on `stat` bounds a regular file, but not /dev/zero, /dev/urandom, a FIFO or a
socket: they say they hold 0 bytes and never end (opening a FIFO even waits for a writer). So:

- A *path* must name a regular file. Its kind is read from `stat` before it is opened (a device
  is never opened) and again from the open file (`fstat`), since the name may change in between.
  The open uses O_NONBLOCK, so a FIFO swapped in at that moment cannot hang it; the flag is
  cleared once the file is known to be regular. A directory, a device, a FIFO or a socket is a
  located InputError; so is process substitution (`<(cmd)`, a pipe): pipe to `-` instead.
- *Standard input* is the one stream read as it comes (a pipe, a terminal, /dev/zero
  redirected): never more than the limit plus one byte, the byte that says "too long". Like any
  Unix tool it waits for a writer that has not finished.
- A file of *lines* (JSON Lines, decision logs) is bounded per line: a longer line is read no
  further than the limit, skipped in bounded pieces, and reported at its line number.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError

# Not a regular file: what it is, from its stat mode, for the message.
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISSOCK, "a socket"))
NOT_REGULAR_HINT = "slarules reads regular files, whose size it can check first: save the data to a file"
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def size_text(n: int) -> str:
    """A byte limit as its documentation writes it: 1 MiB, else 10,240 bytes."""
    return f"{n // (1 << 20)} MiB" if n % (1 << 20) == 0 else f"{n:,} bytes"


def _not_regular(mode: int, name: str, hint: str | None) -> InputError | None:
    if stat.S_ISREG(mode):
        return None
    what = next((kind for test, kind in _KINDS if test(mode)), "not a regular file")
    return InputError(f"is {what}, expected a regular file", file=name, hint=hint or NOT_REGULAR_HINT)


def _os_error(exc: OSError, name: str) -> InputError:
    if isinstance(exc, FileNotFoundError):
        return InputError("no such file", file=name)
    if isinstance(exc, IsADirectoryError):
        return InputError("is a directory, expected a file", file=name)
    return InputError(f"cannot read the file: {exc.strerror or exc}", file=name)


def require_regular(path: str | Path, hint: str | None = None) -> None:
    """A located InputError unless `path` names a regular file (for a reader that opens it itself:
    pyarrow, a batch's planner and workers); `hint` for a non-regular one: what to do instead."""
    name = str(path)
    try:
        mode = os.stat(name).st_mode
    except OSError as exc:
        raise _os_error(exc, name) from None
    refused = _not_regular(mode, name, hint)
    if refused:
        raise refused


def open_file(path: str | Path, hint: str | None = None) -> BinaryIO:
    """`path` opened for reading, if it is a regular file; else a located InputError (`hint` for
    a non-regular one: what to do instead)."""
    name = str(path)
    require_regular(name, hint)
    try:
        fd = os.open(name, _OPEN_FLAGS)
    except OSError as exc:
        raise _os_error(exc, name) from None
    try:
        refused = _not_regular(os.fstat(fd).st_mode, name, hint)    # swapped since the stat above
        if refused:
            raise refused
        if _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_at_most(f: BinaryIO, n: int) -> bytes:
    """Up to `n` bytes of `f` (the one place a bounded read happens; the tests watch it)."""
    return f.read(n)


def _read(f: BinaryIO, limit: int, name: str) -> bytes:
    """At most `limit` + 1 bytes: the one past the limit says "too long" without reading the rest."""
    try:
        return _read_at_most(f, limit + 1)
    except OSError as exc:
        raise _os_error(exc, name) from None


def read_file(path: str | Path, limit: int, hint: str | None = None) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; refused from its size before it is read,
    and never read past `limit` + 1 bytes even if it grows meanwhile (`hint`: how to raise `limit`)."""
    name = str(path)
    with open_file(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise InputError(f"the file is {size:,} bytes, more than {size_text(limit)}", file=name, hint=hint)
        data = _read(f, limit, name)
    if len(data) > limit:
        raise InputError(f"the file grew past {size_text(limit)} while it was read", file=name, hint=hint)
    return data


def read_stream(stream: BinaryIO, limit: int, name: str = "<stdin>", hint: str | None = None) -> bytes:
    """At most `limit` bytes of a stream of any kind (standard input); more is refused after
    reading one byte past the limit, never the rest."""
    data = _read(stream, limit, name)
    if len(data) > limit:
        raise InputError(f"the input is more than {size_text(limit)}", file=name, hint=hint)
    return data


def bounded_lines(f: BinaryIO, limit: int, first: int = 1, budget: int | None = None) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line with its newline) of each line of `f` from its position, counting from
    `first`; None for a line over `limit` bytes (its newline not counted), which is read no further
    than that and skipped in bounded pieces. `budget`: stop after that many bytes (a chunk's range)."""
    number = first - 1
    left = budget
    while left is None or left > 0:
        size = limit + 1 if left is None else min(limit + 1, left)
        raw = f.readline(size)
        if not raw:
            return
        if left is not None:
            left -= len(raw)
        number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n") and (left is None or left > 0):
                raw = f.readline(limit if left is None else min(limit, left))
                if left is not None:
                    left -= len(raw)
            yield number, None
        else:
            yield number, raw
