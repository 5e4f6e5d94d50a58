"""Read YAML and JSON safely, remembering where every value came from.

Cases and packs are data from outside: this module refuses YAML aliases (the
"billion laughs" bomb), duplicate keys, NaN and over-large files, never builds
Python objects from tags, leaves timestamps as strings (the models parse them
with the case's time zone), and records the line and column of every mapping
key so that validation errors can point at the right place.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from ..echo import quote
from ..errors import InputError
from ..text_boundary import check_parsed
from . import json_paths
from .reader import read_file, size_text

MAX_BYTES = 16 * 1024 * 1024     # the default of parse_text and read_document, for a library caller

Loc = tuple  # a path of keys and indexes, as Pydantic reports it


@dataclass
class Document:
    """A parsed file: its data plus the source position of each path in it.

    For JSON a position is found only when an error asks `where`, by walking to
    that one path (json_paths): a valid case never pays for positions, and a
    rejected one pays for the place it names, not for every key it has.
    """

    data: Any
    file: str
    positions: dict[Loc, tuple[int | None, int | None]] = field(default_factory=dict)
    text: str | None = field(default=None, repr=False)     # JSON source, positions not yet found

    def all_positions(self) -> dict[Loc, tuple[int | None, int | None]]:
        """The position of every key and item, for a caller that locates each value of a document
        (a pack test's case): YAML has them all; JSON text is read once more, as YAML, to find them."""
        if self.text is not None:
            try:
                self.positions.update(parse_yaml(self.text, self.file).positions)
            except (InputError, RecursionError):
                pass
            self.text = None
        return self.positions

    def where(self, loc: Loc) -> tuple[int | None, int | None]:
        """Line and column of `loc`, or of its nearest ancestor we know."""
        loc = tuple(loc)
        if self.text is not None:
            if loc not in self.positions:
                self.positions[loc] = json_paths.where(self.text, loc)
            return self.positions[loc]
        while True:
            if loc in self.positions:
                return self.positions[loc]
            if not loc:
                return (None, None)
            loc = loc[:-1]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases, duplicate keys or implicit timestamps."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise InputError("YAML aliases (*name) are not allowed in slarules input",
                             line=event.start_mark.line + 1, column=event.start_mark.column + 1,
                             hint="write the value out in full")
        return super().compose_node(parent, index)


# Scalars resolve as JSON writes them (YAML 1.2's core schema), not as YAML 1.1 would:
# - timestamps stay strings: the case model decides their zone, not PyYAML;
# - booleans are true and false only: YAML 1.1's yes/no/on/off would turn `no` into false;
# - numbers are decimal: YAML 1.1 read 060 as octal 48, 1:00 as 60 (base 60), 0x3c and 0b111100
#   as 60 and 1_000 as 1000. Those stay text, which the models refuse. A float is read by the
#   same `_exact_float` as JSON's, so 1.0e-400 does not become 0.0 either.
_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_REPLACED = {"tag:yaml.org,2002:timestamp", _BOOL, _INT, _FLOAT}
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_BOOL_TEXT = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_TEXT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT_TEXT = re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?$")
for _first, _resolver in [*((f, (_BOOL, _BOOL_TEXT)) for f in "tTfF"),
                          *((f, (_INT, _INT_TEXT)) for f in "-+0123456789"),
                          *((f, (_FLOAT, _FLOAT_TEXT)) for f in "-+.0123456789")]:
    _StrictLoader.yaml_implicit_resolvers.setdefault(_first, []).append(_resolver)
_StrictLoader.add_constructor(_INT, lambda loader, node: int(node.value, 10))    # 060 is sixty
_StrictLoader.add_constructor(_FLOAT, lambda loader, node: _exact_float(node.value))

# What a value may be is JSON's, whether its tag was resolved or written (`!!int 0x10`, `!!float .nan`,
# `!!bool yes`, `!!timestamp 2026-05-01`, `!!set`): a written tag is held to the same grammar as the
# text it would resolve from, and any tag JSON has no value for is refused where it is written.
_SCALARS = {
    "tag:yaml.org,2002:str": None, "tag:yaml.org,2002:null": None,
    _BOOL: (_BOOL_TEXT, "true or false"),
    _INT: (_INT_TEXT, "a whole number in decimal digits"),
    _FLOAT: (_FLOAT_TEXT, "a decimal number"),
}
_COLLECTIONS: dict[type[yaml.Node], str] = {yaml.MappingNode: "tag:yaml.org,2002:map", yaml.SequenceNode: "tag:yaml.org,2002:seq"}


def _plain(node: yaml.Node) -> None:
    """Refuse a node whose tag gives a value JSON does not have, or whose text its tag's grammar refuses."""
    line, column = node.start_mark.line + 1, node.start_mark.column + 1
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    if type(node) in _COLLECTIONS:
        if node.tag != _COLLECTIONS[type(node)]:
            raise InputError(f"the YAML tag {tag} is not allowed in slarules input", line=line, column=column,
                             hint="write a plain mapping or list, without a tag")
        return
    if node.tag not in _SCALARS:
        raise InputError(f"the YAML tag {tag} is not allowed in slarules input", line=line, column=column,
                         hint="write the value as plain text (quote it), a number, true or false")
    grammar = _SCALARS[node.tag]
    if grammar is not None and not grammar[0].match(node.value):
        raise InputError(f"`{quote(node.value)}` tagged {tag} is not {grammar[1]}", line=line, column=column,
                         hint="write it as JSON would, or quote it to make it text")


def _build(node: yaml.Node, loader: _StrictLoader, loc: Loc, positions: dict) -> Any:
    positions.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))
    _plain(node)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError("mapping keys must be plain strings",
                                 line=key_node.start_mark.line + 1, column=key_node.start_mark.column + 1)
            # The key is its source text: YAML 1.1 would read `on:` or `no:` as booleans.
            key = key_node.value
            if key in out:
                raise InputError(f"duplicate key `{quote(key)}`", line=key_node.start_mark.line + 1,
                                 column=key_node.start_mark.column + 1,
                                 hint="each key may appear once in a mapping")
            positions[loc + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _build(value_node, loader, loc + (key,), positions)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, loader, loc + (i,), positions) for i, child in enumerate(node.value)]
    try:
        value = loader.construct_object(node)
    except yaml.YAMLError as exc:      # a tag or implicit type PyYAML's safe loader cannot build (`=`)
        raise InputError(f"not a plain value: {getattr(exc, 'problem', None) or exc}",
                         line=node.start_mark.line + 1, column=node.start_mark.column + 1,
                         hint="quote it to make it text") from None
    except _Unfaithful as exc:
        if not math.isfinite(float(exc.text)):
            raise InputError("NaN and infinite numbers are not allowed", line=node.start_mark.line + 1,
                             column=node.start_mark.column + 1) from None
        raise _inexact(exc, line=node.start_mark.line + 1, column=node.start_mark.column + 1) from None
    if isinstance(value, bytes):
        raise InputError("binary values are not allowed", line=node.start_mark.line + 1)
    return value


def _reader_line(text: str, exc: Exception) -> int | None:
    at = getattr(exc, "position", None)
    return text.count("\n", 0, at) + 1 if isinstance(at, int) else None


def parse_yaml(text: str, file: str) -> Document:
    positions: dict = {}
    try:
        loader = _StrictLoader(text)      # reads the text at once: control characters fail here
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {getattr(exc, 'reason', None) or exc}", file=file,
                         line=_reader_line(text, exc)) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise InputError(f"not valid YAML: {exc.problem or exc.context}", file=file,
                             line=mark.line + 1 if mark else None,
                             column=mark.column + 1 if mark else None) from None
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML: {exc}", file=file) from None
        except ValueError:        # PyYAML's chr() of an escape past U+10FFFF (\U00110000)
            mark = loader.get_mark()
            raise InputError("not valid YAML: an escape names no Unicode character (the last is \\U0010FFFF)",
                             file=file, line=mark.line + 1, column=mark.column + 1) from None
        if node is None:
            raise InputError("the file is empty", file=file, hint="expected a mapping")
        data = _build(node, loader, (), positions)
        check_parsed(text, data, file=file, where=Document(data, file, positions).where)
    except InputError as exc:
        exc.file = exc.file or file
        raise
    finally:
        loader.dispose()
    return Document(data, file, positions)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed")


class _Duplicate(ValueError):
    """A key repeated in one JSON object: json.loads would keep the last and drop the first."""


def _no_duplicates(pairs):
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Duplicate()
    return out


class _Repeated:
    """In place of an object with a repeated key, on the second reading that finds where it is."""

    def __init__(self, key: str) -> None:
        self.key = key


def _mark_repeats(pairs: list) -> dict | _Repeated:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            return _Repeated(key)
        out[key] = value
    return out


def _duplicate_error(text: str, file: str, line: int | None) -> InputError:
    """The first repeated key in document order, with its path, line and column: the text is read
    again (one more parse), marking each object that repeats a key, and the marks are looked for."""
    hint = "JSON would keep only the last value; write each key once"
    try:
        data = json.loads(text, object_pairs_hook=_mark_repeats)
    except (ValueError, RecursionError):      # the text goes wrong after the key (the first reading stopped there)
        return InputError("a key appears twice in one object", file=file, line=line, hint=hint)
    stack: list = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, _Repeated):
            at_line, column = json_paths.where(text, path + (value.key,), occurrence=2)
            name = ".".join(str(p) for p in path + (value.key,))
            return InputError(f"the key `{quote(value.key)}` appears twice in one object", file=file,
                              line=line or at_line, column=column, field=name, hint=hint)
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack.extend(reversed([(path + (k,), v) for k, v in children]))
    return InputError("a key appears twice in one object", file=file, line=line, hint=hint)


class _Unfaithful(ValueError):
    """A JSON number that a float cannot hold: it would silently become another number."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def _inexact(exc: _Unfaithful, **where) -> InputError:
    """The one error for a number a float cannot hold, in JSON and YAML alike; `where` locates it."""
    return InputError(f"the number {exc.text} cannot be read exactly (it would become {float(exc.text)!r})",
                      hint='write it as a decimal string, e.g. "0.01"', **where)


def _exact_float(text: str) -> float:
    """The float of a JSON number, or _Unfaithful when it under- or overflows or loses digits.

    `1e-400` would become 0.00 and 0.30000000000000001 would become 0.3: a money
    amount must mean what was written. Trailing zeros (8.50) are not a loss.
    """
    value = float(text)
    if not math.isfinite(value) or Decimal(text) != Decimal(repr(value)):
        raise _Unfaithful(text)
    return value


def _value_at(text: str, token: str) -> int:
    """Where `token` stands as a JSON value (after `:`, `[` or `,`), not inside a string; -1 if nowhere."""
    m = re.search(r"(?<=[:\[,])\s*(" + re.escape(token) + r")(?=\s*[,\]}]|\s*$)", text)
    return m.start(1) if m else -1


def _where_in(text: str, needle: str) -> tuple[int | None, int | None]:
    at = _value_at(text, needle)
    return (None, None) if at < 0 else json_paths.line_column(text, at)


BOM = "\ufeff"


class _NotJSON(InputError):
    """Sniffed text that is not JSON by its syntax: YAML is tried next (never raised further)."""


def json_data(text: str, file: str, line: int | None = None, syntax: type[InputError] = InputError) -> Any:
    """Strict JSON (no NaN, no duplicate keys, no lossy numbers) or an InputError; `line` locates a JSON
    Lines row; `syntax`: the error class for text that is not JSON at all."""
    if text.startswith(BOM):
        raise InputError("the line starts with a byte-order mark (U+FEFF); only the start of a file may have one",
                         file=file, line=line or 1, column=1,
                         hint="files joined together often carry one at each join: remove it")
    try:
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates,
                          parse_float=_exact_float)
    except json.JSONDecodeError as exc:
        raise syntax(f"not valid JSON: {exc.msg}", file=file, line=line or exc.lineno,
                     column=exc.colno) from None
    except _Unfaithful as exc:
        at_line, column = _where_in(text, exc.text)
        raise _inexact(exc, file=file, line=line or at_line, column=column, field=_field_at(text, exc.text)) from None
    except _Duplicate:
        raise _duplicate_error(text, file, line) from None
    except ValueError as exc:
        at_line, column = _constant_at(text, exc)
        name = str(exc).split(" ", 1)[0]
        raise InputError(f"not valid JSON: {exc}", file=file, line=line or at_line, column=column,
                         field=_field_at(text, name) if column else None,
                         hint="JSON has no NaN or Infinity: leave the field out when it is unknown") from None
    except RecursionError:
        raise InputError("not valid JSON: nested too deeply", file=file, line=line) from None
    check_parsed(text, data, file=file, line=line, where=lambda loc: Document(data, file, text=text).where(loc))
    return data


def _constant_at(text: str, exc: ValueError) -> tuple[int | None, int | None]:
    """Where NaN or Infinity stands, so the message points at it (json.loads does not say)."""
    name = str(exc).split(" ", 1)[0]
    return _where_in(text, name) if name in ("NaN", "Infinity", "-Infinity") else (None, None)


def _field_at(text: str, token: str) -> str | None:
    """The field whose value `token` (NaN, 1e-400) is."""
    at = _value_at(text, token)
    path = json_paths.path_at(text, at) if at >= 0 else None
    return ".".join(str(p) for p in path) if path else None


def parse_json(text: str, file: str, syntax: type[InputError] = InputError) -> Document:
    if not text.strip():
        raise InputError("the file is empty", file=file, hint="expected a JSON object")
    return Document(json_data(text, file, syntax=syntax), file, text=text)


YAML_SUFFIXES = (".yaml", ".yml")


def format_of(file: str) -> str | None:
    """The format a file's name gives (`json`, `yaml`), or None: standard input, another name."""
    name = file.lower()
    return "json" if name.endswith(".json") else "yaml" if name.endswith(YAML_SUFFIXES) else None


def parse_text(text: str, file: str, fmt: str | None = None, max_bytes: int = MAX_BYTES) -> Document:
    """Parse `text` as `fmt`, else as its file's extension says (`.json`; `.yaml`, `.yml`).

    Without either (standard input, another name), text that starts as JSON does (`{`, `[`) is
    read as JSON, and if it is not JSON after all, as YAML, of which JSON is a subset (a flow
    mapping `{waybill: W1}`); when neither reads it, the JSON error is the one reported.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise InputError(f"the input is {size:,} bytes, more than {size_text(max_bytes)}", file=file)
    return _parse(text, file, fmt or format_of(file))


def _parse(text: str, file: str, fmt: str | None) -> Document:
    try:
        if fmt == "yaml" or (fmt is None and not text.lstrip().startswith(("{", "["))):
            return parse_yaml(text, file)
        if fmt == "json":
            return parse_json(text, file)
        try:
            return parse_json(text, file, syntax=_NotJSON)
        except _NotJSON as as_json:
            try:
                return parse_yaml(text, file)
            except InputError:
                raise InputError(as_json.message, file=as_json.file, line=as_json.line,
                                 column=as_json.column) from None
    except RecursionError:
        raise InputError("the input is nested too deeply", file=file) from None


def document_of(raw: bytes, file: str, fmt: str | None = None) -> Document:
    """Bytes already bounded by their reader, decoded (a byte-order mark may start them) and parsed."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (bad byte at offset {exc.start})", file=file) from None
    return _parse(text, file, fmt or format_of(file))


def read_document(path: str | Path, max_bytes: int = MAX_BYTES, hint: str | None = None) -> Document:
    """Read (reader.read_file: a regular file of at most `max_bytes`, refused from its size before it
    is read; `hint` says how to raise the bound) and parse a file; every failure names the file."""
    return document_of(read_file(path, max_bytes, hint), str(path))
