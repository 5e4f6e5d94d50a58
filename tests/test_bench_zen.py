"""The zen-engine contender's inputs and its agreement check (benchmarks/generate.py, benchmarks/zen_contender.py).

zen-engine itself is an optional benchmark dependency (not installed for the tests): what is held here is
what its comparison rests on: the edge cases reach the clauses' boundaries and slarules judges them as
docs/policy.md says, the JDM graph carries the taobao pack's own parameters, and the agreement check
catches a contender that decides differently.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from slarules import Engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import zen_contender  # noqa: E402
from generate import edge_cases  # noqa: E402

AS_OF = "2026-05-20T00:00:00+08:00"
COUNT = 400


@pytest.fixture(scope="module")
def engine():
    return Engine.load([ROOT / "rules" / "taobao.yaml"])


@pytest.fixture(scope="module")
def edges():
    return list(edge_cases(COUNT))


@pytest.fixture(scope="module")
def judged(engine, edges):
    return [(case, engine.adjudicate(case, as_of=AS_OF)) for case in edges]


def test_edge_cases_are_seeded_and_valid(edges, judged):
    """The same seed gives the same cases; slarules accepts every one (zen-engine has no contract)."""
    assert json.dumps(list(edge_cases(COUNT)), sort_keys=True) == json.dumps(edges, sort_keys=True)
    assert json.dumps(list(edge_cases(COUNT, seed=8)), sort_keys=True) != json.dumps(edges, sort_keys=True)
    assert len(judged) == COUNT


def _seconds_past_due(verdict) -> float | None:
    due = next((d for d in verdict.deadlines if d.rule == "taobao.delivery-window.late"), None)
    if due is None or due.actual is None:
        return None
    return (datetime.fromisoformat(due.actual) - datetime.fromisoformat(due.due)).total_seconds()


def test_edge_cases_reach_tb1s_boundaries_and_are_judged_there(judged):
    """Signed on the deadline is on time; a second after is late by one (started) minute; the cutoff at
    12:00:00 sends an arrival to the next day's noon."""
    by_offset: dict[float, list] = {}
    for _, verdict in judged:
        offset = _seconds_past_due(verdict)
        if offset is not None and abs(offset) <= 61:
            by_offset.setdefault(offset, []).append(verdict)
    assert {-1.0, 0.0, 1.0, 59.0, 60.0, 61.0} <= set(by_offset)
    for offset, verdicts in by_offset.items():
        for v in verdicts:
            late = "late" in v.classifications
            assert late is (offset > 0), (offset, v.waybill)
            finding = next((f for f in v.findings if f.rule == "taobao.delivery-window.late"), None)
            if finding is not None:
                assert finding.facts["delivery_late_minutes"] == -(-int(offset) // 60)
    arrivals = Counter(datetime.fromisoformat(s["at"]).strftime("%H:%M:%S")
                       for case, _ in judged for s in case["scans"] if s["type"] == "arrival")
    assert arrivals["11:59:59"] and arrivals["12:00:00"] and arrivals["12:00:01"]
    for case, verdict in judged:
        due = next((d for d in verdict.deadlines if d.rule == "taobao.delivery-window.late"), None)
        noon = next((s for s in case["scans"] if s["type"] == "arrival" and s["at"].endswith("T12:00:00+08:00")
                     and s["station"] == case["stations"].get("delivering")), None)
        if due is not None and noon is not None:
            assert datetime.fromisoformat(due.due) == datetime.fromisoformat(noon["at"]) + timedelta(days=1)


def test_edge_cases_reach_ov1_and_tb5_boundaries(judged):
    """Exactly at a limit is not oversize, one over is; an overcharge of one fen is refunded."""
    seen = Counter()
    for case, verdict in judged:
        parcel = case.get("parcel")
        if parcel is None or "weight_kg" not in parcel:
            continue
        sides = sorted((parcel["length_cm"], parcel["width_cm"], parcel["height_cm"]), reverse=True)
        over = (sides[0] > 200 or sum(sides) > 250 or sides[0] * sides[1] * sides[2] > 250_000
                or float(parcel["weight_kg"]) > 50)
        assert ("oversize" in verdict.classifications) is over, case["waybill"]
        seen[tuple(sides), parcel["weight_kg"]] += 1
    assert any(s == (200, 20, 20) for s, _ in seen) and any(s == (100, 50, 50) for s, _ in seen)
    assert any(w == "50.000" for _, w in seen) and any(w == "50.001" for _, w in seen)
    refunds = {f.refund_cny for _, v in judged for f in v.findings if f.rule == "taobao.overcharge.refund"}
    assert "0.01" in refunds


def test_the_jdm_graph_holds_the_packs_parameters():
    """The graph states TB-4's and TB-5's fines and OV-1's limits as the shipped pack does: a change to
    the pack that the graph does not follow fails here, not as a puzzling disagreement in a benchmark."""
    pack = yaml.safe_load((ROOT / "rules" / "taobao.yaml").read_text(encoding="utf-8"))
    params = {k: str(v["value"]) for k, v in pack["parameters"].items()}
    graph = json.loads(zen_contender.GRAPH.read_text(encoding="utf-8"))
    table = next(n for n in graph["nodes"] if n["type"] == "decisionTableNode")["content"]
    rows = {r["_id"]: r for r in table["rules"]}
    assert set(rows) == {"taobao.delivery-window.late", *zen_contender.RULES}
    assert rows["taobao.unsigned-sender.lost"]["o_fine_cny"] == params["unsigned_sender_fine"]
    assert rows["taobao.overcharge.fine"]["o_fine_cny"] == params["overcharge_fine"]
    derive = {e["key"]: e["value"]
              for e in next(n for n in graph["nodes"] if n["id"] == "derive")["content"]["expressions"]}
    for limit in ("max_side_cm", "max_sum_of_sides_cm", "max_volume_cm3", "max_weight_kg"):
        assert f"> {params[limit]}" in derive["oversize"], limit
    assert "hour() < 12" in derive["deadline"]           # arrivals strictly before the 12:00 cutoff
    assert params["cutoff"] == "12:00" and params["same_day_by"] == "17:00" and params["next_day_by"] == "12:00"


def _as_zen_would(verdict) -> dict:
    """A zen-engine result that agrees with `verdict` (its shape: benchmarks/zen/taobao-four.json's output)."""
    deadline, late, oversize, findings = zen_contender.slarules_summary(verdict)
    return {"deadline": None if deadline is None else deadline * 1000, "late": late, "oversize": oversize,
            "findings": [{"rule": r, "fine_cny": fine, "refund_cny": refund} for r, fine, refund in findings]}


def test_the_agreement_check_passes_agreement_and_catches_each_kind_of_difference(engine, edges, judged):
    verdicts = {case["waybill"]: verdict for case, verdict in judged}

    def agreeing(case):
        return _as_zen_would(verdicts[case["waybill"]])
    assert zen_contender.disagreements(edges, engine, AS_OF, zen_adjudicate=agreeing) == (0, [])

    def late_flipped(case):
        result = agreeing(case)
        if result["deadline"] is not None:
            result["late"] = not result["late"]
        return result

    def no_fines(case):
        result = agreeing(case)
        result["findings"] = [dict(f, fine_cny=0) for f in result["findings"]]
        return result

    def deadline_a_second_late(case):
        result = agreeing(case)
        if result["deadline"] is not None:
            result["deadline"] += 1000
        return result
    for wrong in (late_flipped, no_fines, deadline_a_second_late):
        count, first = zen_contender.disagreements(edges[:150], engine, AS_OF, zen_adjudicate=wrong)
        assert count > 0 and first and "zen-engine" in first[0], wrong.__name__
