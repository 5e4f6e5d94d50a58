"""The verdict's layout (verdict/layout.py) as Polars expressions: a column of verdict JSON.

The columnar batch path computes each field's value as a column; these functions
write them in the layout's order and by their kind, with the same bytes as
json.dumps(verdict.to_dict(), ensure_ascii=False). A field's value is either a
Python constant (the same in every row: written once, now, by json.dumps and
folded into the literal text around it) or an expression whose form the kind
says (`part`).
"""
from __future__ import annotations

import json
from typing import Any, NamedTuple

from ..runtime._polars import pl  # first: it sets how Polars loads

# isort: split
from .layout import (
    COUNT_OR_NULL,
    DEADLINE,
    FINDING,
    INSTANT,
    INSTANT_OR_NULL,
    MONEY,
    MONEY_MAP,
    OBJECT,
    PARTS,
    PER_PAYER,
    STRING,
    STRING_OR_NULL,
    STRINGS,
    VERDICT,
    Field,
    _Part,
    layout,
)


def decimal_text(units: pl.Expr, places: int, keep: bool) -> pl.Expr:
    """Units with `places` decimals as text: all places kept (money), or trailing zeros dropped."""
    scale = 10 ** places
    magnitude = units.abs()
    whole = (magnitude // scale).cast(pl.String)
    fraction = (magnitude % scale).cast(pl.String).str.pad_start(places, "0")
    sign = pl.when(units < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    if keep:
        return pl.concat_str(sign, whole, pl.lit("."), fraction)
    fraction = fraction.str.strip_chars_end("0")
    return pl.concat_str(sign, whole, pl.when(fraction != "").then(pl.lit(".") + fraction).otherwise(pl.lit("")))


def money_text(fen: pl.Expr) -> pl.Expr:
    """layout.money of an amount in fen."""
    return decimal_text(fen, 2, keep=True)


def quoted(text: pl.Expr) -> pl.Expr:
    """A JSON string from its (already escaped) body."""
    return pl.concat_str(pl.lit('"'), text, pl.lit('"'))


def json_items(strings: pl.Expr) -> pl.Expr:
    """A list column of (JSON-safe) strings as the items of a JSON array, without the brackets."""
    return strings.list.eval(pl.lit('"') + pl.element() + pl.lit('"')).list.join(", ")


def _items(value: pl.Expr, open_: str, close: str) -> list:
    return [open_, value, close]


# A kind's value as an expression, and what writes it. STRING: the escaped body;
# INSTANT: the JSON text itself (its zone offset is the caller's); PARTS, STRINGS:
# the array's items joined by ", " ("" for none); OBJECT, MONEY_MAP: the object's
# "key": value pairs joined ("" for none); COUNT_OR_NULL: an int; MONEY: fen.
_WRITE = {
    STRING: lambda v: ['"', v, '"'],
    STRING_OR_NULL: lambda v: [pl.when(v.is_null()).then(pl.lit("null")).otherwise(quoted(v))],
    INSTANT: lambda v: [v],
    INSTANT_OR_NULL: lambda v: [v],
    PARTS: lambda v: _items(v, "[", "]"),
    STRINGS: lambda v: _items(v, "[", "]"),
    OBJECT: lambda v: _items(v, "{", "}"),
    MONEY_MAP: lambda v: _items(v, "{", "}"),
    COUNT_OR_NULL: lambda v: [pl.when(v > 0).then(v.cast(pl.String)).otherwise(pl.lit("null"))],
    MONEY: lambda v: ['"', money_text(v), '"'],
}


# A JSON string body's escapes (json.dumps with ensure_ascii=False escapes only these) and what they stand for.
_ESCAPES = {'\\"': '"', "\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\b": "\b", "\\f": "\f",
            **{f"\\u{c:04x}": chr(c) for c in range(0x20)}}


def unescaped(body: pl.Expr) -> pl.Expr:
    """A JSON string's escaped body as the string itself: one left-to-right pass (Aho-Corasick)."""
    return body.str.replace_many(list(_ESCAPES), list(_ESCAPES.values()))


def _unquoted(text: pl.Expr) -> pl.Expr:
    """An instant's JSON text as its string; null for "null" (an instant's text has no escapes)."""
    return pl.when(text != "null").then(text.str.strip_chars('"'))


# The same values as Arrow-shaped columns (batch/io.py's verdict_schema), for a Parquet verdict written
# without its JSON text. STRING, STRING_OR_NULL: the escaped body, unescaped; INSTANT: its JSON text;
# OBJECT: its "key": value pairs (keys sorted: the schema keeps the object as JSON text, sort_keys);
# PARTS, STRINGS, MONEY_MAP: already a list column (of structs of the part's own fields; of (station,
# amount) pairs), null for none; COUNT_OR_NULL: an int; MONEY: fen.
_EMPTY: dict[str, Any] = {}
_ARROW = {
    STRING: unescaped,
    STRING_OR_NULL: unescaped,
    INSTANT: _unquoted,
    INSTANT_OR_NULL: _unquoted,
    PARTS: lambda v: v,
    STRINGS: lambda v: v,
    OBJECT: lambda v: pl.concat_str(pl.lit("{"), v, pl.lit("}")),
    MONEY_MAP: lambda v: v,
    COUNT_OR_NULL: lambda v: pl.when(v > 0).then(v.cast(pl.Int32)),
    MONEY: money_text,
}


def arrow_constant(f: Field, value: Any) -> pl.Expr:
    """A constant field value in its Arrow shape (as verdict_table reads it from the JSON text)."""
    if f.kind == PARTS:
        items = [part_struct(layout(f.part), v.to_dict()) for v in value]  # type: ignore[arg-type]  # a PARTS field's
        return pl.concat_list(items) if items else pl.lit(None)
    if f.kind == OBJECT:
        return pl.lit(json.dumps(value, ensure_ascii=False, sort_keys=True))
    if f.kind == COUNT_OR_NULL:
        return pl.lit(value or None, pl.Int32)
    if f.kind in (STRINGS, MONEY_MAP):
        if value:
            raise ValueError(f"a constant {f.kind} ({f.name}) that is not empty")
        return pl.lit(None)
    return pl.lit(value, pl.String)


def part_struct(fields: tuple[Field, ...], values: dict[str, Any]) -> pl.Expr:
    """One part as a struct of its fields in their Arrow shapes (`_ARROW`), from the values `part` writes as JSON."""
    return pl.struct(arrow_columns(fields, values))


def arrow_columns(fields: tuple[Field, ...], values: dict[str, Any]) -> list[pl.Expr]:
    """Each field's value in its Arrow shape (`_ARROW`), named as the field, in `fields`' order.
    A list field given as an expression is null where it has no items: the caller fills in empty lists."""
    if set(values) != {f.name for f in fields}:
        raise ValueError(f"values for {sorted(values)}, the layout has {[f.name for f in fields]}")
    columns = []
    for f in fields:
        value = values[f.name]
        if isinstance(value, Choice):
            picked: Any = None
            for option, shown in value.options.items():
                test = value.by == option
                picked = (pl.when(test) if picked is None else picked.when(test)).then(pl.lit(shown, pl.String))
            column = picked.otherwise(None)
        elif isinstance(value, pl.Expr):
            column = _ARROW[f.kind](value)
        else:
            column = arrow_constant(f, value)
        columns.append(column.alias(f.name))
    return columns


def constant(value: Any) -> str:
    """A value (or a verdict part, or a list of them) as JSON text, as json.dumps(ensure_ascii=False) writes it."""
    if isinstance(value, _Part):
        value = value.to_dict()
    elif isinstance(value, list):
        value = [v.to_dict() if isinstance(v, _Part) else v for v in value]
    return json.dumps(value, ensure_ascii=False)


class Choice(NamedTuple):
    """A constant that depends on the row: `options[value of by]` (null where `by` matches none).

    Consecutive fields chosen by the same `by` expression are written as one
    pick of their joint text (a deadline's clause and rule: one per candidate rule).
    """
    by: pl.Expr
    options: dict[Any, Any]


def part(fields: tuple[Field, ...], values: dict[str, Any]) -> pl.Expr:
    """One part's JSON object, keys in `fields`' order; runs of constant text are one literal."""
    if set(values) != {f.name for f in fields}:
        raise ValueError(f"values for {sorted(values)}, the layout has {[f.name for f in fields]}")
    pieces: list[Any] = []
    text = "{"
    chosen: Choice | None = None        # the run of Choice fields being joined: by, option → text

    def add(piece: pl.Expr) -> None:
        nonlocal text
        pieces.extend((pl.lit(text), piece) if text else (piece,))
        text = ""

    def pick(run: Choice) -> pl.Expr:
        picked: Any = None      # a Polars when/then chain, built a link at a time
        for option, joint in run.options.items():
            test = run.by == option
            picked = pl.when(test).then(pl.lit(joint)) if picked is None else picked.when(test).then(pl.lit(joint))
        return picked.otherwise(None)
    for n, f in enumerate(fields):
        key_text = (", " if n else "") + f.key
        value = values[f.name]
        if isinstance(value, Choice):
            if chosen is not None and chosen.by is value.by and chosen.options.keys() == value.options.keys():
                for option, shown in value.options.items():
                    chosen.options[option] += key_text + constant(shown)
                continue
            if chosen is not None:
                add(pick(chosen))
            text += key_text
            chosen = Choice(value.by, {option: constant(c) for option, c in value.options.items()})
            continue
        if chosen is not None:
            add(pick(chosen))
            chosen = None
        text += key_text
        if not isinstance(value, pl.Expr):
            text += constant(value)
            continue
        for piece in _WRITE[f.kind](value):
            if type(piece) is str:
                text += piece
            else:
                add(piece)
    if chosen is not None:
        add(pick(chosen))
    pieces.append(pl.lit(text + "}"))
    return pl.concat_str(pieces)


def verdict(values: dict[str, Any]) -> pl.Expr:
    return part(VERDICT, values)


def finding(values: dict[str, Any]) -> pl.Expr:
    return part(FINDING, values)


def deadline(values: dict[str, Any]) -> pl.Expr:
    return part(DEADLINE, values)


def money_maps(payers: pl.DataFrame, most: int, arrow: bool = False) -> tuple[pl.DataFrame, pl.Series]:
    """layout.PER_PAYER over a chunk: `payers` has a row per finding (`__row`, `who`, and each
    amount in fen, 128 bits); out comes, per verdict row with any, `__<field>` as MONEY_MAP items,
    and the rows with a sum past `most` (money.VERDICT: the per-case path refuses them).
    `arrow`: each map as a list of (station, amount) structs (its `_ARROW` shape), not JSON items."""
    out = None
    over = []
    for name, amount in PER_PAYER.items():
        sums = payers.filter(pl.col(amount) > 0).group_by("__row", "who").agg(pl.col(amount).sum())
        over.append(sums.filter(pl.col(amount) > most)["__row"])
        item = (pl.struct(pl.col("who").alias("station"), money_text(pl.col(amount)).alias("amount")) if arrow
                else pl.concat_str(pl.lit('"'), pl.col("who"), pl.lit('": "'), money_text(pl.col(amount)),
                                   pl.lit('"')).str.join(", "))
        entries = sums.sort("__row", "who").group_by("__row", maintain_order=True).agg(item.alias(f"__{name}"))
        out = entries if out is None else out.join(entries, on="__row", how="full", coalesce=True)
    frame = out if out is not None else pl.DataFrame(schema={"__row": pl.Int64})
    return frame, pl.concat(over) if over else pl.Series("__row", [], pl.Int64)
