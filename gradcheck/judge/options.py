"""How thoroughly to check: the options of a run (no numpy here: the CLI and the plugin import it early)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckOptions:
    mode: str = "auto"          # full | fast | auto
    strict: bool = False
    probes: int = 3
    full_limit: int = 4096      # auto: nodes with at most this many elements are checked element by element,
    full_budget: float = 5e5    # ... when perturbing each of them re-evaluates at most this many values in all
    global_budget: int = 20_000   # auto: the downstream node evaluations all global checks may take (beyond it,
                                  # nodes are vouched for by local checks of every op between them and the output)
    keep_values: bool = True
