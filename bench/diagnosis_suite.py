"""Planted-bug suite for the diagnosis (issue 13): how many planted bugs get their specific kind, and the rate of
`unknown`.  Every base op (right vjp) is run as is and with each corruption that applies to it, through
`gradcheck run --format json`; a case counts as caught when the spec fails, blamed when a suspect names the op
and the corrupted argument, and diagnosed when that suspect's diagnosis has the planted kind.

    PYTHONPATH=. python bench/diagnosis_suite.py [--seeds 3]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

OPS = '''
import numpy as np


def leaky(x):
    return np.where(x > 0, 1.0, 0.1)


BASES = {
    # name: (forward, right vjp, argument shapes)
    "affine": (lambda x, w, b: x @ w + b, lambda g, x, w, b: (g @ w.T, x.T @ g, g.sum(axis=0)),
               [(6, 4), (4, 4), (4,)]),
    "matmul": (lambda a, b: a @ b, lambda g, a, b: (g @ b.T, a.T @ g), [(3, 3), (3, 3)]),
    "mul": (lambda a, b: a * b, lambda g, a, b: (g * b, g * a), [(8,), (8,)]),
    "bias_add": (lambda x, b: x + b, lambda g, x, b: (g, g.sum(axis=0)), [(5, 3), (3,)]),
    "scale_rows": (lambda x, s: x * s[:, None], lambda g, x, s: (g * s[:, None], (g * x).sum(axis=1)),
                   [(5, 3), (5,)]),
    "tanh": (lambda x: np.tanh(x), lambda g, x: (g * (1 - np.tanh(x) ** 2),), [(30,)]),
    "leaky_relu": (lambda x: x * leaky(x), lambda g, x: (g * leaky(x),), [(30,)]),
    "huber": (lambda x: np.where(np.abs(x) <= 1, 0.5 * x * x, np.abs(x) - 0.5),
              lambda g, x: (g * np.clip(x, -1, 1),), [(30,)]),
    "square": (lambda x: x * x, lambda g, x: (2 * g * x,), [(4, 5)]),
    "mean_sq": (lambda x: np.mean(x * x), lambda g, x: (g * 2 * x / x.size,), [(6, 2)]),
    "softplus": (lambda x: np.logaddexp(0, x), lambda g, x: (g / (1 + np.exp(-x)),), [(4, 4)]),
    "gram": (lambda a: a @ a.T, lambda g, a: ((g + g.T) @ a,), [(3, 3)]),
}


def corrupt(kind, grads, position, args, g):
    grads = list(grads)
    x = grads[position]
    if kind == "scale":
        grads[position] = x / np.shape(g)[0] if np.ndim(g) and np.shape(g)[0] > 1 else x * 0.5
    elif kind == "sign":
        grads[position] = -x
    elif kind == "transpose":
        grads[position] = np.swapaxes(x, -1, -2).copy()
    elif kind == "unreduced":
        grads[position] = np.broadcast_to(g, np.broadcast_shapes(np.shape(g), np.shape(x))).copy()
    elif kind == "swapped":
        grads[position] = grads[1 - position]
    elif kind == "region":
        grads[position] = np.where(args[position] > 0.5, 2 * x + 0.1, x)
    elif kind == "missing":
        grads[position] = None
    elif kind == "zeros":
        grads[position] = np.zeros_like(x)
    elif kind == "unknown":
        grads[position] = x + 0.3 * np.sin(3 * args[position]) + 0.1
    return tuple(grads)


def make(base, kind=None, position=0):
    forward, rule, _ = BASES[base]

    class Op:
        def forward(self, *args):
            return forward(*args)

        def vjp(self, g, out, *args):
            grads = rule(g, *args)
            return grads if kind is None else corrupt(kind, grads, position, args, g)

    Op.__name__ = f"{base}_{kind}_{position}"
    return Op
'''


def applicable(base: str, shapes: list[tuple[int, ...]], kind: str) -> list[int]:
    """The argument positions a corruption of this kind makes a real, recognisable bug at."""
    positions = range(len(shapes))
    if kind == "transpose":
        return [p for p in positions if len(shapes[p]) >= 2 and shapes[p][-1] == shapes[p][-2]]
    if kind == "unreduced":
        return [p for p in positions if len(shapes[p]) == 1 and base in ("affine", "bias_add")]
    if kind == "swapped":
        return [p for p in positions if len(shapes) == 2 and shapes[0] == shapes[1] and base == "mul"]
    if kind == "region":
        return [p for p in positions if base in ("tanh", "leaky_relu", "huber", "softplus", "square", "mul")]
    return list(positions)


EXPECTED = {"zeros": "missing", "missing": "missing"}
KINDS = ("scale", "sign", "transpose", "unreduced", "swapped", "region", "missing", "zeros", "unknown")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    options = parser.parse_args()
    namespace: dict = {}
    exec(OPS, namespace)  # noqa: S102 -- the suite's own text, to read the bases' shapes
    cases = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        lines = [OPS]
        for base, (_, _, shapes) in namespace["BASES"].items():
            variants = [(None, None)] + [(kind, p) for kind in KINDS for p in applicable(base, shapes, kind)]
            for kind, position in variants:
                name = f"{base}_{kind}_{position}"
                lines.append(f"{name} = make({base!r}, {kind!r}, {position!r})")
                letters = "abcdefgh"[: len(shapes)]
                for seed in range(options.seeds):
                    inputs = "\n".join(f"  {letter}: {{shape: {list(shape)}, init: normal}}"
                                       for letter, shape in zip(letters, shapes, strict=True))
                    spec = root / f"{name}_s{seed}.yaml"
                    spec.write_text(f'seed: {seed}\nops: {{op: "suite_ops:{name}"}}\ninputs:\n{inputs}\n'
                                    f'nodes:\n  y: op({", ".join(letters)})\n  loss: sum(y * y)\n')
                    cases.append((spec.stem, base, kind, position))
        (root / "suite_ops.py").write_text("\n".join(lines) + "\n")
        run = subprocess.run([sys.executable, "-m", "gradcheck", "run", str(root), "--format", "json"],
                             capture_output=True, text=True, check=False)
        report = {Path(s["path"]).stem: s for s in json.loads(run.stdout)["specs"]}
    tally: Counter = Counter()
    kinds: Counter = Counter()
    misses = []
    for stem, _base, kind, position in cases:
        spec = report[stem]
        if kind is None:
            tally["correct"] += 1
            tally["correct_clean"] += spec["status"] == "pass" and not spec["suspects"]
            continue
        tally["planted"] += 1
        caught = spec["status"] == "fail"
        blamed = [s for s in spec["suspects"] if s["node"] == "y" and s["argument"] == position]
        diagnosis = (blamed[0]["diagnosis"] or {}).get("kind") if blamed else None
        expected = EXPECTED.get(kind, kind)
        tally["caught"] += caught
        tally["blamed"] += bool(blamed)
        tally["right_kind"] += diagnosis == expected
        kinds[(kind, diagnosis)] += 1
        if diagnosis is not None and diagnosis != "unknown":
            tally["specific"] += 1
        if diagnosis == "unknown":
            tally["unknown"] += 1
        if diagnosis != expected:
            misses.append((stem, expected, diagnosis))
    planted = tally["planted"]
    print(f"correct ops: {tally['correct']}, passed with no suspect: {tally['correct_clean']}")
    print(f"planted bugs: {planted}; caught {tally['caught']}, blamed on op and argument {tally['blamed']}, "
          f"right kind {tally['right_kind']}")
    unknown_shaped = sum(count for (kind, _), count in kinds.items() if kind == "unknown")
    print(f"specific kind {tally['specific']} ({tally['specific'] / planted:.0%}), unknown {tally['unknown']} "
          f"({tally['unknown'] / planted:.0%}); planted to fit no kind: {unknown_shaped}")
    for (kind, diagnosis), count in sorted(kinds.items(), key=str):
        print(f"  planted {kind:<10} -> {diagnosis}: {count}")
    for miss in misses:
        print("  miss:", *miss)


if __name__ == "__main__":
    main()
