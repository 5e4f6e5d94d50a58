"""A real `slarules serve` process on a free loopback port, for the tests that talk HTTP to it.

    with Server("--workers", "2") as server:
        status, headers, body = server.request("POST", "/v1/adjudicate", case_bytes, token=...)

The server is started as a user would start it (`python -m slarules serve --port 0`); the port is
read from the line it prints, and stop() sends SIGTERM and returns its exit code.
"""
from __future__ import annotations

import http.client
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

LISTENING = re.compile(r"listening on (https?)://(\S+):(\d+) ")


class Server:
    def __init__(self, *args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None,
                 ca: str | None = None, prefix: list[str] | None = None) -> None:
        self.args = list(args)
        self.prefix = prefix or []         # e.g. ["taskset", "-c", "0"]: the benchmark pins the server
        self.cwd = cwd
        self.env = {**os.environ, **(env or {})}
        self.ca = ca
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self.scheme = "http"
        self.host = "127.0.0.1"
        self.port = 0
        self._seen = threading.Condition()

    def start(self, timeout: float = 120) -> Server:
        self.process = subprocess.Popen([*self.prefix, sys.executable, "-m", "slarules", "serve", "--port", "0",
                                         *self.args],
                                        cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)
        threading.Thread(target=self._read, daemon=True).start()
        found = self.wait_for(LISTENING, timeout)
        if found is None:
            self.process.kill()
            raise RuntimeError("the server did not start:\n" + "\n".join(self.lines))
        self.scheme, self.host, self.port = found.group(1), found.group(2), int(found.group(3))
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()

    def wait_for(self, pattern: re.Pattern[str] | str, timeout: float = 60, after: int = 0) -> re.Match[str] | None:
        """The first stderr line (from line `after` on) matching `pattern`, waiting up to `timeout` seconds."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        end = time.monotonic() + timeout
        with self._seen:
            while True:
                for line in self.lines[after:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = end - time.monotonic()
                if left <= 0 or (self.process is not None and self.process.poll() is not None and not left):
                    return None
                self._seen.wait(min(left, 0.2))

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def workers(self) -> list[int]:
        """The worker processes' ids (the supervisor's children)."""
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid:
                    out.append(int(entry.name))
        return sorted(out)

    def connection(self, timeout: float = 60) -> http.client.HTTPConnection:
        if self.scheme == "https":
            context = ssl.create_default_context(cafile=self.ca)
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, *, token: str | None = None,
                content_type: str | None = "application/json", headers: dict[str, str] | None = None,
                connection: http.client.HTTPConnection | None = None) -> tuple[int, dict[str, str], bytes]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if content_type is not None and body is not None:
            sent["Content-Type"] = content_type
        conn = connection or self.connection()
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            if connection is None:
                conn.close()

    def stop(self, timeout: float = 60) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
