"""What every policy of the course is: something that acts for all agents of a task.

One base class for the learned policies (IDQN, QMIX, MADDPG, CommNet, IPPO, ...)
and the reference ones (random, no-op, scripted heuristic).  A policy speaks both
environment APIs of the course:

* batched: ``policy.act(obs [B, N, D], info, greedy=True) -> actions [B, N]``
  (or ``[B, N, A]`` for continuous actions), the twin's arrays;
* PettingZoo: ``policy({agent: obs}, infos) -> {agent: action}``, one environment
  (a ``ParallelEnv`` of ``course_lib.envs`` or mpe2's own).

``policy(x)`` picks the API from its argument.  Policies that communicate may also
say who listens to whom (:meth:`Policy.links`), which episode animations draw.  Recurrent policies keep their memory
between calls and clear it in :meth:`Policy.reset` (called by the evaluator at the
start of every batch of episodes) and where ``info["done"]`` says an episode ended.

Used by :mod:`course_lib.evaluation` and every algorithm module.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["Policy", "TeamSwap", "dict_to_batch", "batch_to_dict"]


def dict_to_batch(obs: dict, agents: Sequence[str], width: int, infos: dict | None = None,
                  dtype=np.float32) -> tuple[np.ndarray, dict]:
    """One PettingZoo step's ``{agent: obs}`` (and ``{agent: info}``) as a batch of one.

    Observations are zero-padded to ``width`` (simple_tag's agents see different sizes);
    the info holds ``alive [1, N]`` (the agent is in ``obs``) and every scalar per-agent
    info (e.g. the traffic junction's ``active``) as ``[1, N]`` arrays.
    """
    batch = np.zeros((1, len(agents), width), dtype=dtype)
    alive = np.zeros((1, len(agents)), dtype=bool)
    for i, name in enumerate(agents):
        if name in obs:
            o = np.asarray(obs[name], dtype=dtype).ravel()
            batch[0, i, :o.shape[0]] = o
            alive[0, i] = True
    info: dict[str, Any] = {"alive": alive}
    for i, name in enumerate(agents):
        for key, value in (infos or {}).get(name, {}).items():
            if np.ndim(value) == 0 and isinstance(value, (bool, int, float, np.number, np.bool_)):
                info.setdefault(key, np.zeros((1, len(agents)), dtype=np.asarray(value).dtype))[0, i] = value
    return batch, info


def batch_to_dict(actions: np.ndarray, agents: Sequence[str], present: Any, continuous: bool) -> dict:
    """Row 0 of batched ``actions`` as ``{agent: action}`` for the agents in ``present``."""
    acts = np.asarray(actions)[0]
    if continuous:
        return {a: acts[i].astype(np.float32) for i, a in enumerate(agents) if a in present}
    return {a: int(acts[i]) for i, a in enumerate(agents) if a in present}


class Policy:
    """Acts for the agents ``agents`` (every agent of the task, in the env's order).

    Subclasses implement :meth:`act`.  Attributes: ``agents``; ``team``, the indices of
    the agents this policy plays for (their returns make the team return; the others,
    e.g. simple_tag's prey, are played by an opponent); ``obs_dim``, the widest
    observation; ``continuous``, whether actions are vectors.
    """

    name = "policy"

    def __init__(self, agents: Sequence[str], obs_dim: int, *, team: Sequence[int] | None = None,
                 continuous: bool = False):
        self.agents = list(agents)
        self.obs_dim = int(obs_dim)
        self.team = list(range(len(self.agents))) if team is None else [int(i) for i in team]
        self.continuous = bool(continuous)

    def act(self, obs: np.ndarray, info: dict | None = None, greedy: bool = True) -> np.ndarray:
        """Actions ``[B, N]`` (``[B, N, A]`` if continuous) for observations ``[B, N, D]``."""
        raise NotImplementedError(f"{type(self).__name__}.act")

    def reset(self, num_envs: int) -> None:
        """Start new episodes in ``num_envs`` environments (recurrent policies clear their memory)."""

    def links(self, obs: np.ndarray, info: dict | None = None) -> np.ndarray | None:
        """Optional: who listens to whom when acting on ``obs`` ``[B, N, D]``, for drawing.

        Weights ``[B, N, N]`` (row i: how much agent i takes from agent j, e.g. TarMAC's
        attention or CommNet's averaging), or None (the default: nothing to draw).  Called
        by :mod:`course_lib.render` right after :meth:`act` on the same observations, so a
        policy may return what that call computed."""
        return None

    def __call__(self, obs: Any, info: Any = None, greedy: bool = True) -> Any:
        if isinstance(obs, dict):
            batch, binfo = dict_to_batch(obs, self.agents, self.obs_dim, info)
            return batch_to_dict(self.act(batch, binfo, greedy=greedy), self.agents, obs, self.continuous)
        return self.act(np.asarray(obs), info, greedy=greedy)

    @property
    def team_names(self) -> list[str]:
        return [self.agents[i] for i in self.team]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, agents={len(self.agents)})"


class TeamSwap(Policy):
    """``played`` with its team's actions taken from ``reference``: the others (e.g.
    simple_tag's prey) still play as in ``played``.  Reference lines for a team trained
    against an opponent: random predators against the same prey (``course eval``)."""

    def __init__(self, played: Policy, reference: Policy):
        super().__init__(played.agents, played.obs_dim, team=played.team, continuous=played.continuous)
        self.played, self.reference, self.name = played, reference, reference.name

    def act(self, obs: np.ndarray, info: dict | None = None, greedy: bool = True) -> np.ndarray:
        actions = np.array(self.played.act(obs, info, greedy), copy=True)
        actions[:, self.team] = np.asarray(self.reference.act(obs, info, greedy))[:, self.team]
        return actions

    def reset(self, num_envs: int) -> None:
        self.played.reset(num_envs)
        self.reference.reset(num_envs)
