"""Each class of hostile input through the CLI: exit code, message, wall time, peak memory.

    python benchmarks/hostile.py [--cli .venv/bin/slarules] [--cli OTHER/.venv/bin/slarules]

With two `--cli`, both run every input in the same run (a worktree of the
previous commit beside this one gives before and after). Nothing is asserted:
the tests do that; this prints the figures a closing note quotes.
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
        *_money(tmp),
    ]


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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cli", action="append", help="a slarules executable (repeat to compare)")
    p.add_argument("--only", help="run only inputs whose label contains this")
    args = p.parse_args()
    clis = args.cli or [str(ROOT / ".venv" / "bin" / "slarules")]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for label, argv, count in inputs(tmp):
            if args.only and args.only not in label:
                continue
            for cli in clis:
                before = count.read_bytes().count(b"\n") if count else None
                # a fresh child each time, so RUSAGE_CHILDREN's peak is this run's: run via a shell helper
                code, first, seconds, peak = _isolated(cli, argv)
                after = count.read_bytes().count(b"\n") if count else None
                if label in SHOWN:
                    first += f" [{_shown(*SHOWN[label])}]"
                for leftover in tmp.glob("*.out*"):
                    leftover.unlink() if leftover.is_file() else None
                if count:
                    first += f" [input lines {before} -> {after}]"
                rows.append((label, cli, code, seconds, peak, first))
    for label, cli, code, seconds, peak, first in rows:
        who = "" if len(clis) == 1 else f" [{Path(cli).parent.parent.parent.name}]"
        print(f"{label}{who}: exit {code}, {seconds:.2f} s, {peak:.0f} MiB: {first[:160]}")
    return 0


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


def _isolated(cli: str, argv: list[str]) -> tuple[int, str, float, float]:
    """Run in a grandchild so the peak RSS is this command's alone."""
    probe = ("import json,sys,subprocess,time,resource;"
             "t=time.perf_counter();p=subprocess.run(sys.argv[1:],capture_output=True);"
             "s=time.perf_counter()-t;"
             "m=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024;"
             "e=(p.stderr or p.stdout).decode('utf-8','replace').strip().splitlines();"
             "print(json.dumps([p.returncode,e[0] if e else '',s,m]))")
    done = subprocess.run([sys.executable, "-c", probe, cli, *argv], capture_output=True, text=True)
    code, first, seconds, peak = json.loads(done.stdout)
    return code, first, seconds, peak


if __name__ == "__main__":
    sys.exit(main())
