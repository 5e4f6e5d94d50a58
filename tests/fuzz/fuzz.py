"""The atheris entry point: `python tests/fuzz/fuzz.py TARGET [libFuzzer options] [corpus dirs]`.

Use run.py, which adds the seeds, the dictionary and a budget. Only slarules is
instrumented: its coverage is what should guide the search, and instrumenting
Pydantic or Polars would slow every execution for edges that are not ours.

A crash is any exception the target lets out (everything but SlaRulesError).
Its raw input (a readable case, pack or JSON Lines, even when the structure-aware
mode made it) is printed and, when $SLARULES_FUZZ_CRASHES names a directory,
saved there as <exception>-<module>-<function>-L<line>: one file per distinct
crash. With $SLARULES_FUZZ_KEEP_GOING=1 the fuzzer records the crash and carries
on, so a long run collects every distinct crash; else libFuzzer stops at it.
"""
from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["slarules"]):
    # slarules imports most modules lazily; those imported later would not be instrumented.
    import importlib
    import pkgutil

    import slarules
    for module in pkgutil.walk_packages(slarules.__path__, "slarules."):    # every module, wherever it lives
        if module.name not in ("slarules.spark", "slarules.tools.pytest_plugin", "slarules.__main__"):
            importlib.import_module(module.name)

import targets  # noqa: E402

SUFFIX = {"case": ".yaml", "pack": ".yaml", "batch": ".jsonl"}


def main() -> None:
    target = sys.argv.pop(1)
    check, _ = targets.TARGETS[target]
    out = Path(os.environ["SLARULES_FUZZ_CRASHES"]) if os.environ.get("SLARULES_FUZZ_CRASHES") else None
    keep_going = os.environ.get("SLARULES_FUZZ_KEEP_GOING") == "1"
    seen: set[str] = set()
    targets.engine()              # compile the shipped packs before the clock starts

    def one_input(data: bytes) -> None:
        raw = targets.render(target, data)
        try:
            check(raw)
        except Exception as exc:
            key = targets.crash_key(exc)
            if key in seen:
                return
            seen.add(key)
            shown = raw.decode("utf-8", "backslashreplace")
            print(f"\n=== slarules fuzz crash {key} ({target}) ===\n{shown[:3000]}\n"
                  f"{''.join(traceback.format_exception(exc)[-8:])}=== end crash ===", file=sys.stderr, flush=True)
            saved = out / (key + SUFFIX[target]) if out is not None else None
            if saved is not None and not saved.exists():     # a regression file, once saved, stays as it is
                out.mkdir(parents=True, exist_ok=True)
                saved.write_bytes(raw)
            if not keep_going:
                raise

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
