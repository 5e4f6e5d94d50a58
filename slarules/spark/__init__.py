"""slarules on Apache Spark: the same packs, the same verdicts, partition by partition.

The driver compiles the packs once and broadcasts them as bytes
(`Engine.to_bytes`); each executor's Python worker rebuilds the Engine once and
keeps it. Partitions arrive as Arrow batches (`mapInArrow`) and go through
`batch.adjudicate_rows`, the code a local `slarules batch` runs, so a verdict or
an error record is the same bytes on either. One pass yields three kinds of
rows: verdicts, errors, and one settlement statement per partition (statements
merge exactly and in any order, so the totals do not depend on partitioning).
`slarules batch --spark` on files pyarrow.fs can read (local, HDFS, S3) runs the local
batch's chunks as Spark tasks instead (chunks.py): parts written where they run in
local mode, outputs handed back to the driver on a cluster.

This is the only module that imports pyspark (`pip install 'slarules[spark]'`).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..batch import io as batch_io
from ..batch.runner import BatchSummary, adjudicate_rows, decision_lines, instant_now
from ..echo import quote
from ..errors import ClusterError, InputError, Interrupted, OutputError, SlaRulesError
from ..output.files import Appender, write_file, writing
from ..output.stopping import Stopping
from ..output.writer import is_uri
from ..runtime import backend as backends
from ..settlement.statement import Statement
from . import chunks
from .executor import executor_engine

# columns added to the input: row number, source file, raw JSON line, start of the line's file split
NUMBER, FILE, RAW, BLOCK = "_slarules_number", "_slarules_file", "_slarules_raw", "_slarules_block"
LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties")
# PySpark warns about pandas 3 on import; the Arrow path used here never touches pandas.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


def _pyspark():
    try:
        from pyspark.sql import functions
        return functions
    except ImportError:
        raise ClusterError("the Spark engine needs PySpark", hint="pip install 'slarules[spark]'") from None


def output_schema():
    """What one mapInArrow pass yields: a verdict, an error record or a partition's statement per row.

    `block` is where the row's file split starts, for JSON Lines read without counting their lines
    first (adjudicate_files' `blocks`): `number` then counts lines within the split (see _line_number)."""
    import pyarrow as pa
    s = pa.string()
    return pa.schema([("kind", s), ("file", s), ("number", pa.int64()), ("json", s),
                      ("verdict", pa.struct(list(batch_io.verdict_schema()))), ("block", pa.int64())])


# ---- on the executors -------------------------------------------------------------------

def _partition(batches: Iterator, settings: dict[str, Any]) -> Iterator:
    """Adjudicate one partition, an Arrow batch at a time; its statement comes last."""
    import pyarrow as pa
    schema = output_schema()
    engine = executor_engine(settings["packs"].value)
    backends.register(settings["registration"])     # the backend the driver chose, registered here too
    raw, columns = settings["raw"], settings["columns"]
    statement = Statement()
    in_split: dict[tuple[str, int], int] = {}      # lines seen so far of each split (raw input)
    for batch in batches:
        files = batch.column(FILE).to_pylist()
        if raw:     # number every line, then drop blank ones, as the local reader does
            payloads: Any   # the lines here, the Arrow batch for cases as columns
            rows: Any       # (number, line) pairs here, a batch_io.TableRows for cases as columns
            numbers, payloads, kept, splits = [], [], [], []
            starts = settings["line_starts"]
            for key, line in zip(zip(files, batch.column(BLOCK).to_pylist()), batch.column(RAW).to_pylist()):
                in_split[key] = seen = in_split.get(key, 0) + 1
                if line.strip():
                    numbers.append(starts[key] + seen if starts is not None else _line_number(key[1], seen))
                    payloads.append(batch_io.RowTooLong() if len(line) > engine.limits.case_bytes else line)
                    kept.append(key[0])
                    splits.append(key[1])
            files = kept
        else:       # cases as columns: the batch itself goes on (batch_io.TableRows), not dicts
            numbers = batch.column(NUMBER).to_pylist()
            payloads = batch.drop_columns([NUMBER, FILE])
            splits = [None] * len(numbers)
        out: dict[str, list] = {"kind": [], "file": [], "number": [], "json": [], "verdict": [], "block": []}
        verdicts: list[bytes] = []     # the verdict lines whose columns are asked for; "verdict" holds each one's place

        def emit(kind: str, file, number: int, text: str, verdict=None, block=None) -> None:
            for name, value in zip(out, (kind, file, number, text, verdict, block)):  # noqa: B023  # in this pass
                out[name].append(value)  # noqa: B023
        for (file, _), start, end in _by_file(list(zip(files, splits))):     # a run never spans two splits
            if raw:
                rows = list(zip(numbers[start:end], payloads[start:end]))
            else:
                rows = batch_io.TableRows(payloads.slice(start, end - start), numbers=numbers[start:end])
            done = adjudicate_rows(engine, rows, source=file or settings["source"], raw=raw,
                                   as_of=settings["as_of"], now=settings["now"], lang=settings["lang"],
                                   backend=settings["backend"],
                                   file=file if settings["name_files"] else None)
            statement.merge(done.statement)
            if settings.get("blocks"):      # the run's lines as one row of each kind, keyed by its first row
                decisions = decision_lines(rows, done.verdicts, settings["lang"], settings["now"]) \
                    if settings.get("decisions") else []
                for kind, text in (("verdicts", done.jsonl()), ("errors", "".join(e + "\n" for _, e in done.errors)),
                                   ("decisions", b"".join(line for _, line in decisions))):
                    if text:
                        emit(kind, file, numbers[start], text.decode("utf-8") if isinstance(text, bytes) else text,
                             block=splits[start])
                continue
            if settings.get("decisions"):
                for number, line in decision_lines(rows, done.verdicts, settings["lang"], settings["now"]):
                    emit("decision", file, number, line.decode("utf-8").rstrip("\n"))
            for number, text in done.verdicts:
                emit("verdict", file, number, text, len(verdicts) if columns else None)
                if columns:
                    verdicts.append(text.encode("utf-8") + b"\n")
            for number, record in done.errors:
                emit("error", file, number, record)
        yield _output_batch(out, verdicts, schema)
    ends: list[tuple[str, Any, Any, Any]] = [("lines", file, count, block) for (file, block), count in in_split.items()] \
        if raw and settings["line_starts"] is None else []        # the lines of each split, to number them after
    ends.append(("statement", None, None, json.dumps(statement.to_dict(), sort_keys=True)))
    yield pa.RecordBatch.from_pydict({"kind": [e[0] for e in ends], "file": [e[1] for e in ends],
                                      "number": [e[2] if e[0] == "lines" else None for e in ends],
                                      "json": [e[3] if e[0] == "statement" else None for e in ends],
                                      "verdict": [None] * len(ends),
                                      "block": [e[3] if e[0] == "lines" else None for e in ends]}, schema=schema)


def _line_number(block: int, seen: int) -> int:
    """A line's number before its split's start is known: its place in the split, plus one past the
    file's first split, so that only a file's true first line is line 1 (where a byte-order mark may be).
    The driver adds the lines before the split (_renumbered) where a number is shown: error records."""
    return seen + (block != 0)


def _output_batch(out: dict[str, list], verdicts: list[bytes], schema):
    """A pass's rows as an Arrow batch; the verdicts' columns from their JSON lines (batch_io.verdict_table)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    places = pa.array(out["verdict"], pa.int64())
    if verdicts:
        column = pc.take(batch_io.verdict_table(b"".join(verdicts)).to_struct_array(), places)
    else:
        column = pa.nulls(len(places), schema.field("verdict").type)
    columns = [pa.array(out[name], schema.field(name).type) for name in ("kind", "file", "number", "json")]
    return pa.RecordBatch.from_arrays([*columns, column.combine_chunks() if isinstance(column, pa.ChunkedArray)
                                       else column, pa.array(out["block"], pa.int64())], schema=schema)


def _by_file(files: list):
    """Runs of consecutive rows from the same file (or file split): (file, start, end)."""
    start = 0
    for i in range(1, len(files) + 1):
        if i == len(files) or files[i] != files[start]:
            yield files[start], start, i
            start = i


# ---- on the driver ------------------------------------------------------------------------

@dataclass
class SparkResult:
    """Verdicts, errors and the settlement of one adjudication, as lazy DataFrames.

    `combined` is persisted (memory, then disk) so reading verdicts, errors and
    the statement runs the rules once; call `unpersist()` when done.
    """
    combined: Any

    @property
    def verdicts(self):
        """One row per verdict: `file` and `row` (where it came from), the verdict's columns, `json`.

        `json` is the verdict of docs/contract.md, the very line `slarules batch` writes.
        """
        return (self.combined.where("kind = 'verdict'")
                .select("file", self.combined["number"].alias("row"), "verdict.*", "json"))

    @property
    def errors(self):
        """One row per rejected input row: `file`, `row`, `waybill`, `error`, `message`, `field`, `hint`."""
        F = _pyspark()
        fields = ["waybill", "error", "message", "field", "hint"]
        record = F.from_json("json", "waybill string, error string, message string, field string, hint string")
        return (self.combined.where("kind = 'error'").withColumn("_record", record)
                .select("file", self.combined["number"].alias("row"), *[f"_record.{f}" for f in fields]))

    def statement(self) -> Statement:
        """Settlement totals, merged from each partition's (exact, in any order); one job over all partitions."""
        total = Statement()
        for row in self.combined.where("kind = 'statement'").select("json").collect():
            total.merge(Statement.from_dict(json.loads(row["json"])))
        return total

    def lines_before(self) -> dict[tuple[str, int], int]:
        """For JSON Lines read without counting first: by (file, split start), what to add to a line's
        number within its split (_line_number) to give its line in the file."""
        before: dict[tuple[str, int], int] = {}
        seen: dict[str, int] = {}
        counts = self.combined.where("kind = 'lines'").select("file", "block", "number").collect()
        for file, block, count in sorted((r["file"], r["block"], r["number"]) for r in counts):
            before[(file, block)] = seen.get(file, 0) - (block != 0)
            seen[file] = seen.get(file, 0) + count
        return before

    def unpersist(self) -> None:
        self.combined.unpersist()


def bulk_backend(name: str) -> str:
    """`name` if it is a registered backend that judges a chunk in one pass, what a partition runs; else the
    InputError naming the ones that do (a per-case backend would hold an executor's core per case)."""
    if not backends.named(name, InputError).bulk:
        raise InputError(f"--spark runs a bulk backend on each partition, and `{quote(name)}` judges one case "
                         "at a time", field="--backend", hint=f"bulk backends: {', '.join(backends.names(bulk=True))}; "
                         "or run without --spark")
    return name


def _run(frame, engine, *, raw: bool, line_starts: dict | None, source: str, as_of: str | None, now: str | None,
         lang: str, columns: bool, name_files: bool, persist: bool, decisions: bool = False, blocks: bool = False,
         backend: str = backends.DEFAULT) -> SparkResult:
    from pyspark import StorageLevel
    bulk_backend(backend)
    spark = frame.sparkSession
    # "Now" (for cases without as_of) is fixed here, once: a retried or recomputed partition
    # must give the same verdicts.
    now = now or instant_now()
    settings = {"now": now, "packs": spark.sparkContext.broadcast(engine.to_bytes()), "raw": raw,
                "line_starts": line_starts, "source": source,
                "as_of": as_of, "lang": lang, "columns": columns, "name_files": name_files, "decisions": decisions,
                "blocks": blocks, "backend": backend, "registration": backends.REGISTERED[backend]}
    from pyspark.sql.pandas.types import from_arrow_schema

    def partition(batches):
        return _partition(batches, settings)
    combined = frame.mapInArrow(partition, from_arrow_schema(output_schema()))
    if persist:
        combined = combined.persist(StorageLevel.MEMORY_AND_DISK)
    return SparkResult(combined)


def adjudicate(df, engine=None, *, as_of: str | None = None, lang: str = "zh", row: str | None = None,
               columns: bool = True, persist: bool = True, now: str | None = None,
               backend: str = backends.DEFAULT) -> SparkResult:
    """Adjudicate a Spark DataFrame of cases (docs/contract.md's fields, nested as in JSON).

    `row` names an integer column that identifies each input row in the
    results (default: Spark's monotonically_increasing_id, unique but not
    consecutive). `as_of` overrides each case's own; `now` (default: this
    call's instant, fixed once) is for cases without one. A null field means the field is absent, as in Parquet; a
    column that is not a case field rejects the rows where it has a value,
    as an unknown key does in JSON Lines.
    `columns=False` leaves the verdict's columns null and keeps only `json`. `backend`: a bulk one
    (runtime/backend.py).
    """
    F = _pyspark()
    from ..engine import LANGS, Engine
    if lang not in LANGS:
        raise InputError(f"unknown language `{quote(lang)}`", field="lang", hint="zh or en")
    engine = engine or Engine.default()
    if row is not None and row not in df.columns:
        raise InputError(f"no column `{quote(row)}` to identify rows", field=row)
    number = F.col(row).cast("long") if row else F.monotonically_increasing_id()
    frame = df.select(number.alias(NUMBER), F.lit(None).cast("string").alias(FILE),
                      *[c for c in df.columns if c != row])
    return _run(frame, engine, raw=False, line_starts=None, source="<DataFrame>", as_of=as_of, now=now, lang=lang,
                columns=columns,
                name_files=False, persist=persist, backend=backend)


def adjudicate_files(spark, path: str, engine=None, *, fmt: str | None = None, as_of: str | None = None,
                     lang: str = "zh", columns: bool = True, persist: bool = True,
                     now: str | None = None, decisions: bool = False, blocks: bool = False,
                     backend: str = backends.DEFAULT) -> SparkResult:
    """Adjudicate a JSON Lines or Parquet file, or a directory of them, as `slarules batch` does.

    Rows are numbered by line (JSON Lines, blank lines counted) or row
    (Parquet) within their file, and bad rows get the local batch's error
    records; `file` names the file of each result when there are several.
    This is the entry point for a cluster job (see examples/spark/).
    `decisions=True` adds a decision log record (output/decision_records.py) per verdict, of kind "decision".
    `blocks=True` is how `slarules batch --spark` takes them: instead of a row per result, one row per
    run of consecutive input rows and kind ("verdicts", "errors", "decisions"), its `json` their JSON Lines
    and its `number` the run's first input row; `verdicts` and `errors` are then empty. Sorting and
    moving a few large rows to the driver costs a fraction of sorting a row per verdict.
    """
    from ..engine import LANGS, Engine
    if lang not in LANGS:
        raise InputError(f"unknown language `{quote(lang)}`", field="lang", hint="zh or en")
    fmt = batch_io.file_format(path, fmt)
    engine = engine or Engine.default()
    frame, line_starts = read_cases(spark, path, fmt, count_lines=not blocks)
    files = len(frame.inputFiles())
    return _run(frame, engine, raw=fmt != "parquet", line_starts=line_starts, source=path, as_of=as_of, now=now, lang=lang,
                columns=columns,
                name_files=files > 1, persist=persist, decisions=decisions, blocks=blocks, backend=backend)


# ---- reading files ---------------------------------------------------------------------------

def read_cases(spark, path: str, fmt: str, count_lines: bool = True):
    """A file (or directory) of cases as a frame of (number, file, payload), numbered like the local batch.

    JSON Lines stay raw bytes, so bad UTF-8 and bad JSON are judged by the same
    code as locally. Line numbers count blank lines: a first pass counts the
    lines of each file split (the second value returned: lines before each
    split), and the partition numbers each row by its split's start plus its
    place in the split, which Spark reads in order. Parquet rows are numbered
    by `_metadata.row_index`. Without `count_lines`, there is no first pass (None for the
    second value): the partitions count each split's lines as they go (_line_number).
    """
    F = _pyspark()
    if fmt == "parquet":
        df = spark.read.parquet(path)
        return df.select((F.col("_metadata.row_index") + 1).alias(NUMBER),
                         F.col("_metadata.file_path").alias(FILE), *df.columns), None
    lines = (spark.read.option("lineSep", "\n").text(path)
             .select(F.col("value").cast("binary").alias(RAW), F.col("_metadata.file_path").alias(FILE),
                     F.col("_metadata.file_block_start").alias(BLOCK)))
    if not count_lines:
        return lines, None
    counts = sorted((r[FILE], r[BLOCK], r["count"]) for r in lines.groupBy(FILE, BLOCK).count().collect())
    before: dict[tuple[str, int], int] = {}
    seen: dict[str, int] = {}
    for file, block, count in counts:
        before[(file, block)] = seen.get(file, 0)
        seen[file] = seen.get(file, 0) + count
    return lines, before


def local_memory() -> str:
    """The JVM heap for local mode, where the driver runs the tasks too: a quarter of RAM, 1-8 GiB.

    Spark's default, 1 GiB, ran out of heap sorting a million verdicts back
    into input order. SLARULES_SPARK_MEMORY (e.g. "12g") decides instead.
    """
    given = os.environ.get("SLARULES_SPARK_MEMORY")
    if given:
        return given
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return "2g"
    return f"{max(1, min(8, ram // 4 // 2**30))}g"


def session(master: str = "local[*]", *, progress: bool = False, chunk_size: int = 2000,
            log: str | None = None, scheduler_only: bool = False):
    """A Spark session for the CLI: quiet logs, this Python on local executors.

    With `log`, the JVM's own stderr (its start-up notices, its Python
    workers' output) goes to that file instead of the terminal. `scheduler_only`: the JVM will
    only schedule tasks (spark/chunks.py, local mode), so its JIT stops at C1: C2 spent about 4 s of
    CPU compiling Spark's start-up code, half of the JVM's, on cores the tasks need.
    """
    _pyspark()
    from pyspark.sql import SparkSession
    local = master.startswith("local")
    if local:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    _find_java()
    quiet = f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}"
    if local and scheduler_only:
        quiet += " -XX:TieredStopAtLevel=1"
    builder = (SparkSession.builder.master(master).appName("slarules batch")
               .config("spark.driver.extraJavaOptions", quiet)
               .config("spark.executor.extraJavaOptions", quiet)
               .config("spark.ui.showConsoleProgress", "true" if progress else "false")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(chunk_size))
               .config("spark.sql.session.timeZone", "UTC"))
    if local:
        builder = (builder.config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "8")
                   .config("spark.driver.memory", local_memory()))
    saved = None
    try:
        if log:         # the JVM inherits fd 2 when it starts; ours is restored right after
            sys.stderr.flush()
            saved = os.dup(2)
            target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(target, 2)
            os.close(target)
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 # Java missing or too old, master unreachable: py4j raises plain errors
        raise ClusterError(f"Spark did not start: {_cause_in_log(log) or _first_line(exc)}", field="--master",
                           hint="Spark needs Java 17 or 21 (JAVA_HOME) and a reachable master"
                           + (f"; Spark's log: {log}" if log else "")) from None
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _find_java() -> None:
    """Say plainly that Java is missing, rather than PySpark's "gateway exited"."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    raise ClusterError("Spark needs Java 17 or 21, and none was found",
                       hint="e.g. apt-get install openjdk-17-jre-headless, or set JAVA_HOME") from None


def _log_text(log: str | Path | None) -> str:
    try:
        return Path(log).read_text(encoding="utf-8", errors="replace") if log else ""
    except OSError:
        return ""


def _cause_in_log(log: str | None) -> str | None:
    """The JVM's own reason for dying ("Exception in thread main ...: why"), if it logged one."""
    for line in _log_text(log).splitlines():
        if line.startswith(("Exception in thread", "Error:")):
            return line.split(": ", 1)[-1][:300]
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


# ---- the CLI's job: files in, files out ------------------------------------------------------

def run_spark_batch(engine, input_path: str, output_path: str, options, master: str = "local[*]",
                    spark=None) -> BatchSummary:
    """`slarules batch --spark`: the same outputs as the local batch, byte for byte.

    The outputs are declared, checked and locked as the local batch's are (output/writer.py), before
    Spark starts. Verdicts and errors are put back into input order by the driver (part files the
    tasks wrote, chunks.py, or blocks it collects, _write_in_order) on the batch's working files, which take their final names (`Batch.publish`)
    only when everything is written. Spark retries failed tasks itself; a run that dies is simply
    run again (there is no checkpoint). A session given in `spark` is used and left running;
    otherwise one is started on `master` and stopped at the end.
    """
    from ..batch.runner import Batch
    bulk_backend(options.backend)
    started = time.perf_counter()
    plan = Batch(engine, input_path, output_path, options,
                 must_exist=not (is_uri(input_path) or os.path.isdir(input_path)))
    o = plan.options
    progress = o.progress if o.progress is not None else sys.stderr.isatty()
    log = plan.outputs.work("the Spark log", plan.output, ".spark.log")
    plan.outputs.check()
    nothing_kept = "a Spark run keeps nothing to resume from: run the same command again"
    with plan.outputs, Stopping():
        try:
            with writing(log):
                plan.output.parent.mkdir(parents=True, exist_ok=True)
                log.unlink(missing_ok=True)
            statement = _run_job(plan, input_path, master, spark, progress, log)
            plan.publish(statement)
        except SlaRulesError as exc:
            _discard(plan)
            if isinstance(exc, OutputError):
                exc.hint = "; ".join(h for h in (exc.hint, nothing_kept) if h)
            raise
        except Interrupted as exc:
            _discard(plan)
            exc.kept = nothing_kept
            raise
        except KeyboardInterrupt:       # PySpark's own SIGINT handler (it cancels the jobs) raises this
            _discard(plan)
            raise Interrupted(signal.SIGINT, nothing_kept) from None
        with writing(log):
            log.unlink(missing_ok=True)     # kept only when the run failed
    return BatchSummary(rows=statement.verdicts + statement.errors, verdicts=statement.verdicts,
                        internal=statement.internal, statement=statement,
                        errors=statement.errors, seconds=time.perf_counter() - started,
                        outputs=[str(plan.output), str(plan.errors)] + ([o.statement] if o.statement else []))


def _run_job(plan, input_path: str, master: str, spark, progress: bool, log: Path) -> Statement:
    """Run the job and write its rows to the batch's working files; the run's statement."""
    o = plan.options
    own = spark is None
    master = master if own else _master(spark)
    units = None
    try:    # planned before the JVM starts: a file that cannot be read fails fast, with nothing to log
        files = chunks.input_files(input_path, plan.in_fmt)
        if files is not None:
            units = chunks.plan(files, plan.in_fmt, o.chunk_size,
                                chunks.local_cores(master) if own else spark.sparkContext.defaultParallelism,
                                plan.engine.limits)
    except OSError as exc:
        if is_uri(input_path):
            units = None        # Spark's own reader tries, and says what is wrong in its terms
        else:
            raise InputError(f"cannot read the file: {exc.strerror or exc}", file=exc.filename or input_path) from None
    direct = units is not None and chunks.writes_parts(master, input_path)
    if own:
        spark = session(master, progress=progress, chunk_size=o.chunk_size, log=None if progress else str(log),
                        scheduler_only=units is not None)
    result = None
    try:
        if units is not None:
            return _write_chunks(spark, plan, units, parts=direct)
        result = adjudicate_files(spark, input_path, plan.engine, fmt=plan.in_fmt, as_of=o.as_of, lang=o.lang,
                                  columns=False, now=o.now, decisions=plan.log is not None, blocks=True,
                                  backend=o.backend)
        return _write_in_order(result, plan)
    except (SlaRulesError, Interrupted):
        raise
    except Exception as exc:  # noqa: BLE001  # said as a ClusterError below
        if "PATH_NOT_FOUND" in str(exc):
            raise InputError("no such file", file=input_path) from None
        heap = "java.lang.OutOfMemoryError" in _log_text(str(log))
        raise ClusterError("the Spark job ran out of Java heap" if heap else f"the Spark job failed: {_first_line(exc)}",
                           file=input_path,
                           hint=("set SLARULES_SPARK_MEMORY (e.g. 12g) for local mode, or spark.driver.memory; "
                                 if heap else "") + f"nothing was written; Spark's log: {log}") from None
    finally:     # after a dead JVM these raise too; the job's own error is the one to show
        with contextlib.suppress(Exception):
            if result is not None:
                result.unpersist()
        with contextlib.suppress(Exception):
            if own:
                spark.stop()


def _master(spark) -> str:
    """The session's master URL ("" for what is not a session)."""
    master = getattr(getattr(spark, "sparkContext", None), "master", "")
    return master if isinstance(master, str) else ""


def _write_chunks(spark, plan, units: list[Any], parts: bool) -> Statement:
    """The job as the local batch's chunks (spark/chunks.py) onto the batch's working files in input order,
    as the local batch's parent appends its workers' parts; the run's statement. With `parts` the tasks
    wrote part files (they share this machine's files); else each chunk's outputs came back as bytes."""
    o = plan.options
    with writing(plan.parts):
        if plan.parts.exists():
            shutil.rmtree(plan.parts)
        plan.parts.mkdir(parents=True)
    job = {**plan._job(o.as_of, o.now or instant_now()), "parts": os.path.abspath(plan.parts)}
    results = chunks.run(spark, units, spark.sparkContext.broadcast(plan.engine.to_bytes()), job, o.chunk_size,
                         parts)
    statement = Statement()
    targets = (plan.partial, plan.errors_partial) + ((plan.log_partial,) if plan.log is not None else ())
    for target in targets:
        with writing(target):
            target.unlink(missing_ok=True)
    with Appender(plan.partial) as out, Appender(plan.errors_partial) as err, \
            (Appender(plan.log_partial) if plan.log is not None else contextlib.nullcontext()) as log:
        for result in results:
            if not parts and plan.out_fmt == "parquet":     # merged into the output by Batch.publish
                batch_io.write_verdict_part(plan.parts / f"{result['index']:09d}{batch_io.PART_SUFFIXES[0]}",
                                            result["verdicts"])
            elif not parts:
                out.write(result["verdicts"])
            elif plan.out_fmt != "parquet":
                out.append_file(Path(result["part"]))
            err.write(result["errors"])
            if result["decisions"] and log is not None:
                if parts:
                    log.append_file(Path(result["decisions"]))
                else:
                    log.write(result["decisions"])
            statement.merge(Statement.from_dict(result["statement"]))
    return statement


def _write_in_order(result: SparkResult, plan) -> Statement:
    """The job's blocks (adjudicate_files' `blocks`) onto the batch's working files in input order; its statement.

    The statement's job computes (and persists) every partition at once; then one pass reads them back,
    partition by partition: each block goes to a spool file in the batch's parts folder (a verdict
    block straight to its Parquet part), remembered by (file, first row), and each kind is put
    together in that order. Sorting a few keys here replaces a Spark sort (a sampling job and a
    shuffle of every verdict) per kind.
    """
    statement = result.statement()
    before = result.lines_before()
    with writing(plan.parts):
        if plan.parts.exists():
            shutil.rmtree(plan.parts)
        plan.parts.mkdir(parents=True)
    spooled: dict[str, list[tuple[str, int, int, Path]]] = {"verdicts": [], "errors": [], "decisions": []}
    for row in (result.combined.where("kind IN ('verdicts', 'errors', 'decisions')")
                .select("kind", "file", "block", "number", "json").toLocalIterator(prefetchPartitions=True)):
        blocks = spooled[row["kind"]]
        spool = plan.parts / f"{len(blocks) + 1:09d}.{row['kind']}"
        text = row["json"].encode("utf-8")
        if row["kind"] == "verdicts" and plan.out_fmt == "parquet":
            batch_io.write_parquet_part(spool, text)
        else:
            shift = before.get((row["file"], row["block"]), 0)
            write_file(spool, _renumbered(text, shift) if row["kind"] == "errors" and shift else text)
        blocks.append((row["file"] or "", row["block"] or 0, row["number"], spool))
    targets = {"verdicts": plan.partial, "errors": plan.errors_partial, "decisions": plan.log_partial}
    for kind, blocks in spooled.items():
        blocks.sort(key=lambda block: block[:3])
        if kind == "verdicts" and plan.out_fmt == "parquet":      # the parts, renamed into input order
            for index, (*_, spool) in enumerate(blocks, start=1):
                with writing(spool):
                    spool.rename(plan.parts / f"{index:09d}.parquet")
            continue
        if kind == "decisions" and plan.log is None:
            continue
        with writing(targets[kind]):
            targets[kind].unlink(missing_ok=True)
        with Appender(targets[kind]) as out:
            for *_, spool in blocks:
                out.append_file(spool)
    return statement


def _renumbered(records: bytes, shift: int) -> bytes:
    """Error records (JSON Lines) with `shift` added to each line number: json.dumps writes each as
    error_record did, keys in their order."""
    out = []
    for text in records.splitlines():
        record = json.loads(text)
        record["line"] += shift
        out.append(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
    return b"".join(out)


def _discard(plan) -> None:
    """The working files of a run that did not finish (a Spark run has no checkpoint to resume)."""
    for p in (plan.partial, plan.errors_partial, plan.log_partial):
        with contextlib.suppress(OSError):
            p.unlink(missing_ok=True)
    shutil.rmtree(plan.parts, ignore_errors=True)
