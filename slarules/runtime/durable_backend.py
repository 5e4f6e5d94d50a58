"""The durable_rules backend: the only module that imports durable_rules.

A Program becomes one durable_rules ruleset, driven through durable_rules' C
engine directly (`durable_rules_engine`: create_ruleset, assert_fact,
start_action_for_state, complete_and_start_action, retract_fact), not through its
Python `Host`, which JSON-encodes and decodes the whole fact document and the
state around every fired action. Each case is asserted as one flat, pre-joined
fact per stratum (no multi-fact joins: upstream #381 segfaults) carrying only the
fields that stratum's rules test; every rule tests `kind == "case"` and its
stratum, so nothing it writes can re-trigger it. durable_rules decides which
rules fire and which rules are in scope where the verdict needs to know (a
"scope" rule per distinct scope); the action it starts is named in the first bytes of its message,
so no message is decoded. One catch-all "closer" per stratum, at the lowest
priority, runs after that stratum's rules: its action folds their
classifications and complaint level into the next stratum's fact and asserts it
while the action is open, so forward chaining happens inside durable_rules.

The traps of durable_rules (docs/durable_rules.md) and how each is avoided (tests in
tests/test_durable_traps.py unless named):
- events are consumed by one rule -> only facts are asserted;
- `$or` fires once per true branch -> firings are de-duplicated per rule;
- a comparison with an absent field matches (seen here) -> every operand is
  guarded with `$ex`;
- MessageNotHandled / MessageObserved -> the closers match every case fact, ids
  are unique per case; any other result code of an assert or retract is an error;
- 1,024 live sids, hash collisions, `delete_state` crashes -> one fixed sid per
  backend, facts retracted after every case (by sid and id: durable_rules finds a
  fact by them, so the whole fact need not be parsed again), states never deleted;
- action exceptions are stored silently -> no Python action runs inside
  durable_rules at all: each action is run here, inside our own try/except, and
  any error (ours or a result code from C) abandons the ruleset for a new one;
- 255 properties per fact -> each stratum's fact carries only the fields its rules
  test, checked when the ruleset is built; 512 rules hang -> refused when built;
- background threads -> no Host at all: everything runs on the calling thread,
  and calls are serialised with a lock, so many threads may share one backend;
- the definition dict is mutated on registration (by the Host) -> it is only
  serialised here, never handed to the Host.
"""
from __future__ import annotations

import itertools
import json
import threading
import weakref
from typing import Any

import durable_rules_engine as _c  # durable_rules' C core (the `durable` package's own import)
import msgspec
from durable import engine as _durable

from ..errors import EngineError, PackError
from ..packs.operators import OPERATORS
from ..packs.program import (
    DURABLE_MAX_PROPERTIES as MAX_PROPERTIES,
    DURABLE_MAX_RULES as MAX_RULES,
    Leaf,
    Program,
    walk,
)
from .backend import RunResult
from .chaining import chain_of
from .evaluate import unknowable_keys
from .values import fact_plan, flag_key, key

_names = itertools.count()
_SID = "slot"
CLOSER_PRI = 100_000
SCOPE_PRI = 50_000
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_msgspec_encode = msgspec.json.Encoder().encode


def _fact_text(fact: dict[str, Any]) -> str:
    """A flat fact as JSON text, the same text as `_dumps` (compact, UTF-8 unescaped).

    msgspec writes a flat dict of str/int/bool ~10x faster than json's encoder;
    what it refuses (a lone surrogate) goes through json as before.
    """
    try:
        return _msgspec_encode(fact).decode()
    except Exception:  # noqa: BLE001  # msgspec cannot encode it: json can
        return _dumps(fact)


class _QuietHost(_durable.Host):
    """A Host that never starts its dispatch threads (benchmarks/run.py's naive contender uses it)."""

    def _run(self) -> None:
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


_RULE, _SCOPE, _CLOSE = 0, 1, 2


def _tested_keys(node) -> set[str]:
    """The fact fields a condition tree reads (both operands, and a list's value flags)."""
    out: set[str] = set()
    for leaf in walk(node):
        out.add(key(leaf.left))
        if leaf.right is not None:
            out.add(key(leaf.right))
        if leaf.op == "contains":
            out.add(flag_key(leaf.left, leaf.value))
    return out


def _delete(ruleset: list[Any]) -> None:
    """Free a ruleset ([handle, whether a case ran]): durable_rules' delete_ruleset leaves its sid's
    state allocated, and delete_state on a sid whose actions never ran frees uninitialised memory."""
    handle, ran = ruleset
    if handle is None:          # abandoned after a failure: its state is not known to be whole
        return
    if ran:
        _c.delete_state(handle, _SID)
    _c.delete_ruleset(handle)


class DurableBackend:
    """Runs a Program's rules through durable_rules' C engine, one case at a time, thread-safely."""

    def __init__(self, program: Program):
        self.program = program
        self._lock = threading.Lock()
        self._serial = itertools.count()
        # durable rule name -> (what its action does, its payload)
        self._actions: dict[str, tuple[int, Any]] = {}
        # per stratum: the case fields its rules test, and the chained fields set by then
        self._fields: list[tuple[str, ...]] = []
        self._chained: list[frozenset[str]] = []
        self.chain = chain_of(program)
        self._stratum_of = {r.id: r.stratum for r in program.rules}
        self._rules = {r.id: r for r in program.rules}
        self._definition = self._build_definition()
        # per stratum, resolved once for `_fact`: the doc keys it tests, the doc keys it does not
        # (when fewer: a copy less those is quicker than picking), the chained links it carries
        self._doc_keys = fact_plan(program).doc_keys
        self._plan = []
        for s in range(program.strata):
            untested = tuple(sorted(self._doc_keys.difference(self._fields[s])))
            self._plan.append((self._fields[s], untested if len(untested) < len(self._fields[s]) else None,
                               tuple(link for link in self.chain.links if link.key in self._chained[s])))
        self._definition_text = _dumps(self._definition)
        self._open()

    # -- compile -----------------------------------------------------------------------
    def _build_definition(self) -> dict:
        program = self.program
        rules: dict[str, dict] = {}
        tested: list[set[str]] = [set() for _ in range(program.strata)]
        for index, r in enumerate(program.rules):
            cond = [{"kind": "case"}, {"stratum": r.stratum}]
            expr = expression(r.condition)
            if expr is not None:
                cond.append(expr)
            rules[f"r{index}"] = {"all": [{"m": {"$and": cond}}], "pri": 1 + index}
            self._actions[f"r{index}"] = (_RULE, r.id)
            tested[r.stratum] |= _tested_keys(r.condition)
        # durable_rules also decides which rules are in scope, for the verdict's `deadlines` (a deadline
        # rule whose scope holds) and `missing` (a rule whose scope holds while a field that could leave
        # its condition unknown is absent): one rule per distinct (stratum, scope, such fields), firing
        # then. A rule that cannot be undecided and has no deadline needs none; most cases fire few.
        scopes: dict[tuple[int, str, tuple[str, ...] | None], list[str]] = {}
        self._always_in_scope: frozenset[str] = frozenset(r.id for r in program.rules if expression(r.scope) is None)
        for r in program.rules:
            if r.id in self._always_in_scope:
                continue
            unknowable = None if r.deadline is not None else unknowable_keys(r.when)
            if unknowable != ():
                scopes.setdefault((r.stratum, repr(r.scope), unknowable), []).append(r.id)
        for n, ((stratum, _, unknowable), ids) in enumerate(scopes.items()):
            cond = [{"kind": "case"}, {"stratum": stratum}]
            expr = expression(self._rules[ids[0]].scope)
            if expr is not None:
                cond.append(expr)
            if unknowable:           # `$or` fires once per true branch: in_scope is a set
                absent = [{"$nex": {k: 1}} for k in unknowable]
                cond.append(absent[0] if len(absent) == 1 else {"$or": absent})
            rules[f"s{n}"] = {"all": [{"m": {"$and": cond}}], "pri": SCOPE_PRI + n}
            self._actions[f"s{n}"] = (_SCOPE, tuple(ids))
            tested[stratum] |= _tested_keys(self._rules[ids[0]].scope) | set(unknowable or ())
        for stratum in range(program.strata):
            rules[f"close{stratum}"] = {"all": [{"m": {"$and": [{"kind": "case"}, {"stratum": stratum}]}}],
                                        "pri": CLOSER_PRI + stratum}
            self._actions[f"close{stratum}"] = (_CLOSE, stratum)
        if len(rules) > MAX_RULES:
            first = program.rules[0].location if program.rules else (None, None)
            raise PackError(f"these packs need {len(rules)} durable_rules rules ({len(program.rules)} rules, "
                            f"{len(scopes)} distinct scopes, {program.strata} strata); durable_rules takes at most "
                            f"{MAX_RULES}", file=first[0], field="rules",
                            hint="split the packs between engines, or let rules share a scope")
        chain_keys = {link.key for link in self.chain.links}
        for stratum in range(program.strata):
            fields = tested[stratum] - {"__never__"}
            if len(fields) + 4 > MAX_PROPERTIES:
                first = program.rules[0].location if program.rules else (None, None)
                raise PackError(f"stratum {stratum} of these packs tests {len(fields)} facts; a durable_rules fact "
                                f"holds at most {MAX_PROPERTIES - 4}", file=first[0], field="rules",
                                hint="split the packs between engines")
            self._fields.append(tuple(sorted(k for k in fields if k not in chain_keys)))
            self._chained.append(frozenset(chain_keys & fields))
        return rules

    def _open(self) -> None:
        """A fresh ruleset (after an error the old one may hold stale facts; it is left alone).

        Each ruleset is deleted, its state first, when this backend is collected: a server that
        reloads its packs builds a backend per revision, and a ruleset left (or deleted with its
        state) kept ~1.6 MB of C memory each.
        """
        try:
            self._handle = _c.create_ruleset(f"slarules_{next(_names)}", self._definition_text)
        except Exception as exc:  # noqa: BLE001  # durable raises plain Exceptions from C
            raise self._refused(exc) from None
        self._ruleset = [self._handle, False]       # [handle, a case ran]: what _delete needs
        weakref.finalize(self, _delete, self._ruleset).atexit = False

    def _refused(self, exc: Exception) -> Exception:
        """durable_rules refused the ruleset: name the pack rule it refused, tried alone, as a PackError.

        Its C core holds at most 31 tests per rule (MAX_SEQUENCE_EXPRESSIONS, error 113), and
        the compiler cannot know that limit without building the ruleset.
        """
        for name, spec in self._definition.items():
            try:
                _c.delete_ruleset(_c.create_ruleset(f"slarules_probe_{next(_names)}", _dumps({name: spec})))
            except Exception:  # noqa: BLE001  # durable raises plain Exceptions from C
                what, payload = self._actions[name]
                if what == _CLOSE:
                    continue
                rule = self.program.rule(payload if what == _RULE else payload[0])
                part = "condition" if what == _RULE else "scope"
                file, line = rule.location
                return PackError(f"durable_rules cannot hold the {part} of rule `{rule.id}` in one rule "
                                 f"({exc})", file=file, line=line, field="when" if what == _RULE else "scope",
                                 hint="durable_rules holds about 31 tests per rule: split it into two rules, or "
                                      "name part of it as a derived fact")
        return EngineError(f"durable_rules refused the compiled packs: {exc}")

    # -- run ---------------------------------------------------------------------------
    def _fact(self, doc: dict[str, Any], whole: bool, stratum: int, ident: str, run: RunResult) -> str:
        """The stratum's fact: the case fields its rules test, the chained facts so far (Chain.value).

        `whole`: the doc holds FactPlan's keys only, so a copy less the untested ones is the fact.
        """
        fields, untested, links = self._plan[stratum]
        if whole and untested is not None:
            fact = doc.copy()
            pop = fact.pop
            for k in untested:
                pop(k, None)
        else:
            fact = {k: doc[k] for k in fields if k in doc}
        if links:
            value, classifications, level = self.chain.value, run.classifications, run.level
            for link in links:
                fact[link.key] = value(link, classifications, level)
        fact["kind"] = "case"
        fact["stratum"] = stratum
        fact["sid"] = _SID
        fact["id"] = ident
        run.asserted.append(fact)
        return _fact_text(fact)

    def _close(self, stratum: int, run: RunResult) -> None:
        """Fold what this stratum fired into the chained facts (its rules have all run by its closer)."""
        run.strata_closed += 1
        of, rules, fold = self._stratum_of, self._rules, self.chain.fold
        for rule_id in run.fired:
            if of[rule_id] == stratum:
                fold(rules[rule_id], run)

    def run(self, doc: dict[str, Any]) -> RunResult:
        whole = self._doc_keys.issuperset(doc)
        actions, strata = self._actions, self.program.strata
        assert_fact, complete, retract = _c.assert_fact, _c.complete_and_start_action, _c.retract_fact
        with self._lock:
            handle = self._handle
            self._ruleset[1] = True
            serial = next(self._serial)
            run = RunResult(in_scope=set(self._always_in_scope))
            fired = run.fired
            # a fact is retracted by its identity alone: durable_rules finds it by sid and id
            # (tests/test_durable_traps.py: nothing is left behind)
            idents: list[str] = []
            failure = None
            try:
                ident = f"c{serial}.0"
                idents.append(ident)
                code, state = assert_fact(handle, self._fact(doc, whole, 0, ident, run))
                if code:
                    raise EngineError(f"durable_rules answered {code} to the case fact")
                started = _c.start_action_for_state(handle, state)
                message = started[1] if started else None
                while message:
                    # '{"r12":{"m":{...}}}': the action's name is all we need; the fact is ours
                    what, payload = actions[message[2:message.index('"', 2)]]
                    if what == _RULE:
                        if payload not in fired:      # an `$or` fires once per true branch
                            fired.append(payload)
                    elif what == _SCOPE:
                        run.in_scope.update(payload)   # type: ignore[union-attr]  # a set: made above
                    else:
                        self._close(payload, run)
                        if payload + 1 < strata:      # chain: the next stratum fires in this same loop
                            ident = f"c{serial}.{payload + 1}"
                            idents.append(ident)
                            code, _ = assert_fact(handle, self._fact(doc, whole, payload + 1, ident, run))
                            if code:
                                raise EngineError(f"durable_rules answered {code} to stratum {payload + 1}'s fact")
                    message = complete(handle, state)
                if run.strata_closed != strata:
                    raise EngineError(f"only {run.strata_closed} of {strata} strata completed")
                for ident in idents:
                    code, _ = retract(handle, f'{{"sid":"{_SID}","id":"{ident}"}}')
                    if code:
                        raise EngineError(f"durable_rules answered {code} to a retraction")
            except Exception as exc:  # noqa: BLE001 # durable raises plain Exceptions from C; ours are EngineErrors
                failure = exc.message if isinstance(exc, EngineError) else f"durable_rules failed: {exc!r}"
            if failure is not None:
                self._ruleset[0] = None     # left as it is: freeing a ruleset in an unknown state may crash
                self._open()   # start from a clean ruleset; the old one may hold stale facts
                raise EngineError(failure + " (this is a bug in slarules; please report it with the case)")
            return run
