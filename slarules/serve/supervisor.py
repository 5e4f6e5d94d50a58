"""The parent process of `slarules serve`: socket, packs, workers, reloads, the decision log, shutdown.

Why a supervisor of our own rather than uvicorn's `--workers`: uvicorn restarts every worker on
SIGHUP (a broken pack set would then kill them all) and its workers share nothing. Here the
supervisor is the one authority on the revision and the one writer of the decision log:

- it binds the socket once (workers inherit it) and compiles the packs; bad packs or a port in use
  stop it before anything is served (exit 2, the located error);
- it starts `--workers` processes and replaces one that dies (kill -9 included) with the current
  revision, within about a second;
- a reload (SIGHUP, `POST /v1/packs/reload`, `--watch`) compiles the packs beside the ones served;
  a broken set is refused (its located error on stderr and on every worker's /v1/packs) and the
  old revision goes on; a good one is sent to every worker, each swapping it in between requests;
- it appends the workers' decision records with group commit, in a thread of its own that reads
  each worker's record pair (decisions.GroupCommit);
- SIGTERM (or Ctrl-C) drains: every worker stops accepting and finishes its requests, whose
  records are written, then the log is closed and the process exits 0.

Workers run in their own session, so a terminal's Ctrl-C reaches only the supervisor, which stops
them in order.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from ..errors import EngineError, InputError, SlaRulesError
from . import channel as ch
from .config import ServeOptions
from .metrics import Store
from .revision import compile_packs, error_json, now, pack_files, revision_id

RESTART_WINDOW = 10.0         # seconds: a worker that dies this soon after starting counts as a failed start
MAX_FAILED_STARTS = 5         # in a row: the server stops (a worker that cannot start will not start)
POLL = 0.1                    # seconds between looks at the workers and (with --watch) the pack files


def say(message: str) -> None:
    sys.stderr.write(f"slarules serve: {message}\n")
    sys.stderr.flush()


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker shares; a port in use is a located error."""
    address = "127.0.0.1" if host == "localhost" else host
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = socket.create_server((address, port), family=family, backlog=2048)
    except OSError as exc:
        raise InputError(f"cannot listen on {address}:{port}: {exc.strerror or exc}", field="--port",
                         hint="choose another --port, or stop what listens there") from None
    sock.set_inheritable(True)
    return sock


def check_tls(cert: str | None, key: str | None) -> None:
    if not cert or not key:
        return
    import ssl
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise InputError(f"cannot use this certificate and key: {exc}", file=cert, field="--tls-cert") from None


class WorkerProcess:
    """One worker: its process, its end of the channel, what it serves."""

    def __init__(self, process: subprocess.Popen[bytes], writer: asyncio.StreamWriter, started: float) -> None:
        self.process = process
        self.writer = writer
        self.started = started
        self.revision: str | None = None
        self.loaded: asyncio.Future[dict[str, Any]] | None = None

    def send(self, kind: bytes, payload: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(ch.frame(kind, payload))


class Supervisor:
    def __init__(self, options: ServeOptions, command: str = "slarules serve") -> None:
        self.options = options
        self.command = command
        self.workers: list[WorkerProcess] = []
        self.stopping = False
        self.failed_starts = 0
        self.packs_payload = b""
        self.revision = ""
        self.last_reload: dict[str, Any] | None = None
        self._reload_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self.exit_code = 0

    # ---- start -------------------------------------------------------------------------------

    def _compile(self) -> tuple[str, bytes]:
        engine = compile_packs(self.options.packs).with_limits(self.options.limits_object)
        ident = revision_id(engine)
        return ident, engine.to_bytes()

    def _payload(self, ident: str, data: bytes, reload: dict[str, Any] | None) -> bytes:
        header = {"revision": ident, "loaded_at": now(), "reload": reload}
        return json.dumps(header).encode() + b"\n" + data

    async def run(self) -> int:
        o = self.options
        check_tls(o.tls_cert, o.tls_key)
        ident, data = self._compile()
        self.revision, self.packs_payload = ident, self._payload(ident, data, None)
        self.sock = bind(o.host, o.port)
        self.metrics_dir = tempfile.mkdtemp(prefix="slarules-serve-metrics-")
        self.store = Store(self.metrics_dir)
        self.log = None
        try:
            if o.decision_log:
                from .decisions import GroupCommit
                self.log = GroupCommit(o.decision_log, self.command, self.store)
                self.log.open()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stop.set)
            if hasattr(signal, "SIGHUP"):        # Windows has no SIGHUP: reload there by POST or --watch
                loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload("SIGHUP")))
            for _ in range(o.workers):
                self._start_worker()
            host, port = self.sock.getsockname()[:2]
            scheme = "https" if o.tls_cert else "http"
            shown = f"[{host}]" if ":" in host else host
            say(f"listening on {scheme}://{shown}:{port} with {o.workers} worker{'s' * (o.workers > 1)}, "
                f"revision {self.revision}" + (f", decision log {o.decision_log}" if o.decision_log else ""))
            watching = loop.create_task(self._watch())
            await self._stop.wait()
            watching.cancel()
            await self._drain()
        finally:
            if self.log is not None:
                await asyncio.to_thread(self.log.close)
            self.store.close()
            self.sock.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return self.exit_code

    def _start_worker(self) -> WorkerProcess:
        parent, child = socket.socketpair()
        env = {**os.environ, "SLARULES_SERVE_SOCKET": str(self.sock.fileno()),
               "SLARULES_SERVE_CHANNEL": str(child.fileno()), "SLARULES_SERVE_METRICS": self.metrics_dir}
        child.set_inheritable(True)
        inherited = [self.sock.fileno(), child.fileno()]
        records = socket.socketpair() if self.log is not None else None     # the worker's record pair
        if records is not None:
            records[1].set_inheritable(True)
            env["SLARULES_SERVE_LOG"] = str(records[1].fileno())
            inherited.append(records[1].fileno())
        process = subprocess.Popen([sys.executable, "-m", "slarules.serve.worker"], env=env,
                                   pass_fds=inherited, start_new_session=True)
        child.close()
        if records is not None and self.log is not None:
            records[1].close()
            self.log.attach(records[0], process.pid)
        parent.setblocking(False)
        reader = asyncio.StreamReader(limit=ch.MAX_FRAME)
        protocol = asyncio.StreamReaderProtocol(reader)
        loop = asyncio.get_running_loop()
        transport, _ = None, None
        worker = WorkerProcess(process, None, time.monotonic())  # type: ignore[arg-type]  # set just below

        async def connect() -> None:
            nonlocal transport
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock=parent)
            worker.writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            worker.send(ch.START, self.options.to_json().encode())
            worker.send(ch.PACKS, self.packs_payload)
            await self._serve_channel(worker, reader)
        worker.loaded = loop.create_future()
        loop.create_task(connect())
        self.workers.append(worker)
        loop.create_task(self._watch_worker(worker))
        return worker

    # ---- a worker's frames ----------------------------------------------------------------------

    async def _serve_channel(self, worker: WorkerProcess, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                got = await ch.read_frame(reader)
            except ch.ChannelError as exc:
                say(f"worker {worker.process.pid}: {exc}; stopping it")
                worker.process.kill()
                return
            if got is None:
                return
            kind, payload = got
            if kind == ch.RELOAD:
                seq, _ = ch.split_seq(payload)
                asyncio.get_running_loop().create_task(self._reload_for(worker, seq))
            elif kind == ch.LOADED:
                outcome = json.loads(payload)
                worker.revision = outcome.get("revision", worker.revision)
                if worker.loaded is not None and not worker.loaded.done():
                    worker.loaded.set_result(outcome)
                if "error" in outcome:
                    say(f"worker {worker.process.pid} could not load the packs sent: {outcome['error']}")

    async def _reload_for(self, worker: WorkerProcess, seq: int) -> None:
        outcome = await self.reload("POST /v1/packs/reload")
        worker.send(ch.RELOADED, ch.with_seq(seq, json.dumps(outcome).encode()))

    # ---- workers that die ----------------------------------------------------------------------

    async def _watch_worker(self, worker: WorkerProcess) -> None:
        while worker.process.poll() is None:
            await asyncio.sleep(POLL)
        if worker.writer is not None:
            worker.writer.close()
        if worker.loaded is not None and not worker.loaded.done():      # a reload waiting for it goes on
            worker.loaded.set_result({"error": "the worker stopped"})
        if worker in self.workers:
            self.workers.remove(worker)
        if self.stopping:
            return
        code = worker.process.returncode
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        if time.monotonic() - worker.started < RESTART_WINDOW and (worker.revision is None):
            self.failed_starts += 1
        else:
            self.failed_starts = 0
        if self.failed_starts >= MAX_FAILED_STARTS:
            say(f"worker {worker.process.pid} stopped ({how}) before serving, {self.failed_starts} times in a row; "
                "stopping the server")
            self.exit_code = 70
            self._stop.set()
            return
        self.store.add("slarules_worker_restarts_total")
        replacement = self._start_worker()
        say(f"worker {worker.process.pid} stopped ({how}); started worker {replacement.process.pid}")

    # ---- reloads ------------------------------------------------------------------------------

    async def reload(self, trigger: str) -> dict[str, Any]:
        """Compile the packs again; serve them everywhere if they compile, else keep what is served."""
        async with self._reload_lock:
            if self.stopping:
                return {"error": {"message": "the server is stopping"}}
            at = now()
            try:
                ident, data = await asyncio.to_thread(self._compile)
            except SlaRulesError as exc:
                return self._refused(exc, at, trigger)
            except Exception as exc:  # noqa: BLE001  # a bug in compiling: refused and said, never the server down
                return self._refused(EngineError(f"internal error ({type(exc).__name__}: {exc}) while compiling the "
                                                 "packs", hint="this is a bug in slarules; please report it"),
                                     at, trigger)
            outcome = "unchanged" if ident == self.revision else "ok"
            self.last_reload = {"at": at, "outcome": outcome, "trigger": trigger, "revision": ident}
            self.revision, self.packs_payload = ident, self._payload(ident, data, self.last_reload)
            waiting = []
            for worker in list(self.workers):
                worker.loaded = asyncio.get_running_loop().create_future()
                waiting.append(worker.loaded)
                worker.send(ch.PACKS, self.packs_payload)
            if waiting:
                await asyncio.wait(waiting, timeout=60)
            self.store.add("slarules_reloads_total", (outcome,))
            say(f"reload ({trigger}): {outcome}, revision {ident}")
            return {"revision": ident}

    def _refused(self, exc: SlaRulesError, at: str, trigger: str) -> dict[str, Any]:
        error = error_json(exc)
        error.pop("error", None)
        self.last_reload = {"at": at, "outcome": "refused", "trigger": trigger, "revision": self.revision,
                            "error": error}
        for worker in self.workers:
            worker.send(ch.REFUSED, json.dumps(self.last_reload).encode())
        self.store.add("slarules_reloads_total", ("refused",))
        say(f"reload ({trigger}) refused, still serving revision {self.revision}: {exc}")
        return {"error": error}

    async def _watch(self) -> None:
        """With --watch, reload when a pack file's size, time or inode changes (polled: no extra dependency)."""
        if not self.options.watch:
            return
        seen = _stamps(self.options.packs)
        while True:
            await asyncio.sleep(1.0)
            stamps = _stamps(self.options.packs)
            if stamps != seen:
                seen = stamps
                await self.reload("--watch")

    # ---- stop ---------------------------------------------------------------------------------

    async def _drain(self) -> None:
        self.stopping = True
        say("draining: finishing the requests in flight")
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.options.drain_timeout + 5
        while any(w.process.poll() is None for w in self.workers) and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
        for worker in self.workers:
            if worker.process.poll() is None:
                say(f"worker {worker.process.pid} did not stop in time; killing it")
                worker.process.kill()
                worker.process.wait()
        await asyncio.sleep(0)          # let the channels deliver their last records to the log
        say("stopped")


def _stamps(paths: list[str] | None) -> list[tuple[str, int, int, int]]:
    out = []
    for f in pack_files(paths):
        try:
            st = f.stat()
            out.append((str(f), st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append((str(f), 0, 0, 0))
    return out


def serve(options: ServeOptions) -> int:
    """Run the server until SIGTERM; the exit code (0: drained cleanly)."""
    try:
        import uvicorn  # noqa: F401  # the extra is installed: say so now, not in every worker
    except ImportError:
        raise InputError("slarules serve needs the server extra", hint="pip install 'slarules[server]'") from None
    with asyncio.Runner(loop_factory=event_loop()) as runner:
        return runner.run(Supervisor(options).run())


def event_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (the server extra brings it; not on Windows)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
