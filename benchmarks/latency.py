"""Single-case latency in process and `slarules adjudicate` wall time.

Prints figures with a baseline measured in the same run:
- in process: Engine.adjudicate(dict) (validation included) against Case
  validation alone, over every shipped example case;
- CLI: `slarules adjudicate` wall time against a bare `python -c pass`.

    python benchmarks/latency.py [--rounds N]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slarules import Engine, parse_case  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return s[len(s) // 2], s[min(len(s) - 1, int(len(s) * 0.99))]


def timed(fn, cases, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        for c in cases:
            t = time.perf_counter()
            fn(c)
            out.append(time.perf_counter() - t)
    return out


def wall(cmd: list[str], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--cli-runs", type=int, default=7)
    args = ap.parse_args()
    cases = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "examples/cases").glob("*.yaml"))]
    engine = Engine.default()
    for c in cases:  # warm up
        engine.adjudicate(c)
    base = timed(parse_case, cases, args.rounds)
    full = timed(engine.adjudicate, cases, args.rounds)
    bp50, bp99 = percentiles(base)
    p50, p99 = percentiles(full)
    print(f"in-process, {len(full)} calls over {len(cases)} example cases")
    print(f"  validation only (baseline)   p50 {bp50 * 1e6:8.1f} us   p99 {bp99 * 1e6:8.1f} us")
    print(f"  Engine.adjudicate            p50 {p50 * 1e6:8.1f} us   p99 {p99 * 1e6:8.1f} us"
          f"   ({p50 / bp50:.1f}x baseline at p50)")
    exe = [sys.executable, "-m", "slarules", "adjudicate", "examples/cases/tb1-late.yaml"]
    py = wall([sys.executable, "-c", "pass"], args.cli_runs)
    cli = wall(exe, args.cli_runs)
    print(f"CLI wall time, median of {args.cli_runs}")
    print(f"  python -c pass (baseline)    {py * 1e3:8.1f} ms")
    print(f"  slarules adjudicate          {cli * 1e3:8.1f} ms   ({cli / py:.1f}x baseline)")


if __name__ == "__main__":
    main()
