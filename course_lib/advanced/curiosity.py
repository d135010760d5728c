"""Curiosity bonuses for sparse rewards: ICM (Pathak et al. 2017) and RND (Burda et al. 2019),
on top of a DQN learner.  Taught in notebooks/06_advanced.

**ICM.** An encoder ``phi`` maps observations to features.  An *inverse model* predicts
the action from ``(phi(o), phi(o'))``, which shapes ``phi`` to keep what the agent can
influence.  A *forward model* predicts ``phi(o')`` from ``(phi(o), a)``; its error is the
intrinsic reward, large where the agent cannot yet predict the outcome of its action:

    L_I   = CE(inverse([phi(o); phi(o')]), a)                       (mean over the batch)
    L_F   = mean_b 1/2 ||forward([sg(phi(o)); onehot(a)]) - sg(phi(o'))||^2
    r_int = 1/2 ||forward([sg(phi(o)); onehot(a)]) - sg(phi(o'))||^2   (per transition)

``sg`` is the stop-gradient (``detach``): only the inverse loss trains the encoder, so the
features cannot collapse to make the forward model's job trivial.  The encoder ends in a
LayerNorm without parameters: features of a fixed scale, so the forward error cannot grow
just because the inverse model stretches the feature space.
Students write :func:`icm_losses` (TODO 4).

**RND.** A fixed, randomly initialised *target* network ``f`` and a trained *predictor*
``f_hat``; the bonus ``||f_hat(o') - f(o')||^2`` shrinks where the agent has been often
(a learned visit count).

:func:`train` is DQN on the sparse goal grid (task ``sparse_goal_grid``) with two
Q-networks, as in the RND paper's two value heads: ``Q_ext`` learns the task reward and
``Q_int`` the bonus ``beta * r_int / mean_batch(r_int)`` (relative novelty, recomputed with
the current model for every sampled batch; ``beta`` annealed linearly to 0).  The explorer
acts epsilon-greedily on ``Q_ext + Q_int``; the task policy is greedy on ``Q_ext`` alone,
which learns off-policy from whatever the bonus made the explorer find.  Without a bonus
(``bonus="none"``) this is plain DQN: the explorer acts on ``Q_ext``.  Returns in the
curve are per agent (the share of agents that reached the goal)::

    run = curiosity.train("sparse_goal_grid", curiosity.Config(bonus="icm"),
                          parts=curiosity.Parts(icm_losses=my_icm_losses))
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import learning
from course_lib.buffers import ReplayBuffer
from course_lib.evaluation import evaluate
from course_lib.nets import mlp
from course_lib.policy import Policy
from course_lib.training import linear_schedule

__all__ = ["ICM", "icm_losses", "RND", "rnd_bonus", "TwoHeadQ", "Config", "Parts", "Curiosity", "TaskPolicy",
           "train", "BONUSES"]

BONUSES = ("none", "icm", "rnd")


class ICM(nn.Module):
    """``encoder``: obs -> features ``[.., F]``; ``inverse``: ``[2F] -> n_actions`` logits;
    ``forward_model``: ``[F + n_actions] -> F``."""

    def __init__(self, obs_dim: int, n_actions: int, feature_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.n_actions, self.feature_dim = int(n_actions), int(feature_dim)
        self.encoder = nn.Sequential(mlp(obs_dim, [hidden], feature_dim),
                                     nn.LayerNorm(feature_dim, elementwise_affine=False))
        self.inverse = mlp(2 * feature_dim, [hidden], n_actions)
        self.forward_model = mlp(feature_dim + n_actions, [hidden], feature_dim)


def icm_losses(icm: ICM, obs: torch.Tensor, next_obs: torch.Tensor, actions: torch.Tensor):
    """ICM on a batch of transitions ``obs, next_obs [B, D]``, ``actions [B]`` (long).

    Returns ``(inverse_loss, forward_loss, intrinsic)``: two scalar tensors and the
    per-transition intrinsic reward ``[B]`` (no gradient).  The forward model sees the
    encoder's features detached, so only the inverse loss trains the encoder.
    Taught in notebooks/06_advanced.
    """
    phi, phi_next = icm.encoder(obs), icm.encoder(next_obs)
    logits = icm.inverse(torch.cat([phi, phi_next], dim=-1))
    inverse_loss = F.cross_entropy(logits, actions.long())
    one_hot = F.one_hot(actions.long(), icm.n_actions).float()
    predicted = icm.forward_model(torch.cat([phi.detach(), one_hot], dim=-1))
    error = 0.5 * ((predicted - phi_next.detach()) ** 2).sum(dim=-1)  # [B]
    return inverse_loss, error.mean(), error.detach()


class RND(nn.Module):
    """A frozen random ``target`` and a trained ``predictor`` (both obs -> ``[B, F]``)."""

    def __init__(self, obs_dim: int, feature_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.target = mlp(obs_dim, [hidden], feature_dim)
        self.predictor = mlp(obs_dim, [hidden, hidden], feature_dim)
        for p in self.target.parameters():
            p.requires_grad_(False)


def rnd_bonus(rnd: RND, next_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, intrinsic [B])``: the predictor's squared error on ``next_obs``."""
    error = ((rnd.predictor(next_obs) - rnd.target(next_obs)) ** 2).sum(dim=-1)
    return error.mean(), error.detach()


class TwoHeadQ(nn.Module):
    """``obs -> (q_ext, q_int)``, each ``[.., n_actions]``: two small Q-networks.

    Separate networks, so the large and ever-changing bonus values cannot disturb the
    features of the task values.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        self.ext = mlp(obs_dim, [hidden], n_actions)
        self.int = mlp(obs_dim, [hidden], n_actions)

    def forward(self, obs: torch.Tensor):
        return self.ext(obs), self.int(obs)


@dataclass
class Config:
    """DQN on two Q-networks (task and bonus values) with an ICM or RND bonus, or plain DQN
    (``bonus="none"``).  Step counts are environment steps summed over the ``num_envs`` grids."""

    seed: int = 0                # seeds torch, numpy and the environments
    total_steps: int = 16_000    # environment steps (2,000 steps of 8 grids)
    bonus: str = "none"          # "none" (plain DQN), "icm" or "rnd"
    beta: float = 0.5            # weight of the relative bonus r_int / mean(r_int) at the start ...
    beta_fraction: float = 0.5   # ... annealed linearly to 0 over this fraction of total_steps
    num_envs: int = 8            # grids stepped together
    learning_starts: int = 400   # environment steps before the first update (then one update per step of the grids)
    batch_size: int = 128        # agent transitions per update
    buffer_size: int = 50_000    # agent transitions kept (those of agents still looking for the goal)
    lr: float = 1e-3             # Adam, both Q-networks
    bonus_lr: float = 1e-3       # Adam, ICM / RND
    gamma: float = 0.9           # discount; 0.9 keeps "stay" loops clearly worse than moving on
    eps_start: float = 1.0       # epsilon-greedy (same schedule for every bonus): initial epsilon ...
    eps_end: float = 0.05        # ... annealed linearly to this ...
    eps_fraction: float = 0.1    # ... over this fraction of total_steps
    target_every: int = 20       # gradient steps between target-network copies
    hidden: int = 64             # Q-network width
    eval_episodes: int = 4       # greedy task-policy episodes per curve row (the task is deterministic)
    log_every: int = 800         # environment steps between curve rows
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)


@dataclass
class Parts:
    """The function of notebook 06 that the loop calls (default: the reference)."""

    icm_losses: Callable = icm_losses


class TaskPolicy(Policy):
    """The task policy: greedy on ``Q_ext`` (the bonus values are the explorer's only).
    ``greedy=False``: epsilon-greedy with ``epsilon``, drawn from the policy's own generator."""

    name = "curiosity"

    def __init__(self, q_net: TwoHeadQ, agents, obs_dim: int, epsilon: float = 0.05, seed: int = 0):
        super().__init__(agents, obs_dim)
        self.q_net, self.epsilon = q_net, float(epsilon)
        self.rng = np.random.default_rng(seed)

    def act(self, obs, info=None, greedy=True):
        with torch.no_grad():
            q_ext = self.q_net(torch.as_tensor(np.asarray(obs, dtype=np.float32)))[0].numpy()
        actions = q_ext.argmax(-1)
        if greedy:
            return actions
        explore = self.rng.random(actions.shape) < self.epsilon
        return np.where(explore, self.rng.integers(0, q_ext.shape[-1], actions.shape), actions)


class Curiosity(learning.Learner):
    name = "curiosity"
    description = "DQN with an ICM or RND curiosity bonus, or plain DQN (notebook 06)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts):
        super().__init__(task, config, parts)
        cfg = config
        if cfg.bonus not in BONUSES:
            raise ValueError(f"bonus must be one of {BONUSES}, got {cfg.bonus!r}")
        if cfg.log_every % cfg.num_envs:  # rows are due after a step of all grids
            raise ValueError(f"log_every={cfg.log_every} must be a multiple of num_envs={cfg.num_envs}")
        self.seed_torch()
        self.rng = np.random.default_rng(cfg.seed)
        self.env = task.batched(cfg.num_envs, seed=cfg.seed)
        D, A = self.env.obs_dim, self.env.n_actions
        self.q_net = TwoHeadQ(D, A, cfg.hidden)
        self.target_net = copy.deepcopy(self.q_net)
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=cfg.lr)
        self.bonus_model = {"icm": lambda: ICM(D, A), "rnd": lambda: RND(D), "none": lambda: None}[cfg.bonus]()
        self.bonus_optimizer = (torch.optim.Adam(self.bonus_model.parameters(), lr=cfg.bonus_lr)
                                if self.bonus_model is not None else None)
        self.buffer = ReplayBuffer(cfg.buffer_size, num_agents=1, obs_dim=D)  # one agent's transitions each
        self.batch: dict | None = None  # drawn at this step for its update (kept until learned from)
        self.updates = 0
        self.last_epsilon = cfg.eps_start
        self.visited = np.zeros(D - 1, dtype=bool)  # cells any agent has been to
        self.first_goal_step = np.nan  # environment steps until an agent first reached the goal
        self.obs, _ = self.env.reset(seed=cfg.seed)
        self.since_log: dict[str, list] = {"returns": [], "success": [], "q_loss": [], "bonus_loss": [],
                                           "intrinsic": [], "beta": []}
        self.row_due = False  # a curve row whose evaluation has not finished yet

    def schedule(self, start: float, end: float, fraction: float) -> float:
        """Linear from ``start`` to ``end`` over ``fraction`` of total_steps, at this step."""
        return linear_schedule(start, end, int(fraction * self.config.total_steps), self.step)

    def iterate(self) -> None:
        """One step of every grid (the explorer acts), then one update once learning started."""
        if self.row_due:  # the evaluation of the last row was interrupted: log it now
            self.log_block()
        if self.batch is None:  # (else an interrupted update goes on with its batch)
            self.collect()
        if self.batch is not None:
            self.learn()
        self.step += self.config.num_envs
        self.row_due = self.step % self.config.log_every == 0 or self.done
        if self.row_due:
            self.log_block()

    def collect(self) -> None:
        """Act epsilon-greedily on ``Q_ext + Q_int`` (``Q_ext`` alone without a bonus), store
        the transitions of the agents still looking for the goal, draw the update's batch."""
        cfg, env = self.config, self.env
        with torch.no_grad():
            q_ext, q_int = self.q_net(torch.as_tensor(self.obs))
            greedy = (q_ext + q_int if self.bonus_model is not None else q_ext).argmax(-1).numpy()
        self.last_epsilon = self.schedule(cfg.eps_start, cfg.eps_end, cfg.eps_fraction)
        explore = self.rng.random(greedy.shape) < self.last_epsilon
        actions = np.where(explore, self.rng.integers(0, env.n_actions, greedy.shape), greedy)
        next_obs, rewards, _, _, info = env.step(actions)
        final = info["final_obs"]
        live = self.obs[..., -1] == 0  # reaching the goal ends the agent's task: its done is final[-1]
        self.buffer.add(self.obs[live][:, None], actions[live][:, None], rewards[live][:, None],
                        final[live][:, None], final[live][:, -1:])
        self.visited[final[..., :-1].reshape(-1, env.obs_dim - 1).argmax(-1)] = True
        if np.isnan(self.first_goal_step) and rewards.sum() > 0:
            self.first_goal_step = self.step + cfg.num_envs
        done = info["done"]
        self.episode += int(done.sum())
        self.since_log["returns"].extend(info["episode_return_mean"][done].tolist())
        self.since_log["success"].extend(info["success"][done].tolist())
        self.obs = next_obs
        if self.step >= cfg.learning_starts and len(self.buffer) >= cfg.batch_size:
            self.batch = {k: torch.as_tensor(v[:, 0]) for k, v in self.buffer.sample(cfg.batch_size, self.rng).items()}

    def learn(self) -> None:
        """One gradient step of both Q-networks (and of the bonus model); target copies."""
        cfg, b = self.config, self.batch
        with torch.no_grad():
            next_ext, next_int = self.target_net(b["next_obs"])
            keep = cfg.gamma * (1.0 - b["dones"])
            target_ext = b["rewards"] + keep * next_ext.max(-1).values
        q_ext, q_int = self.q_net(b["obs"])
        a = b["actions"][:, None]
        q_loss = F.smooth_l1_loss(q_ext.gather(1, a).squeeze(1), target_ext)
        if self.bonus_model is not None:
            bonus_loss, r_int = self.intrinsic(b)
            beta = self.schedule(cfg.beta, 0.0, cfg.beta_fraction)
            target_int = beta * r_int / (r_int.mean() + 1e-8) + keep * next_int.max(-1).values
            q_loss = q_loss + F.smooth_l1_loss(q_int.gather(1, a).squeeze(1), target_int)
            self.bonus_optimizer.zero_grad()
            bonus_loss.backward()
            self.bonus_optimizer.step()
            for key, value in (("bonus_loss", bonus_loss.item()), ("intrinsic", r_int.mean().item()), ("beta", beta)):
                self.since_log[key].append(value)
        self.optimizer.zero_grad()
        q_loss.backward()
        self.optimizer.step()
        self.since_log["q_loss"].append(q_loss.item())
        self.updates += 1
        if self.updates % cfg.target_every == 0:
            self.target_net.load_state_dict(self.q_net.state_dict())
        self.batch = None

    def intrinsic(self, b: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss of the bonus model, raw intrinsic reward [batch])``."""
        if self.config.bonus == "icm":
            inverse_loss, forward_loss, r_int = self.parts.icm_losses(self.bonus_model, b["obs"], b["next_obs"],
                                                                      b["actions"])
            return inverse_loss + forward_loss, r_int  # disjoint parameters: no weighting needed
        return rnd_bonus(self.bonus_model, b["next_obs"])

    def log_block(self) -> None:
        """A curve row: training episodes and updates since the last row, and the task policy's
        greedy episodes."""
        cfg, s = self.config, self.since_log
        mean = learning.mean_or_nan
        ev = evaluate(self.policy(), self.task, episodes=cfg.eval_episodes, seed=cfg.seed).summary()
        self.log(train_return=mean(s["returns"]), eval_return=ev["return_per_agent"],
                 **{"loss/q": mean(s["q_loss"]), "loss/bonus": mean(s["bonus_loss"])},
                 train_success=mean(s["success"]), eval_success=ev["success"],
                 first_goal_step=self.first_goal_step, visited_fraction=float(self.visited.mean()),
                 intrinsic=mean(s["intrinsic"]), beta=mean(s["beta"]),
                 epsilon=self.last_epsilon)
        self.since_log = {k: [] for k in s}
        self.row_due = False

    def policy(self) -> TaskPolicy:
        return TaskPolicy(self.q_net, self.env.possible_agents, self.env.obs_dim, self.config.eps_end,
                          self.config.seed)


def train(task: Any = "sparse_goal_grid", config: Config | None = None, parts: Any = None,
          **run_options) -> learning.Run:
    """Train DQN (with ``config.bonus``) on ``task`` (the sparse goal grid by default); see
    :func:`course_lib.learning.train` for ``resume``, ``out``, ``save_every`` and ``progress``."""
    return learning.train(Curiosity, task, config, parts, **run_options)
