"""Reference policies: every task has a floor (random, no-op) and a ceiling (heuristic)."""
from __future__ import annotations

import numpy as np
import pytest

from course_lib.envs import LeverPulling, TrafficJunction, VecMatrixGame, registry
from course_lib.envs.policies import (
    HeuristicPolicy,
    NoOpPolicy,
    RandomPolicy,
    evaluate_policy,
    make_policy,
    reference_policies,
)

# task -> (metric, least margin heuristic - random). Measured (256+ episodes, seed 0):
# see the numbers in the comments; margins leave room for sampling noise.
MARGINS = {
    "matrix_climbing": ("episode_return_mean", 10.0),  # 11.0 vs -3.3
    "matrix_penalty": ("episode_return_mean", 5.0),  # 10.0 vs 0.5
    "matrix_qtran": ("episode_return_mean", 10.0),  # 8.0 vs -4.1
    "two_step": ("episode_return_mean", 2.5),  # 8.0 vs 4.7
    "levers": ("distinct_score", 0.35),  # 1.0 vs 0.59
    "gridworld": ("episode_return_mean", 0.6),  # 1.97 vs 1.01
    "gridworld_partial": ("success", 0.4),  # 1.0 vs 0.39
    "gridworld_sparse": ("episode_return_mean", 0.4),  # 1.0 vs 0.39
    "traffic_junction_easy": ("episode_return_mean", 4.0),  # -0.18 vs -7.3
    "traffic_junction_medium": ("episode_return_mean", 6.0),  # -0.67 vs -11.8
    "traffic_junction_hard": ("episode_return_mean", 5.0),  # -1.1 vs -10.5 (p = 0.02)
    "predator_prey": ("episode_return_mean", 6.0),  # 9.6 vs -0.5
    "navigation": ("episode_return_mean", 10.0),  # 10.3 vs -7.3
}


@pytest.mark.parametrize("task", sorted(MARGINS))
def test_heuristic_beats_random_by_a_margin(task):
    metric, margin = MARGINS[task]
    _, make_batched = registry()[task]
    vec = make_batched(128, seed=0)
    n = 128 if task.startswith("traffic_junction_hard") else 256
    pols = reference_policies(vec, seed=1)
    res = {k: evaluate_policy(vec, p, num_episodes=n, seed=2) for k, p in pols.items()}
    gap = res["heuristic"][metric] - res["random"][metric]
    assert gap >= margin, f"{task}: heuristic {res['heuristic'][metric]:.3f} vs random {res['random'][metric]:.3f}"
    if "noop" in res:  # the ceiling is above the other floor too
        assert res["heuristic"][metric] > res["noop"][metric], task


@pytest.mark.parametrize("version", ["easy", "medium", "hard"])
def test_traffic_heuristic_never_crashes_at_the_busiest_setting(version):
    _, make_batched = registry()[f"traffic_junction_{version}"]
    vec = make_batched(64, seed=0)
    vec.set_curriculum(1.0)
    res = evaluate_policy(vec, HeuristicPolicy(vec), num_episodes=64, seed=0)
    assert res["failure"] == 0.0 and res["cars_completed"] > 1


def test_noop_exists_only_where_it_makes_sense():
    reg = registry()
    has_noop = {name for name, (ms, _) in reg.items() if ms().core.noop_action is not None}
    assert {"gridworld", "predator_prey", "navigation", "traffic_junction_easy"} <= has_noop
    assert "levers" not in has_noop and "matrix_climbing" not in has_noop
    with pytest.raises(ValueError, match="no no-op"):
        NoOpPolicy(LeverPulling())
    vec = reg["navigation"][1](4, seed=0)
    vec.reset()
    np.testing.assert_array_equal(NoOpPolicy(vec)(None), 0)


def test_policies_speak_the_single_env_api():
    env = TrafficJunction(arrival_prob=0.3)
    obs, _ = env.reset(seed=0)
    for kind in ("random", "noop", "heuristic"):
        pol = make_policy(kind, env, seed=0)
        acts = pol(obs)
        assert set(acts) == set(env.agents) and all(a in (0, 1) for a in acts.values())
    res = evaluate_policy(env, make_policy("heuristic", env), num_episodes=3, seed=0)
    assert res["episodes"] == 3 and res["failure"] == 0.0
    with pytest.raises(ValueError, match="kind"):
        make_policy("greedy", env)


def test_matrix_heuristic_plays_the_social_optimum():
    payoffs = np.zeros((2, 3, 2))
    payoffs[1, 2] = [4, 5]
    payoffs[0, 1] = [9, -1]
    vec = VecMatrixGame(3, payoffs, seed=0)
    vec.reset()
    np.testing.assert_array_equal(HeuristicPolicy(vec)(None), [[1, 2]] * 3)


def test_random_policy_covers_every_action():
    vec = registry()["predator_prey"][1](256, seed=0)
    acts = RandomPolicy(vec, seed=0)(None)
    assert acts.shape == (256, 3) and set(np.unique(acts)) == {0, 1, 2, 3, 4}
