"""The op conventions layer authors already write, adapted to the op protocol (forward / vjp).

A spec's ``ops:`` entry (and ``gradcheck.check_op``) may be a mapping instead of "module:attribute":

    pair   {forward: "layers:affine_forward", backward: "layers:affine_backward", constants: [conv_param]}
           forward(*inputs, **params) -> (out, cache); backward(dout, cache) -> one gradient per input
           (a tuple, or the gradient itself for one input).  ``constants`` names positional parameters of
           forward that are constants, given as keywords (``conv(x, w, b, conv_param={stride: 2, pad: 1})``).
    layer  {layer: "nn:Dense", init: {n_out: 4}, params: [W, b], store: parameters, grads: gradients}
           a stateful object: ``layer(**init)`` makes it (once per forward call, so gradients never accumulate
           across calls); the op's arguments are forward's inputs followed by the parameters, which are
           injected before forward -- as attributes, into the dict attribute ``store``, or by an ``inject``
           function (layer, {name: value}) -> None; after ``backward(dout)`` (the gradient of forward's inputs)
           the parameters' gradients are read from ``grads``: a dict attribute, an attribute per parameter
           (``grads: [dW, db]``) or a method (``grads: "get_gradients()"``) returning a dict or a sequence.
           ``forward`` / ``backward`` name the methods (default: forward, backward).
    loss   {forward: "losses:CrossEntropy.loss", gradient: "losses:CrossEntropy.grad", wrt: y_pred,
            upstream: softmax}
           forward(*inputs) -> a scalar loss; gradient(*inputs) -> d loss / d ``wrt`` (default: the last
           argument).  With ``upstream``, the gradient is declared to be with respect to the *input* of that
           op (logits, not the probabilities softmax makes of them): the op's argument is then that input,
           and forward receives ``upstream(argument)``; the fused rule is checked, not taken for a bug.
    torch / jax: see gradcheck.ops.frameworks.

Every adapter is an object with forward and vjp whose forward has the user's signature, so its op record
is built by ``registry.custom_op_info`` (``registry.op_record``) like any op's; its ``wraps`` names the
user's objects (whose modules a run reads, so --output never replaces them).  What a forward call makes
for its backward (the cache, the layer object, a framework's graph) is kept for the vjp of the same call
(:class:`CallCache`), so backward sees the cache its own forward returned.
"""
from __future__ import annotations

import copy
import inspect
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import Location, SpecError, clipped_repr, did_you_mean

# the keys of each convention's mapping; the first key that a mapping holds decides its convention
CONVENTIONS: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "constants"),
    "jax": ("jax", "constants"),
    "layer": ("layer", "init", "params", "store", "inject", "grads", "forward", "backward", "constants"),
    "loss": ("forward", "gradient", "wrt", "upstream", "constants"),
    "pair": ("forward", "backward", "constants"),
}
MAX_CACHED_CALLS = 16  # forward calls whose by-products wait for their vjp (more use sites than this: forward reruns)
MISSING = object()

Resolve = Callable[[Any, str], Any]  # (a declaration's value, its key) -> the Python object it names


class RuleFault(Exception):
    """An adapter's finding that the user's backward misbehaved (worded for the report, not a crash)."""


def convention_of(declaration: dict) -> str | None:
    """Which convention a mapping declares, by its keys (None: none of them)."""
    for name in ("torch", "jax", "layer"):
        if name in declaration:
            return name
    if "gradient" in declaration:
        return "loss"
    if "backward" in declaration:
        return "pair"
    return None


class CallCache:
    """What the last forward calls made for their backward, found by the arrays each call took.

    The engine hands a node's vjp copies of the arrays its forward took (it compares them afterwards, to catch an op
    that changes its inputs), so an entry is found by identity or else by equal values; a vjp at other values (or
    after the entry was evicted) finds none and the adapter runs forward again.
    An entry is taken once: a backward that consumes or changes its cache cannot hand a stale one to another.
    """

    def __init__(self, size: int = MAX_CACHED_CALLS):
        self.size = size
        self.entries: OrderedDict[tuple, tuple[tuple, dict, Any]] = OrderedDict()

    def put(self, inputs: Sequence, params: dict, item: Any) -> None:
        key = tuple(id(x) for x in inputs)
        self.entries[key] = (tuple(inputs), params, item)  # holding the arrays keeps their ids from being reused
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def take(self, inputs: Sequence, params: dict) -> Any:
        """The item the forward call at these inputs left (MISSING: none)."""
        taken = self.take_with_inputs(inputs, params)
        return taken if taken is MISSING else taken[0]

    def take_with_inputs(self, inputs: Sequence, params: dict) -> Any:
        """(item, the arrays that forward call took), or MISSING."""
        key = tuple(id(x) for x in inputs)
        entry = self.entries.get(key)
        if entry is None or not all(a is b for a, b in zip(entry[0], inputs, strict=True)):
            key, entry = next(((k, e) for k, e in reversed(self.entries.items()) if _equal_values(e[0], inputs)),
                              (key, None))
        if entry is None or not _same(entry[1], params):
            return MISSING
        del self.entries[key]
        return entry[2], entry[0]


def refuse_changed_cache(stored: Sequence, inputs: Sequence, names: Sequence[str]) -> None:
    """Raise RuleFault where backward changed, in place, an array its forward kept (in the cache, on the layer).

    The engine hands the vjp copies equal to the arrays forward took, so what changed is told apart from them."""
    changed = [f"input {i} ({names[i] if i < len(names) else f'#{i}'})"
               for i, (kept, given) in enumerate(zip(stored, inputs, strict=True))
               if kept is not given and not _equal_values((kept,), (given,))]
    if changed:
        raise RuleFault(f"vjp modifies {', '.join(changed)} in place, as its forward kept it (an op must not "
                        "change its inputs)")


def _equal_values(stored: Sequence, inputs: Sequence) -> bool:
    """The same values (shape, dtype, every element): what the engine hands a vjp are copies of forward's arrays."""
    if len(stored) != len(inputs):
        return False
    for a, b in zip(stored, inputs, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            return False
    return True


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # a parameter whose == is not a truth value (an array): take it as different
        return False


def signature_of(function: Callable, constants: Sequence[str] = (), drop_first: int = 0,
                 extra_args: Sequence[str] = ()) -> inspect.Signature:
    """forward's signature as the op's: positional parameters are arrays, except ``constants`` (made
    keyword-only), with ``extra_args`` appended as arrays; None where the function has no signature."""
    try:
        parameters = list(inspect.signature(function).parameters.values())[drop_first:]
    except (TypeError, ValueError):
        parameters = [inspect.Parameter("inputs", inspect.Parameter.VAR_POSITIONAL),
                      inspect.Parameter("params", inspect.Parameter.VAR_KEYWORD)]
    positional, keyword, var_positional, var_keyword = [], [], [], []
    for parameter in parameters:
        if parameter.name in constants:
            keyword.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
        elif parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            positional.append(parameter.replace(kind=parameter.POSITIONAL_OR_KEYWORD))
        elif parameter.kind == parameter.VAR_POSITIONAL:
            var_positional.append(parameter)
        elif parameter.kind == parameter.KEYWORD_ONLY:
            keyword.append(parameter)
        else:
            var_keyword.append(parameter)
    # the arrays: forward's required positional parameters, then extra_args; a positional parameter with a
    # default (forward(X, retain_derived=True)) is a keyword constant of the op
    first_default = next((i for i, p in enumerate(positional) if p.default is not p.empty), len(positional))
    head = positional[:first_default] + [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                         for name in extra_args]
    tail = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in positional[first_default:]]
    return inspect.Signature(head + var_positional + tail + keyword + var_keyword)


def call_in_order(function: Callable, signature: inspect.Signature, inputs: Sequence, params: dict):
    """function(*inputs, **params) with constants that are positional in function's own signature passed
    by position (a torch.autograd.Function's apply takes no keywords)."""
    try:
        own = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return function(*inputs, **params)
    remaining = dict(params)
    arguments, queue = [], list(inputs)
    for parameter in own:
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            break
        if parameter.name in remaining:
            arguments.append(remaining.pop(parameter.name))
        elif queue:
            arguments.append(queue.pop(0))
        else:
            break
    return function(*arguments, *queue, **remaining)


def as_forward(call: Callable, signature: inspect.Signature) -> Callable:
    """``call`` as a forward function with the op's signature (custom_op_info reads arity and keywords from it)."""
    def forward(*inputs, **params):
        return call(*inputs, **params)

    forward.__signature__ = signature  # type: ignore[attr-defined]
    return forward


def _doc(target) -> str | None:
    """The first line of the user's own docstring: the op's doc in `gradcheck` messages."""
    lines = (inspect.getdoc(target) or "").strip().splitlines()
    return lines[0] if lines else None


def _name(target) -> str:
    return getattr(target, "__qualname__", None) or type(target).__name__


def _gradients_tuple(grads, count: int, what: str) -> tuple:
    if isinstance(grads, (tuple, list)):
        return tuple(grads)
    if count == 1 or grads is None:
        return (grads,)
    raise TypeError(f"{what} returned {type(grads).__name__}, not one gradient per input ({count})")


# ------------------------------------------------------------------------------------------ pair


class PairOp:
    """forward(*inputs) -> (out, cache), backward(dout, cache) -> gradients, as forward / vjp."""

    def __init__(self, forward: Callable, backward: Callable, constants: Sequence[str] = ()):
        self._forward, self._backward = forward, backward
        self.backward_rule = backward  # where a suspect points: the user's backward, not this adapter
        self.wraps = (forward, backward)
        self.calls = CallCache()
        self.signature = signature_of(forward, constants)
        self.forward = as_forward(self._forward_value, self.signature)
        self.__doc__ = _doc(forward) or f"{_name(forward)} / {_name(backward)}, a forward/backward pair with a cache"

    def _run(self, inputs, params) -> tuple[Any, Any]:
        result = self._forward(*inputs, **copy.deepcopy(params))
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TypeError(f"forward returned {type(result).__name__}, not the pair (out, cache) this convention "
                            "expects (a forward without a cache is an ordinary op: give forward and vjp)")
        out, cache = result
        return out, cache

    def _forward_value(self, *inputs, **params):
        out, cache = self._run(inputs, params)
        self.calls.put(inputs, params, cache)
        return out

    def vjp(self, g, out, *inputs, **params):
        taken = self.calls.take_with_inputs(inputs, params)
        if taken is MISSING:
            _, cache = self._run(inputs, params)
            stored = inputs
        else:
            cache, stored = taken
        grads = self._backward(g, cache)
        refuse_changed_cache(stored, inputs, list(self.signature.parameters))
        return _gradients_tuple(grads, len(inputs), "backward")


# ------------------------------------------------------------------------------------------ stateful layer


class LayerOp:
    """A stateful layer object: made per forward call, parameters injected, gradients read after backward."""

    def __init__(self, factory: Callable, params: Sequence[str], *, init: dict | None = None,
                 store: str | None = None, inject: Callable | None = None, grads: str | Sequence[str] = "gradients",
                 forward: str = "forward", backward: str = "backward", constants: Sequence[str] = ()):
        self.factory, self.param_names, self.init = factory, tuple(params), dict(init or {})
        self.store, self.inject, self.grads = store, inject, grads
        self.forward_name, self.backward_name = forward, backward
        self.backward_rule = getattr(factory, backward, None) if isinstance(factory, type) else None
        self.wraps = (factory,) + ((inject,) if inject is not None else ())
        self.calls = CallCache()
        if isinstance(factory, type):
            self.signature = signature_of(getattr(factory, forward), constants, drop_first=1, extra_args=self.param_names)
        else:  # a factory function: forward's inputs are read off a layer it makes
            self.signature = signature_of(getattr(factory(**copy.deepcopy(self.init)), forward), constants,
                                          extra_args=self.param_names)
        self.input_count = len([p for p in self.signature.parameters.values()
                                if p.kind == p.POSITIONAL_OR_KEYWORD]) - len(self.param_names)
        self.forward = as_forward(self._forward_value, self.signature)
        self.__doc__ = _doc(factory) or f"the stateful layer {_name(factory)}"

    def _run(self, arrays, params):
        inputs, values = arrays[: self.input_count], arrays[self.input_count:]
        layer = self.factory(**copy.deepcopy(self.init))
        # copies: a layer (or its optimiser) may update its parameters in place
        named = {name: np.array(value) for name, value in zip(self.param_names, values, strict=True)}
        if self.inject is not None:
            self.inject(layer, named)
        elif self.store is not None:
            target = getattr(layer, self.store)
            for name, value in named.items():
                target[name] = value
        else:
            for name, value in named.items():
                setattr(layer, name, value)
        out = getattr(layer, self.forward_name)(*inputs, **copy.deepcopy(params))
        return layer, out

    def _forward_value(self, *arrays, **params):
        layer, out = self._run(arrays, params)
        self.calls.put(arrays, params, layer)
        return out

    def vjp(self, g, out, *arrays, **params):
        taken = self.calls.take_with_inputs(arrays, params)
        if taken is MISSING:
            layer, _ = self._run(arrays, params)
            stored = arrays
        else:
            layer, stored = taken
        input_grads = _gradients_tuple(getattr(layer, self.backward_name)(g), self.input_count, "backward")
        refuse_changed_cache(stored, arrays, list(self.signature.parameters))
        if len(input_grads) != self.input_count:
            raise TypeError(f"backward returned {len(input_grads)} gradient(s) for the layer's {self.input_count} input(s)")
        return input_grads + self._parameter_grads(layer)

    def _parameter_grads(self, layer) -> tuple:
        if not self.param_names:
            return ()
        grads = self.grads
        if not isinstance(grads, str):  # one attribute per parameter
            return tuple(getattr(layer, attribute) for attribute in grads)
        if grads.endswith("()"):
            found = getattr(layer, grads[:-2])()
        else:
            found = getattr(layer, grads)
        if isinstance(found, dict):
            missing = [name for name in self.param_names if name not in found]
            if missing:
                raise KeyError(f"the layer's {grads} has no gradient for {', '.join(missing)} "
                               f"(it holds {', '.join(map(str, found)) or 'nothing'})")
            return tuple(found[name] for name in self.param_names)
        found = tuple(found)
        if len(found) != len(self.param_names):
            raise TypeError(f"the layer's {grads} holds {len(found)} gradient(s) for {len(self.param_names)} parameter(s)")
        return found


# ------------------------------------------------------------------------------------------ loss with a fused gradient


class LossOp:
    """loss(*inputs) and gradient(*inputs) = d loss / d inputs[wrt], or / d the input of ``upstream``."""

    def __init__(self, forward: Callable, gradient: Callable, wrt: int, upstream=None, upstream_params=None,
                 constants: Sequence[str] = ()):
        self._forward, self._gradient, self.wrt = forward, gradient, wrt
        self.backward_rule = gradient
        self.wraps = (forward, gradient)
        self.upstream, self.upstream_params = upstream, dict(upstream_params or {})
        self.signature = signature_of(forward, constants)
        self.forward = as_forward(self._forward_value, self.signature)
        self.__doc__ = _doc(forward) or f"the loss {_name(forward)} with its gradient {_name(gradient)}"

    def _arguments(self, inputs) -> list:
        arguments = list(inputs)
        if self.upstream is not None:
            arguments[self.wrt] = self.upstream.forward(np.asarray(arguments[self.wrt]), **self.upstream_params)
        return arguments

    def _forward_value(self, *inputs, **params):
        return self._forward(*self._arguments(inputs), **copy.deepcopy(params))

    def vjp(self, g, out, *inputs, **params):
        if np.size(g) != 1:
            raise ValueError(f"a loss with a gradient function must return one number; it returned shape {np.shape(out)}")
        gradient = np.asarray(self._gradient(*self._arguments(inputs), **copy.deepcopy(params)))
        grads: list = [None] * len(inputs)
        grads[self.wrt] = np.reshape(g, ()) * gradient
        return tuple(grads)


# ------------------------------------------------------------------------------------------ reading a declaration


class Declaration:
    """A convention's mapping, read field by field with errors located at the field."""

    def __init__(self, op_name: str, mapping: dict, location: Location, resolve: Resolve):
        self.op_name, self.mapping, self.location, self.resolve = op_name, mapping, location, resolve

    def where(self, key: str) -> Location:
        return getattr(self.mapping, "value_locations", {}).get(key, self.location)

    def fail(self, message: str, key: str | None = None) -> SpecError:
        return SpecError(f"custom op '{self.op_name}': {message}", self.where(key) if key else self.location)

    def check_keys(self, convention: str) -> None:
        allowed = CONVENTIONS[convention]
        for key in self.mapping:
            if key not in allowed:
                places = getattr(self.mapping, "key_locations", {})
                raise SpecError(f"custom op '{self.op_name}': unknown key {clipped_repr(key)}{did_you_mean(key, allowed)} "
                                f"for a {convention} op; its keys are {', '.join(allowed)}",
                                places.get(key, self.location))

    def target(self, key: str, required: bool = True):
        if key not in self.mapping:
            if required:
                raise self.fail(f"a {convention_of(self.mapping)} op needs '{key}:'")
            return None
        return self.resolve(self.mapping[key], key)

    def callable(self, key: str):
        found = self.target(key)
        if not callable(found):
            raise self.fail(f"'{key}:' names {clipped_repr(found)}, which cannot be called", key)
        return found

    def names(self, key: str) -> tuple[str, ...]:
        value = self.mapping.get(key, [])
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.isidentifier() for v in value):
            raise self.fail(f"'{key}:' must be a name or a list of names, got {clipped_repr(value)}", key)
        return tuple(value)

    def name(self, key: str, default: str) -> str:
        value = self.mapping.get(key, default)
        if not isinstance(value, str) or not value.removesuffix("()").isidentifier():
            raise self.fail(f"'{key}:' must be a name, got {clipped_repr(value)}", key)
        return value

    def constants_map(self, key: str) -> dict:
        value = self.mapping.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self.fail(f"'{key}:' must be a mapping of keyword names to constants, got {clipped_repr(value)}", key)
        return {k: _plain(v) for k, v in value.items()}


def _plain(value):
    """A located YAML value as plain Python data (what a user's function expects to receive)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def adapt(op_name: str, mapping: dict, location: Location, resolve: Resolve, builtin_ops: Mapping) -> Any:
    """The op object a convention's mapping declares (torch and jax excepted: gradcheck.ops.frameworks)."""
    declaration = Declaration(op_name, mapping, location, resolve)
    convention = convention_of(mapping)
    if convention is None:
        raise SpecError(f"custom op '{op_name}': a mapping must declare a convention: forward: with backward: "
                        "(a pair with a cache), forward: with gradient: (a loss), layer: (a stateful layer), "
                        f"torch: or jax:; got the keys {', '.join(map(str, mapping)) or 'none'}", location)
    declaration.check_keys(convention)
    constants = declaration.names("constants")
    if convention == "pair":
        return PairOp(declaration.callable("forward"), declaration.callable("backward"), constants)
    if convention == "layer":
        grads = mapping.get("grads", "gradients")
        grads = declaration.names("grads") if isinstance(grads, list) else declaration.name("grads", "gradients")
        inject = declaration.target("inject", required=False)
        if inject is not None and not callable(inject):
            raise declaration.fail("'inject:' must name a function (layer, {name: value}) -> None", "inject")
        return LayerOp(declaration.callable("layer"), declaration.names("params"), init=declaration.constants_map("init"),
                       store=declaration.name("store", "") if "store" in mapping else None, inject=inject, grads=grads,
                       forward=declaration.name("forward", "forward"), backward=declaration.name("backward", "backward"),
                       constants=constants)
    if convention == "loss":
        forward = declaration.callable("forward")
        gradient = declaration.callable("gradient")
        arguments = [p for p in signature_of(forward, constants).parameters.values() if p.kind == p.POSITIONAL_OR_KEYWORD]
        wrt = mapping.get("wrt", arguments[-1].name if arguments else None)
        names = [p.name for p in arguments]
        if wrt not in names:
            raise declaration.fail(f"'wrt:' must name an argument of forward ({', '.join(names) or 'none'}), got "
                                   f"{clipped_repr(wrt)}", "wrt")
        upstream, upstream_params = _upstream(declaration, builtin_ops)
        return LossOp(forward, gradient, names.index(wrt), upstream, upstream_params, constants)
    raise AssertionError(f"convention {convention} is adapted in gradcheck.ops.frameworks")


def _upstream(declaration: Declaration, builtin_ops: Mapping):
    """The built-in op named by 'upstream:' (a name, or {op: name, <keyword>: constant}) and its keywords."""
    if "upstream" not in declaration.mapping:
        return None, {}
    value = declaration.mapping["upstream"]
    params = {}
    if isinstance(value, dict):
        params = {k: _plain(v) for k, v in value.items() if k != "op"}
        value = value.get("op")
    if not isinstance(value, str) or value not in builtin_ops or len(builtin_ops[value].args) != 1:
        one_argument = sorted(name for name, info in builtin_ops.items() if len(info.args) == 1)
        raise declaration.fail(f"'upstream:' must name a built-in op of one argument (softmax, sigmoid, log_softmax, "
                               f"...), got {clipped_repr(value)}{did_you_mean(str(value), one_argument)}", "upstream")
    info = builtin_ops[value]
    try:
        return info.impl, info.check_params(params)
    except ValueError as error:
        raise declaration.fail(f"'upstream:' {error}", "upstream") from None
