"""A message quotes a pack parameter ({param:NAME}), so a changed number changes the text too.

The parameter is quoted when the packs compile, into the message's literal text:
the per-case verdict and the columnar path read the same text (held equal by
`test_columnar.both`), and no backend knows parameters exist.
"""
from __future__ import annotations

import json
import shutil
from datetime import timedelta

import pytest
from hypothesis import given, strategies as st

from conftest import ROOT, case, complaint
from slarules import Engine, PackError
from slarules.packs import types as T
from test_columnar import both, encode


def rings(n: int) -> dict:
    return case(complaint=complaint(rings=n, connected_at="2026-05-03T08:00:20+08:00",
                                    identity_confirmed_at="2026-05-03T08:00:25+08:00"))


def with_parameter(tmp_path, old: str, new: str):
    """The shipped packs with one parameter line of regulations.yaml changed."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("*.test.yaml"))
    path = rules / "regulations.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    return Engine.load([rules])


def ring_messages(engine, n: int, lang: str) -> list[str]:
    result = both(engine, [encode(rings(n))], lang=lang)
    verdict = json.loads(result.verdicts[0][1])
    return [f["message"] for f in verdict["findings"] if f["rule"] == "cs.phone.rings"]


def test_six_rings_quote_the_limit_in_force(tmp_path, engine):
    assert ring_messages(engine, 6, "en") == [
        "The call was answered after 6 rings; it must be answered within 3."]
    five = with_parameter(tmp_path, "phone_max_rings: {type: int, value: 3}", "phone_max_rings: {type: int, value: 5}")
    assert ring_messages(five, 6, "en") == ["The call was answered after 6 rings; it must be answered within 5."]
    assert ring_messages(five, 6, "zh") == ["来电响铃 6 声才接听，应在 5 声内接听。"]
    assert ring_messages(five, 5, "en") == []          # the rule itself reads the same parameter
    assert five.program.rule("cs.phone.rings").title == "电话响铃超过 5 声未接"


def test_a_duration_limit_is_quoted_in_its_largest_exact_unit(tmp_path):
    engine = with_parameter(tmp_path, "level2_close: {type: duration, value: 2h}",
                            "level2_close: {type: duration, value: 90m}")
    rule = engine.program.rule("cs.level-2")
    assert rule.messages["zh"].endswith("10 分钟内联系客户并上报区域主管，90 分钟内完结。")
    assert rule.messages["en"].endswith("close within 90 min.")
    assert engine.program.rule("cs.level-2.close").title == "二级投诉 90 分钟内未完结"


@given(st.integers(0, T.DURATION_MAX_SECONDS))
def test_a_quoted_duration_reads_back_as_the_same_duration(seconds):
    value = timedelta(seconds=seconds)
    assert T.parse_duration(T.limit_text(value, T.DURATION, "en")) == value
    assert T.limit_text(value, T.DURATION, "zh").split(" ")[0] == T.limit_text(value, T.DURATION, "en").split(" ")[0]


@pytest.mark.parametrize("ptype, value, zh, en", [
    ("int", "3", "3", "3"),
    ("money", "'50'", "50.00", "50.00"),
    ("time", "'17:00'", "17:00", "17:00"),
    ("weight", "50", "50", "50"),
    ("bool", "true", "是", "yes"),
    ("date", "'2026-05-01'", "2026年5月1日", "2026-05-01"),
    ("instant", "'2026-05-01T09:30:00+08:00'", "5月1日 09:30", "1 May 2026 09:30"),
    ("duration", "1d", "24 小时", "24 h"),
    ("duration", "45s", "45 秒", "45 s"),
    ("text", "'华东区'", "华东区", "华东区"),
])
def test_each_parameter_type_is_quoted(tmp_path, ptype, value, zh, en):
    p = tmp_path / "p.yaml"
    p.write_text(f"""pack: p
version: '1'
parameters:
  limit: {{type: {ptype}, value: {value}}}
rules:
  - id: p.rule
    clause: TB-1
    then: {{kind: breach}}
    message: {{zh: "限 {{param:limit}}。", en: "limit {{param: limit}}."}}
""", encoding="utf-8")
    messages = Engine.load([p]).program.rule("p.rule").messages
    assert messages == {"zh": f"限 {zh}。", "en": f"limit {en}."}


PACK = """pack: p
version: '1'
parameters:
  limit: {{type: int, value: 3}}
  label: {{type: text, value: {label}}}
rules:
  - id: p.rule
    clause: TB-1
    title: {title}
    then: {{kind: breach}}
    message:
      zh: "{zh}"
      en: "x"
"""


@pytest.mark.parametrize("title, zh, label, line, field, words", [
    ("t", "within {param:limt}", "a", 12, "rules.0.message.zh", "unknown parameter `{param:limt}`"),
    ("t", "within {param:limit|time}", "a", 12, "rules.0.message.zh", "unknown parameter `{param:limit|time}`"),
    ("t", "within {param:}", "a", 12, "rules.0.message.zh", "unknown parameter"),
    ("over {param:lmit}", "x", "a", 9, "rules.0.title", "did you mean `limit`"),
    ("t", "{{param:label}}", "station", 12, "rules.0.message.zh", "makes a `{...}` placeholder"),
    ("t", "{param:label}", "'{station}'", 12, "rules.0.message.zh", "makes a `{...}` placeholder"),
])
def test_a_bad_quote_is_a_located_pack_error(tmp_path, title, zh, label, line, field, words):
    p = tmp_path / "p.yaml"
    p.write_text(PACK.format(title=title, zh=zh, label=label), encoding="utf-8")
    with pytest.raises(PackError) as err:
        Engine.load([p])
    e = err.value
    assert (e.file, e.line, e.field) == (str(p), line, field), str(e)
    assert words in str(e)


def test_a_bad_quote_exits_2_from_the_cli(tmp_path, capsys):
    from slarules.cli import main
    p = tmp_path / "p.yaml"
    p.write_text(PACK.format(title="t", zh="within {param:limt}", label="a"), encoding="utf-8")
    assert main(["adjudicate", str(ROOT / "examples" / "cases" / "tb1-late.yaml"), "--packs", str(p)]) == 2
    err = capsys.readouterr().err
    assert "p.yaml:12" in err and "unknown parameter" in err and "Traceback" not in err


def test_a_text_parameter_with_braces_that_make_no_placeholder_is_text(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(PACK.format(title="t", zh="{param:label}", label="'{x y}'"), encoding="utf-8")
    assert Engine.load([p]).program.rule("p.rule").messages["zh"] == "{x y}"


def test_no_shipped_message_or_title_writes_a_duration_limit_out():
    """A duration parameter's value, as a message would quote it, appears in no shipped template as text."""
    import yaml
    for path in sorted((ROOT / "rules").rglob("*.yaml")):       # rules/national/ too
        pack = yaml.safe_load(path.read_text(encoding="utf-8"))
        if path.name.endswith(".test.yaml") or "rules" not in pack:
            continue
        limits = {lang: {T.limit_text(T.parse_duration(p["value"]), T.DURATION, lang)
                         for p in pack.get("parameters", {}).values() if p["type"] == "duration"}
                  for lang in ("zh", "en")}
        for rule in pack["rules"]:
            for lang, text in [("zh", rule.get("title") or ""), *rule["message"].items()]:
                written = [limit for limit in limits[lang] if limit in text]
                assert not written, (path.name, rule["id"], lang, written)
