"""The classroom's tooling: what an instructor, a grader or CI runs, never what a lesson teaches.

Lesson modules (``kdutils.*``) never import from here; the one door the other way is
``kdutils.exercises``, which students import their checks from. One command line runs it all:
``python -m kdutils.course <subcommand>`` (``kdutils.course.cli``).

* ``claims``: the reference machine; ``claim``, strict there and a notice elsewhere;
* ``tolerance``: numbers compared within a stated tolerance off the reference machine (nbval's hook
  in the repository's ``conftest.py``, and ``nbval_sanitize.cfg``, ship beside it);
* ``notebooks``: reading and running notebooks, exercises and worked answers;
* ``edition``: the student edition; ``grade``: a class's verdicts; ``answers``: worked answers run;
  ``rerun``: cells run twice;
* ``checks``: the exercise checks, their hints and their harness.
"""
