"""`slarules batch`: a file of cases in bounded memory, resumable, with a settlement statement.

`runner` (chunks, workers, checkpoints), `io` (JSON Lines and Parquet), the
columnar path (`columnar_input` reads a chunk into columns, `columnar` judges
it), `statement` (settlement totals and report), `kpi` (its customer-service
indicators; `kpi_table` for a list of results) and `progress`. What a batch
writes goes through `slarules.output` (checked, locked, never torn).
"""
from .kpi import kpi_table
from .runner import Batch, BatchOptions, BatchSummary, adjudicate_rows, run_batch

__all__ = ["Batch", "BatchOptions", "BatchSummary", "adjudicate_rows", "kpi_table", "run_batch"]
