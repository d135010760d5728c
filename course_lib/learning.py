"""One learning API for every algorithm of the course.

Every reference learner (IDQN, VDN/QMIX, MADDPG, REINFORCE with CommNet/TarMAC,
IPPO, Method I, DRQN, ...) is trained the same way::

    from course_lib.algos import maddpg
    run = maddpg.train("simple_spread_v3", maddpg.Config(seed=0, total_steps=200_000),
                       parts=maddpg.Parts(actor_loss=actor_loss))   # your function, in the loop
    run.curve            # DataFrame: step, episode, train_return, eval_return, loss/..., sps
    run.policy           # acts on the batched twin and on PettingZoo dicts
    evaluate(run.policy, "simple_spread_v3", on="mpe2")
    run.save("runs/maddpg")                      # config, networks, optimizers, RNGs, curve
    run = maddpg.train(..., resume="runs/maddpg")  # continues exactly where it stopped

How a learner is written (see any module of :mod:`course_lib.algos`): a ``Config``
dataclass (``seed`` and ``total_steps`` included), a ``Parts`` dataclass holding the
functions students write (defaults: the course_lib references), and a :class:`Learner`
subclass whose :meth:`Learner.iterate` runs one slice of training -- collect
experience, update, log -- calling each part by its name where the notebook's
equation applies.  :func:`train` drives it: progress bar, periodic and final
checkpoints, a checkpoint on Ctrl-C.

Curve columns, the same for every algorithm: ``step`` (environment steps, summed over
parallel environments, unless the Config says otherwise), ``episode`` (episodes
finished), ``train_return`` (mean return of the training episodes that ended since
the last row), ``eval_return`` (evaluation return, NaN where none ran), then the
algorithm's ``loss/<name>`` columns and other metrics, and ``sps`` (steps per
wall-clock second of this process).
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from course_lib.tasks import Task, task as make_task

__all__ = ["Learner", "Run", "train", "load", "make_parts", "CURVE_COLUMNS", "CheckpointError",
           "config_from_dict", "mean_or_nan"]

CURVE_COLUMNS = ("step", "episode", "train_return", "eval_return")
CHECKPOINT = "checkpoint.pt"
FORMAT = 1  # bump when the checkpoint layout changes


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here: missing, damaged, or of another run."""


# ------------------------------------------------------------------------ parts
def make_parts(parts_cls: type, given: Any = None):
    """The ``Parts`` to train with: the references, with ``given`` plugged in.

    ``given`` is ``None`` (all references), a ``parts_cls`` instance, a dict
    ``{name: function}``, or any object with attributes of those names (a module of
    answers, e.g. ``course train --parts my_answers.py``) -- names it lacks keep the
    reference.  A dict key that is not a part raises ``ValueError`` listing the parts.
    """
    if given is None:
        return parts_cls()
    if isinstance(given, parts_cls):
        return given
    names = [f.name for f in dataclasses.fields(parts_cls)]
    if isinstance(given, dict):
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"{unknown} are not parts of this algorithm; its parts are {names}")
        chosen = dict(given)
    else:
        chosen = {n: getattr(given, n) for n in names if callable(getattr(given, n, None))}
    return parts_cls(**chosen)


def config_from_dict(config_cls: type, values: dict):
    """A ``config_cls`` from a JSON dict (lists back to tuples where the default is one)."""
    kwargs = {}
    for f in dataclasses.fields(config_cls):
        if f.name not in values:
            continue
        v = values[f.name]
        default = f.default if f.default is not dataclasses.MISSING else None
        if isinstance(default, tuple) and isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return config_cls(**kwargs)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def mean_or_nan(values) -> float:
    """The mean of what was collected since the last curve row, NaN when nothing was."""
    return float(np.mean(values)) if len(values) else float("nan")


# ---------------------------------------------------------------------- learner
class Learner:
    """Base class of the course's learners: state, counters and the curve.

    A subclass sets ``name`` (its key in :data:`course_lib.algos.LEARNERS`), ``Config``,
    ``Parts`` and ``description``, builds its networks and environments in
    ``__init__`` (after ``super().__init__``), and implements :meth:`iterate` and
    :meth:`policy`.  Everything it keeps on ``self`` is saved in checkpoints (pickled),
    except ``parts``: a subclass that hands parts to objects it keeps (a model that
    calls the student's ``comm_mean``) re-binds them in :meth:`bind_parts`.
    """

    name: ClassVar[str] = "learner"
    description: ClassVar[str] = ""
    Config: ClassVar[type]
    Parts: ClassVar[type]

    def __init__(self, task: Task, config: Any, parts: Any):
        self.task = task
        self.config = config
        self.parts = parts
        self.step = 0  # environment steps so far (the unit of config.total_steps)
        self.episode = 0  # training episodes finished
        self.rows: list[dict] = []
        self.wall_s = 0.0  # wall-clock seconds spent in iterate(), over all sessions

    # -- to implement ------------------------------------------------------------
    def iterate(self) -> None:
        """One slice of training (a rollout and its update, or a few env steps): advances
        ``self.step`` and calls :meth:`log` when a curve row is due."""
        raise NotImplementedError

    def policy(self):
        """The current policy (a :class:`course_lib.policy.Policy`), greedy by default."""
        raise NotImplementedError

    def bind_parts(self) -> None:
        """Hand ``self.parts`` to the objects that call them (after a load)."""

    # -- shared --------------------------------------------------------------------
    def seed_torch(self) -> None:
        """Seed torch with ``config.seed`` and set its thread count (``config.torch_threads``;
        one thread is fastest for the course's small networks, and polite on shared machines)."""
        import torch

        threads = getattr(self.config, "torch_threads", None)
        if threads is not None:
            torch.set_num_threads(int(threads))
        torch.manual_seed(self.config.seed)

    def log(self, train_return: float = np.nan, eval_return: float = np.nan, **metrics: Any) -> dict:
        """Append one curve row: the fixed columns first, then ``metrics``."""
        row = {"step": int(self.step), "episode": int(self.episode),
               "train_return": float(train_return), "eval_return": float(eval_return)}
        for k, v in metrics.items():
            row[k] = v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v
        row["sps"] = self.step / self.wall_s if self.wall_s > 0 else np.nan
        self.rows.append(row)
        return row

    @property
    def total_steps(self) -> int:
        return int(self.config.total_steps)

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["parts"] = None  # the student's functions are plugged in again on load
        return state


# --------------------------------------------------------------------------- run
class Run:
    """A trained (or training) learner: ``curve``, ``policy``, ``config``, ``save``."""

    def __init__(self, learner: Learner):
        self.learner = learner

    @property
    def curve(self):
        import pandas as pd

        df = pd.DataFrame(self.learner.rows)
        if df.empty:
            return pd.DataFrame(columns=list(CURVE_COLUMNS))
        first = [c for c in CURVE_COLUMNS if c in df.columns]
        return df[first + [c for c in df.columns if c not in first]]

    @property
    def policy(self):
        return self.learner.policy()

    @property
    def config(self):
        return self.learner.config

    @property
    def algo(self) -> str:
        return self.learner.name

    @property
    def task(self) -> Task:
        return self.learner.task

    @property
    def parts(self):
        return self.learner.parts

    def evaluate(self, episodes: int = 100, seed: int = 0, greedy: bool = True, on: str = "twin"):
        """:func:`course_lib.evaluation.evaluate` of this run's policy on its task."""
        from course_lib.evaluation import evaluate

        return evaluate(self.policy, self.task, episodes=episodes, seed=seed, greedy=greedy, on=on)

    def save(self, directory: "str | Path") -> Path:
        """Write the checkpoint and its readable companions into ``directory``."""
        return save(self.learner, directory)

    def __repr__(self) -> str:
        return (f"Run({self.algo} on {self.task}, step {self.learner.step:,} of "
                f"{self.learner.total_steps:,}, {len(self.learner.rows)} curve rows)")


# --------------------------------------------------------------------- checkpoints
def _version() -> str:
    import course_lib

    return course_lib.__version__


def _atomic_write(path: Path, write) -> None:
    """``write(tmp_path)``, then rename over ``path``: a crash leaves the old file or none."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:  # on disk before the rename, or a power cut can leave an empty file
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the run unreadable to others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(learner: Learner, directory: "str | Path") -> Path:
    """Checkpoint ``learner`` into ``directory``: ``checkpoint.pt`` (everything needed to
    resume exactly, with the RNG states), ``config.json`` and ``metrics.csv``."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "course_lib": _version(), "algo": learner.name, "task": learner.task.spec(),
            "config": _jsonable(learner.config), "step": learner.step, "episode": learner.episode}
    state = {"meta": meta, "learner": learner, "rng": {
        "torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
        "torch_threads": torch.get_num_threads()}}  # threads change float sums: a resume needs the same
    _atomic_write(directory / CHECKPOINT, lambda p: torch.save(state, p))
    _atomic_write(directory / "config.json",
                  lambda p: p.write_text(json.dumps({k: meta[k] for k in ("algo", "task", "config")}, indent=2)))
    _atomic_write(directory / "metrics.csv", lambda p: Run(learner).curve.to_csv(p, index=False))
    return directory


def _read(directory: "str | Path") -> dict:
    import torch

    path = Path(directory) / CHECKPOINT
    if not Path(directory).is_dir():
        raise CheckpointError(f"no run folder {str(directory)!r}")
    if not path.exists():
        raise CheckpointError(f"{directory} holds no {CHECKPOINT} (not a run folder, or never saved)")
    try:
        state = torch.load(path, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways (OSError, EOFError, ...)
        detail = str(exc).split(". ")[0]  # torch's zip errors run on for lines
        raise CheckpointError(f"{path} cannot be read ({type(exc).__name__}: {detail}); it is damaged or "
                              "was written by another version of course_lib") from None
    if not isinstance(state, dict) or "meta" not in state or "learner" not in state:
        raise CheckpointError(f"{path} is not a course_lib checkpoint")
    meta = state["meta"]
    if meta.get("format") != FORMAT or meta.get("course_lib") != _version():
        raise CheckpointError(f"{path} was written by course_lib {meta.get('course_lib')} (checkpoint format "
                              f"{meta.get('format')}); this is course_lib {_version()} (format {FORMAT})")
    return state


def _restore_rng(state: dict) -> None:
    import torch

    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    if state["rng"].get("torch_threads") and torch.get_num_threads() != state["rng"]["torch_threads"]:
        torch.set_num_threads(state["rng"]["torch_threads"])


def load(directory: "str | Path", parts: Any = None, *, algo: str | None = None) -> Run:
    """The run saved in ``directory`` (``parts`` plugged in again; default: references).

    ``algo`` checks that the checkpoint is of that algorithm.  Raises
    :class:`CheckpointError` with what is wrong when it cannot be used.
    """
    state = _read(directory)
    learner = state["learner"]
    if algo is not None and learner.name != algo:
        raise CheckpointError(f"{directory} holds a run of {learner.name}, not of {algo}")
    learner.parts = make_parts(type(learner).Parts, parts)
    learner.bind_parts()
    _restore_rng(state)
    return Run(learner)


def _differences(a: Any, b: Any, ignore: tuple[str, ...]) -> list[str]:
    da, db = _jsonable(a), _jsonable(b)
    return [f"{k}: {da.get(k)!r} in the checkpoint, {db.get(k)!r} here"
            for k in sorted(set(da) | set(db)) if k not in ignore and da.get(k) != db.get(k)]


# ------------------------------------------------------------------------- driver
def train(learner_cls: type, task: "str | Task", config: Any = None, parts: Any = None, *,
          resume: "str | Path | None" = None, save_every: int | None = None,
          out: "str | Path | None" = None, progress: bool = True) -> Run:
    """Train ``learner_cls`` on ``task`` until ``config.total_steps`` and return the :class:`Run`.

    ``parts``: the student's functions (see :func:`make_parts`).  ``resume``: a run
    folder to continue from (same algorithm, task and config, except ``total_steps``,
    which may grow); the continued run equals the uninterrupted one on the CPU.
    ``out``: folder for checkpoints, written every ``save_every`` steps, at the end, and
    on Ctrl-C (the running iteration finishes first, so the saved state resumes exactly;
    then the interrupt goes on).  ``progress``: a tqdm bar.
    """
    from tqdm.auto import tqdm

    task = make_task(task)
    if config is not None and not isinstance(config, learner_cls.Config):
        raise TypeError(f"{learner_cls.name} takes a {learner_cls.Config.__qualname__}, "
                        f"got {type(config).__name__}")
    if resume is not None:
        run = load(resume, parts, algo=learner_cls.name)
        learner = run.learner
        if learner.task != task:
            raise CheckpointError(f"{resume} was trained on {learner.task}, not {task}")
        if config is None:  # no config given: the checkpoint's own
            config = learner.config
        diff = _differences(learner.config, config, ignore=("total_steps",))
        if diff:
            raise CheckpointError(f"{resume} was trained with another config: " + "; ".join(diff))
        learner.config = dataclasses.replace(learner.config, total_steps=config.total_steps)
    else:
        learner = learner_cls(task, learner_cls.Config() if config is None else config,
                              make_parts(learner_cls.Parts, parts))
    out = Path(out) if out is not None else None
    bar = tqdm(total=learner.total_steps, initial=learner.step, desc=f"{learner.name} on {task}",
               disable=not progress, mininterval=1.0, unit="step", unit_scale=True)
    next_save = (learner.step // save_every + 1) * save_every if save_every else None
    ctrl_c = _CtrlC(bar, enabled=out is not None)
    try:
        with ctrl_c:
            _loop(learner, bar, out, save_every, next_save, ctrl_c)
    except KeyboardInterrupt:
        if out is not None and not ctrl_c.forced:
            save(learner, out)
            note = "" if ctrl_c.pending else (" (inside an iteration: the state saved is the one at the interruption, "
                                              "and a resumed run may differ from an uninterrupted one)")
            bar.write(f"interrupted at step {learner.step:,}: saved to {out}{note} "
                      f"(resume with resume={str(out)!r})")
        raise
    finally:
        bar.close()
    if out is not None:
        save(learner, out)
    return Run(learner)


def _loop(learner: Learner, bar, out: "Path | None", save_every: int | None, next_save: int | None,
          ctrl_c: "_CtrlC") -> None:
    """Iterate until done: progress bar, periodic checkpoints, a deferred Ctrl-C."""
    while not learner.done:
        before, start = learner.step, time.perf_counter()
        learner.iterate()
        learner.wall_s += time.perf_counter() - start
        if learner.step == before:
            raise RuntimeError(f"{learner.name}.iterate() made no progress at step {before}")
        bar.update(learner.step - before)
        if learner.rows:
            last = learner.rows[-1]
            shown = {k: f"{last[k]:.3g}" for k in ("train_return", "eval_return")
                     if np.isfinite(last.get(k, np.nan))}
            bar.set_postfix(shown, refresh=False)
        if out is not None and next_save is not None and learner.step >= next_save:
            save(learner, out)
            next_save = (learner.step // save_every + 1) * save_every
        if ctrl_c.pending:
            raise KeyboardInterrupt


class _CtrlC:
    """While training with checkpoints, Ctrl-C (SIGINT) lets the running ``iterate()``
    finish, so the checkpoint the driver writes is a state between two iterations (a
    state saved in the middle of one would resume differently).  A second Ctrl-C stops
    at once, without saving.  Only in the main thread, over Python's default handler."""

    def __init__(self, bar, enabled: bool = True):
        self.bar, self.enabled, self.pending, self.forced, self._old = bar, enabled, False, False, None

    def __enter__(self):
        import signal
        import threading

        if (self.enabled and threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.pending:
            self.forced = True
            raise KeyboardInterrupt
        self.pending = True
        self.bar.write("Ctrl-C: stopping after this iteration to save a checkpoint (Ctrl-C again: stop now, no save)")

    def __exit__(self, *exc):
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False

