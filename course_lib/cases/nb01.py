"""Judge cases of notebooks/01_game_theory (see course_lib/judge.py).

Games are random integer payoffs in a small range, so ties and duplicate payoff
vectors are common; 2 to 4 players. The solvers return sets (of actions, of
profiles), which are compared as sorted lists.
"""
from __future__ import annotations

import numpy as np

from course_lib import games
from course_lib.checks import as_profiles
from course_lib.judge import case

# Every solver of course_lib.games: an answer must not call any of them.
SOLVERS = [(games, ("best_response", "pure_nash_equilibria", "pareto_optimal",
                    "iterated_elimination", "mixed_equilibrium_2x2", "_is_best_response"))]


def _sorted_actions(value, name: str) -> np.ndarray:
    """A collection of action indices as a sorted float vector."""
    try:
        actions = np.array(value, dtype=float).ravel()
    except Exception as exc:  # noqa: BLE001 - anything that is not numbers
        raise AssertionError(f"{name} should return a list of action indices like [0, 2]; "
                             f"got {type(value).__name__}: {exc}") from None
    return np.sort(actions)


def _game(payoffs) -> str:
    return f"a {payoffs.ndim - 1}-player game with payoffs of shape {payoffs.shape}"


def _describe_best_response(args) -> str:
    payoffs, player, profile = args
    return f"{_game(payoffs)}, player {player}, profile {profile}"


def _observe_best_response(fn, args):
    payoffs, player, profile = args
    return _sorted_actions(fn(payoffs, player, profile), "best_response")


@case(reference=games.best_response, atol=1e-9, rtol=0.0, observe=_observe_best_response, forbid=SOLVERS,
      describe=_describe_best_response)
def best_response(rng):
    """(payoffs, player, profile): 2x2 to 4-player games, every player, random profiles."""
    inputs = []
    for shape in [(2, 2), (3, 3), (4, 2), (2, 5), (2, 3, 4), (3, 3, 3), (2, 2, 2, 2)]:
        n = len(shape)
        for _ in range(4):
            payoffs = rng.integers(-2, 3, size=shape + (n,)).astype(float)  # many ties
            for player in range(n):
                profile = tuple(int(rng.integers(size)) for size in shape)
                inputs.append((payoffs.copy(), player, profile))
    return inputs


def _observe_profiles(name):
    def observe(fn, args):
        return as_profiles(fn(*args), f"{name}'s answer")
    return observe


@case(reference=games.pure_nash_equilibria, atol=1e-9, rtol=0.0,
      observe=_observe_profiles("pure_nash_equilibria"), forbid=SOLVERS, describe=lambda args: _game(args[0]))
def pure_nash_equilibria(rng):
    """(payoffs,): random games with 2 to 4 players, plus common-payoff games full of ties."""
    inputs = []
    for shape in [(2, 2), (3, 3), (4, 5), (1, 3), (2, 3, 4), (3, 3, 3), (2, 2, 2, 2)]:
        for _ in range(6):
            inputs.append((rng.integers(-2, 3, size=shape + (len(shape),)).astype(float),))
        inputs.append((games.common_payoff(rng.integers(0, 3, size=shape).astype(float)),))
    return inputs


@case(reference=games.pareto_optimal, atol=1e-9, rtol=0.0,
      observe=_observe_profiles("pareto_optimal"), forbid=SOLVERS, describe=lambda args: _game(args[0]))
def pareto_optimal(rng):
    """(payoffs,): payoffs in {0, 1, 2} (ties, duplicate payoff vectors) and real-valued ones."""
    inputs = []
    for shape in [(2, 2), (3, 3), (3, 4), (2, 3, 2), (3, 3, 3)]:
        for _ in range(5):
            inputs.append((rng.integers(0, 3, size=shape + (len(shape),)).astype(float),))
        inputs.append((rng.normal(size=shape + (len(shape),)),))
    return inputs


def _observe_survivors(fn, args):
    survivors = fn(*args)
    try:
        per_player = list(survivors)
    except TypeError:
        raise AssertionError("iterated_elimination should return one list of actions per player, "
                             f"like [[1], [0, 1]]; got {type(survivors).__name__}") from None
    return [_sorted_actions(s, "iterated_elimination (per player)") for s in per_player]


@case(reference=games.iterated_elimination, atol=1e-9, rtol=0.0, observe=_observe_survivors, forbid=SOLVERS,
      describe=lambda args: _game(args[0]))
def iterated_elimination(rng):
    """(payoffs,): 2- and 3-player games where action-dependent bonuses make (iterated) dominance common."""
    inputs = []
    for shape in [(2, 2), (3, 3), (4, 3), (2, 3, 3), (3, 3, 3)]:
        n = len(shape)
        for _ in range(6):
            payoffs = rng.integers(-3, 4, size=shape + (n,)).astype(float)
            for i in range(n):
                bonus = rng.integers(0, 8, size=shape[i]).astype(float)
                payoffs[..., i] += np.expand_dims(bonus, tuple(j for j in range(n) if j != i))
            inputs.append((payoffs,))
    return inputs


def _observe_mixed(fn, args):
    """{"raises_value_error": 1.0 or 0.0, "p_q": [p, q] (nan, nan when it raised)}."""
    try:
        result = fn(*args)
    except ValueError:
        return {"raises_value_error": 1.0, "p_q": [float("nan"), float("nan")]}
    try:
        p_q = np.array(result, dtype=float).ravel()
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"mixed_equilibrium_2x2 should return two numbers (p, q); "
                             f"got {type(result).__name__}: {exc}") from None
    return {"raises_value_error": 0.0, "p_q": p_q}


def _clear_case(payoffs: np.ndarray) -> bool | None:
    """Whether the 2x2 game has a fully mixed equilibrium, None when it is too close to call.

    Only used to choose games (so that both kinds are judged); the verdict comes from
    the reference.
    """
    A, B = payoffs[..., 0], payoffs[..., 1]
    den_q = A[0, 0] - A[0, 1] - A[1, 0] + A[1, 1]
    den_p = B[0, 0] - B[0, 1] - B[1, 0] + B[1, 1]
    if abs(den_q) < 1e-3 or abs(den_p) < 1e-3:
        return False if den_q == 0 or den_p == 0 else None
    q, p = (A[1, 1] - A[0, 1]) / den_q, (B[1, 1] - B[1, 0]) / den_p
    if min(abs(p), abs(p - 1), abs(q), abs(q - 1)) < 1e-3:
        return None
    return bool(0 < p < 1 and 0 < q < 1)


@case(reference=games.mixed_equilibrium_2x2, observe=_observe_mixed, forbid=SOLVERS,
      describe=lambda args: f"the 2x2 game with payoffs {args[0].tolist()}")
def mixed_equilibrium_2x2(rng):
    """(payoffs,): random 2x2 games, at least 15 with a fully mixed equilibrium and 10 without."""
    mixed, pure = [], []
    while len(mixed) < 15 or len(pure) < 10:
        payoffs = np.round(rng.normal(size=(2, 2, 2)) * 4, 2)
        kind = _clear_case(payoffs)
        if kind is True and len(mixed) < 15:
            mixed.append((payoffs,))
        elif kind is False and len(pure) < 10:
            pure.append((payoffs,))
    order = rng.permutation(len(mixed) + len(pure))
    both = mixed + pure
    return [both[int(k)] for k in order]
