"""The command line: parse options, call the library, pick a renderer, return the exit code."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import __version__
from .errors import SpecError, Terminated, one_line
from .format import visible_line
from .isolation import DEFAULT_TIMEOUT, Limits, default_memory_budget
from .outfile import OutputError, is_stdout, refuse_inputs, silence_stdout, write_stdout, write_text, writing_stdout
from .report import FORMATS, JUNIT_FLAVORS
from .vocabulary import FLOAT_DTYPES, METHODS

if TYPE_CHECKING:
    from .spec import Overrides

EXIT_USAGE = 2


DEFAULT_WIDTH = 120  # columns where no terminal width is known: CI logs are wide (COLUMNS overrides)


def _console(stream, color: str):
    from rich.console import Console

    class PipeReportingConsole(Console):
        def on_broken_pipe(self) -> None:  # rich would exit(1) quietly: report it as any failed write is
            _broken_pipe()

    force = {"always": True, "never": False}.get(color)
    no_color = color == "never" or (color == "auto" and os.environ.get("NO_COLOR", "") != "")  # no-color.org: empty = unset
    console = PipeReportingConsole(file=stream, highlight=False, emoji=False, force_terminal=force, no_color=no_color,
                                   soft_wrap=False)  # emoji: no :code: in a spec's text turns into a picture
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = terminal_width() or DEFAULT_WIDTH
    return console


def _plain_console_width(stream, color: str) -> int | None:
    """The width of the console ``_console`` would make for ``stream`` when that console draws no styles at all
    (Rich sees no terminal: a pipe or a file, or --color never), else None.  Where Rich would decide otherwise
    than by the stream (FORCE_COLOR, TTY_COMPATIBLE, a notebook, a COLUMNS that is not a number) it is left
    to Rich: None."""
    import builtins

    if color == "always" or "get_ipython" in vars(builtins):
        return None
    if color == "auto" and ({"FORCE_COLOR", "TTY_COMPATIBLE"} & os.environ.keys() or _is_terminal(stream)):
        return None
    columns = os.environ.get("COLUMNS")
    if columns is None:
        return terminal_width() or DEFAULT_WIDTH
    return int(columns) if columns.isdigit() and int(columns) > 0 and sys.platform != "win32" else None


def terminal_width() -> int | None:
    """The width of the terminal this process runs in (output piped on, stderr still there), if any."""
    for stream in (sys.stderr,):
        try:
            return os.get_terminal_size(stream.fileno()).columns or None
        except (AttributeError, ValueError, OSError):
            continue
    return None


def _broken_pipe() -> None:
    raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def _error_line(path: str, error) -> str:
    from .report.common import error_where

    return f"{error_where(path, error)}: error: {visible_line(error.message)}"


class _FiniteFloat(click.FloatRange):
    """A float range that also refuses nan and inf (a NaN tolerance would make every comparison fail)."""

    def convert(self, value, param, ctx):
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


MODES = ("auto", "full", "fast")


def _options(*decorators):
    """Several click options as one decorator (applied in the order listed, as they show in --help)."""
    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function
    return apply


_dtype_option = click.option("--dtype", type=click.Choice(FLOAT_DTYPES), help="Precision of the analytic pass.")
_seed_option = click.option("--seed", type=click.IntRange(min=0), help="Seed for every random draw (overrides the specs').")
_color_option = click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
                             help="Colour (auto honours NO_COLOR and the terminal).")
class _MemorySize(click.ParamType):
    """A size in bytes: 2000000000, 512M, 8G (K, M, G, T: powers of 1024)."""

    name = "size"
    UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

    def convert(self, value, param, ctx):
        text = str(value).strip().upper().removesuffix("B").removesuffix("I")
        number, unit = (text[:-1], text[-1]) if text[-1:] in self.UNITS and text[-1:] else (text, "")
        try:
            size = float(number) * self.UNITS[unit]
        except (ValueError, KeyError):
            self.fail(f"{value!r} is not a size such as 8G, 512M or 2000000000.", param, ctx)
        if not 0 < size < float(1 << 60):
            self.fail(f"{value!r} must be a positive size.", param, ctx)
        return int(size)


# the limits of one spec's check: run, explain and graph
_limit_options = _options(
    click.option("--timeout", type=_FiniteFloat(min=0), default=DEFAULT_TIMEOUT, show_default=True,
                 help="Seconds one spec may take (0: no limit); past it the spec is an error (exit 2)."),
    click.option("--max-memory", type=_MemorySize(), default=None,
                 help="Memory one spec's check may take, e.g. 8G; a spec that would need more is refused before it "
                      "starts (exit 2) [default: half the machine's memory, or of the container's limit]."),
)


# what a spec may reach beyond its own text: run, explain and graph
_trust_options = _options(
    click.option("--no-custom-ops", "no_custom_ops", is_flag=True,
                 help="Refuse every spec that names custom ops (ops:), before any of their code is imported: "
                      "for reviewing a spec one did not write."),
    click.option("--allow-outside-files", is_flag=True,
                 help="Let file: inputs lie outside the spec's folder (links are followed before the check)."),
)


def _limits(timeout: float, max_memory: int | None) -> Limits:
    return Limits(timeout=timeout or None, max_memory=max_memory or default_memory_budget())


# the options that change what a check computes, shared by `run` and `graph`
_check_options = _options(
    click.option("--atol", type=_FiniteFloat(min=0), help="Absolute tolerance (overrides the specs')."),
    click.option("--rtol", type=_FiniteFloat(min=0), help="Relative tolerance (overrides the specs')."),
    click.option("--method", type=click.Choice(METHODS), help="Finite-difference scheme."),
    click.option("--eps", type=_FiniteFloat(min=0, min_open=True),
                 help="Relative step (default: per scheme, scaled per element)."),
    _dtype_option,
    _seed_option,
    click.option("--mode", type=click.Choice(MODES), default="auto", show_default=True,
                 help="full: every element of every node (quadratic in the length of a chain); fast: random "
                      "directional probes; auto: full for small nodes, within a budget of downstream evaluations, "
                      "the others vouched for by local checks of the ops after them."),
    click.option("--strict", is_flag=True, help="Kinks count as failures."),
)


EXIT_SIGINT, EXIT_SIGTERM = 130, 143  # 128 + the signal's number, as shells report a process a signal ended


class _Program(click.Group):
    """The group, with interrupts turned into their documented exit codes instead of click's 'Aborted!' (exit 1)."""

    def main(self, *args, **kwargs):
        previous = _on_sigterm(_raise_terminated)
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except (click.Abort, KeyboardInterrupt):
            _interrupted(EXIT_SIGINT)
        except Terminated:
            _interrupted(EXIT_SIGTERM)
        except OutputError as error:  # a command's own output (ops, schema) could not be written
            _fail(str(error))
        except OSError as error:  # click's own output (--help, --version) to a full device or a closed pipe
            silence_stdout()
            what = "the output pipe was closed" if isinstance(error, BrokenPipeError) else (error.strerror or str(error))
            _fail(f"cannot write to standard output: {what}")
        finally:
            _on_sigterm(previous)


def _raise_terminated(signum, frame):
    raise Terminated()


def _on_sigterm(handler):
    """Install handler for SIGTERM (where this thread may: the main thread); return the one it replaces."""
    import signal

    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, TypeError):  # not the main thread, or no previous Python-level handler to restore
        return None


def _interrupted(code: int) -> None:
    with contextlib.suppress(OSError, ValueError):
        click.echo("gradcheck: interrupted", err=True)
    sys.exit(code)


@click.group(cls=_Program, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gradcheck")
def main():
    """gradcheck: is this backward pass right? Analytic vs numeric gradients, node by node."""
    _tolerant_streams()


def _tolerant_streams() -> None:
    """A terminal or pipe that cannot encode a name in a spec (LC_ALL=C, PYTHONIOENCODING=ascii) or a file
    name with undecodable bytes gets an escape (\\u03c9) instead of a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):  # also UTF-8: a file name may hold undecodable bytes (surrogates)
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot be reconfigured keeps its settings
                pass


@main.command(epilog="Shell completion: see `docs/ci.md` (eval \"$(_GRADCHECK_COMPLETE=bash_source gradcheck)\").")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Report format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to FILE (atomically; - is stdout).")
@click.option("--junit-xml", "junit_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write a JUnit XML report to FILE (same check, atomically).")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the JSON report to FILE (with --values: the arrays too).")
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the Markdown summary to FILE.")
@click.option("--junit-flavor", type=click.Choice(JUNIT_FLAVORS), default="default", show_default=True,
              help="default: junit-10 plus file/line on testcases (GitHub's readers); strict: junit-10.xsd exactly.")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Skip files whose name, path, or path under a given folder matches GLOB (repeatable).")
@click.option("--skip-non-specs", is_flag=True,
              help="Files named on the command line without gradcheck's keys are skipped with a note (as in folders).")
@_check_options
@_limit_options
@_trust_options
@click.option("--values", is_flag=True, help="JSON: include the full analytic and numeric gradient arrays.")
@click.option("--quiet", "-q", is_flag=True, help="Show only what failed, and the summary; no progress.")
@click.option("--verbose", "-v", is_flag=True, help="Per-element rows for failing, kink and inconclusive nodes.")
@click.option("--allow-inconclusive", is_flag=True,
              help="Inconclusive elements (no float64 estimate resolves the tolerance) warn instead of failing.")
@click.option("--taylor", is_flag=True,
              help="Also run the Taylor remainder test per input: observed order ~2 right, ~1 wrong gradient.")
@_color_option
def run(paths, output_format, output, junit_file, json_file, markdown_file, junit_flavor, exclude, skip_non_specs,
        atol, rtol, method, eps, dtype, seed, mode, strict, timeout, max_memory, no_custom_ops, allow_outside_files,
        values, quiet, verbose, allow_inconclusive, taylor, color):
    """Check every spec in PATHS (folders: every spec *.yaml / *.yml under them).

    In a folder, a YAML file is a spec when it is named *.gradcheck.yaml / *.gradcheck.yml or has
    'inputs' or 'nodes' at its top level; other YAML (CI workflows, configs) is skipped with a note.

    One check writes every report asked for: the --format report (to stdout or --output) and
    any of --junit-xml, --json and --markdown, each written atomically.  Under GitHub Actions
    (GITHUB_ACTIONS=true), --format github also appends the Markdown summary to
    $GITHUB_STEP_SUMMARY.  The summary line goes to stderr (stdout keeps the report alone).

    \b
    Examples:
      gradcheck run specs/
      gradcheck run specs/ --exclude 'specs/slow/*' -q
      gradcheck run specs/ --format github --junit-xml report.xml --markdown summary.md
      gradcheck run model.gradcheck.yaml --mode full --strict --atol 1e-8
      gradcheck run specs/ --format json --values -o report.json

    \b
    Exit status:
      0    every spec passed (kinks are warnings unless --strict)
      1    a gradient mismatch, a failed expect, or an inconclusive element
      2    a spec or usage error, or a spec that ran past --timeout
      130  interrupted (SIGINT); 143: terminated (SIGTERM)
    """
    from .discovery import discover
    from .judge import CheckOptions
    from .pipeline import check_paths, files_named
    from .report import RenderOptions
    from .spec import Overrides

    reports = [(output_format, output)] + [(name, path) for name, path in
                                           (("junit", junit_file), ("json", json_file), ("markdown", markdown_file)) if path]
    try:
        _refuse_same_file(reports)
        found = discover(paths, exclude, skip_non_specs)
        if not quiet:
            for path, reason in found.skipped:
                click.echo(f"gradcheck: note: skipped {path}: {reason}", err=True)
        if not found.specs:
            if found.skipped and all(not Path(p).is_dir() for p in paths):
                sys.exit(0)  # every file named was other YAML (a pre-commit run over YAML files): nothing to check
            skipped = f" ({len(found.skipped)} other YAML file{'s' if len(found.skipped) != 1 else ''} skipped)" \
                if found.skipped else ""
            raise SpecError(f"no *.yaml or *.yml specs found in {', '.join(paths)}{skipped}")
        overrides = Overrides(dtype=dtype, seed=seed, atol=atol, rtol=rtol, method=method, eps=eps,
                              custom_ops=not no_custom_ops, allow_outside_files=allow_outside_files)
        named: list[Path] | list[str] = found.specs
        if any(not is_stdout(path) for _, path in reports):  # a failing spec still names files the reports must spare
            named = [file for spec_path in found.specs for file in files_named(spec_path, overrides)]
        for _, path in reports:
            refuse_inputs(path, named)
        with _progress(quiet) as progress:
            check_options = CheckOptions(mode=mode, strict=strict, progress=progress,
                                         allow_inconclusive=allow_inconclusive, taylor=taylor)
            result = check_paths(found.specs, overrides, check_options, _limits(timeout, max_memory))
    except (SpecError, OutputError) as error:
        _fail(str(error))

    to_terminal = is_stdout(output)
    options = RenderOptions(values=values, verbose=verbose, quiet=quiet, strict=strict, junit_flavor=junit_flavor,
                            errors_inline=not (output_format == "table" and to_terminal))
    for spec in result.specs:
        if spec.error is not None:
            click.echo(_error_line(spec.path, spec.error), err=True)
    try:
        read = [path for spec in result.specs for path in spec.files_read]
        for _, path in reports:
            refuse_inputs(path, read)
        for name, path in reports:
            _render(result, name, path, options, color)
        if output_format == "github" and os.environ.get("GITHUB_ACTIONS") == "true":
            _append_step_summary(result, options)
        if not quiet and not (output_format == "table" and to_terminal):
            from .report.common import summary_line

            click.echo(summary_line(result), err=True)
    except OutputError as error:
        _fail(str(error))
    except Exception as error:  # a bug in a renderer: one line, never a traceback
        from .errors import clip

        _fail(f"internal error while writing the report: {type(error).__name__}: {clip(error, 300)} (please report)")
    sys.exit(result.exit_code)


def _refuse_same_file(reports) -> None:
    seen: dict[str, str] = {}
    for name, path in reports:
        key = STDOUT_KEY if is_stdout(path) else str(Path(path).resolve())
        if key in seen:
            where = "standard output" if key == STDOUT_KEY else path
            raise OutputError(f"the {seen[key]} and the {name} report would both go to {where}: give each its own file")
        seen[key] = name


STDOUT_KEY = "<stdout>"


def _append_step_summary(result, options) -> None:
    """GitHub Actions shows the Markdown appended to the file $GITHUB_STEP_SUMMARY names on the run's page."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    from .report import markdown

    try:
        with open(target, "a", encoding="utf-8", errors="backslashreplace") as stream:
            stream.write(markdown.render(result, replace(options, color=False)) + "\n")
    except OSError as error:
        raise OutputError(f"cannot append to $GITHUB_STEP_SUMMARY ({target}): {error.strerror or error}") from None


def _render(result, output_format, output, options, color) -> None:
    if output_format == "table" and is_stdout(output):
        from .report import table

        width = _plain_console_width(sys.stdout, color)
        text = table.plain_text(result, options, width) if width is not None else None
        if text is not None:  # what Rich would print, laid out without it
            write_stdout(text)
        else:
            _print_to_terminal(lambda console: table.render(result, options, console=console), color)
    else:
        from .report import renderer

        write_text(renderer(output_format)(result, replace(options, color=False)), output)


def _print_to_terminal(print_with, color: str) -> None:
    """Rich output on stdout, without trailing spaces; a closed pipe or a full device becomes an OutputError."""
    console = _console(sys.stdout, color)
    with writing_stdout():
        with console.capture() as captured:
            print_with(console)
        sys.stdout.write(without_trailing_spaces(captured.get()))


_TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.MULTILINE)


def without_trailing_spaces(text: str) -> str:
    """Each line without the padding a table leaves at its end (kept: the colour codes after it)."""
    return _TRAILING.sub(r"\1", text)


@contextlib.contextmanager
def _progress(quiet: bool):
    """A Rich progress display on stderr while specs are checked, when stderr is a terminal (else None)."""
    if quiet or not _is_terminal(sys.stderr) or os.environ.get("TERM") == "dumb":
        yield None
        return
    from .progress import TerminalProgress  # rich.progress loads only for a terminal

    with TerminalProgress(_console(sys.stderr, "auto")) as progress:
        yield progress


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _fail(message: str) -> None:
    """One line on stderr, exit 2: a usage or output fault (never a traceback)."""
    click.echo(f"gradcheck: error: {visible_line(one_line(message))}", err=True)
    sys.exit(EXIT_USAGE)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
@click.option("--markdown", is_flag=True, help="Print the op catalogue as Markdown (docs/ops.md).")
def ops(as_json, markdown):
    """List every registered op with its signature and a one-line doc."""
    from .ops.registry import all_builtin_ops

    if markdown:
        from .ops.catalog import catalog_markdown

        click.echo(catalog_markdown(), nl=False)
        return

    registry = all_builtin_ops()
    if as_json:
        import json

        write_stdout(json.dumps([{"name": info.name, "signature": info.signature(), "doc": info.doc,
                                  "kinks": info.has_kinks} for info in registry.values()], indent=2) + "\n")
        return
    from rich.table import Table
    from rich.text import Text

    # names whole (never cut), signatures folded, docs wrapped at words: readable at 80 columns
    table = Table(box=None, header_style="bold", show_edge=False, pad_edge=False)
    table.add_column("op", no_wrap=True)
    table.add_column("signature", overflow="fold", ratio=1)
    table.add_column("doc", ratio=2)
    for info in registry.values():
        table.add_row(Text(info.name, style="bold"), Text(info.signature()),
                      Text(info.doc + (" [kinks]" if info.has_kinks else "")))
    try:
        _print_to_terminal(lambda console: console.print(table), "auto")
    except OutputError as error:
        _fail(str(error))


@main.command()
@click.option("--report", is_flag=True, help="The JSON Schema of the JSON report (run --format json) instead.")
def schema(report):
    """Print the JSON Schema of the spec format (the file gradcheck/schemas/spec-v1.json).

    Editors validate specs with it: put `# yaml-language-server: $schema=<path or URL of spec-v1.json>`
    on a spec's first line, or map the file pattern *.gradcheck.yaml to it (docs/ci.md).
    """
    from .schema import REPORT_SCHEMA_FILE, SPEC_SCHEMA_FILE, schema_text

    write_stdout(schema_text(REPORT_SCHEMA_FILE if report else SPEC_SCHEMA_FILE))


# ------------------------------------------------------------------------------------------ explain, graph

def _show(path: str, overrides: Overrides, limits: Limits, build, render, to_console: bool, output, color: str) -> None:
    """explain / graph: the view of one contained pipeline run (a fault exits 2), printed or written, exit 0."""
    from .pipeline import contained, files_named

    try:
        refuse_inputs(output, [path])
        refuse_inputs(output, files_named(path, overrides))  # the spec's data files and op modules too
    except OutputError as error:
        _fail(str(error))
    outcome = contained(path, overrides, limits, build)
    if outcome.printed:
        printed = visible_line(one_line(outcome.printed)[:300])
        click.echo(f"gradcheck: note: the spec's code printed to stdout (captured): {printed}",
                   err=True)
    if outcome.error is not None:
        click.echo(_error_line(path, outcome.error), err=True)
        sys.exit(EXIT_USAGE)
    try:
        if to_console:
            _print_to_terminal(lambda console: render(outcome.value, console=console), color)
        else:
            write_text(render(outcome.value), output)
    except OutputError as error:
        _fail(str(error))
    sys.exit(0)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="text: the textbook walk-through; json: the steps as data; markdown: a table.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE (atomically; - is stdout).")
@_dtype_option
@_seed_option
@_limit_options
@_trust_options
@_color_option
def explain(spec, output_format, output, dtype, seed, timeout, max_memory, no_custom_ops, allow_outside_files, color):
    """Walk the backward pass of SPEC step by step, like a textbook.

    Node by node from the output back to the inputs: each node's forward value, the upstream
    gradient it receives, the gradient it passes to each argument and the local derivative
    (passed = upstream × local); then the gradients of the inputs. Arrays with more than 6
    elements are shown by shape and norm. A gradient a custom op's vjp gets wrong (checked on
    the op alone) is marked ✗ with what kind of wrong it is and the line of the rule.

    Exit status: 0 (this command explains, it does not judge: use `gradcheck run` for
    pass/fail); 2 for a spec or usage error.
    """
    from .explain import walkthrough
    from .judge import CheckOptions
    from .judge.diagnosis import local_suspects
    from .pipeline import run_loaded
    from .report import explain_text
    from .spec import Overrides

    overrides = Overrides(dtype=dtype, seed=seed, custom_ops=not no_custom_ops, allow_outside_files=allow_outside_files)
    limits = _limits(timeout, max_memory)

    def walk(loaded):  # the op-local checks mark (and diagnose) the wrong gradients passed on
        checked = run_loaded(loaded, CheckOptions(memory_budget=limits.max_memory), judge=False)
        return walkthrough(checked, local_suspects(checked.graph, checked.backward, checked.analytic.values))

    _show(spec, overrides, limits, walk, explain_text.renderer(output_format),
          output_format == "text" and is_stdout(output), output, color)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--format", "output_format", type=click.Choice(["tree", "dot", "mermaid"]), default="tree",
              show_default=True, help="tree: in the terminal; dot: Graphviz (`| dot -Tsvg`); mermaid: flowchart.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE (atomically; - is stdout).")
@_check_options
@_limit_options
@_trust_options
@_color_option
def graph(spec, output_format, output, atol, rtol, method, eps, dtype, seed, mode, strict, timeout, max_memory,
          no_custom_ops, allow_outside_files, color):
    """Draw the graph of SPEC with values, gradients and statuses.

    Every node is annotated with its forward value, its gradient and its status (the check runs to
    find the statuses); edges carry the gradient passed back along them (dot, mermaid). Node ids
    in dot and mermaid are n<index> (names contain / and #).

    Exit status: 0 whatever the statuses (a failing node is drawn red; use `gradcheck run`
    to gate on them); 2 for a spec or usage error.
    """
    from .judge import CheckOptions
    from .pipeline import run_loaded
    from .report import graph_view
    from .spec import Overrides
    from .views import graph_view as view_of

    overrides = Overrides(dtype=dtype, seed=seed, atol=atol, rtol=rtol, method=method, eps=eps,
                          custom_ops=not no_custom_ops, allow_outside_files=allow_outside_files)
    limits = _limits(timeout, max_memory)
    options = CheckOptions(mode=mode, strict=strict, memory_budget=limits.max_memory)
    _show(spec, overrides, limits, lambda loaded: view_of(run_loaded(loaded, options)),
          graph_view.renderer(output_format), output_format == "tree" and is_stdout(output), output, color)
