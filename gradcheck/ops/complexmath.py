"""expm1, log1p and tanh of complex arrays whose imaginary parts are tiny (the complex-step method's), from real functions.

numpy's complex expm1, log1p and tanh cost 10-25 times their real versions (and its log1p loses its real part
near 0); with |b| < 2^-27 the identities below are exact to rounding (the terms they drop are below 2^-54
relative), so the complex-step pass pays for one or two real functions instead (for tanh, the tanh form of gelu
and the cross-entropy change rule).  Any other argument goes to numpy's complex functions.
"""
from __future__ import annotations

import numpy as np

TINY = 2.0 ** -27  # below this, cos b = 1 - b²/2 and sin b = b, atan r = r and log1p(r²) = r² to rounding


def expm1(z: np.ndarray) -> np.ndarray:
    """np.expm1(z): z + z²/2 where every |Re z|, |Im z| < TINY (the complex-step pass's real parts are rounding noise:
    z³/6 is below 2^-55 |z|); for z = a + ib with |b| < TINY, e^a (cos b + i sin b) - 1 = (expm1(a) - e^a b²/2) + i e^a b."""
    z = np.asarray(z)
    if z.dtype.kind != "c":
        return np.expm1(z)
    if _all_tiny(z):
        return z + 0.5 * (z * z)
    a, b = z.real, z.imag
    if not np.all(np.abs(b) < TINY):
        return np.expm1(z)
    shifted = np.expm1(a)
    if not np.all(np.isfinite(shifted)):
        return np.expm1(z)
    grown = np.exp(a)
    result = np.empty(z.shape, dtype=z.dtype)
    result.real = shifted - 0.5 * b * b * grown
    result.imag = grown * b
    return result


def _all_tiny(z: np.ndarray) -> bool:
    """Whether every real and imaginary part of z lies within (-TINY, TINY) (False for NaN)."""
    parts = np.ascontiguousarray(z).reshape(-1).view(z.real.dtype)  # (a view where z is contiguous)
    return bool(parts.size) and bool(np.max(parts) < TINY) and bool(np.min(parts) > -TINY)


def tanh(z: np.ndarray) -> np.ndarray:
    """np.tanh(z): for z = a + ib with |b| < TINY, tanh z = (sinh 2a + i sin 2b) / (cosh 2a + cos 2b)
    = tanh a + i b / cosh² a (the real part's change is O(b²) relative)."""
    z = np.asarray(z)
    if z.dtype.kind != "c":
        return np.tanh(z)
    a, b = z.real, z.imag
    if not (np.all(np.abs(b) < TINY) and np.all(np.isfinite(a))):
        return np.tanh(z)
    result = np.empty(z.shape, dtype=z.dtype)
    result.real = np.tanh(a)
    with np.errstate(over="ignore"):  # cosh² a overflows beyond |a| ~ 355, where b / cosh² a underflows anyway
        result.imag = b / np.cosh(a) ** 2
    return result


def log1p(z: np.ndarray) -> np.ndarray:
    """np.log1p(z): z - z²/2 where every part of z is below TINY; for z = u + iv with 1 + u > 0 and r = v / (1 + u), |r| < TINY,
    log(1 + z) = log1p(u) + log1p(r²) / 2 + i atan(r) = (log1p(u) + r²/2) + i r."""
    z = np.asarray(z)
    if z.dtype.kind != "c":
        return np.log1p(z)
    if _all_tiny(z):  # z - z²/2: z³/3 is below 2^-55 |z|
        return z - 0.5 * (z * z)
    u, v = z.real, z.imag
    shifted = 1 + u
    with np.errstate(all="ignore"):
        ratio = v / shifted
    if not (np.all(shifted > 0) and np.all(np.abs(ratio) < TINY) and np.all(np.isfinite(shifted))):
        return np.log1p(z)
    result = np.empty(z.shape, dtype=z.dtype)
    result.real = np.log1p(u) + 0.5 * ratio * ratio
    result.imag = ratio
    return result
