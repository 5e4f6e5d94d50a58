"""What compiling packs produces: condition trees and rules, ready for any backend.

Plain dataclasses with no Pydantic in them, so that a Program taken from the
compile cache (or sent to Spark executors) loads without the pack models:
everything a backend, a verdict or an explanation needs, and nothing else.
"""
from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from .vocabulary import CHAIN_LEVEL, CLASSIFICATION_PREFIX, LIABLE_PREFIX, FactSpec, Function

# durable_rules 2.0.28's own limits, here once, as measured (docs/durable_rules.md). The compiler checks the
# ruleset runtime/durable_ruleset.py builds (pack rules, one per distinct scope, one closer per stratum)
# against them, so every loader and `slarules check` refuse what durable_rules cannot hold.
DURABLE_MAX_RULES = 4096         # rules in one ruleset (error 106 past it)
DURABLE_MAX_PROPERTIES = 250     # a fact holds at most 255 properties, nested keys included
DURABLE_MAX_NEXT = 511           # different tests after one test: registering 513 hangs, asserting past 512 hangs
DURABLE_MAX_JOINS = 127          # absence tests and `$or` joins after one test (a list of 128: read past its end)
DURABLE_MAX_RULES_PER_TEST = 255  # rules ending on the same test (a list of 256: the 256th fires a phantom action)
DURABLE_MAX_PENDING = 64         # tests pending at once while one fact is matched (error 303 past it)
DURABLE_MAX_EXPRESSIONS = 32     # a rule's expression sequence: two per `$and`/`$or` (error 113 when it fills)

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)(?:\|([a-z]+))?\}")    # {fact} or {fact|format} in a message


@functools.lru_cache(maxsize=4096)
def message_parts(template: str) -> tuple:
    """A message split once into literal text and (placeholder, format) pairs, in order.

    The verdict (verdict/assembly.py) fills the pairs with a case's values and
    the columnar path (columnar/evaluator.py) with column expressions; both read
    the template through this, so they cannot split it differently.
    """
    parts, at = [], 0
    for m in PLACEHOLDER.finditer(template):
        parts += [template[at:m.start()], (m.group(1), m.group(2))]
        at = m.end()
    parts.append(template[at:])
    return tuple(p for p in parts if p != "")


@dataclass(frozen=True)
class PackInfo:
    """A compiled pack's identity (for verdicts and caches) and its parameters (for witnesses)."""

    name: str
    version: str
    digest: str
    file: str
    timezone: str
    parameters: tuple[tuple[str, str, Any], ...] = ()     # (name, type, value as written)
    # a dated version (`effective:`): the instant fact that picks it and the condition "in force"
    # over that fact (None: in force always); its rules' scopes start with the same condition
    by: str | None = None
    window: Node | None = None

    @classmethod
    def of(cls, pack, by: str | None = None, window: Node | None = None) -> PackInfo:
        m = pack.model
        return cls(pack.name, m.version, pack.digest, pack.doc.file, m.timezone,
                   tuple((n, p.type, p.value) for n, p in m.parameters.items()), by, window)


@dataclass(frozen=True)
class Leaf:
    """One comparison. `value` is already encoded; `right` names a fact instead.

    `shown` is the constant before encoding and `origin` its "file:line", kept
    only to explain a verdict to a person (they take no part in equality).
    """

    op: str
    left: str
    value: Any = None
    right: str | None = None
    label: str | None = None
    shown: Any = field(default=None, compare=False)
    origin: str | None = field(default=None, compare=False)

    def paths(self) -> tuple[str, ...]:
        return (self.left,) if self.right is None else (self.left, self.right)


@dataclass(frozen=True)
class Node:
    op: str                   # "all" | "any"
    children: tuple
    label: str | None = None
    origin: str | None = field(default=None, compare=False)


TRUE = Node("all", ())


@dataclass(frozen=True)
class Amount:
    """A fine or refund: a constant, or the value of a money fact."""

    constant: Decimal | None = None
    fact: str | None = None


@dataclass
class CompiledRule:
    id: str
    clause: str
    pack: str
    title: str
    kind: str
    party: str
    station_fact: str | None
    severity: str
    classify: str | None
    level: int | None
    fine: Amount | None
    refund: Amount | None
    scope: Node
    when: Node
    facts: tuple[str, ...]
    messages: dict[str, str]
    overrides: tuple[str, ...]
    deadline: tuple[str, str, str] | None   # (name, due fact, actual fact)
    location: tuple[str, int | None]
    harms: tuple[str, ...] = ()
    # `{article}` in its messages: (condition, article) pairs, the first whose condition holds (versions.articles)
    articles: tuple[tuple[Node, str], ...] = ()
    stratum: int = 0
    reads_chain: frozenset = frozenset()
    compensation: Amount | None = None
    payer: str | None = None              # kind compensation: the harm whose liable party pays
    # a derived fact in its message -> the figure that decided it while a finite fact it reads was
    # unknown (packs/unknowns.Bound): the verdict shows that figure where the fact itself is absent
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def liable_for(self) -> tuple[str, ...]:
        """The harms a liability rule puts on its party (the ones it declares: `harm:`)."""
        return self.harms if self.kind == "liability" else ()

    @functools.cached_property
    def condition(self) -> Node:
        """scope and when as one tree, the same object every time: evaluate compiles a tree once per
        object, so a new Node per call made `check`'s witness search recompile every rule per case."""
        return Node("all", (self.scope, self.when))

    @property
    def writes(self) -> set[str]:
        out = set()
        if self.classify:
            out.add(CLASSIFICATION_PREFIX + self.classify)
        if self.level:
            out.add(CHAIN_LEVEL)
        out.update(LIABLE_PREFIX + h for h in self.liable_for)
        return out


@dataclass
class Derivation:
    name: str
    fn: Function
    args: dict[str, tuple[str, Any]]   # arg -> ("fact", path) | ("coalesce", paths) | ("const", value)


@dataclass
class Program:
    """Everything a backend needs, and everything a verdict needs to explain itself."""

    packs: list[PackInfo]
    rules: list[CompiledRule]
    derivations: list[Derivation]
    specs: dict[str, FactSpec]
    condition_fields: list[str]
    strata: int
    classifications: list[str]
    timezone: str
    # derived facts a comparison may still decide while a finite fact they read is unknown (unknowns.py)
    closures: tuple = ()

    def rule(self, rule_id: str) -> CompiledRule:
        return self._by_id[rule_id]

    def overridden(self, fired) -> set[str]:
        """Rules suppressed by precedence, given the rules that fired."""
        return {t for rid in fired for t in self._by_id[rid].overrides}

    def deadline_rank(self, clause_order: dict[str, int]) -> dict[str, tuple]:
        """Which rule's deadline a verdict cites when several share a name and a due time.

        A rule that another overrides comes after it, whether or not either fired,
        so an open deadline cites the clause its breach would (a level-3 complaint's
        24 h close is RG-5's, open or breached, not RG-2's until it is breached);
        then catalogue order, then id. Precedence has no cycles (the compiler refuses them).
        """
        overriders: dict[str, list[str]] = {}
        for r in self.rules:
            for target in r.overrides:
                overriders.setdefault(target, []).append(r.id)
        depth: dict[str, int] = {}

        def depth_of(rule_id: str) -> int:
            if rule_id not in depth:
                depth[rule_id] = 1 + max((depth_of(o) for o in overriders.get(rule_id, ())), default=-1)
            return depth[rule_id]
        return {r.id: (depth_of(r.id), clause_order.get(r.clause, 10**6), r.id)
                for r in self.rules if r.deadline is not None}

    def __post_init__(self) -> None:
        self._by_id = {r.id: r for r in self.rules}

    def __getstate__(self) -> dict:
        """Pickle what was compiled, not what a run cached on it (`derive` keeps its plan here)."""
        return {k: v for k, v in self.__dict__.items() if k != "_fact_plan"}

    def kept(self, name: str, make: Any) -> Any:
        """`make(self)`, made on first use and kept with this Program under `name` (values.fact_plan,
        chaining.chain_of): one even when threads ask at once, so what one caller sets on it (a
        FactPlan's projections) is what every other caller gets."""
        value = self.__dict__.get(name)
        if value is None:
            with _KEEPING:
                value = self.__dict__.get(name)
                if value is None:
                    value = self.__dict__[name] = make(self)
        return value


_KEEPING = threading.Lock()


def walk(node) :
    """Every leaf of a condition tree."""
    if isinstance(node, Leaf):
        yield node
    else:
        for child in node.children:
            yield from walk(child)


# ---- closed comparisons (packs/unknowns.py builds them; IR, so every backend and a cached
# Program read them without loading the compiler's machinery) ------------------------------------

@dataclass(frozen=True)
class Closed(Node):
    """A closed comparison: an `any` of the three branches above, a Node to every evaluator.

    `firing` is the same tree for a backend that only asks whether it holds (durable_rules):
    `any(L, all(F absent, L[v1], ..., L[vn]))`. The guard on L and the unknown-making branch
    change only false into unknown, and such a backend cannot tell those apart; without them
    the rule fits durable_rules' expression sequence.
    """

    firing: Node | None = field(default=None, compare=False)
    # for a person (explain): the comparison as written, the finite fact, and the figure that decides
    leaf: Leaf | None = field(default=None, compare=False)
    fact: str = field(default="", compare=False)
    bound: Bound | None = field(default=None, compare=False)


class Bound(NamedTuple):
    """The figure that decided a closed comparison while F was absent: of D's copies, the one
    closest to flipping it. `as_of > D` holds for every route when it holds for the latest due
    (the longest allowance), and fails for every route when it fails for the earliest.

    One definition of "the figure": the per-case verdict reads it through `figure` and the
    columnar one through `pick` (which extreme) and `copies`, so both fill `{D}` alike.
    """

    fact: str                             # F (service.route)
    derived: str                          # D (nr4_total_delay_due), the placeholder it stands in for
    copies: tuple[tuple[str, str], ...]   # (value of F, the fact holding D for that value), domain order
    greatest_if_true: bool                # held: the greatest copy decided it (D on the lesser side)

    def greatest(self, outcome: bool) -> bool:
        """Whether the greatest copy (else the least) is the one that gave `outcome`."""
        return self.greatest_if_true is outcome

    def figure(self, values: Mapping[str, Any], outcome: bool = True) -> Any:
        """D where the case has it; with F absent, the deciding copy's value; else None (absent)."""
        own = values.get(self.derived)
        if own is not None or values.get(self.fact) is not None:
            return own
        seen: list[Any] = [values.get(name) for _, name in self.copies]
        if any(v is None for v in seen):
            return None
        return max(seen) if self.greatest(outcome) else min(seen)

    def deciding_values(self, values: Mapping[str, Any], outcome: bool = True) -> list[str]:
        """The values of F whose copy holds the deciding figure (intra- and inter-province alike)."""
        figure = self.figure(values, outcome)
        return [v for v, name in self.copies if figure is not None and values.get(name) == figure]


class Closure(NamedTuple):
    """One derived fact made decidable over a finite fact's domain: D's copy for each value."""

    fact: str                             # F, the finite fact (service.route)
    derived: str                          # D (nr4_total_delay_due)
    copies: tuple[tuple[str, str], ...]   # (value of F, the fact holding D for that value), domain order
