"""`slarules check --format sarif|github`: its issues where pack authors' CI shows them.

SARIF 2.1.0 is what code-scanning views read (one run, a rule per kind of check, a result per
issue); GitHub workflow annotations (`::error file=…,line=…,col=…,title=…::message`) mark the
lines of a pull request without an upload. Both carry file, line, column, rule id and severity.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..packs.model import Issue
from .check import CHECKS, summary

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
GITHUB_COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("slarules")
    except PackageNotFoundError:       # run from a source tree that was never installed
        return "0+unknown"


def _relative(file: str) -> Path | None:
    """A file relative to the working directory (the repository, in CI), where code scanning and
    annotations look for it; None when it lies elsewhere."""
    try:
        return Path(file).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return None


def _uri(file: str) -> str:
    """A file as a SARIF artifact URI: relative when it can be (_relative), else an absolute file: URI."""
    relative = _relative(file)
    return quote(relative.as_posix()) if relative is not None else Path(file).resolve().as_uri()


def _text(issue: Issue) -> str:
    text = issue.message + (f" [{issue.field}]" if issue.field else "")
    return text + (f" ({issue.hint})" if issue.hint else "")


def to_sarif(issues: list[Issue]) -> dict[str, Any]:
    """A SARIF 2.1.0 log of one run of `slarules check`."""
    ids = list(CHECKS)
    results = []
    for issue in issues:
        rule = issue.rule or "meaning"
        result: dict[str, Any] = {"ruleId": rule, "ruleIndex": ids.index(rule), "level": SARIF_LEVEL[issue.severity],
                                  "message": {"text": _text(issue)}}
        if issue.file:
            location: dict[str, Any] = {"artifactLocation": {"uri": _uri(issue.file)}}
            if issue.line:
                location["region"] = {"startLine": issue.line, **({"startColumn": issue.column} if issue.column else {})}
            result["locations"] = [{"physicalLocation": location}]
        properties = {k: v for k, v in (("field", issue.field), ("hint", issue.hint), ("witness", issue.witness))
                      if v is not None}
        if properties:
            result["properties"] = properties
        results.append(result)
    driver = {
        "name": "slarules", "version": _version(), "semanticVersion": _version(),
        "rules": [{"id": rule, "name": rule.replace("-", " ").title().replace(" ", ""),
                   "shortDescription": {"text": text}, "fullDescription": {"text": text},
                   "defaultConfiguration": {"level": "note" if rule in ("layer", "not-analysed") else
                                            "warning" if rule in ("dead-rule", "shadowed-rule") else "error"}}
                  for rule, text in CHECKS.items()],
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0",
            "runs": [{"tool": {"driver": driver}, "columnKind": "unicodeCodePoints", "results": results}]}


def render_sarif(issues: list[Issue]) -> str:
    return json.dumps(to_sarif(issues), ensure_ascii=False, indent=2) + "\n"


def _escape(text: str, property_: bool = False) -> str:
    """A workflow command's data (and, with `property_`, a property value) as the runner reads it back."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_ else text


def render_github(issues: list[Issue]) -> str:
    """One workflow command per issue (error, warning, notice), then the count as `check` prints it."""
    lines = []
    for issue in issues:
        props = []
        if issue.file:
            relative = _relative(issue.file)
            props.append(f"file={_escape(relative.as_posix() if relative is not None else issue.file, True)}")
            if issue.line:
                props.append(f"line={issue.line}")
                if issue.column:
                    props.append(f"col={issue.column}")
        props.append(f"title={_escape('slarules ' + (issue.rule or 'meaning'), True)}")
        lines.append(f"::{GITHUB_COMMAND[issue.severity]} {','.join(props)}::{_escape(_text(issue))}")
    lines.append(summary(issues))
    return "\n".join(lines) + "\n"
