"""Custom ops for tests/test_undeclared_kinks.py: none declares ``branches``.  Kinks whose central difference
matches the vjp, one wrong at its kink, and smooth twins with large curvature or smooth joins (they must pass)."""
import numpy as np


class Abs:                           # |x|; vjp sign(x): 0 at 0, the central difference there
    def forward(self, x): return np.abs(x)
    def vjp(self, g, out, x): return (g * np.sign(x),)


class AbsWrongAtZero(Abs):           # 3 at 0: neither one-sided slope (+-1) nor between them
    def vjp(self, g, out, x): return (g * np.where(x == 0, 3.0, np.sign(x)),)


class AbsMissingItsDecision(Abs):    # declares branches that never change: abs decides on sign(x)
    def branches(self, x): return np.ones_like(x)


class AbsMissingItsDecisionWrongAtZero(AbsMissingItsDecision):
    vjp = AbsWrongAtZero.vjp


class Vee:                           # slope 2 right of 1, -1 left of it; vjp at 1 the average 0.5
    def forward(self, x): return np.where(x >= 1, 2 * (x - 1), 1 - x)
    def vjp(self, g, out, x): return (g * np.where(x > 1, 2.0, np.where(x < 1, -1.0, 0.5)),)


class ReluRightAtZero:               # max(x, 0); vjp 1 at 0: the right derivative, what a forward difference gives
    def forward(self, x): return np.maximum(x, 0.0)
    def vjp(self, g, out, x): return (g * (x >= 0),)


class PairMax:                       # max(a, b); a tie splits the gradient in halves
    def forward(self, a, b): return np.maximum(a, b)
    def vjp(self, g, out, a, b):
        share = np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5))
        return g * share, g * (1 - share)


# ------------------------------------------------------------------ smooth twins: no kink, they must pass

class XRelu:                         # x * max(x, 0): a smooth join at 0 (derivative 2 max(x, 0), continuous)
    def forward(self, x): return x * np.maximum(x, 0.0)
    def vjp(self, g, out, x): return (g * 2 * np.maximum(x, 0.0),)


class Huber:                         # x^2 / 2 inside |x| <= 1, |x| - 1/2 outside: derivative clip(x, -1, 1)
    def forward(self, x): return np.where(np.abs(x) <= 1, x * x / 2, np.abs(x) - 0.5)
    def vjp(self, g, out, x): return (g * np.clip(x, -1.0, 1.0),)


class Exp:
    def forward(self, x): return np.exp(x)
    def vjp(self, g, out, x): return (g * np.exp(x),)


class Sin:
    def forward(self, x): return np.sin(x)
    def vjp(self, g, out, x): return (g * np.cos(x),)


class SmoothAbs:                     # sqrt(x^2 + 1e-10): curvature 1e5 at 0, no kink; analytic, so complex-step
    complex_safe = True              # differentiates through it and its imaginary step gives no real step to trust
    def forward(self, x): return np.sqrt(x * x + 1e-10)
    def vjp(self, g, out, x): return (g * x / np.sqrt(x * x + 1e-10),)
