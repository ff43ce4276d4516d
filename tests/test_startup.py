"""What a plain `gradcheck run` loads: only what checking and reporting a spec of built-in ops needs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# the command's own entry, as the console script runs it; then the modules it loaded, on the real stdout
LOADED_BY_A_RUN = """
import json, sys
sys.argv = ["gradcheck", *sys.argv[1:]]
from gradcheck.entry import main
try:
    main()
except SystemExit as stop:
    code = stop.code
sys.__stdout__.write("\\nMODULES " + json.dumps({"exit": code, "modules": sorted(sys.modules)}) + "\\n")
"""


def modules_loaded_by(*arguments: str) -> tuple[int, set[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TERM", None)
    done = subprocess.run([sys.executable, "-c", LOADED_BY_A_RUN, *arguments], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env, timeout=120)  # stdout and stderr are pipes: no terminal
    marker = [line for line in done.stdout.splitlines() if line.startswith("MODULES ")]
    assert marker, done.stdout + done.stderr
    loaded = json.loads(marker[-1].removeprefix("MODULES "))
    return loaded["exit"], set(loaded["modules"])


def test_a_run_off_a_terminal_loads_no_framework_and_no_progress_display():
    code, modules = modules_loaded_by("run", str(ROOT / "specs" / "neuron_sigmoid.yaml"))
    assert code == 0
    assert "gradcheck.pipeline" in modules and "rich.console" in modules  # it did check and draw the table
    for never in ("torch", "jax", "rich.progress", "gradcheck.progress"):
        assert never not in modules, never


def test_a_json_run_loads_no_rich_at_all():
    code, modules = modules_loaded_by("run", "--format", "json", str(ROOT / "specs" / "neuron_sigmoid.yaml"))
    assert code == 0
    assert not [name for name in modules if name == "rich" or name.startswith("rich.")]
