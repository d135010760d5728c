"""Judge cases of notebooks/08_self_play (see course_lib/judge.py).

Ratings are drawn around 1000 with gaps up to a few hundred points (and a few extreme
ones); strategies are random points of the simplex, some of them pure; games are
random zero-sum matrices of 2 to 6 actions, plus integer games where ties between best
responses happen (the rule: the lowest index wins).
"""
from __future__ import annotations

import numpy as np

from course_lib.judge import case
from course_lib.selfplay import elo, fictitious

# Every reference of the notebook's TODOs: an answer must not call any of them.
REFERENCES = [(elo, ("expected_score", "elo_update")),
              (fictitious, ("best_response", "update_average", "exploitability", "nash_conv",
                              "exploitability_curve"))]


def _ratings(rng: np.random.Generator, size=None):
    return np.round(1000 + rng.normal(scale=250, size=size), 1)


@case(reference=elo.expected_score, forbid=REFERENCES)
def expected_score(rng):
    """(rating_a, rating_b): scalars, equal ratings, extreme gaps, and arrays (elementwise)."""
    inputs = [(float(a), float(b)) for a, b in zip(_ratings(rng, 12), _ratings(rng, 12))]
    inputs += [(1000.0, 1000.0), (1400.0, 1000.0), (200.0, 2600.0)]
    inputs += [(_ratings(rng, 6), _ratings(rng, 6)), (_ratings(rng, (2, 3)), float(_ratings(rng)))]
    return inputs


def _observe_update(fn, args):
    result = fn(*args)
    try:
        new_a, new_b = result
    except (TypeError, ValueError):
        raise AssertionError("elo_update should return the two new ratings (new_a, new_b); "
                             f"got {type(result).__name__}") from None
    return [np.asarray(new_a, dtype=float), np.asarray(new_b, dtype=float)]


@case(reference=elo.elo_update, observe=_observe_update, forbid=REFERENCES)
def elo_update(rng):
    """(rating_a, rating_b, score_a, k): wins, losses, draws, K = 32 and others, arrays."""
    inputs = []
    for _ in range(12):
        score = float(rng.choice([0.0, 0.5, 1.0]))
        k = float(rng.choice([32.0, 16.0, 10.0]))
        inputs.append((float(_ratings(rng)), float(_ratings(rng)), score, k))
    inputs.append((1000.0, 1000.0, 1.0, 32.0))
    inputs.append((_ratings(rng, 5), _ratings(rng, 5), rng.choice([0.0, 0.5, 1.0], size=5), 32.0))
    return inputs


def _simplex(rng: np.random.Generator, size: int) -> np.ndarray:
    if rng.random() < 0.2:  # a pure strategy
        s = np.zeros(size)
        s[rng.integers(size)] = 1.0
        return s
    return rng.dirichlet(np.ones(size))


def _observe_best_response(fn, args):
    return np.asarray(fn(*args), dtype=float).ravel()


@case(reference=fictitious.best_response, atol=1e-9, rtol=0.0, observe=_observe_best_response,
      forbid=REFERENCES)
def best_response(rng):
    """(payoff, opponent_strategy): real-valued games, and integer games with ties."""
    inputs = []
    for m, n in [(2, 2), (3, 3), (4, 2), (2, 5), (5, 4), (6, 6)]:
        for _ in range(3):
            inputs.append((rng.normal(size=(m, n)), _simplex(rng, n)))
        pure = np.zeros(n)
        pure[rng.integers(n)] = 1.0
        inputs.append((rng.integers(-1, 2, size=(m, n)).astype(float), pure))  # ties are likely
    inputs.append((np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]), np.ones(3) / 3))
    return inputs


@case(reference=fictitious.update_average, forbid=REFERENCES)
def update_average(rng):
    """(average, strategy, t): t = 0 (the first strategy), small and large t."""
    inputs = []
    for t in [0, 1, 2, 5, 37, 999]:
        size = int(rng.integers(2, 6))
        inputs.append((_simplex(rng, size), _simplex(rng, size), t))
    return inputs


@case(reference=fictitious.exploitability, atol=1e-5, rtol=1e-5, forbid=REFERENCES)
def exploitability(rng):
    """(A, x, y): random zero-sum games, random strategies, and a game's Nash equilibrium."""
    inputs = []
    for m, n in [(2, 2), (3, 3), (2, 4), (4, 3), (5, 5), (3, 6)]:
        for _ in range(3):
            inputs.append((np.round(rng.normal(size=(m, n)) * 3, 2), _simplex(rng, m), _simplex(rng, n)))
    rps = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
    inputs.append((rps, np.ones(3) / 3, np.ones(3) / 3))  # the equilibrium: 0
    inputs.append((rps * float(rng.integers(1, 5)), np.array([1.0, 0.0, 0.0]), _simplex(rng, 3)))
    return inputs
