"""The chaining step, once: what the rules fired so far hand to the strata after them.

A rule that classifies a parcel (TB-7: "handled as lost") or sets a complaint
level feeds rules in later strata (TB-4's fine, RG-4/RG-5's level). Between
strata, and once more for the verdict, the chained facts are set from what has
fired: `classification.NAME` is true when any fired rule classified the parcel
NAME, and `chain.level` is the highest level a fired rule set (0 when none).

Every backend and tool takes that meaning from here: per case through `fold`
and `values` (durable_rules' closers, the verdict, witness), and in bulk
through `columns`, which builds each chained fact from a backend's own
vector operations (the Polars backend, the columnar batch path).

Liability is chained per harm: a compensation rule (docs/policy.md NR-3/NR-4)
names a harm (`payer: loss`), and the party that pays is the one the loaded
packs hold liable for that harm, after precedence (`payer`), else the network.
The compiler puts such a rule in a stratum after every rule that can decide it.
"""
from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any, NamedTuple

from ..packs.program import CompiledRule, Program
from ..packs.vocabulary import CHAIN_LEVEL, CLASSIFICATION_PREFIX

NETWORK = "network"        # pays a compensation when no loaded rule holds a party liable for its harm
from .values import key


class Link(NamedTuple):          # a NamedTuple: cheaper to define at start-up than a frozen dataclass
    """One chained fact: the doc key later strata read, and the rules that write it."""

    key: str
    classification: str | None         # the name it tells (None: the level)
    writers: tuple[CompiledRule, ...]


class Chain:
    """A Program's chained facts, resolved once (compile once, evaluate many)."""

    def __init__(self, program: Program):
        classified = [Link(key(CLASSIFICATION_PREFIX + name), name,
                           tuple(r for r in program.rules if r.classify == name))
                      for name in program.classifications]
        level = Link(key(CHAIN_LEVEL), None, tuple(r for r in program.rules if r.level))
        self.links: tuple[Link, ...] = (*classified, level)
        self.liable: dict[str, tuple[CompiledRule, ...]] = {}
        for r in program.rules:
            for harm in r.liable_for:
                self.liable[harm] = self.liable.get(harm, ()) + (r,)

    def payer(self, harm: str, standing: Callable[[CompiledRule], bool],
              station: Callable[[CompiledRule], Any]) -> tuple[str, Any]:
        """(party, station) liable for `harm`: the first liability rule for it, in pack order, that
        fired and was not overridden (`standing`); else the network, with no station."""
        for rule in self.liable.get(harm, ()):
            if standing(rule):
                return rule.party, station(rule)
        return NETWORK, None

    def payer_columns(self, harm: str, standing: Callable[[CompiledRule], Any], station: Callable[[CompiledRule], Any],
                      pick: Callable[[list[tuple[Any, Any]], Any], Any], text: Callable[[str], Any]) -> tuple[Any, Any]:
        """`payer` as a backend's vector expressions, (party, station): `pick` takes (condition, value)
        pairs in order and a default, and gives the value of the first whose condition holds."""
        rules = self.liable.get(harm, ())
        party = pick([(standing(r), text(r.party)) for r in rules], text(NETWORK))
        return party, pick([(standing(r), station(r)) for r in rules], None)

    @staticmethod
    def fold(rule: CompiledRule, run: Any) -> None:
        """Add a fired rule's classification and level to `run` (anything with `classifications`, `level`)."""
        if rule.classify:
            run.classifications.add(rule.classify)
        if rule.level:
            run.level = max(run.level, rule.level)

    @staticmethod
    def value(link: Link, classifications: set[str], level: int) -> Any:
        return link.classification in classifications if link.classification is not None else level

    def values(self, classifications: set[str], level: int, keys: Container[str] | None = None) -> dict[str, Any]:
        """The chained facts for what has fired, limited to `keys` (those a document carries, e.g. the doc)."""
        return {link.key: self.value(link, classifications, level) for link in self.links
                if keys is None or link.key in keys}

    def neutral(self) -> dict[str, Any]:
        """The chained facts before anything fired."""
        return self.values(set(), 0)

    def columns(self, before: int | None, fired: Callable[[CompiledRule], Any], any_of: Callable[[list], Any],
                max_of: Callable[[list[tuple[Any, int]]], Any], false: Any, zero: Any) -> list[tuple[str, Any]]:
        """Each chained fact as a backend's vector expression, from the rules of strata before `before`
        (None: all of them, for the verdict): `any_of` the writers' fired flags for a classification,
        `max_of` (flag, level) pairs for the level, `false`/`zero` where no rule writes it yet."""
        out = []
        for link in self.links:
            writers = [r for r in link.writers if before is None or r.stratum < before]
            if link.classification is not None:
                out.append((link.key, any_of([fired(r) for r in writers]) if writers else false))
            else:
                # a level link's writers are the rules with a level: none is None
                out.append((link.key, max_of([(fired(r), r.level) for r in writers]) if writers else zero))  # type: ignore[misc]
        return out


def chain_of(program: Program) -> Chain:
    """The Program's Chain, built on first use and kept with it (Program.kept, as values.fact_plan)."""
    return program.kept("_chain", Chain)
