"""Three-valued evaluation of a condition tree over an encoded case document.

The backends decide what fires; this module answers the questions around it:
which facts were missing when a rule could not be decided (Kleene logic: an
absent fact is unknown, not false), and which labelled branches of an `any`
held (OV-1 lists every threshold crossed). For monotone trees (no negation) a
tree is true here exactly when durable_rules fires it; tests check that.
"""
from __future__ import annotations

import operator
from typing import Any

from .compiler import Leaf, Node
from .derive import flag_key, key

_OPS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
        "ge": operator.ge}


def leaf_value(leaf: Leaf, doc: dict[str, Any]) -> bool | None:
    left = key(leaf.left)
    if leaf.op == "exists":
        return (left in doc) == leaf.value
    if left not in doc:
        return False if leaf.op == "is" else None
    if leaf.op == "contains":
        return bool(doc.get(flag_key(leaf.left, leaf.value)))
    if leaf.right is not None:
        right = key(leaf.right)
        if right not in doc:
            return None
        return _OPS[leaf.op](doc[left], doc[right])
    return _OPS["eq" if leaf.op == "is" else leaf.op](doc[left], leaf.value)


def value(node, doc: dict[str, Any]) -> bool | None:
    if isinstance(node, Leaf):
        return leaf_value(node, doc)
    results = [value(c, doc) for c in node.children]
    if node.op == "all":
        if any(r is False for r in results):
            return False
        return None if any(r is None for r in results) else True
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def unknown_facts(node, doc: dict[str, Any]) -> list[str]:
    """Absent facts that keep an undecided tree undecided."""
    if value(node, doc) is not None:
        return []
    if isinstance(node, Leaf):
        return [p for p in node.paths() if key(p) not in doc]
    out: list[str] = []
    for child in node.children:
        out.extend(unknown_facts(child, doc))
    return out


def true_labels(node, doc: dict[str, Any]) -> list[str]:
    """Labels of the branches that held, in pack order."""
    out: list[str] = []
    label = getattr(node, "label", None)
    if value(node, doc) is True:
        if label:
            out.append(label)
        if isinstance(node, Node):
            for child in node.children:
                out.extend(true_labels(child, doc))
    return out
