"""diagnose() past its candidate formulas: "other", T**2 read from scaling, swapped roles, paddings of zeros.

Every loss here is our own. The squared Hellinger distance between the two softened distributions is a
divergence that none of the candidate formulas computes at T; around it: the same loss rounded to bfloat16,
weighed by T, blind to T; KL divergences at a temperature of their own; a loss with the teacher's
cross-entropy where the student's belongs; a KL of raw positive scores that needs other paddings.
"""

import functools

import pytest
import torch
from torch.nn import functional as F

from kdutils.conventions import UNKNOWN, diagnose
from kdutils.conventions import scaling as conventions_scaling
from kdutils.conventions.probes import Caller, design_inputs
from kdutils.conventions.scaling import computed_precisely

FIELDS = ("direction", "t_squared", "reduction", "alpha_on", "hard_term", "student_softened", "teacher_softened",
          "trains_student", "nan_on_ordinary_input")


def ce(s, y):
    return F.cross_entropy(s, y)


def hellinger_rows(s, t, T):
    """Squared Hellinger distance of softmax(t / T) and softmax(s / T), one number per row."""
    return ((F.softmax(t / T, 1).sqrt() - F.softmax(s / T, 1).sqrt()) ** 2).sum(1)


def hellinger(s, t, y, T, alpha):
    return alpha * T * T * hellinger_rows(s, t, T).mean() + (1 - alpha) * ce(s, y)


def hellinger_times_t(s, t, y, T, alpha):
    return alpha * T * hellinger_rows(s, t, T).mean() + (1 - alpha) * ce(s, y)


def hellinger_weighed_by_t(s, t, y, T, alpha):  # T weighs it but divides no logits; summed over the batch
    return T * hellinger_rows(s, t, 1.0).sum()


def hellinger_without_t(s, t, y, T, alpha):  # averaged over the batch and the classes
    return hellinger_rows(s, t, 1.0).mean() / s.shape[1]


def hellinger_in(dtype):
    def rounded(s, t, y, T, alpha):
        soft = hellinger_rows(s.to(dtype), t.to(dtype), T).mean().to(s.dtype)
        return alpha * T * T * soft + (1 - alpha) * ce(s, y)

    return rounded


def log_probability_error(s, t, y, T, alpha):  # a squared error of log-softmax outputs: normalised logits
    return T * T * ((F.log_softmax(s / T, 1) - F.log_softmax(t / T, 1)) ** 2).sum(1).mean() + ce(s, y)


def log_error_to_probabilities(s, t, y, T, alpha):  # the student's log-probabilities against the teacher's
    return T * T * ((F.log_softmax(s / T, 1) - F.softmax(t / T, 1)) ** 2).sum(1).mean() + ce(s, y)


def l1_of_logits(s, t, y, T, alpha):  # |s / T - t / T| * T**2 is also |s - t| * T: T**2 cannot be told
    return alpha * F.l1_loss(s / T, t / T) * T * T + (1 - alpha) * ce(s, y)


def student_sharpened_kl(s, t, y, T, alpha):  # the student at a fixed temperature of its own, 0.25
    p = F.softmax(t / T, 1)
    return (p * (p.log() - F.log_softmax(s / 0.25, 1))).sum(1).mean()


def teacher_at_half_t(s, t, y, T, alpha):
    return T * T * F.kl_div(F.log_softmax(s / T, 1), F.softmax(2 * t / T, 1), reduction="batchmean")


def student_sharpened_cross_entropy(s, t, y, T, alpha):
    return -(F.softmax(t / T, 1) * F.log_softmax(s / 0.2, 1)).sum(1).mean()


def roles_swapped(s, t, y, T, alpha):  # the teacher's cross-entropy where the student's belongs
    soft = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
    return alpha * ce(t, y) + (1 - alpha) * T * T * soft


def raw_scores_kl(reduction):
    """Positive scores taken for probabilities on both sides (no softmax): NaN on ordinary logits."""
    def loss(s, t, y, T, alpha):
        return alpha * F.kl_div(torch.log(s / T), t / T, reduction=reduction) + (1 - alpha) * ce(s, y)

    return loss


LOSSES = {"hellinger": hellinger, "hellinger_times_t": hellinger_times_t,
          "hellinger_weighed_by_t": hellinger_weighed_by_t, "hellinger_without_t": hellinger_without_t,
          "hellinger_bfloat16": hellinger_in(torch.bfloat16), "log_probability_error": log_probability_error,
          "log_error_to_probabilities": log_error_to_probabilities,
          "l1_of_logits": l1_of_logits, "student_sharpened_kl": student_sharpened_kl,
          "teacher_at_half_t": teacher_at_half_t, "student_sharpened_cross_entropy": student_sharpened_cross_entropy,
          "roles_swapped": roles_swapped, **{f"raw_scores_kl_{r}": raw_scores_kl(r) for r in ("batchmean", "sum")}}


@functools.cache
def diagnosed(name: str):
    return diagnose(LOSSES[name])


def fields(found) -> dict:
    return {field: getattr(found, field) for field in FIELDS}


HELLINGER = dict(direction="other", t_squared=True, reduction="batchmean", alpha_on="soft", hard_term=True,
                 student_softened=True, teacher_softened=True, trains_student=True, nan_on_ordinary_input=False)
NO_T = dict(student_softened=False, teacher_softened=False, alpha_on="ignored", hard_term=False)


@pytest.mark.parametrize("name, changes", [
    ("hellinger", {}),
    ("hellinger_times_t", {"t_squared": False}),
    ("hellinger_weighed_by_t", {"t_squared": False, "reduction": "sum", **NO_T}),
    ("hellinger_without_t", {"t_squared": False, "reduction": "mean", **NO_T}),
    # log q against p: no candidate; the padded classes add (log q)**2 alike under every teacher, which cancels
    ("log_error_to_probabilities", {"alpha_on": "ignored"}),
])
def test_a_divergence_no_formula_computes_reads_as_other_with_its_power_of_t(name, changes):
    found = diagnosed(name)
    assert fields(found) == {**HELLINGER, **changes}, found.reading
    assert "another divergence" in found.reading and "T**2 was read from how the soft term moves" in found.reading
    assert found.equivalent is None and found.no_equivalent_because == "its soft term is no KL divergence"


def test_a_squared_error_of_log_probabilities_is_a_squared_error():
    found = diagnosed("log_probability_error")
    assert (found.direction, found.t_squared) == ("mse", True)
    assert found.soft_term == "squared error of the log-probabilities"


def test_t_squared_stays_unknown_where_dividing_by_t_could_be_read_in_or_out():
    found = diagnosed("l1_of_logits")
    assert (found.direction, found.t_squared, found.reduction) == ("other", UNKNOWN, "mean")


def test_a_soft_term_rounded_to_bfloat16_is_not_called_other():
    found = diagnosed("hellinger_bfloat16")
    assert found.direction == UNKNOWN and "does not make it another divergence" in found.reading
    # scaling logits and T by 2 is exact in any floating point format: the power of T is still read
    assert (found.t_squared, found.reduction, found.alpha_on) == (True, "batchmean", "soft")


@pytest.mark.parametrize("loss, precise", [(hellinger, True), (hellinger_in(torch.float32), True),
                                           (hellinger_in(torch.bfloat16), False), (hellinger_in(torch.float16), False)])
def test_computed_precisely_tells_float32_and_float64_from_three_digits(loss, precise):
    assert computed_precisely(Caller(loss, 5.0), design_inputs(torch.float64)) is precise


@pytest.mark.parametrize("name, t_squared", [("student_sharpened_kl", UNKNOWN), ("teacher_at_half_t", True)])
def test_a_kl_at_a_temperature_of_its_own_is_not_called_other(name, t_squared, monkeypatch):
    found = diagnosed(name)
    assert (found.direction, found.t_squared) == (UNKNOWN, t_squared), found.reading
    assert "does not make it another divergence" in found.reading
    # the fixed-temperature search is what keeps it from "other": without it, it would be called so
    monkeypatch.setattr(conventions_scaling, "fits_a_fixed_temperature", lambda *args: False)
    assert diagnose(LOSSES[name]).direction == "other"


def test_fitting_candidates_that_agree_on_t_squared_answer_it():
    # with the student sharpened by its own 0.2, -sum p log q fits with the student divided by T (weight T)
    # or not (weight constant): two powers of T, one answer, no T**2
    found = diagnosed("student_sharpened_cross_entropy")
    assert (found.direction, found.t_squared, found.student_softened) == ("soft_cross_entropy", False, UNKNOWN)


def test_the_teachers_own_cross_entropy_is_read_beside_the_soft_term():
    found = diagnosed("roles_swapped")
    assert fields(found) == {**HELLINGER, "direction": "forward_kl", "alpha_on": "hard", "hard_term": UNKNOWN}
    assert "roles were swapped" in found.reading


@pytest.mark.parametrize("reduction", ["batchmean", "sum"])
def test_raw_scores_are_padded_with_weightless_zeros(reduction):
    # padding with -50 makes log(-50) NaN and a target of -50 / T; a zero target weighs nothing
    found = diagnosed(f"raw_scores_kl_{reduction}")
    assert (found.reduction, found.nan_on_ordinary_input, found.direction) == (reduction, True, "other")
    assert found.t_squared is False  # (t / T) log((t / T) / (s / T)) is t log(t / s) / T
