"""gradcheck specs as pytest items: ``pytest --gradcheck specs/``.

Opt-in: installing gradcheck registers this plugin (entry point ``pytest11: gradcheck``), but it
collects nothing until it is told where specs live, so no YAML file of a project is ever
collected by accident:

- ``--gradcheck PATH`` (repeatable): every ``*.yaml`` / ``*.yml`` under PATH is a spec, and PATH
  is collected besides what pytest was asked to run; a bare ``--gradcheck`` (no PATH, e.g. as the
  last option) means: the YAML files under the paths given to pytest;
- the ini option ``gradcheck_specs = specs`` (paths relative to the ini file) does the same for
  every run; explicit command-line paths still select what runs.

Each spec file is one test item.  A failing spec reports one sentence per failing node (the
element, analytic vs numeric, the errors), the suspect ops and the missed ``expect`` values; a
spec error reports ``path:line:col: message``.  Kinks pass, with a warning, unless
``--gradcheck-strict``.  ``-p no:gradcheck`` switches the plugin off.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

SPEC_SUFFIXES = (".yaml", ".yml")
_ROOTS = pytest.StashKey[list]()
_EVERYWHERE = "<paths given to pytest>"


class GradcheckKinkWarning(UserWarning):
    """A node of a spec sits at a kink: a one-sided derivative, not a failure (unless strict)."""


class SpecFailure(Exception):
    """A spec failed its check or could not be checked; the message is the whole report."""


def pytest_addoption(parser):
    group = parser.getgroup("gradcheck", "gradcheck specs as tests")
    group.addoption("--gradcheck", action="append", nargs="?", const=_EVERYWHERE, default=[], metavar="PATH",
                    dest="gradcheck_paths",
                    help="collect the gradcheck specs (*.yaml, *.yml) under PATH (repeatable); without PATH: "
                         "under the paths given to pytest")
    group.addoption("--gradcheck-strict", action="store_true", default=False,
                    help="gradcheck: kinks count as failures")
    group.addoption("--gradcheck-mode", choices=("auto", "full", "fast"), default="auto",
                    help="gradcheck: full (every element), fast (random probes) or auto (default)")
    group.addoption("--gradcheck-timeout", type=float, default=None, metavar="SECONDS",
                    help="gradcheck: seconds one spec may take (default 600; 0: no limit)")
    parser.addini("gradcheck_specs", "folders or files whose *.yaml / *.yml are gradcheck specs", type="paths",
                  default=[])


def pytest_configure(config):
    given = config.getoption("gradcheck_paths") or []
    ini = [Path(p) for p in (config.getini("gradcheck_specs") or [])]
    invocation = config.invocation_params.dir
    explicit = [p for p in given if p != _EVERYWHERE]
    roots = [(invocation / p).resolve() for p in explicit] + [p.resolve() for p in ini]
    if _EVERYWHERE in given:
        roots += [(invocation / arg.split("::")[0]).resolve() for arg in config.args]
    config.stash[_ROOTS] = roots
    # Make sure the spec folders are collected: paths from --gradcheck always; the ini's only when
    # pytest was not given explicit paths (those select what runs).
    source = getattr(config, "args_source", None)
    from_command_line = source is not None and source == config.ArgsSource.ARGS
    extra = [str(invocation / p) for p in explicit]
    if not from_command_line:
        extra += [str(p) for p in ini]
    for path in extra:
        if path not in config.args:
            config.args.append(path)
    if roots:
        config.addinivalue_line("markers", "gradcheck: a gradcheck spec file")


def _is_spec(config, file_path: Path) -> bool:
    if file_path.suffix not in SPEC_SUFFIXES:
        return False
    roots = config.stash.get(_ROOTS, [])
    if not roots:
        return False
    resolved = file_path.resolve()
    return any(resolved == root or root in resolved.parents for root in roots)


def pytest_collect_file(file_path: Path, parent):
    if _is_spec(parent.config, file_path):
        return SpecFile.from_parent(parent, path=file_path)
    return None


class SpecFile(pytest.File):
    def collect(self):
        yield SpecItem.from_parent(self, name=self.path.stem)


class SpecItem(pytest.Item):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_marker("gradcheck")
        self.result = None

    def display_path(self) -> str:
        try:
            return str(self.path.relative_to(self.config.invocation_params.dir))
        except ValueError:
            return str(self.path)

    def runtest(self):
        from .isolation import DEFAULT_TIMEOUT, Limits, default_memory_budget
        from .judge import CheckOptions
        from .pipeline import check_spec

        strict = self.config.getoption("gradcheck_strict")
        options = CheckOptions(mode=self.config.getoption("gradcheck_mode"), strict=strict)
        timeout = self.config.getoption("gradcheck_timeout")
        limits = Limits(timeout=DEFAULT_TIMEOUT if timeout is None else (timeout or None),
                        max_memory=default_memory_budget())
        # contained: a spec's custom op can neither end nor pass the pytest run (os._exit, sys.exit, a hang)
        result = check_spec(self.path, options=options, limits=limits)
        result.path = self.display_path()
        self.result = result
        if result.error is not None:
            from .report.common import error_where

            raise SpecFailure(f"{error_where(result.path, result.error)}: {result.error.message}")
        if result.status == "skip":  # a module its `requires:` names is not installed
            pytest.skip(result.notes[0] if result.notes else "skipped")
        if result.status == "fail":
            from .report.common import failure_text

            raise SpecFailure(failure_text(result, strict=strict))
        from .report.common import failure_sentence, jvp_sentence

        kinks = [(failure_sentence(result, node), node.line) for node in result.nodes if node.status == "kink"]
        kinks += [(jvp_sentence(jvp), jvp.line) for jvp in result.jvps if jvp.status == "kink"]
        for sentence, line in kinks:
            warnings.warn_explicit(GradcheckKinkWarning(sentence), GradcheckKinkWarning,
                                   filename=self.display_path(), lineno=line or 1, module="gradcheck")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, SpecFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        line = None
        if self.result is not None and self.result.error is not None and self.result.error.line:
            line = self.result.error.line - 1
        return self.path, line, f"gradcheck spec {self.name}"
