"""THE op registry: the one table from op name to its op record.

Built-in ops register themselves with :func:`builtin`; the modules that define them are listed in
:data:`OP_MODULES` and loaded by :func:`load_builtin_ops` (tests/test_op_record.py fails when a module
or a Primitive subclass is left out).  Custom ops named in a spec's ``ops:`` are described by
:func:`custom_op_info` into the same :class:`OpInfo` by the same :func:`op_record`, so the engine, the
numeric reference and the report treat both alike.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any

from .base import OPTIONAL_HOOKS, OpInfo, Param, Primitive

BUILTIN_OPS: dict[str, OpInfo] = {}

# the modules of gradcheck.ops that define built-in ops
OP_MODULES = ("elementwise", "losses", "nn", "nn_conv", "nn_layers", "nn_losses", "reductions", "shape",
              "math_more", "reductions_more", "shape_more", "linalg", "indexing")


def load_builtin_ops() -> dict[str, OpInfo]:
    """Import every module of OP_MODULES (their @builtin classes fill BUILTIN_OPS)."""
    for module in OP_MODULES:
        importlib.import_module(f"{__package__}.{module}")
    return BUILTIN_OPS


def op_record(name: str, impl: object, *, args: tuple[str, ...], variadic: bool, min_args: int,
              params: dict[str, Param] | None, doc: str, domains: tuple[str, ...], integer_args: tuple[int, ...],
              source: str) -> OpInfo:
    """The op record of ``impl``: every optional hook it declares, the Primitive default for the others."""
    hooks = {hook: getattr(impl, hook, getattr(Primitive, hook)) for hook in OPTIONAL_HOOKS}
    for flag in ("has_kinks", "complex_safe", "draws_random"):
        hooks[flag] = bool(hooks[flag])
    return OpInfo(name=name, impl=impl, args=args, variadic=variadic, params=params, doc=doc, domains=domains,
                  integer_args=integer_args, source=source, min_args=min_args, **hooks)


def builtin(cls: type[Primitive]) -> type[Primitive]:
    """Class decorator: register a Primitive subclass under ``cls.name``."""
    name = cls.name or cls.__name__
    if name in BUILTIN_OPS:
        raise RuntimeError(f"op {name!r} registered twice")
    args = tuple(cls.args)
    variadic = bool(args) and args[-1].startswith("*")
    doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    BUILTIN_OPS[name] = op_record(name, cls(), args=args, variadic=variadic,
                                  min_args=(len(args) - 1 if variadic else len(args)) or (1 if variadic else 0),
                                  params=dict(cls.params), doc=doc,
                                  domains=tuple(cls.domains) or ("real",) * len(args),
                                  integer_args=tuple(cls.integer_args), source="builtin")
    return cls


def custom_op_info(name: str, impl: Any, source: str) -> OpInfo:  # Any: a user's object, duck-typed (forward, vjp, hooks)
    """Describe a user's op object: arity and keyword names from its forward signature, hooks from its attributes."""
    args: list[str] = []
    variadic = False
    params = {}
    accepts_any_keyword = False
    try:
        signature = inspect.signature(impl.forward)
    except (TypeError, ValueError):
        signature = None
    if signature is None:
        variadic, accepts_any_keyword = True, True
    else:
        for parameter in signature.parameters.values():
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                if parameter.default is parameter.empty:
                    args.append(parameter.name)
                else:
                    params[parameter.name] = Param("any", default=parameter.default)
            elif parameter.kind == parameter.VAR_POSITIONAL:
                args.append("*" + parameter.name)
                variadic = True
            elif parameter.kind == parameter.KEYWORD_ONLY:
                required = Param.__dataclass_fields__["default"].default
                default = required if parameter.default is parameter.empty else parameter.default
                params[parameter.name] = Param("any", default=default)
            elif parameter.kind == parameter.VAR_KEYWORD:
                accepts_any_keyword = True
    doc = (inspect.getdoc(impl) or "").strip().splitlines()
    return op_record(name, impl, args=tuple(args), variadic=variadic, min_args=len(args) - 1 if variadic else len(args),
                     params=None if accepts_any_keyword else params,
                     doc=doc[0] if doc else f"custom op from {source}", domains=(), integer_args=(), source=source)


def all_builtin_ops() -> dict[str, OpInfo]:
    return dict(sorted(load_builtin_ops().items()))
