"""The op registry and the op modules that fill it.

``registry.BUILTIN_OPS`` is the single table of built-in ops; importing this package registers
every one of them.  A spec's custom ops are described by ``custom_op_info`` into the same
``OpInfo`` and laid over the built-ins when its graph is built.
"""
from __future__ import annotations

# importing the op modules registers their ops
from . import elementwise, losses, nn, nn_conv, nn_layers, nn_losses, reductions, shape  # noqa: F401
from .base import OpArgumentError, OpInfo, Param, Primitive, unbroadcast
from .registry import BUILTIN_OPS, builtin, custom_op_info

__all__ = ["BUILTIN_OPS", "OpArgumentError", "OpInfo", "Param", "Primitive", "builtin", "custom_op_info", "unbroadcast"]
