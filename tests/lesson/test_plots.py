"""Tests of the figure helpers in kdutils.plots: what they draw and how they reject bad input."""

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot's first import

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from kdutils.palette import OKABE_ITO
from kdutils.plots import (
    annotated_heatmap,
    lecture_style,
    plot_class_balance,
    plot_class_similarity,
    plot_confusion_matrix,
    plot_entropy_vs_temperature,
    plot_learning_curves,
    plot_reliability_diagram,
    plot_runs_with_spread,
    plot_soft_labels_by_temperature,
    show_confident_mistakes,
    show_images,
    soft_label_bars,
)
from kdutils.training import History

from ..helpers import LABELS, LOGITS

CLASSES = ["zero", "one", "two"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- plot_class_balance -----------------------------------------------------------------------


def test_class_balance_draws_one_bar_per_class_and_split():
    fig = plot_class_balance({"train": torch.tensor([0, 0, 1, 2, 2, 2]), "test": torch.tensor([1, 1])}, CLASSES)
    ax = fig.axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == [2, 1, 3, 0, 2, 0]  # train bars, then test bars, in class order
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train (6 images)", "test (2 images)"]
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


@pytest.mark.parametrize("bad", [torch.tensor([0, 3]), torch.tensor([0, -100])])
def test_class_balance_rejects_labels_outside_the_classes(bad):
    with pytest.raises(ValueError, match=r"'train' has labels outside 0\.\.2"):
        plot_class_balance({"train": bad}, CLASSES)


def test_class_balance_needs_at_least_one_split():
    with pytest.raises(ValueError, match="at least one split"):
        plot_class_balance({}, CLASSES)


# --- show_confident_mistakes ------------------------------------------------------------------


def test_confident_mistakes_grid_captions_prediction_confidence_and_truth():
    images = torch.rand(5, 1, 28, 28)
    fig = show_confident_mistakes(images, LOGITS, LABELS, CLASSES, k=2, ncols=2, title="Teacher's mistakes")
    captions = [ax.get_title() for ax in fig.axes]
    assert LOGITS[2].softmax(dim=0).max() > 0.999  # shown as >99.9%, never as a rounded "100%"
    assert captions == ["two >99.9%\ntrue: one", f"one {100 * LOGITS[4].softmax(dim=0).max():.1f}%\ntrue: two"]
    assert fig._suptitle.get_text() == "Teacher's mistakes"
    shown = fig.axes[0].get_images()[0].get_array()
    assert torch.allclose(torch.as_tensor(shown.data), images[2, 0])  # the image of the surest mistake


def test_confident_mistakes_grid_needs_a_mistake():
    with pytest.raises(ValueError, match="no mistakes to show"):
        show_confident_mistakes(torch.rand(2, 1, 28, 28), LOGITS[[0, 3]], LABELS[[0, 3]], CLASSES)


# ---- plot_class_similarity -----------------------------------------------------------------


def test_class_similarity_colours_only_the_off_diagonal_and_annotates_every_cell():
    matrix = torch.tensor([[0.90, 0.08, 0.02], [0.30, 0.60, 0.10], [0.004, 0.046, 0.95]])
    fig = plot_class_similarity(matrix, CLASSES, title="similarity")
    ax = fig.axes[0]
    assert ax.get_title() == "similarity"
    assert ax.get_xlabel() and ax.get_ylabel()
    coloured = ax.images[-1].get_array()
    assert coloured.mask.diagonal().all() and not coloured.mask[0, 1]
    assert ax.images[-1].get_clim()[1] == pytest.approx(30.0)  # the scale is set by the off-diagonal maximum
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 9
    assert {"90", "8", "30", "95"} <= set(texts)
    assert "0.4" in texts  # values under 0.5% keep one decimal instead of showing as 0


@pytest.mark.parametrize("shape", [(2, 2), (3, 2), (9,)])
def test_class_similarity_rejects_a_matrix_of_the_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"must be \(3, 3\) for 3 classes"):
        plot_class_similarity(torch.zeros(shape), CLASSES)


# ---- plot_soft_labels_by_temperature -------------------------------------------------------


def test_soft_labels_by_temperature_draws_one_bar_group_per_temperature():
    logits = torch.tensor([3.0, 1.0, 0.0])
    fig = plot_soft_labels_by_temperature(logits, CLASSES, [1, 4, 20])
    ax = fig.axes[0]
    assert len(ax.containers) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["T = 1", "T = 4", "T = 20"]
    heights = [[bar.get_height() for bar in group] for group in ax.containers]
    for T, group in zip([1, 4, 20], heights):
        assert group == pytest.approx(torch.softmax(logits / T, dim=0).tolist(), abs=1e-6)
    assert heights[0][0] > heights[1][0] > heights[2][0]  # a higher T flattens the top class


def test_soft_labels_by_temperature_draws_into_a_given_axis():
    fig, axes = plt.subplots(1, 2)
    returned = plot_soft_labels_by_temperature(torch.zeros(1, 3), CLASSES, [2.0], ax=axes[1], title="right")
    assert returned is fig
    assert axes[1].get_title() == "right" and not axes[0].containers


@pytest.mark.parametrize(
    ("logits", "temperatures", "message"),
    [
        (torch.zeros(4), [1.0], "3 numbers, got 4"),
        (torch.zeros(2, 3), [1.0], "3 numbers, got 6"),
        (torch.zeros(3), [], "at least one temperature"),
        (torch.zeros(3), [1.0, 0.0], "finite numbers > 0"),
        (torch.zeros(3), [-2.0], "finite numbers > 0"),
        (torch.zeros(3), [math.inf], "finite numbers > 0"),
        (torch.zeros(3), ["4"], "finite numbers > 0"),
    ],
)
def test_soft_labels_by_temperature_rejects_bad_input(logits, temperatures, message):
    with pytest.raises(ValueError, match=message):
        plot_soft_labels_by_temperature(logits, CLASSES, temperatures)


# ---- plot_entropy_vs_temperature -----------------------------------------------------------


def test_entropy_plot_draws_curve_band_reference_and_marks():
    temperatures = [0.5, 1.0, 2.0, 4.0]
    fig = plot_entropy_vs_temperature(temperatures, [0.1, 0.3, 0.9, 1.8], num_classes=10, low=[0, 0.1, 0.5, 1.5],
                                      high=[0.2, 0.6, 1.3, 2.1], marked=[1.0, 2.0], title="entropy")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_title() == "entropy"
    assert ax.get_xlabel() and ax.get_ylabel()
    reference = [line for line in ax.lines if "log(10)" in str(line.get_label())]
    assert len(reference) == 1 and reference[0].get_ydata()[0] == pytest.approx(math.log(10))
    assert len(ax.collections) == 1  # the band
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "mean entropy" in labels and labels.count("temperatures shown above") == 1
    assert ax.get_ylim()[1] > math.log(10)


def test_entropy_plot_without_band():
    fig = plot_entropy_vs_temperature(np.array([1.0, 2.0]), np.array([0.5, 0.6]), num_classes=3)
    assert not fig.axes[0].collections


@pytest.mark.parametrize(
    ("temperatures", "entropies", "extra", "message"),
    [
        ([1.0, 2.0], [0.5], {}, "equally long"),
        ([], [], {}, "equally long"),
        ([0.0, 2.0], [0.5, 0.6], {}, "must be > 0"),
        ([1.0, 2.0], [0.5, 0.6], {"low": [0.4, 0.5]}, "both low and high"),
    ],
)
def test_entropy_plot_rejects_bad_input(temperatures, entropies, extra, message):
    with pytest.raises(ValueError, match=message):
        plot_entropy_vs_temperature(temperatures, entropies, num_classes=10, **extra)


# ---- plot_runs_with_spread -------------------------------------------------------------------


def test_runs_with_spread_draws_the_mean_and_a_one_std_band():
    runs = {"scratch": [[80.0, 84.0], [82.0, 86.0], [84.0, 88.0]], "distilled": [[81.0, 85.0], [81.0, 85.0]]}
    fig = plot_runs_with_spread(runs, title="curves")
    ax = fig.axes[0]
    means = {line.get_label(): line.get_ydata() for line in ax.lines}
    assert list(means["scratch (mean of 3)"]) == pytest.approx([82.0, 86.0])
    assert list(means["distilled (mean of 2)"]) == pytest.approx([81.0, 85.0])
    assert list(ax.lines[0].get_xdata()) == [1, 2]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(80.0) and band.max() == pytest.approx(88.0)  # mean ± sample std (2)
    assert ax.get_title() == "curves" and ax.get_xlabel() == "epoch"


def test_runs_with_spread_single_run_has_a_flat_band():
    fig = plot_runs_with_spread({"one seed": [[1.0, 2.0, 3.0]]})
    band = fig.axes[0].collections[0].get_paths()[0].vertices[:, 1]
    assert set(np.round(band, 6)) <= {1.0, 2.0, 3.0}


@pytest.mark.parametrize(
    ("runs", "message"),
    [
        ({}, "at least one label"),
        ({"a": []}, "'a' needs one or more"),
        ({"a": [[1.0, 2.0], [1.0]]}, "equal length"),
        ({"a": [[]]}, "non-empty"),
    ],
)
def test_runs_with_spread_rejects_bad_input(runs, message):
    with pytest.raises(ValueError, match=message):
        plot_runs_with_spread(runs)


# --- plot_confusion_matrix --------------------------------------------------------------------


def test_confusion_matrix_colours_only_the_mistakes_and_annotates_row_percentages():
    matrix = torch.tensor([[8, 2, 0], [1, 9, 0], [0, 5, 5]])
    fig = plot_confusion_matrix(matrix, CLASSES, title="confusions")
    ax = fig.axes[0]
    coloured = ax.images[-1].get_array()
    assert coloured.mask.diagonal().all() and not coloured.mask[0, 1]  # the diagonal is not on the colour scale
    assert coloured[2, 1] == 50 and coloured[0, 1] == 20
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["80", "20", "0", "10", "90", "0", "0", "50", "50"]
    assert ax.get_title() == "confusions" and ax.get_xlabel() == "predicted class"
    with pytest.raises(ValueError, match=r"must be \(3, 3\)"):
        plot_confusion_matrix(torch.zeros(2, 2), CLASSES)


# --- plot_reliability_diagram ---------------------------------------------------------------------------


def test_reliability_diagram_draws_one_line_per_model_with_its_ece_and_the_diagonal():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    sure = torch.tensor([[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 2)
    unsure = torch.tensor([[0.55, 0.45]] * 3 + [[0.45, 0.55]] * 3)
    fig = plot_reliability_diagram({"sure": sure, "unsure": unsure}, labels, bins=10, title="Two models")
    ax = fig.axes[0]
    assert ax.get_title() == "Two models" and ax.get_xlabel() and ax.get_ylabel()
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    assert names[0] == "perfect calibration"
    assert names[1].startswith("sure (ECE ") and names[2].startswith("unsure (ECE 0.450)")
    line = ax.get_lines()[1]  # the "sure" model: two non-empty bins, drawn at (confidence, accuracy)
    assert np.allclose(line.get_xdata(), [0.6, 0.9]) and np.allclose(line.get_ydata(), [1.0, 0.75])


def test_reliability_diagram_leaves_out_bins_with_few_predictions_but_not_from_the_ece():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    sure = torch.tensor([[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 2)
    everything = plot_reliability_diagram({"sure": sure}, labels, bins=10).axes[0]
    fig = plot_reliability_diagram({"sure": sure}, labels, bins=10, min_count=3)
    line = fig.axes[0].get_lines()[1]
    assert np.allclose(line.get_xdata(), [0.9]) and np.allclose(line.get_ydata(), [0.75])  # the bin of 2 is left out
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()][1]
    assert legend == [t.get_text() for t in everything.get_legend().get_texts()][1]  # same ECE


def test_reliability_diagram_keeps_given_colours_and_starts_the_axes_where_asked():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    sure = torch.tensor([[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 2)
    unsure = torch.tensor([[0.55, 0.45]] * 3 + [[0.45, 0.55]] * 3)
    colours = {"unsure": "tab:red", "sure": "tab:green"}
    for order in (["sure", "unsure"], ["unsure", "sure"]):  # the colour follows the name, not the position
        ax = plot_reliability_diagram({name: {"sure": sure, "unsure": unsure}[name] for name in order}, labels,
                                      bins=10, colors=colours, start=0.4).axes[0]
        for line, name in zip(ax.get_lines()[1:], order):
            assert matplotlib.colors.same_color(line.get_color(), colours[name])
        assert ax.get_xlim() == (0.4, 1.0) and ax.get_ylim() == (0.4, 1.0)
    with pytest.raises(ValueError, match="start"):
        plot_reliability_diagram({"sure": sure}, labels, start=1.0)


def test_reliability_diagram_rejects_nothing_to_plot_and_bad_probabilities():
    with pytest.raises(ValueError, match="at least one"):
        plot_reliability_diagram({}, torch.tensor([0]))
    with pytest.raises(ValueError, match="min_count"):
        plot_reliability_diagram({"a": torch.tensor([[0.5, 0.5]])}, torch.tensor([0]), min_count=0)
    with pytest.raises(ValueError, match="summing to 1"):
        plot_reliability_diagram({"bad": torch.tensor([[2.0, 1.0]])}, torch.tensor([0]))


# --- annotated_heatmap --------------------------------------------------------------------------------


def test_annotated_heatmap_writes_every_value():
    values = torch.tensor([[0.81234, 0.5], [0.25, float("nan")]])
    fig = annotated_heatmap(values, ["T=1", "T=2"], ["0.1", "0.5"], xlabel="alpha", ylabel="T",
                            title="grid", fmt="{:.1%}", colorbar_label="accuracy")
    ax = fig.axes[0]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["25.0%", "50.0%", "81.2%", "–"]
    assert ax.get_xlabel() == "alpha" and ax.get_ylabel() == "T" and ax.get_title() == "grid"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["T=1", "T=2"]
    assert len(fig.axes) == 2  # the colour bar
    plt.close(fig)


def test_annotated_heatmap_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="2 rows and 3 columns"):
        annotated_heatmap(torch.zeros(2, 3), ["a", "b"], ["x", "y"])
    with pytest.raises(ValueError, match="2-D"):
        annotated_heatmap(torch.zeros(3), ["a"], ["x"])


# --- show_images, plot_learning_curves, soft_label_bars, lecture_style -----------------------------------------


def test_show_images_captions_class_names_and_wrong_predictions_in_red():
    images = torch.zeros(3, 1, 28, 28)
    fig = show_images(images, [0, 1, 2], CLASSES, predictions=[0, 2, 2], ncols=2, title="three")
    titles = [(ax.get_title(), ax.title.get_color()) for ax in fig.axes if ax.get_title()]
    assert titles == [("zero", "black"), ("two\n(one)", OKABE_ITO[3]), ("two", "black")]  # vermillion
    assert len(fig.axes) == 4 and fig._suptitle.get_text() == "three"  # a 2 x 2 grid, the fourth cell empty
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        show_images(images, [0, 1], CLASSES)


def test_learning_curves_draw_loss_and_both_accuracies_per_run():
    history = History(loss=[1.0, 0.5], train_accuracy=[0.6, 0.8], validation_accuracy=[0.55, 0.7])
    fig = plot_learning_curves({"teacher": history})
    loss_ax, accuracy_ax = fig.axes
    assert loss_ax.lines[0].get_ydata().tolist() == [1.0, 0.5]
    assert [line.get_label() for line in accuracy_ax.lines] == ["teacher (validation)", "teacher (train)"]
    assert accuracy_ax.lines[0].get_ydata().tolist() == pytest.approx([55.0, 70.0])
    with pytest.raises(ValueError, match="at least one History"):
        plot_learning_curves({})


def test_soft_label_bars_group_one_bar_per_class_and_distribution():
    fig = soft_label_bars({"teacher": [0.7, 0.2, 0.1], "student": torch.tensor([0.5, 0.3, 0.2])}, CLASSES)
    bars = fig.axes[0].patches
    assert len(bars) == 6 and [round(b.get_height(), 2) for b in bars[:3]] == [0.7, 0.2, 0.1]
    with pytest.raises(ValueError, match="'teacher' has 2 probabilities for 3 classes"):
        soft_label_bars({"teacher": [0.5, 0.5]}, CLASSES)


def test_lecture_style_enlarges_the_fonts():
    with matplotlib.rc_context():
        lecture_style()
        assert matplotlib.rcParams["font.size"] == 12 and matplotlib.rcParams["axes.titlesize"] == 14


def test_entropy_plot_labels_each_marked_temperature_above_the_uniform_line_clear_of_the_legend():
    # The labels once sat at the bottom, over the curve's band and under the legend, where they could not be read.
    marked = [1.0, 8.0, 20.0]
    fig = plot_entropy_vs_temperature([0.5, 1.0, 8.0, 20.0, 50.0], [0.1, 0.3, 1.5, 2.1, 2.25], num_classes=10,
                                      low=[0.0, 0.1, 1.0, 1.9, 2.2], high=[0.2, 0.6, 1.9, 2.2, 2.28], marked=marked)
    ax = fig.axes[0]
    labels = {text.get_text(): text for text in ax.texts}
    assert sorted(labels) == ["T = 1", "T = 20", "T = 8"]
    fig.canvas.draw()
    legend_box = ax.get_legend().get_window_extent()
    for T in marked:
        text = labels[f"T = {T:g}"]
        x, y = text.xy
        assert x == T and math.log(10) < y < ax.get_ylim()[1]  # in the strip above the uniform distribution's line
        assert not text.get_window_extent().overlaps(legend_box)
