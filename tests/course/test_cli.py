"""python -m kdutils.course: every subcommand's exit codes and output, on small cases."""

import gzip
import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from kdutils import data as kd_data
from kdutils import files
from kdutils.checkpoints import save_checkpoint
from kdutils.course.cli import EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, main
from kdutils.data import raw_folder
from kdutils.models import StudentModel


def run(*argv) -> tuple[int, str]:
    """Run the command line in-process; return (exit code, everything it printed, stdout and stderr)."""
    out = io.StringIO()
    code = main([str(a) for a in argv], out=out, err=out)
    return code, out.getvalue()


def test_the_command_line_lists_its_subcommands_and_refuses_an_unknown_one(capsys):
    assert main(["--help"]) == EXIT_OK
    shown = capsys.readouterr().out
    for name in ("machine", "data", "edition", "grade", "answers", "rerun", "compare"):
        assert name in shown
    assert main([]) == EXIT_USAGE and main(["frobnicate"]) == EXIT_USAGE


def test_machine_prints_this_machine_beside_the_reference(monkeypatch):
    from kdutils.course import claims

    here = claims.this_machine()
    for forced, verdict in (("1", "This is the reference machine"), ("0", "Not the reference machine")):
        monkeypatch.setenv(claims.REFERENCE_ENV, forced)
        code, printed = run("machine")
        assert code == EXIT_OK and verdict in printed
        assert f"threads         {here['threads']}" in printed and "reference machine" in printed.splitlines()[0]


# --- data: the offline lab's command line, python -m kdutils.course data status|import DIR|verify|fetch -------
# Every test runs on tiny generated IDX files (``tiny_raw`` in conftest.py) in a temporary data folder,
# so none needs the real dataset or a network. ``main(argv, out)`` is called directly (its return value
# is the exit code); one test runs the real ``python -m`` entry point in a subprocess.

FILES = kd_data.DATASETS["fashion-mnist"].files


def run_cli(*argv: str) -> tuple[int, str]:
    """Run ``python -m kdutils.course data ...`` in-process; return (exit code, everything it printed)."""
    return run("data", *argv)


@pytest.fixture
def root(tmp_path):
    """An empty data folder, as on a freshly cloned repository."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def imported(tiny_raw, root):
    """A data folder that already holds the tiny dataset, imported and verified."""
    source, _ = tiny_raw
    assert run_cli("--root", root, "import", source)[0] == EXIT_OK
    return raw_folder("fashion-mnist", root)


# --- import ------------------------------------------------------------------------------------


def test_import_copies_verified_files_in_torchvision_layout(tiny_raw, root):
    source, contents = tiny_raw
    code, printed = run_cli("--root", root, "import", source)

    folder = raw_folder("fashion-mnist", root)
    assert code == EXIT_OK
    assert printed.strip() == f"imported and verified fashion-mnist into {folder}"
    # decompressed, under torchvision's layout, byte for byte the published content
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name, payload in contents.items():
        assert (folder / name).read_bytes() == payload


def test_import_from_an_empty_folder_names_the_missing_files(tiny_raw, root, tmp_path):
    empty = tmp_path / "empty-stick"
    empty.mkdir()
    code, printed = run_cli("--root", root, "import", empty)

    assert code == EXIT_PROBLEM
    assert printed.startswith("error: ")
    assert str(empty) in printed and "does not hold the fashion-mnist files" in printed
    for name in FILES:
        assert name in printed
    assert not raw_folder("fashion-mnist", root).exists()  # nothing half-imported


def test_import_from_a_folder_that_does_not_exist(tiny_raw, root, tmp_path):
    code, printed = run_cli("--root", root, "import", tmp_path / "no-such-stick")
    assert code == EXIT_PROBLEM
    assert "is not a folder" in printed and "no-such-stick" in printed


def test_import_refuses_a_corrupted_file_and_writes_nothing_for_it(tiny_raw, root):
    source, contents = tiny_raw
    damaged = bytearray(contents["train-labels-idx1-ubyte"])
    damaged[-1] ^= 0xFF  # one flipped byte: the size is right, the content is not
    (source / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(damaged)))

    code, printed = run_cli("--root", root, "import", source)

    assert code == EXIT_PROBLEM
    assert "train-labels-idx1-ubyte" in printed and "SHA-256" in printed and "Replace it" in printed
    folder = raw_folder("fashion-mnist", root)
    assert not (folder / "train-labels-idx1-ubyte").exists()
    assert not [p for p in folder.iterdir() if ".part" in p.name]  # no temporary file left behind


def test_import_refuses_a_truncated_gzip(tiny_raw, root):
    source, _ = tiny_raw
    archive = source / "t10k-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:100])
    code, printed = run_cli("--root", root, "import", source)
    assert code == EXIT_PROBLEM
    assert "t10k-images-idx3-ubyte" in printed and "corrupted or truncated" in printed


def test_import_repairs_a_corrupted_data_folder(imported, tiny_raw, root):
    source, contents = tiny_raw
    target = imported / "t10k-labels-idx1-ubyte"
    target.write_bytes(b"not the labels")
    assert run_cli("--root", root, "verify")[0] == EXIT_PROBLEM

    assert run_cli("--root", root, "import", source)[0] == EXIT_OK
    assert target.read_bytes() == contents["t10k-labels-idx1-ubyte"]
    assert run_cli("--root", root, "verify")[0] == EXIT_OK


# --- verify ------------------------------------------------------------------------------------


def test_verify_passes_on_intact_files(imported, root):
    code, printed = run_cli("--root", root, "verify")
    assert code == EXIT_OK
    assert printed.strip() == f"fashion-mnist: all 4 files verified in {imported}"


def test_verify_names_a_corrupted_file(imported, root):
    images = imported / "train-images-idx3-ubyte"
    damaged = bytearray(images.read_bytes())
    damaged[500] ^= 0x01
    images.write_bytes(bytes(damaged))

    code, printed = run_cli("--root", root, "verify")

    assert code == EXIT_PROBLEM
    assert printed.startswith("error: ")
    assert str(images) in printed and "corrupted or truncated" in printed and "Delete it" in printed


def test_verify_names_a_truncated_file(imported, root):
    labels = imported / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-3])
    code, printed = run_cli("--root", root, "verify")
    assert code == EXIT_PROBLEM and "t10k-labels-idx1-ubyte" in printed


def test_verify_on_an_empty_data_folder_names_the_missing_files(tiny_raw, root):
    code, printed = run_cli("--root", root, "verify")
    assert code == EXIT_PROBLEM
    assert "missing" in printed
    for name in FILES:
        assert name in printed


def test_verify_reports_a_single_missing_file(imported, root):
    (imported / "train-labels-idx1-ubyte").unlink()
    code, printed = run_cli("--root", root, "verify")
    assert code == EXIT_PROBLEM
    assert "missing train-labels-idx1-ubyte" in printed
    missing_clause = printed.split("Ways to get it")[0]
    assert "train-images-idx3-ubyte" not in missing_clause  # only what is actually missing


# --- status ------------------------------------------------------------------------------------


def _line(printed: str, start: str) -> str:
    lines = [line.strip() for line in printed.splitlines() if line.strip().startswith(start)]
    assert len(lines) == 1, f"expected one line starting with {start!r} in:\n{printed}"
    return lines[0]


def test_status_of_an_empty_folder_says_absent_and_succeeds(tiny_raw, root):
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_OK  # nothing there is not a problem: it is what a fresh clone looks like
    assert printed.splitlines()[0] == f"data folder: {root}"
    assert _line(printed, "fashion-mnist").split() == ["fashion-mnist", "not", "here", "(absent)"]
    assert _line(printed, "checkpoints:") == "checkpoints: 0"


def test_status_points_to_a_local_source_it_could_import(tiny_raw, root, monkeypatch):
    source, _ = tiny_raw
    monkeypatch.setenv(kd_data.RAW_DIR_ENV, str(source))
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_OK
    assert f"importable from {source}" in _line(printed, "fashion-mnist")


def test_status_after_import_reports_verified(imported, root):
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_OK
    assert _line(printed, "fashion-mnist").split() == ["fashion-mnist", "verified", str(imported)]


def test_status_flags_a_corrupted_dataset_with_a_failing_exit_code(imported, root):
    (imported / "train-images-idx3-ubyte").write_bytes(b"\x00" * 64)
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_PROBLEM
    line = _line(printed, "fashion-mnist")
    assert "CORRUPTED" in line and "train-images-idx3-ubyte" in line


def test_status_lists_checkpoints_and_flags_a_damaged_one(imported, root):
    checkpoints = root / "checkpoints"
    save_checkpoint(StudentModel(), checkpoints / "student.pt", dataset="fashion-mnist", validation_accuracy=0.8512)
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_OK
    assert _line(printed, "checkpoints:") == "checkpoints: 1"
    assert _line(printed, "student.pt").split() == [
        "student.pt", "ok", "StudentModel", "fashion-mnist", "validation", "accuracy", "0.8512"
    ]

    broken = checkpoints / "teacher.pt"
    broken.write_bytes((checkpoints / "student.pt").read_bytes()[:1000])  # truncated mid-write
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_PROBLEM
    assert _line(printed, "checkpoints:") == "checkpoints: 2"
    assert "DAMAGED" in _line(printed, "teacher.pt") and "truncated or corrupted" in printed
    assert " ok " in _line(printed, "student.pt") + " "


# --- fetch -------------------------------------------------------------------------------------


def _fake_torchvision(contents: dict[str, bytes], calls: list):
    """A stand-in for torchvision's dataset class that 'downloads' the given files."""

    class FashionMNIST:  # the class name is the folder torchvision downloads into
        def __init__(self, root, train=True, download=False):
            calls.append((Path(root), train, download))
            raw = Path(root) / "FashionMNIST" / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            prefix = "train" if train else "t10k"
            for name, payload in contents.items():
                if name.startswith(prefix):
                    (raw / name).write_bytes(payload)

    return FashionMNIST


def _use_downloader(monkeypatch, cls) -> None:
    """Make 'fetch' call ``cls`` instead of torchvision's downloader (tiny_raw's spec stays otherwise)."""
    spec = kd_data.DATASETS["fashion-mnist"]
    monkeypatch.setitem(kd_data.DATASETS, "fashion-mnist", replace(spec, downloader=cls))


def test_fetch_downloads_then_verifies(tiny_raw, root, monkeypatch):
    _, contents = tiny_raw
    calls = []
    _use_downloader(monkeypatch, _fake_torchvision(contents, calls))

    code, printed = run_cli("--root", root, "fetch")

    folder = raw_folder("fashion-mnist", root)
    assert code == EXIT_OK
    assert printed.strip() == f"downloaded and verified fashion-mnist into {folder}"
    assert [(train, download) for _, train, download in calls] == [(True, True), (False, True)]
    for name, payload in contents.items():
        assert (folder / name).read_bytes() == payload
    # the download went to a temporary folder inside the data folder, which is gone afterwards
    assert all(path.parent == root and path.name.startswith(".download-") for path, _, _ in calls)
    assert not [p for p in root.iterdir() if p.name.startswith(".download-")]
    assert run_cli("--root", root, "verify")[0] == EXIT_OK


def test_fetch_refuses_a_download_with_the_wrong_content(tiny_raw, root, monkeypatch):
    _, contents = tiny_raw
    tampered = dict(contents, **{"t10k-images-idx3-ubyte": contents["t10k-images-idx3-ubyte"][:-10]})
    _use_downloader(monkeypatch, _fake_torchvision(tampered, []))

    code, printed = run_cli("--root", root, "fetch")

    assert code == EXIT_PROBLEM
    assert "t10k-images-idx3-ubyte" in printed and "SHA-256" in printed
    assert not (raw_folder("fashion-mnist", root) / "t10k-images-idx3-ubyte").exists()


def test_fetch_without_network_says_what_else_to_do(tiny_raw, root, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("[Errno 101] Network is unreachable")

    _use_downloader(monkeypatch, offline)

    code, printed = run_cli("--root", root, "fetch")

    assert code == EXIT_PROBLEM
    assert "Downloading fashion-mnist failed" in printed and "Network is unreachable" in printed
    assert "python -m kdutils.course data import" in printed and kd_data.RAW_DIR_ENV in printed
    assert not [p for p in root.iterdir() if p.name.startswith(".download-")]


# --- usage -------------------------------------------------------------------------------------


def test_unknown_dataset_is_a_usage_error_listing_the_known_ones(tiny_raw, root):
    code, printed = run_cli("--root", root, "verify", "--dataset", "cifar10")
    assert code == EXIT_USAGE
    assert "Unknown dataset 'cifar10'" in printed and "'fashion-mnist'" in printed and "'mnist'" in printed


@pytest.mark.parametrize("argv", [["data"], ["data", "frobnicate"], ["data", "import"], ["data", "status", "/a/b"]])
def test_bad_data_command_lines_are_usage_errors(argv, capsys):
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "usage: python -m kdutils.course data" in err or "give the source folder for 'data import'" in err


def test_data_help_exits_zero(capsys):
    assert main(["data", "--help"]) == EXIT_OK
    shown = capsys.readouterr().out
    for command in ("status", "import", "verify", "fetch"):
        assert command in shown


def test_module_entry_point_returns_the_exit_code(tmp_path):
    """The real ``python -m kdutils.course data`` in a subprocess, on an empty data folder (no network used)."""
    env = {k: v for k, v in os.environ.items() if k != kd_data.RAW_DIR_ENV}
    empty = tmp_path / "data"
    empty.mkdir()
    command = [sys.executable, "-m", "kdutils.course", "data", "--root", str(empty), "verify", "--dataset", "mnist"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == EXIT_PROBLEM
    printed = result.stdout + result.stderr
    assert "error:" in printed and "missing" in printed and "Traceback" not in printed


# --- streams, options and system errors --------------------------------------------------------


def test_errors_go_to_stderr_and_results_to_stdout(tiny_raw, root):
    out, err = io.StringIO(), io.StringIO()
    assert main(["data", "--root", str(root), "verify"], out=out, err=err) == EXIT_PROBLEM
    assert out.getvalue() == ""
    assert err.getvalue().startswith("error: fashion-mnist: missing")
    assert "python -m kdutils.course data import" in err.getvalue()  # says how to get it


def test_root_may_follow_the_command(tiny_raw, root):
    source, _ = tiny_raw
    assert run_cli("import", source, "--root", root)[0] == EXIT_OK
    assert run_cli("verify", "--root", root)[0] == EXIT_OK


def test_status_names_the_files_an_incomplete_dataset_lacks(imported, root):
    (imported / "t10k-labels-idx1-ubyte").unlink()
    code, printed = run_cli("--root", root, "status")
    assert code == EXIT_OK
    assert "incomplete: missing t10k-labels-idx1-ubyte" in printed


def test_system_errors_are_reported_without_a_traceback(tiny_raw, root, monkeypatch):
    source, _ = tiny_raw

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(root))

    monkeypatch.setattr(files.tempfile, "mkstemp", denied)
    code, printed = run_cli("--root", root, "import", source)
    assert code == EXIT_PROBLEM
    assert printed.startswith("error: ") and "Permission denied" in printed


# --- edition, grade, answers, rerun, compare ---------------------------------------------------------------


def markdown(source):
    return {"cell_type": "markdown", "id": "m", "metadata": {}, "source": source}


def code(source, outputs=(), tags=(), count=None, cell_id="c"):
    return {"cell_type": "code", "execution_count": count, "id": cell_id, "metadata": {"tags": list(tags)},
            "outputs": list(outputs), "source": source}


def stdout(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def write_notebook(path, *cells, metadata=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": list(cells), "metadata": metadata or {}, "nbformat": 4,
                                "nbformat_minor": 5}), encoding="utf-8")
    return path


SOLUTION = ("def gap(s, d, t):\n    ### BEGIN SOLUTION\n    return (d - s) / (t - s)\n    ### END SOLUTION\n\n\n"
            "check_gap_closed(gap)")


def test_edition_writes_the_student_edition_then_checks_it_and_names_a_stale_one(tmp_path):
    write_notebook(tmp_path / "01_a.ipynb", code(SOLUTION, tags=["solution"]))
    assert run("edition", "--check", "--notebooks", tmp_path) == (
        EXIT_PROBLEM, f"{tmp_path / 'student'} is out of date (01_a.ipynb): run python -m kdutils.course edition\n")
    code_, printed = run("edition", "--notebooks", tmp_path)
    assert code_ == EXIT_OK and f"wrote 1 student notebook(s) into {tmp_path / 'student'}" in printed
    assert run("edition", "--check", "--notebooks", tmp_path) == (
        EXIT_OK, f"{tmp_path / 'student'} matches the instructor notebooks\n")
    (tmp_path / "student" / "01_a.ipynb").write_text("edited by hand", encoding="utf-8")
    assert run("edition", "--check", "--notebooks", tmp_path)[0] == EXIT_PROBLEM


def test_edition_refuses_a_malformed_solution_cell_as_a_usage_error(tmp_path):
    write_notebook(tmp_path / "01_a.ipynb", code("def f():\n    return 1\ncheck_gap_closed(f)", tags=["solution"]))
    code_, printed = run("edition", "--notebooks", tmp_path)
    assert code_ == EXIT_USAGE and printed.startswith("error: 01_a.ipynb, cell 0") and "BEGIN SOLUTION" in printed


def test_grade_writes_csvs_and_feedback_and_refuses_a_missing_folder(tmp_path):
    release = tmp_path / "release"
    stub = code("def gap(s, d, t):\n    raise NotImplementedError('write this function')\n\n\ncheck_gap_closed(gap)")
    stub["metadata"]["kdutils_exercise"] = {"exercise": "gap_closed", "function": "gap", "points": 1}
    write_notebook(release / "05_a.ipynb", stub)
    write_notebook(tmp_path / "class" / "dan.ipynb", code("x = 1", cell_id="d"))  # no released cell: no kernel
    out = tmp_path / "grades"
    code_, printed = run("grade", tmp_path / "class", "--release", release, "--out", out, "--timeout", "5")
    assert code_ == EXIT_OK and printed == f"wrote 1 verdict(s) and 1 feedback file(s) to {out}: 1 ERROR\n"
    assert (out / "verdicts.csv").read_text(encoding="utf-8").splitlines()[0] == \
        "student,notebook,exercise,verdict,message,points,max_points"
    assert (out / "gradebook.csv").read_text(encoding="utf-8").splitlines() == ["student_id,total,max_total", "dan,0,0"]
    assert (out / "feedback" / "dan.md").is_file()
    missing = tmp_path / "missing"
    assert run("grade", missing, "--release", release) == (
        EXIT_USAGE, f"error: the submissions folder {missing} is not a folder\n")
    code_, printed = run("grade", tmp_path / "class", "--release", tmp_path / "class")
    assert code_ == EXIT_USAGE and "holds no released exercise" in printed


ANSWER = markdown("**1.** Double it.\n\n<details><summary>Solution</summary>\n\n```python\nprint(answer * 2)\n```\n"
                  "It prints 84.\n</details>\n")


def test_answers_prints_each_answers_code_output_and_words(tmp_path):
    path = write_notebook(tmp_path / "01_a.ipynb", code("answer = 42"), ANSWER)
    code_, printed = run("answers", path)
    assert code_ == EXIT_OK
    assert "# 01_a.ipynb: 1 worked answer block(s)" in printed and "print(answer * 2)" in printed
    assert "printed:\n84\n" in printed and "the answer says:\nIt prints 84." in printed
    assert run("answers", tmp_path / "missing.ipynb") == (
        EXIT_PROBLEM, f"error: no notebook at {tmp_path / 'missing.ipynb'}: give the path of a notebooks/NN_*.ipynb "
                      "file.\n")


def test_rerun_passes_a_notebook_that_survives_and_names_the_cell_that_does_not(tmp_path):
    steady = write_notebook(tmp_path / "01_a.ipynb", code("x = 2", cell_id="a"),
                            code("print(x * 21)", [stdout("42\n")], count=2, cell_id="b"))
    code_, printed = run("rerun", steady)
    assert (code_, printed) == (EXIT_OK, "01_a.ipynb: survives repeated cells and its exercises\n")
    growing = write_notebook(tmp_path / "02_b.ipynb", code("x = 2", cell_id="a"),
                             code("x = x * 21\nprint(x)", [stdout("42\n")], count=2, cell_id="b"))
    code_, printed = run("rerun", growing)
    assert code_ == EXIT_PROBLEM and printed.startswith("02_b.ipynb: ")
    assert "cell 2 run twice:" in printed  # the second run printed 882, not 42


def test_compare_reports_each_cell_and_fails_only_beyond_the_tolerance(tmp_path):
    metadata = {"kdutils": {"tolerance": {"abs": 1.0}}}
    committed = write_notebook(tmp_path / "committed.ipynb", code("a", [stdout("accuracy 89.85%\n")]),
                               code("b", [stdout("teacher wins\n")]), metadata=metadata)
    close = write_notebook(tmp_path / "close.ipynb", code("a", [stdout("accuracy 89.31%\n")]),
                           code("b", [stdout("teacher wins\n")]), metadata=metadata)
    code_, printed = run("compare", committed, close)
    lines = printed.splitlines()
    assert code_ == EXIT_OK and lines[-1] == "0 cell(s) would fail"
    assert lines[1].split() == ["1", "abs", "1,", "rel", "0", "True", "0.54", "0.60%", "passes"]
    far = write_notebook(tmp_path / "far.ipynb", code("a", [stdout("accuracy 86.12%\n")]),
                         code("b", [stdout("student wins\n")]), metadata=metadata)
    code_, printed = run("compare", committed, far)
    assert code_ == EXIT_PROBLEM and printed.splitlines()[-1] == "2 cell(s) would fail"
    assert "FAILS: numbers outside tolerance" in printed and "FAILS: words differ" in printed
    assert run("compare", committed, tmp_path / "missing.ipynb")[0] == EXIT_USAGE


def test_compare_ignores_run_times_as_the_notebook_tests_do(tmp_path):
    """nbval's sanitize file replaces durations; compare must not fail a cell that only ran slower."""
    metadata = {"kdutils": {"tolerance": {"abs": 0.06}}}
    committed = write_notebook(tmp_path / "committed.ipynb", code("a", [stdout("this run: 87 s of wall time\n")]),
                               metadata=metadata)
    slower = write_notebook(tmp_path / "slower.ipynb", code("a", [stdout("this run: 84 s of wall time\n")]),
                            metadata=metadata)
    code_, printed = run("compare", committed, slower)
    assert code_ == EXIT_OK and printed.splitlines()[1].split()[-1] == "passes", printed
    other = write_notebook(tmp_path / "other.ipynb", code("a", [stdout("this run: 84 words of wall time\n")]),
                           metadata=metadata)
    assert run("compare", committed, other)[0] == EXIT_PROBLEM  # a number that is not a duration still counts
