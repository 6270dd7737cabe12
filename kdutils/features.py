"""Feature ("hint") distillation: match the student's hidden activations to the teacher's.

Logit distillation (``kdutils.losses``) shows the student only the teacher's *answers*. Feature
distillation also shows it the teacher's *intermediate representation*: a hidden layer of the
student, mapped by a small learned projection, is pulled towards a hidden layer of the teacher.

Reference: A. Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015
(https://arxiv.org/abs/1412.6550), where the projection is called a regressor; and the PyTorch
knowledge-distillation tutorial, which matches hidden representations with a cosine loss or a
regressor and mean squared error.

The pieces:

* ``get_layer`` / ``FeatureCapture``: forward hooks that record what a named layer receives
  (``where="input"``) or returns (``where="output"``). The series' models apply ReLU as a function,
  so the hidden representation a classifier layer sees is the *input* of that layer (``fc2`` in the
  student, ``fc3`` in the teacher).
* ``capture_features``: the teacher's features and logits for a whole split, computed once.
* ``FeatureProjection``: the learned linear map from the student's feature size to the teacher's.
  It exists only during training; the deployed student does not carry it.
* ``hint_loss`` (``"mse"`` or ``"cosine"``) and ``hint_distillation_loss`` (hint + logit terms).
* ``train_with_hints``: the training loop, with the conventions of ``kdutils.training.train``
  (in-memory tensors, batch order depending only on ``seed``, teacher outputs cached once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .data import Split
from .losses import IGNORE_LABEL, _check_alpha, _check_temperature, _distillation_loss
from .training import (
    EVAL_BATCH_SIZE,
    History,
    _check_train_args,
    _distillation_grad,
    _EpochTally,
    _run_targets,
    adam,
)

__all__ = [
    "HINT_LOSSES",
    "FeatureCapture",
    "FeatureProjection",
    "HintHistory",
    "capture_features",
    "get_layer",
    "hint_distillation_loss",
    "hint_loss",
    "train_with_hints",
]

#: The hint losses ``hint_loss`` knows.
HINT_LOSSES = ("mse", "cosine")
_WHERE = ("input", "output")


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The sub-module of ``model`` called ``name`` (as in ``model.named_modules()``, e.g. ``"fc2"``).

    Raises ``ValueError`` naming the layers the model does have when ``name`` is not one of them.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a layer name must be a non-empty string such as 'fc1', got {name!r}.")
    layers = dict(model.named_modules())
    layers.pop("", None)  # the model itself
    if name not in layers:
        known = ", ".join(repr(k) for k in layers) or "none"
        raise ValueError(f"{type(model).__name__} has no layer {name!r}; its layers are: {known}.")
    return layers[name]


class FeatureCapture:
    """Record what one named layer of ``model`` receives or returns on each forward pass.

    Use it as a context manager so the hook is always removed::

        with FeatureCapture(student, "fc2", where="input") as hidden:
            logits = student(x)
        hidden.features          # (N, 128): the ReLU activations fc2 received

    The captured tensor is the one in the graph (no copy, no detach), so a loss on it
    back-propagates into the model. ``features`` raises ``RuntimeError`` when the layer did not
    run in the last forward pass (a model whose ``forward`` skips it).
    """

    def __init__(self, model: nn.Module, layer: str, where: str = "input") -> None:
        if where not in _WHERE:
            raise ValueError(f"where must be 'input' or 'output', got {where!r}.")
        self.model_name = type(model).__name__
        self.layer_name = layer
        self.where = where
        self._module = get_layer(model, layer)
        self._features: torch.Tensor | None = None
        self._handle = None
        self.attach()

    def attach(self) -> FeatureCapture:
        if self._handle is None:
            if self.where == "input":
                self._handle = self._module.register_forward_pre_hook(self._on_input)
            else:
                self._handle = self._module.register_forward_hook(self._on_output)
        return self

    def _on_input(self, module: nn.Module, args: tuple) -> None:
        if not args or not isinstance(args[0], torch.Tensor):
            raise TypeError(f"layer {self.layer_name!r} was called without a tensor as its first input.")
        self._features = args[0]

    def _on_output(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"layer {self.layer_name!r} returned {type(output).__name__}, not a tensor.")
        self._features = output

    def clear(self) -> None:
        """Forget the last capture (done before each forward pass, so a stale tensor is never reused)."""
        self._features = None

    @property
    def features(self) -> torch.Tensor:
        if self._features is None:
            raise RuntimeError(
                f"no {self.where} of layer {self.layer_name!r} was captured: {self.model_name}'s forward "
                "did not call that layer (or no forward pass ran since the capture was attached or cleared)."
            )
        return self._features

    def remove(self) -> None:
        """Detach the hook; the model behaves exactly as before."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def __enter__(self) -> FeatureCapture:
        return self.attach()

    def __exit__(self, *exc_info) -> None:
        self.remove()


def capture_features(
    model: nn.Module, x: torch.Tensor, layer: str, where: str = "input", batch_size: int = EVAL_BATCH_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features, logits)`` of ``model`` for every row of ``x``, in one pass, in ``eval()`` mode, no autograd.

    ``features`` is what ``layer`` receives (``where="input"``) or returns (``"output"``), flattened to
    ``(N, D)``. Computing the teacher's features and logits once, then slicing them per batch, makes a
    hint-distillation epoch cost about what a plain epoch costs. The model's mode is restored.
    """
    was_training = model.training
    model.eval()
    features, logits = [], []
    try:
        device = next(model.parameters()).device
        with FeatureCapture(model, layer, where) as capture, torch.inference_mode():
            for begin in range(0, x.shape[0], batch_size):
                capture.clear()
                logits.append(model(x[begin : begin + batch_size].to(device)))
                features.append(capture.features.reshape(logits[-1].shape[0], -1))
    finally:
        model.train(was_training)
    if not logits:
        raise ValueError("x is empty: there is nothing to compute features for.")
    return torch.cat(features).clone(), torch.cat(logits).clone()  # clone: ordinary tensors, not inference ones


class FeatureProjection(nn.Linear):
    """The learned linear map from the student's feature size to the teacher's (FitNets' "regressor").

    It is trained together with the student and thrown away afterwards: the deployed student does
    not need it. A feature tensor of the wrong width is a clear error, not a broadcasting surprise.
    """

    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        for name, value in (("student_dim", student_dim), ("teacher_dim", teacher_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer (a number of features), got {value!r}.")
        super().__init__(student_dim, teacher_dim)

    def forward(self, student_features: torch.Tensor) -> torch.Tensor:
        if student_features.dim() != 2 or student_features.shape[1] != self.in_features:
            raise ValueError(
                f"the projection expects student features of shape (N, {self.in_features}), got "
                f"{tuple(student_features.shape)}; build it as FeatureProjection(student_dim, teacher_dim) with "
                "student_dim = the width of the hooked student layer."
            )
        return super().forward(student_features)


def _check_features(projected: torch.Tensor, teacher_features: torch.Tensor) -> None:
    for name, value in (("projected student features", projected), ("teacher features", teacher_features)):
        if not isinstance(value, torch.Tensor) or value.dim() != 2 or not value.is_floating_point():
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{name} must be a 2-D floating point tensor (batch, features), got {shape}.")
    if projected.shape != teacher_features.shape:
        raise ValueError(
            f"projected student features {tuple(projected.shape)} and teacher features "
            f"{tuple(teacher_features.shape)} must have the same shape: one row per example, and the "
            f"projection's out_features must equal the teacher layer's width ({teacher_features.shape[1]})."
        )


def _hint_loss(projected: torch.Tensor, teacher_features: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "mse":
        return F.mse_loss(projected, teacher_features)
    # 1 - cosine similarity: blind to the features' scale, only their direction counts.
    return (1 - F.cosine_similarity(projected, teacher_features, dim=1)).mean()


def _check_kind(kind: str) -> None:
    if kind not in HINT_LOSSES:
        raise ValueError(f"hint loss must be one of {', '.join(repr(k) for k in HINT_LOSSES)}, got {kind!r}.")


def hint_loss(projected: torch.Tensor, teacher_features: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    r"""How far the (projected) student features are from the teacher's, averaged over the batch.

    * ``"mse"``: mean squared error over every feature of every example, as FitNets' regressor.
    * ``"cosine"``: :math:`1 - \cos(p, t)` per example, averaged; it ignores the features' length and
      lies in ``[0, 2]``, as the cosine loss of the PyTorch distillation tutorial.

    Raises ``ValueError`` for mismatched shapes or an unknown ``kind``.
    """
    _check_kind(kind)
    _check_features(projected, teacher_features)
    return _hint_loss(projected, teacher_features, kind)


def hint_distillation_loss(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    projected: torch.Tensor,
    teacher_features: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    *,
    T: float = 4.0,
    alpha: float = 0.9,
    hint_weight: float = 1.0,
    kind: str = "mse",
) -> torch.Tensor:
    r"""Hint loss plus logit distillation:

    .. math::

        L = \underbrace{\alpha T^2 \mathrm{KL}(\ldots) + (1 - \alpha) \mathrm{CE}(z_s, y)}_{
            \texttt{distillation\_loss}} + \beta \, L_\text{hint}(P h_s, h_t)

    with :math:`\beta` = ``hint_weight``. ``alpha = 0`` gives "hint only" (cross-entropy plus hint;
    ``teacher_logits`` may then be ``None``), ``hint_weight = 0`` gives plain logit distillation.
    Labels equal to ``IGNORE_LABEL`` contribute no cross-entropy, as in ``distillation_loss``.
    """
    from .losses import check_distillation_args

    _check_kind(kind)
    _check_features(projected, teacher_features)
    if not (isinstance(hint_weight, (int, float)) and math.isfinite(hint_weight) and hint_weight >= 0):
        raise ValueError(f"hint_weight must be a finite number >= 0, got {hint_weight!r}.")
    if teacher_logits is None:
        if alpha != 0:
            raise ValueError("teacher_logits are needed for the logit term (alpha > 0); pass them, or alpha=0.")
        teacher_logits = student_logits.detach()  # unused with alpha = 0; keeps the argument checks simple
    check_distillation_args(student_logits, labels, teacher_logits, T, alpha)
    if projected.shape[0] != student_logits.shape[0]:
        raise ValueError(
            f"features have {projected.shape[0]} rows but the logits have {student_logits.shape[0]}; "
            "they must describe the same batch."
        )
    loss = _distillation_loss(student_logits, labels, teacher_logits, float(T), float(alpha))
    if hint_weight > 0:
        loss = loss + hint_weight * _hint_loss(projected, teacher_features, kind)
    return loss


@dataclass
class HintHistory(History):
    """``History`` plus the hint term of the loss per epoch (zero when it is not used)."""

    hint_loss: list[float] = field(default_factory=list)


def train_with_hints(
    student: nn.Module,
    train_split: Split,
    *,
    epochs: int,
    teacher_features: torch.Tensor | None = None,
    teacher_logits: torch.Tensor | None = None,
    projection: FeatureProjection | None = None,
    student_layer: str = "fc2",
    where: str = "input",
    hint_weight: float = 1.0,
    hint_kind: str = "mse",
    T: float = 4.0,
    alpha: float = 0.9,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    lr_schedule: str = "constant",
    weight_decay: float = 0.0,
    test: Split | None = None,
    progress: bool = True,
    description: str | None = None,
) -> HintHistory:
    """Train ``student`` (and ``projection``) in place with ``hint_distillation_loss``; return a ``HintHistory``.

    ``teacher_features`` and ``teacher_logits`` are the teacher's outputs for every row of
    ``train_split``, computed once with ``capture_features(teacher, train_split.x, "fc3")`` and reused
    for every run. The student's features are what ``student_layer`` receives (``where="input"``) or
    returns. The projection's weights are optimised with the student's, by the same Adam optimiser.

    The four methods of notebook 08 are settings of one loop, so they share the optimiser, schedule
    and batch order: scratch (``alpha=0, hint_weight=0``), logit only (``alpha>0, hint_weight=0``),
    hint only (``alpha=0, hint_weight>0``) and hint + logit (both > 0). The batch order depends only
    on ``seed`` and is the same as ``kdutils.training.train``'s, so with ``hint_weight=0`` this loop
    gives the same weights as ``train`` would.
    """
    _check_train_args(train_split, epochs, batch_size, lr)
    _check_temperature(T)
    _check_alpha(alpha)
    _check_kind(hint_kind)
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}.")
    if not (isinstance(hint_weight, (int, float)) and math.isfinite(hint_weight) and hint_weight >= 0):
        raise ValueError(f"hint_weight must be a finite number >= 0, got {hint_weight!r}.")
    T, alpha, hint_weight = float(T), float(alpha), float(hint_weight)
    n = len(train_split)
    using_hints, using_logits = hint_weight > 0, alpha > 0
    for name, tensor, needed in (("teacher_features", teacher_features, using_hints),
                                 ("teacher_logits", teacher_logits, using_logits)):
        if not needed:
            continue
        if tensor is None:
            raise ValueError(
                f"{name} are needed ({'hint_weight > 0' if name == 'teacher_features' else 'alpha > 0'}); "
                "compute them once with capture_features(teacher, train_split.x, layer)."
            )
        if tensor.dim() != 2 or tensor.shape[0] != n:
            raise ValueError(f"{name} must have one row per training example ({n}), got {tuple(tensor.shape)}.")
    if using_hints and projection is None:
        raise ValueError(
            "hint_weight > 0 needs a projection: FeatureProjection(student_dim, teacher_dim), built once and "
            "copied for each run so every run starts from the same weights."
        )
    if not (using_hints or using_logits) and bool((train_split.y == IGNORE_LABEL).any()):
        raise ValueError("unlabelled examples (IGNORE_LABEL) need a teacher signal: set alpha > 0 or hint_weight > 0.")

    device = next(student.parameters()).device
    x, y = train_split.x.to(device), train_split.y.to(device)
    partly_labelled = bool((y == IGNORE_LABEL).any())
    t_probs, logit_loss_sum = _run_targets(y, teacher_logits if using_logits else None, T, alpha)
    t_features = teacher_features.to(device) if using_hints else None
    capture = FeatureCapture(student, student_layer, where) if using_hints else None
    try:
        if using_hints:
            projection.to(device)
            # Fail before training, with a clear message, if the layers do not fit together.
            with torch.no_grad():
                capture.clear()
                student(x[:2])
                _check_features(projection(capture.features.reshape(min(2, n), -1)), t_features[:2])
        parameters = list(student.parameters()) + (list(projection.parameters()) if using_hints else [])
        optimizer = adam(parameters, lr=lr, weight_decay=weight_decay)
        scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * math.ceil(n / batch_size))
            if lr_schedule == "cosine"
            else None
        )
        generator = torch.Generator().manual_seed(seed)
        labelled_count = int((y != IGNORE_LABEL).sum())
        history = HintHistory()
        bar = tqdm(range(epochs), desc=description or "hints", unit="epoch", disable=not progress)
        student.train()
        if using_hints:
            projection.train()
        for _ in bar:
            tally = _EpochTally(y, partly_labelled)
            hint_sum = torch.zeros((), device=device)
            order = torch.randperm(n, generator=generator).to(device)
            for begin in range(0, n, batch_size):
                idx = order[begin : begin + batch_size]
                xb, yb = x.index_select(0, idx), y.index_select(0, idx)
                if using_hints:
                    capture.clear()
                logits = student(xb)
                optimizer.zero_grad(set_to_none=True)
                # What to back-propagate from: the logit term's closed-form gradient (see
                # training._distillation_grad) or the cross-entropy, plus the hint term.
                if using_logits:
                    logits_grad, hard_scale = _distillation_grad(
                        logits, yb, t_probs.index_select(0, idx), T, alpha, partly_labelled
                    )
                    roots, root_grads = [logits], [logits_grad]
                else:
                    loss = _distillation_loss(logits, yb, logits, T, 0.0)  # cross-entropy on the labelled rows
                    roots, root_grads = [loss], [None]
                    hard_scale = idx.shape[0] / (yb != IGNORE_LABEL).sum().clamp(min=1) if partly_labelled else None
                if using_hints:
                    projected = projection(capture.features.reshape(idx.shape[0], -1))
                    hint = _hint_loss(projected, t_features.index_select(0, idx), hint_kind)
                    roots.append(hint_weight * hint)
                    root_grads.append(None)
                    hint_sum += hint.detach() * idx.shape[0]
                torch.autograd.backward(roots, root_grads)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                tally.record(idx, logits, hard_scale)
            history.hint_loss.append(hint_sum.item() / n)
            tally.close(history, student, logit_loss_sum, labelled_count, test, bar,
                        extra_loss_sum=hint_weight * history.hint_loss[-1] * n)
    finally:
        if capture is not None:
            capture.remove()
    return history
