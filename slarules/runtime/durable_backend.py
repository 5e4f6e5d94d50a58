"""The durable_rules backend: the only module that imports durable_rules.

A Program becomes one durable_rules ruleset, driven through durable_rules' C
engine directly (`durable_rules_engine`: create_ruleset, assert_fact,
start_action_for_state, complete_and_start_action, retract_fact), not through its
Python `Host`, which JSON-encodes and decodes the whole fact document and the
state around every fired action. Each case is asserted as one flat, pre-joined
fact per stratum (no multi-fact joins: upstream #381 segfaults) carrying only the
fields that stratum's rules test, under one- or two-letter names (durable_ruleset.short_names: the C
core parses and hashes every name of every fact): for `run_facts` (Engine.run, once the fact plan is
compiled) made beside the doc by its generated code (FactPlan.project), else taken from the doc; every rule tests `kind == "case"` and its
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
- a comparison with another field matches when that field is absent (seen
  here) -> that field is tested with `$ex` first; a comparison with a constant is
  reached only through its own field, so it needs no `$ex` (leaf_expression);
- properties are known by their 32-bit hash -> the short field names hash apart;
- MessageNotHandled / MessageObserved -> the closers match every case fact, ids
  are unique per case; any other result code of an assert or retract is an error;
- 1,024 live sids, hash collisions, `delete_state` crashes -> one fixed sid per
  backend, facts retracted after every case (by sid and id: durable_rules finds a
  fact by them, so the whole fact need not be parsed again), states never deleted;
- action exceptions are stored silently -> no Python action runs inside
  durable_rules at all: each action is run here, inside our own try/except, and
  any error (ours or a result code from C) abandons the ruleset for a new one;
- 255 properties per fact -> each stratum's fact carries only the fields its rules
  test; that and the limits of its network (a hang past 511 tests after one test,
  error 303 past 64 pending tests, ...) are checked by durable_ruleset.capacity
  when the packs are compiled, its size again when the ruleset is built;
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

import msgspec

from ..errors import EngineError, PackError
from ..packs.program import Program
from .backend import RunResult
from .chaining import chain_of
from .durable_ruleset import (
    CLOSE as _CLOSE,
    RULE as _RULE,
    SCOPE as _SCOPE,
    expression,  # noqa: F401 - the expressions it is given (benchmarks, tests)
    ruleset,
    short_names,
    size,
)
from .values import CaseFacts, fact_plan, key  # noqa: F401 - `key`: the doc keys its facts are made from (tests)

try:
    import durable_rules_engine as _c  # durable_rules' C core (the `durable` package's own import); the
    #                                    package itself (its Host, logging, threads) is never needed here
except ImportError as exc:      # not installed, or built for Python 3.13 without the fix: say how to fix it
    from .durable_install import cannot_import
    raise cannot_import(exc) from None

_names = itertools.count()
_SID = "slot"
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
        # per stratum, resolved once for `_fact`: (doc key, its short name) of each field its rules test,
        # (link, its short name) of each chained fact it carries, and the short names of `kind` and `stratum`
        # (when the stratum tests more than half the doc's keys, a dict of them: the doc is walked instead)
        short, doc_keys = self._short, fact_plan(program).doc_keys
        self._plan = [(tuple((k, short[k]) for k in self._fields[s]),
                       {k: short[k] for k in self._fields[s]} if 2 * len(self._fields[s]) > len(doc_keys) else None,
                       tuple((link, short[link.key]) for link in self.chain.links if link.key in self._chained[s]))
                      for s in range(program.strata)]
        self._kind, self._stratum = short["kind"], short["stratum"]
        self._definition_text = _dumps(self._definition)
        self._open()
        # each stratum's case fields, made by the fact plan's generated code beside the doc (FactPlan.project;
        # another backend of the same program asks for the same, and both get the one object)
        self._projections = fact_plan(program).project(tuple(dict(fields) for fields, _, _ in self._plan))

    # -- compile -----------------------------------------------------------------------
    def _build_definition(self) -> dict:
        """The ruleset (durable_ruleset.ruleset). The compiler refused packs past durable_rules' limits;
        the cheap ones, on the ruleset's size, are checked again here (a located PackError)."""
        program = self.program
        rules = ruleset(program)
        for overflow in size(program, rules):
            file, line = (program.rule(overflow.rule).location if overflow.rule else
                          (program.rules[0].location if program.rules else (None, None)))
            raise PackError(overflow.message, file=file, line=line if overflow.rule else None,
                            field=overflow.part if overflow.rule else "rules", hint=overflow.hint)
        self._actions = rules.actions
        self._always_in_scope = rules.always_in_scope
        definition, self._short = short_names(rules.definition, set().union(*rules.tested))
        chain_keys = {link.key for link in self.chain.links}
        for fields in rules.tested:
            self._fields.append(tuple(sorted(k for k in fields if k not in chain_keys)))
            self._chained.append(frozenset(chain_keys & fields))
        return definition

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

        The compiler refuses what durable_ruleset.capacity knows of (error 113 among them); this
        names the rule should durable_rules refuse something else.
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
                                 hint="split it into two rules, or "
                                      "name part of it as a derived fact")
        return EngineError(f"durable_rules refused the compiled packs: {exc}")

    # -- run ---------------------------------------------------------------------------
    def _fact(self, doc: dict[str, Any], projected: tuple[dict[str, Any], ...] | None, stratum: int, ident: str,
              run: RunResult) -> str:
        """The stratum's fact: the case fields its rules test, the chained facts so far (Chain.value),
        under the short names the ruleset tests (durable_ruleset.short_names). The case fields come made
        (`projected`, a copy: the case's facts stay as they were) or are taken from the doc."""
        fields, names, links = self._plan[stratum]
        if projected is not None:
            fact = projected[stratum].copy()
        elif names is None:
            fact = {name: doc[k] for k, name in fields if k in doc}
        else:
            fact = {}
            get = names.get
            for k, v in doc.items():
                name = get(k)
                if name is not None:
                    fact[name] = v
        if links:
            value, classifications, level = self.chain.value, run.classifications, run.level
            for link, name in links:
                fact[name] = value(link, classifications, level)
        fact[self._kind] = "case"
        fact[self._stratum] = stratum
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

    def run_many(self, docs: list[dict[str, Any]]) -> list[RunResult]:
        """One case after another: durable_rules matches a case at a time."""
        return [self.run(doc) for doc in docs]

    def run_facts(self, facts: CaseFacts) -> RunResult:
        """`run` for a case's facts: the strata's facts as its plan made them (FactPlan.project), when it did."""
        made = facts.projected
        return self.run(facts.doc, made[1] if made is not None and made[0] is self._projections else None)

    def run(self, doc: dict[str, Any], projected: tuple[dict[str, Any], ...] | None = None) -> RunResult:
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
                code, state = assert_fact(handle, self._fact(doc, projected, 0, ident, run))
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
                            code, _ = assert_fact(handle, self._fact(doc, projected, payload + 1, ident, run))
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
