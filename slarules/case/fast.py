"""The case contract mirrored in msgspec: the fast way in, with Pydantic as the authority.

Validating a case with Pydantic took longer than adjudicating it, and importing
Pydantic alone is half of a CLI call's start-up. `FastCase` checks the same
contract (the values in contract.py) with msgspec, and accepts a case only when
`facts.Case` would accept it with the same values. Anything else, whether a
mistake or an input Pydantic would coerce (a number written as text, a float
for a Decimal), goes to `facts.Case`, which either accepts it or gives the
exact located error. So which model read a case never shows in a verdict or an
error record; tests/test_fastcase.py holds the two models equal.
"""
from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta, Struct, field

from . import contract as C
from .limits import DEFAULT as DEFAULT_LIMITS, Limits


def _anchored(pattern: str) -> str:
    """Pydantic's (Rust) `$` is the end of the text; Python's also matches before a final newline."""
    assert pattern.startswith("^") and pattern.endswith("$"), pattern
    return pattern[:-1] + r"\Z"


Code = Annotated[str, Meta(min_length=1, max_length=C.CODE_MAX_LENGTH, pattern=_anchored(C.STATION_PATTERN))]
# Decimals and timestamps are checked by `_finish`, which accepts only the forms whose
# Pydantic result is certain (a datetime object, say, is left to Pydantic).
Decimalish = str | int | float | None
Timestamp = str | None


class _Block(Struct, forbid_unknown_fields=True):
    pass


class Stations(_Block):
    sending: Code | None = None
    delivering: Code | None = None


class Parcel(_Block):
    length_cm: Decimalish = None
    width_cm: Decimalish = None
    height_cm: Decimalish = None
    weight_kg: Decimalish = None
    declared_value_cny: Decimalish = None
    packaging_compliant: bool | None = None
    prohibited: bool | None = None


class Collection(_Block):
    sender_signed: bool | None = None
    in_service_area: bool | None = None
    quoted_cny: Decimalish = None
    charged_cny: Decimalish = None


class Scan(_Block):
    type: Literal[C.SCAN_TYPES]
    station: Code
    at: str


class Delivery(_Block):
    signed_by: Literal[C.SIGNED_BY] | None = None
    recipient_notified: bool | None = None
    recipient_consented: bool | None = None
    proxy_id_checked: bool | None = None
    signature_legible: bool | None = None


class Outcome(_Block):
    lost: bool | None = None
    damaged: bool | None = None
    contents_short: bool | None = None
    packaging_intact: bool | None = None
    recipient_denies_receipt: bool | None = None


class HubHandling(_Block):
    station: Code | None = None
    found: Literal[C.HUB_FINDS] | None = None
    reported: bool | None = None
    isolated: bool | None = None
    photographed: bool | None = None
    registered: bool | None = None
    repacked: bool | None = None


class Complaint(_Block):
    kind: Literal[C.COMPLAINT_KINDS] | None = None
    channel: Literal[C.CHANNELS] | None = None
    received_at: Timestamp = None
    major: bool | None = None
    issues: Annotated[list[Literal[C.COMPLAINT_ISSUES]], Meta(max_length=C.MAX_ISSUES)] = field(default_factory=list)
    delay_minutes: Annotated[int, Meta(ge=0, le=C.DELAY_MINUTES_MAX)] | None = None
    first_contact_at: Timestamp = None
    plan_at: Timestamp = None
    closed_at: Timestamp = None
    complex: bool | None = None
    feedback_at: Timestamp = None
    rings: Annotated[int, Meta(ge=0, le=C.RINGS_MAX)] | None = None
    connected_at: Timestamp = None
    identity_confirmed_at: Timestamp = None


class FastCase(_Block):
    """A validated case with the fields, values and `zone` of `facts.Case`."""

    waybill: Annotated[str, Meta(min_length=1, max_length=C.CODE_MAX_LENGTH, pattern=_anchored(C.WAYBILL_PATTERN))]
    product: Literal[C.PRODUCTS] | None = None
    timezone: str | None = None
    as_of: Timestamp = None
    stations: Stations | None = None
    parcel: Parcel | None = None
    collection: Collection | None = None
    scans: Annotated[list[Scan], Meta(max_length=C.MAX_SCANS)] = field(default_factory=list)
    delivery: Delivery | None = None
    outcome: Outcome | None = None
    hub_handling: HubHandling | None = None
    complaint: Complaint | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or C.DEFAULT_TIMEZONE)


class _Unsure(Exception):
    """A value whose Pydantic result this module does not vouch for."""


_DECIMAL_TEXT = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?\Z")
_zones: dict[str, bool] = {}


def _zone_ok(name: str) -> bool:
    ok = _zones.get(name)
    if ok is None:
        try:
            ZoneInfo(name)
            ok = True
        except (ZoneInfoNotFoundError, ValueError, OSError):    # "Asia" is a directory of zones
            ok = False
        if len(_zones) < 1000:
            _zones[name] = ok
    return ok


class _DecimalField:
    """One decimal field's limits, checked on the written form so the result is Pydantic's.

    Bounds are whole numbers in the contract, so the integer part and whether
    any digit is non-zero decide them without Decimal arithmetic.
    """

    def __init__(self, limits: dict):
        self.places = limits["decimal_places"]
        self.max_digits = limits.get("max_digits", 30)   # past Decimal's own 28-digit context
        low = limits.get("gt", limits.get("ge", 0))
        assert low == 0, "the contract's decimals start at zero"
        self.whole_digits = self.max_digits - self.places     # Pydantic keeps room for the decimal places
        self.zero_allowed = "gt" not in limits
        self.high = limits.get("le")

    def __call__(self, value: Any) -> Decimal | None:
        if value is None:
            return None
        if type(value) is int:
            whole, fraction = value, ""
            if whole < 0 or len(str(whole)) > self.whole_digits:
                raise _Unsure
        elif type(value) is float:          # Pydantic reads a float by its repr: 8.5 -> Decimal("8.5")
            return self(repr(value))
        elif type(value) is str and (m := _DECIMAL_TEXT.match(value)):
            text, fraction = m.group(1), m.group(2) or ""
            if len(fraction) > self.places or len(text) > self.whole_digits:
                raise _Unsure
            whole = int(text)
        else:
            raise _Unsure
        nonzero_fraction = fraction.strip("0") != ""
        if not self.zero_allowed and whole == 0 and not nonzero_fraction:
            raise _Unsure
        if self.high is not None and (whole > self.high or (whole == self.high and nonzero_fraction)):
            raise _Unsure
        return Decimal(value)


_DECIMAL_FIELDS = {block: [(name, _DecimalField(limits)) for name, limits in fields.items()]
                   for block, fields in C.DECIMALS.items()}


def _instant(value: Any, zone: ZoneInfo, required: bool = False) -> datetime | None:
    if value is None and not required:
        return None
    if type(value) is str and len(value) <= C.TEXT_MAX_LENGTH:
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _Unsure from None
    elif type(value) is not datetime:
        raise _Unsure
    if not C.year_ok(value):
        raise _Unsure
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _finish(case: FastCase) -> None:
    """Check and convert what msgspec left as it came: zone, timestamps, decimals."""
    if case.timezone is not None and (len(case.timezone) > C.TEXT_MAX_LENGTH or not _zone_ok(case.timezone)):
        raise _Unsure
    zone = case.zone
    case.as_of = _instant(case.as_of, zone)
    for scan in case.scans:
        scan.at = _instant(scan.at, zone, required=True)
    for block, fields in _DECIMAL_FIELDS.items():
        obj = getattr(case, block)
        if obj is not None:
            for name, check in fields:
                setattr(obj, name, check(getattr(obj, name)))
    for block, names in C.TIMESTAMPS.items():
        obj = getattr(case, block)
        if obj is not None:
            for name in names:
                setattr(obj, name, _instant(getattr(obj, name), zone))


def fast_case(data: Any) -> FastCase | None:
    """`data` as a FastCase when it is plainly valid; None when Pydantic must decide."""
    if type(data) is not dict:
        return None
    try:
        case = msgspec.convert(data, FastCase)
        _finish(case)
    except (msgspec.ValidationError, _Unsure):
        return None
    return case


def structural(model: type = FastCase, _made: dict | None = None) -> type:
    """`model` with only the JSON shape checked: field names, JSON types, required fields.

    Patterns, allowed values and limits are what cost in msgspec; the columnar path
    checks those itself, in bulk, so it decodes with this variant (~3x faster).
    An optional field left out stays UNSET, so encoding the result again writes
    exactly the keys the input had (an explicit null or [] included).
    """
    made = {} if _made is None else _made

    def plain(tp):
        origin = get_origin(tp)
        if origin is Annotated:
            return plain(get_args(tp)[0])
        if origin is Literal:
            return type(get_args(tp)[0])
        if origin in (Union, UnionType):
            return Union[tuple(plain(a) for a in get_args(tp))]
        if origin is list:
            return list[plain(get_args(tp)[0])]
        if isinstance(tp, type) and issubclass(tp, Struct):
            return structural(tp, made)
        return tp
    if model not in made:
        fields = []
        for f in msgspec.structs.fields(model):
            if f.default is msgspec.NODEFAULT and f.default_factory is msgspec.NODEFAULT:
                fields.append((f.name, plain(f.type)))
            else:
                fields.append((f.name, Union[plain(f.type), msgspec.UnsetType], msgspec.UNSET))
        made[model] = msgspec.defstruct(model.__name__, fields, forbid_unknown_fields=True)
    return made[model]


def case_of(data: Any, document=None, limits: Limits = DEFAULT_LIMITS):
    """The validated case (FastCase, or facts.Case when Pydantic had to decide); CaseError if invalid.

    `document` (a sources.Document of `data`) lets an error name the file and line;
    `limits` refuses an oversized case before either model reads it.
    """
    if isinstance(data, FastCase):
        return data
    limits.check_case(data, document.file if document is not None else None)
    fast = fast_case(data)        # more than MAX_SCANS (a raised limit) is left to Pydantic
    if fast is not None:
        return fast
    from ..facts import Case, case_from_document
    from .sources import Document
    if isinstance(data, Case):
        return data
    return case_from_document(document if document is not None else Document(data, "<case>"), limits)


def read_case(path: str, limits: Limits = DEFAULT_LIMITS, stdin=None):
    """A case file (or standard input for `-`), refused by size before it is read, then validated.

    A byte-order mark is allowed at the start of the text, as in every file slarules reads.
    """
    from ..errors import InputError
    from .limits import raise_hint
    from .sources import parse_text, read_document
    if path == "-":
        raw = stdin.read(limits.case_bytes + 1)
        limits.check_bytes(len(raw), "<stdin>")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError("standard input is not UTF-8 text", file="<stdin>") from None
        doc = parse_text(text, "<stdin>")
    else:
        doc = read_document(path, max_bytes=limits.case_bytes, hint=raise_hint("case_bytes"))
    return case_of(doc.data, doc, limits)

