"""The helper processes that judge a worker's `/v1/batch` chunks, so one request has more than one core.

`slarules batch` spreads its chunks over one process per core (batch/runner.py); a server worker
judging a request's chunks itself has one core, and measured 0.40× the batch's rows/s. So each
server worker keeps a pool of `--batch-processes` helpers (default: one per core it may use),
started by the batch's own worker initializer (`runner._init_worker`) with the revision's compiled
packs (`Engine.to_bytes`, in a file of the server's scratch folder), never the pack files: a
helper judges by exactly the revision the request took.

- Started at the worker's first `/v1/batch`, not at start: a server that never batches pays
  nothing. That first request waits for them (~1.4 s: a new Python, its imports, the packs)
  while its body is read; later ones find them warm.
- Shared by the worker's batch requests (the executor queues their chunks in arrival order), so
  a server runs at most `--workers` × `--batch-processes` helpers, each holding its chunks only.
- One pool per revision: a reload starts a new pool at the next batch request; the old one stops
  once its last request ends. Idle for `IDLE_SECONDS`, a pool stops, handing back the memory its
  helpers keep (Polars keeps freed pages, runtime/_polars.py).
- A helper that dies (kill, out of memory) breaks its pool. A request meeting the break takes a
  new pool and has its unanswered chunks judged again (`Lease.renew`, once: a chunk judging is
  pure, and nothing of it was sent or logged); a second break ends its stream with the error line.
  So a death the pool has not yet seen when a request acquires it costs no request.
  Helpers die with their worker (prctl).
"""
from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ..output.files import write_file

if TYPE_CHECKING:
    from .revision import Revision

IDLE_SECONDS = 60.0     # a pool unused this long stops; the next batch request starts another
_numbers = itertools.count()


class Helpers:
    """One revision's helper processes."""

    def __init__(self, revision: Revision, processes: int, scratch: str) -> None:
        from ..batch.runner import _init_worker  # the batch's, imported at a worker's first batch
        self.revision = revision
        self.processes = processes
        self.users = 0
        self.broken = False
        # the compiled packs in a file, not in the helpers' start arguments: those go through a pipe that a
        # helper killed while starting leaves full, blocking this worker's event loop for good (runner)
        self.compiled = Path(scratch) / f"revision-{os.getpid()}-{next(_numbers)}.bin"
        write_file(self.compiled, revision.engine.to_bytes())   # scratch, read by helpers started after: no sync
        try:
            self.executor = ProcessPoolExecutor(
                processes, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                initargs=(None, None, os.getpid(), None, None, str(self.compiled)))
        except BaseException:
            self.compiled.unlink(missing_ok=True)
            raise
        self.idle_timer: asyncio.TimerHandle | None = None

    @property
    def out_of_service(self) -> bool:
        """A helper died: seen by a request (`broken`), by the executor while idle (it then takes no work),
        or here, by the helper's exit status: the executor's watcher thread sets its flag a moment after a
        death, and a request taken in that moment would meet a broken pool before sending anything (a 500)."""
        return self.broken or bool(getattr(self.executor, "_broken", False)) or self._a_helper_exited()

    def _a_helper_exited(self) -> bool:
        try:
            processes = list((getattr(self.executor, "_processes", None) or {}).values())
        except RuntimeError:            # the watcher changed the table while it was copied: ask next time
            return False
        return any(process.exitcode is not None for process in processes)      # reaps a dead one (waitpid)

    def close(self) -> None:
        """Stop the helpers without waiting (the event loop must not block): queued chunks are dropped."""
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.compiled.unlink(missing_ok=True)        # a helper still starting fails to read it: it is not needed


class Pools:
    """A worker's helpers: its current revision's, started on demand, stopped when idle, outdated or broken."""

    def __init__(self, processes: int | None, idle: float = IDLE_SECONDS, scratch: str | None = None) -> None:
        if processes is None:           # the default: one per core this process may use, as `slarules batch`
            from ..batch.runner import usable_cpus
            processes = usable_cpus()
        self.processes = processes
        self.idle = idle
        self.scratch = scratch or tempfile.gettempdir()     # the server's: its supervisor removes it at stop
        self.current: Helpers | None = None

    def acquire(self, revision: Revision) -> Helpers | None:
        """The helpers for a request decided by `revision` (None: `--batch-processes 0`, judge in the worker)."""
        if self.processes <= 0:
            return None
        helpers = self.current
        if helpers is None or helpers.out_of_service or helpers.revision.id != revision.id:
            if helpers is not None and helpers.users == 0:
                helpers.close()
            helpers = self.current = Helpers(revision, self.processes, self.scratch)
        if helpers.idle_timer is not None:
            helpers.idle_timer.cancel()
            helpers.idle_timer = None
        helpers.users += 1
        return helpers

    def release(self, helpers: Helpers | None) -> None:
        """A request is done with `helpers`: stop them if nothing else will use them, or once idle."""
        if helpers is None:
            return
        helpers.users -= 1
        if helpers.users:
            return
        if helpers is not self.current or helpers.out_of_service:
            if helpers is self.current:
                self.current = None
            helpers.close()
        else:
            helpers.idle_timer = asyncio.get_running_loop().call_later(self.idle, self._stop_idle, helpers)

    def _stop_idle(self, helpers: Helpers) -> None:
        if helpers is self.current and helpers.users == 0:
            self.current = None
            helpers.close()


class Lease:
    """One request's hold on its worker's helpers: the pool it uses, renewed once if a helper dies."""

    def __init__(self, pools: Pools, revision: Revision) -> None:
        self.pools = pools
        self.revision = revision
        self.helpers = pools.acquire(revision)
        self.renewed = False

    def renew(self) -> bool:
        """The pool broke: take a new one (False when this request already did: its break is final)."""
        if self.helpers is None or self.renewed:
            return False
        self.renewed = True
        old, self.helpers = self.helpers, None     # released once, whatever acquiring a new pool raises
        old.broken = True
        self.pools.release(old)
        self.helpers = self.pools.acquire(self.revision)
        return True

    def release(self) -> None:
        self.pools.release(self.helpers)
