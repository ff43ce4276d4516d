"""The JAX checks of tests/test_frameworks.py, run there in an interpreter of their own (JAX's threads make a
later fork in the same process unsafe).  Not collected on its own: it needs jax (pip install "gradcheck[jax]")."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradcheck

JAX_OPS = '''
import jax
import jax.numpy as jnp


@jax.custom_vjp
def softplus(x):
    return jnp.logaddexp(x, 0.0)


def _fwd(x):
    return softplus(x), x


softplus.defvjp(_fwd, lambda x, g: (g * jax.nn.sigmoid(x),))


@jax.custom_vjp
def softplus_bad(x):
    return jnp.logaddexp(x, 0.0)


softplus_bad.defvjp(lambda x: (softplus_bad(x), x), lambda x, g: (g * jax.nn.sigmoid(2 * x),))  # planted: 2x


def scaled(x, scale=2.0):
    return jnp.sin(x) * scale


@jax.custom_jvp
def cube_bad_jvp(x):
    return x ** 3


cube_bad_jvp.defjvp(lambda primals, tangents: (primals[0] ** 3, 2 * primals[0] ** 2 * tangents[0]))  # planted: 2, not 3
'''


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "jax_ops.py").write_text(JAX_OPS)
    return tmp_path


def spec_at(folder, text: str) -> Path:
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_a_jax_custom_vjp_passes_and_a_wrong_one_fails(folder):
    good = spec_at(folder, """
        ops:
          softplus: {jax: "jax_ops:softplus"}
        inputs:
          x: [-3.0, 0.0, 1.0, 30.0]
        nodes:
          y: sum(softplus(x) * x)
    """)
    result = gradcheck.check(good)
    assert result.status == "pass", result.message()
    x = np.array([-3.0, 0.0, 1.0, 30.0])
    np.testing.assert_allclose(result.node("x").analytic, np.logaddexp(x, 0) + x * sigmoid(x), rtol=1e-12)
    bad = gradcheck.check(spec_at(folder, """
        ops:
          softplus: {jax: "jax_ops:softplus_bad"}
        inputs:
          x: [-1.0, 0.5, 1.0]
        nodes:
          y: sum(softplus(x))
    """))
    assert bad.status == "fail" and bad.node("x").failing == 3


def test_jax_runs_in_float64_and_takes_keywords(folder):
    sys.path.insert(0, str(folder))
    try:
        import jax_ops
    finally:
        sys.path.remove(str(folder))
    result = gradcheck.check_op({"jax": jax_ops.scaled}, np.array([0.1, 1.2]), scale=3.0)
    assert result.ok
    np.testing.assert_allclose(result.nodes[-1].value, 3.0 * np.sin([0.1, 1.2]), rtol=1e-15)  # float32 would not
    assert gradcheck.check_op(jax_ops.softplus, np.array([0.5])).ok  # a custom_vjp function, recognised


def test_a_custom_jvp_rule_is_checked_in_forward_mode(folder):
    sys.path.insert(0, str(folder))
    try:
        import jax_ops
    finally:
        sys.path.remove(str(folder))
    result = gradcheck.check_op({"jax": jax_ops.cube_bad_jvp}, np.array([0.5, -1.0]))
    # its vjp is the transpose of the same wrong rule, so the gradient fails too; the jvp check names the rule
    assert [(j.status, j.argument) for j in result.jvps] == [("fail", 0)]
    np.testing.assert_allclose(result.node("x").analytic, 2 * np.array([0.5, -1.0]) ** 2 * result.nodes[-1].analytic)
    assert gradcheck.check_op({"jax": jax_ops.scaled}, np.array([0.3])).jvps[0].status == "pass"
    assert gradcheck.check_op({"jax": jax_ops.softplus}, np.array([0.3])).jvps == []  # custom_vjp: no forward mode
