"""Neural-network ops, part 3: 2-D convolution and pooling over NCHW arrays, vectorised.

Every op reads its input through ``windows`` (a strided view of each kernel window, no Python
loop over output pixels); the vjps scatter window gradients back with ``fold_windows``, the
adjoint of that view, which loops only over the kernel's KH * KW offsets.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import OpArgumentError, Param, Primitive, real_part, view_shape
from .nn import float_dtype
from .reductions import tie_shares
from .registry import builtin


def pair(value, name: str, op: str) -> tuple[int, int]:
    """An int or a (height, width) pair as a pair."""
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise OpArgumentError(f"{op}(): {name} must be an integer or a pair of integers, got {value!r}")
    return int(value[0]), int(value[1])


def windows(x, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """(..., H, W) -> (..., OH, OW, KH, KW): every kernel window of the last two axes, as a view."""
    view = sliding_window_view(x, kernel, axis=(-2, -1))
    return view[..., ::stride[0], ::stride[1], :, :]


def fold_windows(window_grads: np.ndarray, shape, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Adjoint of ``windows``: add each window entry's gradient onto the input element it read."""
    grad = np.zeros(shape, dtype=window_grads.dtype)
    out_h, out_w = window_grads.shape[-4:-2]
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            # kernel offset (i, j) of output (r, c) reads input (r * stride_h + i, c * stride_w + j)
            grad[..., i:i + stride[0] * out_h:stride[0], j:j + stride[1] * out_w:stride[1]] += window_grads[..., i, j]
    return grad


def check_kernel_fits(kernel, spatial, op: str, detail: str = "") -> None:
    if kernel[0] > spatial[0] or kernel[1] > spatial[1]:
        raise OpArgumentError(f"{op}(): kernel {kernel[0]}x{kernel[1]} is larger than the "
                              f"{spatial[0]}x{spatial[1]} input{detail}")


@builtin
class Conv2d(Primitive):
    """2-D cross-correlation of NCHW x with w (O, C, KH, KW) plus bias b (O,), with stride and zero padding."""
    name, args = "conv2d", ("x", "w", "b")
    complex_safe = True
    vjp_formula = ("g correlated back through {w} (a transposed convolution)", "g correlated with the windows of {x}",
                   "g summed over batch, height and width")
    params = {"stride": Param("ints", default=1, minimum=1, doc="int or (height, width) step"),
              "padding": Param("ints", default=0, minimum=0, doc="int or (height, width) zeros added on each side")}

    def _geometry(self, x, w, b, stride, padding):
        if np.ndim(x) != 4:
            raise OpArgumentError(f"conv2d(): x must be NCHW (4-D), got shape {np.shape(x)}")
        if np.ndim(w) != 4:
            raise OpArgumentError(f"conv2d(): w must be (O, C, KH, KW) (4-D), got shape {np.shape(w)}")
        if np.shape(w)[1] != np.shape(x)[1]:
            raise OpArgumentError(f"conv2d(): x of shape {np.shape(x)} has {np.shape(x)[1]} channels but w of shape "
                                  f"{np.shape(w)} expects {np.shape(w)[1]}")
        if np.shape(b) != np.shape(w)[:1]:
            raise OpArgumentError(f"conv2d(): b must have shape ({np.shape(w)[0]},) (one bias per output channel of "
                                  f"w {np.shape(w)}), got {np.shape(b)}")
        stride, padding = pair(stride, "stride", self.name), pair(padding, "padding", self.name)
        kernel = np.shape(w)[2:]
        height, width = np.shape(x)[2:]
        padded = (height + 2 * padding[0], width + 2 * padding[1])
        check_kernel_fits(kernel, padded, self.name,
                          f" (x is {height}x{width}, padded by {padding[0]}x{padding[1]} to {padded[0]}x{padded[1]})")
        return kernel, stride, padding

    def result_shape(self, arg_shapes, params):
        x, w, _ = arg_shapes
        stride, padding = pair(params["stride"], "stride", self.name), pair(params["padding"], "padding", self.name)
        # each spatial axis: (size + 2 padding - kernel) // stride + 1 windows
        spatial = tuple((x[2 + i] + 2 * padding[i] - w[2 + i]) // stride[i] + 1 for i in (0, 1))
        return (x[0], w[0]) + spatial

    @staticmethod
    def _pad(x, padding):
        return np.pad(x, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))

    def forward(self, x, w, b, stride=1, padding=0):
        kernel, stride, padding = self._geometry(x, w, b, stride, padding)
        patches = windows(self._pad(x, padding), kernel, stride)            # (N, C, OH, OW, KH, KW)
        out = np.tensordot(patches, w, axes=([1, 4, 5], [1, 2, 3]))         # (N, OH, OW, O)
        return np.moveaxis(out, -1, 1) + np.reshape(b, (-1, 1, 1))

    def vjp(self, g, out, x, w, b, stride=1, padding=0):
        kernel, stride, padding = self._geometry(x, w, b, stride, padding)
        padded = self._pad(x, padding)
        patches = windows(padded, kernel, stride)
        grad_w = np.tensordot(g, patches, axes=([0, 2, 3], [0, 2, 3]))      # (O, C, KH, KW)
        grad_b = np.sum(g, axis=(0, 2, 3))
        patch_grads = np.tensordot(g, w, axes=([1], [0]))                  # (N, OH, OW, C, KH, KW)
        grad_padded = fold_windows(np.moveaxis(patch_grads, 3, 1), padded.shape, kernel, stride)
        height, width = np.shape(x)[2:]
        grad_x = grad_padded[:, :, padding[0]:padding[0] + height, padding[1]:padding[1] + width]
        return grad_x, grad_w, grad_b

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((1, 1, 3, 3)), n((1, 1, 2, 2)), n((1,))), {}),
                ((n((2, 2, 4, 5)), n((3, 2, 3, 2)), n((3,))), {}),
                ((n((1, 2, 5, 5)), n((2, 2, 3, 3)), n((2,))), {"stride": 2, "padding": 1}),
                ((n((2, 1, 4, 6)), n((2, 1, 2, 3)), n((2,))), {"stride": (1, 2), "padding": (0, 1)}),
                ((n((2, 3, 5, 4)), n((2, 3, 3, 3)), n((2,))), {"stride": (2, 1), "padding": 1})]


class _Pool2d(Primitive):
    """Shared geometry of the pooling ops: windows over the last two axes, stride defaulting to the kernel."""
    args = ("x",)
    batching = "broadcast"  # windows run over the last two axes; leading axes are batch axes
    complex_safe = True
    params = {"kernel": Param("ints", minimum=1, doc="int or (height, width) window size"),
              "stride": Param("ints", default=None, minimum=1, doc="int or (height, width) step; default: the kernel")}

    def result_shape(self, arg_shapes, params):
        kernel = pair(params["kernel"], "kernel", self.name)
        stride = kernel if params["stride"] is None else pair(params["stride"], "stride", self.name)
        return view_shape(arg_shapes[0], lambda x: windows(x, kernel, stride))[:-2]

    def _geometry(self, x, kernel, stride):
        if np.ndim(x) < 2:
            raise OpArgumentError(f"{self.name}(): x must be (..., H, W), e.g. NCHW, got shape {np.shape(x)}")
        kernel = pair(kernel, "kernel", self.name)
        stride = kernel if stride is None else pair(stride, "stride", self.name)
        check_kernel_fits(kernel, np.shape(x)[-2:], self.name, f" of shape {np.shape(x)}")
        return kernel, stride

    @staticmethod
    def test_cases(rng):
        def distinct(shape):
            """Values 0.1 apart, shuffled: no ties inside a window, far from a kink for small steps."""
            count = int(np.prod(shape))
            return (rng.permutation(count).reshape(shape) - count / 2) * 0.1
        return [((distinct((1, 1, 4, 4)),), {"kernel": 2}),
                ((distinct((2, 3, 4, 6)),), {"kernel": (2, 3)}),
                ((distinct((1, 2, 5, 5)),), {"kernel": 3, "stride": 1}),
                ((distinct((3, 5, 4)),), {"kernel": (3, 2), "stride": (2, 1)}),
                ((distinct((2, 2, 6, 5)),), {"kernel": 2, "stride": (2, 1)})]


@builtin
class MaxPool2d(_Pool2d):
    """Max over each kernel window of the last two axes (NCHW); kinks where a window ties."""
    name, has_kinks = "max_pool2d", True
    vjp_formula = ("g to each window's maximal element(s), shared at ties",)

    def forward(self, x, kernel, stride=None):
        kernel, stride = self._geometry(x, kernel, stride)
        patches = windows(x, kernel, stride)
        flat = patches.reshape(patches.shape[:-2] + (-1,))
        best = np.argmax(real_part(flat), axis=-1)
        return np.take_along_axis(flat, best[..., None], axis=-1)[..., 0]

    def vjp(self, g, out, x, kernel, stride=None):
        kernel, stride = self._geometry(x, kernel, stride)
        # tied window maxima share the gradient equally, as max() does
        share = tie_shares(real_part(windows(x, kernel, stride)), (-2, -1), np.max, float_dtype(x))
        return (fold_windows(np.asarray(g)[..., None, None] * share, np.shape(x), kernel, stride),)

    def branches(self, x, kernel, stride=None):
        kernel, stride = self._geometry(x, kernel, stride)
        patches = real_part(windows(x, kernel, stride))
        return patches == np.max(patches, axis=(-2, -1), keepdims=True)


@builtin
class AvgPool2d(_Pool2d):
    """Mean over each kernel window of the last two axes (NCHW)."""
    name = "avg_pool2d"
    vjp_formula = ("g / (kh·kw) spread over each window",)

    def forward(self, x, kernel, stride=None):
        kernel, stride = self._geometry(x, kernel, stride)
        return np.mean(windows(x, kernel, stride), axis=(-2, -1))

    def vjp(self, g, out, x, kernel, stride=None):
        kernel, stride = self._geometry(x, kernel, stride)
        window_grads = np.asarray(g)[..., None, None] / (kernel[0] * kernel[1])
        return (fold_windows(np.broadcast_to(window_grads, np.shape(g) + kernel), np.shape(x), kernel, stride),)
