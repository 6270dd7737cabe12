"""Checkpoints: atomic saves, safe loads (``weights_only=True``) and ``load_or_train``."""

from __future__ import annotations

import pickle
import platform
import zipfile
from collections.abc import Callable
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from .files import atomic_write, default_root

__all__ = [
    "CheckpointError",
    "checkpoint_path",
    "load_checkpoint",
    "load_or_train",
    "read_metadata",
    "save_checkpoint",
]

FORMAT = "kdutils-checkpoint-v1"


def _installed_version(package: str) -> str:
    """The installed version of ``package`` without importing it (importing torchvision takes seconds)."""
    try:
        return package_metadata.version(package)
    except package_metadata.PackageNotFoundError:
        return "not installed"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged or made for another model; the message says what to do."""


def checkpoint_path(name: str, root: str | Path | None = None) -> Path:
    """Where the series keeps the checkpoint called ``name``: ``data/checkpoints/<name>.pt``."""
    root = Path(root) if root is not None else default_root()
    return root / "checkpoints" / f"{name}.pt"


def _plain(value: Any) -> Any:
    """Metadata must survive ``weights_only=True``: keep only plain Python values."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    raise TypeError(f"checkpoint metadata must be plain values (str, numbers, lists, dicts); got {type(value)}.")


def save_checkpoint(model: nn.Module, path: str | Path, **metadata: Any) -> Path:
    """Save ``model``'s weights with ``metadata`` to ``path`` atomically.

    The file is written with ``kdutils.files.atomic_write``: a crash mid-write leaves the old checkpoint
    (or none), never a truncated one. The
    architecture, library versions and the given metadata (dataset, seed, epochs, accuracy, ...)
    are recorded beside the weights.
    """
    path = Path(path)
    payload = {
        "format": FORMAT,
        "architecture": type(model).__name__,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": _plain(metadata),
        "versions": {
            "kdutils": __version__,
            "torch": str(torch.__version__),
            "torchvision": _installed_version("torchvision"),
            "python": platform.python_version(),
        },
    }
    with atomic_write(path) as tmp, open(tmp, "wb") as file:
        torch.save(payload, file)
    return path


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}. Run the notebook that trains it (for the teacher: "
            "02_train_the_teacher.ipynb), or use load_or_train to train it here."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(
            f"{path} is truncated or corrupted, or holds more than plain weights, so it cannot be read "
            f"safely ({type(exc).__name__}). "
            "Delete it and train again (or re-run the notebook that saves it)."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "state_dict" not in payload:
        raise CheckpointError(
            f"{path} is not a kdutils checkpoint (no '{FORMAT}' header); save it with save_checkpoint."
        )
    return payload


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The architecture, versions and metadata stored in a checkpoint, without loading weights into a model."""
    payload = _read(Path(path))
    return {"architecture": payload["architecture"], "versions": payload["versions"], **payload["metadata"]}


def load_checkpoint(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load weights saved by ``save_checkpoint`` into ``model``; return the stored metadata.

    Uses ``torch.load(..., weights_only=True)``, so a checkpoint cannot run code. Raises
    ``CheckpointError`` for a missing, truncated or corrupted file, or one saved from another
    architecture.
    """
    path = Path(path)
    payload = _read(path)
    expected = type(model).__name__
    if payload["architecture"] != expected:
        raise CheckpointError(
            f"{path} holds a {payload['architecture']}, not a {expected}; load it into a "
            f"{payload['architecture']}() or choose the {expected}'s checkpoint."
        )
    own = model.state_dict()
    theirs = payload["state_dict"]
    mismatched = [k for k in own if k not in theirs or theirs[k].shape != own[k].shape]
    if mismatched or set(theirs) - set(own):
        raise CheckpointError(
            f"{path} was saved from a {expected} with other layer shapes ({', '.join(mismatched) or 'extra keys'}); "
            "the model definition changed since. Delete the checkpoint and train again."
        )
    model.load_state_dict(theirs)
    return {"architecture": payload["architecture"], "versions": payload["versions"], **payload["metadata"]}


def load_or_train(
    model: nn.Module,
    path: str | Path,
    train_fn: Callable[[nn.Module], dict[str, Any] | None],
    **recipe: Any,
) -> tuple[dict[str, Any], bool]:
    """Load ``path`` into ``model`` if it matches ``recipe``; otherwise train with ``train_fn`` and save.

    ``recipe`` holds what determines the weights (dataset, seed, epochs, learning rate, ...). A
    checkpoint whose stored recipe differs is retrained and replaced, so a notebook never silently
    uses weights made another way. ``train_fn(model)`` trains in place and may return extra metadata
    (such as the test accuracy) to store. A corrupted checkpoint is an error, not silently replaced.

    Returns ``(metadata, trained)`` where ``trained`` says whether training ran.
    """
    path = Path(path)
    recipe = _plain(recipe)
    if path.exists():
        stored = read_metadata(path)
        if stored["architecture"] == type(model).__name__ and all(stored.get(k) == v for k, v in recipe.items()):
            return load_checkpoint(model, path), False
    extra = train_fn(model) or {}
    save_checkpoint(model, path, **recipe, **extra)
    return read_metadata(path), True
