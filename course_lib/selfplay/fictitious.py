"""Exploitability, fictitious play and naive self-play in two-player matrix games.

Taught in notebooks/08_self_play, where students write the three parts the loop calls::

    x_t = best_response(A, ybar_{t-1}),  y_t = best_response(B.T, xbar_{t-1})   # fictitious play
    x_t = best_response(A, y_{t-1}),     y_t = best_response(B.T, x_{t-1})      # naive self-play
    xbar_t = update_average(xbar_{t-1}, x_t, t)                                # mean of x_0 .. x_t
    exploitability(A, xbar_t, ybar_t) = (max_i (A ybar)_i - min_j (xbar A)_j) / 2  # logged every round

(``best_response`` here answers a *mixed* strategy with a one-hot vector; notebook 01's
:func:`course_lib.games.best_response` lists the pure best responses of one player of an
n-player game to a pure profile.)

Convention: a two-player game is two payoff matrices, ``A`` for the row player and
``B`` for the column player, both of shape ``(m, n)``; in a zero-sum game ``B = -A``
and the game is given by ``A`` alone.  A mixed strategy is a probability vector
(``x`` over rows, ``y`` over columns).  The course's matrix tasks (``matrix_<game>`` of
:mod:`course_lib.tasks`) store a game as one array ``(m, n, 2)``:
``A, B = payoffs[..., 0], payoffs[..., 1]``.

* NashConv (Lanctot et al. 2017) of a profile is the total gain of best-responding
  players: ``sum_i max_a u_i(a, s_-i) - u_i(s)``.  In a two-player zero-sum game the
  exploitability is ``NashConv / 2 = (max_i (A y)_i - min_j (x A)_j) / 2``: how much
  an opponent that knows your strategy wins on average, measured from the game's value.
  It is 0 exactly at a Nash equilibrium.
* Fictitious play (Brown 1951): every round each player best-responds to the
  *empirical average* of the opponent's past strategies.  In two-player zero-sum games
  the averages converge to a Nash equilibrium (Robinson 1951) while the played
  (current) strategies keep cycling.
* Naive self-play: each player best-responds to the opponent's *latest* strategy.

Both dynamics are one learner of the course's learning API::

    run = fictitious.train("matrix_rock_paper_scissors", fictitious.Config(total_steps=20_000),
                           parts=fictitious.Parts(best_response=my_best_response))
    run.curve["exploitability/average"]           # one row per round
    naive = fictitious.train("matrix_matching_pennies", fictitious.Config(respond_to="latest"))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from course_lib import learning
from course_lib.policy import Policy

__all__ = [
    "as_matrices",
    "best_response",
    "update_average",
    "exploitability",
    "nash_conv",
    "exploitability_curve",
    "Config",
    "Parts",
    "FictitiousPlay",
    "MixedStrategyPolicy",
    "train",
    "biased_rock_paper_scissors",
    "zero_sum_payoffs",
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


# ------------------------------------------------------------------------- the learner
@dataclass
class Config:
    """Fictitious play or naive self-play.  ``step`` counts rounds: in each round both
    players move once (round 0 plays ``start``); ``total_steps`` rounds in all."""

    seed: int = 0  # seeds the policy's sampling (the dynamics themselves are deterministic)
    total_steps: int = 20_000  # rounds, the first one (``start``) included
    respond_to: str = "average"  # "average": fictitious play; "latest": naive self-play
    start: tuple = (0, 0)  # pure actions of round 0 (row player, column player)
    log_every: int = 1  # rounds between curve rows


@dataclass
class Parts:
    """The functions of notebook 08 that the loop calls (defaults: the references)."""

    best_response: Callable = best_response
    update_average: Callable = update_average
    exploitability: Callable = exploitability


def _pure(index: int, size: int) -> np.ndarray:
    e = np.zeros(size)
    e[index] = 1.0
    return e


class MixedStrategyPolicy(Policy):
    """Each player plays from its own mixed strategy: samples it (``greedy=False``, the
    policy's own generator) or plays its most likely action (``greedy=True``).  ``team``
    is the row player: a team return is its payoff, as in the learner's curve."""

    name = "mixed_strategy"

    def __init__(self, strategies: Sequence[np.ndarray], agents, obs_dim: int, seed: int = 0):
        super().__init__(agents, obs_dim, team=[0])
        self.strategies = [np.asarray(s, dtype=float) for s in strategies]
        self.rng = np.random.default_rng(seed)

    def act(self, obs, info=None, greedy=True):
        batch = len(obs)
        if greedy:
            return np.tile([int(np.argmax(s)) for s in self.strategies], (batch, 1))
        return np.stack([self.rng.choice(len(s), size=batch, p=s / s.sum()) for s in self.strategies], axis=1)


class FictitiousPlay(learning.Learner):
    """Simultaneous best-response dynamics on a two-player matrix task.

    Curve (one row per round): ``train_return`` is the row player's payoff ``x A y`` of
    the round's strategies, ``eval_return`` that of the average strategies; then
    ``exploitability/average`` and ``exploitability/current`` (NashConv / 2 of the
    average and of the played strategies: the ``exploitability`` part in zero-sum games,
    :func:`nash_conv` / 2 otherwise) and the strategies ``x``, ``y``, ``x_avg``, ``y_avg``.
    """

    name = "fictitious_play"
    description = "fictitious play or naive self-play on a two-player matrix game (notebook 08)"
    Config = Config
    Parts = Parts

    def __init__(self, task, config: Config, parts: Parts):
        super().__init__(task, config, parts)
        if config.respond_to not in ("average", "latest"):
            raise ValueError(f"respond_to is 'average' (fictitious play) or 'latest' (naive self-play); "
                             f"got {config.respond_to!r}")
        env = task.batched(1, seed=config.seed)
        payoffs = getattr(getattr(env, "core", None), "payoffs", None)
        if payoffs is None or np.ndim(payoffs) != 3:
            raise ValueError(f"{task} is not a two-player matrix game (use a matrix_<game> task)")
        self.A, self.B = as_matrices(payoffs)
        self.zero_sum = bool(np.array_equal(self.B, -self.A))
        self.agents, self.obs_dim = list(env.possible_agents), int(env.obs_dim)
        m, n = self.A.shape
        self.x, self.y = _pure(config.start[0], m), _pure(config.start[1], n)
        self.x_avg, self.y_avg = self.x.copy(), self.y.copy()

    def iterate(self) -> None:
        """One round: both players respond (from round 1 on), then the curve row."""
        if self.step > 0:
            self.respond(self.step)
        self.step += 1
        self.episode += 1  # a round is one episode of the one-shot game
        if self.step % self.config.log_every == 0 or self.done:
            self.log_round()

    def respond(self, t: int) -> None:
        """Round ``t``: both best-respond at once (to the opponent's average or latest strategy)."""
        opp_x, opp_y = (self.x_avg, self.y_avg) if self.config.respond_to == "average" else (self.x, self.y)
        # copies: an answer that edits its inputs in place cannot change earlier rounds
        x = np.array(self.parts.best_response(self.A, opp_y.copy()), dtype=float)
        y = np.array(self.parts.best_response(self.B.T, opp_x.copy()), dtype=float)  # column player: payoff[b, a] = B[a, b]
        x_avg = np.array(self.parts.update_average(self.x_avg.copy(), x.copy(), t), dtype=float)
        y_avg = np.array(self.parts.update_average(self.y_avg.copy(), y.copy(), t), dtype=float)
        self.x, self.y, self.x_avg, self.y_avg = x, y, x_avg, y_avg  # all at once: an interrupted round leaves no trace

    def log_round(self) -> None:
        A = self.A
        if self.zero_sum:
            gap = self.parts.exploitability
        else:  # general sum: NashConv / 2 from both payoff matrices
            def gap(A, x, y):
                return 0.5 * nash_conv(A, self.B, x, y)
        self.log(train_return=self.x @ A @ self.y, eval_return=self.x_avg @ A @ self.y_avg,
                 **{"exploitability/average": float(gap(A, self.x_avg, self.y_avg)),
                    "exploitability/current": float(gap(A, self.x, self.y))},
                 x=self.x, y=self.y, x_avg=self.x_avg, y_avg=self.y_avg)

    def policy(self) -> MixedStrategyPolicy:
        """The average strategies (fictitious play's answer)."""
        return MixedStrategyPolicy([self.x_avg, self.y_avg], self.agents, self.obs_dim, self.config.seed)


def train(task: Any = "matrix_rock_paper_scissors", config: Config | None = None, parts: Any = None,
          **run_options) -> learning.Run:
    """Fictitious play (or naive self-play, ``Config(respond_to="latest")``) on a matrix task;
    see :func:`course_lib.learning.train` for ``resume``, ``out``, ``save_every`` and ``progress``."""
    return learning.train(FictitiousPlay, task, config, parts, **run_options)


# ------------------------------------------------------------------------- games
def biased_rock_paper_scissors() -> np.ndarray:
    """Rock-paper-scissors where rock beating scissors pays 2 (and scissors losing to rock costs 2).

    Row payoffs ``A`` (zero-sum, symmetric).  Its Nash equilibrium is (1/4, 1/2, 1/4) for
    both players, value 0.  The best-response cycle R -> P -> S -> R still visits the
    actions equally often, so the average of naive self-play goes to the uniform
    strategy, which is exploitable here (by 1/3).
    """
    return np.array([[0.0, -1.0, 2.0], [1.0, 0.0, -1.0], [-2.0, 1.0, 0.0]])


def zero_sum_payoffs(A) -> np.ndarray:
    """The zero-sum game ``A`` as a matrix task's payoff array ``(m, n, 2)`` (``B = -A``), e.g.
    ``task("matrix_rock_paper_scissors", payoffs=zero_sum_payoffs(biased_rock_paper_scissors()))``."""
    A = np.asarray(A, dtype=float)
    return np.stack([A, -A], axis=-1)


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
