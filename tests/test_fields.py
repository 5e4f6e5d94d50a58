"""One case field table (slarules/case/fields.py); the four models of a case are built from it.

Pydantic (facts), msgspec (case.fast), Polars (columnar.input) and Arrow
(batch.io) must have the same blocks and fields, and a new optional field in the
table must reach all four without another edit.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import polars as pl
import pyarrow as pa
import pytest

from conftest import ROOT
from slarules import facts
from slarules.columnar import input as CI
from slarules.batch.io import case_schema
from slarules.case import fast as F
from slarules.case import fields


def _names_polars(dtype) -> dict:
    return {f.name: f.dtype for f in dtype.fields}


@pytest.mark.parametrize("block", list(fields.blocks_of()), ids=lambda b: b.name)
def test_the_four_representations_have_the_tables_fields_in_its_order(block):
    names = [f.name for f in block.fields]
    pyd = getattr(facts, block.name)
    fast = F.FastCase if block.name == "Case" else getattr(F, block.name)
    assert list(pyd.model_fields) == names
    assert list(fast.__struct_fields__) == names
    required = {f.name for f in block.fields if f.required}
    assert {n for n, f in pyd.model_fields.items() if f.is_required()} == required
    assert {f.name for f in msgspec.structs.fields(fast) if f.required} == required
    if block is fields.CASE:
        polars, arrow = CI.raw_schema(), case_schema()
        assert list(polars) == names and arrow.names == names
        return
    path = next(f for f in fields.CASE.fields if f.block is block)
    polars = CI.raw_schema()[path.name]
    arrow = case_schema().field(path.name).type
    if path.kind == "blocks":
        polars, arrow = polars.inner, arrow.value_type
    assert list(_names_polars(polars)) == names
    assert [arrow.field(i).name for i in range(arrow.num_fields)] == names


def test_column_types_follow_the_kinds():
    for path, f in fields.leaves():
        block, _, name = path.partition(".")
        polars = CI.raw_schema()[block]
        arrow = case_schema().field(block).type
        if name:
            polars, arrow = _names_polars(polars)[name], arrow.field(name).type
        want = {"bool": (pl.Boolean, pa.bool_()), "int": (pl.Int64, pa.int64()),
                "enums": (pl.List(pl.String), pa.list_(pa.string()))}.get(f.kind, (pl.String, pa.string()))
        if f.kind not in ("block", "blocks"):
            assert (polars, arrow) == want, path


def test_the_bulk_checks_cover_every_checked_field_of_the_table():
    checked = set(CI.ENUMS) | set(CI.CODES) | set(CI.DECIMALS) | CI.TIMESTAMPS | set(CI.INTS) | set(CI.LISTS)
    for path, f in fields.leaves():
        if f.kind in ("bool", "block", "blocks", "zone") or path == "as_of":
            continue
        assert path in checked, path


def test_a_wrong_kind_or_missing_detail_is_refused_where_it_is_written():
    with pytest.raises(fields.FieldTableError, match="unknown kind"):
        fields.Field("x", "money")
    with pytest.raises(fields.FieldTableError, match="needs `values`"):
        fields.Field("x", "enum")


def _run(code: str, path) -> subprocess.CompletedProcess:
    """`code` run with the package at `path` (a copy of it)."""
    env = {**os.environ, "PYTHONPATH": str(path)}
    code = f"import slarules; assert slarules.__file__.startswith({str(path)!r}), slarules.__file__\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", code], cwd=path, capture_output=True, text=True,
                          env=env)


def _with_table_edit(tmp_path, *edits: tuple[str, str]):
    """A copy of the package whose field table has `edits` (after, added) applied: nothing else changes."""
    shutil.copytree(Path(ROOT) / "slarules", tmp_path / "slarules", ignore=shutil.ignore_patterns("__pycache__"))
    # the shipped packs beside it, as a source checkout has them: where slarules is installed from a wheel
    # (CI), the copy finds its packs and catalogue nowhere else (an editable install resolved them to ROOT)
    shutil.copytree(Path(ROOT) / "rules", tmp_path / "rules")
    table = tmp_path / "slarules" / "case" / "fields.py"
    text = table.read_text()
    for after, added in edits:
        assert text.count(after) == 1, after
        text = text.replace(after, after + added)
    table.write_text(text)
    return tmp_path


NEW_FIELDS = [
    ('flag("prohibited"),', ' flag("fragile"), decimal("insured_cny", C.MONEY),'),
    ('timestamp("identity_confirmed_at", description="RG-1: caller identity confirmed"),',
     ' timestamp("escalated_at"), code("desk"),'),
    ('timestamp("at", required=True, rules=False),', ' code("courier"),'),
    ('block("complaint", COMPLAINT),', ' enum("priority", ("low", "high")),'),
]


def test_a_new_optional_field_is_one_edit_of_the_table(tmp_path):
    """Fields added to the table alone (a copy of the package) are read, and checked, by all four models."""
    copy = _with_table_edit(tmp_path, *NEW_FIELDS)
    out = _run("""    import json, time
    from slarules import facts
    from slarules.case.fast import fast_case
    from slarules.columnar import input as CI
    from slarules.batch.io import case_schema
    good = {"waybill": "W1", "priority": "high",
            "parcel": {"fragile": True, "insured_cny": "12.50"},
            "scans": [{"type": "collect", "station": "S1", "at": "2026-05-01T09:00:00+08:00", "courier": "C7"}],
            "complaint": {"kind": "complaint", "escalated_at": "2026-05-03T08:00:00+08:00", "desk": "D-1"}}
    bad = [{"waybill": "W1", "priority": "urgent"},
           {"waybill": "W1", "parcel": {"fragile": "yes"}},
           {"waybill": "W1", "parcel": {"insured_cny": "-1"}},
           {"waybill": "W1", "complaint": {"escalated_at": "soon"}},
           {"waybill": "W1", "complaint": {"desk": "no spaces"}},
           {"waybill": "W1", "scans": [{"type": "collect", "station": "S1", "at": "2026-05-01T09:00:00+08:00",
                                        "courier": "?"}]}]
    slow = facts.Case.model_validate(good)
    fast = fast_case(good)
    assert fast is not None, "msgspec refused the new fields"
    assert str(slow.parcel.insured_cny) == str(fast.parcel.insured_cny) == "12.50"
    assert slow.complaint.escalated_at == fast.complaint.escalated_at

    assert fast.priority == slow.priority == "high" and fast.scans[0].courier == slow.scans[0].courier == "C7"
    naive = {"waybill": "W1", "complaint": {"escalated_at": "2026-05-03T08:00:00"}}
    for model in (facts.Case.model_validate(naive), fast_case(naive)):     # the case's zone, as every timestamp
        assert model.complaint.escalated_at.utcoffset().total_seconds() == 8 * 3600
    for case in bad:
        assert fast_case(case) is None, case
        try:
            facts.Case.model_validate(case)
        except Exception:
            pass
        else:
            raise AssertionError(f"Pydantic accepted {case}")
    assert "insured_cny" in facts.case_schema()["$defs"]["Parcel"]["properties"]
    assert case_schema().field("parcel").type.get_field_index("fragile") >= 0
    assert "priority" in CI.raw_schema()
    rows = [(i + 1, json.dumps(c).encode()) for i, c in enumerate([good] + bad)]
    frame = CI.read_lines(rows)
    assert 1 in frame["__row"].to_list()       # a row msgspec's shape check refuses goes per case: not plain
    facts_ = CI.checks_and_facts(frame, None, int(time.time()) * CI.US)
    scans = CI.scan_frame(frame).group_by("__row").agg(CI.pl.col("ok").all())
    ok = {i: False for i in range(1, len(rows) + 1)}
    ok.update(zip(facts_["__row"], facts_["__ok"]))
    for row, scans_ok in zip(scans["__row"], scans["ok"]):
        ok[row] = ok[row] and scans_ok
    assert ok == {1: True, **{i: False for i in range(2, len(rows) + 1)}}, ok
    print("ok")
    """, copy)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_a_new_field_is_read_by_rules_and_drawn_by_the_witness_search_with_no_other_edit(tmp_path):
    """The rule vocabulary and the witness search are built from the table: a field added there alone is a
    fact a pack may test (typed by its kind), a rule reads it per case, and `check`'s search draws it."""
    copy = _with_table_edit(tmp_path, *NEW_FIELDS)
    out = _run("""    import random
    import yaml
    from slarules.engine import Engine
    from slarules.packs.vocabulary import BASE_FACTS
    from slarules.tools.witness import CaseSpace
    types = {p: (s.type.name, s.type.values) for p, s in BASE_FACTS.items()}
    assert types["parcel.fragile"] == ("bool", ()) and types["parcel.insured_cny"] == ("money", ())
    assert types["complaint.escalated_at"] == ("instant", ()) and types["complaint.desk"] == ("text", ())
    assert types["priority"] == ("enum", ("low", "high")) and "scans.courier" not in types
    pack = {"pack": "new", "version": "1", "rules": [
        {"id": "new.fragile", "clause": "TB-3", "when": [{"fact": "parcel.fragile", "is": True},
                                                        {"fact": "priority", "in": ["high"]},
                                                        {"fact": "parcel.insured_cny", "ge": 10}],
         "then": {"kind": "breach", "party": "none"}, "message": {"zh": "x", "en": "x"}}]}
    open("new.yaml", "w").write(yaml.safe_dump(pack))
    engine = Engine.load(["new.yaml"])
    case = {"waybill": "W1", "priority": "high", "parcel": {"fragile": True, "insured_cny": "12.50"}}
    assert [f.rule for f in engine.adjudicate(case).findings] == ["new.fragile"]
    assert engine.adjudicate({**case, "priority": "low"}).findings == []
    from hypothesis import find, settings
    space = CaseSpace(engine.program).strategy()
    # a search for each new field's draw, not a sample: a sample of a few hundred may miss one value by chance
    quiet = settings(database=None, max_examples=2000, derandomize=True)
    find(space, lambda c: "fragile" in c.get("parcel", {}), settings=quiet)
    find(space, lambda c: "insured_cny" in c.get("parcel", {}), settings=quiet)
    find(space, lambda c: "escalated_at" in c.get("complaint", {}), settings=quiet)
    for value in ("low", "high"):
        find(space, lambda c: c.get("priority") == value, settings=quiet)
    print("ok")
    """, copy)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_a_decimal_rules_read_names_its_fact_type():
    with pytest.raises(fields.FieldTableError, match="MONEY, LENGTH or WEIGHT"):
        fields.decimal("handling", fields.C.MINUTES)
    assert fields.decimal("handling", fields.C.MINUTES, rules=False).fact is None


def test_a_field_a_backend_cannot_read_fails_at_import_with_the_field_named(tmp_path):
    copy = _with_table_edit(tmp_path, ('block("complaint", COMPLAINT),', ' zone("home_zone"),'))
    out = _run("import slarules.case.fast", copy)
    assert out.returncode != 0
    assert "FieldTableError" in out.stderr and "case field table" in out.stderr and "home_zone" in out.stderr
