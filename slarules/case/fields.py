"""The case's fields, written once: every block, every field, its kind and whether it is required.

docs/contract.md in a table. Every way slarules reads a case is built from it:

- `facts.Case` and its blocks (Pydantic, the authority: its errors are the ones users see),
- `case.fast.FastCase` and its blocks (msgspec, the fast way in, without Pydantic),
- `columnar.input.raw_schema()` and its bulk value checks (Polars),
- `batch.io.case_schema()` (Arrow, the layout of a Parquet file of cases).

- `packs.vocabulary.BASE_FACTS` (the facts a rule may read: every field whose `fact`
  is set, as that fact type) and `tools.witness.CaseSpace` (the witness search draws it).

So adding an optional field to the contract, rules reading it, is one edit here (plus
its tests). A kind a backend cannot build refuses at import, naming the field. This
module imports neither Pydantic nor msgspec nor Polars: it is plain data.

Kinds (what a field holds, as JSON):

    code       text matching `pattern`, 1..CODE_MAX_LENGTH characters (waybill, station codes)
    enum       one of `values`
    bool       a JSON boolean (never "no", "false" or 0)
    decimal    an exact number within `limits` (contract.MONEY, LENGTH, WEIGHT): a Decimal
    int        a whole number within `limits` (ge, le)
    timestamp  ISO 8601 text; a naive one takes the case's time zone
    zone       an IANA time zone name
    enums      a list of `values`, at most `max_items`; absent is []
    block      an object with the fields of `block`
    blocks     a list of `block` objects; absent is []. `max_items` is a default limit
               (limits.Limits.scans) a user may raise, so only the fast path holds to it.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from . import contract as C

KINDS = ("code", "enum", "bool", "decimal", "int", "timestamp", "zone", "enums", "block", "blocks")
# The fact type a rule reads a field of each kind as (a decimal's depends on its limits: DECIMAL_FACTS).
READ_AS = {"code": "text", "enum": "enum", "bool": "bool", "decimal": None, "int": "int", "timestamp": "instant",
           "enums": "list"}
DECIMAL_FACTS = {id(C.MONEY): "money", id(C.LENGTH): "length", id(C.WEIGHT): "weight"}


class FieldTableError(TypeError):
    """A model or schema disagrees with the case field table (a programming error, raised at import)."""


class _FieldRecord(NamedTuple):
    name: str
    kind: str
    required: bool = False
    values: tuple[str, ...] = ()           # enum, enums
    limits: Mapping = MappingProxyType({})     # decimal, int
    pattern: str = None                    # type: ignore[assignment]  # code (Field() refuses one without)
    max_items: int | None = None           # enums, blocks
    # block, blocks (Field() refuses those kinds without one; no other kind's block is read)
    block: Block = None                  # type: ignore[assignment]
    description: str | None = None         # shown in `slarules schema case`
    # the fact type (packs/types.py TYPES, or enum, list) rules read it as; None: no rule reads it
    fact: str | None = None


class Field(_FieldRecord):
    """One case field: a NamedTuple (a cold start defines it in a tenth of a frozen dataclass's time),
    checked when made."""

    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls, *args, **kwargs)
        if self.kind not in KINDS:
            raise FieldTableError(f"case field `{self.name}`: unknown kind {self.kind!r} (one of {', '.join(KINDS)})")
        needs = {"enum": "values", "enums": "values", "decimal": "limits", "int": "limits", "code": "pattern",
                 "block": "block", "blocks": "block"}.get(self.kind)
        if needs and not getattr(self, needs):
            raise FieldTableError(f"case field `{self.name}` ({self.kind}) needs `{needs}`")
        if self.fact is not None and self.kind not in READ_AS:
            raise FieldTableError(f"case field `{self.name}`: rules cannot read a {self.kind} field")
        return self


@dataclass(frozen=True)
class Block:
    name: str                      # the class name of its models: Parcel, FastCase's Parcel, ...
    fields: tuple[Field, ...]
    doc: str | None = None

    def __getitem__(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


# ---- the table's vocabulary: one constructor per kind -------------------------------------------

# `rules=False`: a field no rule reads (the KPI statement's, the run's as_of); else rules read it
# as its kind's fact type (READ_AS).

def code(name, pattern=C.STATION_PATTERN, required=False, description=None, rules=True):
    return Field(name, "code", required, pattern=pattern, description=description, fact=_fact("code", rules))


def enum(name, values, required=False, description=None, rules=True):
    return Field(name, "enum", required, values=tuple(values), description=description, fact=_fact("enum", rules))


def flag(name, description=None, rules=True):
    return Field(name, "bool", description=description, fact=_fact("bool", rules))


def decimal(name, limits, description=None, rules=True):
    """A decimal; rules read it as money, a length or a weight by its limits (contract.MONEY, LENGTH, WEIGHT)."""
    fact = DECIMAL_FACTS.get(id(limits)) if rules else None
    if rules and fact is None:
        raise FieldTableError(f"case field `{name}`: rules read a decimal with the contract's MONEY, LENGTH "
                              "or WEIGHT limits; give one, or rules=False")
    return Field(name, "decimal", limits=dict(limits), description=description, fact=fact)


def integer(name, high, description=None, rules=True):
    return Field(name, "int", limits={"ge": 0, "le": high}, description=description, fact=_fact("int", rules))


def timestamp(name, required=False, description=None, rules=True):
    return Field(name, "timestamp", required, description=description, fact=_fact("timestamp", rules))


def _fact(kind: str, rules: bool) -> str | None:
    return READ_AS[kind] if rules else None


def zone(name, description=None):
    return Field(name, "zone", description=description)


def enums(name, values, max_items, description=None, rules=True):
    return Field(name, "enums", values=tuple(values), max_items=max_items, description=description,
                 fact=_fact("enums", rules))


def block(name, of: Block, description=None):
    return Field(name, "block", block=of, description=description)


def blocks(name, of: Block, max_items, description=None):
    return Field(name, "blocks", block=of, max_items=max_items, description=description)


# ---- the table ----------------------------------------------------------------------------------

STATIONS = Block("Stations", (code("sending"), code("delivering")))

PARCEL = Block("Parcel", (
    decimal("length_cm", C.LENGTH),
    decimal("width_cm", C.LENGTH),
    decimal("height_cm", C.LENGTH),
    decimal("weight_kg", C.WEIGHT),
    decimal("declared_value_cny", C.MONEY),
    decimal("insured_value_cny", C.MONEY, "NR-3: the 保价 amount; absent or 0 = uninsured"),
    flag("packaging_compliant"),
    flag("prohibited"),
))

COLLECTION = Block("Collection", (
    flag("sender_signed"),
    flag("in_service_area"),
    decimal("quoted_cny", C.MONEY),
    decimal("charged_cny", C.MONEY),
))

SCAN = Block("Scan", (
    enum("type", C.SCAN_TYPES, required=True, rules=False),     # rules read scans through derivations
    code("station", required=True, rules=False),
    timestamp("at", required=True, rules=False),
))

DELIVERY = Block("Delivery", (
    enum("signed_by", C.SIGNED_BY),
    flag("recipient_notified"),
    flag("recipient_consented"),
    flag("proxy_id_checked"),
    flag("signature_legible"),
))

OUTCOME = Block("Outcome", (
    flag("lost"),
    flag("damaged"),
    flag("contents_short"),
    flag("packaging_intact"),
    flag("recipient_denies_receipt"),
    decimal("loss_cny", C.MONEY, "NR-3: the actual loss established, for compensation"),
))

SERVICE = Block("Service", (
    enum("route", C.ROUTES, description="NR-4: the route whose time limit was promised"),
    timestamp("promised_by", description="NR-4: the promised delivery time; else collection + the route's limit"),
), doc="What was promised to the customer (NATIONAL.md NR-4).")

HUB_HANDLING = Block("HubHandling", (
    code("station"),
    enum("found", C.HUB_FINDS),
    flag("reported"),
    flag("isolated"),
    flag("photographed"),
    flag("registered"),
    flag("repacked"),
))

COMPLAINT = Block("Complaint", (
    enum("kind", C.COMPLAINT_KINDS),
    enum("channel", C.CHANNELS),
    timestamp("received_at"),
    flag("major"),
    enums("issues", C.COMPLAINT_ISSUES, C.MAX_ISSUES),
    integer("delay_minutes", C.DELAY_MINUTES_MAX),
    timestamp("first_contact_at"),
    timestamp("plan_at"),
    timestamp("closed_at"),
    # Optional additions for RG-1's interaction-level SLAs (not in the first contract draft).
    flag("complex", "RG-1: the question needed investigation"),
    timestamp("feedback_at", description="RG-1: initial feedback on a complex question"),
    integer("rings", C.RINGS_MAX, "RG-1: rings before a phone answer"),
    timestamp("connected_at", description="RG-1: phone call connected"),
    timestamp("identity_confirmed_at", description="RG-1: caller identity confirmed"),
    # Optional, for the batch statement's customer-service KPIs (docs/policy.md, KPI).
    code("agent", description="KPI: the customer-service agent who handled it", rules=False),
    code("team", description="KPI: the agent's team", rules=False),
    flag("resolved_first_contact", "KPI: resolved in the first interaction", rules=False),
    flag("satisfied", "KPI: the survey answer; absent = not surveyed", rules=False),
    decimal("handling_minutes", C.MINUTES, "KPI: the agent's working time on it, minutes", rules=False),
))

CASE = Block("Case", (
    code("waybill", C.WAYBILL_PATTERN, required=True),
    enum("product", C.PRODUCTS),
    zone("timezone"),
    timestamp("as_of", rules=False),       # rules read the run's as_of (vocabulary's built-in `as_of`)
    block("stations", STATIONS),
    block("parcel", PARCEL),
    block("collection", COLLECTION),
    blocks("scans", SCAN, C.MAX_SCANS, f"at most limits.Limits.scans ({C.MAX_SCANS} unless raised)"),
    block("delivery", DELIVERY),
    block("outcome", OUTCOME),
    block("service", SERVICE),
    block("hub_handling", HUB_HANDLING),
    block("complaint", COMPLAINT),
), doc="One disputed parcel. See docs/contract.md.")


# ---- reading the table ----------------------------------------------------------------------------

def blocks_of(root: Block = CASE) -> Iterator[Block]:
    """Every block, nested ones first, each once: the order models must be built in."""
    seen: set[str] = set()

    def walk(b: Block):
        for f in b.fields:
            if f.block is not None and f.block.name not in seen:
                yield from walk(f.block)
        if b.name not in seen:
            seen.add(b.name)
            yield b
    yield from walk(root)


def leaves(root: Block = CASE) -> Iterator[tuple[str, Field]]:
    """(path, field) of every field outside lists: `waybill`, `parcel.weight_kg`, ..."""
    for f in root.fields:
        if f.kind == "block":
            for g in f.block.fields:
                yield f"{f.name}.{g.name}", g
        else:
            yield f.name, f


def _decimals() -> dict[str, dict[str, Mapping]]:
    out: dict[str, dict[str, Mapping]] = {}
    for path, f in leaves():
        if f.kind == "decimal" and "." in path:
            block_name, name = path.split(".")
            out.setdefault(block_name, {})[name] = f.limits
    return out


def _timestamps() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for path, f in leaves():
        if f.kind == "timestamp" and "." in path:
            block_name, name = path.split(".")
            out[block_name] = out.get(block_name, ()) + (name,)
    return out


# Decimal and timestamp fields of the blocks, by block.
DECIMALS = _decimals()
TIMESTAMPS = _timestamps()


def column_types(scalar: Mapping[str, object], struct, list_, root: Block = CASE) -> dict[str, object]:
    """The table as nested column types: `scalar[kind]` for a value, `struct({...})` and `list_(type)` else.

    Decimals and timestamps are text in columns, so they stay exact and keep their UTC offsets.
    """
    def of(f: Field):
        if f.kind == "block":
            return struct({g.name: of(g) for g in f.block.fields})
        if f.kind == "blocks":
            return list_(struct({g.name: of(g) for g in f.block.fields}))
        if f.kind == "enums":
            return list_(scalar["enum"])
        return scalar[f.kind]
    return {f.name: of(f) for f in root.fields}


def mismatch(where: str, problem: str) -> FieldTableError:
    return FieldTableError(f"{where} disagrees with the case field table (slarules/case/fields.py): {problem}")
