"""A service that imports slarules the way its users write one, held to `mypy --strict`.

tests/test_typing.py type-checks this file against slarules as it is installed; pytest
never collects it (its name is not test_*). It also runs: `python tests/typed_client/service.py`.
"""
from __future__ import annotations

import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import assert_type

from slarules import (Case, CaseError, ClusterError, Engine, EngineError, InputError, Limits, PackError,
                      SlaRulesError, Verdict, load_case, parse_case)
from slarules.batch import BatchOptions, BatchSummary, run_batch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BAD: dict[str, object] = {"waybill": "X1", "parcel": {"weight_kg": -1}}


def fines_total(verdict: Verdict) -> Decimal:
    """Money is text in a verdict (exact decimals); a service sums it as Decimals."""
    return sum((Decimal(amount) for amount in verdict.fines_cny.values()), Decimal(0))


def describe(verdict: Verdict) -> list[str]:
    level: int | None = verdict.complaint_level
    lines = [f"{verdict.waybill} as of {verdict.as_of}: level {level}, refunds {verdict.refunds_cny}"]
    lines += [f"{f.clause} {f.party} {f.station or '-'} {f.fine_cny}: {f.message}" for f in verdict.findings]
    lines += [f"{d.name} due {d.due}: {d.status}" for d in verdict.deadlines]
    lines += [f"pack {p.name} {p.version}" for p in verdict.packs]
    return lines


def reason(err: SlaRulesError) -> str:
    """Every error says where: a service can hand it back to its caller as is."""
    kind = {CaseError: "case", PackError: "pack", InputError: "input", EngineError: "engine",
            ClusterError: "cluster"}.get(type(err), "other")
    return f"{kind}: {err.location()}: {err.message}"


def main() -> int:
    engine = Engine.default()
    assert_type(engine, Engine)                 # not Any: the lazily exported names are typed as imported
    strict = engine.with_limits(Limits(case_bytes=64 * 1024, scans=500))
    assert_type(strict.limits, Limits)

    case: Case = load_case(str(EXAMPLES / "cases" / "clean.yaml"))
    verdict = engine.adjudicate(case, lang="en")
    assert_type(verdict, Verdict)
    # builtin types on the right: with slarules' names as Any, these are errors (Any is not str)
    assert_type(verdict.waybill, str)
    assert_type(verdict.complaint_level, int | None)
    assert_type(verdict.fines_cny, dict[str, str])
    assert_type(engine.limits.scans, int)
    print("\n".join(describe(verdict)), fines_total(verdict))
    document: dict[str, object] = verdict.to_dict()
    text: str = verdict.to_json()
    print(len(document), len(text))

    bare: Case = parse_case({"waybill": "BX7700000002"})
    print(engine.adjudicate(bare, as_of="2026-05-04T09:00:00+08:00").missing)

    for facts, outcome in engine.adjudicate_many([case, BAD], lang="en"):
        if isinstance(outcome, SlaRulesError):
            print("rejected:", reason(outcome), facts is None)
        else:
            print(outcome.waybill, len(outcome.findings))

    try:
        load_case("no-such-case.yaml")
    except SlaRulesError as err:
        print("rejected:", reason(err))

    with tempfile.TemporaryDirectory() as tmp:
        cases = Path(tmp) / "cases.jsonl"
        rows = (EXAMPLES / "batch" / "cases.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        cases.write_text("".join(rows[:3]), encoding="utf-8")
        summary = run_batch(engine, str(cases), str(Path(tmp) / "verdicts.jsonl"),
                            BatchOptions(lang="en", progress=False, workers=1))
        assert_type(summary, BatchSummary)
        print(summary.render(), summary.rows, summary.verdicts, summary.errors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
