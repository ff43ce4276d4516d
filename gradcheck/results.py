"""Results as plain data: what the check found, with nothing about how it is shown."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class NodeResult:
    name: str
    op: str
    parent: str | None
    shape: tuple[int, ...]
    status: str                          # pass | fail | kink | skip
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst_index: tuple[int, ...] = ()
    worst_analytic: float | None = None
    worst_numeric: float | None = None
    analytic: np.ndarray | None = None   # d objective / d node (full array)
    numeric: np.ndarray | None = None    # the float64 finite-difference reference (None when probed)
    atol: float = 0.0
    rtol: float = 0.0
    checked: str = "full"                # full | probes | none
    failing: int = 0                     # elements that fail
    kinks: int = 0                       # elements at a kink
    message: str | None = None           # why skipped, or what the op's vjp did wrong
    text: str = ""                       # source text of the (sub)expression
    line: int | None = None
    column: int | None = None
    value: np.ndarray | None = None      # forward value (float64 reference pass)


@dataclass
class Suspect:
    node: str
    op: str
    argument: int
    argument_node: str
    message: str


@dataclass
class JvpResult:
    """A forward-mode rule checked at one node along one argument: J·t against finite differences."""
    node: str
    op: str
    argument: int
    argument_node: str
    shape: tuple[int, ...]               # the op's output shape
    status: str                          # pass | fail | kink | error (the rule raised or gave a wrong shape)
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst_index: tuple[int, ...] = ()
    worst_analytic: float | None = None
    worst_numeric: float | None = None
    atol: float = 0.0
    rtol: float = 0.0
    failing: int = 0
    kinks: int = 0
    message: str = ""
    text: str = ""
    line: int | None = None
    column: int | None = None


@dataclass
class ExpectResult:
    what: str                            # "output", "grad w0", "value dot"
    expected: np.ndarray
    actual: np.ndarray | None
    ok: bool
    max_abs_error: float
    line: int | None = None
    column: int | None = None
    message: str = ""


@dataclass
class ErrorInfo:
    message: str
    line: int | None = None
    column: int | None = None


@dataclass
class SpecResult:
    path: str
    name: str
    status: str                          # pass | fail | error
    description: str = ""
    error: ErrorInfo | None = None
    output_name: str | None = None
    output_value: np.ndarray | None = None
    nodes: list[NodeResult] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)
    jvps: list[JvpResult] = field(default_factory=list)
    expectations: list[ExpectResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dtype: str = "float64"
    method: str = "central"
    mode: str = "auto"
    seed: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    files_read: list[str] = field(default_factory=list)  # the spec, its data files and op modules

    @property
    def counts(self) -> dict[str, int]:
        counts = {"pass": 0, "fail": 0, "kink": 0, "skip": 0}
        for node in self.nodes:
            counts[node.status] += 1
        return counts


@dataclass
class RunResult:
    specs: list[SpecResult]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(spec.status == "pass" for spec in self.specs)

    @property
    def exit_code(self) -> int:
        if any(spec.status == "error" for spec in self.specs):
            return 2
        return 0 if self.ok else 1
