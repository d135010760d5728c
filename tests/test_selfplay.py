"""course_lib.selfplay: exploitability (against nashpy), fictitious play, Elo, pools, leagues, judge cases."""
from __future__ import annotations

import nashpy
import numpy as np
import pandas as pd
import pytest
import torch

from course_lib import judge
from course_lib import learning
from course_lib.selfplay import elo, fictitious as mg, league, pool
from course_lib.tasks import task

from conftest import load_bench

RPS = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])


# --------------------------------------------------------------------- exploitability
def _nashconv_via_nashpy(A, x, y):
    """NashConv from nashpy's own payoff evaluation and each player's best pure deviation."""
    game = nashpy.Game(A, -A)
    m, n = A.shape
    u_row, u_col = game[x, y]
    gain_row = max(game[np.eye(m)[i], y][0] for i in range(m)) - u_row
    gain_col = max(game[x, np.eye(n)[j]][1] for j in range(n)) - u_col
    return gain_row + gain_col


def test_exploitability_matches_nashpy_on_random_zero_sum_games():
    rng = np.random.default_rng(0)
    for _ in range(100):
        m, n = (int(k) for k in rng.integers(2, 7, size=2))
        A = mg.random_zero_sum(rng, m, n)
        x_star, y_star, value = mg.nashpy_equilibrium(A)
        assert mg.exploitability(A, x_star, y_star) == pytest.approx(0.0, abs=1e-7)
        x, y = rng.dirichlet(np.ones(m)), rng.dirichlet(np.ones(n))
        e = mg.exploitability(A, x, y)
        assert e == pytest.approx(0.5 * _nashconv_via_nashpy(A, x, y), abs=1e-10)
        assert e >= -1e-12
        # each player's best-response value brackets the game value
        assert np.max(A @ y) >= value - 1e-7 and np.min(x @ A) <= value + 1e-7
        assert mg.nash_conv(A, -A, x, y) == pytest.approx(2 * e)


def test_exploitability_known_values_and_errors():
    uniform, rock = np.ones(3) / 3, np.eye(3)[0]
    assert mg.exploitability(RPS, uniform, uniform) == pytest.approx(0.0)
    assert mg.exploitability(RPS, rock, rock) == pytest.approx(1.0)
    assert mg.exploitability(mg.biased_rock_paper_scissors(), *(np.array([0.25, 0.5, 0.25]),) * 2) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="length 3"):
        mg.exploitability(RPS, np.ones(2) / 2, uniform)
    with pytest.raises(ValueError, match="sum to 1"):
        mg.exploitability(RPS, uniform, np.array([0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match="payoff matrix"):
        mg.exploitability(np.zeros(3), uniform, uniform)
    with pytest.raises(ValueError, match="payoff matrix"):
        mg.as_matrices(np.zeros((2, 2, 3)))


def test_exploitability_curve_is_the_rowwise_exploitability():
    rng = np.random.default_rng(1)
    A = mg.random_zero_sum(rng, 3, 4)
    xs, ys = rng.dirichlet(np.ones(3), size=20), rng.dirichlet(np.ones(4), size=20)
    np.testing.assert_allclose(mg.exploitability_curve(A, xs, ys),
                               [mg.exploitability(A, x, y) for x, y in zip(xs, ys)], atol=1e-12)


# --------------------------------------------------------------------- fictitious play
def test_best_response_and_average():
    np.testing.assert_array_equal(mg.best_response(RPS, np.eye(3)[0]), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(mg.best_response(np.zeros((3, 2)), [0.5, 0.5]), [1.0, 0.0, 0.0])  # ties: lowest
    avg, seq = None, np.eye(3)[[0, 2, 2, 1, 0]]
    for t, s in enumerate(seq):
        avg = mg.update_average(avg if avg is not None else s, s, t)
    np.testing.assert_allclose(avg, seq.mean(axis=0))


def _play(game, rounds, parts=None, **config):
    return mg.train(game, mg.Config(total_steps=rounds, **config), parts=parts, progress=False)


BIASED = task("matrix_rock_paper_scissors", payoffs=mg.zero_sum_payoffs(mg.biased_rock_paper_scissors()))


def test_fictitious_play_average_converges_while_current_strategies_cycle():
    out = _play("matrix_rock_paper_scissors", 20_000).curve
    assert list(out.step[:3]) == [1, 2, 3] and len(out) == 20_000
    assert out["exploitability/average"].iloc[-1] < 0.01  # the notebook's target
    assert np.all(out["exploitability/current"] == 1.0)  # pure strategies: always fully exploitable
    assert len({int(np.argmax(x)) for x in out.x[10_000:]}) == 3  # still cycling through every action
    np.testing.assert_allclose(out["exploitability/average"],
                               mg.exploitability_curve(RPS, np.stack(out.x_avg), np.stack(out.y_avg)), atol=1e-12)
    naive = _play("matrix_rock_paper_scissors", 300, respond_to="latest").curve
    assert np.all(naive["exploitability/current"] == 1.0)
    # biased RPS: naive self-play's cycle averages to uniform, which is exploitable by 1/3
    naive_b = _play(BIASED, 3_000, respond_to="latest").curve
    assert naive_b["exploitability/average"].iloc[-1] == pytest.approx(1 / 3, abs=1e-3)
    assert _play(BIASED, 20_000).curve["exploitability/average"].iloc[-1] < 0.01


def test_fictitious_play_in_matching_pennies_and_its_policy():
    from course_lib.evaluation import evaluate

    run = _play("matrix_matching_pennies", 10_000)
    np.testing.assert_allclose(run.curve.x_avg.iloc[-1], [0.5, 0.5], atol=0.01)
    x, y = run.learner.x_avg, run.learner.y_avg
    assert run.curve.eval_return.iloc[-1] == pytest.approx(x @ np.array([[1, -1], [-1, 1]]) @ y)
    ev = evaluate(run.policy, "matrix_matching_pennies", episodes=4_000, greedy=False)
    assert abs(ev.mean) < 0.06 and ev.team == [0]  # both sample their average; the row player's payoff
    # a general-sum game logs NashConv / 2 (the zero-sum part does not apply)
    pd_run = _play("matrix_prisoners_dilemma", 50)
    assert not pd_run.learner.zero_sum  # both defect from round 1 on: a Nash equilibrium
    assert pd_run.curve["exploitability/current"].iloc[-1] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="respond_to"):
        _play("matrix_matching_pennies", 10, respond_to="best")
    with pytest.raises(ValueError, match="two-player matrix game"):
        _play("gridworld", 10)


def test_fictitious_play_calls_your_parts_and_wrong_parts_change_the_curve():
    calls = {"best_response": 0, "update_average": 0, "exploitability": 0}

    def spy(name):
        def wrapped(*args):
            calls[name] += 1
            return getattr(mg, name)(*args)
        return wrapped

    reference = _play("matrix_rock_paper_scissors", 200).curve
    spied = _play("matrix_rock_paper_scissors", 200, parts={n: spy(n) for n in calls}).curve
    assert calls == {"best_response": 2 * 199, "update_average": 2 * 199, "exploitability": 2 * 200}
    pd.testing.assert_frame_equal(spied.drop(columns="sps"), reference.drop(columns="sps"))

    def best_response_highest_tie(payoff, s):  # ties to the LAST index
        v = np.asarray(payoff) @ np.asarray(s)
        out = np.zeros(len(v))
        out[len(v) - 1 - int(np.argmax(v[::-1]))] = 1.0
        return out

    def update_average_ema(avg, s, t):  # a moving average, not the mean
        return 0.5 * (np.asarray(avg) + np.asarray(s))

    def exploitability_unhalved(A, x, y):  # NashConv, not NashConv / 2
        return 2 * mg.exploitability(A, x, y)

    for name, wrong in [("best_response", best_response_highest_tie), ("update_average", update_average_ema),
                        ("exploitability", exploitability_unhalved)]:
        curve = _play("matrix_rock_paper_scissors", 200, parts={name: wrong}).curve
        assert not np.allclose(curve["exploitability/average"], reference["exploitability/average"]), name


@pytest.mark.parametrize("respond_to", ["average", "latest"])
def test_fictitious_play_resumes_exactly(tmp_path, respond_to):
    config = mg.Config(total_steps=300, respond_to=respond_to)
    full = mg.train(BIASED, config, progress=False)
    calls = {"n": 0}

    def interrupting(average, strategy, t):
        calls["n"] += 1
        if calls["n"] == 101:
            raise KeyboardInterrupt
        return mg.update_average(average, strategy, t)

    with pytest.raises(KeyboardInterrupt):
        mg.train(BIASED, config, parts={"update_average": interrupting}, out=tmp_path, progress=False)
    resumed = mg.train(BIASED, config, resume=tmp_path, progress=False)
    assert 0 < len(learning.load(tmp_path).learner.rows) < 300
    pd.testing.assert_frame_equal(resumed.curve.drop(columns="sps"), full.curve.drop(columns="sps"))
    np.testing.assert_array_equal(resumed.learner.x_avg, full.learner.x_avg)


# --------------------------------------------------------------------- Elo
def test_expected_score_and_update():
    assert elo.expected_score(1000, 1000) == pytest.approx(0.5)
    assert elo.expected_score(1400, 1000) == pytest.approx(10 / 11)
    a, b = elo.elo_update(1000.0, 1000.0, 1.0)
    assert (a, b) == pytest.approx((1016.0, 984.0))
    ra, rb = np.array([900.0, 1300.0]), np.array([1100.0, 1000.0])
    na, nb = elo.elo_update(ra, rb, np.array([1.0, 0.5]), k=10.0)
    np.testing.assert_allclose(na + nb, ra + rb)
    np.testing.assert_allclose(na - ra, 10.0 * (np.array([1.0, 0.5]) - elo.expected_score(ra, rb)))


def test_side_advantage_calibrates_random_against_random():
    for p in (0.05, 0.19, 0.5, 0.8):
        h = elo.side_advantage(p)
        assert elo.expected_score(1000 + h, 1000) == pytest.approx(p)
    with pytest.raises(ValueError, match="strictly between"):
        elo.side_advantage(1.0)


def test_league_ratings_anchors_and_recovery():
    rng = np.random.default_rng(0)
    true = {"a": 1000.0, "b": 1200.0, "c": 1450.0}
    names = list(true)
    games = []
    for _ in range(6000):
        x, y = rng.choice(names, size=2, replace=False)
        games.append((x, y, float(rng.random() < elo.expected_score(true[x], true[y]))))
    ratings = elo.league_ratings(games, anchors={"a": 1000.0}, k=16.0)
    assert ratings["a"] == 1000.0
    assert ratings["b"] == pytest.approx(1200.0, abs=80) and ratings["c"] == pytest.approx(1450.0, abs=80)
    with pytest.raises(ValueError, match="score"):
        elo.league_ratings([("a", "b", 2.0)])


def test_league_ratings_with_an_advantage_leave_even_random_play_at_the_anchors():
    rng = np.random.default_rng(1)
    p = 0.2
    h = elo.side_advantage(p)
    games = [("pred", "prey", float(rng.random() < p)) for _ in range(4000)]
    ratings = elo.league_ratings(games, initial={"pred": 1000.0, "prey": 1000.0}, advantage=h, k=8.0)
    assert ratings["pred"] == pytest.approx(1000.0, abs=40) and ratings["prey"] == pytest.approx(1000.0, abs=40)
    plain = elo.league_ratings(games, initial={"pred": 1000.0, "prey": 1000.0}, k=8.0)
    assert plain["prey"] - plain["pred"] > 150  # without the edge the prey looks far stronger


def test_frozen_pool_rating_solves_the_performance_equation():
    pool_r = np.array([900.0, 1100.0, 1400.0])
    scores = np.array([0.9, 0.6, 0.2])
    r = elo.frozen_pool_rating(scores, pool_r, games=50)
    assert np.sum(scores - elo.expected_score(r, pool_r)) == pytest.approx(0.0, abs=1e-9)
    r_adv = elo.frozen_pool_rating(scores, pool_r, games=50, advantage=-200.0)
    assert r_adv == pytest.approx(r + 200.0, abs=1e-6)
    assert elo.frozen_pool_rating([1.0, 1.0, 1.0], pool_r) == 4000.0  # a perfect record: clipped
    with pytest.raises(ValueError, match="one score per pool member"):
        elo.frozen_pool_rating([0.5], pool_r)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        elo.frozen_pool_rating([0.5, 1.5, 0.2], pool_r)


def test_elo_tables_use_your_expected_score_and_elo_update():
    rng = np.random.default_rng(2)
    games = [(str(a), str(b), float(rng.random() < 0.6)) for a, b in rng.choice(["p", "q", "r"], size=(300, 2))
             if a != b]
    calls = []

    def spy_update(ra, rb, score, k=32.0):
        calls.append(score)
        return elo.elo_update(ra, rb, score, k)

    assert elo.league_ratings(games, anchors={"p": 1000.0}, elo_update=spy_update) == elo.league_ratings(
        games, anchors={"p": 1000.0})
    assert len(calls) == len(games)

    def update_without_k(ra, rb, score, k=32.0):  # forgets the K-factor
        change = score - elo.expected_score(ra, rb)
        return ra + change, rb - change

    assert elo.league_ratings(games, elo_update=update_without_k)["q"] != pytest.approx(
        elo.league_ratings(games)["q"], abs=1.0)
    pool_r, scores = np.array([900.0, 1100.0, 1400.0]), np.array([0.9, 0.6, 0.2])
    seen = []
    spy_expected = lambda a, b: seen.append(1) or elo.expected_score(a, b)  # noqa: E731
    assert elo.frozen_pool_rating(scores, pool_r, 50, expected_score=spy_expected) == elo.frozen_pool_rating(
        scores, pool_r, 50)
    assert seen
    natural = lambda a, b: 1 / (1 + np.exp((np.asarray(b) - np.asarray(a)) / 400))  # noqa: E731
    assert elo.frozen_pool_rating(scores, pool_r, 50, expected_score=natural) != pytest.approx(
        elo.frozen_pool_rating(scores, pool_r, 50), abs=1.0)


def test_matches_from_win_rates():
    table = pd.DataFrame([[0.75, 0.5]], index=["p"], columns=["q", "r"])
    matches = elo.matches_from_win_rates(table, 4, np.random.default_rng(0))
    assert len(matches) == 8
    assert sum(s for a, b, s in matches if b == "q") == 3 and sum(s for a, b, s in matches if b == "r") == 2


# --------------------------------------------------------------------- simple_tag pools
def test_play_is_reproducible_and_defines_the_winner():
    preds, preys = league.reference_players(seed=0)
    rand_pred, rand_prey = preds["pred:random"], preys["prey:random"]
    first = pool.play(rand_pred, rand_prey, 64, seed=3)
    second = pool.play(rand_pred, rand_prey, 64, seed=3)
    np.testing.assert_array_equal(first, second)  # random policies are reseeded per pairing
    assert first.dtype == np.int64 and first.shape == (64,) and first.min() >= 0
    np.testing.assert_array_equal(pool.predator_wins(first), first > 0)
    scripted = pool.win_rate(preds["pred:heuristic"], rand_prey, 200, seed=0)
    random_rate = pool.win_rate(rand_pred, rand_prey, 400, seed=0)
    assert 0.05 < random_rate < 0.4 < 0.8 < scripted


def test_play_with_torch_policies_does_not_touch_the_global_torch_rng():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    preds, preys = league.reference_players()
    pool.play(preds["pred:random"], preys["prey:heuristic"], 8, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_opponent_pool_rolls_and_splits_the_batch():
    p = pool.OpponentPool(2)
    with pytest.raises(ValueError, match="empty"):
        p.opponent()
    for k in range(3):
        p.add(f"m{k}", lambda obs, k=k: np.full((len(obs), 1), k))
    assert p.names == ["m1", "m2"] and len(p) == 2
    out = p.opponent()(np.zeros((5, 4, 16), dtype=np.float32))
    np.testing.assert_array_equal(out[:, 0], [1, 2, 1, 2, 1])
    with pytest.raises(ValueError, match="at least one"):
        pool.OpponentPool(0)


def test_exploitability_proxy_and_side_errors():
    assert pool.exploitability_proxy([0.7, 0.3, 0.9]) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="at least one opponent"):
        pool.exploitability_proxy([])
    with pytest.raises(ValueError, match="'predator' or 'prey'"):
        pool.side_policy("random", "hunter")
    with pytest.raises(ValueError, match="'random' or 'heuristic'"):
        pool.side_policy("greedy", "prey")


def test_win_rate_matrix_labels_and_values():
    preds, preys = league.reference_players()
    table = pool.win_rate_matrix(preds, preys, episodes=32, seed=5)
    assert list(table.index) == list(preds) and list(table.columns) == list(preys)
    assert table.loc["pred:heuristic", "prey:random"] == pytest.approx(
        pool.win_rate(preds["pred:heuristic"], preys["prey:random"], 32, 5))


def test_a_match_is_a_policy_of_both_sides_that_evaluate_takes():
    import pickle

    from course_lib.evaluation import evaluate

    preds, preys = league.reference_players()
    match = pool.Match(preds["pred:heuristic"], preys["prey:random"])
    ev = evaluate(match, "simple_tag_v3", episodes=32)
    assert ev.team == [0, 1, 2] and ev.agents == pool.AGENTS and ev.mean > 0  # the scripted predators tag
    assert pool.Match(prey=preys["prey:heuristic"]).act(np.zeros((2, 4, 16)))[:, :3].tolist() == [[0] * 3] * 2
    opponent = pool.PoolSide([("a", preys["prey:random"]), ("b", preys["prey:heuristic"])])
    assert repr(pickle.loads(pickle.dumps(pool.Match(prey=opponent)))) == repr(pool.Match(prey=opponent))


def test_team_side_takes_the_team_of_a_trained_policy():
    from course_lib.algos import maddpg

    scripted = maddpg.reference_policy("heuristic", "simple_tag_v3")  # team: the predators
    side = pool.TeamSide(scripted)
    preds, preys = league.reference_players()
    assert pool.win_rate(side, preys["prey:random"], 32, 1) == pool.win_rate(preds["pred:heuristic"],
                                                                              preys["prey:random"], 32, 1)
    with pytest.raises(ValueError, match="simple_tag"):
        pool.TeamSide(maddpg.reference_policy("heuristic", "simple_spread_v3"))


TINY = dict(total_steps=2 * 2 * 800, steps_per_generation=800, eval_episodes=8, pool_size=2,
            advantage=elo.side_advantage(0.19))  # two generations of one PPO update per side


def _league(parts=None, **overrides):
    return league.train("simple_tag_v3", league.Config(**{**TINY, **overrides}), parts=parts, progress=False)


@pytest.mark.timeout(240)
def test_a_small_league_trains_rates_and_freezes():
    run = _league()
    h = run.curve
    assert list(h.generation) == [0, 1, 2] and list(h.step) == [0, 1_600, 3_200]
    for col in ("elo/predator", "elo/prey", "exploitability/predator", "winrate/pool", "winrate/pool_predicted",
                "return/predator", "cpu_s"):
        assert col in h.columns
    assert h["return/predator"].iloc[1:].notna().all() and (h.train_return == h["return/predator"]).iloc[1:].all()
    res = run.learner
    assert set(res.predators) == {"pred@g0", "pred@g1", "pred@g2"} and res.prey_pool.names == ["prey@g1", "prey@g2"]
    assert res.ratings["pred:random"] == 1000.0 and res.ratings["prey:random"] == 1000.0
    frozen = league.frozen_pool(run)
    assert set(frozen.preys) == {"prey:random", "prey:heuristic", "prey@g0", "prey@g1", "prey@g2"}
    rated = league.fixed_pool_elo({"p": res.predators["pred@g2"]}, "predator", frozen, episodes=8)
    assert rated.columns.tolist() == ["player", "side", "elo", "mean_score", "min_score", "exploitability"]
    again = league.fixed_pool_elo({"p": res.predators["pred@g2"]}, "predator", frozen, episodes=8)
    assert rated.elo.iloc[0] == again.elo.iloc[0]  # same episodes, seeded sampling
    assert run.policy.team == [0, 1, 2]  # the predators, against the newest prey
    with pytest.raises(ValueError, match="one generation"):
        _league(total_steps=800)


@pytest.mark.timeout(240)
def test_the_league_calls_your_elo_parts_and_wrong_parts_change_it():
    calls = {"expected_score": 0, "elo_update": 0}

    def spy(name):
        def wrapped(*args):
            calls[name] += 1
            return getattr(elo, name)(*args)
        return wrapped

    reference = _league(total_steps=1_600).curve.drop(columns=["sps", "cpu_s"])
    spied = _league(parts={n: spy(n) for n in calls}, total_steps=1_600).curve.drop(columns=["sps", "cpu_s"])
    pd.testing.assert_frame_equal(spied, reference)
    # 8 games a pairing; generation 0: 3 + 2 pairings of the newcomers and 4 reference ones; generation 1: 4 + 3
    assert calls == {"expected_score": 1 + 2, "elo_update": 8 * (3 + 2 + 4) + 8 * (4 + 3)}

    def update_without_k(ra, rb, score, k=32.0):
        change = score - elo.expected_score(ra, rb)
        return ra + change, rb - change

    def expected_natural(a, b):
        return 1 / (1 + np.exp((np.asarray(b, dtype=float) - np.asarray(a, dtype=float)) / 400))

    wrong = _league(parts={"elo_update": update_without_k}, total_steps=1_600).curve
    assert not np.allclose(wrong["elo/predator"], reference["elo/predator"])
    assert np.array_equal(wrong["winrate/pool"], reference["winrate/pool"])  # the games are the same
    wrong = _league(parts={"expected_score": expected_natural}, total_steps=1_600).curve
    assert not np.allclose(wrong["winrate/pool_predicted"], reference["winrate/pool_predicted"])


@pytest.mark.timeout(300)
def test_the_league_resumes_exactly(tmp_path):
    full = _league()
    calls = {"n": 0}

    def interrupting(ra, rb, score, k=32.0):
        calls["n"] += 1
        if calls["n"] == 150:  # in generation 2 (generations 0 and 1 play 72 + 56 games)
            raise KeyboardInterrupt
        return elo.elo_update(ra, rb, score, k)

    with pytest.raises(KeyboardInterrupt):
        league.train("simple_tag_v3", league.Config(**TINY), parts={"elo_update": interrupting}, out=tmp_path,
                     progress=False)
    saved = learning.load(tmp_path).learner
    assert saved.generation == 1 and len(saved.rows) == 2  # generation 2 rolled back whole
    resumed = league.train("simple_tag_v3", league.Config(**TINY), resume=tmp_path, progress=False)
    drop = ["sps", "cpu_s"]
    pd.testing.assert_frame_equal(resumed.curve.drop(columns=drop), full.curve.drop(columns=drop))
    for side in ("adversary", "agent"):
        a, b = resumed.learner.agents[side].net.state_dict(), full.learner.agents[side].net.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.learner.ratings == full.learner.ratings


# ------------------------------------------------------ Method I and MADDPG in the competitive evaluation
def test_method_i_predators_train_against_a_prey_pool():
    from course_lib.algos import la_ippo

    _, preys = league.reference_players()
    prey = pool.Match(prey=pool.PoolSide([("a", preys["prey:heuristic"])]))
    run = la_ippo.train("simple_tag_v3", la_ippo.Config(total_steps=1_600, num_envs=32, eval_episodes=0,
                                                        opponent=prey), progress=False)
    assert list(run.learner.agents) == ["adversary"] and run.learner.step == 1_600
    obs, _ = task("simple_tag_v3").batched(4, seed=3).reset(seed=3)
    actions = run.policy.act(obs)
    assert run.policy.team == [0, 1, 2] and actions[:, 3].tolist() == preys["prey:heuristic"](obs)[:, 0].tolist()
    with pytest.raises(ValueError, match="predators"):
        la_ippo.train("simple_spread_v3", la_ippo.Config(total_steps=800, opponent="heuristic"), progress=False)


def test_cpu_matched_steps_follow_the_learners_own_throughput():
    bench = load_bench("selfplay")
    assert bench.cpu_matched_steps("Method I", {"steps": 8_000, "cpu_s": 2.0}, 1.0) == 4_000  # 5 updates of 800
    assert bench.cpu_matched_steps("MADDPG", {"steps": 6_400, "cpu_s": 4.0}, 1.0) == 1_600  # 50 batched steps of 32
    assert bench.cpu_matched_steps("Method I", {"steps": 800, "cpu_s": 10.0}, 0.1) == 800  # at least one update


@pytest.mark.timeout(300)
def test_method_i_predators_enter_the_elo_table_and_the_cross_play_matrix():
    bench = load_bench("selfplay")
    tiny = dict(generations=1, steps_per_generation=800, eval_episodes=4, cross_episodes=8,
                maddpg=dict(batch_size=32, learning_starts=200))
    out = bench.tag(0, tiny, advantage=elo.side_advantage(0.19))
    matched = [f"{algo} ({budget})" for algo in ("Method I", "MADDPG") for budget in ("steps-matched", "CPU-matched")]
    matched.append("Method I, lambda 0 (steps-matched)")  # the control without the alignment
    cross = out["cross_play"]
    for name in matched:
        assert np.isfinite(out["fixed_pool_elo"]["predator"][name]["elo"]), name
        row = cross["win_rate"][cross["predators"].index(name)]
        assert len(row) == len(cross["prey"]) == 4 and np.all(np.isfinite(row)), name
    assert not any(name.startswith("Method I") for name in out["fixed_pool_elo"]["prey"])  # one prey: nothing to align
    budgets = out["predator_budgets"]
    assert (budgets["Method I (steps-matched)"]["steps"] == budgets["MADDPG (steps-matched)"]["steps"]
            == budgets["IPPO (pool of 5)"]["steps"] == 800)
    assert budgets["IPPO (pool of 5)"]["cpu_s"] > 0
    assert budgets["Method I (CPU-matched)"]["steps"] % 800 == 0 and budgets["MADDPG (CPU-matched)"]["steps"] % 32 == 0


# --------------------------------------------------------------------- judge cases
CASES = ["exploitability", "best_response", "update_average", "expected_score", "elo_update"]


@pytest.mark.parametrize("name", CASES)
def test_judge_cases_accept_the_reference(name):
    case = judge.lookup(f"nb08.{name}")
    outputs = case.outputs(case.reference, seed=7)
    assert judge.verdict(f"nb08.{name}", 7, outputs) is None


def test_judge_cases_reject_plausible_mistakes():
    def exploitability_row_only(A, x, y):
        return float(np.max(np.asarray(A) @ y) - np.asarray(x) @ np.asarray(A) @ np.asarray(y))

    def best_response_mixed(payoff, s):
        v = np.asarray(payoff) @ np.asarray(s)
        best = np.isclose(v, v.max()).astype(float)
        return best / best.sum()

    def update_ema(avg, s, t):
        return (np.asarray(avg) + np.asarray(s)) / 2

    def expected_natural(a, b):
        return 1 / (1 + np.exp((np.asarray(b, dtype=float) - np.asarray(a, dtype=float)) / 400))

    def update_fixed_k(a, b, s, k=32.0):
        e = elo.expected_score(a, b)
        return np.asarray(a) + 32 * (s - e), np.asarray(b) - 32 * (s - e)

    for name, wrong in [("exploitability", exploitability_row_only), ("best_response", best_response_mixed),
                        ("update_average", update_ema), ("expected_score", expected_natural),
                        ("elo_update", update_fixed_k)]:
        case = judge.lookup(f"nb08.{name}")
        outputs = case.outputs(wrong, seed=11)
        assert judge.verdict(f"nb08.{name}", 11, outputs) is not None, name
