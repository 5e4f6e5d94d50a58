"""The backend registry (runtime/backend.py): a backend registered once is selectable everywhere.

A toy backend is built here from the same Program IR (it delegates to the Polars
backend and counts what it ran) and registered in the test only: the library,
`slarules batch`, `slarules diff` and `slarules test` select it by name with no
other edit. An unknown name is one located error that lists the registered ones,
and no module but runtime/backend.py spells a backend's name.
"""
from __future__ import annotations

import ast
import copy
import json

import pytest
from conftest import BASE, ROOT, case

from slarules import CaseError, Engine, InputError, PackError
from slarules.batch.runner import Batch, BatchOptions
from slarules.cli import main
from slarules.runtime import backend as backends
from slarules.runtime.backend import Registration, RunResult
from slarules.runtime.polars_backend import PolarsBackend

AS_OF = "2026-05-20T00:00:00+08:00"


class Toy:
    """A backend of its own built from the Program: Polars underneath, counting the cases it ran."""

    ran = 0

    def __init__(self, program):
        self.inner = PolarsBackend(program)

    def run(self, doc: dict) -> RunResult:
        return self.run_many([doc])[0]

    def run_many(self, docs: list[dict]) -> list[RunResult]:
        Toy.ran += len(docs)
        return self.inner.run_many(docs)


@pytest.fixture
def toy():
    backends.register(Registration("toy", "a test's backend, Polars underneath", Toy, bulk=True))
    Toy.ran = 0
    yield "toy"
    backends.unregister("toy")


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    late = case(waybill="LATE")
    late["scans"][-1]["at"] = "2026-05-09T16:20:00+08:00"
    return [copy.deepcopy(BASE), late, {"waybill": "BROKEN", "no_such_field": 1}]


def outcomes(results) -> list[str]:
    return [v.to_json() if f is not None else f"{type(v).__name__}: {v.message}" for f, v in results]


def test_a_registered_backend_runs_from_the_library(engine, toy, cases):
    on_toy = outcomes(engine.adjudicate_many(copy.deepcopy(cases), as_of=AS_OF, backend=toy))
    assert Toy.ran == 2         # the two valid cases, the broken one refused before any backend
    assert on_toy == outcomes(engine.adjudicate_many(copy.deepcopy(cases), as_of=AS_OF, backend="durable"))
    _, run = engine.run(copy.deepcopy(BASE), AS_OF, backend=toy)
    assert run.fired == engine.run(copy.deepcopy(BASE), AS_OF)[1].fired and Toy.ran == 3
    assert toy in backends.names() and toy in backends.names(bulk=True)


def test_a_registered_backend_runs_from_the_cli(toy, cases, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in cases))
    outputs = {}
    for name in (toy, "durable"):
        out = tmp_path / f"{name}.jsonl"
        assert main(["batch", str(source), "-o", str(out), "--as-of", AS_OF, "--backend", name]) == 0
        outputs[name] = out.read_bytes()
    assert Toy.ran == 2 and outputs[toy] == outputs["durable"]
    assert main(["diff", str(source), "--base", str(ROOT / "rules"), "--head", str(ROOT / "rules"),
                 "--as-of", AS_OF, "--backend", toy, "--format", "json"]) == 0
    assert Toy.ran == 6         # both sides of the diff ran on it
    capsys.readouterr()
    assert main(["test", str(ROOT / "rules" / "national"), "--backend", toy, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backends"] == [toy] and report["failed"] == 0 and report["passed"] > 0
    assert Toy.ran > 6


def test_pack_tests_run_on_every_registered_backend_by_default(toy, capsys):
    assert main(["test", str(ROOT / "rules" / "national"), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backends"] == [backends.REFERENCE, *(n for n in backends.names() if n != backends.REFERENCE)]
    assert toy in report["backends"] and Toy.ran == report["passed"]


def test_a_backend_that_disagrees_fails_the_pack_tests_naming_it(capsys):
    class Silent(Toy):          # fires nothing: every case expecting a finding must fail on it, and only on it
        def run_many(self, docs):
            return [RunResult(strata_closed=1, undecided=[], in_scope=set()) for _ in docs]
    backends.register(Registration("silent", "fires nothing", Silent, bulk=True))
    try:
        assert main(["test", str(ROOT / "rules" / "national"), "--format", "json"]) == 1
    finally:
        backends.unregister("silent")
    report = json.loads(capsys.readouterr().out)
    failed = [c for c in report["cases"] if not c["passed"]]
    assert failed and all(c["failed_on"] == ["silent"] and "on the silent backend:" in c["diff"] for c in failed)


def test_an_unknown_backend_is_one_located_error_listing_the_registered_ones(engine, toy, tmp_path, capsys):
    with pytest.raises(CaseError) as caught:
        engine.adjudicate_many([BASE], backend="nope")
    assert caught.value.field == "backend" and caught.value.hint == "registered: polars, durable, toy"
    with pytest.raises(CaseError, match="unknown backend `nope`"):
        engine.run(BASE, AS_OF, backend="nope")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(BASE) + "\n")
    with pytest.raises(InputError) as caught:
        Batch(engine, str(source), str(tmp_path / "out.jsonl"), BatchOptions(backend="nope"))
    assert caught.value.field == "backend" and "toy" in caught.value.hint
    assert not list(tmp_path.glob("out*"))          # refused before anything is written
    with pytest.raises(PackError, match="unknown backend"):
        from slarules.tools.packtest import backends_to_test
        backends_to_test(["nope"])
    for argv in (["batch", str(source), "-o", str(tmp_path / "o.jsonl"), "--backend", "nope"],
                 ["test", "--backend", "nope"]):
        with pytest.raises(SystemExit) as code:
            main(argv)
        err = capsys.readouterr().err
        assert code.value.code == 2 and "invalid choice: 'nope'" in err and "'toy'" in err
        assert "Traceback" not in err


def test_spark_takes_only_a_bulk_backend_and_says_which(engine, tmp_path):
    pytest.importorskip("pyspark")
    from slarules.spark import bulk_backend, run_spark_batch
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(BASE) + "\n")
    with pytest.raises(InputError) as caught:       # refused before any Spark session or output
        run_spark_batch(engine, str(source), str(tmp_path / "o.jsonl"), BatchOptions(backend="durable"))
    assert caught.value.field == "--backend" and "bulk backends: polars" in caught.value.hint
    assert not list(tmp_path.glob("o*")) and bulk_backend("polars") == "polars"


def test_no_module_but_the_registry_spells_a_backend_name():
    """A string equal to a registered name anywhere else is a check or a default the registry should own."""
    names = set(backends.REGISTERED)
    registry = ROOT / "slarules" / "runtime" / "backend.py"
    found = []
    for path in sorted((ROOT / "slarules").rglob("*.py")):
        if path == registry:
            continue
        tree = ast.parse(path.read_text("utf-8"))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr)}
        found += [f"{path.relative_to(ROOT)}:{n.lineno}: {n.value!r}" for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and n.value in names and id(n) not in docstrings]
    assert not found, found


def test_a_shipped_backend_cannot_be_unregistered():
    with pytest.raises(ValueError):
        backends.unregister(backends.REFERENCE)
    assert isinstance(Engine, type)


def test_a_registered_backend_reaches_spawned_batch_workers(toy, cases, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in cases * 2))
    outputs = {}
    for name in (toy, "durable"):
        out = tmp_path / f"{name}.jsonl"
        assert main(["batch", str(source), "-o", str(out), "--as-of", AS_OF, "--backend", name,
                     "--workers", "2", "--chunk-size", "2"]) == 0
        outputs[name] = out.read_bytes()
    assert outputs[toy] == outputs["durable"] and outputs[toy].count(b"\n") == 4
