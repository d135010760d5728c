"""DRQN (Hausknecht & Stone 2015): Q-learning with an LSTM, trained on whole episodes.
Taught in notebooks/06_advanced, where students write :func:`drqn_loss` (TODO 3).

A feed-forward Q-network sees one observation; when the task hides what matters (the
cue of the T-maze ``cue_corridor`` is shown only at the first step) it cannot act on
it.  The recurrent network carries a hidden state ``(h, c)`` through the episode, and
the Q update is computed over *sequences*: both networks are unrolled from a zero state
over the stored episode, and the loss averages the squared TD errors over the steps
that really happened (``mask``)::

    y_t = r_t + gamma (1 - d_t) max_a Q_target(o_{<=t+1}, a)
    L   = sum_t mask_t (Q(o_{<=t}, a_t) - y_t)^2 / sum_t mask_t        # drqn_loss

Agents share one network (parameter sharing); each agent's episode is one sequence,
which ends when the agent has turned into an arm.  ``Config(recurrent=False)`` is the
same learner with a feed-forward Q-network (the baseline).  Returns in the curve are
per agent (the mean over the agents of an episode)::

    run = drqn.train("cue_corridor", drqn.Config(seed=0), parts=drqn.Parts(drqn_loss=my_loss))
    run.curve, run.policy, evaluate(run.policy, "cue_corridor")
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from course_lib import learning
from course_lib.evaluation import evaluate
from course_lib.policy import Policy
from course_lib.training import linear_schedule

__all__ = ["RecurrentQNetwork", "FeedForwardQNetwork", "drqn_loss", "Config", "Parts", "DRQN",
           "RecurrentQPolicy", "collect_episodes", "train"]


class RecurrentQNetwork(nn.Module):
    """``obs [B, T, D] -> Q [B, T, A]``: Linear-ReLU encoder, one LSTM layer, linear head.

    ``forward(obs, state=None)`` returns ``(q, state)``; ``state`` (a pair ``(h, c)``,
    each ``[1, B, hidden]``) continues an episode step by step while acting.
    """

    recurrent = True

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 32):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU())
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_actions)

    def forward(self, obs: torch.Tensor, state=None):
        out, state = self.lstm(self.encoder(obs), state)
        return self.head(out), state


class FeedForwardQNetwork(nn.Module):
    """Same interface as :class:`RecurrentQNetwork` without memory: each step on its own
    (two hidden layers; :class:`Config` makes them wide enough to hold about as many
    parameters as the recurrent network, so capacity is not what differs)."""

    recurrent = False

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_actions))

    def forward(self, obs: torch.Tensor, state=None):
        return self.net(obs), None


def drqn_loss(q_net: nn.Module, target_net: nn.Module, batch: dict, gamma: float) -> torch.Tensor:
    """The masked sequence TD loss (a scalar tensor).

    ``batch`` (torch tensors, ``B`` sequences of ``T`` steps):
    ``obs [B, T + 1, D]`` (the last entry is the observation after the last step),
    ``actions [B, T]`` (long), ``rewards [B, T]``, ``dones [B, T]`` (1.0 at a terminal
    step: no bootstrap), ``mask [B, T]`` (1.0 where the step happened, 0.0 for padding).
    Both networks are unrolled from a zero state over the whole ``obs``; the target
    carries no gradient.
    Taught in notebooks/06_advanced.
    """
    q_all, _ = q_net(batch["obs"])                                   # [B, T + 1, A]
    q_taken = q_all[:, :-1].gather(-1, batch["actions"].long().unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        next_q, _ = target_net(batch["obs"])
        target = batch["rewards"] + gamma * (1.0 - batch["dones"]) * next_q[:, 1:].max(dim=-1).values
    mask = batch["mask"]
    return ((q_taken - target) ** 2 * mask).sum() / mask.sum().clamp(min=1.0)


@dataclass
class Config:
    """DRQN (or, with ``recurrent=False``, DQN with a feed-forward network) on whole episodes.

    ``step`` counts environment steps summed over the ``num_envs`` T-mazes, the steps of
    the episodes played (one per env and round; the env's automatic restarts after an
    episode ended are not played)."""

    seed: int = 0                   # seeds torch, numpy and the environments
    total_steps: int = 24_000       # environment steps (about 3,000 episodes of the T-maze)
    recurrent: bool = True          # LSTM (DRQN) or a feed-forward Q-network
    num_envs: int = 16              # T-mazes played together: one episode each per collection round
    hidden: int = 32                # encoder / LSTM width
    ff_hidden: int = 88             # feed-forward width: about as many parameters as the LSTM network
    lr: float = 3e-3                # Adam learning rate
    gamma: float = 0.9              # discount
    batch_size: int = 32            # agent sequences per gradient step
    updates_per_collect: int = 8    # gradient steps after each collection round
    buffer_episodes: int = 2_000    # agent sequences kept for replay
    eps_start: float = 1.0          # epsilon-greedy: initial epsilon ...
    eps_end: float = 0.05           # ... annealed linearly to this ...
    eps_fraction: float = 0.5       # ... over this fraction of total_steps
    target_every: int = 50          # gradient steps between target-network copies
    max_grad_norm: float = 10.0     # gradient clipping
    eval_episodes: int = 64         # greedy evaluation episodes per curve row
    log_every: int = 10             # collection rounds between curve rows
    torch_threads: int | None = 1   # torch.set_num_threads (None: leave as is)


@dataclass
class Parts:
    """The function of notebook 06 that the loop calls (default: the reference)."""

    drqn_loss: Callable = drqn_loss


class RecurrentQPolicy(Policy):
    """Greedy on ``Q(o_<=t, .)``, the network's memory carried from call to call (cleared by
    :meth:`reset` and, per environment, where ``info["done"]`` says a new episode starts).
    ``greedy=False``: epsilon-greedy with ``epsilon``, drawn from the policy's own generator."""

    name = "drqn"

    def __init__(self, q_net: nn.Module, agents, obs_dim: int, epsilon: float = 0.05, seed: int = 0):
        super().__init__(agents, obs_dim)
        self.q_net, self.epsilon = q_net, float(epsilon)
        self.rng = np.random.default_rng(seed)
        self.state = None

    def reset(self, num_envs: int) -> None:
        self.state = None

    def act(self, obs, info=None, greedy=True):
        obs = np.asarray(obs, dtype=np.float32)
        B, N, D = obs.shape
        if self.state is not None and info is not None and "done" in info:
            new = torch.as_tensor(np.repeat(np.asarray(info["done"], dtype=bool), N)).view(1, B * N, 1)
            self.state = tuple(s.masked_fill(new, 0.0) for s in self.state)
        with torch.no_grad():  # all agents of all envs as one batch, one step of the LSTM
            q, self.state = self.q_net(torch.as_tensor(obs).reshape(B * N, 1, D), self.state)
        actions = q[:, 0].argmax(-1).numpy().reshape(B, N)
        if greedy:
            return actions
        explore = self.rng.random((B, N)) < self.epsilon
        return np.where(explore, self.rng.integers(0, q.shape[-1], (B, N)), actions)


def collect_episodes(env, q_net: nn.Module, epsilon: float, rng: np.random.Generator) -> dict:
    """Run one episode in every env of the batched ``env`` (the auto-reset ones after it are
    ignored).  Returns numpy arrays per agent sequence ``[B * N, ...]``: ``obs [.., T + 1, D]``,
    ``actions``, ``rewards``, ``dones``, ``mask [.., T]`` (an agent's sequence ends when it
    has turned into an arm), plus per env ``success``, ``correct_fraction``,
    ``episode_return_mean`` and ``episode_length``."""
    B, N, T = env.num_envs, env.num_agents, env.core.max_steps
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    D = obs.shape[-1]
    out = {"obs": np.zeros((B, N, T + 1, D), np.float32), "actions": np.zeros((B, N, T), np.int64),
           "rewards": np.zeros((B, N, T), np.float32), "dones": np.zeros((B, N, T), np.float32),
           "mask": np.zeros((B, N, T), np.float32)}
    out["obs"][:, :, 0] = obs
    running = np.ones(B, dtype=bool)
    finished = np.zeros((B, N), dtype=bool)
    episode: dict[str, np.ndarray] = {}
    state = None
    for t in range(T):
        with torch.no_grad():  # all agents of all envs in one batch, one step of the LSTM
            q, state = q_net(torch.as_tensor(obs).reshape(B * N, 1, D), state)
        greedy = q[:, 0].argmax(-1).numpy().reshape(B, N)
        explore = rng.random((B, N)) < epsilon
        actions = np.where(explore, rng.integers(0, env.n_actions, (B, N)), greedy)
        obs, rewards, _, _, info = env.step(actions)
        live = running[:, None] & ~finished
        now_finished = info["final_obs"][..., -1] > 0.5
        out["actions"][:, :, t] = np.where(live, actions, 0)
        out["rewards"][:, :, t] = np.where(live, rewards, 0.0)
        out["dones"][:, :, t] = np.where(live, now_finished, 0.0)
        out["mask"][:, :, t] = live
        out["obs"][:, :, t + 1] = np.where(live[..., None], info["final_obs"], 0.0)
        finished = now_finished & running[:, None]
        for key in ("success", "correct_fraction", "episode_return_mean", "episode_length"):
            episode.setdefault(key, np.zeros(B))
            episode[key] = np.where(running & info["done"], info[key], episode[key])
        running &= ~info["done"]
        if not running.any():
            break
    flat = {k: v.reshape(B * N, *v.shape[2:]) for k, v in out.items()}
    return {**flat, **episode}


class DRQN(learning.Learner):
    name = "drqn"
    description = "DRQN: recurrent Q-learning on whole episodes, or DQN with recurrent=False (notebook 06)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts):
        super().__init__(task, config, parts)
        cfg = config
        self.seed_torch()
        self.rng = np.random.default_rng(cfg.seed)
        self.env = task.batched(cfg.num_envs, seed=cfg.seed)
        env = self.env
        if cfg.recurrent:
            self.q_net = RecurrentQNetwork(env.obs_dim, env.n_actions, cfg.hidden)
        else:
            self.q_net = FeedForwardQNetwork(env.obs_dim, env.n_actions, cfg.ff_hidden)
        self.target_net = copy.deepcopy(self.q_net)
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=cfg.lr)
        self.buffer: dict[str, np.ndarray] = {}  # replayed agent sequences (the newest buffer_episodes)
        self.batches: list[np.ndarray] = []  # this round's sequence indices, one array per update still to do
        self.round_steps = 0  # environment steps of the round being learned from
        self.rounds = self.updates = 0
        self.last_epsilon = cfg.eps_start
        self.since_log: dict[str, list] = {"returns": [], "success": [], "loss": []}
        self.row_due = False  # a curve row whose evaluation has not finished yet

    def epsilon(self, step: int) -> float:
        cfg = self.config
        return linear_schedule(cfg.eps_start, cfg.eps_end, int(cfg.eps_fraction * cfg.total_steps), step)

    def iterate(self) -> None:
        """One round: an episode in every env, then ``updates_per_collect`` updates on
        sequences replayed from the buffer; log when due."""
        if self.row_due:  # the evaluation of the last row was interrupted: log it now
            self.log_block()
        if not self.batches:  # (else an interrupted round goes on with the updates it had left)
            self.collect()
        while self.batches:
            self.learn(self.batches[0])
            self.batches.pop(0)
        self.step += self.round_steps
        self.episode += self.config.num_envs
        self.rounds += 1
        self.row_due = self.rounds % self.config.log_every == 0 or self.done
        if self.row_due:
            self.log_block()

    def collect(self) -> None:
        """Play one epsilon-greedy episode per env, store its agent sequences, and draw the
        round's batches of sequences."""
        cfg = self.config
        self.last_epsilon = self.epsilon(self.step)
        ep = collect_episodes(self.env, self.q_net, self.last_epsilon, self.rng)
        self.round_steps = int(ep["episode_length"].sum())
        self.since_log["returns"].extend(ep["episode_return_mean"].tolist())
        self.since_log["success"].extend(ep["success"].tolist())
        seqs = {k: ep[k] for k in ("obs", "actions", "rewards", "dones", "mask")}
        self.buffer = {k: np.concatenate([self.buffer[k], v])[-cfg.buffer_episodes:] if self.buffer else v
                       for k, v in seqs.items()}
        self.batches = [self.rng.integers(0, len(self.buffer["obs"]), cfg.batch_size)
                        for _ in range(cfg.updates_per_collect)]

    def learn(self, idx: np.ndarray) -> None:
        """One gradient step on ``drqn_loss`` over the sequences ``idx``; target copies."""
        cfg = self.config
        batch = {k: torch.as_tensor(v[idx]) for k, v in self.buffer.items()}
        loss = self.parts.drqn_loss(self.q_net, self.target_net, batch, cfg.gamma)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q_net.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.since_log["loss"].append(float(loss.detach()))
        self.updates += 1
        if self.updates % cfg.target_every == 0:
            self.target_net.load_state_dict(self.q_net.state_dict())

    def log_block(self) -> None:
        """A curve row: training episodes since the last row, and a greedy evaluation."""
        cfg, s = self.config, self.since_log
        mean = learning.mean_or_nan
        ev = evaluate(self.policy(), self.task, episodes=cfg.eval_episodes, seed=10_000 + self.rounds,
                      num_envs=cfg.eval_episodes).summary()
        self.log(train_return=mean(s["returns"]), eval_return=ev["return_per_agent"], **{"loss/q": mean(s["loss"])},
                 train_success=mean(s["success"]), eval_success=ev["success"], eval_correct=ev["correct_fraction"],
                 epsilon=self.last_epsilon)
        self.since_log = {k: [] for k in s}
        self.row_due = False

    def policy(self) -> RecurrentQPolicy:
        return RecurrentQPolicy(self.q_net, self.env.possible_agents, self.env.obs_dim, self.config.eps_end,
                                self.config.seed)


def train(task: Any = "cue_corridor", config: Config | None = None, parts: Any = None, **run_options) -> learning.Run:
    """Train DRQN (or the feed-forward baseline) on ``task`` (the T-maze by default); see
    :func:`course_lib.learning.train` for ``resume``, ``out``, ``save_every`` and ``progress``."""
    return learning.train(DRQN, task, config, parts, **run_options)
