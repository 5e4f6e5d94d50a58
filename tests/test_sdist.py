"""The sdist runs its own tests: it holds every file the repository tracks (CI installs one from a fresh
unpack and runs tests there, .ci/run)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile

import pytest

from conftest import ROOT

# What the tests read besides the package and themselves: shipped whatever git says.
NEEDED = ["LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "MANIFEST.in", ".ci/run", "tests/conftest.py",
          "tests/golden/verdicts.jsonl.gz", "tests/packs/dated", "tests/fuzz/regressions", "examples/cases/tb1-late.yaml",
          "examples/batch/cases.jsonl", "docs/policy.md", "benchmarks/generate.py", "rules/clauses.yaml",
          "rules/national"]


def _tracked() -> set[str] | None:
    """The files git tracks here; None where this is no git checkout (an unpacked sdist)."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        return None
    done = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return {f for f in done.stdout.decode().split("\0") if f and (ROOT / f).exists()}


def test_the_sdist_holds_every_tracked_file_and_what_the_tests_read(tmp_path):
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(tmp_path)!r}))"
    built = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if built.returncode != 0 and "No module named 'setuptools'" in built.stderr:
        pytest.skip("setuptools (the test extra) is not installed")
    assert built.returncode == 0, built.stderr
    name = built.stdout.split()[-1]
    with tarfile.open(tmp_path / name) as sdist:
        top = name.removesuffix(".tar.gz") + "/"
        shipped = {m.name.removeprefix(top) for m in sdist.getmembers()}
    missing = [p for p in NEEDED if p not in shipped]
    assert missing == []
    tracked = _tracked()
    if tracked is not None:
        assert sorted(tracked - shipped) == []
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in shipped)
