"""Collecting submissions from folders and LMS downloads (no kernels involved)."""
from __future__ import annotations

import json
import zipfile

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.cli import build_parser
from autograder.grading import notebooks_due
from autograder.intake import Intake, Problem, check_readable, collect, notebook_id_for, safe_student_id, unpack

KNOWN = ["01_game_theory", "02_independent_learners"]


def write_nb(path, source="x = 1"):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[new_code_cell(source)]), path)
    return path


def test_lms_copy_suffixes_map_back_to_the_notebook_id():
    assert notebook_id_for("01_game_theory (1).ipynb", KNOWN) == "01_game_theory"
    assert notebook_id_for("01_game_theory-2.ipynb", KNOWN) == "01_game_theory"
    assert notebook_id_for("01_game_theory.ipynb", KNOWN) == "01_game_theory"
    assert notebook_id_for("homework.ipynb", KNOWN) is None


def test_student_ids_are_safe_folder_names():
    assert safe_student_id("Ada Lovelace") == "Ada_Lovelace"
    assert safe_student_id("../../etc") == "etc"
    assert safe_student_id("???") == "unknown"


def test_folder_per_student_inside_a_wrapper_folder(tmp_path):
    write_nb(tmp_path / "download" / "ada" / "01_game_theory.ipynb")
    write_nb(tmp_path / "download" / "ben" / "02_independent_learners.ipynb")
    intake = collect(tmp_path, KNOWN)
    assert set(intake.notebooks) == {"ada", "ben"}
    assert "01_game_theory" in intake.notebooks["ada"]
    assert not intake.problems


def test_canvas_flat_files_and_moodle_folders(tmp_path):
    write_nb(tmp_path / "lovelaceada_LATE_1234_5678_01_game_theory (1).ipynb")
    write_nb(tmp_path / "Ben Smith_991_assignsubmission_file_" / "01_game_theory.ipynb")
    intake = collect(tmp_path, KNOWN)
    assert set(intake.notebooks) == {"lovelaceada", "Ben_Smith"}
    assert not intake.problems


def test_damaged_and_misnamed_files_are_problems_not_crashes(tmp_path):
    (tmp_path / "ada").mkdir()
    (tmp_path / "ada" / "01_game_theory.ipynb").write_text('{"cells": [')
    write_nb(tmp_path / "ben" / "essay.ipynb")
    (tmp_path / "cy").mkdir()
    (tmp_path / "cy" / "01_game_theory.ipynb").write_text(json.dumps({"not": "a notebook"}))
    intake = collect(tmp_path, KNOWN)
    reasons = {p.student: p.reason for p in intake.problems}
    assert "not valid JSON" in reasons["ada"]
    assert "unknown notebook name 'essay.ipynb'" in reasons["ben"]
    assert "not a Jupyter notebook" in reasons["cy"]
    assert intake.students == ["ada", "ben", "cy"]


def test_a_duplicate_keeps_the_exactly_named_notebook(tmp_path):
    write_nb(tmp_path / "ada" / "01_game_theory.ipynb", "original = True")
    write_nb(tmp_path / "ada" / "01_game_theory (1).ipynb", "copy = True")
    intake = collect(tmp_path, KNOWN)
    assert intake.notebooks["ada"]["01_game_theory"].name == "01_game_theory.ipynb"
    assert "second copy" in intake.problems[0].reason


def test_zip_is_unpacked_and_zip_slip_refused(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ada/01_game_theory.ipynb", nbformat.writes(new_notebook(cells=[new_code_cell("1")])))
    root = unpack(archive, tmp_path / "out")
    assert set(collect(root, KNOWN).notebooks) == {"ada"}
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.ipynb", "{}")
    with pytest.raises(SystemExit, match="unsafe path"):
        unpack(evil, tmp_path / "out2")
    assert not (tmp_path / "outside.ipynb").exists()


def test_old_nbformat_without_cell_ids_is_readable(tmp_path):
    nb = {"nbformat": 4, "nbformat_minor": 4, "metadata": {},
          "cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [], "execution_count": None}]}
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(nb))
    assert check_readable(path) is None


def test_each_student_is_graded_on_what_they_handed_in_and_what_the_class_was_given():
    """One notebook each, not the same: nobody misses the others. Most of the class handed
    in 01: who did not, misses it. --notebooks: everyone, those."""
    one_each = Intake({"ada": {"01_game_theory": "x"}, "ben": {"02_independent_learners": "y"}})
    assert notebooks_due(one_each, None) == {"ada": {"01_game_theory"}, "ben": {"02_independent_learners"}}
    most = Intake({"ada": {"01_game_theory": "x"}, "ben": {"01_game_theory": "y", "02_independent_learners": "z"},
                   "cy": {}}, [Problem("dee", "01_game_theory.ipynb", "damaged", "01_game_theory")])
    assert notebooks_due(most, None) == {"ada": {"01_game_theory"}, "ben": {"01_game_theory", "02_independent_learners"},
                                         "cy": {"01_game_theory"}, "dee": {"01_game_theory"}}
    assert notebooks_due(one_each, ["01_game_theory"]) == {"ada": {"01_game_theory"}, "ben": {"01_game_theory"}}


def test_a_class_that_handed_in_nothing_is_told_so(tmp_path):
    from autograder.grading import grade_class

    (tmp_path / "class" / "ada").mkdir(parents=True)
    (tmp_path / "class" / "ada" / "notes.txt").write_text("forgot the notebook")
    result = grade_class(tmp_path / "class", tmp_path / "ws")
    assert [(p.student, p.reason) for p in result.problems] == [("ada", "no notebook was handed in")]


def test_the_workspace_may_follow_the_command():
    """`course grade DIR --workspace WS`, as the README shows it, and before the command as well."""
    parser = build_parser()
    assert parser.parse_args(["grade", "class", "--workspace", "ws"]).workspace == "ws"
    assert parser.parse_args(["--workspace", "ws", "grade", "class"]).workspace == "ws"
    assert parser.parse_args(["grade", "class"]).workspace is None
