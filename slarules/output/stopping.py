"""A run stops at a safe point on SIGINT or SIGTERM, keeping what it wrote.

Python's default SIGINT raises KeyboardInterrupt wherever the run happens to be, and SIGTERM
kills it outright: worker processes and semaphores left behind, nothing said about how to go
on. While a run is `Stopping`, both signals raise `Interrupted` instead, but never inside a
`safe()` block (a commit: appended bytes and the checkpoint that counts them); a signal that
arrives there is raised when the block ends. Only the main thread can receive signals, so
elsewhere (a server's worker thread) this does nothing.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any, Self

from ..errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopping:
    """Signal handling for the length of a run; a context manager."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._depth = 0
        self._raised = False
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._saved[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for number, handler in self._saved.items():
            signal.signal(number, handler)
        self._saved.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = number
        if self._depth == 0:
            self._raise()

    def _raise(self) -> None:
        if not self._raised and self.received is not None:     # once: a second signal does not cut the cleanup
            self._raised = True
            raise Interrupted(self.received)

    @contextmanager
    def safe(self) -> Iterator[None]:
        """A block a signal does not cut in two; a signal received in it is raised at its end."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0:
            self._raise()
