"""The facts of one case: base fields, built-in and pack-declared derivations.

Values stay exact Python objects (aware datetimes, Decimals) for messages; `doc`
is the encoded, flat form a backend matches on. A derived value that cannot be
computed is absent, and `roots` remembers which underlying facts were missing,
so a verdict says "reference_arrival is missing", not "tb_deadline is missing".
"""
from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import CaseError
from ..packs.program import Program
from ..packs.types import EPOCH, _encode_instant
from ..packs.vocabulary import BASE_FACTS, BLOCKS, CHAIN_LEVEL, CLASSIFICATION_PREFIX, ISSUE_VALUES, Case, Derived


# encoders that return their argument unchanged when it already has this type (bool(b), str(s), int(i))
_AS_ITSELF = {"bool": bool, "text": str, "enum": str, "int": int}
_INSTANT = object()
_MICROSECOND = timedelta(microseconds=1)


def key(path: str) -> str:
    """The flat field name a backend sees for a fact path."""
    return path.replace(".", "__")


def flag_key(path: str, value: str) -> str:
    return f"{key(path)}__has__{value}"


@dataclass
class CaseFacts:
    case: Case
    as_of: datetime
    zone: ZoneInfo
    values: dict[str, Any]
    roots: dict[str, tuple[str, ...]]
    doc: dict[str, Any]

    def missing_roots(self, path: str) -> tuple[str, ...]:
        return self.roots.get(path, (path,))


class FactPlan:
    """How to compute one Program's facts, resolved once: compile once, evaluate many.

    Per case this is the hot path of a batch, so field paths, derivation
    arguments and encoders are looked up here and not per case; a block's
    fields are copied from the model in one step.
    """

    def __init__(self, program: Program):
        self.program = program
        blocks: dict[str, list[tuple[str, str]]] = {}
        self.computed: list[tuple[str, Any]] = []
        for path, spec in BASE_FACTS.items():
            block, _, name = path.partition(".")
            if name and block in BLOCKS:
                blocks.setdefault(block, []).append((path, name))
            else:
                self.computed.append((path, spec.get))
        # per block: its fact paths, one getter reading all its fields at once, and all-None
        self.blocks: list[tuple[str, tuple[str, ...], Any, dict[str, None]]] = []
        for block, fields in blocks.items():
            paths = tuple(p for p, _ in fields)
            names = [n for _, n in fields]
            getter = operator.attrgetter(*names) if len(names) > 1 else (lambda o, n=names[0]: (getattr(o, n),))
            self.blocks.append((block, paths, getter, dict.fromkeys(paths)))
        self.derivations = [self._derivation(d) for d in program.derivations]
        # (doc key, fact path, encoder or constant, flags of a list) in condition_fields order
        self.encoding: list[tuple[str, str, Any, Any]] = []
        for path in program.condition_fields:
            ftype = program.specs[path].type
            if path == CHAIN_LEVEL:
                self.encoding.append((key(path), path, None, 0))
            elif path.startswith(CLASSIFICATION_PREFIX):
                self.encoding.append((key(path), path, None, False))
            elif ftype.name == "list":
                self.encoding.append((key(path), path, None, [(flag_key(path, v), v) for v in ISSUE_VALUES]))
            else:
                # a value already of the type its encoder returns is encoded as itself (no call);
                # an instant inline (types._encode_instant's integer microseconds, exactly)
                extra = _INSTANT if ftype.encode is _encode_instant else _AS_ITSELF.get(ftype.name)
                self.encoding.append((key(path), path, ftype.encode, extra))

    @staticmethod
    def _derivation(d):
        consts = {a: v for a, (kind, v) in d.args.items() if kind == "const"}
        facts = [(a, tuple(v)) for a, (kind, v) in d.args.items() if kind != "const"]
        complete = len(d.args) == len(d.fn.args)
        # the constants bound once: per case only the facts are passed
        compute = functools.partial(d.fn.compute, **consts) if consts else d.fn.compute
        # one fact argument read from one path, first in the function's signature (`add`,
        # `local_date`, ...): called positionally, its missing root found without a loop
        single = None
        if complete and len(facts) == 1 and len(facts[0][1]) == 1 and next(iter(d.fn.args)) == facts[0][0]:
            single = facts[0][1][0]
        return d.name, compute, facts, complete, single, (single,)

    def facts(self, case: Case, as_of: datetime) -> CaseFacts:
        zone = ZoneInfo(case.timezone or self.program.timezone)
        derived = Derived(case, as_of)
        values: dict[str, Any] = {}
        roots: dict[str, tuple[str, ...]] = {}
        for block, paths, fields_of, nones in self.blocks:
            obj = getattr(case, block)
            if obj is None:
                values.update(nones)
            else:
                values.update(zip(paths, fields_of(obj)))
        for path, get in self.computed:
            values[path] = get(case, derived)
        get = values.get
        for name, compute, facts, complete, single, itself in self.derivations:
            if single is not None:
                v = get(single)
                if v is None:
                    values[name] = None
                    roots[name] = roots.get(single, itself)     # a roots entry is already de-duplicated
                else:
                    try:
                        values[name] = compute(zone, v)
                    except (OverflowError, ValueError) as exc:
                        raise CaseError(f"`{name}` cannot be computed for this case: {exc}",
                                        field=name) from None
                continue
            args = {}
            missing: list[str] | None = None
            for arg, paths in facts:
                for p in paths:
                    v = get(p)
                    if v is not None:
                        args[arg] = v
                        break
                else:
                    if missing is None:
                        missing = []
                    for p in paths:
                        missing.extend(roots.get(p, (p,)))
            if missing or not complete:
                values[name] = None
                roots[name] = tuple(dict.fromkeys(missing or ()))
            else:
                try:
                    values[name] = compute(zone, **args)
                except (OverflowError, ValueError) as exc:     # e.g. a pack adding 10,000 years
                    raise CaseError(f"`{name}` cannot be computed for this case: {exc}",
                                    field=name) from None
        doc: dict[str, Any] = {}
        for k, path, encode, extra in self.encoding:
            if encode is not None:
                v = get(path)
                if v is not None:
                    if type(v) is extra:
                        doc[k] = v
                    elif extra is _INSTANT:
                        doc[k] = (v - EPOCH) // _MICROSECOND
                    else:
                        doc[k] = encode(v)
            elif type(extra) is list:         # a list fact: present, plus one flag per value
                items = get(path)
                if items is not None:
                    doc[k] = True
                    for flag, v in extra:
                        doc[flag] = v in items
            else:                             # a chained fact starts at its neutral value
                doc[k] = extra
        return CaseFacts(case, as_of, zone, values, roots, doc)


def fact_plan(program: Program) -> FactPlan:
    plan = getattr(program, "_fact_plan", None)
    if plan is None:
        plan = program._fact_plan = FactPlan(program)
    return plan


def case_facts(program: Program, case: Case, as_of: datetime) -> CaseFacts:
    return fact_plan(program).facts(case, as_of)
