"""gradcheck specs as pytest items: ``pytest --gradcheck specs/``.

Opt-in: installing gradcheck registers this plugin (entry point ``pytest11: gradcheck``), but it
collects nothing until it is told where specs live, so no YAML file of a project is ever
collected by accident:

- ``--gradcheck PATH`` (repeatable): every ``*.yaml`` / ``*.yml`` under PATH is a spec, and PATH
  is collected besides what pytest was asked to run; a bare ``--gradcheck`` (no PATH, e.g. as the
  last option) means: the YAML files under the paths given to pytest;
- the ini option ``gradcheck_specs = specs`` (paths relative to the ini file) does the same for
  every run; explicit command-line paths still select what runs.

Under a spec folder, YAML without gradcheck's keys (``inputs``, ``nodes``) is not collected.
A spec that cannot be read or built (YAML, keys, expressions) is a collection error,
``path:line:col: message``.  Each spec file is one test item; with ``--gradcheck-per-node``
(ini ``gradcheck_per_node = true``) each input and named node is one (``spec.yaml::W1``) and the
``expect`` values another, so ``-k`` selects nodes and every failing node is reported on its own.
A failure reports one sentence per failing node (the element, analytic vs numeric, the errors),
the suspect ops and the missed ``expect`` values.  Kinks pass, with a warning, unless strict.

Settings (command line over ini over the specs' own): ``--gradcheck-atol`` / ``gradcheck_atol``,
``--gradcheck-rtol`` / ``gradcheck_rtol``, ``--gradcheck-seed`` / ``gradcheck_seed``,
``--gradcheck-mode`` / ``gradcheck_mode``, ``--gradcheck-strict`` / ``gradcheck_strict``,
``--gradcheck-timeout`` / ``gradcheck_timeout``.  ``-p no:gradcheck`` switches the plugin off.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SPEC_SUFFIXES = (".yaml", ".yml")  # as gradcheck.discovery (not imported here: pytest starts without numpy or YAML)

_ROOTS = pytest.StashKey[list]()
_EVERYWHERE = "<paths given to pytest>"
MODES = ("auto", "full", "fast")


class GradcheckKinkWarning(UserWarning):
    """A node of a spec sits at a kink: a one-sided derivative, not a failure (unless strict)."""


class SpecFailure(Exception):
    """A spec failed its check or could not be checked; the message is the whole report."""


class SpecCollectionError(Exception):
    """A spec that cannot be read or built (YAML, keys, expressions): a collection error, ``path:line:col: message``."""


def pytest_addoption(parser):
    group = parser.getgroup("gradcheck", "gradcheck specs as tests")
    group.addoption("--gradcheck", action="append", nargs="?", const=_EVERYWHERE, default=[], metavar="PATH",
                    dest="gradcheck_paths",
                    help="collect the gradcheck specs (*.yaml, *.yml) under PATH (repeatable); without PATH: "
                         "under the paths given to pytest")
    group.addoption("--gradcheck-strict", action="store_true", default=None,
                    help="gradcheck: kinks count as failures (ini: gradcheck_strict)")
    group.addoption("--gradcheck-mode", choices=MODES, default=None,
                    help="gradcheck: full (every element), fast (random probes) or auto (default; ini: gradcheck_mode)")
    group.addoption("--gradcheck-atol", type=_non_negative, default=None, metavar="ATOL",
                    help="gradcheck: absolute tolerance, overriding the specs' (ini: gradcheck_atol)")
    group.addoption("--gradcheck-rtol", type=_non_negative, default=None, metavar="RTOL",
                    help="gradcheck: relative tolerance, overriding the specs' (ini: gradcheck_rtol)")
    group.addoption("--gradcheck-seed", type=_seed, default=None, metavar="SEED",
                    help="gradcheck: seed of every random draw, overriding the specs' (ini: gradcheck_seed)")
    group.addoption("--gradcheck-timeout", type=float, default=None, metavar="SECONDS",
                    help="gradcheck: seconds one spec may take (default 600; 0: no limit; ini: gradcheck_timeout)")
    group.addoption("--gradcheck-per-node", action="store_true", default=None,
                    help="gradcheck: one test item per input and named node of a spec (and one for its "
                         "expectations), so each failing node is reported on its own (ini: gradcheck_per_node)")
    parser.addini("gradcheck_specs", "folders or files whose *.yaml / *.yml are gradcheck specs", type="paths",
                  default=[])
    parser.addini("gradcheck_strict", "gradcheck: kinks count as failures", type="bool", default=False)
    parser.addini("gradcheck_mode", "gradcheck: auto, full or fast", default="auto")
    parser.addini("gradcheck_atol", "gradcheck: absolute tolerance overriding the specs'", default="")
    parser.addini("gradcheck_rtol", "gradcheck: relative tolerance overriding the specs'", default="")
    parser.addini("gradcheck_seed", "gradcheck: seed overriding the specs'", default="")
    parser.addini("gradcheck_timeout", "gradcheck: seconds one spec may take (0: no limit)", default="")
    parser.addini("gradcheck_per_node", "gradcheck: one test item per input and named node", type="bool",
                  default=False)


def _non_negative(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text!r} is not a finite number >= 0")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return value


@dataclass(frozen=True)
class Settings:
    """What the plugin checks with: command-line options over ini options over gradcheck's defaults."""

    overrides: Any                 # gradcheck.spec.Overrides
    options: Any                   # gradcheck.judge.CheckOptions
    timeout: float | None
    per_node: bool

    @property
    def strict(self) -> bool:
        return self.options.strict

    def limits(self):
        from .isolation import DEFAULT_TIMEOUT, Limits, default_memory_budget

        return Limits(timeout=DEFAULT_TIMEOUT if self.timeout is None else (self.timeout or None),
                      max_memory=default_memory_budget())


def _setting(config, name: str, parse):
    """The option --gradcheck-NAME if given, else the ini value gradcheck_NAME (parsed), else None."""
    given = config.getoption(f"gradcheck_{name}")
    if given is not None:
        return given
    raw = config.getini(f"gradcheck_{name}")
    if raw in ("", None):
        return None
    try:
        return parse(raw)
    except ValueError as error:
        raise pytest.UsageError(f"ini option gradcheck_{name} = {raw!r}: {error}") from None


def settings(config) -> Settings:
    from .judge.options import CheckOptions
    from .spec import Overrides

    mode = _setting(config, "mode", str) or "auto"
    if mode not in MODES:
        raise pytest.UsageError(f"ini option gradcheck_mode = {mode!r}: choose one of {', '.join(MODES)}")
    strict = _setting(config, "strict", bool)
    per_node = _setting(config, "per_node", bool)
    overrides = Overrides(atol=_setting(config, "atol", _non_negative), rtol=_setting(config, "rtol", _non_negative),
                          seed=_setting(config, "seed", _seed))
    return Settings(overrides, CheckOptions(mode=mode, strict=bool(strict)), _setting(config, "timeout", float),
                    bool(per_node))


_SETTINGS = pytest.StashKey[Settings]()


def pytest_configure(config):
    given = config.getoption("gradcheck_paths") or []
    ini = [Path(p) for p in (config.getini("gradcheck_specs") or [])]
    invocation = config.invocation_params.dir
    explicit = [p for p in given if p != _EVERYWHERE]
    roots = [(invocation / p).resolve() for p in explicit] + [p.resolve() for p in ini]
    if _EVERYWHERE in given:
        roots += [(invocation / arg.split("::")[0]).resolve() for arg in config.args]
    config.stash[_ROOTS] = roots
    if roots:  # a project that does not opt in pays for nothing (and cannot be refused for a gradcheck_* value)
        config.stash[_SETTINGS] = settings(config)
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
    if not any(resolved == root or root in resolved.parents for root in roots):
        return False
    from .discovery import why_not_a_spec

    return resolved in roots or why_not_a_spec(file_path) is None  # other YAML in a spec folder is not collected


def pytest_collect_file(file_path: Path, parent):
    if _is_spec(parent.config, file_path):
        return SpecFile.from_parent(parent, path=file_path)
    return None


class SpecFile(pytest.File):
    """A spec: read and built at collection (a fault there is a collection error), checked once for its items."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._result = None

    def display_path(self) -> str:
        try:
            return str(self.path.relative_to(self.config.invocation_params.dir))
        except ValueError:
            return str(self.path)

    def collect(self):
        from .graph import build_graph
        from .pipeline import contained, skipped_result

        found = self.config.stash[_SETTINGS]
        # building a graph imports a spec's custom ops: contained, like the check (a child process for them)
        # a spec whose `requires:` names a missing module is not built (its ops need it): one item, which skips
        outcome = contained(self.path, found.overrides, found.limits(),
                            lambda spec: None if skipped_result(spec) is not None else _named(build_graph(spec)))
        if outcome.error is not None:
            from .report.common import error_where

            raise SpecCollectionError(f"{error_where(self.display_path(), outcome.error)}: {outcome.error.message}")
        if not found.per_node or outcome.value is None:
            yield SpecItem.from_parent(self, name=self.path.stem)
            return
        assert outcome.value is not None
        names, has_expectations = outcome.value
        for name in names:
            yield NodeItem.from_parent(self, name=name, node=name)
        if has_expectations:
            yield NodeItem.from_parent(self, name="expect", node=None)

    def repr_failure(self, excinfo):  # type: ignore[override]
        if isinstance(excinfo.value, SpecCollectionError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def result(self):
        """The spec's check, run once (contained) and shared by its items."""
        if self._result is None:
            from .pipeline import check_spec

            found = self.config.stash[_SETTINGS]
            result = check_spec(self.path, found.overrides, found.options, found.limits())
            result.path = self.display_path()
            self._result = result
        return self._result


def _named(graph) -> tuple[list[str], bool]:
    """The inputs and named nodes of a built graph (the per-node items), and whether it pins values."""
    spec = graph.spec
    return [*spec.inputs, *spec.nodes], spec.expect is not None


class SpecItem(pytest.Item):
    """The whole spec as one test: fails with every failing node, suspect, jvp rule and missed expectation."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_marker("gradcheck")
        self.result = None

    @property
    def spec_file(self) -> SpecFile:
        assert isinstance(self.parent, SpecFile)
        return self.parent

    def checked_result(self):
        """The spec's result (one check for all of its items); a spec that could not be checked fails the item."""
        result = self.spec_file.result()
        self.result = result
        if result.error is not None:
            from .report.common import error_where

            raise SpecFailure(f"{error_where(result.path, result.error)}: {result.error.message}")
        return result

    def runtest(self):
        strict = self.config.stash[_SETTINGS].strict
        result = self.checked_result()
        if result.status == "skip":  # a module its `requires:` names is not installed
            pytest.skip(result.notes[0] if result.notes else "skipped")
        if result.status == "fail":
            from .report.common import failure_text

            raise SpecFailure(failure_text(result, strict=strict))
        _warn_kinks(self, result, result.nodes, result.jvps)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, SpecFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        line = None
        if self.result is not None and self.result.error is not None and self.result.error.line:
            line = self.result.error.line - 1
        return self.path, line, f"gradcheck spec {self.name}"


class NodeItem(SpecItem):
    """One input or named node of a spec (with the automatic nodes inside it), or its expectations (node None)."""

    def __init__(self, *, node: str | None, **kwargs):
        super().__init__(**kwargs)
        self.node = node

    def runtest(self):
        strict = self.config.stash[_SETTINGS].strict
        result = self.checked_result()
        from .report.common import fails, failure_text

        if self.node is None:
            if any(not expectation.ok for expectation in result.expectations):
                raise SpecFailure(failure_text(result, strict=strict, only=set()))
            return
        members = {node.name for node in result.nodes if node.name == self.node or node.parent == self.node}
        nodes = [node for node in result.nodes if node.name in members]
        jvps = [jvp for jvp in result.jvps if jvp.node in members]
        if any(fails(result, item, strict) for item in [*nodes, *jvps]):
            raise SpecFailure(failure_text(result, strict=strict, only=members, expectations=False))
        _warn_kinks(self, result, nodes, jvps)

    def reportinfo(self):
        line = None
        if self.result is not None:
            located = next((node for node in self.result.nodes if node.name == self.node), None)
            line = located.line - 1 if located is not None and located.line else None
        return self.path, line, f"gradcheck spec {self.spec_file.path.stem}, node {self.node or 'expectations'}"


def _warn_kinks(item, result, nodes, jvps) -> None:
    from .report.common import failure_sentence, jvp_sentence

    kinks = [(failure_sentence(result, node), node.line) for node in nodes if node.status == "kink"]
    kinks += [(jvp_sentence(jvp), jvp.line) for jvp in jvps if jvp.status == "kink"]
    for sentence, line in kinks:
        warnings.warn_explicit(GradcheckKinkWarning(sentence), GradcheckKinkWarning,
                               filename=item.spec_file.display_path(), lineno=line or 1, module="gradcheck")
