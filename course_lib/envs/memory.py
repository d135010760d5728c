"""Two small grid tasks for notebooks/06_advanced: one that needs memory (DRQN), one that
needs exploration (ICM / RND).  Both are PettingZoo ParallelEnvs with a batched twin (see
:mod:`.base`), registered as ``cue_corridor`` and ``sparse_goal_grid`` in
:func:`course_lib.envs.registry`.  The agents of one env do not interact: each walks its
own copy of the task, and one shared network learns from all of them.

CueCorridor (memory, for DRQN)
------------------------------
Every agent walks its own T-maze: a corridor of ``length`` cells going up from the
start cell, then a junction with a left and a right arm.  At the first step only,
the agent sees a cue (+1: the left arm pays, -1: the right arm pays); afterwards the
cue reads 0.  Entering the cued arm pays ``+1``, the other arm ``wrong_arm`` (0), and
the agent is finished (it stays put and earns nothing more); every other step costs
``step_penalty`` (0.05).  The episode terminates when every agent is finished and is
truncated after ``max_steps``.

* Moves ``{0: stay, 1: up, 2: down, 3: left, 4: right}``; left/right only do something
  at the junction; a move off the corridor leaves the agent in place.
* Observation (4 floats): ``[height / length, at_junction, cue (first step only),
  finished]``.  Nothing else tells the time, so a policy without memory cannot know
  the cue at the junction: it takes the cued arm half of the time at best.
* Episode metrics: ``success`` (every agent took its cued arm), ``correct_fraction``.

SparseGoalGrid (sparse reward, for ICM / RND)
---------------------------------------------
A ``height x size`` open grid (default 4 rows x 16 columns); every agent starts in the
bottom-left corner and must reach the goal in the top-right corner
(``height + size - 2`` moves away).  Reaching it pays ``+1`` once and finishes the agent;
nothing else is ever rewarded.  The episode terminates when every agent is finished and
is truncated after ``max_steps`` (40).  A uniformly random walk almost never gets there
(notebooks/06_advanced measures how rarely).

* Moves as above; moves off the grid leave the agent in place; agents may share cells.
* Observation (``height * size + 1`` floats): the one-hot of the agent's own cell and
  a ``finished`` flag.
* Episode metrics: ``success`` (every agent reached the goal), ``reached_fraction``.
"""
from __future__ import annotations

import numpy as np

from .base import GRID_MOVES, BatchCore, CoreBatchedEnv, CourseParallelEnv

__all__ = ["CueCorridor", "VecCueCorridor", "SparseGoalGrid", "VecSparseGoalGrid"]

STAY, UP, DOWN, LEFT, RIGHT = range(5)


class CueCorridorCore(BatchCore):
    name = "cue_corridor"
    noop_action = STAY
    metric_fill = {"success": False, "correct_fraction": np.nan}

    def __init__(self, num_envs, rng, num_agents: int = 2, length: int = 4, max_steps: int = 12,
                 step_penalty: float = 0.05, wrong_arm: float = 0.0):
        super().__init__(num_envs, rng)
        self.wrong_arm = float(wrong_arm)
        if int(num_agents) < 1:
            raise ValueError(f"need at least one agent, got num_agents={num_agents}")
        if int(length) < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        if int(max_steps) < int(length) + 1:
            raise ValueError(f"max_steps={max_steps} is too short to reach an arm ({int(length) + 1} moves)")
        self.num_agents, self.length, self.max_steps = int(num_agents), int(length), int(max_steps)
        self.step_penalty = float(step_penalty)
        B, N = self.num_envs, self.num_agents
        self.n_actions = np.full(N, 5, dtype=np.int64)
        self.obs_dim, self.obs_low, self.obs_high = 4, -1.0, 1.0
        self.height = np.zeros((B, N), dtype=np.int64)     # 0 = start, length = junction
        self.cue = np.ones((B, N), dtype=np.int64)          # +1 left pays, -1 right pays
        self.finished = np.zeros((B, N), dtype=bool)
        self.correct = np.zeros((B, N), dtype=bool)
        self.t = np.zeros(B, dtype=np.int64)

    def _reset(self, idx):
        self.height[idx] = 0
        self.cue[idx] = np.where(self.rng.random((idx.size, self.num_agents)) < 0.5, 1, -1)
        self.finished[idx] = False
        self.correct[idx] = False
        self.t[idx] = 0

    def step(self, actions):
        alive = ~self.finished
        at_junction = self.height == self.length
        up = alive & (actions == UP) & ~at_junction
        down = alive & (actions == DOWN) & (self.height > 0)
        self.height += up.astype(np.int64) - down.astype(np.int64)
        turn = alive & at_junction & ((actions == LEFT) | (actions == RIGHT))
        chose_left = actions == LEFT
        took_cued = turn & (chose_left == (self.cue == 1))
        rewards = np.where(turn, np.where(took_cued, 1.0, self.wrong_arm), np.where(alive, -self.step_penalty, 0.0))
        self.finished |= turn
        self.correct |= took_cued
        self.t += 1
        terminated = self.finished.all(axis=1)
        truncated = ~terminated & (self.t >= self.max_steps)
        metrics = {"success": self.correct.all(axis=1), "correct_fraction": self.correct.mean(axis=1)}
        return rewards.astype(np.float32), terminated, truncated, metrics

    def observe(self):
        first = (self.t == 0)[:, None]
        return np.stack([
            self.height / self.length,
            (self.height == self.length) & ~self.finished,
            np.where(first, self.cue, 0),
            self.finished,
        ], axis=-1).astype(np.float32)

    def render_text(self, b=0):
        rows = []
        for i in range(self.num_agents):
            where = "finished" if self.finished[b, i] else f"height {self.height[b, i]}/{self.length}"
            rows.append(f"agent {i}: {where}, cue {'left' if self.cue[b, i] == 1 else 'right'}")
        return "\n".join([f"step {int(self.t[b])}/{self.max_steps}"] + rows)


class SparseGoalGridCore(BatchCore):
    name = "sparse_goal_grid"
    noop_action = STAY
    metric_fill = {"success": False, "reached_fraction": np.nan}

    def __init__(self, num_envs, rng, num_agents: int = 2, size: int = 16, height: int | None = 4,
                 max_steps: int = 40):
        super().__init__(num_envs, rng)
        rows = int(size) if height is None else int(height)
        if int(size) < 2 or rows < 1:
            raise ValueError(f"need size >= 2 columns and height >= 1 rows, got size={size}, height={height}")
        if int(num_agents) < 1:
            raise ValueError(f"need at least one agent, got num_agents={num_agents}")
        self.num_agents, self.size, self.rows, self.max_steps = int(num_agents), int(size), rows, int(max_steps)
        if self.max_steps < rows + self.size - 2:
            raise ValueError(f"max_steps={max_steps} is too short to reach the goal ({rows + self.size - 2} moves)")
        B, N = self.num_envs, self.num_agents
        self.n_actions = np.full(N, 5, dtype=np.int64)
        self.obs_dim, self.obs_low, self.obs_high = rows * self.size + 1, 0.0, 1.0
        self.start = np.array([rows - 1, 0])
        self.goal = np.array([0, self.size - 1])
        self._high = np.array([rows - 1, self.size - 1])
        self.pos = np.zeros((B, N, 2), dtype=np.int64)
        self.finished = np.zeros((B, N), dtype=bool)
        self.t = np.zeros(B, dtype=np.int64)

    def _reset(self, idx):
        self.pos[idx] = self.start
        self.finished[idx] = False
        self.t[idx] = 0

    def step(self, actions):
        alive = ~self.finished
        moved = np.clip(self.pos + GRID_MOVES[actions], 0, self._high)
        self.pos = np.where(alive[..., None], moved, self.pos)
        reached = alive & (self.pos == self.goal).all(-1)
        self.finished |= reached
        self.t += 1
        terminated = self.finished.all(axis=1)
        truncated = ~terminated & (self.t >= self.max_steps)
        metrics = {"success": terminated.copy(), "reached_fraction": self.finished.mean(axis=1)}
        return reached.astype(np.float32), terminated, truncated, metrics

    def observe(self):
        B, N, S = self.num_envs, self.num_agents, self.size
        obs = np.zeros((B, N, self.obs_dim), dtype=np.float32)
        cell = self.pos[..., 0] * S + self.pos[..., 1]
        np.put_along_axis(obs, cell[..., None], 1.0, axis=-1)
        obs[..., -1] = self.finished
        return obs

    def render_text(self, b=0):
        grid = np.full((self.rows, self.size), ".", dtype=object)
        grid[tuple(self.goal)] = "G"
        for i, (r, c) in enumerate(self.pos[b]):
            grid[r, c] = str(i % 10)
        head = f"step {int(self.t[b])}/{self.max_steps} (digits: agents, G: goal)"
        return "\n".join([head] + [" ".join(row) for row in grid])


class CueCorridor(CourseParallelEnv):
    """T-maze memory task (PettingZoo ParallelEnv); see the module docstring."""

    core_cls = CueCorridorCore

    def __init__(self, num_agents: int = 2, length: int = 4, max_steps: int = 12,
                 step_penalty: float = 0.05, wrong_arm: float = 0.0, render_mode=None):
        super().__init__(render_mode=render_mode, num_agents=num_agents, length=length,
                         max_steps=max_steps, step_penalty=step_penalty, wrong_arm=wrong_arm)


class VecCueCorridor(CoreBatchedEnv):
    """Batched twin of :class:`CueCorridor` (same arguments, plus num_envs and seed)."""

    core_cls = CueCorridorCore

    def __init__(self, num_envs: int, num_agents: int = 2, length: int = 4, max_steps: int = 12,
                 step_penalty: float = 0.05, wrong_arm: float = 0.0, seed: int | None = None):
        super().__init__(num_envs, seed=seed, num_agents=num_agents, length=length,
                         max_steps=max_steps, step_penalty=step_penalty, wrong_arm=wrong_arm)


class SparseGoalGrid(CourseParallelEnv):
    """Corner-to-corner grid with a single sparse reward (PettingZoo ParallelEnv)."""

    core_cls = SparseGoalGridCore

    def __init__(self, num_agents: int = 2, size: int = 16, height: int | None = 4, max_steps: int = 40,
                 render_mode=None):
        super().__init__(render_mode=render_mode, num_agents=num_agents, size=size, height=height,
                         max_steps=max_steps)


class VecSparseGoalGrid(CoreBatchedEnv):
    """Batched twin of :class:`SparseGoalGrid` (same arguments, plus num_envs and seed)."""

    core_cls = SparseGoalGridCore

    def __init__(self, num_envs: int, num_agents: int = 2, size: int = 16, height: int | None = 4,
                 max_steps: int = 40, seed: int | None = None):
        super().__init__(num_envs, seed=seed, num_agents=num_agents, size=size, height=height,
                         max_steps=max_steps)
