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
