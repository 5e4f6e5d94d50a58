"""One exclusive lock over every output of a run, taken before it reads its first row.

Two `slarules batch` runs on the same `-o` once interleaved their lines while one of them exited
0. Every writer now declares its outputs and holds this lock for the whole run: a second run that
names any of the same outputs (by any spelling: links and relative paths resolve to one file) is
refused at once, naming the holder, and cannot touch the first run's files.

The lock is an OS file lock (`filelock`: fcntl on POSIX, msvcrt on Windows), so it is released by
the kernel when its holder dies, even by kill -9; a stale lock file is harmless. Each output
`DIR/NAME` is locked through `DIR/.NAME.lock`, which also says who holds it.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Self

from ..errors import OutputError


def lock_file(output: str | Path) -> Path:
    """The lock file of an output: hidden, beside it, named after it (the same for every spelling)."""
    real = Path(os.path.realpath(output))
    return real.with_name(f".{real.name}.lock")


def _describe(holder: str) -> str:
    try:
        h = json.loads(holder)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(h["since"])))
        return f"process {int(h['pid'])} on {h['host']} ({h['command']}, since {since})"
    except (ValueError, KeyError, TypeError, OverflowError):
        return "another process"


class OutputLock:
    """Hold the locks of `outputs` (paths) for `command`; a context manager.

    `acquire` takes every lock without waiting, in one order, or none: if any output is held it
    releases what it took and raises OutputError naming that output and its holder.
    """

    def __init__(self, outputs: Iterable[str | Path], command: str) -> None:
        self.outputs = sorted({lock_file(p): Path(p) for p in outputs}.items())
        self.command = command
        self._held: list[object] = []

    def acquire(self) -> Self:
        from filelock import FileLock, Timeout  # lazily: a single case never writes files

        holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                             "since": time.time()})
        try:
            for path, output in self.outputs:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    lock = FileLock(str(path))
                    lock.acquire(timeout=0)
                except Timeout:
                    try:
                        who = _describe(path.read_text(encoding="utf-8", errors="replace")[:4096])
                    except OSError:
                        who = "another process"
                    raise OutputError(f"is being written by {who}; nothing was read or written",
                                      file=str(output), hint="wait for that run to finish, or give this "
                                      "run outputs of its own") from None
                except OSError as exc:
                    raise OutputError(f"cannot lock the output: {exc.strerror or exc}", file=str(output),
                                      hint=f"slarules locks it through {path.name} beside it; nothing "
                                      "was read or written") from None
                self._held.append(lock)
                try:
                    with open(path, "r+", encoding="utf-8") as f:     # who holds it, for the refused
                        f.truncate(0)
                        f.write(holder)
                except OSError:
                    pass
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        while self._held:
            self._held.pop().release()      # type: ignore[attr-defined]

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def command_line() -> str:
    """What to call this process in a holder's description: `slarules batch` and its first words."""
    program = Path(sys.argv[0]) if sys.argv else Path("python")
    name = program.parent.name if program.name == "__main__.py" else program.name     # `python -m slarules`
    words = [name, *sys.argv[1:3]]
    return " ".join(words)[:120]
