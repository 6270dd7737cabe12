"""The words behind ``kdutils.conventions.diagnose``: the reading, and the ``distillation_loss`` call that matches.

``distillation_loss(student_logits, labels, teacher_logits, T, alpha)`` is
``alpha * T**2 * KL(softmax(teacher / T) || softmax(student / T))`` (batchmean) ``+ (1 - alpha) * cross_entropy``.
A loss gives the same value as some multiple of it exactly when its soft term is that forward KL with
both sides softened (or neither: then ``T=1.0`` in the call), any hard term is the plain cross-entropy,
and nothing else is added. The weights of the two terms then only need rewriting: a soft weight ``a``
and a hard weight ``b`` are ``(a + b) * distillation_loss(..., alpha=a / (a + b))``, with ``a`` counted
per ``T**2 * KL``.
"""

from __future__ import annotations

import math

UNKNOWN = "unknown"
CALL = "distillation_loss(student_logits, labels, teacher_logits, T={T}, alpha={alpha})"

DIRECTIONS = {
    "forward_kl": "the forward KL divergence KL(p || q) from the teacher's distribution p to the student's q",
    "reverse_kl": "the reverse KL divergence KL(q || p), which weighs each class by the student's probability",
    "soft_cross_entropy": "the soft cross-entropy -sum p log q, that is KL(p || q) plus the teacher's entropy H(p)",
    "jsd": "a Jensen-Shannon-type divergence, measured to a mixture of the teacher's p and the student's q",
    "mse": "a squared error",
    "other": "a distance that is no KL divergence",
}
PLAIN_FORMULAS = {"forward KL(p || q)", "reverse KL(q || p)", "soft cross-entropy -sum p log q"}
NOT_THE_SAME = {
    "reverse_kl": "KL(q || p) weighs the classes by the student's probabilities instead of the teacher's: "
                  "another loss, with another gradient",
    "jsd": "a divergence to a mixture of p and q is bounded and has another gradient than KL(p || q)",
    "mse": "a squared error is another loss; only for a high T, with zero-mean logits, does its gradient "
           "approach the KL term's (Hinton et al., 2015)",
    "other": "its soft term is no KL divergence",
    UNKNOWN: "its soft term could not be identified",
}
REDUCTIONS = {
    "batchmean": "summed over the classes and averaged over the batch (batchmean)",
    "mean": "averaged over the batch and the classes ('mean', C times smaller than batchmean)",
    "sum": "summed over the batch and the classes ('sum', which grows with the batch size)",
}


def same_gradient_call(found) -> str | None:
    """For soft cross-entropy, the ``distillation_loss`` call with the same gradient (the values differ by H(p))."""
    if found.direction != "soft_cross_entropy" or found.nan_on_ordinary_input is not False:
        return None
    return _call(found)


def equivalent_call(found) -> tuple[str | None, str | None]:
    """The expression that calls ``distillation_loss`` and gives ``found``'s value, or None and the reason."""
    if found.error or found.hangs:
        return None, "it could not be measured"
    if found.nan_on_ordinary_input is True:
        return None, "it returns NaN on ordinary logits, distillation_loss does not"
    if found.direction == "soft_cross_entropy":
        same = f": the same gradient as {found.same_gradient_as} but another value" if found.same_gradient_as else ""
        return None, f"soft cross-entropy adds the teacher's entropy H(p), a constant for the student{same}"
    if found.direction != "forward_kl":
        return None, NOT_THE_SAME.get(found.direction, NOT_THE_SAME[UNKNOWN])
    one_side = _one_side(found)
    if one_side:
        return None, f"it divides only the {one_side}'s logits by T, distillation_loss divides both"
    expression = _call(found)
    if expression is None:
        return None, "some of its weights or conventions could not be pinned down, so no call can be named"
    return expression, None


def _one_side(found) -> str | None:
    if found.student_softened is True and found.teacher_softened is False:
        return "student"
    if found.student_softened is False and found.teacher_softened is True:
        return "teacher"
    return None


def _call(found) -> str | None:
    """Rewrite the fitted weights as ``scale * distillation_loss(...)``; None when they do not fit its form."""
    weights = found.weights
    softened = {found.student_softened, found.teacher_softened}
    if weights is None or found.reduction not in REDUCTIONS or found.hard_term == UNKNOWN or len(softened) != 1:
        return None
    temperature = {True: "T", False: "1.0"}.get(softened.pop())
    by_alpha = weights["by_alpha"]
    size = max(abs(w["soft"]) + abs(w["hard"]) for w in by_alpha.values())
    if any(abs(w["constant"]) > 1e-4 * size or abs(w["smoothing"]) > 1e-4 * size for w in by_alpha.values()):
        return None  # a constant added, or label smoothing: not distillation_loss's value
    soft = _form({alpha: w["soft"] for alpha, w in by_alpha.items()})
    hard = _form({alpha: w["hard"] for alpha, w in by_alpha.items()}) if found.hard_term else ("0", 0.0)
    if soft is None or hard is None or temperature is None:
        return None
    # the soft weight measured at T = 2 on 4 x 10 inputs, brought back to one per T**2 * KL, batchmean
    power = weights["exponent"] - (2 if temperature == "T" else 0)
    size_factor = {"batchmean": 1, "mean": 1 / weights["classes"], "sum": weights["rows"]}[found.reduction]
    scale = soft[1] / (weights["T"] ** weights["exponent"] * size_factor)
    plain = power == 0 and found.reduction == "batchmean"  # the soft weight is a plain number times its form
    if hard[0] == "0":
        return _scaled(_factor(scale, soft[0], power, found.reduction), CALL.format(T=temperature, alpha="1.0"))
    if plain and soft[0] == hard[0] == "1":  # two constant weights: a constant alpha
        total = scale + hard[1]
        return _scaled(_factor(total), CALL.format(T=temperature, alpha=f"{scale / total:.6g}"))
    if plain and {soft[0], hard[0]} == {"alpha", "(1 - alpha)"} and math.isclose(scale, hard[1], rel_tol=1e-3):
        alpha = "alpha" if soft[0] == "alpha" else "1 - alpha"
        return _scaled(_factor(scale), CALL.format(T=temperature, alpha=alpha))
    soft_factor, hard_factor = _factor(scale, soft[0], power, found.reduction), _factor(hard[1], hard[0])
    total = f"({soft_factor} + {hard_factor})"
    return f"{total} * " + CALL.format(T=temperature, alpha=f"{soft_factor} / {total}")


def _form(weights: dict[float, float]) -> tuple[str, float] | None:
    """Name how a weight depends on alpha ("alpha", "(1 - alpha)", "1" or "0") with its constant factor."""
    low, middle, high = weights[0.2], weights[0.5], weights[0.8]
    if max(abs(low), abs(middle), abs(high)) < 1e-9:
        return "0", 0.0
    if middle == 0:
        return None
    for name, (expected_low, expected_high), factor in (("alpha", (0.4, 1.6), middle / 0.5),
                                                         ("(1 - alpha)", (1.6, 0.4), middle / 0.5),
                                                         ("1", (1.0, 1.0), middle)):
        if math.isclose(low / middle, expected_low, rel_tol=1e-3) and math.isclose(high / middle, expected_high,
                                                                                     rel_tol=1e-3):
            return name, factor
    return None


def _number(value: float) -> str:
    """A weight as the reader would write it: 2 rather than 2.0000003."""
    return str(round(value)) if math.isclose(value, round(value), rel_tol=1e-4) else f"{value:.6g}"


def _factor(number: float, form: str = "1", power: int = 0, reduction: str = "batchmean") -> str:
    """A weight written out: ``number * form * T**power``, times B for 'sum', over C for 'mean'."""
    above = [_number(number)] if not math.isclose(number, 1.0, rel_tol=1e-4) else []
    above += [form] if form != "1" else []
    above += ["B"] if reduction == "sum" else []
    above += [("T" if power == 1 else f"T**{power}")] if power > 0 else []
    below = (["C"] if reduction == "mean" else []) + ([("T" if power == -1 else f"T**{-power}")] if power < 0 else [])
    written = " * ".join(above) or "1"
    if below:
        written += " / " + (below[0] if len(below) == 1 else f"({' * '.join(below)})")
    return written


def _scaled(factor: str, call: str) -> str:
    """``factor * call``, written as ``call / T**2`` when the factor is only a divisor."""
    if factor == "1":
        return call
    if factor.startswith("1 / "):
        return f"{call} / {factor[4:]}"
    return f"{factor} * {call}"


# --- the reading ---------------------------------------------------------------------------------------------


def reading(found) -> str:
    """One paragraph in plain words: what the loss computes, how it is weighed, and the matching call."""
    if found.hangs:
        return (f"The loss {found.error}: it may loop forever or wait for something that never comes, and "
                "nothing more could be measured.")
    if found.error and found.nan_on_ordinary_input == UNKNOWN:
        return f"The loss could not be measured on the designed inputs: it {found.error}."
    sentences = [_soft_sentence(found), _weights_sentence(found), _gradient_sentence(found)]
    if found.nan_on_ordinary_input is True:
        sentences.append("It returns NaN or inf on ordinary logits (normal, std 2, negative ones included), so the "
                         "rest was measured on positive logits")
    undecided = [name for name in ("direction", "t_squared", "reduction", "alpha_on", "hard_term",
                                   "student_softened", "teacher_softened", "trains_student")
                 if getattr(found, name) == UNKNOWN]
    if undecided:
        sentences.append("The evidence did not decide: " + ", ".join(undecided))
    if found.error:
        sentences.append(f"A later probe failed: it {found.error}")
    if found.notes:
        sentences.append("Notes: " + "; ".join(found.notes))
    if found.equivalent:
        sentences.append(f"Same value as {found.equivalent}")
    else:
        sentences.append(f"No distillation_loss call gives the same value: {found.no_equivalent_because}")
    return ". ".join(s for s in sentences if s) + "."


def _soft_sentence(found) -> str:
    what = DIRECTIONS.get(found.direction, "a term the diagnoser could not identify")
    if found.soft_term and found.soft_term not in PLAIN_FORMULAS:  # say which squared error, which mixture, ...
        what += f" ({found.soft_term})"
    sides = {(True, True): "with both sides softened by T", (False, False): "with neither side divided by T",
             (True, False): "with only the student's logits divided by T",
             (False, True): "with only the teacher's logits divided by T"}
    parts = [f"Its soft term is {what}", sides.get((found.student_softened, found.teacher_softened), "")]
    if found.t_squared is True:
        parts.append("multiplied by T**2")
    elif found.t_squared is False:
        grows = found.weights and found.weights["exponent"]
        parts.append("not multiplied by T**2" + (f" (its weight goes as T**{grows})" if grows else ""))
    parts.append(REDUCTIONS.get(found.reduction, ""))
    return ", ".join(p for p in parts if p)


def _weights_sentence(found) -> str:
    alpha = {"soft": "alpha weighs the soft term",
             "hard": "alpha weighs the hard-label term, not the soft one (as in Keras and torchdistill)",
             "ignored": "the value does not depend on alpha"}.get(found.alpha_on, "")
    hard = {True: "a hard-label cross-entropy with the labels is part of the loss",
            False: "there is no hard-label term (the labels do not change the value)"}.get(found.hard_term, "")
    both = "; ".join(p for p in (alpha, hard) if p)
    return both[:1].upper() + both[1:]


def _gradient_sentence(found) -> str:
    if found.trains_student is True:
        return "The soft term sends a gradient to the student's logits"
    if found.trains_student is False:
        return ("The soft term sends no gradient to the student's logits (the student is detached there, or the "
                "result carries no graph), so it cannot train the student")
    return ""
