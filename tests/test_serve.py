"""`slarules serve` as a client meets it: a real server process on a loopback port.

One server per concern group, started once for the module: `server` (two workers, tokens, CORS,
a decision log, small limits, its own copy of the packs to reload) and `lifecycle` (one worker,
TLS, two requests in flight at most) for what ends or breaks a process.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, ROOT, case
from hypothesis import HealthCheck, given, settings, strategies as st
from serving import Server

from slarules import Engine
from slarules.case.fast import read_case
from slarules.cli import main as cli
from slarules.engine import default_rules_dir

TOKEN = "test-token-0123456789abcdef"
AS_OF = "2026-05-20T00:00:00+08:00"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def _copy_packs(folder: Path) -> list[str]:
    shutil.copytree(default_rules_dir(), folder / "packs", ignore=shutil.ignore_patterns("*.test.yaml", "__pycache__"))
    return [str(folder / "packs" / "national"), str(folder / "packs")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("serve")
    (folder / "tokens").write_text(f"# the tests' token\n{TOKEN}\n")
    page = folder / "page"
    page.mkdir()
    (page / "index.html").write_text("<!doctype html><title>slarules</title>")
    (page / "app.js").write_text("console.log('slarules')")
    return {"folder": folder, "packs": _copy_packs(folder), "log": folder / "decisions.jsonl", "page": page}


@pytest.fixture(scope="module")
def server(setup):
    s = Server("--workers", "2", "--packs", *setup["packs"], "--decision-log", str(setup["log"]),
               "--token-file", str(setup["folder"] / "tokens"), "--cors", "https://claims.example", "--watch",
               "--limit", "case_bytes=64KiB", "--limit", "scans=10", "--header-timeout", "1", "--body-timeout", "1",
               "--batch-chunk", "3", "--page", str(setup["page"]))
    s.start()
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def engine(setup) -> Engine:
    return Engine.load(setup["packs"])


def post(server: Server, path: str, body: bytes, content_type: str | None = "application/json",
         **kw) -> tuple[int, dict[str, str], bytes]:
    return server.request("POST", path, body, token=TOKEN, content_type=content_type, **kw)


def raw_response(sock: socket.socket) -> bytes:
    """One whole HTTP response from a raw socket: its head, then as many body bytes as Content-Length says,
    or until the server closes. A response can arrive in several segments (the head first, seen on CI)."""
    out = b""
    while b"\r\n\r\n" not in out and (chunk := sock.recv(65536)):
        out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")), None)
    while (length is None or len(body) < length) and (chunk := sock.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body if out else b""


def error_of(body: bytes) -> dict:
    doc = json.loads(body)
    assert set(doc) >= {"error", "request_id"}, doc
    return doc["error"]


# ---- deciding ---------------------------------------------------------------------------------

def test_verdicts_are_the_cli_bytes(server, engine, setup):
    """Every shipped example, as YAML and as JSON, in both languages: the bytes adjudicate --format json prints."""
    conn = server.connection()
    for path in EXAMPLE_FILES:
        expected = {lang: (engine.adjudicate(read_case(str(path)), lang=lang).to_json() + "\n").encode()
                    for lang in ("zh", "en")}
        status, headers, body = post(server, "/v1/adjudicate", path.read_bytes(), "application/yaml", connection=conn)
        assert status == 200, body
        assert body == expected["zh"], path.name
        as_json = json.dumps(yaml.safe_load(path.read_text()), ensure_ascii=False).encode()
        status, headers, body = post(server, "/v1/adjudicate?lang=en", as_json, connection=conn)
        assert (status, body) == (200, expected["en"]), path.name
        assert headers["content-type"] == "application/json"
        assert headers["x-pack-revision"].startswith("sha256:")
    conn.close()
    # and once against the CLI itself, with an as_of
    example = str(EXAMPLES / "tb1-late.yaml")
    cli_out = subprocess.run([sys.executable, "-m", "slarules", "adjudicate", example, "--format", "json", "--as-of",
                              AS_OF, "--packs", *setup["packs"]], capture_output=True, check=True).stdout
    status, _, body = post(server, f"/v1/adjudicate?as_of={AS_OF.replace('+', '%2B')}",
                           Path(example).read_bytes(), "application/yaml")
    assert (status, body) == (200, cli_out)


def test_each_200_names_its_logged_decision_and_revision(server, setup):
    status, headers, body = post(server, "/v1/adjudicate", json.dumps(case(waybill="LOG-1")).encode())
    assert status == 200
    ids = [json.loads(line)["id"] for line in setup["log"].read_bytes().splitlines()]
    assert headers["x-decision-id"] in ids
    _, _, packs = server.request("GET", "/v1/packs", token=TOKEN)
    described = json.loads(packs)
    assert headers["x-pack-revision"] == described["revision"]
    assert {p["digest"] for p in json.loads(body)["packs"]} <= {p["digest"] for p in described["packs"]}
    dated = {p["name"]: p["effective"] for p in described["packs"] if p["effective"]}
    assert dated["express_regulation"]["by"] == "collected_at"


def test_explain_is_the_cli_bytes(server, engine):
    path = EXAMPLES / "tb1-late.yaml"
    status, _, body = post(server, "/v1/explain?lang=en", path.read_bytes(), "application/yaml")
    assert status == 200
    assert body == (engine.explain(read_case(str(path)), lang="en").to_json() + "\n").encode()


def _batch_lines(folder: Path) -> bytes:
    rows = [json.dumps(case(waybill=f"B-{i}")).encode() for i in range(7)]
    rows[2] = b'{"waybill": 5}'
    rows[4] = b"not json"
    rows.insert(5, b"")                                            # a blank line: counted, no output
    rows.insert(6, b'{"waybill": "' + b"x" * (70 << 10) + b'"}')   # over case_bytes: that line's error
    return b"\xef\xbb\xbf" + b"\n".join(rows)                    # a BOM, and no newline at the end


def _cli_lines(data: bytes, folder: Path, *args: str, lang: str = "zh") -> list[bytes]:
    """What `slarules batch` writes for `data`, its verdicts and error records merged in input order
    (a blank line gives neither): the lines /v1/batch must answer."""
    source = folder / "cases.jsonl"
    source.write_bytes(data)
    assert cli(["batch", str(source), "-o", str(folder / "out.jsonl"), "--as-of", AS_OF, "--lang", lang, *args]) == 0
    verdicts = iter((folder / "out.jsonl").read_bytes().splitlines())
    errors = {json.loads(line)["line"]: line for line in (folder / "out.errors.jsonl").read_bytes().splitlines()}
    given = data.split(b"\n")
    if data.endswith(b"\n"):
        given.pop()
    expected = [errors[n] if n in errors else next(verdicts) for n, line in enumerate(given, 1)
                if n in errors or line.strip()]
    assert next(verdicts, None) is None
    return expected


def test_batch_is_what_slarules_batch_writes(server, setup, tmp_path):
    data = _batch_lines(tmp_path)
    expected = _cli_lines(data, tmp_path, "--packs", *setup["packs"], "--limit", "case_bytes=64KiB")
    status, headers, body = post(server, f"/v1/batch?as_of={AS_OF.replace('+', '%2B')}", data, "application/jsonl")
    assert status == 200
    assert headers["content-type"].startswith("application/jsonl")
    assert body.splitlines() == expected
    assert sum(line.startswith(b'{"line"') for line in expected) == 3


def _many_chunks() -> bytes:
    """40 rows, bad ones on both sides of chunk boundaries (--batch-chunk 3 and 4), a blank line between two chunks."""
    rows = [json.dumps(case(waybill=f"M-{i}")).encode() for i in range(40)]
    rows[2] = b'{"waybill": 5}'                                     # the last row of a chunk of 3
    rows[3] = b"not json"                                           # the first of the next, the last of one of 4
    rows[4] = b"[1, 2]"
    rows[11] = b'{"waybill": "' + b"x" * (70 << 10) + b'"}'         # over 64 KiB; the last of a chunk of 3 and of 4
    rows[12] = json.dumps(case(waybill="M-12", parcel={"weight_kg": "heavy"})).encode()
    rows.insert(12, b"   ")                                         # blank: no output, no row of a chunk
    rows[-1] = b"{"
    return b"\n".join(rows) + b"\n"


def _pieces(data: bytes, size: int):
    """A body sent chunked, cut every `size` bytes: lines split across the parts the server receives."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.mark.parametrize("serving", ["server", "lifecycle"])
def test_batch_of_many_chunks_is_slarules_batch_bytes(serving, request, setup, tmp_path):
    """Many chunks in flight at once (helper processes on `server`, the worker itself on `lifecycle`): every line
    in input order, byte for byte what `slarules batch` writes, whatever the body's parts."""
    s = request.getfixturevalue(serving)
    data = _many_chunks()
    packs = ["--packs", *setup["packs"], "--limit", "case_bytes=64KiB", "--limit", "scans=10"] \
        if serving == "server" else []
    for lang in ("zh", "en"):
        expected = _cli_lines(data, tmp_path, *packs, lang=lang)
        assert len(expected) == 40 and sum(line.startswith(b'{"line"') for line in expected) == 6
        query = f"/v1/batch?lang={lang}&as_of={AS_OF.replace('+', '%2B')}"
        for body in (data, _pieces(data, 997)):
            status, _, answer = post(s, query, body, "application/jsonl")
            assert status == 200, answer
            assert answer.splitlines() == expected


def _helpers(supervisor: int) -> list[int]:
    """The /v1/batch helper processes of a server: its workers' children (serve/pool.py)."""
    def children(pid: int) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
            except OSError:
                pass
        return found
    def is_helper(pid: int) -> bool:       # not multiprocessing's resource tracker, also a child
        try:
            return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
    return [helper for worker in children(supervisor) for helper in children(worker) if is_helper(helper)]


def test_a_pool_whose_helper_was_killed_is_out_of_service_before_its_executor_notices():
    """A batch request acquiring the pool right after a helper died must get a new pool: the executor's own
    flag comes from a watcher thread a moment later, so the pool reads its helpers' exit status too."""
    from concurrent.futures import ProcessPoolExecutor

    from slarules.serve.pool import Helpers
    helpers = object.__new__(Helpers)
    helpers.broken, helpers.idle_timer = False, None
    helpers.executor = ProcessPoolExecutor(1, mp_context=__import__("multiprocessing").get_context("spawn"))
    try:
        assert helpers.executor.submit(abs, -1).result(timeout=60) == 1 and not helpers.out_of_service
        (process,) = helpers.executor._processes.values()
        os.kill(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30        # the exit status, read (and reaped) by the pool itself
        while not helpers._a_helper_exited() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert helpers._a_helper_exited() and process.exitcode == -signal.SIGKILL
        assert helpers.out_of_service
    finally:
        helpers.executor.shutdown(wait=False, cancel_futures=True)


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:      # an idle pool of the other worker, stopped since it was listed
            pass


def _new_helpers(server, old: set[int]) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [pid for pid in _helpers(server.pid) if pid not in old]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("no new helpers started")


def test_batch_whose_helpers_die_is_judged_again_once_then_ends_with_its_error_line(server, setup, tmp_path):
    """kill -9 of the helpers mid-stream (the client not reading, so the server waits on it): the request takes
    a new pool and its unanswered chunks are judged again, so the stream is answered in full; the new pool's
    helpers killed too, the stream ends with one error line (an internal error, with the request id), never a
    hang; the next batch request starts new helpers and is answered in full (serve/pool.py: Lease)."""
    killed: set[int] = set()
    for deaths in (1, 2):
        rows = b"".join(json.dumps(case(waybill=f"KILL{deaths}-{i}")).encode() + b"\n" for i in range(600))
        conn = server.connection()
        conn.request("POST", f"/v1/batch?as_of={AS_OF.replace('+', '%2B')}", body=rows,
                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/jsonl"})
        response = conn.getresponse()
        assert response.status == 200
        first = response.readline()
        assert f"KILL{deaths}-0".encode() in first
        helpers = _helpers(server.pid)
        assert helpers
        _kill(helpers)
        killed.update(helpers)
        if deaths == 2:
            again = _new_helpers(server, killed)
            _kill(again)
            killed.update(again)
        rest = response.read().splitlines()
        conn.close()
        if deaths == 1:
            assert [first.rstrip(b"\n"), *rest] == _cli_lines(rows, tmp_path, "--packs", *setup["packs"],
                                                            "--limit", "case_bytes=64KiB")
        else:
            last = json.loads(rest[-1])
            assert set(last) == {"error", "request_id"} and last["error"]["kind"] == "engine", last
            assert len(rest) < 600
    data = _batch_lines(tmp_path)
    status, _, body = post(server, f"/v1/batch?as_of={AS_OF.replace('+', '%2B')}", data, "application/jsonl")
    assert status == 200, body
    assert body.splitlines() == _cli_lines(data, tmp_path, "--packs", *setup["packs"], "--limit", "case_bytes=64KiB")


def _logged(log: Path, prefix: bytes) -> int:
    return len(set(re.findall(rb'"waybill": ?"(' + re.escape(prefix) + rb'\d+)"', log.read_bytes())))


def test_batch_helpers_are_shared_and_stop_when_idle_or_outdated():
    """A worker's helpers (serve/pool.py), without starting a process: one pool per revision shared by the
    requests, a new one for a new revision (the old stopping with its last request), stopped when idle."""
    from slarules.serve.pool import Pools
    from slarules.serve.revision import Revision

    def stopped(helpers) -> bool:
        try:
            helpers.executor.submit(int).cancel()
        except RuntimeError:            # "cannot schedule new futures after shutdown"
            return True
        return False

    async def run() -> None:
        old = Revision.of(Engine.default())
        new = Revision(old.engine, "sha256:another", old.loaded_at)
        assert Pools(0).acquire(old) is None           # --batch-processes 0: the worker judges its chunks
        pools = Pools(2, idle=0.2)
        first = pools.acquire(old)
        assert pools.acquire(old) is first and first.users == 2 and first.processes == 2
        pools.release(first)
        second = pools.acquire(new)                     # a reload: new helpers, the old kept for its request
        assert second is not first and not stopped(first)
        pools.release(first)
        assert stopped(first)
        pools.release(second)
        assert not stopped(second) and pools.current is second
        await asyncio.sleep(0.5)
        assert stopped(second) and pools.current is None
        third = pools.acquire(new)
        third.broken = True                             # as a request marks it on a BrokenExecutor
        pools.release(third)
        assert stopped(third) and pools.current is None
    asyncio.run(run())


def test_a_lease_whose_new_pool_cannot_start_releases_its_old_pool_once(tmp_path):
    """Lease.renew releases the broken pool before taking a new one: if that fails (its scratch file cannot
    be written), the request's final release must not release the old pool a second time, which would stop
    it under another request still using it."""
    from slarules.errors import OutputError
    from slarules.serve.pool import Lease, Pools
    from slarules.serve.revision import Revision

    async def run() -> None:
        revision = Revision.of(Engine.default())
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        pools = Pools(2, scratch=str(scratch))
        first, second = Lease(pools, revision), Lease(pools, revision)       # two requests on one pool
        shared = first.helpers
        assert shared is second.helpers and shared.users == 2
        shutil.rmtree(scratch)
        with pytest.raises(OutputError):
            first.renew()
        first.release()                          # stream_batch's finally
        assert shared.users == 1 and not shared.executor._shutdown_thread
        second.release()
        assert shared.users == 0
    asyncio.run(run())


def _settled(log: Path, prefix: bytes) -> int:
    """How many rows of a request the log holds once nothing more is logged for a while."""
    count, end = -1, time.monotonic() + 120
    while time.monotonic() < end:
        time.sleep(1.5)
        now = _logged(log, prefix)
        if now == count:
            break
        count = now
    return count


def test_batch_stops_when_the_client_hangs_up(server, setup):
    """A client that hangs up mid-stream stops the work: its decisions stop being made (and logged) far short
    of its 3,000 rows, and the server goes on answering."""
    rows = b"".join(json.dumps(case(waybill=f"GONE-{i}")).encode() + b"\n" for i in range(3000))
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                 + b"\r\nContent-Type: application/jsonl\r\nTransfer-Encoding: chunked\r\n\r\n")

    def send_body() -> None:
        try:
            for part in _pieces(rows, 1 << 14):
                sock.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except OSError:         # the socket closed under it: the hang-up
            pass
    sender = threading.Thread(target=send_body)
    sender.start()
    got = b""
    while b'"GONE-' not in got:             # the first verdicts are streamed back: the work is under way
        part = sock.recv(65536)
        assert part, got
        got += part
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    sender.join()
    assert 0 < _settled(setup["log"], b"GONE-") < 3000
    assert post(server, "/v1/adjudicate", json.dumps(case()).encode())[0] == 200

    # the whole body sent (four chunks of 3, all in flight at once), then a hang-up before any answer
    rows = b"".join(json.dumps(case(waybill=f"LEFT-{i}")).encode() + b"\n" for i in range(12))
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                 + b"\r\nContent-Type: application/jsonl\r\nContent-Length: %d\r\n\r\n" % len(rows) + rows)
    sock.close()
    assert post(server, "/v1/batch", rows.replace(b"LEFT-", b"STAYED-"), "application/jsonl")[0] == 200
    assert _logged(setup["log"], b"STAYED-") == 12
    assert _settled(setup["log"], b"LEFT-") < 12


# ---- refusals: located, 4xx --------------------------------------------------------------------

REFUSED = [
    # (path, body, content type, status, kind, what the error names)
    ("/v1/adjudicate", b'{"waybill": "A",\n "parcel": {"weight_kg": "heavy"}}', "application/json", 422, "case",
     {"field": "parcel.weight_kg", "line": 2}),
    ("/v1/adjudicate", b'{"waybill": ', "application/json", 400, "request", {"line": 1, "column": 13}),
    ("/v1/adjudicate", b"waybill: A\nscans: [\n", "application/yaml", 400, "request", {"file": "<request>"}),
    ("/v1/adjudicate", b"", "application/json", 400, "request", {}),
    ("/v1/adjudicate", b"\xff\xfe", "application/json", 400, "request", {}),
    ("/v1/adjudicate", b"{}", "text/html", 415, "request", {"field": "Content-Type"}),
    ("/v1/adjudicate", b"{}", "application/json; charset=latin-1", 415, "request", {}),
    ("/v1/adjudicate?color=red", b"{}", "application/json", 400, "request", {"field": "color"}),
    ("/v1/adjudicate?lang=fr", b"{}", "application/json", 400, "request", {"field": "lang"}),
    ("/v1/adjudicate?as_of=yesterday", json.dumps(case()).encode(), "application/json", 422, "case",
     {"field": "as_of"}),
    ("/v1/adjudicate", json.dumps(case(scans=[{"type": "collect", "station": "S-01", "at": AS_OF}] * 11)).encode(),
     "application/json", 413, "limit", {"field": "scans"}),
    ("/v1/adjudicate", b'{"waybill": "' + b"x" * (65 << 10) + b'"}', "application/json", 413, "limit", {}),
    ("/v1/nothing", b"{}", "application/json", 404, "request", {}),
    ("/v1/batch", b"{}", "application/yaml", 415, "request", {}),
]


@pytest.mark.parametrize("path, body, content_type, status, kind, names", REFUSED,
                         ids=[f"{r[3]}-{i}" for i, r in enumerate(REFUSED)])
def test_refusals_are_located_errors(server, path, body, content_type, status, kind, names):
    got, headers, answer = post(server, path, body, content_type)
    assert got == status, answer
    error = error_of(answer)
    assert error["kind"] == kind and error["message"]
    assert {k: error.get(k) for k in names} == names
    assert headers["content-type"] == "application/json"
    assert json.loads(answer)["request_id"] == headers["x-request-id"]


def test_an_oversized_body_sent_in_chunks_is_refused_as_it_comes(server):
    def chunks():
        for _ in range(70):
            yield b" " * 1024
    conn = server.connection()
    conn.request("POST", "/v1/adjudicate", body=chunks(), encode_chunked=True,
                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 413 and error_of(response.read())["kind"] == "limit"
    conn.close()


def test_methods_and_routes(server):
    status, headers, _ = server.request("GET", "/v1/adjudicate", token=TOKEN)
    assert status == 405 and headers["allow"] == "POST"
    assert server.request("DELETE", "/v1/packs", token=TOKEN)[0] == 405
    assert server.request("GET", "/page/../../etc/passwd", token=TOKEN)[0] == 404


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/v1/adjudicate", "/v1/explain", "/v1/batch", "/v1/packs", "/v1/packs/x", "/",
                             "/page/app.js", "/page/", "/metrics", "/%00", "/v1/adjudicate/"]),
       method=st.sampled_from(["POST", "GET", "PUT", "OPTIONS", "HEAD"]),
       query=st.sampled_from(["", "?lang=en", "?lang=", "?as_of=%ff", "?as_of=2026-13-45T99:00", "?lang=en&lang=zh",
                              "?&&", "?token=x"]),
       content_type=st.sampled_from(["application/json", "application/yaml", "application/jsonl", "text/plain",
                                     "application/json; charset=utf-16", "", "multipart/form-data; boundary=x"]),
       body=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode),
                      st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                                   lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                                       st.sampled_from(["waybill", "scans", "parcel", "as_of", "x", "timezone"]),
                                       inner, max_size=4), max_leaves=12)
                      .map(lambda v: json.dumps(v, allow_nan=True).encode()),
                      st.just(b"[" * 5000), st.just(b"a: &x [1]\nb: *x\n")))
def test_hostile_requests_are_answered_4xx_never_5xx(server, path, method, query, content_type, body):
    status, _, answer = server.request(method, path + query, body if method not in ("GET", "HEAD") else None,
                                       token=TOKEN, content_type=content_type or None)
    assert status < 500, (status, answer)
    if status >= 400 and method != "HEAD":
        assert error_of(answer)["kind"] in ("request", "limit", "case", "busy")


def test_bad_http_and_long_headers_are_refused(server):
    def raw(*parts: bytes) -> bytes:
        with socket.create_connection((server.host, server.port), timeout=30) as sock:
            for part in parts:
                sock.sendall(part)
                time.sleep(0.2)
            return raw_response(sock)
    assert raw(b"BLAH\x00 / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400")
    big = b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * (80 << 10)      # more than one read, headers unfinished
    assert raw(big, b"\r\n\r\n").startswith(b"HTTP/1.1 431")


def test_a_slow_client_cannot_hold_a_connection(server):
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/adjudicate HTTP/1.1\r\nHost: x\r\n")       # headers never finished
        assert sock.recv(1024) == b""                                       # closed by the server
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/adjudicate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                     + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"waybill\"")
        answer = raw_response(sock)
    assert answer.startswith(b"HTTP/1.1 408")
    assert error_of(answer.split(b"\r\n\r\n", 1)[1])["kind"] == "request"


# ---- tokens, CORS, the page ---------------------------------------------------------------------

def test_tokens_are_required_except_for_health(server):
    body = json.dumps(case()).encode()
    status, headers, answer = server.request("POST", "/v1/adjudicate", body)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert error_of(answer)["field"] == "Authorization"
    assert server.request("POST", "/v1/adjudicate", body, token="wrong-token-0123456789")[0] == 401
    assert server.request("GET", "/metrics")[0] == 401
    assert server.request("GET", "/")[0] == 401
    assert server.request("GET", "/healthz")[0] == 200
    assert server.request("GET", "/readyz")[0] == 200


def test_the_page_takes_its_token_once_and_keeps_it_in_a_cookie(server, setup):
    status, headers, _ = server.request("GET", f"/?token={TOKEN}")
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = {"Cookie": cookie.split(";")[0]}
    status, headers, body = server.request("GET", "/", headers=jar)
    assert (status, body) == (200, (setup["page"] / "index.html").read_bytes())
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in headers["content-security-policy"]
    status, headers, body = server.request("GET", "/page/app.js", headers=jar)
    assert status == 200 and body == (setup["page"] / "app.js").read_bytes()
    assert server.request("POST", "/v1/adjudicate", json.dumps(case()).encode(), headers=jar)[0] == 200
    assert server.request("GET", "/?token=not-the-token-at-all")[0] == 401


def test_cors_only_for_the_origins_given(server):
    body = json.dumps(case()).encode()
    _, headers, _ = post(server, "/v1/adjudicate", body, headers={"Origin": "https://claims.example"})
    assert headers["access-control-allow-origin"] == "https://claims.example"
    assert "x-decision-id" in headers["access-control-expose-headers"]
    _, headers, _ = post(server, "/v1/adjudicate", body, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in headers
    status, headers, _ = server.request("OPTIONS", "/v1/adjudicate", headers={
        "Origin": "https://claims.example", "Access-Control-Request-Method": "POST"})
    assert status == 204 and "authorization" in headers["access-control-allow-headers"]


# ---- operations --------------------------------------------------------------------------------

def _metric(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_add_up_every_worker(server):
    sample = 'slarules_requests_total{route="/v1/adjudicate",status="200"}'
    before = _metric(server.request("GET", "/metrics", token=TOKEN)[2].decode(), sample)
    tb1 = 'slarules_findings_total{clause="TB-1"}'
    tb1_before = _metric(server.request("GET", "/metrics", token=TOKEN)[2].decode(), tb1)
    late = (EXAMPLES / "tb1-late.yaml").read_bytes()
    assert post(server, "/v1/adjudicate", late, content_type="application/yaml")[0] == 200
    before += 1
    workers, sent = set(), 0
    # which worker accepts a new connection is the kernel's choice: ask until both have answered (a
    # request id starts with its worker's pid), so the sum below spans two workers' counters
    while sent < 12 or (len(workers) < 2 and sent < 400):
        status, headers, _ = post(server, "/v1/adjudicate", json.dumps(case(waybill=f"M-{sent}")).encode())
        assert status == 200
        workers.add(headers["x-request-id"].split("-")[0])
        sent += 1
    status, headers, text = server.request("GET", "/metrics", token=TOKEN)
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    metrics = text.decode()
    assert _metric(metrics, sample) - before == sent
    assert len(workers) == 2, f"one worker answered all {sent} requests"
    assert _metric(metrics, "slarules_decision_log_records_total") >= sent
    assert _metric(metrics, tb1) >= tb1_before + 1     # the late parcel's finding, in one worker's counters
    assert "slarules_decision_log_fsync_seconds_bucket" in metrics
    assert 'slarules_revision_info{revision="sha256:' in metrics


def test_openapi_is_published_and_current(server):
    from slarules.serve.openapi import openapi_document
    status, _, body = server.request("GET", "/openapi.json", token=TOKEN)
    assert status == 200
    published = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert json.loads(body) == openapi_document() == json.loads(published), \
        "docs/openapi.json is stale: python -m slarules.serve.openapi > docs/openapi.json"
    assert body.decode() == published


def test_the_benchmarks_wrk_script_counts_what_it_sees(server, tmp_path):
    """benchmarks/serve.py's Lua script, run by wrk for two seconds: every verdict checked, none differing."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import serve as bench
    bodies = [json.dumps(case(waybill=f"W-{i}")).encode() for i in range(5)]
    script = tmp_path / "mix.lua"
    expected = bench.expected_verdicts(bodies, server.args[server.args.index("--packs") + 1:][:2])
    bench.write_lua(script, bodies, expected=expected, token=TOKEN)
    result = bench.wrk(f"http://{server.host}:{server.port}", script, 2, 2, threads=1)
    assert result["requests"] > 0 and result["statuses"] == {"200": result["requests"]}, result
    assert result["checked"] == result["requests"] and result["mismatch"] == 0


# ---- live policy ------------------------------------------------------------------------------

def _packs(server: Server) -> dict:
    return json.loads(server.request("GET", "/v1/packs", token=TOKEN)[2])


def _set_fine(setup, old: str, new: str) -> None:
    path = Path(setup["packs"][1]) / "taobao.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_reloads_are_atomic_and_a_broken_set_changes_nothing(server, setup):
    first = _packs(server)
    revisions = {first["revision"]: [p["digest"] for p in first["packs"]]}
    stop = threading.Event()
    seen: list[tuple[int, str, list[str]]] = []

    def load() -> None:
        conn = server.connection()
        i = 0
        while not stop.is_set():
            i += 1
            status, headers, body = post(server, "/v1/adjudicate", json.dumps(case(waybill=f"R-{i}")).encode(),
                                         connection=conn)
            seen.append((status, headers.get("x-pack-revision", ""),
                         [p["digest"] for p in json.loads(body)["packs"]] if status == 200 else []))
        conn.close()
    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for step in range(4):          # two pack sets, back and forth
            if step % 2 == 0:
                _set_fine(setup, "version: ", "version: reloaded-")
            else:
                _set_fine(setup, "version: reloaded-", "version: ")
            status, _, body = server.request("POST", "/v1/packs/reload", token=TOKEN)
            assert status == 200, body
            now = json.loads(body)
            revisions[now["revision"]] = [p["digest"] for p in now["packs"]]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(revisions) == 2 and seen
    for status, revision, digests in seen:
        assert status == 200
        assert set(digests) <= set(revisions[revision]), "a verdict decided by packs other than its revision's"

    # a broken set is refused, located, and the revision served stays
    path = Path(setup["packs"][1]) / "taobao.yaml"
    good = path.read_text(encoding="utf-8")
    path.write_text(good + "\nrules: [\n", encoding="utf-8")
    try:
        status, _, body = server.request("POST", "/v1/packs/reload", token=TOKEN)
        assert status == 422
        error = error_of(body)
        assert error["kind"] == "pack" and error["file"].endswith("taobao.yaml") and error["line"]
        assert json.loads(body)["revision"] == first["revision"]
        described = _packs(server)
        assert described["revision"] == first["revision"]
        assert described["last_reload"]["outcome"] == "refused"
        assert described["last_reload"]["error"]["file"].endswith("taobao.yaml")
        assert post(server, "/v1/adjudicate", json.dumps(case()).encode())[0] == 200
    finally:
        path.write_text(good, encoding="utf-8")
    assert server.request("POST", "/v1/packs/reload", token=TOKEN)[0] == 200


def test_sighup_and_watch_reload_every_worker(server, setup):
    before = _packs(server)["revision"]
    mark = len(server.lines)
    os.kill(server.pid, signal.SIGHUP)
    assert server.wait_for(r"reload \(SIGHUP\): (ok|unchanged)", 60, after=mark)
    _set_fine(setup, "version: ", "version: watched-")
    try:
        assert server.wait_for(r"reload \(--watch\): ok, revision", 60, after=mark)
        revisions = set()
        for _ in range(8):      # new connections: both workers serve the new revision
            revisions.add(post(server, "/v1/adjudicate", json.dumps(case()).encode())[1]["x-pack-revision"])
        assert len(revisions) == 1 and before not in revisions
        for _ in range(4):      # /v1/batch too: its helper processes judge by the new revision, not the one they had
            status, headers, body = post(server, "/v1/batch", _many_chunks()[:4000], "application/jsonl")
            assert status == 200 and headers["x-pack-revision"] in revisions
            verdicts = [json.loads(line) for line in body.splitlines() if not line.startswith(b'{"line"')]
            assert verdicts and all(any(p["version"].startswith("watched-") for p in v["packs"]) for v in verdicts)
    finally:
        _set_fine(setup, "version: watched-", "version: ")
    assert server.wait_for(r"reload \(--watch\): ok, revision " + before, 60, after=mark)


# ---- start-up refusals ---------------------------------------------------------------------------

def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "slarules", "serve", "--port", "0", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_second_server_on_the_same_log_is_refused(server, setup):
    done = _serve("--decision-log", str(setup["log"]))
    assert done.returncode == 2
    assert "is being written by process" in done.stderr and "Traceback" not in done.stderr


def test_decisions_answered_together_share_an_fsync(server, setup):
    """Group commit is real: requests decided together have their records made durable by fewer
    fsyncs than records (each group is one fsync, counted by the fsync histogram), every record once."""
    def counts() -> tuple[float, float]:
        text = server.request("GET", "/metrics", token=TOKEN)[2].decode()
        return (_metric(text, "slarules_decision_log_fsync_seconds_count"),
                _metric(text, "slarules_decision_log_records_total"))
    held = []
    for i in range(24):                          # each request in flight, its body's last bytes held back
        body = json.dumps(case(waybill=f"GROUP-{i}")).encode()
        conn = server.connection()
        conn.putrequest("POST", "/v1/adjudicate")
        for name, value in (("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Authorization", f"Bearer {TOKEN}")):
            conn.putheader(name, value)
        conn.endheaders(body[:10])
        held.append((conn, body[10:]))
    time.sleep(0.3)
    groups, records = counts()
    for conn, rest in held:                      # ... then all released at once
        conn.send(rest)
    idents = []
    for conn, _ in held:
        response = conn.getresponse()
        assert response.status == 200, response.read()
        idents.append(response.getheader("x-decision-id"))
        response.read()
        conn.close()
    groups_after, records_after = counts()
    assert records_after - records == 24
    assert groups_after - groups < 24, "every record had an fsync of its own"
    logged = [json.loads(line)["id"] for line in setup["log"].read_bytes().splitlines()]
    assert set(idents) <= set(logged) and len(logged) == len(set(logged))


def test_bad_start_is_one_located_error(tmp_path, setup):
    broken = tmp_path / "broken.yaml"
    broken.write_text("pack: x\nrules: [\n")
    for args, says in [(["--packs", str(broken)], "broken.yaml:"),
                       (["--token-file", str(tmp_path / "none")], "none, field `--token-file`: no such file"),
                       (["--tls-cert", str(tmp_path / "c.pem")], "needs both --tls-cert and --tls-key"),
                       (["--host", "example.com"], "not an IP address")]:
        done = _serve(*args)
        assert done.returncode == 2, done.stderr
        assert says in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "short").write_text("abc\n")
    done = _serve("--token-file", str(tmp_path / "short"))
    assert done.returncode == 2 and "short:1" in done.stderr


# ---- the lifecycle: TLS, a full server, kill -9, SIGTERM ---------------------------------------------

@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lifecycle")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    log = folder / "decisions.jsonl"
    s = Server("--workers", "1", "--tls-cert", str(cert), "--tls-key", str(key), "--decision-log", str(log),
               "--concurrency", "2", "--body-timeout", "20", "--batch-processes", "0", "--batch-chunk", "4", ca=str(cert))
    s.start()
    s.log = log      # type: ignore[attr-defined]
    yield s
    s.stop()


def _hold(server: Server, waybill: str) -> tuple[http.client.HTTPConnection, bytes]:
    """A request in flight: headers and half its body sent; send the rest with conn.send(rest)."""
    body = json.dumps(case(waybill=waybill)).encode()
    conn = server.connection()
    conn.putrequest("POST", "/v1/adjudicate")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body[:10])
    return conn, body[10:]


def test_tls_and_a_full_server_says_retry_after(lifecycle):
    held = [_hold(lifecycle, f"H-{i}") for i in range(2)]
    time.sleep(0.5)                        # both are in flight in the one worker
    status, headers, body = lifecycle.request("POST", "/v1/adjudicate", json.dumps(case()).encode())
    assert status == 503 and headers["retry-after"] == "1"
    assert error_of(body)["kind"] == "busy"
    for conn, rest in held:
        conn.send(rest)
        assert conn.getresponse().status == 200
        conn.close()
    assert lifecycle.request("POST", "/v1/adjudicate", json.dumps(case()).encode())[0] == 200


def test_a_killed_worker_is_replaced_and_every_200_has_its_record(lifecycle):
    answered: list[str] = []
    stop = threading.Event()

    def load(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                status, headers, _ = lifecycle.request("POST", "/v1/adjudicate",
                                                       json.dumps(case(waybill=f"K-{n}-{i}")).encode())
            except (OSError, http.client.HTTPException):
                continue                  # the connection the killed worker held
            if status == 200:
                answered.append(headers["x-decision-id"])
    threads = [threading.Thread(target=load, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        (victim,) = lifecycle.workers()
        mark = len(lifecycle.lines)
        os.kill(victim, signal.SIGKILL)
        assert lifecycle.wait_for(rf"worker {victim} stopped \(signal 9\); started worker", 60, after=mark)
        count = len(answered)
        deadline = time.monotonic() + 60
        while len(answered) < count + 5 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(answered) >= count + 5, "the new worker serves"
    logged = {json.loads(line)["id"] for line in lifecycle.log.read_bytes().splitlines()}
    assert set(answered) <= logged


def test_sigterm_drains_requests_in_flight_then_exits_0(lifecycle):
    conn, rest = _hold(lifecycle, "DRAIN-1")
    time.sleep(0.3)
    lifecycle.process.send_signal(signal.SIGTERM)
    assert lifecycle.wait_for("draining", 30)
    conn.send(rest)
    response = conn.getresponse()
    assert response.status == 200
    ident = response.getheader("x-decision-id")
    response.read()
    conn.close()
    assert lifecycle.process.wait(60) == 0
    assert lifecycle.wait_for("stopped", 10)
    assert ident in {json.loads(line)["id"] for line in lifecycle.log.read_bytes().splitlines()}
    assert cli(["replay", str(lifecycle.log)]) == 0        # the served decisions replay: none differs
    with pytest.raises(OSError):
        socket.create_connection((lifecycle.host, lifecycle.port), timeout=5).close()
