"""The notebook tests, on another machine, still catch a real regression (issue: Every laptop in the room).

Notebook 02's first section trains the teacher for one epoch with the loop written out and prints its validation
accuracy. On a simulated other laptop (AVX2 kernels, one thread) that accuracy moves a little and the
cell must pass within its stated tolerance; with a planted bug (a learning rate 30 times too small, as a
typo would give) it drops by points and the same comparison must fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "02_train_the_teacher.ipynb"
ACCURACY_LINE = "validation accuracy after one epoch"


def first_section(planted_bug: bool) -> dict:
    """Notebook 02 up to the cell that prints the one-epoch accuracy, optionally with the bug planted."""
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = []
    for cell in notebook["cells"]:
        cells.append(cell)
        source = "".join(cell["source"])
        if planted_bug and "torch.optim.Adam(model.parameters(), lr=lr" in source:
            cell["source"] = source.replace("torch.optim.Adam(model.parameters(), lr=lr",
                                            "torch.optim.Adam(model.parameters(), lr=lr / 30")
        if cell["cell_type"] == "code" and ACCURACY_LINE in "".join(
                output.get("text", "") if isinstance(output.get("text", ""), str) else "".join(output["text"])
                for output in cell.get("outputs", [])):
            assert "nbval-ignore-output" not in cell["metadata"].get("tags", []), "the accuracy cell must be compared"
            break
    else:
        pytest.fail(f"no cell of {NOTEBOOK.name} prints '{ACCURACY_LINE}'")
    notebook["cells"] = cells
    return notebook


def run_on_another_machine(tmp_path: Path, notebook: dict) -> subprocess.CompletedProcess:
    path = tmp_path / NOTEBOOK.name
    path.write_text(json.dumps(notebook), encoding="utf-8")
    (tmp_path / "conftest.py").write_text((REPO / "conftest.py").read_text(encoding="utf-8"), encoding="utf-8")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "1"}
    env.pop("KDUTILS_REFERENCE", None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(REPO), "-c",
               str(REPO / "pyproject.toml"), "-rf", str(path)]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_a_planted_bug_fails_the_tolerant_comparison_that_the_real_code_passes(tmp_path, real_fashion_mnist):
    honest = run_on_another_machine(tmp_path, first_section(planted_bug=False))
    assert "not the reference machine" in honest.stdout
    assert honest.returncode == 0, honest.stdout[-4000:]
    planted = run_on_another_machine(tmp_path, first_section(planted_bug=True))
    assert planted.returncode == 1, planted.stdout[-4000:]
    assert "not within tolerance" in planted.stdout and "1 failed" in planted.stdout, planted.stdout[-4000:]
