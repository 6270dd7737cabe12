import copy

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from kdutils.data import Split
from kdutils.losses import IGNORE_LABEL
from kdutils.models import StudentModel
from kdutils.repro import seed_everything
from kdutils.training import predict_logits, train
from kdutils.transfer import (
    add_to_bias,
    balanced_subset,
    calibrate_bias,
    complement,
    gap_closed,
    hide_labels,
    without_class,
)


@pytest.fixture
def labels():
    """30 examples of each of 10 classes, in a scrambled order."""
    return (torch.arange(300) % 10)[torch.randperm(300, generator=torch.Generator().manual_seed(5))]


# --- balanced_subset --------------------------------------------------------------------------------


def test_balanced_subset_takes_n_over_c_of_each_class(labels):
    chosen = balanced_subset(labels, 50, seed=1)
    assert chosen.shape == (50,) and chosen.dtype == torch.int64
    assert torch.equal(chosen, chosen.sort().values)
    assert chosen.unique().numel() == 50
    assert torch.equal(torch.bincount(labels[chosen], minlength=10), torch.full((10,), 5))


def test_balanced_subset_depends_only_on_the_seed(labels):
    assert torch.equal(balanced_subset(labels, 20, seed=3), balanced_subset(labels, 20, seed=3))
    assert not torch.equal(balanced_subset(labels, 20, seed=3), balanced_subset(labels, 20, seed=4))


def test_balanced_subset_can_take_everything(labels):
    assert torch.equal(balanced_subset(labels, 300), torch.arange(300))


def test_balanced_subset_ignores_unlabelled_examples(labels):
    partly = labels.clone()
    partly[:100] = IGNORE_LABEL
    chosen = balanced_subset(partly, 40)
    assert (partly[chosen] != IGNORE_LABEL).all()


@pytest.mark.parametrize(
    ("n", "message"),
    [
        (301, "larger than the 300 examples"),
        (55, "multiple of 10"),
        (5, "multiple of 10"),
        (0, "positive integer"),
        (-10, "positive integer"),
        (10.0, "positive integer"),
        (True, "positive integer"),
    ],
)
def test_balanced_subset_rejects_bad_n(labels, n, message):
    with pytest.raises(ValueError, match=message):
        balanced_subset(labels, n)


def test_balanced_subset_says_which_class_is_too_small():
    labels = torch.tensor([0] * 10 + [1] * 3)
    with pytest.raises(ValueError, match=r"class 1 has only 3 examples.*n <= 6"):
        balanced_subset(labels, 10)


@pytest.mark.parametrize(
    "bad", [torch.tensor([], dtype=torch.int64), torch.zeros(3, 2, dtype=torch.int64), torch.zeros(4), [0, 1]]
)
def test_balanced_subset_rejects_bad_labels(bad):
    with pytest.raises(ValueError, match="labels"):
        balanced_subset(bad, 2)


def test_balanced_subset_needs_some_labelled_examples():
    with pytest.raises(ValueError, match="only IGNORE_LABEL"):
        balanced_subset(torch.full((5,), IGNORE_LABEL), 1)


# --- complement and hide_labels -----------------------------------------------------------------------


def test_complement_is_the_rest():
    assert torch.equal(complement(torch.tensor([4, 0, 2]), 6), torch.tensor([1, 3, 5]))
    assert complement(torch.arange(3), 3).numel() == 0


@pytest.mark.parametrize(("bad", "message"), [([0, 6], r"\[0, 6\)"), ([-1], r"\[0, 6\)"), ([1, 1], "repeated")])
def test_complement_rejects_bad_positions(bad, message):
    with pytest.raises(ValueError, match=message):
        complement(torch.tensor(bad), 6)


def test_hide_labels_keeps_every_image_and_only_the_chosen_labels(toy_split):
    chosen = torch.tensor([0, 7, 399])
    transfer = hide_labels(toy_split, chosen)
    assert transfer.x is toy_split.x  # the images are shared, not copied
    assert torch.equal(transfer.y[chosen], toy_split.y[chosen])
    assert int((transfer.y != IGNORE_LABEL).sum()) == 3
    assert toy_split.y.min() >= 0  # the original labels are untouched


def test_hide_labels_rejects_bad_input(toy_split):
    with pytest.raises(ValueError, match=r"\[0, 400\)"):
        hide_labels(toy_split, torch.tensor([400]))
    with pytest.raises(ValueError, match="integer positions"):
        hide_labels(toy_split, torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="Split"):
        hide_labels((toy_split.x, toy_split.y), torch.tensor([0]))


def test_a_transfer_set_with_hidden_labels_trains_only_with_a_teacher(toy_split):
    transfer = hide_labels(toy_split, balanced_subset(toy_split.y, 20))
    seed_everything(0)
    student = StudentModel()
    with pytest.raises(ValueError, match="need a teacher"):
        train(student, transfer, epochs=1, progress=False)
    seed_everything(1)
    teacher = StudentModel()
    train(teacher, toy_split, epochs=5, batch_size=32, progress=False)
    teacher_logits = predict_logits(teacher, toy_split.x)
    with_transfer, labelled_only = copy.deepcopy(student), copy.deepcopy(student)
    train(with_transfer, transfer, epochs=5, batch_size=32, teacher_logits=teacher_logits, progress=False)
    labelled = balanced_subset(toy_split.y, 20)
    train(labelled_only, toy_split.subset(labelled), epochs=5, batch_size=32, progress=False)
    # The 380 images without labels teach through the teacher's soft labels: on them, the student's
    # softened outputs end far closer to the teacher's than those of a student of the 20 labels alone.
    unlabelled = complement(labelled, len(toy_split))
    teacher_soft = torch.softmax(teacher_logits[unlabelled] / 4, dim=1)

    def distance_to_teacher(model):
        soft = torch.softmax(predict_logits(model, toy_split.x[unlabelled]) / 4, dim=1)
        return (soft - teacher_soft).abs().sum(dim=1).mean().item()

    assert distance_to_teacher(with_transfer) < 0.5 * distance_to_teacher(labelled_only)


# --- without_class ------------------------------------------------------------------------------------


def test_without_class_removes_every_example_of_the_class(toy_split):
    transfer, kept = without_class(toy_split, 3)
    assert len(transfer) == 360 and (transfer.y != 3).all()
    assert torch.equal(transfer.x, toy_split.x[kept]) and torch.equal(transfer.y, toy_split.y[kept])
    assert (toy_split.y[complement(kept, len(toy_split))] == 3).all()


@pytest.mark.parametrize("bad", [10, -1, "3", 3.0, True])
def test_without_class_rejects_an_unknown_class(toy_split, bad):
    with pytest.raises(ValueError, match=r"class index in \[0, 10\)"):
        without_class(toy_split, bad)


def test_without_class_rejects_a_class_that_is_absent_or_the_only_one():
    only_threes = Split(torch.zeros(4, 784), torch.full((4,), 3))
    with pytest.raises(ValueError, match="does not occur"):
        without_class(only_threes, 5)
    with pytest.raises(ValueError, match="empty transfer set"):
        without_class(only_threes, 3)


# --- calibrate_bias and add_to_bias -------------------------------------------------------------------


def test_calibrate_bias_finds_the_shift_that_recovers_the_omitted_class():
    # Examples of class 2 look like class 0 (logit 3) with some class 2 (logit 1.5): a shift above 1.5
    # recovers them. The other examples score class 2 at 0.5 against 3 for their own class, so a shift
    # above 2.5 starts to break them.
    labels = torch.arange(40) % 4
    logits = torch.zeros(40, 4)
    logits[torch.arange(40), labels] = 3.0
    logits[labels == 2, 0] = 3.0
    logits[:, 2] = torch.where(labels == 2, 1.5, 0.5)
    result = calibrate_bias(logits, labels, 2, torch.arange(0, 4.01, 0.5))
    assert result.shifts[0] == 0.0 and result.accuracy[0] == 0.75 and result.class_accuracy[0] == 0.0
    assert result.best_shift == 2.0  # the smallest shift that makes every example right
    assert result.accuracy[result.best_index] == 1.0 and result.class_accuracy[result.best_index] == 1.0
    assert result.accuracy[-1] == 0.25  # +4 makes class 2 beat every true class
    assert logits[:, 2].max() == 1.5  # the input was not modified


def test_calibrate_bias_rejects_bad_input():
    logits, labels = torch.zeros(6, 3), torch.tensor([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="no example of class 2"):
        calibrate_bias(logits, labels, 2, [0.0, 1.0])
    with pytest.raises(ValueError, match=r"class index in \[0, 3\)"):
        calibrate_bias(logits, labels, 3, [0.0])
    with pytest.raises(ValueError, match="shifts is empty"):
        calibrate_bias(logits, labels, 1, [])
    with pytest.raises(ValueError, match="6 rows but labels has 5"):
        calibrate_bias(logits, labels[:5], 1, [0.0])
    with pytest.raises(ValueError, match="2-D floating point"):
        calibrate_bias(torch.zeros(6, dtype=torch.int64), labels, 1, [0.0])


def test_add_to_bias_shifts_one_logit_of_a_copy():
    seed_everything(0)
    model = StudentModel()
    x = torch.randn(5, 784)
    shifted = add_to_bias(model, 3, 2.5)
    difference = predict_logits(shifted, x) - predict_logits(model, x)
    expected = torch.zeros(5, 10)
    expected[:, 3] = 2.5
    assert torch.allclose(difference, expected, atol=1e-5)
    assert shifted is not model


def test_add_to_bias_rejects_bad_input():
    with pytest.raises(ValueError, match=r"class index in \[0, 10\)"):
        add_to_bias(StudentModel(), 10, 1.0)
    with pytest.raises(ValueError, match="final nn.Linear"):
        add_to_bias(torch.nn.ReLU(), 0, 1.0)
    with pytest.raises(ValueError, match="final nn.Linear"):
        add_to_bias(torch.nn.Linear(4, 2, bias=False), 0, 1.0)


# --- gap_closed ---------------------------------------------------------------------------------------


def test_gap_closed_matches_the_papers_mnist_numbers():
    assert gap_closed(-146, -74, -67) == pytest.approx(72 / 79)  # about 91%
    assert gap_closed(0.80, 0.80, 0.90) == 0.0
    assert gap_closed(0.80, 0.90, 0.90) == pytest.approx(1.0)
    assert gap_closed(0.80, 0.75, 0.90) < 0  # distillation hurt


def test_gap_closed_needs_a_gap():
    with pytest.raises(ValueError, match="no gap"):
        gap_closed(0.9, 0.95, 0.9)
