"""A worker process: uvicorn on the socket its supervisor bound, serving the app with its revision.

Started by the supervisor as `python -m slarules.serve.worker` with two inherited descriptors:
the listening socket (shared by every worker: the kernel hands each connection to one) and its
end of a private socket pair (channel.py). Over the pair it is sent its options and the compiled
packs, and sends its decision records; it never reads a pack file or writes the log.

It accepts connections only once its revision is loaded and warm (durable_rules built by one
case), so no client waits for a cold engine. SIGTERM makes uvicorn stop accepting, finish the
requests in flight (their records acknowledged), then exit 0. If the supervisor goes, the channel
reads end-of-file and the worker drains and exits the same way: it cannot log without it.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from typing import Any

from ..engine import Engine
from ..errors import CaseError
from . import channel as ch
from .app import App, Service
from .config import ServeOptions
from .decisions import connect_log
from .guard import HeaderTimeoutProtocol
from .metrics import Store
from .revision import Revision
from .supervisor import event_loop

WARM_UP = {"waybill": "WARM-UP"}      # one case through the engine builds durable_rules before any client waits
REFUSED_WARM_UP = {"waybill": 0}      # ... and one refused case imports Pydantic, which explains refusals


def load_revision(payload: bytes) -> tuple[Revision, dict[str, Any]]:
    """A PACKS frame as a warm revision, and its header (the supervisor's revision id and reload)."""
    head, _, data = payload.partition(b"\n")
    header = json.loads(head)
    engine = Engine.from_bytes(data)
    engine.adjudicate(WARM_UP, as_of="2026-01-01T00:00:00+08:00")
    try:
        engine.adjudicate(REFUSED_WARM_UP)
    except CaseError:
        pass
    revision = Revision.of(engine, header["loaded_at"])
    if revision.id != header["revision"]:
        raise RuntimeError(f"the packs sent are revision {revision.id}, not {header['revision']}")
    return revision, header


class Worker:
    def __init__(self, listen: socket.socket, channel: socket.socket, metrics_dir: str) -> None:
        self.listen = listen
        self.channel = channel
        self.metrics_dir = metrics_dir
        self.service: Service | None = None
        self.server: Any = None
        self._reloads: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._seq = 0

    async def run(self) -> int:
        import uvicorn
        reader, self.writer = await asyncio.open_unix_connection(sock=self.channel)
        first = await ch.read_frame(reader)
        packs = await ch.read_frame(reader)
        if first is None or packs is None or first[0] != ch.START or packs[0] != ch.PACKS:
            return 1
        options = ServeOptions.from_json(first[1].decode())
        revision, header = await asyncio.to_thread(load_revision, packs[1])
        store = Store(self.metrics_dir)
        log = await connect_log(socket.socket(fileno=int(os.environ["SLARULES_SERVE_LOG"]))) \
            if options.decision_log else None
        self.service = service = Service(options, revision, store, self.metrics_dir, log, self.request_reload)
        if log is not None:
            log.requests = lambda: service.in_flight        # a batch waits for the requests being decided
        service.last_reload = header.get("reload")
        service.swap(revision)
        self.writer.write(ch.frame(ch.LOADED, json.dumps({"revision": revision.id}).encode()))
        HeaderTimeoutProtocol.header_timeout = options.header_timeout
        HeaderTimeoutProtocol.returning = log.returning if log is not None else None
        config = uvicorn.Config(App(service), http=HeaderTimeoutProtocol, interface="asgi3", lifespan="off",
                                access_log=False, log_level="warning", proxy_headers=False, server_header=False,
                                timeout_keep_alive=int(max(1, options.keep_alive)),
                                timeout_graceful_shutdown=int(max(1, options.drain_timeout)),
                                ssl_certfile=options.tls_cert, ssl_keyfile=options.tls_key)
        self.server = server = uvicorn.Server(config)
        stop = server.handle_exit

        def handle_exit(sig: int, frame: Any) -> None:
            service.draining = True
            stop(sig, frame)
        server.handle_exit = handle_exit      # type: ignore[method-assign]
        listening = asyncio.get_running_loop().create_task(self._listen(reader, service))
        try:
            await server.serve(sockets=[self.listen])
        finally:
            listening.cancel()
            store.close()
        return 0

    async def _listen(self, reader: asyncio.StreamReader, service: Service) -> None:
        """Frames from the supervisor: new packs, reload outcomes (acknowledgements come on the record pair)."""
        while True:
            got = await ch.read_frame(reader)
            if got is None:                       # the supervisor has gone: nothing can be logged; stop
                if service.log is not None:
                    service.log.lost("the server's supervisor has stopped; decisions cannot be logged")
                service.draining = True
                if self.server is not None:
                    self.server.should_exit = True
                return
            kind, payload = got
            if kind == ch.PACKS:
                header = json.loads(payload.partition(b"\n")[0])
                if header["revision"] == service.revision.id:       # unchanged: keep the engine that is warm
                    service.last_reload = header.get("reload")
                    self.writer.write(ch.frame(ch.LOADED, json.dumps({"revision": service.revision.id}).encode()))
                    continue
                try:
                    revision, header = await asyncio.to_thread(load_revision, payload)
                except Exception as exc:  # noqa: BLE001  # told to the supervisor; the old revision keeps serving
                    self.writer.write(ch.frame(ch.LOADED, json.dumps({"error": f"{type(exc).__name__}: {exc}"})
                                               .encode()))
                    continue
                service.swap(revision)
                service.last_reload = header.get("reload")
                self.writer.write(ch.frame(ch.LOADED, json.dumps({"revision": revision.id}).encode()))
            elif kind == ch.REFUSED:
                service.last_reload = json.loads(payload)
            elif kind == ch.RELOADED:
                seq, rest = ch.split_seq(payload)
                done = self._reloads.pop(seq, None)
                if done is not None and not done.done():
                    done.set_result(json.loads(rest))

    async def request_reload(self) -> dict[str, Any]:
        """Ask the supervisor to reload every worker; returns {"revision"} once this one serves it, or {"error"}."""
        self._seq += 1
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._reloads[self._seq] = done
        self.writer.write(ch.frame(ch.RELOAD, ch.with_seq(self._seq, b"")))
        return await done


def main() -> int:
    listen = socket.socket(fileno=int(os.environ["SLARULES_SERVE_SOCKET"]))
    channel = socket.socket(fileno=int(os.environ["SLARULES_SERVE_CHANNEL"]))
    worker = Worker(listen, channel, os.environ["SLARULES_SERVE_METRICS"])
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)     # reloads come from the supervisor, over the channel
    with asyncio.Runner(loop_factory=event_loop()) as runner:
        return runner.run(worker.run())


if __name__ == "__main__":
    sys.exit(main())
