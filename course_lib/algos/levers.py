"""Lever pulling with CommNet (Sukhbaatar et al. 2016, section 4.1): supervised or REINFORCE.

Taught in notebooks/05_communication.  Each round draws 5 of 500 agents; each sees only
its id and pulls one of 5 levers; the team scores ``(#distinct - 1) / 4``.  CommNet
(or NoComm, its messages zeroed) is trained on a batch of rounds per update, with the
parts students write::

    c_j = comm_mean(h, alive)                                   # inside CommNet
    supervised: loss = cross_entropy(logits, rank of each id)   # the sorting target
    REINFORCE:  loss = reinforce_loss(log pi(a), V, R, H(pi), 1)

Train it with the course's one learning API (every round is one step of one episode,
so ``step`` counts rounds)::

    run = levers.train("levers", levers.Config(mode="reinforce"), parts=levers.Parts(comm_mean=my_mean))
    evaluate(run.policy, "levers", episodes=4096, num_envs=4096).metrics["distinct_score"].mean()
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from course_lib import learning
from course_lib.algos.commnet import comm_mean, lever_ids
from course_lib.algos.reinforce import CommPolicy, make_model, plug_parts, reinforce_loss
from course_lib.evaluation import evaluate
from course_lib.tasks import task as make_task

__all__ = ["Config", "Parts", "LeverPolicy", "Levers", "train"]

LOSS = {"supervised": "loss/cross_entropy", "reinforce": "loss/reinforce"}  # curve column of each mode


@dataclass
class Config:
    """Lever pulling: one step is one round (an episode of one step), so
    ``total_steps = updates x batch``."""

    seed: int = 0  # seeds torch and the rounds
    total_steps: int = 1_024_000  # rounds (2,000 updates of 512)
    mode: str = "supervised"  # "supervised" (cross-entropy to the ranks) or "reinforce" (the score as reward)
    model: str = "commnet"  # "commnet" or "nocomm" (the independent baseline: messages zeroed)
    batch: int = 512  # rounds per update (CommNet's replication used 512)
    hidden: int = 128  # width of h (128 reaches 0.99 supervised; 64 stops near 0.985)
    comm_steps: int = 3  # K modules, K - 1 messages (c^0 = 0); 1,000 updates of 256: K = 3 0.988, K = 2 0.94
    lr: float = 3e-3  # Adam learning rate ...
    lr_decay: bool = True  # ... annealed linearly to 0 over the run (sharpens the last percent)
    value_coef: float = 0.03  # REINFORCE: weight of the baseline's squared error (CommNet's alpha)
    entropy_coef: float = 0.01  # REINFORCE: entropy bonus, keeps the policy exploring early on
    eval_rounds: int = 4096  # fresh rounds of greedy pulls per curve row (eval_score)
    log_every: int = 51_200  # rounds between curve rows (100 updates of 512)
    torch_threads: int | None = 1  # torch.set_num_threads (None: leave as is)


@dataclass
class Parts:
    """The functions of notebook 05 that the loop calls (defaults: the references)."""

    comm_mean: Callable = comm_mean
    reinforce_loss: Callable = reinforce_loss


class LeverPolicy(CommPolicy):
    """CommNet's pulls for the ids it is shown: ``obs_type="index"`` observations are read as
    a lookup table (fast), one-hot ones through the encoder (the same numbers)."""

    name = "levers"

    def __init__(self, model, agents, pool_size: int, seed: int = 0):
        super().__init__(model, agents, pool_size, seed)
        self.pool_size = int(pool_size)

    def inputs(self, obs):
        obs = np.asarray(obs, dtype=np.float32)
        return lever_ids(obs, self.pool_size) if obs.shape[-1] == 1 else torch.as_tensor(obs)


class Levers(learning.Learner):
    name = "levers"
    description = "CommNet or NoComm on lever pulling, supervised or REINFORCE (notebook 05)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts):
        super().__init__(task, config, parts)
        cfg = config
        if task.name != "levers":
            raise ValueError(f"the lever learner trains on the 'levers' task, not {task}")
        if cfg.mode not in ("supervised", "reinforce"):
            raise ValueError(f"mode must be 'supervised' or 'reinforce', got {cfg.mode!r}")
        if cfg.model not in ("commnet", "nocomm"):
            raise ValueError(f"lever pulling trains 'commnet' or 'nocomm', got {cfg.model!r}")
        self.seed_torch()
        self.eval_task = make_task(task, obs_type="index")  # ids as indices: CommNet's lookup table
        self.env = self.eval_task.batched(cfg.batch, seed=cfg.seed)
        self.pool_size = self.env.core.pool_size
        self.model = make_model(cfg.model, self.pool_size, self.env.n_actions, cfg)
        self.bind_parts()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.obs, self.info = self.env.reset(seed=cfg.seed)
        self.updates = 0
        self.since_log: dict[str, list] = {"team_return": [], "score": [], "loss": []}

    def bind_parts(self) -> None:
        plug_parts(self.model, self.parts)

    @property
    def total_updates(self) -> int:
        return -(-self.total_steps // self.config.batch)

    def iterate(self) -> None:
        """One update on a batch of rounds; a curve row when due."""
        cfg = self.config
        if cfg.lr_decay:
            for group in self.optimizer.param_groups:
                group["lr"] = cfg.lr * (1.0 - self.updates / self.total_updates)
        loss, info = self.play_and_score()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.info = info
        self.since_log["team_return"].append(float(np.mean(info["team_return"])))
        self.since_log["score"].append(float(np.mean(info["distinct_score"])))
        self.since_log["loss"].append(loss.item())
        self.updates += 1
        self.step += cfg.batch
        self.episode += cfg.batch
        if self.step // cfg.log_every > (self.step - cfg.batch) // cfg.log_every or self.done:
            self.log_block()

    def play_and_score(self) -> tuple[torch.Tensor, dict]:
        """Pull (sampled) in every round, then the mode's loss: cross-entropy to the ranks or
        ``reinforce_loss`` with the team's score as every agent's return."""
        cfg = self.config
        logits, values = self.model(lever_ids(self.obs, self.pool_size))
        dist = torch.distributions.Categorical(logits=logits)
        actions = dist.sample()
        targets = torch.as_tensor(self.info["target"])  # each agent's rank among the drawn ids
        self.obs, rewards, _, _, info = self.env.step(actions.numpy())  # one step: every round ends
        if cfg.mode == "supervised":
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)), info
        returns = torch.as_tensor(rewards)
        return self.parts.reinforce_loss(dist.log_prob(actions), values, returns, dist.entropy(),
                                         torch.ones_like(returns), cfg.value_coef, cfg.entropy_coef), info

    def log_block(self) -> None:
        cfg = self.config
        ev = evaluate(self.policy(), self.eval_task, cfg.eval_rounds, seed=10_000 + cfg.seed, num_envs=cfg.eval_rounds)
        s = self.since_log
        self.log(train_return=np.mean(s["team_return"]), eval_return=ev.mean, **{LOSS[cfg.mode]: np.mean(s["loss"])},
                 train_score=np.mean(s["score"]), eval_score=float(np.mean(ev.metrics["distinct_score"])),
                 lr=self.optimizer.param_groups[0]["lr"])
        self.since_log = {k: [] for k in s}

    def policy(self) -> LeverPolicy:
        return LeverPolicy(self.model, self.env.possible_agents, self.pool_size, self.config.seed)


def train(task: Any = "levers", config: Config | None = None, parts: Any = None, **run_options) -> learning.Run:
    """Train CommNet (or NoComm) on lever pulling; see :func:`course_lib.learning.train` for
    ``resume``, ``out``, ``save_every`` and ``progress``."""
    return learning.train(Levers, task, config, parts, **run_options)
