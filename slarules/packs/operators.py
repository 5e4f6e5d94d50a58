"""The condition operators: what each one means, written once.

`{fact: PATH, OP: VALUE}` in a pack names one of these. Everything that reads a
condition (the compiler that checks it, the durable_rules and Polars backends
that run it, the three-valued reference logic, `check`'s contradiction search
and `explain`'s traces and counterfactuals) takes an operator's meaning from
this table rather than keeping its own copy, so the copies cannot drift.

An operator has a *shape*, which says how a backend builds it:
- `compare`  a fact against one constant of its type, or against another fact;
- `in`       sugar: compiled to an `any` of `eq` leaves (no backend sees `in`);
- `contains` a list fact holds a value (backends test the value's flag column);
- `exists`   the fact is recorded (true) or not (false).
Adding an operator of an existing shape is one entry below; a new shape also
needs that shape's code in the compiler and in each backend.

Values are compared *encoded* (integers in fixed units, strings, booleans), so
`compare` is plain Python on what `types.FactType.encode` gives.
"""
from __future__ import annotations

import operator as _py
from collections.abc import Callable
from typing import Any, NamedTuple

ABSENT_IS_UNKNOWN = None     # Kleene: a comparison with an absent fact is neither true nor false


class Operator(NamedTuple):       # a NamedTuple: a CLI start defines it in a tenth of a frozen dataclass's time
    name: str                          # as written in a pack
    field: str                         # its attribute on model.Compare (`is` and `in` are Python keywords)
    shape: str                         # "compare" | "in" | "contains" | "exists" (see the module doc)
    operand: str                       # what it accepts: "value" (literal, {param} or {fact}), "bool_or_text",
    #                                    "literals" (a list), "issue" (a complaint issue), "bool"
    compare: Callable[[Any, Any], bool] | None = None   # on encoded values: compare(fact, operand)
    absent: bool | None = ABSENT_IS_UNKNOWN              # the result when the left fact is absent
    ordered: bool = False              # needs an ordered fact type (lt/le/gt/ge)
    ascii: str | None = None           # as `slarules check` shows it
    symbol: str | None = None          # as `explain` shows it
    durable: str | None = None         # durable_rules operator; "" is the bare `{field: value}` equality
    polars: str | None = None          # the pl.Expr method comparing two expressions
    flip: tuple[str, int] | None = None  # how `explain` makes a true test false: ("bound", steps from the
    #                                      operand), ("negate",) a bool, ("equal",) the operand, ("drop",) the
    #                                      value from the list, ("absent",) the fact

    def when_absent(self, value: Any = None) -> bool | None:
        """The test's value when its left fact is absent (`value`: the leaf's operand)."""
        if self.shape == "exists":
            return not value
        return self.absent

    def holds(self, left: Any, value: Any) -> bool | None:
        """The three-valued meaning on one encoded value (None: the fact is absent)."""
        if left is None:
            return self.when_absent(value)
        if self.shape == "exists":
            return bool(value)
        return self.compare(left, value)    # type: ignore[misc]  # every shape but exists has one (the table)


def _in(left: Any, items: Any) -> bool:
    return left in items


def _contains(items: Any, item: Any) -> bool:
    return item in items


OPERATORS: dict[str, Operator] = {o.name: o for o in (
    Operator("eq", "eq", "compare", "value", _py.eq, ascii="=", symbol="=", durable="", polars="__eq__",
             flip=("negate", 0)),
    Operator("is", "is_", "compare", "bool_or_text", _py.eq, absent=False, ascii="=", symbol="=", durable="",
             polars="__eq__", flip=("negate", 0)),
    Operator("ne", "ne", "compare", "value", _py.ne, ascii="!=", symbol="≠", durable="$neq", polars="__ne__",
             flip=("equal", 0)),
    Operator("lt", "lt", "compare", "value", _py.lt, ordered=True, ascii="<", symbol="<", durable="$lt",
             polars="__lt__", flip=("bound", 0)),
    Operator("le", "le", "compare", "value", _py.le, ordered=True, ascii="<=", symbol="≤", durable="$lte",
             polars="__le__", flip=("bound", 1)),
    Operator("gt", "gt", "compare", "value", _py.gt, ordered=True, ascii=">", symbol=">", durable="$gt",
             polars="__gt__", flip=("bound", 0)),
    Operator("ge", "ge", "compare", "value", _py.ge, ordered=True, ascii=">=", symbol="≥", durable="$gte",
             polars="__ge__", flip=("bound", -1)),
    Operator("in", "in_", "in", "literals", _in, ascii="in", symbol="∈"),
    Operator("contains", "contains", "contains", "issue", _contains, ascii="contains", symbol="contains",
             flip=("drop", 0)),
    Operator("exists", "exists", "exists", "bool", ascii="exists", symbol="exists", flip=("absent", 0)),
)}

NAMES: tuple[str, ...] = tuple(OPERATORS)
