"""Claims about a run's results, checked strictly on the reference machine and gently everywhere else.

The committed notebooks were run on one machine, the *reference machine* below. Trained weights depend
on the CPU's instruction set, the number of threads and the torch version in their last bits, and a few
epochs of training grow those bits into visibly different numbers: another laptop's teacher may reach
89.85% where the reference run's reached 90.05%. So a sentence such as "the teacher reaches at least
89.5%" is checked with :func:`claim` instead of ``assert``:

- on the reference machine a false claim raises ``AssertionError``: the text and the run disagree;
- on any other machine it shows a short notice under the cell and the notebook goes on.

``KDUTILS_REFERENCE=1`` forces the strict behaviour anywhere, ``KDUTILS_REFERENCE=0`` the gentle one.
``python -m kdutils.course machine`` prints this machine beside the reference machine.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from functools import cache

__all__ = ["NOTICE_MARK", "REFERENCE_ENV", "REFERENCE_MACHINE", "claim", "cpu_name", "is_reference_machine",
           "this_machine"]

#: The machine the committed notebook outputs come from (one of this project's 2-core VMs; CI may get another).
REFERENCE_MACHINE = {
    "system": "Linux",
    "architecture": "x86_64",
    "cpu": "AMD EPYC",
    "cpu_model": "family 25, model 1",
    "cpu_capability": "AVX2",
    "threads": 2,
    "torch": "2.14.1",
    "device": "cpu",
}

#: "1" makes every machine behave as the reference (claims raise), "0" none.
REFERENCE_ENV = "KDUTILS_REFERENCE"

#: Stored in the display metadata of a notice, so that the notebook tests can tell notices apart.
NOTICE_MARK = "kdutils-claim-notice"


def _linux_cpu_info() -> dict[str, str]:
    """The first processor's fields in ``/proc/cpuinfo`` ("model name", "cpu family", "model", ...)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def _macos_cpu_info() -> dict[str, str]:
    """The same fields from ``sysctl`` (an Intel Mac has a family and model; Apple silicon only a name)."""
    fields: dict[str, str] = {}
    for key, name in (("model name", "machdep.cpu.brand_string"), ("cpu family", "machdep.cpu.family"),
                      ("model", "machdep.cpu.model")):
        try:
            found = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            continue
        if found.returncode == 0 and found.stdout.strip():
            fields[key] = found.stdout.strip()
    return fields


def _windows_cpu_info(processor: str) -> dict[str, str]:
    """The family and model in ``platform.processor()``: "Intel64 Family 6 Model 85 Stepping 7, GenuineIntel"."""
    found = re.search(r"Family (\d+) Model (\d+)", processor)
    return {"cpu family": found[1], "model": found[2]} if found else {}


def cpu_info() -> dict[str, str]:
    """What the system says of its first processor: "model name", and "cpu family" and "model" where known.

    Linux reads ``/proc/cpuinfo``, macOS asks ``sysctl``, Windows parses ``platform.processor()``; any other
    system, or a failed read, gives what is known (possibly nothing), never an error.
    """
    if sys.platform.startswith("linux"):
        return _linux_cpu_info()
    if sys.platform == "darwin":
        return _macos_cpu_info()
    if sys.platform == "win32":
        return _windows_cpu_info(platform.processor())
    return {}


def cpu_name(fields: dict[str, str] | None = None) -> str:
    """The CPU's model name: from ``cpu_info()`` (or the ``fields`` it gave), else what ``platform`` knows."""
    fields = cpu_info() if fields is None else fields
    return fields.get("model name") or platform.processor() or platform.machine() or "unknown"


def _cpu_model(fields: dict[str, str]) -> str:
    """x86 family and model: two CPUs sold under one name can run different kernels."""
    if "cpu family" in fields and "model" in fields:
        return f"family {fields['cpu family']}, model {fields['model']}"
    return "unknown"


def this_machine() -> dict:
    """What decides a run's last bits here: OS, CPU, its vector instructions, threads, torch, device."""
    import torch  # imported here: the claims themselves need no torch

    from ..repro import choose_device

    fields = cpu_info()
    return {
        "system": platform.system(),
        "architecture": platform.machine(),
        "cpu": cpu_name(fields),
        "cpu_model": _cpu_model(fields),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__.split("+")[0],
        "device": choose_device().type,
    }


@cache
def _matches_reference() -> bool:
    return this_machine() == REFERENCE_MACHINE


def is_reference_machine() -> bool:
    """True where the committed outputs can be reproduced bit for bit (or ``KDUTILS_REFERENCE=1``)."""
    forced = os.environ.get(REFERENCE_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if forced:
        raise ValueError(f"{REFERENCE_ENV} must be 0 or 1, got {forced!r}; unset it to detect the machine.")
    return _matches_reference()


def claim(holds: bool, statement: str, this_run: str = "", *, timing: bool = False) -> None:
    """Check a sentence of the text against this run's results.

    ``statement`` is the sentence as the text says it ("the teacher reaches at least 89.5%"),
    ``this_run`` what this run measured ("89.31%"). On the reference machine a false claim raises
    ``AssertionError``; elsewhere it shows a notice and the notebook goes on. It returns nothing, so a
    cell that ends with a claim shows no stray ``True``.

    ``timing=True`` marks a claim about speed: how long a call takes depends on what else the machine
    is doing, not only on which machine it is, so such a claim shows a notice on every machine, the
    reference one included, instead of failing a busy CI run.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError("claim needs the statement it checks, as the text says it, e.g. 'the teacher beats 89%'.")
    if bool(holds):
        return
    measured = f" (this run: {this_run})" if this_run else ""
    if is_reference_machine() and not timing:
        raise AssertionError(f"The text says {statement}, but this run disagrees{measured}.")
    _show_notice(statement, measured, timing)


def _show_notice(statement: str, measured: str, timing: bool) -> None:
    if timing:
        why = ("Timings depend on the CPU and on what else it is doing; run the cell again on an idle "
               "machine (see `docs/teaching.md`, *Other machines*).")
    else:
        why = ("The text comes from the reference machine; another CPU, thread count or PyTorch version "
               "trains slightly different weights (see `docs/teaching.md`, *Other machines*).")
    plain = f"Note: this run differs from the text, which says {statement}{measured}. {why}"
    markdown = f"> **Note: this run differs from the text**, which says {statement}{measured}. {why}"
    try:
        from IPython.display import display
    except ImportError:  # plain Python without IPython
        print(plain)
        return
    display({"text/markdown": markdown, "text/plain": plain}, raw=True, metadata={NOTICE_MARK: True})
