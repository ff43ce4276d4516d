"""Elementwise ops: forward and vjp side by side.  Binary ops broadcast; their vjps
sum the gradient back to each input's shape with ``unbroadcast``.

Branch decisions (relu's sign, maximum's winner) read the real part only, so every op here
stays usable under the complex-step method.
"""
from __future__ import annotations

import numpy as np

from . import complexmath
from .base import Param, Primitive, broadcast_result, real_part, unbroadcast, unbroadcast_batched
from .changes import elementwise_change, linear_elementwise_change, piecewise_linear_change
from .registry import builtin


def softplus_stable(x):
    """log(1 + exp(x)) without overflow; also valid for complex x (complex-step)."""
    if np.iscomplexobj(x):
        positive = np.real(x) > 0
        return np.where(positive, x + np.log1p(np.exp(-np.where(positive, x, 0))),
                        np.log1p(np.exp(np.where(positive, 0, x))))
    return np.logaddexp(0.0, x).astype(np.result_type(x, np.float32), copy=False)


def sigmoid_stable(x):
    """1 / (1 + exp(-x)) evaluated without overflow for |x| up to the float range."""
    if np.iscomplexobj(x):
        positive = np.real(x) >= 0
        exp_neg = np.exp(-np.where(positive, x, 0))
        exp_pos = np.exp(np.where(positive, 0, x))
        return np.where(positive, 1 / (1 + exp_neg), exp_pos / (1 + exp_pos))
    x = np.asarray(x)
    dtype = np.result_type(x, np.float32)
    exp_minus_abs = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + exp_minus_abs), exp_minus_abs / (1 + exp_minus_abs)).astype(dtype, copy=False)


class Elementwise(Primitive):
    """An op applied element by element (with broadcasting): extra leading axes are batch axes."""
    batching = "broadcast"
    complex_safe = True
    result_shape = staticmethod(broadcast_result)

    def propagate(self, changes, out, *inputs, **params):
        """Each result entry depends on the same (broadcast) entry of each argument: recompute the changed ones."""
        return elementwise_change(self.forward, changes, out, inputs, params)


# ---------------------------------------------------------------- arithmetic

@builtin
class Add(Elementwise):
    """a + b, broadcasting."""
    name, args = "add", ("a", "b")
    linear_in = (0, 1)
    local_derivative = ("1", "1")

    def forward(self, a, b):
        return np.add(a, b)

    def propagate(self, changes, out, a, b):
        return linear_elementwise_change((1, 1), changes, out)

    def vjp(self, g, out, a, b):
        return unbroadcast(g, np.shape(a)), unbroadcast(g, np.shape(b))

    def batched_vjp(self, gs, out, a, b):
        return unbroadcast_batched(gs, np.shape(a)), unbroadcast_batched(gs, np.shape(b))


@builtin
class Sub(Elementwise):
    """a - b, broadcasting."""
    name, args = "sub", ("a", "b")
    linear_in = (0, 1)
    local_derivative = ("1", "-1")

    def forward(self, a, b):
        return np.subtract(a, b)

    def propagate(self, changes, out, a, b):
        return linear_elementwise_change((1, -1), changes, out)

    def vjp(self, g, out, a, b):
        return unbroadcast(g, np.shape(a)), unbroadcast(-g, np.shape(b))

    def batched_vjp(self, gs, out, a, b):
        return unbroadcast_batched(gs, np.shape(a)), unbroadcast_batched(-gs, np.shape(b))


@builtin
class Mul(Elementwise):
    """a * b, elementwise, broadcasting."""
    name, args = "mul", ("a", "b")
    linear_in = (0, 1)
    local_derivative = ("{b}", "{a}")

    def forward(self, a, b):
        return np.multiply(a, b)

    def vjp(self, g, out, a, b):
        return unbroadcast(g * b, np.shape(a)), unbroadcast(g * a, np.shape(b))

    def batched_vjp(self, gs, out, a, b):
        return unbroadcast_batched(gs * b, np.shape(a)), unbroadcast_batched(gs * a, np.shape(b))


@builtin
class Div(Elementwise):
    """a / b, elementwise, broadcasting."""
    name, args, domains = "div", ("a", "b"), ("real", "nonzero")
    linear_in = (0,)
    local_derivative = ("1/{b}", "-{a}/{b}²")

    def forward(self, a, b):
        return np.divide(a, b)

    def vjp(self, g, out, a, b):
        # d(a/b)/db = -a/b^2 = -out/b
        return unbroadcast(g / b, np.shape(a)), unbroadcast(-g * out / b, np.shape(b))


@builtin
class Neg(Elementwise):
    """-x."""
    name, args = "neg", ("x",)
    linear_in = (0,)
    local_derivative = ("-1",)

    def forward(self, x):
        return np.negative(x)

    def vjp(self, g, out, x):
        return (-g,)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


@builtin
class Pow(Elementwise):
    """a ** b, elementwise, broadcasting (a > 0 where b is not an integer)."""
    name, args, domains = "pow", ("a", "b"), ("positive", "real")
    local_derivative = ("{b}·{a}^({b}-1)", "{a}^{b}·ln {a}")

    def forward(self, a, b):
        return np.power(a, b)

    def vjp(self, g, out, a, b):
        grad_a = g * b * np.power(a, b - 1)
        # d(a^b)/db = a^b log a, defined for a > 0; where a <= 0 the exponent has no real derivative
        safe_a = np.where(real_part(a) > 0, a, 1)
        grad_b = g * out * np.log(safe_a)
        return unbroadcast(grad_a, np.shape(a)), unbroadcast(grad_b, np.shape(b))


@builtin
class Square(Elementwise):
    """x ** 2."""
    name, args = "square", ("x",)
    local_derivative = ("2{x}",)

    def forward(self, x):
        return np.multiply(x, x)

    def vjp(self, g, out, x):
        return (2 * g * x,)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


@builtin
class Reciprocal(Elementwise):
    """1 / x."""
    name, args, domains = "reciprocal", ("x",), ("nonzero",)
    local_derivative = ("-1/{x}²",)

    def forward(self, x):
        return np.reciprocal(np.asarray(x, dtype=np.result_type(x, np.float32)))

    def vjp(self, g, out, x):
        return (-g * out * out,)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


# ---------------------------------------------------------------- transcendental

@builtin
class Exp(Elementwise):
    """e ** x."""
    name, args = "exp", ("x",)
    local_derivative = ("exp({x})",)

    def forward(self, x):
        return np.exp(x)

    def vjp(self, g, out, x):
        return (g * out,)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


@builtin
class Log(Elementwise):
    """Natural logarithm (x > 0)."""
    name, args, domains = "log", ("x",), ("positive",)
    local_derivative = ("1/{x}",)

    def forward(self, x):
        return np.log(x)

    def vjp(self, g, out, x):
        return (g / x,)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


@builtin
class Sqrt(Elementwise):
    """Square root (x > 0)."""
    name, args, domains = "sqrt", ("x",), ("positive",)
    local_derivative = ("1/(2√{x})",)

    def forward(self, x):
        return np.sqrt(x)

    def vjp(self, g, out, x):
        return (g / (2 * out),)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


@builtin
class Sin(Elementwise):
    """Sine."""
    name, args = "sin", ("x",)
    local_derivative = ("cos {x}",)

    def forward(self, x):
        return np.sin(x)

    def vjp(self, g, out, x):
        return (g * np.cos(x),)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


@builtin
class Cos(Elementwise):
    """Cosine."""
    name, args = "cos", ("x",)
    local_derivative = ("-sin {x}",)

    def forward(self, x):
        return np.cos(x)

    def vjp(self, g, out, x):
        return (-g * np.sin(x),)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


@builtin
class Tanh(Elementwise):
    """Hyperbolic tangent."""
    name, args = "tanh", ("x",)
    local_derivative = ("1 - tanh²({x})",)

    def forward(self, x):
        return complexmath.tanh(x)  # np.tanh of a complex-step argument, at the cost of two real functions

    def vjp(self, g, out, x):
        return (g * (1 - out * out),)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


@builtin
class Sigmoid(Elementwise):
    """Logistic sigmoid 1 / (1 + exp(-x)), overflow-free."""
    name, args = "sigmoid", ("x",)
    local_derivative = ("σ({x})·(1 - σ({x}))",)

    def forward(self, x):
        return sigmoid_stable(x)

    def vjp(self, g, out, x):
        return (g * out * (1 - out),)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


@builtin
class Softplus(Elementwise):
    """log(1 + exp(x)), overflow-free."""
    name, args = "softplus", ("x",)
    local_derivative = ("σ({x})",)

    def forward(self, x):
        return softplus_stable(x)

    def vjp(self, g, out, x):
        return (g * sigmoid_stable(x),)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through


# ---------------------------------------------------------------- piecewise (kinks)

@builtin
class Abs(Elementwise):
    """|x| (kink at 0; the gradient there is taken as 0)."""
    name, args, domains, has_kinks = "abs", ("x",), ("nonzero",), True
    local_derivative = ("sign({x})",)

    def forward(self, x):
        return x * np.sign(real_part(x))

    def propagate(self, changes, out, x):
        return piecewise_linear_change(changes[0], x, -1.0, 1.0)

    def vjp(self, g, out, x):
        return (g * np.sign(real_part(x)),)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through

    def branches(self, x):
        return np.sign(real_part(x))


@builtin
class Relu(Elementwise):
    """max(x, 0) (kink at 0; the gradient there is taken as 0)."""
    name, args, domains, has_kinks = "relu", ("x",), ("nonzero",), True
    local_derivative = ("1 if {x} > 0 else 0",)

    def forward(self, x):
        return x * (real_part(x) > 0)

    def propagate(self, changes, out, x):
        return piecewise_linear_change(changes[0], x, 0.0, 1.0)

    def vjp(self, g, out, x):
        return (g * (real_part(x) > 0),)

    batched_vjp = vjp  # g times a function of x: extra leading axes of g pass through

    def branches(self, x):
        return np.sign(real_part(x))


@builtin
class LeakyRelu(Elementwise):
    """x where x > 0, slope * x elsewhere (kink at 0)."""
    name, args, domains, has_kinks = "leaky_relu", ("x",), ("nonzero",), True
    local_derivative = ("1 if {x} > 0 else slope",)
    params = {"slope": Param("float", default=0.01, doc="slope for x < 0")}

    def forward(self, x, slope):
        return np.where(real_part(x) > 0, x, slope * x)

    def propagate(self, changes, out, x, slope):
        return piecewise_linear_change(changes[0], x, slope, 1.0)

    def vjp(self, g, out, x, slope):
        return (np.where(real_part(x) > 0, g, slope * g),)

    def branches(self, x, slope):
        return np.sign(real_part(x))


@builtin
class Maximum(Elementwise):
    """Elementwise max(a, b), broadcasting (kink at ties; a tie's gradient goes to a)."""
    name, args, has_kinks = "maximum", ("a", "b"), True
    local_derivative = ("1 if {a} ≥ {b} else 0", "1 if {a} < {b} else 0")

    def forward(self, a, b):
        return np.where(real_part(a) >= real_part(b), a, b)

    def vjp(self, g, out, a, b):
        a_wins = real_part(a) >= real_part(b)
        return unbroadcast(g * a_wins, np.shape(a)), unbroadcast(g * ~a_wins, np.shape(b))

    def branches(self, a, b):
        return np.sign(real_part(a) - real_part(b))


@builtin
class Minimum(Elementwise):
    """Elementwise min(a, b), broadcasting (kink at ties; a tie's gradient goes to a)."""
    name, args, has_kinks = "minimum", ("a", "b"), True
    local_derivative = ("1 if {a} ≤ {b} else 0", "1 if {a} > {b} else 0")

    def forward(self, a, b):
        return np.where(real_part(a) <= real_part(b), a, b)

    def vjp(self, g, out, a, b):
        a_wins = real_part(a) <= real_part(b)
        return unbroadcast(g * a_wins, np.shape(a)), unbroadcast(g * ~a_wins, np.shape(b))

    def branches(self, a, b):
        return np.sign(real_part(a) - real_part(b))
