"""How close each --method's numeric gradient comes to the analytic one on every shipped spec.

For each spec (specs/*.yaml, specs/nn/*.yaml) and method, in --mode full: the maximum over nodes and elements
of |analytic - numeric| / max(1, |analytic|), elements at kinks left out (a one-sided slope is not a
derivative), against the float64 floor of the method (the error its formula cannot go below in double
precision on a well-scaled smooth function).  A method meets the target on a spec when it is within 10x
of its floor.

With --bounds, each numeric value is held to its own error bound instead: |numeric - exact| <= numeric_error for
every element (kinks left out), the exact gradient from gradcheck's reverse-mode rules evaluated in long double
(80-bit on x86: 2^11 times float64's precision) on the spec's inputs, which every shipped spec's check passes.

    PYTHONPATH=$PWD python bench/accuracy.py [--methods central,richardson] [--bounds] [specs ...]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradcheck import check  # noqa: E402
from gradcheck.engine import output_projection  # noqa: E402
from gradcheck.graph import build_graph  # noqa: E402
from gradcheck.pipeline import load  # noqa: E402
from gradcheck.results import Status  # noqa: E402

FLOORS = {"forward": 1.3e-8, "central": 1.6e-11, "five-point": 1.0e-13, "richardson": 4.5e-14, "complex-step": 1e-15}
WITHIN = 10.0


def shipped_specs() -> list[Path]:
    return sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs" / "nn").glob("*.yaml"))


def worst_error(path: Path, method: str) -> tuple[float, str, str, int]:
    """(max relative error, node it is at, the spec's status, objective evaluations) of one spec under one method."""
    result = check(path, method=method, mode="full")
    worst, where = 0.0, "-"
    for node in result.nodes:
        if node.analytic is None or node.numeric is None or not np.size(node.analytic):
            continue
        analytic = np.asarray(node.analytic, dtype=np.float64)
        error = np.abs(analytic - np.asarray(node.numeric, dtype=np.float64)) / np.maximum(1.0, np.abs(analytic))
        for element in node.elements_of(Status.KINK):
            error[element.index] = 0.0
        error = error[np.isfinite(error)]
        if error.size and float(error.max()) > worst:
            worst, where = float(error.max()), node.name
    status = str(result.status)
    if any("Richardson extrapolation used behind it" in note for note in result.notes):
        status += ", Richardson behind a non-analytic op"  # complex-step's fallback: it is held to its own floor still
    return worst, where, status, result.evaluations


def extended_gradients(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """d objective / d node for every node that gets one, by the forward and vjp rules of the spec's ops in long
    double (the projection of a non-scalar output is the check's own), and the rules that returned a lower
    precision (their nodes' references are then only that precise)."""
    graph = build_graph(load(path))
    extended = np.longdouble
    values, lowered = [], []
    for node in graph.nodes:
        if node.kind != "op":
            leaf = np.asarray(node.leaf_value)
            values.append(leaf.astype(extended) if leaf.dtype.kind == "f" else leaf)
            continue
        out = np.asarray(node.op_info.impl.forward(*[values[a] for a in node.args], **node.params))
        if out.dtype.kind == "f" and out.dtype != extended:
            lowered.append(f"{node.name} forward ({out.dtype})")
        values.append(out)
    projection = output_projection(graph, np.asarray(values[graph.output], dtype=np.float64))
    adjoints: list[np.ndarray | None] = [None] * len(graph.nodes)
    adjoints[graph.output] = np.ones((), extended) if projection is None else projection.astype(extended)
    for node in reversed(graph.nodes[: graph.output + 1]):
        g = adjoints[node.index]
        if node.kind != "op" or g is None:
            continue
        grads = node.op_info.impl.vjp(g, values[node.index], *[values[a] for a in node.args], **node.params)
        for arg, grad in zip(node.args, grads if isinstance(grads, (tuple, list)) else (grads,), strict=True):
            if grad is None or np.asarray(values[arg]).dtype.kind != "f":
                continue
            grad = np.asarray(grad)
            if grad.dtype != extended:
                lowered.append(f"{node.name} vjp to {graph.nodes[arg].name} ({grad.dtype})")
            adjoints[arg] = grad if adjoints[arg] is None else adjoints[arg] + grad
    return {node.name: adjoints[node.index] for node in graph.nodes if adjoints[node.index] is not None}, lowered


def beyond_bounds(path: Path, method: str) -> tuple[int, int, float, str]:
    """(elements compared, elements whose |numeric - exact| exceeds their numeric_error, the largest ratio of
    the two, where it is) for one spec under one method in --mode full; kinks left out."""
    exact, _ = extended_gradients(path)
    result = check(path, method=method, mode="full")
    compared, beyond, worst, where = 0, 0, 0.0, "-"
    for node in result.nodes:
        if node.numeric is None or node.numeric_error is None or node.name not in exact:
            continue
        shape = np.shape(node.numeric)
        numeric = np.asarray(node.numeric, dtype=np.longdouble).reshape(-1)
        bound = np.asarray(node.numeric_error, dtype=np.float64).reshape(-1)
        error = np.abs(numeric - np.broadcast_to(exact[node.name], shape).reshape(-1)).astype(np.float64)
        judged = np.isfinite(error)
        for element in node.elements_of(Status.KINK):
            judged[np.ravel_multi_index(element.index, shape) if shape else 0] = False
        over = judged & (error > bound)
        compared, beyond = compared + int(judged.sum()), beyond + int(over.sum())
        if over.any():
            k = int(np.argmax(np.where(over, error / np.maximum(bound, 1e-300), 0.0)))
            if error[k] / max(bound[k], 1e-300) > worst:
                worst, where = error[k] / max(bound[k], 1e-300), f"{node.name}[{k}]"
    return compared, beyond, worst, where


def bounds_table(specs: list[Path], methods: list[str]) -> None:
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        print("long double is float64 on this machine: the reference is no more precise than the estimates")
    print(f"{'spec':<26} {'method':<13} {'elements':>8} {'beyond bound':>12} {'worst error/bound':>17}  where")
    totals = {method: [0, 0] for method in methods}
    for path in specs:
        try:
            _, lowered = extended_gradients(path)
        except Exception as error:  # a spec this environment cannot load (its framework is not installed)
            print(f"{path.name:<26} skipped: {type(error).__name__}: {str(error).splitlines()[0][:80]}")
            continue
        for method in methods:
            compared, beyond, worst, where = beyond_bounds(path, method)
            totals[method][0] += compared
            totals[method][1] += beyond
            print(f"{path.name:<26} {method:<13} {compared:>8} {beyond:>12} {worst:>17.3g}  {where}"
                  + (f"  (reference lowered by {', '.join(lowered)})" if lowered else ""))
    print("beyond their bound: " + ", ".join(f"{m} {totals[m][1]} of {totals[m][0]}" for m in methods))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", type=Path, help="specs to measure (default: every shipped spec)")
    parser.add_argument("--methods", default=",".join(FLOORS), help="comma-separated methods")
    parser.add_argument("--bounds", action="store_true", help="hold every numeric value to its own error bound")
    args = parser.parse_args(argv)
    methods = args.methods.split(",")
    specs = args.specs or shipped_specs()
    if args.bounds:
        bounds_table(args.specs or sorted((ROOT / "specs").rglob("*.yaml")), methods)
        return 0
    met = dict.fromkeys(methods, 0)
    print(f"{'spec':<26} {'method':<13} {'max |a-n|/max(1,|a|)':>21} {'floor':>8} {'within 10x':>10}  "
          "node  (status, evaluations, s)")
    for path in specs:
        for method in methods:
            started = time.perf_counter()
            worst, where, status, evaluations = worst_error(path, method)
            good = worst <= WITHIN * FLOORS[method]
            met[method] += good
            print(f"{path.name:<26} {method:<13} {worst:>21.2e} {FLOORS[method]:>8.1e} {'yes' if good else 'NO':>10}  "
                  f"{where}  ({status}, {evaluations}, {time.perf_counter() - started:.2f})")
    print("within 10x of the floor: " + ", ".join(f"{m} {met[m]}/{len(specs)}" for m in methods))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
