"""Helpers for the knowledge-distillation notebook series.

Modules, each importing only those listed before it: ``paths`` (the data folder), ``losses`` (every
loss the series teaches), ``models`` (teacher and student), ``repro`` (seeds, device),
``analysis`` (confusions, statistics, calibration), ``checkpoints`` (atomic save, safe load),
``data`` (datasets and their command line), ``training`` (the one training loop), ``teacher``
(the series' teacher and its recipe), ``palette`` (colour-blind-safe colours, markers, line
styles), ``plots`` (figures), ``transfer`` (label budgets, bias fix),
``features`` (hint distillation) and ``deploy`` (export, int8, latency).

For running the series on any machine: ``progress`` (progress bars saved at their final state),
``claims`` (the reference machine; ``claim``, strict there and a notice elsewhere), ``tolerance``
(numbers compared within a stated tolerance off the reference machine) and ``rerun`` (cells run twice).
"""

__version__ = "1.0.0"
