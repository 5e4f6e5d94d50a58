"""`slarules batch --spark` on a file the executors can read: Spark runs the local batch's chunks.

Going through Spark's text reader and Arrow batches cost about three times the
local batch per row (each line copied into the JVM and out again; each
verdict block shipped back, cached and pickled to the driver). When the
executors share the driver's files (local mode), each task is handed chunks as
the local batch plans them (JSON Lines byte ranges, Parquet row-group batches),
adjudicates them with the local batch's own `adjudicate_chunk`, and writes its
part files into the batch's parts folder; only each chunk's error records and
statement come back. The driver appends the parts in input order, as the local
batch's parent does, so the outputs are the same bytes.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..batch import io as batch_io, runner
from ..output.writer import is_uri
from ..runtime import backend as backends


@dataclass(frozen=True)
class ParquetSlice:
    """Some `chunk_size` batches of one Parquet row group, read by the task that adjudicates them.

    A row group is read from its start (Parquet cannot seek inside one), so a group is cut into
    at most as many slices as there are cores: each core decodes a group at most once."""
    path: str
    group: int
    first_row: int        # the file's row number of the group's first row (1-based)
    skip: int             # batches of the group before this slice
    take: int | None      # batches in this slice; None: all the rest of the group

    def chunks(self, chunk_size: int, limits) -> Iterator[batch_io.Chunk]:
        parquet = batch_io.open_parquet(self.path, limits)
        row = self.first_row
        for k, batch in enumerate(parquet.iter_batches(batch_size=chunk_size, row_groups=[self.group])):
            if self.take is not None and k >= self.skip + self.take:
                return
            if k >= self.skip:      # a chunk's index is its first row: unique, and in input order
                yield batch_io.Chunk(row, batch_io.TableRows(batch, row), {}, 0.0)
            row += batch.num_rows


def shares_files(master: str, input_path: str) -> bool:
    """Whether a job's executors read the input and write the parts where the driver does: local
    mode (`master`), on one regular file (a directory or a URI goes through Spark's own readers)."""
    return master.startswith("local") and not is_uri(input_path) and os.path.isfile(input_path)


def local_cores(master: str) -> int:
    """The cores a local master runs tasks on: local, local[N], local[N,F], local[*] (this machine's)."""
    inside = master.partition("[")[2].partition("]")[0].split(",")[0].strip()
    if inside.isdigit():
        return max(1, int(inside))
    return runner.usable_cpus() if inside == "*" else 1


def plan(path: str, fmt: str, chunk_size: int, cores: int, limits) -> list[Any]:
    """The job's units, one Spark partition each: the local batch's JSON Lines chunks (byte ranges),
    or slices of Parquet row groups (ParquetSlice)."""
    path = os.path.abspath(path)
    if fmt != "parquet":
        return list(batch_io.read_jsonl(path, chunk_size))
    metadata = batch_io.open_parquet(path, limits).metadata
    units: list[Any] = []
    first = 1
    for g in range(metadata.num_row_groups):
        rows = metadata.row_group(g).num_rows
        batches = -(-rows // chunk_size)
        if not batches:     # an empty row group
            continue
        slices = min(batches, max(1, cores))
        each = -(-batches // slices)
        for s in range(0, batches, each):
            units.append(ParquetSlice(path, g, first, s, each if s + each < batches else None))
        first += rows
    return units


def run(spark, units: list[Any], packs, job: dict[str, Any], chunk_size: int) -> list[dict[str, Any]]:
    """Adjudicate every unit on the executors; each chunk's result (runner.adjudicate_chunk), in input order."""
    if not units:
        return []
    settings = {"packs": packs, "registration": backends.REGISTERED[job["backend"]], "job": job,
                "chunk_size": chunk_size}

    def partition(given: Iterator[Any]) -> Iterator[dict[str, Any]]:
        return _adjudicate(given, settings)
    results = spark.sparkContext.parallelize(units, len(units)).mapPartitions(partition).collect()
    return sorted(results, key=lambda result: result["index"])


def _adjudicate(units: Iterator[Any], settings: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """On an executor: each unit's chunks through the local batch's own chunk code (part files written here)."""
    from . import _executor_engine
    backends.register(settings["registration"])
    runner._engine = engine = _executor_engine(settings["packs"].value)   # what adjudicate_chunk runs
    for unit in units:
        chunks = [unit] if isinstance(unit, batch_io.Chunk) else unit.chunks(settings["chunk_size"], engine.limits)
        for chunk in chunks:
            yield runner._work((chunk, settings["job"]))
