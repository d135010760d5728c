"""MADDPG (Lowe et al. 2017) and its independent baseline IDDPG on the MPE tasks.

Taught in notebooks/04_maddpg; used for comparisons by notebooks/07_method_i and
notebooks/08_self_play.  Read top to bottom:

1. the four functions students write -- :func:`gumbel_softmax_st` (a discrete action
   that gradients can flow through), :func:`critic_td_target`, :func:`actor_loss`
   (each agent's actor improved through its centralised critic) and
   :func:`soft_update` (Polyak-averaged target networks);
2. networks -- :class:`MultiAgentMLP` (one MLP per agent, or one shared network with
   a one-hot agent id), :class:`Actor`, :class:`Critic` (``centralised=True``: every
   agent's Q_i sees all observations and actions, MADDPG; ``False``: only its own,
   IDDPG);
3. :class:`MADDPGConfig` and :func:`train_maddpg` -- training on a batched twin of
   mpe2 (``course_lib.envs.mpe``), many environments at once;
4. :class:`MADDPGPolicy` -- the trained decentralised actors as a policy for the
   batched twin (``policy.act(obs [B, N, D])``) or mpe2's parallel env
   (``policy({agent: obs}) -> {agent: action}``), and the evaluations
   :func:`evaluate_on_twin` / :func:`evaluate_on_mpe2` (team return summed over
   agents and steps, 25-step episodes, the convention of SPECS.md and README).

Quick use (what notebooks 07 and 08 do)::

    from course_lib.algos import maddpg
    result = maddpg.train_maddpg("simple_spread_v3", maddpg.MADDPGConfig(), seed=0,
                                 total_steps=200_000, eval_every=20_000)
    result.curve            # DataFrame: step, eval_return, episode_return, losses, sps, ...
    result.steps_per_s      # env transitions per wall-clock second, learning included
    ev = maddpg.evaluate_on_mpe2(result.policy, episodes=200, seed=0)
    ev.mean, ev.sem         # team return on mpe2's own simple_spread_v3

``Config`` and ``train`` are the CleanRL-style names of :class:`MADDPGConfig` and
:func:`train_maddpg` (the same objects).  The defaults are the settings measured by
``bench/maddpg.py``: 200 environments stepped together, one gradient step on a batch
of 1,024 joint transitions per batched step (1,000 gradient steps in 200k transitions),
Adam 1e-2 for actors and critics, tau 0.01, gamma 0.95, two hidden layers of 64 (the
paper's learning rate, tau, gamma, batch and networks).  About 25 s of one CPU core
for 200k transitions; MADDPG ends about 25 points above the no-op policy on mpe2's
simple_spread_v3 (README, bench/README_maddpg.md).

On simple_tag_v3 the learned agents are the adversaries (predators); the good agent
(prey) follows a reference policy (``config.opponent``: "heuristic", "random" or
"noop", or any batched policy).  ``result.policy.against(other)`` swaps the
opponent (cross-play).

Actions.  Discrete (mpe2's default ``Discrete(5)``): the actor outputs logits; during
training the critic sees one-hot actions, the actor is updated through a
straight-through Gumbel-softmax sample, and exploration is that sample; the greedy
policy plays ``argmax``.  Continuous (``continuous_actions=True``, ``Box(0, 1, (5,))``):
a deterministic actor ``sigmoid(net(o))`` explores with Gaussian noise (DDPG).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.nets import AgentLinear

__all__ = [
    "gumbel_softmax_st",
    "critic_td_target",
    "actor_loss",
    "soft_update",
    "MultiAgentMLP",
    "Actor",
    "Critic",
    "greedy_actions",
    "MADDPGConfig",
    "MADDPGResult",
    "MADDPGPolicy",
    "Evaluation",
    "train_maddpg",
    "Config",
    "train",
    "make_env",
    "evaluate_on_twin",
    "evaluate_on_mpe2",
    "reference_returns",
    "config_dict",
    "SEED_PROJECT_MADDPG_200K",
]

# The seed project this course grew from reported MADDPG at this team return after
# 200k steps on simple_spread_v3 (last-5 evaluation mean), see /work/shared/SPECS.md.
SEED_PROJECT_MADDPG_200K = -82.89


# =============================================================================
# 1. The functions students write
# =============================================================================
def gumbel_softmax_st(logits: torch.Tensor, temperature: float = 1.0,
                      noise: torch.Tensor | None = None) -> torch.Tensor:
    """A one-hot sample from ``softmax(logits)`` whose gradient is the Gumbel-softmax's.

    ``y_soft = softmax((logits + g) / temperature)`` over the last dimension, with
    Gumbel noise ``g = -log(-log(u))``, ``u ~ U(0, 1)`` (or the given ``noise``, same
    shape as ``logits``).  Forward value: the one-hot of ``argmax y_soft`` (= a sample
    of the categorical distribution ``softmax(logits)``); backward: the gradient of
    ``y_soft`` (straight-through estimator ``y_hard - y_soft.detach() + y_soft``).
    Taught in notebooks/04_maddpg.
    """
    if noise is None:
        u = torch.rand_like(logits).clamp(1e-10, 1.0 - 1e-7)
        noise = -torch.log(-torch.log(u))
    y_soft = F.softmax((logits + noise) / temperature, dim=-1)
    y_hard = torch.zeros_like(y_soft).scatter_(-1, y_soft.argmax(dim=-1, keepdim=True), 1.0)
    return y_hard - y_soft.detach() + y_soft


def critic_td_target(rewards: torch.Tensor, next_obs: torch.Tensor, dones: torch.Tensor,
                     target_policy: Callable, target_critic: Callable, gamma: float) -> torch.Tensor:
    """Every agent's critic target ``y_i = r_i + gamma (1 - d_i) Q'_i(o', a'_1, ..., a'_N)``.

    ``rewards``, ``dones`` ``[B, N]``; ``next_obs [B, N, D]``.  The next joint action
    comes from the *target* actors, each on its own next observation:
    ``a' = target_policy(next_obs) [B, N, A]``; ``target_critic(obs, actions) -> [B, N]``
    is every agent's target critic (centralised: Q'_i sees all of ``o'`` and ``a'``).
    No gradient flows into the target: the result does not require grad.
    Taught in notebooks/04_maddpg.
    """
    with torch.no_grad():
        next_actions = target_policy(next_obs)
        next_q = target_critic(next_obs, next_actions)
        return rewards + gamma * (1.0 - dones) * next_q


def actor_loss(critic: Callable, obs: torch.Tensor, actions: torch.Tensor,
               new_actions: torch.Tensor) -> torch.Tensor:
    """The actors' loss through the critics: ``-mean_{b,i} Q_i(o, a_1, .., new_a_i, .., a_N)``.

    ``obs [B, N, D]`` and ``actions [B, N, A]`` come from the replay buffer;
    ``new_actions [B, N, A]`` are the current actors' (differentiable) actions.  Agent
    i's term replaces only its own action by ``new_actions[:, i]`` and keeps the others'
    actions from the buffer, so agent i's gradient flows through its own action only.
    ``critic(obs [b, N, D], actions [b, N, A]) -> Q [b, N]``.
    Taught in notebooks/04_maddpg.
    """
    B, N, A = actions.shape
    own = torch.eye(N, dtype=torch.bool).view(1, N, N, 1)  # [., query agent i, agent j, .]
    mixed = torch.where(own, new_actions.unsqueeze(1), actions.detach().unsqueeze(1))  # [B, N, N, A]
    tiled_obs = obs.unsqueeze(1).expand(B, N, N, obs.shape[-1])
    q = critic(tiled_obs.reshape(B * N, N, -1), mixed.reshape(B * N, N, A)).view(B, N, N)
    return -q.diagonal(dim1=1, dim2=2).mean()  # Q_i of the joint action where i acted anew


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging in place: ``theta' <- tau * theta + (1 - tau) * theta'`` for every
    parameter of ``target`` and the matching one of ``source`` (which is unchanged).
    Taught in notebooks/04_maddpg.
    """
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.mul_(1.0 - tau).add_(s, alpha=tau)


# =============================================================================
# 2. Networks
# =============================================================================
class MultiAgentMLP(nn.Module):
    """One MLP per agent, applied to ``x [..., N, in_dim]`` -> ``[..., N, out_dim]``.

    ``shared=True``: one network for all agents with the one-hot agent id appended to
    the input (parameter sharing; agents can still differ).  ``shared=False``: N
    separate networks, evaluated together (no Python loop over agents).
    """

    def __init__(self, num_agents: int, in_dim: int, hidden: Sequence[int], out_dim: int,
                 shared: bool = True):
        super().__init__()
        self.num_agents, self.shared = int(num_agents), bool(shared)
        sizes = [int(in_dim) + (self.num_agents if shared else 0), *map(int, hidden), int(out_dim)]
        layer = (lambda i, o: nn.Linear(i, o)) if shared else (lambda i, o: AgentLinear(self.num_agents, i, o, init="uniform"))
        self.layers = nn.ModuleList(layer(i, o) for i, o in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] != self.num_agents:
            raise ValueError(f"MultiAgentMLP expects [..., {self.num_agents}, features]; got {tuple(x.shape)}")
        if self.shared:
            ids = torch.eye(self.num_agents, dtype=x.dtype).expand(*x.shape[:-1], self.num_agents)
            x = torch.cat([x, ids], dim=-1)
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.layers) - 1:
                x = F.relu(x)
        return x


class Actor(nn.Module):
    """Decentralised actors: agent i's output depends on its own observation only.

    ``forward(obs [..., N, D]) -> [..., N, A]``: logits (discrete actions) or
    pre-sigmoid outputs (continuous actions, ``action = sigmoid(out)`` in [0, 1]).
    """

    def __init__(self, num_agents: int, obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64),
                 shared: bool = True, continuous: bool = False):
        super().__init__()
        self.num_agents, self.obs_dim, self.n_actions = int(num_agents), int(obs_dim), int(n_actions)
        self.continuous = bool(continuous)
        self.net = MultiAgentMLP(num_agents, obs_dim, hidden, n_actions, shared)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class Critic(nn.Module):
    """Every agent's Q-function: ``forward(obs [..., N, D], actions [..., N, A]) -> [..., N]``.

    ``centralised=True`` (MADDPG): agent i's input is all agents' observations and
    actions, ``Q_i(o_1..o_N, a_1..a_N)``.  ``centralised=False`` (IDDPG): only its own,
    ``Q_i(o_i, a_i)``.
    """

    def __init__(self, num_agents: int, obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64),
                 shared: bool = True, centralised: bool = True):
        super().__init__()
        self.num_agents, self.centralised = int(num_agents), bool(centralised)
        per_agent = int(obs_dim) + int(n_actions)
        # what Q_i reads (besides the agent id of a shared network)
        self.input_dim = per_agent * self.num_agents if centralised else per_agent
        self.net = MultiAgentMLP(num_agents, self.input_dim, hidden, 1, shared)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if obs.shape[-2] != self.num_agents or actions.shape[-2] != self.num_agents:
            raise ValueError(f"Critic expects obs [..., {self.num_agents}, D] and actions "
                             f"[..., {self.num_agents}, A]; got {tuple(obs.shape)} and {tuple(actions.shape)}")
        x = torch.cat([obs, actions], dim=-1)  # [..., N, D + A]
        if self.centralised:  # every agent sees the joint observation and action
            joint = x.flatten(-2)
            x = joint.unsqueeze(-2).expand(*joint.shape[:-1], self.num_agents, joint.shape[-1])
        return self.net(x).squeeze(-1)

    def own_action_values(self, obs: torch.Tensor, actions: torch.Tensor, new_actions: torch.Tensor) -> torch.Tensor:
        """``Q_i(o, a_1, .., new_a_i, .., a_N)`` for every agent i, ``[B, N]``: what
        :func:`actor_loss` evaluates, with one critic pass instead of N (for training)."""
        if not self.centralised:  # Q_i sees only its own action anyway
            return self(obs, new_actions)
        N = self.num_agents
        own = torch.eye(N, dtype=torch.bool).view(1, N, N, 1)
        mixed = torch.where(own, new_actions.unsqueeze(1), actions.detach().unsqueeze(1))  # [B, i, j, A]
        tiled_obs = obs.unsqueeze(1).expand(*mixed.shape[:-1], obs.shape[-1])
        x = torch.cat([tiled_obs, mixed], dim=-1).flatten(-2)  # row i: the joint input where i acted anew
        return self.net(x).squeeze(-1)


def greedy_actions(actor: Actor, obs: torch.Tensor) -> torch.Tensor:
    """The deterministic policy as critic inputs ``[..., N, A]``: one-hot ``argmax`` of the
    logits (discrete) or ``sigmoid`` of the outputs (continuous)."""
    out = actor(obs)
    if actor.continuous:
        return torch.sigmoid(out)
    return F.one_hot(out.argmax(-1), out.shape[-1]).to(out.dtype)


# =============================================================================
# 3. Training
# =============================================================================
@dataclass
class MADDPGConfig:
    """Hyperparameters of :func:`train_maddpg` (one place for every knob)."""

    critic: str = "centralised"  # "centralised" (MADDPG) or "independent" (IDDPG)
    continuous_actions: bool = False  # mpe2's Box(0, 1, (5,)) actions instead of Discrete(5)
    num_envs: int = 200  # batched environments stepped together (one batched step = 200 transitions)
    buffer_size: int = 200_000  # replay capacity in joint transitions
    batch_size: int = 1024  # joint transitions per gradient step
    learning_starts: int = 5_000  # env transitions of uniform random actions before learning
    train_every: int = 1  # batched env steps between learning phases
    gradient_steps: int = 1  # gradient steps per learning phase
    gamma: float = 0.95  # discount (the MADDPG paper's MPE setting)
    tau: float = 0.01  # soft target update rate (paper: 0.01)
    actor_lr: float = 1e-2  # Adam learning rate of the actors (the paper's 1e-2)
    critic_lr: float = 1e-2  # Adam learning rate of the critics (the paper's 1e-2)
    hidden: tuple = (64, 64)  # hidden layers of actors and critics (paper: two of 64)
    shared: bool = True  # one network with an agent id for all agents (else one per agent)
    temperature: float = 1.0  # Gumbel-softmax temperature (discrete actions)
    logit_reg: float = 1e-3  # weight of mean(logits^2) in the actor loss (keeps logits bounded)
    exploration_noise: float = 0.1  # std of the Gaussian action noise (continuous actions)
    max_grad_norm: float = 0.5  # gradient clipping for actors and critics (paper: 0.5)
    opponent: Any = "heuristic"  # simple_tag: the prey's policy ("heuristic", "random", "noop" or a policy)
    eval_every: int = 20_000  # env transitions between evaluations (0: only at the end)
    eval_episodes: int = 100  # greedy evaluation episodes (mpe2's reset seeds eval_seed, ...)
    eval_seed: int = 10_000  # first mpe2 reset seed of the evaluation episodes
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)
    progress: bool = True  # show a tqdm progress bar


@dataclass
class Evaluation:
    """Episode returns of a policy: ``per_agent [episodes, N]`` (mpe2's agent order);
    ``team`` ``[episodes]`` sums the agents in ``agents`` (the policy's learners)."""

    per_agent: np.ndarray
    agent_names: list
    agents: list
    team: np.ndarray = field(init=False)

    def __post_init__(self):
        idx = [self.agent_names.index(a) for a in self.agents]
        self.team = self.per_agent[:, idx].sum(axis=1)

    @property
    def mean(self) -> float:
        return float(self.team.mean())

    @property
    def sem(self) -> float:
        return float(self.team.std(ddof=1) / np.sqrt(len(self.team))) if len(self.team) > 1 else float("nan")

    def __repr__(self) -> str:
        return f"Evaluation(team return {self.mean:.2f} ± {self.sem:.2f}, {len(self.team)} episodes)"


class MADDPGPolicy:
    """Trained decentralised actors as a policy on the twin or on mpe2.

    ``act(obs [B, N, D]) -> actions`` for all N agents of the task (``[B, N]`` ints or
    ``[B, N, 5]`` floats): the learners from their actors (greedy by default), the
    other agents (simple_tag's prey) from ``opponent``.  ``policy({agent: obs})``
    answers mpe2's parallel env with ``{agent: action}``.
    """

    def __init__(self, actor: Actor, task: str, agent_names: Sequence[str], learners: Sequence[int],
                 obs_sizes: Sequence[int], continuous: bool, opponent: Any = None,
                 deterministic: bool = True, seed: int | None = None):
        self.actor, self.task = actor, task
        self.agent_names = list(agent_names)
        self.learners = [int(i) for i in learners]
        self.obs_sizes = [int(s) for s in obs_sizes]
        self.continuous = bool(continuous)
        self.opponent = opponent
        self.deterministic = bool(deterministic)
        self.generator = torch.Generator().manual_seed(0 if seed is None else int(seed))

    @property
    def learner_names(self) -> list[str]:
        return [self.agent_names[i] for i in self.learners]

    def against(self, opponent: Any) -> "MADDPGPolicy":
        """The same actors with another policy for the other agents (e.g. another prey)."""
        other = copy.copy(self)
        other.opponent = opponent
        return other

    def learner_actions(self, obs: np.ndarray) -> np.ndarray:
        """Actions of the learned agents only: ``[B, L]`` or ``[B, L, 5]``."""
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32)[:, self.learners, :self.actor.obs_dim])
            out = self.actor(x)
            if self.continuous:
                return torch.sigmoid(out).numpy()
            if self.deterministic:
                return out.argmax(-1).numpy()
            return torch.multinomial(F.softmax(out.reshape(-1, out.shape[-1]), -1), 1,
                                     generator=self.generator).view(out.shape[:-1]).numpy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        B, N = obs.shape[:2]
        if self.opponent is not None and len(self.learners) < N:
            actions = np.array(self.opponent(obs), copy=True)
        elif self.continuous:
            actions = np.zeros((B, N, 5), dtype=np.float32)
        else:
            actions = np.zeros((B, N), dtype=np.int64)
        actions[:, self.learners] = self.learner_actions(obs)
        return actions

    def __call__(self, obs: Any) -> Any:
        if isinstance(obs, dict):  # mpe2 parallel env: {agent: obs} -> {agent: action}
            from course_lib.envs.mpe_policies import act_on_agent_dict

            return act_on_agent_dict(self.act, self.agent_names, obs, max(self.obs_sizes), self.continuous)
        return self.act(obs)

    def __repr__(self) -> str:
        return f"MADDPGPolicy({self.task!r}, learners={self.learner_names}, continuous={self.continuous})"


@dataclass
class MADDPGResult:
    """What :func:`train_maddpg` returns."""

    curve: pd.DataFrame  # one row per evaluation: step, eval_return, episode_return, losses, sps, seed, method
    policy: MADDPGPolicy  # the trained actors (greedy), ready for act(obs) or mpe2
    actor: Actor
    critic: Critic
    config: MADDPGConfig
    seed: int
    steps_per_s: float  # env transitions per wall-clock second, acting and learning (evaluations excluded)
    wall_s: float  # wall-clock seconds of the whole call, evaluations included

    @property
    def final_return(self) -> float:
        """Evaluation team return at the last logged step."""
        return float(self.curve["eval_return"].iloc[-1])


def make_env(task: Any, num_envs: int, continuous_actions: bool = False, seed: int | None = None):
    """A batched twin: ``task`` is a registry name ("simple_spread_v3", "simple_tag_v3"),
    a maker ``f(num_envs) -> env``, or an env (returned as is)."""
    from course_lib.envs.mpe import mpe_registry

    if isinstance(task, str):
        registry = mpe_registry()
        if task not in registry:
            raise ValueError(f"unknown MPE task {task!r}; choose from {sorted(registry)}")
        return registry[task][1](num_envs, continuous_actions=continuous_actions, seed=seed)
    if hasattr(task, "num_envs") and hasattr(task, "step"):
        return task
    if callable(task):
        return task(num_envs)
    raise TypeError(f"expected a task name, a maker or a batched env; got {type(task).__name__}")


def _learners(env) -> list[int]:
    """The agents MADDPG trains: all (spread) or the adversaries (simple_tag's predators)."""
    if getattr(env, "name", "") == "simple_tag_v3":
        return [int(i) for i in np.flatnonzero(env.is_adversary)]
    return list(range(env.num_agents))


def _opponent(env, spec: Any, seed: int):
    if spec is None or callable(spec):
        return spec
    from course_lib.envs.policies import make_policy

    return make_policy(str(spec), env, seed=seed)


class _Replay:
    """Replay of joint transitions of the learners, kept as torch tensors (no copies when sampling)."""

    def __init__(self, capacity: int, n: int, obs_dim: int, n_actions: int):
        self.capacity, self.pos, self.size = int(capacity), 0, 0
        self.obs = torch.zeros(capacity, n, obs_dim)
        self.next_obs = torch.zeros(capacity, n, obs_dim)
        self.actions = torch.zeros(capacity, n, n_actions)
        self.rewards = torch.zeros(capacity, n)
        self.dones = torch.zeros(capacity, n)

    def add(self, obs, actions, rewards, next_obs, dones) -> None:
        k = obs.shape[0]
        idx = (self.pos + torch.arange(k)) % self.capacity
        for buf, value in ((self.obs, obs), (self.actions, actions), (self.rewards, rewards),
                           (self.next_obs, next_obs), (self.dones, dones)):
            buf[idx] = torch.as_tensor(value, dtype=torch.float32)
        self.pos = int((self.pos + k) % self.capacity)
        self.size = min(self.size + k, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator):
        idx = torch.randint(0, self.size, (batch_size,), generator=generator)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.dones[idx]


def train_maddpg(task: Any = "simple_spread_v3", config: MADDPGConfig | None = None, seed: int = 0,
                 total_steps: int = 200_000, eval_every: int | None = None,
                 on_log: Callable[[dict], None] | None = None, **overrides) -> MADDPGResult:
    """Train MADDPG (``critic="centralised"``) or IDDPG (``critic="independent"``).

    ``task``: "simple_spread_v3" / "simple_tag_v3" (the batched twins of
    ``course_lib.envs.mpe``), a maker ``f(num_envs)`` or a batched env.
    ``total_steps`` counts environment transitions (``num_envs`` per batched step),
    the unit of the 200k-step results.  Keyword ``overrides`` replace config fields.

    Each batched step: the learners act on their own observations (Gumbel-softmax
    samples or noisy deterministic actions; uniform random for the first
    ``learning_starts`` transitions), the transitions go to the replay, then
    ``gradient_steps`` updates of critics (TD on :func:`critic_td_target`), actors
    (:func:`actor_loss`) and targets (:func:`soft_update`).  Episodes end at mpe2's
    time limit (25 steps); the time is not in the observation, so the critic
    bootstraps through the limit (a truncation, not a terminal state).

    Every ``eval_every`` transitions the greedy actors play ``eval_episodes`` episodes
    that are exactly mpe2's ``reset(seed=eval_seed + k)`` episodes (on the twin).
    ``curve`` columns: ``step``, ``eval_return`` (team return of the learners, mean
    over episodes), ``eval_sem``, ``episode_return`` (training episodes since the
    last row, exploring), ``loss/critic``, ``loss/actor``, ``q`` (mean Q of the
    batch), ``sps``, ``seed``, ``method`` ("MADDPG"/"IDDPG").  ``on_log(row)`` is called
    with every row as it is logged.
    Taught in notebooks/04_maddpg.
    """
    from tqdm.auto import tqdm

    cfg = replace(config or MADDPGConfig(), **overrides)
    if eval_every is not None:
        cfg = replace(cfg, eval_every=int(eval_every))
    if cfg.critic not in ("centralised", "independent"):
        raise ValueError(f"critic must be 'centralised' (MADDPG) or 'independent' (IDDPG), got {cfg.critic!r}")
    method = "MADDPG" if cfg.critic == "centralised" else "IDDPG"
    if cfg.torch_threads is not None:
        torch.set_num_threads(int(cfg.torch_threads))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)

    env = make_env(task, cfg.num_envs, cfg.continuous_actions, seed=seed)
    if getattr(env, "continuous_actions", False) != cfg.continuous_actions:
        raise ValueError(f"the env's continuous_actions={env.continuous_actions} differs from the config's "
                         f"{cfg.continuous_actions}")
    eval_env = type(env)(min(cfg.eval_episodes, 100), **_env_kwargs(env)) if cfg.eval_episodes else None
    B, D, A = env.num_envs, env.obs_dim, env.n_actions
    learners = _learners(env)
    L = len(learners)
    opponent = _opponent(env, cfg.opponent, seed) if L < env.num_agents else None

    actor = Actor(L, D, A, cfg.hidden, cfg.shared, cfg.continuous_actions)
    critic = Critic(L, D, A, cfg.hidden, cfg.shared, centralised=cfg.critic == "centralised")
    target_actor, target_critic = copy.deepcopy(actor), copy.deepcopy(critic)
    for p in list(target_actor.parameters()) + list(target_critic.parameters()):
        p.requires_grad_(False)
    actor_opt = torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr)
    replay = _Replay(cfg.buffer_size, L, D, A)
    policy = MADDPGPolicy(actor, env.name, env.agent_names, learners, env.obs_sizes,
                          cfg.continuous_actions, opponent)

    def target_policy(o):
        return greedy_actions(target_actor, o)

    def evaluate() -> Evaluation:
        return evaluate_on_twin(policy, cfg.eval_episodes, seed=cfg.eval_seed, env=eval_env)

    rows: list[dict] = []
    returns: list[float] = []
    critic_losses: list[float] = []
    actor_losses: list[float] = []
    qs: list[float] = []
    obs, _ = env.reset(seed=seed)
    iterations = -(-int(total_steps) // B)
    every = max(int(cfg.eval_every) // B, 1) if cfg.eval_every else iterations
    start = time.perf_counter()
    eval_time = 0.0
    bar = tqdm(range(1, iterations + 1), desc=f"{method} {env.name} seed {seed}", disable=not cfg.progress,
               mininterval=2.0, leave=False)
    for it in bar:
        steps = it * B
        # ---- act: each learner on its own observation
        own_obs = torch.as_tensor(obs[:, learners])
        if (it - 1) * B < cfg.learning_starts:
            if cfg.continuous_actions:
                act_vec = torch.rand(B, L, A, generator=gen)
            else:
                act_vec = F.one_hot(torch.randint(0, A, (B, L), generator=gen), A).float()
        else:
            with torch.no_grad():
                out = actor(own_obs)
                if cfg.continuous_actions:
                    noise = cfg.exploration_noise * torch.randn(out.shape, generator=gen)
                    act_vec = (torch.sigmoid(out) + noise).clamp(0.0, 1.0)
                else:
                    u = torch.rand(out.shape, generator=gen).clamp(1e-10, 1.0 - 1e-7)
                    act_vec = gumbel_softmax_st(out, cfg.temperature, noise=-torch.log(-torch.log(u)))
        if opponent is not None:
            env_actions = np.array(opponent(obs), copy=True)
        else:
            env_actions = np.zeros((B, env.num_agents, A) if cfg.continuous_actions else (B, env.num_agents),
                                   dtype=np.float32 if cfg.continuous_actions else np.int64)
        env_actions[:, learners] = act_vec.numpy() if cfg.continuous_actions else act_vec.argmax(-1).numpy()
        next_obs, rewards, terminations, _, info = env.step(env_actions)
        final_obs = info["final_obs"][:, learners]
        replay.add(own_obs, act_vec, rewards[:, learners], final_obs, terminations[:, learners])
        if info["done"].any():
            returns.extend(info["episode_return"][info["done"]][:, learners].sum(axis=1).tolist())
        obs = next_obs

        # ---- learn: centralised critics, decentralised actors
        if steps >= cfg.learning_starts and replay.size >= cfg.batch_size and it % cfg.train_every == 0:
            for _ in range(cfg.gradient_steps):
                o, a, r, o2, d = replay.sample(cfg.batch_size, gen)
                y = critic_td_target(r, o2, d, target_policy, target_critic, cfg.gamma)
                q = critic(o, a)
                c_loss = F.mse_loss(q, y)
                critic_opt.zero_grad()
                c_loss.backward()
                nn.utils.clip_grad_norm_(critic.parameters(), cfg.max_grad_norm)
                critic_opt.step()

                out = actor(o)
                if cfg.continuous_actions:
                    new_a = torch.sigmoid(out)
                else:
                    uu = torch.rand(out.shape, generator=gen).clamp(1e-10, 1.0 - 1e-7)
                    new_a = gumbel_softmax_st(out, cfg.temperature, noise=-torch.log(-torch.log(uu)))
                critic.requires_grad_(False)  # the actor step leaves the critic alone
                # = actor_loss(critic, o, a, new_a), in one critic pass
                a_loss = -critic.own_action_values(o, a, new_a).mean() + cfg.logit_reg * (out ** 2).mean()
                critic.requires_grad_(True)
                actor_opt.zero_grad()
                a_loss.backward()
                nn.utils.clip_grad_norm_(actor.parameters(), cfg.max_grad_norm)
                actor_opt.step()

                soft_update(target_critic, critic, cfg.tau)
                soft_update(target_actor, actor, cfg.tau)
                critic_losses.append(c_loss.item())
                actor_losses.append(a_loss.item())
                qs.append(q.detach().mean().item())

        # ---- evaluate and log
        if it % every == 0 or it == iterations:
            t0 = time.perf_counter()
            ev = evaluate() if eval_env is not None else None
            eval_time += time.perf_counter() - t0
            elapsed = time.perf_counter() - start - eval_time
            rows.append({
                "step": steps,
                "eval_return": ev.mean if ev else np.nan,
                "eval_sem": ev.sem if ev else np.nan,
                "episode_return": float(np.mean(returns)) if returns else np.nan,
                "loss/critic": float(np.mean(critic_losses)) if critic_losses else np.nan,
                "loss/actor": float(np.mean(actor_losses)) if actor_losses else np.nan,
                "q": float(np.mean(qs)) if qs else np.nan,
                "sps": steps / max(elapsed, 1e-9),
                "seed": seed,
                "method": method,
            })
            bar.set_postfix(eval=f"{rows[-1]['eval_return']:.1f}", refresh=False)
            if on_log is not None:
                on_log(rows[-1])
            returns, critic_losses, actor_losses, qs = [], [], [], []
    bar.close()
    wall = time.perf_counter() - start
    curve = pd.DataFrame(rows)
    sps = iterations * B / max(wall - eval_time, 1e-9)
    return MADDPGResult(curve, policy, actor, critic, cfg, seed, float(sps), float(wall))


# CleanRL-style names for the same objects
Config = MADDPGConfig
train = train_maddpg


def _env_kwargs(env) -> dict:
    """Constructor settings of a batched MPE twin (to build an evaluation twin like it)."""
    kw = dict(continuous_actions=env.continuous_actions, max_cycles=env.max_cycles)
    if env.name == "simple_spread_v3":
        kw.update(N=env.N, local_ratio=env.local_ratio)
    elif env.name == "simple_tag_v3":
        kw.update(num_good=env.num_good, num_adversaries=env.num_adversaries, num_obstacles=env.num_obstacles)
    return kw


# =============================================================================
# 4. Evaluation
# =============================================================================
def _task_env_for(policy: Any, task: str | None, continuous: bool | None):
    task = task or getattr(policy, "task", None)
    if task is None:
        raise ValueError("say which task to evaluate on: task='simple_spread_v3' or 'simple_tag_v3'")
    continuous = getattr(policy, "continuous", False) if continuous is None else continuous
    return task, bool(continuous)


def _learner_names(policy: Any, names: list[str]) -> list[str]:
    return list(getattr(policy, "learner_names", names))


def evaluate_on_twin(policy: Any, episodes: int = 100, seed: int = 0, env=None, *, task: str | None = None,
                     continuous: bool | None = None) -> Evaluation:
    """Team return of ``policy`` on the batched twin, on exactly mpe2's episodes
    ``reset(seed=seed), reset(seed=seed + 1), ...`` (25 steps each); ``policy.act`` or
    ``policy(obs [B, N, D])`` gives all agents' actions.  Fast: 100 episodes at once."""
    from course_lib.envs.mpe_policies import evaluate_vec

    if env is None:
        task, continuous = _task_env_for(policy, task, continuous)
        env = make_env(task, min(int(episodes), 100), continuous)
    act = getattr(policy, "act", policy)
    per_agent = evaluate_vec(env, act, int(episodes), seed=int(seed), mpe2_seeds=True)
    return Evaluation(per_agent, list(env.agent_names), _learner_names(policy, list(env.agent_names)))


def evaluate_on_mpe2(policy: Any, episodes: int = 100, seed: int = 0, *, task: str | None = None,
                     continuous: bool | None = None) -> Evaluation:
    """Team return of ``policy`` on mpe2's own parallel env (``reset(seed=seed + k)``,
    25 steps, summed over the learners and steps).  ``policy({agent: obs})`` must
    return ``{agent: action}`` (a :class:`MADDPGPolicy` or ``mpe_policies.MPEPolicy``)."""
    import warnings

    from course_lib.envs.mpe import mpe_registry
    from course_lib.envs.mpe_policies import evaluate_mpe2

    task, continuous = _task_env_for(policy, task, continuous)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = mpe_registry()[task][0](continuous_actions=continuous)
        per_agent = evaluate_mpe2(env, policy, int(episodes), seed=int(seed))
    names = list(env.possible_agents)
    env.close()
    return Evaluation(per_agent, names, _learner_names(policy, names))


def reference_returns(task: str = "simple_spread_v3", episodes: int = 100, seed: int = 0,
                      continuous: bool = False, opponent: Any = "heuristic", on: str = "twin") -> dict:
    """Team returns of the reference policies (random, no-op, heuristic) for the learners
    of ``task`` -- the floor and ceiling lines of the learning curves -- as
    ``{kind: Evaluation}``; ``on="mpe2"`` runs mpe2 itself, ``"twin"`` the same episodes
    on the twin.  On simple_tag the prey plays ``opponent`` in every line."""
    from course_lib.envs.policies import make_policy

    env = make_env(task, min(int(episodes), 100), continuous)
    learners = _learners(env)
    opp = _opponent(env, opponent, seed) if len(learners) < env.num_agents else None
    out = {}
    for kind in ("random", "noop", "heuristic"):
        ref = make_policy(kind, env, seed=seed)
        joint = _Joint(ref, opp, learners, [env.agent_names[i] for i in learners], env.agent_names, env.obs_sizes)
        if on == "mpe2":
            out[kind] = evaluate_on_mpe2(joint, episodes, seed, task=task, continuous=continuous)
        else:
            out[kind] = evaluate_on_twin(joint, episodes, seed, env=env)
    return out


class _Joint:
    """A reference policy for the learners, ``opponent`` for the others (batched or mpe2 dicts)."""

    def __init__(self, policy, opponent, learners, learner_names, agent_names, obs_sizes):
        self.policy, self.opponent, self.learners = policy, opponent, learners
        self.learner_names, self.agent_names = learner_names, list(agent_names)
        self.obs_sizes = [int(s) for s in obs_sizes]

    def act(self, obs):
        actions = np.array(self.policy.act(obs), copy=True)
        if self.opponent is not None:
            other = np.asarray(self.opponent(obs))
            mask = np.ones(actions.shape[1], dtype=bool)
            mask[self.learners] = False
            actions[:, mask] = other[:, mask]
        return actions

    def __call__(self, obs):
        if not isinstance(obs, dict):
            return self.act(obs)
        batch = np.zeros((1, len(self.agent_names), max(self.obs_sizes)), dtype=np.float32)
        for i, name in enumerate(self.agent_names):
            if name in obs:
                batch[0, i, :len(obs[name])] = obs[name]
        acts = self.act(batch)[0]
        if acts.ndim == 2:
            return {n: acts[i].astype(np.float32) for i, n in enumerate(self.agent_names) if n in obs}
        return {n: int(acts[i]) for i, n in enumerate(self.agent_names) if n in obs}


def config_dict(config: MADDPGConfig) -> dict:
    """The config as a JSON-friendly dict (the opponent by name)."""
    d = asdict(config)
    if not isinstance(d["opponent"], (str, type(None))):
        d["opponent"] = repr(d["opponent"])
    d["hidden"] = list(d["hidden"])
    return d
