"""slarules as a type checker sees it: its public names typed as imported, and its code mypy- and ruff-clean.

A service checks its own code with `mypy --strict`; tests/typed_client/service.py is such a
service, checked here against slarules as an installed package would be (PEP 561: py.typed).
The mypy runs cost ~9 s of CPU on a fresh cache, so they run once each, caches in tmp paths.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import slarules

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "tests" / "typed_client" / "service.py"

# Wrong on purpose: each line names the error mypy must find there, so the client's check can fail.
WRONG = '''\
from slarules import Engine, Limits, Verdict
engine: int = Engine.default()                                  # E: assignment
level: str = Engine.default().adjudicate({}).complaint_level    # E: assignment
Limits(case_bytes="1MiB")                                       # E: arg-type
def first(v: Verdict) -> int:
    return v.findings[0].clause                                 # E: return-value
'''


def _tool(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (it is in the test extra: pip install -e '.[test]')")


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)


def test_lazy_names_are_the_type_checking_imports():
    """`from slarules import X` is lazy at run time (_EXPORTS) and typed for a checker (the
    TYPE_CHECKING imports): both must name the same thing, and __all__ lists exactly those."""
    tree = ast.parse((ROOT / "slarules" / "__init__.py").read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom), ast.dump(imp)
                if imp.level == 1:          # slarules' own names (not `from typing import Any`)
                    typed.update({alias.name: imp.module or "" for alias in imp.names})
    assert typed == slarules._EXPORTS
    assert sorted(slarules.__all__) == sorted(slarules._EXPORTS)
    for name in slarules.__all__:
        assert getattr(slarules, name) is getattr(importlib.import_module(f"slarules.{typed[name]}"), name)


def test_py_typed_ships():
    assert (Path(slarules.__file__).parent / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^"slarules" = \[.*"py\.typed".*\]', pyproject, re.M), "py.typed is not package data"


def test_a_service_under_mypy_strict(tmp_path):
    """The client passes `mypy --strict`; the wrong snippet fails exactly where it says, so the
    names are real types (as Any, every line of WRONG would pass)."""
    _tool("mypy")
    (tmp_path / "wrong.py").write_text(WRONG, encoding="utf-8")
    # slarules found on PYTHONPATH is read as an installed package: it needs py.typed, its own
    # errors are not the service's, and the repository's [tool.mypy] is not read (cwd is tmp_path).
    done = _run(["mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
                 "--show-error-codes", str(CLIENT), "wrong.py"], cwd=tmp_path,
                PYTHONPATH=str(Path(slarules.__file__).parent.parent))
    found = sorted((Path(m[0]).name, int(m[1]), m[2])
                   for m in re.findall(r"^(.+?):(\d+): error: .*\[([a-z-]+)\]$", done.stdout, re.M))
    expected = sorted(("wrong.py", n, m.group(1)) for n, line in enumerate(WRONG.splitlines(), 1)
                      if (m := re.search(r"# E: ([a-z-]+)", line)))
    assert found == expected, done.stdout + done.stderr


def test_mypy_clean(tmp_path):
    """`mypy slarules` with the project's [tool.mypy]: ~7 s of CPU on a fresh cache."""
    _tool("mypy")
    done = _run(["mypy", "--cache-dir", str(tmp_path / "cache"), "slarules"], cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_clean():
    _tool("ruff")
    done = _run(["ruff", "check", "--no-cache", "slarules"], cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
