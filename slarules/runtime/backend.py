"""The backend interface and the one registry of backends, read by the engine, the batch and the CLI.

A backend runs one compiled Program (packs/program.py) over the encoded fact
documents of `values.case_facts` and reports, per case, the rules that fired
(before precedence) and the facts the rules themselves produced
(classifications, complaint level): a `RunResult`, from which the verdict is
built the same way whichever backend ran. durable_rules does it one case at a
time; Polars a whole chunk at once, and its registration also lets plain rows
of a batch take the columnar backend (slarules/columnar/), which writes the
verdicts as columns.

A new backend is one module with a class built from a Program (`Backend`
below) and one `Registration` in `REGISTERED`, or `register()` at run time:
`Engine.adjudicate_many(backend=...)`, `slarules batch|diff|test --backend` and
the test suite's parametrization all read the names from here. This module
imports nothing heavy: the CLI reads it for `--backend`'s choices at every
cold start, and a backend's own module is imported only when it is first built.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol

from ..echo import quote
from ..errors import SlaRulesError

if TYPE_CHECKING:       # annotations only: the Program IR is below this module, never loaded by it
    from ..packs.program import Program


@dataclass
class RunResult:
    """What one case did: rules fired (first firing order) and the chained facts."""

    fired: list[str] = field(default_factory=list)
    classifications: set[str] = field(default_factory=set)
    level: int = 0
    strata_closed: int = 0
    errors: list[str] = field(default_factory=list)
    asserted: list[dict] = field(default_factory=list)
    # Optional, from a backend that decides them in bulk (else the verdict works them out):
    undecided: list[str] | None = None     # in scope, but the condition is unknown (facts missing)
    # rules whose scope holds: at least the deadline rules, and those a field absent could leave undecided
    in_scope: set[str] | None = None


class Backend(Protocol):
    """What the engine asks of a backend built from a Program. Built once per Engine and shared between
    threads, so `run` and `run_many` must be safe to call concurrently. A backend may also offer
    `run_facts(facts)`, one case's values.CaseFacts whole, which Engine.run then calls instead of `run`
    (the durable backend's: its strata's facts come made by the fact plan, FactPlan.project)."""

    def run(self, doc: dict[str, Any]) -> RunResult:
        """One case's encoded facts."""
        ...

    def run_many(self, docs: list[dict[str, Any]]) -> list[RunResult]:
        """Many cases' encoded facts, one result each, in order."""
        ...


@dataclass(frozen=True)
class Registration:
    """A backend by name: how to build it, and what the callers may ask of it."""

    name: str
    summary: str                 # one line, for `--help` and the error naming the registered backends
    build: str | Callable[[Program], Backend]     # "module:Class" (imported when first built) or a callable;
                                 # picklable (a module-level class or function) for batch workers and Spark
    bulk: bool = False           # judges a chunk in one pass: what a Spark partition runs
    columnar: bool = False       # a batch's plain rows may take the columnar backend (same verdict bytes)
    preflight: bool = False      # built before any case is read: building it can fail for reasons no case
                                 # caused (durable_rules not built here), which must stop a run, not reject rows

    def construct(self, program: Program) -> Backend:
        """The backend for `program`, its module imported now if named by a string."""
        if callable(self.build):
            return self.build(program)
        module, _, name = self.build.partition(":")
        backend: Backend = getattr(import_module(module), name)(program)
        return backend


# The shipped backends, the default first. Spellings of each operator are in packs/operators.py.
REGISTERED: dict[str, Registration] = {r.name: r for r in (
    Registration("polars", "Polars, vectorised over each chunk; plain batch rows as columns (default)",
                 "slarules.runtime.polars_backend:PolarsBackend", bulk=True, columnar=True),
    Registration("durable", "durable_rules, per case: the reference",
                 "slarules.runtime.durable_backend:DurableBackend", preflight=True),
)}
DEFAULT = "polars"        # what a batch, a diff and `adjudicate_many` run unless told
REFERENCE = "durable"     # what a single case, `explain` and the counterfactuals run


def register(registration: Registration) -> None:
    """Add a backend (or replace one of that name): from then on every caller can select it by name. A batch's
    worker processes and Spark's executors are handed the registration of the backend they run."""
    REGISTERED[registration.name] = registration


def unregister(name: str) -> None:
    """Take a registered backend away again (a test's, when it is done); the shipped ones stay."""
    if name in (DEFAULT, REFERENCE):
        raise ValueError(f"the {name} backend is not removable")
    REGISTERED.pop(name, None)


def names(*, bulk: bool | None = None) -> tuple[str, ...]:
    """The registered backends' names, the default first; `bulk=True`: only those judging a chunk at once."""
    return tuple(n for n, r in REGISTERED.items() if bulk is None or r.bulk == bulk)


def described(*, bulk: bool | None = None) -> str:
    """The registered backends, one clause each: what a `--backend` help and an unknown name's hint say."""
    return "; ".join(f"{n}: {REGISTERED[n].summary}" for n in names(bulk=bulk))


def named(name: str, error: type[SlaRulesError], field: str = "backend") -> Registration:
    """The registration of `name`, or `error` located at `field`, listing the registered backends."""
    registration = REGISTERED.get(name) if isinstance(name, str) else None
    if registration is None:
        raise error(f"unknown backend `{quote(name)}`", field=field,
                    hint=f"registered: {', '.join(names())}")
    return registration
