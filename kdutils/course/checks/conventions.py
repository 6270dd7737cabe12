"""Check of notebook 11: moving a recipe between frameworks, ``our_alpha``.

A framework's distillation loss is ``w_soft * f * KL(p || q) + w_hard * CE``, where its own ``alpha`` is
``w_soft`` (alpha on the soft term) or ``w_hard`` (alpha on the hard term, as in Keras and torchdistill), and
``f`` is ``T**2`` or 1, divided by the number of classes under ``'mean'``. ``kdutils.losses.distillation_loss``
is ``a * T**2 * KL + (1 - a) * CE``. The two blend the terms alike when ``a * T**2 / (1 - a)`` equals
``w_soft * f / w_hard``: with ``s = w_soft * f / T**2`` (the soft weight counted per ``T**2 * KL``), our alpha
is ``s / (s + w_hard)``. An overall factor is left out: it scales the whole loss, not the balance.
"""

from __future__ import annotations

from collections.abc import Callable

from .harness import Diagnosis, close, run_check, to_number
from .verdicts import CheckResult

__all__ = ["check_our_alpha"]

# (alpha, T, alpha_on, t_squared, reduction, classes): each case after the first changes one convention, so the
# first case a mistake fails on points at it.
CASES = (
    (0.9, 4.0, "soft", True, "batchmean", 10),   # our own convention: nothing to translate
    (0.1, 10.0, "hard", True, "batchmean", 10),  # keras.io's later example: alpha on the hard term, with T**2
    (0.9, 4.0, "soft", False, "batchmean", 10),  # no T**2 (IntelLabs distiller, torchtune's style)
    (0.9, 4.0, "soft", True, "mean", 10),        # nn.KLDivLoss()'s default 'mean' (haitongli's loss_fn_kd)
    (0.1, 10.0, "hard", False, "batchmean", 10),  # keras.io's 2020 example: alpha on hard and no T**2
    (0.5, 2.0, "soft", False, "mean", 100),      # 'mean' and no T**2, with 100 classes
    (0.3, 1.0, "hard", True, "mean", 5),         # T = 1: T**2 changes nothing here, 'mean' does
    (1.0, 3.0, "soft", False, "mean", 10),       # no hard term left: our alpha is 1 whatever the factors
)


def translated(alpha: float, T: float, alpha_on: str, t_squared: bool, reduction: str, classes: int,
               *, sides: bool = True, convert_t_squared: bool = True, classes_divide: bool = True,
               normalise: bool = True) -> float:
    """Our alpha for a recipe; each keyword set to False makes one classic mistake (for the diagnosis)."""
    soft_weight = alpha if (alpha_on == "soft" or not sides) else 1 - alpha
    hard_weight = 1 - soft_weight
    factor = T**2 if (t_squared or not convert_t_squared) else 1.0
    if reduction == "mean" and classes_divide:
        factor /= classes
    soft = soft_weight * factor / T**2  # per T**2 * KL, as distillation_loss counts it
    return soft / (soft + hard_weight) if normalise else soft


def _mistake(got: float, case: tuple) -> str | None:
    """The classic mistake ``got`` matches on ``case``, in words; None when none does."""
    alpha, T, alpha_on, t_squared, reduction, classes = case
    expected = translated(*case)
    applied = "applied" if t_squared else "not applied"
    setting = f"(alpha = {alpha:g} on the {alpha_on} term, T = {T:g}, T**2 {applied}, reduction '{reduction}', " \
              f"{classes} classes)"
    if close(got, alpha) and alpha_on == "hard":
        return (f"you returned the framework's own alpha {setting}. There alpha weighs the hard-label term, so the "
                "soft term's weight is 1 - alpha: start from that.")
    if close(got, translated(*case, sides=False)):
        return (f"for a framework whose alpha weighs the hard-label term {setting}, the soft term's weight is "
                "1 - alpha and the hard term's is alpha (Keras, torchdistill): swap them before you translate.")
    if close(got, translated(*case, convert_t_squared=False)):
        return (f"without T**2 {setting} the framework's soft term is T**2 times weaker than ours at the same weight "
                "(distillation_loss multiplies its KL by T**2): divide that soft weight by T**2.")
    if not t_squared and close(got, _times_t2(case)):
        return (f"without T**2 {setting} the framework's soft term is weaker than ours, not stronger: divide its soft "
                "weight by T**2, do not multiply.")
    if close(got, translated(*case, classes_divide=False)):
        return (f"'mean' {setting} averages the soft term over the classes too, so it is C times smaller than "
                "'batchmean': divide the soft weight by the number of classes.")
    if reduction == "mean" and close(got, _times_classes(case)):
        return (f"'mean' {setting} makes the soft term C times smaller, not larger: divide the soft weight by the "
                "number of classes.")
    if not close(expected, 1.0) and close(got, 1 - expected):
        return (f"that is the hard term's share {setting}: our alpha weighs the soft term, so return the soft "
                "term's share of the two weights.")
    unnormalised = translated(*case, normalise=False)
    if close(got, unnormalised) and not close(unnormalised, expected):
        return (f"that is the soft term's weight per T**2 * KL {setting}, but the two weights no longer add up to 1: "
                "our alpha is that soft weight divided by the sum of the soft and the hard weights.")
    hard = 1 - (alpha if alpha_on == "soft" else 1 - alpha)
    if hard > 0 and close(got, unnormalised / hard) and not close(unnormalised / hard, expected):
        return (f"that is the ratio of the soft weight to the hard weight {setting}: our alpha is the soft weight's "
                "share, soft / (soft + hard).")
    return None


def _times_t2(case: tuple) -> float:
    """The answer of someone who multiplied a no-T**2 soft term by T**2 a second time (T**4 in all)."""
    alpha, T, alpha_on, _, reduction, classes = case
    soft_weight = alpha if alpha_on == "soft" else 1 - alpha
    soft = soft_weight * T**2 / (classes if reduction == "mean" else 1)
    return soft / (soft + 1 - soft_weight)


def _times_classes(case: tuple) -> float:
    """The answer of someone who multiplied a 'mean' soft term by the number of classes instead of dividing."""
    alpha, T, alpha_on, t_squared, _, classes = case
    soft_weight = alpha if alpha_on == "soft" else 1 - alpha
    soft = soft_weight * (T**2 if t_squared else 1.0) * classes / T**2
    return soft / (soft + 1 - soft_weight)


def check_our_alpha(our_alpha: Callable[[float, float, str, bool, str, int], float]) -> CheckResult:
    """``our_alpha(alpha, T, alpha_on, t_squared, reduction, classes)``: the alpha of ``distillation_loss`` that
    blends the soft and the hard term as a framework with these conventions blends them with its own ``alpha``.

    ``alpha_on`` is ``"soft"`` or ``"hard"``, ``t_squared`` whether the framework multiplies its soft term by
    T**2, ``reduction`` ``"batchmean"`` or ``"mean"`` (``nn.KLDivLoss()``'s default, which divides by the classes
    too). Every framework here uses the forward KL with both sides softened by T.
    """

    def body(call) -> str:
        for case in CASES:
            alpha, T, alpha_on, t_squared, reduction, classes = case
            got = to_number(call(our_alpha, *case), f"our alpha for alpha = {alpha:g}, T = {T:g}",
                            "Is there a division by zero, e.g. by the hard weight when it is 0?")
            expected = translated(*case)
            if close(got, expected, rel=1e-4, abs_=1e-7):
                continue
            mistake = _mistake(got, case)
            if mistake:
                raise Diagnosis(mistake)
            raise Diagnosis(f"our_alpha({alpha:g}, {T:g}, {alpha_on!r}, {t_squared}, {reduction!r}, {classes}) "
                            f"should be {expected:.6g}, got {got:.6g}.")
        return ("the soft term's weight, counted per T**2 * KL as distillation_loss counts it, as a share of the "
                "soft and the hard weights: alpha on either side, with or without T**2, 'batchmean' or 'mean'.")

    return run_check(our_alpha, body)
