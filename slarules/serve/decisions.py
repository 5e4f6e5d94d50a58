"""The server's decision log: one writer, group commit, and a 200 only once a record is on disk.

Workers do not write the log. Each builds its decisions' records (the `replay` format, the same
lines `adjudicate --decision-log` writes) and sends them to the supervisor over a socket pair of
its own; the supervisor holds the log (its lock, for the server's life: a second server or a CLI
run on the same log is refused, naming the holder) and, in a thread that reads every worker's
pair, appends whatever has arrived as one group, with one fsync, then acknowledges every record
of the group. A worker answers 200 only after that
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
import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from ..errors import OutputError
from ..output.decision_log import DecisionLog
from ..output.decision_records import decision_id, line_id, logged_at, packs_json, record_line
from ..verdict import Verdict
from ..verdict.layout import compact
from . import channel as ch
from .metrics import Store

# ---- in a worker --------------------------------------------------------------------------

def decision(case: Any, verdict: Verdict, lang: str, with_record: bool,
             text: str | None = None, parsed: bool = False) -> tuple[str, bytes | None]:
    """(decision id, its log record or None): the id the response names, the line the log keeps.
    `text`, the verdict's JSON as answered, is compacted rather than written again; `parsed`:
    the case is as the JSON reader returned it (decision_records._jcs may use msgspec)."""
    if with_record:
        compact_json = compact(text) if text is not None else verdict.to_json(indent=None)
        return record_line(case, compact_json, lang, logged_at(), verdict, parsed)
    return decision_id(case, verdict.as_of, packs_json(verdict), parsed), None


def batch_records(rows: Any, verdicts: list[tuple[int, str]], lang: str) -> list[tuple[str, bytes]]:
    """(id, record) of a /v1/batch chunk's verdicts, each with its case as given, in row order."""
    from ..batch.runner import decision_lines
    records = []
    for _, line in decision_lines(rows, verdicts, lang, logged_at()):
        ident = line_id(line)
        assert ident is not None, "record_line writes the id first"
        records.append((ident, line))
    return records


HOLD = 0.004       # seconds a batch may wait for the requests being decided, or about to come, to join it


class Returning:
    """The connections answered lately, whose clients may be about to send their next request.

    A client that waits for each answer before it sends the next (a closed loop: most services,
    every load generator) cannot send while its record waits; once answered, it soon comes back.
    A group that waits for those clients (up to HOLD) takes their decisions too, so one fsync
    serves about every connection in use instead of half of them (benchmarks/serve.py measures
    the difference). A connection counts from its answer until its next request begins or it
    closes; one answered before a group began gathering is not waited for (it did not come back
    while the previous group was synced: an idle client, not a busy one)."""

    def __init__(self) -> None:
        self._answered: dict[object, float] = {}        # connection -> loop time of its last answer

    def answered(self, connection: object, at: float) -> None:
        self._answered[connection] = at

    def back(self, connection: object) -> None:
        """Its next request has begun, or it has closed."""
        self._answered.pop(connection, None)

    def since(self, start: float) -> bool:
        """Whether a connection answered at `start` or later has not come back (older ones are forgotten)."""
        answered = self._answered
        stale = [c for c, at in answered.items() if at < start]
        for connection in stale:
            del answered[connection]
        return bool(answered)


_DURABLE: dict[str, Any] = {}       # a group's outcome when it was written (read, never changed)


class LogClient:
    """A worker's side: `await record(id, line)` returns once the record is durable, else raises OutputError.

    Records are sent one batch at a time: while a batch waits for its acknowledgement (the
    supervisor's fsync), the records of the requests decided meanwhile gather here and go as the
    next batch, in one write. A batch goes once little more is on its way, or HOLD after its first
    record: it holds at least as many requests as this worker is still deciding (`requests`: its
    requests in flight, those waiting here included; a slow upload or a /v1/batch stream counts
    there too, so one such request does not hold a lone client's record) and no connection
    answered since the batch began has yet to come back (`returning`, fed by the HTTP protocol:
    a client that waits for each answer sends its next request soon). Under load a group then holds about every
    connection in use, so a group's costs (the supervisor's fsync above all, on one core taken from
    the worker) are shared by many requests; with one request in flight its record goes at once,
    at the end of the event loop's iteration.
    """

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None      # the record pair, once connected
        self._seq = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._in_flight: set[int] = set()       # seqs sent, not yet acknowledged
        self._gathering: list[tuple[int, bytes]] = []   # (seq, frame) of the next batch
        self._gathered = 0                      # requests (record_many calls) in the next batch
        self._waiters = 0                       # requests waiting here for their records
        self._held_since = 0.0                  # loop time the next batch's first record came
        self._timer: asyncio.TimerHandle | None = None
        self._gone: str | None = None
        self._flushing = False                      # a send is scheduled for the end of this loop iteration
        self.requests: Callable[[], int] = lambda: 0      # the worker's requests in flight (set by the worker)
        self.returning = Returning()

    def connected(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport

    async def record(self, ident: str, line: bytes) -> None:
        await self.record_many([(ident, line)])

    async def record_many(self, records: list[tuple[str, bytes]]) -> None:
        """Queue every record (they join one group commit) and wait until all are durable."""
        if self._gone is not None:
            raise OutputError(self._gone, hint="this decision was not recorded; try again once the server is back")
        loop = asyncio.get_running_loop()
        if not self._gathering:
            self._held_since = loop.time()
        waiting = []
        for ident, line in records:
            self._seq += 1
            done: asyncio.Future[dict[str, Any]] = loop.create_future()
            self._waiting[self._seq] = done
            waiting.append(done)
            self._gathering.append((self._seq, ch.frame(ch.RECORD, ch.with_seq(self._seq, ident.encode("ascii")
                                                                              + b"\n" + line))))
        self._gathered += 1
        self._waiters += 1
        if not self._in_flight and not self._flushing:
            self._flushing = True                   # the records the tasks ready now decide join this one
            loop.call_soon(self._send)
        try:
            for done in waiting:
                outcome = await done
                if "error" in outcome:
                    raise OutputError(**outcome["error"])
        finally:
            self._waiters -= 1

    def _send(self, held: bool = False) -> None:
        """Send what gathered, unless more is on its way and HOLD has not passed (`held`: it has)."""
        self._flushing = False
        if self._in_flight or self._gone is not None or not self._gathering:
            return                                  # an acknowledgement will send what gathered
        deciding = self.requests() - self._waiters
        if not held and (self._gathered < deciding or self.returning.since(self._held_since)):
            if self._timer is None:                 # they join, up to HOLD
                loop = asyncio.get_running_loop()
                self._timer = loop.call_at(self._held_since + HOLD, self._held_enough)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._gathering, self._gathered = self._gathering, [], 0
        if self._transport is not None:
            self._in_flight.update(seq for seq, _ in batch)
            self._transport.write(b"".join(frame for _, frame in batch))

    def _held_enough(self) -> None:
        # sent whatever the clock says now: a timer may run a little before its time
        self._timer = None
        self._send(held=True)

    def acknowledged(self, payload: bytes) -> None:
        outcome, seqs = ch.split_acks(payload)
        result = _DURABLE if outcome == b"{}" else json.loads(outcome)    # nearly always durable
        for seq in seqs:
            self._in_flight.discard(seq)
            done = self._waiting.pop(seq, None)
            if done is not None and not done.done():
                done.set_result(result)
        if not self._in_flight and self._gone is None and not self._flushing:
            # what gathered during that fsync, as the next group: once the requests acknowledged
            # now have been answered (their tasks run first), so that their clients are waited for
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._send)

    def lost(self, why: str) -> None:
        """The supervisor has gone: every record waiting is refused (none of them gets a 200)."""
        self._gone = why
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        error = {"error": {"message": why, "hint": "this decision was not recorded; try again"}}
        for done in self._waiting.values():
            if not done.done():
                done.set_result(error)
        self._waiting.clear()
        self._in_flight.clear()
        self._gathering.clear()


class _Acks(asyncio.Protocol):
    """A worker's end of its record pair: ACK frames to its LogClient; the pair's end is the supervisor's."""

    def __init__(self, client: LogClient) -> None:
        self.client = client
        self.received = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)    # a socket's: it writes (uvloop's too)
        self.client.connected(self.transport)

    def data_received(self, data: bytes) -> None:
        self.received += data
        try:
            for _, payload in ch.frames(self.received, ch.ACKS):
                self.client.acknowledged(payload)
        except ch.ChannelError as exc:
            self.client.lost(f"the decision log's acknowledgements are garbled ({exc})")
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.lost("the server's supervisor has stopped; decisions cannot be logged")


async def connect_log(sock: socket.socket) -> LogClient:
    """The LogClient of a worker over its end of its record pair (inherited from the supervisor)."""
    client = LogClient()
    await asyncio.get_running_loop().connect_accepted_socket(lambda: _Acks(client), sock=sock)
    return client


# ---- in the supervisor ----------------------------------------------------------------------

class GroupCommit:
    """The supervisor's side: one thread that appends every worker's records with group commit.

    Each worker has a socket pair of its own for its records (`attach`), apart from its channel.
    The thread waits on all of them at once; whatever has arrived when it wakes, from every worker,
    is one group: one write and one fsync on the log's descriptor (held open), then one ACK frame
    per worker. The supervisor's event loop is never woken for a record, and records that arrive
    while an fsync runs wait in their sockets for the next group, so groups grow with the load.

    `store`: where each group is counted (records, fsync time, records waiting for it).
    """

    def __init__(self, path: str | Path, command: str, store: Store | None = None) -> None:
        self.path = Path(path)
        self._log = DecisionLog(self.path, command=command)
        self._store = store
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._attached: list[_Sender] = []          # handed over by attach, registered by the thread
        self._guard = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)

    def open(self) -> None:
        """Take the log's lock (refused at once if another process writes it) and read the ids it
        holds (a decision already logged is not written twice), before anything is served."""
        self._log.open()
        self._wake_read.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._thread.start()

    def attach(self, sock: socket.socket, pid: int) -> None:
        """Serve the records a worker (process `pid`) sends on `sock`, its end of their pair."""
        sock.setblocking(False)
        with self._guard:
            self._attached.append(_Sender(sock, pid))
        self._wake_write.send(b"+")

    def close(self) -> None:
        """Write what the workers sent (every socket read to its end or to what is there), then release the log."""
        self._closing = True
        if self._thread.is_alive():
            self._wake_write.send(b".")
            self._thread.join()
        self._selector.close()
        self._wake_read.close()
        self._wake_write.close()
        self._log.close()

    def _run(self) -> None:
        while True:
            group: list[tuple[_Sender, int, str, bytes]] = []
            for key, events in self._selector.select():
                sender = key.data
                if sender is None:
                    self._take_attached()
                    continue
                if events & selectors.EVENT_WRITE:
                    self._send(sender)
                if events & selectors.EVENT_READ:
                    self._receive(sender, group)
            if self._closing:                          # the workers have stopped: read what they left
                for sender in list(self._senders()):
                    self._receive(sender, group)
            if group:
                self._commit(group)
            if self._closing:
                for sender in list(self._senders()):
                    self._drop(sender)
                return

    def _senders(self) -> list[_Sender]:
        return [key.data for key in self._selector.get_map().values() if key.data is not None]

    def _take_attached(self) -> None:
        try:
            while self._wake_read.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._guard:
            attached, self._attached = self._attached, []
        for sender in attached:
            self._selector.register(sender.sock, selectors.EVENT_READ, sender)

    def _receive(self, sender: _Sender, group: list[tuple[_Sender, int, str, bytes]]) -> None:
        """Every record frame the worker has sent so far joins `group`; at its end, or a frame
        that is not a record (a bug), the worker is dropped (it then answers 503, never a 200)."""
        try:
            ended = sender.read()
            for seq, ident, line in sender.records():
                group.append((sender, seq, ident, line))
        except ch.ChannelError as exc:
            sys.stderr.write(f"slarules serve: worker {sender.pid}'s decision records: {exc}; stopping it\n")
            with contextlib.suppress(OSError):
                os.kill(sender.pid, getattr(signal, "SIGKILL", signal.SIGTERM))     # Windows has no SIGKILL
            ended = True
        if ended:
            self._drop(sender)

    def _commit(self, group: list[tuple[_Sender, int, str, bytes]]) -> None:
        if self._store is not None:
            self._store.set("slarules_decision_log_queue", (), len(group))
        started = time.perf_counter()
        try:
            self._log.extend([(ident, line) for _, _, ident, line in group])
            outcome = b"{}"
        except OutputError as exc:
            outcome = json.dumps({"error": {k: v for k, v in exc.to_dict().items()
                                            if k != "error" and v is not None}}).encode()
        if self._store is not None:
            self._store.observe("slarules_decision_log_fsync_seconds", (), time.perf_counter() - started)
            self._store.add("slarules_decision_log_records_total", (), len(group))
            self._store.set("slarules_decision_log_queue", (), 0)
        by_sender: dict[_Sender, list[int]] = {}
        for sender, seq, _, _ in group:
            by_sender.setdefault(sender, []).append(seq)
        for sender, seqs in by_sender.items():
            sender.out += ch.frame(ch.ACK, ch.acks(outcome, seqs))
            self._send(sender)

    def _send(self, sender: _Sender) -> None:
        """What is owed to the worker, as much as its socket takes now; the rest when it is writable."""
        if sender.sock.fileno() < 0:
            return
        try:
            sent = sender.sock.send(sender.out) if sender.out else 0
        except BlockingIOError:
            sent = 0
        except OSError:                 # the worker has gone: its records wait for no one
            sender.out.clear()
            sent = 0
        del sender.out[:sent]
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if sender.out else 0)
        key = self._selector.get_map().get(sender.sock)
        if key is not None and key.events != want:
            self._selector.modify(sender.sock, want, sender)

    def _drop(self, sender: _Sender) -> None:
        if sender.sock in self._selector.get_map():
            self._selector.unregister(sender.sock)
        sender.sock.close()


_READ_SIZE = 256 << 10       # a worker's group is a few kilobytes a record: one read takes it whole


class _Sender:
    """A worker's record socket as the writer thread sees it: bytes received, ACKs owed."""

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.sock = sock
        self.pid = pid
        self.received = bytearray()
        self.out = bytearray()
        self._view = memoryview(bytearray(_READ_SIZE))

    def read(self) -> bool:
        """Everything the socket holds now into `received`; True at its end (the worker has gone).

        Into one buffer kept for the socket's life: `recv(1 MiB)` allocated (and the allocator
        mapped) a megabyte for every read of a group's few kilobytes."""
        view = self._view
        while True:
            try:
                size = self.sock.recv_into(view)
            except BlockingIOError:
                return False
            except OSError:
                return True
            if not size:
                return True
            self.received += view[:size]
            if size < len(view):            # what the socket held is all taken: the next group wakes us
                return False

    def records(self) -> Iterator[tuple[int, str, bytes]]:
        """(seq, id, line) of each whole record frame received; a partial one waits for its rest."""
        for _, payload in ch.frames(self.received, ch.RECORDS):
            seq, rest = ch.split_seq(payload)
            ident, line = _record(rest)
            yield seq, ident, line


def _record(payload: bytes) -> tuple[str, bytes]:
    ident, _, line = payload.partition(b"\n")
    return ident.decode("ascii"), line
