"""`slarules check`: every problem in a set of packs at once, then what the rules do together.

Three passes, each only when the one before found no error, since analysing a
pack that does not compile would report noise:
1. shape: every schema error of every pack file (not just the first);
2. meaning: the compiler's issues (unknown facts, types, parameters, clauses,
   templates, precedence, cycles, layers), and what each layer changes in its base
   (`info`: each parameter, base value → layer value);
3. analysis across rules:
   - contradictions: an `all` whose tests on one fact cannot hold together
     (found statically; the rule can never fire) -> error;
   - conflicts: two liability rules for the same harm, on different parties,
     with no precedence either way, that a witness case makes both reach the
     verdict -> error;
   - dead rules: no case found that fires the rule, or it fires only when a
     rule that overrides it fires too (always shadowed) -> warning.
Witnesses come from `witness.WitnessSearch` and are confirmed by the engine.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..engine import CATALOGUE_FILE, Engine, default_pack_dirs, default_rules_dir, file_kind
from ..errors import InputError, PackError, SlaRulesError
from ..packs.compiler import CompiledRule, Leaf, Node, Program, check_packs, compile_packs
from ..packs.layers import apply_layers
from ..packs.model import Issue, Pack, read_catalogue, read_pack
from ..packs.operators import OPERATORS
from ..packs.unknowns import as_written
from .packtest import TestCase, case_issues, merge, read_test_file

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

# The kinds of check, each issue's `rule` (a rule id in SARIF, a title in GitHub annotations): id -> what it finds.
CHECKS = {
    "schema": "a pack, the clause catalogue or a pack test that is not readable YAML or does not match its schema",
    "test-case": "a pack test whose case the case contract refuses",
    "meaning": "a pack that does not compile: unknown facts, parameters or clauses, types, messages, precedence, "
               "cycles, layers, dated versions, or more than durable_rules can hold",
    "layer": "what a layer changes in its base",
    "contradiction": "a rule whose tests on one fact contradict each other: it can never fire",
    "conflict": "two liability rules that can put the same harm on different parties with no precedence",
    "dead-rule": "a rule no generated case fires",
    "shadowed-rule": "a rule that fires only when a rule overriding it fires too",
    "not-analysed": "a file that did not load kept the packs from being analysed together",
}


@dataclass
class CheckOptions:
    analyse: bool = True
    examples: int = 400
    seed: int = 0


def check(paths: Sequence[str | Path], catalogue: str | Path | None = None,
          options: CheckOptions | None = None) -> list[Issue]:
    """All issues in the files under `paths`, errors first within each file, in file order.

    Each file is checked as what it is (a pack, the clause catalogue, a pack test), so
    `slarules check rules/*.yaml` does not read the catalogue or the tests as packs. A file
    that does not load hides no problem of the others: they are checked without it, and
    the one thing skipped, analysing the packs together, is said in a closing `info` issue.
    """
    options = options or CheckOptions()
    for p in [*paths, *([catalogue] if catalogue else [])]:
        if not Path(p).exists():
            raise InputError("no such file or directory", file=str(p), hint="give pack files or directories")
    files = yaml_files(paths)
    if not any(files.values()):
        raise PackError("no rule packs found", file=", ".join(map(str, paths)) or None,
                        hint="give pack files or a directory containing *.yaml packs")
    issues: list[Issue] = []
    packs: list[Pack] = []
    unloaded: list[Path] = []        # files whose problems keep them out of the meaning pass
    for f in files["pack"]:
        pack, found = read_pack(f)
        issues += _kind(found, "schema")
        if pack is not None:
            packs.append(pack)
        else:
            unloaded.append(f)
    tests: list[tuple[Any, Any]] = []                  # (TestFile, Document) of each test file that loaded
    for f in files["test"]:
        spec, doc, found = read_test_file(f)
        issues += _kind(found, "schema")
        if spec is not None and doc is not None:
            tests.append((spec, doc))
            issues += _kind(case_issues(spec, doc), "test-case")
    used = Path(catalogue) if catalogue else next(iter(files["catalogue"]), default_rules_dir() / CATALOGUE_FILE)
    clauses, found = read_catalogue(used)
    issues += _kind(found, "schema")
    if clauses is None:
        unloaded.append(used)
    for f in files["catalogue"]:
        if f != used:
            issues += _kind(read_catalogue(f)[1], "schema")
    meaning = _kind(check_packs(packs, clauses, complete=not unloaded), "meaning") if packs else []
    issues += meaning
    issues += _kind(apply_layers(packs, complete=not unloaded).changes, "layer")
    if packs and options.analyse and not unloaded and not any(i.severity == "error" for i in meaning):
        assert clauses is not None      # else `unloaded` names the catalogue
        program = compile_packs(packs, clauses)
        engine = Engine(program, clauses)
        try:
            engine.backend  # noqa: B018  # durable_rules builds the ruleset: it has limits of its own (31 tests a rule)
        except PackError as exc:
            issues.append(Issue(exc.file, exc.line, exc.column, exc.field, exc.message, "error", exc.hint,
                                rule="meaning"))
        else:
            issues += Analysis(engine, _seed_cases(tests), options).run()
    issues.sort(key=lambda i: (i.file, i.line or 0, i.column or 0, SEVERITY_ORDER[i.severity]))
    if unloaded:
        names = ", ".join(map(str, unloaded))
        issues.append(Issue(None, None, None, None, f"{names} did not load: the rest was checked without "
                            f"{'it' if len(unloaded) == 1 else 'them'} and not analysed together (conflicts, "
                            f"dead rules){'; clause ids were not checked' if clauses is None else ''}", "info",
                            rule="not-analysed"))
    return issues


def _kind(issues: list[Issue], rule: str) -> list[Issue]:
    """`issues` marked as found by the check `rule` (CHECKS), unless one says otherwise."""
    return [i if i.rule else replace(i, rule=rule) for i in issues]


def yaml_files(paths: Sequence[str | Path]) -> dict[str, list[Path]]:
    """The YAML files given or under the directories given, by kind (engine.file_kind), each once.

    A directory is read whole, its subdirectories first: they are the layers beneath it, as
    `rules/national/` is loaded before `rules/` (engine.default_pack_dirs).
    """
    out: dict[str, list[Path]] = {"pack": [], "catalogue": [], "test": []}
    seen: set[Path] = set()
    for f in (f for p in map(Path, paths) for f in (_tree(p) if p.is_dir() else [p])):
        if f.resolve() not in seen:
            seen.add(f.resolve())
            out[file_kind(f)].append(f)
    return out


def _tree(directory: Path, seen: frozenset[Path] = frozenset()) -> list[Path]:
    """The YAML files of `directory`, after its subdirectories' (hidden ones and a link back up skipped)."""
    seen = seen | {directory.resolve()}
    subdirectories = sorted(d for d in directory.iterdir()
                            if d.is_dir() and not d.name.startswith((".", "__")) and d.resolve() not in seen)
    return ([f for d in subdirectories for f in _tree(d, seen)] +
            sorted(f for f in directory.glob("*.yaml") if f.is_file()))


def _seed_cases(tests: list[tuple[Any, Any]]) -> list[dict]:
    """Cases from the pack tests checked with the packs: a witness search starts from what is known."""
    return [merge(spec.base, c.case) for spec, _ in tests for c in spec.cases if isinstance(c, TestCase) and not c.file]


class Analysis:
    def __init__(self, engine: Engine, seeds: list[dict], options: CheckOptions):
        from .witness import WitnessSearch
        self.engine = engine
        self.program: Program = engine.program
        self.search = WitnessSearch(self.program, seeds, options.examples, options.seed)
        self.issues: list[Issue] = []

    def issue(self, kind: str, rule: CompiledRule, message: str, hint: str | None, severity: str,
              witness: dict | None = None, origin: str | None = None) -> None:
        file, line = rule.location
        if origin and ":" in origin:      # a condition's own line, in the same pack file
            line = int(origin.rsplit(":", 1)[1])
        self.issues.append(Issue(file, line, None, f"rules.{rule.id}", message, severity, hint, witness, kind))

    def run(self) -> list[Issue]:
        contradictory = {r.id for r in self.program.rules if self.contradiction(r)}
        for r in self.program.rules:
            if r.id not in contradictory:
                self.dead(r)
        self.conflicts()
        return self.issues

    # -- contradictions ----------------------------------------------------------------
    def contradiction(self, rule: CompiledRule) -> bool:
        for node in _conjunctions(as_written(rule.condition)):     # closed comparisons as the pack wrote them
            leaves = [c for c in node.children if isinstance(c, Leaf) and c.right is None]
            by_fact: dict[str, list[Leaf]] = {}
            for leaf in leaves:
                by_fact.setdefault(leaf.left, []).append(leaf)
            for fact, tests in by_fact.items():
                bad = _first_conflict(tests)
                if bad is not None:
                    a, b = bad
                    self.issue("contradiction", rule,
                               f"`{rule.id}` can never fire: its tests on `{fact}` contradict each other "
                               f"({_show(a)} and {_show(b)})",
                               "remove or correct one of the two tests", "error", origin=b.origin)
                    return True
        return False

    # -- rules that never reach a verdict ----------------------------------------------
    def dead(self, rule: CompiledRule) -> None:
        rid = rule.id
        fires = self.search.find(lambda fired, findings: rid in fired)
        if fires is None:
            self.issue("dead-rule", rule, f"`{rid}` never fired in {self.search.examples} generated cases: its "
                                          "conditions may contradict each other or need facts no case can have",
                       "add a pack test that makes it fire, or correct its conditions", "warning")
            return
        overriders = [r.id for r in self.program.rules if rid in r.overrides]
        if not overriders:
            return
        if self.search.find(lambda fired, findings: rid in findings) is None:
            self.issue("shadowed-rule", rule, f"`{rid}` is always shadowed: whenever it fires, "
                                              f"{' or '.join(f'`{o}`' for o in overriders)} fires too and overrides "
                                              "it, so it never reaches a verdict",
                       "remove it, or narrow the rule that overrides it", "warning", self.confirmed(fires))

    # -- conflicts ---------------------------------------------------------------------
    def conflicts(self) -> None:
        rules = [r for r in self.program.rules if r.kind == "liability"]
        for i, a in enumerate(rules):
            for b in rules[i + 1:]:
                shared = sorted(set(a.harms) & set(b.harms))
                if not shared or a.party == b.party or self.ordered(a, b):
                    continue
                witness = self.search.find(lambda fired, findings: a.id in findings and b.id in findings)  # noqa: B023
                witness = self.confirmed(witness, (a.id, b.id))
                if witness is None:
                    continue
                self.issue("conflict", b, f"conflict: `{a.id}` ({a.party}) and `{b.id}` ({b.party}) can both "
                                          f"hold for {', '.join(shared)} with no precedence between them",
                           f"add `overrides: [{a.id}]` to `{b.id}` (or the reverse) to say which wins", "error",
                           witness)

    def ordered(self, a: CompiledRule, b: CompiledRule) -> bool:
        """Is there a chain of `overrides` from one to the other?"""
        def reach(src: str, dst: str) -> bool:
            seen, todo = set(), [src]
            while todo:
                cur = todo.pop()
                if cur == dst:
                    return True
                if cur not in seen:
                    seen.add(cur)
                    todo.extend(self.program.rule(cur).overrides if cur in self.program._by_id else ())
            return False
        return reach(a.id, b.id) or reach(b.id, a.id)

    def confirmed(self, witness: dict | None, findings: tuple[str, ...] = ()) -> dict | None:
        """The witness, if the real engine agrees with the search on it."""
        if witness is None:
            return None
        try:
            verdict = self.engine.adjudicate(witness)
        except SlaRulesError:
            return None
        got = {f.rule for f in verdict.findings}
        return witness if all(f in got for f in findings) else None


def _conjunctions(node):
    """Every `all` node of a tree, with nested `all`s flattened into their parent."""
    if isinstance(node, Leaf):
        return
    if node.op == "all":
        flat: list = []
        stack = list(node.children)
        while stack:
            c = stack.pop(0)
            if isinstance(c, Node) and c.op == "all":
                stack[:0] = list(c.children)
            else:
                flat.append(c)
        yield Node("all", tuple(flat))
        for c in flat:
            if isinstance(c, Node):
                yield from _conjunctions(c)
    else:
        for c in node.children:
            yield from _conjunctions(c)


def _first_conflict(tests: list[Leaf]) -> tuple[Leaf, Leaf] | None:
    """Two tests on one fact that no single value passes (values are encoded, so comparable)."""
    for i, a in enumerate(tests):
        for b in tests[i + 1:]:
            if not _compatible(a, b):
                return a, b
    return None


def _compatible(a: Leaf, b: Leaf) -> bool:
    shapes = (OPERATORS[a.op].shape, OPERATORS[b.op].shape)
    if "exists" in shapes:
        ex, other = (a, b) if shapes[0] == "exists" else (b, a)
        if OPERATORS[other.op].shape == "exists":
            return ex.value == other.value
        if ex.value is False:     # the fact is absent: only `is: false` (absent reads as false) may go with it
            return OPERATORS[other.op].absent is False and other.value is False
        return True
    if "contains" in shapes:
        return True
    return any(_passes(v, a) and _passes(v, b) for v in _probes(a, b))


def _passes(v: Any, leaf: Leaf) -> bool:
    try:
        return OPERATORS[leaf.op].compare(v, leaf.value)    # type: ignore[misc]  # not `exists`: _compatible took it
    except TypeError:
        return True


def _probes(a: Leaf, b: Leaf) -> list:
    """Values worth trying: each constant, and for integers one either side."""
    out: list = []
    for v in (a.value, b.value):
        out.append(v)
        if isinstance(v, int) and not isinstance(v, bool):
            out += [v - 1, v + 1]
        if isinstance(v, bool):
            out.append(not v)
    if isinstance(a.value, str) or isinstance(b.value, str):
        out.append("\0unlikely")
    return out


def _show(leaf: Leaf) -> str:
    if OPERATORS[leaf.op].shape == "exists":
        return f"{leaf.left} {'exists' if leaf.value else 'is absent'}"
    shown = leaf.shown if leaf.shown is not None else leaf.value
    return f"{leaf.left} {OPERATORS[leaf.op].ascii} {shown}"


def render(issues: list[Issue]) -> str:
    """`file:line:col: severity: message (hint)`, each witness indented below as YAML."""
    import yaml
    lines = []
    for i in issues:
        where = (i.file or "") + (f":{i.line}" if i.line else "") + (f":{i.column}" if i.column else "")
        text = f"{where}: {i.severity}: {i.message}" if where else f"{i.severity}: {i.message}"
        if i.field:
            text += f" [{i.field}]"
        if i.hint:
            text += f" ({i.hint})"
        lines.append(text)
        if i.witness is not None:
            lines.append("    witness case:")
            dump = yaml.safe_dump(i.witness, allow_unicode=True, sort_keys=False, default_flow_style=None, width=100)
            lines += ["      " + line for line in dump.splitlines()]
    lines.append(summary(issues))
    return "\n".join(lines) + "\n"


def summary(issues: list[Issue]) -> str:
    """`N errors, M warnings`: the last line of every format meant for people."""
    errors = sum(i.severity == "error" for i in issues)
    warnings = sum(i.severity == "warning" for i in issues)
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"


def to_json(issues: list[Issue]) -> list[dict]:
    return [{"file": i.file, "line": i.line, "column": i.column, "field": i.field, "severity": i.severity,
             "rule": i.rule, "message": i.message, "hint": i.hint, "witness": i.witness} for i in issues]


def default_paths() -> list[Path]:
    return default_pack_dirs()
