"""Each class of hostile input through the CLI: exit code, message, wall time, peak memory.

    python benchmarks/hostile.py [--cli .venv/bin/slarules] [--cli OTHER/.venv/bin/slarules]

With two `--cli`, both run every input in the same run (a worktree of the
previous commit beside this one gives before and after). Nothing is asserted:
the tests do that; this prints the figures a closing note quotes. Each run is
capped (`--timeout`, `--memory`): a build that reads /dev/zero to the end is
stopped at the cap and reported so, not left to take the machine with it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cases" / "tb1-late.yaml"
SCAN = {"type": "arrival", "station": "BT-03", "at": "2026-05-02T11:40:00+08:00"}


def _case(**changes) -> dict:
    case = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = case
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        target[int(last) if last.isdigit() else last] = value
    return case


def _write(path: Path, case: dict) -> str:
    path.write_text(json.dumps(case, ensure_ascii=False), encoding="utf-8")
    return str(path)


def _jsonl(path: Path, lines: list[bytes]) -> str:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return str(path)


def inputs(tmp: Path) -> list[tuple[str, list[str], Path | None]]:
    """(label, arguments after the CLI, a file whose lines to count afterwards or None)."""
    good = json.dumps(_case(as_of="2026-05-04T09:00:00+08:00")).encode()
    lines = [json.dumps(_case(waybill=f"BX{i:08d}")).encode() for i in range(2000)]
    poisoned = list(lines)
    poisoned[700] = json.dumps(_case(waybill="BX-Y9999", scans__2__at="9999-12-31T23:59:59+08:00")).encode()
    poisoned[1300] = b"\xef\xbb\xbf" + lines[1300]
    big = _case(scans=[SCAN] * 100_000)
    bigger = _case(scans=[SCAN] * 200_000)
    surrogate = list(lines)          # issue 21 (4): an escaped lone surrogate is valid JSON
    surrogate[500] = lines[500].replace(b'"BX00000500"', b'"BX\\ud800"')
    new_york = _case(timezone="America/New_York", as_of="2026-05-04T09:00:00-04:00", scans__2__at="2026-03-08T02:30:00")
    return [
        ("arrival scan at year 9999", ["adjudicate", _write(tmp / "y9999.json", _case(scans__2__at="9999-12-31T23:59:59+08:00"))], None),
        ("scan at year 0001", ["adjudicate", _write(tmp / "y1.json", _case(scans__0__at="0001-01-01T00:00:00+08:00"))], None),
        ("as_of year 9999", ["adjudicate", _write(tmp / "asof.json", _case(as_of="9999-12-31T23:59:59+00:00"))], None),
        ("--as-of 0001-01-01T00:00:00+00:00", ["adjudicate", str(EXAMPLE), "--format", "json",
                                               "--as-of", "0001-01-01T00:00:00+00:00"], None),
        ("batch: 2,000 lines, year 9999 at 701, BOM at 1301", ["batch", _jsonl(tmp / "poison.jsonl", poisoned),
                                                              "-o", str(tmp / "poison.out.jsonl")], None),
        ("batch --errors INPUT (500 lines)", ["batch", _jsonl(tmp / "same.jsonl", lines[:500]), "-o",
                                              str(tmp / "same.out.jsonl"), "--errors", str(tmp / "same.jsonl")],
         tmp / "same.jsonl"),
        ("case with 100,000 scans (7.6 MB)", ["adjudicate", _write(tmp / "big.json", big)], None),
        ("case with 100,000 scans, size limit raised to 16 MiB", ["adjudicate", str(tmp / "big.json"),
                                                                  "--limit", "case_bytes=16MiB"], None),
        ("case with 200,000 scans (15.2 MB)", ["adjudicate", _write(tmp / "bigger.json", bigger)], None),
        ('"sender_signed": "no"', ["adjudicate", _write(tmp / "no.json", _case(collection__sender_signed="no"))], None),
        ("quoted_cny 1e-400", ["adjudicate", _bytes(tmp / "tiny.json",
                                                    good.replace(b'"12.00"', b"1e-400", 1))], None),
        ("BOM, adjudicate", ["adjudicate", _bytes(tmp / "bom.json", b"\xef\xbb\xbf" + good)], None),
        ("BOM on line 1, batch", ["batch", _jsonl(tmp / "bom.jsonl", [b"\xef\xbb\xbf" + good, good]),
                                  "-o", str(tmp / "bom.out.jsonl")], None),
        ("NaN weight", ["adjudicate", _bytes(tmp / "nan.json", good.replace(b'"weight_kg": 8.5', b'"weight_kg": NaN'))],
         None),
        ('batch: 2,000 lines, waybill "BX\\ud800" at 501', ["batch", _jsonl(tmp / "sur.jsonl", surrogate),
                                                          "-o", str(tmp / "sur.out.jsonl")], None),
        ("unknown key with a lone surrogate", ["adjudicate", _bytes(tmp / "surkey.json",
                                                                    good[:-1] + b', "k\\udc00": 1}')], None),
        ("timezone: localtime", ["adjudicate", _write(tmp / "local.json", _case(
            timezone="localtime", as_of="2026-05-04T09:00:00")), "--format", "json"], None),
        ("unknown key ESC ] 0 ; ... BEL ESC [2J CR", ["adjudicate", _write(tmp / "esc.json", {
            **json.loads(good), "\x1b]0;owned\x07\x1b[2J\rkey": 1})], None),
        ("unknown key of 1,000,000 characters", ["adjudicate", _write(tmp / "longkey.json", {
            **json.loads(good), "k" * 1_000_000: 1}), "--limit", "case_bytes=4MiB"], None),
        ("batch: a waybill of 10,000,000 characters", ["batch", _jsonl(tmp / "longwb.jsonl", [
            json.dumps(_case(waybill="W" * 10_000_000)).encode(), good]), "-o", str(tmp / "longwb.out.jsonl"),
            "--limit", "case_bytes=16MiB"], tmp / "longwb.out.errors.jsonl"),
        ("naive scan in a DST gap (2026-03-08T02:30 New York)", ["adjudicate", _write(tmp / "gap.json", new_york)],
         None),
        *_money(tmp),
        # outputs that cannot be written: refused before the 20,000 rows are read (issue 21, item 7)
        ("batch --statement AN_EXISTING_FILE (20,000 lines)", ["batch", _jsonl(tmp / "many.jsonl", lines * 10), "-o",
                                                               str(tmp / "st.out.jsonl"), "--statement",
                                                               _bytes(tmp / "a-file", b"x")], None),
        ("batch --errors A_FOLDER (20,000 lines)", ["batch", str(tmp / "many.jsonl"), "-o", str(tmp / "e.out.jsonl"),
                                                    "--errors", _folder(tmp / "a-folder")], None),
        ("batch --decision-log A_FOLDER (20,000 lines)", ["batch", str(tmp / "many.jsonl"), "-o",
                                                          str(tmp / "d.out.jsonl"), "--decision-log",
                                                          str(tmp / "a-folder")], None),
        ("batch --workers 500 on 500 lines", ["batch", _jsonl(tmp / "five.jsonl", lines[:500]), "-o",
                                              str(tmp / "w.out.jsonl"), "--workers", "500"], None),
        ("diff -o under a regular file", ["diff", str(tmp / "five.jsonl"), "--base", str(ROOT / "rules"), "--head",
                                          str(ROOT / "rules"), "-o", str(tmp / "a-file" / "diff")], None),
    ]


def _folder(path: Path) -> str:
    path.mkdir(exist_ok=True)
    return str(path)


# Money past 64 bits of fen: the figure each build writes is shown after its exit (slarules/money.py's bounds).
SHOWN: dict[str, tuple[Path, str]] = {}
OVERCHARGED = ROOT / "examples" / "cases" / "tb5-overcharge.yaml"


def _money(tmp: Path) -> list[tuple[str, list[str], Path | None]]:
    refund = yaml.safe_load(OVERCHARGED.read_text(encoding="utf-8"))
    refund["collection"].update(charged_cny="999999999999.99", quoted_cny="0.00")
    refunds = _jsonl(tmp / "refunds.jsonl", [json.dumps({**refund, "waybill": f"BX{i:08d}"}).encode()
                                             for i in range(100_000)])
    packs = tmp / "fines"
    packs.mkdir()
    (packs / "fines.yaml").write_text("pack: fines\nversion: '1'\nparameters:\n  fine: {type: money, value: "
                                      "'999999999999999.99'}\nrules:\n" + "".join(
                                          f"  - {{id: fines.f{i}, clause: TB-5, "
                                          "scope: [{fact: collection, exists: true}], "
                                          "then: {kind: fine, party: sending_station, fine_cny: {param: fine}}, "
                                          "message: {zh: x, en: x}}\n" for i in range(100)), encoding="utf-8")
    fines = _jsonl(tmp / "fines.jsonl", [json.dumps(_case(waybill=f"BX{i:08d}")).encode() for i in range(3)])
    out = []
    for backend in ("polars", "durable"):
        label = f"batch --backend {backend}: 100,000 TB-5 refunds of 999,999,999,999.99, one chunk"
        SHOWN[label] = (tmp / f"refunds-{backend}.out" / "stations.csv", "HHHT-01,")
        out.append((label, ["batch", refunds, "-o", str(tmp / f"refunds-{backend}.out.jsonl"), "--backend", backend,
                            "--chunk-size", "100000", "--statement", str(tmp / f"refunds-{backend}.out")], None))
        label = f"batch --backend {backend}: 100 fines of 999,999,999,999,999.99 a case, 3 cases"
        SHOWN[label] = (tmp / f"fines-{backend}.out.jsonl", "")      # no verdict: its errors' first line
        out.append((label, ["batch", fines, "-o", str(tmp / f"fines-{backend}.out.jsonl"), "--backend", backend,
                            "--packs", str(packs), "--no-progress"], None))
    return out


def _bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def read_inputs(tmp: Path) -> list[tuple[str, list[str], Path | None]]:
    """Bounded reads: files that are not regular files, and cases whose refusal once cost more than
    reading them. An argument `<PATH` is standard input, as a shell would give it."""
    fifo = tmp / "fifo.json"
    os.mkfifo(fifo)
    os.open(fifo, os.O_RDWR | os.O_NONBLOCK)       # a writer that never writes, open for the whole run
    (tmp / "log.jsonl").write_bytes(b"")
    case = _case(as_of="2026-05-04T09:00:00+08:00")
    unknown = dict(case, **{f"{i:x}": 1 for i in range(90_000)})           # just under 1 MiB, compact
    issues = dict(case, complaint={"kind": "complaint", "issues": ["delay"] * 5_000_000})
    flow = yaml.safe_dump(case, default_flow_style=True, width=1 << 20)
    good = json.dumps(case)
    repeated = good.replace('"waybill": ', '"waybill": "X", "waybill": ', 1)
    return [
        ("adjudicate /dev/zero", ["adjudicate", "/dev/zero"], None),
        ("adjudicate /dev/urandom", ["adjudicate", "/dev/urandom"], None),
        ("adjudicate FIFO, its writer silent", ["adjudicate", str(fifo)], None),
        ("adjudicate - < /dev/zero", ["adjudicate", "-", "</dev/zero"], None),
        ("explain /dev/zero", ["explain", "/dev/zero"], None),
        ("replay /dev/zero", ["replay", "/dev/zero"], None),
        ("check /dev/zero", ["check", "/dev/zero", "--no-analysis"], None),
        ("adjudicate --packs /dev/zero", ["adjudicate", str(EXAMPLE), "--packs", "/dev/zero"], None),
        ("batch FIFO", ["batch", str(fifo), "-o", str(tmp / "fifo.out.jsonl"), "--input-format", "jsonl"], None),
        ("1 MiB case, 90,000 unknown keys", ["adjudicate", _bytes(tmp / "unknown.json", json.dumps(
            unknown, separators=(",", ":")).encode())], None),
        ("5,000,000 complaint issues, case_bytes=256MiB", ["adjudicate", _write(tmp / "issues.json", issues),
                                                           "--limit", "case_bytes=256MiB"], None),
        ("YAML flow style in a .yaml", ["adjudicate", _bytes(tmp / "flow.yaml", flow.encode())], None),
        ("repeated JSON key", ["adjudicate", _bytes(tmp / "repeated.json", repeated.encode())], None),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cli", action="append", help="a slarules executable (repeat to compare)")
    p.add_argument("--only", help="run only inputs whose label contains this")
    p.add_argument("--timeout", type=float, default=120, help="seconds before a run is stopped (default 120)")
    p.add_argument("--memory", type=float, default=4, help="GiB of address space a run may have (default 4)")
    args = p.parse_args()
    clis = args.cli or [str(ROOT / ".venv" / "bin" / "slarules")]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for label, argv, count in [*inputs(tmp), *read_inputs(tmp)]:
            if args.only and args.only not in label:
                continue
            for cli in clis:
                before = count.read_bytes().count(b"\n") if count and count.exists() else None
                # a fresh child each time, so RUSAGE_CHILDREN's peak is this run's: run via a shell helper
                code, first, seconds, peak = _isolated(cli, argv, args.timeout, int(args.memory * (1 << 30)))
                after = count.read_bytes() if count and count.exists() else b""
                if label in SHOWN:
                    first += f" [{_shown(*SHOWN[label])}]"
                if count:
                    lines_after = after.count(b"\n")
                    first += f" [{count.name}: lines {before} -> {lines_after}, {len(after):,} bytes]"
                for leftover in tmp.glob("*.out*"):
                    leftover.unlink() if leftover.is_file() else None
                rows.append((label, cli, code, seconds, peak, first))
    for label, cli, code, seconds, peak, first in rows:
        who = "" if len(clis) == 1 else f" [{Path(cli).parent.parent.parent.name or cli}]"
        print(f"{label}{who}: exit {code}, {seconds:.2f} s, {peak:.0f} MiB: {_visible(first)[:300]}")
    return 0


def _visible(text: str) -> str:
    """What a build printed, its control characters shown (an old build echoed them raw)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _shown(path: Path, prefix: str) -> str:
    """The first line of `path` that starts with `prefix`: a verdict's fines, a station's settlement."""
    if not path.is_file():
        return f"no {path.name}"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(prefix):
            if line.startswith("{"):
                return "fines_cny " + json.dumps(json.loads(line)["fines_cny"])
            return line
    errors = path.with_name(path.name.replace(".jsonl", ".errors.jsonl"))
    if errors.is_file() and errors.read_text(encoding="utf-8").strip():
        first = json.loads(errors.read_text(encoding="utf-8").splitlines()[0])
        return f"error record: field {first['field']}, {first['message']}"
    return f"{path.name}: none"


def _isolated(cli: str, argv: list[str], timeout: float, memory: int) -> tuple[int | str, str, float, float]:
    """Run in a grandchild so the peak RSS is this command's alone; stopped at `timeout` seconds or
    `memory` bytes of address space (the exit code then says which). `<PATH` in argv is stdin."""
    stdin = next((a[1:] for a in argv if a.startswith("<")), None)
    argv = [a for a in argv if not a.startswith("<")]
    probe = ("import json,sys,subprocess,time,resource\n"
             "timeout,memory,stdin=float(sys.argv[1]),int(sys.argv[2]),sys.argv[3]\n"
             "cap=lambda: resource.setrlimit(resource.RLIMIT_AS,(memory,memory))\n"
             "t=time.perf_counter()\n"
             "with open(stdin or '/dev/null','rb') as i:\n"
             " try:\n"
             "  p=subprocess.run(sys.argv[4:],stdin=i,capture_output=True,timeout=timeout,preexec_fn=cap)\n"
             "  code,out=p.returncode,p.stderr or p.stdout\n"
             "  if code<0 or b'MemoryError' in out: code,out=f'killed ({-code if code<0 else \"MemoryError\"})',out\n"
             " except subprocess.TimeoutExpired as x: code,out=f'stopped after {timeout:g} s',x.stderr or b''\n"
             "s=time.perf_counter()-t\n"
             "m=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024\n"
             "e=out.decode('utf-8','replace').strip().splitlines()\n"
             "print(json.dumps([code,f'{len(out):,} bytes printed: '+((e[-1] if b'Traceback' in out else e[0]) if e else ''),s,m]))")
    done = subprocess.run([sys.executable, "-c", probe, str(timeout), str(memory), stdin or "", cli, *argv],
                          capture_output=True, text=True)
    code, first, seconds, peak = json.loads(done.stdout)
    return code, first, seconds, peak


if __name__ == "__main__":
    sys.exit(main())
