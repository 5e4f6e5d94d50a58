"""Pack layers: a regional variant `extends` a base pack, changes numbers and adds rules.

The layer is applied in its base's place before compiling (packs/layers.py): the
base's rules run once, with the layer's values, and the layer's rules after them.
A wrong layer is a located PackError in the file that wrote it.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import ROOT, case, complaint, scans
from strategies import cases, dated_cases
from test_columnar import both, encode
from slarules import Engine, PackError
from slarules.cli import main
from slarules.tools.check import CheckOptions, check

WEST = ROOT / "examples" / "layers"
REMOTE = ROOT / "tests" / "packs" / "layers"


@pytest.fixture(scope="module")
def layered(layered_engine) -> Engine:
    return layered_engine


@pytest.fixture(scope="module")
def engine() -> Engine:
    """The network's packs alone (rules/): the base the layers here extend; the default set adds rules/national."""
    return Engine.load([ROOT / "rules"])


def rules_fired(engine: Engine, c: dict) -> set[str]:
    return {f.rule for f in engine.adjudicate(c).findings}


def rings(n: int) -> dict:
    return case(complaint=complaint(rings=n, connected_at="2026-05-03T08:00:20+08:00",
                                    identity_confirmed_at="2026-05-03T08:00:25+08:00"))


def test_the_layer_runs_in_place_of_its_base(engine, layered):
    assert len(layered.program.rules) == len(engine.program.rules) + 1     # the base's rules once, plus its own
    assert [p.name for p in layered.packs] == ["regulations", "regulations_west", "taobao", "taobao_remote", "uc"]
    assert layered.program.rule("cs.phone.rings").pack == "regulations"
    assert layered.program.rule("taobao-remote.station-signature").pack == "taobao_remote"


@pytest.mark.parametrize("n, base_fires, layer_fires", [(3, False, False), (4, True, False), (5, True, False),
                                                         (6, True, True)])
def test_a_changed_parameter_moves_the_threshold(engine, layered, n, base_fires, layer_fires):
    assert ("cs.phone.rings" in rules_fired(engine, rings(n))) is base_fires
    assert ("cs.phone.rings" in rules_fired(layered, rings(n))) is layer_fires


def test_the_verdict_cites_base_and_layer_and_quotes_the_layer_value(layered):
    verdict = layered.adjudicate(rings(6), lang="en")
    names = [(p.name, p.version) for p in verdict.packs]
    assert names[:2] == [("regulations", "2026.1"), ("regulations_west", "2026.1")]
    digests = {p.name: p.digest for p in verdict.packs}
    assert digests["regulations"] == Engine.load([ROOT / "rules"]).program.packs[0].digest
    assert [f.message for f in verdict.findings if f.rule == "cs.phone.rings"] == [
        "The call was answered after 6 rings; it must be answered within 5."]


def test_a_layer_deadline_and_fine_replace_the_base(engine, layered):
    # TB-1: a morning arrival is due by 17:00 in the base, 18:00 in the remote layer
    late = case(scans=scans(arrival="2026-05-02T11:40:00+08:00", signed="2026-05-02T17:30:00+08:00"))
    assert "taobao.delivery-window.late" in rules_fired(engine, late)
    assert "taobao.delivery-window.late" not in rules_fired(layered, late)
    due = {d.name: d.due for d in layered.adjudicate(late).deadlines}
    assert due["delivery"] == "2026-05-02T18:00:00+08:00"
    lost = case(collection={"sender_signed": False}, outcome={"lost": True}, complaint=complaint())
    assert engine.adjudicate(lost).fines_cny == {"S-01": "50.00"}
    assert layered.adjudicate(lost).fines_cny == {"S-01": "80.00"}
    # the ticket deadline of the west layer: 48 h instead of 24 h
    slow = case(complaint=complaint(channel="ticket", closed_at="2026-05-04T20:00:00+08:00"))
    assert "cs.ticket.close" in rules_fired(engine, slow)
    assert "cs.ticket.close" not in rules_fired(layered, slow)


def test_a_layer_rule_overrides_a_base_rule(engine, layered):
    held = case(delivery={"signed_by": "station", "recipient_notified": True, "recipient_consented": False})
    assert "taobao.proxy-signature.unauthorised" in rules_fired(engine, held)
    got = layered.adjudicate(held)
    assert [f.rule for f in got.findings if f.clause == "TB-8"] == ["taobao-remote.station-signature"]
    assert got.findings[[f.rule for f in got.findings].index("taobao-remote.station-signature")].message == (
        "偏远站点代收并已通知收件人：派件站点 D-01 须在 15:00 前完成告知记录。")
    # not notified: the layer's rule does not apply and the base's liability stands
    unnotified = case(delivery={"signed_by": "station", "recipient_notified": False, "recipient_consented": False})
    assert "taobao.proxy-signature.unauthorised" in rules_fired(layered, unnotified)


def test_a_layer_alone_needs_its_base(tmp_path, capsys):
    code = main(["adjudicate", str(ROOT / "examples" / "cases" / "rg1-online-chat.yaml"), "--packs", str(WEST)])
    err = capsys.readouterr().err
    assert code == 2 and "regulations_west.yaml:9" in err and "extends `regulations`, which is not loaded" in err
    assert "Traceback" not in err


def test_check_shows_each_changed_parameter(capsys):
    assert main(["check", str(ROOT / "rules"), str(WEST), str(REMOTE), "--no-analysis"]) == 0
    out = capsys.readouterr().out
    assert ("regulations_west.yaml:13:3: info: layer `regulations_west` over `regulations` 2026.1: "
            "`phone_max_rings` 3 → 5") in out
    assert "`ticket_close` 24h → 48h" in out and "`unsigned_sender_fine` 50.00 → 80.00" in out
    assert "adds 1 rule: taobao-remote.station-signature" in out
    assert out.rstrip().endswith("0 errors, 0 warnings")


def test_the_layered_packs_analyse_clean():
    issues = check([ROOT / "rules", WEST, REMOTE])
    assert [i for i in issues if i.severity != "info"] == []


BASE_PACK = """pack: base
version: '1'
parameters:
  limit: {type: int, value: 3}
  window: {type: duration, value: 2h}
derive:
  due: {fn: add, args: {at: {fact: complaint.received_at}, duration: {param: window}}}
rules:
  - id: base.rule
    clause: RG-1
    when: [{fact: complaint.rings, gt: {param: limit}}]
    then: {kind: breach, party: customer_service}
    message: {zh: "超过 {param:limit} 声", en: "over {param:limit}"}
"""


def write(tmp_path, name: str, text: str):
    p = tmp_path / f"{name}.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def layer(name: str, extends: str, body: str = "") -> str:
    return f"pack: {name}\nversion: '1'\nextends: {extends}\n" + body


@pytest.mark.parametrize("files, bad, line, field, words", [
    ({"a": layer("a", "bsae")}, "a", 3, "extends", "`a` extends `bsae`, which is not loaded (did you mean `base`?)"),
    ({"a": layer("a", "b"), "b": layer("b", "a")}, "a", 3, "extends", "cycle: `a` extends `b` extends `a`"),
    ({"a": layer("a", "a")}, "a", 3, "extends", "cycle: `a` extends `a`"),
    ({"a": layer("a", "base"), "b": layer("b", "base")}, "b", 3, "extends", "`base` is extended by both `a` and `b`"),
    ({"a": layer("a", "base", "parameters:\n  limt: {type: int, value: 5}\n")}, "a", 5, "parameters.limt",
     "`base` has no parameter `limt` to change (did you mean `limit`?)"),
    ({"a": layer("a", "base", "parameters:\n  limit: {type: duration, value: 5m}\n")}, "a", 5,
     "parameters.limit.type", "parameter `limit` is a int in `base`, not a duration"),
    ({"a": layer("a", "base", "parameters:\n  limit: {type: int, value: many}\n")}, "a", 5,
     "parameters.limit.value", "expected a whole number"),
    ({"a": layer("a", "base", "derive:\n  due: {fn: add, args: {at: {fact: as_of}, duration: 1h}}\n")}, "a", 5,
     "derive.due", "`due` is already derived in `base`; a layer may not redefine it"),
    ({"a": layer("a", "base", "rules:\n  - {id: base.rule, clause: RG-1, then: {kind: breach}, "
                              "message: {zh: x, en: x}}\n")}, "a", 5, "rules.0.id", "duplicate rule id `base.rule`"),
    ({"a": layer("a", "base", "rules:\n  - {id: a.rule, clause: RG-1, then: {kind: breach}, overrides: [base.rul],"
                              " message: {zh: '{param:limt}', en: x}}\n")}, "a", 5, "rules.0.overrides.0",
     "overrides unknown rule `base.rul`"),
    ({"a": "pack: a\nversion: '1'\nrules: []\n"}, "a", 3, "rules", "a pack needs at least one rule"),
    ({"a": layer("a", "base", "timezone: Asia/Urumqi\n")}, "a", 4, "timezone",
     "layer `a` is in time zone `Asia/Urumqi`, its base `base` in `Asia/Shanghai`"),
])
def test_a_bad_layer_is_a_located_pack_error(tmp_path, files, bad, line, field, words):
    paths = [write(tmp_path, "base", BASE_PACK)] + [write(tmp_path, n, t) for n, t in files.items()]
    with pytest.raises(PackError) as err:
        Engine.load(paths)
    found = [(i.file, i.line, i.field, str(i.error())) for i in (err.value.issues or [err.value])]
    assert any(f == str(tmp_path / f"{bad}.yaml") and ln == line and fld == field and words in m
               for f, ln, fld, m in found), found
    assert main(["check", *map(str, paths), "--no-analysis"]) == 1


def test_a_quote_of_an_unknown_parameter_in_a_layer_rule_is_located_in_the_layer(tmp_path):
    paths = [write(tmp_path, "base", BASE_PACK), write(tmp_path, "a", layer("a", "base", """rules:
  - id: a.rule
    clause: RG-1
    then: {kind: breach}
    message: {zh: "{param:limt}", en: x}
"""))]
    with pytest.raises(PackError) as err:
        Engine.load(paths)
    assert (err.value.file, err.value.line, err.value.field) == (str(paths[1]), 8, "rules.0.message.zh")
    assert "did you mean `limit`" in str(err.value)


def test_a_layer_over_a_layer_and_a_precedence_cycle_across_them(tmp_path):
    a = layer("a", "base", "parameters:\n  limit: {type: int, value: 5}\n")
    b = layer("b", "a", "parameters:\n  limit: {type: int, value: 7}\n  window: {type: duration, value: 3h}\n"
                        "rules:\n  - {id: b.rule, clause: RG-1, then: {kind: breach}, message: {zh: x, en: x}}\n")
    paths = [write(tmp_path, "base", BASE_PACK), write(tmp_path, "a", a), write(tmp_path, "b", b)]
    engine = Engine.load(paths)
    assert [p.name for p in engine.packs] == ["base", "a", "b"]
    assert engine.program.rule("base.rule").messages["en"] == "over 7"
    issues = check(paths, options=CheckOptions(analyse=False))
    assert [i.message for i in issues if i.severity == "info"] == [
        "layer `a` over `base` 1: `limit` 3 → 5",
        "layer `b` over `a` 1: `limit` 5 → 7", "layer `b` over `a` 1: `window` 2h → 3h",
        "layer `b` over `a` 1 adds 1 rule: b.rule"]
    cyclic = b.replace("message: {zh: x, en: x}}", "message: {zh: x, en: x}, overrides: [base.rule]}")
    paths[2].write_text(cyclic, encoding="utf-8")
    paths[0].write_text(BASE_PACK + "    overrides: [b.rule]\n", encoding="utf-8")
    with pytest.raises(PackError) as err:
        Engine.load(paths)
    assert "precedence cycle" in str(err.value) and err.value.file in (str(paths[0]), str(paths[2]))


def test_the_readme_shows_what_check_prints_for_the_example_layer(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["check", "rules/", "examples/layers/", "--no-analysis"]) == 0
    out = capsys.readouterr().out.splitlines()
    shown = [line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
             if line.startswith("examples/layers/regulations_west.yaml:")]
    assert len(shown) == 2 and shown == [line for line in out if line.startswith("examples/layers/")]


def test_layered_verdict_json_is_the_same_from_the_cli_and_the_library(layered, capsys):
    path = ROOT / "examples" / "cases" / "tb8-proxy-no-consent.yaml"
    assert main(["adjudicate", str(path), "--format", "json", "--packs", str(ROOT / "rules"), str(WEST),
                 str(REMOTE)]) == 0
    import yaml
    expected = layered.adjudicate(yaml.safe_load(path.read_text(encoding="utf-8"))).to_json()
    assert json.loads(capsys.readouterr().out) == json.loads(expected)


def test_cli_batch_with_a_layer_is_the_same_on_both_backends(tmp_path):
    source = ROOT / "examples" / "batch" / "cases.jsonl"
    packs = ["--packs", str(ROOT / "rules"), str(WEST), str(REMOTE)]
    outputs = {}
    for backend in ("polars", "durable"):
        out = tmp_path / f"{backend}.jsonl"
        assert main(["batch", str(source), "-o", str(out), "--backend", backend, "--as-of",
                     "2026-05-20T00:00:00+08:00", "--no-progress", *packs]) == 0
        outputs[backend] = out.read_bytes()
    assert outputs["polars"] == outputs["durable"]
    first = json.loads(outputs["polars"].splitlines()[0])
    assert [p["name"] for p in first["packs"]][:2] == ["regulations", "regulations_west"]


@pytest.mark.parametrize("where", [WEST, REMOTE], ids=["regulations_west", "taobao_remote"])
def test_each_layer_has_pack_tests_that_pass_at_full_coverage(where, capsys):
    assert main(["test", str(where), "--packs", str(ROOT / "rules"), str(where), "--fail-under", "100"]) == 0
    out = capsys.readouterr().out
    assert " 0 failed" in out and "total 100.0%" in out


@pytest.fixture(scope="module")
def identity_layers(tmp_path_factory) -> Engine:
    """The shipped packs, each under a layer that gives every parameter the base's own value."""
    import yaml
    where = tmp_path_factory.mktemp("identity")
    for path in sorted((ROOT / "rules").glob("*.yaml")):
        if path.name.endswith(".test.yaml") or path.name == "clauses.yaml":
            continue
        pack = yaml.safe_load(path.read_text(encoding="utf-8"))
        write(where, f"{pack['pack']}_same", yaml.safe_dump({
            "pack": f"{pack['pack']}_same", "version": "1", "extends": pack["pack"],
            "parameters": pack.get("parameters", {})}, allow_unicode=True))
    return Engine.load([ROOT / "rules", where])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.sampled_from(["zh", "en"]))
def test_a_layer_that_changes_nothing_gives_the_base_verdict(engine, identity_layers, data, lang):
    base = engine.adjudicate(data, as_of="2026-05-20T00:00:00+08:00", lang=lang).to_dict()
    same = identity_layers.adjudicate(data, as_of="2026-05-20T00:00:00+08:00", lang=lang).to_dict()
    assert [p["name"] for p in same.pop("packs")] == [
        "regulations", "regulations_same", "taobao", "taobao_same", "uc", "uc_same"]
    base.pop("packs")
    assert same == base


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.integers(0, 12), st.integers(0, 15))
def test_the_rings_rule_and_its_message_follow_the_layer(tmp_path, limit, n):
    where = tmp_path / f"limit{limit}"
    where.mkdir(exist_ok=True)
    write(where, "rings", layer("rings", "regulations",
                                f"parameters:\n  phone_max_rings: {{type: int, value: {limit}}}\n"))
    verdict = Engine.load([ROOT / "rules", where]).adjudicate(rings(n), lang="en")
    messages = [f.message for f in verdict.findings if f.rule == "cs.phone.rings"]
    assert messages == ([f"The call was answered after {n} rings; it must be answered within {limit}."]
                        if n > limit else [])


FEES_LAYER = """pack: fees_remote
version: '1'
extends: fees
parameters:
  overcharge_fine: {type: money, value: "70.00"}
rules:
  - id: fees-remote.small-overcharge
    clause: TB-5
    scope: [{fact: collection, exists: true}]
    when:
      - {fact: collection.charged_cny, gt: {fact: collection.quoted_cny}}
      - {fact: overcharge_cny, le: "1.00"}
    then: {kind: warning, party: sending_station}
    overrides: [fees.overcharge]
    message: {zh: "多收不超过 1 元：提醒，不罚款（原罚 {param:overcharge_fine} 元）。", en: "x"}
"""


@pytest.fixture(scope="module")
def dated_layer(tmp_path_factory):
    where = tmp_path_factory.mktemp("fees_remote")
    write(where, "fees_remote", FEES_LAYER)
    return [ROOT / "rules", ROOT / "tests" / "packs" / "dated", where]


def collected(at: str, charged: str) -> dict:
    c = case(collection={"charged_cny": charged, "quoted_cny": "12.00"})
    c["scans"][0]["at"] = at
    return c


@pytest.mark.parametrize("at, version", [("2025-08-01T10:00:00+08:00", "2025"), ("2026-03-01T10:00:00+08:00", "2026")])
def test_a_layer_over_a_dated_pack_goes_with_the_version_in_force(dated_layer, at, version):
    engine = Engine.load(dated_layer)
    verdict = engine.adjudicate(collected(at, "20.00"))
    fees = [(p.name, p.version) for p in verdict.packs if p.name.startswith("fees")]
    assert fees == [("fees", version), ("fees_remote", "1")]
    assert [(f.rule, f.fine_cny) for f in verdict.findings if f.rule.startswith("fees")] == [
        (f"fees.overcharge@{version}", "70.00")]
    small = engine.adjudicate(collected(at, "12.50"))
    assert [f.rule for f in small.findings if f.rule.startswith("fees")] == [f"fees-remote.small-overcharge@{version}"]
    assert [f.message for f in small.findings if f.rule.startswith("fees")] == ["多收不超过 1 元：提醒，不罚款（原罚 70.00 元）。"]


def test_a_layer_over_a_dated_pack_is_not_applied_when_no_version_is(dated_layer):
    verdict = Engine.load(dated_layer).adjudicate(collected("2025-03-01T10:00:00+08:00", "20.00"))
    assert not [p for p in verdict.packs if p.name.startswith("fees")]
    assert [n for n in verdict.not_covered if n.startswith("fees")] and not [
        f for f in verdict.findings if f.rule.startswith("fees")]


def test_check_shows_the_change_over_each_dated_version(dated_layer):
    infos = [i.message for i in check(dated_layer, options=CheckOptions(analyse=False)) if i.severity == "info"]
    assert [m for m in infos if "fees" in m] == [
        "layer `fees_remote` over `fees` 2025: `overcharge_fine` 50.00 → 70.00",
        "layer `fees_remote` over `fees` 2026: `overcharge_fine` 100.00 → 70.00",
        "layer `fees_remote` over `fees` 2025 adds 1 rule: fees-remote.small-overcharge",
        "layer `fees_remote` over `fees` 2026 adds 1 rule: fees-remote.small-overcharge"]


@pytest.fixture(scope="module")
def dated_layered(dated_layer) -> Engine:
    return Engine.load(dated_layer)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(dated_cases(), min_size=1, max_size=10), st.sampled_from(["zh", "en"]))
def test_backends_agree_on_a_layer_over_dated_versions(dated_layered, chunk, lang):
    both(dated_layered, [encode(c) for c in chunk], lang=lang)


def test_a_layer_may_not_be_dated(tmp_path):
    dated = FEES_LAYER.replace("extends: fees\n", "extends: fees\neffective: {from: '2026-01-01'}\n")
    paths = [ROOT / "tests" / "packs" / "dated", write(tmp_path, "fees_remote", dated)]
    with pytest.raises(PackError) as err:
        Engine.load(paths)
    assert (err.value.file, err.value.line, err.value.field) == (str(paths[1]), 4, "effective")
    assert "has dates of its own" in str(err.value)
