"""MADDPG (Lowe et al. 2017) and its independent baseline IDDPG on the MPE tasks.

Taught in notebooks/04_maddpg, where students write the four parts this loop calls::

    a_i = gumbel_softmax_st(mu_i(o_i))                      # act: a one-hot sample gradients flow through
    y_i = critic_td_target(r, x', d, mu', Q', gamma)        # r_i + gamma (1 - d_i) Q'_i(x', mu'_1(o'_1), ..)
    L(Q) = mean_i (Q_i(x, a) - y_i)^2                        # critics
    L(mu) = actor_loss(Q, x, a, gumbel_softmax_st(mu(o)))   # -mean_i Q_i(x, a_1, .., mu_i(o_i), .., a_N)
    soft_update(Q', Q, tau); soft_update(mu', mu, tau)      # targets trail by Polyak averaging

``Config(critic="centralised")`` is MADDPG: agent i's critic reads every agent's
observation and action; ``critic="independent"`` is IDDPG: only its own.  Both train on
the batched twin of mpe2 (200 environments at once) through the course's one learning
API::

    run = maddpg.train("simple_spread_v3", maddpg.Config(seed=0), parts=maddpg.Parts(actor_loss=actor_loss))
    run.curve, run.policy, evaluate(run.policy, "simple_spread_v3", on="mpe2")

On simple_tag_v3 the agents trained are the predators (the policy's ``team``); the prey
plays ``config.opponent``.  Discrete actions (mpe2's default): the actor outputs logits,
explores with a Gumbel-softmax sample and plays ``argmax``; continuous actions (the task
option ``continuous_actions=True``): a deterministic ``sigmoid`` actor explores with
Gaussian noise (DDPG).  Also used by notebooks/07_method_i and 08_self_play.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import learning
from course_lib.buffers import ReplayBuffer
from course_lib.evaluation import evaluate
from course_lib.nets import AgentLinear
from course_lib.policy import Policy

__all__ = ["gumbel_softmax_st", "critic_td_target", "actor_loss", "soft_update", "MultiAgentMLP", "Actor",
           "Critic", "greedy_actions", "Config", "Parts", "TeamPolicy", "MADDPGPolicy", "reference_policy",
           "MADDPG", "train"]


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
    if isinstance(critic, Critic):  # the same Q_i in one pass instead of N (tests/test_maddpg.py: both agree)
        return -critic.own_action_values(obs, actions, new_actions).mean()
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
        :func:`actor_loss` evaluates, in one pass instead of N (row i of the joint input is
        the joint action where agent i acted anew, read by Q_i only)."""
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
# 3. Configuration and parts
# =============================================================================
@dataclass
class Config:
    """MADDPG / IDDPG.  Step counts are environment transitions, summed over ``num_envs``.
    The defaults are the MADDPG paper's MPE settings (learning rates, tau, gamma, batch,
    networks) with 200 environments at once: one gradient step per 200 transitions."""

    seed: int = 0  # seeds torch, the exploration and replay generator, the environments and the opponent
    total_steps: int = 200_000  # environment transitions (1,000 batched steps of 200 environments)
    critic: str = "centralised"  # "centralised" (MADDPG) or "independent" (IDDPG)
    num_envs: int = 200  # environments stepped together
    buffer_size: int = 200_000  # replay capacity in joint transitions
    batch_size: int = 1024  # joint transitions per gradient step
    learning_starts: int = 5_000  # transitions of uniform random actions before learning
    train_every: int = 1  # batched steps (num_envs transitions each) between learning phases
    gradient_steps: int = 1  # gradient steps per learning phase
    gamma: float = 0.95  # discount
    tau: float = 0.01  # soft target update rate
    actor_lr: float = 1e-2  # Adam learning rate of the actors
    critic_lr: float = 1e-2  # Adam learning rate of the critics
    hidden: tuple = (64, 64)  # hidden layers of actors and critics
    shared: bool = True  # one network with a one-hot agent id for all agents (else one per agent)
    temperature: float = 1.0  # Gumbel-softmax temperature (discrete actions)
    logit_reg: float = 1e-3  # weight of mean(logits^2) added to the actor loss (keeps logits bounded)
    exploration_noise: float = 0.1  # std of the Gaussian action noise (continuous actions)
    max_grad_norm: float = 0.5  # gradient clipping of actors and critics
    opponent: Any = "heuristic"  # simple_tag's prey: "heuristic", "random", "noop", or obs -> every agent's actions
    eval_every: int = 20_000  # transitions between curve rows, each with an evaluation (0: one row at the end)
    eval_episodes: int = 100  # greedy episodes per evaluation: mpe2's reset(seed=eval_seed + k), on the twin (0: none)
    eval_seed: int = 10_000  # first mpe2 reset seed of the evaluation episodes
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)


@dataclass
class Parts:
    """The functions of notebook 04 that the loop calls (defaults: the references above)."""

    gumbel_softmax_st: Callable = gumbel_softmax_st
    critic_td_target: Callable = critic_td_target
    actor_loss: Callable = actor_loss
    soft_update: Callable = soft_update


# =============================================================================
# 4. Policies
# =============================================================================
class TeamPolicy(Policy):
    """Plays the agents of ``team`` with :meth:`team_actions`, and the others (simple_tag's
    prey) with ``opponent``: a callable ``obs [B, N, D] -> actions of every agent`` whose
    team columns are replaced."""

    def __init__(self, agents: Sequence[str], obs_dim: int, team: Sequence[int], continuous: bool = False,
                 opponent: Callable | None = None):
        super().__init__(agents, obs_dim, team=team, continuous=continuous)
        self.opponent = opponent

    def team_actions(self, obs: np.ndarray, greedy: bool = True) -> np.ndarray:
        """Actions of the team only, ``[B, len(team)]`` (or ``[B, len(team), A]``)."""
        raise NotImplementedError

    def act(self, obs, info=None, greedy=True):
        obs = np.asarray(obs, dtype=np.float32)
        if self.opponent is not None and len(self.team) < obs.shape[1]:
            actions = np.array(self.opponent(obs), copy=True)
            actions[:, self.team] = self.team_actions(obs, greedy)
            return actions
        ours = self.team_actions(obs, greedy)
        actions = np.zeros(obs.shape[:2] + ours.shape[2:], dtype=ours.dtype)
        actions[:, self.team] = ours
        return actions


class MADDPGPolicy(TeamPolicy):
    """The trained decentralised actors: each agent of the team acts on its own observation.

    ``greedy=True``: ``argmax`` of the logits (discrete) or ``sigmoid`` (continuous);
    ``greedy=False`` samples a discrete action from ``softmax(logits)`` with the policy's
    own generator (a continuous actor is deterministic either way).
    """

    name = "maddpg"

    def __init__(self, actor: Actor, agents: Sequence[str], team: Sequence[int], obs_dim: int,
                 continuous: bool = False, opponent: Callable | None = None, seed: int = 0):
        super().__init__(agents, obs_dim, team, continuous, opponent)
        self.actor = actor
        self.generator = torch.Generator().manual_seed(int(seed))

    def team_actions(self, obs, greedy=True):
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32)[:, self.team, :self.actor.obs_dim])
        with torch.no_grad():
            out = self.actor(x)
        if self.continuous:
            return torch.sigmoid(out).numpy()
        if greedy:
            return out.argmax(-1).numpy()
        probs = F.softmax(out.reshape(-1, out.shape[-1]), -1)
        return torch.multinomial(probs, 1, generator=self.generator).view(out.shape[:-1]).numpy()


class _ReferenceTeam(TeamPolicy):
    def __init__(self, reference: Policy, team: Sequence[int], opponent: Callable | None):
        super().__init__(reference.agents, reference.obs_dim, team, reference.continuous, opponent)
        self.reference, self.name = reference, reference.name

    def team_actions(self, obs, greedy=True):
        return np.asarray(self.reference.act(obs))[:, self.team]


def team_of(env) -> list[int]:
    """The agents MADDPG trains: every agent, or simple_tag's adversaries (the predators)."""
    if env.name == "simple_tag_v3":
        return [int(i) for i in np.flatnonzero(env.is_adversary)]
    return list(range(env.num_agents))


def _opponent(env, spec: Any, seed: int):
    if spec is None or callable(spec):
        return spec
    from course_lib.envs.policies import make_policy

    return make_policy(str(spec), env, seed=seed)


def reference_policy(kind: str, task: Any = "simple_tag_v3", opponent: Any = "heuristic", seed: int = 0) -> Policy:
    """The reference policy ``kind`` ("random", "noop", "heuristic") for the agents MADDPG
    trains on ``task``, the others (simple_tag's prey) playing ``opponent``: the floor and
    ceiling lines beside the predators' curves (``evaluate(reference_policy("noop"), task)``).
    Where MADDPG trains every agent (simple_spread) this is just the reference policy."""
    from course_lib.envs.policies import make_policy
    from course_lib.tasks import task as make_task

    env = make_task(task).batched(1)
    team, reference = team_of(env), make_policy(kind, env, seed=seed)
    if len(team) == env.num_agents:
        return reference
    return _ReferenceTeam(reference, team, _opponent(env, opponent, seed))


# =============================================================================
# 5. The learner
# =============================================================================
def gumbel_noise(shape, generator: torch.Generator) -> torch.Tensor:
    """Gumbel(0, 1) noise ``-log(-log u)`` drawn from ``generator`` (so that runs repeat)."""
    u = torch.rand(shape, generator=generator).clamp(1e-10, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


class MADDPG(learning.Learner):
    name = "maddpg"
    description = "MADDPG (IDDPG: critic='independent'), decentralised actors, centralised critics on MPE (notebook 04)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts):
        super().__init__(task, config, parts)
        cfg = config
        if cfg.critic not in ("centralised", "independent"):
            raise ValueError(f"critic must be 'centralised' (MADDPG) or 'independent' (IDDPG), got {cfg.critic!r}")
        if not task.is_mpe:
            raise ValueError(f"MADDPG trains on the MPE tasks (simple_spread_v3, simple_tag_v3), not {task}")
        self.seed_torch()
        self.generator = torch.Generator().manual_seed(cfg.seed)  # exploration noise and replay sampling
        self.env = env = task.batched(cfg.num_envs, seed=cfg.seed)
        self.continuous = bool(env.continuous_actions)
        self.team = team_of(env)
        self.opponent = _opponent(env, cfg.opponent, cfg.seed) if len(self.team) < env.num_agents else None
        L, D, A = len(self.team), env.obs_dim, env.n_actions
        self.actor = Actor(L, D, A, cfg.hidden, cfg.shared, self.continuous)
        self.critic = Critic(L, D, A, cfg.hidden, cfg.shared, centralised=cfg.critic == "centralised")
        self.target_actor, self.target_critic = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        for p in [*self.target_actor.parameters(), *self.target_critic.parameters()]:
            p.requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.buffer = ReplayBuffer(cfg.buffer_size, L, D, action_dim=A)  # the team's joint transitions
        self.obs, _ = env.reset(seed=cfg.seed)
        self.since_log: dict[str, list] = {"returns": [], "critic": [], "actor": [], "q": []}

    def iterate(self) -> None:
        """One batched step of every environment, then learn and log when due."""
        self.collect()
        cfg = self.config
        it = self.step // cfg.num_envs  # batched steps so far
        if self.step >= cfg.learning_starts and self.buffer.size >= cfg.batch_size and it % cfg.train_every == 0:
            for _ in range(cfg.gradient_steps):
                self.learn()
        if (cfg.eval_every and it % max(cfg.eval_every // cfg.num_envs, 1) == 0) or self.done:
            self.log_block()

    # ---- collect: each agent of the team acts on its own observation
    def collect(self) -> None:
        team_obs = torch.as_tensor(self.obs[:, self.team])
        actions = self.explore(team_obs)  # [B, L, A]: one-hot (discrete) or in [0, 1] (continuous)
        next_obs, rewards, terms, _, info = self.env.step(self.env_actions(actions))
        # final_obs: the true next obs of finished episodes; mpe2's 25-step limit is a truncation
        # (the time is not observed), so dones stay 0 and the critic bootstraps through it
        self.buffer.add(team_obs, actions, rewards[:, self.team], info["final_obs"][:, self.team],
                        terms[:, self.team])
        self.obs = next_obs
        self.step += self.env.num_envs
        done = info["done"]
        if done.any():
            self.episode += int(done.sum())
            self.since_log["returns"].extend(info["episode_return"][done][:, self.team].sum(axis=1).tolist())

    def explore(self, team_obs: torch.Tensor) -> torch.Tensor:
        """Uniform random actions for the first ``learning_starts`` transitions, then the actors'
        Gumbel-softmax samples (discrete) or ``sigmoid`` plus Gaussian noise (continuous)."""
        cfg = self.config
        B, L, A = team_obs.shape[0], len(self.team), self.env.n_actions
        if self.step < cfg.learning_starts:
            if self.continuous:
                return torch.rand(B, L, A, generator=self.generator)
            return F.one_hot(torch.randint(0, A, (B, L), generator=self.generator), A).float()
        with torch.no_grad():
            out = self.actor(team_obs)
            if self.continuous:
                noise = cfg.exploration_noise * torch.randn(out.shape, generator=self.generator)
                return (torch.sigmoid(out) + noise).clamp(0.0, 1.0)
            # the noise is drawn from a copy, kept once the part has returned: nothing of this step has
            # happened when a Ctrl-C stops the part, so the checkpoint resumes exactly
            gen = copy.deepcopy(self.generator)
            actions = self.parts.gumbel_softmax_st(out, cfg.temperature, noise=gumbel_noise(out.shape, gen))
        self.generator = gen
        return actions

    def env_actions(self, actions: torch.Tensor) -> np.ndarray:
        """Every agent's action for the env: the team's from ``actions``, the others' from the opponent."""
        env = self.env
        if self.opponent is not None:
            joint = np.array(self.opponent(self.obs), copy=True)
        elif self.continuous:
            joint = np.zeros((env.num_envs, env.num_agents, env.n_actions), dtype=np.float32)
        else:
            joint = np.zeros((env.num_envs, env.num_agents), dtype=np.int64)
        joint[:, self.team] = actions.numpy() if self.continuous else actions.argmax(-1).numpy()
        return joint

    # ---- learn: centralised critics, decentralised actors, trailing targets
    def learn(self) -> None:
        cfg = self.config
        batch = self.buffer.sample(cfg.batch_size, self.generator)
        obs, actions = batch["obs"], batch["actions"]
        critic_loss, q = self.update_critics(obs, actions, batch["rewards"], batch["next_obs"], batch["dones"])
        actor_loss_value = self.update_actors(obs, actions)
        self.parts.soft_update(self.target_critic, self.critic, cfg.tau)
        self.parts.soft_update(self.target_actor, self.actor, cfg.tau)
        for key, value in (("critic", critic_loss), ("actor", actor_loss_value), ("q", q)):
            self.since_log[key].append(value)

    def target_policy(self, obs: torch.Tensor) -> torch.Tensor:
        """The target actors' deterministic actions, each on its own observation (``mu'`` of the TD target)."""
        return greedy_actions(self.target_actor, obs)

    def update_critics(self, obs, actions, rewards, next_obs, dones) -> tuple[float, float]:
        """One step on ``mean (Q_i(x, a) - y_i)^2``; returns the loss and the mean Q."""
        cfg = self.config
        y = self.parts.critic_td_target(rewards, next_obs, dones, self.target_policy, self.target_critic, cfg.gamma)
        q = self.critic(obs, actions)
        loss = F.mse_loss(q, torch.as_tensor(y, dtype=q.dtype))
        self.critic_opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
        self.critic_opt.step()
        return loss.item(), q.detach().mean().item()

    def update_actors(self, obs, actions) -> float:
        """One step on ``actor_loss``: each actor through its own critic, the others' actions from the buffer."""
        cfg = self.config
        out = self.actor(obs)
        if self.continuous:
            new_actions = torch.sigmoid(out)
        else:
            new_actions = self.parts.gumbel_softmax_st(out, cfg.temperature,
                                                       noise=gumbel_noise(out.shape, self.generator))
        self.critic.requires_grad_(False)  # the actor step leaves the critic alone
        try:
            loss = self.parts.actor_loss(self.critic, obs, actions, new_actions) + cfg.logit_reg * (out ** 2).mean()
        finally:
            self.critic.requires_grad_(True)
        self.actor_opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.max_grad_norm)
        self.actor_opt.step()
        return loss.item()

    # ---- log: the greedy actors on fixed evaluation episodes
    def log_block(self) -> None:
        cfg = self.config
        ev = evaluate(self.policy(), self.task, cfg.eval_episodes, seed=cfg.eval_seed) if cfg.eval_episodes else None
        mean = learning.mean_or_nan
        s = self.since_log
        self.log(train_return=mean(s["returns"]), eval_return=ev.mean if ev else np.nan,
                 **{"loss/critic": mean(s["critic"]), "loss/actor": mean(s["actor"])},
                 eval_sem=ev.sem if ev else np.nan, q=mean(s["q"]))
        self.since_log = {k: [] for k in s}

    def policy(self) -> MADDPGPolicy:
        env = self.env
        return MADDPGPolicy(self.actor, env.agent_names, self.team, env.obs_dim, self.continuous, self.opponent,
                            seed=self.config.seed)


def train(task: Any = "simple_spread_v3", config: Config | None = None, parts: Any = None,
          **run_options) -> learning.Run:
    """Train MADDPG (or IDDPG, ``Config(critic="independent")``) on an MPE task; see
    :func:`course_lib.learning.train` for ``resume``, ``out``, ``save_every`` and ``progress``."""
    return learning.train(MADDPG, task, config, parts, **run_options)
