"""Unit tests of course_lib.algos.ppo (fast: tiny networks and a few hundred steps)."""
import numpy as np
import pytest
import torch

from course_lib.algos import ppo
from course_lib.envs.mpe import SimpleSpreadVec, SimpleTagVec

torch.set_num_threads(1)


def _gae_loop(r, v, d, last, gamma, lam):
    """A plain-Python GAE over 1-d rollouts."""
    T = len(r)
    adv, running, nxt = np.zeros(T), 0.0, last
    for t in reversed(range(T)):
        delta = r[t] + gamma * nxt * (1 - d[t]) - v[t]
        running = delta + gamma * lam * (1 - d[t]) * running
        adv[t], nxt = running, v[t]
    return adv


def test_gae_matches_loop_and_special_cases():
    rng = np.random.default_rng(0)
    r, v = rng.normal(size=7), rng.normal(size=7)
    d = np.array([0, 0, 1, 0, 0, 0, 1.0])
    got = ppo.gae(torch.tensor(r), torch.tensor(v), torch.tensor(d), torch.tensor(0.7), 0.9, 0.8).numpy()
    np.testing.assert_allclose(got, _gae_loop(r, v, d, 0.7, 0.9, 0.8), atol=1e-5)
    # lambda = 1, no episode end: advantage = discounted reward-to-go + bootstrap - V
    r = np.ones(4)
    got = ppo.gae(torch.tensor(r), torch.zeros(4), torch.zeros(4), torch.tensor(10.0), 0.5, 1.0).numpy()
    np.testing.assert_allclose(got, [1 + .5 + .25 + .125 + .0625 * 10, 1 + .5 + .25 + .125 * 10,
                                     1 + .5 + .25 * 10, 1 + .5 * 10], atol=1e-5)
    # lambda = 0: one-step TD errors
    v = np.arange(4.0)
    got = ppo.gae(torch.tensor(r), torch.tensor(v), torch.zeros(4), torch.tensor(2.0), 0.9, 0.0).numpy()
    np.testing.assert_allclose(got, r + 0.9 * np.r_[v[1:], 2.0] - v, atol=1e-5)
    # batched shapes [T, B, n]
    got = ppo.gae(torch.ones(3, 2, 4), torch.zeros(3, 2, 4), torch.zeros(3, 2, 4), torch.zeros(2, 4), 1.0, 1.0)
    assert got.shape == (3, 2, 4) and torch.allclose(got[0], torch.full((2, 4), 3.0))


def test_clipped_surrogate_values_and_gradients():
    old = torch.zeros(4)
    new = torch.log(torch.tensor([1.5, 1.5, 0.5, 1.0])).requires_grad_(True)
    adv = torch.tensor([1.0, -1.0, -1.0, 2.0])
    loss = ppo.clipped_surrogate(new, old, adv, 0.2)
    # min(r A, clip(r) A): 1.2 (clipped), -1.5 (unclipped), -0.8 (clipped), 2.0
    assert loss.item() == pytest.approx(-(1.2 - 1.5 - 0.8 + 2.0) / 4, abs=1e-6)
    loss.backward()
    # no gradient through clipped terms; d/dlogp (r A) = r A / 4 otherwise
    np.testing.assert_allclose(new.grad.numpy(), [0.0, 1.5 / 4, 0.0, -2.0 / 4], atol=1e-6)


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("continuous", [False, True])
def test_actor_critic_shapes_and_independence(share, continuous):
    net = ppo.ActorCritic(18, 3, 5, continuous=continuous, hidden=(16, 8), share_parameters=share)
    obs = torch.randn(7, 3, 18)
    m = net.encode(obs)
    assert m.shape == (7, 3, 8) and net.latent_dim == 8
    dist = net.distribution(m)
    a = dist.sample()
    assert a.shape == ((7, 3, 5) if continuous else (7, 3))
    assert dist.log_prob(a).shape == (7, 3) and dist.entropy().shape == (7, 3)
    assert net.value(m).shape == (7, 3)
    if not share:  # changing agent 0's weights leaves agents 1 and 2 alone
        with torch.no_grad():
            net.encoder[0].weight[0].add_(1.0)
        m2 = net.encode(obs)
        assert not torch.allclose(m2[:, 0], m[:, 0]) and torch.allclose(m2[:, 1:], m[:, 1:])
    with pytest.raises(ValueError, match="expects observations"):
        net.encode(torch.randn(7, 2, 18))


def test_log_std_clamp():
    net = ppo.ActorCritic(4, 2, 5, continuous=True, hidden=(8,))
    with torch.no_grad():
        net.log_std.fill_(3.0)
    assert torch.allclose(net.current_log_std(), torch.tensor(ppo.LOG_STD_BOUNDS[1]))
    free = ppo.ActorCritic(4, 2, 5, continuous=True, hidden=(8,), log_std_bounds=None)
    with torch.no_grad():
        free.log_std.fill_(3.0)
    assert torch.allclose(free.current_log_std(), torch.tensor(3.0))


@pytest.mark.parametrize("continuous", [False, True])
def test_train_spread_smoke(continuous):
    env = SimpleSpreadVec(8, continuous_actions=continuous, seed=0)
    df, agents = ppo.train(env, ppo.Config(total_steps=800, log_every=400, progress=False, hidden=(16, 16)),
                           return_agents=True)
    assert list(df["step"]) == [400, 800]
    for col in ("episode_return", "loss/policy", "loss/value", "entropy", "sps", "lr"):
        assert col in df.columns and np.isfinite(df[col]).all(), col
    assert set(agents) == {"agent"}
    obs, _ = env.reset(seed=1)
    act = agents["agent"].act(obs)
    assert act.shape == ((8, 3, 5) if continuous else (8, 3))
    if continuous:
        assert act.dtype == np.float32 and act.min() >= 0 and act.max() <= 1
    team = ppo.TeamPolicy(env, agents["agent"], deterministic=True)
    returns = ppo.evaluate(SimpleSpreadVec(4, continuous_actions=continuous), team, episodes=4)
    assert returns.shape == (4,) and np.isfinite(returns).all()


def test_tag_groups_and_frozen_opponent():
    env = SimpleTagVec(8, seed=0)
    groups = {g.name: g for g in ppo.groups_of(env)}
    assert groups["adversary"].agents == (0, 1, 2) and groups["adversary"].obs_size == 16
    assert groups["agent"].agents == (3,) and groups["agent"].obs_size == 14
    cfg = ppo.Config(total_steps=400, log_every=400, progress=False, hidden=(16,), share_parameters=True)
    _, agents = ppo.train(env, cfg, return_agents=True)
    assert set(agents) == {"adversary", "agent"}
    prey = agents["agent"].frozen()
    before = [p.clone() for p in prey.agent.net.parameters()]
    predators_before = [p.clone() for p in agents["adversary"].net.parameters()]
    df, trained = ppo.train(env, cfg, agents={"adversary": agents["adversary"]}, opponents={"agent": prey},
                            return_agents=True)
    assert set(trained) == {"adversary"} and trained["adversary"] is agents["adversary"]
    assert all(torch.equal(a, b) for a, b in zip(before, prey.agent.net.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(predators_before, trained["adversary"].net.parameters()))
    assert "return/adversary" in df.columns and "return/agent" in df.columns
    obs, _ = env.reset(seed=0)
    assert prey(obs).shape == (8, 1) and trained["adversary"].act(obs).shape == (8, 3)
    full = ppo.TeamPolicy(env, trained["adversary"], prey)(obs)
    assert full.shape == (8, 4)
    with pytest.raises(ValueError, match="unknown groups"):
        ppo.train(env, cfg, opponents={"prey": prey})


def test_team_policy_speaks_mpe2_dicts():
    from course_lib.envs.mpe import make_mpe2_simple_spread

    vec = SimpleSpreadVec(2)
    agent = ppo.make_agent(ppo.groups_of(vec)[0], ppo.Config(hidden=(8,)))
    team = ppo.TeamPolicy(vec, agent, deterministic=True)
    env = make_mpe2_simple_spread(max_cycles=3)
    returns = ppo.evaluate(env, team, episodes=2, mpe2=True)
    twin = ppo.evaluate(SimpleSpreadVec(2, max_cycles=3), team, episodes=2)
    np.testing.assert_allclose(returns, twin, atol=1e-4)  # same episodes, same deterministic policy


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("continuous", [False, True])
def test_fast_paths_match_torch_distributions_and_layouts(share, continuous):
    torch.manual_seed(0)
    net = ppo.ActorCritic(18, 3, 5, continuous=continuous, hidden=(16, 8), share_parameters=share)
    obs = torch.randn(6, 4, 3, 18)  # [T, B, n, d]
    m = net.encode(obs)
    major = net.encode(obs.reshape(24, 3, 18).transpose(0, 1).contiguous(), major=True)  # [n, M, m]
    torch.testing.assert_close(major.transpose(0, 1).reshape(6, 4, 3, 8), m)
    action, logp, entropy, value = net.get_action_and_value(m)
    dist = net.distribution(m)
    torch.testing.assert_close(logp, dist.log_prob(action), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(entropy, dist.entropy(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(value, net.value(m))
    flat_action = action.reshape(24, 3, *action.shape[3:]).transpose(0, 1)
    _, logp_major, ent_major, value_major = net.get_action_and_value(major, flat_action, major=True)
    torch.testing.assert_close(logp_major, logp.reshape(24, 3).T, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent_major, entropy.reshape(24, 3).T, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(value_major, value.reshape(24, 3).T, atol=1e-5, rtol=1e-5)
    det, _ = net.sample(m, deterministic=True)
    if continuous:
        torch.testing.assert_close(det, dist.mean)
    else:
        assert torch.equal(det, dist.probs.argmax(-1))


def test_gumbel_max_sampling_follows_the_softmax():
    net = ppo.ActorCritic(2, 1, 3, continuous=False, hidden=(4,))
    with torch.no_grad():
        net.policy_head.weight.zero_()
        net.policy_head.bias.copy_(torch.log(torch.tensor([[0.2, 0.3, 0.5]])))
    torch.manual_seed(1)
    actions, _ = net.sample(net.encode(torch.zeros(20_000, 1, 2)))
    freq = np.bincount(actions.numpy().ravel(), minlength=3) / 20_000
    np.testing.assert_allclose(freq, [0.2, 0.3, 0.5], atol=0.015)


def test_log_std_is_projected_into_its_bounds_and_free_when_unclamped():
    for bounds, expect_inside in [(ppo.LOG_STD_BOUNDS, True), (None, False)]:
        net = ppo.ActorCritic(4, 2, 5, continuous=True, hidden=(8,), log_std_bounds=bounds)
        opt = torch.optim.Adam(net.parameters(), lr=0.1)
        for _ in range(30):  # the entropy bonus alone pushes the log-std up
            _, _, entropy, _ = net.get_action_and_value(net.encode(torch.randn(16, 2, 4)))
            opt.zero_grad()
            (-entropy.mean()).backward()
            opt.step()
            net.project_log_std()
        top = float(net.log_std.detach().max())
        if expect_inside:
            assert top == pytest.approx(ppo.LOG_STD_BOUNDS[1])
        else:
            assert top > 2.0


def test_train_logs_cpu_time_and_twin_evaluator_matches_evaluate():
    env = SimpleSpreadVec(8, seed=0)
    evaluator = ppo.twin_evaluator(env, episodes=6, seed=123)
    df, agents = ppo.train(env, ppo.Config(total_steps=400, log_every=200, progress=False, hidden=(8,)),
                           eval_fn=evaluator, return_agents=True)
    assert {"cpu_time", "sps_cpu", "time", "sps", "eval_return", "eval_sem"} <= set(df.columns)
    assert (df["cpu_time"] > 0).all() and df["cpu_time"].is_monotonic_increasing
    team = ppo.TeamPolicy(env, agents["agent"], deterministic=True)
    want = ppo.evaluate(SimpleSpreadVec(6), team, episodes=6, seed=123).mean()
    assert evaluator(agents)["eval_return"] == pytest.approx(want, abs=1e-4)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="activation"):
        ppo.ActorCritic(4, 2, 5, continuous=False, activation="gelu")
    with pytest.raises(ValueError, match="log_std_bounds"):
        ppo.ActorCritic(4, 2, 5, continuous=True, log_std_bounds=(1.0, -1.0))
