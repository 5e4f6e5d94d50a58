"""The pytest plugin, as a service embedding slarules would use it (run with pytester)."""
from __future__ import annotations

import shutil

import pytest

from conftest import ROOT

pytest_plugins = ["pytester"]


@pytest.fixture
def service(pytester):
    """A service's repository: a copy of the shipped packs and their tests under rules/."""
    shutil.copytree(ROOT / "rules", pytester.path / "rules", ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    return pytester


def test_collection_is_off_unless_asked(service):
    result = service.runpytest("rules")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_ini_turns_each_case_into_a_test(service):
    service.makeini("[pytest]\nslarules_collect = true\n")
    result = service.runpytest("rules/uc.test.yaml", "-q")
    result.assert_outcomes(passed=9)


def test_a_broken_expectation_fails_with_a_diff(service):
    path = service.path / "rules" / "uc.test.yaml"
    path.write_text(path.read_text().replace("fires: [uc.intake.prohibited]", "fires: [uc.phone-query.answer]", 1))
    result = service.runpytest("rules/uc.test.yaml", "--slarules")
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines(["*--- expected*", "*-- uc.phone-query.answer*"])


def test_an_invalid_test_file_is_a_located_collection_error(service):
    (service.path / "rules" / "bad.test.yaml").write_text("pack: uc\ncases:\n  - name: x\n    expect: {fires: 3}\n")
    result = service.runpytest("rules/bad.test.yaml", "--slarules")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*bad.test.yaml:4*"])


def test_fixture_runs_pack_tests_with_coverage(service):
    service.makepyfile(test_packs="""
        def test_packs(slarules_pack_tests):
            report = slarules_pack_tests("rules")
            assert not report.failed
            assert report.coverage.percent() == 100.0
    """)
    service.runpytest("test_packs.py").assert_outcomes(passed=1)
