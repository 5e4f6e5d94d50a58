"""Hostile input: no poison row, no data loss, bounded cost, nothing lax.

Each class of bad input an attacker or a careless exporter sends: placeholder
dates at the ends of the datetime range, outputs aimed at the input, huge
cases, lax values and byte-order marks. Every one ends as one located
SlaRulesError (one error record in a batch), never a crash or a lost run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import BASE, EXAMPLES, ROOT, case
from slarules import Engine, facts
from slarules.batch.runner import BatchOptions, run_batch
from slarules.errors import CaseError, EngineError, InputError, SlaRulesError
from slarules.case.fast import case_of
from slarules.case.limits import Limits
from slarules.case.sources import parse_text
from strategies import any_instant

AS_OF = "2026-05-20T00:00:00+08:00"
BOM = b"\xef\xbb\xbf"


def cli(*args, stdin: bytes | None = None):
    return subprocess.run([sys.executable, "-m", "slarules", *args], input=stdin, capture_output=True,
                          cwd=ROOT, timeout=120)


def with_scan_at(at: str, index: int = 2) -> dict:
    c = case()
    c["scans"][index]["at"] = at
    return c


# ---- 1. the whole datetime range ------------------------------------------------------------

@pytest.mark.parametrize("where", ["scan-0", "scan-2", "as_of", "complaint"])
@pytest.mark.parametrize("at", ["9999-12-31T23:59:59+08:00", "0001-01-01T00:00:00+08:00",
                                "9999-12-31T23:59:59", "0001-01-01T00:00:00-12:00", "1999-12-31T23:59:59+00:00", "1970-01-01T00:00:00Z",
                                "2200-01-01T00:00:00+08:00"])
def test_placeholder_years_are_a_located_case_error(engine, where, at):
    c = case(complaint={"kind": "complaint", "received_at": "2026-05-03T08:00:00+08:00"})
    if where.startswith("scan"):
        c["scans"][int(where[-1])]["at"] = at
    elif where == "as_of":
        c["as_of"] = at
    else:
        c["complaint"]["closed_at"] = at
    with pytest.raises(CaseError) as err:
        engine.adjudicate(c)
    assert "outside 2000-2199" in err.value.message and err.value.field


@pytest.mark.parametrize("as_of", ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"])
def test_as_of_argument_at_the_ends_of_the_range_is_refused_not_rendered_in_local_mean_time(engine, as_of):
    with pytest.raises(CaseError, match="outside 2000-2199") as err:
        engine.adjudicate(case(), as_of=as_of)
    assert err.value.field == "as_of"
    r = cli("adjudicate", str(EXAMPLES / "tb1-late.yaml"), "--format", "json", "--as-of", as_of)
    assert r.returncode == 2 and b"+08:05:43" not in r.stdout and b"as_of" in r.stderr


def test_the_ends_of_the_range_still_adjudicate(engine):
    early = with_scan_at("2000-01-01T00:00:00+08:00", 0)
    late = case(as_of="2199-12-31T23:59:59+08:00")
    for c in (early, late):
        assert engine.adjudicate(c).to_json()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(when=any_instant, slot=st.sampled_from(["collect", "arrival", "signed", "as_of", "received", "closed"]))
def test_any_datetime_anywhere_gives_a_verdict_or_a_slarules_error(engine, when, slot):
    """The whole datetime range, naive or in any offset: never anything but a verdict or a SlaRulesError."""
    c = case(complaint={"kind": "complaint", "channel": "phone", "received_at": "2026-05-03T08:00:00+08:00"})
    text = when.isoformat()
    index = {"collect": 0, "arrival": 2, "signed": 3}
    if slot in index:
        c["scans"][index[slot]]["at"] = text
    elif slot == "as_of":
        c["as_of"] = text
    else:
        c["complaint"][f"{slot}_at"] = text
    try:
        engine.adjudicate(c).to_json()
    except SlaRulesError:
        pass
    try:
        engine.adjudicate(case(), as_of=text).to_json()
    except SlaRulesError:
        pass
    results = engine.adjudicate_many([c, case()], as_of=AS_OF)
    assert len(results) == 2 and not isinstance(results[1][1], SlaRulesError)


# ---- poison rows ----------------------------------------------------------------------------

def test_an_unforeseen_exception_is_an_engine_error_never_a_crash(engine, monkeypatch):
    """Whatever slarules did not foresee still leaves as a SlaRulesError: one case, one error."""
    original = engine.builder.build

    def build(facts_, run, lang):
        if facts_.case.waybill == "POISON":
            raise OverflowError("date value out of range")
        return original(facts_, run, lang)
    monkeypatch.setattr(engine.builder, "build", build)
    with pytest.raises(EngineError, match="OverflowError"):
        engine.adjudicate(case(waybill="POISON"))
    for backend in ("polars", "durable"):
        results = engine.adjudicate_many([case(), case(waybill="POISON"), case(waybill="T2")], backend=backend)
        assert [type(r[1]).__name__ for r in results] == ["Verdict", "EngineError", "Verdict"]


@pytest.mark.parametrize("backend", ["polars", "durable"])
def test_a_poison_row_is_its_own_error_record_and_the_batch_finishes(engine, tmp_path, monkeypatch, backend):
    """A row that raises anything becomes its error record (with its line); the chunk, the run, a resume go on."""
    from slarules.verdict import assembly as verdict_module
    original = verdict_module.Verdict.to_json

    def to_json(self, *a, **kw):
        if self.waybill == "POISON":
            raise ValueError("year 10000 is out of range")
        return original(self, *a, **kw)
    monkeypatch.setattr(verdict_module.Verdict, "to_json", to_json)
    source = tmp_path / "in.jsonl"
    lines = [json.dumps(case(waybill=f"W{i}")) for i in range(50)]
    poison = case(waybill="POISON")
    poison["scans"][0]["at"] = "2026-05-01T09:10:00.5+08:00"     # a fraction: the per-case path takes it
    lines[17] = json.dumps(poison)
    source.write_text("\n".join(lines) + "\n")
    summary = run_batch(engine, str(source), str(tmp_path / "out.jsonl"),
                        BatchOptions(as_of=AS_OF, backend=backend, chunk_size=20, workers=1, progress=False))
    assert (summary.rows, summary.verdicts, summary.errors, summary.internal) == (50, 49, 1, 1)
    assert "1 of the errors are internal" in summary.render()
    record = json.loads((tmp_path / "out.errors.jsonl").read_text())
    assert record["line"] == 18 and record["waybill"] == "POISON" and record["error"] == "EngineError"


def test_a_columnar_failure_sends_the_chunk_to_the_per_case_path(engine, tmp_path, monkeypatch, capsys):
    """Not only a Polars error: whatever the columnar pass raises, every row still gets its exact answer,
    and the run says so on stderr (a bug must not pass for a slow day)."""
    from slarules.columnar import evaluator as columnar
    monkeypatch.delenv("SLARULES_STRICT")
    monkeypatch.setattr(columnar.Columnar, "adjudicate", lambda *a, **k: 1 / 0)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(case(waybill=f"W{i}")) + "\n" for i in range(30)))
    summary = run_batch(engine, str(source), str(tmp_path / "out.jsonl"),
                        BatchOptions(as_of=AS_OF, chunk_size=10, workers=1, progress=False))
    assert (summary.verdicts, summary.errors) == (30, 0)
    assert "warning: the columnar path failed on rows 1-10 (ZeroDivisionError" in capsys.readouterr().err


def poisoned_file(path: Path, n: int) -> dict[int, str]:
    """`n` lines of generated cases with a BOM on line 1 (allowed) and three bad lines; {line: why}."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import write as generate
    generate(str(path), n, seed=5, bad_rate=0.0)
    rows = path.read_bytes().splitlines(keepends=True)
    y9999 = with_scan_at("9999-12-31T23:59:59+08:00")
    y9999["waybill"] = "Y9999"
    many = case(waybill="MANYSCANS", scans=[dict(BASE["scans"][2])] * 10_000)
    bad = {n // 3: (json.dumps(y9999) + "\n").encode(), n // 2: BOM + rows[5],
           (2 * n) // 3: (json.dumps(many) + "\n").encode()}
    for index, line in bad.items():
        rows[index] = line
    rows[0] = BOM + rows[0]
    path.write_bytes(b"".join(rows))
    return {n // 3 + 1: "outside 2000-2199", n // 2 + 1: "byte-order mark", (2 * n) // 3 + 1: "10,000 scans"}


@pytest.mark.parametrize("backend", ["polars", "durable"])
def test_a_batch_with_a_year_9999_row_a_bom_line_and_10000_scans_has_exactly_those_errors(engine, tmp_path,
                                                                                         backend):
    source = tmp_path / "in.jsonl"
    expected = poisoned_file(source, 3000)
    summary = run_batch(engine, str(source), str(tmp_path / "out.jsonl"),
                        BatchOptions(as_of=AS_OF, backend=backend, chunk_size=700, workers=2, progress=False))
    errors = [json.loads(line) for line in (tmp_path / "out.errors.jsonl").read_text().splitlines()]
    assert {e["line"]: e["message"] for e in errors}.keys() == expected.keys()
    for e in errors:
        assert expected[e["line"]] in e["message"], e
    assert (summary.rows, summary.verdicts, summary.errors) == (3000, 2997, 3)


# ---- 2. outputs never overwrite the input or each other ------------------------------------

@pytest.mark.parametrize("flags", [
    ["--errors", "{in}"], ["-o", "{in}"], ["--errors", "{out}"], ["--statement", "{dir}", "--errors", "{dir}/report.html"],
    ["--errors", "{link}"], ["--errors", "{hard}"]])
def test_outputs_that_are_the_input_or_each_other_are_refused_before_anything_is_written(tmp_path, flags):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(case(waybill=f"W{i}")) + "\n" for i in range(20)))
    before = source.read_bytes()
    (tmp_path / "link.jsonl").symlink_to(source)
    os.link(source, tmp_path / "hard.jsonl")
    names = {"in": str(source), "out": str(tmp_path / "out.jsonl"), "dir": str(tmp_path / "st"),
             "link": str(tmp_path / "link.jsonl"), "hard": str(tmp_path / "hard.jsonl")}
    argv = [f.format(**names) for f in flags]
    if "-o" not in argv:
        argv = ["-o", names["out"], *argv]
    listing = sorted(p.name for p in tmp_path.iterdir())
    r = cli("batch", str(source), *argv, "--as-of", AS_OF)
    assert r.returncode == 2 and b"nothing was written" in r.stderr and b"Traceback" not in r.stderr
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


# ---- 3. big cases are refused early and cheaply ---------------------------------------------

def test_too_many_scans_are_refused_before_any_is_validated(engine, monkeypatch):
    monkeypatch.setattr(facts.Case, "model_validate", lambda *a, **k: pytest.fail("validated scans"))
    many = case(scans=[dict(BASE["scans"][2])] * 1001)
    with pytest.raises(CaseError, match="1,001 scans; a case may have at most 1,000") as err:
        engine.adjudicate(many)
    assert err.value.field == "scans"


def test_limits_can_be_raised_and_lowered(engine, tmp_path):
    many = case(scans=[*BASE["scans"], *[dict(BASE["scans"][2])] * 1500])
    assert engine.with_limits(Limits(scans=2000)).adjudicate(many).to_json()
    with pytest.raises(CaseError):
        engine.with_limits(Limits(scans=3)).adjudicate(case())
    path = tmp_path / "c.json"
    path.write_text(json.dumps(many))
    assert cli("adjudicate", str(path), "--limit", "scans=2000").returncode == 0
    r = cli("adjudicate", str(path), "--limit", "scans=2000", "--limit", "case_bytes=10KiB")
    assert r.returncode == 2 and b"more than 10,240 bytes" in r.stderr
    assert cli("adjudicate", str(path), "--limit", "scan=5").returncode == 2


def test_lowered_limits_hold_on_the_columnar_path_and_in_workers(engine, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(case(waybill=f"W{i}")) + "\n" for i in range(40)))
    summary = run_batch(engine.with_limits(Limits(scans=3)), str(source), str(tmp_path / "out.jsonl"),
                        BatchOptions(as_of=AS_OF, chunk_size=10, workers=2, progress=False))
    assert (summary.verdicts, summary.errors) == (0, 40)


def test_an_error_message_never_prints_a_huge_value():
    with pytest.raises(CaseError) as err:
        case_of({"waybill": "W1", "stations": [[["x" * 1_000_000] * 3] * 3]})
    assert len(str(err.value)) < 300


@pytest.mark.parametrize("field", ["timezone", "as_of"])
def test_long_strings_are_refused_by_length(field):
    with pytest.raises(CaseError, match="at most 64 characters"):
        case_of(case(**{field: "2" * 10_000}))


# ---- 4. nothing lax ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["no", "false", "0", 0, 1, "yes"])
def test_booleans_are_json_booleans(value):
    c = case()
    c["collection"]["sender_signed"] = value
    with pytest.raises(CaseError, match="valid boolean"):
        case_of(c)


def test_yaml_no_is_not_false():
    text = (EXAMPLES / "tb1-late.yaml").read_text().replace("sender_signed: true", "sender_signed: no")
    with pytest.raises(CaseError, match="valid boolean") as err:
        case_of(parse_text(text, "c.yaml").data, parse_text(text, "c.yaml"))
    assert err.value.field == "collection.sender_signed"


@pytest.mark.parametrize("number", ["1e-400", "1e400", "0.30000000000000001", "12345678901234567.5"])
def test_a_number_a_float_cannot_hold_is_an_error_with_its_place(number):
    text = json.dumps(case()).replace('"quoted_cny": "12.00"', f'"quoted_cny": {number}')
    with pytest.raises(InputError, match="cannot be read exactly") as err:
        parse_text(text, "c.json")
    assert err.value.line == 1 and err.value.column == text.index(number) + 1
    assert err.value.field == "collection.quoted_cny"


@pytest.mark.parametrize("number", ["1.0e-400", "0.30000000000000001", "12345678901234567.5"])
def test_a_yaml_number_a_float_cannot_hold_is_an_error_too(number):
    with pytest.raises(InputError, match="cannot be read exactly") as err:
        parse_text(f"waybill: W1\ncollection:\n  quoted_cny: {number}\n", "c.yaml")
    assert (err.value.line, err.value.column) == (3, 15)


def test_exact_floats_still_read():
    assert parse_text("a: 8.50\nb: 1.0e+2\nc: 0.1\n", "c.yaml").data == {"a": 8.5, "b": 100.0, "c": 0.1}
    assert parse_text('{"a": 8.50, "b": 1e2, "c": 0.1}', "c.json").data == {"a": 8.5, "b": 100.0, "c": 0.1}


@pytest.mark.parametrize("backend", ["polars", "durable"])
def test_inexact_numbers_are_error_rows_in_a_batch(engine, tmp_path, backend):
    good = json.dumps(case())
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([good, good.replace('"12.00"', "1e-400", 1), good,
                                 good.replace('"12.00"', "12.0000000000000001", 1), good]) + "\n")
    run_batch(engine, str(source), str(tmp_path / "out.jsonl"),
              BatchOptions(as_of=AS_OF, backend=backend, progress=False, workers=1))
    errors = [json.loads(line) for line in (tmp_path / "out.errors.jsonl").read_text().splitlines()]
    assert [(e["line"], "exactly" in e["message"]) for e in errors] == [(2, True), (4, True)]


def test_nan_is_located():
    with pytest.raises(InputError) as err:
        parse_text('{"waybill": "W",\n "parcel": {"weight_kg": NaN}}', "c.json")
    assert (err.value.line, err.value.column, err.value.field) == (2, 26, "parcel.weight_kg")


def test_a_bom_at_the_start_of_a_file_is_fine_everywhere_and_nowhere_else(engine, tmp_path):
    good = json.dumps(case()).encode()
    one = tmp_path / "one.json"
    one.write_bytes(BOM + good)
    assert cli("adjudicate", str(one)).returncode == 0
    assert cli("adjudicate", "-", stdin=BOM + good).returncode == 0
    source = tmp_path / "in.jsonl"
    source.write_bytes(BOM + good + b"\n" + good + b"\n" + BOM + good + b"\n")
    for backend in ("polars", "durable"):
        summary = run_batch(engine, str(source), str(tmp_path / f"{backend}.jsonl"),
                            BatchOptions(as_of=AS_OF, backend=backend, progress=False, workers=1))
        assert (summary.verdicts, summary.errors) == (2, 1)
        error = json.loads((tmp_path / f"{backend}.errors.jsonl").read_text())
        assert error["line"] == 3 and "byte-order mark" in error["message"]


def test_with_limits_shares_what_the_engine_built(engine):
    other = engine.with_limits(Limits(scans=5))
    assert other.backend is engine.backend and other.bulk is engine.bulk and other.limits.scans == 5
