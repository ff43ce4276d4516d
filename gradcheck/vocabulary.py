"""The words of the spec format that the command line offers as choices before any spec is read.

Kept apart from spec.py so that `gradcheck --help` (and any import of gradcheck.cli) needs neither numpy nor
the spec reader; spec.py reads and validates with these same tuples.
"""
from __future__ import annotations

FLOAT_DTYPES = ("float64", "float32")
METHODS = ("central", "forward", "backward", "five-point", "richardson", "complex-step")
