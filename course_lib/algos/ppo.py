"""Independent PPO (IPPO) for groups of agents on the batched course environments.

Taught in notebooks/07_method_i (students write :func:`gae` and
:func:`clipped_surrogate`); used by notebooks/08_self_play (predators vs prey).
Read top to bottom:

1. the two functions students write -- :func:`gae` (generalised advantage
   estimation, Schulman et al. 2016) and :func:`clipped_surrogate` (PPO's clipped
   policy loss, Schulman et al. 2017);
2. agent groups -- :class:`Group` and :func:`groups_of`: the agents that share one
   observation layout, action space and learner (simple_spread: one group of 3;
   simple_tag: ``"adversary"`` and ``"agent"``, whose observation sizes differ);
3. networks -- :class:`ActorCritic`: per agent an encoder ``f(o) -> m`` (the latent),
   a policy head and a value head on ``m``; either one set of weights per agent
   (independent) or one set shared by the group (with a one-hot agent id), all agents
   in one batched matmul (:class:`course_lib.nets.AgentLinear`).  Discrete actions use a categorical
   head; continuous ones a Gaussian whose log-std is a state-independent parameter,
   kept in ``log_std_bounds`` by projection after every optimiser step;
4. :class:`PPOAgent` -- a group's network with ``act(obs)``, usable as a frozen policy
   (``agent.frozen()``) against opponents; :class:`TeamPolicy` puts groups (learners,
   frozen agents or any callables) together into one policy for a batched twin or
   mpe2's dict API;
5. :class:`Config` and :func:`train` -- rollouts of ``rollout_len`` steps on every
   environment of the batch, GAE, several epochs of minibatch updates with the
   clipped surrogate, value loss and entropy bonus, linear learning-rate annealing.
   ``opponents={"agent": policy}`` trains the other groups while that group's
   actions come from ``policy``; ``agents=`` continues training given learners;
   ``extension=`` adds losses and logging (Method I, :mod:`course_lib.algos.la_ippo`);
   :func:`twin_evaluator` makes the usual ``eval_fn`` (mpe2's evaluation episodes on the
   batched twin) and :func:`evaluate` plays a policy on a twin or on mpe2 itself.

Group API (stable; notebooks/08 relies on it)::

    env = SimpleTagVec(64)
    df, agents = train(env, Config(total_steps=200_000), return_agents=True)
    prey = agents["agent"].frozen()                       # a fixed policy
    df, agents = train(env, cfg, agents={"adversary": agents["adversary"]},
                       opponents={"agent": prey}, return_agents=True)
    actions = agents["adversary"].act(obs)               # obs [B, N, D] -> [B, 3] (group's agents)
    team = TeamPolicy(env, agents["adversary"], prey)     # full actions [B, N] / mpe2 dicts

Every environment step of the batch counts ``num_envs`` environment steps (joint
transitions), as mpe2 counts one joint step per ``step()``.

Speed (one CPU thread): training keeps each agent's samples contiguous (agent-major
``[n, M, ...]`` tensors, ``major=True`` in :class:`ActorCritic`), evaluates both heads in
one matmul and samples categorical actions by Gumbel-max; ``sps_cpu`` in the log is
environment steps per CPU second of the process, the honest figure on a shared machine.
"""
from __future__ import annotations

import copy
import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from course_lib.nets import AgentLinear, from_major, to_major

__all__ = [
    "gae",
    "clipped_surrogate",
    "Group",
    "groups_of",
    "ActorCritic",
    "PPOAgent",
    "TeamPolicy",
    "Config",
    "Extension",
    "train",
    "twin_evaluator",
    "evaluate",
    "LOG_STD_BOUNDS",
]

LOG_STD_BOUNDS = (-2.0, 0.5)  # Method I's clamp: std between 0.14 and 1.65


# =============================================================================
# 1. The functions students write
# =============================================================================
def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor,
        last_values: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimates ``A_t`` (Schulman et al. 2016).

    ``rewards``, ``values``, ``dones``: ``[T, ...]`` (step t of a rollout; ``dones[t]``
    is 1 where the episode ended at step t, so step t+1 starts a new one);
    ``last_values``: ``[...]``, the value of the observation after the last step.

        delta_t = r_t + gamma * V_{t+1} * (1 - done_t) - V_t
        A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}      (A_T = 0)

    with ``V_T = last_values``.  The value targets are ``A_t + V_t``.
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    values = torch.as_tensor(values, dtype=torch.float32)
    not_done = 1.0 - torch.as_tensor(dones, dtype=torch.float32)
    next_value = torch.as_tensor(last_values, dtype=torch.float32)
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * next_value * not_done[t] - values[t]
        running = delta + gamma * lam * not_done[t] * running
        advantages[t] = running
        next_value = values[t]
    return advantages


def clipped_surrogate(new_log_prob: torch.Tensor, old_log_prob: torch.Tensor,
                      advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's clipped policy loss (Schulman et al. 2017), to be minimised:

        ratio = exp(new_log_prob - old_log_prob)
        loss  = -mean( min(ratio * A, clip(ratio, 1 - clip, 1 + clip) * A) )

    Returns a scalar tensor; gradients flow into ``new_log_prob`` only.
    """
    ratio = torch.exp(new_log_prob - old_log_prob.detach())
    advantages = advantages.detach()
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages
    return -torch.min(unclipped, clipped).mean()


# =============================================================================
# 2. Groups of agents
# =============================================================================
@dataclass(frozen=True)
class Group:
    """Agents that share one learner (and, with ``share_parameters``, one network).

    ``agents``: their indices in the environment's agent order; ``obs_size``: their
    true observation size (the batched twins pad observations to ``env.obs_dim``);
    ``action_dim``: the number of discrete actions, or the size of the Box action.
    """

    name: str
    agents: tuple[int, ...]
    obs_size: int
    action_dim: int
    continuous: bool

    @property
    def size(self) -> int:
        return len(self.agents)


def groups_of(env: Any, split: Mapping[str, Sequence[int]] | None = None) -> list[Group]:
    """The agent groups of a batched twin.

    Default: agents with the same name prefix (``adversary_0`` -> ``"adversary"``)
    form a group, so simple_spread has one group ``"agent"`` of 3 and simple_tag has
    ``"adversary"`` (3 predators) and ``"agent"`` (the prey).  ``split`` names the
    groups explicitly: ``{"a": [0], "b": [1, 2]}`` (each agent in exactly one group).
    """
    names = list(env.agent_names)
    if split is None:
        split = {}
        for i, name in enumerate(names):
            split.setdefault(name.rsplit("_", 1)[0], []).append(i)
    seen = sorted(i for idx in split.values() for i in idx)
    if seen != list(range(len(names))):
        raise ValueError(f"groups must cover every agent 0..{len(names) - 1} exactly once; got {dict(split)}")
    groups = []
    for gname, idx in split.items():
        idx = tuple(int(i) for i in idx)
        sizes = {int(env.obs_sizes[i]) for i in idx}
        if len(sizes) != 1:
            raise ValueError(f"group {gname!r}: its agents have different observation sizes {sorted(sizes)}")
        space = env.action_space(idx[0])
        continuous = bool(env.continuous_actions)
        action_dim = int(space.shape[0]) if continuous else int(space.n)
        groups.append(Group(gname, idx, sizes.pop(), action_dim, continuous))
    return groups


# =============================================================================
# 3. Networks
# =============================================================================
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class ActorCritic(nn.Module):
    """Per agent: encoder ``f(o) -> m`` (an MLP, ``m`` = its last hidden layer, the
    *latent*), a policy head and a value head on ``m``.

    ``share_parameters=False``: each of the ``num_agents`` agents has its own weights
    (independent learners, computed in one batched op); ``True``: one set of weights
    for the group, with a one-hot agent id appended to the observation when
    ``agent_id``.

    Discrete actions: the policy head gives logits (categorical policy).  Continuous
    actions: it gives the mean of a Gaussian whose log-std is a state-independent
    parameter ``log_std [n, action_dim]``, kept in ``log_std_bounds`` (None: free).

    Layouts: :meth:`encode` takes observations ``[..., num_agents, obs_size]`` and
    returns latents ``[..., num_agents, latent_dim]``; :meth:`value`, :meth:`sample`,
    :meth:`log_prob_entropy` and :meth:`distribution` take those latents.  With
    ``major=True`` they all take and return agent-major tensors ``[num_agents, M, ...]``
    instead (what :func:`train` uses: faster).  ``sample``/``log_prob_entropy`` are
    plain tensor maths; ``distribution`` gives the same policy as a
    ``torch.distributions`` object.
    """

    def __init__(self, obs_size: int, num_agents: int, action_dim: int, *, continuous: bool,
                 hidden: Sequence[int] = (64, 64), share_parameters: bool = False,
                 agent_id: bool = True, log_std_init: float = -0.5,
                 log_std_bounds: tuple[float, float] | None = LOG_STD_BOUNDS,
                 activation: str = "tanh"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if log_std_bounds is not None and not log_std_bounds[0] < log_std_bounds[1]:
            raise ValueError(f"log_std_bounds must be (low, high) with low < high, got {log_std_bounds}")
        self.obs_size, self.num_agents, self.action_dim = int(obs_size), int(num_agents), int(action_dim)
        self.continuous, self.share_parameters = bool(continuous), bool(share_parameters)
        self.agent_id = bool(agent_id) and self.share_parameters and self.num_agents > 1
        self.log_std_bounds = None if log_std_bounds is None else (float(log_std_bounds[0]),
                                                                    float(log_std_bounds[1]))
        n = 1 if self.share_parameters else self.num_agents
        layers: list[nn.Module] = []
        last = self.obs_size + (self.num_agents if self.agent_id else 0)
        for h in hidden:
            layers += [AgentLinear(n, last, int(h)), ACTIVATIONS[activation]()]
            last = int(h)
        self.latent_dim = last
        self.encoder = nn.Sequential(*layers)
        self.policy_head = AgentLinear(n, last, self.action_dim, gain=0.01)
        self.value_head = AgentLinear(n, last, 1, gain=1.0)
        if self.continuous:
            self.log_std = nn.Parameter(torch.full((n, self.action_dim), float(log_std_init)))
            self.project_log_std()

    # ------------------------------------------------------------------ encoder
    def encode(self, obs: torch.Tensor, *, major: bool = False) -> torch.Tensor:
        """Latents ``m [..., num_agents, latent_dim]`` of observations ``[..., num_agents, obs_size]``
        (``major=True``: ``[num_agents, M, obs_size] -> [num_agents, M, latent_dim]``)."""
        where = -3 if major else -2
        if obs.dim() < (3 if major else 2) or obs.shape[where] != self.num_agents or obs.shape[-1] != self.obs_size:
            want = f"[{self.num_agents}, M, {self.obs_size}]" if major else f"[..., {self.num_agents}, {self.obs_size}]"
            raise ValueError(f"ActorCritic expects observations {want}; got {tuple(obs.shape)}")
        if not major:
            return from_major(self.encode(to_major(obs), major=True), obs.shape[:-2])
        x = obs
        if self.agent_id:
            ids = torch.eye(self.num_agents)[:, None, :].expand(self.num_agents, x.shape[1], self.num_agents)
            x = torch.cat([x, ids], dim=-1)
        for layer in self.encoder:
            x = layer.major(x) if isinstance(layer, AgentLinear) else layer(x)
        return x

    # -------------------------------------------------------------------- heads
    def _head(self, head: AgentLinear, latent: torch.Tensor, major: bool) -> torch.Tensor:
        return head.major(latent) if major else head(latent)

    def value(self, latent: torch.Tensor, *, major: bool = False) -> torch.Tensor:
        """``V(o)`` ``[..., num_agents]`` (``major``: ``[num_agents, M]``) from the latents."""
        return self._head(self.value_head, latent, major).squeeze(-1)

    def current_log_std(self) -> torch.Tensor:
        """The log-std in use ``[n, action_dim]``: the parameter, clamped to ``log_std_bounds`` when set."""
        if self.log_std_bounds is None:
            return self.log_std
        low, high = self.log_std_bounds
        return self.log_std.clamp(low, high)

    @torch.no_grad()
    def project_log_std(self) -> None:
        """Put the log-std parameter back into ``log_std_bounds`` (after each optimiser step).

        Clamping only in the forward pass would leave a parameter that crossed a bound
        with zero gradient, stuck there for good; projecting keeps it inside, where
        the gradients of the surrogate and of the entropy bonus both reach it.
        """
        if self.continuous and self.log_std_bounds is not None:
            self.log_std.clamp_(*self.log_std_bounds)

    def _log_std_for(self, major: bool) -> torch.Tensor:
        log_std = self.current_log_std()  # [n, A]
        return log_std[:, None, :] if major else log_std

    def get_action_and_value(self, latent: torch.Tensor, action: torch.Tensor | None = None, *,
                             deterministic: bool = False, major: bool = False):
        """``(action, log_prob, entropy, value)``, all per agent (CleanRL's name).

        ``action=None`` draws one: discrete ints ``[..., n]`` (Gumbel-max sampling;
        ``deterministic``: argmax), continuous raw Gaussian samples ``[..., n, A]``
        (``deterministic``: the mean) before :func:`env_actions` clips them into the
        Box; otherwise ``log_prob`` is that of the given ``action``.  Both heads run as
        one matmul (skinny matmuls cost mostly their fixed overhead on CPUs).
        """
        w = torch.cat([self.policy_head.weight, self.value_head.weight], dim=-1)
        bias = torch.cat([self.policy_head.bias, self.value_head.bias], dim=-1)
        if major and w.shape[0] > 1:
            both = torch.baddbmm(bias[:, None, :], latent, w)
        elif w.shape[0] == 1:
            both = latent @ w[0] + bias[0]
        else:
            both = from_major(torch.baddbmm(bias[:, None, :], to_major(latent), w), latent.shape[:-2])
        out, value = both[..., :-1], both[..., -1]
        if not self.continuous:
            logp_all = out.log_softmax(-1)
            if action is None:
                if deterministic:
                    action = out.argmax(-1)
                else:  # Gumbel-max: argmax(logits + Gumbel noise) is a sample of softmax(logits)
                    action = (out - torch.rand_like(out).clamp_min_(1e-20).log_().neg_().log_()).argmax(-1)
            entropy = -(logp_all.exp() * logp_all).sum(-1)
            return action, logp_all.gather(-1, action.long()[..., None]).squeeze(-1), entropy, value
        log_std = self._log_std_for(major)
        if action is None:
            action = out if deterministic else out + log_std.exp() * torch.randn_like(out)
        entropy = (log_std + 0.5 + _HALF_LOG_2PI).sum(-1).expand(out.shape[:-1])
        return action, _gaussian_log_prob(out, log_std, action), entropy, value

    def sample(self, latent: torch.Tensor, deterministic: bool = False, *,
               major: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions and their log-probabilities (see :meth:`get_action_and_value`)."""
        action, logp, _, _ = self.get_action_and_value(latent, deterministic=deterministic, major=major)
        return action, logp

    def log_prob_entropy(self, latent: torch.Tensor, action: torch.Tensor, *,
                         major: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of ``action`` and the policy's entropy, both ``[..., num_agents]``."""
        _, logp, entropy, _ = self.get_action_and_value(latent, action, major=major)
        return logp, entropy

    def distribution(self, latent: torch.Tensor, *, major: bool = False):
        """The action distribution of each agent; ``log_prob``/``entropy`` give ``[..., num_agents]``."""
        out = self._head(self.policy_head, latent, major)
        if not self.continuous:
            return Categorical(logits=out, validate_args=False)
        std = self._log_std_for(major).exp().expand_as(out)
        return _Diagonal(Normal(out, std, validate_args=False))


def _gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Log-density of a diagonal Gaussian, summed over the action's entries."""
    z = (action - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - _HALF_LOG_2PI).sum(-1)


class _Diagonal:
    """A Normal over the action vector: log-probs and entropies summed over its entries."""

    def __init__(self, normal: Normal):
        self.normal = normal

    @property
    def mean(self) -> torch.Tensor:
        return self.normal.mean

    def sample(self) -> torch.Tensor:
        return self.normal.sample()

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        return self.normal.log_prob(action).sum(-1)

    def entropy(self) -> torch.Tensor:
        return self.normal.entropy().sum(-1)


# =============================================================================
# 4. Agents and team policies
# =============================================================================
class PPOAgent:
    """One group's learner: its :class:`Group` and :class:`ActorCritic`.

    ``act(obs)`` takes the environment's full batched observations ``[B, N, D]`` (it
    picks its agents and their true observation size) and returns the group's actions:
    ints ``[B, n]`` or, for continuous actions, float32 ``[B, n, A]`` clipped into the
    Box ``[0, 1]``.  ``deterministic=True`` takes the most likely action (mean).
    """

    def __init__(self, group: Group, net: ActorCritic):
        self.group, self.net = group, net

    def observations(self, obs: Any) -> torch.Tensor:
        obs = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        return obs[..., list(self.group.agents), :self.group.obs_size]

    def act(self, obs: Any, deterministic: bool = False) -> np.ndarray:
        with torch.no_grad():
            raw, _ = self.net.sample(self.net.encode(self.observations(obs)), deterministic)
            return env_actions(raw, self.group.continuous)

    def __call__(self, obs: Any) -> np.ndarray:
        return self.act(obs)

    def frozen(self, deterministic: bool = False) -> "FrozenPolicy":
        """A fixed copy of this policy (later training does not change it)."""
        return FrozenPolicy(PPOAgent(self.group, copy.deepcopy(self.net).eval()), deterministic)

    def __repr__(self) -> str:
        g = self.group
        return f"PPOAgent({g.name!r}, agents={list(g.agents)}, {'continuous' if g.continuous else 'discrete'})"


class FrozenPolicy:
    """A :class:`PPOAgent` copy used only to act: ``policy(obs [B, N, D]) -> group actions``."""

    def __init__(self, agent: PPOAgent, deterministic: bool = False):
        self.agent, self.deterministic = agent, deterministic
        self.group = agent.group
        for p in agent.net.parameters():
            p.requires_grad_(False)

    def act(self, obs: Any, deterministic: bool | None = None) -> np.ndarray:
        return self.agent.act(obs, self.deterministic if deterministic is None else deterministic)

    __call__ = act

    def __repr__(self) -> str:
        return f"Frozen{self.agent!r}"


def env_actions(raw: torch.Tensor, continuous: bool) -> np.ndarray:
    """Network outputs -> what the environment accepts (Gaussian samples clipped to [0, 1])."""
    if continuous:
        return raw.clamp(0.0, 1.0).numpy().astype(np.float32)
    return raw.numpy()


class TeamPolicy:
    """Groups put together into one policy for every agent of ``env``.

    ``members``: :class:`PPOAgent`, frozen policies, or ``(group_name, callable)``
    pairs whose callable maps full observations ``[B, N, D]`` to that group's actions.
    ``policy(obs [B, N, D])`` returns full actions (``[B, N]`` or ``[B, N, A]``); a dict
    ``{agent_name: obs}`` (mpe2's API, one environment) returns ``{agent_name: action}``.
    """

    def __init__(self, env: Any, *members: Any, deterministic: bool | None = None):
        self.groups = {g.name: g for g in groups_of(env)}
        self.names = list(env.agent_names)
        self.obs_dim = int(env.obs_dim)
        self.continuous = bool(env.continuous_actions)
        self.parts: list[tuple[Group, Callable]] = []
        for m in members:
            if isinstance(m, tuple):
                gname, fn = m
                group = self.groups[gname]
            else:
                group = m.group
                fn = m
            if deterministic is not None and isinstance(m, (PPOAgent, FrozenPolicy)):
                fn = (lambda mm: lambda o: mm.act(o, deterministic=deterministic))(m)
            self.parts.append((group, fn))
        covered = sorted(i for g, _ in self.parts for i in g.agents)
        if covered != list(range(len(self.names))):
            raise ValueError(f"TeamPolicy: the members cover agents {covered}, the env has {len(self.names)}")

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        B, N = obs.shape[0], len(self.names)
        out = None
        for group, fn in self.parts:
            a = np.asarray(fn(obs))
            if out is None:
                out = np.zeros((B, N) + a.shape[2:], dtype=a.dtype)
            out[:, list(group.agents)] = a
        return out

    def __call__(self, obs: Any) -> Any:
        if isinstance(obs, dict):  # mpe2 parallel env: {agent: obs} -> {agent: action}
            from course_lib.envs.mpe_policies import act_on_agent_dict

            return act_on_agent_dict(self.act, self.names, obs, self.obs_dim, self.continuous)
        return self.act(obs)


# =============================================================================
# 5. Training
# =============================================================================
@dataclass
class Config:
    """Hyperparameters of :func:`train` (CleanRL-style: every knob in one place)."""

    seed: int = 0  # seeds torch, numpy and the environment
    total_steps: int = 200_000  # environment steps (each batched step adds num_envs)
    rollout_len: int = 25  # batched steps per rollout (one mpe2 episode)
    gamma: float = 0.95  # discount (Method I's default)
    gae_lambda: float = 0.95  # GAE's lambda
    clip: float = 0.2  # PPO clip range of the probability ratio
    epochs: int = 3  # passes over each rollout
    minibatches: int = 8  # minibatches per pass (with 256 envs: 800 samples of each agent)
    lr: float = 5e-3  # Adam learning rate at the start ...
    anneal_lr: bool = True  # ... annealed linearly to 0 over the run
    ent_coef: float = 0.01  # entropy bonus
    vf_coef: float = 0.5  # value-loss weight (the encoder is shared by both heads)
    max_grad_norm: float = 0.5  # gradient clipping per group
    reward_scale: float = 0.1  # rewards are multiplied by this for learning (not for logging)
    norm_adv: bool = True  # normalise advantages per minibatch
    hidden: tuple = (64, 64)  # encoder layers; the last one is the latent m
    share_parameters: bool = False  # one network per group (True) or per agent (False)
    agent_id: bool = True  # with shared parameters: append a one-hot agent id
    log_std_init: float = -0.5  # continuous actions: initial log-std
    log_std_bounds: tuple | None = LOG_STD_BOUNDS  # clamp of the log-std (None: unclamped)
    activation: str = "tanh"  # the encoder's nonlinearity: "tanh" or "relu"
    log_every: int = 10_000  # environment steps between logged rows
    eval_every: int = 0  # environment steps between evaluations by eval_fn (0: only at the end)
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)
    progress: bool = True  # show a tqdm progress bar


class Extension:
    """Hooks :func:`train` calls; subclass to add losses or logging (see la_ippo).

    ``setup`` sees the agents before the optimisers are built and may return extra
    parameters for a group's optimiser; ``after_rollout`` sees each group's
    observations ``[T, B, n, d]``; ``aux_loss`` is added to the loss of gradient step
    ``learn_step`` of a group (None: nothing); ``after_step`` runs after each
    optimiser step; ``metrics`` adds columns to each logged row.
    """

    def setup(self, agents: dict[str, PPOAgent], config: Config) -> None:
        pass

    def after_rollout(self, group: Group, obs: torch.Tensor) -> None:
        pass

    def aux_loss(self, agent: PPOAgent, learn_step: int) -> torch.Tensor | None:
        return None

    def after_step(self, agent: PPOAgent, learn_step: int, lr: float) -> None:
        pass

    def metrics(self, agents: dict[str, PPOAgent]) -> dict[str, float]:
        return {}


def make_agent(group: Group, cfg: Config) -> PPOAgent:
    """A fresh learner for ``group`` with the network ``cfg`` describes."""
    net = ActorCritic(group.obs_size, group.size, group.action_dim, continuous=group.continuous,
                      hidden=cfg.hidden, share_parameters=cfg.share_parameters,
                      agent_id=cfg.agent_id, log_std_init=cfg.log_std_init,
                      log_std_bounds=cfg.log_std_bounds, activation=cfg.activation)
    return PPOAgent(group, net)


def make_optimizer(params: Sequence[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """Adam (eps 1e-5, CleanRL's PPO setting); the fused CPU kernel where torch has one."""
    try:
        return torch.optim.Adam(params, lr=lr, eps=1e-5, fused=True)
    except (RuntimeError, TypeError):  # pragma: no cover - older torch or unusual devices
        return torch.optim.Adam(params, lr=lr, eps=1e-5)


def train(env: Any, config: Config | None = None, *, groups: Sequence[Group] | None = None,
          agents: Mapping[str, PPOAgent] | None = None,
          opponents: Mapping[str, Callable] | None = None,
          extension: Extension | None = None,
          eval_fn: Callable[[dict[str, PPOAgent]], dict[str, float]] | None = None,
          return_agents: bool = False, **overrides):
    """Train independent PPO on a batched twin; returns a DataFrame (one row per log).

    ``groups``: how agents are grouped (default :func:`groups_of`); ``agents``: learners
    to continue training (by group name; the others start fresh); ``opponents``: group
    name -> policy ``obs [B, N, D] -> that group's actions`` (not trained);
    ``extension``: extra losses and metrics; ``eval_fn(agents) -> {column: value}`` is
    called every ``eval_every`` steps and at the end (see :func:`twin_evaluator`).
    Keyword ``overrides`` replace fields of ``config``.  With ``return_agents=True``
    returns ``(df, agents)``.

    Each update: ``rollout_len`` batched steps on all ``num_envs`` environments, GAE
    (:func:`gae`), then ``epochs`` passes of ``minibatches`` minibatches, each one
    gradient step on ``clipped_surrogate + vf_coef * value loss - ent_coef * entropy``
    (+ the extension's loss), with the learning rate annealed linearly to 0.

    Columns: ``step``, ``episode_return`` (team return summed over agents and steps,
    mean of the training episodes finished since the last row), ``return/<group>``
    (per-agent mean), ``loss/policy``, ``loss/value``, ``entropy``, ``approx_kl``,
    ``log_std`` and ``log_std_max`` (continuous: mean and largest log-std in use),
    ``lr``; ``time`` / ``sps`` (wall seconds and env steps per wall second) and
    ``cpu_time`` / ``sps_cpu`` (this process's CPU seconds; on a shared machine what a
    quiet one's wall clock would show), all training only, evaluations excluded; and
    ``eval_fn``'s columns.
    """
    from tqdm.auto import tqdm

    cfg = replace(config or Config(), **overrides)
    if cfg.torch_threads is not None:
        torch.set_num_threads(int(cfg.torch_threads))
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    extension = extension or Extension()
    groups = list(groups or groups_of(env))
    opponents = dict(opponents or {})
    unknown = set(opponents) - {g.name for g in groups}
    if unknown:
        raise ValueError(f"opponents name unknown groups {sorted(unknown)}; groups: {[g.name for g in groups]}")
    learners = [g for g in groups if g.name not in opponents]
    if not learners:
        raise ValueError("every group is an opponent: nothing to train")
    agents = dict(agents or {})
    for g in learners:
        agents.setdefault(g.name, make_agent(g, cfg))
    agents = {g.name: agents[g.name] for g in learners}
    extra_params = extension.setup(agents, cfg) or {}
    optimizers = {name: make_optimizer(list(a.net.parameters()) + list(extra_params.get(name, [])), cfg.lr)
                  for name, a in agents.items()}
    index = {g.name: list(g.agents) for g in groups}

    B, T, N = env.num_envs, cfg.rollout_len, env.num_agents
    steps_per_update = B * T
    num_updates = max(1, cfg.total_steps // steps_per_update)
    mb_size = max(1, (T * B) // cfg.minibatches)
    obs_np, _ = env.reset(seed=cfg.seed)
    rows: list[dict[str, Any]] = []
    finished_team: list[float] = []
    finished_group: dict[str, list[float]] = {g.name: [] for g in groups}
    stats: dict[str, list[float]] = {}
    learn_step = 0
    next_log, next_eval = cfg.log_every, (cfg.eval_every or math.inf)
    # wall time and this process's CPU time, both without the evaluations: on a shared
    # machine the CPU time is what a quiet machine's wall clock would show
    start, start_cpu, eval_seconds, eval_cpu = time.perf_counter(), time.process_time(), 0.0, 0.0
    bar = tqdm(total=num_updates * steps_per_update, disable=not cfg.progress, unit="step",
               desc="ppo", mininterval=1.0)

    for update in range(num_updates):
        lr = cfg.lr * (1.0 - update / num_updates) if cfg.anneal_lr else cfg.lr
        for opt in optimizers.values():
            for pg in opt.param_groups:
                pg["lr"] = lr
        # ---------------------------------------------------------------- rollout
        buf = {name: {"obs": [], "act": [], "logp": [], "val": [], "rew": []} for name in agents}
        dones = []
        for t in range(T):
            obs_t = torch.from_numpy(np.asarray(obs_np, dtype=np.float32))
            full = None
            with torch.no_grad():
                for g in groups:
                    if g.name in agents:
                        net, b = agents[g.name].net, buf[g.name]
                        o = obs_t[:, index[g.name], :g.obs_size]
                        raw, logp, _, value = net.get_action_and_value(net.encode(o))
                        b["obs"].append(o)
                        b["act"].append(raw)
                        b["logp"].append(logp)
                        b["val"].append(value)
                        a = env_actions(raw, g.continuous)
                    else:
                        a = np.asarray(opponents[g.name](obs_np))
                    if full is None:
                        full = np.zeros((B, N) + a.shape[2:], dtype=np.float32 if g.continuous else np.int64)
                    full[:, index[g.name]] = a
            obs_np, rew, term, trunc, info = env.step(full)
            done = np.asarray(info["done"], dtype=bool)
            rew_t = torch.from_numpy(np.asarray(rew, dtype=np.float32)) * cfg.reward_scale
            if done.any():
                for g in groups:
                    finished_group[g.name].extend(
                        info["episode_return"][done][:, index[g.name]].mean(axis=1).tolist())
                finished_team.extend(info["team_return"][done].tolist())
                # a time limit is not a terminal state: bootstrap from the final observation
                cut = done & ~np.asarray(term, dtype=bool).any(axis=1)
                if cut.any():
                    rows_cut = torch.from_numpy(np.flatnonzero(cut))
                    final = torch.from_numpy(np.asarray(info["final_obs"], dtype=np.float32))[rows_cut]
                    with torch.no_grad():
                        for name, a in agents.items():
                            cols = torch.tensor(index[name])
                            v = a.net.value(a.net.encode(final[:, cols, :a.group.obs_size]))
                            rew_t[rows_cut[:, None], cols[None, :]] += cfg.gamma * v
            for name in agents:
                buf[name]["rew"].append(rew_t[:, index[name]])
            dones.append(torch.from_numpy(done.astype(np.float32)))
            bar.update(B)
        done_t = torch.stack(dones)  # [T, B]
        obs_last = torch.from_numpy(np.asarray(obs_np, dtype=np.float32))

        # ----------------------------------------------------------------- learn
        for name, agent in agents.items():
            g, net, opt = agent.group, agent.net, optimizers[name]
            b = {k: torch.stack(v) for k, v in buf[name].items()}  # [T, B, n, ...]
            with torch.no_grad():
                last_v = net.value(net.encode(obs_last[:, index[name], :g.obs_size]))
            adv = gae(b["rew"], b["val"], done_t[:, :, None].expand(T, B, g.size), last_v,
                      cfg.gamma, cfg.gae_lambda)
            ret = adv + b["val"]
            extension.after_rollout(g, b["obs"])
            # agent-major [n, T*B, ...]: each agent's samples contiguous, fast batched matmuls
            flat = {k: v.reshape(T * B, g.size, *v.shape[3:]).transpose(0, 1).contiguous() for k, v in
                    dict(obs=b["obs"], act=b["act"], logp=b["logp"], adv=adv, ret=ret).items()}
            params = [p for group_ in opt.param_groups for p in group_["params"]]
            for _ in range(cfg.epochs):
                perm = torch.randperm(T * B)
                for s in range(0, T * B - mb_size + 1, mb_size):
                    idx = perm[s:s + mb_size]
                    mb = {k: v[:, idx] for k, v in flat.items()}
                    _, new_logp, entropy, new_value = net.get_action_and_value(
                        net.encode(mb["obs"], major=True), mb["act"], major=True)
                    entropy = entropy.mean()
                    mb_adv = mb["adv"]
                    if cfg.norm_adv:
                        mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                    pg_loss = clipped_surrogate(new_logp, mb["logp"], mb_adv, cfg.clip)
                    v_loss = 0.5 * ((new_value - mb["ret"]) ** 2).mean()
                    loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
                    aux = extension.aux_loss(agent, learn_step)
                    if aux is not None:
                        loss = loss + aux
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                    opt.step()
                    net.project_log_std()
                    extension.after_step(agent, learn_step, lr)
                    learn_step += 1
                    with torch.no_grad():
                        approx_kl = (mb["logp"] - new_logp).mean()
                    for key, val in (("loss/policy", pg_loss), ("loss/value", v_loss), ("entropy", entropy),
                                     ("approx_kl", approx_kl)):
                        stats.setdefault(f"{key}/{name}", []).append(val.detach())

        # ------------------------------------------------------------------- log
        step = (update + 1) * steps_per_update
        last = update == num_updates - 1
        if step >= next_log or last:
            next_log = step + cfg.log_every
            elapsed = time.perf_counter() - start - eval_seconds  # training time, evaluations excluded
            cpu = time.process_time() - start_cpu - eval_cpu
            row: dict[str, Any] = {"seed": cfg.seed, "step": step, "time": elapsed, "sps": step / elapsed,
                                   "cpu_time": cpu, "sps_cpu": step / max(cpu, 1e-9), "lr": lr,
                                   "episode_return": float(np.mean(finished_team)) if finished_team else np.nan}
            for gname, vals in finished_group.items():
                row[f"return/{gname}"] = float(np.mean(vals)) if vals else np.nan
            for key, vals in stats.items():
                row[key] = float(torch.stack(vals).mean())
            for name, a in agents.items():
                if a.group.continuous:
                    log_std = a.net.current_log_std().detach()
                    row[f"log_std/{name}"] = float(log_std.mean())
                    row[f"log_std_max/{name}"] = float(log_std.max())
            if len(agents) == 1:  # short names for the common one-group case
                (name,) = agents
                for key in ("loss/policy", "loss/value", "entropy", "approx_kl", "log_std", "log_std_max"):
                    if f"{key}/{name}" in row:
                        row[key] = row[f"{key}/{name}"]
            row.update(extension.metrics(agents))
            if eval_fn is not None and (step >= next_eval or last):
                next_eval = step + (cfg.eval_every or math.inf)
                eval_start, eval_start_cpu = time.perf_counter(), time.process_time()
                row.update(eval_fn(agents))
                eval_seconds += time.perf_counter() - eval_start
                eval_cpu += time.process_time() - eval_start_cpu
            rows.append(row)
            finished_team.clear()
            for vals in finished_group.values():
                vals.clear()
            stats.clear()
            bar.set_postfix(ret=f"{row['episode_return']:.1f}")
    bar.close()
    df = pd.DataFrame(rows)
    for k, v in asdict(cfg).items():
        if isinstance(v, (int, float, str, bool)) and k not in df.columns:
            df.attrs[k] = v
    return (df, agents) if return_agents else df


def twin_evaluator(env: Any, episodes: int = 100, seed: int = 10_000, *, deterministic: bool = True,
                   opponents: Sequence[Any] = ()) -> Callable[[dict[str, PPOAgent]], dict[str, float]]:
    """An ``eval_fn`` for :func:`train`: the team return of the learners (with ``opponents``,
    members of a :class:`TeamPolicy`) on ``episodes`` episodes of a batched twin like ``env``
    that are exactly mpe2's ``reset(seed=seed + k)`` episodes.

    Returns ``{"eval_return": mean, "eval_sem": standard error}`` (team return summed over
    all agents and steps).
    """
    eval_env = type(env)(min(int(episodes), 200), **_twin_kwargs(env))

    def eval_fn(agents: dict[str, PPOAgent]) -> dict[str, float]:
        team = TeamPolicy(env, *agents.values(), *opponents, deterministic=deterministic)
        returns = evaluate(eval_env, team, episodes, seed=seed)
        sem = float(returns.std(ddof=1) / np.sqrt(len(returns))) if len(returns) > 1 else float("nan")
        return {"eval_return": float(returns.mean()), "eval_sem": sem}

    return eval_fn


def _twin_kwargs(env: Any) -> dict[str, Any]:
    """Constructor settings of a batched MPE twin (to build another one like it)."""
    kwargs: dict[str, Any] = {"continuous_actions": bool(env.continuous_actions), "max_cycles": int(env.max_cycles)}
    for name in ("N", "local_ratio", "num_good", "num_adversaries", "num_obstacles"):  # spread's, tag's
        if hasattr(env, name):
            kwargs[name] = getattr(env, name)
    return kwargs


# =============================================================================
# 6. Evaluation
# =============================================================================
def evaluate(env: Any, policy: Callable[[np.ndarray], np.ndarray], episodes: int = 100,
             seed: int = 10_000, *, mpe2: bool = False) -> np.ndarray:
    """Team returns (summed over agents and steps) of ``policy`` over ``episodes`` episodes.

    ``env``: a batched twin, run on exactly mpe2's episodes (``reset(seed=seed + i)``);
    with ``mpe2=True``, ``env`` is an mpe2 parallel env and ``policy`` takes its dicts
    (a :class:`TeamPolicy` takes both).  Returns ``[episodes]`` team returns.
    """
    from course_lib.envs.mpe_policies import evaluate_mpe2, evaluate_vec

    if mpe2:
        return evaluate_mpe2(env, policy, episodes, seed=seed).sum(axis=1)
    return evaluate_vec(env, policy, episodes, seed=seed, mpe2_seeds=True).sum(axis=1)
