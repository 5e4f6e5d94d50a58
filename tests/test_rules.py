"""Every rule fires and stays quiet at its boundaries: the shipped pack tests.

The cases live beside the packs (rules/*.test.yaml, rules/national/*.test.yaml) so
policy owners read and extend them; here pytest runs each one through the library,
against the packs of its own directory (as `slarules test` does) on every registered
backend (runtime/backend.py), and checks that each pack's own tests reach every rule
and every branch of it.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from slarules import Engine
from slarules.engine import default_pack_dirs
from slarules.runtime import backend as backends
from slarules.tools.packtest import TEST_SUFFIX, PackTester, load_test_file

DIRS = default_pack_dirs()
FILES = sorted(f for d in DIRS for f in d.glob("*" + TEST_SUFFIX))
LOADED = {f: load_test_file(f) for f in FILES}      # each file parsed once, not once per case (~40 ms each)
CASES = [(f, i, c.name) for f in FILES for i, c in enumerate(LOADED[f][0].cases)]
_ENGINES: dict[Path, Engine] = {}


def engine_for(path: Path) -> Engine:
    """The packs beside a test file: the set its cases are written for."""
    if path.parent not in _ENGINES:
        _ENGINES[path.parent] = Engine.load([path.parent])
    return _ENGINES[path.parent]


@pytest.fixture(scope="module")
def testers():
    return {}


@pytest.mark.parametrize("directory", DIRS, ids=[d.name for d in DIRS])
def test_every_shipped_pack_has_tests(directory: Path):
    packs = {p.stem for p in directory.glob("*.yaml") if not p.name.endswith(TEST_SUFFIX)} - {"clauses"}
    tests = {f.name[:-len(TEST_SUFFIX)] for f in directory.glob("*" + TEST_SUFFIX)}
    assert packs and tests == packs


@pytest.mark.parametrize("backend", backends.names())
@pytest.mark.parametrize("path, index, name", CASES, ids=[f"{f.stem}:{n}" for f, _, n in CASES])
def test_pack_case(testers, path: Path, index: int, name: str, backend: str):
    tester = testers.setdefault((path.parent, backend), PackTester(engine_for(path), [backend]))
    spec, doc = LOADED[path]
    outcome = tester.run_case(spec, doc, index)
    assert outcome.error is None, outcome.error
    assert outcome.passed, f"{name}\n{outcome.diff}"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_each_pack_is_fully_covered_by_its_own_tests(path: Path):
    t = PackTester(engine_for(path))
    assert all(o.passed for o in t.run_file(path))
    pack = path.name[:-len(TEST_SUFFIX)]
    assert t.coverage.rule_ratio(pack)[0] == t.coverage.rule_ratio(pack)[1], t.coverage.unfired()
    covered, total = t.coverage.branch_ratio(pack)
    assert covered == total, [(b.rule, b.path) for b in t.coverage.untaken() if b.rule in t.coverage.rules[pack]]


def test_every_rule_has_cases_that_fire_and_cases_that_do_not(engine):
    firing, quiet = set(), set()
    for f in FILES:
        for c in LOADED[f][0].cases:
            firing.update(c.expect.fires)
            quiet.update(c.expect.does_not_fire)
    rules = {r.id for r in engine.program.rules}
    assert rules - firing == set(), "rules with no firing case"
    assert rules - quiet == set(), "rules with no non-firing case"
