"""PettingZoo API, seeding, spaces and rendering of every single environment."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from course_lib import games
from course_lib.envs import (
    CooperativeNavigation,
    LeverPulling,
    MatrixGame,
    MultiAgentGridWorld,
    PredatorPrey,
    TrafficJunction,
    TwoStepGame,
    qtran_game,
    registry,
)

_THREE_PLAYER = np.arange(2 * 3 * 2 * 3, dtype=float).reshape(2, 3, 2, 3) % 7 - 3

# (id, factory, is_grid_task): every single env, a couple of settings each
SETTINGS = [
    ("climbing", lambda: MatrixGame(games.climbing_game(), name="climbing"), False),
    ("climbing_rounds3", lambda: MatrixGame(games.climbing_game(), rounds=3), False),
    ("three_player", lambda: MatrixGame(_THREE_PLAYER, rounds=2, name="three"), False),
    ("qtran", lambda: MatrixGame(qtran_game(), name="qtran"), False),
    ("two_step", TwoStepGame, False),
    ("gridworld", MultiAgentGridWorld, True),
    ("gridworld_partial_sparse",
     lambda: MultiAgentGridWorld(size=7, num_agents=3, num_targets=4, view_radius=1,
                                 sparse_reward=True, max_steps=30), True),
    ("levers", LeverPulling, False),
    ("levers_small_index", lambda: LeverPulling(pool_size=20, num_agents=4, num_levers=3,
                                                obs_type="index", reward="fraction"), False),
    ("tj_easy", TrafficJunction, True),
    ("tj_easy_vision0_busy", lambda: TrafficJunction(vision=0, arrival_prob=0.6), True),
    ("tj_medium", lambda: TrafficJunction("medium", arrival_prob=0.2), True),
    ("tj_hard", lambda: TrafficJunction("hard", arrival_prob=0.05, max_steps=40), True),
    ("predator_prey", PredatorPrey, True),
    ("predator_prey_2prey", lambda: PredatorPrey(grid_size=5, num_predators=4, num_prey=2,
                                                 vision_range=1, max_steps=20), True),
    ("navigation", CooperativeNavigation, False),
    ("navigation_own_goals", lambda: CooperativeNavigation(num_agents=4, shared_goal=False,
                                                           vision_radius=0.6), False),
]
IDS = [s[0] for s in SETTINGS]


@pytest.mark.parametrize("name,factory,grid", SETTINGS, ids=IDS)
def test_parallel_api(name, factory, grid):
    env = factory()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PettingZoo reports API slips as warnings
        parallel_api_test(env, num_cycles=150)


@pytest.mark.parametrize("name,factory,grid", SETTINGS, ids=IDS)
def test_parallel_seed(name, factory, grid):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_seed_test(factory, num_cycles=100)


@pytest.mark.parametrize("name,factory,grid", SETTINGS, ids=IDS)
def test_spaces_cached_and_obs_in_space(name, factory, grid):
    env = factory()
    assert env.metadata["is_parallelizable"] is True
    assert env.metadata["name"]
    obs, infos = env.reset(seed=3)
    for a in env.possible_agents:
        assert env.observation_space(a) is env.observation_space(a)
        assert env.action_space(a) is env.action_space(a)
    rng = np.random.default_rng(0)
    for _ in range(60):
        for a, o in obs.items():
            assert o.dtype == np.float32
            assert env.observation_space(a).contains(o), f"{name}: obs of {a} outside its space: {o}"
        state = env.state()
        assert env.state_space.contains(state), f"{name}: state outside state_space"
        actions = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        obs, rew, term, trunc, infos = env.step(actions)
        assert set(rew) == set(env.possible_agents)
        assert all(isinstance(r, float) for r in rew.values())
        if not env.agents:
            obs, infos = env.reset()


@pytest.mark.parametrize("name,factory,grid", SETTINGS, ids=IDS)
def test_render_text_and_rgb(name, factory, grid):
    env = factory()
    env.reset(seed=1)
    text = env.render()
    assert isinstance(text, str) and len(text) > 10
    if grid:
        env.render_mode = "rgb_array"
        img = env.render()
        assert isinstance(img, np.ndarray) and img.dtype == np.uint8
        assert img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 32
        assert "rgb_array" in env.metadata["render_modes"]


def test_rgb_frame_changes_when_agents_move():
    env = MultiAgentGridWorld(render_mode="rgb_array")
    env.reset(seed=0)
    before = env.render()
    env.core.pos[0, 0] = [0, 0]
    env.core.pos[0, 1] = [4, 4]
    after = env.render()
    assert not np.array_equal(before, after)


def test_different_seeds_give_different_starts():
    for factory in (MultiAgentGridWorld, LeverPulling, PredatorPrey, CooperativeNavigation):
        env = factory()
        a, _ = env.reset(seed=0)
        b, _ = env.reset(seed=1)
        c, _ = env.reset(seed=0)
        assert any(not np.array_equal(a[k], b[k]) for k in a), factory.__name__
        assert all(np.array_equal(a[k], c[k]) for k in a), factory.__name__


def test_bad_render_mode_rejected():
    with pytest.raises(ValueError, match="render_mode"):
        LeverPulling(render_mode="rgb_array")


def test_registry_builds_every_task():
    reg = registry()
    expected = {f"matrix_{g}" for g in games.catalogue()} | {
        "matrix_qtran", "two_step", "gridworld", "gridworld_partial", "gridworld_sparse", "levers",
        "traffic_junction_easy", "traffic_junction_medium", "traffic_junction_hard",
        "predator_prey", "navigation",
    }
    assert expected <= set(reg)
    for name, (make_single, make_batched) in reg.items():
        env = make_single()
        vec = make_batched(3, seed=0)
        assert vec.num_envs == 3 and vec.num_agents == len(env.possible_agents), name
        obs, _ = vec.reset()
        assert obs.shape == (3, vec.num_agents, vec.single_observation_space.shape[0]), name
        assert vec.single_observation_space.shape == env.observation_space(env.possible_agents[0]).shape


def test_mpe_is_lazy():
    import subprocess
    import sys

    code = (
        "import sys, course_lib.envs as e; "
        "print('course_lib.envs.mpe' in sys.modules, 'registry' in dir(e))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"], out.stdout + out.stderr
