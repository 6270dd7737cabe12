"""kdutils.training: the one loop (fit) for images and words, train, evaluation, and the loop's checks made once."""

import copy

import pytest
import torch

from kdutils import losses
from kdutils.data import Split
from kdutils.losses import IGNORE_LABEL
from kdutils.models import StudentModel, TeacherModel
from kdutils.repro import seed_everything
from kdutils.training import History, adam, evaluate, evaluating, fit, predict_logits, train

from ..helpers import reference_training


def _fresh_student(seed=0):
    seed_everything(seed)
    return StudentModel()


def test_training_learns_and_records_history(toy_split):
    model = _fresh_student()
    before = evaluate(model, toy_split)
    history = train(model, toy_split, epochs=4, batch_size=32, lr=1e-3, validation=toy_split, progress=False)
    assert isinstance(history, History)
    assert history.epochs == [1, 2, 3, 4] and len(history.seconds) == 4
    assert history.loss[-1] < history.loss[0]
    assert history.final_validation_accuracy == pytest.approx(evaluate(model, toy_split))
    assert history.final_validation_accuracy > max(0.9, before + 0.5)
    assert set(history.as_dict()) == {"loss", "train_accuracy", "validation_accuracy", "learning_rate", "seconds"}


def test_same_seed_gives_bit_identical_weights(toy_split):
    a, b = _fresh_student(), _fresh_student()
    train(a, toy_split, epochs=2, batch_size=16, seed=7, progress=False)
    train(b, toy_split, epochs=2, batch_size=16, seed=7, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    c = _fresh_student()
    train(c, toy_split, epochs=2, batch_size=16, seed=8, progress=False)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)


def test_teacher_logits_are_computed_once_per_run(toy_split):
    seed_everything(1)
    teacher = TeacherModel()
    calls = []
    teacher.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    student = _fresh_student()
    train(student, toy_split, epochs=3, batch_size=16, teacher=teacher, T=4.0, alpha=0.9, progress=False)
    assert calls == [len(toy_split)]  # one pass over the data, not one per batch or epoch
    assert teacher.training  # mode restored after computing the targets
    assert all(p.grad is None for p in teacher.parameters())


def test_distillation_moves_the_student_towards_the_teacher(toy_split):
    seed_everything(2)
    teacher = TeacherModel()
    train(teacher, toy_split, epochs=5, batch_size=32, progress=False)
    start = _fresh_student()
    targets = torch.softmax(predict_logits(teacher, toy_split.x) / 4, dim=1)

    def gap(model):
        return (torch.softmax(predict_logits(model, toy_split.x) / 4, dim=1) - targets).abs().sum().item()

    distilled = copy.deepcopy(start)
    train(distilled, toy_split, epochs=5, batch_size=32, teacher=teacher, alpha=1.0, progress=False)
    assert gap(distilled) < 0.5 * gap(start)


def test_precomputed_logits_equal_passing_the_teacher(toy_split):
    seed_everything(3)
    teacher = TeacherModel()
    a, b = _fresh_student(), _fresh_student()
    train(a, toy_split, epochs=1, teacher=teacher, progress=False)
    train(b, toy_split, epochs=1, teacher_logits=predict_logits(teacher, toy_split.x), progress=False)
    assert torch.equal(a.fc1.weight, b.fc1.weight)


def test_unlabelled_examples_learn_from_the_teacher_only(toy_split):
    seed_everything(4)
    teacher = TeacherModel()
    train(teacher, toy_split, epochs=5, batch_size=32, progress=False)
    y = toy_split.y.clone()
    y[10:] = IGNORE_LABEL  # 10 labelled examples, 390 with the teacher's soft labels only
    partly_labelled = Split(toy_split.x, y)
    student = _fresh_student()
    history = train(student, partly_labelled, epochs=5, batch_size=32, teacher=teacher, alpha=0.9, progress=False)
    # what the unlabelled rows taught: the student answers as the teacher does on them
    unlabelled = toy_split.x[10:]
    agreement = (predict_logits(student, unlabelled).argmax(1) == predict_logits(teacher, unlabelled).argmax(1))
    assert agreement.float().mean() > 0.9
    # training accuracy counts the 10 labelled rows only: a multiple of 1/10
    assert all(round(10 * a, 9) == round(10 * a) for a in history.train_accuracy)
    with pytest.raises(ValueError, match="need a teacher"):
        train(_fresh_student(), partly_labelled, epochs=1, progress=False)


def test_predict_logits_restores_mode_and_is_a_normal_tensor(toy_split):
    model = _fresh_student()
    model.train()
    logits = predict_logits(model, toy_split.x, batch_size=64)
    assert model.training and logits.shape == (len(toy_split), 10)
    assert not logits.is_inference() and not logits.requires_grad
    model.eval()
    predict_logits(model, toy_split.x)
    assert not model.training


def test_evaluate_counts_correct_predictions():
    model = _fresh_student()
    x = torch.randn(50, 784)
    predictions = predict_logits(model, x).argmax(1)
    y = predictions.clone()
    y[:10] = (y[:10] + 1) % 10
    assert evaluate(model, Split(x, y)) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, Split(torch.zeros(0, 784), torch.zeros(0, dtype=torch.long)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"epochs": 1, "batch_size": 0}, "batch_size must be a positive integer"),
        ({"epochs": 1, "lr": -1.0}, "lr must be a positive number"),
        ({"epochs": 1, "lr_schedule": "step"}, "lr_schedule must be"),
        ({"epochs": 1, "teacher_logits": torch.zeros(3, 10)}, "one row per training example"),
        ({"epochs": 1, "teacher_logits": torch.zeros(400, 10), "T": 0}, "temperature"),
        ({"epochs": 1, "teacher_logits": torch.zeros(400, 10), "alpha": 2}, "alpha"),
    ],
)
def test_bad_training_arguments(toy_split, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train(_fresh_student(), toy_split, progress=False, **kwargs)


def test_train_needs_a_split(toy_split):
    with pytest.raises(TypeError, match="kdutils.data.Split"):
        train(_fresh_student(), (toy_split.x, toy_split.y), epochs=1, progress=False)
    with pytest.raises(TypeError, match=r"data with \.batch\(idx\)"):
        fit(_fresh_student(), (toy_split.x, toy_split.y), lambda *a: None, epochs=1, progress=False)


def test_cosine_schedule_ends_near_zero_learning_rate(toy_split):
    history = train(_fresh_student(), toy_split, epochs=4, lr=2e-3, lr_schedule="cosine", progress=False)
    # half-way through, cos(pi / 2) halves the rate; at the end it has decayed to zero
    assert history.learning_rate[1] == pytest.approx(1e-3, rel=1e-6)
    assert history.learning_rate[-1] == pytest.approx(0.0, abs=1e-12)
    assert history.learning_rate == sorted(history.learning_rate, reverse=True)
    constant = train(_fresh_student(), toy_split, epochs=2, lr=2e-3, progress=False)
    assert constant.learning_rate == [2e-3, 2e-3]


@pytest.mark.parametrize("unlabelled", [0, 40])
def test_train_matches_a_loop_over_the_public_loss(toy_split, unlabelled):
    # A plain autograd loop over distillation_loss, with the same batches and optimizer, must reach
    # the same weights: what makes it safe to change train's loop.
    from kdutils.losses import distillation_loss

    seed_everything(6)
    teacher_logits = predict_logits(TeacherModel(), toy_split.x)
    y = toy_split.y.clone()
    y[:unlabelled] = IGNORE_LABEL  # a transfer set: some rows have only the teacher's soft labels
    split = Split(toy_split.x, y)
    fast, reference = _fresh_student(), _fresh_student()
    history = train(fast, split, epochs=2, batch_size=32, seed=3, teacher_logits=teacher_logits, T=3.0,
                    alpha=0.7, progress=False)

    reference_losses = reference_training(
        reference.parameters(), len(split), epochs=2, batch_size=32, seed=3,
        batch_loss=lambda idx: distillation_loss(reference(split.x[idx]), split.y[idx], teacher_logits[idx], T=3.0,
                                                 alpha=0.7),
    )
    assert history.loss == pytest.approx(reference_losses, rel=1e-5)
    for a, b in zip(fast.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # Adam turns rounding into ~lr-sized steps


def test_adam_uses_the_fused_kernel_on_cpu_with_the_same_update_rule():
    seed_everything(0)
    fused_model = StudentModel()
    plain_model, initial = copy.deepcopy(fused_model), copy.deepcopy(fused_model)
    fused, plain = adam(fused_model.parameters(), lr=1e-2, weight_decay=1e-4), torch.optim.Adam(
        plain_model.parameters(), lr=1e-2, weight_decay=1e-4)
    assert fused.defaults["fused"] and not plain.defaults["fused"]
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        for a, b in zip(fused_model.parameters(), plain_model.parameters()):
            a.grad = torch.randn(a.shape, generator=generator)
            b.grad = a.grad.clone()
        fused.step()
        plain.step()
    moved = max((a - b).abs().max().item() for a, b in zip(fused_model.parameters(), initial.parameters()))
    assert moved > 1e-3  # the steps did something
    for a, b in zip(fused_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_fit_gives_batch_loss_the_rows_of_the_shuffled_batch(toy_split):
    # A cached teacher output sliced with idx must belong to the same examples as the batch's labels.
    seen = []

    def batch_loss(logits, labels, idx):
        assert torch.equal(labels, toy_split.y[idx])
        seen.append(idx.clone())
        return torch.nn.functional.cross_entropy(logits, labels)

    fit(_fresh_student(), toy_split, batch_loss, epochs=2, batch_size=64, seed=5, progress=False)
    assert [len(i) for i in seen[:7]] == [64] * 6 + [16]
    first_epoch, second_epoch = torch.cat(seen[:7]), torch.cat(seen[7:])
    assert sorted(first_epoch.tolist()) == list(range(len(toy_split)))  # every row once per epoch
    assert not torch.equal(first_epoch, torch.arange(len(toy_split)))  # shuffled
    assert not torch.equal(first_epoch, second_epoch)  # reshuffled each epoch


def test_fit_optimises_the_extra_parameters_too(toy_split):
    offset = torch.nn.Parameter(torch.zeros(10))

    def batch_loss(logits, labels, idx):
        return torch.nn.functional.cross_entropy(logits + offset, labels)

    fit(_fresh_student(), toy_split, batch_loss, epochs=1, batch_size=64, progress=False, extra_parameters=[offset])
    assert offset.abs().sum() > 0


def test_kdutils_back_propagates_losses_only():
    # The one training loop calls loss.backward(); no hand-made gradient is pushed into a graph anywhere.
    import ast
    from pathlib import Path

    import kdutils

    calls = []
    for path in Path(kdutils.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "backward":
                calls.append((path.name, len(node.args) + len(node.keywords)))
    assert ("training.py", 0) in calls
    assert all(count == 0 for _, count in calls), calls
    assert not any(isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "grad" for n in ast.walk(
        ast.parse((Path(kdutils.__file__).parent / "training.py").read_text(encoding="utf-8"))))


def test_train_checks_its_arguments_once_not_on_every_batch(toy_split, monkeypatch):
    # distillation_loss checks its arguments and reads a result back on every call; the loop checks them
    # once, before the first batch, and runs the same math without the checks.
    checked = []
    real_check = losses._check_distillation_args
    monkeypatch.setattr(losses, "_check_distillation_args", lambda *args: checked.append(1) or real_check(*args))
    seed_everything(8)
    teacher_logits = predict_logits(TeacherModel(), toy_split.x)
    train(_fresh_student(), toy_split, epochs=2, batch_size=16, teacher_logits=teacher_logits, progress=False)
    assert checked == []
    losses.distillation_loss(torch.randn(4, 10), torch.arange(4), torch.randn(4, 10))
    assert checked == [1]  # a direct call is still checked


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda y, z: (y, z[:, :9]), "teacher_logits score 9 classes but the model scores 10"),
        (lambda y, z: (torch.where(y == 3, 10, y), z), r"labels must lie in \[0, 10\)"),
        (lambda y, z: (y, z.long()), "floating point"),
    ],
)
def test_what_the_loop_no_longer_checks_per_batch_is_checked_before_it(toy_split, change, message):
    y, teacher_logits = change(toy_split.y.clone(), torch.randn(len(toy_split), 10))
    student = _fresh_student()
    before = copy.deepcopy(student.state_dict())
    with pytest.raises(ValueError, match=message):
        train(student, Split(toy_split.x, y), epochs=1, teacher_logits=teacher_logits, progress=False)
    assert all(torch.equal(v, student.state_dict()[k]) for k, v in before.items())  # nothing trained


def test_evaluating_sets_eval_mode_and_restores_the_models_own_mode_even_after_an_error():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5))
    for mode in (True, False):
        model.train(mode)
        with evaluating(model) as inside:
            assert inside is model and not model.training
        assert model.training == mode
    model.train()
    with pytest.raises(RuntimeError, match="boom"), evaluating(model):
        raise RuntimeError("boom")
    assert model.training


class SpyData:
    """Training data that records where fit moves it; a Split underneath."""

    def __init__(self, split, moved_to):
        self.split, self.moved_to = split, moved_to
        self.targets = split.targets

    def __len__(self):
        return len(self.split)

    def to(self, device):
        self.moved_to.append(torch.device(device))
        return SpyData(self.split.to(device), self.moved_to)

    def batch(self, idx):
        assert idx.device == self.split.x.device  # the batch order lives where the data does
        return self.split.batch(idx)


def test_fit_moves_the_data_once_to_the_models_device(toy_split):
    moved_to = []
    model = _fresh_student()
    fit(model, SpyData(toy_split, moved_to), lambda z, y, idx: torch.nn.functional.cross_entropy(z, y), epochs=2,
        batch_size=64, progress=False)
    assert moved_to == [next(model.parameters()).device]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_train_follows_the_models_device_on_cuda(toy_split):
    model = _fresh_student().cuda()
    history = train(model, toy_split, epochs=1, teacher_logits=torch.randn(len(toy_split), 10), progress=False)
    assert next(model.parameters()).is_cuda and len(history.loss) == 1
