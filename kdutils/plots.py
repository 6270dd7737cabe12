"""The figures the notebooks show. Each returns the matplotlib Figure so a notebook can tweak it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from cycler import cycler

from .analysis import most_confident_mistakes, reliability_bins
from .palette import LINESTYLES, OKABE_ITO, bar_style, line_style
from .training import History

__all__ = [
    "annotated_heatmap",
    "lecture_style",
    "plot_class_balance",
    "plot_class_similarity",
    "plot_confusion_matrix",
    "plot_entropy_vs_temperature",
    "plot_learning_curves",
    "plot_reliability_diagram",
    "plot_runs_with_spread",
    "plot_soft_labels_by_temperature",
    "show_confident_mistakes",
    "show_images",
    "soft_label_bars",
]


def lecture_style() -> None:
    """Larger fonts and a crisp resolution, so figures stay readable on a projector.

    Lines cycle through the colour-blind-safe Okabe-Ito colours and, with them, through line styles,
    so even a notebook's own figure tells its series apart without colour (``kdutils.palette``).
    """
    plt.rcParams.update({
        "axes.prop_cycle": cycler(color=OKABE_ITO) + cycler(linestyle=LINESTYLES),
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 2.2 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i].numpy(), cmap="gray_r", vmin=0, vmax=1)
        caption, color = classes[labels[i]], "black"
        if predictions is not None:
            predicted = int(predictions[i])
            if predicted != labels[i]:
                caption, color = f"{classes[predicted]}\n({classes[labels[i]]})", OKABE_ITO[3]
        ax.set_title(caption, fontsize=10, color=color)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return fig


def plot_learning_curves(histories: Mapping[str, History], title: str = "Learning curves"):
    """Training loss and validation accuracy per epoch, one line per run (label -> History)."""
    if not histories:
        raise ValueError("give at least one History to plot.")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for k, (label, history) in enumerate(histories.items()):
        style = line_style(k)  # a run keeps its colour and marker; validation is solid, train dashed and hollow
        ax_loss.plot(history.epochs, history.loss, label=label, **style)
        style["linestyle"] = "-"
        if history.validation_accuracy:
            ax_acc.plot(history.epochs, [100 * a for a in history.validation_accuracy], label=f"{label} (validation)",
                        **style)
        style["linestyle"] = "--"
        ax_acc.plot(history.epochs, [100 * a for a in history.train_accuracy], alpha=0.6, markerfacecolor="none",
                    label=f"{label} (train)", **style)
    ax_loss.set(title="Training loss", xlabel="epoch", ylabel="loss")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return fig


def _heatmap(ax, values, row_labels: Sequence[str], col_labels: Sequence[str], cell_text, *, cmap: str,
             xlabel: str, ylabel: str, title: str, colorbar_label: str, grey_diagonal: bool = False,
             slanted_columns: bool = False, **image_options):
    """The series' one heat map: ``values`` as colours on ``ax``, each cell labelled by ``cell_text(i, j)``.

    ``cell_text(i, j)`` returns the cell's text and its style (font size, weight, colour). With
    ``grey_diagonal`` the diagonal is drawn pale grey under the colours (pass ``values`` masked there), so
    that its large values do not swamp the colour scale. Returns the figure.
    """
    fig = ax.figure
    if grey_diagonal:
        n = len(row_labels)
        ax.imshow(np.where(np.eye(n, dtype=bool), 1.0, np.nan), cmap="Greys", vmin=0, vmax=5)  # pale grey diagonal
    image = ax.imshow(values, cmap=cmap, **image_options)
    slant = {"rotation": 45, "ha": "right"} if slanted_columns else {}
    ax.set_xticks(range(len(col_labels)), col_labels, **slant)
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    for i in range(len(row_labels)):
        for j in range(len(col_labels)):
            text, style = cell_text(i, j)
            ax.text(j, i, text, ha="center", va="center", **style)
    fig.colorbar(image, ax=ax, label=colorbar_label)
    fig.tight_layout()
    return fig


def _off_diagonal(values: np.ndarray) -> np.ma.MaskedArray:
    return np.ma.masked_array(values, mask=np.eye(values.shape[0], dtype=bool))


def plot_confusion_matrix(matrix: torch.Tensor, classes: Sequence[str], title: str = "Confusion matrix",
                          normalize: bool = True):
    """Heat map of a confusion matrix with class names; rows normalised to percentages by default.

    The diagonal (the correct answers, 70-98% of a row) would swamp the colour scale and wash out
    the mistakes, so it is greyed out and only annotated; the colours show the mistakes.
    """
    matrix = torch.as_tensor(matrix, dtype=torch.float64)
    n = len(classes)
    if matrix.shape != (n, n):
        raise ValueError(f"matrix must be ({n}, {n}) for {n} classes, got shape {tuple(matrix.shape)}.")
    shown = (100 * matrix / matrix.sum(dim=1, keepdim=True).clamp(min=1) if normalize else matrix).numpy()
    mistakes = _off_diagonal(shown)
    threshold = mistakes.max() / 2 if mistakes.count() else 0.0

    def cell_text(i, j):
        dark = i != j and shown[i, j] > threshold
        return f"{shown[i, j]:.0f}", {"fontsize": 9, "fontweight": "bold" if i == j else "normal",
                                      "color": "white" if dark else "black"}

    unit = "% of the true class" if normalize else "count"
    _, ax = plt.subplots(figsize=(8, 7))
    return _heatmap(ax, mistakes, classes, classes, cell_text, cmap="Reds", vmin=0, xlabel="predicted class",
                    ylabel="true class", title=title, grey_diagonal=True, slanted_columns=True,
                    colorbar_label=f"mistakes ({unit}); the diagonal, in grey, is correct")


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
        ax.bar(positions + (k - (len(probabilities) - 1) / 2) * width, probs, width, label=label, **bar_style(k))
    ax.set_xticks(positions, classes, rotation=45, ha="right")
    ax.set(ylabel="probability", ylim=(0, 1.05), title=title)
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
    tallest = 1
    for k, (name, y) in enumerate(labels.items()):
        y = torch.as_tensor(y).detach().cpu().reshape(-1).long()
        if y.numel() and (y.min() < 0 or y.max() >= len(classes)):
            raise ValueError(
                f"'{name}' has labels outside 0..{len(classes) - 1} (the {len(classes)} classes given); "
                "unlabelled examples (IGNORE_LABEL) have no class, so leave them out first."
            )
        counts = torch.bincount(y, minlength=len(classes)).numpy()
        tallest = max(tallest, int(counts.max(initial=0)))
        ax.bar(positions + (k - (len(labels) - 1) / 2) * width, counts, width, label=f"{name} ({y.numel():,} images)",
               **bar_style(k))
    ax.set_xticks(positions, classes, rotation=45, ha="right")
    ax.set(xlabel="class", ylabel="number of images", title=title, ylim=(0, 1.3 * tallest))  # room for the legend
    ax.legend(loc="upper center", ncols=len(labels))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


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
        shown = ">99.9%" if c > 0.999 else f"{100 * c:.1f}%"  # a rounded "100%" would hide the ranking
        ax.set_title(f"{classes[p]} {shown}\ntrue: {classes[t]}", fontsize=10, color=OKABE_ITO[3])
    fig.tight_layout()
    return fig


def plot_class_similarity(matrix: torch.Tensor, classes: Sequence[str], title: str = "Average soft label per class",
                          ax=None):
    """Annotated heat map of a ``mean_soft_labels_by_class`` matrix, in percent.

    The diagonal (the true class, near 100% at low T) would swamp the colour scale, so it is greyed
    out and only annotated; the colours show the off-diagonal mass, where the dark knowledge is.
    """
    matrix = torch.as_tensor(matrix, dtype=torch.float64).detach().cpu()
    n = len(classes)
    if matrix.shape != (n, n):
        raise ValueError(f"matrix must be ({n}, {n}) for {n} classes, got shape {tuple(matrix.shape)}.")
    percent = 100 * matrix.numpy()
    off_diagonal = _off_diagonal(percent)
    threshold = off_diagonal.max() / 2 if off_diagonal.count() else 0.0

    def cell_text(i, j):
        value = percent[i, j]
        dark = i != j and value > threshold
        return f"{value:.0f}" if value >= 0.5 or i == j else f"{value:.1f}", {
            "fontsize": 10, "fontweight": "bold" if i == j else "normal", "color": "white" if dark else "black"}

    if ax is None:
        _, ax = plt.subplots(figsize=(9.5, 8))
    return _heatmap(ax, off_diagonal, classes, classes, cell_text, cmap="Blues", vmin=0,
                    xlabel="class the soft label puts mass on", ylabel="true class", title=title, grey_diagonal=True,
                    slanted_columns=True, colorbar_label="average probability (%), off the diagonal")


def plot_soft_labels_by_temperature(logits: torch.Tensor, classes: Sequence[str], temperatures: Sequence[float],
                                    title: str = "Soft labels at several temperatures", ax=None):
    """Grouped bars of ``softmax(logits / T)`` for one example's ``logits`` at each ``T`` in ``temperatures``."""
    logits = torch.as_tensor(logits).detach().cpu().reshape(-1)
    if logits.shape[0] != len(classes):
        raise ValueError(f"give the logits of one example: {len(classes)} numbers, got {logits.shape[0]}.")
    if not temperatures:
        raise ValueError("give at least one temperature.")
    for T in temperatures:
        if not (isinstance(T, (int, float)) and np.isfinite(T) and T > 0):
            raise ValueError(f"temperatures must be finite numbers > 0, got {T!r}.")
    probabilities = {f"T = {T:g}": torch.softmax(logits.double() / T, dim=0) for T in temperatures}
    return soft_label_bars(probabilities, classes, title=title, ax=ax)


def plot_entropy_vs_temperature(temperatures: Sequence[float], entropies: Sequence[float], num_classes: int, *,
                                low: Sequence[float] | None = None, high: Sequence[float] | None = None,
                                band_label: str = "spread", marked: Sequence[float] = (),
                                title: str = "Entropy of the soft labels", ax=None):
    """Average entropy (nats) of soft labels against temperature, with the uniform distribution's log(C).

    ``low``/``high`` shade a band (e.g. the 10th and 90th percentiles over examples); ``marked``
    temperatures get a dotted vertical line each. The x axis is logarithmic.
    """
    temperatures = np.asarray(temperatures, dtype=float)
    entropies = np.asarray(entropies, dtype=float)
    if temperatures.ndim != 1 or temperatures.shape != entropies.shape or temperatures.size == 0:
        raise ValueError(
            f"temperatures and entropies must be 1-D and equally long, got {temperatures.shape} and {entropies.shape}."
        )
    if (temperatures <= 0).any():
        raise ValueError("temperatures must be > 0 (the x axis is logarithmic).")
    if (low is None) != (high is None):
        raise ValueError("give both low and high for a band, or neither.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 4.5))
    else:
        fig = ax.figure
    if low is not None:
        ax.fill_between(temperatures, np.asarray(low, dtype=float), np.asarray(high, dtype=float), alpha=0.25,
                        color=OKABE_ITO[0], label=band_label)
    ax.plot(temperatures, entropies, linewidth=2.5, color=OKABE_ITO[0], linestyle="-", label="mean entropy")
    ax.axhline(np.log(num_classes), color=OKABE_ITO[3], linestyle="--",
               label=f"uniform over {num_classes} classes: log({num_classes}) = {np.log(num_classes):.2f}")
    for k, T in enumerate(marked):
        ax.axvline(T, color="grey", linestyle=":", label="temperatures shown above" if k == 0 else None)
        # labelled in the strip above the uniform line, where neither the curve, its band nor the legend can be
        ax.annotate(f"T = {T:g}", (T, 1.06 * np.log(num_classes)), fontsize=10, color="dimgrey",
                    xytext=(3, 0), textcoords="offset points", ha="left", va="center")
    ax.set_xscale("log")
    ticks = [t for t in (1, 2, 4, 8, 16, 32, 64) if temperatures.min() <= t <= temperatures.max()]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set(xlabel="temperature T (log scale)", ylabel="entropy (nats)", title=title,
           ylim=(0, 1.12 * np.log(num_classes)))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_runs_with_spread(runs: Mapping[str, Sequence[Sequence[float]]], *, xlabel: str = "epoch",
                          ylabel: str = "test accuracy (%)", title: str = "Mean and spread over seeds", ax=None):
    """One line per label: the mean over runs (seeds) of a per-epoch curve, shaded ± one standard deviation.

    ``runs`` maps a label to a list of equally long curves (one per seed); epochs are numbered from 1.
    """
    if not runs:
        raise ValueError("give at least one label with its runs.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 4.5))
    else:
        fig = ax.figure
    for k, (label, curves) in enumerate(runs.items()):
        lengths = {len(c) for c in curves}
        if not curves or len(lengths) != 1 or 0 in lengths:
            raise ValueError(f"'{label}' needs one or more non-empty curves of equal length, got lengths {lengths}.")
        values = np.asarray(curves, dtype=float)
        epochs = np.arange(1, values.shape[1] + 1)
        mean, std = values.mean(axis=0), values.std(axis=0, ddof=1) if values.shape[0] > 1 else 0 * values[0]
        style = line_style(k)
        ax.plot(epochs, mean, label=f"{label} (mean of {values.shape[0]})", **style)
        ax.fill_between(epochs, mean - std, mean + std, color=style["color"], alpha=0.2, hatch=bar_style(k)["hatch"],
                        label=f"{label} ± 1 std")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def annotated_heatmap(values, row_labels: Sequence[str], col_labels: Sequence[str], *, xlabel: str = "",
                      ylabel: str = "", title: str = "", fmt: str = "{:.3g}", colorbar_label: str = "",
                      cmap: str = "viridis", ax=None):
    """A grid of ``values`` (rows x columns) as colours, each cell labelled with its value.

    ``fmt`` formats each number (e.g. ``"{:.1%}"``); NaN cells are left blank and marked "–". The
    text is white on dark cells and black on light ones, so every number stays readable.
    """
    values = torch.as_tensor(values, dtype=torch.float64).detach().cpu()
    if values.dim() != 2:
        raise ValueError(f"values must be a 2-D grid (rows, columns), got shape {tuple(values.shape)}.")
    if values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(
            f"values has {values.shape[0]} rows and {values.shape[1]} columns, but {len(row_labels)} row labels "
            f"and {len(col_labels)} column labels were given; give one label per row and per column."
        )
    grid = values.numpy()
    finite = grid[np.isfinite(grid)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0

    def cell_text(i, j):
        value = grid[i, j]
        if not np.isfinite(value):
            return "–", {"fontsize": 11}
        # viridis is light at the top of its scale: black text there, white below
        return fmt.format(value), {"fontsize": 11, "color": "black" if value > middle else "white"}

    if ax is None:
        _, ax = plt.subplots(figsize=(1.3 * len(col_labels) + 3, 0.7 * len(row_labels) + 2))
    return _heatmap(ax, np.ma.masked_invalid(grid), row_labels, col_labels, cell_text, cmap=cmap, aspect="auto",
                    xlabel=xlabel, ylabel=ylabel, title=title, colorbar_label=colorbar_label)


def plot_reliability_diagram(probabilities: Mapping[str, torch.Tensor], labels: torch.Tensor, *, bins: int = 15,
                             min_count: int = 1, title: str = "Reliability diagram", ax=None,
                             colors: Mapping[str, str] | None = None, markers: Mapping[str, str] | None = None,
                             start: float = 0.0):
    """Accuracy against confidence, one line per model (name -> ``(N, classes)`` probabilities), ECE in the legend.

    Each point is one confidence bin of ``kdutils.analysis.reliability_bins`` holding at least
    ``min_count`` predictions: its mean confidence (x) and its accuracy (y). A bin of a handful of
    predictions has a noisy accuracy; ``min_count`` leaves such bins out of the drawing (the ECE in the
    legend still counts every prediction). Points below the dashed diagonal are overconfident, above it
    underconfident. ``colors`` (name -> colour) and ``markers`` (name -> marker) keep a model's look the same
    across several diagrams (by default the k-th model gets ``kdutils.palette``'s k-th colour and marker);
    ``start`` is where both axes begin (confidences below 1 / classes never occur, so the bottom-left
    corner is often empty).
    """
    if not probabilities:
        raise ValueError("give at least one model's probabilities to plot.")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be a positive integer, got {min_count!r}.")
    if not 0.0 <= start < 1.0:
        raise ValueError(f"start must lie in [0, 1), where the axes begin; got {start!r}.")
    colors, markers = dict(colors or {}), dict(markers or {})
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 6))
    else:
        fig = ax.figure
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for index, (name, values) in enumerate(probabilities.items()):
        result = reliability_bins(values, labels, bins)
        shown = [k for k, n in enumerate(result.count) if n >= min_count]
        style = line_style(index)  # solid lines: the dashed one is the diagonal
        ax.plot([result.confidence[k] for k in shown], [result.accuracy[k] for k in shown], linestyle="-",
                marker=markers.get(name, style["marker"]), color=colors.get(name, style["color"]),
                label=f"{name} (ECE {result.ece:.3f})")
    ax.set(xlim=(start, 1), ylim=(start, 1), xlabel="confidence (mean over the bin)", ylabel="accuracy in the bin",
           title=title)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    return fig
