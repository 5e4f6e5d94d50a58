"""The engine an executor's Python worker runs, compiled once per packs for the worker's life.

Both routes' tasks (the mapInArrow partitions in `spark/__init__.py`, the batch's chunks in
`spark/chunks.py`) receive the packs as bytes and need the same Engine for every task after the
first: it lives here, below both, so neither imports the other to reach it.
"""
from __future__ import annotations

import hashlib
from typing import Any

_engines: dict[str, Any] = {}       # packs digest -> Engine, once per Python worker process


def executor_engine(packs: bytes) -> Any:
    """The Engine of `packs` (Engine.to_bytes), built at this worker's first task that carries them."""
    from ..engine import Engine
    digest = hashlib.sha256(packs).hexdigest()
    if digest not in _engines:
        _engines[digest] = Engine.from_bytes(packs)
    return _engines[digest]
