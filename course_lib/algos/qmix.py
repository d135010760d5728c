"""Value decomposition: VDN and QMIX on the batched course environments.

Taught in notebooks/03_value_decomposition.  Read top to bottom:

1. mixers -- :func:`vdn_mix` (Sunehag et al. 2018, student TODO), :class:`QMixer` and
   its forward pass :func:`qmix_forward` (Rashid et al. 2018, student TODO);
2. :func:`monotonicity_check` -- ``dQ_tot / dQ_i`` with autograd (student TODO);
3. :func:`joint_td_target` -- the TD target of ``Q_tot`` (student TODO);
4. agent networks -- the feed-forward :class:`course_lib.nets.QNetwork` of notebook 02
   (one network shared by all agents, one-hot agent id) or :class:`RecurrentQNetwork`;
5. :class:`Config` and :func:`train` -- one loop for IQL (``mixer="none"``), VDN and
   QMIX, built from the DQN blocks of notebook 02 (``ReplayBuffer``, ``QNetwork``,
   ``linear_schedule``, ``hard_update``, ``td_target``);
6. inspection -- :func:`q_tot_table`, :func:`greedy_actions`, :func:`greedy_return`,
   :func:`two_step_tables` and :func:`matrix_game_table`.

Every function a student writes in the notebook has the same name and signature here;
the notebook's hidden tests compare the two on random inputs.
"""
from __future__ import annotations

import copy
import itertools
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.buffers import ReplayBuffer
from course_lib.nets import QNetwork, agent_one_hot
from course_lib.training import hard_update, linear_schedule, td_target

__all__ = [
    "vdn_mix",
    "QMixer",
    "qmix_forward",
    "monotonicity_check",
    "joint_td_target",
    "RecurrentQNetwork",
    "Config",
    "Learner",
    "train",
    "q_tot_table",
    "greedy_actions",
    "greedy_return",
    "two_step_tables",
    "matrix_game_table",
    "TWO_STEP_QMIX_PAPER",
    "MATRIX_GAME_SETTINGS",
]

# QMIX paper (Rashid et al. 2018), two-step game: QMIX's learned Q_tot in the first
# state (rows: agent 1's action, which picks 2A or 2B; columns: agent 2's action).
TWO_STEP_QMIX_PAPER = np.array([[6.93, 6.93], [7.92, 7.92]])

# Settings of :func:`train` for the matrix games of notebooks/03_value_decomposition and
# bench/value_based.py (use with ``VecTwoStepGame(32)`` / ``VecMatrixGame(32, ...)``).
# As in the QMIX paper's two-step experiment, actions are uniformly random throughout
# training (epsilon = 1) and gamma = 0.99; the network sizes and the optimiser settings
# are ours: large batches of iid transitions let ~200 gradient steps reach the fixed
# point in about a second on one core.
MATRIX_GAME_SETTINGS = dict(
    total_steps=60, learning_starts=10, gradient_steps=4, batch_size=512, buffer_size=5_000,
    lr=1e-2, target_every=30, hidden=(32,), embed_dim=32, hypernet_layers=2,
    eps_start=1.0, eps_end=1.0, gamma=0.99, log_every=10,
)


# =============================================================================
# 1. Mixers
# =============================================================================
def vdn_mix(agent_qs: torch.Tensor) -> torch.Tensor:
    """VDN (Sunehag et al. 2018): ``Q_tot = sum_i Q_i``.

    ``agent_qs`` is ``[..., N]`` (the chosen action's value of every agent); returns
    ``[..., 1]``.
    Taught in notebooks/03_value_decomposition.
    """
    return agent_qs.sum(dim=-1, keepdim=True)


class QMixer(nn.Module):
    """The QMIX mixing network (Rashid et al. 2018).

    ``Q_tot = w2(s)^T ELU(W1(s)^T q + b1(s)) + V(s)`` where ``q = [Q_1, ..., Q_N]`` and
    the weights ``W1(s) [N, embed]`` and ``w2(s) [embed, 1]`` are produced by
    *hypernetworks* from the global state ``s`` and made non-negative with ``abs``, so
    ``Q_tot`` is monotonic in every ``Q_i``.  The biases are state-conditioned too:
    ``b1(s)`` is one linear layer and ``V(s)`` a two-layer network, as in the paper.

    Sub-modules (each maps ``states [B, state_dim]`` to a flat output):

    * ``hyper_w1 -> [B, N * embed_dim]`` (one linear layer, or ``Linear-ReLU-Linear``
      with ``hypernet_layers=2``), read as ``W1 [B, N, embed_dim]``;
    * ``hyper_b1 -> [B, embed_dim]``;
    * ``hyper_w2 -> [B, embed_dim]`` (same depth as ``hyper_w1``), read as ``[B, embed_dim, 1]``;
    * ``hyper_v -> [B, 1]`` (``Linear-ReLU-Linear``).

    ``forward(agent_qs [..., N], states [..., state_dim]) -> [..., 1]``.
    Taught in notebooks/03_value_decomposition.
    """

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_layers: int = 2,
                 hypernet_embed: int = 64):
        super().__init__()
        if hypernet_layers not in (1, 2):
            raise ValueError(f"hypernet_layers must be 1 or 2, got {hypernet_layers}")
        self.n_agents, self.state_dim = int(n_agents), int(state_dim)
        self.embed_dim, self.hypernet_layers = int(embed_dim), int(hypernet_layers)

        def hyper(out_dim: int) -> nn.Module:
            if hypernet_layers == 1:
                return nn.Linear(self.state_dim, out_dim)
            return nn.Sequential(nn.Linear(self.state_dim, hypernet_embed), nn.ReLU(),
                                 nn.Linear(hypernet_embed, out_dim))

        self.hyper_w1 = hyper(self.embed_dim * self.n_agents)
        self.hyper_b1 = nn.Linear(self.state_dim, self.embed_dim)
        self.hyper_w2 = hyper(self.embed_dim)
        self.hyper_v = nn.Sequential(nn.Linear(self.state_dim, self.embed_dim), nn.ReLU(),
                                     nn.Linear(self.embed_dim, 1))

    def forward(self, agent_qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        lead = agent_qs.shape[:-1]
        q_tot = qmix_forward(self, agent_qs.reshape(-1, self.n_agents), states.reshape(-1, self.state_dim))
        return q_tot.reshape(*lead, 1)

    def extra_repr(self) -> str:
        return f"n_agents={self.n_agents}, state_dim={self.state_dim}, embed_dim={self.embed_dim}"


def qmix_forward(mixer: QMixer, agent_qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """The QMIX mixing network's forward pass with the hypernetworks of ``mixer``.

    ``agent_qs [B, N]``, ``states [B, state_dim]`` -> ``Q_tot [B, 1]``::

        W1 = |hyper_w1(s)| as [B, N, E]     b1 = hyper_b1(s) as [B, 1, E]
        h  = ELU(q [B, 1, N] @ W1 + b1)     [B, 1, E]
        w2 = |hyper_w2(s)| as [B, E, 1]     V  = hyper_v(s)  as [B, 1, 1]
        Q_tot = h @ w2 + V                  [B, 1]

    Taught in notebooks/03_value_decomposition.
    """
    B, N, E = agent_qs.shape[0], mixer.n_agents, mixer.embed_dim
    w1 = torch.abs(mixer.hyper_w1(states)).view(B, N, E)
    b1 = mixer.hyper_b1(states).view(B, 1, E)
    hidden = F.elu(torch.bmm(agent_qs.view(B, 1, N), w1) + b1)
    w2 = torch.abs(mixer.hyper_w2(states)).view(B, E, 1)
    v = mixer.hyper_v(states).view(B, 1, 1)
    return (torch.bmm(hidden, w2) + v).view(B, 1)


# =============================================================================
# 2. Monotonicity, checked with autograd
# =============================================================================
def monotonicity_check(mixer: Callable, agent_qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """``dQ_tot / dQ_i`` for every sample and agent: a tensor ``[B, N]``.

    ``mixer(agent_qs [B, N], states [B, S]) -> [B, 1]`` is any mixer that treats samples
    independently (a ``QMixer``, or ``lambda q, s: vdn_mix(q)``).  The mixer is monotonic
    on these inputs when every entry is ``>= 0``.  Neither the inputs nor the mixer's
    parameter gradients are changed.
    Taught in notebooks/03_value_decomposition.
    """
    qs = agent_qs.detach().clone().requires_grad_(True)
    q_tot = mixer(qs, states)
    # samples are independent, so the gradient of the sum holds every sample's gradient
    (grad,) = torch.autograd.grad(q_tot.sum(), qs)
    return grad


# =============================================================================
# 3. The joint TD target
# =============================================================================
def joint_td_target(rewards, target_q_tot_next, dones, gamma: float):
    """``y = r + gamma * (1 - done) * Q_tot^target(s', argmax_a' Q(s', a'))``.

    All inputs broadcast (``[B, 1]`` or ``[B]``); ``dones`` is 1.0 where the episode
    ended with this transition (nothing is bootstrapped there).  Torch in, torch out.
    The team's target of VDN and QMIX is the DQN target of notebook 02 applied to
    ``Q_tot`` (:func:`course_lib.training.td_target`).
    Taught in notebooks/03_value_decomposition.
    """
    return td_target(rewards, target_q_tot_next, dones, gamma)


# =============================================================================
# 4. Agent networks
# =============================================================================
class RecurrentQNetwork(nn.Module):
    """A GRU agent network shared by all agents (the DRQN agent of QMIX's experiments):
    ``[obs_i, one-hot i] -> Linear -> ReLU -> GRUCell -> Linear -> Q_i``.

    ``forward(obs [B, N, obs_dim], hidden [B, N, H]) -> (Q [B, N, n_actions], hidden')``.
    Taught in notebooks/03_value_decomposition (an option of :func:`train`).
    """

    recurrent = True

    def __init__(self, obs_dim: int, n_actions: int, num_agents: int, hidden_dim: int = 64):
        super().__init__()
        self.obs_dim, self.n_actions, self.num_agents = int(obs_dim), int(n_actions), int(num_agents)
        self.hidden_dim = int(hidden_dim)
        self.fc1 = nn.Linear(self.obs_dim + self.num_agents, self.hidden_dim)
        self.rnn = nn.GRUCell(self.hidden_dim, self.hidden_dim)
        self.fc2 = nn.Linear(self.hidden_dim, self.n_actions)

    def init_hidden(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.num_agents, self.hidden_dim)

    def forward(self, obs: torch.Tensor, hidden: torch.Tensor):
        obs = torch.as_tensor(obs, dtype=torch.float32)
        B, N = obs.shape[0], self.num_agents
        x = torch.cat([obs, agent_one_hot(N, (B,))], dim=-1)
        h = self.rnn(F.relu(self.fc1(x.reshape(B * N, -1))), hidden.reshape(B * N, -1))
        return self.fc2(h).view(B, N, -1), h.view(B, N, -1)


# =============================================================================
# 5. Training: IQL, VDN and QMIX in one loop
# =============================================================================
@dataclass
class Config:
    """Hyperparameters of :func:`train` (CleanRL-style: every knob in one place)."""

    seed: int = 0  # seeds torch, numpy and the environment
    total_steps: int = 2_000  # vectorised env steps (each adds num_envs joint transitions)
    buffer_size: int = 50_000  # replay capacity in joint transitions
    batch_size: int = 128  # joint transitions per gradient step
    gamma: float = 0.99  # discount (0.99 as in the QMIX paper)
    lr: float = 1e-3  # Adam learning rate (agents and mixer together)
    hidden: tuple = (64, 64)  # hidden layers of the feed-forward agent network
    recurrent: bool = False  # GRU agents (RecurrentQNetwork) instead of the MLP
    rnn_hidden: int = 64  # GRU agents: hidden size
    embed_dim: int = 32  # QMIX: width of the mixing network
    hypernet_layers: int = 2  # QMIX: depth of the weight hypernetworks (1 or 2)
    double_q: bool = True  # pick a' with the online agents, value it with the target ones
    eps_start: float = 1.0  # epsilon-greedy: initial epsilon ...
    eps_end: float = 0.05  # ... annealed linearly to this ...
    eps_fraction: float = 0.5  # ... over this fraction of total_steps
    learning_starts: int = 50  # env steps of pure exploration before learning
    train_every: int = 1  # env steps between learning phases
    gradient_steps: int = 1  # gradient steps per learning phase
    target_every: int = 100  # gradient steps between hard target-network copies
    max_grad_norm: float = 10.0  # gradient clipping (agents and mixer together)
    log_every: int = 50  # env steps between logged rows
    eval_episodes: int = 0  # greedy evaluation episodes per logged row (0: none)
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)
    progress: bool = True  # show a tqdm progress bar


@dataclass
class Learner:
    """What :func:`train` learned: the agents' network, the mixer and the settings.

    ``mixer`` is a :class:`QMixer` (QMIX), ``"vdn"`` or ``None`` (IQL).
    """

    q_net: nn.Module
    mixer: Any
    kind: str
    config: Config

    def agent_qs(self, obs, hidden=None) -> torch.Tensor:
        """Per-agent Q-values ``[B, N, A]`` of observations ``[B, N, D]`` (no gradient)."""
        with torch.no_grad():
            obs = torch.as_tensor(np.asarray(obs, dtype=np.float32))
            if getattr(self.q_net, "recurrent", False):
                if hidden is None:
                    hidden = self.q_net.init_hidden(obs.shape[0])
                return self.q_net(obs, hidden)[0]
            return self.q_net(obs)

    def mix(self, chosen_qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """``Q_tot [..., 1]`` of chosen per-agent values ``[..., N]`` (IQL: their sum)."""
        if isinstance(self.mixer, nn.Module):
            return self.mixer(chosen_qs, states)
        return vdn_mix(chosen_qs)


def _mix(kind: str, mixer, chosen_qs, states):
    return mixer(chosen_qs, states) if kind == "qmix" else vdn_mix(chosen_qs)


def train(env, config: Config | None = None, mixer: str = "qmix", *, eval_env=None,
          return_learner: bool = False, **overrides):
    """Train IQL (``mixer="none"``), VDN (``"vdn"``) or QMIX (``"qmix"``) on a batched
    course environment; returns a DataFrame with one row per logged step.

    ``env`` is a batched twin (``Vec*``) with a global ``state()``; keyword
    ``overrides`` replace fields of ``config``.  All agents share one Q-network (with a
    one-hot agent id) and act epsilon-greedily on their own ``Q_i(o_i, .)``.  Learning
    (centralised): one replay buffer of joint transitions with the global state;

    * VDN / QMIX: ``Q_tot = mix(Q_1(o_1, a_1), ..., Q_N(o_N, a_N); s)`` is regressed on
      :func:`joint_td_target` with the target agents and target mixer, the next joint
      action chosen greedily per agent (double Q-learning with ``double_q``);
    * IQL: every agent regresses its own ``Q_i`` on ``r + gamma max Q_i'`` (notebook 02).

    An episode that ends -- by termination or at the time limit -- is not bootstrapped:
    the course tasks put the time in the global state, so the horizon is part of the task.
    With ``recurrent=True`` the GRU agents learn from the hidden state stored at acting
    time, one step at a time (R2D2's "stored state", sequences of length 1).

    Logged columns: ``step`` (env steps), ``episodes``, ``episode_return`` (mean return
    per agent of the episodes finished since the last row -- the shared reward summed
    over the episode), ``eval_return`` (greedy policy, when ``eval_episodes > 0``),
    ``loss/td``, ``q_tot`` (mean ``Q_tot`` of the batch), ``epsilon``, ``sps`` (env steps
    per second), ``seed``, ``mixer``.  With ``return_learner=True`` returns
    ``(df, Learner)``.
    Taught in notebooks/03_value_decomposition.
    """
    from tqdm.auto import tqdm

    cfg = Config(**{**asdict(config or Config()), **overrides})
    kind = {"none": "iql", "iql": "iql", "vdn": "vdn", "qmix": "qmix"}.get(str(mixer).lower())
    if kind is None:
        raise ValueError(f"mixer must be 'vdn', 'qmix' or 'none' (IQL), got {mixer!r}")
    if cfg.torch_threads is not None:
        torch.set_num_threads(int(cfg.torch_threads))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    B, N, D, A = env.num_envs, env.num_agents, env.obs_dim, env.n_actions
    obs, _ = env.reset(seed=cfg.seed)
    state = env.state()
    S = state.shape[1]

    # ---- networks: shared agents (+ mixer), their targets, one optimiser
    if cfg.recurrent:
        q_net: nn.Module = RecurrentQNetwork(D, A, N, cfg.rnn_hidden)
    else:
        q_net = QNetwork(D, A, N, hidden=cfg.hidden, agent_id=True)
    mix_net = QMixer(N, S, cfg.embed_dim, cfg.hypernet_layers) if kind == "qmix" else None
    target_q, target_mix = copy.deepcopy(q_net), copy.deepcopy(mix_net)
    params = list(q_net.parameters()) + (list(mix_net.parameters()) if mix_net is not None else [])
    optimizer = torch.optim.Adam(params, lr=cfg.lr, foreach=True)
    extra = {"state": ((S,), np.float32), "next_state": ((S,), np.float32)}
    if cfg.recurrent:
        extra["hidden"] = ((N, cfg.rnn_hidden), np.float32)
    buffer = ReplayBuffer(cfg.buffer_size, N, D, extra=extra)
    hidden = q_net.init_hidden(B) if cfg.recurrent else None
    if cfg.eval_episodes and eval_env is None:  # a twin of env with the same settings
        eval_env = type(env)(B, **env.config)

    def q_values(net, o, h):  # -> (Q [b, N, A], next hidden or None)
        return net(o, h) if cfg.recurrent else (net(o), None)

    learner = Learner(q_net, {"qmix": mix_net, "vdn": "vdn", "iql": None}[kind], kind, cfg)

    rows: list[dict] = []
    returns, losses, q_tots = [], [], []
    episodes, grad_steps = 0, 0
    start = time.perf_counter()
    bar = tqdm(range(1, cfg.total_steps + 1), desc=f"{kind.upper()} seed {cfg.seed}",
               disable=not cfg.progress, mininterval=1.0, leave=False)
    for step in bar:
        # ---- act: decentralised, epsilon-greedy on each agent's own Q-values
        epsilon = linear_schedule(cfg.eps_start, cfg.eps_end, int(cfg.eps_fraction * cfg.total_steps), step)
        with torch.no_grad():
            q, next_hidden = q_values(q_net, torch.as_tensor(obs), hidden)
        greedy = q.argmax(-1).numpy()
        explore = rng.random((B, N)) < epsilon
        actions = np.where(explore, rng.integers(0, A, size=(B, N)), greedy)
        next_obs, rewards, _, _, info = env.step(actions)
        done = info["done"]
        next_state = env.state()
        fields = dict(state=state, next_state=next_state)
        if cfg.recurrent:
            fields["hidden"] = hidden.numpy()
            next_hidden = next_hidden * torch.as_tensor(~done, dtype=torch.float32)[:, None, None]
        # the shared reward (mean over agents); an ended episode is not bootstrapped
        buffer.add(obs, actions, rewards.mean(axis=1), info["final_obs"], done, **fields)
        obs, state, hidden = next_obs, next_state, next_hidden
        if done.any():
            episodes += int(done.sum())
            returns.extend(info["episode_return_mean"][done].tolist())

        # ---- learn: centralised, on uniform minibatches of joint transitions
        if step > cfg.learning_starts and step % cfg.train_every == 0:
            for _ in range(cfg.gradient_steps):
                loss, q_tot = _learn(buffer.sample(cfg.batch_size, rng), kind, cfg, q_net, mix_net,
                                     target_q, target_mix, q_values)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                grad_steps += 1
                losses.append(loss.item())
                q_tots.append(q_tot)
                if grad_steps % cfg.target_every == 0:
                    hard_update(target_q, q_net)
                    if mix_net is not None:
                        hard_update(target_mix, mix_net)

        # ---- log one row
        if step % cfg.log_every == 0 or step == cfg.total_steps:
            row = {
                "step": step,
                "episodes": episodes,
                "episode_return": float(np.mean(returns)) if returns else np.nan,
                "eval_return": (greedy_return(learner, eval_env, cfg.eval_episodes,
                                              seed=cfg.seed + 10_000) if cfg.eval_episodes else np.nan),
                "loss/td": float(np.mean(losses)) if losses else np.nan,
                "q_tot": float(np.mean(q_tots)) if q_tots else np.nan,
                "epsilon": epsilon,
                "sps": step * B / max(time.perf_counter() - start, 1e-9),
                "seed": cfg.seed,
                "mixer": kind,
            }
            rows.append(row)
            bar.set_postfix(ret=f"{row['episode_return']:.2f}", eps=f"{epsilon:.2f}", refresh=False)
            returns, losses, q_tots = [], [], []
    bar.close()
    df = pd.DataFrame(rows)
    if return_learner:
        return df, learner
    return df


def _learn(batch, kind, cfg, q_net, mix_net, target_q, target_mix, q_values):
    """TD loss of one minibatch; returns ``(loss, mean Q_tot)``."""
    obs = torch.as_tensor(batch["obs"])
    next_obs = torch.as_tensor(batch["next_obs"])
    actions = torch.as_tensor(batch["actions"])
    rewards = torch.as_tensor(batch["rewards"])  # [b, N], the shared reward in every column
    dones = torch.as_tensor(batch["dones"])
    state, next_state = torch.as_tensor(batch["state"]), torch.as_tensor(batch["next_state"])
    hidden = torch.as_tensor(batch["hidden"]) if cfg.recurrent else None

    q, h_next = q_values(q_net, obs, hidden)
    chosen = q.gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # [b, N]
    with torch.no_grad():
        h_target = q_values(target_q, obs, hidden)[1] if cfg.recurrent else None
        next_target = q_values(target_q, next_obs, h_target)[0]  # [b, N, A]
        if cfg.double_q:
            next_online = q_values(q_net, next_obs, h_next.detach() if cfg.recurrent else None)[0]
            best = next_online.argmax(-1, keepdim=True)
            next_value = next_target.gather(-1, best).squeeze(-1)  # [b, N]
        else:
            next_value = next_target.max(-1).values
    if kind == "iql":  # every agent its own TD target
        target = td_target(rewards, next_value, dones, cfg.gamma)
        return F.mse_loss(chosen, target), float(chosen.detach().sum(-1).mean())
    q_tot = _mix(kind, mix_net, chosen, state)  # [b, 1]
    with torch.no_grad():
        next_tot = _mix(kind, target_mix, next_value, next_state)
        target = joint_td_target(rewards[:, :1], next_tot, dones[:, :1], cfg.gamma)
    return F.mse_loss(q_tot, target), float(q_tot.detach().mean())


# =============================================================================
# 6. Inspecting what was learned
# =============================================================================
def greedy_actions(learner: Learner, obs, hidden=None) -> np.ndarray:
    """Every agent's greedy action ``argmax_a Q_i(o_i, a)``: ``[B, N]`` from obs ``[B, N, D]``.
    Used in notebooks/03_value_decomposition."""
    return learner.agent_qs(obs, hidden).argmax(-1).numpy()


def greedy_return(learner: Learner, env, episodes: int = 64, seed: int | None = 0,
                  max_steps: int = 10_000) -> float:
    """Mean return per agent of the greedy decentralised policy over ``episodes``
    episodes of the batched ``env``.

    Runs rounds of one episode per environment (``env.reset(seed=seed + round)``), so
    short episodes are not over-counted; GRU memory starts from zeros.
    Used in notebooks/03_value_decomposition.
    """
    B = env.num_envs
    recurrent = getattr(learner.q_net, "recurrent", False)
    returns: list[float] = []
    for round_ in range(-(-int(episodes) // B)):
        obs, _ = env.reset(seed=None if seed is None else seed + round_)
        hidden = learner.q_net.init_hidden(B) if recurrent else None
        pending = np.ones(B, dtype=bool)  # envs whose first episode is still running
        for _ in range(max_steps):
            with torch.no_grad():
                if recurrent:
                    q, hidden = learner.q_net(torch.as_tensor(obs), hidden)
                else:
                    q = learner.q_net(torch.as_tensor(obs))
            obs, _, _, _, info = env.step(q.argmax(-1).numpy())
            first = info["done"] & pending
            returns.extend(info["episode_return_mean"][first].tolist())
            pending &= ~info["done"]
            if not pending.any():
                break
    return float(np.mean(returns[:episodes])) if returns else float("nan")


def q_tot_table(learner: Learner, obs, state) -> np.ndarray:
    """``Q_tot`` of every joint action in one situation: an array ``[A] * N``.

    ``obs [N, D]`` holds every agent's observation and ``state [S]`` the global state
    (feed-forward agents).  For IQL the table is the sum of the agents' values.
    Used in notebooks/03_value_decomposition.
    """
    obs = np.asarray(obs, dtype=np.float32)[None]
    qs = learner.agent_qs(obs)[0]  # [N, A]
    N, A = qs.shape
    joint = torch.as_tensor(list(itertools.product(range(A), repeat=N)))  # [A^N, N]
    chosen = qs[torch.arange(N)[None, :], joint]  # [A^N, N]
    states = torch.as_tensor(np.asarray(state, dtype=np.float32)).expand(joint.shape[0], -1)
    with torch.no_grad():
        return learner.mix(chosen, states).reshape([A] * N).numpy()


def two_step_tables(learner: Learner) -> dict[str, np.ndarray]:
    """``Q_tot`` tables of the two-step game in its three states: ``{"1", "2A", "2B"}``
    (rows: agent 1's action, columns: agent 2's action).
    Used in notebooks/03_value_decomposition (compare with :data:`TWO_STEP_QMIX_PAPER`)."""
    tables = {}
    for index, name in enumerate(["1", "2A", "2B"]):
        one_hot = np.eye(3, dtype=np.float32)[index]
        tables[name] = q_tot_table(learner, np.stack([one_hot, one_hot]), one_hot)
    return tables


def matrix_game_table(learner: Learner, env) -> np.ndarray:
    """``Q_tot`` table of a one-shot ``VecMatrixGame`` (its first-round observation), e.g.
    the QTRAN game of Son et al. (2019) or the climbing game.
    Used in notebooks/03_value_decomposition."""
    obs, _ = env.reset()
    return q_tot_table(learner, obs[0], env.state()[0])
