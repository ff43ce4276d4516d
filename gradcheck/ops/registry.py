"""THE op registry: the one table from op name to its forward/vjp implementation.

Built-in ops register themselves with :func:`builtin`; custom ops named in a spec's
``ops:`` are wrapped by :func:`custom_op_info` into the same :class:`OpInfo`, so the engine,
the numeric reference and the report treat both alike.
"""
from __future__ import annotations

import inspect

from .base import OpInfo, Primitive

BUILTIN_OPS: dict[str, OpInfo] = {}


def builtin(cls: type[Primitive]) -> type[Primitive]:
    """Class decorator: register a Primitive subclass under ``cls.name``."""
    name = cls.name or cls.__name__
    if name in BUILTIN_OPS:
        raise RuntimeError(f"op {name!r} registered twice")
    args = tuple(cls.args)
    variadic = bool(args) and args[-1].startswith("*")
    doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    domains = tuple(cls.domains) or ("real",) * len(args)
    BUILTIN_OPS[name] = OpInfo(
        name=name,
        impl=cls(),
        args=args,
        variadic=variadic,
        params=dict(cls.params),
        doc=doc,
        domains=domains,
        integer_args=tuple(cls.integer_args),
        has_kinks=cls.has_kinks,
        complex_safe=cls.complex_safe,
        source="builtin",
        min_args=(len(args) - 1 if variadic else len(args)) or (1 if variadic else 0),
    )
    return cls


def custom_op_info(name: str, impl: object, source: str) -> OpInfo:
    """Describe a user's op object from its forward signature (arity, keyword names)."""
    forward = impl.forward
    args: list[str] = []
    variadic = False
    params = {}
    accepts_any_keyword = False
    try:
        signature = inspect.signature(forward)
    except (TypeError, ValueError):
        signature = None
    if signature is None:
        variadic, accepts_any_keyword = True, True
    else:
        from .base import Param

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
                params[parameter.name] = Param(
                    "any", default=parameter.default if parameter.default is not parameter.empty else Param.__dataclass_fields__["default"].default)
            elif parameter.kind == parameter.VAR_KEYWORD:
                accepts_any_keyword = True
    doc = (inspect.getdoc(impl) or "").strip().splitlines()
    return OpInfo(
        name=name,
        impl=impl,
        args=tuple(args),
        variadic=variadic,
        params=None if accepts_any_keyword else params,
        doc=doc[0] if doc else f"custom op from {source}",
        domains=(),
        integer_args=(),
        has_kinks=bool(getattr(impl, "has_kinks", False)),
        complex_safe=bool(getattr(impl, "complex_safe", False)),
        source=source,
        min_args=len(args) - 1 if variadic else len(args),
    )


def all_builtin_ops() -> dict[str, OpInfo]:
    import gradcheck.ops  # noqa: F401  (importing the op modules fills the table)

    return dict(sorted(BUILTIN_OPS.items()))
