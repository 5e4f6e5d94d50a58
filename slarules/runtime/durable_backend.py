"""The durable_rules backend: the only module that imports durable_rules.

A Program becomes one durable_rules ruleset. Each case is asserted as one flat,
pre-joined fact (no multi-fact joins: upstream #381 segfaults); every rule tests
`kind == "case"` and its stratum, so nothing it writes can re-trigger it. One
catch-all "closer" per stratum, at the lowest priority, runs after that stratum's
rules, folds their classifications and complaint level into the next stratum's
fact and asserts it: forward chaining happens inside durable_rules.

The traps of durable_rules (docs/durable_rules.md) and how each is avoided:
- events are consumed by one rule -> only facts are asserted;
- `$or` fires once per true branch -> firings are de-duplicated per rule;
- a comparison with an absent field matches (seen here) -> every operand is
  guarded with `$ex`;
- 1,024 live sids, hash collisions, `delete_state` crashes -> one fixed sid per
  backend, facts retracted after every case, states never deleted;
- action exceptions are stored silently -> every action runs inside our own
  try/except, the state is checked too, and any error rebuilds the ruleset;
- background threads -> a Host whose `_run` starts none; calls are serialised
  with a lock, so many threads may share one backend;
- the definition dict is mutated on registration -> it is deep-copied.
"""
from __future__ import annotations

import copy
import itertools
import threading
from typing import Any

from durable import engine as _durable

from .backend import RunResult
from ..packs.operators import OPERATORS
from ..packs.program import CompiledRule, Leaf, Program
from .values import flag_key, key
from ..errors import EngineError
from ..packs.vocabulary import CHAIN_LEVEL, CLASSIFICATION_PREFIX

_names = itertools.count()
_SID = "slot"
CLOSER_PRI = 100_000


class _QuietHost(_durable.Host):
    """A Host that never starts its dispatch threads: actions run on the caller."""

    def _run(self) -> None:  # noqa: D401 - durable hook
        return None


def _exists(path: str) -> dict:
    return {"$ex": {key(path): 1}}


def leaf_expression(leaf: Leaf) -> dict:
    op = OPERATORS[leaf.op]
    k = key(leaf.left)
    if op.shape == "exists":
        return {"$ex" if leaf.value else "$nex": {k: 1}}
    if op.shape == "contains":
        return {"$and": [_exists(leaf.left), {flag_key(leaf.left, leaf.value): True}]}
    guards = [_exists(leaf.left)]
    if leaf.right is not None:
        guards.append(_exists(leaf.right))
        right: Any = {"$m": key(leaf.right)}
    else:
        right = leaf.value
    test = {op.durable: {k: right}} if op.durable else {k: right}   # "": durable's bare equality
    return {"$and": guards + [test]}


def expression(node) -> dict | None:
    """A condition tree as a durable_rules expression; None means always true."""
    if isinstance(node, Leaf):
        return leaf_expression(node)
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


class DurableBackend:
    """Runs a Program's rules through durable_rules, one case at a time, thread-safely."""

    def __init__(self, program: Program):
        self.program = program
        self._lock = threading.Lock()
        self._run: RunResult | None = None
        self._serial = itertools.count()
        self._by_stratum: dict[int, list[CompiledRule]] = {}
        for r in program.rules:
            self._by_stratum.setdefault(r.stratum, []).append(r)
        self._definition = self._build_definition()
        self._open()

    # -- compile -----------------------------------------------------------------------
    def _build_definition(self) -> dict:
        rules: dict[str, dict] = {}
        for index, r in enumerate(self.program.rules):
            cond = [{"kind": "case"}, {"stratum": r.stratum}]
            expr = expression(r.condition)
            if expr is not None:
                cond.append(expr)
            rules[f"r{index}"] = {"all": [{"m": {"$and": cond}}], "pri": 1 + index,
                                  "run": self._action(r.id)}
        for stratum in range(self.program.strata):
            rules[f"close{stratum}"] = {"all": [{"m": {"$and": [{"kind": "case"}, {"stratum": stratum}]}}],
                                        "pri": CLOSER_PRI + stratum, "run": self._closer(stratum)}
        return rules

    def _open(self) -> None:
        self._name = f"slarules_{next(_names)}"
        self._host = _QuietHost()
        self._host.register_rulesets({self._name: copy.deepcopy(self._definition)})

    # -- actions -----------------------------------------------------------------------
    def _action(self, rule_id: str):
        def fire(c) -> None:
            run = self._run
            try:
                if rule_id not in run.fired:
                    run.fired.append(rule_id)
            except Exception as exc:  # pragma: no cover - defensive
                run.errors.append(f"{rule_id}: {exc!r}")
        return fire

    def _closer(self, stratum: int):
        def close(c) -> None:
            run = self._run
            try:
                run.strata_closed += 1
                fired = set(run.fired)
                for r in self._by_stratum.get(stratum, []):
                    if r.id in fired:
                        if r.classify:
                            run.classifications.add(r.classify)
                        if r.level:
                            run.level = max(run.level, r.level)
                if stratum + 1 < self.program.strata:
                    nxt = dict(c.m._d)
                    nxt["stratum"] = stratum + 1
                    nxt["id"] = f"{nxt['id'].rsplit('.', 1)[0]}.{stratum + 1}"
                    nxt["sid"] = _SID
                    for name in self.program.classifications:
                        if key(CLASSIFICATION_PREFIX + name) in nxt:
                            nxt[key(CLASSIFICATION_PREFIX + name)] = name in run.classifications
                    if key(CHAIN_LEVEL) in nxt:
                        nxt[key(CHAIN_LEVEL)] = run.level
                    run.asserted.append(nxt)
                    c.assert_fact(copy.copy(nxt))
            except Exception as exc:
                run.errors.append(f"stratum {stratum} closer: {exc!r}")
        return close

    # -- run ---------------------------------------------------------------------------
    def run(self, doc: dict[str, Any]) -> RunResult:
        with self._lock:
            run = self._run = RunResult()
            first = dict(doc, kind="case", stratum=0, sid=_SID, id=f"c{next(self._serial)}.0")
            run.asserted.append(first)
            failure = None
            try:
                self._host.assert_fact(self._name, copy.copy(first))
                state = self._host.get_state(self._name, _SID)
                if state.get("exception"):
                    failure = f"an action failed inside durable_rules: {state['exception']}"
            except Exception as exc:  # durable raises plain Exceptions from C
                failure = f"durable_rules rejected the case fact: {exc!r}"
            if not failure and run.errors:
                failure = "; ".join(run.errors)
            if not failure and run.strata_closed != self.program.strata:
                failure = f"only {run.strata_closed} of {self.program.strata} strata completed"
            if failure is None:
                try:
                    for fact in run.asserted:
                        self._host.retract_fact(self._name, fact)
                except Exception as exc:
                    failure = f"could not retract the case facts: {exc!r}"
            self._run = None
            if failure is not None:
                self._open()   # start from a clean ruleset; the old one may hold stale facts
                raise EngineError(failure + " (this is a bug in slarules; please report it with the case)")
            return run
