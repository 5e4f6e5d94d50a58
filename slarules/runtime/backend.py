"""What every backend returns for one case, so the verdict never depends on which ran.

A backend takes the encoded fact documents of `derive.case_facts` and reports,
per case, the rules that fired (before precedence) and the facts the rules
themselves produced (classifications, complaint level). durable_rules does it
one case at a time; the Polars backend does a whole chunk of cases at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

BACKENDS = ("polars", "durable")     # Engine.adjudicate_many and `slarules batch --backend`


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
