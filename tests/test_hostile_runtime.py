"""Hostile input after parsing: resources, time, interrupts and exits, output files, terminal escapes,
identifiers, op modules and data files (issue 10).

Every case runs the real command in a subprocess of a small wrapper that reports the peak resident memory
of everything it waited for (getrusage(RUSAGE_CHILDREN)), bounded by a subprocess timeout, and asserts the
exit code, the one-line message (no traceback), and that nothing else happened: no file changed, no
process left running, peak memory within the budget.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120
MiB = 1 << 20
# the wrapper: runs the command, then prints the largest resident set of it and its children, in KiB (Linux)
MEASURE = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
           "sys.stderr.write('\\nPEAK_KIB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
           "sys.exit(code)")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak memory and /proc are Linux's")


@dataclass
class Ran:
    code: int
    out: str
    err: str
    peak: int  # bytes

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def gradcheck(*args, cwd: Path, env: dict | None = None, timeout: float = TIMEOUT) -> Ran:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    done = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "gradcheck", *map(str, args)],
                          cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)
    err, _, peak = done.stderr.rpartition("\nPEAK_KIB=")
    ran = Ran(done.returncode, done.stdout, err, int(peak.strip()) * 1024)
    assert "Traceback" not in ran.out + ran.err, ran.err
    return ran


def no_process_left(marker: str) -> bool:
    """No running process has ``marker`` (a path unique to the test) in its command line."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    return False
            except OSError:
                continue
    return True


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


OPS = (Path(__file__).parent / "data" / "hostile_ops.py").read_text(encoding="utf-8")


def op_spec(folder: Path, name: str, op: str) -> Path:
    write(folder, "myops.py", OPS)
    return write(folder, f"{name}.yaml", f"""
        ops: {{f: "myops:{op}"}}
        inputs:
          x: [1.0, 2.0]
        nodes:
          y: sum(f(x))
        """)


PASSING = """
    inputs:
      x: [0.5, 1.5]
    nodes:
      y: sum(sin(x))
    """


# ------------------------------------------------------------------------------------------ resources

@pytest.mark.parametrize("case, inputs, expression, node", [
    ("attention", "q: {shape: [20000, 1], init: normal}\n  k: {shape: [20000, 1], init: normal}\n"
                  "  v: {shape: [20000, 1], init: normal}", "sum(attention(q, k, v))", "y/attention#1"),
    ("conv2d", "x: {shape: [1, 1, 1, 1], init: normal}\n  w: {shape: [1, 1, 1, 1], init: normal}\n"
               "  b: [0.5]", "sum(conv2d(x, w, b, padding=10000))", "y/conv2d#1"),
    ("embedding", "ids: {shape: [200000], init: randint, low: 0, high: 10}\n  t: {shape: [10, 2000], init: normal}",
     "sum(embedding(ids, t))", "y/embedding#1"),
    ("broadcast", "a: {shape: [20000, 1], init: normal}\n  b: {shape: [1, 20000], init: normal}", "sum(a * b)",
     "y/mul#1"),
])
def test_an_op_too_large_is_refused_before_it_is_built(tmp_path, case, inputs, expression, node):
    spec = write(tmp_path, f"{case}.yaml", f"inputs:\n  {inputs}\nnodes:\n  y: {expression}\n")
    ran = gradcheck("run", spec, "--max-memory", "2G", cwd=tmp_path)
    assert ran.code == 2
    assert len([line for line in ran.lines if "error:" in line]) == 1
    assert f"node '{node}'" in ran.err and "elements" in ran.err and f"{spec.name}:" in ran.err
    assert ran.peak < 300 * MiB  # refused from shapes: nothing of the ~3 GiB was allocated


def test_a_graph_over_the_budget_is_refused_before_the_forward_pass_naming_node_and_estimate(tmp_path):
    spec = write(tmp_path, "chain.yaml", """
        inputs:
          x: {shape: [2000000], init: normal}
        nodes:
          a: sin(x)
          b: cos(a)
          c: a * b
          y: sum(exp(c))
        """)
    budget = 96 * MiB
    ran = gradcheck("run", spec, "--max-memory", "96M", cwd=tmp_path)
    assert ran.code == 2
    message = next(line for line in ran.lines if "error:" in line)
    assert "more than the memory budget of 96.0 MiB" in message and "node '" in message and "would take ~" in message
    assert ran.peak <= budget
    # with room for it, the same spec runs (and stays within that budget)
    roomy = gradcheck("run", spec, "--max-memory", "1500M", "--mode", "fast", cwd=tmp_path)
    assert roomy.code == 0, roomy.err
    assert roomy.peak <= 1500 * MiB


def test_an_op_that_hoards_memory_is_stopped_at_the_budget(tmp_path):
    spec = op_spec(tmp_path, "hoards", "Hoards")
    other = write(tmp_path, "other.yaml", PASSING)
    ran = gradcheck("run", spec, other, "--max-memory", "400M", "--format", "json", cwd=tmp_path)
    assert ran.code == 2
    specs = {Path(s["path"]).stem: s for s in json.loads(ran.out)["specs"]}
    assert "memory" in specs["hoards"]["error"]["message"] and specs["other"]["status"] == "pass"
    assert ran.peak <= 400 * MiB + 16 * MiB  # the cap is on the address space the check adds
    assert no_process_left(str(tmp_path))


def test_a_budget_below_what_gradcheck_takes_is_an_error_not_a_crash(tmp_path):
    spec = write(tmp_path, "small.yaml", PASSING)
    ran = gradcheck("run", spec, "--max-memory", "1M", cwd=tmp_path)
    assert ran.code == 2 and "memory budget" in ran.err


# ------------------------------------------------------------------------------------------ time

@pytest.mark.parametrize("op", ["Sleeps", "Loops"])
def test_a_spec_past_its_timeout_is_its_error_and_the_others_still_run(tmp_path, op):
    spec = op_spec(tmp_path, "slow", op)
    other = write(tmp_path, "other.yaml", PASSING)
    ran = gradcheck("run", spec, other, "--timeout", "2", "--format", "json", cwd=tmp_path, timeout=60)
    assert ran.code == 2
    specs = {Path(s["path"]).stem: s for s in json.loads(ran.out)["specs"]}
    assert "time limit of 2 s" in specs["slow"]["error"]["message"] and specs["other"]["status"] == "pass"
    assert no_process_left(str(tmp_path))


# ------------------------------------------------------------------------------------------ interrupts and exits

@pytest.mark.parametrize("sent, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_ends_with_its_code_and_one_line_and_leaves_no_child(tmp_path, sent, code):
    spec = op_spec(tmp_path, "sleeps", "Sleeps")
    process = subprocess.Popen([sys.executable, "-m", "gradcheck", "run", str(spec)], cwd=tmp_path,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _children(process.pid) == []:  # the checking child has started
        time.sleep(0.05)
    process.send_signal(sent)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code
    assert err.strip().splitlines()[-1] == "gradcheck: interrupted" and "Traceback" not in err
    assert no_process_left(str(tmp_path))


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.parametrize("op", ["ExitsInVjp", "SysExit", "RaisesOdd", "RaisesGeneratorExit", "RaisesKeyboardInterrupt"])
@pytest.mark.parametrize("command", [["run"], ["explain"], ["graph"], ["run", "--format", "json"]])
def test_an_op_that_exits_or_raises_cannot_pass_in_any_command(tmp_path, op, command):
    spec = op_spec(tmp_path, "exits", op)
    ran = gradcheck(*command, spec, cwd=tmp_path, timeout=60)
    assert ran.code == 2
    assert len([line for line in ran.lines if "error:" in line]) == 1
    assert no_process_left(str(tmp_path))


@pytest.mark.parametrize("command", [["explain"], ["graph"], ["graph", "--format", "dot"], ["explain", "--format", "json"]])
def test_explain_and_graph_write_failures_are_one_line(tmp_path, command):
    spec = write(tmp_path, "ok.yaml", PASSING)
    for target, fragment in (("/dev/full", "No space left"), (tmp_path / "nodir" / "x.txt", "cannot write")):
        ran = gradcheck(*command, spec, "--output", target, cwd=tmp_path)
        assert ran.code == 2 and len(ran.lines) == 1 and fragment in ran.err, ran.err


def test_run_to_a_full_stdout_is_one_line_and_exit_2(tmp_path):
    spec = write(tmp_path, "ok.yaml", PASSING)
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "gradcheck", "run", str(spec), "--format", "json"], cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=TIMEOUT)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert [line for line in done.stderr.splitlines() if "error" in line] == [
        "gradcheck: error: cannot write to standard output: No space left on device"]


# ------------------------------------------------------------------------------------------ output files

@pytest.mark.parametrize("target", ["spec.yaml", "myops.py", "data.csv"])
def test_output_never_replaces_a_file_the_run_reads(tmp_path, target):
    write(tmp_path, "myops.py", OPS)
    write(tmp_path, "data.csv", "1.0,2.0\n")
    spec = write(tmp_path, "spec.yaml", """
        ops: {f: "myops:Base"}
        inputs:
          x: {file: data.csv}
        nodes:
          y: sum(f(x))
        """)
    before = snapshot(tmp_path)
    ran = gradcheck("run", spec, "--format", "json", "--output", target, cwd=tmp_path)
    assert ran.code == 2 and "which this run reads" in ran.err
    assert {k: v for k, v in snapshot(tmp_path).items() if "__pycache__" not in k} == before


def test_output_dash_is_stdout(tmp_path):
    spec = write(tmp_path, "ok.yaml", PASSING)
    ran = gradcheck("run", spec, "--format", "json", "--output", "-", cwd=tmp_path)
    assert ran.code == 0 and json.loads(ran.out)["ok"] is True
    assert not (tmp_path / "-").exists()


def test_a_terminated_write_keeps_the_previous_report(tmp_path):
    spec = write(tmp_path, "ok.yaml", PASSING)
    report = tmp_path / "report.json"
    report.write_text("previous report\n")
    process = subprocess.Popen([sys.executable, "-m", "gradcheck", "run", str(spec), "--format", "json",
                                "--output", str(report)], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert report.read_text() in ("previous report\n",) or json.loads(report.read_text())["ok"] is True
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------------ terminal escapes

ESCAPES = r"""
    name: "\e[2K\e[1G\e[32mPASS\e[0m"
    description: "clears \e[2J the screen"
    inputs:
      x: [1.0, 2.0]
    nodes:
      y: sum(wrong(x))
    ops: {wrong: "myops:Wrong"}
    """


@pytest.mark.parametrize("command", [["run"], ["run", "-v"], ["explain"], ["explain", "--format", "markdown"],
                                     ["graph"], ["graph", "--format", "dot"], ["graph", "--format", "mermaid"]])
def test_control_characters_in_the_spec_are_shown_escaped(tmp_path, command):
    write(tmp_path, "myops.py", OPS + textwrap.dedent("""
    class Wrong(Base):
        def vjp(self, g, out, x):
            print("\\x1b[2J")
            return (2 * g,)
    """))
    spec = write(tmp_path, "esc.yaml", ESCAPES)
    ran = gradcheck(*command, spec, cwd=tmp_path)
    shown = ran.out + ran.err
    for raw in ("\x1b[2K", "\x1b[1G", "\x1b[32mPASS", "\x1b[2J"):
        assert raw not in shown
    assert "\\x1b[2J" in shown  # what the op printed, shown escaped in the note
    if "mermaid" not in command:  # mermaid draws no title
        assert "\\x1b[2K\\x1b[1G" in shown or "\\\\x1b[2K" in shown


def test_an_error_message_quoting_user_text_is_escaped(tmp_path):
    spec = write(tmp_path, "bad.yaml", 'inputs:\n  x: 1.0\nnodes:\n  y: "sin(x) + z\\e[2J"\n')
    ran = gradcheck("run", spec, cwd=tmp_path)
    assert ran.code == 2 and "\x1b" not in ran.err + ran.out


# ------------------------------------------------------------------------------------------ identifiers

def test_two_names_python_would_read_as_one_are_an_error_naming_both(tmp_path):
    spec = write(tmp_path, "nfkc.yaml", "inputs:\n  H: 2.0\n  ℌ: 3.0\nnodes:\n  y: H * ℌ\n")
    ran = gradcheck("run", spec, cwd=tmp_path)
    assert ran.code == 2
    assert ran.lines[0].startswith(f"{spec}:3:3: error:") and "'ℌ'" in ran.err and "'H'" in ran.err


def test_names_are_reported_and_bound_as_written(tmp_path):
    spec = write(tmp_path, "ligature.yaml", "inputs:\n  ﬁ: 3.0\nnodes:\n  y: ﬁ * ﬁ\nexpect: {grad: {ﬁ: 6.0}}\n")
    ran = gradcheck("run", spec, "--format", "json", cwd=tmp_path)
    assert ran.code == 0, ran.err
    assert [node["name"] for node in json.loads(ran.out)["specs"][0]["nodes"]] == ["ﬁ", "y"]
    # an op name written with a compatibility character is not the built-in op it normalises to
    lookalike = write(tmp_path, "op.yaml", "inputs:\n  x: 1.0\nnodes:\n  y: ｓin(x)\n")
    ran = gradcheck("run", lookalike, cwd=tmp_path)
    assert ran.code == 2 and "unknown op 'ｓin'" in ran.err


# ------------------------------------------------------------------------------------------ op modules

@pytest.mark.parametrize("reference", ["antigravity:geohash", "this:s", "idlelib.idle:x", "test.autotest:x",
                                       "multiprocessing.pool:Pool", "os:system"])
def test_a_standard_library_module_is_refused_before_it_is_imported(tmp_path, reference):
    spec = write(tmp_path, "stdlib.yaml", f'ops: {{f: "{reference}"}}\ninputs:\n  x: 1.0\nnodes:\n  y: f(x)\n')
    home = tmp_path / "home"
    home.mkdir()
    ran = gradcheck("run", spec, "--format", "json", cwd=tmp_path, env={"HOME": str(home), "BROWSER": "false"})
    assert ran.code == 2
    assert "standard library" in json.loads(ran.out)["specs"][0]["error"]["message"]  # stdout is still the JSON
    assert list(home.iterdir()) == []  # idlelib would have written ~/.idlerc
    assert no_process_left(str(tmp_path))


def test_no_custom_ops_refuses_every_op_before_anything_is_imported(tmp_path):
    marker = tmp_path / "imported"
    write(tmp_path, "layer.py", f"open({str(marker)!r}, 'w').close()\nclass Op:\n    pass\n")
    spec = write(tmp_path, "ops.yaml", 'ops: {f: "layer:Op"}\ninputs:\n  x: 1.0\nnodes:\n  y: f(x)\n')
    for command in ("run", "explain", "graph"):
        ran = gradcheck(command, spec, "--no-custom-ops", cwd=tmp_path)
        assert ran.code == 2 and "--no-custom-ops" in ran.err and f"{spec}:1:" in ran.err
    assert not marker.exists()


def test_an_op_module_beside_the_spec_is_found_first_and_leaves_no_pycache(tmp_path):
    write(tmp_path, "json.py", "class Op:\n    def forward(self, x):\n        return 2 * x\n"
                               "    def vjp(self, g, out, x):\n        return (2 * g,)\n")
    spec = write(tmp_path, "local.yaml", 'ops: {f: "json:Op"}\ninputs:\n  x: 1.0\nnodes:\n  y: f(x)\n')
    ran = gradcheck("run", spec, "--format", "json", cwd=tmp_path)
    assert ran.code == 0, ran.err
    assert not list(tmp_path.rglob("__pycache__"))


def test_an_op_that_prints_does_not_corrupt_json_and_is_shown_escaped(tmp_path):
    spec = op_spec(tmp_path, "prints", "Prints")
    ran = gradcheck("run", spec, "--format", "json", cwd=tmp_path)
    assert ran.code == 0, ran.err
    notes = json.loads(ran.out)["specs"][0].get("notes", [])
    assert any("from the op" in note for note in notes) or "from the op" in ran.err
    table = gradcheck("run", spec, cwd=tmp_path)
    assert "\x1b[2J" not in table.out + table.err and "\\x1b[2J hello from the op" in table.out + table.err


# ------------------------------------------------------------------------------------------ data files

def test_a_data_file_outside_the_spec_folder_is_refused_unless_allowed(tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("1.0,2.0\n")
    folder = tmp_path / "specs" / "deep"
    spec = write(folder, "outside.yaml", "inputs:\n  x: {file: ../../outside.csv}\nnodes:\n  y: sum(x)\n")
    ran = gradcheck("run", spec, cwd=tmp_path)
    assert ran.code == 2 and "outside the spec's folder" in ran.err and f"{spec}:2:" in ran.err
    assert gradcheck("run", spec, "--allow-outside-files", cwd=tmp_path).code == 0


def test_a_link_to_a_file_elsewhere_is_refused_and_never_echoed(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("root:x:0:0:hunter2\n")
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "data.csv").symlink_to(secret)
    spec = write(folder, "link.yaml", "inputs:\n  x: {file: data.csv}\nnodes:\n  y: sum(x)\n")
    ran = gradcheck("run", spec, cwd=tmp_path)
    assert ran.code == 2 and "outside the spec's folder" in ran.err
    allowed = gradcheck("run", spec, "--allow-outside-files", "--format", "json", cwd=tmp_path)
    assert allowed.code == 2
    assert "hunter2" not in allowed.out + allowed.err and "root:x" not in allowed.out + allowed.err
    assert "line 1, column 1" in allowed.err


def test_a_malformed_data_file_is_located_by_line_and_column_only(tmp_path):
    write(tmp_path, "bad.csv", "1.0,2.0\n3.0,password123\n")
    write(tmp_path, "bad.npy", "\x93NUMPY garbage {'descr': 'secret-header'}")
    for data, where in (("bad.csv", "line 2, column 2"), ("bad.npy", "not a .npy array")):
        spec = write(tmp_path, f"{data}.yaml", f"inputs:\n  x: {{file: {data}}}\nnodes:\n  y: sum(x)\n")
        ran = gradcheck("run", spec, cwd=tmp_path)
        assert ran.code == 2 and where in ran.err
        assert "password123" not in ran.err and "secret-header" not in ran.err


def test_inputs_are_read_within_the_budget_and_the_input_is_named(tmp_path):
    spec = write(tmp_path, "inputs.yaml", """
        inputs:
          a: {shape: [10000000], init: normal}
          b: {shape: [10000000], init: normal}
          c: {shape: [10000000], init: normal}
        nodes:
          y: sum(a)
        """)
    ran = gradcheck("run", spec, "--max-memory", "150M", cwd=tmp_path)
    assert ran.code == 2 and "out of memory" in ran.err and f"{spec}:" in ran.err and "input '" in ran.err
    assert ran.peak <= 150 * MiB


OP_FAULTS = OPS + """
    class Strings(Base):
        def forward(self, x):
            return np.array(["a", "b"])

    class Complex(Base):
        def forward(self, x):
            return x * 1j

    class Mapping(Base):
        def forward(self, x):
            return {"a": 1}

    class FailsToConstruct:
        def __init__(self):
            raise RuntimeError("boom")

    class Recurses(Base):
        def forward(self, x):
            return self.forward(x)
"""


@pytest.mark.parametrize("op", ["Strings", "Complex", "Mapping", "FailsToConstruct", "Recurses"])
@pytest.mark.parametrize("command", [["run"], ["explain"], ["graph"], ["graph", "--format", "dot"]])
def test_an_op_fault_is_one_located_line_in_every_command(tmp_path, op, command):
    write(tmp_path, "myops.py", OP_FAULTS)
    spec = write(tmp_path, "fault.yaml", f'ops: {{f: "myops:{op}"}}\ninputs:\n  x: [1.0, 2.0]\nnodes:\n  y: sum(f(x))\n')
    ran = gradcheck(*command, spec, cwd=tmp_path, timeout=60)
    assert ran.code == 2
    errors = [line for line in ran.lines if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"{spec}:")


@pytest.mark.parametrize("command", [["ops"], ["ops", "--json"], ["schema"], ["--help"], ["--version"], ["run", "--help"]])
def test_every_command_writing_to_a_full_device_ends_with_one_line(tmp_path, command):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "gradcheck", *command], cwd=tmp_path, stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=TIMEOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert done.stderr.strip() == "gradcheck: error: cannot write to standard output: No space left on device"


def test_a_module_in_the_working_folder_cannot_replace_one_gradcheck_imports(tmp_path):
    marker = tmp_path / "ran"
    for module in ("json", "numpy", "yaml", "rich"):
        write(tmp_path, f"{module}.py", f"open({str(marker)!r}, 'w').close()\n")
    spec = write(tmp_path, "ok.yaml", PASSING)
    ran = gradcheck("run", spec, "--format", "json", cwd=tmp_path)
    assert ran.code == 0 and json.loads(ran.out)["ok"] is True
    assert not marker.exists()


# ------------------------------------------------------------------------------------------ the pieces, in process

def test_visible_escapes_every_character_that_drives_a_terminal_and_nothing_else():
    from gradcheck.format import visible, visible_line

    assert visible("\x1b[2J") == "\\x1b[2J"
    assert visible_line("a\tb\nc\rd") == "a\\tb\\nc\\rd" and visible("a\tb\nc\rd") == "a\tb\nc\\rd"
    assert visible("\x7f\x85\u202e\u200b\u2028") == "\\x7f\\x85\\u202e\\u200b\\u2028"
    assert visible("ωℌ é ﬁ ∂L/∂x [1, 2]") == "ωℌ é ﬁ ∂L/∂x [1, 2]"
    assert visible(visible("\x1b")) == visible("\x1b")


def test_peak_elements_states_the_largest_intermediate_from_shapes():
    from gradcheck.ops import BUILTIN_OPS

    def peak(op, shapes, **params):
        return BUILTIN_OPS[op].peak_elements(shapes, BUILTIN_OPS[op].check_params(params))

    assert peak("attention", [(2, 7, 3), (5, 3), (5, 4)]) == 2 * 7 * 5
    # padded input 1*2*(4+2)*(5+2) = 84; windows N*C*OH*OW*KH*KW = 1*2*4*5*3*3 = 360 (OH = 4+2-3+1, OW = 5+2-3+1)
    assert peak("conv2d", [(1, 2, 4, 5), (3, 2, 3, 3), (3,)], padding=1) == 360
    # a length-9 signal with a kernel of 4: 6 windows of 4 taps, for 2 channels
    assert peak("conv1d", [(1, 2, 9), (3, 2, 4), (3,)]) == 2 * 6 * 4
    assert peak("max_pool2d", [(1, 1, 4, 6)], kernel=2) == 2 * 3 * 2 * 2
    assert peak("sin", [(3,)]) is None


def test_the_footprint_counts_values_gradients_and_the_largest_op(tmp_path):
    from gradcheck.graph import build_graph
    from gradcheck.pipeline import load
    from gradcheck.sizing import TRANSIENT_COPIES, WORD, footprint, node_shapes

    spec = write(tmp_path, "chain.yaml", "inputs:\n  x: {shape: [1000], init: normal}\nnodes:\n  a: sin(x)\n"
                                         "  y: sum(a * a)\n")
    graph = build_graph(load(spec))
    shapes = node_shapes(graph)
    assert shapes == [(1000,), (1000,), (1000,), ()]
    need = footprint(graph, shapes, "float64", budget=None)
    # x: value, its one gradient, the judge's array, the spec's array = 4; a: value, two consumers' gradients and
    # their sum, the judge's = 5; a*a: 3; the scalar: 3 words
    assert need.kept == WORD * (4 * 1000 + 5 * 1000 + 3 * 1000 + 3)
    assert need.peak >= WORD * TRANSIENT_COPIES * 1000



@pytest.mark.parametrize("command", [["run", "--format", "json"], ["explain"], ["graph", "--format", "dot"]])
@pytest.mark.parametrize("target", ["myops.py", "data.csv"])
def test_no_command_writes_over_an_op_module_or_data_file_even_when_the_spec_fails(tmp_path, command, target):
    write(tmp_path, "myops.py", OPS)
    write(tmp_path, "data.csv", "1.0,2.0\n")
    spec = write(tmp_path, "spec.yaml", """
        ops: {f: "myops:Strings"}
        inputs:
          x: {file: data.csv}
        nodes:
          y: sum(f(x))
        """)
    before = snapshot(tmp_path)
    ran = gradcheck(*command, spec, "--output", target, cwd=tmp_path)
    assert ran.code == 2 and "which this run reads" in ran.err and len(ran.lines) == 1
    assert {k: v for k, v in snapshot(tmp_path).items() if "__pycache__" not in k} == before
