"""The measuring tools behind ``kdutils.conventions``: designed inputs, a guarded call, the candidate formulas.

``diagnose`` learns a loss's conventions by calling it, never by reading it. This module holds what it
calls it with and what it compares the answers against:

* ``Caller`` calls the loss in a thread of its own with a deadline, turns what it returns into a number
  and turns what goes wrong (an exception, a hang, a vector) into a ``ProbeError``;
* ``design_inputs`` makes the students, teachers and labels the probes combine;
* ``FORMULAS`` and ``mixture_columns`` compute, for every candidate convention, the soft term it
  predicts on those inputs, so that a least-squares ``fit`` can say which candidate the loss follows;
* ``measure_reduction`` and ``measure_trains_student`` are two direct experiments that need no formula.
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

ROWS, CLASSES = 4, 10  # the designed batches: small, so that a slow loss is still diagnosed quickly
STUDENT_SCALES = (0.6, 0.9, 1.2, 1.5, 1.8, 2.2, 1.0, 2.6)  # logit spreads: eight different students
TEACHER_SCALES = (0.4, 1.0, 1.9, 3.0)  # from a nearly flat teacher to a confident one
LOGIT_LIMIT = 4.0  # |logit| <= 4 keeps every probability above ~1e-4, clear of the epsilons losses add


class ProbeError(Exception):
    """A call that gave no usable number. ``kind`` is "raised", "hung" or "not_a_number"."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def call_with_deadline(work: Callable[[], object], seconds: float) -> object:
    """Run ``work()`` in a daemon thread and wait for it at most ``seconds``.

    Python cannot kill a thread: a call that runs past its deadline is reported as hung and left running
    in the background (as a daemon thread it does not keep the interpreter alive).
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # noqa: B036 - even SystemExit from the loss is a finding, not our exit
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True, name="kdutils-conventions-probe")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise ProbeError("hung", f"did not return within {seconds:g} s (it may still be running in the background)")
    error = outcome.get("error")
    if isinstance(error, ProbeError):  # raised by as_number inside the thread: already says what came back
        raise error
    if error is not None:
        raise ProbeError("raised", f"raised {type(error).__name__}: {error}")
    if "value" not in outcome:
        raise ProbeError("raised", "its thread ended without returning a value")
    return outcome["value"]


def as_number(value: object) -> float:
    """The loss's result as a float: a one-number tensor (of any dtype), a Python or numpy number.

    A tuple or list counts by its first item (many losses return ``(loss, details)``). Anything else, a
    vector of per-example losses included, is a ``ProbeError`` that says what came back.
    """
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ProbeError("not_a_number", f"returned a tensor of shape {tuple(value.shape)}, not a scalar: "
                                             "reduce it (e.g. .mean()) before it is diagnosed")
        value = value.detach().reshape(()).cpu()
        return float(value.double()) if not value.is_complex() else _not_real(value)
    if isinstance(value, numbers.Real):  # bool, int, float and numpy's numbers
        return float(value)
    if getattr(value, "size", None) == 1 and hasattr(value, "item"):  # a one-element numpy array
        return as_number(value.item())
    shape = getattr(value, "shape", None)
    described = f"an array of shape {tuple(shape)}" if shape is not None else f"a {type(value).__name__}"
    raise ProbeError("not_a_number", f"returned {described}, not a number")


def _not_real(value: torch.Tensor) -> float:
    raise ProbeError("not_a_number", f"returned a complex number ({value.item()})")


class Caller:
    """Calls the diagnosed loss with fresh copies of the inputs, each call under a deadline.

    After one call hangs, every later call fails at once: a second hung thread would help nobody.
    """

    def __init__(self, loss_fn: Callable, time_limit: float):
        self.loss_fn = loss_fn
        self.time_limit = time_limit
        self.hung = False

    def _guarded(self, work: Callable[[], object]) -> object:
        if self.hung:
            raise ProbeError("hung", "an earlier call did not return")
        try:
            return call_with_deadline(work, self.time_limit)
        except ProbeError as error:
            self.hung = error.kind == "hung"
            raise

    def value(self, student, teacher, labels, T: float, alpha: float) -> float:
        """The loss's value; clones, so that a loss that changes its inputs in place changes only its copies."""
        args = (student.clone(), teacher.clone(), labels.clone(), float(T), float(alpha))
        result = self._guarded(lambda: as_number(self.loss_fn(*args)))
        return result

    def gradient(self, student, teacher, labels, T: float, alpha: float) -> torch.Tensor | None:
        """The gradient of the loss with respect to ``student``; None when the result carries no graph."""
        leaf = student.clone().requires_grad_(True)

        def work() -> torch.Tensor | None:
            result = self.loss_fn(leaf * 1, teacher.clone(), labels.clone(), float(T), float(alpha))
            result = result[0] if isinstance(result, (tuple, list)) and result else result
            as_number(result)  # a vector or a non-number is reported as such
            if not isinstance(result, torch.Tensor) or result.grad_fn is None:
                return None
            (grad,) = torch.autograd.grad(result.reshape(()), leaf, allow_unused=True)
            return torch.zeros_like(leaf) if grad is None else grad.detach()

        return self._guarded(work)


# --- the designed inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """Students ``[S, ROWS, CLASSES]``, teachers ``[K, ROWS, CLASSES]``, labels ``[ROWS]`` and label sets."""

    students: torch.Tensor
    teachers: torch.Tensor
    labels: torch.Tensor
    label_sets: torch.Tensor  # [5, ROWS]: where students[0] is right, where it is wrong, and three at random


def _logits(generator: torch.Generator, scales: tuple[float, ...], positive: bool) -> torch.Tensor:
    noise = torch.randn(len(scales), ROWS, CLASSES, generator=generator, dtype=torch.float64)
    logits = (noise * torch.tensor(scales, dtype=torch.float64)[:, None, None]).clamp(-LOGIT_LIMIT, LOGIT_LIMIT)
    return (logits + LOGIT_LIMIT + 0.5) / 2 if positive else logits  # positive: within [0.25, 4.25]


def design_inputs(dtype: torch.dtype, positive: bool = False, seed: int = 27) -> Inputs:
    """The probes' inputs, the same on every call; ``positive`` logits serve a loss that is NaN on negative ones."""
    generator = torch.Generator().manual_seed(seed)
    students = _logits(generator, STUDENT_SCALES, positive)
    teachers = _logits(generator, TEACHER_SCALES, positive)
    labels = torch.randint(0, CLASSES, (ROWS,), generator=generator)
    shuffled = torch.randint(0, CLASSES, (3, ROWS), generator=generator)
    label_sets = torch.cat([students[0].argmax(1)[None], students[0].argmin(1)[None], shuffled])
    return Inputs(students.to(dtype), teachers.to(dtype), labels, label_sets)


def ordinary_inputs(seed: int = 11) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What a loss meets in training: float32 logits, normal with std 2 (negative ones included), int64 labels."""
    generator = torch.Generator().manual_seed(seed)
    student = 2 * torch.randn(8, CLASSES, generator=generator)
    teacher = 2 * torch.randn(8, CLASSES, generator=generator)
    return student, teacher, torch.randint(0, CLASSES, (8,), generator=generator)


# --- what each candidate convention predicts ----------------------------------------------------------------


@dataclass(frozen=True)
class Sides:
    """Both models' logits as a candidate sees them: ``z`` divided by T or not, ``log_prob`` after log_softmax."""

    student: torch.Tensor
    teacher: torch.Tensor
    student_log_prob: torch.Tensor
    teacher_log_prob: torch.Tensor


def sides(students, teachers, T: float, student_softened: bool, teacher_softened: bool) -> Sides:
    """Every (student, teacher) pair, broadcast to ``[S, K, ROWS, CLASSES]``, in float64."""
    return divided_sides(students, teachers, T if student_softened else 1.0, T if teacher_softened else 1.0)


def divided_sides(students, teachers, student_divisor: float, teacher_divisor: float) -> Sides:
    """``sides`` with each model's logits divided by a number of its own (T, 1, or a loss's fixed temperature)."""
    student = students.double()[:, None] / student_divisor
    teacher = teachers.double()[None, :] / teacher_divisor
    logs = (F.log_softmax(student, -1), F.log_softmax(teacher, -1))  # before broadcasting: 4 to 8 times less work
    return Sides(*torch.broadcast_tensors(student, teacher, *logs))


def _cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1 - F.cosine_similarity(a, b, dim=-1)


# Each formula gives one number per row (summed over the classes); a fit compares their batch means with the
# loss. Names read as what the soft term computes; the first item is the contract's name for its direction.
FORMULAS: dict[str, tuple[str, Callable[[Sides], torch.Tensor]]] = {
    "forward KL(p || q)": ("forward_kl", lambda z: (z.teacher_log_prob.exp()
                                                     * (z.teacher_log_prob - z.student_log_prob)).sum(-1)),
    "reverse KL(q || p)": ("reverse_kl", lambda z: (z.student_log_prob.exp()
                                                     * (z.student_log_prob - z.teacher_log_prob)).sum(-1)),
    "soft cross-entropy -sum p log q": ("soft_cross_entropy",
                                        lambda z: -(z.teacher_log_prob.exp() * z.student_log_prob).sum(-1)),
    "squared error of the logits": ("mse", lambda z: ((z.student - z.teacher) ** 2).sum(-1)),
    "squared error of the probabilities": ("mse", lambda z: ((z.student_log_prob.exp()
                                                               - z.teacher_log_prob.exp()) ** 2).sum(-1)),
    "squared error of the log-probabilities": ("mse", lambda z: ((z.student_log_prob
                                                                   - z.teacher_log_prob) ** 2).sum(-1)),
    "symmetric KL, KL(p || q) + KL(q || p)": ("other", lambda z: ((z.teacher_log_prob.exp() - z.student_log_prob.exp())
                                                                  * (z.teacher_log_prob - z.student_log_prob)).sum(-1)),
    "L1 distance of the probabilities": ("other", lambda z: (z.student_log_prob.exp()
                                                              - z.teacher_log_prob.exp()).abs().sum(-1)),
    "cosine distance of the probabilities": ("other", lambda z: _cosine_distance(z.student_log_prob.exp(),
                                                                                  z.teacher_log_prob.exp())),
    "cosine distance of the logits": ("other", lambda z: _cosine_distance(z.student, z.teacher)),
    "cross-entropy with the teacher's top class": ("other", lambda z: -z.student_log_prob.gather(
        -1, z.teacher.argmax(-1, keepdim=True)).squeeze(-1)),
}

# Only for a loss that is NaN on ordinary logits, probed with positive ones: the log of the raw student logits
# where log-probabilities belong (the article's bug). Dividing the logits by T first only adds log T, a
# constant, so these cannot tell whether the student side was divided by T.
RAW_LOG_FORMULAS: dict[str, tuple[str, Callable[[Sides], torch.Tensor]]] = {
    "forward KL with the log of the raw student logits": (
        "forward_kl", lambda z: (z.teacher_log_prob.exp() * (z.teacher_log_prob - z.student.log())).sum(-1)),
    "soft cross-entropy with the log of the raw student logits": (
        "soft_cross_entropy", lambda z: -(z.teacher_log_prob.exp() * z.student.log()).sum(-1)),
}


def mixture_columns(z: Sides, teacher_share: float) -> list[torch.Tensor]:
    """KL(p || m), KL(q || m) and H(p) per row, m = share * p + (1 - share) * q: the generalised JSD family.

    A fit weighs the columns freely, so the family holds JSD (share 1/2, equal weights), TRL's GKD (share
    beta, weights beta and 1 - beta), DistiLLM's skew KL (one column alone) and its cross-entropy to the
    mixture, -sum p log m (KL(p || m) plus the teacher's entropy).
    """
    log_mixture = torch.logaddexp(z.teacher_log_prob + math.log(teacher_share),
                                  z.student_log_prob + math.log(1 - teacher_share))
    teacher_prob, student_prob = z.teacher_log_prob.exp(), z.student_log_prob.exp()
    to_teacher = (teacher_prob * (z.teacher_log_prob - log_mixture)).sum(-1)
    to_student = (student_prob * (z.student_log_prob - log_mixture)).sum(-1)
    return [to_teacher, to_student, -(teacher_prob * z.teacher_log_prob).sum(-1)]


SOFTENINGS = ((False, False), (False, True), (True, False), (True, True))  # (student, teacher) divided by T


@dataclass
class Candidate:
    """One reading of the soft term: a formula and which sides it divides by T (None: the formula cannot tell)."""

    name: str
    direction: str
    student_softened: bool | None
    teacher_softened: bool
    columns: Callable[[float], list[torch.Tensor]]  # T -> the formula's columns, [S, K] each
    width: int = 1  # how many columns: 1, or 3 for the JSD family
    fits: dict = field(default_factory=dict)  # (T, alpha) -> Fit, filled by the fitting
    exponent: float | None = None  # the soft weight grows as T**exponent


def _shared_sides(inputs: Inputs) -> Callable:
    """``sides`` of the designed inputs, each (T, softening) computed once and shared by the candidates."""
    cache = {}

    def view(T: float, student_softened: bool, teacher_softened: bool) -> Sides:
        key = (T, student_softened, teacher_softened)
        if key not in cache:
            cache[key] = sides(inputs.students, inputs.teachers, *key)
        return cache[key]

    return view


def candidates(inputs: Inputs, positive: bool) -> list[Candidate]:
    """Every formula of ``FORMULAS`` (and ``RAW_LOG_FORMULAS`` for positive probes) with every softening."""
    view = _shared_sides(inputs)
    found = []
    for name, (direction, formula) in {**FORMULAS, **(RAW_LOG_FORMULAS if positive else {})}.items():
        for student_softened, teacher_softened in SOFTENINGS:
            def columns(T, formula=formula, s=student_softened, t=teacher_softened):
                return [formula(view(T, s, t)).mean(-1)]
            softened = None if name in RAW_LOG_FORMULAS else student_softened
            found.append(Candidate(name, direction, softened, teacher_softened, columns))
    return found


def mixture_candidates(inputs: Inputs) -> list[Candidate]:
    """The generalised JSD family for each share of the teacher in the mixture, 0.02 to 0.98, every softening."""
    view = _shared_sides(inputs)
    found = []
    for share in [step / 50 for step in range(1, 50)]:
        for student_softened, teacher_softened in SOFTENINGS:
            def columns(T, share=share, s=student_softened, t=teacher_softened):
                return [column.mean(-1) for column in mixture_columns(view(T, s, t), share)]
            name = f"divergences to the mixture m = {share:g} p + {1 - share:g} q"
            found.append(Candidate(name, "jsd", student_softened, teacher_softened, columns, width=3))
    return found


def student_terms(students, labels: torch.Tensor, T: float, softened_hard_term: bool) -> list[torch.Tensor]:
    """What a loss may add that depends on the student alone: the hard-label cross-entropy and, for label
    smoothing, the cross-entropy with the uniform distribution. One value per student, ``[S]``."""
    logits = students.double() / (T if softened_hard_term else 1.0)
    log_prob = F.log_softmax(logits, -1)
    hard = -log_prob.gather(-1, labels.expand(len(students), -1)[..., None]).squeeze(-1).mean(-1)
    return [hard, -log_prob.mean(-1).mean(-1)]


def teacher_cross_entropy(teachers, labels: torch.Tensor) -> torch.Tensor:
    """The teacher's own cross-entropy with the labels, ``[1, K]``: the hard term of a loss whose roles are
    swapped (the teacher's logits where the student's belong), as one stored Keras example did."""
    log_prob = F.log_softmax(teachers.double(), -1)
    return -log_prob.gather(-1, labels.expand(len(teachers), -1)[..., None]).squeeze(-1).mean(-1)[None]


@dataclass(frozen=True)
class Fit:
    """A least-squares fit of the loss's values: the coefficients and how badly it misses.

    ``misfit`` is the residual's norm over the norm of the part of the values that the teacher moves:
    0 for a perfect fit, 1 for a fit that explains none of the teacher's effect.
    """

    coefficients: torch.Tensor
    misfit: float


def fit(values: torch.Tensor, columns: list[torch.Tensor]) -> Fit:
    """Fit ``values`` ``[S, K]`` (student i, teacher j) as a constant plus a weighed sum of ``columns``.

    Each column broadcasts to ``[S, K]``. The misfit is measured against what varies within a row: the
    teacher's effect in the soft-term grid, the labels' effect when a single row holds one value per label set.
    """
    columns = [torch.ones_like(values)] + [column.expand_as(values) for column in columns]
    design = torch.stack(columns, -1).reshape(-1, len(columns))
    target = values.reshape(-1, 1)
    coefficients = torch.linalg.lstsq(design, target, driver="gelsd").solution
    residual = (target - design @ coefficients).norm()
    varying = (values - values.mean(1, keepdim=True)).norm()
    return Fit(coefficients.squeeze(1), float(residual / varying) if varying > 0 else math.inf)


# --- reduction and gradient: two direct experiments -----------------------------------------------------------

PAD_LOGIT = -50.0  # a class this far below the others has probability ~1e-11 even at T = 5
# (student, teacher) paddings, tried in turn until one leaves a per-example sum unchanged: classes of probability
# ~0 for a softmax; a positive student logit for a loss that takes its log; zeros for a loss that uses the raw
# logits as weights (a zero target weighs nothing) or divides the student's by their sum (a zero adds nothing)
PADDINGS = ((PAD_LOGIT, PAD_LOGIT), (1.0, PAD_LOGIT), (0.0, 0.0), (1.0, 0.0))
REDUCTIONS = {"batchmean": (1.0, 1.0), "mean": (0.5, 1.0), "sum": (1.0, 2.0)}  # effect ratios: classes, rows doubled


def measure_reduction(caller: Caller, inputs: Inputs, T: float) -> str | None:
    """Pad every row with classes that weigh nothing, then repeat every row, and see how the teacher's effect moves.

    The effect is the value with one teacher minus the value with another: the hard term cancels out. Padding
    leaves a per-example sum unchanged but halves a mean over the classes; repeating every row doubles a sum
    over the batch. A padding that changes the soft term itself is caught by a second pair of teachers, whose
    effect would have to move by the same round ratio by chance; the next padding is tried.
    Returns "batchmean", "mean", "sum" or None when the effect moves in none of those ways.
    """
    student, labels = inputs.students[1], inputs.labels
    pairs = ((inputs.teachers[0], inputs.teachers[2]), (inputs.teachers[1], inputs.teachers[3]))

    def effect(s, t1, t2, y) -> float:
        return caller.value(s, t1, y, T, 0.5) - caller.value(s, t2, y, T, 0.5)

    def pad(logits, value):
        return torch.cat([logits, torch.full_like(logits, value)], 1)

    bases = [effect(student, *pair, labels) for pair in pairs]
    if not all(base != 0 and math.isfinite(base) for base in bases):
        return None
    (first, second), base = pairs[0], bases[0]
    rows_doubled = effect(student.repeat(2, 1), first.repeat(2, 1), second.repeat(2, 1), labels.repeat(2)) / base
    for student_pad, teacher_pad in PADDINGS:
        classes_doubled = [effect(pad(student, student_pad), pad(one, teacher_pad), pad(other, teacher_pad), labels)
                           / base for (one, other), base in zip(pairs, bases)]
        for name, (classes_ratio, rows_ratio) in REDUCTIONS.items():
            if all(math.isclose(got, want, rel_tol=1e-3) for got, want in zip((*classes_doubled, rows_doubled),
                                                                              (classes_ratio,) * 2 + (rows_ratio,))):
                return name
    return None


def measure_trains_student(caller: Caller, inputs: Inputs, T: float) -> bool | None:
    """Does the soft term send the student a gradient? Only it can make the gradient depend on the teacher.

    None when the gradient is not finite.
    """
    student, labels = inputs.students[1], inputs.labels
    gradients = [caller.gradient(student, teacher, labels, T, 0.5) for teacher in inputs.teachers[[0, 2]]]
    if any(g is None for g in gradients):
        return False  # a float or a detached tensor: nothing can be trained through it
    if not all(bool(torch.isfinite(g).all()) for g in gradients):
        return None
    difference, size = (gradients[0] - gradients[1]).norm(), gradients[0].norm() + gradients[1].norm()
    return bool(difference > 1e-6 * size)
