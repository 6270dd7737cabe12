"""Version ranges are stated in three places (requirements.txt, pyproject.toml, binder/requirements.txt): they agree."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*([<>=!~].*)?$")


def ranges(lines) -> dict[str, str]:
    """name -> its version range, from requirement lines (comments, options and local paths left out)."""
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-") and (match := REQUIREMENT.match(line)):
            found[match.group(1).lower()] = (match.group(3) or "").replace(" ", "")
    return found


def requirements(path: Path) -> dict[str, str]:
    return ranges(path.read_text(encoding="utf-8").splitlines())


def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def test_ranges_read_from_requirement_lines():
    assert ranges(["torch>=2.13.0,<2.15  # CPU", "-e .[site]", "# note", "kdutils[notebooks] >= 1.0"]) == {
        "torch": ">=2.13.0,<2.15", "kdutils": ">=1.0"}


def test_the_packages_dependencies_have_the_ranges_requirements_txt_gives():
    root = requirements(REPO / "requirements.txt")
    declared = ranges(pyproject()["dependencies"])
    assert {"torch", "torchvision", "numpy"} <= set(declared)
    assert {name: root.get(name) for name in declared} == declared


def test_the_extras_agree_with_requirements_txt_where_both_name_a_package():
    root = requirements(REPO / "requirements.txt")
    for extra, listed in pyproject()["optional-dependencies"].items():
        for name, spec in ranges(listed).items():
            assert root.get(name, spec) == spec, f"{name}: kdutils[{extra}] says {spec}, requirements.txt {root[name]}"


def test_binder_installs_the_same_ranges_and_nothing_for_the_maintainers_only():
    root, binder = requirements(REPO / "requirements.txt"), requirements(REPO / "binder" / "requirements.txt")
    assert {"torch", "torchvision", "torchao", "ipywidgets"} <= set(binder)
    assert {name: root.get(name) for name in binder} == binder
    assert not {"pytest", "playwright", "ruff", "sphinx"} & set(binder)
    assert (REPO / "binder" / "runtime.txt").read_text(encoding="utf-8").strip() == "python-3.11"


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell script")
def test_binders_post_build_is_an_executable_script_bash_can_parse():
    script = REPO / "binder" / "postBuild"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert "python -m kdutils.course data fetch --dataset fashion-mnist" in script.read_text(encoding="utf-8")
