"""Shared test settings."""
import signal

import pytest

HANG_SECONDS = 60  # a bound on hangs, not a speed test: each malformed spec takes well under a second


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Text reports follow the terminal's width (COLUMNS); tests that read them must not depend on the caller's."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def hang_bound():
    """Fails the test if it is still running after HANG_SECONDS (a hang), instead of letting the suite wait forever.

    The alarm interrupts Python code; Failed is not an Exception, so no `except Exception` in gradcheck swallows it.
    """
    if not hasattr(signal, "setitimer"):  # Windows: no alarm signal; the suite's own CI timeout bounds it there
        yield
        return

    def hung(signum, frame):
        pytest.fail(f"still running after {HANG_SECONDS} s: a hang", pytrace=False)

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
