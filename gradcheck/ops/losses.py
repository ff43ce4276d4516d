"""The seeds' losses, averaged over samples: squared error, logistic loss, SVM hinge loss."""
from __future__ import annotations

import numpy as np

from .base import Primitive, real_part, unbroadcast
from .elementwise import sigmoid_stable, softplus_stable
from ..batching import per_copy_mean
from .registry import builtin


@builtin
class Mse(Primitive):
    """Mean squared error: mean((pred - target) ** 2), broadcasting."""
    name, args, batching = "mse", ("pred", "target"), "custom"

    def forward_batched(self, args, batched):
        pred, target = args
        return per_copy_mean(np.square(np.subtract(pred, target)), len(pred if batched[0] else target))

    def forward(self, pred, target):
        return np.mean(np.square(np.subtract(pred, target)))

    def vjp(self, g, out, pred, target):
        diff = np.subtract(pred, target)
        grad = g * 2 * diff / diff.size
        return unbroadcast(grad, np.shape(pred)), unbroadcast(-grad, np.shape(target))


@builtin
class LogisticLoss(Primitive):
    """Logistic-regression cost: mean(log(1 + exp(-y * z))) with labels y in {-1, +1}."""
    name, args, domains, batching = "logistic_loss", ("z", "y"), ("real", "sign"), "custom"

    def forward_batched(self, args, batched):
        z, y = args
        return per_copy_mean(softplus_stable(-np.multiply(y, z)), len(z if batched[0] else y))

    def forward(self, z, y):
        return np.mean(softplus_stable(-np.multiply(y, z)))

    def vjp(self, g, out, z, y):
        margin = np.multiply(y, z)
        # d softplus(-m)/dm = -sigmoid(-m)
        dmargin = -g * sigmoid_stable(-margin) / np.size(margin)
        return unbroadcast(dmargin * y, np.shape(z)), unbroadcast(dmargin * z, np.shape(y))


@builtin
class Hinge(Primitive):
    """SVM hinge loss: mean(max(0, 1 - y * z)) with labels y in {-1, +1} (kink at the margin)."""
    name, args, domains, has_kinks = "hinge", ("z", "y"), ("real", "sign"), True

    def forward(self, z, y):
        slack = 1 - np.multiply(y, z)
        return np.mean(slack * (real_part(slack) > 0))

    def vjp(self, g, out, z, y):
        slack = 1 - np.multiply(y, z)
        dslack = g * (real_part(slack) > 0) / np.size(slack)
        return unbroadcast(-dslack * y, np.shape(z)), unbroadcast(-dslack * z, np.shape(y))
