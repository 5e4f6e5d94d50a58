"""`slarules batch --spark` on files: Spark runs the local batch's chunks.

Going through Spark's text reader and Arrow batches cost about three times the
local batch per row (each line copied into the JVM and out again; each
verdict block shipped back, cached and pickled to the driver). Instead the driver
plans the local batch's chunks (JSON Lines byte ranges, Parquet row-group
batches) of each input file, read through pyarrow.fs (a local path, file://,
hdfs://, s3:// or s3a://), and each task adjudicates its chunks with the local
batch's own chunk code, reading its range or slice itself. Where the executors
share the driver's files (local mode) a task writes part files into the batch's
parts folder and only each chunk's error records and statement come back; elsewhere
(a cluster) a task hands its chunks' outputs back as bytes, in input order, and the
driver writes them. Either way the outputs are the local batch's bytes.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from ..batch import io as batch_io, runner
from ..output.writer import is_uri
from ..runtime import backend as backends
from .executor import executor_engine

# Set (to anything but "" or "0"), a local master's tasks hand their outputs back as a cluster's do: what
# the tests use to run the route a cluster takes, on local[2].
RETURN_BLOCKS = "SLARULES_SPARK_RETURN_BLOCKS"
COMPRESSED = (".gz", ".bz2", ".zst", ".lz4", ".snappy", ".deflate", ".xz")    # Spark's text reader decodes these


@dataclass(frozen=True)
class ParquetSlice:
    """Some `chunk_size` batches of one Parquet row group, read by the task that adjudicates them.

    A row group is read from its start (Parquet cannot seek inside one), so a group is cut into
    at most as many slices as there are cores: each core decodes a group at most once."""
    path: str             # a local path or a URI (batch_io.open_input)
    group: int
    first_row: int        # the file's row number of the group's first row (1-based)
    skip: int             # batches of the group before this slice
    take: int | None      # batches in this slice; None: all the rest of the group
    before: int = 0       # rows of the input's earlier files: a chunk's index is unique across files

    def chunks(self, chunk_size: int, limits) -> Iterator[batch_io.Chunk]:
        parquet = batch_io.open_parquet(self.path, limits)
        row = self.first_row
        for k, batch in enumerate(parquet.iter_batches(batch_size=chunk_size, row_groups=[self.group])):
            if self.take is not None and k >= self.skip + self.take:
                return
            if k >= self.skip:      # a chunk's index is its first row: unique, and in input order
                yield batch_io.Chunk(self.before + row, batch_io.TableRows(batch, row), {}, 0.0)
            row += batch.num_rows


def writes_parts(master: str, input_path: str) -> bool:
    """Whether a job's tasks write part files where the driver reads them: local mode on a local input,
    unless RETURN_BLOCKS asks for what a cluster does."""
    local_input = not is_uri(input_path) or input_path.startswith("file:")
    return master.startswith("local") and local_input and os.environ.get(RETURN_BLOCKS, "") in ("", "0")


@dataclass(frozen=True)
class InputFile:
    location: str           # what batch_io opens: a local path or a URI
    name: str | None        # the name Spark's reader gives it (_metadata.file_path), when there are several


def input_files(input_path: str, fmt: str) -> list[InputFile] | None:
    """The files Spark's reader would read for `input_path`, in the order its outputs put them, or None
    when only Spark's reader can take them (a scheme pyarrow.fs cannot open, nested folders such as
    Hive partitions, compressed JSON Lines). Raises OSError for a local input that cannot be read."""
    import pyarrow.fs as pafs
    uri = is_uri(input_path)
    try:
        filesystem, inside = pafs.FileSystem.from_uri(batch_io.arrow_uri(input_path) if uri
                                                      else os.path.abspath(input_path))
        info = filesystem.get_file_info(inside)
        if info.type == pafs.FileType.Directory:
            listed = filesystem.get_file_info(pafs.FileSelector(inside))
        else:
            listed = [info]
    except (OSError, ValueError, TypeError, ImportError):
        if uri:
            return None     # Spark's reader says what is wrong, or reads what pyarrow cannot
        raise
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(2, "No such file or directory", input_path)
    visible = [f for f in listed if not f.base_name.startswith(("_", ".")) and not f.base_name.endswith(".crc")]
    if any(f.type != pafs.FileType.File for f in visible) or (
            fmt != "parquet" and any(f.base_name.lower().endswith(COMPRESSED) for f in visible)):
        return None
    if uri:
        scheme, prefix = input_path.split("://", 1)[0], batch_io.arrow_uri(input_path).split("://", 1)[0]
        located = [(f"{scheme}://{f.path}" if prefix != "file" else f"file://{f.path}",
                    f"{scheme}://{_java_quoted(f.path)}" if scheme != "file" else f"file:{_java_quoted(f.path)}")
                   for f in visible]
    else:
        located = [(f.path, "file:" + _java_quoted(f.path)) for f in visible]
    located.sort(key=lambda pair: pair[1])      # the old route orders its blocks by Spark's file name
    several = info.type == pafs.FileType.Directory and len(located) > 1
    return [InputFile(location, name if several else None) for location, name in located]


_JAVA_PATH_KEEPS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'(),;:$&+=@/")


def _java_quoted(path: str) -> str:
    """`path` as java.net.URI quotes a path (what Hadoop's Path, hence Spark's file_path, shows): ASCII
    outside its legal characters as %XX of its UTF-8; other characters kept unless spaces or controls."""
    out = []
    for ch in path:
        if ch in _JAVA_PATH_KEEPS or (ord(ch) > 127 and not ch.isspace() and ch.isprintable()):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def local_cores(master: str) -> int:
    """The cores a local master runs tasks on: local, local[N], local[N,F], local[*] (this machine's)."""
    inside = master.partition("[")[2].partition("]")[0].split(",")[0].strip()
    if inside.isdigit():
        return max(1, int(inside))
    return runner.usable_cpus() if inside == "*" else 1


def plan(files: list[InputFile], fmt: str, chunk_size: int, cores: int, limits) -> list[tuple[str | None, Any]]:
    """The job's units, one Spark partition each, as (file name for error records, unit): the local
    batch's JSON Lines chunks (byte ranges), or slices of Parquet row groups (ParquetSlice), file by file.
    A chunk's index counts across files, so parts and results sort into input order."""
    units: list[tuple[str | None, Any]] = []
    chunks_before = rows_before = 0
    for file in files:
        if fmt != "parquet":
            for chunk in batch_io.read_jsonl(file.location, chunk_size):
                units.append((file.name, replace(chunk, index=chunks_before + chunk.index)))
            chunks_before = units[-1][1].index if units else 0
            continue
        metadata = batch_io.open_parquet(file.location, limits).metadata
        first = 1
        for g in range(metadata.num_row_groups):
            rows = metadata.row_group(g).num_rows
            batches = -(-rows // chunk_size)
            if not batches:     # an empty row group
                continue
            slices = min(batches, max(1, cores))
            each = -(-batches // slices)
            for s in range(0, batches, each):
                units.append((file.name, ParquetSlice(file.location, g, first, s,
                                                      each if s + each < batches else None, rows_before)))
            first += rows
        rows_before += metadata.num_rows
    return units


def run(spark, units: list[tuple[str | None, Any]], packs, job: dict[str, Any], chunk_size: int,
        parts: bool) -> Iterator[dict[str, Any]]:
    """Adjudicate every unit on the executors; each chunk's result, in input order: runner.adjudicate_chunk's
    (its part files written by the task) with `parts`, else runner.chunk_blocks' (its outputs as bytes)."""
    if not units:
        return iter(())
    settings = {"packs": packs, "registration": backends.REGISTERED[job["backend"]], "job": job,
                "chunk_size": chunk_size, "parts": parts}

    def partition(given: Iterator[Any]) -> Iterator[dict[str, Any]]:
        return _adjudicate(given, settings)
    results = spark.sparkContext.parallelize(units, len(units)).mapPartitions(partition)
    if parts:       # small results: error records and statements
        return iter(sorted(results.collect(), key=lambda result: result["index"]))
    return _in_order(results)


def _in_order(results) -> Iterator[dict[str, Any]]:
    """Results that hold verdicts, partition by partition (units are in input order) rather than all at
    once in the driver's memory: one job computes and keeps every partition, then each is fetched in turn."""
    from pyspark import StorageLevel
    results.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        results.count()
        yield from results.toLocalIterator(prefetchPartitions=True)
    finally:
        results.unpersist()


def _adjudicate(units: Iterator[tuple[str | None, Any]], settings: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """On an executor: each unit's chunks through the local batch's own chunk code."""
    backends.register(settings["registration"])
    runner._engine = engine = executor_engine(settings["packs"].value)   # what the chunk code runs
    for name, unit in units:
        job = {**settings["job"], "file": name}
        chunks = [unit] if isinstance(unit, batch_io.Chunk) else unit.chunks(settings["chunk_size"], engine.limits)
        for chunk in chunks:
            yield runner._work((chunk, job)) if settings["parts"] else runner.chunk_blocks(chunk, job)
