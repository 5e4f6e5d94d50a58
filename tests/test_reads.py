"""Bounded reads: every input of every command is a regular file read no further than its limit,
standard input no further than the limit either, and a refusal costs no more than the parse.

Non-regular files (/dev/zero, /dev/urandom, a FIFO whose writer never writes, a directory, a
socket) go through every command in one child process, with a memory cap and a timeout: a reader
that regressed to reading them would fail the test, not take the machine with it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import BASE, EXAMPLES, ROOT, case, complaint
from hypothesis import given, settings, strategies as st

from slarules import facts
from slarules.batch.runner import BatchOptions, run_batch
from slarules.case import reader
from slarules.case.fast import case_of, read_case
from slarules.case.json_paths import path_at, where
from slarules.case.limits import PACK_BYTES, Limits
from slarules.case.sources import parse_text, parse_yaml
from slarules.engine import Engine
from slarules.errors import CaseError, InputError, PackError
from slarules.packs.model import read_pack
from slarules.output.decision_log import DecisionLog, line_bytes, read_log

RULES = str(ROOT / "rules")
CASE_FILE = str(EXAMPLES / "tb1-late.yaml")
AS_OF = "2026-05-20T00:00:00+08:00"


# ---- every command, every kind of file that is not a regular file ------------------------------

COMMANDS = {
    "adjudicate": lambda p, tmp: ["adjudicate", p],
    "explain": lambda p, tmp: ["explain", p],
    "adjudicate --packs": lambda p, tmp: ["adjudicate", CASE_FILE, "--packs", p],
    "check": lambda p, tmp: ["check", p, "--no-analysis"],
    "check --catalogue": lambda p, tmp: ["check", RULES, "--catalogue", p, "--no-analysis"],
    "test": lambda p, tmp: ["test", p, "--packs", RULES],
    "replay": lambda p, tmp: ["replay", p],
    "batch": lambda p, tmp: ["batch", p, "-o", f"{tmp}/out.jsonl", "--input-format", "jsonl"],
    "diff": lambda p, tmp: ["diff", p, "--base", RULES, "--head", RULES, "--input-format", "jsonl"],
}
# Every command meets a FIFO and /dev/zero; the case reader meets every kind.
RUNS = [(kind, command) for kind in ("fifo", "zero") for command in COMMANDS] + \
       [(kind, command) for kind in ("urandom", "directory", "socket") for command in ("adjudicate", "replay")]

_CHILD = r"""
import contextlib, io, json, os, socket, sys
from slarules.cli import main
tmp, runs = sys.argv[1], json.loads(sys.argv[2])
os.mkfifo(f"{tmp}/fifo")
writer = os.open(f"{tmp}/fifo", os.O_RDWR | os.O_NONBLOCK)      # a writer that never writes
os.mkdir(f"{tmp}/directory")
server = socket.socket(socket.AF_UNIX); server.bind(f"{tmp}/socket"); server.listen()
paths = {"fifo": f"{tmp}/fifo", "zero": "/dev/zero", "urandom": "/dev/urandom",
         "directory": f"{tmp}/directory", "socket": f"{tmp}/socket"}
out = []
for kind, argv in runs:
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        code = main([paths[kind] if a == "PATH" else a for a in argv])
    out.append([code, o.getvalue() + e.getvalue()])
print(json.dumps(out))
"""


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


@pytest.fixture(scope="module")
def refusals(tmp_path_factory) -> dict[tuple[str, str], tuple[int, str]]:
    """(kind, command) -> (exit code, what it printed), from one child process."""
    tmp = tmp_path_factory.mktemp("kinds")
    runs = [(kind, COMMANDS[command]("PATH", tmp)) for kind, command in RUNS]
    done = subprocess.run([sys.executable, "-c", _CHILD, str(tmp), json.dumps(runs)], capture_output=True,
                          text=True, timeout=240, preexec_fn=_cap_memory, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    return {run: tuple(result) for run, result in zip(RUNS, found)}


KIND_WORDS = {"fifo": "named pipe (FIFO)", "zero": "character device", "urandom": "character device",
              "directory": "directory", "socket": "socket"}


@pytest.mark.parametrize("kind,command", RUNS)
def test_every_command_refuses_a_file_that_is_not_regular_at_once(refusals, kind, command):
    code, said = refusals[(kind, command)]
    assert "Traceback" not in said and "internal error" not in said
    assert KIND_WORDS[kind] in said, said
    # `check` lists it as a pack's problem, `test` as a test file that failed; the others refuse it
    assert code == (1 if command.split()[0] in ("check", "test") else 2), said


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_standard_input_is_read_no_further_than_the_limit(device):
    with open(device, "rb") as endless:
        r = subprocess.run([sys.executable, "-m", "slarules", "adjudicate", "-", "--limit", "case_bytes=64KiB"],
                           stdin=endless, capture_output=True, timeout=120, cwd=ROOT, preexec_fn=_cap_memory)
    assert r.returncode == 2 and b"<stdin>: the input is more than 65,536 bytes" in r.stderr
    assert b"case_bytes" in r.stderr and b"Traceback" not in r.stderr


def test_a_pipe_on_standard_input_is_read_as_it_comes():
    r = subprocess.run([sys.executable, "-m", "slarules", "adjudicate", "-", "--format", "json"],
                       input=Path(CASE_FILE).read_bytes(), capture_output=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0 and json.loads(r.stdout)["waybill"]


def test_a_checkpoint_that_is_a_fifo_is_refused_not_waited_for(engine, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(case()) + "\n")
    os.mkfifo(tmp_path / "out.jsonl.checkpoint.json")
    with pytest.raises(InputError, match="checkpoint of an earlier run cannot be read"):
        run_batch(engine, str(source), str(tmp_path / "out.jsonl"), BatchOptions(as_of=AS_OF, progress=False))


# ---- the reader itself ---------------------------------------------------------------------------

def test_a_file_over_the_limit_is_refused_from_its_size_and_never_read(tmp_path, monkeypatch):
    big = tmp_path / "big.json"
    big.write_text(json.dumps(case(scans=[dict(BASE["scans"][2])] * 100_000)))
    monkeypatch.setattr(reader, "_read_at_most", lambda f, n: pytest.fail("read a file over the limit"))
    with pytest.raises(InputError, match="more than 1 MiB") as err:
        read_case(str(big))
    assert "case_bytes" in err.value.hint


def test_a_file_within_the_limit_is_read_one_byte_past_it_at_most(tmp_path, monkeypatch):
    asked = []
    real = reader._read_at_most
    monkeypatch.setattr(reader, "_read_at_most", lambda f, n: asked.append(n) or real(f, n))
    read_case(CASE_FILE, Limits(case_bytes=50_000))
    assert asked == [50_001]


def test_a_file_that_grows_while_it_is_read_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "c.json"
    path.write_bytes(b"{}")
    monkeypatch.setattr(reader, "_read_at_most", lambda f, n: b" " * n)     # as if it grew meanwhile
    with pytest.raises(InputError, match="grew past 100 bytes"):
        reader.read_file(path, 100)


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(0, 40), max_size=12), limit=st.integers(1, 30), tail=st.integers(0, 40))
def test_lines_are_bounded_numbered_and_a_long_one_is_skipped_in_pieces(lengths, limit, tail):
    lines = [b"x" * n + b"\n" for n in lengths] + ([b"y" * tail] if tail else [])    # the last may lack its newline
    asked: list[int] = []

    class Watched(io.BytesIO):
        def readline(self, size: int | None = -1) -> bytes:
            asked.append(size)
            return super().readline(size)
    got = list(reader.bounded_lines(Watched(b"".join(lines)), limit))
    assert got == [(i, None if len(line.rstrip(b"\n")) > limit else line) for i, line in enumerate(lines, 1)]
    assert all(0 < n <= limit + 1 for n in asked)


# ---- refusing costs no more than parsing ---------------------------------------------------------

def test_a_list_longer_than_the_contract_allows_is_refused_before_anything_validates_it(monkeypatch):
    monkeypatch.setattr(facts.Case, "model_validate", lambda *a, **k: pytest.fail("validated the issues"))
    text = json.dumps(case(complaint=complaint(issues=["delay"] * 10_000)), indent=1)
    with pytest.raises(CaseError) as err:
        doc = parse_text(text, "c.json")
        case_of(doc.data, doc)
    assert err.value.message == "10,000 items; the contract allows at most 32"
    assert err.value.field == "complaint.issues" and err.value.hint is None
    assert err.value.line == text.splitlines().index(' "complaint": {') + 1 + \
        text.split(' "complaint": {', 1)[1].split("\n").index('  "issues": [')


def test_the_bounds_counted_first_are_the_field_tables():
    from slarules.case import fields
    from slarules.case.limits import _LISTS
    assert {(b, n, limit, most) for b, n, limit, most in _LISTS} == {
        (None, "scans", "scans", fields.CASE["scans"].max_items),
        ("complaint", "issues", None, fields.COMPLAINT["issues"].max_items)}


def test_many_unknown_keys_are_counted_but_pydantic_sees_one_per_mapping(monkeypatch):
    data = case()
    data.update({f"k{i:05d}": i for i in range(5_000)})
    data["parcel"].update({f"p{i}": i for i in range(300)})
    data["scans"][1].update({f"s{i}": i for i in range(200)})
    seen = []
    real = facts.Case.model_validate
    monkeypatch.setattr(facts.Case, "model_validate", lambda d, *a, **k: seen.append(d) or real(d, *a, **k))
    text = json.dumps(data, indent=2)
    doc = parse_text(text, "c.json")
    with pytest.raises(CaseError) as err:
        case_of(doc.data, doc)
    assert err.value.message == "unknown field (not in the case contract) (and 5499 more problems)"
    assert (err.value.field, err.value.line, err.value.column) == ("parcel.p0", text.count("\n", 0, text.index('"p0"')) + 1, 5)
    given_keys = len(seen[0]) + len(seen[0]["parcel"]) + len(seen[0]["scans"][1])
    assert given_keys == len(BASE) + len(BASE["parcel"]) + len(BASE["scans"][1]) + 3
    assert len(doc.data) == len(BASE) + 5_000          # the document as read is left as it was


@st.composite
def _unknown_keys(draw):
    data = case(complaint=complaint())
    places = [data, data["parcel"], data["complaint"], *data["scans"]]
    for where_, n in draw(st.lists(st.tuples(st.integers(0, len(places) - 1), st.integers(1, 4)), max_size=5)):
        places[where_].update({f"x{where_}_{i}": i for i in range(n)})
    if draw(st.booleans()):
        data["scans"][0]["at"] = "not a time"
    return data


@settings(max_examples=40, deadline=None)
@given(data=_unknown_keys())
def test_the_first_problem_and_their_count_are_pydantics_own(data):
    from pydantic import ValidationError
    try:
        facts.Case.model_validate(data)
        expected = None
    except ValidationError as exc:
        errors = exc.errors()
        expected = (".".join(map(str, errors[0]["loc"])), len(errors))
    try:
        facts.parse_case(data)
        got = None
    except CaseError as err:
        more = err.message.rsplit("(and ", 1)
        got = (err.field, 1 + (int(more[1].split()[0]) if len(more) == 2 else 0))
    assert got == expected


def _json_docs():
    leaf = st.one_of(st.integers(-5, 5), st.booleans(), st.none(), st.text("ab\"\\é", max_size=4))
    keys = st.text("abcé_", min_size=1, max_size=3)
    return st.recursive(leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                        max_leaves=25)


@settings(max_examples=150, deadline=None)
@given(doc=st.dictionaries(st.text("abc", min_size=1, max_size=3), _json_docs(), max_size=5),
       indent=st.sampled_from([None, 0, 1, 2]))
def test_a_place_in_json_is_where_a_full_table_of_positions_puts_it(doc, indent):
    """json_paths walks one path; PyYAML's composer (the old way) builds every position: they agree."""
    text = json.dumps(doc, indent=indent)
    table = parse_yaml(text, "t").positions
    for loc, position in table.items():
        assert where(text, loc) == position, loc
    assert where(text, ("no such key",)) == table[()]


def test_the_path_of_a_value_found_from_its_offset():
    text = '{"a": [1, {"b": NaN}], "c": {"d": 1e-400}}'
    assert path_at(text, text.index("NaN")) == ("a", 1, "b")
    assert path_at(text, text.index("1e-400")) == ("c", "d")
    assert path_at(text, 0) == ()


# ---- what a text is read as ------------------------------------------------------------------------

FLOW = "{waybill: W1, product: taobao, stations: {sending: S-01, delivering: D-01}, scans: [{type: collect, " \
       "station: S-01, at: '2026-05-01T09:10:00+08:00'}]}"


@pytest.mark.parametrize("name", ["c.yaml", "c.yml", "C.YAML", "<stdin>", "case.txt"])
def test_yaml_flow_style_is_read_as_yaml(name):
    doc = parse_text(FLOW, name)
    assert doc.data["stations"] == {"sending": "S-01", "delivering": "D-01"}
    assert doc.data == parse_text(yaml.safe_dump(doc.data, default_flow_style=False), "c.yaml").data


def test_a_json_file_is_json_and_sniffed_text_that_is_neither_gets_the_json_error():
    with pytest.raises(InputError, match="not valid JSON"):
        parse_text(FLOW, "c.json")
    with pytest.raises(InputError, match="not valid JSON: Expecting ':' delimiter") as err:
        parse_text('{"waybill" "W1"}', "<stdin>")
    assert type(err.value) is InputError and (err.value.line, err.value.column) == (1, 12)
    with pytest.raises(InputError, match="NaN"):       # not a syntax error: YAML is not tried
        parse_text('{"waybill": "W1", "parcel": {"weight_kg": NaN}}', "<stdin>")


def test_a_flow_style_case_adjudicates_from_the_cli_as_its_block_style_twin(tmp_path):
    data = yaml.safe_load(Path(CASE_FILE).read_text(encoding="utf-8"))
    flow = tmp_path / "flow.yaml"
    flow.write_text(yaml.safe_dump(data, default_flow_style=True, width=10_000), encoding="utf-8")
    assert flow.read_text().startswith("{")
    run = [sys.executable, "-m", "slarules", "adjudicate", "--format", "json"]
    a = subprocess.run(run + [str(flow)], capture_output=True, timeout=120, cwd=ROOT)
    b = subprocess.run(run + [CASE_FILE], capture_output=True, timeout=120, cwd=ROOT)
    assert a.returncode == 0 and a.stdout == b.stdout


@pytest.mark.parametrize("text,field,line,column", [
    ('{"waybill": "W1",\n "waybill": "W2"}', "waybill", 2, 2),
    ('{"waybill": "W1", "scans": [{"type": "collect"},\n  {"type": "arrival", "at": "x", "type": "signed"}]}',
     "scans.1.type", 2, 34),
    ('{"waybill": "W1", "parcel": {"weight_kg": 1}, "outcome": {"lost": true, "lost": false}}',
     "outcome.lost", 1, 73),
])
def test_a_repeated_json_key_is_its_own_located_error(text, field, line, column):
    with pytest.raises(InputError) as err:
        parse_text(text, "c.json")
    key = field.rsplit(".", 1)[-1]
    assert err.value.message == f"the key `{key}` appears twice in one object"
    assert (err.value.field, err.value.line, err.value.column) == (field, line, column)
    assert "NaN" not in str(err.value)


def test_a_repeated_key_in_a_batch_row_is_that_rows_error_at_its_line(engine, tmp_path):
    good = json.dumps(case())
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([good, good.replace('"product": "taobao"', '"product": "taobao", "product": "x"'),
                                 good]) + "\n")
    summary = run_batch(engine, str(source), str(tmp_path / "out.jsonl"),
                        BatchOptions(as_of=AS_OF, progress=False, workers=1))
    assert (summary.verdicts, summary.errors) == (2, 1)
    error = json.loads((tmp_path / "out.errors.jsonl").read_text())
    assert (error["line"], error["field"]) == (2, "product") and "appears twice" in error["message"]


# ---- packs, decision logs, Parquet ----------------------------------------------------------------

def test_a_pack_file_over_its_byte_limit_is_refused_from_its_size(tmp_path, monkeypatch):
    big = tmp_path / "huge.yaml"
    with open(big, "wb") as f:
        f.truncate(PACK_BYTES + 1)          # sparse: nothing to read, and nothing is
    monkeypatch.setattr(reader, "_read_at_most", lambda f, n: pytest.fail("read a pack over the limit"))
    pack, issues = read_pack(big)
    assert pack is None and "more than 1 MiB" in issues[0].message and "split it" in issues[0].hint
    with pytest.raises(PackError, match="more than 1 MiB"):
        Engine.load([big])


def test_a_packs_digest_is_of_the_bytes_read_once(tmp_path, monkeypatch):
    path = ROOT / "rules" / "uc.yaml"
    reads = []
    real = reader._read_at_most
    monkeypatch.setattr(reader, "_read_at_most", lambda f, n: reads.append(n) or real(f, n))
    pack, _ = read_pack(path)
    assert pack.digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() and len(reads) == 1


def test_a_decision_log_line_is_bounded(engine, tmp_path, monkeypatch):
    log = tmp_path / "d.log"
    engine.adjudicate(case(), log=DecisionLog(log))
    with open(log, "ab") as f:
        f.write(b'{"id": "' + b"x" * (line_bytes(1024) + 10) + b'"}\n')
    engine.adjudicate(case(waybill="T0002"), log=DecisionLog(log))
    records = read_log(log, case_bytes=1024)
    assert next(records).waybill == "T0001"
    with pytest.raises(InputError, match="longer than") as err:
        next(records)
    assert err.value.line == 2 and "case_bytes" in err.value.hint


def test_a_parquet_row_group_over_case_bytes_a_row_is_refused_from_its_metadata(engine, tmp_path):
    rows = [case(waybill=f"W{i}") for i in range(3)]
    rows[1]["waybill"] = "W" * 30_000
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist([{k: json.dumps(v) if isinstance(v, (dict, list)) else v
                                          for k, v in r.items()} for r in rows]), source, compression="zstd")
    with pytest.raises(InputError, match="row group 1 holds") as err:
        run_batch(engine.with_limits(Limits(case_bytes=10_240)), str(source), str(tmp_path / "out.jsonl"),
                  BatchOptions(as_of=AS_OF, progress=False, workers=1))
    assert "case_bytes" in err.value.hint
