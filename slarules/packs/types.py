"""Fact types: how a literal is parsed, encoded for matching, and shown to a person.

Each type is one record (`FactType`) holding every spelling of it side by side: the
per-case conversions on Python values and, for the columnar backend, the same
showing written as Polars expressions over the encoded values (`show_column`,
`json_column`, given a `Columns`). tests/test_derivations.py runs every type
through every backend at its boundaries.

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
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from .. import money
from ..case.contract import VALUE_LABELS_ZH
from ..echo import quote

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = 1_000_000                     # an instant's and a duration's unit: microseconds
DAY_US = 86_400 * US
ORDINAL_1970 = 719_163             # date(1970, 1, 1).toordinal(): a date's unit is its ordinal
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


class Columns(NamedTuple):
    """What a type's or a derivation's Polars spelling is given by the columnar backend.

    `pl` is the Polars module as runtime/_polars loads it (passed in, so nothing here
    imports Polars: the per-case path never loads it); `off` is the case zone's one
    fixed UTC offset in µs (the columnar backend takes only such zones); `decimal_text`
    is verdict/columns.py's, which writes units as the verdict's numbers.
    """

    pl: Any
    decimal_text: Callable[..., Any]
    off: int = 0
    lang: str = "zh"

    def local(self, col: Any) -> Any:
        """An instant (µs) as a naive datetime column in the zone."""
        return (col + self.off).cast(self.pl.Datetime("us"))

    def clock(self, local: Any) -> Any:
        """HH:MM, or HH:MM:SS when the second is not zero (as `_clock` below)."""
        pl = self.pl
        return pl.when(local.dt.second() != 0).then(local.dt.strftime("%H:%M:%S")).otherwise(local.dt.strftime("%H:%M"))

    def quoted(self, text: Any) -> Any:
        return self.pl.concat_str(self.pl.lit('"'), text, self.pl.lit('"'))

    def instant_text(self, col: Any) -> Any:
        """An instant as isoformat() in the zone, quoted."""
        pl = self.pl
        return pl.concat_str(pl.lit('"'), self.local(col).dt.strftime("%Y-%m-%dT%H:%M:%S"),
                             pl.lit(offset_text(self.off) + '"'))

    def instant_json(self, col: Any) -> Any:
        """instant_text, or "null" when absent."""
        return self.pl.when(col.is_not_null()).then(self.instant_text(col)).otherwise(self.pl.lit("null"))


def offset_text(offset_us: int) -> str:
    """A fixed UTC offset in µs as isoformat() writes it: +08:00."""
    sign = "-" if offset_us < 0 else "+"
    minutes = abs(offset_us) // US // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


Show = Callable[[Any, Any, "str | None", str, bool], str]     # (value, zone, fmt, lang, message) -> text


def _show_plain(value: Any, zone: Any, fmt: str | None, lang: str, message: bool) -> str:
    return str(value)


def _as_is(value: Any, zone: Any) -> Any:
    return value


@dataclass(frozen=True)
class FactType:
    """A type of fact: the operators it allows, its conversions, and how it is shown, per case
    and (`*_column`, None: not in the columnar backend) over a chunk of encoded values."""

    name: str
    parse: Callable[[Any], Any]           # YAML literal -> Python value (raises ValueError)
    encode: Callable[[Any], Any]          # Python value -> int/str/bool the engine compares
    ordered: bool = True                  # allows lt/le/gt/ge
    unit: str = ""
    decode: Callable[[Any], Any] = lambda v: v   # engine value -> Python value (for counterfactuals)
    step: int = 1                         # the smallest change worth showing, in engine units
    values: tuple[str, ...] = ()          # an enum's allowed values
    places: int | None = None             # a decimal's: the encoded unit is 10^-places
    show: Show = _show_plain              # value -> text for a person (render; message=True: render_message)
    to_json: Callable[[Any, Any], Any] = _as_is        # (value, zone) -> a finding's `facts` value
    show_column: Callable[[Columns, Any, str | None], Any] | None = None   # render_message over encoded values
    json_column: Callable[[Columns, Any], Any] | None = None              # to_json_value as JSON text

    def literal(self, value: Any) -> Any:
        return self.encode(self.parse(value))


def _encode_instant(dt: datetime) -> int:
    delta = dt - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _encode_duration(td: timedelta) -> int:
    return (td.days * 86400 + td.seconds) * 1_000_000 + td.microseconds


# ---- each type's showing, per case and over columns, side by side -------------------------

def _clock(local: datetime) -> str:
    return local.strftime("%H:%M:%S") if local.second else local.strftime("%H:%M")


def _show_instant(value: datetime, zone: Any, fmt: str | None, lang: str, message: bool) -> str:
    local = value.astimezone(zone)
    if fmt == "time":
        return _clock(local)
    if fmt == "date":
        return f"{local.month}月{local.day}日" if lang == "zh" else local.strftime("%-d %b %Y")
    if lang == "zh":
        return f"{local.month}月{local.day}日 " + _clock(local)
    return local.strftime("%-d %b %Y ") + _clock(local)


def _show_instant_column(c: Columns, col: Any, fmt: str | None) -> Any:
    pl, local = c.pl, c.local(col)
    month_day = (local.dt.month().cast(pl.String), pl.lit("月"), local.dt.day().cast(pl.String))
    if fmt == "time":
        return c.clock(local)
    if fmt == "date":
        return pl.concat_str(*month_day, pl.lit("日")) if c.lang == "zh" else local.dt.strftime("%-d %b %Y")
    if c.lang == "zh":
        return pl.concat_str(*month_day, pl.lit("日 "), c.clock(local))
    return pl.concat_str(local.dt.strftime("%-d %b %Y "), c.clock(local))


def _show_date(value: date, zone: Any, fmt: str | None, lang: str, message: bool) -> str:
    return f"{value.year}年{value.month}月{value.day}日" if lang == "zh" else value.isoformat()


def _date_column(c: Columns, col: Any) -> Any:
    return (col - ORDINAL_1970).cast(c.pl.Date)


def _show_date_column(c: Columns, col: Any, fmt: str | None) -> Any:
    pl, d = c.pl, _date_column(c, col)
    if c.lang != "zh":
        return d.dt.strftime("%Y-%m-%d")
    return pl.concat_str(d.dt.year().cast(pl.String), pl.lit("年"), d.dt.month().cast(pl.String), pl.lit("月"),
                         d.dt.day().cast(pl.String), pl.lit("日"))


def _money_text(value: Decimal, zone: Any = None, fmt: str | None = None, lang: str = "", message: bool = False) -> str:
    return money.text(value)


def _size_text(value: Decimal, zone: Any = None, fmt: str | None = None, lang: str = "", message: bool = False) -> str:
    return _fmt_decimal(value)


def _decimal_column(places: int, keep: bool) -> Callable[[Columns, Any, str | None], Any]:
    """Units as text, as the per-case money.text (keep: every place) or _fmt_decimal (no trailing zeros)."""
    def show(c: Columns, col: Any, fmt: str | None = None) -> Any:
        return c.decimal_text(col, places, keep=keep)
    return show


def _show_duration(value: timedelta, zone: Any, fmt: str | None, lang: str, message: bool) -> str:
    return duration_text(value, lang)


def _show_duration_column(c: Columns, us: Any, fmt: str | None = None) -> Any:
    """duration_text of microseconds: minutes, then seconds (with any fraction) when not zero."""
    pl = c.pl
    minute, second = (" 分钟", " 秒") if c.lang == "zh" else (" min", " s")
    magnitude = us.abs()
    minutes, rest = magnitude // (60 * US), magnitude % (60 * US)
    whole = pl.concat_str(minutes.cast(pl.String), pl.lit(minute))
    seconds = pl.concat_str(c.decimal_text(rest, 6, keep=False), pl.lit(second))
    sign = pl.when(us < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.concat_str(sign, pl.when(rest == 0).then(whole).when(minutes == 0).then(seconds)
                         .otherwise(pl.concat_str(whole, pl.lit(" "), seconds)))


def _duration_json_column(c: Columns, us: Any) -> Any:
    """int(total_seconds()): whole seconds, toward zero (Polars' // floors: -1.5 s would be -2)."""
    return c.pl.when(us < 0).then(-((-us) // US)).otherwise(us // US).cast(c.pl.String)


def _time_column(c: Columns, seconds: Any, fmt: str | None) -> Any:
    """A time of day (whole seconds since midnight) as str(time) writes it: HH:MM:SS."""
    return (seconds * 1_000_000_000).cast(c.pl.Time).dt.strftime("%H:%M:%S")


def _yes_no(lang: str) -> tuple[str, str]:
    return ("是", "否") if lang == "zh" else ("yes", "no")


def _show_bool(value: bool, zone: Any, fmt: str | None, lang: str, message: bool) -> str:
    yes, no = _yes_no(lang)
    return yes if value else no


def _show_bool_column(c: Columns, col: Any, fmt: str | None) -> Any:
    yes, no = _yes_no(c.lang)
    return c.pl.when(col).then(c.pl.lit(yes)).otherwise(c.pl.lit(no))


def _show_list(value: list, zone: Any, fmt: str | None, lang: str, message: bool) -> str:
    if message:
        return list_separator(lang).join(value_label(v, lang) for v in value)
    return ", ".join(value)


def _show_list_column(c: Columns, col: Any, fmt: str | None) -> Any:
    pl = c.pl
    items = col.list.eval(pl.element().replace(VALUE_LABELS_ZH)) if c.lang == "zh" else col
    return items.list.join(list_separator(c.lang))


def _list_json_column(c: Columns, col: Any) -> Any:
    pl = c.pl
    return pl.concat_str(pl.lit("["), col.list.eval(pl.lit('"') + pl.element() + pl.lit('"')).list.join(", "), pl.lit("]"))


def _show_enum(value: str, zone: Any, fmt: str | None, lang: str, message: bool) -> str:
    return value_label(value, lang) if message else str(value)


def _show_enum_column(c: Columns, col: Any, fmt: str | None) -> Any:
    return col.replace(VALUE_LABELS_ZH) if c.lang == "zh" else col


def _show_as_text_column(c: Columns, col: Any, fmt: str | None) -> Any:
    return col.cast(c.pl.String)


def _quoted_column(c: Columns, col: Any) -> Any:
    return c.quoted(col)


def _decimal_type(name: str, places: int, unit: str, step: int = 1) -> FactType:
    """A size: a decimal of `places` places, encoded in units of 10^-places, shown without trailing zeros."""
    show = _decimal_column(places, keep=False)
    return FactType(name, lambda v: _decimal(v, places), money.units_of(places), unit=unit,
                    decode=lambda n: money.from_units(n, places), step=step, places=places,
                    show=_size_text, to_json=lambda v, zone: _fmt_decimal(v),
                    show_column=show, json_column=lambda c, col: c.quoted(show(c, col, None)))


_money_column = _decimal_column(money.PLACES, keep=True)

BOOL = FactType("bool", _parse_bool, lambda v: bool(v), ordered=False, show=_show_bool, show_column=_show_bool_column,
                json_column=lambda c, col: c.pl.when(col).then(c.pl.lit("true")).otherwise(c.pl.lit("false")))
TEXT = FactType("text", _parse_text, lambda v: str(v), ordered=False,
                show_column=lambda c, col, fmt: col, json_column=_quoted_column)
INT = FactType("int", _parse_int, lambda v: int(v), show_column=_show_as_text_column,
               json_column=lambda c, col: col.cast(c.pl.String))
MONEY = FactType("money", _money, money.fen, unit="CNY", decode=money.from_fen, places=money.PLACES,
                 show=_money_text, to_json=lambda v, zone: money.text(v),
                 show_column=_money_column, json_column=lambda c, col: c.quoted(_money_column(c, col, None)))
LENGTH = _decimal_type("length", 2, "cm")
VOLUME = _decimal_type("volume", 6, "cm3", step=1_000_000)
WEIGHT = _decimal_type("weight", 3, "kg")
INSTANT = FactType("instant", _parse_instant, _encode_instant,
                   decode=lambda n: EPOCH + timedelta(microseconds=n), step=1_000_000,
                   show=_show_instant, to_json=lambda v, zone: v.astimezone(zone).isoformat(),
                   show_column=_show_instant_column, json_column=lambda c, col: c.instant_text(col))
DATE = FactType("date", _parse_date, lambda d: d.toordinal(), decode=date.fromordinal,
                show=_show_date, to_json=lambda v, zone: v.isoformat(), show_column=_show_date_column,
                json_column=lambda c, col: c.quoted(_date_column(c, col).dt.strftime("%Y-%m-%d")))
DURATION = FactType("duration", parse_duration, _encode_duration,
                    decode=lambda n: timedelta(microseconds=n), step=1_000_000,
                    show=_show_duration, to_json=lambda v, zone: int(v.total_seconds()),
                    show_column=_show_duration_column, json_column=_duration_json_column)
TIME_OF_DAY = FactType("time", parse_time_of_day, lambda t: t.hour * 3600 + t.minute * 60 + t.second,
                       decode=lambda n: time(n // 3600, n // 60 % 60, n % 60),
                       to_json=lambda v, zone: v.isoformat(), show_column=_time_column,
                       json_column=lambda c, col: c.quoted(_time_column(c, col, None)))
LIST = FactType("list", lambda v: v, lambda v: v, ordered=False,   # tested with `contains` only
                show=_show_list, to_json=lambda v, zone: list(v), show_column=_show_list_column,
                json_column=_list_json_column)
BLOCK = FactType("block", lambda v: v, lambda v: True, ordered=False)  # tested with `exists` only


def enum_type(values: tuple[str, ...]) -> FactType:
    def parse(v: Any) -> str:
        if v not in values:
            raise ValueError(f"`{quote(v)}` is not one of {', '.join(values)}")
        return v
    return FactType("enum", parse, lambda v: str(v), ordered=False, values=tuple(values), show=_show_enum,
                    show_column=_show_enum_column, json_column=_quoted_column)


TYPES = {t.name: t for t in (BOOL, TEXT, INT, MONEY, LENGTH, VOLUME, WEIGHT, INSTANT, DATE, DURATION,
                             TIME_OF_DAY)}


def render(value: Any, ftype: FactType, zone: ZoneInfo, fmt: str | None = None, lang: str = "zh") -> str:
    """Show a value to a person (messages) in the case's local time."""
    return "—" if value is None else ftype.show(value, zone, fmt, lang, False)


def render_message(value: Any, ftype: FactType, zone: ZoneInfo, fmt: str | None = None, lang: str = "zh") -> str:
    """`render` for a finding's message: an enum value, or a list's items, by its label in zh.

    Only messages: `explain` shows a condition's values as the pack wrote them.
    Each type's `show_column` is its spelling over columns.
    """
    return "—" if value is None else ftype.show(value, zone, fmt, lang, True)


def value_label(value: str, lang: str = "zh") -> str:
    """An enum or list value as a message shows it: its Chinese label in zh (the code when it has
    none), the code in en. An enum's show_column does the same through the same table."""
    return VALUE_LABELS_ZH.get(value, value) if lang == "zh" else value


def list_separator(lang: str = "zh") -> str:
    """Between the items of a list (or branch labels) in a message: "、" in zh, ", " in en."""
    return "、" if lang == "zh" else ", "


def duration_text(value: timedelta, lang: str = "zh") -> str:
    """A duration exactly, minutes then seconds: "20 分钟", "20 分钟 5 秒", "1 秒", "0.25 秒".

    Minutes are the largest unit, so a whole-minute delay reads as it always has
    ("延误 90 分钟"), and a parcel one second late is "1 秒" late, not "1 分钟".
    _show_duration_column is its spelling over columns (held equal by tests/test_derivations.py).
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
    return None if value is None else ftype.to_json(value, zone)
