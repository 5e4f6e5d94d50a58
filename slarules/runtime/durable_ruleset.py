"""The ruleset slarules hands durable_rules, and whether durable_rules can hold it, without durable_rules.

Built here rather than in durable_backend so that the compiler, and so `slarules check --no-analysis`
and every loader, refuse packs durable_rules cannot hold before anything runs: batch workers and
Spark executors never import durable_rules, and a ruleset past its limits does not fail cleanly (it
hangs, fires a phantom action, or fails on some cases only).

durable_rules 2.0.28 turns each rule into a path of "alpha" tests (rete.c `createAlpha`): a `$and`
chains its tests, identical tests after the same test are shared, a `$or` joins its branches in a
fresh node. Its limits are per node of that network, not per ruleset size (measured: see
docs/durable_rules.md); `capacity` walks the same network and names the first rule past one.
"""
from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import count, pairwise, product
from typing import Any, NamedTuple

from ..packs.operators import OPERATORS
from ..packs.program import (
    DURABLE_MAX_EXPRESSIONS,
    DURABLE_MAX_JOINS,
    DURABLE_MAX_NEXT,
    DURABLE_MAX_PENDING,
    DURABLE_MAX_PROPERTIES,
    DURABLE_MAX_RULES,
    DURABLE_MAX_RULES_PER_TEST,
    Closed,
    Leaf,
    Program,
    walk,
)
from .evaluate import unknowable_keys
from .values import flag_key, key

CLOSER_PRI = 100_000
SCOPE_PRI = 50_000
RULE, SCOPE, CLOSE = 0, 1, 2          # what a durable rule's action does
FACT_OVERHEAD = 4                     # kind, stratum, sid, id: in every fact beside the tested fields


def _exists(path: str) -> dict:
    return {"$ex": {key(path): 1}}


def leaf_expression(leaf: Leaf) -> dict:
    """A comparison as durable_rules tests it; an absent operand leaves it unknown, never true.

    durable_rules reaches a test with a constant only through a property of the fact named as its
    left side (events.c handleAlpha looks the fact's properties up in the node's hash set), so an
    absent left side never passes it and needs no `$ex` test before it: each such test was one more
    node of the network, walked over all the fact's properties for every case. A test against
    another field is pushed without being evaluated there, and an absent right side passes it
    (docs/durable_rules.md): the right side is tested with `$ex` before it.
    """
    op = OPERATORS[leaf.op]
    k = key(leaf.left)
    if op.shape == "exists":
        return {"$ex" if leaf.value else "$nex": {k: 1}}
    if op.shape == "contains":          # a value flag is in the doc only when its list is
        return {flag_key(leaf.left, leaf.value): True}
    if leaf.right is None:
        return {op.durable: {k: leaf.value}} if op.durable else {k: leaf.value}   # "": durable's bare equality
    test = {op.durable: {k: {"$m": key(leaf.right)}}} if op.durable else {k: {"$m": key(leaf.right)}}
    return {"$and": [_exists(leaf.right), test]}


def expression(node) -> dict | None:
    """A condition tree as a durable_rules expression; None means always true."""
    if isinstance(node, Leaf):
        return leaf_expression(node)
    if isinstance(node, Closed) and node.firing is not None:
        node = node.firing        # what holds, without what only tells false from unknown (packs/unknowns.py)
    parts = [expression(c) for c in node.children]
    if node.op == "all":
        parts = [p for p in parts if p is not None]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}
    if any(p is None for p in parts):
        return None
    if not parts:  # an empty `any` is false: test a field no fact ever has
        return {"$ex": {"__never__": 1}}
    return parts[0] if len(parts) == 1 else {"$or": parts}


def tested_keys(node) -> set[str]:
    """The fact fields a condition tree reads (both operands, and a list's value flags)."""
    out: set[str] = set()
    for leaf in walk(node):
        if leaf.op == "contains":         # only its value flag (leaf_expression)
            out.add(flag_key(leaf.left, leaf.value))
            continue
        out.add(key(leaf.left))
        if leaf.right is not None:
            out.add(key(leaf.right))
    return out


@dataclass
class Ruleset:
    """A Program as durable_rules rules: pack rules, one "scope" rule per distinct scope, one closer per stratum."""

    definition: dict[str, dict] = field(default_factory=dict)
    actions: dict[str, tuple[int, Any]] = field(default_factory=dict)   # durable rule -> (RULE|SCOPE|CLOSE, payload)
    tested: list[set[str]] = field(default_factory=list)                # per stratum: the fields its rules test
    always_in_scope: frozenset[str] = frozenset()
    scopes: int = 0


def ruleset(program: Program) -> Ruleset:
    """The durable_rules rules for `program`: every rule tests `kind == "case"` and its stratum, so
    nothing it writes can re-trigger it; the scope rules say which rules are in scope where the
    verdict needs to know; each stratum's closer, at the lowest priority, runs after its rules."""
    out = Ruleset(tested=[set() for _ in range(program.strata)])
    for index, r in enumerate(program.rules):
        cond: list[dict] = [{"kind": "case"}, {"stratum": r.stratum}]
        expr = expression(r.condition)
        if expr is not None:
            cond.append(expr)
        out.definition[f"r{index}"] = {"all": [{"m": {"$and": cond}}], "pri": 1 + index}
        out.actions[f"r{index}"] = (RULE, r.id)
        out.tested[r.stratum] |= tested_keys(r.condition)
    # For the verdict's `deadlines` (a deadline rule whose scope holds) and `missing` (a rule whose scope
    # holds while a field that could leave its condition unknown is absent): one rule per distinct
    # (stratum, scope as durable_rules sees it, such fields). A rule that cannot be undecided and has no
    # deadline needs none. Keyed by the expression, not the tree: two rules' equal scopes written on
    # different lines are one scope.
    scopes: dict[tuple[int, str, tuple[str, ...] | None], list[str]] = {}
    scope_of = {r.id: expression(r.scope) for r in program.rules}
    out.always_in_scope = frozenset(rule for rule, expr in scope_of.items() if expr is None)
    for r in program.rules:
        if r.id in out.always_in_scope:
            continue
        unknowable = None if r.deadline is not None else unknowable_keys(r.when)
        if unknowable != ():
            scope = json.dumps(scope_of[r.id], sort_keys=True)
            scopes.setdefault((r.stratum, scope, unknowable), []).append(r.id)
    by_id = {r.id: r for r in program.rules}
    for n, ((stratum, _, unknowable), ids) in enumerate(scopes.items()):
        cond = [{"kind": "case"}, {"stratum": stratum}]
        expr = scope_of[ids[0]]
        if expr is not None:
            cond.append(expr)
        if unknowable:           # `$or` fires once per true branch: in_scope is a set
            absent = [{"$nex": {k: 1}} for k in unknowable]
            cond.append(absent[0] if len(absent) == 1 else {"$or": absent})
        out.definition[f"s{n}"] = {"all": [{"m": {"$and": cond}}], "pri": SCOPE_PRI + n}
        out.actions[f"s{n}"] = (SCOPE, tuple(ids))
        out.tested[stratum] |= tested_keys(by_id[ids[0]].scope) | set(unknowable or ())
    out.scopes = len(scopes)
    for stratum in range(program.strata):
        out.definition[f"close{stratum}"] = {"all": [{"m": {"$and": [{"kind": "case"}, {"stratum": stratum}]}}],
                                             "pri": CLOSER_PRI + stratum}
        out.actions[f"close{stratum}"] = (CLOSE, stratum)
    for fields in out.tested:
        fields.discard("__never__")
    return out


def short_names(definition: dict[str, dict], also: Iterable[str] = ()) -> tuple[dict[str, dict], dict[str, str]]:
    """The definition with every field it tests renamed to one or two letters, and the renaming.

    durable_rules' C core parses each asserted fact's text and hashes every property name character by
    character, and writes the fact out again in each action's message: with the shipped packs, long
    names ("delivery__proxy_id_checked") were most of a fact's text. The renaming is a bijection on
    the fields the rules test (the network and its limits are the same); `sid` and `id`, durable_rules'
    own fields, are never tested and never given as a short name.
    """
    fields: set[str] = set(also)         # fields a fact carries that no rule tests: a name each too
    for spec in definition.values():
        _fields_of(spec["all"][0]["m"], fields)
    names = _short_names()
    short = {name: next(names) for name in sorted(fields)}
    renamed = {rule: {**spec, "all": [{"m": _renamed(spec["all"][0]["m"], short)}]}
               for rule, spec in definition.items()}
    return renamed, short


def _short_names() -> Iterator[str]:
    """a..z, A..Z, then two letters, three...: each with a hash no other name has, `id` and `sid`
    (durable_rules' own fields) included. durable_rules knows a property by its 32-bit hash alone
    (json.c getStringAndHash, events.c handleAlpha), so two names hashing alike would be one field."""
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    taken = {_fnv1a("id"), _fnv1a("sid")}
    for length in count(1):
        for name in map("".join, product(letters, repeat=length)):
            h = _fnv1a(name)
            if h not in taken:
                taken.add(h)
                yield name
    raise AssertionError("unreachable")  # pragma: no cover


def _fnv1a(name: str) -> int:
    """The hash durable_rules gives a property name (32-bit FNV-1a over its UTF-8 bytes)."""
    h = 0x811C9DC5
    for byte in name.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def _test_parts(expr: dict) -> tuple[str, str, Any]:
    """(operator or "" for bare equality, field, value) of one test; ("$and"/"$or", "", parts) of a join."""
    (name, arg), = expr.items()
    if name in ("$and", "$or"):
        return name, "", arg
    if name in _OPS:
        (field_name, value), = arg.items()
        return name, field_name, value
    return "", name, arg


def _fields_of(expr: dict, out: set[str]) -> None:
    op, name, value = _test_parts(expr)
    if op in ("$and", "$or"):
        for part in value:
            _fields_of(part, out)
        return
    out.add(name)
    if isinstance(value, dict):           # another field: {"$m": name}, the only value that names one
        (ref, other), = value.items()
        if ref != "$m":
            raise ValueError(f"a test's value {value!r} is not a field reference")
        out.add(other)


def _renamed(expr: dict, short: dict[str, str]) -> dict:
    op, name, value = _test_parts(expr)
    if op in ("$and", "$or"):
        return {op: [_renamed(part, short) for part in value]}
    if isinstance(value, dict):
        value = {"$m": short[value["$m"]]}
    return {op: {short[name]: value}} if op else {short[name]: value}


# -- capacity ---------------------------------------------------------------------------------


def size(program: Program, rules: Ruleset) -> list[Overflow]:
    """The limits on the ruleset as a whole: how many rules, how many fields a stratum's fact carries."""
    out: list[Overflow] = []
    if len(rules.definition) > DURABLE_MAX_RULES:
        out.append(Overflow(None, "when", f"these packs need {len(rules.definition)} durable_rules rules "
                            f"({len(program.rules)} rules, {rules.scopes} distinct scopes, {program.strata} strata); "
                            f"durable_rules holds at most {DURABLE_MAX_RULES}", "split the packs between engines"))
    for stratum, fields in enumerate(rules.tested):
        if len(fields) + FACT_OVERHEAD > DURABLE_MAX_PROPERTIES:
            first = next((r.id for r in program.rules if r.stratum == stratum), None)
            out.append(Overflow(first, "when", f"stratum {stratum} of these packs tests {len(fields)} facts; a "
                                f"durable_rules fact holds at most {DURABLE_MAX_PROPERTIES - FACT_OVERHEAD}",
                                "split the packs between engines"))
    return out



class Overflow(NamedTuple):
    """A limit of durable_rules that `rule` (a pack rule's id) takes the ruleset past."""

    rule: str | None          # None: the packs as a whole
    part: str                 # "when" (the rule's condition) or "scope" (the scope rule it shares)
    message: str
    hint: str


class _Node:
    """One alpha test of durable_rules' network: (field, operator, value), what follows it, what ends on it."""

    __slots__ = ("ends", "joins", "next", "owner", "test")

    def __init__(self, test: tuple, owner: str) -> None:
        self.test = test
        self.next: dict[tuple, _Node] = {}      # conjunctive tests (a hash set of 512 slots in C)
        self.joins: list[_Node] = []            # `$nex` tests and `$or` joins (a list of 128 in C)
        self.ends: list[str] = []               # durable rules ending here (a list of 256 in C)
        self.owner = owner                      # the durable rule that first made it


_OPS = {"$ex", "$nex", "$eq", "$neq", "$gt", "$gte", "$lt", "$lte", "$mt", "$imt", "$iall", "$iany"}


def _value_key(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)         # durable_rules compares numbers as numbers: 1 and 1.0 are one test
    return json.dumps(value, sort_keys=True)


class _Network:
    def __init__(self) -> None:
        self.root = _Node(("root",), "")
        self.overflows: list[tuple[str, str]] = []     # (durable rule, what)

    def add(self, node: _Node, expr: dict, rule: str) -> _Node:
        """Link `expr` after `node` as rete.c's createAlpha does; the node it ends on."""
        (name, arg), = expr.items()
        if name == "$and":
            for part in arg:
                node = self.add(node, part, rule)
            return node
        if name == "$or":
            join = _Node(("join",), rule)         # createForwardAlpha: never shared
            for part in arg:
                end = self.add(node, part, rule)
                self.link(end.joins, join, DURABLE_MAX_JOINS, rule, "joins")
            return join
        if name in _OPS:
            (fact, value), = arg.items()
            op = name
        else:                                       # {field: value}: equality
            fact, value, op = name, arg, "$eq"
        test = (fact, op, _value_key(value))
        if op == "$nex":
            for child in node.joins:
                if child.test == test:
                    return child
            child = _Node(test, rule)
            self.link(node.joins, child, DURABLE_MAX_JOINS, rule, "joins")
            return child
        known = node.next.get(test)
        if known is not None:
            return known
        child = node.next[test] = _Node(test, rule)
        if len(node.next) > DURABLE_MAX_NEXT:
            self.overflows.append((rule, "next"))
        return child

    def link(self, joins: list[_Node], child: _Node, limit: int, rule: str, what: str) -> None:
        joins.append(child)
        if len(joins) > limit:
            self.overflows.append((rule, what))

    def pending(self) -> tuple[int, str]:
        """The most tests durable_rules may hold pending at once for one fact (events.c `handleAlpha`
        keeps them on a stack of 64), assuming every test that can hold with its siblings does; and
        the durable rule that made the node where it is reached."""
        memo: dict[int, tuple[int, str]] = {}

        def depth(node: _Node) -> tuple[int, str]:
            if id(node) in memo:
                return memo[id(node)]
            memo[id(node)] = (0, node.owner)
            kids = list(node.joins) + list(node.next.values())
            absent = {j.test[0] for j in node.joins if j.test[1:2] == ("$nex",)}    # pushed when the field is absent
            width = len(node.joins) - len(absent)                                    # `$or` joins: always pushed
            by_fact: dict[str, list[tuple]] = {}
            for test in node.next:                                                   # pushed when it holds
                by_fact.setdefault(test[0], []).append(test)
            for fact in absent | set(by_fact):
                width += max(fact in absent, _together(by_fact.get(fact, [])))
            best = (width, node.owner)
            for child in kids:
                d, owner = depth(child)
                if width - 1 + d > best[0]:
                    best = (width - 1 + d, owner)
            memo[id(node)] = best
            return best
        return depth(self.root)


def _together(tests: list[tuple]) -> int:
    """The most of these tests on one field that one value can pass (a kind of test not modelled: all).

    A field holds values of one type (facts are typed), so an order test with a number is
    passed by numbers only; equality is by value, 1 and 1.0 alike, never True and 1.
    """
    if len(tests) < 2:
        return len(tests)
    always = 0
    equal: Counter[Any] = Counter()
    unequal: Counter[Any] = Counter()
    order: dict[str, list[float]] = {"$gt": [], "$gte": [], "$lt": [], "$lte": []}
    for _, op, raw in tests:
        value = json.loads(raw)
        if op == "$ex":
            always += 1
        elif op in ("$eq", "$neq") and not isinstance(value, (dict, list)):
            (equal if op == "$eq" else unequal)[_same(value)] += 1
        elif op in order and _number(value):
            order[op].append(value)
        else:
            return len(tests)
    for values in order.values():
        values.sort()
    numbers = sorted({v for values in order.values() for v in values} |
                     {v for _, v in [*equal, *unequal] if _number(v)})
    probes: list[Any] = [v for _, v in [*equal, *unequal]] + ["\0other", True, False]
    probes += [a + (b - a) / 2 for a, b in pairwise(numbers)]
    if numbers:
        probes += [numbers[0] - 1, numbers[-1] + 1]
    unequal_total = sum(unequal.values())

    def passed(v: Any) -> int:
        n = always + equal[_same(v)] + unequal_total - unequal[_same(v)]
        if _number(v):
            n += (bisect_left(order["$gt"], v) + bisect_right(order["$gte"], v)
                  + len(order["$lt"]) - bisect_right(order["$lt"], v) + len(order["$lte"]) - bisect_left(order["$lte"], v))
        return n
    return max(map(passed, probes))


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(v: Any) -> tuple:
    """A value as durable_rules' equality sees it."""
    return ("number", float(v)) if _number(v) else (type(v).__name__, v)


def _expressions(expr: dict) -> int:
    """The entries a rule takes in its C expression sequence (rete.c APPEND_EXPRESSION/GET_EXPRESSION):
    two per `$and` and `$or`, one per test whose right side is another field."""
    (name, arg), = expr.items()
    if name in ("$and", "$or"):
        return 2 + sum(_expressions(part) for part in arg)
    if name in _OPS and isinstance(arg, dict):
        (_, value), = arg.items()
        return 1 if isinstance(value, dict) and "$m" in value else 0
    return 0


def capacity(program: Program, rules: Ruleset | None = None) -> list[Overflow]:
    """Every limit of durable_rules these packs pass, each named by the first pack rule past it.

    The limits (packs/program.py) were measured on durable_rules 2.0.28; past them it hangs
    registering or asserting, fires an action no rule matched, or fails some cases only.
    The compiler asks this (tens of ms: the network is walked); a backend asks `size` only.
    """
    rules = rules or ruleset(program)
    out = size(program, rules)

    def pack_rule(name: str) -> tuple[str | None, str]:
        what, payload = rules.actions[name]
        if what == RULE:
            return payload, "when"
        if what == SCOPE:
            return payload[0], "scope"
        return None, "when"

    split = "split the packs between engines, or name part of the conditions as a derived fact"
    network = _Network()
    for name, spec in rules.definition.items():

        expr = spec["all"][0]["m"]
        rule, part = pack_rule(name)
        if _expressions(expr) >= DURABLE_MAX_EXPRESSIONS:
            out.append(Overflow(rule, part, f"durable_rules cannot hold the {'condition' if part == 'when' else part} "
                                f"of rule `{rule}` in one rule: it takes {_expressions(expr)} entries of "
                                f"durable_rules' expression sequence, which holds {DURABLE_MAX_EXPRESSIONS - 1} "
                                "(error 113)", "durable_rules holds about 15 tests per rule: split it into two "
                                "rules, or name part of it as a derived fact"))
            continue
        end = network.add(network.root, expr, name)
        end.ends.append(name)
        if len(end.ends) > DURABLE_MAX_RULES_PER_TEST:
            network.overflows.append((name, "ends"))
    said: set[str] = set()
    for name, what in network.overflows:
        if what in said:
            continue
        said.add(what)
        rule, part = pack_rule(name)
        message = {
            "next": f"more than {DURABLE_MAX_NEXT} different tests follow one test (durable_rules hangs)",
            "joins": f"more than {DURABLE_MAX_JOINS} absence tests or `any` branches follow one test "
                     "(durable_rules reads past its list)",
            "ends": f"more than {DURABLE_MAX_RULES_PER_TEST} rules end on the same tests (durable_rules fires an "
                    "action no rule matched)",
        }[what]
        out.append(Overflow(rule, part, f"durable_rules cannot hold these packs from rule `{rule}` on: {message}",
                            split))
    pending, owner = network.pending()
    if pending > DURABLE_MAX_PENDING:
        rule, part = pack_rule(owner) if owner else (None, "when")
        out.append(Overflow(rule, part, f"durable_rules cannot hold these packs: up to {pending} of their tests can "
                            f"hold together for one case after the tests rule `{rule}` starts with, and durable_rules "
                            f"keeps at most {DURABLE_MAX_PENDING} pending (error 303 on such a case)",
                            "give fewer rules the same first tests, or name a shared part of them as a derived fact"))
    return out
