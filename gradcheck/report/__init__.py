"""Renderers: one module per output format behind one small interface.

A renderer is a function ``render(run: RunResult, options: RenderOptions) -> str`` (the table
renderer also accepts a Rich console to print to directly).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenderOptions:
    values: bool = False     # JSON: include the full analytic/numeric arrays
    verbose: bool = False    # per-element rows for failing nodes
    quiet: bool = False      # only what failed, and the summary
    color: bool = True
    errors_inline: bool = True  # table: print spec errors in the table (False: the CLI prints them on stderr)


FORMATS = ("table", "json", "junit", "github", "markdown")


def renderer(name: str):
    from importlib import import_module

    return import_module(f".{ {'json': 'json_report'}.get(name, name)}", __name__).render
