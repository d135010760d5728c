"""Grading speed: `course grade` with 1 and 2 workers against plain `nbgrader autograde`.

All on the same class of notebook-01 submissions (perfect, partial and blank, in
turn), in one run. Marginal seconds per submission = (T(N) - T(w)) / (N - w) for w
workers (a first class of one submission per worker starts every worker's sandbox):
the cost of one more student once the run has started.

Speed-up is measured as in parallel computing, against one worker on one core (every
process of the run, the sandbox's included, held to one CPU): the serial cost. One
worker free to use both cores is measured too and its ratio reported beside it: that
worker already keeps more than one core busy (its kernel and nbclient overlap), so
part of the second core is used before a second worker starts. The ratio of the
whole class's times, start-up included, is reported as well. Each repeat runs the
three settings back to back, so they share the machine's drift, and the speed-ups
are the medians of the per-repeat ratios. Targets (issue: fast, parallel, sandboxed
grader): at most 2 s marginal per submission serially, at least 1.8x speed-up with
two workers on two cores. The shared host's speed drifts from minute to minute, hence
the repeats; the table gives each figure's range over them.

    .venv/bin/python bench/grading.py [--students 20] [--repeats 10]

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
from contextlib import contextmanager, nullcontext
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


@contextmanager
def one_core():
    """Hold this thread, and every thread and process it starts, to one CPU."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def time_course(root: Path, workers: int, single_core: bool = False) -> float:
    with one_core() if single_core else nullcontext(), tempfile.TemporaryDirectory(prefix="bench-ws-") as ws:
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
    rows = [("`course grade`, 1 worker held to 1 core, sandboxed", "course_1w_1core"),
            ("`course grade`, 1 worker on 2 cores, sandboxed", "course_1w"),
            ("`course grade`, 2 workers on 2 cores, sandboxed", "course_2w"),
            ("plain `nbgrader autograde` (no sandbox, one at a time)", "nbgrader")]

    def spread(key: str, field: str) -> str:
        values = [trial[field] for trial in t[key]["trials"]]
        median = statistics.median(values)
        return f"{median:.2f}" if len(values) == 1 else f"{median:.2f} ({min(values):.2f}–{max(values):.2f})"

    lines = [f"`bench/grading.py` grades the same class of {n} notebook-01 submissions (perfect, partial and",
             "blank in turn) four ways in one run; marginal seconds per submission =",
             f"(T({n}) − T(w)) / ({n} − w), where T(w) grades one submission per worker; `course grade` runs "
             f"{report['repeats']} times each way, the three settings back to back in each repeat, and the "
             "table gives the median (range) (results in `bench/results/grading.json`):", "",
             f"| grader | w | T(w) (s) | T({n}) (s) | marginal s / submission | "
             "machine CPU s / submission | cores busy |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {label} | {t[key]['first']} | {spread(key, 'first_s')} | {spread(key, 'class_s')} | "
              f"{spread(key, 'marginal_s')} | {spread(key, 'marginal_cpu_s')} | {spread(key, 'cores_busy')} |"
              for label, key in rows]
    targets = report["targets"]
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    speedups = report["speedups"]

    def ratio(key: str) -> str:
        values = speedups[key]
        return f"{statistics.median(values):.2f}× ({min(values):.2f}–{max(values):.2f})"

    lines += ["", f"Two workers on two cores grade each further submission {ratio('2w_over_1w_1core')} faster than "
              f"one worker on one core (speed-up as in parallel computing, against the serial run; "
              f"target ≥ {targets['speedup_2w']}×: {met(report['speedup_2w'] >= targets['speedup_2w'])}). "
              f"Against one worker free to use both cores the ratio is {ratio('2w_over_1w_2cores')}: that "
              f"worker already keeps {report['cores_busy_1w_2cores']:.2f} cores busy (its feedback page renders while "
              f"it runs its next submission, and its kernel and nbclient process overlap), and runs {ratio('1w_2cores_over_1w_1core')} faster than on one core. "
              f"The whole class of {n}, start-up included, is graded {report['speedup_2w_class']:.2f}× faster by "
              "two workers than by one on one core (each worker starts its own sandboxed fork server and "
              f"feedback renderer). One worker's serial marginal cost is {report['s_per_submission_1w']:.2f} s "
              f"(target ≤ {targets['s_per_submission_1w']:.0f} s: "
              f"{met(report['s_per_submission_1w'] <= targets['s_per_submission_1w'])}); "
              f"plain nbgrader costs {report['nbgrader_s_per_submission'] / report['s_per_submission_1w']:.1f}× "
              "as much per submission. Machine CPU seconds per further submission count every process "
              "(from /proc/stat); cores busy = those over the submission's seconds. Speed-ups are medians "
              f"(range) of the {report['repeats']} repeats' own ratios. Measured on {report['cores']} cores "
              f"({report['cpu']}), 1-minute load average {report['load_average_at_start']:.1f} at the start."]
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
    parser.add_argument("--repeats", type=int, default=10, help="runs of each `course grade` setting, interleaved")
    args = parser.parse_args()
    n = args.students
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("error: the grading bench needs at least 2 CPUs (it compares 1 and 2 workers)")
    graders = {"course_1w_1core": (1, lambda r: time_course(r, 1, single_core=True)),
               "course_1w": (1, lambda r: time_course(r, 1)), "course_2w": (2, lambda r: time_course(r, 2)),
               "nbgrader": (1, lambda r: time_nbgrader(r, sorted(p.name for p in r.iterdir())))}
    # The machine's speed drifts from minute to minute (shared cores): the course
    # settings run back to back in each repeat, so they see the same drift, and each
    # repeat gives its own ratios; nbgrader (slow) runs once.
    course = ["course_1w_1core", "course_1w", "course_2w"]
    order = course * args.repeats + ["nbgrader"]
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

    def per_repeat(over: str, under: str, field: str = "marginal_s") -> list[float]:
        return [a[field] / b[field] for a, b in zip(timings[over]["trials"], timings[under]["trials"])]

    speedups = {"2w_over_1w_1core": per_repeat("course_1w_1core", "course_2w"),
                "2w_over_1w_2cores": per_repeat("course_1w", "course_2w"),
                "1w_2cores_over_1w_1core": per_repeat("course_1w_1core", "course_1w"),
                "2w_over_1w_1core_class": per_repeat("course_1w_1core", "course_2w", "class_s")}
    report = {
        "benchmark": "grading",
        "notebook": NB,
        "students": n,
        "repeats": args.repeats,
        "seconds": timings,
        "definitions": {
            "s_per_submission_1w": "marginal seconds per submission, one worker, every process held to one core",
            "speedup_2w": "median over repeats of s_per_submission_1w / marginal seconds with two workers "
                          "on two cores",
            "speedup_2w_over_1w_2cores": "the same ratio against one worker free to use both cores",
            "speedup_2w_class": "the same ratio for the whole class's seconds, start-up included"},
        "s_per_submission_1w": median["course_1w_1core"]["marginal_s"],
        "s_per_submission_1w_2cores": median["course_1w"]["marginal_s"],
        "s_per_submission_2w": median["course_2w"]["marginal_s"],
        "speedup_2w": statistics.median(speedups["2w_over_1w_1core"]),
        "speedup_2w_over_1w_2cores": statistics.median(speedups["2w_over_1w_2cores"]),
        "speedup_2w_class": statistics.median(speedups["2w_over_1w_1core_class"]),
        "speedups": speedups,
        "nbgrader_s_per_submission": median["nbgrader"]["marginal_s"],
        "cpu_per_submission_1w": median["course_1w_1core"]["marginal_cpu_s"],
        "cpu_per_submission_1w_2cores": median["course_1w"]["marginal_cpu_s"],
        "cpu_per_submission_2w": median["course_2w"]["marginal_cpu_s"],
        "cores_busy_1w_2cores": median["course_1w"]["cores_busy"],
        "targets": {"s_per_submission_1w": 2.0, "speedup_2w": 1.8},
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "command": f"python bench/grading.py --students {n} --repeats {args.repeats}",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    TABLE.write_text(table(report))
    print(json.dumps({k: report[k] for k in ("s_per_submission_1w", "s_per_submission_1w_2cores",
                                             "s_per_submission_2w", "speedup_2w", "speedup_2w_over_1w_2cores",
                                             "speedup_2w_class", "nbgrader_s_per_submission")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
