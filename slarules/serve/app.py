"""The routes: a bare ASGI callable, because the framework's cost is paid on every decision.

A framework (Starlette, measured in benchmarks/serve.py) costs a request more than routing by one
dict lookup and reading five headers in one pass, which is all this needs. The body is read once
and decoded once (JSON or YAML, with the positions an error may need found only if one does);
the verdict's bytes are `Verdict.to_json()` plus a newline, as `slarules adjudicate --format
json` prints them.

A request takes the worker's current `Revision` once, at its start, and uses that engine for all
it does, so a reload never splits a decision between two pack sets, and the answer names the
revision (`X-Pack-Revision`) that decided it.
"""
from __future__ import annotations

import asyncio
import mimetypes
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..case.fast import case_of
from ..case.sources import Document
from ..engine import internal_error
from ..errors import CaseError, SlaRulesError
from . import requests as rq
from .config import ServeOptions
from .decisions import LogClient, decision
from .guard import Tokens, token_cookie
from .metrics import Store, render
from .pool import Pools
from .revision import Revision

PAGE_DIR = Path(__file__).resolve().parent / "page"
MAX_PAGE_FILE = 8 << 20
TOKEN_FORM = "token.html"       # the page's own file that asks for a token (served with a 401 at /)
JSON = b"application/json"
PAGE_HEADERS = [(b"content-security-policy", (b"default-src 'self'; img-src 'self' data:; style-src 'self' "
                                             b"'unsafe-inline'; frame-ancestors 'none'")),
                (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
EXPOSED = b"x-decision-id, x-pack-revision, x-request-id"
OPEN_ROUTES = ("/healthz", "/readyz")        # load balancers ask these without a token


class Request:
    """What a handler needs of one request: its scope, body channel and the headers read once."""

    __slots__ = ("authorization", "content_length", "content_type", "cookie", "id", "origin", "receive", "revision",
                 "scope", "send")

    def __init__(self, scope: dict[str, Any], receive: rq.Receive, send: rq.Send, request_id: str) -> None:
        self.scope, self.receive, self.send, self.id = scope, receive, send, request_id
        self.content_type: bytes | None = None
        self.content_length: int | None = None
        self.authorization: bytes | None = None
        self.cookie: bytes | None = None
        self.origin: bytes | None = None
        self.revision: Revision | None = None


class Answer:
    """A whole response: status, body, headers (content-type included)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: rq.Headers) -> None:
        self.status, self.body, self.headers = status, body, headers


Handler = Callable[[Request], Awaitable["Answer | None"]]     # None: the handler sent its answer itself


class Service:
    """A worker's state: the revision it serves, its log client, its limits, its counters."""

    def __init__(self, options: ServeOptions, revision: Revision, store: Store, metrics_dir: str,
                 log: LogClient | None = None,
                 reload: Callable[[], Awaitable[dict[str, Any]]] | None = None) -> None:
        self.options = options
        self.revision = revision
        self.store = store
        self.metrics_dir = metrics_dir
        self.log = log
        self.reload = reload
        self.tokens = Tokens(options.tokens)
        self.case_bytes = options.limits_object.case_bytes
        self.last_reload: dict[str, Any] | None = None
        self.draining = False
        self.in_flight = 0
        self.page_dir = Path(options.page_dir) if options.page_dir else PAGE_DIR
        # /v1/batch's helper processes, started on demand; their files in the server's scratch folder
        self.helpers = Pools(options.batch_processes, scratch=metrics_dir)
        self._ids = f"{os.getpid():x}-{os.urandom(3).hex()}-"
        self._count = 0

    def swap(self, revision: Revision) -> None:
        """Serve `revision` from the next request on (one assignment: a request sees one or the other)."""
        old = self.revision
        self.revision = revision
        if old.id != revision.id:
            self.store.set("slarules_revision_info", (old.id,), 0.0)
        self.store.set("slarules_revision_info", (revision.id,), 1.0)

    def request_id(self, given: bytes | None) -> str:
        if given is not None and 0 < len(given) <= 64 and given.isascii() and given.decode("ascii").isprintable():
            return given.decode("ascii")
        self._count += 1
        return f"{self._ids}{self._count}"


class App:
    """The ASGI application of one worker."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.routes: dict[str, dict[str, Handler]] = {
            "/v1/adjudicate": {"POST": self.adjudicate},
            "/v1/explain": {"POST": self.explain},
            "/v1/batch": {"POST": self.batch},
            "/v1/packs": {"GET": self.packs},
            "/v1/packs/reload": {"POST": self.reload},
            "/healthz": {"GET": self.healthz},
            "/readyz": {"GET": self.readyz},
            "/metrics": {"GET": self.metrics},
            "/openapi.json": {"GET": self.openapi},
            "/v1/examples": {"GET": self.examples},
            "/v1/labels": {"GET": self.labels},
        }
        self._openapi: bytes | None = None
        self._examples: bytes | None = None
        self._labels: bytes | None = None

    async def __call__(self, scope: dict[str, Any], receive: rq.Receive, send: rq.Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        s = self.service
        given_id = None
        request = Request(scope, receive, send, "")
        for name, value in scope["headers"]:
            if name == b"content-type":
                request.content_type = value
            elif name == b"content-length":
                request.content_length = int(value) if value.isdigit() else None
            elif name == b"authorization":
                request.authorization = value
            elif name == b"cookie":
                request.cookie = value
            elif name == b"origin":
                request.origin = value
            elif name == b"x-request-id":
                given_id = value
        request.id = s.request_id(given_id)
        path, method = scope["path"], scope["method"]
        methods = self.routes.get(path)
        route = path if methods is not None else "page" if method == "GET" and _page_path(path) else "other"
        answer: Answer | None
        try:
            answer = await self._answer(request, methods, path, method)
        except rq.Refusal as refused:
            answer = self._refused(refused, request)
        except SlaRulesError as exc:
            answer = self._refused(rq.refusal(exc), request)
        except Exception as exc:  # noqa: BLE001  # a bug: a 500 with its request id, never a traceback to the client
            answer = self._refused(rq.Refusal(500, internal_error(exc), "engine"), request)
        if answer is not None:
            headers = answer.headers
            if request.origin is not None and s.options.cors:
                headers = headers + _cors(request.origin, s.options.cors)
            await send({"type": "http.response.start", "status": answer.status,
                        "headers": [*headers, (b"content-length", b"%d" % len(answer.body)),
                                    (b"x-request-id", request.id.encode())]})
            await send({"type": "http.response.body", "body": answer.body})
            status = answer.status
        else:
            status = 200
        s.store.add("slarules_requests_total", (route, _STATUS.get(status) or str(status)))
        s.store.observe("slarules_request_seconds", (route,), time.perf_counter() - started)

    async def _answer(self, request: Request, methods: dict[str, Handler] | None, path: str,
                      method: str) -> Answer | None:
        s = self.service
        if methods is None:
            if method == "GET" and _page_path(path):
                return await self.page(request, path)
            raise rq.request_error(f"no such route: {_shown_path(path)}", status=404, field="path",
                                   hint="see GET /openapi.json")
        handler = methods.get(method)
        if handler is None:
            if method == "OPTIONS" and s.options.cors and request.origin is not None:
                return Answer(204, b"", [(b"access-control-allow-methods", ", ".join(methods).encode()),
                                         (b"access-control-allow-headers", b"authorization, content-type"),
                                         (b"access-control-max-age", b"600")])
            raise rq.request_error(f"{path} answers {', '.join(methods)}, not {method[:16]}", status=405,
                                   field="method", headers=[(b"allow", ", ".join(methods).encode())])
        if path not in OPEN_ROUTES:
            self._authorise(request)
        if s.in_flight >= s.options.concurrency:
            raise rq.request_error(f"the server is busy: {s.in_flight} requests in flight in this worker",
                                   status=503, kind="busy", hint="try again in a second",
                                   headers=[(b"retry-after", b"1")])
        s.in_flight += 1
        s.store.set("slarules_in_flight", (), s.in_flight)
        try:
            return await handler(request)
        finally:
            s.in_flight -= 1
            s.store.set("slarules_in_flight", (), s.in_flight)

    def _authorise(self, request: Request) -> None:
        tokens = self.service.tokens
        if tokens.required and not tokens.accepts(tokens.from_request(request.authorization, request.cookie)):
            raise rq.request_error("a valid bearer token is required", status=401, field="Authorization",
                                   hint="send `Authorization: Bearer TOKEN` with a token of the server's "
                                   "--token-file (the page: open /?token=TOKEN once)",
                                   headers=[(b"www-authenticate", b'Bearer realm="slarules"')])

    def _refused(self, refused: rq.Refusal, request: Request) -> Answer:
        headers = [(b"content-type", JSON), *refused.headers]
        revision = request.revision
        if revision is not None:
            headers.append((b"x-pack-revision", revision.id.encode()))
        return Answer(refused.status, rq.error_body(refused, request.id), headers)

    # ---- deciding --------------------------------------------------------------------------

    async def _case(self, request: Request) -> tuple[Revision, Document, Any, dict[str, str]]:
        """The revision, the case document as given, the validated case and the query, for one request."""
        s = self.service
        revision = request.revision = s.revision
        params = rq.query(request.scope["query_string"])
        fmt = rq.content_format(request.content_type)
        body = await rq.read_body(request.receive, s.case_bytes, s.options.body_timeout, request.content_length)
        document = rq.parse_case_body(body, fmt, s.case_bytes)
        engine = revision.engine
        try:
            engine.limits.check_case(document.data, rq.BODY)
        except CaseError as exc:
            raise rq.Refusal(413, exc, "limit") from None
        return revision, document, case_of(document.data, document, engine.limits), params

    async def adjudicate(self, request: Request) -> Answer:
        s = self.service
        revision, given, case, params = await self._case(request)
        lang = params.get("lang", "zh")
        verdict = revision.engine.adjudicate(case, as_of=params.get("as_of"), lang=lang)
        text = verdict.to_json()
        body = (text + "\n").encode("utf-8")
        # a JSON body's document holds JSON's types only (a YAML tag may make a date): msgspec may write it
        ident, record = decision(given.data, verdict, lang, s.log is not None, text, parsed=given.text is not None)
        if record is not None and s.log is not None:
            await s.log.record(ident, record)
        store = s.store
        for finding in verdict.findings:
            store.add("slarules_findings_total", (finding.clause,))
        return Answer(200, body, [(b"content-type", JSON), (b"x-decision-id", ident.encode()),
                                  (b"x-pack-revision", revision.id.encode())])

    async def explain(self, request: Request) -> Answer:
        revision, _, case, params = await self._case(request)
        explanation = revision.engine.explain(case, as_of=params.get("as_of"), lang=params.get("lang", "zh"))
        return Answer(200, (explanation.to_json() + "\n").encode("utf-8"),
                      [(b"content-type", JSON), (b"x-pack-revision", revision.id.encode())])

    async def batch(self, request: Request) -> None:
        from .stream import stream_batch
        s = self.service
        revision = request.revision = s.revision
        params = rq.query(request.scope["query_string"])
        rq.content_format(request.content_type, "jsonl")
        await stream_batch(request, revision, s, params)

    # ---- the revision ----------------------------------------------------------------------

    async def packs(self, request: Request) -> Answer:
        s = self.service
        doc = {**s.revision.describe(), "last_reload": s.last_reload}
        return Answer(200, rq.dumps(doc) + b"\n", [(b"content-type", JSON)])

    async def reload(self, request: Request) -> Answer:
        s = self.service
        if s.reload is None:
            raise rq.request_error("this server cannot reload", status=404)
        outcome = await s.reload()
        if "error" in outcome:
            from ..errors import PackError
            error = PackError(**outcome["error"])
            raise rq.Refusal(422, error, "pack", extra={"revision": s.revision.id})
        return Answer(200, rq.dumps({**s.revision.describe(), "last_reload": s.last_reload}) + b"\n",
                      [(b"content-type", JSON), (b"x-pack-revision", s.revision.id.encode())])

    # ---- operations ------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Answer:
        return Answer(200, b'{"ok": true, "worker": %d}\n' % os.getpid(), [(b"content-type", JSON)])

    async def readyz(self, request: Request) -> Answer:
        s = self.service
        if s.draining:
            raise rq.request_error("shutting down", status=503, kind="busy", headers=[(b"retry-after", b"1")])
        return Answer(200, rq.dumps({"ready": True, "revision": s.revision.id}) + b"\n", [(b"content-type", JSON)])

    async def metrics(self, request: Request) -> Answer:
        text = await asyncio.to_thread(render, self.service.metrics_dir)
        return Answer(200, text.encode("utf-8"), [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")])

    async def openapi(self, request: Request) -> Answer:
        if self._openapi is None:
            from .openapi import openapi_json
            self._openapi = openapi_json().encode("utf-8")
        return Answer(200, self._openapi, [(b"content-type", JSON)])

    # ---- the page --------------------------------------------------------------------------

    async def examples(self, request: Request) -> Answer:
        if self._examples is None:
            from .page_data import as_bytes, examples_document
            self._examples = as_bytes(await asyncio.to_thread(examples_document))
        return Answer(200, self._examples, [(b"content-type", JSON)])

    async def labels(self, request: Request) -> Answer:
        if self._labels is None:
            from .page_data import as_bytes, labels_document
            self._labels = as_bytes(labels_document())
        return Answer(200, self._labels, [(b"content-type", JSON)])

    async def page(self, request: Request, path: str) -> Answer:
        """A static file of the page (`/` is its index.html); `?token=` turns into the page's cookie."""
        s = self.service
        params = rq.query(request.scope["query_string"], ("token",))
        token = params.get("token")
        if token is not None:
            back = [(b"location", (path if path.isascii() and path.isprintable() else "/").encode())]
            if s.tokens.accepts(token.encode("utf-8", "replace")):
                secure = request.scope.get("scheme") == "https"
                return Answer(303, b"", [*back, (b"set-cookie", token_cookie(token.encode(), secure))])
            # a wrong ?token=: the form again, or (beside a good cookie or header) the page without it
            return await self._page_authorised(request, path) or Answer(303, b"", back)
        refused = await self._page_authorised(request, path)
        if refused is not None:
            return refused
        name = "index.html" if path == "/" else path[len("/page/"):]
        file = _page_file(s.page_dir, name)
        if file is None:
            raise rq.request_error(f"no such page file: {_shown_path(path)}", status=404, field="path")
        data = await asyncio.to_thread(file.read_bytes)
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        return Answer(200, data, [(b"content-type", kind.encode()), (b"cache-control", b"no-cache"), *PAGE_HEADERS])

    async def _page_authorised(self, request: Request, path: str) -> Answer | None:
        """None if the request may have the page; else, for `/`, the page's token form (401), which
        a browser shows where it would show the JSON error: its GET /?token= sets the cookie."""
        try:
            self._authorise(request)
            return None
        except rq.Refusal as refused:
            form = _page_file(self.service.page_dir, TOKEN_FORM) if path == "/" else None
            if form is None:
                raise
            data = await asyncio.to_thread(form.read_bytes)
            return Answer(401, data, [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store"),
                                      *refused.headers, *PAGE_HEADERS])


_STATUS = {code: str(code) for code in (200, 204, 303, 400, 401, 404, 405, 408, 413, 415, 422, 500, 503)}


def _page_path(path: str) -> bool:
    return path == "/" or path.startswith("/page/")


def _page_file(folder: Path, name: str) -> Path | None:
    """`name` inside the page's folder: no `..`, no hidden file, a regular file of bounded size."""
    parts = name.split("/")
    if not name or any(not p or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
        return None
    file = folder.joinpath(*parts)
    try:
        real, root = file.resolve(strict=True), folder.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if root not in real.parents or not real.is_file() or real.stat().st_size > MAX_PAGE_FILE:
        return None
    return real


def _shown_path(path: str) -> str:
    return "`" + "".join(c if c.isprintable() else "?" for c in path[:120]) + "`"


def _cors(origin: bytes, allowed: list[str]) -> rq.Headers:
    text = origin.decode("latin-1")
    if "*" in allowed or text in allowed:
        return [(b"access-control-allow-origin", origin), (b"vary", b"origin"),
                (b"access-control-expose-headers", EXPOSED)]
    return []

