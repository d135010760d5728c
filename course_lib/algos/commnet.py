"""CommNet: agents that learn what to say by backpropagation (Sukhbaatar et al. 2016).

Taught in notebooks/05_communication.  Read top to bottom:

1. :func:`comm_mean` -- one communication step: agent j hears the mean of the hidden
   states of the *other* agents that are present (and, with ``reach``, within range)
   (student TODO);
2. :class:`CommNet` -- encoder ``h0 = r(s)``, ``K`` communication steps with their own
   modules ``f^k``, an optional skip connection from ``h0``, a decoder to action logits
   and a value head (the learned baseline).  ``comm=False`` is the NoComm baseline: the
   same network with every message zeroed;
3. :func:`reach_within` -- range-limited communication from positions;
4. lever pulling -- :class:`LeverConfig` and :func:`train_levers` (supervised or
   REINFORCE), :func:`lever_score`.

The REINFORCE-with-baseline trainer for the episodic tasks (traffic junction,
predator-prey, navigation) is :mod:`course_lib.algos.reinforce`; TarMAC is
:mod:`course_lib.algos.tarmac`.  Both networks share one interface:
``model(obs [B, N, D], alive [B, N]) -> (logits [B, N, A], values [B, N])``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "comm_mean",
    "reach_within",
    "CommNet",
    "LeverConfig",
    "train_levers",
    "lever_score",
    "lever_ids",
    "LEVER_PAPER",
    "TJ_EASY_FAILURE_PAPER",
    "TJ_MEDIUM_FAILURE_PAPER",
]

# CommNet paper, Table 1: lever pulling, (#distinct - 1) / (m - 1), m = 5 of 500.
LEVER_PAPER = {"independent, supervised": 0.59, "independent, REINFORCE": 0.59,
               "CommNet, supervised": 0.99, "CommNet, REINFORCE": 0.94}
# CommNet paper, Table 2 (MLP modules): failure rates on the traffic junction, in %.
TJ_EASY_FAILURE_PAPER = {"independent": 15.8, "discrete comm.": 1.1, "CommNet": 0.3}
TJ_MEDIUM_FAILURE_PAPER = {"independent": 20.6, "fully connected": 12.5, "discrete comm.": 15.8,
                           "CommNet": 2.2}


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

    def forward(self, obs: torch.Tensor, alive: torch.Tensor | None = None,
                reach: torch.Tensor | None = None):
        h0 = torch.tanh(self.encode(obs))
        if alive is None:
            alive = torch.ones(h0.shape[:2], dtype=torch.bool, device=h0.device)
        h = h0
        for f_self, f_comm in zip(self.self_weights, self.comm_weights):
            c = comm_mean(h, alive, reach) if self.comm else torch.zeros_like(h)
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


# ------------------------------------------------------------------ lever pulling
@dataclass
class LeverConfig:
    """Lever pulling (CommNet section 4.1): 5 of 500 agents, 5 levers, one step."""

    mode: str = "supervised"     # "supervised" (cross-entropy to the rank targets) or "reinforce"
    comm: bool = True            # False: the independent (NoComm) baseline
    updates: int = 2000          # gradient steps
    batch: int = 512             # rounds per step (CommNet's replication used 512)
    hidden: int = 128            # width of h (128 reaches 0.99 supervised; 64 stops near 0.985)
    comm_steps: int = 2          # K communication steps
    lr: float = 3e-3             # Adam
    lr_decay: bool = True        # anneal the learning rate linearly to 0 (sharpens the last percent)
    value_coef: float = 0.03     # REINFORCE: weight of the baseline's squared error (CommNet's alpha)
    entropy_coef: float = 0.01   # REINFORCE: entropy bonus, keeps the policy exploring early on
    eval_rounds: int = 4096      # fresh rounds for the greedy eval_score of each logged row
    log_every: int = 100         # updates between logged rows
    seed: int = 0


def lever_ids(obs: np.ndarray, pool_size: int) -> torch.Tensor:
    """Agent ids ``[B, N]`` (int64) from the levers' ``obs_type="index"`` observations: the
    indices of the one-hot ids, which :class:`CommNet` reads as a lookup table."""
    return torch.as_tensor(np.rint(obs[..., 0] * (pool_size - 1)).astype(np.int64))


def lever_score(model: nn.Module, rounds: int = 4096, seed: int = 12345, pool_size: int = 500,
                num_agents: int = 5, greedy: bool = True) -> float:
    """Mean ``(#distinct - 1) / (m - 1)`` over fresh rounds of the greedy (argmax) pulls, or
    of pulls sampled from the policy (``greedy=False``; the best an independent agent can do
    is a random pull, and its argmax can pile up on a few levers)."""
    from course_lib.envs import VecLeverPulling

    env = VecLeverPulling(rounds, pool_size=pool_size, num_agents=num_agents, obs_type="index", seed=seed)
    obs, _ = env.reset(seed=seed)
    with torch.no_grad():
        logits, _ = model(lever_ids(obs, pool_size))
        if greedy:
            pulls = logits.argmax(-1)
        else:
            generator = torch.Generator().manual_seed(seed)
            probs = torch.softmax(logits, -1).reshape(-1, logits.shape[-1])
            pulls = torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])
    _, _, _, _, info = env.step(pulls.numpy())
    return float(np.mean(info["distinct_score"]))


def train_levers(config: LeverConfig | None = None, progress: bool = True, **overrides):
    """Train CommNet (or NoComm) on lever pulling; returns ``(history DataFrame, model)``.

    ``history`` has one row per ``log_every`` updates: ``update``, ``train_score`` (mean
    score of the sampled pulls), ``eval_score`` (greedy pulls on ``eval_rounds`` fresh
    rounds), ``loss``, ``seconds`` and ``sps`` (rounds per second, wall time).
    """
    from tqdm.auto import tqdm

    from course_lib.algos.reinforce import reinforce_loss
    from course_lib.envs import VecLeverPulling

    fields = asdict(config or LeverConfig())
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise TypeError(f"unknown lever setting(s) {unknown}; the settings are {sorted(fields)}")
    cfg = LeverConfig(**{**fields, **overrides})
    if cfg.mode not in ("supervised", "reinforce"):
        raise ValueError(f"mode must be 'supervised' or 'reinforce', got {cfg.mode!r}")
    torch.manual_seed(cfg.seed)
    env = VecLeverPulling(cfg.batch, obs_type="index", seed=cfg.seed)
    model = CommNet(env.core.pool_size, env.n_actions, cfg.hidden, cfg.comm_steps, comm=cfg.comm)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    decay = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda u: 1.0 - u / cfg.updates if cfg.lr_decay else 1.0)
    rows, start = [], time.perf_counter()
    obs, info = env.reset(seed=cfg.seed)
    for update in tqdm(range(1, cfg.updates + 1), disable=not progress,
                       desc=f"levers {'CommNet' if cfg.comm else 'NoComm'} {cfg.mode}"):
        logits, values = model(lever_ids(obs, env.core.pool_size))
        dist = torch.distributions.Categorical(logits=logits)
        actions = dist.sample()
        targets = torch.as_tensor(info["target"])
        obs, rewards, _, _, info_next = env.step(actions.numpy())  # one step: every round ends
        if cfg.mode == "supervised":
            loss = F.cross_entropy(logits.reshape(-1, env.n_actions), targets.reshape(-1))
        else:
            returns = torch.as_tensor(rewards)
            loss = reinforce_loss(dist.log_prob(actions), values, returns, dist.entropy(),
                                  torch.ones_like(returns), cfg.value_coef, cfg.entropy_coef)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        decay.step()
        train_score = float(np.mean(info_next["distinct_score"]))
        info = info_next
        if update % cfg.log_every == 0 or update == cfg.updates:
            rows.append({"update": update, "train_score": train_score,
                         "eval_score": lever_score(model, cfg.eval_rounds, seed=10_000 + cfg.seed),
                         "loss": loss.item(), "seconds": time.perf_counter() - start,
                         "sps": update * cfg.batch / max(time.perf_counter() - start, 1e-9)})
    history = pd.DataFrame(rows).assign(mode=cfg.mode, method="CommNet" if cfg.comm else "NoComm",
                                        seed=cfg.seed)
    return history, model
