"""Independent learners: stateless Q-learning on matrix games, and the DQN pieces.

Taught in notebooks/02_independent_learners.  Read top to bottom:

1. exploration -- :func:`epsilon_greedy` (student TODO) and :func:`boltzmann`;
2. stateless Q-learning -- :func:`stateless_q_update` (student TODO) and the
   optimistic :func:`hysteretic_q_update`;
3. matrix-game learners, many seeds as one batch of ``matrix_<game>`` environments:
   independent Q-learners (``"iql"``), joint-action learners (``"jal"``, Claus &
   Boutilier 1998) and hysteretic (optimistic) independent learners (``"hysteretic"``,
   Matignon et al. 2007) -- :class:`StatelessQ`, trained with :func:`train`, calling the
   four functions above as its parts::

       run = iql.train("matrix_climbing", iql.Config(learner="hysteretic", n_seeds=100),
                       parts=iql.Parts(epsilon_greedy=my_epsilon_greedy))
       run.curve, run.learner.final, run.learner.actions, iql.outcome_shares(run.learner.final)

4. the DQN pieces -- :func:`dqn_td_target` and :func:`update_target` (student TODOs),
   called by the independent DQN loop of :mod:`course_lib.algos.idqn`.

Every function a student writes in the notebook has the same name and signature
here; the notebook's hidden tests compare the two on random inputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from course_lib import learning
from course_lib.policy import Policy
from course_lib.training import linear_schedule

__all__ = [
    "epsilon_greedy",
    "boltzmann",
    "stateless_q_update",
    "hysteretic_q_update",
    "Config",
    "Parts",
    "StatelessQ",
    "TablePolicy",
    "train",
    "outcome_shares",
    "dqn_td_target",
    "update_target",
]


# =============================================================================
# 1. Exploration
# =============================================================================
def epsilon_greedy(q_values, epsilon, rng: np.random.Generator) -> np.ndarray:
    """Epsilon-greedy actions for every row of ``q_values``.

    ``q_values`` has shape ``[..., n_actions]`` (e.g. ``[seeds, agents, n_actions]``);
    returns integer actions of shape ``[...]``.  With probability ``epsilon`` (a float,
    or an array broadcastable to ``[...]``) an action is drawn uniformly from all
    actions; otherwise a greedy action, ties broken uniformly at random.
    Taught in notebooks/02_independent_learners.
    """
    q = np.asarray(q_values, dtype=float)
    is_best = q >= q.max(axis=-1, keepdims=True)
    # a uniformly random greedy action: the argmax of random keys over the tied actions
    keys = np.where(is_best, rng.random(q.shape), -1.0)
    greedy = keys.argmax(axis=-1)
    random_action = rng.integers(0, q.shape[-1], size=q.shape[:-1])
    explore = rng.random(q.shape[:-1]) < epsilon
    return np.where(explore, random_action, greedy).astype(np.int64)


def boltzmann(q_values, temperature, rng: np.random.Generator) -> np.ndarray:
    """Boltzmann (softmax) exploration: draw ``a`` with probability
    ``exp(Q(a) / T) / sum_b exp(Q(b) / T)`` for every row of ``q_values [..., n_actions]``.

    ``temperature`` is a positive float (or an array broadcastable to ``[...]``); small
    temperatures approach the greedy policy.  Returns integer actions ``[...]``.
    Taught in notebooks/02_independent_learners.
    """
    q = np.asarray(q_values, dtype=float)
    temp = np.asarray(temperature, dtype=float)[..., None]
    logits = q / np.maximum(temp, 1e-8)
    logits = logits - logits.max(axis=-1, keepdims=True)  # stable softmax
    probs = np.exp(logits)
    probs /= probs.sum(axis=-1, keepdims=True)
    u = rng.random(q.shape[:-1] + (1,))
    action = (probs.cumsum(axis=-1) < u).sum(axis=-1)  # inverse-CDF sampling
    return np.minimum(action, q.shape[-1] - 1).astype(np.int64)


# =============================================================================
# 2. Stateless Q-learning
# =============================================================================
def stateless_q_update(q, action, reward, alpha) -> np.ndarray:
    """One stateless Q-learning step for every row: ``Q(a) <- Q(a) + alpha (r - Q(a))``.

    ``q`` is ``[..., n_actions]`` (e.g. ``[seeds, agents, n_actions]``), ``action`` and
    ``reward`` are ``[...]``; only the entry of the taken action changes in each row.
    A matrix game has no next state, so the target is the reward alone.  Returns the
    updated table (a new array; ``q`` is left unchanged).
    Taught in notebooks/02_independent_learners.
    """
    q = np.array(q, dtype=float)  # a copy
    a = np.asarray(action, dtype=np.int64)[..., None]
    old = np.take_along_axis(q, a, axis=-1)
    new = old + alpha * (np.asarray(reward, dtype=float)[..., None] - old)
    np.put_along_axis(q, a, new, axis=-1)
    return q


def hysteretic_q_update(q, action, reward, alpha, beta) -> np.ndarray:
    """Hysteretic (optimistic) stateless Q-learning (Matignon, Laurent & Le Fort-Piat 2007).

    Like :func:`stateless_q_update`, but the learning rate is ``alpha`` when the TD
    error ``r - Q(a)`` is positive and the smaller ``beta`` when it is negative: the
    learner believes good outcomes more than bad ones, which it blames on its partner's
    exploration.  ``beta = alpha`` is plain Q-learning, ``beta = 0`` the "distributed"
    Q-learning of Lauer & Riedmiller (2000).
    Taught in notebooks/02_independent_learners.
    """
    q = np.array(q, dtype=float)
    a = np.asarray(action, dtype=np.int64)[..., None]
    old = np.take_along_axis(q, a, axis=-1)
    delta = np.asarray(reward, dtype=float)[..., None] - old
    rate = np.where(delta >= 0, alpha, beta)
    np.put_along_axis(q, a, old + rate * delta, axis=-1)
    return q


# =============================================================================
# 3. Matrix-game learners, many seeds at once
# =============================================================================
@dataclass
class Config:
    """Stateless learners on a matrix game: ``n_seeds`` independent runs played side by side.

    ``step`` (and ``episode``: a one-shot game is one episode) counts the games played by
    *each* run (one step of every run's game; a run of ``total_steps`` plays
    ``n_seeds x total_steps`` games in all), and every schedule knob below is in those games.
    """

    seed: int = 0  # seeds the environments (seed) and the learners' random numbers (seed + 1)
    total_steps: int = 2_000  # one-shot games played by each run
    learner: str = "iql"  # "iql" (independent), "jal" (joint-action), "hysteretic" (optimistic)
    exploration: str = "epsilon"  # "epsilon" (epsilon-greedy) or "boltzmann"
    n_seeds: int = 100  # independent runs, stepped together (one environment per run)
    alpha: float = 0.1  # learning rate of the Q update
    beta: float = 0.01  # hysteretic learners: learning rate for negative TD errors
    eps_start: float = 1.0  # epsilon-greedy: initial epsilon ...
    eps_end: float = 0.01  # ... annealed linearly to this value ...
    temp_start: float = 10.0  # Boltzmann: initial temperature ...
    temp_end: float = 0.05  # ... annealed linearly to this value ...
    anneal_fraction: float = 0.8  # ... over this fraction of total_steps
    log_every: int = 50  # games per logged block (rewards and action frequencies averaged)


@dataclass
class Parts:
    """The functions of notebook 02 that the matrix-game loop calls (defaults: the references)."""

    epsilon_greedy: Callable = epsilon_greedy
    boltzmann: Callable = boltzmann
    stateless_q_update: Callable = stateless_q_update
    hysteretic_q_update: Callable = hysteretic_q_update


def _expected_values(q_joint: np.ndarray, counts: np.ndarray, agent: int) -> np.ndarray:
    """JAL: agent ``agent``'s value of each own action, ``sum_{a_-i} Q_i(a) prod_j f_j(a_j)``.

    ``q_joint`` is ``[S, A_1, ..., A_N]`` (this agent's joint-action table), ``counts``
    ``[S, N, A]`` the observed action counts of every agent; returns ``[S, A_i]``.
    """
    S, N = q_joint.shape[0], q_joint.ndim - 1
    values = q_joint
    for j in reversed(range(N)):  # contract the other agents' axes with their frequencies
        if j == agent:
            continue
        n_j = q_joint.shape[1 + j]
        freq = counts[:, j, :n_j] / counts[:, j, :n_j].sum(axis=1, keepdims=True)
        shape = [S] + [1] * (values.ndim - 1)
        shape[1 + j] = n_j
        values = (values * freq.reshape(shape)).sum(axis=1 + j, keepdims=True)
    return values.reshape(S, -1)


class TablePolicy(Policy):
    """The greedy joint action of the learned tables; environment ``b`` of a batch plays
    run ``b mod n_seeds`` (or every environment the run ``run``).  ``greedy=False``
    explores with ``select(values, param, rng)``, the loop's own exploration part."""

    name = "stateless_q"

    def __init__(self, values: np.ndarray, agents, obs_dim: int, n_actions, select: Callable,
                 param: float, seed: int = 0, run: int | None = None):
        super().__init__(agents, obs_dim)
        self.values, self.n_actions = values, np.asarray(n_actions)  # values [S, N, A], -inf where invalid
        self.select, self.param, self.run = select, float(param), run
        self.rng = np.random.default_rng(seed)

    def act(self, obs, info=None, greedy=True):
        B, S = np.shape(obs)[0], self.values.shape[0]
        values = self.values[np.arange(B) % S if self.run is None else np.full(B, self.run)]
        if greedy:
            return values.argmax(axis=-1)
        act = np.asarray(self.select(values, self.param, self.rng), dtype=np.int64)
        invalid = act >= self.n_actions[None, :]  # epsilon-greedy's random draw of an action it lacks
        return np.where(invalid, self.rng.integers(0, self.n_actions[None, :], act.shape), act)


class StatelessQ(learning.Learner):
    """Independent (IQL), joint-action (JAL) and hysteretic Q-learners on a one-shot matrix
    game (Claus & Boutilier 1998; Matignon et al. 2007), ``n_seeds`` runs as one batch.

    Besides ``curve`` (one row per run and logged block, with a ``seed`` column), the
    learner keeps ``q`` (the tables ``[seeds, agents, ...]``) and builds the tables
    ``actions`` (action frequencies per block) and ``final`` (greedy joint action per run).
    """

    name = "stateless_q"
    description = "independent, joint-action or hysteretic Q-learners on a matrix game, many seeds (notebook 02)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts):
        super().__init__(task, config, parts)
        cfg = config
        if cfg.learner not in ("iql", "jal", "hysteretic"):
            raise ValueError(f"learner must be 'iql', 'jal' or 'hysteretic', got {cfg.learner!r}")
        if cfg.exploration not in ("epsilon", "boltzmann"):
            raise ValueError(f"exploration must be 'epsilon' or 'boltzmann', got {cfg.exploration!r}")
        self.env = task.batched(cfg.n_seeds, seed=cfg.seed)
        self.env.reset(seed=cfg.seed)
        self.rng = np.random.default_rng(cfg.seed + 1)
        self.payoffs = np.asarray(self.env.core.payoffs, dtype=float)  # [A_1, ..., A_N, N]
        S, N = int(cfg.n_seeds), self.payoffs.ndim - 1
        self.n_actions = tuple(self.payoffs.shape[:-1])
        A = max(self.n_actions)
        # actions an agent does not have get -inf: never greedy, never sampled by softmax
        self.valid = np.arange(A)[None, :] < np.asarray(self.n_actions)[:, None]  # [N, A]
        if cfg.learner == "jal":
            self.q = np.zeros((S, N) + self.n_actions)  # Q_i(a_1, ..., a_N)
            self.counts = np.ones((S, N, A))  # one pseudo-count per action (uniform prior)
        else:
            self.q = np.zeros((S, N, A))  # Q_i(a_i)
        self.team = self.payoffs.sum(axis=-1) / N  # mean payoff per agent of each joint action
        self.block_reward = np.zeros(S)
        self.block_counts = np.zeros((S, N, A))
        self.frequencies: list[tuple[int, np.ndarray]] = []  # (step, action frequencies [S, N, A]) per block

    # -- acting ----------------------------------------------------------------------
    def exploration(self, step: int) -> float:
        """Epsilon or temperature before game ``step + 1`` of each run (linear annealing)."""
        cfg = self.config
        start, end = (cfg.eps_start, cfg.eps_end) if cfg.exploration == "epsilon" else (cfg.temp_start, cfg.temp_end)
        return linear_schedule(start, end, max(1, int(cfg.anneal_fraction * cfg.total_steps)), step)

    def action_values(self) -> np.ndarray:
        """``[S, N, A]``: what each agent acts on (JAL: expected values under the others' frequencies)."""
        S, N, A = self.block_counts.shape
        if self.config.learner != "jal":
            values = self.q
        else:
            values = np.zeros((S, N, A))
            for i in range(N):
                values[:, i, : self.n_actions[i]] = _expected_values(self.q[:, i], self.counts, i)
        return np.where(self.valid[None], values, -np.inf)

    def greedy_joint(self) -> np.ndarray:
        """Every run's greedy joint action ``[S, N]`` (ties to the lowest index)."""
        return self.action_values().argmax(axis=-1)

    # -- the loop --------------------------------------------------------------------
    def iterate(self) -> None:
        """Games of every run until the next logged block, then one curve row per run."""
        while True:
            self.play()
            if self.step % self.config.log_every == 0 or self.done:
                self.log_block()
                return

    def play(self) -> None:
        """One game of every run: explore, get each agent's own payoff, update the tables."""
        cfg = self.config
        S, N, _ = self.block_counts.shape
        param = self.exploration(self.step)
        if cfg.exploration == "epsilon":  # over each agent's own actions only
            act = np.asarray(self.parts.epsilon_greedy(self.action_values(), param, self.rng), dtype=np.int64)
            explore_other = act >= np.asarray(self.n_actions)[None, :]
            if explore_other.any():  # asymmetric games: redraw out-of-range random actions
                act = np.where(explore_other, self.rng.integers(0, np.asarray(self.n_actions)[None, :], (S, N)), act)
        else:
            act = np.asarray(self.parts.boltzmann(self.action_values(), param, self.rng), dtype=np.int64)
        _, rewards, _, _, _ = self.env.step(act)  # rewards [S, N]: each agent's own payoff
        self.update(act, rewards)
        self.step += 1
        self.episode += 1
        self.block_reward += rewards.mean(axis=1)
        self.block_counts[np.arange(S)[:, None], np.arange(N)[None, :], act] += 1

    def update(self, act: np.ndarray, rewards: np.ndarray) -> None:
        """``Q(a) <- Q(a) + alpha (r - Q(a))``: on the own action (IQL, hysteretic) or on the
        joint action (JAL: the same update on each agent's table of joint actions)."""
        cfg = self.config
        if cfg.learner == "iql":
            self.q = np.asarray(self.parts.stateless_q_update(self.q, act, rewards, cfg.alpha), dtype=float)
        elif cfg.learner == "hysteretic":
            self.q = np.asarray(self.parts.hysteretic_q_update(self.q, act, rewards, cfg.alpha, cfg.beta), dtype=float)
        else:
            S, N = act.shape
            joint = np.broadcast_to(np.ravel_multi_index(tuple(act.T), self.n_actions)[:, None], (S, N))
            flat = self.parts.stateless_q_update(self.q.reshape(S, N, -1), joint, rewards, cfg.alpha)
            self.q = np.asarray(flat, dtype=float).reshape(self.q.shape)
            self.counts[np.arange(S)[:, None], np.arange(N)[None, :], act] += 1

    def log_block(self) -> None:
        """One row per run: mean payoff per player in the block and the greedy joint action's payoff."""
        n_block = self.block_counts[:, 0].sum(axis=-1)
        greedy_reward = self.team[tuple(self.greedy_joint().T)]
        param = self.exploration(self.step - 1)  # the last game's epsilon / temperature
        for s in range(self.config.n_seeds):
            self.log(train_return=self.block_reward[s] / n_block[s], seed=s, greedy_reward=greedy_reward[s],
                     exploration=param, learner=self.config.learner, exploration_kind=self.config.exploration)
        self.frequencies.append((self.step, self.block_counts / n_block[:, None, None]))
        self.block_reward = np.zeros_like(self.block_reward)
        self.block_counts = np.zeros_like(self.block_counts)

    # -- what was learned --------------------------------------------------------------
    @property
    def actions(self) -> pd.DataFrame:
        """One row per (seed, block, agent, action): ``frequency`` of that action in the block."""
        S, N, A = self.block_counts.shape
        rows = [pd.DataFrame({"seed": np.repeat(np.arange(S), N * A), "episode": step,
                              "agent": np.tile(np.repeat(np.arange(N), A), S), "action": np.tile(np.arange(A), S * N),
                              "frequency": freq.ravel()}) for step, freq in self.frequencies]
        df = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
            columns=["seed", "episode", "agent", "action", "frequency"])
        df = df[df["action"] < np.asarray(self.n_actions)[df["agent"].to_numpy(dtype=int)]].reset_index(drop=True)
        return df.assign(learner=self.config.learner, exploration_kind=self.config.exploration)

    @property
    def final(self) -> pd.DataFrame:
        """One row per seed: the greedy joint action now (``actions``, and ``joint`` like
        ``"(b, b)"``) and its ``payoff`` per player."""
        greedy = self.greedy_joint()
        names = _action_names(self.payoffs)
        return pd.DataFrame({
            "seed": np.arange(len(greedy)),
            "actions": [tuple(int(a) for a in row) for row in greedy],
            "joint": ["(" + ", ".join(names[i][a] for i, a in enumerate(row)) + ")" for row in greedy],
            "payoff": self.team[tuple(greedy.T)],
            "learner": self.config.learner,
            "exploration_kind": self.config.exploration,
        })

    def policy(self, run: int | None = None) -> TablePolicy:
        """Greedy joint action of the tables: environment ``b`` plays run ``b mod n_seeds``
        (``run``: every environment that run)."""
        cfg = self.config
        select = self.parts.epsilon_greedy if cfg.exploration == "epsilon" else self.parts.boltzmann
        return TablePolicy(self.action_values(), self.env.possible_agents, self.env.obs_dim, self.n_actions,
                           select, self.exploration(self.total_steps), cfg.seed, run)


def train(task: Any = "matrix_climbing", config: Config | None = None, parts: Any = None,
          **run_options) -> learning.Run:
    """Train ``config.n_seeds`` runs of a stateless learner on a matrix game (a ``matrix_<game>``
    task); the run's ``learner`` holds ``q``, ``actions`` and ``final``.  See
    :func:`course_lib.learning.train` for ``resume``, ``out``, ``save_every`` and ``progress``."""
    return learning.train(StatelessQ, task, config, parts, **run_options)


def _action_names(payoffs: np.ndarray) -> list[list[str]]:
    """Action names from the course catalogue when ``payoffs`` is a catalogue game."""
    from course_lib import games

    for name, game in games.catalogue().items():
        if game.shape == payoffs.shape and np.allclose(game, payoffs):
            return [list(games.ACTION_NAMES[name])] * (payoffs.ndim - 1)
    return [[str(a) for a in range(n)] for n in payoffs.shape[:-1]]


def outcome_shares(final: pd.DataFrame, by: str | list[str] | None = None) -> pd.DataFrame:
    """Share of seeds ending at each joint action: a table with one column per joint
    action (``final["joint"]``) and one row per group of ``by`` (e.g. ``"learner"``).
    Taught in notebooks/02_independent_learners.
    """
    if by is None:
        return final["joint"].value_counts(normalize=True).rename("share of seeds").to_frame().T
    table = final.groupby(by)["joint"].value_counts(normalize=True).unstack(fill_value=0.0)
    table.columns.name = "final joint action"
    return table


# =============================================================================
# 4. The DQN pieces (the loop: course_lib.algos.idqn)
# =============================================================================
def dqn_td_target(rewards, next_q, dones, gamma):
    """One-step DQN target ``y = r + gamma * (1 - done) * max_a' Q_target(s', a')``.

    ``rewards`` and ``dones`` are ``[...]`` (e.g. ``[batch, agents]``; ``dones`` is 1.0
    for a terminal transition, where nothing is bootstrapped, 0.0 otherwise -- a
    time-limit truncation is *not* terminal), ``next_q`` is the target network's
    ``Q(s', .)`` of shape ``[..., n_actions]``.  Torch tensors in, a tensor ``[...]`` out.
    Taught in notebooks/02_independent_learners.
    """
    next_max = next_q.max(dim=-1).values
    return rewards + gamma * (1.0 - dones) * next_max


def update_target(target_net, online_net, tau: float) -> None:
    """Move the target network towards the online network, in place.

    ``tau = 1``: hard copy of every parameter (DQN every C steps);
    ``0 < tau < 1``: Polyak averaging ``theta_target <- tau theta + (1 - tau) theta_target``.
    ``online_net`` is not changed.
    Taught in notebooks/02_independent_learners.
    """
    import torch

    with torch.no_grad():
        for t_param, o_param in zip(target_net.parameters(), online_net.parameters()):
            if tau >= 1.0:
                t_param.copy_(o_param)
            else:
                t_param.mul_(1.0 - tau).add_(o_param, alpha=tau)
