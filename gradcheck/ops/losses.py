"""The seeds' losses, averaged over samples: squared error, logistic loss, SVM hinge loss."""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import Primitive, broadcast_result, real_part, unbroadcast
from .batching import per_copy_mean
from .changes import derived, mean_of_elementwise_change, squared_error_change
from .elementwise import sigmoid_stable, softplus_stable
from .nn import broadcast_shapes
from .registry import builtin


class MeanLoss(Primitive):
    """A loss per element of two broadcasting arguments, averaged over the broadcast (not over batch copies)."""
    batching = "custom"
    complex_safe = True
    result_shape = staticmethod(broadcast_result)  # the per-element losses, the largest array forward builds

    def losses(self, *args: Any, **params: Any) -> Any:  # pragma: no cover - abstract: (a, b, **params)
        raise NotImplementedError

    def forward(self, a, b, **params):
        return np.mean(self.losses(a, b, **params))

    def forward_batched(self, args, batched, **params):
        a, b = args
        return per_copy_mean(self.losses(a, b, **params), len(a if batched[0] else b))

    def propagate(self, changes, out, a, b, **params):
        return mean_of_elementwise_change(self.losses, changes, (a, b), params)

    def _count(self, a, b) -> int:
        return int(np.prod(self._shape(a, b), dtype=np.int64))

    def _shape(self, a, b) -> tuple[int, ...]:
        return broadcast_shapes(self.name, **{self.args[0]: np.shape(a), self.args[1]: np.shape(b)})

    def _adjoints(self, a, b, grad_a, grad_b):
        shape = self._shape(a, b)
        return (unbroadcast(np.broadcast_to(grad_a, shape), np.shape(a)),
                unbroadcast(np.broadcast_to(grad_b, shape), np.shape(b)))


@builtin
class Mse(MeanLoss):
    """Mean squared error: mean((pred - target) ** 2), broadcasting."""
    name, args = "mse", ("pred", "target")
    vjp_formula = ("g · 2(pred - target)/n", "g · -2(pred - target)/n")

    def losses(self, pred, target):
        return np.square(np.subtract(pred, target))

    def propagate(self, changes, out, a, b, **params):
        return squared_error_change(changes, self._shape(a, b), derived(np.subtract, a, b))

    def vjp(self, g, out, pred, target):
        diff = np.subtract(pred, target)
        grad = g * 2 * diff / diff.size
        return self._adjoints(pred, target, grad, -grad)


@builtin
class LogisticLoss(MeanLoss):
    """Logistic-regression cost: mean(log(1 + exp(-y * z))) with labels y in {-1, +1}."""
    name, args, domains = "logistic_loss", ("z", "y"), ("real", "sign")
    vjp_formula = ("g · -y·σ(-y·z)/n", None)

    def losses(self, z, y):
        return softplus_stable(-np.multiply(y, z))

    def vjp(self, g, out, z, y):
        margin = np.multiply(y, z)
        dmargin = -g * sigmoid_stable(-margin) / np.size(margin)
        return self._adjoints(z, y, dmargin * y, dmargin * z)


@builtin
class Hinge(MeanLoss):
    """SVM hinge loss: mean(max(0, 1 - y * z)) with labels y in {-1, +1} (kink at the margin)."""
    name, args, domains, has_kinks = "hinge", ("z", "y"), ("real", "sign"), True
    vjp_formula = ("g · -y/n where y·z < 1, else 0", None)

    def losses(self, z, y):
        slack = 1 - np.multiply(y, z)
        return slack * (real_part(slack) > 0)

    def vjp(self, g, out, z, y):
        slack = 1 - np.multiply(y, z)
        dslack = g * (real_part(slack) > 0) / np.size(slack)
        return self._adjoints(z, y, -dslack * y, -dslack * z)

    def branches(self, z, y):
        return np.sign(real_part(1 - np.multiply(y, z)))
