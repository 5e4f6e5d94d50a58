"""The case: one disputed parcel, exactly as docs/contract.md describes it.

Strict on purpose (unknown fields are errors so typos surface), exact on purpose
(money and sizes are Decimals, timestamps are aware datetimes), and tolerant of
absence (every block but `waybill` may be missing: rules that need it report it).
"""
from __future__ import annotations

import reprlib
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError

from .case import contract as C
from .case.contract import DEFAULT_TIMEZONE
from .errors import CaseError, SlaRulesError
from .case.limits import DEFAULT as DEFAULT_LIMITS, Limits
from .case.sources import Document, parse_text, read_document


def _parse_timestamp(value: Any) -> Any:
    if isinstance(value, datetime):
        return in_range(value)
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 timestamp string such as 2026-05-02T11:40:00+08:00")
    if len(value) > C.TEXT_MAX_LENGTH:
        raise ValueError(f"a timestamp has at most {C.TEXT_MAX_LENGTH} characters")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"`{value}` is not a valid ISO 8601 timestamp "
                         "(expected e.g. 2026-05-02T11:40:00+08:00)") from None
    return in_range(parsed)


def in_range(value: datetime) -> datetime:
    """The instant as given, or a ValueError when its year is a placeholder (0001, 9999), not a date."""
    if not C.year_ok(value):
        raise ValueError(f"the year {value.year} {C.YEARS_MESSAGE}")
    return value


def _check_zone(value: str) -> str:
    if len(value) > C.TEXT_MAX_LENGTH:
        raise ValueError(f"a time zone name has at most {C.TEXT_MAX_LENGTH} characters")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):    # "Asia" is a directory of zones
        raise ValueError(f"`{value}` is not an IANA time zone (expected e.g. Asia/Shanghai)") from None
    return value


Timestamp = Annotated[datetime, BeforeValidator(_parse_timestamp)]
Money = Annotated[Decimal, Field(**C.MONEY, allow_inf_nan=False)]
Length = Annotated[Decimal, Field(**C.LENGTH, allow_inf_nan=False)]
Weight = Annotated[Decimal, Field(**C.WEIGHT, allow_inf_nan=False)]
StationCode = Annotated[str, Field(min_length=1, max_length=C.CODE_MAX_LENGTH, pattern=C.STATION_PATTERN)]
Zone = Annotated[str, AfterValidator(_check_zone)]
# JSON booleans only: "no", "false" or 0 are not quietly read as false.
Flag = Annotated[bool, Strict()]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, allow_inf_nan=False,
                              validate_default=True, use_enum_values=True)


class Stations(Model):
    sending: StationCode | None = None
    delivering: StationCode | None = None


class Parcel(Model):
    length_cm: Length | None = None
    width_cm: Length | None = None
    height_cm: Length | None = None
    weight_kg: Weight | None = None
    declared_value_cny: Money | None = None
    packaging_compliant: Flag | None = None
    prohibited: Flag | None = None


class Collection(Model):
    sender_signed: Flag | None = None
    in_service_area: Flag | None = None
    quoted_cny: Money | None = None
    charged_cny: Money | None = None


ScanType = Literal[C.SCAN_TYPES]


class Scan(Model):
    type: ScanType
    station: StationCode
    at: Timestamp


class Delivery(Model):
    signed_by: Literal[C.SIGNED_BY] | None = None
    recipient_notified: Flag | None = None
    recipient_consented: Flag | None = None
    proxy_id_checked: Flag | None = None
    signature_legible: Flag | None = None


class Outcome(Model):
    lost: Flag | None = None
    damaged: Flag | None = None
    contents_short: Flag | None = None
    packaging_intact: Flag | None = None
    recipient_denies_receipt: Flag | None = None


class HubHandling(Model):
    station: StationCode | None = None
    found: Literal[C.HUB_FINDS] | None = None
    reported: Flag | None = None
    isolated: Flag | None = None
    photographed: Flag | None = None
    registered: Flag | None = None
    repacked: Flag | None = None


ComplaintIssue = Literal[C.COMPLAINT_ISSUES]


class Complaint(Model):
    kind: Literal[C.COMPLAINT_KINDS] | None = None
    channel: Literal[C.CHANNELS] | None = None
    received_at: Timestamp | None = None
    major: Flag | None = None
    issues: list[ComplaintIssue] = Field(default_factory=list, max_length=C.MAX_ISSUES)
    delay_minutes: Annotated[int, Field(ge=0, le=C.DELAY_MINUTES_MAX)] | None = None
    first_contact_at: Timestamp | None = None
    plan_at: Timestamp | None = None
    closed_at: Timestamp | None = None
    # Optional additions for RG-1's interaction-level SLAs (not in the first contract draft).
    complex: Flag | None = Field(None, description="RG-1: the question needed investigation")
    feedback_at: Timestamp | None = Field(None, description="RG-1: initial feedback on a complex question")
    rings: Annotated[int, Field(ge=0, le=C.RINGS_MAX)] | None = Field(None, description="RG-1: rings before a phone answer")
    connected_at: Timestamp | None = Field(None, description="RG-1: phone call connected")
    identity_confirmed_at: Timestamp | None = Field(None, description="RG-1: caller identity confirmed")


class Case(Model):
    """One disputed parcel. See docs/contract.md."""

    waybill: Annotated[str, Field(min_length=1, max_length=C.CODE_MAX_LENGTH, pattern=C.WAYBILL_PATTERN)]
    product: Literal[C.PRODUCTS] | None = None
    timezone: Zone | None = None
    as_of: Timestamp | None = None
    stations: Stations | None = None
    parcel: Parcel | None = None
    collection: Collection | None = None
    scans: list[Scan] = Field(default_factory=list,
                              description=f"at most limits.Limits.scans ({C.MAX_SCANS} unless raised)")
    delivery: Delivery | None = None
    outcome: Outcome | None = None
    hub_handling: HubHandling | None = None
    complaint: Complaint | None = None

    def model_post_init(self, _context: Any) -> None:
        """Give naive timestamps the case's zone, so every instant is comparable."""
        zone = ZoneInfo(self.timezone or DEFAULT_TIMEZONE)

        def aware(value: datetime | None) -> datetime | None:
            if value is None or value.tzinfo is not None:
                return value
            return value.replace(tzinfo=zone)

        self.as_of = aware(self.as_of)
        for scan in self.scans:
            scan.at = aware(scan.at)
        if self.complaint is not None:
            for name in C.TIMESTAMPS["complaint"]:
                setattr(self.complaint, name, aware(getattr(self.complaint, name)))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or DEFAULT_TIMEZONE)


def describe_error(err: dict) -> str:
    kind, msg = err.get("type", ""), err.get("msg", "")
    if kind == "extra_forbidden":
        return "unknown field (not in the case contract)"
    if kind == "missing":
        return "required field is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if "input" in err and kind not in ("model_type", "dict_type"):
        return f"{msg}; got {shown(err['input'])}"
    return msg


def shown(value: Any) -> str:
    """A value for an error message, never longer than 60 characters, whatever its size or depth."""
    brief = _BRIEF.repr(value)
    return brief if len(brief) <= 60 else brief[:57] + "..."


def _brief() -> "reprlib.Repr":
    r = reprlib.Repr()          # Python 3.11's takes no arguments
    r.maxlevel, r.maxstring, r.maxother, r.maxlist, r.maxdict = 2, 60, 60, 3, 3
    return r


_BRIEF = _brief()


def error_from_validation(exc: ValidationError, doc: Document | None, cls=CaseError,
                          root: tuple = ()) -> SlaRulesError:
    """Turn a Pydantic error into one located, one-paragraph slarules error."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = root + tuple(first["loc"])
    field = ".".join(str(p) for p in loc) or None
    line = column = None
    if doc is not None:
        line, column = doc.where(loc)
    message = describe_error(first)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return cls(message, file=doc.file if doc else None, line=line, column=column, field=field)


def case_from_document(doc: Document, limits: Limits = DEFAULT_LIMITS) -> Case:
    if not isinstance(doc.data, dict):
        raise CaseError("a case must be a mapping (JSON object) with at least `waybill`",
                        file=doc.file, line=1)
    limits.check_case(doc.data, doc.file)
    try:
        return Case.model_validate(doc.data)
    except ValidationError as exc:
        error = error_from_validation(exc, doc)
    # Raised outside the handler, so it carries no __context__: pydantic's ValidationError does not
    # take part in garbage collection, and a cycle through it kept every rejected case's caller
    # frames (a whole batch chunk) alive for good.
    raise error


def parse_case(data: Any, *, source: str = "<case>") -> Case:
    """Validate a dict (or pass a Case through); errors are CaseError."""
    if isinstance(data, Case):
        return data
    return case_from_document(Document(data, source))


def load_case(path: str, limits: Limits = DEFAULT_LIMITS) -> Case:
    return case_from_document(read_document(path, max_bytes=limits.case_bytes), limits)


def load_case_text(text: str, source: str = "<stdin>", limits: Limits = DEFAULT_LIMITS) -> Case:
    return case_from_document(parse_text(text, source, max_bytes=limits.case_bytes), limits)


def case_schema() -> dict:
    return Case.model_json_schema()
