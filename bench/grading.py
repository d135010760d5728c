"""Grading speed: `course grade` with 1 and 2 workers against plain `nbgrader autograde`.

All on the same class of notebook-01 submissions (perfect, partial and blank, in
turn), in one run. Marginal seconds per submission = (T(N) - T(1)) / (N - 1): the
cost of one more student once the run has started. Targets (issue: fast, parallel,
sandboxed grader): at most 2 s marginal per submission with one worker, at least
1.8x speed-up with two workers on two cores.

    .venv/bin/python bench/grading.py [--students 20]

Writes bench/results/grading.json and the README table bench/README_grading.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autograder.grading import grade_class  # noqa: E402
from autograder.layout import release_notebook, source_notebook  # noqa: E402
from autograder.sample_class import partial, perfect  # noqa: E402

NB = "01_game_theory"
RESULTS = Path(__file__).resolve().parent / "results" / "grading.json"
TABLE = Path(__file__).resolve().parent / "README_grading.md"


def write_class(root: Path, students: int) -> list[str]:
    makers = [perfect, partial, lambda nb: nbformat.read(release_notebook(nb), as_version=4)]
    names = []
    for i in range(students):
        name = f"student{i:03d}"
        (root / name).mkdir(parents=True)
        nbformat.write(makers[i % 3](NB), root / name / f"{NB}.ipynb")
        names.append(name)
    return names


def time_course(root: Path, workers: int) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as ws:
        start = time.perf_counter()
        result = grade_class(root, Path(ws), [NB], workers=workers)
        seconds = time.perf_counter() - start
    assert not result.problems, result.problems
    return seconds


def time_nbgrader(root: Path, students: list[str]) -> float:
    """Plain nbgrader: its own course folder, default settings, `nbgrader autograde`."""
    with tempfile.TemporaryDirectory(prefix="bench-nbgrader-") as tmp:
        course = Path(tmp)
        (course / "source" / NB).mkdir(parents=True)
        shutil.copyfile(source_notebook(NB), course / "source" / NB / f"{NB}.ipynb")
        (course / "nbgrader_config.py").write_text(
            "c = get_config()\nc.CourseDirectory.root = %r\nc.CourseDirectory.db_url = 'sqlite:///%s/gradebook.db'\n"
            % (str(course), str(course)))
        bin_dir = Path(sys.executable).parent
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "COURSE_QUICK": "1"}
        nbgrader = [sys.executable, "-m", "nbgrader"]
        subprocess.run(nbgrader + ["generate_assignment", NB, "--force"], cwd=course, env=env,
                       check=True, capture_output=True)
        for student in students:
            target = course / "submitted" / student / NB
            target.mkdir(parents=True)
            shutil.copyfile(root / student / f"{NB}.ipynb", target / f"{NB}.ipynb")
        start = time.perf_counter()
        subprocess.run(nbgrader + ["autograde", NB, "--create", "--force"], cwd=course, env=env,
                       check=True, capture_output=True)
        return time.perf_counter() - start


def table(report: dict) -> str:
    """The README's grading-speed table, from this run's numbers."""
    n, t = report["students"], report["seconds"]
    rows = [("`course grade`, 1 worker, sandboxed", "course_1w"), ("`course grade`, 2 workers, sandboxed", "course_2w"),
            ("plain `nbgrader autograde` (no sandbox, one at a time)", "nbgrader")]
    marginal = {"course_1w": report["s_per_submission_1w"], "course_2w": report["s_per_submission_2w"],
                "nbgrader": report["nbgrader_s_per_submission"]}
    lines = [f"`bench/grading.py` grades the same class of {n} notebook-01 submissions (perfect, partial and",
             "blank in turn) three ways in one run; marginal seconds per submission =",
             f"(T({n}) − T(1)) / {n - 1} (results in `bench/results/grading.json`):", "",
             f"| grader | 1 submission (s) | {n} submissions (s) | marginal s / submission |",
             "|---|---:|---:|---:|"]
    lines += [f"| {label} | {t[key]['one']:.1f} | {t[key]['many']:.1f} | {marginal[key]:.2f} |" for label, key in rows]
    targets = report["targets"]
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    lines += ["", f"Two workers grade the class {report['speedup_2w']:.2f}× faster than one "
              f"(target ≥ {targets['speedup_2w']}×: {met(report['speedup_2w'] >= targets['speedup_2w'])}); "
              f"one worker's marginal cost is {report['s_per_submission_1w']:.2f} s "
              f"(target ≤ {targets['s_per_submission_1w']:.0f} s: "
              f"{met(report['s_per_submission_1w'] <= targets['s_per_submission_1w'])}); "
              f"plain nbgrader costs {report['nbgrader_s_per_submission'] / report['s_per_submission_1w']:.1f}× "
              f"as much per submission. Measured on {report['cores']} cores ({report['cpu']}), "
              f"1-minute load average {report['load_average_at_start']:.1f} at the start."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    args = parser.parse_args()
    n = args.students
    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        one, many = Path(tmp) / "one", Path(tmp) / "many"
        write_class(one, 1)
        names = write_class(many, n)
        timings = {}
        for label, func in [("course_1w", lambda r: time_course(r, 1)), ("course_2w", lambda r: time_course(r, 2)),
                            ("nbgrader", lambda r: time_nbgrader(r, sorted(p.name for p in r.iterdir())))]:
            timings[label] = {"one": func(one), "many": func(many)}
            print(f"{label:10s} 1 submission {timings[label]['one']:6.1f} s   {n} submissions {timings[label]['many']:6.1f} s",
                  flush=True)
    marginal = {k: (t["many"] - t["one"]) / (n - 1) for k, t in timings.items()}
    report = {
        "benchmark": "grading",
        "notebook": NB,
        "students": n,
        "seconds": timings,
        "s_per_submission_1w": marginal["course_1w"],
        "s_per_submission_2w": marginal["course_2w"],
        "speedup_2w": timings["course_1w"]["many"] / timings["course_2w"]["many"],
        "nbgrader_s_per_submission": marginal["nbgrader"],
        "targets": {"s_per_submission_1w": 2.0, "speedup_2w": 1.8},
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
        "command": "python bench/grading.py --students %d" % n,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    TABLE.write_text(table(report))
    print(json.dumps({k: report[k] for k in ("s_per_submission_1w", "s_per_submission_2w", "speedup_2w",
                                             "nbgrader_s_per_submission")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
