"""PyTorch and JAX ops, checked with gradcheck's verdicts: ``{torch: "module:MyFunction"}``, ``{jax: "module:f"}``.

- torch: a ``torch.autograd.Function`` subclass (its ``apply``) or a function of tensors; forward runs on
  tensors made from the arrays (float64 stays float64), the vjp is ``torch.autograd.grad`` of that call.
- jax: a function of arrays, typically with a ``jax.custom_vjp`` rule; forward is ``jax.vjp`` of it, whose
  pullback is the vjp; a function that is not a custom_vjp one (a ``custom_jvp`` rule, say) also has
  its jvp checked.  JAX is switched to 64-bit floats (``jax_enable_x64``) when the first jax op is loaded:
  finite differences need float64.

Neither framework is imported unless a spec (or ``check_op``) names such an op; where it is not installed
the op is refused with one line saying what to install (``pip install "gradcheck[torch]"``).
"""
from __future__ import annotations

import copy
import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import Location, SpecError
from .conventions import MISSING, CallCache, as_forward, call_in_order, signature_of

FRAMEWORKS = {"torch": ("PyTorch", "torch"), "jax": ("JAX", "jax")}


def is_installed(module: str) -> bool:
    """Whether ``module`` could be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(framework: str, op_name: str, location: Location) -> Any:
    """The framework's module (jax with 64-bit floats on), or a SpecError saying what to install."""
    title, module = FRAMEWORKS[framework]
    if not is_installed(module):
        raise SpecError(f"custom op '{op_name}' is a {title} op, but {title} is not installed here: "
                        f"pip install \"gradcheck[{framework}]\" (a spec that declares `requires: [{module}]` is skipped "
                        f"where {module} is missing)", location)
    imported = importlib.import_module(module)
    if framework == "jax":
        imported.config.update("jax_enable_x64", True)
    return imported


def framework_of(target: Any) -> str | None:
    """'torch' or 'jax' for an object that evidently belongs to one (an autograd.Function, a custom_vjp
    function), without importing either; None otherwise."""
    classes = target.__mro__ if isinstance(target, type) else type(target).__mro__
    modules = {getattr(cls, "__module__", "") or "" for cls in classes}
    if any(m.startswith("torch.autograd") for m in modules):
        return "torch"
    if any(m == "jax" or m.startswith("jax.") for m in modules):
        return "jax"
    return None


def _is_function_class(torch, target) -> bool:
    return isinstance(target, type) and issubclass(target, torch.autograd.Function)


def _float_positions(inputs) -> list[int]:
    return [i for i, x in enumerate(inputs) if np.asarray(x).dtype.kind == "f"]


class TorchOp:
    """A torch.autograd.Function (or a function of tensors) as forward / vjp."""

    def __init__(self, torch, target: Any, constants=()):
        self.torch, self.wraps = torch, (target,)
        if _is_function_class(torch, target):
            self.call, self.signature = target.apply, signature_of(target.forward, constants, drop_first=1)
            self.order = target.forward  # apply takes constants by position, in forward's order (after ctx)
            self.skip_first = True
        else:
            self.call, self.signature, self.order, self.skip_first = target, signature_of(target, constants), None, False
        self.calls = CallCache()
        self.forward = as_forward(self._forward_value, self.signature)
        self.__doc__ = (getattr(target, "__doc__", None) or "").strip().split("\n")[0] or f"torch op {target.__name__}"

    def _run(self, inputs, params):
        torch = self.torch
        tensors = []
        for x in inputs:
            array = np.array(x)  # a copy: an in-place op on the tensor must not change gradcheck's arrays
            tensor = torch.from_numpy(array)
            if array.dtype.kind == "f":
                tensor.requires_grad_(True)
            tensors.append(tensor)
        params = copy.deepcopy(params)
        with torch.enable_grad():
            if self.order is not None:
                out = _apply_in_order(self.call, self.order, tensors, params)
            else:
                out = self.call(*tensors, **params)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the torch op returned {type(out).__name__}, not one tensor")
        return tensors, out

    def _forward_value(self, *inputs, **params):
        tensors, out = self._run(inputs, params)
        self.calls.put(inputs, params, (tensors, out))
        return out.detach().cpu().numpy().copy()

    def vjp(self, g, out, *inputs, **params):
        torch = self.torch
        found = self.calls.take(inputs, params)
        tensors, result = self._run(inputs, params) if found is MISSING else found
        wanted = [t for t in tensors if t.requires_grad]
        grads_out: dict[int, Any] = {}
        if wanted and result.requires_grad:
            upstream = torch.as_tensor(np.asarray(g), dtype=result.dtype).reshape(result.shape)
            computed = torch.autograd.grad(result, wanted, grad_outputs=upstream, allow_unused=True)
            grads_out = {id(t): c for t, c in zip(wanted, computed, strict=True)}
        grads: list[np.ndarray | None] = []
        for tensor in tensors:
            if not tensor.requires_grad:
                grads.append(None)
            elif grads_out.get(id(tensor)) is None:  # unused, or the result does not depend on it
                grads.append(np.zeros(tuple(tensor.shape), dtype=tensor.detach().numpy().dtype))
            else:
                grads.append(grads_out[id(tensor)].detach().cpu().numpy().copy())
        return tuple(grads)


def _apply_in_order(apply: Callable, forward: Callable, tensors: list, params: dict):
    """Function.apply(*arguments) with the constants placed where forward(ctx, ...) declares them."""
    import inspect

    own = list(inspect.signature(forward).parameters.values())[1:]
    remaining, queue, arguments = dict(params), list(tensors), []
    for parameter in own:
        if parameter.kind == parameter.VAR_POSITIONAL:
            arguments.extend(queue)
            queue = []
            continue
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            break
        if parameter.name in remaining:
            arguments.append(remaining.pop(parameter.name))
        elif queue:
            arguments.append(queue.pop(0))
        elif parameter.default is not parameter.empty:
            arguments.append(parameter.default)
    return apply(*arguments, *queue, **remaining)


class JaxOp:
    """A JAX function (a custom_vjp one, or any differentiable one) as forward / vjp through jax.vjp."""

    def __init__(self, jax, target: Callable, constants=()):
        self.jax, self.target, self.wraps = jax, target, (target,)
        self.signature = signature_of(target, constants)
        self.calls = CallCache()
        self.forward = as_forward(self._forward_value, self.signature)
        self.__doc__ = (getattr(target, "__doc__", None) or "").strip().split("\n")[0] or "jax op"
        if type(target).__name__ != "custom_vjp":  # a custom_vjp rule has no forward mode; a custom_jvp one is checked
            self.jvp = self._jvp

    def _of_floats(self, inputs, params):
        """(the float arguments' positions, their arrays, the function of them alone, integers held fixed)."""
        jnp = self.jax.numpy
        arrays = [jnp.asarray(np.array(x)) for x in inputs]
        positions = _float_positions(inputs)
        params = copy.deepcopy(params)

        def of_floats(*floats):
            merged = list(arrays)
            for position, value in zip(positions, floats, strict=True):
                merged[position] = value
            return call_in_order(self.target, self.signature, merged, params)

        return positions, [arrays[i] for i in positions], of_floats

    def _run(self, inputs, params):
        positions, floats, of_floats = self._of_floats(inputs, params)
        out, pullback = self.jax.vjp(of_floats, *floats)
        return positions, out, pullback

    def _jvp(self, tangents, out, *inputs, **params):
        positions, floats, of_floats = self._of_floats(inputs, params)
        jnp = self.jax.numpy
        directions = [jnp.zeros_like(x) if tangents[i] is None else jnp.asarray(np.asarray(tangents[i]), dtype=x.dtype)
                      for i, x in zip(positions, floats, strict=True)]
        _, tangent_out = self.jax.jvp(of_floats, tuple(floats), tuple(directions))
        return np.asarray(tangent_out).copy()

    def _forward_value(self, *inputs, **params):
        positions, out, pullback = self._run(inputs, params)
        self.calls.put(inputs, params, (positions, out, pullback))
        return np.asarray(out).copy()

    def vjp(self, g, out, *inputs, **params):
        found = self.calls.take(inputs, params)
        positions, result, pullback = self._run(inputs, params) if found is MISSING else found
        upstream = self.jax.numpy.asarray(np.asarray(g), dtype=result.dtype).reshape(result.shape)
        computed = pullback(upstream)
        grads: list = [None] * len(inputs)
        for position, grad in zip(positions, computed, strict=True):
            grads[position] = np.asarray(grad).copy()
        return tuple(grads)


def adapt(framework: str, op_name: str, target: Any, location: Location, constants=()) -> Any:
    """The op object of a torch or jax target (the framework is imported here, and only here)."""
    module = require(framework, op_name, location)
    if not callable(target):
        raise SpecError(f"custom op '{op_name}': the {framework} op must be callable, got {type(target).__name__}",
                        location)
    return TorchOp(module, target, constants) if framework == "torch" else JaxOp(module, target, constants)
