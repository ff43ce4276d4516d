"""Safe YAML reading that keeps a location on every mapping key, value and list item.

Plain scalars are read by the YAML 1.2 core schema, as editors read them: ``1e-9`` is a number,
``no``, ``on`` and ``yes`` are text, only ``true`` / ``false`` are booleans.

Only PyYAML's SafeLoader constructors are reachable (no Python tags).  Duplicate keys are
errors, not last-wins.  Aliases are bounded: the size a document would have once every
alias is expanded is measured on the composed node graph before anything is built.
Every other resource is bounded too, each with a message that states the limit and points at
the place: control characters, nesting depth, the number of values, digits of a number, and
(in spec.py) the file size.  libyaml scans and parses when it is available (a 10 MB line in a
fraction of a second); nodes are always composed in Python so the depth bound holds.  Where libyaml
stops first at a limit of its own (newer builds refuse nesting beyond 1000 levels while scanning
ahead), the text up to that place is composed again in Python, so gradcheck's bound is reported.
"""
from __future__ import annotations

import functools
import re
import sys
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import Location, SpecError, clip, clipped_repr, one_line

if TYPE_CHECKING:
    import yaml

MAX_FILE_BYTES = 16 * 1024 * 1024    # a spec is written by hand; large data belongs in a file: input
MAX_EXPANDED_SCALARS = 1_000_000     # values once aliases are expanded (alias bombs)
MAX_YAML_NODES = 50_000              # values and collections written in the file (parsing time)
MAX_YAML_DEPTH = 100                 # nesting of mappings and lists
MAX_NUMBER_DIGITS = 400              # digits of a number, in YAML and in expressions: beyond float64's range
MAX_RECOMPOSE_CHARS = 1_000_000      # text composed again in Python after a libyaml error (about a second)


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


def _mark_location(path: str, mark) -> Location:
    """The 1-based place a YAML mark points at; just the file when there is no mark."""
    return Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)


def _location(loader, mark) -> Location:
    return _mark_location(loader.path, mark)


def _construct_mapping(loader, node: yaml.MappingNode) -> LocatedMap:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise SpecError("the tag !!map needs a mapping here", _location(loader, node.start_mark))
    seen: dict[str, Any] = {}  # key -> the mark where it was first given
    explicit = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        explicit.add(id(key_node))
        if isinstance(key_node, yaml.ScalarNode):
            if key_node.value in seen:
                first = seen[key_node.value]
                raise SpecError(f"duplicate key {clipped_repr(key_node.value)} (first given at line {first.line + 1})",
                                _location(loader, key_node.start_mark))
            seen[key_node.value] = key_node.start_mark
    loader.flatten_mapping(node)
    mapping = LocatedMap()
    mapping.location = _location(loader, node.start_mark)
    mapping.key_locations, mapping.value_locations, mapping.value_styles = {}, {}, {}
    key_nodes: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise SpecError("a mapping key must be a plain name", _location(loader, key_node.start_mark))
        if key in key_nodes and id(key_nodes[key]) in explicit and id(key_node) in explicit:
            # two spellings of one key, e.g. yes and true, or 1 and 1.0
            raise SpecError(f"duplicate key {clipped_repr(key)} (first given at line {key_nodes[key].start_mark.line + 1})",
                            _location(loader, key_node.start_mark))
        key_nodes[key] = key_node
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_locations[key] = _location(loader, key_node.start_mark)
        mapping.value_locations[key] = _location(loader, value_node.start_mark)
        mapping.value_styles[key] = getattr(value_node, "style", None)
    return mapping


def _construct_sequence(loader, node: yaml.SequenceNode) -> LocatedList:
    import yaml

    if not isinstance(node, yaml.SequenceNode):
        raise SpecError("the tag !!seq needs a list here", _location(loader, node.start_mark))
    items = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    items.location = _location(loader, node.start_mark)
    items.item_locations = [_location(loader, child.start_mark) for child in node.value]
    return items


def _construct_int(loader, node: yaml.ScalarNode):
    import yaml

    digits = sum(c.isdigit() for c in node.value) if len(node.value) > MAX_NUMBER_DIGITS else 0
    if digits > MAX_NUMBER_DIGITS:
        raise SpecError(f"a number with {digits:,} digits is out of range (the limit is {MAX_NUMBER_DIGITS} digits)",
                        _location(loader, node.start_mark))
    return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)


def _construct_float(loader, node: yaml.ScalarNode):
    import yaml

    if len(node.value) > MAX_NUMBER_DIGITS:
        raise SpecError(f"a number with {len(node.value):,} characters is out of range (the limit is "
                        f"{MAX_NUMBER_DIGITS} characters)", _location(loader, node.start_mark))
    return yaml.constructor.SafeConstructor.construct_yaml_float(loader, node)


def _construct_core_int(loader, node: yaml.ScalarNode) -> int:
    """A YAML 1.2 core-schema integer: decimal (a leading 0 stays decimal), 0o octal, 0x hexadecimal."""
    _construct_int(loader, node)  # the digit bound, at the place
    text = node.value
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    return sign * int(digits, 10)


# The YAML 1.2 core schema (what editors and yaml-language-server use): booleans are only true/false
# (yes/no/on/off are text), null is ~/null/empty, numbers include 1e-9, 0o17 and 0x1f, no 1.1 sexagesimals
# or timestamps.  Merge keys (<<) stay: they are widely written and editors read them.
CORE_SCHEMA_RESOLVERS = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     list("-+0123456789.")),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", ["<"]),
]

# The characters a YAML stream may not hold (YAML 1.1's non-printable characters, which yaml.reader.Reader
# refuses), written as the set itself.  PyYAML writes the complement (PYYAML_NON_PRINTABLE, a class attribute of its
# reader compiled when yaml is imported), and Python's regular-expression compiler builds that class by marking, one
# at a time in Python, each of the 63,000 printable characters below U+FFFF: 58 M instructions, a sixth of
# gradcheck's share of a one-spec run, against 4 M for this spelling.  Both match the same characters (every code
# point is compared in tests/test_startup.py).
NON_PRINTABLE = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"
PYYAML_NON_PRINTABLE = "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"  # yaml/reader.py's


@functools.cache
def non_printable() -> re.Pattern[str]:
    return re.compile(NON_PRINTABLE)


@functools.cache
def pyyaml():
    """The yaml module, imported so that its reader's NON_PRINTABLE is compiled from the cheap spelling: during the
    import, Python's cache of compiled expressions (re._cache, keyed by type, text and flags in Python 3.10-3.13)
    holds that pattern under PyYAML's text, so PyYAML's re.compile finds it there; the entry is taken out again
    afterwards.  Where the cache is not such a dict, or PyYAML spells its pattern otherwise, PyYAML compiles its own
    as it always does: the import is the same either way, only slower."""
    if "yaml" in sys.modules:
        return sys.modules["yaml"]
    caches = [cache for cache in (getattr(re, "_cache", None), getattr(re, "_cache2", None))
              if isinstance(cache, dict)]
    key = (str, PYYAML_NON_PRINTABLE, 0)
    seed = non_printable()
    if caches:
        caches[0][key] = seed
    try:
        import yaml
    finally:
        for cache in caches:
            if cache.get(key) is seed:
                del cache[key]
    return yaml


class _Readers(NamedTuple):
    """The two loaders: PyYAML's pure-Python one, and the one that lets libyaml scan and parse."""

    python: type[Any]
    fast: type[Any]  # the Python loader where PyYAML was built without libyaml


@functools.cache
def _readers() -> _Readers:
    """The loader classes, built when the first spec is read: importing PyYAML compiles its reader's and resolver's
    regular expressions (about 34 M instructions with its reader's pattern seeded by pyyaml(), an eighth of
    gradcheck's share of a one-spec run), which `gradcheck --help`, `ops` and `schema` never need."""
    pyyaml()
    import yaml
    from yaml.composer import Composer

    class Bounded(Composer):
        """Composer hooks that refuse, at the place they occur, nesting deeper than MAX_YAML_DEPTH and more
        than MAX_YAML_NODES nodes, before the parser has read any further.  Mixed in before a loader's parser
        and constructor."""

        path = "<spec>"
        _depth = 0
        _count = 0
        has_aliases = False

        def compose_node(self, parent, index):
            self._depth += 1
            self._count += 1
            try:
                if self.check_event(yaml.AliasEvent):
                    self.has_aliases = True
                if self._depth > MAX_YAML_DEPTH:
                    raise SpecError(f"the YAML nests deeper than {MAX_YAML_DEPTH} levels; the limit is "
                                    f"{MAX_YAML_DEPTH}", _location(self, self.peek_event().start_mark))
                if self._count > MAX_YAML_NODES:
                    raise SpecError(f"the spec holds more than {MAX_YAML_NODES:,} YAML values; the limit is "
                                    f"{MAX_YAML_NODES:,} (large arrays belong in a .npy or .csv file: use file:)",
                                    _location(self, self.peek_event().start_mark))
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_object(self, node, deep=False):
            try:
                return super().construct_object(node, deep=deep)
            except (SpecError, yaml.YAMLError, RecursionError, MemoryError):
                raise
            except Exception as error:  # a standard tag on a value it cannot read: !!int abc, !!bool maybe, ...
                tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
                detail = "" if isinstance(error, KeyError) else f" ({clip(one_line(str(error)), 200)})"
                what = (f"{clipped_repr(node.value)} as {clip(tag)}" if isinstance(node, yaml.ScalarNode)
                        else "this value")
                raise SpecError(f"cannot read {what}{detail}", _location(self, node.start_mark)) from None

    class Loader(Bounded, yaml.SafeLoader):
        """The pure-Python safe loader, bounded."""

    fast: type[Any] = Loader
    if getattr(yaml, "__with_libyaml__", False):
        from yaml._yaml import CParser

        class LibyamlLoader(Bounded, yaml.constructor.SafeConstructor, yaml.resolver.Resolver, CParser):
            """libyaml scans and parses (fast on long lines and big lists); the Python composer builds the nodes,
            so nesting is bounded by Bounded (libyaml's own composer recurses in C without a limit)."""

            def __init__(self, stream):
                CParser.__init__(self, stream)
                Composer.__init__(self)
                yaml.constructor.SafeConstructor.__init__(self)
                yaml.resolver.Resolver.__init__(self)

        fast = LibyamlLoader

    loaders: set[type[Any]] = {Loader, fast}
    for loader in loaders:
        loader.yaml_implicit_resolvers = {}
        for tag, pattern, first in CORE_SCHEMA_RESOLVERS:
            loader.add_implicit_resolver(tag, re.compile(pattern), first)
        loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
        loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)
        loader.add_constructor("tag:yaml.org,2002:int", _construct_core_int)
        loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
    return _Readers(Loader, fast)


def _expanded_size(root, path: str) -> int:
    """Scalars the document holds once aliases are expanded, memoised per node (linear time).

    Raises SpecError on a recursive alias.
    """
    import yaml

    def recursive(node) -> SpecError:
        return SpecError("a recursive alias (a structure that contains itself) is not allowed",
                         _mark_location(path, node.start_mark))

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
            raise recursive(node)
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) not in sizes:
                if id(child) in on_path:
                    raise recursive(child)
                stack.append((child, False))
    return sizes[id(root)]


_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _text_location(text: str, index: int, path: str) -> Location:
    """1-based line and column of character ``index``, counting line breaks as YAML does."""
    breaks = [m.end() for m in _LINE_BREAK.finditer(text, 0, index)]
    line_start = breaks[-1] if breaks else 0
    return Location(path, len(breaks) + 1, index - line_start + 1)


def _char_at(text: str, mark) -> str:
    """The character a parser mark points at ('' when out of range)."""
    lines = _LINE_BREAK.split(text)
    if mark is None or mark.line >= len(lines):
        return ""
    line = lines[mark.line]
    return line[mark.column] if mark.column < len(line) else ""


def _bound_passed_before(text: str, mark, path: str) -> SpecError | None:
    """gradcheck's own bound (depth, number of values) if the pure-Python composer passes it in the text
    before ``mark``, where libyaml stopped; None when it does not, or when that text is too long to recompose."""
    import yaml

    readers = _readers()
    if readers.fast is readers.python or mark is None or mark.index > MAX_RECOMPOSE_CHARS:
        return None
    loader = readers.python(text[:mark.index])
    loader.path = path
    try:
        loader.get_single_node()
    except SpecError as error:
        return error
    except (yaml.YAMLError, RecursionError, MemoryError, ValueError, UnicodeError):
        return None
    finally:
        loader.dispose()
    return None


def _syntax_error(error: yaml.MarkedYAMLError, text: str, path: str) -> SpecError:
    import yaml

    problem = (error.problem or error.context or "invalid YAML").strip()
    location = _mark_location(path, error.problem_mark or error.context_mark)
    if isinstance(error, yaml.composer.ComposerError) and "another document" in problem:
        return SpecError("a spec is one YAML document, but a second document starts here "
                         "(remove the '---' line, or split the file)", location)
    if _char_at(text, error.problem_mark) == "\t" or "'\\t'" in problem or "tab" in problem:
        return SpecError("a tab character cannot indent YAML; use spaces", location)
    context = ""
    if error.context and error.problem and error.context_mark and error.context_mark is not error.problem_mark:
        context = f" ({error.context.strip()} that starts at line {error.context_mark.line + 1})"
    return SpecError(f"YAML syntax error: {problem}{context}", location)


def load_yaml(text: str, path: str):
    """Parse one YAML document into LocatedMap / LocatedList / scalars, or raise SpecError."""
    pyyaml()
    import yaml

    bad = non_printable().search(text)
    if bad:
        character = bad.group()
        return_location = _text_location(text, bad.start(), path)
        raise SpecError(f"the spec contains the control character U+{ord(character):04X}, which YAML does not allow "
                        "(binary data?)", return_location)
    loader = None
    try:
        try:
            loader = _readers().fast(text)
            loader.path = path
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            raise (_bound_passed_before(text, error.problem_mark, path) or _syntax_error(error, text, path)) from None
        except yaml.YAMLError as error:
            raise SpecError(f"YAML error: {clip(one_line(str(error)), 200)}", Location(path, 1, 1)) from None
        except (RecursionError, MemoryError):
            raise SpecError("the YAML nesting is too deep", Location(path, 1, 1)) from None
        except (ValueError, UnicodeError) as error:  # e.g. lone surrogates the C parser cannot encode
            raise SpecError(f"cannot read this YAML: {clip(one_line(str(error)), 200)}", Location(path, 1, 1)) from None
        if root is None:
            return None
        size = _expanded_size(root, path) if loader.has_aliases else 0  # without aliases: at most MAX_YAML_NODES
        if size > MAX_EXPANDED_SCALARS:
            raise SpecError(f"the document expands to more than {MAX_EXPANDED_SCALARS:,} values once its aliases "
                            f"are expanded (an alias bomb?); the limit is {MAX_EXPANDED_SCALARS:,}",
                            _mark_location(path, root.start_mark))
        old_limit = sys.getrecursionlimit()
        try:
            sys.setrecursionlimit(max(old_limit, 10_000))
            return loader.construct_document(root)
        except yaml.constructor.ConstructorError as error:
            tag = re.search(r"tag '([^']*)'", error.problem or "")
            what = (f"the tag {clip(tag.group(1).replace('tag:yaml.org,2002:', '!!'))} is not allowed "
                    "(gradcheck reads plain YAML only; nothing in a spec runs code)"
                    if tag else (error.problem or "cannot read this value"))
            raise SpecError(what, _mark_location(path, error.problem_mark or error.context_mark)) from None
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as error:
            raise SpecError(f"cannot read this YAML: {clip(one_line(str(error)), 200)}", Location(path, 1, 1)) from None
        except RecursionError:
            raise SpecError("the YAML nesting is too deep", Location(path, 1, 1)) from None
        finally:
            sys.setrecursionlimit(old_limit)
    finally:
        if loader is not None:
            loader.dispose()


def located(value, path: str):
    """An in-memory document (dicts, lists, numbers, strings, numpy arrays) as the located structure
    :func:`load_yaml` returns, every place being just ``path`` (a mapping has no lines).

    Values of other types (a Python op object in a spec's ``ops:``) are passed through as they are; the fields
    that read them decide whether they may stand there.
    """
    where = Location(path)
    if isinstance(value, dict):
        mapping = LocatedMap()
        mapping.location = where
        mapping.key_locations, mapping.value_locations, mapping.value_styles = {}, {}, {}
        for key, item in value.items():
            mapping[key] = located(item, path)
            mapping.key_locations[key] = mapping.value_locations[key] = where
            mapping.value_styles[key] = None
        return mapping
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()  # a numpy scalar as the number it holds; arrays stay arrays (the spec reads them)
    if isinstance(value, (list, tuple)):
        items = LocatedList(located(item, path) for item in value)
        items.location = where
        items.item_locations = [where] * len(items)
        return items
    return value
