"""Neural-network ops, part 4: normalisation layers, embedding lookup and scaled dot-product attention."""
from __future__ import annotations

import math

import numpy as np

from .base import OpArgumentError, Param, Primitive, first_argument_shape, real_part, unbroadcast
from .batching import first_argument_only
from .changes import Change, derived, gather, slices_change
from .nn import broadcast_shapes, check_indices, first_position, require_integer, softmax_vjp, stable_softmax
from .registry import builtin

EPS = Param("float", default=1e-5, minimum=0.0, doc="added to the variance before the square root")


# ---------------------------------------------------------------- normalisation

def standardize(x, axes: tuple[int, ...], eps: float):
    """(x_hat, inv_std): x_hat = (x - mean) * inv_std over axes, inv_std = (var + eps)^(-1/2), biased variance."""
    centered = x - np.mean(x, axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(np.mean(centered * centered, axis=axes, keepdims=True) + eps)
    return centered * inv_std, inv_std


def standardize_vjp(grad_x_hat, x_hat, inv_std, axes: tuple[int, ...]):
    """Adjoint of standardize through the mean and the variance:
    dx = inv_std * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)), means over axes."""
    return inv_std * (grad_x_hat - np.mean(grad_x_hat, axis=axes, keepdims=True)
                      - x_hat * np.mean(grad_x_hat * x_hat, axis=axes, keepdims=True))


def check_affine(op: str, gamma, beta, expected: tuple[int, ...], x) -> None:
    for name, value in (("gamma", gamma), ("beta", beta)):
        if np.shape(value) != expected:
            raise OpArgumentError(f"{op}(): {name} must have shape {expected} for x of shape {np.shape(x)}, "
                                  f"got {np.shape(value)}")


@builtin
class LayerNorm(Primitive):
    """Layer normalisation over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta."""
    name, args = "layer_norm", ("x", "gamma", "beta")
    complex_safe = True
    result_shape = staticmethod(first_argument_shape)
    vjp_formula = ("(g·{gamma} - mean(g·{gamma}) - x̂·mean(g·{gamma}·x̂))/σ over the last axis",
                   "Σ g·x̂ over the leading axes", "Σ g over the leading axes")
    batching = staticmethod(first_argument_only)
    params = {"eps": EPS}

    def _axes(self, x, gamma, beta):
        if np.ndim(x) == 0:
            raise OpArgumentError("layer_norm() needs x with at least one dimension, got a scalar")
        check_affine(self.name, gamma, beta, np.shape(x)[-1:], x)
        return (np.ndim(x) - 1,)

    def forward(self, x, gamma, beta, eps=1e-5):
        x_hat, _ = standardize(x, self._axes(x, gamma, beta), eps)
        return x_hat * gamma + beta

    def propagate(self, changes, out, x, gamma, beta, eps=1e-5):
        """A change of x alone: recompute the changed rows (normalised over the last axis)."""
        change_x, change_gamma, change_beta = changes
        if change_gamma is not None or change_beta is not None:
            return None
        last = np.ndim(x) - 1
        return slices_change(lambda rows: self.forward(rows, gamma, beta, eps), change_x, x, out, (last,), {})

    def vjp(self, g, out, x, gamma, beta, eps=1e-5):
        axes = self._axes(x, gamma, beta)
        x_hat, inv_std = standardize(x, axes, eps)
        leading = tuple(range(np.ndim(x) - 1))
        return (standardize_vjp(g * gamma, x_hat, inv_std, axes),
                np.sum(g * x_hat, axis=leading), np.sum(g, axis=leading))

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((4,)), n((4,)), n((4,))), {}), ((n((3, 5)), n((5,)), n((5,))), {}),
                ((n((2, 3, 4)), n((4,)), n((4,))), {"eps": 0.1}), ((2 * n((4, 6)), n((6,)), n((6,))), {})]


@builtin
class BatchNorm(Primitive):
    """Batch normalisation with batch statistics over every axis but 1 (NC or NCHW); gamma, beta of shape (C,)."""
    name, args = "batch_norm", ("x", "gamma", "beta")
    complex_safe = True
    result_shape = staticmethod(first_argument_shape)
    vjp_formula = ("(g·{gamma} - mean(g·{gamma}) - x̂·mean(g·{gamma}·x̂))/σ over every axis but 1",
                   "Σ g·x̂ over every axis but 1", "Σ g over every axis but 1")
    params = {"eps": EPS}

    def _axes(self, x, gamma, beta):
        if np.ndim(x) < 2:
            raise OpArgumentError(f"batch_norm() needs x of shape (N, C) or (N, C, ...), got {np.shape(x)}")
        check_affine(self.name, gamma, beta, np.shape(x)[1:2], x)
        return (0,) + tuple(range(2, np.ndim(x)))

    @staticmethod
    def _per_channel(value, x):
        return np.reshape(value, (1, -1) + (1,) * (np.ndim(x) - 2))

    def forward(self, x, gamma, beta, eps=1e-5):
        x_hat, _ = standardize(x, self._axes(x, gamma, beta), eps)
        return x_hat * self._per_channel(gamma, x) + self._per_channel(beta, x)

    def vjp(self, g, out, x, gamma, beta, eps=1e-5):
        axes = self._axes(x, gamma, beta)
        x_hat, inv_std = standardize(x, axes, eps)
        return (standardize_vjp(g * self._per_channel(gamma, x), x_hat, inv_std, axes),
                np.sum(g * x_hat, axis=axes), np.sum(g, axis=axes))

    def propagate(self, changes, out, x, gamma, beta, eps=1e-5):
        """The change of y = x̂·γ + β from the differences alone, channel by channel (no f(x+d) - f(x)):
        y' - y = γ'·(x̂' - x̂) + dγ·x̂ + dβ, and for a change d of x, with c = x - μ, v = mean(c²), s = (v + eps)^(-1/2):
          dμ = mean(d),  dc = d - dμ (so c' = c + dc),
          dv = mean((c + dc)²) - mean(c²) = mean(dc·(2c + dc)),
          ds = s·((1 + dv/(v + eps))^(-1/2) - 1) = s·expm1(-log1p(dv/(v + eps))/2),
          x̂' - x̂ = (c + dc)(s + ds) - c·s = dc·(s + ds) + c·ds,
        every term a product of a difference, none a difference of two perturbed values.  A change confined to
        some channels stays there (the statistics are per channel); None (recompute) where v + eps is 0."""
        self._axes(x, gamma, beta)
        x, out = np.asarray(x), np.asarray(out)
        change_x, change_gamma, change_beta = changes
        channel_pins = [c.pins.get(1 if i == 0 else 0) for i, c in enumerate(changes) if c is not None]
        if not channel_pins:
            return None
        count = next(c.count for c in changes if c is not None)
        first = channel_pins[0]
        pins = {1: first} if first is not None and all(p is not None and np.array_equal(p, first)
                                                      for p in channel_pins) else {}
        centered, variance = derived(self._channel_statistics, x)
        spread = gather(self._per_channel(np.asarray(variance + eps), x), pins, count)
        if np.any(spread == 0):
            return None
        inv_std = 1 / np.sqrt(spread)
        gamma_box = gather(self._per_channel(np.asarray(gamma), x), pins, count)
        centered_box = gather(centered, pins, count)
        terms: list[np.ndarray] = []
        if change_gamma is not None:
            d_gamma = self._on_channels(change_gamma, pins, x)
            terms.append(d_gamma * (centered_box * inv_std))
            gamma_box = gamma_box + d_gamma
        if change_beta is not None:
            terms.append(self._on_channels(change_beta, pins, x))
        if change_x is not None:
            d = change_x.widened(pins)
            statistic_axes = (1,) + tuple(range(3, d.ndim))
            samples = x.size // max(x.shape[1], 1)
            dc = d - np.sum(d, axis=statistic_axes, keepdims=True) / samples
            d_variance = np.sum(dc * (2 * centered_box + dc), axis=statistic_axes, keepdims=True) / samples
            d_inv_std = inv_std * np.expm1(-0.5 * np.log1p(d_variance / spread))
            terms.append(gamma_box * (dc * (inv_std + d_inv_std) + centered_box * d_inv_std))
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        box = (count,) + tuple(1 if a in pins else n for a, n in enumerate(out.shape))
        delta = np.broadcast_to(total, box)
        if not np.all(np.isfinite(delta)):
            return None
        return Change.make(out.shape, pins, delta)

    @staticmethod
    def _channel_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x - μ, the biased variance per channel, shape (C,)), statistics over every axis but 1."""
        axes = (0,) + tuple(range(2, x.ndim))
        centered = x - np.mean(x, axis=axes, keepdims=True)
        return centered, np.mean(centered * centered, axis=axes)

    def _on_channels(self, change: Change, pins: dict[int, np.ndarray], x) -> np.ndarray:
        """A change of gamma or beta (shape (C,)) laid out per channel on the box of pins: (K, 1, c, 1, ...)."""
        delta = change.widened({0: pins[1]} if pins else {})
        return delta.reshape((change.count, 1, -1) + (1,) * (np.ndim(x) - 2))

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((4, 3)), n((3,)), n((3,))), {}), ((n((5, 2)), n((2,)), n((2,))), {"eps": 0.01}),
                ((n((2, 3, 2, 2)), n((3,)), n((3,))), {}), ((n((3, 2, 4)), n((2,)), n((2,))), {})]


# ---------------------------------------------------------------- embedding

@builtin
class Embedding(Primitive):
    """Rows of table (V, D) picked by integer ids of any shape: table[ids], shape ids.shape + (D,)."""
    name, args, domains, integer_args = "embedding", ("ids", "table"), ("labels", "real"), (0,)
    linear_in = (1,)
    complex_safe = True
    vjp_formula = (None, "g's rows added to the rows {ids} picked")

    @staticmethod
    def result_shape(arg_shapes, params):
        ids, table = arg_shapes
        return tuple(ids) + tuple(table[1:])

    def _ids(self, ids, table):
        ids = require_integer(ids, self.name, "ids")
        if np.ndim(table) != 2:
            raise OpArgumentError(f"embedding(): table must be (V, D) (2-D), got shape {np.shape(table)}")
        check_indices(ids, np.shape(table)[0], self.name, "id", "rows of the table")
        return ids

    def forward(self, ids, table):
        return np.asarray(table)[self._ids(ids, table)]

    def vjp(self, g, out, ids, table):
        grad = np.zeros(np.shape(table), dtype=np.result_type(g, table))
        np.add.at(grad, self._ids(ids, table), g)  # add.at accumulates the rows of repeated ids
        return None, grad

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((np.array(2), n((4, 3))), {}), ((np.array([0, 3, 3, 1]), n((4, 2))), {}),
                ((rng.integers(0, 5, size=(2, 3)), n((5, 4))), {}), ((np.array([[1, 1], [0, 2]]), n((3, 3))), {})]


# ---------------------------------------------------------------- attention

def check_attention_shapes(op: str, q, k, v) -> tuple[int, ...]:
    """The shape of the scores q k^T, after checking that q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv) fit."""
    shapes = {"q": np.shape(q), "k": np.shape(k), "v": np.shape(v)}
    for name, shape in shapes.items():
        if len(shape) < 2:
            raise OpArgumentError(
                f"{op}(): {name} must have at least 2 dimensions (..., length, features), got {shape}")
    if shapes["q"][-1] != shapes["k"][-1]:
        raise OpArgumentError(
            f"{op}(): q {shapes['q']} and k {shapes['k']} must have the same feature size (last axis)")
    if shapes["k"][-2] != shapes["v"][-2]:
        raise OpArgumentError(f"{op}(): k {shapes['k']} and v {shapes['v']} must have the same length (axis -2)")
    batch = broadcast_shapes(op, q=shapes["q"][:-2], k=shapes["k"][:-2], v=shapes["v"][:-2])
    return batch + (shapes["q"][-2], shapes["k"][-2])


def attention_probs(q, k, keep):
    """softmax(q k^T / sqrt(d)) over the keys, with probability 0 where keep is False."""
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) * (1 / math.sqrt(np.shape(q)[-1]))
    return stable_softmax(scores, -1, keep)


def attention_vjp(g, q, k, v, keep):
    """Adjoints of out = P v with P = softmax(S), S = q k^T / sqrt(d)."""
    scale = 1 / math.sqrt(np.shape(q)[-1])
    probs = attention_probs(q, k, keep)
    grad_v = np.matmul(np.swapaxes(probs, -1, -2), g)
    grad_scores = softmax_vjp(np.matmul(g, np.swapaxes(v, -1, -2)), probs, -1) * scale
    grad_q = np.matmul(grad_scores, k)
    grad_k = np.matmul(np.swapaxes(grad_scores, -1, -2), q)
    return unbroadcast(grad_q, np.shape(q)), unbroadcast(grad_k, np.shape(k)), unbroadcast(grad_v, np.shape(v))


def keep_from_mask(op_name, q, k, v, mask):
    scores_shape = check_attention_shapes(op_name, q, k, v)
    mask = np.asarray(mask)
    if mask.dtype != bool:
        values = real_part(mask)
        not_binary = (values != 0) & (values != 1)
        if np.any(not_binary):
            position = first_position(not_binary)
            raise OpArgumentError(f"{op_name}(): mask must hold 0/1 or true/false, got {values[position]} "
                                  f"at index {list(position)}")
        mask = values != 0
    if broadcast_shapes(op_name, mask=mask.shape, scores=scores_shape) != scores_shape:
        raise OpArgumentError(f"{op_name}(): mask of shape {mask.shape} does not broadcast to the "
                              f"attention scores' shape {scores_shape} (..., queries, keys)")
    keep = np.broadcast_to(mask, scores_shape)
    require_a_key_per_query(op_name, keep, "the mask hides")
    return keep


def require_a_key_per_query(op_name, keep, what):
    empty = ~np.any(keep, axis=-1)
    if np.any(empty):
        raise OpArgumentError(f"{op_name}(): {what} every key from query {list(first_position(empty))}")


@builtin
class Attention(Primitive):
    """Scaled dot-product attention softmax(q k^T / sqrt(d)) v over the last two axes; optional mask array, causal=True masks j > i."""  # noqa: E501
    name, args, integer_args = "attention", ("q", "k", "v", "*mask"), (3,)
    complex_safe = True
    vjp_formula = ("(g @ {v}ᵀ through the softmax) @ {k} / √d", "(g @ {v}ᵀ through the softmax)ᵀ @ {q} / √d",
                   "Pᵀ @ g, P the attention weights", None)
    batching = "broadcast"
    domains = ("real", "real", "real", "mask")
    params = {"causal": Param("bool", default=False, doc="query i attends only to keys j <= i"),
              "mask": Param("str", default=None, choices=("causal",), doc="mask='causal' is causal=True")}

    @staticmethod
    def result_shape(arg_shapes, params):
        q, k, v = arg_shapes[:3]
        return tuple(np.broadcast_shapes(q[:-2], k[:-2], v[:-2])) + (q[-2], v[-1])

    @staticmethod
    def peak_elements(arg_shapes, params):
        """The scores q kᵀ: one per query and key, (..., Lq, Lk)."""
        q, k, v = arg_shapes[:3]
        return math.prod(np.broadcast_shapes(q[:-2], k[:-2], v[:-2])) * q[-2] * k[-2]

    def _keep(self, q, k, v, masks, causal):
        if len(masks) > 1:
            raise OpArgumentError(f"{self.name}() takes q, k, v and at most one mask array, got {3 + len(masks)} arrays")
        if masks:
            keep = keep_from_mask(self.name, q, k, v, masks[0])
        else:
            keep = None
        scores_shape = check_attention_shapes(self.name, q, k, v)
        if causal:
            # top-left aligned, as PyTorch's is_causal: row i keeps keys 0..i, so no row is empty
            lower = np.tri(*scores_shape[-2:], dtype=np.bool_)
            keep = lower if keep is None else keep & lower
            require_a_key_per_query(self.name, keep, "the mask and causal=True together hide")
        return keep

    def forward(self, q, k, v, *masks, causal=False, mask=None):
        return self._attend(q, k, v, masks, causal or mask == "causal")

    def vjp(self, g, out, q, k, v, *masks, causal=False, mask=None):
        return self._attend_vjp(g, q, k, v, masks, causal or mask == "causal")

    def _attend(self, q, k, v, masks, causal):
        keep = self._keep(q, k, v, masks, causal)
        return np.matmul(attention_probs(q, k, keep), v)

    def _attend_vjp(self, g, q, k, v, masks, causal):
        keep = self._keep(q, k, v, masks, causal)
        return attention_vjp(g, q, k, v, keep) + (None,) * len(masks)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        causal_mask = np.tri(3, 3)
        return [((n((3, 4)), n((3, 4)), n((3, 2))), {}), ((n((2, 4)), n((5, 4)), n((5, 3))), {}),
                ((n((4, 3)), n((4, 3)), n((4, 3))), {"causal": True}),
                ((n((3, 4)), n((3, 4)), n((3, 2)), causal_mask), {}),
                ((n((3, 4)), n((3, 4)), n((3, 2))), {"mask": "causal"}),
                ((n((2, 3, 4)), n((3, 4)), n((2, 3, 2))), {}),
                ((n((2, 2, 3, 4)), n((2, 2, 3, 4)), n((2, 2, 3, 2))), {"causal": True})]


@builtin
class MaskedAttention(Attention):
    """Scaled dot-product attention with an explicit mask (1/true = attend, 0/false = masked; no gradient)."""
    name, args = "masked_attention", ("q", "k", "v", "mask")
    params = {}

    def forward(self, q, k, v, mask):  # type: ignore[override]  # attention narrowed by design: one required mask
        return self._attend(q, k, v, (mask,), False)

    def vjp(self, g, out, q, k, v, mask):  # type: ignore[override]  # (same narrowing as forward)
        return self._attend_vjp(g, q, k, v, (mask,), False)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal

        def mask(shape):
            keep = rng.random(shape) < 0.6
            keep[..., 0] = True  # every query keeps at least one key
            return keep
        return [((n((3, 4)), n((3, 4)), n((3, 2)), mask((3, 3))), {}),
                ((n((2, 4)), n((5, 4)), n((5, 3)), mask((5,))), {}),
                ((n((2, 3, 4)), n((2, 4, 4)), n((2, 4, 2)), mask((2, 3, 4))), {}),
                ((n((2, 3, 2)), n((2, 3, 2)), n((2, 3, 3)), np.tri(3)), {})]
