"""Cooperative navigation (the CommNet reproduction's continuous rendezvous task).

Used in notebooks/05_communication.

``num_agents`` agents (default 3) move on the square ``[-1, 1]^2`` with discrete moves
``{0: stay, 1: up, 2: down, 3: left, 4: right}`` of length ``step_size`` (0.25).
Agents spawn uniformly in ``[-spawn_span, spawn_span]^2`` (span 0.4) and so does the
goal, which all agents share (``shared_goal=False`` gives each agent its own goal).

Observation of agent i (``4 + 2 (N - 1)`` floats): its position (2), its goal (2),
then the positions of the other agents relative to it, each zero-masked when
farther than ``vision_radius`` (0.4).

Shared reward each step (the formula of the CommNet reproduction)::

    r = -distance_weight * mean_dist
        + progress_scale * (prev_mean_dist - mean_dist)
        - time_penalty
        - collision_penalty * collisions
        + success_bonus * [every agent within goal_eps of its goal]

where ``mean_dist`` is the agents' mean distance to their goals and ``collisions``
counts pairs of agents closer than ``collision_radius``.  The episode terminates on
success and is truncated after ``max_steps`` (40).

Defaults: span 0.4, step 0.25, horizon 40, vision 0.4 (SPECS); the reward weights
(distance 0.2, progress 2.0, collision 0.2, goal_eps 0.2) are those of the tuned
CommNet reproduction run, success bonus 10 and time penalty 0.  ``TUNED`` holds the
whole tuned run (vision 0.3, span 0.6, success bonus 20).
"""
from __future__ import annotations

import numpy as np

from .base import BatchCore, CoreBatchedEnv, CourseParallelEnv

__all__ = ["CooperativeNavigation", "VecCooperativeNavigation", "NavigationCore", "TUNED"]

# The tuned run of the CommNet reproduction (3 agents, K=2 communication steps).
TUNED = dict(num_agents=3, vision_radius=0.3, spawn_span=0.6, collision_penalty=0.2,
             success_bonus=20.0, progress_scale=2.0, distance_weight=0.2, goal_eps=0.2)

# (dx, dy) of {stay, up, down, left, right}; "up" is +y
NAV_MOVES = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, -1.0], [-1.0, 0.0], [1.0, 0.0]])


class NavigationCore(BatchCore):
    name = "cooperative_navigation"
    noop_action = 0
    metric_fill = {"success": False, "final_mean_dist": np.nan, "collisions": 0}

    def __init__(self, num_envs, rng, num_agents: int = 3, spawn_span: float = 0.4,
                 step_size: float = 0.25, max_steps: int = 40, vision_radius: float = 0.4,
                 goal_eps: float = 0.2, collision_radius: float = 0.1,
                 collision_penalty: float = 0.2, success_bonus: float = 10.0,
                 progress_scale: float = 2.0, distance_weight: float = 0.2,
                 time_penalty: float = 0.0, shared_goal: bool = True):
        super().__init__(num_envs, rng)
        self.num_agents = int(num_agents)
        if self.num_agents < 1:
            raise ValueError(f"num_agents must be >= 1, got {num_agents}")
        if not 0.0 < spawn_span <= 1.0:
            raise ValueError(f"spawn_span must be in (0, 1], got {spawn_span}")
        self.spawn_span, self.step_size = float(spawn_span), float(step_size)
        self.max_steps = int(max_steps)
        self.vision_radius, self.goal_eps = float(vision_radius), float(goal_eps)
        self.collision_radius = float(collision_radius)
        self.collision_penalty, self.success_bonus = float(collision_penalty), float(success_bonus)
        self.progress_scale, self.distance_weight = float(progress_scale), float(distance_weight)
        self.time_penalty, self.shared_goal = float(time_penalty), bool(shared_goal)
        B, N = self.num_envs, self.num_agents
        self.n_actions = np.full(N, 5, dtype=np.int64)
        self.obs_dim = 4 + 2 * (N - 1)
        self.obs_low, self.obs_high = -2.0, 2.0
        self._others = np.stack([np.delete(np.arange(N), i) for i in range(N)]) if N > 1 \
            else np.zeros((1, 0), dtype=np.int64)
        self._pairs = np.triu(np.ones((N, N), dtype=bool), k=1)
        self.pos = np.zeros((B, N, 2))
        self.goal = np.zeros((B, N, 2))
        self.prev_dist = np.zeros(B)
        self.t = np.zeros(B, dtype=np.int64)
        self.n_collisions = np.zeros(B, dtype=np.int64)

    def _mean_dist(self):
        return np.linalg.norm(self.pos - self.goal, axis=-1).mean(axis=1)

    def _reset(self, idx):
        k, N, span = idx.size, self.num_agents, self.spawn_span
        self.pos[idx] = self.rng.uniform(-span, span, size=(k, N, 2))
        if self.shared_goal:
            g = self.rng.uniform(-span, span, size=(k, 1, 2))
            self.goal[idx] = np.repeat(g, N, axis=1)
        else:
            self.goal[idx] = self.rng.uniform(-span, span, size=(k, N, 2))
        self.t[idx] = 0
        self.n_collisions[idx] = 0
        self.prev_dist[idx] = self._mean_dist()[idx]

    def collisions(self) -> np.ndarray:
        """``[B]`` number of agent pairs closer than ``collision_radius``."""
        d = np.linalg.norm(self.pos[:, :, None, :] - self.pos[:, None, :, :], axis=-1)
        return ((d < self.collision_radius) & self._pairs[None]).sum(axis=(1, 2))

    def step(self, actions):
        self.pos = np.clip(self.pos + NAV_MOVES[actions] * self.step_size, -1.0, 1.0)
        self.t += 1
        dists = np.linalg.norm(self.pos - self.goal, axis=-1)  # [B, N]
        mean_dist = dists.mean(axis=1)
        coll = self.collisions()
        self.n_collisions += coll
        success = (dists < self.goal_eps).all(axis=1)
        team = (
            -self.distance_weight * mean_dist
            + self.progress_scale * (self.prev_dist - mean_dist)
            - self.time_penalty
            - self.collision_penalty * coll
            + self.success_bonus * success
        )
        self.prev_dist = mean_dist
        terminated = success
        truncated = ~success & (self.t >= self.max_steps)
        rewards = np.repeat(team[:, None], self.num_agents, axis=1).astype(np.float32)
        metrics = {"success": success.copy(), "final_mean_dist": mean_dist.copy(),
                   "collisions": self.n_collisions.copy()}
        return rewards, terminated, truncated, metrics

    def observe(self):
        B, N = self.num_envs, self.num_agents
        rel = self.pos[:, None, :, :] - self.pos[:, :, None, :]  # [B, i, j, 2] = p_j - p_i
        rel = np.take_along_axis(rel, self._others[None, :, :, None], axis=2)
        seen = np.linalg.norm(rel, axis=-1, keepdims=True) <= self.vision_radius
        obs = np.concatenate([self.pos, self.goal, (rel * seen).reshape(B, N, -1)], axis=-1)
        return obs.astype(np.float32)

    def state(self):
        B = self.num_envs
        return np.concatenate([self.pos.reshape(B, -1), self.goal.reshape(B, -1)], axis=1).astype(np.float32)

    @property
    def state_dim(self):
        return 4 * self.num_agents

    state_low, state_high = -1.0, 1.0

    def render_text(self, b=0, width: int = 21):
        """A coarse character map of ``[-1, 1]^2`` (G: goal, digits: agents)."""
        grid = np.full((width, width), ".", dtype=object)

        def cell(p):
            col = int(round((p[0] + 1) / 2 * (width - 1)))
            row = int(round((1 - p[1]) / 2 * (width - 1)))
            return row, col

        for g in np.unique(self.goal[b], axis=0):
            grid[cell(g)] = "G"
        for i, p in enumerate(self.pos[b]):
            grid[cell(p)] = str(i % 10)
        d = np.linalg.norm(self.pos[b] - self.goal[b], axis=-1)
        head = (f"navigation: step {int(self.t[b])}/{self.max_steps}, mean distance "
                f"{d.mean():.3f} (goal_eps {self.goal_eps})")
        return "\n".join([head] + [" ".join(row) for row in grid])


class CooperativeNavigation(CourseParallelEnv):
    """Cooperative navigation (PettingZoo ParallelEnv); see the module docstring.

    Args: num_agents (3), spawn_span (0.4), step_size (0.25), max_steps (40),
    vision_radius (0.4), goal_eps (0.2), collision_radius (0.1), collision_penalty
    (0.2), success_bonus (10), progress_scale (2.0), distance_weight (0.2),
    time_penalty (0.0), shared_goal (True).
    """

    core_cls = NavigationCore

    def __init__(self, num_agents: int = 3, spawn_span: float = 0.4, step_size: float = 0.25,
                 max_steps: int = 40, vision_radius: float = 0.4, goal_eps: float = 0.2,
                 collision_radius: float = 0.1, collision_penalty: float = 0.2,
                 success_bonus: float = 10.0, progress_scale: float = 2.0,
                 distance_weight: float = 0.2, time_penalty: float = 0.0,
                 shared_goal: bool = True, render_mode=None):
        super().__init__(render_mode=render_mode, num_agents=num_agents, spawn_span=spawn_span,
                         step_size=step_size, max_steps=max_steps, vision_radius=vision_radius,
                         goal_eps=goal_eps, collision_radius=collision_radius,
                         collision_penalty=collision_penalty, success_bonus=success_bonus,
                         progress_scale=progress_scale, distance_weight=distance_weight,
                         time_penalty=time_penalty, shared_goal=shared_goal)


class VecCooperativeNavigation(CoreBatchedEnv):
    """Batched twin of :class:`CooperativeNavigation` (same arguments, plus num_envs and seed)."""

    core_cls = NavigationCore

    def __init__(self, num_envs: int, num_agents: int = 3, spawn_span: float = 0.4,
                 step_size: float = 0.25, max_steps: int = 40, vision_radius: float = 0.4,
                 goal_eps: float = 0.2, collision_radius: float = 0.1,
                 collision_penalty: float = 0.2, success_bonus: float = 10.0,
                 progress_scale: float = 2.0, distance_weight: float = 0.2,
                 time_penalty: float = 0.0, shared_goal: bool = True,
                 seed: int | None = None):
        super().__init__(num_envs, seed=seed, num_agents=num_agents, spawn_span=spawn_span,
                         step_size=step_size, max_steps=max_steps, vision_radius=vision_radius,
                         goal_eps=goal_eps, collision_radius=collision_radius,
                         collision_penalty=collision_penalty, success_bonus=success_bonus,
                         progress_scale=progress_scale, distance_weight=distance_weight,
                         time_penalty=time_penalty, shared_goal=shared_goal)
