"""The facts a rule may test, and the small declared vocabulary of derivations.

A pack never contains code. It names facts from this table (the case's fields,
plus the built-in derived values of builtins.py) and may declare more derived values
by calling one of the `FUNCTIONS` below with facts and parameters. Each entry has
a type, so a pack is type-checked when it is loaded, not when a case arrives.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..case import fields
from . import types as T
from .builtins import BUILTINS, Builtin, Case, Derived
from .derivations import FUNCTIONS, Function  # noqa: F401  # the pack vocabulary: read from here

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


# ---- derived values every pack may use: builtins.py (computed per case, lazily) -------

def _builtin(record: Builtin) -> Callable[[Case, Derived], Any]:
    per_case = record.per_case
    get = lambda _case, derived: per_case(derived)
    get.per_case = per_case            # type: ignore[attr-defined]  # FactPlan calls it without this closure
    return get


BLOCKS = [f.name for f in fields.CASE.fields if f.kind == "block"]
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
    out["as_of"] = FactSpec("as_of", T.INSTANT, "the adjudication instant", lambda c, d: d.as_of)
    for b in BUILTINS.values():
        if b.type is not None:       # a step other built-ins read is no fact
            out[b.name] = FactSpec(b.name, b.type, b.doc, _builtin(b))
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
