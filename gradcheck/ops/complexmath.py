"""expm1, log1p and tanh of complex arrays whose imaginary parts are tiny (the complex-step method's), from real functions.

numpy's complex expm1 and log1p cost 10-20 times their real versions; with |b| < 2^-27 the identities below are
exact to rounding (the terms they drop are below 2^-54 relative), so the complex-step pass pays for two real
functions instead.  Any other argument goes to numpy's complex functions.
"""
from __future__ import annotations

import numpy as np

TINY = 2.0 ** -27  # below this, cos b = 1 - b²/2 and sin b = b, atan r = r and log1p(r²) = r² to rounding


def expm1(z: np.ndarray) -> np.ndarray:
    """np.expm1(z): for z = a + ib with |b| < TINY, e^a (cos b + i sin b) - 1 = (expm1(a) - e^a b²/2) + i e^a b;
    with |a| < TINY too (the complex-step pass's real parts are rounding noise), a + (a² - b²)/2 + i b (1 + a)."""
    z = np.asarray(z)
    if z.dtype.kind != "c":
        return np.expm1(z)
    a, b = z.real, z.imag
    if not np.all(np.abs(b) < TINY):
        return np.expm1(z)
    result = np.empty(z.shape, dtype=z.dtype)
    if np.all(np.abs(a) < TINY):  # the terms dropped, a³/6 and a b²/2, are below 2^-55 of |z|
        result.real = a + 0.5 * (a * a - b * b)
        result.imag = b + a * b
        return result
    shifted = np.expm1(a)
    if not np.all(np.isfinite(shifted)):
        return np.expm1(z)
    grown = np.exp(a)
    result.real = shifted - 0.5 * b * b * grown
    result.imag = grown * b
    return result


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
    with np.errstate(over="ignore"):  # cosh overflows beyond |a| ~ 710, where b / cosh² a is 0
        result.imag = b / np.cosh(a) ** 2
    return result


def log1p(z: np.ndarray) -> np.ndarray:
    """np.log1p(z): for z = u + iv with 1 + u > 0 and r = v / (1 + u), |r| < TINY,
    log(1 + z) = log1p(u) + log1p(r²) / 2 + i atan(r) = (log1p(u) + r²/2) + i r."""
    z = np.asarray(z)
    if z.dtype.kind != "c":
        return np.log1p(z)
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
