"""Issue 8's held-out battery: false passes, false alarms and kinks of other ops, shapes, offsets, magnitudes,
conventions, precisions, modes and methods than tests/test_verdicts.py and tests/test_kinks.py, each beside its
correct twin, judged as the issue will judge them: ``gradcheck run --format json`` (in process), its exit code,
the statuses of nodes (kinks with and without ``--strict``) and the ops named in ``suspects``.

Every expectation comes from the issue's rules and closed forms (the planted fault, the one-sided slopes of the
function at the point), never from gradcheck's output.  The custom ops are in tests/data/heldout/heldout_ops.py.
"""
from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradcheck.cli import main

OPS = Path(__file__).resolve().parent / "data" / "heldout" / "heldout_ops.py"


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    spec: str                          # YAML; custom ops are "heldout_ops:Name"
    code: int                          # exit code of the plain run
    options: tuple[str, ...] = ()
    nodes: dict = field(default_factory=dict)        # node -> status, or a tuple of acceptable statuses
    suspects: tuple | None = ()        # (op, argument) pairs, argument None for "any"; None: not asserted
    message: str = ""                  # words the first suspect's message holds
    strict: int | None = None          # exit code with --strict added
    slopes: tuple | None = None        # (node, index, (right, left)) of a kink element, from the closed form
    worst_index: tuple | None = None   # (node, index) of the element that must be found
    numeric_error: tuple | None = None  # (node, bound): every element's numeric error stays below it (--values)
    output: float | None = None        # the output's value, from the closed form
    gap: str = ""                      # an open gap: the case fails today (xfail, strict), and why


def ops(**named: str) -> str:
    return "ops: {" + ", ".join(f'{k}: "heldout_ops:{v}"' for k, v in named.items()) + "}\n"


PAIR = '{forward: "heldout_ops:scale_forward", backward: "heldout_ops:%s"}'
LAYER = '{layer: "heldout_ops:%s", params: [W, b], store: parameters, grads: gradients}'
LOSS = '{forward: "heldout_ops:SquaredError.loss", gradient: "heldout_ops:SquaredError.grad", wrt: pred}'
SCALE_INPUTS = "inputs: {x: {shape: [4, 3], init: normal}, w: {shape: [3], init: normal}, b: {shape: [3], init: normal}}\n"
DENSE_INPUTS = "inputs: {X: {shape: [3, 2], init: normal}, W: {shape: [2, 4], init: normal}, b: {shape: [4], init: normal}}\n"
BIG = "inputs: {x: {shape: [60, 100], init: normal}}\n"          # 6000 elements; the fault sits at [17, 42]


def twins(kind: str, name: str, wrong: str, right: str, spec: str, *, code: int = 1, right_code: int = 0,
          options: tuple[str, ...] = (), suspects: tuple = (), message: str = "", nodes: dict | None = None,
          right_nodes: dict | None = None, worst_index: tuple | None = None,
          numeric_error: tuple | None = None, output: float | None = None) -> list[Case]:
    """A planted fault (op ``wrong``) and its correct twin (op ``right``) in the same spec ({op} in it)."""
    return [Case(f"{name}-wrong", kind, spec.replace("{op}", wrong), code, options, nodes or {}, suspects, message,
                 worst_index=worst_index, numeric_error=numeric_error, output=output),
            Case(f"{name}-right", kind, spec.replace("{op}", right), right_code, options, right_nodes or {}, (),
                 numeric_error=numeric_error)]


CASES: list[Case] = [
    # ------------------------------------------------------------------ forgotten gradients
    *twins("forgotten gradient", "bilinear-none-for-w", "BilinearForgetsW", "Bilinear",
           "inputs: {x: [0.5, -1.2, 2.0], w: [1.5, -0.7, 0.3]}\n" + 'ops: {f: "heldout_ops:{op}"}\n'
           "nodes: {y: 'sum(f(x, w) * x)'}\n", suspects=(("f", 1),), message="forgotten", nodes={"w": "fail"},
           right_nodes={"w": "pass", "x": "pass"}),
    *twins("forgotten gradient", "pair-none-for-bias", "scale_backward_no_bias", "scale_backward",
           SCALE_INPUTS + "ops: {sc: " + PAIR.replace("%s", "{op}") + "}\n" + "nodes: {y: 'sum(sc(x, w, b) ** 2)'}\n",
           suspects=(("sc", 2),), message="forgotten", nodes={"b": "fail", "x": "pass", "w": "pass"}),
    *twins("forgotten gradient", "layer-returns-nothing-for-X", "AffineForgetsX", "Affine",
           DENSE_INPUTS + "ops: {dense: " + LAYER.replace("%s", "{op}") + "}\n"
           "nodes: {h: 'dense(X, W, b)', loss: 'sum(tanh(h))'}\n",
           suspects=(("dense", 0),), nodes={"X": "fail", "W": "pass", "b": "pass"}),
    *twins("forgotten gradient", "one-input-returns-none", "CubeReturnsNothing", "Cube",
           "inputs: {x: [0.4, -1.5, 0.9]}\n" + 'ops: {c: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(sin(c(x)))'}\n",
           suspects=(("c", 0),), nodes={"x": "fail"}),
    Case("loss-gradient-only-for-pred-target-requires-grad", "forgotten gradient",
         "inputs: {pred: [0.2, 1.4, -0.3], target: [0.0, 1.0, 1.0]}\n" + "ops: {se: " + LOSS + "}\n"
         "nodes: {loss: 'se(pred, target)'}\n", 1, nodes={"target": "fail", "pred": "pass"},
         suspects=(("se", 1),), message="forgotten"),
    Case("loss-gradient-only-for-pred-target-is-data", "forgotten gradient",
         "inputs: {pred: [0.2, 1.4, -0.3], target: {value: [0.0, 1.0, 1.0], requires_grad: false}}\n"
         "ops: {se: " + LOSS + "}\n" + "nodes: {loss: 'se(pred, target)'}\n", 0,
         nodes={"target": "skip", "pred": "pass"}),
    Case("none-for-an-argument-the-output-ignores", "forgotten gradient",
         "inputs: {x: [0.5, -1.2], w: [2.0, 3.0]}\n" + ops(f="UsesOnlyX") + "nodes: {y: 'sum(f(x, w)) + sum(w * w)'}\n",
         0, nodes={"w": "pass", "x": "pass"}),
    Case("integer-ids-are-data", "forgotten gradient",
         "inputs: {table: {shape: [5, 3], init: normal}, ids: {value: [0, 3, 3, 1], dtype: int64}}\n"
         + ops(gather="Gather") + "nodes: {y: 'sum(tanh(gather(table, ids)))'}\n", 0, nodes={"table": "pass"}),

    # ------------------------------------------------------------------ bugs the graph's own cotangent cannot see
    *twins("invisible to the graph's cotangent", "centre-drops-mean-with-jvp", "CentreDropsMean", "Centre",
           "inputs: {x: {shape: [3, 5], init: normal}}\n" + 'ops: {c: "heldout_ops:{op}"}\n'
           "nodes: {u: 'c(x)', y: 'sum(u * u) / 2'}\n", suspects=(("c", 0),)),
    *twins("invisible to the graph's cotangent", "centre-drops-mean-no-jvp", "CentreDropsMeanNoJvp", "Centre",
           "inputs: {x: {shape: [5, 2], init: normal}}\n" + 'ops: {c: "heldout_ops:{op}"}\n'
           "nodes: {u: 'c(x)', y: 'sum(u * u) / 2'}\n", suspects=(("c", 0),)),
    *twins("invisible to the graph's cotangent", "centre-drops-mean-fast", "CentreDropsMean", "Centre",
           "inputs: {x: {shape: [4, 8], init: normal}}\n" + 'ops: {c: "heldout_ops:{op}"}\n'
           "nodes: {u: 'c(x)', y: 'sum(u * u) / 2'}\n", options=("--mode", "fast"), suspects=(("c", 0),)),
    # g = v is orthogonal to n(x) row by row ([3, 4] . [4, -3] = 0, [1, -2] . [2, 1] = 0): the projection is 0
    *twins("invisible to the graph's cotangent", "normalise-orthogonal-cotangent", "NormaliseDropsProjection",
           "Normalise", "inputs: {x: [[3.0, 4.0], [1.0, -2.0]], v: {value: [[4.0, -3.0], [2.0, 1.0]], "
           "requires_grad: false}}\n" + 'ops: {n: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(n(x) * v)'}\n",
           suspects=(("n", 0),)),

    # ------------------------------------------------------------------ in place
    *twins("in place", "forward-halves-its-input", "SinScalesInput", "Sin",
           "inputs: {x: [0.3, -1.1, 2.0], z: [1.5, 0.5, -2.0]}\n" + 'ops: {f: "heldout_ops:{op}"}\n'
           "nodes: {y: 'sum(f(x)) + sum(x * z)'}\n", suspects=(("f", 0),), message="in place",
           nodes={"z": "pass"}, right_nodes={"z": "pass", "x": "pass"},
           # mul still sees the x of the spec: sin(0.15) + sin(-0.55) + sin(1) + (0.45 - 0.55 - 4)
           output=math.sin(0.15) + math.sin(-0.55) + math.sin(1.0) - 4.1),
    *twins("in place", "forward-relu-out-equals-x", "ReluInPlace", "StepRelu",
           "inputs: {x: [0.5, -1.0, 2.0, -0.3]}\n" + 'ops: {f: "heldout_ops:{op}"}\n'
           "nodes: {y: 'sum(f(x) * x)'}\n", suspects=(("f", 0),), message="in place"),
    *twins("in place", "vjp-doubles-g", "CubeDoublesG", "Cube",
           "inputs: {x: [0.4, -1.5, 0.9]}\n" + 'ops: {c: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(tanh(c(x)) * x)'}\n",
           suspects=(("c", 0),), message="in place"),
    *twins("in place", "vjp-squares-its-input", "CubeSquaresInput", "Cube",
           "inputs: {x: [0.4, -1.5, 0.9]}\n" + 'ops: {c: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(c(x) * x)'}\n",
           suspects=(("c", 0),), message="in place"),
    *twins("in place", "pair-backward-scales-cached-input", "scale_backward_mutates_cache", "scale_backward",
           SCALE_INPUTS + "ops: {sc: " + PAIR.replace("%s", "{op}") + "}\n" + "nodes: {y: 'sum(sc(x, w, b) * x)'}\n",
           suspects=(("sc", None),), message="in place", nodes={"y/sc#1": "pass"}),   # its own node stays intact
    *twins("in place", "pair-backward-doubles-dout", "scale_backward_mutates_dout", "scale_backward",
           SCALE_INPUTS + "ops: {sc: " + PAIR.replace("%s", "{op}") + "}\n" + "nodes: {y: 'sum(sc(x, w, b) * x)'}\n",
           suspects=(("sc", None),), message="in place"),
    *twins("in place", "layer-backward-shifts-cached-input", "AffineScalesCachedX", "Affine",
           DENSE_INPUTS + "ops: {dense: " + LAYER.replace("%s", "{op}") + "}\n"
           "nodes: {h: 'dense(X, W, b)', loss: 'sum(tanh(h) * h)'}\n", suspects=(("dense", None),),
           message="in place"),
    *twins("in place", "vjp-squares-the-cached-output", "TanhSquaresCachedOut", "TanhCachesOut",
           "inputs: {x: [0.4, -1.5, 0.9]}\n" + 'ops: {t: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(t(x) * x)'}\n",
           suspects=(("t", None),), message="in place, an array it kept from its forward"),

    # the second use site's g *= 2 poisons the first's cotangent: the op is named, not the built-in mul beside it
    *twins("in place", "vjp-doubles-g-at-two-use-sites", "CubeDoublesG", "Cube",
           "inputs: {x: [0.4, -1.5, 0.9]}\n" + 'ops: {c: "heldout_ops:{op}"}\n'
           "nodes: {a: 'c(x)', y: 'sum(c(a * 0.5) * x)'}\n", suspects=(("c", None),), message="in place"),
    *twins("in place", "vjp-zeroes-its-output", "CubeZeroesOut", "Cube",
           "inputs: {x: [0.4, -1.5, 0.9]}\n" + 'ops: {c: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(c(x) * x)'}\n",
           suspects=(("c", 0),), message="in place"),
    *twins("in place", "forward-negates-its-second-argument", "BilinearScalesW", "Bilinear",
           "inputs: {x: [0.5, -1.2, 2.0], w: [1.5, -0.7, 0.3]}\n" + 'ops: {f: "heldout_ops:{op}"}\n'
           "nodes: {y: 'sum(f(x, w) * w)'}\n", suspects=(("f", None),), message="argument 1 (w) in place"),
    Case("pair-forward-centres-its-input", "in place", SCALE_INPUTS + "ops: {sc: {forward: "
         '"heldout_ops:scale_forward_centres_x", backward: "heldout_ops:scale_backward"}}\n'
         "nodes: {y: 'sum(sc(x, w, b) ** 2)'}\n", 1, suspects=(("sc", None),), message="forward modifies"),
    Case("layer-forward-scales-its-input", "in place", DENSE_INPUTS + "ops: {dense: "
         + LAYER.replace("%s", "AffineForwardScalesX") + "}\nnodes: {h: 'dense(X, W, b)', loss: 'sum(tanh(h))'}\n",
         1, suspects=(("dense", None),), message="forward modifies"),

    # ------------------------------------------------------------------ misbehaving rules
    *[Case(f"vjp-returns-{what}", "misbehaving rule", "inputs: {x: [0.4, -1.5, 0.9]}\n" + ops(s=op)
           + "nodes: {y: 'sum(s(x) * x)'}\n", 1, suspects=(("s", 0),), message=what)
      for what, op in (("integer", "SignIntegerGrad"), ("boolean", "SignBoolGrad"), ("object", "SignObjectGrad"))],
    Case("vjp-returns-right", "misbehaving rule", "inputs: {x: [0.4, -1.5, 0.9]}\n" + ops(s="SignGrad")
         + "nodes: {y: 'sum(s(x) * x)'}\n", 0),
    *twins("misbehaving rule", "pair-backward-nondeterministic", "scale_backward_noisy", "scale_backward",
           SCALE_INPUTS + "ops: {sc: " + PAIR.replace("%s", "{op}") + "}\n" + "nodes: {y: 'sum(sc(x, w, b) ** 2)'}\n",
           suspects=(("sc", None),), message="nondeterministic"),

    # ------------------------------------------------------------------ behind large constants and cancellations
    *twins("offset or cancellation", "tanh-behind-1e15", "Tanh13", "Tanh",
           "inputs: {x: [0.3, -0.7, 1.2]}\n" + 'ops: {t: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(t(x) * x) + 1e15'}\n",
           suspects=(("t", 0),), nodes={"x": ("fail", "inconclusive")}, right_nodes={"x": "pass"}),
    *twins("offset or cancellation", "tanh-cancelled-1e9", "Tanh13", "Tanh",
           "inputs: {x: [0.3, -0.7, 1.2]}\n" + 'ops: {t: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum((t(x) + 1e9) - 1e9)'}\n",
           suspects=(("t", 0),), nodes={"x": ("fail", "inconclusive")}, right_nodes={"x": "pass"}),
    # not complex-safe: float64 cannot resolve the gradient under 1e16, so the right op is inconclusive (exit 1)
    *twins("offset or cancellation", "real-tanh-behind-1e16", "RealTanh13", "RealTanh",
           "inputs: {x: [0.3, -0.7, 1.2]}\n" + 'ops: {t: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(t(x)) + 1e16'}\n",
           suspects=(("t", 0),), right_code=1, nodes={"x": ("fail", "inconclusive")},
           right_nodes={"x": "inconclusive"}),
    Case("real-tanh-scaled-by-1e12-and-back", "offset or cancellation",
         "inputs: {x: {shape: [20], init: normal}}\n" + ops(t="RealTanh") + "nodes: {y: 'sum(t(x) * 1e12) / 1e12 + 1e5'}\n",
         0, nodes={"x": "pass"}),
    Case("real-tanh-behind-1e16-allowed", "offset or cancellation",
         "inputs: {x: [0.3, -0.7, 1.2]}\n" + ops(t="RealTanh") + "nodes: {y: 'sum(t(x)) + 1e16'}\n", 0,
         ("--allow-inconclusive",), nodes={"x": "inconclusive"}),
    # a loss scaled by 1e-9: a 30 % error is 3e-10 absolute, under atol; the op's own scale shows it
    *twins("offset or cancellation", "tanh-under-a-tiny-scale", "Tanh13", "Tanh",
           "inputs: {x: [0.3, -0.7, 1.2]}\n" + 'ops: {t: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(t(x)) * 1e-9'}\n",
           suspects=(("t", 0),)),

    # ------------------------------------------------------------------ float32
    *twins("float32", "exp-0.3-percent", "ExpThreeTenthsPercent", "Exp",
           "dtype: float32\ninputs: {x: [0.2, -0.4, 1.1]}\n" + 'ops: {e: "heldout_ops:{op}"}\n'
           "nodes: {y: 'sum(e(x))'}\n", suspects=(("e", 0),), nodes={"x": "fail"}),
    *twins("float32", "matmul-1-percent-in-b", "MatMulOnePercentB", "MatMul",
           "dtype: float32\ninputs: {a: {shape: [3, 4], init: normal}, b: {shape: [4, 2], init: normal}}\n"
           'ops: {mm: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(tanh(mm(a, b)))'}\n",
           suspects=(("mm", 1),), nodes={"b": "fail", "a": "pass"}),
    *twins("float32", "exp-0.3-percent-fast", "ExpThreeTenthsPercent", "Exp",
           "dtype: float32\ninputs: {x: {shape: [40], init: normal}}\n" + 'ops: {e: "heldout_ops:{op}"}\n'
           "nodes: {y: 'sum(e(x) * x)'}\n", options=("--mode", "fast"), suspects=(("e", 0),)),

    # ------------------------------------------------------------------ one element of a large node
    *twins("one element in 6000", "tanh-auto", "TanhOneElement", "Tanh",
           BIG + 'ops: {t: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(t(x) * x)'}\n", options=("--mode", "auto"),
           suspects=(("t", 0),), nodes={"x": "fail"}, worst_index=("x", [17, 42])),
    *twins("one element in 6000", "tanh-fast", "TanhOneElement", "Tanh",
           BIG + 'ops: {t: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(t(x) * x)'}\n", options=("--mode", "fast"),
           suspects=(("t", 0),), nodes={"x": "fail"}, worst_index=("x", [17, 42])),

    # ------------------------------------------------------------------ complex-step
    *twins("complex-step", "tanh-first-element", "TanhFirstElement", "Tanh",
           "inputs: {x: [0.3, -0.5, 0.9]}\n" + 'ops: {t: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(t(x) * x)'}\n",
           options=("--method", "complex-step", "--values"), suspects=(("t", 0),), nodes={"x": "fail"},
           worst_index=("x", [0]), numeric_error=("x", 1e-14)),

    # ------------------------------------------------------------------ false alarms: probes crossing kinks
    *[Case(f"relu-near-zero-{mode}", "kink crossed by a probe",
           "inputs: {x: [1.0e-9, -2.0e-9, 0.7, -0.4, 3.0e-10, 1.3], v: {shape: [6], init: normal, requires_grad: false}}\n"
           "nodes: {y: 'sum(relu(x) * v)'}\n", 0, ("--mode", mode), nodes={"x": ("pass", "kink")})
      for mode in ("full", "auto", "fast")],
    *[Case(f"max-pool-near-ties-{mode}", "kink crossed by a probe",
           "inputs: {x: [[[[1.0, 1.0000000001, 0.2, 0.3], [0.5, 0.1, 0.3000000002, 0.3], [2.0, -1.0, 4.0, 4.0],"
           " [2.0000000001, 0.0, 3.9999999999, 1.0]]]], v: {value: [[[[1.5, -2.0], [0.5, 3.0]]]], requires_grad: false}}\n"
           "nodes: {y: 'sum(max_pool2d(x, kernel=2) * v)'}\n", 0, ("--mode", mode), nodes={"x": ("pass", "kink")})
      for mode in ("full", "auto", "fast")],
    *[Case(f"abs-near-zero-{mode}", "kink crossed by a probe",
           "inputs: {x: [[1.0e-10, -0.5], [-3.0e-10, 2.0]], v: {value: [[2.0, 1.0], [-1.0, 0.5]], requires_grad: false}}\n"
           "nodes: {y: 'sum(abs(x) * v)'}\n", 0, ("--mode", mode)) for mode in ("auto", "fast")],
    *[Case(f"clip-near-bounds-{mode}", "kink crossed by a probe",
           "inputs: {x: [0.9999999999, -1.0000000002, 0.25, 1.5]}\n"
           "nodes: {y: 'sum(clip(x, lo=-1, hi=1) * x)'}\n", 0, ("--mode", mode)) for mode in ("auto", "fast")],
    # five-point and Richardson take long steps: the one-sided slopes must be extrapolated to judge the kink
    *[Case(f"clip-near-bounds-{method}", "kink crossed by a probe",
           "inputs: {x: [0.9999999999, -1.0000000002, 0.25, 1.5]}\n"
           "nodes: {y: 'sum(clip(x, lo=-1, hi=1) * x)'}\n", 0, ("--method", method), nodes={"x": "kink"},
           slopes=("x", [0], (1.0, 2.0))) for method in ("five-point", "richardson")],
    *[Case(f"where-near-its-condition-{mode}", "kink crossed by a probe",
           "inputs: {x: [2.0e-10, -1.0e-10, 0.8, -0.6]}\n"
           "nodes: {y: 'sum(where(x > 0, x * x, -3 * x))'}\n", 0, ("--mode", mode)) for mode in ("auto", "fast")],
    *[Case(f"relu-cnn-near-zero-{mode}", "kink crossed by a probe",
           "inputs:\n  x: {shape: [1, 2, 6, 6], init: normal}\n  w: {shape: [3, 2, 3, 3], init: normal, std: 0.3}\n"
           "  b: {shape: [3], init: constant, value: 1.0e-9}\n  v: {shape: [1, 3, 2, 2], init: normal, requires_grad: false}\n"
           "nodes:\n  h: relu(conv2d(x, w, b) * 1.0e-8)\n  p: max_pool2d(h, kernel=2)\n  loss: sum(p * v)\n", 0,
           ("--mode", mode)) for mode in ("full", "auto", "fast")],

    # ------------------------------------------------------------------ false alarms: many tied windows
    # full mode: 72 tied elements, more than any cap on second looks; auto and fast: 32
    *[Case(f"pool-every-window-tied-{mode}", "many tied max-pool windows",
           f"inputs: {{x: {{shape: [1, 2, {n}, 6], init: ones}}, v: {{shape: [1, 2, {n // 2}, 3], init: normal, "
           "requires_grad: false}}\nnodes: {y: 'sum(max_pool2d(x * 2, kernel=2) * v)'}\n", 0, ("--mode", mode),
           nodes={"x": "kink"}, strict=1) for mode, n in (("full", 6), ("auto", 4), ("fast", 4))],
    Case("pool-kernel-3-tied-full", "many tied max-pool windows",
         "inputs: {x: {shape: [1, 1, 9, 9], init: constant, value: -0.5}, v: {shape: [1, 1, 3, 3], init: normal, "
         "requires_grad: false}}\nnodes: {y: 'sum(max_pool2d(x, kernel=3) * v)'}\n", 0, ("--mode", "full"),
         nodes={"x": "kink"}, strict=1),

    # ------------------------------------------------------------------ false alarms: hard numerics
    *twins("hard numerics", "cos-beyond-1e6", "CosOnePercent", "Cos",
           "inputs: {x: [2.0e6, -7.5e6, 9.1e7]}\n" + 'ops: {c: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(c(x))'}\n",
           suspects=(("c", 0),), nodes={"x": "fail"}, right_nodes={"x": "pass"}),
    Case("cos-at-4.4e8", "hard numerics", "inputs: {x: [4.4e8, -1.3e9]}\n" + ops(c="Cos") + "nodes: {y: 'sum(c(x))'}\n",
         0, nodes={"x": "pass"}),
    Case("recip-near-its-pole-forward-method", "hard numerics", "inputs: {x: [1.0e-3, -0.5, 2.0e3, 7.0e5]}\n"
         + ops(r="Recip") + "nodes: {y: 'sum(r(x))'}\n", 0, ("--method", "forward"), nodes={"x": "pass"}),
    Case("builtin-sin-beyond-1e6-fast", "hard numerics", "inputs: {x: [5.0e7, -1.0e6, 3.0e9]}\n"
         "nodes: {y: 'sum(sin(x) * 2)'}\n", 0, ("--mode", "fast"), strict=0),
    *twins("hard numerics", "log1p-near-minus-one", "Log1pOnePercent", "Log1p",
           "inputs: {x: [-0.99999, -0.999, 3.0]}\n" + 'ops: {l: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(l(x))'}\n",
           suspects=(("l", 0),), nodes={"x": "fail"}, right_nodes={"x": "pass"}),
    Case("builtin-log1p-near-minus-one", "hard numerics", "inputs: {x: [-0.999999, 0.5]}\n"
         "nodes: {y: 'sum(log1p(x) * x)'}\n", 0, strict=0, nodes={"x": "pass"}),
    *twins("hard numerics", "sinh-gradient-1e7", "SinhOnePercent", "Sinh",
           "inputs: {x: [16.5, 17.0, -16.8]}\n" + 'ops: {s: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(s(x))'}\n",
           suspects=(("s", 0),), nodes={"x": "fail"}, right_nodes={"x": "pass"}),
    Case("builtin-exp-at-35-strict", "hard numerics", "inputs: {x: [35.0, 34.0]}\nnodes: {y: 'sum(exp(x))'}\n",
         0, ("--strict",), nodes={"x": "pass"}),
    Case("custom-exp-at-35.5-strict", "hard numerics", "inputs: {x: [35.5]}\n" + ops(e="Exp")
         + "nodes: {y: 'sum(e(x))'}\n", 0, ("--strict",), nodes={"x": "pass"}),
    *twins("hard numerics", "recip-mixed-magnitudes", "RecipOnePercent", "Recip",
           "inputs: {x: [1.0e-3, -0.5, 2.0e3, 7.0e5]}\n" + 'ops: {r: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(r(x))'}\n",
           suspects=(("r", 0),), nodes={"x": "fail"}, right_nodes={"x": "pass"}),
    Case("builtin-cube-mixed-magnitudes-strict", "hard numerics", "inputs: {x: [1.0e-4, -1.0, 1.0e3, 2.5e-6]}\n"
         "nodes: {y: 'sum(x ** 3)'}\n", 0, ("--strict",), nodes={"x": "pass"}),

    # ------------------------------------------------------------------ kinks of built-in ops
    *[Case(f"abs-at-zero-{mode}", "kink", "inputs: {x: [[0.0, 1.5], [-2.0, 0.25]], v: {value: [[2.0, -1.0], [0.5, 3.0]], "
           "requires_grad: false}}\nnodes: {y: 'sum(abs(x) * v)'}\n", 0, ("--mode", mode), nodes={"x": "kink"},
           strict=1, slopes=("x", [0, 0], (2.0, -2.0))) for mode in ("full", "auto", "fast")],
    *[Case(f"abs-at-zero-{method}", "kink", "inputs: {x: [0.0, 1.5, -2.0], v: {value: [-3.0, 1.0, 0.5], "
           "requires_grad: false}}\nnodes: {y: 'sum(abs(x) * v)'}\n", 0, ("--method", method), nodes={"x": "kink"},
           strict=1, slopes=("x", [0], (-3.0, 3.0))) for method in ("forward", "five-point", "richardson", "complex-step")],
    Case("max-over-rows-with-ties", "kink", "inputs: {x: [[1.0, 4.0, 4.0], [2.0, 0.0, 2.0]], v: {value: [3.0, -1.0], "
         "requires_grad: false}}\nnodes: {y: 'sum(max(x, axis=1) * v)'}\n", 0, nodes={"x": "kink"}, strict=1,
         slopes=("x", [0, 1], (3.0, 0.0))),
    Case("multiclass-hinge-at-the-margin", "kink", "inputs: {s: [[1.0, 0.0, -2.0], [0.5, 0.2, 0.1]], "
         "y: {value: [0, 2], dtype: int64}}\nnodes: {l: 'multiclass_hinge(s, y)'}\n", 0, nodes={"s": "kink"}, strict=1),
    Case("sort-with-a-tie", "kink", "inputs: {x: [1.0, 3.0, 1.0, 2.0], v: {value: [1.0, 2.0, 3.0, 4.0], "
         "requires_grad: false}}\nnodes: {y: 'sum(sort(x) * v)'}\n", 0, nodes={"x": "kink"}, strict=1),
    *twins("forgotten gradient", "none-for-w-at-two-use-sites", "BilinearForgetsW", "Bilinear",
           "inputs: {x: [0.5, -1.2], w: [1.5, -0.7]}\n" + 'ops: {f: "heldout_ops:{op}"}\n'
           "nodes: {y: 'sum(f(x, w)) + sum(f(w, x))'}\n", suspects=(("f", 1), ("f", 1)), message="forgotten"),
    Case("min-of-all-with-a-tie", "kink", "inputs: {x: [0.5, -2.0, 3.0, -2.0]}\nnodes: {y: 'min(x) * 4'}\n", 0,
         nodes={"x": "kink"}, strict=1, slopes=("x", [1], (0.0, 4.0))),
    Case("max-pool-one-tied-window-stride-1", "kink", "inputs: {x: [[[[0.1, 0.9, 0.2], [0.9, 0.3, -0.4], "
         "[0.0, 0.5, 0.6]]]], v: {value: [[[[1.0, 2.0], [-1.0, 0.5]]]], requires_grad: false}}\n"
         "nodes: {y: 'sum(max_pool2d(x, kernel=2, stride=1) * v)'}\n", 0, nodes={"x": "kink"}, strict=1),
    Case("relu-at-zero-of-a-difference", "kink", "inputs: {a: [0.5, 1.0], b: [0.5, 2.0]}\n"
         "nodes: {h: 'a - b', y: 'sum(relu(h) * 3)'}\n", 0, nodes={"h": "kink"}, strict=1,
         slopes=("h", [0], (3.0, 0.0))),
    Case("clip-at-both-bounds", "kink", "inputs: {x: [1.0, -1.0, 0.3]}\nnodes: {y: 'sum(clip(x, lo=-1, hi=1) * 2)'}\n",
         0, nodes={"x": "kink"}, strict=1, slopes=("x", [0], (0.0, 2.0))),
    Case("maximum-tie", "kink", "inputs: {a: [0.7, -1.0], b: [0.7, 0.5]}\nnodes: {y: 'sum(maximum(a, b) * 5)'}\n",
         0, nodes={"a": "kink"}, strict=1, slopes=("a", [0], (5.0, 0.0))),
    Case("leaky-relu-at-zero", "kink", "inputs: {x: [0.0, -0.5]}\nnodes: {y: 'sum(leaky_relu(x, slope=0.2))'}\n",
         0, nodes={"x": "kink"}, strict=1, slopes=("x", [0], (1.0, 0.2))),
    Case("hinge-at-the-margin", "kink", "inputs: {z: [1.0, 0.3], y: {value: [1.0, -1.0], requires_grad: false}}\n"
         "nodes: {l: 'hinge(z, y)'}\n", 0, nodes={"z": "kink"}, strict=1, slopes=("z", [0], (0.0, -0.5))),

    # a branch decision the objective does not feel: x·relu(x) and huber are smooth there (both one-sided slopes
    # are 0, resp. 1 = the analytic value), so no kink, whatever the method's step
    *[Case(f"relu-times-x-at-zero-{method}", "smooth join", "inputs: {x: [0.0, 1.0, -1.0]}\n"
           "nodes: {y: 'sum(relu(x) * x)'}\n", 0, ("--method", method), nodes={"x": "pass"}, strict=0)
      for method in ("central", "five-point")],
    *[Case(f"huber-at-its-boundary-{method}", "smooth join", "inputs: {r: [1.0, 0.2], t: {value: [0.0, 0.0], "
           "requires_grad: false}}\nnodes: {l: 'sum(huber(r, t, delta=1.0))'}\n", 0, ("--method", method),
           nodes={"r": "pass"}, strict=0) for method in ("central", "richardson")],

    # ------------------------------------------------------------------ kinks of custom ops
    # a wrong rule beside its kinks is not waived as one
    *twins("custom kink", "step-relu-2-percent-near-its-kink-fast", "StepReluTwoPercent", "StepRelu",
           "inputs: {x: [0.0, 1.0e-9, -2.0e-9, 0.5, 1.5, -0.7], v: {value: [1.0, -2.0, 0.5, 3.0, 1.5, -1.0], "
           "requires_grad: false}}\n" + 'ops: {s: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(s(x) * v)'}\n",
           options=("--mode", "fast"), suspects=(("s", 0),), nodes={"x": "fail"}, right_nodes={"x": "kink"}),
    *twins("custom kink", "relu6-2-percent-at-its-bounds-auto", "Relu6TwoPercent", "Relu6",
           "inputs: {x: [0.0, 6.0, 5.9999999999, 2.5, -0.7]}\n" + 'ops: {s: "heldout_ops:{op}"}\n'
           "nodes: {y: 'sum(s(x) * x)'}\n", options=("--mode", "auto"), suspects=(("s", 0),), nodes={"x": "fail"},
           right_nodes={"x": "kink"}),
    *twins("custom kink", "relu6-declared-branches", "Relu6WrongAtZero", "Relu6",
           "inputs: {x: [0.0, 6.0, 3.0, -1.0]}\n" + 'ops: {r: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(r(x) * 2)'}\n",
           suspects=(("r", 0),), nodes={"x": "fail"}, right_nodes={"x": "kink"}),
    *twins("custom kink", "relu-no-branches-right-slope", "StepReluWrongAtZero", "StepRelu",
           "inputs: {x: [0.0, 1.0, -1.0]}\n" + 'ops: {s: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(s(x) * 3)'}\n",
           suspects=(("s", 0),), nodes={"x": "fail"}, right_nodes={"x": "kink"}),
    *twins("custom kink", "leaky-no-branches-between-slopes", "LeakyWrongAtZero", "Leaky",
           "inputs: {x: [0.0, 2.0, -2.0]}\n" + 'ops: {k: "heldout_ops:{op}"}\n' + "nodes: {y: 'sum(k(x))'}\n",
           suspects=(("k", 0),), nodes={"x": "fail"}, right_nodes={"x": "kink"}),
]
STRICT_TWINS = {"relu6-declared-branches-right", "relu-no-branches-right-slope-right",
                "leaky-no-branches-between-slopes-right"}


def run(tmp_path: Path, case: Case, *extra: str) -> tuple[int, dict]:
    shutil.copy(OPS, tmp_path / "heldout_ops.py")
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: {case.id}\n" + case.spec)
    outcome = CliRunner().invoke(main, ["run", str(path), "--format", "json", *case.options, *extra])
    assert outcome.exit_code in (0, 1, 2), outcome.output
    return outcome.exit_code, json.loads(outcome.stdout)["specs"][0]


def node(report: dict, name: str) -> dict:
    return next(n for n in report["nodes"] if n["name"] == name)


def summary(report: dict) -> list:
    return [(n["name"], n["status"], n["message"]) for n in report["nodes"]] + [report["suspects"], report["error"]]


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=c.gap)) if c.gap else c
                                  for c in CASES], ids=[c.id for c in CASES])
def test_heldout_case(tmp_path, case):
    code, report = run(tmp_path, case)
    assert code == case.code, summary(report)
    for name, wanted in case.nodes.items():
        assert node(report, name)["status"] in ((wanted,) if isinstance(wanted, str) else wanted), summary(report)
    if case.suspects is not None:
        named = [(s["op"], s["argument"]) for s in report["suspects"]]
        if any(argument is None for _, argument in case.suspects):   # an op's fault, named at each argument
            assert named and {op for op, _ in named} == {op for op, _ in case.suspects}, summary(report)
        else:
            assert named == list(case.suspects), summary(report)
        if case.message:
            assert case.message in report["suspects"][0]["message"], report["suspects"]
    if case.output is not None:
        assert math.isclose(report["output"]["value"], case.output, rel_tol=1e-12)
    if case.worst_index is not None:
        name, index = case.worst_index
        assert node(report, name)["worst_index"] == index, summary(report)
    if case.slopes is not None:
        name, index, (right, left) = case.slopes
        element = next(e for e in node(report, name)["elements"] if e["index"] == index and e["status"] == "kink")
        assert math.isclose(element["right_slope"], right, abs_tol=1e-5)
        assert math.isclose(element["left_slope"], left, abs_tol=1e-5)
    if case.numeric_error is not None:   # complex-step's exact value is never replaced by a noisier one
        name, bound = case.numeric_error
        assert max(node(report, name)["numeric_error"]) < bound, node(report, name)["numeric_error"]
    if case.strict is not None or case.id in STRICT_TWINS:
        strict_code, _ = run(tmp_path, case, "--strict")
        assert strict_code == (1 if case.strict is None else case.strict)


def test_the_battery_is_large_and_each_fault_has_its_twin():
    ids = {c.id for c in CASES}
    assert len(CASES) >= 60
    assert all(i.replace("-wrong", "-right") in ids for i in ids if i.endswith("-wrong"))
