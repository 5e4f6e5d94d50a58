"""One text boundary: a string that is not Unicode text is refused where it enters, by one check.

A lone surrogate (`"\\ud800"`: valid JSON) is a located CaseError for a case,
one error record for a batch row (the run goes on), a located PackError for a
pack, a located error for a decision log; Arrow text that is not UTF-8 is one
error record per row. Each reader is driven with one, and each error is the
boundary's (its hint is text_boundary.HINT).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, case
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import hostile_text

from slarules import Engine, text_boundary
from slarules.batch import io as batch_io
from slarules.batch.runner import BatchOptions, run_batch
from slarules.case.fast import case_of, read_case
from slarules.case.sources import json_data, parse_text, read_document
from slarules.cli import main
from slarules.echo import UNSAFE
from slarules.errors import CaseError, InputError, SlaRulesError
from slarules.facts import load_case_text
from slarules.packs.model import read_pack
from slarules.tools.decisions import DecisionLog, read_log

AS_OF = "2026-05-20T00:00:00+08:00"
SURROGATE_JSON = '{"waybill": "BX\\ud800"}'          # the escape, as a file holds it


def boundary_error(exc: SlaRulesError) -> bool:
    return exc.hint == text_boundary.HINT and "lone surrogate" in exc.message


def read_json_file(tmp_path: Path, text: str):
    path = tmp_path / "c.json"
    path.write_text(text, encoding="utf-8")
    return read_document(path)


READERS = {
    "json text": lambda tmp, text: parse_text(text, "<t>", fmt="json"),
    "yaml text": lambda tmp, text: parse_text(text, "<t>", fmt="yaml"),
    "a file": read_json_file,
    "standard input": lambda tmp, text: read_case("-", stdin=io.BytesIO(text.encode())),
    "a JSON Lines row": lambda tmp, text: batch_io.decode_line(text.encode() + b"\n", "<rows>", 7),
    "a library str": lambda tmp, text: load_case_text(json.dumps(json.loads(text), ensure_ascii=False)),
    "a library dict": lambda tmp, text: case_of(json.loads(text)),
    "the engine": lambda tmp, text: Engine.default().adjudicate(json.loads(text)),
    "explain": lambda tmp, text: Engine.default().explain(json.loads(text)),
}


@pytest.mark.parametrize("reader, where", [(r, w) for r in READERS for w in ("value", "key", "nested")]
                         + [("yaml text", "yaml-8-digit")])
def test_every_reader_refuses_a_lone_surrogate_at_the_boundary_with_its_place(reader, where, tmp_path):
    text = {"value": SURROGATE_JSON, "key": '{"waybill": "BX1", "a\\udc00b": 1}',
            "nested": '{"waybill": "BX1", "scans": [{"type": "collect", "station": "S\\udfff", '
                      '"at": "2026-05-01T09:10:00+08:00"}]}',
            "yaml-8-digit": '{"waybill": "BX\\U0000d800"}'}[where]
    with pytest.raises(SlaRulesError) as err:
        READERS[reader](tmp_path, text)
    assert boundary_error(err.value), err.value
    assert err.value.field == {"value": "waybill", "key": "a\\udc00b", "nested": "scans.0.station",
                               "yaml-8-digit": "waybill"}[where]
    str(err.value).encode("utf-8")                   # safe to print
    if reader in ("json text", "yaml text", "a file"):
        assert err.value.line == 1 and err.value.column
    if reader == "a JSON Lines row":
        assert err.value.line == 7


def test_a_pair_of_escapes_is_one_character_in_json_and_yaml_has_its_own_escape():
    assert json_data('{"w": "\\ud83d\\ude00"}', "<t>") == {"w": "😀"}
    assert parse_text('w: "\\U0001F600"', "<t>").data == {"w": "😀"}
    with pytest.raises(CaseError, match="lone surrogate"):      # PyYAML does not join the halves
        parse_text('w: "\\ud83d\\ude00"', "<t>")


def test_valid_text_is_never_walked(monkeypatch):
    """On the hot path the check is a substring search: the data is walked only for a surrogate escape."""
    def walked(*args, **kwargs):
        raise AssertionError("walked valid data")
    monkeypatch.setattr(text_boundary, "lone_surrogate", walked)
    row = json.dumps(case()).encode() + b"\n"
    assert batch_io.decode_line(row, "<rows>", 1)["waybill"] == "T0001"
    assert json_data(json.dumps(case(waybill="中文\\u00e9")), "<t>")


def test_a_yaml_escape_past_the_last_character_is_located():
    with pytest.raises(InputError, match="names no Unicode character") as err:
        parse_text('waybill: BX1\nx: "\\U00110000"\n', "c.yaml")
    assert err.value.line == 2


def test_a_pack_with_a_lone_surrogate_is_a_located_pack_error(tmp_path, capsys):
    text = (ROOT / "rules" / "taobao.yaml").read_text(encoding="utf-8")
    path = tmp_path / "p.yaml"
    path.write_text(text.replace("description:", 'description: "\\udead"\nx_description:', 1), encoding="utf-8")
    pack, issues = read_pack(path)
    assert pack is None and issues[0].hint == text_boundary.HINT and issues[0].line
    assert main(["check", str(path), "--no-analysis"]) == 1
    assert "lone surrogate" in capsys.readouterr().out
    assert main(["adjudicate", str(ROOT / "examples" / "cases" / "clean.yaml"), "--packs", str(path)]) == 2
    err = capsys.readouterr().err
    assert "PackError" not in err and f"{path}:" in err and "lone surrogate" in err


def test_a_decision_log_with_a_lone_surrogate_is_located(tmp_path, capsys):
    log = tmp_path / "d.log"
    with DecisionLog(log) as writer:
        Engine.default().adjudicate(case(), log=writer)
    line = log.read_text(encoding="utf-8").rstrip("\n")
    assert '"waybill": "T0001"' in line
    log.write_text(line + "\n" + line.replace('"waybill": "T0001"', '"waybill": "T\\ud800"', 1) + "\n",
                   encoding="utf-8")
    with pytest.raises(InputError) as err:
        list(read_log(log))
    assert "lone surrogate" in err.value.message and "`waybill`" in err.value.message and err.value.line == 2
    assert main(["replay", str(log)]) == 2
    shown = capsys.readouterr().err
    assert f"{log}:2" in shown and "T\\ud800" in shown
    assert main(["replay", str(log), "--upgrade", str(tmp_path / "new.log")]) == 2
    assert "lone surrogate" in capsys.readouterr().err and not (tmp_path / "new.log").exists()


# ---- batches: one error record per row, the run goes on ---------------------------------------------

def surrogate_rows() -> list[bytes]:
    good = [json.dumps(case(waybill=f"G{i}")).encode() for i in range(3)]
    bad = [json.dumps(c).encode() for c in
           (case(waybill="BX\ud800"), case(timezone="Asia/\udc00"), case(as_of="2026-05-20T00:00:00\ud800"),
            {**case(), "k\udbff": 1})]
    return [good[0], bad[0], bad[1], good[1], bad[2], bad[3], good[2]]


@pytest.mark.parametrize("backend", ["polars", "durable"])
def test_a_batch_gives_each_surrogate_row_its_error_record_and_finishes(tmp_path, backend):
    source = tmp_path / "cases.jsonl"
    source.write_bytes(b"\n".join(surrogate_rows()) + b"\n")
    out = tmp_path / "v.jsonl"
    assert main(["batch", str(source), "-o", str(out), "--backend", backend, "--as-of", AS_OF,
                 "--no-progress"]) == 0
    records = [json.loads(line) for line in (tmp_path / "v.errors.jsonl").read_bytes().splitlines()]
    assert [r["line"] for r in records] == [2, 3, 5, 6]
    assert all(r["error"] == "CaseError" and r["hint"] == text_boundary.HINT for r in records)
    assert [json.loads(v)["waybill"] for v in out.read_bytes().splitlines()] == ["G0", "G1", "G2"]


def parquet_with_bad_utf8(path: Path, rows: list[dict], bad: set[int]) -> None:
    """Cases as Parquet with the waybill of the rows in `bad` made of bytes that are not UTF-8 (an encoded
    surrogate, as CESU-8 writes one): pyarrow writes a string column as the bytes it is given."""
    table = pa.Table.from_pylist(rows, schema=batch_io.case_schema())
    waybills = table.column("waybill").combine_chunks()
    data = bytearray(waybills.buffers()[2].to_pybytes())
    offsets = waybills.buffers()[1].to_pybytes()
    starts = [int.from_bytes(offsets[4 * i:4 * i + 4], "little") for i in range(len(rows) + 1)]
    for i in bad:
        assert starts[i + 1] - starts[i] >= 4, "a waybill of 4 characters or more"
        data[starts[i] + 1:starts[i] + 4] = b"\xed\xa0\x80"
    broken = pa.Array.from_buffers(pa.string(), len(rows), [None, waybills.buffers()[1], pa.py_buffer(bytes(data))])
    pq.write_table(table.set_column(table.schema.get_field_index("waybill"), "waybill", broken), path)


@pytest.mark.parametrize("backend", ["polars", "durable"])
def test_parquet_text_that_is_not_utf8_is_an_error_record_per_row(engine, tmp_path, backend):
    rows = [case(waybill=f"PQ{i:03d}") for i in range(6)]
    for r in rows:
        r["parcel"] = {k: str(v) if type(v) in (int, float) else v for k, v in r["parcel"].items()}
    source, clean = tmp_path / "bad.parquet", tmp_path / "clean.parquet"
    parquet_with_bad_utf8(source, rows, {1, 4})
    pq.write_table(pa.Table.from_pylist([r for i, r in enumerate(rows) if i not in (1, 4)],
                                        schema=batch_io.case_schema()), clean)
    opts = BatchOptions(as_of=AS_OF, backend=backend, progress=False, chunk_size=4)
    summary = run_batch(engine, str(source), str(tmp_path / "v.jsonl"), opts)
    assert (summary.rows, summary.verdicts, summary.errors) == (6, 4, 2)
    records = [json.loads(line) for line in (tmp_path / "v.errors.jsonl").read_bytes().splitlines()]
    assert [(r["row"], r["field"], r["error"]) for r in records] == [(2, "waybill", "CaseError"),
                                                                      (5, "waybill", "CaseError")]
    run_batch(engine, str(clean), str(tmp_path / "c.jsonl"), opts)
    assert (tmp_path / "v.jsonl").read_bytes() == (tmp_path / "c.jsonl").read_bytes()


# ---- any hostile text anywhere: a verdict or an error that is safe to show ------------------------

def _paths(node, prefix=()):
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    out = []
    for k, v in items:
        out += [prefix + (k,)] + _paths(v, prefix + (k,))
    return out


@settings(max_examples=150, deadline=None)
@given(st.data(), hostile_text, st.booleans())
def test_hostile_text_in_any_value_or_key_gives_a_safe_error(engine, data, text, as_key):
    c = case()
    path = data.draw(st.sampled_from(_paths(c)))
    parent = c
    for part in path[:-1]:
        parent = parent[part]
    if as_key and isinstance(parent, dict):
        parent[text] = parent.pop(path[-1])
    else:
        parent[path[-1]] = text
    try:
        engine.adjudicate(c).to_json().encode("utf-8")
    except SlaRulesError as exc:
        for shown in (str(exc), json.dumps(exc.to_dict(), ensure_ascii=False)):
            shown.encode("utf-8")
            assert not UNSAFE.search(shown) and len(shown) < 10_000


# Every tag PyYAML's safe loader knows, written on a value of each kind: a tag must not reach a constructor
# that yields a value JSON has not (a date, bytes, a set) or raises something other than our InputError.
_TAGS = sorted({tag.replace("tag:yaml.org,2002:", "!!") for tag in __import__("yaml").SafeLoader.yaml_constructors
                if tag} | {"!local", "!!python/name:os.system", "!!python/object/apply:os.system"})
_TEXTS = ["0x10", ".nan", "-.inf", "yes", "2026-05-01", "2026-05-01T10:00:00", "aGk=", "1_000", "060", "1:00",
          "12", "1.5", "true", "~", "x", "{a: 1}", "[1, 2]", "{a, b}", "[a: 1]", "''"]


@given(st.sampled_from(_TAGS), st.sampled_from(_TEXTS))
@settings(max_examples=300, deadline=None)
def test_a_yaml_tag_gives_a_json_value_or_a_located_input_error(tag, text):
    source = f"waybill: W1\nx: {tag} {text}\n"
    try:
        data = parse_text(source, "case.yaml").data
    except InputError as exc:
        assert exc.line == 2, (source, exc)
        return

    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(type(k) is str and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or type(value) in (str, int, float, bool)
    assert plain(data), (source, data)
    assert tag in ("!!str", "!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq"), (source, data)
