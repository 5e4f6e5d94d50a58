"""The case: one disputed parcel, exactly as docs/contract.md describes it.

Strict on purpose (unknown fields are errors so typos surface), exact on purpose
(money and sizes are Decimals, timestamps are aware datetimes), and tolerant of
absence (every block but `waybill` may be missing: rules that need it report it).

The models are built from the case field table (case/fields.py), as every other
model of a case is; this module says how each kind of field reads in Pydantic.
"""
from __future__ import annotations

import reprlib
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    create_model,
)

from .case import contract as C, fields, instants, zones
from .case.contract import DEFAULT_TIMEZONE
from .case.limits import DEFAULT as DEFAULT_LIMITS, Limits
from .case.sources import Document, parse_text, read_document
from .errors import CaseError, SlaRulesError
from .text_boundary import check_data


def _parse_timestamp(value: Any) -> Any:
    if isinstance(value, datetime):
        return in_range(value)
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 timestamp string such as 2026-05-02T11:40:00+08:00")  # noqa: TRY004  # Pydantic reports a ValueError
    return instants.read_timestamp(value)


def in_range(value: datetime) -> datetime:
    """The instant as given, or a ValueError when its year is a placeholder (0001, 9999), not a date."""
    if not instants.year_ok(value):
        raise ValueError(f"the year {value.year} {instants.YEARS_MESSAGE}")
    return value


def _check_zone(value: str) -> str:
    if len(value) > C.TEXT_MAX_LENGTH:
        raise ValueError(f"a time zone name has at most {C.TEXT_MAX_LENGTH} characters")
    if not zones.is_zone(value):
        raise ValueError(zones.not_a_zone(value))
    return value


Timestamp = Annotated[datetime, BeforeValidator(_parse_timestamp)]
Zone = Annotated[str, AfterValidator(_check_zone)]
# JSON booleans only: "no", "false" or 0 are not quietly read as false.
Flag = Annotated[bool, Strict()]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, allow_inf_nan=False,
                              validate_default=True, use_enum_values=True)


def _annotation(f: fields.Field, made: dict[str, type]) -> Any:
    """The Pydantic type of one field of the table (without its `| None`)."""
    kind = f.kind
    if kind == "code":
        return Annotated[str, Field(min_length=1, max_length=C.CODE_MAX_LENGTH, pattern=f.pattern)]
    if kind == "enum":
        return Literal[f.values]
    if kind == "bool":
        return Flag
    if kind == "decimal":
        return Annotated[Decimal, Field(**f.limits, allow_inf_nan=False)]
    if kind == "int":
        return Annotated[int, Field(**f.limits)]
    if kind == "timestamp":
        return Timestamp
    if kind == "zone":
        return Zone
    if kind == "enums":
        return list[Literal[f.values]]     # type: ignore[name-defined]  # built at run time from the case field table
    if kind == "block":
        return made[f.block.name]
    if kind == "blocks":        # its size is limits.Limits.scans, checked before the model reads the case
        return list[made[f.block.name]]    # type: ignore[name-defined,valid-type]  # built at run time from the case field table
    raise fields.mismatch("facts", f"no Pydantic type for `{f.name}` of kind {kind!r}")


def _field(f: fields.Field, made: dict[str, type]) -> tuple[Any, Any]:
    """(annotation, default) of one field of the table, as create_model takes them."""
    tp = _annotation(f, made)
    if f.required:
        return tp, Field(description=f.description) if f.description else ...
    if f.kind in ("enums", "blocks"):
        return tp, Field(default_factory=list, max_length=f.max_items if f.kind == "enums" else None,
                         description=f.description)
    return Optional[tp], Field(None, description=f.description) if f.description else None  # noqa: UP045


class _NoSuchTime(Exception):
    """A naive timestamp the clocks skipped, at `loc`: raised past Pydantic (which would wrap a
    ValueError as the whole case's), for case_from_document to locate."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(message)
        self.loc, self.message = loc, message


class _Case(Model):
    if TYPE_CHECKING:       # the fields come from the case field table at run time
        def __getattr__(self, name: str) -> Any: ...

    def model_post_init(self, _context: Any) -> None:
        """Read naive timestamps in the case's zone (zones.localize), so every instant is comparable."""
        zone = zones.zone(self.timezone or DEFAULT_TIMEZONE)

        def aware(obj: Any, name: str, loc: tuple) -> None:
            value = getattr(obj, name)
            if value is not None and value.tzinfo is None:
                try:
                    setattr(obj, name, zones.localize(value, zone))
                except zones.NoSuchTime as exc:
                    raise _NoSuchTime(loc + (name,), str(exc)) from None

        for name in _TOP_TIMESTAMPS:
            aware(self, name, ())
        for list_name, names in _LIST_TIMESTAMPS:
            for i, item in enumerate(getattr(self, list_name)):
                for name in names:
                    aware(item, name, (list_name, i))
        for block_name, names in _BLOCK_TIMESTAMPS:
            obj = getattr(self, block_name)
            if obj is not None:
                for name in names:
                    aware(obj, name, (block_name,))

    @property
    def zone(self) -> zones.BundledZone:
        return zones.zone(self.timezone or DEFAULT_TIMEZONE)


def _models() -> dict[str, type[Model]]:
    """A Pydantic model per block of the field table, named as the block (the case: Case)."""
    made: dict[str, type[Model]] = {}
    for b in fields.blocks_of():
        base: type[Model] = _Case if b is fields.CASE else Model
        defs: dict[str, Any] = {f.name: _field(f, made) for f in b.fields}
        made[b.name] = create_model(b.name, __base__=base, __doc__=b.doc, __module__=__name__, **defs)
    return made


def _timestamp_names(b: fields.Block) -> tuple[str, ...]:
    return tuple(f.name for f in b.fields if f.kind == "timestamp")


_TOP_TIMESTAMPS = _timestamp_names(fields.CASE)
_LIST_TIMESTAMPS = [(f.name, _timestamp_names(f.block)) for f in fields.CASE.fields if f.kind == "blocks"]
_BLOCK_TIMESTAMPS = [(f.name, _timestamp_names(f.block)) for f in fields.CASE.fields if f.kind == "block"]

# The models, built from the table: Case (one disputed parcel, see docs/contract.md) and its
# blocks Stations, Parcel, Collection, Scan, Delivery, Outcome, HubHandling, Complaint.
_MODELS = _models()
globals().update(_MODELS)
if TYPE_CHECKING:
    Case = _Case            # the generated model, as a type checker can name it
else:
    Case = _MODELS["Case"]
ScanType = Literal[fields.SCAN["type"].values]        # type: ignore[valid-type]  # built at run time from the case field table
ComplaintIssue = Literal[fields.COMPLAINT["issues"].values]     # type: ignore[valid-type]  # built at run time from the case field table
Money = Annotated[Decimal, Field(**C.MONEY, allow_inf_nan=False)]
Length = Annotated[Decimal, Field(**C.LENGTH, allow_inf_nan=False)]
Weight = Annotated[Decimal, Field(**C.WEIGHT, allow_inf_nan=False)]
StationCode = Annotated[str, Field(min_length=1, max_length=C.CODE_MAX_LENGTH, pattern=C.STATION_PATTERN)]


def describe_error(err: Mapping[str, Any]) -> str:
    kind, msg = err.get("type", ""), err.get("msg", "")
    if kind == "extra_forbidden":
        return "unknown field (not in the case contract)"
    if kind == "missing":
        return "required field is missing"
    msg = msg.removeprefix("Value error, ")
    if "input" in err and kind not in ("model_type", "dict_type"):
        return f"{msg}; got {shown(err['input'])}"
    return msg


def shown(value: Any) -> str:
    """A value for an error message, never longer than 60 characters, whatever its size or depth."""
    brief = _BRIEF.repr(value)
    return brief if len(brief) <= 60 else brief[:57] + "..."


def _brief() -> reprlib.Repr:
    r = reprlib.Repr()          # Python 3.11's takes no arguments
    r.maxlevel, r.maxstring, r.maxother, r.maxlist, r.maxdict = 2, 60, 60, 3, 3
    return r


_BRIEF = _brief()


def error_from_validation(exc: ValidationError, doc: Document | None, cls=CaseError,
                          root: tuple = (), more: int = 0) -> SlaRulesError:
    """Turn a Pydantic error into one located, one-paragraph slarules error (`more`: problems
    found but not given to Pydantic, counted in)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = root + tuple(first["loc"])
    field = ".".join(str(p) for p in loc) or None
    line = column = None
    if doc is not None:
        line, column = doc.where(loc)
    message = describe_error(first)
    others = len(errors) - 1 + more
    if others:
        message += f" (and {others} more problem{'s' if others > 1 else ''})"
    return cls(message, file=doc.file if doc else None, line=line, column=column, field=field)


_NAMES = {b.name: frozenset(f.name for f in b.fields) for b in fields.blocks_of()}


def _one_unknown_key_each(data: dict, block: fields.Block = fields.CASE) -> tuple[dict, int]:
    """`data` with only the first unknown key of each mapping (the one Pydantic reports first), and
    how many others were left out: Pydantic makes an error of each, and listing 75,000 of them cost
    more than reading the case. The caller's data is not changed."""
    names, dropped = _NAMES[block.name], 0
    unknown = [k for k in data if k not in names]
    if len(unknown) > 1:
        data = {k: v for k, v in data.items() if k in names or k == unknown[0]}
        dropped = len(unknown) - 1
    for f in block.fields:
        value, inner = data.get(f.name), f.block
        kept: dict | list
        if inner is None:
            continue
        if f.kind == "block" and type(value) is dict:
            kept, n = _one_unknown_key_each(value, inner)
        elif f.kind == "blocks" and type(value) is list:
            items = [_one_unknown_key_each(v, inner) if type(v) is dict else (v, 0) for v in value]
            kept, n = [v for v, _ in items], sum(n for _, n in items)
        else:
            continue
        if n:
            data, dropped = {**data, f.name: kept}, dropped + n
    return data, dropped


def case_from_document(doc: Document, limits: Limits = DEFAULT_LIMITS) -> Case:
    if not isinstance(doc.data, dict):
        raise CaseError("a case must be a mapping (JSON object) with at least `waybill`",
                        file=doc.file, line=1)
    limits.check_case(doc.data, document=doc)
    check_data(doc.data, file=doc.file, where=doc.where)     # a dict no reader checked: the library's, a row's
    data, left_out = _one_unknown_key_each(doc.data)
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        error = error_from_validation(exc, doc, more=left_out)
    except _NoSuchTime as exc:
        line, column = doc.where(exc.loc)
        error = CaseError(exc.message, file=doc.file, line=line, column=column,
                          field=".".join(str(p) for p in exc.loc), hint=zones.NO_SUCH_TIME_HINT)
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
