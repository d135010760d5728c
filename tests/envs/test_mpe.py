"""course_lib.envs.mpe: the batched simple_spread / simple_tag twins match mpe2.

The equivalence tests copy mpe2 worlds (several seeds, plus hand-placed states
that force collisions, obstacle contacts and the boundary penalty) into one
batch, feed the same random actions to both for a whole episode, and compare
observations, rewards, positions and velocities at every step (1e-5).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium import spaces

from course_lib.envs.mpe import (
    SimpleSpreadVec,
    SimpleTagVec,
    from_mpe2,
    load_mpe2_state,
    mpe_registry,
)
from course_lib.envs.policies import make_policy
from course_lib.envs.mpe_policies import evaluate_mpe2, evaluate_vec

mpe2 = pytest.importorskip("mpe2")
from mpe2 import simple_spread_v3, simple_tag_v3  # noqa: E402

ATOL = 1e-5
TASKS = {
    "spread": (simple_spread_v3, SimpleSpreadVec, {}),
    "spread_N4": (simple_spread_v3, SimpleSpreadVec, {"N": 4, "local_ratio": 0.3}),
    "tag": (simple_tag_v3, SimpleTagVec, {}),
    "tag_2v2": (simple_tag_v3, SimpleTagVec, {"num_good": 2, "num_adversaries": 2, "num_obstacles": 3}),
}


def _world(env):
    return env.unwrapped.world


def _stage_contacts(task: str, envs) -> None:
    """Put hand-made states into the last mpe2 envs so every code path runs."""
    w = _world(envs[-1])
    if task.startswith("spread"):
        # agents 0 and 1 overlapping (collision penalty + contact forces), the
        # others apart; agent 0 on a landmark
        for i, a in enumerate(w.agents):
            a.state.p_pos = np.array([0.1 * i, 0.05 * i]) if i < 2 else np.array([0.7 * (-1) ** i, 0.6])
            a.state.p_vel = np.array([0.3, -0.2 * i])
        w.landmarks[0].state.p_pos = np.array([0.0, 0.0])
    else:
        adv = [a for a in w.agents if a.adversary]
        good = [a for a in w.agents if not a.adversary]
        # predators on top of the prey (+10/-10), one touching an obstacle
        for i, a in enumerate(adv):
            a.state.p_pos = good[0].state.p_pos + np.array([0.03 * (i + 1), -0.02 * i])
        w.landmarks[0].state.p_pos = adv[0].state.p_pos + np.array([0.25, 0.0])
        # prey in the boundary bands of the next env: (0.9, 1.0) and beyond 1.0
        w2 = _world(envs[-2])
        g2 = [a for a in w2.agents if not a.adversary]
        g2[0].state.p_pos = np.array([0.95, -1.3])
        g2[0].state.p_vel = np.array([0.5, -0.5])


def _mpe2_obs(env):
    raw = env.unwrapped
    return {n: raw.observe(n) for n in raw.possible_agents}


def _compare(vec, envs, obs, obs_ref, rew=None, rew_ref=None, where=""):
    for b, env in enumerate(envs):
        for i, name in enumerate(vec.agent_names):
            d = int(vec.obs_sizes[i])
            np.testing.assert_allclose(obs[b, i, :d], obs_ref[b][name], atol=ATOL, rtol=0,
                                       err_msg=f"obs env {b} {name} {where}")
            assert not obs[b, i, d:].any(), "padding must stay zero"
            if rew is not None:
                assert abs(rew[b, i] - rew_ref[b][name]) <= ATOL, (b, name, where, rew[b, i], rew_ref[b][name])
        w = _world(env)
        np.testing.assert_allclose(vec.pos[b], [a.state.p_pos for a in w.agents], atol=ATOL, rtol=0,
                                   err_msg=f"positions env {b} {where}")
        np.testing.assert_allclose(vec.vel[b], [a.state.p_vel for a in w.agents], atol=ATOL, rtol=0,
                                   err_msg=f"velocities env {b} {where}")


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize("task", list(TASKS))
def test_matches_mpe2_whole_episode(task, continuous):
    module, Vec, kwargs = TASKS[task]
    seeds = [0, 1, 7, 42, 123]
    envs = [module.parallel_env(continuous_actions=continuous, **kwargs) for _ in seeds]
    for env, s in zip(envs, seeds):
        env.reset(seed=s)
    _stage_contacts(task, envs)
    vec = from_mpe2(envs)
    assert isinstance(vec, Vec) and vec.num_envs == len(seeds)
    assert vec.agent_names == list(envs[0].possible_agents)
    _compare(vec, envs, vec.observe(), [_mpe2_obs(e) for e in envs], where="after copy")

    rng = np.random.default_rng(2024)
    B, N = vec.num_envs, vec.num_agents
    all_rewards = []
    for t in range(vec.max_cycles):
        if continuous:
            acts = rng.random((B, N, 5), dtype=np.float32)
        else:
            acts = rng.integers(0, 5, size=(B, N))
        ref = [env.step({n: acts[b, i] for i, n in enumerate(vec.agent_names)}) for b, env in enumerate(envs)]
        obs, rew, term, trunc, info = vec.step(acts)
        last = t == vec.max_cycles - 1
        if last:  # the batch reset itself: compare the final obs, then the state has moved on
            assert info["done"].all() and trunc.all() and not term.any()
            for b in range(B):
                for i, n in enumerate(vec.agent_names):
                    d = int(vec.obs_sizes[i])
                    np.testing.assert_allclose(info["final_obs"][b, i, :d], ref[b][0][n], atol=ATOL, rtol=0)
                    assert abs(rew[b, i] - ref[b][1][n]) <= ATOL
                assert all(ref[b][3].values()) and not any(ref[b][2].values())
        else:
            assert not info["done"].any() and not trunc.any() and not term.any()
            assert obs is info["final_obs"]
            _compare(vec, envs, obs, [r[0] for r in ref], rew, [r[1] for r in ref], where=f"step {t}")
            for b in range(B):
                assert not any(ref[b][3].values())
        all_rewards.append(rew)
    all_rewards = np.array(all_rewards)
    # the staged states really exercised collisions (and, for tag, the boundary)
    if task.startswith("spread"):
        assert (all_rewards[:, -1].std(axis=1) > 0).any(), "expected a collision penalty"
    else:
        n_adv = vec.num_adversaries
        assert (all_rewards[:, -1, :n_adv] >= 10).any(), "expected a capture"
        frac = -all_rewards[:, -2, n_adv] % 10
        assert (frac > 1e-3).any(), "expected a boundary penalty"


@pytest.mark.parametrize("task", ["spread", "tag"])
def test_seeded_reset_follows_mpe2(task):
    """A batch of one seeded like mpe2 draws mpe2's initial states, also after auto-reset."""
    module, Vec, kwargs = TASKS[task]
    env = module.parallel_env(**kwargs)
    ref0, _ = env.reset(seed=5)
    vec = Vec(1, **kwargs)
    obs, info = vec.reset(seed=5)
    assert obs.dtype == np.float32 and obs.shape == (1, vec.num_agents, vec.obs_dim)
    for i, n in enumerate(vec.agent_names):
        np.testing.assert_array_equal(obs[0, i, :vec.obs_sizes[i]], ref0[n])
    np.testing.assert_array_equal(vec.state()[0], env.state())  # centralised-critic state
    assert vec.state().shape == (1, vec.state_dim) == (1,) + env.state_space.shape
    acts = np.zeros((1, vec.num_agents), dtype=np.int64)
    for _ in range(vec.max_cycles):
        obs, *_ = vec.step(acts)
    ref1, _ = env.reset()  # mpe2's next (unseeded) episode
    for i, n in enumerate(vec.agent_names):
        np.testing.assert_array_equal(obs[0, i, :vec.obs_sizes[i]], ref1[n])


@pytest.mark.parametrize("task", ["spread", "tag"])
def test_reset_from_seeds_matches_mpe2(task):
    module, Vec, kwargs = TASKS[task]
    env = module.parallel_env(**kwargs)
    vec = Vec(3, **kwargs)
    obs, _ = vec.reset_from_seeds([8, 9, 10])
    for b, s in enumerate([8, 9, 10]):
        ref, _ = env.reset(seed=s)
        for i, n in enumerate(vec.agent_names):
            np.testing.assert_array_equal(obs[b, i, :vec.obs_sizes[i]], ref[n])
    with pytest.raises(ValueError, match="seeds"):
        vec.reset_from_seeds([1, 2])


@pytest.mark.parametrize("Vec", [SimpleSpreadVec, SimpleTagVec])
def test_auto_reset_and_returns(Vec):
    B = 6
    vec = Vec(B, max_cycles=10, seed=3)
    obs, _ = vec.reset()
    rng = np.random.default_rng(0)
    total = np.zeros((B, vec.num_agents))
    for t in range(10):
        acts = rng.integers(0, 5, size=(B, vec.num_agents))
        if t == 9:
            before = vec.get_state()
            twin = Vec(B, max_cycles=100)
            twin.set_state(before)
            expect_obs, *_ = twin.step(acts)
        obs, rew, term, trunc, info = vec.step(acts)
        assert rew.dtype == np.float32 and rew.shape == (B, vec.num_agents)
        assert term.dtype == bool and trunc.dtype == bool
        total += rew
        if t < 9:
            assert not info["done"].any()
            assert np.isnan(info["episode_return"]).all()
            assert (info["episode_length"] == 0).all()
    assert info["done"].all() and trunc.all() and not term.any()
    np.testing.assert_array_equal(info["final_obs"], expect_obs)
    np.testing.assert_allclose(info["episode_return"], total, atol=1e-4)
    np.testing.assert_allclose(info["episode_return_mean"], total.mean(axis=1), atol=1e-4)
    assert (info["episode_length"] == 10).all()
    # the returned obs is the new episode's first: fresh state, zero velocity
    assert (vec.steps == 0).all() and not vec.vel.any() and not obs[:, :, 0:2].any()
    np.testing.assert_array_equal(obs, vec.observe())
    assert not np.allclose(obs, info["final_obs"])
    # the next episode runs on
    obs, rew, term, trunc, info = vec.step(np.zeros((B, vec.num_agents), dtype=int))
    assert not info["done"].any() and (vec.steps == 1).all()


def test_reset_seeding():
    a, _ = SimpleTagVec(8).reset(seed=11)
    b, _ = SimpleTagVec(8, seed=99).reset(seed=11)
    c, _ = SimpleTagVec(8).reset(seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    d, _ = SimpleSpreadVec(8, seed=4).reset()
    e, _ = SimpleSpreadVec(8, seed=4).reset()
    np.testing.assert_array_equal(d, e)


@pytest.mark.parametrize("Vec", [SimpleSpreadVec, SimpleTagVec])
def test_bad_actions_raise(Vec):
    vec = Vec(4, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros((4, vec.num_agents), dtype=int))
    vec.reset()
    N = vec.num_agents
    acts = np.zeros((4, N), dtype=int)
    acts[2, N - 1] = 5
    with pytest.raises(ValueError, match=rf"agent {N - 1} \({vec.agent_names[-1]}\).*Discrete\(5\)"):
        vec.step(acts)
    acts[2, N - 1] = -1
    with pytest.raises(ValueError, match="Discrete"):
        vec.step(acts)
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros((4, N + 1), dtype=int))
    f = np.zeros((4, N))
    f[1, 1] = 0.5
    with pytest.raises(ValueError, match=r"agent 1 .*Discrete\(5\)"):
        vec.step(f)
    with pytest.raises(ValueError, match="Discrete"):
        vec.step(np.full((4, N), "a"))
    vec.step(np.ones((4, N)))  # whole-number floats are accepted
    vec.step(vec.sample_actions())

    cvec = Vec(4, continuous_actions=True, seed=0)
    cvec.reset()
    ca = np.full((4, N, 5), 0.5, dtype=np.float32)
    ca[3, 0, 2] = 1.5
    with pytest.raises(ValueError, match=r"agent 0 .*Box\(0.0, 1.0, \(5,\)"):
        cvec.step(ca)
    ca[3, 0, 2] = np.nan
    with pytest.raises(ValueError, match=r"agent 0 .*Box"):
        cvec.step(ca)
    with pytest.raises(ValueError, match="shape"):
        cvec.step(np.zeros((4, N), dtype=int))
    cvec.step(np.zeros((4, N, 5)))
    cvec.step(cvec.sample_actions())


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("task", ["spread", "tag"])
def test_spaces_match_mpe2(task, continuous):
    module, Vec, kwargs = TASKS[task]
    env = module.parallel_env(continuous_actions=continuous)
    vec = Vec(3, continuous_actions=continuous)
    assert vec.agent_names == list(env.possible_agents) == vec.possible_agents
    assert vec.num_agents == len(env.possible_agents)
    for i, n in enumerate(vec.agent_names):
        assert vec.observation_space(n) is vec.observation_space(i)  # cached
        assert vec.action_space(n) is vec.action_space(i)
        assert vec.observation_space(n).shape == env.observation_space(n).shape == (vec.obs_sizes[i],)
        if continuous:
            assert isinstance(vec.action_space(n), spaces.Box) and vec.action_space(n).shape == (5,)
        else:
            assert vec.action_space(n) == spaces.Discrete(5) == env.action_space(n)
    if task == "tag":
        assert list(vec.obs_sizes) == [16, 16, 16, 14] and vec.obs_dim == 16
    else:
        assert vec.obs_dim == 18


def test_load_state_rejects_mismatch():
    env = simple_spread_v3.parallel_env(N=4)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="agents"):
        load_mpe2_state(SimpleSpreadVec(2), env, 0)


def test_registry_entries():
    reg = mpe_registry()
    for task, (make_single, make_batched) in reg.items():
        single = make_single()
        assert single.unwrapped.metadata["name"] == task
        vec = make_batched(2)
        obs, _ = vec.reset(seed=0)
        assert obs.shape == (2, vec.num_agents, vec.obs_dim)


# ----------------------------------------------------------------- policies
@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("task", ["spread", "tag"])
def test_policies_give_valid_actions(task, continuous):
    module, Vec, _ = TASKS[task]
    env = module.parallel_env(continuous_actions=continuous)
    vec = Vec(5, continuous_actions=continuous)
    obs_b, _ = vec.reset(seed=0)
    obs_d, _ = env.reset(seed=0)
    for kind in ("random", "noop", "heuristic"):
        a_b = make_policy(kind, vec, seed=0)(obs_b)
        assert a_b.shape == ((5, vec.num_agents, 5) if continuous else (5, vec.num_agents))
        vec.step(a_b)  # validated by the env
        a_d = make_policy(kind, env, seed=0)(obs_d)
        assert set(a_d) == set(env.agents)
        for n, a in a_d.items():
            assert env.action_space(n).contains(np.asarray(a, dtype=np.float32) if continuous else a), (kind, n, a)
        env.step(a_d)


def test_dict_and_batched_heuristics_agree():
    """The heuristic sees the same thing through mpe2's dicts and the twin's arrays."""
    for module in (simple_spread_v3, simple_tag_v3):
        env = module.parallel_env()
        obs_d, _ = env.reset(seed=3)
        vec = from_mpe2([env])
        pol_d, pol_b = make_policy("heuristic", env), make_policy("heuristic", vec)
        for _ in range(10):
            a_d = pol_d(obs_d)
            a_b = pol_b(vec.observe())
            assert [a_d[n] for n in vec.agent_names] == a_b[0].tolist()
            obs_d, *_ = env.step(a_d)
            vec.step(a_b)


def test_heuristics_set_floor_and_ceiling():
    """simple_spread: heuristic >> no-op, random; simple_tag: heuristic predators catch."""
    vec = SimpleSpreadVec(64)
    team = {k: evaluate_vec(vec, make_policy(k, vec, seed=0), 64, seed=0).sum(axis=1).mean()
            for k in ("random", "noop", "heuristic")}
    assert team["heuristic"] > -30 and team["heuristic"] > team["noop"] + 30 > team["random"] + 30 - 10
    # on mpe2's own episodes the deterministic heuristic scores the same on both
    env = simple_spread_v3.parallel_env()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = evaluate_mpe2(env, make_policy("heuristic", env), 6, seed=10)
    twin = evaluate_vec(SimpleSpreadVec(3), make_policy("heuristic", vec), 6, seed=10, mpe2_seeds=True)
    np.testing.assert_allclose(twin, ref, atol=1e-4)
    assert ref.sum(axis=1).mean() > -35
    tag = SimpleTagVec(64)
    h = evaluate_vec(tag, make_policy("heuristic", tag), 64, seed=0).mean(axis=0)
    r = evaluate_vec(tag, make_policy("random", tag, seed=0), 64, seed=0).mean(axis=0)
    assert h[0] > r[0] + 20  # predators catch the prey far more often
