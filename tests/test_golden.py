"""The verdicts frozen in tests/golden/ (see freeze.py): a refactor changes no byte of them."""
from __future__ import annotations

import difflib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))

import freeze  # noqa: E402


def test_every_frozen_verdict_is_byte_identical():
    frozen, now = freeze.load(), freeze.current()
    assert now.keys() == frozen.keys(), "the frozen inputs changed: rerun tests/golden/freeze.py on purpose"
    changed = [name for name in frozen if frozen[name] != now[name]]
    if changed:
        first = changed[0]
        diff = "\n".join(difflib.unified_diff(frozen[first].splitlines(), now[first].splitlines(), "frozen", "now",
                                              lineterm="", n=1))
        raise AssertionError(f"{len(changed)} of {len(frozen)} verdicts changed; first, {first}:\n{diff}")
