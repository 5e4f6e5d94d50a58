"""The fast case model accepts only what the Pydantic model accepts, with the same values.

`fastcase.FastCase` may leave a valid case to Pydantic (that costs time only),
but a case it accepts must be one `facts.Case` accepts, field for field; else a
verdict would depend on which model read the case.
"""
from __future__ import annotations

import copy
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from typing import Literal, get_args, get_origin

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from conftest import BASE, ROOT
from slarules import CaseError, facts
from slarules.case import fast as F
from strategies import any_instant, cases

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TRICKY = [None, "", " ", "A\n", "AB", "ab-1", "-A", "A" * 65, "ＡＢ", 0, -1, 1, 7, True, False, "true", "1", "01",
          "0", "0.00", "0.001", "1.005", "12.5", "12.50", " 12.50", "1e3", "NaN", "10000", "10000.00", "10000.01",
          10000, 100000, "100000.000", 100000.001, 8.5, 0.30000000000000004, 1e-7, float("inf"), 10**15,
          "9" * 13, "9" * 15, "2026-05-02T11:40:00", "2026-05-02 11:40:00+08:00", "2026-05-02T11:40:00Z",
          "2026-13-02T11:40:00+08:00", " 2026-05-02T11:40:00+08:00 ", "2026-05-02", "2026-05-02T11:40:00.5+08:00",
          [], {}, ["delay"], ["delay"] * 40, ["nope"], "Mars/Olympus", "UTC", "Asia/Shanghai", "../etc/passwd",
          "taobao", "proxy", "arrival", "query", "phone", "prohibited", 10_000_001, -5]


def normal(value):
    """A model's values as plain data that tells Decimal('1.50') from Decimal('1.5') and offsets apart."""
    if isinstance(value, BaseModel):
        return {k: normal(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, msgspec.Struct):
        return {k: normal(getattr(value, k)) for k in value.__struct_fields__}
    if isinstance(value, list):
        return [normal(v) for v in value]
    if isinstance(value, datetime):
        return ("instant", value.isoformat())
    if isinstance(value, Decimal):
        return ("decimal", str(value))
    return value


def pydantic_result(data):
    try:
        return facts.Case.model_validate(copy.deepcopy(data))
    except ValidationError:
        return None


def assert_same_acceptance(data):
    fast = F.fast_case(copy.deepcopy(data))
    slow = pydantic_result(data)
    if fast is not None:
        assert slow is not None, f"FastCase accepted what Pydantic rejects: {data!r}"
        assert normal(fast) == normal(slow)
    return fast, slow


@st.composite
def mutated(draw):
    """A valid case with one value replaced by a tricky one, or one unknown key added."""
    data = draw(cases())
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + (k,))
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append(path + (i,))
                walk(v, path + (i,))
    walk(data, ())
    path = draw(st.sampled_from(paths))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if draw(st.booleans()) and isinstance(parent, dict):
        parent[draw(st.sampled_from(["extra", "Waybill", "notes"]))] = draw(st.sampled_from(TRICKY))
    else:
        parent[path[-1]] = draw(st.sampled_from(TRICKY))
    return data


@PROPS
@given(cases())
def test_valid_generated_cases_take_the_fast_way_with_equal_values(data):
    fast, slow = assert_same_acceptance(data)
    assert slow is not None and fast is not None


@PROPS
@given(mutated())
def test_whatever_the_fast_model_accepts_pydantic_accepts_identically(data):
    assert_same_acceptance(data)


PLACES = [("waybill",), ("timezone",), ("as_of",), ("parcel", "weight_kg"), ("parcel", "length_cm"),
          ("collection", "charged_cny"), ("stations", "sending"), ("scans", 0, "at"), ("complaint", "issues"),
          ("complaint", "delay_minutes"), ("complaint", "rings"), ("complaint", "closed_at")]


@pytest.mark.parametrize("value", TRICKY)
@pytest.mark.parametrize("where", PLACES)
def test_each_tricky_value_in_each_kind_of_field(where, value):
    assert_same_acceptance(base_with(where, value))


COMPILED_FINISH = F._compiled_finish()


def finished(finish, data):
    """What `finish` makes of a case msgspec decoded: its values, or why not."""
    try:
        case = msgspec.convert(copy.deepcopy(data), F.FastCase)
    except msgspec.ValidationError:
        return "not decoded"
    try:
        finish(case)
    except F._Unsure:
        return "left to Pydantic"
    return normal(case)


@PROPS
@given(mutated())
def test_the_generated_finish_does_what_the_loop_does(data):
    """The first WARM_UP cases are finished by the loop over the tables, the rest by the generated code."""
    assert finished(F._finish_loop, data) == finished(COMPILED_FINISH, data)


@pytest.mark.parametrize("value", TRICKY)
@pytest.mark.parametrize("where", PLACES)
def test_the_generated_finish_does_what_the_loop_does_with_each_tricky_value(where, value):
    data = base_with(where, value)
    assert finished(F._finish_loop, data) == finished(COMPILED_FINISH, data)


def base_with(where: tuple, value) -> dict:
    """The base case, with a complaint, and `value` at the path `where`."""
    data = copy.deepcopy(BASE)
    data["complaint"] = {"kind": "complaint", "received_at": "2026-05-03T08:00:00+08:00"}
    node = data
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    return data


def test_a_rejected_case_gets_pydantics_located_error():
    with pytest.raises(CaseError) as err:
        F.case_of({**BASE, "parcel": {"weight_kg": "-1"}})
    assert err.value.field == "parcel.weight_kg"


def _fields(model) -> dict:
    return {name: f.annotation for name, f in model.model_fields.items()}


def _literals(annotation) -> set:
    out = set()
    if get_origin(annotation) is Literal:
        out.update(get_args(annotation))
    for arg in get_args(annotation):
        out |= _literals(arg)
    return out


@pytest.mark.parametrize("name", ["Case", "Stations", "Parcel", "Collection", "Scan", "Delivery", "Outcome",
                                  "HubHandling", "Complaint"])
def test_the_two_models_have_the_same_fields_and_allowed_values(name):
    slow = getattr(facts, name)
    fast = F.FastCase if name == "Case" else getattr(F, name)
    assert list(_fields(slow)) == list(fast.__struct_fields__)
    hints = {f.name: f.type for f in msgspec.structs.fields(fast)}
    for field, annotation in _fields(slow).items():
        assert _literals(annotation) == _literals(hints[field]), field


def test_adjudicating_a_valid_case_from_the_cli_never_imports_pydantic():
    """Cold start: with the packs compiled once (the cache), a plainly valid case needs no Pydantic."""
    code = ("import sys; from slarules.cli import main; main(['adjudicate', 'examples/cases/tb1-late.yaml']); "
            "sys.stderr.write(' '.join(m for m in sys.modules if m.split('.')[0] == 'pydantic'))")
    for _ in range(2):       # the first run may compile the packs (and import Pydantic to read them)
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stderr == ""


@PROPS
@given(when=any_instant, where=st.sampled_from([("as_of",), ("scans", 0, "at"), ("complaint", "closed_at")]))
def test_both_models_agree_on_any_instant_in_the_datetime_range(when, where):
    """The year bounds live in contract.year_ok; the two models must not drift on them, naive or aware."""
    fast, slow = assert_same_acceptance(base_with(where, when.isoformat()))
    assert (slow is not None) == (2000 <= when.year <= 2199)
