"""Repeated normal-form games as multi-agent environments, and the QMIX two-step game.

Used in notebooks/02_independent_learners (stateless IQL on the catalogue of
notebooks/01_game_theory) and notebooks/03_value_decomposition (VDN and QMIX on the
two-step game and the QTRAN matrix game).

* :class:`MatrixGame` / :class:`VecMatrixGame` -- any n-player payoff array of shape
  ``(A_1, ..., A_n, n)`` (``payoffs[a_1, ..., a_n, i]`` is player i's payoff, the
  convention of :mod:`course_lib.games`) played for ``rounds`` rounds.  Each round
  every player picks an action and receives its own payoff.  The observation is
  ``[first_round_flag, one-hot of every player's previous action]`` (all zeros but the
  flag in the first round), so ``rounds=1`` (the default) is the one-shot game a
  stateless learner sees, and ``rounds>1`` a repeated game with memory of one round.
* :class:`TwoStepGame` / :class:`VecTwoStepGame` -- the two-step game of QMIX
  (Rashid et al. 2018, Fig. 3): in state 1 agent 1's action picks state 2A (action 0)
  or 2B (action 1), reward 0; in 2A every joint action pays 7, in 2B the payoff is
  ``[[0, 1], [1, 8]]``.  Both agents get the shared reward; optimal return 8.
* :func:`qtran_game` -- the matrix game of QTRAN (Son et al. 2019):
  ``[[8, -12, -12], [-12, 0, 0], [-12, 0, 0]]`` shared by both players.

Catalogue games come from :func:`course_lib.games.catalogue` (``matrix_game(name)``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import BatchCore, CoreBatchedEnv, CourseParallelEnv

__all__ = [
    "MatrixGame",
    "VecMatrixGame",
    "TwoStepGame",
    "VecTwoStepGame",
    "qtran_game",
    "two_step_payoffs",
    "matrix_game",
    "game_payoffs",
    "MatrixGameCore",
    "TwoStepCore",
]

# QTRAN (Son et al. 2019), Table 1a: the non-monotonic matrix game VDN and QMIX miss.
QTRAN_MATRIX = np.array([[8.0, -12.0, -12.0], [-12.0, 0.0, 0.0], [-12.0, 0.0, 0.0]])
# QMIX (Rashid et al. 2018), Fig. 3: payoffs of the second stage of the two-step game.
TWO_STEP_2A = np.full((2, 2), 7.0)
TWO_STEP_2B = np.array([[0.0, 1.0], [1.0, 8.0]])


def qtran_game() -> np.ndarray:
    """The QTRAN matrix game as a common-payoff array of shape ``(3, 3, 2)``."""
    return np.repeat(QTRAN_MATRIX[..., None], 2, axis=-1)


def two_step_payoffs() -> dict[str, np.ndarray]:
    """Second-stage team payoffs of the QMIX two-step game: ``{"2A": ..., "2B": ...}``
    (rows: agent 1's action, columns: agent 2's action)."""
    return {"2A": TWO_STEP_2A.copy(), "2B": TWO_STEP_2B.copy()}


def game_payoffs(name: str) -> np.ndarray:
    """Payoff array of a named game: the catalogue of notebook 01 plus ``"qtran"``."""
    if name == "qtran":
        return qtran_game()
    from course_lib import games

    cat = games.catalogue()
    if name not in cat:
        raise ValueError(f"unknown game {name!r}; known: {sorted(cat) + ['qtran']}")
    return cat[name]


def _check_payoffs(payoffs: Any) -> np.ndarray:
    arr = np.array(payoffs, dtype=float)  # a private copy
    if arr.ndim < 2 or arr.shape[-1] != arr.ndim - 1:
        raise ValueError(
            f"payoffs must have shape (A_1, ..., A_n, n) with payoffs[a..., i] player i's "
            f"payoff; got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("payoffs must be finite")
    return arr


class MatrixGameCore(BatchCore):
    """Batched repeated normal-form game (see module docstring)."""

    agent_prefix = "player"
    metric_fill = {}

    def __init__(self, num_envs, rng, payoffs=None, rounds: int = 1, name: str = "matrix_game"):
        super().__init__(num_envs, rng)
        if payoffs is None:
            raise ValueError("MatrixGame needs a payoff array, e.g. course_lib.games.climbing_game()")
        self.payoffs = _check_payoffs(payoffs)
        self.rounds = int(rounds)
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        self.name = f"matrix_game_{name}" if not name.startswith("matrix_game") else name
        self.num_agents = self.payoffs.ndim - 1
        self.n_actions = np.array(self.payoffs.shape[:-1], dtype=np.int64)
        self.obs_dim = 1 + int(self.n_actions.sum())
        self.obs_low, self.obs_high = 0.0, 1.0
        self._offsets = np.concatenate([[0], np.cumsum(self.n_actions)[:-1]]) + 1
        self._flat = self.payoffs.reshape(-1, self.num_agents)
        self._strides = np.array(
            [int(np.prod(self.n_actions[i + 1:])) for i in range(self.num_agents)], dtype=np.int64
        )
        B = self.num_envs
        self.t = np.zeros(B, dtype=np.int64)
        self.last = np.full((B, self.num_agents), -1, dtype=np.int64)

    def _reset(self, idx):
        self.t[idx] = 0
        self.last[idx] = -1

    def step(self, actions):
        flat = (actions * self._strides[None, :]).sum(axis=1)
        rewards = self._flat[flat].astype(np.float32)  # [B, n]
        self.last = actions.copy()
        self.t += 1
        # a fixed number of rounds is the game itself, not a time limit: terminate
        terminated = self.t >= self.rounds
        return rewards, terminated, np.zeros(self.num_envs, dtype=bool), {}

    def observe(self):
        B, N = self.num_envs, self.num_agents
        obs = np.zeros((B, self.obs_dim), dtype=np.float32)
        obs[:, 0] = self.t == 0
        played = self.last >= 0
        rows, cols = np.nonzero(played)
        obs[rows, self._offsets[cols] + self.last[rows, cols]] = 1.0
        return np.repeat(obs[:, None, :], N, axis=1)

    def state(self):
        return self.observe()[:, 0, :]

    @property
    def state_dim(self):
        return self.obs_dim

    state_low, state_high = 0.0, 1.0

    def render_text(self, b=0):
        last = self.last[b]
        if (last < 0).any():
            played = "no actions yet"
        else:
            pay = self.payoffs[tuple(last)]
            played = f"last joint action {tuple(int(a) for a in last)} paid {tuple(float(p) for p in pay)}"
        return f"{self.name}: round {int(self.t[b])}/{self.rounds}, {played}"


class MatrixGame(CourseParallelEnv):
    """A repeated n-player normal-form game (PettingZoo ParallelEnv).

    Args:
        payoffs: array ``(A_1, ..., A_n, n)``; e.g. ``course_lib.games.climbing_game()``
            or :func:`qtran_game`.  Agents are ``player_0 ... player_{n-1}``.
        rounds: rounds per episode (default 1: the one-shot game).
        name: shown in ``metadata["name"]`` and render().

    Used in notebooks/02_independent_learners and 03_value_decomposition.
    """

    core_cls = MatrixGameCore

    def __init__(self, payoffs=None, rounds: int = 1, name: str = "matrix_game", render_mode=None):
        super().__init__(render_mode=render_mode, payoffs=payoffs, rounds=rounds, name=name)


class VecMatrixGame(CoreBatchedEnv):
    """Batched twin of :class:`MatrixGame`: ``VecMatrixGame(num_envs, payoffs, rounds=1, seed=None)``."""

    core_cls = MatrixGameCore

    def __init__(self, num_envs: int, payoffs=None, rounds: int = 1, name: str = "matrix_game",
                 seed: int | None = None):
        super().__init__(num_envs, seed=seed, payoffs=payoffs, rounds=rounds, name=name)


def matrix_game(name: str, rounds: int = 1, render_mode=None) -> MatrixGame:
    """A catalogue game by name (``course_lib.games.catalogue()`` keys, or ``"qtran"``)."""
    return MatrixGame(game_payoffs(name), rounds=rounds, name=name, render_mode=render_mode)


# ------------------------------------------------------------------- two-step game
class TwoStepCore(BatchCore):
    """Batched QMIX two-step game.  Observation and state: one-hot of (1, 2A, 2B)."""

    name = "two_step_game"
    agent_prefix = "agent"
    num_agents = 2
    obs_dim = 3
    obs_low, obs_high = 0.0, 1.0
    state_low, state_high = 0.0, 1.0

    def __init__(self, num_envs, rng):
        super().__init__(num_envs, rng)
        self.n_actions = np.array([2, 2], dtype=np.int64)
        self.s = np.zeros(self.num_envs, dtype=np.int64)  # 0: state 1, 1: 2A, 2: 2B
        self._second = np.stack([TWO_STEP_2A, TWO_STEP_2B])  # [2, 2, 2]

    def _reset(self, idx):
        self.s[idx] = 0

    def step(self, actions):
        first = self.s == 0
        branch = np.clip(self.s - 1, 0, 1)
        team = np.where(first, 0.0, self._second[branch, actions[:, 0], actions[:, 1]])
        # state 1 -> 2A (agent 1 plays 0) or 2B (agent 1 plays 1); stage 2 ends the game
        self.s = np.where(first, 1 + actions[:, 0], self.s)
        terminated = ~first
        rewards = np.repeat(team[:, None], 2, axis=1).astype(np.float32)
        return rewards, terminated, np.zeros(self.num_envs, dtype=bool), {}

    def observe(self):
        obs = np.zeros((self.num_envs, 3), dtype=np.float32)
        obs[np.arange(self.num_envs), self.s] = 1.0
        return np.repeat(obs[:, None, :], 2, axis=1)

    def state(self):
        return self.observe()[:, 0, :]

    @property
    def state_dim(self):
        return 3

    def render_text(self, b=0):
        return f"two-step game: in state {('1', '2A', '2B')[int(self.s[b])]}"


class TwoStepGame(CourseParallelEnv):
    """The QMIX two-step game (Rashid et al. 2018) as a PettingZoo ParallelEnv.

    Agents ``agent_0`` (agent 1 of the paper) and ``agent_1``, two actions each, two
    steps; shared reward, optimal return 8 (go to 2B, then both play action 1).
    Used in notebooks/03_value_decomposition.
    """

    core_cls = TwoStepCore

    def __init__(self, render_mode=None):
        super().__init__(render_mode=render_mode)


class VecTwoStepGame(CoreBatchedEnv):
    """Batched twin of :class:`TwoStepGame`: ``VecTwoStepGame(num_envs, seed=None)``."""

    core_cls = TwoStepCore

    def __init__(self, num_envs: int, seed: int | None = None):
        super().__init__(num_envs, seed=seed)
