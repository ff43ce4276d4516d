"""Neural-network ops, part 3: convolution (1-D, 2-D, transposed) and pooling over NCHW arrays, vectorised.

Every op reads its input through ``windows`` (a strided view of each dilated kernel window, no Python
loop over output pixels); the vjps scatter window gradients back with ``fold_windows``, the
adjoint of that view, which loops only over the kernel's KH * KW offsets.  ``ConvGeometry`` holds
the three linear maps of a convolution (forward, input gradient, weight gradient); conv1d is the
2-D one on a 1 x L image, and conv_transpose2d's forward is conv2d's input gradient.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .base import OpArgumentError, Param, Primitive, real_part
from .changes import Change, slices_change
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


def windows(x, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
    """(..., H, W) -> (..., OH, OW, KH, KW): every (dilated) kernel window of the last two axes, as a read-only view.

    Window (r, c)'s tap (i, j) is x[..., r·stride_h + i·dilation_h, c·stride_w + j·dilation_w]: four strides over
    the last two axes, set in one call (the checks call this thousands of times on small arrays)."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"windows need an array of at least 2 dimensions, got shape {x.shape}")
    height, width = x.shape[-2:]
    sizes = ((height - (kernel[0] - 1) * dilation[0] - 1) // stride[0] + 1,
             (width - (kernel[1] - 1) * dilation[1] - 1) // stride[1] + 1)
    if min(sizes) < 1:
        raise ValueError(f"a {kernel[0]}x{kernel[1]} window does not fit in {height}x{width}")
    row, column = x.strides[-2:]
    return as_strided(x, x.shape[:-2] + sizes + tuple(kernel),
                      x.strides[:-2] + (row * stride[0], column * stride[1], row * dilation[0], column * dilation[1]),
                      writeable=False)


def window_max(patches: np.ndarray) -> np.ndarray:
    """The maximum of each window of a real (..., OH, OW, KH, KW) view, taken one tap at a time: np.maximum over
    the KH * KW strided slices is many times faster than a reduction over the view's last two axes.  NaN wins, as
    in max; of equal values the first stays."""
    best = np.array(patches[..., 0, 0])
    for i in range(patches.shape[-2]):
        for j in range(patches.shape[-1]):
            if i or j:
                np.maximum(best, patches[..., i, j], out=best)
    return best


def window_max_kept(values: np.ndarray, axis=None, keepdims=True) -> np.ndarray:
    """window_max with the window axes kept (the reducer tie_shares takes; always over the last two axes)."""
    return window_max(values)[..., None, None]


def fold_windows(window_grads: np.ndarray, shape, kernel: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
    """Adjoint of ``windows``: add each window entry's gradient onto the input element it read."""
    grad = np.zeros(shape, dtype=window_grads.dtype)
    out_h, out_w = window_grads.shape[-4:-2]
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            # kernel offset (i, j) of output (r, c) reads input (r * stride_h + i * dilation_h, c * stride_w + j * dilation_w)
            top, left = i * dilation[0], j * dilation[1]
            grad[..., top:top + stride[0] * out_h:stride[0], left:left + stride[1] * out_w:stride[1]] += window_grads[..., i, j]
    return grad


_GEOMETRIES: dict[tuple, ConvGeometry] = {}  # geometry_key -> a validated geometry
_LAYOUTS: dict[tuple, tuple] = {}            # geometry_key -> a validated pooling layout
MAX_KEPT = 4096  # geometries kept per cache; a full cache starts afresh


def geometry_key(cache: dict, *parts) -> tuple | None:
    """A key for what an op's geometry depends on (its name, shapes and parameters), or None where a part is not
    hashable (a list given as a pair: the geometry is then computed afresh)."""
    key = tuple(tuple(p) if isinstance(p, list) else p for p in parts)
    try:
        hash(key)
    except TypeError:
        return None
    if len(cache) >= MAX_KEPT:
        cache.clear()
    return key


def check_kernel_fits(kernel, spatial, op: str, detail: str = "", dilation=(1, 1)) -> None:
    extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True))
    if extent[0] > spatial[0] or extent[1] > spatial[1]:
        dilated = f" (dilated to {extent[0]}x{extent[1]})" if tuple(dilation) != (1, 1) else ""
        raise OpArgumentError(f"{op}(): kernel {kernel[0]}x{kernel[1]}{dilated} is larger than the "
                              f"{spatial[0]}x{spatial[1]} input{detail}")


def pad_spatial(x, before: tuple[int, int], after: tuple[int, int], fill=0.0):
    """x with its last two axes padded by fill."""
    if not any(before) and not any(after):
        return x
    widths = ((0, 0),) * (np.ndim(x) - 2) + ((before[0], after[0]), (before[1], after[1]))
    return np.pad(x, widths, constant_values=fill)


def crop_spatial(grad, before: tuple[int, int], size: tuple[int, int]):
    return grad[..., before[0]:before[0] + size[0], before[1]:before[1] + size[1]]


class ConvGeometry:
    """Stride, padding, dilation and groups of a 2-D convolution of x (N, C, H, W) with w (O, C / groups, KH, KW)."""

    def __init__(self, op: str, stride, padding, dilation, groups, kernel):
        self.stride, self.dilation = pair(stride, "stride", op), pair(dilation, "dilation", op)
        self.groups, self.kernel = groups, tuple(kernel)
        if padding == "valid":
            padding = 0
        if padding == "same":  # PyTorch's rule: the total dilation (kernel - 1) split, the odd one after
            if self.stride != (1, 1):
                raise OpArgumentError(f"{op}(): padding='same' needs stride 1, got stride {self.stride}")
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel, strict=True)]
            self.before = (totals[0] // 2, totals[1] // 2)
            self.after = (totals[0] - self.before[0], totals[1] - self.before[1])
        else:
            self.before = self.after = pair(padding, "padding", op)

    @property
    def padding(self) -> tuple[int, int]:
        """The zeros on both sides of each axis, together."""
        return self.before[0] + self.after[0], self.before[1] + self.after[1]

    def output_size(self, spatial) -> tuple[int, int]:
        # each axis: (size + padding - dilation (kernel - 1) - 1) // stride + 1 windows
        return tuple((n + p - d * (k - 1) - 1) // s + 1
                     for n, p, d, k, s in zip(spatial, self.padding, self.dilation, self.kernel, self.stride, strict=True))

    def windows(self, x):
        """(N, C, OH, OW, KH, KW): the windows of zero-padded x."""
        return windows(pad_spatial(x, self.before, self.after), self.kernel, self.stride, self.dilation)

    def patches(self, x):
        """(N, G, C/G, OH, OW, KH, KW): the windows, channels split into the groups."""
        view = self.windows(x)
        n, c = np.shape(x)[:2]
        return view.reshape((n, self.groups, c // self.groups) + view.shape[2:])

    def grouped(self, w):
        o = np.shape(w)[0]
        return np.reshape(w, (self.groups, o // self.groups) + np.shape(w)[1:])

    def _grouped_grad(self, g):
        g = np.asarray(g)
        return g.reshape((g.shape[0], self.groups, g.shape[1] // self.groups) + g.shape[2:])

    # groups == 1 contracts with tensordot (no copy of the strided windows); groups > 1 with einsum per group
    def forward(self, x, w):
        if self.groups == 1:
            return np.moveaxis(np.tensordot(self.windows(x), w, axes=([1, 4, 5], [1, 2, 3])), -1, 1)
        out = np.einsum("ngchwij,gocij->ngohw", self.patches(x), self.grouped(w), optimize=True)
        return out.reshape((out.shape[0], -1) + out.shape[3:])

    def input_grad(self, g, w, x_shape):
        """The adjoint of x -> forward(x, w): g correlated back through w (a transposed convolution)."""
        n, c, height, width = x_shape
        if self.groups == 1:
            patch_grads = np.moveaxis(np.tensordot(g, w, axes=([1], [0])), 3, 1)      # (N, C, OH, OW, KH, KW)
        else:
            patch_grads = np.einsum("ngohw,gocij->ngchwij", self._grouped_grad(g), self.grouped(w), optimize=True)
            patch_grads = patch_grads.reshape((n, c) + patch_grads.shape[3:])
        padded_shape = (n, c, height + self.padding[0], width + self.padding[1])
        grad = fold_windows(patch_grads, padded_shape, self.kernel, self.stride, self.dilation)
        return crop_spatial(grad, self.before, (height, width))

    def weight_grad(self, g, x):
        if self.groups == 1:
            return np.tensordot(g, self.windows(x), axes=([0, 2, 3], [0, 2, 3]))      # (O, C, KH, KW)
        grad = np.einsum("ngohw,ngchwij->gocij", self._grouped_grad(g), self.patches(x), optimize=True)
        return grad.reshape((-1,) + grad.shape[2:])


def check_groups(op: str, groups: int, channels: int, filters: int, what_channels: str, what_filters: str) -> None:
    if channels % groups or filters % groups:
        raise OpArgumentError(f"{op}(): groups={groups} must divide both {what_channels} ({channels}) and "
                              f"{what_filters} ({filters})")


def input_only(shapes, batched) -> str | None:
    """Batch rule of the convolutions: copies of x alone fold into the sample axis (see samples_batched)."""
    return "custom" if batched[0] and not any(batched[1:]) else None


def samples_batched(op):
    """forward_batched of a convolution whose copies differ in x only: K copies of N samples are K * N samples."""
    def forward_batched(args, batched, **params):
        x, *rest = args
        count, samples = x.shape[:2]
        out = op.forward(np.reshape(x, (count * samples,) + x.shape[2:]), *rest, **params)
        return out.reshape((count, samples) + out.shape[1:])
    return forward_batched


def samples_or_filters(shapes, batched) -> str | None:
    """Batch rule of conv1d and conv2d: copies of x alone fold into the sample axis (samples_batched), copies of w
    and b alone into the filter axis (filters_batched); copies of both, one at a time."""
    return "custom" if batched[0] != any(batched[1:]) else None


def filters_batched(op, args, batched, params) -> np.ndarray:
    """A convolution whose K copies differ in w and b only is one convolution with K times the filters.

    Output channel o of group q reads group q's channels only, so the K copies' filters are interleaved group by
    group: (G, K, O/G) filters, whose output channels come back as (N, G, K, O/G, ...) and are put in order."""
    x, w, b = args
    groups = params.get("groups", 1)
    filter_shape = np.shape(w)[-np.ndim(x):]                # (O, C/G, *kernel)
    count = np.shape(w)[0] if batched[1] else np.shape(b)[0]
    filters = np.broadcast_to(np.reshape(w, (-1,) + filter_shape), (count,) + filter_shape)
    biases = np.broadcast_to(np.reshape(b, (-1, filter_shape[0])), (count, filter_shape[0]))
    per_group = filter_shape[0] // groups

    def interleaved(stacked):  # (K, O, ...) -> (G * K * O/G, ...)
        split = stacked.reshape((count, groups, per_group) + stacked.shape[2:])
        return np.swapaxes(split, 0, 1).reshape((-1,) + stacked.shape[2:])

    out = op.forward(x, interleaved(filters), interleaved(biases), **params)
    spatial = out.shape[2:]
    out = out.reshape((out.shape[0], groups, count, per_group) + spatial)
    return np.moveaxis(out, 2, 0).reshape((count, out.shape[0], filter_shape[0]) + spatial)


CONV_PARAMS = {"stride": Param("ints", default=1, minimum=1, doc="int or (height, width) step"),
               "padding": Param("ints", default=0, minimum=0, choices=("same", "valid"),
                                doc="int or (height, width) zeros added on each side, or 'same' / 'valid' (as PyTorch)"),
               "dilation": Param("ints", default=1, minimum=1, doc="int or (height, width) spacing of the kernel taps"),
               "groups": Param("int", default=1, minimum=1, doc="channel groups, each convolved with its own filters")}


@builtin
class Conv2d(Primitive):
    """2-D cross-correlation of NCHW x with w (O, C/groups, KH, KW) plus bias b (O,): stride, padding, dilation, groups."""
    name, args = "conv2d", ("x", "w", "b")
    linear_in = True
    complex_safe = True
    vjp_formula = ("g correlated back through {w} (a transposed convolution)", "g correlated with the windows of {x}",
                   "g summed over batch, height and width")
    params = CONV_PARAMS
    batching = staticmethod(samples_or_filters)

    def forward_batched(self, args, batched, **params):
        if batched[0]:
            return samples_batched(self)(args, batched, **params)
        return filters_batched(self, args, batched, params)

    def _geometry(self, x, w, b, stride, padding, dilation, groups) -> ConvGeometry:
        """The convolution's geometry, validated against these shapes: the same for every call with them (the
        checks make thousands), so kept (geometry_key; ConvGeometry is never changed after it is made)."""
        key = geometry_key(_GEOMETRIES, self.name, np.shape(x), np.shape(w), np.shape(b), stride, padding, dilation, groups)
        if key is None:
            return self._checked_geometry(x, w, b, stride, padding, dilation, groups)
        if key not in _GEOMETRIES:
            _GEOMETRIES[key] = self._checked_geometry(x, w, b, stride, padding, dilation, groups)
        return _GEOMETRIES[key]

    def _checked_geometry(self, x, w, b, stride, padding, dilation, groups) -> ConvGeometry:
        if np.ndim(x) != 4:
            raise OpArgumentError(f"conv2d(): x must be NCHW (4-D), got shape {np.shape(x)}")
        if np.ndim(w) != 4:
            raise OpArgumentError(f"conv2d(): w must be (O, C/groups, KH, KW) (4-D), got shape {np.shape(w)}")
        check_groups(self.name, groups, np.shape(x)[1], np.shape(w)[0], "x's channels", "w's output channels")
        if np.shape(w)[1] * groups != np.shape(x)[1]:
            grouped = f" with groups={groups}" if groups > 1 else ""
            raise OpArgumentError(f"conv2d(): x of shape {np.shape(x)} has {np.shape(x)[1]} channels but w of shape "
                                  f"{np.shape(w)}{grouped} expects {np.shape(w)[1] * groups}")
        if np.shape(b) != np.shape(w)[:1]:
            raise OpArgumentError(f"conv2d(): b must have shape ({np.shape(w)[0]},) (one bias per output channel of "
                                  f"w {np.shape(w)}), got {np.shape(b)}")
        geometry = ConvGeometry(self.name, stride, padding, dilation, groups, np.shape(w)[2:])
        height, width = np.shape(x)[2:]
        pad_h, pad_w = geometry.before
        padded = (height + geometry.padding[0], width + geometry.padding[1])
        check_kernel_fits(geometry.kernel, padded, self.name,
                          f" (x is {height}x{width}, padded by {pad_h}x{pad_w} to {padded[0]}x{padded[1]})", geometry.dilation)
        return geometry

    def result_shape(self, arg_shapes, params):  # type: ignore[override]  # an instance's: it reads self.name
        x, w, _ = arg_shapes
        geometry = ConvGeometry(self.name, params["stride"], params["padding"], params["dilation"], params["groups"], w[2:])
        return (x[0], w[0]) + geometry.output_size(x[2:])

    def peak_elements(self, arg_shapes, params):  # type: ignore[override]  # an instance's: it reads self.name
        """The zero-padded input, and the unfolded windows (N, C, OH, OW, KH, KW) its products are taken over."""
        x, w, _ = arg_shapes
        geometry = ConvGeometry(self.name, params["stride"], params["padding"], params["dilation"], params["groups"], w[2:])
        out_h, out_w = (max(n, 0) for n in geometry.output_size(x[2:]))
        padded = x[0] * x[1] * (x[2] + geometry.padding[0]) * (x[3] + geometry.padding[1])
        return max(padded, x[0] * x[1] * out_h * out_w * w[2] * w[3])

    def forward(self, x, w, b, stride=1, padding=0, dilation=1, groups=1):
        geometry = self._geometry(x, w, b, stride, padding, dilation, groups)
        return geometry.forward(x, w) + np.reshape(b, (-1, 1, 1))

    def vjp(self, g, out, x, w, b, stride=1, padding=0, dilation=1, groups=1):
        geometry = self._geometry(x, w, b, stride, padding, dilation, groups)
        return geometry.input_grad(g, w, np.shape(x)), geometry.weight_grad(g, x), np.sum(g, axis=(0, 2, 3))

    def batched_vjp(self, gs, out, x, w, b, stride=1, padding=0, dilation=1, groups=1):
        """vjp of K cotangents: K·N samples for x's gradient, one contraction with the windows for w's (groups 1)."""
        geometry = self._geometry(x, w, b, stride, padding, dilation, groups)
        count, samples = np.shape(gs)[:2]
        folded = np.reshape(gs, (count * samples,) + np.shape(gs)[2:])
        grad_x = geometry.input_grad(folded, w, (count * samples,) + np.shape(x)[1:]).reshape((count,) + np.shape(x))
        if groups == 1:  # (K, O, C, KH, KW): g's samples and positions against the windows'
            grad_w = np.tensordot(gs, geometry.windows(x), axes=([1, 3, 4], [0, 2, 3]))
        else:
            grad_w = np.stack([geometry.weight_grad(g, x) for g in gs])
        return grad_x, grad_w, np.sum(gs, axis=(1, 3, 4))

    def propagate(self, changes, out, x, w, b, stride=1, padding=0, dilation=1, groups=1):
        """Linear in each argument: conv(x, w + dw) - conv(x, w) = conv(x, dw) with no bias, all K kernels in one
        contraction; a change of x is convolved sample by sample (K·N' samples in one call); a bias change
        spreads over its channel.  Changes of more than one argument, and kernel changes with groups, are
        recomputed (None)."""
        changed = [i for i, c in enumerate(changes) if c is not None]
        if len(changed) != 1 or (changed[0] == 1 and groups != 1):
            return None
        geometry = self._geometry(x, w, b, stride, padding, dilation, groups)
        change = changes[changed[0]]
        count, shape = change.count, np.shape(out)
        if changed[0] == 0:     # x: keep the sample pin, convolve each copy's changed samples
            samples = {0: change.pins[0]} if 0 in change.pins else {}
            delta = change.widened(samples)
            convolved = geometry.forward(delta.reshape((-1,) + delta.shape[2:]), w)
            return Change.make(shape, samples, convolved.reshape((count, delta.shape[1]) + convolved.shape[1:]))
        channels = {1: change.pins[0]} if 0 in change.pins else {}
        if changed[0] == 1:     # w: keep the output-channel pin
            delta = change.widened({0: change.pins[0]} if 0 in change.pins else {})    # (K, O', C, KH, KW)
            product = np.tensordot(geometry.windows(x), delta, axes=([1, 4, 5], [2, 3, 4]))  # (N, OH, OW, K, O')
            return Change.make(shape, channels, np.moveaxis(product, (3, 4), (0, 2)))
        delta = change.delta.reshape((count, 1, -1, 1, 1))                            # b: its channel, everywhere
        return Change.make(shape, channels, np.broadcast_to(delta, (count, shape[0], delta.shape[2]) + shape[2:]))

    def jvp(self, tangents, out, x, w, b, stride=1, padding=0, dilation=1, groups=1):
        geometry = self._geometry(x, w, b, stride, padding, dilation, groups)
        tangent_x, tangent_w, tangent_b = tangents
        total = np.zeros(np.shape(out), dtype=np.result_type(out, np.float32))
        if tangent_x is not None:
            total = total + geometry.forward(tangent_x, w)
        if tangent_w is not None:
            total = total + geometry.forward(x, tangent_w)
        if tangent_b is not None:
            total = total + np.reshape(tangent_b, (-1, 1, 1))
        return total

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((1, 1, 3, 3)), n((1, 1, 2, 2)), n((1,))), {}),
                ((n((2, 2, 4, 5)), n((3, 2, 3, 2)), n((3,))), {}),
                ((n((1, 2, 5, 5)), n((2, 2, 3, 3)), n((2,))), {"stride": 2, "padding": 1}),
                ((n((2, 1, 4, 6)), n((2, 1, 2, 3)), n((2,))), {"stride": (1, 2), "padding": (0, 1)}),
                ((n((2, 3, 5, 4)), n((2, 3, 3, 3)), n((2,))), {"stride": (2, 1), "padding": 1}),
                ((n((1, 2, 7, 6)), n((3, 2, 3, 2)), n((3,))), {"dilation": (2, 3)}),
                ((n((2, 4, 5, 5)), n((6, 2, 3, 3)), n((6,))), {"groups": 2, "padding": 1}),
                ((n((1, 4, 6, 6)), n((4, 1, 3, 3)), n((4,))), {"groups": 4, "stride": 2, "dilation": 2, "padding": 2}),
                ((n((1, 2, 5, 6)), n((2, 2, 2, 3)), n((2,))), {"padding": "same", "dilation": (2, 1)}),
                ((n((1, 1, 4, 4)), n((1, 1, 3, 3)), n((1,))), {"padding": "valid"})]


@builtin
class Conv1d(Primitive):
    """1-D cross-correlation of NCL x with w (O, C/groups, K) plus bias b (O,): stride, padding, dilation, groups."""
    name, args = "conv1d", ("x", "w", "b")
    linear_in = True
    complex_safe = True
    vjp_formula = Conv2d.vjp_formula
    params = {"stride": Param("int", default=1, minimum=1, doc="step"),
              "padding": Param("int", default=0, minimum=0, choices=("same", "valid"),
                               doc="zeros added on each side, or 'same' / 'valid' (as PyTorch)"),
              "dilation": Param("int", default=1, minimum=1, doc="spacing of the kernel taps"),
              "groups": Param("int", default=1, minimum=1, doc="channel groups, each convolved with its own filters")}
    batching = staticmethod(samples_or_filters)

    def forward_batched(self, args, batched, **params):
        if batched[0]:
            return samples_batched(self)(args, batched, **params)
        return filters_batched(self, args, batched, params)

    @staticmethod
    def _as_2d(x, w, stride, padding, dilation, groups):
        """A length-L signal is a 1 x L image: the 2-D convolution with a 1 x K kernel."""
        if np.ndim(x) != 3:
            raise OpArgumentError(f"conv1d(): x must be NCL (3-D), got shape {np.shape(x)}")
        if np.ndim(w) != 3:
            raise OpArgumentError(f"conv1d(): w must be (O, C/groups, K) (3-D), got shape {np.shape(w)}")
        return np.expand_dims(x, 2), np.expand_dims(w, 2), Conv1d._params_2d(
            {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups})

    @staticmethod
    def result_shape(arg_shapes, params):
        x, w, b = arg_shapes
        shape = Conv2d().result_shape([x[:2] + (1,) + x[2:], w[:2] + (1,) + w[2:], b], Conv1d._params_2d(params))
        return shape[:2] + shape[3:]

    @staticmethod
    def peak_elements(arg_shapes, params):
        """The 2-D convolution's: a length-L signal is a 1 x L image."""
        x, w, b = arg_shapes
        return Conv2d().peak_elements([x[:2] + (1,) + x[2:], w[:2] + (1,) + w[2:], b], Conv1d._params_2d(params))

    @staticmethod
    def _params_2d(params):
        padding = params["padding"]
        return {"stride": (1, params["stride"]), "padding": padding if isinstance(padding, str) else (0, padding),
                "dilation": (1, params["dilation"]), "groups": params["groups"]}

    def forward(self, x, w, b, stride=1, padding=0, dilation=1, groups=1):
        x2, w2, params = self._as_2d(x, w, stride, padding, dilation, groups)
        return Conv2d().forward(x2, w2, b, **params)[:, :, 0]

    def vjp(self, g, out, x, w, b, stride=1, padding=0, dilation=1, groups=1):
        x2, w2, params = self._as_2d(x, w, stride, padding, dilation, groups)
        grad_x, grad_w, grad_b = Conv2d().vjp(np.expand_dims(g, 2), None, x2, w2, b, **params)
        return grad_x[:, :, 0], grad_w[:, :, 0], grad_b

    def jvp(self, tangents, out, x, w, b, stride=1, padding=0, dilation=1, groups=1):
        x2, w2, params = self._as_2d(x, w, stride, padding, dilation, groups)
        tangents = tuple(None if t is None else (t if i == 2 else np.expand_dims(t, 2)) for i, t in enumerate(tangents))
        return Conv2d().jvp(tangents, np.expand_dims(out, 2), x2, w2, b, **params)[:, :, 0]

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((1, 1, 5)), n((1, 1, 2)), n((1,))), {}),
                ((n((2, 3, 8)), n((2, 3, 3)), n((2,))), {"stride": 2, "padding": 1}),
                ((n((1, 2, 9)), n((4, 1, 3)), n((4,))), {"dilation": 2, "groups": 2}),
                ((n((2, 2, 7)), n((3, 2, 4)), n((3,))), {"padding": "same"})]


@builtin
class ConvTranspose2d(Primitive):
    """Transposed 2-D convolution of NCHW x with w (C, O/groups, KH, KW) plus b (O,), the adjoint of conv2d's input map."""
    name, args = "conv_transpose2d", ("x", "w", "b")
    linear_in = True
    complex_safe = True
    vjp_formula = ("conv2d(g, {w}) (the convolution it transposes)", "g's windows correlated with {x}",
                   "g summed over batch, height and width")
    params = {**CONV_PARAMS,
              "padding": Param("ints", default=0, minimum=0, doc="int or (height, width): the padding of the conv2d it "
                               "transposes, taken off each side of the result"),
              "output_padding": Param("ints", default=0, minimum=0, doc="int or (height, width) rows/columns added at the "
                                      "end of the result (< stride), to pick among the sizes a strided conv2d maps alike")}
    batching = staticmethod(input_only)

    def forward_batched(self, args, batched, **params):
        return samples_batched(self)(args, batched, **params)

    def _geometry(self, x, w, b, stride, padding, output_padding, dilation, groups):
        if np.ndim(x) != 4:
            raise OpArgumentError(f"conv_transpose2d(): x must be NCHW (4-D), got shape {np.shape(x)}")
        if np.ndim(w) != 4:
            raise OpArgumentError(f"conv_transpose2d(): w must be (C, O/groups, KH, KW) (4-D), got shape {np.shape(w)}")
        if np.shape(w)[0] != np.shape(x)[1]:
            raise OpArgumentError(f"conv_transpose2d(): x of shape {np.shape(x)} has {np.shape(x)[1]} channels but w of "
                                  f"shape {np.shape(w)} expects {np.shape(w)[0]}")
        check_groups(self.name, groups, np.shape(x)[1], np.shape(w)[0], "x's channels", "w's input channels")
        if np.shape(b) != (np.shape(w)[1] * groups,):
            raise OpArgumentError(f"conv_transpose2d(): b must have shape ({np.shape(w)[1] * groups},) (one bias per "
                                  f"output channel), got {np.shape(b)}")
        geometry = ConvGeometry(self.name, stride, padding, dilation, groups, np.shape(w)[2:])
        extra = pair(output_padding, "output_padding", self.name)
        if any(e >= s for e, s in zip(extra, geometry.stride, strict=True)):
            raise OpArgumentError(f"conv_transpose2d(): output_padding {extra} must be smaller than the stride "
                                  f"{geometry.stride}")
        size = self.output_size(geometry, np.shape(x)[2:], extra)
        if min(size) < 1:
            raise OpArgumentError(f"conv_transpose2d(): padding {geometry.before} leaves no output for x of shape "
                                  f"{np.shape(x)} and kernel {geometry.kernel}")
        return geometry, (np.shape(x)[0], np.shape(w)[1] * groups) + size

    @staticmethod
    def output_size(geometry, spatial, extra):
        # the input size of the conv2d whose output is x: (n - 1) stride - both paddings + dilation (k - 1) + 1 (+ extra)
        return tuple((n - 1) * s - p + d * (k - 1) + 1 + e for n, s, p, d, k, e in
                     zip(spatial, geometry.stride, geometry.padding, geometry.dilation, geometry.kernel, extra, strict=True))

    @staticmethod
    def result_shape(arg_shapes, params):
        x, w, _ = arg_shapes
        name = ConvTranspose2d.name
        geometry = ConvGeometry(name, params["stride"], params["padding"], params["dilation"], params["groups"], w[2:])
        extra = pair(params["output_padding"], "output_padding", name)
        return (x[0], w[1] * params["groups"]) + ConvTranspose2d.output_size(geometry, x[2:], extra)

    @staticmethod
    def peak_elements(arg_shapes, params):
        """The window gradients (N, H, W, O, KH, KW) folded into the result, and the result before its padding is cut."""
        x, w, _ = arg_shapes
        n, out_channels, height, width = ConvTranspose2d.result_shape(arg_shapes, params)
        geometry = ConvGeometry(ConvTranspose2d.name, params["stride"], params["padding"], params["dilation"],
                                params["groups"], w[2:])
        padded = n * out_channels * (height + geometry.padding[0]) * (width + geometry.padding[1])
        return max(padded, x[0] * x[2] * x[3] * out_channels * w[2] * w[3])

    def forward(self, x, w, b, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        geometry, shape = self._geometry(x, w, b, stride, padding, output_padding, dilation, groups)
        return geometry.input_grad(x, w, shape) + np.reshape(b, (-1, 1, 1))

    def vjp(self, g, out, x, w, b, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        geometry, _ = self._geometry(x, w, b, stride, padding, output_padding, dilation, groups)
        # forward is x -> A^T x with A the conv2d input map of w: its adjoint is A, and w's gradient the conv2d
        # weight gradient with the roles of input (g) and output gradient (x) exchanged
        return geometry.forward(g, w), geometry.weight_grad(x, g), np.sum(g, axis=(0, 2, 3))

    def jvp(self, tangents, out, x, w, b, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        geometry, shape = self._geometry(x, w, b, stride, padding, output_padding, dilation, groups)
        tangent_x, tangent_w, tangent_b = tangents
        total = np.zeros(np.shape(out), dtype=np.result_type(out, np.float32))
        if tangent_x is not None:
            total = total + geometry.input_grad(tangent_x, w, shape)
        if tangent_w is not None:
            total = total + geometry.input_grad(x, tangent_w, shape)
        if tangent_b is not None:
            total = total + np.reshape(tangent_b, (-1, 1, 1))
        return total

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((1, 1, 3, 3)), n((1, 1, 2, 2)), n((1,))), {}),
                ((n((2, 2, 3, 4)), n((2, 3, 3, 2)), n((3,))), {"stride": 2, "padding": 1}),
                ((n((1, 2, 3, 3)), n((2, 2, 3, 3)), n((2,))), {"stride": 2, "output_padding": 1}),
                ((n((1, 4, 3, 3)), n((4, 1, 2, 3)), n((2,))), {"groups": 2, "dilation": (2, 1), "stride": (1, 2)})]


@lru_cache(maxsize=256)
def pool_layout(op: str, spatial, kernel, stride, padding, ceil_mode, dilation=(1, 1)):
    """Output size and the extra zeros at the end of each axis that ceil_mode's last, partial window needs.

    Each axis has floor or ceil((n + 2 p - k) / s) + 1 windows; as in PyTorch, a last window that would start
    inside the right padding is dropped, so every window overlaps the input."""
    sizes, extras = [], []
    for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation, strict=True):
        if 2 * p > k:
            raise OpArgumentError(f"{op}(): padding {p} is more than half the kernel {k} (a window could hold padding only)")
        extent = (k - 1) * d + 1
        span = n + 2 * p - extent
        if span < 0:
            raise OpArgumentError(f"{op}(): kernel {kernel[0]}x{kernel[1]} is larger than the {spatial[0]}x{spatial[1]} input"
                                  + (f" padded by {padding[0]}x{padding[1]}" if any(padding) else ""))
        count = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (count - 1) * s >= n + p:
            count -= 1
        sizes.append(count)
        extras.append(max(0, (count - 1) * s + extent - (n + 2 * p)))
    return tuple(sizes), tuple(extras)


class _Pool2d(Primitive):
    """Shared geometry of the pooling ops: windows over the last two axes, stride defaulting to the kernel,
    implicit padding on both sides, and ceil_mode's partial last window."""
    args = ("x",)
    batching = "broadcast"  # windows run over the last two axes; leading axes are batch axes
    complex_safe = True
    params = {"kernel": Param("ints", minimum=1, doc="int or (height, width) window size"),
              "stride": Param("ints", default=None, minimum=1, doc="int or (height, width) step; default: the kernel"),
              "padding": Param("ints", default=0, minimum=0, doc="int or (height, width) implicit padding on each side"),
              "ceil_mode": Param("bool", default=False, doc="round the window count up (a partial last window)")}

    def propagate(self, changes, out, x, **params):
        """Windows never mix the leading axes (N, C): recompute the changed planes only."""
        spatial = (np.ndim(x) - 2, np.ndim(x) - 1)
        return slices_change(self.forward, changes[0], x, out, spatial, params)

    def _layout(self, shape, kernel, stride, padding, ceil_mode, dilation=1) -> tuple:
        """(kernel, stride, padding, output sizes, ceil_mode's extra zeros), validated: the same for every call
        with these shapes and parameters (the checks make thousands), so kept (geometry_key)."""
        key = geometry_key(_LAYOUTS, self.name, tuple(shape), kernel, stride, padding, ceil_mode, dilation)
        if key is None:
            return self._checked_layout(shape, kernel, stride, padding, ceil_mode, dilation)
        if key not in _LAYOUTS:
            _LAYOUTS[key] = self._checked_layout(shape, kernel, stride, padding, ceil_mode, dilation)
        return _LAYOUTS[key]

    def _checked_layout(self, shape, kernel, stride, padding, ceil_mode, dilation=1):
        if len(shape) < 2:
            raise OpArgumentError(f"{self.name}(): x must be (..., H, W), e.g. NCHW, got shape {tuple(shape)}")
        kernel = pair(kernel, "kernel", self.name)
        stride = kernel if stride is None else pair(stride, "stride", self.name)
        padding, dilation = pair(padding, "padding", self.name), pair(dilation, "dilation", self.name)
        if not any(padding):
            check_kernel_fits(kernel, tuple(shape)[-2:], self.name, f" of shape {tuple(shape)}", dilation)
        sizes, extras = pool_layout(self.name, tuple(shape)[-2:], kernel, stride, padding, ceil_mode, dilation)
        return kernel, stride, padding, sizes, extras

    def result_shape(self, arg_shapes, params):  # type: ignore[override]  # an instance's: it reads self.name
        layout = self._layout(arg_shapes[0], params["kernel"], params["stride"], params["padding"], params["ceil_mode"],
                              params.get("dilation", 1))
        return tuple(arg_shapes[0][:-2]) + layout[3]

    def peak_elements(self, arg_shapes, params):  # type: ignore[override]  # an instance's: it reads self.name
        """The windows (..., OH, OW, KH, KW), which the rules copy (the max's tie mask, the folded gradient)."""
        kernel, _, _, sizes, _ = self._layout(arg_shapes[0], params["kernel"], params["stride"], params["padding"],
                                              params["ceil_mode"], params.get("dilation", 1))
        leading = 1
        for n in tuple(arg_shapes[0])[:-2]:
            leading *= n
        return leading * sizes[0] * sizes[1] * kernel[0] * kernel[1]

    def _windows(self, x, kernel, stride, padding, extras, fill, dilation=1):
        after = (padding[0] + extras[0], padding[1] + extras[1])
        return windows(pad_spatial(x, padding, after, fill), kernel, stride, pair(dilation, "dilation", self.name))

    def _fold(self, window_grads, shape, kernel, stride, padding, extras, dilation=1):
        padded = tuple(shape[:-2]) + (shape[-2] + 2 * padding[0] + extras[0], shape[-1] + 2 * padding[1] + extras[1])
        folded = fold_windows(window_grads, padded, kernel, stride, pair(dilation, "dilation", self.name))
        return crop_spatial(folded, padding, tuple(shape[-2:]))

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
                ((distinct((2, 2, 6, 5)),), {"kernel": 2, "stride": (2, 1)}),
                ((distinct((1, 2, 5, 5)),), {"kernel": 3, "stride": 2, "padding": 1}),
                ((distinct((1, 1, 5, 6)),), {"kernel": 2, "ceil_mode": True}),
                ((distinct((2, 1, 6, 7)),), {"kernel": (3, 2), "stride": 2, "padding": (1, 1), "ceil_mode": True})]


@builtin
class MaxPool2d(_Pool2d):
    """Max over each kernel window of the last two axes (NCHW), padding and ceil_mode as PyTorch; kinks where a window ties."""
    name, has_kinks = "max_pool2d", True
    vjp_formula = ("g to each window's maximal element(s), shared at ties",)
    params = {**_Pool2d.params,
              "dilation": Param("ints", default=1, minimum=1, doc="int or (height, width) spacing of the window's taps")}

    def _shares(self, x, kernel, stride, padding, extras, dilation):
        """Per window entry, its share of the window's gradient: 1 for the maximum, 1/k for each of k tied maxima."""
        patches = self._windows(real_part(np.asarray(x)), kernel, stride, padding, extras, -np.inf, dilation)
        return tie_shares(patches, (-2, -1), window_max_kept, float_dtype(x))

    def forward(self, x, kernel, stride=None, padding=0, ceil_mode=False, dilation=1):
        kernel, stride, padding, _, extras = self._layout(np.shape(x), kernel, stride, padding, ceil_mode, dilation)
        patches = self._windows(x, kernel, stride, padding, extras, -np.inf, dilation)  # padding never wins a window
        if not np.iscomplexobj(patches):
            return window_max(patches)
        flat = patches.reshape(patches.shape[:-2] + (-1,))
        best = np.argmax(real_part(flat), axis=-1)
        return np.take_along_axis(flat, best[..., None], axis=-1)[..., 0]

    def vjp(self, g, out, x, kernel, stride=None, padding=0, ceil_mode=False, dilation=1):
        kernel, stride, padding, _, extras = self._layout(np.shape(x), kernel, stride, padding, ceil_mode, dilation)
        share = self._shares(x, kernel, stride, padding, extras, dilation)  # ties share equally, as max() does
        window_grads = np.asarray(g)[..., None, None] * share
        return (self._fold(window_grads, np.shape(x), kernel, stride, padding, extras, dilation),)

    def batched_vjp(self, gs, out, x, kernel, stride=None, padding=0, ceil_mode=False, dilation=1):
        """vjp with the cotangents' axis one more leading axis of the windows: the shares are found once."""
        kernel, stride, padding, _, extras = self._layout(np.shape(x), kernel, stride, padding, ceil_mode, dilation)
        share = self._shares(x, kernel, stride, padding, extras, dilation)
        window_grads = np.asarray(gs)[..., None, None] * share
        return (self._fold(window_grads, (len(gs),) + np.shape(x), kernel, stride, padding, extras, dilation),)

    def jvp(self, tangents, out, x, kernel, stride=None, padding=0, ceil_mode=False, dilation=1):
        kernel, stride, padding, _, extras = self._layout(np.shape(x), kernel, stride, padding, ceil_mode, dilation)
        share = self._shares(x, kernel, stride, padding, extras, dilation)
        return np.sum(self._windows(tangents[0], kernel, stride, padding, extras, 0.0, dilation) * share, axis=(-2, -1))

    def propagate(self, changes, out, x, **params):
        """A one-element change (every copy moves one entry) where the windows tile the input (stride = kernel, no
        padding, dilation or ceil_mode's partial window) changes the one window holding that entry: its maximum is
        recomputed alone, the result pinned there; any other change recomputes the changed planes."""
        local = self._one_window(changes[0], out, x, **params)
        return local if local is not None else super().propagate(changes, out, x, **params)

    def _one_window(self, change: Change, out, x, kernel, stride=None, padding=0, ceil_mode=False,
                    dilation=1) -> Change | None:
        x, out = np.asarray(x), np.asarray(out)
        if (change.delta.size != change.count or x.ndim < 2 or np.iscomplexobj(x) or np.iscomplexobj(change.delta)
                or x.dtype.kind != "f"):
            return None
        kernel, stride, padding, sizes, extras = self._layout(x.shape, kernel, stride, padding, ceil_mode, dilation)
        if stride != kernel or any(padding) or any(extras) or pair(dilation, "dilation", self.name) != (1, 1):
            return None
        count = change.count
        at = [change.pins.get(a, np.zeros(count, dtype=np.intp)) for a in range(x.ndim)]
        rows, columns = at[-2] // kernel[0], at[-1] // kernel[1]
        inside = (rows < sizes[0]) & (columns < sizes[1])  # entries past the last whole window change nothing
        rows, columns = np.minimum(rows, sizes[0] - 1), np.minimum(columns, sizes[1] - 1)
        window = tuple(at[:-2]) + (rows, columns)
        taps = windows(x, kernel, kernel)[window]  # (count, KH, KW), a copy
        tap_row = np.where(inside, at[-2] - rows * kernel[0], 0)
        tap_column = np.where(inside, at[-1] - columns * kernel[1], 0)
        taps[np.arange(count), tap_row, tap_column] += change.delta.reshape(-1)
        moved = np.where(inside, window_max(taps) - out[window], 0.0)
        return Change.make(out.shape, dict(enumerate(window)), moved.reshape((count,) + (1,) * out.ndim))

    @staticmethod
    def test_cases(rng):
        def distinct(shape):
            count = int(np.prod(shape))
            return (rng.permutation(count).reshape(shape) - count / 2) * 0.1
        return _Pool2d.test_cases(rng) + [((distinct((1, 2, 7, 6)),), {"kernel": 2, "stride": 1, "dilation": (2, 3)}),
                                          ((distinct((1, 1, 8, 7)),), {"kernel": 3, "stride": 2, "padding": 1,
                                                                       "dilation": 2, "ceil_mode": True})]

    def branches(self, x, kernel, stride=None, padding=0, ceil_mode=False, dilation=1):
        kernel, stride, padding, _, extras = self._layout(np.shape(x), kernel, stride, padding, ceil_mode, dilation)
        patches = self._windows(real_part(np.asarray(x)), kernel, stride, padding, extras, -np.inf, dilation)
        return patches == window_max_kept(patches)


@builtin
class AvgPool2d(_Pool2d):
    """Mean over each kernel window of the last two axes (NCHW), padding and ceil_mode as PyTorch."""
    name = "avg_pool2d"
    linear_in = (0,)
    vjp_formula = ("g / (the window's count) spread over each window",)
    params = {**_Pool2d.params,
              "count_include_pad": Param("bool", default=True, doc="count the padding zeros in each window's divisor")}

    def _divisors(self, shape, kernel, stride, padding, extras, count_include_pad):
        """Per window, the number of elements averaged: the window inside the padded input (PyTorch's rule),
        or inside the input itself without count_include_pad; never the ceil_mode overhang."""
        height, width = tuple(shape)[-2:]
        if count_include_pad:
            counted = np.pad(np.ones((height + 2 * padding[0], width + 2 * padding[1])), ((0, extras[0]), (0, extras[1])))
        else:
            counted = pad_spatial(np.ones((height, width)), padding, (padding[0] + extras[0], padding[1] + extras[1]))
        return np.sum(windows(counted, kernel, stride), axis=(-2, -1))

    def forward(self, x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        kernel, stride, padding, _, extras = self._layout(np.shape(x), kernel, stride, padding, ceil_mode)
        divisors = self._divisors(np.shape(x), kernel, stride, padding, extras, count_include_pad)
        total = np.sum(self._windows(x, kernel, stride, padding, extras, 0.0), axis=(-2, -1))
        return total / divisors.astype(float_dtype(real_part(np.asarray(x))))

    def vjp(self, g, out, x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        kernel, stride, padding, _, extras = self._layout(np.shape(x), kernel, stride, padding, ceil_mode)
        divisors = self._divisors(np.shape(x), kernel, stride, padding, extras, count_include_pad)
        window_grads = (np.asarray(g) / divisors.astype(float_dtype(g)))[..., None, None]
        spread = np.broadcast_to(window_grads, np.shape(g) + kernel)
        return (self._fold(spread, np.shape(x), kernel, stride, padding, extras),)

    def jvp(self, tangents, out, x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        return self.forward(tangents[0], kernel, stride, padding, ceil_mode, count_include_pad)

    @staticmethod
    def test_cases(rng):
        return _Pool2d.test_cases(rng) + [
            ((rng.standard_normal((1, 1, 5, 5)),), {"kernel": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
            ((rng.standard_normal((1, 1, 5, 6)),), {"kernel": 2, "ceil_mode": True, "count_include_pad": False})]
