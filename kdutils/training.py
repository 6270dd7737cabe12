"""Training and evaluation: the series' one training loop (``fit``), for images and for words alike.

* ``fit``: Adam on shuffled mini-batches of anything with ``.batch(idx) -> (inputs, targets)``
  (``kdutils.data.Split`` for images, ``kdutils.words.EncodedWords`` for words), minimising a per-batch loss;
* ``train``: ``fit`` with cross-entropy, or with ``distillation_loss`` from a teacher's cached logits;
* ``predict_logits``, ``evaluate``, ``evaluating`` (eval mode, then the model's own mode restored), ``adam``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F

from .data import Split
from .losses import IGNORE_LABEL, check_alpha, check_temperature, distillation_loss_from_log_probs
from .progress import tqdm

__all__ = [
    "EVAL_BATCH_SIZE",
    "BatchLoss",
    "History",
    "TrainingData",
    "adam",
    "check_teacher_logits",
    "evaluate",
    "evaluating",
    "fit",
    "predict_logits",
    "train",
]

#: Rows per forward pass when a model only predicts (no autograd): large batches, few Python calls.
EVAL_BATCH_SIZE = 8192


@dataclass
class History:
    """Per-epoch record of one training run."""

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    validation_accuracy: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)  # at the end of each epoch
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> list[int]:
        return list(range(1, len(self.loss) + 1))

    @property
    def final_validation_accuracy(self) -> float | None:
        return self.validation_accuracy[-1] if self.validation_accuracy else None

    def as_dict(self) -> dict[str, list[float]]:
        return asdict(self)

    def latest(self) -> dict[str, str]:
        """The last epoch's loss and accuracies, formatted for a progress bar."""
        shown = {"loss": self.loss, "train_acc": self.train_accuracy, "val_acc": self.validation_accuracy}
        return {name: f"{values[-1]:.4f}" for name, values in shown.items() if values}


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in ``eval()`` mode inside the block; its own mode (train or eval) is restored afterwards.

    For a model that only predicts for a while (dropout off, batch norm on its running statistics)
    and then goes on training as before, even when the block raises.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    """The model's raw logits for every row of ``x``, computed in ``eval()`` mode without autograd.

    The model's train/eval mode is restored afterwards. The result is an ordinary tensor (not an
    inference tensor), so it can be used as a constant target in a loss that is back-propagated.
    """
    device = next(model.parameters()).device
    with evaluating(model), torch.inference_mode():
        chunks = [model(x[i : i + batch_size].to(device)) for i in range(0, x.shape[0], batch_size)]
        logits = torch.cat(chunks) if chunks else torch.empty(0)
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


class TrainingData(Protocol):
    """What ``fit`` trains on: ``kdutils.data.Split`` (images, labels) or ``kdutils.words.EncodedWords``."""

    #: Every target: a label per image, or the next character at every position (``IGNORE_LABEL`` where none).
    targets: torch.Tensor

    def __len__(self) -> int: ...

    def to(self, device: torch.device) -> TrainingData: ...

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)`` of the examples at ``idx``."""
        ...


def _check_loop_args(data: TrainingData, epochs: int, batch_size: int, lr: float, lr_schedule: str) -> None:
    if not (callable(getattr(data, "batch", None)) and hasattr(data, "targets") and hasattr(data, "__len__")):
        raise TypeError(
            f"fit trains on data with .batch(idx), such as a kdutils.data.Split (ds.train) or "
            f"kdutils.words.EncodedWords; got {type(data).__name__}."
        )
    if len(data) == 0:
        raise ValueError("the training data is empty.")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}.")


#: ``batch_loss(logits, targets, idx)``: the loss of one mini-batch, from the model's logits, the batch's
#: targets (labels, or next characters) and its rows' positions in the training data (to slice cached
#: teacher outputs).
BatchLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def fit(
    model: nn.Module,
    data: TrainingData,
    batch_loss: BatchLoss,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    extra_parameters: Iterable[nn.Parameter] = (),
    validation: Split | None = None,
    weight_decay: float = 0.0,
    lr_schedule: str = "constant",
    progress: bool = True,
    description: str = "train",
    on_epoch_end: Callable[[], None] | None = None,
) -> History:
    """The series' one training loop: Adam on shuffled mini-batches of ``data``, minimising ``batch_loss``.

    ``data`` is anything with ``len()``, ``targets``, ``.to(device)`` and ``.batch(idx) -> (inputs, targets)``: a
    ``kdutils.data.Split`` of images and labels, or ``kdutils.words.EncodedWords`` (each batch of words
    cut to its longest). It is moved once to the model's device. ``train`` (cross-entropy or
    distillation), ``features.train_with_features`` and notebook 10's language models are this loop with
    their own ``batch_loss``. ``extra_parameters`` are optimised with the model's (a feature projection).
    The batch order depends only on ``seed``. ``lr_schedule`` is ``"constant"`` or ``"cosine"`` (decays
    to zero over the run, per step).

    After each epoch the ``History`` records the mean training loss, the training accuracy (the share
    of real targets, from each step's logits, that the model's top score got right), the learning rate,
    the accuracy on ``validation`` (a ``Split`` no model trains on) when it is given, and the seconds
    taken; then ``on_epoch_end()`` is called, for a loss that keeps totals of its own per epoch.
    """
    _check_loop_args(data, epochs, batch_size, lr, lr_schedule)
    device = next(model.parameters()).device
    data = data.to(device)
    n = len(data)
    real = int((data.targets != IGNORE_LABEL).sum())  # the targets a prediction can get right, each epoch
    optimizer = adam([*model.parameters(), *extra_parameters], lr=lr, weight_decay=weight_decay)
    scheduler = None
    if lr_schedule == "cosine":  # decays to zero over the run, one step per mini-batch
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * math.ceil(n / batch_size))
    generator = torch.Generator().manual_seed(seed)
    history = History()

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
            inputs, targets = data.batch(idx)
            logits = model(inputs)
            loss = batch_loss(logits, targets, idx)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            epoch_loss += loss.detach() * len(idx)
            correct += (logits.argmax(dim=-1) == targets).sum()  # an unlabelled or padded target (-100) never matches
        history.loss.append(epoch_loss.item() / n)
        history.train_accuracy.append(correct.item() / max(real, 1))
        history.learning_rate.append(optimizer.param_groups[0]["lr"])
        if validation is not None:
            history.validation_accuracy.append(evaluate(model, validation))
        history.seconds.append(time.perf_counter() - start)
        if on_epoch_end is not None:
            on_epoch_end()
        bar.set_postfix(history.latest())
    return history


def _check_labels(split: Split) -> None:
    if not isinstance(split, Split):
        raise TypeError(f"train expects a kdutils.data.Split (e.g. ds.train), got {type(split).__name__}.")
    labelled = split.y[split.y != IGNORE_LABEL]
    if labelled.numel() and (labelled.min() < 0):
        raise ValueError(f"labels must be class indices >= 0 or {IGNORE_LABEL} (no label), got {labelled.min()}.")


def check_teacher_logits(teacher_logits: torch.Tensor, split: Split, model: nn.Module) -> None:
    """Raise ``ValueError`` unless ``teacher_logits`` fit ``split`` (a row per example) and ``model`` (its classes)."""
    if not isinstance(teacher_logits, torch.Tensor) or teacher_logits.dim() != 2 \
            or teacher_logits.shape[0] != len(split) or not teacher_logits.is_floating_point():
        shape = tuple(teacher_logits.shape) if isinstance(teacher_logits, torch.Tensor) else type(teacher_logits)
        raise ValueError(
            f"teacher_logits must be floating point with one row per training example ({len(split)}), got {shape}."
        )
    device = next(model.parameters()).device
    with evaluating(model), torch.no_grad():  # one example in eval mode: no dropout, nothing learnt or drawn
        classes = model(split.x[:1].to(device)).shape[-1]
    if teacher_logits.shape[1] != classes:
        raise ValueError(
            f"teacher_logits score {teacher_logits.shape[1]} classes but the model scores {classes}: the teacher "
            "and the student must share the classes, one column each."
        )
    labelled = split.y[split.y != IGNORE_LABEL]
    if labelled.numel() and labelled.max() >= classes:
        raise ValueError(
            f"labels must lie in [0, {classes}) (or be {IGNORE_LABEL} for 'no hard label'), "
            f"got values up to {labelled.max().item()}."
        )


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
    validation: Split | None = None,
    weight_decay: float = 0.0,
    lr_schedule: str = "constant",
    progress: bool = True,
    description: str | None = None,
) -> History:
    """Train ``model`` in place with Adam on ``train_split``; return its ``History``.

    Without a teacher the loss is cross-entropy. With ``teacher`` (or its ``teacher_logits``,
    aligned with ``train_split``) it is ``kdutils.losses.distillation_loss`` with ``T`` and
    ``alpha``. The teacher's logits are computed once for the whole split (``predict_logits``:
    teacher in ``eval()``, no autograd), turned into log-probabilities at ``T`` once, and sliced per
    batch: the same loss as calling the teacher on every batch, at a fraction of the cost. The
    arguments are checked once, here, not on every batch.

    Labels equal to ``kdutils.losses.IGNORE_LABEL`` mark unlabelled examples: they contribute only
    the soft term (useful for a transfer set larger than the labelled set).

    The loop is ``fit``: the batch order depends only on ``seed``, so the same seed and the same
    initial weights give bit-identical weights on the same machine. ``lr_schedule`` is
    ``"constant"`` or ``"cosine"`` (decays to zero over the run, per step).
    """
    _check_labels(train_split)
    _check_loop_args(train_split, epochs, batch_size, lr, lr_schedule)  # before the teacher's pass, not after it
    all_labelled = not bool((train_split.y == IGNORE_LABEL).any())
    if teacher is not None and teacher_logits is None:
        teacher_logits = predict_logits(teacher, train_split.x)
    if teacher_logits is None:
        if not all_labelled:
            raise ValueError("unlabelled examples (IGNORE_LABEL) need a teacher to learn from.")

        def batch_loss(logits, labels, idx):
            return F.cross_entropy(logits, labels)

    else:
        check_teacher_logits(teacher_logits, train_split, model)
        check_temperature(T)
        check_alpha(alpha)
        device = next(model.parameters()).device
        teacher_log_probs = F.log_softmax(teacher_logits.to(device) / T, dim=1)  # once, for every batch

        def batch_loss(logits, labels, idx):
            return distillation_loss_from_log_probs(logits, labels, teacher_log_probs[idx], T, alpha,
                                                    all_labelled=all_labelled)

    default = "train" if teacher_logits is None else "distil"
    return fit(model, train_split, batch_loss, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
               validation=validation, weight_decay=weight_decay, lr_schedule=lr_schedule, progress=progress,
               description=description or default)
