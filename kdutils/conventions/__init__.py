"""Read any knowledge-distillation loss's conventions by calling it: ``diagnose(loss_fn)``.

Frameworks disagree on what "the KD loss" is: which way the KL divergence points, whether the soft term
is multiplied by T**2, whether it is averaged over the classes too, which term ``alpha`` weighs. Their
documentation rarely says. ``diagnose`` finds out by measurement, never by reading the source: it calls
``loss_fn(student_logits, teacher_logits, labels, T, alpha)`` on designed inputs and compares the answers
with what each candidate convention predicts::

    from kdutils.conventions import diagnose
    found = diagnose(my_loss)
    found.direction, found.t_squared, found.reduction, found.alpha_on   # e.g. "forward_kl", True, "batchmean", "soft"
    print(found)                                                        # the reading, in plain words

How each field is decided:

* **hard_term**: only the hard term can depend on the labels. Five label sets, from all right to all
  wrong, move the value exactly as a cross-entropy would, or not at all.
* **direction**, the softening and **t_squared**: the value is fitted, over eight students times four
  teachers, as a constant plus cross-entropy plus each candidate's soft term; the candidate that fits at
  T = 2, 3 and 5 names the divergence and which sides are divided by T, and how its weight grows with T
  says whether T**2 multiplies it. Where none fits, ``conventions.scaling`` says "other" if none comes
  near even at a temperature of the loss's own, and reads T**2 from how the teacher's effect moves when
  T, or T and the logits together, are scaled.
* **reduction**: padding every row with classes that weigh nothing (probability ~0, or a zero raw target)
  leaves a per-example sum unchanged but halves a mean over the classes; repeating every row doubles a sum
  over the batch. No formula needed.
* **alpha_on**: the teacher moves only the soft term, the labels only the hard term; how much each moves
  the value at alpha = 0.2, 0.5 and 0.8 says which term alpha weighs.
* **trains_student**: the gradient with respect to the student's logits, for two teachers. If it is the
  same, the soft term sends no gradient (a detached student).
* **nan_on_ordinary_input**: float32 logits drawn from a normal with std 2, negative ones included.

Any field is ``"unknown"`` when the evidence does not decide: a wrong answer is worse than none. A loss
that raises, hangs or returns a vector is reported as such (``error``, ``hangs``), never raised from here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..losses import distillation_loss
from .adapters import adapt, from_factory
from .probes import (
    CLASSES,
    ROWS,
    Caller,
    Candidate,
    Inputs,
    ProbeError,
    candidates,
    design_inputs,
    fit,
    measure_reduction,
    measure_trains_student,
    mixture_candidates,
    ordinary_inputs,
    student_terms,
    teacher_cross_entropy,
)
from .reading import equivalent_call, reading, same_gradient_call
from .scaling import POWERS, beyond_the_candidates, interaction

__all__ = ["UNKNOWN", "Diagnosis", "adapt", "diagnose", "from_factory"]

UNKNOWN = "unknown"
FIT_TOLERANCE = 2e-3  # largest misfit (residual over the teacher's effect) that counts as "this formula"
PROBE_T, ALPHAS = 2.0, (0.2, 0.5, 0.8)
SETTINGS = ((2.0, 0.5), (3.0, 0.5), (5.0, 0.5), (2.0, 0.2), (2.0, 0.8))  # (T, alpha) of the soft-term grid


@dataclass
class Diagnosis:
    """What ``diagnose`` found; ``str()`` is the reading. Every field may be ``"unknown"``.

    ``equivalent`` is a Python expression in ``student_logits, labels, teacher_logits, T, alpha`` (and ``B``,
    ``C``, the batch size and the number of classes) that calls ``distillation_loss`` and gives the same
    value, or None with the reason in ``no_equivalent_because``.
    """

    direction: str = UNKNOWN
    t_squared: bool | str = UNKNOWN
    reduction: str = UNKNOWN
    alpha_on: str = UNKNOWN
    hard_term: bool | str = UNKNOWN
    student_softened: bool | str = UNKNOWN
    teacher_softened: bool | str = UNKNOWN
    trains_student: bool | str = UNKNOWN
    nan_on_ordinary_input: bool | str = UNKNOWN
    error: str | None = None
    hangs: bool = False
    soft_term: str | None = None  # the fitted formula, e.g. "forward KL(p || q)"
    weights: dict | None = None  # the fitted weights, read by conventions.reading
    equivalent: str | None = None
    no_equivalent_because: str | None = None
    same_gradient_as: str | None = None  # for soft cross-entropy: the call with the same gradient, another value
    notes: list[str] = field(default_factory=list)
    reading: str = ""

    def __str__(self) -> str:
        return self.reading


def diagnose(loss_fn: Callable, time_limit: float = 5.0) -> Diagnosis:
    """Find the conventions of ``loss_fn(student_logits, teacher_logits, labels, T, alpha)`` by calling it.

    Each call runs in a thread of its own and may take ``time_limit`` seconds; a call still running then is
    reported as a hang (``hangs=True``) and left running in the background, as Python cannot kill a thread.
    About 200 calls are made on small batches (4 x 10 logits). For another signature, wrap the loss with
    ``adapt`` or ``from_factory`` first.
    """
    if not callable(loss_fn):
        raise TypeError(f"diagnose needs a callable loss_fn(student_logits, teacher_logits, labels, T, alpha), "
                        f"got {type(loss_fn).__name__}; wrap other signatures with adapt() or from_factory().")
    if not isinstance(time_limit, (int, float)) or not 0 < time_limit < math.inf:
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}.")
    found, caller = Diagnosis(), Caller(loss_fn, time_limit)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on 4 x 10 tensors a second thread costs far more than it gives (10x on 2 busy cores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. torch's warning about reduction='mean': the reading says it
        try:
            inputs = _measure(caller, found)
            _name_the_call(caller, found, inputs)
        except ProbeError as error:
            found.hangs = error.kind == "hung"
            found.error = str(error)
            found.equivalent, found.same_gradient_as = None, None
            found.no_equivalent_because = "it could not be measured"
        except Exception as error:  # a bug of ours on a loss nobody foresaw: report it, do not raise it
            found.notes.append(f"the diagnoser itself failed ({type(error).__name__}: {error}); "
                               "what it had not reached is unknown")
            found.equivalent, found.no_equivalent_because = None, "the diagnosis did not finish"
        finally:
            torch.set_num_threads(threads)
    found.reading = reading(found)
    return found


def _name_the_call(caller: Caller, found: Diagnosis, inputs: Inputs | None) -> None:
    """The ``distillation_loss`` call with the same value (or gradient), kept only if a fresh measurement agrees."""
    found.same_gradient_as = same_gradient_call(found)
    if found.same_gradient_as and not _reproduces(caller, found.same_gradient_as, inputs, gradient=True):
        found.same_gradient_as = None
    found.equivalent, found.no_equivalent_because = equivalent_call(found)
    if found.equivalent and not _reproduces(caller, found.equivalent, inputs, gradient=False):
        found.equivalent = None
        found.no_equivalent_because = ("the call its weights suggest could not be confirmed on other batch sizes, "
                                       "class counts, T and alpha (the loss gave another value there, or failed)")


def _reproduces(caller: Caller, expression: str, inputs: Inputs, gradient: bool) -> bool:
    """Check the reading's claim by measurement: the call's value (or gradient) against the loss's, on fresh inputs."""
    generator = torch.Generator().manual_seed(3)
    for rows, classes, T, alpha in ((6, 7, 3.5, 0.3), (3, 12, 1.5, 0.75)):
        student, teacher = (1.5 * torch.randn(2, rows, classes, generator=generator)).to(inputs.students.dtype)
        labels = torch.randint(0, classes, (rows,), generator=generator)
        leaf = student.clone().requires_grad_(gradient)
        names = {"distillation_loss": distillation_loss, "student_logits": leaf, "teacher_logits": teacher,
                 "labels": labels, "T": T, "alpha": alpha, "B": rows, "C": classes}
        claimed = eval(expression, {"__builtins__": {}}, names)  # our own expression, built from measured numbers
        try:
            if gradient:
                measured = caller.gradient(student, teacher, labels, T, alpha)
                agrees = measured is not None and torch.allclose(torch.autograd.grad(claimed, leaf)[0], measured,
                                                                 rtol=1e-4, atol=1e-9)
            else:
                measured = caller.value(student, teacher, labels, T, alpha)
                agrees = math.isclose(float(claimed), measured, rel_tol=1e-4, abs_tol=1e-9)
        except ProbeError as error:
            if error.kind == "hung":
                raise
            agrees = False  # e.g. a loss that only takes ten classes: the claim stays unproven
        if not agrees:
            return False
    return True


def _measure(caller: Caller, found: Diagnosis) -> Inputs | None:
    """Run the probes in turn, filling ``found``; a failed call ends it, with what was measured kept.

    Returns the designed inputs the loss was measured on, or None when it could not be measured on them.
    """
    found.nan_on_ordinary_input = _nan_on_ordinary_input(caller)
    positive = found.nan_on_ordinary_input  # then probe with positive logits, where log(logits) is finite
    inputs = _working_inputs(caller, positive, found)
    if inputs is None:
        return None
    label_values = _label_values(caller, inputs)
    grid = {setting: _grid_values(caller, inputs, *setting) for setting in SETTINGS}
    if not all(bool(v.isfinite().all()) for v in [*label_values.values(), *grid.values()]):
        found.notes.append("it returns NaN or inf on some of the designed inputs, so nothing could be fitted")
        return inputs
    found.hard_term, hard_softened = _hard_term(label_values, inputs)
    if hard_softened:
        found.notes.append("its hard-label cross-entropy takes the logits divided by T")
    found.alpha_on = _alpha_on(grid, label_values)
    if not _matters(_teacher_effect(grid[(PROBE_T, 0.5)])):
        found.notes.append("the teacher's logits do not change the value: there is no soft term to read")
        return inputs
    fitted = _read_soft_term(found, grid, inputs, positive, hard_softened)
    beyond_the_candidates(caller, found, grid, inputs, positive, fitted, FIT_TOLERANCE)
    for name, probe in (("reduction", lambda: measure_reduction(caller, inputs, PROBE_T)),
                        ("trains_student", lambda: measure_trains_student(caller, inputs, PROBE_T))):
        try:
            measured = probe()
            setattr(found, name, UNKNOWN if measured is None else measured)
        except ProbeError as error:
            if error.kind == "hung":
                raise
            found.notes.append(f"the {name} probe (larger or gradient-tracking inputs) failed: {error}")
    return inputs


def _nan_on_ordinary_input(caller: Caller) -> bool:
    student, teacher, labels = ordinary_inputs()
    values = [caller.value(student, teacher, labels, T, alpha) for T, alpha in ((4.0, 0.5), (1.0, 0.9), (2.0, 0.1))]
    return not all(math.isfinite(v) for v in values)


def _working_inputs(caller: Caller, positive: bool, found: Diagnosis) -> Inputs | None:
    """The designed inputs in float64 (sharper fits), or float32 for a loss that cannot take float64."""
    for dtype in (torch.float64, torch.float32):
        inputs = design_inputs(dtype, positive)
        try:
            first = caller.value(inputs.students[0], inputs.teachers[0], inputs.labels, PROBE_T, 0.5)
        except ProbeError as error:
            if error.kind == "hung" or dtype == torch.float32:
                raise
            continue
        if not math.isfinite(first):
            continue
        again = caller.value(inputs.students[0], inputs.teachers[0], inputs.labels, PROBE_T, 0.5)
        if again != first:
            found.notes.append(f"it returns different values for the same inputs ({first:.6g}, then {again:.6g}): "
                               "nothing can be fitted; is there dropout or sampling inside?")
            return None
        return inputs
    found.notes.append("it returns NaN or inf even on the positive logits meant to sidestep a log of raw logits"
                       if positive else "it returns NaN or inf on the designed inputs (4 x 10 logits within +-4)")
    return None


def _grid_values(caller: Caller, inputs: Inputs, T: float, alpha: float) -> torch.Tensor:
    """The loss for every (student, teacher) pair at one (T, alpha): ``[S, K]``, all with the same labels."""
    return torch.tensor([[caller.value(s, t, inputs.labels, T, alpha) for t in inputs.teachers]
                         for s in inputs.students], dtype=torch.float64)


def _teacher_effect(values: torch.Tensor) -> torch.Tensor:
    """What the teacher changes in the value, student by student: each row minus its mean, flattened."""
    return (values - values.mean(1, keepdim=True)).flatten()


def _label_values(caller: Caller, inputs: Inputs) -> dict[float, torch.Tensor]:
    """At each alpha, the value for each of the five label sets (one student, one teacher)."""
    student, teacher = inputs.students[0], inputs.teachers[1]
    return {alpha: torch.tensor([caller.value(student, teacher, y, PROBE_T, alpha) for y in inputs.label_sets],
                                dtype=torch.float64) for alpha in ALPHAS}


def _matters(effect: torch.Tensor) -> bool:
    return bool(effect.abs().max() > 1e-9)  # float64 values of a deterministic loss: exact when it does not


def _hard_term(label_values: dict[float, torch.Tensor], inputs: Inputs) -> tuple[bool | str, bool]:
    """Whether the labels change the value as a cross-entropy would (of the raw logits, else of logits / T)."""
    if not any(_matters(values - values.mean()) for values in label_values.values()):
        return False, False
    for softened in (False, True):
        cross_entropy = torch.cat([student_terms(inputs.students[:1], y, PROBE_T, softened)[0]
                                   for y in inputs.label_sets])
        if all(fit(values[None], [cross_entropy[None]]).misfit < FIT_TOLERANCE for values in label_values.values()):
            return True, softened
    return UNKNOWN, False


def _weight_trend(effects: dict[float, torch.Tensor]) -> int | str | None:
    """How a term's weight moves with alpha: +1 grows, -1 shrinks, 0 constant; None when the term is absent
    and "mixed" when alpha changes the term's shape, not only its weight."""
    middle = effects[0.5]
    if not _matters(middle):
        return None
    ratios = []
    for alpha in (0.2, 0.8):
        ratio = float(effects[alpha] @ middle / (middle @ middle))
        if (effects[alpha] - ratio * middle).norm() > FIT_TOLERANCE * middle.norm():
            return "mixed"
        ratios.append(ratio)
    low, high = ratios
    return 0 if abs(high - low) < 0.02 * max(abs(low), abs(high)) else (1 if high > low else -1)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal to rounding: alpha * x + (1 - alpha) * x is x, give or take its last bits."""
    return torch.allclose(a, b, rtol=1e-6, atol=1e-12)


def _alpha_on(grid, label_values) -> str:
    """Which term alpha weighs: the teacher moves only the soft term, the labels only the hard term."""
    soft = _weight_trend({alpha: _teacher_effect(grid[(PROBE_T, alpha)]) for alpha in ALPHAS})
    if soft == "mixed":  # a term of the teacher alone (its own cross-entropy, roles swapped) may weigh otherwise
        soft = _weight_trend({alpha: interaction(grid[(PROBE_T, alpha)]).flatten() for alpha in ALPHAS})
    hard = _weight_trend({alpha: values - values.mean() for alpha, values in label_values.items()})
    if "mixed" in (soft, hard):
        return UNKNOWN
    votes = {({1: "soft", -1: "hard"}).get(soft), ({1: "hard", -1: "soft"}).get(hard)} - {None}
    if len(votes) == 1:
        return votes.pop()
    if votes:
        return UNKNOWN  # both terms grow, or both shrink: not one alpha blending two terms
    unchanged = all(_same(grid[(PROBE_T, 0.5)], grid[(PROBE_T, alpha)])
                    and _same(label_values[0.5], label_values[alpha]) for alpha in (0.2, 0.8))
    return "ignored" if unchanged else UNKNOWN


# --- the soft term: which formula, which sides softened, which power of T ------------------------------------


def _fits_everywhere(candidate: Candidate, grid, student_only: dict) -> bool:
    """Fit the candidate at every (T, alpha) of the grid, beside the student-only terms; stop at the first miss."""
    for T, alpha in SETTINGS:
        candidate.fits[(T, alpha)] = fit(grid[(T, alpha)], student_only[T] + candidate.columns(T))
        if candidate.fits[(T, alpha)].misfit >= FIT_TOLERANCE:
            return False
    return True


def _fitting(grid, inputs: Inputs, positive: bool, student_only: dict) -> list[Candidate]:
    """The candidates that fit at every setting; failing all, the best-fitting member of the JSD family."""
    fitting = [c for c in candidates(inputs, positive) if _fits_everywhere(c, grid, student_only)]
    if not fitting:
        mixtures = [c for c in mixture_candidates(inputs) if _fits_everywhere(c, grid, student_only)]
        fitting = sorted(mixtures, key=lambda c: max(f.misfit for f in c.fits.values()))[:1]
    return fitting


def _soft_weight(candidate: Candidate, setting) -> float:
    """The weight the fit gives the candidate's formula (for the JSD family, the sum of its columns' weights)."""
    return float(candidate.fits[setting].coefficients[-candidate.width:].sum())  # the formula's columns come last


def _exponent(candidate: Candidate) -> float | None:
    """The power of T by which the soft weight grows, if the weights at T = 2, 3, 5 follow one power law."""
    weights = [_soft_weight(candidate, (T, 0.5)) for T in (2.0, 3.0, 5.0)]
    if min(weights) <= 0:
        return None
    low, middle, high = (math.log(w) for w in weights)
    exponent = (high - low) / math.log(5 / 2)
    predicted = low + exponent * math.log(3 / 2)
    return round(exponent, 6) if abs(predicted - middle) < 1e-3 else None


def _read_soft_term(found: Diagnosis, grid, inputs: Inputs, positive: bool, hard_softened: bool) -> bool:
    """Fit every candidate; fill the fields all fitting candidates agree on. False when none fits."""
    terms = {T: [t[:, None] for t in student_terms(inputs.students, inputs.labels, T, hard_softened)]
             for T, _ in SETTINGS}
    fitting = _fitting(grid, inputs, positive, terms)
    free_per_student = not fitting
    if free_per_student:  # the loss adds something else that depends on the student alone: leave it free
        each = [column[:, None] for column in torch.eye(len(inputs.students), dtype=torch.float64)]
        fitting = _fitting(grid, inputs, positive, {T: each for T, _ in SETTINGS})
        if fitting:
            found.notes.append("its student-only part is no plain cross-entropy, so the soft term was read from "
                               "the teacher's effect alone")
        else:  # roles swapped: the teacher's own cross-entropy with the labels where the student's belongs
            swapped = each + [teacher_cross_entropy(inputs.teachers, inputs.labels)]
            fitting = _fitting(grid, inputs, positive, {T: swapped for T, _ in SETTINGS})
            if fitting:
                found.notes.append("the labels enter through the teacher's own cross-entropy, as if the two "
                                   "models' roles were swapped; the soft term was read beside it")
    if not fitting:
        return False
    for candidate in fitting:
        candidate.exponent = _exponent(candidate)
    fitting = _prefer_plain_logit_error(fitting)
    directions = {c.direction for c in fitting}
    if len(directions) > 1:
        found.notes.append("several formulas fit: " + "; ".join(sorted({c.name for c in fitting})))
        return True
    found.direction = directions.pop()
    found.student_softened = _agreed(c.student_softened for c in fitting)
    found.teacher_softened = _agreed(c.teacher_softened for c in fitting)
    # T**2, or one of the factors the contract calls "otherwise" (T, 1/T, none); T**4, say, stays unknown
    found.t_squared = _agreed(_t_squared(c.exponent) for c in fitting)
    if len({c.name for c in fitting}) == 1:
        found.soft_term = fitting[0].name
    exponent = _agreed(c.exponent for c in fitting)
    if len(fitting) == 1 and _integral(exponent) and not free_per_student:
        found.weights = _weights(fitting[0], round(exponent))
    return True


def _integral(exponent) -> bool:
    return isinstance(exponent, float) and abs(exponent - round(exponent)) < 0.01


def _t_squared(exponent: float | None) -> bool | None:
    """Whether a soft weight that grows as T**exponent is T**2; None for a power the contract does not name."""
    return POWERS.get(round(exponent)) if _integral(exponent) else None


def _prefer_plain_logit_error(fitting: list[Candidate]) -> list[Candidate]:
    """Squared error of logits divided by T on both sides is the plain one times 1/T**2: keep the reading in
    which T appears nowhere else (exponent 0), or else the one with no division."""
    logit_error = [c for c in fitting if c.name == "squared error of the logits"
                   and c.student_softened == c.teacher_softened]
    if len(logit_error) != 2:
        return fitting
    keep = [c for c in logit_error if c.exponent == 0] or [c for c in logit_error if not c.student_softened]
    return [c for c in fitting if c not in logit_error] + keep


def _agreed(values) -> object:
    values = list(values)
    return values[0] if all(v == values[0] for v in values) and values[0] is not None else UNKNOWN


def _weights(candidate: Candidate, exponent: int) -> dict:
    """The fitted weights at T = 2 for each alpha, for the equivalent call: constant, hard, smoothing, soft."""
    by_alpha = {}
    for alpha in ALPHAS:
        coefficients = candidate.fits[(PROBE_T, alpha)].coefficients
        by_alpha[alpha] = {"constant": float(coefficients[0]), "hard": float(coefficients[1]),
                           "smoothing": float(coefficients[2]), "soft": _soft_weight(candidate, (PROBE_T, alpha))}
    return {"exponent": exponent, "T": PROBE_T, "rows": ROWS, "classes": CLASSES, "by_alpha": by_alpha}
