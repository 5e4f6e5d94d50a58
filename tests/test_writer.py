"""The one output writer: outputs checked before any work, locked for the whole run, never torn.

Issue 21: two runs on one output corrupted it while one exited 0; an output that could not be
written was found after the whole batch had run; a full disk was blamed on the input; --workers
500 on 500 rows took 45 s; SIGTERM left leaked semaphores and SIGINT said nothing.
"""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from slarules import cli
from slarules.batch import io as batch_io, runner
from slarules.batch.runner import Batch, BatchOptions
from slarules.settlement.statement import STATEMENT_FILES
from slarules.cli import main
from slarules.errors import Interrupted, OutputError
from slarules.output.stopping import Stopping
from slarules.output.writer import WORK_SUFFIXES, Outputs

sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import write as generate  # noqa: E402

AS_OF = "2026-05-20T00:00:00+08:00"
RULES = ROOT / "rules"


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("small") / "cases.jsonl"
    generate(str(path), 40, seed=3, bad_rate=0.05, kpi=True)
    return path


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> Path:
    """Enough chunks (of 100) that a second run or a signal comes while the first is at work."""
    path = tmp_path_factory.mktemp("large") / "cases.jsonl"
    generate(str(path), 1500, seed=8, bad_rate=0.02, kpi=True)
    return path


@pytest.fixture(scope="module")
def reference(engine, large, tmp_path_factory) -> Path:
    """`large` run alone, with a statement and a decision log."""
    ref = tmp_path_factory.mktemp("ref")
    runner.run_batch(engine, str(large), str(ref / "v.jsonl"), BatchOptions(
        statement=str(ref / "st"), decision_log=str(ref / "log.jsonl"), as_of=AS_OF, chunk_size=100, workers=1,
        progress=False))
    return ref


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def slarules(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "slarules", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def wait_for(predicate, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def checkpoint_chunks(path: Path) -> int:
    try:
        return json.loads(path.read_text())["chunks"]
    except (OSError, ValueError, KeyError):
        return 0


# ---- every output checked before any work ------------------------------------------------------

def _refuse_reading(monkeypatch):
    monkeypatch.setattr(batch_io, "read_chunks", lambda *a, **k: pytest.fail("a row was read"))


@pytest.mark.parametrize("flags, said", [
    (["--statement", "{file}"], "is a file, and a folder is needed"),
    (["--errors", "{folder}"], "is a folder, and a file is needed"),
    (["--decision-log", "{folder}"], "is a folder, and a file is needed"),
    (["--statement", "{file}/st"], "is a file, not a folder"),
    (["-o", "{file}/v.jsonl"], "is a file, not a folder"),
    (["--errors", "{fifo}"], "is not a regular file"),
    (["--errors", "{out}.partial"], "is the same file as the errors file (--errors)"),
    (["--errors", "{dir}/e.jsonl.checkpoint.json"], "kept for slarules' working files"),
    (["--statement", "{out}.parts/st"], "kept for slarules' working files"),
])
def test_an_output_that_cannot_be_written_is_refused_before_any_row_is_read(small, tmp_path, capsys, monkeypatch,
                                                                            flags, said):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder").mkdir()
    os.mkfifo(tmp_path / "a-fifo")
    names = {"file": tmp_path / "a-file", "folder": tmp_path / "a-folder", "fifo": tmp_path / "a-fifo",
             "out": tmp_path / "v.jsonl", "dir": tmp_path}
    argv = [f.format(**names) for f in flags]
    if "-o" not in argv:
        argv = ["-o", str(tmp_path / "v.jsonl"), *argv]
    before = listing(tmp_path)
    _refuse_reading(monkeypatch)
    code = main(["batch", str(small), *argv, "--as-of", AS_OF])
    err = capsys.readouterr().err
    assert code == 2 and said in err and "nothing was written" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert listing(tmp_path) == before          # not even a lock file


@pytest.mark.parametrize("command", ["batch", "diff"])
def test_a_read_only_folder_is_refused_before_any_work(small, tmp_path, capsys, monkeypatch, command):
    """Root ignores permission bits, so the folder is made read-only where slarules asks (os.access)."""
    locked = tmp_path / "read-only"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == locked
                        else real_access(path, mode, **kw))
    _refuse_reading(monkeypatch)
    if command == "batch":
        argv = ["batch", str(small), "-o", str(tmp_path / "v.jsonl"), "--statement", str(locked), "--as-of", AS_OF]
    else:
        argv = ["diff", str(small), "--base", str(RULES), "--head", str(RULES), "-o", str(locked / "d")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and f"the folder {locked} is read-only" in err and err.count("\n") == 1, err
    assert listing(tmp_path) == ["read-only"]


def test_diff_into_a_path_under_a_file_is_refused_located(small, tmp_path, capsys):
    (tmp_path / "report").write_text("x")
    code = main(["diff", str(small), "--base", str(RULES), "--head", str(RULES), "-o", str(tmp_path / "report" / "d")])
    err = capsys.readouterr().err
    assert code == 2 and f"{tmp_path / 'report'} is a file, not a folder" in err and "Traceback" not in err


def test_working_names_belong_to_one_final_output_only():
    """A working file is FINAL + suffix: if no suffix ends another, two runs sharing a working file
    share the final output it is named after, which the lock covers."""
    for a in WORK_SUFFIXES:
        for b in WORK_SUFFIXES:
            assert a == b or not a.endswith(b), (a, b)


def test_a_folder_of_outputs_may_hold_the_input_but_a_working_folder_may_not(tmp_path):
    source = tmp_path / "cases.jsonl"
    source.write_text("{}\n")
    beside = Outputs({"the input": source})
    beside.folder("the statement", tmp_path, STATEMENT_FILES)       # --statement . beside the cases: fine
    beside.check()
    (tmp_path / "v.jsonl.parts").mkdir()
    inside = source.rename(tmp_path / "v.jsonl.parts" / "cases.jsonl")
    removed = Outputs({"the input": inside})
    removed.work("the parts", removed.file("the output", tmp_path / "v.jsonl"), ".parts", folder=True)
    with pytest.raises(OutputError, match="is a folder holding the input"):
        removed.check()
    with pytest.raises(ValueError):             # a working file is named after a declared final output
        Outputs().work("the parts", tmp_path / "v.jsonl", ".parts", folder=True)


def test_a_killed_run_s_temporaries_are_removed_by_the_next_holder(engine, small, tmp_path):
    stale = [tmp_path / ".v.jsonl.4242.tmp", tmp_path / ".v.jsonl.checkpoint.json.4242.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    (tmp_path / ".w.jsonl.4242.tmp").write_bytes(b"another output's")
    runner.run_batch(engine, str(small), str(tmp_path / "v.jsonl"), BatchOptions(as_of=AS_OF, progress=False))
    assert not any(p.exists() for p in stale) and (tmp_path / ".w.jsonl.4242.tmp").exists()


def test_a_signal_in_a_safe_block_is_raised_when_it_ends():
    with Stopping() as stop:
        done = []
        with pytest.raises(Interrupted) as caught:
            with stop.safe():
                os.kill(os.getpid(), signal.SIGTERM)
                done.append("the block ran on")
        assert done and caught.value.exit_code == 143
        os.kill(os.getpid(), signal.SIGINT)       # the run is stopping already: its cleanup is not cut short
    with Stopping(), pytest.raises(Interrupted) as caught:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)          # the handler raises before this ends
    assert caught.value.exit_code == 130
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL     # restored


def test_an_interrupted_spark_run_discards_its_working_files_and_says_so(engine, small, tmp_path, monkeypatch):
    """PySpark's own SIGINT handler cancels the jobs and raises KeyboardInterrupt: the same stop as the batch's."""
    from slarules import spark

    def interrupted(plan, *args):
        plan.partial.write_bytes(b"half a file")
        raise KeyboardInterrupt
    monkeypatch.setattr(spark, "_run_job", interrupted)
    with pytest.raises(Interrupted) as caught:
        spark.run_spark_batch(engine, str(small), str(tmp_path / "v.jsonl"), BatchOptions(as_of=AS_OF), spark=object())
    assert caught.value.exit_code == 130 and "keeps nothing to resume from" in str(caught.value)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


# ---- two runs on the same outputs -----------------------------------------------------------------

def test_a_second_batch_on_any_of_the_same_outputs_is_refused_and_the_first_is_as_if_alone(
        engine, large, reference, tmp_path, monkeypatch, capsys):
    """The first run is another process, stopped mid-run while it holds its outputs; the others run here."""
    monkeypatch.setattr(cli, "_engine", lambda args: engine)
    ref = reference
    alone = ["--as-of", AS_OF, "--chunk-size", "100", "--workers", "1"]
    out = tmp_path / "run"
    first = slarules("batch", str(large), "-o", str(out / "v.jsonl"), "--statement", str(out / "st"),
                     "--decision-log", str(out / "log.jsonl"), *alone,
                     env={**os.environ, "SLARULES_CHECKPOINT_SECONDS": "0"})
    try:
        wait_for(lambda: checkpoint_chunks(out / "v.jsonl.checkpoint.json") >= 2 or first.poll() is not None,
                 "the first run's second chunk")
        assert first.poll() is None, first.communicate()
        first.send_signal(signal.SIGSTOP)         # it holds its outputs, mid-run, for as long as the others take
        (out / "sub").mkdir()
        for other in (["-o", str(out / "sub" / ".." / "v.jsonl")],                       # its -o, spelt otherwise
                      ["-o", str(tmp_path / "w.jsonl"), "--statement", str(out / "st")],   # its statement
                      ["-o", str(tmp_path / "x.jsonl"), "--errors", str(out / "v.errors.jsonl")],
                      ["-o", str(tmp_path / "y.jsonl"), "--decision-log", str(out / "log.jsonl")]):
            assert main(["batch", str(large), *other, "--as-of", AS_OF]) == 2
            err = capsys.readouterr().err
            assert f"is being written by process {first.pid}" in err and "slarules batch" in err, err
            assert "nothing was read or written" in err and "Traceback" not in err
        first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=300)
    finally:
        stop(first)
    assert first.returncode == 0, err
    for name in ("v.jsonl", "v.errors.jsonl", *(f"st/{n}" for n in STATEMENT_FILES)):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert records(out / "log.jsonl") == records(ref / "log.jsonl")
    assert not (tmp_path / "w.jsonl").exists() and not (tmp_path / "x.jsonl").exists()


def test_a_second_diff_on_the_same_folder_is_refused_and_the_first_is_as_if_alone(large, tmp_path, capsys):
    ref, out = tmp_path / "ref", tmp_path / "out"
    args = [str(large), "--base", str(RULES), "--head", str(RULES), "--as-of", AS_OF, "--format", "json"]
    assert main(["diff", *args, "-o", str(ref)]) == 0
    first = slarules("diff", *args, "-o", str(out))
    try:
        lock = out / ".diff.json.lock"
        wait_for(lambda: f'"pid": {first.pid}' in (lock.read_text() if lock.exists() else "")
                 or first.poll() is not None, "the first diff's lock")
        assert first.poll() is None, first.communicate()
        first.send_signal(signal.SIGSTOP)
        assert main(["diff", *args, "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"is being written by process {first.pid}" in err and "slarules diff" in err, err
        first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=300)
    finally:
        stop(first)
    assert first.returncode == 0, err
    for name in ("diff.json", "diff.txt", "diff.html"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


def stop(run: subprocess.Popen) -> None:
    """A run left stopped or running by a failed test: ended."""
    if run.poll() is None:
        run.send_signal(signal.SIGCONT)
        run.kill()
        run.wait()


def records(log: Path) -> list[dict]:
    """A decision log's records, less when each was logged (the run's start) and the seal over that."""
    docs = [json.loads(line) for line in log.read_bytes().splitlines()]
    return [{k: v for k, v in d.items() if k not in ("logged_at", "record_digest")} for d in docs]


# ---- a write that fails: every output as it was, or complete --------------------------------------

FAILING = ("write", "fsync", "replace", "copy_file_range")


class Faults:
    """os.write, os.fsync, os.replace and os.copy_file_range, counted; the `fail_at`-th call fails.

    fsync is not done for real: what is tested is what happens when one fails, not the disk.
    """

    def __init__(self, monkeypatch, fail_at: int | None = None) -> None:
        self.calls, self.fail_at, self.failed = 0, fail_at, None
        real = {name: getattr(os, name) for name in FAILING}
        for name in FAILING:
            monkeypatch.setattr(os, name, self._wrap(name, real[name]))

    def _wrap(self, name, real):
        def call(*args, **kwargs):
            self.calls += 1
            if self.calls == self.fail_at:
                self.failed = name
                code = errno.ENOSPC if self.calls % 2 else errno.EIO
                raise OSError(code, os.strerror(code))
            return None if name == "fsync" else real(*args, **kwargs)
        return call


OLD = {"v.jsonl": b"old verdicts\n", "v.errors.jsonl": b"old errors\n", "log.jsonl": b"",
       **{f"st/{n}": b"old " + n.encode() for n in STATEMENT_FILES}}


def _batch_argv(folder: Path, source: Path) -> list[str]:
    return ["batch", str(source), "-o", str(folder / "v.jsonl"), "--statement", str(folder / "st"),
            "--decision-log", str(folder / "log.jsonl"), "--as-of", AS_OF, "--chunk-size", "20",
            "--backend", "durable"]


def _plant_old(folder: Path, old_log: bytes) -> None:
    (folder / "st").mkdir(parents=True)
    for name, data in OLD.items():
        (folder / name).write_bytes(old_log if name == "log.jsonl" else data)


def test_a_failed_write_anywhere_leaves_each_output_as_it_was_or_complete_and_says_what_was_kept(
        engine, small, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_engine", lambda args: engine)      # one engine for the many runs here
    monkeypatch.setattr(runner, "CHECKPOINT_EVERY", 0)           # a checkpoint after every chunk
    ref = tmp_path / "ref"
    ref.mkdir()
    assert main(_batch_argv(ref, small)) == 0
    old_log = b'{"earlier": "record"}\n'
    complete = {name: (ref / name).read_bytes() for name in OLD if name != "log.jsonl"}
    count = tmp_path / "count"
    _plant_old(count, old_log)
    with monkeypatch.context() as m:
        faults = Faults(m)
        assert main(_batch_argv(count, small)) == 0
    capsys.readouterr()
    calls = faults.calls
    assert calls > 40
    kinds = set()
    for fail_at in range(1, calls + 1):
        folder = tmp_path / f"at-{fail_at}"
        _plant_old(folder, old_log)
        with monkeypatch.context() as m:
            faults = Faults(m, fail_at)
            code = main(_batch_argv(folder, small))
        err = capsys.readouterr().err
        kinds.add(faults.failed)
        where = f"{faults.failed} call {fail_at}"
        if code == 0:       # only an fsync of a folder may fail unnoticed (some file systems refuse one)
            assert faults.failed == "fsync", where
        else:
            assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (where, err)
            failed = re.match(r"slarules: error: (.*?): cannot write the file: (.*?) \(", err)
            assert failed and Path(failed[1]).is_relative_to(folder), (where, err)
            assert failed[2] in (os.strerror(errno.ENOSPC), os.strerror(errno.EIO)), (where, err)
            _said_truly(folder, err, where)
        for name, data in complete.items():
            assert (folder / name).read_bytes() in (OLD[name], data), (where, name)
        assert (folder / "log.jsonl").read_bytes() == old_log or \
            records(folder / "log.jsonl") == records(count / "log.jsonl"), where
        assert not [p for p in folder.rglob("*.tmp")], where
        if code:
            assert main(_batch_argv(folder, small)) == 0, (where, capsys.readouterr().err)   # as the message said
        for name, data in complete.items():
            assert (folder / name).read_bytes() == data, (where, name)
        assert records(folder / "log.jsonl") == records(count / "log.jsonl"), where
        assert listing(folder) == listing(count), where
        capsys.readouterr()
    assert kinds == set(FAILING)


def _said_truly(folder: Path, err: str, where: str) -> None:
    """What the message says was kept is what is on disk."""
    checkpoint = folder / "v.jsonl.checkpoint.json"
    if "no checkpoint was written yet" in err:
        assert not checkpoint.exists(), where
        return
    state = json.loads(checkpoint.read_text())
    kept = re.search(r"the checkpoint keeps the first ([\d,]+) rows", err)
    if kept:
        assert state["phase"] == "running" and state["rows"] == int(kept[1].replace(",", "")), (where, err)
    else:
        assert re.search(rf"all {state['rows']} rows were adjudicated", err) and state["phase"] == "finishing", \
            (where, err)
    assert "run the same command again" in err, where


@pytest.mark.parametrize("tail, cut", [(b"", None), (b"c\n", None), (b"c\nd", 6), (b"cd", 4), (b"c" * 70000, 4),
                                       (b"c\n" + b"d" * 70000, 6)])
def test_a_log_append_killed_midway_is_cut_back_to_its_last_whole_line_never_below_the_run_s_start(tmp_path,
                                                                                                 tail, cut):
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"a\nb\n" + tail)          # 4 bytes when the run's finish began
    assert runner._last_whole_line(log, 4) == cut
    log.write_bytes(b"a\nb")                    # torn before the run began: not this run's to cut
    assert runner._last_whole_line(log, 3) is None


# ---- workers: never more than useful --------------------------------------------------------------

def test_workers_never_outnumber_the_chunks_nor_the_cpus(engine, small, tmp_path, monkeypatch):
    def workers(asked: int, chunk_size: int) -> int:
        batch = Batch(engine, str(small), str(tmp_path / "v.jsonl"),
                      BatchOptions(workers=asked, chunk_size=chunk_size, as_of=AS_OF))
        count, chunks = batch._workers(batch_io.read_chunks(str(small), "jsonl", chunk_size))
        assert len(list(chunks)) == -(-40 // chunk_size)        # the chunks read ahead are all still there
        return count
    monkeypatch.setattr(runner, "usable_cpus", lambda: 4)
    assert workers(500, 20000) == 1
    assert workers(500, 15) == 3
    assert workers(500, 1) == 4
    assert workers(2, 1) == 2
    assert workers(0, 1) == 1           # unasked: one for a small input


@pytest.mark.parametrize("cpus, rows, chunk_size, expected", [
    (2, 20_000, 20_000, 1), (2, 20_000, 1, 1), (2, 40_000, 20_000, 1), (2, 60_000, 20_000, 1),
    (2, 100_000, 20_000, 2), (2, 200_000, 20_000, 2), (4, 60_000, 1, 1), (4, 66_000, 1, 1), (4, 67_000, 1, 4),
    (4, 1_000_000, 1, 4), (4, 1_000_000, 200_000, 2)])
def test_unasked_workers_are_only_those_whose_start_the_rows_repay(engine, small, tmp_path, monkeypatch,
                                                                   cpus, rows, chunk_size, expected):
    """W workers must save twice what starting them costs, rows × (1 - 1/W) ≥ 2 × WORKER_START_ROWS,
    with two chunks each: so 20,000 rows run in this process, never slower than --workers 1."""
    monkeypatch.setattr(runner, "usable_cpus", lambda: cpus)
    monkeypatch.setattr(batch_io, "estimate_rows", lambda path, fmt, position=None: rows)
    monkeypatch.setattr(runner, "WORKER_START_ROWS", 25_000)
    batch = Batch(engine, str(small), str(tmp_path / "v.jsonl"), BatchOptions(chunk_size=chunk_size, as_of=AS_OF))
    ahead = [batch_io.Chunk(i, None, {}, 0.0) for i in range(1, 9)]     # enough chunks that they are no cap
    assert batch._workers(iter(ahead))[0] == expected


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_rows_are_estimated_from_the_input_and_its_checkpoint_position(tmp_path, fmt):
    pytest.importorskip("pyarrow")
    source = tmp_path / f"c.{fmt}"
    generate(str(source), 3_000, seed=4)
    assert batch_io.estimate_rows(str(source), fmt) == pytest.approx(3_000, rel=0.02)
    *_, position = (c.position for c in batch_io.read_chunks(str(source), fmt, 1_000))
    assert batch_io.estimate_rows(str(source), fmt, position) == 0
    first = next(iter(batch_io.read_chunks(str(source), fmt, 1_000))).position
    assert batch_io.estimate_rows(str(source), fmt, first) == pytest.approx(2_000, rel=0.05)


def test_workers_500_on_500_rows_start_no_pool(engine, tmp_path, monkeypatch, capsys):
    source = tmp_path / "c.jsonl"
    generate(str(source), 500, seed=2)
    monkeypatch.setattr(cli, "_engine", lambda args: engine)
    monkeypatch.setattr(runner.multiprocessing, "get_context", lambda *a: pytest.fail("a pool was started"))
    assert main(["batch", str(source), "-o", str(tmp_path / "v.jsonl"), "--workers", "500", "--as-of", AS_OF]) == 0
    assert "500 rows: 500 verdicts" in capsys.readouterr().err


# ---- SIGTERM and SIGINT -----------------------------------------------------------------------------



def test_a_worker_stays_deaf_to_ctrl_c_whatever_it_imports_later():
    """A worker (runner._init_worker, the batch's and the server's) never turns Ctrl-C into a
    KeyboardInterrupt: Polars, imported after the worker set SIGINT aside, installs its own handler
    and raised one inside a query, a worker's traceback on the terminal before the batch's message."""
    script = """
import os, signal, threading, time
from slarules.batch import runner
runner._init_worker(None, None, os.getppid())
import polars as pl
frame = pl.DataFrame({"a": range(1_000_000)})
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()     # while a query runs
started = time.monotonic()
while time.monotonic() - started < 1.0:
    frame.lazy().with_columns(b=pl.col("a") * 2).sort("b", descending=True).collect()
print("decided")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "decided", "")


@pytest.mark.parametrize("number, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_workers_keeps_the_checkpoint_and_says_how_to_resume(large, reference, tmp_path,
                                                                               number, code):
    """SIGINT goes to the whole process group, as Ctrl-C on a terminal sends it; SIGTERM to the batch."""
    out = tmp_path / "v.jsonl"
    argv = ["batch", str(large), "-o", str(out), "--statement", str(tmp_path / "st"), "--as-of", AS_OF,
            "--chunk-size", "100"]
    run = slarules(*argv, "--workers", "2", env={**os.environ, "SLARULES_CHECKPOINT_SECONDS": "0"}, start_new_session=True)
    checkpoint = tmp_path / "v.jsonl.checkpoint.json"
    wait_for(lambda: checkpoint_chunks(checkpoint) >= 3 or run.poll() is not None, "three chunks")
    children = subprocess.run(["pgrep", "-P", str(run.pid)], check=False, capture_output=True, text=True).stdout.split()
    if number == signal.SIGINT:
        os.killpg(run.pid, number)
    else:
        run.send_signal(number)
    _, err = run.communicate(timeout=120)
    assert run.returncode == code, err
    state = json.loads(checkpoint.read_text())
    assert state["phase"] == "running" and 0 < state["rows"] < 1500
    assert err.strip() == (f"slarules: interrupted by {signal.Signals(number).name}: the checkpoint keeps the first "
                           f"{state['rows']:,} rows: run the same command again to carry on from there"), err
    wait_for(lambda: not [c for c in children if Path(f"/proc/{c}").exists()], "the workers to end", timeout=30)
    assert not out.exists()
    again = subprocess.run([sys.executable, "-m", "slarules", *argv, "--workers", "1"], check=False,
                           capture_output=True, text=True, timeout=300)     # how many workers is not part of the run
    assert again.returncode == 0 and f"resumed after row {state['rows']:,}" in again.stderr, again.stderr
    assert out.read_bytes() == (reference / "v.jsonl").read_bytes()
    assert (tmp_path / "v.errors.jsonl").read_bytes() == (reference / "v.errors.jsonl").read_bytes()
    for name in STATEMENT_FILES:
        assert (tmp_path / "st" / name).read_bytes() == (reference / "st" / name).read_bytes(), name
