"""Checks of notebooks 08-10: the feature loss, an ensemble's average, the reverse KL divergence."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from ...ensembles import average_probabilities
from ...losses import feature_loss
from .distillation import is_nan, nan_diagnosis, reference
from .harness import Diagnosis, check_finite, close, run_check, same, to_number, to_tensor
from .verdicts import CheckResult

__all__ = ["check_ensemble_average", "check_feature_loss", "check_reverse_kl"]


# --- notebook 08: the feature loss ---------------------------------------------------------------------------


def check_feature_loss(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``loss_fn(projected_student_features, teacher_features)``: the mean squared error, ``feature_loss(kind="mse")``.

    FitNets calls the teacher's guiding layer a "hint"; here both sides are features.
    """

    def body(call) -> str:
        generator = torch.Generator().manual_seed(0)
        for batch, features in ((6, 8), (5, 3), (4, 16)):
            projected = torch.randn(batch, features, generator=generator)
            teacher = torch.randn(batch, features, generator=generator)
            student = projected.clone().requires_grad_(True)
            got = call(loss_fn, student, teacher.clone())
            value = to_number(got, "the feature loss")
            expected = feature_loss(projected, teacher).item()
            difference = projected - teacher
            if close(value, expected):
                if not (isinstance(got, torch.Tensor) and got.requires_grad):
                    raise Diagnosis("return the loss as a tensor that carries a gradient to the student's features.")
                (gradient,) = torch.autograd.grad(got.sum(), student, allow_unused=True)
                if gradient is None or not same(gradient, 2 * difference / difference.numel(), atol=1e-7):
                    raise Diagnosis("the value is right but the gradient is not: is a term detached?")
                continue
            if close(value, difference.pow(2).sum().item()):
                raise Diagnosis("you summed the squared differences: take their mean (the loss should not grow with "
                                "the batch or the feature size).")
            if close(value, difference.pow(2).sum(dim=1).mean().item()):
                raise Diagnosis("you summed over the features and averaged over the batch: average over both.")
            if close(value, difference.abs().mean().item()):
                raise Diagnosis("that is the mean absolute difference (L1): square the differences.")
            if close(value, difference.pow(2).mean().sqrt().item()):
                raise Diagnosis("you took the square root (RMSE): the feature loss is the mean of the squares itself.")
            if close(value, expected / 2):
                raise Diagnosis("you halved the mean squared error: take the mean of the squares as it is.")
            if close(value, F.cosine_similarity(projected, teacher, dim=1).mean().item()):
                raise Diagnosis("you returned the cosine similarity, which is high when features agree: a loss "
                                "must be low then (1 - cosine), and this exercise asks for the mean squared error.")
            raise Diagnosis(f"for {batch} examples of {features} features expected {expected:.5f}, got {value:.5f}.")
        return "the mean over every feature of every example of the squared difference."

    return run_check(loss_fn, body, library=("feature_loss",))


# --- notebook 09: averaging an ensemble ----------------------------------------------------------------------


def check_ensemble_average(average) -> CheckResult:
    """``average(logits_list, T)`` must return the mean over members of ``softmax(logits / T)``."""

    def body(call) -> str:
        generator = torch.Generator().manual_seed(0)
        # Member 0 has much larger logits than the others, so averaging the logits instead shows.
        three = [scale * torch.randn(6, 4, generator=generator) for scale in (6.0, 1.0, 1.5)]
        two = [scale * torch.randn(5, 10, generator=generator) for scale in (4.0, 1.0)]
        four = [scale * torch.randn(3, 7, generator=generator) for scale in (1.0, 5.0, 2.0, 0.5)]
        for members, T in ((three, 1.0), (three, 4.0), (two, 4.0), (four, 1.0)):
            got = to_tensor(call(average, [m.clone() for m in members], T), "the averaged probabilities")
            expected = average_probabilities(members, T).double()
            if got.shape == (len(members), *expected.shape):
                raise Diagnosis("you returned one distribution per member: take the mean over the members "
                                "(dim=0 of the stacked tensor).")
            if got.shape != expected.shape:
                raise Diagnosis(f"the result should have one row per example and one column per class, "
                                f"{tuple(expected.shape)}; got {tuple(got.shape)}.")
            check_finite(got, f"{len(members)} members at T = {T}")
            if same(got, expected):
                continue
            stacked = torch.stack(members).double()
            if same(got, torch.softmax(stacked.mean(dim=0) / T, dim=1)):
                raise Diagnosis("you averaged the logits, then took the softmax: that is the geometric mean, "
                                "sharper and dominated by the member with the largest logits. Take each member's "
                                "softmax first, then average the probabilities.")
            if same(got, torch.log_softmax(stacked / T, dim=2).mean(dim=0).exp()):
                raise Diagnosis("you took the geometric mean of the probabilities (the mean of their logs, then "
                                "exp): its rows do not even sum to 1. Average the probabilities themselves.")
            if same(got, len(members) * expected):
                raise Diagnosis("each row sums to the number of members: divide the sum by it (take the mean).")
            if T != 1.0 and same(got, average_probabilities(members, 1.0)):
                raise Diagnosis("the temperature has no effect: divide each member's logits by T before the softmax.")
            if T != 1.0 and same(got, torch.softmax(stacked * T, dim=2).mean(dim=0)):
                raise Diagnosis("you multiplied the logits by T: divide them by T, which softens the distribution.")
            if same(got, torch.softmax(stacked / T, dim=1).mean(dim=0)):
                raise Diagnosis("the softmax ran over the examples (dim=0 of each member's logits): take it over "
                                "the classes, dim=1.")
            if same(got.exp(), expected):
                raise Diagnosis("you returned log-probabilities: return the probabilities themselves.")
            raise Diagnosis(f"with {len(members)} members at T = {T} the averaged probabilities differ from the "
                            f"expected ones by up to {(got - expected).abs().max().item():.3g}.")
        return "the mean of the members' softened probabilities, at T = 1 and T = 4."

    return run_check(average, body, library=("average_probabilities", "ensemble_logits"))


# --- notebook 10: reverse KL ------------------------------------------------------------------------------------


def check_reverse_kl(reverse_kl: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``reverse_kl(student_logits, teacher_logits)`` on ``(N, V)`` logits: mean over rows of KL(student || teacher).

    The on-policy students of notebook 10 minimise it: mode-seeking, it punishes the student for putting
    probability where the teacher puts little.
    """

    def per_row_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """KL(softmax(p) || softmax(q)) of each row, from logits: the check's own reference, written once."""
        log_p, log_q = F.log_softmax(p, dim=-1), F.log_softmax(q, dim=-1)
        return (log_p.exp() * (log_p - log_q)).sum(dim=-1)

    def reverse(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return per_row_kl(s, t).mean()

    def body(call) -> str:
        generator = torch.Generator().manual_seed(0)
        for rows, vocabulary in ((12, 27), (7, 5), (20, 3)):
            student_logits = 2 * torch.randn(rows, vocabulary, generator=generator)
            teacher_logits = 3 * torch.randn(rows, vocabulary, generator=generator)
            log_s, log_t = F.log_softmax(student_logits, dim=-1), F.log_softmax(teacher_logits, dim=-1)
            per_row_reverse = per_row_kl(student_logits, teacher_logits)
            per_row_forward = per_row_kl(teacher_logits, student_logits)
            expected = per_row_reverse.mean().item()
            student = student_logits.clone().requires_grad_(True)
            got = call(reverse_kl, student, teacher_logits.clone())
            if is_nan(got):
                raise nan_diagnosis(call, reverse_kl, "the reverse KL", student_logits, teacher_logits)
            value = to_number(got, "the reverse KL")
            if close(value, expected):
                if not (isinstance(got, torch.Tensor) and got.requires_grad):
                    raise Diagnosis("return a tensor that carries a gradient to the student's logits.")
                (gradient,) = torch.autograd.grad(got.sum(), student, allow_unused=True)
                _, expected_gradient = reference(reverse, student_logits, teacher_logits)
                if gradient is None or not same(gradient, expected_gradient, atol=1e-7):
                    raise Diagnosis("the value is right but the gradient is not: the student's probabilities that "
                                    "weight the sum must stay in the graph (do not detach them).")
                continue
            if close(value, per_row_forward.mean().item()):
                raise Diagnosis("that is the forward KL(teacher || student): weight by the student's probabilities, "
                                "sum_v p_s (log p_s - log p_t).")
            if close(value, per_row_reverse.sum().item()):
                raise Diagnosis("you summed over the rows: average over them, so the loss does not grow with the "
                                "batch.")
            if close(value, expected / vocabulary):
                raise Diagnosis("you averaged over the vocabulary too: sum over the vocabulary, average over the "
                                "rows.")
            if close(value, (log_s - log_t).sum(dim=-1).mean().item()) or close(value, (log_s - log_t).mean().item()):
                raise Diagnosis("the log-ratio must be weighted by the student's probabilities p_s before the sum.")
            raise Diagnosis(f"for {rows} rows of {vocabulary} characters expected {expected:.5f}, got {value:.5f}.")
        return "the mean over rows of sum_v p_s (log p_s - log p_t), gradient included."

    return run_check(reverse_kl, body, library=("token_kl",))
