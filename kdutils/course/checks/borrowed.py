"""Is the student's answer their own? ``borrowed`` finds kdutils' or torch's ready-made function behind it.

An exercise asks the student to write what the library already has (``count_parameters``, a softmax, the
distillation loss): handing in the library's function, or calling it, passes nothing. The function is
followed wherever it can hide: an alias, a module attribute, a default argument, a closure,
``functools.partial``, a bound method, a callable object, or helpers of the student's own, a few calls deep.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable

__all__ = ["borrowed", "is_library", "unwrapped"]


def unwrapped(obj):
    """What a ``functools.partial`` (or a partial of a partial) finally calls; anything else as it is."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return obj


def is_library(obj, names: tuple[str, ...]) -> bool:
    """Whether ``obj`` is one of ``names`` from kdutils or torch, whatever it is called where it is used."""
    obj = unwrapped(obj)
    module = getattr(obj, "__module__", None) or ""
    return getattr(obj, "__name__", None) in names and module.startswith(("kdutils", "torch"))


def borrowed(function: Callable, names: tuple[str, ...], depth: int = 0, visited: set | None = None) -> str | None:
    """The ready-made answer that ``function`` is, or calls; None when it is the student's own.

    A function from kdutils itself is borrowed whatever its name, and so is one that calls a kdutils
    function or one of ``names`` (from kdutils or torch), however it reaches it: by its own name, an
    alias (``import ... as kd``), a module attribute, a default argument, a closure, ``functools.partial``,
    a callable object, or through helpers of the student's own, followed a few calls deep. A name the
    student defined themselves does not count.
    """
    visited = set() if visited is None else visited
    function = unwrapped(function)
    if id(function) in visited or depth > 6:
        return None
    visited.add(id(function))
    module = getattr(function, "__module__", None) or ""
    if module == "kdutils" or module.startswith("kdutils.") or is_library(function, names):
        return f"{module}.{getattr(function, '__name__', 'function')}"
    function = getattr(function, "__func__", function)  # a bound method: its function
    if getattr(function, "__code__", None) is None and callable(function) and not isinstance(function, type):
        function = getattr(type(function).__call__, "__func__", type(function).__call__)  # a callable object
        if (getattr(function, "__module__", None) or "").startswith(("torch", "kdutils")):
            return None  # a model's forward machinery, not an answer
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    namespace = getattr(function, "__globals__", {})
    seen = []
    for cell in function.__closure__ or ():
        try:
            seen.append(cell.cell_contents)
        except ValueError:  # a closure variable not assigned yet
            pass
    seen += list(function.__defaults__ or ()) + list((function.__kwdefaults__ or {}).values())
    used, codes = set(), [code]
    while codes:
        current = codes.pop()
        used.update(current.co_names)
        codes.extend(const for const in current.co_consts if isinstance(const, types.CodeType))
    for name in sorted(used):
        if name in namespace:
            seen.append(namespace[name])
        elif name in names:  # an attribute such as torch.softmax or logits.softmax
            return name
    for obj in seen:
        if is_library(obj, names):
            obj = unwrapped(obj)
            return f"{obj.__module__}.{getattr(obj, '__name__', 'function')}"
    for obj in seen:  # the student's own helpers (and objects with __call__): what they call, in turn
        obj = unwrapped(obj)
        own = getattr(obj, "__module__", None) or ""
        if callable(obj) and not own.startswith(("kdutils", "torch", "numpy", "builtins", "math", "functools")):
            found = borrowed(obj, names, depth + 1, visited)
            if found:
                return found
    return None
