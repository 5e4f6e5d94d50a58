"""Run a slarules fuzz target with its seeds, dictionary and a budget; save every distinct crash.

    .venv/bin/python tests/fuzz/run.py --target case --seconds 300
    .venv/bin/python tests/fuzz/run.py --target all --runs 400 --stop --crashes /tmp/crashes   # CI style

By default the run carries on past a crash and writes each distinct one (by
exception type and innermost slarules frame) to tests/fuzz/regressions/<target>/,
where the replay test in tests/test_fuzz.py turns it into a regression test.
`--stop` ends at the first crash instead. The exit status is 1 when a crash was
found. Runs are deterministic for a given --seed and --runs: hash seed fixed,
"now" fixed, and a fresh corpus unless --corpus keeps one between runs.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import targets  # noqa: E402

REGRESSIONS = HERE / "regressions"


def _dict_entry(word: str) -> str:
    """One libFuzzer dictionary line: printable ASCII as is, every other byte as \\xNN."""
    body = "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\' else f"\\x{b:02x}"
                   for b in word.encode("utf-8"))
    return f'"{body}"'


def prepare(target: str, work: Path) -> tuple[Path, Path]:
    """A seed directory and a dictionary file for `target` under `work`."""
    seed_dir = work / f"seeds-{target}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    for data in targets.seeds(target):
        (seed_dir / hashlib.sha1(data).hexdigest()).write_bytes(data)
    dict_file = work / "slarules.dict"
    dict_file.write_text("\n".join(_dict_entry(w) for w in targets.dictionary()) + "\n", encoding="utf-8")
    return seed_dir, dict_file


def fuzz(target: str, *, seconds: int | None = None, runs: int | None = None, seed: int = 1,
         stop: bool = False, crashes: Path | None = None, corpus: Path | None = None,
         minimize: bool = True, extra: list[str] = ()) -> tuple[int, list[Path], str]:
    """Run one target; (libFuzzer's exit status, crash files written, its output). Each new crash file
    is cut down to what the crash needs, so a regression test shows its cause."""
    crashes = crashes or REGRESSIONS / target
    before = set(crashes.glob("*")) if crashes.exists() else set()
    with tempfile.TemporaryDirectory(prefix="slarules-fuzz-run-") as tmp:
        work = Path(tmp)
        seed_dir, dict_file = prepare(target, work)
        live = corpus / target if corpus else work / "corpus"        # new inputs go here, never into seeds
        live.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, str(HERE / "fuzz.py"), target, f"-seed={seed}", f"-dict={dict_file}",
                "-timeout=60", "-rss_limit_mb=4096", "-max_len=16384", "-print_final_stats=1",
                f"-artifact_prefix={work}/"]
        args += [f"-runs={runs}"] if runs else []
        args += [f"-max_total_time={seconds}"] if seconds else []
        env = {**os.environ, "PYTHONHASHSEED": "0", "SLARULES_FUZZ_CRASHES": str(crashes),
               "SLARULES_FUZZ_KEEP_GOING": "0" if stop else "1"}
        env.setdefault("SLARULES_CACHE_DIR", str(work / "cache"))
        done = subprocess.run(args + [*extra, str(live), str(seed_dir)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="backslashreplace")
    found = sorted(set(crashes.glob("*")) - before) if crashes.exists() else []
    if minimize:
        for path in found:
            path.write_bytes(targets.minimize(target, path.read_bytes()))
    return done.returncode, found, done.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="all", choices=[*targets.TARGETS, "all"])
    ap.add_argument("--seconds", type=int, help="time budget per target")
    ap.add_argument("--runs", type=int, help="executions per target (deterministic with --seed)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stop", action="store_true", help="stop at the first crash")
    ap.add_argument("--crashes", type=Path, help="where crashes go (default: tests/fuzz/regressions/<target>)")
    ap.add_argument("--corpus", type=Path, help="keep the grown corpus here, per target, between runs")
    ap.add_argument("--verbose", action="store_true", help="print libFuzzer's whole output")
    ap.add_argument("--no-minimize", dest="minimize", action="store_false",
                    help="save crash inputs as found, not cut down")
    ap.add_argument("libfuzzer", nargs="*", help="more libFuzzer options, after --")
    a = ap.parse_args(argv)
    if not a.seconds and not a.runs:
        ap.error("give --seconds or --runs")
    crashed = False
    for target in targets.TARGETS if a.target == "all" else [a.target]:
        crashes = a.crashes / target if a.crashes else None
        status, found, output = fuzz(target, seconds=a.seconds, runs=a.runs, seed=a.seed, stop=a.stop,
                                     crashes=crashes, corpus=a.corpus, minimize=a.minimize, extra=a.libfuzzer)
        if a.verbose:
            print(output)
        else:       # the crash reports, and libFuzzer's last status line
            lines = output.splitlines()
            in_crash = False
            for line in lines:
                in_crash = in_crash or line.startswith("=== slarules fuzz crash")
                if in_crash:
                    print(line)
                in_crash = in_crash and not line.startswith("=== end crash")
            execs = [line for line in lines if line.startswith(("#", "stat::number_of_executed_units"))]
            print(f"[{target}] exit {status}; {execs[-1] if execs else 'no status line'}")
        if status != 0 and not any("=== slarules fuzz crash" in line for line in output.splitlines()):
            print(output[-4000:])      # libFuzzer itself failed (timeout, out of memory, bad option)
        for path in found:
            print(f"[{target}] new crash: {path}")
        crashed = crashed or status != 0 or bool(found)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
