import logging
import warnings

import pytest
import torch
from torch import nn

from kdutils.deploy import (
    Latency,
    WithPreprocessing,
    best_time_per_call,
    captured_messages,
    export_model,
    load_exported,
    max_abs_difference,
    measure_latency,
    pareto_front,
    quantize_int8,
    to_uint8_images,
)
from kdutils.models import StudentModel, serialized_size_bytes
from kdutils.repro import seed_everything

MEAN, STD = 0.286, 0.353


def _student():
    seed_everything(0)
    return StudentModel().eval()


def _pixels(n=6):
    return torch.randint(0, 256, (n, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_uint8_round_trip_recovers_the_pixels():
    pixels = _pixels()
    normalised = ((pixels.float() / 255 - MEAN) / STD).unsqueeze(1)
    assert torch.equal(to_uint8_images(normalised, MEAN, STD), pixels)


def test_preprocessing_wrapper_normalises_like_the_dataset_and_checks_its_input():
    student = _student()
    shipped = WithPreprocessing(student, MEAN, STD)
    pixels = _pixels()
    normalised = ((pixels.float() / 255 - MEAN) / STD).unsqueeze(1)
    assert torch.allclose(shipped(pixels), student(normalised), atol=1e-5)
    with pytest.raises(ValueError, match=r"expected uint8 images of shape \(N, 28, 28\), got torch.float32"):
        shipped(normalised)
    with pytest.raises(ValueError, match="std must be > 0"):
        WithPreprocessing(student, MEAN, 0.0)
    assert {"mean", "std"} <= set(shipped.state_dict())  # the numbers travel with the weights


def test_export_reload_gives_the_same_outputs_for_any_batch_size(tmp_path):
    shipped = WithPreprocessing(_student(), MEAN, STD).eval()
    path = export_model(shipped, _pixels(4), tmp_path / "student.pt2")
    assert path.is_file() and not list(tmp_path.glob(".*part*"))
    reloaded = load_exported(path)
    assert reloaded is not shipped
    for n in (1, 3, 50):
        assert max_abs_difference(shipped, reloaded, _pixels(n)) <= 1e-6


def test_export_stores_only_the_example_not_the_tensor_it_was_sliced_from(tmp_path, capfd):
    student = _student()
    big = torch.randn(20000, 784)
    small_file = export_model(student, big[:4].clone(), tmp_path / "a.pt2").stat().st_size
    sliced_file = export_model(student, big[:4], tmp_path / "b.pt2").stat().st_size
    assert sliced_file < small_file + 10_000 < big.numel() * 4
    assert capfd.readouterr().err == ""  # no complaint about the temporary file's name


def test_export_errors(tmp_path):
    with pytest.raises(ValueError, match="at least 2 rows"):
        export_model(_student(), torch.randn(1, 784), tmp_path / "m.pt2")
    with pytest.raises(FileNotFoundError, match="no exported model"):
        load_exported(tmp_path / "missing.pt2")


def test_max_abs_difference_measures_and_checks_shapes():
    a = _student()
    b = _student()
    x = torch.randn(10, 784)
    assert max_abs_difference(a, b, x) == 0.0
    with torch.no_grad():
        b.fc2.bias[3] += 0.5
    assert max_abs_difference(a, b, x, batch_size=3) == pytest.approx(0.5, abs=1e-5)
    with pytest.raises(ValueError, match="differ in shape"):
        max_abs_difference(a, nn.Linear(784, 5), x)
    with pytest.raises(ValueError, match="empty"):
        max_abs_difference(a, b, x[:0])


@pytest.mark.parametrize("mode", ["dynamic", "weight_only"])
def test_int8_quantization_shrinks_the_weights_keeps_the_outputs_close_and_leaves_the_original(mode):
    pytest.importorskip("torchao")
    student = _student()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    quantized, _ = quantize_int8(student, mode)
    x = torch.randn(64, 784)
    with torch.inference_mode():
        difference = (quantized(x) - student(x)).abs().max().item()
    assert 0 < difference < 0.1  # int8 changes the numbers, a little
    assert serialized_size_bytes(quantized) < 0.35 * serialized_size_bytes(student)  # ~4x smaller weights
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_int8_quantization_errors():
    with pytest.raises(ValueError, match="mode must be one of 'dynamic', 'weight_only'"):
        quantize_int8(_student(), "int4")
    with pytest.raises(ValueError, match="has no nn.Linear layer"):
        quantize_int8(nn.Sequential(nn.ReLU()))


def test_captured_messages_collects_warnings_and_torch_logs_and_restores_logging(capsys):
    torch_logger = logging.getLogger("torch")
    handlers = torch_logger.handlers[:]
    with captured_messages() as messages:
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        logging.getLogger("torch.utils.something").warning("a %s message", "logged")
    assert "DeprecationWarning: old API" in messages
    assert any("a logged message" in m for m in messages)
    assert torch_logger.handlers == handlers
    assert capsys.readouterr().err == ""


def test_measure_latency_reports_median_spread_and_throughput():
    latency = measure_latency(_student(), torch.randn(8, 784), min_run_time=0.02)
    assert isinstance(latency, Latency) and latency.batch_size == 8
    assert latency.median_s > 0 and latency.iqr_s >= 0 and latency.runs >= 1
    assert latency.throughput == pytest.approx(8 / latency.median_s)
    with pytest.raises(ValueError, match="at least one row"):
        measure_latency(_student(), torch.randn(0, 784))


def test_pareto_front_keeps_only_undominated_points():
    costs = [1.0, 2.0, 3.0, 2.0, 5.0]
    accuracies = [0.80, 0.85, 0.84, 0.85, 0.90]
    # point 2 is dearer and worse than point 1; points 1 and 3 tie, so neither dominates the other
    assert pareto_front(costs, accuracies) == [0, 1, 3, 4]
    assert pareto_front([1.0], [0.5]) == [0]
    with pytest.raises(ValueError, match="2 costs but 1 accuracies"):
        pareto_front([1, 2], [0.5])


class _CallLog(nn.Module):
    """Records its name in a shared list on every call, and how many threads PyTorch had then."""

    def __init__(self, name, log):
        super().__init__()
        self.name, self.log = name, log

    def forward(self, x):
        self.log.append((self.name, torch.get_num_threads(), torch.is_inference_mode_enabled()))
        return x


def test_best_time_per_call_interleaves_rounds_on_one_thread_and_restores_the_thread_count():
    log = []
    threads = torch.get_num_threads()
    times = best_time_per_call({"a": _CallLog("a", log), "b": _CallLog("b", log)}, torch.zeros(2, 3), number=3,
                               rounds=2)
    assert set(times) == {"a", "b"} and all(0 < t < float("inf") for t in times.values())
    names = [name for name, _, _ in log]
    # one warm-up call each, then per round 3 calls of a followed by 3 of b: the models take turns
    assert names == ["a", "b"] + (["a"] * 3 + ["b"] * 3) * 2
    assert all(n == 1 and inference for _, n, inference in log)
    assert torch.get_num_threads() == threads


def test_best_time_per_call_restores_the_thread_count_when_a_model_fails():
    threads = torch.get_num_threads()

    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("broken model")

    with pytest.raises(RuntimeError, match="broken model"):
        best_time_per_call({"broken": Broken()}, torch.zeros(1, 3), number=1)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize(("models", "kwargs", "message"), [
    ({}, {"number": 1}, "at least one model"),
    ({"m": nn.Identity()}, {"number": 0}, "number must be"),
    ({"m": nn.Identity()}, {"number": 1, "rounds": 0}, "rounds must be"),
    ({"m": nn.Identity()}, {"number": 1, "num_threads": True}, "num_threads must be"),
])
def test_best_time_per_call_rejects_bad_arguments(models, kwargs, message):
    with pytest.raises(ValueError, match=message):
        best_time_per_call(models, torch.zeros(1, 3), **kwargs)
