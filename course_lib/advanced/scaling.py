"""Does communication scale?  GNN message passing on a proximity graph against flat
all-to-all attention, with 3, 10 and 30 agents on one task.

**Neighbourhood majority** (a one-step cooperative game, batched): ``N`` agents stand at
random points of the unit square and each holds a private random bit.  Each agent must
announce the majority bit of its neighbourhood: itself and its ``k = min(4, N - 1)``
nearest agents (an odd number of voters).  Reward per agent: 1 if right, else 0; the
return is the mean over agents.  Observation: ``[2 bit - 1, x, y]``.
Without communication the best an agent can do is to announce its own bit (right in
11/16 of the cases when k = 4); with the neighbours' bits it can be right every time.

Both policies share an encoder and a head and differ in one communication round:

* ``"gnn"``: a :class:`~course_lib.advanced.gat.GATLayer` over the ``k``-nearest-neighbour
  graph (neighbour lists: cost ``O(N k)``);
* ``"attention"``: :class:`~course_lib.advanced.attention.MultiHeadGatedAttention` over all
  agents (cost ``O(N^2)``): it must learn from the positions whom to listen to;
* ``"none"``: no communication (the baseline).

Trained with REINFORCE (batch-mean baseline, entropy bonus).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .attention import MultiHeadGatedAttention
from .gat import GATLayer, gat_forward_neighbours, knn_neighbours

__all__ = ["NeighbourMajority", "CommPolicy", "ScalingConfig", "train", "evaluate_comm", "time_per_step",
           "messages_per_step", "neighbourhood_attention", "timing_sweep"]


class NeighbourMajority:
    """Batched one-step game; :meth:`sample` draws ``B`` instances (see the module docstring)."""

    obs_dim, n_actions = 3, 2

    def __init__(self, num_agents: int, k: int = 4):
        if num_agents < 2:
            raise ValueError(f"need at least 2 agents, got {num_agents}")
        self.num_agents = int(num_agents)
        self.k = min(int(k), self.num_agents - 1)
        if self.k % 2:
            raise ValueError(f"k={self.k}: use an even number of neighbours so the vote has no ties")

    def sample(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``obs [B, N, 3]``, ``positions [B, N, 2]``, ``neighbours [B, N, k]``, ``target [B, N]``."""
        N = self.num_agents
        positions = torch.rand(batch, N, 2, generator=generator)
        bits = (torch.rand(batch, N, generator=generator) < 0.5).long()
        neighbours = knn_neighbours(positions, self.k)
        votes = bits + torch.gather(bits[:, None, :].expand(-1, N, -1), 2, neighbours).sum(-1)
        target = (2 * votes > self.k + 1).long()
        obs = torch.cat([(2 * bits - 1).float()[..., None], positions], dim=-1)
        return {"obs": obs, "positions": positions, "neighbours": neighbours, "target": target, "bits": bits}

    @staticmethod
    def reward(actions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (actions == target).float()


class CommPolicy(nn.Module):
    """``obs [B, N, 3] -> logits [B, N, 2]`` with one round of communication (``comm``)."""

    def __init__(self, comm: str = "gnn", hidden: int = 32, heads: int = 2):
        super().__init__()
        if comm not in ("gnn", "attention", "none"):
            raise ValueError(f"comm must be 'gnn', 'attention' or 'none', got {comm!r}")
        self.comm = comm
        self.encoder = nn.Sequential(nn.Linear(NeighbourMajority.obs_dim, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU())
        if comm == "gnn":
            self.gat = GATLayer(hidden, hidden // heads, heads=heads)
        elif comm == "attention":
            self.attention = MultiHeadGatedAttention(hidden, num_heads=heads, head_dim=hidden // heads)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, NeighbourMajority.n_actions))

    def forward(self, obs: torch.Tensor, neighbours: torch.Tensor | None = None, return_weights: bool = False):
        h = self.encoder(obs)
        weights = None
        if self.comm == "gnn":
            message = torch.relu(gat_forward_neighbours(self.gat, h, neighbours))
        elif self.comm == "attention":
            message, weights = self.attention(h)
        else:
            message = torch.zeros_like(h)
        logits = self.head(torch.cat([h, message], dim=-1))
        return (logits, weights) if return_weights else logits


@dataclass
class ScalingConfig:
    """Hyperparameters of :func:`train` (the defaults are the notebook's full run)."""

    comm: str = "gnn"          # "gnn", "attention" or "none"
    num_agents: int = 10       # agents per game instance
    k: int = 4                 # neighbours in the proximity graph (and in the vote)
    updates: int = 300         # REINFORCE updates
    batch_size: int = 64       # game instances per update
    lr: float = 3e-3           # Adam
    entropy: float = 0.01      # entropy bonus weight
    hidden: int = 32           # encoder width (also the message width)
    heads: int = 2             # attention heads (GAT and all-to-all alike)
    seed: int = 0              # torch seed (instances and weights)
    log_every: int = 50        # updates between logged rows
    progress: bool = True      # tqdm progress bar


def evaluate_comm(policy: CommPolicy, game: NeighbourMajority, instances: int = 1024, seed: int = 12345) -> dict:
    """Greedy ``return`` (share of agents right) and ``all_right`` (share of instances in which
    every agent is right) on fresh instances, with the references on the same instances: ``own_bit_return`` (announce your own bit: the best without communication)
    and ``random_return`` (coin flips)."""
    g = torch.Generator().manual_seed(seed)
    data = game.sample(instances, g)
    with torch.no_grad():
        actions = policy(data["obs"], data["neighbours"]).argmax(-1)
    coins = (torch.rand(data["target"].shape, generator=g) < 0.5).long()
    right = game.reward(actions, data["target"])
    return {"return": float(right.mean()), "all_right": float((right == 1).all(-1).float().mean()),
            "own_bit_return": float(game.reward(data["bits"], data["target"]).mean()),
            "random_return": float(game.reward(coins, data["target"]).mean())}


def time_per_step(policy: CommPolicy, game: NeighbourMajority, batch: int = 64, repeats: int = 30) -> dict:
    """Seconds per acting step (a forward pass for ``batch`` game instances; the GNN's
    proximity graph is rebuilt every step): ``cpu_s`` (this process's CPU time, what a
    quiet machine would show as wall time with one thread) and ``wall_s``; for the GNN
    also ``graph_cpu_s``, the share of ``cpu_s`` spent building the k-nearest graph
    (brute force, ``O(N^2)``; 0 for the others)."""
    data = game.sample(batch, torch.Generator().manual_seed(0))
    gnn = policy.comm == "gnn"

    def step():
        neighbours = knn_neighbours(data["positions"], game.k) if gnn else None
        policy(data["obs"], neighbours)

    def timed(fn):
        fn()  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.process_time() - cpu) / repeats, (time.perf_counter() - wall) / repeats

    with torch.no_grad():
        cpu_s, wall_s = timed(step)
        graph_s = timed(lambda: knn_neighbours(data["positions"], game.k))[0] if gnn else 0.0
    return {"cpu_s": cpu_s, "wall_s": wall_s, "graph_cpu_s": graph_s}


def messages_per_step(comm: str, num_agents: int, k: int) -> int:
    """Sender-receiver pairs one communication round weighs (self included)."""
    return {"gnn": num_agents * (min(k, num_agents - 1) + 1), "attention": num_agents ** 2, "none": 0}[comm]


def train(config: ScalingConfig | None = None, *, return_model: bool = False, **overrides):
    """REINFORCE on :class:`NeighbourMajority`; a DataFrame with one row per ``log_every``
    updates (``(df, policy)`` with ``return_model=True``).

    Columns: ``update``, ``step`` (game instances played), ``train_return``,
    ``eval_return`` (greedy, 256 fresh instances), ``sps`` (instances per second, wall
    clock), ``comm``, ``num_agents``, ``seed``."""
    cfg = ScalingConfig(**{**asdict(config or ScalingConfig()), **overrides})
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    game = NeighbourMajority(cfg.num_agents, cfg.k)
    policy = CommPolicy(cfg.comm, cfg.hidden, cfg.heads)
    optimiser = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    rows, start = [], time.perf_counter()
    for u in tqdm(range(cfg.updates), desc=f"{cfg.comm} N={cfg.num_agents} seed {cfg.seed}",
                  disable=not cfg.progress, leave=False):
        data = game.sample(cfg.batch_size, g)
        dist = torch.distributions.Categorical(logits=policy(data["obs"], data["neighbours"]))
        actions = dist.sample()
        reward = game.reward(actions, data["target"])
        advantage = reward - reward.mean()               # one step: the batch mean is the baseline
        loss = -(dist.log_prob(actions) * advantage).mean() - cfg.entropy * dist.entropy().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if (u + 1) % cfg.log_every == 0 or u == cfg.updates - 1:
            rows.append({"update": u + 1, "step": (u + 1) * cfg.batch_size, "train_return": float(reward.mean()),
                         "eval_return": evaluate_comm(policy, game, 256, seed=999)["return"],
                         "sps": (u + 1) * cfg.batch_size / (time.perf_counter() - start),
                         "comm": cfg.comm, "num_agents": cfg.num_agents, "seed": cfg.seed})
    df = pd.DataFrame(rows)
    return (df, policy) if return_model else df


def neighbourhood_attention(policy: CommPolicy, game: NeighbourMajority, instances: int = 256,
                            seed: int = 4321) -> dict:
    """How much of an all-to-all attention policy's weight lands on the agents that matter.

    ``on_neighbourhood``: mean share of each receiver's attention (averaged over heads) on
    itself and its ``k`` nearest agents; ``uniform``: the share uniform attention would give,
    ``(k + 1) / N``.  Also returns one instance's ``weights [heads, N, N]`` and
    ``neighbourhood [N, N]`` (bool) for a heatmap."""
    if policy.comm != "attention":
        raise ValueError(f"neighbourhood_attention needs an attention policy, got comm={policy.comm!r}")
    data = game.sample(instances, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        _, weights = policy(data["obs"], return_weights=True)                  # [B, heads, N, N]
    N = game.num_agents
    hood = torch.zeros(instances, N, N, dtype=torch.bool)
    hood.scatter_(2, data["neighbours"], True)
    hood |= torch.eye(N, dtype=torch.bool)
    share = (weights.mean(1) * hood).sum(-1).mean()
    return {"on_neighbourhood": float(share), "uniform": (game.k + 1) / N,
            "weights": weights[0].numpy(), "neighbourhood": hood[0].numpy(),
            "positions": data["positions"][0].numpy()}


def timing_sweep(sizes=(3, 10, 30, 100, 300), batch: int = 64, k: int = 4, seed: int = 0) -> pd.DataFrame:
    """Time one acting step of untrained GNN and all-to-all attention policies (and the
    no-communication one) for each team size: where the ``N k`` against ``N^2`` counts
    start to show.  Columns: ``num_agents``, ``comm``, ``act_cpu_ms``, ``act_wall_ms``,
    ``graph_cpu_ms`` (GNN: building the k-nearest graph), ``messages``."""
    torch.manual_seed(seed)
    rows = []
    for n in sizes:
        game = NeighbourMajority(n, k)
        for comm in ("gnn", "attention", "none"):
            t = time_per_step(CommPolicy(comm), game, batch=batch, repeats=max(3, min(30, 3000 // n)))
            rows.append({"num_agents": n, "comm": comm, "act_cpu_ms": 1e3 * t["cpu_s"],
                         "act_wall_ms": 1e3 * t["wall_s"], "graph_cpu_ms": 1e3 * t["graph_cpu_s"],
                         "messages": messages_per_step(comm, n, game.k)})
    return pd.DataFrame(rows)
