"""Where durable_rules cannot be imported (not installed, or a wheel built for 3.13 without the fix):
every command that needs it says so in one paragraph with the fix and exits 2; the others run."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from slarules.cli import main
from slarules.runtime.durable_install import BUILD_FLAGS

from conftest import EXAMPLES, ROOT, hide_durable_rules

AS_OF = "2026-06-01T00:00:00+08:00"
CASES = ROOT / "examples" / "batch" / "cases.jsonl"
# The ImportError a durable-rules wheel built for 3.13 without BUILD_FLAGS raises (seen on 3.13.0).
BROKEN_WHEEL = ("/venv/lib/python3.13/site-packages/durable_rules_engine.cpython-313-x86_64-linux-gnu.so: "
                "undefined symbol: PyEval_CallObject")

# Each command in one process (a cold start each would cost seconds): exit code and standard error.
RUN = """
import contextlib, io, json, sys
from slarules.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    out.append([code, err.getvalue()])
print(json.dumps(out))
"""


def run_without_durable_rules(commands: list[list[str]], folder, error: str | None = None) -> list[tuple[int, str]]:
    env = hide_durable_rules(folder / "blocker", *([error] if error else []))
    done = subprocess.run([sys.executable, "-c", RUN, json.dumps(commands)], env=env, capture_output=True,
                          text=True, check=True, timeout=300)
    return [tuple(r) for r in json.loads(done.stdout)]


@pytest.fixture(scope="module")
def decision_log(tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "decisions.jsonl"
    assert main(["adjudicate", str(EXAMPLES / "tb1-late.yaml"), "--decision-log", str(log)]) == 0
    return log


def needing_it(tmp_path, decision_log) -> dict[str, list[str]]:
    case = str(EXAMPLES / "tb1-late.yaml")
    return {"adjudicate": ["adjudicate", case],
            "explain": ["explain", case],
            "check": ["check", "--examples", "5"],
            "test": ["test"],
            "replay": ["replay", str(decision_log)],
            "batch --backend durable": ["batch", str(CASES), "-o", str(tmp_path / "d.jsonl"), "--backend", "durable",
                                        "--as-of", AS_OF, "--statement", str(tmp_path / "st")],
            "diff --backend durable": ["diff", str(CASES), "--base", str(ROOT / "rules"), "--head",
                                       str(ROOT / "rules"), "--backend", "durable", "-o", str(tmp_path / "diff")]}


def test_every_command_that_needs_it_says_so_with_the_fix(tmp_path, decision_log):
    commands = needing_it(tmp_path, decision_log)
    for name, (code, err) in zip(commands, run_without_durable_rules(list(commands.values()), tmp_path)):
        assert code == 2, (name, err)
        assert err.startswith("slarules: error: durable_rules cannot be imported (ImportError: durable_rules is "
                              "not importable here)"), (name, err)
        assert err.count("\n") == 1 and "Traceback" not in err and "internal error" not in err, (name, err)
        assert f"{BUILD_FLAGS} {sys.executable} -m pip install 'durable-rules==2.0.28'" in err, (name, err)
    assert not list(tmp_path.glob("d.jsonl*")) and not (tmp_path / "st").exists()     # nothing half-written
    assert not (tmp_path / "diff").exists()


def test_a_wheel_built_without_the_fix_is_told_apart(tmp_path, decision_log):
    """pip's cache may hold a cp313 wheel built without the flag: it is reused whatever the flags, so it must go."""
    [(code, err)] = run_without_durable_rules([["adjudicate", str(EXAMPLES / "tb1-late.yaml")]], tmp_path,
                                              BROKEN_WHEEL)
    assert code == 2 and err.count("\n") == 1, err
    assert "built for Python" in err and "without the fix for PyEval_CallObject" in err
    pip = f"{sys.executable} -m pip"
    assert (f"{pip} cache remove durable_rules; {BUILD_FLAGS} {pip} install --force-reinstall --no-deps "
            f"'durable-rules==2.0.28'") in err


def test_what_runs_without_it_keeps_running(tmp_path):
    """The batch, diff, check without analysis and schema need no durable_rules (the batch: tests/test_batch.py)."""
    head = tmp_path / "head"
    head.mkdir()
    for f in (ROOT / "rules").glob("*.yaml"):
        (head / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    commands = [["diff", str(CASES), "--base", str(ROOT / "rules"), "--head", str(head), "--as-of", AS_OF],
                ["check", "--no-analysis"], ["schema", "pack"]]
    results = run_without_durable_rules(commands, tmp_path)
    assert [code for code, _ in results] == [0, 0, 0], results


def test_the_readme_installs_with_the_flag_the_message_gives():
    """One spelling of the build flag: the README's commands and the fix an error says."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- quickstart -->\s*```sh\n(.*?)```", text, re.S).group(1)
    assert all(f"{BUILD_FLAGS} .venv/bin/pip install" in line for line in block.splitlines() if line.strip())
