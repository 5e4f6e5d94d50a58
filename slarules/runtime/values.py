"""The facts of one case: base fields, built-in and pack-declared derivations.

Values stay exact Python objects (aware datetimes, Decimals) for messages; `doc`
is the encoded, flat form a backend matches on. A derived value that cannot be
computed is absent, and `missing_roots` works out which underlying facts were
missing, so a verdict says "reference_arrival is missing", not "tb_deadline is
missing". It does so only when asked (a few cases in a hundred leave a rule
undecided), from the values and the plan, never per case on the hot path.
"""
from __future__ import annotations

import functools
import operator
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from keyword import iskeyword
from typing import Any
from zoneinfo import ZoneInfo

from ..case import zones
from ..errors import CaseError
from ..packs.program import Program
from ..packs.types import EPOCH, _encode_instant
from ..packs.vocabulary import BASE_FACTS, BLOCKS, CHAIN_LEVEL, CLASSIFICATION_PREFIX, ISSUE_VALUES, Case, Derived

# encoders that return their argument unchanged when it already has this type (bool(b), str(s), int(i))
_AS_ITSELF = {"bool": bool, "text": str, "enum": str, "int": int}
_INSTANT = object()
WARM_UP = 64          # cases a FactPlan runs its loops for before compiling them
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
    plan: FactPlan
    doc: dict[str, Any]
    # (the projections asked for, their dicts) when the generated code made `doc` (FactPlan.project); else None
    projected: tuple[tuple[dict[str, str], ...], tuple[dict[str, Any], ...]] | None = None

    def missing_roots(self, path: str) -> tuple[str, ...]:
        """The underlying facts whose absence left `path` absent (itself, for a fact of the case)."""
        return self.plan.roots_of(self.values, path)

    @property
    def roots(self) -> dict[str, tuple[str, ...]]:
        """missing_roots of every absent derived fact, in derivation order."""
        return {name: self.missing_roots(name) for name in self.plan.derived_names
                if self.values.get(name) is None}


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
        # a name derived twice (dated versions) holds what the last derivation gave
        self._derivation_index = {d[0]: i for i, d in enumerate(self.derivations)}
        self.derived_names = tuple(self._derivation_index)
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
        # every key `encode` may write: a fact's own, and a list's value flags
        flags = [flag for _, _, _, extra in self.encoding if type(extra) is list for flag, _ in extra]
        self.doc_keys = frozenset([k for k, _, _, _ in self.encoding] + flags)
        # Tiered, so that a CLI call's one case does not pay ~3 ms of compile(): the first
        # WARM_UP cases run the table-driven loops, then the plan writes them out as code.
        self._compiled: Callable[..., tuple[dict[str, Any], dict, tuple]] | None = None
        self._cases = 0
        self.projections: tuple[dict[str, str], ...] = ()
        # project() and compile() one at a time: the code generated is always for the projections set last
        self._compiling = threading.Lock()

    def project(self, projections: tuple[dict[str, str], ...]) -> tuple[dict[str, str], ...]:
        """Have the generated code also write each doc key named in a projection into that projection's
        own dict, under the name it gives (CaseFacts.projected): a backend's flat facts (durable_rules'
        strata, under their short names) made in the same pass as `doc`, not by a second walk over it.

        Returns the projections in force, the ones already set when they are equal: a backend knows
        the facts made for it by that object (CaseFacts.projected's first item is it)."""
        with self._compiling:
            if self.projections != projections:
                self.projections = projections
                if self._compiled is not None:
                    self._compiled = self._compiled_facts(projections)
            return self.projections

    def compile(self) -> None:
        """Switch to the generated straight-line code (same results as the loops)."""
        with self._compiling:
            self._compiled = self._compiled_facts(self.projections)

    def _base_loop(self, case: Case, derived: Derived, values: dict) -> None:
        for block, paths, fields_of, nones in self.blocks:
            obj = getattr(case, block)
            if obj is None:
                values.update(nones)
            else:
                values.update(zip(paths, fields_of(obj)))
        for path, get in self.computed:
            values[path] = get(case, derived)

    def _derive_loop(self, values: dict, zone) -> None:
        for i in range(len(self.derivations)):
            self._general(i, values, zone)

    def _encode_loop(self, values: dict) -> dict:
        get = values.get
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
        return doc

    # The per-case loops over the plan's tables, written out as one straight-line Python function
    # per plan: no tuple unpacking or branching on each entry's kind per case. Paths and keys are
    # embedded with repr(); functions and constants are passed in a namespace, never as source.
    # A block left out of the case (most cases have no complaint) is tested once for all the
    # facts that are absent with it: its fields and the derivations read from one of them.
    def _compiled_facts(self, projections: tuple[dict[str, str], ...]):
        ns: dict[str, Any] = {"_error": _derivation_error, "_general": self._general,
                              "EPOCH": EPOCH, "MICRO": _MICROSECOND}
        lines = ["def facts(case, derived, zone):", "    values = {}", "    get = values.get"]
        # with_block[path]: the block variable that is None whenever the fact at `path` is;
        # local[path]: a block field's value as a local variable, set when its block is present
        with_block: dict[str, str] = {}
        local: dict[str, str] = {}
        block_var: dict[str, str] = {}
        for i, (block, paths, fields_of, nones) in enumerate(self.blocks):
            ns[f"P{i}"], ns[f"F{i}"], ns[f"N{i}"] = paths, fields_of, nones
            with_block.update(dict.fromkeys(paths, f"B{i}"))
            block_var[block] = f"B{i}"
            names = [f"L{i}_{j}" for j in range(len(paths))]
            local.update(zip(paths, names))
            lines += [f"    B{i} = case.{block}" if block.isidentifier() else f"    B{i} = getattr(case, {block!r})",
                      f"    if B{i} is None:", f"        values.update(N{i})",
                      "    else:", f"        T = F{i}(B{i})", f"        values.update(zip(P{i}, T))",
                      f"        {', '.join(names)}, = T"]
        for i, (path, get) in enumerate(self.computed):
            attribute, per_case = getattr(get, "attribute_path", None), getattr(get, "per_case", None)
            if attribute is not None and attribute in block_var:
                lines.append(f"    values[{path!r}] = {block_var[attribute]}")
            elif attribute is not None and "." not in attribute:
                lines.append(f"    values[{path!r}] = getattr(case, {attribute!r}, None)")
            elif per_case is not None:
                ns[f"M{i}"] = per_case
                lines.append(f"    values[{path!r}] = M{i}(derived)")
            else:
                ns[f"G{i}"] = get
                lines.append(f"    values[{path!r}] = G{i}(case, derived)")
        lines += self._derive_lines(ns, with_block, local)
        lines += self._encode_lines(ns, with_block, local, projections)
        # with the projections this code was made for: a backend finds out whether they are its own
        ns["PROJECTIONS"] = projections
        lines.append("    return values, doc, (PROJECTIONS, (" + "".join(f"S{j}, " for j in range(len(projections))) + "))")
        exec("\n".join(lines), ns)  # noqa: S102  # code generated from our own tables; pack text enters only as repr() literals
        return ns["facts"]

    @staticmethod
    def _guarded(runs: list[tuple[str | None, list[str]]], absent=lambda n: []) -> list[str]:
        """Runs of (block variable or None, lines): a run of a block, once under `if <block> is None`
        with `absent(n)` (the n-th run's lines for that case) and its own lines under else."""
        out = []
        for n, (block, body) in enumerate(runs):
            if block is None:
                out += body
                continue
            when_absent = absent(n)
            if when_absent:
                out += [f"    if {block} is None:", *("    " + line for line in when_absent), "    else:"]
            else:
                out.append(f"    if {block} is not None:")
            out += ["    " + line for line in body]
        return out

    def _derive_lines(self, ns: dict, with_block: dict[str, str], local: dict[str, str]) -> list[str]:
        runs: list[tuple[str | None, list[str]]] = []
        absent: dict[int, list[str]] = {}      # per run of a block: the derivations absent with it
        for i, (name, compute, facts, complete, single, positional) in enumerate(self.derivations):
            ns[f"C{i}"] = compute
            # the function itself, called with every argument by position (a Function's `args` are in
            # the order it takes them), constants from the namespace: a partial with keywords cost ~0.2 µs
            fn, order = positional
            ns[f"X{i}"] = fn
            ns.update((f"K{i}_{j}", const) for j, (_, const) in enumerate(order))

            def call_of(names: dict[str, str], i=i, order=order) -> str:
                """The call computing derivation i, its fact arguments (name -> variable) given."""
                return f"X{i}(zone, " + ", ".join(names.get(p, f"K{i}_{j}")
                                                   for j, (p, _) in enumerate(order)) + ")"
            if single is None and complete and facts and all(a.isidentifier() and not iskeyword(a) for a, _ in facts):
                # each argument: the first of its facts present; all present -> computed, else absent
                body = []
                for n, (arg, paths) in enumerate(facts):
                    body.append(f"    a{n} = get({paths[0]!r})")
                    for other in paths[1:]:
                        body += [f"    if a{n} is None:", f"        a{n} = get({other!r})"]
                body += [f"    if {' or '.join(f'a{n} is None' for n in range(len(facts)))}:",
                         f"        values[{name!r}] = None",
                         "    else:",
                         "        try:",
                         f"            values[{name!r}] = {call_of({arg: f'a{n}' for n, (arg, _) in enumerate(facts)})}",
                         "        except (OverflowError, ValueError) as exc:",
                         f"            raise _error({name!r}, exc) from None"]
            elif single is None:
                body = [f"    _general({i}, values, zone)"]
            else:
                # under its block's guard (below) a block field is read from its local
                body = [f"    v = {local[single]}" if single in local else f"    v = get({single!r})",
                        "    if v is None:",
                        f"        values[{name!r}] = None",
                        "    else:",
                        "        try:",
                        f"            values[{name!r}] = {call_of({facts[0][0]: 'v'})}",
                        "        except (OverflowError, ValueError) as exc:",
                        f"            raise _error({name!r}, exc) from None"]
            # one fact read, a field of a block: absent with the block
            block = with_block[single] if single in local else None
            if block is not None:
                with_block[name] = block
            if block is None or not runs or runs[-1][0] != block:
                runs.append((block, []))
                if block is not None:
                    absent[len(runs) - 1] = []
            runs[-1][1].extend(body)
            if block is not None:
                absent[len(runs) - 1].append(name)
        out_absent = {}
        for n, names in absent.items():
            ns[f"AV{n}"] = dict.fromkeys(names)
            out_absent[n] = [f"    values.update(AV{n})"]
        return self._guarded(runs, lambda n: out_absent.get(n, []))

    def _encode_lines(self, ns: dict, with_block: dict[str, str], local: dict[str, str],
                      projections: tuple[dict[str, str], ...]) -> list[str]:
        runs: list[tuple[str | None, list[str]]] = [(None, ["    doc = {}", *(f"    S{j} = {{}}" for j in range(len(projections)))])]

        def stored(k: str, value: str) -> str:
            """doc[k] = value, and the same value into each projection naming k (under its name there)."""
            also = "".join(f"S{j}[{p[k]!r}] = " for j, p in enumerate(projections) if k in p)
            return f"doc[{k!r}] = {also}{value}"
        for i, (k, path, encode, extra) in enumerate(self.encoding):
            if encode is not None:
                ns[f"E{i}"], ns[f"T{i}"] = encode, extra
                body = [f"    v = get({path!r})", "    if v is not None:"]
                if extra is _INSTANT:
                    body.append("        " + stored(k, "(v - EPOCH) // MICRO"))
                elif extra is not None:
                    body.append("        " + stored(k, f"v if type(v) is T{i} else E{i}(v)"))
                else:
                    body.append("        " + stored(k, f"E{i}(v)"))
            elif type(extra) is list:         # a list fact: present, plus one flag per value
                body = [f"    v = get({path!r})", "    if v is not None:", "        " + stored(k, "True")]
                body += ["        " + stored(flag, f"{v!r} in v") for flag, v in extra]
            else:                             # a chained fact starts at its neutral value
                body = ["    " + stored(k, repr(extra))]
            block = with_block.get(path) if encode is not None or type(extra) is list else None
            if block is not None and path in local:      # under its block's guard: its local
                body[0] = f"    v = {local[path]}"
            if runs[-1][0] != block or block is None:
                runs.append((block, []))
            runs[-1][1].extend(body)
        return self._guarded(runs)

    def _general(self, i: int, values: dict, zone) -> None:
        """One derivation, any shape: each argument the first of its facts present; absent when any is."""
        name, compute, facts, complete, _, _ = self.derivations[i]
        args = {}
        for arg, paths in facts:
            for p in paths:
                v = values.get(p)
                if v is not None:
                    args[arg] = v
                    break
            else:
                values[name] = None
                return
        if not complete:
            values[name] = None
            return
        try:
            values[name] = compute(zone, **args)
        except (OverflowError, ValueError) as exc:     # e.g. a pack adding 10,000 years
            raise _derivation_error(name, exc) from None

    def roots_of(self, values: dict, path: str) -> tuple[str, ...]:
        """The underlying facts whose absence left `path` absent, in the order its derivation reads
        them (every fact of each argument whose facts are all absent, followed down); `path` itself
        for a fact of the case, or for a derivation that gave nothing from facts all present."""
        i = self._derivation_index.get(path)
        if i is None or values.get(path) is not None:
            return (path,)
        _, _, facts, complete, _, _ = self.derivations[i]
        missing: list[str] = []
        absent = False
        for _, paths in facts:
            if all(values.get(p) is None for p in paths):
                absent = True
                for p in paths:
                    missing.extend(self.roots_of(values, p))
        if absent or not complete:
            return tuple(dict.fromkeys(missing))
        return (path,)

    @staticmethod
    def _derivation(d):
        consts = {a: v for a, (kind, v) in d.args.items() if kind == "const"}
        facts = [(a, tuple(v)) for a, (kind, v) in d.args.items() if kind != "const"]
        complete = len(d.args) == len(d.fn.args)
        # the constants bound once, for the loops: per case only the facts are passed
        compute = functools.partial(d.fn.compute, **consts) if consts else d.fn.compute
        # one fact argument read from one path (`add`, `local_date`, ...): read once, under its block
        single = facts[0][1][0] if complete and len(facts) == 1 and len(facts[0][1]) == 1 else None
        # for the generated code: the function and, in its parameter order, each constant (None: a fact)
        positional = (d.fn.compute, tuple((a, consts.get(a)) for a in d.fn.args))
        return d.name, compute, facts, complete, single, positional

    def facts(self, case: Case, as_of: datetime) -> CaseFacts:
        if self._cases < WARM_UP:
            self._cases += 1          # not atomic: a race only compiles a case later or twice, alike
            if self._cases == WARM_UP:
                self.compile()
        zone = zones.zone(case.timezone or self.program.timezone)
        derived = Derived(case, as_of)
        if self._compiled is not None:
            values, doc, projected = self._compiled(case, derived, zone)
            return CaseFacts(case, as_of, zone, values, self, doc, projected)
        values = {}
        self._base_loop(case, derived, values)
        self._derive_loop(values, zone)
        doc = self._encode_loop(values)
        return CaseFacts(case, as_of, zone, values, self, doc)


def _derivation_error(name: str, exc: Exception) -> CaseError:
    return CaseError(f"`{name}` cannot be computed for this case: {exc}", field=name)


def fact_plan(program: Program) -> FactPlan:
    """The Program's one FactPlan (Program.kept: one even when threads ask at once)."""
    return program.kept("_fact_plan", FactPlan)


def case_facts(program: Program, case: Case, as_of: datetime) -> CaseFacts:
    return fact_plan(program).facts(case, as_of)
