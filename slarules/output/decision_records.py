"""One decision log record: its fields, its id, its seal, and the check that tells an edited one.

A record holds what is needed to re-adjudicate a decision and to tell whether the answer is still
the same: the case as it was given, the instant it was judged at (`as_of`, as the verdict states
it), the language of its messages, the packs applied (name, version, digest), `verdict_digest`
(the sha256 of the verdict's compact JSON, the line `slarules batch` writes for it) and
`outcome_digest` (the same less the verdict's `packs` list: what was decided, whichever packs said
it), plus `logged_at`, the wall-clock instant the record was written.

Two hashes make a record checkable by anyone, in any language (docs/decision_log.md has the recipe):

- `id`, the sha256 of the RFC 8785 canonical JSON of `{"as_of", "case", "packs"}`: derived, not
  drawn, so the same decision logged twice (a retried request, a batch run again) has the same id
  and is logged once, while the same case at another instant or under other packs is another
  decision. `logged_at` is outside it: when a decision was written does not make it another one.
- `record_digest`, the sha256 of the RFC 8785 canonical JSON of the whole record less that key:
  any edit to any field (a waybill, a language, a digest, the time it was logged) no longer
  matches it, so `slarules replay` refuses the record at its line instead of replaying a lie.

RFC 8785 (JSON Canonicalization Scheme) fixes key order, number form and string escaping, so Go
or Java recompute the same bytes from the parsed line; the `rfc8785` package writes them here.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import json
import operator
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import rfc8785

from ..errors import CaseError

RECORD_KEYS = ("id", "waybill", "as_of", "lang", "packs", "verdict_digest", "outcome_digest", "case",
               "logged_at", "record_digest")
ID_KEYS = ("as_of", "case", "packs")            # what a decision is: its case, its instant, its packs
PACK_KEYS = ("name", "version", "digest")
LANGS = ("zh", "en")
SEAL = "record_digest"

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
_LOGGED_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z\Z")
_LINE_ID = b'{"id": "sha256:'       # how every record line starts (RECORD_KEYS' order, json.dumps' layout)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NINES = str.maketrans("012345678", "999999999")


def _other_number(text: str) -> bool:
    """Whether JSON text from the standard library may hold a number RFC 8785 writes otherwise: an
    exponent (Python writes one below 1e-4 and from 1e16), a fraction of 0 (12.0 and -0.0: RFC 8785
    writes 12 and 0) or a run of 16 digits (a whole number past 2^53, written as a double would be).
    Substring tests, C-fast; text inside strings can only make it say yes when the answer is no."""
    return ("e+" in text or "e-" in text or ".0," in text or ".0]" in text or ".0}" in text or text.endswith(".0")
            or "9999999999999999" in text.translate(_NINES))


_SORTED = msgspec.json.Encoder(order="sorted")
_encode_text = json.encoder.encode_basestring      # json.dumps(text, ensure_ascii=False), without its set-up
_STRINGS_BYTES = re.compile(_STRINGS.pattern.encode())
_NINES_BYTES = bytes.maketrans(b"012345678e", b"999999999\0")    # e: a byte JSON text never holds, fast to find
_PAST_2_53 = b"9" * 16      # in digits translated by _NINES_BYTES: a number of 16 digits or more
# a character at U+E000 or above (in UTF-8, a byte from 0xEE up starts one): searched in C, where
# max() over the text made an object of each character (5 µs on a served case)
_FROM_U_E000 = re.compile("[\ue000-\U0010ffff]")
_BELOW_0xEE = bytes(range(0xEE))        # deleted by bytes.translate, C-fast: what is left starts such characters


def _other_number_msgspec(data: bytes) -> bool:
    """Whether msgspec's JSON may hold a number RFC 8785 writes otherwise: an exponent (msgspec
    writes 1e16 and 1e21, RFC 8785 10000000000000000 and 1e+21), a fraction of 0 (12.0 and -0.0)
    or a run of 16 digits (a whole number past 2^53, which RFC 8785 refuses). Its fixed notation
    is the shortest digits that read back, as RFC 8785's. Text inside strings can only make it
    say yes when the answer is no."""
    if b".0" in data and (data.endswith(b".0") or b".0," in data or b".0]" in data or b".0}" in data):
        return True
    digits = data.translate(_NINES_BYTES)
    return b"9\0" in digits or _PAST_2_53 in digits


def _same_in_msgspec(data: bytes) -> bool:
    """Whether msgspec's sorted, compact JSON `data` is its value's RFC 8785 form: as
    `_same_in_json`, on UTF-8 bytes (a byte from 0xEE up starts a character at U+E000 or above)."""
    if not data.isascii() and data.translate(None, _BELOW_0xEE):
        return False
    return not _other_number_msgspec(data) or not _other_number_msgspec(_STRINGS_BYTES.sub(b'""', data))


def _same_in_json(text: str) -> bool:
    """Whether the standard library's sorted, compact JSON `text` is its value's RFC 8785 form.

    It is when no number is one the two write differently (a fraction in fixed notation has the
    shortest digits that read back in both) and no character is at U+E000 or above (below it,
    code-point order, Python's key order, is UTF-16 order, RFC 8785's). Strings are escaped alike
    (`"`, `\\` and control characters; the rest as is). Checked on the text: a walk over the value
    in Python cost more than encoding it.
    """
    if not text.isascii() and _FROM_U_E000.search(text):
        return False
    return not _other_number(text) or not _other_number(_STRINGS.sub('""', text))


def _jcs(value: Any, parsed: bool = False) -> bytes:
    """RFC 8785 bytes of `value`: a C encoder's where they are the same (a case written ~10x
    faster by the standard library's, ~20x by msgspec's), else the rfc8785 package's;
    tests/test_replay.py holds each equal to rfc8785 over generated JSON.

    `parsed`: `value` is as slarules' JSON and YAML readers return a document (dicts with text
    keys, lists, text, whole numbers, finite floats, booleans, null and nothing else), so msgspec
    may write it: msgspec would also write a Decimal or a date, which rfc8785 refuses."""
    if type(value) is str:              # a record's other members: text is escaped alike, nothing to order
        try:
            return _encode_text(value).encode("utf-8")
        except UnicodeEncodeError:
            return rfc8785.dumps(value)     # a lone surrogate: rfc8785 says so
    if parsed:
        try:
            data = _SORTED.encode(value)
        except (TypeError, ValueError, OverflowError):
            pass                        # a lone surrogate or a number past 64 bits: rfc8785 decides
        else:
            if _same_in_msgspec(data):
                return data
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        text = None                     # a type JSON has no form for, or NaN: rfc8785 decides (and says why)
    if text is not None and _same_in_json(text):
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            pass                        # a lone surrogate: rfc8785 says so
    return rfc8785.dumps(value)


def canonical(value: Any, parsed: bool = False) -> bytes:
    """RFC 8785 canonical JSON of a JSON value; a value it cannot hold is a CaseError (the case's)."""
    try:
        return _jcs(value, parsed)
    except rfc8785.CanonicalizationError as exc:
        raise CaseError(f"the case cannot be written to a decision log: {exc}",
                        hint="a log holds JSON that any language reads alike (RFC 8785): whole numbers "
                        "within ±2^53, finite numbers, Unicode text") from None


class _Layout:
    """An object of known keys written from its members' JSON in one join (a record is written for
    every served decision): each member's text after its key's, in `keys`' order, between `open_` and
    `close`. The case, the bulk of a record, is encoded once for the id, the seal and the line."""

    def __init__(self, keys: tuple[str, ...], open_: bytes, between: bytes, colon: bytes, close: bytes) -> None:
        self.values = operator.itemgetter(*keys)
        self.keys = [(open_ if n == 0 else between) + rfc8785.dumps(key) + colon for n, key in enumerate(keys)]
        self.close = close

    def __call__(self, members: Mapping[str, bytes]) -> bytes:
        return b"".join([*itertools.chain.from_iterable(zip(self.keys, self.values(members))), self.close])


def _canonical_layout(keys: tuple[str, ...]) -> _Layout:
    """The canonical JSON of an object of these keys from its members' canonical JSON (RFC 8785
    section 3.2.3: keys sorted by their UTF-16 code units, no white space)."""
    return _Layout(tuple(sorted(keys, key=lambda key: key.encode("utf-16-be"))), b"{", b",", b":", b"}")


_ID_OBJECT = _canonical_layout(ID_KEYS)                  # what the id hashes
_SEALED_OBJECT = _canonical_layout(RECORD_KEYS[:-1])     # what the seal hashes: every member but the seal
# A record's line: its members in RECORD_KEYS' order, each value as the canonical JSON already written
# for the hashes (the case is not encoded a third time), with json.dumps' ", " and ": " between them.
_LINE = _Layout(RECORD_KEYS, b"{", b", ", b": ", b"}\n")


@functools.lru_cache(maxsize=256)
def _packs_json(packs: tuple[tuple[str, str, str], ...]) -> bytes:
    return canonical([dict(zip(PACK_KEYS, p, strict=True)) for p in packs])


def _packs_member(packs: list[dict[str, str]] | bytes) -> bytes:
    """The canonical JSON of a decision's packs ({name, version, digest} each): a run's decisions share
    them, so it is written once (cached), not per decision; bytes are that JSON already (`packs_json`)."""
    if isinstance(packs, bytes):
        return packs
    return _packs_json(tuple((p["name"], p["version"], p["digest"]) for p in packs))


_VERDICT_PACKS: dict[tuple[int, ...], tuple[tuple[Any, ...], bytes]] = {}


def packs_json(verdict: Any) -> bytes:
    """The canonical JSON of a Verdict's packs, found by the identity of its PackRef objects: an
    engine's verdicts share them, so a served decision neither builds their dicts nor their key
    (2 µs). The entry holds the objects, so their ids cannot be reused while it stands."""
    key = tuple(map(id, verdict.packs))
    hit = _VERDICT_PACKS.get(key)
    if hit is None:
        if len(_VERDICT_PACKS) >= 64:       # engines come and go (reloads): keep the recent ones
            _VERDICT_PACKS.clear()
        hit = _VERDICT_PACKS[key] = (tuple(verdict.packs), _packs_member(verdict_packs(verdict)))
    return hit[1]


def _members(record: Mapping[str, Any], case: bytes) -> dict[str, bytes]:
    """The canonical JSON of each member of a record but its id and seal; the case given written.
    A run's records share their packs: written once (packs are {name, version, digest}, checked)."""
    members = {k: canonical(record[k]) for k in _TEXT_MEMBERS}
    members["packs"], members["case"] = _packs_member(record["packs"]), case
    return members


_TEXT_MEMBERS = tuple(k for k in RECORD_KEYS[1:-1] if k not in ("packs", "case"))     # text in every record slarules writes


def _id_from(members: Mapping[str, bytes]) -> str:
    return sha256(_ID_OBJECT(members))


def _seal_from(members: dict[str, bytes], ident: str) -> str:
    """The seal of a record from its members' canonical JSON; `members` gains the id's, as the line holds it."""
    members["id"] = canonical(ident)
    return sha256(_SEALED_OBJECT(members))


def decision_id(case: Any, as_of: str, packs: list[dict[str, str]] | bytes, parsed: bool = False) -> str:
    """The id of a decision: sha256 of the canonical JSON of {"as_of", "case", "packs"}
    (`parsed`: the case is as slarules' readers return it, see `_jcs`; `packs` may be `packs_json`'s)."""
    return sha256(_ID_OBJECT({"as_of": canonical(as_of), "case": canonical(case, parsed), "packs": _packs_member(packs)}))


def record_digest(record: Mapping[str, Any]) -> str:
    """The seal of a record: sha256 of the canonical JSON of every member but `record_digest`."""
    return _seal_from(_members(record, canonical(record["case"])), record["id"])


def verdict_digest(verdict_json: str | bytes) -> str:
    """sha256 of a verdict's compact JSON (`Verdict.to_json(indent=None)`, a batch output line)."""
    data = verdict_json.encode("utf-8") if isinstance(verdict_json, str) else verdict_json
    return sha256(data.rstrip(b"\n"))


def without_packs(line: bytes) -> bytes:
    """A compact verdict less its `packs` list: what the verdict decided, whichever packs said it."""
    start = line.find(b'"packs": [')
    end = line.find(b'], "findings": ', start)
    return line if start < 0 or end < 0 else line[:start] + line[end + 1:]


def logged_at(instant: datetime | str | None = None) -> str:
    """A wall-clock instant as a record states it: RFC 3339 in UTC, to the millisecond (default: now)."""
    if instant is None:
        return _now()
    if isinstance(instant, str):
        instant = datetime.fromisoformat(instant)
    if instant.tzinfo is None:
        raise ValueError("logged_at needs an instant with its offset")
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_second: tuple[int, str] = (-1, "")     # the last second written, and its text up to the millisecond


def _now() -> str:
    """logged_at() of now: a server writes it for every decision, so a second's text is made once
    (strftime of a datetime cost 2 µs a record); the same text as logged_at(datetime.now(UTC))."""
    global _second
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    known = _second                 # read once: another thread may replace it meanwhile
    if known[0] != seconds:
        known = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds)))
    return f"{known[1]}{nanoseconds // 1_000_000:03d}Z"


def _case_json(case: Any, parsed: bool = False) -> bytes:
    """The case's canonical JSON, as its id, its seal and its record line hold it: a Decimal or a
    date from a Python caller is written as its text."""
    try:
        return _jcs(case, parsed)
    except rfc8785.CanonicalizationError as exc:
        if "unsupported type" not in str(exc):
            return canonical(case)        # raises the CaseError that says why
    return canonical(json.loads(json.dumps(case, ensure_ascii=False, default=str)))


def seal(fields: Mapping[str, Any], parsed: bool = False) -> tuple[str, bytes]:
    """(id, log line) of a record from its fields (every key of RECORD_KEYS but id and the seal);
    `parsed`: the case is as slarules' readers return it (see `_jcs`)."""
    members = _members(fields, _case_json(fields["case"], parsed))
    ident = _id_from(members)
    members[SEAL] = canonical(_seal_from(members, ident))
    if _PAST_2_53 in members["case"].translate(_NINES_BYTES):
        # a float of 1e16 or more is written in canonical form as whole digits, which a reader in
        # Python takes for an integer that RFC 8785 then refuses: the line keeps its float form
        members["case"] = json.dumps(fields["case"], ensure_ascii=False, default=str).encode("utf-8")
    return ident, _LINE(members)


def verdict_packs(verdict: Any) -> list[dict[str, str]]:
    """A Verdict's packs as a decision names them: {name, version, digest} each."""
    return [{"name": p.name, "version": p.version, "digest": p.digest} for p in verdict.packs]


def record_line(case: Any, verdict_json: str | bytes, lang: str, at: str, verdict: Any = None,
                parsed: bool = False) -> tuple[str, bytes]:
    """(id, log line) of one decision: `case` as given (a dict), the verdict as its compact JSON,
    `at` its logged_at. `verdict`, the Verdict itself when the caller has it, spares parsing the
    JSON back for its waybill, as_of and packs (the server's hot path); `parsed`: the case is as
    slarules' readers return it (see `_jcs`)."""
    text = verdict_json if isinstance(verdict_json, str) else verdict_json.decode("utf-8")
    data = verdict_json if isinstance(verdict_json, bytes) else text.encode("utf-8")
    packs: list[dict[str, Any]] | bytes
    if verdict is None:
        doc = json.loads(text)
        waybill, as_of, packs = doc["waybill"], doc["as_of"], [{k: p[k] for k in PACK_KEYS} for p in doc["packs"]]
    else:
        waybill, as_of, packs = verdict.waybill, verdict.as_of, packs_json(verdict)
    return seal({"waybill": waybill, "as_of": as_of, "lang": lang, "packs": packs,
                 "verdict_digest": verdict_digest(data),
                 "outcome_digest": verdict_digest(without_packs(data)),
                 "case": case, "logged_at": at}, parsed)


def line_id(line: bytes) -> str | None:
    """The id a record line states, read from where slarules writes it (else parsed); None if none."""
    if line.startswith(_LINE_ID) and line[79:80] == b'"':
        return line[8:79].decode("ascii", "replace")
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    found = doc.get("id") if isinstance(doc, dict) else None
    return found if isinstance(found, str) else None


def case_document(case: Any) -> Any:
    """The case as given: a dict as it is; a model (facts.Case, FastCase) as the JSON it holds."""
    if isinstance(case, dict):
        return case
    if hasattr(case, "model_dump"):
        return case.model_dump(mode="json", exclude_none=True)
    import msgspec
    return msgspec.to_builtins(case)


# ---- checking a record read back -------------------------------------------------------------

UNSEALED = "an unsealed record"
EDITED = "a record edited after it was logged"


def problem(doc: Any) -> str | None:
    """What is wrong with a parsed record, or None: shape, types, then its seal and its id."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    if SEAL not in doc and "id" in doc and "case" in doc:
        return (f"{UNSEALED}: it has no `{SEAL}` (written before slarules sealed its records), so an "
                "edit to it cannot be told")
    missing = [k for k in RECORD_KEYS if k not in doc]
    if missing:
        return "missing " + ", ".join(missing)
    extra = [k for k in doc if k not in RECORD_KEYS]
    if extra:
        return "unexpected " + ", ".join(f"`{k}`" for k in extra)
    for key in ("id", "waybill", "as_of", "lang", "verdict_digest", "outcome_digest", "logged_at", SEAL):
        if not isinstance(doc[key], str):
            return f"`{key}` is not a string"
    packs = doc["packs"]
    if not isinstance(packs, list) or not all(
            isinstance(p, dict) and sorted(p) == sorted(PACK_KEYS) and all(isinstance(p[k], str) for k in PACK_KEYS)
            for p in packs):
        return "`packs` is not a list of {name, version, digest}"
    if not isinstance(doc["case"], dict):
        return "`case` is not a JSON object"
    try:
        members = _members(doc, _jcs(doc["case"]))
        sealed = _seal_from(members, doc["id"]) == doc[SEAL]
        same_id = _id_from(members) == doc["id"]
    except rfc8785.CanonicalizationError as exc:
        return f"it holds what canonical JSON cannot ({exc})"
    if not sealed:
        changed = ("its case, as_of or packs" if not same_id else
                   "one of its waybill, lang, verdict_digest, outcome_digest, logged_at or record_digest")
        return f"{EDITED}: its `{SEAL}` does not match what it holds ({changed} changed)"
    if not same_id:
        return f"{EDITED}: its `id` does not match its case, as_of and packs (it was rewritten and sealed again)"
    if doc["lang"] not in LANGS:
        return "`lang` is not zh or en"
    for key in ("verdict_digest", "outcome_digest"):
        if not _DIGEST.match(doc[key]):
            return f"`{key}` is not sha256:<64 hex digits>"
    if not _LOGGED_AT.match(doc["logged_at"]):
        return "`logged_at` is not an RFC 3339 UTC instant (YYYY-MM-DDTHH:MM:SS.sssZ)"
    return None
