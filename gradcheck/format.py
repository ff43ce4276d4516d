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


def visible(text: str) -> str:
    """User text (a name, a path, a message) with its control characters made visible: \\x1b, \\u202e, ...

    Newlines and tabs are kept; every other C0/C1 control, the DEL, and the bidirectional overrides that
    can make a name read differently from what it is (U+202A..U+202E, U+2066..U+2069) are escaped.
    """
    return "".join(_ESCAPED.get(ch, ch) for ch in str(text))


_ESCAPED = {chr(code): f"\\x{code:02x}" for code in [*range(0x00, 0x20), *range(0x7F, 0xA0)] if chr(code) not in "\n\t"}
_ESCAPED.update({chr(code): f"\\u{code:04x}" for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]})
