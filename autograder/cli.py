"""The `course` command: release, check, grade and demo the kit.

    course release [NB...] [--check]   regenerate notebooks/ from solutions/ (or check it is current)
    course check [NB...]               solutions earn full marks, releases earn none
    course grade SUBMISSIONS           grade a folder or LMS zip: feedback + grades.csv
    course feedback                    feedback pages again from the gradebook (after hand-grading)
    course export [--format F]         grades.csv (or an LMS's import file) from the gradebook
    course demo                        grade a generated sample class end to end
    course lab [JUPYTER OPTIONS]       JupyterLab for the course: notebooks/ and the formgrader
    course train | eval | watch        train, evaluate and watch the algorithms (autograder/agents.py)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from autograder.layout import REPO_ROOT, notebook_ids, resolve_ids, workspace_dir


def _prepare_environment() -> None:
    # Notebooks run their quick budget under the grader; keep Jupyter's path warnings away.
    os.environ.setdefault("COURSE_QUICK", "1")
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def _table(rows: list[list], headers: list[str]) -> str:
    cells = [[str(x) for x in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _points(x: float) -> str:
    return f"{x:g}"


def cmd_release(args) -> int:
    from autograder.release import release, stale_notebooks

    ids = resolve_ids(args.notebooks)
    if args.check:
        problems = stale_notebooks(ids)
        for nb_id, reason in problems:
            print(f"stale: {nb_id}: {reason}; run `course release {nb_id}`")
        if not problems:
            print(f"notebooks/ is current for {len(ids)} notebook(s)")
        return 1 if problems else 0
    for path in release(ids, workspace_dir(args.workspace)):
        print(f"released {path.relative_to(REPO_ROOT)}")
    return 0


def cmd_check(args) -> int:
    from autograder.check import check_notebook

    rows = []
    for nb_id in resolve_ids(args.notebooks):
        print(f"checking {nb_id} ...", flush=True)
        rows.append(check_notebook(nb_id))
    print(_table([[r.notebook, f"{_points(r.solution_score)}/{_points(r.max_score)}",
                   f"{_points(r.release_score)}/{_points(r.max_score)}", f"{r.seconds:.1f}",
                   "ok" if r.ok else "FAIL"] for r in rows],
                 ["notebook", "solution", "release", "seconds", "status"]))
    for r in rows:
        for failure in r.failures:
            print(f"FAIL {r.notebook}: {failure}")
    return 0 if rows and all(r.ok for r in rows) else 1


def print_class_summary(result) -> None:
    totals = result.totals()
    rows = [[student, result.names.get(student, ""), f"{_points(t.auto_score)}/{_points(t.auto_max)}",
             _points(t.awaiting) if t.awaiting else "-", t.notes or "ok"]
            for student, t in totals.iterrows()]
    print(_table(rows, ["student", "name", "autograded", "to hand-grade", "notes"]))
    if result.seconds:
        per = sum(result.seconds.values()) / len(result.seconds)
        print(f"\n{len(result.seconds)} notebook(s) autograded, {per:.1f} s each")
    print(f"grades:   {result.csv_path} (every student of the gradebook)")
    print(f"feedback: {result.feedback_dir}/<student>/<notebook>/<notebook>.html")


def _settings(args):
    from autograder.execution import Settings
    from autograder.sandbox import Limits

    limits = Limits(memory_mb=args.memory_mb, wall_seconds=args.time_limit, cell_seconds=args.cell_timeout)
    return Settings(sandboxed=not args.no_sandbox, limits=limits)


def cmd_grade(args) -> int:
    from autograder.grading import grade_class

    source = Path(args.submissions).expanduser().resolve()
    if not source.exists():
        print(f"error: {source} does not exist; expected a folder of <student>/<notebook>.ipynb or a zip")
        return 2
    ids = resolve_ids(args.notebooks) if args.notebooks else None
    result = grade_class(source, workspace_dir(args.workspace), ids, workers=args.workers, settings=_settings(args))
    print_class_summary(result)
    return 0


def cmd_export(args) -> int:
    from autograder.grading import export_from_gradebook
    from autograder.grades import export_lms

    workspace = workspace_dir(args.workspace)
    path = export_from_gradebook(workspace)
    print(f"grades: {path}")
    if args.format != "csv":
        paths, incomplete = export_lms(workspace, args.format)
        for lms_file in paths:
            print(f"{args.format}: {lms_file}")
        if incomplete:
            print(f"left empty (hand grading not finished): {', '.join(incomplete)}")
    return _feedback(workspace, args.workers)


def _feedback(workspace: Path, workers: int | None) -> int:
    from autograder.feedback import regenerate
    from autograder.grading import usable_cpus

    pages, failed = regenerate(workspace, workers or usable_cpus())
    print(f"feedback: {len(pages)} page(s) in {workspace / 'feedback'}")
    for student, nb_id, why in failed:
        print(f"no feedback page for {student} {nb_id}: {why}")
    return 1 if failed else 0


def cmd_feedback(args) -> int:
    return _feedback(workspace_dir(args.workspace), args.workers)


def cmd_demo(args) -> int:
    from autograder.grading import grade_class
    from autograder.sample_class import write_sample_class

    ids = resolve_ids(args.notebooks) if args.notebooks else notebook_ids()[:1]
    workspace = workspace_dir(args.workspace) / "demo"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sample-class-") as tmp:
        students = write_sample_class(Path(tmp), ids)
        print(f"sample class for {', '.join(ids)}:")
        for student, what in students.items():
            print(f"  {student:12s} {what}")
        result = grade_class(Path(tmp), workspace, ids, workers=args.workers, settings=_settings(args))
    print()
    print_class_summary(result)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return 0


def cmd_lab(args) -> int:
    from autograder.lab import main as lab

    return lab(workspace_dir(args.workspace), args.jupyter_options)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    from autograder.sandbox import Limits

    p.add_argument("--workers", type=int, default=None, help="submissions graded at once (default: one per CPU)")
    p.add_argument("--cell-timeout", type=int, default=Limits.cell_seconds,
                   help=f"seconds per cell (default {Limits.cell_seconds})")
    p.add_argument("--time-limit", type=int, default=Limits.wall_seconds,
                   help=f"seconds per notebook (default {Limits.wall_seconds:g})")
    p.add_argument("--memory-mb", type=int, default=Limits.memory_mb,
                   help=f"memory per submission (default {Limits.memory_mb})")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run submissions without bubblewrap (limits and time-outs still apply); "
                        "only for code you trust")


WORKSPACE_HELP = "grading workspace (default: .workspace/ or $COURSE_WORKSPACE)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", help=WORKSPACE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        # --workspace also after the command (`course grade DIR --workspace WS`); SUPPRESS
        # keeps a value given before the command when none is given after it.
        p.add_argument("--workspace", default=argparse.SUPPRESS, help=WORKSPACE_HELP)
        return p

    p = command("release", "regenerate notebooks/ from solutions/")
    p.add_argument("notebooks", nargs="*", help="notebook ids (default: all)")
    p.add_argument("--check", action="store_true", help="exit 1, naming the notebook, if notebooks/ is stale")
    p.set_defaults(func=cmd_release)

    p = command("check", "solutions earn full marks, blank releases none")
    p.add_argument("notebooks", nargs="*", help="notebook ids (default: all)")
    p.set_defaults(func=cmd_check)

    p = command("grade", "autograde a folder or LMS zip of submissions")
    p.add_argument("submissions", help="folder of <student>/<NN_topic>.ipynb, or a zip")
    p.add_argument("--notebooks", nargs="*",
                   help="the notebooks the class was given: every student is graded on these "
                        "(default: each student's own, plus those most of the class handed in)")
    _add_run_options(p)
    p.set_defaults(func=cmd_grade)

    p = command("feedback", "render the feedback pages again from the gradebook (after hand-grading)")
    p.add_argument("--workers", type=int, default=None, help="pages rendered at once (default: one per CPU)")
    p.set_defaults(func=cmd_feedback)

    p = command("export", "write grades.csv from the gradebook, the feedback pages again, and an LMS's import file")
    p.add_argument("--format", choices=["csv", "moodle", "canvas"], default="csv",
                   help="also write the LMS's own grade-import file: moodle (a grading worksheet per "
                        "notebook, moodle-<NB>.csv) or canvas (canvas.csv); default: grades.csv only")
    p.add_argument("--workers", type=int, default=None, help="pages rendered at once (default: one per CPU)")
    p.set_defaults(func=cmd_export)

    p = command("demo", "grade a generated sample class end to end")
    p.add_argument("--notebooks", nargs="*", help="notebooks in the sample class (default: the first)")
    _add_run_options(p)
    p.set_defaults(func=cmd_demo)

    p = command("lab", "JupyterLab for the course (notebooks/, the formgrader on the workspace)")
    p.add_argument("jupyter_options", nargs=argparse.REMAINDER, help="passed on to jupyter lab (e.g. --port 8890)")
    p.set_defaults(func=cmd_lab)

    from autograder.agents import add_commands
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    _prepare_environment()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
