"""The server's decision log: one writer, group commit, and a 200 only once a record is on disk.

Workers do not write the log. Each builds its decisions' records (the `replay` format, the same
lines `adjudicate --decision-log` writes) and sends them to the supervisor over its channel; the
supervisor holds the log (its lock, for the server's life: a second server or a CLI run on the
same log is refused, naming the holder) and appends whatever has arrived as one group, with one
fsync, then acknowledges every record of the group. A worker answers 200 only after that
acknowledgement, so:

- every 200 has its record, even if the worker is killed with -9 the next instant (the record is
  the supervisor's by then), and a worker killed mid-request leaves at most a record with no 200;
- one fsync serves every request that arrived while the previous one ran: the cost of a record
  is its share of an fsync (benchmarks/serve.py measures it), not an fsync each;
- a worker never tears the log: it never touches the file;
- a decision already in the log (a retried request: the same case, instant and packs) is not
  written twice (`output.decision_log.DecisionLog`, which every writer of a log goes through).

If the log cannot be written (a full disk), the group is cut back (output.files.append_whole) and
each of its requests is answered 503 with the error: no 200 without its record.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..output.decision_log import DecisionLog
from ..output.decision_records import decision_id, line_id, logged_at, record_line, verdict_packs
from ..verdict import Verdict
from ..verdict.layout import compact
from . import channel as ch

MAX_GROUP = 4096        # records appended by one fsync at most (a group is a few MB at most)


# ---- in a worker --------------------------------------------------------------------------

def decision(case: Any, verdict: Verdict, lang: str, with_record: bool,
             text: str | None = None, parsed: bool = False) -> tuple[str, bytes | None]:
    """(decision id, its log record or None): the id the response names, the line the log keeps.
    `text`, the verdict's JSON as answered, is compacted rather than written again; `parsed`:
    the case is as the JSON reader returned it (decision_records._jcs may use msgspec)."""
    if with_record:
        compact_json = compact(text) if text is not None else verdict.to_json(indent=None)
        return record_line(case, compact_json, lang, logged_at(), verdict, parsed)
    return decision_id(case, verdict.as_of, verdict_packs(verdict), parsed), None


def batch_records(rows: Any, verdicts: list[tuple[int, str]], lang: str) -> list[tuple[str, bytes]]:
    """(id, record) of a /v1/batch chunk's verdicts, each with its case as given, in row order."""
    from ..batch.runner import decision_lines
    records = []
    for _, line in decision_lines(rows, verdicts, lang, logged_at()):
        ident = line_id(line)
        assert ident is not None, "record_line writes the id first"
        records.append((ident, line))
    return records


class LogClient:
    """A worker's side: `await record(id, line)` returns once the record is durable, else raises OutputError.

    Records are sent one batch at a time: while a batch waits for its acknowledgement (the
    supervisor's fsync), the records of the requests decided meanwhile gather here and go as the
    next batch, in one write; with none in flight, a batch goes at the end of the event loop's
    iteration, with every record the requests ready in it decided. Under load a batch grows to what arrived during one fsync, so the
    supervisor wakes and the channel is written once per group, not once per request (on one core
    each wake-up was a context switch, about 230 µs a request); when idle a record goes at once.
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._seq = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._in_flight: set[int] = set()       # seqs sent, not yet acknowledged
        self._gathering: list[tuple[int, bytes]] = []   # (seq, frame) of the next batch
        self._gone: str | None = None
        self._flushing = False                      # a send is scheduled for the end of this loop iteration

    async def record(self, ident: str, line: bytes) -> None:
        await self.record_many([(ident, line)])

    async def record_many(self, records: list[tuple[str, bytes]]) -> None:
        """Queue every record (they join one group commit) and wait until all are durable."""
        if self._gone is not None:
            raise OutputError(self._gone, hint="this decision was not recorded; try again once the server is back")
        loop = asyncio.get_running_loop()
        waiting = []
        for ident, line in records:
            self._seq += 1
            done: asyncio.Future[dict[str, Any]] = loop.create_future()
            self._waiting[self._seq] = done
            waiting.append(done)
            self._gathering.append((self._seq, ch.frame(ch.RECORD, ch.with_seq(self._seq, ident.encode("ascii")
                                                                              + b"\n" + line))))
        if not self._in_flight and not self._flushing:
            self._flushing = True                   # the records the tasks ready now decide join this one
            loop.call_soon(self._send)
        await self._writer.drain()
        for done in waiting:
            outcome = await done
            if "error" in outcome:
                raise OutputError(**outcome["error"])

    def _send(self) -> None:
        self._flushing = False
        if self._in_flight or self._gone is not None:
            return                                  # an acknowledgement will send what gathered
        batch, self._gathering = self._gathering, []
        if batch:
            self._in_flight.update(seq for seq, _ in batch)
            self._writer.write(b"".join(frame for _, frame in batch))

    def acknowledged(self, payload: bytes) -> None:
        outcome, seqs = ch.split_acks(payload)
        result = json.loads(outcome)
        for seq in seqs:
            self._in_flight.discard(seq)
            done = self._waiting.pop(seq, None)
            if done is not None and not done.done():
                done.set_result(result)
        if not self._in_flight and self._gone is None:
            self._send()            # what gathered during that fsync, as the next group

    def lost(self, why: str) -> None:
        """The supervisor has gone: every record waiting is refused (none of them gets a 200)."""
        self._gone = why
        error = {"error": {"message": why, "hint": "this decision was not recorded; try again"}}
        for done in self._waiting.values():
            if not done.done():
                done.set_result(error)
        self._waiting.clear()
        self._in_flight.clear()
        self._gathering.clear()


# ---- in the supervisor ----------------------------------------------------------------------

Ack = Callable[[list[int], bytes], None]    # (seqs, JSON outcome) back to the worker that sent those records


class GroupCommit:
    """The supervisor's side: records queue while an fsync runs, then go to disk together.

    `on_commit(seconds, records, queue)` reports each group (the metrics).
    """

    def __init__(self, path: str | Path, command: str,
                 on_commit: Callable[[float, int, int], None] | None = None) -> None:
        self.path = Path(path)
        self._log = DecisionLog(self.path, command=command)
        self._pending: list[tuple[Ack, int, bytes]] = []
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decision-log")
        self._task: asyncio.Task[None] | None = None
        self._on_commit = on_commit
        self._closing = False

    def open(self) -> None:
        """Take the log's lock (refused at once if another process writes it) and read the ids it
        holds (a decision already logged is not written twice), before anything is served."""
        self._log.open()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def add(self, ack: Ack, seq: int, payload: bytes) -> None:
        self._pending.append((ack, seq, payload))
        self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
                records = [_record(payload) for _, _, payload in group]
                started = time.perf_counter()
                try:
                    await loop.run_in_executor(self._executor, self._log.extend, records)
                    outcome = b"{}"
                except OutputError as exc:
                    outcome = json.dumps({"error": {k: v for k, v in exc.to_dict().items()
                                                    if k != "error" and v is not None}}).encode()
                if self._on_commit is not None:
                    self._on_commit(time.perf_counter() - started, len(group), len(self._pending))
                by_worker: dict[Ack, list[int]] = {}
                for ack, seq, _ in group:
                    by_worker.setdefault(ack, []).append(seq)
                for ack, seqs in by_worker.items():
                    ack(seqs, outcome)
            if self._closing:
                return

    async def close(self) -> None:
        """Write what is queued, then release the log."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)
        self._log.close()


def _record(payload: bytes) -> tuple[str, bytes]:
    ident, _, line = payload.partition(b"\n")
    return ident.decode("ascii"), line
