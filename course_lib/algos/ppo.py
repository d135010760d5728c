"""Independent PPO (IPPO): every agent learns its own policy and value from its own reward.

Taught in notebooks/07_method_i, where students write the two parts this loop calls;
used by notebooks/08_self_play (predators against prey).  One PPO update::

    rollout:     rollout_len steps of every environment with the current policies
    advantages:  A = gae(r, V, done, V(o_last), gamma, lambda);  value targets R = A + V
    update:      epochs x minibatches of gradient steps on
                 clipped_surrogate(log pi(a|o), log pi_old(a|o), A, clip)
                 + vf_coef * 1/2 (V(o) - R)^2 - ent_coef * entropy
    log:         a curve row every log_every environment steps (an evaluation every eval_every)

Read top to bottom: the two functions students write (:func:`gae`, :func:`clipped_surrogate`);
agent groups (:class:`Group`: the agents that share an observation layout and a learner --
simple_spread has one group of 3, simple_tag ``"adversary"`` and ``"agent"``); the network
(:class:`ActorCritic`: per agent an encoder ``f(o) -> m``, the latent, with a policy head and a
value head on ``m``); the policies (:class:`PPOAgent`, one group's learner; :class:`TeamPolicy`,
groups put together); then :class:`Config`, :class:`Parts` and the learner :class:`IPPO`.
Method I (:mod:`course_lib.algos.la_ippo`) is this learner with one more loss.

    run = ppo.train("simple_spread_v3", ppo.Config(seed=0), parts=ppo.Parts(gae=my_gae))
    run.curve, run.policy, evaluate(run.policy, "simple_spread_v3", on="mpe2")

``step`` counts environment steps summed over the ``num_envs`` environments (one joint
transition each, as mpe2 counts a ``step()``).  The CPU speed tricks the loop relies on
(agent-major tensors, fused heads, closed-form sampling) live in
:mod:`course_lib.algos.ppo_fast`.
"""
from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from course_lib import learning
from course_lib.algos import ppo_fast
from course_lib.evaluation import evaluate
from course_lib.nets import AgentLinear, from_major, to_major
from course_lib.policy import Policy

__all__ = ["gae", "clipped_surrogate", "Group", "groups_of", "ActorCritic", "PPOAgent", "FrozenPolicy",
           "TeamPolicy", "Config", "Parts", "IPPO", "train", "make_agent", "rollback_on_interrupt", "LOG_STD_BOUNDS"]

LOG_STD_BOUNDS = (-2.0, 0.5)  # Method I's clamp: std between 0.14 and 1.65


# =============================================================================
# The functions students write
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
# Groups of agents
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


def groups_of(env: Any) -> list[Group]:
    """The agent groups of a batched MPE twin: agents with the same name prefix
    (``adversary_0`` -> ``"adversary"``), so simple_spread has one group ``"agent"`` of 3
    and simple_tag ``"adversary"`` (3 predators) and ``"agent"`` (the prey)."""
    split: dict[str, list[int]] = {}
    for i, name in enumerate(env.agent_names):
        split.setdefault(name.rsplit("_", 1)[0], []).append(i)
    groups = []
    for gname, idx in split.items():
        sizes = {int(env.obs_sizes[i]) for i in idx}
        if len(sizes) != 1:
            raise ValueError(f"group {gname!r}: its agents have different observation sizes {sorted(sizes)}")
        space = env.action_space(idx[0])
        continuous = bool(env.continuous_actions)
        groups.append(Group(gname, tuple(idx), sizes.pop(), int(space.shape[0] if continuous else space.n),
                            continuous))
    return groups


# =============================================================================
# The network
# =============================================================================
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


class ActorCritic(nn.Module):
    """Per agent: encoder ``f(o) -> m`` (an MLP, ``m`` = its last hidden layer, the
    *latent*), a policy head and a value head on ``m``.

    ``share_parameters=False``: each of the ``num_agents`` agents has its own weights
    (independent learners, all computed in one batched op, :class:`course_lib.nets.AgentLinear`);
    ``True``: one set of weights for the group, with a one-hot agent id appended to the
    observation when ``agent_id``.

    Discrete actions: the policy head gives logits (categorical policy).  Continuous
    actions: it gives the mean of a Gaussian whose log-std is a state-independent
    parameter ``log_std [n, action_dim]``, kept in ``log_std_bounds`` (None: free).

    :meth:`encode` takes observations ``[..., num_agents, obs_size]`` and returns latents
    ``[..., num_agents, latent_dim]``; :meth:`value` and :meth:`distribution` take those
    latents.  The training loop computes the same in :mod:`course_lib.algos.ppo_fast`.
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

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """Latents ``m [..., num_agents, latent_dim]`` of observations ``[..., num_agents, obs_size]``."""
        if obs.dim() < 2 or obs.shape[-2] != self.num_agents or obs.shape[-1] != self.obs_size:
            raise ValueError(f"ActorCritic expects observations [..., {self.num_agents}, {self.obs_size}]; "
                             f"got {tuple(obs.shape)}")
        return from_major(ppo_fast.encode_major(self, to_major(obs)), obs.shape[:-2])

    def value(self, latent: torch.Tensor) -> torch.Tensor:
        """``V(o)`` ``[..., num_agents]`` from the latents."""
        return self.value_head(latent).squeeze(-1)

    def distribution(self, latent: torch.Tensor):
        """Each agent's action distribution; ``log_prob``/``entropy`` give ``[..., num_agents]``."""
        out = self.policy_head(latent)
        if not self.continuous:
            return Categorical(logits=out, validate_args=False)
        return _Diagonal(Normal(out, self.current_log_std().exp().expand_as(out), validate_args=False))

    def current_log_std(self) -> torch.Tensor:
        """The log-std in use ``[n, action_dim]``: the parameter, clamped to ``log_std_bounds`` when set."""
        if self.log_std_bounds is None:
            return self.log_std
        return self.log_std.clamp(*self.log_std_bounds)

    @torch.no_grad()
    def project_log_std(self) -> None:
        """Put the log-std parameter back into ``log_std_bounds`` (after each optimiser step).

        Clamping only in the forward pass would leave a parameter that crossed a bound
        with zero gradient, stuck there for good; projecting keeps it inside, where
        the gradients of the surrogate and of the entropy bonus both reach it.
        """
        if self.continuous and self.log_std_bounds is not None:
            self.log_std.clamp_(*self.log_std_bounds)


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
# Policies
# =============================================================================
def env_actions(raw: torch.Tensor, continuous: bool) -> np.ndarray:
    """Network outputs -> what the environment accepts (Gaussian samples clipped to [0, 1])."""
    if continuous:
        return raw.clamp(0.0, 1.0).numpy().astype(np.float32)
    return raw.numpy()


class PPOAgent:
    """One group's learner: its :class:`Group` and :class:`ActorCritic`.

    ``act(obs)`` takes the environment's full batched observations ``[B, N, D]`` (it
    picks its agents and their true observation size) and returns the group's actions:
    ints ``[B, n]`` or, for continuous actions, float32 ``[B, n, A]`` clipped into the
    Box ``[0, 1]``.  ``deterministic=True`` takes the most likely action (the mean).
    """

    def __init__(self, group: Group, net: ActorCritic):
        self.group, self.net = group, net

    def observations(self, obs: Any) -> torch.Tensor:
        obs = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        return obs[..., list(self.group.agents), :self.group.obs_size]

    def act(self, obs: Any, deterministic: bool = False, generator: torch.Generator | None = None) -> np.ndarray:
        with torch.no_grad():
            raw, _, _, _ = ppo_fast.act_value(self.net, self.net.encode(self.observations(obs)),
                                              deterministic=deterministic, generator=generator)
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
    """A :class:`PPOAgent` copy used only to act (an opponent): ``policy(obs [B, N, D]) -> group actions``,
    sampling from torch's global generator unless given one."""

    def __init__(self, agent: PPOAgent, deterministic: bool = False):
        self.agent, self.deterministic = agent, deterministic
        self.group = agent.group
        for p in agent.net.parameters():
            p.requires_grad_(False)

    def act(self, obs: Any, deterministic: bool | None = None, generator: torch.Generator | None = None):
        return self.agent.act(obs, self.deterministic if deterministic is None else deterministic, generator)

    __call__ = act

    def __repr__(self) -> str:
        return f"Frozen{self.agent!r}"


class TeamPolicy(Policy):
    """Groups put together into one policy for every agent of the batched twin ``env``.

    ``members``: :class:`PPOAgent` (learners), :class:`FrozenPolicy`, or ``(group_name,
    callable)`` pairs whose callable maps full observations ``[B, N, D]`` to that group's
    actions.  ``team``: the learners' agents (every agent when no member learns).  With
    ``greedy=False`` the learners sample from the policy's own generator (``seed``).
    """

    name = "ippo"

    def __init__(self, env: Any, *members: Any, seed: int = 0):
        groups = {g.name: g for g in groups_of(env)}
        self.members = [(groups[m[0]], m[1]) if isinstance(m, tuple) else (m.group, m) for m in members]
        covered = sorted(i for g, _ in self.members for i in g.agents)
        if covered != list(range(len(env.agent_names))):
            raise ValueError(f"TeamPolicy: the members cover agents {covered}, the env has {len(env.agent_names)}")
        learners = sorted(i for g, m in self.members if isinstance(m, PPOAgent) for i in g.agents)
        super().__init__(env.agent_names, env.obs_dim, team=learners or None, continuous=env.continuous_actions)
        self.generator = torch.Generator().manual_seed(int(seed))

    def act(self, obs: np.ndarray, info: dict | None = None, greedy: bool = True) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        out = None
        for group, member in self.members:
            if isinstance(member, PPOAgent):
                a = member.act(obs, deterministic=greedy, generator=self.generator)
            elif isinstance(member, FrozenPolicy):
                a = member.act(obs, deterministic=True if greedy else None, generator=self.generator)
            else:
                a = np.asarray(member(obs))
            if out is None:
                out = np.zeros((obs.shape[0], len(self.agents)) + a.shape[2:], dtype=a.dtype)
            out[:, list(group.agents)] = a
        return out


# =============================================================================
# Configuration, parts and the learner
# =============================================================================
@dataclass
class Config:
    """Independent PPO (every step count is in environment steps, summed over ``num_envs``)."""

    seed: int = 0  # seeds torch, numpy and the environments
    total_steps: int = 200_000  # environment steps (whole updates of num_envs * rollout_len steps)
    num_envs: int = 256  # environments stepped together
    rollout_len: int = 25  # steps of every environment per update (one mpe2 episode)
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
    log_every: int = 10_000  # environment steps between curve rows
    eval_every: int = 0  # environment steps between evaluations (0: only at the end)
    eval_episodes: int = 100  # deterministic policy on mpe2's episodes (on the twin); 0: no evaluation
    eval_seed: int = 10_000  # evaluation episode k is mpe2's reset(seed=eval_seed + k)
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)


@dataclass
class Parts:
    """The functions of notebook 07 that the loop calls (defaults: the references)."""

    gae: Callable = gae
    clipped_surrogate: Callable = clipped_surrogate


def make_agent(group: Group, cfg: Config) -> PPOAgent:
    """A fresh learner for ``group`` with the network ``cfg`` describes."""
    net = ActorCritic(group.obs_size, group.size, group.action_dim, continuous=group.continuous,
                      hidden=cfg.hidden, share_parameters=cfg.share_parameters,
                      agent_id=cfg.agent_id, log_std_init=cfg.log_std_init,
                      log_std_bounds=cfg.log_std_bounds, activation=cfg.activation)
    return PPOAgent(group, net)


@contextlib.contextmanager
def rollback_on_interrupt(learner: learning.Learner):
    """On Ctrl-C inside the block, put ``learner`` and the global RNGs back as they were when it
    began: an update happens whole or not at all, so the checkpoint written then resumes exactly."""
    saved = copy.deepcopy({k: v for k, v in vars(learner).items() if k != "parts"})
    rngs = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        yield
    except KeyboardInterrupt:
        vars(learner).update(saved)
        torch.set_rng_state(rngs[0])
        np.random.set_state(rngs[1])
        random.setstate(rngs[2])
        raise


def _mean(xs: list) -> float:
    return float(np.mean(xs)) if xs else float("nan")


class IPPO(learning.Learner):
    """Independent PPO on an MPE task: one learner per agent group (see the module docstring).

    ``agents``: learners to continue training, by group name (the others start fresh);
    ``opponents``: group name -> policy ``obs [B, N, D] -> that group's actions``, not
    trained (e.g. a frozen prey while the predators learn).
    """

    name = "ippo"
    description = "independent PPO, one actor-critic per agent, batched over agents and environments (notebook 07)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts, *, agents: Mapping[str, PPOAgent] | None = None,
                 opponents: Mapping[str, Callable] | None = None):
        super().__init__(task, config, parts)
        if not task.is_mpe:
            raise ValueError(f"{self.name} trains on the MPE tasks (simple_spread_v3, simple_tag_v3), not {task.name}")
        cfg = config
        self.env = task.batched(cfg.num_envs, seed=cfg.seed)
        self.seed_torch()
        np.random.seed(cfg.seed)
        self.groups = groups_of(self.env)
        self.index = {g.name: list(g.agents) for g in self.groups}
        self.opponents = dict(opponents or {})
        unknown = set(self.opponents) - set(self.index)
        if unknown:
            raise ValueError(f"opponents name unknown groups {sorted(unknown)}; groups: {list(self.index)}")
        # a fresh network for every learning group, given or not: the random stream does not depend on `agents`
        fresh = {g.name: make_agent(g, cfg) for g in self.groups if g.name not in self.opponents}
        if not fresh:
            raise ValueError("every group is an opponent: nothing to train")
        self.agents = {name: (agents or {}).get(name, agent) for name, agent in fresh.items()}
        self.optimizers = {name: ppo_fast.adam(list(a.net.parameters()), cfg.lr) for name, a in self.agents.items()}
        self.obs, _ = self.env.reset(seed=cfg.seed)
        self.updates = 0  # PPO updates so far
        self.learn_steps = 0  # gradient steps so far (all groups)
        self.lr = cfg.lr
        self.next_log, self.next_eval = cfg.log_every, (cfg.eval_every or math.inf)
        self.train_wall = self.train_cpu = 0.0  # training seconds (wall, this process's CPU), evaluations excluded
        self.clock = (time.perf_counter(), time.process_time())  # when this update's training time began
        self.since_log = self.fresh_log()

    @property
    def num_updates(self) -> int:
        return max(1, self.total_steps // (self.config.num_envs * self.config.rollout_len))

    @property
    def done(self) -> bool:
        return self.updates >= self.num_updates

    def iterate(self) -> None:
        """One PPO update: a rollout, then for each learning group its advantages and epochs of
        minibatch gradient steps; a curve row when one is due."""
        with rollback_on_interrupt(self):
            self.clock = (time.perf_counter(), time.process_time())
            cfg = self.config
            self.lr = cfg.lr * (1.0 - self.updates / self.num_updates) if cfg.anneal_lr else cfg.lr
            for opt in self.optimizers.values():
                for group in opt.param_groups:
                    group["lr"] = self.lr
            samples, dones, last_obs = self.rollout()
            for name in self.agents:
                advantages, returns = self.advantages(name, samples[name], dones, last_obs)
                self.update(name, samples[name], advantages, returns)
            self.updates += 1
            if self.step >= self.next_log or self.done:
                self.log_row()
            self.train_wall, self.train_cpu = self.training_time()

    # ------------------------------------------------------------------ rollout
    def rollout(self) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """``rollout_len`` steps of every environment: each learning group's samples
        ``{obs, act, logp, val, rew}`` ``[T, B, n, ...]``, the episode ends ``[T, B]`` and the last observations."""
        cfg = self.config
        samples = {name: {"obs": [], "act": [], "logp": [], "val": [], "rew": []} for name in self.agents}
        dones = []
        for _ in range(cfg.rollout_len):
            actions = self.act(self.obs, samples)
            self.obs, reward, term, _, info = self.env.step(actions)
            self.step += self.env.num_envs
            done = np.asarray(info["done"], dtype=bool)
            reward = torch.from_numpy(np.asarray(reward, dtype=np.float32)) * cfg.reward_scale
            if done.any():
                self.episodes_ended(info, done)
                self.bootstrap_time_limits(reward, done, term, info)
            for name in self.agents:
                samples[name]["rew"].append(reward[:, self.index[name]])
            dones.append(torch.from_numpy(done.astype(np.float32)))
        samples = {name: {k: torch.stack(v) for k, v in s.items()} for name, s in samples.items()}
        return samples, torch.stack(dones), torch.from_numpy(np.asarray(self.obs, dtype=np.float32))

    def act(self, obs_np: np.ndarray, samples: dict) -> np.ndarray:
        """Every group's actions for one batched step (opponents' too); the learners' samples are recorded."""
        obs = torch.from_numpy(np.asarray(obs_np, dtype=np.float32))
        actions = None
        with torch.no_grad():
            for g in self.groups:
                if g.name in self.agents:
                    net, s = self.agents[g.name].net, samples[g.name]
                    o = obs[:, self.index[g.name], :g.obs_size]
                    raw, log_prob, _, value = ppo_fast.act_value(net, net.encode(o))
                    for key, v in (("obs", o), ("act", raw), ("logp", log_prob), ("val", value)):
                        s[key].append(v)
                    a = env_actions(raw, g.continuous)
                else:
                    a = np.asarray(self.opponents[g.name](obs_np))
                if actions is None:
                    shape = (obs.shape[0], obs.shape[1]) + a.shape[2:]
                    actions = np.zeros(shape, dtype=np.float32 if g.continuous else np.int64)
                actions[:, self.index[g.name]] = a
        return actions

    def episodes_ended(self, info: dict, done: np.ndarray) -> None:
        self.episode += int(done.sum())
        self.since_log["team"].extend(info["team_return"][done].tolist())
        per_agent = info["episode_return"][done]
        for g in self.groups:
            self.since_log[f"return/{g.name}"].extend(per_agent[:, self.index[g.name]].mean(axis=1).tolist())

    def bootstrap_time_limits(self, reward: torch.Tensor, done: np.ndarray, term: np.ndarray, info: dict) -> None:
        """A time limit is not a terminal state: add ``gamma V(final obs)`` to the last reward of a cut episode."""
        cut = done & ~np.asarray(term, dtype=bool).any(axis=1)
        if not cut.any():
            return
        rows = torch.from_numpy(np.flatnonzero(cut))
        final = torch.from_numpy(np.asarray(info["final_obs"], dtype=np.float32))[rows]
        with torch.no_grad():
            for name, agent in self.agents.items():
                cols = torch.tensor(self.index[name])
                v = agent.net.value(agent.net.encode(final[:, cols, :agent.group.obs_size]))
                reward[rows[:, None], cols[None, :]] += self.config.gamma * v

    # ------------------------------------------------------------ learn
    def advantages(self, name: str, s: dict, dones: torch.Tensor, last_obs: torch.Tensor):
        """``A = gae(...)`` over the group's rollout, and the value targets ``A + V``."""
        cfg, agent = self.config, self.agents[name]
        T, B, n = s["rew"].shape
        with torch.no_grad():
            last_values = agent.net.value(agent.net.encode(last_obs[:, self.index[name], :agent.group.obs_size]))
        advantages = self.parts.gae(s["rew"], s["val"], dones[:, :, None].expand(T, B, n), last_values,
                                    cfg.gamma, cfg.gae_lambda)
        advantages = torch.as_tensor(advantages, dtype=torch.float32)
        return advantages, advantages + s["val"]

    def update(self, name: str, s: dict, advantages: torch.Tensor, returns: torch.Tensor) -> None:
        """``epochs`` passes over the rollout in ``minibatches`` minibatches, one gradient step each."""
        cfg, agent = self.config, self.agents[name]
        self.after_rollout(agent, s["obs"])
        # agent-major [n, T * B, ...]: each agent's samples contiguous (fast batched matmuls)
        data = {k: ppo_fast.agent_major(v) for k, v in (("obs", s["obs"]), ("act", s["act"]), ("logp", s["logp"]),
                                                         ("adv", advantages), ("ret", returns))}
        M = data["obs"].shape[1]
        size = max(1, M // cfg.minibatches)
        for _ in range(cfg.epochs):
            order = torch.randperm(M)
            for start in range(0, M - size + 1, size):
                idx = order[start:start + size]
                self.gradient_step(agent, {k: v[:, idx] for k, v in data.items()})

    def gradient_step(self, agent: PPOAgent, mb: dict) -> None:
        """One optimiser step on ``clipped_surrogate + vf_coef * value loss - ent_coef * entropy`` (+ extra)."""
        cfg, net, opt = self.config, agent.net, self.optimizers[agent.group.name]
        _, log_prob, entropy, value = ppo_fast.act_value(net, ppo_fast.encode_major(net, mb["obs"]), mb["act"],
                                                         major=True)
        entropy = entropy.mean()
        adv = mb["adv"]
        if cfg.norm_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        policy_loss = self.parts.clipped_surrogate(log_prob, mb["logp"], adv, cfg.clip)
        value_loss = 0.5 * ((value - mb["ret"]) ** 2).mean()
        loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
        extra = self.extra_loss(agent)
        if extra is not None:
            loss = loss + extra
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_([p for group in opt.param_groups for p in group["params"]], cfg.max_grad_norm)
        opt.step()
        net.project_log_std()
        self.after_gradient_step(agent)
        self.learn_steps += 1
        with torch.no_grad():
            approx_kl = (mb["logp"] - log_prob).mean()
        stats = self.since_log["stats"]
        for key, v in (("loss/policy", policy_loss), ("loss/value", value_loss), ("entropy", entropy),
                       ("approx_kl", approx_kl)):
            stats.setdefault(self.column(key, agent.group.name), []).append(v.item())

    # hooks for learners built on this one (Method I)
    def after_rollout(self, agent: PPOAgent, obs: torch.Tensor) -> None:
        """Sees a group's rollout observations ``[T, B, n, d]`` before its update."""

    def extra_loss(self, agent: PPOAgent) -> torch.Tensor | None:
        """Added to the loss of the coming gradient step (None: nothing)."""
        return None

    def after_gradient_step(self, agent: PPOAgent) -> None:
        """Runs after each optimiser step."""

    def extra_metrics(self) -> dict[str, float]:
        """More columns for a curve row."""
        return {}

    # ---------------------------------------------------------------------- log
    def fresh_log(self) -> dict:
        return {"team": [], "stats": {}, **{f"return/{g.name}": [] for g in self.groups}}

    def column(self, key: str, group: str) -> str:
        """``key`` with the group's name when several groups learn (``loss/policy/adversary``)."""
        return key if len(self.agents) == 1 else f"{key}/{group}"

    def training_time(self) -> tuple[float, float]:
        """Training seconds so far (wall, CPU of this process), evaluations excluded."""
        wall0, cpu0 = self.clock
        return self.train_wall + time.perf_counter() - wall0, self.train_cpu + time.process_time() - cpu0

    def log_row(self) -> None:
        """A curve row: returns of the training episodes that ended since the last row, mean
        losses, timing, and the evaluation when one is due."""
        cfg, s = self.config, self.since_log
        self.next_log = self.step + cfg.log_every
        wall, cpu = self.training_time()
        metrics = {key: float(torch.tensor(v).mean()) for key, v in s["stats"].items()}  # float32, as they were
        for name, agent in self.agents.items():
            if agent.group.continuous:
                log_std = agent.net.current_log_std().detach()
                metrics[self.column("log_std", name)] = float(log_std.mean())
                metrics[self.column("log_std_max", name)] = float(log_std.max())
        metrics.update(self.extra_metrics())
        metrics["lr"] = self.lr
        metrics.update({f"return/{g.name}": _mean(s[f"return/{g.name}"]) for g in self.groups})
        eval_return = eval_sem = float("nan")
        if cfg.eval_episodes and (self.step >= self.next_eval or self.done):
            self.next_eval = self.step + (cfg.eval_every or math.inf)
            eval_return, eval_sem = self.evaluate_now()
        losses = {k: v for k, v in metrics.items() if k.startswith("loss/")}
        others = {k: v for k, v in metrics.items() if not k.startswith("loss/")}
        self.log(train_return=_mean(s["team"]), eval_return=eval_return, **losses, **others, eval_sem=eval_sem,
                 time=wall, cpu_time=cpu, sps_cpu=self.step / max(cpu, 1e-9))
        self.since_log = self.fresh_log()

    def evaluate_now(self) -> tuple[float, float]:
        """Mean and s.e.m. of the deterministic policy's team return on mpe2's evaluation episodes (on the twin)."""
        cfg = self.config
        wall, cpu = time.perf_counter(), time.process_time()
        ev = evaluate(self.policy(), self.task, episodes=cfg.eval_episodes, seed=cfg.eval_seed,
                      num_envs=min(cfg.eval_episodes, 200))
        wall0, cpu0 = self.clock  # evaluations are not training time
        self.clock = (wall0 + time.perf_counter() - wall, cpu0 + time.process_time() - cpu)
        return ev.mean, ev.sem

    def policy(self) -> TeamPolicy:
        return TeamPolicy(self.env, *self.agents.values(), *self.opponents.items(), seed=self.config.seed)


def train(task: Any = "simple_spread_v3", config: Config | None = None, parts: Any = None,
          **run_options) -> learning.Run:
    """Train independent PPO on ``task`` (simple_spread_v3 by default); see
    :func:`course_lib.learning.train` for ``resume``, ``out``, ``save_every`` and ``progress``."""
    return learning.train(IPPO, task, config, parts, **run_options)
