"""What kind of wrong a backward rule is, from the op-local comparison at the failing use site.

At a suspect (an op whose vjp passes a wrong gradient to its argument p), the op alone is differentiated by
finite differences: for every element k of every differentiable argument j,

    numeric_j[k] = d/ds <g, op(.., x_j + s e_k, ..)> at s = 0,

the gradient the vjp should return for the very cotangent g it got.  :func:`classify` -- a pure function of
arrays -- compares what the vjp returned for p with these and names the one simple relation that explains the
WHOLE argument within the tolerance (scale, sign, transpose, unreduced, swapped, region, missing), else says
``unknown`` with the worst element; a rule whose return agrees everywhere gets no diagnosis.  Elements whose
estimate could not be resolved (a kink within the step, a step out of the op's domain) take no part.
"""
from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..engine import BackwardPass, differentiable, evaluate_node, evaluation_failures, fault_rule, rule_failure
from ..graph import Graph, Node
from ..numeric import MACHINE_EPS, element_scale, richardson_central
from ..ops.base import OpInfo
from ..plaindata import PlainData
from ..results import Diagnosis, Kind, RuleSource, Suspect
from ..spec import Tolerance, stable_seed
from .verdict import agrees, allowed_error

STEP = 1e-3                 # relative to each element's scale; Richardson removes the h² term
MAX_ELEMENTS = 512          # elements differentiated per argument; beyond, a seeded sample of this many
SMALL_FACTORS = (2,)        # named besides -1 and the axis lengths: the 2 of d(x²), dropped or doubled
# a region is named only where so clean a split would rarely arise by chance from the wrong elements' count
REGION_CHANCE = 0.02        # a threshold or an interval
SIGN_CHANCE = 0.25          # a split at 0 (x < 0, x > 0): the branch a rule most often gets wrong
PACKAGE_DIR = Path(__file__).resolve().parent.parent


@dataclass(eq=False, repr=False)
class LocalEstimate(PlainData):
    """The op-local numeric gradient of one argument: values and error bounds, NaN where not estimated."""

    values: np.ndarray
    error: np.ndarray

    @property
    def known(self) -> np.ndarray:
        return np.isfinite(self.values) & np.isfinite(self.error)


# ------------------------------------------------------------------------------------------ at a suspect

def diagnose_suspects(graph: Graph, backward: BackwardPass, values: list[np.ndarray], suspects: list[Suspect],
                      tolerance_of) -> list[Suspect]:
    """The suspects, each with its diagnosis and (for a custom op) the line of its rule."""
    by_name = {node.name: node for node in graph.nodes}
    diagnosed = []
    for suspect in suspects:
        node = by_name[suspect.node]
        diagnosed.append(replace(suspect, source=rule_source(node.op_info), diagnosis=diagnose_edge(
            graph, backward, values, node, suspect.argument, tolerance_of(node))))
    return diagnosed


def diagnose_edge(graph: Graph, backward: BackwardPass, values: list[np.ndarray], node: Node, position: int,
                  tol: Tolerance) -> Diagnosis | None:
    """What node's vjp returns for its argument at position, as returned (any shape, or None), against the
    op-local numeric gradients, with the cotangent the vjp got in the backward pass; where that cotangent hides
    the fault (the whole comparison agrees), once more with a random cotangent."""
    g = backward.adjoints[node.index]
    if g is None or fault_rule(backward.faults.get(node.index, "")) == "forward":
        return None  # a forward that changes its inputs: the suspect's message is the whole finding
    args = [np.asarray(values[a]) for a in node.args]
    out = np.asarray(values[node.index])
    names = [graph.nodes[a].name for a in node.args]
    rng = np.random.default_rng(stable_seed(graph.spec.seed, "diagnosis", node.name, str(position)))
    for cotangent in (np.asarray(g, dtype=np.float64), rng.standard_normal(np.shape(g))):
        returned, fault = returned_gradient(node, cotangent, out, args, position)
        if fault:
            return Diagnosis(Kind.FAULT, f"the rule returned no usable gradient: {fault}")
        found = classify(returned, local_gradients(node, args, cotangent, position, returned), position, args, tol,
                         names=names, output_shape=np.shape(g))
        if found is not None:
            return found
    return None


def returned_gradient(node: Node, g, out, args: list[np.ndarray], position: int) -> tuple[object, str]:
    """What the vjp returns for argument position, untouched (the engine replaces a wrong shape by NaN), called on
    copies; or what went wrong with the call."""
    try:
        with np.errstate(all="ignore"):
            grads = node.op_info.impl.vjp(np.array(g), np.array(out), *[np.array(a) for a in args], **node.params)
    except (SystemExit, Exception) as error:
        return None, rule_failure("vjp", error)
    if not isinstance(grads, (tuple, list)):
        if len(args) == 1 and grads is not None:
            return grads, ""
        return None, f"vjp returned {type(grads).__name__}, not a tuple of {len(args)} gradients"
    if len(grads) != len(args):
        return None, f"vjp returned {len(grads)} gradient(s) for {len(args)} input(s)"
    return grads[position], ""


def local_suspects(graph: Graph, backward: BackwardPass, values: list[np.ndarray]) -> list[Suspect]:
    """The edges of custom ops whose vjp is not the op's own derivative, diagnosed, from the op-local comparison
    alone (``gradcheck explain``: no global check; built-in rules are the registry's own tests' concern)."""
    suspects = []
    for node in graph.nodes:
        if node.kind != "op" or node.op_info.source == "builtin" or backward.adjoints[node.index] is None:
            continue
        tol = node.tolerance if node.tolerance is not None else graph.spec.tolerance
        for position, arg in enumerate(node.args):
            if not graph.nodes[arg].requires_grad or not differentiable(values[arg]):
                continue
            diagnosis = diagnose_edge(graph, backward, values, node, position, tol)
            if diagnosis is not None:
                suspects.append(Suspect(node=node.name, op=node.op_name, argument=position,
                                        argument_node=graph.nodes[arg].name, message=diagnosis.detail,
                                        diagnosis=diagnosis, source=rule_source(node.op_info)))
    return suspects


def local_gradients(node: Node, args: list[np.ndarray], g, position: int, returned) -> list[LocalEstimate | None]:
    """numeric_j for argument ``position`` and for every other differentiable argument j whose gradient could be
    what was returned (the same shape: the swapped kind); None for the others."""
    shape = None if returned is None else np.shape(returned)
    return [local_gradient(node, args, g, j) if differentiable(arg) and (j == position or np.shape(arg) == shape)
            else None for j, arg in enumerate(args)]


def local_gradient(node: Node, args: list[np.ndarray], g, position: int) -> LocalEstimate:
    """d <g, op(args)> / d args[position], element by element: Richardson-extrapolated central differences."""
    g = np.asarray(g, dtype=np.float64)
    base = [np.asarray(a, dtype=np.float64) if differentiable(a) else a for a in args]
    x = base[position]
    size = x.size
    values, error = np.full(size, np.nan), np.full(size, np.nan)
    scale = element_scale(x).reshape(-1)
    elements = np.arange(size)
    if size > MAX_ELEMENTS:
        rng = np.random.default_rng(stable_seed(0, "diagnosis-sample", node.name, str(position)))
        elements = np.sort(rng.choice(size, MAX_ELEMENTS, replace=False))
    failures = evaluation_failures(node)

    def projected(flat: int, shift: float) -> float:
        shifted = list(base)
        moved = x.copy().reshape(-1)
        moved[flat] += shift
        shifted[position] = moved.reshape(x.shape)
        try:
            with np.errstate(all="ignore"):
                return float(np.sum(g * np.asarray(evaluate_node(node, shifted, np.float64), dtype=np.float64)))
        except failures:
            return math.nan

    for flat in elements:
        h = STEP * float(scale[flat])
        f = {s: projected(int(flat), s) for s in (h, -h, h / 2, -h / 2)}
        estimate, truncation = richardson_central(f.__getitem__, h)
        roundoff = 4 * MACHINE_EPS * max(abs(v) for v in f.values()) / h
        values[flat], error[flat] = estimate, truncation + roundoff
    return LocalEstimate(values.reshape(x.shape), error.reshape(x.shape))


def rule_source(op: OpInfo, rule: str = "vjp") -> RuleSource | None:
    """File and first line of a custom op's rule (``vjp``: its backward_rule if it declares one; ``jvp``);
    None for built-in ops and for code that is gradcheck's own adapter or has no Python source."""
    if op.source == "builtin":
        return None
    target, name = (op.jvp, "jvp") if rule == "jvp" else (
        (op.backward_rule, "backward") if op.backward_rule is not None else (getattr(op.impl, "vjp", None), "vjp"))
    while isinstance(target, functools.partial):
        target = target.func
    if target is None:
        return None
    if not (inspect.isfunction(target) or inspect.ismethod(target)) and callable(target):
        target = type(target).__call__
    try:
        target = inspect.unwrap(target)
        file = inspect.getsourcefile(target)
        _, line = inspect.getsourcelines(target)
    except (TypeError, OSError, ValueError):
        return None
    if file is None:
        return None
    path = Path(file).resolve()
    if path.is_relative_to(PACKAGE_DIR):
        return None
    return RuleSource(file=_shown_path(path), line=int(line), rule=name,
                      function=getattr(target, "__qualname__", getattr(target, "__name__", "")))


def _shown_path(path: Path) -> str:
    """Relative to the working directory when inside it (as a pull request's files are named), else absolute."""
    try:
        return str(path.relative_to(Path(os.getcwd()).resolve()))
    except ValueError:
        return str(path)


# ------------------------------------------------------------------------------------------ the classification

def classify(returned, numeric: Sequence[LocalEstimate | None], position: int, args: Sequence, tol: Tolerance, *,
             names: Sequence[str] | None = None, output_shape: tuple[int, ...] | None = None) -> Diagnosis | None:
    """What is wrong with ``returned`` (the vjp's gradient for argument ``position``, as returned: any shape, or
    None) against the op-local numeric gradients of every argument; None when it agrees wherever compared."""
    names = list(names) if names is not None else [f"argument {j}" for j in range(len(args))]
    right = numeric[position]
    if right is None:
        return None
    known = right.known
    if not known.any():
        return None  # nothing could be estimated: no evidence either way
    shape = right.values.shape
    if returned is None:
        if _all_small(right, known, tol):
            return None
        return Diagnosis(Kind.MISSING, f"the rule returned None for '{names[position]}', whose gradient is not zero "
                                    f"(largest |numeric| {_num(np.nanmax(np.abs(right.values)))})",
                         {"returned_none": True, "wrong": int(known.sum()), "total": int(known.sum())})
    try:
        returned = np.asarray(returned, dtype=np.float64)
    except (TypeError, ValueError):
        return Diagnosis(Kind.FAULT, f"the rule returned {type(returned).__name__}, not an array of numbers")
    if returned.shape != shape:
        return _wrong_shape(returned, numeric, position, tol, names)
    ok = _agree(returned, right.values, right.error, tol, known)
    if ok[known].all():
        return None
    return (_missing_everywhere(returned, right, known, tol, names[position])
            or _scaled(returned, right, known, tol, args, names, output_shape, position)
            or _transposed(returned, right, tol)
            or _swapped(returned, numeric, position, tol, names)
            or _region(returned, right, known, ok, tol, args, names)
            or _missing_somewhere(returned, known, ok, tol)
            or _unknown(returned, right, known, ok, tol))


def _agree(analytic, values, error, tol: Tolerance, known) -> np.ndarray:
    """The judge's element verdict (``agrees``), True where the reference is not known."""
    return np.where(known, agrees(analytic, np.where(known, values, 0.0), tol, np.where(known, error, 0.0)), True)


def _fits(predicted, error, analytic, tol: Tolerance, known) -> bool:
    """The hypothesis ``analytic == predicted`` holds on every element compared (and some element is compared)."""
    known = known & np.isfinite(predicted) & np.isfinite(error)
    return bool(known.any()) and bool(_agree(analytic, predicted, error, tol, known)[known].all())


def _significant(estimate: LocalEstimate, known, tol: Tolerance) -> np.ndarray:
    """Elements whose right value is told apart from zero: where a hypothesis predicts something."""
    values = np.where(known, estimate.values, 0.0)
    return known & (np.abs(values) > allowed_error(values, tol, np.where(known, estimate.error, 0.0)))


def _all_small(estimate: LocalEstimate, known, tol: Tolerance) -> bool:
    return not _significant(estimate, known, tol).any()


def _missing_everywhere(returned, right: LocalEstimate, known, tol: Tolerance, name: str) -> Diagnosis | None:
    if np.any(np.abs(returned[known]) > tol.atol):  # zero within the tolerance, as the judge reads any value
        return None
    return Diagnosis(Kind.MISSING, f"the rule returns zeros for '{name}', whose gradient is not zero (largest |numeric| "
                                f"{_num(np.nanmax(np.abs(right.values[known])))})",
                     {"returned_none": False, "wrong": int(known.sum()), "total": int(known.sum())})


def _named_factors(args: Sequence, names: Sequence[str], output_shape) -> list[tuple[float, int | None, dict]]:
    """(factor, n, where n comes from) for the constants a rule plausibly gets wrong: -1, 2, 3, and n or 1/n for
    every axis length and size of the op's output and inputs (a mean where a sum belongs, a batch size twice)."""
    lengths: dict[int, dict] = {}
    shapes = ([("output", "the output", tuple(output_shape))] if output_shape is not None else []) + \
             [(names[j], f"'{names[j]}'", np.shape(a)) for j, a in enumerate(args)]
    for of, what, shape in shapes:
        for axis, n in enumerate(shape):
            if n > 1:
                lengths.setdefault(int(n), {"axis": axis, "of": of, "text": f"axis {axis} of {what}"})
        size = math.prod(shape)
        if len(shape) > 1 and size > 1:
            lengths.setdefault(int(size), {"axis": None, "of": of, "text": f"all elements of {what}"})
    factors: list[tuple[float, int | None, dict]] = []
    for n, where in sorted(lengths.items()):
        factors += [(1.0 / n, n, where), (float(n), n, where)]
    for n in SMALL_FACTORS:
        factors += [(float(n), None, {}), (1.0 / n, None, {})]
    factors = [(-1.0, None, {})] + factors + [(-f, n, where) for f, n, where in factors]
    return factors


def _scaled(returned, right: LocalEstimate, known, tol: Tolerance, args, names, output_shape,
            position: int) -> Diagnosis | None:
    """analytic = c · numeric everywhere, for one constant c."""
    informative = _significant(right, known, tol)
    if not informative.any():
        return None
    n = right.values[informative]
    c = float(np.dot(returned[informative], n) / np.dot(n, n))
    if not math.isfinite(c) or c == 0.0:
        return None

    def explains(factor: float) -> bool:
        return _fits(factor * right.values, abs(factor) * right.error, returned, tol, known)

    named = next(((f, m, where) for f, m, where in _named_factors(args, names, output_shape)
                  if math.isclose(f, c, rel_tol=0.05) and explains(f)), None)
    if named is None:
        if informative.sum() < 2 or not explains(c):  # one number is always some multiple of another
            return None
        named = (c, None, {})
    factor, length, where = named
    if factor == -1.0:
        return Diagnosis(Kind.SIGN, f"analytic = -numeric everywhere: the rule's result for '{names[position]}' has "
                                 "the wrong sign", {"factor": -1.0})
    numbers: dict = {"factor": factor}
    text = f"analytic = {_factor_text(factor, length)} × numeric everywhere"
    if length is not None:
        numbers.update(n=length, relation="1/n" if abs(factor) < 1 else "n", axis=where["axis"], of=where["of"])
        sign = "; and the sign is flipped" if factor < 0 else ""
        if abs(factor) < 1:
            text += f": a mean instead of a sum over {where['text']} (n = {length}), or a division by n too many{sign}"
        else:
            text += f": a sum instead of a mean over {where['text']} (n = {length}), or a missing division by n{sign}"
        if length in SMALL_FACTORS:
            text += f" (or a factor {length} of the rule's own formula)"
    return Diagnosis(Kind.SCALE, text, numbers)


def _factor_text(factor: float, length: int | None) -> str:
    if length is not None and abs(factor) < 1:
        return f"{'-' if factor < 0 else ''}1/{length}"
    return _num(factor)


def _transposed(returned, right: LocalEstimate, tol: Tolerance) -> Diagnosis | None:
    if returned.ndim < 2 or returned.shape[-1] != returned.shape[-2] or returned.shape[-1] < 2:
        return None
    flipped = LocalEstimate(np.swapaxes(right.values, -1, -2), np.swapaxes(right.error, -1, -2))
    if not _fits(flipped.values, flipped.error, returned, tol, flipped.known) or _all_small(flipped, flipped.known, tol):
        return None
    return Diagnosis(Kind.TRANSPOSE, "analytic = numericᵀ: the rule returns the transpose of the right gradient",
                     {"axes": [returned.ndim - 1, returned.ndim - 2]})


def _swapped(returned, numeric: Sequence[LocalEstimate | None], position: int, tol: Tolerance, names) -> Diagnosis | None:
    for j, other in enumerate(numeric):
        if j == position or other is None or other.values.shape != returned.shape:
            continue
        if _fits(other.values, other.error, returned, tol, other.known) and not _all_small(other, other.known, tol):
            return Diagnosis(Kind.SWAPPED, f"the gradient returned for argument {position} ('{names[position]}') is the "
                                        f"right gradient of argument {j} ('{names[j]}')",
                             {"argument": j, "argument_node": names[j]})
    return None


def _wrong_shape(returned, numeric: Sequence[LocalEstimate | None], position: int, tol: Tolerance,
                 names) -> Diagnosis:
    right = numeric[position]
    assert right is not None
    shape = right.values.shape
    axes = _broadcast_axes(returned.shape, shape)
    if axes is not None:
        summed = returned.sum(axis=axes, keepdims=True).reshape(-1) if axes else returned.reshape(-1)
        summed = summed.reshape(shape) if summed.size == right.values.size else None
        if summed is not None and _fits(right.values, right.error, summed, tol, right.known):
            return Diagnosis(Kind.UNREDUCED, f"the rule returns the broadcast shape {_shape(returned.shape)} for "
                                          f"'{names[position]}' of shape {_shape(shape)}: sum over axes {axes} "
                                          "before returning",
                             {"axes": list(axes), "returned_shape": list(returned.shape)})
    if returned.ndim >= 2 and returned.shape == shape[:-2] + (shape[-1], shape[-2]):
        if _fits(right.values, right.error, np.swapaxes(returned, -1, -2), tol, right.known):
            return Diagnosis(Kind.TRANSPOSE, f"the rule returns shape {_shape(returned.shape)} for '{names[position]}' "
                                          f"of shape {_shape(shape)}: the right gradient, transposed",
                             {"axes": [returned.ndim - 1, returned.ndim - 2], "returned_shape": list(returned.shape)})
    swapped = _swapped(returned, numeric, position, tol, names)
    if swapped is not None:
        return swapped
    return Diagnosis(Kind.UNKNOWN, f"the rule returns shape {_shape(returned.shape)} for '{names[position]}' of shape "
                                f"{_shape(shape)}, and no reduction, transpose or other argument's gradient explains it",
                     {"returned_shape": list(returned.shape)})


def _broadcast_axes(returned_shape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The axes of returned_shape that broadcasting an argument of this shape to it added (None: it is not
    such a broadcast): the leading extra axes and those where the argument has length 1."""
    if len(returned_shape) < len(shape):
        return None
    try:
        if np.broadcast_shapes(returned_shape, shape) != tuple(returned_shape):
            return None
    except ValueError:
        return None
    extra = len(returned_shape) - len(shape)
    return tuple(range(extra)) + tuple(extra + i for i, n in enumerate(shape) if n == 1 and returned_shape[extra + i] != 1)


def _region(returned, right: LocalEstimate, known, ok, tol: Tolerance, args, names) -> Diagnosis | None:
    """Wrong exactly where one of the op's inputs lies past a threshold (0: a sign), or inside an interval."""
    wrong = known & ~ok
    correct = known & ok
    if wrong.sum() < 2 or correct.sum() < 2:
        return None
    aligned = {}
    for k, arg in enumerate(args):
        if np.asarray(arg).dtype.kind not in "fiu":
            continue
        try:
            aligned[k] = np.broadcast_to(np.asarray(arg, dtype=np.float64), returned.shape)
        except ValueError:
            continue
    found = []
    for k, values in aligned.items():
        split = _threshold_split(values[known], wrong[known])
        if split is not None and _by_chance(split, int(wrong.sum()), int(known.sum()), len(aligned)) <= \
                (SIGN_CHANCE if _split_rank(split)[0] == 0 else REGION_CHANCE):
            found.append((_split_rank(split), k, split))
    if not found:
        return None
    _, k, (side, low, high) = min(found, key=lambda item: (item[0], item[1]))
    name = names[k]
    count, total = int(wrong.sum()), int(known.sum())
    if side == ">":
        where, numbers = f"{name} > {_num(low)}", {"threshold": low}
    elif side == "<":
        where, numbers = f"{name} < {_num(high)}", {"threshold": high}
    else:
        where, numbers = f"{_num(low)} < {name} < {_num(high)}", {"low": low, "high": high}
    sign = " (a sign: a branch)" if numbers.get("threshold") == 0.0 else ""
    there = _there(returned, right, wrong, tol)
    return Diagnosis(Kind.REGION, f"wrong only where {where}{sign}: {count} of {total} elements{there[0]}, right elsewhere",
                     {"input": k, "input_node": name, "side": side, **numbers, "wrong": count, "right": total - count,
                      "total": total, "there": there[1]})


def _by_chance(split: tuple[str, float, float], wrong: int, total: int, inputs: int) -> float:
    """How likely a set of ``wrong`` elements drawn at random from ``total`` would form such a split of one of
    ``inputs`` inputs: splits of this form in sorted order (2 one-sided, total - wrong - 1 interior) over
    C(total, wrong), the number of such sets."""
    splits = 2 if split[0] != "between" else total - wrong - 1
    return min(1.0, inputs * splits / math.comb(total, wrong))


def _threshold_split(values: np.ndarray, wrong: np.ndarray) -> tuple[str, float, float] | None:
    """('>', t, _) when wrong == values > t, ('<', _, t) when wrong == values < t, ('between', lo, hi) when
    wrong == lo < values < hi, with round thresholds inside the gaps; None when no such split exists."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], wrong[order]
    changes = np.flatnonzero(w[1:] != w[:-1])
    if len(changes) == 0 or len(changes) > 2:
        return None
    if np.any(v[changes] == v[changes + 1]):
        return None  # equal values on both sides: no threshold separates them
    # into the wrong set going up: wrong where x > t, t in [below, above); out of it: wrong where x < t, t in (below, above]
    cuts = [_round_between(float(v[c]), float(v[c + 1])) if w[c + 1] else -_round_between(-float(v[c + 1]), -float(v[c]))
            for c in changes]
    if len(changes) == 1:
        return (">", cuts[0], math.inf) if w[-1] else ("<", -math.inf, cuts[0])
    if not w[changes[0] + 1]:
        return None  # right in the middle, wrong at both ends: two thresholds of two kinds, not one region
    return ("between", cuts[0], cuts[1])


def _split_rank(split: tuple[str, float, float]) -> tuple[int, int]:
    """Simpler splits first: a sign, then a threshold, then an interval; rounder numbers first."""
    side, low, high = split
    cuts = [c for c in (low, high) if math.isfinite(c)]
    return (0 if cuts == [0.0] else 1 if side != "between" else 2, sum(_decimals(c) for c in cuts))


def _round_between(low: float, high: float) -> float:
    """The roundest number t with low <= t < high (0 when it lies there): the threshold a rule would write."""
    if low <= 0.0 < high:
        return 0.0
    middle = (low + high) / 2
    for decimals in range(-6, 16):
        step = 10.0 ** -decimals
        first, last = math.ceil(low / step), math.ceil(high / step) - 1
        if first <= last:  # the round numbers of this many decimals in the gap: the one nearest its middle
            nearest = min(max(round(middle / step), first), last)
            return round(nearest * step, max(decimals, 0))
    return low


def _decimals(value: float) -> int:
    text = f"{value:.15g}"
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


def _there(returned, right: LocalEstimate, wrong, tol: Tolerance) -> tuple[str, str]:
    """What the rule returns on the wrong region: zero, a flipped sign, or other values."""
    if np.all(np.abs(returned[wrong]) <= tol.atol):
        return " (the gradient is zero there)", "zero"
    region = right.known & wrong
    if _fits(-right.values, right.error, returned, tol, region):
        return " (the sign is flipped there)", "flipped"
    return "", "other"


def _missing_somewhere(returned, known, ok, tol: Tolerance) -> Diagnosis | None:
    wrong = known & ~ok
    if np.any(np.abs(returned[wrong]) > tol.atol):
        return None
    count, total = int(wrong.sum()), int(known.sum())
    return Diagnosis(Kind.MISSING, f"the rule returns zero at {count} of {total} elements where the right gradient is "
                                "not, and the right value elsewhere",
                     {"returned_none": False, "wrong": count, "total": total})


def _unknown(returned, right: LocalEstimate, known, ok, tol: Tolerance) -> Diagnosis:
    wrong = known & ~ok
    values = np.where(known, right.values, 0.0)
    excess = np.where(wrong, np.abs(returned - values) - allowed_error(values, tol), -np.inf)
    excess = np.where(np.isnan(excess), np.inf, excess)
    flat = int(np.argmax(excess))
    index = [int(i) for i in np.unravel_index(flat, returned.shape)] if returned.ndim else []
    analytic, numeric = float(returned.reshape(-1)[flat]), float(values.reshape(-1)[flat])
    count, total = int(wrong.sum()), int(known.sum())
    return Diagnosis(Kind.UNKNOWN, f"no simple relation explains it; worst at [{', '.join(map(str, index))}]: analytic "
                                   f"{_num(analytic)}, numeric {_num(numeric)} ({count} of {total} elements wrong)",
                     {"worst_index": index, "worst_analytic": analytic, "worst_numeric": numeric, "wrong": count,
                      "total": total})


def _num(value: float) -> str:
    return f"{value:.6g}"


def _shape(shape) -> str:
    return str(tuple(int(n) for n in shape))
