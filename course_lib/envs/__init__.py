"""The course environments: one module per family, each a PettingZoo ``ParallelEnv``
with a batched NumPy twin ``Vec<Name>``.

=========================  ================================  ==========================
single env                 batched twin                      taught in
=========================  ================================  ==========================
MatrixGame                 VecMatrixGame                     02_independent_learners
TwoStepGame                VecTwoStepGame                    03_value_decomposition
MultiAgentGridWorld        VecMultiAgentGridWorld            02, 06_advanced
LeverPulling               VecLeverPulling                   05_communication
TrafficJunction            VecTrafficJunction                05_communication
PredatorPrey               VecPredatorPrey                   05_communication
CooperativeNavigation      VecCooperativeNavigation          05_communication
CueCorridor                VecCueCorridor                    06_advanced (memory)
SparseGoalGrid             VecSparseGoalGrid                 06_advanced (exploration)
NeighbourMajority          VecNeighbourMajority              06_advanced (scaling)
(mpe2 parallel envs)       SimpleSpreadVec, SimpleTagVec     04_maddpg (``envs.mpe``)
=========================  ================================  ==========================

Conventions (see :mod:`course_lib.envs.base`): ``reset(seed=) -> (obs, infos)`` and
``step(actions) -> (obs, rewards, terminations, truncations, infos)`` keyed by agent
name in the single env; arrays ``[batch, agents, ...]`` with same-step automatic
resets in the twin.  A wrong action raises ``ValueError`` naming the agent and the
expected space.  Reference policies (random / no-op / heuristic) are in
:mod:`course_lib.envs.policies`; :func:`registry` maps task names to constructors.

The MPE twins live in :mod:`course_lib.envs.mpe` and are imported on first use
(``course_lib.envs.SimpleSpreadVec``), so importing this package stays light.
"""
from __future__ import annotations

import functools
from typing import Callable

from .base import BatchedEnv, CourseParallelEnv
from .gridworld import MultiAgentGridWorld, VecMultiAgentGridWorld
from .levers import LeverPulling, VecLeverPulling
from .matrix_games import (
    MatrixGame,
    TwoStepGame,
    VecMatrixGame,
    VecTwoStepGame,
    game_payoffs,
    matrix_game,
    qtran_game,
    two_step_payoffs,
)
from .majority import NeighbourMajority, VecNeighbourMajority
from .memory import CueCorridor, SparseGoalGrid, VecCueCorridor, VecSparseGoalGrid
from .navigation import CooperativeNavigation, VecCooperativeNavigation
from .predator_prey import PredatorPrey, VecPredatorPrey
from .traffic_junction import TJ_VERSIONS, TrafficJunction, VecTrafficJunction

__all__ = [
    "CourseParallelEnv",
    "BatchedEnv",
    "MatrixGame",
    "VecMatrixGame",
    "TwoStepGame",
    "VecTwoStepGame",
    "qtran_game",
    "two_step_payoffs",
    "matrix_game",
    "game_payoffs",
    "MultiAgentGridWorld",
    "VecMultiAgentGridWorld",
    "LeverPulling",
    "VecLeverPulling",
    "TrafficJunction",
    "VecTrafficJunction",
    "PredatorPrey",
    "VecPredatorPrey",
    "CooperativeNavigation",
    "VecCooperativeNavigation",
    "CueCorridor",
    "VecCueCorridor",
    "SparseGoalGrid",
    "VecSparseGoalGrid",
    "NeighbourMajority",
    "VecNeighbourMajority",
    "registry",
    "SimpleSpreadVec",
    "SimpleTagVec",
]

_LAZY_MPE = {"SimpleSpreadVec", "SimpleTagVec"}


def __getattr__(name: str):
    """Import the MPE twins from :mod:`course_lib.envs.mpe` only when asked for."""
    if name in _LAZY_MPE:
        from . import mpe

        return getattr(mpe, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _pair(single_cls, vec_cls, **fixed) -> tuple[Callable, Callable]:
    def make_single(**kwargs):
        return single_cls(**{**fixed, **kwargs})

    def make_batched(num_envs: int, **kwargs):
        return vec_cls(num_envs, **{**fixed, **kwargs})

    make_single.__name__ = f"make_{single_cls.__name__}"
    make_batched.__name__ = f"make_{vec_cls.__name__}"
    return make_single, make_batched


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, tuple[Callable, Callable]]:
    from course_lib import games

    reg: dict[str, tuple[Callable, Callable]] = {}
    for name in list(games.catalogue()) + ["qtran"]:
        payoffs = game_payoffs(name)
        reg[f"matrix_{name}"] = _pair(MatrixGame, VecMatrixGame, payoffs=payoffs, name=name)
    reg["two_step"] = _pair(TwoStepGame, VecTwoStepGame)
    reg["gridworld"] = _pair(MultiAgentGridWorld, VecMultiAgentGridWorld)
    reg["gridworld_partial"] = _pair(MultiAgentGridWorld, VecMultiAgentGridWorld, view_radius=1)
    reg["gridworld_sparse"] = _pair(MultiAgentGridWorld, VecMultiAgentGridWorld, sparse_reward=True)
    reg["levers"] = _pair(LeverPulling, VecLeverPulling)
    for version in TJ_VERSIONS:
        reg[f"traffic_junction_{version}"] = _pair(TrafficJunction, VecTrafficJunction, version=version)
    reg["predator_prey"] = _pair(PredatorPrey, VecPredatorPrey)
    reg["navigation"] = _pair(CooperativeNavigation, VecCooperativeNavigation)
    reg["cue_corridor"] = _pair(CueCorridor, VecCueCorridor)
    reg["sparse_goal_grid"] = _pair(SparseGoalGrid, VecSparseGoalGrid)
    reg["neighbour_majority"] = _pair(NeighbourMajority, VecNeighbourMajority)
    return reg


def registry() -> dict[str, tuple[Callable, Callable]]:
    """``{task_name: (make_single, make_batched)}`` for the tasks of this package.

    ``make_single(**overrides)`` builds the PettingZoo env and
    ``make_batched(num_envs, **overrides)`` its twin (``seed=`` too).  Names:
    ``matrix_<game>`` for every game of ``course_lib.games.catalogue()`` and
    ``matrix_qtran``, ``two_step``, ``gridworld`` (+ ``_partial``, ``_sparse``),
    ``levers``, ``traffic_junction_{easy,medium,hard}``, ``predator_prey``,
    ``navigation``, ``cue_corridor``, ``sparse_goal_grid``, ``neighbour_majority``.  The MPE entries come from ``course_lib.envs.mpe.mpe_registry()``.
    """
    return dict(_registry())
