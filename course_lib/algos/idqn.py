"""Independent DQN: every agent learns its own Q-values from its own reward.

Taught in notebooks/02_independent_learners, where students write the three parts
this loop calls (their references are in :mod:`course_lib.algos.iql`)::

    a_i = epsilon_greedy(Q(o_i, .), epsilon)                       # act
    y_i = dqn_td_target(r_i, Q_target(o_i', .), done, gamma)       # r + gamma (1 - done) max_a' Q_target
    loss = mean_i (Q(o_i, a_i) - y_i)^2                            # learn
    update_target(Q_target, Q, tau)                                # hard copy every C steps, or Polyak

One Q-network with a one-hot agent id is shared by all agents (parameter sharing);
each agent still picks its action from ``Q(o_i, .)`` alone and treats the others as
part of the environment.  Train it with the course's one learning API::

    run = idqn.train("gridworld", idqn.Config(seed=0), parts=idqn.Parts(dqn_td_target=my_target))
    run.curve, run.policy, evaluate(run.policy, "gridworld")
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from course_lib import learning
from course_lib.algos.iql import dqn_td_target, epsilon_greedy, update_target
from course_lib.buffers import ReplayBuffer
from course_lib.nets import QNetwork
from course_lib.policy import Policy
from course_lib.training import linear_schedule

__all__ = ["Config", "Parts", "IDQN", "QPolicy", "train"]


@dataclass
class Config:
    """Independent DQN (every step count is in environment steps, summed over ``num_envs``)."""

    seed: int = 0  # seeds torch, numpy and the environments
    total_steps: int = 48_000  # environment steps (3,000 steps of 16 environments)
    num_envs: int = 16  # environments stepped together
    buffer_size: int = 100_000  # replay capacity in joint transitions (one per environment step)
    batch_size: int = 128  # joint transitions per gradient step
    gamma: float = 0.95  # discount
    lr: float = 1e-3  # Adam learning rate
    hidden: tuple = (64, 64)  # hidden layers of the Q-network
    agent_id: bool = True  # append a one-hot agent id (one network shared by all agents)
    eps_start: float = 1.0  # epsilon-greedy: initial epsilon ...
    eps_end: float = 0.05  # ... annealed linearly to this ...
    eps_fraction: float = 0.4  # ... over this fraction of total_steps
    learning_starts: int = 4_000  # environment steps of pure exploration before learning
    train_every: int = 16  # one gradient step every this many environment steps
    target_tau: float = 1.0  # 1.0: hard copy every target_every steps; < 1: Polyak every gradient step
    target_every: int = 3_200  # environment steps between hard target copies
    max_grad_norm: float = 10.0  # gradient clipping
    log_every: int = 1_600  # environment steps between curve rows
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)


@dataclass
class Parts:
    """The functions of notebook 02 that the loop calls (defaults: the references)."""

    epsilon_greedy: Callable = epsilon_greedy
    dqn_td_target: Callable = dqn_td_target
    update_target: Callable = update_target


class QPolicy(Policy):
    """``a_i = argmax_a Q(o_i, a)`` (ties to the first); with ``greedy=False``
    epsilon-greedy with ``epsilon`` through ``select`` (the loop's own part)."""

    name = "idqn"

    def __init__(self, q_net: QNetwork, agents, select: Callable = epsilon_greedy,
                 epsilon: float = 0.05, seed: int = 0):
        super().__init__(agents, q_net.obs_dim)
        self.q_net, self.select, self.epsilon = q_net, select, float(epsilon)
        self.rng = np.random.default_rng(seed)

    def act(self, obs, info=None, greedy=True):
        with torch.no_grad():
            q = self.q_net(torch.as_tensor(np.asarray(obs, dtype=np.float32))).numpy()
        if greedy:
            return q.argmax(-1)
        return np.asarray(self.select(q, self.epsilon, self.rng), dtype=np.int64)


class IDQN(learning.Learner):
    name = "idqn"
    description = "independent DQN, one Q-network shared by the agents (notebook 02)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts):
        super().__init__(task, config, parts)
        cfg = config
        self.seed_torch()
        self.rng = np.random.default_rng(cfg.seed)
        self.env = task.batched(cfg.num_envs, seed=cfg.seed)
        env = self.env
        for knob in ("train_every", "target_every", "log_every"):  # checked after each step of all envs
            if getattr(cfg, knob) % cfg.num_envs:
                raise ValueError(f"{knob}={getattr(cfg, knob)} must be a multiple of num_envs={cfg.num_envs}")
        self.q_net = QNetwork(env.obs_dim, env.n_actions, env.num_agents, hidden=cfg.hidden, agent_id=cfg.agent_id)
        self.target_net = copy.deepcopy(self.q_net)
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=cfg.lr)
        self.buffer = ReplayBuffer(cfg.buffer_size, env.num_agents, env.obs_dim)
        self.obs, _ = env.reset(seed=cfg.seed)
        self.since_log: dict[str, list] = {"returns": [], "success": [], "loss": [], "q": []}

    def epsilon(self, step: int) -> float:
        cfg = self.config
        return linear_schedule(cfg.eps_start, cfg.eps_end, int(cfg.eps_fraction * cfg.total_steps), step)

    def iterate(self) -> None:
        """One environment step of every environment, then learn and log when due."""
        self.collect()
        cfg = self.config
        if self.step > cfg.learning_starts and self.step % cfg.train_every == 0:
            self.learn()
        if self.step % cfg.log_every == 0 or self.step >= cfg.total_steps:
            self.log_block()

    def collect(self) -> None:
        """Act epsilon-greedily on each agent's own Q-values; store the joint transition."""
        with torch.no_grad():
            q_values = self.q_net(torch.as_tensor(self.obs)).numpy()  # [B, N, A]
        epsilon = self.epsilon(self.step + self.env.num_envs)
        actions = np.asarray(self.parts.epsilon_greedy(q_values, epsilon, self.rng), dtype=np.int64)
        next_obs, rewards, terms, _, info = self.env.step(actions)
        # final_obs is the true next obs of finished episodes; only termination stops bootstrapping
        self.buffer.add(self.obs, actions, rewards, info["final_obs"], terms)
        self.obs = next_obs
        self.step += self.env.num_envs
        done = info["done"]
        if done.any():
            self.episode += int(done.sum())
            self.since_log["returns"].extend(info["team_return"][done].tolist())
            self.since_log["success"].extend(info["success"][done].astype(float).tolist())

    def learn(self) -> None:
        """One gradient step on ``(Q(o, a) - y)^2``, then the target network."""
        cfg = self.config
        batch = {k: torch.as_tensor(v) for k, v in self.buffer.sample(cfg.batch_size, self.rng).items()}
        with torch.no_grad():
            y = self.parts.dqn_td_target(batch["rewards"], self.target_net(batch["next_obs"]), batch["dones"],
                                         cfg.gamma)  # [b, N]
        q_taken = self.q_net(batch["obs"]).gather(-1, batch["actions"].unsqueeze(-1)).squeeze(-1)  # [b, N]
        loss = F.mse_loss(q_taken, torch.as_tensor(y, dtype=torch.float32))
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.q_net.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.since_log["loss"].append(loss.item())
        self.since_log["q"].append(q_taken.mean().item())
        if cfg.target_tau < 1.0:
            self.parts.update_target(self.target_net, self.q_net, cfg.target_tau)
        elif self.step % cfg.target_every == 0:
            self.parts.update_target(self.target_net, self.q_net, 1.0)

    def log_block(self) -> None:
        mean = learning.mean_or_nan
        s = self.since_log
        self.log(train_return=mean(s["returns"]), success=mean(s["success"]), **{"loss/q": mean(s["loss"])},
                 q_mean=mean(s["q"]), epsilon=self.epsilon(self.step))
        self.since_log = {k: [] for k in s}

    def policy(self) -> QPolicy:
        return QPolicy(self.q_net, self.env.possible_agents, self.parts.epsilon_greedy, self.config.eps_end,
                       self.config.seed)


def train(task: Any = "gridworld", config: Config | None = None, parts: Any = None, **run_options) -> learning.Run:
    """Train independent DQN on ``task`` (a grid world by default); see :func:`course_lib.learning.train`
    for ``resume``, ``out``, ``save_every`` and ``progress``."""
    return learning.train(IDQN, task, config, parts, **run_options)
