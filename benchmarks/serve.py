"""`slarules serve` measured with a real HTTP load generator (wrk) on this machine, one run, one table.

    python benchmarks/serve.py [--seconds 60] [--only throughput,latency,...] [--stacks]

Every figure of issue 22's "Measured" section, each in the same run as what it is compared with:

  in-process   Engine.adjudicate over the case mix in this process, one thread: decode the JSON
               body, adjudicate, write the verdict's JSON (what one request costs without HTTP)
  throughput   2 workers, 64 connections, --seconds: req/s against 2 x in-process
  latency      1 worker, 16 connections, the server on core 0 and wrk on core 1 (taskset):
               p50/p99, then the same with --decision-log (p99 and the throughput it costs),
               in two rounds of --seconds/2 (plain, logged, logged, plain)
  spawn        `slarules adjudicate CASE --format json` spawned per case (today's route for other
               languages), against one request
  batch        POST /v1/batch of a JSON Lines file against `slarules batch` on the same file
  hostile      64 connections, 10 % hostile requests (malformed JSON, oversized bodies, wrong
               types) plus slow senders beside: 5xx count, verdicts differing from
               Engine.adjudicate, worker RSS after warm-up and at the end; ten reloads between
               two pack sets and one broken during it (every verdict names one of the two
               revisions), then a worker killed with -9: time until its replacement answers, and
               every 200's X-Decision-Id counted in the decision log
  --stacks     the ASGI stacks considered, each around the same work (a bare callable on uvicorn
               with h11 + asyncio and with httptools + uvloop, Starlette on the latter, granian's
               ASGI and RSGI interfaces when installed), 2 workers, 64 connections

wrk comes from Debian (`apt-get install wrk`); the Lua script it runs is written here, with the
expected verdict of every case of the mix so that wrk itself counts a verdict that differs.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

MIX = 400                       # distinct cases in the mix (realistic: benchmarks/generate.py)
PY = sys.executable


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# ---- the case mix and wrk's script ------------------------------------------------------------

def mix(seed: int = 11) -> list[bytes]:
    from generate import cases
    return [json.dumps(c, ensure_ascii=False).encode() for c in cases(MIX, seed=seed)]


def lua_long(data: bytes) -> str:
    level = 1
    while b"]" + b"=" * level + b"]" in data:
        level += 1
    eq = "=" * level
    return f"[{eq}[{data.decode('utf-8', 'replace')}]{eq}]"


def hostile_bodies() -> list[tuple[str, bytes]]:
    """(content type, body) of the hostile tenth: malformed JSON, an oversized body, wrong types, bad YAML."""
    return [("application/json", b'{"waybill": "H-1", "scans": [{"type": "collect",'),
            ("application/json", b'{"waybill": "H-2", "pad": "' + b"x" * (70 << 10) + b'"}'),
            ("application/json", b'{"waybill": 7, "parcel": {"weight_kg": "heavy"}, "scans": "none"}'),
            ("application/yaml", b"waybill: H-4\nscans: [\n  - {type: collect,\n"),
            ("application/json", b'{"waybill": "H-5", "as_of": "2026-02-30T25:00:00"}'),
            ("text/html", b"<html></html>"),
            ("application/json", b"[" * 3000),
            ("application/json", b'{"waybill": "H-8", "timezone": "Mars/Olympus"}')]


def write_lua(path: Path, bodies: list[bytes], *, expected: dict[str, dict[str, bytes]] | None = None,
              hostile: bool = False,
              token: str | None = None, ids: Path | None = None, revisions: dict[str, str] | None = None,
              url_path: str = "/v1/adjudicate", unique: bool = False) -> None:
    """wrk's script: POST the mix round-robin (every 10th hostile), count statuses, verdicts that differ
    from `expected` (by revision, then waybill), revisions seen (with the pack digest each verdict names), and print
    one JSON line at the end; with `ids`, write every 200's X-Decision-Id there. `unique`: each request's
    waybill gets a suffix of its own (`-time_thread_n`, taken off the answer before it is checked), so every
    request is a new decision, as in a day's traffic: a decision log appends and syncs each one, where
    the mix's 400 cases repeated would be logged once and then cost no write."""
    lines = ["local bodies = {", *(lua_long(b) + "," for b in bodies), "}"]
    lines += ["local bad = {", *("{" + json.dumps(t) + ", " + lua_long(b) + "}," for t, b in hostile_bodies()), "}"]
    lines.append("local expected = {")
    for revision, verdicts in (expected or {}).items():
        lines.append(f"[{json.dumps(revision)}] = {{")
        lines += [f"[{json.dumps(waybill)}] = {lua_long(verdict)}," for waybill, verdict in verdicts.items()]
        lines.append("},")
    lines.append("}")
    lines.append("local revision_digest = {")
    for rev, digest in (revisions or {}).items():
        lines.append(f"[{json.dumps(rev)}] = {json.dumps(digest)},")
    lines.append("}")
    lines.append(f"local hostile = {'true' if hostile else 'false'}")
    lines.append(f"local ids_file = {json.dumps(str(ids)) if ids else 'nil'}")
    lines.append(f"local token = {json.dumps(token) if token else 'nil'}")
    lines.append(f"local target = {json.dumps(url_path)}")
    lines.append(f"local unique = {'true' if unique else 'false'}")
    lines.append(r'''
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  n = 0
  statuses = {}
  mismatch = 0
  checked = 0
  revs = {}
  wrongrev = 0
  ids = {}
  offset = (id or 1) * 7919
  salt = os.time()        -- a run of its own: the warm-up's decisions are not this run's
end
request = function()
  n = n + 1
  local headers = {}
  if token then headers["Authorization"] = "Bearer " .. token end
  if hostile and n % 10 == 0 then
    local b = bad[(n / 10) % #bad + 1]
    headers["Content-Type"] = b[1]
    return wrk.format("POST", target, headers, b[2])
  end
  headers["Content-Type"] = "application/json"
  local body = bodies[(n + offset) % #bodies + 1]
  if unique then
    body = string.gsub(body, '"waybill": "([^"]*)"', '"waybill": "%1-' .. salt .. '_' .. (id or 1) .. '_' .. n .. '"', 1)
  end
  return wrk.format("POST", target, headers, body)
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    if unique then body = string.gsub(body, '("waybill": "[^"]*)%-%d+_%d+_%d+"', '%1"', 1) end
    local wb = string.match(body, '"waybill": "([^"]*)"')
    local mine = expected[headers["x-pack-revision"] or ""]
    local want = wb and mine and mine[wb]
    if want then
      checked = checked + 1
      if want ~= body then mismatch = mismatch + 1 end
    end
    local rev = headers["x-pack-revision"]
    if rev then
      revs[rev] = (revs[rev] or 0) + 1
      local digest = revision_digest[rev]
      if next(revision_digest) ~= nil and (digest == nil or not string.find(body, digest, 1, true)) then
        wrongrev = wrongrev + 1
      end
    end
    if ids_file then ids[#ids + 1] = headers["x-decision-id"] end
  end
end
function done(summary, latency, requests)
  local total = {}
  local mis, chk, wrong = 0, 0, 0
  local allrevs = {}
  local f = ids_file and io.open(ids_file, "w")
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
    mis = mis + t:get("mismatch")
    chk = chk + t:get("checked")
    wrong = wrong + t:get("wrongrev")
    for k, v in pairs(t:get("revs")) do allrevs[k] = (allrevs[k] or 0) + v end
    if f then for _, i in ipairs(t:get("ids")) do f:write(i, "\n") end end
  end
  if f then f:close() end
  local parts = {}
  for k, v in pairs(total) do parts[#parts + 1] = string.format('"%d": %d', k, v) end
  local rparts = {}
  for k, v in pairs(allrevs) do rparts[#rparts + 1] = string.format('"%s": %d', k, v) end
  io.write(string.format('RESULT {"requests": %d, "seconds": %.3f, "statuses": {%s}, "mismatch": %d, ' ..
    '"checked": %d, "revisions": {%s}, "wrong_revision": %d, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f, "socket_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration / 1e6, table.concat(parts, ", "), mis, chk, table.concat(rparts, ", "),
    wrong, latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout))
end
''')
    path.write_text("\n".join(lines), encoding="utf-8")


def wrk(url: str, script: Path, seconds: float, connections: int, threads: int = 2,
        cpus: str | None = None) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script), url]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"^RESULT (.*)$", out, re.MULTILINE)
    if not m:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    result = json.loads(m.group(1))
    result["rps"] = result["requests"] / result["seconds"]
    return result


# ---- the server under test ----------------------------------------------------------------------

def start(*args: str, cpus: str | None = None):
    """A `slarules serve` process (tests/serving.py), pinned to `cpus` with its workers when given."""
    from serving import Server
    return Server(*args, prefix=["taskset", "-c", cpus] if cpus else None).start()


def url(server) -> str:
    return f"http://{server.host}:{server.port}"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ---- the measurements ---------------------------------------------------------------------------

def in_process(bodies: list[bytes], seconds: float) -> dict:
    """One thread: the body decoded, adjudicated, the verdict's JSON written (a request's work without HTTP)."""
    from slarules import Engine
    from slarules.case.sources import json_data
    engine = Engine.default()
    for b in bodies:
        engine.adjudicate(json_data(b.decode(), "<b>")).to_json()
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for b in bodies:
            engine.adjudicate(json_data(b.decode(), "<b>")).to_json()
            n += 1
    return {"rate": n / (time.perf_counter() - started)}


def expected_verdicts(bodies: list[bytes], packs: list[str] | None = None) -> dict[str, dict[str, bytes]]:
    """{revision: {waybill: the verdict Engine.adjudicate gives}} for the packs at `packs` (default: shipped)."""
    from slarules import Engine
    from slarules.serve.revision import revision_id
    engine = Engine.load(packs) if packs else Engine.default()
    out = {}
    for b in bodies:
        c = json.loads(b)
        out[c["waybill"]] = (engine.adjudicate(c).to_json() + "\n").encode()
    return {revision_id(engine): out}


def throughput(work: Path, bodies: list[bytes], seconds: float) -> dict:
    script = work / "plain.lua"
    write_lua(script, bodies, expected=expected_verdicts(bodies))
    server = start("--workers", "2")
    try:
        wrk(url(server), script, min(5, seconds), 64)            # warm-up
        base = in_process(bodies, min(10, seconds))["rate"]
        result = wrk(url(server), script, seconds, 64)
        after = in_process(bodies, min(10, seconds))["rate"]
    finally:
        server.stop()
    single = (base + after) / 2
    return {**result, "in_process": single, "ratio": result["rps"] / (2 * single)}


def latency(work: Path, bodies: list[bytes], seconds: float) -> dict:
    """Without and with a decision log, in two rounds of half the time each, in the order plain,
    logged, logged, plain: a drift of the machine's speed during the run (one run of each swung the
    log's cost by ±2 points) weighs on both alike. Rates are over both rounds; p50 and p99 are the
    worse round's."""
    script = work / "plain.lua"
    write_lua(script, bodies, expected=expected_verdicts(bodies), unique=True)   # every request a new decision
    modes = {"plain": [], "logged": ["--decision-log", str(work / "latency-log.jsonl")]}
    runs: dict[str, list[dict]] = {name: [] for name in modes}
    for name in ("plain", "logged", "logged", "plain"):
        server = start("--workers", "1", *modes[name], cpus="0")
        try:
            wrk(url(server), script, min(5, seconds), 16, threads=1, cpus="1")
            runs[name].append(wrk(url(server), script, seconds / 2, 16, threads=1, cpus="1"))
        finally:
            server.stop()
    out: dict = {name: _rounds(done) for name, done in runs.items()}
    out["log_cost"] = 1 - out["logged"]["rps"] / out["plain"]["rps"]
    return out


def _rounds(done: list[dict]) -> dict:
    """wrk runs of one server setup as one: counts added, the rate over their time, the worse percentiles."""
    total = {key: sum(r[key] for r in done) for key in ("requests", "seconds", "mismatch", "checked",
                                                         "wrong_revision", "socket_errors", "timeouts")}
    statuses: dict[str, int] = {}
    for r in done:
        for status, n in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    return {**total, "statuses": statuses, "rps": total["requests"] / total["seconds"],
            "rounds_rps": [r["rps"] for r in done],
            **{key: max(r[key] for r in done) for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")}}


def spawn(bodies: list[bytes], count: int = 30) -> dict:
    work = Path(tempfile.mkdtemp(prefix="slarules-spawn-"))
    files = []
    for i, b in enumerate(bodies[:count]):
        f = work / f"{i}.json"
        f.write_bytes(b)
        files.append(f)
    subprocess.run([PY, "-m", "slarules", "adjudicate", str(files[0]), "--format", "json"], capture_output=True,
                   check=True)
    started = time.perf_counter()
    for f in files:
        subprocess.run([PY, "-m", "slarules", "adjudicate", str(f), "--format", "json"], capture_output=True,
                       check=True)
    spawned = (time.perf_counter() - started) / len(files)
    server = start("--workers", "1")
    try:
        conn = server.connection()
        for b in bodies[:count]:
            server.request("POST", "/v1/adjudicate", b, connection=conn)
        started = time.perf_counter()
        for b in bodies[:count]:
            status, _, _ = server.request("POST", "/v1/adjudicate", b, connection=conn)
            assert status == 200
        served = (time.perf_counter() - started) / count
        conn.close()
    finally:
        server.stop()
    shutil.rmtree(work, ignore_errors=True)
    return {"spawn_ms": spawned * 1000, "request_ms": served * 1000, "ratio": spawned / served}


def batch(work: Path, rows: int) -> dict:
    from generate import write
    source = work / "batch.jsonl"
    write(str(source), rows, 7, bad_rate=0.001)
    started = time.perf_counter()
    subprocess.run([PY, "-m", "slarules", "batch", str(source), "-o", str(work / "batch-out.jsonl"), "--fresh",
                    "--as-of", "2026-05-20T00:00:00+08:00"], check=True, capture_output=True)
    cli_seconds = time.perf_counter() - started
    server = start("--workers", "2")
    try:
        conn = server.connection(timeout=600)
        started = time.perf_counter()
        conn.putrequest("POST", "/v1/batch?as_of=2026-05-20T00:00:00%2B08:00")
        conn.putheader("Content-Type", "application/jsonl")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        out_lines = 0
        done = threading.Event()
        got: dict = {}

        def read() -> None:
            response = conn.getresponse()
            got["status"] = response.status
            got["lines"] = sum(1 for _ in iter(response.readline, b""))
            done.set()
        reader = threading.Thread(target=read)
        reader.start()
        with open(source, "rb") as f:
            while block := f.read(1 << 16):
                conn.send(b"%x\r\n" % len(block) + block + b"\r\n")
        conn.send(b"0\r\n\r\n")
        reader.join()
        server_seconds = time.perf_counter() - started
        out_lines = got.get("lines", 0)
        conn.close()
    finally:
        server.stop()
    return {"rows": rows, "cli_rows_s": rows / cli_seconds, "server_rows_s": rows / server_seconds,
            "ratio": cli_seconds / server_seconds, "lines_out": out_lines, "status": got.get("status")}


def _variant(packs: Path, suffix: str) -> None:
    path = packs / "taobao.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"^version: .*$", f"version: bench-{suffix}", text, count=1, flags=re.MULTILINE), encoding="utf-8")


def _revision(paths: list[str]) -> tuple[str, str]:
    from slarules.engine import Engine
    from slarules.serve.revision import revision_id
    engine = Engine.load(paths)
    return revision_id(engine), next(p.digest for p in engine.packs if p.name == "taobao")


def slow_senders(host: str, port: int, stop: threading.Event, count: int = 6) -> dict:
    """Clients that open a connection and trickle a byte a second: the server must cut them off."""
    closed = {"n": 0}

    def one() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection((host, port), timeout=30) as sock:
                    sock.sendall(b"POST /v1/adjudicate HTTP/1.1\r\n")
                    while not stop.is_set():
                        sock.sendall(b"X")
                        time.sleep(1)
            except OSError:
                closed["n"] += 1
    for _ in range(count):
        threading.Thread(target=one, daemon=True).start()
    return closed


def hostile(work: Path, bodies: list[bytes], seconds: float) -> dict:
    from slarules.engine import default_pack_dirs
    packs = work / "packs"
    shutil.rmtree(packs, ignore_errors=True)
    shutil.copytree(default_pack_dirs()[1], packs, ignore=shutil.ignore_patterns("*.test.yaml"))
    paths = [str(packs / "national"), str(packs)]
    _variant(packs, "b")
    rev_b, expected = _revision(paths), expected_verdicts(bodies, paths)
    _variant(packs, "a")
    rev_a = _revision(paths)
    expected.update(expected_verdicts(bodies, paths))
    log = work / "hostile-log.jsonl"
    ids = work / "hostile-ids.txt"
    script = work / "hostile.lua"
    write_lua(script, bodies, expected=expected, hostile=True, ids=ids,
              revisions=dict([rev_a, rev_b]))
    server = start("--workers", "2", "--packs", *paths, "--decision-log", str(log), "--limit", "case_bytes=64KiB",
                   "--header-timeout", "2")
    stop = threading.Event()
    out: dict = {}
    try:
        closed = slow_senders(server.host, server.port, stop)
        rss: dict[str, list[int]] = {}
        reloads = {"ok": 0, "refused": 0, "failed": 0}

        def during() -> None:
            time.sleep(seconds / 6)
            rss["warm"] = [rss_kib(p) for p in server.workers()]
            time.sleep(seconds / 3)            # the first half: hostile load only (RSS must stay flat)
            rss["half"] = [rss_kib(p) for p in server.workers()]
            for i in range(10):                # ten reloads between the two pack sets, one broken set among them
                _variant(packs, "b" if i % 2 == 0 else "a")
                status, _, _ = server.request("POST", "/v1/packs/reload")
                reloads["ok" if status == 200 else "failed"] += 1
                time.sleep(seconds / 50)
                if i == 4:
                    good = (packs / "taobao.yaml").read_text(encoding="utf-8")
                    (packs / "taobao.yaml").write_text(good + "\nrules: [\n", encoding="utf-8")
                    status, _, _ = server.request("POST", "/v1/packs/reload")
                    reloads["refused" if status == 422 else "failed"] += 1
                    (packs / "taobao.yaml").write_text(good, encoding="utf-8")
            # a worker killed with -9: how long until its replacement answers
            victim = server.workers()[0]
            mark = len(server.lines)
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            found = server.wait_for(r"started worker (\d+)", 30, after=mark)
            new = int(found.group(1)) if found else -1
            while time.monotonic() - killed < 30:
                try:
                    status, _, body = server.request("GET", "/healthz")
                    if json.loads(body)["worker"] == new:
                        out["replaced_in_s"] = time.monotonic() - killed
                        break
                except OSError:
                    pass
                time.sleep(0.01)
            time.sleep(2)
            rss["end"] = [rss_kib(p) for p in server.workers()]
        t = threading.Thread(target=during)
        t.start()
        result = wrk(url(server), script, seconds, 64)
        t.join()
        out.update(result)
        out["rss_warm_kib"], out["rss_half_kib"], out["rss_end_kib"] = rss.get("warm"), rss.get("half"), rss.get("end")
        out["reloads"] = reloads
        out["slow_senders_cut"] = closed["n"]
    finally:
        stop.set()
        server.stop()
    logged = {json.loads(line)["id"] for line in log.read_bytes().splitlines()}
    answered = [line for line in ids.read_text().splitlines() if line]
    out["answered_200"] = len(answered)
    out["without_record"] = sum(1 for i in answered if i not in logged)
    out["revision_ids"] = {rev_a[0]: "a", rev_b[0]: "b"}
    return out


STACK_APPS = '''
import json
from slarules import Engine
from slarules.case.sources import json_data
ENGINE = Engine.default()
def work(body):
    return (ENGINE.adjudicate(json_data(body.decode(), "<b>")).to_json() + "\\n").encode()
work(b'{"waybill": "WARM"}')

async def bare(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    out = work(body)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]})
    await send({"type": "http.response.body", "body": out})

try:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def _adjudicate(request):
        return Response(work(await request.body()), media_type="application/json")
    starlette = Starlette(routes=[Route("/v1/adjudicate", _adjudicate, methods=["POST"])])
except ImportError:
    pass

class _Rsgi:
    async def __rsgi__(self, scope, proto):
        proto.response_bytes(200, [("content-type", "application/json")], work(await proto()))
rsgi = _Rsgi()
'''


def stacks(work: Path, bodies: list[bytes], seconds: float) -> dict:
    import importlib.util
    (work / "stack_apps.py").write_text(STACK_APPS)
    script = work / "plain.lua"
    write_lua(script, bodies)
    port = 18000 + random.randrange(1000)
    uv = [PY, "-m", "uvicorn", "--port", str(port), "--workers", "2", "--no-access-log", "--log-level", "warning"]
    contenders = {"bare ASGI, uvicorn h11 + asyncio": [*uv, "--http", "h11", "--loop", "asyncio", "stack_apps:bare"],
                  "bare ASGI, uvicorn httptools + uvloop": [*uv, "--http", "httptools", "--loop", "uvloop",
                                                            "stack_apps:bare"]}
    if importlib.util.find_spec("starlette"):
        contenders["Starlette, uvicorn httptools + uvloop"] = [*uv, "--http", "httptools", "--loop", "uvloop",
                                                               "stack_apps:starlette"]
    if importlib.util.find_spec("granian"):
        gr = [PY, "-m", "granian", "--port", str(port), "--workers", "2", "--log-level", "warning"]
        contenders["granian ASGI"] = [*gr, "--interface", "asgi", "stack_apps:bare"]
        contenders["granian RSGI"] = [*gr, "--interface", "rsgi", "stack_apps:rsgi"]
    out: dict = {}
    for round_ in range(2):              # interleaved, twice: the machine's load moves
        for name, cmd in contenders.items():
            proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                _wait_port(port)
                wrk(f"http://127.0.0.1:{port}", script, 3, 64)
                out.setdefault(name, []).append(wrk(f"http://127.0.0.1:{port}", script, seconds, 64)["rps"])
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    server = start("--workers", "2")
    try:
        out["slarules serve (this)"] = [wrk(url(server), script, seconds, 64)["rps"]]
    finally:
        server.stop()
    single = in_process(bodies, min(10, seconds))["rate"]
    return {name: {"rps": sum(v) / len(v), "ratio": sum(v) / len(v) / (2 * single)} for name, v in out.items()}


def _wait_port(port: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60, help="each wrk run (default 60)")
    ap.add_argument("--batch-rows", dest="batch_rows", type=int, default=200_000)
    ap.add_argument("--only", help="comma-separated: throughput,latency,spawn,batch,hostile")
    ap.add_argument("--stacks", action="store_true", help="also measure the ASGI stacks considered")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    only = set(a.only.split(",")) if a.only else {"throughput", "latency", "spawn", "batch", "hostile"}
    bodies = mix()
    print(f"load average before: {loadavg()} ({os.cpu_count()} cores); wrk runs of {a.seconds:g} s\n")
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="slarules-serve-bench-") as tmp:
        work = Path(tmp)
        for name, run in (("throughput", lambda: throughput(work, bodies, a.seconds)),
                          ("latency", lambda: latency(work, bodies, a.seconds)),
                          ("spawn", lambda: spawn(bodies)),
                          ("batch", lambda: batch(work, a.batch_rows)),
                          ("hostile", lambda: hostile(work, bodies, a.seconds))):
            if name in only:
                results[name] = run()
                results[name]["load_after"] = loadavg()
                print(f"{name}: {json.dumps(results[name], default=str)}", file=sys.stderr)
        if a.stacks:
            results["stacks"] = stacks(work, bodies, min(a.seconds, 15))
    report(results)
    return 0


def report(r: dict) -> None:
    print("| measured | figure | target |")
    print("|---|---|---|")
    if "throughput" in r:
        t = r["throughput"]
        print(f"| throughput, 2 workers, 64 connections | {t['rps']:,.0f} req/s = **{t['ratio']:.2f}** x (2 x "
              f"{t['in_process']:,.0f} in-process adjudications/s); {t['mismatch']} of {t['checked']:,} verdicts "
              f"differ | >= 0.35 |")
    if "latency" in r:
        p, g = r["latency"]["plain"], r["latency"]["logged"]
        print(f"| latency, 1 worker, 16 connections, wrk on the other core | p50 {p['p50_ms']:.1f} ms, "
              f"**p99 {p['p99_ms']:.1f} ms** ({p['rps']:,.0f} req/s) | p99 <= 12 ms |")
        print(f"| the same with --decision-log | p50 {g['p50_ms']:.1f} ms, **p99 {g['p99_ms']:.1f} ms**, "
              f"{g['rps']:,.0f} req/s: **{r['latency']['log_cost'] * 100:.1f} %** lower (rounds: plain "
              f"{', '.join(f'{x:,.0f}' for x in p['rounds_rps'])}; logged "
              f"{', '.join(f'{x:,.0f}' for x in g['rounds_rps'])} req/s) | p99 <= 20 ms, <= 15 % |")
    if "spawn" in r:
        s = r["spawn"]
        print(f"| against spawning `slarules adjudicate` per case | spawn {s['spawn_ms']:.0f} ms, request "
              f"{s['request_ms']:.1f} ms: **{s['ratio']:.0f}x** | |")
    if "batch" in r:
        b = r["batch"]
        print(f"| /v1/batch, {b['rows']:,} rows | {b['server_rows_s']:,.0f} rows/s against slarules batch "
              f"{b['cli_rows_s']:,.0f}: **{b['ratio']:.2f}** x | >= 0.7 |")
    if "hostile" in r:
        h = r["hostile"]
        fivexx = sum(v for k, v in h["statuses"].items() if k.startswith("5"))
        print(f"| 64 connections, 10 % hostile + 6 slow senders | {h['requests']:,} requests: **{fivexx} 5xx**, "
              f"**{h['mismatch']}** of {h['checked']:,} verdicts differ; worker RSS after warm-up {h['rss_warm_kib']} "
              f"KiB, at half-time {h['rss_half_kib']} KiB, at the end (after the reloads and a replaced worker) "
              f"{h['rss_end_kib']} KiB | 0, 0, flat |")
        print(f"| ten reloads (and a broken one) during it | reloads {h['reloads']}; revisions served "
              f"{h['revisions']}; **{h['wrong_revision']}** verdicts whose packs are not their revision's | 0 |")
        print(f"| kill -9 of a worker during it | replacement answering after **{h.get('replaced_in_s', -1):.2f} s**; "
              f"{h['answered_200']:,} 200s, **{h['without_record']}** without a decision-log record | 2 s, 0 |")
    if "stacks" in r:
        print("\n| stack (2 workers, 64 connections, same work) | req/s | x (2 x in-process) |")
        print("|---|---:|---:|")
        for name, v in r["stacks"].items():
            print(f"| {name} | {v['rps']:,.0f} | {v['ratio']:.2f} |")
    print(f"\nload average after: {loadavg()}")


if __name__ == "__main__":
    sys.exit(main())
