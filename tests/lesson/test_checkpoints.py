import pytest
import torch

from kdutils import checkpoints
from kdutils.checkpoints import (
    CheckpointError,
    load_checkpoint,
    load_or_train,
    read_metadata,
    save_checkpoint,
)
from kdutils.models import StudentModel, TeacherModel
from kdutils.repro import seed_everything


def _student(seed):
    seed_everything(seed)
    return StudentModel()


def test_round_trip_restores_weights_and_metadata(tmp_path):
    original = _student(0)
    path = save_checkpoint(original, tmp_path / "ckpt" / "student.pt", dataset="fashion-mnist", seed=0, epochs=3,
                           test_accuracy=0.87, history={"loss": [1.0, 0.5]})
    restored = _student(1)
    metadata = load_checkpoint(restored, path)
    for a, b in zip(original.parameters(), restored.parameters()):
        assert torch.equal(a, b)
    assert metadata["architecture"] == "StudentModel"
    assert metadata["dataset"] == "fashion-mnist" and metadata["test_accuracy"] == 0.87
    assert metadata["versions"]["torch"] == torch.__version__
    assert read_metadata(path)["history"] == {"loss": [1.0, 0.5]}
    assert not list(path.parent.glob("*.part"))
    assert path.stat().st_mode & 0o777 == 0o644


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = save_checkpoint(_student(0), tmp_path / "student.pt")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted.*Delete it"):
        load_checkpoint(_student(0), path)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = save_checkpoint(TeacherModel(), tmp_path / "teacher.pt")
    with pytest.raises(CheckpointError, match="holds a TeacherModel, not a StudentModel"):
        load_checkpoint(StudentModel(), path)


def test_changed_layer_shapes_are_refused(tmp_path):
    path = save_checkpoint(_student(0), tmp_path / "student.pt")
    wider = StudentModel()
    wider.fc1 = torch.nn.Linear(784, 64)
    wider.fc2 = torch.nn.Linear(64, 10)
    with pytest.raises(CheckpointError, match="other layer shapes.*fc1.weight"):
        load_checkpoint(wider, path)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(StudentModel(), tmp_path / "absent.pt")
    foreign = tmp_path / "plain.pt"
    torch.save(StudentModel().state_dict(), foreign)
    with pytest.raises(CheckpointError, match="not a kdutils checkpoint"):
        load_checkpoint(StudentModel(), foreign)


def test_code_in_a_checkpoint_is_never_run(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": checkpoints.FORMAT, "state_dict": {}, "x": Payload()}, evil)
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(StudentModel(), evil)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(_student(0), tmp_path / "student.pt", seed=0)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(_student(1), path, seed=1)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.part"))


def test_metadata_must_be_plain_values(tmp_path):
    with pytest.raises(TypeError, match="plain values"):
        save_checkpoint(_student(0), tmp_path / "s.pt", optimizer=object())


def test_load_or_train_trains_once_then_loads(tmp_path):
    path = tmp_path / "student.pt"
    calls = []

    def fit(model):
        calls.append(1)
        with torch.no_grad():
            model.fc2.bias.fill_(0.25)
        return {"test_accuracy": 0.5}

    metadata, trained = load_or_train(_student(0), path, fit, dataset="toy", seed=0, epochs=2)
    assert trained and metadata["test_accuracy"] == 0.5 and len(calls) == 1
    fresh = _student(9)
    metadata, trained = load_or_train(fresh, path, fit, dataset="toy", seed=0, epochs=2)
    assert not trained and len(calls) == 1
    assert torch.all(fresh.fc2.bias == 0.25)
    # another recipe means other weights: retrain rather than silently reuse
    _, trained = load_or_train(_student(0), path, fit, dataset="toy", seed=0, epochs=3)
    assert trained and len(calls) == 2 and read_metadata(path)["epochs"] == 3


def test_load_or_train_does_not_hide_a_damaged_checkpoint(tmp_path):
    path = save_checkpoint(_student(0), tmp_path / "student.pt", seed=0)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_or_train(_student(0), path, lambda m: None, seed=0)

