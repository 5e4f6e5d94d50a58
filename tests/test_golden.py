"""The verdicts frozen in tests/golden/ (see freeze.py): a refactor changes no byte of them, on any backend.

The first test is the reference (`Engine.adjudicate`, one case at a time on
durable_rules). The others run the same inputs through every registered backend
(runtime/backend.py), a chunk at a time as a batch does, and through the columnar
batch path of each backend that offers one; tests/test_spark.py runs a sample on
Spark through the shared session of that module.
"""
from __future__ import annotations

import copy
import difflib
import json
import sys
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))

import freeze

from slarules import Engine
from slarules.batch.runner import adjudicate_rows
from slarules.runtime import backend as backends
from slarules.verdict.layout import compact

NOW = freeze.AS_OF      # "now" for a case without as_of (the frozen inputs all have one, or are refused first)


def first_difference(frozen: dict[str, str], now: dict[str, str]) -> str | None:
    changed = [name for name in frozen if name in now and frozen[name] != now[name]]
    if not changed:
        return None
    first = changed[0]
    diff = "\n".join(difflib.unified_diff(frozen[first].splitlines(), now[first].splitlines(), "frozen", "now",
                                          lineterm="", n=1))
    return f"{len(changed)} of {len(frozen)} verdicts changed; first, {first}:\n{diff}"


@pytest.fixture(scope="module")
def golden() -> tuple[dict[str, str], dict[tuple[str | None, str], list[tuple[str, dict]]]]:
    """The frozen verdicts, and their inputs grouped by (as_of, lang): one chunk each."""
    groups: dict[tuple[str | None, str], list[tuple[str, dict]]] = defaultdict(list)
    for name, data, as_of, lang in freeze.inputs():
        groups[(as_of, lang)].append((name, data))
    return freeze.load(), groups


def test_every_frozen_verdict_is_byte_identical():
    frozen, now = freeze.load(), freeze.current()
    assert now.keys() == frozen.keys(), "the frozen inputs changed: rerun tests/golden/freeze.py on purpose"
    changed = first_difference(frozen, now)
    assert changed is None, changed


@pytest.mark.parametrize("backend", backends.names())
def test_every_frozen_verdict_is_byte_identical_on_each_backend(golden, backend):
    frozen, groups = golden
    engine = Engine.default()
    now: dict[str, str] = {}
    for (as_of, lang), items in groups.items():
        results = engine.adjudicate_many([copy.deepcopy(data) for _, data in items], as_of=as_of, lang=lang,
                                         backend=backend)
        now.update((name, freeze.rendered(outcome)) for (name, _), (_, outcome) in zip(items, results))
    assert now.keys() == frozen.keys()
    changed = first_difference(frozen, now)
    assert changed is None, f"on {backend}: {changed}"


@pytest.mark.parametrize("backend", backends.names())
def test_every_frozen_verdict_is_byte_identical_through_a_batch_on_each_backend(golden, backend):
    """Each input as a JSON Lines row through the batch's one place a row becomes a verdict (its columnar
    path where the backend has one): the verdict line is the frozen verdict, compact; a refused row's error
    record has the frozen error's class, message and field."""
    frozen, groups = golden
    engine = Engine.default()
    now: dict[str, str] = {}
    columnar_rows = 0
    for (as_of, lang), items in groups.items():
        rows = [(number, json.dumps(data, ensure_ascii=False).encode()) for number, (_, data) in enumerate(items, 1)]
        done = adjudicate_rows(engine, rows, source="golden", raw=True, as_of=as_of, now=NOW, lang=lang,
                               backend=backend)
        columnar_rows += 0 if done.columns is None else done.columns.height
        lines = dict(done.verdicts)
        errors = {number: json.loads(record) for number, record in done.errors}
        for number, (name, _) in enumerate(items, 1):
            if number in errors:
                e = errors[number]
                now[name] = json.dumps({"error": e["error"], "message": e["message"], "field": e["field"]},
                                       ensure_ascii=False)
            else:
                now[name] = lines[number]
    expected = {name: text if text.startswith('{"error"') else compact(text) for name, text in frozen.items()}
    changed = first_difference(expected, now)
    assert changed is None, f"through a batch on {backend}: {changed}"
    assert (columnar_rows > len(frozen) // 2) == backends.REGISTERED[backend].columnar   # the path was taken

