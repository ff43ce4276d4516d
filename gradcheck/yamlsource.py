"""Safe YAML reading that keeps a location on every mapping key, value and list item.

Only PyYAML's SafeLoader constructors are reachable (no Python tags).  Duplicate keys are
errors, not last-wins.  Aliases are bounded: the size a document would have once every
alias is expanded is measured on the composed node graph before anything is built.
"""
from __future__ import annotations

import re
import sys

import yaml

from .errors import Location, SpecError

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_EXPANDED_SCALARS = 5_000_000


class LocatedMap(dict):
    """A dict that knows where each of its keys and values stands in the file."""

    location: Location
    key_locations: dict
    value_locations: dict
    value_styles: dict


class LocatedList(list):
    """A list that knows where each item stands in the file."""

    location: Location
    item_locations: list


class _Loader(yaml.SafeLoader):
    path = "<spec>"


# YAML 1.1 reads 1e-6 (no dot) as a string; accept every float spelling a user would write.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+)$"""),
    list("-+0123456789"),
)


def _location(loader: _Loader, mark) -> Location:
    return Location(loader.path, mark.line + 1, mark.column + 1)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LocatedMap:
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        if isinstance(key_node, yaml.ScalarNode):
            if key_node.value in seen:
                first = seen[key_node.value]
                raise SpecError(f"duplicate key '{key_node.value}' (first given at line {first.line + 1})",
                                _location(loader, key_node.start_mark))
            seen[key_node.value] = key_node.start_mark
    loader.flatten_mapping(node)
    mapping = LocatedMap()
    mapping.location = _location(loader, node.start_mark)
    mapping.key_locations, mapping.value_locations, mapping.value_styles = {}, {}, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise SpecError("a mapping key must be a plain name", _location(loader, key_node.start_mark))
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_locations[key] = _location(loader, key_node.start_mark)
        mapping.value_locations[key] = _location(loader, value_node.start_mark)
        mapping.value_styles[key] = getattr(value_node, "style", None)
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LocatedList:
    items = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    items.location = _location(loader, node.start_mark)
    items.item_locations = [_location(loader, child.start_mark) for child in node.value]
    return items


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _expanded_size(root) -> int:
    """Scalars the document holds once aliases are expanded, memoised per node (linear time).

    Raises SpecError on a recursive alias.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            continue
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
        if children_done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_EXPANDED_SCALARS:
                return sizes[key]
            continue
        if key in on_path:
            raise SpecError("a recursive alias (a structure that contains itself) is not allowed",
                            Location(_Loader.path, node.start_mark.line + 1, node.start_mark.column + 1))
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) not in sizes:
                if id(child) in on_path:
                    raise SpecError("a recursive alias (a structure that contains itself) is not allowed",
                                    Location(_Loader.path, child.start_mark.line + 1, child.start_mark.column + 1))
                stack.append((child, False))
    return sizes[id(root)]


def load_yaml(text: str, path: str):
    """Parse one YAML document into LocatedMap / LocatedList / scalars, or raise SpecError."""
    loader = _Loader(text)
    loader.path = path
    _Loader.path = path
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            problem = error.problem or error.context or "invalid YAML"
            if "found character '\\t'" in problem or "\\t" in problem:
                problem = "a tab character cannot indent YAML; use spaces"
            location = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)
            raise SpecError(f"YAML syntax error: {problem}", location) from None
        except yaml.YAMLError as error:
            raise SpecError(f"YAML error: {error}", Location(path, 1, 1)) from None
        except RecursionError:
            raise SpecError("the YAML nesting is too deep", Location(path, 1, 1)) from None
        if root is None:
            return None
        size = _expanded_size(root)
        if size > MAX_EXPANDED_SCALARS:
            raise SpecError(f"the document expands to more than {MAX_EXPANDED_SCALARS:,} values once its aliases "
                            f"are expanded (an alias bomb?); the limit is {MAX_EXPANDED_SCALARS:,}",
                            Location(path, root.start_mark.line + 1, root.start_mark.column + 1))
        old_limit = sys.getrecursionlimit()
        try:
            sys.setrecursionlimit(max(old_limit, 10_000))
            return loader.construct_document(root)
        except yaml.constructor.ConstructorError as error:
            mark = error.problem_mark or error.context_mark
            tag = re.search(r"tag '([^']*)'", error.problem or "")
            what = (f"the tag {tag.group(1).replace('tag:yaml.org,2002:', '!!')} is not allowed (gradcheck reads plain YAML only; nothing in a spec runs code)"
                    if tag else (error.problem or "cannot read this value"))
            raise SpecError(what, Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)) from None
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as error:
            raise SpecError(f"cannot read this YAML: {error}", Location(path, 1, 1)) from None
        except RecursionError:
            raise SpecError("the YAML nesting is too deep", Location(path, 1, 1)) from None
        finally:
            sys.setrecursionlimit(old_limit)
    finally:
        loader.dispose()
