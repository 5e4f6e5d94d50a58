"""Pack tests: YAML files of cases and what each must produce, run like `opa test`.

A pack test file sits beside its pack (`taobao.yaml` -> `taobao.test.yaml`):

    base: {waybill: T1, product: taobao, ...}     # every case starts from this
    cases:
      - name: morning arrival signed 17:00:01 is late
        case: {scans: [...]}                      # merged into base; null removes a key
        expect:
          fires: [taobao.delivery-window.late]    # fired in durable_rules (before precedence)
          findings: [taobao.delivery-window.late] # exactly these findings in the verdict
          fines_cny: {}                           # any other verdict field, compared whole

Each case passes or fails with expected-vs-actual as a diff. Coverage counts the
rules that fired in some case and the condition branches (each alternative of an
`any`, each value of an `in`, each way a deadline is missed) that held in some
case, so a pack author sees which parts of a pack no test has exercised.
"""
from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..case.limits import DEFAULT as DEFAULT_LIMITS
from ..case.sources import Document, read_document
from ..echo import quote
from ..engine import TEST_SUFFIX
from ..errors import CaseError, InstallError, PackError, SlaRulesError
from ..packs.model import Issue, raise_first, read_model, schema_issues
from ..packs.program import CompiledRule, Leaf
from ..runtime import backend as registry, evaluate

VERDICT_FIELDS = ("findings", "classifications", "complaint_level", "fines_cny", "refunds_cny", "compensation_cny",
                  "missing", "not_covered")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Expect(Strict):
    fires: list[str] = Field(default_factory=list, description="rules that must fire (before precedence)")
    does_not_fire: list[str] = Field(default_factory=list, description="rules that must not fire")
    findings: list[str] | None = Field(None, description="exactly these rules in the verdict's findings")
    classifications: list[str] | None = None
    complaint_level: int | None = Field(None, ge=0, le=3, description="0: no level")
    fines_cny: dict[str, str] | None = None
    refunds_cny: str | None = None
    compensation_cny: dict[str, str] | None = None
    missing: list[str] | None = None
    not_covered: list[str] | None = None


class TestCase(Strict):
    name: str = Field(min_length=1)
    file: str | None = Field(None, description="a case file, relative to this test file, used instead of base")
    case: dict[str, Any] = Field(default_factory=dict, description="merged into base (or file)")
    as_of: str | None = None
    expect: Expect


@dataclass
class BrokenCase:
    """A test case that does not match TestCase: it fails with its problems, and the other cases still run."""

    name: str
    errors: Sequence[Mapping[str, Any]]        # Pydantic's; `case_problems` locates them


class TestFile(Strict):
    pack: str | None = Field(None, description="the pack under test (default: the file name before .test.yaml)")
    base: dict[str, Any] = Field(default_factory=dict)
    cases: list[Any] = Field(min_length=1, description="TestCase mappings, each validated on its own")

    @field_validator("cases")
    @classmethod
    def _each_case(cls, cases: list) -> list[TestCase | BrokenCase]:
        """One bad case must not make the whole file unusable: it becomes a BrokenCase."""
        out: list[TestCase | BrokenCase] = []
        for i, raw in enumerate(cases):
            try:
                out.append(TestCase.model_validate(raw))
            except ValidationError as exc:
                name = raw.get("name") if isinstance(raw, dict) else None
                out.append(BrokenCase(name if isinstance(name, str) and name else f"case {i + 1}",
                                      exc.errors(include_url=False)))
        return out


def merge(base: Any, overlay: Any) -> Any:
    """`overlay` over `base`: mappings merge key by key, null deletes, anything else replaces."""
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        return copy.deepcopy(overlay)
    out = copy.deepcopy(base)
    for k, v in overlay.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


@dataclass
class Outcome:
    """One test case's result."""

    file: str
    line: int | None
    name: str
    passed: bool
    diff: str = ""
    error: str | None = None
    failed_on: list[str] = field(default_factory=list)     # the backends whose verdict differs from `expect`


@dataclass
class Branch:
    rule: str
    path: str          # e.g. when[0].any[2]
    label: str | None
    origin: str | None


@dataclass
class Coverage:
    rules: dict[str, set[str]] = field(default_factory=dict)         # pack -> rule ids
    fired: set[str] = field(default_factory=set)
    branches: list[Branch] = field(default_factory=list)
    held: set[tuple[str, str]] = field(default_factory=set)          # (rule, path)

    def rule_ratio(self, pack: str | None = None) -> tuple[int, int]:
        ids = self._ids(pack)
        return len(ids & self.fired), len(ids)

    def branch_ratio(self, pack: str | None = None) -> tuple[int, int]:
        ids = self._ids(pack)
        mine = [b for b in self.branches if b.rule in ids]
        return sum((b.rule, b.path) in self.held for b in mine), len(mine)

    def percent(self) -> float:
        covered = self.rule_ratio()[0] + self.branch_ratio()[0]
        total = self.rule_ratio()[1] + self.branch_ratio()[1]
        return 100.0 * covered / total if total else 100.0

    def unfired(self) -> list[str]:
        return [r for p in sorted(self.rules) for r in sorted(self.rules[p]) if r not in self.fired]

    def untaken(self) -> list[Branch]:
        ids = self._ids(None)
        return [b for b in self.branches if b.rule in ids and (b.rule, b.path) not in self.held]

    def merge(self, other: Coverage) -> None:
        """Add another run's coverage (of other packs: rule ids are unique within a pack set)."""
        for pack, ids in other.rules.items():
            self.rules.setdefault(pack, set()).update(ids)
        self.fired |= other.fired
        self.branches += [b for b in other.branches if b not in self.branches]
        self.held |= other.held

    def _ids(self, pack: str | None) -> set[str]:
        if pack is not None:
            return self.rules.get(pack, set())
        return set().union(*self.rules.values()) if self.rules else set()


def branches(rule: CompiledRule) -> list[tuple[str, Any]]:
    """(path, node) of every alternative of every `any` in a rule's scope and when."""
    out: list[tuple[str, Any]] = []

    def walk(node, path: str) -> None:
        if isinstance(node, Leaf):
            return
        for i, child in enumerate(node.children):
            here = f"{path}.{node.op}[{i}]" if path else f"{node.op}[{i}]"
            if node.op == "any":
                out.append((here, child))
            walk(child, here)
    walk(rule.scope, "scope")
    walk(rule.when, "when")
    return out


def find_test_files(paths: Sequence[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.glob("*" + TEST_SUFFIX)))
        else:
            out.append(p)
    if not out:
        raise PackError("no pack tests found", file=", ".join(map(str, paths)) or None,
                        hint=f"pack tests are files named *{TEST_SUFFIX} beside the packs")
    return out


def case_problems(test: TestCase | BrokenCase, doc: Document, index: int) -> list[Issue]:
    """The located problems of the case at `index` of a test file (none for a valid case)."""
    if isinstance(test, TestCase):
        return []
    return schema_issues(test.errors, doc, TestCase, root=("cases", index))


def read_test_file(path: str | Path) -> tuple[TestFile | None, Document | None, list[Issue]]:
    """A test file and every problem in it, located; a broken case stays in `cases` as a BrokenCase.

    The TestFile is None only when the file as a whole is unusable (not YAML, no cases...).
    """
    spec, doc, issues = read_model(path, TestFile, "a pack test file")
    if spec is None:
        return None, doc, issues
    assert doc is not None          # read_model gives a model only with its document
    return spec, doc, [i for n, c in enumerate(spec.cases) for i in case_problems(c, doc, n)]


def case_under_test(spec: TestFile, doc: Document, index: int) -> Any:
    """The case of the test at `index`, validated as the engine validates any case (case.fast.case_of).

    A CaseError is located in the test file: at the key of `case:` that set the bad value, else at
    the same key in `base:`, or at `file:` for what the named case file holds.
    """
    from ..case.fast import case_of
    test = spec.cases[index]
    assert isinstance(test, TestCase)
    start = spec.base
    if test.file:
        try:
            start = read_document(Path(doc.file).parent / test.file, DEFAULT_LIMITS.case_bytes).data
        except SlaRulesError as exc:
            line, column = doc.where(("cases", index, "file"))
            raise CaseError(f"case file `{test.file}`: {exc}", file=doc.file, line=line, column=column,
                            field="file") from None
    data = merge(start, test.case)
    known = doc.all_positions()
    own = ("cases", index, "case")
    sources = [own] if test.file else [own, ("base",)]
    positions: dict[tuple, tuple[int | None, int | None]] = {}
    line, column = doc.where(("cases", index, "file" if test.file else "case"))
    if line is not None:
        positions[()] = (line, column or 1)

    def locate(value: Any, loc: tuple) -> None:
        at = next((known[s + loc] for s in sources if s + loc in known), None)
        if at is not None:
            positions[loc] = at
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for k, v in children:
            locate(v, loc + (k,))
    locate(data, ())
    case = case_of(data, Document(data, doc.file, positions))
    if test.as_of is not None:
        from ..engine import parse_instant
        try:
            parse_instant(test.as_of, case)
        except SlaRulesError as exc:
            line, column = doc.where(("cases", index, "as_of"))
            raise CaseError(exc.message, file=doc.file, line=line, column=column, field="as_of",
                            hint=exc.hint) from None
    return case


def case_issues(spec: TestFile, doc: Document) -> list[Issue]:
    """The test cases the contract refuses, as located issues (what `slarules check` reports of them);
    a problem of `base:` is one issue, however many tests start from it."""
    found: dict[tuple, list[str]] = {}
    for index, test in enumerate(spec.cases):
        if not isinstance(test, TestCase):
            continue
        try:
            case_under_test(spec, doc, index)
        except SlaRulesError as exc:
            where = (exc.file or doc.file, exc.line, exc.column, exc.field, exc.message, exc.hint)
            found.setdefault(where, []).append(test.name)
    out = []
    for (file, line, column, field_, message, hint), names in found.items():
        more = f" (and {len(names) - 1} more test{'s' * (len(names) > 2)})" if len(names) > 1 else ""
        out.append(Issue(file, line, column, field_, f"the case of test `{names[0]}`{more} is not valid: {message}",
                         "error", hint))
    return out


def load_test_file(path: str | Path) -> tuple[TestFile, Document]:
    """A test file with no problem at all, or a PackError for the first (counting the others)."""
    spec, doc, issues = read_test_file(path)
    raise_first(issues)
    assert spec is not None and doc is not None     # read_test_file gives none only with an error
    return spec, doc


def backends_to_test(names: Sequence[str] | None = None) -> tuple[str, ...]:
    """The backends pack tests run on: `names` (each checked against the registry, in the order given), or
    by default every registered backend, the reference first (its run is the one coverage is taken from)."""
    if names:
        return tuple(dict.fromkeys(registry.named(n, PackError, "--backend").name for n in names))
    return (registry.REFERENCE, *(n for n in registry.names() if n != registry.REFERENCE))


class PackTester:
    """Runs pack test files against one Engine, on each backend asked for, and accumulates coverage."""

    def __init__(self, engine, backends: Sequence[str] | None = None):
        self.engine = engine
        self.backends = backends_to_test(backends)
        self.coverage = Coverage()
        self.tested: set[str] = set()
        for p in engine.program.packs:      # a layer with no rules of its own is still a pack to test
            self.coverage.rules.setdefault(p.name, set())
        for r in engine.program.rules:
            self.coverage.rules.setdefault(r.pack, set()).add(r.id)
            for path, node in branches(r):
                self.coverage.branches.append(Branch(r.id, path, getattr(node, "label", None), node.origin))

    def run_file(self, path: str | Path) -> list[Outcome]:
        """Every case of a test file; a file that cannot run is one failed outcome, so other files still run."""
        spec, doc, issues = read_test_file(path)
        if spec is None:
            issue = issues[0]
            return [Outcome(issue.file or str(path), issue.line, Path(path).name, passed=False,
                            error="\n".join(str(i.error()) for i in issues))]
        assert doc is not None
        pack = spec.pack or Path(doc.file).name[:-len(TEST_SUFFIX)]
        if pack not in self.coverage.rules:
            line = doc.where(("pack",))[0] if spec.pack else 1
            error = PackError(f"these tests are for pack `{quote(pack)}`, which is not loaded", file=doc.file,
                              line=line, field="pack", hint=f"loaded: {', '.join(sorted(self.coverage.rules))}; "
                                                 "set `pack:` or pass --packs")
            return [Outcome(doc.file, line, Path(path).name, passed=False, error=str(error))]
        self.tested.add(pack)
        return [self.run_case(spec, doc, i) for i in range(len(spec.cases))]

    def run_case(self, spec: TestFile, doc: Document, index: int) -> Outcome:
        test = spec.cases[index]
        line, _ = doc.where(("cases", index, "name"))
        outcome = Outcome(doc.file, line, test.name, passed=False)
        if isinstance(test, BrokenCase):
            outcome.error = "\n".join(str(i.error()) for i in case_problems(test, doc, index))
            return outcome
        try:
            case = case_under_test(spec, doc, index)
        except SlaRulesError as exc:
            outcome.error = f"the test case is not valid: {exc}"
            return outcome
        diffs = []
        for number, backend in enumerate(self.backends):
            try:
                facts, run = self.engine.run(case, test.as_of, backend)
            except InstallError:
                raise                   # a backend cannot run here: no test's fault, and no test ran
            except SlaRulesError as exc:
                outcome.error = f"{doc.file}:{line}: the test case is not valid: {exc}"
                return outcome
            verdict = self.engine.verdict(facts, run, "en")
            if number == 0:
                self.record(facts, run)
            expected, actual = project(test.expect, run.fired, verdict)
            if expected != actual:
                outcome.failed_on.append(backend)
                diffs.append((f"on the {backend} backend:\n" if len(self.backends) > 1 else "")
                             + diff(expected, actual))
        outcome.passed = not diffs
        outcome.diff = "\n".join(diffs)
        return outcome

    def record(self, facts, run) -> None:
        doc = self.engine.final_values(facts, run)
        self.coverage.fired.update(run.fired)
        program = self.engine.program
        for b in self.coverage.branches:
            if (b.rule, b.path) in self.coverage.held:
                continue
            node = _at(program.rule(b.rule), b.path)
            if evaluate.value(node, doc) is True:
                self.coverage.held.add((b.rule, b.path))


def _at(rule: CompiledRule, path: str):
    part, _, rest = path.partition(".")
    node = rule.scope if part == "scope" else rule.when
    for step in rest.split(".") if rest else []:
        index = int(step[step.index("[") + 1:-1])
        node = node.children[index]
    return node


def project(expect: Expect, fired: list[str], verdict) -> tuple[dict, dict]:
    """The expected values and the matching part of the actual result, side by side."""
    exp: dict[str, Any] = {}
    act: dict[str, Any] = {}
    fired_set = set(fired)
    if expect.fires:
        exp["fires"] = sorted(expect.fires)
        act["fires"] = sorted(r for r in expect.fires if r in fired_set)
    if expect.does_not_fire:
        exp["does_not_fire"] = sorted(expect.does_not_fire)
        act["does_not_fire"] = sorted(r for r in expect.does_not_fire if r not in fired_set)
    if exp != act:
        act["fired (all)"] = sorted(fired_set)     # shown in the diff only when something is off
    data = verdict.to_dict()
    for name in VERDICT_FIELDS:
        want = getattr(expect, name)
        if want is None:
            continue
        got = data[name]
        if name == "findings":
            want, got = sorted(want), sorted(f["rule"] for f in got)
        elif name == "complaint_level":
            got = got or 0
        elif name in ("classifications", "missing", "not_covered"):
            want = sorted(want)
        exp[name], act[name] = want, got
    return exp, act


def diff(expected: dict, actual: dict) -> str:
    def dump(d: dict) -> list[str]:
        return yaml.safe_dump(d, allow_unicode=True, sort_keys=True, default_flow_style=False).splitlines()
    return "\n".join(difflib.unified_diff(dump(expected), dump(actual), "expected", "actual", lineterm=""))


@dataclass
class Report:
    outcomes: list[Outcome]
    coverage: Coverage
    backends: tuple[str, ...] = (registry.REFERENCE,)      # what every case ran on

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]

    def render(self, verbose: bool = False) -> str:
        lines: list[str] = []
        for o in self.outcomes:
            if o.passed and not verbose:
                continue
            where = f"{o.file}:{o.line}" if o.line else o.file
            lines.append(f"{'PASS' if o.passed else 'FAIL'}  {quote(o.name)}  ({where})")
            if o.error:
                lines += ["      " + e for e in o.error.splitlines()]
            lines += ["      " + d for d in o.diff.splitlines()]
        cov = self.coverage
        lines.append(f"{len(self.outcomes) - len(self.failed)} passed, {len(self.failed)} failed "
                     f"(on {', '.join(self.backends)})")
        lines.append("coverage:")
        for pack in sorted(cov.rules):
            (rf, rt), (bf, bt) = cov.rule_ratio(pack), cov.branch_ratio(pack)
            lines.append(f"  {pack:<14} rules {rf}/{rt} {_pct(rf, rt)}   branches {bf}/{bt} {_pct(bf, bt)}")
        for rid in cov.unfired():
            lines.append(f"  never fired: {rid}")
        for b in cov.untaken():
            label = f" ({b.label})" if b.label else ""
            lines.append(f"  branch never taken: {b.rule} {b.path}{label}  [{b.origin}]")
        lines.append(f"  total {cov.percent():.1f}%")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        cov = self.coverage
        return {
            "passed": len(self.outcomes) - len(self.failed), "failed": len(self.failed),
            "backends": list(self.backends),
            "cases": [{"file": o.file, "line": o.line, "name": o.name, "passed": o.passed, "diff": o.diff or None,
                       "error": o.error, "failed_on": o.failed_on} for o in self.outcomes],
            "coverage": {
                "percent": round(cov.percent(), 2),
                "packs": {p: {"rules": list(cov.rule_ratio(p)), "branches": list(cov.branch_ratio(p))}
                          for p in sorted(cov.rules)},
                "never_fired": cov.unfired(),
                "branches_never_taken": [{"rule": b.rule, "branch": b.path, "label": b.label, "where": b.origin}
                                         for b in cov.untaken()],
            },
        }


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.0f}%" if total else "n/a"


def run_tests_beside_packs(paths: list[str | Path], load, backends: Sequence[str] | None = None) -> Report:
    """Each directory's pack tests against the packs of that directory (`load([directory])`), one report.

    A directory is a pack set: the network's tests (rules/) are written for the network's
    packs, the national layer's (rules/national/) for the national packs alone.
    """
    names = backends_to_test(backends)
    by_dir: dict[Path, list[Path]] = {}
    for f in find_test_files(paths):
        by_dir.setdefault(f.parent, []).append(f)
    outcomes: list[Outcome] = []
    coverage = Coverage()
    for directory, files in by_dir.items():
        report = run_tests(load([directory]), files, names)
        outcomes += report.outcomes
        coverage.merge(report.coverage)
    return Report(outcomes, coverage, names)


def run_tests(engine, paths: Sequence[str | Path], backends: Sequence[str] | None = None) -> Report:
    """Run every pack test file under `paths` against `engine`, on each of `backends` (default: every one)."""
    tester = PackTester(engine, backends)
    outcomes: list[Outcome] = []
    for path in find_test_files(paths):
        outcomes.extend(tester.run_file(path))
    cov = tester.coverage
    cov.rules = {p: ids for p, ids in cov.rules.items() if p in tester.tested}   # report the packs under test
    return Report(outcomes, cov, tester.backends)
