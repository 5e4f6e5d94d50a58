"""Chinese (zh) finding messages show words, not codes: branch names and enum values by label.

Every example case, every pack-test case (together they reach every rule and branch)
and variants for every value a message can quote are rendered in zh by both the
per-case path and the columnar path (held equal by `test_columnar.both`); no message
may contain an ASCII lowercase word other than a unit. English keeps the codes.
"""
from __future__ import annotations

import copy
import functools
import json
import re

import pytest
import yaml

from conftest import EXAMPLES, ROOT
from slarules.case import contract as C
from slarules.tools.packtest import load_test_file, merge
from slarules.packs.vocabulary import BRANCH_LABELS_ZH
from test_columnar import both, encode

CODE = re.compile(r"[a-z][a-z_]*")     # a code: snake_case, or a lowercase word such as proxy
UNITS = {"cm", "kg"}                   # the only lowercase words a Chinese message may hold
AS_OFS = (None, "2026-05-02T12:00:00+08:00", "2026-05-20T00:00:00+08:00")


def examples() -> list[dict]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.yaml"))]


def pack_test_cases() -> list[dict]:
    return copy.deepcopy(_pack_test_cases())


@functools.cache
def _pack_test_cases() -> list[dict]:
    """Read once for the six tests that render them (reading the test files with positions is most of it)."""
    out = []
    for path in sorted((ROOT / "rules").glob("*.test.yaml")) + sorted((ROOT / "rules" / "national").glob("*.test.yaml")):
        spec, _ = load_test_file(path)
        for test in spec.cases:
            if test.file is None:
                out.append(merge(copy.deepcopy(spec.base), test.case))
    return out


def variants() -> list[dict]:
    """Each value a zh message quotes: every signer but the recipient, every hub find, every issue."""
    out = []
    proxy = yaml.safe_load((EXAMPLES / "tb8-proxy-no-consent.yaml").read_text(encoding="utf-8"))
    for signer in C.SIGNED_BY:
        for notified, consented in ((False, False), (False, True), (True, False)):
            case = copy.deepcopy(proxy)
            case["delivery"].update(signed_by=signer, recipient_notified=notified, recipient_consented=consented)
            out.append(case)
    hub = yaml.safe_load((EXAMPLES / "pc1-hub-handling.yaml").read_text(encoding="utf-8"))
    for found in C.HUB_FINDS:
        case = copy.deepcopy(hub)
        case["hub_handling"] = {"station": "HUB-BT", "found": found}
        out.append(case)
        packaging = copy.deepcopy(case)
        packaging["parcel"]["packaging_compliant"] = False
        packaging["outcome"].update(damaged=True, contents_short=True, packaging_intact=False)
        out.append(packaging)
    level = yaml.safe_load((EXAMPLES / "rg5-level3.yaml").read_text(encoding="utf-8"))
    for issue in C.COMPLAINT_ISSUES:
        for major in (False, True):
            case = copy.deepcopy(level)
            case["complaint"].update(issues=[issue, "delay"], major=major, delay_minutes=5)
            out.append(case)
    return out


def messages(verdict: dict) -> list[str]:
    """The messages; a `not_covered` entry without its "CLAUSE: " (a dated pack's is the pack's name, an id)."""
    return [f["message"] for f in verdict["findings"]] + [n.split(": ", 1)[-1] for n in verdict["not_covered"]]


def codes(text: str) -> list[str]:
    return [w for w in CODE.findall(text) if w not in UNITS]


def verdicts(engine, cases: list[dict], lang: str, as_of: str | None) -> list[dict]:
    result = both(engine, [encode(c) for c in cases], lang=lang, as_of=as_of)
    assert not result.errors
    return [json.loads(text) for _, text in result.verdicts]


@pytest.mark.parametrize("as_of", AS_OFS)
@pytest.mark.parametrize("source", [examples, pack_test_cases, variants], ids=lambda f: f.__name__)
def test_chinese_messages_hold_no_code(engine, source, as_of):
    seen = 0
    for verdict in verdicts(engine, source(), "zh", as_of):
        for message in messages(verdict):
            seen += 1
            assert codes(message) == [], (verdict["waybill"], message)
    assert seen


def test_the_cases_reach_every_rule(engine):
    """So the check above reads every message template the shipped packs have."""
    fired = set()
    for as_of in AS_OFS:
        for verdict in verdicts(engine, examples() + pack_test_cases() + variants(), "zh", as_of):
            fired |= {f["rule"] for f in verdict["findings"]}
            fired |= {n.split(":")[0] for n in verdict["not_covered"]}
    rules = engine.program.rules
    assert {r.id for r in rules if r.kind != "not_covered"} <= fired
    assert {r.clause for r in rules if r.kind == "not_covered"} <= fired


def test_every_value_and_branch_a_message_can_quote_has_a_chinese_label(engine):
    for values in (C.PRODUCTS, C.SCAN_TYPES, C.SIGNED_BY, C.HUB_FINDS, C.COMPLAINT_KINDS, C.CHANNELS,
                   C.COMPLAINT_ISSUES, C.REFERENCE_SOURCES, C.ROUTES):
        assert set(values) <= set(C.VALUE_LABELS_ZH)
    assert {spec.type.values for spec in engine.program.specs.values() if spec.type.name == "enum"} <= {
        C.PRODUCTS, C.SCAN_TYPES, C.SIGNED_BY, C.HUB_FINDS, C.COMPLAINT_KINDS, C.CHANNELS, C.REFERENCE_SOURCES,
        C.ROUTES}

    def labels(node):
        yield from [node.label] if getattr(node, "label", None) else []
        for child in getattr(node, "children", ()):
            yield from labels(child)
    used = {label for r in engine.program.rules for label in labels(r.when)}
    assert used and used <= set(BRANCH_LABELS_ZH)
    assert all(not codes(text) for text in list(C.VALUE_LABELS_ZH.values()) + list(BRANCH_LABELS_ZH.values()))


def test_english_messages_keep_the_codes(engine):
    proxy = next(v for v in verdicts(engine, examples(), "en", None) if v["waybill"] == "BX7700000010")
    assert "(proxy)" in proxy["findings"][0]["message"]
    assert "(not_notified, no_consent)" in proxy["findings"][0]["message"]
    zh = next(v for v in verdicts(engine, examples(), "zh", None) if v["waybill"] == "BX7700000010")
    assert "（代签人）" in zh["findings"][0]["message"]
    assert "（未通知收件人、未经收件人同意）" in zh["findings"][0]["message"]
    assert zh["findings"][0]["facts"]["branches"] == ["not_notified", "no_consent"]
    assert zh["findings"][0]["facts"]["delivery.signed_by"] == "proxy"
