"""Two `slarules batch` runs on one `-o`, the second started while the first is at work (issue 21, item 1).

    python benchmarks/two_runs.py [--cli .venv/bin/slarules] [--rows 40000] [--after 1.5]

Prints each run's exit and first line, and what the verdicts file holds afterwards: lines, torn
lines, waybills twice, waybills missing. Nothing is asserted: tests/test_writer.py does that.
"""
from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import write as generate  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cli", default=str(ROOT / ".venv" / "bin" / "slarules"))
    p.add_argument("--rows", type=int, default=40_000)
    p.add_argument("--after", type=float, default=1.5, help="seconds between the two starts")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        generate(str(tmp / "cases.jsonl"), args.rows, seed=1)
        out = tmp / "v.jsonl"
        argv = [args.cli, "batch", str(tmp / "cases.jsonl"), "-o", str(out), "--as-of", "2026-05-20T00:00:00+08:00",
                "--chunk-size", "2000", "--workers", "1"]
        first = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        time.sleep(args.after)
        started = time.perf_counter()
        second = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        second_err = second.communicate()[1]
        seconds = time.perf_counter() - started
        first_err = first.communicate()[1]
        torn, seen = 0, collections.Counter()
        for line in out.read_bytes().splitlines() if out.exists() else []:
            try:
                seen[json.loads(line)["waybill"]] += 1
            except (ValueError, KeyError):
                torn += 1
    print(f"first: exit {first.returncode}: {first_err.strip().splitlines()[0][:160]}")
    print(f"second: exit {second.returncode} after {seconds:.1f} s: {second_err.strip().splitlines()[0][:160]}")
    print(f"verdicts file: {sum(seen.values()) + torn:,} lines, {torn:,} torn, "
          f"{sum(1 for n in seen.values() if n > 1):,} waybills twice, {args.rows - len(seen):,} missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
