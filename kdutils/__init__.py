"""Helpers for the knowledge-distillation notebook series.

Modules: ``data`` (datasets), ``models`` (teacher and student), ``losses`` (distillation loss),
``training`` (train/evaluate), ``checkpoints`` (save/load), ``plots`` (figures), ``repro`` (seeds).
"""

__version__ = "0.1.0"
