"""Decision logs (`--decision-log`, `Engine.adjudicate(log=)`) and `slarules replay`.

docs/decision_log.md is the contract these tests hold: sealed records, ids any language recomputes,
each decision once, appends whole or not at all, one writer at a time, and every edit reported.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import rfc8785
from hypothesis import example, given, settings, strategies as st

from slarules import Engine
from slarules.batch import runner as batch_module
from slarules.batch.runner import BatchOptions, run_batch
from slarules.cli import main
from slarules.errors import InputError, OutputError
from slarules.output import decision_log as log_module
from slarules.tools import decisions
from slarules.tools.decisions import DecisionLog, LogError, read_log, replay

from conftest import EXAMPLES, ROOT, case

sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import write as generate  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_diff import packs_with, replace_once  # noqa: E402

AS_OF = "2026-05-20T00:00:00+08:00"
NOW = "2026-05-21T03:04:05+00:00"                    # the batch's "now": every record's logged_at
LOGGED_AT = "2026-05-21T03:04:05.000Z"


def fixed_clock() -> datetime:
    return datetime.fromisoformat(NOW)


@pytest.fixture(scope="module")
def cases_file(tmp_path_factory) -> Path:
    """300 generated cases (some broken) and a blank line."""
    path = tmp_path_factory.mktemp("in") / "cases.jsonl"
    generate(str(path), 300, seed=21, bad_rate=0.05)
    rows = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(rows[:50] + [b"\n"] + rows[50:]))
    return path


def opts(**kw) -> BatchOptions:
    return BatchOptions(**{"as_of": AS_OF, "chunk_size": 64, "workers": 1, "progress": False, "now": NOW, **kw})


def per_case_log(engine: Engine, cases_file: Path, target: Path, lang: str = "zh") -> bytes:
    """The log the library hook writes, one case at a time, for the rows that get a verdict."""
    with DecisionLog(target, clock=fixed_clock) as log:
        for line in cases_file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                engine.adjudicate(json.loads(line), as_of=AS_OF, lang=lang, log=log)
            except Exception:
                continue
    return target.read_bytes()


@pytest.fixture(scope="module")
def small_log(tmp_path_factory) -> bytes:
    """Three sealed records (three example cases, two languages), as the CLI writes them."""
    log = tmp_path_factory.mktemp("log") / "d.log"
    for name, lang in (("tb5-overcharge.yaml", "zh"), ("tb1-late.yaml", "en"), ("tb4-unsigned-sender-lost.yaml", "zh")):
        assert main(["adjudicate", str(EXAMPLES / name), "--decision-log", str(log), "--lang", lang]) == 0
    return log.read_bytes()


def records(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines()]


def write_records(path: Path, docs: list[dict]) -> Path:
    path.write_bytes(b"".join(json.dumps(d, ensure_ascii=False).encode() + b"\n" for d in docs))
    return path


def resealed(doc: dict) -> dict:
    """A record sealed again after an edit, as someone who knows the recipe would."""
    return json.loads(decisions.seal({k: doc[k] for k in decisions.RECORD_KEYS[1:-1]})[1])


# ---- writing ---------------------------------------------------------------------------------

def test_a_record_holds_the_case_as_given_its_instant_packs_and_verdict_digest(engine, tmp_path, capsys):
    case_file = EXAMPLES / "tb5-overcharge.yaml"
    log = tmp_path / "d.log"
    assert main(["adjudicate", str(case_file), "--decision-log", str(log), "--format", "json"]) == 0
    verdict = capsys.readouterr().out
    assert main(["adjudicate", str(case_file), "--decision-log", str(log)]) == 0
    (line,) = log.read_bytes().splitlines()          # the same decision again: the same id, logged once
    record = json.loads(line)
    assert list(record) == list(decisions.RECORD_KEYS)
    from slarules.case.sources import read_document
    assert record["case"] == read_document(str(case_file), max_bytes=1 << 20).data
    compact = json.dumps(json.loads(verdict), ensure_ascii=False)
    assert record["verdict_digest"] == "sha256:" + hashlib.sha256(compact.encode()).hexdigest()
    assert record["as_of"] == json.loads(verdict)["as_of"] and record["lang"] == "zh"
    assert record["packs"] == json.loads(verdict)["packs"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["logged_at"])
    logged = datetime.fromisoformat(record["logged_at"].replace("Z", "+00:00"))
    assert abs((datetime.now(logged.tzinfo) - logged).total_seconds()) < 600
    with DecisionLog(tmp_path / "e.log") as at_other_time:
        assert engine.adjudicate(record["case"], as_of=AS_OF, log=at_other_time)
    assert json.loads((tmp_path / "e.log").read_bytes())["id"] != record["id"]


def test_the_id_and_seal_are_recomputed_from_a_line_with_hashlib_and_rfc8785_alone(tmp_path):
    """docs/decision_log.md's recipe, followed literally, on a record whose case has numbers that
    canonical JSON writes otherwise (12.0, 8.50) and nested objects whose keys sort apart."""
    given = case(waybill="BX-1")
    given["parcel"]["weight_kg"] = 8.50
    given["collection"]["charged_cny"] = 12.0
    given["collection"]["quoted_cny"] = 12.0
    log = tmp_path / "d.log"
    with DecisionLog(log) as writer:
        Engine.default().adjudicate(given, as_of=AS_OF, lang="en", log=writer)
    line = log.read_bytes().splitlines()[0]
    assert b'"weight_kg":8.5' in line and b'"charged_cny":12,' in line      # the line holds the canonical case

    record = json.loads(line)
    seal = record.pop("record_digest")
    assert seal == "sha256:" + hashlib.sha256(rfc8785.dumps(record)).hexdigest()
    decision = {"as_of": record["as_of"], "case": record["case"], "packs": record["packs"]}
    assert record["id"] == "sha256:" + hashlib.sha256(rfc8785.dumps(decision)).hexdigest()
    assert b'"charged_cny":12,' in rfc8785.dumps(decision)                     # canonical numbers
    assert [d.id for d in read_log(log)] == [record["id"]]


JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2 ** 53) + 1, 2 ** 53 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6))
KEYS = st.text(max_size=3)          # any scalar value but surrogates: astral and private-use keys sort apart in UTF-16
JSON_OBJECTS = st.dictionaries(KEYS, st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3), max_leaves=10),
    max_size=4)


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 60), 2 ** 60) | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=-1e17, max_value=1e17).map(round).map(float) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=12)


@settings(max_examples=300, deadline=None)
@example(value={"a": [12.0, 8.5, 0.0001, 0.00001, 1e16 + 2.0, 1e15 + 0.5, -0.0, 2 ** 53 - 1, -(2 ** 53) + 1]})
@example(value={"\U0001F600": 1, "\uE000": 2, "é": "\x00\x1f\x7f\u2028\"\\", "Z": None})
@example(value={"too big": 2 ** 53})
@example(value={"e+": "1.0", "x": ["a.0", "1e-5", 0.5, 123456789012345.6, 9007199254740991, 1e-05, "9999999999999999"]})
@example(value=["\ud800"])
@example(value=[1e-7, 1.5e-7, 1e20, 1.5e20, 1e21, 5e-324, 1.7976931348623157e308, 2 ** 64, 2 ** 70, "1e5", "\ue000"])
@given(value=ANY_JSON)
def test_the_canonical_json_of_a_record_is_rfc8785s_for_any_json(value):
    """The C fast paths of decision_records._jcs (the stdlib's for any value, msgspec's for a parsed
    one) give rfc8785's bytes, or rfc8785's refusal."""
    from slarules.output.decision_records import _jcs
    for parsed in (False, True):
        try:
            expected = rfc8785.dumps(value)
        except rfc8785.CanonicalizationError:
            with pytest.raises(rfc8785.CanonicalizationError):
                _jcs(value, parsed)
        else:
            assert _jcs(value, parsed) == expected


@settings(max_examples=500, deadline=None)
@given(numbers=st.lists(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2 ** 70), 2 ** 70),
                        min_size=1, max_size=8))
def test_msgspecs_numbers_pass_as_canonical_only_when_rfc8785_writes_them_alike(numbers):
    """Property, for the msgspec path: every float and whole number it lets through is written as
    rfc8785 writes it (exponents, 12.0, -0.0 and numbers past 2^53 go to rfc8785)."""
    from slarules.output.decision_records import _SORTED, _same_in_msgspec
    data = _SORTED.encode({"n": numbers})
    if _same_in_msgspec(data):
        assert data == rfc8785.dumps({"n": numbers})


def edited_value(value):
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return value + [{"name": "x", "version": "1", "digest": "sha256:" + "0" * 64}]
    return {**value, "edited": True}


@settings(max_examples=60, deadline=None)
@example(given={"\U0001F600": 1, "\uE000": [2.0, -0.0, 1e21, 1e-7], "a": {"é": "\u2028\x00"}}, field="case",
         parsed=True)
@given(given=JSON_OBJECTS, field=st.sampled_from(decisions.RECORD_KEYS[1:-1]), parsed=st.booleans())
def test_a_seal_is_rfc8785_over_the_parsed_record_and_any_edit_breaks_it(given, field, parsed):
    """Property: the id and seal a writer computes (the case canonicalised once for both) are what
    hashlib + rfc8785 give over the parsed line, whatever the case holds; changing any field fails it."""
    from slarules.output.decision_records import EDITED, problem
    fields = {"waybill": "W", "as_of": AS_OF, "lang": "en", "packs": [{"name": "p", "version": "1", "digest": "d"}],
              "verdict_digest": "sha256:" + "1" * 64, "outcome_digest": "sha256:" + "2" * 64, "case": given,
              "logged_at": LOGGED_AT}
    ident, line = decisions.seal(fields, parsed)
    record = json.loads(line)
    assert record["case"] == given
    seal = record.pop("record_digest")
    assert seal == "sha256:" + hashlib.sha256(rfc8785.dumps(record)).hexdigest()
    decision = {"as_of": AS_OF, "case": record["case"], "packs": record["packs"]}
    assert ident == record["id"] == "sha256:" + hashlib.sha256(rfc8785.dumps(decision)).hexdigest()
    record["record_digest"] = seal
    assert problem(record) is None
    assert problem({**record, field: edited_value(record[field])}).startswith(EDITED)


def test_a_rejected_case_is_no_decision(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"waybill": "X", "parcel": {"length_cm": -3}}')
    assert main(["adjudicate", str(bad), "--decision-log", str(tmp_path / "d.log")]) == 2
    assert not (tmp_path / "d.log").exists()


@pytest.mark.parametrize("kw", [{}, {"workers": 2, "chunk_size": 40}, {"backend": "durable"}])
def test_batch_logs_every_verdict_in_input_order_as_the_library_hook_does(engine, cases_file, tmp_path, kw):
    log = tmp_path / "batch.log"
    summary = run_batch(engine, str(cases_file), str(tmp_path / "v.jsonl"), opts(decision_log=str(log), **kw))
    assert log.read_bytes() == per_case_log(engine, cases_file, tmp_path / "hook.log")
    assert len(log.read_bytes().splitlines()) == summary.verdicts
    verdicts = (tmp_path / "v.jsonl").read_bytes().splitlines()
    assert [r["verdict_digest"] for r in records(log.read_bytes())] == \
        ["sha256:" + hashlib.sha256(v).hexdigest() for v in verdicts]
    assert {r["logged_at"] for r in records(log.read_bytes())} == {LOGGED_AT}
    assert not list(tmp_path.glob("*.partial"))


def test_a_batch_run_again_logs_no_decision_twice(engine, cases_file, tmp_path):
    log = tmp_path / "d.log"
    run_batch(engine, str(cases_file), str(tmp_path / "v.jsonl"), opts(decision_log=str(log)))
    first = log.read_bytes()
    run_batch(engine, str(cases_file), str(tmp_path / "v.jsonl"), opts(decision_log=str(log), now=None))
    assert log.read_bytes() == first                   # same decisions, another logged_at: not written again
    run_batch(engine, str(cases_file), str(tmp_path / "v.jsonl"),
              opts(decision_log=str(log), as_of="2026-05-21T00:00:00+08:00"))
    assert log.read_bytes().startswith(first) and len(records(log.read_bytes())) == 2 * len(records(first))
    assert len(list(read_log(log))) == 2 * len(records(first))


def test_a_crash_midway_leaves_the_log_untouched_and_the_resume_logs_each_decision_once(
        engine, cases_file, tmp_path, monkeypatch):
    whole = tmp_path / "whole.log"
    run_batch(engine, str(cases_file), str(tmp_path / "whole.jsonl"), opts(decision_log=str(whole)))
    log = tmp_path / "d.log"
    log.write_bytes(b"")
    real = batch_module.adjudicate_chunk

    def crash_on_chunk_3(chunk, job):
        if chunk.index == 3:
            raise RuntimeError("simulated crash")
        return real(chunk, job)
    monkeypatch.setattr(batch_module, "adjudicate_chunk", crash_on_chunk_3)
    with pytest.raises(RuntimeError):
        run_batch(engine, str(cases_file), str(tmp_path / "again.jsonl"),
                  opts(decision_log=str(log), checkpoint_seconds=0))
    assert log.read_bytes() == b""
    monkeypatch.setattr(batch_module, "adjudicate_chunk", real)

    def killed_while_appending(path, records, then=""):      # half the lines written, then the process dies
        data = Path(records).read_bytes()
        with open(path, "ab") as f:
            f.write(data[:len(data) // 2])
        raise RuntimeError("killed")
    monkeypatch.setattr(log_module, "append_new", killed_while_appending)
    with pytest.raises(RuntimeError):
        run_batch(engine, str(cases_file), str(tmp_path / "again.jsonl"), opts(decision_log=str(log)))
    monkeypatch.undo()
    summary = run_batch(engine, str(cases_file), str(tmp_path / "again.jsonl"), opts(decision_log=str(log)))
    assert summary.resumed_from > 0
    assert log.read_bytes() == whole.read_bytes()


def test_parquet_rows_are_logged_as_dicts(engine, tmp_path):
    generate(str(tmp_path / "c.parquet"), 120, seed=5)
    log = tmp_path / "d.log"
    summary = run_batch(engine, str(tmp_path / "c.parquet"), str(tmp_path / "v.jsonl"), opts(decision_log=str(log)))
    found = list(read_log(log))
    assert len(found) == summary.verdicts == 120
    again = engine.adjudicate(found[7].case, as_of=found[7].as_of)
    assert decisions.verdict_digest(again.to_json(indent=None)) == found[7].verdict_digest


# ---- one writer at a time --------------------------------------------------------------------

def test_a_second_writer_is_refused_at_once_naming_the_holder_and_replay_still_reads(
        engine, small_log, tmp_path, capsys):
    log = tmp_path / "d.log"
    log.write_bytes(small_log)
    with DecisionLog(log, command="slarules serve") as holder:
        with pytest.raises(OutputError, match=rf"is being written by process {os.getpid()} .*slarules serve"):
            DecisionLog(log).open()
        other = subprocess.run([sys.executable, "-m", "slarules", "adjudicate", str(EXAMPLES / "clean.yaml"),
                                "--decision-log", str(log)], capture_output=True, text=True, timeout=120)
        assert other.returncode == 2 and other.stdout == ""          # another process: refused at once
        assert other.stderr == (f"slarules: error: {log}: is being written by process {os.getpid()} on "
                                f"{socket.gethostname()} (slarules serve, since {other.stderr.split('since ')[1]}")
        assert log.read_bytes() == small_log
        assert main(["replay", str(log)]) == 0           # reading takes no lock
        assert capsys.readouterr().out == "3 decisions replayed: 0 give another verdict now\n"
        engine.adjudicate(case(waybill="HELD"), as_of=AS_OF, log=holder)
    assert main(["adjudicate", str(EXAMPLES / "clean.yaml"), "--decision-log", str(log)]) == 0
    assert [r["waybill"] for r in records(log.read_bytes())][3:] == ["HELD", "BX7700000001"]


def test_a_log_is_held_from_its_first_record_until_closed(engine, tmp_path):
    """`engine.adjudicate(case, log=DecisionLog(path))` without a `with`: the first record opens it."""
    log = DecisionLog(tmp_path / "d.log")
    engine.adjudicate(case(waybill="A"), as_of=AS_OF, log=log)
    assert not log.closed
    with pytest.raises(OutputError, match="is being written by"):
        DecisionLog(tmp_path / "d.log").open()
    log.close()
    with DecisionLog(tmp_path / "d.log") as other:
        engine.adjudicate(case(waybill="A"), as_of=AS_OF, log=other)
        engine.adjudicate(case(waybill="B"), as_of=AS_OF, log=other)
    assert [d.waybill for d in read_log(tmp_path / "d.log")] == ["A", "B"]


# ---- a full disk -----------------------------------------------------------------------------

def fail_writes_to(monkeypatch, target: Path, error: int, *, after: int = 0) -> None:
    """os.write (the appends' only way to the disk) fails with `error` on `target` after `after` bytes."""
    real = os.write
    written = {"n": 0}

    def write(fd, data):
        if os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(target):
            room = after - written["n"]
            if room <= 0:
                raise OSError(error, os.strerror(error))
            data = bytes(data)[:room]
            written["n"] += len(data)
        return real(fd, data)
    monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize("error, after", [(errno.ENOSPC, 0), (errno.ENOSPC, 100), (errno.EIO, 700)])
def test_a_full_disk_during_adjudicate_leaves_the_log_as_it_was_and_says_so(
        small_log, tmp_path, monkeypatch, capsys, error, after):
    log = tmp_path / "d.log"
    log.write_bytes(small_log)
    fail_writes_to(monkeypatch, log, error, after=after)
    assert main(["adjudicate", str(EXAMPLES / "clean.yaml"), "--decision-log", str(log)]) == 2
    err = capsys.readouterr()
    assert err.out == "" and err.err.count("\n") == 1
    assert f"{log}: cannot write the file: {os.strerror(error)} (nothing was added to it)" in err.err
    assert log.read_bytes() == small_log
    monkeypatch.undo()
    assert main(["adjudicate", str(EXAMPLES / "clean.yaml"), "--decision-log", str(log)]) == 0
    assert log.read_bytes().startswith(small_log) and len(list(read_log(log))) == 4


def test_a_failed_fsync_is_cut_back_too(tmp_path, monkeypatch, engine):
    log = tmp_path / "d.log"
    with DecisionLog(log) as writer:
        engine.adjudicate(case(waybill="A"), as_of=AS_OF, log=writer)
        before = log.read_bytes()
        real = os.fsync

        def failing_once(fd):              # the append's fsync fails; the cut back's succeeds
            monkeypatch.setattr(os, "fsync", real)
            raise OSError(errno.EIO, "Input/output error")
        monkeypatch.setattr(os, "fsync", failing_once)
        with pytest.raises(OutputError, match="Input/output error.*nothing was added"):
            engine.adjudicate(case(waybill="B"), as_of=AS_OF, log=writer)
        assert log.read_bytes() == before
        engine.adjudicate(case(waybill="B"), as_of=AS_OF, log=writer)       # not taken as logged
    assert [d.waybill for d in read_log(log)] == ["A", "B"]


def test_a_decision_logged_before_costs_no_fsync_and_a_new_one_does(tmp_path, monkeypatch, engine):
    """A record already in the log is durable since the append that wrote it (its id is taken only once
    fsynced), so a group of such records writes and syncs nothing (files.append_to); a new one still does."""
    log = tmp_path / "d.log"
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    with DecisionLog(log) as writer:
        engine.adjudicate(case(waybill="A"), as_of=AS_OF, log=writer)
        first, before = len(synced), log.read_bytes()
        assert first >= 1
        engine.adjudicate(case(waybill="A"), as_of=AS_OF, log=writer)
        assert len(synced) == first and log.read_bytes() == before
        engine.adjudicate(case(waybill="B"), as_of=AS_OF, log=writer)
        assert len(synced) > first
    assert [d.waybill for d in read_log(log)] == ["A", "B"]


def test_a_writer_syncs_the_log_it_opens_before_taking_its_decisions_as_logged(tmp_path, monkeypatch, engine):
    """A writer killed between its write and its fsync may leave records only in the page cache; the next
    writer takes them as logged and writes nothing for them again, so it syncs what it found first."""
    log = tmp_path / "d.log"
    with DecisionLog(log) as first:
        engine.adjudicate(case(waybill="A"), as_of=AS_OF, log=first)
    synced: list[str] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd))[1])
    with DecisionLog(log) as second:
        assert synced == [str(log)]
        engine.adjudicate(case(waybill="A"), as_of=AS_OF, log=second)    # found in the log: nothing written
        assert synced == [str(log)]
    with DecisionLog(tmp_path / "new.log") as empty:        # nothing found, nothing to sync
        assert synced == [str(log)]
        empty.open()


def test_a_full_disk_during_a_batchs_log_commit_keeps_the_log_and_the_rerun_appends(
        engine, cases_file, tmp_path, monkeypatch, capsys, small_log):
    solo = tmp_path / "solo.log"
    solo.write_bytes(small_log)
    run_batch(engine, str(cases_file), str(tmp_path / "solo.jsonl"), opts(decision_log=str(solo)))
    log = tmp_path / "d.log"
    log.write_bytes(small_log)
    fail_writes_to(monkeypatch, log, errno.ENOSPC, after=5000)
    command = ["batch", str(cases_file), "-o", str(tmp_path / "v.jsonl"), "--as-of", AS_OF, "--decision-log", str(log)]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"{log}: cannot write the file: No space left on device (nothing was added to it; all " in err
    assert "rows were adjudicated and the checkpoint keeps them: run the same command again to finish writing" in err
    assert log.read_bytes() == small_log
    monkeypatch.undo()
    assert main(command) == 0
    strip = [{k: v for k, v in r.items() if k not in ("logged_at", "record_digest")} for r in records(log.read_bytes())]
    assert strip == [{k: v for k, v in r.items() if k not in ("logged_at", "record_digest")}
                     for r in records(solo.read_bytes())]
    assert len(list(read_log(log))) == len(records(solo.read_bytes()))


def test_a_log_left_torn_by_an_earlier_release_is_not_appended_to(small_log, tmp_path, capsys):
    log = tmp_path / "d.log"
    torn = small_log + small_log.splitlines(keepends=True)[1][:90]
    log.write_bytes(torn)
    assert main(["adjudicate", str(EXAMPLES / "clean.yaml"), "--decision-log", str(log)]) == 2
    err = capsys.readouterr().err
    assert f"{log}: the decision log ends in part of a record" in err and f"truncate -s {len(small_log)} {log}" in err
    assert log.read_bytes() == torn
    assert main(["replay", str(log)]) == 2
    assert f"{log}:4: not a decision record: not a whole record" in capsys.readouterr().err


# ---- replay ----------------------------------------------------------------------------------

def test_replay_finds_nothing_under_the_same_packs(engine, cases_file, tmp_path, capsys):
    log = tmp_path / "d.log"
    run_batch(engine, str(cases_file), str(tmp_path / "v.jsonl"), opts(decision_log=str(log), lang="en"))
    assert main(["replay", str(log)]) == 0
    out = capsys.readouterr().out
    assert out.endswith("decisions replayed: 0 give another verdict now\n")


def test_replay_with_a_changed_fine_reports_those_decisions_and_the_pack(engine, tmp_path, capsys):
    log = tmp_path / "d.log"
    for name in ("tb5-overcharge.yaml", "tb1-late.yaml", "tb4-unsigned-sender-lost.yaml"):     # the network's packs
        assert main(["adjudicate", str(EXAMPLES / name), "--packs", str(ROOT / "rules"), "--decision-log", str(log)]) == 0
    capsys.readouterr()
    head = packs_with(tmp_path, "head", replace_once('overcharge_fine: {type: money, value: "100.00"',
                                                     'overcharge_fine: {type: money, value: "120.00"'))
    assert main(["replay", str(log), "--packs", str(head), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["decisions"] == 3 and doc["differ"] == 1 and doc["same_outcome_other_packs"] == 2
    (found,) = doc["decisions_that_differ"]
    assert found["line"] == 1 and found["waybill"] == "BX7700000008"
    assert [p["name"] for p in found["packs_changed"]] == ["taobao"]
    assert found["packs_changed"][0]["now"]["digest"] == Engine.load([head]).packs[1].digest
    report = replay(log, Engine.load([head]))
    assert report.to_dict() == doc


def sealed_again(doc: dict) -> dict:
    """An edit whose record_digest was recomputed, its id left as it was."""
    return {**doc, "record_digest": decisions.record_digest(doc)}


def bump(digest: str) -> str:
    return digest[:-1] + ("0" if digest[-1] != "0" else "1")


# Each way a record can be edited, on line 2 (an English record): none may pass as "the same", nor as a
# policy change. Before records were sealed, an edited verdict_digest exited 0, an edited lang 1, and an
# edited waybill or outcome_digest passed silently.
TAMPERING = {
    "lang": lambda r: {**r, "lang": "zh"},
    "waybill": lambda r: {**r, "waybill": "BX0000000000"},
    "verdict_digest": lambda r: {**r, "verdict_digest": bump(r["verdict_digest"])},
    "outcome_digest": lambda r: {**r, "outcome_digest": bump(r["outcome_digest"])},
    "case": lambda r: {**r, "case": {**r["case"], "collection": {**r["case"]["collection"], "charged_cny": "99.00"}}},
    "as_of": lambda r: {**r, "as_of": "2026-05-04T09:00:01+08:00"},
    "packs": lambda r: {**r, "packs": [{**p, "version": "2099.1"} for p in r["packs"]]},
    "logged_at": lambda r: {**r, "logged_at": "2020-01-01T00:00:00.000Z"},
    "id": lambda r: {**r, "id": bump(r["id"])},
    "record_digest": lambda r: {**r, "record_digest": bump(r["record_digest"])},
    "case, sealed again": lambda r: sealed_again({**r, "case": {**r["case"], "waybill": "BX0000000000"}}),
}


@pytest.mark.parametrize("field", list(TAMPERING))
def test_every_edit_is_reported_at_its_line_from_the_cli_the_batch_and_the_library(small_log, tmp_path, capsys, field):
    docs = records(small_log)
    docs[1] = TAMPERING[field](docs[1])
    log = write_records(tmp_path / "d.log", docs)
    for extra in ([], ["--batch", "--workers", "1"]):
        assert main(["replay", str(log), *extra]) == 2, extra
        err = capsys.readouterr()
        assert err.out == "" and err.err.count("\n") == 1
        assert err.err.startswith(f"slarules: error: {log}:2: a record edited after it was logged: ")
    with pytest.raises(LogError) as caught:
        replay(log)
    assert caught.value.line == 2 and [p.line for p in caught.value.problems] == [2]
    assert isinstance(caught.value, InputError)


def test_a_repeated_record_or_decision_is_reported_at_its_line(small_log, tmp_path, capsys):
    docs = records(small_log)
    again = resealed({**docs[0], "logged_at": "2026-06-01T00:00:00.000Z"})      # the same decision, sealed again
    assert again["id"] == docs[0]["id"] and again["record_digest"] != docs[0]["record_digest"]
    log = write_records(tmp_path / "d.log", docs + [docs[1], again])
    assert main(["replay", str(log)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"slarules: error: {log}:4: a repeated record (a log holds each decision once): this record is line 2's "
        "again (slarules only appends to a log, each decision once: this line was changed or added by something "
        "else; compare the log with a copy kept elsewhere)",
        f"slarules: error: {log}:5: a repeated record (a log holds each decision once): decision {docs[0]['id']} "
        "again, first logged at line 1 (slarules only appends to a log, each decision once: this line was changed "
        "or added by something else; compare the log with a copy kept elsewhere)"]
    with pytest.raises(LogError) as caught:
        replay(log, batch=True, workers=1)
    assert [p.line for p in caught.value.problems] == [4, 5]


def test_every_problem_is_listed_up_to_a_cap_and_nothing_is_replayed(small_log, tmp_path, capsys, monkeypatch):
    docs = records(small_log)
    edited = [TAMPERING["waybill"](d) for d in docs] * 10       # 30 edited records
    log = write_records(tmp_path / "d.log", docs[:1] + edited)
    calls = []
    real = Engine.adjudicate

    def counted(self, *args, **kw):
        calls.append(args)
        return real(self, *args, **kw)
    monkeypatch.setattr(Engine, "adjudicate", counted)
    assert main(["replay", str(log)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == log_module.MAX_PROBLEMS and [int(e.split(":")[3]) for e in err] == list(range(2, 22))
    assert err[-1].endswith(f"stopped at {log_module.MAX_PROBLEMS} problems, there may be more)")
    assert len(calls) <= 1          # at most the record before the first problem: nothing after it is replayed


@pytest.mark.parametrize("line, message", [
    (b"{not json", "invalid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"id": "x"}', "missing waybill, as_of, lang, packs, verdict_digest, outcome_digest, case, logged_at, "
                     "record_digest"),
    (b'{"id": "x", "id": "y"}', "a key appears twice in one object"),
])
def test_a_corrupt_line_is_located_and_exits_2(tmp_path, capsys, line, message):
    log = tmp_path / "d.log"
    assert main(["adjudicate", str(EXAMPLES / "tb1-late.yaml"), "--decision-log", str(log)]) == 0
    log.write_bytes(log.read_bytes() + b"\n" + line + b"\n")
    capsys.readouterr()
    assert main(["replay", str(log)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"slarules: error: {log}:3: not a decision record: ") and message in err


def test_a_log_that_cannot_be_read_or_written_is_one_line(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "none.log")]) == 2
    assert "none.log: cannot read the decision log" in capsys.readouterr().err
    (tmp_path / "dir.log").mkdir()
    assert main(["adjudicate", str(EXAMPLES / "tb1-late.yaml"), "--decision-log", str(tmp_path / "dir.log")]) == 2
    err = capsys.readouterr()
    assert "dir.log: is a directory, expected a decision log file" in err.err and err.out == ""


def test_replay_through_the_batch_reports_what_one_by_one_does(engine, cases_file, tmp_path, capsys):
    log = tmp_path / "d.log"
    network = Engine.load([ROOT / "rules"])       # the packs the head below changes (the default adds rules/national)
    run_batch(network, str(cases_file), str(tmp_path / "v.jsonl"), opts(decision_log=str(log), lang="en"))
    for name in ("tb5-overcharge.yaml", "tb4-unsigned-sender-lost.yaml"):
        assert main(["adjudicate", str(EXAMPLES / name), "--packs", str(ROOT / "rules"), "--decision-log", str(log)]) == 0
    lines = log.read_bytes().splitlines(keepends=True)
    gone = json.loads(lines[3])
    gone = resealed({**gone, "case": {**gone["case"], "product": "nope"}})     # a case the packs now reject
    log.write_bytes(b"".join(lines[:3]) + json.dumps(gone).encode() + b"\n" + b"".join(lines[4:]))
    head = packs_with(tmp_path, "head", replace_once('overcharge_fine: {type: money, value: "100.00"',
                                                     'overcharge_fine: {type: money, value: "120.00"'))
    capsys.readouterr()
    assert main(["replay", str(log), "--packs", str(head), "--format", "json"]) == 1
    one_by_one = capsys.readouterr().out
    assert main(["replay", str(log), "--packs", str(head), "--format", "json", "--batch", "--workers", "2"]) == 1
    assert capsys.readouterr().out == one_by_one
    doc = json.loads(one_by_one)
    assert [d["waybill"] for d in doc["decisions_that_differ"]] == [gone["waybill"], "BX7700000008"]
    assert doc["decisions_that_differ"][0]["reason"].startswith("now rejected: ")


def test_an_engine_failure_is_never_a_changed_verdict(tmp_path, monkeypatch):
    """slarules failing on a logged case (a bug, or durable_rules gone) stops the replay at that decision;
    it was reported as "the verdict differs now" for every decision."""
    from slarules.engine import default_pack_dirs, internal_error
    from slarules.errors import EngineError
    log = tmp_path / "d.log"
    for name in ("tb1-late.yaml", "tb5-overcharge.yaml"):
        assert main(["adjudicate", str(EXAMPLES / name), "--decision-log", str(log)]) == 0
    engine = Engine.load(default_pack_dirs())      # its own: the failures below are planted on it

    def fails(*_a, **_k):
        raise RuntimeError("simulated failure")
    monkeypatch.setattr(engine, "run", fails)
    with pytest.raises(EngineError) as one_by_one:
        replay(log, engine)
    monkeypatch.setattr(engine, "columnar", lambda lang: None)
    monkeypatch.setattr(engine, "adjudicate_many",
                        lambda cases, **_k: [(None, internal_error(RuntimeError("simulated failure"))) for _ in cases])
    with pytest.raises(EngineError) as in_batch:
        replay(log, engine, batch=True)
    for raised in (one_by_one.value, in_batch.value):
        assert (raised.file, raised.line) == (str(log), 1) and "simulated failure" in raised.message


# ---- logs written before records were sealed -------------------------------------------------

def unsealed(doc: dict) -> dict:
    """The record an earlier release wrote for the same decision: no logged_at, no seal, its own id."""
    canonical = json.dumps(doc["case"], ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    h = hashlib.sha256(canonical)
    h.update(b"\n" + doc["as_of"].encode() + b"\n" + ",".join(p["digest"] for p in doc["packs"]).encode())
    old = {k: doc[k] for k in decisions.RECORD_KEYS[:-2]}
    return {**old, "id": "sha256:" + h.hexdigest()}


def test_an_unsealed_log_is_refused_once_and_upgraded_into_a_sealed_one(small_log, tmp_path, capsys):
    old = write_records(tmp_path / "old.log", [unsealed(d) for d in records(small_log)])
    before = old.read_bytes()
    assert main(["replay", str(old)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"slarules: error: {old}:1: an unsealed record: it has no `record_digest` (written before "
                   "slarules sealed its records), so an edit to it cannot be told (seal it into a new log: "
                   f"`slarules replay {old} --upgrade NEW` checks each record first)"]
    new = tmp_path / "new.log"
    assert main(["replay", str(old), "--upgrade", str(new)]) == 0
    assert capsys.readouterr().out == f"3 records sealed into {new}\n"
    assert old.read_bytes() == before
    upgraded = list(read_log(new))
    assert [d.id for d in upgraded] == [d["id"] for d in records(small_log)]      # the new ids, as if logged now
    assert [d.verdict_digest for d in upgraded] == [d["verdict_digest"] for d in records(small_log)]
    assert main(["replay", str(new)]) == 0
    assert main(["replay", str(old), "--upgrade", str(new)]) == 0                  # each decision once
    assert capsys.readouterr().out.endswith("0 records sealed into " + str(new) + "\n")


def test_an_edited_unsealed_record_is_not_upgraded(small_log, tmp_path, capsys):
    docs = [unsealed(d) for d in records(small_log)]
    docs[2]["case"]["waybill"] = "BX0000000000"
    old = write_records(tmp_path / "old.log", docs)
    assert main(["replay", str(old), "--upgrade", str(tmp_path / "new.log")]) == 2
    assert f"{old}:3: not a decision record: its `id` does not match" in capsys.readouterr().err
    assert not (tmp_path / "new.log").exists()


def test_logged_at_of_now_is_the_text_of_the_instant_between_two_clock_reads():
    """logged_at() makes a second's text once (a server writes one per decision): the same text as
    logged_at(datetime.now(UTC)), so it lies between two such reads, in RFC 3339 UTC to the millisecond,
    whatever the machine's time zone."""
    from datetime import UTC

    import time

    from slarules.output import decision_records
    from slarules.output.decision_records import logged_at
    for _ in range(2000):
        before, now, after = logged_at(datetime.now(UTC)), logged_at(), logged_at(datetime.now(UTC))
        assert before <= now <= after
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now)
    # across second boundaries, a leap day and a year's end, in zones other than UTC: the remembered
    # second's text is replaced when the second changes, and never follows the machine's zone
    instants = [1_767_225_599_999_999_999, 1_767_225_600_000_000_000, 1_767_225_600_000_999_999,
                1_709_164_799_500_000_000, 1_709_164_800_001_000_000, 1_709_164_800_999_000_000]
    zone = os.environ.get("TZ")
    try:
        for tz in ("Asia/Shanghai", "America/St_Johns", "UTC"):
            os.environ["TZ"] = tz
            time.tzset()
            for ns in instants:
                expected = logged_at(datetime.fromtimestamp(ns // 1000 / 1e6, UTC))
                with pytest.MonkeyPatch.context() as m:
                    m.setattr(decision_records.time, "time_ns", lambda ns=ns: ns)
                    assert logged_at() == expected, (tz, ns)
    finally:
        if zone is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = zone
        time.tzset()
