"""The equality and the text of gradcheck's plain-data dataclasses, written once for all of them.

Python 3.11's ``@dataclass`` writes the source of an ``__eq__`` and a ``__repr__`` for every class it makes and
compiles each with ``exec``: about 1 M instructions for a class of a few fields, 3 M for one of thirty, paid by
every process that imports the class, though a one-spec run never compares or prints its results.  A class
declared ``@dataclass(eq=False, repr=False)`` with :class:`PlainData` (or, frozen, :class:`FrozenPlainData`)
among its bases gets the same methods from here: equal to an object of the very same class whose compared
fields are equal, in order; shown as ``ClassName(field=value, ...)`` over the fields dataclass would show;
unhashable unless frozen, and then hashed by its compared fields, as dataclass does.
"""
from __future__ import annotations

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
