"""An unknown fact that could not change a comparison no longer leaves it undecided.

A derived fact that reads a fact with a finite domain (an enum: `service.route`) is absent when
that fact is, and a comparison with it is unknown (Kleene). Yet an unsigned parcel 8 days past
its promise is past the longest grace of every route: whatever the route, NR-4's total delay
holds. So, once, at compile time, for each comparison over a derived fact D that depends on one
finite fact F: a copy of D's derivations per value v of F (F replaced by v, constant parts
folded), named `D__if__F__v`, and the comparison L rewritten as

    any( all(F exists, L),                               F known: L exactly as before
         all(F absent, L[v1], ..., L[vn]),               true for every value: true
         all(F absent, any(L[v1], ..., L[vn]), F = "") ) true for some, not all: unknown, F missing

F absent, the comparison is true when it is true for every value, false when false for every
value, and unknown otherwise (the last leaf, on the absent F, is unknown and names F missing).
Kleene logic is sound over such leaves, so a tree decided this way has the outcome every value
of F would give it. The result is plain trees and derivations: every backend (durable_rules,
Polars, the columnar batch path, Spark) compiles them as it compiles any other, so one
definition decides alike everywhere. `exists` tests are never unknown and are left alone: a
case with neither a promise nor a route is still out of NR-4's scope.

Not closed (left undecided, as before): a comparison over two facts each depending on another
finite fact, a derived fact reading F inside a coalesce after another fact, and a comparison
directly on F (its value is F itself, never the same for every value).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from .operators import OPERATORS
from .program import Bound, Closed, Closure, CompiledRule, Derivation, Leaf, Node
from .vocabulary import FactSpec

SEPARATOR = "__if__"
# The value of the last leaf, `F = NEVER`: no enum holds it, so the leaf is false when F is known
# and unknown when F is absent.
NEVER = ""


# Which side of an ordered comparison is the greater when it holds: `a > b`, `a >= b` -> the left.
_GREATER_SIDE = {"gt": "left", "ge": "left", "lt": "right", "le": "right"}


def as_written(node: Any) -> Any:
    """`node` with each closed comparison back as the pack wrote it, for an analysis of what the
    rule says (`slarules check`'s contradictions): the copies per value only repeat the comparison,
    and their names are no fact a pack author wrote."""
    if isinstance(node, Closed) and node.leaf is not None:
        return node.leaf
    if isinstance(node, Leaf):
        return node
    children = tuple(as_written(c) for c in node.children)
    return node if all(a is b for a, b in zip(children, node.children)) else replace(node, children=children)


class _Closer:
    def __init__(self, derivations: list[Derivation], specs: dict[str, FactSpec]):
        self.specs = specs
        self.by_name = {d.name: d for d in derivations}     # the last of a name wins, as values.FactPlan
        self.added: list[Derivation] = []
        self.memo: dict[tuple[str, str, str], tuple[str, Any] | None] = {}
        self.depends: dict[str, frozenset[str]] = {}
        self.closures: dict[tuple[str, str], Closure | None] = {}
        self.signatures: dict[tuple, str] = {}       # a copy's function and arguments -> its name (values alike share it)

    def finite(self, path: str) -> bool:
        spec = self.specs.get(path)
        return spec is not None and path not in self.by_name and spec.type.name == "enum" and bool(spec.type.values)

    def depends_on(self, path: str) -> frozenset[str]:
        """The finite facts whose absence can leave `path` absent."""
        if path not in self.depends:
            d = self.by_name.get(path)
            if d is None:
                self.depends[path] = frozenset([path]) if self.finite(path) else frozenset()
            else:
                self.depends[path] = frozenset().union(*(self.depends_on(p) for kind, paths in d.args.values()
                                                         if kind == "coalesce" for p in paths))
        return self.depends[path]

    def substitute(self, path: str, fact: str, value: str) -> tuple[str, Any] | None:
        """`path` with `fact` = `value`: ("fact", a path) or ("const", a Python value); None if not expressible."""
        if path == fact:
            return ("const", value)
        if fact not in self.depends_on(path):
            return ("fact", path)
        memo_key = (path, fact, value)
        if memo_key not in self.memo:
            self.memo[memo_key] = self._copy(self.by_name[path], fact, value)
        return self.memo[memo_key]

    def _copy(self, d: Derivation, fact: str, value: str) -> tuple[str, Any] | None:
        args: dict[str, tuple[str, Any]] = {}
        for arg, (kind, val) in d.args.items():
            if kind != "coalesce":
                args[arg] = (kind, val)
                continue
            dependent = [fact in self.depends_on(p) for p in val]
            if dependent[dependent.index(True):].count(False) if True in dependent else False:
                return None     # a fact read after one that depends on F: with F known, that one could win
            paths: list[str] = []
            for i, p in enumerate(val):
                if dependent[i] and not all(dependent):
                    continue    # a fallback for facts the case lacks: a value of F must not stand in for them
                sub = self.substitute(p, fact, value)
                if sub is None:
                    return None
                if sub[0] == "const":
                    if i:               # coalesce(a, constant): no derivation argument says that
                        return None
                    args[arg] = sub
                    break
                paths.append(sub[1])
            else:
                args[arg] = ("coalesce", tuple(paths))
        if len(args) == len(d.fn.args) and all(kind == "const" for kind, _ in args.values()):
            try:      # all constant: its value now (the zone is no argument of a constant-only derivation)
                folded = d.fn.compute(None, **{a: v for a, (_, v) in args.items()})
            except Exception:       # noqa: BLE001  # e.g. a function that needs the case's zone: keep it a derivation
                folded = None
            if folded is not None:
                return ("const", folded)
        signature = (d.name, tuple(sorted(args.items())))
        if signature in self.signatures:
            return ("fact", self.signatures[signature])
        name = self.signatures[signature] = f"{d.name}{SEPARATOR}{fact.replace('.', '_')}__{value}"
        if name not in self.specs:
            spec = self.specs[d.name]
            self.specs[name] = FactSpec(name, spec.type, f"{spec.doc} (if {fact} were {value})")
            self.added.append(Derivation(name, d.fn, args))
        return ("fact", name)

    def closure(self, derived: str, fact: str) -> Closure | None:
        if (derived, fact) not in self.closures:
            copies: list[tuple[str, str]] = []
            for v in self.specs[fact].type.values:
                sub = self.substitute(derived, fact, v)
                if sub is None or sub[0] != "fact":
                    copies = []
                    break
                copies.append((v, sub[1]))
            self.closures[(derived, fact)] = Closure(fact, derived, tuple(copies)) if copies else None
        return self.closures[(derived, fact)]

    # -- condition trees ------------------------------------------------------------------
    def tree(self, node: Any) -> Any:
        if isinstance(node, Leaf):
            return self.leaf(node)
        children = tuple(self.tree(c) for c in node.children)
        return node if all(a is b for a, b in zip(children, node.children)) else replace(node, children=children)

    def leaf(self, leaf: Leaf) -> Leaf | Node:
        operator = OPERATORS[leaf.op]
        if operator.shape in ("exists", "contains") or operator.when_absent(leaf.value) is not None:
            return leaf            # decided whether its fact is there or not
        derived = [p for p in leaf.paths() if p in self.by_name]
        facts = frozenset().union(*(self.depends_on(p) for p in derived))
        if len(facts) != 1:
            return leaf
        (fact,) = facts
        closures = [self.closure(p, fact) for p in derived if fact in self.depends_on(p)]
        if any(c is None for c in closures):
            return leaf
        copies: dict[str, dict[str, str]] = {c.derived: dict(c.copies) for c in closures if c is not None}
        values = self.specs[fact].type.values
        per_value = tuple(dict.fromkeys(replace(leaf, left=copies.get(leaf.left, {}).get(v, leaf.left),
                                  right=leaf.right and copies.get(leaf.right, {}).get(v, leaf.right))
                          for v in values))     # values whose copies are alike test once
        bound = None
        sides = [side for side in ("left", "right") if getattr(leaf, side) in copies]
        if len(sides) == 1 and leaf.op in _GREATER_SIDE:
            side = sides[0]
            d = getattr(leaf, side)
            bound = Bound(fact, d, tuple(copies[d].items()), greatest_if_true=side != _GREATER_SIDE[leaf.op])
        known, absent = Leaf("exists", fact, True, origin=leaf.origin), Leaf("exists", fact, False, origin=leaf.origin)
        every = Node("all", (absent, *per_value), origin=leaf.origin)
        return Closed("any", (
            Node("all", (known, leaf), origin=leaf.origin),
            every,
            Node("all", (absent, Node("any", per_value, origin=leaf.origin),
                         Leaf("eq", fact, NEVER, shown=NEVER, origin=leaf.origin)), origin=leaf.origin),
        ), origin=leaf.origin, firing=Node("any", (leaf, every), origin=leaf.origin), leaf=leaf, fact=fact,
            bound=bound)


def closed_nodes(node: Any, needed: bool = False) -> list[Closed]:
    """The closed comparisons of a tree, in order; `needed`: only those the tree cannot hold
    without (reached through `all` nodes alone)."""
    if isinstance(node, Closed):
        return [node]
    if isinstance(node, Leaf) or (needed and node.op != "all" and len(node.children) > 1):
        return []
    return [c for child in node.children for c in closed_nodes(child, needed)]


def figures(rule: CompiledRule) -> dict[str, Bound]:
    """For a fired rule's message: each derived fact it compares through a closed comparison the
    rule needs, and the figure that held it (the rule fired, so each such comparison held). A fact
    two comparisons bound differently has no single figure and keeps showing as absent ("—")."""
    out: dict[str, Bound] = {}
    clashes: set[str] = set()
    for node in closed_nodes(rule.scope, needed=True) + closed_nodes(rule.when, needed=True):
        b = node.bound
        if b is None:
            continue
        if b.derived in out and out[b.derived] != b:
            clashes.add(b.derived)
        out.setdefault(b.derived, b)
    return {d: b for d, b in out.items() if d not in clashes}


def close_unknowns(rules: list[CompiledRule], derivations: list[Derivation],
                   specs: dict[str, FactSpec]) -> tuple[list[Derivation], tuple[Closure, ...]]:
    """Rewrite every rule's scope and `when` in place; returns the derivations to run (the copies
    after the ones they read) and the closures made (for `explain`). `specs` gains the copies."""
    closer = _Closer(derivations, specs)
    for rule in rules:
        rule.scope = closer.tree(rule.scope)
        rule.when = closer.tree(rule.when)
        rule.__dict__.pop("condition", None)         # the cached scope-and-when, rebuilt from the new trees
        rule.figures = figures(rule)
    return derivations + closer.added, tuple(c for c in closer.closures.values() if c is not None)
