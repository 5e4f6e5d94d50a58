"""The clients that are not Python (examples/clients) against a live `slarules serve` with a token file:
what each prints is, byte for byte, what `slarules adjudicate --format json` prints for the same files.
So is the README's curl line. A client is skipped only where its runtime is missing here
(.ci/run installs both).

Java's HttpClient offers every request an upgrade to cleartext HTTP/2 (`Upgrade: h2c`), which the
server declines while still reading the body (slarules/serve/upgrade.py); the raw exchanges below
pin that down for any client, keep-alive and bodies split across packets included.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ROOT
from serving import Server

TOKEN = "clients-test-token-0123456789"
CLIENTS = ROOT / "examples" / "clients"
CASES = ["tb1-late.yaml", "tb4-unsigned-sender-lost.yaml", "uc2-out-of-time.yaml"]
AS_OF = "2026-05-09T10:00:00+08:00"


def java_missing() -> str | None:
    if shutil.which("java") is None:
        return "java is missing (.ci/run installs Debian's JDK)"
    modules = subprocess.run(["java", "--list-modules"], capture_output=True, check=False, text=True).stdout
    if "jdk.compiler" not in modules:
        return "this java cannot run a source file (no jdk.compiler: install a JDK, as .ci/run does)"
    return None


def node_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is missing (.ci/run installs Debian's)"
    major = subprocess.run(["node", "-p", "process.versions.node.split('.')[0]"], capture_output=True, check=False, text=True)
    return None if int(major.stdout.strip() or 0) >= 18 else "node older than 18 has no fetch"


RUNTIMES = {"java": (["java", str(CLIENTS / "Client.java")], java_missing),
            "node": (["node", str(CLIENTS / "client.mjs")], node_missing)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clients")
    (folder / "tokens").write_text(f"# the clients' tests\n{TOKEN}\n")
    case = yaml.safe_load((EXAMPLES / "tb9-short-contents.yaml").read_text(encoding="utf-8"))
    (folder / "short.json").write_text(json.dumps(case, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / "bad.yaml").write_text("waybill: BX1\nproduct: taobao\nparcel:\n  weight_kg: heavy\n")
    return folder


@pytest.fixture(scope="module")
def server(folder: Path) -> Any:
    with Server("--token-file", str(folder / "tokens")) as running:
        yield running


def files(folder: Path) -> list[str]:
    return [*(str(EXAMPLES / name) for name in CASES), str(folder / "short.json")]


def cli(*args: str) -> bytes:
    """What `slarules adjudicate ARGS --format json` prints (its main(), in this process: no spawn per case)."""
    from slarules.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["adjudicate", *args, "--format", "json"]) == 0
    return out.getvalue().encode("utf-8")


@pytest.fixture(scope="module")
def expected(folder: Path) -> dict[str, bytes]:
    """`slarules adjudicate --format json` of every file, as is and in English as of AS_OF."""
    return {"plain": b"".join(cli(f) for f in files(folder)),
            "en": b"".join(cli(f, "--lang", "en", "--as-of", AS_OF) for f in files(folder))}


def url(server: Server) -> str:
    return f"http://{server.host}:{server.port}"


def run(runtime: str, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[bytes]:
    command, missing = RUNTIMES[runtime]
    why = missing()
    if why:
        pytest.skip(why)
    env = {k: v for k, v in os.environ.items() if k != "SLARULES_TOKEN"}
    if token is not None:
        env["SLARULES_TOKEN"] = token
    return subprocess.run([*command, *args], capture_output=True, check=False, env=env, timeout=300)


@pytest.mark.parametrize("runtime", list(RUNTIMES))
def test_a_client_prints_the_cli_verdict_bytes(runtime: str, server: Server, folder: Path,
                                              expected: dict[str, bytes]) -> None:
    done = run(runtime, "--lang", "en", "--as-of", AS_OF, url(server) + "/", *files(folder))
    assert (done.returncode, done.stderr, done.stdout) == (0, b"", expected["en"])
    # and a refused case among good ones: their verdicts, its located error on stderr, exit 2
    done = run(runtime, url(server), *files(folder), str(folder / "bad.yaml"))
    assert (done.returncode, done.stdout) == (2, expected["plain"])
    said = done.stderr.decode()
    assert said.startswith(f"{folder / 'bad.yaml'}: HTTP 422 ")
    error = json.loads(said.split(" ", 3)[3])["error"]
    assert (error["field"], error["line"], error["column"]) == ("parcel.weight_kg", 4, 3)


@pytest.mark.parametrize("runtime", list(RUNTIMES))
def test_a_client_says_why_a_request_is_refused(runtime: str, server: Server, folder: Path) -> None:
    done = run(runtime, url(server), str(EXAMPLES / CASES[0]), str(folder / "no-such-case.yaml"), token=None)
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode().startswith(f"{EXAMPLES / CASES[0]}: HTTP 401 ") and b"no such file" in done.stderr


def test_the_readme_curl_line(server: Server, folder: Path, tmp_path: Path) -> None:
    """Run as written, from a folder holding `tokens` and `examples/`, against this server's port."""
    if shutil.which("curl") is None:
        pytest.skip("curl is missing")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Serve", 1)[1].split("\n## ", 1)[0]
    line = re.search(r"^curl .*?(?<!\\)\n", section, re.DOTALL | re.MULTILINE)
    assert line, "the README's Serve section has no curl line"
    command = line.group(0).replace("\\\n", " ").replace("127.0.0.1:8080", f"{server.host}:{server.port}")
    (tmp_path / "tokens").write_text(f"{TOKEN}\n")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, check=False, timeout=60)
    example = re.search(r"@(\S+)", command)
    lang = re.search(r"lang=(\w+)", command)
    assert example and lang
    assert done.stdout == cli(str(ROOT / example.group(1)), "--lang", lang.group(1))


# ---- a request that offers an upgrade the server does not make ---------------------------------

def _exchange(server: Server, *parts: bytes, answers: int = 1) -> list[tuple[int, bytes]]:
    """Send `parts` on one connection (a moment apart: separate packets), read `answers` responses."""
    with socket.create_connection((server.host, server.port), timeout=60) as sock:
        for part in parts:
            sock.sendall(part)
            time.sleep(0.05)
        reader = sock.makefile("rb")
        out = []
        for _ in range(answers):
            status = int(reader.readline().split()[1])
            length = 0
            while (header := reader.readline()) not in (b"\r\n", b""):
                name, _, value = header.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            out.append((status, reader.read(length)))
        return out


def _post(body: bytes, *headers: bytes) -> bytes:
    return (b"POST /v1/adjudicate HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            b"HTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA\r\nContent-Type: application/yaml\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n")


def test_an_upgrade_offer_is_declined_and_the_body_still_read(server: Server) -> None:
    first, second = (EXAMPLES / CASES[0]).read_bytes(), (EXAMPLES / CASES[1]).read_bytes()
    head = _post(first, b"Content-Length: %d" % len(first))
    answers = _exchange(server, head + first[:100], first[100:],                 # the body in two packets
                        _post(second, b"Content-Length: %d" % len(second)) + second,   # then the next request
                        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", answers=4)  # no body, and one behind it
    assert [status for status, _ in answers] == [200, 200, 200, 200]
    assert answers[0][1] == cli(str(EXAMPLES / CASES[0])) and answers[1][1] == cli(str(EXAMPLES / CASES[1]))


def test_a_chunked_body_with_an_upgrade_offer_is_refused(server: Server) -> None:
    body = (EXAMPLES / CASES[0]).read_bytes()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    [(status, said)] = _exchange(server, _post(body, b"Transfer-Encoding: chunked") + chunked)
    assert status == 400 and b"Content-Length" in said
