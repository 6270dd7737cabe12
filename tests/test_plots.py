"""Tests of the figure helpers in kdutils.plots: what they draw and how they reject bad input."""

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot's first import

import matplotlib.pyplot as plt
import pytest
import torch

from kdutils.plots import most_confident_mistakes, plot_class_balance, show_confident_mistakes

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


# --- most_confident_mistakes ------------------------------------------------------------------

# Rows 0 and 3 are right; rows 1, 2 and 4 are wrong with different confidence.
LOGITS = torch.tensor([
    [5.0, 0.0, 0.0],   # predicts 0, label 0: right
    [0.0, 1.0, 0.0],   # predicts 1, label 0: wrong, unsure
    [0.0, 0.0, 9.0],   # predicts 2, label 1: wrong, very sure
    [0.0, 7.0, 0.0],   # predicts 1, label 1: right
    [0.0, 4.0, 0.0],   # predicts 1, label 2: wrong, fairly sure
])
LABELS = torch.tensor([0, 0, 1, 1, 2])


def test_mistakes_are_the_wrong_predictions_surest_first():
    indices, confidence = most_confident_mistakes(LOGITS, LABELS, k=10)
    assert indices.tolist() == [2, 4, 1]  # only wrong rows, fewer than k when there are fewer mistakes
    assert torch.allclose(confidence, LOGITS[indices].softmax(dim=1).max(dim=1).values)
    assert bool((confidence[:-1] >= confidence[1:]).all())


def test_mistakes_keep_only_k_and_keep_ties_in_order():
    assert most_confident_mistakes(LOGITS, LABELS, k=2)[0].tolist() == [2, 4]
    tied = torch.tensor([[0.0, 3.0], [0.0, 3.0], [0.0, 3.0]])
    assert most_confident_mistakes(tied, torch.zeros(3, dtype=torch.long), k=3)[0].tolist() == [0, 1, 2]


def test_no_mistakes_gives_empty_results():
    indices, confidence = most_confident_mistakes(LOGITS[[0, 3]], LABELS[[0, 3]])
    assert indices.numel() == 0 and confidence.numel() == 0


@pytest.mark.parametrize(
    "logits, labels",
    [(torch.zeros(5), LABELS), (LOGITS, LABELS[:4]), (LOGITS, LABELS.reshape(5, 1))],
)
def test_mistakes_reject_mismatched_shapes(logits, labels):
    with pytest.raises(ValueError, match=r"expected logits of shape \(N, classes\) and labels of shape \(N,\)"):
        most_confident_mistakes(logits, labels)


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_mistakes_reject_a_bad_k(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        most_confident_mistakes(LOGITS, LABELS, k=k)


# --- show_confident_mistakes ------------------------------------------------------------------


def test_confident_mistakes_grid_captions_prediction_confidence_and_truth():
    images = torch.rand(5, 1, 28, 28)
    fig = show_confident_mistakes(images, LOGITS, LABELS, CLASSES, k=2, ncols=2, title="Teacher's mistakes")
    captions = [ax.get_title() for ax in fig.axes]
    surest = 100 * LOGITS[2].softmax(dim=0).max().item()
    assert captions == [f"two {surest:.0f}%\ntrue: one", f"one {100 * LOGITS[4].softmax(dim=0).max():.0f}%\ntrue: two"]
    assert fig._suptitle.get_text() == "Teacher's mistakes"
    shown = fig.axes[0].get_images()[0].get_array()
    assert torch.allclose(torch.as_tensor(shown.data), images[2, 0])  # the image of the surest mistake


def test_confident_mistakes_grid_needs_a_mistake():
    with pytest.raises(ValueError, match="no mistakes to show"):
        show_confident_mistakes(torch.rand(2, 1, 28, 28), LOGITS[[0, 3]], LABELS[[0, 3]], CLASSES)
