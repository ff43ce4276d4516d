"""Renderers: one module per output format behind one small interface.

A renderer is a function ``render(run: RunResult, options: RenderOptions) -> str`` (the table
renderer also accepts a Rich console to print to directly).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..plaindata import FrozenPlainData


@dataclass(frozen=True, eq=False, repr=False)
class RenderOptions(FrozenPlainData):
    """How a report is drawn: the options every renderer reads."""

    values: bool = False     # JSON: include the full analytic/numeric arrays
    verbose: bool = False    # per-element rows for failing nodes
    quiet: bool = False      # only what failed, and the summary
    color: bool = True
    errors_inline: bool = True  # table: print spec errors in the table (False: the CLI prints them on stderr)
    strict: bool = False     # kinks were counted as failures (--strict): JUnit and Markdown report them so
    junit_flavor: str = "default"  # default: junit-10 plus file/line on testcases (GitHub readers); strict: junit-10 only
    width: int = 120         # the table's width when it is rendered to a string (a file, a test)


DEFAULT_OPTIONS = RenderOptions()
FORMATS = ("table", "json", "junit", "github", "markdown")
JUNIT_FLAVORS = ("default", "strict")


def renderer(name: str):
    from importlib import import_module

    return import_module(f".{ {'json': 'json_report'}.get(name, name)}", __name__).render
