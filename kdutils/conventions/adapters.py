"""Adapters that let ``kdutils.conventions.diagnose`` read a loss with another signature.

``diagnose`` calls ``loss_fn(student_logits, teacher_logits, labels, T, alpha)``. A loss that takes fewer of
these, in another order, or that is built with T and alpha (a loss object), is wrapped first::

    diagnose(adapt(keras_style_loss, "labels, student_logits, teacher_logits, T, alpha"))
    diagnose(from_factory(lambda T, alpha: KDLoss(T, alpha)))
"""

from __future__ import annotations

from collections.abc import Callable

ARGUMENTS = ("student_logits", "teacher_logits", "labels", "T", "alpha")


def adapt(loss_fn: Callable, order: str) -> Callable:
    """Wrap a loss that takes some of the five arguments, in another order, as ``diagnose`` calls them.

    ``order`` names the loss's positional arguments, e.g. ``"student_logits, teacher_logits"`` for a loss with
    T fixed inside, or ``"labels, student_logits, teacher_logits, T, alpha"`` for a Keras-like order. What it
    does not name is not passed (and reads as ignored).
    """
    names = [name.strip() for name in order.split(",") if name.strip()]
    wrong = [name for name in names if name not in ARGUMENTS]
    if wrong or not names or len(set(names)) != len(names):
        raise ValueError(f"order must name each of its arguments once, from {', '.join(ARGUMENTS)}; "
                         f"got {order!r}.")

    def adapted(student_logits, teacher_logits, labels, T, alpha):
        given = dict(zip(ARGUMENTS, (student_logits, teacher_logits, labels, T, alpha)))
        return loss_fn(*(given[name] for name in names))

    return adapted


def from_factory(make_loss: Callable, order: str = "student_logits, teacher_logits, labels") -> Callable:
    """Wrap a loss object built with T and alpha (``make_loss(T, alpha)``, e.g. ``lambda T, alpha: KDLoss(T,
    alpha)``) and called with the arguments ``order`` names."""
    def built(student_logits, teacher_logits, labels, T, alpha):
        return adapt(make_loss(T, alpha), order)(student_logits, teacher_logits, labels, T, alpha)

    adapt(make_loss, order)  # check the order now, not on the first call
    return built
