"""The compiled-program cache: used when nothing changed, ignored when anything did or looks unsafe."""
from __future__ import annotations

import copy
import os
import shutil

import pytest

from slarules import Engine
from slarules.packs import cache
from slarules.packs import model as pack_module

from conftest import BASE, ROOT


@pytest.fixture
def packs(tmp_path, monkeypatch):
    monkeypatch.setenv("SLARULES_CACHE_DIR", str(tmp_path / "cache"))
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    return target


def test_second_load_comes_from_the_cache_and_gives_the_same_verdict(packs, monkeypatch):
    first = Engine.load([packs]).adjudicate(copy.deepcopy(BASE)).to_json()

    def no_yaml(*_a, **_k):
        raise AssertionError("packs were parsed again")
    monkeypatch.setattr(pack_module, "load_pack", no_yaml)
    assert Engine.load([packs]).adjudicate(copy.deepcopy(BASE)).to_json() == first


def test_an_edited_pack_is_compiled_again(packs):
    case = copy.deepcopy(BASE)
    case["collection"]["charged_cny"] = "13.00"
    case["complaint"] = {"kind": "complaint", "received_at": "2026-05-03T08:00:00+08:00"}
    before = Engine.load([packs]).adjudicate(case)
    text = (packs / "taobao.yaml").read_text(encoding="utf-8")
    (packs / "taobao.yaml").write_text(text.replace('value: "100.00"', 'value: "150.00"'), encoding="utf-8")
    after = Engine.load([packs]).adjudicate(case)
    assert before.fines_cny != after.fines_cny and "150.00" in after.fines_cny["S-01"]


def test_a_cache_others_can_write_is_not_loaded(packs, tmp_path):
    Engine.load([packs])
    [entry] = (tmp_path / "cache").glob("*.pickle")
    os.chmod(entry, 0o666)
    assert cache.load(entry.stem) is None
    os.chmod(entry, 0o600)
    assert cache.load(entry.stem) is not None
    entry.write_bytes(b"not a pickle")
    assert cache.load(entry.stem) is None                     # damaged: a miss, not an error
    assert Engine.load([packs]).adjudicate(copy.deepcopy(BASE)).waybill == "T0001"


def test_no_cache_when_switched_off(packs, tmp_path, monkeypatch):
    monkeypatch.setenv("SLARULES_NO_CACHE", "1")
    Engine.load([packs])
    assert not (tmp_path / "cache").exists()


def test_old_entries_are_evicted(packs, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "KEEP", 2)
    previous = "100.00"
    for fine in ("101.00", "102.00", "103.00"):
        text = (packs / "taobao.yaml").read_text(encoding="utf-8")
        (packs / "taobao.yaml").write_text(text.replace(previous, fine, 1), encoding="utf-8")
        previous = fine
        Engine.load([packs])
    assert len(list((tmp_path / "cache").glob("*.pickle"))) == 2
