"""Loading a spec's custom ops: ``ops: {name: "module:attribute"}``.

The trust model: a spec that names ops runs their code, so this is the only place where a spec
makes code run, and only code the spec names explicitly.  The module is resolved in the spec's own
folder first, then among the installed packages; a module of Python's standard library is refused
(no standard-library module is a layer author's op, and importing some of them runs programs:
``antigravity`` opens a browser, ``this`` prints).  No ``__pycache__`` is written beside the spec.
``--no-custom-ops`` (spec.Overrides.custom_ops) refuses every ``ops:`` entry before any import.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

from ..errors import Location, SpecError, clip
from .base import OpInfo
from .registry import custom_op_info

# the top-level names of Python's standard library (3.10+ knows them; the fallback covers the risky ones)
STANDARD_LIBRARY = frozenset(getattr(sys, "stdlib_module_names", ())) | {
    "antigravity", "this", "idlelib", "test", "multiprocessing", "os", "sys", "subprocess", "webbrowser",
    "turtle", "turtledemo", "tkinter", "pydoc", "ensurepip", "venv", "site", "builtins", "importlib"}


def load_custom_op(name: str, reference: str, base_dir: Path, location: Location) -> OpInfo:
    """The OpInfo of ``reference``; any fault, including one in the module's own code, is a SpecError."""
    try:
        return _load(name, reference, base_dir, location)
    except SpecError:
        raise
    except (Exception, SystemExit) as error:  # the module's own code (constructor, attribute lookup) misbehaved
        what = f"called exit({error.code})" if isinstance(error, SystemExit) else \
            f"raised {type(error).__name__}: {clip(error, 200)}"
        raise SpecError(f"custom op '{name}': loading {reference} {what}", location) from None


def _load(name: str, reference: str, base_dir: Path, location: Location) -> OpInfo:
    module_name, attribute = reference.split(":")
    module = _import(module_name, base_dir, location, name)
    target = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise SpecError(f"custom op '{name}': module '{module_name}' has no attribute '{attribute}'", location)
        target = getattr(target, part)
    if isinstance(target, type):
        try:
            target = target()
        except Exception as error:
            raise SpecError(f"custom op '{name}': {reference}() raised {type(error).__name__}: {error}", location) from None
    missing = [method for method in ("forward", "vjp") if not callable(getattr(target, method, None))]
    if missing:
        raise SpecError(f"custom op '{name}': {reference} has no {' and no '.join(missing)} method "
                        "(an op needs forward(*inputs, **params) and vjp(g, out, *inputs, **params))", location)
    return custom_op_info(name, target, reference)


def local_module_file(module_name: str, base_dir: Path) -> Path | None:
    """The file beside the spec that ``module_name`` names (module.py or module/__init__.py), if there is one."""
    local = base_dir.joinpath(*module_name.split(".")).with_suffix(".py")
    package_init = base_dir.joinpath(*module_name.split("."), "__init__.py")
    return local if local.is_file() else package_init if package_init.is_file() else None


def _import(module_name: str, base_dir: Path, location: Location, op_name: str):
    local = base_dir.joinpath(*module_name.split(".")).with_suffix(".py")
    candidate = local_module_file(module_name, base_dir)
    top_level = module_name.split(".")[0]
    if candidate is None and (top_level in STANDARD_LIBRARY or top_level in sys.builtin_module_names):
        raise SpecError(f"custom op '{op_name}': '{module_name}' is a module of Python's standard library, not a "
                        f"layer author's op (and importing it may run code); put the op in a module beside the "
                        f"spec or in an installed package", location)
    inserted = str(base_dir.resolve())
    sys.path.insert(0, inserted)  # lets the module import its own siblings
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # importing must not leave __pycache__ in the spec's folder
    try:
        if candidate is not None:
            # A unique module name per file, so two spec folders with a 'layers.py' each do not collide.
            digest = hashlib.sha1(str(candidate.resolve()).encode()).hexdigest()[:10]
            unique = f"_gradcheck_custom_{digest}_{module_name.replace('.', '_')}"
            if unique in sys.modules:
                return sys.modules[unique]
            spec = importlib.util.spec_from_file_location(unique, candidate)
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(unique, None)
                raise
            return module
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if candidate is None and error.name == module_name.split(".")[0]:
            raise SpecError(f"custom op '{op_name}': module '{module_name}' not found (looked for {local} "
                            "and on the import path)", location) from None
        raise SpecError(f"custom op '{op_name}': importing '{module_name}' failed: {error}", location) from None
    except SystemExit as error:
        raise SpecError(f"custom op '{op_name}': importing '{module_name}' called exit({error.code})", location) from None
    except Exception as error:
        raise SpecError(f"custom op '{op_name}': importing '{module_name}' raised {type(error).__name__}: {error}",
                        location) from None
    finally:
        sys.dont_write_bytecode = writes_bytecode
        try:
            sys.path.remove(inserted)
        except ValueError:
            pass
