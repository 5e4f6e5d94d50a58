"""Reading cases and writing verdicts for a batch, a chunk at a time.

Readers yield chunks of (row number, payload) and, with each chunk, the
position just after it, so a batch can checkpoint and later resume exactly
there. Nothing here reads a whole file: JSON Lines are read line by line from a
byte offset, Parquet batch by batch.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Self

from ..case.limits import DEFAULT as DEFAULT_LIMITS, Limits, raise_hint
from ..case.reader import bounded_lines, open_file
from ..case.sources import json_data
from ..errors import InputError, SlaRulesError
from ..output.files import atomic_file, writing
from ..text_boundary import invalid_rows, not_utf8
from ..verdict import layout as L

BOM_BYTES = b"\xef\xbb\xbf"

MAX_LINE = DEFAULT_LIMITS.case_bytes   # one case is a few KB; a longer line is an error row, not an OOM
FORMATS = ("jsonl", "parquet")


def file_format(path: str | Path, given: str | None = None) -> str:
    if given:
        return given
    if Path(path).is_dir():      # a directory of part files (Spark): the format its files share
        found = {file_format(f) for f in Path(path).iterdir()
                 if f.is_file() and not f.name.startswith(("_", ".")) and not f.name.endswith(".crc")}
        if len(found) == 1:
            return found.pop()
        raise InputError("cannot tell the format of the files in this directory", file=str(path),
                         hint="give --input-format")
    name = str(path).lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise InputError("cannot tell the format from the file name", file=str(path),
                     hint="name it *.jsonl or *.parquet, or give --input-format/--output-format")


@dataclass
class Chunk:
    index: int
    rows: Any                         # LineRange (JSON Lines) or TableRows (Parquet)
    position: dict[str, int]          # where the next chunk starts
    done_fraction: float              # how far into the input this chunk ends, for progress


class RowTooLong(Exception):
    """A line longer than the case size limit: read no further, it becomes that row's error record."""


class TableRows:
    """A Parquet chunk: its Arrow batch, with rows made into dicts only for the per-case path.

    Iterating gives (row number, dict) pairs like a JSON Lines chunk; the columnar
    path reads `batch` as it is. Rows with text that is not UTF-8 are taken out
    here, where Arrow text enters (text_boundary.invalid_rows), and kept as
    `rejected`: (row number, error), one error record each.
    """

    def __init__(self, batch, first: int = 1, numbers: list[int] | None = None):
        numbers = numbers if numbers is not None else list(range(first, first + batch.num_rows))
        self.rejected: list[tuple[int, SlaRulesError]] = []
        bad = invalid_rows(batch)
        if bad:
            import pyarrow as pa
            self.rejected = [(numbers[i], not_utf8(name)) for i, name in sorted(bad.items())]
            batch = batch.filter(arrow_array([i not in bad for i in range(batch.num_rows)], pa.bool_()))
            numbers = [n for i, n in enumerate(numbers) if i not in bad]
        self.batch = batch
        self.numbers = numbers

    def __len__(self) -> int:
        return self.batch.num_rows + len(self.rejected)

    def __iter__(self):
        return iter(self.pick(range(self.batch.num_rows)))

    def pick(self, indices) -> list[tuple[int, Any]]:
        """Rows at these positions, as (number, dict) with nulls dropped (null = absent)."""
        indices = list(indices)
        if not indices:
            return []
        import pyarrow as pa
        rows = self.batch.take(arrow_array(indices, pa.int64())).to_pylist()
        return [(self.numbers[i], drop_nulls(r)) for i, r in zip(indices, rows)]


class LineRange:
    """A chunk of a JSON Lines file as a byte range: the worker that adjudicates it reads it.

    The batch's parent process only finds where chunks start (a newline count);
    reading, splitting and sending every line through a pipe cost it a quarter
    of a core, which two workers on two cores were waiting for.
    """

    def __init__(self, path: str, start: int, end: int, first_line: int):
        self.path, self.start, self.end, self.first_line = path, start, end, first_line

    def read(self, max_line: int = MAX_LINE) -> list[tuple[int, Any]]:
        """(line number, raw line) of each non-blank line; a line over `max_line` bytes becomes RowTooLong."""
        with open_input(self.path) as f:
            f.seek(self.start)
            return [(number, RowTooLong() if raw is None else raw)
                    for number, raw in bounded_lines(f, max_line, self.first_line, self.end - self.start)
                    if raw is None or raw.strip()]


BLOCK = 8 << 20      # bytes the planner reads at a time


def open_input(location: str) -> BinaryIO:
    """A file to read cases from: a local path through open_file (a regular file, else a located
    InputError), a URI (file://, hdfs://, s3://, s3a://) through pyarrow.fs, buffered so that lines are
    read with the same bounds as from a local file (pyarrow's own files have no readline)."""
    if "://" not in location:
        return open_file(location)
    return io.BufferedReader(_RawArrowFile(_arrow_input(location)), buffer_size=1 << 20)


def _arrow_input(uri: str) -> Any:
    """A URI's file opened through pyarrow.fs (HDFS, S3, file://): what JSON Lines and Parquet read from one."""
    import pyarrow.fs as pafs
    filesystem, path = pafs.FileSystem.from_uri(arrow_uri(uri))
    return filesystem.open_input_file(path)


def arrow_uri(location: str) -> str:
    """The URI pyarrow.fs knows for a location Spark names: s3a:// (Hadoop's S3 connector) is s3://."""
    return "s3://" + location[len("s3a://"):] if location.startswith("s3a://") else location


class _RawArrowFile(io.RawIOBase):
    """A pyarrow input file as Python's raw file, for io.BufferedReader."""

    def __init__(self, native: Any):
        self.native = native

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.native.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.native.seek(offset, whence)

    def tell(self) -> int:
        return self.native.tell()

    def close(self) -> None:
        self.native.close()
        super().close()


def read_jsonl(path: str, chunk_size: int, position: dict[str, int] | None = None) -> Iterator[Chunk]:
    """Chunks of `chunk_size` lines (blank ones included) as LineRanges, from a checkpoint's position."""
    offset, line_no, index = (position or {}).get("offset", 0), (position or {}).get("line", 0), \
        (position or {}).get("chunk", 0)
    start, start_line, lines = offset, line_no + 1, 0
    with open_input(path) as f:
        size = max(f.seek(0, os.SEEK_END), 1)
        f.seek(offset)
        while True:
            block = f.read(BLOCK)
            if not block:
                break
            at, newlines = 0, block.count(b"\n")
            while lines + newlines >= chunk_size:    # this block ends the chunk
                for _ in range(chunk_size - lines):
                    at = block.index(b"\n", at) + 1
                newlines -= chunk_size - lines
                end, line_no = offset + at, line_no + chunk_size
                index += 1
                yield Chunk(index, LineRange(path, start, end, start_line),
                            {"offset": end, "line": line_no, "chunk": index}, end / size)
                start, start_line, lines = end, line_no + 1, 0
            lines += newlines
            offset += len(block)
            tail = block[-1:] != b"\n"
    if offset > start:      # the last chunk; its last line may lack a newline
        line_no += lines + (1 if tail else 0)
        index += 1
        yield Chunk(index, LineRange(path, start, offset, start_line),
                    {"offset": offset, "line": line_no, "chunk": index}, 1.0)


def decode_line(raw: Any, file: str, line: int, limits: Limits = DEFAULT_LIMITS) -> Any:
    """One JSONL row as Python data, with the same strictness as a single case file.

    A byte-order mark is allowed where a case file may have one, at the start
    of the file (line 1), and nowhere else.
    """
    if isinstance(raw, RowTooLong):
        raise limits.too_long(file, f"is longer than the {limits.case_bytes:,} bytes a case may have", line)
    if line == 1 and raw.startswith(BOM_BYTES):
        raw = raw[len(BOM_BYTES):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (bad byte at column {exc.start + 1})", file=file, line=line) from None
    return json_data(text, file, line)


def open_parquet(path: str, limits: Limits = DEFAULT_LIMITS):
    """The Parquet file, its row groups bounded by `case_bytes` from the metadata before any is read:
    a row group whose data, uncompressed, is more than `case_bytes` a row (a compression bomb, a giant
    value) is refused."""
    import pyarrow.parquet as pq
    try:
        pf = pq.ParquetFile(_arrow_input(path) if "://" in path else path)
    except Exception as exc:  # noqa: BLE001 # pyarrow raises several unrelated types for a bad file
        raise InputError(f"not a readable Parquet file: {exc}", file=path) from None
    for g in range(pf.metadata.num_row_groups):
        group = pf.metadata.row_group(g)
        if group.total_byte_size > max(group.num_rows, 1) * limits.case_bytes:
            raise InputError(f"row group {g + 1} holds {group.total_byte_size:,} bytes uncompressed for "
                             f"{group.num_rows:,} rows, more than the {limits.case_bytes:,} bytes a case may have "
                             "for each", file=path, hint=raise_hint("case_bytes"))
    return pf


def read_parquet(path: str, chunk_size: int, position: dict[str, int] | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> Iterator[Chunk]:
    """Rows of a Parquet file as dicts; a null field means the field is absent.

    Parquet is read a row group at a time, so that is where `case_bytes` bounds it: a row group
    whose data, uncompressed, is more than `case_bytes` a row (a compression bomb, a giant value)
    is refused from the file's metadata before any of it is read.
    """
    pf = open_parquet(path, limits)
    total = max(pf.metadata.num_rows, 1)
    start = (position or {}).get("chunk", 0)
    row = 0
    for index, batch in enumerate(pf.iter_batches(batch_size=chunk_size), start=1):
        if index <= start:
            row += batch.num_rows
            continue
        rows = TableRows(batch, row + 1)
        row += batch.num_rows
        yield Chunk(index, rows, {"chunk": index, "row": row}, row / total)


def drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def estimate_rows(path: str, fmt: str, position: dict[str, int] | None = None) -> int:
    """About how many rows are left to read from `position`, without reading them: Parquet's metadata,
    or for JSON Lines the bytes left over the mean line length of the next MiB. For choosing workers."""
    if fmt == "parquet":
        import pyarrow.parquet as pq
        try:
            total = pq.ParquetFile(path).metadata.num_rows
        except Exception:  # noqa: BLE001 # the reader says what is wrong with the file, once, properly
            return 0
        return max(0, total - (position or {}).get("row", 0))
    offset = (position or {}).get("offset", 0)
    with open_file(path) as f:
        left = os.fstat(f.fileno()).st_size - offset
        f.seek(offset)
        sample = f.read(1 << 20)
    lines = sample.count(b"\n") + (1 if sample and not sample.endswith(b"\n") else 0)
    return round(left * lines / len(sample)) if sample else 0


def read_chunks(path: str, fmt: str, chunk_size: int, position: dict | None = None,
                limits: Limits = DEFAULT_LIMITS) -> Iterator[Chunk]:
    """The input's chunks; `limits` bounds a Parquet row group here (a JSON Lines line: when a worker reads it)."""
    if fmt == "parquet":
        return read_parquet(path, chunk_size, position, limits)
    return read_jsonl(path, chunk_size, position)


# ---- Parquet cases ---------------------------------------------------------------------------

def case_schema():
    """The Arrow schema of a case row: docs/contract.md's fields, nested as they are in JSON.

    Decimals (money, sizes, weights) and timestamps are strings, so they stay
    exact and keep their UTC offsets; any Parquet file with these field names
    is read, this is the layout `slarules` writes and recommends. Built from the
    case field table (case/fields.py).
    """
    import pyarrow as pa

    from ..case import fields
    s = pa.string()
    types = {"code": s, "enum": s, "zone": s, "decimal": s, "timestamp": s, "bool": pa.bool_(), "int": pa.int64()}
    columns = fields.column_types(types, lambda named: pa.struct(list(named.items())), pa.list_)
    return pa.schema(list(columns.items()))


# ---- Parquet verdicts ----------------------------------------------------------------------

def verdict_schema():
    """The verdict as an Arrow schema, from its layout (verdict/layout.py): parts as lists of structs,
    a finding's facts as their JSON text, a money map as (station, amount) pairs."""
    import pyarrow as pa
    return pa.schema([(f.name, _arrow(f)) for f in L.VERDICT])


def _arrow(f: L.Field, objects: bool = True):
    """A verdict field's Arrow type; without `objects`, a part's objects are left out (as Arrow's JSON
    reader is asked for them: their Arrow shape, JSON text, is not their JSON's)."""
    import pyarrow as pa
    s = pa.string()
    if f.kind == L.PARTS:
        return pa.list_(pa.struct([(g.name, _arrow(g, objects)) for g in L.layout(f.part)  # type: ignore[arg-type]
                                   if objects or g.kind != L.OBJECT]))
    if f.kind == L.STRINGS:
        return pa.list_(s)
    if f.kind == L.COUNT_OR_NULL:
        return pa.int32()
    if f.kind == L.MONEY_MAP:
        return pa.list_(pa.struct([("station", s), ("amount", s)]))
    return s                    # strings, instants, money; an OBJECT as its JSON text


def _has_objects(f: L.Field) -> bool:
    return f.kind == L.PARTS and any(g.kind == L.OBJECT for g in L.layout(f.part))  # type: ignore[arg-type]


def verdict_table(lines: bytes):
    """Verdict JSON Lines as an Arrow table of `verdict_schema()`, without a Python dict per verdict.

    Arrow's JSON reader takes every field whose JSON already has its Arrow shape; only the
    two kinds that change shape are read apart (msgspec, into small structs that skip the
    rest of the line): a money map becomes (station, amount) pairs, a part's object (a
    finding's facts) its JSON text with sorted keys. Reading each verdict back into dicts
    (json.loads, then Table.from_pylist) cost more than adjudicating it.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj
    schema = verdict_schema()
    if not lines:
        return empty_table(schema)
    regular = pa.schema([(f.name, _arrow(f, objects=False)) for f in L.VERDICT if f.kind != L.MONEY_MAP])
    table = pj.read_json(pa.py_buffer(lines),
                         read_options=pj.ReadOptions(use_threads=False, block_size=len(lines) + 1),
                         parse_options=pj.ParseOptions(explicit_schema=regular, unexpected_field_behavior="ignore"))
    shaped = _shape_changes().decode_lines(lines)      # None: every map and object of the line is empty
    columns = []
    for f in L.VERDICT:
        if f.kind == L.MONEY_MAP:
            columns.append(_money_pairs(shaped, f.name, schema.field(f.name).type))
            continue
        column = table.column(f.name).combine_chunks()
        if _has_objects(f):     # the part's objects, as text, put back among its other fields
            parts = L.layout(f.part)    # type: ignore[arg-type]
            values = column.flatten()
            children = [arrow_array(_objects_text(shaped, column.value_lengths().to_pylist(), f.name, g.name),
                                    pa.string())
                        if g.kind == L.OBJECT else values.field(g.name) for g in parts]
            column = pa.ListArray.from_arrays(pc.subtract(column.offsets, column.offsets[0]),
                                              pa.StructArray.from_arrays(children, [g.name for g in parts]))
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def columns_table(columns: Any):
    """The columnar evaluator's verdict columns (a Polars frame: each verdict field in its Arrow shape, see
    verdict/columns.py `_ARROW`) as an Arrow table of `verdict_schema()`: the table verdict_table would read
    from the same verdicts' JSON text, built without writing and parsing that text."""
    import pyarrow as pa

    from ..runtime._polars import pl
    schema = verdict_schema()
    frame = columns.to_arrow(compat_level=pl.CompatLevel.oldest())
    arrays = []
    for field in schema:
        chunked = frame.column(field.name)
        column = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()   # combine copies even one
        if pa.types.is_null(column.type):      # a list no row of the chunk has an item of: empty everywhere
            column = pa.ListArray.from_arrays(arrow_array([0] * (len(column) + 1), pa.int32()),
                                              pa.nulls(0, field.type.value_type), type=field.type)
        arrays.append(column.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _objects_text(shaped: list, lengths: list[int], name: str, member: str) -> list[str]:
    """The `member` object of each item of each line's `name` parts, as text; "{}" for a line read as empty
    (most lines: only the others are looked at)."""
    texts = ["{}"] * sum(lengths)
    at = 0
    for v, count in zip(shaped, lengths):
        if v is not None:
            for n, item in enumerate(getattr(v, name)):
                texts[at + n] = _object_text(bytes(getattr(item, member)))
        at += count
    return texts


@functools.lru_cache(maxsize=4096)
def _object_text(raw: bytes) -> str:
    """A part's object as verdict_schema keeps it: its JSON text, keys sorted, as json.dumps writes it.
    Remembered: the same facts recur across a chunk's findings (a third of them, generated cases)."""
    return json.dumps(json.loads(raw), ensure_ascii=False, sort_keys=True)


def _money_pairs(shaped: list, name: str, arrow_type):
    """Each line's `name` money map as an Arrow list of (station, amount) structs, payers in the map's
    order; a line read as empty (None) has none."""
    import pyarrow as pa
    offsets: list[int] = [0] * (len(shaped) + 1)
    stations: list[str] = []
    amounts: list[str] = []
    for n, v in enumerate(shaped, start=1):
        if v is not None:
            m = getattr(v, name)
            stations.extend(m)
            amounts.extend(m.values())
        offsets[n] = len(stations)
    pairs = pa.StructArray.from_arrays([arrow_array(stations, pa.string()), arrow_array(amounts, pa.string())],
                                       fields=list(arrow_type.value_type))
    return pa.ListArray.from_arrays(arrow_array(offsets, pa.int32()), pairs, type=arrow_type)


class _ShapeChanges:
    """A msgspec decoder of just the verdict fields whose Arrow shape differs from their JSON's."""

    def __init__(self) -> None:
        import msgspec
        fields: list[tuple[str, Any]] = []
        markers: list[bytes] = []
        for f in L.VERDICT:
            if f.kind == L.MONEY_MAP:
                fields.append((f.name, dict[str, str]))
                markers.append((f.key + '{"').encode())
            elif _has_objects(f):
                part = msgspec.defstruct(f.name, [(g.name, msgspec.Raw) for g in L.layout(f.part)  # type: ignore[arg-type]
                                                  if g.kind == L.OBJECT])
                fields.append((f.name, list[part]))  # type: ignore[valid-type]
                markers += [(g.key + '{"').encode() for g in L.layout(f.part) if g.kind == L.OBJECT]  # type: ignore[arg-type]
        self.decode = msgspec.json.Decoder(msgspec.defstruct("ShapeChanges", fields)).decode
        self.markers = tuple(markers)

    def decode_lines(self, lines: bytes) -> list[Any]:
        """Each line's maps and objects; None for a line where each is empty, as json.dumps writes
        an empty one (`"facts": {}`): only a non-empty one starts `"facts": {"` (the layout's key)."""
        markers = self.markers
        return [self.decode(line) if any(m in line for m in markers) else None
                for line in lines.splitlines() if line]


_SHAPES: list[_ShapeChanges] = []


def _shape_changes() -> _ShapeChanges:
    if not _SHAPES:
        _SHAPES.append(_ShapeChanges())
    return _SHAPES[0]


PART_SUFFIXES = (".arrow", ".parquet")     # a batch's verdict parts: Arrow IPC (its own), Parquet (Spark's, older runs')
_ARROW_MAGIC = b"ARROW1"


def write_verdict_part(path: Path, lines: bytes) -> None:
    """Verdict JSON Lines as one part file in Arrow's IPC format, uncompressed (complete or absent)."""
    write_verdict_table(path, verdict_table(lines))


def write_verdict_table(path: Path, table: Any) -> None:
    """A table of `verdict_schema()` as one part file in Arrow's IPC format, uncompressed (complete or absent).

    A part is read once, by this run's merge, so it is not encoded as Parquet: an IPC file is
    Arrow's memory written out (a fifth of Parquet's time to write) and read back by mapping it,
    where a Parquet part cost the merge a decode of every page. The output is encoded once, there.
    """
    import pyarrow as pa
    from pyarrow import ipc
    with atomic_file(path) as out, ipc.new_file(pa.PythonFile(out, mode="w"), table.schema) as writer:
        writer.write_table(table)


def write_parquet_part(path: Path, lines: bytes) -> None:
    """Verdict JSON Lines as one Parquet part file (complete or absent)."""
    import pyarrow.parquet as pq
    table = verdict_table(lines)
    with atomic_file(path) as out:      # complete or absent: a resume keeps the parts before its checkpoint
        pq.write_table(table, out)


def _read_part(part: Path, schema):
    """A verdict part as a table of `schema`: Arrow IPC (mapped, not copied) or Parquet, told by its bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import ipc
    with open(part, "rb") as f:
        magic = f.read(len(_ARROW_MAGIC))
    if magic != _ARROW_MAGIC:
        return pq.read_table(part, schema=schema)
    table = ipc.open_file(pa.memory_map(str(part))).read_all()
    if not table.schema.equals(schema):
        raise InputError("a verdict part of this run does not hold verdicts as this version writes them",
                         file=str(part), hint="pass --fresh to start over")
    return table


def arrow_array(values: Any, arrow_type: Any) -> Any:
    """`pa.array(values, arrow_type)` for Python text, whole numbers or booleans, made by Polars.

    pyarrow's own conversion first asks pandas whether `values` is one of its types, which imports
    pandas (0.2 s of CPU in every batch worker and Spark task process, for nothing of pandas)."""
    import polars as pl
    return pl.Series(values=values, dtype=_polars_types()[arrow_type]).to_arrow().cast(arrow_type)


@functools.cache
def _polars_types() -> dict[Any, Any]:
    """pyarrow types and the Polars types that export as them (built at first use: both loaded then)."""
    import polars as pl
    import pyarrow as pa
    return {pa.string(): pl.String, pa.int64(): pl.Int64, pa.int32(): pl.Int32, pa.bool_(): pl.Boolean}


def empty_table(schema: Any) -> Any:
    """A table of `schema` with no rows. Not `schema.empty_table()`: pyarrow imports pandas for it,
    0.3 s of a Parquet batch's end (its merge), for a table that holds nothing of pandas."""
    import pyarrow as pa
    return pa.Table.from_batches([], schema=schema)


ROWS_PER_GROUP = 20_000     # a verdict file's row group: a chunk's worth (the default --chunk-size)


class _Aborted(Exception):
    """How ParquetMerge.abort ends its temporary file's block (removed, `target` untouched)."""


class ParquetMerge:
    """One Parquet file from verdict parts fed in order, each row group written once it is full.

    Row groups hold exactly `rows_per_group` rows (the last one the rest), each written from one
    contiguous chunk: the file's bytes do not depend on how the rows were cut into parts (a local
    batch's chunks, a Spark partition's Arrow batches), nor on the parts' format (PART_SUFFIXES).
    Fed while a run goes on (`slarules batch` adds each chunk's part as it commits it), the file is
    encoded beside the workers rather than after the last of them; it becomes `target` only at
    `close`, and on any failure (`abort`, or an exception in its `with` block) it never does."""

    def __init__(self, target: Path, rows_per_group: int | None = None) -> None:
        import pyarrow.parquet as pq
        self.target = target
        self.rows_per_group = rows_per_group or ROWS_PER_GROUP
        self.schema = verdict_schema()
        self._pending = empty_table(self.schema)
        self._groups = 0
        self.fed = 0                                # parts added so far
        self._file = atomic_file(target)            # as it was, or complete
        out = self._file.__enter__()
        try:
            with writing(target):
                self._writer = pq.ParquetWriter(out, self.schema)
        except BaseException:
            self.abort(writer=False)
            raise

    def add(self, part: Path) -> None:
        """A part's rows, after those of the parts added before; every full row group written now."""
        import pyarrow as pa
        pending = pa.concat_tables([self._pending, _read_part(part, self.schema)])
        with writing(self.target):              # a full disk names the output, not the input
            while pending.num_rows >= self.rows_per_group:
                self._writer.write_table(pending.slice(0, self.rows_per_group).combine_chunks())
                pending, self._groups = pending.slice(self.rows_per_group), self._groups + 1
        self._pending = pending
        self.fed += 1

    def close(self) -> None:
        """Write the rest, then put the file in place."""
        try:
            with writing(self.target):
                if self._pending.num_rows or not self._groups:   # no verdicts at all: one empty group
                    self._writer.write_table(self._pending.combine_chunks())
                self._writer.close()
        except BaseException:
            self.abort(writer=False)
            raise
        self._file.__exit__(None, None, None)

    def abort(self, writer: bool = True) -> None:
        """Leave `target` as it was, the temporary removed (atomic_file removes it on any failure, its
        own included). Raises nothing: the failure that called for it is the one to report (closing
        a file on a full disk fails again)."""
        with contextlib.suppress(Exception):
            if writer:
                self._writer.close()
        with contextlib.suppress(Exception):
            self._file.__exit__(_Aborted, _Aborted(), None)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def merge_parquet_parts(parts: list[Path], target: Path, rows_per_group: int | None = None) -> None:
    """Concatenate part files into one Parquet file, a bounded number of rows at a time (ParquetMerge)."""
    with ParquetMerge(target, rows_per_group) as merge:
        for part in parts:
            merge.add(part)
