"""gradcheck against torch.autograd.gradcheck, measured side by side in the same run (issue 12's targets).

    python bench/bench_speed.py [--repeat 3] [--only mlp,nets,chain,fast,methods,threads,startup]

Every measurement runs in a fresh child process (so its peak memory is its own): the best of --repeat
runs, and of at least a second of runs (for a row whose checks take under 0.1 s, in three processes per
tool, alternating with the other's), BLAS pinned to --threads threads (OPENBLAS_NUM_THREADS and friends set
before numpy loads; with threadpoolctl installed, the pools it reports are printed).  torch is optional: without it the torch
columns say so.  gradcheck's --mode full checks every node; torch's full check checks the inputs only.
Both timers start with the model in memory: torch's with the function and tensors built, gradcheck's with
the spec file read (the time to read it is in the notes); building the graph and every pass are timed.
Not part of the test suite.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_VERBOSE")
MLP_WIDTHS = {"1.4k": 32, "4.8k": 64, "17.8k": 128, "68k": 256}  # square hidden layer, 10 classes, batch 32
RUN_BUDGET, MAX_RUNS = 1.0, 400  # each tool's check repeated for at least this many seconds, at most this many times
SHORT_CHECK = 0.1  # seconds: a row whose checks both take less is measured in ROUNDS_OF_SHORT_CHECKS processes
ROUNDS_OF_SHORT_CHECKS = 3  # fresh processes per tool, alternating, for a row whose checks take under SHORT_CHECK


# ---------------------------------------------------------------------------------------------- the models
def mlp_spec(width: int) -> str:
    import numpy as np

    labels = np.random.default_rng(0).integers(0, 10, 32).tolist()
    return textwrap.dedent(f"""
        name: tanh MLP {width}-{width}-10
        seed: 0
        inputs:
          X: {{shape: [32, {width}], init: normal, requires_grad: false}}
          labels: {{value: {labels}, dtype: int64}}
          W1: {{shape: [{width}, {width}], init: normal, std: {width ** -0.5:.5f}}}
          b1: {{shape: [{width}], init: uniform, low: -0.1, high: 0.1}}
          W2: {{shape: [{width}, 10], init: normal, std: {width ** -0.5:.5f}}}
          b2: {{shape: [10], init: zeros}}
        nodes:
          h: tanh(X @ W1 + b1)
          logits: h @ W2 + b2
          loss: cross_entropy(logits, labels)
    """)


CNN_2K = textwrap.dedent("""
    name: 2k-parameter CNN
    seed: 4
    inputs:
      images: {shape: [4, 1, 8, 8], init: normal, requires_grad: false}
      labels: {value: [3, 17, 0, 25], dtype: int64}
      kernels: {shape: [8, 1, 3, 3], init: normal, std: 0.4}
      kernel_bias: {shape: [8], init: uniform, low: -0.1, high: 0.1}
      W: {shape: [72, 26], init: normal, std: 0.15}
      b: {shape: [26], init: zeros}
    nodes:
      features: tanh(conv2d(images, kernels, kernel_bias, stride=1, padding=0))
      pooled: max_pool2d(features, kernel=2)
      flat: reshape(pooled, shape=(4, 72))
      logits: flat @ W + b
      loss: cross_entropy(logits, labels)
""")


def torch_model(kind: str, spec):
    """(function of the inputs torch checks, those inputs) for the same model and numbers as the spec."""
    import torch
    import torch.nn.functional as F

    values = {name: torch.tensor(entry.value, dtype=torch.float64 if entry.value.dtype.kind == "f" else torch.int64)
              for name, entry in spec.inputs.items()}
    checked = [name for name, entry in spec.inputs.items() if entry.requires_grad and entry.value.dtype.kind == "f"]
    for name in checked:
        values[name].requires_grad_(True)

    def bind(fn):
        return lambda *args: fn({**values, **dict(zip(checked, args, strict=True))})

    if kind == "mlp":
        def model(v):
            return F.cross_entropy(torch.tanh(v["X"] @ v["W1"] + v["b1"]) @ v["W2"] + v["b2"], v["labels"])
    elif kind in ("cnn", "cnn-tanh"):
        activation = torch.relu if kind == "cnn" else torch.tanh

        def model(v):
            features = activation(F.conv2d(v["images"], v["kernels"], v["kernel_bias"]))
            pooled = F.max_pool2d(features, 2)
            return F.cross_entropy(pooled.reshape(pooled.shape[0], -1) @ v["W"] + v["b"], v["labels"])
    elif kind == "transformer":
        def model(v):
            tokens, width, heads = 6, 32, 4
            h1 = F.layer_norm(v["x"], (width,), v["ln1_gain"], v["ln1_bias"], eps=1e-5)
            split = [(h1 @ v[w]).reshape(tokens, heads, width // heads).transpose(0, 1) for w in ("Wq", "Wk", "Wv")]
            heads_out = F.scaled_dot_product_attention(*split, is_causal=True)
            r1 = v["x"] + heads_out.transpose(0, 1).reshape(tokens, width) @ v["Wo"]
            h2 = F.layer_norm(r1, (width,), v["ln2_gain"], v["ln2_bias"], eps=1e-5)
            r2 = r1 + F.gelu(h2 @ v["W1"] + v["b1"], approximate="tanh") @ v["W2"] + v["b2"]
            return F.mse_loss(r2, v["target"])
    else:
        raise ValueError(kind)
    return bind(model), [values[name] for name in checked]


# ---------------------------------------------------------------------------------------------- one measurement
def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """The process's peak resident memory (VmHWM: unlike ru_maxrss it does not carry the parent's peak over exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(task: dict) -> dict:
    """Runs in the child: the best of the runs (see RUN_BUDGET) and the peak memory above what the process held before."""
    import numpy as np

    np.seterr(all="ignore")
    spec_path = Path(task["spec"]) if task.get("spec") else None
    if task["tool"] == "gradcheck":
        import gradcheck.pipeline  # noqa: F401  (every module a check uses, loaded before the baseline)
        from gradcheck import CheckOptions
        from gradcheck.ops import load_builtin_ops
        from gradcheck.pipeline import load, run_loaded
        from gradcheck.spec import Overrides

        load_builtin_ops()

        options = CheckOptions(mode=task.get("mode", "full"))
        overrides = Overrides(method=task.get("method"))
        loads = []
        for _ in range(task["repeat"]):
            start = time.perf_counter()
            spec = load(spec_path, overrides)
            loads.append(time.perf_counter() - start)

        def run():
            # like torch's timer, which starts with the model and its inputs built: the YAML is read outside it
            # (its time is reported beside, as "load"); building the graph and both passes are inside
            return run_loaded(spec, options).result
    else:
        import torch

        from gradcheck.spec import load_spec

        torch.set_num_threads(task["threads"])
        fn, inputs = torch_model(task["model"], load_spec(spec_path))

        def run():
            return torch.autograd.gradcheck(fn, inputs, fast_mode=task.get("fast", False))
    baseline = rss_mb()
    times, cpu_times, outcome = [], [], None
    # each tool gets the same time to show its best (at least `repeat` runs): on a shared machine the best of 3
    # runs of a 5 ms check swings up to 2x, while the best of a second's worth holds (the first run, which warms
    # torch up for most of a second, is not counted against the time)
    while len(times) < task["repeat"] or (sum(times[1:]) < RUN_BUDGET and len(times) < MAX_RUNS):
        start, cpu_start = time.perf_counter(), time.process_time()
        outcome = run()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    result = {"seconds": min(times), "cpu_seconds": min(cpu_times), "peak_mb": max(peak_mb() - baseline, 0.0),
              "runs": len(times)}
    if task["tool"] == "gradcheck":
        result["load_seconds"] = min(loads)
        result["status"] = str(outcome.status)
        result["nodes"] = len([n for n in outcome.nodes if n.checked != "none"])
        result["checked"] = sorted({n.checked for n in outcome.nodes if n.checked != "none"})
    else:
        result["status"] = "pass" if outcome else "fail"
    return result


def best(kept: dict, again: dict) -> dict:
    """Two measurements of one task merged: the shorter times, the larger peak, the runs summed."""
    if "error" in again:
        return kept
    return {**kept, "seconds": min(kept["seconds"], again["seconds"]),
            "cpu_seconds": min(kept["cpu_seconds"], again["cpu_seconds"]),
            "peak_mb": max(kept["peak_mb"], again["peak_mb"]), "runs": kept["runs"] + again["runs"]}


def measure(task: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[variable] = str(task["threads"])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(task)], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def startup_environment() -> dict[str, str]:
    """The environment of the start-up measurements: gradcheck from this checkout, its bytecode cached as an
    installed package's is (PYTHONDONTWRITEBYTECODE would make every run compile gradcheck from source)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def process_ms(commands: dict[str, list[str]], runs: int = 20) -> tuple[dict[str, float], dict[str, float]]:
    """The median and the best wall time (ms) of each whole process over ``runs`` runs, the commands interleaved
    (so a change of load hits all alike), after one warm-up run each (the file cache, the bytecode)."""
    env = startup_environment()
    for command in commands.values():
        subprocess.run(command, env=env, capture_output=True, stdin=subprocess.DEVNULL)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, env=env, capture_output=True, stdin=subprocess.DEVNULL)
            times[name].append((time.perf_counter() - start) * 1000)
    return ({name: statistics.median(values) for name, values in times.items()},
            {name: min(values) for name, values in times.items()})


# One `gradcheck run SPEC` as the console script runs it (gradcheck.entry's collector handling: paused while
# gradcheck.cli, the check's modules and PyYAML load), with a clock read between its stages: the stages are wrapped
# from outside, the command's code is unchanged, except that the table renderer (which the command imports when it
# first draws) is imported as a stage of its own, just before; off a terminal the table is laid out without rich,
# so rich is not imported at all (the process's stdout is a pipe here).  With STOP_AT=k in its environment the
# process ends (os._exit, output flushed) at its k-th mark: the instructions of each prefix of the run, whose
# differences are the stages'.  It ends as the entry ends it (after the exit handlers, without the teardown).
STAGED_RUN = r"""
import gc, os, sys, time
marks = [("start", time.time())]
STOP_AT = int(os.environ.get("STOP_AT", "0"))
def mark(name):
    marks.append((name, time.time()))
    if len(marks) == STOP_AT:
        sys.stdout.flush(); sys.stderr.flush(); os._exit(0)
import numpy
mark("import numpy")
gc.disable()
import gradcheck.cli as cli
mark("import gradcheck.cli")
import gradcheck.pipeline as pipeline
mark("import the check (gradcheck.pipeline)")
from gradcheck.yamlsource import pyyaml
pyyaml()  # as gradcheck.entry imports it
gc.freeze(); gc.enable()
mark("import yaml")
load, run_loaded, render = pipeline.load, pipeline.run_loaded, cli._render
def staged(function, before, after, imports=()):
    def call(*args, **kwargs):
        mark(before)
        if imports:
            for module in imports:
                __import__(module)
            mark(f"import {', '.join(imports)}")
        value = function(*args, **kwargs)
        mark(after)
        return value
    return call
pipeline.load = staged(load, "set-up (discovery, options, limits)", "read the YAML spec")
pipeline.run_loaded = staged(run_loaded, "set-up (discovery, options, limits)", "check (graph, passes, judge)")
cli._render = staged(render, "the result, the report's options", "render the table",
                     ("gradcheck.report.table",))
sys.argv = ["gradcheck", "run", sys.argv[1]]
code = 0
try:
    cli.main()
except SystemExit as stop:
    code = stop.code
gc.freeze()
mark("(end)")
sys.__stderr__.write("STAGES " + repr(marks) + "\n")
from gradcheck.entry import _end_process
_end_process(code)  # as the entry ends the process (the interpreter's own exit where it must)
"""

INTERPRETER = "interpreter start-up (to the first line)"
EXIT = "exit (summary, exit handlers, the process's end)"
SHARE = "gradcheck's share (the whole - interpreter - numpy)"


def staged_marks(output: str) -> list[tuple[str, float]]:
    line = [text for text in output.splitlines() if text.startswith("STAGES ")]
    if not line:
        raise RuntimeError(f"the staged run failed: {output[-500:]}")
    return ast.literal_eval(line[-1].removeprefix("STAGES "))


def add_stage(stages: dict[str, float], name: str, amount: float) -> None:
    stages[name] = stages.get(name, 0.0) + amount  # the set-up between stages is one stage however often it runs


def clean_interpreter(folder: Path) -> str:
    """A fresh virtual environment's python (as `pip install .` into a new venv gives a user), which sees this
    python's numpy, PyYAML, click, rich and torch through one .pth of plain directories: the .pth files of this
    machine's site-packages (an editable install's finder, a sandbox's certificate set-up) are not run at its
    start-up, as they are not in a user's venv.  This python itself where a venv cannot be made."""
    import importlib.util

    venv = folder / "clean-venv"
    made = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True)
    python = venv / "bin" / "python"
    if made.returncode != 0 or not python.exists():
        return sys.executable
    directories = []
    for package in ("numpy", "yaml", "click", "rich", "pygments", "markdown_it", "mdurl", "torch"):
        found = importlib.util.find_spec(package)
        if found is not None and found.origin:
            directory = str(Path(found.origin).parent.parent)
            if directory not in directories:
                directories.append(directory)
    site_packages = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True).stdout.strip()
    Path(site_packages, "bench-dependencies.pth").write_text("\n".join(directories) + "\n")
    return str(python)


def startup_stages(python: str, spec: Path, runs: int = 10) -> tuple[dict[str, float], float]:
    """Medians (ms) of the stages of one run of ``spec``, from the process's launch to its end, and of the whole."""
    env = startup_environment()
    command = [python, "-c", STAGED_RUN, str(spec)]
    subprocess.run(command, env=env, capture_output=True, stdin=subprocess.DEVNULL)
    stages: dict[str, list[float]] = {}
    wholes = []
    for _ in range(runs):
        launched = time.time()
        done = subprocess.run(command, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        ended = time.time()
        marks = staged_marks(done.stdout + done.stderr)
        previous = launched
        timed = {INTERPRETER: marks[0][1] - launched}
        for name, at in marks[1:]:
            if not name.startswith("("):
                add_stage(timed, name, at - previous)
            previous = at
        timed[EXIT] = ended - marks[-2][1]
        timed[SHARE] = ended - launched - timed[INTERPRETER] - timed["import numpy"]
        for name, seconds_taken in timed.items():
            stages.setdefault(name, []).append(seconds_taken * 1000)
        wholes.append((ended - launched) * 1000)
    return {name: statistics.median(values) for name, values in stages.items()}, statistics.median(wholes)


def instructions(command: list[str], extra_env: dict[str, str] | None = None) -> tuple[int, str]:
    """User-space instructions the whole process executes (valgrind's count: the same on every run, unlike time
    on a shared machine), with its stderr.  One BLAS thread and a fixed hash seed, so nothing spins or varies."""
    env = {**startup_environment(), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
           **(extra_env or {})}
    done = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                           *command], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    counted = [line for line in done.stderr.splitlines() if "I   refs:" in line or "I refs:" in line]
    if not counted:
        raise RuntimeError(f"valgrind counted nothing: {done.stderr[-500:]}")
    return int(counted[-1].split(":")[-1].replace(",", "")), done.stderr


def startup_instructions(python: str, spec: Path) -> tuple[dict[str, float], float]:
    """Millions of instructions of each stage of the staged run (the differences between its prefixes), and of the
    whole process."""
    command = [python, "-c", STAGED_RUN, str(spec)]
    whole, stderr = instructions(command)
    marks = [name for name, _ in staged_marks(stderr)]
    reached, _ = instructions([python, "-c", "import os; os._exit(0)"])
    stages = {INTERPRETER: reached / 1e6}
    for stop in range(2, len(marks)):  # marks[0] is the start; the last, "(end)", is the exit's start
        count, _ = instructions(command, {"STOP_AT": str(stop)})
        add_stage(stages, marks[stop - 1], (count - reached) / 1e6)
        reached = count
    stages[EXIT] = (whole - reached) / 1e6
    stages[SHARE] = whole / 1e6 - stages[INTERPRETER] - stages["import numpy"]
    return stages, whole / 1e6


TORCH_NEURON = """
import torch
w = torch.tensor([2.0, -3.0, -3.0], dtype=torch.float64, requires_grad=True)
x = torch.tensor([-1.0, -2.0], dtype=torch.float64, requires_grad=True)
f = lambda w, x: torch.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])
print(torch.autograd.gradcheck(f, (w, x)))
"""


def startup(table: Table, folder: Path, torch_here: str | None) -> None:
    """Issue 12 point 3: import gradcheck.cli <= 60 ms above numpy; a one-spec run <= 100 ms whole process,
    beside the torch script doing the same check; then the run's stages, and gradcheck's share of it, in
    milliseconds (10-run medians) and, where valgrind is installed, in instructions (the same on every run).
    Every process runs in a fresh venv (clean_interpreter), as a user's would."""
    python = clean_interpreter(folder)
    if python == sys.executable:
        print("start-up: no fresh venv could be made; measured with this python, whose site-packages' .pth files run")
    spec = ROOT / "specs/neuron_sigmoid.yaml"
    commands = {"bare": [python, "-c", "pass"], "numpy": [python, "-c", "import numpy"],
                "cli": [python, "-c", "import gradcheck.cli"], "numpy+cli": [python, "-c", "import numpy, gradcheck.cli"],
                "run": [python, "-m", "gradcheck", "run", str(spec)]}
    if python != sys.executable:
        commands["host bare"] = [sys.executable, "-c", "pass"]
    if torch_here:
        script = folder / "neuron_sigmoid_torch.py"
        script.write_text(TORCH_NEURON)
        commands["torch"] = [python, str(script)]
    ms, best = process_ms(commands)
    counted = shutil.which("valgrind") is not None
    count = {name: instructions(commands[name])[0] / 1e6 for name in ("bare", "numpy", "cli", "numpy+cli", "run")} \
        if counted else {}
    pace = count["numpy"] / best["numpy"] if counted else 0.0  # M instructions per ms, in numpy's best run

    def at_pace(name: str, base: str) -> str:
        return (f"; {count[name] - count[base]:.0f} M instructions above {base}, {(count[name] - count[base]) / pace:.0f} "
                f"ms at the pace of numpy's best run" if counted else "")

    loads_numpy = subprocess.run([python, "-c", "import sys, gradcheck.cli; print('numpy' in sys.modules)"],
                                 env=startup_environment(), capture_output=True, text=True).stdout.strip() == "True"
    above = ms["numpy+cli"] - ms["numpy"]
    table.add("import gradcheck.cli, above import numpy", f"{above:.0f} ms", "-", "-", "<= 60 ms",
              "yes" if above <= 60 else "NO",
              f"20-run medians: numpy then gradcheck.cli {ms['numpy+cli']:.0f} ms vs numpy {ms['numpy']:.0f} ms "
              f"(best {best['numpy+cli']:.0f} vs {best['numpy']:.0f}){at_pace('numpy+cli', 'numpy')}; "
              f"gradcheck.cli alone ({'it loads numpy' if loads_numpy else 'it loads no numpy'}) {ms['cli']:.0f} ms, "
              f"best {best['cli']:.0f}"
              f"{at_pace('cli', 'bare')}")
    torch_ms = ms.get("torch")
    table.add("gradcheck run neuron_sigmoid.yaml (process)", f"{ms['run']:.0f} ms",
              f"{torch_ms:.0f} ms" if torch_ms else "-", f"{torch_ms / ms['run']:.1f}x" if torch_ms else "-",
              "<= 100 ms", "yes" if ms["run"] <= 100 else "NO",
              f"best {best['run']:.0f} ms; floor: python -c pass {ms['bare']:.0f} ms (best {best['bare']:.0f}), "
              f"python -c 'import numpy' {ms['numpy']:.0f} ms (best {best['numpy']:.0f}); gradcheck's share (whole - "
              f"numpy's process) {ms['run'] - ms['numpy']:.0f} ms{at_pace('run', 'numpy')}"
              + ("" if torch_ms else "; torch not installed: no torch script")
              + (f"; measured in a fresh venv: this machine's python, whose site-packages' .pth files run at its "
                 f"start-up, takes {ms['host bare']:.0f} ms (best {best['host bare']:.0f}) to do nothing"
                 if "host bare" in ms else ""))
    stages, whole = startup_stages(python, spec)
    counts, whole_count = startup_instructions(python, spec) if counted else ({}, 0.0)
    beside = f"; the torch script: {torch_ms:.0f} ms whole process" if torch_ms else ""
    print(f"\nstages of one `gradcheck run {spec.name}` (10-run medians in ms; this staged run: {whole:.0f} ms whole "
          f"process{beside})" + (f"; millions of instructions (valgrind; {whole_count:.0f} M whole process)"
                                 if counted else "; valgrind not installed: no instruction counts"))
    for name, median in stages.items():
        share = f"  ({median / whole:.0%} of the whole)" if name == SHARE else ""
        instructions_text = f"{counts[name]:9.1f} M" if name in counts else ""
        print(f"  {name:58} {median:7.1f} ms {instructions_text}{share}")


# ---------------------------------------------------------------------------------------------- the report
class Table:
    def __init__(self):
        self.rows = []

    def add(self, what, ours, theirs, ratio, target, met, notes=""):
        self.rows.append((what, ours, theirs, ratio, target, met, notes))
        print(self.format(self.rows[-1]), flush=True)

    @staticmethod
    def header() -> str:
        return Table.format(("what", "gradcheck", "torch", "ratio", "target", "met", "notes"))

    @staticmethod
    def format(row) -> str:
        what, ours, theirs, ratio, target, met, notes = row
        return f"| {what:44} | {ours:>16} | {theirs:>16} | {ratio:>9} | {target:>14} | {met:>4} | {notes}"


def seconds(result) -> str:
    if "error" in result:
        return "error"
    if result["seconds"] < 1:  # the fast-mode and small-net rows: a rounding to 1 ms would decide their ratio
        return f"{result['seconds'] * 1e3:.2f} ms"
    return f"{result['seconds']:.3f} s"


def blas_description() -> str:
    try:
        import numpy  # noqa: F401  (loads the BLAS threadpoolctl reports)
        from threadpoolctl import threadpool_info

        pools = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)" for p in threadpool_info()]
        return "; ".join(pools) or "no BLAS pool found"
    except ImportError:
        return "threadpoolctl not installed (pip install threadpoolctl to list the BLAS pools)"


def torch_version() -> str | None:
    """torch's version, without importing it here (each measurement imports what it needs in its own process)."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--only", default="mlp,nets,chain,fast,methods,threads,startup")
    parser.add_argument("--sizes", default=",".join(MLP_WIDTHS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    sections = set(args.only.split(","))
    torch_here = torch_version()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; python {platform.python_version()}")
    print(f"BLAS: {blas_description()}; pinned per measurement to {args.threads} thread(s) via "
          + ", ".join(f"{v}={os.environ.get(v, '(unset)') if v not in BLAS_VARIABLES[:3] else args.threads}"
                      for v in BLAS_VARIABLES))
    print(f"torch: {torch_here or 'not installed: the torch columns are empty (pip install torch to compare)'}; "
          f"best of at least {args.repeat} runs and {RUN_BUDGET:g} s of runs (rows of checks under "
          f"{SHORT_CHECK * 1e3:.0f} ms: in {ROUNDS_OF_SHORT_CHECKS} alternating processes per tool); "
          f"every measurement in a fresh process")
    print(Table.header())
    table = Table()
    folder = Path(tempfile.mkdtemp(prefix="gradcheck-bench-"))

    def task(spec, tool="gradcheck", **extra):
        return {"spec": str(spec), "tool": tool, "repeat": args.repeat, "threads": args.threads, **extra}

    def versus_torch(what, spec, model, target_ratio, gradcheck_extra=None, torch_extra=None, memory=False):
        ours_task = task(spec, **(gradcheck_extra or {"mode": "full"}))
        torch_task = task(spec, "torch", model=model, **(torch_extra or {}))
        ours = measure(ours_task)
        theirs = measure(torch_task) if torch_here else {"error": "no torch"}
        if "error" not in ours and "error" not in theirs and max(ours["seconds"], theirs["seconds"]) < SHORT_CHECK:
            # short checks: more fresh processes, alternating, so that a busy spell of the machine hits both tools
            for _ in range(ROUNDS_OF_SHORT_CHECKS - 1):
                ours, theirs = best(ours, measure(ours_task)), best(theirs, measure(torch_task))
        if "error" in ours or "error" in theirs:
            table.add(what, seconds(ours), seconds(theirs), "-", f">= {target_ratio}x", "?",
                      ours.get("error") or theirs.get("error"))
            return ours, theirs
        speedup = theirs["seconds"] / ours["seconds"]
        cpu_ratio = theirs["cpu_seconds"] / max(ours["cpu_seconds"], 1e-12)
        notes = (f"{ours['status']}, {ours['nodes']} nodes ({'/'.join(ours['checked'])}); "
                 f"best of {ours['runs']} vs {theirs['runs']} runs; "
                 f"CPU {ours['cpu_seconds'] * 1e3:.2f} vs {theirs['cpu_seconds'] * 1e3:.2f} ms ({cpu_ratio:.2f}x); "
                 f"spec read in {ours['load_seconds'] * 1e3:.1f} ms outside the timer")
        met = speedup >= target_ratio
        if memory:
            ratio_mb = ours["peak_mb"] / max(theirs["peak_mb"], 1e-9)
            notes += f"; peak {ours['peak_mb']:.0f} MB vs {theirs['peak_mb']:.0f} MB ({ratio_mb:.2f}, target <= 0.25)"
            met = met and ratio_mb <= 0.25
        target = f">= {target_ratio}x faster" if target_ratio >= 1 else f"<= {1 / target_ratio:g}x torch time"
        table.add(what, seconds(ours), seconds(theirs), f"{speedup:.1f}x", target,
                  "yes" if met else "NO", notes)
        return ours, theirs

    mlps = {}
    for size in args.sizes.split(","):
        path = folder / f"mlp_{size}.yaml"
        path.write_text(mlp_spec(MLP_WIDTHS[size]))
        mlps[size] = path
    if "mlp" in sections:
        for size, path in mlps.items():
            versus_torch(f"MLP {size}: --mode full vs torch full", path, "mlp", 10, memory=True)
    if "nets" in sections:
        cnn2k = folder / "cnn_2k.yaml"
        cnn2k.write_text(CNN_2K)
        for what, path, model in (("shipped small CNN", ROOT / "specs/nn/small_cnn.yaml", "cnn"),
                                  ("2k-parameter CNN (tanh)", cnn2k, "cnn-tanh"),
                                  ("shipped transformer block", ROOT / "specs/nn/transformer_block.yaml", "transformer")):
            versus_torch(f"{what}: --mode full vs torch full", path, model, 3)
    if "fast" in sections:
        for size, path in mlps.items():
            ours, theirs = versus_torch(f"MLP {size}: --mode fast vs torch fast", path, "mlp", 0.5,
                                        {"mode": "fast"}, {"fast": True})
    if "chain" in sections:
        lines = ["inputs:", "  x: 0.5", "nodes:", "  y1: sin(x)"] + [f"  y{i}: sin(y{i - 1})" for i in range(2, 9001)]
        chain = folder / "chain_9000.yaml"
        chain.write_text("\n".join(lines) + "\n")
        result = measure({**task(chain, mode="auto"), "repeat": 1})
        met = "error" not in result and result["seconds"] < 10
        table.add("chain of 9000 sin nodes, default mode", seconds(result), "-", "-", "< 10 s", "yes" if met else "NO",
                  result.get("error") or f"{result['status']}, checked: {'/'.join(result['checked'])}")
    if "methods" in sections:
        for what, path in (("MLP 17.8k", mlps.get("17.8k")), ("transformer block", ROOT / "specs/nn/transformer_block.yaml")):
            if path is None:
                continue
            for method in ("richardson", "complex-step", "five-point", "forward"):
                # central and the method alternate, three rounds, so a change of the machine's load hits both alike;
                # CPU time beside wall time, since a busy machine stretches the wall clock of one and not the other
                rounds = [(measure(task(path, mode="full", method="central")),
                           measure(task(path, mode="full", method=method))) for _ in range(3)]
                if any("error" in result for pair in rounds for result in pair):
                    table.add(f"{what}: --method {method} / central", "-", "-", "-", "<= 3x", "?")
                    continue
                central = min((pair[0] for pair in rounds), key=lambda result: result["seconds"])
                other = min((pair[1] for pair in rounds), key=lambda result: result["seconds"])
                ratio = other["seconds"] / central["seconds"]
                cpu_ratio = (min(pair[1]["cpu_seconds"] for pair in rounds)
                             / min(pair[0]["cpu_seconds"] for pair in rounds))
                table.add(f"{what}: --method {method} / central (full)", seconds(other), "-", f"{ratio:.2f}x",
                          "<= 3x central", "yes" if ratio <= 3 else "NO",
                          f"central {central['seconds']:.3f} s; CPU time {cpu_ratio:.2f}x")
    if "threads" in sections:
        for size in ("17.8k", "68k"):
            if size not in mlps:
                continue
            # the two settings alternate, three rounds, so a change of the machine's load hits both alike
            rounds = [(measure({**task(mlps[size], mode="full"), "threads": 1}),
                       measure({**task(mlps[size], mode="full"), "threads": 2})) for _ in range(3)]
            if any("error" in result for pair in rounds for result in pair):
                continue
            one = min((pair[0] for pair in rounds), key=lambda result: result["seconds"])
            two = min((pair[1] for pair in rounds), key=lambda result: result["seconds"])
            ratio = max(one["seconds"], two["seconds"]) / min(one["seconds"], two["seconds"])
            table.add(f"MLP {size} --mode full: 2 vs 1 BLAS threads", seconds(two), seconds(one) + " (1 thr)",
                      f"{ratio:.2f}x", "within 1.3x", "yes" if ratio <= 1.3 else "NO", "gradcheck in both columns")
    if "startup" in sections:
        startup(table, folder, torch_here)


if __name__ == "__main__":
    main()
