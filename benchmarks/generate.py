"""A seeded generator of realistic cases for benchmarks and the batch tests.

Plain `random` with a seed (Hypothesis costs ~5 ms a case, far too slow for
millions): the same seed and count give byte-identical files. The mix follows a
day of a real network: arrivals spread over the day with about 20% after noon,
about 5% with no arrival scan, a few % oversize, unsigned (sender did not sign
or parcel not yet signed for), complained about, short or lost; and, with
`--bad-rate`, rows that the case contract rejects, so the errors path is used;
with `--kpi`, complaints also carry the KPI fields (agent, team, call record,
survey, handling time) from a separate random stream, so every other byte stays
as without it (the golden inputs do not change).

    python benchmarks/generate.py 1000000 cases.jsonl [--seed 7] [--bad-rate 0.001] [--kpi]
    python benchmarks/generate.py 200000 cases.parquet
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from typing import Iterator

CST = timezone(timedelta(hours=8))
DAY = datetime(2026, 5, 1, tzinfo=CST)
STATIONS = [f"ST-{i:03d}" for i in range(200)]
HUBS = [f"HUB-{i:02d}" for i in range(12)]
ISSUES = ["delay", "pressure_marks", "lost", "rude_courier", "insult", "physical_conflict", "overcharge",
          "damage", "contents_short"]
BAD = [  # (what is wrong, how) - each is a row Pydantic must reject
    lambda c, r: c.update(waybill=""),
    lambda c, r: c.update(product="express"),
    lambda c, r: c.update(colour="red"),
    lambda c, r: c.setdefault("parcel", {}).update(length_cm=-3),
    lambda c, r: c["scans"].append({"type": "arrival", "station": "ST-001", "at": "yesterday"}),
    lambda c, r: c.update(timezone="Mars/Olympus"),
    lambda c, r: c.setdefault("collection", {}).update(charged_cny="12.345"),
]


def iso(t: datetime) -> str:
    return t.isoformat()


def case(r: random.Random, n: int) -> dict:
    sending, delivering = r.sample(STATIONS, 2)
    product = "taobao" if r.random() < 0.7 else "standard"
    collect = DAY + timedelta(minutes=r.randrange(8 * 60, 20 * 60))
    dispatch = collect + timedelta(minutes=r.randrange(60, 10 * 60))
    # arrival hour of day: 80% in the morning wave, 20% after noon
    arrival_day = (dispatch + timedelta(hours=8)).date()
    hour = r.uniform(5, 12) if r.random() < 0.8 else r.uniform(12, 21)
    arrival = datetime(arrival_day.year, arrival_day.month, arrival_day.day, tzinfo=CST) + timedelta(hours=hour)
    arrival = arrival.replace(second=0, microsecond=0)
    c: dict = {"waybill": f"BX{n:010d}", "product": product, "timezone": "Asia/Shanghai"}
    scans = [{"type": "collect", "station": sending, "at": iso(collect)},
             {"type": "dispatch", "station": sending, "at": iso(dispatch)}]
    if r.random() >= 0.05:
        scans.append({"type": "arrival", "station": delivering, "at": iso(arrival)})
    signed = None
    if r.random() >= 0.03:   # a few % never signed for
        signed = arrival + timedelta(minutes=int(r.expovariate(1 / 240)))
        scans.append({"type": "signed", "station": delivering, "at": iso(signed)})
    r.shuffle(scans)
    c["stations"] = {"sending": sending, "delivering": delivering}
    c["scans"] = scans
    c["as_of"] = iso(arrival + timedelta(days=3))
    oversize = r.random() < 0.03
    sides = [r.randrange(10, 60) for _ in range(3)]
    if oversize:
        sides[0] = r.choice([201, 250, 120])
    c["parcel"] = {"length_cm": sides[0], "width_cm": sides[1], "height_cm": sides[2],
                   "weight_kg": str(round(r.uniform(0.2, 55 if oversize else 20), 3)),
                   "declared_value_cny": r.choice([50, 120, 320, 800]),
                   "packaging_compliant": r.random() >= 0.02, "prohibited": r.random() < 0.005}
    quoted = r.choice(["8.00", "12.00", "15.50", "22.00"])
    charged = quoted if r.random() >= 0.02 else f"{float(quoted) + r.choice([1, 3, 10]):.2f}"
    c["collection"] = {"sender_signed": r.random() >= 0.02, "in_service_area": r.random() >= 0.01,
                       "quoted_cny": quoted, "charged_cny": charged}
    if signed is not None:
        proxy = r.random() < 0.1
        c["delivery"] = {"signed_by": "proxy" if proxy else r.choice(["recipient", "recipient", "locker"]),
                         "recipient_notified": r.random() >= 0.03, "recipient_consented": r.random() >= 0.05,
                         "proxy_id_checked": r.random() >= 0.1, "signature_legible": r.random() >= 0.03}
    lost = signed is None and r.random() < 0.3
    short = r.random() < 0.01
    c["outcome"] = {"lost": lost, "damaged": r.random() < 0.01, "contents_short": short,
                    "packaging_intact": r.random() >= 0.3 if short else True,
                    "recipient_denies_receipt": r.random() < 0.005}
    if r.random() < 0.005:
        c["hub_handling"] = {"station": r.choice(HUBS), "found": r.choice(["prohibited", "contaminating"]),
                             "reported": r.random() >= 0.2, "isolated": r.random() >= 0.2,
                             "photographed": r.random() >= 0.2, "registered": r.random() >= 0.2,
                             "repacked": r.random() >= 0.2}
    if r.random() < 0.04:
        received = (signed or arrival) + timedelta(minutes=r.randrange(10, 48 * 60))
        kind = "complaint" if r.random() < 0.7 else "query"
        issues = r.sample(ISSUES, r.choice([1, 1, 2]))
        comp = {"kind": kind, "channel": r.choice(["phone", "online", "ticket"]), "received_at": iso(received),
                "major": r.random() < 0.05, "issues": issues}
        if "delay" in issues:
            comp["delay_minutes"] = r.randrange(5, 600)
        comp["first_contact_at"] = iso(received + timedelta(minutes=int(r.expovariate(1 / 8))))
        if r.random() < 0.9:
            comp["closed_at"] = iso(received + timedelta(minutes=int(r.expovariate(1 / 300))))
        c["complaint"] = comp
        c["as_of"] = iso(max(received + timedelta(days=3), arrival + timedelta(days=3)))
    return c


AGENTS = [f"CS-{i:04d}" for i in range(40)]


def add_kpi_fields(r: random.Random, c: dict) -> None:
    """The complaint's optional KPI fields, each sometimes absent (the indicators' edges)."""
    comp = c.get("complaint")
    if comp is None:
        return
    if r.random() < 0.95:
        agent = r.choice(AGENTS)
        comp["agent"] = agent
        if r.random() < 0.95:
            comp["team"] = f"CS-T{int(agent[3:]) % 5}"
    if comp["channel"] == "phone" and r.random() < 0.9:
        rings = r.randrange(0, 12)
        comp["rings"] = rings
        if rings < 8:       # long rings: the caller hung up
            comp["connected_at"] = comp["received_at"]
    if r.random() < 0.8:
        comp["resolved_first_contact"] = r.random() < 0.7
    if r.random() < 0.4:
        comp["satisfied"] = r.random() < 0.85
    if r.random() < 0.9:
        comp["handling_minutes"] = r.choice([str(r.randrange(1, 6000) / 100), r.randrange(1, 90)])


BLOCK = 50_000   # each block has its own seed, so blocks can be generated in parallel, same bytes


def _block(seed: int, block: int, start: int, stop: int, bad_rate: float, kpi: bool = False) -> Iterator[dict]:
    r = random.Random(seed * 1_000_003 + block)
    rk = random.Random(seed * 1_000_003 + block + 500_000_000_017) if kpi else None
    for n in range(start, stop):
        c = case(r, n)
        if rk is not None:
            add_kpi_fields(rk, c)
        if bad_rate and r.random() < bad_rate:
            r.choice(BAD)(c, r)
        yield c


def cases(count: int, seed: int = 7, bad_rate: float = 0.0, kpi: bool = False) -> Iterator[dict]:
    for block, start in enumerate(range(0, count, BLOCK)):
        yield from _block(seed, block, start, min(start + BLOCK, count), bad_rate, kpi)


EDGE_ARRIVALS = ["11:59:59", "12:00:00", "12:00:01", "00:00:00", "23:59:59"]   # TB-1's cutoff and the day's ends
EDGE_SIGNED = [-1, 0, 1, 59, 60, 61]     # seconds from the TB-1 deadline: on it, either side, minute rounding
EDGE_SIDES = [(200, 20, 20), (201, 20, 20), (200, 25, 25), (200, 25, 26), (100, 50, 50), (100, 50, 51), None, None, None]
EDGE_WEIGHTS = ["50", "50.000", "50.001", "49.999", None]
EDGE_MONEY = [("12.00", "12.01"), ("12.00", "12.00"), ("12.01", "12.00"), ("0.01", "999.99"), (None, "12.00")]


def edge_case(r: random.Random, n: int) -> dict:
    """A realistic case moved onto the boundaries of TB-1, TB-4, TB-5 and OV-1 (benchmarks/zen_contender.py
    compares zen-engine there): arrivals at the noon cutoff, signing a second either side of the deadline,
    no arrival scan (the dispatch fallback), no delivering station given, parcels exactly at each limit,
    overcharges of a fen, an unsigned sender with a complaint or a query, scribbled signatures denied."""
    c = case(r, n)
    c["product"] = "taobao" if r.random() < 0.85 else "standard"
    zone = CST
    scans = c["scans"]
    arrival = next((s for s in scans if s["type"] == "arrival"), None)
    if arrival is not None and r.random() < 0.7:
        day = datetime.fromisoformat(arrival["at"]).date()
        hh, mm, ss = map(int, r.choice(EDGE_ARRIVALS).split(":"))
        at = datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=zone)
        arrival["at"] = iso(at)
        deadline = (datetime(day.year, day.month, day.day, 17, tzinfo=zone) if at.hour < 12 else
                    datetime(day.year, day.month, day.day, 12, tzinfo=zone) + timedelta(days=1))
        signed = next((s for s in scans if s["type"] == "signed"), None)
        if signed is not None and r.random() < 0.8:
            signed["at"] = iso(deadline + timedelta(seconds=r.choice(EDGE_SIGNED)))
        elif signed is not None and r.random() < 0.5:
            scans.remove(signed)                # unsigned: as_of decides
    if r.random() < 0.1:
        c["scans"] = [s for s in c["scans"] if s["type"] != "arrival"]      # the dispatch fallback
    if r.random() < 0.05:
        c["stations"].pop("delivering")         # the delivering station from the last arrival
    sides = r.choice(EDGE_SIDES)       # None: the realistic sides
    if sides is not None:
        c["parcel"].update(length_cm=sides[0], width_cm=sides[1], height_cm=sides[2])
    weight = r.choice(EDGE_WEIGHTS)
    if weight is None:
        c["parcel"].pop("weight_kg")
    else:
        c["parcel"]["weight_kg"] = weight
    if r.random() < 0.03:
        del c["parcel"]
    quoted, charged = r.choice(EDGE_MONEY)
    c["collection"]["charged_cny"] = charged
    if quoted is None:
        c["collection"].pop("quoted_cny")
    else:
        c["collection"]["quoted_cny"] = quoted
    c["collection"]["sender_signed"] = r.random() < 0.5
    c["outcome"]["lost"] = r.random() < 0.3
    if "delivery" in c and r.random() < 0.1:
        c["delivery"]["signature_legible"] = False
        c["outcome"]["recipient_denies_receipt"] = True
    if r.random() < 0.6:
        received = datetime.fromisoformat(c["scans"][0]["at"]) + timedelta(hours=30)
        c["complaint"] = {"kind": r.choice(["complaint", "query"]), "channel": "phone", "received_at": iso(received),
                          "issues": [r.choice(ISSUES)], "first_contact_at": iso(received + timedelta(minutes=5))}
    else:
        c.pop("complaint", None)
    return c


def edge_cases(count: int, seed: int = 7) -> Iterator[dict]:
    r = random.Random(seed * 1_000_003 + 999_999_937)
    return (edge_case(r, 9_000_000_000 + n) for n in range(count))


def _jsonl_block(args) -> bytes:
    return "".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) + "\n"
                   for c in _block(*args)).encode("utf-8")


def _parquet_row(c: dict, schema) -> dict:
    """Decimals as strings, as the case schema has them; a value Parquet cannot hold (an unknown
    field, a string where a list goes) is left out, so such a broken row is not reproduced there."""
    import pyarrow as pa

    def fit(value, typ):
        if value is None:
            return None
        if pa.types.is_struct(typ):
            if not isinstance(value, dict):
                return None
            return {typ.field(i).name: fit(value.get(typ.field(i).name), typ.field(i).type)
                    for i in range(typ.num_fields)}
        if pa.types.is_list(typ):
            return [fit(v, typ.value_type) for v in value] if isinstance(value, list) else None
        if pa.types.is_string(typ):
            return value if isinstance(value, str) else str(value)
        return value
    return {f.name: fit(c.get(f.name), f.type) for f in schema}


def write(path: str, count: int, seed: int = 7, bad_rate: float = 0.0, chunk: int = 50_000,
          workers: int = 1, kpi: bool = False) -> None:
    if path.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from slarules.batch.io import case_schema
        schema = case_schema()
        with pq.ParquetWriter(path, schema) as writer:
            batch: list[dict] = []
            for c in cases(count, seed, bad_rate, kpi):
                batch.append(_parquet_row(c, schema))
                if len(batch) >= chunk:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    batch.clear()
            if batch or not count:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        return
    jobs = [(seed, b, start, min(start + BLOCK, count), bad_rate, kpi) for b, start in enumerate(range(0, count, BLOCK))]
    with open(path, "wb") as out:
        if workers > 1 and len(jobs) > 1:
            import multiprocessing
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for text in pool.imap(_jsonl_block, jobs):
                    out.write(text)
        else:
            for job in jobs:
                out.write(_jsonl_block(job))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("count", type=int)
    ap.add_argument("output", help="*.jsonl or *.parquet")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bad-rate", type=float, default=0.0, help="share of rows the contract rejects")
    ap.add_argument("--workers", type=int, default=1, help="processes for JSONL (same bytes whatever the number)")
    ap.add_argument("--kpi", action="store_true", help="complaints carry the KPI fields (agent, team, survey, ...)")
    a = ap.parse_args(argv)
    write(a.output, a.count, a.seed, a.bad_rate, workers=a.workers, kpi=a.kpi)
    return 0


if __name__ == "__main__":
    sys.exit(main())
