"""The facts a rule may test, and the small declared vocabulary of derivations.

A pack never contains code. It names facts from this table (the case's fields,
plus a few derived values every pack needs) and may declare more derived values
by calling one of the `FUNCTIONS` below with facts and parameters. Each entry has
a type, so a pack is type-checked when it is loaded, not when a case arrives.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import money
from ..case import contract as C, fields
from . import types as T
from .derivations import FUNCTIONS, Function  # noqa: F401  # the pack vocabulary: read from here

Case = Any      # a validated case: facts.Case or fastcase.FastCase (same fields)

CHAIN_LEVEL = "complaint_level"
CLASSIFICATION_PREFIX = "classification."
LIABLE_PREFIX = "liable."      # who is liable for a harm: what a compensation rule's `payer` reads (chaining.py)

# Chinese labels for the codes the shipped packs name, so zh output shows words, not codes.
# The JSON keeps the codes; en shows the codes. A code a pack of one's own adds and these
# tables lack is shown as it is. Enum values' labels are contract.VALUE_LABELS_ZH.
DEADLINE_LABELS_ZH = {"delivery": "派件签收", "first_reply": "首次回复", "feedback": "初步反馈",
                      "identity": "确认身份", "first_contact": "联系客户", "plan": "初步方案",
                      "close": "完结", "answer": "答复", "legal_handling": "法定处理时限"}
CLASSIFICATION_LABELS_ZH = {"late": "延误", "lost": "遗失", "oversize": "三超件", "out_of_time": "超出受理期限"}
# A condition's `label` (a branch name), as {branches} in a zh message shows it.
BRANCH_LABELS_ZH = {
    "short_delay": "短时延误", "pressure_marks": "压痕", "lost_low_value": "低价值快件遗失",
    "rude_courier": "快递员态度恶劣", "lost_high_value": "高价值快件遗失", "insult": "辱骂客户",
    "physical_conflict": "肢体冲突", "major": "重大投诉",
    "damaged": "破损", "contents_short": "内件短少", "contamination": "污染",
    "lost": "遗失", "handled_as_lost": "按遗失处理",
    "not_notified": "未通知收件人", "no_consent": "未经收件人同意", "consent_not_recorded": "未记录收件人同意",
    "longest_side": "单边最长", "sum_of_sides": "三边之和", "volume": "体积", "weight": "重量",
    # the two branches every `deadline:` rule has (compiler.deadline_condition)
    "done_late": "逾期完成", "overdue": "逾期未完成",
}


def branch_label(label: str, lang: str = "zh") -> str:
    """A branch name as a message shows it: its Chinese label in zh (the name if it has none)."""
    return BRANCH_LABELS_ZH.get(label, label) if lang == "zh" else label


@dataclass(frozen=True)
class FactSpec:
    path: str
    type: T.FactType
    doc: str
    get: Callable[[Case, Derived], Any] | None = None


def _attr(path: str) -> Callable[[Case, Any], Any]:
    parts = path.split(".")

    def get(case: Case, _derived: Any) -> Any:
        obj: Any = case
        for part in parts:
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj
    get.attribute_path = path          # type: ignore[attr-defined]  # FactPlan reads a plain attribute without this closure
    return get


# ---- derived values every pack may use (computed once per case, lazily) -------------

_UNKNOWN = object()          # a Derived value not looked for yet


def _scan_order(s, epoch=T.EPOCH) -> tuple:
    """Scans by instant, then type and station. The instant as its distance from the epoch: the
    order of T._encode_instant's integer (that distance in whole microseconds), without dividing."""
    return (s.at - epoch, s.type, s.station)


def once_per_case(find: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A Derived method that several facts read, computed once per case (kept in the instance)."""
    name = find.__name__
    slot = f"_{name}_memo"          # not `name`: an instance attribute of that name would hide the method

    def read(self):
        memo = self.__dict__
        value = memo.get(slot, _UNKNOWN)        # no exception on the first read: that cost ~0.5 us a case
        if value is _UNKNOWN:
            value = memo[slot] = find(self)
        return value
    read.__name__ = read.__qualname__ = name
    read.__doc__ = find.__doc__
    return read


class Derived:
    """Lazily computed built-in derivations of one case at one adjudication instant."""

    def __init__(self, case: Case, as_of: datetime):
        self.case = case
        self.as_of = as_of
        self._scans = sorted(case.scans, key=_scan_order)

    def first(self, kind: str, station: str | None = None):
        for s in self._scans:
            if s.type == kind and (station is None or s.station == station):
                return s
        return None

    def signed_at(self):
        s = self.first("signed")
        return s.at if s else None

    def collected_at(self):
        s = self.first("collect") or (self._scans[0] if self._scans else None)
        return s.at if s else None

    def delivering_station(self):
        if self.case.stations and self.case.stations.delivering:
            return self.case.stations.delivering
        arrivals = [s for s in self._scans if s.type == "arrival"]
        return arrivals[-1].station if arrivals else None

    @once_per_case                                      # two facts read it
    def reference_arrival_scan(self):
        """TB-1: earliest arrival at the delivering station, else the previous
        station's latest dispatch before the reference point (signing, else as_of)."""
        station = self.delivering_station()
        if station is None:
            return None
        arrival = self.first("arrival", station)
        if arrival is not None:
            return arrival
        limit = self.signed_at() or self.as_of
        dispatches = [s for s in self._scans if s.type == "dispatch" and s.station != station and s.at <= limit]
        return dispatches[-1] if dispatches else None

    def reference_arrival(self):
        s = self.reference_arrival_scan()
        return s.at if s else None

    def reference_arrival_source(self):
        s = self.reference_arrival_scan()
        return s.type if s else None

    @once_per_case                                      # three facts read it
    def _sides(self):
        p = self.case.parcel
        if p is None:
            return None
        sides = (p.length_cm, p.width_cm, p.height_cm)
        return None if sides[0] is None or sides[1] is None or sides[2] is None else sides

    def longest_side_cm(self):
        sides = self._sides()
        return max(sides) if sides else None

    # exact whatever decimal context the caller set (money.EXACT), as money is
    def sum_of_sides_cm(self):
        sides = self._sides()
        return money.add(money.add(sides[0], sides[1]), sides[2]) if sides else None

    def volume_cm3(self):
        sides = self._sides()
        return money.EXACT.multiply(money.EXACT.multiply(sides[0], sides[1]), sides[2]) if sides else None

    def overcharge_cny(self):
        c = self.case.collection
        if c is None or c.charged_cny is None or c.quoted_cny is None:
            return None
        return money.subtract(c.charged_cny, c.quoted_cny)


def _builtin(name: str) -> Callable[[Case, Derived], Any]:
    get = lambda _case, derived: getattr(derived, name)()
    get.derived_method = name          # type: ignore[attr-defined]  # FactPlan calls Derived.<name> without this closure
    return get


BLOCKS = [f.name for f in fields.CASE.fields if f.kind == "block"]
_BUILTINS = [
    ("as_of", T.INSTANT, "the adjudication instant"),
    ("signed_at", T.INSTANT, "earliest signed scan"),
    ("collected_at", T.INSTANT, "collect scan, else the earliest scan"),
    ("delivering_station", T.TEXT, "stations.delivering, else the station of the last arrival scan"),
    ("reference_arrival", T.INSTANT, "TB-1 reference arrival"),
    ("reference_arrival_source", T.enum_type(C.REFERENCE_SOURCES), "which scan gave reference_arrival"),
    ("longest_side_cm", T.LENGTH, ""), ("sum_of_sides_cm", T.LENGTH, ""), ("volume_cm3", T.VOLUME, ""),
    ("overcharge_cny", T.MONEY, "charged minus quoted (may be zero or negative)"),
]



def fact_type(f: fields.Field) -> T.FactType:
    """The fact type rules read a case field as (the field table's `fact`)."""
    return T.enum_type(f.values) if f.fact == "enum" else T.LIST if f.fact == "list" else T.TYPES[f.fact]  # type: ignore[index]


def _list(path: str) -> Callable[[Case, Any], Any]:
    block, _, name = path.partition(".")
    return lambda case, _d: getattr(getattr(case, block), name) if getattr(case, block) else None


def base_facts(root: fields.Block = fields.CASE) -> dict[str, FactSpec]:
    """The facts of a case a rule may read, from the case field table: each field with a `fact`, each
    block's presence, and the built-in derivations. A field added to the table is one of them."""
    out: dict[str, FactSpec] = {}
    read = [(path, f) for path, f in fields.leaves(root) if f.fact is not None]
    for path, f in sorted(read, key=lambda pf: pf[1].fact == "list"):      # values first, then lists
        get = _list(path) if f.fact == "list" else _attr(path)
        out[path] = FactSpec(path, fact_type(f), f.description or "", get)
    for block in (f.name for f in root.fields if f.kind == "block"):
        out[block] = FactSpec(block, T.BLOCK, f"the `{block}` block is present", _attr(block))
    for path, ftype, doc in _BUILTINS:
        out[path] = FactSpec(path, ftype, doc, (lambda c, d: d.as_of) if path == "as_of" else _builtin(path))
    return out


BASE_FACTS: dict[str, FactSpec] = base_facts()
ISSUE_VALUES = fields.COMPLAINT["issues"].values     # complaint.issues: `contains` tests each as a flag


# The derivation functions a pack may call (FUNCTIONS) are records in derivations.py, each
# with its per-case and its columnar spelling.


def chain_spec(path: str) -> FactSpec | None:
    """Facts produced by rules themselves (forward chaining): classifications and level."""
    if path == CHAIN_LEVEL:
        return FactSpec(path, T.INT, "complaint level set by level rules (highest wins)")
    if path.startswith(CLASSIFICATION_PREFIX) and len(path) > len(CLASSIFICATION_PREFIX):
        return FactSpec(path, T.BOOL, "set by a rule that classifies the case")
    return None
