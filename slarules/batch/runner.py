"""`slarules batch`: every case of a file, in bounded memory, resumable after a kill.

The input is read a chunk at a time; each chunk is adjudicated (by worker
processes when there are several cores), and chunks are committed strictly in
input order: verdict lines, error lines, then a checkpoint naming the input
position, the output sizes and the settlement totals so far. A run that is
killed and started again truncates its outputs back to the last checkpoint and
carries on from there, so the finished files are byte-identical to an
uninterrupted run: no row lost, none twice. Outputs carry a `.partial` suffix
until the run completes; only then do they take their final names.

Every input row ends as exactly one verdict or one error record (with its line
or row number), so rows in = verdicts + errors.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..case.instants import fast_instant_us
from ..case.reader import read_file, require_regular
from ..echo import FILE_LIMIT, MESSAGE_LIMIT, quote
from ..errors import EngineError, InputError, Interrupted, OutputError, SlaRulesError
from ..output.files import (
    Appender,
    commit as commit_file,
    fsync_dir,
    write_atomically,
    write_file,
    writing,
)
from ..output.stopping import Stopping
from ..output.writer import Outputs
from ..runtime import backend as backends
from ..settlement.statement import STATEMENT_FILES, Statement
from . import io as batch_io
from .progress import Progress

# 3: the statement keeps KPI counters; an older checkpoint has none. 4: verdict parts may be Arrow IPC
# (`.arrow`), which a slarules reading version 3 would not know and drop: it refuses a 4 instead.
CHECKPOINT_VERSION = 4
RESUMABLE_VERSIONS = (3, 4)    # a version 3 checkpoint's Parquet parts still merge
CHECKPOINT_BYTES = 64 << 20    # a run's state: its statement grows with stations and agents, never near this
CHECKPOINT_EVERY = float(os.environ.get("SLARULES_CHECKPOINT_SECONDS", "2"))  # between checkpoints
# What starting a worker process costs, in rows adjudicated meanwhile: ~1.4 s (spawn, imports, packs)
# at ~18,000 rows/s a core (this 2-core machine, loaded); the batch's choice of workers weighs it.
WORKER_START_ROWS = 25_000


@dataclass
class BatchOptions:
    backend: str = backends.DEFAULT     # a registered name (runtime/backend.py)
    lang: str = "zh"
    as_of: str | None = None          # overrides every case's as_of; without it, a case's own as_of, else
                                      # the instant the run first started (kept on resume)
    chunk_size: int = 20000           # the columnar path's fixed cost per chunk is ~0.2 s
    workers: int = 0                  # 0: one per core when the input is large enough
    input_format: str | None = None
    output_format: str | None = None
    errors: str | None = None         # default: OUTPUT's stem + ".errors.jsonl"
    statement: str | None = None      # directory for the settlement statement
    progress: bool | None = None      # None: only when stderr is a terminal
    fresh: bool = False               # discard a checkpoint instead of resuming
    checkpoint_seconds: float | None = None     # between checkpoints (default: CHECKPOINT_EVERY)
    decision_log: str | None = None   # append one record per verdict here (output/decision_log.py), in input order
    totals: bool = True               # the settlement totals in the summary even with no `statement` to write
                                      # (`slarules diff` compares them); the CLI's batch keeps them only for one
    now: str | None = None            # the instant standing for "now" (default: when the run first started);
                                      # `slarules diff` gives both of its runs the same one


@dataclass
class BatchSummary:
    rows: int
    verdicts: int
    errors: int
    seconds: float
    resumed_from: int = 0
    outputs: list[str] = field(default_factory=list)
    internal: int = 0                 # error records that are EngineError: rows slarules itself failed on
    statement: Statement | None = None    # the run's totals, for callers that compare runs (`slarules diff`)

    def render(self) -> str:
        done_here = self.rows - self.resumed_from       # a resumed run's rate is of its own rows
        rate = done_here / self.seconds if self.seconds else 0.0
        text = (f"{self.rows:,} rows: {self.verdicts:,} verdicts, {self.errors:,} errors; "
                f"{done_here:,} rows in {self.seconds:.1f} s ({rate:,.0f} rows/s)")
        if self.resumed_from:
            text += f", resumed after row {self.resumed_from:,}"
        if self.internal:
            text += (f"\n  {self.internal:,} of the errors are internal (EngineError in the errors file): a bug in "
                     "slarules, not bad input; please report it")
        return text + "\n" + "".join(f"  wrote {quote(p, FILE_LIMIT)}\n" for p in self.outputs)


def _import_in_background(module: str) -> None:
    """Import `module` in a thread now, for a step at the end of the run: the batch's process mostly
    waits on its workers meanwhile, where the import at the end (~0.15 s for pyarrow.parquet, the
    Parquet merge's) held up the finished run. An import that fails here fails again where it is used."""
    import importlib
    import threading

    def load() -> None:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    threading.Thread(target=load, name=f"import {module}", daemon=True).start()


# ---- one chunk (runs in a worker process, or in this one) --------------------------------

_engine = None


def _die_with_parent(parent: int) -> None:
    """A worker must not outlive a killed batch (it would hold memory and keep computing).

    Linux kills it with its parent (PR_SET_PDEATHSIG); elsewhere, or without prctl, a thread watches."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal
        try:
            killed_with_parent = ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) == 0
        except (OSError, AttributeError):       # a libc without prctl
            killed_with_parent = False
        if killed_with_parent:
            if os.getppid() != parent:          # the batch died while this worker was starting
                os._exit(1)
            return
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def _deaf_to_ctrl_c() -> None:
    """Ctrl-C reaches the whole process group; the batch (or server) stops its workers itself.

    Blocked, not only ignored, and before this process starts any thread (they inherit the mask): a
    library imported later may install its own SIGINT handler over SIG_IGN (Polars does, and then
    raises KeyboardInterrupt inside a query, a traceback on the user's terminal); a blocked signal
    reaches no handler at all."""
    import signal
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _init_worker(pack_paths: list[str] | None, catalogue: str | None, parent: int, limits=None,
                 registration: backends.Registration | None = None, compiled_file: str | None = None) -> None:
    """A worker's engine: the packs at `pack_paths`, or the compiled ones in `compiled_file` (`Engine.to_bytes`:
    a server's revision). A file, not the bytes: a spawned process's arguments go through a pipe its parent
    writes before the child reads, and a child killed while starting leaves a parent writing more than the
    pipe holds blocked for good (serve/pool.py)."""
    global _engine
    _deaf_to_ctrl_c()
    if registration is not None:        # a backend registered at run time: a spawned worker starts without it
        backends.register(registration)
    _die_with_parent(parent)
    from ..engine import Engine
    if compiled_file is not None:
        with open(compiled_file, "rb") as file:
            _engine = Engine.from_bytes(file.read())
    else:
        _engine = Engine.load(pack_paths, catalogue) if pack_paths else Engine.default()
    if limits is not None:
        _engine = _engine.with_limits(limits)


def error_record(number_key: str, number: int, exc: SlaRulesError, data: Any, file: str | None = None) -> str:
    """One rejected row as a JSON line: where it was, its waybill if readable, and why; what it quotes of
    the row (the waybill, as the error's message does) escaped and cut (echo.quote)."""
    waybill = data.get("waybill") if isinstance(data, dict) and isinstance(data.get("waybill"), str) else None
    record = {number_key: number, "waybill": None if waybill is None else quote(waybill),
              "error": type(exc).__name__, "message": exc.message, "field": exc.field, "hint": exc.hint}
    if file is not None:           # only when one run reads several files (Spark on a directory)
        record = {"file": quote(file, FILE_LIMIT), **record}
    return json.dumps(record, ensure_ascii=False, sort_keys=False)


@dataclass
class Adjudicated:
    """The outcome of some rows: verdicts and error records in row order, and their statement.

    The columnar path's verdicts stay in a Polars frame (`__row`, `json`) until
    written: making a Python string of each and joining them cost ~4 µs a row.
    """
    per_case: list[tuple[int, str]]        # (row number, verdict JSON) from the per-case path
    errors: list[tuple[int, str]]          # (row number, error record), in row order
    statement: Statement
    columns: Any = None                    # the columnar path's verdicts, a frame; None when it took none
    arrow: bool = False                    # `columns` holds each verdict field in Arrow's shape, not `json`

    def table(self):
        """The verdicts as an Arrow table of batch_io.verdict_schema(), in row order: the columnar path's
        from its columns, the per-case path's (few) from their JSON text, by the same schema."""
        import pyarrow as pa
        import pyarrow.compute as pc
        if not self.arrow:
            return batch_io.verdict_table(self.jsonl())
        per_case = "".join(line + "\n" for _, line in self.per_case).encode("utf-8")
        if self.columns is None or not self.columns.height:     # none taken: no columns
            return batch_io.verdict_table(per_case)
        direct = batch_io.columns_table(self.columns.drop("__row"))
        if not self.per_case:
            return direct
        rows = batch_io.arrow_array(self.columns["__row"].to_list() + [number for number, _ in self.per_case],
                                    pa.int64())
        both = pa.concat_tables([direct, batch_io.verdict_table(per_case)])
        return both.take(pc.sort_indices(rows))

    def _frame(self):
        from ..runtime._polars import pl
        frames = [] if self.columns is None else [self.columns]
        if self.per_case or not frames:
            frames.append(pl.DataFrame(self.per_case, schema={"__row": pl.Int64, "json": pl.String}, orient="row"))
        return pl.concat(frames).sort("__row") if len(frames) > 1 else frames[0]

    @property
    def verdicts(self) -> list[tuple[int, str]]:
        """(row number, verdict JSON) in row order."""
        if self.arrow:
            raise ValueError("verdicts adjudicated as columns have no JSON text")     # a caller's bug
        if self.columns is None:
            return self.per_case
        frame = self._frame()
        return list(zip(frame["__row"].to_list(), frame["json"].to_list()))

    def jsonl(self) -> bytes:
        """The verdicts as JSON Lines in row order: the bytes of the frame's text column as they are."""
        if self.arrow:
            raise ValueError("verdicts adjudicated as columns have no JSON text")     # a caller's bug
        if self.columns is None:
            return "".join(line + "\n" for _, line in self.per_case).encode("utf-8")
        from ..runtime._polars import pl
        text = self._frame()["json"]
        if text.null_count():
            raise ValueError("a verdict without text")      # cannot happen; never a line silently lost
        array = (text + "\n").rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())   # offsets + one buffer
        _, offsets, data = array.buffers()                      # large_string: int64 offsets, then the text
        offsets = memoryview(offsets)[:(array.offset + len(array) + 1) * 8].cast("q")
        return memoryview(data)[offsets[array.offset]:offsets[array.offset + len(array)]].tobytes()


def adjudicate_rows(engine, rows: list[tuple[int, Any]], *, source: str, raw: bool, as_of: str | None,
                    now: str, lang: str, backend: str, file: str | None = None, totals: bool = True,
                    arrow: bool = False) -> Adjudicated:
    """Adjudicate (number, row) pairs: JSON Lines bytes when `raw`, else row dicts (Parquet, Spark).
    `totals=False`: the statement counts verdicts and errors only (no settlement is written).
    `arrow`: the columnar path's verdicts as Arrow-shaped columns (for `Adjudicated.table`), not text.

    The one place a batch row becomes a verdict or an error record, shared by
    local batches and Spark partitions so both give the same bytes.
    """
    number_key = "line" if raw else "row"
    rejected = getattr(rows, "rejected", ())     # Parquet rows whose text is not UTF-8 (batch_io.TableRows)
    columns, statement = None, Statement()
    if backends.named(backend, InputError).columnar:
        columns, statement = _in_columns(engine, rows, raw=raw, as_of=as_of, now=now, lang=lang, totals=totals,
                                         arrow=arrow)
        if columns is not None:     # the rest take the per-case path: exact errors, odd inputs
            taken = set(columns["__row"].to_list())
            if isinstance(rows, batch_io.TableRows):
                rows = rows.pick(i for i, number in enumerate(rows.numbers) if number not in taken)
            else:
                rows = [r for r in rows if r[0] not in taken]
    verdicts: list[tuple[int, str]] = []
    errors: list[tuple[int, str]] = []
    datas: list[tuple[int, Any]] = []

    def reject(number: int, error: Exception, data: Any) -> None:
        error = _as_error(error)
        statement.internal += isinstance(error, EngineError)     # a bug in slarules, counted apart
        errors.append((number, error_record(number_key, number, error, data, file)))

    for number, error in rejected:
        reject(number, error, None)
    for number, payload in rows:
        try:
            data = batch_io.decode_line(payload, source, number, engine.limits) if raw else payload
        except Exception as exc:  # noqa: BLE001  # a bad row is rejected with its error, the batch goes on
            reject(number, exc, None)
            continue
        datas.append((number, data))
    results = engine.adjudicate_many([d for _, d in datas], as_of=as_of, now=now, lang=lang, backend=backend)
    for (number, data), (facts, outcome) in zip(datas, results):
        if isinstance(outcome, SlaRulesError):
            reject(number, outcome, data)
            continue
        try:     # a poison row costs its own error record, never the chunk
            line = outcome.to_json(indent=None)
            if totals:
                statement.add(facts, outcome)
            else:
                statement.verdicts += 1
        except Exception as exc:  # noqa: BLE001  # a bad row is rejected with its error, the batch goes on
            reject(number, exc, data)
        else:
            verdicts.append((number, line))
    verdicts.sort(key=lambda v: v[0])
    errors.sort(key=lambda e: e[0])
    statement.errors = len(errors)
    return Adjudicated(verdicts, errors, statement, columns, arrow and columns is not None)


def _as_error(exc: Exception) -> SlaRulesError:
    from ..engine import internal_error
    return exc if isinstance(exc, SlaRulesError) else internal_error(exc)


def _in_columns(engine, rows, *, raw: bool, as_of: str | None, now: str, lang: str,
                totals: bool = True, arrow: bool = False) -> tuple[Any, Statement]:
    """The rows the columnar path takes, as a frame (`__row`, `json`), and their statement; (None, empty)
    when it takes none: packs it cannot compile, a run instant it cannot use, or input it did not foresee."""
    table = isinstance(rows, batch_io.TableRows)
    columnar = engine.columnar(lang) if raw or table else None
    if columnar is None:
        return None, Statement()
    from ..columnar import input as bulk
    as_of_us, now_us = fast_instant_us(as_of), fast_instant_us(now)
    if (as_of is not None and as_of_us is None) or now_us is None:
        return None, Statement()
    try:
        frame = bulk.read_table(rows.batch, rows.numbers) if table else bulk.read_lines(rows)
        if frame is None:
            return None, Statement()
        done, statement = columnar.adjudicate(frame, as_of_us=as_of_us, now_us=now_us,
                                              max_scans=engine.limits.scans, totals=totals, arrow=arrow)
    except Exception as exc:    # Polars or a row it did not foresee: the per-case path gives each row's exact answer
        if os.environ.get("SLARULES_STRICT"):       # the tests and the fuzzer: a columnar failure is a bug to see
            raise
        numbers = rows.numbers if table else [number for number, _ in rows]
        first, last = (numbers[0], numbers[-1]) if numbers else (0, 0)
        sys.stderr.write(f"slarules: warning: the columnar path failed on rows {first}-{last} "
                         f"({type(exc).__name__}: {quote(exc, MESSAGE_LIMIT)}); they took the per-case path, "
                         "with the same verdicts. "
                         "This is a bug in slarules; please report it.\n")
        return None, Statement()
    return done, statement


def instant_now() -> str:
    """The instant that stands for "now" in a whole run, to the second, as ISO 8601 UTC."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def decision_lines(rows, verdicts: list[tuple[int, str]], lang: str, now: str) -> list[tuple[int, bytes]]:
    """(row number, decision log record) of some adjudicated rows, in row order: each verdict with its case as given.

    `now` is the run's instant standing for "now" (kept on resume): every record of a run states it
    as its `logged_at`, so a resumed or redistributed run logs the same bytes."""
    from ..output.decision_records import logged_at, record_line
    stamp = logged_at(now)
    if isinstance(rows, batch_io.TableRows):
        at = {number: i for i, number in enumerate(rows.numbers)}
        cases = dict(rows.pick(at[number] for number, _ in verdicts))
    else:
        given = dict(rows)
        cases = {number: json.loads(given[number].decode("utf-8-sig") if isinstance(given[number], bytes)
                                    else given[number]) for number, _ in verdicts}
    return [(number, record_line(cases[number], text, lang, stamp)[1]) for number, text in verdicts]


def _chunk_done(chunk: batch_io.Chunk, job: dict[str, Any], arrow: bool) -> tuple[Any, Adjudicated, bytes | None]:
    """One chunk adjudicated: its rows, their verdicts and errors, and its decision records if the job logs them.
    `job["file"]`, when given, names the row's file in each error record (one of several input files);
    `arrow`: the verdicts as columns only (Adjudicated.table), no JSON text."""
    rows = chunk.rows.read(_engine.limits.case_bytes) if isinstance(chunk.rows, batch_io.LineRange) else chunk.rows  # type: ignore[union-attr]  # set before any chunk
    done = adjudicate_rows(_engine, rows, source=job["input"], raw=job["input_format"] != "parquet",
                           as_of=job["as_of"], now=job["now"], lang=job["lang"], backend=job["backend"],
                           totals=job.get("totals", True), arrow=arrow, file=job.get("file"))
    decisions = b"".join(line for _, line in decision_lines(rows, done.verdicts, job["lang"], job["now"])) \
        if job.get("decisions") else None
    return rows, done, decisions


def chunk_blocks(chunk: batch_io.Chunk, job: dict[str, Any]) -> dict[str, Any]:
    """One chunk's outputs as bytes, for a process that cannot write where its parent reads (a Spark
    executor on another machine): verdict lines, error records, decision records, statement."""
    try:
        rows, done, decisions = _chunk_done(chunk, job, arrow=False)
        return {"index": chunk.index, "verdicts": done.jsonl(), "decisions": decisions,
                "errors": "".join(e + "\n" for _, e in done.errors).encode("utf-8"),
                "statement": done.statement.to_dict(), "rows": len(rows)}
    finally:
        _give_back_memory()


def adjudicate_chunk(chunk: batch_io.Chunk, job: dict[str, Any]) -> dict[str, Any]:
    """Verdicts and error records of one chunk, in row order, plus its statement."""
    # a Parquet output without a decision log needs no verdict text: the columns go straight to Arrow
    rows, done, lines = _chunk_done(chunk, job, arrow=job["output_format"] == "parquet" and not job.get("decisions"))
    decisions = None
    if lines is not None:
        decisions = Path(job["parts"]) / f"{chunk.index:09d}.decisions.jsonl"
        write_file(decisions, lines)
    if job["output_format"] == "parquet":     # the parent encodes the Parquet file from these parts as they commit
        part = Path(job["parts"]) / f"{chunk.index:09d}{batch_io.PART_SUFFIXES[0]}"
        batch_io.write_verdict_table(part, done.table())
    else:      # the parent appends it to the output: no verdict text through a pipe
        part = Path(job["parts"]) / f"{chunk.index:09d}.{job['output_format']}"
        write_file(part, done.jsonl())
    return {"index": chunk.index, "part": str(part), "decisions": decisions and str(decisions),
            "errors": "".join(e + "\n" for _, e in done.errors).encode("utf-8"),
            "statement": done.statement.to_dict(), "position": chunk.position, "rows": len(rows),
            "done": chunk.done_fraction}


def _work(args) -> dict[str, Any]:
    chunk, job = args
    try:
        return adjudicate_chunk(chunk, job)
    finally:
        _give_back_memory()


def _give_back_memory() -> None:
    """Collect a chunk's reference cycles (tens of MB) now, not when a full collection happens to run.

    Without it (and without glibc's malloc_trim) a worker's RSS crept from 280
    to 650 MiB over 9 chunks of 20,000 rows. malloc_trim has since gone: since
    Polars' allocator keeps its pages (_polars.py), RSS stays flat without it
    (1,200,000 rows, 60 chunks), and it cost ~8% of the run in page faults.
    """
    import gc
    gc.collect()


# ---- the run ----------------------------------------------------------------------------

class Batch:
    """One batch run: its outputs (declared, checked and locked through output.Outputs), fingerprint and
    checkpoint; `run()` does the work."""

    def __init__(self, engine, input_path: str, output_path: str, options: BatchOptions | None = None,
                 must_exist: bool = True):
        self.engine = engine
        self.options = o = options or BatchOptions()
        self.totals = o.totals or bool(o.statement)    # a resume needs the same: it is in the fingerprint
        self.checkpoint_seconds = CHECKPOINT_EVERY if o.checkpoint_seconds is None else o.checkpoint_seconds
        self.input = str(input_path)
        self.in_fmt = batch_io.file_format(self.input, o.input_format)
        self.out_fmt = batch_io.file_format(output_path, o.output_format)
        for given in (self.in_fmt, self.out_fmt):
            if given not in batch_io.FORMATS:
                raise InputError(f"unknown format `{quote(given)}`", hint=" or ".join(batch_io.FORMATS))
        if backends.named(o.backend, InputError).preflight:
            _ = engine.runner(o.backend)    # a backend that cannot run here stops the run, before any output
        if must_exist:      # Spark also reads hdfs://, s3a://, directories
            require_regular(self.input)
        # Every path the run writes, declared before anything is read: checked here, locked by run().
        self.outputs = outs = Outputs({"the input": self.input})
        self.output = outs.file("the output (-o)", output_path)
        stem = self.output.name.rsplit(".", 1)[0] if "." in self.output.name else self.output.name
        self.errors = outs.file("the errors file (--errors)",
                                o.errors if o.errors else self.output.with_name(stem + ".errors.jsonl"))
        self.partial = outs.work("the output's .partial", self.output, ".partial")
        self.errors_partial = outs.work("the errors file's .partial", self.errors, ".partial")
        self.parts = outs.work("the output's .parts", self.output, ".parts", folder=True)
        self.checkpoint = outs.work("the checkpoint", self.output, ".checkpoint.json")
        self._merge: batch_io.ParquetMerge | None = None     # a Parquet output, encoded as chunks commit
        if o.statement:
            outs.folder("the statement (--statement)", o.statement, STATEMENT_FILES)
        self.log = outs.log("the decision log (--decision-log)", o.decision_log) if o.decision_log else None
        self.log_partial = self.output.with_name(self.output.name + ".decisions-partial")
        if self.log is not None:
            outs.work("the decision log's .partial", self.output, ".decisions-partial")
        outs.check()

    # -- fingerprint and checkpoint ------------------------------------------------------
    def fingerprint(self, as_of: str | None, started: str) -> str:
        st = os.stat(self.input)
        o = self.options
        parts = [os.path.abspath(self.input), st.st_size, st.st_mtime_ns, self.in_fmt, self.out_fmt,
                 o.lang, as_of, started, o.chunk_size, [(p.name, p.version, p.digest) for p in self.engine.packs],
                 self.engine.limits.to_dict(), o.decision_log, self.totals]
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()

    def _load_checkpoint(self) -> dict | None:
        if not self.checkpoint.exists():
            return None
        try:
            state = json.loads(read_file(self.checkpoint, CHECKPOINT_BYTES).decode("utf-8"))
            if state.get("version") not in RESUMABLE_VERSIONS:
                raise ValueError("version")
            return state
        except (ValueError, OSError, AttributeError, InputError):
            raise InputError("the checkpoint of an earlier run cannot be read", file=str(self.checkpoint),
                             hint="pass --fresh to start over") from None

    def _save_checkpoint(self, state: dict) -> None:
        write_atomically(self.checkpoint, json.dumps(state, ensure_ascii=False).encode("utf-8"),
                         kept=None)     # `run` says what the checkpoint on disk keeps

    def kept(self) -> str:
        """What this run leaves for the next, as found on disk: never more than is there."""
        if not os.path.lexists(self.checkpoint):
            return "no checkpoint was written yet, so nothing is kept: run the same command again to start over"
        try:
            state = json.loads(read_file(self.checkpoint, CHECKPOINT_BYTES))
            ours = (state["version"] in RESUMABLE_VERSIONS
                    and state["fingerprint"] == self.fingerprint(state["as_of"], state["started"]))
        except (InputError, OSError, ValueError, TypeError, KeyError):
            ours = False
        if not ours:
            return f"the checkpoint {self.checkpoint} cannot be resumed: pass --fresh to start over"
        if state["phase"] == "finishing":
            return (f"all {state['rows']:,} rows were adjudicated and the checkpoint keeps them: run the same "
                    "command again to finish writing")
        return (f"the checkpoint keeps the first {state['rows']:,} rows: run the same command again to carry on "
                "from there")

    def _start(self) -> dict:
        """A fresh state, or the checkpoint's, with the working files cut back to it."""
        o = self.options
        state = None if o.fresh else self._load_checkpoint()
        if state is not None:
            if o.as_of != state["as_of"]:
                used = f"--as-of {state['as_of']}" if state["as_of"] else "no --as-of"
                raise InputError(f"the interrupted run used {used}", file=str(self.checkpoint),
                                 hint="give the same --as-of, or --fresh")
            if state["fingerprint"] != self.fingerprint(state["as_of"], state["started"]):
                raise InputError("a checkpoint of a different run is in the way (input, packs or options "
                                 "changed)", file=str(self.checkpoint), hint="pass --fresh to start over")
            if state["phase"] != "finishing":
                self._cut_back(state)
            return state
        with writing(self.checkpoint):       # a checkpoint on disk is always this run's (what `kept` reads)
            self.checkpoint.unlink(missing_ok=True)
        started = o.now or instant_now()
        for p in (self.partial, self.errors_partial) + ((self.log_partial,) if self.log else ()):
            with writing(p):
                p.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        with writing(self.parts):
            if self.parts.exists():
                shutil.rmtree(self.parts)
            self.parts.mkdir(parents=True)
        return {"version": CHECKPOINT_VERSION, "fingerprint": self.fingerprint(o.as_of, started),
                "as_of": o.as_of, "started": started,
                "phase": "running", "position": None, "chunks": 0, "rows": 0, "out_bytes": 0, "err_bytes": 0,
                "log_bytes": 0,
                "statement": Statement().to_dict()}

    def _cut_back(self, state: dict) -> None:
        """The working files back to the sizes the checkpoint counted (a killed run wrote past them)."""
        sizes = [(self.partial, state["out_bytes"]), (self.errors_partial, state["err_bytes"])]
        if self.log is not None:
            sizes.append((self.log_partial, state["log_bytes"]))
        for path, size in sizes:
            if not path.is_file() or path.stat().st_size < size:
                raise InputError(f"the checkpoint counts {size:,} bytes in this file, which is missing or "
                                 "shorter (removed or cut by hand?)", file=str(path),
                                 hint="pass --fresh to start over")
            with writing(path):
                os.truncate(path, size)
        with writing(self.parts):
            self.parts.mkdir(parents=True, exist_ok=True)
            for part in self.parts.glob("*"):        # JSON Lines parts not yet appended; Parquet's parts after
                if not part.name.endswith(batch_io.PART_SUFFIXES) or int(part.name.split(".")[0]) > state["chunks"]:
                    part.unlink()

    # -- run -------------------------------------------------------------------------------
    def run(self) -> BatchSummary:
        """Lock the outputs, then adjudicate (resuming from a checkpoint) and publish the files.

        A failure to write names the file and says what the checkpoint keeps; SIGINT or SIGTERM
        stops the workers, saves the checkpoint and raises Interrupted, saying the same.
        """
        started = time.perf_counter()
        if self.out_fmt == "parquet":
            _import_in_background("pyarrow.parquet")     # the merge's, while the workers work
        with self.outputs, Stopping() as stop:
            try:
                state = self._start()
                resumed_from = state["rows"]
                statement = Statement.from_dict(state["statement"])
                if state["phase"] == "running":
                    self._process(state, statement, stop)
                self._finish(state, statement)
            except OutputError as exc:
                exc.hint = "; ".join(h for h in (exc.hint, self.kept()) if h)
                raise
            except Interrupted as exc:
                exc.kept = exc.kept or self.kept()
                raise
            except OSError as exc:      # reading the input: every write names its output (an OutputError)
                if not os.path.exists(self.input):      # gone since the run was set up: a rerun cannot help
                    raise InputError("no such file", file=self.input) from None
                raise InputError(f"cannot read the file: {exc.strerror or exc}", file=exc.filename or self.input,
                                 hint=self.kept()) from None
            finally:
                if self._merge is not None:     # the run did not finish: its Parquet file is not put in place
                    self._merge.abort()
                    self._merge = None
        return BatchSummary(rows=state["rows"], verdicts=statement.verdicts, errors=statement.errors,
                            internal=statement.internal, statement=statement,
                            seconds=time.perf_counter() - started, resumed_from=resumed_from,
                            outputs=[str(self.output), str(self.errors)]
                            + ([self.options.statement] if self.options.statement else []))

    def _job(self, as_of: str | None, now: str) -> dict[str, Any]:
        return {"input": self.input, "input_format": self.in_fmt, "output_format": self.out_fmt,
                "as_of": as_of, "now": now, "lang": self.options.lang, "backend": self.options.backend,
                "parts": str(self.parts), "decisions": self.log is not None, "totals": self.totals}

    def _workers(self, chunks: Iterator[batch_io.Chunk], position: dict | None = None
                 ) -> tuple[int, Iterator[batch_io.Chunk]]:
        """How many processes to run, and the chunks (the first few read ahead to count them).

        Never more than asked (`--workers`), than the CPUs this process may use (more would only
        take turns, each holding its own engine) or than there are chunks (a worker without one
        only costs its start). Unasked, from the rows still to do (batch_io.estimate_rows): a
        worker's start (a new Python, its imports, the packs) costs about what adjudicating
        WORKER_START_ROWS rows does, so W workers are worth it only when the time they save,
        rows × (1 - 1/W), is at least twice that, and each has two chunks or more to share.
        """
        asked = self.options.workers
        wanted = min(asked or usable_cpus(), usable_cpus())
        if not asked:
            rows = batch_io.estimate_rows(self.input, self.in_fmt, position)
            chunks_left = -(-rows // self.options.chunk_size)
            while wanted > 1 and (rows * (1 - 1 / wanted) < 2 * WORKER_START_ROWS or chunks_left < 2 * wanted):
                wanted -= 1
        if wanted <= 1:
            return 1, chunks
        ahead = list(itertools.islice(chunks, wanted))
        return max(1, min(wanted, len(ahead))), itertools.chain(ahead, chunks)

    def _process(self, state: dict, statement: Statement, stop: Stopping) -> None:
        job = self._job(state["as_of"], state["started"])
        chunks = batch_io.read_chunks(self.input, self.in_fmt, self.options.chunk_size, state["position"],
                                      self.engine.limits)
        progress = Progress(enabled=self.options.progress if self.options.progress is not None
                            else sys.stderr.isatty(), start_rows=state["rows"])
        workers, chunks = self._workers(iter(chunks), state["position"])
        kept = self._verdict_parts() if self.out_fmt == "parquet" else []     # a resumed run's committed chunks
        last_save = time.monotonic()
        with Appender(self.partial) as out, Appender(self.errors_partial) as err, \
                (Appender(self.log_partial) if self.log else contextlib.nullcontext()) as log:

            def commit(result: dict) -> None:
                """A chunk's lines onto the working files, in input order; never cut in two by a signal."""
                nonlocal last_save
                with stop.safe():
                    if self.out_fmt == "jsonl":
                        out.append_file(Path(result["part"]))
                    else:       # encoded now, beside the workers still at work
                        if self._merge is None:
                            self._merge = self._open_merge(kept)
                        self._merge.add(Path(result["part"]))
                    err.write(result["errors"])
                    if result["decisions"] and log is not None:
                        log.append_file(Path(result["decisions"]))
                    statement.merge(Statement.from_dict(result["statement"]))
                    state.update(position=result["position"], chunks=result["index"],
                                 rows=state["rows"] + result["rows"], out_bytes=out.size, err_bytes=err.size,
                                 log_bytes=log.size if log else 0)
                    if time.monotonic() - last_save >= self.checkpoint_seconds:
                        self._commit(state, statement, out, err, log)
                        last_save = time.monotonic()
                progress.update(state["rows"], result["done"])

            try:
                if workers == 1:
                    global _engine
                    _engine = self.engine
                    for chunk in chunks:
                        commit(adjudicate_chunk(chunk, job))
                else:
                    self._parallel(chunks, job, workers, commit)
            except Interrupted:         # the workers are stopped; what was committed is kept
                with stop.safe():
                    self._commit(state, statement, out, err, log)
                raise
            finally:
                progress.close()
            with stop.safe():
                self._commit(state, statement, out, err, log)

    def _parallel(self, chunks, job, workers: int, commit) -> None:
        """Chunks to a pool, at most 2 per worker in flight (bounded memory), committed in order."""
        ctx = multiprocessing.get_context("spawn")
        paths = [str(p) for p in self.engine.pack_paths] or None
        catalogue = str(self.engine.catalogue_path) if self.engine.catalogue_path else None
        registration = backends.REGISTERED[self.options.backend]
        with ctx.Pool(workers, initializer=_init_worker,
                      initargs=(paths, catalogue, os.getpid(), self.engine.limits, registration)) as pool:
            pending: collections.deque = collections.deque()
            for chunk in chunks:
                pending.append(pool.apply_async(_work, ((chunk, job),)))
                if len(pending) >= 2 * workers:
                    commit(pending.popleft().get())
            while pending:
                commit(pending.popleft().get())

    def _open_merge(self, kept: list[Path]) -> batch_io.ParquetMerge:
        """The Parquet output's merge, fed the parts a resumed run kept. Opened at the first commit,
        so that pyarrow.parquet's import (in the background from the run's start) holds up no worker."""
        merge = batch_io.ParquetMerge(self.output)
        try:
            for part in kept:
                merge.add(part)
        except BaseException:
            merge.abort()
            raise
        return merge

    def _verdict_parts(self) -> list[Path]:
        """The verdict parts committed so far (a Parquet output's), in chunk order."""
        return sorted(p for p in self.parts.iterdir() if p.name.endswith(batch_io.PART_SUFFIXES))

    def _commit(self, state: dict, statement: Statement, out: Appender, err: Appender, log: Appender | None) -> None:
        """A checkpoint of what the working files hold, once those bytes are on disk."""
        for f in (out, err, log):
            if f is not None:
                f.sync()
        state["statement"] = statement.to_dict()
        self._save_checkpoint(state)

    def _finish(self, state: dict, statement: Statement) -> None:
        """Publish the files, then drop the checkpoint; a finish cut short is run again from its checkpoint."""
        state["phase"] = "finishing"
        if self.log is not None and "log_size" not in state:
            state["log_size"] = self.log.stat().st_size if self.log.exists() else 0
        self._save_checkpoint(state)
        self.publish(statement, state.get("log_size"))
        with writing(self.checkpoint):
            self.checkpoint.unlink(missing_ok=True)
            fsync_dir(self.checkpoint.parent)

    def publish(self, statement: Statement, log_size: int | None = None) -> None:
        """The finished files under their final names (the statement's, the verdicts, the errors, the log's
        new records), each as it was or complete, never torn: safe to repeat after a crash midway."""
        if self.options.statement:
            statement.write(self.options.statement, title=f"slarules settlement: {Path(self.input).name}")
        if self.out_fmt == "parquet":
            # The parts go only once the file is in place, and at once (renamed, then removed): a
            # finish cut short and run again merges every part, or finds none and has nothing to do.
            # Never a merge of what a removal cut short left, nor the empty .partial put in its place.
            gone = self.parts.with_name(self.parts.name + "-done")
            if self.parts.exists():
                merge, self._merge = self._merge or self._open_merge([]), None
                with merge:
                    for part in self._verdict_parts()[merge.fed:]:
                        merge.add(part)
                with writing(self.parts):
                    shutil.rmtree(gone, ignore_errors=True)
                    os.replace(self.parts, gone)
            with writing(self.parts):
                self.partial.unlink(missing_ok=True)
                shutil.rmtree(gone, ignore_errors=True)
        else:
            if self.partial.exists():
                with writing(self.output):
                    commit_file(self.partial, self.output, sync_first=True)
            shutil.rmtree(self.parts, ignore_errors=True)
        if self.errors_partial.exists():
            with writing(self.errors):
                commit_file(self.errors_partial, self.errors, sync_first=True)
        if self.log is not None:
            self._append_log(self.log, log_size)

    def _append_log(self, log: Path, log_size: int | None) -> None:
        """The run's decisions onto the log, once: a finish cut short and run again neither loses nor
        repeats them (a decision the log holds is not written again, output/decision_log.py)."""
        from ..output.decision_log import append_new
        if not self.log_partial.exists():        # appended by the finish that was cut short
            return
        if log_size is not None:
            whole = _last_whole_line(log, log_size)
            if whole is not None:
                with writing(log):
                    os.truncate(log, whole)
        append_new(log, self.log_partial)
        with writing(self.log_partial):
            self.log_partial.unlink()


def _last_whole_line(path: Path, floor: int) -> int | None:
    """Where to cut `path` back to when it ends in part of a line written past `floor` (an append
    killed midway, by this run's finish: no other writer appends to a log that ends so), else None."""
    size = path.stat().st_size if path.exists() else 0
    if size <= floor:
        return None
    with open(path, "rb") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return None
        end = size
        while end > floor:
            start = max(floor, end - (1 << 16))
            f.seek(start)
            at = f.read(end - start).rfind(b"\n")
            if at >= 0:
                return start + at + 1
            end = start
    return floor


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, as a container or `taskset` limits it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:          # not Linux
        return os.cpu_count() or 1


def run_batch(engine, input_path: str, output_path: str, options: BatchOptions | None = None) -> BatchSummary:
    return Batch(engine, input_path, output_path, options).run()
