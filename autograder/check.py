"""`course check`: each solution must earn every autograded point, each release none.

Both run through the same grading path a class goes through (quick mode).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.grading import grade_class
from autograder.layout import release_notebook, source_notebook


@dataclass
class CheckRow:
    notebook: str
    solution_score: float
    release_score: float
    max_score: float
    seconds: float
    failures: list[str]

    @property
    def ok(self) -> bool:
        return not self.failures


def check_notebook(nb_id: str) -> CheckRow:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"check-{nb_id}-") as tmp:
        class_dir = Path(tmp) / "class"
        for student, notebook in (("solution", source_notebook(nb_id)), ("release", release_notebook(nb_id))):
            (class_dir / student).mkdir(parents=True)
            if notebook.exists():
                shutil.copyfile(notebook, class_dir / student / f"{nb_id}.ipynb")
        result = grade_class(class_dir, Path(tmp) / "workspace", [nb_id])
    totals = result.totals()
    failures = [f"{p.student}: {p.reason}" for p in result.problems]
    sol = totals.loc["solution"] if "solution" in totals.index else None
    rel = totals.loc["release"] if "release" in totals.index else None
    max_score = float(sol.auto_max) if sol is not None else 0.0
    if max_score == 0:
        failures.append("the notebook has no autograded points")
    if sol is not None and sol.auto_score < sol.auto_max:
        lost = result.grades.query("student == 'solution' and kind == 'auto' and score < max_score")
        failures.append("solution loses points on " + ", ".join(lost.question))
    if rel is not None and rel.auto_score > 0:
        won = result.grades.query("student == 'release' and kind == 'auto' and score > 0")
        failures.append("blank release earns points on " + ", ".join(won.question))
    return CheckRow(nb_id, float(sol.auto_score) if sol is not None else 0.0,
                    float(rel.auto_score) if rel is not None else 0.0, max_score,
                    time.perf_counter() - start, failures)
