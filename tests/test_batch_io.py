"""JSON Lines chunks as byte ranges: every line once, numbered as a text editor numbers it, resumable."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slarules.batch import io as batch_io

LINES = st.lists(st.sampled_from([b"{}", b"", b"  ", b'{"a": 1}', b"x" * 9, b"y" * 30]), max_size=40)


def expected(data: bytes, max_line: int) -> list[tuple[int, object]]:
    """What a plain line-by-line reader gives: (number, line with its newline), blank lines skipped."""
    out = []
    for n, line in enumerate(data.splitlines(keepends=True), start=1):
        if len(line.rstrip(b"\n")) > max_line:
            out.append((n, "too long"))
        elif line.strip():
            out.append((n, line))
    return out


def rows_of(chunks) -> list[tuple[int, object]]:
    return [(n, "too long" if isinstance(raw, batch_io.RowTooLong) else raw)
            for chunk in chunks for n, raw in chunk.rows.read(batch_io.MAX_LINE)]


@settings(max_examples=300, deadline=None)
@given(lines=LINES, trailing_newline=st.booleans(), chunk_size=st.integers(1, 7), block=st.integers(1, 64),
       resume_after=st.integers(0, 10))
def test_chunks_cover_every_line_once_and_resume_where_they_stopped(tmp_path_factory, lines, trailing_newline,
                                                                     chunk_size, block, resume_after):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch_io, "BLOCK", block)       # chunk ends inside, at and across read blocks
        patch.setattr(batch_io, "MAX_LINE", 20)       # so b"y" * 30 is a too-long row
        check_chunks(tmp_path_factory, lines, trailing_newline, chunk_size, resume_after)


def check_chunks(tmp_path_factory, lines, trailing_newline, chunk_size, resume_after):
    data = b"\n".join(lines) + (b"\n" if trailing_newline and lines else b"")
    path = tmp_path_factory.mktemp("io") / "cases.jsonl"
    path.write_bytes(data)
    chunks = list(batch_io.read_jsonl(str(path), chunk_size))
    assert rows_of(chunks) == expected(data, 20)
    assert [c.index for c in chunks] == list(range(1, len(chunks) + 1))
    assert all(len(c.rows.read()) <= chunk_size for c in chunks)
    if chunks:
        assert chunks[-1].position["offset"] == len(data) and chunks[-1].done_fraction == 1.0
        assert chunks[-1].position["line"] == len(data.splitlines())
    if resume_after < len(chunks):            # a checkpoint after chunk k: the rest, numbered the same
        done = chunks[resume_after - 1].position if resume_after else None
        rest = list(batch_io.read_jsonl(str(path), chunk_size, done))
        assert rows_of(rest) == rows_of(chunks[resume_after:])
        assert [c.position for c in rest] == [c.position for c in chunks[resume_after:]]


# ---- verdicts as Parquet: Arrow's JSON reader against a dict per verdict -------------------------

def verdict_row(doc: dict) -> dict:
    """The reference: a verdict's JSON document as a Parquet row, the way slarules wrote it through
    Table.from_pylist until verdict_table (facts as sorted JSON text, money maps as pairs)."""
    import json

    from slarules.verdict import layout as L
    row = dict(doc)
    for f in L.VERDICT:
        if f.kind == L.MONEY_MAP:
            row[f.name] = [{"station": k, "amount": v} for k, v in doc[f.name].items()]
        elif f.kind == L.PARTS:
            objects = [g.name for g in L.layout(f.part) if g.kind == L.OBJECT]
            row[f.name] = [dict(item, **{n: json.dumps(item[n], ensure_ascii=False, sort_keys=True) for n in objects})
                           for item in doc[f.name]]
    return row


def parquet_bytes(table) -> bytes:
    import io

    import pyarrow.parquet as pq
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def reference_table(docs: list[dict]):
    import pyarrow as pa
    return pa.Table.from_pylist([verdict_row(d) for d in docs], schema=batch_io.verdict_schema())


@pytest.fixture(scope="module")
def golden_verdicts() -> list[dict]:
    import gzip
    import json
    from pathlib import Path
    docs = []
    with gzip.open(Path(__file__).parent / "golden" / "verdicts.jsonl.gz") as f:
        for line in f:
            text = json.loads(line)["verdict"]
            doc = json.loads(text) if text.startswith("{") else None
            if isinstance(doc, dict) and "findings" in doc:      # a verdict, not an error record
                docs.append(doc)
    return docs


def lines_of(docs: list[dict]) -> bytes:
    import json
    return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")


def test_verdict_table_is_the_dict_per_verdict_table_byte_for_byte(golden_verdicts):
    """Every frozen verdict (findings with facts, fines, deadlines, none of them) makes the same Parquet."""
    pytest.importorskip("pyarrow")
    assert sum(len(d["findings"]) for d in golden_verdicts) > 500          # the corpus has facts to carry
    assert sum(len(d["fines_cny"]) for d in golden_verdicts) > 5
    table = batch_io.verdict_table(lines_of(golden_verdicts))
    assert table.schema == batch_io.verdict_schema()
    assert parquet_bytes(table) == parquet_bytes(reference_table(golden_verdicts))
    assert parquet_bytes(batch_io.verdict_table(b"")) == parquet_bytes(reference_table([]))


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=8)
                           | st.floats(allow_nan=False, allow_infinity=False),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                        max_size=3), max_leaves=6)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_verdict_table_carries_any_facts_and_payers_as_the_dicts_do(golden_verdicts, data):
    """Facts in any key order and of any JSON value, payers with any text: the same Parquet either way."""
    pytest.importorskip("pyarrow")
    docs = []
    for base in data.draw(st.lists(st.sampled_from([d for d in golden_verdicts if d["findings"]]), min_size=1,
                                   max_size=4)):
        doc = dict(base, findings=[dict(f, facts=data.draw(st.dictionaries(st.text(max_size=6), JSON_VALUES,
                                                                               max_size=4)))
                                   for f in base["findings"]])
        doc["fines_cny"] = data.draw(st.dictionaries(st.text(max_size=6), st.sampled_from(["1.00", "0.50"]),
                                                     max_size=3))
        docs.append(doc)
    assert parquet_bytes(batch_io.verdict_table(lines_of(docs))) == parquet_bytes(reference_table(docs))


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=4), formats=st.lists(st.booleans(), min_size=5, max_size=5),
       group=st.sampled_from([7, 100, 1000]))
def test_merged_parquet_is_the_same_bytes_whatever_the_parts_cut_and_format(golden_verdicts, tmp_path_factory,
                                                                             cuts, formats, group):
    """Parts are Arrow IPC (a local batch's) or Parquet (Spark's, an older run's): the merged file is the
    one written from all the verdicts at once, however they were cut into parts of either kind."""
    pytest.importorskip("pyarrow")
    docs = golden_verdicts[:400]
    work = tmp_path_factory.mktemp("parts")
    bounds = [0, *sorted(cuts), len(docs)]
    parts = []
    for n, (start, end) in enumerate(itertools.pairwise(bounds)):
        arrow = formats[n]
        part = work / f"{n + 1:09d}{'.arrow' if arrow else '.parquet'}"
        (batch_io.write_verdict_part if arrow else batch_io.write_parquet_part)(part, lines_of(docs[start:end]))
        parts.append(part)
    whole = work / "whole.arrow"
    batch_io.write_verdict_part(whole, lines_of(docs))
    batch_io.merge_parquet_parts(parts, work / "cut.parquet", rows_per_group=group)
    batch_io.merge_parquet_parts([whole], work / "whole.parquet", rows_per_group=group)
    assert (work / "cut.parquet").read_bytes() == (work / "whole.parquet").read_bytes()
    import pyarrow.parquet as pq
    assert pq.read_table(work / "whole.parquet") == batch_io.verdict_table(lines_of(docs))


def test_a_part_not_written_as_verdicts_is_refused_by_name(tmp_path):
    pa = pytest.importorskip("pyarrow")
    from pyarrow import ipc
    part = tmp_path / "000000001.arrow"
    with ipc.new_file(str(part), pa.schema([("waybill", pa.int64())])) as writer:
        writer.write_table(pa.table({"waybill": [1]}))
    from slarules.errors import InputError
    with pytest.raises(InputError) as caught:
        batch_io.merge_parquet_parts([part], tmp_path / "v.parquet")
    assert caught.value.file == str(part) and not (tmp_path / "v.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [part.name]      # its temporary removed
