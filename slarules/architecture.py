"""The layers of slarules, lowest first: a module imports only from its own layer or the layers below it,
and no import ever closes a circle. tests/test_import_layers.py reads every module's imports (function-level
ones included) and holds the code to this table; nothing imports this module at run time.

Each entry is a module or a package (its modules and subpackages); the longest entry that names a module
places it, so `slarules.packs.compiler` sits above `slarules.packs`.
"""
from __future__ import annotations

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("slarules.errors", "slarules.echo", "slarules.text_boundary", "slarules.money",
                    "slarules.architecture")),
    ("case", ("slarules.case", "slarules.facts")),                 # the case contract, its field table, reading
    ("output", ("slarules.output",)),                              # writing files, locks, decision records
    ("packs", ("slarules.packs",)),                                # pack models and the Program IR
    ("runtime", ("slarules.runtime",)),                            # the backends that run a Program, per case or chunk
    ("compile", ("slarules.packs.compiler",)),                     # packs -> Program, refusing what a backend can't hold
    ("verdict", ("slarules.verdict",)),                            # a run -> the verdict, its text, its explanation
    ("settlement", ("slarules.settlement",)),                      # totals over many verdicts
    ("columnar", ("slarules.columnar",)),                          # the columnar backend: chunks as columns, verdicts out
    ("engine", ("slarules.engine",)),                              # compile once, adjudicate many
    ("runs", ("slarules.batch", "slarules.spark")),                # a file of cases, locally or on Spark
    ("tools", ("slarules.tools",)),                                # check, test, diff, replay, witness
    ("interface", ("slarules", "slarules.__main__", "slarules.cli", "slarules.serve")),   # people and services
)


def layer_of(module: str) -> int:
    """The index in LAYERS of the layer that places `module`; ValueError for a module no entry names."""
    best, at = "", -1
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            if (module == entry or module.startswith(entry + ".")) and len(entry) > len(best):
                best, at = entry, index
    if at < 0:
        raise ValueError(f"{module} is in no layer of slarules/architecture.py")
    return at
