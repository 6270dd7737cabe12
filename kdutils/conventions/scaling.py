"""What ``kdutils.conventions.diagnose`` can still say about a soft term that no candidate formula fits.

Three experiments that need no formula, or only a formula at a temperature the loss chose itself:

* ``temperature_power``: how the soft term depends on T. The teacher's effect on the value (the hard term,
  which depends on the student alone, cancels out) either keeps its shape when T changes, so T only weighs
  it (``T**m * g(logits)``), or keeps it when the logits and T are scaled together, so the logits enter as
  ``logits / T`` (``T**m * g(logits / T)``). Either way the power m is measured; where the soft term is also
  homogeneous in the logits, dividing by T could be read in or out of ``g``, and every such reading must
  agree before ``t_squared`` is answered.
* ``computed_precisely``: whether the loss's value follows its inputs smoothly to many digits. A misfit of a
  loss computed in float16 or bfloat16 could be its rounding, not its formula.
* ``fits_a_fixed_temperature``: whether some candidate formula fits when either side is divided by a
  temperature of the loss's own (DINO's 0.1 for the student, a KL hard-coded at T = 4). A misfit that such a
  formula explains is no evidence of another divergence.

``beyond_the_candidates`` runs them for ``diagnose``: "other" only where the soft term couples the two
models, the loss keeps its digits and no formula comes near, at T or at a fixed temperature.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from .probes import (
    FORMULAS,
    RAW_LOG_FORMULAS,
    Caller,
    Inputs,
    divided_sides,
    mixture_columns,
    teacher_cross_entropy,
)

PROPORTIONAL = 1e-5  # largest relative residual of "this effect is a multiple of that one"
UNKNOWN = "unknown"
POWERS = {2: True, 1: False, 0: False, -1: False, -2: False}  # T**2 or the contract's "otherwise"; T**4 unknown
SCALE = 2.0  # the factor by which logits (and T) are scaled in the homogeneity experiments


def interaction(values: torch.Tensor) -> torch.Tensor:
    """The part of ``values[student, teacher]`` that no sum of a student-only and a teacher-only term explains."""
    return values - values.mean(0, keepdim=True) - values.mean(1, keepdim=True) + values.mean()


def teacher_effect(values: torch.Tensor) -> torch.Tensor:
    """What the teacher changes in ``values[student, teacher]``: each row minus its mean. Terms of the student
    alone (the hard term) cancel out; the soft term's part that depends on the teacher alone stays."""
    return values - values.mean(1, keepdim=True)


def _ratio(scaled: torch.Tensor, base: torch.Tensor) -> float | None:
    """r with ``scaled == r * base`` (to rounding), or None when ``scaled`` is no multiple of ``base``."""
    size = float(base.flatten() @ base.flatten())
    if size == 0:
        return None
    ratio = float(scaled.flatten() @ base.flatten()) / size
    residual = (scaled - ratio * base).norm()
    return ratio if residual <= PROPORTIONAL * max(scaled.norm(), base.norm()) else None


def _power(ratio: float | None, factor: float) -> float | None:
    """The power p with ``ratio == factor**p``; None for no ratio or a sign flip."""
    return math.log(ratio) / math.log(factor) if ratio is not None and ratio > 0 else None


def _grid(caller: Caller, inputs: Inputs, T: float, student_scale: float = 1.0, teacher_scale: float = 1.0):
    """The loss at one T for every (student, teacher) pair, each side's logits multiplied by its scale."""
    return torch.tensor([[caller.value(s * student_scale, t * teacher_scale, inputs.labels, T, 0.5)
                          for t in inputs.teachers] for s in inputs.students], dtype=torch.float64)


def _degrees(caller: Caller, inputs: Inputs, T: float, base: torch.Tensor) -> list[float]:
    """The degrees of homogeneity of the teacher's effect in the student's, the teacher's and both sides'
    logits, for those sides where scaling the logits scales the effect by a power of the factor."""
    found = []
    for student_scale, teacher_scale in ((SCALE, 1.0), (1.0, SCALE), (SCALE, SCALE)):
        scaled = teacher_effect(_grid(caller, inputs, T, student_scale, teacher_scale))
        degree = _power(_ratio(scaled, base), SCALE)
        if degree is not None:
            found.append(degree)
    return found


def temperature_power(caller: Caller, inputs: Inputs, grid: dict) -> tuple[bool | None, bool | None, str]:
    """``(t_squared, softened, how)`` read from how the teacher's effect moves with T and the logits' scale.

    ``grid`` holds the loss's values ``[S, K]`` at (T, 0.5) for T = 2, 3 and 5. ``softened`` is True when
    both sides enter as logits / T, False when neither does, None when that cannot be told. None for
    ``t_squared`` when the readings disagree or the soft term follows no power of T.
    """
    base = teacher_effect(grid[(2.0, 0.5)])
    if base.norm() <= 1e-9 * grid[(2.0, 0.5)].norm():
        return None, None, ""
    powers = [_power(_ratio(teacher_effect(grid[(T, 0.5)]), base), T / 2.0) for T in (3.0, 5.0)]
    if None not in powers and math.isclose(*powers, rel_tol=0, abs_tol=1e-4):
        power, softened, sign = powers[0], False, 1  # its shape never moves: T only weighs it, T**power * g(z)
        how = "T does not change its shape, only its weight" if abs(power) > 1e-4 else "T does not change it"
    else:  # the logits and T scaled together: T**power * g(z / T) scales by SCALE**power
        power = _power(_ratio(teacher_effect(_grid(caller, inputs, 2.0 * SCALE, SCALE, SCALE)), base), SCALE)
        if power is None:
            return None, None, ""
        softened, sign, how = True, -1, "it depends on the logits divided by T"
    degrees = _degrees(caller, inputs, 2.0, base)
    # with g homogeneous of degree d in some side, T**m * g(z) is also T**(m + d) * g(that side / T), and
    # T**m * g(z / T) is T**(m - d) * g(that side undivided): every reading must give the same answer
    readings = [power] + [power + sign * degree for degree in degrees]
    if any(abs(r - round(r)) > 1e-4 for r in readings):
        return None, None, ""
    answers = {POWERS.get(round(r)) for r in readings}
    if len(answers) != 1 or None in answers:
        return None, None, ""
    return answers.pop(), None if degrees else softened, how


def beyond_the_candidates(caller: Caller, found, grid: dict, inputs: Inputs, positive: bool, fitted: bool,
                          tolerance: float) -> None:
    """What can be said without a fitting formula: "other" where every candidate clearly misses, and T**2 or
    not from how the soft term moves with T and the logits' scale. Fills the fields of ``found``, a Diagnosis
    whose fitting left them unknown; ``tolerance`` is the misfit that counts as "this formula"."""
    if not fitted:
        # a formula that misses by a few times the tolerance (a clamp, an epsilon) is no other divergence
        if _clearly_other(caller, grid, inputs, positive, 3 * tolerance):
            found.direction = "other"
            found.notes.append("no candidate formula fits its values, at T or at any fixed temperature: its soft "
                               "term is another divergence")
        else:
            found.notes.append("no candidate formula fits its values, but that does not make it another divergence "
                               "(one nearly fits, its digits are too few, or it barely couples student and teacher)")
    if found.t_squared == UNKNOWN:
        t_squared, softened, how = temperature_power(caller, inputs, grid)
        if t_squared is not None:
            found.t_squared = t_squared
            found.notes.append(f"T**2 was read from how the soft term moves with T ({how})")
            if softened is not None and found.student_softened == found.teacher_softened == UNKNOWN:
                found.student_softened = found.teacher_softened = softened


def _clearly_other(caller: Caller, grid: dict, inputs: Inputs, positive: bool, margin: float) -> bool:
    """The soft term couples student and teacher, the loss keeps its digits, and no formula comes within
    ``margin`` (a misfit well above the fit's tolerance: a formula just outside it is no other divergence)."""
    values = grid[(2.0, 0.5)]
    couples = interaction(values).norm() > 1e-3 * teacher_effect(values).norm()
    return bool(couples) and computed_precisely(caller, inputs) and not fits_a_fixed_temperature(
        inputs, grid, positive, margin)


def computed_precisely(caller: Caller, inputs: Inputs) -> bool:
    """Whether the teacher's effect follows a small change of the logits smoothly, as float32 or float64 does.

    The slope of the value along a change of the teacher's logits, and the slope along a change of the
    student's of the difference two teachers make (the hard term cancels out of both), taken as central
    differences with steps 1e-2 and 1e-3, must be non-zero and agree to 1%. A soft term rounded to float16
    or bfloat16 (about 3 digits) makes the smaller step's difference zero or noise; float32's 7 digits do not.
    """
    generator = torch.Generator().manual_seed(5)
    student, labels = inputs.students[1], inputs.labels
    first, second = inputs.teachers[2], inputs.teachers[0]
    towards = torch.randn(*student.shape, generator=generator, dtype=torch.float64).to(student.dtype)

    def along_teacher(step: float) -> float:
        return caller.value(student, first + step * towards, labels, 2.0, 0.5)

    def along_student(step: float) -> float:
        moved = student + step * towards
        return caller.value(moved, first, labels, 2.0, 0.5) - caller.value(moved, second, labels, 2.0, 0.5)

    for value in (along_teacher, along_student):
        coarse, fine = ((value(step) - value(-step)) / (2 * step) for step in (1e-2, 1e-3))
        if not (math.isfinite(coarse) and coarse != 0 and abs(fine - coarse) <= 1e-2 * abs(coarse)):
            return False
    return True


# --- candidate formulas at a temperature of the loss's own ------------------------------------------------------

FIXED_TEMPERATURES = [0.05 * 1.2**step for step in range(37)]  # 0.05 to about 35, 20% apart
# each side divided by T, by nothing (1.0), by a temperature of the loss's own ("fixed") or by a fixed multiple
# of T ("times T": a teacher sharpened to T / 2, say)
SIDES = (("T", "T"), ("T", 1.0), (1.0, "T"), (1.0, 1.0), ("fixed", "fixed"), ("fixed", "T"), ("T", "fixed"),
         ("fixed", 1.0), (1.0, "fixed"), ("times T", "T"), ("T", "times T"))
MIXTURE_SHARES = (0.1, 0.5, 0.9)  # the teacher's share in the JSD family's mixture


def _formulas(positive: bool) -> list[Callable]:
    """Each candidate formula whose direction is not "other" itself, as a function of the sides that gives its
    columns: a cosine distance at a fixed temperature (a Hellinger distance is one) does not veto "other"."""
    named = {**FORMULAS, **(RAW_LOG_FORMULAS if positive else {})}
    single = [lambda z, f=formula: [f(z)] for direction, formula in named.values() if direction != "other"]
    return single + [lambda z, share=share: mixture_columns(z, share) for share in MIXTURE_SHARES]


def _golden_minimum(misfit_at: Callable, temperature: float) -> float:
    """The smallest misfit within 20% of ``temperature``: a golden-section search over its logarithm."""
    low, high = math.log(temperature / 1.2), math.log(temperature * 1.2)
    shrink = (math.sqrt(5) - 1) / 2
    left, right = high - shrink * (high - low), low + shrink * (high - low)
    at_left, at_right = misfit_at(math.exp(left)), misfit_at(math.exp(right))
    for _ in range(25):
        if at_left < at_right:
            high, right, at_right = right, left, at_left
            left = high - shrink * (high - low)
            at_left = misfit_at(math.exp(left))
        else:
            low, left, at_left = left, right, at_right
            right = low + shrink * (high - low)
            at_right = misfit_at(math.exp(right))
    return min(at_left, at_right)


def _projection(inputs: Inputs) -> Callable[[torch.Tensor], torch.Tensor]:
    """Removes from a ``[S, K]`` table what a free term per student and the teacher's own cross-entropy explain:
    the same fit as ``fit`` with those columns, done once instead of in every least-squares problem."""
    free = torch.cat([torch.eye(len(inputs.students), dtype=torch.float64).repeat_interleave(len(inputs.teachers), 1),
                      teacher_cross_entropy(inputs.teachers, inputs.labels).expand(len(inputs.students), -1)
                      .reshape(1, -1)]).T
    basis, _ = torch.linalg.qr(free)
    return lambda table: (lambda flat: flat - basis @ (basis.T @ flat))(table.reshape(-1))


def _divisor(side: str | float, temperature: float | None, T: float) -> float:
    """What a side's logits are divided by: the fixed temperature, T, a multiple of T, or a plain number."""
    if side == "fixed":
        return temperature
    if side == "times T":
        return T * temperature
    return T if side == "T" else side


def fits_a_fixed_temperature(inputs: Inputs, grid: dict, positive: bool, tolerance: float) -> bool:
    """Whether a candidate formula fits the loss within ``tolerance`` (beside a free term per student and the
    teacher's own cross-entropy) with each side divided by T, by nothing, or by a fixed temperature (or a fixed
    multiple of T) from 0.05 to 35. The temperatures are scanned at T = 2 alone; where one comes near, the
    misfit at every T is minimised around it."""
    remove = _projection(inputs)
    targets = {T: (remove(grid[(T, 0.5)]), teacher_effect(grid[(T, 0.5)]).norm()) for T in (2.0, 3.0, 5.0)}

    def misfit(formula: Callable, divisors: tuple, temperature: float | None, temperatures=(2.0, 3.0, 5.0)) -> float:
        worst = 0.0
        for T in temperatures:
            student, teacher = (_divisor(d, temperature, T) for d in divisors)
            columns = formula(divided_sides(inputs.students, inputs.teachers, student, teacher))
            design = torch.stack([remove(column.mean(-1)) for column in columns], 1)
            target, scale = targets[T]
            solution = torch.linalg.lstsq(design, target[:, None], driver="gelsd").solution
            worst = max(worst, float((target - (design @ solution).squeeze(1)).norm() / scale))
        return worst

    for formula, divisors in ((formula, divisors) for formula in _formulas(positive) for divisors in SIDES):
        if not {"fixed", "times T"} & set(divisors):
            if misfit(formula, divisors, None) < tolerance:
                return True
            continue
        near, temperature = min((misfit(formula, divisors, temperature, (2.0,)), temperature)
                                for temperature in FIXED_TEMPERATURES)
        at_every_t = functools.partial(misfit, formula, divisors)
        if near < 10 * tolerance and _golden_minimum(at_every_t, temperature) < tolerance:
            return True
    return False
