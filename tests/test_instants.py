"""Every fast gate for an instant takes only what the one reading (case/instants.py) takes, and gives
the same instant for it.

The reading is `instants.read_instant`. The gates are fast.py's `_instant` (the msgspec way in),
`instants.fast_instant_us` (a columnar run's as_of and now) and the Polars gate of the columnar batch
(`columnar_input.timestamp_ok` over `instant_us`). Texts are generated around the grammar's edges
(years at the window, impossible dates and times, fractions, offsets of every shape, spaces, length),
so near-misses are tried as often as good texts. What a gate refuses goes to the reading, so a gate
that is a subset gives the same results.
"""
from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from slarules.columnar import input as columnar_input
from slarules.case import fast, instants, zones
from slarules.case.contract import TEXT_MAX_LENGTH

ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe"]
EDGE_TEXTS = [
    "2026-03-08T02:30:00", "2026-11-01T01:30:00", "2026-03-29T01:30:00",       # a gap and a repeat (DST)
    "2026-05-02T12:00:00.5+08:00", "2000-01-01T00:00:00+00:00", "2000-01-01T00:30:00+01:00",
    "2089-12-31T23:59:59Z", "2090-01-01T00:00:00Z", "1999-12-31T23:59:59-01:00", "2199-12-31T23:59:59",
    "2200-01-01T00:00:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59+00:00", "2026-02-29T10:00:00Z",
    " " * (TEXT_MAX_LENGTH - 20) + "2026-05-02T11:40:00+08:00",                 # fine for fromisoformat, too long
    "2026-05-02T11:40:00+08:00" + " " * (TEXT_MAX_LENGTH - 24),
    "２０２６-05-02T11:40:00+08:00", "2026-05-02T11:40:00+08:00\n", "2026-05-02T24:00:00Z",
]


@st.composite
def timestamp_texts(draw) -> str:
    """A timestamp as a case might write it, or nearly: each part drawn at and around its limits."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(EDGE_TEXTS) | st.text(max_size=40))
    year = draw(st.sampled_from([1, 1999, 2000, 2001, 2026, 2089, 2090, 2091, 2199, 2200, 9999]) | st.integers(1, 9999))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    hour, minute, second = draw(st.integers(0, 25)), draw(st.integers(0, 60)), draw(st.integers(0, 60))
    date = draw(st.sampled_from([f"{year:04d}-{month:02d}-{day:02d}", f"{year:04d}{month:02d}{day:02d}",
                                 f"{year}-{month}-{day}"]))
    clock = draw(st.sampled_from([f"{hour:02d}:{minute:02d}:{second:02d}", f"{hour:02d}:{minute:02d}",
                                  f"{hour:02d}{minute:02d}{second:02d}", f"{hour:02d}"]))
    fraction = draw(st.sampled_from(["", "", ".0", ".5", ".000001", ".123456789", ",5"]))
    offset = draw(st.sampled_from(["", "Z", "z", "+08:00", "-05:30", "+00:00", "-00:00", "+0800", "+23:59",
                                   "+24:00", "+08", "+08:00:30", "+08:00:00.5", "UTC", "+5:30"]))
    sep = draw(st.sampled_from(["T", "T", " ", "t", "_"]))
    pad = st.sampled_from(["", "", " ", "\t", " " * 20, " " * 45])
    return draw(pad) + date + sep + clock + fraction + offset + draw(pad)


def reading(text: str, zone) -> datetime | None:
    try:
        return instants.read_instant(text, zone)
    except ValueError:          # zones.NoSuchTime included
        return None


@settings(max_examples=400, deadline=None)
@given(timestamp_texts(), st.sampled_from(ZONES))
def test_the_msgspec_gate_takes_a_part_of_the_reading(text, zone_name):
    zone = zones.zone(zone_name)
    try:
        got = fast._instant(text, zone)
    except fast._Unsure:
        return                  # refused: Pydantic's model reads it (the reading)
    want = reading(text, zone)
    assert want is not None, text
    assert got == want and got.utcoffset() == want.utcoffset(), text


@settings(max_examples=400, deadline=None)
@given(timestamp_texts())
def test_the_run_instant_gate_takes_a_part_of_the_reading(text):
    got = instants.fast_instant_us(text)
    if got is None:
        return                  # refused: the run's rows take the per-case path
    want = reading(text, zones.zone("Asia/Shanghai"))
    assert want is not None and want.tzinfo is not None, text
    assert got == instants.instant_us(want), text


@settings(max_examples=60, deadline=None)
@given(st.lists(timestamp_texts(), min_size=1, max_size=40))
def test_the_polars_gate_takes_a_part_of_the_reading(texts):
    col = pl.col("t")
    value = columnar_input.instant_us(col)
    frame = pl.DataFrame({"t": texts}, schema={"t": pl.String}).select(
        columnar_input.timestamp_ok(col, value).fill_null(False).alias("ok"), value.alias("us"))
    for text, ok, us in zip(texts, frame["ok"], frame["us"]):
        if ok:
            want = reading(text, UTC)
            assert want is not None and want.tzinfo is not None, text
            assert us == instants.instant_us(want), text


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_the_edges_each_gate_refuses_are_the_readings_to_make(text):
    """Each fixed edge: where a gate takes it, the reading takes it too (the property, without luck)."""
    got = instants.fast_instant_us(text)
    if got is not None:
        want = reading(text, UTC)
        assert want is not None and got == instants.instant_us(want)


def test_a_padded_run_instant_longer_than_the_reading_allows_is_refused():
    """The old gate stripped spaces before measuring: a text the reading refuses went the columnar way."""
    text = " " * (TEXT_MAX_LENGTH - 20) + "2026-05-02T11:40:00+08:00"
    assert reading(text, UTC) is None and instants.fast_instant_us(text) is None
