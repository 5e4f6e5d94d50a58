"""Freeze today's verdict bytes, so a refactor can be held to them byte for byte.

    python tests/golden/freeze.py        # rewrites tests/golden/verdicts.jsonl.gz

Before code moves, its verdicts are written here: 4,000 generated cases (the
batch tests' generator, fixed seed and instant) in both languages, every shipped
example and every pack-test case, each as `adjudicate --format json` would print
it, or the error it raises. tests/test_golden.py holds the engine to this file.
Rewrite it only for a change that is meant to change verdicts, and say so in
the commit.
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GOLDEN = HERE / "verdicts.jsonl.gz"
AS_OF = "2026-05-20T00:00:00+08:00"
GENERATED = 4000


def inputs() -> Iterator[tuple[str, dict, str | None, str]]:
    """(name, case data, as_of, lang) for every frozen verdict, in a fixed order."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import cases

    from slarules.engine import default_rules_dir
    from slarules.tools.packtest import find_test_files, merge, read_test_file
    from slarules.case.sources import read_document
    for i, data in enumerate(cases(GENERATED, seed=2024, bad_rate=0.02)):
        yield f"generated/{i}", data, AS_OF, "zh" if i % 2 else "en"
    for path in sorted((ROOT / "examples" / "cases").glob("*.yaml")):
        for lang in ("zh", "en"):
            yield f"example/{path.name}/{lang}", read_document(path).data, None, lang
    for path in find_test_files([default_rules_dir()]):
        spec, doc, _ = read_test_file(path)
        for index, test in enumerate(spec.cases if spec else []):
            if not hasattr(test, "case"):
                continue
            start = read_document(Path(doc.file).parent / test.file).data if test.file else spec.base
            yield f"pack-test/{path.name}/{index}", merge(start, test.case), test.as_of, "en"


def render(engine, data: dict, as_of: str | None, lang: str) -> str:
    from slarules.errors import SlaRulesError
    try:
        return engine.adjudicate(data, as_of=as_of, lang=lang).to_json()
    except SlaRulesError as exc:
        return rendered(exc)


def rendered(outcome) -> str:
    """A verdict's JSON, or a SlaRulesError as the frozen file keeps it: its class, message and field."""
    from slarules.errors import SlaRulesError
    if isinstance(outcome, SlaRulesError):
        return json.dumps({"error": type(outcome).__name__, "message": outcome.message, "field": outcome.field},
                          ensure_ascii=False)
    return outcome.to_json()


def current() -> dict[str, str]:
    from slarules import Engine
    engine = Engine.default()
    return {name: render(engine, data, as_of, lang) for name, data, as_of, lang in inputs()}


def load() -> dict[str, str]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as f:
        return {row["name"]: row["verdict"] for row in map(json.loads, f)}


def main() -> int:
    rows = current()
    with gzip.GzipFile(GOLDEN, "wb", mtime=0) as f:      # mtime 0: the same verdicts, the same bytes
        for name, verdict in rows.items():
            f.write((json.dumps({"name": name, "verdict": verdict}, ensure_ascii=False) + "\n").encode())
    print(f"froze {len(rows)} verdicts in {GOLDEN.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
