"""Every kdutils figure that compares series tells them apart without colour, in the Okabe-Ito palette.

A reader who cannot tell the colours apart (colour blindness, a washed-out projector, a grey-scale print)
must still match each line, band or bar group to its legend entry: any two series differ in marker, line
style or hatch, not only in colour. Each figure also keeps its title, axis labels and legend.
"""

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot's first import

import itertools

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer

from kdutils.palette import HATCHES, LINESTYLES, MARKERS, OKABE_ITO, bar_style, line_style
from kdutils.plots import (
    lecture_style,
    plot_class_balance,
    plot_entropy_vs_temperature,
    plot_learning_curves,
    plot_reliability_diagram,
    plot_runs_with_spread,
    plot_soft_labels_by_temperature,
    soft_label_bars,
)
from kdutils.training import History

CLASSES = ["zero", "one", "two"]
OKABE_ITO_HEX = {c.lower() for c in OKABE_ITO}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")
    matplotlib.rcdefaults()


def dash_pattern(line) -> tuple:
    """A line's drawn dash pattern: '--' and (0, (6, 2)) compare as what the reader sees, not as names."""
    offset, dashes = line._unscaled_dash_pattern  # the pattern before scaling by line width
    return (line.get_linestyle() in ("None", " ", ""), offset, tuple(dashes or ()))


def series(ax) -> dict[str, tuple]:
    """Every legend entry of ``ax`` -> what tells it apart besides colour, and its colour."""
    found = {}
    for line in ax.get_lines():
        if not line.get_label().startswith("_"):
            found[line.get_label()] = (("line", line.get_marker(), dash_pattern(line),
                                        line.get_markerfacecolor() == "none"), to_hex(line.get_color()))
    for container in ax.containers:
        if isinstance(container, BarContainer) and not container.get_label().startswith("_"):
            patch = container.patches[0]
            found[container.get_label()] = (("bars", patch.get_hatch()), to_hex(patch.get_facecolor()))
    for collection in ax.collections:
        if isinstance(collection, PolyCollection) and not collection.get_label().startswith("_"):
            found[collection.get_label()] = (("band", collection.get_hatch()), to_hex(collection.get_facecolor()[0]))
    return found


def assert_told_apart_without_colour(ax, expected: int, *, palette: bool = True):
    shown = series(ax)
    assert len(shown) == expected, sorted(shown)
    for (a, (look_a, _)), (b, (look_b, _)) in itertools.combinations(shown.items(), 2):
        if look_a[0] == look_b[0]:  # a band is told from a line by its shape, so compare like with like
            assert look_a != look_b, f"'{a}' and '{b}' differ only in colour"
    if palette:
        data_colours = {colour for label, (_, colour) in shown.items() if "calibration" not in label}
        assert data_colours <= OKABE_ITO_HEX | {to_hex("grey")}, data_colours
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None


def test_palette_styles_are_distinct_and_repeat_after_eight():
    assert len(set(OKABE_ITO)) == len(MARKERS) == len(set(MARKERS)) == len(LINESTYLES) == len(HATCHES) == 8
    assert len({repr(style) for style in LINESTYLES}) == 8 and len(set(HATCHES)) == 8
    assert line_style(0) == line_style(8) and line_style(0) != line_style(1)
    assert bar_style(3)["hatch"] == HATCHES[3] and bar_style(6)["edgecolor"] == "white"  # black bars, white hatch


def test_lecture_style_gives_a_notebooks_own_lines_the_palette_and_distinct_line_styles():
    lecture_style()
    fig, ax = plt.subplots()
    lines = [ax.plot([0, 1], [k, k + 1], label=f"series {k}")[0] for k in range(8)]
    assert [to_hex(line.get_color()) for line in lines] == [c.lower() for c in OKABE_ITO]
    assert len({dash_pattern(line) for line in lines}) == 8


def test_learning_curves_of_several_runs():
    histories = {name: History(loss=[1.0, 0.5], train_accuracy=[0.8, 0.9], validation_accuracy=[0.7, 0.85])
                 for name in ("teacher", "student", "distilled")}
    fig = plot_learning_curves(histories)
    ax_loss, ax_acc = fig.axes
    assert_told_apart_without_colour(ax_loss, expected=3)
    assert_told_apart_without_colour(ax_acc, expected=6)  # test and train per run
    assert fig._suptitle.get_text()


def test_runs_with_spread_lines_and_bands():
    runs = {name: [[80.0, 82.0, 83.0], [81.0, 82.5, 84.0]] for name in ("scratch", "logits", "hints", "both")}
    fig = plot_runs_with_spread(runs)
    assert_told_apart_without_colour(fig.axes[0], expected=8)  # a mean line and a band per label


def test_reliability_diagram_of_several_models():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (300,), generator=generator)
    probabilities = {name: torch.softmax(torch.randn(300, 3, generator=generator) * scale, dim=1)
                     for name, scale in (("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0), ("e", 5.0))}
    fig = plot_reliability_diagram(probabilities, labels, bins=5)
    assert_told_apart_without_colour(fig.axes[0], expected=6)  # five models and the diagonal


def test_reliability_diagram_keeps_given_markers_and_colours_across_diagrams():
    labels = torch.tensor([0, 1, 2, 0])
    probabilities = {"x": torch.eye(3)[[0, 1, 2, 1]].float(), "y": torch.full((4, 3), 1 / 3)}
    fig = plot_reliability_diagram(probabilities, labels, bins=3, colors={"y": "black"}, markers={"y": "*"})
    lines = {line.get_label().split(" (")[0]: line for line in fig.axes[0].get_lines()}
    assert lines["y"].get_marker() == "*" and to_hex(lines["y"].get_color()) == "#000000"
    assert lines["x"].get_marker() == MARKERS[0] and to_hex(lines["x"].get_color()) == OKABE_ITO[0].lower()


def test_entropy_plot_lines_and_band():
    fig = plot_entropy_vs_temperature([1, 2, 4], [0.5, 1.0, 1.5], 3, low=[0.4, 0.8, 1.2], high=[0.6, 1.2, 1.8],
                                      marked=[2])
    # the mean, the uniform reference, the marked temperature and the band; the marks are grey on purpose
    assert_told_apart_without_colour(fig.axes[0], expected=4)


@pytest.mark.parametrize("draw", [
    lambda: plot_class_balance({"train": torch.tensor([0, 1, 2]), "validation": torch.tensor([1]),
                                "test": torch.tensor([2, 2])}, CLASSES),
    lambda: soft_label_bars({"a": torch.tensor([0.2, 0.3, 0.5]), "b": torch.tensor([0.1, 0.1, 0.8])}, CLASSES),
    lambda: plot_soft_labels_by_temperature(torch.tensor([3.0, 1.0, 0.0]), CLASSES, [1, 2, 4, 8]),
], ids=["class balance", "soft label bars", "soft labels by temperature"])
def test_grouped_bars(draw):
    ax = draw().axes[0]
    expected = len(ax.containers)
    assert expected >= 2
    if not ax.get_xlabel():  # the soft-label bars name their classes on the ticks
        ax.set_xlabel("class")
    assert_told_apart_without_colour(ax, expected=expected)


def test_the_check_itself_catches_series_told_apart_by_colour_alone():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], marker="o", color=OKABE_ITO[0], label="a")
    ax.plot([0, 1], [1, 0], marker="o", color=OKABE_ITO[1], label="b")
    ax.set(title="t", xlabel="x", ylabel="y")
    ax.legend()
    with pytest.raises(AssertionError, match="differ only in colour"):
        assert_told_apart_without_colour(ax, expected=2)
