"""A spec's own code (custom ops) cannot end, pass, hang or print over a run; time and memory are bounded.

Every case runs the real command in a subprocess (bounded by a subprocess timeout, never a wall-clock assertion)
and asserts the exit code, the spec's one-line error, and that the other specs of the run were still checked.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="containment in a child process needs fork")

OPS = (Path(__file__).parent / "data" / "hostile_ops.py").read_text(encoding="utf-8")


def write_specs(folder: Path, *ops: str) -> None:
    (folder / "evil.py").write_text(OPS)
    for op in ops:
        (folder / f"{op}.yaml").write_text(f"inputs: {{x: [1.0, 2.0]}}\nops: {{f: \"evil:{op}\"}}\n"
                                           "nodes:\n  y: sum(f(x))\n")


def gradcheck(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gradcheck", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)


def report(result) -> dict[str, dict]:
    return {Path(spec["path"]).stem: spec for spec in json.loads(result.stdout)["specs"]}


@pytest.mark.parametrize("op, message", [
    ("ExitsInVjp", "exited with code 0 before it finished"),
    ("SysExit", "called exit(0)"),
    ("RaisesKeyboardInterrupt", "KeyboardInterrupt was raised"),
    ("RaisesOdd", "Odd was raised"),
])
def test_an_op_that_ends_its_process_is_that_specs_error(tmp_path, op, message):
    write_specs(tmp_path, op, "Base")
    result = gradcheck("run", ".", "--format", "json", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    specs = report(result)
    assert specs[op]["status"] == "error" and message in specs[op]["error"]["message"]
    assert specs["Base"]["status"] == "pass"  # the run went on
    assert "Traceback" not in result.stderr


def test_what_an_op_prints_is_captured_and_reported(tmp_path):
    write_specs(tmp_path, "Prints")
    result = gradcheck("run", ".", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0
    spec = report(result)["Prints"]  # stdout is the JSON report alone
    assert any("hello from the op" in note for note in spec["notes"])


def test_a_hang_is_stopped_at_the_timeout(tmp_path):
    write_specs(tmp_path, "Sleeps", "Wrong")
    result = gradcheck("run", ".", "--format", "json", "--timeout", "2", cwd=tmp_path)
    assert result.returncode == 2
    specs = report(result)
    assert specs["Sleeps"]["error"]["message"] == "the check ran past the time limit of 2 s (--timeout)"
    assert specs["Wrong"]["status"] == "fail"  # checked after the hang was stopped


def test_a_long_chain_of_builtin_ops_is_stopped_at_the_timeout(tmp_path):
    nodes = "\n".join(f"  n{i}: sin(n{i - 1})" for i in range(1, 4000))
    (tmp_path / "chain.yaml").write_text(f"inputs: {{x: 0.5}}\nnodes:\n  n0: sin(x)\n{nodes}\n")
    result = gradcheck("run", "chain.yaml", "--mode", "full", "--timeout", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[0] == "chain.yaml: error: the check ran past the time limit of 1 s (--timeout)"


@pytest.mark.parametrize("command", ["explain", "graph"])
def test_explain_and_graph_are_contained_too(tmp_path, command):
    write_specs(tmp_path, "Sleeps", "ExitsInVjp")
    hang = gradcheck(command, "Sleeps.yaml", "--timeout", "1", cwd=tmp_path)
    assert hang.returncode == 2 and "ran past the time limit of 1 s" in hang.stderr
    exits = gradcheck(command, "ExitsInVjp.yaml", cwd=tmp_path)
    assert exits.returncode == 2 and "exited with code 0" in exits.stderr


def test_memory_is_bounded_by_the_budget(tmp_path):
    write_specs(tmp_path, "Hoards", "Base")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = gradcheck("run", ".", "--format", "json", "--max-memory", "1500M", cwd=tmp_path)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest descendant so far, in KiB
    assert result.returncode == 2
    specs = report(result)
    assert "out of memory" in specs["Hoards"]["error"]["message"] and specs["Base"]["status"] == "pass"
    if peak_kib > before:  # a bigger earlier child would hide this one's peak
        assert peak_kib < 1500 * 1024 + 300 * 1024


def test_under_pytest_an_exit_cannot_pass_the_run(tmp_path):
    write_specs(tmp_path, "Wrong", "ExitsInVjp")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--gradcheck", str(tmp_path),
                             str(tmp_path), "-q"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 1, result.stdout
    assert "2 failed" in result.stdout


def _interrupt_just_after_the_fork(monkeypatch, interrupt):
    """_in_child with ``interrupt()`` run in the parent as soon as it runs after the fork (while it closes its end of
    the pipe); returns the child's pid once KeyboardInterrupt has come out of _in_child."""
    import signal
    import time

    from gradcheck import isolation

    forked = []
    real_fork, real_close = os.fork, os.close

    def fork():
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    def close(fd):
        if len(forked) == 1 and os.getpid() != forked[0]:
            forked.append("interrupted")
            interrupt()
        real_close(fd)

    monkeypatch.setattr(isolation.os, "fork", fork)
    monkeypatch.setattr(isolation.os, "close", close)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            isolation._in_child(lambda: time.sleep(60), isolation.Limits(timeout=None, max_memory=None))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert forked[1:] == ["interrupted"]
    return forked[0]


def test_an_interrupt_just_after_the_fork_still_ends_the_child(monkeypatch):
    """Ctrl-C arriving between the fork and the parent's watch on the child is raised in the parent, the child is
    killed and reaped, not left running, and the parent's signal mask is what it was."""
    import signal

    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    child = _interrupt_just_after_the_fork(monkeypatch, lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(ChildProcessError):   # reaped already: killed, not running on
        os.waitpid(child, os.WNOHANG)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == mask


def test_an_interrupt_raised_on_another_thread_leaves_ctrl_c_unblocked(monkeypatch):
    """In a process with other threads (torch's), the signal can land on one of them: the main thread then raises
    KeyboardInterrupt at its next line, still inside the window where the interrupt signals are blocked. Ctrl-C
    must not stay blocked afterwards (nor in every process started later, which inherits the mask)."""
    import signal

    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])

    def raised_at_the_next_line():
        raise KeyboardInterrupt

    child = _interrupt_just_after_the_fork(monkeypatch, raised_at_the_next_line)
    with pytest.raises(ChildProcessError):
        os.waitpid(child, os.WNOHANG)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == mask
