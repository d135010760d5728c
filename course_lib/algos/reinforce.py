"""REINFORCE with a learned baseline, for communicating agents (CommNet, TarMAC, NoComm).

Taught in notebooks/05_communication, where students write the three parts this loop
calls (their references: :func:`course_lib.algos.commnet.comm_mean`,
:func:`course_lib.algos.tarmac.attention_weights` and :func:`reinforce_loss` below)::

    c_j  = comm_mean(h, alive)                  # CommNet: mean of the others' hidden states
    a_ji = attention_weights(q, k, alive)       # TarMAC: whom receiver j listens to
    G_t  = sum_{t' >= t} r_t'                   # returns to go, per agent
    loss = reinforce_loss(log pi(a_t), V(s_t), G_t, H(pi), mask)   # learn

Every update runs one whole episode in each of ``num_envs`` environments (the rollout),
then takes one Adam step on the loss; the traffic junction's arrival probability follows a
curriculum.  One network, shared by all agents, gives the action logits and the value
baseline, built by :func:`make_model` from ``Config.model`` (:data:`MODELS`): feed-forward
(``model(obs [B, N, D], alive [B, N]) -> (logits [B, N, A], values [B, N])``) or recurrent
(LSTM agents, ``*_lstm``: ``model(obs, alive, state) -> (logits, values, state)``, the
memory carried through the episode and the gradient through all of it).  Train it with
the course's one learning API::

    run = reinforce.train("traffic_junction_easy", reinforce.Config(model="tarmac"),
                          parts=reinforce.Parts(attention_weights=my_attention))
    run.curve, evaluate(run.policy, task("traffic_junction_easy", arrival_prob=0.3))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from course_lib import learning
from course_lib.algos.commnet import (CommNet, DiscreteCommNet, FullyConnected, JunctionReach, RecurrentCommNet,
                                     comm_mean)
from course_lib.algos.tarmac import RecurrentTarMAC, TarMAC, attention_weights
from course_lib.evaluation import evaluate
from course_lib.policy import Policy

__all__ = ["reinforce_loss", "rollout", "model_step", "forget", "returns_to_go", "episode_values", "horizon",
           "MODELS", "make_model", "plug_parts", "CommPolicy", "Config", "Parts", "Reinforce", "train"]


# ----------------------------------------------------------------------- the loss
def reinforce_loss(log_probs: torch.Tensor, values: torch.Tensor, returns: torch.Tensor,
                   entropy: torch.Tensor, mask: torch.Tensor, value_coef: float = 0.03,
                   entropy_coef: float = 0.01) -> torch.Tensor:
    """REINFORCE with a learned baseline, averaged over the counted agent-steps.

    All inputs share one shape (e.g. ``[T, B, N]``): ``log_probs`` of the taken
    actions, the baseline ``values``, the ``returns`` to go, the policy ``entropy`` and a
    0/1 ``mask``.  With ``A = returns - values`` treated as a constant (no gradient
    through the baseline into the policy term) and means over the mask::

        loss = -mean(log_probs * A) + value_coef * mean((returns - values)^2)
               - entropy_coef * mean(entropy)

    Taught in notebooks/05_communication.
    """
    mask = mask.to(log_probs.dtype)
    count = mask.sum().clamp(min=1.0)
    advantage = (returns - values).detach()
    policy_loss = -(log_probs * advantage * mask).sum() / count
    value_loss = ((returns - values) ** 2 * mask).sum() / count
    entropy_bonus = (entropy * mask).sum() / count
    return policy_loss + value_coef * value_loss - entropy_coef * entropy_bonus


# --------------------------------------------------------------------- rollouts
def _alive(info: dict, shape: tuple) -> np.ndarray:
    """Which agent slots are present: ``info["active"]`` where the env has it, else all."""
    return np.asarray(info.get("active", np.ones(shape, dtype=bool)), dtype=bool)


def _new_agents(info: dict, alive: np.ndarray) -> np.ndarray:
    """``[B, N]``: the slot holds an agent in its first step.  Only the traffic junction
    refills slots (``info["arrived"]``); elsewhere agents live all episode."""
    return np.asarray(info["arrived"], dtype=bool) if "arrived" in info else np.zeros_like(alive)


def horizon(env) -> int:
    """The longest episode of a batched course env (1 for one-step games)."""
    return int(getattr(env.core, "max_steps", 1))


def model_step(model: nn.Module, obs: torch.Tensor, alive: torch.Tensor, state: Any = None, greedy: bool = False,
               generator: torch.Generator | None = None):
    """``(logits [B, N, A], values [B, N], state)`` of any model of :data:`MODELS` for one
    env step: a recurrent model (``model.recurrent``) carries ``state`` (``None``: a new
    episode), a feed-forward one returns ``None``; the discrete-communication model draws its
    symbols (``greedy``: the most likely; else from ``generator``, or torch's global one)."""
    if getattr(model, "recurrent", False):
        return model(obs, alive, state)
    if isinstance(model, DiscreteCommNet):
        return (*model(obs, alive, greedy=greedy, generator=generator), None)
    return (*model(obs, alive), None)


def forget(state: Any, fresh: np.ndarray) -> Any:
    """A recurrent ``state`` (a tuple of ``[B, N, H]``) with the slots ``fresh [B, N]`` zeroed:
    a new agent, or a new episode, starts with an empty memory."""
    if state is None or not fresh.any():
        return state
    keep = torch.as_tensor(~fresh, dtype=torch.float32)[..., None]
    return tuple(s * keep for s in state)


def rollout(env, model: nn.Module, greedy: bool = False, record_attention: bool = False) -> dict[str, Any]:
    """One episode in each of the ``B`` envs of a batched twin (reset first).

    Returns tensors ``[T, B, N]``: ``log_probs``, ``values``, ``entropy``, ``rewards``,
    ``mask`` (agent present and its env's episode not over), ``starts`` (a new agent took
    the slot), and ``episodes``: the env's ``info`` of every step (read where
    ``info["done"] & info["counted"]``).  A recurrent model carries its memory from step to
    step (the gradient flows through the whole episode), a new agent's starting empty.  The
    discrete-communication model's symbols are actions too: their log-probabilities and
    entropies are added to the action's.  With ``record_attention`` the model's
    ``last_attention``, the observations and ``alive`` are kept per step too.
    """
    obs, info = env.reset()
    running = np.ones(env.num_envs, dtype=bool)
    out: dict[str, list] = {k: [] for k in ("log_probs", "values", "entropy", "rewards", "mask",
                                            "starts", "alive", "attention", "obs")}
    episodes, state = [], None
    for _ in range(horizon(env)):
        alive = _alive(info, obs.shape[:2])
        starts = _new_agents(info, alive)
        logits, values, state = model_step(model, torch.as_tensor(obs), torch.as_tensor(alive),
                                           forget(state, starts), greedy)
        dist = torch.distributions.Categorical(logits=logits)
        actions = logits.argmax(-1) if greedy else dist.sample()
        log_prob, entropy = dist.log_prob(actions), dist.entropy()
        if getattr(model, "symbol_log_prob", None) is not None:  # discrete communication: the symbols said
            log_prob, entropy = log_prob + model.symbol_log_prob, entropy + model.symbol_entropy
        counted = alive & running[:, None]
        out["log_probs"].append(log_prob)
        out["values"].append(values)
        out["entropy"].append(entropy)
        out["mask"].append(torch.as_tensor(counted, dtype=torch.float32))
        out["starts"].append(torch.as_tensor(starts, dtype=torch.float32))
        if record_attention:
            out["alive"].append(alive)
            out["obs"].append(obs)
            out["attention"].append(getattr(model, "last_attention", None))
        obs, rewards, _, _, info = env.step(actions.numpy())
        out["rewards"].append(torch.as_tensor(rewards * counted))
        episodes.append({k: v for k, v in info.items() if k != "final_obs"} | {"counted": running.copy()})
        running &= ~info["done"]
        if not running.any():
            break
        state = forget(state, np.repeat(info["done"][:, None], alive.shape[1], axis=1))
    result = {k: torch.stack(v) for k, v in out.items() if v and isinstance(v[0], torch.Tensor)}
    if record_attention:
        result.update(alive=np.stack(out["alive"]), obs=np.stack(out["obs"]), attention=out["attention"])
    result["episodes"] = episodes
    return result


def returns_to_go(rewards: torch.Tensor, gamma: float = 1.0, team: bool = False,
                  starts: torch.Tensor | None = None) -> torch.Tensor:
    """``G_t = r_t + gamma G_{t+1}`` per agent slot (``[T, B, N]``).

    ``starts [T, B, N]`` marks where a new agent takes over a slot (traffic junction): the
    return of the car before it stops there.  ``team`` sums the rewards over the agents
    first and gives every agent the team's return."""
    r = rewards.sum(dim=-1, keepdim=True).expand_as(rewards) if team else rewards
    out = torch.zeros_like(r)
    running = torch.zeros_like(r[0])
    for t in range(r.shape[0] - 1, -1, -1):
        if starts is not None and not team and t + 1 < r.shape[0]:
            running = running * (1.0 - starts[t + 1])
        running = r[t] + gamma * running
        out[t] = running
    return out


def episode_values(episodes: list[dict], metrics: Any = ()) -> dict[str, list]:
    """Per-episode values of the episodes that ended in a rollout (one per env):
    ``team_return``, ``return_per_agent`` and the task ``metrics`` named."""
    values: dict[str, list] = {k: [] for k in ("team_return", "return_per_agent", *metrics)}
    for info in episodes:
        ended = info["done"] & info["counted"]
        if ended.any():
            values["team_return"].extend(info["team_return"][ended].tolist())
            values["return_per_agent"].extend(info["episode_return_mean"][ended].tolist())
            for key in metrics:
                values[key].extend(np.asarray(info[key], dtype=float)[ended].tolist())
    return values


# ------------------------------------------------------------------------ models
def _skip(cfg) -> bool:
    return bool(getattr(cfg, "skip", True))  # the lever learner's Config has no skip field: on


#: model kind -> builder(obs_dim, n_actions, config, num_agents); a new kind is one more entry
MODELS: dict[str, Callable[..., nn.Module]] = {
    # the CommNet paper's feed-forward models (Table 2, MLP modules): c^0 = 0, K modules
    "commnet": lambda d, a, cfg, n: CommNet(d, a, cfg.hidden, cfg.comm_steps, skip=_skip(cfg)),
    "nocomm": lambda d, a, cfg, n: CommNet(d, a, cfg.hidden, cfg.comm_steps, comm=False, skip=_skip(cfg)),
    "fully_connected": lambda d, a, cfg, n: FullyConnected(d, a, n, cfg.hidden, cfg.comm_steps, skip=_skip(cfg)),
    # ... as the CommNet code builds it: every slot its own action and value heads
    "fully_connected_slots": lambda d, a, cfg, n: FullyConnected(d, a, n, cfg.hidden, cfg.comm_steps, skip=_skip(cfg),
                                                                 slot_heads=True),
    "discrete": lambda d, a, cfg, n: DiscreteCommNet(d, a, cfg.hidden, cfg.comm_steps, cfg.vocab, skip=_skip(cfg)),
    "tarmac": lambda d, a, cfg, n: TarMAC(d, a, cfg.hidden, cfg.key_dim, cfg.comm_steps),
    # LSTM agents on IC3Net's recurrent loop: comm_steps = passes (TarMAC: rounds) per env step
    "commnet_lstm": lambda d, a, cfg, n: RecurrentCommNet(d, a, cfg.hidden, cfg.comm_steps),
    "nocomm_lstm": lambda d, a, cfg, n: RecurrentCommNet(d, a, cfg.hidden, cfg.comm_steps, comm=False),
    "tarmac_lstm": lambda d, a, cfg, n: RecurrentTarMAC(d, a, cfg.hidden, cfg.key_dim, cfg.comm_steps),
}


def make_model(kind: str, obs_dim: int, n_actions: int, config: Any, num_agents: int = 0) -> nn.Module:
    """The network of model ``kind`` (a key of :data:`MODELS`), sized by ``config``
    (``hidden``, ``comm_steps``, ``key_dim``, ``vocab``, ``skip``) and, for the
    fully-connected baseline, the number of agent slots."""
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; the models are {sorted(MODELS)}")
    return MODELS[kind](int(obs_dim), int(n_actions), config, int(num_agents))


#: the parts a network calls from inside (attributes of its modules of the same name)
PLUGGED = ("comm_mean", "attention_weights")


def plug_parts(model: nn.Module, parts: Any) -> nn.Module:
    """Hand the student's functions to the modules that call them: every module of
    ``model`` with a ``comm_mean`` (CommNet) or ``attention_weights`` (a TarMAC round)."""
    for module in model.modules():
        for name in PLUGGED:
            if name in module.__dict__:
                setattr(module, name, getattr(parts, name))
    return model


# ------------------------------------------------------------------------ policy
class CommPolicy(Policy):
    """All agents of an environment act together through one communicating network
    (:func:`model_step`); greedy: the most likely action, else one sampled with the
    policy's own generator (:meth:`reseed` sets it).  A recurrent model's memory is kept
    between calls, cleared by :meth:`reset`, where ``info["done"]`` starts a new episode
    and for the agents new in their slot (``info["arrived"]``)."""

    name = "comm"

    def __init__(self, model: nn.Module, agents, obs_dim: int, seed: int = 0):
        super().__init__(agents, obs_dim)
        self.model = model
        self.generator = torch.Generator().manual_seed(int(seed))
        self.state = None

    def reseed(self, seed: int) -> "CommPolicy":
        """Restart the sampling generator from ``seed``; returns the policy."""
        self.generator.manual_seed(int(seed))
        return self

    def reset(self, num_envs: int) -> None:
        self.state = None

    def inputs(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(obs, dtype=np.float32))

    def act(self, obs, info=None, greedy=True):
        info = info or {}
        alive = _alive(info, np.shape(obs)[:2])
        state = self.state
        if state is not None and state[0].shape[:2] != alive.shape:
            state = None  # another batch of environments
        done = np.asarray(info.get("done", np.zeros(alive.shape[0], dtype=bool)), dtype=bool)
        state = forget(state, _new_agents(info, alive) | done[:, None])
        with torch.no_grad():
            logits, _, self.state = model_step(self.model, self.inputs(obs), torch.as_tensor(alive), state, greedy,
                                               self.generator)
        if greedy:
            return logits.argmax(-1).numpy()
        probs = torch.softmax(logits, -1).reshape(-1, logits.shape[-1])
        return torch.multinomial(probs, 1, generator=self.generator).reshape(logits.shape[:-1]).numpy()


# ------------------------------------------------------------------- the learner
@dataclass
class Config:
    """REINFORCE with a learned baseline.  Steps are environment steps summed over the
    ``num_envs`` environments, and an update counts ``num_envs x horizon`` of them (one
    episode per environment; the rollout stops early once every episode has ended), so
    ``total_steps = updates x num_envs x horizon`` (horizon: 20 steps on the easy traffic
    junction, 40 on the medium one, predator-prey and navigation, 80 on the hard junction)."""

    seed: int = 0  # seeds torch and the environments
    total_steps: int = 1_280_000  # environment steps (2,000 updates x 32 episodes x 20 steps)
    model: str = "commnet"  # a key of MODELS: "commnet", "nocomm", "tarmac", "fully_connected", "discrete", "*_lstm"
    hidden: int = 64  # width of the hidden states h
    comm_steps: int = 2  # CommNet: modules K (K - 1 messages, c^0 = 0); TarMAC: rounds; *_lstm: passes per env step
    key_dim: int = 16  # TarMAC: size of the signatures and queries
    vocab: int = 8  # "discrete": the number of symbols an agent can say
    skip: bool = True  # CommNet and its feed-forward baselines: the skip connection from h^0 into every module
    comm_range: float | None = None  # traffic junction, "commnet": cars hear only cars this many cells away (None: all)
    num_envs: int = 32  # environments, hence episodes per update
    lr: float = 1e-3  # Adam learning rate
    gamma: float = 1.0  # discount; undiscounted returns, as in CommNet
    value_coef: float = 0.03  # weight of the baseline's squared error (CommNet's alpha)
    entropy_coef: float = 0.1  # entropy bonus at the start ...
    entropy_end: float | None = 0.0  # ... annealed linearly to this (None: constant) ...
    entropy_until: float = 1.0  # ... by this fraction of the updates (1: the last update), then kept
    grad_clip: float = 1.0  # max gradient norm
    team_reward: bool = False  # True: every agent gets the team's summed return
    reward_scale: float = 0.1  # rewards times this (keeps returns near 1 for Adam and the entropy bonus)
    curriculum_until: float = 0.5  # env.set_curriculum ramps 0 -> 1 over this fraction of the updates (0: off)
    curriculum_from: float = 0.0  # ... starting at this fraction of the updates (IC3Net: epochs 250 -> 1250 of 2000)
    log_every: int = 16_000  # environment steps between curve rows (25 updates here)
    eval_episodes: int = 0  # greedy evaluation episodes on the task per curve row (0: none)
    eval_seed: int = 10_000  # seed of those evaluation episodes
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)


@dataclass
class Parts:
    """The functions of notebook 05 that the loop calls (defaults: the references)."""

    comm_mean: Callable = comm_mean
    attention_weights: Callable = attention_weights
    reinforce_loss: Callable = reinforce_loss


class Reinforce(learning.Learner):
    name = "reinforce"
    description = "REINFORCE with a learned baseline for communicating agents: CommNet, TarMAC, NoComm (notebook 05)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts):
        super().__init__(task, config, parts)
        cfg = config
        if cfg.torch_threads is not None:
            torch.set_num_threads(int(cfg.torch_threads))
        torch.manual_seed(cfg.seed)
        self.env = task.batched(cfg.num_envs, seed=cfg.seed)
        self.model = make_model(cfg.model, self.env.obs_dim, self.env.n_actions, cfg, self.env.num_agents)
        if cfg.comm_range is not None:
            self.limit_range(cfg.comm_range)
        self.bind_parts()
        torch.manual_seed(cfg.seed)  # the sampled actions do not depend on the model's initialisation
        self.env.reset(seed=cfg.seed)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.steps_per_update = cfg.num_envs * horizon(self.env)
        self.updates = 0
        self.metrics = tuple(self.env.core.metric_fill)  # the task's episode metrics (failure, success, ...)
        self.since_log = self._fresh_log()

    def limit_range(self, radius: float) -> None:
        """Range-limited communication (the CommNet paper's local connectivity) on the junction."""
        if not hasattr(self.env.core, "route_cells") or not hasattr(self.model, "reach"):
            raise ValueError(f"comm_range works on the traffic junction with a CommNet model, not "
                             f"{self.config.model!r} on {self.task}")
        self.model.reach = JunctionReach(self.env.core.size, radius)

    def bind_parts(self) -> None:
        plug_parts(self.model, self.parts)

    @property
    def total_updates(self) -> int:
        return -(-self.total_steps // self.steps_per_update)

    def iterate(self) -> None:
        """One update: an episode in every environment, one gradient step, a curve row when due."""
        self.follow_schedules()
        batch = rollout(self.env, self.model)
        loss = self.loss(batch)
        self.learn(loss)
        self.updates += 1
        self.step += self.steps_per_update
        self.episode += self.config.num_envs
        self.record(batch, loss)
        every = self.config.log_every
        if self.step // every > (self.step - self.steps_per_update) // every or self.done:
            self.log_block()

    def follow_schedules(self) -> None:
        """The traffic junction's arrival probability (curriculum) and the entropy bonus."""
        cfg = self.config
        if cfg.curriculum_until > 0 and hasattr(self.env, "set_curriculum"):
            start = cfg.curriculum_from * self.total_updates
            self.env.set_curriculum((self.updates - start) / max((cfg.curriculum_until - cfg.curriculum_from)
                                                                 * self.total_updates, 1))
        frac = min(self.updates / max(cfg.entropy_until * self.total_updates - 1, 1), 1.0)
        self.entropy_coef = cfg.entropy_coef if cfg.entropy_end is None else \
            cfg.entropy_coef + frac * (cfg.entropy_end - cfg.entropy_coef)

    def loss(self, batch: dict) -> torch.Tensor:
        """``reinforce_loss`` of the rollout, with the returns to go of the scaled rewards."""
        cfg = self.config
        returns = returns_to_go(batch["rewards"] * cfg.reward_scale, cfg.gamma, cfg.team_reward, batch["starts"])
        return self.parts.reinforce_loss(batch["log_probs"], batch["values"], returns, batch["entropy"],
                                         batch["mask"], cfg.value_coef, self.entropy_coef)

    def learn(self, loss: torch.Tensor) -> None:
        """One Adam step on the loss, the gradient clipped."""
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()

    def _fresh_log(self) -> dict[str, list]:
        return {k: [] for k in ("team_return", "return_per_agent", *self.metrics, "loss", "entropy")}

    def record(self, batch: dict, loss: torch.Tensor) -> None:
        """Keep the finished training episodes and the update's loss for the next curve row."""
        for key, values in episode_values(batch["episodes"], self.metrics).items():
            self.since_log[key].extend(values)
        mask = batch["mask"]
        self.since_log["loss"].append(loss.item())
        self.since_log["entropy"].append(float((batch["entropy"].detach() * mask).sum() / mask.sum().clamp(min=1)))

    def log_block(self) -> None:
        mean = {k: float(np.mean(v)) if v else np.nan for k, v in self.since_log.items()}
        extras = {"return_per_agent": mean["return_per_agent"], **{k: mean[k] for k in self.metrics},
                  "entropy": mean["entropy"]}
        if hasattr(self.env, "arrival_prob"):
            extras["arrival_prob"] = self.env.arrival_prob
        eval_return = np.nan
        if self.config.eval_episodes > 0:
            ev = evaluate(self.policy(), self.task, self.config.eval_episodes, seed=self.config.eval_seed)
            eval_return = ev.mean
            extras.update({f"eval_{k}": float(np.mean(v)) for k, v in ev.metrics.items()})
        self.log(train_return=mean["team_return"], eval_return=eval_return, **{"loss/reinforce": mean["loss"]},
                 **extras)
        self.since_log = self._fresh_log()

    def policy(self) -> CommPolicy:
        return CommPolicy(self.model, self.env.possible_agents, self.env.obs_dim, self.config.seed)


def train(task: Any = "traffic_junction_easy", config: Config | None = None, parts: Any = None,
          **run_options) -> learning.Run:
    """Train a communicating model (``config.model``) on ``task`` with REINFORCE; see
    :func:`course_lib.learning.train` for ``resume``, ``out``, ``save_every`` and ``progress``."""
    return learning.train(Reinforce, task, config, parts, **run_options)
