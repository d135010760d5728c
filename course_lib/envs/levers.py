"""Lever pulling (CommNet, Sukhbaatar et al. 2016, section 4.1).

Used in notebooks/05_communication.

Each round draws ``num_agents`` (m, default 5) distinct agent ids from a pool of
``pool_size`` (default 500, as in CommNet); agent slot i observes only its id, as a
one-hot vector of length ``pool_size`` (``obs_type="onehot"``, default) or the
scalar ``id / (pool_size - 1)`` (``obs_type="index"``).  Every agent pulls one of
``num_levers`` levers (default m).  One step per episode.

Reward (shared): the number of distinct levers pulled, normalised.  ``reward="commnet"``
(default) uses ``(#distinct - 1) / (m - 1)``, the metric of CommNet's code, on which
uniform random pulling scores 0.590; ``reward="fraction"`` uses ``#distinct / m``
(random: 0.672).  Both are reported as episode metrics (``distinct_score`` and
``distinct_fraction``).  The supervised target of agent i (CommNet trains this task
with supervision too) is its rank among the drawn ids: pulling lever = rank makes
every lever distinct (score 1.0).  Targets are in ``info["target"]`` ([B, N] in the
twin; per agent in the single env) for the current observation, and from
:meth:`LeversCore.targets`.
"""
from __future__ import annotations

import numpy as np

from .base import BatchCore, CoreBatchedEnv, CourseParallelEnv

__all__ = ["LeverPulling", "VecLeverPulling", "LeversCore"]


class LeversCore(BatchCore):
    name = "lever_pulling"
    metric_fill = {"distinct_score": np.nan, "distinct_fraction": np.nan}

    def __init__(self, num_envs, rng, pool_size: int = 500, num_agents: int = 5,
                 num_levers: int | None = None, reward: str = "commnet", obs_type: str = "onehot"):
        super().__init__(num_envs, rng)
        self.pool_size, self.num_agents = int(pool_size), int(num_agents)
        self.num_levers = self.num_agents if num_levers is None else int(num_levers)
        if self.num_agents < 2:
            raise ValueError(f"lever pulling needs at least 2 agents, got {num_agents}")
        if self.pool_size < self.num_agents:
            raise ValueError(f"pool_size ({pool_size}) must be >= num_agents ({num_agents})")
        if self.num_levers < 2:
            raise ValueError(f"num_levers must be >= 2, got {num_levers}")
        if reward not in ("commnet", "fraction"):
            raise ValueError(f"reward must be 'commnet' or 'fraction', got {reward!r}")
        if obs_type not in ("onehot", "index"):
            raise ValueError(f"obs_type must be 'onehot' or 'index', got {obs_type!r}")
        self.reward_kind, self.obs_type = reward, obs_type
        self.n_actions = np.full(self.num_agents, self.num_levers, dtype=np.int64)
        self.obs_dim = self.pool_size if obs_type == "onehot" else 1
        self.obs_low, self.obs_high = 0.0, 1.0
        self._best = min(self.num_agents, self.num_levers)  # most distinct levers possible
        self.ids = np.zeros((self.num_envs, self.num_agents), dtype=np.int64)
        self.last_pulled = np.full((self.num_envs, self.num_agents), -1, dtype=np.int64)

    def _reset(self, idx):
        # m distinct ids from the pool for each reset env: Robert Floyd's sampling
        # without replacement (m draws, vectorised over envs), then a random slot order
        k, m, n = idx.size, self.num_agents, self.pool_size
        u = self.rng.random((k, m))
        chosen = np.empty((k, m), dtype=np.int64)
        for j in range(m):  # loop over the m draws, not over envs or agents
            top = n - m + j
            t = (u[:, j] * (top + 1)).astype(np.int64)
            dup = (chosen[:, :j] == t[:, None]).any(axis=1)
            chosen[:, j] = np.where(dup, top, t)
        order = np.argsort(self.rng.random((k, m)), axis=1)
        self.ids[idx] = np.take_along_axis(chosen, order, axis=1)
        self.last_pulled[idx] = -1

    def targets(self) -> np.ndarray:
        """``[B, N]`` supervised targets: each agent's rank among the drawn ids
        (capped at ``num_levers - 1`` when there are fewer levers than agents)."""
        ranks = np.argsort(np.argsort(self.ids, axis=1), axis=1)
        return np.minimum(ranks, self.num_levers - 1)

    def step(self, actions):
        B, L = self.num_envs, self.num_levers
        pulled = np.zeros((B, L), dtype=bool)
        pulled[np.arange(B)[:, None], actions] = True
        distinct = pulled.sum(axis=1)
        score = (distinct - 1) / (self._best - 1)
        fraction = distinct / self._best
        team = score if self.reward_kind == "commnet" else fraction
        self.last_pulled = actions.copy()
        rewards = np.repeat(team[:, None], self.num_agents, axis=1).astype(np.float32)
        done = np.ones(B, dtype=bool)
        metrics = {"distinct_score": score, "distinct_fraction": fraction}
        return rewards, done, np.zeros(B, dtype=bool), metrics

    def observe(self):
        B, N = self.num_envs, self.num_agents
        if self.obs_type == "index":
            return (self.ids[..., None] / max(self.pool_size - 1, 1)).astype(np.float32)
        obs = np.zeros((B, N, self.pool_size), dtype=np.float32)
        obs[np.arange(B)[:, None], np.arange(N)[None, :], self.ids] = 1.0
        return obs

    def state(self):
        return (self.ids / max(self.pool_size - 1, 1)).astype(np.float32)

    @property
    def state_dim(self):
        return self.num_agents

    state_low, state_high = 0.0, 1.0

    def agent_info(self):
        return {"target": self.targets()}

    def render_text(self, b=0):
        ids = ", ".join(str(int(i)) for i in self.ids[b])
        txt = f"lever pulling: agent ids [{ids}] of {self.pool_size}, {self.num_levers} levers"
        if (self.last_pulled[b] >= 0).all():
            d = len(set(self.last_pulled[b].tolist()))
            txt += f"; pulled {self.last_pulled[b].tolist()} ({d} distinct)"
        return txt


class LeverPulling(CourseParallelEnv):
    """CommNet's lever-pulling game (PettingZoo ParallelEnv); see the module docstring.

    Args:
        pool_size: number of agent ids to draw from (500 in CommNet).
        num_agents: agents (and by default levers) per round, m (5 in CommNet).
        num_levers: levers per round (default m).
        reward: "commnet" ((#distinct-1)/(m-1), default) or "fraction" (#distinct/m).
        obs_type: "onehot" (default) or "index".
    """

    core_cls = LeversCore

    def __init__(self, pool_size: int = 500, num_agents: int = 5, num_levers: int | None = None,
                 reward: str = "commnet", obs_type: str = "onehot", render_mode=None):
        super().__init__(render_mode=render_mode, pool_size=pool_size, num_agents=num_agents,
                         num_levers=num_levers, reward=reward, obs_type=obs_type)


class VecLeverPulling(CoreBatchedEnv):
    """Batched twin of :class:`LeverPulling` (same arguments, plus num_envs and seed).

    ``info["target"]`` ``[B, N]`` holds the rank targets of the returned observation.
    """

    core_cls = LeversCore

    def __init__(self, num_envs: int, pool_size: int = 500, num_agents: int = 5,
                 num_levers: int | None = None, reward: str = "commnet",
                 obs_type: str = "onehot", seed: int | None = None):
        super().__init__(num_envs, seed=seed, pool_size=pool_size, num_agents=num_agents,
                         num_levers=num_levers, reward=reward, obs_type=obs_type)
