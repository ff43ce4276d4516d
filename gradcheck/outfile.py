"""Writing a report where the user asked, without losing anything they had.

- ``-`` (or no path) means standard output;
- a report never replaces a file the run read (a spec, an op module, a data file);
- a file is written to a temporary file in the same folder and renamed into place, so an
  interrupted or failed write (SIGTERM, a full disk) leaves the previous file as it was.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path

STDOUT = "-"


class OutputError(Exception):
    """The report cannot be written where it was asked to go; the message says why, in one line."""


def is_stdout(output: str | None) -> bool:
    return output is None or output == STDOUT


def refuse_inputs(output: str | None, inputs: Iterable[str | os.PathLike]) -> None:
    """Raise OutputError when ``output`` is one of the files the run read (same file, whatever the spelling)."""
    if output is None or is_stdout(output):
        return
    target = Path(output)
    for path in inputs:
        path = Path(path)
        try:
            same = target.exists() and path.exists() and os.path.samefile(target, path)
        except OSError:
            same = False
        if same or target.resolve() == path.resolve():
            raise OutputError(f"--output {output} is {path}, which this run reads: the report would replace it "
                              "(choose another file)")


def write_text(text: str, output: str | None) -> None:
    """The text on stdout, or atomically in the file ``output`` (OutputError on any failure, the old file kept)."""
    if is_stdout(output):
        write_stdout(text)
        return
    assert output is not None
    import tempfile  # here: a report on stdout needs none

    target = Path(output).resolve() if Path(output).is_symlink() else Path(output)  # replace the file, keep the link
    try:
        if target.is_dir():
            raise OutputError(f"cannot write the report to {output}: it is a folder")
        if target.exists() and not target.is_file():  # a device or a pipe (/dev/stderr, a FIFO): never renamed over
            with open(target, "w", encoding="utf-8", errors="backslashreplace") as stream:
                stream.write(text)
            return
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise OutputError(f"cannot write the report to {output}: {error.strerror or error}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", errors="backslashreplace") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        with contextlib.suppress(OSError):  # keep the permissions of the file it replaces
            os.chmod(temporary, os.stat(target).st_mode & 0o7777 if target.exists() else 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise OutputError(f"cannot write the report to {output}: {error.strerror or error}") from None
        raise


def write_stdout(text: str) -> None:
    """Text on stdout, flushed now, so a closed pipe or a full device is an OutputError here, not at exit."""
    with writing_stdout():
        sys.stdout.write(text)


@contextlib.contextmanager
def writing_stdout():
    """Whatever is written to stdout inside, flushed at the end; a failed write becomes one OutputError."""
    try:
        yield
        sys.stdout.flush()
    except OSError as error:
        silence_stdout()
        what = "the output pipe was closed" if isinstance(error, BrokenPipeError) else (error.strerror or str(error))
        raise OutputError(f"cannot write to standard output: {what}") from None


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's own flush at exit cannot fail again (and print about it)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
