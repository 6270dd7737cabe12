"""The set-up cell for real: a fresh virtual environment without kdutils gets it from a local build.

This is what a Colab runtime goes through, with a wheel built here instead of the git URL (GitHub is out of
reach of the build machine) and the packages Colab already has (PyTorch, NumPy, Matplotlib, tqdm,
ipywidgets) installed first. It builds an environment with PyTorch in it, about two minutes, so it runs only
when asked for: ``pytest -m venv tests/test_setup_venv.py``. PyTorch 2.13.0's CPU wheel is taken from the
machine's pip configuration (on this project's machines it lies on disk; elsewhere pip downloads it).

``KDUTILS_FRESH_VENV=DIR`` uses an environment made beforehand instead, which must not have kdutils: CI
passes its oldest-versions environment before installing kdutils into it, and saves building a second one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import kdutils
from kdutils.course.setup_cell import INSTALL_FROM_ENV, setup_source

from .test_setup_cell import RECORD_PROCESSES

pytestmark = pytest.mark.venv

REPO = Path(__file__).resolve().parents[2]
URL = "https://github.com/example-org/kd-series"
# What a hosted runtime has before the set-up cell runs: PyTorch (the oldest pair the project declares, whose
# CPU wheel is small) and the common scientific packages, at the versions of the environment running the test.
PREINSTALLED = ["torch==2.13.0", "torchvision==0.28.0",
                *(f"{name}=={version(name)}" for name in ("numpy", "matplotlib", "tqdm", "ipywidgets"))]


@pytest.fixture(scope="module")
def requested(request):
    if "venv" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("builds a virtual environment with PyTorch (minutes): run with pytest -m venv")


def clean_env() -> dict[str, str]:
    """This process's environment, less what would let the new one see this checkout's kdutils."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def build_wheel(destination: Path) -> Path:
    """A wheel of kdutils built from a copy of the package's files (so no build/ lands in the checkout)."""
    source = destination / "source"
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "kdutils", source / "kdutils", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(destination), str(source)], check=True, timeout=300)
    (wheel,) = destination.glob(f"kdutils-{kdutils.__version__}-*.whl")
    return wheel


def python_of(venv: Path) -> str:
    return str(venv / ("Scripts" if os.name == "nt" else "bin") / ("python.exe" if os.name == "nt" else "python"))


def fresh_venv(tmp_path: Path) -> Path:
    """A virtual environment without kdutils: KDUTILS_FRESH_VENV's, or a new one with a runtime's packages."""
    if os.environ.get("KDUTILS_FRESH_VENV"):
        return Path(os.environ["KDUTILS_FRESH_VENV"]).resolve()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)  # no system site packages
    subprocess.run([python_of(venv), "-m", "pip", "install", "--quiet", *PREINSTALLED], check=True, env=clean_env(),
                   timeout=900)
    return venv


def test_the_set_up_cell_installs_a_local_build_into_a_fresh_environment(requested, tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    venv = fresh_venv(tmp_path)
    python, env = python_of(venv), clean_env()
    probe = subprocess.run([python, "-c", "import kdutils"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'kdutils'" in probe.stderr  # a clean runtime

    cell = setup_source(URL, kdutils.__version__)
    first = subprocess.run([python, "-c", cell], cwd=tmp_path, env={**env, INSTALL_FROM_ENV: wheel.as_uri()},
                           capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"Installing kdutils {kdutils.__version__} from {wheel.as_uri()}" in first.stdout

    imported = subprocess.run(
        [python, "-c", "import kdutils, kdutils.losses, torch, torchao; print(kdutils.__version__, kdutils.__file__); "
                       "print(float(kdutils.losses.distillation_loss(torch.zeros(2, 10), torch.tensor([0, 1]), "
                       "torch.zeros(2, 10), T=4.0, alpha=0.5)))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=300)
    installed_version, location = imported.stdout.splitlines()[0].split(" ", 1)
    assert installed_version == kdutils.__version__
    assert Path(location).is_relative_to(venv)  # the installed copy, not this checkout
    assert abs(float(imported.stdout.splitlines()[1]) - 0.5 * 2.302585) < 1e-4  # ln(10) from the hard term

    again = subprocess.run([python, "-c", RECORD_PROCESSES], input=cell, cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True, timeout=300)
    assert json.loads(again.stdout.strip().splitlines()[-1]) == {"calls": [], "outcome": "ran"}  # now a no-op
