"""Shared test settings."""
import pytest


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Text reports follow the terminal's width (COLUMNS); tests that read them must not depend on the caller's."""
    monkeypatch.delenv("COLUMNS", raising=False)
