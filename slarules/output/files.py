"""Bytes on disk that are either as they were or complete: never torn.

A whole file is written beside its final name and renamed over it (file and directory fsynced),
so a reader, a crash or a full disk sees the old file or the new one. An append (decision logs)
goes through `os.write` on a descriptor, never a buffered file: on any failure the file is cut
back to the size it had, and nothing buffered can be flushed after the cut.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from ..errors import OutputError

# Python names the descriptor-level failures by errno; a message says what the disk said.
_BLOCK = 1 << 20
# copy_file_range cannot copy here (another file system, a file opened to append, an old kernel):
# copy through Python instead. Any other errno (a full disk, an I/O error) is the failure itself.
_NO_KERNEL_COPY = {errno.EXDEV, errno.EBADF, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ETXTBSY,
                   errno.EPERM}


def io_failure(path: str | Path, exc: OSError, kept: str | None) -> OutputError:
    """The error for an OSError while writing `path`: what the system said, and what was kept."""
    return OutputError(f"cannot write the file: {exc.strerror or exc}", file=str(path), hint=kept)


@contextmanager
def writing(path: str | Path, kept: str | None = None) -> Iterator[None]:
    """Turn an OSError in the block into an OutputError naming `path` (the file being written).

    `kept` says what is left as it was; a run that knows more (its checkpoint) adds to it.
    """
    try:
        yield
    except OSError as exc:
        raise io_failure(path, exc, kept) from None


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


def sync_file(path: str | Path) -> None:
    """fsync a file written before, by this process or another (one killed before its own fsync):
    its bytes on disk. Opened to write, writing nothing: Windows flushes only such a descriptor."""
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: str | Path, final: str | Path, sync_first: bool = False) -> None:
    """Rename a finished, fsynced temporary over `final` and make the rename durable.

    `sync_first`: fsync `tmp` here first (a working file written over a whole run, a `.partial`).
    """
    if sync_first:
        sync_file(tmp)
    os.replace(tmp, final)
    fsync_dir(Path(final).parent)


@contextmanager
def _replacing(final: str | Path, kept: str | None) -> Iterator[Path]:
    """Yield the temporary to write `final`'s new bytes to (and fsync); renamed over `final` when the
    block ends without error, else removed, with an OSError made an OutputError naming `final`."""
    tmp = temporary_beside(final)
    try:
        yield tmp
        commit(tmp, final)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise io_failure(final, exc, kept) from None
        raise


@contextmanager
def atomic_file(final: str | Path, kept: str = "the file is as it was before") -> Iterator[BinaryIO]:
    """Yield a binary file that becomes `final` only when the block ends without error.

    On any failure the temporary is removed, `final` is untouched and an OSError becomes an
    OutputError naming `final` with `kept` as its hint.
    """
    with _replacing(final, kept) as tmp, open(tmp, "wb") as out:
        yield out
        out.flush()
        os.fsync(out.fileno())


def write_atomically(final: str | Path, data: bytes, kept: str | None = "the file is as it was before") -> None:
    """`final` holds `data` afterwards, or is as it was: never part of it.

    Written through the descriptor (`os.write`), so nothing is left in a buffer and a failure of
    any write, the fsync or the rename removes the temporary and names `final`.
    """
    with _replacing(final, kept) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_file(path: str | Path, data: bytes) -> None:
    """`path` made to hold `data`, through its descriptor; a failure is an OutputError naming it.

    For working files that only this run reads back (a worker's part file): not renamed into place,
    since nothing reads one before the worker that writes it has returned.
    """
    with writing(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)


def copy_into(fd: int, source: str | Path) -> int:
    """Append the bytes of the file `source` at `fd`'s position: the kernel copies where it can
    (copy_file_range, no bytes through Python), else blocks through `os.write`. Returns the count."""
    with open(source, "rb") as src:
        left = total = os.fstat(src.fileno()).st_size
        try:
            while left > 0:
                copied = os.copy_file_range(src.fileno(), fd, left)
                if copied == 0:
                    break
                left -= copied
        except AttributeError:      # not Linux
            pass
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
        if left > 0:
            src.seek(total - left)
            while block := src.read(_BLOCK):
                _write_all(fd, block)
    return total


class Appender:
    """A working file (a batch's `.partial`) that grows by appends through its descriptor.

    Nothing is buffered in Python, so the size on disk is what was written, and every failure is an
    OutputError naming the file. `sync` makes what was appended durable (before a checkpoint
    records the size).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with writing(self.path):
            # Not O_APPEND: copy_file_range refuses a descriptor opened to append.
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            self.size = os.lseek(self.fd, 0, os.SEEK_END)

    def write(self, data: bytes) -> None:
        with writing(self.path):
            _write_all(self.fd, data)
            self.size += len(data)

    def append_file(self, source: Path) -> None:
        """Append the bytes of `source`, then delete it (a part file a worker wrote)."""
        with writing(self.path):
            self.size += copy_into(self.fd, source)
            self.size = os.lseek(self.fd, 0, os.SEEK_END)
        source.unlink()

    def sync(self) -> None:
        with writing(self.path):
            os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def append_whole(path: str | Path, chunks: Iterable[bytes | Path]) -> int:
    """Append byte chunks (a Path: that file's bytes) to `path` and fsync; returns the new size.

    On any failure (a full disk, an I/O error, an interrupt) the file is cut back to the size it
    had and the error names it: a reader never sees part of what was appended. Writes go straight
    to the descriptor, so no buffer is left to be flushed after the cut.
    """
    fd = open_append(path)
    try:
        return append_to(fd, path, chunks)
    finally:
        os.close(fd)


def open_append(path: str | Path) -> int:
    """A descriptor that appends to `path` (made if missing, its folder's entry then made durable:
    a record fsynced into a file whose name a crash forgets is lost), for append_to."""
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0)
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        fd = os.open(path, flags | os.O_CREAT, 0o644)
        fsync_dir(Path(path).parent)
        return fd


def append_to(fd: int, path: str | Path, chunks: Iterable[bytes | Path]) -> int:
    """append_whole on a descriptor from open_append that its writer keeps open (a server's log):
    the same whole-or-cut-back append and fsync, without opening the file each time.

    Nothing appended, nothing is synced: what the file holds was synced by the append that wrote
    it (a server's group of decisions all logged before costs no fsync, ~1-3 ms of a disk's time)."""
    size = os.lseek(fd, 0, os.SEEK_END)
    try:
        for chunk in chunks:
            if isinstance(chunk, Path):
                copy_into(fd, chunk)
            else:
                _write_all(fd, chunk)
        end = os.lseek(fd, 0, os.SEEK_END)
        if end != size:
            os.fsync(fd)
        return end
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
