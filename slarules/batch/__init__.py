"""`slarules batch`: a file of cases in bounded memory, resumable, with a settlement statement.

`runner` (chunks, workers, checkpoints), `io` (JSON Lines and Parquet) and
`progress`. Chunks of plain rows are judged by the columnar backend
(`slarules.columnar`), their totals kept by `slarules.settlement`
(`kpi_table`, re-exported here, for a list of results). What a batch writes
goes through `slarules.output` (checked, locked, never torn).
"""
from ..settlement.statement import kpi_table
from .runner import Batch, BatchOptions, BatchSummary, adjudicate_rows, run_batch

__all__ = ["Batch", "BatchOptions", "BatchSummary", "adjudicate_rows", "kpi_table", "run_batch"]
