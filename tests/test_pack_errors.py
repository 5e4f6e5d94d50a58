"""A broken pack is rejected with file:line and what was expected."""
from __future__ import annotations

import pytest

from slarules import Engine, PackError
from slarules.tools.check import CheckOptions, check
from slarules.engine import default_rules_dir

HEADER = "pack: p\nversion: '1'\n"
RULE = """rules:
  - id: p.rule
    clause: {clause}
    when:
      - {cond}
    then: {then}
    message: {{zh: "{msg}", en: "x"}}
"""


def pack(tmp_path, clause="TB-1", cond="{fact: parcel.weight_kg, gt: 50}", then="{kind: breach}", msg="x",
         extra=""):
    p = tmp_path / "p.yaml"
    p.write_text(HEADER + extra + RULE.format(clause=clause, cond=cond, then=then, msg=msg), encoding="utf-8")
    return p


@pytest.mark.parametrize("kwargs, line, words", [
    (dict(cond="{fact: parcel.wieght_kg, gt: 50}"), 7, "did you mean `parcel.weight_kg`"),
    (dict(cond="{fact: signed_at, gt: 5}"), 7, "not an ISO 8601 timestamp"),
    (dict(cond="{fact: signed_at, gt: {fact: parcel.weight_kg}}"), 7, "cannot compare"),
    (dict(cond="{fact: delivery.signed_by, gt: proxy}"), 7, "needs an ordered fact"),
    (dict(cond="{fact: parcel.weight_kg, gt: {param: nope}}"), 7, "unknown parameter"),
    (dict(clause="TB-6"), 5, "not in the clause catalogue"),
    (dict(msg="{signd_at}"), 9, "unknown fact `{signd_at}`"),
    (dict(then="{kind: verdict}"), 8, "kind"),
    (dict(cond="{fact: parcel.weight_kg, gt: 50, lt: 60}"), 7, "exactly one operator"),
])
def test_broken_pack_is_located(tmp_path, kwargs, line, words):
    with pytest.raises(PackError) as err:
        Engine.load([pack(tmp_path, **kwargs)])
    e = err.value
    assert e.file.endswith("p.yaml") and e.line == line, str(e)
    assert words in str(e)


def test_precedence_cycle_and_unknown_override(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(HEADER + """rules:
  - {id: a.one, clause: TB-1, then: {kind: breach}, message: {zh: x, en: x}, overrides: [a.two]}
  - {id: a.two, clause: TB-1, then: {kind: breach}, message: {zh: x, en: x}, overrides: [a.one]}
  - {id: a.three, clause: TB-1, then: {kind: breach}, message: {zh: x, en: x}, overrides: [a.four]}
""", encoding="utf-8")
    with pytest.raises(PackError) as err:
        Engine.load([p])
    messages = " ".join(i.message for i in err.value.issues)
    assert "precedence cycle" in messages and "unknown rule `a.four`" in messages


def test_duplicate_rule_ids_across_packs(tmp_path):
    a = pack(tmp_path)
    b = tmp_path / "q.yaml"
    b.write_text(a.read_text().replace("pack: p", "pack: q"), encoding="utf-8")
    with pytest.raises(PackError, match="duplicate rule id"):
        Engine.load([a, b])


def test_nothing_in_a_pack_is_executed(tmp_path):
    p = pack(tmp_path, extra="description: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(PackError) as err:
        Engine.load([p])
    assert err.value.line == 3


def test_shipped_packs_are_found_and_complete():
    d = default_rules_dir()
    assert {p.name for p in d.glob("*.yaml")} >= {"clauses.yaml", "taobao.yaml", "uc.yaml", "regulations.yaml"}


def test_derivation_cycle_is_located_in_its_own_pack(tmp_path):
    first = pack(tmp_path)
    other = tmp_path / "q.yaml"
    other.write_text("""pack: q
version: '1'
derive:
  d_one: {fn: add, args: {at: {fact: d_two}, duration: 1h}}
  d_two: {fn: add, args: {at: {fact: d_one}, duration: 1h}}
rules:
  - {id: q.rule, clause: TB-1, when: [{fact: d_one, exists: true}], then: {kind: breach},
     message: {zh: x, en: x}}
""", encoding="utf-8")
    with pytest.raises(PackError) as err:
        Engine.load([first, other])
    assert err.value.file.endswith("q.yaml") and err.value.line in (4, 5), str(err.value)
    assert "cycle: d_" in str(err.value)


def test_rules_feeding_each_other_is_a_cycle(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(HEADER + """rules:
  - {id: a.one, clause: TB-1, when: [{fact: classification.y, eq: true}],
     then: {kind: classification, classify: x}, message: {zh: x, en: x}}
  - {id: a.two, clause: TB-1, when: [{fact: classification.x, eq: true}],
     then: {kind: classification, classify: y}, message: {zh: x, en: x}}
""", encoding="utf-8")
    with pytest.raises(PackError, match="rules feed each other in a cycle: a.(one|two) -> a.(one|two) -> a"):
        Engine.load([p])


def test_a_bad_parameter_is_reported_once_not_at_each_use(tmp_path):
    p = pack(tmp_path, cond="{all: [{fact: parcel.weight_kg, gt: {param: limit}}, "
                            "{fact: parcel.weight_kg, lt: {param: limit}}]}",
             extra="parameters:\n  limit: {type: weight, value: heavy}\n")
    issues = check([p], options=CheckOptions(analyse=False))
    assert [(i.line, i.field) for i in issues] == [(4, "parameters.limit.value")], issues
    assert "unknown parameter" not in " ".join(i.message for i in issues)
    with pytest.raises(PackError) as err:
        Engine.load([p])
    assert err.value.line == 4 and "more problem" not in str(err.value), str(err.value)
