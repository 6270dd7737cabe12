"""Run every notebook of the series in a fresh kernel, as a student or CI would, and time it.

Each notebook is executed top to bottom with nbclient in its own fresh kernel, in order, and the
script prints a Markdown table: wall time per notebook (kernel start-up included), the time spent in
its cells, the peak memory of the kernel's process tree, and the totals against the targets
(on a 2-core CPU: notebooks 01-04 together under 2 minutes, the whole series under 10, the biggest
notebook under 2 GB).

Nothing in the repository changes: the notebooks are copied into a temporary folder and executed
there (their outputs are thrown away), and ``KDUTILS_DATA_DIR`` points the kernels at a temporary
data folder that links to the datasets in ``data/``. By default it starts with no checkpoints, as
a fresh clone and CI do (notebook 02 trains and saves the teacher, later notebooks load it);
``--reuse-checkpoints`` copies the ones in ``data/checkpoints`` first. Checkpoints the notebooks
write land in the temporary folder and are deleted with it.

Peak memory is the largest of: the summed resident memory of the kernel and its children, sampled
every 0.5 s, and each process's own high-water mark (``VmHWM`` in ``/proc/<pid>/status``), which the
kernel keeps exact between samples. Sampling is sparse so that the measuring process takes as little
CPU as it can from the notebook it measures.

    python benchmarks/series.py                        # every notebooks/NN_*.ipynb
    python benchmarks/series.py notebooks/04_*.ipynb   # some of them
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
from _common import REPO, load_averages, machine_info, table
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

MB = 1024 * 1024
TARGETS = {"01-04": 120.0, "series": 600.0, "memory_mb": 2048.0}


class TreeMemory:
    """Peak memory of this process's descendants (the kernel and anything it starts), sampled in a thread."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.peak_rss = 0
        self.peak_hwm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _hwm(pid: int) -> int:
        """The process's own peak memory where the system keeps one (Linux's VmHWM, Windows' peak working set)."""
        if sys.platform.startswith("linux"):
            try:
                for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
            except (OSError, ValueError):
                pass
            return 0
        try:  # macOS keeps no peak: there the sampled total alone counts
            return getattr(psutil.Process(pid).memory_info(), "peak_wset", 0)
        except psutil.Error:
            return 0

    def _sample(self) -> None:
        total = 0
        for child in psutil.Process().children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
            self.peak_hwm = max(self.peak_hwm, self._hwm(child.pid))
        self.peak_rss = max(self.peak_rss, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return max(self.peak_rss, self.peak_hwm) / MB


def prepare_workspace(workspace: Path, notebooks: list[Path], reuse_checkpoints: bool) -> Path:
    """Copy the notebooks and build a data folder that links to the real datasets; return the data folder."""
    (workspace / "notebooks").mkdir()
    for path in notebooks:
        shutil.copy2(path, workspace / "notebooks" / path.name)
    data = workspace / "data"
    data.mkdir()
    for entry in (REPO / "data").iterdir():
        if entry.is_dir() and (entry / "raw").is_dir():  # a dataset in torchvision's layout
            try:
                (data / entry.name).symlink_to(entry.resolve(), target_is_directory=True)
            except OSError:  # Windows allows links only to administrators and developer mode: copy instead
                shutil.copytree(entry, data / entry.name)
    (data / "checkpoints").mkdir()
    if reuse_checkpoints and (REPO / "data" / "checkpoints").is_dir():
        for checkpoint in (REPO / "data" / "checkpoints").glob("*.pt"):
            shutil.copy2(checkpoint, data / "checkpoints" / checkpoint.name)
    return data


def run_notebook(path: Path, timeout: int) -> dict:
    """Execute the notebook at ``path`` in a fresh kernel (cwd: its folder); return times, memory and status."""
    nb = nbformat.read(path, as_version=4)
    first_cell: list[float] = []
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
        on_cell_execute=lambda **_: first_cell.append(time.perf_counter()) if not first_cell else None,
    )
    status = "ok"
    start = time.perf_counter()
    with TreeMemory() as memory:
        try:
            client.execute()
        except CellTimeoutError:
            status = f"cell timed out (> {timeout} s)"
        except (CellExecutionError, DeadKernelError) as exc:
            status = f"error: {str(exc).strip().splitlines()[-1][:80]}"
    end = time.perf_counter()
    errors = [
        output.get("ename", "stream") for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs
        if output.output_type == "error" or (output.output_type == "stream" and output.get("name") == "stderr")
    ]
    if status == "ok" and errors:
        status = f"ran, with {len(errors)} stderr/error output(s)"
    return {
        "wall": end - start,
        "cells": end - first_cell[0] if first_cell else float("nan"),
        "memory_mb": memory.peak_mb,
        "status": status,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: notebooks/NN_*.ipynb)")
    parser.add_argument("--reuse-checkpoints", action="store_true",
                        help="start from copies of data/checkpoints instead of none (as a fresh clone has)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds one cell may run (default 900)")
    parser.add_argument("--threads", type=int, default=0,
                        help="set OMP_NUM_THREADS for the kernels (default: leave torch's own choice)")
    args = parser.parse_args()
    notebooks = sorted(p.resolve() for p in args.notebooks) or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        sys.exit("no notebooks found in notebooks/")

    print("## The series: every notebook in a fresh kernel (nbclient)\n")
    print(machine_info())
    load_before = load_averages()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="kd-series-") as tmp:
        workspace = Path(tmp)
        data = prepare_workspace(workspace, notebooks, args.reuse_checkpoints)
        os.environ["KDUTILS_DATA_DIR"] = str(data)  # inherited by every kernel this process starts
        if args.threads:
            os.environ["OMP_NUM_THREADS"] = str(args.threads)
        for path in notebooks:
            print(f"  running {path.name} ...", file=sys.stderr, flush=True)
            results[path.stem] = run_notebook(workspace / "notebooks" / path.name, args.timeout)
            r = results[path.stem]
            print(f"    {r['wall']:.1f} s, {r['memory_mb']:.0f} MB, {r['status']}", file=sys.stderr, flush=True)

    checkpoints = "copies of data/checkpoints" if args.reuse_checkpoints else "none (as on a fresh clone)"
    print(f"- checkpoints at start: {checkpoints}; threads: "
          f"{'OMP_NUM_THREADS=' + str(args.threads) if args.threads else 'torch default (one per core)'}")
    load_after = load_averages()
    if load_before and load_after:  # Windows keeps no load average
        print(f"- load average (1 min) before: {load_before[0]:.2f}, after: {load_after[0]:.2f}\n")
    rows = [
        [f"`{name}`", f"{r['wall']:.1f}", f"{r['cells']:.1f}", f"{r['memory_mb']:.0f}", r["status"]]
        for name, r in results.items()
    ]
    first_four = [r["wall"] for name, r in results.items() if name[:2] in {"01", "02", "03", "04"}]
    total = sum(r["wall"] for r in results.values())
    biggest = max(r["memory_mb"] for r in results.values())
    rows.append([f"**01-04 ({len(first_four)} notebooks)**", f"**{sum(first_four):.1f}**", "", "",
                 f"target < {TARGETS['01-04']:.0f} s"])
    rows.append([f"**all {len(results)}**", f"**{total:.1f}**", "", f"**{biggest:.0f}** (max)",
                 f"targets < {TARGETS['series']:.0f} s, < {TARGETS['memory_mb']:.0f} MB"])
    print(table(["notebook", "wall s (with kernel start)", "cells s", "peak MB", "status"], rows))
    verdicts = [
        ("01-04", sum(first_four) < TARGETS["01-04"]),
        ("series", total < TARGETS["series"]),
        ("memory", biggest < TARGETS["memory_mb"]),
    ]
    print("\nTargets: " + ", ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in verdicts)
          + (" (all notebooks ran cleanly)" if all(r["status"] == "ok" for r in results.values())
             else " (some notebooks did not run cleanly: see status)"))


if __name__ == "__main__":
    main()
