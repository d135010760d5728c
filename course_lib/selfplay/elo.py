"""Elo ratings: the expected score, the K-factor update, league ratings and frozen-pool ratings.

Taught in notebooks/08_self_play (students write :func:`expected_score` and :func:`elo_update`;
:func:`league_ratings` and :func:`frozen_pool_rating` take them as parts, so the notebook's
Elo tables are computed by the student's functions).

Elo (1978): a player rated ``R_A`` is expected to score
``E_A = 1 / (1 + 10 ** ((R_B - R_A) / 400))`` against ``R_B`` (a win counts 1, a draw 1/2,
a loss 0); 400 points of difference mean odds of 10 to 1.  After a game with score
``S_A`` both ratings move by ``K (S_A - E_A)`` in opposite directions (``K = 32``).
Ratings are only defined up to a constant, so some players are *anchored*: random
policies sit at 1000 and never move.

Asymmetric games.  In simple_tag a game is always predators against prey, and the two
sides are not equal: random predators tag a random prey in only about 19% of episodes.
As chess does for the first move (and sports ratings for home advantage), the side's
edge is a fixed number of points ``advantage`` added to the first player's rating in the
expected score: ``E_A = expected_score(R_A + advantage, R_B)``.  With
``advantage = side_advantage(p)``, where ``p`` is the random predators' win rate against
the random prey, both random policies can sit at 1000 and still predict their own match.

Two ways to rate a stream of agents:

* :func:`league_ratings` -- everybody's rating moves after every game (the Elo of a
  self-play league).  A rating then depends on who else was in the league and when,
  so numbers from two leagues cannot be compared.
* :func:`frozen_pool_rating` -- the pool's ratings are fixed once; a newcomer's rating is
  the value at which its K-factor updates against the pool cancel in expectation
  (``sum_j n_j (s_j - E(R, R_j)) = 0``, the *performance rating*).  Any agent rated
  against the same frozen pool is comparable with any other.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["K", "ANCHOR", "expected_score", "elo_update", "side_advantage", "league_ratings",
           "frozen_pool_rating", "matches_from_win_rates"]

K = 32.0  # the K-factor of the issue (and of chess federations for new players)
ANCHOR = 1000.0  # rating of the random policies


# ------------------------------------------------------------------ what students write
def expected_score(rating_a, rating_b):
    """``E_A = 1 / (1 + 10 ** ((R_B - R_A) / 400))``, elementwise (floats or arrays).

    Taught in notebooks/08_self_play.
    """
    rating_a, rating_b = np.asarray(rating_a, dtype=float), np.asarray(rating_b, dtype=float)
    return 1.0 / (1.0 + 10.0 ** ((rating_b - rating_a) / 400.0))


def elo_update(rating_a, rating_b, score_a, k: float = K):
    """New ratings ``(R_A', R_B')`` after A scored ``score_a`` (1 win, 0.5 draw, 0 loss) against B.

    ``R_A' = R_A + k (S_A - E_A)`` and ``R_B' = R_B - k (S_A - E_A)``: B scored ``1 - S_A``
    and expected ``1 - E_A``.  Elementwise for arrays.
    Taught in notebooks/08_self_play.
    """
    change = k * (np.asarray(score_a, dtype=float) - expected_score(rating_a, rating_b))
    return np.asarray(rating_a, dtype=float) + change, np.asarray(rating_b, dtype=float) - change


# ------------------------------------------------------------------ asymmetric games
def side_advantage(win_rate: float) -> float:
    """The Elo points of a side that wins ``win_rate`` of its games between equals:
    ``400 log10(p / (1 - p))`` (negative for a side that wins less than half)."""
    p = float(win_rate)
    if not 0.0 < p < 1.0:
        raise ValueError(f"win_rate must be strictly between 0 and 1 to give a finite advantage; got {p}")
    return float(400.0 * np.log10(p / (1.0 - p)))


# ------------------------------------------------------------------------- leagues
def league_ratings(matches: Iterable[tuple[str, str, float]], anchors: Mapping[str, float] | None = None,
                   initial: Mapping[str, float] | None = None, k: float = K,
                   advantage: float = 0.0, *, elo_update: Callable = elo_update) -> dict[str, float]:
    """Sequential Elo over ``matches`` ``(player_a, player_b, score_a)`` in the given order.

    ``anchors``: players whose rating is fixed (default ``{}``); ``initial``: starting
    ratings of the others (default :data:`ANCHOR`); ``advantage``: points added to
    ``player_a``'s rating in the expected score (the first player's side edge, see the
    module docstring).  An anchored player's opponent still moves.  ``elo_update``: the
    update applied after every game (the part; default the reference).  Returns the
    final ratings of every player seen.
    """
    anchors = dict(anchors or {})
    ratings = {**{p: float(r) for p, r in (initial or {}).items()}, **{p: float(r) for p, r in anchors.items()}}
    for a, b, score in matches:
        if not 0.0 <= float(score) <= 1.0:
            raise ValueError(f"a score is 1 (win), 0.5 (draw) or 0 (loss) for the first player; got {score}")
        ra, rb = ratings.setdefault(a, ANCHOR), ratings.setdefault(b, ANCHOR)
        new_a, new_b = elo_update(ra + advantage, rb, float(score), k)
        if a not in anchors:
            ratings[a] = float(new_a) - advantage
        if b not in anchors:
            ratings[b] = float(new_b)
    return ratings


def matches_from_win_rates(win_rates: pd.DataFrame, games: int, rng: np.random.Generator
                           ) -> list[tuple[str, str, float]]:
    """Individual games behind a win-rate table (row players beat column players at rate
    ``p``; ``games`` played per pair), shuffled: the input of :func:`league_ratings`."""
    matches = []
    for a in win_rates.index:
        for b in win_rates.columns:
            wins = int(round(float(win_rates.loc[a, b]) * games))
            matches += [(str(a), str(b), 1.0)] * wins + [(str(a), str(b), 0.0)] * (games - wins)
    order = rng.permutation(len(matches))
    return [matches[i] for i in order]


def frozen_pool_rating(scores: Sequence[float], pool_ratings: Sequence[float],
                       games: Sequence[int] | int = 1, advantage: float = 0.0,
                       lo: float = -1000.0, hi: float = 4000.0, *,
                       expected_score: Callable = expected_score) -> float:
    """The performance rating against a pool whose ratings are frozen.

    ``scores[j]``: the newcomer's mean score against pool member ``j`` (over ``games[j]``
    games); ``advantage``: the newcomer's side edge (added to its rating in the expected
    score).  Returns the rating ``R`` at which the expected K-factor change is zero,
    ``sum_j games_j (scores_j - E(R + advantage, R_j)) = 0`` (bisection; the left side
    falls with ``R``; ``expected_score`` is the part that gives ``E``).  A perfect (or
    null) record has no finite solution: the result is then clipped to ``[lo, hi]``.
    """
    scores = np.asarray(scores, dtype=float)
    pool = np.asarray(pool_ratings, dtype=float)
    if scores.shape != pool.shape or scores.ndim != 1 or len(scores) == 0:
        raise ValueError(f"need one score per pool member; got {scores.shape} scores and {pool.shape} ratings")
    if np.any((scores < 0) | (scores > 1)):
        raise ValueError(f"scores are mean scores in [0, 1]; got {scores}")
    weights = np.broadcast_to(np.asarray(games, dtype=float), scores.shape)

    def surplus(r: float) -> float:
        return float(np.sum(weights * (scores - np.asarray(expected_score(r + advantage, pool), dtype=float))))

    if surplus(hi) >= 0:
        return hi
    if surplus(lo) <= 0:
        return lo
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if surplus(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)
