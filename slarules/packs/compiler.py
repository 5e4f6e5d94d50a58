"""Compile packs into one backend-neutral Program: typed, resolved, stratified.

This is where meaning is checked (every problem is an `Issue` with a location)
and where a pack becomes condition trees over encoded values, ready for any
backend: durable_rules for single cases, a bulk engine beside it later. Rules
that read facts other rules produce (classifications, complaint level) are put
in later strata, so forward chaining happens in a fixed, explainable order.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..echo import quote
from ..errors import PackError
from . import types as T
from .layers import apply_layers
from .model import (
    FORMATS,
    PARAM_PLACEHOLDER,
    SPECIAL_PLACEHOLDERS,
    AllOf,
    AnyOf,
    Compare,
    FactRef,
    Issue,
    Pack,
    ParamRef,
    did_you_mean,
    raise_first,
)
from .operators import OPERATORS
from .program import (
    DURABLE_MAX_PROPERTIES,
    PLACEHOLDER,
    Amount,
    CompiledRule,
    Derivation,
    Leaf,
    Node,
    PackInfo,
    Program,
    walk,
)
from .unknowns import close_unknowns
from .versions import Window, articles, check_versions, not_in_force_rules, window_of
from .vocabulary import (
    BASE_FACTS,
    CHAIN_LEVEL,
    CLASSIFICATION_PREFIX,
    FUNCTIONS,
    ISSUE_VALUES,
    LIABLE_PREFIX,
    FactSpec,
    chain_spec,
)

MAX_FIELDS = DURABLE_MAX_PROPERTIES - 10    # tested facts, leaving room for kind, stratum, sid, id

DEFAULT_SEVERITY = {"classification": "info", "not_covered": "info", "warning": "warning"}
PARTY_STATION = {"sending_station": "stations.sending", "delivering_station": "delivering_station",
                 "hub": "hub_handling.station"}


def dependency_order(nodes: list, name, deps, on_cycle) -> list:
    """`nodes` with every node after the ones it depends on (depth first).

    `deps(node)` gives the names it depends on (unknown names are ignored);
    `on_cycle(node, names)` is called for each cycle met, and the edge that
    closes it is skipped, so an order is always returned.
    """
    by_name = {name(n): n for n in nodes}
    state: dict[str, int] = {}
    order: list = []

    def visit(node, path: tuple) -> None:
        key = name(node)
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            on_cycle(node, path[path.index(key):] + (key,))
            return
        state[key] = 1
        for dep in deps(node):
            if dep in by_name:
                visit(by_name[dep], path + (key,))
        state[key] = 2
        order.append(node)
    for node in nodes:
        visit(node, ())
    return order


class _Compiler:
    def __init__(self, packs: list[Pack], catalogue: dict[str, Any] | None, complete: bool = True):
        layering = apply_layers(packs, complete)      # a base and the layers over it become one pack
        self.packs = packs = layering.packs
        self.catalogue = catalogue
        self.complete = complete
        self.issues: list[Issue] = list(layering.issues)
        self.specs: dict[str, FactSpec] = dict(BASE_FACTS)
        self.classified = {r.then.classify for p in packs for r in p.model.rules if r.then.classify}
        for name in self.classified:
            self.specs[CLASSIFICATION_PREFIX + name] = chain_spec(CLASSIFICATION_PREFIX + name)  # type: ignore[assignment]  # a chain name
        self.specs[CHAIN_LEVEL] = chain_spec(CHAIN_LEVEL)  # type: ignore[assignment]  # a chain name

    # -- reporting ---------------------------------------------------------------------
    def issue(self, pack: Pack, loc: tuple, message: str, hint: str | None = None, severity: str = "error"):
        self.issues.append(pack.issue(loc, message, hint, severity))

    @staticmethod
    def origin(pack: Pack, loc: tuple) -> str:
        """"file:line" of a pack element, for explanations and coverage reports."""
        source, loc = pack.source(loc)
        name = Path(source.doc.file).name     # not the full path: explanations are machine-independent
        line, _ = source.where(loc)
        return f"{name}:{line}" if line else name

    def spec(self, pack: Pack, path: str, loc: tuple) -> FactSpec | None:
        spec = self.specs.get(path)
        chained = chain_spec(path) if spec is None and path.startswith(CLASSIFICATION_PREFIX) else None
        if chained is not None:
            # Another pack may classify it; alone, this pack sees it as always false.
            spec = self.specs[path] = chained
            self.classified.add(path[len(CLASSIFICATION_PREFIX):])
            if self.complete:
                self.issue(pack, loc, f"no rule in the loaded packs classifies a case as "
                                      f"`{path[len(CLASSIFICATION_PREFIX):]}`, so `{quote(path)}` is always false",
                           "load the pack that produces it", severity="warning")
        elif spec is None:
            self.issue(pack, loc, f"unknown fact `{quote(path)}`", did_you_mean(path, self.specs))
        return spec

    # -- values ------------------------------------------------------------------------
    def param(self, pack: Pack, name: str, loc: tuple):
        params = self._params[id(pack)]
        if name not in params:
            self.issue(pack, loc, f"unknown parameter `{quote(name)}`", did_you_mean(name, params))
            return None
        return params[name]

    def constant(self, pack: Pack, ftype: T.FactType, value: Any, loc: tuple):
        """A literal or parameter, parsed as `ftype`; returns the Python value or None.

        A parameter whose own value is bad has the value None: its error is reported
        once, where it is declared, not again at each use.
        """
        if isinstance(value, ParamRef):
            p = self.param(pack, value.param, loc + ("param",))
            if p is None:
                return None
            ptype, pvalue = p
            if ptype.name != ftype.name:
                self.issue(pack, loc, f"parameter `{quote(value.param)}` is a {ptype.name}, expected a {ftype.name}")
                return None
            return pvalue
        try:
            return ftype.parse(value)
        except ValueError as exc:
            self.issue(pack, loc, f"{exc} (expected a {ftype.name} literal)")
            return None

    # -- conditions --------------------------------------------------------------------
    def condition(self, pack: Pack, cond, loc: tuple):
        if isinstance(cond, (AllOf, AnyOf)):
            op = "all" if isinstance(cond, AllOf) else "any"
            children = [self.condition(pack, c, loc + (op, i)) for i, c in enumerate(getattr(cond, op))]
            return Node(op, tuple(c for c in children if c is not None), cond.label, self.origin(pack, loc))
        return self.compare(pack, cond, loc)

    def compare(self, pack: Pack, cond: Compare, loc: tuple):
        ops = [o for o in OPERATORS.values() if getattr(cond, o.field) is not None]
        if len(ops) != 1:
            self.issue(pack, loc, f"a comparison needs exactly one operator, found {len(ops)}",
                       f"use one of {', '.join(OPERATORS)}")
            return None
        operator = ops[0]
        raw = getattr(cond, operator.field)
        op = operator.name
        spec = self.spec(pack, cond.fact, loc + ("fact",))
        if spec is None:
            return None
        ftype = spec.type
        if operator.shape == "exists":
            return Leaf(op, cond.fact, bool(raw), label=cond.label, origin=self.origin(pack, loc))
        if ftype.name == "block":
            self.issue(pack, loc + (op,), f"`{quote(cond.fact)}` is a block: it can only be tested with `exists`")
            return None
        if operator.shape == "contains":
            if ftype.name != "list":
                self.issue(pack, loc + (op,), f"`contains` needs a list fact, `{quote(cond.fact)}` is a {ftype.name}")
                return None
            if raw not in ISSUE_VALUES:
                self.issue(pack, loc + (op,), f"`{quote(raw)}` is not a complaint issue",
                           did_you_mean(raw, ISSUE_VALUES))
                return None
            return Leaf(op, cond.fact, raw, label=cond.label, shown=raw, origin=self.origin(pack, loc))
        if ftype.name == "list":
            self.issue(pack, loc + (op,), f"`{quote(cond.fact)}` is a list: test it with `contains`")
            return None
        if operator.ordered and not ftype.ordered:
            self.issue(pack, loc + (op,), f"`{op}` needs an ordered fact, `{quote(cond.fact)}` is a {ftype.name}",
                       "use eq, ne or in")
            return None
        if operator.shape == "in":
            leaves = []
            for i, item in enumerate(raw):
                value = self.constant(pack, ftype, item, loc + (op, i))
                if value is not None:
                    leaves.append(Leaf("eq", cond.fact, ftype.encode(value), shown=value,
                                       origin=self.origin(pack, loc + (op, i))))
            return Node("any", tuple(leaves), cond.label, self.origin(pack, loc))
        if isinstance(raw, FactRef):
            other = self.spec(pack, raw.fact, loc + (op, "fact"))
            if other is None:
                return None
            compatible = other.type.name == ftype.name or {other.type.name, ftype.name} <= {"enum", "text"}
            if not compatible:
                self.issue(pack, loc + (op,), f"cannot compare `{quote(cond.fact)}` ({ftype.name}) "
                                              f"with `{quote(raw.fact)}` ({other.type.name})")
                return None
            return Leaf(op, cond.fact, right=raw.fact, label=cond.label, origin=self.origin(pack, loc))
        value = self.constant(pack, ftype, raw, loc + (op,))
        if value is None:
            return None
        return Leaf(op, cond.fact, ftype.encode(value), label=cond.label, shown=value, origin=self.origin(pack, loc))

    # -- whole packs -------------------------------------------------------------------
    def compile(self) -> Program:
        self._params: dict[int, dict[str, tuple[T.FactType, Any]]] = {}     # id(pack) -> parameters
        self.windows: dict[int, Window] = {}                                 # id(pack) -> its dates
        seen_versions: dict[tuple[str, str], Pack] = {}
        for pack in self.packs:
            known = seen_versions.setdefault((pack.name, pack.model.version), pack)
            if known is not pack:
                self.issue(pack, ("version",),
                           f"version `{quote(pack.model.version)}` of pack `{pack.name}` is loaded twice",
                           f"also in {known.doc.file}")
            window = window_of(pack, self.issue)
            if window is not None:
                self.windows[id(pack)] = window
            self._params[id(pack)] = params = {}
            for name, p in pack.model.parameters.items():
                ftype = T.TYPES[p.type]
                try:
                    params[name] = (ftype, ftype.parse(p.value))
                except ValueError as exc:
                    params[name] = (ftype, None)
                    self.issue(pack, ("parameters", name, "value"), f"{exc} (parameter type is {p.type})")
        check_versions(self.packs, self.windows, self.issue)
        derivations = self.derivations()
        for window in self.windows.values():     # after derivations: a pack may choose by one it derives
            spec = self.spec(window.pack, window.by, ("effective", "by"))
            if spec is not None and spec.type.name != "instant":
                self.issue(window.pack, ("effective", "by"), f"`{quote(window.by)}` is a {spec.type.name}, "
                                                             "a version is chosen by an instant")
        rules = self.rules()
        derivations, closures = close_unknowns(rules, derivations, self.specs)
        self.stratify(rules)
        fields = sorted({path for r in rules for leaf in walk(r.condition) for path in leaf.paths()})
        if len(fields) > MAX_FIELDS:
            self.issue(self.packs[0], (), f"the packs test {len(fields)} distinct facts; at most {MAX_FIELDS} fit")
        raise_first(self.issues)
        infos = [PackInfo.of(f, *((w.by, w.condition()) if (w := self.windows.get(id(p))) else ()))
                 for p in self.packs for f in p.files()]      # a layered pack: its base, then its layers
        program = Program(infos, rules, derivations, self.specs, fields,
                          1 + max((r.stratum for r in rules), default=0), sorted(self.classified),
                          self.packs[0].model.timezone, closures)
        self.durable_capacity(program)
        raise_first(self.issues)
        return program

    def durable_capacity(self, program: Program) -> None:
        """What durable_rules cannot hold, refused here, whichever backend runs later: a Program is
        cached and shipped to batch workers, and the single-case engine must be able to run it."""
        from ..runtime.durable_ruleset import capacity  # not at import: it loads the runtime
        for overflow in capacity(program):
            if overflow.rule is None:
                self.issue(self.packs[0], ("rules",), overflow.message, overflow.hint)
                continue
            pack, loc = self.rule_loc(program.rule(overflow.rule))
            self.issue(pack, loc + (("scope",) if overflow.part == "scope" else ("id",)), overflow.message,
                       overflow.hint)

    def derivations(self) -> list[Derivation]:
        pending: list[tuple[Pack, str, Any]] = []
        self._derivation_pack: dict[str, Pack] = {}
        for pack in self.packs:
            for name, d in pack.model.derive.items():
                if self.same_derivation(pack, name, d):
                    continue               # another version of this pack derives it alike: computed once
                if name in self.specs:
                    self.issue(pack, ("derive", name), f"`{quote(name)}` is already a fact", "choose another name")
                    continue
                fn = FUNCTIONS.get(d.fn)
                if fn is None:
                    self.issue(pack, ("derive", name, "fn"), f"unknown derivation function `{quote(d.fn)}`",
                               did_you_mean(d.fn, FUNCTIONS) or f"one of {', '.join(sorted(FUNCTIONS))}")
                    continue
                self.specs[name] = FactSpec(name, fn.result, d.doc or fn.doc)
                self._derivation_pack[name] = pack
                pending.append((pack, name, d))
        out: list[Derivation] = []
        for pack, name, d in pending:
            fn = FUNCTIONS[d.fn]
            loc = ("derive", name, "args")
            args: dict[str, tuple[str, Any]] = {}
            for arg, ftype in fn.args.items():
                if arg not in d.args:
                    self.issue(pack, loc, f"`{quote(d.fn)}` needs argument `{quote(arg)}` ({ftype.name})")
                    continue
                raw = d.args[arg]
                refs = raw if isinstance(raw, list) else [raw] if isinstance(raw, FactRef) else None
                if refs is not None:
                    ok = True
                    for i, ref in enumerate(refs):
                        spec = self.spec(pack, ref.fact, loc + (arg,))
                        if spec is not None and spec.type.name != ftype.name:
                            self.issue(pack, loc + (arg,), f"`{quote(ref.fact)}` is a {spec.type.name}, "
                                                           f"`{quote(arg)}` needs a {ftype.name}")
                            ok = False
                        ok = ok and spec is not None
                    if ok:
                        args[arg] = ("coalesce", tuple(r.fact for r in refs))
                else:
                    value = self.constant(pack, ftype, raw, loc + (arg,))
                    if value is not None:
                        args[arg] = ("const", value)
            for extra in set(d.args) - set(fn.args):
                self.issue(pack, loc + (extra,), f"`{quote(d.fn)}` has no argument `{quote(extra)}`",
                           did_you_mean(extra, fn.args) or f"it takes {', '.join(fn.args)}")
            out.append(Derivation(name, fn, args))
        return self.order_derivations(out)

    def same_derivation(self, pack: Pack, name: str, d) -> bool:
        """Whether another dated version of `pack` already derives `name` with the same function and values."""
        other = self._derivation_pack.get(name)
        if other is None or other.name != pack.name or id(pack) not in self.windows or id(other) not in self.windows:
            return False

        def resolved(p: Pack, value):
            return self._params[id(p)].get(value.param) if isinstance(value, ParamRef) else value
        mine = other.model.derive[name]
        return mine.fn == d.fn and mine.args.keys() == d.args.keys() and all(
            resolved(other, mine.args[a]) == resolved(pack, d.args[a]) for a in d.args)

    def order_derivations(self, derivs: list[Derivation]) -> list[Derivation]:
        def cycle(d: Derivation, names: tuple) -> None:
            self.issue(self._derivation_pack[d.name], ("derive", d.name),
                       "derivations depend on each other in a cycle: " + " -> ".join(names))
        return dependency_order(derivs, lambda d: d.name,
                                lambda d: [p for kind, val in d.args.values() if kind == "coalesce" for p in val],
                                cycle)

    def amount(self, pack: Pack, raw, loc: tuple) -> Amount | None:
        if raw is None:
            return None
        if isinstance(raw, FactRef):
            spec = self.spec(pack, raw.fact, loc + ("fact",))
            if spec is not None and spec.type.name != "money":
                self.issue(pack, loc, f"`{quote(raw.fact)}` is a {spec.type.name}, expected money")
            return Amount(fact=raw.fact)
        value = self.constant(pack, T.MONEY, raw, loc)
        return Amount(constant=value) if value is not None else None

    def rules(self) -> list[CompiledRule]:
        compiled: list[CompiledRule] = []
        ids: dict[str, str] = {}
        for pack in self.packs:
            for i, rule in enumerate(pack.model.rules):
                loc = ("rules", i)
                window = self.windows.get(id(pack))
                rule_id = versioned_id(rule.id, pack) if pack.model.effective else rule.id
                if rule_id in ids:
                    self.issue(pack, loc + ("id",), f"duplicate rule id `{rule_id}`", f"first defined in {ids[rule_id]}")
                    continue
                source, _ = pack.source(loc)     # the base or the layer that wrote the rule
                line, _ = pack.where(loc + ("id",))
                ids[rule_id] = f"{source.doc.file}:{line}"
                if self.catalogue is not None and rule.clause not in self.catalogue:
                    self.issue(pack, loc + ("clause",), f"clause `{quote(rule.clause)}` is not in the clause catalogue",
                               did_you_mean(rule.clause, self.catalogue) or "see docs/policy.md")
                scope = [self.condition(pack, c, loc + ("scope", j)) for j, c in enumerate(rule.scope)]
                when = [self.condition(pack, c, loc + ("when", j)) for j, c in enumerate(rule.when)]
                deadline = None
                if rule.deadline is not None:
                    deadline = self.deadline(pack, rule.deadline, loc + ("deadline",))
                    if deadline is not None:
                        when.append(deadline_condition(*deadline[1:], origin=self.origin(pack, loc + ("deadline",))))
                then = rule.then
                station_fact = then.station.fact if then.station else PARTY_STATION.get(then.party)
                if then.station:
                    self.spec(pack, then.station.fact, loc + ("then", "station", "fact"))
                if then.kind == "classification" and not (then.classify or then.level):
                    self.issue(pack, loc + ("then",), "a classification rule needs `classify` or `level`")
                self.compensation_shape(pack, then, loc + ("then",))
                facts = []
                for j, path in enumerate(rule.facts):
                    if self.spec(pack, path, loc + ("facts", j)) is not None:
                        facts.append(path)
                messages = self.templates(pack, rule, loc)
                # a title is the policy's own heading (Chinese in the shipped packs): its limits quoted as in zh
                title = self.quote_parameters(pack, rule.title, "zh", loc + ("title",)) if rule.title else rule.id
                self.stray_braces(pack, rule.title or "", loc + ("title",), facts=False)
                quoted = [lang for lang in ("zh", "en") if "{article}" in getattr(rule.message, lang)]
                cited = ()
                if quoted and self.catalogue is not None and rule.clause in self.catalogue:
                    cited = articles(rule.clause, self.catalogue[rule.clause], pack, window, self.issue,
                                     loc + ("message", quoted[0]))
                compiled.append(CompiledRule(
                    id=rule_id, clause=rule.clause, pack=source.name, title=title,
                    kind=then.kind, party="network" if then.kind == "compensation" else then.party,
                    station_fact=None if then.kind == "compensation" else station_fact,
                    severity=then.severity or DEFAULT_SEVERITY.get(then.kind, "error"),
                    classify=then.classify, level=then.level,
                    fine=self.amount(pack, then.fine_cny, loc + ("then", "fine_cny")),
                    refund=self.amount(pack, then.refund_cny, loc + ("then", "refund_cny")),
                    scope=Node("all", tuple(c for c in [window and window.condition()] + scope if c is not None)),
                    when=Node("all", tuple(c for c in when if c is not None)),
                    facts=tuple(facts), messages=messages,
                    overrides=tuple(rule.overrides), deadline=deadline, harms=tuple(then.harm) or (rule.clause,),
                    articles=cited,
                    location=(source.doc.file, line),
                    compensation=self.amount(pack, then.compensation_cny, loc + ("then", "compensation_cny")),
                    payer=then.payer))
        self.resolve_versions(compiled)
        self.precedence(compiled)
        return compiled

    def compensation_shape(self, pack: Pack, then, loc: tuple) -> None:
        """A compensation names its amount and the harm whose liable party pays, and nothing else does."""
        if then.kind == "compensation":
            for part in ("compensation_cny", "payer"):
                if getattr(then, part) is None:
                    self.issue(pack, loc, f"a compensation rule needs `{part}`",
                               "e.g. payer: loss (the party liable for the loss pays; else the network)")
            if then.party != "none" or then.station is not None:
                self.issue(pack, loc + ("party" if then.party != "none" else "station",),
                           "a compensation's payer comes from `payer`, not `party` or `station`",
                           "remove it: the party the loaded packs hold liable for that harm pays")
        else:
            for part in ("compensation_cny", "payer"):
                if getattr(then, part) is not None:
                    self.issue(pack, loc + (part,), f"`{part}` belongs to a compensation rule, not a {then.kind}",
                               "use kind: compensation")

    def resolve_versions(self, rules: list[CompiledRule]) -> None:
        """Overrides between dated versions, and one `not_covered` rule per dated pack with uncovered days.

        A rule of a dated version overriding `x` means its own version's `x@v` when that
        exists; a rule overriding a rule of a dated pack from outside it overrides every version.
        """
        if not self.windows:
            return
        versions: dict[str, list[str]] = {}
        for r in rules:
            base, _, version = r.id.partition("@")
            if version:
                versions.setdefault(base, []).append(r.id)
        own = {r.id for r in rules}
        for r in rules:
            _, _, version = r.id.partition("@")
            r.overrides = tuple(dict.fromkeys(
                t2 for t in r.overrides
                for t2 in ([f"{t}@{version}"] if version and f"{t}@{version}" in own else versions.get(t, [t]))))
        by_name: dict[str, list[Window]] = {}
        for w in self.windows.values():
            by_name.setdefault(w.pack.name, []).append(w)
        for name, windows in sorted(by_name.items()):
            rules.extend(r for r in not_in_force_rules(name, windows) if r.id not in own)

    def deadline(self, pack: Pack, d, loc: tuple) -> tuple[str, str, str] | None:
        ok = True
        for part in ("due", "actual"):
            path = getattr(d, part)
            spec = self.spec(pack, path, loc + (part,))
            if spec is not None and spec.type.name != "instant":
                self.issue(pack, loc + (part,), f"`{quote(path)}` is a {spec.type.name}, a deadline needs an instant")
                ok = False
            ok = ok and spec is not None
        return (d.name, d.due, d.actual) if ok else None

    def templates(self, pack: Pack, rule, loc: tuple) -> dict[str, str]:
        """The rule's messages with their parameters quoted ({param:NAME} -> its value as text),
        each fact placeholder checked against the facts; the verdict fills those per case."""
        out = {}
        for lang in ("zh", "en"):
            mloc = loc + ("message", lang)
            template = getattr(rule.message, lang)
            out[lang] = self.quote_parameters(pack, template, lang, mloc)
            self.stray_braces(pack, template, mloc, facts=True)
            for m in PLACEHOLDER.finditer(template):
                path, fmt = m.group(1), m.group(2)
                if path in SPECIAL_PLACEHOLDERS:
                    continue
                spec = self.specs.get(path)
                if spec is None:
                    self.issue(pack, mloc, f"message quotes unknown fact `{{{path}}}`",
                               did_you_mean(path, list(self.specs) + list(SPECIAL_PLACEHOLDERS)))
                elif fmt and (fmt not in FORMATS or spec.type.name != "instant"):
                    self.issue(pack, mloc, f"format `|{fmt}` does not apply to `{quote(path)}` ({spec.type.name})",
                               f"formats {', '.join(FORMATS)} are for instants")
        return out

    def stray_braces(self, pack: Pack, template: str, loc: tuple, facts: bool) -> None:
        """Every brace of a message (`facts`) or a title that is not part of a placeholder they may hold,
        as an error: `{{station}}`, `{}`, `{0.__init__}`, `{x!r}`, `{x:y}` would otherwise print as
        they are, and no brace may read as anything else (messages are never given to str.format)."""
        what = "a message" if facts else "a title"
        for text in stray_braces(template, facts):
            shown = text if len(text) <= 40 and text.isprintable() else repr(text[:40])
            self.issue(pack, loc, f"{what} quotes `{shown}`, which is not a placeholder",
                       "a message quotes a fact as {fact.path} or {fact.path|time} (also |date, |datetime), "
                       f"or {', '.join('{' + p + '}' for p in SPECIAL_PLACEHOLDERS)}, and a parameter as "
                       "{param:NAME}; it holds no other brace" if facts else
                       "a title quotes parameters only, as {param:NAME}; it holds no other brace")

    def quote_parameters(self, pack: Pack, template: str, lang: str, loc: tuple) -> str:
        """`template` with each {param:NAME} replaced by the parameter's value as a limit is written
        (types.limit_text), once, here: every backend then sees literal text.

        A quoted value must stay text: if it would complete a {fact} placeholder (a text
        parameter holding braces), that is an error rather than a fact filled in per case.
        """
        params = self._params[id(pack)]
        quoted = []

        def quote(m) -> str:
            name = m.group(1)
            if name not in params:
                self.issue(pack, loc, f"quotes unknown parameter `{{param:{name}}}`",
                           did_you_mean(name, params) or (f"parameters: {', '.join(params)}" if params
                                                          else "declare it under `parameters`"))
                return m.group(0)
            ftype, value = params[name]
            quoted.append(name)
            return T.limit_text(value, ftype, lang) if value is not None else m.group(0)
        text = PARAM_PLACEHOLDER.sub(quote, template)
        if quoted and [m.group(0) for m in PLACEHOLDER.finditer(text)] != [
                m.group(0) for m in PLACEHOLDER.finditer(PARAM_PLACEHOLDER.sub("\0", template))]:
            self.issue(pack, loc, f"quoting {', '.join(f'`{n}`' for n in quoted)} here makes a `{{...}}` "
                                  "placeholder of its value", "a quoted parameter may not hold `{` or `}`")
        return text

    def precedence(self, rules: list[CompiledRule]) -> None:
        by_id = {r.id: r for r in rules}
        for r in rules:
            for j, target in enumerate(r.overrides):
                if target not in by_id and self.complete:
                    pack, loc = self.rule_loc(r)
                    self.issue(pack, loc + ("overrides", j), f"overrides unknown rule `{quote(target)}`",
                               did_you_mean(target, by_id))

        def cycle(r: CompiledRule, names: tuple) -> None:
            pack, loc = self.rule_loc(r)
            self.issue(pack, loc + ("overrides",), "precedence cycle: " + " overrides ".join(names))
        dependency_order(rules, lambda r: r.id, lambda r: r.overrides, cycle)

    def rule_loc(self, rule: CompiledRule) -> tuple[Pack, tuple]:
        """The pack and location path of a compiled rule, for reporting."""
        for pack in self.packs:         # the first rule of that id: a duplicate is not compiled
            for index, x in enumerate(pack.model.rules):
                if (versioned_id(x.id, pack) if pack.model.effective else x.id) == rule.id:
                    return pack, ("rules", index)
        pack = next(p for p in self.packs if p.name == rule.pack)     # a rule versions.py wrote
        return pack, ("effective",)

    def stratify(self, rules: list[CompiledRule]) -> None:
        writers: dict[str, list[CompiledRule]] = {}
        for r in rules:
            for w in r.writes:
                writers.setdefault(w, []).append(r)
        # who is liable for a harm is settled after precedence: a rule that can drop a liability
        # decides it too (TB-2 moves TB-1's delay), so it writes that harm's payer as well
        by_id = {r.id: r for r in rules}
        for path in [p for p in writers if p.startswith(LIABLE_PREFIX)]:
            pending = list(writers[path])
            while pending:
                target = pending.pop()
                for r in rules:
                    if target.id in r.overrides and r not in writers[path]:
                        writers[path].append(r)
                        pending.append(r)
        chain_paths = set(writers) | {CHAIN_LEVEL} | {CLASSIFICATION_PREFIX + c for c in self.classified}
        for r in rules:
            r.reads_chain = frozenset(p for leaf in walk(r.condition) for p in leaf.paths() if p in chain_paths)
            if r.payer is not None:
                r.reads_chain |= {LIABLE_PREFIX + r.payer}

        def cycle(r: CompiledRule, names: tuple) -> None:
            pack, loc = self.rule_loc(r)
            self.issue(pack, loc, "rules feed each other in a cycle: " + " -> ".join(names),
                       "a rule may not depend on what it produces")

        def writers_read(r: CompiledRule) -> list[str]:
            return [w.id for p in sorted(r.reads_chain) for w in writers.get(p, [])]

        for r in dependency_order(rules, lambda r: r.id, writers_read, cycle):
            r.stratum = 1 + max((by_id[w].stratum for w in writers_read(r) if w != r.id), default=-1)


_STRAY = re.compile(r"\{+[^{}]*\}*|\}+")


def stray_braces(template: str, facts: bool = True) -> list[str]:
    """The text around each brace of `template` outside a well-formed placeholder: {param:NAME}, and
    with `facts` {fact.path} and {fact.path|format} (whose names the compiler checks)."""
    covered: set[int] = set()
    for rx in (PARAM_PLACEHOLDER, PLACEHOLDER) if facts else (PARAM_PLACEHOLDER,):
        for m in rx.finditer(template):
            covered.update(range(m.start(), m.end()))
    out: list[str] = []
    end = 0
    for i, ch in enumerate(template):
        if ch in "{}" and i >= end and i not in covered:
            stray = _STRAY.match(template, i)
            assert stray is not None        # it starts with the brace at i
            out.append(stray.group(0))
            end = stray.end()
    return out


def versioned_id(rule_id: str, pack: Pack) -> str:
    """A dated version's rule is `id@version`: versions of one pack share rule ids, a Program may not."""
    return f"{rule_id}@{pack.model.version}"


def deadline_condition(due: str, actual: str, origin: str | None = None) -> Node:
    """Late iff done after `due`, or not done while `as_of` is past `due` (inclusive deadlines)."""
    return Node("any", (
        Node("all", (Leaf("exists", actual, True, origin=origin), Leaf("gt", actual, right=due, origin=origin)),
             "done_late", origin),
        Node("all", (Leaf("exists", actual, False, origin=origin), Leaf("gt", "as_of", right=due, origin=origin)),
             "overdue", origin),
    ), None, origin)


def compile_packs(packs: list[Pack], catalogue: dict[str, Any]) -> Program:
    return _Compiler(packs, catalogue).compile()


def check_packs(packs: list[Pack], catalogue: dict[str, Any] | None, complete: bool = True) -> list[Issue]:
    """All problems at once (for `slarules check`), instead of the first one.

    `complete` is False when other packs of the set did not load: a rule named in
    `overrides` or a classification that no loaded pack defines may be theirs, so it is
    not reported. A catalogue of None (it did not load) leaves clause ids unchecked.
    """
    c = _Compiler(packs, catalogue, complete)
    try:
        c.compile()
    except PackError:
        pass
    return c.issues
