"""`slarules diff`: two pack sets over the same cases, what changed, exact money per station."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from slarules import Engine
from slarules.cli import main
from slarules.errors import PackError
from slarules.tools.diff import DiffOptions, MoneyMap, _classify, diff_packs

from conftest import ROOT, case, complaint

sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import _parquet_row  # noqa: E402

RULES = ROOT / "rules"
AS_OF = "2026-05-20T00:00:00+08:00"
OVERCHARGE = {"collection": {"quoted_cny": "12.00", "charged_cny": "15.00"},
              "complaint": complaint(issues=["overcharge"])}
OUT_OF_AREA = {"collection": {"in_service_area": False},
               "scans": [{"type": "collect", "station": "S-01", "at": "2026-05-01T09:10:00+08:00"},
                         {"type": "dispatch", "station": "S-01", "at": "2026-05-01T18:00:00+08:00"},
                         {"type": "arrival", "station": "D-01", "at": "2026-05-02T11:40:00+08:00"},
                         {"type": "signed", "station": "D-01", "at": "2026-05-02T17:20:00+08:00"}]}


def packs_with(tmp_path: Path, name: str, edit) -> Path:
    """A copy of the shipped packs (not their tests) with taobao.yaml's text edited."""
    folder = tmp_path / name
    folder.mkdir()
    for p in RULES.glob("*.yaml"):
        if not p.name.endswith(".test.yaml"):
            text = p.read_text(encoding="utf-8")
            (folder / p.name).write_text(edit(text) if p.name == "taobao.yaml" else text, encoding="utf-8")
    return folder


def replace_once(old: str, new: str):
    def edit(text: str) -> str:
        assert text.count(old) == 1, old
        return text.replace(old, new)
    return edit


def without_rule(rule: str):
    """Drop one rule (its `- id:` line up to the next rule) from a pack's text."""
    def edit(text: str) -> str:
        lines = text.splitlines(keepends=True)
        start = next(i for i, line in enumerate(lines) if line.strip() == f"- id: {rule}")
        end = next(i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("- id:"))
        return "".join(lines[:start] + lines[end:])
    return edit


@pytest.fixture(scope="module")
def cases_file(tmp_path_factory) -> Path:
    """Clean parcels, overcharges at two sending stations (3 and 2), an out-of-area delay, a bad row."""
    rows = [case(waybill=f"CLEAN{i}") for i in range(4)]
    rows += [case(waybill=f"OVER-A{i}", stations={"sending": "S-A"}, **OVERCHARGE) for i in range(3)]
    rows += [case(waybill=f"OVER-B{i}", stations={"sending": "S-B"}, **OVERCHARGE) for i in range(2)]
    rows.insert(2, case(waybill="AREA1", **OUT_OF_AREA))
    path = tmp_path_factory.mktemp("cases") / "cases.jsonl"
    lines = [json.dumps(r) for r in rows]
    lines.insert(5, '{"waybill": "BROKEN", "product": "taobao", "parcel": {"length_cm": -3}}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fine_up(tmp_path_factory) -> Path:
    return packs_with(tmp_path_factory.mktemp("packs"), "head",
                      replace_once('overcharge_fine: {type: money, value: "100.00"',
                                   'overcharge_fine: {type: money, value: "120.55"'))


def run_cli(*args: str, capsys) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def written(folder: Path) -> list[str]:
    """The files in `folder`, less the lock files that say who writes them (output/lock.py)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def test_the_same_packs_change_nothing(cases_file, capsys):
    code, out, _ = run_cli("diff", str(cases_file), "--base", str(RULES), "--head", str(RULES), "--format", "json",
                           "--fail-on-change", capsys=capsys)
    doc = json.loads(out)
    assert code == 0
    assert doc["cases"] == 11 and doc["changed"] == 0 and doc["kinds"] == {}
    assert doc["base"] == doc["head"] == {"verdicts": 10, "errors": 1}
    assert all(not p["changed"] for p in doc["packs"])
    assert all(m["delta"] in ("0.00", 0) for s in doc["stations"].values() for m in s.values())


def test_a_fine_change_gives_exact_deltas_per_station(cases_file, fine_up, capsys):
    code, out, _ = run_cli("diff", str(cases_file), "--base", str(RULES), "--head", str(fine_up), "--format", "json",
                           capsys=capsys)
    doc = json.loads(out)
    assert code == 0 and doc["cases"] == 11 and doc["changed"] == 5
    assert doc["stations"]["S-A"]["fines_cny"] == {"base": "300.00", "head": "361.65", "delta": "61.65"}
    assert doc["stations"]["S-B"]["fines_cny"] == {"base": "200.00", "head": "241.10", "delta": "41.10"}
    assert doc["totals"]["fines_cny"] == {"base": "500.00", "head": "602.75", "delta": "102.75"}
    assert doc["totals"]["refunds_cny"]["delta"] == "0.00"
    fines = doc["kinds"]["fines_changed"]
    assert fines["count"] == 5 and fines["detail"] == {"S-A": 3, "S-B": 2}
    assert fines["examples"] == ["OVER-A0", "OVER-A1", "OVER-A2", "OVER-B0", "OVER-B1"]   # input order
    assert [p["name"] for p in doc["packs"] if p["changed"]] == ["taobao"]
    assert "liability_moved" not in doc["kinds"] and doc["clauses"] == {}


def test_fail_on_change_exits_1_and_the_text_names_the_money(cases_file, fine_up, capsys):
    code, out, _ = run_cli("diff", str(cases_file), "--base", str(RULES), "--head", str(fine_up), "--fail-on-change",
                           "--examples", "1", capsys=capsys)
    assert code == 1
    assert out.startswith("11 cases: 5 verdicts changed (45.5%)\n")
    assert "S-A fines_cny: 300.00 → 361.65 (+61.65)" in out
    assert "e.g. OVER-A0\n" in out


def test_liability_moved_between_stations(cases_file, tmp_path):
    head = packs_with(tmp_path, "head", replace_once(
        "    then: {kind: liability, party: sending_station, harm: [delay]}",
        "    then: {kind: liability, party: delivering_station, harm: [delay]}"))
    diff = diff_packs(str(cases_file), [str(RULES)], [str(head)]).to_dict()
    assert diff["changed"] == 1
    moved = diff["kinds"]["liability_moved"]
    assert moved == {"count": 1, "examples": ["AREA1"], "detail": {"S-01 → D-01": 1}}
    assert diff["stations"]["S-01"]["findings"] == {"base": 1, "head": 0, "delta": -1}
    assert diff["stations"]["D-01"]["findings"]["delta"] == 1


def test_a_clause_removed_then_added(cases_file, tmp_path):
    head = packs_with(tmp_path, "head", without_rule("taobao.overcharge.fine"))
    removed = diff_packs(str(cases_file), [str(RULES)], [str(head)]).to_dict()
    assert removed["clauses"] == {"TB-5": {"added": 0, "removed": 5}}
    assert removed["kinds"]["findings_removed"]["count"] == 5
    assert removed["stations"]["S-B"]["fines_cny"] == {"base": "200.00", "head": "0.00", "delta": "-200.00"}
    added = diff_packs(str(cases_file), [str(head)], [str(RULES)]).to_dict()
    assert added["clauses"] == {"TB-5": {"added": 5, "removed": 0}}
    assert added["totals"]["fines_cny"]["delta"] == "500.00"


def test_outputs_are_byte_identical_whatever_chunks_workers_or_time_zone(cases_file, fine_up, tmp_path):
    outs = []
    for n, extra in enumerate((["--chunk-size", "3", "--workers", "2"], ["--backend", "durable"], [])):
        target = tmp_path / f"out{n}"
        env = {**os.environ, "TZ": ("UTC", "Asia/Tokyo", "America/New_York")[n]}
        subprocess.run([sys.executable, "-m", "slarules", "diff", str(cases_file), "--base", str(RULES), "--head",
                        str(fine_up), "-o", str(target), *extra], check=True, env=env, capture_output=True)
        outs.append({name: (target / name).read_bytes() for name in ("diff.json", "diff.txt", "diff.html")})
        assert written(target) == ["diff.html", "diff.json", "diff.txt"]   # no temp files
    assert outs[0] == outs[1] == outs[2]
    page = outs[0]["diff.html"].decode()
    assert "<svg" in page and "<script" not in page and "http" not in page.replace('lang=en', '')


def test_parquet_cases_give_the_same_diff(cases_file, fine_up, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    from slarules.batch.io import case_schema
    docs = [json.loads(line) for line in cases_file.read_text().splitlines()]
    docs = [_parquet_row(d, case_schema()) for d in docs if d["waybill"] != "BROKEN"]
    pq.write_table(pa.Table.from_pylist(docs, schema=case_schema()), tmp_path / "cases.parquet")
    from_parquet = diff_packs(str(tmp_path / "cases.parquet"), [str(RULES)], [str(fine_up)]).to_dict()
    from_jsonl = diff_packs(str(cases_file), [str(RULES)], [str(fine_up)]).to_dict()
    assert from_parquet["changed"] == 5 and from_parquet["stations"] == from_jsonl["stations"]
    assert from_parquet["kinds"] == from_jsonl["kinds"]


def test_the_library_call_is_the_cli(cases_file, fine_up, capsys):
    base, head = Engine.load([RULES]), Engine.load([fine_up])
    diff = diff_packs(str(cases_file), base, head, DiffOptions(as_of=AS_OF))
    _, out, _ = run_cli("diff", str(cases_file), "--base", str(RULES), "--head", str(fine_up), "--as-of", AS_OF,
                        "--format", "json", capsys=capsys)
    assert diff.to_json() == out
    assert diff.text().startswith("11 cases: 5 verdicts changed")


def test_a_head_that_does_not_compile_is_located_and_named_and_nothing_is_written(cases_file, tmp_path, capsys):
    head = packs_with(tmp_path, "head", replace_once("party: delivering_station, classify: late",
                                                     "party: delivering_station, clasify: late"))
    code, out, err = run_cli("diff", str(cases_file), "--base", str(RULES), "--head", str(head), "-o",
                             str(tmp_path / "out"), capsys=capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"slarules: error: {head / 'taobao.yaml'}:60:")
    assert "the head packs do not compile" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(PackError, match="the base packs do not compile"):
        diff_packs(str(cases_file), [str(head)], [str(RULES)])


def test_an_output_over_an_input_is_refused_before_anything_runs(cases_file, tmp_path, capsys):
    code, _, err = run_cli("diff", str(cases_file), "--base", str(RULES), "--head", str(RULES), "-o",
                           str(RULES), capsys=capsys)
    assert code == 2 and "is inside the base pack" in err and "nothing was written" in err
    assert not (RULES / "diff.json").exists()
    code, _, err = run_cli("diff", str(tmp_path / "nope.jsonl"), "--base", str(RULES), "--head", str(RULES),
                           capsys=capsys)
    assert code == 2 and "nope.jsonl: no such file" in err


def test_compensation_is_compared_when_verdicts_carry_it(tmp_path):
    """The national layer adds `compensation_cny` (payer -> amount): diffed like fines, with no code for it."""
    base = {"findings": [], "classifications": [], "complaint_level": None, "fines_cny": {},
            "compensation_cny": {"D-01": "300.00"}, "refunds_cny": "0.00", "missing": [], "not_covered": [],
            "deadlines": []}
    head = {**base, "compensation_cny": {"D-01": "300.00", "S-01": "50.00"}}
    assert _classify(base, head) == {"compensation_changed": ["S-01"]}
    found, absent = MoneyMap("compensation_cny"), MoneyMap("no_such_map")
    for doc in (base, head, {**base, "compensation_cny": {}}):
        found.add(json.dumps(doc).encode())
        absent.add(json.dumps(doc).encode())
    assert found.totals == {"D-01": Decimal("600.00"), "S-01": Decimal("50.00")} and absent.totals is None


def test_the_readme_walk_through_runs_as_written(tmp_path):
    """The policy owner's walk-through in README.md: each command as printed, its output as shown."""
    import re
    import shutil
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## For policy owners"):text.index("## Batch: a day of the network")]
    commands = [line for block in re.findall(r"```sh\n(.*?)```", section, re.S) for line in block.splitlines()
                if line.strip() and not line.startswith("#")]
    diff_shown, replay_shown = re.findall(r"```\n(\d[^`]*)```", section)
    shutil.copytree(RULES, tmp_path / "rules")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    codes, outputs = [], []
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True)
        codes.append(done.returncode)
        outputs.append(done.stdout)
    assert codes == [0] * (len(commands) - 1) + [1], list(zip(commands, codes))
    assert outputs[commands.index(next(c for c in commands if c.startswith("slarules diff")))] == diff_shown
    assert outputs[-1] == replay_shown
    assert written(tmp_path / "diff-2027") == ["diff.html", "diff.json", "diff.txt"]
    without_packs = subprocess.run(["slarules", "replay", "decisions.jsonl"], cwd=tmp_path, env=env,
                                   capture_output=True, text=True)       # the shipped set: the national layer too
    assert without_packs.returncode == 1
    assert without_packs.stdout.startswith("23 decisions replayed: 10 give another verdict now;")


def test_a_row_rejected_on_one_side_only_is_lined_up_by_row_number(tmp_path):
    """Packs can differ in what they reject (a derivation out of range, an internal error): rows still line up."""
    from slarules.batch.runner import BatchSummary
    from slarules.settlement.statement import Statement
    from slarules.tools.diff import _compare
    verdict = json.dumps(Engine.default().adjudicate(case(waybill="V"), as_of=AS_OF).to_dict())
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3}\n')            # rows are lines 1, 3 and 4
    error = {"line": 3, "waybill": "E", "error": "EngineError", "message": "m", "field": None, "hint": None}
    runs = {}
    for side, lines, errors in (("base", [verdict] * 3, []), ("head", [verdict] * 2, [error])):
        (tmp_path / f"{side}.jsonl").write_text("".join(v + "\n" for v in lines))
        (tmp_path / f"{side}.errors.jsonl").write_text("".join(json.dumps(e) + "\n" for e in errors))
        summary = BatchSummary(rows=3, verdicts=len(lines), errors=len(errors), seconds=0, statement=Statement())
        runs[side] = (summary, tmp_path / f"{side}.jsonl", tmp_path / f"{side}.errors.jsonl")
    diff = _compare(str(cases), DiffOptions(), Engine.default(), Engine.default(), runs)
    assert diff.cases == 3 and diff.changed == 1
    assert diff.kinds["outcome_changed"].to_dict() == {"count": 1, "examples": ["V"],
                                                       "detail": {"rejected by head: EngineError": 1}}


def test_a_dated_version_beside_the_old_one_changes_only_parcels_of_its_dates(cases_file, tmp_path):
    """Dating a pack renames its rules (`x@2026.1`): no outcome changes for that, only for the new dates."""
    def dated(text: str) -> str:
        return text.replace('version: "2026.1"', 'version: "2026.1"\neffective: {until: "2026-12-31"}', 1)
    head = packs_with(tmp_path, "head", dated)
    (head / "taobao-2027.yaml").write_text(
        dated((RULES / "taobao.yaml").read_text(encoding="utf-8"))
        .replace('version: "2026.1"', 'version: "2027.1"').replace('until: "2026-12-31"', 'from: "2027-01-01"')
        .replace('overcharge_fine: {type: money, value: "100.00"', 'overcharge_fine: {type: money, value: "150.00"'),
        encoding="utf-8")
    this_year = diff_packs(str(cases_file), [str(RULES)], [str(head)]).to_dict()
    assert this_year["changed"] == 0
    (taobao,) = [p for p in this_year["packs"] if p["changed"]]
    assert [v["version"] for v in taobao["head"]] == ["2026.1", "2027.1"]
    next_year = tmp_path / "2027.jsonl"
    next_year.write_text(cases_file.read_text().replace('"2026-', '"2027-'))
    moved = diff_packs(str(next_year), [str(RULES)], [str(head)]).to_dict()
    assert moved["changed"] == 5 and list(moved["kinds"]) == ["fines_changed"]
    assert moved["stations"]["S-A"]["fines_cny"] == {"base": "300.00", "head": "450.00", "delta": "150.00"}
