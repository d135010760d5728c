"""Unit tests of course_lib.algos.la_ippo (Method I)."""
import numpy as np
import pytest
import torch

from course_lib.algos import la_ippo, ppo
from course_lib.envs.mpe import SimpleSpreadVec

torch.set_num_threads(1)


def test_topology_pairs():
    assert la_ippo.topology_pairs("ring", 3) == [(0, 1), (1, 2), (2, 0)]
    assert la_ippo.topology_pairs("star", 4) == [(1, 0), (2, 0), (3, 0)]
    assert sorted(la_ippo.topology_pairs("all-to-all", 3)) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    with pytest.raises(ValueError):
        la_ippo.topology_pairs("tree", 3)
    with pytest.raises(ValueError):
        la_ippo.topology_pairs("ring", 1)


def test_distillation_loss_stops_the_teachers_gradient():
    s = torch.tensor([[1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    t = torch.tensor([[0.0, 0.0], [1.0, 1.0]], requires_grad=True)
    loss = la_ippo.distillation_loss(s, t)
    assert loss.item() == pytest.approx((5.0 + 2.0) / 2)
    loss.backward()
    np.testing.assert_allclose(s.grad.numpy(), [[1.0, 2.0], [-1.0, -1.0]])
    assert t.grad is None or torch.count_nonzero(t.grad) == 0


def _alignment(**kw):
    cfg = la_ippo.Config(hidden=(16, 8), **kw)
    group = ppo.Group("agent", (0, 1, 2), 18, 5, False)
    agent = ppo.make_agent(group, cfg)
    ext = la_ippo.Alignment(cfg)
    ext.setup({"agent": agent}, cfg)
    ext.after_rollout(group, torch.randn(25, 8, 3, 18))
    return cfg, agent, ext


def test_alignment_pulls_encoders_together():
    cfg, agent, ext = _alignment(distill_weight=1.0)
    assert ext.filled == 200 and ext.pairs == la_ippo.topology_pairs("all-to-all", 3)
    probe = ext.buffers[0, :100]
    before = la_ippo.latent_geometry(agent.net, probe)["distance"]
    opt = torch.optim.Adam(agent.net.parameters(), lr=1e-2)
    for step in range(60):
        loss = ext.aux_loss(agent, step * cfg.distill_every)
        assert loss is not None
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert agent.net.policy_head.weight.grad is None or not agent.net.policy_head.weight.grad.any()
    after = la_ippo.latent_geometry(agent.net, probe)["distance"]
    assert after < 0.5 * before
    assert ext.aux_loss(agent, 1) is None  # only every distill_every learn steps


def test_separate_optimizer_variant_and_ippo():
    _, _, ext = _alignment(separate_optimizer=True)
    assert ext.distill_optimizer is not None
    _, agent, ext = _alignment(distill_weight=0.0)
    assert ext.aux_loss(agent, 0) is None


@pytest.mark.parametrize("kw", [{}, {"separate_optimizer": True, "topology": "ring"}])
def test_train_smoke(kw):
    env = SimpleSpreadVec(8, seed=0)
    df = la_ippo.train(env, la_ippo.Config(total_steps=800, log_every=400, progress=False, hidden=(16, 16),
                                           distill_every=2, **kw))
    for col in ("latent/distance", "latent/spread", "loss/distill", "episode_return"):
        assert col in df.columns and np.isfinite(df[col]).all(), col
    with pytest.raises(ValueError, match="one encoder per agent"):
        la_ippo.train(env, la_ippo.Config(total_steps=200, share_parameters=True, progress=False))


def test_latent_geometry_distance_and_collapse():
    cfg = la_ippo.Config(hidden=(8,))
    agent = ppo.make_agent(ppo.Group("agent", (0, 1, 2), 18, 5, False), cfg)
    obs = torch.randn(50, 18)
    geo = la_ippo.latent_geometry(agent.net, obs)
    assert geo["distance"] > 0 and geo["spread"] > 0
    with torch.no_grad():  # identical encoders: aligned, distance 0
        layer = agent.net.encoder[0]
        layer.weight.copy_(layer.weight[:1].expand_as(layer.weight))
        layer.bias.copy_(layer.bias[:1].expand_as(layer.bias))
    assert la_ippo.latent_geometry(agent.net, obs)["distance"] == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():  # a constant encoder: collapsed, spread 0
        layer.weight.zero_()
    assert la_ippo.latent_geometry(agent.net, obs)["spread"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        la_ippo.latent_geometry(agent.net, obs[:1])


def test_distillation_only_moves_the_students_of_a_star():
    cfg, agent, ext = _alignment(distill_weight=1.0, topology="star")
    loss = ext.aux_loss(agent, 0)
    loss.backward()
    grads = agent.net.encoder[0].weight.grad  # [n, in, out]: agent 0 is the hub (teacher only)
    assert grads[0].abs().sum() == 0 and grads[1].abs().sum() > 0 and grads[2].abs().sum() > 0
