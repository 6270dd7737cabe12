"""Shared helpers of the benchmark scripts: machine description, interleaved timing, Markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from kdutils.course.claims import cpu_name

REPO = Path(__file__).resolve().parent.parent


def load_averages() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages, or None where the system keeps none (Windows)."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def load_average() -> str:
    averages = load_averages()
    return " ".join(f"{v:.2f}" for v in averages) if averages else "n/a"


def machine_info() -> str:
    """A Markdown list describing the machine and library versions, so a quoted table says where it ran."""
    from importlib.metadata import PackageNotFoundError, version

    try:  # its version, without importing it (slow, and impossible beside a torch it was not built for)
        torchvision = version("torchvision")
    except PackageNotFoundError:
        torchvision = "not installed"
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return "\n".join(
        [
            f"- CPU: {cpu_name()}, {cores} logical cores ({usable} usable by this process)",
            f"- torch {torch.__version__} ({torch.get_num_threads()} intra-op threads, "
            f"{torch.get_num_interop_threads()} inter-op), torchvision {torchvision}, "
            f"Python {platform.python_version()}",
            f"- load average at start (1, 5, 15 min): {load_average()}",
        ]
    )


def add_thread_argument(parser) -> None:
    parser.add_argument(
        "--threads", type=int, default=0,
        help="torch intra-op threads (default: torch's own choice, one per core); 1 is steadier on a busy machine",
    )


def apply_threads(threads: int) -> None:
    if threads:
        torch.set_num_threads(threads)


class Clock:
    """Wall-clock and CPU time (this process, all its threads) since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def interleaved(
    variants: dict[str, Callable[[], tuple[float, float] | None]], repeats: int, warmup: int = 1
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time each variant ``repeats`` times, interleaved A, B, C, A, B, C, ..., after ``warmup`` rounds.

    Returns ``(wall, cpu)``: seconds per repetition, by variant. A variant returns the
    ``(wall, cpu)`` seconds it measured itself (``Clock().read()``), or ``None`` to be timed whole.
    Interleaving spreads the noise of a shared machine evenly over the variants, so their ratios
    hold even when the absolute times do not. CPU time is this process's: with one thread it is
    what the wall time would be on an idle machine; with more, it also counts threads spinning.
    """
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(warmup + repeats):
        for name, fn in variants.items():
            clock = Clock()
            measured = fn()
            w, c = clock.read() if measured is None else measured
            if round_ >= warmup:
                wall[name].append(w)
                cpu[name].append(c)
        print(f"  round {round_ + 1}/{warmup + repeats} done" + (" (warm-up)" if round_ < warmup else ""),
              file=sys.stderr, flush=True)
    return wall, cpu


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over the rounds of numerator/denominator (each round's pair ran back to back)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """min-max of the repetitions, for the table."""
    return f"{min(values):.2f}-{max(values):.2f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
