"""Dated pack versions (`effective:`): the version in force per case, on every boundary, and bad input.

tests/packs/dated/ holds `fees` 2025 (2025-07-01 to 2025-12-31) and `fees` 2026 (from
2026-01-01), Asia/Shanghai. The backends' agreement on them is in test_backends.py,
test_columnar.py and test_spark.py; here, what a verdict says and what `check` reports.
"""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from datetime import date, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slarules import Engine
from slarules.cli import main
from slarules.errors import PackError

from conftest import BASE, DATED, ROOT
from strategies import VERSION_BOUNDARIES


def collected(at: str, **collection) -> dict:
    c = copy.deepcopy(BASE)
    c["scans"][0]["at"] = at
    c["collection"].update({"charged_cny": "12.01"}, **collection)
    return c


def fees(engine: Engine, c: dict) -> tuple[list[str], list[str], list[str]]:
    """(versions of `fees` in the verdict's packs, fees findings, fees not_covered lines)."""
    v = engine.adjudicate(c, lang="en")
    return ([p.version for p in v.packs if p.name == "fees"], [f"{f.rule} {f.fine_cny}" for f in v.findings
                                                                if f.rule.startswith("fees.")],
            [n for n in v.not_covered if n.startswith("fees:")])


@pytest.mark.parametrize("at, version", [
    ("2025-06-30T23:59:59+08:00", None),           # the second before the first version
    ("2025-06-30T16:00:00+00:00", "2025"),         # 00:00 on 1 July in Shanghai, written in UTC: `from` is inclusive
    ("2025-07-01T00:59:59+09:00", None),           # 23:59:59 on 30 June in Shanghai, though 1 July in Tokyo
    ("2025-07-01T00:00:00+08:00", "2025"),
    ("2025-12-31T23:59:59+08:00", "2025"),         # `until` is inclusive: its whole last day
    ("2025-12-31T10:59:59-05:00", "2025"),         # 23:59:59 in Shanghai, still 31 December in Bogotá
    ("2025-12-31T11:00:00-05:00", "2026"),         # midnight in Shanghai
    ("2026-01-01T00:00:00+08:00", "2026"),
    ("2030-05-01T09:00:00+08:00", "2026"),         # open-ended
])
def test_the_version_in_force_is_chosen_by_the_pack_days_at_the_collection_instant(dated_engine, at, version):
    packs, findings, not_covered = fees(dated_engine, collected(at))
    if version is None:
        assert packs == [] and findings == []
        assert not_covered == ["fees: no version in force at 30 Jun 2025 23:59:59 (versions: 2025 2025-07-01 to "
                               "2025-12-31; 2026 from 2026-01-01; days in Asia/Shanghai)"] \
            if at.endswith("+08:00") else len(not_covered) == 1
    else:
        fine = {"2025": "50.00", "2026": "100.00"}[version]
        assert (packs, findings, not_covered) == ([version], [f"fees.overcharge@{version} {fine}"], [])


def test_undated_packs_are_always_listed_and_precedence_stays_inside_a_version(dated_engine):
    v = dated_engine.adjudicate(collected("2026-03-01T09:00:00+08:00", sender_signed=False), lang="en")
    assert [p.name for p in v.packs] == ["regulations", "taobao", "uc", "fees"]
    assert [f.rule for f in v.findings if f.rule.startswith("fees.")] == ["fees.overcharge-unsigned@2026"]
    old = dated_engine.adjudicate(collected("2025-09-01T09:00:00+08:00", sender_signed=False), lang="en")
    assert [f.rule for f in old.findings if f.rule.startswith("fees.")] == ["fees.overcharge@2025"]


def test_the_collect_scan_decides_else_the_earliest_scan(dated_engine):
    c = collected("2025-12-31T12:00:00+08:00")
    c["scans"] = [s for s in c["scans"] if s["type"] != "collect"]
    assert fees(dated_engine, c)[0] == ["2026"]           # the dispatch scan, 2026-05-01
    c["scans"].append({"type": "collect", "station": "S-01", "at": "2025-12-31T12:00:00+08:00"})
    assert fees(dated_engine, c)[0] == ["2025"]           # a collect scan, listed last, still decides


def test_a_case_without_scans_is_not_covered_by_a_dated_pack(dated_engine, engine, tmp_path):
    """NATIONAL.md: a case no version covers gets nothing from the pack and a `not_covered` line saying why."""
    c = collected("2026-01-01T00:00:00+08:00")
    c["scans"] = []
    v = dated_engine.adjudicate(c, lang="en")
    assert not [f for f in v.findings if f.rule.startswith("fees.")]
    assert [n for n in v.not_covered if n.startswith("fees:")] == [
        "fees: no version can be chosen without the collection instant (no scans) "
        "(versions: 2025 2025-07-01 to 2025-12-31; 2026 from 2026-01-01)"]
    path = tmp_path / "case.json"
    path.write_text(__import__("json").dumps(c))
    out = subprocess.run([sys.executable, "-m", "slarules", "adjudicate", str(path), "--packs", str(ROOT / "rules"),
                          str(DATED), "--format", "json"], capture_output=True, text=True)
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert any(n.startswith("fees: ") for n in __import__("json").loads(out.stdout)["not_covered"])


def test_a_pack_may_choose_by_another_instant(tmp_path):
    for f in DATED.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text().replace('effective: {from: "2026-01-01"}',
                                                             'effective: {from: "2026-01-01", by: signed_at}')
                                       .replace('effective: {from: "2025-07-01", until: "2025-12-31"}',
                                                'effective: {from: "2025-07-01", until: "2025-12-31", by: signed_at}'))
    engine = Engine.load([tmp_path])
    c = collected("2025-12-31T12:00:00+08:00")            # signed 2026-05-02: version 2026
    assert [p.version for p in engine.adjudicate(c).packs] == ["2026"]
    c["scans"] = [s for s in c["scans"] if s["type"] != "signed"]
    v = engine.adjudicate(c, lang="en")
    assert v.packs == [] and v.not_covered == [
        "fees: no version can be chosen without `signed_at` (versions: 2025 2025-07-01 to 2025-12-31; "
        "2026 from 2026-01-01)"]


def write_versions(tmp_path: Path, first: str, second: str) -> Path:
    shutil.copy(DATED / "fees-2025.yaml", tmp_path)
    text = (DATED / "fees-2026.yaml").read_text()
    (tmp_path / "fees-2026.yaml").write_text(text.replace('effective: {from: "2026-01-01"}', second))
    (tmp_path / "fees-2025.yaml").write_text((DATED / "fees-2025.yaml").read_text().replace(
        'effective: {from: "2025-07-01", until: "2025-12-31"}', first))
    return tmp_path


def test_overlapping_versions_are_an_error_naming_both_files(tmp_path, capsys):
    d = write_versions(tmp_path, 'effective: {from: "2025-07-01", until: "2025-12-31"}',
                       'effective: {from: "2025-12-31"}')
    with pytest.raises(PackError) as err:
        Engine.load([d])
    assert f"{d / 'fees-2026.yaml'}:5" in str(err.value) or f"{d / 'fees-2025.yaml'}:6" in str(err.value)
    assert main(["check", str(d)]) == 1
    out = capsys.readouterr().out
    assert f"{d / 'fees-2025.yaml'}:6:1: error: versions `2025` (2025-07-01 to 2025-12-31) and `2026` " \
           f"(from 2025-12-31) of pack `fees` are both in force on some days" in out
    assert f"{d / 'fees-2026.yaml'}:5:1: error:" in out and f"(the other is {d / 'fees-2025.yaml'}:6)" in out


def test_a_gap_between_versions_is_a_warning(tmp_path, capsys):
    d = write_versions(tmp_path, 'effective: {from: "2025-07-01", until: "2025-12-31"}',
                       'effective: {from: "2026-01-05"}')
    assert main(["check", str(d)]) == 0
    out = capsys.readouterr().out
    assert "warning: no version of pack `fees` is in force from 2026-01-01 to 2026-01-04" in out
    assert out.strip().endswith("0 errors, 1 warning")
    assert main(["check", "--strict", str(d)]) == 1
    engine = Engine.load([d])
    assert fees(engine, collected("2026-01-03T12:00:00+08:00"))[2][0].startswith("fees: no version in force")


@pytest.mark.parametrize("first, second, message", [
    ('effective: {from: "2025-02-30"}', 'effective: {from: "2026-01-01"}', "`2025-02-30` is not a date"),
    ('effective: {from: "2025/07/01"}', 'effective: {from: "2026-01-01"}', "String should match pattern"),
    ('effective: {from: "2025-07-01", until: "2025-06-30"}', 'effective: {from: "2026-01-01"}',
     "`until` 2025-06-30 is before `from` 2025-07-01"),
    ("", 'effective: {from: "2026-01-01"}', "pack `fees` is loaded twice and this version has no `effective` dates"),
    ('effective: {from: "2025-07-01", until: "2025-12-31", by: parcel.weight_kg}',
     'effective: {from: "2026-01-01", by: parcel.weight_kg}',
     "`parcel.weight_kg` is a weight, a version is chosen by an instant"),
    ('effective: {from: "2025-07-01", until: "2025-12-31", by: signed_at}', 'effective: {from: "2026-01-01"}',
     "choose by different instants"),
    ('effective: {from: "2025-07-01", until: "2025-12-31", by: colected_at}',
     'effective: {from: "2026-01-01", by: colected_at}',
     "unknown fact `colected_at`"),
])
def test_bad_dates_are_located_pack_errors(tmp_path, capsys, first, second, message):
    d = write_versions(tmp_path, first, second)
    with pytest.raises(PackError) as err:
        Engine.load([d])
    assert message in str(err.value) and err.value.file and err.value.line
    assert main(["adjudicate", str(ROOT / "examples" / "cases" / "clean.yaml"), "--packs", str(d)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and "Traceback" not in captured.err


def test_one_version_loaded_twice_is_an_error(tmp_path):
    shutil.copy(DATED / "fees-2025.yaml", tmp_path / "a.yaml")
    shutil.copy(DATED / "fees-2025.yaml", tmp_path / "b.yaml")
    with pytest.raises(PackError, match="version `2025` of pack `fees` is loaded twice"):
        Engine.load([tmp_path])


def test_pack_tests_of_dated_versions_cover_every_rule(capsys):
    assert main(["test", str(DATED), "--packs", str(DATED)]) == 0
    out = capsys.readouterr().out
    assert "100%" in out



ARTICLES = """
  FEE-1:
    title: 多收费用 / overcharge (a regulation renumbered on 2025-10-01)
    versions:
      - {until: "2025-09-30", article: 第二十八条}
      - {from: "2025-10-01", article: 第二十九条}
"""


def with_articles(tmp_path: Path, catalogue: str = ARTICLES) -> Path:
    """tests/packs/dated with the shipped catalogue plus FEE-1, whose article changes inside version 2025."""
    for f in DATED.glob("fees-*.yaml"):
        text = f.read_text().replace("clause: TB-5", "clause: FEE-1").replace(
            'en: "Sent {fees_sent_on}; overcharged', 'en: "{article}: sent {fees_sent_on}; overcharged')
        (tmp_path / f.name).write_text(text)
    (tmp_path / "clauses.yaml").write_text((ROOT / "rules" / "clauses.yaml").read_text() + catalogue)
    return tmp_path


def test_a_finding_quotes_the_article_in_force_for_its_case_on_every_path(tmp_path):
    from slarules.batch.runner import adjudicate_rows
    engine = Engine.load([with_articles(tmp_path)])
    lines = []
    for at, article in (("2025-06-30T23:59:59+08:00", None), ("2025-07-01T00:00:00+08:00", "第二十八条"),
                        ("2025-09-30T23:59:59+08:00", "第二十八条"), ("2025-09-30T16:00:00+00:00", "第二十九条"),
                        ("2026-02-01T00:00:00+08:00", "第二十九条")):
        c = collected(at)
        messages = [f.message for f in engine.adjudicate(copy.deepcopy(c), lang="en").findings if f.clause == "FEE-1"]
        assert [m.split(":")[0] for m in messages] == ([article] if article else []), at
        lines.append(json.dumps(c).encode())
    rows = list(enumerate(lines, start=1))
    args = dict(source="cases.jsonl", raw=True, as_of=None, now="2026-05-20T00:00:00+00:00", lang="en")
    bulk = adjudicate_rows(engine, rows, backend="polars", **args)
    assert bulk.verdicts == adjudicate_rows(engine, rows, backend="durable", **args).verdicts
    assert bulk.columns is not None and bulk.columns["__row"].to_list() == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("catalogue, message", [
    (ARTICLES.replace('{until: "2025-09-30"', '{from: "2025-08-01", until: "2025-09-30"'),
     "clause `FEE-1` has no article for 2025-07-01 to 2025-07-31 while this version is in force"),
    (ARTICLES.replace('"2025-10-01"', '"2025-09-30"'), "clause `FEE-1` has two articles in force on 2025-09-30"),
    (ARTICLES.replace('"2025-10-01"', '"2025-13-01"'), "not a date"),
    ("\n  FEE-1: {title: overcharge}\n", "clause `FEE-1` has no `article` in the catalogue"),
])
def test_bad_dated_articles_are_located(tmp_path, catalogue, message):
    with pytest.raises(PackError) as err:
        Engine.load([with_articles(tmp_path, catalogue)])
    assert message in str(err.value) and err.value.line


def test_an_undated_pack_cannot_quote_a_dated_article(tmp_path):
    d = with_articles(tmp_path)
    (d / "fees-2026.yaml").unlink()
    text = (d / "fees-2025.yaml").read_text().replace('effective: {from: "2025-07-01", until: "2025-12-31"}\n', "")
    (d / "fees-2025.yaml").write_text(text)
    with pytest.raises(PackError, match="no `effective` dates to choose one by"):
        Engine.load([d])


@settings(max_examples=60, deadline=None)
@given(st.integers(-3 * 86400, 3 * 86400), st.sampled_from(VERSION_BOUNDARIES),
       st.sampled_from([-11, -5, 0, 8, 9, 14]))
def test_the_version_is_the_one_whose_days_hold_the_collection_day_in_the_pack_zone(dated_engine, seconds, edge, hours):
    """An oracle from the calendar: the collection instant's date in Shanghai, against each version's days."""
    at = (edge + timedelta(seconds=seconds)).astimezone(timezone(timedelta(hours=hours)))
    day = at.astimezone(ZoneInfo("Asia/Shanghai")).date()
    expected = ["2025"] if date(2025, 7, 1) <= day <= date(2025, 12, 31) else ["2026"] if day >= date(2026, 1, 1) else []
    packs, _, not_covered = fees(dated_engine, collected(at.isoformat()))
    assert packs == expected and len(not_covered) == (0 if expected else 1)
