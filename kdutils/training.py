"""Training and evaluation on in-memory tensors, with optional distillation from a teacher."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .data import Split
from .losses import IGNORE_LABEL, check_alpha, check_temperature, distillation_loss
from .progress import tqdm

__all__ = ["BatchLoss", "History", "adam", "evaluate", "fit", "predict_logits", "train"]

EVAL_BATCH_SIZE = 8192


@dataclass
class History:
    """Per-epoch record of one training run."""

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)  # at the end of each epoch
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> list[int]:
        return list(range(1, len(self.loss) + 1))

    @property
    def final_test_accuracy(self) -> float | None:
        return self.test_accuracy[-1] if self.test_accuracy else None

    def as_dict(self) -> dict[str, list[float]]:
        return asdict(self)

    def latest(self) -> dict[str, str]:
        """The last epoch's loss and accuracies, formatted for a progress bar."""
        shown = {"loss": self.loss, "train_acc": self.train_accuracy, "test_acc": self.test_accuracy}
        return {name: f"{values[-1]:.4f}" for name, values in shown.items() if values}


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


def _check_train_args(split: Split, epochs: int, batch_size: int, lr: float, lr_schedule: str) -> None:
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
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}.")
    labelled = split.y[split.y != IGNORE_LABEL]
    if labelled.numel() and (labelled.min() < 0):
        raise ValueError(f"labels must be class indices >= 0 or {IGNORE_LABEL} (no label), got {labelled.min()}.")


#: ``batch_loss(logits, labels, idx)``: the loss of one mini-batch, from the student's logits, the
#: batch's labels and its rows' positions in the training split (to slice cached teacher outputs).
BatchLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def fit(
    model: nn.Module,
    train_split: Split,
    batch_loss: BatchLoss,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    extra_parameters: Iterable[nn.Parameter] = (),
    test: Split | None = None,
    weight_decay: float = 0.0,
    lr_schedule: str = "constant",
    progress: bool = True,
    description: str = "train",
    history: History | None = None,
) -> History:
    """The series' one training loop: Adam on shuffled mini-batches of ``train_split``, minimising ``batch_loss``.

    ``train`` (cross-entropy or distillation) and ``features.train_with_hints`` are this loop with
    their own ``batch_loss``. ``extra_parameters`` are optimised with the model's (a hint
    projection). The batch order depends only on ``seed``. After each epoch the ``History`` records
    the mean training loss, the training accuracy (over the labelled examples, from each step's
    logits), the learning rate, the test accuracy when ``test`` is given, and the seconds taken.
    """
    _check_train_args(train_split, epochs, batch_size, lr, lr_schedule)
    device = next(model.parameters()).device
    x, y = train_split.x.to(device), train_split.y.to(device)
    n, labelled = len(y), int((y != IGNORE_LABEL).sum())
    optimizer = adam([*model.parameters(), *extra_parameters], lr=lr, weight_decay=weight_decay)
    scheduler = None
    if lr_schedule == "cosine":  # decays to zero over the run, one step per mini-batch
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * math.ceil(n / batch_size))
    generator = torch.Generator().manual_seed(seed)
    history = history if history is not None else History()

    bar = tqdm(range(epochs), desc=description, unit="epoch", disable=not progress)
    for _ in bar:
        start = time.perf_counter()
        model.train()
        # Totals stay tensors: reading a number out (.item()) on every step would cost a sync each time.
        epoch_loss = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        order = torch.randperm(n, generator=generator).to(device)
        for begin in range(0, n, batch_size):
            idx = order[begin : begin + batch_size]
            logits = model(x[idx])
            loss = batch_loss(logits, y[idx], idx)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            epoch_loss += loss.detach() * len(idx)
            correct += (logits.argmax(dim=1) == y[idx]).sum()  # an unlabelled row (-100) never matches
        history.loss.append(epoch_loss.item() / n)
        history.train_accuracy.append(correct.item() / max(labelled, 1))
        history.learning_rate.append(optimizer.param_groups[0]["lr"])
        if test is not None:
            history.test_accuracy.append(evaluate(model, test))
        history.seconds.append(time.perf_counter() - start)
        bar.set_postfix(history.latest())
    return history


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

    Without a teacher the loss is cross-entropy. With ``teacher`` (or its ``teacher_logits``,
    aligned with ``train_split``) it is ``kdutils.losses.distillation_loss`` with ``T`` and
    ``alpha``. The teacher's logits are computed once for the whole split (``predict_logits``:
    teacher in ``eval()``, no autograd) and sliced per batch: the same targets as calling the
    teacher on every batch, at a fraction of the cost.

    Labels equal to ``kdutils.losses.IGNORE_LABEL`` mark unlabelled examples: they contribute only
    the soft term (useful for a transfer set larger than the labelled set).

    The loop is ``fit``: the batch order depends only on ``seed``, so the same seed and the same
    initial weights give bit-identical weights on the same machine. ``lr_schedule`` is
    ``"constant"`` or ``"cosine"`` (decays to zero over the run, per step).
    """
    _check_train_args(train_split, epochs, batch_size, lr, lr_schedule)  # before the teacher's pass
    if teacher is not None and teacher_logits is None:
        teacher_logits = predict_logits(teacher, train_split.x)
    if teacher_logits is None:
        if bool((train_split.y == IGNORE_LABEL).any()):
            raise ValueError("unlabelled examples (IGNORE_LABEL) need a teacher to learn from.")

        def batch_loss(logits, labels, idx):
            return F.cross_entropy(logits, labels)

    else:
        if teacher_logits.dim() != 2 or teacher_logits.shape[0] != len(train_split):
            raise ValueError(
                f"teacher_logits must have one row per training example ({len(train_split)}), "
                f"got shape {tuple(teacher_logits.shape)}."
            )
        check_temperature(T)
        check_alpha(alpha)
        teacher_logits = teacher_logits.to(next(model.parameters()).device)

        def batch_loss(logits, labels, idx):
            return distillation_loss(logits, labels, teacher_logits[idx], T=T, alpha=alpha)

    default = "train" if teacher_logits is None else "distil"
    return fit(model, train_split, batch_loss, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, test=test,
               weight_decay=weight_decay, lr_schedule=lr_schedule, progress=progress,
               description=description or default)
