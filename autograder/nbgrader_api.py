"""A configured nbgrader API for one workspace, with its failures turned into exceptions."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import nbgrader.api
import sqlalchemy
from nbgrader.api import Base
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.dbutil import ALEMBIC_DIR

from autograder.nbgrader_config import course_config


class NbgraderError(RuntimeError):
    """nbgrader reported a failure; the message carries its log."""


def prepare_gradebook(workspace: Path) -> None:
    """Create the workspace's gradebook, if it has none, as nbgrader would.

    nbgrader asks a new `alembic` process for the schema's newest revision each time it
    creates a gradebook (2 to 4 s of every first grading run); alembic's own API reads
    the same scripts in milliseconds. A gradebook that exists is left as it is.
    """
    from alembic.script import ScriptDirectory

    path = workspace / "gradebook.db"
    if path.exists():
        return
    workspace.mkdir(parents=True, exist_ok=True)
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    try:
        Base.metadata.create_all(bind=engine)
        with engine.begin() as db:
            db.execute(sqlalchemy.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            db.execute(sqlalchemy.text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                       {"v": ScriptDirectory(ALEMBIC_DIR).get_current_head()})
    finally:
        engine.dispose()


_ENGINES: dict[tuple, sqlalchemy.Engine] = {}


def _shared_engine(db_url: str, **kwargs) -> sqlalchemy.Engine:
    key = (db_url, tuple(sorted(kwargs.items())))
    if key not in _ENGINES:
        _ENGINES[key] = _CREATE_ENGINE(db_url, **kwargs)
    return _ENGINES[key]


_CREATE_ENGINE = sqlalchemy.create_engine


def share_gradebook_engines() -> None:
    """Have nbgrader's Gradebook keep one SQLAlchemy engine per database in this process.

    The one change the course makes to nbgrader itself, made here, explicitly, by
    :func:`autograder.nbgrader_config.configure` (so on every route). nbgrader opens a new
    Gradebook, and so a new engine, five times for each graded submission, and each new
    engine inspects the tables and compiles every query again: 8 ms each, a tenth of the
    grader's own time. A kept engine keeps its compiled queries; Gradebook.close() still
    returns its connections (dispose), as before. Idempotent.
    """
    nbgrader.api.create_engine = _shared_engine


def local_exchange(workspace: Path, config) -> None:
    """The workspace's exchange and the folder nbgrader's Assignment List fetches into. The
    Assignment List reads its settings from that folder's nbgrader_config.py, so it gets
    one that loads the course's (and so finds this exchange)."""
    Path(config.Exchange.root).mkdir(parents=True, exist_ok=True)
    fetched = Path(config.Exchange.assignment_dir)
    fetched.mkdir(parents=True, exist_ok=True)
    settings = fetched / "nbgrader_config.py"
    if not settings.exists():
        settings.write_text("# Written by the course kit: nbgrader's Assignment List reads its settings here.\n"
                            "from autograder.nbgrader_config import configure\n\n"
                            f"configure(get_config(), workspace={str(workspace)!r})  # noqa: F821\n")


def _alembic_on_path() -> None:
    # nbgrader runs `alembic` from PATH when it creates a gradebook: make this
    # interpreter's scripts visible even when the virtual environment is not activated.
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")


def make_api(workspace: Path, release_directory: Path | None = None) -> NbGraderAPI:
    _alembic_on_path()
    prepare_gradebook(workspace)
    config = course_config(workspace, release_directory)
    local_exchange(workspace, config)
    config.ExchangeReleaseAssignment.force = True  # the workspace's exchange follows the release
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    api.log_level = logging.ERROR
    return api


def checked(result: dict, what: str) -> dict:
    """Raise NbgraderError unless an NbGraderAPI call succeeded."""
    if not result.get("success"):
        detail = (result.get("error") or "") + "\n" + (result.get("log") or "")
        raise NbgraderError(f"{what} failed:\n{detail.strip()}")
    return result
