"""Run one submission in a process of its own, with the grader's first and last cells around the student's.

``run_submission`` starts ``python -m kdutils.course.sandbox JOB.json`` as a child process with a
wall-clock limit and (on Linux and macOS) a memory limit (``resource.RLIMIT_AS``, inherited by the
kernel it starts). The child runs the notebook in a fresh kernel: the grader's first cell
(``guard.arm``), the student's cells (each at most ``cell_timeout`` seconds, errors allowed), then the
grader's last cell (``guard.judge``), whose source holds the snapshot's digest read from the first cell's
output and the name of the result file, both unknown to the student's cells. A child that runs out of
time is killed, with its kernel; a kernel that dies leaves no result file. Either way only this
submission's rows say so.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from nbformat.v4 import new_code_cell

from . import guard
from .notebooks import read

__all__ = ["DIED", "OUT_OF_TIME", "run_submission"]

SNAPSHOT_LINE = re.compile(r"^kdutils-grader-snapshot ([0-9a-f]{64})$", re.M)
#: What every row says when the child left no verdicts.
DIED = "the notebook's kernel died or exited before the grader could check (os._exit, a crash, or the memory limit)."
OUT_OF_TIME = "the notebook ran past the grader's time limit of {seconds:g} s for one submission, and was stopped."
#: Seconds the last cell may take for each exercise: the check's own limit (30 s) and its comparisons.
JUDGE_SECONDS = 90
#: Seconds the grader's first cell may take (it imports torch and numpy).
FIRST_CELL_SECONDS = 300


def _private(call: str) -> str:
    """guard.py's source wrapped in a function of a random name, so that its names are not the notebook's."""
    source = Path(guard.__file__).read_text(encoding="utf-8").replace("from __future__ import annotations\n", "")
    name = f"_kdutils_grader_{secrets.token_hex(8)}"
    return f"def {name}():\n{textwrap.indent(source, '    ')}\n    {call}\n\n\n{name}()\n"


def _run(job: dict) -> None:
    """The child: run the notebook with the grader's cells; ``guard.judge`` writes the verdicts to job['out']."""
    notebook = read(job["notebook"])
    for cell in notebook.cells:  # what the student's own run left behind is not evidence
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    holder = f"_kdutils_snapshot_{secrets.token_hex(8)}"
    first, last = new_code_cell(_private(f"arm({holder!r})")), new_code_cell("")
    notebook.cells = [first, *notebook.cells, last]

    def after_cell(cell, cell_index, execute_reply):
        if cell is first:  # the digest, printed before any student cell ran
            printed = "".join(output.get("text", "") for output in cell.outputs)
            found = SNAPSHOT_LINE.search(printed)
            call = (f"judge({holder!r}, {found[1] if found else 'missing'!r}, {job['root']!r}, {job['hashes']!r}, "
                    f"{job['exercises']!r}, globals(), {job['out']!r})")
            last.source = _private(call)

    def note_kernel(**_):
        process = getattr(getattr(client.km, "provisioner", None), "process", None)
        if process is not None:
            Path(job["kernel_pid"]).write_text(str(process.pid), encoding="utf-8")

    def timeout_of(cell):
        if cell is first:  # imports torch: on a busy machine that alone can take longer than a student's cell may
            return FIRST_CELL_SECONDS
        return JUDGE_SECONDS * max(1, len(job["exercises"])) if cell is last else job["cell_timeout"]

    from nbclient import NotebookClient

    client = NotebookClient(notebook, timeout_func=timeout_of, record_timing=False, allow_errors=True,
                            kernel_name="python3", interrupt_on_timeout=True, on_cell_executed=after_cell,
                            on_notebook_start=note_kernel, resources={"metadata": {"path": job["folder"]}})
    client.execute()


def _limit_memory(megabytes: int | None):
    """A function for the child to call before it starts: cap its address space (and its kernel's)."""
    def limit() -> None:
        os.setsid()
        if megabytes:
            try:
                import resource
                size = megabytes * 1024 * 1024
                resource.setrlimit(resource.RLIMIT_AS, (size, size))
            except (ImportError, ValueError, OSError):
                pass  # no resource module (Windows): the time limit still holds
    return limit


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        pass


def run_submission(notebook: Path, exercises: list[dict], root: Path, hashes: dict[str, str], *,
                   cell_timeout: float, total_timeout: float, memory_mb: int | None) -> tuple[list[dict] | None, str]:
    """Run one submitted notebook and judge its exercises: (rows, "") or (None, why there are none)."""
    with tempfile.TemporaryDirectory(prefix="kdutils-grade-") as scratch:
        job = {"notebook": str(notebook), "folder": str(notebook.parent), "exercises": exercises,
               "root": str(root), "hashes": hashes, "cell_timeout": cell_timeout,
               "out": str(Path(scratch) / f"verdicts-{secrets.token_hex(16)}.json"),
               "kernel_pid": str(Path(scratch) / "kernel.pid")}
        job_file = Path(scratch) / "job.json"
        job_file.write_text(json.dumps(job), encoding="utf-8")
        use_setsid = os.name == "posix"
        child = subprocess.Popen([sys.executable, "-m", "kdutils.course.sandbox", str(job_file)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 preexec_fn=_limit_memory(memory_mb) if use_setsid else None)
        try:
            child.wait(timeout=total_timeout)
            why = ""
        except subprocess.TimeoutExpired:
            why = OUT_OF_TIME.format(seconds=total_timeout)
        finally:  # the child and the kernel it started (a session of its own) do not outlive the submission
            if use_setsid:
                _kill(child.pid)
                pid_file = Path(job["kernel_pid"])
                if pid_file.is_file():
                    _kill(int(pid_file.read_text(encoding="utf-8")))
            else:
                child.kill()
            child.wait()
        result = Path(job["out"])
        if why or not result.is_file():
            return None, why or DIED
        return json.loads(result.read_text(encoding="utf-8")), ""


if __name__ == "__main__":
    _run(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
