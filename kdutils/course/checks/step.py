"""The check of notebook 04's training step: one distillation step, with a teacher that must not learn.

The check watches both models and the optimizer. Its teacher has dropout, so a teacher left in train
mode gives other soft labels on every call; its student records the mode it ran in, so a student put in
``eval()`` (the other model switched by mistake) is named. The student's new weights are compared with
one correct step from the same weights, and a wrong order of ``zero_grad``, ``backward`` and ``step`` is
named from where the weights went and which gradients were left behind. What the models record is kept
by the check, not in attributes the student's function could rewrite.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from ...losses import distillation_loss
from .harness import Diagnosis, run_check, same
from .verdicts import CheckResult

__all__ = ["LEARNING_RATE", "WatchedSGD", "check_distillation_step"]

LEARNING_RATE = 0.5  # of the optimizer the check hands to the student's step


class _WatchedTeacher(nn.Module):
    """A teacher with dropout that reports, for every forward pass, its mode and whether a graph was recorded."""

    def __init__(self, report: Callable[[bool, bool], None]) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
        self._report = report

    def forward(self, x):
        logits = self.net(x)
        self._report(self.training, logits.requires_grad)
        return logits


class _WatchedStudent(nn.Module):
    """A one-layer student that reports its mode at every forward pass."""

    def __init__(self, report: Callable[[bool], None]) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        self._report = report

    def forward(self, x):
        self._report(self.training)
        return self.net(x)


class WatchedSGD(torch.optim.SGD):
    """Plain SGD that counts its steps."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


def _gradient(net: nn.Module, loss: Callable[[torch.Tensor], torch.Tensor], images) -> list[torch.Tensor]:
    """The gradient of ``loss(net(images))`` with respect to each of ``net``'s parameters (``net`` unchanged)."""
    net = copy.deepcopy(net)
    return list(torch.autograd.grad(loss(net(images)), list(net.parameters())))


def _moved_by(params, initial, gradient, atol: float = 1e-5) -> bool:
    """Whether each parameter went from its initial value exactly one SGD step down ``gradient``."""
    return all(same(p.detach(), p0 - LEARNING_RATE * g, atol=atol) for p, p0, g in zip(params, initial, gradient))


def _cleared(grads) -> bool:
    return all(g is None or not bool(g.any()) for g in grads)


def _holds(grads, expected) -> bool:
    return all(g is not None and same(g, e, atol=1e-5) for g, e in zip(grads, expected))


def _watch_the_models(teacher_calls, student_calls, teacher_params, student) -> None:
    """Stop at the first thing the step did to the models that a distillation step must not do."""
    if not teacher_calls:
        raise Diagnosis("your step never called the teacher.")
    if any(training for training, _ in teacher_calls):
        raise Diagnosis("the teacher ran in train() mode: call teacher.eval() first. With dropout or batch "
                        "norm its soft labels change from call to call.")
    if any(recorded for _, recorded in teacher_calls):
        raise Diagnosis("the teacher's forward pass recorded a graph for backpropagation: compute its "
                        "logits under torch.no_grad() (a .detach() afterwards comes too late, the graph "
                        "is already built), or memory and time are spent on the teacher.")
    if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in teacher_params):
        raise Diagnosis("gradients reached the teacher's weights: its logits must carry no gradient.")
    if not student_calls:
        raise Diagnosis("your step never ran the student on the images.")
    if not all(student_calls):
        raise Diagnosis("the student ran in eval() mode: only the teacher goes to eval(). A student that learns "
                        "must stay in train() mode, or its dropout and batch norm are off while it trains.")
    if not student.training:
        raise Diagnosis("your step left the student in eval() mode: the next step would train it with dropout "
                        "and batch norm off. Call eval() on the teacher only.")


def _wrong_order(params, initial, new, stale) -> Diagnosis | None:
    """Which order of zero_grad, backward and step explains the weights and the gradients left behind."""
    grads = [p.grad for p in params]
    both = [n + s for n, s in zip(new, stale)]
    if _moved_by(params, initial, both):
        if _cleared(grads):
            return Diagnosis("you cleared the gradients after optimizer.step(): the step still added the gradients "
                             "left from before this batch to this one. Call optimizer.zero_grad() before "
                             "loss.backward().")
        return Diagnosis("you did not call optimizer.zero_grad(): the gradients of the previous step were "
                         "added to this one.")
    if _moved_by(params, initial, stale):
        return Diagnosis("optimizer.step() ran before loss.backward(): it applied the gradients left from before "
                         "this batch, not this batch's. The order is zero_grad(), backward(), step().")
    if all(same(p.detach(), p0) for p, p0 in zip(params, initial)):
        if _holds(grads, new):
            return Diagnosis("optimizer.step() ran but the student's weights did not move: it came before "
                             "loss.backward(), when there was no gradient yet. The order is zero_grad(), "
                             "backward(), step().")
        return Diagnosis("optimizer.step() ran but the student's weights did not move: the gradients were "
                         "cleared between loss.backward() and optimizer.step() (or backward was never called). "
                         "The order is zero_grad(), backward(), step().")
    return None


def _wrong_loss(params, initial, net, images, labels, teacher_logits, T, alpha) -> Diagnosis | None:
    """Which other loss (defaults, swapped roles, one term only) explains the weights the step reached."""
    candidates = [
        (lambda z: distillation_loss(z, labels, teacher_logits, T=4.0, alpha=0.9),
         f"your step ignored the T = {T} and alpha = {alpha} it was given and used distillation_loss's defaults "
         "(4.0 and 0.9): pass T=T, alpha=alpha."),
        (lambda z: distillation_loss(z, labels, teacher_logits, T=T, alpha=0.0),
         "your step trained on the labels alone (the cross-entropy, as if alpha were 0): use "
         f"distillation_loss with the alpha = {alpha} you were given."),
        (lambda z: distillation_loss(z, labels, teacher_logits, T=T, alpha=1.0),
         "your step trained on the teacher's soft labels alone (as if alpha were 1): use distillation_loss with "
         f"the alpha = {alpha} you were given."),
        (lambda z: distillation_loss(teacher_logits, labels, z, T=T, alpha=alpha),
         "you passed the student's logits where the teacher's go, and the teacher's where the student's go: "
         "distillation_loss(student_logits, labels, teacher_logits, T, alpha)."),
    ]
    for loss, message in candidates:
        if _moved_by(params, initial, _gradient(net, loss, images)):
            return Diagnosis(message)
    return None


def _check_returned_loss(returned, net, images, labels, teacher_logits, T: float, alpha: float) -> None:
    """A step that returns its loss must return this batch's loss before the step (the one it backpropagated)."""
    if returned is None:
        return
    try:
        value = float(returned.detach() if isinstance(returned, torch.Tensor) else returned)
    except (TypeError, ValueError, RuntimeError):
        raise Diagnosis(f"your step returned {type(returned).__name__}: return the loss (a number or a 0-d "
                        "tensor) that you called backward() on.") from None
    with torch.no_grad():
        before = float(distillation_loss(net(images), labels, teacher_logits, T=T, alpha=alpha))
    if not math.isclose(value, before, rel_tol=1e-4, abs_tol=1e-6):
        raise Diagnosis(f"the weights are right, but the loss you returned ({value:.6g}) is not this batch's loss "
                        f"before the step ({before:.6g}): return the loss you called backward() on, not one "
                        "computed after optimizer.step().")


def _one_step_checked(call: Callable, step: Callable, T: float, alpha: float) -> None:
    """Run the student's step once on watched models at ``T`` and ``alpha``; raise the first mistake found."""
    torch.manual_seed(0)
    teacher_calls: list[tuple[bool, bool]] = []
    student_calls: list[bool] = []
    teacher = _WatchedTeacher(lambda training, graph: teacher_calls.append((training, graph))).train()
    student = _WatchedStudent(student_calls.append).train()
    images, labels = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    net = copy.deepcopy(student.net)  # the student as it starts, without the reporting
    params, teacher_params = list(student.parameters()), list(teacher.parameters())
    initial = [p.detach().clone() for p in params]
    optimizer = WatchedSGD(params, lr=LEARNING_RATE)
    stale = [torch.ones_like(p) for p in params]  # from an earlier step: zero_grad must clear them
    for p, s in zip(params, stale):
        p.grad = s.clone()
    returned = call(step, student, teacher, optimizer, images, labels, T, alpha)

    _watch_the_models(teacher_calls, student_calls, teacher_params, student)
    if optimizer.steps == 0:
        raise Diagnosis("you never called optimizer.step() on the optimizer you were given, so the student "
                        "does not learn from this batch (or only through an optimizer of your own).")
    if optimizer.steps > 1:
        raise Diagnosis(f"you called optimizer.step() {optimizer.steps} times: one step per batch.")
    if not all(bool(torch.isfinite(p).all()) for p in params):
        raise Diagnosis("after your step the student's weights are NaN (or infinite): the loss that was "
                        "backpropagated was not a finite number.")

    with torch.no_grad():
        teacher_logits = teacher.eval().net(images)
    new = _gradient(net, lambda z: distillation_loss(z, labels, teacher_logits, T=T, alpha=alpha), images)
    if _moved_by(params, initial, new, atol=1e-6):
        _check_returned_loss(returned, net, images, labels, teacher_logits, T, alpha)
        return
    found = (_wrong_order(params, initial, new, stale)
             or _wrong_loss(params, initial, net, images, labels, teacher_logits, T, alpha))
    if found is not None:
        raise found
    raise Diagnosis(f"at T = {T}, alpha = {alpha} the student's new weights differ from one step of "
                    "distillation_loss(student_logits, labels, teacher_logits, T, alpha) with the given "
                    "optimizer.")


def check_distillation_step(
    step: Callable[[nn.Module, nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor, float, float], object],
) -> CheckResult:
    """``step(student, teacher, optimizer, images, labels, T, alpha)`` must make one distillation step.

    Teacher in ``eval()``, its logits under ``no_grad()``, then ``distillation_loss``,
    ``optimizer.zero_grad()``, ``loss.backward()``, ``optimizer.step()``; the student stays in train
    mode. The check compares the student's new weights with a correct step from the same weights, at
    two (T, alpha) pairs that are not ``distillation_loss``'s defaults.
    """

    def body(call) -> str:
        for T, alpha in ((2.5, 0.6), (6.0, 0.3)):
            _one_step_checked(call, step, T, alpha)
        return "teacher in eval() under no_grad(), and the student moved exactly as one distillation step says."

    return run_check(step, body)
