"""Fuzzing as tests: a short, deterministic atheris run per target, and every saved crash replayed.

The fuzz runs need atheris (skipped without it); the replays do not: each file
in tests/fuzz/regressions/<target>/ goes through the target function itself,
so a crash found once (by run.py, or by this test) stays a test for good.
Any exception but SlaRulesError fails (see tests/fuzz/targets.py).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent / "fuzz"
sys.path.insert(0, str(FUZZ))

import targets  # noqa: E402

# Executions per target with -seed=1: the seeds plus some mutations; all three took 18 s on 2 shared
# cores (load 3), ~35 s when the machine was busier. A crash ends a run early (3-6 s today).
RUNS = {"case": 1500, "pack": 150, "batch": 120}
CAP_SECONDS = 60          # per target, only against a stuck run: the budget is the number of runs


@pytest.mark.parametrize("target", list(targets.TARGETS))
def test_fuzz(target, tmp_path):
    pytest.importorskip("atheris")
    done = subprocess.run(
        [sys.executable, str(FUZZ / "run.py"), "--target", target, "--runs", str(RUNS[target]), "--seed", "1",
         "--seconds", str(CAP_SECONDS), "--stop", "--crashes", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="backslashreplace")
    saved = sorted(tmp_path.rglob("*.*"))
    cut = "".join(f"--- {p.name}, cut down:\n{p.read_bytes().decode('utf-8', 'backslashreplace')}\n" for p in saved)
    assert done.returncode == 0, (
        f"fuzz target `{target}` crashed; keep the input as a regression test by copying "
        f"{', '.join(map(str, saved)) or 'it'} into tests/fuzz/regressions/{target}/\n{done.stdout[-8000:]}{cut}")


REGRESSIONS = sorted(p for p in (FUZZ / "regressions").glob("*/*") if p.is_file() and p.parent.name in targets.TARGETS)


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_regression(path):
    check, _ = targets.TARGETS[path.parent.name]
    check(path.read_bytes())
