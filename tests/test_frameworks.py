"""Issue 9, point 3: PyTorch and JAX ops checked with gradcheck's verdicts, imported only when a spec names one.

The framework tests run against the real torch and jax (skipped, with the reason, where they are not
installed: `pip install "gradcheck[torch]" "gradcheck[jax]"`); the rest run everywhere.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import gradcheck
from gradcheck.cli import main
from gradcheck.errors import SpecError
from gradcheck.ops import frameworks

ROOT = Path(__file__).resolve().parent.parent
HAS_TORCH = frameworks.is_installed("torch")
HAS_JAX = frameworks.is_installed("jax")
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason='torch is not installed (pip install "gradcheck[torch]")')
needs_jax = pytest.mark.skipif(not HAS_JAX, reason='jax is not installed (pip install "gradcheck[jax]")')

TORCH_OPS = '''
import torch


class Swish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta=1.0):
        s = torch.sigmoid(beta * x)
        ctx.save_for_backward(x, s)
        ctx.beta = beta
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        return g * (s + ctx.beta * x * s * (1 - s)), None


class SwishBad(Swish):
    @staticmethod
    def backward(ctx, g):                          # planted: drops the beta·x·σ(1-σ) term
        x, s = ctx.saved_tensors
        return g * s, None


class Relu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0)


class PairMax(torch.autograd.Function):
    """max over the last axis of pairs (a 1x2 max-pool); a tie sends the gradient to the first element"""

    @staticmethod
    def forward(ctx, x):
        values, index = x.max(dim=-1)
        ctx.save_for_backward(index)
        ctx.shape = x.shape
        return values

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        grad = torch.zeros(ctx.shape, dtype=g.dtype)
        return grad.scatter(-1, index.unsqueeze(-1), g.unsqueeze(-1))


def tanh_sum(x, w):
    return torch.tanh(x @ w)


def cross_entropy(logits, labels):
    return torch.nn.functional.cross_entropy(logits, labels)
'''

@pytest.fixture
def folder(tmp_path):
    (tmp_path / "torch_ops.py").write_text(TORCH_OPS)
    return tmp_path


def spec_at(folder, text: str) -> Path:
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ------------------------------------------------------------------------------------------ torch


@needs_torch
def test_a_torch_function_passes_with_its_closed_form_gradient(folder):
    path = spec_at(folder, """
        ops:
          swish: {torch: "torch_ops:Swish"}
        inputs:
          x: [-1.0, 0.5, 2.0]
        nodes:
          y: sum(swish(x, beta=1.5))
    """)
    result = gradcheck.check(path)
    assert result.status == "pass", result.message()
    x = np.array([-1.0, 0.5, 2.0])
    s = sigmoid(1.5 * x)
    np.testing.assert_allclose(result.node("x").analytic, s + 1.5 * x * s * (1 - s), rtol=1e-12)


@needs_torch
def test_a_wrong_torch_backward_is_named_at_the_op(folder):
    path = spec_at(folder, """
        ops:
          swish: {torch: "torch_ops:SwishBad"}
        inputs:
          x: {shape: [2, 3], init: normal}
          w: {shape: [3, 2], init: normal}
        nodes:
          h: x @ w
          y: sum(swish(h))
    """)
    result = gradcheck.check(path)
    assert result.status == "fail"
    assert [(s.op, s.argument_node) for s in result.suspects] == [("swish", "h")]
    assert CliRunner().invoke(main, ["run", str(path)]).exit_code == 1


@needs_torch
def test_relu_at_zero_fails_torch_gradcheck_and_is_a_kink_here_with_the_element_named(folder):
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("torch_ops_for_test", folder / "torch_ops.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError):  # torch's own check (GradcheckError): a Jacobian mismatch, no element named
        torch.autograd.gradcheck(module.Relu.apply, (x,))
    result = gradcheck.check_op(module.Relu, np.array([-1.0, 0.0, 2.0]))
    node = result.node("x")
    assert result.ok and node.status == "kink" and node.worst_index == (1,) and node.kinks == 1


@needs_torch
def test_a_max_pool_tie_is_a_kink_at_the_tied_element(folder):
    path = spec_at(folder, """
        ops:
          pairmax: {torch: "torch_ops:PairMax"}
        inputs:
          x: [[1.0, 1.0], [0.5, 2.0]]
        nodes:
          y: sum(pairmax(x) * pairmax(x))
    """)
    result = gradcheck.check(path)
    assert result.ok
    x = result.node("x")
    assert x.status == "kink" and x.worst_index in ((0, 0), (0, 1))
    np.testing.assert_allclose(x.analytic[1], [0.0, 4.0])  # d/dx max² = 2·max at the max, away from the tie


@needs_torch
def test_a_function_of_tensors_with_integer_labels(folder):
    path = spec_at(folder, """
        ops:
          xent: {torch: "torch_ops:cross_entropy"}
          layer: {torch: "torch_ops:tanh_sum"}
        inputs:
          x: {shape: [2, 3], init: normal}
          w: {shape: [3, 4], init: normal}
          labels: {value: [3, 1], dtype: int64}
        nodes:
          loss: xent(layer(x, w), labels)
    """)
    result = gradcheck.check(path)
    assert result.status == "pass", result.message()
    assert result.node("labels").status == "skip"


@needs_torch
def test_check_op_takes_a_torch_function_subclass_directly(folder):
    sys.path.insert(0, str(folder))
    try:
        import torch_ops
    finally:
        sys.path.remove(str(folder))
    assert gradcheck.check_op(torch_ops.Swish, np.array([0.3, -0.8]), beta=2.0).ok
    assert not gradcheck.check_op(torch_ops.SwishBad, np.array([0.3, -0.8])).ok
    assert gradcheck.check_op({"torch": torch_ops.tanh_sum}, np.ones((2, 3)), np.full((3, 1), 0.2)).ok


# ------------------------------------------------------------------------------------------ jax


@needs_jax
def test_jax_ops_in_an_interpreter_of_their_own():
    """The jax checks (tests/jax_checks.py) run in a fresh interpreter: JAX starts threads, after which any fork
    in this process -- the spec isolation of later tests forks -- would be unsafe."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:gradcheck",
                           str(Path(__file__).with_name("jax_checks.py"))],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout.splitlines()[-1], done.stdout


# ------------------------------------------------------------------------------------------ without the framework


@pytest.mark.filterwarnings("ignore:os.fork")  # jax, imported by the tests above, warns of any fork in this process
def test_a_framework_op_without_the_framework_is_one_clear_error(folder, monkeypatch):
    monkeypatch.setattr(frameworks, "is_installed", lambda module: False)
    path = spec_at(folder, """
        ops:
          swish: {torch: "torch_ops:Swish"}
        inputs:
          x: [1.0]
        nodes:
          y: swish(x)
    """)
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2
    assert 'spec.yaml:3:18: error: custom op \'swish\' is a PyTorch op, but PyTorch is not installed here: ' \
           'pip install "gradcheck[torch]"' in result.output
    with pytest.raises(SpecError, match=r'pip install "gradcheck\[jax\]"'):
        gradcheck.check_op({"jax": lambda x: x}, np.ones(1))


@pytest.mark.filterwarnings("ignore:os.fork")
def test_requires_skips_the_spec_where_the_framework_is_missing(folder, monkeypatch):
    monkeypatch.setattr(frameworks, "is_installed", lambda module: False)
    path = spec_at(folder, """
        requires: [torch]
        ops:
          swish: {torch: "torch_ops:Swish"}
        inputs:
          x: [1.0]
        nodes:
          y: swish(x)
    """)
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 0, result.output
    assert "SKIP" in result.output and 'pip install "gradcheck[torch]"' in result.output
    assert "1 skipped" in result.output


@pytest.mark.parametrize("value", ["[1]", "'torch nn'", "{a: 1}", "[torch, __x]"])
def test_requires_takes_module_names(folder, value):
    path = spec_at(folder, f"requires: {value}\ninputs:\n  x: 1.0\nnodes:\n  y: x\n")
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2 and "spec.yaml:1:11: error: 'requires' must be a module name" in result.output


FAKE_FRAMEWORK = "import os\nopen(os.environ['GC_MARKER'] + '/{name}', 'w').close()\n"


def fake_frameworks(tmp_path) -> dict:
    """A torch and a jax that leave a marker file when imported: an import a spec did not ask for shows."""
    site = tmp_path / "site"
    for name in ("torch", "jax"):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text(FAKE_FRAMEWORK.format(name=name))
    markers = tmp_path / "markers"
    markers.mkdir()
    return {"PYTHONPATH": f"{ROOT}:{site}", "GC_MARKER": str(markers), "PATH": "/usr/bin:/bin"}


def test_a_spec_without_framework_ops_never_imports_torch_or_jax(tmp_path):
    env = fake_frameworks(tmp_path)
    plain = [str(p) for p in sorted((ROOT / "specs").rglob("*.yaml")) if "requires:" not in p.read_text()]
    done = subprocess.run([sys.executable, "-m", "gradcheck", "run", *plain, "-q"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    assert list((tmp_path / "markers").iterdir()) == []
    # the same set-up sees an import when a spec names a torch op (so the check above can fail)
    spec = tmp_path / "torchy.yaml"
    spec.write_text('ops:\n  f: {torch: "mod:f"}\ninputs:\n  x: 1.0\nnodes:\n  y: f(x)\n')
    subprocess.run([sys.executable, "-m", "gradcheck", "run", str(spec)], env=env, cwd=tmp_path, capture_output=True,
                   timeout=120)
    assert [p.name for p in (tmp_path / "markers").iterdir()] == ["torch"]


def test_a_skipped_spec_is_skipped_in_junit_and_in_pytest(tmp_path):
    spec = tmp_path / "needs.yaml"
    spec.write_text("requires: [no_such_framework_gc]\ninputs:\n  x: 1.0\nnodes:\n  y: x * x\n")
    junit = CliRunner().invoke(main, ["run", str(spec), "--format", "junit"])
    assert junit.exit_code == 0
    assert '<skipped message="skipped: it requires no_such_framework_gc' in junit.stdout
    assert 'skipped="1"' in junit.stdout
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--gradcheck", str(tmp_path),
                           "-rs"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout and "no_such_framework_gc" in done.stdout
