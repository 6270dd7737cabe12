import copy

import pytest
import torch

from kdutils.data import Split
from kdutils.losses import IGNORE_LABEL
from kdutils.models import StudentModel, TeacherModel
from kdutils.repro import choose_device, seed_everything
from kdutils.training import History, adam, evaluate, predict_logits, train

from .conftest import reference_training


def _fresh_student(seed=0):
    seed_everything(seed)
    return StudentModel()


def test_training_learns_and_records_history(toy_split):
    model = _fresh_student()
    before = evaluate(model, toy_split)
    history = train(model, toy_split, epochs=4, batch_size=32, lr=1e-3, test=toy_split, progress=False)
    assert isinstance(history, History)
    assert history.epochs == [1, 2, 3, 4] and len(history.seconds) == 4
    assert history.loss[-1] < history.loss[0]
    assert history.final_test_accuracy == pytest.approx(evaluate(model, toy_split))
    assert history.final_test_accuracy > max(0.9, before + 0.5)
    assert set(history.as_dict()) == {"loss", "train_accuracy", "test_accuracy", "seconds"}


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
    y = toy_split.y.clone()
    y[100:] = IGNORE_LABEL
    partly_labelled = Split(toy_split.x, y)
    history = train(_fresh_student(), partly_labelled, epochs=1, teacher=teacher, progress=False)
    assert 0 <= history.train_accuracy[0] <= 1
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


def test_cosine_schedule_ends_near_zero_learning_rate(toy_split):
    a = _fresh_student()
    history = train(a, toy_split, epochs=2, lr_schedule="cosine", progress=False)
    assert len(history.loss) == 2


def test_seed_and_device_helpers(monkeypatch):
    seed_everything(5)
    first = torch.rand(3)
    seed_everything(5)
    assert torch.equal(first, torch.rand(3))
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(-1)
    assert choose_device("cpu").type == "cpu"
    monkeypatch.setenv("KDUTILS_DEVICE", "cpu")
    assert choose_device().type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA was asked for"):
            choose_device("cuda")


@pytest.mark.parametrize("unlabelled", [0, 40])
def test_train_matches_a_loop_over_the_public_loss(toy_split, unlabelled):
    # train() computes the loss's gradient in closed form; a plain autograd loop over
    # distillation_loss, with the same batches and optimizer, must reach the same weights.
    from kdutils.losses import distillation_loss

    seed_everything(6)
    teacher_logits = predict_logits(TeacherModel(), toy_split.x)
    y = toy_split.y.clone()
    y[:unlabelled] = IGNORE_LABEL  # a transfer set: some rows have only the teacher's soft labels
    split = Split(toy_split.x, y)
    fast, reference = _fresh_student(), _fresh_student()
    history = train(fast, split, epochs=2, batch_size=32, seed=3, teacher_logits=teacher_logits, T=3.0,
                    alpha=0.7, progress=False)

    losses = reference_training(
        reference.parameters(), split, epochs=2, batch_size=32, seed=3,
        batch_loss=lambda idx: distillation_loss(reference(split.x[idx]), split.y[idx], teacher_logits[idx], T=3.0,
                                                 alpha=0.7),
    )
    assert history.loss == pytest.approx(losses, rel=1e-5)
    for a, b in zip(fast.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # Adam turns rounding into ~lr-sized steps


@pytest.mark.parametrize(("T", "alpha"), [(1.0, 0.5), (4.0, 0.9), (2.5, 0.0), (8.0, 1.0)])
@pytest.mark.parametrize("labelled_rows", [8, 5, 0])
def test_closed_form_gradient_equals_autograd(T, alpha, labelled_rows):
    from kdutils.losses import distillation_loss
    from kdutils.training import _distillation_grad, _epoch_loss_sum

    generator = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(8, 10, generator=generator, dtype=torch.float64)).requires_grad_()
    teacher_logits = 3 * torch.randn(8, 10, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 10, (8,), generator=generator)
    labels[labelled_rows:] = IGNORE_LABEL
    expected = distillation_loss(logits, labels, teacher_logits, T=T, alpha=alpha)
    (expected_grad,) = torch.autograd.grad(expected, logits)

    teacher_log_probs = torch.log_softmax(teacher_logits / T, dim=1)
    partly = labelled_rows < 8
    grad, hard_scale = _distillation_grad(logits, labels, teacher_log_probs.exp(), T, alpha, partly_labelled=partly)
    assert not grad.requires_grad
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)
    # the epoch's loss, summed per example with the batch's hard-term factor, over the batch size
    assert (hard_scale is not None) == (partly and alpha < 1)
    scale = None if hard_scale is None else torch.full((8,), float(hard_scale), dtype=torch.float64)
    with torch.no_grad():
        value = _epoch_loss_sum(logits, scale, labels, teacher_log_probs, T, alpha) / 8
    torch.testing.assert_close(value, expected.detach(), rtol=1e-12, atol=1e-12)
    assert grad.abs().max() > 0 or (alpha == 0 and labelled_rows == 0)


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
