"""Prometheus metrics that are right across worker processes, at a fraction of a microsecond a count.

Each process (the supervisor and every worker) keeps its values in a memory-mapped file of
float64 slots, `PID.values`, and the name of each slot in `PID.keys` beside it, in one folder
the supervisor owns. Counting is a store into shared memory: nothing is lost when a worker is
killed with -9 (the page cache holds it), and `GET /metrics`, answered by whichever worker the
request reaches, reads every process's files and adds them up. Gauges count only for processes
that are alive.

prometheus_client's multiprocess mode does the same with a lock and a file lookup per update
(~5 µs an update here, 10-25 µs a request with the findings); this costs ~0.2 µs, and the
service's throughput budget is the reason (benchmarks/serve.py).
"""
from __future__ import annotations

import bisect
import json
import mmap
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

SLOTS = 1 << 14             # values per process: routes x statuses, clauses, buckets; more are dropped, counted
LATENCY_BUCKETS = (0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.012, 0.016, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0)
FSYNC_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0)


class Metric(NamedTuple):
    kind: str                    # counter | gauge | histogram
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


METRICS = {
    "slarules_requests_total": Metric("counter", "HTTP requests answered, by route and status", ("route", "status")),
    "slarules_request_seconds": Metric("histogram", "Time from a request's headers to its answer, by route",
                                       ("route",), LATENCY_BUCKETS),
    "slarules_findings_total": Metric("counter", "Findings in the verdicts served, by clause", ("clause",)),
    "slarules_in_flight": Metric("gauge", "Requests being answered now"),
    "slarules_revision_info": Metric("gauge", "The pack revision each worker serves (1)", ("revision",)),
    "slarules_reloads_total": Metric("counter", "Pack reloads, by outcome (ok, unchanged or refused)", ("outcome",)),
    "slarules_decision_log_queue": Metric("gauge", "Decision records in the group being written and fsynced (0 between groups)"),
    "slarules_decision_log_records_total": Metric("counter", "Decision records made durable"),
    "slarules_decision_log_fsync_seconds": Metric("histogram", "Time of one group commit (write and fsync)", (),
                                                  FSYNC_BUCKETS),
    "slarules_worker_restarts_total": Metric("counter", "Workers that died and were replaced"),
    "slarules_metric_slots_full_total": Metric("counter", "Updates dropped: a process ran out of metric slots"),
}


class Store:
    """This process's values: `add` and `set` by (metric, label values); slots are made on first use."""

    def __init__(self, folder: str | Path, pid: int | None = None) -> None:
        self.folder = Path(folder)
        pid = os.getpid() if pid is None else pid
        self._keys = open(self.folder / f"{pid}.keys", "a", encoding="utf-8")  # noqa: SIM115  # held for the process
        with open(self.folder / f"{pid}.values", "wb") as f:
            f.truncate(SLOTS * 8)
        with open(self.folder / f"{pid}.values", "r+b") as f:
            self._map = mmap.mmap(f.fileno(), SLOTS * 8)
        self._values = memoryview(self._map).cast("d")
        self._slots: dict[tuple[str, tuple[str, ...]], int] = {}
        self._naming = threading.Lock()         # the supervisor's event loop and its log thread both count
        self._observed: dict[tuple[str, tuple[str, ...], int], tuple[int, int, int]] = {}   # (name, labels, bucket)

    def slot(self, name: str, labels: tuple[str, ...] = ()) -> int:
        """The index of a value; its name is on disk before the value is, so a reader never sees a nameless one."""
        key = (name, labels)
        index = self._slots.get(key)
        if index is None:
            with self._naming:
                index = self._slots.get(key)
                if index is None:
                    index = len(self._slots)
                    if index >= SLOTS - 1:
                        return SLOTS - 1            # the last slot: the overflow count
                    self._keys.write(json.dumps([name, list(labels)]) + "\n")
                    self._keys.flush()
                    self._slots[key] = index
        return index

    def add(self, name: str, labels: tuple[str, ...] = (), amount: float = 1.0) -> None:
        self._values[self.slot(name, labels)] += amount

    def set(self, name: str, labels: tuple[str, ...] = (), value: float = 0.0) -> None:
        self._values[self.slot(name, labels)] = value

    def observe(self, name: str, labels: tuple[str, ...], seconds: float) -> None:
        """One observation of a histogram: its bucket (stored apart, summed up when read), sum and count."""
        buckets = METRICS[name].buckets
        at = bisect.bisect_left(buckets, seconds)
        slots = self._observed.get((name, labels, at))
        if slots is None:                       # a series' bucket seen first: its names are written once
            le = _le(buckets[at]) if at < len(buckets) else "+Inf"
            slots = self._observed[name, labels, at] = (self.slot(name + "_bucket", (*labels, le)),
                                                        self.slot(name + "_sum", labels),
                                                        self.slot(name + "_count", labels))
        values = self._values
        values[slots[0]] += 1
        values[slots[1]] += seconds
        values[slots[2]] += 1

    def close(self) -> None:
        self._values.release()
        self._map.close()
        self._keys.close()


def _le(bound: float) -> str:
    return repr(float(bound))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_all(folder: str | Path) -> tuple[dict[tuple[str, tuple[str, ...]], float], dict[tuple[str, tuple[str, ...]], float]]:
    """Every process's values: (summed over all processes, summed over live processes only)."""
    total: dict[tuple[str, tuple[str, ...]], float] = {}
    live: dict[tuple[str, tuple[str, ...]], float] = {}
    for keys_path in Path(folder).glob("*.keys"):
        pid = int(keys_path.stem)
        try:
            names = keys_path.read_text(encoding="utf-8").splitlines()
            data = (keys_path.with_suffix(".values")).read_bytes()
        except OSError:
            continue
        alive = _alive(pid)
        values = memoryview(data).cast("d")
        for index, line in enumerate(names):
            try:
                name, labels = json.loads(line)
            except ValueError:
                continue            # a line being written
            key = (name, tuple(labels))
            total[key] = total.get(key, 0.0) + values[index]
            if alive:
                live[key] = live.get(key, 0.0) + values[index]
        overflow = values[SLOTS - 1]
        if overflow:
            key = ("slarules_metric_slots_full_total", ())
            total[key] = total.get(key, 0.0) + overflow
    return total, live


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2 ** 53 else repr(value)


def render(folder: str | Path) -> str:
    """The Prometheus text exposition (format 0.0.4) of every process's values."""
    total, live = read_all(folder)
    out: list[str] = []
    for name, m in METRICS.items():
        out += [f"# HELP {name} {m.help}", f"# TYPE {name} {m.kind}"]
        if m.kind == "histogram":
            out += _histogram(name, m, total)
            continue
        values = live if m.kind == "gauge" else total
        samples = sorted((labels, v) for (n, labels), v in values.items() if n == name)
        if m.kind == "gauge" and m.labels:      # an info gauge: 1 where any live process says 1
            merged: dict[tuple[str, ...], float] = {}
            for labels, v in samples:
                merged[labels] = max(merged.get(labels, 0.0), v)
            samples = [(labels, v) for labels, v in sorted(merged.items()) if v]
        if not samples and not m.labels:
            samples = [((), 0.0)]
        out += [f"{name}{_labels(m.labels, labels)} {_number(v)}" for labels, v in samples]
    return "\n".join(out) + "\n"


def _histogram(name: str, m: Metric, total: dict[tuple[str, tuple[str, ...]], float]) -> list[str]:
    series = sorted({labels for (n, labels) in total if n == name + "_count"})
    if not series and not m.labels:
        series = [()]
    out = []
    for labels in series:
        running = 0.0
        for bound in [*map(_le, m.buckets), "+Inf"]:
            running += total.get((name + "_bucket", (*labels, bound)), 0.0)
            out.append(f"{name}_bucket{_labels((*m.labels, 'le'), (*labels, bound))} {_number(running)}")
        out.append(f"{name}_sum{_labels(m.labels, labels)} {_number(total.get((name + '_sum', labels), 0.0))}")
        out.append(f"{name}_count{_labels(m.labels, labels)} {_number(total.get((name + '_count', labels), 0.0))}")
    return out
