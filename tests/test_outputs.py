"""Reports land where asked without losing anything; interrupts and write failures end with their own exit codes.

Each case asserts the exit code, the one line on stderr, and that nothing else happened (the previous report and
every input of the run are unchanged, no temporary file is left behind). Hangs are bounded by subprocess timeouts.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradcheck.cli import main

SPEC = "inputs: {x: [1.0, 2.0]}\nnodes:\n  y: sum(sin(x))\n"
TIMEOUT = 60


def gradcheck(*args, cwd, **streams):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **streams}
    return subprocess.run([sys.executable, "-m", "gradcheck", *args], cwd=cwd, env=env, text=True, timeout=TIMEOUT,
                          **streams)


@pytest.fixture
def spec_folder(tmp_path):
    (tmp_path / "data.csv").write_text("1.0,2.0\n")
    (tmp_path / "layers.py").write_text(textwrap.dedent("""
        class Twice:
            def forward(self, x):
                return 2 * x
            def vjp(self, g, out, x):
                return (2 * g,)
    """))
    (tmp_path / "spec.yaml").write_text("inputs:\n  x: {file: data.csv}\nops: {twice: \"layers:Twice\"}\n"
                                        "nodes:\n  y: sum(twice(x))\n")
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("target", ["spec.yaml", "data.csv", "layers.py", "./sub/../spec.yaml"])
@pytest.mark.parametrize("command", [["run", "spec.yaml", "--format", "json"], ["explain", "spec.yaml"],
                                     ["graph", "spec.yaml"]])
def test_output_never_replaces_what_the_run_reads(spec_folder, command, target):
    (spec_folder / "sub").mkdir()
    if command[0] != "run" and target in ("data.csv", "layers.py"):
        pytest.skip("explain and graph refuse the spec itself before they read anything else")
    before = snapshot(spec_folder)
    result = gradcheck(*command, "--output", target, cwd=spec_folder)
    assert result.returncode == 2, result.stderr
    assert "which this run reads" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # the one error line (and run's per-spec lines, if any)
    assert snapshot(spec_folder) == before


def test_dash_means_stdout(spec_folder):
    result = gradcheck("run", "spec.yaml", "--format", "json", "--output", "-", cwd=spec_folder)
    assert result.returncode == 0 and result.stdout.startswith("{")
    assert not (spec_folder / "-").exists()


def test_a_report_replaces_the_previous_one_whole(spec_folder):
    report = spec_folder / "report.json"
    report.write_text("previous")
    result = gradcheck("run", "spec.yaml", "--format", "json", "-o", "report.json", cwd=spec_folder)
    assert result.returncode == 0 and report.read_text().startswith('{\n  "version": 1')
    assert sorted(p.name for p in spec_folder.iterdir() if p.name.startswith(".")) == []


def test_a_failed_write_keeps_the_previous_report(spec_folder, monkeypatch):
    report = spec_folder / "report.json"
    report.write_text("previous")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.chdir(spec_folder)
    monkeypatch.setattr(os, "fsync", disk_full)
    result = CliRunner().invoke(main, ["run", "spec.yaml", "--format", "json", "-o", "report.json"])
    assert result.exit_code == 2
    assert "cannot write the report to report.json: No space left on device" in result.stderr
    assert report.read_text() == "previous"
    assert [p.name for p in spec_folder.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("command", [["run", "spec.yaml"], ["run", "spec.yaml", "--format", "json"],
                                     ["explain", "spec.yaml"], ["graph", "spec.yaml", "--format", "dot"]])
def test_a_full_device_is_one_line(spec_folder, command):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        result = gradcheck(*command, cwd=spec_folder, stdout=full)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "gradcheck: error: cannot write to standard output: " \
                                                     "No space left on device"
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


@pytest.mark.parametrize("command", [["explain", "spec.yaml"], ["graph", "spec.yaml"]])
def test_output_into_a_missing_folder_is_one_line(spec_folder, command):
    result = gradcheck(*command, "--output", "nodir/e.txt", cwd=spec_folder)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("gradcheck: error: cannot write the report to nodir/e.txt")


def test_a_closed_pipe_is_one_line(spec_folder):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    process = subprocess.Popen([sys.executable, "-m", "gradcheck", "run", "spec.yaml", "-v"], cwd=spec_folder, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # the reader went away before anything was written
    try:
        stderr = process.stderr.read()
        process.wait(timeout=TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 2
    assert stderr.strip() == "gradcheck: error: cannot write to standard output: the output pipe was closed"


SLOW_OP = """
import pathlib, time
class Slow:
    def forward(self, x):
        pathlib.Path("started").touch()
        time.sleep(60)
        return x
    def vjp(self, g, out, x):
        return (g,)
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("command", [["run", "slow.yaml", "--format", "json", "-o", "report.json"],
                                     ["explain", "slow.yaml", "-o", "report.json"]])
def test_an_interrupt_has_its_own_exit_code_and_loses_nothing(tmp_path, sig, code, command):
    (tmp_path / "slow.py").write_text(SLOW_OP)
    (tmp_path / "slow.yaml").write_text("inputs: {x: 1.0}\nops: {slow: \"slow:Slow\"}\nnodes:\n  y: slow(x)\n")
    (tmp_path / "report.json").write_text("previous")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    process = subprocess.Popen([sys.executable, "-m", "gradcheck", *command], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (tmp_path / "started").exists():  # the op is running: the signal lands inside the check
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == code
    assert stderr.strip().splitlines()[-1] == "gradcheck: interrupted"
    assert "Traceback" not in stderr
    assert (tmp_path / "report.json").read_text() == "previous"
