"""Does communication scale?  GNN message passing on a proximity graph against flat
all-to-all attention, with 3, 10 and 30 agents on one task.
Taught in notebooks/06_advanced, whose TODO 1 (:func:`~.attention.gated_attention`) and
TODO 2 (:func:`~.gat.gat_forward`) are the communication rounds of this learner.

**Neighbourhood majority** (task ``neighbour_majority``, :mod:`course_lib.envs.majority`;
options ``num_agents`` and ``k``): ``N`` agents at random points of the unit square, each
with a private random bit, must each announce the majority bit of its neighbourhood
(itself and its ``k = min(4, N - 1)`` nearest agents).  Reward per agent: 1 if right;
one step per episode.  Observation ``[2 bit - 1, x, y]``.  Without communication the best
an agent can do is to announce its own bit; with the neighbours' bits it can be right
every time.

The policies share an encoder and a head and differ in one communication round:

* ``"gnn"``: a :class:`~.gat.GATLayer` over the ``k``-nearest-neighbour graph of the
  observed positions (the task's own ``k``): ``gat_forward(layer, h, adjacency)``;
* ``"attention"``: :class:`~.attention.MultiHeadGatedAttention` over all agents:
  ``gated_attention(layer, h)``; it must learn from the positions whom to listen to;
* ``"none"``: no communication (the baseline).

Trained with REINFORCE (batch-mean baseline, entropy bonus); ``step`` counts game
instances (an instance is one step of one environment).  Returns in the curve are per
agent (the share of agents right)::

    run = scaling.train(task("neighbour_majority", num_agents=10), scaling.Config(comm="gnn"),
                        parts=scaling.Parts(gat_forward=my_gat_forward))
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from course_lib import learning
from course_lib.evaluation import evaluate
from course_lib.policy import Policy
from course_lib.tasks import task as make_task

from .attention import MultiHeadGatedAttention, gated_attention
from .gat import GATLayer, gat_forward, gat_forward_neighbours, knn_adjacency, knn_neighbours

__all__ = ["Config", "Parts", "CommActor", "CommPolicy", "Scaling", "train", "time_per_step",
           "messages_per_step", "neighbourhood_attention", "timing_sweep", "COMMS"]

COMMS = ("gnn", "attention", "none")
OBS_DIM, N_ACTIONS = 3, 2  # neighbourhood majority: [bit, x, y] -> announce 0 or 1


@dataclass
class Parts:
    """The functions of notebook 06 that the communication rounds call (defaults: the references)."""

    gated_attention: Callable = gated_attention
    gat_forward: Callable = gat_forward


class CommActor(nn.Module):
    """``obs [B, N, 3] -> logits [B, N, 2]``: encoder, one communication round (``comm``), head.

    ``parts`` holds the round's functions (:class:`Parts`; not pickled: the learner binds
    them again after a load).  ``graph`` is how the GNN gets its graph: ``"dense"``, the
    ``[B, N, N]`` k-nearest adjacency for ``gat_forward`` (what trains), or ``"lists"``,
    ``[B, N, k]`` neighbour lists for :func:`~.gat.gat_forward_neighbours` (the same layer
    at ``O(N k)`` cost, for timing large teams).
    """

    def __init__(self, comm: str = "gnn", k: int = 4, hidden: int = 32, heads: int = 2, graph: str = "dense",
                 parts: Parts | None = None):
        super().__init__()
        if comm not in COMMS:
            raise ValueError(f"comm must be one of {COMMS}, got {comm!r}")
        self.comm, self.k, self.graph = comm, int(k), graph
        self.parts = parts if parts is not None else Parts()
        self.encoder = nn.Sequential(nn.Linear(OBS_DIM, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        if comm == "gnn":
            self.gat = GATLayer(hidden, hidden // heads, heads=heads)
        elif comm == "attention":
            self.attention = MultiHeadGatedAttention(hidden, num_heads=heads, head_dim=hidden // heads)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, N_ACTIONS))

    def forward(self, obs: torch.Tensor, return_weights: bool = False):
        h = self.encoder(obs)
        weights = None
        if self.comm == "gnn":  # the graph from the observed positions, rebuilt every step
            positions = obs[..., 1:].contiguous()
            if self.graph == "lists":
                message = gat_forward_neighbours(self.gat, h, knn_neighbours(positions, self.k))
            else:
                message = self.parts.gat_forward(self.gat, h, knn_adjacency(positions, self.k))
            message = torch.relu(message)
        elif self.comm == "attention":
            message, weights = self.parts.gated_attention(self.attention, h, None)
        else:
            message = torch.zeros_like(h)
        logits = self.head(torch.cat([h, message], dim=-1))
        return (logits, weights) if return_weights else logits

    def __getstate__(self):
        state = dict(self.__dict__)
        state["parts"] = None  # the student's functions are bound again on load
        return state


@dataclass
class Config:
    """REINFORCE with one communication round on neighbourhood majority.  ``step`` counts
    game instances: environment steps summed over the ``batch_size`` environments."""

    seed: int = 0                 # seeds torch (weights, instances, sampled actions)
    total_steps: int = 19_200     # game instances (300 updates of 64)
    comm: str = "gnn"             # "gnn", "attention" or "none"
    batch_size: int = 64          # instances per REINFORCE update (environments stepped together)
    lr: float = 3e-3              # Adam learning rate
    entropy: float = 0.01         # entropy bonus weight
    hidden: int = 32              # encoder width (also the message width)
    heads: int = 2                # attention heads (GAT and all-to-all alike)
    eval_instances: int = 256     # greedy evaluation instances per curve row ...
    eval_seed: int = 999          # ... always the same ones
    log_every: int = 3_200        # instances between curve rows (50 updates)
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)


class CommPolicy(Policy):
    """Each agent announces the argmax of its logits (``greedy=False``: samples them with
    the policy's own generator)."""

    name = "scaling"

    def __init__(self, actor: CommActor, agents, seed: int = 0):
        super().__init__(agents, OBS_DIM)
        self.actor = actor
        self.generator = torch.Generator().manual_seed(int(seed))

    def act(self, obs, info=None, greedy=True):
        with torch.no_grad():
            logits = self.actor(torch.as_tensor(np.asarray(obs, dtype=np.float32)))
        if greedy:
            return logits.argmax(-1).numpy()
        probs = torch.softmax(logits, -1).reshape(-1, N_ACTIONS)
        return torch.multinomial(probs, 1, generator=self.generator).view(logits.shape[:-1]).numpy()


class Scaling(learning.Learner):
    name = "scaling"
    description = "REINFORCE with one communication round: GAT, gated attention or none (notebook 06)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts):
        super().__init__(task, config, parts)
        cfg = config
        if cfg.log_every % cfg.batch_size:  # rows are due after an update
            raise ValueError(f"log_every={cfg.log_every} must be a multiple of batch_size={cfg.batch_size}")
        self.seed_torch()
        self.env = task.batched(cfg.batch_size, seed=cfg.seed)
        self.actor = CommActor(cfg.comm, self.env.core.k, cfg.hidden, cfg.heads)  # the GNN's graph: the task's k
        self.bind_parts()
        self.optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr)
        self.obs, _ = self.env.reset(seed=cfg.seed)
        self.since_log: dict[str, list] = {"returns": [], "loss": []}
        self.row_due = False  # a curve row whose evaluation has not finished yet

    def bind_parts(self) -> None:
        self.actor.parts = self.parts

    def iterate(self) -> None:
        """One REINFORCE update on a batch of instances (one step of every environment)."""
        cfg = self.config
        if self.row_due:  # the evaluation of the last row was interrupted: log it now
            self.log_block()
        dist = torch.distributions.Categorical(logits=self.actor(torch.as_tensor(self.obs)))  # your round runs here
        actions = dist.sample()
        self.obs, rewards, _, _, info = self.env.step(actions.numpy())
        reward = torch.as_tensor(rewards)
        advantage = reward - reward.mean()               # one step: the batch mean is the baseline
        loss = -(dist.log_prob(actions) * advantage).mean() - cfg.entropy * dist.entropy().mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.step += cfg.batch_size
        self.episode += cfg.batch_size
        self.since_log["returns"].extend(info["episode_return_mean"].tolist())
        self.since_log["loss"].append(loss.item())
        self.row_due = self.step % cfg.log_every == 0 or self.done
        if self.row_due:
            self.log_block()

    def log_block(self) -> None:
        """A curve row: the instances since the last row, and the greedy policy on fixed ones."""
        cfg, s = self.config, self.since_log
        ev = evaluate(self.policy(), self.task, episodes=cfg.eval_instances, seed=cfg.eval_seed,
                      num_envs=cfg.eval_instances).summary()
        self.log(train_return=float(np.mean(s["returns"])), eval_return=ev["return_per_agent"],
                 **{"loss/policy": float(np.mean(s["loss"]))}, eval_success=ev["success"])
        self.since_log = {k: [] for k in s}
        self.row_due = False

    def policy(self) -> CommPolicy:
        return CommPolicy(self.actor, self.env.possible_agents, self.config.seed)


def train(task: Any = "neighbour_majority", config: Config | None = None, parts: Any = None,
          **run_options) -> learning.Run:
    """Train a communicating policy on ``task`` (neighbourhood majority, 10 agents by default);
    see :func:`course_lib.learning.train` for ``resume``, ``out``, ``save_every`` and ``progress``."""
    return learning.train(Scaling, task, config, parts, **run_options)


# ------------------------------------------------------------------ what a round costs
def messages_per_step(comm: str, num_agents: int, k: int) -> int:
    """Sender-receiver pairs one communication round weighs (self included)."""
    return {"gnn": num_agents * (min(k, num_agents - 1) + 1), "attention": num_agents ** 2, "none": 0}[comm]


def time_per_step(actor: CommActor, task: Any, batch: int = 64, repeats: int = 30) -> dict:
    """Seconds per acting step of ``actor`` (a forward pass for ``batch`` instances of
    ``task``; the GNN's proximity graph is rebuilt every step): ``cpu_s`` (this process's
    CPU time, what a quiet machine would show as wall time with one thread) and ``wall_s``;
    for the GNN also ``graph_cpu_s``, the share of ``cpu_s`` spent building the k-nearest
    graph (brute force, ``O(N^2)``; 0 for the others).  The GNN is timed in its
    neighbour-list form (:func:`~.gat.gat_forward_neighbours`: the same layer and weights
    as ``gat_forward`` on the k-nearest adjacency, at ``O(N k)`` cost)."""
    actor = getattr(actor, "actor", actor)  # a CommPolicy works too
    if actor.comm == "gnn" and actor.graph != "lists":
        actor, parts = copy.deepcopy(actor), actor.parts
        actor.graph, actor.parts = "lists", parts
    env = make_task(task).batched(batch, seed=0)
    obs = torch.as_tensor(env.reset(seed=0)[0])
    positions = obs[..., 1:].contiguous()

    def timed(fn):
        fn()  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.process_time() - cpu) / repeats, (time.perf_counter() - wall) / repeats

    with torch.no_grad():
        cpu_s, wall_s = timed(lambda: actor(obs))
        graph_s = timed(lambda: knn_neighbours(positions, actor.k))[0] if actor.comm == "gnn" else 0.0
    return {"cpu_s": cpu_s, "wall_s": wall_s, "graph_cpu_s": graph_s}


def neighbourhood_attention(actor: CommActor, task: Any, instances: int = 256, seed: int = 4321) -> dict:
    """How much of an all-to-all attention policy's weight lands on the agents that matter.

    ``on_neighbourhood``: mean share of each receiver's attention (averaged over heads) on
    itself and its ``k`` nearest agents; ``uniform``: the share uniform attention would give,
    ``(k + 1) / N``.  Also returns one instance's ``weights [heads, N, N]``,
    ``neighbourhood [N, N]`` (bool) and ``positions [N, 2]`` for a heatmap."""
    actor = getattr(actor, "actor", actor)  # a CommPolicy works too
    if actor.comm != "attention":
        raise ValueError(f"neighbourhood_attention needs an attention policy, got comm={actor.comm!r}")
    env = make_task(task).batched(instances, seed=seed)
    obs, _ = env.reset(seed=seed)
    with torch.no_grad():
        _, weights = actor(torch.as_tensor(obs), return_weights=True)       # [B, heads, N, N]
    N, k = env.num_agents, env.core.k
    hood = torch.zeros(instances, N, N, dtype=torch.bool)
    hood.scatter_(2, torch.as_tensor(env.core.neighbours), True)
    hood |= torch.eye(N, dtype=torch.bool)
    share = (weights.mean(1) * hood).sum(-1).mean()
    return {"on_neighbourhood": float(share), "uniform": (k + 1) / N, "weights": weights[0].numpy(),
            "neighbourhood": hood[0].numpy(), "positions": obs[0, :, 1:]}


def timing_sweep(sizes=(3, 10, 30, 100, 300), batch: int = 64, k: int = 4, seed: int = 0) -> pd.DataFrame:
    """Time one acting step of untrained GNN and all-to-all attention policies (and the
    no-communication one) for each team size: where the ``N k`` against ``N^2`` counts
    start to show.  Columns: ``num_agents``, ``comm``, ``act_cpu_ms``, ``act_wall_ms``,
    ``graph_cpu_ms`` (GNN: building the k-nearest graph), ``messages``."""
    torch.manual_seed(seed)
    rows = []
    for n in sizes:
        task = make_task("neighbour_majority", num_agents=n, k=k)
        k_n = min(k, n - 1)
        for comm in COMMS:
            t = time_per_step(CommActor(comm, k_n, graph="lists"), task, batch=batch,
                              repeats=max(3, min(30, 3000 // n)))
            rows.append({"num_agents": n, "comm": comm, "act_cpu_ms": 1e3 * t["cpu_s"],
                         "act_wall_ms": 1e3 * t["wall_s"], "graph_cpu_ms": 1e3 * t["graph_cpu_s"],
                         "messages": messages_per_step(comm, n, k_n)})
    return pd.DataFrame(rows)
