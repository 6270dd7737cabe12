"""Feature distillation: match the student's hidden activations to the teacher's.

Logit distillation (``kdutils.losses``) shows the student only the teacher's *answers*. Feature
distillation also shows it the teacher's *intermediate representation*: a hidden layer of the
student, mapped by a small learned projection, is pulled towards a hidden layer of the teacher.

Reference: A. Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015
(https://arxiv.org/abs/1412.6550), where the teacher's guiding layer is called a "hint" and the
projection a regressor; and the PyTorch
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
* ``train_with_features``: ``kdutils.training.fit`` with the loss ``distillation_loss + feature_weight *
  feature_loss`` (both in ``kdutils.losses``), teacher outputs cached once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .data import Split
from .losses import (
    IGNORE_LABEL,
    check_alpha,
    check_feature_kind,
    check_temperature,
    distillation_loss_from_log_probs,
    feature_loss,
    hard_label_loss,
)
from .training import EVAL_BATCH_SIZE, History, check_teacher_logits, evaluating, fit

__all__ = [
    "FeatureCapture",
    "FeatureHistory",
    "FeatureProjection",
    "capture_features",
    "get_layer",
    "train_with_features",
]

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
    feature-distillation epoch cost about what a plain epoch costs. The model's mode is restored.
    """
    features, logits = [], []
    device = next(model.parameters()).device
    with evaluating(model), FeatureCapture(model, layer, where) as capture, torch.inference_mode():
        for begin in range(0, x.shape[0], batch_size):
            capture.clear()
            logits.append(model(x[begin : begin + batch_size].to(device)))
            features.append(capture.features.reshape(logits[-1].shape[0], -1))
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


@dataclass
class FeatureHistory(History):
    """``History`` plus the feature term of the loss per epoch (zero when it is not used)."""

    feature_loss: list[float] = field(default_factory=list)


def _check_teacher_features(teacher_features: torch.Tensor | None, n: int) -> None:
    if teacher_features is None:
        raise ValueError("teacher_features are needed (feature_weight > 0); compute them once with "
                         "capture_features(teacher, train_split.x, layer).")
    if teacher_features.dim() != 2 or teacher_features.shape[0] != n:
        raise ValueError(f"teacher_features must have one row per training example ({n}), "
                         f"got {tuple(teacher_features.shape)}.")


def train_with_features(
    student: nn.Module,
    train_split: Split,
    *,
    epochs: int,
    teacher_features: torch.Tensor | None = None,
    teacher_logits: torch.Tensor | None = None,
    projection: FeatureProjection | None = None,
    student_layer: str = "fc2",
    where: str = "input",
    feature_weight: float = 1.0,
    feature_kind: str = "mse",
    T: float = 4.0,
    alpha: float = 0.9,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    lr_schedule: str = "constant",
    weight_decay: float = 0.0,
    validation: Split | None = None,
    progress: bool = True,
    description: str | None = None,
) -> FeatureHistory:
    """Train ``student`` (and ``projection``) in place with ``distillation_loss + feature_weight * feature_loss``.

    Returns a ``FeatureHistory``: ``History`` plus the feature term's mean per epoch.

    ``teacher_features`` and ``teacher_logits`` are the teacher's outputs for every row of
    ``train_split``, computed once with ``capture_features(teacher, train_split.x, "fc3")`` and reused
    for every run. The student's features are what ``student_layer`` receives (``where="input"``) or
    returns. The projection's weights are optimised with the student's, by the same Adam optimiser.

    The four methods of notebook 08 are settings of one loop, so they share the optimiser, schedule
    and batch order: scratch (``alpha=0, feature_weight=0``), logit only (``alpha>0, feature_weight=0``),
    feature only (``alpha=0, feature_weight>0``) and feature + logit (both > 0). The batch order depends
    only on ``seed`` and is the same as ``kdutils.training.train``'s, so with ``feature_weight=0`` this
    loop gives the same weights as ``train`` would.
    """
    check_temperature(T)
    check_alpha(alpha)
    check_feature_kind(feature_kind)
    if not (isinstance(feature_weight, (int, float)) and math.isfinite(feature_weight) and feature_weight >= 0):
        raise ValueError(f"feature_weight must be a finite number >= 0, got {feature_weight!r}.")
    if not isinstance(train_split, Split):
        raise TypeError(f"train_with_features expects a kdutils.data.Split, got {type(train_split).__name__}.")
    n = len(train_split)
    using_features, using_logits = feature_weight > 0, alpha > 0
    if using_features:
        _check_teacher_features(teacher_features, n)
    if using_logits:
        if teacher_logits is None:
            raise ValueError("teacher_logits are needed (alpha > 0); compute them once with "
                             "capture_features(teacher, train_split.x, layer).")
        check_teacher_logits(teacher_logits, train_split, student)
    if using_features and projection is None:
        raise ValueError(
            "feature_weight > 0 needs a projection: FeatureProjection(student_dim, teacher_dim), built once and "
            "copied for each run so every run starts from the same weights."
        )
    if not (using_features or using_logits) and bool((train_split.y == IGNORE_LABEL).any()):
        raise ValueError("unlabelled examples (IGNORE_LABEL) need a teacher signal: set alpha > 0 or "
                         "feature_weight > 0.")

    device = next(student.parameters()).device
    feature_total = torch.zeros((), device=device)  # the feature term summed over this epoch's examples
    feature_means: list[float] = []
    teacher_log_probs = F.log_softmax(teacher_logits.to(device) / T, dim=1) if using_logits else None
    teacher_features = teacher_features.to(device) if using_features else None
    capture = FeatureCapture(student, student_layer, where) if using_features else None

    def batch_loss(logits, labels, idx):
        if using_logits:
            loss = distillation_loss_from_log_probs(logits, labels, teacher_log_probs[idx], T, alpha)
        else:
            loss = hard_label_loss(logits, labels)
        if using_features:
            projected = projection(capture.features.reshape(len(idx), -1))
            term = feature_loss(projected, teacher_features[idx], feature_kind)
            loss = loss + feature_weight * term
            feature_total.add_(term.detach() * len(idx))
        return loss

    def close_epoch():
        feature_means.append((feature_total / n).item())
        feature_total.zero_()

    try:
        if using_features:
            projection.to(device)
            # Fail before training, with a clear message, if the layers do not fit together.
            with torch.no_grad():
                student(train_split.x[:2].to(device))
                feature_loss(projection(capture.features.reshape(min(2, n), -1)), teacher_features[:2], feature_kind)
        history = fit(student, train_split, batch_loss, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                      extra_parameters=projection.parameters() if using_features else (), validation=validation,
                      weight_decay=weight_decay, lr_schedule=lr_schedule, progress=progress,
                      description=description or "features", on_epoch_end=close_epoch)
    finally:
        if capture is not None:
            capture.remove()
    return FeatureHistory(**history.as_dict(), feature_loss=feature_means)
