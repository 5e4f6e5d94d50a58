"""Reading a request and refusing one: body size and time, content type, query, located errors.

Every answer that is not a 200 is one JSON object naming what was wrong, the CLI's one-paragraph
error as data (docs/contract.md, "Over HTTP"):

    {"error": {"kind": "case", "message": ..., "file": ..., "line": ..., "column": ..., "field": ...,
               "hint": ...}, "request_id": ...}

with absent members left out. `kind` says whose the fault is: `request` (400, 401, 404, 405, 408,
415), `limit` (413), `case` (422), `pack` (a refused reload), `busy` (503) or `engine` (500: a bug
in slarules, to be reported with the request id).
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Self
from urllib.parse import parse_qsl

from ..case.sources import Document, document_of
from ..errors import CaseError, EngineError, InputError, OutputError, PackError, SlaRulesError

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

BODY = "<request>"          # the `file` an error in a request body names
JSON_TYPE = b"application/json"
YAML_TYPES = (b"application/yaml", b"application/x-yaml", b"text/yaml", b"text/x-yaml")
JSONL_TYPES = (b"application/jsonl", b"application/x-ndjson", b"application/x-jsonlines", b"application/json-lines",
               b"text/plain")

STATUS_OF = {InputError: 400, CaseError: 422, PackError: 422, OutputError: 503, EngineError: 500}
KIND_OF = {InputError: "request", CaseError: "case", PackError: "pack", OutputError: "busy", EngineError: "engine"}


class Refusal(Exception):
    """An answer other than 200: its status, its error, the kind of fault and any extra headers."""

    def __init__(self, status: int, error: SlaRulesError, kind: str | None = None,
                 headers: Headers | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error
        self.kind = kind or kind_of(error)
        self.headers = headers or []
        self.extra = extra or {}


def kind_of(error: SlaRulesError) -> str:
    for cls in type(error).__mro__:
        if cls in KIND_OF:
            return KIND_OF[cls]
    return "engine"


def status_of(error: SlaRulesError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500


def refusal(error: SlaRulesError) -> Refusal:
    """The answer to an error the library raised, by its class."""
    return Refusal(status_of(error), error)


def dumps(value: Any) -> bytes:
    """JSON as UTF-8; text that UTF-8 cannot hold (a lone surrogate echoed from a request) is escaped."""
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value).encode("ascii")


def error_body(refused: Refusal, request_id: str) -> bytes:
    located = {k: v for k, v in refused.error.to_dict().items() if k != "error" and v is not None}
    return dumps({"error": {"kind": refused.kind, **located}, "request_id": request_id, **refused.extra}) + b"\n"


def request_error(message: str, *, status: int = 400, field: str | None = None, hint: str | None = None,
                  kind: str = "request", headers: Headers | None = None) -> Refusal:
    return Refusal(status, InputError(message, field=field, hint=hint), kind, headers)


def too_large(limit: int) -> Refusal:
    from ..case.limits import raise_hint
    return Refusal(413, InputError(f"the body is more than the {limit:,} bytes a case may have", file=BODY,
                                   hint=raise_hint("case_bytes").replace("--limit", "slarules serve --limit")),
                   "limit")


class Deadline:
    """`with Deadline(seconds, refusal):` cancels the request's task when time is up and raises
    `refusal()` (a 408) in its place; a cancellation from elsewhere (shutdown) goes through as it is.

    A timer handle, not asyncio.wait_for: that wraps each read in a task of its own (~20 µs), and a
    body has usually arrived whole before the first read.
    """

    def __init__(self, seconds: float, refusal: Callable[[], Refusal]) -> None:
        self.seconds, self.refusal = seconds, refusal
        self.expired = False

    def _expire(self) -> None:
        self.expired = True
        self.task.cancel()

    def __enter__(self) -> Self:
        task = asyncio.current_task()
        assert task is not None, "a request runs in a task"
        self.task = task
        self.timer = asyncio.get_running_loop().call_later(self.seconds, self._expire)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self.timer.cancel()
        if kind is asyncio.CancelledError and self.expired:
            self.task.uncancel()
            raise self.refusal() from None


async def read_body(receive: Receive, limit: int, timeout: float, declared: int | None) -> bytes:
    """The whole body, refused past `limit` bytes (from Content-Length before reading, else as it
    comes) and past `timeout` seconds (408: a slow sender cannot hold the request open)."""
    if declared is not None and declared > limit:
        raise too_large(limit)
    with Deadline(timeout, lambda: request_error(f"the body took more than {timeout:g} s to arrive", status=408,
                                                 hint="send the whole body at once; slow senders are cut off")):
        message = await receive()
        body = message.get("body", b"")
        if not message.get("more_body"):
            if message["type"] == "http.disconnect":
                raise request_error("the client closed the connection")
            return body
        parts, size = [body], len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise request_error("the client closed the connection before its body ended")
            part = message.get("body", b"")
            size += len(part)
            if size > limit:
                raise too_large(limit)
            parts.append(part)
            if not message.get("more_body"):
                return b"".join(parts)


DRAIN_SECONDS, DRAIN_BYTES = 1.0, 8 << 20


async def drain(receive: Receive, seconds: float = DRAIN_SECONDS, most: int = DRAIN_BYTES) -> None:
    """Read and drop what is left of a body the answer did not need (a refusal, a stream cut short),
    for at most `seconds` and `most` bytes: a socket closed with unread bytes sends a TCP reset,
    and a reset drops whatever of the answer the client has not read yet (the lingering close
    that web servers do)."""
    loop = asyncio.get_running_loop()
    deadline, got = loop.time() + seconds, 0
    while got < most:
        try:
            message = await asyncio.wait_for(receive(), deadline - loop.time())
        except TimeoutError:
            return
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            return
        got += len(message.get("body", b""))


async def body_parts(receive: Receive, timeout: float) -> AsyncIterator[bytes]:
    """A streamed body's parts as they come; 408 when the client sends nothing for `timeout` seconds."""
    while True:
        with Deadline(timeout, lambda: request_error(f"the body paused for more than {timeout:g} s", status=408,
                                                     hint="keep sending; slow senders are cut off")):
            message = await receive()
        if message["type"] == "http.disconnect":
            raise request_error("the client closed the connection before its body ended")
        part = message.get("body", b"")
        if part:
            yield part
        if not message.get("more_body"):
            return


def content_format(content_type: bytes | None, allowed: str = "case") -> str | None:
    """"json", "yaml" (or None: sniff, as for a file) for a case; "jsonl" for a batch; 415 otherwise."""
    if content_type is None:
        return None if allowed == "case" else "jsonl"
    media, _, params = content_type.partition(b";")
    media = media.strip().lower()
    charset = params.strip().lower()
    if charset and charset.replace(b" ", b"") not in (b"charset=utf-8", b'charset="utf-8"'):
        raise request_error(f"the body must be UTF-8, not {_shown(charset)}", status=415, field="Content-Type")
    if allowed == "case":
        if media == JSON_TYPE:
            return "json"
        if media in YAML_TYPES:
            return "yaml"
        expected = "application/json or application/yaml"
    else:
        if media in JSONL_TYPES or media == JSON_TYPE:
            return "jsonl"
        expected = "application/jsonl (JSON Lines: one case per line)"
    raise request_error(f"cannot read a body of type {_shown(media)}", status=415, field="Content-Type",
                        hint=f"send {expected}")


def _shown(raw: bytes) -> str:
    text = raw[:80].decode("latin-1")
    return "`" + "".join(c if c.isprintable() else "?" for c in text) + "`"


def parse_case_body(body: bytes, fmt: str | None, limit: int) -> Document:
    """The body as a Document (data and where each key was), decoded once; InputError located in it."""
    if not body.strip():
        raise InputError("the body is empty", file=BODY, hint="send a case: a JSON object, or YAML")
    if len(body) > limit:
        raise too_large(limit)
    return document_of(body, BODY, fmt)         # read_body bounded it: not encoded again to be measured


QUERY = ("lang", "as_of")


def query(raw: bytes, allowed: tuple[str, ...] = QUERY) -> dict[str, str]:
    """The query parameters (`lang`, `as_of`), each at most once; anything else is a 400 naming it."""
    if not raw:
        return {}
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True, max_num_fields=8)
    except (ValueError, UnicodeDecodeError):
        raise request_error("the query string cannot be read", field="query",
                            hint="e.g. ?lang=en&as_of=2026-05-03T09:00:00%2B08:00") from None
    out: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            raise request_error(f"unknown query parameter {_shown(name.encode('utf-8', 'replace'))}", field=name[:40],
                                hint="expected " + " or ".join(allowed))
        if name in out:
            raise request_error(f"query parameter `{name}` given twice", field=name)
        out[name] = value
    lang = out.get("lang")
    if lang is not None and lang not in ("zh", "en"):
        raise request_error(f"unknown language {_shown(lang.encode('utf-8', 'replace'))}", field="lang",
                            hint="zh or en")
    return out
