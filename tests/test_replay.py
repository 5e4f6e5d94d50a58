"""Decision logs (`--decision-log`, `Engine.adjudicate(log=)`) and `slarules replay`."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from slarules import Engine
from slarules.batch import runner as batch_module
from slarules.batch.runner import BatchOptions, run_batch
from slarules.cli import main
from slarules.errors import InputError
from slarules.tools import decisions
from slarules.tools.decisions import DecisionLog, append_atomically, read_log, replay

from conftest import EXAMPLES, ROOT, case

sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import write as generate  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_diff import packs_with, replace_once  # noqa: E402

AS_OF = "2026-05-20T00:00:00+08:00"


@pytest.fixture(scope="module")
def cases_file(tmp_path_factory) -> Path:
    """300 generated cases (some broken) and a blank line."""
    path = tmp_path_factory.mktemp("in") / "cases.jsonl"
    generate(str(path), 300, seed=21, bad_rate=0.05)
    rows = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(rows[:50] + [b"\n"] + rows[50:]))
    return path


def opts(**kw) -> BatchOptions:
    return BatchOptions(**{"as_of": AS_OF, "chunk_size": 64, "workers": 1, "progress": False, **kw})


def per_case_log(engine: Engine, cases_file: Path, target: Path, lang: str = "zh") -> bytes:
    """The log the library hook writes, one case at a time, for the rows that get a verdict."""
    log = DecisionLog(target)
    for line in cases_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            engine.adjudicate(json.loads(line), as_of=AS_OF, lang=lang, log=log)
        except Exception:
            continue
    return target.read_bytes()


def test_a_record_holds_the_case_as_given_its_instant_packs_and_verdict_digest(engine, tmp_path, capsys):
    case_file = EXAMPLES / "tb5-overcharge.yaml"
    log = tmp_path / "d.log"
    assert main(["adjudicate", str(case_file), "--decision-log", str(log), "--format", "json"]) == 0
    verdict = capsys.readouterr().out
    assert main(["adjudicate", str(case_file), "--decision-log", str(log)]) == 0
    first, second = log.read_bytes().splitlines()
    assert first == second                          # the same decision: the same record, the same id
    record = json.loads(first)
    assert list(record) == list(decisions.RECORD_KEYS)
    from slarules.case.sources import read_document
    assert record["case"] == read_document(str(case_file), max_bytes=1 << 20).data
    compact = json.dumps(json.loads(verdict), ensure_ascii=False)
    assert record["verdict_digest"] == "sha256:" + hashlib.sha256(compact.encode()).hexdigest()
    assert record["as_of"] == json.loads(verdict)["as_of"] and record["lang"] == "zh"
    assert record["packs"] == json.loads(verdict)["packs"]
    at_other_time = DecisionLog(tmp_path / "e.log")
    engine.adjudicate(record["case"], as_of=AS_OF, log=at_other_time)
    assert json.loads((tmp_path / "e.log").read_bytes())["id"] != record["id"]


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
    assert [json.loads(r)["verdict_digest"] for r in log.read_bytes().splitlines()] == \
        ["sha256:" + hashlib.sha256(v).hexdigest() for v in verdicts]
    assert not list(tmp_path.glob("*.partial"))


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

    real_append = decisions.append_atomically

    def killed_while_appending(path, chunks):      # half the lines written, then the process dies
        data = b"".join(c.read_bytes() if isinstance(c, Path) else c for c in chunks)
        with open(path, "ab") as f:
            f.write(data[:len(data) // 2])
        raise RuntimeError("killed")
    monkeypatch.setattr(decisions, "append_atomically", killed_while_appending)
    with pytest.raises(RuntimeError):
        run_batch(engine, str(cases_file), str(tmp_path / "again.jsonl"), opts(decision_log=str(log)))
    monkeypatch.setattr(decisions, "append_atomically", real_append)
    summary = run_batch(engine, str(cases_file), str(tmp_path / "again.jsonl"), opts(decision_log=str(log)))
    assert summary.resumed_from > 0
    assert log.read_bytes() == whole.read_bytes()


def test_append_atomically_cuts_back_what_it_wrote_on_failure(tmp_path):
    log = tmp_path / "d.log"
    log.write_bytes(b"old\n")

    def chunks():
        yield b"new line\n"
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError):
        append_atomically(log, chunks())
    assert log.read_bytes() == b"old\n"


def test_parquet_rows_are_logged_as_dicts(engine, tmp_path):
    generate(str(tmp_path / "c.parquet"), 120, seed=5)
    log = tmp_path / "d.log"
    summary = run_batch(engine, str(tmp_path / "c.parquet"), str(tmp_path / "v.jsonl"), opts(decision_log=str(log)))
    records = list(read_log(log))
    assert len(records) == summary.verdicts == 120
    again = engine.adjudicate(records[7].case, as_of=records[7].as_of)
    assert decisions.verdict_digest(again.to_json(indent=None)) == records[7].verdict_digest


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


@pytest.mark.parametrize("line, message", [
    (b"{not json", "invalid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"id": "x"}', "missing waybill, as_of, lang, packs, verdict_digest, outcome_digest, case"),
])
def test_a_corrupt_line_is_located_and_exits_2(tmp_path, capsys, line, message):
    log = tmp_path / "d.log"
    assert main(["adjudicate", str(EXAMPLES / "tb1-late.yaml"), "--decision-log", str(log)]) == 0
    log.write_bytes(log.read_bytes() + b"\n" + line + b"\n")
    capsys.readouterr()
    assert main(["replay", str(log)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"slarules: error: {log}:3: not a decision record: ") and message in err


def test_an_edited_record_no_longer_matches_its_id(tmp_path):
    log = tmp_path / "d.log"
    Engine.default().adjudicate(case(), log=DecisionLog(log))
    record = json.loads(log.read_bytes())
    record["case"]["collection"]["charged_cny"] = "99.00"
    log.write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError, match=r"d.log:1: not a decision record: its `id` does not match"):
        list(read_log(log))


def test_a_log_that_cannot_be_read_or_written_is_one_line(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "none.log")]) == 2
    assert "none.log: cannot read the decision log" in capsys.readouterr().err
    (tmp_path / "dir.log").mkdir()
    assert main(["adjudicate", str(EXAMPLES / "tb1-late.yaml"), "--decision-log", str(tmp_path / "dir.log")]) == 2
    err = capsys.readouterr()
    assert "cannot append to the decision log" in err.err and err.out == ""


def test_replay_through_the_batch_reports_what_one_by_one_does(engine, cases_file, tmp_path, capsys):
    log = tmp_path / "d.log"
    network = Engine.load([ROOT / "rules"])       # the packs the head below changes (the default adds rules/national)
    run_batch(network, str(cases_file), str(tmp_path / "v.jsonl"), opts(decision_log=str(log), lang="en"))
    for name in ("tb5-overcharge.yaml", "tb4-unsigned-sender-lost.yaml"):
        assert main(["adjudicate", str(EXAMPLES / name), "--packs", str(ROOT / "rules"), "--decision-log", str(log)]) == 0
    lines = log.read_bytes().splitlines(keepends=True)
    gone = json.loads(lines[3])
    gone["case"]["product"] = "nope"                    # a case the packs now reject (id made to match)
    gone["id"] = decisions.decision_id(gone["case"], gone["as_of"], gone["packs"])
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
