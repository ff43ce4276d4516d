"""The op registry and the op modules that fill it.

``registry.BUILTIN_OPS`` is the single table of built-in ops; each module of ``registry.OP_MODULES`` is
imported the first time one of its ops is asked for, and registers its ops.  A spec's custom ops are
described by ``custom_op_info`` into the same ``OpInfo`` record and laid over the built-ins when its graph
is built.
"""
from __future__ import annotations

from .base import OpArgumentError, OpInfo, Param, Primitive, unbroadcast
from .registry import BUILTIN_OPS, builtin, custom_op_info, load_builtin_ops

__all__ = ["BUILTIN_OPS", "OpArgumentError", "OpInfo", "Param", "Primitive", "builtin", "custom_op_info",
           "load_builtin_ops", "unbroadcast"]
