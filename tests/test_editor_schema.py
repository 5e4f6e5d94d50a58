"""docs/editor.md as a newcomer follows it: the schema `slarules schema pack` writes accepts every shipped
pack with the modeline on top, slarules reads such a pack as before, and a misspelt key is caught."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from slarules.cli import main
from slarules.engine import file_kind
from slarules.packs.model import read_pack

from conftest import ROOT

jsonschema = pytest.importorskip("jsonschema")
DOC = (ROOT / "docs" / "editor.md").read_text(encoding="utf-8")


def _schema_as_the_doc_says(folder, capsys) -> dict:
    command = re.search(r"^\s*slarules (schema pack) > (\S+)$", DOC, re.M)
    assert main(command.group(1).split()) == 0
    target = folder / command.group(2)
    target.write_text(capsys.readouterr().out, encoding="utf-8")
    return json.loads(target.read_text(encoding="utf-8"))


def test_every_shipped_pack_with_the_modeline_validates_and_still_loads(tmp_path, capsys):
    validator = jsonschema.Draft202012Validator(_schema_as_the_doc_says(tmp_path, capsys))
    modeline = re.search(r"^\s*(# yaml-language-server: \$schema=pack\.schema\.json)$", DOC, re.M).group(1)
    packs = [f for f in sorted((ROOT / "rules").rglob("*.yaml")) if file_kind(f) == "pack"]
    assert len(packs) >= 8
    for f in packs:
        copy = tmp_path / f.name
        copy.write_text(modeline + "\n" + f.read_text(encoding="utf-8"), encoding="utf-8")
        assert [e.message for e in validator.iter_errors(yaml.safe_load(copy.read_text(encoding="utf-8")))] == [], f
        pack, issues = read_pack(copy)
        assert pack is not None and issues == [], f


def test_a_misspelt_key_is_caught_in_the_editor(tmp_path, capsys):
    validator = jsonschema.Draft202012Validator(_schema_as_the_doc_says(tmp_path, capsys))
    pack = yaml.safe_load((ROOT / "rules" / "taobao.yaml").read_text(encoding="utf-8"))
    pack["rules"][0]["scpe"] = pack["rules"][0].pop("scope")
    assert any("'scpe' was unexpected" in e.message for e in validator.iter_errors(pack))
