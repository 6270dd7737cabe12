"""Unit tests for kdutils.analysis: confusions, confident mistakes, soft-label structure, statistics, calibration."""

import math

import pytest
import torch

from kdutils.analysis import (
    agreement,
    confidence_bins,
    confusion_matrix,
    expected_calibration_error,
    fit_temperature,
    mean_kl_divergence,
    mean_soft_labels_by_class,
    most_confident_mistakes,
    paired_difference,
    per_class_accuracy,
    reliability_bins,
    t_quantile,
)

from ..helpers import LABELS, LOGITS

# --- most_confident_mistakes ------------------------------------------------------------------
# Rows 0 and 3 of LOGITS are right; rows 1, 2 and 4 are wrong with different confidence.


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


# ---- confusion_matrix ------------------------------------------------------------------------


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    matrix = confusion_matrix(torch.tensor([0, 0, 1, 2, 2]), torch.tensor([0, 1, 1, 0, 2]), num_classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), num_classes=3)


# ---- t_quantile and paired_difference ----------------------------------------------------------


@pytest.mark.parametrize(("df", "expected"), [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)])
def test_t_quantile_matches_the_printed_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)


def test_t_quantile_approaches_the_normal_for_many_degrees_of_freedom():
    assert t_quantile(0.975, 10_000) == pytest.approx(1.960, abs=1e-3)
    assert t_quantile(0.5, 3) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(("p", "df", "message"), [(0.4, 3, "p must lie"), (1.0, 3, "p must lie"),
                                                  (0.975, 0, "df must be"), (0.975, 2.5, "df must be")])
def test_t_quantile_rejects_bad_arguments(p, df, message):
    with pytest.raises(ValueError, match=message):
        t_quantile(p, df)


def test_paired_difference_by_hand():
    scratch, distilled = [87.5, 87.2, 87.4], [87.8, 87.5, 87.9]
    result = paired_difference(scratch, distilled)
    differences = [0.3, 0.3, 0.5]
    mean = sum(differences) / 3
    std = math.sqrt(sum((d - mean) ** 2 for d in differences) / 2)  # ddof = 1
    assert result.mean == pytest.approx(mean) and result.std == pytest.approx(std) and result.n == 3
    assert result.high - result.mean == pytest.approx(4.303 * std / math.sqrt(3), rel=1e-3)
    assert result.mean - result.low == pytest.approx(result.high - result.mean)
    assert result.excludes_zero
    assert str(result) == f"{mean:+.2f} (95% CI {result.low:+.2f} to {result.high:+.2f}, n = 3)"


def test_an_adjusted_interval_is_wider_and_names_its_level():
    a, b = [80.0, 81.0, 79.5, 80.2, 80.8], [80.9, 81.5, 80.1, 81.3, 81.2]
    usual, adjusted = paired_difference(a, b), paired_difference(a, b, confidence=1 - 0.05 / 3)  # Bonferroni, k = 3
    assert adjusted.mean == usual.mean and adjusted.confidence == pytest.approx(0.98333, abs=1e-5)
    assert adjusted.low < usual.low and adjusted.high > usual.high
    assert adjusted.high - adjusted.mean == pytest.approx(t_quantile(1 - 0.025 / 3, 4) * usual.std / math.sqrt(5))
    assert "(95% CI " in str(usual) and "(98.3% CI " in str(adjusted)
    assert "(99% CI " in str(paired_difference(a, b, confidence=0.99))


def test_paired_difference_pairing_removes_the_seed_effect():
    # Each seed moves both runs alike; the paired interval sees the steady gain, unpaired spread would not.
    seed_effect = [0.0, 2.0, -2.0, 1.0]
    a = [80 + s for s in seed_effect]
    b = [80.3 + s + e for s, e in zip(seed_effect, [0.01, -0.01, 0.02, -0.02])]
    result = paired_difference(a, b)
    assert result.excludes_zero and 0.27 < result.low < result.high < 0.33
    assert not paired_difference([1.0, 2.0, 3.0], [1.5, 1.5, 3.1]).excludes_zero


def test_paired_difference_names_its_confidence_and_widens_for_a_bonferroni_family():
    a, b = [80.1, 79.6, 80.4, 80.0, 79.8], [81.0, 80.9, 81.1, 80.5, 81.2]
    usual, adjusted = paired_difference(a, b), paired_difference(a, b, confidence=1 - 0.05 / 4)
    assert usual.confidence == 0.95 and "(95% CI" in str(usual)
    assert adjusted.confidence == pytest.approx(0.9875) and "(98.8% CI" in str(adjusted)  # one decimal
    assert adjusted.mean == pytest.approx(usual.mean) and adjusted.std == pytest.approx(usual.std)
    # t(0.99375, 4) / t(0.975, 4): the adjusted interval is wider by that ratio, around the same mean
    ratio = t_quantile(0.99375, 4) / t_quantile(0.975, 4)
    assert adjusted.half_width == pytest.approx(ratio * usual.half_width, rel=1e-6)
    assert usual.half_width == pytest.approx(2.776 * usual.std / math.sqrt(5), rel=1e-3)
    assert usual.low == pytest.approx(usual.mean - usual.half_width)


def test_paired_difference_rejects_a_confidence_outside_0_and_1():
    with pytest.raises(ValueError, match="confidence must lie"):
        paired_difference([1.0, 2.0], [1.5, 2.5], confidence=95)


@pytest.mark.parametrize(("a", "b", "message"), [([1.0], [2.0], "at least 2 pairs"),
                                                 ([1.0, 2.0], [1.0], "pair each run")])
def test_paired_difference_rejects_bad_input(a, b, message):
    with pytest.raises(ValueError, match=message):
        paired_difference(a, b)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95])
def test_paired_difference_rejects_a_confidence_outside_zero_to_one(confidence):
    with pytest.raises(ValueError, match="confidence must lie in"):
        paired_difference([1.0, 2.0], [1.5, 2.5], confidence=confidence)


# ---- agreement and expected_calibration_error -------------------------------------------------------------


def test_agreement_counts_equal_argmax():
    a = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, 1.0], [0.0, 3.0]])
    b = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.1, 0.9]])
    assert agreement(a, b) == 0.75
    with pytest.raises(ValueError, match="differ in shape"):
        agreement(a, b[:3])
    with pytest.raises(ValueError, match="non-empty 2-D"):
        agreement(torch.zeros(0, 2), torch.zeros(0, 2))


def test_ece_by_hand():
    # Two bins in use: confidence 0.9 (4 examples, 3 right) and 0.6 (2 examples, both right).
    probabilities = torch.tensor([[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 2)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    expected = 4 / 6 * abs(0.75 - 0.9) + 2 / 6 * abs(1.0 - 0.6)
    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(expected)


def test_ece_is_zero_when_confidence_equals_accuracy():
    probabilities = torch.tensor([[0.5, 0.5]] * 4)  # argmax 0, right half the time
    assert expected_calibration_error(probabilities, torch.tensor([0, 1, 0, 1])) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("probabilities", "labels", "message"),
    [
        (torch.tensor([[2.0, -1.0]]), torch.tensor([0]), "summing to 1"),
        (torch.tensor([[0.3, 0.3]]), torch.tensor([0]), "summing to 1"),
        (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), "non-empty 2-D"),
        (torch.tensor([[0.5, 0.5]]), torch.tensor([0, 1]), "one class index per row"),
    ],
)
def test_ece_rejects_bad_input(probabilities, labels, message):
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(probabilities, labels)


# ---- mean_kl_divergence, reliability_bins, fit_temperature (notebook 09) ---------------------------------------


def test_mean_kl_divergence_by_hand():
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    q = torch.tensor([[0.25, 0.75], [0.5, 0.5]])
    row0 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    row1 = 1.0 * math.log(1.0 / 0.5)  # the class with p = 0 adds nothing
    assert mean_kl_divergence(p, q) == pytest.approx((row0 + row1) / 2)
    assert mean_kl_divergence(p, p) == 0.0
    assert mean_kl_divergence(q, p) == math.inf  # p has a zero where q does not: infinitely surprised


def test_mean_kl_divergence_is_not_symmetric_and_not_negative():
    generator = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(50, 10, generator=generator), dim=1)
    q = torch.softmax(2 * torch.randn(50, 10, generator=generator), dim=1)
    assert mean_kl_divergence(p, q) > 0 and mean_kl_divergence(q, p) > 0
    assert mean_kl_divergence(p, q) != pytest.approx(mean_kl_divergence(q, p))


@pytest.mark.parametrize(
    ("p", "q", "message"),
    [
        (torch.tensor([[0.5, 0.5]]), torch.tensor([[0.5, 0.5], [0.5, 0.5]]), "differ in shape"),
        (torch.tensor([[0.5, 0.5]]), torch.tensor([[0.5, 0.5, 0.0]]), "differ in shape"),
        (torch.tensor([[0.7, 0.7]]), torch.tensor([[0.5, 0.5]]), "summing to 1"),
        (torch.tensor([[0.5, 0.5]]), torch.tensor([[3.0, -1.0]]), "apply softmax"),
        (torch.zeros(0, 2), torch.zeros(0, 2), "non-empty 2-D"),
        ([[0.5, 0.5]], torch.tensor([[0.5, 0.5]]), "non-empty 2-D"),
    ],
)
def test_mean_kl_divergence_rejects_bad_input(p, q, message):
    with pytest.raises(ValueError, match=message):
        mean_kl_divergence(p, q)


def test_reliability_bins_by_hand_and_their_ece_is_kdutils_ece():
    # The example of test_ece_by_hand: confidence 0.9 (4 examples, 3 right) and 0.6 (2 examples, both right).
    probabilities = torch.tensor([[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 2)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    result = reliability_bins(probabilities, labels, bins=10)
    # float32 0.6 is a hair above 0.6, so it falls in (0.6, 0.7]; float32 0.9 a hair below, in (0.8, 0.9].
    assert result.count == [0, 0, 0, 0, 0, 0, 2, 0, 4, 0] and len(result.edges) == 11
    assert result.confidence[6] == pytest.approx(0.6) and result.accuracy[6] == 1.0
    assert result.confidence[8] == pytest.approx(0.9) and result.accuracy[8] == 0.75
    assert math.isnan(result.confidence[0]) and math.isnan(result.accuracy[0])
    assert result.ece == pytest.approx(expected_calibration_error(probabilities, labels, bins=10))


def test_reliability_bins_ece_matches_on_random_predictions():
    generator = torch.Generator().manual_seed(1)
    probabilities = torch.softmax(3 * torch.randn(300, 10, generator=generator), dim=1)
    labels = torch.randint(0, 10, (300,), generator=generator)
    for bins in (1, 7, 15):
        result = reliability_bins(probabilities, labels, bins)
        assert sum(result.count) == 300
        assert result.ece == pytest.approx(expected_calibration_error(probabilities, labels, bins))


@pytest.mark.parametrize(
    ("probabilities", "labels", "bins", "message"),
    [
        (torch.tensor([[0.3, 0.3]]), torch.tensor([0]), 15, "summing to 1"),
        (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 15, "non-empty 2-D"),
        (torch.tensor([[0.5, 0.5]]), torch.tensor([0, 1]), 15, "one class index per row"),
        (torch.tensor([[0.5, 0.5]]), torch.tensor([0]), 0, "positive integer"),
    ],
)
def test_reliability_bins_rejects_bad_input(probabilities, labels, bins, message):
    with pytest.raises(ValueError, match=message):
        reliability_bins(probabilities, labels, bins)


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    # Labels drawn from softmax(z / 2): the NLL is smallest near T = 2 when there are many examples.
    generator = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(20_000, 5, generator=generator)
    labels = torch.multinomial(torch.softmax(logits / 2, dim=1), 1, generator=generator).squeeze(1)
    T = fit_temperature(logits, labels)
    assert 1.9 < T < 2.1

    def nll(t):
        return torch.nn.functional.cross_entropy(logits / t, labels).item()

    assert nll(T) <= min(nll(0.98 * T), nll(1.02 * T))


def test_fit_temperature_sharpens_an_underconfident_model_and_keeps_the_argmax():
    generator = torch.Generator().manual_seed(2)
    logits = 0.2 * torch.randn(2_000, 4, generator=generator)
    labels = torch.multinomial(torch.softmax(logits / 0.25, dim=1), 1, generator=generator).squeeze(1)
    T = fit_temperature(logits, labels)
    assert T < 1
    assert torch.equal((logits / T).argmax(dim=1), logits.argmax(dim=1))


def test_fit_temperature_stops_at_its_bound_when_every_answer_is_right():
    logits = torch.tensor([[3.0, 0.0], [0.0, 3.0]])  # the sharper, the better: the search runs to T = low
    assert fit_temperature(logits, torch.tensor([0, 1]), low=0.1) == pytest.approx(0.1, rel=0.01)


@pytest.mark.parametrize(
    ("logits", "labels", "kwargs", "message"),
    [
        (torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), {}, "non-empty 2-D"),
        (torch.zeros(3), torch.zeros(3, dtype=torch.long), {}, "non-empty 2-D"),
        (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long), {}, "floating point"),
        (torch.tensor([[0.0, math.nan]]), torch.tensor([0]), {}, "NaN"),
        (torch.zeros(2, 3), torch.zeros(3, dtype=torch.long), {}, "one class index per row"),
        (torch.zeros(2, 3), torch.zeros(2), {}, "integer"),
        (torch.zeros(2, 3), torch.tensor([0, 3]), {}, "lie in"),
        (torch.zeros(2, 3), torch.tensor([0, -100]), {}, "lie in"),
        (torch.zeros(2, 3), torch.tensor([0, 1]), {"low": 2.0, "high": 1.0}, "low < high"),
        (torch.zeros(2, 3), torch.tensor([0, 1]), {"low": 0.0}, "low < high"),
    ],
)
def test_fit_temperature_rejects_bad_input(logits, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_temperature(logits, labels, **kwargs)


# ---- per_class_accuracy, the paired difference's verdict, bins of a given assignment -------------------------


def test_per_class_accuracy_is_each_classes_share_of_right_answers():
    accuracy = per_class_accuracy(LOGITS, LABELS)
    assert accuracy.dtype == torch.float64 and accuracy.tolist() == [0.5, 0.5, 0.0]
    with_a_missing_class = per_class_accuracy(LOGITS, LABELS, num_classes=4)
    assert with_a_missing_class[:3].tolist() == [0.5, 0.5, 0.0] and math.isnan(with_a_missing_class[3])
    with pytest.raises(ValueError, match=r"\(N, classes\)"):
        per_class_accuracy(LOGITS[0], LABELS)


@pytest.mark.parametrize(("a", "b", "verdict"), [
    ([80.0, 81.0, 79.0], [82.0, 83.1, 80.9], "better"),
    ([82.0, 83.1, 80.9], [80.0, 81.0, 79.0], "worse"),
    ([80.0, 81.0, 79.0], [80.5, 80.5, 79.5], "no measurable difference"),
])
def test_the_interval_decides_the_verdict(a, b, verdict):
    difference = paired_difference(a, b)
    assert difference.verdict() == verdict
    names = {"better": "beat its teacher", "worse": "worse than its teacher"}
    assert difference.verdict(*names.values()) == names.get(verdict, verdict)


def test_bins_of_a_given_assignment_count_every_prediction_in_the_total():
    confidence = torch.tensor([0.95, 0.9, 0.55, 1.0])
    correct = torch.tensor([True, False, True, True])
    grouped = confidence_bins(confidence, correct, torch.tensor([1, 1, 0, 2]), bins=2)  # bin 2: in none
    assert grouped.count == [1, 2] and grouped.total == 4
    assert grouped.accuracy == [1.0, 0.5] and grouped.confidence == pytest.approx([0.55, 0.925])
    assert grouped.ece == pytest.approx(1 / 4 * 0.45 + 2 / 4 * 0.425)
