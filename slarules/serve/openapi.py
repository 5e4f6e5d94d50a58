"""`GET /openapi.json`: the API described from the models `slarules schema` prints, never a copy of them.

The case, the verdict and the explanation are the JSON Schemas of `facts.Case`, `Verdict` and
`verdict.explain.Explanation`, their `$defs` moved under `components/schemas` (OpenAPI 3.1 reads
JSON Schema 2020-12 as it is); the envelopes only the server has (its error, its revision) are
written here. docs/openapi.json is this document, and a test keeps the two the same.
"""
from __future__ import annotations

import copy
import json
import sys
from typing import Any

from .. import __version__

CASE_TYPES = ("application/json", "application/yaml")
REF = "#/components/schemas/"

ERROR = {
    "type": "object", "required": ["error", "request_id"], "additionalProperties": True,
    "description": "A refused request: what was wrong and where, as the CLI's one-paragraph error says it.",
    "properties": {
        "error": {
            "type": "object", "required": ["kind", "message"],
            "properties": {
                "kind": {"enum": ["request", "limit", "case", "pack", "busy", "engine"],
                         "description": "request: 400/401/404/405/408/415; limit: 413; case: 422; pack: a refused "
                                        "reload; busy: 503 (see Retry-After); engine: 500, a bug to report with "
                                        "the request id"},
                "message": {"type": "string"}, "file": {"type": "string"}, "line": {"type": "integer"},
                "column": {"type": "integer"}, "field": {"type": "string"}, "hint": {"type": "string"},
            },
        },
        "request_id": {"type": "string"},
        "revision": {"type": "string", "description": "a refused reload: the revision still served"},
    },
}
PACKS = {
    "type": "object", "required": ["revision", "loaded_at", "packs"],
    "properties": {
        "revision": {"type": "string", "description": "sha256 over the packs' digests and the clause catalogue"},
        "loaded_at": {"type": "string", "format": "date-time"},
        "packs": {"type": "array", "items": {
            "type": "object", "required": ["name", "version", "digest", "effective"],
            "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "digest": {"type": "string"},
                           "effective": {"oneOf": [{"type": "null"}, {
                               "type": "object", "description": "the days a dated version is in force (inclusive)",
                               "properties": {"from": {"type": ["string", "null"], "format": "date"},
                                              "until": {"type": ["string", "null"], "format": "date"},
                                              "by": {"type": "string"}}}]}}}},
        "last_reload": {"oneOf": [{"type": "null"}, {
            "type": "object", "properties": {"at": {"type": "string"}, "outcome": {"enum": ["ok", "unchanged", "refused"]},
                                             "revision": {"type": "string"}, "error": {"type": "object"}}}]},
    },
}

EXAMPLES = {
    "type": "object", "required": ["examples"],
    "properties": {"examples": {"type": "array", "items": {
        "type": "object", "required": ["name", "title", "case"],
        "properties": {"name": {"type": "string", "description": "the file's name without .yaml"},
                       "title": {"type": "string", "description": "the comment the file opens with"},
                       "case": {"type": "string", "description": "the case as YAML text"}}}}},
}
LABELS = {
    "type": "object", "description": "by language (zh, en): how codes read in the CLI's text output",
    "additionalProperties": {
        "type": "object", "required": ["verdict", "party", "explain"],
        "properties": {"verdict": {"type": "object", "description": "headings, and labels of finding kinds, "
                                                                    "severities, deadline names and statuses"},
                       "party": {"type": "object", "additionalProperties": {"type": "string"}},
                       "explain": {"type": "object", "additionalProperties": {"type": "string"},
                                   "description": "an explanation's words: rule statuses and the rest"}}},
}


def _hoist(name: str, schema: dict[str, Any], into: dict[str, Any]) -> None:
    """`schema` as `name` in `into`, its `$defs` beside it; a def another model defines otherwise is kept
    under this model's name (`ExplanationVerdict`: Pydantic writes the explanation's parts strict)."""
    schema = copy.deepcopy(schema)
    renamed: dict[str, str] = {}
    for key, value in schema.pop("$defs", {}).items():
        if key in into and into[key] != value:
            renamed[key] = name + key
        into[renamed.get(key, key)] = value
    into[name] = schema
    for key in {*renamed.values(), name}:
        into[key] = _refs(into[key], renamed)


def _refs(value: Any, renamed: dict[str, str] | None = None) -> Any:
    """`#/$defs/X` as `#/components/schemas/X` (or the name X was renamed to)."""
    renamed = renamed or {}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                target = v[len("#/$defs/"):]
                out[k] = REF + renamed.get(target, target)
            else:
                out[k] = _refs(v, renamed)
        return out
    if isinstance(value, list):
        return [_refs(v, renamed) for v in value]
    return value


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF + schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    said = {400: "the body or query cannot be read", 401: "no valid bearer token (with --token-file)",
            408: "the body took too long", 413: "over a limit (case_bytes, scans)", 415: "another content type",
            422: "a case the contract refuses", 503: "the server is full (Retry-After) or cannot log the decision",
            500: "a bug in slarules: report it with the request id"}
    return {str(c): {"description": said[c], "content": _json("Error")} for c in codes}


QUERY = [{"name": "lang", "in": "query", "schema": {"enum": ["zh", "en"], "default": "zh"},
          "description": "language of the messages"},
         {"name": "as_of", "in": "query", "schema": {"type": "string"},
          "description": "adjudicate as of this ISO 8601 instant (default: the case's as_of, else now)"}]
HEADERS = {"X-Pack-Revision": {"schema": {"type": "string"}, "description": "the revision that decided"},
           "X-Request-Id": {"schema": {"type": "string"}, "description": "this request, as the server's log names it"}}


def _case_operation(summary: str, answer: str, decision_header: bool) -> dict[str, Any]:
    headers = dict(HEADERS)
    if decision_header:
        headers = {"X-Decision-Id": {"schema": {"type": "string"},
                                     "description": "the decision's id (its record's in the decision log)"}, **headers}
    return {"post": {
        "summary": summary, "parameters": QUERY,
        "requestBody": {"required": True, "content": {t: {"schema": {"$ref": REF + "Case"}} for t in CASE_TYPES}},
        "responses": {"200": {"description": summary, "headers": headers, "content": _json(answer)},
                      **_errors(400, 401, 408, 413, 415, 422, 503, 500)}}}


def openapi_document() -> dict[str, Any]:
    from ..facts import case_schema
    from ..verdict import Verdict
    from ..verdict.explain import Explanation
    schemas: dict[str, Any] = {}
    _hoist("Case", case_schema(), schemas)
    _hoist("Verdict", Verdict.json_schema(), schemas)
    _hoist("Explanation", Explanation.model_json_schema(), schemas)
    schemas["Error"] = ERROR
    schemas["Packs"] = PACKS
    schemas["Examples"] = EXAMPLES
    schemas["Labels"] = LABELS
    plain = {"text/plain": {"schema": {"type": "string"}}}
    paths = {
        "/v1/adjudicate": _case_operation("the verdict of one case, the bytes of `slarules adjudicate --format json`",
                                          "Verdict", True),
        "/v1/explain": _case_operation("why the verdict is what it is, as `slarules explain --format json`",
                                       "Explanation", False),
        "/v1/batch": {"post": {
            "summary": "JSON Lines in (one case a line), JSON Lines out: a verdict or an error record per line, "
                       "in input order, as `slarules batch` writes them", "parameters": QUERY,
            "requestBody": {"required": True, "content": {"application/jsonl": {"schema": {"type": "string"}}}},
            "responses": {"200": {"description": "one line per non-blank input line", "headers": HEADERS,
                                  "content": {"application/jsonl": {"schema": {"type": "string"}}}},
                          **_errors(400, 401, 408, 415, 503, 500)}}},
        "/v1/packs": {"get": {"summary": "the revision served: its packs (name, version, digest, dated window)",
                              "responses": {"200": {"description": "the revision", "content": _json("Packs")},
                                            **_errors(401)}}},
        "/v1/packs/reload": {"post": {
            "summary": "compile the pack files again and serve them in every worker; a broken set is refused "
                       "and the revision served stays",
            "responses": {"200": {"description": "the revision now served", "content": _json("Packs")},
                          "422": {"description": "the packs were refused: the located error",
                                  "content": _json("Error")}, **_errors(401)}}},
        "/v1/examples": {"get": {"summary": "the example cases slarules ships (the page starts from one)",
                                 "responses": {"200": {"description": "the examples", "content": _json("Examples")},
                                               **_errors(401)}}},
        "/v1/labels": {"get": {"summary": "how a verdict's and an explanation's codes read in each language",
                               "responses": {"200": {"description": "the labels", "content": _json("Labels")},
                                             **_errors(401)}}},
        "/healthz": {"get": {"summary": "the worker answers", "responses": {"200": {"description": "alive"}}}},
        "/readyz": {"get": {"summary": "the worker serves (503 while it drains)",
                            "responses": {"200": {"description": "ready"}, **_errors(503)}}},
        "/metrics": {"get": {"summary": "Prometheus metrics of every process of the server",
                             "responses": {"200": {"description": "text exposition 0.0.4", "content": plain},
                                           **_errors(401)}}},
        "/openapi.json": {"get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    }
    return {"openapi": "3.1.0",
            "info": {"title": "slarules decision service", "version": __version__,
                     "description": "Adjudicate SLA breaches and liability for disputed parcels. docs/serve.md "
                                    "describes the service; docs/contract.md the case and the verdict."},
            "components": {"schemas": schemas,
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                          "description": "required when the server has a "
                                                                         "--token-file"}}},
            "security": [{}, {"bearer": []}],
            "paths": paths}


def openapi_json() -> str:
    """The document as served and as docs/openapi.json holds it."""
    return json.dumps(openapi_document(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":          # python -m slarules.serve.openapi > docs/openapi.json
    sys.stdout.write(openapi_json())
