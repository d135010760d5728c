"""Run one sanitized submission in the sandbox and read back what ran.

Executing happens in a worker process (autograder/worker.py) forked by a fork server
inside the bubblewrap sandbox, so the grader itself never runs student code. The
kernel gets the notebook without its hidden test code; the worker judges the answers
those tests name through the kernel's guard and reports each cell as it finishes.
:func:`execute` is the body of the SandboxedExecute preprocessor
(autograder/preprocessors.py); the verdicts come after it, from the Rejudge step."""
from __future__ import annotations

import ast
import functools
import json
import re
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder import judging, sandbox
from autograder.cells import is_test_cell, nbgrader_meta, parse_python
from autograder.session import SessionPool, preload_modules
from autograder.worker import IGNORED_INTERRUPT
from autograder.layout import DEFAULT_WORKSPACE, SOLUTIONS, source_notebook
from autograder.preprocessors import SKIP_TAG


@dataclass
class Settings:
    """How submissions are run: sandbox or not, the limits (their defaults: sandbox.Limits),
    and whether demo cells the author tagged are skipped."""

    sandboxed: bool = True
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    skip_demos: bool = True

    @property
    def cell_timeout(self) -> int:
        return self.limits.cell_seconds


@dataclass
class Execution:
    notebook: NotebookNode
    note: str | None  # one line for the summary when the run went wrong, else None
    seconds: float
    calls: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # judged calls per test cell
    judged: dict[int, list[dict]] = field(default_factory=dict)  # what the worker reported for them
    seed: int = 0


@dataclass
class Demos:
    """The cells an author tagged as skippable, and the names they define."""

    cells: set[str]
    names: set[str]


def _top_level_names(source: str) -> set[str]:
    try:
        tree = parse_python(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


@functools.lru_cache(maxsize=None)
def demo_cells(nb_id: str) -> Demos:
    """Locked, ungraded code cells of the source tagged as skippable while grading."""
    nb = nbformat.read(source_notebook(nb_id), as_version=4)
    cells = [c for c in nb.cells
             if c.cell_type == "code" and SKIP_TAG in c.metadata.get("tags", [])
             and nbgrader_meta(c).get("locked") and not nbgrader_meta(c).get("grade")
             and not nbgrader_meta(c).get("solution")]
    return Demos({nbgrader_meta(c)["grade_id"] for c in cells},
                 set().union(*(_top_level_names(c.source) for c in cells)) if cells else set())


def prepare_scratch(scratch: Path, nb: NotebookNode, nb_id: str, folder: Path) -> Path:
    """The folder the notebook runs in: the student's extra files, then the course's.

    The folder is emptied, not replaced: it is mounted into the running sandbox. Files
    are handed to the folder's owner (the sandbox's uid when the grader is root).
    """
    scratch.mkdir(parents=True, exist_ok=True)
    for entry in scratch.iterdir():
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for extra in folder.iterdir() if folder.is_dir() else []:  # the files handed in with the notebook
        if extra.is_file() and extra.suffix != ".ipynb":
            try:
                shutil.copyfile(extra, scratch / extra.name)
            except OSError:  # an unreadable file costs only itself
                continue
    for data in (SOLUTIONS / nb_id).iterdir():  # course files win over students' copies
        if data.is_file() and data.suffix != ".ipynb":
            shutil.copyfile(data, scratch / data.name)
    target = scratch / f"{nb_id}.ipynb"
    nbformat.write(nb, target)
    owner = scratch.stat()
    if os.geteuid() == 0 and owner.st_uid != 0:
        for entry in scratch.iterdir():
            os.chown(entry, owner.st_uid, owner.st_gid)
    return target


def _merge(nb: NotebookNode, stdout: str, judged: dict[int, list[dict]]) -> str | None:
    """Copy the worker's reported cells into ``nb`` (and their judged calls into ``judged``);
    return the worker's fatal error, if any."""
    fatal = None
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
            if "fatal" in record:
                fatal = str(record["fatal"])[:200]
                continue
            if "index" not in record:
                continue
            cell = nb.cells[int(record["index"])]
            outputs = [nbformat.from_dict(o) for o in record["outputs"]]
            for output in outputs:
                nbformat.validator.validate(output, ref="output", version=4, version_minor=5)
        except Exception:  # noqa: BLE001 - untrusted data: skip what does not parse
            continue
        if cell.cell_type == "code":
            if record.get("status") != "ok" and not any(o.get("output_type") == "error" for o in outputs):
                outputs.append(nbformat.v4.new_output("error", ename="NoReply", evalue="the cell did not finish",
                                                      traceback=["NoReply: the cell did not finish"]))
            cell.outputs = outputs
            cell.execution_count = record.get("execution_count") or 0  # reported means it ran
            if isinstance(record.get("judged"), list):
                judged[int(record["index"])] = record["judged"]
    return fatal


SANDBOX_ENV = {"COURSE_QUICK": "1", "NBGRADER_EXECUTION": "autograde", "MPLBACKEND": "Agg",
               "PYDEVD_DISABLE_FILE_VALIDATION": "1", "OMP_NUM_THREADS": "1"}


def sessions(workspace: Path, settings: Settings, nb_ids: list[str]) -> SessionPool:
    """Fork servers for a grading run, hiding the reference solutions, this run's
    workspace (gradebook, other students) and the default workspace of earlier runs
    (outside what the sandbox lets through anyway, unless they lie inside it)."""
    hide = [p for p in (SOLUTIONS, workspace, DEFAULT_WORKSPACE) if p.exists()]
    sources = [source_notebook(nb_id) for nb_id in nb_ids]
    cases = [m for path in sources for m in judging.case_modules(judging.kernel_copy(nbformat.read(path, 4))[1])]
    preload = preload_modules(sources) + sorted(set(cases))
    return SessionPool(workspace, hide, settings.limits, SANDBOX_ENV, preload, settings.sandboxed)


def execute(nb: NotebookNode, nb_id: str, student: str, workspace: Path, pool: SessionPool, folder: Path,
            settings: Settings) -> Execution:
    """Run a sanitized submission with the demos skipped; again in full if a test missed a
    name that only a skipped demo cell defines. ``folder`` holds the files handed in with it."""
    demos = demo_cells(nb_id)
    seed = judging.student_seed(workspace, student, nb_id)
    skip = settings.skip_demos and bool(demos.cells)
    done = run(nb, nb_id, pool, folder, settings, skip_demos=skip, judge_seed=seed)
    if skip and needs_full_run(done.notebook, demos):
        full = run(nb, nb_id, pool, folder, settings, skip_demos=False, judge_seed=seed)
        full.seconds += done.seconds
        done = full
    return done


def run(nb: NotebookNode, nb_id: str, pool: SessionPool, folder: Path,
        settings: Settings, skip_demos: bool, judge_seed: int = 0) -> Execution:
    """Execute ``nb`` in a sandboxed fork server; return it with its outputs and the judged records."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))  # our own copy
    if not skip_demos:
        for cell in nb.cells:
            if SKIP_TAG in cell.metadata.get("tags", []):
                cell.metadata["tags"].remove(SKIP_TAG)
    session = pool.get()
    visible, calls = judging.kernel_copy(nb)
    target = prepare_scratch(session.scratch, visible, nb_id, folder)
    limits = settings.limits
    started = time.monotonic()
    outcome = session.execute(target.name, cell_timeout=settings.cell_timeout, skip_tag=SKIP_TAG,
                              wall_seconds=limits.wall_seconds, env={}, seed=judge_seed,
                              judged={i: [c for c in pairs if c[0]] for i, pairs in calls.items()})
    finished = outcome.finished or {}
    judged: dict[int, list[dict]] = {}
    fatal = _merge(nb, outcome.stdout, judged)
    note = None
    timeouts = [i for i, c in enumerate(nb.cells) for o in c.get("outputs", [])
                if o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError"]
    if finished.get("timed_out"):
        note = f"stopped at the notebook time limit ({limits.wall_seconds:g} s)"
    elif outcome.problem and not outcome.output_truncated:
        note = f"stopped: {outcome.problem}"
    elif fatal and IGNORED_INTERRUPT in fatal and timeouts:
        note = (f"cell {timeouts[-1] + 1} ran past the {settings.cell_timeout} s cell time limit and "
                f"{IGNORED_INTERRUPT}; the cells after it did not run")
    elif fatal:
        note = f"the kernel died ({fatal})"
    elif finished and finished.get("status") != "exit 0":
        note = f"the grading worker ended with {finished.get('status')}"
    if timeouts and not note:
        note = f"cell {timeouts[0] + 1} ran past the {settings.cell_timeout} s cell time limit and was interrupted"
    if outcome.output_truncated:
        note = (note + "; " if note else "") + "output over the limit was dropped"
    return Execution(nb, note, time.monotonic() - started, calls, judged, judge_seed)


NAME_ERROR = re.compile(r"name '(\w+)' is not defined")


def needs_full_run(nb: NotebookNode, demos: Demos) -> bool:
    """Did a test fail for a name that only a skipped demo cell defines? Then run it all."""
    for cell in nb.cells:
        for output in cell.get("outputs", []) if is_test_cell(cell) else []:
            match = NAME_ERROR.search(str(output.get("evalue", ""))) if output.get("ename") == "NameError" else None
            if match and match.group(1) in demos.names:
                return True
    return False
