"""gradcheck: tells you whether a backward pass is right.

    from gradcheck import check_spec
    result = check_spec("specs/neuron.yaml")
    result.status, [(n.name, n.status) for n in result.nodes]
"""
__version__ = "0.1.0"

from .check import check_loaded, check_paths, check_spec  # noqa: E402
from .compare import CheckOptions  # noqa: E402
from .errors import Location, SpecError  # noqa: E402
from .spec import Overrides, load_spec  # noqa: E402

__all__ = ["CheckOptions", "Location", "Overrides", "SpecError", "check_loaded", "check_paths", "check_spec",
           "load_spec", "__version__"]
