"""GoRules zen-engine (Rust core, Python binding) on TB-1, TB-4, TB-5 and OV-1: a peer engine to time against.

The clauses are the JDM decision graph benchmarks/zen/taobao-four.json: an expression node derives what
the clauses need from the raw case (TB-1's reference arrival and deadline from the scans, the lost case,
the overcharge, the parcel's sides), a decision table with the `collect` hit policy holds one row per
finding, and a last node keeps only what is compared. The graph is built from the clauses as
docs/policy.md states them, not from slarules' code; `adjudicate` is what is timed: the case dict in,
zen's result dict out, its Python<->Rust marshalling included.

zen-engine is an optional benchmark dependency (pip install '.[bench]'): without it, `available()` says
why and benchmarks/run.py leaves its rows out. It is compared only when it agrees with slarules on every
case it is timed on (`disagreements`): the same deadline, the same lateness, the same four clauses'
findings with the same fines and refunds, the same oversize classification.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

GRAPH = Path(__file__).resolve().parent / "zen" / "taobao-four.json"
VERSION = "2.1.3"
# The findings of the four clauses (TB-1's is compared through its deadline and `late`: TB-2 may override it).
RULES = ("taobao.unsigned-sender.lost", "taobao.overcharge.refund", "taobao.overcharge.fine", "oversize.three-oversize")
CENT = Decimal("0.01")


def available() -> str | None:
    """None when zen-engine VERSION is importable, else why it is not."""
    try:
        from importlib.metadata import version

        import zen  # noqa: F401
    except ImportError:
        return "zen-engine is not installed (pip install '.[bench]')"
    found = version("zen-engine")
    return None if found == VERSION else f"zen-engine {found} is installed; these rows are for {VERSION}"


def decision():
    """The compiled JDM graph: made once, evaluated per case."""
    import zen
    return zen.ZenEngine().create_decision(GRAPH.read_text(encoding="utf-8"))


def adjudicator(as_of: str):
    """`fn(case) -> zen's result`: what is timed (as `--as-of` does for slarules, as_of replaces the case's)."""
    evaluate = decision().evaluate

    def adjudicate(case: dict[str, Any]) -> dict[str, Any]:
        return evaluate({**case, "as_of": as_of})["result"]
    return adjudicate


def _money(value: Any) -> str:
    return str(Decimal(str(value)).quantize(CENT))


def zen_summary(result: dict[str, Any]) -> tuple:
    """What zen decided, in the shape `slarules_summary` gives."""
    findings = sorted((f["rule"], _money(f["fine_cny"]), _money(f["refund_cny"]))
                      for f in result.get("findings") or [] if f["rule"] in RULES)
    deadline = result.get("deadline")
    return (None if deadline is None else int(deadline) // 1000, bool(result.get("late")),
            bool(result.get("oversize")), findings)


def slarules_summary(verdict) -> tuple:
    """(TB-1 deadline as epoch seconds, late, oversize, [(rule, fine, refund)] of RULES) from a Verdict."""
    due = next((d for d in verdict.deadlines if d.rule == "taobao.delivery-window.late"), None)
    findings = sorted((f.rule, f.fine_cny, f.refund_cny) for f in verdict.findings if f.rule in RULES)
    return (None if due is None else int(datetime.fromisoformat(due.due).timestamp()),
            "late" in verdict.classifications, "oversize" in verdict.classifications, findings)


def disagreements(cases: list[dict], engine, as_of: str, limit: int = 3,
                  zen_adjudicate=None) -> tuple[int, list[str]]:
    """(how many cases disagree, the first `limit` of them said in a line each). A case slarules rejects
    (zen-engine has no case contract) is a disagreement too: zen would have judged it.
    `zen_adjudicate` (the tests give their own): by default `adjudicator(as_of)`."""
    from slarules.errors import SlaRulesError
    zen_adjudicate = zen_adjudicate or adjudicator(as_of)
    found: list[str] = []
    count = 0
    for case in cases:
        theirs = zen_summary(zen_adjudicate(case))
        try:
            ours = slarules_summary(engine.adjudicate(case, as_of=as_of))
        except SlaRulesError as exc:
            ours = f"rejected: {exc}"
        if ours != theirs:
            count += 1
            if len(found) < limit:
                found.append(f"{case.get('waybill')}: slarules {ours}, zen-engine {theirs}")
    return count, found


def empty_graph():
    """`fn(context)` through a graph of an input node joined to an output node: what every call costs zen."""
    import json

    import zen
    node = {"position": {"x": 0, "y": 0}}
    graph = {"nodes": [{"id": "in", "type": "inputNode", "name": "in", **node},
                       {"id": "out", "type": "outputNode", "name": "out", **node}],
             "edges": [{"id": "e", "sourceId": "in", "targetId": "out", "type": "edge"}]}
    return zen.ZenEngine().create_decision(json.dumps(graph)).evaluate
