"""Customer-service KPIs (docs/policy.md, KPI): each indicator at its edges, both batch paths equal,
statements of any split merging to the same kpi.csv, a resumed batch writing the same figures."""
from __future__ import annotations

import csv
import json
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from slarules.batch import kpi_table
from slarules.settlement.kpi import HEADER, half_up
from slarules.batch.runner import BatchOptions, adjudicate_rows, run_batch
from slarules.settlement.statement import STATEMENT_FILES, Statement
from slarules.errors import CaseError, SlaRulesError

from conftest import ROOT, case, complaint, crash_on_chunk

sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import write as generate  # noqa: E402

AS_OF = "2026-05-20T00:00:00+08:00"          # after every generated case's own as_of
NOW = "2026-05-10T09:00:00+08:00"


def contact(waybill="K1", stations=None, **kw) -> dict:
    c = case(waybill=waybill, complaint=complaint(**kw))
    if stations is not None:
        c["stations"] = stations
    return c


def table(engine, cases, backend="durable") -> dict[tuple[str, str], dict[str, str]]:
    rows = kpi_table(engine.adjudicate_many(cases, backend=backend))
    return {(r["group"], r["key"]): r for r in rows}


def read_kpi(folder: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((folder / "kpi.csv").open(encoding="utf-8")))


# -- the fields -------------------------------------------------------------------------------

@pytest.mark.parametrize("field, bad, expected", [
    ("satisfied", "no", "complaint.satisfied"),
    ("resolved_first_contact", 1, "complaint.resolved_first_contact"),
    ("handling_minutes", "1.234", "complaint.handling_minutes"),
    ("handling_minutes", -1, "complaint.handling_minutes"),
    ("agent", "CS 0107", "complaint.agent"),
    ("team", "", "complaint.team"),
])
def test_a_bad_kpi_field_is_a_located_error(engine, field, bad, expected):
    with pytest.raises(CaseError) as err:
        engine.adjudicate(contact(**{field: bad}))
    assert err.value.field == expected


def test_kpi_fields_change_no_verdict(engine):
    plain = contact(channel="online")
    rich = contact(channel="online", agent="CS-0107", team="HHHT-CS-2", resolved_first_contact=True,
                   satisfied=False, handling_minutes="14.5")
    assert engine.adjudicate(plain).to_json() == engine.adjudicate(rich).to_json()


# -- each indicator at its edges --------------------------------------------------------------

def test_connection_rate_counts_phone_contacts_with_a_call_record_only(engine):
    t = table(engine, [
        contact("A", agent="A1"),                                                       # phone, no record
        contact("B", agent="A2", rings=9),                                              # rang, never connected
        contact("C", agent="A3", rings=2, connected_at="2026-05-03T08:00:12+08:00"),
        contact("D", agent="A4", connected_at="2026-05-03T08:00:12+08:00"),             # connected, rings unknown
        contact("E", agent="A5", channel="online", connected_at="2026-05-03T08:00:12+08:00"),  # not a call
    ])
    assert [t[("agent", a)]["calls"] for a in ("A1", "A2", "A3", "A4", "A5")] == ["0", "1", "1", "1", "0"]
    assert [t[("agent", a)]["connection_rate"] for a in ("A1", "A2", "A3", "A4", "A5")] == \
        ["", "0.0000", "1.0000", "1.0000", ""]
    assert t[("all", "all")]["calls"] == "3" and t[("all", "all")]["connection_rate"] == "0.6667"


def test_resolution_counts_contacts_closed_at_or_before_as_of(engine):
    as_of = "2026-05-10T09:00:00+08:00"
    t = table(engine, [
        contact("A", agent="X", closed_at=as_of),                                 # closed exactly at as_of
        contact("B", agent="X", closed_at="2026-05-10T09:00:01+08:00"),           # closed after as_of: open
        contact("C", agent="X", closed_at=None),                                  # never closed
    ])
    assert t[("agent", "X")]["resolution_rate"] == "0.3333" and t[("agent", "X")]["contacts"] == "3"


def test_fcr_and_csat_count_only_contacts_that_give_them(engine):
    t = table(engine, [
        contact("A", agent="X", resolved_first_contact=True, satisfied=False),
        contact("B", agent="X", resolved_first_contact=False),                    # not surveyed
        contact("C", agent="X"),                                                  # neither given
        contact("D", agent="Y"),
    ])
    x, y = t[("agent", "X")], t[("agent", "Y")]
    assert (x["fcr"], x["csat"]) == ("0.5000", "0.0000")
    assert (y["fcr"], y["csat"], y["aht_minutes"]) == ("", "", "")               # empty, not 0


def test_aht_is_the_mean_of_given_handling_minutes_rounded_half_up(engine):
    t = table(engine, [contact("A", agent="X", handling_minutes="14.25"), contact("B", agent="X"),
                       contact("C", agent="Y", handling_minutes="0.05"), contact("D", agent="Y", handling_minutes=0)])
    assert t[("agent", "X")]["aht_minutes"] == "14.3"       # 14.25 half-up, where a float would give 14.2
    assert t[("agent", "Y")]["aht_minutes"] == "0.0"        # 0.025
    assert t[("all", "all")]["aht_minutes"] == "4.8"        # 14.30 / 3 = 4.7666…


def test_complaint_handling_time_counts_closed_complaints_not_queries(engine):
    t = table(engine, [
        contact("A", agent="X", received_at="2026-05-03T08:00:00+08:00", closed_at="2026-05-03T08:25:00+08:00"),
        contact("B", agent="X", kind="query", received_at="2026-05-03T08:00:00+08:00",
                closed_at="2026-05-03T18:00:00+08:00"),                           # a query: resolution only
        contact("C", agent="X", closed_at="2026-05-11T08:00:00+08:00"),           # closed after as_of
        contact("D", agent="X", received_at="2026-05-03T08:00:00+08:00", closed_at="2026-05-03T08:00:03+08:00"),
    ])
    x = t[("agent", "X")]
    assert x["complaint_handling_minutes"] == "12.5"        # (25 + 0.05) / 2 = 12.525 -> 12.5
    assert x["resolution_rate"] == "0.7500"


def test_groups_are_agent_team_delivering_station_and_all(engine):
    no_station = contact("A", stations={"sending": "S-01"}, agent="X", team="T")   # station: last arrival scan
    no_agent = contact("B", stations={"sending": "S-01", "delivering": "D-09"})
    not_a_contact = case(waybill="C")
    t = table(engine, [no_station, no_agent, not_a_contact])
    assert sorted(t) == [("agent", "X"), ("all", "all"), ("station", "D-01"), ("station", "D-09"), ("team", "T")]
    assert t[("all", "all")]["contacts"] == "2"


def test_half_up_is_exact_and_symmetric():
    assert half_up(1, 8, 2) == "0.13" and half_up(-1, 8, 2) == "-0.13" and half_up(3, 8, 2) == "0.38"
    assert half_up(1, 3, 4) == "0.3333" and half_up(2, 3, 4) == "0.6667" and half_up(0, 5, 4) == "0.0000"
    assert half_up(10 ** 30 + 1, 2 * 10 ** 30, 4) == "0.5000" and half_up(-1, 3, 1) == "-0.3"
    assert half_up(-1, 30, 1) == "0.0"                      # no "-0.0"


# -- generated contacts: the definitions, both paths, the CLI ---------------------------------

@pytest.fixture(scope="module")
def kpi_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kpi") / "cases.jsonl"
    generate(str(path), 3000, seed=16, bad_rate=0.01, kpi=True)
    return path


def expected_from_definitions(path: Path, engine) -> list[list[str]]:
    """kpi.csv computed straight from the case JSON, with Fractions: the policy read once more, by hand."""
    from datetime import datetime

    def t(text):
        return datetime.fromisoformat(text)
    sums: dict = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        try:
            engine.adjudicate(data, as_of=AS_OF)
        except CaseError:
            continue
        c = data.get("complaint")
        if c is None:
            continue
        station = data["stations"]["delivering"]
        closed = c.get("closed_at") is not None and t(c["closed_at"]) <= t(AS_OF)
        call = c["channel"] == "phone" and ("rings" in c or "connected_at" in c)
        facts = {"calls": [call], "connection_rate": [("connected_at" in c)] if call else [],
                 "resolution_rate": [closed], "fcr": [c["resolved_first_contact"]] if "resolved_first_contact" in c else [],
                 "csat": [c["satisfied"]] if "satisfied" in c else [],
                 "aht_minutes": [Fraction(str(c["handling_minutes"]))] if "handling_minutes" in c else [],
                 "complaint_handling_minutes":
                     [Fraction(int((t(c["closed_at"]) - t(c["received_at"])).total_seconds()), 60)]
                     if closed and c["kind"] == "complaint" else []}
        for group, k in (("agent", c.get("agent")), ("team", c.get("team")), ("station", station), ("all", "all")):
            if k is not None:
                entry = sums.setdefault((group, k), {n: [] for n in facts} | {"contacts": 0})
                entry["contacts"] += 1
                for n, v in facts.items():
                    entry[n] += v

    def shown(values, places):
        if not values:
            return ""
        mean = Fraction(sum(Fraction(v) for v in values), len(values))
        q = int(mean * 10 ** places + Fraction(1, 2)) if mean >= 0 else -int(-mean * 10 ** places + Fraction(1, 2))
        return f"{q / 10 ** places:.{places}f}"
    out = []
    for (group, k), e in sorted(sums.items()):
        out.append([group, k, str(e["contacts"]), str(sum(e["calls"]))]
                   + [shown(e[n], 4) for n in ("connection_rate", "resolution_rate", "fcr", "csat")]
                   + [shown(e[n], 1) for n in ("aht_minutes", "complaint_handling_minutes")])
    return out


def test_generated_contacts_match_the_definitions_on_both_backends(engine, kpi_file, tmp_path):
    from slarules.cli import main
    for backend in ("polars", "durable"):
        assert main(["batch", str(kpi_file), "-o", str(tmp_path / f"{backend}.jsonl"), "--as-of", AS_OF,
                     "--backend", backend, "--statement", str(tmp_path / backend), "--no-progress"]) == 0
    polars = (tmp_path / "polars" / "kpi.csv").read_bytes()
    assert polars == (tmp_path / "durable" / "kpi.csv").read_bytes()
    assert (tmp_path / "polars" / "report.html").read_bytes() == (tmp_path / "durable" / "report.html").read_bytes()
    rows = list(csv.reader(polars.decode().splitlines()))
    assert rows[0] == HEADER
    assert rows[1:] == expected_from_definitions(kpi_file, engine)
    groups = {r[0] for r in rows[1:]}
    assert groups == {"agent", "all", "station", "team"}
    assert all(r[4:] != [""] * 6 for r in rows[1:] if r[0] == "team")


def test_the_columnar_path_takes_kpi_rows_and_counts_them_as_the_per_case_path(engine, kpi_file):
    rows = [(n, line) for n, line in enumerate(kpi_file.read_bytes().splitlines()[:800], start=1)]
    columnar = adjudicate_rows(engine, rows, source=str(kpi_file), raw=True, as_of=AS_OF, now=NOW, lang="zh",
                               backend="polars")
    per_case = adjudicate_rows(engine, rows, source=str(kpi_file), raw=True, as_of=AS_OF, now=NOW, lang="zh",
                               backend="durable")
    assert columnar.columns is not None and columnar.columns.height > 700      # the columnar path did count them
    assert columnar.statement.kpi_rows() == per_case.statement.kpi_rows()
    assert len(columnar.statement.kpi["agent"]) > 20


def test_the_library_call_gives_the_batch_figures(engine, kpi_file, tmp_path):
    run_batch(engine, str(kpi_file), str(tmp_path / "v.jsonl"),
              BatchOptions(as_of=AS_OF, progress=False, statement=str(tmp_path / "st")))
    cases = []
    for line in kpi_file.read_text(encoding="utf-8").splitlines():
        cases.append(json.loads(line))
    for backend in ("polars", "durable"):
        assert kpi_table(engine.adjudicate_many(cases, as_of=AS_OF, backend=backend)) == read_kpi(tmp_path / "st")


def test_a_crashed_then_resumed_batch_writes_the_same_statement(engine, kpi_file, tmp_path, monkeypatch):
    opts = lambda folder: BatchOptions(as_of=AS_OF, chunk_size=200, workers=1, progress=False,  # noqa: E731
                                       statement=str(tmp_path / folder), checkpoint_seconds=0)
    run_batch(engine, str(kpi_file), str(tmp_path / "whole.jsonl"), opts("s1"))
    undo = crash_on_chunk(monkeypatch, 7)
    with pytest.raises(RuntimeError):
        run_batch(engine, str(kpi_file), str(tmp_path / "again.jsonl"), opts("s2"))
    state = json.loads((tmp_path / "again.jsonl.checkpoint.json").read_text())
    assert state["statement"]["kpi"]["all"]["all"]["contacts"] > 0          # counters, never cases
    undo()
    assert run_batch(engine, str(kpi_file), str(tmp_path / "again.jsonl"), opts("s2")).resumed_from
    for name in STATEMENT_FILES:
        assert (tmp_path / "s1" / name).read_bytes() == (tmp_path / "s2" / name).read_bytes(), name


# -- merging ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def judged(engine, kpi_file):
    """(facts, verdict) of the generated contacts, and some cases without a complaint."""
    cases = [json.loads(line) for line in kpi_file.read_text(encoding="utf-8").splitlines()[:1500]]
    picked = [c for c in cases if "complaint" in c][:150] + cases[:30]
    return [(f, v) for f, v in engine.adjudicate_many(picked, as_of=AS_OF, backend="durable") if f is not None]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_merging_statements_of_any_split_gives_the_one_pass_kpi(judged, data):
    order = data.draw(st.permutations(range(len(judged))))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(judged)), max_size=8)))
    one = Statement()
    for f, v in judged:
        one.add(f, v)
    parts = []
    for lo, hi in zip([0] + cuts, cuts + [len(judged)]):
        part = Statement()
        for i in order[lo:hi]:
            part.add(*judged[i])
        parts.append(Statement.from_dict(json.loads(json.dumps(part.to_dict()))))   # as a checkpoint keeps it
    merged = Statement()
    for part in data.draw(st.permutations(parts)):
        merged.merge(part)
    assert merged.kpi_rows() == one.kpi_rows()
    assert merged.html("t") == one.html("t")


def kpi_fields():
    instants = st.sampled_from(["2026-05-03T08:00:00+08:00", "2026-05-03T09:30:00+08:00",
                                "2026-05-10T09:00:00+08:00", "2026-05-12T00:00:00+08:00"])
    optional = {"agent": st.sampled_from(["A1", "A2", "A3"]), "team": st.sampled_from(["T1", "T2"]),
                "rings": st.integers(0, 12), "connected_at": instants, "closed_at": instants,
                "resolved_first_contact": st.booleans(), "satisfied": st.booleans(),
                "handling_minutes": st.decimals(0, 200, places=2).map(str)}
    return st.fixed_dictionaries({"kind": st.sampled_from(["query", "complaint"]),
                                  "channel": st.sampled_from(["phone", "online", "ticket"]),
                                  "received_at": instants}, optional=optional)


@settings(max_examples=40, deadline=None)
@given(st.lists(kpi_fields(), min_size=1, max_size=12))
def test_columnar_and_per_case_kpis_agree_at_the_edges(engine, complaints):
    cases = []
    for i, c in enumerate(complaints):
        data = case(waybill=f"H{i}", complaint={"issues": [], **c})
        data.pop("as_of")
        cases.append(data)
    rows = [(i, json.dumps(c).encode()) for i, c in enumerate(cases, start=1)]
    columnar = adjudicate_rows(engine, rows, source="h", raw=True, as_of=None, now=NOW, lang="zh", backend="polars")
    per_case = adjudicate_rows(engine, rows, source="h", raw=True, as_of=None, now=NOW, lang="zh", backend="durable")
    assert columnar.columns is not None and columnar.columns.height == len(rows)     # all on the columnar path
    assert columnar.statement.kpi_rows() == per_case.statement.kpi_rows()
    assert columnar.verdicts == per_case.verdicts


def test_the_readme_shows_lines_the_commands_write(engine, tmp_path):
    import re
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- kpi -->\s*```sh\n(.*?)```\s*```\n(.*?)```", text, re.S)
    generate_line, batch_line = [line.split("#")[0].split() for line in block.group(1).splitlines()]
    count, as_of = int(generate_line[2]), batch_line[batch_line.index("--as-of") + 1]
    assert "--kpi" in generate_line and "--statement" in batch_line
    generate(str(tmp_path / "cases.jsonl"), count, kpi=True)
    run_batch(engine, str(tmp_path / "cases.jsonl"), str(tmp_path / "v.jsonl"),
              BatchOptions(as_of=as_of, progress=False, statement=str(tmp_path / "st")))
    written = (tmp_path / "st" / "kpi.csv").read_text(encoding="utf-8").splitlines()
    shown = block.group(2).splitlines()
    assert shown[0] == written[0] and len(shown) > 3
    assert set(shown) <= set(written)


def test_a_checkpoint_from_before_the_kpis_is_refused_not_resumed_without_them(engine, kpi_file, tmp_path):
    """Its statement has no KPI counters: resuming would write a kpi.csv missing the finished chunks."""
    out = tmp_path / "v.jsonl"
    old = {"version": 2, "fingerprint": "x", "as_of": AS_OF, "statement": Statement().to_dict() | {"kpi": None}}
    (tmp_path / "v.jsonl.checkpoint.json").write_text(json.dumps(old))
    with pytest.raises(SlaRulesError, match="checkpoint of an earlier run cannot be read") as err:
        run_batch(engine, str(kpi_file), str(out), BatchOptions(as_of=AS_OF, progress=False))
    assert err.value.hint == "pass --fresh to start over" and not out.exists()


def test_report_ranks_agents_with_their_counts_and_sets_teams_against_the_network():
    from slarules.settlement.kpi import empty

    def counters(contacts, closed, **kw):
        return empty() | {"contacts": contacts, "closed": closed} | kw
    agents = {f"A{i:02d}": counters(3000, 2000 + i) for i in range(58)} | {"LUCKY": counters(3, 3)}
    kpi = {"agent": agents, "team": {"T1": counters(100, 50, csat_given=4, csat_yes=1)},
           "all": {"all": counters(174_003, 119_656, csat_given=4, csat_yes=1)}}
    html = Statement(kpi=kpi).html("t")
    section = html[html.index("<h2>Customer-service KPIs"):]
    teams = section[:section.index("<h3>Agents")]
    assert teams.index(">network<") < teams.index(">T1<")
    assert "50% of 100" in teams and "25% of 4" in teams and teams.count("#c0392b") == 2 * 2   # network ticks
    agents_part = section[section.index("<h3>Agents by resolution rate (59)"):]
    shown = [name for name in sorted(agents) if f">{name}<" in agents_part]
    assert len(shown) == 50 and "… 9 more agents in kpi.csv …" in agents_part
    # ranked by the rate's lower bound: 3 of 3 comes last, after 2,000 of 3,000, not first
    assert agents_part.index(">A57<") < agents_part.index(">A56<") < agents_part.index(">A00<") < agents_part.index(">LUCKY<")
    assert ">100% of 3<" in agents_part.replace("</svg> ", ">")     # its count beside it: 3, not 3,000
    assert "67% of 3,000" in agents_part and Statement(kpi=kpi).html("t") == html
