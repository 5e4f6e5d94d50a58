"""The options of `slarules serve`, checked before a socket is bound or a worker started.

Everything the command is told is validated here, so a typo (a token file that is not there, a
certificate without its key, a port out of range) is one located error and exit 2, not a worker
that dies at start-up in a loop.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..case.limits import Limits
from ..errors import InputError

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8080
MAX_WORKERS = 64
MAX_TOKEN_FILE = 64 << 10       # a token file is a few lines; anything larger is not one
MIN_TOKEN_LENGTH = 16           # shorter tokens can be guessed; refuse them at start rather than serve them


@dataclass
class ServeOptions:
    """What `slarules serve` runs with; `to_json`/`from_json` carry it to the worker processes."""

    packs: list[str] | None = None            # None: the shipped packs
    host: str = LOOPBACK
    port: int = DEFAULT_PORT
    workers: int = 1
    decision_log: str | None = None
    tokens: list[str] = field(default_factory=list)   # read from --token-file; empty: no authentication
    watch: bool = False
    cors: list[str] = field(default_factory=list)
    tls_cert: str | None = None
    tls_key: str | None = None
    limits: dict[str, int] = field(default_factory=Limits().to_dict)
    concurrency: int = 64                 # requests in flight per worker; more get 503 + Retry-After
    header_timeout: float = 10.0          # seconds a client may take to send a request's headers
    body_timeout: float = 30.0            # seconds a client may take to send a body (per read for /v1/batch)
    keep_alive: float = 5.0               # seconds an idle connection is kept
    drain_timeout: float = 30.0           # seconds SIGTERM waits for requests in flight
    batch_chunk: int = 20000              # /v1/batch lines per columnar pass, as `slarules batch --chunk-size`
    batch_processes: int | None = None    # helper processes judging a worker's /v1/batch chunks (serve/pool.py);
                                          # None: one per core, 0: none (the worker judges them itself)
    page_dir: str | None = None           # the page's static files (default: slarules/serve/page)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeOptions:
        return cls(**json.loads(text))

    @property
    def limits_object(self) -> Limits:
        return Limits(**self.limits)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """`slarules serve`'s arguments (the parser of cli.py calls this; nothing heavy is imported)."""
    p.add_argument("--packs", nargs="+", metavar="PATH", help="pack files or directories (default: the shipped packs)")
    p.add_argument("--host", default=LOOPBACK, help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT}; 0: any free port, "
                   "printed on stderr)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1; one per core is usual)")
    p.add_argument("--decision-log", dest="decision_log", metavar="FILE",
                   help="append one record per decision; a 200 means its record is on disk (slarules replay reads it)")
    p.add_argument("--token-file", dest="token_file", metavar="FILE",
                   help="bearer tokens, one per line (# comments): every route but /healthz and /readyz needs one")
    p.add_argument("--watch", action="store_true", help="reload when a pack file changes (as on SIGHUP)")
    p.add_argument("--cors", action="append", metavar="ORIGIN", default=[],
                   help="allow browser pages from ORIGIN to call the API (repeat for several; default: none)")
    p.add_argument("--tls-cert", dest="tls_cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", dest="tls_key", metavar="FILE", help="the certificate's private key (PEM)")
    p.add_argument("--concurrency", type=int, default=64, metavar="N",
                   help="requests in flight per worker before 503 + Retry-After (default 64)")
    p.add_argument("--header-timeout", dest="header_timeout", type=float, default=10.0, metavar="SECONDS",
                   help="close a connection whose request headers take longer (default 10)")
    p.add_argument("--body-timeout", dest="body_timeout", type=float, default=30.0, metavar="SECONDS",
                   help="answer 408 when a body takes longer (for /v1/batch: between two reads; default 30)")
    p.add_argument("--drain-timeout", dest="drain_timeout", type=float, default=30.0, metavar="SECONDS",
                   help="on SIGTERM, wait this long for requests in flight (default 30)")
    p.add_argument("--page", metavar="DIR", help="serve this folder's index.html at / and its files under /page/ "
                   "(default: the page slarules ships)")
    p.add_argument("--batch-chunk", dest="batch_chunk", type=int, default=20000, metavar="N",
                   help="/v1/batch lines judged per columnar pass (default 20000, as `slarules batch`: a pass "
                   "costs ~0.15 s whatever its size, and a process up to ~650 MiB at this size)")
    p.add_argument("--batch-processes", dest="batch_processes", type=int, default=None, metavar="N",
                   help="helper processes judging each worker's /v1/batch chunks, shared by its batch requests, "
                   "started at its first one (default: one per core; 0: the worker judges them itself, one core)")
    p.add_argument("--limit", action="append", metavar="NAME=N",
                   help="per-case limits, as for adjudicate: case_bytes (the largest body) or scans")


def _number(value: float, name: str, low: float, high: float) -> None:
    if not low <= value <= high:
        raise InputError(f"{name} must be from {low:g} to {high:g}, got {value:g}", field=name)


def read_tokens(path: str) -> list[str]:
    """The bearer tokens of a token file: one per line, blank lines and `#` comments ignored."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise InputError("is not a regular file, expected a token file", file=path)
        if st.st_size > MAX_TOKEN_FILE:
            raise InputError(f"is {st.st_size:,} bytes; a token file has at most {MAX_TOKEN_FILE:,}", file=path)
        with open(path, "rb") as f:
            raw = f.read(MAX_TOKEN_FILE + 1)
    except FileNotFoundError:
        raise InputError("no such file", file=path, field="--token-file") from None
    except OSError as exc:
        raise InputError(f"cannot read the token file: {exc.strerror or exc}", file=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (bad byte at offset {exc.start})", file=path) from None
    tokens = []
    for number, line in enumerate(text.splitlines(), 1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        if len(token) < MIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable() or " " in token:
            raise InputError(f"a token must be at least {MIN_TOKEN_LENGTH} printable ASCII characters without "
                             "spaces", file=path, line=number, hint="e.g. `python -c 'import secrets; "
                             "print(secrets.token_urlsafe(32))'`")
        tokens.append(token)
    if not tokens:
        raise InputError("holds no token", file=path, hint="one token per line; # starts a comment")
    return tokens


def _readable(path: str, flag: str) -> None:
    if not os.path.isfile(path):
        raise InputError("no such file", file=path, field=flag)
    if not os.access(path, os.R_OK):
        raise InputError("cannot be read", file=path, field=flag)


def _folder(path: str | None, flag: str) -> str | None:
    if path is None:
        return None
    if not os.path.isdir(path):
        raise InputError("no such folder", file=path, field=flag)
    return os.path.abspath(path)


def options_from(args: argparse.Namespace) -> ServeOptions:
    """The checked options of a parsed `slarules serve` command line."""
    try:
        ipaddress.ip_address(args.host)
    except ValueError:
        if args.host != "localhost":
            raise InputError(f"`{args.host[:80]}` is not an IP address", field="--host",
                             hint="e.g. 127.0.0.1 (this machine only, the default), ::1 or 0.0.0.0 (every interface)") \
                from None
    _number(args.port, "--port", 0, 65535)
    _number(args.workers, "--workers", 1, MAX_WORKERS)
    _number(args.concurrency, "--concurrency", 1, 100_000)
    _number(args.header_timeout, "--header-timeout", 0.1, 3600)
    _number(args.body_timeout, "--body-timeout", 0.1, 3600)
    _number(args.drain_timeout, "--drain-timeout", 0, 3600)
    _number(args.batch_chunk, "--batch-chunk", 1, 1_000_000)
    if args.batch_processes is not None:
        _number(args.batch_processes, "--batch-processes", 0, MAX_WORKERS)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise InputError("HTTPS needs both --tls-cert and --tls-key", field="--tls-key" if args.tls_cert else "--tls-cert")
    for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path:
            _readable(path, flag)
    for origin in args.cors:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise InputError(f"`{origin[:80]}` is not an origin", field="--cors", hint="e.g. https://claims.example.com")
    limits = Limits.parse(args.limit)
    log = args.decision_log
    if log is not None and os.path.isdir(log):
        raise InputError("is a directory, expected a decision log file", file=log, field="--decision-log")
    return ServeOptions(packs=[str(Path(p)) for p in args.packs] if args.packs else None, host=args.host,
                        port=args.port, workers=args.workers, decision_log=log,
                        tokens=read_tokens(args.token_file) if args.token_file else [], watch=args.watch,
                        cors=list(args.cors), tls_cert=args.tls_cert, tls_key=args.tls_key, limits=limits.to_dict(),
                        concurrency=args.concurrency, header_timeout=args.header_timeout,
                        body_timeout=args.body_timeout, drain_timeout=args.drain_timeout,
                        batch_chunk=args.batch_chunk, batch_processes=args.batch_processes, page_dir=_folder(args.page, "--page"))
