"""The BLAS thread count while a check runs: one thread, unless GRADCHECK_BLAS_THREADS says otherwise.

A check's matrix products are small (a batch's rows times a layer's width, or many perturbed copies folded
into one product) and come one after another, with numpy's single-threaded elementwise work between them.
Measured on the bench's MLPs (bench/bench_speed.py, threads section), a second OpenBLAS thread never made a
check faster (17.8k parameters: 1.0-1.3x slower on a quiet machine, 68k: 1.0x) and made it 1.3-2.8x slower on
a loaded one, where the second thread waits for a core at every product.  So the check pins OpenBLAS to one
thread and gives the caller's setting back afterwards.  Only an OpenBLAS that numpy has loaded is touched
(found by its exported setter); without one, or off Linux, nothing changes.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np  # noqa: F401  (loads numpy's OpenBLAS, which is what is looked for)

THREADS_VARIABLE = "GRADCHECK_BLAS_THREADS"
# (setter, getter) pairs as OpenBLAS builds export them: numpy's wheels bundle scipy-openblas (64-bit ints)
_ENTRY_POINTS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                 ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                 ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
                 ("openblas_set_num_threads", "openblas_get_num_threads"))
_controls: list | None = None


def _loaded_openblas() -> list:
    """(set, get) functions of every OpenBLAS in this process, found once."""
    global _controls
    if _controls is not None:
        return _controls
    _controls = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split(maxsplit=5)[-1].strip() for line in maps if "openblas" in line.lower()}
    except OSError:
        return _controls
    import ctypes

    for path in sorted(p for p in paths if p.startswith("/")):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for setter, getter in _ENTRY_POINTS:
            if hasattr(library, setter) and hasattr(library, getter):
                set_threads, get_threads = getattr(library, setter), getattr(library, getter)
                set_threads.argtypes, set_threads.restype, get_threads.restype = [ctypes.c_int], None, ctypes.c_int
                _controls.append((set_threads, get_threads))
                break
    return _controls


def wanted_threads() -> int | None:
    """The thread count a check runs BLAS with: GRADCHECK_BLAS_THREADS when it is a positive integer, else 1;
    None ("leave it alone") for GRADCHECK_BLAS_THREADS=0."""
    text = os.environ.get(THREADS_VARIABLE, "").strip()
    if not text:
        return 1
    try:
        count = int(text)
    except ValueError:
        return 1
    return count if count > 0 else None


@contextmanager
def blas_threads(count: int | None) -> Iterator[None]:
    """OpenBLAS runs ``count`` threads inside the block (None: unchanged); the previous count is restored."""
    controls = _loaded_openblas() if count is not None else []
    before = [get_threads() for _, get_threads in controls]
    for set_threads, _ in controls:
        set_threads(count)
    try:
        yield
    finally:
        for (set_threads, _), previous in zip(controls, before, strict=True):
            set_threads(previous)


def current_threads() -> list[int]:
    """The thread count of every OpenBLAS loaded (what the tests read)."""
    return [get_threads() for _, get_threads in _loaded_openblas()]
