"""Speed of checking one small op: gradcheck.check_op vs torch.autograd.gradcheck on the same op, same run.

    python bench/bench_check_op.py [--size 4x5] [--repeat 5]

The op is Swish as a torch.autograd.Function (both checkers get the very same Function) and, for
gradcheck, also as a numpy op object.  Also times the start-up of a spec without framework ops
(`gradcheck run` in a fresh interpreter), which must not import torch or jax.  Not part of the test suite.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import gradcheck

ROOT = Path(__file__).resolve().parent.parent


class NumpySwish:
    def forward(self, x):
        return x / (1 + np.exp(-x))

    def vjp(self, g, out, x):
        s = 1 / (1 + np.exp(-x))
        return (g * (s + x * s * (1 - s)),)


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="4x5")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.size.split("x"))
    x = np.random.default_rng(0).normal(size=shape)
    rows = [("gradcheck.check_op(numpy Swish)", best_of(args.repeat, lambda: gradcheck.check_op(NumpySwish(), x)))]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        class Swish(torch.autograd.Function):
            @staticmethod
            def forward(ctx, t):
                s = torch.sigmoid(t)
                ctx.save_for_backward(t, s)
                return t * s

            @staticmethod
            def backward(ctx, g):
                t, s = ctx.saved_tensors
                return g * (s + t * s * (1 - s))

        tensor = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        assert gradcheck.check_op(Swish, x).ok and torch.autograd.gradcheck(Swish.apply, (tensor,))
        rows.append(("gradcheck.check_op(torch Swish)", best_of(args.repeat, lambda: gradcheck.check_op(Swish, x))))
        rows.append(("torch.autograd.gradcheck(Swish.apply)",
                     best_of(args.repeat, lambda: torch.autograd.gradcheck(Swish.apply, (tensor,)))))
    else:
        rows.append(("torch.autograd.gradcheck", float("nan")))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    spec = ROOT / "specs" / "conventions" / "pair_affine.yaml"
    command = [sys.executable, "-c", "import sys; from gradcheck.cli import main\n"
               "try:\n    main(['run', sys.argv[1], '-q'])\nexcept SystemExit:\n    pass\n"
               "assert 'torch' not in sys.modules and 'jax' not in sys.modules", str(spec)]
    rows.append(("start-up + check of a spec without framework ops",
                 best_of(args.repeat, lambda: subprocess.run(command, env=env, check=True, capture_output=True))))
    if torch is not None:
        rows.append(("for scale: python -c 'import torch'",
                     best_of(args.repeat, lambda: subprocess.run([sys.executable, "-c", "import torch"], check=True))))
    print(f"op input shape {shape}, best of {args.repeat}; torch {getattr(torch, '__version__', 'not installed')}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    for label, seconds in rows:
        print(f"  {label:<52} {seconds * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
