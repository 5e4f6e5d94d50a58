"""`slarules diff` against one `slarules batch` of the same cases, measured in one run.

    python benchmarks/diff.py [--cases 1000000] [--cli .venv/bin/slarules] [--rounds 1]

Generates the cases (benchmarks/generate.py), makes the head packs as a copy of
the shipped ones with one fine changed (TB-5's overcharge fine, 100.00 to
120.00), then times, in each round, one `slarules batch` and one `slarules diff`
(base: the shipped packs, head: the copy), each in its own process, JSON Lines
in and out, the two in turn first from one round to the next. The issue's target: the diff within 2.5x the batch. Prints the
figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from generate import write as generate  # noqa: E402

FINE = ('overcharge_fine: {type: money, value: "100.00"', 'overcharge_fine: {type: money, value: "120.00"')


BASE = [ROOT / "rules" / "national", ROOT / "rules"]     # the shipped set: the national layer, then the network


def head_packs(folder: Path) -> list[Path]:
    """A copy of the shipped pack directories (BASE) with one fine changed, in the same order."""
    out = []
    for source in BASE:
        target = folder / source.relative_to(ROOT)
        target.mkdir(parents=True, exist_ok=True)
        for p in source.glob("*.yaml"):
            if not p.name.endswith(".test.yaml"):
                text = p.read_text(encoding="utf-8")
                if p.name == "taobao.yaml":
                    assert text.count(FINE[0]) == 1, "the benchmark's fine is not in taobao.yaml any more"
                    text = text.replace(*FINE)
                (target / p.name).write_text(text, encoding="utf-8")
        out.append(target)
    return out


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--cli", default=str(Path(sys.executable).parent / "slarules"))
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--keep", metavar="DIR", help="work here and keep the files (default: a temporary folder)")
    a = ap.parse_args(argv)
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="slarules-diff-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        cases = work / "cases.jsonl"
        if not cases.exists():
            generate(str(cases), a.cases, seed=7, bad_rate=0.001, workers=2)
        head = work / "head"
        if head.exists():
            shutil.rmtree(head)
        head_dirs = head_packs(head)
        as_of = ["--as-of", "2026-05-20T00:00:00+08:00"]
        for round_ in range(1, a.rounds + 1):
            commands = {"batch": [a.cli, "batch", str(cases), "-o", str(work / "verdicts.jsonl"), "--fresh", *as_of],
                        "diff": [a.cli, "diff", str(cases), "--base", *map(str, BASE), "--head", *map(str, head_dirs),
                                 "-o", str(work / "diff"), *as_of]}
            order = ("batch", "diff") if round_ % 2 else ("diff", "batch")    # alternate: drift in load cancels
            seconds = {name: timed(commands[name]) for name in order}
            batch, diff = seconds["batch"], seconds["diff"]
            changed = json.loads((work / "diff" / "diff.json").read_text())
            print(f"round {round_}: {a.cases:,} cases; batch {batch:.1f} s ({a.cases / batch:,.0f} cases/s), "
                  f"diff {diff:.1f} s, {changed['changed']:,} verdicts changed; "
                  f"diff / batch = {diff / batch:.2f}x (target <= 2.5x)")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
