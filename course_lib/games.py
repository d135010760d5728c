"""Normal-form game tools: a catalogue of classic games and the reference solvers.

Taught in notebooks/01_game_theory.

Convention: an n-player game is a payoff array of shape ``(A_1, ..., A_n, n)``;
``payoffs[a_1, ..., a_n, i]`` is player ``i``'s payoff when player ``j`` plays
action ``a_j``. A two-player game with row-player matrix ``A`` and column-player
matrix ``B`` is ``from_bimatrix(A, B)``, of shape ``(m, k, 2)``.

Action profiles are tuples of ints ``(a_1, ..., a_n)``; lists of profiles are sorted.
A mixed strategy is a probability vector over one player's actions; a mixed profile
is a sequence of n such vectors.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

# Payoffs within TOL of the best are treated as ties (guards against float round-off).
TOL = 1e-9

__all__ = [
    "from_bimatrix",
    "common_payoff",
    "validate_payoffs",
    "prisoners_dilemma",
    "coordination_game",
    "battle_of_the_sexes",
    "stag_hunt",
    "matching_pennies",
    "rock_paper_scissors",
    "climbing_game",
    "penalty_game",
    "catalogue",
    "ACTION_NAMES",
    "best_response",
    "pure_nash_equilibria",
    "pareto_optimal",
    "iterated_elimination",
    "mixed_equilibrium_2x2",
    "action_values",
    "expected_payoff",
    "replicator_field",
    "replicator_step",
    "replicator_field_2x2",
    "best_response_field_2x2",
]


# --------------------------------------------------------------------------- builders


def validate_payoffs(payoffs) -> np.ndarray:
    """Check ``payoffs`` follows the ``(A_1, ..., A_n, n)`` convention; return it as floats.

    Raises ValueError saying what was wrong and what was expected.
    """
    try:
        array = np.asarray(payoffs, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"payoffs must be a numeric array of shape (A_1, ..., A_n, n); "
            f"could not convert {type(payoffs).__name__} to numbers: {exc}"
        ) from None
    if array.ndim < 2:
        raise ValueError(
            f"payoffs must have shape (A_1, ..., A_n, n) with at least one player; "
            f"got an array with {array.ndim} dimension(s), shape {array.shape}"
        )
    n_players = array.ndim - 1
    if array.shape[-1] != n_players:
        raise ValueError(
            f"payoffs must have shape (A_1, ..., A_n, n); shape {array.shape} describes "
            f"{n_players} player(s) (one axis per player's actions), so the last axis must have length "
            f"{n_players} (one payoff per player); it has length {array.shape[-1]}. "
            f"For a bimatrix game (A, B) use games.from_bimatrix(A, B)."
        )
    if any(size < 1 for size in array.shape[:-1]):
        raise ValueError(f"every player needs at least one action; got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("payoffs must be finite numbers (no NaN or inf)")
    return array


def from_bimatrix(A, B) -> np.ndarray:
    """Two-player game from the row player's matrix ``A`` and the column player's ``B``.

    Returns an array of shape ``(m, k, 2)``.
    """
    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float)
    if A.ndim != 2 or A.shape != B.shape:
        raise ValueError(
            f"A and B must be matrices of the same shape (m, k); got {A.shape} and {B.shape}"
        )
    return np.stack([A, B], axis=-1)


def common_payoff(M) -> np.ndarray:
    """Fully cooperative game: every player receives ``M[a_1, ..., a_n]``.

    ``M`` has one axis per player; returns shape ``M.shape + (M.ndim,)``.
    """
    M = np.asarray(M, dtype=float)
    if M.ndim < 1:
        raise ValueError("M must have one axis per player")
    return np.repeat(M[..., None], M.ndim, axis=-1)


# -------------------------------------------------------------------------- catalogue


def prisoners_dilemma() -> np.ndarray:
    """Prisoner's dilemma; actions (cooperate, defect). Unique Nash: (defect, defect)."""
    A = [[3, 0], [5, 1]]
    return from_bimatrix(A, np.transpose(A))


def coordination_game() -> np.ndarray:
    """Pure coordination with a better and a worse convention; actions (A, B)."""
    return common_payoff([[2, 0], [0, 1]])


def battle_of_the_sexes() -> np.ndarray:
    """Battle of the sexes; actions (opera, football). Player 0 prefers opera."""
    return from_bimatrix([[3, 0], [0, 2]], [[2, 0], [0, 3]])


def stag_hunt() -> np.ndarray:
    """Stag hunt; actions (stag, hare). Stag pays 4 together, 0 alone; hare pays 3."""
    A = [[4, 0], [3, 3]]
    return from_bimatrix(A, np.transpose(A))


def matching_pennies() -> np.ndarray:
    """Matching pennies (zero-sum); actions (heads, tails). Player 0 wins on a match."""
    A = np.array([[1, -1], [-1, 1]])
    return from_bimatrix(A, -A)


def rock_paper_scissors() -> np.ndarray:
    """Rock-paper-scissors (zero-sum); actions (rock, paper, scissors)."""
    A = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]])
    return from_bimatrix(A, -A)


def climbing_game() -> np.ndarray:
    """Climbing game (Claus & Boutilier 1998), common payoff; actions (a, b, c)."""
    return common_payoff([[11, -30, 0], [-30, 7, 6], [0, 0, 5]])


def penalty_game(k: float = -10) -> np.ndarray:
    """Penalty game (Claus & Boutilier 1998), common payoff; miscoordination costs ``k <= 0``."""
    if k > 0:
        raise ValueError(f"the penalty k must be <= 0; got k={k}")
    return common_payoff([[10, 0, k], [0, 2, 0], [k, 0, 10]])


ACTION_NAMES: dict[str, list[str]] = {
    "prisoners_dilemma": ["cooperate", "defect"],
    "coordination": ["A", "B"],
    "battle_of_the_sexes": ["opera", "football"],
    "stag_hunt": ["stag", "hare"],
    "matching_pennies": ["heads", "tails"],
    "rock_paper_scissors": ["rock", "paper", "scissors"],
    "climbing": ["a", "b", "c"],
    "penalty": ["a", "b", "c"],
}


def catalogue() -> dict[str, np.ndarray]:
    """All classic games of the course, by snake_case name (fresh arrays each call)."""
    return {
        "prisoners_dilemma": prisoners_dilemma(),
        "coordination": coordination_game(),
        "battle_of_the_sexes": battle_of_the_sexes(),
        "stag_hunt": stag_hunt(),
        "matching_pennies": matching_pennies(),
        "rock_paper_scissors": rock_paper_scissors(),
        "climbing": climbing_game(),
        "penalty": penalty_game(),
    }


# ------------------------------------------------------------------ pure-action solvers


def best_response(payoffs, player: int, profile: Sequence[int]) -> list[int]:
    """Sorted list of ``player``'s pure best responses to the others' actions in ``profile``.

    ``profile`` holds one action per player; the player's own entry is ignored.
    Taught in notebooks/01_game_theory.
    """
    payoffs = validate_payoffs(payoffs)
    index = [int(a) for a in profile]
    index[player] = slice(None)
    values = payoffs[tuple(index) + (player,)]
    return [int(a) for a in np.flatnonzero(values >= values.max() - TOL)]


def _is_best_response(payoffs: np.ndarray) -> np.ndarray:
    """Boolean array of shape ``(A_1, ..., A_n, n)``: is a_i a best response to a_-i?"""
    n = payoffs.ndim - 1
    flags = [
        payoffs[..., i] >= payoffs[..., i].max(axis=i, keepdims=True) - TOL for i in range(n)
    ]
    return np.stack(flags, axis=-1)


def pure_nash_equilibria(payoffs) -> list[tuple[int, ...]]:
    """Sorted list of pure Nash equilibria (action tuples) of an n-player game.

    Taught in notebooks/01_game_theory.
    """
    payoffs = validate_payoffs(payoffs)
    nash = _is_best_response(payoffs).all(axis=-1)
    return [tuple(int(a) for a in profile) for profile in np.argwhere(nash)]


def pareto_optimal(payoffs) -> list[tuple[int, ...]]:
    """Sorted list of action profiles whose payoff vector no other profile Pareto-dominates.

    ``v`` dominates ``u`` when ``v >= u`` for every player and ``v > u`` for at least one.
    Taught in notebooks/01_game_theory.
    """
    payoffs = validate_payoffs(payoffs)
    n = payoffs.ndim - 1
    flat = payoffs.reshape(-1, n)  # (profiles, players)
    v, u = flat[:, None, :], flat[None, :, :]  # v: candidate dominators, u: profiles
    dominates = np.all(v >= u, axis=-1) & np.any(v > u, axis=-1)
    dominated = dominates.any(axis=0)
    shape = payoffs.shape[:-1]
    return [tuple(int(a) for a in np.unravel_index(k, shape)) for k in np.flatnonzero(~dominated)]


def iterated_elimination(payoffs) -> list[list[int]]:
    """Iterated elimination of strictly dominated pure actions (dominated by pure actions).

    Returns, per player, the sorted list of surviving action indices (in the original
    game). The result does not depend on the elimination order.
    Taught in notebooks/01_game_theory.
    """
    payoffs = validate_payoffs(payoffs)
    n = payoffs.ndim - 1
    alive = [np.arange(size) for size in payoffs.shape[:-1]]
    changed = True
    while changed:
        changed = False
        sub = payoffs[np.ix_(*alive, np.arange(n))]
        for i in range(n):
            # u[a, b, ...]: player i's payoff for own action a, others' actions flattened
            u = np.moveaxis(sub[..., i], i, 0).reshape(len(alive[i]), -1)
            strictly_better = np.all(u[:, None, :] > u[None, :, :], axis=-1)  # [b, a]: b > a
            dominated = strictly_better.any(axis=0)
            if dominated.any():
                alive[i] = alive[i][~dominated]
                changed = True
                break  # re-slice the game before looking at the next player
    return [[int(a) for a in actions] for actions in alive]


def mixed_equilibrium_2x2(payoffs) -> tuple[float, float]:
    """Fully mixed Nash equilibrium ``(p, q)`` of a 2x2 game, found by indifference.

    ``p`` is the probability that player 0 plays action 0, ``q`` that player 1 does.
    ``q`` makes player 0 indifferent between its actions, ``p`` makes player 1
    indifferent. Raises ValueError when the game has no (unique) fully mixed equilibrium.
    Taught in notebooks/01_game_theory.
    """
    payoffs = validate_payoffs(payoffs)
    if payoffs.shape != (2, 2, 2):
        raise ValueError(f"expected a 2x2 game of shape (2, 2, 2); got {payoffs.shape}")
    A, B = payoffs[..., 0], payoffs[..., 1]
    den_q = A[0, 0] - A[0, 1] - A[1, 0] + A[1, 1]
    den_p = B[0, 0] - B[0, 1] - B[1, 0] + B[1, 1]
    if abs(den_q) < TOL or abs(den_p) < TOL:
        raise ValueError("no unique fully mixed equilibrium: a player is never made indifferent")
    q = (A[1, 1] - A[0, 1]) / den_q
    p = (B[1, 1] - B[1, 0]) / den_p
    if not (TOL < p < 1 - TOL and TOL < q < 1 - TOL):
        raise ValueError(
            f"no fully mixed equilibrium: indifference gives p={p:.3g}, q={q:.3g}, "
            f"not both strictly between 0 and 1"
        )
    return float(p), float(q)


# -------------------------------------------------------------- mixed strategies, dynamics


def action_values(payoffs, strategies: Sequence, player: int) -> np.ndarray:
    """Expected payoff of each of ``player``'s pure actions against the others' mixed strategies.

    Returns a vector of length ``A_player``; ``strategies[player]`` is not used.
    """
    payoffs = validate_payoffs(payoffs)
    values = payoffs[..., player]
    # contract the other players' axes, last first so axis numbers stay valid
    for j in reversed(range(payoffs.ndim - 1)):
        if j != player:
            values = np.tensordot(values, np.asarray(strategies[j], dtype=float), axes=([j], [0]))
    return values


def expected_payoff(payoffs, strategies: Sequence) -> np.ndarray:
    """Vector of every player's expected payoff under the mixed profile ``strategies``.

    Pure profiles work too when given as one-hot vectors.
    """
    payoffs = validate_payoffs(payoffs)
    n = payoffs.ndim - 1
    return np.array(
        [action_values(payoffs, strategies, i) @ np.asarray(strategies[i], float) for i in range(n)]
    )


def replicator_field(payoffs, strategies: Sequence) -> list[np.ndarray]:
    """Multi-population replicator dynamics: ``dx_i(a) = x_i(a) (u_i(a, x_-i) - u_i(x))``."""
    field = []
    for i, x in enumerate(strategies):
        x = np.asarray(x, dtype=float)
        values = action_values(payoffs, strategies, i)
        field.append(x * (values - x @ values))
    return field


def replicator_step(payoffs, strategies: Sequence, dt: float = 0.1) -> list[np.ndarray]:
    """One Euler step of the replicator dynamics, kept on the probability simplex."""
    new = []
    for x, dx in zip(strategies, replicator_field(payoffs, strategies)):
        y = np.clip(np.asarray(x, dtype=float) + dt * dx, 0.0, None)
        new.append(y / y.sum())
    return new


def _check_2x2(payoffs) -> np.ndarray:
    payoffs = validate_payoffs(payoffs)
    if payoffs.shape != (2, 2, 2):
        raise ValueError(f"expected a 2x2 game of shape (2, 2, 2); got {payoffs.shape}")
    return payoffs


def _advantages_2x2(payoffs, p, q):
    """Payoff advantage of action 0 over action 1 for each player, vectorised over (p, q)."""
    A, B = payoffs[..., 0], payoffs[..., 1]
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    adv0 = q * (A[0, 0] - A[1, 0]) + (1 - q) * (A[0, 1] - A[1, 1])
    adv1 = p * (B[0, 0] - B[0, 1]) + (1 - p) * (B[1, 0] - B[1, 1])
    return adv0, adv1


def replicator_field_2x2(payoffs, p, q) -> tuple[np.ndarray, np.ndarray]:
    """Replicator vector field ``(dp/dt, dq/dt)`` of a 2x2 game at (arrays of) points (p, q).

    ``dp/dt = p (1 - p) [u_0(0, q) - u_0(1, q)]`` and likewise for q.
    """
    payoffs = _check_2x2(payoffs)
    adv0, adv1 = _advantages_2x2(payoffs, p, q)
    return p * (1 - p) * adv0, q * (1 - q) * adv1


def best_response_field_2x2(payoffs, p, q) -> tuple[np.ndarray, np.ndarray]:
    """Best-response dynamics ``(BR_0(q) - p, BR_1(p) - q)`` of a 2x2 game (ties give 1/2)."""
    payoffs = _check_2x2(payoffs)
    adv0, adv1 = _advantages_2x2(payoffs, p, q)
    br0 = np.where(adv0 > TOL, 1.0, np.where(adv0 < -TOL, 0.0, 0.5))
    br1 = np.where(adv1 > TOL, 1.0, np.where(adv1 < -TOL, 0.0, 0.5))
    return br0 - p, br1 - q
