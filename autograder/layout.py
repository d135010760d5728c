"""Where things live: the repository's notebooks and the grading workspace.

solutions/<id>/<id>.ipynb is nbgrader's source, notebooks/<id>/<id>.ipynb its release;
the workspace (gradebook, submitted/, autograded/, feedback/) sits outside the
tracked tree, in ``.workspace/`` by default (ignored by git) or wherever
``--workspace`` / ``COURSE_WORKSPACE`` points.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO_ROOT / "solutions"
NOTEBOOKS = REPO_ROOT / "notebooks"
DEFAULT_WORKSPACE = REPO_ROOT / ".workspace"

# A notebook id is its folder and file name: two digits, underscore, topic.
NOTEBOOK_ID = re.compile(r"^\d\d_[a-z0-9_]+$")


def workspace_dir(path: str | os.PathLike | None = None) -> Path:
    """The grading workspace: an explicit path, $COURSE_WORKSPACE, or .workspace/."""
    chosen = path or os.environ.get("COURSE_WORKSPACE") or DEFAULT_WORKSPACE
    return Path(chosen).expanduser().resolve()


def notebook_ids() -> list[str]:
    """Every notebook of the course, in order, as found in solutions/."""
    return sorted(
        p.name for p in SOLUTIONS.iterdir()
        if p.is_dir() and NOTEBOOK_ID.match(p.name) and (p / f"{p.name}.ipynb").exists()
    ) if SOLUTIONS.exists() else []


def resolve_ids(requested: list[str] | None) -> list[str]:
    """Expand user-given ids ('01', '01_game_theory') to full notebook ids, or exit clearly."""
    known = notebook_ids()
    if not requested:
        return known
    resolved = []
    for name in requested:
        name = Path(name).stem if name.endswith(".ipynb") else name.rstrip("/").split("/")[-1]
        matches = [k for k in known if k == name or k.startswith(name + "_") or k[:2] == name]
        if len(matches) != 1:
            raise SystemExit(
                f"error: unknown notebook {name!r}; expected one of: {', '.join(known) or '(none)'}"
            )
        resolved.append(matches[0])
    return resolved


def source_notebook(nb_id: str) -> Path:
    return SOLUTIONS / nb_id / f"{nb_id}.ipynb"


def release_notebook(nb_id: str) -> Path:
    return NOTEBOOKS / nb_id / f"{nb_id}.ipynb"
