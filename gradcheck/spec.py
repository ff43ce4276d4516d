"""spec file -> Spec: typed, validated, every field with the file:line:column it came from.

Nothing downstream of this module reads YAML.  Inputs are materialised here (literal values,
data files, seeded initialisers) so a Spec holds arrays, not recipes.
"""
from __future__ import annotations

import keyword
import math
import stat
import unicodedata
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import Location, SpecError, clip, clipped_repr, did_you_mean, first_position
from .plaindata import FrozenPlainData, PlainData
from .vocabulary import FLOAT_DTYPES, METHODS
from .yamlsource import MAX_FILE_BYTES, LocatedList, LocatedMap, load_yaml, located

FORMAT_VERSION = 1
TOP_LEVEL_KEYS = ("name", "description", "dtype", "seed", "inputs", "nodes", "output", "tolerance",
                  "numeric", "ops", "expect", "requires")
INPUT_DTYPES = ("float64", "float32", "int64", "bool")
MAX_INPUT_ELEMENTS = 20_000_000  # 160 MB in float64, per input
MAX_TOTAL_ELEMENTS = 50_000_000
MAX_NAME_CHARS = 100

# the keys of each mapping of the format: read here and in the JSON Schema (gradcheck/schema.py)
TOLERANCE_KEYS = ("atol", "rtol")
NUMERIC_KEYS = ("method", "eps")
NODE_KEYS = ("expr", "atol", "rtol", "check")
INPUT_SOURCES = ("value", "file", "shape")
SHAPE_ONLY_KEYS = ("init", "mean", "std", "low", "high")
INPUT_KEYS = (*INPUT_SOURCES, "init", "dtype", "requires_grad", "mean", "std", "low", "high")
EXPECT_KEYS = ("output", "grad", "values", "atol", "rtol")
DATA_FILE_SUFFIXES = (".npy", ".csv")

DEFAULT_TOLERANCE = {"float64": (1e-6, 1e-4), "float32": (1e-4, 1e-2)}

INITIALISERS: dict[str, dict[str, float | None]] = {  # init -> its parameters' defaults (None: required)
    "normal": {"mean": 0.0, "std": 1.0},
    "uniform": {"low": -1.0, "high": 1.0},
    "zeros": {},
    "ones": {},
    "constant": {"value": None},
    "randint": {"low": 0, "high": None},
}


@dataclass(frozen=True, eq=False, repr=False)
class Tolerance(FrozenPlainData):
    """The absolute and relative tolerance an element is judged with."""

    atol: float
    rtol: float


@dataclass(eq=False, repr=False)
class InputSpec(PlainData):
    """One input as loaded: its value and whether it takes a gradient."""

    name: str
    value: np.ndarray
    requires_grad: bool
    location: Location
    data_file: Path | None = None     # the .npy / .csv file the value was read from (file:)


@dataclass(eq=False, repr=False)
class NodeSpec(PlainData):
    """One node as written: its expression, tolerances and whether it is checked."""

    name: str
    expr: str
    location: Location          # where the expression text starts
    expr_location: Location     # column of the expression's first character (after a quote)
    atol: float | None = None
    rtol: float | None = None
    check: bool = True


@dataclass(eq=False, repr=False)
class Expectation(PlainData):
    """Known values pinned besides the check (a textbook example's published numbers)."""

    output: Any = None
    output_location: Location | None = None
    grads: dict[str, tuple[np.ndarray, Location]] = field(default_factory=dict)
    values: dict[str, tuple[np.ndarray, Location]] = field(default_factory=dict)
    atol: float = 1e-4
    rtol: float = 0.0


@dataclass(eq=False, repr=False)
class Spec(PlainData):
    """A spec as loaded and validated: inputs, nodes, output and how to check them."""

    path: str
    name: str
    description: str
    dtype: str
    seed: int
    inputs: dict[str, InputSpec]
    nodes: dict[str, NodeSpec]
    output: str
    output_location: Location
    tolerance: Tolerance
    method: str
    eps: float | None             # None: chosen per element from its magnitude
    ops: dict[str, tuple[Any, Location]]  # "module:attribute", a convention's mapping, or (a dict spec) an op object
    expect: Expectation | None
    base_dir: Path
    requires: tuple[str, ...] = ()        # modules the spec needs; where one is missing the spec is skipped


@dataclass(frozen=True, eq=False, repr=False)
class Overrides(FrozenPlainData):
    """Command-line settings that take precedence over the spec's own."""

    dtype: str | None = None
    seed: int | None = None
    atol: float | None = None
    rtol: float | None = None
    method: str | None = None
    eps: float | None = None
    allow_outside_files: bool = False   # file: inputs may lie outside the spec's folder (--allow-outside-files)
    custom_ops: bool = True             # False: a spec's ops: is refused before any of its code is imported


def stable_seed(seed: int, *labels: str) -> list[int]:
    """Entropy for a named random stream: the same spec seed and label always give the same draws."""
    return [seed] + [zlib.crc32(label.encode()) for label in labels]


# ------------------------------------------------------------------------------------------ reading

def load_spec(path: str | Path, overrides: Overrides = Overrides()) -> Spec:
    path = Path(path)
    display = str(path)
    try:
        status = path.stat()
    except (OSError, ValueError) as error:
        raise SpecError(f"cannot read the spec: {getattr(error, 'strerror', None) or error}", Location(display)) from None
    if not stat.S_ISREG(status.st_mode):  # a FIFO would block, /dev/zero never ends
        raise SpecError("the spec is not a regular file (a device, pipe or folder?)", Location(display))
    if status.st_size > MAX_FILE_BYTES:
        raise SpecError(f"the spec file is {status.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,} bytes (large "
                        "arrays belong in a .npy or .csv file: use file:)", Location(display, 1, 1))
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise SpecError(f"cannot read the spec: {error.strerror or error}", Location(display)) from None
    if len(raw) > MAX_FILE_BYTES:  # the file grew, or reports no size (/proc)
        raise SpecError(f"the spec file is larger than the limit of {MAX_FILE_BYTES:,} bytes", Location(display, 1, 1))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise SpecError("the spec is not UTF-8 text (binary data?)", Location(display, line, 1)) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise SpecError("the spec contains a NUL byte (binary data?)", Location(display, line, 1))
    document = load_yaml(text, display)
    return parse_spec(document, display, path.parent, path.stem, overrides)


def parse_spec(document, display: str, base_dir: Path, stem: str, overrides: Overrides = Overrides()) -> Spec:
    """The Spec of a document read by ``load_yaml``, or of an in-memory mapping (``gradcheck.check({...})``):
    then every place is just ``display``, numpy arrays may stand for values, and ``ops:`` may hold op objects."""
    in_memory = isinstance(document, dict) and not isinstance(document, LocatedMap)
    if in_memory:
        document = located(document, display)
    if document is None:
        raise SpecError("the spec is empty: it needs at least 'inputs' and 'nodes'", Location(display, 1, 1))
    if not isinstance(document, LocatedMap):
        where = getattr(document, "location", Location(display, 1, 1))
        raise SpecError(f"a spec must be a mapping with keys such as 'inputs' and 'nodes', not {_kind(document)}", where)
    reader = _Reader()
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            raise SpecError(f"unknown key {clipped_repr(key)}{did_you_mean(key, TOP_LEVEL_KEYS)}; "
                            f"a spec's keys are {', '.join(TOP_LEVEL_KEYS)}", document.key_locations[key])
    for key in ("inputs", "nodes"):
        if key not in document:
            raise SpecError(f"the spec has no '{key}'", document.location)

    name = reader.string(document, "name", default=stem)
    description = reader.string(document, "description", default="")
    dtype = overrides.dtype or reader.choice(document, "dtype", FLOAT_DTYPES, default="float64")
    seed = overrides.seed if overrides.seed is not None else reader.integer(document, "seed", default=0, minimum=0)

    atol, rtol = DEFAULT_TOLERANCE[dtype]
    if "tolerance" in document:
        tol = reader.mapping(document, "tolerance", keys=TOLERANCE_KEYS)
        atol = reader.number(tol, "atol", default=atol, minimum=0.0)
        rtol = reader.number(tol, "rtol", default=rtol, minimum=0.0)
    atol = overrides.atol if overrides.atol is not None else atol
    rtol = overrides.rtol if overrides.rtol is not None else rtol

    method, eps = "central", None
    if "numeric" in document:
        numeric = reader.mapping(document, "numeric", keys=NUMERIC_KEYS)
        method = reader.choice(numeric, "method", METHODS, default="central")
        if "eps" in numeric and numeric["eps"] != "auto":
            eps = reader.number(numeric, "eps", minimum=0.0, exclusive=True)
    method = overrides.method or method
    eps = overrides.eps if overrides.eps is not None else eps

    ops = {}
    if "ops" in document:
        ops_map = reader.mapping(document, "ops")
        for op_name, reference in ops_map.items():
            reader.identifier(op_name, ops_map.key_locations[op_name], "a custom op")
            where = ops_map.value_locations[op_name]
            if not overrides.custom_ops:
                raise SpecError(f"custom op '{op_name}' ({clip(clipped_repr(reference))}) would import and run code; "
                                "--no-custom-ops refuses every ops: entry", where)
            if isinstance(reference, LocatedMap) or (in_memory and _is_op_object(reference)):
                ops[op_name] = (reference, where)  # a convention (gradcheck.ops.conventions reads it) or an object
                continue
            if not _is_reference(reference):
                raise SpecError(f"custom op '{op_name}' must be given as \"module:attribute\" (dotted Python names, "
                                f"e.g. \"mylayers:Swish\") or as a mapping of a convention (forward:/backward:, "
                                f"layer:, torch:, jax:), got {clipped_repr(reference)}", where)
            ops[op_name] = (reference, where)
    requires = ()
    if "requires" in document:
        needed = document["requires"]
        needed = [needed] if isinstance(needed, str) else needed
        if not isinstance(needed, list) or not all(isinstance(m, str) and _is_module_name(m) for m in needed):
            raise SpecError(f"'requires' must be a module name or a list of them (e.g. [torch]), got "
                            f"{clipped_repr(document['requires'])}", document.value_locations["requires"])
        requires = tuple(needed)

    inputs_map = reader.mapping(document, "inputs")
    if not inputs_map:
        raise SpecError("'inputs' is empty: a spec needs at least one input", inputs_map.location)
    inputs = {}
    total = 0
    for input_name, entry in inputs_map.items():
        location = inputs_map.key_locations[input_name]
        reader.identifier(input_name, location, "an input")
        with _context(f"input '{input_name}'"):
            try:
                inputs[input_name] = _read_input(reader, input_name, entry, inputs_map, base_dir, dtype, seed,
                                                 overrides.allow_outside_files)
            except MemoryError:  # the process is held to its memory budget (isolation.memory_cap)
                raise SpecError(f"input '{input_name}': out of memory while reading it, with {total:,} elements of "
                                "the inputs before it (the memory budget is set by --max-memory)", location) from None
        total += inputs[input_name].value.size
        if total > MAX_TOTAL_ELEMENTS:
            raise SpecError(f"the inputs hold more than {MAX_TOTAL_ELEMENTS:,} elements in all "
                            f"(~{total * 8 / 2**20:,.0f} MiB); the limit is {MAX_TOTAL_ELEMENTS:,}", location)

    nodes_map = reader.mapping(document, "nodes")
    if not nodes_map:
        raise SpecError("'nodes' is empty: a spec needs at least one node", nodes_map.location)
    nodes = {}
    for node_name, entry in nodes_map.items():
        location = nodes_map.key_locations[node_name]
        reader.identifier(node_name, location, "a node")
        if node_name in inputs:
            raise SpecError(f"'{node_name}' is both an input (line {inputs_map.key_locations[node_name].line}) and a node",
                            location)
        with _context(f"node '{node_name}'"):
            nodes[node_name] = _read_node(reader, node_name, entry, nodes_map)

    _refuse_lookalike_names([(name, inputs_map.key_locations[name], "input") for name in inputs]
                            + [(name, nodes_map.key_locations[name], "node") for name in nodes]
                            + [(name, location, "custom op") for name, (_, location) in ops.items()])

    if "output" in document:
        output = document["output"]
        output_location = document.value_locations["output"]
        if not isinstance(output, str):
            raise SpecError(f"'output' must name a node, got {_kind(output)}", output_location)
        if output not in nodes:
            hint = " (it is an input; the output must be a node)" if output in inputs else did_you_mean(output, nodes)
            raise SpecError(f"'output' names '{clip(output)}', which is not a node{hint}", output_location)
    else:
        output = list(nodes)[-1]
        output_location = nodes[output].location

    expect = _read_expect(reader, document, inputs, nodes) if "expect" in document else None

    return Spec(path=display, name=name, description=description, dtype=dtype, seed=seed, inputs=inputs,
                nodes=nodes, output=output, output_location=output_location, tolerance=Tolerance(atol, rtol),
                method=method, eps=eps, ops=ops, expect=expect, base_dir=base_dir, requires=requires)


def _is_module_name(text: str) -> bool:
    return all(part.isidentifier() and not part.startswith("__") for part in text.split("."))


def _is_reference(reference) -> bool:
    """ "module:attribute" with dotted Python names on both sides."""
    return isinstance(reference, str) and reference.count(":") == 1 and all(
        _is_module_name(side) for side in reference.split(":"))


def _is_op_object(value) -> bool:
    """A Python object standing for an op in a dict spec (checked when it is loaded), not a YAML value."""
    return value is not None and not isinstance(value, (str, bool, int, float, LocatedList, np.ndarray))


def _refuse_lookalike_names(names: list[tuple[str, Location, str]]) -> None:
    """Names are used exactly as written; two that Python's parser would read as one identifier (it applies NFKC:
    ``ℌ`` and ``H``, ``ﬁ`` and ``fi``) are refused, naming both, so an expression cannot silently mean the other."""
    seen: dict[str, tuple[str, Location, str]] = {}
    for name, location, what in names:
        key = unicodedata.normalize("NFKC", name)
        if key in seen and seen[key][0] != name:
            other, other_location, other_what = seen[key]
            raise SpecError(f"{what} {clipped_repr(name)} and {other_what} {clipped_repr(other)} (line "
                            f"{other_location.line}) are the same identifier to Python ({clipped_repr(key)} after "
                            "Unicode NFKC normalisation): rename one", location)
        seen.setdefault(key, (name, location, what))


def _read_node(reader: _Reader, name: str, entry, nodes_map: LocatedMap) -> NodeSpec:
    location = nodes_map.value_locations[name]
    style = nodes_map.value_styles[name]
    atol = rtol = None
    check = True
    if isinstance(entry, LocatedMap):
        reader.check_keys(entry, NODE_KEYS, f"node '{name}'")
        if "expr" not in entry:
            raise SpecError(f"node '{name}' has no 'expr'", entry.location)
        atol = reader.number(entry, "atol", default=None, minimum=0.0)
        rtol = reader.number(entry, "rtol", default=None, minimum=0.0)
        check = reader.boolean(entry, "check", default=True)
        location = entry.value_locations["expr"]
        style = entry.value_styles["expr"]
        entry = entry["expr"]
    if isinstance(entry, bool) or entry is None or not isinstance(entry, (str, int, float)):
        raise SpecError(f"node '{name}' must be an expression string, got {_kind(entry)}", location)
    if isinstance(entry, float) and not math.isfinite(entry):
        raise SpecError(f"node '{name}' is the number {entry}: constants must be finite", location)
    text = entry if isinstance(entry, str) else repr(entry)
    if not text.strip():
        raise SpecError(f"node '{name}' has an empty expression", location)
    expr_location = location.shifted(1) if style in ("'", '"') else location
    if style in ("|", ">"):
        expr_location = Location(location.path, (location.line or 0) + 1, None)
    return NodeSpec(name, text, location, expr_location, atol, rtol, check)


def _read_input(reader: _Reader, name: str, entry, inputs_map: LocatedMap, base_dir: Path, spec_dtype: str,
                seed: int, allow_outside_files: bool = False) -> InputSpec:
    location = inputs_map.value_locations[name]
    requires_grad = True
    dtype = None
    if isinstance(entry, LocatedMap):
        reader.check_keys(entry, INPUT_KEYS, f"input '{name}'")
        constant_init = "shape" in entry and entry.get("init") == "constant"
        sources = [key for key in INPUT_SOURCES if key in entry and not (key == "value" and constant_init)]
        if len(sources) != 1:
            raise SpecError(
                f"input '{name}' needs exactly one of value:, file: or shape: (with init:), got "
                f"{' and '.join(sources) if sources else 'none'}", entry.location)
        dtype = reader.choice(entry, "dtype", INPUT_DTYPES, default=None)
        requires_grad = reader.boolean(entry, "requires_grad", default=True)
        source = sources[0]
        if source != "shape":
            for key in SHAPE_ONLY_KEYS:
                if key in entry:
                    raise SpecError(f"input '{name}': '{key}' goes with shape:, not with {source}:", entry.key_locations[key])
        if source == "value":
            value = reader.array(entry["value"], entry.value_locations["value"], f"input '{name}'")
        elif source == "file":
            value = _read_data_file(entry, name, base_dir, allow_outside_files)
        else:
            value = _initialise(reader, entry, name, seed)
            if "dtype" not in entry and entry.get("init") == "randint":
                dtype = "int64"
    else:
        value = reader.array(entry, location, f"input '{name}'")
    given = entry.get("value") if isinstance(entry, LocatedMap) else entry
    if dtype is None and isinstance(given, np.ndarray) and given.dtype.kind in "iub":
        dtype = "bool" if given.dtype.kind == "b" else "int64"  # a dict spec's integer or bool array is data
    if dtype is None:
        dtype = spec_dtype
    if dtype == "int64":
        if not np.all(np.isfinite(value)) or not np.all(value == np.round(value)):
            raise SpecError(f"input '{name}' is int64 but holds non-integer values", location)
        value = value.astype(np.int64)
        requires_grad = False
    elif dtype == "bool":  # masks: x[mask], where's condition
        if not np.all((value == 0) | (value == 1)):
            raise SpecError(f"input '{name}' is bool but holds values other than 0 and 1", location)
        value = value.astype(bool)
        requires_grad = False
    else:
        bad = ~np.isfinite(value)  # every source above returns a fresh float64 array
        if bad.any():
            index = first_position(bad)
            at = f" at index {list(index)}" if index else ""
            hint = " (a number too large for float64 becomes inf)" if np.isinf(value[index]) else ""
            raise SpecError(f"input '{name}' holds {value[index]}{at}: inputs must be finite{hint}", location)
        if dtype == "float32":
            too_big = np.abs(value) > np.finfo(np.float32).max
            if too_big.any():
                index = first_position(too_big)
                at = f" at index {list(index)}" if index else ""
                raise SpecError(f"input '{name}' holds {value[index]:g}{at}, beyond float32's range (~3.4e38)", location)
            value = value.astype(np.float32)
    data_file = (base_dir / entry["file"]) if isinstance(entry, LocatedMap) and source == "file" else None
    return InputSpec(name, value, requires_grad, inputs_map.key_locations[name], data_file)


def _read_data_file(entry: LocatedMap, name: str, base_dir: Path, allow_outside_files: bool = False) -> np.ndarray:
    """The array in a .npy or .csv file inside the spec's folder (anywhere with ``allow_outside_files``).

    A file that does not parse is reported by its name and the line and column of the fault, never by its
    content: a spec must not be a way to print the first line of a file it points at."""
    where = entry.value_locations["file"]
    file_name = entry["file"]
    if not isinstance(file_name, str) or not file_name:
        raise SpecError(f"input '{name}': file: must be a path, got {_kind(file_name)}", where)
    file_path = (base_dir / file_name)
    suffix = file_path.suffix.lower()
    shown = clip(file_name)
    if suffix not in DATA_FILE_SUFFIXES:
        raise SpecError(f"input '{name}': data files must be .npy or .csv, got '{shown}'", where)
    try:
        found = file_path.is_file()
        size = file_path.stat().st_size if found else 0
    except (OSError, ValueError) as error:  # a name too long for the file system, ...
        raise SpecError(f"input '{name}': cannot open data file '{shown}': {getattr(error, 'strerror', None) or error}",
                        where) from None
    if not found:
        if file_path.exists():  # a FIFO would block, a device never ends
            raise SpecError(f"input '{name}': data file '{shown}' is not a regular file (a device, pipe or folder?)",
                            where)
        raise SpecError(f"input '{name}': data file '{shown}' not found (looked at {clip(file_path, 200)})", where)
    if not allow_outside_files and not _inside(file_path, base_dir):
        raise SpecError(f"input '{name}': data file '{shown}' lies outside the spec's folder (after following links); "
                        "a spec reads only files beside it or below it, unless run with --allow-outside-files", where)
    if size > MAX_INPUT_ELEMENTS * 8 + 4096:
        raise SpecError(f"input '{name}': data file '{shown}' has {size:,} bytes, more than the limit of "
                        f"{MAX_INPUT_ELEMENTS:,} elements ({MAX_INPUT_ELEMENTS * 8:,} bytes in float64)", where)
    try:
        if suffix == ".npy":
            value = np.load(file_path, allow_pickle=False)
        else:
            value = np.loadtxt(file_path, delimiter=",", dtype=np.float64, ndmin=1, comments="#")
    except OSError as error:
        raise SpecError(f"input '{name}': cannot read '{shown}': {error.strerror or type(error).__name__}", where) \
            from None
    except Exception:  # numpy's messages quote the file's content: say where the fault is, not what it holds
        fault = "it is not a .npy array numpy can read (a malformed header or truncated data)" if suffix == ".npy" \
            else _csv_fault(file_path)
        raise SpecError(f"input '{name}': cannot read '{shown}': {fault}", where) from None
    if not isinstance(value, np.ndarray):  # an .npz archive behind a .npy name
        raise SpecError(f"input '{name}': '{shown}' is not a single .npy array", where)
    if value.dtype.kind not in "biuf":
        raise SpecError(f"input '{name}': '{shown}' holds {value.dtype} data, not real numbers", where)
    if value.size > MAX_INPUT_ELEMENTS:
        raise SpecError(f"input '{name}': '{shown}' holds {value.size:,} elements; the limit is {MAX_INPUT_ELEMENTS:,}", where)
    return value.astype(np.float64, copy=False)


def _inside(path: Path, folder: Path) -> bool:
    """Whether path, with every link followed, lies in folder (or below it)."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a link loop
        return False


def _csv_fault(path: Path) -> str:
    """Where a CSV file stops being rows of numbers, as 'line L, column C: ...' (never the offending text)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        return error.strerror or type(error).__name__
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return f"line {raw[: error.start].count(bytes([10])) + 1}: not UTF-8 text"
    width = None
    for line_number, line in enumerate(text.splitlines(), 1):
        data = line.split("#", 1)[0]
        if not data.strip():
            continue
        values = data.split(",")
        for column, value in enumerate(values, 1):
            try:
                float(value)
            except ValueError:
                return f"line {line_number}, column {column}: not a number"
        if width is not None and len(values) != width:
            return f"line {line_number}: {len(values)} values, but the rows before it have {width}"
        width = len(values)
    return "it is not a table of comma-separated numbers"


def _initialise(reader: _Reader, entry: LocatedMap, name: str, seed: int) -> np.ndarray:
    where = entry.value_locations["shape"]
    raw_shape = entry["shape"]
    if not isinstance(raw_shape, list):
        raw_shape = [raw_shape]
    dims = []
    for n in raw_shape:
        if isinstance(n, float) and math.isfinite(n) and n.is_integer():
            n = int(n)  # 1e6 reads as a float
        if isinstance(n, bool) or not isinstance(n, int):
            raise SpecError(f"input '{name}': shape: must be a list of integers, got {clipped_repr(raw_shape)}", where)
        dims.append(n)
    shape = tuple(dims)
    if len(shape) > 32:
        raise SpecError(f"input '{name}': shape: has {len(shape)} dimensions; the limit is 32", where)
    if any(n < 0 for n in shape):
        raise SpecError(f"input '{name}': shape {list(shape)} has a negative dimension; sizes are >= 0", where)
    if max(shape, default=0) > MAX_INPUT_ELEMENTS:
        raise SpecError(f"input '{name}': shape {clipped_repr(list(shape), 80)} has a dimension of "
                        f"{max(shape):,}; the limit is {MAX_INPUT_ELEMENTS:,} elements per input", where)
    count = math.prod(shape)
    if count > MAX_INPUT_ELEMENTS:
        shown = clipped_repr(list(shape), 80)
        raise SpecError(f"input '{name}': shape {shown} has {count:,} elements (~{_memory(count)} in float64); "
                        f"the limit is {MAX_INPUT_ELEMENTS:,} elements (~{_memory(MAX_INPUT_ELEMENTS)}) per input", where)
    if "init" not in entry:
        raise SpecError(f"input '{name}': shape: needs init: ({', '.join(INITIALISERS)})", entry.location)
    init = reader.choice(entry, "init", tuple(INITIALISERS))
    defaults = INITIALISERS[init]
    for key in ("mean", "std", "low", "high", "value"):
        if key in entry and key not in defaults:
            raise SpecError(f"input '{name}': init {init} takes {', '.join(defaults) or 'no parameters'}, not '{key}'",
                            entry.key_locations[key])
    rng = np.random.default_rng(stable_seed(seed, "input", name))
    if init == "normal":
        std = reader.number(entry, "std", default=defaults["std"], minimum=0.0)
        return rng.normal(reader.number(entry, "mean", default=defaults["mean"]), std, size=shape)
    if init == "uniform":
        low = reader.number(entry, "low", default=defaults["low"])
        high = reader.number(entry, "high", default=defaults["high"])
        if not low < high:
            raise SpecError(f"input '{name}': uniform needs low < high, got low={low}, high={high}", entry.location)
        if not math.isfinite(high - low):
            raise SpecError(f"input '{name}': uniform range low={low:g}, high={high:g} is wider than float64 holds",
                            entry.location)
        return rng.uniform(low, high, size=shape)
    if init == "zeros":
        return np.zeros(shape)
    if init == "ones":
        return np.ones(shape)
    if init == "constant":
        if "value" not in entry:
            raise SpecError(f"input '{name}': init constant needs value: (a number)", entry.location)
        return np.full(shape, reader.number(entry, "value"))
    low = reader.integer(entry, "low", default=defaults["low"])
    if "high" not in entry:
        raise SpecError(f"input '{name}': init randint needs high: (exclusive)", entry.location)
    high = reader.integer(entry, "high")
    if not low < high:
        raise SpecError(f"input '{name}': randint needs low < high, got low={low}, high={high}", entry.location)
    return rng.integers(low, high, size=shape).astype(np.float64)


def _read_expect(reader: _Reader, document: LocatedMap, inputs, nodes) -> Expectation:
    expect_map = reader.mapping(document, "expect", keys=EXPECT_KEYS)
    result = Expectation()
    result.atol = reader.number(expect_map, "atol", default=result.atol, minimum=0.0)
    result.rtol = reader.number(expect_map, "rtol", default=result.rtol, minimum=0.0)
    if "output" in expect_map:
        result.output_location = expect_map.value_locations["output"]
        result.output = reader.array(expect_map["output"], result.output_location, "expect output")
    for key, target in (("grad", result.grads), ("values", result.values)):
        if key not in expect_map:
            continue
        entries = reader.mapping(expect_map, key)
        for entry_name, value in entries.items():
            where = entries.key_locations[entry_name]
            if entry_name not in inputs and entry_name not in nodes:
                raise SpecError(f"expect {key}: {clipped_repr(entry_name)} is neither an input nor a node"
                                f"{did_you_mean(entry_name, list(inputs) + list(nodes))}", where)
            target[entry_name] = (reader.array(value, entries.value_locations[entry_name], f"expect {key} '{entry_name}'"),
                                  entries.value_locations[entry_name])
    return result


# ------------------------------------------------------------------------------------------ typed field reading

@contextmanager
def _context(what: str):
    """Prefix a field error with the input or node it belongs to ("input 'w': 'std' must be a number ...")."""
    try:
        yield
    except SpecError as error:
        if error.message.startswith(what):
            raise
        raise SpecError(f"{what}: {error.message}", error.location) from None


def _kind(value) -> str:
    if isinstance(value, LocatedMap):
        return "a mapping"
    if isinstance(value, LocatedList):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {clipped_repr(value)}"
    if isinstance(value, (int, float)):
        return f"the number {clipped_repr(value)}"
    return f"a {type(value).__name__}"


def _memory(count: int) -> str:
    """The memory ``count`` float64 values take, in a readable unit."""
    size = count * 8
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size} bytes"


class _Reader:
    """Typed access to LocatedMap fields, raising SpecError located at the offending value."""

    @staticmethod
    def _where(mapping: LocatedMap, key: str) -> Location:
        return mapping.value_locations.get(key, mapping.location)

    def check_keys(self, mapping: LocatedMap, allowed, what: str) -> None:
        for key in mapping:
            if key not in allowed:
                raise SpecError(f"{what}: unknown key {clipped_repr(key)}{did_you_mean(key, allowed)}; "
                                f"allowed: {', '.join(allowed)}",
                                mapping.key_locations[key])

    def mapping(self, parent: LocatedMap, key: str, keys=None) -> LocatedMap:
        value = parent[key]
        if value is None:
            value = LocatedMap()
            value.location = self._where(parent, key)
            value.key_locations, value.value_locations, value.value_styles = {}, {}, {}
        if not isinstance(value, LocatedMap):
            raise SpecError(f"'{key}' must be a mapping, got {_kind(value)}", self._where(parent, key))
        if keys is not None:
            self.check_keys(value, keys, f"'{key}'")
        return value

    def string(self, parent: LocatedMap, key: str, default=None) -> str:
        if key not in parent:
            return default
        value = parent[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise SpecError(f"'{key}' must be text, got {_kind(value)}", self._where(parent, key))
        return value

    def choice(self, parent: LocatedMap, key: str, choices, default=...):
        if key not in parent:
            if default is ...:
                raise SpecError(f"'{key}' is required", parent.location)
            return default
        value = parent[key]
        if value not in choices or not isinstance(value, str):
            raise SpecError(f"'{key}' must be one of {', '.join(choices)}, got {clipped_repr(value)}"
                            f"{did_you_mean(value, choices) if isinstance(value, str) else ''}", self._where(parent, key))
        return value

    def boolean(self, parent: LocatedMap, key: str, default=None) -> bool:
        if key not in parent:
            return default
        value = parent[key]
        if not isinstance(value, bool):
            raise SpecError(f"'{key}' must be true or false, got {_kind(value)}", self._where(parent, key))
        return value

    def integer(self, parent: LocatedMap, key: str, default=None, minimum=None) -> int:
        if key not in parent:
            if default is None:
                raise SpecError(f"'{key}' is required", parent.location)
            return default
        value = parent[key]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"'{key}' must be an integer, got {_kind(value)}", self._where(parent, key))
        if minimum is not None and value < minimum:
            raise SpecError(f"'{key}' must be >= {minimum}, got {value}", self._where(parent, key))
        if abs(value) >= 2**63:
            raise SpecError(f"'{key}' is too large: {value}", self._where(parent, key))
        return value

    def number(self, parent: LocatedMap, key: str, default=..., minimum=None, exclusive=False):
        if key not in parent:
            if default is ...:
                raise SpecError(f"'{key}' is required", parent.location)
            return default
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"'{key}' must be a number, got {_kind(value)}", self._where(parent, key))
        value = float(value)
        if not math.isfinite(value):
            raise SpecError(f"'{key}' must be finite, got {value}", self._where(parent, key))
        if minimum is not None and (value < minimum or (exclusive and value == minimum)):
            relation = ">" if exclusive else ">="
            raise SpecError(f"'{key}' must be {relation} {minimum:g}, got {value:g}", self._where(parent, key))
        return value

    def identifier(self, name, location: Location, what: str) -> None:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            hint = ""
            if isinstance(name, bool):
                hint = " (YAML reads true and false as booleans: quote the name)"
            elif isinstance(name, str) and keyword.iskeyword(name):
                hint = " (it is a Python keyword)"
            raise SpecError(f"{what} name must be an identifier (letters, digits, _; not a Python keyword), got "
                            f"{clipped_repr(name)}{hint}", location)
        if len(name) > MAX_NAME_CHARS:
            raise SpecError(f"{what} name has {len(name):,} characters; the limit is {MAX_NAME_CHARS}", location)

    def array(self, value, location: Location, what: str) -> np.ndarray:
        """A number or a nested list of numbers, rectangular, as float64 (a dict spec may give a numpy array)."""
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                raise SpecError(f"{what} must hold real numbers, got a {value.dtype} array", location)
            return value.astype(np.float64)
        if isinstance(value, bool) or value is None or isinstance(value, (str, LocatedMap)):
            raise SpecError(f"{what} must be a number or a nested list of numbers, got {_kind(value)}", location)
        if isinstance(value, (int, float)):
            return np.asarray(float(value) if abs(value) < 1e308 or isinstance(value, float) else math.inf)
        if not isinstance(value, list):
            raise SpecError(f"{what} must be a number or a nested list of numbers, got {_kind(value)}", location)
        shape = self._shape_of(value, location, what)
        flat: list[float] = []
        self._flatten(value, flat)
        return np.asarray(flat, dtype=np.float64).reshape(shape)

    def _shape_of(self, value, location: Location, what: str) -> tuple[int, ...]:
        if not isinstance(value, list):
            return ()
        if not value:
            return (0,)
        shapes = []
        for index, item in enumerate(value):
            item_location = value.item_locations[index] if isinstance(value, LocatedList) else location
            if isinstance(item, bool) or not isinstance(item, (int, float, list)):  # bools are ints to isinstance
                raise SpecError(f"{what}: element {index} is {_kind(item)}, not a number", item_location)
            shapes.append(self._shape_of(item, item_location, what))
        for index, shape in enumerate(shapes):
            if shape != shapes[0]:
                item_location = value.item_locations[index] if isinstance(value, LocatedList) else location
                raise SpecError(f"{what} is ragged: element {index} has shape {list(shape)} but element 0 has "
                                f"shape {list(shapes[0])}", item_location)
        return (len(value),) + shapes[0]

    def _flatten(self, value, out: list) -> None:
        for item in value:
            if isinstance(item, list):
                self._flatten(item, out)
            else:
                out.append(float(item) if not isinstance(item, int) or abs(item) < 2**1000 else math.inf)
