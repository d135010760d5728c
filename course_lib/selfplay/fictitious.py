"""Exploitability, fictitious play and naive self-play in two-player matrix games.

Taught in notebooks/08_self_play (students write :func:`exploitability`,
:func:`best_response` and :func:`update_average`).

Convention: a two-player game is two payoff matrices, ``A`` for the row player and
``B`` for the column player, both of shape ``(m, n)``; in a zero-sum game ``B = -A``
and the game is given by ``A`` alone.  A mixed strategy is a probability vector
(``x`` over rows, ``y`` over columns).  ``course_lib.games`` stores the same games as
one array ``(m, n, 2)``: ``A, B = payoffs[..., 0], payoffs[..., 1]``.

* NashConv (Lanctot et al. 2017) of a profile is the total gain of best-responding
  players: ``sum_i max_a u_i(a, s_-i) - u_i(s)``.  In a two-player zero-sum game the
  exploitability is ``NashConv / 2 = (max_i (A y)_i - min_j (x A)_j) / 2``: how much
  an opponent that knows your strategy wins on average, measured from the game's value.
  It is 0 exactly at a Nash equilibrium.
* Fictitious play (Brown 1951): every iteration each player best-responds to the
  *empirical average* of the opponent's past strategies.  In two-player zero-sum games
  the averages converge to a Nash equilibrium (Robinson 1951) while the played
  (current) strategies keep cycling.
* Naive self-play: each player best-responds to the opponent's *latest* strategy.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "as_matrices",
    "best_response",
    "update_average",
    "exploitability",
    "nash_conv",
    "exploitability_curve",
    "fictitious_play",
    "naive_self_play",
    "biased_rock_paper_scissors",
    "random_zero_sum",
    "nashpy_equilibrium",
]


def as_matrices(payoffs) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` from a ``course_lib.games`` array ``(m, n, 2)`` or a zero-sum matrix ``A``."""
    array = np.asarray(payoffs, dtype=float)
    if array.ndim == 3 and array.shape[-1] == 2:
        return array[..., 0], array[..., 1]
    if array.ndim == 2:
        return array, -array
    raise ValueError(f"expected a payoff matrix (m, n) for a zero-sum game or a bimatrix array (m, n, 2); "
                     f"got shape {array.shape}")


def _strategy(s, size: int, name: str) -> np.ndarray:
    s = np.asarray(s, dtype=float)
    if s.shape != (size,):
        raise ValueError(f"{name} must be a probability vector of length {size}; got shape {s.shape}")
    if np.any(s < -1e-9) or abs(s.sum() - 1.0) > 1e-6:
        raise ValueError(f"{name} must be non-negative and sum to 1; got {s} (sum {s.sum():.6g})")
    return s


# ------------------------------------------------------------------ what students write
def best_response(payoff, opponent_strategy) -> np.ndarray:
    """One-hot pure best response to ``opponent_strategy`` (ties: the lowest index).

    ``payoff[a, b]``: this player's payoff for its action ``a`` against the opponent's
    action ``b`` (the row player passes ``A``, the column player ``B.T``).
    Taught in notebooks/08_self_play.
    """
    payoff = np.asarray(payoff, dtype=float)
    values = payoff @ np.asarray(opponent_strategy, dtype=float)  # expected payoff of each own action
    response = np.zeros(payoff.shape[0])
    response[int(np.argmax(values))] = 1.0  # argmax returns the first of tied actions
    return response


def update_average(average, strategy, t: int) -> np.ndarray:
    """Running mean: ``average`` of the first ``t`` strategies, plus ``strategy`` -> mean of ``t + 1``.

    ``t = 0`` returns ``strategy`` (``average`` is then ignored).
    Taught in notebooks/08_self_play.
    """
    average = np.asarray(average, dtype=float)
    strategy = np.asarray(strategy, dtype=float)
    return average + (strategy - average) / (t + 1)


def exploitability(A, x, y) -> float:
    """Exploitability ``NashConv / 2`` of ``(x, y)`` in the zero-sum game with row payoffs ``A``.

    ``= (max_i (A y)_i - min_j (x A)_j) / 2``; 0 exactly at a Nash equilibrium.
    Taught in notebooks/08_self_play.
    """
    A = np.asarray(A, dtype=float)
    if A.ndim != 2:
        raise ValueError(f"A must be the row player's payoff matrix (m, n); got shape {A.shape}")
    x, y = _strategy(x, A.shape[0], "x"), _strategy(y, A.shape[1], "y")
    row_best = np.max(A @ y)  # the row player's best-response value against y
    col_best = np.max(-(x @ A))  # the column player's (payoff -A) against x
    return float(0.5 * (row_best + col_best))  # the values x A y and -x A y cancel


# ------------------------------------------------------------------------- general sum
def nash_conv(A, B, x, y) -> float:
    """``sum_i (best-response value_i - value_i)`` of ``(x, y)`` in the bimatrix game ``(A, B)``."""
    A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
    x = _strategy(x, A.shape[0], "x")
    y = _strategy(y, A.shape[1], "y")
    return float(np.max(A @ y) - x @ A @ y + np.max(x @ B) - x @ B @ y)


def exploitability_curve(A, xs, ys) -> np.ndarray:
    """Exploitability of each pair ``(xs[t], ys[t])``, vectorised: ``[T]``."""
    A = np.asarray(A, dtype=float)
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    return 0.5 * (np.max(ys @ A.T, axis=1) - np.min(xs @ A, axis=1))


# ------------------------------------------------------------------------- dynamics
def _pure(index: int, size: int) -> np.ndarray:
    e = np.zeros(size)
    e[index] = 1.0
    return e


def fictitious_play(payoffs, iterations: int, start: Sequence[int] = (0, 0)) -> dict[str, np.ndarray]:
    """Simultaneous fictitious play for ``iterations`` rounds.

    Round 0 plays the pure actions ``start``; in round ``t >= 1`` each player plays a
    best response to the opponent's average over rounds ``0..t-1``.  Returns arrays
    ``[iterations, actions]``: ``x``, ``y`` (played) and ``x_avg``, ``y_avg`` (the
    averages after each round).
    """
    A, B = as_matrices(payoffs)
    m, n = A.shape
    x, y = _pure(start[0], m), _pure(start[1], n)
    x_avg, y_avg = x.copy(), y.copy()
    out = {k: np.zeros((iterations, size)) for k, size in (("x", m), ("y", n), ("x_avg", m), ("y_avg", n))}
    for t in range(iterations):
        if t > 0:
            x, y = best_response(A, y_avg), best_response(B.T, x_avg)  # both answer the past
            x_avg, y_avg = update_average(x_avg, x, t), update_average(y_avg, y, t)
        out["x"][t], out["y"][t], out["x_avg"][t], out["y_avg"][t] = x, y, x_avg, y_avg
    return out


def naive_self_play(payoffs, iterations: int, start: Sequence[int] = (0, 0)) -> dict[str, np.ndarray]:
    """Each player best-responds to the opponent's *latest* strategy; same outputs as
    :func:`fictitious_play` (the averages are only observed, never played against)."""
    A, B = as_matrices(payoffs)
    m, n = A.shape
    x, y = _pure(start[0], m), _pure(start[1], n)
    x_avg, y_avg = x.copy(), y.copy()
    out = {k: np.zeros((iterations, size)) for k, size in (("x", m), ("y", n), ("x_avg", m), ("y_avg", n))}
    for t in range(iterations):
        if t > 0:
            x, y = best_response(A, y), best_response(B.T, x)
            x_avg, y_avg = update_average(x_avg, x, t), update_average(y_avg, y, t)
        out["x"][t], out["y"][t], out["x_avg"][t], out["y_avg"][t] = x, y, x_avg, y_avg
    return out


# ------------------------------------------------------------------------- games
def biased_rock_paper_scissors() -> np.ndarray:
    """Rock-paper-scissors where rock beating scissors pays 2 (and scissors losing to rock costs 2).

    Row payoffs ``A`` (zero-sum, symmetric).  Its Nash equilibrium is (1/4, 1/2, 1/4) for
    both players, value 0.  The best-response cycle R -> P -> S -> R still visits the
    actions equally often, so the average of naive self-play goes to the uniform
    strategy, which is exploitable here (by 1/3).
    """
    return np.array([[0.0, -1.0, 2.0], [1.0, 0.0, -1.0], [-2.0, 1.0, 0.0]])


def random_zero_sum(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """A random zero-sum game: row payoffs ``A`` with standard normal entries."""
    return rng.normal(size=(m, n))


def nashpy_equilibrium(A) -> tuple[np.ndarray, np.ndarray, float]:
    """A Nash equilibrium ``(x, y)`` and the game value of the zero-sum game ``A``, from nashpy
    (its linear program for zero-sum games); used to cross-check :func:`exploitability`."""
    import nashpy

    A = np.asarray(A, dtype=float)
    game = nashpy.Game(A, -A)
    x, y = game.linear_program()
    x, y = np.clip(x, 0, None), np.clip(y, 0, None)
    x, y = x / x.sum(), y / y.sum()
    return x, y, float(x @ A @ y)
