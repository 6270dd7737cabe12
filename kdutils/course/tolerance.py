"""Comparing a notebook's new outputs with its committed ones, number by number, within a tolerance.

On the reference machine (see :mod:`kdutils.course.claims`) nbval compares outputs exactly. Anywhere else the
numbers a training run prints move a little, so a cell's text is accepted when its words are the same
and each number is within the tolerance stated for it:

- in the notebook's metadata, ``{"kdutils": {"tolerance": {"abs": 1.0, "rel": 0.02}}}``, for every cell;
- in a cell's metadata, the same key, for that cell (``{}`` or ``{"abs": 0}`` means exact);
- ``"tolerance": "run-only"`` for a cell whose words depend on the run (which classes it confuses most):
  off the reference machine it must run without error, its output is not compared.

A number ``new`` passes against ``committed`` when ``|new - committed| <= abs + rel * |committed|``,
as in ``numpy.isclose``. Numbers are read as printed, so ``abs`` is in the units the cell prints
(points of a percentage for ``89.85%``). Exact comparison stays for everything that is not a number.

``compare_notebooks`` reports, cell by cell, how far a run on another machine moved from the committed
outputs (``python -m kdutils.course compare COMMITTED RUN``): what to read before setting a tolerance.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import nbformat
from nbval.plugin import coalesce_streams

from .claims import NOTICE_MARK

__all__ = [
    "RUN_ONLY",
    "CellComparison",
    "Tolerance",
    "adopt_close_numbers",
    "comparable",
    "compare_notebooks",
    "compare_text",
    "parse_tolerance",
    "split_numbers",
    "tolerance_for",
]

#: A number as a notebook prints it: optional sign, thousands separators, decimals, exponent.
NUMBER = re.compile(r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")

RUN_ONLY = "run-only"
WIDGET = "application/vnd.jupyter.widget-view+json"


@dataclass(frozen=True)
class Tolerance:
    abs: float = 0.0
    rel: float = 0.0

    def __post_init__(self):
        for name in ("abs", "rel"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"tolerance {name!r} must be a number >= 0, got {value!r}.")

    def allows(self, committed: float, new: float) -> bool:
        return abs(new - committed) <= self.abs + self.rel * abs(committed)


def parse_tolerance(spec) -> Tolerance | str | None:
    """A tolerance from metadata: ``None`` (none stated), ``RUN_ONLY``, or a :class:`Tolerance`."""
    if spec is None:
        return None
    if spec == RUN_ONLY:
        return RUN_ONLY
    if isinstance(spec, dict) and set(spec) <= {"abs", "rel"}:
        return Tolerance(**spec)
    raise ValueError(f"a tolerance is {{'abs': x, 'rel': y}} or {RUN_ONLY!r}, got {spec!r}.")


def tolerance_for(cell_metadata: dict, notebook_metadata: dict) -> Tolerance | str:
    """The cell's own tolerance, else its notebook's, else exact (``Tolerance()``)."""
    for metadata in (cell_metadata, notebook_metadata):
        spec = parse_tolerance((metadata.get("kdutils") or {}).get("tolerance"))
        if spec is not None:
            return spec
    return Tolerance()


def split_numbers(text: str) -> tuple[list[str], list[float]]:
    """The text with each number cut out (the words between them) and the numbers as floats."""
    words, numbers, start = [], [], 0
    for match in NUMBER.finditer(text):
        words.append(text[start : match.start()])
        numbers.append(float(match.group().replace(",", "").replace("−", "-")))
        start = match.end()
    words.append(text[start:])
    return words, numbers


def _unpadded(words: list[str]) -> list[str]:
    # A table pads its columns to the width of its numbers: "  99 / 1,000" and " 107 / 1,000" say the same.
    return [re.sub(r"[ \t]+", " ", word).strip(" \t") for word in words]


def compare_text(committed: str, new: str, tolerance: Tolerance) -> list[str]:
    """What keeps ``new`` from matching ``committed`` within ``tolerance``; an empty list when it matches."""
    if committed == new:
        return []
    committed_words, committed_numbers = split_numbers(committed)
    new_words, new_numbers = split_numbers(new)
    if _unpadded(committed_words) != _unpadded(new_words):
        return ["the words differ, not only the numbers"]
    return [f"{a:g} became {b:g}, more than {tolerance.abs:g} + {tolerance.rel:g} x |{a:g}| away"
            for a, b in zip(committed_numbers, new_numbers) if not tolerance.allows(a, b)]


def comparable(outputs: list) -> list:
    """Outputs as nbval compares them: streams joined, claim notices and progress widgets dropped.

    nbval joins a cell's ``stdout`` pieces into one output before it compares (how a run splits them is
    timing); a notice or a widget's state says nothing about the lesson. Returns new objects.
    """
    kept = [nbformat.from_dict(copy.deepcopy(output)) for output in outputs
            if not (output.get("metadata") or {}).get(NOTICE_MARK)
            and WIDGET not in (output.get("data") or {})]
    for output in kept:  # a notebook file read as plain JSON stores a stream's text as a list of lines
        if isinstance(output.get("text"), list):
            output.text = "".join(output.text)
    return coalesce_streams(kept)


TEXT_FIELDS = ("text/plain", "text/markdown", "text/html", "text/latex")


def _unchanged(text: str) -> str:
    return text


def adopt_close_numbers(new: list, committed: list, tolerance: Tolerance, sanitize=_unchanged) -> list[str]:
    """Where a new output's text matches the committed one within ``tolerance``, give it the committed text.

    Outputs are paired by position and type; a pair that does not match is left as it was, and what
    keeps it from matching is returned, so that nbval's exact comparison reports it with this reason.
    """
    problems = []
    for index, (fresh, stored) in enumerate(zip(new, committed)):
        if fresh.get("output_type") != stored.get("output_type"):
            continue
        fields = [("text", None)] if fresh.get("output_type") == "stream" else [("data", f) for f in TEXT_FIELDS]
        for key, field in fields:
            fresh_holder, stored_holder = (fresh, stored) if field is None else (fresh.get(key), stored.get(key))
            name = key if field is None else field
            if not fresh_holder or not stored_holder or name not in fresh_holder or name not in stored_holder:
                continue
            fresh_text, stored_text = _joined(fresh_holder[name]), _joined(stored_holder[name])
            reasons = compare_text(sanitize(stored_text), sanitize(fresh_text), tolerance)
            if reasons:
                problems += [f"output {index + 1} ({name}): {reason}" for reason in reasons]
            else:
                fresh_holder[name] = stored_holder[name]
    return problems


def _joined(text) -> str:
    return "".join(text) if isinstance(text, list) else text


def deviations(committed_cell: dict, new_cell: dict, sanitize=_unchanged) -> tuple[bool, float, float]:
    """(same words, largest absolute change, largest relative change) of a cell's numbers between two runs.

    ``sanitize`` is applied to both texts first, as nbval applies its sanitize file (run times, addresses).
    """
    same_words, largest_abs, largest_rel = True, 0.0, 0.0
    stored, fresh = comparable(committed_cell.get("outputs", [])), comparable(new_cell.get("outputs", []))
    if len(stored) != len(fresh):
        return False, 0.0, 0.0
    for a, b in zip(stored, fresh):
        texts_a = [a.get("text", "")] + [(a.get("data") or {}).get(f, "") for f in TEXT_FIELDS]
        texts_b = [b.get("text", "")] + [(b.get("data") or {}).get(f, "") for f in TEXT_FIELDS]
        for ta, tb in zip(texts_a, texts_b):
            words_a, numbers_a = split_numbers(sanitize(_joined(ta)))
            words_b, numbers_b = split_numbers(sanitize(_joined(tb)))
            if words_a != words_b:
                same_words = False
                continue
            for x, y in zip(numbers_a, numbers_b):
                largest_abs = max(largest_abs, abs(x - y))
                if x != 0:
                    largest_rel = max(largest_rel, abs(x - y) / abs(x))
    return same_words, largest_abs, largest_rel


@dataclass(frozen=True)
class CellComparison:
    """How one code cell of a run compares with the committed one."""

    number: int  # the code cell's number, counting from 1
    tolerance: Tolerance | str
    same_words: bool
    largest_abs: float
    largest_rel: float
    verdict: str  # "passes", "run only", "not compared (...)", "FAILS: ..." or "ERROR ..."

    @property
    def fails(self) -> bool:
        return self.verdict.startswith(("FAILS", "ERROR"))


def _verdict(committed_cell: dict, run_cell: dict, tolerance, same_words: bool, sanitize=_unchanged) -> str:
    tags = committed_cell["metadata"].get("tags", [])
    errors = [o for o in run_cell.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        return f"ERROR {errors[0].get('ename')}: {errors[0].get('evalue', '')[:60]}"
    if "nbval-ignore-output" in tags:
        return "not compared (nbval-ignore-output)"
    if tolerance == RUN_ONLY:
        return "run only"
    if not same_words:
        return "FAILS: words differ"
    new, old = comparable(run_cell.get("outputs", [])), comparable(committed_cell.get("outputs", []))
    return "passes" if not adopt_close_numbers(new, old, tolerance, sanitize) else "FAILS: numbers outside tolerance"


def compare_notebooks(committed: dict, run: dict, sanitize=_unchanged) -> list[CellComparison]:
    """Cell by cell (code cells not expected to raise), how the run's numbers moved and whether they pass.

    Pass ``kdutils.course.rerun.sanitizer()`` as ``sanitize`` to compare as the notebook tests do: a run
    time that nbval's sanitize file replaces is then neither a deviation nor a failure.
    """
    rows = []
    cells = [(a, b) for a, b in zip(committed["cells"], run["cells"]) if a["cell_type"] == "code"]
    for number, (a, b) in enumerate(cells, start=1):
        if "raises-exception" in a["metadata"].get("tags", []):
            continue
        tolerance = tolerance_for(a["metadata"], committed["metadata"])
        same, largest_abs, largest_rel = deviations(a, b, sanitize)
        verdict = _verdict(a, b, tolerance, same, sanitize)
        rows.append(CellComparison(number, tolerance, same, largest_abs, largest_rel, verdict))
    return rows
