"""Training and evaluation on in-memory tensors, with optional distillation from a teacher."""

from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .data import Split
from .losses import IGNORE_LABEL, _check_alpha, _check_temperature

__all__ = ["History", "adam", "evaluate", "predict_logits", "train"]

EVAL_BATCH_SIZE = 8192


@dataclass
class History:
    """Per-epoch record of one training run."""

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> list[int]:
        return list(range(1, len(self.loss) + 1))

    @property
    def final_test_accuracy(self) -> float | None:
        return self.test_accuracy[-1] if self.test_accuracy else None

    def as_dict(self) -> dict[str, list[float]]:
        return asdict(self)


def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    """The model's raw logits for every row of ``x``, computed in ``eval()`` mode without autograd.

    The model's train/eval mode is restored afterwards. The result is an ordinary tensor (not an
    inference tensor), so it can be used as a constant target in a loss that is back-propagated.
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.inference_mode():
            chunks = [model(x[i : i + batch_size].to(device)) for i in range(0, x.shape[0], batch_size)]
            logits = torch.cat(chunks) if chunks else torch.empty(0)
    finally:
        model.train(was_training)
    return logits.clone()  # outside inference mode: a normal tensor


def evaluate(model: nn.Module, split: Split, batch_size: int = EVAL_BATCH_SIZE) -> float:
    """Fraction of ``split`` the model classifies correctly (0..1)."""
    if len(split) == 0:
        raise ValueError("cannot evaluate on an empty split.")
    logits = predict_logits(model, split.x, batch_size)
    return (logits.argmax(dim=1).cpu() == split.y).float().mean().item()


def adam(parameters, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """``torch.optim.Adam``, with PyTorch's fused kernel where the parameters' device has one (CPU, CUDA).

    The series' models are small, so the optimizer's own overhead is a large share of each step: on
    a 2-core CPU the fused step of a ``StudentModel`` measured 206 µs against the default's 560 µs
    (``timeit`` of ``optimizer.step()``). The update rule is the same; the last bits of the weights
    may differ (a test compares the two).
    """
    parameters = list(parameters)
    fused = bool(parameters) and all(p.device.type in ("cpu", "cuda") for p in parameters)
    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, fused=fused or None)


class _EpochTally:
    """What one epoch saw: every example's logits as computed in its own training step.

    The epoch's loss and training accuracy are computed from them at the end, in a few operations
    over the whole split, instead of half a dozen tiny ones per step (at this model size each costs
    a noticeable share of a step). They are the same numbers: an example's loss depends only on its
    own logits, and a batch's loss is the mean of its examples' (``hard_scale`` records the factor
    by which a partly labelled batch's hard term differs from that: its size over its labelled rows).
    """

    def __init__(self, y: torch.Tensor, partly_labelled: bool) -> None:
        self.start = time.perf_counter()
        self.y = y
        self.partly_labelled = partly_labelled
        self.logits: torch.Tensor | None = None
        self.hard_scale: torch.Tensor | None = None

    def record(self, idx: torch.Tensor, logits: torch.Tensor, hard_scale: torch.Tensor | None = None) -> None:
        if self.logits is None:
            self.logits = logits.new_empty((self.y.shape[0], logits.shape[1]))
            if self.partly_labelled:
                self.hard_scale = logits.new_ones(self.y.shape[0])
        self.logits.index_copy_(0, idx, logits.detach())
        if hard_scale is not None:
            self.hard_scale.index_fill_(0, idx, hard_scale)

    def close(self, history: History, model: nn.Module, loss_sum, labelled_count: int, test: Split | None,
              bar, extra_loss_sum: float = 0.0) -> None:
        """Append this epoch to ``history`` (evaluating on ``test`` if given) and show it on the bar.

        ``loss_sum(logits, hard_scale)`` is the summed loss of the epoch's examples (see
        ``_epoch_loss_sum``); ``extra_loss_sum`` adds the terms not computed from logits (hints).
        """
        n = self.y.shape[0]
        with torch.no_grad():
            history.loss.append((float(loss_sum(self.logits, self.hard_scale)) + extra_loss_sum) / n)
            correct = int((self.logits.argmax(dim=1) == self.y).sum())  # unlabelled rows never match
        history.train_accuracy.append(correct / max(labelled_count, 1))
        if test is not None:
            history.test_accuracy.append(evaluate(model, test))
        history.seconds.append(time.perf_counter() - self.start)
        postfix = {"loss": f"{history.loss[-1]:.4f}", "train_acc": f"{history.train_accuracy[-1]:.4f}"}
        if test is not None:
            postfix["test_acc"] = f"{history.test_accuracy[-1]:.4f}"
        bar.set_postfix(postfix)


def _epoch_loss_sum(
    logits: torch.Tensor,
    hard_scale: torch.Tensor | None,
    labels: torch.Tensor,
    teacher_log_probs: torch.Tensor | None = None,
    T: float = 1.0,
    alpha: float = 0.0,
) -> torch.Tensor:
    """The sum over a split of each example's ``distillation_loss`` (cross-entropy when ``alpha = 0``).

    ``teacher_log_probs`` is ``log_softmax(teacher_logits / T)``. ``hard_scale`` (default 1)
    multiplies each example's hard term: its batch's size over the labelled rows in that batch,
    where some rows had no label (``IGNORE_LABEL``).
    """
    total = logits.new_zeros(())
    if alpha > 0:
        log_q_t = F.log_softmax(logits / T, dim=1)
        total += alpha * T * T * (teacher_log_probs.exp() * (teacher_log_probs - log_q_t)).sum()
    if alpha < 1:
        hard = F.nll_loss(F.log_softmax(logits, dim=1), labels, ignore_index=IGNORE_LABEL, reduction="none")
        total += (1 - alpha) * (hard if hard_scale is None else hard * hard_scale).sum()
    return total


def _distillation_grad(
    logits: torch.Tensor, labels: torch.Tensor, teacher_probs: torch.Tensor, T: float, alpha: float,
    partly_labelled: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The gradient of ``losses.distillation_loss`` for one batch w.r.t. the student's ``logits``.

    ``teacher_probs`` is ``softmax(teacher_logits / T)``, computed once per training run. The
    gradient is the loss's closed form (Hinton et al., 2015, section 2), with ``B`` the batch size
    and ``B_l`` the number of labelled rows:

        dL/dz = alpha * T * (softmax(z / T) - p_teacher) / B + (1 - alpha) * (softmax(z) - onehot(y)) / B_l

    Unlabelled rows (``IGNORE_LABEL``) get no hard part. ``train`` back-propagates it with
    ``logits.backward(grad)``: the same update as autograd through ``distillation_loss`` (tests
    compare them), without building the loss's own graph, whose dozen small nodes cost a
    ``StudentModel`` step a noticeable share of its time (see benchmarks/distillation_epoch.py).
    For a partly labelled batch it also returns ``B / B_l``, the factor ``_EpochTally`` records.
    """
    with torch.no_grad():
        n = logits.shape[0]
        if alpha > 0:
            grad = F.softmax(logits / T, dim=1).sub_(teacher_probs).mul_(alpha * T / n)
        else:
            grad = torch.zeros_like(logits)
        if alpha == 1:
            return grad, None
        hard_grad = F.softmax(logits, dim=1)
        minus_one = torch.full((n, 1), -1.0, dtype=logits.dtype, device=logits.device)
        if not partly_labelled:
            hard_grad.scatter_add_(1, labels.unsqueeze(1), minus_one)
            return grad.add_(hard_grad, alpha=(1 - alpha) / n), None
        labelled = (labels != IGNORE_LABEL).unsqueeze(1)
        count = labelled.sum().clamp(min=1).to(logits.dtype)
        hard_grad.scatter_add_(1, labels.clamp(min=0).unsqueeze(1), minus_one).mul_(labelled).div_(count)
        return grad.add_(hard_grad, alpha=1 - alpha), n / count


def _run_targets(y: torch.Tensor, teacher_logits: torch.Tensor | None, T: float, alpha: float):
    """What one training run computes once: the teacher's softened probabilities (``None`` without a
    teacher), for each step's gradient, and the function that sums an epoch's loss from its logits."""
    if teacher_logits is None:
        return None, functools.partial(_epoch_loss_sum, labels=y)
    # The teacher's side of the soft term is the same every epoch: compute it once for the split.
    teacher_log_probs = F.log_softmax(teacher_logits.to(y.device) / T, dim=1)
    loss_sum = functools.partial(_epoch_loss_sum, labels=y, teacher_log_probs=teacher_log_probs, T=T, alpha=alpha)
    return teacher_log_probs.exp(), loss_sum


def _check_train_args(split: Split, epochs: int, batch_size: int, lr: float) -> None:
    if not isinstance(split, Split):
        raise TypeError(f"train expects a kdutils.data.Split (e.g. ds.train), got {type(split).__name__}.")
    if len(split) == 0:
        raise ValueError("the training split is empty.")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    y = split.y
    labelled = y[y != IGNORE_LABEL]
    if labelled.numel() and (labelled.min() < 0):
        raise ValueError(f"labels must be class indices >= 0 or {IGNORE_LABEL} (no label), got {labelled.min()}.")


def train(
    model: nn.Module,
    train_split: Split,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    teacher: nn.Module | None = None,
    teacher_logits: torch.Tensor | None = None,
    T: float = 4.0,
    alpha: float = 0.9,
    test: Split | None = None,
    weight_decay: float = 0.0,
    lr_schedule: str = "constant",
    progress: bool = True,
    description: str | None = None,
) -> History:
    """Train ``model`` in place with Adam on ``train_split``; return its ``History``.

    Without a teacher the loss is cross-entropy. With ``teacher`` (or precomputed ``teacher_logits``
    aligned with ``train_split``), it is ``kdutils.losses.distillation_loss`` with ``T`` and ``alpha``.
    The teacher's logits are computed once for the whole split (teacher in ``eval()``, no autograd)
    and sliced per batch, and the loss's gradient w.r.t. the student's logits is computed in closed
    form and back-propagated from there (the same update autograd would make), so a distillation
    epoch costs about what a plain epoch costs.

    Labels equal to ``kdutils.losses.IGNORE_LABEL`` mark unlabelled examples: they contribute only
    the soft term (useful for a transfer set larger than the labelled set).

    The batch order depends only on ``seed``; the same seed and the same initial weights give
    bit-identical weights on the same machine. ``lr_schedule`` is ``"constant"`` or ``"cosine"``
    (decays to zero over the run, per step).
    """
    _check_train_args(train_split, epochs, batch_size, lr)
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}.")
    distilling = teacher is not None or teacher_logits is not None
    if distilling:
        _check_temperature(T)
        _check_alpha(alpha)
        T, alpha = float(T), float(alpha)
        if teacher_logits is None:
            teacher_logits = predict_logits(teacher, train_split.x)
        if teacher_logits.dim() != 2 or teacher_logits.shape[0] != len(train_split):
            raise ValueError(
                f"teacher_logits must have one row per training example ({len(train_split)}), "
                f"got shape {tuple(teacher_logits.shape)}."
            )
    elif bool((train_split.y == IGNORE_LABEL).any()):
        raise ValueError("unlabelled examples (IGNORE_LABEL) need a teacher to learn from.")

    device = next(model.parameters()).device
    x, y = train_split.x.to(device), train_split.y.to(device)
    partly_labelled = bool((y == IGNORE_LABEL).any())
    teacher_probs, loss_sum = _run_targets(y, teacher_logits if distilling else None, T, alpha)
    n = x.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    optimizer = adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
        if lr_schedule == "cosine"
        else None
    )
    generator = torch.Generator().manual_seed(seed)
    labelled_count = int((y != IGNORE_LABEL).sum())
    history = History()

    bar = tqdm(range(epochs), desc=description or ("distil" if distilling else "train"), unit="epoch",
               disable=not progress)
    model.train()
    for _ in bar:
        tally = _EpochTally(y, partly_labelled)
        order = torch.randperm(n, generator=generator).to(device)
        for begin in range(0, n, batch_size):
            idx = order[begin : begin + batch_size]
            # index_select: the same rows as x[idx], several times faster on a 4-d tensor
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            logits = model(xb)
            optimizer.zero_grad(set_to_none=True)
            hard_scale = None
            if distilling:
                logits_grad, hard_scale = _distillation_grad(
                    logits, yb, teacher_probs.index_select(0, idx), T, alpha, partly_labelled
                )
                logits.backward(logits_grad)
            else:
                F.cross_entropy(logits, yb).backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            tally.record(idx, logits, hard_scale)
        tally.close(history, model, loss_sum, labelled_count, test, bar)
    return history
