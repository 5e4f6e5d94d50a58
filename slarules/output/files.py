"""Bytes on disk that are either as they were or complete: never torn.

A whole file is written beside its final name and renamed over it (file and directory fsynced),
so a reader, a crash or a full disk sees the old file or the new one. An append (decision logs)
goes through `os.write` on a descriptor, never a buffered file: on any failure the file is cut
back to the size it had, and nothing buffered can be flushed after the cut.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import OutputError

# Python names the descriptor-level failures by errno; a message says what the disk said.
_BLOCK = 1 << 20


def io_failure(path: str | Path, exc: OSError, kept: str) -> OutputError:
    """The error for an OSError while writing `path`: what the system said, and what was kept."""
    return OutputError(f"cannot write the file: {exc.strerror or exc}", file=str(path), hint=kept)


def fsync_dir(folder: str | Path) -> None:
    """Make a rename or a new file in `folder` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return      # Windows: directories cannot be opened; NTFS journals the rename
    try:
        os.fsync(fd)
    except OSError:
        pass        # some filesystems refuse fsync on a directory; the rename itself was done
    finally:
        os.close(fd)


def temporary_beside(final: str | Path) -> Path:
    """The name a file is written under before it becomes `final` (same folder, so rename is atomic)."""
    final = Path(final)
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


def commit(tmp: str | Path, final: str | Path) -> None:
    """Rename a finished, fsynced temporary over `final` and make the rename durable."""
    os.replace(tmp, final)
    fsync_dir(Path(final).parent)


@contextmanager
def atomic_file(final: str | Path, kept: str = "the file is as it was before") -> Iterator[BinaryIO]:
    """Yield a binary file that becomes `final` only when the block ends without error.

    On any failure the temporary is removed, `final` is untouched and an OSError becomes an
    OutputError naming `final` with `kept` as its hint.
    """
    final = Path(final)
    tmp = temporary_beside(final)
    try:
        with open(tmp, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        commit(tmp, final)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise io_failure(final, exc, kept) from None
        raise


def write_atomically(final: str | Path, data: bytes, kept: str = "the file is as it was before") -> None:
    """`final` holds `data` afterwards, or is as it was: never part of it."""
    with atomic_file(final, kept) as out:
        out.write(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def append_whole(path: str | Path, chunks: Iterable[bytes | Path]) -> int:
    """Append byte chunks (a Path: that file's bytes) to `path` and fsync; returns the new size.

    On any failure (a full disk, an I/O error, an interrupt) the file is cut back to the size it
    had and the error names it: a reader never sees part of what was appended. Writes go straight
    to the descriptor, so no buffer is left to be flushed after the cut.
    """
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o644)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        try:
            for chunk in chunks:
                if isinstance(chunk, Path):
                    with open(chunk, "rb") as src:
                        while block := src.read(_BLOCK):
                            _write_all(fd, block)
                else:
                    _write_all(fd, chunk)
            os.fsync(fd)
            return os.lseek(fd, 0, os.SEEK_END)
        except BaseException as exc:
            kept = "nothing was added to it"
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError:
                kept = (f"it could not be cut back: keep its first {size:,} bytes "
                        f"(`truncate -s {size} {path}`) before writing to it again")
            if isinstance(exc, OSError):
                raise io_failure(path, exc, kept) from None
            raise
    finally:
        os.close(fd)
