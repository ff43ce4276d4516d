"""Data flows one way: spec -> graph -> engine -> numeric -> judge -> results -> renderers -> exit code.

Every module of the package is given a layer; a module may import (at the top or inside a function)
only from its own layer or the layers below it, and a renderer only from the plain data it draws.
A new module must be given a layer here, so the direction is decided once, on purpose.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gradcheck"

# lowest first; a module name matches an entry exactly or as a package prefix ("ops" matches "ops.base")
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("plain data", ("errors", "format", "plaindata", "results", "vocabulary")),
    ("spec", ("yamlsource", "spec", "expr", "schema", "discovery")),
    ("ops", ("ops",)),
    ("graph", ("graph",)),
    ("engine", ("engine", "sizing")),
    ("numeric", ("numeric", "batching")),
    ("judge", ("judge",)),
    ("pipeline", ("isolation", "pipeline", "blas")),
    ("views", ("explain", "views")),
    ("renderers", ("report",)),
    ("front ends", ("cli", "outfile", "progress", "pytest_plugin", "api", "__init__", "__main__", "entry")),
]
# renderers draw plain data: results, view models and their own helpers, never a stage that computes
RENDERER_MAY_IMPORT = ("plain data", "views", "renderers")


def layer_of(module: str) -> int | None:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def package_imports(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported gradcheck module, line) for every import statement in the file, wherever it stands."""
    is_package = path.name == "__init__.py"
    here = module.split(".") if is_package else module.split(".")[:-1]
    if module == "__init__":
        here = []
    imported = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "gradcheck" or alias.name.startswith("gradcheck."):
                    imported.append((alias.name.removeprefix("gradcheck").lstrip("."), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else list(here)
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "gradcheck" or node.module.startswith("gradcheck.")):
                target = node.module.removeprefix("gradcheck").lstrip(".")
            else:
                continue
            if target:
                imported.append((target, node.lineno))
            else:  # `from . import x` / `from gradcheck import x` at the top: each name is a module or the package
                for alias in node.names:
                    imported.append((alias.name if alias.name in modules() else "__init__", node.lineno))
    return imported


def test_every_module_has_a_layer():
    unplaced = [name for name in modules() if layer_of(name) is None]
    assert not unplaced, f"give these modules a layer in tests/test_architecture.py: {unplaced}"


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_point_down_the_pipeline(module):
    path = modules()[module]
    rank = layer_of(module)
    assert rank is not None
    wrong = []
    for target, line in package_imports(module, path):
        target_rank = layer_of(target)
        if target_rank is None:
            wrong.append(f"line {line}: {target} (no layer)")
        elif LAYERS[rank][0] == "renderers" and LAYERS[target_rank][0] not in RENDERER_MAY_IMPORT:
            wrong.append(f"line {line}: a renderer imports {target} ({LAYERS[target_rank][0]})")
        elif target_rank > rank:
            wrong.append(f"line {line}: {module} ({LAYERS[rank][0]}) imports {target} ({LAYERS[target_rank][0]}), "
                         "which comes after it in the pipeline")
    assert not wrong, "\n".join(wrong)


def test_the_checker_catches_an_upward_import(tmp_path):
    """The test itself can fail: an op module importing the numeric layer is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from ..numeric import richardson_central\n")
    assert package_imports("ops.bad", bad) == [("numeric", 1)]
    assert layer_of("numeric") > layer_of("ops.bad")
