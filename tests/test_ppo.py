"""Unit tests of course_lib.algos.ppo (IPPO) and its speed module (fast: tiny networks, a few updates)."""
import numpy as np
import pytest
import torch

from course_lib.algos import ppo, ppo_fast
from course_lib.envs.mpe import SimpleSpreadVec, SimpleTagVec
from course_lib.evaluation import evaluate
from course_lib.learning import Run
from course_lib.tasks import task

torch.set_num_threads(1)

TINY = dict(num_envs=8, hidden=(16, 16), log_every=400, eval_episodes=0)  # 200 environment steps per update
TIMING = ["sps", "time", "cpu_time", "sps_cpu"]


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


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("continuous", [False, True])
def test_fast_paths_agree_with_the_plain_version(share, continuous):
    """ppo_fast (agent-major layout, fused heads, closed forms) against the readable network and
    torch.distributions on the [..., n, d] layout."""
    torch.manual_seed(0)
    net = ppo.ActorCritic(18, 3, 5, continuous=continuous, hidden=(16, 8), share_parameters=share)
    obs = torch.randn(6, 4, 3, 18)  # [T, B, n, d]
    m = net.encode(obs)
    plain = obs
    if net.agent_id:
        plain = torch.cat([obs, torch.eye(3).expand(6, 4, 3, 3)], dim=-1)
    torch.testing.assert_close(net.encoder(plain), m)  # the layers one by one, agents last
    major_obs = ppo_fast.agent_major(obs)  # [n, T * B, d]
    torch.testing.assert_close(major_obs, obs.reshape(24, 3, 18).transpose(0, 1))
    major = ppo_fast.encode_major(net, major_obs)
    torch.testing.assert_close(major.transpose(0, 1).reshape(6, 4, 3, 8), m)
    action, logp, entropy, value = ppo_fast.act_value(net, m)
    dist = net.distribution(m)
    torch.testing.assert_close(logp, dist.log_prob(action), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(entropy, dist.entropy(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(value, net.value(m))
    _, logp_major, ent_major, value_major = ppo_fast.act_value(net, major, ppo_fast.agent_major(action), major=True)
    torch.testing.assert_close(logp_major, logp.reshape(24, 3).T, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent_major, entropy.reshape(24, 3).T, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(value_major, value.reshape(24, 3).T, atol=1e-5, rtol=1e-5)
    det, _, _, _ = ppo_fast.act_value(net, m, deterministic=True)
    if continuous:
        torch.testing.assert_close(det, dist.mean)
    else:
        assert torch.equal(det, dist.probs.argmax(-1))


def test_gumbel_max_sampling_follows_the_softmax():
    net = ppo.ActorCritic(2, 1, 3, continuous=False, hidden=(4,))
    with torch.no_grad():
        net.policy_head.weight.zero_()
        net.policy_head.bias.copy_(torch.log(torch.tensor([[0.2, 0.3, 0.5]])))
    actions, _, _, _ = ppo_fast.act_value(net, net.encode(torch.zeros(20_000, 1, 2)),
                                          generator=torch.Generator().manual_seed(1))
    freq = np.bincount(actions.numpy().ravel(), minlength=3) / 20_000
    np.testing.assert_allclose(freq, [0.2, 0.3, 0.5], atol=0.015)


def test_log_std_is_projected_into_its_bounds_and_free_when_unclamped():
    for bounds, expect_inside in [(ppo.LOG_STD_BOUNDS, True), (None, False)]:
        net = ppo.ActorCritic(4, 2, 5, continuous=True, hidden=(8,), log_std_bounds=bounds)
        opt = torch.optim.Adam(net.parameters(), lr=0.1)
        for _ in range(30):  # the entropy bonus alone pushes the log-std up
            _, _, entropy, _ = ppo_fast.act_value(net, net.encode(torch.randn(16, 2, 4)))
            opt.zero_grad()
            (-entropy.mean()).backward()
            opt.step()
            net.project_log_std()
        top = float(net.log_std.detach().max())
        if expect_inside:
            assert top == pytest.approx(ppo.LOG_STD_BOUNDS[1])
            assert torch.allclose(net.current_log_std(), net.log_std)
        else:
            assert top > 2.0


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="activation"):
        ppo.ActorCritic(4, 2, 5, continuous=False, activation="gelu")
    with pytest.raises(ValueError, match="log_std_bounds"):
        ppo.ActorCritic(4, 2, 5, continuous=True, log_std_bounds=(1.0, -1.0))
    with pytest.raises(ValueError, match="MPE tasks"):
        ppo.train("gridworld", ppo.Config(**TINY), progress=False)


# ------------------------------------------------------------------ the learner
@pytest.mark.parametrize("continuous", [False, True])
def test_train_spread_curve_policy_and_evaluation(continuous):
    spread = task("simple_spread_v3", continuous_actions=continuous)
    cfg = ppo.Config(total_steps=800, **{**TINY, "eval_episodes": 6}, eval_every=400, eval_seed=123)
    run = ppo.train(spread, cfg, progress=False)
    df = run.curve
    assert list(df.columns[:4]) == ["step", "episode", "train_return", "eval_return"]
    assert list(df["step"]) == [400, 800] and (df["episode"] > 0).all()
    for col in ("train_return", "eval_return", "loss/policy", "loss/value", "entropy", "approx_kl", "lr",
                "return/agent", "cpu_time", "sps_cpu", "sps") + (("log_std", "log_std_max") if continuous else ()):
        assert col in df.columns and np.isfinite(df[col]).all(), col
    assert df["cpu_time"].is_monotonic_increasing
    # the curve's evaluation is evaluate() of the deterministic policy on mpe2's episodes 123, 124, ...
    assert df["eval_return"].iloc[-1] == evaluate(run.policy, spread, episodes=6, seed=123).mean
    policy = run.policy
    assert policy.team == [0, 1, 2] and policy.continuous == continuous
    obs, _ = SimpleSpreadVec(8, continuous_actions=continuous).reset(seed=1)
    act = policy.act(obs)
    assert act.shape == ((8, 3, 5) if continuous else (8, 3))
    if continuous:
        assert act.dtype == np.float32 and act.min() >= 0 and act.max() <= 1


def test_stochastic_acting_uses_the_policys_own_generator():
    run = ppo.train("simple_spread_v3", ppo.Config(total_steps=200, **TINY), progress=False)
    obs, _ = SimpleSpreadVec(64).reset(seed=0)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    a = run.policy.act(obs, greedy=False)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is untouched
    assert np.array_equal(a, run.policy.act(obs, greedy=False))  # a fresh policy, the same seed
    assert not np.array_equal(a, run.policy.act(obs, greedy=True))


def test_policy_speaks_mpe2_dicts_on_the_same_episodes():
    spread = task("simple_spread_v3", max_cycles=3)
    run = ppo.train(spread, ppo.Config(total_steps=75, **{**TINY, "num_envs": 3}), progress=False)
    on_mpe2 = evaluate(run.policy, spread, episodes=2, seed=7, on="mpe2")
    on_twin = evaluate(run.policy, spread, episodes=2, seed=7)
    np.testing.assert_allclose(on_mpe2.team_returns, on_twin.team_returns, atol=1e-4)


def test_tag_groups_and_a_frozen_opponent():
    env = SimpleTagVec(8, seed=0)
    groups = {g.name: g for g in ppo.groups_of(env)}
    assert groups["adversary"].agents == (0, 1, 2) and groups["adversary"].obs_size == 16
    assert groups["agent"].agents == (3,) and groups["agent"].obs_size == 14
    tag = task("simple_tag_v3")
    cfg = ppo.Config(total_steps=400, **{**TINY, "hidden": (16,)}, share_parameters=True)
    run = ppo.train(tag, cfg, progress=False)
    assert {"loss/policy/adversary", "loss/policy/agent", "return/adversary", "return/agent"} <= set(run.curve.columns)
    agents = run.learner.agents
    prey = agents["agent"].frozen()
    before = [p.clone() for p in prey.agent.net.parameters()]
    predators_before = [p.clone() for p in agents["adversary"].net.parameters()]
    learner = ppo.IPPO(tag, cfg, ppo.Parts(), agents={"adversary": agents["adversary"]}, opponents={"agent": prey})
    while not learner.done:
        learner.iterate()
    assert set(learner.agents) == {"adversary"} and learner.agents["adversary"] is agents["adversary"]
    assert all(torch.equal(a, b) for a, b in zip(before, prey.agent.net.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(predators_before, agents["adversary"].net.parameters()))
    assert {"loss/policy", "return/adversary", "return/agent"} <= set(Run(learner).curve.columns)
    obs, _ = env.reset(seed=0)
    assert prey(obs).shape == (8, 1) and agents["adversary"].act(obs).shape == (8, 3)
    policy = learner.policy()
    assert policy.team == [0, 1, 2] and policy.act(obs).shape == (8, 4)
    with pytest.raises(ValueError, match="unknown groups"):
        ppo.IPPO(tag, cfg, ppo.Parts(), opponents={"prey": prey})


# ------------------------------------------------------- the student's parts
def _spy(fn, calls, raise_at=None):
    def spy(*args, **kwargs):
        calls.append(len(calls))
        if raise_at is not None and len(calls) == raise_at:
            raise KeyboardInterrupt
        return fn(*args, **kwargs)
    return spy


def test_the_loop_calls_the_students_gae_and_clipped_surrogate():
    calls = {"gae": [], "clipped_surrogate": []}
    parts = ppo.Parts(gae=_spy(ppo.gae, calls["gae"]),
                      clipped_surrogate=_spy(ppo.clipped_surrogate, calls["clipped_surrogate"]))
    cfg = ppo.Config(total_steps=600, **TINY)
    spied = ppo.train("simple_spread_v3", cfg, parts=parts, progress=False).curve
    assert len(calls["gae"]) == 3  # once per update (one group)
    assert len(calls["clipped_surrogate"]) == 3 * cfg.epochs * cfg.minibatches  # once per gradient step
    reference = ppo.train("simple_spread_v3", cfg, progress=False).curve
    assert spied.drop(columns=TIMING).equals(reference.drop(columns=TIMING))


def _gae_without_lambda(rewards, values, dones, last_values, gamma, lam):
    return ppo.gae(rewards, values, dones, last_values, gamma, 1.0)


def _surrogate_without_clip(new_log_prob, old_log_prob, advantages, clip):
    return -(torch.exp(new_log_prob - old_log_prob.detach()) * advantages.detach()).mean()


@pytest.mark.parametrize("wrong", [{"gae": _gae_without_lambda}, {"clipped_surrogate": _surrogate_without_clip}])
def test_a_wrong_part_changes_the_run(wrong):
    cfg = ppo.Config(total_steps=600, **TINY)
    reference = ppo.train("simple_spread_v3", cfg, progress=False).curve
    planted = ppo.train("simple_spread_v3", cfg, parts=wrong, progress=False).curve
    assert not np.allclose(planted["loss/value"], reference["loss/value"])
    assert not np.allclose(planted["loss/policy"], reference["loss/policy"])


# -------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("continuous", [False, True])
def test_ctrl_c_and_resume_continue_exactly(tmp_path, continuous):
    spread = task("simple_spread_v3", continuous_actions=continuous)
    cfg = ppo.Config(total_steps=1000, **{**TINY, "log_every": 200, "eval_episodes": 4})
    a = ppo.train(spread, cfg, progress=False)
    calls: list = []
    with pytest.raises(KeyboardInterrupt):  # the 3rd update's 12th gradient step: the driver saves, then re-raises
        ppo.train(spread, cfg, parts=ppo.Parts(clipped_surrogate=_spy(ppo.clipped_surrogate, calls, 60)),
                  out=tmp_path, progress=False)
    b = ppo.train(spread, cfg, resume=tmp_path, progress=False)
    assert b.learner.updates == 5 and len(calls) == 60
    assert a.curve.drop(columns=TIMING).equals(b.curve.drop(columns=TIMING))
    for x, y in zip(a.learner.agents["agent"].net.parameters(), b.learner.agents["agent"].net.parameters()):
        assert torch.equal(x, y)
