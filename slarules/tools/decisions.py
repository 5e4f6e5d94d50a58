"""Decision logs: one JSON line per verdict given, so any decision can be checked again later.

A record holds what is needed to re-adjudicate and to tell whether the answer
is still the same: the case as it was given, the instant it was judged at
(`as_of`, as the verdict states it), the language of its messages, the packs applied (name, version, digest)
and `verdict_digest`, the sha256 of the verdict's compact JSON (the bytes
`slarules batch` writes for it). `outcome_digest` is the same less the verdict's
`packs` list: under new packs every verdict names other digests, and replay
reports only the decisions whose outcome (findings, money, messages,
deadlines...) would differ. `slarules replay` reads a log back.

The decision `id` is the sha256 of the canonical case (keys sorted, no spaces),
the as_of and the pack digests. It is derived, not drawn, so the same decision
logged twice (a retried request, a batch run again) has the same id and can be
recognised as one, on any machine, while the same case judged at another
instant or under other packs is another decision with another id.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputError

RECORD_KEYS = ("id", "waybill", "as_of", "lang", "packs", "verdict_digest", "outcome_digest", "case")
PACK_KEYS = ("name", "version", "digest")


def _canonical(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode()


def verdict_digest(verdict_json: str | bytes) -> str:
    """sha256 of a verdict's compact JSON (`Verdict.to_json(indent=None)`, a batch output line)."""
    data = verdict_json.encode("utf-8") if isinstance(verdict_json, str) else verdict_json
    return "sha256:" + hashlib.sha256(data.rstrip(b"\n")).hexdigest()


def without_packs(line: bytes) -> bytes:
    """A compact verdict less its `packs` list: what the verdict decided, whichever packs said it."""
    start = line.find(b'"packs": [')
    end = line.find(b'], "findings": ', start)
    return line if start < 0 or end < 0 else line[:start] + line[end + 1:]


def decision_id(case: Any, as_of: str, packs: list[dict]) -> str:
    h = hashlib.sha256(_canonical(case))
    h.update(b"\n" + as_of.encode() + b"\n" + ",".join(p["digest"] for p in packs).encode())
    return "sha256:" + h.hexdigest()


def record_line(case: Any, verdict_json: str | bytes, lang: str) -> bytes:
    """The log line of one decision: `case` as given (a dict), the verdict as its compact JSON."""
    text = verdict_json if isinstance(verdict_json, str) else verdict_json.decode("utf-8")
    verdict = json.loads(text)
    packs = [{k: p[k] for k in PACK_KEYS} for p in verdict["packs"]]
    record = {"id": decision_id(case, verdict["as_of"], packs), "waybill": verdict["waybill"],
              "as_of": verdict["as_of"], "lang": lang, "packs": packs, "verdict_digest": verdict_digest(text),
              "outcome_digest": verdict_digest(without_packs(text.encode("utf-8"))), "case": case}
    return json.dumps(record, ensure_ascii=False, default=str).encode("utf-8") + b"\n"


def case_document(case: Any) -> Any:
    """The case as given: a dict as it is; a model (facts.Case, FastCase) as the JSON it holds."""
    if isinstance(case, dict):
        return case
    if hasattr(case, "model_dump"):
        return case.model_dump(mode="json", exclude_none=True)
    import msgspec
    return msgspec.to_builtins(case)


class DecisionLog:
    """An append-only log file; `record` writes one whole line at a time (thread-safe, one write call).

    Pass it to `Engine.adjudicate(case, log=...)`; batch runs take a path (`BatchOptions.decision_log`).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def record(self, case: Any, verdict, lang: str = "zh") -> str:
        """Log one decision (`verdict` a Verdict or its compact JSON, in `lang`); returns its id."""
        text = verdict if isinstance(verdict, (str, bytes)) else verdict.to_json(indent=None)
        line = record_line(case_document(case), text, lang)
        try:
            with self._lock:
                append_atomically(self.path, [line])
        except OSError as exc:
            raise InputError(f"cannot append to the decision log: {exc.strerror or exc}", file=str(self.path),
                             hint="nothing was added to it") from None
        return json.loads(line)["id"]


def append_atomically(path: Path, chunks) -> None:
    """Append byte chunks (or a file to copy, for a Path) to `path`; on any failure cut it back to its old size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as out:
        size = out.tell()
        try:
            for chunk in chunks:
                if isinstance(chunk, Path):
                    with open(chunk, "rb") as src:
                        while block := src.read(1 << 20):
                            out.write(block)
                else:
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            out.flush()
            out.truncate(size)
            raise


# ---- reading a log back ----------------------------------------------------------------------

@dataclass
class Decision:
    line: int
    id: str
    waybill: str
    as_of: str
    lang: str
    packs: list[dict]
    verdict_digest: str
    outcome_digest: str
    case: Any


def _bad(path: str, line: int, what: str) -> InputError:
    return InputError(f"not a decision record: {what}", file=path, line=line,
                      hint="each line is one JSON object with " + ", ".join(RECORD_KEYS))


def read_log(path: str | Path) -> Iterator[Decision]:
    """Every record of a log, each checked; a corrupt line is an InputError at LOG:LINE."""
    path = str(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read the decision log: {exc.strerror or exc}", file=path) from None
    with f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                doc = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise _bad(path, number, f"invalid JSON ({exc})") from None
            if not isinstance(doc, dict):
                raise _bad(path, number, "not a JSON object")
            missing = [k for k in RECORD_KEYS if k not in doc]
            if missing:
                raise _bad(path, number, "missing " + ", ".join(missing))
            for key in ("id", "waybill", "as_of", "lang", "verdict_digest", "outcome_digest"):
                if not isinstance(doc[key], str):
                    raise _bad(path, number, f"`{key}` is not a string")
            packs = doc["packs"]
            if not isinstance(packs, list) or not all(
                    isinstance(p, dict) and all(isinstance(p.get(k), str) for k in PACK_KEYS) for p in packs):
                raise _bad(path, number, "`packs` is not a list of {name, version, digest}")
            if not isinstance(doc["case"], dict):
                raise _bad(path, number, "`case` is not a JSON object")
            if decision_id(doc["case"], doc["as_of"], packs) != doc["id"]:
                raise _bad(path, number, "its `id` does not match its case, as_of and packs (edited or cut?)")
            if doc["lang"] not in ("zh", "en"):
                raise _bad(path, number, "`lang` is not zh or en")
            yield Decision(number, doc["id"], doc["waybill"], doc["as_of"], doc["lang"], packs,
                           doc["verdict_digest"], doc["outcome_digest"], doc["case"])


# ---- replay ----------------------------------------------------------------------------------

@dataclass
class Replay:
    """What re-adjudicating a log found: decisions whose verdict differs now, and how the packs differ."""
    decisions: int = 0
    differ: list[dict] = field(default_factory=list)
    packs_only: int = 0      # the same outcome, cited under other packs (verdict digest differs, outcome not)

    def to_dict(self) -> dict[str, Any]:
        return {"decisions": self.decisions, "differ": len(self.differ), "same_outcome_other_packs": self.packs_only,
                "decisions_that_differ": self.differ}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    def text(self) -> str:
        lines = [f"{self.decisions:,} decisions replayed: {len(self.differ):,} give another verdict now"
                 + (f"; {self.packs_only:,} the same verdict under other packs" if self.packs_only else "")]
        for d in self.differ:
            lines.append(f"  line {d['line']}: {d['waybill']} as of {d['as_of']}: {d['reason']}")
            for p in d["packs_changed"]:
                lines.append(f"    pack {p['name']}: {_pack(p['logged'])} → {_pack(p['now'])}")
        return "\n".join(lines) + "\n"


def _pack(p: dict | None) -> str:
    return "(none)" if p is None else f"{p['version']} {p['digest'][:15]}…"


def packs_changed(logged: list[dict], now: list[dict]) -> list[dict]:
    """Packs by name whose version or digest differs between the log and now (or that one side lacks)."""
    a, b = {p["name"]: p for p in logged}, {p["name"]: p for p in now}
    out = []
    for name in sorted(a.keys() | b.keys()):
        x = {k: a[name][k] for k in PACK_KEYS[1:]} if name in a else None
        y = {k: b[name][k] for k in PACK_KEYS[1:]} if name in b else None
        if x != y:
            out.append({"name": name, "logged": x, "now": y})
    return out


def replay(log: str | Path, engine=None, *, batch: bool = False, spark: bool = False, master: str = "local[*]",
           workers: int = 0, spark_session=None) -> Replay:
    """Re-adjudicate every logged decision at its as_of, in its language, with `engine` (default: the shipped packs).

    One case at a time by default (durable_rules, the reference); `batch=True` runs the logged cases
    through `slarules batch` (the columnar path, `workers` processes) and `spark=True` on Spark, which
    give the same verdicts, for logs of millions of decisions (on `spark_session`, left running,
    else on a session started on `master` and stopped after).
    """
    from ..engine import Engine
    engine = engine or Engine.default()
    report = Replay()
    in_force = [{"name": p.name, "version": p.version, "digest": p.digest} for p in engine.packs]
    outcomes = (_in_batch(log, engine, spark, master, workers, spark_session) if batch or spark
                else _one_by_one(log, engine))
    for d, text, error in outcomes:
        report.decisions += 1
        if error is not None:
            reason, packs = f"now rejected: {error}", in_force
        else:
            if verdict_digest(text) == d.verdict_digest:
                continue
            if verdict_digest(without_packs(text.encode("utf-8"))) == d.outcome_digest:
                report.packs_only += 1
                continue
            reason, packs = "the verdict differs", json.loads(text)["packs"]
        report.differ.append({"line": d.line, "id": d.id, "waybill": d.waybill, "as_of": d.as_of,
                              "reason": reason, "packs_changed": packs_changed(d.packs, packs)})
    return report


def _one_by_one(log, engine) -> Iterator[tuple[Decision, str | None, str | None]]:
    from ..errors import EngineError, InstallError, SlaRulesError
    for d in read_log(log):
        try:
            yield d, engine.adjudicate(d.case, as_of=d.as_of, lang=d.lang).to_json(indent=None), None
        except InstallError:
            raise                           # durable_rules cannot run here: no verdict was given, none changed
        except EngineError as exc:
            raise _failed(log, d, exc.message, exc.hint) from exc
        except SlaRulesError as exc:
            yield d, None, exc.message      # the message a batch's error record carries


def _failed(log, d: Decision, message: str, hint: str | None):
    """slarules failing on a logged decision stops the replay: a failure is not a verdict that changed."""
    from ..errors import EngineError
    return EngineError(f"replaying decision {d.id}: {message}", file=str(log), line=d.line, hint=hint)


def _in_batch(log, engine, spark: bool, master: str, workers: int,
              given=None) -> Iterator[tuple[Decision, str | None, str | None]]:
    """The logged cases, each with its as_of written in, through the batch once per language; outcomes in log order."""
    import tempfile

    from ..batch.runner import BatchOptions, run_batch
    decisions = list(read_log(log))     # every line checked before anything runs
    by_lang: dict[str, list[int]] = {}
    for i, d in enumerate(decisions):
        by_lang.setdefault(d.lang, []).append(i)
    outcomes: dict[int, tuple[str | None, str | None]] = {}
    with tempfile.TemporaryDirectory(prefix="slarules-replay-") as tmp:
        session = given
        try:
            for lang, indices in sorted(by_lang.items()):
                cases, out = Path(tmp) / f"{lang}.jsonl", Path(tmp) / f"{lang}.verdicts.jsonl"
                with open(cases, "wb") as f:
                    for i in indices:
                        f.write(_canonical({**decisions[i].case, "as_of": decisions[i].as_of}) + b"\n")
                options = BatchOptions(lang=lang, workers=workers, output_format="jsonl", progress=False, fresh=True)
                if spark:
                    from ..spark import run_spark_batch, session as start
                    session = session or start(master, log=str(Path(tmp) / "spark.log"))
                    run_spark_batch(engine, str(cases), str(out), options, spark=session)
                else:
                    run_batch(engine, str(cases), str(out), options)
                errors = {}
                with open(Path(tmp) / f"{lang}.verdicts.errors.jsonl", "rb") as f:
                    for line in f:
                        record = json.loads(line)
                        if record["error"] == "EngineError":
                            d = decisions[indices[record["line"] - 1]]
                            raise _failed(log, d, record["message"], record["hint"])
                        errors[record["line"]] = record["message"]
                with open(out, "rb") as f:
                    for row, i in enumerate(indices, 1):
                        outcomes[i] = (None, errors[row]) if row in errors else \
                            (f.readline().rstrip(b"\n").decode("utf-8"), None)
        finally:
            if session is not None and given is None:
                session.stop()
    for i, d in enumerate(decisions):
        yield d, *outcomes[i]
