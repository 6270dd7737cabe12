"""The check of notebook 05's epoch: shuffled batches, each with its own examples' cached teacher logits."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .harness import Diagnosis, close, run_check
from .step import WatchedSGD
from .verdicts import CheckResult

__all__ = ["check_epoch_alignment"]


# --- notebook 05: one epoch with cached teacher logits --------------------------------------------------


class _RowStudent(nn.Module):
    """A "student" whose logits say which example they belong to (column 0) and carry one learnable number.

    Column 1 is a parameter, ``offset``, that starts at 0. The spy loss is the mean of column 1, so each
    correct step (zero_grad, backward, step) with SGD at learning rate 0.1 lowers it by exactly 0.1.
    """

    def __init__(self) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(()))

    def forward(self, xb):
        out = torch.zeros(xb.shape[0], 10)
        out[:, 0] = xb[:, 0]  # kept apart from the offset, so a NaN offset cannot hide which example it is
        out[:, 1] = self.offset
        return out


def check_epoch_alignment(
    epoch: Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor, torch.Tensor, int,
                     torch.Generator, Callable], object],
) -> CheckResult:
    """``epoch(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn)``: one epoch, cached targets.

    The epoch must shuffle with ``generator``, give ``loss_fn(student_logits, labels,
    teacher_logits_of_the_batch)`` the teacher's logits *of the same examples* as the images and labels,
    and take one optimizer step per batch, its gradients cleared first.
    """
    n, batch_size, lr, stale = 43, 8, 0.1, 5.0
    batches = math.ceil(n / batch_size)

    def run(call: Callable, seed: int) -> tuple[list[list[int]], set[str], float, int]:
        """One epoch of the student's function: each batch's rows, the problems seen, the final offset, the steps."""
        x = torch.arange(n, dtype=torch.float32).reshape(n, 1).repeat(1, 4)  # row i holds the number i
        y = torch.arange(n) % 10
        teacher_logits = torch.zeros(n, 10)
        teacher_logits[:, 0] = torch.arange(n, dtype=torch.float32)  # column 0 tells which example it is
        seen: list[list[int]] = []
        problems: set[str] = set()
        student = _RowStudent()  # in training mode, as the epoch receives it

        def spy_loss(student_logits, labels, teacher_logits, T=4.0, alpha=0.9):  # distillation_loss's names
            shapes = [tuple(getattr(a, "shape", ())) for a in (student_logits, labels, teacher_logits)]
            if len(shapes[0]) != 2 or len(shapes[1]) != 1 or len(shapes[2]) != 2:
                raise Diagnosis(f"loss_fn was given tensors of shapes {shapes}: call it as loss_fn(student_logits, "
                                "labels, teacher_logits_of_the_batch), in that order, shapes (B, 10), (B,), (B, 10).")
            rows = student_logits[:, 0].detach().round().long()
            seen.append(rows.tolist())
            if not torch.equal(teacher_logits[:, 0].detach().round().long(), rows):
                problems.add("order")
            if not torch.equal(labels, y[rows]):
                problems.add("labels")
            if teacher_logits.requires_grad:
                problems.add("grad")
            if not student.training:
                problems.add("eval")
            return student_logits[:, 1].mean()

        student.offset.grad = torch.tensor(stale)  # left from before the epoch: each batch must clear it first
        optimizer = WatchedSGD(student.parameters(), lr=lr)
        call(epoch, student, optimizer, x, y, teacher_logits, batch_size, torch.Generator().manual_seed(seed),
             spy_loss)
        return seen, problems, student.offset.item(), optimizer.steps

    def body(call) -> str:
        seen, problems, offset, steps = run(call, 0)
        rows = [row for batch in seen for row in batch]
        if not seen:
            raise Diagnosis("your epoch never called loss_fn(student_logits, labels, teacher_logits_of_the_batch).")
        if "order" in problems:
            raise Diagnosis("the teacher's logits are out of step with the shuffled batch: slice the cached "
                            "teacher logits with the same indices as the images (teacher_logits[idx]).")
        if "labels" in problems:
            raise Diagnosis("the labels are out of step with the images: slice them with the same indices.")
        if "grad" in problems:
            raise Diagnosis("the teacher's logits carry a gradient: compute the cache under torch.no_grad().")
        if "eval" in problems:
            raise Diagnosis("the student was in eval() mode while it trained: leave it in training mode (or call "
                            "student.train() before the batches); in eval() mode dropout and batch norm stop "
                            "acting as they should during training.")
        if sorted(rows) != list(range(n)):
            raise Diagnosis(f"one epoch must visit each of the {n} examples exactly once; yours visited "
                            f"{len(rows)} rows, {len(set(rows))} distinct.")
        sizes = [len(batch) for batch in seen]
        expected_sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
        if sizes != expected_sizes:
            raise Diagnosis(f"with {n} examples and batch_size = {batch_size} the batches should hold "
                            f"{expected_sizes} examples; yours held {sizes}. Use the batch_size you were given.")
        if rows == list(range(n)):
            raise Diagnosis("your epoch does not shuffle: draw the order with torch.randperm(n, generator=generator).")
        labels_in_order = [row % 10 for row in rows]  # y = row % 10
        if labels_in_order == sorted(labels_in_order):
            raise Diagnosis("your batches are grouped by class (the shuffled order was sorted by label): each batch "
                            "should mix the classes. Use the shuffled order as it is.")
        again, *_ = run(call, 0)
        if again != seen:
            raise Diagnosis("two epochs with the same seed gave different orders: draw the order from the "
                            "generator you were given (generator=generator), so that a seed repeats an epoch.")
        other, *_ = run(call, 1)
        if other == seen:
            raise Diagnosis("another seed gave the same order: draw the order from the generator you were given, "
                            "not from one of your own with a fixed seed.")
        if not math.isfinite(offset):
            raise Diagnosis("after your epoch the student's weights are NaN: a loss that was NaN (or infinite) "
                            "was backpropagated. Pass loss_fn's result to backward() as it is.")
        if steps == 0:
            raise Diagnosis("the student did not change: you never called optimizer.step() on the optimizer you "
                            "were given. For each batch: optimizer.zero_grad(), loss.backward(), optimizer.step().")
        if steps != batches:
            raise Diagnosis(f"you called optimizer.step() {steps} times in an epoch of {batches} batches: make one "
                            "step per batch, right after that batch's backward pass.")
        if close(offset, -lr * batches, abs_=1e-5):
            return "shuffled batches, each with its own examples' teacher logits and labels."
        if close(offset, 0.0, abs_=1e-7):
            raise Diagnosis("the student did not change: for each batch call loss.backward() and then "
                            "optimizer.step() (with optimizer.zero_grad() before the backward, not between).")
        if close(offset, -lr * (stale * batches + batches * (batches + 1) / 2), abs_=1e-5):
            raise Diagnosis("you never cleared the gradients: call optimizer.zero_grad() before each "
                            "loss.backward(), or each step also repeats all the earlier batches' gradients.")
        if close(offset, -lr * (batches + stale), abs_=1e-5):
            raise Diagnosis("the first batch's step also applied a gradient left from before the epoch: call "
                            "optimizer.zero_grad() before each backward (clearing after the step is one batch too "
                            "late for the first).")
        if -offset / lr > batches:
            raise Diagnosis(f"the student moved further than this epoch's {batches} batches allow (as far as "
                            f"{-offset / lr:.3f} clean steps): a gradient was not cleared before a backward, one "
                            "from before the epoch or from an earlier batch. Call optimizer.zero_grad() before "
                            "each loss.backward().")
        raise Diagnosis(f"the student moved as {-offset / lr:.3f} optimizer steps of this epoch's {batches} "
                        "batches would: one optimizer.step() per batch, after zero_grad() and backward().")

    return run_check(epoch, body)
