"""How thoroughly to check: the options of a run (no numpy here: the CLI and the plugin import it early)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..plaindata import FrozenPlainData


class Progress(Protocol):
    """Told how a run advances (the CLI draws it on a terminal); every method returns at once."""

    def spec_started(self, path: str, number: int, total: int) -> None: ...
    def node_checked(self, name: str, done: int, total: int, evaluations: int) -> None: ...
    def spec_finished(self, path: str) -> None: ...


@dataclass(frozen=True, eq=False, repr=False)
class CheckOptions(FrozenPlainData):
    """How a check runs: its mode, what counts as failing, its budgets and its progress display."""

    mode: str = "auto"          # full | fast | auto
    strict: bool = False
    allow_inconclusive: bool = False  # inconclusive elements warn instead of failing the spec
    taylor: bool = False        # also run the Taylor remainder test on every input that requires grad
    probes: int = 3
    full_limit: int = 4096      # auto: nodes with at most this many elements are checked element by element,
    full_budget: float = 5e5    # ... when perturbing each of them re-evaluates at most this many values in all
    global_budget: int = 20_000   # auto: the downstream node evaluations all global checks may take (beyond it,
                                  # nodes are vouched for by local checks of every op between them and the output)
    keep_values: bool = True
    memory_budget: int | None = None  # bytes the check may take (--max-memory); None: not sized (sizing.py)
    progress: Progress | None = field(default=None, compare=False, repr=False)
