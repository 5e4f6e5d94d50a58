"""The columnar backend: a chunk of plain cases judged as Polars columns, verdict JSON out.

`input` reads a chunk (JSON Lines or an Arrow batch) into columns and checks the
case contract in bulk; `evaluator` (Columnar) compiles one Program into column
expressions for facts, rules and each verdict field. It sits above `verdict`
(it writes the one verdict layout as columns) and below `engine`, which builds
it on first use; `batch` and `spark` reach it through the engine.
"""
