"""The equality and the text of gradcheck's plain-data dataclasses, written once for all of them.

Python 3.11's ``@dataclass`` writes the source of an ``__eq__`` and a ``__repr__`` for every class it makes and
compiles each with ``exec``: about 1 M instructions for a class of a few fields, 3 M for one of thirty, paid by
every process that imports the class, though a one-spec run never compares or prints its results.  A class
declared ``@dataclass(eq=False, repr=False)`` with :class:`PlainData` (or, frozen, :class:`FrozenPlainData`)
among its bases gets the same methods from here: equal to an object of the very same class whose compared
fields are equal, in order; shown as ``ClassName(field=value, ...)`` over the fields dataclass would show;
unhashable unless frozen, and then hashed by its compared fields, as dataclass does.

:func:`dataclass` goes one step further for modules whose classes a run mostly does not make (the results of
failures, of jvp rules, ...): the ``__init__`` dataclass generates (about 0.15 M instructions per field, 22 M for
gradcheck.results) is compiled when the class is first instantiated, not when it is defined; and a frozen class
gets its ``__setattr__`` and ``__delattr__`` (which dataclass compiles too, 0.5 M instructions each) as closures
that do what dataclass's do, compiling nothing.
"""
from __future__ import annotations

import dataclasses
import reprlib
from dataclasses import Field, fields
from typing import Any


class PlainData:
    """The methods ``@dataclass(eq=True, repr=True)`` would generate, shared (declare eq=False, repr=False).
    Defining ``__eq__`` makes the class unhashable, as dataclass leaves a mutable class with an ``__eq__``."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return _compared(self) == _compared(other)
        return NotImplemented

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{item.name}={getattr(self, item.name)!r}" for item in _fields(self) if item.repr)
        return f"{self.__class__.__qualname__}({shown})"


class FrozenPlainData(PlainData):
    """PlainData for a ``@dataclass(frozen=True, eq=False, repr=False)``: hashable by its hashed fields."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, item.name) for item in _fields(self)
                          if (item.compare if item.hash is None else item.hash)))


def _fields(data: Any) -> tuple[Field, ...]:
    return fields(data)


def _compared(data: PlainData) -> tuple:
    return tuple(getattr(data, item.name) for item in _fields(data) if item.compare)


def dataclass(cls: type | None = None, /, **options: Any) -> Any:
    """``dataclasses.dataclass(cls, **options)``, the generated ``__init__`` compiled on the class's first
    instantiation.  Until then the class's ``__init__`` is a stand-in that compiles the real one, puts it in its
    place and calls it; asking for the class's signature (``inspect.signature``, ``help``) compiles it too, so the
    signature is dataclass's.  Everything else (fields, ``replace``, ``asdict``, the frozen and kw_only checks) is
    dataclass's from the start.  A module imports it as ``dataclass`` outside TYPE_CHECKING, so type checkers read
    the standard decorator, whose semantics this keeps."""
    def wrap(cls: type) -> type:
        frozen = bool(options.get("frozen"))
        # slots=True makes a new class; eq=True gives a frozen class dataclass's field hash, a mutable one none
        if options.get("slots") or (frozen and (options.get("eq", True) or not _freezable(cls))):
            return dataclasses.dataclass(cls, **options)
        made: Any = dataclasses.dataclass(cls, **{**options, "init": False, "frozen": False})
        if frozen:
            _freeze(made)
        if not options.get("init", True) or "__init__" in cls.__dict__:  # dataclass keeps a class's own __init__
            return made

        def compile_init() -> None:
            if made.__dict__["__init__"] is stand_in:
                made.__init__ = generated_init(made, frozen=frozen)

        def stand_in(self: Any, *args: Any, **kwargs: Any) -> None:
            compile_init()
            made.__init__(self, *args, **kwargs)

        stand_in.__qualname__ = f"{made.__qualname__}.__init__"
        made.__init__ = stand_in
        made.__signature__ = _CompiledWhenAsked(compile_init)
        return made

    return wrap if cls is None else wrap(cls)


def _freezable(cls: type) -> bool:
    """Whether :func:`_freeze` makes ``cls`` frozen as dataclass would: it has no dataclass among its bases (whose
    frozenness dataclass checks against its own) and writes no ``__setattr__`` or ``__delattr__`` of its own (which
    dataclass refuses to replace)."""
    return (not any(dataclasses.is_dataclass(base) for base in cls.__mro__[1:])
            and not {"__setattr__", "__delattr__"} & cls.__dict__.keys())


def _freeze(cls: Any) -> None:
    """Make a dataclass declared with frozen=False the frozen one: the ``__setattr__`` and ``__delattr__`` dataclass
    writes for a frozen class (assigning or deleting a field, or any attribute of the class itself, raises
    FrozenInstanceError; a subclass's other attributes pass to the next class), and ``frozen`` in its parameters."""
    names = tuple(item.name for item in fields(cls))

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    for method in (__setattr__, __delattr__):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        setattr(cls, method.__name__, method)
    cls.__dataclass_params__.frozen = True  # read by dataclass for a subclass, and by anyone asking


class _CompiledWhenAsked:
    """A class's ``__signature__``, which ``inspect.signature`` reads first: compiles the class's ``__init__`` and
    answers None, so inspect goes on to read the signature of that ``__init__``."""

    def __init__(self, compile_init: Any) -> None:
        self.compile_init = compile_init

    def __get__(self, instance: object, owner: type) -> None:
        self.compile_init()


def generated_init(cls: type, *, frozen: bool) -> Any:
    """The ``__init__`` ``@dataclass`` generates for ``cls``'s fields, generated now, on a throwaway subclass
    that adds none (its fields, defaults, kw_only marks and ``__post_init__`` are ``cls``'s)."""
    twin = type(cls.__name__, (cls,), {"__qualname__": cls.__qualname__, "__module__": cls.__module__,
                                       "__doc__": cls.__doc__})
    dataclasses.dataclass(twin, eq=False, repr=False, frozen=frozen, match_args=False)
    return twin.__dict__["__init__"]
