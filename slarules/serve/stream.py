"""`POST /v1/batch`: JSON Lines in, JSON Lines out, in bounded memory, through the columnar path.

The body is cut into lines as it arrives; every `batch_chunk` lines go through
`batch.adjudicate_rows`, the function `slarules batch` and Spark judge their chunks with (in a
thread, so the worker keeps answering other requests while Polars works), and the chunk's lines
are sent before the next chunk is read. So a worker holds one chunk of cases and one of answers,
whatever the body's size, and a client that stops reading stops the server reading its body.

Each input line gives one output line, in input order: its verdict (the bytes `slarules batch`
writes) or its error record (`{"line": N, "waybill", "error", "message", "field", "hint"}`, as
`slarules batch` writes to its errors file). Blank lines give nothing, as in a batch. A line
longer than `case_bytes` is that line's error, read no further.

Once the 200 is sent a status cannot change: if the body then stops (a timeout, a client that
hangs up), the stream ends with one last line `{"error": {...}, "request_id": ...}`, which no
row's line looks like.
"""
from __future__ import annotations

import asyncio
import collections
import heapq
from concurrent.futures import BrokenExecutor
from typing import TYPE_CHECKING, Any

from ..batch import runner
from ..batch.io import RowTooLong
from ..batch.runner import adjudicate_rows, instant_now
from ..case.instants import read_timestamp
from ..engine import internal_error
from ..errors import SlaRulesError
from ..runtime import backend as backends
from . import requests as rq
from .decisions import batch_records
from .pool import Lease

if TYPE_CHECKING:
    from .app import Request, Service
    from .revision import Revision

JSONL = b"application/jsonl; charset=utf-8"


class Lines:
    """Cuts a stream of bytes into (line number, line) rows as `slarules batch` reads a file."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.number = 0
        self._buffer = bytearray()
        self._skipping = False          # in a line already over the limit: drop it up to its newline

    def feed(self, data: bytes) -> list[tuple[int, Any]]:
        rows: list[tuple[int, Any]] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            self._line(rows, data[start:end])
            start = end + 1
        rest = data[start:]
        if not self._skipping:
            self._buffer += rest
            if len(self._buffer) > self.limit:
                self._skipping = True
                self._buffer.clear()
        return rows

    def _line(self, rows: list[tuple[int, Any]], tail: bytes) -> None:
        self.number += 1
        if self._skipping:
            self._skipping = False
            rows.append((self.number, RowTooLong()))
            return
        line = bytes(self._buffer) + tail if self._buffer else tail
        self._buffer.clear()
        if len(line) > self.limit:
            rows.append((self.number, RowTooLong()))
        elif line.strip():
            rows.append((self.number, line + b"\n"))

    def end(self) -> list[tuple[int, Any]]:
        """The last line, when the body does not end with a newline."""
        rows: list[tuple[int, Any]] = []
        if self._skipping or self._buffer:
            self._line(rows, b"")
        return rows


def _chunk_lines(engine: Any, rows: list[tuple[int, Any]], as_of: str | None, now: str, lang: str,
                 logged: bool) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A chunk's output lines in row order, and its decision records when the log is on."""
    done = adjudicate_rows(engine, rows, source=rq.BODY, raw=True, as_of=as_of, now=now, lang=lang,
                           backend=backends.DEFAULT, totals=False)
    verdicts = done.verdicts
    merged = heapq.merge(verdicts, done.errors, key=lambda row: row[0])
    text = "".join(line + "\n" for _, line in merged).encode("utf-8")
    return text, batch_records(rows, verdicts, lang) if logged else []


def _helper_chunk(rows: list[tuple[int, Any]], as_of: str | None, now: str, lang: str,
                  logged: bool) -> tuple[bytes, list[tuple[str, bytes]]]:
    """`_chunk_lines` in a helper process (pool.py), with the engine its initializer loaded."""
    try:
        return _chunk_lines(runner._engine, rows, as_of, now, lang, logged)
    finally:
        runner._give_back_memory()


class _Gone(Exception):
    """The client hung up: the work stops, nothing more is sent."""


async def stream_batch(request: Request, revision: Revision, service: Service, params: dict[str, str]) -> None:
    lang = params.get("lang", "zh")
    as_of = params.get("as_of")
    if as_of is not None:
        try:
            read_timestamp(as_of)
        except ValueError as exc:
            raise rq.request_error(str(exc), field="as_of") from None
    lease = Lease(service.helpers, revision)
    try:
        await _stream(request, revision, service, lease, lang, as_of)
    finally:
        lease.release()


async def _stream(request: Request, revision: Revision, service: Service, lease: Lease, lang: str,
                  as_of: str | None) -> None:
    """Read, judge and send: the body's chunks judged while more is read, answered in input order.

    At most `limit` chunks are in flight (read, not yet sent): two per helper, as the batch's pool
    keeps, or one judged in this worker's thread while the next is read. The body is not read
    further until the oldest chunk is sent, so memory stays bounded and a slow reader slows the
    sender. Once the whole body is in, a hang-up is watched for, and it cancels what is queued.
    A helper's death is met once by judging the window's chunks again in a new pool (pool.Lease)."""
    engine = revision.engine
    now = instant_now()
    lines = Lines(engine.limits.case_bytes)
    chunk = service.options.batch_chunk
    send = request.send
    log = service.log
    logged = log is not None
    limit = 2 * lease.helpers.processes if lease.helpers is not None else 1
    window: collections.deque[tuple[list[tuple[int, Any]], asyncio.Future[tuple[bytes, list[tuple[str, bytes]]]]]] \
        = collections.deque()      # (a chunk's rows, its judging), oldest first
    gone: asyncio.Future[Any] | None = None         # the hang-up watch, once the body is in
    started = False

    def submit(rows: list[tuple[int, Any]]) -> None:
        helpers = lease.helpers
        judging: asyncio.Future[tuple[bytes, list[tuple[str, bytes]]]]
        if helpers is None:
            judging = asyncio.ensure_future(asyncio.to_thread(_chunk_lines, engine, rows, as_of, now, lang, logged))
        else:
            try:
                judging = asyncio.wrap_future(helpers.executor.submit(_helper_chunk, rows, as_of, now, lang, logged))
            except BrokenExecutor as exc:       # met by emit(), as a chunk's result would be
                judging = asyncio.get_running_loop().create_future()
                judging.set_exception(exc)
        window.append((rows, judging))

    def judge_again() -> None:
        """The window's chunks not judged yet submitted anew, in order, to the lease's new pool (those
        the old pool finished keep their answers)."""
        entries = list(window)
        window.clear()
        for rows, judging in entries:
            if judging.done() and not judging.cancelled() and judging.exception() is None:
                window.append((rows, judging))
            else:
                judging.cancel()
                submit(rows)

    async def start() -> None:
        nonlocal started
        if not started:
            started = True
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", JSONL), (b"x-pack-revision", revision.id.encode()),
                                    (b"x-request-id", request.id.encode())]})

    async def emit() -> None:
        """The oldest chunk's lines sent (its records on disk first, when the log is on)."""
        while True:
            judged = window[0][1]
            if gone is not None and not judged.done():
                await asyncio.wait((judged, gone), return_when=asyncio.FIRST_COMPLETED)
                if gone.done():
                    raise _Gone
            try:
                text, records = await judged    # a bug, or a second death: the handler below ends the stream
                break
            except BrokenExecutor:
                if not lease.renew():
                    raise
                judge_again()
        window.popleft()
        if records and log is not None:
            await log.record_many(records)      # every line sent has its record on disk
        await start()
        if text:
            await send({"type": "http.response.body", "body": text, "more_body": True})

    pending: list[tuple[int, Any]] = []
    try:
        async for part in rq.body_parts(request.receive, service.options.body_timeout):
            pending += lines.feed(part)
            while len(pending) >= chunk:
                rows, pending = pending[:chunk], pending[chunk:]
                while len(window) >= limit:
                    await emit()
                submit(rows)
            while window and window[0][1].done():
                await emit()
        pending += lines.end()
        if pending:
            submit(pending)
        gone = asyncio.ensure_future(request.receive())
        while window:
            await emit()
        await start()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except _Gone:
        return
    except Exception as exc:  # once the 200 has started, any failure is the stream's last line
        if lease.helpers is not None and isinstance(exc, BrokenExecutor):
            lease.helpers.broken = True     # its second pool broke too: the next request starts anew
        if not started:
            raise
        refused = (exc if isinstance(exc, rq.Refusal)
                   else rq.refusal(exc if isinstance(exc, SlaRulesError) else internal_error(exc)))
        await send({"type": "http.response.body", "body": rq.error_body(refused, request.id), "more_body": gone is None})
        if gone is None:        # the body not read to its end: the error line must reach the client first
            await rq.drain(request.receive)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        for _, judging in window:
            judging.cancel()
        if gone is not None:
            gone.cancel()
