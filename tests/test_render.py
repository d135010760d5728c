"""Episode animations (course_lib.render): every task draws, twin and single agree, links,
side by side, GIF / HTML output."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from course_lib.envs.policies import make_policy
from course_lib.policy import Policy
from course_lib.render import HEADER, frames, save, side_by_side, watch
from course_lib.tasks import task, task_names


def _distinct(pictures) -> int:
    return len({p.tobytes() for p in pictures})


@pytest.mark.parametrize("name", task_names())
def test_every_task_draws_an_episode(name):
    pictures = frames("random", name, seed=0)
    assert len(pictures) > 1, "an episode is its states and the state where it ended"
    for p in pictures:
        assert p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 and min(p.shape[:2]) > 50
    assert _distinct(pictures) == len(pictures), "every frame of an episode shows something new"
    assert len({p.shape for p in pictures}) == 1, "one size per animation"


@pytest.mark.parametrize("name", ["gridworld", "traffic_junction_medium", "predator_prey", "simple_spread_v3"])
def test_the_twin_draws_the_same_episode_as_the_single_env(name):
    for kind in ("random", "heuristic"):
        single = frames(kind, name, seed=3, episodes=2)
        twin = frames(kind, name, seed=3, episodes=2, on="twin")
        assert len(single) == len(twin)
        assert all(np.array_equal(a, b) for a, b in zip(single, twin)), f"{kind} on {name}"


class _Talking(Policy):
    """A reference policy that also says who listens to whom (uniformly)."""

    def __init__(self, inner):
        super().__init__(inner.agents, inner.obs_dim, team=inner.team, continuous=inner.continuous)
        self.inner = inner

    def act(self, obs, info=None, greedy=True):
        return self.inner.act(obs, info, greedy)

    def links(self, obs, info=None):
        n = obs.shape[1]
        return np.ones((obs.shape[0], n, n))


@pytest.mark.parametrize("name", ["navigation", "simple_spread_v3"])
def test_links_are_drawn_where_the_policy_has_them(name):
    env = task(name).batched(1, seed=0)
    silent = frames(make_policy("heuristic", env, seed=0), name, on="twin")
    talking = frames(_Talking(make_policy("heuristic", env, seed=0)), name, on="twin")
    assert len(silent) == len(talking)
    assert not np.array_equal(silent[0], talking[0]), "the links show on the frames where the agents act"
    assert np.array_equal(silent[-1], talking[-1]), "the final frame has no decision, so no links"
    hidden = frames(_Talking(make_policy("heuristic", env, seed=0)), name, on="twin", links=False)
    assert all(np.array_equal(a, b) for a, b in zip(silent, hidden))
    assert Policy(["a"], 1).links(np.zeros((1, 1, 1))) is None, "no links by default"


def test_side_by_side_plays_the_same_episodes(tmp_path):
    left = frames("heuristic", "predator_prey", seed=1)
    right = frames("random", "predator_prey", seed=1)
    both = side_by_side("heuristic", "random", "predator_prey", seed=1, labels=("heuristic", "random"))
    assert len(both) == max(len(left), len(right))
    assert both[0].shape[1] == left[0].shape[1] + 10 + right[0].shape[1]
    assert np.array_equal(both[0][HEADER:, left[0].shape[1] + 10:], right[0][HEADER:]), "same state, other label"
    path = save(both, tmp_path / "pp.gif", fps=5)
    from PIL import Image

    with Image.open(path) as gif:
        assert gif.n_frames > 1


def test_side_by_side_starts_every_episode_on_both_sides_together():
    # heuristic agents finish the grid world early, no-op agents never: the left side waits
    # at the end of each of its episodes, not only at the end of the last one
    left = [frames("heuristic", "gridworld", seed=s) for s in (0, 1)]
    right = [frames("noop", "gridworld", seed=s) for s in (0, 1)]
    assert len(left[0]) < len(right[0])
    both = side_by_side("heuristic", "noop", "gridworld", seed=0, episodes=2)
    assert len(both) == len(right[0]) + len(right[1])
    second, w = both[len(right[0])], left[0][0].shape[1]
    assert np.array_equal(second[HEADER:, :w], left[1][0][HEADER:]), "the left side starts episode 2 here"
    assert np.array_equal(second[HEADER:, w + 10:], right[1][0][HEADER:]), "and so does the right side"


def test_predator_prey_shades_what_each_predator_sees():
    from course_lib.render import _predator_prey

    env = task("predator_prey").batched(1, seed=0)
    env.reset(seed=0)
    core, v = env.core, env.core.vision
    picture = np.asarray(_predator_prey(core, 0, None, None, None, 360), dtype=int)
    seen = np.zeros((core.size, core.size), dtype=int)
    for r, c in core.pred[0]:
        seen[max(0, r - v):r + v + 1, max(0, c - v):c + v + 1] += 1
    cell = 360 // core.size
    corner = lambda r, c: picture[int((r + 0.1) * cell), int((c + 0.1) * cell)]  # noqa: E731 - clear of discs and lines
    assert all((corner(r, c) == 255).all() for r, c in zip(*np.nonzero(seen == 0)))
    assert all(255 - corner(r, c).min() >= 25 for r, c in zip(*np.nonzero(seen == 1))), "visibly shaded"


def test_default_labels_name_the_reference():
    named = side_by_side("heuristic", "noop", "gridworld", labels=("your agents", "no-op agents"))
    assert all(np.array_equal(a, b) for a, b in zip(side_by_side("heuristic", "noop", "gridworld"), named))


def test_files_and_inline_animation(tmp_path):
    html = watch("random", "gridworld", seed=0)
    assert "data:image/gif;base64," in html.data
    with pytest.raises(ValueError, match="gif or an .mp4"):
        watch("random", "gridworld", out=tmp_path / "x.avi")
    if shutil.which("ffmpeg") is None:
        with pytest.raises(RuntimeError, match="ffmpeg"):
            watch("random", "gridworld", out=tmp_path / "x.mp4")
    else:
        assert watch("random", "gridworld", out=tmp_path / "x.mp4").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == (["x.mp4"] if shutil.which("ffmpeg") else [])
    with pytest.raises(ValueError, match="mpe2"):
        frames("random", "gridworld", on="mpe2")
    with pytest.raises(ValueError, match="reference policy"):
        frames("randm", "gridworld")


class _Predators(Policy):
    """Plays simple_tag's predators (always action 4) and, as their opponent, the prey (action 1)."""

    def act(self, obs, info=None, greedy=True):
        actions = np.ones(np.shape(obs)[:2], dtype=np.int64)
        actions[:, self.team] = 4
        return actions


def test_a_reference_beside_a_team_faces_the_same_opponent():
    from course_lib.evaluation import reference_for

    env = task("simple_tag_v3").batched(8, seed=0)
    predators = _Predators(env.agent_names, env.obs_dim, team=np.flatnonzero(env.is_adversary))
    swapped = reference_for("random", predators, "simple_tag_v3")
    actions = swapped.act(env.reset(seed=0)[0])
    prey = [i for i in range(env.num_agents) if i not in predators.team]
    assert (actions[:, prey] == 1).all(), "the prey still plays the run's opponent"
    assert (actions[:, predators.team] != 4).any(), "the predators play the reference"
    assert reference_for("random", make_policy("heuristic", task("gridworld").batched(1)), "gridworld") == "random"
    assert len(side_by_side(predators, "random", "simple_tag_v3", seed=0)) == 26
