"""pytest plugin: a service runs its rule packs' tests inside its own test suite.

Installed with slarules (entry point `pytest11`), it does nothing until asked:

- the `slarules_pack_tests` fixture runs pack test files and returns the report
  (`report.failed`, `report.coverage.percent()`), for an assertion of your own;
- with `slarules_collect = true` in the pytest ini (or `--slarules`), every
  `*.test.yaml` file pytest meets becomes one test item per case, failing with
  the expected-vs-actual diff. Packs are `slarules_packs` (ini, paths relative
  to the rootdir) or, by default, the packs beside each test file.
"""
from __future__ import annotations

from pathlib import Path

import pytest

SUFFIX = ".test.yaml"


def pytest_addoption(parser) -> None:
    group = parser.getgroup("slarules")
    group.addoption("--slarules", action="store_true", help="collect slarules pack tests (*.test.yaml)")
    parser.addini("slarules_collect", "collect slarules pack tests (*.test.yaml)", type="bool", default=False)
    parser.addini("slarules_packs", "rule packs for collected pack tests (default: beside each test file)",
                  type="paths", default=[])


class _Engines:
    """One compiled Engine per set of packs, for the whole session."""

    def __init__(self):
        self._cache: dict[tuple[str, ...], object] = {}

    def get(self, packs: list[Path]):
        from ..engine import Engine
        k = tuple(sorted(str(p) for p in packs))
        if k not in self._cache:
            self._cache[k] = Engine.load(list(k))
        return self._cache[k]


_engines = _Engines()


def _packs_for(config, test_file: Path) -> list[Path]:
    configured = config.getini("slarules_packs")
    return [Path(p) for p in configured] if configured else [test_file.parent]


def pytest_collect_file(file_path: Path, parent):
    config = parent.config
    if file_path.name.endswith(SUFFIX) and (config.getoption("slarules") or config.getini("slarules_collect")):
        return PackTestFile.from_parent(parent, path=file_path)
    return None


class PackTestFile(pytest.File):
    def collect(self):
        from ..errors import SlaRulesError
        from .packtest import PackTester, load_test_file
        try:
            spec, doc = load_test_file(self.path)
            tester = PackTester(_engines.get(_packs_for(self.config, self.path)))
        except SlaRulesError as exc:
            raise self.CollectError(str(exc)) from None
        for index, case in enumerate(spec.cases):
            yield PackTestItem.from_parent(self, name=case.name, tester=tester, spec=spec, doc=doc, index=index)


class PackCaseFailed(Exception):
    pass


class PackTestItem(pytest.Item):
    def __init__(self, *, tester, spec, doc, index, **kw):
        super().__init__(**kw)
        self.tester, self.spec, self.doc, self.index = tester, spec, doc, index

    def runtest(self) -> None:
        outcome = self.tester.run_case(self.spec, self.doc, self.index)
        if not outcome.passed:
            raise PackCaseFailed(outcome.error or outcome.diff)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, PackCaseFailed):
            return f"{self.name}\n{excinfo.value}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        line, _ = self.doc.where(("cases", self.index, "name"))
        return self.path, (line or 1) - 1, f"pack test: {self.name}"


@pytest.fixture
def slarules_pack_tests():
    """`run(paths, packs=None)` -> packtest.Report; packs default to those beside the first path."""
    from .packtest import run_tests

    def run(paths, packs=None):
        paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
        if packs is None:
            first = paths[0]
            packs = [first if first.is_dir() else first.parent]
        return run_tests(_engines.get([Path(p) for p in packs]), paths)
    return run
