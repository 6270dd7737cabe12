"""The lesson of the knowledge-distillation series: what a notebook imports to teach, one module per concern.

In the order the series needs them (a module imports only from modules above it in this list):

``files`` (the data folder, atomic writes), ``repro`` (seeds, device), ``progress`` (progress bars saved
at their final state), ``models`` (teacher and student), ``losses`` (every loss the series teaches),
``checkpoints`` (atomic save, safe load), ``data`` (datasets as in-memory tensors), ``analysis``
(confusions, statistics, calibration), ``training`` (the one training loop, for images and words),
``teacher`` (the series' teacher and its recipe), ``palette`` (colour-blind-safe colours, markers and
line styles), ``plots`` (figures), ``transfer`` (label budgets,
the bias fix), ``features`` (feature distillation), ``deploy`` (export, int8, latency), ``ensembles``
(averaged teachers), ``words`` (the word list and its tensors), ``text`` (character-level language models) and
``conventions`` (what another framework's distillation loss computes, read by calling it).

``exercises`` is the students' door to the exercise checks. The classroom's tooling (claims, tolerances,
the student edition, grading, the checks themselves) is ``kdutils.course``, which no lesson module imports.
"""

__version__ = "1.0.0"
