"""`explain`: why each rule fired, why the others did not, and what would flip each finding.

Counterfactuals are checked twice: `explain` re-runs the backend itself, and here
each one that names a case field is applied to the *case* and adjudicated again
from scratch, so a counterfactual that only works on the fact table would fail.
"""
from __future__ import annotations

import copy
import json

import pytest

from conftest import EXAMPLES
from slarules.cli import main
from slarules.facts import load_case
from slarules.packs.vocabulary import BASE_FACTS

CASES = sorted(EXAMPLES.glob("*.yaml"))


def raw(path) -> dict:
    return load_case(path).model_dump(mode="json", exclude_none=True)


def apply(case: dict, fact: str, value) -> dict | None:
    """The case with one fact changed, or None when the fact is not a plain case field."""
    case = copy.deepcopy(case)
    if fact == "signed_at":
        scans = [s for s in case["scans"] if s["type"] != "signed"]
        if value is not None:
            scans.append({"type": "signed", "station": "X", "at": value})
        case["scans"] = scans
        return case
    if fact not in BASE_FACTS or BASE_FACTS[fact].type.name == "block" or "." not in fact:
        return None
    block, name = fact.split(".", 1)
    if value is None:
        case.get(block, {}).pop(name, None)
    else:
        case.setdefault(block, {})[name] = value
    return case


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_every_rule_is_traced_with_its_deciding_tests(engine, path):
    ex = engine.explain(load_case(path), lang="en")
    assert [t.rule for t in ex.rules] == [r.id for r in engine.program.rules]
    findings = {f.rule for f in ex.verdict.findings}
    for t in ex.rules:
        results = {test.result for test in t.tests}
        if t.status in ("fired", "overridden"):
            assert results == {"true"}, t.rule
            assert (t.rule in findings) == (t.status == "fired") or engine.program.rule(t.rule).kind == "not_covered"
        elif t.status == "not_fired":
            assert "false" in results, t.rule
        elif t.status == "undecided":
            assert t.missing and "unknown" in results, t.rule
        else:
            assert "false" in results or t.missing, t.rule
        for test in t.tests:
            assert test.where and ".yaml:" in test.where


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_every_finding_has_a_counterfactual_that_really_flips_it(engine, path):
    case = raw(path)
    ex = engine.explain(case, lang="en")
    traces = {t.rule: t for t in ex.rules}
    for finding in ex.verdict.findings:
        cfs = traces[finding.rule].counterfactuals
        assert cfs, f"{path.stem}: no counterfactual for {finding.rule}"
        for cf in cfs:
            changed = case
            for fact, value in cf.changes.items():
                changed = apply(changed, fact, value) if changed is not None else None
            if changed is None:
                continue      # a derived fact (volume, overcharge): checked on the facts only
            after = {f.rule for f in engine.adjudicate(changed).findings}
            assert finding.rule not in after, (path.stem, cf.text)


def test_deadline_counterfactual_reads_like_a_person(engine):
    ex = engine.explain(load_case(EXAMPLES / "tb1-late.yaml"), lang="en")
    tb1 = next(t for t in ex.rules if t.rule == "taobao.delivery-window.late")
    assert tb1.counterfactuals[0].text == ("signed_at by 2 May 2026 17:00 would have been on time; "
                                           "it was 20 min late.")
    zh = engine.explain(load_case(EXAMPLES / "tb1-late.yaml"), lang="zh")
    assert "实际晚了 20 分钟" in next(t for t in zh.rules if t.rule == tb1.rule).counterfactuals[0].text


def test_counterfactual_delay_reads_as_the_finding_does(engine):
    late = raw(EXAMPLES / "tb1-late.yaml")
    late["scans"][-1]["at"] = "2026-05-02T18:20:05+08:00"
    ex = engine.explain(late, lang="zh")
    tb1 = next(t for t in ex.rules if t.rule == "taobao.delivery-window.late")
    assert "延误 80 分钟 5 秒" in ex.verdict.findings[0].message
    assert tb1.counterfactuals[0].text.endswith("实际晚了 80 分钟 5 秒。")


def test_liability_counterfactual_names_who_would_not_bear_it(engine):
    ex = engine.explain(load_case(EXAMPLES / "tb3-packaging.yaml"), lang="en")
    tb3 = next(t for t in ex.rules if t.rule == "taobao.packaging.non-compliant")
    first = tb3.counterfactuals[0]
    assert first.changes == {"parcel.packaging_compliant": True}
    assert "sending station HHHT-01 would not bear this (TB-3)" in first.text


def test_why_not_shows_the_failed_test_and_the_value_seen(engine):
    ex = engine.explain(load_case(EXAMPLES / "tb1-late.yaml"), lang="en")
    tb2 = next(t for t in ex.rules if t.rule == "taobao.out-of-service-area.delay")
    assert tb2.status == "not_fired"
    [failed] = [t for t in tb2.tests if t.result == "false"]
    assert failed.condition == "collection.in_service_area = no"
    assert failed.saw == {"collection.in_service_area": True}
    assert failed.where.startswith("taobao.yaml:")


def test_missing_facts_are_named_for_undecided_rules(engine):
    ex = engine.explain(load_case(EXAMPLES / "tb1-missing-arrival.yaml"), lang="en")
    tb1 = next(t for t in ex.rules if t.rule == "taobao.delivery-window.late")
    assert tb1.status == "undecided" and tb1.missing == ["reference_arrival"]


def test_threshold_counterfactual_needs_every_crossed_threshold(engine):
    ex = engine.explain(load_case(EXAMPLES / "ov1-oversize.yaml"), lang="en")
    ov = next(t for t in ex.rules if t.rule == "oversize.three-oversize")
    assert ov.counterfactuals[0].changes == {"volume_cm3": "250000", "parcel.weight_kg": "50"}


def test_cli_explain_text_and_json(capsys):
    assert main(["explain", str(EXAMPLES / "tb1-late.yaml"), "--lang", "en"]) == 0
    text = capsys.readouterr().out
    assert "would flip: signed_at by 2 May 2026 17:00" in text and "not fired" in text
    assert main(["explain", str(EXAMPLES / "tb1-late.yaml"), "--format", "json"]) == 0
    first = capsys.readouterr().out
    data = json.loads(first)
    assert {"verdict", "rules"} <= set(data)
    assert main(["explain", str(EXAMPLES / "tb1-late.yaml"), "--format", "json"]) == 0
    assert capsys.readouterr().out == first


def test_cli_explain_bad_case_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("waybill: [1\n")
    assert main(["explain", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("slarules: error:") and "Traceback" not in err and str(bad) in err
