"""The verdict's shape, once: its parts, their fields in contract order with their kind,
the order of findings and how money adds up.

Everything that writes a verdict derives from here: the per-case JSON
(`Verdict.to_json`, `to_dict`, written from these dataclasses' fields) and the
columnar path's Polars expressions (`verdict/columns.py`, from the same fields
and kinds). A new verdict field is one line in a dataclass below (with its kind)
plus its value in each backend; the renderers follow.

No Polars here: a single CLI call imports this module.
"""
from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass, field, fields as dataclass_fields
from decimal import Decimal
from typing import Any, NamedTuple

from .. import money as _money
from ..errors import CaseError

# ---- kinds: how a field's value is written -------------------------------------------------
STRING = "string"            # a JSON string (the columnar path gives its escaped body)
STRING_OR_NULL = "string?"   # a JSON string or null
INSTANT = "instant"          # isoformat text in the case's zone (the columnar path gives it as JSON)
INSTANT_OR_NULL = "instant?"
PARTS = "parts"              # a list of verdict parts (packs, findings, deadlines): objects of their own layout
STRINGS = "strings"          # a sorted list of strings
OBJECT = "object"            # a JSON object of values (a finding's quoted facts)
COUNT_OR_NULL = "count?"     # a positive int, or null for none (0)
MONEY = "money"              # an amount in yuan with two places, as a string
MONEY_MAP = "money map"      # payer → MONEY, payers sorted, only amounts > 0


def shown_as(name: str, part: type | None = None) -> Any:
    """A dataclass field of this kind (`part`: the dataclass of a PARTS list's items)."""
    return field(metadata={"kind": name, "part": part})


class Field(NamedTuple):
    name: str
    kind: str
    part: type | None
    key: str                 # '"name": ', as json.dumps writes a key


def layout(cls: type) -> tuple[Field, ...]:
    """A part's fields in contract order, with their kinds."""
    return tuple(Field(f.name, f.metadata["kind"], f.metadata["part"], json.dumps(f.name) + ": ")
                 for f in dataclass_fields(cls))


# ---- the parts ---------------------------------------------------------------------------
# Plain dataclasses, not Pydantic models: a verdict is built by us, never parsed, and
# importing Pydantic would double a CLI call's start-up. `slarules schema verdict`
# still gets its JSON schema from them through Pydantic's TypeAdapter.

class _Part:
    def to_dict(self) -> dict[str, Any]:
        """The part's JSON object, keys in contract order (copies: a caller may change it)."""
        out = {}
        for f in _LAYOUT[type(self)]:
            value = getattr(self, f.name)
            if f.kind == PARTS:
                value = [item.to_dict() for item in value]
            elif type(value) in (list, dict):
                value = type(value)(value)
            out[f.name] = value
        return out


@dataclass
class PackRef(_Part):
    name: str = shown_as(STRING)
    version: str = shown_as(STRING)
    digest: str = shown_as(STRING)


@dataclass
class Finding(_Part):
    clause: str = shown_as(STRING)
    rule: str = shown_as(STRING)
    kind: str = shown_as(STRING)
    party: str = shown_as(STRING)
    station: str | None = shown_as(STRING_OR_NULL)
    fine_cny: str = shown_as(MONEY)
    refund_cny: str = shown_as(MONEY)
    compensation_cny: str = shown_as(MONEY)      # owed to the customer (docs/policy.md NR-3, NR-4)
    severity: str = shown_as(STRING)
    facts: dict[str, Any] = shown_as(OBJECT)
    message: str = shown_as(STRING)


@dataclass
class DeadlineStatus(_Part):
    name: str = shown_as(STRING)
    clause: str = shown_as(STRING)
    rule: str = shown_as(STRING)
    due: str = shown_as(INSTANT)
    actual: str | None = shown_as(INSTANT_OR_NULL)
    status: str = shown_as(STRING)           # met | breached | open


@dataclass
class Verdict(_Part):
    """The verdict of docs/contract.md; `to_dict()` is its JSON object, keys in contract order."""

    waybill: str = shown_as(STRING)
    as_of: str = shown_as(INSTANT)
    packs: list[PackRef] = shown_as(PARTS, PackRef)
    findings: list[Finding] = shown_as(PARTS, Finding)
    classifications: list[str] = shown_as(STRINGS)
    complaint_level: int | None = shown_as(COUNT_OR_NULL)
    fines_cny: dict[str, str] = shown_as(MONEY_MAP)
    refunds_cny: str = shown_as(MONEY)
    compensation_cny: dict[str, str] = shown_as(MONEY_MAP)
    missing: list[str] = shown_as(STRINGS)
    not_covered: list[str] = shown_as(STRINGS)
    deadlines: list[DeadlineStatus] = shown_as(PARTS, DeadlineStatus)

    def to_json(self, indent: int | None = 2) -> str:
        if indent == 2 or indent is None:
            try:
                text = (_json2 or _write_json2())(self)
            except _Unexpected:
                pass
            else:
                return text if indent == 2 else compact(text)
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @staticmethod
    def json_schema() -> dict[str, Any]:
        from pydantic import TypeAdapter
        return TypeAdapter(Verdict).json_schema()


_LAYOUT: dict[type, tuple[Field, ...]] = {cls: layout(cls) for cls in (PackRef, Finding, DeadlineStatus, Verdict)}
VERDICT, FINDING, DEADLINE, PACK = (_LAYOUT[c] for c in (Verdict, Finding, DeadlineStatus, PackRef))


# ---- findings and money ------------------------------------------------------------------
NOT_COVERED = "not_covered"     # a rule of this kind is reported as "CLAUSE: message" in not_covered, not as a finding

# A finding's amounts (a rule's `fine`, `refund`, `compensation`): the finding field each is shown in, and
# how the verdict adds them up — per payer (its station, else its party; only amounts > 0;
# payers sorted) into a MONEY_MAP, or over all findings into a MONEY total. A compensation's payer is
# the party liable for its harm (chaining.Chain.payer), else the network.
AMOUNTS = {"fine": "fine_cny", "refund": "refund_cny", "compensation": "compensation_cny"}
PER_PAYER = {"fines_cny": "fine", "compensation_cny": "compensation"}
TOTAL = {"refunds_cny": "refund"}
ZERO = _money.ZERO


def finding_order(clause_order: dict[str, int], clause: str, rule: str) -> tuple:
    """Where a finding goes: its clause in the packs' clause order (unknown clauses last), then clause, rule."""
    return (clause_order.get(clause, 10**6), clause, rule)


def payer(station: str | None, party: str) -> str:
    """Who a finding's money is booked to."""
    return station or party


def money(d: Decimal) -> str:
    if d is ZERO:              # no fine, no refund: the usual case
        return "0.00"
    return _money.text(d)


def money_fields(booked: list[tuple[str, dict[str, Decimal]]]) -> dict[str, Any]:
    """The verdict's money fields from each finding's (payer, amounts), per PER_PAYER and TOTAL.

    Each is exact and within money.VERDICT, or the case is refused (a CaseError naming the field and
    payer): the columnar path sends such a row here, so every path refuses it alike."""
    if not booked:            # no finding owes anything: most cases (new dicts: a caller may change them)
        return {**{name: {} for name in PER_PAYER}, **_NOTHING_TOTAL}
    out: dict[str, Any] = {}
    for name, amount in PER_PAYER.items():
        sums: dict[str, Decimal] = {}
        for who, amounts in booked:
            value = amounts[amount]
            if value > 0:
                sums[who] = _money.add(sums.get(who, ZERO), value)
        out[name] = {k: _bounded(name, k, v) for k, v in sorted(sums.items())}
    for name, amount in TOTAL.items():
        out[name] = _bounded(name, None, _money.total(amounts[amount] for _, amounts in booked))
    return out


def _bounded(name: str, who: str | None, total: Decimal) -> str:
    """A verdict money field's text; a CaseError past money.VERDICT (a sum no 64-bit integer of fen holds)."""
    if not _money.VERDICT.holds(total):
        shown = "the sum" + (f" for {who}" if who is not None else "") + f", {_money.text(total)} CNY,"
        raise CaseError(_money.VERDICT.refusal(shown),
                        field=name, hint="docs/contract.md, Money: the bound of each amount and each sum")
    return money(total)


_NOTHING_TOTAL = {name: money(ZERO) for name in TOTAL}


# ---- the per-case JSON (indent=2) ----------------------------------------------------------

class _Unexpected(Exception):
    """A value `_indented` does not render itself: json.dumps decides (and raises as it would)."""


_string = json.encoder.encode_basestring      # the C encoder json.dumps uses with ensure_ascii=False
_float = float.__repr__
_NL1, _NL3 = "\n  ", "\n      "


def _write_json2() -> Any:
    """`_json2(verdict)`: to_json(indent=2) written straight from the fields, with no to_dict() in between.

    Same bytes as json.dumps(verdict.to_dict(), ensure_ascii=False, indent=2).
    Generated from VERDICT (as runtime/values.py generates its functions from the
    field table), so the hot per-case path runs straight-line code with the keys
    as constants: values go through `_indented` at their depth, parts through
    `_objects`, and anything unexpected raises _Unexpected (json.dumps then).
    """
    ns: dict[str, Any] = {"_objects": _objects, "_indented": _indented, "_string": _string, "_NL1": _NL1}
    lines = ["def _json2(v):", "    out = []"]
    for n, f in enumerate(VERDICT):
        ns[f"K{n}"] = ("{" if n == 0 else ",") + _NL1 + f.key
        if f.kind == PARTS:
            ns[f"P{n}"] = f.part
            lines += [f"    out.append(K{n})", f"    _objects(out, v.{f.name}, P{n})"]
        else:
            lines += [f"    x = v.{f.name}",
                      f"    out += (K{n}, _string(x) if type(x) is str else _indented(x, _NL1))"]
    lines += ['    out.append("\\n}")', '    return "".join(out)']
    exec("\n".join(lines), ns)  # noqa: S102  # code generated from VERDICT, the layout
    global _json2
    _json2 = ns["_json2"]          # written on the first call, not at import: a CLI start may print text
    return _json2


# a part's (key text, field) pairs, for _objects
_KEYS = {cls: tuple((f.key, f.name) for f in fields) for cls, fields in _LAYOUT.items()}


# Parts whose fields are all plain strings (the packs: the same six or so on every verdict):
# each distinct one's text is written once and remembered, keyed by its field values.
_STRINGS_ONLY = {cls: operator.attrgetter(*(f.name for f in fields))
                 for cls, fields in _LAYOUT.items() if len(fields) > 1 and all(f.kind == STRING for f in fields)}
_PART_TEXTS: dict[tuple, str] = {}


def _objects(out: list[str], items: list, cls: type) -> None:
    """A list of verdict parts (findings, deadlines, packs) as json.dumps(indent=2) at depth 2 writes it."""
    if not items:
        out.append("[]")
        return
    fields = _KEYS[cls]
    values_of = _STRINGS_ONLY.get(cls)
    sep = "[\n    "
    for item in items:
        if type(item) is not cls:
            raise _Unexpected
        out.append(sep)
        sep = ",\n    "
        if values_of is None:
            _object(out, item, fields)
            continue
        values = values_of(item)
        try:
            text = _PART_TEXTS.get(values)     # no other type equals a str: a hit was all strings
        except TypeError:                      # an unhashable value: json.dumps decides
            raise _Unexpected from None
        if text is None:
            parts: list[str] = []
            _object(parts, item, fields)
            text = "".join(parts)
            if all(type(v) is str for v in values):
                if len(_PART_TEXTS) >= 4096:
                    _PART_TEXTS.clear()
                _PART_TEXTS[values] = text
        out.append(text)
    out.append("\n  ]")


def _object(out: list[str], item: Any, fields: tuple) -> None:
    """One part at depth 2, appended to `out`."""
    lead = "{\n      "
    for key_text, name in fields:
        value = getattr(item, name)
        out += (lead, key_text, _string(value) if type(value) is str else _indented(value, _NL3))
        lead = ",\n      "
    out.append("\n    }")


def _indented(value: Any, newline: str) -> str:
    """json.dumps(value, ensure_ascii=False, indent=2), byte for byte, for the types a verdict holds.

    With an indent, json.dumps runs its pure-Python encoder (generators per level);
    this direct recursion over str, int, bool, None, lists and dicts with string keys
    is several times faster. Anything else (a float that is not finite, a non-string
    key, another type) raises _Unexpected and json.dumps renders the whole verdict.
    """
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = newline + "  "
        parts = []
        for k, v in value.items():
            if type(k) is not str:
                raise _Unexpected
            parts.append(_string(k) + ": " + _indented(v, inner))
        return "{" + inner + ("," + inner).join(parts) + newline + "}"
    if kind is list:
        if not value:
            return "[]"
        inner = newline + "  "
        return "[" + inner + ("," + inner).join([_indented(v, inner) for v in value]) + newline + "]"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float and value == value and value not in (float("inf"), float("-inf")):  # noqa: PLR0124  # NaN != NaN
        return _float(value)
    raise _Unexpected


_json2 = None

_ITEM_BREAK, _LINE_BREAK = re.compile(r",\n *"), re.compile(r"\n *")


def compact(indented: str) -> str:
    """json.dumps(value, ensure_ascii=False) from json.dumps(value, ensure_ascii=False, indent=2), byte for byte.

    JSON text holds a newline only between tokens (one in a string is written `\\n`), so taking
    out each line break with its indent, and writing ", " between items, is the compact form: a
    decision log's record and a batch line cost this instead of to_dict() and json.dumps again.
    """
    start = indented.find(_PACKS_KEY)
    end = indented.find(_CLOSE1, start) if start >= 0 else -1
    if end < 0:
        return _compacted(indented)
    start += 3                              # the line break and indent before the key stay in the head
    end += len(_CLOSE1)
    packs = indented[start:end]
    done = _COMPACT_PACKS.get(packs)
    if done is None:
        if len(_COMPACT_PACKS) >= 64:       # engines come and go (reloads): keep the recent ones
            _COMPACT_PACKS.clear()
        done = _COMPACT_PACKS[packs] = _compacted(packs)
    return _compacted(indented[:start]) + done + _compacted(indented[end:])


def _compacted(text: str) -> str:
    return _LINE_BREAK.sub("", _ITEM_BREAK.sub(", ", text))


# The packs list is two thirds of a verdict's lines and the same on every verdict of an engine: its
# compact text is remembered, keyed by its indented text (~1 KB, hashed in C), and only the rest
# goes through the expressions (7.5 µs a verdict, 5.3 now). The cut is where no line break can span
# it: after the indent before the key, and after the list's closing bracket (a line of two spaces
# and "]" is the end of a list at depth 1: deeper lines are indented more, text holds no newline).
_PACKS_KEY, _CLOSE1 = '\n  "packs": [', "\n  ]"
_COMPACT_PACKS: dict[str, str] = {}
