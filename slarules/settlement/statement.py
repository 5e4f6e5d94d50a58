"""Settlement: per-station money and counts, customer-service figures, a report.

A batch folds every verdict into one `Statement` as it goes. It holds counters
only (one entry per station, clause, hour and level, and per agent, team and
station for the KPIs of kpi.py; never per case), so its size does not grow with
the number of cases; statements of chunks merge exactly (integer
counts, Decimal money added in money.EXACT, which never rounds: a station's and a run's
totals have no bound), which lets a killed batch resume from its checkpoint
and lets Spark partitions be combined in any order with the same totals.
"""
from __future__ import annotations

import csv
import html
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import money
from . import kpi as K

ZERO = money.ZERO
DELIVERY = "delivery"          # TB-1's deadline name in the shipped packs
CS_DEADLINES = {"first_contact": "contacted", "close": "closed"}
TOP = 25                       # stations in the report's fines chart (and any tied with the last of them)


def _station() -> dict:
    return {"fines": ZERO, "refunds": ZERO, "findings": Counter()}


def _level() -> dict:
    return {"complaints": 0, "contacted_due": 0, "contacted_met": 0, "closed_due": 0, "closed_met": 0,
            "handled": 0, "handling_seconds": 0}


@dataclass
class Statement:
    verdicts: int = 0
    errors: int = 0
    internal: int = 0                    # of the errors, EngineError: a bug in slarules, not bad input
    stations: dict[str, dict] = field(default_factory=dict)
    clauses: Counter = field(default_factory=Counter)
    hours: dict[int, list[int]] = field(default_factory=dict)     # hour -> [met, breached]
    levels: dict[str, dict] = field(default_factory=dict)         # "1".."3" or "none"
    kpi: dict[str, dict[str, dict]] = field(default_factory=dict)  # group -> key -> kpi.COUNTERS

    # -- folding ------------------------------------------------------------------------
    # What each counter counts is said once, in the count_* methods; `add` feeds them one verdict
    # at a time and the columnar path (columnar/evaluator.py) feeds them a chunk's group-bys.
    def count_fine(self, payer: str, amount: Decimal) -> None:
        entry = self.stations.setdefault(payer, _station())
        entry["fines"] = money.add(entry["fines"], amount)

    def count_findings(self, who: str, clause: str, count: int, refunds: Decimal) -> None:
        """`count` findings of `clause` against `who` (a station, else a party), with their refunds."""
        entry = self.stations.setdefault(who, _station())
        entry["findings"][clause] += count
        if refunds:
            entry["refunds"] = money.add(entry["refunds"], refunds)
        self.clauses[clause] += count

    def count_delivery(self, hour: int, met: int, late: int) -> None:
        """Decided delivery deadlines of parcels that arrived in `hour` (local), met and late."""
        slot = self.hours.setdefault(hour, [0, 0])
        slot[0] += met
        slot[1] += late

    def count_complaints(self, level: str, counts: dict[str, int]) -> None:
        """Complaints received at `level` ("1".."3" or "none"): the `_level()` counters to add."""
        entry = self.levels.setdefault(level, _level())
        for name, n in counts.items():
            entry[name] += n

    def count_kpi(self, group: str, key: str, counts: dict[str, int]) -> None:
        """Contacts of an agent, team, station or `all` (kpi.GROUPS): the kpi.COUNTERS to add."""
        entry = self.kpi.setdefault(group, {}).setdefault(key, K.empty())
        for name, n in counts.items():
            entry[name] += n

    def add(self, facts, verdict) -> None:
        """Fold one verdict (and the facts it was judged on) into the totals."""
        self.verdicts += 1
        for payer, amount in verdict.fines_cny.items():
            self.count_fine(payer, Decimal(amount))
        for f in verdict.findings:
            self.count_findings(f.station or f.party, f.clause, 1, Decimal(f.refund_cny))
        deadlines = {d.name: d for d in verdict.deadlines}
        delivery = deadlines.get(DELIVERY)
        arrival = facts.values.get("reference_arrival")
        if delivery is not None and delivery.status != "open" and arrival is not None:
            met = delivery.status == "met"
            self.count_delivery(arrival.astimezone(facts.zone).hour, int(met), int(not met))
        complaint = facts.case.complaint
        if complaint is not None and complaint.received_at is not None:
            counts = {"complaints": 1}
            for name, label in CS_DEADLINES.items():
                d = deadlines.get(name)
                if d is not None:
                    counts[f"{label}_due"] = 1
                    counts[f"{label}_met"] = int(d.status == "met")
            if complaint.closed_at is not None:
                counts["handled"] = 1
                counts["handling_seconds"] = int((complaint.closed_at - complaint.received_at).total_seconds())
            self.count_complaints(str(verdict.complaint_level or "none"), counts)
        if complaint is not None:
            counts = K.contact_counts(complaint, facts.as_of)
            for group, key in K.keys_of(complaint, facts.values.get("delivering_station")):
                self.count_kpi(group, key, counts)

    def merge(self, other: Statement) -> Statement:
        self.verdicts += other.verdicts
        self.errors += other.errors
        self.internal += other.internal
        for name, theirs in other.stations.items():
            mine = self.stations.setdefault(name, _station())
            mine["fines"] = money.add(mine["fines"], theirs["fines"])
            mine["refunds"] = money.add(mine["refunds"], theirs["refunds"])
            mine["findings"].update(theirs["findings"])
        self.clauses.update(other.clauses)
        for hour, (met, late) in other.hours.items():
            slot = self.hours.setdefault(hour, [0, 0])
            slot[0] += met
            slot[1] += late
        for name, theirs in other.levels.items():
            mine = self.levels.setdefault(name, _level())
            for k, v in theirs.items():
                mine[k] += v
        for group, keys in other.kpi.items():
            for key, counts in keys.items():
                self.count_kpi(group, key, counts)
        return self

    # -- persistence (checkpoints, Spark partials) ---------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"verdicts": self.verdicts, "errors": self.errors, "internal": self.internal,
                "stations": {k: {"fines": str(v["fines"]), "refunds": str(v["refunds"]),
                                 "findings": dict(sorted(v["findings"].items()))}
                             for k, v in sorted(self.stations.items())},
                "clauses": dict(sorted(self.clauses.items())),
                "hours": {str(h): v for h, v in sorted(self.hours.items())},
                "levels": dict(sorted(self.levels.items())),
                "kpi": {g: dict(sorted(keys.items())) for g, keys in sorted(self.kpi.items())}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Statement:
        return cls(verdicts=d["verdicts"], errors=d["errors"], internal=d.get("internal", 0),
                   stations={k: {"fines": Decimal(v["fines"]), "refunds": Decimal(v["refunds"]),
                                 "findings": Counter(v["findings"])} for k, v in d["stations"].items()},
                   clauses=Counter(d["clauses"]), hours={int(h): list(v) for h, v in d["hours"].items()},
                   levels={k: dict(v) for k, v in d["levels"].items()},
                   kpi={g: {k: dict(v) for k, v in keys.items()} for g, keys in d["kpi"].items()})

    # -- tables ---------------------------------------------------------------------------
    def station_rows(self) -> tuple[list[str], list[list[str]]]:
        clauses = sorted(self.clauses)
        header = ["station", "fines_cny", "refunds_cny", "findings"] + clauses
        rows = []
        for name, v in sorted(self.stations.items()):
            counts = v["findings"]
            rows.append([name, f"{v['fines']:.2f}", f"{v['refunds']:.2f}", str(sum(counts.values()))]
                        + [str(counts.get(c, 0)) for c in clauses])
        return header, rows

    def service_rows(self, share=None) -> tuple[list[str], list[list[str]]]:
        """The CSV's rows; `share` formats a share from (part, whole) (the report adds its count)."""
        share = share or _share
        header = ["complaint_level", "complaints", "contacted_in_time_share", "closed_in_time_share",
                  "closed", "mean_handling_minutes"]
        rows = []
        for name, v in sorted(self.levels.items()):
            rows.append([name, str(v["complaints"]), share(v["contacted_met"], v["contacted_due"]),
                         share(v["closed_met"], v["closed_due"]), str(v["handled"]),
                         f"{v['handling_seconds'] / v['handled'] / 60:.1f}" if v["handled"] else ""])
        return header, rows

    def hour_rows(self) -> tuple[list[str], list[list[str]]]:
        header = ["arrival_hour", "on_time", "late", "on_time_share"]
        return header, [[str(h), str(m), str(l), _share(m, m + l)] for h, (m, l) in sorted(self.hours.items())]

    def kpi_rows(self) -> tuple[list[str], list[list[str]]]:
        return K.HEADER, K.rows(self.kpi)

    def write(self, directory: str | Path, title: str = "slarules settlement") -> list[Path]:
        """stations.csv, service.csv, arrival_hours.csv, kpi.csv and report.html, each written whole
        beside its name and renamed over it (output/files.py): a file is as it was or complete."""
        from ..output.files import write_atomically, writing
        out = Path(directory)
        with writing(out):
            out.mkdir(parents=True, exist_ok=True)
        files = {"stations.csv": _csv(*self.station_rows()), "service.csv": _csv(*self.service_rows()),
                 "arrival_hours.csv": _csv(*self.hour_rows()), "kpi.csv": _csv(*self.kpi_rows()),
                 "report.html": self.html(title)}
        assert tuple(files) == STATEMENT_FILES, "the batch declares the names in STATEMENT_FILES as its outputs"
        for name, text in files.items():
            write_atomically(out / name, text.encode("utf-8"))
        return [out / name for name in files]

    # -- report ---------------------------------------------------------------------------
    def html(self, title: str) -> str:
        # Hours as horizontal bars: a 32 px column had no room for "100% of 1,234" beside its share.
        hours = [(f"{h:02d}:00", m / (m + l) if m + l else 0.0, K.share_of(m, m + l) or "no parcels")
                 for h, (m, l) in ((h, self.hours.get(h, (0, 0))) for h in range(24))]
        ranked = sorted(((v["fines"], k) for k, v in self.stations.items() if v["fines"] > 0),
                        key=lambda t: (-t[0], t[1]))
        fines = [t for t in ranked if t[0] >= ranked[TOP - 1][0]] if len(ranked) > TOP else ranked
        fines_caption = (f"top {TOP} stations by fines, CNY"
                         + (f", with {len(fines) - TOP} more tied with the {TOP}th" if len(fines) > TOP else "")
                         + (f"; {len(ranked) - len(fines):,} more not shown" if len(ranked) > len(fines) else ""))
        total_fines = money.total(v["fines"] for v in self.stations.values())
        total_refunds = money.total(v["refunds"] for v in self.stations.values())
        parts = [f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>",
                 ("<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1000px}"
                  "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                  "th{background:#f3f3f3}svg text{font:11px sans-serif}"
                  "table.kpi td{text-align:left;white-space:nowrap}td.none{color:#999}td.gap{text-align:center}</style>"),
                 f"<h1>{html.escape(title)}</h1>",
                 (f"<p>{self.verdicts:,} verdicts, {self.errors:,} rejected rows; fines {total_fines:,.2f} CNY, "
                  f"refunds {total_refunds:,.2f} CNY.</p>"),
                 "<h2>On-time delivery by arrival hour</h2>",
                 _bars(hours, "share of parcels signed by the TB-1 deadline, of those that arrived in the hour",
                       top=1.0) if self.hours else "<p>no deliveries with a decided deadline</p>",
                 "<h2>Fines by station</h2>",
                 _bars([(k, float(v), f"{v:,.2f}") for v, k in fines], fines_caption),
                 "<h2>Findings by clause</h2>",
                 _bars([(c, float(n), f"{n:,}") for c, n in sorted(self.clauses.items())], "findings"),
                 "<h2>Customer service</h2>", _table(*self.service_rows(share=K.share_of)),
                 K.report_section(self.kpi),
                 "<h2>Stations</h2>", _table(*self.station_rows()), "</html>"]
        return "\n".join(parts) + "\n"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.4f}" if whole else ""


STATEMENT_FILES = ("stations.csv", "service.csv", "arrival_hours.csv", "kpi.csv", "report.html")   # what `write` makes


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _bars(items: list[tuple[str, float, str]], caption: str, top: float | None = None) -> str:
    """Horizontal bars as inline SVG: opens in any browser, no script, no network.

    Each bar is labelled with `shown` beside it; `top` is the full width (default: the largest value).
    """
    if not items:
        return "<p>none</p>"
    top = top or max(v for _, v, _ in items) or 1.0
    h = 18 * len(items) + 24
    rows = []
    for i, (label, v, shown) in enumerate(items):
        y = 18 * i + 4
        w = 560 * v / top
        rows.append(f'<text x="150" y="{y + 12}" text-anchor="end">{html.escape(label)}</text>'
                    f'<rect x="156" y="{y}" width="{w:.1f}" height="14" fill="#4a78b5"/>'
                    f'<text x="{160 + w:.1f}" y="{y + 12}">{html.escape(shown)}</text>')
    return (f'<svg width="820" height="{h}" role="img" aria-label="{html.escape(caption)}">' + "".join(rows)
            + f'<text x="156" y="{h - 4}" fill="#666">{html.escape(caption)}</text></svg>')


def kpi_table(results: Iterable[tuple[Any, Any]]) -> list[dict[str, str]]:
    """The KPIs of `Engine.adjudicate_many`'s results, as kpi.csv has them: one dict per row.

    Errors (no facts) are skipped, as a batch skips rejected rows.
    """
    st = Statement()
    for facts, verdict in results:
        if facts is not None and not isinstance(verdict, Exception):
            st.add(facts, verdict)
    return [dict(zip(K.HEADER, r)) for r in K.rows(st.kpi)]
