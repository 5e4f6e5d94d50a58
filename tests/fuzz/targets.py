"""Fuzz targets for slarules: bytes in, and any exception but SlaRulesError is a crash.

EngineError is a SlaRulesError only so that a service never sees anything else;
it means slarules met what it did not foresee, so here it is a crash too (with
the poison-row guard in place, an OverflowError deep in the engine arrives as one).

Each target is a pair. `check(raw)` is the target proper: it feeds raw bytes (a
case, a pack, some JSON Lines) through slarules the way a user's input goes, and
lets only a non-SlaRulesError escape. `render(data)` turns the fuzzer's bytes
into such raw input: as they are, or, when they start with a NUL byte, through
the structure-aware mode, which takes a shipped example and sets a few chosen
fields to boundary values (timestamps across the whole `datetime` range, huge
numbers, odd zones). Crashes are saved in their raw form, so a regression file
is a readable case or pack and replays through `check` without atheris.

Raw input may start with one option line, `#!{"as_of": ..., "lang": "en"}`: the
instant or language a caller passes beside the text (`--as-of`, `--lang`).
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
RULES = ROOT / "rules"
NOW = "2026-05-10T00:00:00+00:00"      # "now" for a case without as_of, fixed so a run replays exactly
STRUCTURED = b"\x00"                    # the first byte that selects the structure-aware mode
os.environ["SLARULES_STRICT"] = "1"      # a columnar failure is a crash here, not a quiet per-case fallback

# ---- raw input: an optional option line, then the text --------------------------------------


def split_options(raw: bytes) -> tuple[dict, bytes]:
    """The `#!{...}` option line (as a dict; {} when absent or unreadable) and the rest."""
    if not raw.startswith(b"#!"):
        return {}, raw
    head, _, rest = raw.partition(b"\n")
    try:
        options = json.loads(head[2:])
    except (ValueError, RecursionError):
        return {}, rest
    return (options if isinstance(options, dict) else {}), rest


def with_options(options: dict, text: bytes) -> bytes:
    return (b"#!" + json.dumps(options).encode() + b"\n" if options else b"") + text


def _lang(options: dict) -> str:
    return "en" if options.get("lang") == "en" else "zh"


def _as_of(options: dict) -> str | None:
    value = options.get("as_of")
    return value if isinstance(value, str) else None


def _text(raw: bytes) -> str | None:
    """The text as `read_document` decodes a file (UTF-8, BOM dropped); None where it would refuse it."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def shown_safely(exc) -> None:
    """An error as every output shows it (a message, an error record) is UTF-8 with no control, bidi or
    surrogate character and of bounded length (echo.py): else this input is a crash."""
    from slarules.echo import MESSAGE_LIMIT, UNSAFE
    for text in (str(exc), json.dumps(exc.to_dict(), ensure_ascii=False)):
        text.encode("utf-8")
        assert not UNSAFE.search(text), f"an unsafe character echoed: {text[:300]!r}"
        assert len(text) < 4 * MESSAGE_LIMIT, f"a {len(text):,}-character message"


def records_safe(lines) -> None:
    """Error records as a batch writes them: UTF-8, nothing unsafe (echo.py)."""
    from slarules.echo import UNSAFE
    for line in lines:
        line.encode("utf-8")
        assert not UNSAFE.search(line), f"an unsafe character in an error record: {line[:300]!r}"


# ---- shared state: built once per process ------------------------------------------------------

_engine = None
_tmp: Path | None = None


def engine():
    global _engine
    if _engine is None:
        from slarules import Engine
        _engine = Engine.default()
    return _engine


def scratch() -> Path:
    global _tmp
    if _tmp is None:
        _tmp = Path(tempfile.mkdtemp(prefix="slarules-fuzz-"))
    return _tmp


# ---- target 1: one case, read, validated and adjudicated -----------------------------------------

def check_case(raw: bytes) -> None:
    """A case through both readers (Pydantic's `load_case_text`, and the CLI's `parse_text` + fast
    model), each adjudicated and rendered as JSON: what `slarules adjudicate` and a library caller do."""
    from slarules.errors import EngineError, SlaRulesError
    from slarules.facts import load_case_text
    from slarules.case.fast import case_of
    from slarules.case.sources import parse_text

    options, body = split_options(raw)
    text = _text(body)
    if text is None:
        return
    readers = (lambda: load_case_text(text, "<fuzz>"),
               lambda: (lambda doc: case_of(doc.data, doc))(parse_text(text, "<fuzz>")))
    for read in readers:
        try:
            case = read()
            as_of = _as_of(options)
            if as_of is None and case.as_of is None:
                as_of = NOW                 # not the clock, so a run replays exactly
            engine().adjudicate(case, as_of=as_of, lang=_lang(options)).to_json()
        except EngineError:
            raise
        except SlaRulesError as exc:
            shown_safely(exc)


# ---- target 2: a pack, read and compiled with the shipped catalogue -------------------------------

SHIPPED_PACKS = ("taobao", "uc", "regulations")
PROBE_CASES = ("tb1-late", "rg1-online-chat", "uc2-out-of-time")   # cases a compiled pack is run on
_fixtures: dict = {}


def pack_fixtures() -> dict:
    """What every pack input is compiled and run with, read once: YAML parsing is the slow part."""
    if not _fixtures:
        from slarules.engine import load_catalogue
        from slarules.facts import load_case_text
        from slarules.packs.model import load_pack
        texts = [(EXAMPLES / "cases" / f"{name}.yaml").read_text(encoding="utf-8") for name in PROBE_CASES]
        _fixtures.update(
            packs={n: load_pack(RULES / f"{n}.yaml") for n in SHIPPED_PACKS}, clauses=load_catalogue(),
            cases=[load_case_text(t) for t in texts],
            rows=[(i + 1, json.dumps(yaml.safe_load(t)).encode() + b"\n") for i, t in enumerate(texts)])
    return _fixtures


def check_pack(raw: bytes) -> None:
    """A pack file through `read_pack`, `check_packs` and `compile_packs` with the shipped catalogue
    (and the shipped packs named in option `with`), then run on a few example cases: a pack that
    compiles must adjudicate. Option `columnar` also runs them through the batch paths."""
    from slarules.packs.compiler import check_packs, compile_packs
    from slarules.engine import Engine
    from slarules.errors import EngineError, SlaRulesError
    from slarules.packs.model import read_pack

    options, body = split_options(raw)
    path = scratch() / "pack.yaml"
    path.write_bytes(body)
    pack, issues = read_pack(path)
    for issue in issues:
        shown_safely(issue.error())
    if pack is None:
        assert issues, "read_pack gave neither a pack nor an issue"
        return
    fixed = pack_fixtures()
    others = options.get("with") if isinstance(options.get("with"), list) else []
    packs = [pack] + [fixed["packs"][n] for n in dict.fromkeys(others) if n in SHIPPED_PACKS]
    check_packs(packs, fixed["clauses"])
    try:
        program = compile_packs(packs, fixed["clauses"])
    except EngineError:
        raise
    except SlaRulesError:
        return
    packed = Engine(program, fixed["clauses"])
    lang = _lang(options)
    for case in fixed["cases"]:
        try:
            packed.adjudicate(case, lang=lang).to_json()
        except EngineError:
            raise
        except SlaRulesError:
            pass
    if options.get("columnar"):
        _batch_rows(packed, fixed["rows"], as_of=None, lang=lang)


# ---- target 3: a batch chunk ---------------------------------------------------------------------------

def _batch_rows(eng, rows: list, *, as_of: str | None, lang: str) -> None:
    """One chunk through `adjudicate_rows` on the columnar path (with its per-case fallback) and on the
    per-case path alone: each row ends as exactly one verdict or error record, the same on both."""
    from slarules.batch.runner import adjudicate_rows
    outputs = []
    for backend in ("polars", "durable"):
        done = adjudicate_rows(eng, rows, source="<fuzz>", raw=True, as_of=as_of, now=NOW, lang=lang,
                               backend=backend)
        done.jsonl()
        done.statement.to_dict()
        records_safe(e for _, e in done.errors)
        unforeseen = [e for _, e in done.errors if json.loads(e)["error"] == "EngineError"]
        assert not unforeseen, f"an EngineError record ({backend}): {unforeseen[0]}"
        numbers = sorted([n for n, _ in done.verdicts] + [n for n, _ in done.errors])
        assert numbers == sorted(n for n, _ in rows), \
            f"rows in != verdicts + errors ({backend}): rows {[n for n, _ in rows]}, out {numbers}"
        outputs.append((done.verdicts, done.errors))
    if outputs[0] != outputs[1]:
        raise Disagreement(outputs[0], outputs[1])


class Disagreement(AssertionError):
    """The columnar and per-case paths gave different verdicts or errors for the same rows.

    `detail` names the first verdict field that differs, so two causes are two crashes."""

    def __init__(self, columnar, per_case):
        self.detail, shown = "errors", (columnar[1], per_case[1])
        if [n for n, _ in columnar[0]] != [n for n, _ in per_case[0]]:
            self.detail, shown = "rows", (columnar, per_case)   # a verdict on one path, an error on the other
        else:
            for a, b in zip(columnar[0], per_case[0]):
                if a != b:
                    x, y = json.loads(a[1]), json.loads(b[1])
                    self.detail = next((k for k in {**x, **y} if x.get(k) != y.get(k)), "text")
                    shown = ((a[0], x.get(self.detail)), (b[0], y.get(self.detail)))
                    break
        super().__init__(f"columnar and per-case paths differ in `{self.detail}`:\n"
                         f"columnar: {str(shown[0])[:2000]}\nper-case: {str(shown[1])[:2000]}")


def check_batch(raw: bytes) -> None:
    """JSON Lines read as `slarules batch` reads them (batch_io chunks of option `chunk` lines, default
    2), each chunk adjudicated; rows in = verdicts + error records, for every chunk and in total."""
    from slarules.batch import io as batch_io
    from slarules.errors import EngineError, SlaRulesError

    options, body = split_options(raw)
    path = scratch() / "cases.jsonl"
    path.write_bytes(body)
    size = options.get("chunk")
    size = size if type(size) is int and 1 <= size <= 8 else 2
    seen = 0
    try:
        for chunk in batch_io.read_chunks(str(path), "jsonl", size, None):
            rows = chunk.rows.read()
            seen += len(rows)
            _batch_rows(engine(), rows, as_of=_as_of(options), lang=_lang(options))
    except EngineError:
        raise
    except SlaRulesError as exc:
        shown_safely(exc)
        return
    expected = sum(1 for line in body.split(b"\n") if line.strip())
    assert seen == expected, f"the reader gave {seen} rows for {expected} non-blank lines"


# ---- seeds ---------------------------------------------------------------------------------------------

def _example_cases() -> list[bytes]:
    return [p.read_bytes() for p in sorted((EXAMPLES / "cases").glob("*.yaml"))]


def _batch_lines(n: int = 12) -> list[bytes]:
    lines = (EXAMPLES / "batch" / "cases.jsonl").read_bytes().splitlines(keepends=True)
    return lines[:: max(1, len(lines) // n)][:n]


def _structured_seeds(count: int = 24) -> list[bytes]:
    """Bytes for the structure-aware mode, from a fixed generator: each picks other fields and values."""
    import random
    rng = random.Random(13)
    return [STRUCTURED + bytes(rng.randrange(256) for _ in range(64)) for _ in range(count)]


def _hostile_lines() -> list[bytes]:
    """Example rows with a lone surrogate escaped, a terminal sequence in a key, a host zone, a skipped time."""
    line = _batch_lines(1)[0].rstrip(b"\n")
    assert line.startswith(b'{"waybill":"') and b'"timezone":"Asia/Shanghai"' in line, "the example rows' layout"
    return [line.replace(b'"waybill":"', b'"waybill":"\\ud800', 1),
            line[:-1] + b', "\\u001b]0;owned\\u0007\\r": 1}',
            line.replace(b'"timezone":"Asia/Shanghai"', b'"timezone":"localtime"', 1),
            line.replace(b'"timezone":"Asia/Shanghai"', b'"timezone":"America/New_York"', 1)
            .replace(b'"as_of":"2026-05-05T09:29:00+08:00"', b'"as_of":"2026-03-08T02:30:00"', 1)]


def seeds(target: str) -> list[bytes]:
    if target == "case":
        lines = _batch_lines()
        return _example_cases() + lines + [with_options({"lang": "en"}, lines[0])] + _hostile_lines() + \
            _structured_seeds()
    if target == "pack":
        packs = [(RULES / f"{n}.yaml").read_bytes() for n in SHIPPED_PACKS]
        hostile = packs[1].replace(b"\ntimezone: Asia/Shanghai\n", b'\ntimezone: "Asia/\\ud800"\n', 1)
        return packs + [with_options({"columnar": True}, packs[1]), hostile] + _structured_seeds()
    if target == "batch":
        lines = _batch_lines()
        return [b"".join(lines[i:i + 3]) for i in range(0, len(lines), 3)] + \
            [b"\n" + lines[0] + b"{}\n\n" + lines[1].rstrip(b"\n"), with_options({"chunk": 1}, lines[2])] + \
            [b"\n".join(_hostile_lines()) + b"\n"] + _structured_seeds()
    raise KeyError(target)


# ---- structure-aware mode: a shipped example with a few fields set to chosen values ----------------

def _timestamp_samples() -> list[str]:
    out = []
    for date in ("0001-01-01", "0001-01-02", "1969-12-31", "1970-01-01", "2000-01-01", "2026-05-02",
                 "2090-01-01", "9999-12-30", "9999-12-31"):
        for clock in ("00:00:00", "11:59:59", "12:00:00", "23:59:59", "23:59:59.999999"):
            for offset in ("", "Z", "+08:00", "+14:00", "-14:00", "+23:59", "-23:59"):
                out.append(f"{date}T{clock}{offset}")
    return out


TIMESTAMPS = _timestamp_samples()
OFFSETS = ("", "Z", "+00:00", "+08:00", "+14:00", "-12:00", "+05:45", "+23:59:59", "-23:59")
ZONES = ("Asia/Shanghai", "UTC", "Pacific/Kiritimati", "Etc/GMT+12", "Etc/GMT-14", "America/St_Johns",
         "Asia/Kathmandu", "Europe/London", "", "Mars/Base", "../zoneinfo", "utc", "localtime", "posixrules",
         "Factory", "America/New_York", "Asia/\ud800", "\x1b[31mRed\r", "Asia/Shanghai\u202e")
# naive local times that New York's clocks skipped (a gap) or showed twice (a fold)
DST_TIMES = ("2026-03-08T02:30:00", "2026-03-08T02:00:00", "2026-03-08T03:00:00", "2026-11-01T01:30:00",
             "2026-11-01T01:00:00", "2026-11-01T02:00:00")
NUMBER_TEXTS = ("1e-400", "1e400", "-0", "0.0", "1E+2", "123456789012345678901234567890", "99999999999999.99",
                "0.001", "10000.01", "NaN", "-Infinity", "18446744073709551616")
STRINGS = ("", " ", "\ufeff", "\x00", "A" * 65, "ＡＢ", "taobao", "proxy", "arrival", "signed", "query", "phone",
           "delay", "BX-1", "a\nb", "{", "%s", "9999-12-31T23:59:59", "0001-01-01", "+14:00", "NaN",
           # text that is no Unicode text, or that a terminal obeys: the text boundary and echo.py
           "\ud800", "BX\udfff", "\udbff\udc00", "\x1b]0;owned\x07", "\x1b[2J\x1b[H", "\r\x9b31m", "\u202eevil",
           "a\u2066b", "k" * 5000)
HOSTILE_KEYS = ("\x1b[2Jkey", "k\ud800", "\u202ex", "\r", "K" * 3000)
NUMBERS = (0, 1, -1, 7, 2**31, 2**63, 10**16, 10**30, 10**400, 0.1, 8.5, -0.0, 1e308, 5e-324, True, False)


def pick(fdp, values) -> Any:
    return fdp.PickValueInList(list(values))


class _Raw(str):
    """A number written as it is (1e-400, NaN, 30 digits): no Python float holds it."""


def timestamp(fdp) -> str:
    """A timestamp string: a boundary sample, or any instant of year 1..9999 with an odd offset."""
    if fdp.ConsumeBool():
        return pick(fdp, TIMESTAMPS)
    year = pick(fdp, [1, 2, 1969, 1970, 2026, 9998, 9999]) if fdp.ConsumeBool() \
        else fdp.ConsumeIntInRange(1, 9999)
    month, day = fdp.ConsumeIntInRange(1, 12), fdp.ConsumeIntInRange(1, 31)
    h, m, s = fdp.ConsumeIntInRange(0, 24), fdp.ConsumeIntInRange(0, 59), fdp.ConsumeIntInRange(0, 60)
    sep = pick(fdp, ["T", "T", " ", "t"])
    frac = pick(fdp, ["", "", ".5", ".999999", ".0000001"])
    return f"{year:04d}-{month:02d}-{day:02d}{sep}{h:02d}:{m:02d}:{s:02d}{frac}{pick(fdp, OFFSETS)}"


def any_value(fdp) -> Any:
    kind = fdp.ConsumeIntInRange(0, 6)
    if kind == 0:
        return timestamp(fdp)
    if kind == 1:
        return pick(fdp, STRINGS)
    if kind == 2:
        return _Raw(pick(fdp, NUMBER_TEXTS))
    if kind == 3:
        return pick(fdp, NUMBERS)
    if kind == 4:
        return pick(fdp, [None, [], {}, ["delay"], {"a": 1}])
    if kind == 5:          # any code points, lone surrogates and controls included
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 12)) if fdp.ConsumeBool() \
            else fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 12))
    return fdp.ConsumeIntInRange(-(2**64), 2**64)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value in nested dicts and lists (the root excluded)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    out = []
    for k, v in items:
        out += [prefix + (k,)] + paths(v, prefix + (k,))
    return out


_DELETE = object()


def put(root: Any, path: tuple, value: Any) -> None:
    """Set (or, with _DELETE, remove) the value at `path`, making missing dicts on the way."""
    node = root
    for k in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(k, {})
        elif isinstance(node, list) and isinstance(k, int) and k < len(node):
            node = node[k]
        else:
            return
    last = path[-1]
    if isinstance(node, list) and not (isinstance(last, int) and last < len(node)):
        return
    if isinstance(node, (dict, list)):
        if value is _DELETE:
            node.pop(last, None) if isinstance(node, dict) else node.pop(last)
        else:
            node[last] = value


CASE_TIMES = [("as_of",)] + [("complaint", name) for name in
                             ("received_at", "first_contact_at", "plan_at", "closed_at", "feedback_at",
                              "connected_at", "identity_confirmed_at")]


def mutate_case(fdp, case: dict) -> dict:
    """Set 1 to 4 of a case's fields; timestamps most often, as instants carry the riskiest arithmetic."""
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        action = fdp.ConsumeIntInRange(0, 7)
        scans = case.get("scans") if isinstance(case.get("scans"), list) else []
        if action <= 2 and scans:
            put(case, ("scans", fdp.ConsumeIntInRange(0, len(scans) - 1), "at"), timestamp(fdp))
        elif action <= 4:
            put(case, pick(fdp, CASE_TIMES), timestamp(fdp))
        elif action == 5:
            case["timezone"] = pick(fdp, ZONES)
            if case["timezone"] == "America/New_York" and scans:      # a local time at a change of its clocks
                put(case, ("scans", fdp.ConsumeIntInRange(0, len(scans) - 1), "at"), pick(fdp, DST_TIMES))
        elif action == 6 and isinstance(case.setdefault("scans", []), list):
            case["scans"].append(
                {"type": pick(fdp, ["collect", "dispatch", "arrival", "signed", "lost"]),
                 "station": pick(fdp, ["ST-003", "BT-03", "D-01", ""]), "at": timestamp(fdp)})
        elif fdp.ConsumeIntInRange(0, 5) == 0:        # an unknown key to echo
            case[pick(fdp, HOSTILE_KEYS)] = any_value(fdp)
        elif where := paths(case):
            put(case, pick(fdp, where), _DELETE if fdp.ConsumeIntInRange(0, 4) == 0 else any_value(fdp))
    return case


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(    # a _Raw as a plain scalar, read back however YAML reads it
    _Raw, lambda d, v: d.represent_scalar(d.resolve(yaml.ScalarNode, str(v), (True, False)), str(v)))


def dump(data: Any, fdp, fmt: str | None = None) -> bytes:
    """`data` as JSON (one line) or YAML text, by the fuzzer's choice unless `fmt` says."""
    fmt = fmt or pick(fdp, ["json", "yaml"])
    if fmt == "yaml":      # lone surrogates as YAML escapes (PyYAML writes "\ud800")
        return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000).encode(
            "utf-8", "surrogatepass")
    raws: list[str] = []

    def mark(o):
        if isinstance(o, _Raw):
            raws.append(str(o))
            return f"\x01{len(raws) - 1}\x01"
        if isinstance(o, dict):
            return {k: mark(v) for k, v in o.items()}
        return [mark(v) for v in o] if isinstance(o, list) else o
    text = json.dumps(mark(data), ensure_ascii=fdp.ConsumeBool())
    for i, r in enumerate(raws):
        text = text.replace(f'"\\u0001{i}\\u0001"', r, 1)
    return text.encode("utf-8", "surrogatepass")    # unescaped, a lone surrogate is bytes no UTF-8 has


_cases: list[dict] | None = None


def base_cases() -> list[dict]:
    global _cases
    if _cases is None:
        _cases = [yaml.safe_load(t) for t in _example_cases()] + [json.loads(t) for t in _batch_lines(4)]
    return _cases


def caller_options(fdp, **extra) -> dict:
    out = {"as_of": timestamp(fdp)} if fdp.ConsumeIntInRange(0, 3) == 0 else {}
    if fdp.ConsumeBool():
        out["lang"] = "en"
    return {**out, **extra}


def render_case(fdp) -> bytes:
    case = mutate_case(fdp, copy.deepcopy(pick(fdp, base_cases())))
    return with_options(caller_options(fdp), dump(case, fdp))


JUNK_LINES = (b"", b"{}", b"[]", b"null", b'{"waybill": 1}', b"\xff\xfe", b"\xef\xbb\xbf{}", b" \r",
              b'{"waybill": "A"}\r', b'{"waybill": "A", "waybill": "B"}', b"[" * 5000,
              b'{"waybill": "BX\\ud800"}', b'{"waybill": "BX", "k\\u001b[2J\\udfff": 1}', b'{"waybill": "A\xed\xa0\x80"}')


def render_batch(fdp) -> bytes:
    lines = []
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        if fdp.ConsumeIntInRange(0, 5) == 0:
            lines.append(pick(fdp, JUNK_LINES))
        else:
            lines.append(dump(mutate_case(fdp, copy.deepcopy(pick(fdp, base_cases()))), fdp, "json"))
    options = caller_options(fdp, chunk=fdp.ConsumeIntInRange(1, 4))
    return with_options(options, b"\n".join(lines) + pick(fdp, [b"", b"\n"]))


PARAM_VALUES = {
    "duration": ["0s", "1s", "30m", "24h", "999999999d", "99999999999d", "2562047788h", "-1d", "1.5h"],
    "time": ["00:00", "23:59:59", "24:00", "12:00:00.5", "T12:00", "12:00+08:00", "noon"],
    "int": [0, -1, 1, 9999, -9999, 10**18, 10**30, "1"],
    "money": ["0", "-1", "0.001", "1e-400", 10**20, "NaN", 99999999999999.99],
    "date": ["0001-01-01", "9999-12-31", "2024-02-29"],
    "instant": ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "2026-05-02T12:00:00"],
}
PACK_TOKENS = ["as_of", "signed_at", "collected_at", "reference_arrival", "complaint.received_at",
               "parcel.weight_kg", "complaint.issues", "classification.late", "complaint_level", "nope.fact",
               {"fact": "as_of"}, {"fact": "signed_at"}, {"param": "cutoff"}, {"param": "nope"},
               {"fact": "as_of", "gt": {"fact": "signed_at"}}, {"fact": "complaint.issues", "contains": "delay"},
               {"fact": "parcel.weight_kg", "in": [1, "x"]}, {"all": []}, {"any": [{"all": [{"any": []}]}]},
               "add", "add_years", "minutes_after", "local_date", "cutoff_deadline", "liability", "fine",
               "classification", "sending_station", "hub", "{as_of}", "{as_of|date}", "{as_of|nope}", "{{", "}",
               "{station}", "{branches}", "{x:%Y}", "{signed_at!r}", "TB-1", "XX-9", "Mars/Base", "UTC",
               "{param:cutoff}", "{param: same_day_by}", "{param:nope}", "{param:}", "{{param:cutoff}}",
               "regulations", "taobao", "uc", {"type": "duration", "value": "1d"}]


def mutate_pack(fdp, pack: dict) -> dict:
    """Set 1 to 3 nodes of a pack: a parameter to a boundary value of its type, a node to a pack token or
    any value, a node gone, or a list item twice."""
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        action = fdp.ConsumeIntInRange(0, 5)
        params = pack.get("parameters") if isinstance(pack.get("parameters"), dict) else {}
        if action <= 1 and params:
            name = pick(fdp, sorted(params))
            kind = params[name].get("type") if isinstance(params[name], dict) else None
            put(pack, ("parameters", name, "value"),
                pick(fdp, PARAM_VALUES.get(kind, PARAM_VALUES["int"])))
            continue
        where = paths(pack)
        if not where:
            break
        path = pick(fdp, where)
        if action == 2:
            put(pack, path, copy.deepcopy(pick(fdp, PACK_TOKENS)))
        elif action == 3:
            put(pack, path, _DELETE)
        elif action == 4:
            lists = [p for p in where if isinstance(_get(pack, p), list) and _get(pack, p)]
            if lists:
                items = _get(pack, pick(fdp, lists))
                items.append(copy.deepcopy(items[fdp.ConsumeIntInRange(0, len(items) - 1)]))
        else:
            put(pack, path, any_value(fdp))
    return pack


def _get(root: Any, path: tuple) -> Any:
    for k in path:
        root = root[k]
    return root


_packs: dict[str, dict] | None = None


def render_pack(fdp) -> bytes:
    global _packs
    if _packs is None:
        _packs = {n: yaml.safe_load((RULES / f"{n}.yaml").read_text(encoding="utf-8")) for n in SHIPPED_PACKS}
    name = pick(fdp, list(SHIPPED_PACKS))
    others = [n for n in SHIPPED_PACKS if n != name and fdp.ConsumeIntInRange(0, 3) == 0]
    if fdp.ConsumeIntInRange(0, 3) == 0:      # a layer over a shipped pack: some of its parameters, changed
        params = _packs[name].get("parameters", {})
        pack = mutate_pack(fdp, {"pack": f"{name}_layer", "version": "1", "extends": name,
                                 "parameters": copy.deepcopy({k: v for k, v in params.items() if fdp.ConsumeBool()})})
        others.insert(0, name)
    else:
        pack = mutate_pack(fdp, copy.deepcopy(_packs[name]))
    options = {"with": others} if others else {}
    if fdp.ConsumeIntInRange(0, 7) == 0:      # ~0.2 s each: the columnar form is built per pack
        options["columnar"] = True
    if fdp.ConsumeBool():
        options["lang"] = "en"
    return with_options(options, dump(pack, fdp, "yaml"))


# ---- crashes: a key per distinct one, and a smaller input that gives the same ---------------------

def crash_key(exc: BaseException) -> str:
    """Exception type and the innermost frame in slarules (else in these checks): one key per distinct crash."""
    import traceback
    detail = getattr(exc, "detail", None)        # a Disagreement names the field that differs
    if detail:
        return f"{type(exc).__name__}-{detail}"
    frames = traceback.extract_tb(exc.__traceback__)
    package = str(Path(__import__("slarules").__file__).parent)
    where = ([f for f in frames if f.filename.startswith(package)] or frames[-1:])[-1]
    return f"{type(exc).__name__}-{Path(where.filename).stem}-{where.name.strip('<>')}-L{where.lineno}"


def crash_of(target: str, raw: bytes) -> str | None:
    try:
        TARGETS[target][0](raw)
    except Exception as exc:
        return crash_key(exc)
    return None


def _unparse(target: str, options: dict, data: Any) -> bytes:
    if target == "batch":
        lines = [d if isinstance(d, bytes) else json.dumps(d, ensure_ascii=False).encode() for d in data]
        return with_options(options, b"\n".join(lines) + b"\n")
    text = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=120)
    return with_options(options, text.encode())


def minimize(target: str, raw: bytes) -> bytes:
    """`raw` with every option, key, list item or line removed that the crash does not need (one greedy
    pass), written as block YAML or JSON Lines; when the crash does not survive being re-written (the
    reader itself crashes, say), just the lines it does not need removed."""
    from slarules.errors import EngineError, SlaRulesError
    from slarules.case.sources import json_data, parse_text

    def line_data(line: bytes) -> Any:
        try:
            return json_data(line.decode("utf-8"), "<line>")
        except (SlaRulesError, UnicodeDecodeError):
            return line                # not JSON: kept as it is
    key = crash_of(target, raw)
    options, body = split_options(raw)
    try:
        data = [line_data(line) for line in body.split(b"\n") if line.strip()] if target == "batch" \
            else parse_text(body.decode("utf-8-sig"), "<fuzz>").data
    except Exception:                  # unreadable, or the reader is what crashes: cut lines instead
        data = None
    if key is None:
        return raw
    if data is None or crash_of(target, _unparse(target, options, data)) != key:
        lines, i = body.split(b"\n"), 0
        while i < len(lines):
            trial = lines[:i] + lines[i + 1:]
            if crash_of(target, with_options(options, b"\n".join(trial))) == key:
                lines = trial
            else:
                i += 1
        return with_options(options, b"\n".join(lines))
    for name in list(options):
        trial = {k: v for k, v in options.items() if k != name}
        if crash_of(target, _unparse(target, trial, data)) == key:
            options = trial
    i = 0
    while i < len(where := paths(data)):
        trial = copy.deepcopy(data)
        put(trial, where[i], _DELETE)
        if crash_of(target, _unparse(target, options, trial)) == key:
            data = trial               # the same index now holds the next path
        else:
            i += 1
    return _unparse(target, options, data)


# ---- the targets, and their libFuzzer dictionary ---------------------------------------------------

TOKENS = ["0001-01-01", "9999-12-31", "9999-12-31T23:59:59", "0001-01-01T00:00:00", "T23:59:59.999999",
          "+14:00", "-14:00", "+23:59", "Z", "1e-400", "1e400", "NaN", "Infinity", "-0", "\ufeff", "\\u0000",
          "18446744073709551616", "123456789012345678901234567890", "null", "true", "false", '"', "{", "}", "[",
          "]", ": ", "- ", "&a", "*a", "!!binary", "---", "#!{\"as_of\": \"", "\"lang\": \"en\"", "\"chunk\": 1",
          "\"columnar\": true", "\"with\": [\"uc\"]", "Asia/Shanghai", "UTC", "Pacific/Kiritimati"]


def dictionary() -> list[str]:
    """Field names, enum values and pack words from slarules itself, plus the boundary TOKENS."""
    from slarules.case import contract as C
    from slarules.packs.model import KINDS, OPERATORS, PARTIES
    from slarules.packs.vocabulary import BASE_FACTS, FUNCTIONS
    words = set(TOKENS)
    words |= {p.rsplit(".", 1)[-1] for p in BASE_FACTS} | set(BASE_FACTS) | set(FUNCTIONS)
    from slarules.case.fields import leaves
    words |= {part for path, _ in leaves() for part in path.split(".")}   # fields no rule reads (the KPIs') too
    for values in (C.PRODUCTS, C.SCAN_TYPES, C.SIGNED_BY, C.HUB_FINDS, C.COMPLAINT_KINDS, C.CHANNELS,
                   C.COMPLAINT_ISSUES, KINDS, PARTIES, OPERATORS, PARAM_VALUES["duration"], PARAM_VALUES["time"]):
        words |= set(values)
    words |= {"waybill", "timezone", "scans", "type", "station", "at", "pack", "version", "parameters", "derive",
              "rules", "id", "clause", "scope", "when", "then", "deadline", "due", "actual", "message", "fact",
              "param", "value", "fn", "args", "kind", "party", "overrides", "facts", "all", "any", "zh", "en"}
    return sorted(words)


TARGETS: dict[str, tuple[Callable[[bytes], None], Callable]] = {
    "case": (check_case, render_case),
    "pack": (check_pack, render_pack),
    "batch": (check_batch, render_batch),
}


def render(target: str, data: bytes) -> bytes:
    """The raw input the fuzzer's bytes stand for: themselves, or (NUL first) a structured one."""
    if not data.startswith(STRUCTURED):
        return data
    import atheris
    return TARGETS[target][1](atheris.FuzzedDataProvider(data[1:]))
