"""Checks for the exercises of the series: a student passes their function, the check passes it or names the bug.

Each ``check_*`` runs the student's function on crafted cases, compares it with the correct answer
and, when they differ, with the classic mistakes, so that the message says *which* mistake it is and
how to see it. Every check prints its verdict and returns a ``CheckResult`` (``passed``, ``message``),
so tests and graders can use it too::

    from kdutils.exercises import check_distillation_loss
    result = check_distillation_loss(my_loss)   # prints "PASSED: ..." or "NOT YET: <diagnosis>"
    result.passed                              # True or False

The distillation bugs are the ones reported again and again in public issue trackers: the log of raw
logits, ``reduction='mean'``, a missing ``T**2``, the KL divergence the wrong way round, ``alpha`` on
the wrong term, a teacher with gradients or in train mode, and teacher outputs out of step with the
shuffled batch. Each of them trains without an error and quietly gives a worse student.
"""

from __future__ import annotations

import copy
import itertools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .analysis import expected_calibration_error
from .ensembles import average_probabilities
from .losses import distillation_loss, hint_loss
from .models import StudentModel, TeacherModel, count_parameters

__all__ = [
    "CheckResult",
    "check_add_to_bias",
    "check_distillation_loss",
    "check_distillation_step",
    "check_ensemble_average",
    "check_epoch_alignment",
    "check_expected_calibration_error",
    "check_gap_closed",
    "check_hint_loss",
    "check_parameter_count",
    "check_precision",
    "check_reverse_kl",
    "check_softmax_with_temperature",
]


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a check: ``passed`` and a message (what was checked, or the diagnosis)."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{'PASSED' if self.passed else 'NOT YET'}: {self.message}"

    def __repr__(self) -> str:
        return f"CheckResult(passed={self.passed})"

    def _ipython_display_(self) -> None:
        """Show nothing as a cell's value: the check has printed its verdict already."""


def _verdict(passed: bool, message: str) -> CheckResult:
    result = CheckResult(passed, message)
    print(result)
    return result


class _Diagnosis(Exception):
    """Raised inside a check to stop at the first mistake found, with its message."""


def _run(check: Callable[[], str]) -> CheckResult:
    """Run one check's body: a string is a pass message; a ``_Diagnosis`` is the mistake found."""
    try:
        return _verdict(True, check())
    except _Diagnosis as diagnosis:
        return _verdict(False, str(diagnosis))


def _call(function: Callable, *args, **kwargs):
    """Call the student's function; its own exceptions become a diagnosis, except NotImplementedError.

    ``NotImplementedError`` propagates: it is the stub of the student edition, not yet written.
    PyTorch's warnings (such as the one for ``reduction='mean'``) are silenced here: the check names
    the mistake itself.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as error:  # any error in the student's code is what the student needs to see
        raise _Diagnosis(f"your function raised {type(error).__name__}: {error}") from error


def _as_float(value, what: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise _Diagnosis(f"{what} should be a single number, got a tensor of shape {tuple(value.shape)}.")
        value = value.item()
    if not isinstance(value, (int, float)):
        raise _Diagnosis(f"{what} should be a number, got {type(value).__name__}.")
    return float(value)


def _close(a: float, b: float, rel: float = 1e-4, abs_: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


# --- notebook 01: counting parameters -------------------------------------------------------------------


def check_parameter_count(count: Callable[[nn.Module], int]) -> CheckResult:
    """``count(model)`` must return the number of parameters: every weight and every bias."""

    def body() -> str:
        cases = [nn.Linear(3, 2), nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), TeacherModel(),
                 StudentModel()]
        for model in cases:
            got = _as_float(_call(count, model), "the count")
            expected = count_parameters(model)
            if got == expected:
                continue
            weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
            tensors = len(list(model.parameters()))
            layers = sum(isinstance(m, nn.Linear) for m in model.modules())
            if got == weights:
                raise _Diagnosis(f"you counted the weights ({weights:,}) but not the biases: a Linear layer "
                                 "also has one bias per output. Sum p.numel() over model.parameters().")
            if got in (tensors, layers):
                raise _Diagnosis(f"you counted tensors or layers ({int(got)}), not numbers: each parameter "
                                 "tensor holds p.numel() numbers. Sum p.numel() over model.parameters().")
            raise _Diagnosis(f"for {type(model).__name__} you returned {got:,.0f}, expected {expected:,}.")
        return "weights and biases counted for four models, the teacher's 235,146 and the student's 101,770."

    return _run(body)


# --- notebook 02: precision from a confusion matrix ------------------------------------------------------


def check_precision(precision: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """``precision(matrix)`` must give, per class, the fraction of the images *predicted* as it that are it.

    ``matrix[i, j]`` counts images of true class ``i`` predicted as ``j``. A class never predicted
    has precision 0.
    """

    def body() -> str:
        matrix = torch.tensor([[8, 2, 0], [4, 6, 0], [0, 5, 5]])
        expected = torch.tensor([8 / 12, 6 / 13, 1.0])
        got = _call(precision, matrix.clone())
        got = torch.as_tensor(got, dtype=torch.float64)
        if got.shape != (3,):
            raise _Diagnosis(f"return one precision per class, shape (3,), got shape {tuple(got.shape)}.")
        recall = matrix.diag() / matrix.sum(dim=1)
        if torch.allclose(got, recall.double()):
            raise _Diagnosis("you divided by the row sums (the true classes): that is recall. Precision divides "
                             "the diagonal by the column sums, the number of images predicted as each class.")
        if torch.allclose(got, 100 * expected.double()):
            raise _Diagnosis("your values are percentages; return fractions between 0 and 1.")
        if not torch.allclose(got, expected.double()):
            raise _Diagnosis(f"expected {[round(v, 3) for v in expected.tolist()]}, got "
                             f"{[round(v, 3) for v in got.tolist()]} for the matrix {matrix.tolist()}.")
        never = torch.tensor([[3, 0], [2, 0]])
        got = torch.as_tensor(_call(precision, never), dtype=torch.float64)
        if not bool(torch.isfinite(got).all()):
            raise _Diagnosis("a class that is never predicted gives 0 / 0 = NaN: clamp the column sums to at "
                             "least 1 (its precision is then 0).")
        return "precision divides the diagonal by the column sums, and a class never predicted gets 0."

    return _run(body)


# --- notebook 03: softmax with a temperature ---------------------------------------------------------


def check_softmax_with_temperature(softmax_t: Callable[[torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """``softmax_t(logits, T)`` must return ``softmax(logits / T)`` over the classes (the last dimension)."""

    def body() -> str:
        generator = torch.Generator().manual_seed(0)
        logits = 3 * torch.randn(4, 10, generator=generator)
        for T in (1.0, 4.0, 0.5):
            got = _call(softmax_t, logits.clone(), T)
            if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
                shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                raise _Diagnosis(f"return one probability per logit, shape {tuple(logits.shape)}, got {shape}.")
            expected = torch.softmax(logits / T, dim=-1)
            if torch.allclose(got, expected, atol=1e-6):
                continue
            if torch.allclose(got, torch.softmax(logits * T, dim=-1), atol=1e-6):
                raise _Diagnosis("you multiplied the logits by T; divide them by T (a higher T must flatten).")
            if torch.allclose(got, torch.softmax(logits / T, dim=0), atol=1e-6):
                raise _Diagnosis("you normalised over dim 0, the batch; normalise over the classes (dim=-1).")
            if T != 1.0 and torch.allclose(got, torch.softmax(logits, dim=-1), atol=1e-6):
                raise _Diagnosis("your result does not depend on T: divide the logits by T before the softmax.")
            if not torch.allclose(got.sum(dim=-1), torch.ones(4), atol=1e-5):
                raise _Diagnosis("your rows do not sum to 1: divide exp(logits / T) by its sum over the classes.")
            raise _Diagnosis(f"at T = {T} your probabilities differ from softmax(logits / T) by up to "
                             f"{(got - expected).abs().max().item():.3g}.")
        huge = torch.tensor([[1000.0, 990.0, 0.0]])
        got = _call(softmax_t, huge, 1.0)
        if not bool(torch.isfinite(got).all()):
            raise _Diagnosis("logits of 1000 give NaN: exp(1000) overflows. Subtract each row's maximum first "
                             "(softmax does not change when a constant is added) or use torch.softmax.")
        return "softmax(logits / T) over the classes, stable for large logits."

    return _run(body)


# --- notebook 04: the distillation loss ----------------------------------------------------------------


def _loss_variant(s, y, t, T, alpha, *, mean=False, no_t2=False, reverse=False, swap_alpha=False, batch_sum=False):
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
    hard = F.cross_entropy(s, y, reduction="sum" if batch_sum else "mean")
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
}


def check_distillation_loss(
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float, float], torch.Tensor],
) -> CheckResult:
    """``loss_fn(student_logits, labels, teacher_logits, T, alpha)`` must equal ``kdutils.losses.distillation_loss``.

    The check compares values and gradients on crafted batches (with negative logits, several T and
    alpha) and names each classic mistake it recognises, alone or combined.
    """

    def body() -> str:
        generator = torch.Generator().manual_seed(0)
        cases = []
        for T, alpha, batch in ((4.0, 0.9, 8), (2.0, 0.5, 16), (8.0, 0.7, 8)):
            s = 2 * torch.randn(batch, 10, generator=generator)
            t = 3 * torch.randn(batch, 10, generator=generator)
            y = torch.randint(0, 10, (batch,), generator=generator)
            cases.append((s, y, t, T, alpha))
        for s, y, t, T, alpha in cases:
            student = s.clone().requires_grad_(True)
            got = _call(loss_fn, student, y.clone(), t.clone(), T, alpha)
            if not isinstance(got, torch.Tensor):
                raise _Diagnosis(f"return the loss as a tensor, to back-propagate it; got {type(got).__name__}.")
            if got.numel() != 1:
                raise _Diagnosis(f"return one number for the batch (a 0-d tensor), got shape {tuple(got.shape)}: "
                                 "sum the KL over the classes and average over the examples.")
            if torch.isnan(got).any():
                raise _Diagnosis("your loss is NaN: you took the log of logits. Raw logits can be negative, and "
                                 "log of a negative number is NaN; use F.log_softmax(student_logits / T, dim=1).")
            if not got.requires_grad:
                raise _Diagnosis("your loss carries no gradient to the student's logits (was it computed under "
                                 "no_grad, or detached?).")
            value = got.item()
            expected = distillation_loss(s, y, t, T=T, alpha=alpha).item()
            if _close(value, expected):
                (grad,) = torch.autograd.grad(got, student)
                reference = s.clone().requires_grad_(True)
                (expected_grad,) = torch.autograd.grad(distillation_loss(reference, y, t, T=T, alpha=alpha), reference)
                if not torch.allclose(grad, expected_grad, rtol=1e-4, atol=1e-7):
                    raise _Diagnosis("your loss has the right value but the wrong gradient: is a term detached?")
                continue
            names = list(_LOSS_BUGS)
            for count in range(1, len(names) + 1):
                for combination in itertools.combinations(names, count):
                    flags = dict.fromkeys(combination, True)
                    if _close(value, _loss_variant(s, y, t, T, alpha, **flags).item()):
                        messages = [_LOSS_BUGS[name].format(C=s.shape[1]) for name in combination]
                        raise _Diagnosis(" ALSO: ".join(messages))
            if alpha < 1 and _close(value, (alpha * T * T * F.kl_div(F.log_softmax(s / T, dim=1),
                                                                    F.log_softmax(t / T, dim=1), log_target=True,
                                                                    reduction="batchmean")
                                            + (1 - alpha) * F.cross_entropy(s / T, y)).item()):
                raise _Diagnosis("your cross-entropy with the hard labels uses the temperature: compute it on the "
                                 "raw student logits (T = 1).")
            raise _Diagnosis(f"at T = {T}, alpha = {alpha} your loss is {value:.5f}, the correct one {expected:.5f}; "
                             "compare term by term with alpha * T**2 * KL(teacher || student) + "
                             "(1 - alpha) * cross-entropy.")
        return "same values and gradients as kdutils.losses.distillation_loss at T = 2, 4 and 8."

    return _run(body)


class _WatchedTeacher(nn.Module):
    """A teacher with dropout that records the mode and autograd state of every forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.net(x)


def check_distillation_step(
    step: Callable[[nn.Module, nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor, float, float], object],
) -> CheckResult:
    """``step(student, teacher, optimizer, images, labels, T, alpha)`` must make one distillation step.

    Teacher in ``eval()``, its logits under ``no_grad()``, then ``distillation_loss``,
    ``optimizer.zero_grad()``, ``loss.backward()``, ``optimizer.step()``. The check watches the
    teacher and compares the student's new weights with a correct step from the same weights.
    """

    def body() -> str:
        torch.manual_seed(0)
        teacher = _WatchedTeacher().train()  # left in train mode on purpose: the step must switch it
        student = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        images, labels = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
        initial, reference_student = copy.deepcopy(student), copy.deepcopy(student)
        optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
        for p in student.parameters():  # stale gradients from an earlier step: zero_grad must clear them
            p.grad = torch.ones_like(p)
        _call(step, student, teacher, optimizer, images, labels, 4.0, 0.9)

        if not teacher.calls:
            raise _Diagnosis("your step never called the teacher.")
        if any(training for training, _ in teacher.calls):
            raise _Diagnosis("the teacher ran in train() mode: call teacher.eval() first. With dropout or batch "
                             "norm its soft labels change from call to call.")
        if any(grad_enabled for _, grad_enabled in teacher.calls):
            raise _Diagnosis("the teacher's forward pass recorded a graph: compute its logits under "
                             "torch.no_grad(), or gradients, memory and time are spent on the teacher.")
        if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in teacher.parameters()):
            raise _Diagnosis("gradients reached the teacher's weights: its logits must carry no gradient.")

        with torch.no_grad():
            teacher_logits = teacher.eval().net(images)
        reference_optimizer = torch.optim.SGD(reference_student.parameters(), lr=0.5)
        reference_optimizer.zero_grad()
        distillation_loss(reference_student(images), labels, teacher_logits, T=4.0, alpha=0.9).backward()
        reference_optimizer.step()
        if all(torch.allclose(a, b, atol=1e-6) for a, b in zip(student.parameters(), reference_student.parameters())):
            return "teacher in eval() under no_grad(), and the student moved exactly as one distillation step says."
        accumulated = copy.deepcopy(reference_student)
        with torch.no_grad():
            for p in accumulated.parameters():
                p -= 0.5  # the stale gradient of ones, times the learning rate, not cleared
        if all(torch.allclose(a, b, atol=1e-5) for a, b in zip(student.parameters(), accumulated.parameters())):
            raise _Diagnosis("you did not call optimizer.zero_grad(): the gradients of the previous step were added "
                             "to this one.")
        if all(torch.equal(a, b) for a, b in zip(student.parameters(), initial.parameters())):
            raise _Diagnosis("the student's weights did not move: call loss.backward(), then optimizer.step().")
        raise _Diagnosis("the student's new weights differ from one step of distillation_loss(student_logits, "
                         "labels, teacher_logits, T, alpha) with the given optimizer.")

    return _run(body)


def check_epoch_alignment(
    epoch: Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor, torch.Tensor, int,
                     torch.Generator, Callable], object],
) -> CheckResult:
    """``epoch(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn)``: one epoch, cached targets.

    The epoch must shuffle with ``generator``, and give ``loss_fn(student_logits, labels,
    teacher_logits_of_the_batch)`` the teacher's logits *of the same examples* as the images and labels.
    """

    def body() -> str:
        n, batch_size = 40, 8
        x = torch.arange(n, dtype=torch.float32).reshape(n, 1).repeat(1, 4)  # row i holds the number i
        y = torch.arange(n) % 10
        teacher_logits = torch.zeros(n, 10)
        teacher_logits[:, 0] = torch.arange(n, dtype=torch.float32)  # column 0 tells which example it is
        seen: list[int] = []
        problems: list[str] = []

        class Identity(nn.Module):  # a "student" whose logits say which example they belong to
            def __init__(self) -> None:
                super().__init__()
                self.scale = nn.Parameter(torch.ones(()))

            def forward(self, xb):
                out = torch.zeros(xb.shape[0], 10)
                out[:, 0] = xb[:, 0]
                return out * self.scale

        def spy_loss(student_logits, labels, batch_teacher_logits, *args, **kwargs):
            rows = student_logits[:, 0].detach().round().long()
            seen.extend(rows.tolist())
            if not torch.equal(batch_teacher_logits[:, 0].round().long(), rows):
                problems.append("order")
            if not torch.equal(labels, y[rows]):
                problems.append("labels")
            if batch_teacher_logits.requires_grad:
                problems.append("grad")
            return (student_logits * 0).sum() + 0 * batch_teacher_logits.sum().detach()

        student = Identity()
        optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
        _call(epoch, student, optimizer, x, y, teacher_logits, batch_size, torch.Generator().manual_seed(0), spy_loss)
        if not seen:
            raise _Diagnosis("your epoch never called loss_fn(student_logits, labels, teacher_logits_of_the_batch).")
        if "order" in problems:
            raise _Diagnosis("the teacher's logits are out of step with the shuffled batch: slice the cached "
                             "teacher logits with the same indices as the images (teacher_logits[idx]).")
        if "labels" in problems:
            raise _Diagnosis("the labels are out of step with the images: slice them with the same indices.")
        if "grad" in problems:
            raise _Diagnosis("the teacher's logits carry a gradient: compute the cache under torch.no_grad().")
        if sorted(seen) != list(range(n)):
            raise _Diagnosis(f"one epoch must visit each of the {n} examples exactly once; yours visited "
                             f"{len(seen)} rows, {len(set(seen))} distinct.")
        if seen == list(range(n)):
            raise _Diagnosis("your epoch does not shuffle: draw the order with torch.randperm(n, generator=generator).")
        return "shuffled batches, each with its own examples' teacher logits and labels."

    return _run(body)


# --- notebook 05: gap closed ----------------------------------------------------------------------------


def check_gap_closed(gap: Callable[[float, float, float], float]) -> CheckResult:
    """``gap(scratch, distilled, teacher)`` must be ``(distilled - scratch) / (teacher - scratch)``."""

    def body() -> str:
        cases = [(80.0, 82.0, 90.0), (80.0, 91.0, 90.0), (80.0, 79.0, 90.0), (0.80, 0.86, 0.90)]
        for scratch, distilled, teacher in cases:
            got = _as_float(_call(gap, scratch, distilled, teacher), "the gap closed")
            expected = (distilled - scratch) / (teacher - scratch)
            if _close(got, expected):
                continue
            if _close(got, 100 * expected):
                raise _Diagnosis("return a fraction (0.2 for a fifth of the gap), not a percentage.")
            if _close(got, min(max(expected, 0.0), 1.0)):
                raise _Diagnosis(f"do not clip to [0, 1]: a student can beat its teacher (here {expected:.2f}, "
                                 "a born-again student) or lose to its scratch twin (below 0).")
            if teacher != distilled and _close(got, (distilled - scratch) / (teacher - distilled)):
                raise _Diagnosis("divide by the whole gap to close, teacher - scratch, not teacher - distilled.")
            if _close(got, -expected):
                raise _Diagnosis("the sign is reversed: a distilled student better than scratch closes a positive gap.")
            raise _Diagnosis(f"gap({scratch}, {distilled}, {teacher}) should be {expected:.4f}, got {got:.4f}.")
        return "(distilled - scratch) / (teacher - scratch), unclipped: above 1 when the student beats its teacher."

    return _run(body)


# --- notebook 06: the bias correction -------------------------------------------------------------------


def check_add_to_bias(add_to_bias: Callable[[nn.Module, int, float], nn.Module]) -> CheckResult:
    """``add_to_bias(model, cls, shift)`` must return a *copy* whose output bias for ``cls`` is raised by ``shift``."""

    def body() -> str:
        torch.manual_seed(0)
        model = StudentModel()
        original = copy.deepcopy(model.state_dict())
        x = torch.randn(5, 784)
        shifted = _call(add_to_bias, model, 7, 2.5)
        if not all(torch.equal(v, model.state_dict()[k]) for k, v in original.items()):
            raise _Diagnosis("your function changed the model it was given: shift a copy (copy.deepcopy(model)), "
                             "so the uncorrected student is still there to compare with.")
        if not isinstance(shifted, nn.Module):
            raise _Diagnosis(f"return the shifted copy of the model, got {type(shifted).__name__}.")
        with torch.no_grad():
            difference = shifted(x) - model(x)
        expected = torch.zeros(5, 10)
        expected[:, 7] = 2.5
        if torch.allclose(difference, expected, atol=1e-5):
            return "a copy whose class-7 logit is 2.5 higher for every image, the original untouched."
        if torch.allclose(difference, torch.full((5, 10), 2.5), atol=1e-5):
            raise _Diagnosis("you raised every class's bias: raise only the omitted class's (bias[cls]).")
        changed = [c for c in range(10) if not torch.allclose(difference[:, c], torch.zeros(5), atol=1e-5)]
        if len(changed) == 1 and changed[0] != 7:
            raise _Diagnosis(f"you shifted class {changed[0]}, not class 7.")
        if changed == [7]:
            raise _Diagnosis("the logit of class 7 changed by a different amount for different images: shift the "
                             "output layer's bias, not its weights.")
        raise _Diagnosis("the shifted model's outputs differ from the original's by more than bias[cls] + shift.")

    return _run(body)


# --- notebook 07: expected calibration error ---------------------------------------------------------------


def check_expected_calibration_error(ece: Callable[[torch.Tensor, torch.Tensor, int], float]) -> CheckResult:
    """``ece(probabilities, labels, bins)`` must match ``kdutils.analysis.expected_calibration_error``."""

    def body() -> str:
        generator = torch.Generator().manual_seed(0)
        probabilities = torch.softmax(3 * torch.randn(200, 10, generator=generator), dim=1)
        labels = torch.randint(0, 10, (200,), generator=generator)
        labels[:120] = probabilities[:120].argmax(dim=1)  # right 60% of the time or more
        for bins in (10, 15):
            got = _as_float(_call(ece, probabilities.clone(), labels.clone(), bins), "the ECE")
            expected = expected_calibration_error(probabilities, labels, bins)
            if _close(got, expected, rel=1e-4):
                continue
            if _close(got, 100 * expected, rel=1e-4):
                raise _Diagnosis("return a fraction between 0 and 1, not a percentage.")
            confidence, predicted = probabilities.max(dim=1)
            correct = (predicted == labels).double()
            which = (confidence * bins).ceil().long().clamp(1, bins) - 1
            gaps = [abs(correct[which == k].mean().item() - confidence[which == k].double().mean().item())
                    for k in range(bins) if bool((which == k).any())]
            if _close(got, sum(gaps) / len(gaps), rel=1e-4):
                raise _Diagnosis("you averaged the bins equally: weight each bin's |accuracy - confidence| by its "
                                 "share of the examples.")
            true_class = probabilities[torch.arange(200), labels]
            if _close(got, abs(correct.mean().item() - true_class.double().mean().item()), rel=1e-4):
                raise _Diagnosis("the confidence is the largest probability (of the predicted class), not the "
                                 "probability of the true class.")
            raise _Diagnosis(f"with {bins} bins the ECE should be {expected:.4f}, got {got:.4f}.")
        return "the share-weighted gap between accuracy and confidence per bin, as kdutils computes it."

    return _run(body)


# --- notebook 08: the hint loss ------------------------------------------------------------------------------


def check_hint_loss(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``loss_fn(projected_student_features, teacher_features)``: mean squared error, as ``hint_loss(kind="mse")``."""

    def body() -> str:
        generator = torch.Generator().manual_seed(0)
        projected = torch.randn(6, 8, generator=generator)
        teacher = torch.randn(6, 8, generator=generator)
        student = projected.clone().requires_grad_(True)
        got = _call(loss_fn, student, teacher.clone())
        value = _as_float(got, "the hint loss")
        expected = hint_loss(projected, teacher).item()
        if _close(value, expected):
            if not (isinstance(got, torch.Tensor) and got.requires_grad):
                raise _Diagnosis("return the loss as a tensor that carries a gradient to the student's features.")
            return "the mean over every feature of every example of the squared difference."
        difference = projected - teacher
        if _close(value, difference.pow(2).sum().item()):
            raise _Diagnosis("you summed the squared differences: take their mean (the loss should not grow with "
                             "the batch or the feature size).")
        if _close(value, difference.pow(2).sum(dim=1).mean().item()):
            raise _Diagnosis("you summed over the features and averaged over the batch: average over both.")
        if _close(value, difference.abs().mean().item()):
            raise _Diagnosis("that is the mean absolute difference (L1): square the differences.")
        cosine = F.cosine_similarity(projected, teacher, dim=1).mean().item()
        if _close(value, cosine):
            raise _Diagnosis("you returned the cosine similarity, which is high when features agree: a loss must "
                             "be low then (1 - cosine), and this exercise asks for the mean squared error.")
        raise _Diagnosis(f"expected {expected:.5f}, got {value:.5f}.")

    return _run(body)


# --- notebook 09: averaging an ensemble ----------------------------------------------------------------------


def check_ensemble_average(average) -> CheckResult:
    """``average(logits_list, T)`` must return the mean over members of ``softmax(logits / T)``."""

    def body() -> str:
        generator = torch.Generator().manual_seed(0)
        # Three members on 6 examples, 4 classes; member 0 has much larger logits, so averaging logits shows.
        members = [scale * torch.randn(6, 4, generator=generator) for scale in (6.0, 1.0, 1.5)]
        for T in (1.0, 4.0):
            got = _call(average, [m.clone() for m in members], T)
            if not isinstance(got, torch.Tensor):
                raise _Diagnosis(f"return a tensor of probabilities, got {type(got).__name__}.")
            expected = average_probabilities(members, T)
            if got.shape == (len(members), 6, 4):
                raise _Diagnosis("you returned one distribution per member: take the mean over the members "
                                 "(dim=0 of the stacked tensor).")
            if got.shape != expected.shape:
                raise _Diagnosis(f"the result should have one row per example and one column per class, "
                                 f"{tuple(expected.shape)}; got {tuple(got.shape)}.")
            got = got.detach().double()
            if torch.allclose(got, expected.double(), atol=1e-5):
                continue
            stacked = torch.stack(members)
            if torch.allclose(got, torch.softmax(stacked.mean(dim=0) / T, dim=1).double(), atol=1e-5):
                raise _Diagnosis("you averaged the logits, then took the softmax: that is the geometric mean, "
                                 "sharper and dominated by the member with the largest logits. Take each member's "
                                 "softmax first, then average the probabilities.")
            if torch.allclose(got, len(members) * expected.double(), atol=1e-5):
                raise _Diagnosis("each row sums to the number of members: divide the sum by it (take the mean).")
            if T != 1.0 and torch.allclose(got, average_probabilities(members, 1.0).double(), atol=1e-5):
                raise _Diagnosis("the temperature has no effect: divide each member's logits by T before the softmax.")
            if T != 1.0 and torch.allclose(got, average_probabilities([m * T * T for m in members], T).double(),
                                           atol=1e-5):
                raise _Diagnosis("you multiplied the logits by T: divide them by T, which softens the distribution.")
            if torch.allclose(got, torch.softmax(stacked / T, dim=1).mean(dim=0).double(), atol=1e-5):
                raise _Diagnosis("the softmax ran over the examples (dim=0 of each member's logits): take it over "
                                 "the classes, dim=1.")
            if torch.allclose(got.exp(), expected.double(), atol=1e-5):
                raise _Diagnosis("you returned log-probabilities: return the probabilities themselves.")
            raise _Diagnosis(f"at T = {T} the averaged probabilities differ from the expected ones by up to "
                             f"{(got - expected.double()).abs().max().item():.3g}.")
        return "the mean of the members' softened probabilities, at T = 1 and T = 4."

    return _run(body)


# --- notebook 10: reverse KL ------------------------------------------------------------------------------------


def check_reverse_kl(reverse_kl: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``reverse_kl(student_logits, teacher_logits)`` on ``(N, V)`` logits: mean over rows of KL(student || teacher).

    The on-policy students of notebook 10 minimise it: mode-seeking, it punishes the student for putting
    probability where the teacher puts little.
    """

    def body() -> str:
        generator = torch.Generator().manual_seed(0)
        student_logits = 2 * torch.randn(12, 27, generator=generator)
        teacher_logits = 3 * torch.randn(12, 27, generator=generator)
        log_s, log_t = F.log_softmax(student_logits, dim=-1), F.log_softmax(teacher_logits, dim=-1)
        per_row_reverse = (log_s.exp() * (log_s - log_t)).sum(dim=-1)
        per_row_forward = (log_t.exp() * (log_t - log_s)).sum(dim=-1)
        expected = per_row_reverse.mean().item()
        student = student_logits.clone().requires_grad_(True)
        got = _call(reverse_kl, student, teacher_logits.clone())
        value = _as_float(got, "the reverse KL")
        if math.isnan(value):
            raise _Diagnosis("your KL is NaN: you took the log of logits. Use F.log_softmax(logits, dim=-1).")
        if _close(value, expected):
            if not (isinstance(got, torch.Tensor) and got.requires_grad):
                raise _Diagnosis("return a tensor that carries a gradient to the student's logits.")
            (grad,) = torch.autograd.grad(got, student)
            reference = student_logits.clone().requires_grad_(True)
            log_r = F.log_softmax(reference, dim=-1)
            (expected_grad,) = torch.autograd.grad((log_r.exp() * (log_r - log_t)).sum(dim=-1).mean(), reference)
            if not torch.allclose(grad, expected_grad, rtol=1e-4, atol=1e-7):
                raise _Diagnosis("the value is right but the gradient is not: the student's probabilities that "
                                 "weight the sum must stay in the graph (do not detach them).")
            return "the mean over rows of sum_v p_s (log p_s - log p_t), gradient included."
        if _close(value, per_row_forward.mean().item()):
            raise _Diagnosis("that is the forward KL(teacher || student): weight by the student's probabilities, "
                             "sum_v p_s (log p_s - log p_t).")
        if _close(value, per_row_reverse.sum().item()):
            raise _Diagnosis("you summed over the rows: average over them, so the loss does not grow with the batch.")
        if _close(value, per_row_reverse.mean().item() / 27):
            raise _Diagnosis("you averaged over the vocabulary too: sum over the vocabulary, average over the rows.")
        if _close(value, (log_s - log_t).sum(dim=-1).mean().item()) or _close(value, (log_s - log_t).mean().item()):
            raise _Diagnosis("the log-ratio must be weighted by the student's probabilities p_s before the sum.")
        raise _Diagnosis(f"expected {expected:.5f}, got {value:.5f}.")

    return _run(body)
