"""A check runs OpenBLAS on one thread (gradcheck/blas.py), gives the caller's count back, and obeys
GRADCHECK_BLAS_THREADS.  Each case runs in a fresh interpreter, whose OpenBLAS starts with two threads."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradcheck.blas import current_threads

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not current_threads(), reason="no OpenBLAS loaded by numpy here")

SEEN_BY_THE_OP = """
import json, sys
import numpy as np
from pathlib import Path
from gradcheck import CheckOptions
from gradcheck.blas import current_threads
from gradcheck.pipeline import check_spec

seen = []

class Records:
    def forward(self, x):
        seen.append(current_threads())
        return 2 * x
    def vjp(self, g, out, x):
        return (2 * g,)

sys.modules["recorder"] = sys.modules[__name__]
folder = Path(sys.argv[1])
(folder / "spec.yaml").write_text('inputs: {x: [1.0, 2.0]}\\nops: {f: "recorder:Records"}\\nnodes: {y: "sum(f(x))"}\\n')
before = current_threads()
result = check_spec(folder / "spec.yaml", options=CheckOptions(mode="full"))
print(json.dumps({"status": str(result.status), "before": before, "during": seen, "after": current_threads()}))
"""


def threads_seen(tmp_path: Path, **variables: str) -> dict:
    script = tmp_path / "record.py"
    script.write_text(SEEN_BY_THE_OP)
    env = {name: value for name, value in os.environ.items() if name != "GRADCHECK_BLAS_THREADS"}
    env.update({"PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "2", **variables})
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_check_runs_blas_on_one_thread_and_gives_the_count_back(tmp_path):
    seen = threads_seen(tmp_path)
    assert seen["status"] == "pass" and seen["before"] == seen["after"] == [2]
    assert seen["during"] and all(threads == [1] for threads in seen["during"])


@pytest.mark.parametrize("setting, expected", [("2", [2]), ("0", [2]), ("3", [3])])
def test_the_variable_chooses_the_count_or_leaves_it_alone(tmp_path, setting, expected):
    seen = threads_seen(tmp_path, GRADCHECK_BLAS_THREADS=setting)
    assert seen["during"] and all(threads == expected for threads in seen["during"])
    assert seen["after"] == [2]
