"""CommNet: agents that learn what to say by backpropagation (Sukhbaatar et al. 2016).

Taught in notebooks/05_communication.  Read top to bottom:

1. :func:`comm_mean` -- one communication step: agent j hears the mean of the hidden
   states of the *other* agents that are present (and, with ``reach``, within range)
   (student TODO);
2. :func:`reach_within` -- range-limited communication from positions;
3. :class:`CommNet` -- encoder ``h0 = r(s)``, ``K`` communication steps with their own
   modules ``f^k``, an optional skip connection from ``h0``, a decoder to action logits
   and a value head (the learned baseline).  ``comm=False`` is the NoComm baseline: the
   same network with every message zeroed.  The network calls ``self.comm_mean``, the
   reference unless a learner plugs in the student's (:func:`course_lib.algos.reinforce.plug_parts`);
4. :func:`lever_ids` -- the lever-pulling ids as a lookup table.

Trained by :mod:`course_lib.algos.reinforce` (REINFORCE with a learned baseline on the
traffic junction, predator-prey and navigation) and :mod:`course_lib.algos.levers`
(lever pulling, supervised or REINFORCE); TarMAC is :mod:`course_lib.algos.tarmac`.
Both networks share one interface:
``model(obs [B, N, D], alive [B, N]) -> (logits [B, N, A], values [B, N])``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["comm_mean", "reach_within", "CommNet", "lever_ids"]


# ------------------------------------------------------------------ communication
def comm_mean(hidden: torch.Tensor, alive: torch.Tensor, reach: torch.Tensor | None = None) -> torch.Tensor:
    """CommNet's message: ``c_j = mean of h_i over the other present agents i != j``.

    ``hidden [B, N, H]``, ``alive [B, N]`` (bool or 0/1: which agents are present),
    optional ``reach [B, N, N]`` (``reach[b, j, i]``: j can hear i).  Returns ``[B, N, H]``;
    an agent with nobody to hear gets zeros.
    Taught in notebooks/05_communication.
    """
    B, N, _ = hidden.shape
    present = alive.to(hidden.dtype)
    hears = present[:, None, :] * (1.0 - torch.eye(N, dtype=hidden.dtype, device=hidden.device))
    if reach is not None:
        hears = hears * reach.to(hidden.dtype)
    count = hears.sum(dim=-1, keepdim=True)                 # [B, N, 1] speakers j hears
    return hears @ hidden / count.clamp(min=1.0)           # mean; zeros when nobody speaks


def reach_within(positions: torch.Tensor, radius: float) -> torch.Tensor:
    """``[B, N, N]`` bool: agents closer than ``radius`` can hear each other
    (range-limited communication).  ``positions [B, N, 2]``."""
    return torch.cdist(positions, positions) <= radius


# ------------------------------------------------------------------------ network
class CommNet(nn.Module):
    """Encoder, ``comm_steps`` communication steps, decoder (action logits) and a value head.

    ``h^{k+1}_j = tanh(H^k h^k_j + C^k c^k_j + h^0_j)`` (the skip term only when
    ``skip``); ``c^k = comm_mean(h^k)``.  One set of weights is shared by all agents, so
    the agents differ only through what they observe and hear.  With ``comm=False`` the
    messages are zeroed (NoComm).  Calling ``model(obs, alive, reach=None)`` returns
    ``(logits [B, N, A], values [B, N])``.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64, comm_steps: int = 2,
                 comm: bool = True, skip: bool = True):
        super().__init__()
        self.obs_dim, self.n_actions, self.hidden = int(obs_dim), int(n_actions), int(hidden)
        self.comm_steps, self.comm, self.skip = int(comm_steps), bool(comm), bool(skip)
        self.encoder = nn.Linear(self.obs_dim, self.hidden)
        self.self_weights = nn.ModuleList(nn.Linear(self.hidden, self.hidden) for _ in range(self.comm_steps))
        self.comm_weights = nn.ModuleList(nn.Linear(self.hidden, self.hidden, bias=False)
                                          for _ in range(self.comm_steps))
        self.decoder = nn.Linear(self.hidden, self.n_actions)
        self.value_head = nn.Linear(self.hidden, 1)
        self.comm_mean = comm_mean  # a part: the learner plugs in the student's function

    def forward(self, obs: torch.Tensor, alive: torch.Tensor | None = None,
                reach: torch.Tensor | None = None):
        h0 = torch.tanh(self.encode(obs))
        if alive is None:
            alive = torch.ones(h0.shape[:2], dtype=torch.bool, device=h0.device)
        h = h0
        for f_self, f_comm in zip(self.self_weights, self.comm_weights):
            c = (self.comm_mean or comm_mean)(h, alive, reach) if self.comm else torch.zeros_like(h)
            h = torch.tanh(f_self(h) + f_comm(c) + (h0 if self.skip else 0.0))
        return self.decoder(h), self.value_head(h).squeeze(-1)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """The encoder's input to the tanh.  Integer ``obs [B, N]`` are the indices of one-hot
        observations (a lookup table, as CommNet uses for the lever ids): same result, faster."""
        if not obs.is_floating_point() and obs.dim() == 2:
            return self.encoder.weight.T[obs] + self.encoder.bias
        if obs.dim() != 3 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"CommNet expects obs [B, N, {self.obs_dim}] (or integer one-hot "
                             f"indices [B, N]), got {tuple(obs.shape)} {obs.dtype}")
        return self.encoder(obs)

    def extra_repr(self) -> str:
        return f"comm={self.comm}, comm_steps={self.comm_steps}, skip={self.skip}"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["comm_mean"] = None  # a student's function is not saved; the learner plugs it in again
        return state


def lever_ids(obs: np.ndarray, pool_size: int) -> torch.Tensor:
    """Agent ids ``[B, N]`` (int64) from the levers' ``obs_type="index"`` observations: the
    indices of the one-hot ids, which :class:`CommNet` reads as a lookup table."""
    return torch.as_tensor(np.rint(obs[..., 0] * (pool_size - 1)).astype(np.int64))


