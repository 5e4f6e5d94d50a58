"""`slarules replay`: re-adjudicate a decision log and report the decisions that differ now.

The log itself (records, their ids and seals, appending and reading them back checked) is
`slarules.output.decision_log`, below every writer of a log; its names are re-exported here,
where the library has always offered them (`from slarules.tools.decisions import DecisionLog`).
A log is replayed only once every record in it has been checked: an edited or repeated record is
a located error (exit 2), never a policy change (exit 1) nor "the same".
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from ..echo import quote
from ..errors import InputError
from ..output.decision_log import Decision, DecisionLog, LogError, read_log
from ..output.decision_records import (
    PACK_KEYS,
    RECORD_KEYS,
    case_document,
    decision_id,
    logged_at,
    record_digest,
    record_line,
    seal,
    verdict_digest,
    without_packs,
)
from ..text_boundary import check_parsed

__all__ = [
    "PACK_KEYS",
    "RECORD_KEYS",
    "Decision",
    "DecisionLog",
    "LogError",
    "Replay",
    "case_document",
    "decision_id",
    "packs_changed",
    "read_log",
    "record_digest",
    "record_line",
    "replay",
    "upgrade",
    "verdict_digest",
    "without_packs",
]


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
    """Packs by name whose version or digest differs between the log and now (or that one side lacks),
    as the report shows them (echo.quote: a log is input)."""
    a, b = {p["name"]: p for p in logged}, {p["name"]: p for p in now}
    out = []
    for name in sorted(a.keys() | b.keys()):
        x = {k: quote(a[name][k]) for k in PACK_KEYS[1:]} if name in a else None
        y = {k: quote(b[name][k]) for k in PACK_KEYS[1:]} if name in b else None
        if x != y:
            out.append({"name": quote(name), "logged": x, "now": y})
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
            assert text is not None         # no error: a verdict
            if verdict_digest(text) == d.verdict_digest:
                continue
            if verdict_digest(without_packs(text.encode("utf-8"))) == d.outcome_digest:
                report.packs_only += 1
                continue
            reason, packs = "the verdict differs", json.loads(text)["packs"]
        report.differ.append({"line": d.line, "id": quote(d.id), "waybill": quote(d.waybill), "as_of": quote(d.as_of),
                              "reason": reason, "packs_changed": packs_changed(d.packs, packs)})
    return report


def _one_by_one(log, engine) -> Iterator[tuple[Decision, str | None, str | None]]:
    from ..errors import EngineError, InstallError, SlaRulesError
    for d in read_log(log, engine.limits.case_bytes):
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
    decisions = list(read_log(log, engine.limits.case_bytes))     # every line checked before anything runs
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
                        f.write(json.dumps({**decisions[i].case, "as_of": decisions[i].as_of}, ensure_ascii=False)
                                .encode("utf-8") + b"\n")
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


# ---- upgrading a log written before records were sealed --------------------------------------

UNSEALED_KEYS = RECORD_KEYS[:-2]        # unsealed records (earlier releases): no logged_at, no record_digest


def _unsealed_id(case: Any, as_of: str, packs: list[dict[str, str]]) -> str:
    """The id an unsealed record states (the recipe of earlier releases), read only to upgrade such a log."""
    h = hashlib.sha256(json.dumps(case, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                                  default=str).encode())
    h.update(b"\n" + as_of.encode() + b"\n" + ",".join(p["digest"] for p in packs).encode())
    return "sha256:" + h.hexdigest()


def _unsealed_problem(doc: Any) -> str | None:
    """What earlier releases checked of their records: the shape, the types, the id against what it names."""
    if not isinstance(doc, dict) or sorted(doc) != sorted(UNSEALED_KEYS):
        return "not an unsealed record of an earlier release (" + ", ".join(UNSEALED_KEYS) + ")"
    if not all(isinstance(doc[k], str) for k in UNSEALED_KEYS if k not in ("packs", "case")) \
            or not isinstance(doc["case"], dict) or doc["lang"] not in ("zh", "en") \
            or not isinstance(doc["packs"], list) or not all(
                isinstance(p, dict) and sorted(p) == sorted(PACK_KEYS) and all(isinstance(v, str) for v in p.values())
                for p in doc["packs"]):
        return "a field of the wrong type"
    if _unsealed_id(doc["case"], doc["as_of"], doc["packs"]) != doc["id"]:
        return "its `id` does not match its case, as_of and packs (edited or cut?)"
    return None


def upgrade(old: str | Path, new: str | Path, *, now: datetime | None = None) -> int:
    """Seal the records of a log written before records were sealed into the log `new`; returns how many.

    Each record is first checked as those releases checked it (its id against its case, as_of and
    packs); one that fails stops the upgrade with nothing written. A record gets its new id
    (RFC 8785) and its seal; its `logged_at` is the instant of the upgrade, when it entered `new`
    (the old records kept no such time). Records already sealed are checked and copied as they are.
    """
    from ..output.decision_records import SEAL, problem
    at = logged_at(now or datetime.now(UTC))
    name = str(old)

    def sealed(f: BinaryIO) -> Iterator[tuple[str, bytes]]:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")    # strict: json.loads(bytes) would let encoded surrogates through
                doc = json.loads(text)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InputError(f"not a decision record: invalid JSON ({exc})", file=name, line=number) from None
            check_parsed(text, doc, file=name, line=number, error=InputError)
            what = problem(doc) if isinstance(doc, dict) and SEAL in doc else _unsealed_problem(doc)
            if what is not None:
                raise InputError(f"not a decision record: {what}", file=name, line=number,
                                 hint="nothing was written; only a log as slarules wrote it can be sealed")
            if SEAL in doc:
                yield doc["id"], raw if raw.endswith(b"\n") else raw + b"\n"
            else:
                yield seal({**{k: doc[k] for k in UNSEALED_KEYS[1:]}, "logged_at": at})

    try:
        with open(old, "rb") as f:
            checked = list(sealed(f))       # every record checked before the new log is created
    except OSError as exc:
        raise InputError(f"cannot read the decision log: {exc.strerror or exc}", file=name) from None
    with DecisionLog(new) as log:
        return log.extend(checked)
