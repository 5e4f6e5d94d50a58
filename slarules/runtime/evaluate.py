"""Three-valued evaluation of a condition tree over an encoded case document.

The backends decide what fires; this module answers the questions around it:
which facts were missing when a rule could not be decided (Kleene logic: an
absent fact is unknown, not false), and which labelled branches of an `any`
held (OV-1 lists every threshold crossed). For monotone trees (no negation) a
tree is true here exactly when durable_rules fires it; tests check that.
"""
from __future__ import annotations

from typing import Any

from ..packs.operators import OPERATORS
from ..packs.program import Leaf, Node, walk
from .values import flag_key, key


def _once(compile_fn):
    """`compile_fn(node)` built once per tree object: the plain calls below reuse it.

    Keyed by identity (a tree may be hashed only at the cost of walking it); the
    entry holds the tree, so its id is not reused while cached; bounded.
    """
    built: dict[int, tuple[Any, Any]] = {}

    def compiled(node):
        hit = built.get(id(node))
        if hit is not None and hit[0] is node:
            return hit[1]
        if len(built) >= 4096:
            built.clear()
        fn = compile_fn(node)
        built[id(node)] = (node, fn)
        return fn
    return compiled


def value(node, doc: dict[str, Any]) -> bool | None:
    """The tree's Kleene value for one document: True, False or None (unknown)."""
    return _tree(node)(doc)



def unknown_facts(node, doc: dict[str, Any]) -> list[str]:
    """Absent facts that keep an undecided tree undecided."""
    return _unknown(node)(doc)


def true_labels(node, doc: dict[str, Any]) -> list[str]:
    """Labels of the branches that held, in pack order."""
    return _labels(node)(doc)


def unknowable_keys(node) -> tuple[str, ...]:
    """The doc keys whose absence could leave the tree unknown, in tree order: each comparison's
    left fact unless its operator decides an absent fact (`exists`, `is`), and a fact operand."""
    out: dict[str, None] = {}
    for leaf in walk(node):
        if OPERATORS[leaf.op].when_absent(leaf.value) is None:
            out[key(leaf.left)] = None
        if leaf.right is not None:
            out[key(leaf.right)] = None
    return tuple(out)


def compile_tree(node):
    """`value` as a closure built once (keys and operators resolved): the one evaluator.

    The verdict asks every rule's scope and condition per case; walking the
    tree each time spent most of a verdict's time re-deriving field names, so
    the tree is compiled, and the plain functions above call the same closures.
    """
    if isinstance(node, Leaf):
        return _compile_leaf(node)
    fns = tuple(compile_tree(c) for c in node.children)
    decisive, other = (False, True) if node.op == "all" else (True, False)

    def tree(doc: dict[str, Any]) -> bool | None:
        unknown = False
        for fn in fns:
            r = fn(doc)
            if r is decisive:
                return decisive
            if r is None:
                unknown = True
        return None if unknown else other
    return tree


def _compile_leaf(leaf: Leaf):
    operator = OPERATORS[leaf.op]
    left = key(leaf.left)
    want = leaf.value
    if operator.shape == "exists":
        return lambda doc: (left in doc) == want
    absent = operator.when_absent(want)
    if operator.shape == "contains":
        flag = flag_key(leaf.left, want)
        return lambda doc: bool(doc.get(flag)) if left in doc else absent
    op = operator.compare
    if leaf.right is not None:
        right = key(leaf.right)

        def compare_facts(doc):
            if left not in doc:
                return absent
            return op(doc[left], doc[right]) if right in doc else None     # type: ignore[misc]
        return compare_facts
    return lambda doc: op(doc[left], want) if left in doc else absent   # type: ignore[misc]  # shapes with a compare


def compile_labels(node):
    """`true_labels` as a closure built once: the labels of the branches that held, in pack order."""
    holds = compile_tree(node)
    label = getattr(node, "label", None)
    kids = tuple(compile_labels(c) for c in node.children) if isinstance(node, Node) else ()

    def labels(doc: dict[str, Any]) -> list[str]:
        if holds(doc) is not True:
            return []
        out = [label] if label else []
        for kid in kids:
            out.extend(kid(doc))
        return out
    return labels


def compile_unknown(node):
    """`unknown_facts` as a closure built once: the absent facts keeping an undecided tree undecided."""
    holds = compile_tree(node)
    if isinstance(node, Leaf):
        pairs = tuple((p, key(p)) for p in node.paths())
        return lambda doc: [p for p, k in pairs if k not in doc] if holds(doc) is None else []
    kids = tuple(compile_unknown(c) for c in node.children)

    def unknown(doc: dict[str, Any]) -> list[str]:
        if holds(doc) is not None:
            return []
        out: list[str] = []
        for kid in kids:
            out.extend(kid(doc))
        return out
    return unknown


_tree, _labels, _unknown = _once(compile_tree), _once(compile_labels), _once(compile_unknown)
