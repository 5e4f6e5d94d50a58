"""Polars, loaded the way the bulk paths want it: `from ._polars import pl`.

Both settings are read once, when Polars loads, and only if the caller has not
set them already:

- one Polars thread: batch parallelism comes from worker processes, one a core;
- its allocator (jemalloc) keeps freed pages for 10 s instead of handing them
  back to the OS at once. Every chunk allocates and frees a few hundred MB; given
  back at once, they were faulted in and zeroed again for the next chunk, a
  quarter of a worker's time in the kernel. 10 s still returns them when idle.
"""
from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:10000,muzzy_decay_ms:10000")

import polars as pl

__all__ = ["pl"]
