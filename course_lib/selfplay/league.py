"""Predators and prey trained against rolling pools of their past selves on simple_tag.

Taught in notebooks/08_self_play.  The learner is independent PPO from
:mod:`course_lib.algos.ppo` (one network per side, shared by the side's agents, with an
agent id).  One *generation* ``g >= 1``:

1. the predators train for ``steps_per_generation`` environment steps against the prey
   pool (environment ``i`` of the batch is played by prey ``i % len(pool)``);
2. the prey trains as long against the predator pool (both pools hold generations
   ``< g`` only, so neither side sees the other's newest version);
3. frozen copies of both join their pools (the oldest of ``pool_size`` leaves) and an
   archive of every generation;
4. the new snapshots play ``eval_episodes`` episodes against every member of the
   opposing pool and against the random and scripted policies; a league Elo (K = 32,
   the random policies anchored at 1000, the predators' side edge ``advantage``) is
   updated game by game, in shuffled order.

Generation 0 is the untrained networks (close to uniform random actions); it also plays
the reference games (random and scripted against each other) so the scripted players
start with a rating.  ``pool_size=1`` is *naive self-play*: each side only ever meets the
other's latest version.

After training: :func:`frozen_pool` freezes a league's archive with its ratings, and
:func:`fixed_pool_elo` rates any policy against it (comparable across leagues).
:func:`train_maddpg_predators` trains MADDPG predators (:mod:`course_lib.algos.maddpg`)
against a fixed set of prey, for cross-play between algorithms.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from course_lib.envs.mpe import SimpleTagVec
from course_lib.selfplay import elo, pool as pools

if TYPE_CHECKING:  # the learners are imported when training starts (the Elo and pool tools do not need them)
    from course_lib.algos import ppo

__all__ = ["LeagueConfig", "LeagueResult", "default_ppo_config", "train_league", "reference_players",
           "FrozenPool", "frozen_pool", "fixed_pool_elo", "train_maddpg_predators"]

RANDOM_PRED, RANDOM_PREY = "pred:random", "prey:random"
SCRIPTED_PRED, SCRIPTED_PREY = "pred:heuristic", "prey:heuristic"


def default_ppo_config() -> "ppo.Config":
    """PPO settings for self-play: a constant learning rate (each generation is a new
    ``ppo.train`` call, so annealing would restart every generation)."""
    from course_lib.algos import ppo

    return ppo.Config(lr=3e-3, anneal_lr=False, share_parameters=True, agent_id=True,
                      epochs=4, minibatches=4, ent_coef=0.01, progress=False, log_every=10**9)


@dataclass
class LeagueConfig:
    """Settings of :func:`train_league`."""

    generations: int = 10  # train-both-sides-then-snapshot rounds
    steps_per_generation: int = 12_000  # environment steps per side per generation
    pool_size: int = 5  # opponents kept per side (1: naive self-play against the latest)
    num_envs: int = 32  # batched environments for training
    eval_episodes: int = 100  # episodes per pairing for the league Elo
    advantage: float = 0.0  # predators' side edge in Elo points (elo.side_advantage of random vs random)
    seed: int = 0  # seeds the networks, the training and the evaluation episodes
    ppo: ppo.Config = field(default_factory=default_ppo_config)  # the learner of both sides


@dataclass
class LeagueResult:
    """What :func:`train_league` returns."""

    history: pd.DataFrame  # one row per generation (see train_league)
    predators: dict  # name -> frozen side policy, every generation ("pred@g3")
    preys: dict  # name -> frozen side policy ("prey@g3")
    ratings: dict  # the league's final Elo ratings (random anchors and scripted players included)
    config: LeagueConfig
    wall_s: float  # wall-clock seconds of the whole league
    cpu_s: float  # CPU seconds of this process


def reference_players(seed: int = 0) -> tuple[dict, dict]:
    """``({"pred:random": ..., "pred:heuristic": ...}, {"prey:random": ..., "prey:heuristic": ...})``."""
    preds = {RANDOM_PRED: pools.side_policy("random", "predator", seed),
             SCRIPTED_PRED: pools.side_policy("heuristic", "predator")}
    preys = {RANDOM_PREY: pools.side_policy("random", "prey", seed + 1),
             SCRIPTED_PREY: pools.side_policy("heuristic", "prey")}
    return preds, preys


def _games(pairings: Sequence[tuple[str, str]], preds: Mapping[str, Any], preys: Mapping[str, Any],
           episodes: int, seed: int) -> tuple[list[tuple[str, str, float]], dict[tuple[str, str], float]]:
    """Every episode of every (predator, prey) pairing as a game ``(pred, prey, pred_score)``."""
    games, rates = [], {}
    for j, (a, b) in enumerate(pairings):
        wins = pools.predator_wins(pools.play(preds[a], preys[b], episodes, seed + j)).astype(float)
        rates[(a, b)] = float(wins.mean())
        games += [(a, b, float(w)) for w in wins]
    return games, rates


def train_league(config: LeagueConfig | None = None, progress: bool = True, **overrides) -> LeagueResult:
    """Train predators and prey by self-play against rolling pools; see the module docstring.

    ``history`` columns, one row per generation: ``generation``, ``step`` (environment
    steps of both sides so far), ``return/predator``, ``return/prey`` (mean per-agent
    training return in the generation, against the pool), ``elo/predator``,
    ``elo/prey`` (league Elo of the new snapshots when they joined), ``winrate/pool``
    (the new predators' mean win rate against the prey pool, this generation's prey
    included), ``exploitability/predator``, ``exploitability/prey`` (0.5 minus the
    snapshot's lowest score against the opposing pool), ``winrate/random_prey``,
    ``winrate/heuristic_prey`` (new predators against those prey), ``winrate/random_pred``
    (random predators against the new prey), ``time`` and ``cpu_s`` (so far).
    """
    from tqdm.auto import tqdm
    import torch

    from course_lib.algos import ppo

    cfg = replace(config or LeagueConfig(), **overrides)
    if cfg.generations < 1 or cfg.steps_per_generation < 1 or cfg.eval_episodes < 1:
        raise ValueError(f"need generations, steps_per_generation and eval_episodes >= 1; got {cfg}")
    start, cpu_start = time.perf_counter(), time.process_time()
    env = SimpleTagVec(cfg.num_envs, seed=cfg.seed)
    groups = {g.name: g for g in ppo.groups_of(env)}
    pcfg = replace(cfg.ppo, seed=cfg.seed, total_steps=cfg.steps_per_generation)
    torch.manual_seed(cfg.seed)
    learners = {"adversary": ppo.make_agent(groups["adversary"], pcfg),
                "agent": ppo.make_agent(groups["agent"], pcfg)}
    pred_pool, prey_pool = pools.OpponentPool(cfg.pool_size), pools.OpponentPool(cfg.pool_size)
    ref_preds, ref_preys = reference_players(cfg.seed)
    preds_all, preys_all = dict(ref_preds), dict(ref_preys)  # everyone who can play a game
    predators, preys = {}, {}
    anchors = {RANDOM_PRED: elo.ANCHOR, RANDOM_PREY: elo.ANCHOR}
    ratings = dict(anchors)
    rows = []
    for g in tqdm(range(cfg.generations + 1), disable=not progress, desc=f"league (pool {cfg.pool_size})"):
        row: dict[str, Any] = {"generation": g, "pool_size": cfg.pool_size, "seed": cfg.seed}
        if g > 0:
            seed = cfg.seed * 1000 + g
            df_pred, got = ppo.train(env, replace(pcfg, seed=2 * seed), agents={"adversary": learners["adversary"]},
                                     opponents={"agent": prey_pool.opponent()}, return_agents=True)
            learners["adversary"] = got["adversary"]
            df_prey, got = ppo.train(env, replace(pcfg, seed=2 * seed + 1), agents={"agent": learners["agent"]},
                                     opponents={"adversary": pred_pool.opponent()}, return_agents=True)
            learners["agent"] = got["agent"]
            row["return/predator"] = float(df_pred["return/adversary"].mean())
            row["return/prey"] = float(df_prey["return/agent"].mean())
        pred_name, prey_name = f"pred@g{g}", f"prey@g{g}"
        pred, prey = learners["adversary"].frozen(), learners["agent"].frozen()  # sampling, as trained
        pred_pool.add(pred_name, pred)
        prey_pool.add(prey_name, prey)
        predators[pred_name], preys[prey_name] = pred, prey
        preds_all[pred_name], preys_all[prey_name] = pred, prey
        # -- league Elo: the newcomers start where their previous versions ended
        ratings.setdefault(pred_name, ratings.get(f"pred@g{g - 1}", elo.ANCHOR))
        ratings.setdefault(prey_name, ratings.get(f"prey@g{g - 1}", elo.ANCHOR))
        pairings = [(pred_name, b) for b in prey_pool.names + list(ref_preys)]
        pairings += [(a, prey_name) for a in pred_pool.names + list(ref_preds) if a != pred_name]
        if g == 0:
            pairings += [(a, b) for a in ref_preds for b in ref_preys]
        eval_seed = 10_000 + 1_000 * g + 100_000 * cfg.seed
        games, rates = _games(pairings, preds_all, preys_all, cfg.eval_episodes, eval_seed)
        order = np.random.default_rng(eval_seed).permutation(len(games))
        ratings = elo.league_ratings([games[i] for i in order], anchors=anchors, initial=ratings,
                                     advantage=cfg.advantage)
        vs_pool = [rates[(pred_name, b)] for b in prey_pool.names]
        prey_vs_pool = [1.0 - rates[(a, prey_name)] for a in pred_pool.names]
        row.update({"elo/predator": ratings[pred_name], "elo/prey": ratings[prey_name],
                    "winrate/pool": float(np.mean(vs_pool)),
                    "exploitability/predator": pools.exploitability_proxy(vs_pool),
                    "exploitability/prey": pools.exploitability_proxy(prey_vs_pool),
                    "winrate/random_prey": rates[(pred_name, RANDOM_PREY)],
                    "winrate/heuristic_prey": rates[(pred_name, SCRIPTED_PREY)],
                    "winrate/random_pred": rates[(RANDOM_PRED, prey_name)],
                    "step": 2 * g * cfg.steps_per_generation,
                    "time": time.perf_counter() - start, "cpu_s": time.process_time() - cpu_start})
        rows.append(row)
    return LeagueResult(pd.DataFrame(rows), predators, preys, ratings, cfg,
                        time.perf_counter() - start, time.process_time() - cpu_start)


# ------------------------------------------------------------------ fixed-pool Elo
@dataclass
class FrozenPool:
    """Opponents with frozen ratings, per side: ``predators`` / ``preys`` map a name to
    ``(policy, rating)``; ``advantage`` is the predators' side edge the ratings assume."""

    predators: dict
    preys: dict
    advantage: float


def frozen_pool(league: LeagueResult) -> FrozenPool:
    """A league's archive (every generation) and its reference players, with the league's
    final ratings frozen: the yardstick of :func:`fixed_pool_elo`."""
    ref_preds, ref_preys = reference_players(league.config.seed)
    preds = {**ref_preds, **league.predators}
    preys = {**ref_preys, **league.preys}
    return FrozenPool({n: (p, league.ratings[n]) for n, p in preds.items()},
                      {n: (p, league.ratings[n]) for n, p in preys.items()}, league.config.advantage)


def fixed_pool_elo(players: Mapping[str, Any], side: str, pool: FrozenPool, episodes: int = 100,
                   seed: int = 50_000, progress: bool = False) -> pd.DataFrame:
    """Rate each of ``players`` (side policies of ``side``) against the frozen opposing pool.

    Every player plays ``episodes`` episodes against every member of the other side of
    ``pool`` (the same episodes for everyone); its rating is the performance rating of
    :func:`course_lib.selfplay.elo.frozen_pool_rating` (the pool's ratings do not move).
    Returns one row per player: ``player``, ``side``, ``elo`` (fixed-pool Elo),
    ``mean_score`` and ``min_score`` (its score against the pool members, the prey's
    score being 1 - the predators' win rate) and ``exploitability`` (0.5 - ``min_score``).
    """
    from tqdm.auto import tqdm

    pools._check_side(side)
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
                     "elo": elo.frozen_pool_rating(scores, ratings, episodes, advantage=advantage),
                     "mean_score": float(scores.mean()), "min_score": float(scores.min()),
                     "exploitability": pools.exploitability_proxy(scores)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ another algorithm
def train_maddpg_predators(prey_pool: Sequence[pools.SidePolicy], total_steps: int, seed: int = 0,
                           **overrides):
    """MADDPG predators (:func:`course_lib.algos.maddpg.train_maddpg` on simple_tag)
    trained against a fixed set of prey policies (environment ``i`` played by prey
    ``i % len(prey_pool)``); ``overrides`` replace fields of the MADDPG config (32 envs,
    batch 256, learning rates 1e-3 here).  Returns the :class:`~course_lib.algos.maddpg.MADDPGResult`;
    ``pools.maddpg_side(result.policy)`` is the predators' (greedy) side policy."""
    from course_lib.algos import maddpg

    if not prey_pool:
        raise ValueError("train_maddpg_predators needs at least one prey policy to train against")
    pool = pools.OpponentPool(len(prey_pool))
    for k, prey in enumerate(prey_pool):
        pool.add(f"prey{k}", prey)
    prey_side = pool.opponent()

    def opponent(obs: np.ndarray) -> np.ndarray:  # MADDPG wants full actions; it overwrites the predators'
        return np.concatenate([np.zeros((len(obs), 3), dtype=np.int64), prey_side(obs)], axis=1)

    # settings of this comparison, pinned here so that a change of maddpg's defaults does not
    # change notebooks/08: 32 environments (one gradient step per 32 transitions), batch 256, lr 1e-3
    cfg = maddpg.MADDPGConfig(opponent=opponent, num_envs=32, batch_size=256, actor_lr=1e-3, critic_lr=1e-3,
                              eval_every=0, eval_episodes=50, progress=False)
    return maddpg.train_maddpg("simple_tag_v3", replace(cfg, **overrides), seed=seed, total_steps=total_steps)
