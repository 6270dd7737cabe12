"""The series' teacher: the recipe notebook 02 trains it with, where its checkpoint lives, and ``load_teacher``.

The same recipe with other seeds gives the members of notebook 09's ensemble: ``load_teacher(ds, seed=1)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoints import checkpoint_path, load_or_train
from .data import Dataset
from .models import TeacherModel
from .repro import seed_everything
from .training import train

__all__ = ["TEACHER_RECIPE", "load_teacher", "teacher_checkpoint"]

#: How the series' teacher is trained (notebook 02); every notebook that needs it loads this recipe.
TEACHER_RECIPE: dict[str, Any] = {"epochs": 16, "batch_size": 256, "lr": 3e-3, "lr_schedule": "cosine", "seed": 0}


def _checked_seed(seed: int | None) -> int:
    if seed is None:
        return TEACHER_RECIPE["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return seed


def teacher_checkpoint(dataset_name: str, root: str | Path | None = None, seed: int | None = None) -> Path:
    """Where the teacher trained with the recipe and ``seed`` is cached.

    The recipe's own seed (the default) is notebook 02's teacher, ``data/checkpoints/teacher_<name>.pt``;
    any other seed is ``data/checkpoints/teacher_<name>_seed<seed>.pt``.
    """
    seed = _checked_seed(seed)
    if seed == TEACHER_RECIPE["seed"]:
        return checkpoint_path(f"teacher_{dataset_name}", root)
    return checkpoint_path(f"teacher_{dataset_name}_seed{seed}", root)


def load_teacher(ds: Dataset, seed: int | None = None, progress: bool = True) -> tuple[TeacherModel, dict[str, Any]]:
    """The teacher of notebook 02 for dataset ``ds``, or the same recipe with another ``seed``.

    ``seed`` sets the initial weights and the batch order; the default is the recipe's own seed, which
    is notebook 02's teacher. Loaded when its checkpoint (``teacher_checkpoint``) holds that recipe, else
    trained and saved (``load_or_train``). Returns ``(teacher, metadata)``; the teacher is in ``eval()`` mode.
    """
    recipe = {**TEACHER_RECIPE, "seed": _checked_seed(seed)}
    own_seed = recipe["seed"] == TEACHER_RECIPE["seed"]

    def fit_teacher(model: TeacherModel) -> dict[str, Any]:
        description = "teacher" if own_seed else f"teacher, seed {recipe['seed']}"
        history = train(model, ds.train, validation=ds.validation, progress=progress, description=description,
                        **recipe)
        return {"validation_accuracy": history.final_validation_accuracy, "history": history.as_dict()}

    seed_everything(recipe["seed"])  # the initial weights depend only on the seed
    teacher = TeacherModel()
    path = teacher_checkpoint(ds.name, ds.root, recipe["seed"])
    # The size of the training split is part of the recipe: a teacher trained before the validation split was
    # held out (on all 60,000 images) is retrained, never mistaken for this one.
    metadata, _ = load_or_train(teacher, path, fit_teacher, dataset=ds.name, training_images=len(ds.train), **recipe)
    return teacher.eval(), metadata
