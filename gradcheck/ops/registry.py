"""THE op registry: the one table from op name to its op record.

Built-in ops register themselves with :func:`builtin`; :data:`OPS_BY_MODULE` names the module of gradcheck.ops
that defines each, so :data:`BUILTIN_OPS` imports a module the first time one of its ops is asked for (a spec
of elementwise ops never loads the convolutions); iterating it loads them all (tests/test_op_record.py fails
when an op or a module is left out of the table).  Custom ops named in a spec's ``ops:`` are described by
:func:`custom_op_info` into the same :class:`OpInfo` by the same :func:`op_record`, so the engine, the
numeric reference and the report treat both alike.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from .base import OPTIONAL_HOOKS, OpInfo, Param, Primitive

# every built-in op, by the module of gradcheck.ops that defines it
OPS_BY_MODULE: dict[str, tuple[str, ...]] = {
    "elementwise": ("add", "sub", "mul", "div", "neg", "pow", "square", "reciprocal", "exp", "log", "sqrt", "sin",
                    "cos", "tanh", "sigmoid", "softplus", "abs", "relu", "leaky_relu", "maximum", "minimum"),
    "losses": ("mse", "logistic_loss", "hinge"),
    "nn": ("softmax", "log_softmax", "logsumexp", "gelu", "clip", "dropout", "log1p", "expm1", "where", "concat",
           "stack"),
    "nn_conv": ("conv2d", "conv1d", "conv_transpose2d", "max_pool2d", "avg_pool2d"),
    "nn_layers": ("layer_norm", "batch_norm", "embedding", "attention", "masked_attention"),
    "nn_losses": ("cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits", "multiclass_hinge",
                  "huber"),
    "reductions": ("sum", "mean", "max", "min"),
    "shape": ("matmul", "transpose", "reshape", "getitem", "identity"),
    "math_more": ("arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "arcsinh", "arctanh", "log2", "log10",
                  "logaddexp", "erf", "fmax", "fmin", "sign", "floor", "mod"),
    "reductions_more": ("prod", "var", "std", "cumsum", "sort"),
    "shape_more": ("flip", "roll", "squeeze", "expand_dims", "swapaxes", "repeat", "tile", "pad", "split", "diag",
                   "triu", "tril", "trace"),
    "linalg": ("einsum", "tensordot", "inner", "outer", "kron", "cross"),
    "indexing": ("index", "compare"),
}
OP_MODULES = tuple(OPS_BY_MODULE)
_MODULE_OF = {name: module for module, names in OPS_BY_MODULE.items() for name in names}


class OpCatalog(Mapping[str, OpInfo]):
    """The built-in ops by name, each module of gradcheck.ops imported when one of its ops is first asked for.

    Membership and the names need no import (they are :data:`OPS_BY_MODULE`'s); iteration, in that table's
    order, loads every module.
    """

    def __init__(self) -> None:
        self._records: dict[str, OpInfo] = {}

    def register(self, name: str, record: OpInfo) -> None:
        if name in self._records:
            raise RuntimeError(f"op {name!r} registered twice")
        if name not in _MODULE_OF:
            raise RuntimeError(f"op {name!r} is not in gradcheck.ops.registry.OPS_BY_MODULE")
        self._records[name] = record

    def __getitem__(self, name: str) -> OpInfo:
        if name not in self._records and name in _MODULE_OF:
            importlib.import_module(f"{__package__}.{_MODULE_OF[name]}")
        return self._records[name]

    def __contains__(self, name: object) -> bool:
        return name in _MODULE_OF

    def __iter__(self) -> Iterator[str]:
        load_builtin_ops()
        return iter(_MODULE_OF)

    def __len__(self) -> int:
        return len(_MODULE_OF)


BUILTIN_OPS = OpCatalog()


class OpTable(Mapping[str, OpInfo]):
    """A graph's ops: its spec's custom ops (``custom``) laid over the built-in ones, which load as they are named."""

    def __init__(self, custom: dict[str, OpInfo]) -> None:
        self.custom = custom

    def __getitem__(self, name: str) -> OpInfo:
        return self.custom[name] if name in self.custom else BUILTIN_OPS[name]

    def __contains__(self, name: object) -> bool:
        return name in self.custom or name in BUILTIN_OPS

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(BUILTIN_OPS), **dict.fromkeys(self.custom)})

    def __len__(self) -> int:
        return len(set(_MODULE_OF) | set(self.custom))


def load_builtin_ops() -> OpCatalog:
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
        if not (flag == "complex_safe" and callable(hooks[flag])):
            hooks[flag] = bool(hooks[flag])
    hooks["linear_in"] = linear_positions(hooks["linear_in"])
    return OpInfo(name=name, impl=impl, args=args, variadic=variadic, params=params, doc=doc, domains=domains,
                  integer_args=integer_args, source=source, min_args=min_args, **hooks)


def linear_positions(declared: Any) -> tuple[int, ...] | bool:
    """A linear_in declaration as the record keeps it: True, or a tuple of positions (one position, a list of
    them); anything else is no declaration (), the safe default: it only makes the local check slower."""
    if isinstance(declared, bool):
        return declared
    if isinstance(declared, int):
        return (declared,)
    try:
        positions = tuple(declared)
    except TypeError:
        return ()
    return positions if all(isinstance(p, int) and not isinstance(p, bool) for p in positions) else ()


def builtin(cls: type[Primitive]) -> type[Primitive]:
    """Class decorator: register a Primitive subclass under ``cls.name``."""
    name = cls.name or cls.__name__
    args = tuple(cls.args)
    variadic = bool(args) and args[-1].startswith("*")
    doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    BUILTIN_OPS.register(name, op_record(name, cls(), args=args, variadic=variadic,
                                         min_args=(len(args) - 1 if variadic else len(args)) or (1 if variadic else 0),
                                         params=dict(cls.params), doc=doc,
                                         domains=tuple(cls.domains) or ("real",) * len(args),
                                         integer_args=tuple(cls.integer_args), source="builtin"))
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
