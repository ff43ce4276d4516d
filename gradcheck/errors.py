"""Where a fault is, and the one error type a bad spec raises."""
from __future__ import annotations

from dataclasses import dataclass

from .plaindata import FrozenPlainData


@dataclass(frozen=True, eq=False, repr=False)
class Location(FrozenPlainData):
    """A place in a spec file; line and column are 1-based, None where the fault has no place."""

    path: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.path
        if self.column is None:
            return f"{self.path}:{self.line}"
        return f"{self.path}:{self.line}:{self.column}"

    def shifted(self, columns: int) -> Location:
        if self.column is None:
            return self
        return Location(self.path, self.line, self.column + columns)


class Terminated(BaseException):
    """SIGTERM, raised where the program is so it unwinds like Ctrl-C's KeyboardInterrupt (never a spec's error)."""


INTERRUPTS = (KeyboardInterrupt, Terminated)  # what stops the whole run, never caught as one spec's fault

MAX_MESSAGE_CHARS = 1000


def one_line(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A message as one line of bounded length: line breaks become spaces, the middle of a long one is cut."""
    text = " ".join(str(message).split("\n")).replace("\r", " ")
    if len(text) > limit:
        keep = (limit - 5) // 2
        text = f"{text[:keep]} ... {text[-keep:]}"
    return text


def clip(text, limit: int = 60) -> str:
    """User text quoted in a message, cut to ``limit`` characters (a 10 MB string must not become a 10 MB message)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clipped_repr(value, limit: int = 60) -> str:
    """repr(value) for a message, cut to ``limit`` characters; walks at most ``limit`` items of a structure."""
    parts: list[str] = []
    budget = [limit + 1]

    def emit(text: str) -> bool:
        parts.append(text)
        budget[0] -= len(text)
        return budget[0] > 0

    def walk(item, depth: int) -> bool:
        if depth > 20:
            return emit("...")
        if isinstance(item, (list, tuple)):
            opening, closing = ("[", "]") if isinstance(item, list) else ("(", ")")
            if not emit(opening):
                return False
            for index, child in enumerate(item):
                if (index and not emit(", ")) or not walk(child, depth + 1):
                    return False
            return emit(closing)
        if isinstance(item, dict):
            if not emit("{"):
                return False
            for index, (key, child) in enumerate(item.items()):
                if (index and not emit(", ")) or not walk(key, depth + 1) or not emit(": ") or not walk(child, depth + 1):
                    return False
            return emit("}")
        if isinstance(item, str):
            return emit(repr(item[: limit + 1]))
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > 10 ** 50:
            return emit(f"<an integer of ~{len(hex(item)) * 1.2:.0f} digits>")
        try:
            text = repr(item)
        except Exception:  # a repr that fails must not hide the message
            text = f"<a {type(item).__name__}>"
        return emit(text[: limit + 1])

    walk(value, 0)
    return clip("".join(parts), limit)


class SpecError(Exception):
    """A spec or usage fault: one message, with the file:line:column it comes from."""

    def __init__(self, message: str, location: Location | None = None):
        message = one_line(message)
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'x'?)' for a near miss, else ''."""
    import difflib

    if len(str(word)) > 100:
        return ""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{clip(close[0])}'?)" if close else ""


def first_position(flags) -> tuple[int, ...]:
    """The index of the first True in the boolean array flags (row-major), for error messages; () for a 0-d array."""
    import numpy as np  # imported here: importing gradcheck (the pytest plugin) must not load numpy

    return tuple(int(i) for i in np.argwhere(flags)[0])
