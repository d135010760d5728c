"""Method I: latent-aligned independent PPO (LA-IPPO).

Taught in notebooks/07_method_i, where students write :func:`topology_pairs` and
:func:`distillation_loss` (and PPO's :func:`~course_lib.algos.ppo.gae` and
:func:`~course_lib.algos.ppo.clipped_surrogate`).  Method I is independent PPO
(:class:`course_lib.algos.ppo.IPPO`, one encoder, policy head and value head per agent)
with one more loss: every ``distill_every`` gradient steps, for every (student i,
teacher j) pair of the topology, a batch ``o`` of agent i's recent observations is
encoded by both, and ::

    loss += distill_weight * mean over pairs of distillation_loss(f_i(o), f_j(o))

joins PPO's loss, so one optimizer updates the encoders for both
(``separate_optimizer=True`` reproduces the original bug: a second Adam on the same
encoder weights).  ``distill_weight=0`` is plain IPPO with the same networks.
:func:`latent_geometry` measures the alignment and the collapse the notebook's exercises
look for (logged as ``latent/distance``, ``latent/spread``, ``latent/effective_dim``).

Nothing is communicated at execution time: each agent acts on ``f_i(o_i)`` alone; the
alignment only shapes the encoders during training.

    run = la_ippo.train("simple_spread_v3", la_ippo.Config(seed=0),
                        parts=la_ippo.Parts(distillation_loss=my_loss, topology_pairs=my_pairs))
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from course_lib import learning
from course_lib.algos import ppo

__all__ = ["TOPOLOGIES", "topology_pairs", "distillation_loss", "Config", "Parts", "MethodI", "train",
           "latent_geometry"]

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
# 3. Configuration, parts and the learner
# =============================================================================
@dataclass
class Config(ppo.Config):
    """:class:`course_lib.algos.ppo.Config` plus Method I's alignment settings."""

    topology: str = "all-to-all"  # "ring", "star" or "all-to-all"
    distill_every: int = 10  # align every k gradient steps
    distill_weight: float = 0.1  # lambda; 1.0 collapsed the latent space; 0: plain IPPO
    buffer_size: int = 512  # recent observations kept per agent
    distill_batch: int = 64  # observations per alignment step
    separate_optimizer: bool = False  # the original bug: a second Adam on the encoders
    probe_size: int = 256  # observations used to measure the latent geometry when logging
    # a policy: obs -> every agent's actions (e.g. selfplay.pool.Match(prey=...)), of which the prey's are played
    opponent: Any = None  # simple_tag's prey as the predators learn: "heuristic", "random", a policy; None: all learn


@dataclass
class Parts(ppo.Parts):
    """The functions of notebook 07 that the loop calls (defaults: the references)."""

    topology_pairs: Callable = topology_pairs
    distillation_loss: Callable = distillation_loss


class MethodI(ppo.IPPO):
    """IPPO with the agents' encoders aligned by distillation (see the module docstring)."""

    name = "method_i"
    description = "Method I: independent PPO whose agents align their encoders by distillation (notebook 07)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts):
        if config.share_parameters:
            raise ValueError("Method I needs one encoder per agent: share_parameters must be False")
        if config.topology not in TOPOLOGIES:
            raise ValueError(f"unknown topology {config.topology!r}; choose from {TOPOLOGIES}")
        super().__init__(task, config, parts, opponents=opponent_groups(task, config))
        if len(self.agents) != 1:
            raise ValueError("Method I aligns the agents of one group; got groups " + str(list(self.agents)))
        (agent,) = self.agents.values()
        g, cfg = agent.group, config
        self.rng = torch.Generator().manual_seed(cfg.seed + 12345)  # buffer sampling, apart from torch's
        self.buffers = torch.zeros(g.size, cfg.buffer_size, g.obs_size)  # recent observations of each agent
        self.filled = self.cursor = 0
        self.distill_optimizer = None
        if cfg.separate_optimizer and cfg.distill_weight > 0:
            self.distill_optimizer = torch.optim.Adam(agent.net.encoder.parameters(), lr=cfg.lr, eps=1e-5)
        self.last_distill = math.nan

    def after_rollout(self, agent: ppo.PPOAgent, obs: torch.Tensor) -> None:
        """Keep a random ``buffer_size`` rows of each agent's newest observations."""
        g, size = agent.group, self.config.buffer_size
        rows = obs.reshape(-1, g.size, g.obs_size)  # [T*B, n, d]
        take = min(size, rows.shape[0])
        idx = torch.randperm(rows.shape[0], generator=self.rng)[:take]
        pos = (self.cursor + torch.arange(take)) % size
        self.buffers[:, pos] = rows[idx].transpose(0, 1)
        self.cursor = int((self.cursor + take) % size)
        self.filled = min(size, self.filled + take)

    def alignment_loss(self, net: ppo.ActorCritic) -> torch.Tensor:
        """Mean ``distillation_loss`` over the topology's pairs, on fresh buffer batches."""
        n, b = net.num_agents, self.config.distill_batch
        idx = torch.randint(self.filled, (n, b), generator=self.rng)
        batch = self.buffers[torch.arange(n)[:, None], idx]  # [n (whose obs), b, d]
        # every encoder k on every agent i's observations in one call: [i, b, k, d] -> [i, b, k, m]
        latents = net.encode(batch[:, :, None, :].expand(n, b, n, batch.shape[-1]))
        pairs = self.parts.topology_pairs(self.config.topology, n)
        return torch.stack([self.parts.distillation_loss(latents[i, :, i], latents[i, :, j]) for i, j in pairs]).mean()

    def alignment_due(self) -> bool:
        cfg = self.config
        return cfg.distill_weight > 0 and self.filled > 0 and self.learn_steps % cfg.distill_every == 0

    def extra_loss(self, agent: ppo.PPOAgent) -> torch.Tensor | None:
        if self.distill_optimizer is not None or not self.alignment_due():
            return None
        loss = self.alignment_loss(agent.net)
        self.last_distill = float(loss.detach())
        return self.config.distill_weight * loss

    def after_gradient_step(self, agent: ppo.PPOAgent) -> None:
        # the original code's second optimizer: its own Adam state on the same encoder
        # weights, stepped right after PPO's (Adam rescales the gradient, so lambda
        # hardly changes the size of these steps)
        if self.distill_optimizer is None or not self.alignment_due():
            return
        for group in self.distill_optimizer.param_groups:  # the same annealed rate as PPO's optimizer
            group["lr"] = self.lr
        loss = self.config.distill_weight * self.alignment_loss(agent.net)
        self.last_distill = float(loss.detach()) / self.config.distill_weight
        self.distill_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.distill_optimizer.step()

    def extra_metrics(self) -> dict[str, float]:
        if self.filled == 0:
            return {}
        (agent,) = self.agents.values()
        per_agent = max(1, min(self.filled, self.config.probe_size // agent.group.size))
        probe = self.buffers[:, :per_agent].reshape(-1, agent.group.obs_size)  # every agent's observations
        geo = latent_geometry(agent.net, probe)
        return {"loss/distill": self.last_distill, "latent/distance": geo["distance"],
                "latent/spread": geo["spread"], "latent/effective_dim": geo["effective_dim"]}


class OpponentGroup:
    """One group's columns of a policy of every agent: an opponent of :class:`ppo.IPPO`."""

    def __init__(self, policy: Callable, agents: tuple):
        self.policy, self.agents = policy, list(agents)

    def __call__(self, obs):
        return np.asarray(self.policy(obs))[:, self.agents]

    def __repr__(self) -> str:
        return f"OpponentGroup({self.policy!r}, {self.agents})"


def opponent_groups(task, config: Config) -> dict | None:
    """``config.opponent`` as IPPO's opponents: it plays every group but the predators (``"adversary"``)."""
    if config.opponent is None:
        return None
    env = task.batched(1)
    others = [g for g in ppo.groups_of(env) if g.name != "adversary"]
    if len(others) == len(ppo.groups_of(env)):
        raise ValueError(f"an opponent plays the prey of simple_tag_v3; {task} has no predators")
    opponent = config.opponent
    if not callable(opponent):
        from course_lib.envs.policies import make_policy

        opponent = make_policy(str(opponent), env, seed=config.seed)
    return {g.name: OpponentGroup(opponent, g.agents) for g in others}


def train(task: Any = "simple_spread_v3", config: Config | None = None, parts: Any = None,
          **run_options) -> learning.Run:
    """Train Method I on ``task`` (simple_spread_v3 by default); see
    :func:`course_lib.learning.train` for ``resume``, ``out``, ``save_every`` and ``progress``."""
    return learning.train(MethodI, task, config, parts, **run_options)


# =============================================================================
# 4. Diagnostics
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
