"""Zones that mean the same everywhere, and local times that name one instant or none.

A zone is an IANA name from the bundled tzdata, read from the bundled files:
`localtime`, `posixrules`, `Factory` and anything not in tzdata's list are
refused with the field named, and neither the host's zone files nor TZ change a
verdict. A naive time the clocks skipped is a located CaseError; one they showed
twice is its first occurrence, on every backend.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from conftest import ROOT, case, complaint
from hypothesis import given, settings
from hypothesis import strategies as st

from slarules.batch.runner import BatchOptions, run_batch
from slarules.case import zones
from slarules.cli import main
from slarules.errors import CaseError
from slarules.packs.model import read_pack

NOT_ZONES = ["localtime", "posixrules", "Factory", "", "Mars/Base", "Asia", "utc", "asia/shanghai",
             "../zoneinfo/UTC", "posix/Asia/Shanghai", "right/UTC", "/etc/localtime", "Asia/Shanghai\x00"]
NEW_YORK = "America/New_York"
GAP = "2026-03-08T02:30:00"          # clocks go from 02:00 to 03:00
FOLD = "2026-11-01T01:30:00"         # clocks go from 02:00 back to 01:00


@pytest.mark.parametrize("name", NOT_ZONES)
def test_a_name_that_is_no_bundled_iana_zone_is_refused_with_the_field(engine, name):
    with pytest.raises(CaseError) as err:
        engine.adjudicate(case(timezone=name))
    assert err.value.field == "timezone"
    assert not zones.is_zone(name)


@pytest.mark.parametrize("name", ["localtime", "posixrules", "Factory"])
def test_the_host_names_say_why(engine, name, tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(case(timezone=name)), encoding="utf-8")
    assert main(["adjudicate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:1:" in err and "field `timezone`" in err and "depend on the machine" in err


def test_every_bundled_name_is_a_zone_read_from_the_bundle_and_pickled_by_name():
    names = zones.names()
    assert len(names) > 500 and "Asia/Shanghai" in names and "UTC" in names
    for name in names:
        z = zones.zone(name)
        assert isinstance(z, zones.BundledZone) and z.key == name
    z = zones.zone(NEW_YORK)
    assert pickle.loads(pickle.dumps(z)) is z


def test_a_pack_in_a_host_zone_is_a_located_pack_error(tmp_path):
    text = (ROOT / "rules" / "taobao.yaml").read_text(encoding="utf-8")
    assert "\ntimezone: Asia/Shanghai\n" in text
    path = tmp_path / "p.yaml"
    path.write_text(text.replace("\ntimezone: Asia/Shanghai\n", "\ntimezone: localtime\n"), encoding="utf-8")
    pack, issues = read_pack(path)
    assert pack is None and issues[0].field == "timezone" and issues[0].line


@pytest.mark.parametrize("backend", ["polars", "durable"])
def test_a_batch_row_in_a_host_zone_is_its_error_record(engine, tmp_path, backend):
    source = tmp_path / "cases.jsonl"
    source.write_text("".join(json.dumps(case(waybill=f"Z{i}", timezone=tz)) + "\n"
                              for i, tz in enumerate(["UTC", "localtime", "Asia/Shanghai", "Factory"])))
    run_batch(engine, str(source), str(tmp_path / "v.jsonl"), BatchOptions(backend=backend, progress=False))
    records = [json.loads(x) for x in (tmp_path / "v.errors.jsonl").read_bytes().splitlines()]
    assert [(r["line"], r["field"]) for r in records] == [(2, "timezone"), (4, "timezone")]


# ---- the host does not matter -------------------------------------------------------------------

HOST_RUN = """
import json, sys
from slarules import Engine
from slarules.batch.runner import BatchOptions, run_batch
engine = Engine.default()
cases = json.loads(sys.argv[1])
for c in cases:
    print(engine.adjudicate(c, lang="en").to_json(indent=None))
with open(sys.argv[2] + "/cases.jsonl", "w") as f:
    f.write("".join(json.dumps(c) + "\\n" for c in cases))
for backend in ("polars", "durable"):
    run_batch(engine, sys.argv[2] + "/cases.jsonl", sys.argv[2] + f"/{backend}.jsonl",
              BatchOptions(backend=backend, progress=False, as_of="2026-05-20T00:00:00"))
    print(open(sys.argv[2] + f"/{backend}.jsonl").read())
"""


def host_cases() -> list[dict]:
    naive = case(waybill="N1", timezone=None, as_of="2026-05-04T09:00:00")
    for scan in naive["scans"]:
        scan["at"] = scan["at"][:19]            # local times, in the default zone
    york = case(waybill="N2", timezone=NEW_YORK, as_of="2026-05-04T09:00:00")
    return [naive, york, case(waybill="N3", timezone="UTC")]


def test_the_verdict_does_not_depend_on_tz_or_the_hosts_zone_files(tmp_path):
    """Run with TZ set two ways and with PYTHONTZPATH pointing at zone files that lie (Shanghai and New York
    both UTC): zoneinfo.ZoneInfo would read those; the verdicts stay byte-identical."""
    lying = tmp_path / "zoneinfo"
    utc = zones.zone("UTC")
    from importlib import resources
    data = resources.files("tzdata.zoneinfo").joinpath("UTC").read_bytes()
    for name in ("Asia/Shanghai", NEW_YORK, "UTC", "localtime"):
        (lying / name).parent.mkdir(parents=True, exist_ok=True)
        (lying / name).write_bytes(data)
    assert utc.key == "UTC"
    outputs = []
    for env in ({"TZ": "UTC"}, {"TZ": "Asia/Shanghai"}, {"TZ": "America/New_York", "PYTHONTZPATH": str(lying)}):
        work = tmp_path / f"run{len(outputs)}"
        work.mkdir()
        done = subprocess.run([sys.executable, "-c", HOST_RUN, json.dumps(host_cases()), str(work)],
                              env={**os.environ, **env}, capture_output=True, text=True, cwd=ROOT, timeout=300,
                              check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert "+08:00" in outputs[0] and "-04:00" in outputs[0]      # the zones were applied, not UTC


# ---- local times: gaps and folds ----------------------------------------------------------------

def in_new_york(**times: str) -> dict:
    c = case(timezone=NEW_YORK, as_of="2026-11-20T00:00:00-05:00",
             complaint=complaint(received_at="2026-11-01T00:50:00", first_contact_at=None,
                                 closed_at="2026-11-01T01:10:00"))
    for i, scan in enumerate(c["scans"]):
        scan["at"] = ["2026-10-30T09:10:00", "2026-10-30T18:00:00", "2026-10-31T11:40:00", "2026-11-01T01:20:00"][i]
    for where, value in times.items():
        block, _, name = where.partition("__")
        if block == "scan":
            c["scans"][int(name)]["at"] = value
        elif name:
            c[block][name] = value
        else:
            c[block] = value
    return c


def test_localize_refuses_a_skipped_time_and_takes_the_first_of_a_repeated_one():
    york = zones.zone(NEW_YORK)
    with pytest.raises(zones.NoSuchTime, match="does not exist in America/New_York"):
        zones.localize(datetime.fromisoformat(GAP), york)
    first = zones.localize(datetime.fromisoformat(FOLD), york)
    assert first.utcoffset() == timedelta(hours=-4) and first.isoformat() == FOLD + "-04:00"
    assert zones.localize(datetime(2026, 5, 1, 12), york).isoformat() == "2026-05-01T12:00:00-04:00"


@pytest.mark.parametrize("where, field", [("scan__2", "scans.2.at"), ("complaint__closed_at", "complaint.closed_at"),
                                          ("as_of", "as_of")])
def test_a_skipped_local_time_is_a_located_case_error(engine, where, field, tmp_path, capsys):
    c = in_new_york(**{where: GAP})
    with pytest.raises(CaseError, match="does not exist") as err:
        engine.adjudicate(c)
    assert err.value.field == field
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(c, indent=1), encoding="utf-8")
    assert main(["adjudicate", str(path)]) == 2
    shown = capsys.readouterr().err
    assert f"field `{field}`" in shown and f"{path}:" in shown and "UTC-05:00 to UTC-04:00" in shown


def test_a_skipped_as_of_argument_is_refused(engine):
    with pytest.raises(CaseError, match="does not exist") as err:
        engine.adjudicate(in_new_york(), as_of=GAP)
    assert err.value.field == "as_of"


@pytest.mark.parametrize("backend", ["polars", "durable"])
def test_gaps_and_folds_are_read_alike_on_every_backend(engine, tmp_path, backend):
    """A skipped time is the row's error record; a repeated one gives the verdict of its first
    occurrence written with its offset (-04:00), on the per-case and columnar paths alike."""
    rows = [in_new_york(), in_new_york(scan__3=GAP), in_new_york(scan__3=FOLD),
            in_new_york(scan__3=FOLD + "-04:00"), in_new_york(scan__3=FOLD + "-05:00")]
    for i, r in enumerate(rows):
        r["waybill"] = "F1"            # the same waybill: verdicts compare byte for byte
    source = tmp_path / "cases.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_batch(engine, str(source), str(tmp_path / "v.jsonl"), BatchOptions(backend=backend, progress=False))
    verdicts = (tmp_path / "v.jsonl").read_text().splitlines()
    errors = [json.loads(x) for x in (tmp_path / "v.errors.jsonl").read_bytes().splitlines()]
    assert [(e["line"], e["field"]) for e in errors] == [(2, "scans.3.at")]
    assert len(verdicts) == 4 and verdicts[1] == verdicts[2] != verdicts[3]
    assert verdicts[1] == engine.adjudicate(rows[2]).to_json(indent=None)


TRANSITION_TIMES = st.sampled_from(["2026-03-08T01:59:00", "2026-03-08T03:00:00", "2026-03-08T03:30:00",
                                    "2026-11-01T00:59:59", "2026-11-01T01:00:00", "2026-11-01T01:30:00",
                                    "2026-11-01T01:59:59", "2026-11-01T02:00:00", "2026-11-01T02:30:00"])
SLOTS = ["scan__0", "scan__1", "scan__2", "scan__3", "complaint__received_at", "complaint__closed_at",
         "complaint__first_contact_at", "as_of"]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(SLOTS), TRANSITION_TIMES, min_size=1, max_size=4))
def test_a_naive_case_is_judged_as_the_same_case_written_with_offsets(engine, times):
    """Local times across both changes of a year: durations between them are real durations, so the case
    gives the verdict of the one whose every time carries the offset zones.localize gives it."""
    york = zones.zone(NEW_YORK)
    naive = in_new_york(**times)
    written = in_new_york(**{k: zones.localize(datetime.fromisoformat(v), york).isoformat()
                             for k, v in times.items()})
    for c in (naive, written):
        c["complaint"]["received_at"] = c["complaint"].get("received_at") or "2026-11-01T00:50:00-04:00"
    try:
        expected = engine.adjudicate(written, lang="en").to_json()
    except CaseError as exc:
        with pytest.raises(CaseError) as err:
            engine.adjudicate(naive, lang="en")
        assert err.value.message == exc.message
        return
    assert engine.adjudicate(naive, lang="en").to_json() == expected
