"""How close each --method's numeric gradient comes to the analytic one on every shipped spec.

For each spec (specs/*.yaml, specs/nn/*.yaml) and method, in --mode full: the maximum over nodes and elements
of |analytic - numeric| / max(1, |analytic|), elements at kinks left out (a one-sided slope is not a
derivative), against the float64 floor of the method (the error its formula cannot go below in double
precision on a well-scaled smooth function).  A method meets the target on a spec when it is within 10x
of its floor.

    PYTHONPATH=$PWD python bench/accuracy.py [--methods central,richardson] [specs ...]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", type=Path, help="specs to measure (default: every shipped spec)")
    parser.add_argument("--methods", default=",".join(FLOORS), help="comma-separated methods")
    args = parser.parse_args(argv)
    methods = args.methods.split(",")
    specs = args.specs or shipped_specs()
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
