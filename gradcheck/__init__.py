"""gradcheck: tells you whether a backward pass is right.

    from gradcheck import check_spec
    result = check_spec("specs/neuron.yaml")
    result.status, [(n.name, n.status) for n in result.nodes]
"""
__version__ = "0.1.0"

from .errors import Location, SpecError  # noqa: E402

_LAZY = {"check_graph": "pipeline", "check_paths": "pipeline", "check_spec": "pipeline", "CheckOptions": "judge",
         "Overrides": "spec", "load_spec": "spec"}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["CheckOptions", "Location", "Overrides", "SpecError", "check_graph", "check_paths", "check_spec",
           "load_spec", "__version__"]
