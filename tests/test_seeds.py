"""The seeds' worked examples, shipped in specs/, against their closed forms and published numbers."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gradcheck import check_spec, load_spec
from gradcheck.isolation import Limits
from gradcheck.ops.frameworks import is_installed

SPECS = Path(__file__).resolve().parent.parent / "specs"


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def grads(result):
    return {node.name: node.analytic for node in result.nodes}


def test_every_shipped_spec_passes():
    paths = sorted(SPECS.rglob("*.yaml"))
    assert len(paths) >= 9
    for path in paths:
        # a framework spec is checked in a child process: JAX's threads must not enter this one, which later forks
        result = check_spec(path, limits=Limits() if load_spec(path).requires else None)
        if result.status == "skip":  # its `requires:` names a framework not installed here (tests/test_frameworks.py)
            assert load_spec(path).requires and not all(is_installed(m) for m in load_spec(path).requires), path
            continue
        assert result.status == "pass", (path, result.error, [(n.name, n.status) for n in result.nodes if n.status == "fail"])
        assert result.expectations or "nn" in path.parts, f"{path} pins no published numbers"


def test_x_plus_y_times_z():
    result = check_spec(SPECS / "chain_rule_xyz.yaml")
    g = grads(result)
    x, y, z = -2.0, 5.0, -4.0
    assert float(result.output_value) == (x + y) * z == -12.0
    assert (g["x"], g["y"], g["z"]) == (z, z, x + y) == (-4.0, -4.0, 3.0)


@pytest.mark.parametrize("spec", ["neuron_sigmoid.yaml", "neuron_gates.yaml"])
def test_sigmoid_neuron(spec):
    w0, x0, w1, x1, w2 = 2.0, -1.0, -3.0, -2.0, -3.0
    dot = w0 * x0 + w1 * x1 + w2
    f = sigmoid(dot)
    local = f * (1 - f)  # sigma'(z) = sigma(z)(1 - sigma(z))
    result = check_spec(SPECS / spec)
    g = grads(result)
    assert float(result.output_value) == pytest.approx(f, abs=1e-15)
    for name, expected in {"w0": local * x0, "x0": local * w0, "w1": local * x1, "x1": local * w1, "w2": local}.items():
        assert float(g[name]) == pytest.approx(expected, rel=1e-12), name
    # the published two-digit walk-through
    assert round(f, 2) == 0.73 and round(float(g["w0"]), 1) == -0.2 and round(float(g["x0"]), 1) == 0.4
    assert round(float(g["w2"]), 1) == 0.2


def test_gate_walkthrough_numbers():
    g = grads(check_spec(SPECS / "neuron_gates.yaml"))
    denominator = 1 + math.exp(-1.0)
    assert float(g["plus_one"]) == pytest.approx(-1 / denominator ** 2, rel=1e-12)   # -0.53
    assert float(g["exp_gate"]) == pytest.approx(-1 / denominator ** 2, rel=1e-12)   # +1 passes it on
    assert float(g["neg_dot"]) == pytest.approx(math.exp(-1.0) * -1 / denominator ** 2, rel=1e-12)  # -0.2
    assert float(g["dot"]) == pytest.approx(math.exp(-1.0) / denominator ** 2, rel=1e-12)  # 0.2
    assert round(float(g["plus_one"]), 2) == -0.53 and round(float(g["neg_dot"]), 1) == -0.2


def test_activations():
    x = np.array([-1.5, 0.5, 2.0])
    s = 1 / (1 + np.exp(-x))
    expected = s * (1 - s) + (1 - np.tanh(x) ** 2) + (x > 0)
    np.testing.assert_allclose(grads(check_spec(SPECS / "activations.yaml"))["x"], expected, rtol=1e-13)


def test_relu_kink_is_a_warning_not_a_failure():
    result = check_spec(SPECS / "relu_kink.yaml")
    x = next(n for n in result.nodes if n.name == "x")
    assert result.status == "pass"
    assert x.status == "kink" and x.worst_index == (1,) and x.kinks == 1 and x.failing == 0


def test_logistic_regression_cost():
    X = np.array([[0.5, -1.2], [1.5, 0.3], [-0.7, 0.8], [0.2, 2.0]])
    y = np.array([1, -1, 1, -1.0])
    w, b = np.array([0.3, -0.5]), 0.1
    z = X @ w + b
    dz = -y / (1 + np.exp(y * z)) / len(y)  # d/dz log(1 + e^{-yz}) = -y sigma(-yz)
    result = check_spec(SPECS / "logistic_regression.yaml")
    g = grads(result)
    assert float(result.output_value) == pytest.approx(np.mean(np.log1p(np.exp(-y * z))), rel=1e-14)
    np.testing.assert_allclose(g["w"], X.T @ dz, rtol=1e-13)
    assert float(g["b"]) == pytest.approx(dz.sum(), rel=1e-12)


def test_svm_hinge():
    X = np.array([[1.0, 2.0], [-1.5, 0.5], [0.3, -0.8], [2.0, 1.0]])
    y = np.array([1, -1, 1, -1.0])
    w, b = np.array([0.4, -0.3]), 0.2
    margin = 1 - y * (X @ w + b)
    dz = np.where(margin > 0, -y, 0) / len(y)
    result = check_spec(SPECS / "svm_hinge.yaml")
    assert float(result.output_value) == pytest.approx(np.mean(np.maximum(0, margin)), rel=1e-14)
    np.testing.assert_allclose(grads(result)["w"], X.T @ dz, rtol=1e-13)


def test_mlp_squared_error_matches_hand_backprop():
    spec = check_spec(SPECS / "mlp_squared_error.yaml")
    g = grads(spec)
    values = {n.name: n.value for n in spec.nodes}
    X, y, W1, b1, W2, b2 = (values[k] for k in ("X", "y", "W1", "b1", "W2", "b2"))
    def sig(z):
        return 1 / (1 + np.exp(-z))

    a1 = sig(X @ W1 + b1)
    a2 = sig(a1 @ W2 + b2)
    n = len(X)
    dz2 = 2 * (a2 - y) / n * a2 * (1 - a2)          # C = (1/n) sum (a - y)^2
    dz1 = (dz2 @ W2.T) * a1 * (1 - a1)
    assert float(spec.output_value) == pytest.approx(np.mean((a2 - y) ** 2), rel=1e-14)
    np.testing.assert_allclose(g["W2"], a1.T @ dz2, rtol=1e-12)
    np.testing.assert_allclose(g["b2"], dz2.sum(0), rtol=1e-12)
    np.testing.assert_allclose(g["W1"], X.T @ dz1, rtol=1e-12)
    np.testing.assert_allclose(g["b1"], dz1.sum(0), rtol=1e-12)
