"""From fired rules to a verdict: precedence, money, missing facts, messages.

The verdict is the public contract (docs/contract.md). It is built only from the
Program, the case's facts and what the backend fired, in a fixed order, so the
same case and packs give byte-identical JSON on any machine or thread.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields as dataclass_fields
from decimal import Decimal
from typing import Any

from ..packs.program import CompiledRule, Leaf, Program, message_parts, walk
from ..packs.types import list_separator, render_message, to_json_value
from ..packs.vocabulary import branch_label
from ..runtime import evaluate
from ..runtime.backend import RunResult
from ..runtime.chaining import chain_of
from ..runtime.values import CaseFacts, key

ZERO = Decimal("0.00")
_NONE: frozenset = frozenset()
PARTY_NAMES = {
    "zh": {"sending_station": "发件站点", "delivering_station": "派件站点", "hub": "分拨中心",
           "customer_service": "客服", "customer": "客户", "none": "无"},
    "en": {"sending_station": "sending station", "delivering_station": "delivering station", "hub": "hub",
           "customer_service": "customer service", "customer": "customer", "none": "none"},
}

# Plain dataclasses, not Pydantic models: a verdict is built by us, never parsed, and
# importing Pydantic would double a CLI call's start-up. `slarules schema verdict`
# still gets its JSON schema from them through Pydantic's TypeAdapter.


@dataclass(frozen=True)      # frozen: its JSON is written once per pack (_pack_text), not per verdict
class PackRef:
    name: str
    version: str
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "digest": self.digest}


@dataclass
class Finding:
    clause: str
    rule: str
    kind: str
    party: str
    station: str | None
    fine_cny: str
    refund_cny: str
    severity: str
    facts: dict[str, Any]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"clause": self.clause, "rule": self.rule, "kind": self.kind, "party": self.party,
                "station": self.station, "fine_cny": self.fine_cny, "refund_cny": self.refund_cny,
                "severity": self.severity, "facts": dict(self.facts), "message": self.message}


@dataclass
class DeadlineStatus:
    name: str
    clause: str
    rule: str
    due: str
    actual: str | None
    status: str           # met | breached | open

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "clause": self.clause, "rule": self.rule, "due": self.due,
                "actual": self.actual, "status": self.status}


@dataclass
class Verdict:
    """The verdict of docs/contract.md; `to_dict()` is its JSON object, keys in contract order."""

    waybill: str
    as_of: str
    packs: list[PackRef]
    findings: list[Finding]
    classifications: list[str]
    complaint_level: int | None
    fines_cny: dict[str, str]
    refunds_cny: str
    missing: list[str]
    not_covered: list[str]
    deadlines: list[DeadlineStatus]

    def to_dict(self) -> dict[str, Any]:
        return {"waybill": self.waybill, "as_of": self.as_of, "packs": [p.to_dict() for p in self.packs],
                "findings": [f.to_dict() for f in self.findings], "classifications": list(self.classifications),
                "complaint_level": self.complaint_level, "fines_cny": dict(self.fines_cny),
                "refunds_cny": self.refunds_cny, "missing": list(self.missing),
                "not_covered": list(self.not_covered), "deadlines": [d.to_dict() for d in self.deadlines]}

    def to_json(self, indent: int | None = 2) -> str:
        if indent == 2:
            try:
                return self._json2()
            except _Unexpected:
                pass
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    def _json2(self) -> str:
        """to_json(indent=2) written straight from the fields, with no to_dict() in between.

        Same bytes as json.dumps(self.to_dict(), ensure_ascii=False, indent=2): the
        layout of the contract's keys is fixed here; values go through `_indented`
        at their depth, and anything unexpected raises _Unexpected (json.dumps then).
        """
        out = ['{\n  "waybill": ', _scalar(self.waybill, _NL1), ',\n  "as_of": ', _scalar(self.as_of, _NL1),
               ',\n  "packs": ']
        _objects(out, self.packs, PackRef, _pack_text)
        out.append(',\n  "findings": ')
        _objects(out, self.findings, Finding)
        # (an empty list or dict, the usual case, is written without a call)
        classes, fines, missing, not_covered = self.classifications, self.fines_cny, self.missing, self.not_covered
        out += (',\n  "classifications": ', "[]" if classes == [] else _indented(list(classes), _NL1),
                ',\n  "complaint_level": ', _scalar(self.complaint_level, _NL1),
                ',\n  "fines_cny": ', "{}" if fines == {} else _indented(dict(fines), _NL1),
                ',\n  "refunds_cny": ', _scalar(self.refunds_cny, _NL1),
                ',\n  "missing": ', "[]" if missing == [] else _indented(list(missing), _NL1),
                ',\n  "not_covered": ', "[]" if not_covered == [] else _indented(list(not_covered), _NL1),
                ',\n  "deadlines": ')
        _objects(out, self.deadlines, DeadlineStatus)
        out.append("\n}")
        return "".join(out)

    @staticmethod
    def json_schema() -> dict[str, Any]:
        from pydantic import TypeAdapter
        return TypeAdapter(Verdict).json_schema()


class _Unexpected(Exception):
    """A value `_indented` does not render itself: json.dumps decides (and raises as it would)."""


_string = json.encoder.encode_basestring      # the C encoder json.dumps uses with ensure_ascii=False
_float = float.__repr__


_SPECIAL = frozenset({"station", "party", "branches", "fine_cny", "refund_cny", "clause", "rule"})
_NL1, _NL3 = "\n  ", "\n      "


def _objects(out: list[str], items: list, cls: type, text=None) -> None:
    """A list of verdict parts (findings, deadlines, packs) as json.dumps(indent=2) at depth 2 writes it;
    the keys and their order are the dataclass's fields, as in its to_dict. `text(item)`, when given,
    is an item's rendering (`_object`'s) taken from elsewhere."""
    if not items:
        out.append("[]")
        return
    sep = "[\n    "
    for item in items:
        if type(item) is not cls:
            raise _Unexpected
        out += (sep, text(item) if text is not None else _object(item, cls))
        sep = ",\n    "
    out.append("\n  ]")


def _object(item: Any, cls: type) -> str:
    """One verdict part as json.dumps(indent=2) writes it at depth 2, keys in its dataclass's order."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = tuple((f'"{f.name}": ', f.name) for f in dataclass_fields(cls))
    out = []
    lead = "{\n      "
    for key_text, name in layout:
        value = getattr(item, name)
        out += (lead, key_text, _string(value) if type(value) is str else _indented(value, _NL3))
        lead = ",\n      "
    out.append("\n    }")
    return "".join(out)


_LAYOUTS: dict[type, tuple[tuple[str, str], ...]] = {}
_PACK_TEXTS: dict[int, tuple[PackRef, str]] = {}


def _pack_text(pack: PackRef) -> str:
    """A (frozen) PackRef's `_object` text, written once: every verdict of an engine lists the same packs."""
    hit = _PACK_TEXTS.get(id(pack))
    if hit is None or hit[0] is not pack:
        if len(_PACK_TEXTS) >= 1024:
            _PACK_TEXTS.clear()
        hit = _PACK_TEXTS[id(pack)] = (pack, _object(pack, PackRef))
    return hit[1]


def _scalar(value: Any, newline: str) -> str:
    """_indented for a value that is nearly always a string or None."""
    if type(value) is str:
        return _string(value)
    if value is None:
        return "null"
    return _indented(value, newline)


def _indented(value: Any, newline: str) -> str:
    """json.dumps(value, ensure_ascii=False, indent=2), byte for byte, for the types a verdict holds.

    With an indent, json.dumps runs its pure-Python encoder (generators per level);
    this direct recursion over str, int, bool, None, lists and dicts with string keys
    is several times faster. Anything else (a float that is not finite, a non-string
    key, another type) raises _Unexpected and json.dumps renders the whole verdict.
    """
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = newline + "  "
        parts = []
        for k, v in value.items():
            if type(k) is not str:
                raise _Unexpected
            parts.append(_string(k) + ": " + _indented(v, inner))
        return "{" + inner + ("," + inner).join(parts) + newline + "}"
    if kind is list:
        if not value:
            return "[]"
        inner = newline + "  "
        return "[" + inner + ("," + inner).join([_indented(v, inner) for v in value]) + newline + "]"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float and value == value and value not in (float("inf"), float("-inf")):
        return _float(value)
    raise _Unexpected


def _unknowable(leaf: Leaf) -> tuple[str, ...]:
    """The fields whose absence makes this comparison unknown (`exists` never is; `is` is false)."""
    if leaf.op == "exists":
        return ()
    out = () if leaf.op == "is" else (key(leaf.left),)
    return out + ((key(leaf.right),) if leaf.right is not None else ())


def _nodes(node):
    yield node
    for child in getattr(node, "children", ()):
        yield from _nodes(child)


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


def money(d: Decimal) -> str:
    if d is ZERO:              # no fine, no refund: the usual case
        return "0.00"
    return f"{d.quantize(ZERO)}"


class VerdictBuilder:
    """Turns one backend run into a Verdict; holds no state between cases."""

    def __init__(self, program: Program, clause_order: dict[str, int]):
        self.program = program
        self.clause_order = clause_order
        self.packs = [PackRef(name=p.name, version=p.version, digest=p.digest) for p in program.packs]
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
            keys = dict.fromkeys(k for leaf in walk(rule.when) for k in _unknowable(leaf))
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
        # evaluate.true_labels / unknown_facts per rule, compiled when a case first needs them
        # (not all up front: that is milliseconds of a CLI call's start-up); bounded by the rules
        self._labels: dict[str, Any] = {}
        self._unknown: dict[str, Any] = {}

    def _position(self, rule: CompiledRule) -> int:
        return self._positions[rule.id]

    def labels(self, rule: CompiledRule):
        """evaluate.true_labels(rule.when, ·), compiled (a race compiles it twice, alike)."""
        fn = self._labels.get(rule.id)
        if fn is None:
            fn = self._labels[rule.id] = evaluate.compile_labels(rule.when)
        return fn

    def unknown(self, rule: CompiledRule):
        """evaluate.unknown_facts(rule.when, ·), compiled."""
        fn = self._unknown.get(rule.id)
        if fn is None:
            fn = self._unknown[rule.id] = evaluate.compile_unknown(rule.when)
        return fn

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

    def render(self, rule: CompiledRule, facts: CaseFacts, lang: str, station: str | None,
               fine: Decimal, refund: Decimal, branches: list[str]) -> str:
        """The message with its placeholders filled (the same text PLACEHOLDER.sub gave)."""
        specs = self.program.specs
        out = []
        for part in self.template(rule, lang):
            if type(part) is str:
                out.append(part)
                continue
            path, fmt = part
            if path in _SPECIAL:
                if path == "station":
                    out.append(station or PARTY_NAMES[lang][rule.party])
                elif path == "party":
                    out.append(PARTY_NAMES[lang][rule.party])
                elif path == "branches":
                    out.append(list_separator(lang).join(branch_label(b, lang) for b in branches))
                elif path == "fine_cny":
                    out.append(money(fine))
                elif path == "refund_cny":
                    out.append(money(refund))
                elif path == "clause":
                    out.append(rule.clause)
                else:
                    out.append(rule.id)
            else:
                out.append(render_message(facts.values.get(path), specs[path].type, facts.zone, fmt, lang))
        return "".join(out)

    def build(self, facts: CaseFacts, run: RunResult, lang: str = "zh") -> Verdict:
        program = self.program
        # nothing chained fired: the case's own doc already holds the chained facts' neutral values
        doc = self.final_doc(facts, run) if run.classifications or run.level else facts.doc
        fired = set(run.fired)
        overridden = program.overridden(fired) if fired else fired
        findings: list[Finding] = []
        not_covered: list[str] = []
        fines: dict[str, Decimal] = {}
        refunds = ZERO
        # the fired rules that are not overridden, in pack order (usually a few of all the rules)
        rules = self.rules_by_id
        for rule in sorted([rules[r] for r in fired.difference(overridden) if r in rules], key=self._position):
            station = facts.values.get(rule.station_fact) if rule.station_fact else None
            fine, refund = self.amount(rule.fine, facts), self.amount(rule.refund, facts)
            branches = self.labels(rule)(doc) if rule.id in self.labelled else []
            if rule.kind == "not_covered":
                not_covered.append(f"{rule.clause}: {self.render(rule, facts, lang, station, fine, refund, branches)}")
                continue
            quoted = {p: to_json_value(facts.values.get(p), program.specs[p].type, facts.zone) for p in rule.facts}
            if branches:
                quoted["branches"] = branches
            findings.append(Finding(
                clause=rule.clause, rule=rule.id, kind=rule.kind, party=rule.party, station=station,
                fine_cny=money(fine), refund_cny=money(refund), severity=rule.severity,
                facts=dict(sorted(quoted.items())),
                message=self.render(rule, facts, lang, station, fine, refund, branches)))
            if fine > 0:
                payer = station or rule.party
                fines[payer] = fines.get(payer, ZERO) + fine
            refunds += refund
        findings.sort(key=lambda f: (self.clause_order.get(f.clause, 10**6), f.clause, f.rule))
        return Verdict(
            waybill=facts.case.waybill,
            as_of=_local_text(facts.as_of, facts.zone),
            packs=self.packs, findings=findings,
            classifications=sorted(run.classifications),
            complaint_level=run.level or None,
            fines_cny={k: money(v) for k, v in sorted(fines.items())},
            refunds_cny=money(refunds),
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
            for path in self.unknown(rule)(doc):
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
            name, due_path, actual_path = rule.deadline
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
            out.append(DeadlineStatus(name, rule.clause, rule.id, _local_text(due, zone),
                                      None if actual is None else actual.astimezone(zone).isoformat(), status))
        return out
