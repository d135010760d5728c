"""`course lab`: JupyterLab for the course, its formgrader on the grading workspace.

JupyterLab runs from the repository root, so nbgrader's formgrader finds the course
(its root must lie inside the server's) and reads the repository's nbgrader_config.py,
which points it at the workspace. Before it starts, the workspace gets its gradebook
and a local exchange with the released notebooks: the formgrader lists them as
released (not "draft"), and nbgrader's Assignment List reads the same exchange instead
of failing with "Error fetching courses!".
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from autograder.layout import REPO_ROOT, notebook_ids


def prepare(workspace: Path) -> None:
    """The workspace's gradebook and exchange, with every notebook of the course released."""
    from autograder.nbgrader_api import checked, make_api
    from autograder.release import generate

    ids = notebook_ids()
    generate(ids, workspace / "release", workspace)
    api = make_api(workspace, release_directory=workspace / "release")
    for nb_id in ids:
        checked(api.release_assignment(nb_id), f"releasing {nb_id} into the workspace's exchange")


def argv(extra: list[str]) -> list[str]:
    """The jupyter lab command line: the repository as the server's root, notebooks/ opened."""
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", f"--ServerApp.root_dir={REPO_ROOT}",
               "--ServerApp.default_url=/lab/tree/notebooks"]
    if os.geteuid() == 0:  # a container's root: Jupyter refuses without it
        command.append("--allow-root")
    return command + extra


def environment(workspace: Path) -> dict[str, str]:
    return {**os.environ, "COURSE_WORKSPACE": str(workspace), "JUPYTER_PLATFORM_DIRS": "1"}


def main(workspace: Path, extra: list[str]) -> int:
    prepare(workspace)
    print(f"formgrader: the Nbgrader menu > Formgrader; workspace {workspace}", flush=True)
    os.chdir(REPO_ROOT)
    os.execvpe(argv(extra)[0], argv(extra), environment(workspace))
    return 0  # not reached
