"""`slarules test`: a broken test case or test file fails on its own, located, and the rest still run."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slarules.cli import main
from slarules.engine import default_rules_dir

CASES = {"regulations": 62, "taobao": 61, "uc": 9}      # cases in each shipped test file


@pytest.fixture
def rules(tmp_path) -> Path:
    d = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), d, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    return d


def test_an_unknown_expect_key_fails_its_case_only(rules, capsys):
    path = rules / "uc.test.yaml"
    text = path.read_text()
    old = "  expect:\n    does_not_fire: [uc.phone-query.answer]\n"
    line = text[:text.index(old)].count("\n") + 2          # the second case's expectation
    path.write_text(text.replace(old, "  expect:\n    does_not_fir: [uc.phone-query.answer]\n", 1))
    code = main(["test", str(rules)])
    out, err = capsys.readouterr()
    assert code == 1 and err == "", err
    assert f"{sum(CASES.values()) - 1} passed, 1 failed" in out
    [fail] = [i for i, l in enumerate(out.splitlines()) if l.startswith("FAIL")]
    lines = out.splitlines()
    assert "UC-1: answered at 30 min exactly" in lines[fail]
    problem = lines[fail + 1]
    assert f"{path}:{line}:5" in problem and "cases.1.expect.does_not_fir" in problem, problem
    assert "unknown field `does_not_fir`" in problem and "did you mean `does_not_fire`?" in problem, problem
    assert "fires, does_not_fire, findings" in problem and "case contract" not in problem, problem


def test_a_broken_test_file_does_not_stop_the_others(rules, capsys):
    (rules / "uc.test.yaml").write_text("pack: uc\ncases: [\n")
    code = main(["test", str(rules)])
    out, err = capsys.readouterr()
    assert code == 1 and err == "", err
    assert f"{CASES['regulations'] + CASES['taobao']} passed, 1 failed" in out
    assert f"{rules / 'uc.test.yaml'}:3:1" in out and "not valid YAML" in out
