"""MultiAgentGridWorld: agents on a grid collect targets together.

Used in notebooks/02_independent_learners (independent DQN) and
notebooks/06_advanced (DRQN under partial observation, ICM/RND with sparse reward).

Rules
-----
* ``size x size`` grid; ``num_agents`` agents and ``num_targets`` targets spawn on
  distinct random cells.  Moves ``{0: stay, 1: up, 2: down, 3: left, 4: right}``;
  a move off the grid leaves the agent in place; agents may share a cell.
* A target is collected (and disappears) when an agent stands on it after a move.
  The episode terminates when every target is collected and is truncated after
  ``max_steps`` steps.
* Reward, shared by all agents: dense (default) ``+1`` per target collected in the
  step ``- step_penalty``; sparse (``sparse_reward=True``) ``+1`` only in the step the
  last target is collected, 0 otherwise.
* Observation of agent i (``2 + 3 (N - 1) + 3 T`` floats in [-1, 1]): its own
  position ``(row, col) / (size - 1)``; for every other agent ``[visible, d_row, d_col]``
  and for every target ``[visible and not collected, d_row, d_col]`` with offsets
  divided by ``size - 1``.  With ``view_radius=r`` (partial observation) only things
  within Chebyshev distance r are visible; the others are zero-masked.  With
  ``view_radius=None`` everything is visible.
* Episode metrics: ``success`` (all targets collected), ``collected_fraction``.
"""
from __future__ import annotations

import numpy as np

from .base import GRID_MOVES, BatchCore, CoreBatchedEnv, CourseParallelEnv, upscale

__all__ = ["MultiAgentGridWorld", "VecMultiAgentGridWorld", "GridWorldCore"]

_AGENT_COLOURS = np.array(
    [[31, 119, 180], [214, 39, 40], [148, 103, 189], [255, 127, 14],
     [23, 190, 207], [227, 119, 194], [140, 86, 75], [127, 127, 127]], dtype=np.uint8
)


def _distinct_cells(rng: np.random.Generator, k: int, n_cells: int, count: int) -> np.ndarray:
    """``count`` distinct cell ids in ``[0, n_cells)`` for each of ``k`` envs -> ``[k, count]``."""
    return np.argsort(rng.random((k, n_cells)), axis=1)[:, :count]


def _others_index(n: int) -> np.ndarray:
    """``[n, n - 1]``: for agent i, the indices of the other agents in order."""
    idx = np.arange(n)
    return np.stack([np.delete(idx, i) for i in range(n)]) if n > 1 else np.zeros((1, 0), np.int64)


class GridWorldCore(BatchCore):
    name = "multi_agent_gridworld"
    noop_action = 0
    render_modes = ("ansi", "rgb_array")
    metric_fill = {"success": False, "collected_fraction": np.nan}

    def __init__(self, num_envs, rng, size: int = 5, num_agents: int = 2, num_targets: int = 2,
                 max_steps: int = 25, view_radius: int | None = None, sparse_reward: bool = False,
                 step_penalty: float = 0.01):
        super().__init__(num_envs, rng)
        self.size, self.num_agents, self.num_targets = int(size), int(num_agents), int(num_targets)
        if self.size < 2:
            raise ValueError(f"size must be >= 2, got {size}")
        if self.num_agents < 1 or self.num_targets < 1:
            raise ValueError("need at least one agent and one target")
        if self.num_agents + self.num_targets > self.size ** 2:
            raise ValueError(
                f"{num_agents} agents and {num_targets} targets do not fit on a {size}x{size} grid"
            )
        self.max_steps = int(max_steps)
        self.view_radius = None if view_radius is None else int(view_radius)
        self.sparse_reward = bool(sparse_reward)
        self.step_penalty = float(step_penalty)
        N, T, B = self.num_agents, self.num_targets, self.num_envs
        self.n_actions = np.full(N, 5, dtype=np.int64)
        self.obs_dim = 2 + 3 * (N - 1) + 3 * T
        self.obs_low, self.obs_high = -1.0, 1.0
        self._others = _others_index(N)
        self.pos = np.zeros((B, N, 2), dtype=np.int64)
        self.targets = np.zeros((B, T, 2), dtype=np.int64)
        self.present = np.ones((B, T), dtype=bool)
        self.t = np.zeros(B, dtype=np.int64)

    def _reset(self, idx):
        N, T, S = self.num_agents, self.num_targets, self.size
        cells = _distinct_cells(self.rng, idx.size, S * S, N + T)
        rc = np.stack([cells // S, cells % S], axis=-1)
        self.pos[idx] = rc[:, :N]
        self.targets[idx] = rc[:, N:]
        self.present[idx] = True
        self.t[idx] = 0

    def step(self, actions):
        S = self.size
        self.pos = np.clip(self.pos + GRID_MOVES[actions], 0, S - 1)
        on = (self.pos[:, :, None, :] == self.targets[:, None, :, :]).all(-1).any(1)  # [B, T]
        got = on & self.present
        self.present &= ~got
        self.t += 1
        n_got = got.sum(axis=1)
        done_all = ~self.present.any(axis=1)
        if self.sparse_reward:
            team = np.where(done_all & (n_got > 0), 1.0, 0.0)
        else:
            team = n_got - self.step_penalty
        terminated = done_all
        truncated = ~terminated & (self.t >= self.max_steps)
        rewards = np.repeat(team[:, None], self.num_agents, axis=1).astype(np.float32)
        metrics = {
            "success": done_all.copy(),
            "collected_fraction": 1.0 - self.present.mean(axis=1),
        }
        return rewards, terminated, truncated, metrics

    def observe(self):
        B, N, T = self.num_envs, self.num_agents, self.num_targets
        scale = float(self.size - 1)
        own = self.pos / scale  # [B, N, 2]
        rel_a = (self.pos[:, None, :, :] - self.pos[:, :, None, :])  # [B, i, j, 2] = j - i
        rel_a = np.take_along_axis(rel_a, self._others[None, :, :, None], axis=2)  # [B,N,N-1,2]
        rel_t = self.targets[:, None, :, :] - self.pos[:, :, None, :]  # [B, N, T, 2]
        vis_t = np.broadcast_to(self.present[:, None, :], (B, N, T))
        if self.view_radius is None:
            vis_a = np.ones(rel_a.shape[:3], dtype=bool)
        else:
            vis_a = np.abs(rel_a).max(-1) <= self.view_radius
            vis_t = vis_t & (np.abs(rel_t).max(-1) <= self.view_radius)
        feat_a = np.concatenate([vis_a[..., None], rel_a / scale], -1) * vis_a[..., None]
        feat_t = np.concatenate([vis_t[..., None], rel_t / scale], -1) * vis_t[..., None]
        obs = np.concatenate(
            [own, feat_a.reshape(B, N, -1), feat_t.reshape(B, N, -1)], axis=-1
        )
        return obs.astype(np.float32)

    def state(self):
        """Agent and target positions / (size - 1), target presence, time fraction."""
        B = self.num_envs
        scale = float(self.size - 1)
        return np.concatenate([
            (self.pos / scale).reshape(B, -1), (self.targets / scale).reshape(B, -1),
            self.present.astype(float), (self.t / self.max_steps)[:, None],
        ], axis=1).astype(np.float32)

    @property
    def state_dim(self):
        return 2 * self.num_agents + 3 * self.num_targets + 1

    state_low, state_high = 0.0, 1.0

    def _chars(self, b):
        grid = np.full((self.size, self.size), ".", dtype=object)
        for (r, c), p in zip(self.targets[b], self.present[b]):
            if p:
                grid[r, c] = "T"
        for i, (r, c) in enumerate(self.pos[b]):
            grid[r, c] = str(i % 10) if grid[r, c] in (".", "T") else "*"
        return grid

    def render_text(self, b=0):
        rows = [" ".join(row) for row in self._chars(b)]
        head = (f"step {int(self.t[b])}/{self.max_steps}, targets left "
                f"{int(self.present[b].sum())}/{self.num_targets} (digits: agents, T: targets)")
        return "\n".join([head] + rows)

    def render_rgb(self, b=0, px: int = 24):
        cells = np.full((self.size, self.size, 3), 255, dtype=np.uint8)
        if self.view_radius is not None:
            for r, c in self.pos[b]:
                r0, r1 = max(0, r - self.view_radius), r + self.view_radius + 1
                c0, c1 = max(0, c - self.view_radius), c + self.view_radius + 1
                cells[r0:r1, c0:c1] = np.minimum(cells[r0:r1, c0:c1], 235)
        for (r, c), p in zip(self.targets[b], self.present[b]):
            if p:
                cells[r, c] = (44, 160, 44)
        for i, (r, c) in enumerate(self.pos[b]):
            cells[r, c] = _AGENT_COLOURS[i % len(_AGENT_COLOURS)]
        return upscale(cells, px)


class MultiAgentGridWorld(CourseParallelEnv):
    """Agents collect targets on a grid (PettingZoo ParallelEnv); see the module docstring.

    Args:
        size: grid side (default 5).  num_agents (2), num_targets (2), max_steps (25).
        view_radius: None for full observation, or r for a (2r+1)x(2r+1) view.
        sparse_reward: reward only when the last target is collected.
        step_penalty: subtracted every step in the dense reward (default 0.01).
        render_mode: None / "ansi" (text), "human" (print), "rgb_array".
    """

    core_cls = GridWorldCore

    def __init__(self, size: int = 5, num_agents: int = 2, num_targets: int = 2,
                 max_steps: int = 25, view_radius: int | None = None,
                 sparse_reward: bool = False, step_penalty: float = 0.01, render_mode=None):
        super().__init__(render_mode=render_mode, size=size, num_agents=num_agents,
                         num_targets=num_targets, max_steps=max_steps, view_radius=view_radius,
                         sparse_reward=sparse_reward, step_penalty=step_penalty)


class VecMultiAgentGridWorld(CoreBatchedEnv):
    """Batched twin of :class:`MultiAgentGridWorld` (same arguments, plus num_envs and seed)."""

    core_cls = GridWorldCore

    def __init__(self, num_envs: int, size: int = 5, num_agents: int = 2, num_targets: int = 2,
                 max_steps: int = 25, view_radius: int | None = None,
                 sparse_reward: bool = False, step_penalty: float = 0.01,
                 seed: int | None = None):
        super().__init__(num_envs, seed=seed, size=size, num_agents=num_agents,
                         num_targets=num_targets, max_steps=max_steps, view_radius=view_radius,
                         sparse_reward=sparse_reward, step_penalty=step_penalty)
