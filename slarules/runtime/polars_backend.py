"""The bulk backend: a Program compiled into Polars expressions over a chunk of cases.

durable_rules matches one case fact at a time, which is right for a claims
officer and far too slow for a day of a national network. Here the same
condition trees (packs/program.py's Leaf/Node, nothing re-read from YAML) become
one boolean expression per rule (each operator's Polars spelling from
packs/operators.py), evaluated over a DataFrame whose rows are the encoded fact
documents of `runtime/values.case_facts`. An absent fact is a null, and
Polars' `&`/`|` follow Kleene logic, so a rule fires exactly when its tree is
true in `evaluate.value`, the three-valued semantics durable_rules implements.

Chaining is kept: strata run in order, and after each one the columns other
rules read (classifications, complaint level) are rewritten from what fired, as
runtime/chaining.py defines the step for every backend. Differential tests hold
the backends equal. The columnar batch path (slarules/columnar/) goes further:
facts and verdict fields as columns too.
"""
from __future__ import annotations

from functools import reduce
from typing import Any

from ._polars import pl  # first: it sets how Polars loads

# isort: split

from ..packs.operators import OPERATORS
from ..packs.program import Leaf, Program
from ..packs.vocabulary import ISSUE_VALUES
from .backend import RunResult
from .chaining import chain_of
from .values import flag_key, key

_DTYPES = {"bool": pl.Boolean, "block": pl.Boolean, "text": pl.String, "enum": pl.String}


def column_schema(program: Program) -> dict[str, Any]:
    """The DataFrame columns of a Program's encoded documents, with their types."""
    schema: dict[str, Any] = {}
    for path in program.condition_fields:
        name = program.specs[path].type.name
        if name == "list":
            schema[key(path)] = pl.Boolean
            for v in ISSUE_VALUES:
                schema[flag_key(path, v)] = pl.Boolean
        else:
            schema[key(path)] = _DTYPES.get(name, pl.Int64)
    return schema


def leaf_expr(leaf: Leaf, schema: dict[str, Any]) -> pl.Expr:
    op = OPERATORS[leaf.op]
    left = pl.col(key(leaf.left))
    if op.shape == "exists":
        return left.is_not_null() if leaf.value else left.is_null()
    if op.shape == "contains":
        return pl.col(flag_key(leaf.left, leaf.value))          # null when the list is absent
    right = pl.col(key(leaf.right)) if leaf.right is not None else pl.lit(leaf.value,
                                                                            dtype=schema[key(leaf.left)])
    test = getattr(left, op.polars)(right)      # type: ignore[arg-type]  # every compare shape has a method
    if op.absent is not None:                                    # `is` on an absent fact is false, not null
        return pl.when(left.is_null()).then(op.absent).otherwise(test)
    return test


def expr(node, schema: dict[str, Any]) -> pl.Expr:
    if isinstance(node, Leaf):
        return leaf_expr(node, schema)
    parts = [expr(c, schema) for c in node.children]
    if not parts:   # an empty `all` is true, an empty `any` false, on every row (a bare literal is one row)
        return pl.repeat(node.op == "all", pl.len(), dtype=pl.Boolean)
    return reduce((lambda a, b: a & b) if node.op == "all" else (lambda a, b: a | b), parts)


class PolarsBackend:
    """Runs a Program over many encoded documents at once; stateless, so thread-safe."""

    def __init__(self, program: Program):
        self.program = program
        self.schema = column_schema(program)
        self.strata: list[list[tuple[Any, pl.Expr]]] = [[] for _ in range(program.strata)]
        self.annotations: list[list[tuple[str, Any, pl.Expr]]] = [[] for _ in range(program.strata)]
        for index, rule in enumerate(program.rules):
            self.strata[rule.stratum].append((rule, expr(rule.condition, self.schema).alias(f"r{index}")))
            # what the verdict asks besides "fired": which facts kept an in-scope rule undecided,
            # and whether a deadline rule's scope holds (evaluated here, with the stratum's chain values)
            scope = expr(rule.scope, self.schema).fill_null(False)
            self.annotations[rule.stratum].append(
                ("undecided", rule, (scope & expr(rule.when, self.schema).is_null()).alias(f"u{index}")))
            if rule.deadline is not None:
                self.annotations[rule.stratum].append(("in_scope", rule, scope.alias(f"s{index}")))
        self.chain = chain_of(program)
        self.chained = any(link.key in self.schema for link in self.chain.links)

    def frame(self, docs: list[dict[str, Any]]) -> pl.DataFrame:
        columns = {k: [d.get(k) for d in docs] for k in self.schema}
        return pl.DataFrame(columns, schema=self.schema)

    def run(self, doc: dict[str, Any]) -> RunResult:
        return self.run_many([doc])[0]

    def run_many(self, docs: list[dict[str, Any]]) -> list[RunResult]:
        n = len(docs)
        results = [RunResult(strata_closed=self.program.strata, undecided=[], in_scope=set()) for _ in range(n)]
        if n == 0:
            return results
        df = self.frame(docs)
        fired: dict[str, pl.Series] = {}
        for number, stratum in enumerate(self.strata):
            if number and self.chained:
                df = df.with_columns(self._chained(fired, n, number))
            if not stratum:
                continue
            notes = self.annotations[number]
            out = df.select([e for _, e in stratum] + [e for _, _, e in notes])
            columns = out.get_columns()
            for (what, rule, _), column in zip(notes, columns[len(stratum):]):
                for i in column.arg_true().to_list():
                    if what == "undecided":
                        results[i].undecided.append(rule.id)
                    else:
                        results[i].in_scope.add(rule.id)
            for (rule, _), column in zip(stratum, columns):
                column = column.fill_null(False)
                fired[rule.id] = column
                for i in column.arg_true().to_list():
                    r = results[i]
                    r.fired.append(rule.id)
                    self.chain.fold(rule, r)
        return results

    def _chained(self, fired: dict[str, pl.Series], n: int, stratum: int) -> list[pl.Series]:
        """The chained columns the strata before `stratum` leave (chaining.Chain says which and how)."""
        def max_of(pairs):
            level = pl.Series([0] * n, dtype=pl.Int64)
            for flag, value in pairs:
                level = level.zip_with(~(flag & (level < value)), pl.Series([value] * n))
            return level
        columns = self.chain.columns(stratum, lambda r: fired[r.id], lambda flags: reduce(lambda a, b: a | b, flags),
                                     max_of, pl.Series([False] * n, dtype=pl.Boolean),
                                     pl.Series([0] * n, dtype=pl.Int64))
        return [column.alias(k) for k, column in columns if k in self.schema]
