"""Which files are specs: folders expanded, ``--exclude`` globs applied, other YAML told apart.

A folder holds more YAML than specs (CI workflows, configs).  Under a folder, a ``*.yaml`` /
``*.yml`` file is a spec when its name follows the convention ``*.gradcheck.yaml`` /
``*.gradcheck.yml``, or when its top level is a mapping with one of gradcheck's required keys
(``inputs``, ``nodes``); any other YAML file is skipped with a note saying why.  A file named
on the command line is a spec whatever it holds (its faults are reported), unless the caller
asks to skip non-specs there too (the pre-commit hook over every YAML file does).
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from .errors import Location, SpecError
from .plaindata import PlainData
from .yamlsource import MAX_FILE_BYTES, LocatedMap, load_yaml

SPEC_SUFFIXES = (".yaml", ".yml")
CONVENTION_SUFFIXES = (".gradcheck.yaml", ".gradcheck.yml")
SPEC_MARKER_KEYS = ("inputs", "nodes")
_MARKER_LINE = re.compile(r"^(?:inputs|nodes)\s*:", re.MULTILINE)


@dataclass(eq=False, repr=False)
class Discovered(PlainData):
    """The spec files the paths name, the other YAML skipped (with why) and the files excluded."""

    specs: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)   # (file, why it is not a spec)
    excluded: list[Path] = field(default_factory=list)


def follows_convention(path: PurePath) -> bool:
    return path.name.endswith(CONVENTION_SUFFIXES)


def why_not_a_spec(path: Path) -> str | None:
    """None when ``path`` is a spec; else the reason it is not one (for the note)."""
    if follows_convention(path):
        return None
    try:
        raw = path.read_bytes()[: MAX_FILE_BYTES + 1]
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return "not readable UTF-8 text"
    try:
        document = load_yaml(text, str(path))
    except SpecError:  # broken YAML: a spec if it looks like one (its fault is then reported), else not ours
        return None if _MARKER_LINE.search(text) else "not valid YAML, and no 'inputs:' or 'nodes:' line"
    if isinstance(document, LocatedMap) and any(key in document for key in SPEC_MARKER_KEYS):
        return None
    return "no 'inputs' or 'nodes' at its top level (not a gradcheck spec)"


def is_excluded(path: Path, base: Path | None, patterns) -> bool:
    """Whether a glob matches the file's name, its path as given, or its path under ``base`` or a folder of it."""
    if not patterns:
        return False
    candidates = {path.name, path.as_posix()}
    if base is not None:
        try:
            relative = path.relative_to(base)
        except ValueError:
            relative = None
        if relative is not None:
            parts = relative.parts
            candidates.update("/".join(parts[:end]) for end in range(1, len(parts) + 1))
            candidates.update(parts[:-1])
    return any(fnmatch.fnmatchcase(candidate, pattern) for pattern in patterns for candidate in candidates)


def discover(paths, exclude=(), skip_non_specs: bool = False) -> Discovered:
    """The specs under ``paths`` (folders: sorted, recursively); raise SpecError for a missing path."""
    found = Discovered()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for candidate in sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file()):
                if is_excluded(candidate, path, exclude):
                    found.excluded.append(candidate)
                    continue
                reason = why_not_a_spec(candidate)
                if reason is None:
                    found.specs.append(candidate)
                else:
                    found.skipped.append((candidate, reason))
        elif path.exists():
            if is_excluded(path, None, exclude):
                found.excluded.append(path)
                continue
            reason = why_not_a_spec(path) if skip_non_specs else None
            if reason is None:
                found.specs.append(path)
            else:
                found.skipped.append((path, reason))
        else:
            raise SpecError(f"no such file or folder: {raw}", Location(str(raw)))
    return found
