"""Multilinear products: einsum, tensordot, outer, inner, kron and cross.

einsum is the general one: the gradient of operand i is the einsum of the upstream gradient with the
other operands, written back to operand i's subscripts (repeated letters -- a diagonal -- get it on
that diagonal only; letters summed in operand i alone get it broadcast).  tensordot and inner are
written as einsums and share that rule.
"""
from __future__ import annotations

import string

import numpy as np

from .base import OpArgumentError, Param, Primitive, unbroadcast
from .registry import builtin

LETTERS = string.ascii_letters


def parse_subscripts(subscripts: str, shapes) -> tuple[list[str], str]:
    """'ij,jk->ik' (or implicit 'ij,jk', '...' allowed) as explicit per-operand letters and the output's."""
    if not isinstance(subscripts, str):
        raise OpArgumentError(f"einsum(): subscripts must be a string such as 'ij,jk->ik', got {subscripts!r}")
    text = subscripts.replace(" ", "")
    inputs_text, arrow, output = text.partition("->")
    terms = inputs_text.split(",")
    if len(terms) != len(shapes):
        raise OpArgumentError(f"einsum(): subscripts {subscripts!r} name {len(terms)} operand(s), got {len(shapes)}")
    used = set(text) - set(".,->")
    bad = sorted(c for c in used if c not in LETTERS)
    if bad:
        raise OpArgumentError(f"einsum(): subscripts {subscripts!r} use {bad[0]!r}; use letters a-z, A-Z and '...'")
    spare = [c for c in LETTERS if c not in used]
    ellipsis_rank = max((len(shape) - (len(term) - 3) for term, shape in zip(terms, shapes, strict=True) if "..." in term),
                        default=0)
    ellipsis = "".join(spare[:ellipsis_rank])
    explicit = []
    for position, (term, shape) in enumerate(zip(terms, shapes, strict=True)):
        if "..." in term:
            rank = len(shape) - (len(term) - 3)
            if rank < 0:
                raise OpArgumentError(f"einsum(): operand {position} has shape {shape}, too few axes for {term!r}")
            term = term.replace("...", ellipsis[ellipsis_rank - rank:])
        if "." in term or len(term) != len(shape):
            raise OpArgumentError(f"einsum(): operand {position} has {len(shape)} axes but {term!r} names {len(term)}")
        explicit.append(term)
    if arrow:
        output = output.replace("...", ellipsis)
        for letter in output:
            if output.count(letter) > 1 or not any(letter in term for term in explicit):
                raise OpArgumentError(f"einsum(): output letter {letter!r} of {subscripts!r} is repeated or in no operand")
    else:  # numpy's implicit output: the ellipsis axes, then the letters that appear once, in order
        counts = "".join(explicit)
        output = ellipsis + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in ellipsis))
    letter_sizes(explicit, shapes)
    return explicit, output


def letter_sizes(terms, shapes) -> dict[str, int]:
    """Each letter's length; a length of 1 broadcasts against the others, as numpy's einsum does."""
    sizes: dict[str, int] = {}
    for position, (term, shape) in enumerate(zip(terms, shapes, strict=True)):
        for letter, size in zip(term, shape, strict=True):
            known = sizes.setdefault(letter, size)
            if known != size and 1 not in (known, size):
                raise OpArgumentError(f"einsum(): letter {letter!r} is {known} long in one operand and {size} in "
                                      f"operand {position} (shape {tuple(shape)})")
            sizes[letter] = max(known, size)
    return sizes


def einsum_grad(g, terms: list[str], output: str, operands, position: int) -> np.ndarray:
    """d <g, einsum(operands)> / d operands[position]."""
    term, shape = terms[position], np.shape(operands[position])
    others = [(t, op) for i, (t, op) in enumerate(zip(terms, operands, strict=True)) if i != position]
    available = set(output).union(*(set(t) for t, _ in others))
    reached = "".join(dict.fromkeys(c for c in term if c in available))
    spec = ",".join([output] + [t for t, _ in others]) + "->" + reached
    partial = np.einsum(spec, g, *[op for _, op in others])
    # a letter of length 1 here but longer elsewhere was broadcast: its gradient is summed back (and the reverse)
    for axis, letter in enumerate(reached):
        length = shape[term.index(letter)]
        if partial.shape[axis] != length:
            partial = np.sum(partial, axis=axis, keepdims=True) if length == 1 else \
                np.broadcast_to(partial, partial.shape[:axis] + (length,) + partial.shape[axis + 1:])
    # place it: element (i0, i1, ...) of the operand reads partial at its letters' coordinates; a repeated
    # letter whose coordinates differ is off the diagonal and gets 0; letters of this operand alone broadcast
    coordinates = np.indices(shape, sparse=True)
    first: dict[str, int] = {}
    on_diagonal = np.ones(shape, dtype=bool)
    for axis, letter in enumerate(term):
        if letter in first:
            on_diagonal = on_diagonal & (coordinates[axis] == coordinates[first[letter]])
        else:
            first[letter] = axis
    grad = partial[tuple(coordinates[first[letter]] for letter in reached)] if reached else partial
    grad = np.broadcast_to(grad, shape)
    return np.where(on_diagonal, grad, 0) if not on_diagonal.all() else grad.copy()


def when_ranks_align(shapes, batched) -> str | None:
    """The "custom" rule where every batched operand already has the largest rank (the batching code then
    hands it over as (K, *shape), not padded with length-1 axes); else one copy at a time."""
    rank = max(len(shape) for shape in shapes)
    return "custom" if all(len(shape) == rank for shape, flag in zip(shapes, batched, strict=True) if flag) else None


def einsum_batched(subscripts: str, args, batched):
    """The copies of an einsum on a leading axis: a fresh letter on every batched operand and in front of the output."""
    shapes = [np.shape(a)[1:] if b else np.shape(a) for a, b in zip(args, batched, strict=True)]
    terms, output = parse_subscripts(subscripts, shapes)
    letter = next(c for c in LETTERS if c not in "".join(terms) + output)
    terms = [letter + t if b else t for t, b in zip(terms, batched, strict=True)]
    return np.einsum(",".join(terms) + "->" + letter + output, *args)


@builtin
class Einsum(Primitive):
    """numpy.einsum: einsum('ij,jk->ik', a, b), implicit output and '...' allowed (subscripts as the first argument)."""
    name, args = "einsum", ("*operands",)
    linear_in = True
    complex_safe = True
    vjp_formula = "g contracted with the other operands, back to this operand's subscripts"
    params = {"subscripts": Param("str", doc="numpy's subscripts, e.g. 'ij,jk->ik', 'ii->', 'bij,bjk->bik'")}
    batching = staticmethod(when_ranks_align)

    @staticmethod
    def result_shape(arg_shapes, params):
        terms, output = parse_subscripts(params["subscripts"], arg_shapes)
        sizes = letter_sizes(terms, arg_shapes)
        return tuple(sizes[c] for c in output)

    def forward(self, *operands, subscripts):
        terms, output = parse_subscripts(subscripts, [np.shape(op) for op in operands])
        return np.asarray(np.einsum(",".join(terms) + "->" + output, *operands, optimize=len(operands) > 2))

    def vjp(self, g, out, *operands, subscripts):
        terms, output = parse_subscripts(subscripts, [np.shape(op) for op in operands])
        return tuple(einsum_grad(g, terms, output, operands, i) for i in range(len(operands)))

    def jvp(self, tangents, out, *operands, subscripts):
        # multilinear: the sum over operands of the product with that operand replaced by its tangent
        terms, output = parse_subscripts(subscripts, [np.shape(op) for op in operands])
        spec = ",".join(terms) + "->" + output
        total = np.zeros(np.shape(out), dtype=np.result_type(out, *[t for t in tangents if t is not None]))
        for i, tangent in enumerate(tangents):
            if tangent is not None:
                total = total + np.einsum(spec, *operands[:i], tangent, *operands[i + 1:])
        return total

    def forward_batched(self, args, batched, subscripts):
        return einsum_batched(subscripts, args, batched)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((2, 3)), n((3, 4))), {"subscripts": "ij,jk->ik"}), ((n((3, 3)),), {"subscripts": "ii->"}),
                ((n((3, 3)),), {"subscripts": "ii->i"}), ((n((3,)), n((4,))), {"subscripts": "i,j->ij"}),
                ((n((2, 2, 3)), n((2, 3, 2))), {"subscripts": "bij,bjk->bik"}), ((n((2, 3)), n((3, 4))), {"subscripts": "ij,jk"}),
                ((n((2, 2, 3)), n((3, 4))), {"subscripts": "...ij,jk->...ik"}), ((n((2, 3)),), {"subscripts": "ij->i"}),
                ((n((2, 3)), n((3,)), n((3, 2))), {"subscripts": "ij,j,jk->ik"}), ((n((2, 3)),), {"subscripts": "ij->ji"}),
                ((n((3, 2, 3)),), {"subscripts": "iji->j"}), ((n((1, 2, 3)), n((4, 3, 2))), {"subscripts": "...ij,...jk->...ik"}),
                ((n((1, 3)), n((2, 3))), {"subscripts": "ij,ij->ij"}), ((n((2, 1)), n((2, 3))), {"subscripts": "ij,ij->"})]


def tensordot_subscripts(shape_a, shape_b, axes) -> str:
    """numpy.tensordot's axes (n: the last n of a with the first n of b; or two lists of axes) as einsum subscripts."""
    if isinstance(axes, int):
        if axes < 0 or axes > min(len(shape_a), len(shape_b)):
            raise OpArgumentError(f"tensordot(): axes={axes} does not fit shapes {shape_a} and {shape_b}")
        pairs = list(zip(range(len(shape_a) - axes, len(shape_a)), range(axes), strict=True))
    else:
        def axis_list(side):
            items = [side] if isinstance(side, int) else list(side)
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in items):
                raise ValueError
            return items
        try:
            first, second = (axis_list(side) for side in axes)
        except (TypeError, ValueError):
            raise OpArgumentError(f"tensordot(): axes must be an integer or two lists of axes, got {axes!r}") from None
        if len(first) != len(second):
            raise OpArgumentError(f"tensordot(): axes {axes!r} pair {len(first)} axes of a with {len(second)} of b")
        for side, shape in ((first, shape_a), (second, shape_b)):
            for i in side:
                if not -len(shape) <= i < len(shape):
                    raise OpArgumentError(f"tensordot(): axis {i} is out of range for shape {shape}")
        pairs = [(i % len(shape_a), j % len(shape_b)) for i, j in zip(first, second, strict=True)]
    letters = iter(LETTERS)
    term_a = [next(letters) for _ in shape_a]
    term_b = [next(letters) for _ in shape_b]
    for i, j in pairs:
        term_b[j] = term_a[i]
    contracted = {term_a[i] for i, _ in pairs}
    output = [c for c in term_a if c not in contracted] + [c for j, c in enumerate(term_b) if j not in {j for _, j in pairs}]
    return "".join(term_a) + "," + "".join(term_b) + "->" + "".join(output)


class _Contraction(Primitive):
    """A two-operand product written as an einsum (its gradient is einsum's)."""
    args = ("a", "b")
    linear_in = (0, 1)
    complex_safe = True
    batching = staticmethod(when_ranks_align)

    def subscripts(self, shape_a, shape_b, **params) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def result_shape(self, arg_shapes, params):  # type: ignore[override]  # an instance's: it reads the subscripts
        return Einsum.result_shape(arg_shapes, {"subscripts": self.subscripts(*arg_shapes, **params)})

    def forward(self, a, b, **params):
        return Einsum().forward(a, b, subscripts=self.subscripts(np.shape(a), np.shape(b), **params))

    def vjp(self, g, out, a, b, **params):
        return Einsum().vjp(g, out, a, b, subscripts=self.subscripts(np.shape(a), np.shape(b), **params))

    def jvp(self, tangents, out, a, b, **params):
        return Einsum().jvp(tangents, out, a, b, subscripts=self.subscripts(np.shape(a), np.shape(b), **params))

    def forward_batched(self, args, batched, **params):
        shapes = [np.shape(x)[1:] if flag else np.shape(x) for x, flag in zip(args, batched, strict=True)]
        return einsum_batched(self.subscripts(*shapes, **params), args, batched)


@builtin
class Tensordot(_Contraction):
    """numpy.tensordot: sum over the last `axes` axes of a and the first of b, or over two lists of axes."""
    name = "tensordot"
    vjp_formula = ("g contracted with {b} over its free axes", "g contracted with {a} over its free axes")
    params = {"axes": Param("any", default=2, doc="n, or two lists of axes ((axes of a), (axes of b))")}

    def subscripts(self, shape_a, shape_b, **params):
        return tensordot_subscripts(tuple(shape_a), tuple(shape_b), params.get("axes", 2))

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((2, 3, 4)), n((3, 4, 2))), {}), ((n((2, 3)), n((3, 4))), {"axes": 1}), ((n((2, 3)), n((4,))), {"axes": 0}),
                ((n((3, 2, 4)), n((4, 3))), {"axes": [[0, 2], [1, 0]]})]


@builtin
class Inner(_Contraction):
    """numpy.inner: the sum over the last axes of a and b (a * b for scalars)."""
    name = "inner"
    vjp_formula = ("g contracted with {b}", "g contracted with {a}")

    def subscripts(self, shape_a, shape_b, **params):
        if shape_a and shape_b and shape_a[-1] != shape_b[-1]:
            raise OpArgumentError(f"inner(): the last axes of shapes {tuple(shape_a)} and {tuple(shape_b)} differ")
        last = 1 if shape_a and shape_b else 0
        return tensordot_subscripts(tuple(shape_a), tuple(shape_b), [[len(shape_a) - 1] * last, [len(shape_b) - 1] * last])

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((3,)), n((3,))), {}), ((n((2, 3)), n((4, 3))), {}), ((n(()), n((2, 3))), {}), ((n((2, 2, 3)), n((3,))), {})]


@builtin
class Outer(_Contraction):
    """numpy.outer: every element of a (flattened) times every element of b (flattened), a matrix."""
    name = "outer"
    vjp_formula = ("g @ {b}, reshaped to a", "{a} @ g, reshaped to b")

    def subscripts(self, shape_a, shape_b, **params):
        if len(shape_a) != 1 or len(shape_b) != 1:
            raise OpArgumentError("outer(): a flattening outer product takes vectors here; reshape first "
                                  f"(got shapes {tuple(shape_a)} and {tuple(shape_b)})")
        return "i,j->ij"

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((3,)), n((4,))), {}), ((n((1,)), n((2,))), {})]


@builtin
class Kron(Primitive):
    """numpy.kron: the Kronecker product, block (i, j) of the result is a[i, j] * b."""
    name, args = "kron", ("a", "b")
    linear_in = (0, 1)
    complex_safe = True
    vjp_formula = ("Σ over each block of g · {b}", "Σ over the blocks of g · the matching element of {a}")

    @staticmethod
    def batching(shapes, batched):
        return "custom" if sum(batched) == 1 else None  # kron of two batch axes would multiply them

    def forward_batched(self, args, batched):
        # the batched operand comes as (K, 1, ..., *shape) at the larger rank; the other, padded to that rank, gets a
        # leading 1, so the Kronecker product's first axis is K * 1 = the copies
        rank = max(np.ndim(a) - flag for a, flag in zip(args, batched, strict=True))
        a, b = (x if flag else np.reshape(x, (1,) * (rank + 1 - np.ndim(x)) + np.shape(x))
                for x, flag in zip(args, batched, strict=True))
        return self.forward(a, b)

    @staticmethod
    def _interleaved(a, b):
        """a and b at the same rank, and the shape (a0, b0, a1, b1, ...) whose reshape is kron(a, b)."""
        ndim = max(np.ndim(a), np.ndim(b))
        a = np.reshape(a, (1,) * (ndim - np.ndim(a)) + np.shape(a))
        b = np.reshape(b, (1,) * (ndim - np.ndim(b)) + np.shape(b))
        return a, b, ndim

    @staticmethod
    def result_shape(arg_shapes, params):
        a, b = arg_shapes
        ndim = max(len(a), len(b))
        a, b = (1,) * (ndim - len(a)) + tuple(a), (1,) * (ndim - len(b)) + tuple(b)
        return tuple(m * n for m, n in zip(a, b, strict=True))

    def forward(self, a, b):
        a, b, ndim = self._interleaved(a, b)
        # out[i * n + j] = a[i] b[j] on every axis: the outer product with the axes interleaved, then merged
        product = np.reshape(a, sum(((m, 1) for m in a.shape), ())) * np.reshape(b, sum(((1, n) for n in b.shape), ()))
        return product.reshape(tuple(m * n for m, n in zip(a.shape, b.shape, strict=True)))

    def vjp(self, g, out, a, b):
        shape_a, shape_b = np.shape(a), np.shape(b)
        a, b, ndim = self._interleaved(a, b)
        blocks = np.reshape(g, sum(((m, n) for m, n in zip(a.shape, b.shape, strict=True)), ()))
        a_axes, b_axes = tuple(range(0, 2 * ndim, 2)), tuple(range(1, 2 * ndim, 2))
        b_spread = np.reshape(b, sum(((1, n) for n in b.shape), ()))
        a_spread = np.reshape(a, sum(((m, 1) for m in a.shape), ()))
        grad_a = np.sum(blocks * b_spread, axis=b_axes).reshape(shape_a)
        grad_b = np.sum(blocks * a_spread, axis=a_axes).reshape(shape_b)
        return grad_a, grad_b

    def jvp(self, tangents, out, a, b):
        total = np.zeros(np.shape(out), dtype=np.result_type(out, np.float32))
        if tangents[0] is not None:
            total = total + self.forward(tangents[0], b)
        if tangents[1] is not None:
            total = total + self.forward(a, tangents[1])
        return total

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((2,)), n((3,))), {}), ((n((2, 2)), n((2, 3))), {}), ((n((3,)), n((2, 2))), {}), ((n(()), n((2,))), {})]


@builtin
class Cross(Primitive):
    """The cross product of 3-vectors along axis (default last), broadcasting the other axes."""
    name, args = "cross", ("a", "b")
    linear_in = (0, 1)
    complex_safe = True
    vjp_formula = ("{b} × g", "g × {a}")
    params = {"axis": Param("axis", default=-1, doc="the axis holding the 3 components")}
    batching = staticmethod(when_ranks_align)

    @staticmethod
    def product(a, b, axis):
        a, b = np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1)
        a1, a2, a3 = a[..., 0], a[..., 1], a[..., 2]
        b1, b2, b3 = b[..., 0], b[..., 1], b[..., 2]
        return np.moveaxis(np.stack([a2 * b3 - a3 * b2, a3 * b1 - a1 * b3, a1 * b2 - a2 * b1], axis=-1), -1, axis)

    @staticmethod
    def _check(a, b, axis):
        for which, x in (("a", a), ("b", b)):
            if not -np.ndim(x) <= axis < np.ndim(x) or np.shape(x)[axis] != 3:
                raise OpArgumentError(f"cross(): {which} of shape {np.shape(x)} has no axis {axis} of length 3")

    @staticmethod
    def result_shape(arg_shapes, params):
        a, b = (np.moveaxis(np.empty(s, dtype=np.int8), params["axis"], -1).shape for s in arg_shapes)
        shape = np.broadcast_shapes(a, b)
        return tuple(np.moveaxis(np.empty(shape, dtype=np.int8), -1, params["axis"]).shape)

    def forward(self, a, b, axis=-1):
        self._check(a, b, axis)
        return self.product(a, b, axis)

    def vjp(self, g, out, a, b, axis=-1):
        # <g, a × b> = <b × g, a> = <g × a, b>  (the scalar triple product is cyclic)
        return (unbroadcast(self.product(b, g, axis), np.shape(a)), unbroadcast(self.product(g, a, axis), np.shape(b)))

    def jvp(self, tangents, out, a, b, axis=-1):
        total = np.zeros(np.shape(out), dtype=np.result_type(out, np.float32))
        if tangents[0] is not None:
            total = total + self.product(tangents[0], b, axis)
        if tangents[1] is not None:
            total = total + self.product(a, tangents[1], axis)
        return total

    def forward_batched(self, args, batched, axis=-1):
        if axis >= 0:  # count it past the batch axis; an unbatched operand gets a leading length-1 axis
            args = [a if flag else np.asarray(a)[None] for a, flag in zip(args, batched, strict=True)]
            return self.product(args[0], args[1], axis + 1)
        return self.product(args[0], args[1], axis)

    @staticmethod
    def test_cases(rng):
        n = rng.standard_normal
        return [((n((3,)), n((3,))), {}), ((n((2, 3)), n((2, 3))), {}), ((n((4, 3)), n((3,))), {}),
                ((n((3, 2)), n((3, 2))), {"axis": 0})]
