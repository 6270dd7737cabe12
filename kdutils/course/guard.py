"""The grader's own code inside a submission's kernel: its first cell (``arm``) and its last cell (``judge``).

``kdutils.course.grade`` does not import this module in the kernel: it pastes this file's *source* into
two cells it adds to the submission, one before the student's cells and one after, so that nothing the
student's cells did can have replaced it.

* ``arm()`` (first cell, before any student code): imports torch and numpy, and takes a *snapshot*: the
  object behind every public name of the modules the checks rely on (torch, its ``nn``,
  ``nn.functional``, ``optim`` and ``autograd``, the ``Tensor``, ``Module`` and optimizer classes,
  numpy, math, builtins, threading, time, ...) with each function's code and defaults, and the
  interpreter's hooks (``sys.meta_path``, ``sys.path_hooks``, trace and profile functions). It prints
  the snapshot's digest, which the grader reads from the cell's output before any student cell runs. It
  also adds an audit hook that refuses any further audit hook (one could hide what follows).
* ``judge(...)`` (last cell): checks that the snapshot still has its digest and that every name still
  holds the object of the snapshot, then loads *fresh* copies of kdutils (the checks and the reference
  answers) from the installed files, each file's SHA-256 compared with the one the grader measured
  before the class ran (a student's cell that rewrote a check on disk is caught here). It calls each
  exercise's check on the student's function, with the fresh harness's ``WATCH`` set to compare the
  snapshot again after every call of the student's code and before every comparison, and writes the
  verdicts as JSON to a file whose name only the grader's last cell knows.

A verdict is TAMPERED when a watched name was replaced (before the check, or while the student's
function ran). The limits are in ``docs/teaching.md`` ("What the grader trusts").
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import json
import sys
from pathlib import Path

#: The modules and classes whose names the checks (and the reference answers) use.
WATCHED = ("builtins", "math", "functools", "itertools", "inspect", "numbers", "threading", "time", "warnings",
           "json", "torch", "torch.nn", "torch.nn.functional", "torch.optim", "torch.autograd", "numpy")
#: Names the kernel itself rebinds as it runs cells (ipykernel forwards input() to the notebook's front end).
VOLATILE = ("builtins.input",)
WATCHED_CLASSES = ("torch.Tensor", "torch.nn.Module", "torch.nn.Parameter", "torch.optim.Optimizer",
                   "torch.optim.SGD", "torch.Generator", "torch.autograd.Function")


def _class(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(sys.modules[module], name)


def _inherited(cls) -> dict:
    """Every attribute a class has, its own and its bases' (Tensor's methods live on a base class)."""
    merged = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass))
    return merged


def _hooks() -> dict:
    """The interpreter's hooks, one entry each (a list's items one by one: the list itself may be rebuilt)."""
    threading = sys.modules["threading"]
    found = {"sys.gettrace": sys.gettrace(), "sys.getprofile": sys.getprofile(),
             "threading._trace_hook": getattr(threading, "_trace_hook", None),
             "threading._profile_hook": getattr(threading, "_profile_hook", None)}
    for name, hooks in (("sys.meta_path", sys.meta_path), ("sys.path_hooks", sys.path_hooks)):
        found.update({f"{name}[{index}]": hook for index, hook in enumerate(hooks)})
    return found


def _entries() -> dict:
    """Every watched name and the object behind it now, with the code and defaults of a function."""
    found = {}
    namespaces = [(name, vars(sys.modules[name])) for name in WATCHED if name in sys.modules]
    namespaces += [(name, _inherited(_class(name))) for name in WATCHED_CLASSES]
    for where, namespace in namespaces:
        found[f"sys.modules[{where}]"] = sys.modules.get(where)
        for key, value in list(namespace.items()):
            if (callable(value) or isinstance(value, (staticmethod, classmethod, property))) and \
                    f"{where}.{key}" not in VOLATILE:
                found[f"{where}.{key}"] = value
                found[f"{where}.{key}.__code__"] = getattr(value, "__code__", None)
                found[f"{where}.{key}.__defaults__"] = getattr(value, "__defaults__", None)
    found.update(_hooks())
    return found


def digest(snapshot: dict) -> str:
    """A hash of which object each name held (the snapshot keeps them alive, so no id is reused)."""
    lines = "\n".join(f"{key}={id(value)}" for key, value in sorted(snapshot.items(), key=lambda item: item[0]))
    return hashlib.sha256(lines.encode()).hexdigest()


def changed(snapshot: dict) -> list[str]:
    """The watched names that no longer hold their snapshot's object."""
    now = _entries()
    names = [key for key, value in snapshot.items() if key not in now or now[key] is not value]
    return [name for name in names if name.rpartition(".")[0] not in names]  # f, not also f.__code__


def _refuse_audit_hooks(event: str, args) -> None:
    if event == "sys.addaudithook":
        raise RuntimeError("the grader does not allow audit hooks in a graded notebook")


def arm(holder: str) -> None:
    """The first cell: take the snapshot, keep it on ``sys`` under ``holder``, print its digest."""
    import numpy  # noqa: F401  (loaded before any student code, so that it is in the snapshot)
    import torch  # noqa: F401
    import torch.nn.functional  # noqa: F401
    import torch.optim  # noqa: F401

    snapshot = _entries()
    setattr(sys, holder, snapshot)
    sys.addaudithook(_refuse_audit_hooks)
    print(f"kdutils-grader-snapshot {digest(snapshot)}")


class _VerifiedSource(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``kdutils`` and its modules from their files, each checked against the grader's SHA-256."""

    def __init__(self, root: Path, hashes: dict[str, str]) -> None:
        self.root, self.hashes = root, hashes

    def find_spec(self, name, path=None, target=None):
        if name != "kdutils" and not name.startswith("kdutils."):
            return None
        relative = Path(*name.split("."))
        package = (self.root / relative / "__init__.py")
        file = package if package.is_file() else self.root / relative.with_suffix(".py")
        return importlib.util.spec_from_file_location(name, file, loader=self,
                                                      submodule_search_locations=[str(file.parent)]
                                                      if file == package else None)

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        file = Path(module.__spec__.origin)
        source = file.read_bytes()
        key = file.relative_to(self.root).as_posix()
        if self.hashes.get(key) != hashlib.sha256(source).hexdigest():
            raise Tampered(f"the file {key} differs from the one the grader measured before the class ran")
        exec(compile(source, str(file), "exec"), vars(module))


class Tampered(Exception):
    """Something the checks rely on was changed."""


def fresh_kdutils(root: Path, hashes: dict[str, str]) -> dict:
    """Fresh module objects for kdutils.exercises and everything it imports; the kernel's own are put back."""
    kernel_copies = {name: module for name, module in sys.modules.items()
                     if name == "kdutils" or name.startswith("kdutils.")}
    for name in kernel_copies:
        del sys.modules[name]
    finder = _VerifiedSource(root, hashes)
    sys.meta_path.insert(0, finder)
    try:
        importlib.import_module("kdutils.exercises")
        fresh = {name: module for name, module in sys.modules.items()
                 if name == "kdutils" or name.startswith("kdutils.")}
    finally:
        sys.meta_path.remove(finder)
        for name in [name for name in sys.modules if name == "kdutils" or name.startswith("kdutils.")]:
            del sys.modules[name]
        sys.modules.update(kernel_copies)
    return fresh


def _verdict(check, function, watch) -> dict:
    """One exercise's verdict, from the fresh check."""
    stub_error = NotImplementedError
    try:
        result = check(function)
        watch()
    except Tampered as error:
        return {"verdict": "TAMPERED", "message": str(error)}
    except stub_error:
        return {"verdict": "NOT DONE", "message": "the function is still the stub (NotImplementedError)."}
    except BaseException as error:  # noqa: BLE001  (a SystemExit from the student's function is a verdict too)
        return {"verdict": "ERROR", "message": f"{type(error).__name__}: {error}"}
    return {"verdict": "PASSED" if result.passed else "FAILED", "message": result.message}


def judge(holder: str, expected: str, root: str, hashes: dict[str, str], exercises: list[dict],
          namespace: dict, out: str) -> None:
    """The last cell: each exercise's verdict from fresh checks, written to ``out`` as JSON."""
    snapshot = getattr(sys, holder, None)
    rows = []
    try:
        if not isinstance(snapshot, dict) or digest(snapshot) != expected:
            raise Tampered("the grader's snapshot was changed or removed by the notebook")

        def watch() -> None:
            names = changed(snapshot)
            if names:
                raise Tampered(f"the notebook replaced {', '.join(names[:3])}, which the checks rely on")

        watch()
        fresh = fresh_kdutils(Path(root), hashes)
        harness, exercises_module = fresh["kdutils.course.checks.harness"], fresh["kdutils.exercises"]
        harness.WATCH = watch
        timeout_start = fresh["kdutils.course.checks.verdicts"].TIMEOUT_MESSAGE
        for exercise in exercises:
            function = namespace.get(exercise["function"])
            if function is None:
                row = {"verdict": "ERROR", "message": f"the notebook defines no function {exercise['function']}."}
            else:
                row = _verdict(getattr(exercises_module, f"check_{exercise['exercise']}"), function, watch)
            if row["verdict"] == "FAILED" and row["message"].startswith(timeout_start):
                row["verdict"] = "TIMEOUT"
            rows.append({"cell_id": exercise["cell_id"], **row})
    except Tampered as error:
        done = {row["cell_id"] for row in rows}
        rows += [{"cell_id": e["cell_id"], "verdict": "TAMPERED", "message": str(error)}
                 for e in exercises if e["cell_id"] not in done]
    with open(out, "w", encoding="utf-8") as file:
        json.dump(rows, file)
