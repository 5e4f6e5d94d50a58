"""Cases into columns for the columnar path: read, checked in bulk, base facts derived.

JSON Lines are read by msgspec (JSON shape only) and Polars; Parquet batches as
they are. `checks_and_facts` then checks every value the case contract constrains, in
bulk, and encodes the base facts as the backends see them (integers in fixed
units, null for absent); `builtins` derives the built-in facts (packs/builtins.py)
from them and the scans. A row that fails any check is not "plain" and is left to the
per-case path, which gives the exact verdict or error.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..runtime._polars import pl  # first: it sets how Polars loads

# isort: split

from ..case import contract as C, fields
from ..case.instants import FAST_EARLIEST_US as EARLIEST, FAST_FORM, FAST_LATEST_US as LATEST
from ..packs.builtins import BUILTINS, Builtin, Frame, stages
from ..packs.types import TYPES, US
from ..packs.vocabulary import BASE_FACTS, BLOCKS
from ..runtime.values import key

UNITS = {name: t.places for name, t in TYPES.items() if t.places is not None}   # decimal places of each encoded unit
_DECIMAL = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"


def _with(frame: pl.DataFrame, *exprs) -> pl.DataFrame:
    """with_columns without the query optimiser: on verdict-sized expression trees its common
    subexpression search costs seconds a chunk and saves nothing."""
    return frame.lazy().with_columns(*exprs).collect(optimizations=pl.QueryOptFlags.none())


# ---- reading: raw case columns -> plain mask and encoded facts --------------------------

def raw_schema() -> dict[str, Any]:
    """The columns of a chunk of cases as read: docs/contract.md's nesting, decimals and timestamps as text."""
    return fields.column_types(_POLARS, pl.Struct, pl.List)


_POLARS = {"code": pl.String, "enum": pl.String, "zone": pl.String, "decimal": pl.String, "timestamp": pl.String,
           "bool": pl.Boolean, "int": pl.Int64}

# The fields the bulk checks read, by kind, from the field table (paths as `block.name`).
# A bool needs no check (the column's type is one); the case's `timezone` is read by
# columnar.py (a zone without a fixed offset goes per case) and `as_of` below.
ENUMS = {p: f.values for p, f in fields.leaves() if f.kind == "enum"}
CODES = {p: f.pattern for p, f in fields.leaves() if f.kind == "code"}
REQUIRED = {p for p, f in fields.leaves() if f.required}
DECIMALS = {p: f.limits for p, f in fields.leaves() if f.kind == "decimal"}
TIMESTAMPS = {p for p, f in fields.leaves() if f.kind == "timestamp" and p != "as_of"}
INTS = {p: f.limits["le"] for p, f in fields.leaves() if f.kind == "int"}
LISTS = {p: (f.values, f.max_items) for p, f in fields.leaves() if f.kind == "enums"}
SCANS = fields.CASE["scans"].block


def _unchecked() -> list[str]:
    known = {"bool", "enum", "code", "decimal", "timestamp", "int", "enums"}
    out = [p for p, f in fields.leaves() if f.kind not in known and p not in ("timezone", "scans")]
    out += [f"scans.{f.name}" for f in SCANS.fields if f.kind not in ("enum", "code", "timestamp", "bool")]
    out += [p for p, f in fields.leaves() if f.kind == "int" and f.limits.get("ge") != 0]
    return out


if _unchecked():
    raise fields.mismatch("columnar.input", f"no bulk check for {', '.join(_unchecked())}: "
                          "add one to checks_and_facts or scan_frame")


def places_of(path: str) -> int:
    """Decimal places of a decimal field's encoded unit (its base fact's, else the contract's)."""
    spec = BASE_FACTS.get(path)
    return UNITS[spec.type.name] if spec is not None else DECIMALS[path]["decimal_places"]


def field(path: str) -> pl.Expr:
    block, _, name = path.partition(".")
    return pl.col(block).struct.field(name) if name else pl.col(block)


def instant_us(text: pl.Expr) -> pl.Expr:
    """µs since the epoch of `2026-05-02T11:40:00+08:00` or `...Z` text; check the form with TIMESTAMP_FORM.

    The local part is parsed without a zone and the offset subtracted by hand:
    strptime with `%:z` costs three times as much.
    """
    naive = text.str.slice(0, 19).str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S", strict=False).cast(pl.Int64)
    sign = pl.when(text.str.slice(19, 1) == "-").then(-1).otherwise(1)
    minutes = (text.str.slice(20, 2).cast(pl.Int64, strict=False) * 60
               + text.str.slice(23, 2).cast(pl.Int64, strict=False)).fill_null(0)
    return naive - sign * minutes * 60 * US


def timestamp_ok(text: pl.Expr, value: pl.Expr) -> pl.Expr:
    """The Polars gate of case/instants.py: FAST_FORM, in the fast window."""
    return text.str.contains(FAST_FORM) & value.is_between(EARLIEST, LATEST, closed="left")


def decimal_units(text: pl.Expr, places: int) -> pl.Expr:
    """Integer units with `places` decimals of decimal text (checked by decimal_ok)."""
    parts = text.str.split_exact(".", 1)
    fraction = parts.struct.field("field_1").fill_null("").str.pad_end(places, "0")
    return (parts.struct.field("field_0") + fraction).cast(pl.Int64, strict=False)


def decimal_ok(text: pl.Expr, units: pl.Expr, limits: Mapping, places: int) -> pl.Expr:
    """The contract's limits on decimal text: form, decimal places, whole digits, bounds."""
    whole_digits = min(limits.get("max_digits", 30) - limits["decimal_places"], 15)
    dot = text.str.find(".", literal=True)
    length = text.str.len_bytes()
    ok = (text.str.contains(_DECIMAL) & units.is_not_null()
          & (pl.when(dot.is_null()).then(length).otherwise(dot) <= whole_digits)
          & (pl.when(dot.is_null()).then(0).otherwise(length - dot - 1) <= limits["decimal_places"]))
    scale = 10 ** places
    if "gt" in limits:
        ok = ok & (units > limits["gt"] * scale)
    if "ge" in limits:
        ok = ok & (units >= limits["ge"] * scale)
    if "le" in limits:
        ok = ok & (units <= limits["le"] * scale)
    return ok


_V = "__v:"      # first-pass names, so values do not hide the raw columns the checks read


def present_ok(value: pl.Expr, ok: pl.Expr) -> pl.Expr:
    """An optional field is fine when absent, else when its check holds."""
    return value.is_null() | ok.fill_null(False)


def checks_and_facts(df: pl.DataFrame, as_of_us: int | None, now_us: int,
                     max_scans: int = C.MAX_SCANS) -> pl.DataFrame:
    """`__row`, `__ok` (the row is plainly valid) and every base fact, encoded, as columns.

    Values are computed once (first pass) and the checks read them (second pass).
    """
    values: dict[str, pl.Expr] = {}
    ok = [pl.col(path).is_not_null() for path in sorted(REQUIRED)]
    for path, pattern in CODES.items():
        v = field(path)
        values[key(path)] = v
        ok.append(present_ok(v, v.str.contains(pattern) & (v.str.len_chars() <= C.CODE_MAX_LENGTH)))
    for path, allowed in ENUMS.items():
        values[key(path)] = field(path)
        ok.append(present_ok(field(path), field(path).is_in(list(allowed))))
    for path, limits in DECIMALS.items():
        places = places_of(path)
        values[key(path)] = decimal_units(field(path), places)
        ok.append(present_ok(field(path), decimal_ok(field(path), pl.col(_V + key(path)), limits, places)))
    for path in TIMESTAMPS:
        values[key(path)] = instant_us(field(path))
        ok.append(present_ok(field(path), timestamp_ok(field(path), pl.col(_V + key(path)))))
    for path, high in INTS.items():
        values[key(path)] = field(path)
        ok.append(present_ok(field(path), field(path).is_between(0, high)))
    values["__case_as_of"] = instant_us(pl.col("as_of"))
    ok.append(present_ok(pl.col("as_of"), timestamp_ok(pl.col("as_of"), pl.col(_V + "__case_as_of"))))
    for path, (allowed, max_items) in LISTS.items():
        items = field(path)
        ok.append(items.is_null() | ((items.list.len() <= max_items)
                                     & items.list.eval(pl.element().is_in(list(allowed))).list.all()))
    issues = pl.col("complaint").struct.field("issues")
    ok.append((pl.col("scans").list.len() <= min(max_scans, C.MAX_SCANS)).fill_null(True))   # more: per case
    for path, spec in BASE_FACTS.items():
        if key(path) in values or spec.get is None:
            continue
        block, _, name = path.partition(".")
        if block in BLOCKS and name and spec.type.name == "bool":
            values[key(path)] = field(path)
        elif path in BLOCKS:
            values[key(path)] = pl.when(pl.col(path).is_not_null()).then(True)
    for path, f in fields.leaves():        # booleans no rule reads (the KPI statement's), as they are
        if f.kind == "bool" and key(path) not in values:
            values[key(path)] = field(path)
    # a complaint without `issues` has none (the model's default), not an unknown list
    values["__issues"] = pl.when(pl.col("complaint").is_not_null()).then(issues.fill_null(pl.lit([], pl.List(pl.String))))
    first = df.lazy().with_columns(e.alias(_V + k) for k, e in values.items())
    as_of = (pl.lit(as_of_us, pl.Int64) if as_of_us is not None
             else pl.coalesce(pl.col(_V + "__case_as_of"), pl.lit(now_us, pl.Int64)))
    return first.select(pl.col("__row"), pl.all_horizontal(ok).fill_null(False).alias("__ok"),
                        as_of.alias(key("as_of")),
                        *[pl.col(_V + k).alias(k) for k in values if k != "__case_as_of"]).collect(
                            optimizations=pl.QueryOptFlags.none())

def scan_frame(df: pl.DataFrame) -> pl.DataFrame:
    long = (df.lazy().select("__row", "scans").explode("scans").drop_nulls("scans")
            .select("__row", pl.col("scans").struct.unnest()).with_columns(instant_us(pl.col("at")).alias("_at")))
    ok = timestamp_ok(pl.col("at"), pl.col("_at"))
    for f in SCANS.fields:         # the scan's other fields, as the table has them
        v = pl.col(f.name)
        check = (v.is_in(list(f.values)) if f.kind == "enum"
                 else v.str.contains(f.pattern) & (v.str.len_chars() <= C.CODE_MAX_LENGTH) if f.kind == "code"
                 else timestamp_ok(v, instant_us(v)) if f.kind == "timestamp" and f.name != "at"
                 else None)
        if check is not None:
            ok = ok & (check if f.required else present_ok(v, check))
    return long.select("__row", "type", "station", pl.col("_at").alias("at"), ok.fill_null(False).alias("ok")).collect()


def builtins(facts: pl.DataFrame, scans: pl.DataFrame) -> pl.DataFrame:
    """The built-in derived values (packs/builtins.py) as columns, and `__ok` false where a scan is not.

    One pass per stage of the records (builtins.stages): a group-by over the scans of the
    records that aggregate them, with the row facts they read joined beside each scan, then
    their values. A step that is no fact, and every aggregate, is dropped at the end.
    """
    c = Frame(pl, fact=lambda path: pl.col(key(path)), scan=pl.col)
    scans = scans.sort("__row", "at", "type", "station")        # each case's in builtins.scan_order
    scans_ok: list[pl.Expr] = [pl.col("ok").all().alias("_scans_ok")]       # in the first group-by
    f, dropped = facts, ["_scans_ok"]
    for stage in stages(list(BUILTINS.values()), {p for p in BASE_FACTS if key(p) in facts.columns}):
        over = [(b, b.over_scans) for b in stage if b.over_scans is not None]
        ok: list[pl.Expr] = []        # `__ok` with the scans' own checks, after the first group-by
        if over or scans_ok:
            reads = sorted({key(r) for b, _ in over for r in b.scan_reads})
            beside = (scans.join(f.select("__row", *reads), on="__row", how="inner", maintain_order="left")
                      if reads else scans)
            found = beside.group_by("__row").agg(*scans_ok, *(aggregate(c).alias(_aggregate(b)) for b, aggregate in over))
            if scans_ok:
                ok.append((pl.col("__ok") & pl.col("_scans_ok").fill_null(True)).alias("__ok"))
            f, scans_ok = f.join(found, on="__row", how="left"), []
            dropped += [_aggregate(b) for b, _ in over]
        f = _with(f, *ok, *(b.columns(c, pl.col(_aggregate(b)) if b.over_scans else None).alias(key(b.name))
                            for b in stage))
    dropped += [key(b.name) for b in BUILTINS.values() if b.type is None]
    return f.drop(dropped)


def _aggregate(b: Builtin) -> str:
    return f"__scans:{b.name}"


# ---- JSON Lines in --------------------------------------------------------------------------

EXPONENT = r"[0-9][eE]"                   # 1e-400: Polars finds it fast (it looks for e/E first)
_NINES = bytes.maketrans(b"0123456789.", b"99999999999")
_LONG = b"9" * 16        # 16 digits, or 15 and a dot: a float may not hold them; a regex cost 1.4 µs a line


def long_number(payload: bytes) -> bool:
    """Whether the line has a run of 16 digits and dots: a number a float might not hold exactly."""
    return payload.translate(_NINES).find(_LONG) >= 0


def read_lines(rows: list[tuple[int, Any]]) -> pl.DataFrame:
    """The JSON Lines rows the columns can read, as a raw frame; the others are left to the per-case path.

    msgspec checks each line's JSON shape (fastcase.structural: names, JSON types,
    required fields; the values are checked in bulk later) and writes it back in
    canonical form, which Polars then reads in one pass. A line is left to the
    per-case path (which gives the exact verdict or error) when msgspec rejects it
    or when Polars might read it differently from json.loads: a repeated key
    (json_data rejects it; msgspec and Polars would keep one) is caught by
    counting `":` in the line and in its canonical form, which keeps every key
    the line had; a backslash or a space before a colon could fool the count,
    so such lines are left behind too. So are lines with a number that a float
    might not hold exactly (an exponent, or 16 digits and more): json_data
    refuses those that lose their value, and msgspec would not notice.
    """
    import msgspec

    from ..case.limits import DEFAULT as DEFAULT_LIMITS
    MAX_LINE = DEFAULT_LIMITS.case_bytes    # batch.io.MAX_LINE: longer is an error row
    decoder, encoder = _codec(msgspec)

    def canonical(payload):
        try:
            return encoder.encode(decoder.decode(payload))
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, TypeError):
            return None
    numbers = [number for number, _ in rows]
    payloads = [p if type(p) is bytes and len(p) <= MAX_LINE else b"" for _, p in rows]
    texts = list(map(canonical, payloads))
    payloads = [p if t is not None else b"" for p, t in zip(payloads, texts)]    # only UTF-8 text below
    lines = pl.DataFrame({"__row": numbers, "line": payloads, "canonical": texts,
                          "long": list(map(long_number, payloads))},
                         schema={"__row": pl.Int64, "line": pl.Binary, "canonical": pl.Binary, "long": pl.Boolean})
    line, canon = pl.col("line"), pl.col("canonical")
    plain = (canon.is_not_null() & ~line.bin.contains(b"\\") & ~line.bin.contains(b'" ')
             & ~line.bin.contains(b'"\t') & ~line.bin.contains(b'"\r')
             & (line.cast(pl.String).str.count_matches('":', literal=True)
                == canon.cast(pl.String).str.count_matches('":', literal=True))
             & ~pl.col("long") & ~line.cast(pl.String).str.contains(EXPONENT))
    chosen = lines.filter(plain.fill_null(False))
    if chosen.is_empty():
        return pl.DataFrame(schema={"__row": pl.Int64, **raw_schema()})
    frame = chosen.select("__row", pl.col("canonical").cast(pl.String).str.json_decode(pl.Struct(raw_schema()))
                          .struct.unnest())      # json_decode: half the time of read_ndjson here
    return frame


def read_table(batch, numbers: list[int]) -> pl.DataFrame | None:
    """A Parquet batch as a raw frame (its rows numbered `numbers`), or None when its types differ.

    A column the case does not have rejects the rows with a value in it, as an
    unknown key does; a null inside scans or issues is not an absent element
    but an invalid one. Those rows are left to the per-case path.
    """
    frame = pl.from_arrow(batch)
    if not isinstance(frame, pl.DataFrame):
        return None
    schema = raw_schema()
    extra = [c for c in frame.columns if c not in schema]
    columns = []
    for name, dtype in schema.items():
        if name not in frame.columns:
            columns.append(pl.lit(None, dtype).alias(name))
        elif frame.schema[name] != dtype:
            return None
        else:
            columns.append(pl.col(name))
    odd = [pl.col(c).is_not_null() for c in extra] + [
        pl.col("scans").list.eval(pl.element().is_null()).list.any().fill_null(False),
        pl.col("complaint").struct.field("issues").list.eval(pl.element().is_null()).list.any().fill_null(False)]
    return (frame.with_columns(pl.Series("__row", numbers, dtype=pl.Int64)).select("__row", *columns, *extra)
            .filter(~pl.any_horizontal(odd)).select("__row", *schema))


_CODECS: dict = {}


def _codec(msgspec):
    if not _CODECS:
        from ..case.fast import structural
        _CODECS["pair"] = (msgspec.json.Decoder(structural()), msgspec.json.Encoder())
    return _CODECS["pair"]
