"""The series' teacher: trained once with its recipe, then loaded, retrained when the recipe changes; other seeds
give notebook 09's ensemble members, cached the same way."""

import pytest
import torch

from kdutils import teacher as kd_teacher
from kdutils.checkpoints import read_metadata
from kdutils.data import Dataset
from kdutils.models import TeacherModel
from kdutils.teacher import TEACHER_RECIPE, load_teacher, teacher_checkpoint


@pytest.fixture
def tiny_dataset(toy_split, tmp_path, monkeypatch):
    # Two epochs instead of sixteen keep the test fast; everything else is the series' recipe.
    monkeypatch.setitem(kd_teacher.TEACHER_RECIPE, "epochs", 2)
    return Dataset("toy", toy_split, toy_split, toy_split, [str(i) for i in range(10)], 0.0, 1.0, root=tmp_path)


def test_load_teacher_trains_once_then_loads_the_same_weights(tiny_dataset):
    path = teacher_checkpoint("toy", tiny_dataset.root)
    assert not path.exists()
    first, metadata = load_teacher(tiny_dataset, progress=False)
    assert path.is_file() and isinstance(first, TeacherModel) and not first.training
    stored = read_metadata(path)
    assert {k: stored[k] for k in TEACHER_RECIPE} == TEACHER_RECIPE and stored["dataset"] == "toy"
    assert metadata["validation_accuracy"] > 0.9  # the toy problem is easy

    written = path.stat().st_mtime_ns
    second, _ = load_teacher(tiny_dataset, progress=False)
    assert path.stat().st_mtime_ns == written  # loaded, not retrained
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_a_checkpoint_of_another_recipe_is_retrained(tiny_dataset, monkeypatch):
    load_teacher(tiny_dataset, progress=False)
    monkeypatch.setitem(kd_teacher.TEACHER_RECIPE, "seed", 1)
    _, metadata = load_teacher(tiny_dataset, progress=False)
    assert metadata["seed"] == 1 and read_metadata(teacher_checkpoint("toy", tiny_dataset.root))["seed"] == 1


def test_teacher_checkpoint_names_the_dataset_and_any_seed_but_the_recipes(tmp_path):
    assert teacher_checkpoint("fashion-mnist", tmp_path) == tmp_path / "checkpoints" / "teacher_fashion-mnist.pt"
    assert teacher_checkpoint("toy", tmp_path, seed=0) == teacher_checkpoint("toy", tmp_path)
    assert teacher_checkpoint("toy", tmp_path, seed=3) == tmp_path / "checkpoints" / "teacher_toy_seed3.pt"
    for bad in (-1, 1.5, "1", True):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            teacher_checkpoint("toy", tmp_path, seed=bad)


def test_the_recipes_own_seed_is_notebook_02s_teacher(tiny_dataset):
    teacher, _ = load_teacher(tiny_dataset, progress=False)
    member, metadata = load_teacher(tiny_dataset, seed=0, progress=False)
    assert metadata["seed"] == 0 and not member.training
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(), member.state_dict().values()))
    assert not teacher_checkpoint("toy", tiny_dataset.root, seed=1).exists()


def test_another_seed_is_trained_once_with_that_seed_then_loaded(tiny_dataset):
    path = teacher_checkpoint("toy", tiny_dataset.root, seed=1)
    first, metadata = load_teacher(tiny_dataset, seed=1, progress=False)
    assert isinstance(first, TeacherModel) and not first.training and path.is_file()
    stored = read_metadata(path)
    assert stored["seed"] == 1 and stored["dataset"] == "toy" and stored["epochs"] == 2
    assert metadata["validation_accuracy"] > 0.9
    written = path.stat().st_mtime_ns
    second, _ = load_teacher(tiny_dataset, seed=1, progress=False)
    assert path.stat().st_mtime_ns == written  # loaded, not retrained
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    other, _ = load_teacher(tiny_dataset, seed=2, progress=False)
    assert not torch.equal(first.fc1.weight, other.fc1.weight)  # another seed, other weights
    assert not teacher_checkpoint("toy", tiny_dataset.root).exists()  # notebook 02's teacher was never needed
