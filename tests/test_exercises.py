"""Every exercise check passes a correct answer and names each classic mistake with its own diagnosis."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from kdutils import exercises
from kdutils.exercises import (
    CheckResult,
    check_add_to_bias,
    check_distillation_loss,
    check_distillation_step,
    check_ensemble_average,
    check_epoch_alignment,
    check_expected_calibration_error,
    check_gap_closed,
    check_hint_loss,
    check_parameter_count,
    check_precision,
    check_reverse_kl,
    check_softmax_with_temperature,
)
from kdutils.losses import distillation_loss


def assert_passes(result: CheckResult) -> None:
    assert isinstance(result, CheckResult) and result.passed, result.message
    assert bool(result) and str(result).startswith("PASSED: ")


def assert_diagnoses(result: CheckResult, *phrases: str) -> None:
    assert isinstance(result, CheckResult) and not result.passed, "a buggy answer passed"
    assert str(result).startswith("NOT YET: ")
    for phrase in phrases:
        assert phrase in result.message, f"expected {phrase!r} in: {result.message}"


def test_a_check_prints_its_verdict(capsys):
    check_gap_closed(lambda s, d, t: (d - s) / (t - s))
    assert capsys.readouterr().out.startswith("PASSED: ")


def test_a_check_as_the_last_line_of_a_cell_shows_only_its_printed_verdict(capsys):
    # A check cell ends with the check call, so Jupyter would also show the returned value.
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns["check"] = check_gap_closed
    shell.run_cell("check(lambda scratch, distilled, teacher: (distilled - scratch) / (teacher - scratch))")
    shown = capsys.readouterr().out
    assert shown.startswith("PASSED: ") and "CheckResult" not in shown
    shell.run_cell("repr(check(lambda scratch, distilled, teacher: 0.0))")
    assert "CheckResult(passed=False)" in capsys.readouterr().out  # repr itself is unchanged


def test_the_stub_of_the_student_edition_is_not_a_diagnosis():
    def stub(*args):
        raise NotImplementedError("write the loss")

    with pytest.raises(NotImplementedError, match="write the loss"):
        check_distillation_loss(stub)


def test_an_error_in_the_students_code_is_reported_not_raised():
    assert_diagnoses(check_gap_closed(lambda s, d, t: 1 / 0), "ZeroDivisionError")


# --- the distillation loss: each classic bug has its own diagnosis ---------------------------------------


def correct_loss(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def log_of_logits(s, y, t, T, alpha):  # the article's loss
    soft = nn.KLDivLoss()(torch.log(s / T), F.softmax(t / T, dim=1)) * (T * T)
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y)


def mean_reduction(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="mean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def missing_t_squared(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y)


def kl_wrong_direction(s, y, t, T, alpha):  # teacher and student swapped
    soft = F.kl_div(F.log_softmax(t / T, dim=1), F.softmax(s / T, dim=1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def alpha_on_the_other_term(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    return (1 - alpha) * T * T * soft + alpha * F.cross_entropy(s, y)


def mean_and_no_t_squared(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="mean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y)


def hard_term_at_temperature(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s / T, y)


def detached(s, y, t, T, alpha):
    return correct_loss(s.detach(), y, t, T, alpha)


def test_correct_losses_pass():
    assert_passes(check_distillation_loss(correct_loss))
    assert_passes(check_distillation_loss(lambda s, y, t, T, alpha: distillation_loss(s, y, t, T=T, alpha=alpha)))


@pytest.mark.parametrize(
    ("buggy", "phrases"),
    [
        (log_of_logits, ["NaN", "log of logits", "log_softmax"]),
        (mean_reduction, ["10x too small", "reduction='mean'", "batchmean"]),
        (missing_t_squared, ["shrinks like 1/T**2", "multiply the soft term by T**2"]),
        (kl_wrong_direction, ["KL(student || teacher)"]),
        (alpha_on_the_other_term, ["alpha weights the other term"]),
        (mean_and_no_t_squared, ["10x too small", "ALSO", "1/T**2"]),
        (hard_term_at_temperature, ["cross-entropy with the hard labels uses the temperature"]),
        (detached, ["no gradient"]),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_each_classic_loss_bug_gets_its_diagnosis(buggy, phrases):
    assert_diagnoses(check_distillation_loss(buggy), *phrases)


def test_a_loss_that_is_not_one_number_is_diagnosed():
    def per_example(s, y, t, T, alpha):
        return F.cross_entropy(s, y, reduction="none")

    assert_diagnoses(check_distillation_loss(per_example), "one number for the batch")


# --- one training step -------------------------------------------------------------------------------


def correct_step(student, teacher, optimizer, images, labels, T, alpha):
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(images)
    loss = distillation_loss(student(images), labels, teacher_logits, T=T, alpha=alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def teacher_in_train_mode(student, teacher, optimizer, images, labels, T, alpha):
    with torch.no_grad():
        teacher_logits = teacher(images)
    loss = distillation_loss(student(images), labels, teacher_logits, T=T, alpha=alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def teacher_with_gradients(student, teacher, optimizer, images, labels, T, alpha):
    teacher.eval()
    loss = distillation_loss(student(images), labels, teacher(images), T=T, alpha=alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def no_zero_grad(student, teacher, optimizer, images, labels, T, alpha):
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(images)
    distillation_loss(student(images), labels, teacher_logits, T=T, alpha=alpha).backward()
    optimizer.step()


def no_step(student, teacher, optimizer, images, labels, T, alpha):
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(images)
    optimizer.zero_grad()
    distillation_loss(student(images), labels, teacher_logits, T=T, alpha=alpha).backward()


def test_distillation_step_check():
    assert_passes(check_distillation_step(correct_step))
    assert_diagnoses(check_distillation_step(teacher_in_train_mode), "train() mode", "teacher.eval()")
    assert_diagnoses(check_distillation_step(teacher_with_gradients), "torch.no_grad()")
    assert_diagnoses(check_distillation_step(no_zero_grad), "optimizer.zero_grad()")
    assert_diagnoses(check_distillation_step(no_step), "did not move")


# --- one epoch with cached teacher logits ------------------------------------------------------------


def correct_epoch(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
    order = torch.randperm(len(y), generator=generator)
    for begin in range(0, len(y), batch_size):
        idx = order[begin : begin + batch_size]
        loss = loss_fn(student(x[idx]), y[idx], teacher_logits[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def teacher_out_of_step(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
    order = torch.randperm(len(y), generator=generator)
    for begin in range(0, len(y), batch_size):
        idx = order[begin : begin + batch_size]
        loss = loss_fn(student(x[idx]), y[idx], teacher_logits[begin : begin + batch_size])  # unshuffled rows
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def unshuffled(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
    for begin in range(0, len(y), batch_size):
        rows = slice(begin, begin + batch_size)
        loss = loss_fn(student(x[rows]), y[rows], teacher_logits[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def half_an_epoch(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
    order = torch.randperm(len(y), generator=generator)[: len(y) // 2]
    for begin in range(0, len(order), batch_size):
        idx = order[begin : begin + batch_size]
        loss_fn(student(x[idx]), y[idx], teacher_logits[idx]).backward()


def test_epoch_alignment_check():
    assert_passes(check_epoch_alignment(correct_epoch))
    assert_diagnoses(check_epoch_alignment(teacher_out_of_step), "out of step with the shuffled batch",
                     "teacher_logits[idx]")
    assert_diagnoses(check_epoch_alignment(unshuffled), "does not shuffle")
    assert_diagnoses(check_epoch_alignment(half_an_epoch), "exactly once")


# --- softmax with temperature, parameter count, precision, gap closed, bias, ECE, hint loss ----------------


def test_softmax_with_temperature_check():
    assert_passes(check_softmax_with_temperature(lambda z, T: torch.softmax(z / T, dim=-1)))

    def by_hand(z, T):  # correct and stable: subtract the row maximum
        e = torch.exp(z / T - (z / T).max(dim=-1, keepdim=True).values)
        return e / e.sum(dim=-1, keepdim=True)

    assert_passes(check_softmax_with_temperature(by_hand))
    assert_diagnoses(check_softmax_with_temperature(lambda z, T: torch.softmax(z * T, dim=-1)), "multiplied")
    assert_diagnoses(check_softmax_with_temperature(lambda z, T: torch.softmax(z / T, dim=0)), "dim 0")
    assert_diagnoses(check_softmax_with_temperature(lambda z, T: torch.softmax(z, dim=-1)), "does not depend on T")
    assert_diagnoses(check_softmax_with_temperature(lambda z, T: torch.exp(z / T)), "do not sum to 1")

    def unstable(z, T):
        e = torch.exp(z / T)
        return e / e.sum(dim=-1, keepdim=True)

    assert_diagnoses(check_softmax_with_temperature(unstable), "overflows")


def test_parameter_count_check():
    assert_passes(check_parameter_count(lambda m: sum(p.numel() for p in m.parameters())))
    weights_only = lambda m: sum(p.numel() for name, p in m.named_parameters() if name.endswith("weight"))  # noqa: E731
    assert_diagnoses(check_parameter_count(weights_only), "not the biases")
    assert_diagnoses(check_parameter_count(lambda m: len(list(m.parameters()))), "not numbers")


def test_precision_check():
    assert_passes(check_precision(lambda m: m.diag() / m.sum(dim=0).clamp(min=1)))
    assert_diagnoses(check_precision(lambda m: m.diag() / m.sum(dim=1).clamp(min=1)), "that is recall")
    assert_diagnoses(check_precision(lambda m: 100 * m.diag() / m.sum(dim=0).clamp(min=1)), "percentages")
    assert_diagnoses(check_precision(lambda m: m.diag() / m.sum(dim=0)), "0 / 0")


def test_gap_closed_check():
    assert_passes(check_gap_closed(lambda s, d, t: (d - s) / (t - s)))
    assert_diagnoses(check_gap_closed(lambda s, d, t: 100 * (d - s) / (t - s)), "not a percentage")
    assert_diagnoses(check_gap_closed(lambda s, d, t: min(max((d - s) / (t - s), 0), 1)), "do not clip",
                     "born-again")
    assert_diagnoses(check_gap_closed(lambda s, d, t: (d - s) / (t - d)), "teacher - scratch")
    assert_diagnoses(check_gap_closed(lambda s, d, t: (s - d) / (t - s)), "sign is reversed")


def correct_add_to_bias(model, cls, shift):
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        shifted.fc2.bias[cls] += shift
    return shifted


def in_place(model, cls, shift):
    with torch.no_grad():
        model.fc2.bias[cls] += shift
    return model


def every_class(model, cls, shift):
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        shifted.fc2.bias += shift
    return shifted


def weights_not_bias(model, cls, shift):
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        shifted.fc2.weight[cls] += shift
    return shifted


def test_add_to_bias_check():
    assert_passes(check_add_to_bias(correct_add_to_bias))
    assert_diagnoses(check_add_to_bias(in_place), "changed the model it was given", "copy.deepcopy")
    assert_diagnoses(check_add_to_bias(every_class), "every class")
    assert_diagnoses(check_add_to_bias(lambda m, c, s: correct_add_to_bias(m, c - 1, s)), "you shifted class 6")
    assert_diagnoses(check_add_to_bias(weights_not_bias), "not its weights")


def correct_ece(probabilities, labels, bins):
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).float()
    which = (confidence * bins).ceil().long().clamp(1, bins) - 1
    total = 0.0
    for k in range(bins):
        members = which == k
        if members.any():
            total += members.float().mean() * (correct[members].mean() - confidence[members].mean()).abs()
    return float(total)


def test_ece_check():
    assert_passes(check_expected_calibration_error(correct_ece))
    assert_diagnoses(check_expected_calibration_error(lambda p, y, b: 100 * correct_ece(p, y, b)), "percentage")

    def unweighted(probabilities, labels, bins):
        confidence, predicted = probabilities.max(dim=1)
        correct = (predicted == labels).float()
        which = (confidence * bins).ceil().long().clamp(1, bins) - 1
        gaps = [(correct[which == k].mean() - confidence[which == k].mean()).abs() for k in range(bins)
                if (which == k).any()]
        return float(sum(gaps) / len(gaps))

    assert_diagnoses(check_expected_calibration_error(unweighted), "weight each bin")


def test_hint_loss_check():
    assert_passes(check_hint_loss(lambda p, t: F.mse_loss(p, t)))
    assert_diagnoses(check_hint_loss(lambda p, t: ((p - t) ** 2).sum()), "take their mean")
    assert_diagnoses(check_hint_loss(lambda p, t: ((p - t) ** 2).sum(dim=1).mean()), "average over both")
    assert_diagnoses(check_hint_loss(lambda p, t: (p - t).abs().mean()), "L1")
    assert_diagnoses(check_hint_loss(lambda p, t: F.cosine_similarity(p, t, dim=1).mean()), "cosine similarity")


def test_there_are_at_least_ten_checks():
    checks = [name for name in exercises.__all__ if name.startswith("check_")]
    assert len(checks) >= 10


def test_ensemble_average_check():
    def right(logits, T=1.0):
        return torch.stack([torch.softmax(z / T, dim=1) for z in logits]).mean(dim=0)

    assert_passes(check_ensemble_average(right))
    cases = [
        (lambda ls, T=1.0: torch.softmax(torch.stack(ls).mean(dim=0) / T, dim=1), "averaged the logits"),
        (lambda ls, T=1.0: torch.stack([torch.softmax(z / T, dim=1) for z in ls]).sum(dim=0), "take the mean"),
        (lambda ls, T=1.0: torch.stack([torch.softmax(z, dim=1) for z in ls]).mean(dim=0), "no effect"),
        (lambda ls, T=1.0: torch.stack([torch.softmax(z * T, dim=1) for z in ls]).mean(dim=0), "multiplied"),
        (lambda ls, T=1.0: torch.stack([torch.softmax(z / T, dim=0) for z in ls]).mean(dim=0), "over the examples"),
        (lambda ls, T=1.0: right(ls, T).log(), "log-probabilities"),
        (lambda ls, T=1.0: torch.stack([torch.softmax(z / T, dim=1) for z in ls]), "one distribution per member"),
    ]
    for buggy, phrase in cases:
        assert_diagnoses(check_ensemble_average(buggy), phrase)


def test_reverse_kl_check():
    def reverse(s, t):
        log_s, log_t = F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1)
        return (log_s.exp() * (log_s - log_t)).sum(dim=-1).mean()

    assert_passes(check_reverse_kl(reverse))
    assert_passes(check_reverse_kl(lambda s, t: F.kl_div(F.log_softmax(t, dim=-1), F.log_softmax(s, dim=-1),
                                                         reduction="batchmean", log_target=True)))
    assert_diagnoses(check_reverse_kl(lambda s, t: reverse(t, s)), "forward KL")
    assert_diagnoses(check_reverse_kl(lambda s, t: reverse(s, t) * len(s)), "summed over the rows")
    assert_diagnoses(check_reverse_kl(lambda s, t: reverse(s, t) / s.shape[1]), "averaged over the vocabulary")
    assert_diagnoses(check_reverse_kl(lambda s, t: (torch.log(s) - torch.log(t)).sum(-1).mean()), "NaN")

    def detached(s, t):
        log_s, log_t = F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1)
        return (log_s.exp().detach() * (log_s - log_t)).sum(dim=-1).mean()

    assert_diagnoses(check_reverse_kl(detached), "do not detach")
