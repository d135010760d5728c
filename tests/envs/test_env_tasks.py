"""Task rules: payoffs, catches, collisions, bonuses, observations."""
from __future__ import annotations

import numpy as np
import pytest

from course_lib import games
from course_lib.envs import (
    CooperativeNavigation,
    MatrixGame,
    MultiAgentGridWorld,
    PredatorPrey,
    TrafficJunction,
    TwoStepGame,
    VecLeverPulling,
    VecMatrixGame,
    VecTrafficJunction,
    VecTwoStepGame,
    qtran_game,
    two_step_payoffs,
)
from course_lib.envs.policies import NoOpPolicy, RandomPolicy, evaluate_policy


# ------------------------------------------------------------------ matrix games
def test_two_step_game_payoffs():
    vec = VecTwoStepGame(8, seed=0)
    obs, _ = vec.reset()
    np.testing.assert_array_equal(obs[:, :, 0], 1.0)  # everyone starts in state 1
    first = np.array([[0, 0], [0, 1], [0, 0], [0, 1], [1, 0], [1, 1], [1, 0], [1, 1]])
    obs, rew, term, _, info = vec.step(first)
    np.testing.assert_array_equal(rew, 0.0)
    assert not info["done"].any()
    np.testing.assert_array_equal(obs[:4, 0], [[0, 1, 0]] * 4)  # agent 1 played 0 -> 2A
    np.testing.assert_array_equal(obs[4:, 0], [[0, 0, 1]] * 4)  # agent 1 played 1 -> 2B
    second = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 2)
    obs, rew, term, _, info = vec.step(second)
    np.testing.assert_array_equal(rew[:, 0], [7, 7, 7, 7, 0, 1, 1, 8])
    np.testing.assert_array_equal(rew[:, 0], rew[:, 1])  # shared reward
    assert info["done"].all() and term.all()
    np.testing.assert_array_equal(info["episode_return_mean"], [7, 7, 7, 7, 0, 1, 1, 8])
    assert two_step_payoffs()["2B"].tolist() == [[0, 1], [1, 8]]


def test_two_step_single_env_optimal_return_is_8():
    env = TwoStepGame()
    env.reset(seed=0)
    env.step({"agent_0": 1, "agent_1": 0})
    _, rew, term, _, infos = env.step({"agent_0": 1, "agent_1": 1})
    assert rew == {"agent_0": 8.0, "agent_1": 8.0} and all(term.values())
    assert infos["agent_0"]["episode_return_mean"] == 8.0


def test_qtran_game_payoffs():
    p = qtran_game()
    assert p.shape == (3, 3, 2)
    np.testing.assert_array_equal(p[..., 0], [[8, -12, -12], [-12, 0, 0], [-12, 0, 0]])
    np.testing.assert_array_equal(p[..., 0], p[..., 1])


def test_matrix_game_pays_each_player_its_entry():
    rng = np.random.default_rng(0)
    payoffs = rng.normal(size=(2, 3, 4, 3))
    vec = VecMatrixGame(50, payoffs, seed=0)
    vec.reset()
    acts = np.stack([rng.integers(0, n, 50) for n in (2, 3, 4)], axis=1)
    _, rew, term, _, _ = vec.step(acts)
    np.testing.assert_allclose(rew, payoffs[acts[:, 0], acts[:, 1], acts[:, 2]], atol=1e-6)
    assert term.all()


def test_matrix_game_rounds_and_memory_obs():
    env = MatrixGame(games.climbing_game(), rounds=2)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["player_0"], [1, 0, 0, 0, 0, 0, 0])
    obs, rew, term, _, _ = env.step({"player_0": 0, "player_1": 1})
    assert rew == {"player_0": -30.0, "player_1": -30.0} and not any(term.values())
    np.testing.assert_array_equal(obs["player_1"], [0, 1, 0, 0, 0, 1, 0])
    _, rew, term, _, _ = env.step({"player_0": 0, "player_1": 0})
    assert rew["player_0"] == 11.0 and all(term.values())


def test_matrix_game_rejects_bad_payoffs():
    with pytest.raises(ValueError, match="shape"):
        MatrixGame(np.zeros((2, 2)))


# ------------------------------------------------------------------------ levers
def test_levers_random_scores_059_and_rank_target_scores_1():
    vec = VecLeverPulling(4096, seed=0)
    obs, info = vec.reset()
    rand = RandomPolicy(vec, seed=1)
    scores, fracs = [], []
    for _ in range(5):
        obs, rew, _, _, info = vec.step(rand(obs))
        scores.append(info["distinct_score"])
        fracs.append(info["distinct_fraction"])
    # CommNet: uniform random pulling scores 0.590 on (#distinct-1)/(m-1), 0.672 on #distinct/m
    assert np.mean(scores) == pytest.approx(0.590, abs=0.01)
    assert np.mean(fracs) == pytest.approx(0.672, abs=0.01)
    target = info["target"]
    np.testing.assert_array_equal(np.sort(target, axis=1), np.tile(np.arange(5), (4096, 1)))
    obs, rew, _, _, info = vec.step(target)
    np.testing.assert_array_equal(info["distinct_score"], 1.0)
    np.testing.assert_array_equal(rew, 1.0)


def test_levers_observation_is_the_id_and_ids_are_uniform():
    vec = VecLeverPulling(4000, seed=2)
    obs, _ = vec.reset()
    ids = vec.core.ids.copy()
    np.testing.assert_array_equal(obs.argmax(-1), ids)
    np.testing.assert_array_equal(obs.sum(-1), 1.0)
    all_ids = [ids]
    for _ in range(4):
        vec.step(np.zeros((4000, 5), dtype=int))
        all_ids.append(vec.core.ids.copy())
    ids = np.concatenate(all_ids)  # 20,000 rounds
    assert (np.sort(ids, axis=1)[:, 1:] != np.sort(ids, axis=1)[:, :-1]).all(), "ids must be distinct"
    counts = np.bincount(ids.ravel(), minlength=500)
    assert counts.min() > 120 and counts.max() < 290  # expected 200 each
    np.testing.assert_allclose(ids.mean(axis=0), 249.5, atol=6)
    # slot order must be random too (Floyd's sampling alone is biased by slot;
    # a small pool shows it: slot 0 would average 2.5 instead of 4.5)
    small = VecLeverPulling(20000, pool_size=10, seed=3)
    small.reset()
    np.testing.assert_allclose(small.core.ids.mean(axis=0), 4.5, atol=0.1)
    np.testing.assert_allclose(np.bincount(small.core.ids.ravel(), minlength=10) / 1e5, 0.1, atol=0.01)
    # the rank target sorts ids
    ranks = vec.core.targets()
    cur = vec.core.ids
    assert (np.take_along_axis(cur, np.argsort(ranks, axis=1), axis=1)
            == np.sort(cur, axis=1)).all()


def test_levers_fraction_reward_option():
    vec = VecLeverPulling(10, reward="fraction", seed=0)
    vec.reset()
    _, rew, _, _, info = vec.step(np.zeros((10, 5), dtype=int))
    np.testing.assert_allclose(rew, 0.2)  # one distinct lever of five
    np.testing.assert_allclose(info["distinct_score"], 0.0)


# ------------------------------------------------------------- traffic junction
def _place(env, slot, route, progress, tau=0):
    env.core.place_car(0, slot, route, progress, tau)


def test_traffic_collision_costs_10_and_fails_the_episode():
    env = TrafficJunction(arrival_prob=0.0, max_steps=4)
    env.reset(seed=0)
    assert not env.core.active.any()
    # easy: route 0 runs east along row 3, route 1 south along column 3; both reach (3, 3)
    _place(env, 0, route=0, progress=2, tau=2)
    _place(env, 1, route=1, progress=2, tau=0)
    _, rew, _, _, infos = env.step({a: 1 if a in ("car_0", "car_1") else 0 for a in env.agents})
    assert rew["car_0"] == pytest.approx(-10 - 0.01 * 3)
    assert rew["car_1"] == pytest.approx(-10 - 0.01 * 1)
    assert rew["car_2"] == 0.0
    while env.agents:
        _, rew, _, trunc, infos = env.step({a: 0 for a in env.agents})
    assert infos["car_0"]["failure"] is True and infos["car_0"]["success"] is False
    # the two cars stayed in the same cell for all 4 steps: 2 cars x 4 steps in collision,
    # each paying -10 a step (as in IC3Net)
    assert infos["car_0"]["collisions"] == 8
    assert infos["car_0"]["team_return"] == pytest.approx(-80 - 0.01 * (3 + 4 + 5 + 6 + 1 + 2 + 3 + 4))


def test_traffic_no_collision_when_one_car_brakes():
    env = TrafficJunction(arrival_prob=0.0, max_steps=12)
    env.reset(seed=0)
    _place(env, 0, route=0, progress=2)
    _place(env, 1, route=1, progress=2)
    _, rew, *_ = env.step({a: 1 if a == "car_0" else 0 for a in env.agents})
    assert rew["car_0"] > -1 and rew["car_1"] > -1
    while env.agents:
        _, _, _, _, infos = env.step({a: 1 for a in env.agents})
    assert infos["car_0"]["failure"] is False
    assert infos["car_0"]["cars_completed"] == 2  # both reached their exits and left


@pytest.mark.parametrize("version", ["easy", "medium", "hard"])
def test_traffic_all_brake_never_collides_but_random_does(version):
    vec = VecTrafficJunction(64, version=version, seed=0)
    vec.set_curriculum(1.0)
    noop = evaluate_policy(vec, NoOpPolicy(vec), num_episodes=64, seed=0)
    assert noop["collisions"] == 0 and noop["failure"] == 0 and noop["success"] == 1
    assert noop["team_return"] < 0  # waiting costs time
    rand = evaluate_policy(vec, RandomPolicy(vec, seed=0), num_episodes=64, seed=0)
    assert rand["failure"] > 0.1 and rand["collisions"] > 0


def test_traffic_versions_and_curriculum():
    routes = {v: TrafficJunction(v).core.num_routes for v in ("easy", "medium", "hard")}
    assert routes == {"easy": 2, "medium": 12, "hard": 56}
    sizes = {v: TrafficJunction(v).core.size for v in ("easy", "medium", "hard")}
    assert sizes == {"easy": 7, "medium": 14, "hard": 18}
    env = TrafficJunction("easy")
    assert env.arrival_prob == pytest.approx(0.1)
    assert env.set_curriculum(0.5) == pytest.approx(0.2)
    assert env.set_curriculum(2.0) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        env.set_arrival_prob(1.5)
    with pytest.raises(ValueError, match="odd"):
        TrafficJunction("easy", size=6)


def test_traffic_arrivals_fill_free_slots_only():
    vec = VecTrafficJunction(32, arrival_prob=1.0, seed=0)
    vec.reset()
    assert (vec.core.active.sum(axis=1) == 2).all()  # one car per entry at reset
    for _ in range(10):
        _, _, _, _, info = vec.step(np.ones((32, 5), dtype=int))
        assert (info["active"].sum(axis=1) <= 5).all()
    vec_p0 = VecTrafficJunction(8, arrival_prob=0.0, seed=0)
    obs, info = vec_p0.reset()
    assert not info["active"].any() and not obs.any()


def test_traffic_observation_sees_neighbour_car():
    env = TrafficJunction(arrival_prob=0.0)
    env.reset(seed=0)
    _place(env, 0, route=0, progress=2)  # (3, 2)
    _place(env, 1, route=0, progress=3)  # (3, 3), right in front
    obs = env.core.observe()[0]
    core = env.core
    base = 6 + 2 * core.num_entries
    cars0 = obs[0, base: base + 9].reshape(3, 3)
    assert cars0[1, 2] == 1.0 and cars0.sum() == 1.0
    assert obs[0, 0] == 1.0 and obs[2].sum() == 0.0  # empty slot: all zeros


def test_traffic_observation_can_show_the_routes_of_the_cars_in_view():
    env = TrafficJunction(arrival_prob=0.0, see_routes=True)
    env.reset(seed=0)
    core = env.core
    E, base = core.num_entries, 6 + 2 * core.num_entries
    assert core.obs_dim == TrafficJunction().core.obs_dim + 9 * 2 * E
    _place(env, 0, route=0, progress=2)  # (3, 2), eastbound
    _place(env, 1, route=1, progress=2)  # (2, 3), southbound: diagonally ahead
    obs = core.observe()[0]
    routes0 = obs[0, base + 18:].reshape(3, 3, 2 * E)
    assert obs[0, base: base + 9].reshape(3, 3)[0, 2] == 1.0  # a car up and to the right ...
    own1 = obs[1, 6: 6 + 2 * E]
    np.testing.assert_array_equal(routes0[0, 2], own1)  # ... with car 1's entry and exit
    assert routes0.sum() == 2.0  # nothing else, not car 0's own route
    plain = TrafficJunction(arrival_prob=0.0)
    plain.reset(seed=0)
    _place(plain, 0, route=0, progress=2)
    _place(plain, 1, route=1, progress=2)
    np.testing.assert_array_equal(obs[:, :base + 18], plain.core.observe()[0])  # the rest as without


def test_traffic_new_cars_take_the_first_free_slots_or_random_ones():
    def first_cars(**kw):
        env = VecTrafficJunction(512, version="medium", arrival_prob=0.2, seed=3, **kw)
        _, info = env.reset(seed=3)
        return info["active"]
    in_order = first_cars()
    count = in_order.sum(axis=1)
    assert count.max() >= 2
    np.testing.assert_array_equal(in_order, np.arange(10)[None, :] < count[:, None])  # slots 0 .. k-1
    shuffled = first_cars(random_slots=True)
    assert shuffled.sum() == in_order.sum(), "the same arrivals (drawn before the slots)"
    assert shuffled[:, 9].sum() > 0.5 * shuffled[:, 0].sum(), "every slot is as likely"
    again = first_cars(random_slots=True)
    np.testing.assert_array_equal(shuffled, again)  # seeded
    old = VecTrafficJunction(4, version="medium", arrival_prob=0.2, seed=3)
    del old.core.__dict__["random_slots"]  # a junction pickled in a checkpoint before the option existed
    old.reset(seed=3)
    old.step(np.ones((4, 10), dtype=np.int64))


# ----------------------------------------------------------------- predator-prey
def _pp(**kw):
    env = PredatorPrey(prey_move_prob=0.0, **kw)
    env.reset(seed=0)
    return env


def test_catch_needs_two_predators_within_radius():
    env = _pp()
    core = env.core
    core.prey[0, 0] = (3, 3)
    core.pred[0] = [(3, 2), (0, 0), (6, 6)]
    _, rew, term, _, _ = env.step({a: 0 for a in env.agents})
    assert rew["predator_0"] == pytest.approx(-0.1) and not any(term.values())
    core.pred[0, 1] = (2, 2)  # diagonal: distance sqrt(2) > 1
    _, rew, term, _, _ = env.step({a: 0 for a in env.agents})
    assert not any(term.values())
    _, rew, term, _, infos = env.step({"predator_0": 0, "predator_1": 4, "predator_2": 0})
    assert core.pred[0, 1].tolist() == [2, 3]  # now adjacent: caught
    assert rew["predator_0"] == pytest.approx(10 - 0.1) and all(term.values())
    assert infos["predator_0"]["success"] is True


def test_catch_radius_option_and_validation():
    env = _pp(catch_radius=1.5)
    core = env.core
    core.prey[0, 0] = (3, 3)
    core.pred[0] = [(2, 2), (4, 4), (0, 6)]
    _, _, term, _, _ = env.step({a: 0 for a in env.agents})
    assert all(term.values())  # diagonals count with radius 1.5
    with pytest.raises(ValueError, match="catchers_needed"):
        PredatorPrey(num_predators=1)
    with pytest.raises(ValueError, match=">= 2"):
        PredatorPrey(catchers_needed=1)


def test_predators_moving_into_the_same_cell_both_fail():
    env = _pp()
    core = env.core
    core.prey[0, 0] = (6, 0)
    core.pred[0] = [(0, 0), (0, 2), (4, 4)]
    _, rew, _, _, _ = env.step({"predator_0": 4, "predator_1": 3, "predator_2": 1})
    assert core.pred[0].tolist() == [[0, 0], [0, 2], [3, 4]]
    assert rew["predator_0"] == pytest.approx(-0.1 - 2 * 0.2)


def test_prey_moves_with_given_probability():
    env = PredatorPrey(prey_move_prob=1.0, num_predators=2)
    env.reset(seed=0)
    moved = 0
    for _ in range(20):
        before = env.core.prey[0, 0].copy()
        env.step({a: 0 for a in env.agents})
        if not env.agents:
            env.reset()
            continue
        moved += int((env.core.prey[0, 0] != before).any())
    assert moved >= 10
    still = _pp(num_predators=2)
    before = still.core.prey.copy()
    still.step({a: 0 for a in still.agents})
    np.testing.assert_array_equal(still.core.prey, before)


def test_predator_view_shows_prey_and_walls():
    env = _pp()
    core = env.core
    core.prey[0, 0] = (0, 1)
    core.pred[0] = [(0, 0), (6, 6), (6, 5)]
    obs = core.observe()[0]
    V = 5
    prey_view = obs[0, V * V: 2 * V * V].reshape(V, V)
    wall_view = obs[0, 2 * V * V: 3 * V * V].reshape(V, V)
    assert prey_view[2, 3] == 1.0 and prey_view.sum() == 1.0
    assert wall_view[:2].all() and wall_view[:, :2].all() and not wall_view[2:, 2:].any()
    other_view = obs[1, : V * V].reshape(V, V)
    assert other_view[2, 1] == 1.0 and other_view.sum() == 1.0


# -------------------------------------------------------------------- navigation
def test_navigation_success_bonus_and_reward_formula():
    env = CooperativeNavigation()
    env.reset(seed=0)
    core = env.core
    goal = np.array([0.1, -0.1])
    core.goal[0] = goal
    core.pos[0] = goal + np.array([[0.25, 0.0], [0.25, 0.12], [0.25, -0.12]])
    core.prev_dist[0] = np.linalg.norm(core.pos[0] - core.goal[0], axis=-1).mean()
    prev = core.prev_dist[0]
    _, rew, term, _, infos = env.step({a: 3 for a in env.agents})  # all step left
    d = np.linalg.norm(core.pos[0] - goal, axis=-1).mean()
    expected = -0.2 * d + 2.0 * (prev - d) + 10.0
    assert rew["agent_0"] == pytest.approx(expected, abs=1e-5)
    assert all(term.values()) and infos["agent_0"]["success"] is True


def test_navigation_collision_penalty_and_no_bonus_when_one_is_far():
    env = CooperativeNavigation(success_bonus=10.0, collision_penalty=0.2)
    env.reset(seed=0)
    core = env.core
    core.goal[0] = 0.0
    core.pos[0] = [[0.0, 0.0], [0.05, 0.0], [0.9, 0.9]]
    core.prev_dist[0] = np.linalg.norm(core.pos[0], axis=-1).mean()
    _, rew, term, _, _ = env.step({a: 0 for a in env.agents})
    d = np.linalg.norm(core.pos[0], axis=-1).mean()
    assert rew["agent_0"] == pytest.approx(-0.2 * d - 0.2, abs=1e-5)
    assert not any(term.values())


def test_navigation_vision_masks_far_agents():
    env = CooperativeNavigation(vision_radius=0.4)
    env.reset(seed=0)
    core = env.core
    core.pos[0] = [[0.0, 0.0], [0.3, 0.0], [-0.9, 0.0]]
    obs = core.observe()[0]
    np.testing.assert_allclose(obs[0, 4:6], [0.3, 0.0], atol=1e-6)  # agent 1 seen
    np.testing.assert_array_equal(obs[0, 6:8], 0.0)  # agent 2 too far
    np.testing.assert_allclose(obs[0, :2], [0.0, 0.0])
    np.testing.assert_allclose(obs[0, 2:4], core.goal[0, 0], atol=1e-6)


# --------------------------------------------------------------------- grid world
def test_gridworld_dense_and_sparse_rewards():
    for sparse, first, last in ((False, 1 - 0.01, 1 - 0.01), (True, 0.0, 1.0)):
        env = MultiAgentGridWorld(sparse_reward=sparse)
        env.reset(seed=0)
        core = env.core
        core.targets[0] = [(2, 2), (4, 4)]
        core.pos[0] = [(2, 1), (0, 0)]
        _, rew, term, _, _ = env.step({"agent_0": 4, "agent_1": 0})  # onto the first target
        assert rew["agent_0"] == pytest.approx(first) and rew["agent_1"] == rew["agent_0"]
        assert not any(term.values())
        core.pos[0, 1] = (4, 3)
        _, rew, term, _, infos = env.step({"agent_0": 0, "agent_1": 4})
        assert rew["agent_0"] == pytest.approx(last) and all(term.values())
        assert infos["agent_0"]["success"] is True


def test_gridworld_partial_view_masks_far_targets():
    env = MultiAgentGridWorld(size=7, view_radius=1)
    env.reset(seed=0)
    core = env.core
    core.pos[0] = [(3, 3), (0, 0)]
    core.targets[0] = [(4, 4), (6, 6)]
    obs = core.observe()[0]
    # layout: own (2), other agent (3), targets (3 each)
    np.testing.assert_allclose(obs[0, 5:8], [1.0, 1 / 6, 1 / 6], atol=1e-6)
    np.testing.assert_array_equal(obs[0, 8:11], 0.0)
    np.testing.assert_array_equal(obs[0, 2:5], 0.0)  # the other agent is out of view
    full = MultiAgentGridWorld(size=7)
    full.reset(seed=0)
    full.core.pos[0], full.core.targets[0] = core.pos[0], core.targets[0]
    np.testing.assert_allclose(full.core.observe()[0, 0, 8:11], [1.0, 0.5, 0.5], atol=1e-6)
