"""The progress of a run on a terminal: which spec, which node, how many objective evaluations.

Drawn by Rich on stderr (the CLI uses it only when stderr is a terminal and not under -q), and
removed when the run ends, so neither stdout nor a log receives any of it.
"""
from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

MIN_REDRAW_SECONDS = 0.1


class TerminalProgress:
    """gradcheck.judge.options.Progress drawn as two bars: specs, and the nodes of the current spec."""

    def __init__(self, console: Console):
        self.display = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(bar_width=20),
                                MofNCompleteColumn(), TextColumn("{task.fields[detail]}", markup=False),
                                TimeElapsedColumn(), console=console, transient=True, redirect_stdout=False,
                                redirect_stderr=False)
        self.specs = self.display.add_task("specs", total=None, detail="")
        self.nodes = self.display.add_task("nodes", total=None, detail="", visible=False)
        self.drawn_at = 0.0  # when the display was last redrawn here (besides Rich's own 10 per second)

    def __enter__(self) -> TerminalProgress:
        self.display.start()
        return self

    def __exit__(self, *exc) -> None:
        self.display.stop()

    def spec_started(self, path: str, number: int, total: int) -> None:
        self.display.update(self.specs, total=total, completed=number - 1, detail=Path(path).name)
        self.display.reset(self.nodes, total=None, detail="", visible=False)

    def node_checked(self, name: str, done: int, total: int, evaluations: int) -> None:
        self.display.update(self.nodes, total=total, completed=done, visible=True,
                            detail=f"{name} · {evaluations:,} evaluations")
        now = time.monotonic()
        if now - self.drawn_at >= MIN_REDRAW_SECONDS:  # a spec's first node shows at once, however fast it is
            self.drawn_at = now
            self.display.refresh()

    def spec_finished(self, path: str) -> None:
        self.display.advance(self.specs)
