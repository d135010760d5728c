"""Value decomposition: VDN and QMIX on the batched course environments.

Taught in notebooks/03_value_decomposition.  Read top to bottom:

1. mixers -- :func:`vdn_mix` (Sunehag et al. 2018, student TODO), :class:`QMixer` and
   its forward pass :func:`qmix_forward` (Rashid et al. 2018, student TODO);
2. :func:`monotonicity_check` -- ``dQ_tot / dQ_i`` with autograd (student TODO);
3. :func:`joint_td_target` -- the TD target of ``Q_tot`` (student TODO);
4. agent networks -- the feed-forward :class:`course_lib.nets.QNetwork` of notebook 02
   (one network shared by all agents, one-hot agent id) or :class:`RecurrentQNetwork`;
5. :class:`Config`, :class:`Parts` and :class:`ValueDecomposition` -- one loop for IQL
   (``mixer="none"``), VDN and QMIX, built from the DQN blocks of notebook 02
   (``ReplayBuffer``, ``QNetwork``, ``linear_schedule``, ``hard_update``), which calls
   the parts ``vdn_mix``, ``qmix_forward`` and ``joint_td_target``; :func:`train`::

       run = qmix.train("two_step", qmix.Config(mixer="qmix"), parts=qmix.Parts(qmix_forward=my_forward))
       run.curve, evaluate(run.policy, "two_step", episodes=1), qmix.two_step_tables(run)

6. inspection -- :func:`q_tot_table`, :func:`two_step_tables` and :func:`matrix_game_table`.

Every function a student writes in the notebook has the same name and signature here;
the notebook's hidden tests compare the two on random inputs.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import learning
from course_lib.buffers import ReplayBuffer
from course_lib.evaluation import evaluate
from course_lib.nets import QNetwork, agent_one_hot
from course_lib.policy import Policy
from course_lib.training import linear_schedule

__all__ = [
    "vdn_mix",
    "QMixer",
    "qmix_forward",
    "monotonicity_check",
    "joint_td_target",
    "RecurrentQNetwork",
    "Config",
    "Parts",
    "ValueDecomposition",
    "AgentQPolicy",
    "train",
    "q_tot_table",
    "two_step_tables",
    "matrix_game_table",
]

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
    The team's target of VDN and QMIX is the DQN target of notebook 02 applied to ``Q_tot``.
    Taught in notebooks/03_value_decomposition.
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    target_q_tot_next = torch.as_tensor(target_q_tot_next, dtype=torch.float32)
    dones = torch.as_tensor(dones, dtype=torch.float32)
    return rewards + gamma * (1.0 - dones) * target_q_tot_next


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
    """IQL, VDN or QMIX (every step count is in environment steps, summed over ``num_envs``)."""

    seed: int = 0  # seeds torch, numpy and the environments
    total_steps: int = 38_400  # environment steps (1,200 steps of 32 environments)
    mixer: str = "qmix"  # "qmix", "vdn" or "none" (independent learners, IQL)
    num_envs: int = 32  # environments stepped together
    buffer_size: int = 50_000  # replay capacity in joint transitions (one per environment step)
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
    learning_starts: int = 1_600  # environment steps of pure exploration before learning
    train_every: int = 32  # environment steps between learning phases (32: after every step of 32 envs)
    gradient_steps: int = 1  # gradient steps per learning phase
    target_every: int = 100  # GRADIENT steps between hard target-network copies
    max_grad_norm: float = 10.0  # gradient clipping (agents and mixer together)
    log_every: int = 1_600  # environment steps between curve rows
    eval_episodes: int = 0  # greedy evaluation episodes per curve row (0: none)
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)


@dataclass
class Parts:
    """The functions of notebook 03 that the loop calls (defaults: the references)."""

    vdn_mix: Callable = vdn_mix
    qmix_forward: Callable = qmix_forward
    joint_td_target: Callable = joint_td_target


MIXERS = ("none", "vdn", "qmix")


class AgentQPolicy(Policy):
    """Decentralised greedy acting, ``a_i = argmax_a Q_i(o_i, a)`` (ties to the first); GRU
    agents keep their memory, cleared where an episode ended.  ``greedy=False``:
    epsilon-greedy with ``epsilon``, as in training."""

    name = "qmix"

    def __init__(self, q_net: nn.Module, agents, obs_dim: int, epsilon: float = 0.05, seed: int = 0):
        super().__init__(agents, obs_dim)
        self.q_net, self.epsilon = q_net, float(epsilon)
        self.recurrent = getattr(q_net, "recurrent", False)
        self.rng = np.random.default_rng(seed)
        self.hidden = None

    def reset(self, num_envs: int) -> None:
        self.hidden = self.q_net.init_hidden(num_envs) if self.recurrent else None

    def act(self, obs, info=None, greedy=True):
        obs = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        with torch.no_grad():
            if self.recurrent:
                if self.hidden is None or self.hidden.shape[0] != obs.shape[0]:
                    self.reset(obs.shape[0])
                if info is not None and "done" in info:  # a new episode starts where the last one ended
                    running = torch.as_tensor(~np.asarray(info["done"]), dtype=torch.float32)
                    self.hidden = self.hidden * running[:, None, None]
                q, self.hidden = self.q_net(obs, self.hidden)
            else:
                q = self.q_net(obs)
        greedy_actions = q.argmax(-1).numpy()
        if greedy:
            return greedy_actions
        explore = self.rng.random(greedy_actions.shape) < self.epsilon
        return np.where(explore, self.rng.integers(0, q.shape[-1], size=greedy_actions.shape), greedy_actions)


class ValueDecomposition(learning.Learner):
    """IQL (``mixer="none"``), VDN or QMIX on a batched course task with a global state.

    All agents share one Q-network (with a one-hot agent id) and act epsilon-greedily on
    their own ``Q_i(o_i, .)``.  Learning is centralised, on one replay buffer of joint
    transitions with the global state:

    * VDN / QMIX: ``Q_tot = mix(Q_1(o_1, a_1), ..., Q_N(o_N, a_N); s)`` (the parts
      ``vdn_mix`` / ``qmix_forward``) is regressed on ``joint_td_target`` with the target
      agents and the target mixer, the next joint action picked greedily per agent
      (double Q-learning with ``double_q``);
    * IQL: every agent regresses its own ``Q_i`` on the same target built from its own
      ``Q_i^-`` (``joint_td_target`` applied agent by agent, notebook 02's target).

    An episode that ends -- by termination or at the time limit -- is not bootstrapped:
    the course tasks put the time in the global state, so the horizon is part of the
    task.  GRU agents (``recurrent=True``) learn from the hidden state stored at acting
    time, one step at a time (R2D2's "stored state", sequences of length 1).
    """

    name = "qmix"
    description = "IQL, VDN or QMIX (Config.mixer), one agent network shared by the agents (notebook 03)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts):
        super().__init__(task, config, parts)
        cfg = config
        if cfg.mixer not in MIXERS:
            raise ValueError(f"mixer must be 'vdn', 'qmix' or 'none' (IQL), got {cfg.mixer!r}")
        self.seed_torch()
        self.rng = np.random.default_rng(cfg.seed)
        self.env = task.batched(cfg.num_envs, seed=cfg.seed)
        env = self.env
        for knob in ("train_every", "log_every"):  # checked after each step of all envs
            if getattr(cfg, knob) % cfg.num_envs:
                raise ValueError(f"{knob}={getattr(cfg, knob)} must be a multiple of num_envs={cfg.num_envs}")
        N, D, A = env.num_agents, env.obs_dim, env.n_actions
        self.obs, _ = env.reset(seed=cfg.seed)
        self.state = env.state()
        S = self.state.shape[1]
        if cfg.recurrent:
            self.q_net: nn.Module = RecurrentQNetwork(D, A, N, cfg.rnn_hidden)
        else:
            self.q_net = QNetwork(D, A, N, hidden=cfg.hidden, agent_id=True)
        self.mixer = QMixer(N, S, cfg.embed_dim, cfg.hypernet_layers) if cfg.mixer == "qmix" else None
        self.target_q, self.target_mixer = copy.deepcopy(self.q_net), copy.deepcopy(self.mixer)
        self.params = list(self.q_net.parameters()) + (list(self.mixer.parameters()) if self.mixer else [])
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, foreach=True)
        extra = {"state": ((S,), np.float32), "next_state": ((S,), np.float32)}
        if cfg.recurrent:
            extra["hidden"] = ((N, cfg.rnn_hidden), np.float32)
        self.buffer = ReplayBuffer(cfg.buffer_size, N, D, extra=extra)
        self.hidden = self.q_net.init_hidden(env.num_envs) if cfg.recurrent else None
        self.grad_steps = 0
        self.since_log: dict[str, list] = {"returns": [], "loss": [], "q_tot": []}

    def epsilon(self, step: int) -> float:
        cfg = self.config
        return linear_schedule(cfg.eps_start, cfg.eps_end, int(cfg.eps_fraction * cfg.total_steps), step)

    def q_values(self, net: nn.Module, obs, hidden):
        """``(Q [b, N, A], next hidden or None)`` of agent network ``net``."""
        return net(obs, hidden) if self.config.recurrent else (net(obs), None)

    def mix(self, chosen_qs: torch.Tensor, states: torch.Tensor, target: bool = False) -> torch.Tensor:
        """``Q_tot [b, 1]`` of the chosen values ``[b, N]``: the part ``qmix_forward`` (with the
        online or target mixer) or ``vdn_mix``; IQL has no mixer (its table is the plain sum)."""
        if self.config.mixer == "qmix":
            return self.parts.qmix_forward(self.target_mixer if target else self.mixer, chosen_qs, states)
        if self.config.mixer == "vdn":
            return self.parts.vdn_mix(chosen_qs)
        return chosen_qs.sum(dim=-1, keepdim=True)

    def agent_qs(self, obs) -> torch.Tensor:
        """Per-agent Q-values ``[B, N, A]`` of observations ``[B, N, D]`` (no gradient; GRU memory from zeros)."""
        obs = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        with torch.no_grad():
            hidden = self.q_net.init_hidden(obs.shape[0]) if self.config.recurrent else None
            return self.q_values(self.q_net, obs, hidden)[0]

    # -- the loop --------------------------------------------------------------------
    def iterate(self) -> None:
        """One step of every environment, then learn and log when due."""
        self.collect()
        cfg = self.config
        if self.step > cfg.learning_starts and self.step % cfg.train_every == 0:
            self.learn()
        if self.step % cfg.log_every == 0 or self.step >= cfg.total_steps:
            self.log_block()

    def collect(self) -> None:
        """Decentralised acting, epsilon-greedy on each agent's own Q-values; store the joint
        transition with the global state and the shared reward."""
        B, N = self.env.num_envs, self.env.num_agents
        epsilon = self.epsilon(self.step + B)
        with torch.no_grad():
            q, next_hidden = self.q_values(self.q_net, torch.as_tensor(self.obs), self.hidden)
        explore = self.rng.random((B, N)) < epsilon
        actions = np.where(explore, self.rng.integers(0, q.shape[-1], size=(B, N)), q.argmax(-1).numpy())
        next_obs, rewards, _, _, info = self.env.step(actions)
        done = info["done"]
        next_state = self.env.state()
        fields = dict(state=self.state, next_state=next_state)
        if self.config.recurrent:
            fields["hidden"] = self.hidden.numpy()
            next_hidden = next_hidden * torch.as_tensor(~done, dtype=torch.float32)[:, None, None]
        # the shared reward (mean over agents); an ended episode is not bootstrapped
        self.buffer.add(self.obs, actions, rewards.mean(axis=1), info["final_obs"], done, **fields)
        self.obs, self.state, self.hidden = next_obs, next_state, next_hidden
        self.step += B
        if done.any():
            self.episode += int(done.sum())
            self.since_log["returns"].extend(info["episode_return_mean"][done].tolist())

    def learn(self) -> None:
        """``gradient_steps`` steps on the TD loss; hard target copies every ``target_every`` of them."""
        cfg = self.config
        for _ in range(cfg.gradient_steps):
            loss, q_tot = self.td_loss(self.buffer.sample(cfg.batch_size, self.rng))
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
            self.optimizer.step()
            self.grad_steps += 1
            self.since_log["loss"].append(loss.item())
            self.since_log["q_tot"].append(q_tot)
            if self.grad_steps % cfg.target_every == 0:
                self.target_q.load_state_dict(self.q_net.state_dict())
                if self.mixer is not None:
                    self.target_mixer.load_state_dict(self.mixer.state_dict())

    def td_loss(self, batch: dict) -> tuple[torch.Tensor, float]:
        """``(Q_tot(s, a) - y)^2`` on one minibatch (IQL: every agent's ``(Q_i - y_i)^2``);
        returns ``(loss, mean Q_tot)``."""
        cfg = self.config
        b = {k: torch.as_tensor(v) for k, v in batch.items()}
        rewards, dones = b["rewards"], b["dones"]  # [b, N]: the shared reward / done in every column
        q, h_next = self.q_values(self.q_net, b["obs"], b.get("hidden"))
        chosen = q.gather(-1, b["actions"].unsqueeze(-1)).squeeze(-1)  # [b, N]
        with torch.no_grad():
            h_target = self.q_values(self.target_q, b["obs"], b["hidden"])[1] if cfg.recurrent else None
            next_target = self.q_values(self.target_q, b["next_obs"], h_target)[0]  # [b, N, A]
            if cfg.double_q:  # a'_i = argmax Q_i (online), valued by the target agents
                next_online = self.q_values(self.q_net, b["next_obs"], h_next.detach() if cfg.recurrent else None)[0]
                next_value = next_target.gather(-1, next_online.argmax(-1, keepdim=True)).squeeze(-1)  # [b, N]
            else:
                next_value = next_target.max(-1).values
        if cfg.mixer == "none":  # every agent its own target
            with torch.no_grad():
                y = self.parts.joint_td_target(rewards, next_value, dones, cfg.gamma)
            return F.mse_loss(chosen, torch.as_tensor(y, dtype=torch.float32)), float(chosen.detach().sum(-1).mean())
        q_tot = self.mix(chosen, b["state"])  # [b, 1]
        with torch.no_grad():
            next_tot = self.mix(next_value, b["next_state"], target=True)
            y = self.parts.joint_td_target(rewards[:, :1], next_tot, dones[:, :1], cfg.gamma)
        return F.mse_loss(q_tot, torch.as_tensor(y, dtype=torch.float32)), float(q_tot.detach().mean())

    def log_block(self) -> None:
        """One curve row: ``train_return`` is the return per agent (the shared reward summed
        over an episode) of the training episodes ended since the last row."""
        cfg = self.config
        mean = learning.mean_or_nan
        s = self.since_log
        eval_return = np.nan
        if cfg.eval_episodes:
            ev = evaluate(self.policy(), self.task, episodes=cfg.eval_episodes, seed=cfg.seed + 10_000,
                          num_envs=cfg.num_envs)
            eval_return = ev.summary()["return_per_agent"]
        self.log(train_return=mean(s["returns"]), eval_return=eval_return, **{"loss/td": mean(s["loss"])},
                 q_tot=mean(s["q_tot"]), epsilon=self.epsilon(self.step), mixer=cfg.mixer)
        self.since_log = {k: [] for k in s}

    def policy(self) -> AgentQPolicy:
        return AgentQPolicy(self.q_net, self.env.possible_agents, self.env.obs_dim, self.config.eps_end,
                            self.config.seed)


def train(task: Any = "two_step", config: Config | None = None, parts: Any = None, **run_options) -> learning.Run:
    """Train IQL, VDN or QMIX (``config.mixer``) on ``task``; see :func:`course_lib.learning.train`
    for ``resume``, ``out``, ``save_every`` and ``progress``."""
    return learning.train(ValueDecomposition, task, config, parts, **run_options)


# =============================================================================
# 6. Inspecting what was learned
# =============================================================================
def _learner(run) -> ValueDecomposition:
    return getattr(run, "learner", run)


def q_tot_table(run, obs, state) -> np.ndarray:
    """``Q_tot`` of every joint action in one situation: an array ``[A] * N``.

    ``run`` is a :class:`~course_lib.learning.Run` of :func:`train` (its mixing part is
    what computes the table); ``obs [N, D]`` holds every agent's observation and
    ``state [S]`` the global state.  For IQL the table is the sum of the agents' values.
    Used in notebooks/03_value_decomposition.
    """
    learner = _learner(run)
    qs = learner.agent_qs(np.asarray(obs, dtype=np.float32)[None])[0]  # [N, A]
    N, A = qs.shape
    joint = torch.as_tensor(list(itertools.product(range(A), repeat=N)))  # [A^N, N]
    chosen = qs[torch.arange(N)[None, :], joint]  # [A^N, N]
    states = torch.as_tensor(np.asarray(state, dtype=np.float32)).expand(joint.shape[0], -1)
    with torch.no_grad():
        return learner.mix(chosen, states).reshape([A] * N).numpy()


def two_step_tables(run) -> dict[str, np.ndarray]:
    """``Q_tot`` tables of the two-step game in its three states: ``{"1", "2A", "2B"}``
    (rows: agent 1's action, columns: agent 2's action).
    Used in notebooks/03_value_decomposition (compare with ``papers.QMIX_TWO_STEP_STATE1``)."""
    tables = {}
    for index, name in enumerate(["1", "2A", "2B"]):
        one_hot = np.eye(3, dtype=np.float32)[index]
        tables[name] = q_tot_table(run, np.stack([one_hot, one_hot]), one_hot)
    return tables


def matrix_game_table(run) -> np.ndarray:
    """``Q_tot`` table of a one-shot matrix game (the run's ``matrix_<game>`` task, in its
    first-round situation), e.g. the QTRAN game of Son et al. (2019) or the climbing game.
    Used in notebooks/03_value_decomposition."""
    env = _learner(run).task.batched(1)
    obs, _ = env.reset()
    return q_tot_table(run, obs[0], env.state()[0])
