"""auto mode is linear in the number of nodes: the inputs and the nodes nearest the output are perturbed end
to end within a budget; every other node is vouched for by local checks of the ops between it and the output."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

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


def test_a_vouched_node_never_has_its_downstream_sized(tmp_path, monkeypatch):
    """Sizing a node's downstream costs O(nodes): asked only of the nodes the budget perturbs, a chain stays
    linear; asked of every node (as the joint step search's planning once did), 9000 sin nodes took 72 s."""
    from gradcheck.numeric.evaluator import Evaluator

    sized = []
    real = Evaluator.copy_floats

    def copy_floats(self, index):
        sized.append(index)
        return real(self, index)

    monkeypatch.setattr(Evaluator, "copy_floats", copy_floats)
    result = check_spec(chain(tmp_path, 60), options=CheckOptions(global_budget=200))
    names = [n.name for n in result.nodes]
    local = {names.index(n.name) for n in result.nodes if n.checked == "local"}
    assert len(local) == 43 and sized and not local & set(sized)


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


# ---------------------------------------------------------------------------------------------- local checks, cheaply
COUNTING_OPS = '''
import numpy as np
import pytest

CALLS = {"forward": 0, "vjp": 0}

class CountingSin:
    def forward(self, x):
        CALLS["forward"] += 1
        return np.sin(x)

    def vjp(self, g, out, x):
        CALLS["vjp"] += 1
        return (g * np.cos(x),)

class BatchedCountingSin(CountingSin):
    batching = "broadcast"

class NonNegativeOnly:             # refuses a negative argument anywhere in the array it is given
    batching = "broadcast"

    def forward(self, x):
        if np.any(np.asarray(x) < 0):
            raise ValueError("negative argument")
        return np.sqrt(x)

    def vjp(self, g, out, x):
        return (g / (2 * np.sqrt(x)),)

counting_sin, batched_counting_sin, non_negative_only = CountingSin(), BatchedCountingSin(), NonNegativeOnly()
'''


def passes_of(tmp_path, spec_text: str):
    """(graph, float64 forward pass, backward pass) of a spec, in this process (custom ops included)."""
    from gradcheck.engine import backward, forward
    from gradcheck.graph import build_graph
    from gradcheck.pipeline import load

    (tmp_path / "counting.py").write_text(COUNTING_OPS)
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(spec_text))
    graph = build_graph(load(path))
    with np.errstate(all="ignore"):
        reference = forward(graph, "float64")
        return graph, reference, backward(graph, reference, "float64")


def test_every_edge_is_checked_once_and_vouching_reads_those_verdicts(tmp_path, monkeypatch):
    from gradcheck.judge import local

    checked = []
    original = local.OpCheck.check

    def counting(self, position):
        checked.append((self.node.name, position))
        return original(self, position)

    monkeypatch.setattr(local.OpCheck, "check", counting)
    result = check_spec(chain(tmp_path, 50), options=CheckOptions(global_budget=100))
    assert result.status == "pass" and sum(n.checked == "local" for n in result.nodes) > 30
    # one op edge per node y1..y50, each checked exactly once although most nodes are vouched for through it
    assert sorted(checked) == sorted((f"y{k}", 0) for k in range(1, 51))


def test_the_graphs_cotangent_is_judged_on_the_gradient_the_backward_pass_itself_passed_on(tmp_path):
    from gradcheck.judge.local import LOCAL_COTANGENTS, OpCheck

    graph, reference, grads = passes_of(tmp_path, """
        ops: {csin: "counting:counting_sin"}
        inputs:
          x: {value: [0.3, -1.2, 2.0]}
        nodes:
          y: csin(x)
          loss: sum(y * y)
    """)
    node = next(n for n in graph.nodes if n.name == "y")
    calls = sys.modules[type(node.op_info.impl).__module__].CALLS
    before = calls["vjp"]
    check = OpCheck(graph, node, grads, reference.values, graph.spec.tolerance)
    assert check.check(0) == ("", False)
    assert calls["vjp"] - before == LOCAL_COTANGENTS  # the random cotangents only: the graph's was the pass's call
    assert check.vjps[0][0][0] is grads.edge_grads[(node.index, 0)]


# a custom op's batching is compared with one call each on its first and last copies the first time it is used at
# a node (gradcheck/batching.py declaration_holds): bsin's first stack takes 1 + 2 calls, every later one 1
@pytest.mark.parametrize("op, batched_calls, later_calls", [("csin", 4, 4), ("bsin", 3, 1)])
def test_the_stencil_points_take_one_call_where_the_op_batches_and_agree_with_one_call_each(tmp_path, op,
                                                                                             batched_calls, later_calls):
    from gradcheck.judge.local import OpCheck

    graph, reference, grads = passes_of(tmp_path, f"""
        ops: {{csin: "counting:counting_sin", bsin: "counting:batched_counting_sin"}}
        inputs:
          x: {{value: [[0.3, -1.2], [2.0, 0.7]]}}
        nodes:
          y: {op}(x)
          loss: sum(y * y)
    """)
    node = next(n for n in graph.nodes if n.name == "y")
    calls = sys.modules[type(node.op_info.impl).__module__].CALLS
    check = OpCheck(graph, node, grads, reference.values, graph.spec.tolerance)
    x = reference.values[node.args[0]]
    direction = np.array([[1.0, -2.0], [0.5, 1.0]])
    steps = (1e-2, -1e-2, 2.5e-3, -2.5e-3)
    before = calls["forward"]
    points = check.outputs_along(0, x, direction, steps)
    assert calls["forward"] - before == batched_calls
    expected = np.stack([np.sin(x + t * direction) for t in steps])
    np.testing.assert_allclose(points, expected, rtol=1e-15, atol=0)
    before = calls["forward"]
    np.testing.assert_allclose(check.outputs_along(0, x, -direction, steps), expected[[1, 0, 3, 2]], rtol=1e-15, atol=0)
    assert calls["forward"] - before == later_calls


def test_a_batched_call_that_fails_falls_back_to_one_call_per_point(tmp_path):
    """sqrt refuses the whole stack when one copy leaves its domain; only the copies outside it are missing."""
    from gradcheck.judge.local import OpCheck

    graph, reference, grads = passes_of(tmp_path, """
        ops: {root: "counting:non_negative_only"}
        inputs:
          x: 0.005
        nodes:
          y: root(x)
    """)
    node = next(n for n in graph.nodes if n.name == "y")
    check = OpCheck(graph, node, grads, reference.values, graph.spec.tolerance)
    points = check.outputs_along(0, np.asarray(0.005), np.asarray(1.0), (1e-2, -1e-2, 2.5e-3, -2.5e-3))
    np.testing.assert_allclose(points[[0, 2, 3]], np.sqrt([0.015, 0.0075, 0.0025]), rtol=1e-15)
    assert np.isnan(points[1])


def test_a_vouched_chain_still_names_an_op_wrong_only_for_cotangents_the_graph_does_not_give(tmp_path):
    """A vjp right for the graph's cotangent (1 at the output) and wrong for any other: only a random cotangent
    sees it, far beyond the global budget; every node upstream of it is failed through it, the op named."""
    (tmp_path / "odd.py").write_text(textwrap.dedent("""
        import numpy as np

        class SquaredG:
            def forward(self, x):
                return np.sin(x)

            def vjp(self, g, out, x):
                return (g * g * np.cos(x),)

        squared_g = SquaredG()
    """))
    path = chain(tmp_path, 40, ops="ops: {oddsin: \"odd:squared_g\"}")
    path.write_text(path.read_text().replace("  y40: sin(y39)", "  y40: oddsin(y39)"))
    result = check_spec(path, options=CheckOptions(global_budget=30))
    assert result.status == "fail"
    assert [(s.node, s.argument) for s in result.suspects][:1] == [("y40", 0)]
    upstream = [n for n in result.nodes if n.name.startswith("y") and n.name != "y40"]
    assert all(n.checked == "local" and n.status == "fail" and "'y40' (oddsin)" in n.message for n in upstream)
