"""Batched twins: agreement with the single env, automatic resets, action checks."""
from __future__ import annotations

import numpy as np
import pytest

from course_lib import games
from course_lib.envs import (
    CooperativeNavigation,
    LeverPulling,
    MatrixGame,
    MultiAgentGridWorld,
    PredatorPrey,
    TrafficJunction,
    TwoStepGame,
    VecCooperativeNavigation,
    VecLeverPulling,
    VecMatrixGame,
    VecMultiAgentGridWorld,
    VecPredatorPrey,
    VecTrafficJunction,
    VecTwoStepGame,
)

# (id, single factory, batched factory(num_envs, seed)) with matching settings
PAIRS = [
    ("climbing_rounds3",
     lambda: MatrixGame(games.climbing_game(), rounds=3),
     lambda n, s: VecMatrixGame(n, games.climbing_game(), rounds=3, seed=s)),
    ("two_step", TwoStepGame, lambda n, s: VecTwoStepGame(n, seed=s)),
    ("gridworld_partial",
     lambda: MultiAgentGridWorld(size=6, num_agents=3, num_targets=3, view_radius=1, max_steps=15),
     lambda n, s: VecMultiAgentGridWorld(n, size=6, num_agents=3, num_targets=3, view_radius=1,
                                         max_steps=15, seed=s)),
    ("levers", LeverPulling, lambda n, s: VecLeverPulling(n, seed=s)),
    ("tj_easy_busy", lambda: TrafficJunction(arrival_prob=0.5),
     lambda n, s: VecTrafficJunction(n, arrival_prob=0.5, seed=s)),
    ("tj_medium", lambda: TrafficJunction("medium", arrival_prob=0.2, max_steps=25),
     lambda n, s: VecTrafficJunction(n, version="medium", arrival_prob=0.2, max_steps=25, seed=s)),
    ("predator_prey", lambda: PredatorPrey(max_steps=12),
     lambda n, s: VecPredatorPrey(n, max_steps=12, seed=s)),
    ("navigation", lambda: CooperativeNavigation(max_steps=10),
     lambda n, s: VecCooperativeNavigation(n, max_steps=10, seed=s)),
]
IDS = [p[0] for p in PAIRS]


@pytest.mark.parametrize("name,make_single,make_vec", PAIRS, ids=IDS)
def test_twin_matches_single_env_step_by_step(name, make_single, make_vec):
    seed = 11
    env = make_single()
    vec = make_vec(1, seed)
    obs_s, info_s = env.reset(seed=seed)
    obs_v, info_v = vec.reset()
    agents = env.possible_agents
    rng = np.random.default_rng(5)
    episodes = 0
    for step in range(120):
        np.testing.assert_array_equal(np.stack([obs_s[a] for a in agents]), obs_v[0],
                                      err_msg=f"{name}: obs differ at step {step}")
        for key, val in info_v.items():
            if isinstance(val, np.ndarray) and val.shape == (1, len(agents)) and key != "episode_return":
                assert [info_s[a][key] for a in agents] == val[0].tolist(), f"{name}: info {key}"
        acts = vec.sample_actions(rng)
        obs_s, rew_s, term_s, trunc_s, info_s = env.step({a: int(acts[0, i]) for i, a in enumerate(agents)})
        obs_v, rew_v, term_v, trunc_v, info_v = vec.step(acts)
        np.testing.assert_allclose(np.array([rew_s[a] for a in agents]), rew_v[0], rtol=0, atol=1e-6)
        assert [term_s[a] for a in agents] == term_v[0].tolist()
        assert [trunc_s[a] for a in agents] == trunc_v[0].tolist()
        done = bool(info_v["done"][0])
        assert done == (not env.agents), f"{name}: done flags differ at step {step}"
        if done:
            episodes += 1
            # the twin's final obs is the single env's last obs
            np.testing.assert_array_equal(np.stack([obs_s[a] for a in agents]), info_v["final_obs"][0])
            last = info_s[agents[0]]
            assert last["team_return"] == pytest.approx(info_v["team_return"][0], abs=1e-4)
            np.testing.assert_allclose([info_s[a]["episode_return"] for a in agents],
                                       info_v["episode_return"][0], atol=1e-4)
            assert last["episode_length"] == info_v["episode_length"][0]
            for key in vec.core.metric_fill:
                assert last[key] == pytest.approx(info_v[key][0]), f"{name}: metric {key}"
            obs_s, info_s = env.reset()  # no seed: continue the generator like the twin
    assert episodes >= 2, f"{name}: the test should cover automatic resets"


def test_auto_reset_only_finished_envs():
    vec = VecPredatorPrey(64, max_steps=6, seed=0)
    obs, _ = vec.reset()
    returns = np.zeros(64)
    lengths = np.zeros(64, dtype=int)
    saw_partial = False
    for _ in range(14):
        before_t = vec.core.t.copy()
        obs, rew, term, trunc, info = vec.step(vec.sample_actions())
        returns += rew.sum(axis=1)
        lengths += 1
        done = info["done"]
        assert done.dtype == bool and done.shape == (64,)
        np.testing.assert_array_equal(done, term[:, 0] | trunc[:, 0])
        # finished envs restarted in this very step, the others went on
        assert (vec.core.t[done] == 0).all()
        np.testing.assert_array_equal(vec.core.t[~done], before_t[~done] + 1)
        np.testing.assert_array_equal(info["final_obs"][~done], obs[~done])
        if done.any():
            assert not np.array_equal(info["final_obs"][done], obs[done])
            np.testing.assert_allclose(info["team_return"][done], returns[done], atol=1e-4)
            np.testing.assert_allclose(info["episode_return"][done].sum(axis=1), returns[done], atol=1e-4)
            np.testing.assert_array_equal(info["episode_length"][done], lengths[done])
            assert np.isnan(info["episode_return"][~done]).all() and np.isnan(info["team_return"][~done]).all()
            assert (lengths[done] <= 6).all()
            saw_partial |= bool((~done).any())
            returns[done] = 0.0
            lengths[done] = 0
    assert saw_partial, "some envs should end while others continue (captures end episodes early)"


def test_vec_shapes_and_dtypes():
    vec = VecTrafficJunction(5, version="medium", seed=0)
    assert vec.num_envs == 5 and vec.num_agents == 10
    assert vec.single_action_space.n == 2
    obs, info = vec.reset()
    assert obs.shape == (5, 10, vec.single_observation_space.shape[0]) and obs.dtype == np.float32
    assert info["active"].shape == (5, 10)
    obs, rew, term, trunc, info = vec.step(np.ones((5, 10), dtype=np.int64))
    assert rew.shape == (5, 10) and rew.dtype == np.float32
    assert term.shape == trunc.shape == (5, 10) and term.dtype == trunc.dtype == bool
    assert vec.state().shape == (5, vec.state_space.shape[0])


def test_vec_step_before_reset_raises():
    vec = VecLeverPulling(4, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros((4, 5), dtype=int))


def test_vec_reset_seed_reproduces():
    vec = VecMultiAgentGridWorld(16, seed=0)
    a, _ = vec.reset(seed=3)
    acts = vec.sample_actions(np.random.default_rng(0))
    a2 = vec.step(acts)[0]
    b, _ = vec.reset(seed=3)
    b2 = vec.step(acts)[0]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a2, b2)


# ------------------------------------------------------------------ bad actions
@pytest.mark.parametrize(
    "actions,pattern",
    [
        (np.zeros((4, 3), dtype=int), r"shape \(4, 2\)"),
        (np.zeros((3, 2), dtype=int), r"shape \(4, 2\)"),
        (np.full((4, 2), 5), r"agent 'agent_0'.*Discrete\(5\)"),
        (np.array([[0, 0], [0, 0], [0, -1], [0, 0]]), r"agent 'agent_1' \(env 2\).*\[0, 4\]"),
        (np.full((4, 2), 0.5), r"integers.*Discrete\(5\)"),
        (np.full((4, 2), "up"), r"Discrete\(5\).*got dtype"),
    ],
    ids=["too_many_agents", "too_few_envs", "out_of_range", "negative", "fractional", "strings"],
)
def test_vec_bad_actions_raise_value_error(actions, pattern):
    vec = VecMultiAgentGridWorld(4, seed=0)
    vec.reset()
    with pytest.raises(ValueError, match=pattern):
        vec.step(actions)


def test_vec_accepts_integral_floats_and_trailing_axis():
    vec = VecMultiAgentGridWorld(4, seed=0)
    vec.reset()
    vec.step(np.ones((4, 2), dtype=np.float32))
    vec.step(np.ones((4, 2, 1), dtype=np.int32))


def test_asymmetric_matrix_game_checks_each_agent():
    payoffs = np.zeros((2, 3, 2))
    vec = VecMatrixGame(2, payoffs, seed=0)
    vec.reset()
    vec.step(np.array([[1, 2], [0, 2]]))
    with pytest.raises(ValueError, match=r"player_0.*Discrete\(2\)"):
        vec.step(np.array([[2, 0], [0, 0]]))


@pytest.mark.parametrize(
    "make_actions,pattern",
    [
        (lambda ag: {**{a: 0 for a in ag}, ag[0]: 7}, r"agent 'predator_0'.*Discrete\(5\)"),
        (lambda ag: {**{a: 0 for a in ag}, ag[1]: -1}, r"agent 'predator_1'.*Discrete\(5\)"),
        (lambda ag: {**{a: 0 for a in ag}, ag[2]: [1, 2]}, r"agent 'predator_2'.*shape \(2,\).*Discrete\(5\)"),
        (lambda ag: {**{a: 0 for a in ag}, ag[0]: 1.5}, r"agent 'predator_0'.*Discrete\(5\)"),
        (lambda ag: {**{a: 0 for a in ag}, ag[0]: "up"}, r"agent 'predator_0'.*Discrete\(5\)"),
        (lambda ag: {**{a: 0 for a in ag}, "wolf": 0}, r"unknown agent 'wolf'.*Discrete\(5\)"),
        (lambda ag: {a: 0 for a in ag[1:]}, r"missing action for agent 'predator_0'.*Discrete\(5\)"),
        (lambda ag: [0, 0, 0], r"dict keyed by agent name"),
    ],
    ids=["too_big", "negative", "array", "fraction", "string", "unknown", "missing", "not_a_dict"],
)
def test_single_bad_actions_raise_value_error(make_actions, pattern):
    env = PredatorPrey()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=pattern):
        env.step(make_actions(env.agents))


def test_single_accepts_numpy_ints_and_zero_d_arrays():
    env = PredatorPrey()
    env.reset(seed=0)
    ag = env.agents
    env.step({ag[0]: np.int64(1), ag[1]: np.array(2), ag[2]: np.array([3])})


def test_single_step_after_end_needs_reset():
    env = LeverPulling()
    env.reset(seed=0)
    env.step({a: 0 for a in env.agents})
    assert env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})
