"""Compiled packs as a revision: what one request is wholly decided by, and what it is called.

The supervisor compiles the packs (at start and on every reload) and hands the compiled bytes
(`Engine.to_bytes`) to its workers, so every worker serves the same revision and a broken pack
set is refused once, in one place, while the old revision keeps serving. A worker swaps its
`Revision` by assigning one reference; a request reads that reference once and uses the engine it
found for everything it does, so no request is decided partly by two revisions.

The revision id is a digest over the packs' digests (the verdict names each) and the clause
catalogue (which orders the findings): two workers, or two servers, with the same id give the
same verdicts.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..engine import Engine, default_pack_dirs
from ..errors import SlaRulesError


def revision_id(engine: Engine) -> str:
    h = hashlib.sha256()
    for p in engine.packs:
        h.update(p.digest.encode() + b"\n")
    h.update(json.dumps(engine.catalogue, sort_keys=True, ensure_ascii=False, default=str).encode())
    return "sha256:" + h.hexdigest()


def effective(pack: Any) -> dict[str, str | None] | None:
    """A dated version's days as its pack states them (`from`, `until` inclusive, `by`), else None."""
    if pack.window is None or pack.by is None:
        return None
    days: dict[str, str | None] = {"from": None, "until": None, "by": pack.by}
    for leaf in pack.window.children:
        shown = getattr(leaf, "shown", None)
        if not isinstance(shown, datetime):
            continue
        if leaf.op == "ge":
            days["from"] = shown.date().isoformat()
        elif leaf.op == "lt":
            days["until"] = (shown - timedelta(days=1)).date().isoformat()
    return days


@dataclass(frozen=True)
class Revision:
    """One compiled pack set as a worker serves it."""

    engine: Engine
    id: str
    loaded_at: str
    packs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, engine: Engine, loaded_at: str | None = None) -> Revision:
        packs = [{"name": p.name, "version": p.version, "digest": p.digest, "effective": effective(p)}
                 for p in engine.packs]
        return cls(engine, revision_id(engine), loaded_at or now(), packs)

    def describe(self) -> dict[str, Any]:
        """`GET /v1/packs`' revision and packs."""
        return {"revision": self.id, "loaded_at": self.loaded_at, "packs": self.packs}


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def compile_packs(paths: list[str] | None) -> Engine:
    """The packs at `paths` (default: the shipped ones) compiled; a PackError says what is wrong and where."""
    return Engine.load(paths if paths else default_pack_dirs())


def pack_files(paths: list[str] | None) -> list[Path]:
    """Every file a reload reads (packs and catalogues), for `--watch` to look at."""
    roots = [Path(p) for p in paths] if paths else default_pack_dirs()
    files: list[Path] = []
    for root in roots:
        files.extend(sorted(root.glob("*.yaml")) if root.is_dir() else [root])
    return files


def error_json(exc: SlaRulesError) -> dict[str, Any]:
    """A refused reload's located error, as /v1/packs shows it."""
    return {k: v for k, v in exc.to_dict().items() if v is not None}
