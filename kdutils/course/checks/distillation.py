"""Checks of notebooks 03 and 04: softmax with a temperature, the distillation loss, one distillation step.

The distillation bugs are the ones reported again and again in public issue trackers: the log of raw
logits, ``reduction='mean'``, a missing ``T**2``, the KL divergence the wrong way round, ``alpha`` on
the wrong term, a teacher with gradients or in train mode. Each of them trains without an error and
quietly gives a worse student; the check recognises each one, alone or combined, by its gradient.
"""

from __future__ import annotations

import copy
import functools
import itertools
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ...losses import distillation_loss
from .harness import Diagnosis, check_finite, close, run_check, same, to_number, to_tensor
from .verdicts import CheckResult

__all__ = ["WatchedSGD", "check_distillation_loss", "check_distillation_step", "check_softmax_with_temperature",
           "is_nan", "nan_diagnosis", "reference"]


# --- notebook 03: softmax with a temperature ---------------------------------------------------------


def check_softmax_with_temperature(softmax_t: Callable[[torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """``softmax_t(logits, T)`` must return ``softmax(logits / T)`` over the classes (the last dimension).

    The exercise asks for it without ``torch.softmax``; the check says so when the answer uses a ready-made softmax.
    """

    def body(call) -> str:
        generator = torch.Generator().manual_seed(0)
        cases = [(3 * torch.randn(4, 10, generator=generator), T) for T in (1.0, 4.0, 0.5)]
        cases += [(5 * torch.randn(6, 5, generator=generator), T) for T in (2.5, 3)]
        cases += [(2 * torch.randn(2, 3, 5, generator=generator), 2.0)]  # notebook 10's (batch, position, vocabulary)
        for logits, T in cases:
            got = to_tensor(call(softmax_t, logits.clone(), T), "the result")
            if got.shape != logits.shape:
                raise Diagnosis(f"return one probability per logit, shape {tuple(logits.shape)}, got "
                                f"{tuple(got.shape)}.")
            check_finite(got, f"logits between {logits.min():.1f} and {logits.max():.1f} at T = {T}")
            z = logits.double()
            expected = torch.softmax(z / T, dim=-1)
            if same(got, expected, atol=1e-6):
                continue
            if same(got, torch.softmax(z * T, dim=-1), atol=1e-6):
                raise Diagnosis("you multiplied the logits by T; divide them by T (a higher T must flatten).")
            if same(got, torch.softmax(z / T, dim=0), atol=1e-6):
                raise Diagnosis("you normalised over dim 0, the batch; normalise over the classes (dim=-1).")
            if z.dim() > 2 and same(got, torch.softmax(z / T, dim=1), atol=1e-6):
                raise Diagnosis(f"for logits of shape {tuple(z.shape)} you normalised over dim 1; the classes are "
                                "the last dimension (dim=-1), whatever the number of dimensions before them.")
            if T != 1.0 and same(got, torch.softmax(z, dim=-1), atol=1e-6):
                raise Diagnosis("your result does not depend on T: divide the logits by T before the exponential.")
            if not same(got.sum(dim=-1), torch.ones(len(z)), atol=1e-5):
                raise Diagnosis("your rows do not sum to 1: divide exp(logits / T) by its sum over the classes.")
            raise Diagnosis(f"at T = {T} your probabilities differ from softmax(logits / T) by up to "
                            f"{(got - expected).abs().max().item():.3g}.")
        extremes = [(torch.tensor([[1000.0, 990.0, 0.0]]), 1.0, "exp(1000) overflows to inf, and inf / inf is NaN"),
                    (torch.tensor([[-1000.0, -990.0, -1010.0]]), 1.0, "exp(-990) underflows to 0, and 0 / 0 is NaN"),
                    (torch.tensor([[500.0, 499.0, -3.0]]), 0.5, "exp(1000) overflows to inf"),
                    (torch.tensor([[1000.0, 0.0, 990.0], [-1000.0, -999.0, -1010.0]]), 1.0,
                     "a row far below the largest logit of the whole tensor underflows to 0 / 0, so one maximum "
                     "for the whole tensor is not enough")]
        for logits, T, why in extremes:
            got = to_tensor(call(softmax_t, logits.clone(), T), "the result")
            expected = torch.softmax(logits.double() / T, dim=-1)
            if got.shape == logits.shape and bool(torch.isfinite(got).all()) and same(got, expected, 1e-6):
                continue
            if got.shape == logits.shape and bool(torch.isfinite(got).all()):
                why = (f"the right answer is {[[round(v, 6) for v in row] for row in expected.tolist()]}: clipping "
                       "or clamping the logits avoids the overflow but changes the answer")
            raise Diagnosis(f"the logits {logits.tolist()} at T = {T} give {got.tolist()}: {why}. "
                            "Subtract each row's maximum first (a softmax does not change when the same "
                            "number is subtracted from every logit of a row).")
        return "softmax(logits / T) over the classes, six cases (one of three dimensions), stable for logits of +-1000."

    return run_check(softmax_t, body, library=("soft_targets", "softmax", "log_softmax", "Softmax", "LogSoftmax"))


# --- notebook 04: the distillation loss ----------------------------------------------------------------


def _loss_variant(s, y, t, T, alpha, *, mean=False, no_t2=False, reverse=False, swap_alpha=False, batch_sum=False,
                  hard_at_T=False):
    """The distillation loss with any combination of the classic mistakes switched on."""
    log_q, log_p = F.log_softmax(s / T, dim=1), F.log_softmax(t / T, dim=1)
    if reverse:  # KL(student || teacher)
        log_q, log_p = log_p, log_q
    per_example = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    soft = per_example.sum() if batch_sum else per_example.mean()
    if mean:
        soft = soft / s.shape[1]
    if not no_t2:
        soft = soft * T * T
    hard = F.cross_entropy(s / T if hard_at_T else s, y, reduction="sum" if batch_sum else "mean")
    soft_weight, hard_weight = (1 - alpha, alpha) if swap_alpha else (alpha, 1 - alpha)
    return soft_weight * soft + hard_weight * hard


_LOSS_BUGS = {
    "mean": "your soft term is {C}x too small: reduction='mean' divides by the classes too; use "
            "reduction='batchmean' (the KL divergence per example, averaged over the batch).",
    "no_t2": "your gradient shrinks like 1/T**2: multiply the soft term by T**2 (T * T), so changing T does not "
             "change how much the teacher counts.",
    "reverse": "your loss is KL(student || teacher): F.kl_div(input, target) computes KL(target || input), so the "
               "input must be the student's log-probabilities and the target the teacher's (teacher and student "
               "are swapped, or the KL runs the wrong way).",
    "swap_alpha": "alpha weights the other term: alpha multiplies the soft (teacher) term and 1 - alpha the "
                  "cross-entropy with the labels (Keras' example uses the opposite convention).",
    "batch_sum": "your loss grows with the batch size: average over the batch instead of summing.",
    "hard_at_T": "your cross-entropy with the hard labels uses the temperature: compute it on the raw student "
                 "logits (T = 1).",
}


def is_nan(value) -> bool:
    """Whether the student's result is a one-number tensor holding NaN."""
    return isinstance(value, torch.Tensor) and value.numel() == 1 and bool(torch.isnan(value.detach()).any())


def nan_diagnosis(call: Callable, loss_fn: Callable, what: str, *args) -> Diagnosis:
    """Why a loss returned NaN: call it again with every logit made positive (a softmax does not change)."""
    shifted = [a.detach() + 50 if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    shifted[0].requires_grad_(True)
    try:
        again = call(loss_fn, *shifted)
        fine_when_positive = isinstance(again, torch.Tensor) and bool(torch.isfinite(again.detach()).all())
    except Diagnosis:
        fine_when_positive = False
    if fine_when_positive:
        return Diagnosis(f"your function returned NaN for {what}, but not once every logit is made positive: it "
                         "takes the log of raw logits, which can be negative. Take log-probabilities instead "
                         "(F.log_softmax).")
    return Diagnosis(f"your function returned NaN for {what}, also when every logit is positive, so not from a log "
                     "of raw logits. Print its terms one by one to find the first NaN; places to look: a log of a "
                     "number that can be negative or 0 (F.kl_div takes the log of its target, unless "
                     "log_target=True), a 0 / 0.")


def _value_and_gradient(call: Callable, loss_fn: Callable, s: torch.Tensor, *args) -> tuple[float, torch.Tensor]:
    """Call a loss on a fresh copy of the student's logits ``s``: its value, and its gradient with respect to ``s``."""
    student = s.clone().requires_grad_(True)
    got = call(loss_fn, student, *args)
    if not isinstance(got, torch.Tensor):
        raise Diagnosis(f"return the loss as a tensor, to backpropagate it; got {type(got).__name__}.")
    if got.numel() != 1:
        raise Diagnosis(f"return one number for the batch (a 0-d tensor), got shape {tuple(got.shape)}: sum over "
                        "the classes and average over the examples.")
    if is_nan(got):
        raise nan_diagnosis(call, loss_fn, "the loss", s, *args)
    value = to_number(got, "the loss")
    if not got.requires_grad:
        raise Diagnosis("your loss carries no gradient to the student's logits (was it computed under no_grad, "
                        "or detached?).")
    (gradient,) = torch.autograd.grad(got.sum(), student, allow_unused=True)
    if gradient is None:
        raise Diagnosis("your loss does not depend on the student's logits: no gradient reaches them.")
    return value, gradient


def reference(loss: Callable, s: torch.Tensor, *args) -> tuple[float, torch.Tensor]:
    """A known loss's value at the student's logits ``s`` and its gradient with respect to them."""
    student = s.clone().requires_grad_(True)
    value = loss(student, *args)
    return value.item(), torch.autograd.grad(value, student)[0]


def check_distillation_loss(
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float, float], torch.Tensor],
) -> CheckResult:
    """``loss_fn(student_logits, labels, teacher_logits, T, alpha)`` must equal ``kdutils.losses.distillation_loss``.

    The check compares values and gradients on random batches at five (T, alpha) pairs and names each
    classic mistake it recognises, alone or combined, by its gradient. A soft *cross-entropy* with the
    teacher's soft labels also passes: it is the KL divergence plus the teacher's entropy, a constant for
    the student, so it has the same gradient and trains the same student; only its value is higher.
    """

    def body(call) -> str:
        generator = torch.Generator().manual_seed(0)
        cross_entropy_form = False
        # The first case's alpha is not 0.5, where alpha on the wrong term would change nothing.
        for T, alpha, batch in ((2.0, 0.6, 16), (8.0, 0.7, 8), (4.0, 0.25, 12), (4.0, 0.9, 8), (2.0, 1.0, 8)):
            s = 2 * torch.randn(batch, 10, generator=generator)
            t = 3 * torch.randn(batch, 10, generator=generator)
            y = torch.randint(0, 10, (batch,), generator=generator)
            value, gradient = _value_and_gradient(call, loss_fn, s, y.clone(), t.clone(), T, alpha)
            expected, expected_gradient = reference(distillation_loss, s, y, t, T, alpha)
            if torch.allclose(gradient.double(), expected_gradient.double(), rtol=1e-4, atol=1e-6):
                log_p = F.log_softmax(t / T, dim=1)
                entropy = -(log_p.exp() * log_p).sum(dim=1).mean().item()
                if close(value, expected):
                    continue
                if close(value, expected + alpha * T * T * entropy):
                    cross_entropy_form = True
                    continue
                with_cross_entropy = expected + alpha * T * T * entropy
                raise Diagnosis(f"your gradient is right but the value is not: {value:.5f} at T = {T}, alpha = "
                                f"{alpha}, where the loss is {expected:.5f} (or {with_cross_entropy:.5f} written "
                                "with the soft cross-entropy). Is a constant added, or a term printed wrong?")
            names = list(_LOSS_BUGS)
            for count in range(1, len(names) + 1):
                for combination in itertools.combinations(names, count):
                    flags = dict.fromkeys(combination, True)
                    _, bug_gradient = reference(functools.partial(_loss_variant, **flags), s, y, t, T, alpha)
                    if torch.allclose(gradient.double(), bug_gradient.double(), rtol=1e-4, atol=1e-6):
                        messages = [_LOSS_BUGS[name].format(C=s.shape[1]) for name in combination]
                        raise Diagnosis(" ALSO: ".join(messages))
            if close(value, expected):
                raise Diagnosis("your loss has the right value but the wrong gradient: is a term detached?")
            raise Diagnosis(f"at T = {T}, alpha = {alpha} your loss is {value:.5f}, the correct one {expected:.5f}; "
                            "compare term by term with alpha * T**2 * KL(teacher || student) + "
                            "(1 - alpha) * cross-entropy.")
        if cross_entropy_form:
            return ("same gradients as kdutils.losses.distillation_loss at T = 2, 4 and 8. Your soft term is "
                    "the cross-entropy with the teacher's soft labels: it equals the KL divergence plus the teacher's "
                    "entropy, a constant for the student, so it trains the same student; its value is higher by "
                    "alpha * T**2 * H(teacher), and it is not 0 when the student matches the teacher.")
        return "same values and gradients as kdutils.losses.distillation_loss at T = 2, 4 and 8."

    return run_check(loss_fn, body, library=("distillation_loss", "token_distillation_loss"))


class _WatchedTeacher(nn.Module):
    """A teacher with dropout that records, for every forward pass, its mode and whether a graph was recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x):
        logits = self.net(x)
        self.calls.append((self.training, logits.requires_grad))
        return logits


class WatchedSGD(torch.optim.SGD):
    """Plain SGD that counts its steps."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


def _one_step(student: nn.Module, images, labels, teacher_logits, T: float, alpha: float) -> nn.Module:
    """A copy of ``student`` after one correct SGD step of the distillation loss (learning rate 0.5)."""
    student = copy.deepcopy(student)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    optimizer.zero_grad()
    distillation_loss(student(images), labels, teacher_logits, T=T, alpha=alpha).backward()
    optimizer.step()
    return student


def _same_weights(a: nn.Module, b: nn.Module, atol: float = 1e-6) -> bool:
    return all(torch.allclose(p, q, atol=atol) for p, q in zip(a.parameters(), b.parameters()))


def check_distillation_step(
    step: Callable[[nn.Module, nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor, float, float], object],
) -> CheckResult:
    """``step(student, teacher, optimizer, images, labels, T, alpha)`` must make one distillation step.

    Teacher in ``eval()``, its logits under ``no_grad()``, then ``distillation_loss``,
    ``optimizer.zero_grad()``, ``loss.backward()``, ``optimizer.step()``. The check watches the
    teacher and the optimizer, and compares the student's new weights with a correct step from the same
    weights, at two (T, alpha) pairs that are not ``distillation_loss``'s defaults.
    """

    def body(call) -> str:
        for T, alpha in ((2.5, 0.6), (6.0, 0.3)):
            torch.manual_seed(0)
            teacher = _WatchedTeacher().train()  # left in train mode on purpose: the step must switch it
            student = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
            images, labels = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
            initial = copy.deepcopy(student)
            optimizer = WatchedSGD(student.parameters(), lr=0.5)
            for p in student.parameters():  # stale gradients from an earlier step: zero_grad must clear them
                p.grad = torch.ones_like(p)
            call(step, student, teacher, optimizer, images, labels, T, alpha)

            if not teacher.calls:
                raise Diagnosis("your step never called the teacher.")
            if any(training for training, _ in teacher.calls):
                raise Diagnosis("the teacher ran in train() mode: call teacher.eval() first. With dropout or batch "
                                "norm its soft labels change from call to call.")
            if any(recorded for _, recorded in teacher.calls):
                raise Diagnosis("the teacher's forward pass recorded a graph for backpropagation: compute its "
                                "logits under torch.no_grad() (a .detach() afterwards comes too late, the graph "
                                "is already built), or memory and time are spent on the teacher.")
            if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in teacher.parameters()):
                raise Diagnosis("gradients reached the teacher's weights: its logits must carry no gradient.")
            if optimizer.steps == 0:
                raise Diagnosis("you never called optimizer.step() on the optimizer you were given, so the student "
                                "does not learn from this batch (or only through an optimizer of your own).")
            if optimizer.steps > 1:
                raise Diagnosis(f"you called optimizer.step() {optimizer.steps} times: one step per batch.")
            if not all(bool(torch.isfinite(p).all()) for p in student.parameters()):
                raise Diagnosis("after your step the student's weights are NaN (or infinite): the loss that was "
                                "backpropagated was not a finite number.")

            with torch.no_grad():
                teacher_logits = teacher.eval().net(images)
            if _same_weights(student, _one_step(initial, images, labels, teacher_logits, T, alpha)):
                continue
            if _same_weights(student, _one_step(initial, images, labels, teacher_logits, 4.0, 0.9)):
                raise Diagnosis(f"your step ignored the T = {T} and alpha = {alpha} it was given and used "
                                "distillation_loss's defaults (4.0 and 0.9): pass T=T, alpha=alpha.")
            accumulated = _one_step(initial, images, labels, teacher_logits, T, alpha)
            with torch.no_grad():
                for p in accumulated.parameters():
                    p -= 0.5  # the stale gradient of ones, times the learning rate, not cleared
            if _same_weights(student, accumulated, atol=1e-5):
                raise Diagnosis("you did not call optimizer.zero_grad(): the gradients of the previous step were "
                                "added to this one.")
            if all(torch.equal(a, b) for a, b in zip(student.parameters(), initial.parameters())):
                raise Diagnosis("optimizer.step() ran but the student's weights did not move: call loss.backward() "
                                "before optimizer.step(), and optimizer.zero_grad() before loss.backward().")
            raise Diagnosis(f"at T = {T}, alpha = {alpha} the student's new weights differ from one step of "
                            "distillation_loss(student_logits, labels, teacher_logits, T, alpha) with the given "
                            "optimizer.")
        return "teacher in eval() under no_grad(), and the student moved exactly as one distillation step says."

    return run_check(step, body)
