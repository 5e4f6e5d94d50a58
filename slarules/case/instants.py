"""An instant as a case writes it: the one reading, and the fast gates that take a part of it.

The reading (`read_timestamp`, then `read_instant` for a case's zone):

- grammar: text of at most contract.TEXT_MAX_LENGTH characters, surrounding spaces
  ignored, ISO 8601 as `datetime.fromisoformat` reads it;
- window: a year, as written (before any zone), from TIMESTAMP_MIN_YEAR to
  TIMESTAMP_MAX_YEAR: a placeholder (0001-01-01, 9999-12-31) is not an instant;
- zones: a text with an offset keeps it; a text without one is a local time in the
  case's zone (zones.localize: a time the clocks skipped is refused, one they showed
  twice is the first).

Pydantic's model (facts.py), the engine's `as_of` and the service read so. The fast
ways in keep gates of their own, each proven (tests/test_instants.py, a Hypothesis
property over generated texts and near-misses) to accept only texts the reading
accepts and to give the same instant; what a gate refuses goes to the reading, so
the results are the same either way:

- case/fast.py `_instant` (the msgspec way in): the usual text read inline;
- `fast_instant_us` (a columnar batch's run instants, as_of and now);
- FAST_FORM within FAST_EARLIEST_US..FAST_LATEST_US (a columnar batch's case timestamps,
  in Polars: columnar/input.timestamp_ok): whole seconds with an offset or Z.
"""
from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from ..echo import quote
from .contract import TEXT_MAX_LENGTH
from .zones import localize

# An instant outside these years is a placeholder (0001-01-01, 9999-12-31), not a scan: refused,
# so no derivation (a day later, another zone) can step outside what datetime represents.
TIMESTAMP_MIN_YEAR = 2000
TIMESTAMP_MAX_YEAR = 2199
YEARS_MESSAGE = (f"is outside {TIMESTAMP_MIN_YEAR}-{TIMESTAMP_MAX_YEAR}; a placeholder date is not an instant: "
                 "leave the field out when it is unknown")

US = 1_000_000
# The columnar gates' window, narrower than the reading's: the columnar backend checked its zones'
# fixed offsets over 1999-2101 only (columnar.fixed_offset), and a derivation may add time to an instant.
FAST_EARLIEST_US = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) * US
FAST_LATEST_US = int(datetime(2090, 1, 1, tzinfo=UTC).timestamp()) * US
# The form the Polars gate takes: whole seconds, an offset or Z, nothing around it ([0-9]: Polars' \d is Unicode).
FAST_FORM = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
             r"([+-]([01][0-9]|2[0-3]):[0-5][0-9]|Z)$")


def year_ok(instant: datetime) -> bool:
    """Whether a datetime's year (as written, before any zone) is one a parcel can have."""
    return TIMESTAMP_MIN_YEAR <= instant.year <= TIMESTAMP_MAX_YEAR


def read_timestamp(text: str) -> datetime:
    """A timestamp as a case writes it (the grammar and window above; naive: the caller gives it the
    case's zone, or calls read_instant). A ValueError says what was expected."""
    if len(text) > TEXT_MAX_LENGTH:
        raise ValueError(f"a timestamp has at most {TEXT_MAX_LENGTH} characters")
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"`{quote(text)}` is not a valid ISO 8601 timestamp "
                         "(expected e.g. 2026-05-02T11:40:00+08:00)") from None
    if not year_ok(parsed):
        raise ValueError(f"the year {parsed.year} {YEARS_MESSAGE}")
    return parsed


def read_instant(text: str, zone: tzinfo) -> datetime:
    """The instant a case's timestamp names: read_timestamp, a naive one in the case's `zone`
    (zones.NoSuchTime, a ValueError, for a time the clocks skipped)."""
    parsed = read_timestamp(text)
    return parsed if parsed.tzinfo is not None else localize(parsed, zone)


def instant_us(dt: datetime) -> int:
    """An aware instant as whole µs since the epoch (types.INSTANT's encoding)."""
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


def fast_instant_us(value: Any) -> int | None:
    """A gate for a columnar run's as_of and now: µs of a text the reading takes, with an offset, whole
    seconds, within the fast window; else None (the per-case path reads it)."""
    if type(value) is not str or len(value) > TEXT_MAX_LENGTH:
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if dt.tzinfo is None or dt.microsecond or not year_ok(dt):
        return None
    us = instant_us(dt)
    return us if FAST_EARLIEST_US <= us < FAST_LATEST_US else None
