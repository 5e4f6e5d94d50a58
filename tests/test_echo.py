"""Safe echo: whatever input a message, an error record or a report quotes reaches no output raw.

Terminal control sequences (ESC, OSC, CSI, CR), bidi overrides and lone
surrogates are escaped visibly; a quote is cut to a bounded length that says
how long the text was. Driven through the CLI with hostile keys, zones, clause
ids and waybills: no raw control byte, a bounded length.
"""
from __future__ import annotations

import json
import subprocess
import sys
import unicodedata

import pytest
import yaml
from conftest import ROOT, case
from hypothesis import given, settings
from hypothesis import strategies as st

from slarules.echo import FIELD_LIMIT, MESSAGE_LIMIT, QUOTE_LIMIT, UNSAFE, quote
from slarules.errors import CaseError
from slarules.packs.model import Issue

UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
HOSTILE = ["\x1b]0;owned\x07", "\x1b[2J\x1b[H", "\x9b31m", "\rcarriage", "\u202eevil", "a\u2066b\u2069",
           "x\ud800", "\x00nul", "\x7fdel", "line\nbreak", "k" * 1_000_000]


def raw_control(text: str) -> list[str]:
    """The unsafe characters left in `text` (none, when it was made safe)."""
    return UNSAFE.findall(text)


def test_unsafe_is_every_control_format_surrogate_and_separator_character():
    for code in range(0x110000):
        char = chr(code)
        if unicodedata.category(char) in UNSAFE_CATEGORIES:
            assert UNSAFE.match(char), f"U+{code:04X} ({unicodedata.category(char)}) is not escaped"
    for char in "aZ09 ~中文ＡＢ\u3000\u00a0é😀":           # text, CJK, spaces, emoji stay as they are
        assert not UNSAFE.match(char)


@pytest.mark.parametrize("text, shown", [
    ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"), ("a\rb\nc\td", "a\\rb\\nc\\td"), ("\u202eabc", "\\u202eabc"),
    ("x\ud800", "x\\ud800"), ("\x9b", "\\x9b"), ("\U000e0041", "\\U000e0041"), ("中文 BX-1", "中文 BX-1")])
def test_quote_escapes_visibly(text, shown):
    assert quote(text) == shown


def test_quote_cuts_and_says_how_long():
    shown = quote("k" * 1_000_000)
    assert shown.startswith("k" * QUOTE_LIMIT + "…") and "1,000,000 characters" in shown
    assert len(quote("\x1b" * 1000)) < QUOTE_LIMIT + 40      # escapes count towards the limit
    assert quote("k" * QUOTE_LIMIT) == "k" * QUOTE_LIMIT


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=300), st.integers(1, 120))
def test_any_text_quotes_to_safe_bounded_utf8(text, limit):
    shown = quote(text, limit)
    assert not raw_control(shown)
    shown.encode("utf-8")                        # no surrogate left
    assert len(shown) <= limit + 40
    if len(text) <= limit and not raw_control(text):
        assert shown == text                      # nothing to escape or cut: as it was


def test_an_error_keeps_message_field_file_and_hint_safe_however_they_are_set():
    err = CaseError("bad `\x1b[2J`", file="a\rb.yaml", field="\u202ek" * 1000, hint="\x07")
    err.message += " \x1b]8;;x\x07"
    for text in (str(err), err.message, err.field, err.file, err.hint, json.dumps(err.to_dict(), ensure_ascii=False)):
        assert not raw_control(text.replace("\\n", "")), text
    assert len(err.field) < FIELD_LIMIT + 40 and len(CaseError("m" * 10**6).message) < MESSAGE_LIMIT + 40


def test_a_pack_issue_is_safe_too():
    issue = Issue("p\x1b.yaml", 1, 2, "rules.0.clause", "clause `\x1b[31mX\r` is not in the catalogue", hint="\ud800")
    assert not raw_control(str(issue)) and not raw_control(issue.message) and issue.hint == "\\ud800"


# ---- the CLI, driven with hostile input ----------------------------------------------------------

def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slarules", *args], input=stdin, capture_output=True, cwd=ROOT,
                          timeout=300, check=False)


def assert_safe(data: bytes, most: int = 20_000) -> None:
    text = data.decode("utf-8")                   # never bytes a UTF-8 reader refuses
    assert not raw_control(text.replace("\n", "")), text[:500]
    assert len(data) < most, f"{len(data):,} bytes echoed"


def hostile_cases() -> list[dict]:
    out = []
    for bad in HOSTILE:
        out += [case(**{bad: 1}), case(timezone=bad), case(waybill=bad), case(stations={"sending": bad})]
    return out


def test_adjudicate_and_explain_escape_and_bound_what_they_echo(tmp_path, capfdbinary):
    from slarules.cli import main
    for i, row in enumerate(hostile_cases()):
        one = tmp_path / f"c{i}.json"
        one.write_text(json.dumps(row), encoding="utf-8")
        for command in ("adjudicate", "explain"):
            assert main([command, str(one), "--limit", "case_bytes=4MiB"]) == 2
            out, err = capfdbinary.readouterr()
            assert_safe(out + err)
    yaml_case = tmp_path / "c.yaml"        # YAML's double quotes: \e is ESC, \u202e an override
    yaml_case.write_text('waybill: "BX\\e[2J\\u202e"\n"key\\e]0;x\\a": 1\n', encoding="utf-8")
    assert main(["adjudicate", str(yaml_case)]) == 2
    out, err = capfdbinary.readouterr()
    assert b"\\x1b" in err
    assert_safe(out + err)
    done = cli("adjudicate", "-", stdin=json.dumps(case(timezone="\x1b[31mRed", waybill="x\ud800")).encode())
    assert done.returncode == 2         # a real process writing to a pipe: the bytes a terminal gets
    assert_safe(done.stderr)


@pytest.mark.parametrize("backend", ["polars", "durable"])
def test_the_batch_errors_file_escapes_and_bounds_what_it_copies(tmp_path, backend):
    rows = hostile_cases() + [case(waybill="W" * 3_000_000)]
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "v.jsonl"
    done = cli("batch", str(path), "-o", str(out), "--backend", backend, "--limit", "case_bytes=8MiB",
               "--as-of", "2026-05-20T00:00:00+08:00")
    assert done.returncode == 0, done.stderr[-2000:]
    errors = (tmp_path / "v.errors.jsonl").read_bytes()
    assert len(errors.splitlines()) == len(rows)          # every hostile row is one error record
    assert_safe(errors, most=len(rows) * 2_000)
    for line in errors.splitlines():
        record = json.loads(line)
        assert all(not raw_control(str(v)) for v in record.values())
    assert_safe(done.stderr)


def test_check_escapes_pack_and_clause_ids_and_unknown_keys(tmp_path):
    pack = yaml.safe_load((ROOT / "rules" / "taobao.yaml").read_text(encoding="utf-8"))
    pack["rules"][0]["clause"] = "TB-1\x1b]0;owned\x07\r"
    pack["rules"][1]["id"] = "x\u202e" + "y" * 100_000
    pack["\x1b[2Jkey"] = 1
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(pack, allow_unicode=True), encoding="utf-8")
    for fmt in ("text", "json"):
        done = cli("check", str(path), "--no-analysis", "--format", fmt)
        assert done.returncode == 1, done.stderr[-2000:]
        assert b"\\x1b" in done.stdout
        assert_safe(done.stdout + done.stderr)
