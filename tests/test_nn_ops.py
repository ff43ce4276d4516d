"""The neural-network ops against closed forms, explicit loops and identities.

The vjp-vs-finite-difference checks of every test case live in test_ops_registry.py; here each
op's forward (and the gradients with a known closed form) is checked against an independent
formula, plus stability at extreme inputs, dtype preservation and the argument errors.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from gradcheck.ops import BUILTIN_OPS, OpArgumentError

NN_OPS = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "binary_cross_entropy",
          "binary_cross_entropy_with_logits", "multiclass_hinge", "huber", "layer_norm", "batch_norm", "conv2d",
          "max_pool2d", "avg_pool2d", "embedding", "attention", "masked_attention", "concat", "stack", "where",
          "clip", "gelu", "dropout", "log1p", "expm1"]


def op(name):
    return BUILTIN_OPS[name].impl


def run(name, *inputs, **params):
    """forward with the op's validated keywords (defaults filled in), as the graph calls it."""
    return np.asarray(op(name).forward(*inputs, **BUILTIN_OPS[name].check_params(params)))


def grads(name, g, *inputs, **params):
    params = BUILTIN_OPS[name].check_params(params)
    out = np.asarray(op(name).forward(*inputs, **params))
    return op(name).vjp(np.asarray(g, dtype=out.dtype) * np.ones_like(out), out, *inputs, **params)


def close(actual, expected, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=atol)


rng = np.random.default_rng(12345)
EXTREME = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0], [1000.0, 1000.0, 1000.0]])


# ---------------------------------------------------------------- softmax family

def test_softmax_rows_sum_to_one_and_match_the_definition():
    x = rng.standard_normal((4, 5))
    out = run("softmax", x)
    close(out.sum(axis=-1), np.ones(4))
    close(out, np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True))
    close(run("softmax", x, axis=0), np.exp(x) / np.exp(x).sum(axis=0, keepdims=True))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_family_is_stable_at_plus_minus_1000(dtype):
    x = EXTREME.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid-value warnings either
        probs, log_probs, lse = run("softmax", x), run("log_softmax", x), run("logsumexp", x, axis=-1)
    for value in (probs, log_probs, lse):
        assert value.dtype == dtype and np.all(np.isfinite(value))
    close(probs[0], [1, 0, 0], atol=1e-7)
    close(probs[1], [math.exp(-1) / (1 + 2 * math.exp(-1)), math.exp(-1) / (1 + 2 * math.exp(-1)),
                     1 / (1 + 2 * math.exp(-1))], rtol=1e-6)
    close(probs[2], np.full(3, 1 / 3), rtol=1e-6)
    close(log_probs[0], [0, -2000, -1000], rtol=1e-7, atol=1e-7)
    close(lse, [1000, -999 + math.log(1 + 2 * math.exp(-1)), 1000 + math.log(3)], rtol=1e-7)


def test_log_softmax_is_log_of_softmax():
    x = rng.standard_normal((3, 4))
    close(run("log_softmax", x), np.log(run("softmax", x)))
    close(run("log_softmax", x, axis=0), np.log(run("softmax", x, axis=0)))


def test_logsumexp_equals_the_shifted_closed_form():
    x = rng.standard_normal((2, 3, 4)) * 5
    for axis in (None, 0, -1, (0, 2)):
        m = np.max(x, axis=axis, keepdims=True)
        expected = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
        close(run("logsumexp", x, axis=axis, keepdims=True), expected)
        close(run("logsumexp", x, axis=axis), np.squeeze(expected, axis=axis))
    close(run("logsumexp", np.array([1000.0, 1000.0])), 1000 + math.log(2))


def test_logsumexp_gradient_is_softmax():
    x = rng.standard_normal((3, 4))
    (grad,) = grads("logsumexp", 1.0, x, axis=1)
    close(grad, run("softmax", x, axis=1))


# ---------------------------------------------------------------- losses

def test_cross_entropy_value_and_gradient_closed_form():
    logits = rng.standard_normal((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    close(run("cross_entropy", logits, labels), -np.mean(np.log(probs[np.arange(5), labels])))
    grad_logits, grad_labels = grads("cross_entropy", 1.0, logits, labels)
    assert grad_labels is None
    close(grad_logits, (probs - np.eye(4)[labels]) / 5)


def test_cross_entropy_one_hot_targets_equal_integer_labels():
    logits = rng.standard_normal((2, 3, 4))
    labels = rng.integers(0, 4, size=(2, 3))
    one_hot = np.eye(4)[labels]
    close(run("cross_entropy", logits, one_hot), run("cross_entropy", logits, labels))
    close(grads("cross_entropy", 1.0, logits, one_hot)[0], grads("cross_entropy", 1.0, logits, labels)[0])


def test_cross_entropy_soft_targets_and_target_gradient():
    logits = rng.standard_normal((3, 4))
    targets = rng.dirichlet(np.ones(4), size=3)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    close(run("cross_entropy", logits, targets), -np.sum(targets * log_probs) / 3)
    close(grads("cross_entropy", 1.0, logits, targets)[1], -log_probs / 3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_is_finite_at_plus_minus_1000(dtype):
    logits = np.array([[1000.0, -1000.0], [1000.0, -1000.0]], dtype=dtype)
    loss = run("cross_entropy", logits, np.array([0, 1]))
    assert loss.dtype == dtype
    close(loss, 1000.0, rtol=1e-7)  # (0 + 2000) / 2
    grad = grads("cross_entropy", 1.0, logits, np.array([0, 1]))[0]
    assert grad.dtype == dtype
    close(grad, [[0, 0], [0.5, -0.5]], atol=1e-7)


def test_binary_cross_entropy_closed_form():
    p, y = rng.uniform(0.05, 0.95, size=(3, 4)), rng.uniform(0, 1, size=(3, 4))
    close(run("binary_cross_entropy", p, y), -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    grad_p, grad_y = grads("binary_cross_entropy", 1.0, p, y)
    close(grad_p, (p - y) / (p * (1 - p)) / 12)
    close(grad_y, np.log((1 - p) / p) / 12)


def test_bce_with_logits_equals_bce_of_sigmoid():
    z, y = rng.standard_normal((4, 3)) * 3, rng.uniform(0, 1, size=(4, 3))
    close(run("binary_cross_entropy_with_logits", z, y), run("binary_cross_entropy", 1 / (1 + np.exp(-z)), y))
    grad_z, grad_y = grads("binary_cross_entropy_with_logits", 1.0, z, y)
    close(grad_z, (1 / (1 + np.exp(-z)) - y) / 12)
    close(grad_y, -z / 12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_with_logits_is_finite_at_plus_minus_1000(dtype):
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0], dtype=dtype)
    y = np.array([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = run("binary_cross_entropy_with_logits", z, y)
        grad_z, _ = grads("binary_cross_entropy_with_logits", 1.0, z, y)
    assert loss.dtype == dtype and grad_z.dtype == dtype
    close(loss, 500.0, rtol=1e-7)  # (1000 + 1000 + 0 + 0) / 4
    close(grad_z, [0.25, -0.25, 0, 0], atol=1e-7)


def test_multiclass_hinge_cs231n_example():
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    labels = np.array([0, 1, 2])
    per_sample = [float(run("multiclass_hinge", scores[i], labels[i])) for i in range(3)]
    close(per_sample, [2.9, 0.0, 12.9], rtol=1e-12, atol=1e-12)
    close(run("multiclass_hinge", scores, labels), 15.8 / 3)
    assert abs(float(run("multiclass_hinge", scores, labels)) - 5.2667) < 1e-4
    # sample 0: only class 1 violates; sample 1: none; sample 2: classes 0 and 1 violate
    close(grads("multiclass_hinge", 1.0, scores, labels)[0], np.array([[-1, 1, 0], [0, 0, 0], [1, 1, -2]]) / 3)
    close(run("multiclass_hinge", scores, labels, margin=0.0), (1.9 + 0 + (5.3 + 5.6)) / 3)


def test_huber_both_branches():
    pred = np.array([0.5, -0.25, 3.0, -4.0])
    target = np.zeros(4)
    # quadratic: d^2 / 2;  linear (delta = 1): |d| - 1/2
    close(run("huber", pred, target), (0.125 + 0.03125 + 2.5 + 3.5) / 4)
    close(grads("huber", 1.0, pred, target)[0], np.array([0.5, -0.25, 1.0, -1.0]) / 4)
    close(run("huber", pred, target, delta=2.0), (0.125 + 0.03125 + 2 * (3 - 1) + 2 * (4 - 1)) / 4)
    close(grads("huber", 1.0, pred, target, delta=2.0)[1], -np.array([0.5, -0.25, 2.0, -2.0]) / 4)


# ---------------------------------------------------------------- normalisation

def test_layer_norm_rows_have_mean_zero_variance_one():
    x = rng.standard_normal((4, 6)) * 3 + 2
    out = run("layer_norm", x, np.ones(6), np.zeros(6), eps=0.0)
    close(out.mean(axis=-1), np.zeros(4), atol=1e-12)
    close(out.var(axis=-1), np.ones(4))
    gamma, beta = rng.standard_normal(6), rng.standard_normal(6)
    x_hat = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    close(run("layer_norm", x, gamma, beta), x_hat * gamma + beta)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 5)])
def test_batch_norm_channels_have_mean_zero_variance_one(shape):
    x = rng.standard_normal(shape) * 2 - 1
    axes = (0,) + tuple(range(2, len(shape)))
    out = run("batch_norm", x, np.ones(3), np.zeros(3), eps=0.0)
    close(out.mean(axis=axes), np.zeros(3), atol=1e-12)
    close(out.var(axis=axes), np.ones(3))  # biased variance, as PyTorch in training mode
    gamma, beta = np.array([1.0, 2.0, -0.5]), np.array([0.0, 1.0, 3.0])
    affine = run("batch_norm", x, gamma, beta, eps=0.0)
    per_channel = (1, 3) + (1,) * (len(shape) - 2)
    close(affine, out * gamma.reshape(per_channel) + beta.reshape(per_channel))


def test_normalisation_gradients_vanish_along_shift_and_scale():
    # layer_norm's output is invariant to x -> a x + b per row, so the gradient is orthogonal to 1 and to x
    x, g = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    grad_x = op("layer_norm").vjp(g, None, x, np.ones(5), np.zeros(5), eps=0.0)[0]
    close(grad_x.sum(axis=-1), np.zeros(3), atol=1e-12)
    close(np.sum(grad_x * x, axis=-1), np.zeros(3), atol=1e-12)


# ---------------------------------------------------------------- convolution and pooling

def conv2d_loops(x, w, b, stride, padding):
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, width = x.shape
    o, _, kh, kw = w.shape
    padded = np.zeros((n, c, h + 2 * ph, width + 2 * pw))
    padded[:, :, ph:ph + h, pw:pw + width] = x
    out_h, out_w = (h + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    out = np.zeros((n, o, out_h, out_w))
    for i in range(n):
        for j in range(o):
            for r in range(out_h):
                for s in range(out_w):
                    out[i, j, r, s] = np.sum(padded[i, :, r * sh:r * sh + kh, s * sw:s * sw + kw] * w[j]) + b[j]
    return out


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), ((1, 2), (2, 0)), ((3, 2), 1)])
def test_conv2d_equals_nested_loops(stride, padding):
    x, w, b = rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    close(run("conv2d", x, w, b, stride=stride, padding=padding), conv2d_loops(x, w, b, pair(stride), pair(padding)))


def test_conv2d_input_gradient_is_the_transposed_convolution():
    # <g, conv(x)> is linear in x: its gradient is d/dx sum(g * conv(x, w, 0)); check against unit vectors
    x, w, b = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((3, 2, 2, 3)), np.zeros(3)
    out = run("conv2d", x, w, b, stride=2, padding=1)
    g = rng.standard_normal(out.shape)
    grad_x = op("conv2d").vjp(g, out, x, w, b, stride=2, padding=1)[0]
    expected = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        unit = np.zeros_like(x)
        unit[index] = 1
        expected[index] = np.sum(g * conv2d_loops(unit, w, b, (2, 2), (1, 1)))
    close(grad_x, expected)


def pool_loops(x, kernel, stride, reduce):
    (kh, kw), (sh, sw) = kernel, stride
    out_h, out_w = (x.shape[-2] - kh) // sh + 1, (x.shape[-1] - kw) // sw + 1
    out = np.zeros(x.shape[:-2] + (out_h, out_w))
    for r in range(out_h):
        for s in range(out_w):
            out[..., r, s] = reduce(x[..., r * sh:r * sh + kh, s * sw:s * sw + kw], axis=(-2, -1))
    return out


@pytest.mark.parametrize("kernel,stride,expected_stride", [(2, None, (2, 2)), ((2, 3), 1, (1, 1)), (3, (2, 1), (2, 1))])
def test_pooling_equals_loops(kernel, stride, expected_stride):
    x = rng.standard_normal((2, 3, 7, 6))
    pair = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    close(run("max_pool2d", x, kernel=kernel, stride=stride), pool_loops(x, pair, expected_stride, np.max))
    close(run("avg_pool2d", x, kernel=kernel, stride=stride), pool_loops(x, pair, expected_stride, np.mean))


@pytest.mark.parametrize("shape,kernel,stride,dilation", [((2, 3, 7, 6), (2, 3), (1, 2), (2, 1)),
                                                          ((5, 4), (2, 2), (2, 2), (1, 1)),
                                                          ((1, 2, 3, 8, 9), (3, 2), (3, 1), (2, 3))])
def test_windows_are_the_taps_read_one_by_one(shape, kernel, stride, dilation):
    from gradcheck.ops.nn_conv import windows
    x = rng.standard_normal(shape)
    view = np.asarray(x[..., ::-1, :])  # a view with a negative stride reads the same as a copy
    for source in (x, view):
        found = windows(source, kernel, stride, dilation)
        height, width = source.shape[-2:]
        sizes = [(n - (k - 1) * d - 1) // s + 1 for n, k, d, s in zip((height, width), kernel, dilation, stride, strict=True)]
        assert found.shape == source.shape[:-2] + tuple(sizes) + kernel
        for r, c, i, j in np.ndindex(*sizes, *kernel):
            close(found[..., r, c, i, j], source[..., r * stride[0] + i * dilation[0], c * stride[1] + j * dilation[1]])
        assert not found.flags.writeable
    with pytest.raises(ValueError):
        windows(x, (shape[-2] + 1, 1), (1, 1))


def test_window_max_is_the_maximum_over_each_window_nan_included():
    from gradcheck.ops.nn_conv import window_max, windows
    x = np.round(rng.standard_normal((2, 3, 7, 6)), 1)  # rounded: ties inside windows
    x[0, 1, 2, 3] = np.nan
    x[1, 0, :2, :2] = -np.inf
    patches = windows(x, (3, 2), (2, 1))
    expected = np.array([[[[np.max(x[n, c, r * 2:r * 2 + 3, s:s + 2]) for s in range(patches.shape[3])]
                           for r in range(patches.shape[2])] for c in range(3)] for n in range(2)])
    np.testing.assert_array_equal(window_max(patches), expected)
    assert np.isnan(window_max(patches)).any()


def test_max_pool_of_complex_data_takes_the_element_with_the_largest_real_part():
    x = np.array([[[[1 + 5j, 3 - 1j], [2 + 0j, -4 + 9j]]]])
    assert run("max_pool2d", x, kernel=2)[0, 0, 0, 0] == 3 - 1j


def test_max_pool_gradient_goes_to_the_window_maximum_and_overlaps_accumulate():
    x = np.array([[[[1.0, 9.0, 2.0],
                    [3.0, 4.0, 5.0],
                    [6.0, 7.0, 8.0]]]])
    # 2x2 windows with stride 1: maxima 9, 9, 7, 8 -> 9 is the maximum of two windows
    close(run("max_pool2d", x, kernel=2, stride=1), [[[[9, 9], [7, 8]]]])
    close(grads("max_pool2d", 1.0, x, kernel=2, stride=1)[0], [[[[0, 2, 0], [0, 0, 0], [0, 1, 1]]]])
    close(grads("avg_pool2d", 1.0, x, kernel=2, stride=1)[0], [[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]] / np.float64(4))


# ---------------------------------------------------------------- embedding and attention

def test_embedding_picks_rows_and_accumulates_repeated_ids():
    table = rng.standard_normal((5, 3))
    ids = np.array([[1, 4], [1, 1]])
    out = run("embedding", ids, table)
    assert out.shape == (2, 2, 3)
    close(out[1, 0], table[1])
    g = rng.standard_normal(out.shape)
    grad_ids, grad_table = op("embedding").vjp(g, out, ids, table)
    assert grad_ids is None
    close(grad_table[1], g[0, 0] + g[1, 0] + g[1, 1])
    close(grad_table[4], g[0, 1])
    close(grad_table[[0, 2, 3]], np.zeros((3, 3)))


def attention_loops(q, k, v, keep=None):
    out = np.zeros(q.shape[:-1] + v.shape[-1:])
    for index in np.ndindex(q.shape[:-1]):
        *batch, i = index
        scores = k[tuple(batch)] @ q[index] / math.sqrt(q.shape[-1])
        weights = np.exp(scores - scores.max())
        if keep is not None:
            weights = weights * keep[i]
        out[index] = (weights / weights.sum()) @ v[tuple(batch)]
    return out


def test_attention_equals_explicit_softmax_rows():
    q, k, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 2))
    close(run("attention", q, k, v), attention_loops(q, k, v))
    lower = np.tri(3, 5, dtype=bool)
    close(run("attention", q, k, v, causal=True), attention_loops(q, k, v, lower))


def test_causal_attention_ignores_later_positions():
    q, k, v = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    out = run("attention", q, k, v, causal=True)
    close(out[0], v[0])
    perturbed_v, perturbed_k = v.copy(), k.copy()
    perturbed_v[2:] += 10
    perturbed_k[2:] -= 5
    changed = run("attention", q, perturbed_k, perturbed_v, causal=True)
    close(changed[:2], out[:2])
    assert not np.allclose(changed[2:], out[2:])
    # and the gradient reaching keys/values j > i from query rows <= i is zero
    g = np.zeros_like(out)
    g[:2] = rng.standard_normal((2, 2))
    _, grad_k, grad_v = op("attention").vjp(g, out, q, k, v, causal=True)
    close(grad_k[2:], 0)
    close(grad_v[2:], 0)


def test_masked_attention_matches_causal_attention_and_loops():
    q, k, v = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 2))
    close(run("masked_attention", q, k, v, np.tri(4)), run("attention", q, k, v, causal=True))
    close(run("masked_attention", q, k, v, np.ones((4, 4), dtype=bool)), run("attention", q, k, v))
    keep = np.array([[True, False, True, True], [True, True, False, False],
                     [False, False, False, True], [True, True, True, True]])
    close(run("masked_attention", q, k, v, keep), attention_loops(q, k, v, keep))
    assert op("masked_attention").vjp(np.ones((2, 4, 2)), None, q, k, v, keep)[3] is None


# ---------------------------------------------------------------- plumbing and activations

def test_concat_and_stack_gradients_split_back():
    a, b, c = rng.standard_normal((2, 3)), rng.standard_normal((1, 3)), rng.standard_normal((4, 3))
    out = run("concat", a, b, c)
    close(out, np.vstack([a, b, c]))
    g = rng.standard_normal(out.shape)
    pieces = op("concat").vjp(g, out, a, b, c, axis=0)
    for piece, expected in zip(pieces, (g[:2], g[2:3], g[3:]), strict=True):
        close(piece, expected)
    d, e = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    stacked = run("stack", d, e, axis=1)
    assert stacked.shape == (2, 2, 3)
    close(stacked[:, 1], e)
    g = rng.standard_normal(stacked.shape)
    grad_d, grad_e = op("stack").vjp(g, stacked, d, e, axis=1)
    close(grad_d, g[:, 0])
    close(grad_e, g[:, 1])


def test_where_selects_and_unbroadcasts():
    cond = np.array([[True, False, True], [False, False, True]])
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3,))
    close(run("where", cond, a, b), np.where(cond, a, b))
    close(run("where", cond.astype(float), a, b), np.where(cond, a, b))  # the engine passes bool data as 0/1
    grad_cond, grad_a, grad_b = grads("where", 1.0, cond, a, b)
    assert grad_cond is None
    close(grad_a, cond.astype(float))
    close(grad_b, [1, 2, 0])


def test_clip_values_and_gradient():
    x = np.array([-3.0, -0.5, 0.2, 0.7, 4.0])
    close(run("clip", x, lo=-1.0, hi=0.5), [-1, -0.5, 0.2, 0.5, 0.5])
    close(grads("clip", 1.0, x, lo=-1.0, hi=0.5)[0], [0, 1, 1, 0, 0])
    close(run("clip", x, lo=0.0), [0, 0, 0.2, 0.7, 4.0])
    close(run("clip", x, hi=0.0), [-3, -0.5, 0, 0, 0])
    assert run("clip", x.astype(np.float32), lo=-1.0, hi=0.5).dtype == np.float32


def test_gelu_erf_form_against_math_erf():
    x = np.concatenate([np.linspace(-8, 8, 161), [-40.0, -1e-8, 0.0, 1e-8, 40.0]])
    expected = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    close(run("gelu", x), expected, rtol=1e-13, atol=1e-15)
    close(run("gelu", np.array(1.0)), 0.8413447460685429, rtol=1e-15)
    close(run("gelu", np.array(-1.0)), -0.15865525393145707, rtol=1e-14)
    density = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    close(grads("gelu", 1.0, x)[0], cdf + x * density, rtol=1e-13, atol=1e-15)
    close(grads("gelu", 1.0, np.array(0.0))[0], 0.5)


def test_gelu_tanh_form_against_the_formula():
    x = np.linspace(-6, 6, 121)
    inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
    close(run("gelu", x, approximate="tanh"), 0.5 * x * (1 + np.tanh(inner)))
    assert abs(float(run("gelu", np.array(1.0), approximate="tanh")) - 0.8411919906082768) < 1e-15
    assert np.max(np.abs(run("gelu", x, approximate="tanh") - run("gelu", x))) < 1e-3  # a close approximation


def test_dropout_mask_is_fixed_by_the_seed():
    x = rng.standard_normal((50, 40)) + 5  # nonzero everywhere, so out == 0 marks a dropped element
    first, again = run("dropout", x, p=0.3, seed=11), run("dropout", x, p=0.3, seed=11)
    close(first, again, rtol=0, atol=0)
    assert not np.array_equal(first, run("dropout", x, p=0.3, seed=12))
    kept = first != 0
    assert abs(kept.mean() - 0.7) < 0.03  # E[mask] = 1 - p over 2000 draws (std 0.01)
    close(first[kept], x[kept] / 0.7)
    close(grads("dropout", 1.0, x, p=0.3, seed=11)[0], kept / 0.7)
    close(run("dropout", x, p=0.0, seed=3), x, rtol=0, atol=0)
    assert run("dropout", x.astype(np.float32), p=0.3, seed=1).dtype == np.float32


def test_dropout_leaves_the_seed_to_the_graph():
    info = BUILTIN_OPS["dropout"]
    assert info.draws_random is True and info.impl.draws_random is True
    assert info.check_params({"p": 0.2})["seed"] is None  # the graph fills in a seed derived from the spec
    close(run("dropout", np.ones(10), p=0.5), run("dropout", np.ones(10), p=0.5, seed=0))


def test_log1p_and_expm1_are_accurate_for_small_x():
    close(run("log1p", np.array(1e-12)), 1e-12, rtol=1e-12)
    close(run("expm1", np.array(1e-12)), 1e-12, rtol=1e-12)
    close(grads("expm1", 1.0, np.array(0.5))[0], math.exp(0.5))
    close(grads("log1p", 1.0, np.array(0.5))[0], 1 / 1.5)


# ---------------------------------------------------------------- metadata and dtypes

def test_metadata():
    for name in NN_OPS:
        assert name in BUILTIN_OPS, name
        assert BUILTIN_OPS[name].doc
    kinky = {name for name in NN_OPS if BUILTIN_OPS[name].has_kinks}
    assert kinky == {"multiclass_hinge", "clip", "max_pool2d"}
    assert not BUILTIN_OPS["gelu"].complex_safe_at({"approximate": "none"})  # math.erfc is real-only
    assert BUILTIN_OPS["gelu"].complex_safe_at({"approximate": "tanh"})
    assert BUILTIN_OPS["embedding"].integer_args == (0,)
    assert BUILTIN_OPS["multiclass_hinge"].integer_args == (1,)
    assert BUILTIN_OPS["concat"].variadic and BUILTIN_OPS["stack"].variadic


def all_cases():
    for name in NN_OPS:
        cases = op(name).test_cases(np.random.default_rng(0))
        for index in range(len(cases) if cases is not None else 0):
            yield name, index


@pytest.mark.parametrize("name,case", list(all_cases()), ids=str)
def test_every_case_keeps_float32(name, case):
    info = BUILTIN_OPS[name]
    inputs, params = op(name).test_cases(np.random.default_rng(0))[case]
    params = info.check_params(params)
    inputs = tuple(x.astype(np.float32) if x.dtype.kind == "f" and i not in info.integer_args else x
                   for i, x in enumerate(map(np.asarray, inputs)))
    out = np.asarray(op(name).forward(*inputs, **params))
    assert out.dtype == np.float32
    for position, grad in enumerate(op(name).vjp(np.ones(out.shape, np.float32), out, *inputs, **params)):
        if grad is not None:
            assert np.asarray(grad).dtype == np.float32, f"gradient {position}"
            assert np.shape(grad) == np.shape(inputs[position])


# ---------------------------------------------------------------- argument errors

ERRORS = [
    ("cross_entropy", (np.zeros((2, 3)), np.array([0, 3])), {}, ["label 3", "index [1]", "3 classes"]),
    ("cross_entropy", (np.zeros((2, 3)), np.array([0, -1])), {}, ["label -1", "index [1]"]),
    ("cross_entropy", (np.zeros((2, 3)), np.array([0, 1, 2])), {}, ["(3,)", "(2, 3)", "(2,)"]),
    ("cross_entropy", (np.zeros((2, 3)), np.array([0.0, 1.5])), {}, ["whole numbers", "1.5", "int64"]),
    ("cross_entropy", (np.zeros((2, 3)), np.zeros((3,))), {}, ["(3,)", "(2, 3)", "(2,)"]),
    ("cross_entropy", (np.array(1.0), np.array(0)), {}, ["scalar"]),
    ("multiclass_hinge", (np.zeros((2, 3)), np.array([[0, 1]])), {}, ["(1, 2)", "(2, 3)"]),
    ("multiclass_hinge", (np.zeros((2, 3)), np.array([5, 0])), {}, ["label 5", "index [0]", "3 classes"]),
    ("binary_cross_entropy", (np.array([0.5, 1.0]), np.array([1.0, 1.0])), {}, ["p=1.0", "[1]"]),
    ("binary_cross_entropy", (np.zeros(3) + 0.5, np.zeros(2)), {}, ["(3,)", "(2,)"]),
    ("huber", (np.zeros(3), np.zeros(4)), {}, ["(3,)", "(4,)"]),
    ("huber", (np.zeros(3), np.zeros(3)), {"delta": 0.0}, ["delta"]),
    ("layer_norm", (np.zeros((2, 3)), np.ones(2), np.zeros(3)), {}, ["gamma", "(3,)", "(2,)"]),
    ("batch_norm", (np.zeros((4, 3, 2)), np.ones(3), np.zeros(2)), {}, ["beta", "(3,)", "(2,)"]),
    ("batch_norm", (np.zeros(4), np.ones(4), np.zeros(4)), {}, ["(4,)"]),
    ("conv2d", (np.zeros((1, 2, 4, 4)), np.zeros((3, 1, 2, 2)), np.zeros(3)), {}, ["(1, 2, 4, 4)", "(3, 1, 2, 2)"]),
    ("conv2d", (np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 5, 5)), np.zeros(1)), {"padding": 1},
     ["5x5", "4x4", "padded"]),
    ("conv2d", (np.zeros((1, 1, 4, 4)), np.zeros((2, 1, 2, 2)), np.zeros(3)), {}, ["(2,)", "(3,)"]),
    ("conv2d", (np.zeros((1, 4, 4)), np.zeros((2, 1, 2, 2)), np.zeros(2)), {}, ["(1, 4, 4)"]),
    ("conv2d", (np.zeros((1, 1, 4, 4)), np.zeros((2, 1, 2, 2)), np.zeros(2)), {"stride": (1, 2, 3)}, ["stride"]),
    ("max_pool2d", (np.zeros((1, 1, 2, 3)),), {"kernel": 3}, ["3x3", "2x3"]),
    ("avg_pool2d", (np.zeros(3),), {"kernel": 2}, ["(3,)"]),
    ("embedding", (np.array([0, 7]), np.zeros((5, 2))), {}, ["id 7", "index [1]", "5 rows"]),
    ("embedding", (np.array([0.0, 1.25]), np.zeros((5, 2))), {}, ["whole numbers", "1.25", "index [1]"]),
    ("attention", (np.zeros((3, 4)), np.zeros((3, 5)), np.zeros((3, 2))), {}, ["(3, 4)", "(3, 5)"]),
    ("attention", (np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((2, 2))), {}, ["(3, 4)", "(2, 2)"]),
    ("attention", (np.zeros((2, 3, 4)), np.zeros((3, 3, 4)), np.zeros((3, 2))), {}, ["(2,)", "(3,)"]),
    ("masked_attention", (np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((3, 2)),
                          np.array([[1, 0, 0], [0, 0, 0], [1, 1, 1]])), {}, ["query [1]"]),
    ("masked_attention", (np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((3, 2)), np.full((3, 3), 0.5)), {}, ["0.5"]),
    ("masked_attention", (np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((3, 2)), np.ones((2, 3))), {},
     ["(2, 3)", "(3, 3)"]),
    ("concat", (np.zeros((2, 3)), np.zeros((2, 4))), {}, ["(2, 4)", "(2, 3)", "axis 0"]),
    ("concat", (np.zeros((2, 3)), np.zeros(3)), {}, ["(3,)", "(2, 3)"]),
    ("stack", (np.zeros((2, 3)), np.zeros((3, 2))), {}, ["(3, 2)", "(2, 3)"]),
    ("stack", (np.zeros(3), np.zeros(3)), {"axis": 2}, ["axis=2"]),
    ("where", (np.ones(2, dtype=bool), np.zeros(3), np.zeros(3)), {}, ["cond (2,)", "a (3,)"]),
    ("softmax", (np.zeros((2, 3)),), {"axis": 2}, ["axis=2"]),
    ("softmax", (np.array(1.0),), {}, ["scalar"]),
    ("clip", (np.zeros(3),), {"lo": 1.0, "hi": 0.0}, ["lo=1.0", "hi=0.0"]),
    ("clip", (np.zeros(3),), {}, ["lo, hi"]),
    ("dropout", (np.zeros(3),), {"p": 1.0}, ["p=1.0"]),
]


@pytest.mark.parametrize("name,inputs,params,fragments", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_bad_arguments_raise_op_argument_errors_naming_the_fault(name, inputs, params, fragments):
    with pytest.raises(OpArgumentError) as error:
        run(name, *inputs, **params)
    for fragment in fragments:
        assert fragment in str(error.value), f"{fragment!r} not in {str(error.value)!r}"


@pytest.mark.parametrize("name,params", [("gelu", {"approximate": "exact"}), ("dropout", {"p": -0.1}),
                                         ("max_pool2d", {"kernel": 0}), ("conv2d", {"padding": -1}),
                                         ("layer_norm", {"eps": -1.0}), ("dropout", {"seed": -1})])
def test_bad_keywords_are_refused_by_validation(name, params):
    with pytest.raises(OpArgumentError):
        BUILTIN_OPS[name].check_params(params)


def test_cross_entropy_accepts_whole_float_labels_as_class_indices():
    from gradcheck.ops import BUILTIN_OPS

    op = BUILTIN_OPS["cross_entropy"].impl
    logits = np.array([[0.2, -1.0, 3.0], [1.0, 0.5, -0.5]])
    as_int = op.forward(logits, np.array([2, 0]))
    as_float = op.forward(logits, np.array([2.0, 0.0]))
    assert as_float == as_int
    expected = -np.mean([logits[0, 2] - np.log(np.exp(logits[0]).sum()), logits[1, 0] - np.log(np.exp(logits[1]).sum())])
    assert as_int == pytest.approx(expected, rel=1e-14)
    grads = op.vjp(1.0, as_float, logits, np.array([2.0, 0.0]))
    assert grads[1] is None


@pytest.mark.parametrize("labels", [[2, 3], [-1, 0], [0, 7], [2, 0, 1]])
def test_cross_entropy_refuses_labels_out_of_range_or_misshapen_in_forward_and_vjp(labels):
    op = BUILTIN_OPS["cross_entropy"].impl
    logits = np.array([[0.2, -1.0, 3.0], [1.0, 0.5, -0.5]])
    with pytest.raises(OpArgumentError):
        op.forward(logits, np.array(labels))
    with pytest.raises(OpArgumentError):
        op.vjp(1.0, 0.0, logits, np.array(labels))
