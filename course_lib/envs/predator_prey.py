"""Predator-prey on a grid (the CommNet reproduction's hunting task).

Used in notebooks/05_communication.

Predators (the agents ``predator_0 ...``) hunt prey on a ``grid_size x grid_size``
grid.  Settings follow the CommNet reproduction (after Sukhbaatar et al. 2016):
7x7 grid, vision range 2, horizon 40, one prey that moves with probability 0.5 a
step, caught when at least two predators are within the catch radius 1.0,
success bonus 10, time penalty 0.1, collision penalty 0.2.

Rules
-----
* Predators and prey spawn on distinct random cells.  Predator moves
  ``{0: stay, 1: up, 2: down, 3: left, 4: right}``; a move off the grid stays put.
  A move into a cell another predator also targets (or stays in) fails and the
  predators involved stay (each failed move is a *collision*).  Predators may
  share a cell with prey.
* Then each live prey, with probability ``prey_move_prob``, tries a random one of
  the four moves; it stays if the cell is off the grid, holds a predator or is
  targeted by another prey.
* A prey is caught when at least ``catchers_needed`` (2) predators are within
  Euclidean distance ``catch_radius`` (1.0: the prey's cell and its 4 neighbours);
  caught prey leave the grid.
* Shared reward each step: ``-time_penalty - collision_penalty * collisions
  + success_bonus * (prey caught this step) / num_prey``; so catching every prey
  earns ``success_bonus`` in total.  The episode terminates when every prey is
  caught (``success``) and is truncated after ``max_steps``.
* Observation of a predator: a ``(2v+1) x (2v+1)`` view (v = ``vision_range``) with
  three channels -- other predators, live prey, outside the grid -- flattened
  channel by channel, then its own position ``(row, col) / (grid_size - 1)``.
"""
from __future__ import annotations

import numpy as np

from .base import GRID_MOVES, BatchCore, CoreBatchedEnv, CourseParallelEnv, resolve_moves, upscale

__all__ = ["PredatorPrey", "VecPredatorPrey", "PredatorPreyCore"]


class PredatorPreyCore(BatchCore):
    name = "predator_prey"
    agent_prefix = "predator"
    noop_action = 0
    render_modes = ("ansi", "rgb_array")
    metric_fill = {"success": False, "prey_caught": np.nan, "collisions": 0}

    def __init__(self, num_envs, rng, grid_size: int = 7, num_predators: int = 3,
                 num_prey: int = 1, vision_range: int = 2, max_steps: int = 40,
                 catch_radius: float = 1.0, catchers_needed: int = 2, prey_move_prob: float = 0.5,
                 success_bonus: float = 10.0, time_penalty: float = 0.1,
                 collision_penalty: float = 0.2):
        super().__init__(num_envs, rng)
        self.size, self.num_agents, self.num_prey = int(grid_size), int(num_predators), int(num_prey)
        self.catchers_needed = int(catchers_needed)
        if self.catchers_needed < 2:
            raise ValueError(f"catchers_needed must be >= 2 (a catch takes two predators), got {catchers_needed}")
        if self.num_agents < self.catchers_needed:
            raise ValueError(
                f"num_predators ({num_predators}) must be >= catchers_needed ({self.catchers_needed})"
            )
        if self.num_prey < 1:
            raise ValueError(f"num_prey must be >= 1, got {num_prey}")
        if self.num_agents + self.num_prey > self.size ** 2:
            raise ValueError("too many predators and prey for the grid")
        if not 0.0 <= prey_move_prob <= 1.0:
            raise ValueError(f"prey_move_prob must be in [0, 1], got {prey_move_prob}")
        self.vision = int(vision_range)
        if self.vision < 0:
            raise ValueError(f"vision_range must be >= 0, got {vision_range}")
        self.max_steps = int(max_steps)
        self.catch_radius = float(catch_radius)
        self.prey_move_prob = float(prey_move_prob)
        self.success_bonus = float(success_bonus)
        self.time_penalty = float(time_penalty)
        self.collision_penalty = float(collision_penalty)
        B, N, P, S, v = self.num_envs, self.num_agents, self.num_prey, self.size, self.vision
        self.view = 2 * v + 1
        self.obs_dim = 3 * self.view ** 2 + 2
        self.obs_low, self.obs_high = 0.0, 1.0
        self.n_actions = np.full(N, 5, dtype=np.int64)
        self._Sp = S + 2 * v
        outside = np.ones((self._Sp, self._Sp), dtype=np.float32)
        outside[v: v + S, v: v + S] = 0.0
        self._outside = outside.ravel()
        dr, dc = np.meshgrid(np.arange(-v, v + 1), np.arange(-v, v + 1), indexing="ij")
        self._view_off = (dr * self._Sp + dc).ravel()
        self.pred = np.zeros((B, N, 2), dtype=np.int64)
        self.prey = np.zeros((B, P, 2), dtype=np.int64)
        self.alive = np.ones((B, P), dtype=bool)
        self.t = np.zeros(B, dtype=np.int64)
        self.n_collisions = np.zeros(B, dtype=np.int64)

    def _reset(self, idx):
        N, P, S = self.num_agents, self.num_prey, self.size
        cells = np.argsort(self.rng.random((idx.size, S * S)), axis=1)[:, : N + P]
        rc = np.stack([cells // S, cells % S], axis=-1)
        self.prey[idx] = rc[:, :P]
        self.pred[idx] = rc[:, P:]
        self.alive[idx] = True
        self.t[idx] = 0
        self.n_collisions[idx] = 0

    def step(self, actions):
        B, S = self.num_envs, self.size
        # predators: simultaneous moves, conflicts fail
        cur = self.pred[..., 0] * S + self.pred[..., 1]
        tgt_rc = np.clip(self.pred + GRID_MOVES[actions], 0, S - 1)
        tgt = tgt_rc[..., 0] * S + tgt_rc[..., 1]
        final, failed = resolve_moves(cur, tgt)
        self.pred = np.stack(np.divmod(final, S), axis=-1)
        collisions = failed.sum(axis=1)
        self.n_collisions += collisions
        # prey: random moves with probability prey_move_prob
        u_move = self.rng.random((B, self.num_prey))
        u_dir = self.rng.random((B, self.num_prey))
        direction = 1 + np.minimum((u_dir * 4).astype(np.int64), 3)
        moves = (u_move < self.prey_move_prob) & self.alive
        p_tgt_rc = self.prey + GRID_MOVES[direction] * moves[..., None]
        inside = ((p_tgt_rc >= 0) & (p_tgt_rc < S)).all(-1)
        p_cur = self.prey[..., 0] * S + self.prey[..., 1]
        p_tgt = np.where(inside, p_tgt_rc[..., 0] * S + p_tgt_rc[..., 1], p_cur)
        on_pred = (p_tgt[:, :, None] == final[:, None, :]).any(axis=2)
        p_tgt = np.where(on_pred, p_cur, p_tgt)
        p_final, _ = resolve_moves(p_cur, p_tgt, self.alive)
        self.prey = np.stack(np.divmod(p_final, S), axis=-1)
        # catch: enough predators within the catch radius
        diff = self.pred[:, :, None, :] - self.prey[:, None, :, :]
        near = (diff ** 2).sum(-1) <= self.catch_radius ** 2 + 1e-9  # [B, N, P]
        caught = (near.sum(axis=1) >= self.catchers_needed) & self.alive
        self.alive &= ~caught
        self.t += 1
        team = (
            -self.time_penalty
            - self.collision_penalty * collisions
            + self.success_bonus * caught.sum(axis=1) / self.num_prey
        )
        terminated = ~self.alive.any(axis=1)
        truncated = ~terminated & (self.t >= self.max_steps)
        rewards = np.repeat(team[:, None], self.num_agents, axis=1).astype(np.float32)
        metrics = {
            "success": terminated.copy(),
            "prey_caught": 1.0 - self.alive.mean(axis=1),
            "collisions": self.n_collisions.copy(),
        }
        return rewards, terminated, truncated, metrics

    def observe(self):
        B, N, v, Sp = self.num_envs, self.num_agents, self.vision, self._Sp
        V2, Sp2 = self.view ** 2, self._Sp ** 2
        base = (np.arange(B) * Sp2)[:, None]
        pc = base + (self.pred[..., 0] + v) * Sp + (self.pred[..., 1] + v)  # [B, N] flat padded cell
        qc = base + (self.prey[..., 0] + v) * Sp + (self.prey[..., 1] + v)  # [B, P]
        pred_occ = np.bincount(pc.ravel(), minlength=B * Sp2).astype(np.float32)
        prey_occ = np.bincount(qc.ravel(), weights=self.alive.ravel().astype(np.float32),
                               minlength=B * Sp2)
        look = pc[..., None] + self._view_off  # [B, N, V2] flat padded cells in view
        obs = np.empty((B, N, self.obs_dim), dtype=np.float32)
        others = pred_occ[look]
        others[..., V2 // 2] -= 1.0  # not oneself
        np.minimum(others, 1.0, out=obs[..., :V2])
        np.minimum(prey_occ[look], 1.0, out=obs[..., V2: 2 * V2])
        obs[..., 2 * V2: 3 * V2] = self._outside[look % Sp2]
        obs[..., 3 * V2:] = self.pred / (self.size - 1)
        return obs

    def state(self):
        """Predator and prey positions / (size - 1), prey alive flags, time fraction."""
        B, sc = self.num_envs, float(self.size - 1)
        return np.concatenate([
            (self.pred / sc).reshape(B, -1), (self.prey / sc).reshape(B, -1),
            self.alive.astype(float), (self.t / self.max_steps)[:, None],
        ], axis=1).astype(np.float32)

    @property
    def state_dim(self):
        return 2 * self.num_agents + 3 * self.num_prey + 1

    state_low, state_high = 0.0, 1.0

    def render_text(self, b=0):
        grid = np.full((self.size, self.size), ".", dtype=object)
        for (r, c), a in zip(self.prey[b], self.alive[b]):
            if a:
                grid[r, c] = "P"
        for i, (r, c) in enumerate(self.pred[b]):
            grid[r, c] = str(i % 10) if grid[r, c] == "." else "*"
        head = (f"predator-prey: step {int(self.t[b])}/{self.max_steps}, prey left "
                f"{int(self.alive[b].sum())}/{self.num_prey} (digits: predators, P: prey, *: both)")
        return "\n".join([head] + [" ".join(row) for row in grid])

    def render_rgb(self, b=0, px: int = 24):
        cells = np.full((self.size, self.size, 3), 255, dtype=np.uint8)
        v = self.vision
        for r, c in self.pred[b]:
            cells[max(0, r - v): r + v + 1, max(0, c - v): c + v + 1] = np.minimum(
                cells[max(0, r - v): r + v + 1, max(0, c - v): c + v + 1], 238)
        for (r, c), a in zip(self.prey[b], self.alive[b]):
            if a:
                cells[r, c] = (44, 160, 44)
        for r, c in self.pred[b]:
            cells[r, c] = (214, 39, 40)
        return upscale(cells, px)


class PredatorPrey(CourseParallelEnv):
    """Predator-prey (PettingZoo ParallelEnv); see the module docstring.

    Args (CommNet reproduction defaults): grid_size 7, num_predators 3, num_prey 1,
    vision_range 2, max_steps 40, catch_radius 1.0, catchers_needed 2,
    prey_move_prob 0.5, success_bonus 10, time_penalty 0.1, collision_penalty 0.2.
    """

    core_cls = PredatorPreyCore

    def __init__(self, grid_size: int = 7, num_predators: int = 3, num_prey: int = 1,
                 vision_range: int = 2, max_steps: int = 40, catch_radius: float = 1.0,
                 catchers_needed: int = 2, prey_move_prob: float = 0.5,
                 success_bonus: float = 10.0, time_penalty: float = 0.1,
                 collision_penalty: float = 0.2, render_mode=None):
        super().__init__(render_mode=render_mode, grid_size=grid_size, num_predators=num_predators,
                         num_prey=num_prey, vision_range=vision_range, max_steps=max_steps,
                         catch_radius=catch_radius, catchers_needed=catchers_needed,
                         prey_move_prob=prey_move_prob, success_bonus=success_bonus,
                         time_penalty=time_penalty, collision_penalty=collision_penalty)


class VecPredatorPrey(CoreBatchedEnv):
    """Batched twin of :class:`PredatorPrey` (same arguments, plus num_envs and seed)."""

    core_cls = PredatorPreyCore

    def __init__(self, num_envs: int, grid_size: int = 7, num_predators: int = 3,
                 num_prey: int = 1, vision_range: int = 2, max_steps: int = 40,
                 catch_radius: float = 1.0, catchers_needed: int = 2,
                 prey_move_prob: float = 0.5, success_bonus: float = 10.0,
                 time_penalty: float = 0.1, collision_penalty: float = 0.2,
                 seed: int | None = None):
        super().__init__(num_envs, seed=seed, grid_size=grid_size, num_predators=num_predators,
                         num_prey=num_prey, vision_range=vision_range, max_steps=max_steps,
                         catch_radius=catch_radius, catchers_needed=catchers_needed,
                         prey_move_prob=prey_move_prob, success_bonus=success_bonus,
                         time_penalty=time_penalty, collision_penalty=collision_penalty)
