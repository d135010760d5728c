"""Collect a class's submissions from a folder or an LMS download (zip).

Accepted layouts:
- ``<folder>/<student>/<NN_topic>.ipynb`` (one folder per student, optionally one
  top folder around them, as unzipping often leaves);
- Moodle-style folders ``<Name>_<id>_assignsubmission_file_/<NN_topic>.ipynb``;
- Canvas-style flat files ``<student>[_LATE]_<id>_<id>_<NN_topic>.ipynb``.

LMS downloads rename files (``01_game_theory (1).ipynb``, ``01_game_theory-2.ipynb``);
such names are mapped back to the notebook id. Anything that cannot be used is
kept as a Problem with the student, the file and the reason, and never stops the others.
"""
from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

MOODLE_FOLDER = re.compile(r"^(?P<student>.+?)_\d+_assignsubmission_\w*$")
CANVAS_FILE = re.compile(r"^(?P<student>[^_]+)(?:_LATE)?_\d+_\d+_(?P<file>.+)$")
LMS_COPY_SUFFIX = re.compile(r"(?:\s*\(\d+\)|-\d+)$")


@dataclass
class Problem:
    student: str
    file: str
    reason: str
    notebook: str | None = None  # the notebook id, when the file could be matched to one


@dataclass
class Intake:
    """Readable notebooks per student and notebook id, plus what could not be used."""

    notebooks: dict[str, dict[str, Path]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def students(self) -> list[str]:
        return sorted(set(self.notebooks) | {p.student for p in self.problems if p.student})


def safe_student_id(name: str) -> str:
    """A student id usable as a folder name and a gradebook key."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._")
    return cleaned or "unknown"


def notebook_id_for(filename: str, known: list[str]) -> str | None:
    """Map a submitted file name to a notebook id, undoing LMS copy suffixes."""
    stem = Path(filename).stem
    for candidate in (stem, LMS_COPY_SUFFIX.sub("", stem)):
        if candidate in known:
            return candidate
    return None


def unpack(path: Path, into: Path) -> Path:
    """A folder of submissions: ``path`` itself, or a zip extracted safely into ``into``."""
    if path.is_dir():
        return path
    if not zipfile.is_zipfile(path):
        raise SystemExit(f"error: {path} is neither a folder nor a zip file of submissions")
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            target = (into / member.filename).resolve()
            if not target.is_relative_to(into.resolve()):  # zip-slip: never write outside
                raise SystemExit(f"error: {path} contains an unsafe path {member.filename!r}")
        archive.extractall(into)
    return into


def _owner_and_name(file: Path, root: Path) -> tuple[str | None, str]:
    """(student, file name) from a path under the submissions root, by the layouts above."""
    parts = file.relative_to(root).parts
    if len(parts) == 1:  # flat: the student is in the file name (Canvas)
        match = CANVAS_FILE.match(parts[0])
        return (match["student"], match["file"]) if match else (None, parts[0])
    folder = parts[-2]
    moodle = MOODLE_FOLDER.match(folder)
    return (moodle["student"] if moodle else folder), parts[-1]


def _single_top_folder(root: Path) -> Path:
    """Descend through a lone wrapper folder that holds all the student folders."""
    entries = [p for p in root.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir() and any(p.is_dir() for p in entries[0].iterdir()):
        return entries[0]
    return root


def check_readable(path: Path) -> str | None:
    """None when ``path`` is a notebook nbformat can read, else the reason in one line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot be read as UTF-8 text ({exc.__class__.__name__})"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"is not valid JSON (line {exc.lineno}: {exc.msg}); the file is damaged"
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises several kinds
        return f"is not a Jupyter notebook ({exc.__class__.__name__})"
    if not nb.cells:
        return "is a notebook with no cells"
    return None


def collect(root: Path, known: list[str]) -> Intake:
    """Find every submitted notebook under ``root`` and sort out what is usable."""
    intake = Intake()
    root = _single_top_folder(root)
    files = [p for p in root.rglob("*") if p.is_file() and "__MACOSX" not in p.parts
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    # Exact names before LMS copies ("x (1).ipynb"), so a duplicate keeps the original.
    files.sort(key=lambda p: (str(p.parent), Path(p.name).stem not in known, p.name))
    for file in files:
        owner, name = _owner_and_name(file, root)
        rel = str(file.relative_to(root))
        if owner is None:
            intake.problems.append(Problem("", rel, "no student could be told from this path; "
                                           "expected <student>/<notebook>.ipynb"))
            continue
        student = safe_student_id(owner)
        intake.notebooks.setdefault(student, {})
        if not name.endswith(".ipynb"):
            continue  # data files and the like ride along; they are not graded
        nb_id = notebook_id_for(name, known)
        if nb_id is None:
            intake.problems.append(Problem(student, rel, f"unknown notebook name {name!r}; expected one of "
                                           + ", ".join(f"{k}.ipynb" for k in known)))
            continue
        if nb_id in intake.notebooks[student]:
            intake.problems.append(Problem(student, rel, f"a second copy of {nb_id}.ipynb; graded "
                                           f"{intake.notebooks[student][nb_id].name} instead", nb_id))
            continue
        reason = check_readable(file)
        if reason:
            intake.problems.append(Problem(student, rel, f"{name} {reason}", nb_id))
            continue
        intake.notebooks[student][nb_id] = file
    return intake
