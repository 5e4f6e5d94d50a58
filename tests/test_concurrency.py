"""Many threads sharing one Engine get exactly the verdicts they get alone."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from conftest import EXAMPLES
from slarules import Engine, load_case


def test_threads_get_the_verdicts_they_get_alone(engine):
    cases = [load_case(str(p)) for p in sorted(EXAMPLES.glob("*.yaml"))]
    alone = [engine.adjudicate(c).to_json() for c in cases]
    work = [i % len(cases) for i in range(800)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda i: (i, engine.adjudicate(cases[i]).to_json()), work))
    assert all(alone[i] == out for i, out in got)


def test_two_engines_do_not_share_state(engine):
    other = Engine.load([p.file for p in engine.packs if p.name == "regulations"])
    c = load_case(str(EXAMPLES / "rg4-level2.yaml"))
    assert {f.rule for f in other.adjudicate(c).findings} == {"cs.level-2", "cs.level-2.contact"}
    assert {f.rule for f in engine.adjudicate(c).findings} == {"cs.level-2", "cs.level-2.contact",
                                                              "national.compensation.lost.uninsured@2025"}


def test_many_cases_in_one_process_stay_correct(engine):
    """More cases than durable_rules' 1,024-sid limit, interleaved: no state leaks between cases."""
    late = load_case(str(EXAMPLES / "tb1-late.yaml"))
    clean = load_case(str(EXAMPLES / "clean.yaml"))
    for i in range(1500):
        v = engine.adjudicate(late if i % 2 else clean)
        assert len(v.findings) == (1 if i % 2 else 0)
