"""Safe echo: input that a message quotes is shown, never obeyed, and never whole.

Messages quote what they refuse (an unknown key, a zone name, a clause id, a
waybill) and go to a terminal, an errors file or a service's caller. Text from a
case or a pack may hold ESC/OSC/CSI sequences or a carriage return that repaint
the reader's terminal, bidi overrides that reorder what it shows, lone
surrogates that no UTF-8 writer can encode, or a megabyte. `quote` writes every
such character as a visible escape (`\\x1b`, `\\r`, `\\u202e`, `\\ud800`) and
cuts the result to a bounded length, saying how long the text was.

Every SlaRulesError and pack Issue passes its message, field, file and hint
through `quote` when it is made (errors.py, packs/model.py), so a message that
forgot to quote a value still reaches no output raw; a message quotes each
value with `quote` itself so that one long value does not crowd out the rest.
"""
from __future__ import annotations

import re

QUOTE_LIMIT = 80          # one quoted value: a key, a zone, a waybill
MESSAGE_LIMIT = 4000      # a whole message or hint, its quotes included
FIELD_LIMIT = 200         # a field path (an unknown key is its own field)
FILE_LIMIT = 1000         # a path as the user gave it
# The parts of an error or a pack issue that can quote input, and the length each is cut to.
LIMITS = {"message": MESSAGE_LIMIT, "hint": MESSAGE_LIMIT, "field": FIELD_LIMIT, "file": FILE_LIMIT}

# Shown as escapes: controls (Unicode category Cc: C0, DEL, C1), format characters (Cf: bidi
# overrides and isolates, zero-width characters, the BOM), surrogates (Cs) and the line and
# paragraph separators (Zl, Zp). tests/test_echo.py holds this class to those categories.
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(char: str) -> str:
    """One unsafe character as the escape Python would write for it."""
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`value` as text safe to show: unsafe characters escaped, at most `limit` characters of it
    (escapes included) and, when cut, an ellipsis that says how long it was."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit and (text.isprintable() or UNSAFE.search(text) is None):
        return text                     # the usual case: nothing to escape, nothing to cut
    out: list[str] = []
    used = 0
    for i, char in enumerate(text):
        shown = escape(char) if UNSAFE.match(char) else char
        if used + len(shown) > limit:
            return "".join(out) + f"… ({len(text):,} characters in all)"
        out.append(shown)
        used += len(shown)
        if used == limit and i + 1 < len(text):
            return "".join(out) + f"… ({len(text):,} characters in all)"
    return "".join(out)
