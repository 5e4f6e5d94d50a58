"""Rule packs: the YAML a policy owner edits, parsed into a typed, located model.

Shape is checked by Pydantic (and published as JSON Schema for editors); meaning
is checked by `compiler.check_packs`: every fact path, parameter, operator, type, message
placeholder, clause id and precedence link is resolved, and every problem becomes
an `Issue` with file, line and column. Nothing in a pack is ever executed.
"""
from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, ValidationInfo, field_validator

from ..case import zones
from ..case.limits import PACK_BYTES
from ..case.reader import read_file, size_text
from ..case.sources import Document, document_of
from ..echo import LIMITS, quote
from ..errors import PackError, SlaRulesError
from ..facts import describe_error
from .operators import NAMES
from .versions import days_of

KINDS = ("liability", "fine", "refund", "compensation", "classification", "breach", "procedure", "warning",
         "not_covered")
PARTIES = ("sending_station", "delivering_station", "hub", "customer_service", "customer", "network", "none")
OPERATORS = NAMES                 # the condition operators, as written in a pack (operators.py)
RULE_ID = r"^[a-z0-9]+(?:[.-][a-z0-9]+)*$"
NAME = r"^[a-z][a-z0-9_]*$"
# a clause id as the policy numbers its clauses (TB-1, NR-3): letters, a dash, a number; nothing that
# could break a line, a terminal or a CSV cell on its way into a verdict or a statement
CLAUSE_ID = r"^[A-Z][A-Z0-9]{0,15}-[0-9]{1,4}$"
ClauseId = Annotated[str, Field(pattern=CLAUSE_ID, description="e.g. TB-1: capitals, a dash, a number")]


class Strict(BaseModel):
    # defer_build: a cached Program needs these classes but never validates a pack,
    # so their schemas are built on first use instead of at import (~50 ms of a cold start)
    model_config = ConfigDict(extra="forbid", defer_build=True)


class FactRef(Strict):
    fact: str = Field(description="a fact path, e.g. signed_at or parcel.weight_kg")


class ParamRef(Strict):
    param: str = Field(description="a parameter declared under `parameters`")


Literal_ = bool | int | float | str


def _value_tag(v: Any) -> str:
    if isinstance(v, dict):
        return "param" if "param" in v else "fact"
    if isinstance(v, FactRef):
        return "fact"
    if isinstance(v, ParamRef):
        return "param"
    return "literal"


Value = Annotated[Annotated[FactRef, Tag("fact")] | Annotated[ParamRef, Tag("param")] | Annotated[Literal_, Tag("literal")], Discriminator(_value_tag)]


class Compare(Strict):
    """One test of one fact: exactly one operator."""

    fact: str
    label: str | None = Field(None, description="names this branch in findings (which thresholds held)")
    eq: Value | None = None
    is_: bool | str | None = Field(None, alias="is", description="equal, and an absent fact counts as false")
    ne: Value | None = None
    lt: Value | None = None
    le: Value | None = None
    gt: Value | None = None
    ge: Value | None = None
    in_: list[Literal_] | None = Field(None, alias="in")
    contains: str | None = None
    exists: bool | None = None


class AllOf(Strict):
    all: list[Condition] = Field(min_length=1)
    label: str | None = None


class AnyOf(Strict):
    any: list[Condition] = Field(min_length=1)
    label: str | None = None


def _cond_tag(v: Any) -> str | None:
    if isinstance(v, dict):
        for key in ("all", "any", "fact"):
            if key in v:
                return {"fact": "compare"}.get(key, key)
        return None
    return {AllOf: "all", AnyOf: "any", Compare: "compare"}.get(type(v))  # type: ignore[call-overload]  # keys typed as their metaclass


Condition = Annotated[Annotated[AllOf, Tag("all")] | Annotated[AnyOf, Tag("any")] | Annotated[Compare, Tag("compare")],
                      Discriminator(_cond_tag, custom_error_type="condition",
                                    custom_error_message="expected a condition: {fact: ..., <operator>: ...}, "
                                                         "{all: [...]} or {any: [...]}")]
AllOf.model_rebuild()
AnyOf.model_rebuild()


class Parameter(Strict):
    type: Literal["bool", "int", "money", "length", "volume", "weight", "instant", "date", "duration", "time",
                  "text"]
    value: Literal_
    doc: str | None = None


class Derivation(Strict):
    fn: str = Field(description="one of the derivation functions in slarules.vocabulary.FUNCTIONS")
    args: dict[str, Value | list[FactRef]] = Field(default_factory=dict)
    doc: str | None = None


class Deadline(Strict):
    """Sugar: breached when `actual` is after `due`, or absent while `as_of` is after `due`."""

    name: str = Field(pattern=NAME)
    due: str = Field(description="an instant fact: the deadline")
    actual: str = Field(description="an instant fact: when it was done")


class Outcome(Strict):
    kind: Literal[KINDS]  # type: ignore[valid-type]
    party: Literal[PARTIES] = "none"  # type: ignore[valid-type]
    station: FactRef | None = Field(None, description="default: the party's own station fact")
    fine_cny: Value | None = None
    refund_cny: Value | None = None
    compensation_cny: Value | None = Field(None, description="kind compensation: what the customer is owed")
    payer: str | None = Field(None, pattern=NAME, description="kind compensation: the harm (loss, damage, ...) "
                              "whose liable party pays, as the loaded packs' liability rules assign it; "
                              "when none does, the network (headquarters) pays")
    classify: str | None = Field(None, pattern=NAME)
    level: int | None = Field(None, ge=1, le=3, description="sets the complaint level (highest wins)")
    harm: list[Annotated[str, Field(pattern=NAME)]] = Field(
        default_factory=list, description="what a liability is for (delay, loss, ...): two rules that can put the "
        "same harm on different parties need precedence; default: the rule's clause")
    severity: Literal["error", "warning", "info"] | None = Field(
        None, description="default: info for classification and not_covered, warning for warning, else error")


class Messages(Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Rule(Strict):
    id: str = Field(pattern=RULE_ID)
    clause: ClauseId
    title: str | None = None
    doc: str | None = None
    scope: list[Condition] = Field(default_factory=list,
                                   description="when false or unknown the rule does not apply (silent)")
    deadline: Deadline | None = None
    when: list[Condition] = Field(default_factory=list,
                                  description="when unknown the verdict lists the missing facts")
    then: Outcome
    facts: list[str] = Field(default_factory=list, description="facts quoted in the finding")
    message: Messages
    overrides: list[str] = Field(default_factory=list)


DATE = r"^\d{4}-\d{2}-\d{2}$"


class Effective(Strict):
    """When a version of a pack is in force: days in the pack's time zone, both inclusive, both optional."""

    from_: str | None = Field(None, alias="from", pattern=DATE, description="first day in force (YYYY-MM-DD)")
    until: str | None = Field(None, pattern=DATE, description="last day in force (YYYY-MM-DD)")
    by: str | None = Field(None, description="the instant fact that picks the version; default: collected_at")


class PackModel(Strict):
    pack: str = Field(pattern=NAME)
    version: str
    extends: str | None = Field(None, pattern=NAME, description="a layer: the pack it changes (packs/layers.py); "
                                "its `parameters` override the base's and its rules are added to the base's")
    timezone: str = "Asia/Shanghai"
    effective: Effective | None = Field(None, description="dated version: in force only for cases whose `by` "
                                        "instant falls in these days; several versions of one pack may be loaded")
    source: str | None = None
    description: str | None = None
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    derive: dict[str, Derivation] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list, validate_default=True)

    @field_validator("timezone")
    @classmethod
    def _a_zone(cls, name: str) -> str:
        if not zones.is_zone(name):     # the pack's dates and local times mean the same on every machine
            raise ValueError(zones.not_a_zone(name))
        return name

    @field_validator("rules")
    @classmethod
    def _some_rules(cls, rules: list[Rule], info: ValidationInfo) -> list[Rule]:
        if not rules and not info.data.get("extends"):
            raise ValueError("a pack needs at least one rule (only a layer, with `extends`, may have none)")
        return rules


class ClauseVersion(Strict):
    """The article a clause cites during some days (a revision of the regulation renumbered it)."""

    from_: str | None = Field(None, alias="from", pattern=DATE, description="first day (YYYY-MM-DD)")
    until: str | None = Field(None, pattern=DATE, description="last day (YYYY-MM-DD)")
    article: str = Field(min_length=1)
    verified: bool | None = Field(None, description="whether this text itself was read (primary) or only a "
                                  "summary of it (secondary)")
    note: str | None = None


class Clause(Strict):
    title: str = Field(min_length=1)
    source: str | None = Field(None, description="the source text, in seeds/")
    verified: bool | None = Field(None, description="whether the text of the source itself was read")
    note: str | None = None
    article: str | None = Field(None, description="the article cited, quoted in messages as {article}")
    versions: list[ClauseVersion] = Field(default_factory=list, description="dated articles, for a clause whose "
                                          "number changed between revisions; a finding quotes the one in force")


class Catalogue(Strict):
    """The clause catalogue (clauses.yaml): the clause ids rules may cite, in the order findings are sorted."""

    clauses: dict[ClauseId, Clause] = Field(min_length=1)


@dataclass
class Pack:
    """A pack as loaded: its model, its source document (for locations), its digest."""

    model: PackModel
    doc: Document
    digest: str

    @property
    def name(self) -> str:
        return self.model.pack

    def where(self, loc: tuple) -> tuple[int | None, int | None]:
        source, at = self.source(loc)
        return source.doc.where(at)

    def issue(self, loc: tuple, message: str, hint: str | None = None, severity: str = "error") -> Issue:
        """An Issue at `loc`, named in the file that wrote it (a layered pack has several)."""
        source, at = self.source(loc)
        line, column = source.doc.where(at)
        return Issue(source.doc.file, line, column, ".".join(map(str, at)) or None, message, severity, hint)

    def source(self, loc: tuple) -> tuple[Pack, tuple]:
        """The pack file that wrote `loc`, and where in it: this one (a layered pack has several)."""
        return self, loc

    def files(self) -> tuple[Pack, ...]:
        """The pack files this pack was made from, in order: itself (a layered pack: base, then layers)."""
        return (self,)


@dataclass(frozen=True)
class Issue:
    """One problem found in a pack, located, with a hint when we can guess one.

    `witness` is a concrete case showing the problem, `rule` the kind of check that found it
    (tools/check.py CHECKS); both from `slarules check`.
    """

    file: str | None          # None: about the whole run, not one file
    line: int | None
    column: int | None
    field: str | None
    message: str
    severity: str = "error"
    hint: str | None = None
    # `field` is dataclasses.field: the attribute `field` above binds no value
    witness: dict | None = field(default=None, compare=False, hash=False)  # type: ignore[operator,misc]
    rule: str | None = field(default=None, compare=False)  # type: ignore[operator,misc]

    def __post_init__(self) -> None:
        """Stored safe to show, as a SlaRulesError's are: `check` prints issues without making errors of them."""
        for name in ("file", "field", "message", "hint"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, quote(value, LIMITS[name]))

    def error(self) -> PackError:
        return PackError(self.message, file=self.file, line=self.line, column=self.column, field=self.field,
                         hint=self.hint)

    def __str__(self) -> str:
        return f"{self.severity}: {self.error()}"


def did_you_mean(word: str, choices) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def allowed_keys(tp: Any, loc: tuple) -> list[str] | None:
    """The keys the mapping at `loc` (a Pydantic error location) may have under type `tp`, or None.

    Pydantic puts a union's member in the location: its tag, or for a plain union its
    name ("list[FactRef]"), so an unknown key is judged against the member it was read as.
    """
    if get_origin(tp) is Annotated:
        return allowed_keys(get_args(tp)[0], loc)
    if get_origin(tp) in (Union, UnionType):
        members = [m for m in get_args(tp) if m is not type(None)]
        tags = {m.__metadata__[-1].tag: m for m in members
                if get_origin(m) is Annotated and isinstance(m.__metadata__[-1], Tag)}
        if loc and loc[0] in tags:
            return allowed_keys(tags[loc[0]], loc[1:])
        if len(members) == 1:
            return allowed_keys(members[0], loc)
        return next(filter(None, (allowed_keys(m, loc[1:]) for m in members)), None)
    is_model = isinstance(tp, type) and issubclass(tp, BaseModel)
    if not loc:
        return [f.alias or name for name, f in tp.model_fields.items()] if is_model else None
    if is_model:
        field_ = next((f for name, f in tp.model_fields.items() if loc[0] in (name, f.alias)), None)
        return allowed_keys(field_.annotation, loc[1:]) if field_ else None
    if get_origin(tp) in (list, dict):
        return allowed_keys(get_args(tp)[-1], loc[1:])
    return None


def schema_issues(errors: Sequence[Mapping[str, Any]], doc: Document, model: type[BaseModel], root: tuple = ()) -> list[Issue]:
    """Every Pydantic error of `model` as a located Issue (not just the first).

    An unknown key names the keys allowed where it is, so a misspelt key can be fixed
    without reading the schema. `root` is where `model` sits in `doc`.
    """
    out = []
    for err in errors:
        loc = tuple(err["loc"])
        line, column = doc.where(root + loc)
        hint = None
        if err.get("type") == "extra_forbidden":
            message = f"unknown field `{quote(loc[-1])}`"
            allowed = allowed_keys(model, loc[:-1])
            if allowed:
                hint = " ".join(filter(None, [did_you_mean(str(loc[-1]), allowed),
                                              f"allowed: {', '.join(allowed)}"]))
        else:
            message = describe_error(err)
        out.append(Issue(doc.file, line, column, ".".join(map(str, root + loc)) or None, message, "error", hint))
    return out


PACK_HINT = (f"a pack, pack test or clause catalogue file has at most {size_text(PACK_BYTES)} (the shipped ones "
             "are under 25 KB): split it into several packs")


def read_model(path: str | Path, model: type[BaseModel], what: str) -> tuple[Any, Document | None, list[Issue]]:
    """The file at `path` validated as `model`, and its document; or None and every problem, located.

    Packs, pack tests and the clause catalogue are read the same way, so each file's
    problems are reported as problems of that file, whatever kind it is.
    """
    return _read_model(path, model, what)[:3]


def _read_model(path: str | Path, model: type[BaseModel], what: str) -> tuple[Any, Document | None, list[Issue], str]:
    """read_model, and the sha256 of the bytes it read (a pack's digest: read once, so it is theirs)."""
    try:
        raw = read_file(path, PACK_BYTES, PACK_HINT)    # a regular file of at most PACK_BYTES
        doc = document_of(raw, str(path))
    except SlaRulesError as exc:       # unreadable, not YAML, too big: one located issue
        return None, None, [Issue(exc.file or str(path), exc.line, exc.column, exc.field, exc.message, "error",
                                  exc.hint)], ""
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if not isinstance(doc.data, dict):
        keys = ", ".join(f"`{name}`" for name, f in model.model_fields.items() if f.is_required())
        return None, doc, [Issue(doc.file, 1, None, None, f"{what} must be a mapping with {keys}")], digest
    try:
        return model.model_validate(doc.data), doc, [], digest
    except ValidationError as exc:
        return None, doc, schema_issues(exc.errors(include_url=False), doc, model), digest


def read_pack(path: str | Path) -> tuple[Pack | None, list[Issue]]:
    """A pack and no issues, or None and every problem found in its shape."""
    model, doc, issues, digest = _read_model(path, PackModel, "a rule pack")
    if model is None or doc is None:
        return None, issues
    return Pack(model, doc, digest), []


def read_catalogue(path: str | Path) -> tuple[dict[str, dict] | None, list[Issue]]:
    """The clauses of a catalogue as written (id -> entry), or None, and every problem in it.

    The clauses come back whenever they are a mapping, even with a bad entry: the packs'
    clause ids can still be checked against them.
    """
    catalogue, doc, issues = read_model(path, Catalogue, "a clause catalogue")
    clauses = doc.data.get("clauses") if doc is not None and isinstance(doc.data, dict) else None
    if catalogue is not None:
        issues += article_issues(catalogue, doc)
    return (clauses if isinstance(clauses, dict) and clauses else None), issues


def article_issues(catalogue, doc) -> list:
    """Problems in the catalogue's dated articles: bad dates, `until` before `from`, two variants on one day."""
    out = []
    for clause_id, clause in catalogue.clauses.items():
        spans = []
        for i, v in enumerate(clause.versions):
            loc = ("clauses", clause_id, "versions", i)
            days = days_of(v.from_, v.until)
            line, column = doc.where(loc)
            if days is None:
                out.append(Issue(doc.file, line, column, ".".join(map(str, loc)),
                                 "not a date (expected YYYY-MM-DD, a real day)"))
            elif days[0] and days[1] and days[0] > days[1]:
                out.append(Issue(doc.file, line, column, ".".join(map(str, loc)),
                                 f"`until` {days[1]} is before `from` {days[0]}"))
            else:
                spans.append((days[0] or date.min, days[1] or date.max, i, line))
        spans.sort()
        for (_, end, i, line), (start, _, j, other) in pairwise(spans):
            if start <= end:
                out.append(Issue(doc.file, other, None, f"clauses.{clause_id}.versions.{j}",
                                 f"clause `{quote(clause_id)}` has two articles in force on {start}",
                                 hint=f"the other is {doc.file}:{line}"))
    return out

def raise_first(issues: list[Issue]) -> None:
    """Raise the first error as a PackError that counts the others and carries them all (`.issues`)."""
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        err = errors[0].error()
        if len(errors) > 1:
            err.message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        err.issues = errors
        raise err


def load_pack(path: str | Path) -> Pack:
    pack, issues = read_pack(path)
    raise_first(issues)
    assert pack is not None         # read_pack gives no pack only with an error
    return pack


def pack_schema() -> dict:
    return PackModel.model_json_schema(by_alias=True)


SPECIAL_PLACEHOLDERS = ("station", "party", "branches", "fine_cny", "refund_cny", "compensation_cny", "clause", "rule",
                        "article")
FORMATS = ("time", "date", "datetime")
# {param:NAME} in a message or title quotes a pack parameter; read loosely ({param: NAME}, any
# text up to "}") so that a misspelt name is an error, not text left in a verdict
PARAM_PLACEHOLDER = re.compile(r"\{\s*param\s*:\s*([^{}]*?)\s*\}")
