"""The op registry and the op modules that fill it.

``registry.BUILTIN_OPS`` is the single table of ops; importing this package registers every
built-in op.  ``OpTable`` layers a spec's custom ops over the built-ins.
"""
from __future__ import annotations

from . import elementwise, losses, nn, nn_conv, nn_layers, nn_losses, reductions, shape  # noqa: F401  (registration side effects)
from .base import OpArgumentError, OpInfo, Param, Primitive, unbroadcast
from .registry import BUILTIN_OPS, builtin, custom_op_info

_load_all = True

INFIX_OPS = {"Add": "add", "Sub": "sub", "Mult": "mul", "Div": "div", "Pow": "pow", "MatMult": "matmul"}

__all__ = ["BUILTIN_OPS", "INFIX_OPS", "OpArgumentError", "OpInfo", "Param", "Primitive", "builtin",
           "custom_op_info", "unbroadcast"]
