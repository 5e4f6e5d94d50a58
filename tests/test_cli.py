"""The CLI as a user meets it: verdicts out, bad input in one paragraph with exit 2."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import EXAMPLES, ROOT
from slarules import load_case
from slarules.packs.model import KINDS
from slarules.verdict.text import LABELS, render_text


def run(*args, stdin: str | None = None, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "slarules", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=60)


def test_adjudicate_text_and_json():
    r = run("adjudicate", str(EXAMPLES / "tb1-late.yaml"))
    assert r.returncode == 0 and "[TB-1]" in r.stdout and "BT-03" in r.stdout
    r = run("adjudicate", str(EXAMPLES / "tb1-late.yaml"), "--format", "json", "--lang", "en")
    v = json.loads(r.stdout)
    assert v["findings"][0]["clause"] == "TB-1" and "late" in v["findings"][0]["message"]


def test_verdict_bytes_do_not_depend_on_process_or_machine_time_zone():
    outs = {run("adjudicate", str(EXAMPLES / "rg5-level3.yaml"), "--format", "json", env={"TZ": tz}).stdout
            for tz in ("UTC", "America/New_York", "Asia/Kolkata")}
    assert len(outs) == 1


def test_schema_commands():
    for what in ("case", "pack", "verdict"):
        r = run("schema", what)
        assert r.returncode == 0 and json.loads(r.stdout)["type"] == "object"
    assert "waybill" in json.loads(run("schema", "case").stdout)["properties"]


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
BAD = {
    "malformed-json": ('{"waybill": "X1", ', "case.json", "not valid JSON"),
    "malformed-yaml": ("waybill: X1\nparcel: [unclosed\n", "case.yaml", "not valid YAML"),
    "unknown-field": ("waybill: X1\nparcle: {}\n", "case.yaml", "parcle"),
    "wrong-type": ("waybill: X1\nparcel:\n  weight_kg: heavy\n", "case.yaml", "parcel.weight_kg"),
    "nan": ('{"waybill": "X1", "parcel": {"weight_kg": NaN}}', "case.json", "NaN"),
    "negative-size": ("waybill: X1\nparcel:\n  length_cm: -5\n", "case.yaml", "parcel.length_cm"),
    "impossible-timestamp": ("waybill: X1\nscans:\n  - {type: arrival, station: D1, at: '2026-02-30T10:00:00'}\n",
                             "case.yaml", "scans.0.at"),
    "empty": ("", "case.yaml", "empty"),
    "alias-bomb": (BOMB, "case.yaml", "aliases"),
    "not-a-mapping": ("- 1\n- 2\n", "case.yaml", "mapping"),
    "duplicate-key": ("waybill: X1\nwaybill: X2\n", "case.yaml", "duplicate"),
    "yaml-tag": ("waybill: X1\nparcel:\n  weight_kg: !!float .nan\n", "case.yaml", "!!float"),
    "bad-money": ("waybill: X1\ncollection: {charged_cny: 1.234}\n", "case.yaml", "collection.charged_cny"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, name):
    text, filename, expected = BAD[name]
    path = tmp_path / filename
    path.write_text(text, encoding="utf-8")
    r = run("adjudicate", str(path))
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert expected in r.stderr and filename in r.stderr


def test_line_numbers_point_at_the_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("waybill: X1\nparcel:\n  weight_kg: 1\n  colour: red\n", encoding="utf-8")
    r = run("adjudicate", str(path))
    assert ":4:" in r.stderr and "parcel.colour" in r.stderr


def test_missing_file_and_stdin():
    r = run("adjudicate", "no/such/case.yaml")
    assert r.returncode == 2 and "no such file" in r.stderr
    r = run("adjudicate", "-", "--format", "json", stdin='{"waybill": "STDIN1"}')
    assert r.returncode == 0 and json.loads(r.stdout)["waybill"] == "STDIN1"
    r = run("adjudicate", "-", stdin="")
    assert r.returncode == 2 and "empty" in r.stderr


def test_bad_as_of_and_bad_pack(tmp_path):
    r = run("adjudicate", str(EXAMPLES / "clean.yaml"), "--as-of", "tomorrow")
    assert r.returncode == 2 and "as_of" in r.stderr
    pack = tmp_path / "p.yaml"
    pack.write_text("pack: p\nversion: '1'\nrules:\n  - id: a.b\n    clause: TB-1\n    when:\n"
                    "      - {fact: parcel.wieght_kg, gt: 50}\n    then: {kind: breach}\n"
                    "    message: {zh: x, en: x}\n", encoding="utf-8")
    r = run("adjudicate", str(EXAMPLES / "clean.yaml"), "--packs", str(pack))
    assert r.returncode == 2 and "p.yaml:7" in r.stderr and "parcel.weight_kg" in r.stderr


CODES = re.compile(r"[a-z][a-z_]+")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_chinese_text_shows_no_english_labels(engine, path):
    """Deadline names, classifications, kinds and severities in zh text are Chinese; identifiers stay.

    Left out: pack names, rule ids, missing facts (case fields to supply) and messages
    (the verdict JSON's own text, not_covered's included).
    """
    for as_of in (None, "2026-05-02T12:00:00+08:00"):
        verdict = engine.adjudicate(load_case(str(path)), as_of=as_of)
        text = render_text(verdict, "zh")
        messages = ({f.message for f in verdict.findings} | {f"({f.rule})" for f in verdict.findings}
                    | set(verdict.not_covered))     # "CLAUSE: message": a dated pack's clause is its name
        labels = [line for line in text.splitlines() if line.strip() not in messages
                  and not line.startswith(("规则包:", "缺少事实:"))]
        assert CODES.findall("\n".join(labels)) == [], text


def test_every_code_the_packs_can_show_has_a_chinese_label(engine):
    program = engine.program
    zh = LABELS["zh"]
    assert {r.deadline[0] for r in program.rules if r.deadline} <= set(zh["deadline"])
    assert set(program.classifications) <= set(zh["classification"])
    assert set(KINDS) - {"not_covered"} <= set(zh["kind"])
    assert {r.severity for r in program.rules} <= set(zh["severity"])


def test_english_text_keeps_the_codes(engine):
    text = render_text(engine.adjudicate(load_case(str(EXAMPLES / "ov1-oversize.yaml"))), "en")
    assert "· info" in text and "Classifications: oversize" in text and "\n  delivery       2026" in text


def test_backend_and_spark_are_two_options_and_the_old_engine_word_still_works(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(load_case_dict()) + "\n")
    outs = {}
    for flags in (["--backend", "durable"], ["--engine", "durable"], []):
        out = tmp_path / f"v{len(outs)}.jsonl"
        r = run("batch", str(source), "-o", str(out), "--as-of", "2026-05-20T00:00:00+08:00", *flags)
        assert r.returncode == 0, r.stderr
        outs[tuple(flags)] = out.read_bytes()
    assert len(set(outs.values())) == 1
    r = run("batch", str(source), "-o", str(tmp_path / "x.jsonl"), "--spark", "--backend", "durable")
    assert r.returncode == 2 and "--spark runs a bulk backend" in r.stderr and "bulk backends: polars" in r.stderr


def load_case_dict() -> dict:
    import yaml
    return yaml.safe_load((EXAMPLES / "tb1-late.yaml").read_text())


def test_a_command_parsed_alone_takes_what_the_whole_parser_gives_it():
    """main() builds only the command being run (a cold start's few ms); it must be the same parser."""
    from slarules import cli

    def commands(parser):
        return parser._subparsers._group_actions[0].choices

    whole = commands(cli._parser())
    assert set(whole) == set(cli.COMMANDS)
    for name in cli.COMMANDS:
        alone = commands(cli._parser(name))
        assert list(alone) == [name]
        mine, theirs = alone[name], whole[name]
        assert [(a.option_strings, a.dest, a.nargs, a.default, a.choices, a.required) for a in mine._actions] == \
            [(a.option_strings, a.dest, a.nargs, a.default, a.choices, a.required) for a in theirs._actions]


def test_version_comes_from_the_installed_metadata(capsys):
    """Written once, in pyproject.toml; `slarules --version` and `slarules.__version__` read the metadata."""
    import tomllib
    from importlib.metadata import version

    import slarules
    from slarules.cli import main
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"slarules {version('slarules')}\n"
    assert slarules.__version__ == version("slarules") == \
        tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def _commands():
    import argparse
    from slarules.cli import _parser
    [sub] = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub


def test_every_option_of_every_command_has_help():
    """`--help` explains every argument (a hidden one says so with SUPPRESS), and each command has a help line."""
    import argparse
    sub = _commands()
    assert {c.dest for c in sub._choices_actions} == set(sub.choices)      # each command has a help line
    missing = [f"{name} {' '.join(a.option_strings) or a.dest}" for name, p in sub.choices.items()
               for a in p._actions if not isinstance(a, argparse._HelpAction) and not a.help]
    assert missing == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "tcsh"])
def test_completion_scripts_name_every_command(shell):
    r = run("completion", shell)
    assert r.returncode == 0 and r.stderr == ""
    assert all(name in r.stdout for name in _commands().choices) and "no-analysis" in r.stdout


def test_bash_completes_commands_and_choices(tmp_path):
    script = tmp_path / "slarules.bash"
    script.write_text(run("completion", "bash").stdout)
    probe = ("source {s}; complete() {{ COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); _shtab_slarules; "
             "echo \"${{COMPREPLY[*]}}\"; }}; complete slarules ch; complete slarules check --format ''")
    r = subprocess.run(["bash", "-c", probe.format(s=script)], capture_output=True, text=True, timeout=60)
    assert r.stdout.splitlines() == ["check", "text json sarif github"], r
