"""The check of notebook 11 (kdutils.course.checks.conventions): translating a recipe's alpha into ours.

Right answers pass in any form; each classic mistake gets its own diagnosis; and the check's own reference is
proved right by measurement: the framework's loss and distillation_loss at the translated alpha have
proportional gradients.
"""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from kdutils.course.checks.conventions import CASES, translated
from kdutils.exercises import CheckResult, check_our_alpha, hint
from kdutils.losses import distillation_loss


def our_alpha(alpha, T, alpha_on, t_squared, reduction, classes):
    soft = alpha if alpha_on == "soft" else 1 - alpha
    hard = 1 - soft
    factor = (T**2 if t_squared else 1.0) / (classes if reduction == "mean" else 1)
    per_t_squared = soft * factor / T**2
    return per_t_squared / (per_t_squared + hard)


def assert_passes(result: CheckResult) -> None:
    assert isinstance(result, CheckResult) and result.passed, result.message


def assert_diagnoses(result: CheckResult, *phrases: str) -> None:
    assert isinstance(result, CheckResult) and not result.passed, "a wrong answer passed"
    for phrase in phrases:
        assert phrase in result.message, f"expected {phrase!r} in: {result.message}"


def test_right_answers_pass_in_any_form():
    assert_passes(check_our_alpha(our_alpha))
    assert_passes(check_our_alpha(lambda *case: torch.tensor(our_alpha(*case), dtype=torch.float32)))
    assert_passes(check_our_alpha(lambda *case: np.float64(our_alpha(*case))))

    def through_the_ratio(alpha, T, alpha_on, t_squared, reduction, classes):  # another formula, the same number
        soft = alpha if alpha_on == "soft" else 1 - alpha
        if soft == 1:
            return 1.0
        ratio = soft / (1 - soft) * (1 if t_squared else 1 / T**2) / (classes if reduction == "mean" else 1)
        return ratio / (1 + ratio)

    assert_passes(check_our_alpha(through_the_ratio))


MISTAKES = {
    "the framework's own alpha": (lambda a, T, on, t2, r, c: a, "you returned the framework's own alpha"),
    "alpha always on the soft side": (lambda a, T, on, t2, r, c: our_alpha(a, T, "soft", t2, r, c),
                                      "you returned the framework's own alpha"),
    "T**2 never converted": (lambda a, T, on, t2, r, c: our_alpha(a, T, on, True, r, c),
                             "T**2 times weaker", "divide that soft weight by T**2"),
    "T**2 multiplied in": (lambda a, T, on, t2, r, c: our_alpha(a, T, on, True, r, c) if t2
                           else _scaled(a, on, T**2 / (c if r == "mean" else 1)), "do not multiply"),
    "'mean' ignored": (lambda a, T, on, t2, r, c: our_alpha(a, T, on, t2, "batchmean", c),
                       "'mean'", "divide the soft weight by the number of classes"),
    "'mean' multiplied by the classes": (lambda a, T, on, t2, r, c: our_alpha(a, T, on, t2, "batchmean", c)
                                         if r == "batchmean" else _times_classes(a, T, on, t2, c),
                                         "C times smaller, not larger"),
    "the hard term's share": (lambda *case: 1 - our_alpha(*case), "the hard term's share"),
    "the soft weight, not normalised": (lambda *case: translated(*case, normalise=False),
                                        "no longer add up to 1"),
}


def _scaled(alpha, alpha_on, factor):
    """Our alpha when the soft weight is multiplied by ``factor`` (per T**2 * KL)."""
    soft = alpha if alpha_on == "soft" else 1 - alpha
    return soft * factor / (soft * factor + 1 - soft)


def _times_classes(alpha, T, alpha_on, t_squared, classes):
    soft = alpha if alpha_on == "soft" else 1 - alpha
    per_t_squared = soft * (T**2 if t_squared else 1.0) * classes / T**2
    return per_t_squared / (per_t_squared + 1 - soft)


@pytest.mark.parametrize("name", list(MISTAKES))
def test_each_classic_mistake_gets_its_own_diagnosis(name):
    wrong, *phrases = MISTAKES[name]
    assert_diagnoses(check_our_alpha(wrong), *phrases)


def test_the_soft_to_hard_ratio_is_named_as_such():
    def ratio(alpha, T, alpha_on, t_squared, reduction, classes):
        soft = alpha if alpha_on == "soft" else 1 - alpha
        return translated(alpha, T, alpha_on, t_squared, reduction, classes, normalise=False) / (1 - soft)

    # the identity case comes first, where the ratio 0.9 / 0.1 = 9 is already wrong
    assert_diagnoses(check_our_alpha(ratio), "the ratio of the soft weight to the hard weight")


def test_a_division_by_a_zero_hard_weight_is_a_verdict():
    def ratio_first(alpha, T, alpha_on, t_squared, reduction, classes):
        soft = alpha if alpha_on == "soft" else 1 - alpha
        r = soft / (1 - soft) * (1 if t_squared else 1 / T**2) / (classes if reduction == "mean" else 1)
        return r / (1 + r)

    assert_diagnoses(check_our_alpha(ratio_first), "your function raised ZeroDivisionError")
    nan_at_the_end = lambda a, T, on, t2, r, c: float("nan") if a == 1.0 else our_alpha(a, T, on, t2, r, c)  # noqa: E731
    assert_diagnoses(check_our_alpha(nan_at_the_end), "returned NaN", "division by zero")


def test_an_unrecognised_wrong_answer_is_told_the_expected_value():
    result = check_our_alpha(lambda *case: 0.5)
    assert_diagnoses(result, "our_alpha(0.9, 4, 'soft', True, 'batchmean', 10) should be 0.9, got 0.5")


def test_a_wrong_kind_of_result_is_named():
    assert_diagnoses(check_our_alpha(lambda *case: "0.9"), "should be a number, got str")
    assert_diagnoses(check_our_alpha(lambda *case: torch.ones(2)), "single number")


def test_the_stub_goes_through_and_there_are_hints(capsys):
    from kdutils.course.checks.verdicts import STUB_MESSAGE

    def stub(*case):
        raise NotImplementedError(STUB_MESSAGE.format(exercise="our_alpha"))

    with pytest.raises(NotImplementedError, match="write this function"):
        check_our_alpha(stub)
    hint("our_alpha", 2)
    assert "per T**2 * KL" in capsys.readouterr().out


def framework_loss(student, teacher, labels, alpha, T, alpha_on, t_squared, reduction):
    """A framework's loss written from its conventions, independently of ``translated``."""
    soft_weight = alpha if alpha_on == "soft" else 1 - alpha
    kl = F.kl_div(F.log_softmax(student / T, 1), F.log_softmax(teacher / T, 1), log_target=True,
                  reduction="sum") / (student.numel() if reduction == "mean" else len(student))
    return soft_weight * (T**2 if t_squared else 1) * kl + (1 - soft_weight) * F.cross_entropy(student, labels)


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_the_reference_gives_the_same_gradient_direction_as_the_framework(case):
    """Measured: at the translated alpha, distillation_loss's gradient is the framework's times a constant."""
    alpha, T, alpha_on, t_squared, reduction, classes = case
    generator = torch.Generator().manual_seed(0)
    student = (2 * torch.randn(16, classes, generator=generator, dtype=torch.float64)).requires_grad_(True)
    teacher = 2 * torch.randn(16, classes, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, classes, (16,), generator=generator)
    (theirs,) = torch.autograd.grad(framework_loss(student, teacher, labels, alpha, T, alpha_on, t_squared,
                                                   reduction), student)
    (ours,) = torch.autograd.grad(distillation_loss(student, labels, teacher, T=T, alpha=translated(*case)), student)
    scale = float((theirs * ours).sum() / (ours * ours).sum())
    assert scale > 0 and torch.allclose(theirs, scale * ours, rtol=1e-9, atol=1e-12)
    wrong = min(max(translated(*case) + 0.05, 0.0), 1.0) if translated(*case) < 0.95 else translated(*case) - 0.05
    (other,) = torch.autograd.grad(distillation_loss(student, labels, teacher, T=T, alpha=wrong), student)
    other_scale = float((theirs * other).sum() / (other * other).sum())
    assert not torch.allclose(theirs, other_scale * other, rtol=1e-6, atol=1e-9)  # the test can fail


def test_the_cases_cover_each_convention():
    assert {case[2] for case in CASES} == {"soft", "hard"}
    assert {case[3] for case in CASES} == {True, False}
    assert {case[4] for case in CASES} == {"batchmean", "mean"}
    assert any(math.isclose(translated(*case), 1.0) for case in CASES)  # no hard term left
