"""Linux, macOS and Windows alike: text files are opened with an explicit encoding, and the benchmarks'
machine description falls back where Linux's /proc and load averages do not exist.

Python's default text encoding is the locale's (cp1252 on most Windows machines), so a notebook or word
list read without ``encoding=`` breaks there on the first non-ASCII character.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
import _common  # noqa: E402  (the benchmarks' helpers are scripts' modules, not a package)

from kdutils.course import claims  # noqa: E402

NOT_YET_SCANNED: set[str] = set()


def opens_through_a_module(func: ast.expr) -> bool:
    """``gzip.open``, ``os.open`` and the like: binary by default, or not a text file at all."""
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in (
        "gzip", "os", "tarfile", "zipfile")


def text_opens_without_encoding(path: Path) -> list[str]:
    """Each ``open``/``Path.open``/``read_text``/``write_text`` call in text mode without ``encoding=``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name in ("read_text", "write_text"):
            found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
        elif name == "open" and not opens_through_a_module(node.func):
            mode_positional = 1 if isinstance(node.func, ast.Name) else 0  # open(path, mode), Path(...).open(mode)
            modes = [k.value for k in node.keywords if k.arg == "mode"] + node.args[mode_positional:mode_positional + 1]
            mode = modes[0].value if modes and isinstance(modes[0], ast.Constant) else "r"
            if "b" not in str(mode):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} open(mode={mode!r})")
    return found


def python_files() -> list[Path]:
    files = [*REPO.glob("kdutils/**/*.py"), *REPO.glob("benchmarks/*.py"), *REPO.glob("tests/**/*.py"),
             REPO / "conftest.py", *REPO.glob("docs/**/*.py")]
    return [f for f in files if f.relative_to(REPO).as_posix() not in NOT_YET_SCANNED]


def test_every_text_file_is_opened_with_an_encoding():
    found = [problem for path in python_files() for problem in text_opens_without_encoding(path)]
    assert not found, "give these an encoding (encoding=\"utf-8\"): " + ", ".join(found)


def test_the_scan_finds_what_it_looks_for(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    code = tmp_path / "sample.py"
    code.write_text("open('a')\nopen('a', 'rb')\nopen('a', encoding='utf-8')\nPath('a').read_text()\n"
                    "Path('a').open('w')\nPath('a').open('rb')\ngzip.open('a')\n", encoding="utf-8")
    assert text_opens_without_encoding(code) == ["sample.py:1 open(mode='r')", "sample.py:4 read_text",
                                                 "sample.py:5 open(mode='w')"]


def test_the_cpu_is_named_and_modelled_on_macos_without_proc(monkeypatch):
    def no_proc(*args, **kwargs):
        raise AssertionError("/proc read on a system that has none")

    answers = {"machdep.cpu.brand_string": "Intel(R) Core(TM) i5", "machdep.cpu.family": "6",
               "machdep.cpu.model": "158"}

    def sysctl(command, **kwargs):
        return subprocess.CompletedProcess(command, 0, stdout=answers.get(command[-1], "") + "\n", stderr="")

    monkeypatch.setattr(claims.sys, "platform", "darwin")
    monkeypatch.setattr(claims, "_linux_cpu_info", no_proc)
    monkeypatch.setattr(claims.subprocess, "run", sysctl)
    fields = claims.cpu_info()
    assert claims.cpu_name(fields) == "Intel(R) Core(TM) i5" and claims._cpu_model(fields) == "family 6, model 158"
    answers = {"machdep.cpu.brand_string": "Apple M2"}  # Apple silicon: a name, no x86 family
    fields = claims.cpu_info()
    assert claims.cpu_name(fields) == "Apple M2" and claims._cpu_model(fields) == "unknown"


def test_the_cpu_is_modelled_on_windows_from_what_platform_says(monkeypatch):
    monkeypatch.setattr(claims.sys, "platform", "win32")
    monkeypatch.setattr(claims, "_linux_cpu_info", lambda: pytest.fail("/proc read on Windows"))
    monkeypatch.setattr(claims.platform, "processor", lambda: "Intel64 Family 6 Model 85 Stepping 7, GenuineIntel")
    fields = claims.cpu_info()
    assert claims._cpu_model(fields) == "family 6, model 85"
    assert claims.cpu_name(fields) == "Intel64 Family 6 Model 85 Stepping 7, GenuineIntel"
    monkeypatch.setattr(claims.platform, "processor", lambda: "")
    monkeypatch.setattr(claims.platform, "machine", lambda: "AMD64")
    assert claims.cpu_name(claims.cpu_info()) == "AMD64" and claims._cpu_model(claims.cpu_info()) == "unknown"


def test_a_failing_sysctl_leaves_the_fields_unknown_not_an_error(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no sysctl")

    monkeypatch.setattr(claims.sys, "platform", "darwin")
    monkeypatch.setattr(claims.subprocess, "run", broken)
    assert claims.cpu_info() == {}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc/cpuinfo")
def test_the_cpu_is_named_from_proc_on_linux():
    assert claims.cpu_name() != "unknown" and claims._cpu_model(claims.cpu_info()) != "unknown"


def test_load_average_without_getloadavg_as_on_windows(monkeypatch):
    monkeypatch.delattr(os, "getloadavg", raising=False)
    assert _common.load_averages() is None and _common.load_average() == "n/a"
