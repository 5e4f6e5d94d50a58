"""Time zones that mean the same on every machine, and what a local time in one of them is.

`zoneinfo.ZoneInfo(name)` reads the host's zone files first (/usr/share/zoneinfo, or
wherever PYTHONTZPATH points) and only then the `tzdata` package, and it takes any
file there as a zone: `localtime` is the host's own setting, `posixrules` and
`Factory` are not places. The same case would be judged in another zone on
another machine. Here a zone is a name from the bundled IANA list (tzdata's
`zones`) other than those, read from the bundled files only, so a verdict never
depends on the host's zone files, their version, or its TZ setting.

A local time (a timestamp without an offset) is read in its case's zone by
`localize`. A time the clocks skipped (the hour a spring change jumps over) names
no instant and is refused. A time the clocks showed twice (the hour repeated in
autumn) is its first occurrence, the one before the change (Python's fold=0, as
java.time and PostgreSQL read it). Either way the result has the fixed offset in
force at that instant, so durations between local times are real durations, not
differences of wall-clock readings across a change.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from ..echo import quote

# Names in tzdata's list (or files beside them) that are not a place's zone.
NOT_A_PLACE = frozenset({"localtime", "posixrules", "Factory"})


class BundledZone(ZoneInfo):
    """A zone read from the tzdata package; pickled by name, so another process reads its own copy
    of the bundled file (a ZoneInfo made from a file cannot be pickled at all)."""

    def __reduce__(self):
        return zone, (self.key,)


_names: frozenset[str] | None = None
_zones: dict[str, BundledZone] = {}


def names() -> frozenset[str]:
    """Every zone name a case or pack may use: the IANA names the bundled tzdata lists."""
    global _names
    if _names is None:
        from importlib import resources
        listed = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
        _names = frozenset(listed) - NOT_A_PLACE
    return _names


def is_zone(name: object) -> bool:
    return type(name) is str and (name in _zones or name in names())


def zone(name: str) -> BundledZone:
    """The bundled zone `name`; a ValueError that says what was expected when it is not one."""
    found = _zones.get(name)
    if found is None:
        if not is_zone(name):
            raise ValueError(not_a_zone(name))
        from importlib import resources
        with resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).open("rb") as f:
            found = _zones.setdefault(name, BundledZone.from_file(f, key=name))
    return found


def not_a_zone(name: str) -> str:
    """Why `name` is refused as a zone (the caller quotes it safely: the message is an error's)."""
    if name in NOT_A_PLACE:
        return (f"`{quote(name)}` names no place: it is whatever zone the machine is set to (or none), so the verdict "
                "would depend on the machine; name the zone (e.g. Asia/Shanghai)")
    return f"`{quote(name)}` is not an IANA time zone (expected e.g. Asia/Shanghai)"


# ---- local times -----------------------------------------------------------------------------------

class NoSuchTime(ValueError):
    """A local time the clocks skipped in that zone (a daylight-saving gap)."""


_OFFSETS: dict[timedelta, timezone] = {}


def localize(naive: datetime, in_zone: tzinfo) -> datetime:
    """The instant a naive local time names in `in_zone`, with that instant's fixed offset; NoSuchTime
    when the clocks skipped it; the first of the two when they showed it twice."""
    offset = in_zone.utcoffset(naive) or timedelta()          # fold=0: before any change at this time
    if offset != in_zone.utcoffset(naive.replace(fold=1)):      # at a change: a gap or a repeat
        aware = naive.replace(tzinfo=in_zone)
        if aware.astimezone(UTC).astimezone(in_zone).replace(tzinfo=None) != naive:
            later = in_zone.utcoffset(naive.replace(fold=1))
            raise NoSuchTime(f"{naive.isoformat()} does not exist in {in_zone}: the clocks skipped it "
                             f"(from UTC{_hours(offset)} to UTC{_hours(later)})")
    fixed = _OFFSETS.get(offset)
    if fixed is None:
        fixed = _OFFSETS.setdefault(offset, timezone(offset))
    return naive.replace(tzinfo=fixed)


def _hours(offset: timedelta | None) -> str:
    minutes = int((offset or timedelta()).total_seconds()) // 60
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


NO_SUCH_TIME_HINT = "write the time with its UTC offset, or the time the clocks showed"
