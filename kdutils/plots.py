"""The figures the notebooks show. Each returns the matplotlib Figure so a notebook can tweak it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .training import History

__all__ = [
    "confusion_matrix",
    "lecture_style",
    "most_confident_mistakes",
    "plot_class_balance",
    "plot_confusion_matrix",
    "plot_learning_curves",
    "show_confident_mistakes",
    "show_images",
    "soft_label_bars",
]


def lecture_style() -> None:
    """Larger fonts and a crisp resolution, so figures stay readable on a projector."""
    plt.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 100,
        "font.size": 12,
        "axes.titlesize": 14,
        "axes.labelsize": 12,
        "legend.fontsize": 11,
        "xtick.labelsize": 11,
        "ytick.labelsize": 11,
    })


def show_images(
    images: torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    classes: Sequence[str],
    *,
    predictions: Sequence[int] | torch.Tensor | None = None,
    ncols: int = 8,
    title: str | None = None,
    mean: float = 0.0,
    std: float = 1.0,
):
    """A grid of grey images captioned with their class names (and predictions, if given).

    ``images`` are ``(N, 1, 28, 28)`` or ``(N, 28, 28)``; pass the dataset's ``mean`` and ``std`` to
    undo normalisation. A wrong prediction is captioned in red as "predicted (true)".
    """
    images = torch.as_tensor(images).detach().cpu().reshape(-1, 28, 28) * std + mean
    labels = [int(v) for v in labels]
    if len(labels) != images.shape[0]:
        raise ValueError(f"got {images.shape[0]} images but {len(labels)} labels.")
    n = images.shape[0]
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.9 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i].numpy(), cmap="gray_r", vmin=0, vmax=1)
        caption, color = classes[labels[i]], "black"
        if predictions is not None:
            predicted = int(predictions[i])
            if predicted != labels[i]:
                caption, color = f"{classes[predicted]}\n({classes[labels[i]]})", "tab:red"
        ax.set_title(caption, fontsize=10, color=color)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return fig


def plot_learning_curves(histories: Mapping[str, History], title: str = "Learning curves"):
    """Training loss and test accuracy per epoch, one line per run (label -> History)."""
    if not histories:
        raise ValueError("give at least one History to plot.")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for label, history in histories.items():
        ax_loss.plot(history.epochs, history.loss, marker="o", label=label)
        if history.test_accuracy:
            ax_acc.plot(history.epochs, [100 * a for a in history.test_accuracy], marker="o", label=f"{label} (test)")
        ax_acc.plot(history.epochs, [100 * a for a in history.train_accuracy], linestyle="--", alpha=0.6,
                    label=f"{label} (train)")
    ax_loss.set(title="Training loss", xlabel="epoch", ylabel="loss")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return fig


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, C)`` counts: row = true class, column = predicted class."""
    labels, predictions = torch.as_tensor(labels), torch.as_tensor(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {tuple(labels.shape)} and predictions {tuple(predictions.shape)} differ in shape.")
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def plot_confusion_matrix(matrix: torch.Tensor, classes: Sequence[str], title: str = "Confusion matrix",
                          normalize: bool = True):
    """Heat map of a confusion matrix with class names; rows normalised to percentages by default."""
    matrix = torch.as_tensor(matrix, dtype=torch.float64)
    shown = 100 * matrix / matrix.sum(dim=1, keepdim=True).clamp(min=1) if normalize else matrix
    fig, ax = plt.subplots(figsize=(8, 7))
    image = ax.imshow(shown.numpy(), cmap="Blues")
    ticks = range(len(classes))
    ax.set_xticks(ticks, classes, rotation=45, ha="right")
    ax.set_yticks(ticks, classes)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    threshold = shown.max().item() / 2
    for i in ticks:
        for j in ticks:
            value = shown[i, j].item()
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=9,
                    color="white" if value > threshold else "black")
    fig.colorbar(image, ax=ax, label="% of true class" if normalize else "count")
    fig.tight_layout()
    return fig


def soft_label_bars(probabilities: Mapping[str, torch.Tensor], classes: Sequence[str], title: str = "Soft labels",
                    ax=None):
    """Grouped bars of one or more probability vectors over the classes (label -> probabilities)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 4))
    else:
        fig = ax.figure
    width = 0.8 / max(len(probabilities), 1)
    positions = np.arange(len(classes))
    for k, (label, probs) in enumerate(probabilities.items()):
        probs = torch.as_tensor(probs).detach().cpu().reshape(-1).numpy()
        if probs.shape[0] != len(classes):
            raise ValueError(f"'{label}' has {probs.shape[0]} probabilities for {len(classes)} classes.")
        ax.bar(positions + (k - (len(probabilities) - 1) / 2) * width, probs, width, label=label)
    ax.set_xticks(positions, classes, rotation=45, ha="right")
    ax.set(ylabel="probability", ylim=(0, 1), title=title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_class_balance(labels: Mapping[str, torch.Tensor], classes: Sequence[str], title: str = "Images per class"):
    """Grouped bars: how many examples of each class every split holds (split name -> labels)."""
    if not labels:
        raise ValueError("give at least one split's labels, e.g. {'train': ds.train.y, 'test': ds.test.y}.")
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(labels)
    positions = np.arange(len(classes))
    for k, (name, y) in enumerate(labels.items()):
        y = torch.as_tensor(y).detach().cpu().reshape(-1).long()
        if y.numel() and (y.min() < 0 or y.max() >= len(classes)):
            raise ValueError(
                f"'{name}' has labels outside 0..{len(classes) - 1} (the {len(classes)} classes given); "
                "unlabelled examples (IGNORE_LABEL) have no class, so leave them out first."
            )
        counts = torch.bincount(y, minlength=len(classes)).numpy()
        ax.bar(positions + (k - (len(labels) - 1) / 2) * width, counts, width, label=f"{name} ({y.numel():,} images)")
    ax.set_xticks(positions, classes, rotation=45, ha="right")
    ax.set(xlabel="class", ylabel="number of images", title=title)
    ax.legend(loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def most_confident_mistakes(
    logits: torch.Tensor, labels: torch.Tensor, k: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` wrong predictions the model was surest of: ``(indices, confidences)``, surest first.

    The confidence is the softmax probability of the predicted class. Fewer than ``k`` are returned
    when the model makes fewer mistakes; ties keep their original order.
    """
    logits, labels = torch.as_tensor(logits).detach().cpu(), torch.as_tensor(labels).detach().cpu()
    if logits.dim() != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"expected logits of shape (N, classes) and labels of shape (N,), got {tuple(logits.shape)} "
            f"and {tuple(labels.shape)}."
        )
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    confidence, predicted = logits.float().softmax(dim=1).max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    order = torch.sort(confidence[wrong], descending=True, stable=True).indices[:k]
    chosen = wrong[order]
    return chosen, confidence[chosen]


def show_confident_mistakes(
    images: torch.Tensor,
    logits: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    *,
    k: int = 16,
    ncols: int = 8,
    title: str = "Most confident mistakes",
    mean: float = 0.0,
    std: float = 1.0,
):
    """A grid of the model's ``k`` most confident mistakes, captioned "predicted NN%" over "true: class".

    ``logits`` are the model's outputs for ``images``; pass the dataset's ``mean`` and ``std`` to
    undo normalisation (as for ``show_images``).
    """
    indices, confidence = most_confident_mistakes(logits, labels, k)
    if indices.numel() == 0:
        raise ValueError("there are no mistakes to show: every prediction matches its label.")
    labels = torch.as_tensor(labels).detach().cpu()
    predicted = torch.as_tensor(logits).detach().cpu()[indices].argmax(dim=1)
    fig = show_images(torch.as_tensor(images).detach().cpu()[indices], labels[indices], classes,
                      predictions=predicted, ncols=ncols, title=title, mean=mean, std=std)
    for ax, p, c, t in zip(fig.axes, predicted.tolist(), confidence.tolist(), labels[indices].tolist()):
        ax.set_title(f"{classes[p]} {100 * c:.0f}%\ntrue: {classes[t]}", fontsize=10, color="tab:red")
    fig.tight_layout()
    return fig
