"""Fact types: how a literal is parsed, encoded for matching, and shown to a person.

durable_rules has no datetimes or decimals and compares doubles exactly, so every
value crosses into the engine as an integer in a fixed unit (microseconds, fen,
1/100 cm, grams, day numbers). Boundaries are therefore exact: 63x63x63 cm is
250,047 cm3 > 250,000 cm3, and 50.01 kg > 50 kg, with no float in between.
"""
from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from .. import money
from ..case.contract import VALUE_LABELS_ZH
from ..echo import quote

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|d)\s*$")
_DURATION_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def _decimal(value: Any, places: int, bound: money.Bound | None = None) -> Decimal:
    """A decimal literal of a pack: finite, within `bound` (money) or DECIMAL_BOUND, at most `places` places."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError("expected a number")     # noqa: TRY004  # callers report ValueErrors as a bad value
    try:
        d = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"`{quote(value)}` is not a number") from None
    if not d.is_finite():
        raise ValueError("expected a finite number")
    if bound is not None:
        if not bound.holds(d):
            raise ValueError(bound.refusal(f"`{quote(value)}`"))
    elif d.copy_abs() >= DECIMAL_BOUND:     # the backends hold amounts as 64-bit integers of their smallest unit
        raise ValueError(f"`{quote(value)}` is too large: at most 15 digits before the decimal point")
    if d != d.quantize(Decimal(1).scaleb(-places), context=_PLACES):
        raise ValueError(f"at most {places} decimal places")
    return d


def _money(value: Any) -> Decimal:
    """A pack's amount (a parameter, a literal): within money.AMOUNT, the bound of one amount."""
    return _decimal(value, money.PLACES, money.AMOUNT)


DECIMAL_BOUND = Decimal(10) ** 15
# Whether a value has more places than allowed, whatever decimal context the caller set (a
# value under DECIMAL_BOUND with up to 6 places has at most 21 digits: this never rounds them).
_PLACES = decimal.Context(prec=40)
DURATION_MAX_SECONDS = 100 * 366 * 86400      # a century: past it a deadline leaves the calendar


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    m = _DURATION.match(str(value)) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"`{quote(value)}` is not a duration (expected e.g. 30s, 10m, 2h, 1d)")
    seconds = int(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds > DURATION_MAX_SECONDS:
        raise ValueError(f"`{quote(value)}` is longer than a century; a duration has at most 100 years")
    return timedelta(seconds=seconds)


def parse_time_of_day(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            parsed = time.fromisoformat(value.strip())
        except ValueError:
            parsed = None
        # whole seconds and no zone, as the message says: the columnar path counts whole seconds
        # in the pack's zone, and a fuzzed '12:00:00.5' made the two paths disagree
        if parsed is not None and not parsed.microsecond and parsed.tzinfo is None:
            return parsed
    raise ValueError(f"`{quote(value)}` is not a time of day (expected HH:MM or HH:MM:SS)")


def _parse_instant(value: Any) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        dt = None
    if dt is None or dt.tzinfo is None:
        raise ValueError(f"`{quote(value)}` is not an ISO 8601 timestamp with an offset")
    return dt


def _parse_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"`{quote(value)}` is not a date (expected YYYY-MM-DD)") from None


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected true or false, got {value!r}")


def _parse_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 10 ** 15:      # the backends compare 64-bit integers; the fuzzer sent 10^30
            raise ValueError(f"`{quote(value)}` is too large: at most 15 digits")
        return value
    raise ValueError(f"expected a whole number, got {value!r}")


def _parse_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, got {value!r}")


def _fmt_decimal(d: Decimal) -> str:
    """A size as a person reads it: no trailing zeros, no exponent (money: money.text)."""
    return format(d.normalize(money.EXACT), "f")


@dataclass(frozen=True)
class FactType:
    """A type of fact: the operators it allows and its three conversions."""

    name: str
    parse: Callable[[Any], Any]           # YAML literal -> Python value (raises ValueError)
    encode: Callable[[Any], Any]          # Python value -> int/str/bool the engine compares
    ordered: bool = True                  # allows lt/le/gt/ge
    unit: str = ""
    decode: Callable[[Any], Any] = lambda v: v   # engine value -> Python value (for counterfactuals)
    step: int = 1                         # the smallest change worth showing, in engine units
    values: tuple[str, ...] = ()          # an enum's allowed values

    def literal(self, value: Any) -> Any:
        return self.encode(self.parse(value))


def _encode_instant(dt: datetime) -> int:
    delta = dt - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _encode_duration(td: timedelta) -> int:
    return (td.days * 86400 + td.seconds) * 1_000_000 + td.microseconds


BOOL = FactType("bool", _parse_bool, lambda v: bool(v), ordered=False)
TEXT = FactType("text", _parse_text, lambda v: str(v), ordered=False)
INT = FactType("int", _parse_int, lambda v: int(v))
MONEY = FactType("money", _money, money.fen, unit="CNY", decode=money.from_fen)
LENGTH = FactType("length", lambda v: _decimal(v, 2), lambda d: money.to_units(d, 2), unit="cm",
                  decode=lambda n: money.from_units(n, 2))
VOLUME = FactType("volume", lambda v: _decimal(v, 6), lambda d: money.to_units(d, 6), unit="cm3",
                  decode=lambda n: money.from_units(n, 6), step=1_000_000)
WEIGHT = FactType("weight", lambda v: _decimal(v, 3), lambda d: money.to_units(d, 3), unit="kg",
                  decode=lambda n: money.from_units(n, 3))
INSTANT = FactType("instant", _parse_instant, _encode_instant,
                   decode=lambda n: EPOCH + timedelta(microseconds=n), step=1_000_000)
DATE = FactType("date", _parse_date, lambda d: d.toordinal(), decode=date.fromordinal)
DURATION = FactType("duration", parse_duration, _encode_duration,
                    decode=lambda n: timedelta(microseconds=n), step=1_000_000)
TIME_OF_DAY = FactType("time", parse_time_of_day, lambda t: t.hour * 3600 + t.minute * 60 + t.second,
                       decode=lambda n: time(n // 3600, n // 60 % 60, n % 60))
LIST = FactType("list", lambda v: v, lambda v: v, ordered=False)   # tested with `contains` only
BLOCK = FactType("block", lambda v: v, lambda v: True, ordered=False)  # tested with `exists` only


def enum_type(values: tuple[str, ...]) -> FactType:
    def parse(v: Any) -> str:
        if v not in values:
            raise ValueError(f"`{quote(v)}` is not one of {', '.join(values)}")
        return v
    return FactType("enum", parse, lambda v: str(v), ordered=False, values=tuple(values))


TYPES = {t.name: t for t in (BOOL, TEXT, INT, MONEY, LENGTH, VOLUME, WEIGHT, INSTANT, DATE, DURATION,
                             TIME_OF_DAY)}


def render(value: Any, ftype: FactType, zone: ZoneInfo, fmt: str | None = None, lang: str = "zh") -> str:
    """Show a value to a person (messages) in the case's local time."""
    if value is None:
        return "—"
    name = ftype.name
    if name == "instant":
        local = value.astimezone(zone)
        if fmt == "time":
            return local.strftime("%H:%M:%S") if local.second else local.strftime("%H:%M")
        if fmt == "date":
            return f"{local.month}月{local.day}日" if lang == "zh" else local.strftime("%-d %b %Y")
        if lang == "zh":
            return f"{local.month}月{local.day}日 " + (local.strftime("%H:%M:%S") if local.second else local.strftime("%H:%M"))
        return local.strftime("%-d %b %Y ") + (local.strftime("%H:%M:%S") if local.second else local.strftime("%H:%M"))
    if name == "date":
        return f"{value.year}年{value.month}月{value.day}日" if lang == "zh" else value.isoformat()
    if name == "money":
        return money.text(value)
    if name in ("length", "volume", "weight"):
        return _fmt_decimal(value)
    if name == "duration":
        return duration_text(value, lang)
    if name == "bool":
        return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
    if name == "list":
        return ", ".join(value)
    return str(value)


def render_message(value: Any, ftype: FactType, zone: ZoneInfo, fmt: str | None = None, lang: str = "zh") -> str:
    """`render` for a finding's message: an enum value, or a list's items, by its label in zh.

    Only messages: `explain` shows a condition's values as the pack wrote them.
    columnar.Columnar.render(..., message=True) is its vectorised twin.
    """
    if value is not None and ftype.name == "enum":
        return value_label(value, lang)
    if value is not None and ftype.name == "list":
        return list_separator(lang).join(value_label(v, lang) for v in value)
    return render(value, ftype, zone, fmt, lang)


def value_label(value: str, lang: str = "zh") -> str:
    """An enum or list value as a message shows it: its Chinese label in zh (the code when it has
    none), the code in en. columnar.Columnar.render does the same through the same table."""
    return VALUE_LABELS_ZH.get(value, value) if lang == "zh" else value


def list_separator(lang: str = "zh") -> str:
    """Between the items of a list (or branch labels) in a message: "、" in zh, ", " in en."""
    return "、" if lang == "zh" else ", "


def duration_text(value: timedelta, lang: str = "zh") -> str:
    """A duration exactly, minutes then seconds: "20 分钟", "20 分钟 5 秒", "1 秒", "0.25 秒".

    Minutes are the largest unit, so a whole-minute delay reads as it always has
    ("延误 90 分钟"), and a parcel one second late is "1 秒" late, not "1 分钟".
    columnar.Columnar.duration_text is its vectorised twin (held equal by a test).
    """
    us = _encode_duration(value)
    sign, us = ("-", -us) if us < 0 else ("", us)
    minutes, rest = divmod(us, 60_000_000)
    minute, second = ("分钟", "秒") if lang == "zh" else ("min", "s")
    parts = [f"{minutes} {minute}"] if minutes or not rest else []
    if rest:
        parts.append(f"{_fmt_decimal(money.from_units(rest, 6))} {second}")
    return sign + " ".join(parts)


def limit_text(value: Any, ftype: FactType, lang: str = "zh") -> str:
    """A pack parameter as a message quotes it: a limit, written the way a policy states it.

    A duration in its largest exact unit ("2 小时", "30 min", "10 s": a limit is a round
    number, unlike a measured delay, which `duration_text` gives exactly); a time of day as
    HH:MM; an instant in the offset the pack wrote it in; anything else as `render` shows it.
    """
    if value is not None and ftype.name == "duration":
        seconds = int(value.total_seconds())
        for size, unit_zh, unit_en in ((3600, "小时", "h"), (60, "分钟", "min")):
            if seconds and seconds % size == 0:
                return f"{seconds // size} {unit_zh if lang == 'zh' else unit_en}"
        return f"{seconds} {'秒' if lang == 'zh' else 's'}"
    if value is not None and ftype.name == "time":
        return value.strftime("%H:%M:%S" if value.second else "%H:%M")
    if value is not None and ftype.name == "instant":
        return render(value, ftype, value.tzinfo, None, lang)
    return render(value, ftype, None, None, lang)  # type: ignore[arg-type]  # no zone: not an instant


def to_json_value(value: Any, ftype: FactType, zone: ZoneInfo) -> Any:
    """A JSON-stable form of a value for a finding's `facts` (strings for exact numbers)."""
    if value is None:
        return None
    name = ftype.name
    if name == "instant":
        return value.astimezone(zone).isoformat()
    if name == "date":
        return value.isoformat()
    if name == "money":
        return money.text(value)
    if name in ("length", "volume", "weight"):
        return _fmt_decimal(value)
    if name == "duration":
        return int(value.total_seconds())
    if name == "time":
        return value.isoformat()
    if name == "list":
        return list(value)
    return value
