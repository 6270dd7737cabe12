"""The series' teacher: the recipe notebook 02 trains it with, where its checkpoint lives, and ``load_teacher``."""

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


def teacher_checkpoint(dataset_name: str, root: str | Path | None = None) -> Path:
    """Path of the series' teacher checkpoint for ``dataset_name``: ``data/checkpoints/teacher_<name>.pt``."""
    return checkpoint_path(f"teacher_{dataset_name}", root)


def load_teacher(ds: Dataset, progress: bool = True) -> tuple[TeacherModel, dict[str, Any]]:
    """The teacher of notebook 02 for dataset ``ds``: loaded if its checkpoint matches, else trained.

    Returns ``(teacher, metadata)``; the teacher is in ``eval()`` mode.
    """

    def fit_teacher(model: TeacherModel) -> dict[str, Any]:
        history = train(model, ds.train, test=ds.test, progress=progress, description="teacher", **TEACHER_RECIPE)
        return {"test_accuracy": history.final_test_accuracy, "history": history.as_dict()}

    seed_everything(TEACHER_RECIPE["seed"])
    teacher = TeacherModel()
    metadata, _ = load_or_train(
        teacher, teacher_checkpoint(ds.name, ds.root), fit_teacher, dataset=ds.name, **TEACHER_RECIPE
    )
    return teacher.eval(), metadata
