"""Independent learners: stateless Q-learning on matrix games and independent DQN.

Taught in notebooks/02_independent_learners.  Read top to bottom:

1. exploration -- :func:`epsilon_greedy` (student TODO) and :func:`boltzmann`;
2. stateless Q-learning -- :func:`stateless_q_update` (student TODO) and the
   optimistic :func:`hysteretic_q_update`;
3. matrix-game learners vectorised over seeds with NumPy on
   :class:`~course_lib.envs.VecMatrixGame` (one env per seed):
   independent Q-learners (``"iql"``), joint-action learners (``"jal"``, Claus &
   Boutilier 1998) and hysteretic (optimistic) independent learners
   (``"hysteretic"``, Matignon et al. 2007) -- :func:`run_matrix_game`;
4. independent DQN on :class:`~course_lib.envs.VecMultiAgentGridWorld`:
   :func:`dqn_td_target` and :func:`update_target` (student TODOs),
   :class:`IDQNConfig`, :func:`train_idqn` and the evaluation helpers.

Every function a student writes in the notebook has the same name and signature
here; the notebook's hidden tests compare the two on random inputs.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from course_lib.envs import VecMatrixGame, VecMultiAgentGridWorld
from course_lib.envs.policies import Policy, make_policy
from course_lib.training import linear_schedule

__all__ = [
    "epsilon_greedy",
    "boltzmann",
    "stateless_q_update",
    "hysteretic_q_update",
    "MatrixConfig",
    "MatrixResult",
    "run_matrix_game",
    "outcome_shares",
    "dqn_td_target",
    "update_target",
    "IDQNConfig",
    "train_idqn",
    "GreedyQPolicy",
    "evaluate_idqn",
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
# 3. Matrix-game learners, vectorised over seeds
# =============================================================================
@dataclass
class MatrixConfig:
    """Hyperparameters of the stateless matrix-game learners (one run = many seeds)."""

    learner: str = "iql"  # "iql" (independent), "jal" (joint-action), "hysteretic" (optimistic)
    exploration: str = "epsilon"  # "epsilon" (epsilon-greedy) or "boltzmann"
    n_seeds: int = 100  # independent runs, stepped together (one VecMatrixGame env per seed)
    n_episodes: int = 2_000  # one-shot games played per run
    alpha: float = 0.1  # learning rate of the Q update
    beta: float = 0.01  # hysteretic learners: learning rate for negative TD errors
    eps_start: float = 1.0  # epsilon-greedy: initial epsilon ...
    eps_end: float = 0.01  # ... annealed linearly to this value ...
    temp_start: float = 10.0  # Boltzmann: initial temperature ...
    temp_end: float = 0.05  # ... annealed linearly to this value ...
    anneal_fraction: float = 0.8  # ... over this fraction of the episodes
    log_every: int = 50  # episodes per logged block (rewards and action frequencies averaged)
    seed: int = 0  # seeds the environments and the learners' random numbers


@dataclass
class MatrixResult:
    """What :func:`run_matrix_game` returns: three tidy DataFrames and the final tables.

    * ``curves``: one row per (seed, logged block): ``seed, episode, reward`` (team
      reward per episode averaged over the block and the agents), ``greedy_reward``
      (payoff of the greedy joint action at the end of the block), ``exploration``
      (epsilon or temperature), ``learner``;
    * ``actions``: one row per (seed, block, agent, action): ``frequency`` of that
      action in the block;
    * ``final``: one row per seed: the greedy joint action at the end (``joint``, a
      string like ``"(b, b)"``, and ``actions`` as a tuple) and its ``payoff``;
    * ``q``: the learned Q-tables ``[seeds, agents, ...]``.
    """

    curves: pd.DataFrame
    actions: pd.DataFrame
    final: pd.DataFrame
    q: np.ndarray
    config: MatrixConfig


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


def run_matrix_game(payoffs, config: MatrixConfig | None = None, **overrides) -> MatrixResult:
    """Run ``config.n_seeds`` independent runs of a stateless learner on a matrix game.

    ``payoffs`` is an array ``(A_1, ..., A_N, N)`` (the convention of
    ``course_lib.games``); all runs are stepped together as one
    ``VecMatrixGame(n_seeds)``.  Learners (``config.learner``):

    * ``"iql"``: every agent keeps ``Q_i[a_i]`` and updates it with
      :func:`stateless_q_update` on its own reward; the partner is part of the
      environment.
    * ``"hysteretic"``: the same with :func:`hysteretic_q_update` (optimistic).
    * ``"jal"``: joint-action learners (Claus & Boutilier 1998): every agent keeps
      ``Q_i[a_1, ..., a_N]`` over joint actions and counts of the others' actions, and
      acts on the expected value of its own actions under those empirical frequencies.

    Exploration is epsilon-greedy or Boltzmann with a linearly annealed epsilon /
    temperature.  Keyword ``overrides`` replace config fields
    (``run_matrix_game(pd, learner="jal")``).  Returns a :class:`MatrixResult`.
    Taught in notebooks/02_independent_learners.
    """
    cfg = MatrixConfig(**{**asdict(config or MatrixConfig()), **overrides})
    if cfg.learner not in ("iql", "jal", "hysteretic"):
        raise ValueError(f"learner must be 'iql', 'jal' or 'hysteretic', got {cfg.learner!r}")
    if cfg.exploration not in ("epsilon", "boltzmann"):
        raise ValueError(f"exploration must be 'epsilon' or 'boltzmann', got {cfg.exploration!r}")
    payoffs = np.asarray(payoffs, dtype=float)
    S, N = int(cfg.n_seeds), payoffs.ndim - 1
    n_actions = payoffs.shape[:-1]
    A = max(n_actions)
    env = VecMatrixGame(S, payoffs=payoffs, seed=cfg.seed)
    env.reset(seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    # actions an agent does not have get -inf: never greedy, never sampled by softmax
    valid = np.arange(A)[None, :] < np.asarray(n_actions)[:, None]  # [N, A]
    if cfg.learner == "jal":
        q = np.zeros((S, N) + n_actions)
        counts = np.ones((S, N, A))  # one pseudo-count per action (uniform prior)
    else:
        q = np.zeros((S, N, A))
    anneal = max(1, int(cfg.anneal_fraction * cfg.n_episodes))
    start, end = (cfg.eps_start, cfg.eps_end) if cfg.exploration == "epsilon" else (cfg.temp_start, cfg.temp_end)

    def action_values() -> np.ndarray:  # [S, N, A]: what each agent acts on
        if cfg.learner != "jal":
            values = q
        else:
            values = np.zeros((S, N, A))
            for i in range(N):
                values[:, i, : n_actions[i]] = _expected_values(q[:, i], counts, i)
        return np.where(valid[None], values, -np.inf)

    def greedy_joint() -> np.ndarray:  # [S, N], ties to the lowest index
        return action_values().argmax(axis=-1)

    team = payoffs.sum(axis=-1) / N  # mean payoff per agent of each joint action
    curves, freq_rows = [], []
    block_reward = np.zeros(S)
    block_counts = np.zeros((S, N, A))
    for episode in range(1, cfg.n_episodes + 1):
        param = linear_schedule(start, end, anneal, episode - 1)
        values = action_values()
        if cfg.exploration == "epsilon":
            # epsilon-greedy over each agent's own actions only
            act = epsilon_greedy(values, param, rng)
            explore_other = act >= np.asarray(n_actions)[None, :]
            if explore_other.any():  # asymmetric games: redraw out-of-range random actions
                act = np.where(explore_other, rng.integers(0, np.asarray(n_actions)[None, :], (S, N)), act)
        else:
            act = boltzmann(values, param, rng)
        _, rewards, _, _, _ = env.step(act)  # rewards [S, N]: each agent's own payoff
        if cfg.learner == "iql":
            q = stateless_q_update(q, act, rewards, cfg.alpha)
        elif cfg.learner == "hysteretic":
            q = hysteretic_q_update(q, act, rewards, cfg.alpha, cfg.beta)
        else:
            idx = (np.arange(S)[:, None], np.arange(N)[None, :]) + tuple(
                np.broadcast_to(act[:, j][:, None], (S, N)) for j in range(N))
            q[idx] += cfg.alpha * (rewards - q[idx])
            counts[np.arange(S)[:, None], np.arange(N)[None, :], act] += 1
        block_reward += rewards.mean(axis=1)
        block_counts[np.arange(S)[:, None], np.arange(N)[None, :], act] += 1
        if episode % cfg.log_every == 0 or episode == cfg.n_episodes:
            n_block = block_counts[:, 0].sum(axis=-1)
            greedy = greedy_joint()
            greedy_reward = team[tuple(greedy.T)]
            for s in range(S):
                curves.append({"seed": s, "episode": episode, "reward": block_reward[s] / n_block[s],
                               "greedy_reward": greedy_reward[s], "exploration": param})
            freq = block_counts / n_block[:, None, None]
            freq_rows.append(pd.DataFrame({
                "seed": np.repeat(np.arange(S), N * A),
                "episode": episode,
                "agent": np.tile(np.repeat(np.arange(N), A), S),
                "action": np.tile(np.arange(A), S * N),
                "frequency": freq.ravel(),
            }))
            block_reward[:] = 0.0
            block_counts[:] = 0.0

    greedy = greedy_joint()
    names = _action_names(payoffs)
    final = pd.DataFrame({
        "seed": np.arange(S),
        "actions": [tuple(int(a) for a in row) for row in greedy],
        "joint": ["(" + ", ".join(names[i][a] for i, a in enumerate(row)) + ")" for row in greedy],
        "payoff": team[tuple(greedy.T)],
    })
    curves_df = pd.DataFrame(curves)
    actions_df = pd.concat(freq_rows, ignore_index=True)
    actions_df = actions_df[actions_df["action"] < np.asarray(n_actions)[actions_df["agent"]]]
    for df in (curves_df, actions_df, final):
        df["learner"] = cfg.learner
        df["exploration_kind"] = cfg.exploration
    return MatrixResult(curves_df, actions_df.reset_index(drop=True), final, q, cfg)


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
# 4. Independent DQN on the batched grid world
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


@dataclass
class IDQNConfig:
    """Independent DQN on the grid world (CleanRL-style: every knob in one place)."""

    seed: int = 0  # seeds torch, numpy and the environments
    num_envs: int = 16  # environments stepped together (VecMultiAgentGridWorld)
    total_steps: int = 3_000  # vectorised env steps (each is num_envs x agents transitions)
    env_kwargs: dict = field(default_factory=dict)  # grid world options (size, num_agents, ...)
    buffer_size: int = 100_000  # replay capacity in joint transitions
    batch_size: int = 128  # joint transitions per gradient step
    gamma: float = 0.95  # discount
    lr: float = 1e-3  # Adam learning rate
    hidden: tuple = (64, 64)  # hidden layers of the Q-network
    agent_id: bool = True  # append a one-hot agent id (one network shared by all agents)
    eps_start: float = 1.0  # epsilon-greedy: initial epsilon ...
    eps_end: float = 0.05  # ... annealed linearly to this ...
    eps_fraction: float = 0.4  # ... over this fraction of total_steps
    learning_starts: int = 250  # env steps of pure exploration before learning
    train_every: int = 1  # gradient steps every this many env steps
    target_tau: float = 1.0  # 1.0: hard copy every target_every steps; <1: Polyak every step
    target_every: int = 200  # env steps between hard target updates
    max_grad_norm: float = 10.0  # gradient clipping
    log_every: int = 100  # env steps between logged rows
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)
    progress: bool = True  # show a tqdm progress bar


def train_idqn(env_or_config: Any = None, config: IDQNConfig | None = None, *,
               return_agent: bool = False,
               select_fn: Callable | None = None,
               td_target_fn: Callable | None = None,
               update_target_fn: Callable | None = None):
    """Train independent DQN learners (one shared Q-network with agent ids) on a batched
    grid world; returns a DataFrame with one row per logged step.

    ``env_or_config`` is a ``VecMultiAgentGridWorld`` (its ``num_envs`` is used) or an
    :class:`IDQNConfig` (the env is built from ``config.env_kwargs``).  Every agent picks
    its action from ``Q(o_i, .)`` alone and learns from its own reward with its own TD
    target, treating the other agents as part of the environment.

    Logged columns: ``step`` (env steps), ``transitions``, ``episode_return`` (mean
    team return of the episodes finished since the last row), ``success``,
    ``loss/q``, ``q_mean``, ``epsilon``, ``sps`` (env steps per second), ``seed``.
    ``select_fn``, ``td_target_fn`` and ``update_target_fn`` swap in your own
    :func:`epsilon_greedy`, :func:`dqn_td_target` and :func:`update_target`.
    With ``return_agent=True`` returns ``(df, q_net)``.
    Taught in notebooks/02_independent_learners.
    """
    import copy

    import torch
    from tqdm.auto import tqdm

    from course_lib.buffers import ReplayBuffer
    from course_lib.nets import QNetwork

    if isinstance(env_or_config, IDQNConfig):
        cfg, env = env_or_config, None
    else:
        cfg, env = config or IDQNConfig(), env_or_config
    select_fn = select_fn or epsilon_greedy
    td_target_fn = td_target_fn or dqn_td_target
    update_target_fn = update_target_fn or update_target
    if cfg.torch_threads is not None:
        torch.set_num_threads(int(cfg.torch_threads))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if env is None:
        env = VecMultiAgentGridWorld(cfg.num_envs, seed=cfg.seed, **cfg.env_kwargs)
    B, N, D, A = env.num_envs, env.num_agents, env.obs_dim, env.n_actions

    q_net = QNetwork(D, A, N, hidden=cfg.hidden, agent_id=cfg.agent_id)
    target_net = copy.deepcopy(q_net)
    optimizer = torch.optim.Adam(q_net.parameters(), lr=cfg.lr)
    buffer = ReplayBuffer(cfg.buffer_size, N, D)

    obs, _ = env.reset(seed=cfg.seed)
    rows: list[dict] = []
    returns, successes, losses, q_means = [], [], [], []
    start = time.perf_counter()
    bar = tqdm(range(1, cfg.total_steps + 1), desc="IDQN", disable=not cfg.progress, mininterval=1.0)
    for step in bar:
        # ---- act: epsilon-greedy on each agent's own Q-values
        epsilon = linear_schedule(cfg.eps_start, cfg.eps_end, int(cfg.eps_fraction * cfg.total_steps), step)
        with torch.no_grad():
            q_values = q_net(torch.as_tensor(obs)).numpy()  # [B, N, A]
        actions = np.asarray(select_fn(q_values, epsilon, rng), dtype=np.int64)
        next_obs, rewards, terms, truncs, info = env.step(actions)
        # final_obs is the true next obs of finished episodes; only termination stops bootstrapping
        buffer.add(obs, actions, rewards, info["final_obs"], terms)
        obs = next_obs
        done = info["done"]
        if done.any():
            returns.extend(info["team_return"][done].tolist())
            successes.extend(info["success"][done].astype(float).tolist())

        # ---- learn: one gradient step on a uniform minibatch
        if step > cfg.learning_starts and step % cfg.train_every == 0:
            batch = buffer.sample(cfg.batch_size, rng)
            b_obs = torch.as_tensor(batch["obs"])
            b_next = torch.as_tensor(batch["next_obs"])
            b_act = torch.as_tensor(batch["actions"])
            b_rew = torch.as_tensor(batch["rewards"])
            b_done = torch.as_tensor(batch["dones"])
            with torch.no_grad():
                target = td_target_fn(b_rew, target_net(b_next), b_done, cfg.gamma)  # [b, N]
            q_taken = q_net(b_obs).gather(-1, b_act.unsqueeze(-1)).squeeze(-1)  # [b, N]
            loss = torch.nn.functional.mse_loss(q_taken, torch.as_tensor(target, dtype=torch.float32))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(q_net.parameters(), cfg.max_grad_norm)
            optimizer.step()
            losses.append(loss.item())
            q_means.append(q_taken.mean().item())
            # ---- target network: hard copy every target_every steps, or Polyak every step
            if cfg.target_tau < 1.0:
                update_target_fn(target_net, q_net, cfg.target_tau)
            elif step % cfg.target_every == 0:
                update_target_fn(target_net, q_net, 1.0)

        # ---- log one row
        if step % cfg.log_every == 0 or step == cfg.total_steps:
            sps = step / max(time.perf_counter() - start, 1e-9)
            rows.append({
                "step": step,
                "transitions": step * B * N,
                "episode_return": float(np.mean(returns)) if returns else np.nan,
                "success": float(np.mean(successes)) if successes else np.nan,
                "loss/q": float(np.mean(losses)) if losses else np.nan,
                "q_mean": float(np.mean(q_means)) if q_means else np.nan,
                "epsilon": epsilon,
                "sps": sps,
                "seed": cfg.seed,
            })
            if returns:
                bar.set_postfix(ret=f"{rows[-1]['episode_return']:.2f}", eps=f"{epsilon:.2f}", refresh=False)
            returns, successes, losses, q_means = [], [], [], []
    bar.close()
    df = pd.DataFrame(rows)
    return (df, q_net) if return_agent else df


class GreedyQPolicy(Policy):
    """The greedy policy of a Q-network, ``a_i = argmax_a Q(o_i, a)``, for a course env
    (works with :func:`course_lib.envs.policies.evaluate_policy`).
    Taught in notebooks/02_independent_learners.
    """

    name = "greedy"

    def __init__(self, env, q_net, epsilon: float = 0.0, seed: int | None = None):
        super().__init__(env, seed)
        self.q_net, self.epsilon = q_net, float(epsilon)

    def batch_actions(self, obs=None):
        import torch

        if isinstance(obs, dict):  # single PettingZoo env
            obs = np.stack([obs[a] for a in self.env.possible_agents])[None]
        with torch.no_grad():
            q = self.q_net(torch.as_tensor(np.asarray(obs, dtype=np.float32))).numpy()
        return epsilon_greedy(q, self.epsilon, self.rng)


def evaluate_idqn(q_net, env_kwargs: dict | None = None, num_episodes: int = 1_000,
                  num_envs: int = 64, seed: int = 12345, policies=("random", "heuristic")) -> pd.DataFrame:
    """Team return of the greedy IDQN policy and of reference policies on fresh episodes.

    Returns one row per policy with ``team_return`` (mean), its standard error ``sem``,
    a 95% interval ``ci_low``/``ci_high``, ``success`` and ``episodes``; every policy
    is evaluated on the same seeds.  The row ``idqn`` is the learned greedy policy.
    Taught in notebooks/02_independent_learners.
    """
    env_kwargs = dict(env_kwargs or {})
    rows = []
    candidates: list[tuple[str, Callable[[Any], Policy]]] = [("idqn", lambda e: GreedyQPolicy(e, q_net, seed=seed))]
    candidates += [(p, lambda e, p=p: make_policy(p, e, seed=seed)) for p in policies]
    for name, build in candidates:
        env = VecMultiAgentGridWorld(num_envs, seed=seed, **env_kwargs)
        returns, successes = _episode_stats(env, build(env), num_episodes, seed)
        sem = float(returns.std(ddof=1) / np.sqrt(returns.size))
        rows.append({"policy": name, "team_return": float(returns.mean()), "sem": sem,
                     "ci_low": float(returns.mean() - 1.96 * sem), "ci_high": float(returns.mean() + 1.96 * sem),
                     "success": float(successes.mean()), "episodes": int(returns.size)})
    return pd.DataFrame(rows).set_index("policy")


def _episode_stats(env, policy: Policy, num_episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Team returns and successes of the first ``num_episodes`` finished episodes."""
    obs, _ = env.reset(seed=seed)
    returns, successes = [], []
    while len(returns) < num_episodes:
        obs, _, _, _, info = env.step(policy(obs))
        done = info["done"]
        returns.extend(info["team_return"][done].tolist())
        successes.extend(info["success"][done].astype(float).tolist())
    return np.asarray(returns[:num_episodes]), np.asarray(successes[:num_episodes])
