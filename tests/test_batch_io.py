"""JSON Lines chunks as byte ranges: every line once, numbered as a text editor numbers it, resumable."""
from __future__ import annotations

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
