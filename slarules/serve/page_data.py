"""What the page asks the server for besides decisions: the shipped example cases and the labels.

- `GET /v1/examples`: the example cases slarules ships (examples/cases/, package data in a
  wheel), each with its name, the comment it opens with (what it shows) and its text, so a
  claims officer can start from one. The page posts that text back as YAML, as a user's own file.
- `GET /v1/labels`: how a verdict's codes (finding kinds, parties, deadline names, statuses...)
  and an explanation's words read in each language. They are the tables the CLI's text output
  uses (verdict.text, verdict.assembly, verdict.explain), served rather than copied into the page,
  so the page and the terminal never disagree on a label.

Both are the same for the server's whole life: each is built once per worker, on first use.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..engine import LANGS

PACKAGE = Path(__file__).resolve().parents[1]      # slarules/


def examples_dir(package: Path = PACKAGE) -> Path:
    """The shipped example cases: `slarules/examples` installed from a wheel (examples/cases, mapped in
    pyproject's package-dir; a folder of data, so looked up on disk: importlib.resources would see a
    namespace package), else `examples/cases` beside `slarules/` in a source checkout."""
    installed = package / "examples"
    return installed if installed.is_dir() else package.parent / "examples" / "cases"


def _title(text: str) -> str:
    """The comment a case file opens with (its first `#` lines, joined): what the example shows."""
    said = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        said.append(line.lstrip("#").strip())
    return " ".join(said)


def examples_document(folder: Path | None = None) -> dict[str, Any]:
    """{"examples": [{"name", "title", "case"}]}, by name; `case` is the file's text as shipped."""
    out = []
    for file in sorted((folder or examples_dir()).glob("*.yaml")):
        text = file.read_text(encoding="utf-8")
        out.append({"name": file.stem, "title": _title(text), "case": text})
    return {"examples": out}


def labels_document() -> dict[str, Any]:
    """{lang: {"verdict": ..., "party": ..., "explain": ...}} from the tables the text output uses."""
    from ..verdict.assembly import PARTY_NAMES
    from ..verdict.explain import WORDS
    from ..verdict.text import LABELS
    return {lang: {"verdict": LABELS[lang], "party": PARTY_NAMES[lang], "explain": WORDS[lang]} for lang in LANGS}


def as_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
