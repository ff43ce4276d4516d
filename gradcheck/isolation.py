"""Running a spec's own code so that nothing it does can end, pass, hang or print over the run.

A spec that names custom ops runs its check in a forked child process (where the platform forks):
the op's ``os._exit``, ``sys.exit`` or any exception ends that child, never the run; what the op
prints goes to a capture, not to gradcheck's stdout; the child is killed when it runs past the
time limit.  A spec of built-in ops only runs in this process, with the time limit enforced by a
timer signal.

Memory: the check is sized against the budget before it starts (gradcheck/sizing.py); as a backstop
for what no op declares (a custom op's own arrays), the process checking the spec may add at most
the budget minus what it already holds to its address space (:func:`memory_cap`), so its resident
memory stays within the budget: an allocation past it is a MemoryError, reported as this spec's error.

Everything that stops a spec is worded once, by :func:`describe_fault`.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from .errors import INTERRUPTS, SpecError, clip, one_line
from .plaindata import FrozenPlainData, PlainData

if TYPE_CHECKING:
    from .results import ErrorInfo

T = TypeVar("T")

DEFAULT_TIMEOUT = 600.0      # seconds per spec: a larger model in --mode full takes minutes; a hang is stopped
MEMORY_FRACTION = 0.5        # the default memory budget of a spec: this fraction of the machine's memory


class SpecTimeout(BaseException):
    """The spec's check ran past its time limit.

    A BaseException, like KeyboardInterrupt: raised by the timer wherever the check is, it must not be taken
    for an op's failure by a handler of ``Exception`` on the way out."""

    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds


class ChildEnded(Exception):
    """The child process that checked the spec ended without handing back a result."""

    def __init__(self, how: str):
        super().__init__(how)
        self.how = how


@dataclass(frozen=True, eq=False, repr=False)
class Limits(FrozenPlainData):
    """What one spec may take: seconds of wall time, bytes of address space for a child (None: no limit)."""

    timeout: float | None = DEFAULT_TIMEOUT
    max_memory: int | None = None


@dataclass(eq=False, repr=False)
class Contained(Generic[T], PlainData):
    """What contained work returned, or what stopped it, and what the spec's code printed."""

    value: T | None                  # what the work returned (None when it failed)
    error: ErrorInfo | None          # what stopped it, worded once
    printed: str = ""                # what the spec's code wrote to stdout (captured, never shown as gradcheck's)


def default_memory_budget() -> int | None:
    """MEMORY_FRACTION of the memory this process can have: the machine's, or its container's where that is less
    (a cgroup limit); None where the platform does not say."""
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file, encoding="ascii") as handle:
                limit = handle.read().strip()
        except OSError:
            continue
        if limit.isdigit():
            available = min(available, int(limit))
    return int(available * MEMORY_FRACTION)


def _memory_now() -> tuple[int, int] | None:
    """(address space, resident memory) of this process in bytes, where /proc says."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            size, resident = (int(field) for field in handle.read().split()[:2])
    except (OSError, ValueError):
        return None
    page = os.sysconf("SC_PAGE_SIZE")
    return size * page, resident * page


@contextlib.contextmanager
def memory_cap(budget: int | None):
    """Inside, this process may grow its address space by at most ``budget`` minus its resident memory, so its
    resident memory stays within ``budget``; an allocation past it raises MemoryError.  Restored on the way out.
    No effect where the platform has no address-space limit (or /proc to measure from)."""
    now = _memory_now() if budget else None
    try:
        import resource
    except ImportError:
        now = None
    if budget is None or now is None or not hasattr(resource, "RLIMIT_AS"):
        yield
        return
    address_space, resident = now
    if budget <= resident:
        raise SpecError(f"the memory budget of {budget:,} bytes (--max-memory) is less than gradcheck itself takes "
                        f"already ({resident:,} bytes)")
    _warm_up_blas()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = address_space + budget - resident
    if soft != resource.RLIM_INFINITY:
        cap = min(cap, soft)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _warm_up_blas() -> None:
    """One small product before the cap, so the BLAS library's buffers exist before the address space is limited
    (a BLAS that cannot map its buffers aborts the process instead of raising MemoryError)."""
    import numpy as np

    np.ones((64, 64)) @ np.ones((64, 64))


def describe_fault(error: BaseException) -> ErrorInfo:
    """The one wording of everything that can stop a spec: its own error, or gradcheck's, as one line."""
    from .results import ErrorInfo  # here: the command line reads this module's limits before any result exists

    if isinstance(error, SpecError):
        return ErrorInfo(error.message, error.location)
    if isinstance(error, SpecTimeout):
        return ErrorInfo(f"the check ran past the time limit of {error.seconds:g} s (--timeout)")
    if isinstance(error, ChildEnded):
        return ErrorInfo(one_line(f"the check ended without a result: {error.how}"))
    if isinstance(error, RecursionError):
        return ErrorInfo("the spec is nested too deeply to evaluate")
    if isinstance(error, MemoryError):
        return ErrorInfo("out of memory: checking this spec needed more than its memory budget (--max-memory)")
    if isinstance(error, SystemExit):  # a custom op's code called exit(): that must not end (or pass) the run
        return ErrorInfo(one_line(f"exit({clip(error.code)}) was called while checking this spec (by a custom op?)"))
    if isinstance(error, Exception):
        return ErrorInfo(one_line(f"internal error: {type(error).__name__}: {clip(error, 300)} (please report)"))
    return ErrorInfo(one_line(f"{type(error).__name__} was raised while checking this spec (by a custom op?): "
                              f"{clip(error, 300)}"))


def in_a_child(runs_user_code: bool) -> bool:
    """Whether contain() runs its work in a forked child: where it runs user code and the platform can fork."""
    return runs_user_code and hasattr(os, "fork")


def contain(work: Callable[[], T], limits: Limits, *, runs_user_code: bool) -> Contained[T]:
    """``work()`` within the limits; a child process where it runs user code and the platform can fork."""
    try:
        if in_a_child(runs_user_code):
            return _in_child(work, limits)
        with memory_cap(limits.max_memory):
            return Contained(_with_timer(work, limits.timeout), None)
    except INTERRUPTS:
        raise
    except BaseException as error:
        return Contained(None, describe_fault(error))


def _with_timer(work: Callable[[], T], timeout: float | None) -> T:
    """work() in this process, interrupted by SpecTimeout after ``timeout`` seconds (main thread only)."""
    if not timeout or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return work()

    def expired(signum, frame):
        raise SpecTimeout(timeout)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return work()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


INTERRUPT_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _in_child(work: Callable[[], T], limits: Limits) -> Contained[T]:
    import pickle  # here, with tempfile: only a spec with custom ops forks a child
    import tempfile

    capture = tempfile.TemporaryFile()
    readable, writable = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    # Ctrl-C or SIGTERM between the fork and the kill-on-interrupt below would leave the child running (and
    # holding the caller's pipes): both wait, blocked, until each process has its own handling in place. In a
    # process with other threads (torch's, a notebook's) the signal may land on one of them and be raised here
    # at any line before the unblock: the mask is restored on every way out, or Ctrl-C would stay blocked for
    # the rest of the caller's life and in every process it starts.
    unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPT_SIGNALS)
    pid = 0
    writable_open = True
    try:
        pid = os.fork()
        if pid == 0:  # the child: never returns, whatever work() does
            _run_child(work, limits, capture.fileno(), writable, unblocked, parent_end=readable)
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)  # a signal that came meanwhile is raised here
        writable_open = False  # before the close: at worst a leaked descriptor, never another's closed twice
        os.close(writable)
        payload, status = _collect(pid, readable, limits.timeout)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
        if pid:
            _kill(pid)
        if writable_open:
            os.close(writable)
        raise
    finally:
        os.close(readable)
    capture.seek(0)
    printed = capture.read().decode("utf-8", errors="backslashreplace")
    capture.close()
    if payload:
        value, error = pickle.loads(payload)
        return Contained(value, error, printed)
    return Contained(None, describe_fault(ChildEnded(_how_it_ended(status))), printed)


def _run_child(work, limits: Limits, capture_fd: int, result_fd: int, unblocked: set, parent_end: int) -> None:
    import pickle

    code = 0
    try:
        os.close(parent_end)
        signal.signal(signal.SIGINT, signal.SIG_IGN)     # the parent handles Ctrl-C and ends this process
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
        os.dup2(capture_fd, 1)                           # the op's print() cannot reach gradcheck's stdout
        sys.dont_write_bytecode = True                   # an op's own later imports leave no __pycache__ either
        try:
            with memory_cap(limits.max_memory):
                outcome: tuple[object, ErrorInfo | None] = (work(), None)
        except BaseException as error:  # whatever it was, the parent gets it as this spec's error
            outcome = (None, describe_fault(error))
        try:
            payload = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # a result that cannot cross the process boundary is gradcheck's bug
            payload = pickle.dumps((None, describe_fault(error)))
        sys.stdout.flush()
        view = memoryview(payload)
        while view:
            view = view[os.write(result_fd, view):]
    except BaseException:
        code = 70  # nothing could be handed back: the parent reports how the child ended
    finally:
        os._exit(code)


def _collect(pid: int, readable: int, timeout: float | None) -> tuple[bytes, int]:
    """The child's payload and its wait status; the child is killed at the deadline or on an interrupt."""
    import select

    chunks = []
    deadline = None if not timeout else time.monotonic() + timeout
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([readable], [], [], wait)
            if not ready:
                _kill(pid)
                raise SpecTimeout(timeout or 0.0)
            chunk = os.read(readable, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except BaseException:
        _kill(pid)
        raise
    _, status = os.waitpid(pid, 0)
    return b"".join(chunks), status


def _kill(pid: int) -> None:
    """End the child and reap it; nothing once it is reaped (its pid may be another process's by then)."""
    try:
        ended, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return
    if ended:
        return
    with contextlib.suppress(ProcessLookupError, ChildProcessError):  # a zombie until reaped: still ours
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _how_it_ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        hint = " (out of memory?)" if number == signal.SIGKILL else ""
        return f"the process checking it was killed by {name}{hint}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return f"the process checking it exited with code {code} before it finished (did a custom op call os._exit?)"
