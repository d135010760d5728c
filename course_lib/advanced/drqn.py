"""DRQN (Hausknecht & Stone 2015): Q-learning with an LSTM, trained on whole episodes.
Taught in notebooks/06_advanced.

A feed-forward Q-network sees one observation; when the task hides what matters (the
cue of :class:`course_lib.envs.memory.CueCorridor` is shown only at the first step)
it cannot act on it.  The recurrent network carries a hidden state ``(h, c)`` through
the episode, and the Q update is computed over *sequences*: both networks are unrolled
from a zero state over the stored episode, and the loss averages the squared TD errors
over the steps that really happened (``mask``):

    y_t = r_t + gamma (1 - d_t) max_a Q_target(o_{<=t+1}, a)
    L   = sum_t mask_t (Q(o_{<=t}, a_t) - y_t)^2 / sum_t mask_t

Students write :func:`drqn_loss` (TODO 3).  Agents share one network (parameter
sharing); each agent's episode is one sequence, which ends when the agent has turned
into an arm.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.envs.memory import VecCueCorridor
from course_lib.training import linear_schedule

__all__ = ["RecurrentQNetwork", "FeedForwardQNetwork", "drqn_loss", "DRQNConfig",
           "collect_episodes", "train", "evaluate"]


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
    (two hidden layers; :class:`DRQNConfig` makes them wide enough to hold about as many
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
class DRQNConfig:
    """Hyperparameters of :func:`train` (the defaults are the notebook's full run)."""

    recurrent: bool = True          # LSTM (DRQN) or a feed-forward Q-network
    episodes: int = 3000            # training episodes per agent slot (num_envs run at once)
    num_envs: int = 16              # parallel T-mazes
    num_agents: int = 2             # agents per env; each agent's episode is one sequence
    length: int = 4                 # corridor length: steps the cue must be remembered
    max_steps: int = 12             # episode horizon
    step_penalty: float = 0.05      # cost of every step before turning into an arm
    wrong_arm: float = 0.0          # reward of the arm that was not cued
    hidden: int = 32                # encoder / LSTM width
    ff_hidden: int = 88             # feed-forward width: about as many parameters as the LSTM network
    lr: float = 3e-3                # Adam
    gamma: float = 0.9              # discount
    batch_size: int = 32            # sequences per update
    updates_per_collect: int = 8    # gradient steps after each round of num_envs episodes
    buffer_episodes: int = 2000     # agent sequences kept for replay
    eps_start: float = 1.0          # epsilon-greedy ...
    eps_end: float = 0.05
    eps_fraction: float = 0.5       # ... decayed over this share of training
    target_every: int = 50          # updates between target-network copies
    max_grad_norm: float = 10.0     # gradient clipping
    eval_episodes: int = 64         # greedy evaluation episodes per logged row
    log_every: int = 10             # collection rounds between logged rows
    seed: int = 0                   # torch, numpy and the env
    progress: bool = True           # tqdm progress bar

    def env_kwargs(self) -> dict:
        return dict(num_agents=self.num_agents, length=self.length, max_steps=self.max_steps,
                    step_penalty=self.step_penalty, wrong_arm=self.wrong_arm)


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


def evaluate(q_net: nn.Module, config: DRQNConfig, episodes: int = 200, seed: int = 10_000) -> dict:
    """Greedy policy on fresh episodes: mean ``success`` (every agent took its cued arm),
    ``correct_fraction`` (agents that did) and ``episode_return_mean``."""
    env = VecCueCorridor(episodes, seed=seed, **config.env_kwargs())
    ep = collect_episodes(env, q_net, epsilon=0.0, rng=np.random.default_rng(seed))
    return {"success": float(ep["success"].mean()), "correct_fraction": float(ep["correct_fraction"].mean()),
            "episode_return_mean": float(ep["episode_return_mean"].mean())}


def train(config: DRQNConfig | None = None, *, return_model: bool = False, **overrides):
    """Train on :class:`~course_lib.envs.memory.VecCueCorridor`; a DataFrame with one row per
    ``log_every`` collection rounds (``(df, q_net)`` with ``return_model=True``).

    Columns: ``episodes``, ``step`` (env steps), ``epsilon``, ``loss/q``,
    ``train_success``, ``eval_success`` / ``eval_correct`` / ``eval_return`` (greedy policy,
    ``eval_episodes`` fresh episodes), ``sps`` (env steps per second, wall clock),
    ``method``, ``seed``.
    """
    cfg = DRQNConfig(**{**asdict(config or DRQNConfig()), **overrides})
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    env = VecCueCorridor(cfg.num_envs, seed=cfg.seed, **cfg.env_kwargs())
    if cfg.recurrent:
        q_net = RecurrentQNetwork(env.obs_dim, env.n_actions, cfg.hidden)
    else:
        q_net = FeedForwardQNetwork(env.obs_dim, env.n_actions, cfg.ff_hidden)
    target_net = copy.deepcopy(q_net)
    optimiser = torch.optim.Adam(q_net.parameters(), lr=cfg.lr)
    buffer: dict[str, np.ndarray] = {}
    rounds = max(cfg.episodes // cfg.num_envs, 1)
    method = "DRQN (LSTM)" if cfg.recurrent else "DQN (feed-forward)"
    rows, updates, steps, start = [], 0, 0, time.perf_counter()
    loss = torch.zeros(())
    for r in tqdm(range(rounds), desc=f"{method} seed {cfg.seed}", disable=not cfg.progress, leave=False):
        epsilon = linear_schedule(cfg.eps_start, cfg.eps_end, int(cfg.eps_fraction * rounds), r)
        ep = collect_episodes(env, q_net, epsilon, rng)
        steps += int(ep["episode_length"].sum())
        seqs = {k: ep[k] for k in ("obs", "actions", "rewards", "dones", "mask")}
        buffer = {k: np.concatenate([buffer[k], v])[-cfg.buffer_episodes:] if buffer else v for k, v in seqs.items()}
        for _ in range(cfg.updates_per_collect):
            idx = rng.integers(0, len(buffer["obs"]), cfg.batch_size)
            batch = {k: torch.as_tensor(v[idx]) for k, v in buffer.items()}
            loss = drqn_loss(q_net, target_net, batch, cfg.gamma)
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(q_net.parameters(), cfg.max_grad_norm)
            optimiser.step()
            updates += 1
            if updates % cfg.target_every == 0:
                target_net.load_state_dict(q_net.state_dict())
        if (r + 1) % cfg.log_every == 0 or r == rounds - 1:
            ev = evaluate(q_net, cfg, episodes=cfg.eval_episodes, seed=10_000 + r)
            rows.append({"episodes": (r + 1) * cfg.num_envs, "step": steps, "epsilon": epsilon,
                         "loss/q": float(loss.detach()), "train_success": float(ep["success"].mean()),
                         "eval_success": ev["success"], "eval_correct": ev["correct_fraction"],
                         "eval_return": ev["episode_return_mean"],
                         "sps": steps / (time.perf_counter() - start), "method": method, "seed": cfg.seed})
    df = pd.DataFrame(rows)
    return (df, q_net) if return_model else df
