"""Number formatting shared by the view models and the renderers (no I/O, no verdicts)."""
from __future__ import annotations

import math


def number(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; '-' for None, 'nan', 'inf', '-inf', '0' spelled out."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


# C0 and C1 control characters, DEL, and the invisible characters that reorder or hide text on a terminal
# (bidirectional overrides and isolates, zero-width characters, line and paragraph separators)
_INVISIBLE = {*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F,
              *range(0x2028, 0x202F), *range(0x2060, 0x2065), *range(0x2066, 0x206A), 0xFEFF}
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_LINE_TABLE = {code: _SHORT_ESCAPES.get(chr(code)) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
               for code in _INVISIBLE}
_TEXT_TABLE = {code: escape for code, escape in _LINE_TABLE.items() if chr(code) not in "\n\t"}


def visible(text: object) -> str:
    """User text (a name, a path, a message) with every character that would drive or hide on a terminal shown as
    an escape instead: ESC as \\x1b, U+202E as \\u202e, a carriage return as \\r.  Newlines and tabs are kept
    (multi-line report bodies); :func:`visible_line` escapes them too.  Idempotent: the escapes are printable."""
    return str(text).translate(_TEXT_TABLE)


def visible_line(text: object) -> str:
    """:func:`visible`, and newlines and tabs escaped too (\\n, \\t): for text that must stay on its line (a
    name, a path, a sentence in a table), so a spec cannot start a line of its own in the report."""
    return str(text).translate(_LINE_TABLE)
