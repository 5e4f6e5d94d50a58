"""An unknown fact no value of which could change a rule's outcome no longer blocks the rule
(issue 24 item 7, slarules/packs/unknowns.py).

The property: with a finite fact removed from a case, the verdict either lists it missing, or
decides as the case would with EVERY value of it (checked by substituting each value). The
differential: the issue's case decides alike per case (durable_rules), in bulk (Polars) and on
the columnar batch path.
"""
from __future__ import annotations

import copy
import json
from datetime import timedelta

from hypothesis import HealthCheck, given, settings, strategies as st
from strategies import BASE_T, cases, iso

from slarules.batch.runner import adjudicate_rows
from slarules.packs.unknowns import SEPARATOR

ROUTES = ("same_city", "intra_province", "inter_province")
AS_OF = "2026-05-20T00:00:00+08:00"
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.data_too_large])

# the issue's parcel: promised 4 May, no route, unsigned on 14 May (10 days on: past 7 × 24 h)
ISSUE_CASE = {
    "waybill": "BX7700000034", "product": "taobao", "timezone": "Asia/Shanghai",
    "as_of": "2026-05-14T09:00:00+08:00", "stations": {"sending": "HHHT-01", "delivering": "BT-03"},
    "collection": {"sender_signed": True, "in_service_area": True, "quoted_cny": "12.00", "charged_cny": "12.00"},
    "scans": [{"type": "collect", "station": "HHHT-01", "at": "2026-05-01T09:10:00+08:00"},
              {"type": "arrival", "station": "BT-03", "at": "2026-05-02T11:40:00+08:00"}],
    "service": {"promised_by": "2026-05-04T09:10:00+08:00"},
}


def decision(verdict) -> tuple:
    """What a verdict decides, without the text (a message quotes the route's own deadline)."""
    d = json.loads(verdict.to_json())
    return (sorted(f["rule"] for f in d["findings"]), d["classifications"], d.get("complaint_level"),
            d["fines_cny"], d["refunds_cny"], d["compensation_cny"])


def with_route(case: dict, route: str | None) -> dict:
    out = copy.deepcopy(case)
    out.setdefault("service", {})["route"] = route
    return out


def test_the_issue_case_is_a_total_delay_whatever_the_route(engine):
    verdict = engine.adjudicate(copy.deepcopy(ISSUE_CASE))
    fired = [f.rule for f in verdict.findings]
    assert "national.service.total-delay@2023" in fired
    assert "service.route" not in verdict.missing
    assert "lost" in verdict.classifications
    for route in ROUTES:
        assert decision(engine.adjudicate(with_route(ISSUE_CASE, route))) == decision(verdict)


def test_too_early_for_the_longest_allowance_lists_the_route_missing(engine):
    case = copy.deepcopy(ISSUE_CASE)
    case["as_of"] = "2026-05-08T09:00:00+08:00"      # past 3 × 24 h (same city), not past 7 × 24 h
    verdict = engine.adjudicate(case)
    assert "service.route" in verdict.missing
    assert "national.service.total-delay@2023" not in [f.rule for f in verdict.findings]
    case["as_of"] = "2026-05-06T09:00:00+08:00"      # before every route's grace: decided, not lost
    verdict = engine.adjudicate(case)
    assert "service.route" not in verdict.missing and "lost" not in verdict.classifications


def test_no_route_and_no_promise_stays_silent(engine):
    case = copy.deepcopy(ISSUE_CASE)
    case["service"] = {"promised_by": None}
    verdict = engine.adjudicate(case)
    assert not [f for f in verdict.findings if f.clause == "NR-4"] and "service.route" not in verdict.missing


def test_every_backend_decides_the_issue_case_alike(engine):
    chunk = [copy.deepcopy(ISSUE_CASE), with_route(ISSUE_CASE, "same_city")]
    chunk.append({**copy.deepcopy(ISSUE_CASE), "as_of": "2026-05-08T09:00:00+08:00"})
    durable = [v.to_json() for _, v in engine.adjudicate_many(copy.deepcopy(chunk), backend="durable")]
    polars = [v.to_json() for _, v in engine.adjudicate_many(copy.deepcopy(chunk), backend="polars")]
    assert durable == polars
    lines = [(i, json.dumps(c).encode()) for i, c in enumerate(chunk, start=1)]
    args = dict(source="cases.jsonl", raw=True, as_of=None, now=AS_OF, lang="en")
    bulk = adjudicate_rows(engine, lines, backend="polars", **args)
    reference = adjudicate_rows(engine, lines, backend="durable", **args)
    assert bulk.columns is not None            # the columnar pass judged the rows, no fallback
    assert bulk.verdicts == reference.verdicts
    assert "national.service.total-delay@2023" in bulk.verdicts[0][1]


def test_the_closed_comparisons_read_a_copy_per_route(engine):
    closures = {c.derived: c for c in engine.program.closures}
    due = closures["nr4_total_delay_due"]
    assert due.fact == "service.route" and [v for v, _ in due.copies] == list(ROUTES)
    assert all(SEPARATOR in name for _, name in due.copies)
    assert len({name for _, name in due.copies}) == 2       # intra- and inter-province share their figures


@st.composite
def routeless(draw) -> tuple[dict, str]:
    """A generated case with a promise (and a route), and an `as_of` anywhere up to 12 days on.

    Always a promise: without one, a missing route is no unknown but policy (NR-4 "no route and
    no promise: not applicable, silently", an `exists` test), which test_no_route_and_no_promise...
    holds."""
    case = draw(cases())
    case["service"] = {"route": draw(st.sampled_from(ROUTES)),
                       "promised_by": iso(BASE_T + timedelta(seconds=draw(st.integers(0, 3 * 86400))))}
    as_of = iso(BASE_T + timedelta(hours=draw(st.integers(0, 12 * 24))))
    return case, as_of


@PROPERTY
@given(routeless())
def test_a_removed_route_is_missing_or_changes_nothing(engine, drawn):
    case, as_of = drawn
    unknown = engine.adjudicate(with_route(case, None), as_of=as_of)
    if "service.route" in unknown.missing:
        return
    for route in ROUTES:
        assert decision(engine.adjudicate(with_route(case, route), as_of=as_of)) == decision(unknown), route


@PROPERTY
@given(st.lists(routeless(), min_size=1, max_size=12))
def test_routeless_chunks_agree_on_every_backend(engine, drawn):
    chunk = [with_route(c, None) | {"as_of": as_of} for c, as_of in drawn]
    durable = [v.to_json() if not isinstance(v, Exception) else repr(v)
               for _, v in engine.adjudicate_many(copy.deepcopy(chunk), backend="durable")]
    polars = [v.to_json() if not isinstance(v, Exception) else repr(v)
              for _, v in engine.adjudicate_many(copy.deepcopy(chunk), backend="polars")]
    assert durable == polars
    lines = [(i, json.dumps(c).encode()) for i, c in enumerate(chunk, start=1)]
    args = dict(source="cases.jsonl", raw=True, as_of=None, now=AS_OF, lang="zh")
    bulk = adjudicate_rows(engine, lines, backend="polars", **args)
    assert bulk.verdicts == adjudicate_rows(engine, lines, backend="durable", **args).verdicts


# ---- what a person reads: the deciding figure in the message, the reason in `explain` ------------

LATEST_DUE = {"zh": "5月11日 09:10", "en": "11 May 2026 09:10"}     # intra/inter-province: 4 May + 7 × 24 h


def total_delay_message(verdict_json: str) -> str:
    [finding] = [f for f in json.loads(verdict_json)["findings"] if f["rule"] == "national.service.total-delay@2023"]
    return finding["message"]


def test_the_message_names_the_latest_due_on_every_backend(engine):
    """Decided through the copies per route, `{nr4_total_delay_due}` shows the due that was exceeded
    even for the longest allowance (CompiledRule.figures), per case, in bulk and on the columnar path."""
    chunk = [copy.deepcopy(ISSUE_CASE), with_route(ISSUE_CASE, "intra_province")]
    lines = [(i, json.dumps(c).encode()) for i, c in enumerate(chunk, start=1)]
    for lang in ("zh", "en"):
        single = engine.adjudicate(copy.deepcopy(ISSUE_CASE), lang=lang).to_json()
        message = total_delay_message(single)
        assert LATEST_DUE[lang] in message and "—" not in message, message
        # the route known to be the one with that allowance: the same words
        assert total_delay_message(engine.adjudicate(with_route(ISSUE_CASE, "intra_province"), lang=lang).to_json()) \
            == message
        durable = [v.to_json() for _, v in engine.adjudicate_many(copy.deepcopy(chunk), backend="durable", lang=lang)]
        polars = [v.to_json() for _, v in engine.adjudicate_many(copy.deepcopy(chunk), backend="polars", lang=lang)]
        assert durable == polars and durable[0] == single
        args = {"source": "cases.jsonl", "raw": True, "as_of": None, "now": AS_OF, "lang": lang}
        bulk = adjudicate_rows(engine, lines, backend="polars", **args)
        assert bulk.columns is not None            # the columnar pass wrote the message, no fallback
        assert bulk.verdicts == adjudicate_rows(engine, lines, backend="durable", **args).verdicts
        assert LATEST_DUE[lang] in bulk.verdicts[0][1]


def test_the_figure_is_the_bound_and_nothing_where_the_route_is_known(engine):
    from slarules.packs.program import Bound
    rule = engine.program.rule("national.service.total-delay@2023")
    bound = rule.figures["nr4_total_delay_due"]
    assert isinstance(bound, Bound) and bound.fact == "service.route" and bound.greatest(True)
    copies = {v: name for v, name in bound.copies}
    values = {copies["same_city"]: 3, copies["intra_province"]: 7}
    assert bound.figure(values) == 7 and bound.figure(values, outcome=False) == 3
    assert bound.deciding_values(values) == ["intra_province", "inter_province"]
    assert bound.figure({**values, "service.route": "same_city"}) is None       # known route, own due absent
    assert bound.figure({**values, "nr4_total_delay_due": 1}) == 1


def test_explain_says_why_in_zh_and_en(engine):
    """The closed comparison is one test, as the pack wrote it, with a sentence naming the figure."""
    early = {**copy.deepcopy(ISSUE_CASE), "as_of": "2026-05-06T09:00:00+08:00"}     # before the shortest grace
    for case, status, outcome, figure in ((ISSUE_CASE, "fired", "true", LATEST_DUE),
                                          (early, "not_fired", "false", {"zh": "5月7日 09:10", "en": "7 May 2026 09:10"})):
        for lang in ("zh", "en"):
            e = engine.explain(copy.deepcopy(case), lang=lang)
            [trace] = [t for t in e.rules if t.rule == "national.service.total-delay@2023"]
            assert trace.status == status
            [test] = [t for t in trace.tests if t.why]
            assert test.condition == "as_of > nr4_total_delay_due" and test.result == outcome
            assert test.saw["service.route"] is None and test.saw["nr4_total_delay_due"] is None
            assert figure[lang] in test.why and "service.route" in test.why
            if lang == "en":
                assert test.why.startswith("service.route is not recorded, but every route gives the same outcome")
                assert ("latest" if outcome == "true" else "earliest") in test.why
                assert ("intra_province, inter_province" if outcome == "true" else "(same_city)") in test.why
            else:
                assert ("最晚" if outcome == "true" else "最早") in test.why
                assert ("省内异地" if outcome == "true" else "同城") in test.why
            from slarules.verdict.explain import render_explanation
            assert test.why in render_explanation(e, lang)


def test_a_known_route_explains_the_comparison_as_written(engine):
    e = engine.explain(with_route(ISSUE_CASE, "intra_province"), lang="en")
    [trace] = [t for t in e.rules if t.rule == "national.service.total-delay@2023"]
    tests = {t.condition: t for t in trace.tests}
    assert "as_of > nr4_total_delay_due" in tests and not tests["as_of > nr4_total_delay_due"].why
    assert not any("service.route" in c for c in tests)


def test_no_copy_name_reaches_a_person(engine, capsys, tmp_path):
    """`__if__` names (a derived fact's copy per value) are internal: not in a verdict, `explain`
    (text or JSON) nor `slarules check`, for routeless cases decided, undecided and not yet due."""
    from slarules.cli import main
    cases = []
    for as_of in ("2026-05-14T09:00:00+08:00", "2026-05-08T09:00:00+08:00", "2026-05-06T09:00:00+08:00"):
        cases.append({**copy.deepcopy(ISSUE_CASE), "as_of": as_of})
    seen = []
    for i, case in enumerate(cases):
        path = tmp_path / f"case{i}.json"
        path.write_text(json.dumps(case))
        for command in ("adjudicate", "explain"):
            for fmt in ("text", "json"):
                for lang in ("zh", "en"):
                    assert main([command, str(path), "--format", fmt, "--lang", lang]) == 0
                    seen.append(capsys.readouterr().out)
    lines = [(i, json.dumps(c).encode()) for i, c in enumerate(cases, start=1)]
    seen += [text for _, text in adjudicate_rows(engine, lines, backend="polars", source="cases.jsonl", raw=True,
                                                 as_of=None, now=AS_OF, lang="en").verdicts]
    assert all(out.strip() for out in seen)
    assert not [out for out in seen if SEPARATOR in out]


def test_check_reads_closed_comparisons_as_written(tmp_path, capsys):
    """A contradiction over a derived fact that reads the route is found and named as the pack wrote
    it (the copies per route are no conjunction of their own, and no name an author wrote)."""
    import shutil

    from slarules.cli import main
    from slarules.engine import default_rules_dir
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    pack = rules / "national" / "service-2023.yaml"
    old = "      - {fact: as_of, gt: {fact: nr4_total_delay_due}}\n"
    text = pack.read_text()
    assert text.count(old) == 1
    pack.write_text(text.replace(old, old + "      - {fact: nr4_total_delay_grace, gt: 200h}\n"
                                             "      - {fact: nr4_total_delay_grace, lt: 100h}\n"))
    for fmt in ("text", "json"):
        assert main(["check", str(rules), "--no-analysis", "--format", fmt]) in (0, 1)
        out = capsys.readouterr().out
        assert SEPARATOR not in out
    assert main(["check", str(rules)]) == 1
    out = capsys.readouterr().out
    assert SEPARATOR not in out
    [msg] = [line for line in out.splitlines() if "can never fire" in line]
    assert "(nr4_total_delay_grace > " in msg and " and nr4_total_delay_grace < " in msg, msg
