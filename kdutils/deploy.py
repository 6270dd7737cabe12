"""Shipping a model: preprocessing that travels with it, export and reload, int8 quantization, latency, Pareto front.

* ``WithPreprocessing`` wraps a model so it takes raw ``uint8`` images: the normalisation the model
  was trained with becomes part of the shipped artefact instead of a note in a README.
* ``export_model`` / ``load_exported``: ``torch.export`` to a ``.pt2`` file and back, with a dynamic
  batch dimension. ``max_abs_difference`` compares two models' outputs batch by batch.
* ``quantize_int8``: int8 quantization of the ``nn.Linear`` layers with ``torchao`` (the successor of
  the deprecated ``torch.ao.quantization``), on a copy of the model.
* ``measure_latency``: median and spread with ``torch.utils.benchmark``.
* ``best_time_per_call``: notebook 01's protocol for comparing models: one thread, interleaved rounds, the best.
* ``pareto_front``: the variants no other variant beats on both cost and accuracy.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .files import atomic_write
from .training import EVAL_BATCH_SIZE, evaluating

__all__ = [
    "INT8_MODES",
    "Latency",
    "WithPreprocessing",
    "best_time_per_call",
    "captured_messages",
    "export_model",
    "load_exported",
    "max_abs_difference",
    "measure_latency",
    "pareto_front",
    "quantize_int8",
    "to_uint8_images",
]

#: int8 schemes ``quantize_int8`` knows: int8 weights with activations quantized on the fly per batch,
#: or int8 weights only (dequantized to float32 for the matrix product).
INT8_MODES = ("dynamic", "weight_only")


@contextlib.contextmanager
def captured_messages():
    """Collect the Python warnings and ``torch`` log records raised inside the block, instead of printing them.

    Yields a list that receives one ``"Category: message"`` string per warning or log record, so a
    notebook can print what a library said and explain it, without stderr noise. Nothing is lost:
    print the list.
    """
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(f"torch log ({record.levelname}, {record.name}): {record.getMessage()}")

    torch_logger = logging.getLogger("torch")
    saved_handlers, saved_propagate = torch_logger.handlers[:], torch_logger.propagate
    torch_logger.handlers = [_Collect()]
    torch_logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        messages.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    finally:
        torch_logger.handlers = saved_handlers
        torch_logger.propagate = saved_propagate


def to_uint8_images(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Undo the dataset's normalisation: ``(N, 1, 28, 28)`` float -> ``(N, 28, 28)`` uint8 pixels, as stored on disk."""
    pixels = (x.reshape(x.shape[0], 28, 28) * std + mean) * 255
    return pixels.round().clamp(0, 255).to(torch.uint8)


class WithPreprocessing(nn.Module):
    """``model`` preceded by the normalisation it was trained with; takes ``(N, 28, 28)`` uint8 images.

    Shipping the normalisation inside the model means a caller cannot forget it or use another
    dataset's numbers: a model fed raw pixels when it expects normalised ones still answers, just
    wrongly, and nothing raises.
    """

    def __init__(self, model: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        if not std > 0:
            raise ValueError(f"std must be > 0, got {std!r}.")
        self.model = model
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 3 or images.shape[1:] != (28, 28):
            raise ValueError(
                f"expected uint8 images of shape (N, 28, 28), got {images.dtype} {tuple(images.shape)}; "
                "use to_uint8_images to turn normalised tensors back into pixels."
            )
        x = (images.to(torch.float32) / 255 - self.mean) / self.std
        return self.model(x.unsqueeze(1))


def export_model(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """``torch.export`` ``model`` (in eval mode) with a dynamic batch dimension and save it to ``path`` (``.pt2``).

    The file holds the graph and the weights; ``load_exported`` needs neither the Python class nor
    kdutils to run it. The write is atomic (temporary file, then rename).
    """
    path = Path(path)
    if example.dim() < 1 or example.shape[0] < 2:
        raise ValueError("give an example batch of at least 2 rows, so the batch dimension can be exported as dynamic.")
    # The program stores its example input, with the whole storage behind it: a slice of the test set
    # would carry all 10,000 images into the file. A contiguous copy stores only the example.
    example = example.detach().clone()
    with evaluating(model):
        batch = torch.export.Dim("batch")
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    with atomic_write(path) as tmp:  # named .<stem>.<random>.part.pt2: torch.export.save wants the .pt2
        torch.export.save(program, tmp)
    return path


def load_exported(path: str | Path) -> nn.Module:
    """Load a program saved by ``export_model`` as a callable module (a fresh object, no shared weights)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no exported model at {path}; create it with export_model(model, example, path).")
    return torch.export.load(path).module()


def max_abs_difference(a: nn.Module, b: nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> float:
    """The largest absolute difference between the outputs of ``a`` and ``b`` over every row of ``x``."""
    if x.shape[0] == 0:
        raise ValueError("x is empty: there is nothing to compare.")
    worst = 0.0
    with torch.inference_mode():
        for begin in range(0, x.shape[0], batch_size):
            xb = x[begin : begin + batch_size]
            out_a, out_b = a(xb), b(xb)
            if out_a.shape != out_b.shape:
                raise ValueError(f"the models' outputs differ in shape: {tuple(out_a.shape)} vs {tuple(out_b.shape)}.")
            worst = max(worst, (out_a.float() - out_b.float()).abs().max().item())
    return worst


def quantize_int8(model: nn.Module, mode: str = "dynamic") -> tuple[nn.Module, list[str]]:
    """An int8 copy of ``model`` (its ``nn.Linear`` layers) made with ``torchao.quantization.quantize_``.

    ``mode="dynamic"``: int8 weights, and activations quantized to int8 on the fly for each batch;
    ``mode="weight_only"``: int8 weights, float32 activations. ``model`` itself is not changed.

    Returns ``(quantized_model, messages)``: the warnings and torch log lines raised by importing
    torchao and quantizing, collected rather than printed (see ``captured_messages``).
    """
    if mode not in INT8_MODES:
        raise ValueError(f"mode must be one of {', '.join(repr(m) for m in INT8_MODES)}, got {mode!r}.")
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer to quantize.")
    with captured_messages() as messages:
        try:
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_
        except ImportError as exc:
            raise ImportError("int8 quantization needs torchao: pip install -r requirements.txt") from exc
        config = Int8DynamicActivationInt8WeightConfig() if mode == "dynamic" else Int8WeightOnlyConfig()
        quantized = copy.deepcopy(model).eval()
        quantize_(quantized, config)
    return quantized, messages


@dataclass(frozen=True)
class Latency:
    """One latency measurement: seconds per call (median and interquartile range) for a batch size."""

    batch_size: int
    median_s: float
    iqr_s: float
    runs: int

    @property
    def throughput(self) -> float:
        """Images per second at the median latency."""
        return self.batch_size / self.median_s


def measure_latency(
    model: nn.Module, example: torch.Tensor, *, min_run_time: float = 0.2, num_threads: int = 1
) -> Latency:
    """Time ``model(example)`` with ``torch.utils.benchmark`` (under ``inference_mode``), on ``num_threads`` threads.

    ``blocked_autorange`` repeats the call in blocks until ``min_run_time`` seconds have passed and
    reports per-call times; the median resists the odd slow block, and the interquartile range says
    how noisy the machine was. One thread by default: steadier numbers, and a fair comparison.
    """
    if example.dim() < 1 or example.shape[0] < 1:
        raise ValueError("example must be a batch with at least one row.")
    with captured_messages():  # importing the benchmark module may log about CUDA on a CPU-only machine
        from torch.utils import benchmark
    timer = benchmark.Timer(
        stmt="with torch.inference_mode(): model(x)",
        globals={"model": model, "x": example, "torch": torch},
        num_threads=num_threads,
    )
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return Latency(int(example.shape[0]), measurement.median, measurement.iqr, len(measurement.times))


def pareto_front(costs, accuracies) -> list[int]:
    """Indices of the points on the Pareto front: no other point is at least as cheap and at least as
    accurate while strictly better in one of the two. Sorted from cheapest to most expensive.
    """
    costs, accuracies = [float(c) for c in costs], [float(a) for a in accuracies]
    if len(costs) != len(accuracies):
        raise ValueError(f"got {len(costs)} costs but {len(accuracies)} accuracies; give one of each per variant.")
    front = []
    for i, (cost, acc) in enumerate(zip(costs, accuracies)):
        others = (pair for j, pair in enumerate(zip(costs, accuracies)) if j != i)
        dominated = any(c <= cost and a >= acc and (c < cost or a > acc) for c, a in others)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (costs[i], -accuracies[i]))


# ---- comparing models' speed (notebooks 01 and 04) -------------------------------------------------------------


def best_time_per_call(models: dict[str, nn.Module], x: torch.Tensor, number: int, rounds: int = 5,
                       num_threads: int = 1) -> dict[str, float]:
    """Seconds per forward pass of each model on ``x``: the best of ``rounds`` interleaved rounds of ``number`` calls.

    The models take turns, round after round, so a busy spell of the machine slows them alike, and the
    best round is the one least disturbed. PyTorch runs on ``num_threads`` threads (one by default, as
    on a small server: steadier, and the same hardware for every model); the previous thread count is
    restored afterwards. Each model is called once first, outside the timing: the first call allocates.
    """
    if not models:
        raise ValueError("give at least one model to time, as {name: model}.")
    for name, value in (("number", number), ("rounds", rounds), ("num_threads", num_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    best = {name: float("inf") for name in models}
    threads = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        with torch.inference_mode():  # no autograd bookkeeping, as in deployment
            for model in models.values():
                model(x)
            for _ in range(rounds):
                for name, model in models.items():
                    start = time.perf_counter()
                    for _ in range(number):
                        model(x)
                    best[name] = min(best[name], (time.perf_counter() - start) / number)
    finally:
        torch.set_num_threads(threads)
    return best
