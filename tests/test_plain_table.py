"""The table laid out without Rich is the text Rich prints, character for character, wherever it is laid out so;
everything else is left to Rich."""
from __future__ import annotations

import io
import random

import numpy as np
import pytest
from rich.console import Console

from gradcheck.cli import _plain_console_width, without_trailing_spaces
from gradcheck.errors import Location
from gradcheck.report import RenderOptions, table
from gradcheck.results import ElementOutcome, ErrorInfo, ExpectResult, NodeResult, RunResult, SpecResult, Status, Suspect

WORDS = ["a", "node", "sigmoid'", "=", "f(1", "-", "f)", "0.2", "dw0", "flows", "back:", "└", "…", "±3", "x·y",
         "2×3", "pinned", "published", "two-digit", "numbers.", "a-rather-long-word-of-forty-characters-xx"]


def sentence(rng: random.Random, words: int, unusual: str | None = None) -> str:
    chosen = [rng.choice(WORDS) for _ in range(words)]
    if unusual is not None:
        chosen.insert(rng.randrange(len(chosen) + 1), unusual)
    return (" " * rng.randint(1, 3)).join(chosen) if rng.random() < 0.2 else " ".join(chosen)


def node(rng: random.Random, index: int, parent: str | None) -> NodeResult:
    status = rng.choice([Status.PASS, Status.PASS, Status.FAIL, Status.KINK, Status.INCONCLUSIVE, Status.SKIP])
    elements = [ElementOutcome((rng.randrange(9), rng.randrange(99)), status, rng.gauss(0, 9), rng.gauss(0, 1),
                               rng.random(), rng.choice([0.0, 1e-9]), *((0.5, -0.5) if status == Status.KINK else ()))
                for _ in range(rng.randint(0, 2))] if status in (Status.FAIL, Status.KINK, Status.INCONCLUSIVE) else []
    judged = status in (Status.FAIL, Status.KINK, Status.INCONCLUSIVE)
    return NodeResult(shape=tuple(rng.randint(1, 40) for _ in range(rng.randint(0, 3))), name=f"{parent or 'n'}/x{index}"
                      if parent else sentence(rng, 1).replace(" ", "_") + str(index), op=rng.choice(["add", "matmul",
                      "softmax_cross_entropy", "sigmoid"]), parent=parent, status=status,
                      max_abs_error=rng.choice([0.0, 1.3e-12, 4.2]), max_rel_error=rng.random(),
                      worst_index=(1, 2) if judged else (), worst_analytic=rng.random() if judged else None,
                      worst_numeric=rng.random() if judged else None, worst_numeric_error=rng.choice([None, 2e-9]),
                      failing=len(elements) + rng.randint(0, 3) if status == Status.FAIL else 0,
                      kinks=len(elements) + 1 if status == Status.KINK else 0,
                      inconclusive=len(elements) if status == Status.INCONCLUSIVE else 0, elements=elements,
                      checked=rng.choice(["full", "probes"]), message=rng.choice([None, "a message"]))


def a_run(rng: random.Random, unusual: str | None = None) -> RunResult:
    specs = []
    for number in range(rng.randint(1, 3)):
        nodes = []
        for index in range(rng.randint(1, 5)):
            nodes.append(node(rng, index, None))
            nodes.extend(node(rng, child, nodes[-1].name) for child in range(rng.randint(0, 2)))
        failed = any(n.status == Status.FAIL for n in nodes)
        error = rng.random() < 0.15
        specs.append(SpecResult(
            path=f"specs/{sentence(rng, 1)}{number}.yaml", name=sentence(rng, rng.randint(1, 12), unusual),
            status=Status.ERROR if error else Status.FAIL if failed else rng.choice([Status.PASS, Status.SKIP]),
            description=sentence(rng, rng.randint(0, 60)), dtype=rng.choice(["float64", "float32"]),
            error=ErrorInfo(sentence(rng, 8), Location("s.yaml", 3, 4)) if error else None,
            output_name="f", output_value=np.array(rng.random()) if rng.random() < 0.7 else None, nodes=nodes,
            notes=[sentence(rng, 6) for _ in range(rng.randint(0, 2))],
            suspects=[Suspect("dot", "mul", 1, "x0", sentence(rng, 5))] if failed and rng.random() < 0.5 else [],
            expectations=[ExpectResult("grad w0", np.array([0.2]), np.array([0.25]), rng.random() < 0.5, 0.05,
                                       Location("s.yaml", 9, 3))]))
    return RunResult(specs)


def drawn_by_rich(run: RunResult, options: RenderOptions, width: int) -> str:
    """Rich's drawing on a console as the command makes it for a pipe (no terminal: no styles)."""
    buffer = io.StringIO()
    console = Console(file=buffer, highlight=False, emoji=False, soft_wrap=False, width=width)
    assert not console.is_terminal
    table.draw(console, table.report_blocks(run, options))
    return without_trailing_spaces(buffer.getvalue())


def test_the_table_laid_out_without_rich_is_what_rich_prints():
    rng = random.Random(12)
    laid_out = 0
    for case in range(150):
        run = a_run(rng)
        options = RenderOptions(verbose=rng.random() < 0.4, quiet=rng.random() < 0.2, errors_inline=rng.random() < 0.5)
        width = rng.choice([24, 40, 60, 80, 100, 120, 160])
        text = table.plain_text(run, options, width)
        if text is not None:
            laid_out += 1
            assert text == drawn_by_rich(run, options, width), case
    assert laid_out > 50  # most of them: the comparison is not vacuous


@pytest.mark.parametrize("unusual", ["é", "漢字", "\u0301", "ｗｉｄｅ"])
def test_text_that_may_not_be_one_cell_a_character_is_left_to_rich(unusual):
    run = a_run(random.Random(3), unusual)
    assert table.plain_text(run, RenderOptions(), 120) is None


def test_a_word_longer_than_a_line_and_a_table_wider_than_the_console_are_left_to_rich():
    run = a_run(random.Random(5))
    del run.specs[1:]  # its grid is 117 columns wide
    run.specs[0].description = "x" * 119
    assert table.plain_text(run, RenderOptions(), 120) is None
    run.specs[0].description = "x" * 118  # indented by two: it just fits
    assert table.plain_text(run, RenderOptions(), 120) is not None
    assert table.plain_text(run, RenderOptions(), 30) is None  # the node table cannot be 30 columns wide


class Stream:
    def __init__(self, terminal: bool):
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


@pytest.mark.parametrize(("environment", "color", "terminal", "width"), [
    ({}, "auto", False, 120), ({}, "never", True, 120), ({}, "auto", True, None), ({}, "always", False, None),
    ({"COLUMNS": "72"}, "auto", False, 72), ({"COLUMNS": "wide"}, "auto", False, None),
    ({"FORCE_COLOR": "1"}, "auto", False, None), ({"FORCE_COLOR": ""}, "auto", False, None),
    ({"TTY_COMPATIBLE": "0"}, "auto", False, None), ({"FORCE_COLOR": "1"}, "never", False, 120),
])
def test_the_table_is_laid_out_plainly_only_where_rich_would_draw_no_styles(monkeypatch, environment, color, terminal,
                                                                            width):
    for name in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("gradcheck.cli.terminal_width", lambda: None)
    stream = Stream(terminal)
    assert _plain_console_width(stream, color) == width
    if width is not None:  # then Rich, given the stream, sees no terminal either
        console = Console(file=stream, force_terminal={"never": False}.get(color))  # type: ignore[arg-type]
        assert not console.is_terminal and console.color_system is None


def test_a_column_minimum_width_is_kept_as_rich_keeps_it():
    grid = table.Grid([table.Column("a"), table.Column("b", min_width=9), table.Column("c", justify="right")])
    grid.rows.append([table.Line("x"), "y", table.Line("z")])
    buffer = io.StringIO()
    Console(file=buffer, width=40).print(table.rich_table(grid))
    assert table.grid_lines(grid, 40) == without_trailing_spaces(buffer.getvalue()).splitlines() == \
        ["a  b          c", "x  y          z"]


def test_a_table_rendered_to_text_without_colour_is_laid_out_without_rich(monkeypatch):
    run = a_run(random.Random(5))
    del run.specs[1:]
    options = RenderOptions(color=False)
    expected = drawn_by_rich(run, options, options.width)
    monkeypatch.setattr(table, "draw", lambda console, blocks: pytest.fail("drawn by rich"))
    assert table.render(run, options) == expected
