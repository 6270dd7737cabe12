import pytest
import torch

from kdutils.models import StudentModel, TeacherModel, count_parameters, multiply_adds, serialized_size_bytes


def test_parameter_counts_match_the_article():
    assert count_parameters(TeacherModel()) == 235_146
    assert count_parameters(StudentModel()) == 101_770


def test_layer_shapes():
    teacher, student = TeacherModel(), StudentModel()
    assert [tuple(p.shape) for p in teacher.parameters()] == [(256, 784), (256,), (128, 256), (128,), (10, 128), (10,)]
    assert [tuple(p.shape) for p in student.parameters()] == [(128, 784), (128,), (10, 128), (10,)]


@pytest.mark.parametrize("model_class", [TeacherModel, StudentModel])
def test_accepts_images_or_flat_vectors(model_class):
    model = model_class()
    images = torch.randn(5, 1, 28, 28)
    out_images = model(images)
    assert out_images.shape == (5, 10)
    assert torch.equal(out_images, model(images.reshape(5, 784)))


@pytest.mark.parametrize("shape", [(28, 28), (1, 28, 28), (5, 3, 28, 28), (5, 783), (5, 1, 32, 32)])
def test_rejects_other_shapes_with_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 28, 28\) or \(N, 784\)"):
        StudentModel()(torch.randn(*shape))


def test_size_and_multiply_adds():
    teacher, student = TeacherModel(), StudentModel()
    assert multiply_adds(teacher) == 784 * 256 + 256 * 128 + 128 * 10
    assert multiply_adds(student) == 784 * 128 + 128 * 10
    # float32 weights dominate the file; the rest is a small header
    for model in (teacher, student):
        size = serialized_size_bytes(model)
        assert 4 * count_parameters(model) < size < 4 * count_parameters(model) + 10_000
    assert count_parameters(StudentModel(), trainable_only=True) == 101_770


def test_serialized_size_is_the_size_of_the_saved_file(tmp_path):
    teacher = TeacherModel()
    path = tmp_path / "teacher.pt"
    torch.save(teacher.state_dict(), path)
    assert serialized_size_bytes(teacher) == path.stat().st_size
    assert serialized_size_bytes(teacher) > 4 * count_parameters(teacher)  # float32 weights, plus the format
