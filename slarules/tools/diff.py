"""`slarules diff`: what a change of packs would do to real cases, before it goes live.

Both pack sets run over the same cases through the batch (`batch/runner.py`,
the columnar path by default, or Spark), with one instant standing for "now",
so the only difference between the two verdict files is the packs. The files
are then walked side by side: a verdict whose bytes are equal once its `packs`
list is set aside is unchanged (a byte comparison, no parsing); only changed
verdicts are parsed and sorted into kinds of change (findings added or removed,
liability moved, money, complaint level, ...), each with the first waybills in
input order as examples. Money totals per station come from the two runs'
settlement statements, so they are exact decimals over every case, not only
the changed ones.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import money
from ..case.reader import bounded_lines, open_file
from ..errors import InputError, Interrupted, OutputError, PackError
from ..output.writer import Outputs
from ..runtime import backend as backends
from .decisions import without_packs
from .diff_report import KINDS

EXAMPLES = 5
ZERO = money.ZERO
DIFF_FILES = ("diff.json", "diff.txt", "diff.html")
MONEY_MAPS = ("fines_cny", "compensation_cny")    # payer -> amount maps of a verdict (compensation: national layer)


@dataclass
class DiffOptions:
    backend: str = backends.DEFAULT     # a registered name (runtime/backend.py)
    lang: str = "zh"
    as_of: str | None = None          # overrides every case's as_of, on both sides
    chunk_size: int = 20000
    workers: int = 0
    input_format: str | None = None
    examples: int = EXAMPLES          # waybills shown per kind of change
    spark: bool = False
    master: str = "local[*]"
    work_dir: str | None = None       # where the two verdict files are kept while comparing (default: temp)


@dataclass
class Kind:
    """One kind of change: how many verdicts, example waybills, and a breakdown (by clause, move, level)."""
    count: int = 0
    examples: list[str] = field(default_factory=list)
    detail: Counter = field(default_factory=Counter)

    def note(self, waybill: str, limit: int, details: Iterable[str] = ()) -> None:
        self.count += 1
        if len(self.examples) < limit:
            self.examples.append(waybill)
        self.detail.update(details)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "examples": self.examples, "detail": dict(sorted(self.detail.items()))}


@dataclass
class PackDiff:
    """The outcome of a diff; `to_dict()` is `diff.json`."""
    cases: int
    changed: int
    base: dict[str, Any]
    head: dict[str, Any]
    packs: list[dict[str, Any]]
    kinds: dict[str, Kind]
    clauses: dict[str, dict[str, int]]
    stations: dict[str, dict[str, dict[str, str]]]
    totals: dict[str, dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {"cases": self.cases, "changed": self.changed, "base": self.base, "head": self.head,
                "packs": self.packs, "kinds": {k: v.to_dict() for k, v in self.kinds.items() if v.count},
                "clauses": self.clauses, "stations": self.stations, "totals": self.totals}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    def text(self) -> str:
        from .diff_report import render_text
        return render_text(self)

    def html(self, title: str = "slarules diff") -> str:
        from .diff_report import render_html
        return render_html(self, title)

    def write(self, directory: str | Path, title: str = "slarules diff") -> list[Path]:
        """diff.json, diff.txt and diff.html: the folder checked and locked first (output/writer.py),
        then each file written whole beside its name and renamed over it."""
        outputs = Outputs()
        output_paths(outputs, directory)
        with outputs:
            return self.write_files(directory, title)

    def write_files(self, directory: str | Path, title: str = "slarules diff") -> list[Path]:
        """`write` for a caller that already holds the folder's outputs (`diff_packs(output=...)`)."""
        from ..output.files import write_atomically, writing
        out = Path(directory)
        with writing(out):
            out.mkdir(parents=True, exist_ok=True)
        texts = dict(zip(DIFF_FILES, (self.to_json(), self.text(), self.html(title))))
        for name, text in texts.items():
            write_atomically(out / name, text.encode("utf-8"))
        return [out / name for name in texts]


# ---- loading both sides ----------------------------------------------------------------------

def load_side(paths, side: str, limits=None):
    """An Engine for one side, or a PackError saying which side (base or head) failed, still located."""
    from ..engine import Engine
    if not isinstance(paths, (list, tuple)) and hasattr(paths, "program"):
        return paths if limits is None else paths.with_limits(limits)
    try:
        engine = Engine.load(paths)
    except PackError as exc:
        raise PackError(f"the {side} packs do not compile: {exc.message}", file=exc.file, line=exc.line,
                        column=exc.column, field=exc.field, hint=exc.hint) from None
    return engine if limits is None else engine.with_limits(limits)


def output_paths(outputs: Outputs, directory: str | Path) -> list[Path]:
    """Declare what `write(directory)` creates to `outputs` (the one writer, output/writer.py)."""
    return outputs.folder("the diff (-o)", directory, DIFF_FILES)


def diff_packs(cases: str, base, head, options: DiffOptions | None = None, *, output: str | None = None,
               limits=None, spark_session=None) -> PackDiff:
    """Run `base` and `head` (Engines, or lists of pack paths) over `cases` and compare the verdicts.

    With `options.spark`, both sides run on `spark_session` (left running), else on a session
    started on `options.master` for the two runs and stopped after them.
    `output` (a folder): diff.json, diff.txt and diff.html are written there. It is checked before
    anything runs (refused over the cases or a pack, where it cannot be written) and locked until
    the files are written, so a second diff on it is refused at once.
    """
    from ..batch.runner import instant_now
    o = options or DiffOptions()
    if o.examples < 0:
        raise InputError("--examples must be at least 0", field="--examples")
    base_engine = load_side(base, "base", limits)
    head_engine = load_side(head, "head", limits)
    inputs: dict[str, str | Path] = {"the cases": cases}
    for side, given, engine in (("base", base, base_engine), ("head", head, head_engine)):
        paths = [*engine.pack_paths, *(given if isinstance(given, (list, tuple)) else [])]
        inputs.update({f"the {side} pack {p}": p for p in paths})
    outputs = Outputs(inputs)
    if output is not None:
        output_paths(outputs, output)
    now = instant_now()        # one "now" for both sides: cases without as_of are judged at the same instant
    with outputs:
        try:
            diff = _run_sides(cases, o, base_engine, head_engine, now, spark_session)
            if output is not None:
                diff.write_files(output)
        except OutputError as exc:
            if output is None or not exc.file or not Path(exc.file).is_relative_to(output):
                exc.hint = "the diff's working files are removed; nothing was written: run the same command again"
            raise
        except Interrupted as exc:
            exc.kept = "nothing was written: run the same command again"
            raise
    return diff


def _run_sides(cases: str, o: DiffOptions, base_engine, head_engine, now: str, spark_session=None) -> PackDiff:
    """Both sides through the batch into a temporary folder, then compared."""
    from ..batch.runner import BatchOptions, run_batch
    with tempfile.TemporaryDirectory(prefix="slarules-diff-", dir=o.work_dir) as tmp:
        runs = {}
        spark = spark_session
        try:
            for side, engine in (("base", base_engine), ("head", head_engine)):
                target = str(Path(tmp) / f"{side}.jsonl")
                batch = BatchOptions(backend=o.backend, lang=o.lang, as_of=o.as_of, chunk_size=o.chunk_size,
                                     workers=o.workers, input_format=o.input_format, output_format="jsonl",
                                     progress=False, fresh=True, now=now)
                if o.spark:
                    from ..spark import bulk_backend, run_spark_batch, session
                    if spark is None:
                        bulk_backend(o.backend)     # refused before a session starts
                        spark = session(o.master, chunk_size=o.chunk_size, log=str(Path(tmp) / "spark.log"))
                    summary = run_spark_batch(engine, cases, target, batch, spark=spark)
                else:
                    summary = run_batch(engine, cases, target, batch)
                runs[side] = (summary, Path(target), Path(tmp) / f"{side}.errors.jsonl")
        finally:
            if spark is not None and spark_session is None:
                spark.stop()
        return _compare(cases, o, base_engine, head_engine, runs)


# ---- comparing ----------------------------------------------------------------------------------

def _error_key(record: dict) -> tuple:
    return (record.get("file") or "", record.get("line") or record.get("row") or 0)


def _errors(path: Path) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    if path.exists():
        with open(path, "rb") as f:
            for line in f:
                record = json.loads(line)
                out[_error_key(record)] = record
    return out


def _row_keys(cases: str, fmt: str, case_bytes: int) -> Iterator[tuple]:
    """Every row's key in input order, as error records name rows: blank JSON Lines are not rows (a line
    over `case_bytes` is one, as the batch read it)."""
    if os.path.isdir(cases) or "://" in cases:
        raise InputError("the two pack sets rejected different rows of a directory of cases, which this "
                         "diff cannot line up", file=cases, hint="diff one file at a time")
    if fmt == "parquet":
        import pyarrow.parquet as pq
        yield from (("", n) for n in range(1, pq.ParquetFile(cases).metadata.num_rows + 1))
        return
    with open_file(cases) as f:
        for number, line in bounded_lines(f, case_bytes):
            if line is None or line.strip():
                yield ("", number)


def _pairs(cases: str, fmt: str, runs: dict, case_bytes: int) -> Iterator[tuple[Any, Any, Any, Any]]:
    """(base line, head line, base error, head error) per row, in input order (a side has one of the two)."""
    (_, base_out, base_err), (_, head_out, head_err) = runs["base"], runs["head"]
    errors_b, errors_h = _errors(base_err), _errors(head_err)
    with open(base_out, "rb") as fb, open(head_out, "rb") as fh:
        if errors_b.keys() == errors_h.keys():      # the usual case: the same rows rejected, verdicts line up
            for b, h in zip(fb, fh):
                yield b, h, None, None
            for key in sorted(errors_b):
                yield None, None, errors_b[key], errors_h[key]
            return
        for key in _row_keys(cases, fmt, case_bytes):
            eb, eh = errors_b.get(key), errors_h.get(key)
            yield (None if eb else fb.readline()), (None if eh else fh.readline()), eb, eh


class MoneyMap:
    """Per payer totals of a verdict money map (`compensation_cny`) over verdict lines, fed as they are read;
    `totals` stays None while no line has the map (verdicts before the national layer)."""

    def __init__(self, key: str):
        self.key = key
        self.needle = f'"{key}": {{'.encode()
        self.totals: dict[str, Decimal] | None = None

    def add(self, line: bytes) -> None:
        at = line.find(self.needle)
        if at < 0:
            return
        if self.totals is None:
            self.totals = {}
        start = at + len(self.needle) - 1
        if line[start + 1:start + 2] != b"}":
            for payer, amount in json.loads(line[start:line.index(b"}", start) + 1]).items():
                self.totals[payer] = money.add(self.totals.get(payer, ZERO), Decimal(amount))


def _holders(doc: dict) -> set[str]:
    return {f.get("station") or f.get("party") for f in doc["findings"] if f.get("kind") == "liability"}


def _finding_keys(doc: dict) -> Counter:
    return Counter((f["clause"], f.get("kind"), f.get("party"), f.get("station")) for f in doc["findings"])


def _classify(b: dict, h: dict) -> dict[str, list[str]]:
    """The kinds of change between two verdicts of one case, each with its breakdown."""
    kinds: dict[str, list[str]] = {}
    fb, fh = _finding_keys(b), _finding_keys(h)
    added, removed = fh - fb, fb - fh
    if added:
        kinds["findings_added"] = sorted(k[0] for k in added.elements())
    if removed:
        kinds["findings_removed"] = sorted(k[0] for k in removed.elements())
    hb, hh = _holders(b), _holders(h)
    if hb and hh and hb != hh:
        kinds["liability_moved"] = [f"{', '.join(sorted(hb - hh)) or '-'} → {', '.join(sorted(hh - hb)) or '-'}"]
    for key in MONEY_MAPS:
        mb, mh = b.get(key) or {}, h.get(key) or {}
        if mb != mh:
            kind = "fines_changed" if key == "fines_cny" else "compensation_changed"
            kinds[kind] = sorted(p for p in mb.keys() | mh.keys()
                                 if Decimal(mb.get(p, "0")) != Decimal(mh.get(p, "0")))
    if b["refunds_cny"] != h["refunds_cny"]:
        kinds["refunds_changed"] = []
    if b["complaint_level"] != h["complaint_level"]:
        kinds["complaint_level_changed"] = [f"{b['complaint_level'] or 'none'} → {h['complaint_level'] or 'none'}"]
    if b["classifications"] != h["classifications"]:
        kinds["classifications_changed"] = sorted(set(b["classifications"]) ^ set(h["classifications"]))
    if b["deadlines"] != h["deadlines"]:
        kinds["deadlines_changed"] = sorted({d["name"] for d in b["deadlines"]} | {d["name"] for d in h["deadlines"]})
    if b["missing"] != h["missing"] or b["not_covered"] != h["not_covered"]:
        kinds["missing_changed"] = []
    if not kinds:       # same findings, money and deadlines: what is left is the findings' text and facts
        kinds["messages_changed"] = sorted({f["clause"] for f, g in zip(b["findings"], h["findings"]) if f != g})
    return kinds


def _amounts(base: dict[str, Decimal], head: dict[str, Decimal], name: str) -> dict[str, str]:
    """Exact base, head and delta of one payer's money, as the verdicts write money ("12.50")."""
    b, h = base.get(name, ZERO), head.get(name, ZERO)
    return {"base": money.text(b), "head": money.text(h), "delta": money.text(money.subtract(h, b))}


def _stations(runs: dict, maps: dict[str, list[MoneyMap]]) -> tuple[dict, dict]:
    sb, sh = runs["base"][0].statement, runs["head"][0].statement
    measured: dict[str, dict] = {}
    for side, statement in (("base", sb), ("head", sh)):
        measured[side] = {
            "fines_cny": {k: v["fines"] for k, v in statement.stations.items()},
            "refunds_cny": {k: v["refunds"] for k, v in statement.stations.items()},
            "findings": {k: sum(v["findings"].values()) for k, v in statement.stations.items()},
        }
        for found in maps[side]:
            if found.totals is not None:
                measured[side][found.key] = found.totals
    measures = sorted(set(measured["base"]) | set(measured["head"]))
    names = sorted({n for side in measured.values() for m in side.values() for n in m})
    stations: dict[str, dict] = {}
    totals: dict[str, dict] = {}
    for name in names:
        entry = stations[name] = {}
        for m in measures:
            b, h = measured["base"].get(m, {}), measured["head"].get(m, {})
            if m == "findings":
                entry[m] = {"base": b.get(name, 0), "head": h.get(name, 0), "delta": h.get(name, 0) - b.get(name, 0)}
            elif name in b or name in h:
                entry[m] = _amounts(b, h, name)
    for m in measures:
        if m == "findings":
            continue
        totals[m] = _amounts({m: money.total(measured["base"].get(m, {}).values())},
                             {m: money.total(measured["head"].get(m, {}).values())}, m)
    return stations, totals


def _packs(base_engine, head_engine) -> list[dict[str, Any]]:
    """Each pack by name: its versions (several when dated) and digests on each side, and whether they differ."""
    sides: dict[str, dict[str, list]] = {}
    for side, engine in (("base", base_engine), ("head", head_engine)):
        for p in engine.packs:
            sides.setdefault(p.name, {"base": [], "head": []})[side].append(
                {"version": p.version, "digest": p.digest})
    return [{"name": name, "base": sorted(v["base"], key=lambda x: x["version"]),
             "head": sorted(v["head"], key=lambda x: x["version"]), "changed": v["base"] != v["head"]}
            for name, v in sorted(sides.items())]


DATED_RULE = re.compile(rb'("rule": "[^"@]*)@[^"]*"')


def _undated(line: bytes) -> bytes:
    """A verdict line with dated rule ids (`x@2026.1`) as plain ones: dating a pack renames its rules,
    which changes no outcome; the versions applied still show in `packs`."""
    return DATED_RULE.sub(rb'\1"', line)


def _dated(engine) -> bool:
    return any("@" in r.id for r in engine.program.rules)


def _compare(cases: str, o: DiffOptions, base_engine, head_engine, runs: dict) -> PackDiff:
    from ..batch import io as batch_io
    fmt = batch_io.file_format(cases, o.input_format) if not os.path.isdir(cases) else (o.input_format or "jsonl")
    kinds = {k: Kind() for k in KINDS}
    clauses: dict[str, Counter] = {}
    rows = changed = 0
    maps = {side: [MoneyMap(key) for key in MONEY_MAPS[1:]] for side in ("base", "head")}
    undate = _dated(base_engine) or _dated(head_engine)
    for b, h, eb, eh in _pairs(cases, fmt, runs, base_engine.limits.case_bytes):
        rows += 1
        for side, line in (("base", b), ("head", h)):
            if line is not None:
                for found in maps[side]:
                    found.add(line)
        if b is not None and h is not None:
            if b == h or without_packs(b) == without_packs(h):
                continue
            if undate:
                b, h = _undated(b), _undated(h)
                if without_packs(b) == without_packs(h):
                    continue
            db, dh = json.loads(b), json.loads(h)
            changed += 1
            for kind, details in _classify(db, dh).items():
                kinds[kind].note(dh["waybill"], o.examples,
                                 details if kind not in ("findings_added", "findings_removed") else ())
                if kind in ("findings_added", "findings_removed"):
                    for clause in details:
                        clauses.setdefault(clause, Counter())[kind.split("_")[1]] += 1
        elif b is None and h is None:
            if (eb["message"], eb["field"]) != (eh["message"], eh["field"]):
                changed += 1
                kinds["outcome_changed"].note(eh.get("waybill") or f"row {_error_key(eh)[1]}", o.examples,
                                              ["rejected on both sides, differently"])
        else:
            changed += 1
            doc = json.loads(b or h)
            err = eh if b is not None else eb
            side = "head" if b is not None else "base"
            kinds["outcome_changed"].note(doc["waybill"], o.examples, [f"rejected by {side}: {err['error']}"])
    stations, totals = _stations(runs, maps)
    summary = {side: {"verdicts": runs[side][0].verdicts, "errors": runs[side][0].errors} for side in runs}
    return PackDiff(cases=rows, changed=changed, base=summary["base"], head=summary["head"],
                    packs=_packs(base_engine, head_engine), kinds=kinds,
                    clauses={c: {"added": n["added"], "removed": n["removed"]} for c, n in sorted(clauses.items())},
                    stations=stations, totals=totals)

