"""The public entry point: load packs once, adjudicate many cases.

    from slarules import Engine
    verdict = Engine.default().adjudicate(case_dict)
    print(verdict.to_json())

Compile once, evaluate many (as cel-python does): `Engine.load` parses, checks
and compiles the packs into one Program (packs/program.py); `adjudicate` only
derives facts, runs the Program on a backend from the registry
(runtime/backend.py: durable_rules per case, the reference; Polars for
`adjudicate_many`) and builds the verdict (verdict/assembly.py). An Engine is
safe to share between threads.
"""
from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .case import instants
from .case.fast import case_of
from .case.limits import DEFAULT as DEFAULT_LIMITS, Limits
from .case.zones import NO_SUCH_TIME_HINT, NoSuchTime, localize
from .echo import quote
from .errors import CaseError, EngineError, PackError, SlaRulesError
from .packs.program import PackInfo, Program
from .runtime import backend as backends
from .runtime.backend import Backend, RunResult
from .runtime.values import CaseFacts, case_facts
from .verdict.assembly import Verdict, VerdictBuilder

Case = Any     # facts.Case, fastcase.FastCase, or a dict of the case's JSON

CATALOGUE_FILE = "clauses.yaml"
TEST_SUFFIX = ".test.yaml"
LANGS = ("zh", "en")


def default_rules_dir() -> Path:
    """The shipped packs: package data in a wheel, `rules/` in a source checkout."""
    try:
        from importlib.resources import files
        path = Path(str(files("slarules.rules")))
        if (path / CATALOGUE_FILE).exists():
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "rules"


NATIONAL_DIR = "national"      # the national layer (NATIONAL.md), beneath the network's packs


def default_pack_dirs() -> list[Path]:
    """The shipped pack set, lowest layer first: the national rules, then the network's packs.

    Every rule fires whatever the order; the order is the packs' in the verdict and the
    order in which liability rules are asked who answers for a harm (chaining.Chain.payer).
    """
    rules = default_rules_dir()
    return [rules / NATIONAL_DIR, rules]


def file_kind(path: Path) -> str:
    """What a YAML file beside the packs is, told by its name: "catalogue", "test" (a pack test) or "pack"."""
    if path.name == CATALOGUE_FILE:
        return "catalogue"
    return "test" if path.name.endswith(TEST_SUFFIX) else "pack"


def pack_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories into their pack files (not the catalogue, not pack tests)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.glob("*.yaml") if file_kind(f) == "pack"))
        else:
            out.append(p)
    if not out:
        raise PackError("no rule packs found", file=", ".join(map(str, paths)) or None,
                        hint="give pack files or a directory containing *.yaml packs")
    return out


def catalogue_beside(paths: Iterable[str | Path]) -> Path | None:
    """A pack directory may bring its own clause catalogue; None means the shipped one. A clauses.yaml
    that is there but not a regular file is its catalogue too, refused when read, never passed over."""
    return next((Path(p) / CATALOGUE_FILE for p in paths if (Path(p) / CATALOGUE_FILE).exists()), None)


def load_catalogue(path: str | Path | None = None) -> dict[str, dict]:
    from .packs.model import raise_first, read_catalogue  # Pydantic: only when compiling
    clauses, issues = read_catalogue(path or default_rules_dir() / CATALOGUE_FILE)
    raise_first(issues)
    assert clauses is not None      # the schema wants one clause at least: none is an error raised above
    return clauses


@functools.lru_cache(maxsize=256)       # a service passes the same as_of again and again
def _timestamp(text: str) -> datetime:
    return instants.read_timestamp(text)        # a ValueError is not kept: a bad text is read again


def parse_instant(value: Any, case, field: str = "as_of") -> datetime:
    """An instant given to the engine (`as_of`), read as a case's timestamps are; naive: in the case's zone."""
    if isinstance(value, datetime):
        dt = value
        if not instants.year_ok(dt):
            raise CaseError(f"the year {dt.year} {instants.YEARS_MESSAGE}", field=field)
    else:
        try:
            dt = _timestamp(value if type(value) is str else str(value))
        except ValueError as exc:              # it says what was expected
            raise CaseError(str(exc), field=field) from None
    if dt.tzinfo is not None:
        return dt
    try:
        return localize(dt, case.zone)
    except NoSuchTime as exc:
        raise CaseError(str(exc), field=field, hint=NO_SUCH_TIME_HINT) from None


def internal_error(exc: Exception) -> EngineError:
    """An exception slarules did not foresee, as one located-nowhere SlaRulesError: never a crash."""
    return EngineError(f"internal error ({type(exc).__name__}: {exc}) while adjudicating this case",
                       hint="this is a bug in slarules; please report it with the case")


def _columnar(program: Program, clause_order: dict[str, int], lang: str):
    from .columnar.evaluator import Columnar, Unsupported
    try:
        return Columnar(program, clause_order, lang)
    except Unsupported:
        return None             # cannot: cached like any result


_NOT_BUILT = object()


class _Built:
    """What an Engine builds on first use (backends, columnar plans), once, whichever thread asks first."""

    def __init__(self):
        self._lock = threading.Lock()
        self._done: dict[object, Any] = {}     # a backend's name, or ("columnar", lang)

    def ready(self, name: object) -> Any:
        """What `get(name, ...)` built, or None when nothing is built yet (or building it failed)."""
        done = self._done.get(name)
        return None if isinstance(done, SlaRulesError) else done

    def get(self, name: object, build, *args) -> Any:
        """`build(*args)`'s result, built once; a SlaRulesError it raised (packs durable_rules refuses)
        is kept and raised again, not rebuilt on every call."""
        done = self._done.get(name, _NOT_BUILT)
        if done is _NOT_BUILT:
            with self._lock:
                if name not in self._done:
                    try:
                        self._done[name] = build(*args)
                    except SlaRulesError as exc:
                        self._done[name] = exc
                done = self._done[name]
        if isinstance(done, SlaRulesError):
            raise done
        return done


class Engine:
    """Compiled packs plus a backend; `adjudicate` is the only hot path."""

    _default: Engine | None = None
    _default_lock = threading.Lock()

    def __init__(self, program: Program, catalogue: dict[str, dict]):
        self.program = program
        self.catalogue = catalogue
        self.builder = VerdictBuilder(program, {c: i for i, c in enumerate(catalogue)})
        self._built = _Built()                # shared with every with_limits copy
        self.pack_paths: list[Path] = []      # what `load` read, so batch workers can load the same
        self.catalogue_path: Path | None = None
        self.limits: Limits = DEFAULT_LIMITS

    def with_limits(self, limits: Limits) -> Engine:
        """This engine with other per-case limits; packs and backends are shared, never built twice."""
        other = copy.copy(self)
        other.limits = limits
        return other

    def runner(self, name: str) -> Backend:
        """The registered backend `name` (runtime/backend.py) built from these packs on first use, once:
        batch workers and Spark executors never import durable_rules, a single case never Polars."""
        built = self._built.ready(name) if type(name) is str else None     # the hot path: built already
        if built is not None:
            return built
        registration = backends.named(name, CaseError)
        return self._built.get(registration.name, registration.construct, self.program)

    @property
    def backend(self) -> Backend:
        """The reference backend (durable_rules): what a single case, explain and the counterfactuals run."""
        return self.runner(backends.REFERENCE)

    @property
    def bulk(self) -> Backend:
        """The default bulk backend (Polars, ~100 ms to import): what a chunk runs unless told."""
        return self.runner(backends.DEFAULT)

    def columnar(self, lang: str):
        """The packs compiled for bulk work as columns (columnar.Columnar), or None when they use
        something it cannot compile; built on first use, once per language."""
        return self._built.get(("columnar", lang), _columnar, self.program, self.builder.clause_order, lang)

    @classmethod
    def load(cls, paths: Iterable[str | Path], catalogue: str | Path | None = None) -> Engine:
        """Compile the packs at `paths` (files or directories); `with_limits` sets per-case bounds."""
        paths = list(paths)
        catalogue = catalogue or catalogue_beside(paths)
        files = pack_files(paths)
        given = Path(catalogue) if catalogue else None
        program, clauses = cls._compiled(files, given or default_rules_dir() / CATALOGUE_FILE)
        engine = cls(program, clauses)
        engine.pack_paths = files
        engine.catalogue_path = given
        return engine

    @staticmethod
    def _compiled(files: list[Path], catalogue: Path) -> tuple[Program, dict]:
        """Compile the packs, or take the Program from the cache when nothing it depends on changed."""
        from .packs import cache
        try:
            digest = cache.key([*files, catalogue])
        except SlaRulesError:
            digest = None      # unreadable, not a file, too big: compiling says which, with its path
        cached = cache.load(digest) if digest else None
        if cached is not None:
            return cached
        from .packs.compiler import compile_packs  # Pydantic and the pack models: only when compiling
        from .packs.model import load_pack
        packs = [load_pack(p) for p in files]
        clauses = load_catalogue(catalogue)
        program = compile_packs(packs, clauses)
        if digest:
            cache.store(digest, (program, clauses))
        return program, clauses

    def to_bytes(self) -> bytes:
        """The compiled packs as bytes, for processes that never see the pack files (Spark executors).

        Compile once where the packs are, evaluate anywhere the same slarules
        is installed: `from_bytes` refuses bytes from another slarules or Python.
        """
        from .packs import cache
        return cache.stamp() + cache.dumps((self.program, self.catalogue, self.limits))

    @classmethod
    def from_bytes(cls, data: bytes) -> Engine:
        import pickle

        from .packs import cache
        stamp = cache.stamp()
        if data[:len(stamp)] != stamp:
            raise PackError("the compiled packs come from another version of slarules or Python",
                            hint="install the same slarules wheel and Python on the driver and the executors")
        program, clauses, limits = pickle.loads(data[len(stamp):])
        return cls(program, clauses).with_limits(limits)

    @classmethod
    def default(cls) -> Engine:
        """The shipped packs, compiled once per process."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls.load(default_pack_dirs())
            return cls._default

    @property
    def packs(self) -> list[PackInfo]:
        return self.program.packs

    def facts(self, case: Case | dict, as_of: Any = None, now: Any = None) -> CaseFacts:
        """The case's facts at `as_of`, else at the case's own as_of, else at `now` (default: the clock)."""
        case = case_of(case, limits=self.limits)
        when = as_of if as_of is not None else case.as_of if case.as_of is not None else now
        instant = parse_instant(when, case) if when is not None else datetime.now(UTC)
        return case_facts(self.program, case, instant)

    def run(self, case: Case | dict, as_of: Any = None, backend: str = backends.REFERENCE) -> tuple[CaseFacts, RunResult]:
        """The case's facts and what the rules did on `backend` (any registered name), before the verdict."""
        facts = self.facts(case, as_of)
        runner = self.runner(backend)
        run_facts = getattr(runner, "run_facts", None)     # a backend may take the facts whole (durable's)
        return facts, run_facts(facts) if run_facts is not None else runner.run(facts.doc)

    def adjudicate(self, case: Case | dict, *, as_of: Any = None, lang: str = "zh", log=None) -> Verdict:
        """Adjudicate one case. Raises CaseError (a SlaRulesError) on invalid input.

        `log` (an output.decision_log.DecisionLog) gets one record of the decision, once: a case rejected
        is no decision, and one already in the log is not written again.
        """
        if lang not in LANGS:
            raise CaseError(f"unknown language `{quote(lang)}`", field="lang", hint="zh or en")
        try:
            facts, run = self.run(case, as_of)
            verdict = self.builder.build(facts, run, lang)
        except SlaRulesError:
            raise
        except Exception as exc:       # never anything but a SlaRulesError out of the library
            raise internal_error(exc) from exc
        if log is not None:
            log.record(case, verdict, lang)
        return verdict

    def adjudicate_many(self, cases: Iterable[Case | dict], *, as_of: Any = None, lang: str = "zh",
                        backend: str = backends.DEFAULT, now: Any = None) -> list[tuple[CaseFacts | None, Verdict | SlaRulesError]]:
        """Adjudicate a chunk of cases at once; a bad case gives its error in place, never stops the rest.

        `backend` is any registered name (runtime/backend.py): "polars" matches
        the whole chunk in one vectorised pass; "durable" runs each case through
        durable_rules (the reference). The verdicts are identical either way;
        the differential tests and the golden set hold every backend so.
        `as_of` overrides every case's own; `now` is for cases without one, so a
        batch can fix "now" once and give the same verdicts when rerun.
        """
        if lang not in LANGS:
            raise CaseError(f"unknown language `{quote(lang)}`", field="lang", hint="zh or en")
        registration = backends.named(backend, CaseError)
        if registration.preflight:
            _ = self.runner(backend)    # built before any case: a backend that cannot run is no case's error
        out: list = []
        ready: list[int] = []
        for case in cases:
            try:
                out.append((self.facts(case, as_of, now), None))
                ready.append(len(out) - 1)
            except SlaRulesError as exc:
                out.append((None, exc))
            except Exception as exc:  # noqa: BLE001 # one poison case costs its own result, never the list
                out.append((None, internal_error(exc)))
        docs = [out[i][0].doc for i in ready]
        try:
            runs: list[RunResult | Exception] = list(self.runner(backend).run_many(docs))
        except Exception:  # noqa: BLE001 # find the case that broke the pass; the others go on
            runs = [self._run_one(d, backend) for d in docs]
        for i, run in zip(ready, runs):
            facts = out[i][0]
            try:
                if isinstance(run, Exception):
                    raise run
                out[i] = (facts, self.builder.build(facts, run, lang))
            except SlaRulesError as exc:
                out[i] = (None, exc)
            except Exception as exc:  # noqa: BLE001  # one poison case costs its own result
                out[i] = (None, internal_error(exc))
        return out

    def _run_one(self, doc: dict, backend: str) -> RunResult | Exception:
        try:
            return self.runner(backend).run(doc)
        except Exception as exc:  # noqa: BLE001  # the caller wraps it as that case's internal error
            return exc

    # -- for tools: a run, its verdict and its values, without reaching into the engine ----------
    def verdict(self, facts: CaseFacts, run: RunResult, lang: str = "zh") -> Verdict:
        """The verdict of a run from `run`: what `adjudicate` returns, for tools that need the run too."""
        return self.builder.build(facts, run, lang)

    def final_values(self, facts: CaseFacts, run: RunResult) -> dict[str, Any]:
        """The encoded facts as the last stratum left them, chained facts set: what the rules saw."""
        return self.builder.final_doc(facts, run)

    def rerun(self, doc: dict[str, Any]) -> RunResult:
        """Run encoded facts (a case's, changed) through durable_rules: explain's counterfactuals."""
        return self.backend.run(doc)

    def explain(self, case: Case | dict, *, as_of: Any = None, lang: str = "zh"):
        """The verdict plus a trace of every rule: why, why not, and what would flip each finding."""
        if lang not in LANGS:
            raise CaseError(f"unknown language `{quote(lang)}`", field="lang", hint="zh or en")
        from .verdict.explain import explain
        return explain(self, case, as_of=as_of, lang=lang)
