"""The case contract mirrored in msgspec: the fast way in, with Pydantic as the authority.

Validating a case with Pydantic took longer than adjudicating it, and importing
Pydantic alone is half of a CLI call's start-up. `FastCase` checks the same
contract with msgspec (its structs are built from the field table, case/fields.py),
and accepts a case only when `facts.Case` would accept it with the same values. Anything else, whether a
mistake or an input Pydantic would coerce (a number written as text, a float
for a Decimal), goes to `facts.Case`, which either accepts it or gives the
exact located error. So which model read a case never shows in a verdict or an
error record; tests/test_fastcase.py holds the two models equal.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional, Union, get_args, get_origin

import msgspec
from msgspec import Meta, Struct, field

from . import contract as C, fields, instants, zones
from .limits import DEFAULT as DEFAULT_LIMITS, Limits
from .zones import BundledZone, NoSuchTime, localize


def _anchored(pattern: str) -> str:
    """Pydantic's (Rust) `$` is the end of the text; Python's also matches before a final newline."""
    assert pattern.startswith("^") and pattern.endswith("$"), pattern
    return pattern[:-1] + r"\Z"


# Decimals and timestamps are checked by `_finish`, which accepts only the forms whose
# Pydantic result is certain (a datetime object, say, is left to Pydantic).
Decimalish = str | int | float


class _Block(Struct, forbid_unknown_fields=True):
    pass


class _CaseBlock(_Block):
    if TYPE_CHECKING:       # the fields come from the case field table at run time
        def __getattr__(self, name: str) -> Any: ...

    @property
    def zone(self) -> BundledZone:
        return zones.zone(self.timezone or C.DEFAULT_TIMEZONE)


def _type(f: fields.Field, made: dict[str, type]) -> Any:
    """The msgspec type of one field of the table (without its `| None`)."""
    kind = f.kind
    if kind == "code":
        return Annotated[str, Meta(min_length=1, max_length=C.CODE_MAX_LENGTH, pattern=_anchored(f.pattern))]
    if kind == "enum":
        return Literal[f.values]        # type: ignore[name-defined]  # built at run time from the case field table
    if kind == "bool":
        return bool
    if kind == "decimal":
        return Decimalish
    if kind == "int":
        return Annotated[int, Meta(**f.limits)]
    if kind in ("timestamp", "zone"):
        return str
    if kind == "enums":
        return Annotated[list[Literal[f.values]], Meta(max_length=f.max_items)]   # type: ignore[name-defined]
    if kind == "block":
        return made[f.block.name]
    if kind == "blocks":       # more than the default limit: left to Pydantic, which reads a raised limit
        return Annotated[list[made[f.block.name]], Meta(max_length=f.max_items)]  # type: ignore[name-defined,valid-type]
    raise fields.mismatch("case.fast", f"no msgspec type for `{f.name}` of kind {kind!r}")


def _structs() -> dict[str, type]:
    """A msgspec Struct per block of the field table, named as the block (the case: FastCase)."""
    made: dict[str, type] = {}
    for b in fields.blocks_of():
        spec: list[tuple[Any, ...]] = []
        for f in b.fields:
            tp = _type(f, made)
            if f.required:
                spec.append((f.name, tp))
            elif f.kind in ("enums", "blocks"):
                spec.append((f.name, tp, field(default_factory=list)))
            else:
                spec.append((f.name, Optional[tp], None))  # noqa: UP045  # typing.Optional whatever tp is
        root = b is fields.CASE
        made[b.name] = msgspec.defstruct("FastCase" if root else b.name, spec, module=__name__,
                                         bases=(_CaseBlock if root else _Block,), forbid_unknown_fields=True)
    return made


_STRUCTS = _structs()
globals().update({name: struct for name, struct in _STRUCTS.items() if name != "Case"})
if TYPE_CHECKING:
    FastCase = _CaseBlock       # the generated Struct, as a type checker can name it
else:
    FastCase = _STRUCTS["Case"]
FastCase.__doc__ = "A validated case with the fields, values and `zone` of `facts.Case`."


class _Unsure(Exception):
    """A value whose Pydantic result this module does not vouch for."""


_DECIMAL_TEXT = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?\Z")


class _DecimalField:
    """One decimal field's limits, checked on the written form so the result is Pydantic's.

    Bounds are whole numbers in the contract, so the integer part and whether
    any digit is non-zero decide them without Decimal arithmetic.
    """

    def __init__(self, limits: Mapping):
        self.places = limits["decimal_places"]
        self.max_digits = limits.get("max_digits", 30)   # past Decimal's own 28-digit context
        low = limits.get("gt", limits.get("ge", 0))
        assert low == 0, "the contract's decimals start at zero"
        self.whole_digits = self.max_digits - self.places     # Pydantic keeps room for the decimal places
        self.zero_allowed = "gt" not in limits
        self.high = limits.get("le")
        # the whole numbers accepted as they are (int input): not negative, not zero for `gt`,
        # no more whole digits than allowed, at most the bound
        self.low_int = 0 if self.zero_allowed else 1
        most = 10 ** self.whole_digits - 1
        self.high_int = most if self.high is None else min(self.high, most)
        self._read: dict[str, Decimal] = {}

    def __call__(self, value: Any) -> Decimal | None:
        if value is None:
            return None
        if type(value) is int:
            if not self.low_int <= value <= self.high_int:
                raise _Unsure
            return Decimal(value)
        if type(value) is float:          # Pydantic reads a float by its repr: 8.5 -> Decimal("8.5")
            return self(repr(value))
        if type(value) is not str:
            raise _Unsure
        # texts read before: prices and weights recur ("15.50"); a Decimal is immutable, so shared
        known = self._read.get(value)
        if known is None:
            known = self._text(value)
            if len(self._read) >= 1024:
                self._read.clear()
            self._read[value] = known
        return known

    def _text(self, value: str) -> Decimal:
        m = _DECIMAL_TEXT.match(value)
        if m is None:
            raise _Unsure
        text, fraction = m.group(1, 2)
        if fraction is None:
            nonzero_fraction = False
        elif len(fraction) > self.places:
            raise _Unsure
        else:
            nonzero_fraction = fraction.strip("0") != ""
        if len(text) > self.whole_digits:
            raise _Unsure
        whole = int(text)
        if not self.zero_allowed and whole == 0 and not nonzero_fraction:
            raise _Unsure
        if self.high is not None and (whole > self.high or (whole == self.high and nonzero_fraction)):
            raise _Unsure
        return Decimal(value)


def _instant(value: Any, zone: BundledZone, _parse=datetime.fromisoformat, _longest=C.TEXT_MAX_LENGTH,
             _first=instants.TIMESTAMP_MIN_YEAR, _last=instants.TIMESTAMP_MAX_YEAR) -> datetime:
    """A gate: a timestamp as instants.read_instant reads it (naive: in the case's zone); _Unsure
    for None or any doubt (tests/test_instants.py holds it to the reading). The usual text (no spaces about it, five a case) is read inline first."""
    if type(value) is str and len(value) <= _longest:
        try:
            value = _parse(value)
        except ValueError:
            try:
                value = instants.read_timestamp(value)
            except ValueError:
                raise _Unsure from None
    elif type(value) is not datetime:
        raise _Unsure
    if not _first <= value.year <= _last:     # instants.year_ok, inline
        raise _Unsure
    if value.tzinfo is not None:
        return value
    try:
        return localize(value, zone)          # a time the clocks skipped: Pydantic's path says where
    except NoSuchTime:
        raise _Unsure from None


def _conversions(b: fields.Block) -> list[tuple[str, _DecimalField | None, bool]]:
    """The fields of `b` that msgspec leaves as they came: (name, its _DecimalField, or None for a
    timestamp; required). Both ways of finishing a case, the loop and the generated code, read this."""
    out = []
    for f in b.fields:
        if f.kind in ("decimal", "timestamp"):
            if not f.name.isidentifier():
                raise fields.mismatch("case.fast", f"`{b.name}.{f.name}` is not an identifier")
            out.append((f.name, _DecimalField(f.limits) if f.kind == "decimal" else None, f.required))
        elif f.kind in ("zone", "block", "blocks") and b is not fields.CASE:
            raise fields.mismatch("case.fast", f"`{b.name}.{f.name}`: a {f.kind} is read only at the case's top level")
    return out


_ZONES = [f.name for f in fields.CASE.fields if f.kind == "zone"]
if _ZONES != ["timezone"]:
    raise fields.mismatch("case.fast", f"the case's zone fields are {_ZONES}; `zone` reads `timezone` only")
_TOP = _conversions(fields.CASE)
# (field name, its block's conversions) of the case's blocks and lists of blocks that have any
_BLOCKS = [(f.name, c) for f in fields.CASE.fields if f.kind == "block" and (c := _conversions(f.block))]
_LISTS = [(f.name, c) for f in fields.CASE.fields if f.kind == "blocks" and (c := _conversions(f.block))]
if not all(name.isidentifier() for name, _ in _BLOCKS + _LISTS):
    raise fields.mismatch("case.fast", "a block's name is not an identifier")
WARM_UP = 64          # cases finished by the loop before the generated code is compiled (~0.5 ms)


def _zone_for(case: FastCase) -> BundledZone:
    tz = case.timezone
    if tz is not None and not zones.is_zone(tz):
        raise _Unsure
    return zones.zone(tz or C.DEFAULT_TIMEZONE)


def _convert(obj: Any, conversions: list, zone: BundledZone) -> None:
    for name, check, required in conversions:
        value = getattr(obj, name)
        if check is not None:
            setattr(obj, name, check(value))
        elif value is not None or required:           # None is refused by _instant as any other non-text
            setattr(obj, name, _instant(value, zone))


def _finish_loop(case: FastCase) -> None:
    """Check and convert what msgspec left as it came (zone, timestamps, decimals), walking the tables."""
    zone = _zone_for(case)
    _convert(case, _TOP, zone)
    for list_name, conversions in _LISTS:
        for item in getattr(case, list_name):
            _convert(item, conversions, zone)
    for block_name, conversions in _BLOCKS:
        obj = getattr(case, block_name)
        if obj is not None:
            _convert(obj, conversions, zone)


def _conversion_lines(conversions: list, obj: str, indent: str, ns: dict[str, Any]) -> list[str]:
    """`_convert(obj, conversions, zone)` as source lines."""
    out = []
    for name, check, required in conversions:
        if check is not None:
            ns[f"D{len(ns)}"] = check
            out += [f"{indent}v = {obj}.{name}",         # a whole number in range: as `check` takes it
                    f"{indent}if type(v) is int and {check.low_int!r} <= v <= {check.high_int!r}:",
                    f"{indent}    {obj}.{name} = Decimal(v)",
                    f"{indent}elif v is not None:",
                    f"{indent}    {obj}.{name} = D{len(ns) - 1}(v)"]
        elif required:
            out.append(f"{indent}{obj}.{name} = _instant({obj}.{name}, zone)")
        else:
            out += [f"{indent}v = {obj}.{name}", f"{indent}if v is not None:",
                    f"{indent}    {obj}.{name} = _instant(v, zone)"]
    return out


def _compiled_finish():
    """`_finish_loop` written out as straight-line Python from the same tables: names from the field
    table, the checks passed in a namespace, never as source."""
    ns: dict[str, Any] = {}
    body = _conversion_lines(_TOP, "case", "    ", ns)
    for list_name, conversions in _LISTS:
        body += [f"    for item in case.{list_name}:", *_conversion_lines(conversions, "item", "        ", ns)]
    for block_name, conversions in _BLOCKS:
        body += [f"    o = case.{block_name}", "    if o is not None:",
                 *_conversion_lines(conversions, "o", "        ", ns)]
    ns.update(Decimal=Decimal, _instant=_instant, _zone_for=_zone_for)
    source = ["def _finish(case):",
              '    """Check and convert what msgspec left as it came: zone, timestamps, decimals."""',
              "    zone = _zone_for(case)",
              *body]
    exec("\n".join(source), ns)  # noqa: S102  # code generated from our own tables; pack text enters only as repr() literals
    return ns["_finish"]


_finished = 0


def _finish_first(case: FastCase) -> None:
    """The loop for the first WARM_UP cases (a CLI call's one case does not pay compile()), then the code."""
    global _finish, _finished
    _finished += 1                   # not atomic: a race only compiles later or twice, alike
    if _finished >= WARM_UP:
        _finish = _compiled_finish()
    _finish_loop(case)


_finish = _finish_first


def fast_case(data: Any) -> FastCase | None:
    """`data` as a FastCase when it is plainly valid; None when Pydantic must decide."""
    if type(data) is not dict:
        return None
    try:
        case = msgspec.convert(data, FastCase)
        _finish(case)
    except (msgspec.ValidationError, _Unsure, UnicodeEncodeError):    # a lone surrogate: text_boundary says so
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
            return Union[tuple(plain(a) for a in get_args(tp))]    # noqa: UP007  # of a run-time tuple
        if origin is list:
            return list[plain(get_args(tp)[0])]
        if isinstance(tp, type) and issubclass(tp, Struct):
            return structural(tp, made)
        return tp
    if model not in made:
        fields: list[tuple[Any, ...]] = []
        for f in msgspec.structs.fields(model):
            if f.default is msgspec.NODEFAULT and f.default_factory is msgspec.NODEFAULT:
                fields.append((f.name, plain(f.type)))
            else:
                fields.append((f.name, Union[plain(f.type), msgspec.UnsetType], msgspec.UNSET))  # noqa: UP007
        made[model] = msgspec.defstruct(model.__name__, fields, forbid_unknown_fields=True)
    return made[model]


def case_of(data: Any, document=None, limits: Limits = DEFAULT_LIMITS):
    """The validated case (FastCase, or facts.Case when Pydantic had to decide); CaseError if invalid.

    `document` (a sources.Document of `data`) lets an error name the file and line;
    `limits` refuses an oversized case before either model reads it.
    """
    if isinstance(data, FastCase):
        return data
    limits.check_case(data, document=document)
    fast = fast_case(data)        # more than MAX_SCANS (a raised limit) is left to Pydantic
    if fast is not None:
        return fast
    from ..facts import Case, case_from_document
    from .sources import Document
    if isinstance(data, Case):
        return data
    return case_from_document(document if document is not None else Document(data, "<case>"), limits)


def read_case(path: str, limits: Limits = DEFAULT_LIMITS, stdin=None, with_data: bool = False):
    """A case file (or standard input for `-`), bounded by `limits.case_bytes` (reader.py: a file
    refused from its size before it is read; standard input read one byte past the limit at most),
    then validated.

    `with_data`: (case, the document as read), for a decision log that keeps the case as given.

    A byte-order mark is allowed at the start of the text, as in every file slarules reads.
    """
    from .limits import raise_hint
    from .reader import read_stream
    from .sources import document_of, read_document
    hint = raise_hint("case_bytes")
    if path == "-":
        doc = document_of(read_stream(stdin, limits.case_bytes, "<stdin>", hint), "<stdin>")
    else:
        doc = read_document(path, max_bytes=limits.case_bytes, hint=hint)
    case = case_of(doc.data, doc, limits)
    return (case, doc.data) if with_data else case
