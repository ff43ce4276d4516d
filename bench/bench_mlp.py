"""Speed of a full gradient check on an MLP: gradcheck vs torch.autograd.gradcheck.

    python bench/bench_mlp.py [--hidden 256] [--repeat 3]

Prints one table; ratios are from the same run on the same machine. torch is optional: when it
is not installed the torch rows say so. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from gradcheck import CheckOptions, check_spec


def mlp_spec(folder: Path, batch: int, n_in: int, hidden: int, n_out: int) -> Path:
    path = folder / "mlp.yaml"
    path.write_text(textwrap.dedent(f"""
        seed: 0
        inputs:
          X: {{shape: [{batch}, {n_in}], init: normal, requires_grad: false}}
          Y: {{shape: [{batch}, {n_out}], init: normal, requires_grad: false}}
          W1: {{shape: [{n_in}, {hidden}], init: normal, std: 0.1}}
          b1: {{shape: [{hidden}], init: zeros}}
          W2: {{shape: [{hidden}, {n_out}], init: normal, std: 0.1}}
          b2: {{shape: [{n_out}], init: zeros}}
        nodes:
          h: tanh(X @ W1 + b1)
          pred: h @ W2 + b2
          loss: mse(pred, Y)
    """))
    return path


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def torch_rows(spec_path: Path, repeat: int):
    try:
        import torch
    except ImportError:
        return [("torch.autograd.gradcheck", None, "torch is not installed (pip install torch to compare)")]
    from gradcheck.spec import load_spec

    spec = load_spec(spec_path)
    values = {name: torch.tensor(entry.value, dtype=torch.float64, requires_grad=entry.requires_grad)
              for name, entry in spec.inputs.items()}
    params = [values[k] for k in ("W1", "b1", "W2", "b2")]

    def loss(W1, b1, W2, b2):
        h = torch.tanh(values["X"] @ W1 + b1)
        return torch.mean((h @ W2 + b2 - values["Y"]) ** 2)

    rows = []
    for fast in (False, True):
        seconds = best_of(repeat, lambda: torch.autograd.gradcheck(loss, params, fast_mode=fast))
        rows.append((f"torch.autograd.gradcheck (fast_mode={fast}, inputs only)", seconds, f"torch {torch.__version__}"))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--outputs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = mlp_spec(Path(folder), args.batch, args.inputs, args.hidden, args.outputs)
        n_params = args.inputs * args.hidden + args.hidden + args.hidden * args.outputs + args.outputs
        rows = []
        for mode in ("full", "auto", "fast"):
            result = {}
            seconds = best_of(args.repeat, lambda: result.setdefault("r", check_spec(path, options=CheckOptions(mode=mode))))
            r = result["r"]
            rows.append((f"gradcheck --mode {mode} (every node)", seconds,
                         f"{r.status}, {len(r.nodes)} nodes, {r.evaluations:,} downstream evaluations"))
        rows.extend(torch_rows(path, args.repeat))
    torch_full = next((seconds for what, seconds, _ in rows if "fast_mode=False" in what and seconds), None)
    reference, label = (torch_full, "torch full") if torch_full else (rows[0][1], "gradcheck full")
    print(f"MLP {args.inputs}-{args.hidden}-{args.outputs}, batch {args.batch}: {n_params:,} parameters, "
          f"best of {args.repeat}")
    print(f"{'what':62} {'seconds':>9} {'speed-up vs ' + label:>24}  notes")
    for what, seconds, notes in rows:
        if seconds is None:
            print(f"{what:62} {'-':>9} {'-':>24}  {notes}")
        else:
            print(f"{what:62} {seconds:9.3f} {reference / seconds:23.1f}x  {notes}")

if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
