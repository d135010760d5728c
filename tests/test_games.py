"""Tests of course_lib.games (normal-form games), course_lib.plotting's game plots and
notebook 01_game_theory."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from course_lib import games


CATALOGUE_SHAPES = {
    "prisoners_dilemma": (2, 2, 2),
    "coordination": (2, 2, 2),
    "battle_of_the_sexes": (2, 2, 2),
    "stag_hunt": (2, 2, 2),
    "matching_pennies": (2, 2, 2),
    "rock_paper_scissors": (3, 3, 2),
    "climbing": (3, 3, 2),
    "penalty": (3, 3, 2),
}


def three_player_match() -> np.ndarray:
    """Everyone is paid 1 when all three play the same action, 0 otherwise."""
    M = np.zeros((2, 2, 2))
    M[0, 0, 0] = M[1, 1, 1] = 1
    return games.common_payoff(M)


def gibbons() -> np.ndarray:
    return games.from_bimatrix([[1, 1, 0], [0, 0, 2]], [[0, 2, 1], [3, 1, 0]])


# ------------------------------------------------------------------------- catalogue


def test_catalogue_names_and_shapes():
    cat = games.catalogue()
    assert {name: p.shape for name, p in cat.items()} == CATALOGUE_SHAPES
    for name, payoffs in cat.items():
        assert payoffs.dtype == float, name
        games.validate_payoffs(payoffs)
        assert len(games.ACTION_NAMES[name]) == payoffs.shape[0], name


def test_catalogue_returns_fresh_arrays():
    first = games.catalogue()
    first["climbing"][0, 0, 0] = -999
    assert games.catalogue()["climbing"][0, 0, 0] == 11


def test_climbing_and_penalty_values():
    climbing = games.climbing_game()
    expected = np.array([[11, -30, 0], [-30, 7, 6], [0, 0, 5]])
    np.testing.assert_array_equal(climbing[..., 0], expected)
    np.testing.assert_array_equal(climbing[..., 1], expected)
    penalty = games.penalty_game(-25)
    np.testing.assert_array_equal(penalty[..., 0], [[10, 0, -25], [0, 2, 0], [-25, 0, 10]])
    np.testing.assert_array_equal(penalty[..., 0], penalty[..., 1])
    np.testing.assert_array_equal(games.penalty_game()[0, 2, 0], -10)
    np.testing.assert_array_equal(games.penalty_game(0)[2, 0], [0, 0])


def test_penalty_rejects_positive_k():
    with pytest.raises(ValueError, match="k must be <= 0"):
        games.penalty_game(3)


def test_zero_sum_and_symmetric_games():
    for name in ["matching_pennies", "rock_paper_scissors"]:
        payoffs = games.catalogue()[name]
        np.testing.assert_array_equal(payoffs.sum(axis=-1), 0, err_msg=name)
    for game in [games.prisoners_dilemma(), games.stag_hunt()]:  # symmetric: B = A^T
        np.testing.assert_array_equal(game[..., 1], game[..., 0].T)
    pd_game = games.prisoners_dilemma()
    assert tuple(pd_game[0, 1]) == (0, 5) and tuple(pd_game[1, 0]) == (5, 0)
    assert tuple(games.battle_of_the_sexes()[0, 0]) == (3, 2)


def test_builders():
    A, B = [[1, 2, 3], [4, 5, 6]], [[6, 5, 4], [3, 2, 1]]
    game = games.from_bimatrix(A, B)
    assert game.shape == (2, 3, 2)
    np.testing.assert_array_equal(game[..., 0], A)
    np.testing.assert_array_equal(game[..., 1], B)
    with pytest.raises(ValueError, match="same shape"):
        games.from_bimatrix([[1, 2]], [[1], [2]])
    three = games.common_payoff(np.arange(24).reshape(2, 3, 4))
    assert three.shape == (2, 3, 4, 3)
    np.testing.assert_array_equal(three[1, 2, 3], [23, 23, 23])


@pytest.mark.parametrize(
    "bad, words",
    [
        (np.zeros(3), "dimension"),
        (np.zeros((2, 2)), "last axis must have length 1"),
        (np.zeros((2, 2, 3)), "last axis must have length 2"),
        (np.zeros((2, 3, 2, 2)), "last axis must have length 3"),
        (np.zeros((0, 2, 2)), "at least one action"),
        (np.full((2, 2, 2), np.nan), "finite"),
        ([["a", "b"], ["c", "d"]], "numeric"),
    ],
)
def test_validate_payoffs_errors(bad, words):
    with pytest.raises(ValueError, match=words) as info:
        games.validate_payoffs(bad)
    assert "(A_1, ..., A_n, n)" in str(info.value) or words in ("at least one action", "finite")


def test_validate_payoffs_accepts_lists_and_one_player():
    out = games.validate_payoffs([[[1, 2], [3, 4]], [[5, 6], [7, 8]]])
    assert out.dtype == float and out.shape == (2, 2, 2)
    assert games.validate_payoffs(np.ones((4, 1))).shape == (4, 1)  # a one-player "game"


# ---------------------------------------------------------------------- best response


def test_best_response_hand_checked():
    pd_game = games.prisoners_dilemma()
    assert games.best_response(pd_game, 0, (0, 0)) == [1]
    assert games.best_response(pd_game, 0, (1, 1)) == [1]  # own entry ignored
    assert games.best_response(pd_game, 1, (0, 0)) == [1]
    bos = games.battle_of_the_sexes()
    assert games.best_response(bos, 1, (0, 1)) == [0]
    assert games.best_response(bos, 1, (1, 0)) == [1]
    climbing = games.climbing_game()
    assert games.best_response(climbing, 0, (0, 2)) == [1]  # player 0 against column c
    assert games.best_response(climbing, 1, (2, 0)) == [2]  # player 1 against row c
    tie = games.common_payoff([[1, 1], [0, 0]])
    assert games.best_response(tie, 1, (0, 0)) == [0, 1]
    assert games.best_response(three_player_match(), 2, (1, 1, 0)) == [1]
    assert all(type(a) is int for a in games.best_response(tie, 1, (0, 0)))


def test_best_response_matches_brute_force():
    rng = np.random.default_rng(0)
    for shape in [(3, 4), (2, 3, 2)]:
        payoffs = rng.integers(-2, 3, size=shape + (len(shape),)).astype(float)
        for player in range(len(shape)):
            for profile in itertools.product(*map(range, shape)):
                values = []
                for own in range(shape[player]):
                    alt = list(profile)
                    alt[player] = own
                    values.append(payoffs[tuple(alt) + (player,)])
                want = [a for a, v in enumerate(values) if v == max(values)]
                assert games.best_response(payoffs, player, profile) == want


# ----------------------------------------------------------------------------- Nash


def test_pure_nash_hand_checked():
    assert games.pure_nash_equilibria(games.prisoners_dilemma()) == [(1, 1)]
    assert games.pure_nash_equilibria(games.matching_pennies()) == []
    assert games.pure_nash_equilibria(games.rock_paper_scissors()) == []
    assert games.pure_nash_equilibria(games.coordination_game()) == [(0, 0), (1, 1)]
    assert games.pure_nash_equilibria(games.battle_of_the_sexes()) == [(0, 0), (1, 1)]
    assert games.pure_nash_equilibria(games.stag_hunt()) == [(0, 0), (1, 1)]
    assert games.pure_nash_equilibria(games.climbing_game()) == [(0, 0), (1, 1)]
    assert games.pure_nash_equilibria(games.penalty_game()) == [(0, 0), (1, 1), (2, 2)]
    assert games.pure_nash_equilibria(three_player_match()) == [(0, 0, 0), (1, 1, 1)]
    assert games.pure_nash_equilibria(gibbons()) == [(0, 1)]


def test_pure_nash_is_mutual_best_response():
    rng = np.random.default_rng(1)
    for shape in [(3, 3), (2, 3, 2), (2, 2, 2, 2)]:
        payoffs = rng.integers(-1, 2, size=shape + (len(shape),)).astype(float)
        want = [
            profile
            for profile in itertools.product(*map(range, shape))
            if all(profile[i] in games.best_response(payoffs, i, profile) for i in range(len(shape)))
        ]
        assert games.pure_nash_equilibria(payoffs) == want


def _nashpy_pure_equilibria(A, B):
    import nashpy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        equilibria = list(nashpy.Game(A, B).support_enumeration())
    pure = set()
    for sigma_r, sigma_c in equilibria:
        if np.isclose(sigma_r.max(), 1) and np.isclose(sigma_c.max(), 1):
            pure.add((int(sigma_r.argmax()), int(sigma_c.argmax())))
    return sorted(pure), equilibria


def test_pure_nash_matches_nashpy_on_random_games():
    rng = np.random.default_rng(2024)
    found = 0
    for m, k in [(2, 2), (2, 3), (3, 3), (3, 4), (4, 4)] * 6:
        A = rng.integers(-5, 6, size=(m, k)) + rng.uniform(-0.01, 0.01, size=(m, k))
        B = rng.integers(-5, 6, size=(m, k)) + rng.uniform(-0.01, 0.01, size=(m, k))
        want, _ = _nashpy_pure_equilibria(A, B)
        assert games.pure_nash_equilibria(games.from_bimatrix(A, B)) == want, (A, B)
        found += len(want)
    assert found > 10  # the sample is not trivially empty


# --------------------------------------------------------------------------- Pareto


def test_pareto_hand_checked():
    assert games.pareto_optimal(games.prisoners_dilemma()) == [(0, 0), (0, 1), (1, 0)]
    assert games.pareto_optimal(games.coordination_game()) == [(0, 0)]
    assert games.pareto_optimal(games.climbing_game()) == [(0, 0)]
    assert games.pareto_optimal(games.penalty_game()) == [(0, 0), (2, 2)]
    assert games.pareto_optimal(games.battle_of_the_sexes()) == [(0, 0), (1, 1)]
    assert len(games.pareto_optimal(games.rock_paper_scissors())) == 9  # zero-sum
    assert games.pareto_optimal(games.common_payoff([[1, 1], [0, 0]])) == [(0, 0), (0, 1)]  # ties
    three = np.zeros((2, 2, 2))
    three[1, 0, 1] = 5
    assert games.pareto_optimal(games.common_payoff(three)) == [(1, 0, 1)]


def test_pareto_matches_brute_force():
    rng = np.random.default_rng(3)
    for shape in [(3, 3), (2, 2, 3)]:
        payoffs = rng.integers(0, 3, size=shape + (len(shape),)).astype(float)
        profiles = list(itertools.product(*map(range, shape)))

        def dominated(a):
            u = payoffs[a]
            return any(np.all(payoffs[b] >= u) and np.any(payoffs[b] > u) for b in profiles)

        assert games.pareto_optimal(payoffs) == [a for a in profiles if not dominated(a)]


# ------------------------------------------------------------------------ dominance


def test_iterated_elimination_hand_checked():
    assert games.iterated_elimination(games.prisoners_dilemma()) == [[1], [1]]
    assert games.iterated_elimination(gibbons()) == [[0], [1]]
    assert games.iterated_elimination(games.common_payoff([[1, 1], [0, 1]])) == [[0, 1], [0, 1]]  # weak only
    assert games.iterated_elimination(games.climbing_game()) == [[0, 1, 2], [0, 1, 2]]
    three = np.zeros((2, 2, 2, 3))
    three[1, :, :, 0] = 1
    assert games.iterated_elimination(three) == [[1], [0, 1], [0, 1]]
    grid = np.indices((2, 2, 2))
    public_goods = np.stack([2 / 3 * grid.sum(axis=0) - grid[i] for i in range(3)], axis=-1)
    assert games.iterated_elimination(public_goods) == [[0], [0], [0]]


def test_iterated_elimination_keeps_nash_and_ignores_action_order():
    rng = np.random.default_rng(4)
    for _ in range(20):
        shape = (3, 4)
        payoffs = rng.integers(-3, 4, size=shape + (2,)).astype(float)
        payoffs[..., 0] += rng.integers(0, 8, size=(3, 1))
        payoffs[..., 1] += rng.integers(0, 8, size=(1, 4))
        survivors = games.iterated_elimination(payoffs)
        for a0, a1 in games.pure_nash_equilibria(payoffs):
            assert a0 in survivors[0] and a1 in survivors[1]
        perm = [rng.permutation(3), rng.permutation(4)]
        shuffled = payoffs[np.ix_(perm[0], perm[1], [0, 1])]
        again = games.iterated_elimination(shuffled)
        assert [sorted(int(perm[i][a]) for a in again[i]) for i in range(2)] == survivors


# ------------------------------------------------------------------------------ mixed


def test_mixed_equilibrium_hand_checked():
    np.testing.assert_allclose(games.mixed_equilibrium_2x2(games.matching_pennies()), (0.5, 0.5))
    np.testing.assert_allclose(games.mixed_equilibrium_2x2(games.battle_of_the_sexes()), (0.6, 0.4))
    np.testing.assert_allclose(games.mixed_equilibrium_2x2(games.stag_hunt()), (0.75, 0.75))
    np.testing.assert_allclose(games.mixed_equilibrium_2x2(games.coordination_game()), (1 / 3, 1 / 3))
    p, q = games.mixed_equilibrium_2x2(games.from_bimatrix([[6, 0], [0, 2]], [[2, 0], [0, 3]]))
    assert (p, q) == pytest.approx((0.6, 0.25))
    assert type(p) is float and type(q) is float


@pytest.mark.parametrize(
    "payoffs",
    [games.prisoners_dilemma(), games.common_payoff(np.ones((2, 2))), games.rock_paper_scissors()],
    ids=["dominance", "constant", "not-2x2"],
)
def test_mixed_equilibrium_raises(payoffs):
    with pytest.raises(ValueError):
        games.mixed_equilibrium_2x2(payoffs)


def test_mixed_equilibrium_makes_players_indifferent():
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(200):
        payoffs = rng.normal(size=(2, 2, 2))
        try:
            p, q = games.mixed_equilibrium_2x2(payoffs)
        except ValueError:
            continue
        x, y = np.array([p, 1 - p]), np.array([q, 1 - q])
        values0 = games.action_values(payoffs, [x, y], 0)
        values1 = games.action_values(payoffs, [x, y], 1)
        assert values0[0] == pytest.approx(values0[1]) and values1[0] == pytest.approx(values1[1])
        checked += 1
    assert checked > 20


def test_mixed_equilibrium_matches_nashpy():
    rng = np.random.default_rng(7)
    compared = 0
    for _ in range(300):
        A, B = rng.integers(-5, 6, size=(2, 2)) + rng.uniform(-0.01, 0.01, size=(2, 2)), rng.integers(
            -5, 6, size=(2, 2)
        ) + rng.uniform(-0.01, 0.01, size=(2, 2))
        _, equilibria = _nashpy_pure_equilibria(A, B)
        mixed = [(r, c) for r, c in equilibria if np.all(r > 1e-9) and np.all(c > 1e-9)]
        if len(equilibria) == 1 and len(mixed) == 1:  # a unique, fully mixed equilibrium
            sigma_r, sigma_c = mixed[0]
            p, q = games.mixed_equilibrium_2x2(games.from_bimatrix(A, B))
            assert (p, q) == pytest.approx((sigma_r[0], sigma_c[0]), abs=1e-7)
            compared += 1
        elif not mixed:
            with pytest.raises(ValueError):
                games.mixed_equilibrium_2x2(games.from_bimatrix(A, B))
    assert compared >= 20


# ------------------------------------------------------------ expected payoff, dynamics


def test_expected_payoff_and_action_values():
    np.testing.assert_allclose(
        games.expected_payoff(games.battle_of_the_sexes(), [[0.6, 0.4], [0.4, 0.6]]), [1.2, 1.2]
    )
    uniform = np.ones(3) / 3
    np.testing.assert_allclose(games.expected_payoff(games.rock_paper_scissors(), [uniform, uniform]), [0, 0])
    rng = np.random.default_rng(8)
    payoffs = rng.normal(size=(2, 3, 4, 3))
    strategies = [rng.dirichlet(np.ones(s)) for s in (2, 3, 4)]
    for i in range(3):
        others = [s if j != i else np.ones_like(s) for j, s in enumerate(strategies)]
        brute = np.einsum("abc,a,b,c->abc", payoffs[..., i], *others)
        want = brute.sum(axis=tuple(j for j in range(3) if j != i))
        np.testing.assert_allclose(games.action_values(payoffs, strategies, i), want)
    one_hot = [np.eye(2)[1], np.eye(3)[0], np.eye(4)[2]]
    np.testing.assert_allclose(games.expected_payoff(payoffs, one_hot), payoffs[1, 0, 2])


def test_replicator_dynamics():
    bos = games.battle_of_the_sexes()
    p, q = games.mixed_equilibrium_2x2(bos)
    rest = games.replicator_field(bos, [np.array([p, 1 - p]), np.array([q, 1 - q])])
    np.testing.assert_allclose(np.concatenate(rest), 0, atol=1e-12)
    dp, dq = games.replicator_field_2x2(bos, np.array([p, 0.0, 1.0]), np.array([q, 0.3, 0.9]))
    np.testing.assert_allclose(dp, [0, 0, 0], atol=1e-12)  # rest point, and p on the boundary
    rng = np.random.default_rng(9)
    for _ in range(10):
        payoffs = rng.normal(size=(2, 2, 2))
        x, y = rng.dirichlet([1, 1]), rng.dirichlet([1, 1])
        field = games.replicator_field(payoffs, [x, y])
        dp, dq = games.replicator_field_2x2(payoffs, x[0], y[0])
        assert field[0][0] == pytest.approx(dp) and field[1][0] == pytest.approx(dq)
        stepped = games.replicator_step(payoffs, [x, y], dt=0.5)
        for s in stepped:
            assert s.min() >= 0 and s.sum() == pytest.approx(1)
    # in the prisoner's dilemma everybody drifts towards defection
    x = [np.array([0.5, 0.5]), np.array([0.5, 0.5])]
    for _ in range(200):
        x = games.replicator_step(games.prisoners_dilemma(), x, dt=0.1)
    assert x[0][1] > 0.99 and x[1][1] > 0.99


def test_best_response_field():
    dp, dq = games.best_response_field_2x2(games.prisoners_dilemma(), np.array([0.5]), np.array([0.5]))
    assert dp[0] == pytest.approx(-0.5) and dq[0] == pytest.approx(-0.5)  # both move towards defect
    with pytest.raises(ValueError):
        games.best_response_field_2x2(games.climbing_game(), 0.5, 0.5)


# --------------------------------------------------------------------------- plotting


def test_game_plots_headless():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_lib import plotting

    try:
        ax = plotting.payoff_heatmap(
            games.climbing_game(), ["a", "b", "c"], ax=None, highlight=[(0, 0)], title="climbing"
        )
        assert ax.get_title() == "climbing"
        texts = {t.get_text() for t in ax.texts}
        assert {"11, 11", "-30, -30", "5, 5"} <= texts
        plotting.payoff_heatmap(games.matching_pennies(), [["H", "T"], ["h", "t"]])
        ax = plotting.strategy_field(games.battle_of_the_sexes(), kind="best_response")
        assert ax.get_xlim() == pytest.approx((-0.05, 1.05))
        plotting.strategy_field(games.prisoners_dilemma())  # no mixed equilibrium: still draws
        with pytest.raises(ValueError, match="kind"):
            plotting.strategy_field(games.matching_pennies(), kind="fictitious")
        with pytest.raises(ValueError, match="2x2"):
            plotting.strategy_field(games.rock_paper_scissors())
        with pytest.raises(ValueError, match="two-player"):
            plotting.payoff_heatmap(three_player_match())
    finally:
        plt.close("all")
