"""Single-case latency of two slarules trees and the hand-written adjudicator, in one run.

    python benchmarks/before_after.py --tree before=/work/wt-perf-before --tree after=. \
        [--cases 20000] [--rounds 3] [--batch 20000]

Each tree runs under its own `.venv/bin/python`, in its own child process, on the
same generated cases (benchmarks/generate.py, seeded). The timed call is what a
service makes per request: `Engine.adjudicate(dict, as_of=...).to_json()`, validation
included. Rounds interleave the contenders (hand-written, then each tree) so that
load from other processes falls on all of them alike; p50/p99 pool all rounds.
Also: cold start (`slarules adjudicate examples/cases/tb1-late.yaml`, median of 7, after
one untimed start that writes the bytecode cache) and `slarules batch` JSONL to JSONL rows/s
(median of --batch-rounds runs), per tree, the trees interleaved round by round.

The hand-written adjudicator is the FIRST tree's benchmarks/handwritten.py: put the
tree whose clauses it encodes first. When the trees' default pack sets differ (the
national layer joined the default), `--packs rules` runs every tree on the packs they
all ship, so cold start and batch rows compare like with like.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AS_OF = "2026-05-20T00:00:00+08:00"

CHILD = r'''
import gc, json, sys, time
tree, cases_file, what, freeze, packs = sys.argv[1:6]
sys.path.insert(0, tree + "/benchmarks")
cases = [json.loads(line) for line in open(cases_file, encoding="utf-8")]
AS_OF = "%s"
if what == "hand":
    import handwritten
    def call(c):
        return handwritten.adjudicate(c, AS_OF)
else:
    from slarules import Engine
    engine = Engine.load([packs]) if packs else Engine.default()
    def call(c):
        return engine.adjudicate(c, as_of=AS_OF).to_json()
for c in cases[:1000]:
    try: call(c)
    except Exception: pass
if freeze == "1":      # the loaded cases are the harness's heap, not the service's: keep them out of GC
    gc.collect(); gc.freeze()
out = []
pc = time.perf_counter
for c in cases:
    t = pc()
    try: call(c)
    except Exception: pass
    out.append(pc() - t)
print(json.dumps(out))
''' % AS_OF


def bytecode_env() -> dict:
    """The environment for a cold start: Python may write its bytecode cache, as it does wherever
    slarules is installed. With PYTHONDONTWRITEBYTECODE set (as on some CI machines) every start
    would compile the whole source again, timing the compiler rather than slarules."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def pct(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * q))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append", required=True, help="NAME=PATH of a checkout with .venv")
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=20_000, help="cases for `slarules batch` (0: skip)")
    ap.add_argument("--batch-rounds", dest="batch_rounds", type=int, default=5,
                    help="`slarules batch` runs per tree, interleaved; the median is shown")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--packs", metavar="DIR", help="each tree's packs at this path inside it (e.g. `rules`: the network "
                    "packs, which every version ships), instead of its default set: compares like with like "
                    "when one tree's default loads more packs")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="gc.freeze() the loaded cases: without it p99 is mostly full collections walking them")
    a = ap.parse_args()
    trees = dict(t.split("=", 1) for t in a.tree)
    trees = {n: str(Path(p).resolve()) for n, p in trees.items()}
    py = {n: os.path.join(p, ".venv", "bin", "python") for n, p in trees.items()}
    first = next(iter(trees))
    sys.path.insert(0, str(HERE))
    from generate import write
    with tempfile.TemporaryDirectory(prefix="slarules-ba-") as work:
        cases = os.path.join(work, "cases.jsonl")
        write(cases, a.cases, a.seed, bad_rate=0.001)
        lat: dict[str, list[float]] = {"hand-written": [], **{n: [] for n in trees}}
        for _ in range(a.rounds):
            for name in lat:
                tree, what = (trees[first], "hand") if name == "hand-written" else (trees[name], "slarules")
                done = subprocess.run([py[first] if what == "hand" else py[name], "-c", CHILD, tree, cases, what,
                                       "1" if a.gc_freeze else "0", a.packs or ""],
                                      stdout=subprocess.PIPE, text=True, check=True, cwd=tree)
                lat[name].extend(json.loads(done.stdout))
        hand50, hand99 = pct(lat["hand-written"], .5), pct(lat["hand-written"], .99)
        print(f"{a.cases:,} cases x {a.rounds} rounds, interleaved; timed: adjudicate(dict).to_json()"
              f"{'; loaded cases gc.freeze()d' if a.gc_freeze else ''}\n")
        print("| contender | p50 | p99 | p50 / hand | p99 / hand | cold start | batch rows/s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        batch_cases = os.path.join(work, "batch.jsonl")
        if a.batch:
            write(batch_cases, a.batch, a.seed, bad_rate=0.001)
        packs = ["--packs", a.packs] if a.packs else []
        # cold starts and batches interleave the trees round by round, as the latencies do: load
        # from elsewhere falls on all alike; each figure is the median of its rounds
        colds: dict[str, list[float]] = {n: [] for n in trees}
        rates: dict[str, list[float]] = {n: [] for n in trees}
        for n in range(8):        # the first writes the bytecode cache (see `bytecode_env`), untimed
            for name in trees:
                case = os.path.join(trees[name], "examples", "cases", "tb1-late.yaml")
                t = time.perf_counter()
                subprocess.run([py[name], "-m", "slarules", "adjudicate", case, *packs], capture_output=True, check=True,
                               cwd=trees[name], env=bytecode_env())
                if n:
                    colds[name].append(time.perf_counter() - t)
        for _ in range(a.batch_rounds if a.batch else 0):
            for name in trees:
                t = time.perf_counter()
                subprocess.run([py[name], "-m", "slarules", "batch", batch_cases, "-o", os.path.join(work, name + "-out.jsonl"),
                                "--as-of", AS_OF, "--fresh", *packs], capture_output=True, check=True, cwd=trees[name])
                rates[name].append(a.batch / (time.perf_counter() - t))
        for name, samples in lat.items():
            p50, p99 = pct(samples, .5), pct(samples, .99)
            cold = rows = ""
            if name != "hand-written":
                cold = f"{statistics.median(colds[name]) * 1000:,.0f} ms"
                if rates[name]:
                    rows = f"{statistics.median(rates[name]):,.0f}"
            print(f"| {name} | {p50 * 1e6:,.1f} µs | {p99 * 1e6:,.1f} µs | {p50 / hand50:.2f}× | {p99 / hand99:.2f}× "
                  f"| {cold} | {rows} |")
        if a.batch:
            print(f"\ncold start: median of 7 per tree; batch rows/s: median of {a.batch_rounds} runs of "
                  f"{a.batch:,} cases per tree; both interleaved round by round. Each run:")
            for name in trees:
                print(f"- {name}: cold " + ", ".join(f"{c * 1000:,.0f}" for c in colds[name]) + " ms; batch "
                      + ", ".join(f"{r:,.0f}" for r in rates[name]) + " rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
