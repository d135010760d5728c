"""Method I: latent-aligned independent PPO (LA-IPPO).

Taught in notebooks/07_method_i (students write :func:`distillation_loss` and
:func:`topology_pairs`).  Read top to bottom:

1. :func:`topology_pairs` -- which agent (student) aligns to which (teacher):
   ``"ring"``, ``"star"`` or ``"all-to-all"`` (student TODO);
2. :func:`distillation_loss` -- ``mean ||f_i(o) - stopgrad(f_j(o))||^2`` (student TODO);
3. :class:`Config` -- :class:`course_lib.algos.ppo.Config` plus the alignment settings
   (defaults from the original project: every 10 learn steps, weight 0.1, a 512-row
   observation buffer per agent, batches of 64, all-to-all);
4. :class:`Alignment` -- the :class:`~course_lib.algos.ppo.Extension` that keeps the
   per-agent observation buffers and adds the distillation loss to PPO's loss, so one
   optimizer updates the encoder for both (``separate_optimizer=True`` reproduces the
   original bug: a second Adam on the same encoder weights);
5. :func:`train` -- independent PPO (:func:`course_lib.algos.ppo.train`, one encoder,
   policy head and value head per agent) with the alignment; ``distill_weight=0`` is
   plain IPPO with the same networks;
6. :func:`latent_geometry` -- pairwise latent distances between agents (alignment) and
   between observations under one encoder, and the latents' effective dimension (the
   collapse diagnostics), logged as ``latent/distance``, ``latent/spread`` and
   ``latent/effective_dim``.

Nothing is communicated at execution time: each agent acts on ``f_i(o_i)`` alone; the
alignment only shapes the encoders during training.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from course_lib.algos import ppo

__all__ = [
    "TOPOLOGIES",
    "topology_pairs",
    "distillation_loss",
    "Config",
    "Alignment",
    "train",
    "latent_geometry",
]

TOPOLOGIES = ("ring", "star", "all-to-all")


# =============================================================================
# 1-2. The functions students write
# =============================================================================
def topology_pairs(topology: str, num_agents: int) -> list[tuple[int, int]]:
    """The (student, teacher) pairs of a topology over agents ``0..num_agents-1``:

    * ``"ring"``: each agent learns from the next one, ``(i, (i + 1) % n)``;
    * ``"star"``: every other agent learns from the hub, agent 0: ``(i, 0)``, ``i >= 1``;
    * ``"all-to-all"``: every ordered pair ``(i, j)`` with ``i != j``.

    Raises ``ValueError`` for another name or fewer than 2 agents.
    """
    n = int(num_agents)
    if n < 2:
        raise ValueError(f"alignment needs at least 2 agents, got {num_agents}")
    if topology == "ring":
        return [(i, (i + 1) % n) for i in range(n)]
    if topology == "star":
        return [(i, 0) for i in range(1, n)]
    if topology == "all-to-all":
        return [(i, j) for i in range(n) for j in range(n) if i != j]
    raise ValueError(f"unknown topology {topology!r}; choose from {TOPOLOGIES}")


def distillation_loss(student_latent: torch.Tensor, teacher_latent: torch.Tensor) -> torch.Tensor:
    """``mean_b || student_latent[b] - stopgrad(teacher_latent[b]) ||^2`` over a batch.

    Both are ``[batch, latent_dim]``: the student's and the teacher's encodings of the
    same observations.  The squared distance is summed over the latent dimensions and
    averaged over the batch; the teacher is detached, so only the student moves.
    """
    diff = student_latent - teacher_latent.detach()
    return (diff * diff).sum(dim=-1).mean()


# =============================================================================
# 3-4. Configuration and the alignment extension
# =============================================================================
@dataclass
class Config(ppo.Config):
    """:class:`course_lib.algos.ppo.Config` plus Method I's alignment settings."""

    topology: str = "all-to-all"  # "ring", "star" or "all-to-all"
    distill_every: int = 10  # align every k learn (gradient) steps
    distill_weight: float = 0.1  # lambda; 1.0 collapsed the latent space; 0: plain IPPO
    buffer_size: int = 512  # recent observations kept per agent
    distill_batch: int = 64  # observations per alignment step
    separate_optimizer: bool = False  # the original bug: a second Adam on the encoders
    probe_size: int = 256  # observations used to measure the latent geometry when logging


class Alignment(ppo.Extension):
    """Distillation between the agents' encoders, added to PPO's loss (one optimizer).

    Every ``distill_every`` learn steps, for every (student i, teacher j) pair of the
    topology, a batch ``o`` from agent i's buffer of recent observations is encoded by
    both, and ``distill_weight * mean_pairs distillation_loss(f_i(o), f_j(o))`` joins the
    loss of that gradient step.
    """

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.rng = torch.Generator().manual_seed(cfg.seed + 12345)
        self.buffers: torch.Tensor | None = None  # [n, buffer_size, d]
        self.filled = 0
        self.cursor = 0
        self.pairs: list[tuple[int, int]] = []
        self.distill_optimizer: torch.optim.Optimizer | None = None
        self.last_loss = float("nan")

    def setup(self, agents: dict[str, ppo.PPOAgent], config: ppo.Config) -> None:
        if len(agents) != 1:
            raise ValueError("Method I aligns the agents of one group; got groups " + str(list(agents)))
        (agent,) = agents.values()
        if agent.net.share_parameters:
            raise ValueError("Method I needs one encoder per agent: use share_parameters=False")
        g = agent.group
        self.pairs = topology_pairs(self.cfg.topology, g.size)
        self.buffers = torch.zeros(g.size, self.cfg.buffer_size, g.obs_size)
        if self.cfg.separate_optimizer and self.cfg.distill_weight > 0:
            self.distill_optimizer = torch.optim.Adam(agent.net.encoder.parameters(), lr=self.cfg.lr, eps=1e-5)

    def after_rollout(self, group: ppo.Group, obs: torch.Tensor) -> None:
        """Keep a random ``buffer_size`` rows of each agent's newest observations."""
        rows = obs.reshape(-1, group.size, group.obs_size)  # [T*B, n, d]
        take = min(self.cfg.buffer_size, rows.shape[0])
        idx = torch.randperm(rows.shape[0], generator=self.rng)[:take]
        pos = (self.cursor + torch.arange(take)) % self.cfg.buffer_size
        self.buffers[:, pos] = rows[idx].transpose(0, 1)
        self.cursor = int((self.cursor + take) % self.cfg.buffer_size)
        self.filled = min(self.cfg.buffer_size, self.filled + take)

    def alignment_loss(self, net: ppo.ActorCritic) -> torch.Tensor:
        """Mean distillation loss over the topology's pairs, on fresh buffer batches."""
        n = net.num_agents
        idx = torch.randint(self.filled, (n, self.cfg.distill_batch), generator=self.rng)
        batch = self.buffers[torch.arange(n)[:, None], idx]  # [n (whose obs), b, d]
        # every encoder k on every agent i's observations: input [i, b, k, d] -> [i, b, k, m]
        latents = net.encode(batch[:, :, None, :].expand(n, self.cfg.distill_batch, n, batch.shape[-1]))
        losses = [distillation_loss(latents[i, :, i], latents[i, :, j]) for i, j in self.pairs]
        return torch.stack(losses).mean()

    def _due(self, learn_step: int) -> bool:
        return (self.cfg.distill_weight > 0 and self.filled > 0
                and learn_step % self.cfg.distill_every == 0)

    def aux_loss(self, agent: ppo.PPOAgent, learn_step: int) -> torch.Tensor | None:
        if self.distill_optimizer is not None or not self._due(learn_step):
            return None
        loss = self.alignment_loss(agent.net)
        self.last_loss = float(loss.detach())
        return self.cfg.distill_weight * loss

    def after_step(self, agent: ppo.PPOAgent, learn_step: int, lr: float) -> None:
        # the original code's second optimizer: its own Adam state on the same encoder
        # weights, stepped right after PPO's (Adam rescales the gradient, so lambda
        # hardly changes the size of these steps)
        if self.distill_optimizer is None or not self._due(learn_step):
            return
        for group in self.distill_optimizer.param_groups:  # the same annealed rate as PPO's optimizer
            group["lr"] = lr
        loss = self.cfg.distill_weight * self.alignment_loss(agent.net)
        self.last_loss = float(loss.detach()) / self.cfg.distill_weight
        self.distill_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.distill_optimizer.step()

    def metrics(self, agents: dict[str, ppo.PPOAgent]) -> dict[str, float]:
        if self.filled == 0:
            return {}
        (agent,) = agents.values()
        per_agent = max(1, min(self.filled, self.cfg.probe_size // agent.group.size))
        probe = self.buffers[:, :per_agent].reshape(-1, agent.group.obs_size)  # every agent's observations
        geo = latent_geometry(agent.net, probe)
        return {"latent/distance": geo["distance"], "latent/spread": geo["spread"],
                "latent/effective_dim": geo["effective_dim"], "loss/distill": self.last_loss}


# =============================================================================
# 5. Training
# =============================================================================
def train(env: Any, config: Config | None = None, *, return_agents: bool = False,
          eval_fn=None, **overrides):
    """Method I on a batched twin: :func:`course_lib.algos.ppo.train` with per-agent
    encoders and the :class:`Alignment` extension.  Same return values and columns,
    plus ``latent/distance``, ``latent/spread`` and ``loss/distill``.
    """
    cfg = replace(config or Config(), **overrides)
    if cfg.share_parameters:
        raise ValueError("Method I needs one encoder per agent: share_parameters must be False")
    return ppo.train(env, cfg, extension=Alignment(cfg), eval_fn=eval_fn, return_agents=return_agents)


# =============================================================================
# 6. Diagnostics
# =============================================================================
def latent_geometry(net: ppo.ActorCritic, observations: torch.Tensor) -> dict[str, float]:
    """Pairwise latent distances: between the agents' encoders on the same observations,
    and between different observations under one encoder (the collapse diagnostics).

    ``observations`` ``[M, d]`` are fed to every agent's encoder, ``z_i = f_i(o)``.

    * ``distance``: the mean over agent pairs ``i < j`` and observations of
      ``||f_i(o) - f_j(o)||`` (0 when the encoders agree: aligned);
    * ``spread``: the mean over agents and over pairs of different observations of
      ``||f_i(o) - f_i(o')||`` (0 when an encoder maps everything to one point: the
      latent space has collapsed and the heads cannot tell observations apart);
    * ``effective_dim``: the participation ratio ``(sum_k s_k)^2 / sum_k s_k^2`` of the
      eigenvalues ``s_k`` of the covariance of ``f_i(o)`` over ``o``, mean over agents:
      how many directions the latents really use (``latent_dim`` at most; 1 when they lie
      on a line, a "dimensional" collapse).
    """
    obs = torch.as_tensor(observations, dtype=torch.float32)
    n, M = net.num_agents, obs.shape[0]
    if M < 2:
        raise ValueError(f"latent_geometry needs at least 2 observations, got {M}")
    with torch.no_grad():
        z = net.encode(obs[:, None, :].expand(M, n, obs.shape[-1])).transpose(0, 1)  # [n, M, m]
        i, j = torch.triu_indices(n, n, offset=1)
        distance = (z[i] - z[j]).norm(dim=-1).mean()
        pairwise = torch.cdist(z, z)  # [n, M, M], zero diagonal
        spread = pairwise.sum(dim=(1, 2)) / (M * (M - 1))
        centred = z - z.mean(dim=1, keepdim=True)
        eig = torch.linalg.eigvalsh(centred.transpose(1, 2) @ centred / (M - 1)).clamp_min(0)  # [n, m]
        effective = eig.sum(-1) ** 2 / (eig.pow(2).sum(-1) + 1e-12)
    return {"distance": float(distance), "spread": float(spread.mean()), "effective_dim": float(effective.mean())}
