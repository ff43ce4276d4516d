"""More elementwise math: inverse trigonometric and hyperbolic functions, logarithms to other bases,
logaddexp, erf, the NaN-ignoring fmax/fmin, and the piecewise-constant sign, floor and mod.

Each op here states its partial derivatives once (``partials``); the vjp (summed back over broadcast
axes) and the jvp (the tangents weighted by the same partials) both come from them.
"""
from __future__ import annotations

import math

import numpy as np

from .base import real_part, unbroadcast
from .elementwise import Elementwise
from .nn import float_dtype
from .registry import builtin


class Partials(Elementwise):
    """An elementwise op whose vjp and jvp follow from its partial derivatives d out / d argument."""

    def partials(self, out, *inputs) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError

    def vjp(self, g, out, *inputs):
        partials = self.partials(out, *inputs)
        return tuple(unbroadcast(g * partial, np.shape(x)) for partial, x in zip(partials, inputs, strict=True))

    def jvp(self, tangents, out, *inputs):
        terms = [t * partial for t, partial in zip(tangents, self.partials(out, *inputs), strict=True) if t is not None]
        total = sum(terms[1:], terms[0]) if terms else np.zeros(np.shape(out))
        return np.broadcast_to(total, np.shape(out)).copy()


def zeros_like_float(x):
    return np.zeros(np.shape(x), dtype=float_dtype(real_part(np.asarray(x))))


# ---------------------------------------------------------------- inverse trigonometric

@builtin
class Arcsin(Partials):
    """Inverse sine (-1 < x < 1)."""
    name, args, domains = "arcsin", ("x",), ("unit",)
    local_derivative = ("1/√(1 - {x}²)",)

    def forward(self, x):
        return np.arcsin(x)

    def partials(self, out, x):
        return (1 / np.sqrt(1 - x * x),)


@builtin
class Arccos(Partials):
    """Inverse cosine (-1 < x < 1)."""
    name, args, domains = "arccos", ("x",), ("unit",)
    local_derivative = ("-1/√(1 - {x}²)",)

    def forward(self, x):
        return np.arccos(x)

    def partials(self, out, x):
        return (-1 / np.sqrt(1 - x * x),)


@builtin
class Arctan(Partials):
    """Inverse tangent."""
    name, args = "arctan", ("x",)
    local_derivative = ("1/(1 + {x}²)",)

    def forward(self, x):
        return np.arctan(x)

    def partials(self, out, x):
        return (1 / (1 + x * x),)


@builtin
class Arctan2(Partials):
    """The angle of the point (x, y), in (-pi, pi]; jumps by 2 pi across the negative x axis (y = 0, x < 0)."""
    name, args, domains, has_kinks = "arctan2", ("y", "x"), ("nonzero", "real"), True
    local_derivative = ("{b}/({a}² + {b}²)", "-{a}/({a}² + {b}²)")

    def forward(self, y, x):
        if not (np.iscomplexobj(y) or np.iscomplexobj(x)):
            return np.arctan2(y, x)
        # complex-step: arctan(y / x) plus the quadrant's constant offset, both read from the real parts
        real_y, real_x = real_part(y), real_part(x)
        offset = np.where(real_x < 0, np.where(real_y >= 0, np.pi, -np.pi), 0.0)
        return np.arctan(y / x) + offset

    def partials(self, out, y, x):
        radius2 = x * x + y * y
        return x / radius2, -y / radius2

    def branches(self, y, x):
        # the quadrant offset: which side of the cut along the negative x axis
        return np.where(real_part(x) < 0, np.sign(real_part(y)), 0.0), np.sign(real_part(x))


# ---------------------------------------------------------------- hyperbolic

@builtin
class Sinh(Partials):
    """Hyperbolic sine."""
    name, args = "sinh", ("x",)
    local_derivative = ("cosh {x}",)

    def forward(self, x):
        return np.sinh(x)

    def partials(self, out, x):
        return (np.cosh(x),)


@builtin
class Cosh(Partials):
    """Hyperbolic cosine."""
    name, args = "cosh", ("x",)
    local_derivative = ("sinh {x}",)

    def forward(self, x):
        return np.cosh(x)

    def partials(self, out, x):
        return (np.sinh(x),)


@builtin
class Arcsinh(Partials):
    """Inverse hyperbolic sine."""
    name, args = "arcsinh", ("x",)
    local_derivative = ("1/√({x}² + 1)",)

    def forward(self, x):
        return np.arcsinh(x)

    def partials(self, out, x):
        return (1 / np.sqrt(x * x + 1),)


@builtin
class Arctanh(Partials):
    """Inverse hyperbolic tangent (-1 < x < 1)."""
    name, args, domains = "arctanh", ("x",), ("unit",)
    local_derivative = ("1/(1 - {x}²)",)

    def forward(self, x):
        return np.arctanh(x)

    def partials(self, out, x):
        return (1 / (1 - x * x),)


# ---------------------------------------------------------------- logarithms and friends

@builtin
class Log2(Partials):
    """Base-2 logarithm (x > 0)."""
    name, args, domains = "log2", ("x",), ("positive",)
    local_derivative = ("1/({x}·ln 2)",)

    def forward(self, x):
        return np.log2(x)

    def partials(self, out, x):
        return (1 / (x * math.log(2)),)


@builtin
class Log10(Partials):
    """Base-10 logarithm (x > 0)."""
    name, args, domains = "log10", ("x",), ("positive",)
    local_derivative = ("1/({x}·ln 10)",)

    def forward(self, x):
        return np.log10(x)

    def partials(self, out, x):
        return (1 / (x * math.log(10)),)


@builtin
class LogAddExp(Partials):
    """log(exp(a) + exp(b)), broadcasting, max-shifted so it never overflows."""
    name, args = "logaddexp", ("a", "b")
    local_derivative = ("exp({a})/(exp({a}) + exp({b}))", "exp({b})/(exp({a}) + exp({b}))")

    def forward(self, a, b):
        # log(e^a + e^b) = m + log(e^(a-m) + e^(b-m)), m = max(a, b) taken on the real parts
        shift = np.maximum(real_part(a), real_part(b))
        shift = np.where(np.isfinite(shift), shift, 0)
        return shift + np.log(np.exp(a - shift) + np.exp(b - shift))

    def partials(self, out, a, b):
        return np.exp(a - out), np.exp(b - out)


_ERF = np.frompyfunc(math.erf, 1, 1)


@builtin
class Erf(Partials):
    """The error function 2/sqrt(pi) * integral of exp(-t^2) from 0 to x (libm's erf)."""
    name, args = "erf", ("x",)
    local_derivative = ("(2/√π)·exp(-{x}²)",)
    complex_safe = False  # math.erf is real-only

    def forward(self, x):
        x = np.asarray(x)
        return np.asarray(_ERF(x.astype(np.float64)), dtype=np.float64).astype(float_dtype(x))

    def partials(self, out, x):
        return (2 / math.sqrt(math.pi) * np.exp(-x * x),)


# ---------------------------------------------------------------- piecewise: kinks and jumps

@builtin
class Fmax(Partials):
    """Elementwise max(a, b) ignoring NaN (a NaN loses), broadcasting (kink at ties; a tie's gradient goes to a)."""
    name, args, has_kinks = "fmax", ("a", "b"), True
    local_derivative = ("1 if {a} ≥ {b} or {b} is NaN else 0", "1 if {a} < {b} or {a} is NaN else 0")

    @staticmethod
    def a_wins(a, b):
        a, b = real_part(a), real_part(b)
        return (a >= b) | np.isnan(b)

    def forward(self, a, b):
        return np.where(self.a_wins(a, b), a, b)

    def partials(self, out, a, b):
        wins = self.a_wins(a, b)
        return wins.astype(float_dtype(real_part(out))), (~wins).astype(float_dtype(real_part(out)))

    def branches(self, a, b):
        return np.where(np.isnan(real_part(b)), 2.0, np.sign(real_part(a) - real_part(b)))


@builtin
class Fmin(Fmax):
    """Elementwise min(a, b) ignoring NaN (a NaN loses), broadcasting (kink at ties; a tie's gradient goes to a)."""
    name = "fmin"
    local_derivative = ("1 if {a} ≤ {b} or {b} is NaN else 0", "1 if {a} > {b} or {a} is NaN else 0")

    @staticmethod
    def a_wins(a, b):
        a, b = real_part(a), real_part(b)
        return (a <= b) | np.isnan(b)


@builtin
class Sign(Partials):
    """-1, 0 or 1 by the sign of x (derivative 0; jumps at 0)."""
    name, args, domains, has_kinks = "sign", ("x",), ("nonzero",), True
    local_derivative = ("0 (a jump at 0)",)

    def forward(self, x):
        return np.sign(real_part(np.asarray(x))).astype(float_dtype(real_part(np.asarray(x))))

    def partials(self, out, x):
        return (zeros_like_float(x),)

    def branches(self, x):
        return np.sign(real_part(np.asarray(x)))


@builtin
class Floor(Partials):
    """The largest integer <= x (derivative 0; jumps at the integers)."""
    name, args, domains, has_kinks = "floor", ("x",), ("off_integer",), True
    local_derivative = ("0 (jumps at the integers)",)

    def forward(self, x):
        return np.floor(real_part(np.asarray(x))).astype(float_dtype(real_part(np.asarray(x))))

    def partials(self, out, x):
        return (zeros_like_float(x),)

    def branches(self, x):
        values = real_part(np.asarray(x))
        return np.floor(values), values == np.floor(values)  # the integer below, and sitting on one


@builtin
class Mod(Partials):
    """a mod b = a - b * floor(a / b), the sign of b (numpy's mod); jumps where a / b is an integer."""
    name, args, domains, has_kinks = "mod", ("a", "b"), ("real", "nonzero"), True
    local_derivative = ("1", "-floor({a}/{b})")

    def forward(self, a, b):
        return a - b * np.floor(real_part(a / b))

    def partials(self, out, a, b):
        quotient = np.floor(real_part(a / b))
        return np.ones(np.shape(a), dtype=float_dtype(real_part(np.asarray(out)))), -quotient

    def branches(self, a, b):
        quotient = real_part(np.asarray(a) / np.asarray(b))
        return np.floor(quotient), quotient == np.floor(quotient)

    @staticmethod
    def test_cases(rng):
        def pair(shape_a, shape_b):
            b = rng.choice([-1.0, 1.0], size=shape_b) * rng.uniform(0.5, 2.0, size=shape_b)
            # a / b = an integer plus a fraction in [0.15, 0.85]: 0.15 |b| >= 0.075 from the nearest jump
            quotient = rng.integers(-3, 3, size=np.broadcast_shapes(shape_a, shape_b)) + rng.uniform(0.15, 0.85)
            return quotient * b, b
        return [(pair((), ()), {}), (pair((4,), (4,)), {}), (pair((2, 3), (2, 3)), {}), (pair((2, 3), (3,)), {})]
