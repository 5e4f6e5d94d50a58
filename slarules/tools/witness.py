"""Concrete parcels that make rules fire: a Hypothesis search over the case model.

`slarules check` asks questions such as "can these two rules both reach a
verdict?" and answers with a witness, a valid case a pack author can read and
replay, or with "none found". Cases are drawn around the pack's own constants
(each threshold and its neighbour one step away, each deadline's duration and
one second more) and around known cases (pack tests) with some blocks redrawn,
then shrunk by Hypothesis to a small parcel. The search evaluates rules in
Python, stratum by stratum as the backend chains them; a witness is then
confirmed by the real engine before it is shown.
"""
from __future__ import annotations

import copy
import random
from collections.abc import Callable
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, find, given, seed, settings, strategies as st
from hypothesis.errors import NoSuchExample

from ..case import fields
from ..errors import SlaRulesError
from ..facts import parse_case
from ..packs.program import Program, walk
from ..packs.types import TYPES
from ..runtime import evaluate
from ..runtime.backend import RunResult
from ..runtime.chaining import chain_of
from ..runtime.values import case_facts

ZONE = timezone(timedelta(hours=8))
DAY = datetime(2026, 5, 2, tzinfo=ZONE)


def _iso(dt: datetime) -> str:
    return dt.isoformat()


class Palette:
    """The constants a set of packs compares with, by type, plus one step either side."""

    def __init__(self, program: Program):
        self.values: dict[str, set] = {}
        for r in program.rules:
            for leaf in walk(r.condition):
                if leaf.shown is not None and leaf.right is None:
                    self.values.setdefault(program.specs[leaf.left].type.name, set()).add(leaf.shown)
        for pack in program.packs:
            for _name, type_name, written in pack.parameters:
                try:
                    self.values.setdefault(type_name, set()).add(TYPES[type_name].parse(written))
                except ValueError:
                    pass

    def of(self, name: str) -> list:
        return sorted(self.values.get(name, ()), key=repr)

    def decimals(self, name: str, step: Decimal, default: list[str]) -> st.SearchStrategy[str]:
        near = [v + d for v in self.of(name) for d in (-step, 0, step) if v + d > 0]
        return st.sampled_from(sorted({str(v) for v in near} | set(default)))

    def offsets(self) -> st.SearchStrategy[timedelta]:
        """Durations from a start: each pack duration, one second either side, and a few plain ones."""
        base = [timedelta(seconds=s) for s in (0, 4, 60, 1800, 7200, 86400)]
        near = [d + timedelta(seconds=s) for d in self.of("duration") for s in (-1, 0, 1)]
        return st.sampled_from(sorted(set(base + [d for d in near if d >= timedelta(0)])))

    def times(self) -> st.SearchStrategy[time]:
        out = {time(9, 0), time(11, 40), time(16, 20), time(20, 0)}
        for t in self.of("time"):
            for s in (-1, 0, 1):
                sec = (t.hour * 3600 + t.minute * 60 + t.second + s) % 86400
                out.add(time(sec // 3600, sec // 60 % 60, sec % 60))
        return st.sampled_from(sorted(out))


def _opt(s: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), s)


# Fields the search holds fixed, so the parts of a drawn case meet (scans at S-01 and D-01: the
# stations; later complaint times: after this one); every other field rules read is drawn by its type.
FIXED = {"waybill": "W1", "stations.sending": "S-01", "stations.delivering": "D-01", "hub_handling.station": "HUB-1",
         "complaint.received_at": _iso(DAY + timedelta(days=1, hours=8))}
EXTRA_CHARGES = ["0.00", "0.01", "3.00", "-1.00"]      # collection.charged_cny = quoted + one of these


class CaseSpace:
    """Hypothesis strategies for whole cases, block by block, from the case field table (case/fields.py):
    every field a rule reads (its `fact`) is drawn by its type around the pack's own constants."""

    def __init__(self, program: Program, seeds: list[dict] | None = None, table: fields.Block = fields.CASE):
        self.program = program
        self.seeds = [s for s in (seeds or []) if isinstance(s, dict)]
        p = Palette(program)
        received = datetime.fromisoformat(FIXED["complaint.received_at"])
        ints = sorted({v + d for v in p.of("int") for d in (-1, 0, 1) if v + d >= 0} | {0, 3})
        by_fact: dict[str, Callable[[fields.Field], st.SearchStrategy]] = {
            "bool": lambda f: st.booleans(),
            "enum": lambda f: st.sampled_from(list(f.values)),
            "list": lambda f: st.lists(st.sampled_from(list(f.values)), unique=True, max_size=3),
            "text": lambda f: st.sampled_from([FIXED["stations.sending"], FIXED["stations.delivering"]]),
            "int": lambda f: st.sampled_from([v for v in ints if v <= f.limits.get("le", v)]),
            "money": lambda f: p.decimals("money", Decimal("0.01"), ["0.00", "12.00", "100.00", "200.00", "320.00"]),
            "length": lambda f: p.decimals("length", Decimal("0.01"), ["30", "60"]),
            "weight": lambda f: p.decimals("weight", Decimal("0.001"), ["8.5"]),
            "instant": lambda f: p.offsets().map(lambda d: _iso(received + d)),
        }
        special: dict[str, st.SearchStrategy] = {
            "service.promised_by": st.sampled_from([DAY + timedelta(days=d) for d in (-1, 0, 2, 6)]).map(_iso),
            "complaint.connected_at": st.just(FIXED["complaint.received_at"]),
        }
        fixed: dict[str, dict[str, Any]] = {}
        drawn: dict[str, dict[str, st.SearchStrategy]] = {}
        for path, f in fields.leaves(table):
            if f.fact is None:
                continue
            block, name = path.split(".", 1) if "." in path else ("", path)      # "": a top-level field
            if path in FIXED:
                fixed.setdefault(block, {})[name] = st.just(FIXED[path])
            else:
                drawn.setdefault(block, {})[name] = special[path] if path in special else by_fact[f.fact](f)
        own = {   # the run's instant and the scans, drawn as a whole (rules read them through derivations)
            "as_of": st.sampled_from([DAY + timedelta(days=d, hours=h) for d in (0, 1, 2, 8) for h in (9, 13, 18)])
                     .map(_iso) | p.offsets().map(lambda d: _iso(DAY + timedelta(days=1, hours=8) + d)),
            "scans": st.builds(self._scans, _opt(p.times()), st.integers(0, 1), _opt(p.times()), st.booleans(),
                               st.booleans())}
        self.blocks: dict[str, st.SearchStrategy] = {}        # in the table's order
        for f in table.fields:
            if f.name in own:
                self.blocks[f.name] = own[f.name]
            elif f.kind == "block":
                self.blocks[f.name] = st.fixed_dictionaries(fixed.get(f.name, {}), optional=drawn.get(f.name, {}))
            elif f.name in drawn.get("", {}):
                self.blocks[f.name] = drawn[""][f.name]
        if "collection" in self.blocks:       # an overcharge: charged is quoted plus a little (or minus)
            self.blocks["collection"] = st.builds(_charged, self.blocks["collection"], st.sampled_from(EXTRA_CHARGES))

    @staticmethod
    def _scans(arrival: time | None, next_day: int, signed: time | None, dispatch: bool, collect: bool) -> list:
        out = []
        if collect:
            out.append({"type": "collect", "station": "S-01", "at": _iso(DAY - timedelta(hours=15))})
        if dispatch:
            out.append({"type": "dispatch", "station": "S-01", "at": _iso(DAY - timedelta(hours=6))})
        if arrival is not None:
            out.append({"type": "arrival", "station": "D-01", "at": _iso(datetime.combine(DAY.date(), arrival, ZONE))})
        if signed is not None:
            day = DAY.date() + timedelta(days=next_day)
            out.append({"type": "signed", "station": "D-01", "at": _iso(datetime.combine(day, signed, ZONE))})
        return out

    def strategy(self) -> st.SearchStrategy[dict]:
        """Cases drawn fresh or from seeds; with dated packs, some moved in time to a version's first or last second."""
        cases = self._strategy()
        edges = sorted({leaf.shown for p in self.program.packs if p.window is not None
                        for leaf in walk(p.window) if isinstance(leaf.shown, datetime)})
        if not edges:
            return cases
        moves = st.sampled_from([None] + [(edge, timedelta(seconds=s)) for edge in edges for s in (-1, 0)])
        return st.builds(_moved, cases, moves)

    def _strategy(self) -> st.SearchStrategy[dict]:
        fresh = st.fixed_dictionaries({"waybill": st.just(FIXED["waybill"])},
                                      optional={k: v for k, v in self.blocks.items()})
        if not self.seeds:
            return fresh

        @st.composite
        def mutated(draw) -> dict:
            case = dict(draw(st.sampled_from(self.seeds)))
            for name, block in self.blocks.items():
                if draw(st.integers(0, 3)) == 0:
                    if draw(st.booleans()):
                        case[name] = draw(block)
                    else:
                        case.pop(name, None)
            return case
        return st.one_of(mutated(), fresh)


def _charged(collection: dict, extra: str) -> dict:
    """A collection whose charge is its quote plus `extra` (never below zero), when it has a quote."""
    quoted = collection.get("quoted_cny")
    if quoted is None:
        return collection
    return {**collection, "charged_cny": str(max(Decimal(0), Decimal(quoted) + Decimal(extra)))}


def _moved(case: dict, move) -> dict:
    """`case` with every timestamp shifted alike so that its collect scan (else first scan) is at `edge + step`."""
    scans = case.get("scans")
    if move is None or not isinstance(scans, list) or not scans:
        return case
    edge, step = move
    collect = next((s for s in scans if isinstance(s, dict) and s.get("type") == "collect"), scans[0])
    try:
        delta = edge + step - datetime.fromisoformat(collect["at"])
    except (TypeError, KeyError, ValueError):
        return case

    def shift(value):
        if isinstance(value, dict):
            return {k: shift(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shift(v) for v in value]
        if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
            try:
                return (datetime.fromisoformat(value) + delta).isoformat()
            except (ValueError, TypeError, OverflowError):
                return value
        return value
    return shift(case)


class Simulator:
    """Which rules fire and reach the verdict, evaluated in Python stratum by stratum."""

    def __init__(self, program: Program):
        self.program = program
        self.by_stratum: dict[int, list] = {}
        for r in program.rules:
            self.by_stratum.setdefault(r.stratum, []).append(r)

    def run(self, case: dict) -> tuple[set[str], set[str]] | None:
        """(fired, reaching the verdict) for a case dict, or None if the case is not valid."""
        try:
            parsed = parse_case(case)
            facts = case_facts(self.program, parsed, parsed.as_of or DAY + timedelta(days=8))
        except SlaRulesError:
            return None
        doc = dict(facts.doc)
        fired: set[str] = set()
        chained = RunResult()            # what fired so far hands on (runtime.chaining)
        chain = chain_of(self.program)
        for stratum in range(self.program.strata):
            doc.update(chain.values(chained.classifications, chained.level, doc))
            for r in self.by_stratum.get(stratum, []):
                if evaluate.value(r.condition, doc) is True:
                    fired.add(r.id)
                    chain.fold(r, chained)
        return fired, fired - self.program.overridden(fired)


class WitnessSearch:
    """Finds a small valid case satisfying a predicate over (fired, reaching the verdict).

    Questions are answered from a pool first: the known cases, then (once) a
    Hypothesis exploration of `examples` generated cases. Only a question the
    pool cannot answer gets a targeted Hypothesis search of its own. A witness
    is then shrunk greedily (blocks, keys, list items dropped while it still
    holds), so the author reads a small parcel.
    """

    def __init__(self, program: Program, seeds: list[dict] | None = None, examples: int = 400, seed: int = 0):
        self.sim = Simulator(program)
        self.space = CaseSpace(program, seeds)
        self.strategy = self.space.strategy()
        self.pool = [(case, self.sim.run(case)) for case in self.space.seeds]
        self.explored = False
        self.examples = examples
        self.seed = seed

    def _settings(self) -> settings:
        return settings(max_examples=self.examples, database=None, deadline=None, derandomize=False,
                        suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink))

    def explore(self) -> None:
        cases: list[dict] = []

        @seed(self.seed)
        @self._settings()
        @given(self.strategy)
        def record(case: dict) -> None:
            cases.append(case)
        record()
        self.pool += [(c, self.sim.run(c)) for c in cases]
        self.explored = True

    def holds(self, predicate, case: dict) -> bool:
        result = self.sim.run(case)
        return result is not None and predicate(*result)

    def find(self, predicate: Callable[[set[str], set[str]], bool]) -> dict | None:
        for attempt in range(2):
            for case, result in self.pool:
                if result is not None and predicate(*result):
                    return self.shrink(case, predicate)
            if self.explored:
                break
            self.explore()
        try:
            return find(self.strategy, lambda c: self.holds(predicate, c), random=random.Random(self.seed),
                        settings=self._settings())
        except NoSuchExample:
            return None

    def shrink(self, case: dict, predicate) -> dict:
        """Drop whatever the witness does not need, one piece at a time."""
        case = copy.deepcopy(case)
        changed = True
        while changed:
            changed = False
            for path in list(_pieces(case)):
                trial = copy.deepcopy(case)
                _drop(trial, path)
                if self.holds(predicate, trial):
                    case, changed = trial, True
                    break
        return case


def _pieces(case: dict):
    """Paths of droppable parts: top-level blocks, keys of blocks, items of lists."""
    for k, v in case.items():
        if k == "waybill":
            continue
        yield (k,)
        if isinstance(v, dict):
            for sub, item in v.items():
                yield (k, sub)
                if isinstance(item, list):
                    for i in range(len(item)):
                        yield (k, sub, i)
        elif isinstance(v, list):
            for i in range(len(v)):
                yield (k, i)


def _drop(case: dict, path: tuple) -> None:
    target: Any = case
    for p in path[:-1]:
        target = target[p]
    del target[path[-1]]
