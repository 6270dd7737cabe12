"""kdutils.conventions.diagnose on real-world KD losses: answers that are right, and few left unknown.

Issue 27's bar: the four main fields (direction, t_squared, reduction, alpha_on) answered for at least 90% of
the functions, every answer right for at least 95% of them, and no crash or hang. Where a corpus entry accepts
several values, any of them is right; a field an entry leaves out is not scored.
"""

from __future__ import annotations

import pytest

from kdutils.conventions import UNKNOWN, diagnose

from .kd_losses_in_the_wild import corpus_a, corpus_b

MAIN_FIELDS = ("direction", "t_squared", "reduction", "alpha_on")
OTHER_FIELDS = ("hard_term", "student_softened", "teacher_softened", "trains_student", "nan_on_ordinary_input")


def scores(entries) -> dict[str, tuple[float, float, list[str]]]:
    """field -> (coverage, precision, wrong answers), over the entries whose label gives that field."""
    found = {entry.name: diagnose(entry.fn) for entry in entries}
    result = {}
    for field in MAIN_FIELDS + OTHER_FIELDS:
        scored = [e for e in entries if field in e.expected]
        answered = [e for e in scored if getattr(found[e.name], field) != UNKNOWN]
        wrong = [f"{e.name}: {getattr(found[e.name], field)!r}, expected {e.expected[field]!r}" for e in answered
                 if not corpus_a.is_right(e.expected[field], getattr(found[e.name], field))]
        result[field] = (len(answered) / len(scored), 1 - len(wrong) / max(len(answered), 1), wrong)
    return result


@pytest.fixture(scope="module", params=["corpus_a", "corpus_b"])
def corpus(request):
    module = {"corpus_a": corpus_a, "corpus_b": corpus_b}[request.param]
    entries = [e for e in module.ENTRIES if not e.expected.get("raises")]
    return request.param, entries, scores(entries)


def test_every_answer_it_gives_is_right(corpus):
    name, _, found = corpus
    for field, (_, precision, wrong) in found.items():
        assert precision >= 0.95, f"{name}, {field}: {precision:.1%} right; wrong: {wrong}"


def test_it_answers_the_main_fields_for_at_least_90_percent_of_the_functions(corpus):
    name, _, found = corpus
    low = {field: f"{found[field][0]:.1%}" for field in MAIN_FIELDS if found[field][0] < 0.90}
    assert not low, f"{name}: coverage under 90% for {low}"


def test_a_function_that_raises_on_every_input_is_reported_not_raised():
    raising = [e for e in corpus_b.ENTRIES if e.expected.get("raises")]
    assert raising
    for entry in raising:
        assert diagnose(entry.fn).error, entry.name
