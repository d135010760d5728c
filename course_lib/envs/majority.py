"""Neighbourhood majority: a one-step cooperative game for notebooks/06_advanced (does
communication scale to 3, 10, 30 agents?).  A PettingZoo ParallelEnv with its batched
twin (see :mod:`.base`), registered as ``neighbour_majority`` in
:func:`course_lib.envs.registry` (options ``num_agents`` and ``k``).

``N`` agents stand at random points of the unit square and each holds a private random
bit.  Each agent must announce the majority bit of its neighbourhood: itself and its
``k = min(4, N - 1)`` nearest agents (an odd number of voters).  Reward per agent: 1 if
right, else 0.  Every episode is one step (the twin draws a new instance in every env
after each step).

* Actions: ``{0, 1}``, the announced bit.
* Observation (3 floats): ``[2 bit - 1, x, y]``.  Without communication the best an
  agent can do is to announce its own bit (right in 11/16 of the cases when k = 4).
* Episode metrics: ``success`` (every agent right) and ``own_bit_right`` (share of the
  agents whose own bit is their neighbourhood's majority: the return of the best
  policy without communication, on the same instance).

Instances are drawn with a ``torch.Generator`` seeded with the env's seed, and the
neighbourhoods found by :func:`course_lib.advanced.gat.knn_neighbours`, the search a
graph policy runs on the observed positions, so the two agree on every instance
(torch is imported on first use).
"""
from __future__ import annotations

import numpy as np

from .base import BatchCore, CoreBatchedEnv, CourseParallelEnv

__all__ = ["NeighbourMajority", "VecNeighbourMajority"]


class NeighbourMajorityCore(BatchCore):
    name = "neighbour_majority"
    metric_fill = {"success": False, "own_bit_right": np.nan}

    def __init__(self, num_envs, rng, num_agents: int = 10, k: int = 4):
        super().__init__(num_envs, rng)
        if int(num_agents) < 2:
            raise ValueError(f"need at least 2 agents, got {num_agents}")
        self.num_agents = int(num_agents)
        self.k = min(int(k), self.num_agents - 1)
        if self.k < 2 or self.k % 2:
            raise ValueError(f"k={self.k}: use an even number of neighbours (>= 2) so the vote has no ties")
        B, N = self.num_envs, self.num_agents
        self.n_actions = np.full(N, 2, dtype=np.int64)
        self.obs_dim, self.obs_low, self.obs_high = 3, -1.0, 1.0
        self.obs = np.zeros((B, N, 3), dtype=np.float32)
        self.bits = np.zeros((B, N), dtype=np.int64)
        self.target = np.zeros((B, N), dtype=np.int64)
        self.neighbours = np.zeros((B, N, self.k), dtype=np.int64)  # each agent's k nearest agents
        self.generator = None
        self.seed_torch(None)

    def seed_torch(self, seed: int | None) -> None:
        """Seed the instance generator (with ``seed``, or from the env's NumPy generator)."""
        import torch

        seed = int(self.rng.integers(2**63)) if seed is None else int(seed)
        self.generator = torch.Generator().manual_seed(seed)

    def _reset(self, idx):
        import torch

        from course_lib.advanced.gat import knn_neighbours

        g, N = self.generator, self.num_agents
        positions = torch.rand(idx.size, N, 2, generator=g)
        bits = (torch.rand(idx.size, N, generator=g) < 0.5).long()
        neighbours = knn_neighbours(positions, self.k)
        votes = bits + torch.gather(bits[:, None, :].expand(-1, N, -1), 2, neighbours).sum(-1)
        self.target[idx] = (2 * votes > self.k + 1).long().numpy()
        self.bits[idx] = bits.numpy()
        self.neighbours[idx] = neighbours.numpy()
        self.obs[idx] = torch.cat([(2 * bits - 1).float()[..., None], positions], dim=-1).numpy()

    def step(self, actions):
        right = actions == self.target
        done = np.ones(self.num_envs, dtype=bool)
        metrics = {"success": right.all(axis=1), "own_bit_right": (self.bits == self.target).mean(axis=1)}
        return right.astype(np.float32), done, ~done, metrics

    def observe(self):
        return self.obs.copy()

    def render_text(self, b=0):
        rows = [f"agent {i}: bit {self.bits[b, i]} at ({self.obs[b, i, 1]:.2f}, {self.obs[b, i, 2]:.2f}), "
                f"neighbours {self.neighbours[b, i].tolist()}, majority {self.target[b, i]}"
                for i in range(self.num_agents)]
        return "\n".join(rows)


class NeighbourMajority(CourseParallelEnv):
    """Neighbourhood majority (PettingZoo ParallelEnv); see the module docstring."""

    core_cls = NeighbourMajorityCore

    def __init__(self, num_agents: int = 10, k: int = 4, render_mode=None):
        super().__init__(render_mode=render_mode, num_agents=num_agents, k=k)

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.core.seed_torch(seed)
        return super().reset(seed=seed, options=options)


class VecNeighbourMajority(CoreBatchedEnv):
    """Batched twin of :class:`NeighbourMajority` (same arguments, plus num_envs and seed)."""

    core_cls = NeighbourMajorityCore

    def __init__(self, num_envs: int, num_agents: int = 10, k: int = 4, seed: int | None = None):
        super().__init__(num_envs, seed=seed, num_agents=num_agents, k=k)
        if seed is not None:
            self.core.seed_torch(seed)

    def _seed(self, seed: int) -> None:
        super()._seed(seed)
        self.core.seed_torch(seed)
