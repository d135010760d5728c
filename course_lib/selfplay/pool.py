"""Who wins on simple_tag, win-rate matrices, and the rolling opponent pool.

Taught in notebooks/08_self_play.

simple_tag_v3 (mpe2; 3 predators, 1 prey, 2 obstacles, 25 steps) has no winner of its
own: rewards are +10 to every predator per contact, -10 to the prey.  We call an
episode a **win for the predators when at least one of them touches the prey at least
once** in its 25 steps, and a **win for the prey when it is never touched**.  Every
episode has exactly one winner, so a predator's score against a prey is its win rate
and the prey's score is one minus it.  (Random predators against a random prey win
about 19% of episodes: the sides are not equal, see :func:`course_lib.selfplay.elo.side_advantage`.)

A *side policy* maps batched observations ``[B, N, D]`` (the batched twin's layout,
predators first) to the actions of its own agents only: ``[B, 3]`` for predators,
``[B, 1]`` for the prey -- what ``course_lib.algos.ppo`` frozen agents return.
:func:`side_policy` makes one of the random and scripted policies, :class:`TeamSide`
one of a trained policy whose ``team`` is a side (MADDPG's predators).  A :class:`Match`
puts two sides together into one :class:`course_lib.policy.Policy` of every agent (its
``team``: the predators), which :func:`course_lib.evaluation.evaluate` and the renderer
take like any other policy.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from course_lib.envs.mpe import SimpleTagVec
from course_lib.envs.mpe_policies import random_policy, tag_heuristic
from course_lib.policy import Policy

__all__ = ["PREDATORS", "PREY", "SIDES", "RandomSide", "HeuristicSide", "side_policy", "TeamSide", "Match", "play",
           "predator_wins", "win_rate", "win_rate_matrix", "exploitability_proxy", "PoolSide", "OpponentPool"]

AGENTS = ["adversary_0", "adversary_1", "adversary_2", "agent_0"]  # simple_tag_v3's agents, in mpe2's order
OBS_DIM = 16  # the widest observation (a predator's; the prey's 14 are zero-padded)
PREDATORS = slice(0, 3)
PREY = slice(3, 4)
SIDES = ("predator", "prey")
SidePolicy = Callable[[np.ndarray], np.ndarray]


def check_side(side: str) -> slice:
    if side not in SIDES:
        raise ValueError(f"side must be 'predator' or 'prey', got {side!r}")
    return PREDATORS if side == "predator" else PREY


class RandomSide:
    """Uniform random actions for one side; :func:`play` reseeds it, so every pairing
    with the same seed sees the same random actions (common random numbers)."""

    def __init__(self, side: str, seed: int = 0):
        self.cols = check_side(side)
        self.side = side
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return random_policy(obs, rng=self.rng)[:, self.cols]

    def __repr__(self) -> str:
        return f"RandomSide({self.side!r})"


class HeuristicSide:
    """The scripted simple_tag policy (:func:`course_lib.envs.mpe_policies.tag_heuristic`) of one side."""

    def __init__(self, side: str):
        self.cols = check_side(side)
        self.side = side

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return tag_heuristic(obs)[:, self.cols]

    def __repr__(self) -> str:
        return f"HeuristicSide({self.side!r})"


def side_policy(kind: str, side: str, seed: int = 0) -> SidePolicy:
    """``"random"`` or ``"heuristic"`` (course_lib.envs.mpe_policies) policy for ``side``
    (``"predator"`` or ``"prey"``), returning only that side's actions."""
    check_side(side)
    if kind == "random":
        return RandomSide(side, seed)
    if kind == "heuristic":
        return HeuristicSide(side)
    raise ValueError(f"kind must be 'random' or 'heuristic', got {kind!r}")


class TeamSide:
    """The ``team`` of a trained :class:`~course_lib.policy.Policy` as a side policy, acting
    greedily (e.g. ``TeamSide(maddpg_run.policy)``: MADDPG's predators).  The policy's
    ``team`` must be one side's agents."""

    def __init__(self, policy: Policy):
        team = list(policy.team)
        if list(policy.agents) != AGENTS or team not in (list(range(3)), [3]):
            raise ValueError(f"TeamSide needs a simple_tag policy whose team is the predators [0, 1, 2] or the "
                             f"prey [3]; got team {team} of {list(policy.agents)}")
        self.policy = policy

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if hasattr(self.policy, "team_actions"):  # only the team acts (its opponent, if any, is not asked)
            return np.asarray(self.policy.team_actions(obs, greedy=True))
        return np.asarray(self.policy.act(obs, greedy=True))[:, self.policy.team]

    def __repr__(self) -> str:
        return f"TeamSide({self.policy!r})"


class Match(Policy):
    """Predators and prey put together: ``match.act(obs [B, 4, D]) -> actions [B, 4]``.

    A side given as ``None`` plays action 0 (what a learner that fills in its own team's
    actions expects of its ``opponent``, e.g. ``maddpg.Config(opponent=Match(prey=...))``).
    ``team`` is the predators: an evaluation's team return is theirs.  The sides act as
    they are (a sampling snapshot samples, with ``greedy`` ignored).
    """

    name = "match"

    def __init__(self, predator: SidePolicy | None = None, prey: SidePolicy | None = None):
        super().__init__(AGENTS, OBS_DIM, team=range(3))
        self.predator, self.prey = predator, prey

    def act(self, obs: np.ndarray, info: Any = None, greedy: bool = True) -> np.ndarray:
        B = len(obs)
        pred = np.zeros((B, 3), dtype=np.int64) if self.predator is None else np.asarray(self.predator(obs))
        prey = np.zeros((B, 1), dtype=np.int64) if self.prey is None else np.asarray(self.prey(obs))
        return np.concatenate([pred.reshape(B, 3), prey.reshape(B, 1)], axis=1).astype(np.int64)

    def reseed(self, seed: int) -> None:
        """Reseed the random sides (:func:`play` does, for common random numbers)."""
        for side in (self.predator, self.prey):
            if hasattr(side, "reseed"):
                side.reseed(seed)

    def __repr__(self) -> str:
        return f"Match({self.predator!r}, {self.prey!r})"


def play(predator: SidePolicy, prey: SidePolicy, episodes: int = 200, seed: int = 0) -> np.ndarray:
    """Contacts (predator-prey collisions, summed over the three predators) in each of
    ``episodes`` 25-step simple_tag episodes played side by side; ``[episodes]`` ints.

    The episodes are ``SimpleTagVec(episodes).reset(seed=seed)``, the same for every
    pairing with the same seed (common random numbers); sampling policies draw from a
    torch generator seeded with ``seed`` (the caller's global torch state is restored)
    and random ones are reseeded, so a pairing's result is reproducible.
    """
    import torch

    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    match = Match(predator, prey)
    match.reseed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        env = SimpleTagVec(episodes)
        obs, _ = env.reset(seed=seed)
        contacts = np.zeros(episodes)
        for _ in range(env.max_cycles):
            obs, rewards, _, _, info = env.step(match.act(obs))
            contacts += rewards[:, 0] / 10.0  # every predator gets +10 per contact
    if not info["done"].all():  # pragma: no cover - max_cycles steps always end the episode
        raise RuntimeError("episodes did not end after max_cycles steps")
    return np.rint(contacts).astype(np.int64)


def predator_wins(contacts) -> np.ndarray:
    """Win for the predators: at least one contact in the episode (else the prey wins)."""
    return np.asarray(contacts) > 0


def win_rate(predator: SidePolicy, prey: SidePolicy, episodes: int = 200, seed: int = 0) -> float:
    """The predators' win rate (the prey's is one minus it)."""
    return float(predator_wins(play(predator, prey, episodes, seed)).mean())


def win_rate_matrix(predators: Mapping[str, SidePolicy], preys: Mapping[str, SidePolicy],
                    episodes: int = 200, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Predators' win rate of every predator (rows) against every prey (columns), all on
    the same ``episodes`` episodes."""
    from tqdm.auto import tqdm

    table = pd.DataFrame(index=list(predators), columns=list(preys), dtype=float)
    pairs = [(a, b) for a in predators for b in preys]
    for a, b in tqdm(pairs, disable=not progress, desc="win rates", leave=False):
        table.loc[a, b] = win_rate(predators[a], preys[b], episodes, seed)
    table.index.name, table.columns.name = "predator", "prey"
    return table


def exploitability_proxy(win_rates) -> float:
    """``0.5 - min_j win_rate_j``: how far the worst match-up falls below an even one.

    Positive: some opponent in the pool beats the agent more often than not; 0.5: one
    opponent beats it always.
    """
    rates = np.asarray(win_rates, dtype=float)
    if rates.size == 0:
        raise ValueError("exploitability_proxy needs the win rates against at least one opponent")
    return float(0.5 - np.min(rates))


class PoolSide:
    """A pool's members as one side policy: in a batch of ``B`` environments, environment
    ``i`` is played by member ``i % len(members)`` (a batch sees every member equally often,
    and every episode has one fixed opponent)."""

    def __init__(self, members: Sequence[tuple[str, SidePolicy]]):
        if not members:
            raise ValueError("the opponent pool is empty: add a policy first")
        self.names = [name for name, _ in members]
        self.policies = [policy for _, policy in members]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        owner = np.arange(len(obs)) % len(self.policies)
        out = None
        for k, policy in enumerate(self.policies):
            idx = np.flatnonzero(owner == k)
            if len(idx) == 0:
                continue
            part = np.asarray(policy(obs[idx]))
            if out is None:
                out = np.zeros((len(obs),) + part.shape[1:], dtype=np.int64)
            out[idx] = part
        return out

    def __repr__(self) -> str:
        return f"PoolSide({self.names})"


class OpponentPool:
    """A rolling pool of the last ``size`` frozen policies of one side (oldest dropped first)."""

    def __init__(self, size: int = 5):
        if size < 1:
            raise ValueError(f"an opponent pool holds at least one policy; got size={size}")
        self.size = int(size)
        self.members: deque[tuple[str, SidePolicy]] = deque(maxlen=self.size)

    def add(self, name: str, policy: SidePolicy) -> None:
        self.members.append((str(name), policy))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.members]

    def __len__(self) -> int:
        return len(self.members)

    def opponent(self) -> PoolSide:
        """The pool as it is now as one side policy (see :class:`PoolSide`)."""
        return PoolSide(list(self.members))

    def __repr__(self) -> str:
        return f"OpponentPool(size={self.size}, members={self.names})"
