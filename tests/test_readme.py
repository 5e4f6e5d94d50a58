"""The README's two commands are the ones that work, and CI runs the second one."""
from __future__ import annotations

import re

from conftest import ROOT


def commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- quickstart -->\s*```sh\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_two_commands_and_ci_runs_the_second():
    run, test = commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test in [line.strip() for line in ci.splitlines()]
    example = re.search(r"adjudicate (\S+)", run).group(1)
    assert (ROOT / example).exists()


def test_the_wheel_lists_every_subpackage():
    """A folder missing from pyproject's `packages` would install a slarules that cannot import itself."""
    import tomllib
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "slarules").rglob("__init__.py")}
    assert found <= listed, f"add to pyproject.toml packages: {sorted(found - listed)}"


def test_the_wheel_ships_every_pack_directory():
    """Engine.default() loads rules/national/ too: a directory the package data misses would be absent."""
    import tomllib
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["slarules.rules"]
    shipped = {f for g in globs for f in (ROOT / "rules").glob(g)}
    assert {f for f in (ROOT / "rules").rglob("*.yaml")} == shipped


def test_ci_runs_the_oldest_and_newest_python_the_package_admits():
    """requires-python, the classifiers and .ci/run's interpreters name the same Pythons."""
    import tomllib

    from packaging.specifiers import SpecifierSet
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    classified = sorted(int(c.rsplit(".", 1)[1]) for c in project["classifiers"]
                        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    ci = re.search(r"SLARULES_CI_PYTHONS:-([^}]*)}", (ROOT / ".ci" / "run").read_text(encoding="utf-8")).group(1)
    assert sorted(int(v.split(".")[1]) for v in ci.split()) == [classified[0], classified[-1]]
    admitted = SpecifierSet(project["requires-python"])
    minors = [m for m in range(8, 20) if f"3.{m}.0" in admitted]
    assert minors == list(range(classified[0], classified[-1] + 1)) == classified
