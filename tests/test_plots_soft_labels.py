"""Unit tests for the soft-label figures of notebooks 03 and 04 (kdutils.plots)."""

import math

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot's first import

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from kdutils.plots import (
    mean_soft_labels_by_class,
    plot_class_similarity,
    plot_entropy_vs_temperature,
    plot_runs_with_spread,
    plot_soft_labels_by_temperature,
)

CLASSES = [f"class {i}" for i in range(3)]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ---- mean_soft_labels_by_class ---------------------------------------------------------------


def test_mean_soft_labels_averages_rows_per_true_class():
    probabilities = torch.tensor([
        [0.8, 0.2, 0.0],
        [0.6, 0.2, 0.2],  # class 0: mean (0.7, 0.2, 0.1)
        [0.1, 0.9, 0.0],  # class 1
        [0.0, 0.5, 0.5],  # class 2
        [0.2, 0.0, 0.8],  # class 2: mean (0.1, 0.25, 0.65)
    ])
    labels = torch.tensor([0, 0, 1, 2, 2])
    matrix = mean_soft_labels_by_class(probabilities, labels, num_classes=3)
    expected = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.9, 0.0], [0.1, 0.25, 0.65]])
    assert matrix.shape == (3, 3) and matrix.dtype == probabilities.dtype
    assert torch.allclose(matrix, expected)
    assert torch.allclose(matrix.sum(dim=1), torch.ones(3))


def test_mean_soft_labels_ignores_example_order():
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.softmax(torch.randn(50, 3, generator=generator), dim=1)
    labels = torch.arange(50) % 3
    order = torch.randperm(50, generator=generator)
    assert torch.allclose(mean_soft_labels_by_class(probabilities, labels, 3),
                          mean_soft_labels_by_class(probabilities[order], labels[order], 3))


def test_mean_soft_labels_rejects_a_class_with_no_examples():
    with pytest.raises(ValueError, match=r"classes \[2\] have no examples"):
        mean_soft_labels_by_class(torch.full((2, 3), 1 / 3), torch.tensor([0, 1]), num_classes=3)


@pytest.mark.parametrize(
    ("probabilities", "labels", "message"),
    [
        (torch.full((4, 2), 0.5), torch.tensor([0, 1, 2, 0]), r"must be \(N, 3\)"),
        (torch.full((4,), 0.25), torch.tensor([0, 1, 2, 0]), r"must be \(N, 3\)"),
        (torch.full((4, 3), 1 / 3), torch.tensor([0, 1, 2]), "one class index per row"),
        (torch.full((4, 3), 1 / 3), torch.tensor([[0, 1, 2, 0]]), "one class index per row"),
        (torch.full((4, 3), 1 / 3), torch.tensor([0, 1, 3, 0]), r"must lie in \[0, 3\)"),
        (torch.full((4, 3), 1 / 3), torch.tensor([0, 1, 2, -100]), "leave unlabelled examples"),
    ],
)
def test_mean_soft_labels_rejects_bad_input(probabilities, labels, message):
    with pytest.raises(ValueError, match=message):
        mean_soft_labels_by_class(probabilities, labels, num_classes=3)


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
