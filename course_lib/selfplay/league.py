"""A self-play league on simple_tag: predators and prey trained against rolling pools of their past selves.

Taught in notebooks/08_self_play.  Both sides learn with independent PPO
(:class:`course_lib.algos.ppo.IPPO`, one network per side shared by the side's agents,
with an agent id).  One *generation* ``g >= 1`` (one :meth:`League.iterate`)::

    predators: steps_per_generation steps of PPO against the prey pool      # env i played by member i % len(pool)
    prey:      steps_per_generation steps of PPO against the predator pool  # both pools hold generations < g only
    join:      frozen copies of both join their pools (the oldest of pool_size leaves) and the archive
    rate:      the newcomers play eval_episodes episodes against every member of the opposing pool and
               the random and scripted players; the league Elo moves game by game (shuffled):
               R_a, R_b = elo_update(R_a + h, R_b, score, K)                 # the part; h: the predators' edge
    log:       a curve row; Elo's prediction of the new predators' score against the prey pool is
               expected_score(R_pred + h, R_prey)                            # the other part

Generation 0 (built with the league) is the untrained networks, close to uniform random
actions; it also plays the reference games (random and scripted against each other) so
that the scripted players start with a rating.  ``pool_size=1`` is *naive self-play*: each
side only ever meets the other's latest version.  Train it with the course's learning API::

    run = league.train("simple_tag_v3", league.Config(total_steps=240_000, pool_size=5),
                       parts=league.Parts(expected_score=expected_score, elo_update=elo_update))
    run.curve                                    # one row per generation (see League)
    run.learner.predators, run.learner.preys     # every generation's frozen snapshot ("pred@g3")
    frozen = league.frozen_pool(run)             # the archive with its final ratings, frozen
    league.fixed_pool_elo(players, "predator", frozen, expected_score=expected_score)

Win rates come from :func:`course_lib.selfplay.pool.play` (every pairing on the same
episodes, sampling snapshots seeded per pairing).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from course_lib import learning
from course_lib.algos import ppo
from course_lib.selfplay import elo, pool as pools

__all__ = ["Config", "Parts", "League", "train", "default_ppo_config", "reference_players", "FrozenPool",
           "frozen_pool", "fixed_pool_elo"]

RANDOM_PRED, RANDOM_PREY = "pred:random", "prey:random"
SCRIPTED_PRED, SCRIPTED_PREY = "pred:heuristic", "prey:heuristic"
SIDE_GROUPS = {"predator": "adversary", "prey": "agent"}  # ppo's group of each side


def default_ppo_config() -> ppo.Config:
    """PPO settings of both sides: 32 environments, a constant learning rate (each generation
    is a new PPO run, so annealing would restart every generation), no evaluations."""
    return ppo.Config(num_envs=32, lr=3e-3, anneal_lr=False, share_parameters=True, agent_id=True, epochs=4,
                      minibatches=4, ent_coef=0.01, log_every=10**9, eval_episodes=0)


@dataclass
class Config:
    """A self-play league on simple_tag.  ``step`` counts environment steps of both sides (summed
    over PPO's ``num_envs``): a generation trains each side ``steps_per_generation`` steps."""

    seed: int = 0  # seeds the networks, every generation's training and the evaluation games
    total_steps: int = 240_000  # both sides' steps: generations = total_steps // (2 * steps_per_generation)
    steps_per_generation: int = 12_000  # environment steps per side and generation
    pool_size: int = 5  # past selves kept as opponents, per side (1: naive self-play against the latest)
    eval_episodes: int = 100  # episodes per pairing for the league Elo
    advantage: float = 0.0  # the predators' side edge in Elo points (elo.side_advantage of random vs random)
    ppo: ppo.Config = field(default_factory=default_ppo_config)  # both sides' learner (seed, total_steps set per run)


@dataclass
class Parts:
    """The functions of notebook 08 that the league calls (defaults: the references)."""

    expected_score: Callable = elo.expected_score
    elo_update: Callable = elo.elo_update


def reference_players(seed: int = 0) -> tuple[dict, dict]:
    """``({"pred:random": ..., "pred:heuristic": ...}, {"prey:random": ..., "prey:heuristic": ...})``."""
    preds = {RANDOM_PRED: pools.side_policy("random", "predator", seed),
             SCRIPTED_PRED: pools.side_policy("heuristic", "predator")}
    preys = {RANDOM_PREY: pools.side_policy("random", "prey", seed + 1),
             SCRIPTED_PREY: pools.side_policy("heuristic", "prey")}
    return preds, preys


def play_games(pairings: Sequence[tuple[str, str]], preds: Mapping[str, Any], preys: Mapping[str, Any],
               episodes: int, seed: int) -> tuple[list[tuple[str, str, float]], dict[tuple[str, str], float]]:
    """Every episode of every (predator, prey) pairing as a game ``(pred, prey, pred_score)``,
    and each pairing's win rate; pairing ``j`` plays the episodes of ``seed + j``."""
    games, rates = [], {}
    for j, (a, b) in enumerate(pairings):
        wins = pools.predator_wins(pools.play(preds[a], preys[b], episodes, seed + j)).astype(float)
        rates[(a, b)] = float(wins.mean())
        games += [(a, b, float(w)) for w in wins]
    return games, rates


class League(learning.Learner):
    """Predators and prey of simple_tag trained by self-play against rolling pools.

    Curve, one row per generation: ``train_return`` = ``return/predator`` and ``return/prey``
    (mean per-agent training return of the generation, against the pool), ``elo/predator``,
    ``elo/prey`` (league Elo of the new snapshots when they joined), ``winrate/pool`` (the new
    predators' mean win rate against the prey pool, this generation's prey included) and
    ``winrate/pool_predicted`` (what the ratings predict), ``exploitability/predator``,
    ``exploitability/prey`` (0.5 minus the snapshot's lowest score against the opposing pool),
    ``winrate/random_prey``, ``winrate/heuristic_prey`` (new predators against those prey),
    ``winrate/random_pred`` (random predators against the new prey), ``cpu_s`` (so far).
    ``train_cpu_s``: each side's CPU seconds of PPO training so far (what a CPU-matched
    comparison gives another learner of that side).
    """

    name = "league"
    description = "IPPO predators and prey of simple_tag against rolling pools of past selves, league Elo (notebook 08)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts):
        super().__init__(task, config, parts)
        if task.name != "simple_tag_v3":
            raise ValueError(f"the league plays simple_tag_v3 (predators against prey), not {task}")
        if self.generations < 1 or config.eval_episodes < 1:
            raise ValueError(f"need total_steps >= 2 * steps_per_generation (one generation) and eval_episodes "
                             f">= 1; got {config}")
        groups = {g.name: g for g in ppo.groups_of(task.batched(1))}
        torch.manual_seed(config.seed)
        self.agents = {name: ppo.make_agent(groups[name], config.ppo) for name in ("adversary", "agent")}
        self.pred_pool, self.prey_pool = pools.OpponentPool(config.pool_size), pools.OpponentPool(config.pool_size)
        self.ref_preds, self.ref_preys = reference_players(config.seed)
        self.predators: dict[str, Any] = {}  # archive: every generation's frozen predators ("pred@g3")
        self.preys: dict[str, Any] = {}
        self.anchors = {RANDOM_PRED: elo.ANCHOR, RANDOM_PREY: elo.ANCHOR}
        self.ratings = dict(self.anchors)  # the league Elo of everyone who has played
        self.generation, self.cpu_s = 0, 0.0  # CPU seconds of this process in the league so far
        self.train_cpu_s = {"predator": 0.0, "prey": 0.0}  # of those, each side's PPO training (games excluded)
        self.clock = time.process_time()
        self.join_and_rate({})  # generation 0: the untrained networks
        self.cpu_s += time.process_time() - self.clock

    @property
    def generations(self) -> int:
        return self.total_steps // (2 * self.config.steps_per_generation)

    @property
    def done(self) -> bool:
        return self.generation >= self.generations

    def iterate(self) -> None:
        """One generation: the predators train against the prey pool, then the prey against the
        predator pool; both join their pools and are rated (whole or, on Ctrl-C, not at all)."""
        with ppo.rollback_on_interrupt(self):
            self.clock = time.process_time()
            self.generation += 1
            seed = self.config.seed * 1000 + self.generation
            returns = {"predator": self.train_side("adversary", "agent", self.prey_pool, 2 * seed),
                       "prey": self.train_side("agent", "adversary", self.pred_pool, 2 * seed + 1)}
            self.join_and_rate(returns)
            self.cpu_s += time.process_time() - self.clock

    def train_side(self, group: str, opponent: str, pool: pools.OpponentPool, seed: int) -> float:
        """PPO for ``group`` against ``pool`` for ``steps_per_generation`` steps, continuing its
        network (fresh optimizer); returns its mean per-agent training return."""
        cfg = replace(self.config.ppo, seed=seed, total_steps=self.config.steps_per_generation)
        learner = ppo.IPPO(self.task, cfg, ppo.Parts(), agents={group: self.agents[group]},
                           opponents={opponent: pool.opponent()})
        while not learner.done:
            learner.iterate()
        self.agents[group] = learner.agents[group]
        self.train_cpu_s["predator" if group == "adversary" else "prey"] += learner.train_cpu
        self.step += learner.step
        self.episode += learner.episode
        return float(learner.rows[-1][f"return/{group}"])

    def join_and_rate(self, returns: dict) -> None:
        """Frozen copies of both sides (sampling, as trained) join their pools and the archive;
        they play the opposing pool and the reference players; the league Elo moves; a curve row."""
        g = self.generation
        pred_name, prey_name = f"pred@g{g}", f"prey@g{g}"
        pred, prey = self.agents["adversary"].frozen(), self.agents["agent"].frozen()
        self.pred_pool.add(pred_name, pred)
        self.prey_pool.add(prey_name, prey)
        self.predators[pred_name], self.preys[prey_name] = pred, prey
        rates = self.rate(pred_name, prey_name)
        vs_pool = [rates[(pred_name, b)] for b in self.prey_pool.names]
        prey_vs_pool = [1.0 - rates[(a, prey_name)] for a in self.pred_pool.names]
        r, h = self.ratings, self.config.advantage
        predicted = [float(self.parts.expected_score(r[pred_name] + h, r[b])) for b in self.prey_pool.names]
        self.log(train_return=returns.get("predator", np.nan), generation=g,
                 **{"return/predator": returns.get("predator", np.nan), "return/prey": returns.get("prey", np.nan),
                    "elo/predator": r[pred_name], "elo/prey": r[prey_name],
                    "winrate/pool": float(np.mean(vs_pool)), "winrate/pool_predicted": float(np.mean(predicted)),
                    "exploitability/predator": pools.exploitability_proxy(vs_pool),
                    "exploitability/prey": pools.exploitability_proxy(prey_vs_pool),
                    "winrate/random_prey": rates[(pred_name, RANDOM_PREY)],
                    "winrate/heuristic_prey": rates[(pred_name, SCRIPTED_PREY)],
                    "winrate/random_pred": rates[(RANDOM_PRED, prey_name)],
                    "cpu_s": self.cpu_s + time.process_time() - self.clock})

    def rate(self, pred_name: str, prey_name: str) -> dict[tuple[str, str], float]:
        """The newcomers' games against the opposing pool and the reference players, in shuffled
        order through ``elo_update`` (they start where their previous versions ended)."""
        g = self.generation
        self.ratings.setdefault(pred_name, self.ratings.get(f"pred@g{g - 1}", elo.ANCHOR))
        self.ratings.setdefault(prey_name, self.ratings.get(f"prey@g{g - 1}", elo.ANCHOR))
        pairings = [(pred_name, b) for b in self.prey_pool.names + list(self.ref_preys)]
        pairings += [(a, prey_name) for a in self.pred_pool.names + list(self.ref_preds) if a != pred_name]
        if g == 0:
            pairings += [(a, b) for a in self.ref_preds for b in self.ref_preys]
        seed = 10_000 + 1_000 * g + 100_000 * self.config.seed
        games, rates = play_games(pairings, {**self.ref_preds, **self.predators}, {**self.ref_preys, **self.preys},
                                  self.config.eval_episodes, seed)
        order = np.random.default_rng(seed).permutation(len(games))
        self.ratings = elo.league_ratings([games[i] for i in order], anchors=self.anchors, initial=self.ratings,
                                          advantage=self.config.advantage, elo_update=self.parts.elo_update)
        return rates

    def policy(self) -> ppo.TeamPolicy:
        """The predators (the ``team``) against the newest prey snapshot."""
        return ppo.TeamPolicy(self.task.batched(1), self.agents["adversary"], self.agents["agent"].frozen(),
                              seed=self.config.seed)


def train(task: Any = "simple_tag_v3", config: Config | None = None, parts: Any = None,
          **run_options) -> learning.Run:
    """A self-play league on simple_tag; see :func:`course_lib.learning.train` for ``resume``,
    ``out``, ``save_every`` and ``progress``."""
    return learning.train(League, task, config, parts, **run_options)


# ------------------------------------------------------------------ fixed-pool Elo
@dataclass
class FrozenPool:
    """Opponents with frozen ratings, per side: ``predators`` / ``preys`` map a name to
    ``(policy, rating)``; ``advantage`` is the predators' side edge the ratings assume."""

    predators: dict
    preys: dict
    advantage: float


def frozen_pool(run: Any) -> FrozenPool:
    """A league's archive (every generation) and its reference players, with the league's
    final ratings frozen: the yardstick of :func:`fixed_pool_elo` (``run``: a league Run)."""
    league = getattr(run, "learner", run)
    preds = {**league.ref_preds, **league.predators}
    preys = {**league.ref_preys, **league.preys}
    return FrozenPool({n: (p, league.ratings[n]) for n, p in preds.items()},
                      {n: (p, league.ratings[n]) for n, p in preys.items()}, league.config.advantage)


def fixed_pool_elo(players: Mapping[str, Any], side: str, pool: FrozenPool, episodes: int = 100,
                   seed: int = 50_000, progress: bool = False, *,
                   expected_score: Callable = elo.expected_score) -> pd.DataFrame:
    """Rate each of ``players`` (side policies of ``side``) against the frozen opposing pool.

    Every player plays ``episodes`` episodes against every member of the other side of
    ``pool`` (the same episodes for everyone); its rating is the performance rating of
    :func:`course_lib.selfplay.elo.frozen_pool_rating` with ``expected_score`` (the part;
    the pool's ratings do not move).  Returns one row per player: ``player``, ``side``,
    ``elo`` (fixed-pool Elo), ``mean_score`` and ``min_score`` (its score against the pool
    members, the prey's score being 1 - the predators' win rate) and ``exploitability``
    (0.5 - ``min_score``).
    """
    from tqdm.auto import tqdm

    pools.check_side(side)
    opponents = pool.preys if side == "predator" else pool.predators
    names = list(opponents)
    ratings = np.array([opponents[n][1] for n in names])
    # a prey's expected score is 1 - E(R_pred + adv, R) = E(R - adv, R_pred)
    advantage = pool.advantage if side == "predator" else -pool.advantage
    rows = []
    for player, policy in tqdm(players.items(), disable=not progress, desc=f"fixed-pool Elo ({side})", leave=False):
        scores = []
        for j, other in enumerate(names):
            pair = (policy, opponents[other][0]) if side == "predator" else (opponents[other][0], policy)
            rate = pools.win_rate(*pair, episodes=episodes, seed=seed + j)
            scores.append(rate if side == "predator" else 1.0 - rate)
        scores = np.asarray(scores)
        rows.append({"player": player, "side": side,
                     "elo": elo.frozen_pool_rating(scores, ratings, episodes, advantage=advantage,
                                                   expected_score=expected_score),
                     "mean_score": float(scores.mean()), "min_score": float(scores.min()),
                     "exploitability": pools.exploitability_proxy(scores)})
    return pd.DataFrame(rows)
