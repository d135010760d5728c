"""`course release`: regenerate notebooks/ from solutions/ with nbgrader, or check it is current."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from tqdm.auto import tqdm

from autograder.layout import NOTEBOOKS, release_notebook
from autograder.nbgrader_api import checked, make_api


def generate(nb_ids: list[str], release_root: Path, workspace: Path) -> None:
    """Run nbgrader generate_assignment for each notebook into ``release_root``.

    Also records each notebook's cells in the workspace gradebook, which autograding
    needs to restore test cells.
    """
    api = make_api(workspace, release_directory=release_root)
    for nb_id in tqdm(nb_ids, desc="release", unit="notebook", disable=len(nb_ids) < 2):
        checked(api.generate_assignment(nb_id, force=True, create=True), f"releasing {nb_id}")


def _canonical(path: Path) -> str:
    """Notebook JSON with keys sorted, so formatting does not count as a change."""
    return json.dumps(json.loads(path.read_text(encoding="utf-8")), sort_keys=True, indent=1)


def stale_notebooks(nb_ids: list[str], release_root: Path = NOTEBOOKS) -> list[tuple[str, str]]:
    """(notebook, reason) for every release under ``release_root`` that differs from a fresh one."""
    problems = []
    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        fresh_root = Path(tmp) / "notebooks"
        generate(nb_ids, fresh_root, Path(tmp) / "workspace")
        for nb_id in nb_ids:
            committed = release_root / nb_id / f"{nb_id}.ipynb"
            fresh = fresh_root / nb_id / f"{nb_id}.ipynb"
            shown = f"{release_root.name}/{nb_id}/{nb_id}.ipynb"
            if not committed.exists():
                problems.append((nb_id, f"{shown} is missing"))
            elif _canonical(committed) != _canonical(fresh):
                problems.append((nb_id, f"{shown} differs from what solutions/ generates"))
    return problems


def release(nb_ids: list[str], workspace: Path) -> list[Path]:
    """Regenerate the student release of each notebook in place."""
    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        fresh_root = Path(tmp) / "notebooks"
        generate(nb_ids, fresh_root, workspace)
        written = []
        for nb_id in nb_ids:
            target = NOTEBOOKS / nb_id
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(fresh_root / nb_id, target)
            written.append(release_notebook(nb_id))
    return written
