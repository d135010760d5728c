"""The two tasks of notebooks/06_advanced: CueCorridor (memory) and SparseGoalGrid (exploration)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from course_lib.envs import CueCorridor, SparseGoalGrid, VecCueCorridor, VecSparseGoalGrid, registry
from course_lib.envs.memory import DOWN, LEFT, RIGHT, STAY, UP

SETTINGS = [
    ("cue_corridor", CueCorridor),
    ("cue_corridor_long", lambda: CueCorridor(num_agents=3, length=6, max_steps=20, wrong_arm=-0.5)),
    ("sparse_goal_grid", SparseGoalGrid),
    ("sparse_goal_grid_square", lambda: SparseGoalGrid(num_agents=1, size=5, height=None, max_steps=12)),
]
IDS = [s[0] for s in SETTINGS]


@pytest.mark.parametrize("name,factory", SETTINGS, ids=IDS)
def test_parallel_api(name, factory):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(factory(), num_cycles=150)


@pytest.mark.parametrize("name,factory", SETTINGS, ids=IDS)
def test_parallel_seed(name, factory):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_seed_test(factory, num_cycles=100)


@pytest.mark.parametrize("name,factory", SETTINGS, ids=IDS)
def test_obs_in_space_and_text_render(name, factory):
    env = factory()
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(80):
        for a, o in obs.items():
            assert o.dtype == np.float32 and env.observation_space(a).contains(o), (name, a, o)
        assert isinstance(env.render(), str)
        obs, *_ = env.step({a: int(rng.integers(5)) for a in env.agents})
        if not env.agents:
            obs, _ = env.reset()


@pytest.mark.parametrize("single,batched", [
    (lambda: CueCorridor(num_agents=3, length=3, max_steps=8), lambda n, s: VecCueCorridor(n, 3, 3, 8, seed=s)),
    (lambda: SparseGoalGrid(num_agents=2, size=4, height=3, max_steps=9),
     lambda n, s: VecSparseGoalGrid(n, 2, size=4, height=3, max_steps=9, seed=s)),
])
def test_twin_replays_the_single_env(single, batched):
    env, vec = single(), batched(1, 5)
    obs, _ = env.reset(seed=5)
    vobs, _ = vec.reset(seed=5)
    rng = np.random.default_rng(1)
    for _ in range(60):
        np.testing.assert_array_equal(np.stack([obs[a] for a in env.possible_agents]), vobs[0])
        acts = rng.integers(0, 5, (1, env.num_agents))
        obs, rew, *_ = env.step({a: int(acts[0, i]) for i, a in enumerate(env.possible_agents)})
        vobs, vrew, _, _, info = vec.step(acts)
        np.testing.assert_allclose([rew[a] for a in env.possible_agents], vrew[0])
        if not env.agents:
            assert info["done"][0]
            obs, _ = env.reset()
            vobs = vec.core.observe()


def test_corridor_shows_the_cue_once_and_pays_the_cued_arm():
    vec = VecCueCorridor(256, num_agents=2, length=3, max_steps=10, seed=0)
    obs, _ = vec.reset()
    cue = obs[..., 2].copy()
    assert set(np.unique(cue)) == {-1.0, 1.0}
    for _ in range(3):
        obs, rew, *_ = vec.step(np.full((256, 2), UP))
        assert (obs[..., 2] == 0).all(), "the cue must be hidden after the first step"
        np.testing.assert_allclose(rew, -0.05)
    assert (obs[..., 1] == 1).all(), "after `length` moves up every agent is at the junction"
    turn = np.where(cue == 1, LEFT, RIGHT)
    _, rew, term, _, info = vec.step(turn)
    np.testing.assert_allclose(rew, 1.0)
    assert term.all() and info["success"].all() and (info["correct_fraction"] == 1).all()


def test_a_memoryless_policy_gets_half_the_arms_right():
    vec = VecCueCorridor(2000, num_agents=1, length=2, max_steps=6, seed=1)
    vec.reset()
    for action in (UP, UP, LEFT):  # the best a policy can do without the cue: always the same arm
        _, _, _, _, info = vec.step(np.full((2000, 1), action))
    assert info["done"].all()
    assert 0.45 < info["correct_fraction"].mean() < 0.55


def test_corridor_moves_and_walls():
    env = CueCorridor(num_agents=1, length=2, max_steps=10)
    env.reset(seed=0)
    for action, height in [(DOWN, 0), (LEFT, 0), (UP, 1), (STAY, 1), (UP, 2), (UP, 2)]:
        env.step({"agent_0": action})
        assert env.core.height[0, 0] == height


def test_goal_grid_pays_once_on_the_shortest_path_and_never_otherwise():
    vec = VecSparseGoalGrid(4, num_agents=2, size=6, height=3, max_steps=20, seed=0)
    obs, _ = vec.reset()
    assert obs.shape == (4, 2, 3 * 6 + 1) and (obs[..., :-1].argmax(-1) == 2 * 6).all()  # bottom-left
    total = np.zeros((4, 2))
    for action in [UP, UP] + [RIGHT] * 5:
        obs, rew, term, _, info = vec.step(np.full((4, 2), action))
        total += rew
    np.testing.assert_allclose(total, 1.0)
    assert term.all() and info["success"].all() and info["episode_length"].tolist() == [7] * 4
    vec.reset()
    for _ in range(20):  # staying put is never rewarded, and the episode is cut at max_steps
        _, rew, term, trunc, info = vec.step(np.full((4, 2), STAY))
        assert (rew == 0).all()
    assert trunc.all() and not term.any() and not info["success"].any()


def test_random_walk_rarely_finds_the_goal():
    vec = VecSparseGoalGrid(2000, num_agents=1, seed=0)  # the default 4 x 16 grid, 40 steps
    vec.reset()
    rng = np.random.default_rng(0)
    reached = 0
    for _ in range(40):
        _, rew, *_ = vec.step(rng.integers(0, 5, (2000, 1)))
        reached += int(rew.sum())
    assert reached <= 5, reached


def test_bad_arguments_and_actions_are_named():
    with pytest.raises(ValueError, match="max_steps"):
        CueCorridor(length=5, max_steps=5)
    with pytest.raises(ValueError, match="length"):
        CueCorridor(length=0)
    with pytest.raises(ValueError, match="max_steps"):
        SparseGoalGrid(size=10, height=4, max_steps=10)
    with pytest.raises(ValueError, match="size"):
        SparseGoalGrid(size=1)
    with pytest.raises(ValueError, match="agent"):
        SparseGoalGrid(num_agents=0)
    vec = VecCueCorridor(2, seed=0)
    vec.reset()
    with pytest.raises(ValueError, match="agent_1"):
        vec.step(np.array([[0, 0], [0, 7]]))


def test_registered():
    reg = registry()
    for name, cls in [("cue_corridor", VecCueCorridor), ("sparse_goal_grid", VecSparseGoalGrid)]:
        make_single, make_batched = reg[name]
        assert isinstance(make_batched(2, seed=0), cls)
        assert make_single().possible_agents == ["agent_0", "agent_1"]
