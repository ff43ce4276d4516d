"""gradcheck: tells you whether a backward pass is right.

    import gradcheck
    gradcheck.assert_gradients(Swish(), x)              # raises AssertionError with the concise report
    result = gradcheck.check_op("softmax", z, axis=0)   # an op at given arrays (any convention, torch, jax)
    result = gradcheck.check("specs/neuron.yaml")       # a spec: a path, YAML text or a dict
    result.ok, result.status, [(n.name, n.status) for n in result.nodes], result.to_dict()

Importing gradcheck is cheap: numpy and the rest load when one of these is first used.
"""
__version__ = "0.1.0"

from typing import TYPE_CHECKING  # noqa: E402

from .errors import Location, SpecError  # noqa: E402

if TYPE_CHECKING:  # the lazy names below, for type checkers and editors
    from .api import CheckResult, assert_gradients, check, check_op
    from .judge import CheckOptions
    from .pipeline import check_graph, check_paths, check_spec
    from .results import ErrorInfo, ExpectResult, JvpResult, NodeResult, RunResult, SpecResult, Status, Suspect
    from .spec import Overrides, load_spec

_LAZY = {"check_graph": "pipeline", "check_paths": "pipeline", "check_spec": "pipeline", "CheckOptions": "judge",
         "Overrides": "spec", "load_spec": "spec",
         "check": "api", "check_op": "api", "assert_gradients": "api", "CheckResult": "api",
         "Status": "results", "SpecResult": "results", "NodeResult": "results", "RunResult": "results",
         "Suspect": "results", "JvpResult": "results", "ExpectResult": "results", "ErrorInfo": "results"}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["CheckOptions", "CheckResult", "ErrorInfo", "ExpectResult", "JvpResult", "Location", "NodeResult",
           "Overrides", "RunResult", "SpecError", "SpecResult", "Status", "Suspect", "assert_gradients", "check",
           "check_graph", "check_op", "check_paths", "check_spec", "load_spec", "__version__"]
