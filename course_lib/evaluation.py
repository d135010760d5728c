"""One evaluator for every policy and task: ``evaluate(policy, task, episodes, seed)``.

It runs ``episodes`` whole episodes and returns an :class:`Evaluation`: every agent's
return per episode, the team return (summed over the agents the policy plays for),
and the task's episode metrics (``success``, ``failure``, ``cars_completed``, ...).

Where the episodes run (``on``):

* ``"twin"`` (default): the batched twin, fast.  On the MPE tasks, episode ``k`` starts
  from exactly mpe2's ``reset(seed=seed + k)``, so the numbers are mpe2's episodes;
  on the course tasks ``num_envs`` environments are reset with ``seed`` and their
  episodes are taken round by round: every environment's first episode, then every
  environment's second, ... until ``episodes`` (the first ones to *end* would over-count
  short episodes, e.g. the quick catches of predator-prey).
* ``"single"`` (alias ``"mpe2"``): the PettingZoo environment, one episode at a time
  (``reset(seed=seed + k)``), through the policy's dict API -- mpe2 itself for the MPE
  tasks.  Slow, and the ground truth.

``policy`` is a :class:`course_lib.policy.Policy` (e.g. ``run.policy``) or the name of a
reference policy, ``"random"``, ``"noop"`` or ``"heuristic"``, built on the same env.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from course_lib.tasks import Task, task as make_task

__all__ = ["Evaluation", "evaluate", "reference_for", "REFERENCE_KINDS"]

REFERENCE_KINDS = ("random", "noop", "heuristic")


@dataclass
class Evaluation:
    """Episodes of one policy on one task.

    ``returns [episodes, N]``: each agent's return; ``team``: the agents whose returns
    make the team return; ``metrics``: per-episode task metrics (arrays ``[episodes]``).
    """

    returns: np.ndarray
    agents: list
    team: list
    metrics: dict = field(default_factory=dict)
    task: str = ""
    on: str = "twin"

    @property
    def team_returns(self) -> np.ndarray:
        """Team return of each episode ``[episodes]``."""
        return self.returns[:, self.team].sum(axis=1)

    @property
    def episodes(self) -> int:
        return int(self.returns.shape[0])

    @property
    def mean(self) -> float:
        """Mean team return."""
        return float(self.team_returns.mean())

    @property
    def sem(self) -> float:
        """Standard error of the mean team return."""
        r = self.team_returns
        return float(r.std(ddof=1) / np.sqrt(r.size)) if r.size > 1 else float("nan")

    @property
    def success(self) -> float | None:
        """Share of successful episodes, where the task defines success."""
        return float(np.mean(self.metrics["success"])) if "success" in self.metrics else None

    def summary(self) -> dict[str, float]:
        """``mean``, ``sem``, ``episodes``, ``return_per_agent`` and the mean of every metric."""
        out = {"mean": self.mean, "sem": self.sem, "episodes": self.episodes,
               "return_per_agent": float(self.returns[:, self.team].mean())}
        out.update({k: float(np.mean(v)) for k, v in self.metrics.items()})
        return out

    def __repr__(self) -> str:
        extra = f", success {self.success:.1%}" if self.success is not None else ""
        return (f"Evaluation({self.task} on {self.on}: team return {self.mean:.2f} ± {self.sem:.2f}"
                f"{extra}, {self.episodes} episodes)")


def _policy_for(policy: Any, env: Any, seed: int):
    if isinstance(policy, str):
        from course_lib.envs.policies import make_policy

        if policy not in REFERENCE_KINDS:
            raise ValueError(f"a reference policy is one of {REFERENCE_KINDS}, got {policy!r}")
        return make_policy(policy, env, seed=seed)
    if hasattr(policy, "policy") and not hasattr(policy, "act"):  # a Run
        return policy.policy
    if not hasattr(policy, "act"):
        raise TypeError(f"evaluate() takes a Policy (with .act) or one of {REFERENCE_KINDS}, "
                        f"got {type(policy).__name__}")
    return policy


def reference_for(kind: str, like: Any, task: "str | Task", seed: int = 0) -> Any:
    """The reference policy ``kind`` to set beside the policy ``like`` on ``task``.

    Where ``like`` plays for only part of the agents (simple_tag's predators, the others
    being its opponent), the reference plays that team and ``like`` the others
    (:class:`course_lib.policy.TeamSwap`), so both face the same opponent; otherwise it is
    just ``kind``, built by :func:`evaluate` on its own environment.
    """
    t = make_task(task)
    agents, team = getattr(like, "agents", None), getattr(like, "team", None)
    if agents is None or team is None or len(team) == len(agents) or not t.is_mpe:
        return kind
    from course_lib.envs.policies import make_policy
    from course_lib.policy import TeamSwap

    return TeamSwap(like, make_policy(kind, t.batched(1), seed=seed))


def _team(policy: Any, n: int) -> list[int]:
    return list(getattr(policy, "team", range(n)))


def _twin_mpe(policy, t: Task, episodes: int, seed: int, greedy: bool, num_envs: int | None):
    """mpe2's episodes ``seed, seed + 1, ...`` on the twin, ``num_envs`` at a time."""
    env = t.batched(num_envs or min(episodes, 100), seed=seed)
    pol = _policy_for(policy, env, seed)
    B, out = env.num_envs, []
    for r in range(-(-episodes // B)):
        obs, info = env.reset_from_seeds(range(seed + r * B, seed + (r + 1) * B))
        pol.reset(B)
        returns = np.full((B, env.num_agents), np.nan)
        finished = np.zeros(B, dtype=bool)
        while not finished.all():
            obs, _, _, _, info = env.step(pol.act(obs, info, greedy=greedy))
            new = info["done"] & ~finished
            returns[new] = info["episode_return"][new]
            finished |= info["done"]
        out.append(returns)
    return np.concatenate(out)[:episodes], {}, list(env.agent_names), _team(pol, env.num_agents)


def _twin_course(policy, t: Task, episodes: int, seed: int, greedy: bool, num_envs: int | None):
    """``num_envs`` environments reset with ``seed``, episodes round by round (env ``b``'s
    ``k``-th episode is number ``k * num_envs + b``), so that their lengths do not pick them."""
    env = t.batched(num_envs or min(episodes, 64), seed=seed)
    pol = _policy_for(policy, env, seed)
    B, rounds, keys = env.num_envs, -(-episodes // env.num_envs), list(env.core.metric_fill)
    returns = np.zeros((rounds, B, env.num_agents))
    metrics = {k: np.zeros((rounds, B)) for k in keys}
    ended = np.zeros(B, dtype=np.int64)  # episodes each environment has finished
    obs, info = env.reset(seed=seed)
    pol.reset(B)
    while (ended < rounds).any():
        obs, _, _, _, info = env.step(pol.act(obs, info, greedy=greedy))
        done = np.flatnonzero(info["done"] & (ended < rounds))
        returns[ended[done], done] = info["episode_return"][done]
        for k in keys:
            metrics[k][ended[done], done] = np.asarray(info[k], dtype=float)[done]
        ended += info["done"]
    metrics = {k: v.reshape(-1)[:episodes] for k, v in metrics.items()}
    return returns.reshape(rounds * B, -1)[:episodes], metrics, list(env.possible_agents), _team(pol, env.num_agents)


def _single(policy, t: Task, episodes: int, seed: int, greedy: bool):
    """One episode at a time on the PettingZoo environment (mpe2's for the MPE tasks)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mpe2's deprecation notes
        env = t.single()
    pol = _policy_for(policy, env, seed)
    agents = list(env.possible_agents)
    returns = np.zeros((episodes, len(agents)))
    metrics: dict[str, list] = {}
    for e in range(episodes):
        obs, infos = env.reset(seed=seed + e)
        pol.reset(1)
        while env.agents:
            obs, rew, _, _, infos = env.step(pol(obs, infos, greedy=greedy))
            for i, a in enumerate(agents):
                returns[e, i] += rew.get(a, 0.0)
        last = infos.get(agents[0], {}) if isinstance(infos, dict) else {}
        for k in getattr(getattr(env, "core", None), "metric_fill", {}):
            if k in last:
                metrics.setdefault(k, []).append(float(last[k]))
    env.close()
    return returns, {k: np.asarray(v) for k, v in metrics.items()}, agents, _team(pol, len(agents))


def evaluate(policy: Any, task: "str | Task | None" = None, episodes: int = 100, seed: int = 0,
             greedy: bool = True, on: str = "twin", num_envs: int | None = None) -> Evaluation:
    """Run ``episodes`` episodes of ``policy`` on ``task`` and return an :class:`Evaluation`.

    ``task`` defaults to the policy's own (``policy.task``); ``greedy=False`` samples
    actions from a stochastic policy; ``on`` is ``"twin"`` or ``"single"`` / ``"mpe2"``
    (see the module docstring); ``num_envs`` sets the twin's batch.
    """
    if task is None:
        task = getattr(policy, "task", None)
        if task is None:
            raise ValueError("say which task to evaluate on, e.g. evaluate(policy, 'simple_spread_v3')")
    t = make_task(task)
    episodes, seed = int(episodes), int(seed)
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if on in ("single", "mpe2"):
        if on == "mpe2" and not t.is_mpe:
            raise ValueError(f"on='mpe2' is for the MPE tasks; {t.name} runs on='single' or 'twin'")
        returns, metrics, agents, team = _single(policy, t, episodes, seed, greedy)
    elif on == "twin":
        run = _twin_mpe if t.is_mpe else _twin_course
        returns, metrics, agents, team = run(policy, t, episodes, seed, greedy, num_envs)
    else:
        raise ValueError(f"on must be 'twin', 'single' or 'mpe2', got {on!r}")
    return Evaluation(np.asarray(returns, dtype=float), agents, team, metrics, task=str(t), on=on)
