"""nbval, with numbers compared within a tolerance where the machine is not the reference machine.

nbval runs every notebook and compares each cell's new outputs with the committed ones. On the machine
those outputs come from (``kdutils.course.claims.REFERENCE_MACHINE``) the comparison stays exact. Anywhere else
a trained network's numbers move a little, so before nbval compares a cell, each number of its new output
that lies within the cell's tolerance (``kdutils.course.tolerance``) takes the committed value; the words must
still match exactly, and a number outside the tolerance fails the cell as before, with the reason.
Everywhere, a claim's notice and a progress bar's widget are left out of the comparison.
"""

from __future__ import annotations


def pytest_configure(config):
    # pytest 8.3 (requirements.txt's floor) puts its own threading.excepthook in place for each phase of a
    # test (setup, call), a new one each time; the grader's guard records that hook in a fixture
    # (tests/course/test_guard.py) and would take the change between phases for a notebook's tampering.
    config.pluginmanager.set_blocked("threadexception")
    if not getattr(config.option, "nbval", False):
        return
    from nbval.plugin import IPyNbCell

    if getattr(IPyNbCell.compare_outputs, "kdutils_tolerant", False):
        return
    exact_compare = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        from kdutils.course.claims import is_reference_machine
        from kdutils.course.tolerance import RUN_ONLY, adopt_close_numbers, comparable, tolerance_for

        test, ref = comparable(test), comparable(ref)
        problems = []
        if not is_reference_machine():
            tolerance = tolerance_for(self.cell.metadata, self.parent.nb.metadata)
            if tolerance == RUN_ONLY:
                return True
            problems = adopt_close_numbers(test, ref, tolerance, sanitize=self.sanitize)
        if exact_compare(self, test, ref, skip_compare):
            return True
        self.comparison_traceback[:0] = [f"not within tolerance: {problem}" for problem in problems]
        return False

    compare_outputs.kdutils_tolerant = True
    IPyNbCell.compare_outputs = compare_outputs


def pytest_report_header(config):
    if not getattr(config.option, "nbval", False):
        return None
    from kdutils.course.claims import is_reference_machine, this_machine

    machine = this_machine()
    where = (f"{machine['cpu']} ({machine['cpu_model']}), {machine['cpu_capability']}, "
             f"{machine['threads']} threads, torch {machine['torch']}")
    if is_reference_machine():
        return f"notebooks: reference machine ({where}): outputs compared exactly, claims strict"
    return f"notebooks: not the reference machine ({where}): numbers compared within tolerances, claims as notices"


_notebook_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report):
    # Each cell of a notebook is one test item: add up the cells' times per notebook for the summary below.
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] = _notebook_seconds.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    terminalreporter.write_sep("-", "seconds per notebook (its cells run in one kernel; on a busy machine, more)")
    for notebook, seconds in _notebook_seconds.items():
        terminalreporter.write_line(f"{seconds:7.0f} s  {notebook}")
