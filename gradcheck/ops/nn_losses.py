"""Neural-network ops, part 2: classification and regression losses, averaged over samples.

Scores and logits carry the classes on their last axis; every leading element is a sample.
Integer labels are class indices of shape scores.shape[:-1].
"""
from __future__ import annotations

import math

import numpy as np

from .base import OpArgumentError, Param, Primitive, real_part, scalar_batched_vjp, scalar_result
from .changes import derived, softmax_cross_entropy_change
from .elementwise import sigmoid_stable, softplus_stable
from .losses import MeanLoss
from .nn import check_indices, first_position, float_dtype, log_softmax, require_integer
from .registry import builtin


def sample_count(scores, op: str) -> int:
    """The number of samples of (..., C) scores: the product of the leading dimensions."""
    if np.ndim(scores) == 0:
        raise OpArgumentError(f"{op}() needs scores with a class axis (last), got a scalar")
    shape = np.shape(scores)
    count = math.prod(shape[:-1])
    if count == 0 or shape[-1] == 0:
        raise OpArgumentError(f"{op}(): scores of shape {np.shape(scores)} hold no samples or no classes")
    return count


def class_indices(labels, scores, op: str) -> np.ndarray:
    """Validate integer labels against (..., C) scores: shape scores.shape[:-1], values in [0, C)."""
    labels = require_integer(labels, op, "labels")
    expected = np.shape(scores)[:-1]
    if labels.shape != expected:
        raise OpArgumentError(f"{op}(): labels of shape {labels.shape} do not match scores of shape "
                              f"{np.shape(scores)}: expected one class index per sample, shape {expected}")
    check_indices(labels, np.shape(scores)[-1], op, "label", "classes")
    return labels


def one_hot_mask(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.arange(classes) == labels[..., None]


@builtin
class CrossEntropy(Primitive):
    """Softmax cross-entropy over the last axis, mean over samples; labels: int class indices or float targets."""
    name, args, domains = "cross_entropy", ("logits", "labels"), ("real", "labels")
    complex_safe = True
    result_shape = staticmethod(scalar_result)
    vjp_formula = ("g · (softmax({logits}) - t)/n, t the one-hot or soft targets", "g · -log softmax({logits})/n")
    batched_vjp = scalar_batched_vjp

    @staticmethod
    def batching(shapes, batched):
        return "custom" if batched[0] and not batched[1] else None

    def forward_batched(self, args, batched):
        logits, labels = args  # logits batched, labels shared by every copy
        count = logits.shape[0]
        targets, _, samples = self._targets(logits[0], labels)
        return -np.sum((targets * log_softmax(logits, -1)).reshape(count, -1), axis=1) / samples

    def _targets(self, logits, labels):
        """(targets with the logits' shape, whether labels were class indices, the sample count)."""
        samples = sample_count(logits, self.name)
        labels = np.asarray(labels)
        shape = np.shape(logits)
        if labels.dtype.kind in "iu" and labels.shape == shape[:-1]:
            mask = one_hot_mask(labels, shape[-1])
            if mask.any(axis=-1).all():  # each label in [0, C) matches exactly one class; else the checks word it
                return mask.astype(float_dtype(logits)), True, samples
        # class indices: integer data, or whole numbers with one label per sample (shape logits.shape[:-1])
        if np.issubdtype(labels.dtype, np.integer) or labels.shape == np.shape(logits)[:-1]:
            indices = class_indices(labels, logits, self.name)
            return one_hot_mask(indices, np.shape(logits)[-1]).astype(float_dtype(logits)), True, samples
        if labels.shape != np.shape(logits):
            raise OpArgumentError(f"{self.name}(): labels of shape {labels.shape} fit neither logits of shape "
                                  f"{np.shape(logits)} (targets) nor {np.shape(logits)[:-1]} (class indices)")
        return labels, False, samples

    def forward(self, logits, labels):
        targets, _, samples = self._targets(logits, labels)
        return -np.sum(targets * log_softmax(logits, -1)) / samples

    def propagate(self, changes, out, logits, labels):
        change_logits, change_labels = changes
        if change_labels is not None:
            return None
        targets, classes, samples = derived(self._unperturbed_targets, logits, labels)
        return softmax_cross_entropy_change(change_logits, logits, targets, samples, classes)

    def _unperturbed_targets(self, logits, labels):
        """(targets, each row's class index or None for soft targets, the sample count), validated once per
        pair of unperturbed arrays (changes.derived; copies, so that the cache does not keep labels alive)."""
        targets, are_indices, samples = self._targets(logits, labels)
        classes = np.array(labels, dtype=np.intp) if are_indices else None  # one class index per row
        return (targets if are_indices else np.array(targets)), classes, samples

    def vjp(self, g, out, logits, labels):
        targets, are_indices, samples = self._targets(logits, labels)
        log_probs = log_softmax(logits, -1)
        scale = g / samples
        # d/dz of -sum_j t_j log softmax(z)_j = softmax(z) * sum_j t_j - t   (softmax - onehot for one-hot t)
        total = 1.0 if are_indices else np.sum(targets, axis=-1, keepdims=True)
        grad_logits = scale * (np.exp(log_probs) * total - targets)
        return grad_logits, None if are_indices else -scale * log_probs

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal

        def soft_targets(shape):
            weights = rng.uniform(0.1, 1.0, size=shape)
            return weights / weights.sum(axis=-1, keepdims=True)
        return [((n((3,)), np.array(2)), {}), ((n((4, 3)), soft_targets((4, 3))), {}),
                ((n((2, 3, 5)), rng.integers(0, 5, size=(2, 3))), {}),
                ((3 * n((4, 3)), np.array([0, 2, 1, 2])), {})]


@builtin
class BinaryCrossEntropy(MeanLoss):
    """Binary cross-entropy -mean(y log p + (1 - y) log(1 - p)) of probabilities 0 < p < 1."""
    name, args, domains = "binary_cross_entropy", ("p", "y"), ("probability", "probability")
    vjp_formula = ("g · ({p} - {y})/({p}(1 - {p}))/n", "g · (ln(1 - {p}) - ln {p})/n")

    def _check(self, p):
        values = real_part(np.asarray(p))
        outside = (values <= 0) | (values >= 1)
        if np.any(outside):
            position = first_position(outside)
            raise OpArgumentError(
                f"{self.name}(): p must lie strictly between 0 and 1, got p={values[position]} "
                f"at index {list(position)} (use binary_cross_entropy_with_logits for saturated predictions)")

    def losses(self, p, y):
        self._count(p, y)
        self._check(p)
        return -(y * np.log(p) + (1 - y) * np.log1p(-p))

    def vjp(self, g, out, p, y):
        scale = g / self._count(p, y)
        grad_p = scale * (p - y) / (p * (1 - p))
        grad_y = scale * (np.log1p(-p) - np.log(p))
        return self._adjoints(p, y, grad_p, grad_y)


@builtin
class BinaryCrossEntropyWithLogits(MeanLoss):
    """Binary cross-entropy of sigmoid(z) from logits, mean(softplus(z) - y z); finite for any z."""
    name, args, domains = "binary_cross_entropy_with_logits", ("z", "y"), ("real", "probability")
    vjp_formula = ("g · (σ({z}) - {y})/n", "g · -{z}/n")

    def losses(self, z, y):
        # -(y log s(z) + (1 - y) log(1 - s(z))) = softplus(z) - y z, since log s(z) = z - softplus(z)
        self._count(z, y)
        return softplus_stable(z) - y * z

    def vjp(self, g, out, z, y):
        scale = g / self._count(z, y)
        return self._adjoints(z, y, scale * (sigmoid_stable(z) - y), -scale * z)


@builtin
class MulticlassHinge(Primitive):
    """Multiclass SVM loss: mean over samples of sum_{j != y} max(0, s_j - s_y + margin) (kinks)."""
    name, args, domains = "multiclass_hinge", ("scores", "labels"), ("real", "labels")
    complex_safe = True
    result_shape = staticmethod(scalar_result)
    vjp_formula = ("g/n · +1 to each class inside the margin, minus their count to the true class", None)
    integer_args, has_kinks = (1,), True
    params = {"margin": Param("float", default=1.0, doc="the required gap between the true and the other scores")}

    def _active(self, scores, labels, margin):
        """(margins s_j - s_y + margin, mask of wrong classes with positive margin, one-hot of labels, sample count)."""
        count = sample_count(scores, self.name)
        labels = class_indices(labels, scores, self.name)
        true_scores = np.take_along_axis(scores, labels[..., None], axis=-1)
        margins = scores - true_scores + margin
        one_hot = one_hot_mask(labels, np.shape(scores)[-1])
        return margins, (real_part(margins) > 0) & ~one_hot, one_hot, count

    def forward(self, scores, labels, margin=1.0):
        margins, active, _, count = self._active(scores, labels, margin)
        return np.sum(np.where(active, margins, 0)) / count

    def vjp(self, g, out, scores, labels, margin=1.0):
        margins, active, one_hot, count = self._active(scores, labels, margin)
        # each active j adds +1 to ds_j and -1 to ds_y
        pattern = active.astype(float_dtype(scores))
        pattern -= one_hot * np.sum(pattern, axis=-1, keepdims=True)
        return g * pattern / count, None

    def branches(self, scores, labels, margin=1.0):
        margins, _, one_hot, _ = self._active(scores, labels, margin)
        return np.where(one_hot, 0, np.sign(real_part(margins)))

    @staticmethod
    def test_cases(rng):
        def away_from_kinks(shape, margin):
            """Scores and labels with every margin s_j - s_y + margin at least 0.1 away from 0."""
            while True:
                scores = rng.uniform(-3, 3, size=shape)
                labels = rng.integers(0, shape[-1], size=shape[:-1])
                gaps = scores - np.take_along_axis(scores, labels[..., None], axis=-1) + margin
                wrong = np.arange(shape[-1]) != labels[..., None]
                if np.all(np.abs(gaps[wrong]) > 0.1):
                    return scores, labels
        cases = []
        for shape, margin in (((4,), 1.0), ((3, 4), 1.0), ((5, 3), 0.5), ((2, 3, 4), 2.0), ((6, 5), 1.0)):
            cases.append((away_from_kinks(shape, margin), {"margin": margin}))
        return cases


@builtin
class Huber(MeanLoss):
    """Huber loss, mean of d^2/2 where |d| <= delta else delta (|d| - delta/2), d = pred - target."""
    name, args = "huber", ("pred", "target")
    vjp_formula = ("g · d/n where |d| ≤ delta, else g · delta·sign(d)/n (d = pred - target)",
                   "g · -d/n where |d| ≤ delta, else g · -delta·sign(d)/n (d = pred - target)")
    params = {"delta": Param("float", default=1.0, doc="where the loss turns from quadratic to linear (> 0)")}

    def _difference(self, pred, target, delta):
        if delta <= 0:
            raise OpArgumentError(f"{self.name}(): delta must be > 0, got {delta}")
        self._count(pred, target)
        difference = np.subtract(pred, target)
        sign = np.sign(real_part(difference))
        return difference, sign, real_part(difference) * sign <= delta

    def losses(self, pred, target, delta=1.0):
        difference, sign, quadratic = self._difference(pred, target, delta)
        # |d| is written d * sign(Re d) so the linear branch stays analytic for complex-step
        return np.where(quadratic, 0.5 * difference * difference, delta * (difference * sign - 0.5 * delta))

    def vjp(self, g, out, pred, target, delta=1.0):
        difference, sign, quadratic = self._difference(pred, target, delta)
        grad = g * np.where(quadratic, difference, delta * sign) / np.size(difference)
        return self._adjoints(pred, target, grad, -grad)

    def branches(self, pred, target, delta=1.0):
        difference = real_part(np.subtract(pred, target))
        return np.sign(np.abs(difference) - delta)

    @staticmethod
    def test_cases(rng):
        def pair(shape_pred, shape_target, delta):
            """pred, target with |pred - target| on both branches, at least 0.2 delta away from delta."""
            target = rng.standard_normal(shape_target)
            shape = np.broadcast_shapes(shape_pred, shape_target)
            magnitude = np.where(rng.random(shape) < 0.5, rng.uniform(0, 0.8 * delta, size=shape),
                                 rng.uniform(1.2 * delta, 3 * delta, size=shape))
            return target + rng.choice([-1.0, 1.0], size=shape) * magnitude, target
        return [(pair((), (), 1.0), {}), (pair((6,), (6,), 1.0), {}), (pair((2, 3), (2, 3), 0.5), {"delta": 0.5}),
                (pair((4, 3), (3,), 1.0), {}), (pair((3, 4), (3, 4), 2.0), {"delta": 2.0})]
