"""How many points each exercise is worth: the one place an instructor sets them.

The keys are the exercises' names (each check's name without ``check_``, as in ``HINTS``). The edition
command writes each exercise's points into its cell's metadata in the student edition
(``kdutils_exercise``), and the grader reads them from there. A new exercise needs its line here:
the edition command stops with an error that says so until it has one.
"""

from __future__ import annotations

__all__ = ["POINTS"]

POINTS: dict[str, int] = {
    "parameter_count": 1,
    "precision": 2,
    "softmax_with_temperature": 2,
    "distillation_loss": 3,
    "distillation_step": 3,
    "epoch_alignment": 2,
    "gap_closed": 1,
    "add_to_bias": 2,
    "expected_calibration_error": 3,
    "feature_loss": 2,
    "reverse_kl": 2,
    "ensemble_average": 2,
    "our_alpha": 2,
}
