"""auto mode is linear in the number of nodes: the inputs and the nodes nearest the output are perturbed end
to end within a budget; every other node is vouched for by local checks of the ops between it and the output."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from gradcheck import CheckOptions, check_spec

ROOT = Path(__file__).resolve().parent.parent


def chain(tmp_path, length: int, op: str = "sin", ops: str = "") -> Path:
    lines = ["inputs:", "  x: 0.5", *([ops] if ops else []), "nodes:", f"  y1: {op}(x)"]
    lines += [f"  y{i}: {op}(y{i - 1})" for i in range(2, length + 1)]
    path = tmp_path / "chain.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_long_chain_is_checked_within_the_budget_and_every_node_is_vouched_for(tmp_path):
    result = check_spec(chain(tmp_path, 60), options=CheckOptions(global_budget=200))
    by_name = {n.name: n for n in result.nodes}
    assert result.status == "pass"
    assert by_name["x"].checked == "full"  # inputs are always perturbed end to end
    local = [n for n in result.nodes if n.checked == "local"]
    full = [n for n in result.nodes if n.checked == "full"]
    # x costs 60 downstream evaluations, y_k costs 60 - k: 0 + 1 + ... + 16 = 136 fits in the 140 left
    assert {n.name for n in full} == {"x"} | {f"y{k}" for k in range(44, 61)}
    assert len(local) == 43 and all(n.status == "pass" and "local checks" in n.message for n in local)
    # the analytic gradient of a vouched node is still reported: d y60 / d y_k = prod cos(y_j), j >= k
    values = {n.name: n.value for n in result.nodes}
    expected = np.prod([np.cos(values[f"y{j}"]) for j in range(20, 60)])
    assert np.isclose(float(by_name["y20"].analytic), expected, rtol=1e-12)


def test_full_mode_still_perturbs_every_node(tmp_path):
    result = check_spec(chain(tmp_path, 30), options=CheckOptions(mode="full", global_budget=10))
    assert {n.checked for n in result.nodes} == {"full"}


def test_a_wrong_vjp_near_the_output_fails_the_vouched_nodes_upstream_of_it(tmp_path):
    (tmp_path / "wrong.py").write_text(textwrap.dedent("""
        import numpy as np

        class Sin:
            def forward(self, x):
                return np.sin(x)

            def vjp(self, g, out, x):
                return (2 * g * np.cos(x),)

        bad_sin = Sin()
    """))
    path = chain(tmp_path, 40, ops="ops: {badsin: \"wrong:bad_sin\"}")
    text = path.read_text().replace("  y38: sin(y37)", "  y38: badsin(y37)")
    path.write_text(text)
    result = check_spec(path, options=CheckOptions(global_budget=100))
    by_name = {n.name: n for n in result.nodes}
    assert result.status == "fail"
    vouched = [n for n in result.nodes if n.checked == "local"]
    assert vouched and all(n.status == "fail" and "'y38' (badsin)" in n.message for n in vouched)
    assert by_name["y39"].status == "pass" and by_name["x"].status == "fail"


def test_nine_thousand_sin_nodes_are_checked_without_quadratic_cost(tmp_path):
    """A chain of 9000: perturbing every node would take 40 million downstream evaluations (minutes);
    the budgeted default finishes. Bounded by a subprocess timeout, not a wall-clock assertion."""
    path = chain(tmp_path, 9000)
    done = subprocess.run([sys.executable, "-m", "gradcheck", "run", str(path), "--format", "json"], cwd=tmp_path,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
