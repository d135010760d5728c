"""Grading speed: `course grade` with 1 and 2 workers against plain `nbgrader autograde`.

All on the same class of notebook-01 submissions (perfect, partial and blank, in
turn), in one run. Marginal seconds per submission = (T(N) - T(w)) / (N - w) for w
workers (a first class of one submission per worker starts every worker's sandbox):
the cost of one more student once the run has started. The speed-up of two workers is
the ratio of those marginal costs (what a large class sees); the ratio of the whole
class's times, start-up included, is reported beside it. Targets (issue: fast,
parallel, sandboxed grader): at most 2 s marginal per submission with one worker, at
least 1.8x speed-up with two workers on two cores.

    .venv/bin/python bench/grading.py [--students 20] [--repeats 3]

Writes bench/results/grading.json and the README table bench/README_grading.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
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

    def spread(key: str, field: str) -> str:
        values = [trial[field] for trial in t[key]["trials"]]
        median = statistics.median(values)
        return f"{median:.2f}" if len(values) == 1 else f"{median:.2f} ({min(values):.2f}–{max(values):.2f})"

    lines = [f"`bench/grading.py` grades the same class of {n} notebook-01 submissions (perfect, partial and",
             "blank in turn) three ways in one run; marginal seconds per submission =",
             f"(T({n}) − T(w)) / ({n} − w), where T(w) grades one submission per worker; `course grade` runs "
             f"{report['repeats']} times each way, interleaved, and the table gives the median (range) "
             "(results in `bench/results/grading.json`):", "",
             f"| grader | w | T(w) (s) | T({n}) (s) | marginal s / submission | "
             "machine CPU s / submission | cores busy |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {label} | {t[key]['first']} | {spread(key, 'first_s')} | {spread(key, 'class_s')} | "
              f"{spread(key, 'marginal_s')} | {spread(key, 'marginal_cpu_s')} | {spread(key, 'cores_busy')} |"
              for label, key in rows]
    targets = report["targets"]
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    lines += ["", f"Two workers grade each further submission {report['speedup_2w']:.2f}× faster than one "
              f"(target ≥ {targets['speedup_2w']}×: {met(report['speedup_2w'] >= targets['speedup_2w'])}), "
              f"and this class of {n}, start-up included, {report['speedup_2w_class']:.2f}× faster "
              "(each worker starts its own sandboxed fork server and feedback renderer); "
              f"one worker's marginal cost is {report['s_per_submission_1w']:.2f} s "
              f"(target ≤ {targets['s_per_submission_1w']:.0f} s: "
              f"{met(report['s_per_submission_1w'] <= targets['s_per_submission_1w'])}); "
              f"plain nbgrader costs {report['nbgrader_s_per_submission'] / report['s_per_submission_1w']:.1f}× "
              f"as much per submission. Machine CPU seconds per further submission count every process "
              f"(from /proc/stat), cores busy = those over its seconds: one worker already keeps "
              f"{report['cores_busy_1w']:.1f} cores busy, and two workers cost "
              f"{report['cpu_per_submission_2w'] / report['cpu_per_submission_1w']:.2f}× the CPU per submission "
              f"of one. Measured on {report['cores']} cores ({report['cpu']}), "
              f"1-minute load average {report['load_average_at_start']:.1f} at the start."]
    return "\n".join(lines) + "\n"


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (all processes: sandboxes, renderers, us)."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def trial(first: int, func, first_class: Path, whole_class: Path, n: int) -> dict:
    cpu0 = machine_cpu_seconds()
    first_s = func(first_class)
    cpu1 = machine_cpu_seconds()
    class_s = func(whole_class)
    cpu2 = machine_cpu_seconds()
    marginal_cpu = ((cpu2 - cpu1) - (cpu1 - cpu0)) / (n - first)
    marginal_s = (class_s - first_s) / (n - first)
    return {"first_s": first_s, "class_s": class_s, "marginal_s": marginal_s,
            "marginal_cpu_s": marginal_cpu, "cores_busy": marginal_cpu / marginal_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each `course grade` setting, interleaved")
    args = parser.parse_args()
    n = args.students
    graders = {"course_1w": (1, lambda r: time_course(r, 1)), "course_2w": (2, lambda r: time_course(r, 2)),
               "nbgrader": (1, lambda r: time_nbgrader(r, sorted(p.name for p in r.iterdir())))}
    # The machine's speed drifts from minute to minute (shared cores): the two course
    # settings alternate, so both see the same drift; nbgrader (slow) runs once.
    order = ["course_1w", "course_2w"] * args.repeats + ["nbgrader"]
    timings = {label: {"first": first, "trials": []} for label, (first, _) in graders.items()}
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        whole_class = Path(tmp) / "class"
        write_class(whole_class, n)
        for label in order:
            first, func = graders[label]
            first_class = Path(tmp) / f"first-{first}"
            if not first_class.exists():
                write_class(first_class, first)
            result = trial(first, func, first_class, whole_class, n)
            timings[label]["trials"].append(result)
            print(f"{label:10s} T({first}) {result['first_s']:6.1f} s   T({n}) {result['class_s']:6.1f} s   "
                  f"marginal {result['marginal_s']:.2f} s, {result['marginal_cpu_s']:.2f} CPU s", flush=True)
    median = {label: {field: statistics.median(t[field] for t in timing["trials"])
                      for field in ("first_s", "class_s", "marginal_s", "marginal_cpu_s", "cores_busy")}
              for label, timing in timings.items()}
    report = {
        "benchmark": "grading",
        "notebook": NB,
        "students": n,
        "repeats": args.repeats,
        "seconds": timings,
        "s_per_submission_1w": median["course_1w"]["marginal_s"],
        "s_per_submission_2w": median["course_2w"]["marginal_s"],
        "speedup_2w": median["course_1w"]["marginal_s"] / median["course_2w"]["marginal_s"],
        "speedup_2w_class": median["course_1w"]["class_s"] / median["course_2w"]["class_s"],
        "nbgrader_s_per_submission": median["nbgrader"]["marginal_s"],
        "cpu_per_submission_1w": median["course_1w"]["marginal_cpu_s"],
        "cpu_per_submission_2w": median["course_2w"]["marginal_cpu_s"],
        "cores_busy_1w": median["course_1w"]["cores_busy"],
        "targets": {"s_per_submission_1w": 2.0, "speedup_2w": 1.8},
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "command": f"python bench/grading.py --students {n} --repeats {args.repeats}",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    TABLE.write_text(table(report))
    print(json.dumps({k: report[k] for k in ("s_per_submission_1w", "s_per_submission_2w", "speedup_2w",
                                             "speedup_2w_class", "nbgrader_s_per_submission")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
