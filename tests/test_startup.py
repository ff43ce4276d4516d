"""What a plain `gradcheck run` loads: only what checking and reporting a spec of built-in ops needs."""
from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradcheck import discovery, errors, expr, isolation, pipeline, plaindata, report, results, sizing, spec, yamlsource
from gradcheck.entry import _will_check
from gradcheck.judge import diagnosis, options
from gradcheck.ops import BUILTIN_OPS, Primitive, builtin, changes, custom_op_info
from gradcheck.ops.registry import OP_MODULES, OPS_BY_MODULE, OpTable
from gradcheck.plaindata import FrozenPlainData, PlainData

ROOT = Path(__file__).resolve().parent.parent

# the command's own entry, as the console script runs it; then, from an exit handler (the entry runs those before
# it ends the process), the modules it loaded, on the real stdout; the exit code is the process's
LOADED_BY_A_RUN = """
import atexit, json, sys


def loaded():
    yaml = sys.modules.get("yaml")
    spelling = yaml.reader.Reader.NON_PRINTABLE.pattern if yaml else None  # PyYAML's reader's pattern, as compiled
    results = sys.modules.get("gradcheck.results")
    compiled = sorted(name for name, value in vars(results).items() if isinstance(value, type)
                      and "__init__" in vars(value) and not value.__init__.__code__.co_filename.endswith("plaindata.py")
                      and value.__module__ == results.__name__) if results else []
    sys.__stdout__.write("\\nMODULES " + json.dumps({"modules": sorted(sys.modules), "non_printable": spelling,
                                                    "compiled_inits": compiled}) + "\\n")


atexit.register(loaded)
sys.argv = ["gradcheck", *sys.argv[1:]]
from gradcheck.entry import main
main()
"""


def run_loaded(*arguments: str, extra_env: dict[str, str] | None = None) -> dict:
    """The exit code, the modules, PyYAML's compiled NON_PRINTABLE spelling and the classes of gradcheck.results
    whose __init__ was compiled, of a gradcheck command."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("TERM", "FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS"):
        env.pop(name, None)
    env.update(extra_env or {})
    done = subprocess.run([sys.executable, "-c", LOADED_BY_A_RUN, *arguments], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env, timeout=120)  # stdout and stderr are pipes: no terminal
    marker = [line for line in done.stdout.splitlines() if line.startswith("MODULES ")]
    assert marker, done.stdout + done.stderr
    return {"exit": done.returncode, **json.loads(marker[-1].removeprefix("MODULES "))}


def modules_loaded_by(*arguments: str, extra_env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    loaded = run_loaded(*arguments, extra_env=extra_env)
    return loaded["exit"], set(loaded["modules"])


RENDERERS = ("table", "json_report", "junit", "github", "markdown", "explain_text", "graph_view")
NEVER_AT_IMPORT = ("numpy", "yaml", "rich", "click.shell_completion", "gradcheck.spec", "gradcheck.yamlsource",
                   "gradcheck.results", "gradcheck.judge", "gradcheck.pipeline", "gradcheck.ops")


def loaded_heavy(modules: set[str], names) -> list[str]:
    """Those of ``names`` loaded, as modules or as packages with any submodule loaded."""
    return [name for name in names if any(module == name or module.startswith(name + ".") for module in modules)]


def test_importing_the_command_line_loads_no_numpy_yaml_rich_or_check():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", "import json, sys, gradcheck.cli; print(json.dumps(sorted(sys.modules)))"],
                          capture_output=True, text=True, env=env, timeout=120, check=True)
    assert loaded_heavy(set(json.loads(done.stdout)), NEVER_AT_IMPORT) == []


@pytest.mark.parametrize("arguments", [["--help"], ["--version"], ["run", "--help"]])
def test_help_and_version_load_no_numpy_yaml_or_rich(arguments):
    code, modules = modules_loaded_by(*arguments)
    assert code == 0
    assert loaded_heavy(modules, NEVER_AT_IMPORT) == []


@pytest.mark.parametrize("arguments", [["ops", "--json"], ["schema"], ["schema", "--report"]])
def test_commands_that_read_no_spec_load_no_yaml(arguments):
    code, modules = modules_loaded_by(*arguments)
    assert code == 0
    assert loaded_heavy(modules, ("yaml", "rich", "gradcheck.pipeline")) == []


@pytest.mark.parametrize("output_format", ["table", "json", "junit", "github", "markdown"])
def test_a_run_loads_yaml_and_only_the_renderer_it_draws_with(output_format):
    code, modules = modules_loaded_by("run", "--format", output_format, str(ROOT / "specs" / "neuron_sigmoid.yaml"))
    assert code == 0
    assert "yaml" in modules  # it did read the spec
    drawn_with = {"json": {"json_report"}, "markdown": {"markdown", "graph_view"}}  # Markdown's Mermaid graph
    assert {name for name in RENDERERS if f"gradcheck.report.{name}" in modules} == \
        drawn_with.get(output_format, {output_format})
    assert loaded_heavy(modules, ("rich",)) == []  # off a terminal the table is laid out without rich


def test_the_entry_loads_the_check_ahead_only_for_a_command_that_will_check():
    assert _will_check(["run", "specs/"]) and _will_check(["explain", "a.yaml", "-o", "x"]) and _will_check(["graph", "a"])
    for arguments in ([], ["--help"], ["ops"], ["schema"], ["run", "--help"], ["graph", "a.yaml", "-h"]):
        assert not _will_check(arguments), arguments


def test_a_run_off_a_terminal_loads_no_framework_no_progress_display_and_no_rich():
    code, modules = modules_loaded_by("run", str(ROOT / "specs" / "neuron_sigmoid.yaml"))
    assert code == 0
    assert "gradcheck.pipeline" in modules and "gradcheck.report.table" in modules  # it did check and draw the table
    for never in ("torch", "jax", "rich", "rich.console", "rich.progress", "gradcheck.progress",
                  "gradcheck.ops.custom", "gradcheck.ops.conventions", "gradcheck.ops.frameworks",  # custom ops'
                  "gradcheck.judge.taylor", "gradcheck.judge.diagnosis"):  # --taylor's; a wrong gradient's
        assert never not in modules, never


def test_a_table_written_to_a_file_loads_no_rich(tmp_path):
    report = tmp_path / "report.txt"
    code, modules = modules_loaded_by("run", "-o", str(report), str(ROOT / "specs" / "neuron_sigmoid.yaml"))
    assert code == 0
    assert report.read_text().startswith("PASS  two-input sigmoid neuron")
    assert loaded_heavy(modules, ("rich",)) == []


@pytest.mark.parametrize("environment", [{"FORCE_COLOR": "1"}])
def test_a_table_rich_may_style_or_size_its_own_way_is_drawn_by_rich(environment):
    code, modules = modules_loaded_by("run", str(ROOT / "specs" / "neuron_sigmoid.yaml"), extra_env=environment)
    assert code == 0
    assert "rich.table" in modules


def test_color_always_draws_the_table_with_rich():
    code, modules = modules_loaded_by("run", "--color", "always", str(ROOT / "specs" / "neuron_sigmoid.yaml"))
    assert code == 0
    assert "rich.table" in modules


def test_a_json_run_loads_no_rich_at_all():
    code, modules = modules_loaded_by("run", "--format", "json", str(ROOT / "specs" / "neuron_sigmoid.yaml"))
    assert code == 0
    assert not [name for name in modules if name == "rich" or name.startswith("rich.")]


def test_a_run_loads_only_the_op_modules_its_spec_names():
    # neuron_sigmoid.yaml: add, mul and sigmoid, all three in gradcheck.ops.elementwise
    code, modules = modules_loaded_by("run", "--format", "json", str(ROOT / "specs" / "neuron_sigmoid.yaml"))
    assert code == 0
    assert "gradcheck.ops.elementwise" in modules
    for module in OP_MODULES:
        if module != "elementwise":
            assert f"gradcheck.ops.{module}" not in modules, module


def test_a_spec_naming_an_op_of_another_module_loads_that_module(tmp_path):
    spec = tmp_path / "conv.yaml"
    spec.write_text("inputs:\n  x: {shape: [1, 1, 4, 4], init: normal}\n  k: {shape: [1, 1, 2, 2], init: normal}\n"
                    "  b: {shape: [1], init: normal}\nnodes:\n  y: sum(conv2d(x, k, b))\n")
    code, modules = modules_loaded_by("run", "--format", "json", str(spec))
    assert code == 0
    assert {"gradcheck.ops.nn_conv", "gradcheck.ops.reductions"} <= modules
    assert "gradcheck.ops.linalg" not in modules


def test_the_table_of_op_modules_names_every_op_where_it_is_defined():
    defined_in = {name: type(info.impl).__module__.removeprefix("gradcheck.ops.") for name, info in BUILTIN_OPS.items()}
    listed = {name: module for module, names in OPS_BY_MODULE.items() for name in names}
    assert defined_in == listed
    assert len(BUILTIN_OPS) == len(listed) == sum(len(names) for names in OPS_BY_MODULE.values())  # no name twice


def test_an_op_missing_from_the_table_or_registered_twice_is_refused():
    class Unlisted(Primitive):
        name, args = "not_in_the_table", ("x",)

    with pytest.raises(RuntimeError, match="OPS_BY_MODULE"):
        builtin(Unlisted)
    assert "not_in_the_table" not in BUILTIN_OPS

    class Again(Primitive):
        name, args = "sigmoid", ("x",)

    with pytest.raises(RuntimeError, match="registered twice"):
        builtin(Again)
    assert type(BUILTIN_OPS["sigmoid"].impl).__name__ != "Again"


def test_a_graph_sees_its_custom_ops_over_the_built_in_ones():
    custom = custom_op_info("sigmoid", BUILTIN_OPS["tanh"].impl, "a test")
    table = OpTable({"sigmoid": custom, "mine": custom})
    assert table["sigmoid"] is custom and table["mine"] is custom
    assert table["tanh"] is BUILTIN_OPS["tanh"]
    assert "mine" in table and "conv2d" in table and "nothing" not in table
    assert list(table) == list(dict.fromkeys([*BUILTIN_OPS, "mine"]))
    assert len(table) == len(BUILTIN_OPS) + 1
    with pytest.raises(KeyError):
        table["nothing"]


# ---------------------------------------------------------------------------------------------- plain data
PLAIN_DATA_MODULES = (errors, results, spec, report, isolation, discovery, expr, sizing, options, diagnosis, pipeline,
                      changes)


def plain_data_classes() -> list[type]:
    return [value for module in PLAIN_DATA_MODULES for value in vars(module).values()
            if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == module.__name__]


def stock_twin(cls: type) -> type:
    """The same fields in a dataclass whose __eq__, __repr__ and __hash__ the standard library generates."""
    def copied(item: dataclasses.Field):
        return dataclasses.field(repr=item.repr, compare=item.compare, hash=item.hash, kw_only=item.kw_only)

    twin = dataclasses.make_dataclass(cls.__name__, [(item.name, item.type, copied(item))
                                                     for item in dataclasses.fields(cls)],
                                      frozen=cls.__dataclass_params__.frozen)  # type: ignore[attr-defined]
    twin.__qualname__ = cls.__qualname__
    return twin


def filled(cls: type, **changed):
    # by the fields' names, as dataclasses.replace builds (a class's own __init__, Change's, takes them too)
    return cls(**{item.name: changed.get(item.name, f"{item.name}-value") for item in dataclasses.fields(cls)})


def test_the_plain_data_classes_share_their_equality_and_text_instead_of_compiling_their_own():
    classes = plain_data_classes()
    assert {cls.__name__ for cls in classes} >= {"Location", "NodeResult", "SpecResult", "Spec", "RenderOptions",
                                                 "CheckOptions", "Call", "Limits"}
    for cls in classes:
        assert cls.__eq__ is PlainData.__eq__ and cls.__repr__ is PlainData.__repr__, cls
        frozen = cls.__dataclass_params__.frozen
        assert (cls.__hash__ is FrozenPlainData.__hash__) if frozen else cls.__hash__ is None, cls


@pytest.mark.parametrize("cls", plain_data_classes(), ids=lambda cls: cls.__name__)
def test_a_plain_data_class_compares_prints_and_hashes_as_the_dataclass_it_was(cls):
    twin = stock_twin(cls)
    last = [item.name for item in dataclasses.fields(cls) if item.compare][-1]
    assert repr(filled(cls)) == repr(filled(twin))
    assert repr(filled(cls, **{last: [1, 2]})) == repr(filled(twin, **{last: [1, 2]}))
    assert (filled(cls) == filled(cls)) is (filled(twin) == filled(twin)) is True
    assert (filled(cls) == filled(cls, **{last: 0})) is (filled(twin) == filled(twin, **{last: 0})) is False
    assert filled(cls) != filled(twin)  # another class, though its fields are the same
    if cls.__dataclass_params__.frozen:
        assert hash(filled(cls)) == hash(filled(twin))
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(filled(cls), last, 0)
    else:
        with pytest.raises(TypeError):
            hash(filled(cls))
    assert dataclasses.replace(filled(cls), **{last: 0}) == filled(cls, **{last: 0})


def test_a_passing_run_compiles_the_init_of_only_the_results_it_makes():
    loaded = run_loaded("run", "--format", "json", str(ROOT / "specs" / "neuron_sigmoid.yaml"))
    assert loaded["exit"] == 0
    assert {"NodeResult", "SpecResult", "RunResult"} <= set(loaded["compiled_inits"])
    assert not {"JvpResult", "ElementOutcome", "Suspect", "Diagnosis", "ErrorInfo"} & set(loaded["compiled_inits"])


@pytest.mark.parametrize("frozen", [False, True])
def test_a_class_whose_init_is_compiled_on_first_use_is_made_as_the_stock_dataclass_makes_it(frozen):
    def declare(decorator):
        @decorator(frozen=frozen, eq=False, repr=False)
        class Made(FrozenPlainData if frozen else PlainData):
            """A docstring."""

            first: int
            second: str = "two"
            items: list = dataclasses.field(default_factory=list)
            named: float = dataclasses.field(default=0.5, kw_only=True)
            total: float = dataclasses.field(init=False, default=0.0)

            def __post_init__(self):
                object.__setattr__(self, "total", self.first + self.named)

        return Made

    lazy, stock = declare(plaindata.dataclass), declare(dataclasses.dataclass)
    assert lazy.__init__.__code__.co_filename == plaindata.__file__  # nothing compiled yet
    made = lazy(1, named=2.0)
    assert lazy.__init__.__code__.co_filename != plaindata.__file__  # compiled, in the stand-in's place
    assert lazy.__init__.__qualname__ == stock.__init__.__qualname__
    assert inspect.signature(lazy) == inspect.signature(stock)
    asked = declare(plaindata.dataclass)
    assert inspect.signature(asked) == inspect.signature(stock)  # asking compiles it: help() shows the fields
    assert asked.__init__.__code__.co_filename != plaindata.__file__
    for built in (made, lazy(1, named=2.0), lazy(first=1, second="two", items=[], named=2.0)):
        assert vars(built) == vars(stock(1, named=2.0)) == {"first": 1, "second": "two", "items": [], "named": 2.0,
                                                            "total": 3.0}
    assert lazy(1).items is not lazy(1).items  # a fresh list each
    with pytest.raises(TypeError):
        lazy(1, "two", [], 2.0)  # named is keyword-only
    with pytest.raises(TypeError):
        lazy()
    assert dataclasses.replace(made, first=5).total == 7.0
    if frozen:
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.first = 2


def frozen_pair(decorator, **options):
    @decorator(frozen=True, eq=False, repr=False, **options)
    class Point(FrozenPlainData):
        x: float
        y: float = 0.0

        if not options.get("init", True):
            def __init__(self, x: float, y: float = 0.0) -> None:  # written by hand, as ops.changes.Change is
                object.__setattr__(self, "x", x)
                object.__setattr__(self, "y", y)

    return Point


def raised(action) -> tuple[type, str] | None:
    try:
        action()
    except Exception as error:  # noqa: BLE001 - the type and text are what is compared
        return type(error), str(error)
    return None


@pytest.mark.parametrize("init", [True, False])
def test_a_frozen_plain_data_class_compiles_no_setattr_and_refuses_what_dataclass_s_refuses(init):
    lazy, stock = frozen_pair(plaindata.dataclass, init=init), frozen_pair(dataclasses.dataclass, init=init)
    for method in ("__setattr__", "__delattr__"):
        assert vars(lazy)[method].__code__.co_filename == plaindata.__file__  # a closure: nothing compiled
        assert vars(lazy)[method].__qualname__ == vars(stock)[method].__qualname__
    assert lazy.__dataclass_params__.frozen and stock.__dataclass_params__.frozen
    assert vars(lazy(1.0)) == vars(stock(1.0)) == {"x": 1.0, "y": 0.0}

    def attempts(cls):
        point = cls(1.0, 2.0)

        class Plain(cls):  # not a dataclass: its own attributes may be set, its fields not
            pass

        other = Plain(1.0)
        other.extra = 5
        return [raised(lambda: setattr(point, "x", 3.0)), raised(lambda: delattr(point, "y")),
                raised(lambda: setattr(point, "extra", 1)), raised(lambda: setattr(other, "x", 2.0)),
                raised(lambda: delattr(other, "extra")), other.__dict__, hash(point) == hash(cls(1.0, 2.0))]

    found = attempts(lazy)
    assert found == attempts(stock)
    assert found[0][0] is dataclasses.FrozenInstanceError  # its message is stock's (above), not ours to spell
    assert found[4] is None and found[5] == {"x": 1.0, "y": 0.0}
    assert dataclasses.replace(lazy(1.0, 2.0), y=4.0) == lazy(1.0, 4.0)
    with pytest.raises(TypeError, match="cannot inherit non-frozen dataclass from a frozen one"):
        dataclasses.dataclass(type("Thawed", (lazy,), {"__annotations__": {"z": int}, "z": 0}))
    refrozen = dataclasses.dataclass(frozen=True)(type("Refrozen", (lazy,), {"__annotations__": {"z": int}, "z": 0}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        refrozen(1.0, 2.0, 3).z = 4


def test_a_frozen_class_dataclass_must_build_itself_is_left_to_dataclass():
    # over a dataclass base (whose frozenness dataclass checks), with eq=True (dataclass's field hash) or its own
    # __setattr__ (which dataclass refuses to replace): dataclass's own answer, error or class
    @dataclasses.dataclass(frozen=True)
    class Base:
        a: int

    derived = plaindata.dataclass(frozen=True, eq=False)(type("Derived", (Base,), {"__annotations__": {"b": int}}))
    assert vars(derived)["__setattr__"].__code__.co_filename != plaindata.__file__
    with pytest.raises(TypeError, match="cannot inherit"):
        plaindata.dataclass(eq=False)(type("Thawed", (Base,), {"__annotations__": {"b": int}}))
    hashed = plaindata.dataclass(frozen=True)(type("Hashed", (), {"__annotations__": {"a": int}}))
    assert hash(hashed(1)) == hash(hashed(1)) and hashed(1) == hashed(1)
    with pytest.raises(TypeError, match="Cannot overwrite attribute __setattr__"):
        plaindata.dataclass(frozen=True, eq=False)(type("Own", (), {"__annotations__": {"a": int},
                                                                   "__setattr__": object.__setattr__}))


def test_plain_data_leaves_out_what_its_fields_leave_out_and_prints_a_cycle_once():
    @dataclasses.dataclass(frozen=True, eq=False, repr=False)
    class Shared(FrozenPlainData):
        kept: object
        unseen: object = dataclasses.field(default=0, repr=False)
        uncompared: object = dataclasses.field(default=0, compare=False)
        unhashed: object = dataclasses.field(default=0, hash=False)

    @dataclasses.dataclass(frozen=True)
    class Stock:
        kept: object
        unseen: object = dataclasses.field(default=0, repr=False)
        uncompared: object = dataclasses.field(default=0, compare=False)
        unhashed: object = dataclasses.field(default=0, hash=False)

    for made in (Shared, Stock):
        assert repr(made(1, 2, 3, 4)).endswith("(kept=1, uncompared=3, unhashed=4)")
        assert made(1, 2, 3, 4) == made(1, 2, 9, 4) and made(1, 2, 3, 4) != made(1, 2, 3, 5)
        assert made(1, 2, 3, 4) != made(1, 9, 3, 4)  # repr=False leaves a field compared
    assert hash(Shared(1, 2, 3, 4)) == hash(Shared(1, 2, 9, 9)) == hash((1, 2))

    @dataclasses.dataclass(eq=False, repr=False)
    class Node(PlainData):
        children: list

    loop = Node([])
    loop.children.append(loop)
    assert repr(loop) == "test_plain_data_leaves_out_what_its_fields_leave_out_and_prints_a_cycle_once.<locals>." \
                         "Node(children=[...])"


# ---------------------------------------------------------------------------------------------- PyYAML's import
def yaml_1_1_printable(code: int) -> bool:
    """YAML 1.1's production [1] c-printable, as the specification writes it."""
    return (code in (0x9, 0xA, 0xD, 0x85) or 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF
            or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF)


def test_the_non_printable_characters_are_yaml_s_and_pyyaml_s_every_code_point_compared():
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    found = [match.start() for match in yamlsource.non_printable().finditer(every)]
    assert found == [code for code in range(sys.maxunicode + 1) if not yaml_1_1_printable(code)]
    re.purge()  # PyYAML's spelling compiled by Python, not found in its cache
    pyyaml_spelling = re.compile(yamlsource.PYYAML_NON_PRINTABLE)
    assert pyyaml_spelling.pattern == yamlsource.PYYAML_NON_PRINTABLE
    assert [match.start() for match in pyyaml_spelling.finditer(every)] == found


def python_says(code: str) -> list:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def installed_pyyaml_spelling() -> str | None:
    """The text yaml/reader.py of the installed PyYAML gives re.compile for Reader.NON_PRINTABLE, read from its
    source (PyYAML is not imported); None where it is not written as ``NON_PRINTABLE = re.compile("...")``."""
    import ast
    import importlib.util

    found = importlib.util.find_spec("yaml")
    assert found is not None and found.submodule_search_locations
    reader = Path(list(found.submodule_search_locations)[0]) / "reader.py"
    for node in ast.walk(ast.parse(reader.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef) and node.name == "Reader":
            for statement in node.body:
                if (isinstance(statement, ast.Assign) and [getattr(target, "id", None) for target in statement.targets]
                        == ["NON_PRINTABLE"] and isinstance(statement.value, ast.Call) and statement.value.args
                        and isinstance(statement.value.args[0], ast.Constant)):
                    return statement.value.args[0].value
    return None


def skip_unless_pyyaml_spells_it_as_gradcheck_expects() -> None:
    if installed_pyyaml_spelling() != yamlsource.PYYAML_NON_PRINTABLE:
        pytest.skip("the installed PyYAML spells Reader.NON_PRINTABLE otherwise: gradcheck leaves it to compile its "
                    "own (as the fallback test checks), correct but as slow as without gradcheck's spelling")


def test_the_installed_pyyaml_spells_its_non_printable_pattern_as_gradcheck_expects():
    # where it does not, the import still works, only as slowly as before (the fallback test): update the spelling
    skip_unless_pyyaml_spells_it_as_gradcheck_expects()
    assert python_says("import json, yaml; print(json.dumps([yaml.reader.Reader.NON_PRINTABLE.pattern]))") == \
        [yamlsource.PYYAML_NON_PRINTABLE]


def test_the_installed_pyyaml_refuses_the_very_characters_gradcheck_refuses_however_it_spells_them():
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    refused = python_says("import json, sys, yaml\n"  # PyYAML's own compile: gradcheck not imported
                          "every = ''.join(map(chr, range(sys.maxunicode + 1)))\n"
                          "print(json.dumps([m.start() for m in yaml.reader.Reader.NON_PRINTABLE.finditer(every)]))")
    assert refused == [match.start() for match in yamlsource.non_printable().finditer(every)]


def test_a_run_imports_pyyaml_with_the_cheap_spelling_and_leaves_python_s_cache_as_it_was():
    skip_unless_pyyaml_spells_it_as_gradcheck_expects()
    loaded = run_loaded("run", "--format", "json", str(ROOT / "specs" / "neuron_sigmoid.yaml"))
    assert loaded["exit"] == 0 and loaded["non_printable"] == yamlsource.NON_PRINTABLE
    assert python_says("import json, re\n"
                       "from gradcheck.yamlsource import PYYAML_NON_PRINTABLE, pyyaml\n"
                       "pyyaml()\n"
                       "print(json.dumps([re.compile(PYYAML_NON_PRINTABLE).pattern == PYYAML_NON_PRINTABLE]))") == [True]


def test_a_pyyaml_that_spells_its_pattern_otherwise_compiles_its_own_and_control_characters_are_still_refused():
    said = python_says("import json, re\n"
                       "from gradcheck import yamlsource\n"
                       "from gradcheck.errors import SpecError\n"
                       "yamlsource.PYYAML_NON_PRINTABLE = '[^ -~]'  # not what yaml/reader.py compiles\n"
                       "yaml = yamlsource.pyyaml()\n"
                       "try:\n"
                       "    yamlsource.load_yaml('a: 1\\nb: \"x\\x07\"\\n', 'bell.yaml')\n"
                       "except SpecError as error:\n"
                       "    refused = [str(error), error.location.line, error.location.column]\n"
                       "seeds = [key for key in re._cache if key[1] == '[^ -~]']\n"
                       "print(json.dumps([yaml.reader.Reader.NON_PRINTABLE.pattern, seeds, refused]))")
    pattern, seeds, (message, line, column) = said
    assert pattern != yamlsource.NON_PRINTABLE  # not gradcheck's spelling: the one yaml/reader.py compiles
    if installed_pyyaml_spelling() is not None:
        assert pattern == installed_pyyaml_spelling()
    assert seeds == []
    assert "control character U+0007" in message and (line, column) == (2, 6)


# ---------------------------------------------------------------------------------------------- the process's end
TEARDOWN_PROBE = """
import sys, types


class Probe:
    def __del__(self):  # runs when the interpreter's exit clears this module
        sys.__stdout__.write("TORN DOWN\\n")
        sys.__stdout__.flush()


probe = types.ModuleType("teardown_probe")
probe.held = Probe()
sys.modules["teardown_probe"] = probe
del Probe
"""


def run_probed(*arguments: str, before: str = "") -> subprocess.CompletedProcess:
    """A gradcheck command run as its console script runs it, in a process whose teardown would print TORN DOWN."""
    script = TEARDOWN_PROBE + before + "\nsys.argv = ['gradcheck', *sys.argv[1:]]\nfrom gradcheck.entry import main\nmain()\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script, *arguments], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env, timeout=120)


def test_the_probe_sees_the_interpreter_s_own_exit():
    done = subprocess.run([sys.executable, "-c", TEARDOWN_PROBE], capture_output=True, text=True, timeout=60)
    assert done.stdout == "TORN DOWN\n"


def test_a_run_ends_with_its_exit_code_and_its_report_without_tearing_down_the_modules(tmp_path):
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("inputs:\n  x: 2.0\nnodes:\n  y: x * x\nexpect:\n  grad: {x: 5.0}\n")  # dy/dx = 4
    for spec_file, code, verdict in ((ROOT / "specs" / "neuron_sigmoid.yaml", 0, "1 passed"), (wrong, 1, "1 failed")):
        done = run_probed("run", str(spec_file))
        assert done.returncode == code, done.stderr
        assert verdict in done.stdout and "TORN DOWN" not in done.stdout
    usage = run_probed("run", "--no-such-option")
    assert usage.returncode == 2 and "--no-such-option" in usage.stderr and "TORN DOWN" not in usage.stdout


def test_the_exit_handlers_run_before_the_process_ends():
    done = run_probed("run", str(ROOT / "specs" / "neuron_sigmoid.yaml"),
                      before="import atexit\natexit.register(lambda: print('EXIT HANDLER RAN', flush=True))\n")
    assert done.returncode == 0 and "EXIT HANDLER RAN" in done.stdout and "TORN DOWN" not in done.stdout


def test_with_another_thread_alive_the_interpreter_exits_as_always_and_waits_for_it():
    waiting = ("import threading, time\n"
               "threading.Thread(target=lambda: (time.sleep(0.5), print('THREAD DONE', flush=True))).start()\n")
    done = run_probed("run", str(ROOT / "specs" / "neuron_sigmoid.yaml"), before=waiting)
    assert done.returncode == 0 and "THREAD DONE" in done.stdout and "TORN DOWN" in done.stdout


@pytest.mark.parametrize("setting", ["sys.stdout = Unflushable()", "import gradcheck.ops.custom", ""])
@pytest.mark.parametrize("code", [3, "a message"])
def test_the_process_is_left_to_the_interpreter_s_exit_where_it_could_end_otherwise(setting, code):
    # a stream that does not flush (the interpreter reports it), a custom op's module (which may hold open files
    # for the teardown to close), an exit message to print: the entry returns; else it ends the process there
    done = subprocess.run([sys.executable, "-c", "import io, sys\n"
                           "class Unflushable(io.StringIO):\n"
                           "    def flush(self):\n"
                           "        raise OSError('unflushable')\n"
                           f"{setting}\n"
                           "from gradcheck.entry import _end_process\n"
                           f"_end_process({code!r})\n"
                           "sys.__stdout__.write('RETURNED')\n"
                           "sys.stdout = sys.__stdout__\n"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    ended_there = not setting and code == 3
    assert ("RETURNED" in done.stdout) is not ended_there
    assert done.returncode == (3 if ended_there else 0)


def test_the_changes_of_change_propagation_compile_no_methods_and_change_keeps_its_own_init():
    for cls in (changes.Change, changes.Outer):
        assert vars(cls)["__setattr__"].__code__.co_filename == plaindata.__file__, cls
        assert cls.__dataclass_params__.frozen
    assert changes.Change.__init__.__code__.co_filename == changes.__file__  # written by hand, kept
    made = changes.Change((3,), {}, delta=np.ones((1, 3)))
    assert made.written is made.delta and made.outer is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.shape = (4,)
