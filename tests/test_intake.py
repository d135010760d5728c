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


def test_lms_and_jupyter_copy_suffixes_map_back_to_the_notebook_id():
    for name in ("01_game_theory (1).ipynb", "01_game_theory-2.ipynb", "01_game_theory.ipynb",
                 "01_game_theory-Copy1.ipynb", "01_game_theory-Copy2 (1).ipynb", "01_game_theory - Copy.ipynb",
                 "Copy of 01_game_theory.ipynb", "01_game_theory_copy.ipynb"):
        assert notebook_id_for(name, KNOWN) == "01_game_theory", name
    assert notebook_id_for("homework.ipynb", KNOWN) is None
    assert notebook_id_for("homework-Copy1.ipynb", KNOWN) is None


def test_student_ids_are_safe_folder_names_and_never_shared():
    assert safe_student_id("ada") == "ada"
    assert safe_student_id("Ada Lovelace").startswith("Ada_Lovelace-")
    assert safe_student_id("Ada Lovelace") != safe_student_id("Ada_Lovelace") == "Ada_Lovelace"
    assert safe_student_id("../../etc").startswith("etc-")
    assert safe_student_id("???").startswith("unknown-")


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
    assert set(intake.notebooks) == {"1234", "991"}
    assert intake.names == {"1234": "lovelaceada", "991": "Ben Smith"}
    assert intake.lms_ids == {"1234": "1234", "991": "991"}
    assert not intake.problems


def test_students_of_the_same_name_stay_two_with_their_lms_ids(tmp_path):
    """Moodle: "John Smith_2001_..." and "John Smith_2002_..."; Canvas: two "smithjohn" files."""
    write_nb(tmp_path / "moodle" / "John Smith_2001_assignsubmission_file_" / "01_game_theory.ipynb", "a = 1")
    write_nb(tmp_path / "moodle" / "John Smith_2002_assignsubmission_file_" / "01_game_theory.ipynb", "b = 2")
    write_nb(tmp_path / "canvas" / "smithjohn_3001_9001_01_game_theory.ipynb", "a = 1")
    write_nb(tmp_path / "canvas" / "smithjohn_LATE_3002_9002_01_game_theory.ipynb", "b = 2")
    for layout, ids in (("moodle", ["2001", "2002"]), ("canvas", ["3001", "3002"])):
        intake = collect(tmp_path / layout, KNOWN)
        assert intake.students == ids, layout
        assert len({intake.names[s] for s in ids}) == 1
        assert not intake.problems, intake.problems
        sources = {intake.notebooks[s]["01_game_theory"].read_text() for s in ids}
        assert len(sources) == 2  # each keeps their own work


def test_a_students_notebook_in_a_sub_folder_is_theirs(tmp_path):
    write_nb(tmp_path / "Ann Lee_77_assignsubmission_file_" / "homework" / "01_game_theory.ipynb")
    write_nb(tmp_path / "Bo Chan_78_assignsubmission_file_" / "01_game_theory.ipynb")
    assert collect(tmp_path, KNOWN).students == ["77", "78"]


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


def test_a_damaged_zip_member_costs_only_that_file(tmp_path):
    """A member whose bytes were corrupted (CRC mismatch) is reported; the student's other
    notebook and the other students are collected."""
    archive = tmp_path / "class.zip"
    good = nbformat.writes(new_notebook(cells=[new_code_cell("1")]))
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("ada/01_game_theory.ipynb", good)
        z.writestr("ada/02_independent_learners.ipynb", good)
        z.writestr("ben/01_game_theory.ipynb", good)
    data = bytearray(archive.read_bytes())
    start = data.index(b"02_independent_learners.ipynb") + len("02_independent_learners.ipynb") + 5
    data[start] ^= 0xFF  # a flipped byte inside ada's second notebook
    archive.write_bytes(bytes(data))
    root, damaged = unpack(archive, tmp_path / "out")
    intake = collect(root, KNOWN, damaged)
    assert set(intake.notebooks["ada"]) == {"01_game_theory"} and set(intake.notebooks["ben"]) == {"01_game_theory"}
    assert [(p.student, p.notebook) for p in intake.problems] == [("ada", "02_independent_learners")]
    assert "could not be unpacked" in intake.problems[0].reason


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
    root, damaged = unpack(archive, tmp_path / "out")
    assert set(collect(root, KNOWN, damaged).notebooks) == {"ada"} and not damaged
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


def test_a_student_who_handed_in_only_a_pdf_is_told_what_was_found(tmp_path):
    from autograder.grading import grade_class
    from autograder.sandbox import check_sandbox

    if not check_sandbox()[0]:
        pytest.skip(f"no sandbox here: {check_sandbox()[1]}")
    for student in ("ada", "cy"):
        write_nb(tmp_path / "class" / student / "01_game_theory.ipynb", "x = 1")
    (tmp_path / "class" / "ben").mkdir()
    (tmp_path / "class" / "ben" / "report.pdf").write_bytes(b"%PDF-1.4")
    result = grade_class(tmp_path / "class", tmp_path / "ws")
    reasons = sorted(p.reason for p in result.problems if p.student == "ben")
    assert reasons == ["01_game_theory.ipynb was not submitted", "handed in report.pdf: not a notebook of the course"]


@pytest.mark.parametrize("content", ["nothing", "notes", "not_a_zip"])
def test_an_input_with_nothing_to_grade_stops_and_changes_nothing(tmp_path, content):
    """An empty folder, a folder of non-notebooks, a file that is not a zip: a clear error,
    and the workspace (its grades.csv above all) stays as it was."""
    from autograder.cli import main

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "grades.csv").write_text("student_id,name,total\n2001,John Smith,13\n")
    before = {p: p.read_bytes() for p in ws.rglob("*") if p.is_file()}
    source = tmp_path / "in"
    if content == "not_a_zip":
        source = tmp_path / "in.zip"
        source.write_text("hello")
    else:
        source.mkdir()
        if content == "notes":
            (source / "ada").mkdir()
            (source / "ada" / "notes.txt").write_text("forgot the notebook")
    with pytest.raises(SystemExit) as stop:
        main(["grade", str(source), "--workspace", str(ws)])
    assert stop.value.code not in (0, None)
    message = str(stop.value.code)
    assert "error:" in message and ("nothing to grade" in message or "neither a folder nor a zip" in message)
    if content == "notes":
        assert "ada/notes.txt" in message
    assert {p: p.read_bytes() for p in ws.rglob("*") if p.is_file()} == before


def test_the_workspace_may_follow_the_command():
    """`course grade DIR --workspace WS`, as the README shows it, and before the command as well."""
    parser = build_parser()
    assert parser.parse_args(["grade", "class", "--workspace", "ws"]).workspace == "ws"
    assert parser.parse_args(["--workspace", "ws", "grade", "class"]).workspace == "ws"
    assert parser.parse_args(["grade", "class"]).workspace is None
