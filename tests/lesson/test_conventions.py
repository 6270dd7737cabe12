"""diagnose() reads each convention of a corpus of KD losses written the way repositories write them.

Every loss below is our own re-expression of a convention found in public code (or an odd but valid
variant of one), beside every field ``diagnose`` must find for it. The corpus holds at least one loss
for every value of every field, the losses that raise, hang or return a vector, and the article's loss.
The call ``diagnose`` names as equivalent is checked by evaluating it against the loss on fresh inputs.
"""

import functools
import math
import threading

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from kdutils.conventions import UNKNOWN, Diagnosis, adapt, diagnose, from_factory
from kdutils.conventions.probes import (
    FORMULAS,
    Caller,
    ProbeError,
    as_number,
    call_with_deadline,
    design_inputs,
    fit,
    mixture_columns,
    sides,
)
from kdutils.losses import distillation_loss

FIELDS = ("direction", "t_squared", "reduction", "alpha_on", "hard_term", "student_softened", "teacher_softened",
          "trains_student", "nan_on_ordinary_input")


def kl(student, teacher, T, reduction="batchmean"):
    """KL(softmax(teacher / T) || softmax(student / T)) as F.kl_div computes it."""
    return F.kl_div(F.log_softmax(student / T, 1), F.softmax(teacher / T, 1), reduction=reduction)


def ce(student, labels):
    return F.cross_entropy(student, labels)


# --- the corpus: forward KL with every convention around it -------------------------------------------------


def hinton(s, t, y, T, alpha):
    return alpha * T * T * kl(s, t, T) + (1 - alpha) * ce(s, y)


def written_out(s, t, y, T, alpha):  # the PyTorch tutorial's style: the KL summed by hand, divided by the batch
    p, log_q = F.softmax(t / T, -1), F.log_softmax(s / T, -1)
    soft = torch.sum(p * (p.log() - log_q)) / s.shape[0] * T**2
    return alpha * soft + (1 - alpha) * ce(s, y)


def factor_two(s, t, y, T, alpha):
    return 2 * distillation_loss(s, y, t, T=T, alpha=alpha)


def alpha_on_hard(s, t, y, T, alpha):  # Keras' example: clipped probabilities, alpha on the student's own loss
    p, q = F.softmax(t / T, 1).clamp(1e-7, 1), F.softmax(s / T, 1).clamp(1e-7, 1)
    return alpha * ce(s, y) + (1 - alpha) * T**2 * (p * torch.log(p / q)).sum(1).mean()


def kldivloss_default(s, t, y, T, alpha):  # nn.KLDivLoss()'s 'mean' divides by the classes too
    return nn.KLDivLoss()(F.log_softmax(s / T, 1), F.softmax(t / T, 1)) * (alpha * T * T) + ce(s, y) * (1 - alpha)


def summed(s, t, y, T, alpha):
    return alpha * T * T * kl(s, t, T, reduction="sum") + (1 - alpha) * ce(s, y)


def t_not_t_squared(s, t, y, T, alpha):
    return alpha * T * kl(s, t, T) + (1 - alpha) * ce(s, y)


def no_temperature_factor(s, t, y, T, alpha):
    return kl(s, t, T)


def student_only_softened(s, t, y, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t, 1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * ce(s, y)


def teacher_only_softened(s, t, y, T, alpha):
    soft = F.kl_div(F.log_softmax(s, 1), F.softmax(t / T, 1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * ce(s, y)


def detached_student(s, t, y, T, alpha):  # IntelLabs distiller's shape: the student detached in the soft term
    soft = F.kl_div(F.log_softmax(s.detach() / T, 1), F.softmax(t / T, 1), reduction="sum") / s.shape[0]
    return alpha * T * T * soft + (1 - alpha) * ce(s, y)


def alpha_ignored(s, t, y, T, alpha):
    return T * T * kl(s, t, T) + ce(s, y)


def no_hard_term(s, t, y, T, alpha):
    return alpha * T * T * kl(s, t, T)


def returns_a_float(s, t, y, T, alpha):
    return distillation_loss(s, y, t, T=T, alpha=alpha).item()


class KDModule(nn.Module):
    def forward(self, s, t, y, T, alpha):
        return distillation_loss(s, y, t, T=T, alpha=alpha)


def article(s, t, y, T, alpha):  # the article's loss: the log of the raw student logits
    soft = nn.KLDivLoss()(torch.log(s / T), torch.softmax(t / T, dim=1)) * (T * T)
    return soft * alpha + F.cross_entropy(s, y) * (1 - alpha)


# --- the corpus: other divergences ----------------------------------------------------------------------------


def reverse_kl(s, t, y, T, alpha):
    log_q, log_p = F.log_softmax(s / T, 1), F.log_softmax(t / T, 1)
    return alpha * T * T * (log_q.exp() * (log_q - log_p)).sum(1).mean() + (1 - alpha) * ce(s, y)


def jensen_shannon(s, t, y, T, alpha):  # TRL's GKD shape with beta = 1/2, divided by rows * classes
    log_q, log_p = F.log_softmax(s / T, -1), F.log_softmax(t / T, -1)
    log_m = torch.logsumexp(torch.stack([log_q + math.log(0.5), log_p + math.log(0.5)]), 0)
    jsd = 0.5 * F.kl_div(log_m, log_p, reduction="none", log_target=True) + 0.5 * F.kl_div(
        log_m, log_q, reduction="none", log_target=True)
    return jsd.sum() / (jsd.size(0) * jsd.size(1))


def skew_cross_entropy(s, t, y, T, alpha):  # DistiLLM's skew: cross-entropy to a mixture, T never used
    p, q = F.softmax(t, -1), F.softmax(s, -1)
    return -(p * torch.log(0.1 * p + 0.9 * q)).sum(-1).mean()


def soft_cross_entropy(s, t, y, T, alpha):  # torchtune's and OpenRLHF's "forward KL": no T, no alpha
    p, log_q = F.softmax(t, -1, dtype=torch.float32), F.log_softmax(s, -1, dtype=torch.float32)
    per_row = torch.masked_fill(p * log_q, torch.isinf(s), 0).sum(-1)
    counted = (y != -100).int()
    return -(per_row * counted).sum() / counted.sum()


def soft_cross_entropy_blended(s, t, y, T, alpha):
    soft = -(F.softmax(t / T, 1) * F.log_softmax(s / T, 1)).sum(1).mean()
    return alpha * T * T * soft + (1 - alpha) * ce(s, y)


def mse_logits(s, t, y, T, alpha):
    return alpha * F.mse_loss(s, t) + (1 - alpha) * ce(s, y)


def mse_probabilities(s, t, y, T, alpha):
    return alpha * T * T * F.mse_loss(F.softmax(s / T, 1), F.softmax(t / T, 1)) + (1 - alpha) * ce(s, y)


def cosine(s, t, y, T, alpha):
    return (1 - F.cosine_similarity(F.softmax(s / T, 1), F.softmax(t / T, 1))).mean()


def teacher_top_class(s, t, y, T, alpha):  # DeiT's hard distillation: the teacher's argmax as a label
    return (1 - alpha) * ce(s, y) + alpha * ce(s, t.argmax(1))


def raw_teacher_logits_as_targets(s, t, y, T, alpha):  # a soft term no candidate knows
    return -(t * F.log_softmax(s / T, 1)).sum(1).mean() * T * T


def alpha_on_both(s, t, y, T, alpha):
    return alpha * T * T * kl(s, t, T) + alpha * ce(s, y)


def classes_averaged_batch_summed(s, t, y, T, alpha):
    return T * T * kl(s, t, T, reduction="sum") / s.shape[1]


def squared_error_hard_term(s, t, y, T, alpha):  # labels matter, but not through a cross-entropy
    one_hot = F.one_hot(y, s.shape[1]).to(s.dtype)
    return alpha * T * T * kl(s, t, T) + (1 - alpha) * F.mse_loss(F.softmax(s, 1), one_hot)


HINTON = dict(direction="forward_kl", t_squared=True, reduction="batchmean", alpha_on="soft", hard_term=True,
              student_softened=True, teacher_softened=True, trains_student=True, nan_on_ordinary_input=False)
NO_HARD = dict(alpha_on="ignored", hard_term=False)
NO_T = dict(t_squared=False, student_softened=False, teacher_softened=False)

# name: (loss, the fields it differs from Hinton's in, the call with the same value or None)
CORPUS = {
    "hinton": (hinton, {}, "distillation_loss(student_logits, labels, teacher_logits, T=T, alpha=alpha)"),
    "written_out": (written_out, {}, "distillation_loss(student_logits, labels, teacher_logits, T=T, alpha=alpha)"),
    "factor_two": (factor_two, {}, "2 * distillation_loss(student_logits, labels, teacher_logits, T=T, alpha=alpha)"),
    "alpha_on_hard": (alpha_on_hard, {"alpha_on": "hard"},
                      "distillation_loss(student_logits, labels, teacher_logits, T=T, alpha=1 - alpha)"),
    "kldivloss_default": (kldivloss_default, {"reduction": "mean"}, "value"),
    "summed": (summed, {"reduction": "sum"}, "value"),
    "t_not_t_squared": (t_not_t_squared, {"t_squared": False}, "value"),
    "no_temperature_factor": (no_temperature_factor, {"t_squared": False, **NO_HARD},
                              "distillation_loss(student_logits, labels, teacher_logits, T=T, alpha=1.0) / T**2"),
    "student_only_softened": (student_only_softened, {"teacher_softened": False}, None),
    "teacher_only_softened": (teacher_only_softened, {"student_softened": False}, None),
    "detached_student": (detached_student, {"trains_student": False},
                         "distillation_loss(student_logits, labels, teacher_logits, T=T, alpha=alpha)"),
    "alpha_ignored": (alpha_ignored, {"alpha_on": "ignored"},
                      "2 * distillation_loss(student_logits, labels, teacher_logits, T=T, alpha=0.5)"),
    "no_hard_term": (no_hard_term, {"hard_term": False},
                     "alpha * distillation_loss(student_logits, labels, teacher_logits, T=T, alpha=1.0)"),
    "returns_a_float": (returns_a_float, {"trains_student": False}, "value"),
    "module": (KDModule(), {}, "distillation_loss(student_logits, labels, teacher_logits, T=T, alpha=alpha)"),
    "article": (article, {"reduction": "mean", "student_softened": UNKNOWN, "nan_on_ordinary_input": True}, None),
    "reverse_kl": (reverse_kl, {"direction": "reverse_kl"}, None),
    "jensen_shannon": (jensen_shannon, {"direction": "jsd", "t_squared": False, "reduction": "mean", **NO_HARD}, None),
    "skew_cross_entropy": (skew_cross_entropy, {"direction": "jsd", **NO_T, **NO_HARD}, None),
    "soft_cross_entropy": (soft_cross_entropy, {"direction": "soft_cross_entropy", **NO_T, **NO_HARD}, None),
    "soft_cross_entropy_blended": (soft_cross_entropy_blended, {"direction": "soft_cross_entropy"}, None),
    "mse_logits": (mse_logits, {"direction": "mse", "reduction": "mean", **NO_T}, None),
    "mse_probabilities": (mse_probabilities, {"direction": "mse", "reduction": "mean"}, None),
    "cosine": (cosine, {"direction": "other", "t_squared": False, **NO_HARD}, None),
    "teacher_top_class": (teacher_top_class, {"direction": "other", "t_squared": False, "student_softened": False,
                                              "teacher_softened": UNKNOWN}, None),
    "raw_teacher_logits_as_targets": (raw_teacher_logits_as_targets, {  # T**2 times a term linear in the
        # teacher's raw logits is also T times one in the teacher's logits / T: t_squared cannot be told
        "direction": "other", "t_squared": UNKNOWN, "student_softened": UNKNOWN, "teacher_softened": UNKNOWN,
        **NO_HARD}, None),
    "alpha_on_both": (alpha_on_both, {"alpha_on": UNKNOWN}, "value"),
    "classes_averaged_batch_summed": (classes_averaged_batch_summed, {"reduction": UNKNOWN, **NO_HARD}, None),
    "squared_error_hard_term": (squared_error_hard_term, {"hard_term": UNKNOWN}, None),
}


@functools.cache
def diagnosed(name: str) -> Diagnosis:
    return diagnose(CORPUS[name][0])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_field_of_every_loss_in_the_corpus(name):
    found = diagnosed(name)
    expected = {**HINTON, **CORPUS[name][1]}
    got = {field: getattr(found, field) for field in FIELDS}
    assert got == expected, found.reading
    assert found.error is None and not found.hangs


def test_the_corpus_holds_every_value_of_every_field():
    values = {field: {(True if v is True else False if v is False else v) for v in
                      [{**HINTON, **changes}[field] for _, changes, _ in CORPUS.values()]} for field in FIELDS}
    assert values["direction"] >= {"forward_kl", "reverse_kl", "soft_cross_entropy", "jsd", "mse", "other"}
    assert values["reduction"] >= {"batchmean", "mean", "sum"}
    assert values["alpha_on"] >= {"soft", "hard", "ignored"}
    for field in ("t_squared", "hard_term", "student_softened", "teacher_softened", "trains_student",
                  "nan_on_ordinary_input"):
        assert values[field] >= {True, False}, field


def fresh_inputs(seed: int, rows: int, classes: int):
    generator = torch.Generator().manual_seed(seed)
    student, teacher = 2 * torch.randn(2, rows, classes, generator=generator)
    return student, teacher, torch.randint(0, classes, (rows,), generator=generator)


def evaluate(expression: str, student, teacher, labels, T, alpha):
    names = {"distillation_loss": distillation_loss, "student_logits": student, "teacher_logits": teacher,
             "labels": labels, "T": T, "alpha": alpha, "B": student.shape[0], "C": student.shape[1]}
    return eval(expression, {"__builtins__": {}}, names)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")
@pytest.mark.parametrize("name", sorted(n for n, (_, _, call) in CORPUS.items() if call))
def test_the_equivalent_call_gives_the_loss_value(name):
    loss, _, expected_call = CORPUS[name]
    found = diagnosed(name)
    assert found.equivalent is not None, found.no_equivalent_because
    if expected_call != "value":  # the exact wording matters where a reader would write it this way
        assert found.equivalent == expected_call
    assert found.equivalent in found.reading
    for seed, (rows, classes, T, alpha) in enumerate([(5, 10, 4.0, 0.9), (16, 3, 1.0, 0.1), (2, 25, 7.5, 0.5)]):
        student, teacher, labels = fresh_inputs(seed, rows, classes)
        want = as_number(loss(student, teacher, labels, T, alpha))
        got = evaluate(found.equivalent, student, teacher, labels, T, alpha).item()
        assert got == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("name", sorted(n for n, (_, _, call) in CORPUS.items() if not call))
def test_no_call_is_named_where_none_gives_the_value(name):
    found = diagnosed(name)
    assert found.equivalent is None
    assert found.no_equivalent_because and found.no_equivalent_because in found.reading


def test_soft_cross_entropy_names_the_call_with_the_same_gradient():
    found = diagnosed("soft_cross_entropy_blended")
    assert found.same_gradient_as == "distillation_loss(student_logits, labels, teacher_logits, T=T, alpha=alpha)"
    assert "teacher's entropy" in found.no_equivalent_because and found.same_gradient_as in found.reading
    student, teacher, labels = fresh_inputs(7, 6, 10)
    student.requires_grad_(True)
    (theirs,) = torch.autograd.grad(soft_cross_entropy_blended(student, teacher, labels, 3.0, 0.7), student)
    (ours,) = torch.autograd.grad(evaluate(found.same_gradient_as, student, teacher, labels, 3.0, 0.7), student)
    torch.testing.assert_close(theirs, ours)
    value = evaluate(found.same_gradient_as, student, teacher, labels, 3.0, 0.7)
    assert value.item() < soft_cross_entropy_blended(student, teacher, labels, 3.0, 0.7).item() - 0.1


def test_the_reading_says_what_was_found_in_plain_words():
    assert str(diagnosed("hinton")) == diagnosed("hinton").reading
    assert "forward KL" in diagnosed("hinton").reading and "multiplied by T**2" in diagnosed("hinton").reading
    assert "Alpha weighs the hard-label term" in diagnosed("alpha_on_hard").reading
    assert "C times smaller than batchmean" in diagnosed("kldivloss_default").reading
    assert "sends no gradient" in diagnosed("detached_student").reading
    assert "NaN" in diagnosed("article").reading and "student_softened" in diagnosed("article").reading
    assert "log of the raw student logits" in diagnosed("article").reading
    assert "mixture m = 0.5 p + 0.5 q" in diagnosed("jensen_shannon").reading
    assert "not multiplied by T**2" in diagnosed("t_not_t_squared").reading
    assert "only the student's logits divided by T" in diagnosed("student_only_softened").reading


# --- losses that cannot be read: each reported, none raised ---------------------------------------------------


def test_a_loss_that_raises_is_reported_with_its_error():
    def broken(s, t, y, T, alpha):
        raise RuntimeError("expected all tensors to be on the same device")

    found = diagnose(broken)
    assert found.error == "raised RuntimeError: expected all tensors to be on the same device" and not found.hangs
    assert all(getattr(found, field) == UNKNOWN for field in FIELDS)
    assert "could not be measured" in found.reading and "RuntimeError" in found.reading


def test_a_loss_that_never_returns_is_reported_as_hanging_without_blocking():
    release = threading.Event()

    def hangs(s, t, y, T, alpha):
        release.wait()  # released at the end of the test, so the background thread ends too
        return torch.tensor(0.0)

    outcome = {}
    caller = threading.Thread(target=lambda: outcome.setdefault("found", diagnose(hangs, time_limit=0.2)))
    caller.start()
    caller.join(60)
    release.set()
    assert not caller.is_alive(), "diagnose blocked on a loss that never returns"
    found = outcome["found"]
    assert found.hangs and found.error.startswith("did not return within 0.2 s")
    assert all(getattr(found, field) == UNKNOWN for field in FIELDS)
    assert "did not return within 0.2 s" in found.reading


def test_a_loss_that_returns_one_value_per_example_is_reported():
    found = diagnose(lambda s, t, y, T, alpha: F.cross_entropy(s, y, reduction="none"))
    assert found.error.startswith("returned a tensor of shape (8,), not a scalar") and not found.hangs
    assert found.direction == UNKNOWN and ".mean()" in found.reading


@pytest.mark.parametrize("result, said", [(None, "returned a NoneType"), ("0.5", "returned a str"),
                                          (torch.tensor(1 + 2j), "complex"), ({"loss": 1.0}, "returned a dict")])
def test_a_loss_that_returns_no_number_is_reported(result, said):
    found = diagnose(lambda s, t, y, T, alpha: result)
    assert said in found.error and found.direction == UNKNOWN


def test_a_loss_that_only_hangs_later_keeps_what_was_measured():
    calls = []
    release = threading.Event()

    def tires(s, t, y, T, alpha):
        calls.append(1)
        if len(calls) > 20:
            release.wait()
        return hinton(s, t, y, T, alpha)

    found = diagnose(tires, time_limit=0.2)
    release.set()
    assert found.hangs and found.nan_on_ordinary_input is False and found.equivalent is None
    assert len(calls) == 21, "a call was made after one hung"


def test_a_loss_whose_value_changes_from_call_to_call_is_not_fitted():
    generator = torch.Generator().manual_seed(0)

    def noisy(s, t, y, T, alpha):
        return hinton(s, t, y, T, alpha) + 0.01 * torch.rand((), generator=generator, dtype=s.dtype)

    found = diagnose(noisy)
    assert found.error is None and found.direction == UNKNOWN and found.t_squared == UNKNOWN
    assert "different values for the same inputs" in found.reading


def test_a_loss_that_rejects_float64_is_diagnosed_in_float32():
    def float32_only(s, t, y, T, alpha):
        if s.dtype != torch.float32:
            raise TypeError("expected float32 logits")
        return hinton(s, t, y, T, alpha)

    found = diagnose(float32_only)
    assert {field: getattr(found, field) for field in FIELDS} == HINTON
    assert found.equivalent == CORPUS["hinton"][2]


def test_a_loss_that_is_nan_everywhere_says_so():
    found = diagnose(lambda s, t, y, T, alpha: torch.log(s - 100).mean())
    assert found.nan_on_ordinary_input is True and found.direction == UNKNOWN and found.error is None
    assert "NaN or inf even on the positive logits" in found.reading


@pytest.mark.parametrize("wrap, trains", [(lambda v: (v, {"kd": v.detach()}), True), (lambda v: v.reshape(1), True),
                                          (lambda v: np.float64(v.item()), False), (lambda v: v.detach(), False)])
def test_results_in_other_forms_are_read_as_numbers(wrap, trains):
    found = diagnose(lambda s, t, y, T, alpha: wrap(hinton(s, t, y, T, alpha)))
    assert {field: getattr(found, field) for field in FIELDS} == {**HINTON, "trains_student": trains}
    assert found.equivalent == CORPUS["hinton"][2]


def test_a_result_rounded_to_half_precision_is_read_no_further_than_its_digits_allow():
    found = diagnose(lambda s, t, y, T, alpha: hinton(s, t, y, T, alpha).half())
    assert (found.alpha_on, found.hard_term, found.nan_on_ordinary_input) == ("soft", True, False)
    assert found.direction == UNKNOWN and found.t_squared == UNKNOWN  # three digits fit no formula: no guess


def test_a_loss_that_is_infinite_at_one_temperature_is_not_fitted():
    found = diagnose(lambda s, t, y, T, alpha: hinton(s, t, y, T, alpha) / (T - 5))
    assert found.error is None and found.direction == UNKNOWN and found.alpha_on == UNKNOWN
    assert "NaN or inf on some of the designed inputs" in found.reading


def test_a_call_that_cannot_be_confirmed_on_other_shapes_is_not_named():
    def ten_or_twenty_classes(s, t, y, T, alpha):
        if s.shape[1] not in (10, 20):
            raise ValueError("expected 10 classes")
        return hinton(s, t, y, T, alpha)

    found = diagnose(ten_or_twenty_classes)
    assert {field: getattr(found, field) for field in FIELDS} == HINTON and found.error is None
    assert found.equivalent is None and "could not be confirmed" in found.no_equivalent_because


def test_alpha_that_cancels_out_reads_as_ignored():
    found = diagnose(lambda s, t, y, T, alpha: (alpha + (1 - alpha)) * hinton(s, t, y, T, 0.5) * 2)
    assert found.alpha_on == "ignored" and found.equivalent == CORPUS["alpha_ignored"][2]


def test_an_integer_result_is_a_number():
    assert diagnose(lambda s, t, y, T, alpha: torch.tensor(3)).alpha_on == "ignored"


@pytest.mark.parametrize("loss", [hinton, lambda s, t, y, T, alpha: 1 / 0])
def test_diagnose_gives_back_the_threads_it_borrows(loss):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        diagnose(loss)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_diagnose_rejects_what_it_cannot_call():
    with pytest.raises(TypeError, match="needs a callable loss_fn"):
        diagnose("distillation_loss")
    with pytest.raises(ValueError, match="time_limit must be a positive number"):
        diagnose(hinton, time_limit=0)


# --- adapters for other signatures -------------------------------------------------------------------------------


def test_adapt_reads_a_loss_with_labels_first():
    def keras_order(labels, student_logits, teacher_logits, T, alpha):
        return alpha_on_hard(student_logits, teacher_logits, labels, T, alpha)

    found = diagnose(adapt(keras_order, "labels, student_logits, teacher_logits, T, alpha"))
    assert (found.alpha_on, found.direction, found.t_squared) == ("hard", "forward_kl", True)


def test_adapt_reads_a_two_logit_loss_with_its_own_temperature():
    def fixed_temperature(student_logits, teacher_logits):
        return 16 * kl(student_logits, teacher_logits, 4.0)

    found = diagnose(adapt(fixed_temperature, "student_logits, teacher_logits"))
    assert (found.alpha_on, found.hard_term) == ("ignored", False)
    # a KL softened by its own T = 4 matches no softening by the T it is given, but a KL at a fixed temperature
    # does: the direction is left unknown, not called "other"; the T it is given changes nothing: no T**2
    assert (found.direction, found.t_squared, found.equivalent) == (UNKNOWN, False, None)
    assert (found.student_softened, found.teacher_softened) == (False, False)
    assert "no candidate formula fits" in found.reading and "does not make it another divergence" in found.reading
    # built with the T it is given, the same loss reads in full
    found = diagnose(from_factory(lambda T, alpha: lambda s, t: T * T * kl(s, t, T), "student_logits, teacher_logits"))
    assert (found.direction, found.t_squared, found.student_softened, found.teacher_softened) == (
        "forward_kl", True, True, True)


def test_from_factory_reads_a_loss_object_built_with_t_and_alpha():
    class TorchdistillLike(nn.Module):  # alpha on the hard term, beta = 1 - alpha on the soft one
        def __init__(self, temperature, alpha):
            super().__init__()
            self.temperature, self.alpha = temperature, alpha

        def forward(self, student_output, teacher_output, targets):
            soft = kl(student_output, teacher_output, self.temperature) * self.temperature**2
            return self.alpha * ce(student_output, targets) + (1 - self.alpha) * soft

    found = diagnose(from_factory(lambda T, alpha: TorchdistillLike(T, alpha)))
    assert {field: getattr(found, field) for field in FIELDS} == {**HINTON, "alpha_on": "hard"}


@pytest.mark.parametrize("order", ["student, teacher", "labels, labels", ""])
def test_adapt_rejects_an_order_it_cannot_follow(order):
    with pytest.raises(ValueError, match="order must name each of its arguments once"):
        adapt(hinton, order)
    with pytest.raises(ValueError, match="order must name each of its arguments once"):
        from_factory(lambda T, alpha: hinton, order)


# --- the measuring tools ----------------------------------------------------------------------------------------


def test_as_number_reads_every_scalar_form_and_names_the_rest():
    assert as_number(torch.tensor([[2.5]])) == 2.5 and as_number(np.float32(1.5)) == 1.5
    assert as_number((torch.tensor(3), "details")) == 3.0 and as_number(np.array([4.0])) == 4.0
    assert as_number(True) == 1.0 and as_number(torch.tensor(0.5, requires_grad=True) * 2) == 1.0
    with pytest.raises(ProbeError, match=r"shape \(2, 3\), not a scalar"):
        as_number(torch.zeros(2, 3))
    with pytest.raises(ProbeError, match=r"an array of shape \(2,\)"):
        as_number(np.zeros(2))


def test_call_with_deadline_returns_raises_or_gives_up():
    assert call_with_deadline(lambda: 7, 1.0) == 7
    with pytest.raises(ProbeError, match="raised ZeroDivisionError"):
        call_with_deadline(lambda: 1 / 0, 1.0)
    release = threading.Event()
    with pytest.raises(ProbeError, match="did not return within 0.05 s") as raised:
        call_with_deadline(release.wait, 0.05)
    release.set()
    assert raised.value.kind == "hung"


def test_caller_passes_copies_so_a_loss_that_changes_its_inputs_does_not_change_the_probes():
    def in_place(s, t, y, T, alpha):
        s /= T  # a common shortcut that would corrupt the caller's tensors
        return kl(s, t, 1.0)

    inputs = design_inputs(torch.float64)
    before = inputs.students.clone()
    caller = Caller(in_place, 1.0)
    first = caller.value(inputs.students[0], inputs.teachers[0], inputs.labels, 2.0, 0.5)
    assert caller.value(inputs.students[0], inputs.teachers[0], inputs.labels, 2.0, 0.5) == first
    assert torch.equal(inputs.students, before)
    assert caller.gradient(inputs.students[0], inputs.teachers[0], inputs.labels, 2.0, 0.5).abs().sum() > 0


def test_the_formulas_match_torch_where_torch_has_them():
    inputs = design_inputs(torch.float64)
    z = sides(inputs.students, inputs.teachers, 3.0, True, True)
    student, teacher = inputs.students[2], inputs.teachers[1]
    forward = FORMULAS["forward KL(p || q)"][1](z)[2, 1].mean()
    torch.testing.assert_close(forward, kl(student, teacher, 3.0))
    reverse = FORMULAS["reverse KL(q || p)"][1](z)[2, 1].mean()
    torch.testing.assert_close(reverse, F.kl_div(F.log_softmax(teacher / 3, 1), F.log_softmax(student / 3, 1),
                                                 reduction="batchmean", log_target=True))
    to_teacher, to_student, _ = mixture_columns(z, 0.5)
    jsd = (to_teacher + to_student)[2, 1] / 2  # symmetric in p and q, at most log 2
    swapped = sides(inputs.teachers, inputs.students, 3.0, True, True)
    torch.testing.assert_close(jsd, sum(mixture_columns(swapped, 0.5)[:2])[1, 2] / 2)
    assert bool((jsd > 0).all() and (jsd < math.log(2)).all())


def test_fit_tells_an_exact_formula_from_a_wrong_one():
    inputs = design_inputs(torch.float64)
    z = sides(inputs.students, inputs.teachers, 2.0, True, True)
    forward = FORMULAS["forward KL(p || q)"][1](z).mean(-1)
    values = 3 + 8 * forward
    exact = fit(values, [forward])
    assert exact.misfit < 1e-10 and exact.coefficients.tolist() == pytest.approx([3, 8])
    assert fit(values, [FORMULAS["reverse KL(q || p)"][1](z).mean(-1)]).misfit > 0.01
