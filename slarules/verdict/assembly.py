"""From fired rules to a verdict: precedence, money, missing facts, messages.

The verdict is the public contract (docs/contract.md). It is built only from the
Program, the case's facts and what the backend fired, in a fixed order, so the
same case and packs give byte-identical JSON on any machine or thread.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..packs.program import CompiledRule, Program, message_parts
from ..packs.types import list_separator, render_message, to_json_value
from ..packs.vocabulary import branch_label
from ..runtime import evaluate
from ..runtime.backend import RunResult
from ..runtime.chaining import chain_of
from ..runtime.values import CaseFacts
from .layout import (
    AMOUNTS,
    NOT_COVERED,
    ZERO,
    DeadlineStatus,
    Finding,
    PackRef,
    Verdict,
    finding_order,
    money,
    money_fields,
    payer,
)

PARTY_NAMES = {
    "zh": {"sending_station": "发件站点", "delivering_station": "派件站点", "hub": "分拨中心",
           "customer_service": "客服", "customer": "客户", "network": "网络总部", "none": "无"},
    "en": {"sending_station": "sending station", "delivering_station": "delivering station", "hub": "hub",
           "customer_service": "customer service", "customer": "customer", "network": "the network (headquarters)",
           "none": "none"},
}

_SPECIAL = frozenset({"station", "party", "branches", "fine_cny", "refund_cny", "compensation_cny", "clause", "rule",
                      "article"})
_NONE: frozenset = frozenset()


def _nodes(node):
    yield node
    for child in getattr(node, "children", ()):
        yield from _nodes(child)


class VerdictBuilder:
    """Turns one backend run into a Verdict; holds no state between cases."""

    def __init__(self, program: Program, clause_order: dict[str, int]):
        self.program = program
        self.clause_order = clause_order
        self.packs = [PackRef(name=p.name, version=p.version, digest=p.digest) for p in program.packs]
        # dated versions: (pack, its "in force" condition); a case lists the versions in force for it
        self.windows = [(ref, evaluate.compile_tree(p.window) if p.window else None) for ref, p in zip(self.packs, program.packs)]
        self.dated = any(w for _, w in self.windows)
        self.scope = {r.id: evaluate.compile_tree(r.scope) for r in program.rules}
        self.when = {r.id: evaluate.compile_tree(r.when) for r in program.rules}
        self.deadline_rules = [r for r in program.rules if r.deadline is not None]
        self.deadline_rank = program.deadline_rank(clause_order)
        # A condition can only be unknown when a field it compares is absent: per field, the rules
        # whose `when` that could leave undecided. The rest were decided by the backend.
        # (and per rule, `unknowable_keys`: the fields whose absence could leave its `when` undecided)
        self.unknown_if_absent: dict[str, list[CompiledRule]] = {}
        self.unknowable_keys: dict[str, frozenset[str]] = {}
        for rule in program.rules:
            keys = evaluate.unknowable_keys(rule.when)
            for k in keys:
                self.unknown_if_absent.setdefault(k, []).append(rule)
            self.unknowable_keys[rule.id] = frozenset(keys)
        self.unknowable = frozenset(self.unknown_if_absent)
        self.unknown_ids = {k: frozenset(r.id for r in rules) for k, rules in self.unknown_if_absent.items()}
        self.deadline_by_id = {r.id: r for r in self.deadline_rules}
        self.rules_by_id = {r.id: r for r in program.rules}
        self._positions = {r.id: i for i, r in enumerate(program.rules)}
        self.labelled = {r.id for r in program.rules
                         if any(getattr(n, "label", None) for n in _nodes(r.when))}

    def _position(self, rule: CompiledRule) -> int:
        return self._positions[rule.id]

    def final_doc(self, facts: CaseFacts, run: RunResult) -> dict[str, Any]:
        doc = dict(facts.doc)
        doc.update(chain_of(self.program).values(run.classifications, run.level, doc))
        return doc

    def amount(self, amount, facts: CaseFacts) -> Decimal:
        if amount is None:
            return ZERO
        if amount.constant is not None:
            return amount.constant
        value = facts.values.get(amount.fact)
        return value if value is not None else ZERO

    def template(self, rule: CompiledRule, lang: str) -> tuple:
        """A rule's message in `lang` as literal text and (placeholder, format) pairs (program.message_parts)."""
        return message_parts(rule.messages[lang])

    def article(self, rule: CompiledRule, doc: dict) -> str:
        """The catalogue article a rule cites for this case: the first variant whose days hold its instant."""
        for condition, text in rule.articles:
            if evaluate.value(condition, doc) is True:
                return text
        return ""

    def render(self, rule: CompiledRule, facts: CaseFacts, lang: str, station: str | None,
               fine: Decimal, refund: Decimal, branches: list[str], compensation: Decimal = ZERO,
               party: str | None = None) -> str:
        """The message with its placeholders filled (the same text PLACEHOLDER.sub gave);
        `party` is a compensation's payer, when it is not the rule's own."""
        party = party or rule.party
        specs = self.program.specs
        out = []
        for part in self.template(rule, lang):
            if type(part) is str:
                out.append(part)
                continue
            path, fmt = part
            if path in _SPECIAL:
                if path == "station":
                    out.append(station or PARTY_NAMES[lang][party])
                elif path == "party":
                    out.append(PARTY_NAMES[lang][party])
                elif path == "branches":
                    out.append(list_separator(lang).join(branch_label(b, lang) for b in branches))
                elif path == "fine_cny":
                    out.append(money(fine))
                elif path == "refund_cny":
                    out.append(money(refund))
                elif path == "compensation_cny":
                    out.append(money(compensation))
                elif path == "clause":
                    out.append(rule.clause)
                elif path == "article":
                    out.append(self.article(rule, facts.doc))
                else:
                    out.append(rule.id)
            else:
                value = facts.values.get(path)
                if value is None and path in rule.figures:     # decided while a finite fact was unknown
                    value = rule.figures[path].figure(facts.values)
                out.append(render_message(value, specs[path].type, facts.zone, fmt, lang))
        return "".join(out)

    def build(self, facts: CaseFacts, run: RunResult, lang: str = "zh") -> Verdict:
        program = self.program
        # nothing chained fired: the case's own doc already holds the chained facts' neutral values
        doc = self.final_doc(facts, run) if run.classifications or run.level else facts.doc
        fired = set(run.fired)
        overridden = program.overridden(fired) if fired else fired
        findings: list[Finding] = []
        not_covered: list[str] = []
        booked: list[tuple[str, dict[str, Decimal]]] = []     # (payer, amounts) per finding: layout.money_fields
        # the fired rules that are not overridden, in pack order (usually a few of all the rules)
        rules = self.rules_by_id
        for rule in sorted([rules[r] for r in fired.difference(overridden) if r in rules], key=self._position):
            party = rule.party
            if rule.payer is not None:      # a compensation: paid by whoever is liable for its harm
                party, station = chain_of(program).payer(
                    rule.payer, lambda r: r.id in fired and r.id not in overridden,
                    lambda r: facts.values.get(r.station_fact) if r.station_fact else None)
            else:
                station = facts.values.get(rule.station_fact) if rule.station_fact else None
            amounts = {a: self.amount(getattr(rule, a), facts) for a in AMOUNTS}
            fine, refund = amounts["fine"], amounts["refund"]
            branches = evaluate.true_labels(rule.when, doc) if rule.id in self.labelled else []
            if rule.kind == NOT_COVERED:
                not_covered.append(f"{rule.clause}: {self.render(rule, facts, lang, station, fine, refund, branches)}")
                continue
            quoted = {p: to_json_value(facts.values.get(p), program.specs[p].type, facts.zone) for p in rule.facts}
            if branches:
                quoted["branches"] = branches
            findings.append(Finding(
                clause=rule.clause, rule=rule.id, kind=rule.kind, party=party, station=station,
                **{shown: money(amounts[a]) for a, shown in AMOUNTS.items()}, severity=rule.severity,
                facts=dict(sorted(quoted.items())),
                message=self.render(rule, facts, lang, station, fine, refund, branches, amounts["compensation"],
                                    party)))
            booked.append((payer(station, party), amounts))
        order = self.clause_order
        findings.sort(key=lambda f: finding_order(order, f.clause, f.rule))
        return Verdict(
            waybill=facts.case.waybill,
            as_of=_local_text(facts.as_of, facts.zone),
            packs=[ref for ref, w in self.windows if w is None or w(doc) is True] if self.dated else self.packs,
            findings=findings,
            classifications=sorted(run.classifications),
            complaint_level=run.level or None,
            **money_fields(booked),
            missing=self.missing(facts, doc, fired, run),
            not_covered=sorted(not_covered),
            deadlines=self.deadlines(facts, doc, fired, run))

    def missing(self, facts: CaseFacts, doc: dict, fired: set[str], run: RunResult | None = None) -> list[str]:
        if run is not None and run.undecided is not None:
            undecided = [self.program.rule(r) for r in run.undecided]
        else:
            # three-valued evaluation only for rules that did not fire and compare an absent field
            # (and in scope: as the backend decided it, when it says)
            # (the candidates as sets of rule ids: the missing facts come out as a sorted set anyway)
            in_scope = run.in_scope if run is not None else None
            if in_scope is not None:      # a few rules: look only at theirs
                keys, present = self.unknowable_keys, doc.keys()
                ids = {i for i in in_scope if i not in fired and not present >= keys.get(i, _NONE)}
            else:
                absent = self.unknowable.difference(doc)
                ids = set().union(*[self.unknown_ids[k] for k in absent]) if absent else set()
                ids.difference_update(fired)
            when, scope, rules = self.when, self.scope, self.rules_by_id
            undecided = [rules[i] for i in ids if when[i](doc) is None
                         and (in_scope is not None or scope[i](doc) is True)]
        out: set[str] = set()
        for rule in undecided:
            for path in evaluate.unknown_facts(rule.when, doc):
                out.update(facts.missing_roots(path))
        return sorted(out)

    def deadlines(self, facts: CaseFacts, doc: dict, fired: set[str], run: RunResult | None = None):
        best: dict[str, tuple] = {}
        in_scope = run.in_scope if run is not None else None
        if in_scope is not None:      # a few rules in scope (the order is immaterial: ranks are unique)
            by_id = self.deadline_by_id
            candidates = [by_id[i] for i in in_scope if i in by_id]
        else:
            candidates = [r for r in self.deadline_rules if self.scope[r.id](doc) is True]
        values, ranks, zone = facts.values, self.deadline_rank, facts.zone
        for rule in candidates:
            name, due_path, actual_path = rule.deadline      # type: ignore[misc]  # a deadline rule has one
            due = values.get(due_path)
            if due is None:
                continue
            rank = (due, ranks[rule.id])
            held = best.get(name)
            if held is None or rank < held[0]:
                best[name] = (rank, rule, due, values.get(actual_path))
        out = []
        for name in sorted(best) if len(best) > 1 else best:
            _, rule, due, actual = best[name]
            status = "breached" if rule.id in fired else "open" if actual is None else "met"
            out.append(DeadlineStatus(name=name, clause=rule.clause, rule=rule.id, due=_local_text(due, zone),
                                      actual=None if actual is None else actual.astimezone(zone).isoformat(),
                                      status=status))
        return out


_LOCAL_TEXTS: dict[tuple, str] = {}


def _local_text(instant, zone) -> str:
    """`instant.astimezone(zone).isoformat()`, remembered for the few instants seen again and again
    (the as_of of a run of requests, due times on the hour); a pure function of its two arguments."""
    k = (instant, instant.utcoffset(), zone)
    text = _LOCAL_TEXTS.get(k)
    if text is None:
        text = instant.astimezone(zone).isoformat()
        if len(_LOCAL_TEXTS) >= 4096:
            _LOCAL_TEXTS.clear()
        _LOCAL_TEXTS[k] = text
    return text
