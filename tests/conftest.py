"""Shared helpers: one compiled engine per session and a base case to vary."""
from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import pytest

from slarules import Engine

# The compiled-program cache of this test run is its own, never the user's ~/.cache; pytest-xdist's workers
# share the one their controller made (entries are written atomically), so the packs compile once a run.
_shared = os.environ.get("SLARULES_TEST_CACHE") if os.environ.get("PYTEST_XDIST_WORKER") else None
os.environ["SLARULES_TEST_CACHE"] = os.environ["SLARULES_CACHE_DIR"] = \
    _shared or tempfile.mkdtemp(prefix="slarules-test-cache-")
# A failure of the columnar pass raises here instead of quietly taking the per-case path (same verdicts,
# ten times slower): only tests/test_hostile.py turns it off, to test that fallback itself.
os.environ["SLARULES_STRICT"] = "1"

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "cases"

BASE = {
    "waybill": "T0001", "product": "taobao", "timezone": "Asia/Shanghai",
    "as_of": "2026-05-10T09:00:00+08:00",
    "stations": {"sending": "S-01", "delivering": "D-01"},
    "parcel": {"length_cm": 60, "width_cm": 40, "height_cm": 30, "weight_kg": 8.5,
               "declared_value_cny": 320, "packaging_compliant": True, "prohibited": False},
    "collection": {"sender_signed": True, "in_service_area": True, "quoted_cny": "12.00", "charged_cny": "12.00"},
    "scans": [
        {"type": "collect", "station": "S-01", "at": "2026-05-01T09:10:00+08:00"},
        {"type": "dispatch", "station": "S-01", "at": "2026-05-01T18:00:00+08:00"},
        {"type": "arrival", "station": "D-01", "at": "2026-05-02T11:40:00+08:00"},
        {"type": "signed", "station": "D-01", "at": "2026-05-02T16:20:00+08:00"},
    ],
    "delivery": {"signed_by": "recipient", "recipient_notified": True, "recipient_consented": True,
                 "proxy_id_checked": True, "signature_legible": True},
    "outcome": {"lost": False, "damaged": False, "contents_short": False, "packaging_intact": True,
                "recipient_denies_receipt": False},
}


def insert_lines(path: Path, lines: dict[int, bytes], tail: bytes = b"") -> None:
    """Plant raw lines in a JSON Lines file: {index before which to insert: line}, then `tail`."""
    rows = path.read_bytes().splitlines(keepends=True)
    for index, line in lines.items():
        rows.insert(index, line)
    path.write_bytes(b"".join(rows) + tail)


def complaint(**kw) -> dict:
    c = {"kind": "complaint", "channel": "phone", "received_at": "2026-05-03T08:00:00+08:00", "major": False,
         "issues": [], "first_contact_at": "2026-05-03T08:04:00+08:00", "closed_at": "2026-05-03T08:25:00+08:00"}
    c.update(kw)
    return c


def case(**changes) -> dict:
    """The base case with top-level blocks replaced or (for dicts) updated; None removes a block."""
    c = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            c.pop(key, None)
        elif isinstance(value, dict) and isinstance(c.get(key), dict):
            c[key].update(value)
        else:
            c[key] = value
    return c


def scans(arrival: str | None = "2026-05-02T11:40:00+08:00", signed: str | None = "2026-05-02T16:20:00+08:00",
          dispatch: str | None = "2026-05-01T18:00:00+08:00") -> list[dict]:
    out = [{"type": "collect", "station": "S-01", "at": "2026-05-01T09:10:00+08:00"}]
    if dispatch:
        out.append({"type": "dispatch", "station": "S-01", "at": dispatch})
    if arrival:
        out.append({"type": "arrival", "station": "D-01", "at": arrival})
    if signed:
        out.append({"type": "signed", "station": "D-01", "at": signed})
    return out


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine.default()


DATED = ROOT / "tests" / "packs" / "dated"      # two dated versions of pack `fees` (strategies.dated_cases)


@pytest.fixture(scope="session")
def dated_engine() -> Engine:
    """The shipped packs plus two dated versions of one pack."""
    return Engine.load([ROOT / "rules", DATED])


@pytest.fixture(scope="session")
def bounds_engine(tmp_path_factory) -> Engine:
    """A pack whose amounts reach each bound of slarules/money.py (tests/money_bounds.py)."""
    from money_bounds import pack_text
    folder = tmp_path_factory.mktemp("bounds")
    (folder / "bounds.yaml").write_text(pack_text(), encoding="utf-8")
    return Engine.load([folder])


# The shipped packs with a layer over two of them (examples/layers, tests/packs/layers): the differential
# tests run them too, since a layer is applied before compiling and every backend must agree on it.
LAYERED_PACKS = [ROOT / "rules", ROOT / "examples" / "layers", ROOT / "tests" / "packs" / "layers"]


@pytest.fixture(scope="session")
def layered_engine() -> Engine:
    return Engine.load(LAYERED_PACKS)


def fired(engine: Engine, c: dict) -> set[str]:
    return {f.rule for f in engine.adjudicate(c).findings}


def hide_durable_rules(folder: Path, error: str = "durable_rules is not importable here") -> dict[str, str]:
    """An environment for a subprocess in which importing durable_rules raises ImportError(`error`)."""
    for name in ("durable/__init__.py", "durable_rules_engine.py"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"raise ImportError({error!r})\n")
    return {**os.environ, "PYTHONPATH": str(folder)}


def crash_on_chunk(monkeypatch, index: int):
    """Make a local batch raise on chunk `index`, as a crash would; call the result to undo it."""
    from slarules.batch import runner
    real = runner.adjudicate_chunk

    def crashing(chunk, job):
        if chunk.index == index:
            raise RuntimeError("simulated crash")
        return real(chunk, job)
    monkeypatch.setattr(runner, "adjudicate_chunk", crashing)
    return lambda: monkeypatch.setattr(runner, "adjudicate_chunk", real)
