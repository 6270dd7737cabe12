"""The exercise checks, split along their seams; students import them from ``kdutils.exercises``.

* ``verdicts``: what a check prints (``PASSED: ...`` or ``NOT YET: <diagnosis>``) and the grader reads;
* ``hints``: the stepped hints and ``hint`` (no torch: the student edition reads them);
* ``harness``: running a check's body, calling the student's function within a time budget, the
  coercion of what it returns into numbers;
* ``borrowed``: is the student's answer, or what it calls, kdutils' or torch's own function?
* the checks, grouped by lesson stage with the mistakes they recognise: ``basics`` (notebooks 01-02),
  ``distillation`` (03-04), ``epoch`` (05), ``evaluation`` (05-07), ``beyond`` (08-10).
"""
