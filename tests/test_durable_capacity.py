"""durable_rules' limits are per node of its network, measured, and every loader and `check` refuse packs
past them before durable_rules is asked (packs/program.py has the figures, docs/durable_rules.md how
they were found). Each test builds a pack of many rules on one scope, the shape that meets them."""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import BASE

from slarules import Engine
from slarules.errors import EngineError, PackError
from slarules.runtime import durable_ruleset as dr
from slarules.tools.check import CheckOptions, check

NO_ANALYSIS = CheckOptions(analyse=False)


def many_rules(tmp_path: Path, n: int, when: Callable[[int], dict]) -> Path:
    """A pack of `n` rules sharing one scope, rule i testing the parcel's weight with `when(i)`, one a line."""
    rules = ",\n".join(json.dumps({"id": f"big.r{i}", "clause": "TB-1", "scope": [{"fact": "product", "eq": "taobao"}],
                                   "when": [{"fact": "parcel.weight_kg", **when(i)}], "then": {"kind": "warning"},
                                   "message": {"zh": "重", "en": "heavy"}}, ensure_ascii=False) for i in range(n))
    path = tmp_path / "big.yaml"
    path.write_text(f'{{"pack": "big", "version": "1", "rules": [\n{rules}\n]}}\n', encoding="utf-8")
    return path


def rule_line(path: Path, i: int) -> int:
    """The line of rule i (line 1 opens the pack)."""
    return i + 2


def heavy(kg: float) -> dict:
    case = copy.deepcopy(BASE)
    case["parcel"]["weight_kg"] = kg
    return case


def refused(path: Path, rule: int, words: str) -> None:
    """`check --no-analysis` and the loader both refuse the pack, at rule `rule`'s line."""
    [error] = [i for i in check([path], options=NO_ANALYSIS) if i.severity == "error"]
    assert (error.file, error.line) == (str(path), rule_line(path, rule)) and words in error.message, error
    with pytest.raises(PackError, match=words) as err:
        Engine.load([path])
    assert err.value.line == rule_line(path, rule)


def test_rules_sharing_a_scope_share_one_scope_rule(tmp_path):
    """250 rules on one scope were counted as 250 scopes and refused; they are 250 + 1 scope + 1 closer."""
    path = many_rules(tmp_path, 250, lambda i: {"eq": i})
    assert check([path], options=NO_ANALYSIS) == []
    engine = Engine.load([path])
    assert len(dr.ruleset(engine.program).definition) == 252
    assert [f.rule for f in engine.adjudicate(heavy(17)).findings] == ["big.r17"]


def test_tests_pending_at_once_past_64_fail_in_durable_rules_and_are_refused(tmp_path, monkeypatch):
    """A heavy parcel passes every `gt` at once: durable_rules holds 64 pending tests, not 65 (error 303)."""
    fits = Engine.load([many_rules(tmp_path, 64, lambda i: {"gt": i})])
    assert len(fits.backend.run(fits.facts(heavy(1000)).doc).fired) == 64
    path = many_rules(tmp_path, 65, lambda i: {"gt": i})
    refused(path, 0, "at most 64 pending")
    # the limit is durable_rules' own: with the check taken away, it fails on that case
    monkeypatch.setattr(dr, "capacity", lambda *args: [])
    engine = Engine.load([path])
    assert engine.backend.run(engine.facts(heavy(1)).doc).fired == ["big.r0"]
    with pytest.raises(EngineError, match="error code: 303"):
        engine.backend.run(engine.facts(heavy(1000)).doc)


def test_more_than_255_rules_ending_on_one_test_are_refused(tmp_path):
    """durable_rules lists the rules ending on a test in 256 slots and reads past them (a phantom action).
    The 256th rule is the one refused: the first 255 fit."""
    refused(many_rules(tmp_path, 256, lambda i: {"gt": 0}), 255, "more than 255 rules end on the same tests")


def test_more_than_511_tests_after_one_test_are_refused_before_durable_rules_hangs(tmp_path):
    """512 different tests after one test hang durable_rules' next assert, 513 its registration; the
    512th rule is the one refused."""
    refused(many_rules(tmp_path, 512, lambda i: {"eq": i}), 511, "more than 511 different tests follow one test")


def test_the_shipped_packs_are_well_inside_every_limit(engine):
    rules = dr.ruleset(engine.program)
    assert dr.capacity(engine.program, rules) == []
    network = dr._Network()
    for name, spec in rules.definition.items():
        network.add(network.root, spec["all"][0]["m"], name).ends.append(name)
    assert network.pending()[0] <= dr.DURABLE_MAX_PENDING // 2 and not network.overflows
