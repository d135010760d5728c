"""Shared test set-up: quick mode and fixture helpers."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import nbformat

from autograder.layout import source_notebook

os.environ["COURSE_QUICK"] = "1"
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

FIXTURES = Path(__file__).parent / "fixtures"


def load_module(path: Path, name: str):
    """A Python file that is not in a package (fixtures, benches) as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_bench(name: str):
    """The bench script bench/<name>.py."""
    return load_module(Path(__file__).resolve().parents[1] / "bench" / f"{name}.py", f"bench_{name}")


def load_wrong_answers(nb_id: str):
    """The module tests/fixtures/wrong_answers/<nb_id>.py (WRONG, PARTIAL)."""
    return load_module(FIXTURES / "wrong_answers" / f"{nb_id}.py", f"wrong_{nb_id}")


def load_right_answers(nb_id: str) -> dict[str, str]:
    """RIGHT of tests/fixtures/right_answers/<nb_id>.py: correct answers written differently
    from the reference (empty when the notebook has none)."""
    path = FIXTURES / "right_answers" / f"{nb_id}.py"
    return load_module(path, f"right_{nb_id}").RIGHT if path.exists() else {}


def owned_tests(nb_id: str) -> dict[str, list[str]]:
    """answer grade_id -> the test cells that follow it in the source notebook."""
    owner, tests = None, {}
    for cell in nbformat.read(source_notebook(nb_id), as_version=4).cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            owner = meta["grade_id"]
            tests[owner] = []
        elif cell.cell_type == "code" and meta.get("grade") and owner:
            tests[owner].append(meta["grade_id"])
    return tests


def pytest_configure(config):
    config.addinivalue_line("markers", "notebook: executes a whole notebook (slower)")
    config.addinivalue_line("markers", "grading: drives the real grading commands")
