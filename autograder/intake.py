"""Collect a class's submissions from a folder or an LMS download (zip).

Accepted layouts:
- ``<folder>/<student>/<NN_topic>.ipynb`` (one folder per student, optionally one
  top folder around them, as unzipping often leaves);
- Moodle-style folders ``<Full name>_<participant id>_assignsubmission_<kind>_/``;
- Canvas-style flat files ``<name>[_LATE]_<user id>_<submission id>_<NN_topic>.ipynb``.

A student is identified by the LMS's id where the layout gives one (Moodle's
participant id, Canvas's user id), with the name beside it, so two students of the
same name stay two; otherwise by the folder name (made safe for a file name, with a
short suffix when that changed it, so two folder names never become one id).

Renamed copies (``01_game_theory (1).ipynb``, ``01_game_theory-2.ipynb``,
``01_game_theory-Copy1.ipynb``, ``Copy of 01_game_theory.ipynb``) are mapped back to
the notebook id. Anything that cannot be used (a damaged file, a damaged zip member,
a file that is not a notebook) is kept as a Problem with the student, the file and
the reason, and never stops the others.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

MOODLE_FOLDER = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assign(?:submission|feedback)_\w*$")
CANVAS_FILE = re.compile(r"^(?P<name>[^_]+)(?:_LATE)?_(?P<id>\d+)_\d+_(?P<file>.+)$")
# Copies made by an LMS, by Jupyter ("Duplicate"), by a file manager or by a drive.
COPY_SUFFIXES = [re.compile(p) for p in (r"\s*\(\d+\)$", r"-\d+$", r"-Copy\d*$", r"\s+-\s+Copy$",
                                         r"\s*\((?:copy|Copy)\)$", r"[\s_]copy$", r"^Copy of\s+")]


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
    names: dict[str, str] = field(default_factory=dict)  # student id -> name as the LMS or folder gives it
    lms_ids: dict[str, str] = field(default_factory=dict)  # student id -> LMS id, where there is one
    other_files: dict[str, list[str]] = field(default_factory=dict)  # files handed in that are not notebooks

    @property
    def students(self) -> list[str]:
        return sorted(set(self.notebooks) | {p.student for p in self.problems if p.student})

    @property
    def usable(self) -> bool:
        """Whether anything was found that is (or was meant to be) one of the notebooks."""
        return bool(self.students) and (any(self.notebooks.values()) or any(p.notebook for p in self.problems))


def safe_student_id(name: str) -> str:
    """A student id usable as a folder name and a gradebook key; a name that had to be
    changed for that gets a short suffix of its own, so two names never share an id."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._") or "unknown"
    if cleaned == name:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"


def notebook_id_for(filename: str, known: list[str]) -> str | None:
    """Map a submitted file name to a notebook id, undoing the copy suffixes above."""
    stem = Path(filename).stem
    for _ in range(4):  # "01_game_theory-Copy1 (2)": several, one inside the other
        if stem in known:
            return stem
        undone = stem
        for suffix in COPY_SUFFIXES:
            undone = suffix.sub("", undone)
        if undone == stem:
            return None
        stem = undone
    return stem if stem in known else None


def unpack(path: Path, into: Path) -> tuple[Path, list[tuple[str, str]]]:
    """A folder of submissions (``path`` itself, or a zip extracted safely into ``into``)
    and the zip members that could not be extracted, with why."""
    if path.is_dir():
        return path, []
    if not zipfile.is_zipfile(path):
        raise SystemExit(f"error: {path} is neither a folder nor a zip file of submissions")
    damaged = []
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        for member in members:
            target = (into / member.filename).resolve()
            if not target.is_relative_to(into.resolve()):  # zip-slip: never write outside
                raise SystemExit(f"error: {path} contains an unsafe path {member.filename!r}")
        for member in members:  # one by one: a damaged member costs only itself
            try:
                archive.extract(member, into)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                (into / member.filename).unlink(missing_ok=True)
                damaged.append((member.filename, f"could not be unpacked from the zip ({exc.__class__.__name__}); "
                                                 "the file is damaged"))
    return into, damaged


def _owner(rel: Path) -> tuple[tuple[str, str, str | None] | None, str]:
    """((student id, name, LMS id) or None, file name) for a path under the submissions root."""
    parts = rel.parts
    if len(parts) == 1:  # flat: the student is in the file name (Canvas)
        match = CANVAS_FILE.match(parts[0])
        if not match:
            return None, parts[0]
        return (match["id"], match["name"], match["id"]), match["file"]
    folder = parts[0]  # the student's folder, whatever lies below it
    moodle = MOODLE_FOLDER.match(folder)
    if moodle:
        return (moodle["id"], moodle["name"], moodle["id"]), parts[-1]
    return (safe_student_id(folder), folder, None), parts[-1]


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


def collect(root: Path, known: list[str], damaged: list[tuple[str, str]] = ()) -> Intake:
    """Find every submitted notebook under ``root`` and sort out what is usable.

    ``damaged``: (path under ``root``, reason) of files that could not be unpacked."""
    intake = Intake()
    top = _single_top_folder(root)
    prefix = top.relative_to(root)
    files = [p for p in top.rglob("*") if p.is_file() and "__MACOSX" not in p.parts
             and not any(part.startswith(".") for part in p.relative_to(top).parts)]
    # Exact names before copies ("x (1).ipynb"), so a duplicate keeps the original.
    files.sort(key=lambda p: (str(p.parent), Path(p.name).stem not in known, p.name))
    entries = [(file.relative_to(top), file) for file in files]
    entries += [(Path(name).relative_to(prefix) if Path(name).is_relative_to(prefix) else Path(name), reason)
                for name, reason in damaged]
    for rel, file in entries:
        who, name = _owner(rel)
        if who is None:
            intake.problems.append(Problem("", str(rel), "no student could be told from this path; expected "
                                           "<student>/<notebook>.ipynb, a Moodle folder or a Canvas file name"))
            continue
        student, display, lms_id = who
        intake.notebooks.setdefault(student, {})
        intake.names.setdefault(student, display)
        if lms_id:
            intake.lms_ids[student] = lms_id
        nb_id = notebook_id_for(name, known) if name.endswith(".ipynb") else None
        if isinstance(file, str):  # a damaged zip member
            intake.problems.append(Problem(student, str(rel), f"{name} {file}", nb_id))
            continue
        if not name.endswith(".ipynb"):
            intake.other_files.setdefault(student, []).append(name)
            continue  # data files and the like ride along; they are not graded
        if nb_id is None:
            intake.problems.append(Problem(student, str(rel), f"unknown notebook name {name!r}; expected one of "
                                           + ", ".join(f"{k}.ipynb" for k in known)))
            continue
        if nb_id in intake.notebooks[student]:
            intake.problems.append(Problem(student, str(rel), f"a second copy of {nb_id}.ipynb; graded "
                                           f"{intake.notebooks[student][nb_id].name} instead", nb_id))
            continue
        reason = check_readable(file)
        if reason:
            intake.problems.append(Problem(student, str(rel), f"{name} {reason}", nb_id))
            continue
        intake.notebooks[student][nb_id] = file
    return intake


def describe(root: Path, limit: int = 5) -> str:
    """What a folder holds, in a few words, for an error message."""
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    if not files:
        return "it holds no files"
    shown = ", ".join(files[:limit]) + (f" and {len(files) - limit} more" if len(files) > limit else "")
    return f"it holds {len(files)} file(s): {shown}"


def copy_submission(source: Path, target_dir: Path, nb_id: str) -> None:
    """Keep what was handed in (the notebook and the files beside it) as nbgrader's submitted/ copy."""
    if target_dir.exists():
        shutil.rmtree(target_dir)
    target_dir.mkdir(parents=True)
    shutil.copyfile(source, target_dir / f"{nb_id}.ipynb")
    for extra in source.parent.iterdir():
        if extra.is_file() and extra.suffix != ".ipynb":
            try:
                shutil.copyfile(extra, target_dir / extra.name)
            except OSError:
                continue
