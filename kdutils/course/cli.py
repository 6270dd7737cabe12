"""The course tooling's one command line: ``python -m kdutils.course <subcommand>``.

    machine                      this machine beside the reference machine of the committed outputs
    data status|import|verify|fetch   prepare the datasets for a lab without internet
    edition [--check]            write (or check) the student edition, notebooks/student/
    grade SUBMISSIONS/           grade a class's notebooks: verdicts, gradebook and feedback per student
    answers NOTEBOOK...          run the worked answers after their notebook, beside the answers' words
    rerun NOTEBOOK...            run every cell twice, then the answers, then every cell again
    compare COMMITTED RUN        how far a run's numbers moved from the committed ones, cell by cell
    setup-cell apply|check|readme   the notebooks' Colab/Binder set-up cell and open-in links

Every subcommand returns 0 when all is well, 1 when it found a problem, 2 for a usage error. Each
imports what it needs when it runs: torch, for one, takes seconds, and ``edition --check`` needs none.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["EXIT_OK", "EXIT_PROBLEM", "EXIT_USAGE", "main"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def _machine(args, out, err) -> int:
    from .claims import REFERENCE_MACHINE, is_reference_machine, this_machine

    here = this_machine()
    print(f"{'':16}{'this machine':28}reference machine", file=out)
    for key, reference in REFERENCE_MACHINE.items():
        mark = "" if here[key] == reference else "   <- differs"
        print(f"{key:16}{str(here[key]):28}{reference}{mark}", file=out)
    if is_reference_machine():
        print("\nThis is the reference machine: notebook outputs are compared exactly and claims are strict.", file=out)
    else:
        print("\nNot the reference machine: numbers are compared within each notebook's tolerance,\n"
              "and a claim that this run does not bear out shows a notice instead of stopping.", file=out)
    return EXIT_OK


def _data_status(root: Path, out) -> int:
    from ..checkpoints import CheckpointError, read_metadata
    from ..data import DATASETS, ChecksumError, DatasetNotFoundError, find_source, raw_folder, verify

    problems = 0
    print(f"data folder: {root}", file=out)
    for name, spec in DATASETS.items():
        folder = raw_folder(name, root)
        try:
            verify(name, root)
            print(f"  {name:<14} verified   {folder}", file=out)
        except DatasetNotFoundError:
            missing = [f for f in spec.files if not (folder / f).is_file()]
            source = find_source(name)
            found = f"importable from {source}" if source else "absent"
            if len(missing) < len(spec.files):
                found = f"incomplete: missing {', '.join(missing)}; " + found
            print(f"  {name:<14} not here   ({found})", file=out)
        except ChecksumError as exc:
            problems += 1
            print(f"  {name:<14} CORRUPTED  {exc}", file=out)
    checkpoints = sorted((root / "checkpoints").glob("*.pt"))
    print(f"checkpoints: {len(checkpoints)}", file=out)
    for path in checkpoints:
        try:
            meta = read_metadata(path)
            accuracy = meta.get("validation_accuracy")
            shown = f"validation accuracy {accuracy:.4f}" if isinstance(accuracy, float) else ""
            print(f"  {path.name:<32} ok         {meta['architecture']} {meta.get('dataset', '')} {shown}", file=out)
        except CheckpointError as exc:
            problems += 1
            print(f"  {path.name:<32} DAMAGED    {exc}", file=out)
    return EXIT_PROBLEM if problems else EXIT_OK


def _data(args, out, err) -> int:
    from .. import data
    from ..files import default_root

    root = args.root if args.root is not None else default_root()
    try:
        if args.action == "status":
            return _data_status(root, out)
        if args.action == "import":
            folder = data.import_raw(args.dataset, args.source, root)
            print(f"imported and verified {args.dataset} into {folder}", file=out)
        elif args.action == "verify":
            folder = data.verify(args.dataset, root)
            print(f"{args.dataset}: all {len(data.get_spec(args.dataset).files)} files verified in {folder}", file=out)
        elif args.action == "fetch":
            folder = data.download(args.dataset, root)
            print(f"downloaded and verified {args.dataset} into {folder}", file=out)
    except ValueError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    except (data.DataError, OSError) as exc:  # OSError: permissions, a full disk, an unreadable stick
        print(f"error: {exc}", file=err)
        return EXIT_PROBLEM
    return EXIT_OK


def _edition(args, out, err) -> int:
    from .claims import is_reference_machine
    from .edition import StubError, differences, write_student_edition

    try:
        if args.check:
            stale = differences(args.notebooks)
            if stale:
                print(f"{args.notebooks / 'student'} is out of date ({', '.join(stale)}): run "
                      "python -m kdutils.course edition", file=err)
                return EXIT_PROBLEM
            print(f"{args.notebooks / 'student'} matches the instructor notebooks", file=out)
            return EXIT_OK
        written = write_student_edition(args.notebooks)
    except StubError as error:
        print(f"error: {error}", file=err)
        return EXIT_USAGE
    print(f"wrote {len(written)} student notebook(s) into {args.notebooks / 'student'}", file=out)
    if written and not is_reference_machine():
        # Their outputs come from this machine's run, so they differ from the instructor notebooks'.
        print("note: this is not the reference machine (python -m kdutils.course machine), so the outputs just "
              "written are this machine's; regenerate the edition on the reference machine before committing it.",
              file=err)
    return EXIT_OK


def _grade(args, out, err) -> int:
    from .grade import VERDICTS, grade
    from .gradebook import write_all

    for folder, what in ((args.submissions, "submissions"), (args.release, "release")):
        if not folder.is_dir():
            print(f"error: the {what} folder {folder} is not a folder", file=err)
            return EXIT_USAGE
    try:
        rows = grade(args.submissions, args.release, cell_timeout=args.timeout, total_timeout=args.total_timeout,
                     memory_mb=args.memory or None)
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=err)
        return EXIT_USAGE
    written = write_all(rows, args.out)
    counts = {verdict: sum(row.verdict == verdict for row in rows) for verdict in VERDICTS}
    print(f"wrote {len(rows)} verdict(s) and {len(written) - 2} feedback file(s) to {args.out}: "
          + ", ".join(f"{n} {v}" for v, n in counts.items() if n), file=out)
    return EXIT_OK


def _answers(args, out, err) -> int:
    from .answers import run_answers

    status = EXIT_OK
    for path in args.notebooks:
        try:
            results = run_answers(path)
        except (FileNotFoundError, RuntimeError) as error:
            print(f"error: {error}", file=err)
            status = EXIT_PROBLEM
            continue
        print(f"# {path.name}: {len(results)} worked answer block(s)\n", file=out)
        for number, (block, printed) in enumerate(results, 1):
            print(f"## block {number} (markdown cell {block.cell})\n\n```python\n{block.code}```\n", file=out)
            print("printed:\n" + (printed or "(nothing)\n"), file=out)
            print("the answer says:\n" + block.answer + "\n", file=out)
    return status


def _rerun(args, out, err) -> int:
    from .rerun import rerun_problems

    status = EXIT_OK
    for path in args.notebooks:
        try:
            problems = rerun_problems(path)
        except FileNotFoundError as error:
            print(f"error: {error}", file=err)
            status = EXIT_PROBLEM
            continue
        verdict = f"{len(problems)} problem(s)" if problems else "survives repeated cells and its exercises"
        print(f"{path.name}: {verdict}", file=out)
        for problem in problems:
            print(f"  - {problem}", file=out)
        status |= EXIT_PROBLEM if problems else EXIT_OK
    return status


def _compare(args, out, err) -> int:
    from .rerun import sanitizer
    from .tolerance import RUN_ONLY, compare_notebooks

    try:
        committed, run = (json.loads(Path(path).read_text(encoding="utf-8")) for path in (args.committed, args.run))
    except (OSError, ValueError) as error:
        print(f"error: cannot read the notebooks ({error})", file=err)
        return EXIT_USAGE
    rows = compare_notebooks(committed, run, sanitizer())  # run times and addresses, as nbval replaces them
    print(f"{'cell':>4}  {'tolerance':24} {'words':6} {'max abs':>9} {'max rel':>8}  verdict", file=out)
    for row in rows:
        shown = row.tolerance if row.tolerance == RUN_ONLY else f"abs {row.tolerance.abs:g}, rel {row.tolerance.rel:g}"
        print(f"{row.number:>4}  {shown:24} {str(row.same_words):6} {row.largest_abs:9.4g} {row.largest_rel:8.2%}  "
              f"{row.verdict}", file=out)
    failing = sum(row.fails for row in rows)
    print(f"{failing} cell(s) would fail", file=out)
    return EXIT_PROBLEM if failing else EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kdutils.course",
                                     description="The classroom's tooling: one command, a subcommand per job.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="subcommand")

    commands.add_parser("machine", help="this machine beside the reference machine").set_defaults(handler=_machine)

    data = commands.add_parser("data", help="check, import, verify or download the datasets (offline labs)")
    data.add_argument("action", choices=("status", "import", "verify", "fetch"))
    data.add_argument("source", type=Path, nargs="?", help="for import: the folder with the raw IDX files")
    data.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist (default) or mnist")
    data.add_argument("--root", type=Path, default=None,
                      help="data folder (default: the repository's data/, or $KDUTILS_DATA_DIR)")
    data.set_defaults(handler=_data)

    edition = commands.add_parser("edition", help="write the student edition (notebooks/student/)")
    edition.add_argument("--check", action="store_true", help="only check that the student edition is up to date")
    edition.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="the instructor notebooks' folder")
    edition.set_defaults(handler=_edition)

    grading = commands.add_parser("grade", help="grade a class's notebooks: verdicts, gradebook and feedback")
    grading.add_argument("submissions", type=Path, help="a folder with <student>.ipynb or <student>/*.ipynb")
    grading.add_argument("--release", type=Path, default=Path("notebooks/student"),
                         help="the student edition as handed out (notebooks/student)")
    grading.add_argument("--out", type=Path, default=Path("grades"),
                         help="the folder for verdicts.csv, gradebook.csv and feedback/ (grades)")
    grading.add_argument("--timeout", type=float, default=600.0, help="seconds any one cell may run (600)")
    grading.add_argument("--total-timeout", type=float, default=1800.0,
                         help="seconds one submission may run in all (1800)")
    grading.add_argument("--memory", type=int, default=8192,
                         help="megabytes of address space per submission, Linux and macOS only (8192; 0: no limit)")
    grading.set_defaults(handler=_grade)

    for name, handler, what in (("answers", _answers, "run the worked answers after their notebook"),
                                ("rerun", _rerun, "run cells twice and after the exercises, compare the outputs")):
        command = commands.add_parser(name, help=what)
        command.add_argument("notebooks", nargs="+", type=Path, help="notebooks/NN_*.ipynb files")
        command.set_defaults(handler=handler)

    compare = commands.add_parser("compare", help="a run's numbers against the committed ones, within tolerances")
    compare.add_argument("committed", type=Path, help="the committed notebook")
    compare.add_argument("run", type=Path, help="the same notebook executed on another machine")
    compare.set_defaults(handler=_compare)

    # setup-cell parses its own arguments (kdutils.course.setup_cell); listed here for --help.
    commands.add_parser("setup-cell", help="write or check the set-up cell and open-in links (apply|check|readme)",
                        add_help=False)
    return parser


def main(argv: list[str] | None = None, out=None, err=None) -> int:
    """Run one subcommand; return its exit code (0 all well, 1 a problem found, 2 a usage error)."""
    out, err = out or sys.stdout, err or sys.stderr
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["setup-cell"]:
        from .setup_cell import main as setup_cell_main

        return setup_cell_main(arguments[1:])
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse's usage errors, and --help
        return int(exit_.code or 0)
    if args.command == "data" and (args.action == "import") != (args.source is not None):
        print("error: give the source folder for 'data import', and only for it", file=err)
        return EXIT_USAGE
    return args.handler(args, out, err)
