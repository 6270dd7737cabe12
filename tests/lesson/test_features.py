import copy

import pytest
import torch
from torch import nn

from kdutils.data import Split
from kdutils.features import (
    FeatureCapture,
    FeatureHistory,
    FeatureProjection,
    capture_features,
    get_layer,
    train_with_features,
)
from kdutils.losses import IGNORE_LABEL, distillation_loss, feature_loss, hard_label_loss
from kdutils.models import StudentModel, TeacherModel
from kdutils.repro import seed_everything
from kdutils.training import predict_logits, train

from ..helpers import reference_training


def _student(seed=0):
    seed_everything(seed)
    return StudentModel()


def _teacher(toy_split, seed=1):
    seed_everything(seed)
    teacher = TeacherModel()
    train(teacher, toy_split, epochs=3, batch_size=32, progress=False)
    return teacher.eval()


# --- hooks -------------------------------------------------------------------------------------


def test_get_layer_finds_named_layers_and_names_the_alternatives():
    student = StudentModel()
    assert get_layer(student, "fc2") is student.fc2
    with pytest.raises(ValueError, match=r"StudentModel has no layer 'fc3'.*'fc1', 'fc2'"):
        get_layer(student, "fc3")
    with pytest.raises(ValueError, match="non-empty string"):
        get_layer(student, "")


def test_capture_input_is_the_hidden_relu_activation_and_output_the_linear_result():
    student = _student()
    x = torch.randn(5, 1, 28, 28)
    with FeatureCapture(student, "fc2", where="input") as hidden, FeatureCapture(student, "fc1", "output") as pre:
        student(x)
        expected_pre = student.fc1(x.reshape(5, -1))
        assert torch.allclose(pre.features, expected_pre)
        assert torch.allclose(hidden.features, torch.relu(expected_pre))
        assert hidden.features.requires_grad  # part of the graph: a loss on it trains the model


def test_capture_removes_its_hook_on_exit():
    student = _student()
    with FeatureCapture(student, "fc2") as capture:
        pass
    assert not student.fc2._forward_pre_hooks
    student(torch.randn(2, 784))
    with pytest.raises(RuntimeError, match="no input of layer 'fc2' was captured"):
        _ = capture.features


def test_capture_of_a_layer_the_forward_never_calls_is_a_clear_error():
    class SkipsHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(4, 4)
            self.unused_head = nn.Linear(4, 2)

        def forward(self, x):
            return self.body(x)

    model = SkipsHead()
    with FeatureCapture(model, "unused_head") as capture:
        model(torch.randn(3, 4))
        with pytest.raises(RuntimeError, match="SkipsHead's forward did not call that layer"):
            _ = capture.features


def test_capture_rejects_unknown_where():
    with pytest.raises(ValueError, match="'input' or 'output'"):
        FeatureCapture(StudentModel(), "fc2", where="middle")


def test_capture_features_matches_a_manual_pass_and_restores_mode(toy_split):
    teacher = _teacher(toy_split).train()
    features, logits = capture_features(teacher, toy_split.x, "fc3", batch_size=64)  # several batches
    assert features.shape == (len(toy_split), 128) and logits.shape == (len(toy_split), 10)
    assert teacher.training
    flat = toy_split.x.reshape(len(toy_split), -1)
    expected = torch.relu(teacher.fc2(torch.relu(teacher.fc1(flat))))
    assert torch.allclose(features, expected.detach(), atol=1e-5)
    assert torch.allclose(logits, predict_logits(teacher, toy_split.x), atol=1e-5)
    assert not features.is_inference() and not teacher.fc3._forward_pre_hooks


# --- projection and losses ---------------------------------------------------------------------


def test_projection_maps_student_width_to_teacher_width_and_rejects_other_widths():
    projection = FeatureProjection(128, 64)
    assert projection(torch.randn(3, 128)).shape == (3, 64)
    with pytest.raises(ValueError, match=r"expects student features of shape \(N, 128\), got \(3, 256\)"):
        projection(torch.randn(3, 256))
    with pytest.raises(ValueError, match="student_dim must be a positive integer"):
        FeatureProjection(0, 64)


# --- training loop -----------------------------------------------------------------------------


def test_without_features_the_loop_gives_exactly_the_weights_of_train(toy_split):
    teacher = _teacher(toy_split)
    _, teacher_logits = capture_features(teacher, toy_split.x, "fc3")
    for alpha in (0.0, 0.9):  # scratch and logit distillation
        a, b = _student(), _student()
        kwargs = dict(epochs=2, batch_size=32, lr=1e-3, seed=5, T=4.0, alpha=alpha, progress=False)
        train(a, toy_split, teacher_logits=teacher_logits if alpha else None, **{k: v for k, v in kwargs.items()
                                                                                 if alpha or k not in ("T", "alpha")})
        train_with_features(b, toy_split, teacher_logits=teacher_logits, feature_weight=0.0, **kwargs)
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.equal(pa, pb)


@pytest.mark.parametrize("alpha", [0.0, 0.9])
def test_feature_loop_matches_autograd_through_the_public_loss(toy_split, alpha):
    # A plain autograd loop over the public losses, distillation_loss (or cross-entropy on the
    # labelled rows) plus the weighted feature_loss, must reach the same weights as train_with_features.
    teacher = _teacher(toy_split)
    features, logits = capture_features(teacher, toy_split.x, "fc3")
    y = toy_split.y.clone()
    y[:30] = IGNORE_LABEL  # some rows without a label
    split = Split(toy_split.x, y)
    student, projection = _student(), FeatureProjection(128, 128)
    reference, reference_projection = copy.deepcopy(student), copy.deepcopy(projection)
    history = train_with_features(student, split, teacher_features=features, teacher_logits=logits,
                                  projection=projection, alpha=alpha, feature_weight=0.5, T=3.0, epochs=2,
                                  batch_size=32, seed=4, progress=False)

    def batch_loss(idx):
        with FeatureCapture(reference, "fc2") as hidden:
            out = reference(split.x[idx])
        labels = split.y[idx]
        logit_term = distillation_loss(out, labels, logits[idx], T=3.0, alpha=alpha) if alpha else hard_label_loss(
            out, labels)
        return logit_term + 0.5 * feature_loss(reference_projection(hidden.features), features[idx])

    losses = reference_training([*reference.parameters(), *reference_projection.parameters()], len(split), batch_loss,
                                epochs=2, batch_size=32, seed=4)
    assert history.loss == pytest.approx(losses, rel=1e-5)
    for a, b in zip([*student.parameters(), *projection.parameters()],
                    [*reference.parameters(), *reference_projection.parameters()]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # Adam turns rounding into ~lr-sized steps


def test_feature_training_pulls_student_features_towards_the_teachers(toy_split):
    teacher = _teacher(toy_split)
    features, logits = capture_features(teacher, toy_split.x, "fc3")
    student, projection = _student(), FeatureProjection(128, 128)
    start_student, start_projection = copy.deepcopy(student), copy.deepcopy(projection)

    def gap(s, p):
        with FeatureCapture(s, "fc2") as hidden, torch.no_grad():
            s(toy_split.x)
            return feature_loss(p(hidden.features), features).item()

    history = train_with_features(student, toy_split, teacher_features=features, teacher_logits=logits,
                                  projection=projection, feature_weight=1.0, alpha=0.0, epochs=4, batch_size=32,
                                  validation=toy_split, progress=False)
    assert isinstance(history, FeatureHistory) and len(history.feature_loss) == 4
    assert history.feature_loss[-1] < history.feature_loss[0]
    assert gap(student, projection) < 0.5 * gap(start_student, start_projection)
    assert not torch.equal(projection.weight, start_projection.weight)  # the projection is learned too
    assert not student.fc2._forward_pre_hooks  # hooks removed after training
    assert history.final_validation_accuracy > 0.8


def test_feature_only_training_uses_unlabelled_examples(toy_split):
    teacher = _teacher(toy_split)
    features, _ = capture_features(teacher, toy_split.x, "fc3")
    unlabelled = Split(toy_split.x, torch.full_like(toy_split.y, IGNORE_LABEL))
    student = _student()
    history = train_with_features(student, unlabelled, teacher_features=features,
                                  projection=FeatureProjection(128, 128), feature_weight=1.0, alpha=0.0, epochs=2,
                                  batch_size=32, progress=False)
    assert history.feature_loss[-1] < history.feature_loss[0]
    with pytest.raises(ValueError, match="need a teacher signal"):
        train_with_features(_student(), unlabelled, feature_weight=0.0, alpha=0.0, epochs=1, progress=False)


def test_training_errors_are_clear(toy_split):
    features = torch.randn(len(toy_split), 128)
    common = dict(epochs=1, alpha=0.0, progress=False)
    with pytest.raises(ValueError, match="teacher_features are needed"):
        train_with_features(_student(), toy_split, projection=FeatureProjection(128, 128), **common)
    with pytest.raises(ValueError, match="teacher_logits are needed"):
        train_with_features(_student(), toy_split, feature_weight=0.0, epochs=1, alpha=0.9, progress=False)
    with pytest.raises(ValueError, match="needs a projection"):
        train_with_features(_student(), toy_split, teacher_features=features, **common)
    with pytest.raises(ValueError, match=r"one row per training example \(400\), got \(10, 128\)"):
        train_with_features(_student(), toy_split, teacher_features=features[:10],
                            projection=FeatureProjection(128, 128), **common)
    with pytest.raises(ValueError, match="StudentModel has no layer 'fc3'"):
        train_with_features(_student(), toy_split, teacher_features=features, student_layer="fc3",
                            projection=FeatureProjection(128, 128), **common)
    with pytest.raises(ValueError, match="expects student features of shape"):  # hooked the wrong layer
        train_with_features(_student(), toy_split, teacher_features=features, student_layer="fc1",
                            projection=FeatureProjection(128, 128), **common)
    with pytest.raises(ValueError, match="out_features must equal the teacher layer's width"):
        train_with_features(_student(), toy_split, teacher_features=features, projection=FeatureProjection(128, 64),
                            **common)
    with pytest.raises(ValueError, match="one of 'mse', 'cosine'"):
        train_with_features(_student(), toy_split, teacher_features=features, projection=FeatureProjection(128, 128),
                            feature_kind="l2", **common)
