"""Results as plain data: what the check found, with nothing about how it is shown."""
from __future__ import annotations

from dataclasses import field, fields
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import Location
from .plaindata import FrozenPlainData, PlainData

if TYPE_CHECKING:
    from dataclasses import dataclass
else:  # the same, each __init__ compiled when first called: a run makes few of these classes (22 M instructions)
    from .plaindata import dataclass


class Status(str, Enum):
    """The one vocabulary of verdicts: of an element, a node, a jvp rule and a spec.  Prints as its value."""

    PASS = "pass"
    FAIL = "fail"
    KINK = "kink"      # the analytic value is a one-sided derivative at a kink: a warning unless --strict
    INCONCLUSIVE = "inconclusive"  # no float64 estimate resolves the tolerance there: not a pass
    SKIP = "skip"      # nothing to check (a constant, data, check: false)
    ERROR = "error"    # a rule raised or returned the wrong shape; a spec that could not be checked

    __hash__ = str.__hash__  # a member and its value are the same dictionary key

    def __str__(self) -> str:
        return self.value

    def __format__(self, format_spec: str) -> str:
        return format(self.value, format_spec)


class Located:
    """A result with a place in the spec; line and column read through its location."""

    location: Location | None

    @property
    def line(self) -> int | None:
        return self.location.line if self.location else None

    @property
    def column(self) -> int | None:
        return self.location.column if self.location else None


@dataclass(frozen=True, eq=False, repr=False)
class ElementOutcome(FrozenPlainData):
    """One element the judge did not pass: where it is, its verdict, and the two values compared."""

    index: tuple[int, ...]
    status: Status
    analytic: float
    numeric: float
    abs_error: float
    numeric_error: float = 0.0           # the bound on the numeric value's own error
    right: float | None = None           # the one-sided slopes, at a kink
    left: float | None = None


@dataclass(kw_only=True, eq=False, repr=False)
class Outcome(PlainData):
    """What the judge found over the elements of one comparison."""

    status: Status = Status.PASS
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst_index: tuple[int, ...] = ()    # the worst failing element, else the worst kink, else the largest error
    worst_analytic: float | None = None
    worst_numeric: float | None = None
    worst_numeric_error: float | None = None  # the error bound of the worst element's numeric value
    worst_abs_error: float | None = None      # the worst element's own errors (the maxima may be elsewhere)
    worst_rel_error: float | None = None
    failing: int = 0                     # elements that fail
    kinks: int = 0                       # elements at a kink
    inconclusive: int = 0                # elements no float64 estimate could resolve
    elements: list[ElementOutcome] = field(default_factory=list)  # the worst failing and kink elements, worst first

    def outcome_fields(self) -> dict:
        return {name: getattr(self, name) for name in OUTCOME_FIELDS}

    def elements_of(self, status: Status) -> list[ElementOutcome]:
        return [element for element in self.elements if element.status == status]


OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome))


@dataclass(kw_only=True, eq=False, repr=False)
class Comparison(Outcome, Located):
    """Analytic values compared with a numeric reference under one tolerance (a node's gradient, a jvp rule)."""

    shape: tuple[int, ...]
    atol: float = 0.0
    rtol: float = 0.0
    message: str | None = None           # why skipped, what the rule did wrong, how a probe failed
    text: str = ""                       # source text of the (sub)expression
    location: Location | None = None


@dataclass(kw_only=True, eq=False, repr=False)
class NodeResult(Comparison):
    """One node's verdict: its gradients (analytic, numeric, with the numeric one's error bound), errors and elements."""

    name: str
    op: str
    parent: str | None
    analytic: np.ndarray | None = None   # d objective / d node (full array)
    numeric: np.ndarray | None = None    # the float64 finite-difference reference (None when probed)
    numeric_error: np.ndarray | None = None  # the error bound of each numeric element
    precision: str | None = None         # float32 specs: how far the float32 gradient is from the float64 one
    checked: str = "full"                # full | probes | none
    value: np.ndarray | None = None      # forward value (float64 reference pass)
    arguments: list[str] = field(default_factory=list)  # the nodes and inputs its op reads (constants left out)
    seconds: float = 0.0                 # time its check took


class Kind(str, Enum):
    """What kind of wrong a rule's result is (see gradcheck/judge/diagnosis.py).  Prints as its value."""

    SCALE = "scale"            # analytic = c · numeric everywhere
    SIGN = "sign"              # c = -1
    TRANSPOSE = "transpose"    # the right gradient transposed (or the right one for a transposed argument)
    UNREDUCED = "unreduced"    # the broadcast shape, right once summed over the broadcast axes
    SWAPPED = "swapped"        # the right gradient of another argument
    REGION = "region"          # wrong only where an input lies past a threshold (0: a sign) or inside an interval
    MISSING = "missing"        # zero or None where the right gradient is not
    FAULT = "fault"            # the rule raised or returned no usable array
    UNKNOWN = "unknown"        # none of these explains it: the worst element

    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value

    def __format__(self, format_spec: str) -> str:
        return format(self.value, format_spec)


@dataclass(frozen=True, eq=False, repr=False)
class Diagnosis(FrozenPlainData):
    """What kind of wrong a rule's gradient is: scale, sign, transpose, unreduced, swapped, region, missing,
    fault (the rule raised or returned no usable array) or unknown; ``detail`` says it in a sentence and
    ``numbers`` holds the kind's own figures (the factor, the axes, the threshold, the swapped argument)."""

    kind: Kind
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False, repr=False)
class RuleSource(FrozenPlainData):
    """Where the code of a custom op's rule starts: the line to fix."""

    file: str
    line: int
    rule: str                            # vjp | backward | jvp: which of the op's functions
    function: str = ""                   # its qualified name


@dataclass(eq=False, repr=False)
class Suspect(PlainData):
    """A node whose vjp is suspected of passing a wrong gradient to one argument: the cause, not what it caused."""

    node: str
    op: str
    argument: int
    argument_node: str
    message: str
    diagnosis: Diagnosis | None = None   # None: the op-local comparison of the whole argument found nothing wrong
    source: RuleSource | None = None     # custom ops only


@dataclass(kw_only=True, eq=False, repr=False)
class JvpResult(Comparison):
    """A forward-mode rule checked at one node along one argument: J·t against finite differences.
    Its shape is the op's output shape; status ERROR when the rule raised or gave a wrong shape."""

    node: str
    op: str
    argument: int
    argument_node: str
    source: RuleSource | None = None     # the jvp's code, for a custom op
    diagnosis: Diagnosis | None = None   # what kind of wrong J·t is, when it fails


@dataclass(eq=False, repr=False)
class TaylorResult(PlainData):
    """The Taylor remainder test of one input: the observed order of |f(x+hv) - f(x) - h<grad, v>| in h."""

    input: str
    status: Status                       # PASS (order ~2, or exact) | FAIL (order ~1: the gradient is wrong)
    order: float
    remainders: list[float]
    steps: list[float]
    message: str = ""


@dataclass(eq=False, repr=False)
class ExpectResult(Located, PlainData):
    """One pinned value under expect: (an output or a gradient) against what the spec computes."""

    what: str                            # "output", "grad w0", "value dot"
    expected: np.ndarray
    actual: np.ndarray | None
    ok: bool
    max_abs_error: float
    location: Location | None = None
    message: str = ""


@dataclass(eq=False, repr=False)
class ErrorInfo(Located, PlainData):
    """Why a spec could not be checked, worded once (see isolation.describe_fault), with its place."""

    message: str
    location: Location | None = None


@dataclass(eq=False, repr=False)
class SpecResult(PlainData):
    """One spec's result: its status, every node's verdict, and what was noted while checking it."""

    path: str
    name: str
    status: Status                       # PASS | FAIL | ERROR | SKIP (a module it requires is not installed)
    description: str = ""
    error: ErrorInfo | None = None
    output_name: str | None = None
    output_value: np.ndarray | None = None
    nodes: list[NodeResult] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)
    jvps: list[JvpResult] = field(default_factory=list)
    expectations: list[ExpectResult] = field(default_factory=list)
    taylor: list[TaylorResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dtype: str = "float64"
    method: str = "central"
    mode: str = "auto"
    seed: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    files_read: list[str] = field(default_factory=list)  # the spec, its data files and op modules

    @property
    def counts(self) -> dict[Status, int]:
        counts = {status: 0 for status in (Status.PASS, Status.FAIL, Status.KINK, Status.INCONCLUSIVE, Status.SKIP)}
        for node in self.nodes:
            counts[node.status] += 1
        return counts


@dataclass(eq=False, repr=False)
class RunResult(PlainData):
    """The results of one run over many specs, and the exit code they give."""

    specs: list[SpecResult]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(spec.status in (Status.PASS, Status.SKIP) for spec in self.specs)

    @property
    def exit_code(self) -> int:
        if any(spec.status == Status.ERROR for spec in self.specs):
            return 2
        return 0 if self.ok else 1
