"""The process of the `gradcheck` command (its console script, and python -m gradcheck): gradcheck.cli's main,
with Python's cyclic garbage collector kept out of the start-up and the exit.

Loading modules makes no garbage, yet every collection while they load walks all that is loaded so far, and on
the way out the interpreter collects once more over every object of every module: together about a tenth of a
one-spec run.  So the collector is paused while gradcheck.cli loads, and, for a command that checks specs (run,
explain, graph), while the check's modules and PyYAML load too (gradcheck.cli itself loads them only when such a
command runs, so that --help and the commands that read no spec never pay for them).  What is loaded is then
frozen out of the collector's scans (gc.freeze: never collected, as a loaded module never is), and when the command
ends what it loaded and made since is frozen too, so the exit skips that last collection (the process ends: the
system takes its memory back; standard output and error are flushed by the interpreter all the same).  The check
itself runs with the collector on.  Only this entry does so: gradcheck.cli.main called in another program's
process (a test's CliRunner) leaves that process's collector as it was.

The interpreter's own exit then still clears every module's namespace one by one, freeing what each holds
(numpy, PyYAML, click and gradcheck: about 11 M instructions, 4 ms).  Nothing of gradcheck's needs that: its
reports are written and closed before the command ends.  So where no code but gradcheck's and the libraries it
imports ran in the process (no custom op was loaded: their modules might keep a file open for the teardown to
close), no other thread is alive and both standard streams flush, the process ends there, with the command's
exit code, once the exit handlers (atexit) have run.  Anywhere else the interpreter exits as it always does.
"""
from __future__ import annotations

import gc
import os
import sys

CHECKING_COMMANDS = ("run", "explain", "graph")  # the commands that read specs and check them


def _will_check(arguments: list[str]) -> bool:
    """Whether the command line names a command that checks specs and does not ask for its help (a guess that
    can only change when modules load, never what the command does)."""
    return bool(arguments) and arguments[0] in CHECKING_COMMANDS and not {"--help", "-h"} & set(arguments[1:])


def main(**options) -> None:
    collecting = gc.isenabled()
    gc.disable()
    try:
        from .cli import main as command

        if _will_check(sys.argv[1:]):
            from . import pipeline  # noqa: F401
            from .yamlsource import pyyaml

            pyyaml()  # read by the first spec
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
    try:
        command(**options)
    except SystemExit as stop:
        gc.freeze()
        _end_process(stop.code)  # returns where the interpreter's own exit must run
        raise
    finally:
        gc.freeze()


def _end_process(code) -> None:
    """End the process with exit code ``code`` (SystemExit's: None is 0) without the interpreter's teardown
    of every module, after the exit handlers, as the module docstring says; return where that cannot be done
    the same way (an exit message to print, a custom op loaded, another thread alive, a stream that does not
    flush: then the interpreter reports it as it always does)."""
    import atexit
    import threading

    code = 0 if code is None else code
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's, run by its own exit
    if (not isinstance(code, int) or run_exit_handlers is None or "gradcheck.ops.custom" in sys.modules
            or threading.active_count() > 1):
        return
    run_exit_handlers()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(code)
