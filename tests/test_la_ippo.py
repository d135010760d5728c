"""Unit tests of course_lib.algos.la_ippo (Method I)."""
import numpy as np
import pytest
import torch

from course_lib.algos import la_ippo, ppo
from course_lib.tasks import task
from spies import Spy

torch.set_num_threads(1)

TINY = dict(num_envs=8, hidden=(16, 16), log_every=400, eval_episodes=0, distill_every=2)  # 200 steps per update
TIMING = ["sps", "time", "cpu_time", "sps_cpu"]


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


def _method_i(**kw):
    """A Method I learner whose buffers hold 200 random observations per agent."""
    learner = la_ippo.MethodI(task("simple_spread_v3"), la_ippo.Config(**{**TINY, "hidden": (16, 8), **kw}),
                              la_ippo.Parts())
    (agent,) = learner.agents.values()
    learner.after_rollout(agent, torch.randn(25, 8, 3, 18))
    return learner, agent


def test_alignment_pulls_encoders_together():
    learner, agent = _method_i(distill_weight=1.0)
    assert learner.filled == 200
    probe = learner.buffers[0, :100]
    before = la_ippo.latent_geometry(agent.net, probe)["distance"]
    opt = torch.optim.Adam(agent.net.parameters(), lr=1e-2)
    for _ in range(60):
        loss = learner.extra_loss(agent)
        assert loss is not None
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert agent.net.policy_head.weight.grad is None or not agent.net.policy_head.weight.grad.any()
    after = la_ippo.latent_geometry(agent.net, probe)["distance"]
    assert after < 0.5 * before
    learner.learn_steps = 1
    assert learner.extra_loss(agent) is None  # only every distill_every gradient steps


def test_separate_optimizer_variant_and_ippo():
    learner, agent = _method_i(separate_optimizer=True)
    assert learner.distill_optimizer is not None and learner.extra_loss(agent) is None
    learner, agent = _method_i(distill_weight=0.0)
    assert learner.extra_loss(agent) is None


def test_distillation_only_moves_the_students_of_a_star():
    learner, agent = _method_i(distill_weight=1.0, topology="star")
    learner.extra_loss(agent).backward()
    grads = agent.net.encoder[0].weight.grad  # [n, in, out]: agent 0 is the hub (teacher only)
    assert grads[0].abs().sum() == 0 and grads[1].abs().sum() > 0 and grads[2].abs().sum() > 0


@pytest.mark.parametrize("kw", [{}, {"separate_optimizer": True, "topology": "ring"}])
def test_train_smoke(kw):
    run = la_ippo.train("simple_spread_v3", la_ippo.Config(total_steps=800, **TINY, **kw), progress=False)
    df = run.curve
    assert list(df.columns[:5]) == ["step", "episode", "train_return", "eval_return", "loss/policy"]
    for col in ("latent/distance", "latent/spread", "latent/effective_dim", "loss/distill", "train_return"):
        assert col in df.columns and np.isfinite(df[col]).all(), col
    with pytest.raises(ValueError, match="one encoder per agent"):
        la_ippo.train("simple_spread_v3", la_ippo.Config(total_steps=200, share_parameters=True), progress=False)
    with pytest.raises(ValueError, match="topology"):
        la_ippo.train("simple_spread_v3", la_ippo.Config(total_steps=200, topology="tree"), progress=False)


def test_zero_weight_is_ippo():
    """Method I with distill_weight=0 trains exactly like the ippo learner (plus the latent columns)."""
    cfg = dict(total_steps=600, **{k: v for k, v in TINY.items() if k != "distill_every"})
    mi = la_ippo.train("simple_spread_v3", la_ippo.Config(**cfg, distill_weight=0.0), progress=False).curve
    ip = ppo.train("simple_spread_v3", ppo.Config(**cfg), progress=False).curve
    assert mi[ip.columns].drop(columns=TIMING).equals(ip.drop(columns=TIMING))


def test_latent_geometry_distance_and_collapse():
    agent = ppo.make_agent(ppo.Group("agent", (0, 1, 2), 18, 5, False), la_ippo.Config(hidden=(8,)))
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


# ------------------------------------------------------- the student's parts
def test_the_loop_calls_the_students_four_parts():
    names = ("gae", "clipped_surrogate", "topology_pairs", "distillation_loss")
    spies = {name: Spy(getattr(ppo if name in ("gae", "clipped_surrogate") else la_ippo, name)) for name in names}
    cfg = la_ippo.Config(total_steps=600, **TINY)
    spied = la_ippo.train("simple_spread_v3", cfg, parts=la_ippo.Parts(**spies), progress=False).curve
    steps = 3 * cfg.epochs * cfg.minibatches  # gradient steps; the alignment joins every distill_every-th
    alignments = len(range(0, steps, cfg.distill_every))
    assert spies["gae"].calls == 3 and spies["clipped_surrogate"].calls == steps
    assert spies["topology_pairs"].calls == alignments and spies["distillation_loss"].calls == 6 * alignments
    reference = la_ippo.train("simple_spread_v3", cfg, progress=False).curve
    assert spied.drop(columns=TIMING).equals(reference.drop(columns=TIMING))


def _distill_without_stopgrad(student_latent, teacher_latent):
    return ((student_latent - teacher_latent) ** 2).sum(-1).mean()


def _star_backwards(topology, num_agents):  # the hub learns from everyone instead
    return [(0, i) for i in range(1, num_agents)]


@pytest.mark.parametrize("wrong", [{"distillation_loss": _distill_without_stopgrad},
                                   {"topology_pairs": _star_backwards}])
def test_a_wrong_part_changes_the_run(wrong):
    cfg = la_ippo.Config(total_steps=600, **TINY, topology="star", distill_weight=1.0)
    reference = la_ippo.train("simple_spread_v3", cfg, progress=False).curve
    planted = la_ippo.train("simple_spread_v3", cfg, parts=wrong, progress=False).curve
    assert not np.allclose(planted["latent/distance"], reference["latent/distance"])
    assert not np.allclose(planted["loss/policy"], reference["loss/policy"])


# -------------------------------------------------------------- checkpoints
def test_ctrl_c_in_an_alignment_step_and_resume_continue_exactly(tmp_path):
    cfg = la_ippo.Config(total_steps=1000, **{**TINY, "log_every": 200, "eval_episodes": 4})
    a = la_ippo.train("simple_spread_v3", cfg, progress=False)
    stop = Spy(la_ippo.distillation_loss, stop=100)  # 6 pairs per alignment: in the 2nd update
    with pytest.raises(KeyboardInterrupt):
        la_ippo.train("simple_spread_v3", cfg, parts={"distillation_loss": stop}, out=tmp_path, progress=False)
    b = la_ippo.train("simple_spread_v3", cfg, resume=tmp_path, progress=False)
    assert b.learner.updates == 5
    assert a.curve.drop(columns=TIMING).equals(b.curve.drop(columns=TIMING))
    for x, y in zip(a.learner.agents["agent"].net.parameters(), b.learner.agents["agent"].net.parameters()):
        assert torch.equal(x, y)
    assert torch.equal(a.learner.buffers, b.learner.buffers)
