"""Loading a spec's custom ops: ``ops: {name: "module:attribute"}``, or a convention's mapping.

The trust model: a spec that names ops runs their code, so this is the only place where a spec
makes code run, and only code the spec names explicitly.  The module is resolved in the spec's own
folder first, then among the installed packages; a module of Python's standard library is refused
(no standard-library module is a layer author's op, and importing some of them runs programs:
``antigravity`` opens a browser, ``this`` prints).  No ``__pycache__`` is written beside the spec.
``--no-custom-ops`` (spec.Overrides.custom_ops) refuses every ``ops:`` entry before any import.
A mapping (``{forward: .., backward: ..}``, ``{layer: ..}``, ``{torch: ..}``, ...) is adapted to the op
protocol by gradcheck.ops.conventions / gradcheck.ops.frameworks; the result is the same op record.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from ..errors import Location, SpecError, clip, clipped_repr
from . import conventions, frameworks
from .base import OpInfo
from .frameworks import framework_of
from .registry import BUILTIN_OPS, custom_op_info

# the top-level names of Python's standard library (3.10+ knows them; the fallback covers the risky ones)
STANDARD_LIBRARY = frozenset(getattr(sys, "stdlib_module_names", ())) | {
    "antigravity", "this", "idlelib", "test", "multiprocessing", "os", "sys", "subprocess", "webbrowser",
    "turtle", "turtledemo", "tkinter", "pydoc", "ensurepip", "venv", "site", "builtins", "importlib"}


def load_custom_op(name: str, reference, base_dir: Path, location: Location) -> OpInfo:
    """The OpInfo of ``reference`` -- "module:attribute", a convention's mapping (gradcheck.ops.conventions,
    gradcheck.ops.frameworks) or, from a dict spec or ``check_op``, the op object itself; any fault, including
    one in the module's own code, is a SpecError."""
    try:
        if isinstance(reference, dict):
            return _load_convention(name, reference, base_dir, location)
        return _load(name, reference, base_dir, location)
    except SpecError:
        raise
    except (Exception, SystemExit) as error:  # the module's own code (constructor, attribute lookup) misbehaved
        what = f"called exit({error.code})" if isinstance(error, SystemExit) else \
            f"raised {type(error).__name__}: {clip(error, 200)}"
        raise SpecError(f"custom op '{name}': loading {_shown(reference)} {what}", location) from None


def _shown(reference) -> str:
    if isinstance(reference, str):
        return reference
    if isinstance(reference, dict):
        return "{" + ", ".join(f"{key}: {_shown(value)}" for key, value in reference.items()) + "}"
    return getattr(reference, "__qualname__", None) or type(reference).__name__


def _resolve(name: str, reference: str, base_dir: Path, location: Location, bind_methods: bool = False):
    """The object "module:attribute" names; with ``bind_methods``, an instance method named through its class
    ("losses:CrossEntropy.grad") is bound to an instance made with no arguments."""
    module_name, attribute = reference.split(":")
    module = _import(module_name, base_dir, location, name)
    target = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise SpecError(f"custom op '{name}': module '{module_name}' has no attribute '{attribute}'", location)
        owner, target = target, getattr(target, part)
        if bind_methods and isinstance(owner, type) and inspect.isfunction(target) \
                and not isinstance(inspect.getattr_static(owner, part), staticmethod):
            target = getattr(owner(), part)
    return target


def _load(name: str, reference, base_dir: Path, location: Location) -> OpInfo:
    target = _resolve(name, reference, base_dir, location) if isinstance(reference, str) else reference
    shown = _shown(reference)
    framework = framework_of(target)
    if framework is not None and not _has_op_protocol(target, framework):
        # an autograd.Function or a custom_vjp function named directly: the framework convention
        return custom_op_info(name, frameworks.adapt(framework, name, target, location), shown)
    if isinstance(target, type):
        try:
            target = target()
        except Exception as error:
            raise SpecError(f"custom op '{name}': {shown}() raised {type(error).__name__}: {error}", location) from None
    missing = [method for method in ("forward", "vjp") if not callable(getattr(target, method, None))]
    if missing:
        hint = ""
        if callable(target) and not isinstance(target, type):
            hint = ("; a function is an op through a convention: {forward: f, backward: b} (a pair with a cache), "
                    "{forward: f, gradient: df} (a loss), {torch: f} or {jax: f}")
        raise SpecError(f"custom op '{name}': {shown} has no {' and no '.join(missing)} method "
                        f"(an op needs forward(*inputs, **params) and vjp(g, out, *inputs, **params)){hint}", location)
    return custom_op_info(name, target, shown)


def _has_op_protocol(target, framework: str) -> bool:
    """A class of the framework that is nonetheless a gradcheck op (forward and vjp of arrays) -- never an
    autograd.Function, whose forward takes ctx."""
    if framework == "torch":
        return False
    return callable(getattr(target, "forward", None)) and callable(getattr(target, "vjp", None))


def _load_convention(name: str, mapping: dict, base_dir: Path, location: Location) -> OpInfo:
    places = getattr(mapping, "value_locations", {})

    def resolve(value, key: str):
        if isinstance(value, str) and _is_reference(value):
            return _resolve(name, value, base_dir, places.get(key, location), bind_methods=key != "layer")
        if isinstance(value, str):
            raise SpecError(f"custom op '{name}': '{key}:' must be \"module:attribute\", got {clipped_repr(value)}",
                            places.get(key, location))
        return value  # an object, from a dict spec or check_op

    framework = next((key for key in ("torch", "jax") if key in mapping), None)
    if framework is not None:
        declaration = conventions.Declaration(name, mapping, location, resolve)
        declaration.check_keys(framework)
        frameworks.require(framework, name, places.get(framework, location))  # before the module: jax's x64 switch
        impl = frameworks.adapt(framework, name, resolve(mapping[framework], framework), places.get(framework, location),
                                declaration.names("constants"))
    else:
        impl = conventions.adapt(name, mapping, location, resolve, BUILTIN_OPS)
    return custom_op_info(name, impl, _shown(mapping))


def _is_reference(text: str) -> bool:
    return text.count(":") == 1 and all(part.isidentifier() and not part.startswith("__")
                                        for side in text.split(":") for part in side.split("."))


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
            if spec is None or spec.loader is None:  # a .py file always has one; no loader: nothing to run
                raise SpecError(f"custom op '{op_name}': {candidate} cannot be imported", location)
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
