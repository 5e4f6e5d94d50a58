"""`slarules batch`: every row accounted for, same verdicts as one case at a time, resumable."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from slarules.batch import io as batch_io, runner as batch_module
from slarules.batch.runner import BatchOptions, run_batch
from slarules.settlement.statement import STATEMENT_FILES
from slarules.cli import main
from slarules.errors import InputError, SlaRulesError

from conftest import BASE as BASE_CASE, ROOT, crash_on_chunk, hide_durable_rules, insert_lines

sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import write as generate  # noqa: E402

AS_OF = "2026-05-20T00:00:00+08:00"


@pytest.fixture(scope="module")
def cases_file(tmp_path_factory) -> Path:
    """600 generated cases (complaints with the KPI fields), some broken, plus a non-JSON line, a blank line
    and a bad UTF-8 line."""
    path = tmp_path_factory.mktemp("in") / "cases.jsonl"
    generate(str(path), 600, seed=11, bad_rate=0.05, kpi=True)
    insert_lines(path, {100: b"{not json\n", 200: b"\n", 300: b'{"waybill": "\xff\xfe"}\n'})
    return path


def opts(**kw) -> BatchOptions:
    return BatchOptions(as_of=AS_OF, chunk_size=64, workers=1, progress=False, **kw)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_row_is_a_verdict_or_an_error_identical_to_single_cases(engine, cases_file, tmp_path):
    out = tmp_path / "v.jsonl"
    summary = run_batch(engine, str(cases_file), str(out), opts())
    verdicts = out.read_text(encoding="utf-8").splitlines()
    errors = read_lines(tmp_path / "v.errors.jsonl")
    rows = [(n, line) for n, line in enumerate(cases_file.read_bytes().splitlines(), start=1) if line.strip()]
    assert summary.rows == len(rows) == len(verdicts) + len(errors)
    assert {e["line"] for e in errors} >= {101, 301}
    by_line = {e["line"]: e for e in errors}
    assert by_line[101]["message"].startswith("not valid JSON")
    assert "UTF-8" in by_line[301]["message"]
    expected_verdicts = []
    for n, raw in rows:
        try:
            case = json.loads(raw)
            expected_verdicts.append(engine.adjudicate(case, as_of=AS_OF).to_json(indent=None))
        except (ValueError, SlaRulesError) as exc:
            assert n in by_line, f"line {n} should be an error: {exc}"
            if isinstance(exc, SlaRulesError):
                assert by_line[n]["message"] == exc.message and by_line[n]["field"] == exc.field
    assert verdicts == expected_verdicts
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*checkpoint.json"))


def test_workers_and_chunk_size_do_not_change_a_byte(engine, cases_file, tmp_path):
    run_batch(engine, str(cases_file), str(tmp_path / "a.jsonl"), opts())
    run_batch(engine, str(cases_file), str(tmp_path / "b.jsonl"),
              BatchOptions(as_of=AS_OF, chunk_size=250, workers=2, progress=False))
    for name in ("{}.jsonl", "{}.errors.jsonl"):
        assert (tmp_path / name.format("a")).read_bytes() == (tmp_path / name.format("b")).read_bytes()


def test_a_run_without_totals_gives_the_same_files_and_counts_and_resumes_only_as_such(engine, cases_file,
                                                                                      tmp_path):
    """The CLI's batch writing no statement skips the settlement's group-bys (totals=False): the same
    verdicts and errors, the same counts; a checkpoint of such a run is not resumed into one that writes one."""
    whole = run_batch(engine, str(cases_file), str(tmp_path / "a.jsonl"), opts())
    lean = run_batch(engine, str(cases_file), str(tmp_path / "b.jsonl"), opts(totals=False))
    for name in ("{}.jsonl", "{}.errors.jsonl"):
        assert (tmp_path / name.format("a")).read_bytes() == (tmp_path / name.format("b")).read_bytes()
    assert (lean.rows, lean.verdicts, lean.errors) == (whole.rows, whole.verdicts, whole.errors)
    assert whole.statement.stations and not lean.statement.stations
    with_statement = BatchOptions(as_of=AS_OF, chunk_size=64, workers=1, progress=False, totals=False,
                                  statement=str(tmp_path / "st"))
    assert batch_module.Batch(engine, str(cases_file), str(tmp_path / "c.jsonl"), with_statement).totals
    assert batch_module.Batch(engine, str(cases_file), str(tmp_path / "c.jsonl"), opts(totals=False)).fingerprint(
        AS_OF, "x") != batch_module.Batch(engine, str(cases_file), str(tmp_path / "c.jsonl"), opts()).fingerprint(
        AS_OF, "x")


def test_durable_engine_gives_the_same_file(engine, cases_file, tmp_path):
    small = tmp_path / "small.jsonl"
    small.write_bytes(b"".join(cases_file.read_bytes().splitlines(keepends=True)[:150]))
    run_batch(engine, str(small), str(tmp_path / "p.jsonl"), opts())
    run_batch(engine, str(small), str(tmp_path / "d.jsonl"), opts(backend="durable"))
    assert (tmp_path / "p.jsonl").read_bytes() == (tmp_path / "d.jsonl").read_bytes()


def test_a_crash_midway_then_a_restart_gives_identical_output(engine, cases_file, tmp_path, monkeypatch):
    run_batch(engine, str(cases_file), str(tmp_path / "whole.jsonl"), opts(statement=str(tmp_path / "s1")))
    undo = crash_on_chunk(monkeypatch, 5)
    target = tmp_path / "again.jsonl"
    with pytest.raises(RuntimeError):
        run_batch(engine, str(cases_file), str(target), opts(statement=str(tmp_path / "s2"), checkpoint_seconds=0))
    state = json.loads((tmp_path / "again.jsonl.checkpoint.json").read_text())
    assert state["chunks"] == 4 and not target.exists()
    undo()
    summary = run_batch(engine, str(cases_file), str(target), opts(statement=str(tmp_path / "s2")))
    assert summary.resumed_from == 4 * 64 - 1        # chunks are 64 lines; line 200 is blank, not a row
    assert target.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
    assert (tmp_path / "again.errors.jsonl").read_bytes() == (tmp_path / "whole.errors.jsonl").read_bytes()
    for name in STATEMENT_FILES:
        assert (tmp_path / "s1" / name).read_bytes() == (tmp_path / "s2" / name).read_bytes()


def test_a_parquet_run_crashed_midway_resumes_from_its_parts_to_the_same_bytes(engine, cases_file, tmp_path,
                                                                              monkeypatch):
    """Parquet output keeps a part per chunk (Arrow IPC) until the end: a restart keeps those its checkpoint
    counts, drops the rest (a part written past the checkpoint) and merges the same file as one run.
    The file is encoded as chunks commit: the crashed run had encoded its four, and left no temporary."""
    pytest.importorskip("pyarrow")
    run_batch(engine, str(cases_file), str(tmp_path / "whole.parquet"), opts())
    added = []
    real_add = batch_io.ParquetMerge.add
    monkeypatch.setattr(batch_io.ParquetMerge, "add", lambda merge, part: (added.append(part.name),
                                                                          real_add(merge, part)))
    undo = crash_on_chunk(monkeypatch, 5)
    target = tmp_path / "again.parquet"
    with pytest.raises(RuntimeError):
        run_batch(engine, str(cases_file), str(target), opts(checkpoint_seconds=0))
    assert added == [f"{n:09d}.arrow" for n in range(1, 5)]
    assert not target.exists() and not list(tmp_path.glob(".again.parquet.*.tmp"))
    parts = tmp_path / "again.parquet.parts"
    assert sorted(p.name for p in parts.iterdir()) == [f"{n:09d}.arrow" for n in range(1, 5)]
    (parts / "000000005.arrow").write_bytes(b"ARROW1 cut short by the crash")      # past the checkpoint
    undo()
    assert run_batch(engine, str(cases_file), str(target), opts()).resumed_from == 4 * 64 - 1
    assert target.read_bytes() == (tmp_path / "whole.parquet").read_bytes() and not parts.exists()


@pytest.mark.parametrize("crash_at", [1, 2])
def test_a_parquet_finish_cut_short_while_removing_its_parts_keeps_the_file_whole(engine, cases_file, tmp_path,
                                                                                 monkeypatch, crash_at):
    """The parts go only once the file is in place, and at once: a finish killed at any step of their
    removal, run again, leaves the same file, never a merge of fewer parts nor the empty .partial."""
    pytest.importorskip("pyarrow")
    run_batch(engine, str(cases_file), str(tmp_path / "whole.parquet"), opts())
    target = tmp_path / "again.parquet"
    real, calls = batch_module.shutil.rmtree, []

    def rmtree(path, *args, **kwargs):      # does its work, then the process "dies" at the chosen call
        real(path, *args, **kwargs)
        calls.append(str(path))
        if len(calls) == crash_at:
            raise RuntimeError("simulated crash")
    monkeypatch.setattr(batch_module.shutil, "rmtree", rmtree)
    with pytest.raises(RuntimeError):
        run_batch(engine, str(cases_file), str(target), opts())
    monkeypatch.setattr(batch_module.shutil, "rmtree", real)
    assert json.loads((tmp_path / "again.parquet.checkpoint.json").read_text())["phase"] == "finishing"
    run_batch(engine, str(cases_file), str(target), opts())
    assert target.read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()
                  if p.name.startswith(("again", ".again")) and not p.name.endswith(".lock")) == [
        "again.errors.jsonl", "again.parquet"]


def test_a_full_disk_while_encoding_parquet_names_the_output_and_keeps_the_checkpoint(engine, cases_file, tmp_path,
                                                                                    monkeypatch):
    """The file is encoded while the run goes on: a write that fails then is the output's error (not the
    input's), says what the checkpoint keeps, and leaves no temporary."""
    pq = pytest.importorskip("pyarrow.parquet")
    from slarules.errors import OutputError

    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    monkeypatch.setattr(batch_io, "ROWS_PER_GROUP", 64)     # a group is full at the first chunk's commit
    target = tmp_path / "v.parquet"
    with pytest.raises(OutputError) as caught:
        run_batch(engine, str(cases_file), str(target), opts(checkpoint_seconds=0))
    assert caught.value.file == str(target) and "No space left" in caught.value.message
    assert "checkpoint" in (caught.value.hint or "")
    assert json.loads((tmp_path / "v.parquet.checkpoint.json").read_text())["phase"] == "running"
    assert not target.exists() and not list(tmp_path.glob(".v.parquet.*.tmp"))


def test_a_checkpoint_of_the_previous_version_resumes_with_its_parquet_parts_and_an_older_one_is_refused(
        engine, cases_file, tmp_path, monkeypatch):
    """Version 3 checkpoints kept Parquet parts: they still resume to the same bytes. Version 4 (IPC parts)
    is one a version-3 slarules refuses rather than drop parts it does not know; version 2 is refused."""
    import pyarrow.feather as feather
    import pyarrow.parquet as pq
    run_batch(engine, str(cases_file), str(tmp_path / "whole.parquet"), opts())
    target, parts = tmp_path / "again.parquet", tmp_path / "again.parquet.parts"
    checkpoint = tmp_path / "again.parquet.checkpoint.json"
    for version in (2, 3):
        undo = crash_on_chunk(monkeypatch, 5)
        with pytest.raises(RuntimeError):
            run_batch(engine, str(cases_file), str(target), opts(checkpoint_seconds=0, fresh=True))
        undo()
        state = json.loads(checkpoint.read_text())
        assert state["version"] == 4
        for part in parts.glob("*.arrow"):     # as a version 3 run left them
            pq.write_table(feather.read_table(part), part.with_suffix(".parquet"))
            part.unlink()
        checkpoint.write_text(json.dumps({**state, "version": version}))
        if version == 2:
            with pytest.raises(InputError, match="checkpoint"):
                run_batch(engine, str(cases_file), str(target), opts())
        else:
            assert run_batch(engine, str(cases_file), str(target), opts()).resumed_from == 4 * 64 - 1
            assert target.read_bytes() == (tmp_path / "whole.parquet").read_bytes()


def test_sigkill_then_restart_loses_and_duplicates_nothing(engine, cases_file, tmp_path):
    """A real kill -9 of the CLI part-way, then the same command again; the reference is the same batch
    run here (the CLI runs run_batch with the shipped packs: a third process would add nothing)."""
    big = tmp_path / "big.jsonl"
    big.write_bytes(cases_file.read_bytes() * 4)
    cmd = [sys.executable, "-m", "slarules", "batch", str(big), "-o", str(tmp_path / "out.jsonl"),
           "--as-of", AS_OF, "--chunk-size", "150", "--workers", "1", "--statement", str(tmp_path / "out-st")]
    run_batch(engine, str(big), str(tmp_path / "ref.jsonl"),
              BatchOptions(as_of=AS_OF, chunk_size=150, workers=1, progress=False, statement=str(tmp_path / "ref-st")))
    env = dict(os.environ, SLARULES_CHECKPOINT_SECONDS="0")
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "out.jsonl.checkpoint.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if json.loads(checkpoint.read_text())["chunks"] >= 5:     # of 16
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not (tmp_path / "out.jsonl").exists()
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resumed after row" in done.stderr
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    assert (tmp_path / "out.errors.jsonl").read_bytes() == (tmp_path / "ref.errors.jsonl").read_bytes()
    for name in STATEMENT_FILES:                  # the KPIs too: the checkpoint kept their counters
        assert (tmp_path / "out-st" / name).read_bytes() == (tmp_path / "ref-st" / name).read_bytes(), name
    assert "agent,CS-" in (tmp_path / "out-st" / "kpi.csv").read_text()


def test_parquet_in_and_out_match_jsonl(engine, tmp_path):
    """Same cases as Parquet and as JSONL give the same verdicts (Parquet cannot carry an unknown
    column such as `colour`, so rows JSONL rejects for one are compared only where both decided)."""
    pq = pytest.importorskip("pyarrow.parquet")
    generate(str(tmp_path / "c.parquet"), 300, seed=5, bad_rate=0.05)
    generate(str(tmp_path / "c.jsonl"), 300, seed=5, bad_rate=0.05)
    run_batch(engine, str(tmp_path / "c.jsonl"), str(tmp_path / "j.jsonl"), opts())
    s = run_batch(engine, str(tmp_path / "c.parquet"), str(tmp_path / "p.parquet"), opts())
    table = pq.read_table(tmp_path / "p.parquet").to_pylist()
    errors = read_lines(tmp_path / "p.errors.jsonl")
    assert s.rows == 300 == len(table) + len(errors) and len(errors) > 5
    json_errors = {e["line"]: e for e in read_lines(tmp_path / "j.errors.jsonl")}
    for e in errors:
        theirs = json_errors[e["row"]]       # same reason; the value shown is a string in Parquet
        assert (theirs["field"], theirs["message"].split("; got")[0]) == (e["field"], e["message"].split("; got")[0])
    verdict_rows = [n for n in range(1, 301) if n not in {e["row"] for e in errors}]
    jsonl = dict(zip([n for n in range(1, 301) if n not in json_errors], read_lines(tmp_path / "j.jsonl")))
    compared = 0
    for n, t in zip(verdict_rows, table):
        if n not in jsonl:
            continue
        j = jsonl[n]
        compared += 1
        assert t["waybill"] == j["waybill"]
        assert {f["rule"]: json.loads(f["facts"]) for f in t["findings"]} == \
            {f["rule"]: f["facts"] for f in j["findings"]}
        assert {x["station"]: x["amount"] for x in t["fines_cny"]} == j["fines_cny"]
        assert t["missing"] == j["missing"] and t["refunds_cny"] == j["refunds_cny"]
        assert [d["status"] for d in t["deadlines"]] == [d["status"] for d in j["deadlines"]]
    assert compared >= 280


def test_statement_totals_add_up_to_the_verdicts(engine, cases_file, tmp_path):
    out = tmp_path / "v.jsonl"
    run_batch(engine, str(cases_file), str(out), opts(statement=str(tmp_path / "st")))
    fines: Counter = Counter()
    clauses: Counter = Counter()
    for v in read_lines(out):
        for station, amount in v["fines_cny"].items():
            fines[station] += Decimal(amount)
        clauses.update(f["clause"] for f in v["findings"])
    import csv
    rows = list(csv.DictReader((tmp_path / "st" / "stations.csv").open(encoding="utf-8")))
    assert {r["station"]: Decimal(r["fines_cny"]) for r in rows if Decimal(r["fines_cny"])} == \
        {k: v for k, v in fines.items() if v}
    for clause, count in clauses.items():
        assert sum(int(r[clause]) for r in rows) == count
    html = (tmp_path / "st" / "report.html").read_text(encoding="utf-8")
    charts = html[:html.index("<h2>Customer-service KPIs")]        # the KPI tables draw small bars of their own
    assert "On-time delivery by arrival hour" in html and charts.count("<svg") == 2 + bool(fines)
    assert "<h3>Teams against the network</h3>" in html and "<h3>Agents by resolution rate" in html
    service = list(csv.DictReader((tmp_path / "st" / "service.csv").open(encoding="utf-8")))
    judged = {v["waybill"]: v for v in read_lines(out)}
    complained = []
    for raw in cases_file.read_bytes().splitlines():
        try:
            c = json.loads(raw)
        except ValueError:
            continue
        if isinstance(c, dict) and c.get("waybill") in judged and (c.get("complaint") or {}).get("received_at"):
            complained.append(judged[c["waybill"]])
    assert sum(int(r["complaints"]) for r in service) == len(complained) > 0
    level3 = [v for v in complained if v["complaint_level"] == 3]
    row3 = next(r for r in service if r["complaint_level"] == "3")
    assert int(row3["complaints"]) == len(level3)


def test_report_shows_every_share_with_its_count():
    from slarules.settlement.statement import Statement
    st = Statement(hours={9: [1, 0], 10: [0, 1], 11: [1999, 1]},
                   levels={"3": {"complaints": 1, "contacted_due": 1, "contacted_met": 1, "closed_due": 0,
                                 "closed_met": 0, "handled": 0, "handling_seconds": 0}})
    html = st.html("t")
    assert ">09:00<" in html and ">100% of 1<" in html and ">0% of 1<" in html and ">&gt;99% of 2,000<" in html
    assert ">08:00<" in html and ">no parcels<" in html
    assert "<td>100% of 1</td><td></td>" in html               # contacted 1 of 1; nothing due to close
    assert st.service_rows()[1] == [["3", "1", "1.0000", "", "0", ""]]      # the CSV keeps its plain shares


def test_report_keeps_stations_tied_at_the_cut_in_a_fixed_order():
    from slarules.settlement.statement import Statement, _station
    fines = {f"S{i:02d}": 100 + i for i in range(24)} | {"T9": 50, "T1": 50, "T5": 50, "T3": 50, "U1": 10, "U2": 10}
    st = Statement(stations={k: {**_station(), "fines": Decimal(v)} for k, v in fines.items()})
    html = st.html("t")
    chart = html[html.index("<h2>Fines by station"):html.index("<h2>Findings by clause")]
    shown = [name for name in fines if f">{name}<" in chart]
    assert sorted(shown) == sorted(fines)[:-2]                          # T1, T3, T5, T9 tie at the 25th
    assert sorted(shown, key=lambda name: chart.index(f">{name}<"))[-4:] == ["T1", "T3", "T5", "T9"]
    assert "top 25 stations by fines, CNY, with 3 more tied with the 25th; 2 more not shown" in chart
    assert st.html("t") == html


def test_a_different_run_in_the_way_is_refused_then_fresh_starts_over(engine, cases_file, tmp_path):
    out = tmp_path / "v.jsonl"
    (tmp_path / "v.jsonl.checkpoint.json").write_text(json.dumps({"version": 1, "fingerprint": "x", "as_of": AS_OF,
                                                                   "phase": "running"}))
    with pytest.raises(SlaRulesError) as err:
        run_batch(engine, str(cases_file), str(out), opts())
    assert "--fresh" in err.value.hint
    run_batch(engine, str(cases_file), str(out), opts(fresh=True))
    assert out.exists()


def test_cli_batch_is_quiet_when_piped_and_errors_are_one_paragraph(cases_file, tmp_path, capsys):
    code = main(["batch", str(cases_file), "-o", str(tmp_path / "v.jsonl"), "--as-of", AS_OF,
                 "--chunk-size", "100"])
    captured = capsys.readouterr()
    assert code == 0 and captured.out == ""
    assert "\r" not in captured.err and "verdicts" in captured.err
    code = main(["batch", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "x.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "missing.jsonl" in err and "no such file" in err and "Traceback" not in err
    code = main(["batch", str(cases_file), "-o", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "x.csv" in err and "--output-format" in err
    assert not (tmp_path / "x.csv").exists()


def test_an_input_gone_missing_says_so_without_a_resume_hint(engine, tmp_path):
    source = tmp_path / "cases.jsonl"
    source.write_text(json.dumps(BASE_CASE) + "\n", encoding="utf-8")
    run = batch_module.Batch(engine, str(source), str(tmp_path / "v.jsonl"), opts())
    source.unlink()             # after the run was set up (which checks), before it reads
    with pytest.raises(SlaRulesError) as err:
        run.run()
    assert (err.value.message, err.value.file, err.value.hint) == ("no such file", str(source), None)


def test_rejected_rows_do_not_keep_cases_alive(engine):
    """Regression: a CaseError's context (a pydantic ValidationError, outside the garbage
    collector) once tied every rejected row's frames, and with them the whole chunk, to memory."""
    import gc

    from slarules.facts import Case
    bad = [{"waybill": "", "scans": []}, {"waybill": "W1", "timezone": "Mars/Olympus"},   # our own validators
           {"waybill": "W2", "scans": [{"type": "arrival", "station": "D-1", "at": "yesterday"}]}]  # raise in them
    gc.collect()
    held = [o for o in gc.get_objects() if isinstance(o, Case)]     # by earlier tests in this process (kept, so
    known = {id(o) for o in held}                                   # no new Case can take one's id)
    for _ in range(3):
        engine.adjudicate_many([dict(BASE_CASE), *bad, dict(BASE_CASE)], as_of=AS_OF)
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, Case) and id(o) not in known] == []


def test_workers_die_with_a_killed_batch(cases_file, tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_bytes(cases_file.read_bytes() * 20)
    proc = subprocess.Popen([sys.executable, "-m", "slarules", "batch", str(big), "-o", str(tmp_path / "o.jsonl"),
                             "--as-of", AS_OF, "--workers", "2", "--chunk-size", "50"], stderr=subprocess.DEVNULL)
    def pool_workers(pids: list[str]) -> list[str]:     # not the resource tracker, which may start first
        found = []
        for pid in pids:
            try:
                if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                    found.append(pid)
            except OSError:
                pass
        return found
    deadline = time.monotonic() + 60
    workers: list[str] = []
    while time.monotonic() < deadline and not workers:
        workers = pool_workers(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                              text=True).stdout.split())
        time.sleep(0.1)
    assert workers, "no worker processes seen"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    deadline = time.monotonic() + 30        # a worker still starting up exits when it gets there
    while pool_workers(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pool_workers(workers)


def test_an_output_that_cannot_be_written_is_one_paragraph(cases_file, tmp_path, capsys):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    code = main(["batch", str(cases_file), "-o", str(blocker / "v.jsonl"), "--as-of", AS_OF])
    err = capsys.readouterr().err
    assert code == 2 and "not-a-dir is a file, not a folder" in err and "nothing was written" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-dir"]       # refused before anything was made


def test_without_as_of_each_case_is_judged_at_its_own_as_of(engine, tmp_path):
    source = tmp_path / "c.jsonl"
    generate(str(source), 80, seed=21)
    run_batch(engine, str(source), str(tmp_path / "v.jsonl"), BatchOptions(workers=1, progress=False))
    expected = [engine.adjudicate(json.loads(line)).to_json(indent=None)
                for line in source.read_text(encoding="utf-8").splitlines()]
    assert all("as_of" in json.loads(line) for line in source.read_text(encoding="utf-8").splitlines())
    assert (tmp_path / "v.jsonl").read_text(encoding="utf-8").splitlines() == expected


@pytest.mark.parametrize("columnar, per_case", [
    ([], []), ([(2, '{"b": "乙"}'), (5, '{"e": 5}')], []), ([], [(1, '{"a": 1}')]),
    ([(2, '{"b": "乙"}'), (5, '{"e": 5}')], [(1, '{"a": 1}'), (3, '{"c": "丙"}'), (9, "{}")])])
def test_verdict_lines_merge_both_paths_in_row_order(columnar, per_case):
    import polars as pl

    from slarules.batch.runner import Adjudicated
    from slarules.settlement.statement import Statement
    frame = pl.DataFrame(columnar, schema={"__row": pl.Int64, "json": pl.String}, orient="row")
    for columns in ((frame, frame.slice(1)) if len(frame) > 1 else (frame,)):    # a sliced frame too
        done = Adjudicated(per_case, [], Statement(), columns)
        expected = sorted(per_case + list(zip(columns["__row"].to_list(), columns["json"].to_list())))
        assert done.verdicts == expected
        assert done.jsonl() == "".join(text + "\n" for _, text in expected).encode()
    assert Adjudicated(per_case, [], Statement()).jsonl() == "".join(t + "\n" for _, t in per_case).encode()


def test_a_batch_runs_where_durable_rules_cannot_be_imported(tmp_path):
    """Batch workers judge chunks with Polars: durable_rules is built only when a single case needs it."""
    env = hide_durable_rules(tmp_path / "blocker")
    source = tmp_path / "in.jsonl"
    generate(str(source), 3000, seed=4, bad_rate=0.01)
    run = [sys.executable, "-m", "slarules", "batch", str(source), "-o", str(tmp_path / "v.jsonl"), "--as-of", AS_OF,
           "--workers", "2", "--chunk-size", "1000", "--statement", str(tmp_path / "st")]
    done = subprocess.run(run, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "3,000 rows" in done.stderr
    probe = subprocess.run([sys.executable, "-c", "import durable"], capture_output=True, text=True, env=env)
    assert "not importable here" in probe.stderr          # the blocker did block


def test_a_parquet_batch_imports_no_pandas(tmp_path):
    """pyarrow imports pandas (0.2 s of CPU in every process) to ask whether a Python list is one of its
    types; a batch builds its Arrow arrays through Polars instead (batch_io.arrow_array), reading Parquet
    and writing either output, rows on the per-case path (the bad ones) included."""
    source = tmp_path / "cases.parquet"
    generate(str(source), 400, 5, bad_rate=0.05)
    runs = "; ".join(f"assert main(['batch', {str(source)!r}, '-o', {str(tmp_path / name)!r}, '--workers', '1', "
                     f"'--as-of', {AS_OF!r}]) == 0" for name in ("v.parquet", "v.jsonl"))
    code = f"import sys; from slarules.cli import main; {runs}; print('pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert (tmp_path / "v.errors.jsonl").read_text().count("\n") > 0      # the per-case path was taken
