"""Submissions made from the course's own notebooks, for the demo and the tests.

A submission starts from the student release (what students receive) and has some
answer cells filled with the reference answers from solutions/, or with given code.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from autograder.layout import release_notebook, source_notebook


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _without_delimiters(source: str) -> str:
    return "\n".join(line for line in source.split("\n")
                     if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line)


def answer_cells(nb_id: str) -> dict[str, str]:
    """grade_id -> reference source of every cell a student writes in (code and written)."""
    nb = nbformat.read(source_notebook(nb_id), as_version=4)
    return {
        _grade_id(cell): _without_delimiters(cell.source)
        for cell in nb.cells
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution")
    }


def autograded_answers(nb_id: str) -> list[str]:
    """grade_ids of the code answer cells, in notebook order."""
    nb = nbformat.read(source_notebook(nb_id), as_version=4)
    return [_grade_id(c) for c in nb.cells
            if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution")]


def submission(nb_id: str, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The release notebook with the cells named in ``answers`` replaced by their source."""
    nb = nbformat.read(release_notebook(nb_id), as_version=4)
    for cell in nb.cells:
        if _grade_id(cell) in answers:
            cell.source = answers[_grade_id(cell)]
    return nb


def perfect(nb_id: str) -> nbformat.NotebookNode:
    return submission(nb_id, answer_cells(nb_id))


def partial(nb_id: str) -> nbformat.NotebookNode:
    """Every other autograded answer left as the release stub."""
    left_out = set(autograded_answers(nb_id)[1::2])
    return submission(nb_id, {k: v for k, v in answer_cells(nb_id).items() if k not in left_out})


def write_sample_class(dest: Path, nb_ids: list[str]) -> dict[str, str]:
    """Write four students' submissions under ``dest``; return student -> description."""
    students = {
        "ada_perfect": "every answer from the reference solution",
        "ben_partial": "every other answer left unanswered",
        "cy_blank": "the release as handed out",
        "dee_broken": "a damaged file (truncated JSON)",
    }
    for student in students:
        (dest / student).mkdir(parents=True, exist_ok=True)
    for nb_id in nb_ids:
        nbformat.write(perfect(nb_id), dest / "ada_perfect" / f"{nb_id}.ipynb")
        nbformat.write(partial(nb_id), dest / "ben_partial" / f"{nb_id}.ipynb")
        nbformat.write(nbformat.read(release_notebook(nb_id), as_version=4), dest / "cy_blank" / f"{nb_id}.ipynb")
        text = nbformat.writes(perfect(nb_id))
        (dest / "dee_broken" / f"{nb_id}.ipynb").write_text(text[: len(text) // 2], encoding="utf-8")
    return students
