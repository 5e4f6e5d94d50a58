"""The facts of one case: base fields, built-in and pack-declared derivations.

Values stay exact Python objects (aware datetimes, Decimals) for messages; `doc`
is the encoded, flat form a backend matches on. A derived value that cannot be
computed is absent, and `roots` remembers which underlying facts were missing,
so a verdict says "reference_arrival is missing", not "tb_deadline is missing".
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .compiler import Program
from .facts import Case
from .vocabulary import BASE_FACTS, CHAIN_LEVEL, CLASSIFICATION_PREFIX, ISSUE_VALUES, Derived


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


def case_facts(program: Program, case: Case, as_of: datetime) -> CaseFacts:
    zone = ZoneInfo(case.timezone or program.timezone)
    derived = Derived(case, as_of)
    values: dict[str, Any] = {}
    roots: dict[str, tuple[str, ...]] = {}
    for path, spec in BASE_FACTS.items():
        values[path] = spec.get(case, derived)
    for d in program.derivations:
        args, missing = {}, []
        for arg, (kind, val) in d.args.items():
            if kind == "const":
                args[arg] = val
                continue
            got = next((values[p] for p in val if values.get(p) is not None), None)
            if got is None:
                for p in val:
                    missing.extend(roots.get(p, (p,)))
            args[arg] = got
        if missing or len(args) != len(d.fn.args):
            values[d.name] = None
            roots[d.name] = tuple(dict.fromkeys(missing))
        else:
            values[d.name] = d.fn.compute(zone, **args)
    doc: dict[str, Any] = {}
    specs = program.specs
    for path in program.condition_fields:
        spec = specs[path]
        if path == CHAIN_LEVEL:
            doc[key(path)] = 0
        elif path.startswith(CLASSIFICATION_PREFIX):
            doc[key(path)] = False
        elif spec.type.name == "list":
            items = values.get(path)
            if items is not None:
                doc[key(path)] = True
                for v in ISSUE_VALUES:
                    doc[flag_key(path, v)] = v in items
        else:
            v = values.get(path)
            if v is not None:
                doc[key(path)] = spec.type.encode(v)
    return CaseFacts(case, as_of, zone, values, roots, doc)
