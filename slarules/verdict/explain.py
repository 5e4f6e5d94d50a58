"""Why a verdict is what it is: every rule, the test that decided it, what would flip it.

A claims officer asks three questions, and each has a mechanical answer here:
- *why* a rule fired: the comparisons that held, with the values seen;
- *why not*: the comparison that failed (or the fact that was missing), with
  the value seen and the pack line it comes from;
- *what would have changed it*: for each finding, single-fact changes that make
  it go away. Each candidate is checked by running the backend again on the
  changed facts, everything else held as seen, so a counterfactual is never
  a guess; the nearest (a deadline or threshold met exactly) is listed first.
"""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..packs.operators import OPERATORS
from ..packs.program import Closed, CompiledRule, Leaf
from ..packs.types import duration_text, list_separator, render, to_json_value, value_label
from ..runtime import evaluate
from ..runtime.backend import RunResult
from ..runtime.chaining import chain_of
from ..runtime.values import CaseFacts, flag_key, key
from .assembly import PARTY_NAMES, Verdict

ABSENT = object()
MAX_COUNTERFACTUALS = 3

WORDS = {
    "zh": {"fired": "成立", "overridden": "成立但被覆盖", "not_applicable": "不适用", "not_fired": "不成立",
           "undecided": "无法判定", "because": "因为", "failed": "未满足", "missing": "缺少", "flip": "反事实",
           "by": "被覆盖于", "recorded": "有记录", "not_recorded": "无记录", "contains": "包含", "saw": "实际",
           "absent": "无", "instead": "改为适用", "rules": "规则", "findings": "判定"},
    "en": {"fired": "fired", "overridden": "fired, overridden", "not_applicable": "not applicable",
           "not_fired": "not fired", "undecided": "undecided", "because": "because", "failed": "failed",
           "missing": "missing", "flip": "would flip", "by": "by", "recorded": "is recorded",
           "not_recorded": "is not recorded", "contains": "contains", "saw": "saw", "absent": "absent",
           "instead": "instead", "rules": "Rules", "findings": "Findings"},
}


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Test(Out):
    """One comparison as it was evaluated on this case."""

    condition: str
    result: Literal["true", "false", "unknown"]
    saw: dict[str, Any]
    where: str | None
    # a comparison decided while a finite fact it reads was unknown: why no value of it matters
    why: str | None = None


class Counterfactual(Out):
    changes: dict[str, Any]        # fact -> the value that flips the finding (None: absent)
    text: str
    instead: list[str]             # findings (rule ids) that would appear in its place


class RuleTrace(Out):
    rule: str
    clause: str
    title: str
    status: Literal["fired", "overridden", "not_applicable", "not_fired", "undecided"]
    overridden_by: list[str]
    tests: list[Test]
    missing: list[str]
    counterfactuals: list[Counterfactual]


class Explanation(Out):
    verdict: Verdict
    rules: list[RuleTrace]

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False, indent=indent)


class Explainer:
    """Builds the trace for one case from its facts, its run and its verdict."""

    def __init__(self, engine, facts: CaseFacts, run: RunResult, verdict: Verdict, lang: str):
        self.engine = engine
        self.program = engine.program
        self.facts = facts
        self.run = run
        self.verdict = verdict
        self.lang = lang
        self.words = WORDS[lang]
        self.doc = engine.final_values(facts, run)
        self.findings = {f.rule for f in verdict.findings}

    # -- values ------------------------------------------------------------------------
    def value(self, path: str) -> Any:
        chained = chain_of(self.program).values(self.run.classifications, self.run.level, (key(path),))
        return chained[key(path)] if chained else self.facts.values.get(path)

    def show(self, path: str, value: Any) -> str:
        if value is None:
            return self.words["absent"]
        if isinstance(value, list) and not value:
            return "[]"
        return render(value, self.program.specs[path].type, self.facts.zone, None, self.lang)

    def json_value(self, path: str, value: Any) -> Any:
        ftype = self.program.specs[path].type
        if ftype.name == "block":
            return value is not None
        return to_json_value(value, ftype, self.facts.zone)

    def describe(self, leaf: Leaf) -> str:
        w = self.words
        shape = OPERATORS[leaf.op].shape
        if shape == "exists":
            return f"{leaf.left} {w['recorded'] if leaf.value else w['not_recorded']}"
        if shape == "contains":
            return f"{leaf.left} {w['contains']} {leaf.value}"
        right = leaf.right if leaf.right is not None else self.show(leaf.left, leaf.shown)
        return f"{leaf.left} {OPERATORS[leaf.op].symbol} {right}"

    def test(self, node: Leaf | Closed) -> Test:
        """One comparison; a closed one (F absent) as written, with the reason it decided."""
        leaf = node.leaf if isinstance(node, Closed) else node
        assert isinstance(leaf, Leaf)          # a Closed is made with its leaf (unknowns._Closer.leaf)
        result = evaluate.value(node, self.doc)
        saw = {p: self.json_value(p, self.value(p)) for p in leaf.paths()}
        why = None
        if isinstance(node, Closed):
            saw[node.fact] = None
            why = self.why(node, result) if result is not None else None
        return Test(condition=self.describe(leaf), result={True: "true", False: "false", None: "unknown"}[result],  # type: ignore[arg-type,index]
                    saw=saw, where=leaf.origin, why=why)

    def why(self, node: Closed, outcome: bool) -> str:
        """A comparison every value of an unknown fact decides alike, in a sentence: the fact is not
        recorded, but even the figure closest to flipping it (the latest due) gives this outcome."""
        zh, fact, leaf = self.lang == "zh", node.fact, node.leaf
        assert leaf is not None
        condition = self.describe(leaf)
        noun = fact.rsplit(".", 1)[-1]
        b = node.bound
        figure = b.figure(self.facts.values, outcome) if b is not None else None
        if b is None or figure is None:
            if zh:
                return f"{fact} 无记录，但无论取何值结果相同：{condition} 对每一个值都{'成立' if outcome else '不成立'}。"
            return (f"{fact} is not recorded, but every {noun} gives the same outcome: {condition} "
                    f"{'holds' if outcome else 'fails'} for each.")
        ftype = self.program.specs[b.derived].type
        greatest = b.greatest(outcome)
        timely = ftype.name in ("instant", "date", "time")
        values = list_separator(self.lang).join(value_label(v, self.lang)
                                                for v in b.deciding_values(self.facts.values, outcome))
        shown = self.show(b.derived, figure)
        if zh:
            extreme = ("最晚" if greatest else "最早") if timely else ("最大" if greatest else "最小")
            return (f"{fact} 无记录，但无论取何值结果相同：即使按{extreme}的 {b.derived}（{shown}，{values}）计算，"
                    f"{condition} 仍{'成立' if outcome else '不成立'}。")
        extreme = ("latest" if greatest else "earliest") if timely else ("greatest" if greatest else "least")
        return (f"{fact} is not recorded, but every {noun} gives the same outcome: {condition} "
                f"{'holds' if outcome else 'fails'} even for the {extreme} {b.derived} of any {noun}, {shown} ({values}).")

    # -- which tests decided a tree ----------------------------------------------------
    def deciding(self, node, outcome: bool | None) -> list[Leaf | Closed]:
        """Leaves that gave `node` its value: the ones that held, failed or were unknown."""
        if evaluate.value(node, self.doc) is not outcome:
            return []
        if isinstance(node, Closed) and node.leaf is not None:
            # F known: the comparison as written decided; F absent: the closed comparison as one test
            return self.deciding(node.leaf, outcome) if self.value(node.fact) is not None else [node]
        if isinstance(node, Leaf):
            return [node]
        out: list[Leaf | Closed] = []
        for child in node.children:
            out.extend(self.deciding(child, outcome))
        return out

    # -- one rule ----------------------------------------------------------------------
    def trace(self, rule: CompiledRule) -> RuleTrace:
        fired = rule.id in self.run.fired
        overriders = sorted(r.id for r in self.program.rules if rule.id in r.overrides and r.id in self.run.fired)
        scope = evaluate.value(rule.scope, self.doc)
        missing: list[str] = []
        if fired:
            status = "overridden" if overriders else "fired"
            leaves = self.deciding(rule.condition, True)
        elif scope is not True:
            status = "not_applicable"
            leaves = self.deciding(rule.scope, scope)
            missing = self.roots(evaluate.unknown_facts(rule.scope, self.doc)) if scope is None else []
        else:
            when = evaluate.value(rule.when, self.doc)
            status = "not_fired" if when is False else "undecided"
            leaves = self.deciding(rule.when, when)
            missing = self.roots(evaluate.unknown_facts(rule.when, self.doc)) if when is None else []
        counterfactuals = self.counterfactuals(rule) if rule.id in self.findings else []
        return RuleTrace(rule=rule.id, clause=rule.clause, title=rule.title, status=status,  # type: ignore[arg-type]
                         overridden_by=overriders, tests=[self.test(leaf) for leaf in dict.fromkeys(leaves)],
                         missing=missing, counterfactuals=counterfactuals)

    def roots(self, paths: list[str]) -> list[str]:
        out: dict[str, None] = {}
        for p in paths:
            out.update(dict.fromkeys(self.facts.missing_roots(p)))
        return list(out)

    # -- counterfactuals ---------------------------------------------------------------
    def counterfactuals(self, rule: CompiledRule) -> list[Counterfactual]:
        found: list[Counterfactual] = []
        seen: set = set()
        for rank, changes in sorted(self.candidates(rule), key=lambda c: c[0]):
            ident = tuple(sorted((p, self.encoded(p, v)) for p, v in changes.items()))
            if ident in seen:
                continue
            seen.add(ident)
            instead = self.verify(rule, changes)
            if instead is not None:
                found.append(self.counterfactual(rule, changes, instead))
                if len(found) == MAX_COUNTERFACTUALS:
                    break
        return found

    def encoded(self, path: str, new: Any) -> str:
        return repr(new if new is ABSENT or isinstance(new, list) else self.program.specs[path].type.encode(new))

    def candidates(self, rule: CompiledRule):
        """(rank, {fact: new value or ABSENT}): changes that may flip `rule`, fewest facts first."""
        if rule.deadline is not None:
            _, due, actual = rule.deadline
            if self.value(due) is not None:
                yield (1, 0, 0), {actual: self.value(due)}
        for (kind, order), changes in self.flips(rule.condition, iter(range(10**6))):
            yield (len(changes), kind, order), changes

    def flips(self, node, counter) -> list[tuple[tuple[int, int], dict]]:
        """Change sets that make a true `node` false: one child of an `all`, every true child of an `any`."""
        if isinstance(node, Closed) and node.leaf is not None:
            # F known: flip the comparison as written; F absent: no one value of another fact is known to
            # flip every value of F alike, and a copy of a derived fact is nothing a case could change
            return self.flips(node.leaf, counter) if self.value(node.fact) is not None else []
        if isinstance(node, Leaf):
            order = next(counter)
            flip = self.leaf_flip(node) if evaluate.value(node, self.doc) is True else None
            return [((flip[0], order), {node.left: flip[1]})] if flip else []
        child_flips = [self.flips(c, counter) for c in node.children if evaluate.value(c, self.doc) is True]
        if node.op == "all":
            return [f for flips in child_flips for f in flips]
        combined: list[tuple[tuple[int, int], dict]] = [((0, 0), {})]
        for flips in child_flips:
            combined = [((max(r1[0], r2[0]), max(r1[1], r2[1])), {**c1, **c2})
                        for r1, c1 in combined for r2, c2 in flips[:2]
                        if all(c1.get(p, c2[p]) is c2[p] or c1.get(p) == c2[p] for p in c2)]
        return combined if child_flips else []

    def leaf_flip(self, leaf: Leaf) -> tuple[int, Any] | None:
        """(kind rank, new value) making one true comparison false: thresholds, then yes/no facts."""
        ftype = self.program.specs[leaf.left].type
        if leaf.left == "as_of" or ftype.name == "block":
            return None
        how, steps = OPERATORS[leaf.op].flip or (None, 0)
        if how == "absent":       # an absent yes/no fact flips by being given (NR-1: "had consented")
            return (4, ABSENT) if leaf.value else (4, True) if ftype.name == "bool" else None
        if how == "drop":
            return 3, [v for v in self.value(leaf.left) if v != leaf.value]
        if how == "negate" and ftype.name == "bool":
            return 2, not leaf.shown
        if how == "equal" and leaf.right is None:
            return 3, leaf.shown
        if how == "bound":
            bound = self.doc[key(leaf.right)] if leaf.right is not None else leaf.value
            return 1, ftype.decode(bound + steps * ftype.step)
        return None

    def changed_doc(self, changes: dict[str, Any]) -> dict:
        doc = dict(self.facts.doc)
        for path, new in changes.items():
            spec = self.program.specs[path]
            if new is ABSENT:
                doc.pop(key(path), None)
            elif spec.type.name == "list":
                for v in list(doc):
                    if v.startswith(key(path) + "__has__"):
                        doc[v] = False
                for v in new:
                    doc[flag_key(path, v)] = True
            else:
                doc[key(path)] = spec.type.encode(new)
        return doc

    def verify(self, rule: CompiledRule, changes: dict[str, Any]) -> list[str] | None:
        """Run the changed facts; the findings that appear instead, or None if `rule` stays."""
        run = self.engine.rerun(self.changed_doc(changes))
        overridden = self.program.overridden(run.fired)
        after = [r.id for r in self.program.rules if r.id in run.fired and r.id not in overridden
                 and r.kind != "not_covered"]
        if rule.id in after:
            return None
        return [rid for rid in after if rid not in self.findings]

    def counterfactual(self, rule: CompiledRule, changes: dict[str, Any], instead: list[str]) -> Counterfactual:
        zh = self.lang == "zh"
        path, new = next(iter(changes.items())) if len(changes) == 1 else (None, None)
        if rule.deadline is not None and path == rule.deadline[2]:
            seen, shown_new = self.value(path), self.show(path, new)
            if seen is None:
                late = duration_text(self.facts.as_of - new, self.lang)  # type: ignore[operator]  # the new due instant
                text = (f"若 {path} 不晚于 {shown_new} 即可按时；截至裁决时间仍未完成，已超时 {late}。" if zh else
                        f"{path} by {shown_new} would have been on time; it is still not done, {late} past due.")
            else:
                gap = self.gap(path, seen, new)
                text = (f"若 {path} 不晚于 {shown_new} 即可按时；实际晚了 {gap}。" if zh else
                        f"{path} by {shown_new} would have been on time; it was {gap} late.")
        else:
            parts = [self.change_text(p, v) for p, v in changes.items()]
            finding = next(f for f in self.verdict.findings if f.rule == rule.id)
            if rule.party == "none":
                outcome = f"{rule.clause} 不成立" if zh else f"{rule.clause} would not apply"
            else:
                who = PARTY_NAMES[self.lang][rule.party] + (f" {finding.station}" if finding.station else "")
                outcome = (f"{who} 不承担此项（{rule.clause}）" if zh else
                           f"{who} would not bear this ({rule.clause})")
            text = (f"若 {'，且 '.join(parts)}，{outcome}。" if zh else f"with {' and '.join(parts)}, {outcome}.")
        if instead:
            text += (f" 改为适用：{', '.join(instead)}。" if zh else f" Instead: {', '.join(instead)}.")
        return Counterfactual(changes={p: None if v is ABSENT else self.json_value(p, v) for p, v in changes.items()},
                              text=text, instead=instead)

    def change_text(self, path: str, new: Any) -> str:
        seen = self.value(path)
        shown_new = self.words["absent"] if new is ABSENT else self.show(path, new)
        gap = self.gap(path, seen, new)
        if self.lang == "zh":
            return f"{path} 为 {shown_new}（实际 {self.show(path, seen)}" + (f"，差 {gap}）" if gap else "）")
        return f"{path} = {shown_new} instead of {self.show(path, seen)}" + (f" ({gap} apart)" if gap else "")

    def gap(self, path: str, seen: Any, new: Any) -> str | None:
        ftype = self.program.specs[path].type
        if seen is None or new is ABSENT or not ftype.ordered or ftype.name == "time":
            return None
        diff = abs(seen - new)
        if ftype.name == "date":
            return f"{diff.days} 天" if self.lang == "zh" else f"{diff.days} d"
        if isinstance(diff, timedelta):     # as the finding's message says it ("延误 20 分钟 5 秒")
            return duration_text(diff, self.lang)
        return f"{render(diff, ftype, self.facts.zone, None, self.lang)} {ftype.unit}".strip()


def explain(engine, case, *, as_of: Any = None, lang: str = "zh") -> Explanation:
    """Adjudicate `case` and trace every rule; see `Engine.explain`."""
    facts, run = engine.run(case, as_of)
    verdict = engine.verdict(facts, run, lang)
    ex = Explainer(engine, facts, run, verdict, lang)
    return Explanation(verdict=verdict, rules=[ex.trace(r) for r in engine.program.rules])


def render_explanation(e: Explanation, lang: str = "zh") -> str:
    """The trace as a claims officer reads it: findings first, then every rule."""
    from .text import render_text
    w = WORDS[lang]
    out = [render_text(e.verdict, lang), f"{w['rules']} ({len(e.rules)})"]
    order = {"fired": 0, "overridden": 1, "undecided": 2, "not_fired": 3, "not_applicable": 4}
    for t in sorted(e.rules, key=lambda t: order[t.status]):
        head = f"  [{t.clause}] {t.rule} · {w[t.status]}"
        if t.overridden_by:
            head += f" ({w['by']} {', '.join(t.overridden_by)})"
        out.append(head)
        label = w["because"] if t.status in ("fired", "overridden") else w["failed"]
        for test in t.tests:
            if test.result == "unknown":
                continue
            saw = ", ".join(f"{k} = {_plain(v, w)}" for k, v in test.saw.items())
            out.append(f"      {label}: {test.condition}   [{w['saw']} {saw}; {test.where}]")
            if test.why:
                out.append(f"        {test.why}")
        if t.missing:
            out.append(f"      {w['missing']}: {', '.join(t.missing)}")
        for c in t.counterfactuals:
            out.append(f"      {w['flip']}: {c.text}")
    return "\n".join(out) + "\n"


def _plain(value: Any, w: dict) -> str:
    if value is None:
        return w["absent"]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
