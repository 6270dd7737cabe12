"""The exercises' checks, where a student imports them: ``from kdutils.exercises import check_..., hint``.

Each ``check_*`` runs the student's function on several crafted cases, compares it with the correct
answer and, when they differ, with the classic mistakes, so that the message says *which* mistake it
is and how to see it. It prints its verdict and returns a ``CheckResult`` (``passed``, ``message``)::

    from kdutils.exercises import check_distillation_loss, hint
    result = check_distillation_loss(my_loss)   # prints "PASSED: ..." or "NOT YET: <diagnosis>"
    hint("distillation_loss")                   # a first hint; hint("distillation_loss", 2) a stronger one

Any correct answer passes (float32 or float64, numpy numbers, an equivalent formula); what the student's
function raises, returns, changes in place or how long it takes becomes a verdict, never a traceback;
kdutils' own function handed in as the answer, or called by it, is named as such. This module is only
the students' door: the checks are course tooling and live in ``kdutils.course.checks``.
"""

from .course.checks.basics import check_parameter_count, check_precision
from .course.checks.beyond import check_ensemble_average, check_feature_loss, check_reverse_kl
from .course.checks.distillation import check_distillation_loss, check_softmax_with_temperature
from .course.checks.epoch import check_epoch_alignment
from .course.checks.evaluation import check_add_to_bias, check_expected_calibration_error, check_gap_closed
from .course.checks.hints import HINTS, hint
from .course.checks.step import check_distillation_step
from .course.checks.verdicts import CheckResult

__all__ = [
    "HINTS",
    "CheckResult",
    "check_add_to_bias",
    "check_distillation_loss",
    "check_distillation_step",
    "check_ensemble_average",
    "check_epoch_alignment",
    "check_expected_calibration_error",
    "check_feature_loss",
    "check_gap_closed",
    "check_parameter_count",
    "check_precision",
    "check_reverse_kl",
    "check_softmax_with_temperature",
    "hint",
]
from .course.checks.conventions import check_our_alpha  # noqa: E402 - notebook 11, appended to keep merges simple

__all__ += ["check_our_alpha"]
