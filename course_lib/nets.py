"""Small PyTorch networks shared by the value-based algorithms.

* :func:`mlp` -- a plain multilayer perceptron builder.
* :class:`AgentLinear` -- ``n`` independent linear layers in one batched op, with the
  agent-major layout helpers :func:`to_major` / :func:`from_major` (MADDPG and PPO).
* :class:`QNetwork` -- per-agent Q-values ``[..., N, n_actions]`` from observations
  ``[..., N, obs_dim]``, one network shared by all agents (parameter sharing) with an
  optional one-hot agent id appended to the input so the agents can still differ.

Taught in notebooks/02_independent_learners (independent DQN); reused by
notebooks/03_value_decomposition and later notebooks.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = ["mlp", "QNetwork", "agent_one_hot", "AgentLinear", "to_major", "from_major"]


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int,
        activation: type[nn.Module] = nn.ReLU, out_activation: type[nn.Module] | None = None) -> nn.Sequential:
    """``Linear -> act -> ... -> Linear`` with the given hidden sizes.

    >>> mlp(14, [64, 64], 5)   # 14 -> 64 -> 64 -> 5
    Taught in notebooks/02_independent_learners.
    """
    layers: list[nn.Module] = []
    last = int(in_dim)
    for h in hidden:
        layers += [nn.Linear(last, int(h)), activation()]
        last = int(h)
    layers.append(nn.Linear(last, int(out_dim)))
    if out_activation is not None:
        layers.append(out_activation())
    return nn.Sequential(*layers)


def agent_one_hot(num_agents: int, lead_shape: Sequence[int] = (), device=None) -> torch.Tensor:
    """One-hot agent ids broadcast to ``[*lead_shape, N, N]`` (float32)."""
    eye = torch.eye(int(num_agents), device=device)
    return eye.expand(*lead_shape, int(num_agents), int(num_agents))


class QNetwork(nn.Module):
    """Shared Q-network: ``obs [..., N, obs_dim] -> Q [..., N, n_actions]``.

    With ``agent_id=True`` the one-hot id of each agent is appended to its obs, so one
    set of weights can still represent different per-agent Q-functions.
    Taught in notebooks/02_independent_learners.
    """

    def __init__(self, obs_dim: int, n_actions: int, num_agents: int = 1,
                 hidden: Sequence[int] = (64, 64), agent_id: bool = False):
        super().__init__()
        self.obs_dim, self.n_actions, self.num_agents = int(obs_dim), int(n_actions), int(num_agents)
        self.agent_id = bool(agent_id)
        in_dim = self.obs_dim + (self.num_agents if self.agent_id else 0)
        self.net = mlp(in_dim, hidden, self.n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = torch.as_tensor(obs, dtype=torch.float32)
        if self.agent_id:
            if obs.dim() < 2 or obs.shape[-2] != self.num_agents:
                raise ValueError(
                    f"QNetwork(agent_id=True) expects obs [..., {self.num_agents}, {self.obs_dim}]; "
                    f"got {tuple(obs.shape)}"
                )
            ids = agent_one_hot(self.num_agents, obs.shape[:-2], device=obs.device)
            obs = torch.cat([obs, ids], dim=-1)
        return self.net(obs)


class AgentLinear(nn.Module):
    """``n`` independent linear layers in one batched op (``n = 1``: one layer shared by
    every agent), for per-agent networks without a Python loop over agents.

    ``forward(x [..., n, in])`` is the public layout; :meth:`major` takes agent-major
    ``x [n, M, in]`` (for ``n = 1``: ``[k, M, in]``, any ``k``), the layout training uses:
    contiguous per agent, so the matmuls of the backward pass stay fast.
    """

    def __init__(self, n: int, in_dim: int, out_dim: int, gain: float = math.sqrt(2), init: str = "orthogonal"):
        super().__init__()
        self.n = int(n)
        if init == "orthogonal":  # per agent, zero bias (CleanRL's PPO init)
            weight = torch.empty(self.n, in_dim, out_dim)
            for w in weight:
                nn.init.orthogonal_(w, gain)
            bias = torch.zeros(self.n, out_dim)
        elif init == "uniform":  # nn.Linear's default, per agent
            bound = 1.0 / math.sqrt(in_dim)
            weight = torch.empty(self.n, in_dim, out_dim).uniform_(-bound, bound)
            bias = torch.empty(self.n, out_dim).uniform_(-bound, bound)
        else:
            raise ValueError(f"init must be 'orthogonal' or 'uniform', got {init!r}")
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)

    def major(self, x: torch.Tensor) -> torch.Tensor:
        if self.n == 1:
            return x @ self.weight[0] + self.bias[0]
        return torch.baddbmm(self.bias[:, None, :], x, self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.n == 1:
            return x @ self.weight[0] + self.bias[0]
        return from_major(self.major(to_major(x)), x.shape[:-2])


def to_major(x: torch.Tensor) -> torch.Tensor:
    """``[..., n, d]`` -> agent-major ``[n, M, d]`` (contiguous; M = the product of ``...``)."""
    return x.reshape(-1, x.shape[-2], x.shape[-1]).transpose(0, 1).contiguous()


def from_major(x: torch.Tensor, lead: Sequence[int]) -> torch.Tensor:
    """Agent-major ``[n, M, ...]`` -> ``[*lead, n, ...]`` (a view)."""
    return x.transpose(0, 1).reshape(*lead, *x.shape[:1], *x.shape[2:])
