"""Tasks by name: every environment of the course behind one small handle.

A :class:`Task` names an environment and its settings, and builds it in both forms:
``task.batched(num_envs, seed=...)`` gives the batched twin (arrays ``[B, N, ...]``,
what the learners train on) and ``task.single()`` the PettingZoo ``ParallelEnv``
(mpe2's own environment for the MPE tasks).  Every learner and evaluator of the
course takes a task, so ``train("simple_spread_v3", ...)`` and
``evaluate(policy, "predator_prey")`` mean the same environment everywhere.

    >>> from course_lib.tasks import task
    >>> t = task("traffic_junction_medium")
    >>> env = t.batched(32, seed=0)          # VecTrafficJunction(32, version="medium")
    >>> t2 = task("predator_prey", grid_size=5, num_predators=2)   # other settings

Used by :mod:`course_lib.learning`, :mod:`course_lib.evaluation` and the ``course``
command's ``train`` / ``eval`` / ``watch``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Task", "task", "task_names", "describe"]

MPE_TASKS = ("simple_spread_v3", "simple_tag_v3")

#: one line per task family, for ``course train --list`` (matrix games: see :func:`describe`)
DESCRIPTIONS = {
    "two_step": "QMIX's two-step game: agent 1 picks the second matrix, then both play it (notebook 03)",
    "gridworld": "agents collect targets on a grid, shared reward (notebook 02)",
    "gridworld_partial": "the grid world, each agent seeing only the cells around it",
    "gridworld_sparse": "the grid world, rewarded only when every target is collected",
    "levers": "CommNet's lever pulling: 5 of 500 agents each pull one of 5 levers, reward = distinct levers (notebook 05)",
    "traffic_junction_easy": "CommNet's traffic junction, one crossing, up to 5 cars that see one cell around (notebook 05)",
    "traffic_junction_medium": "traffic junction with two-way roads, up to 10 cars on 14x14",
    "traffic_junction_hard": "traffic junction with four crossings, up to 20 cars on 18x18",
    "predator_prey": "predators on a grid find and surround a prey they see only nearby (notebooks 03 and 05)",
    "navigation": "cooperative navigation on a grid: every agent reaches the shared goal (notebook 05)",
    "cue_corridor": "T-maze: a cue at the start says which arm pays at the end; needs memory (notebook 06)",
    "sparse_goal_grid": "two agents walk corner to corner for one sparse reward; needs exploration (notebook 06)",
    "neighbour_majority": "each agent guesses the majority bit of its k nearest neighbours; needs communication (notebook 06)",
    "simple_spread_v3": "MPE cooperative navigation: 3 agents cover 3 landmarks (mpe2; batched twin SimpleSpreadVec)",
    "simple_tag_v3": "MPE predator-prey: 3 predators chase a faster prey among obstacles (mpe2; twin SimpleTagVec)",
}


def _constructors() -> dict[str, tuple[Callable, Callable]]:
    """``{name: (make_single, make_batched)}`` for the course tasks and the MPE twins."""
    from course_lib.envs import registry
    from course_lib.envs.mpe import mpe_registry

    return {**registry(), **mpe_registry()}


def task_names() -> list[str]:
    """Every task name :func:`task` accepts."""
    return sorted(_constructors())


def describe(name: str) -> str:
    """One line on the task ``name``."""
    if name.startswith("matrix_"):
        game = name[len("matrix_"):].replace("_", " ")
        return f"repeated one-shot matrix game: {game} (notebooks 02, 03 and 08)"
    return DESCRIPTIONS.get(name, "")


@dataclass(frozen=True)
class Task:
    """An environment of the course: a registry ``name`` and its ``options``
    (keyword arguments of the environment's constructor, e.g. ``grid_size=5``)."""

    name: str
    options: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        known = _constructors()
        if self.name not in known:
            raise ValueError(f"unknown task {self.name!r}; the tasks are: {', '.join(sorted(known))}")

    @property
    def is_mpe(self) -> bool:
        """An MPE task (batched twin of mpe2's environment; ``single()`` is mpe2 itself)."""
        return self.name in MPE_TASKS

    def batched(self, num_envs: int, seed: int | None = None, **extra: Any):
        """The batched twin with ``num_envs`` environments."""
        make = _constructors()[self.name][1]
        return make(int(num_envs), seed=seed, **{**self.options, **extra})

    def single(self, **extra: Any):
        """One PettingZoo ``ParallelEnv`` (mpe2's environment for the MPE tasks)."""
        make = _constructors()[self.name][0]
        return make(**{**self.options, **extra})

    def spec(self) -> dict:
        """JSON-friendly description: ``{"name": ..., "options": {...}}``."""
        return {"name": self.name, "options": {k: _plain(v) for k, v in self.options.items()}}

    def __str__(self) -> str:
        if not self.options:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v!r}" for k, v in self.options.items()) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(repr(self.spec()))


def _plain(value: Any) -> Any:
    """NumPy arrays and tuples as lists, so that a task's spec is JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def task(name: "str | Task", **options: Any) -> Task:
    """The :class:`Task` called ``name`` (or ``name`` itself if it is one), with ``options``
    added to its settings.  An unknown name raises ``ValueError`` listing the tasks."""
    if isinstance(name, Task):
        return Task(name.name, {**name.options, **options}) if options else name
    if not isinstance(name, str):
        raise TypeError(f"a task is a name such as 'simple_spread_v3' or a Task, got {type(name).__name__}")
    return Task(name, dict(options))
