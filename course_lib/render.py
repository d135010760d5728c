"""Watch agents play: episode animations for every task of the course.

    from course_lib.render import watch, frames
    watch(run.policy, "traffic_junction_medium")               # inline animation in Jupyter
    watch(run, beside="random")                                # your agents beside random ones, same seed
    watch(run.policy, "simple_spread_v3", out="spread.gif")    # a GIF file (.mp4 when ffmpeg is installed)
    pictures = frames(run.policy, "gridworld", seed=0)         # [H, W, 3] uint8 arrays

``policy`` is a :class:`course_lib.policy.Policy` (or a ``Run``) or a reference kind
(``"random"``, ``"noop"``, ``"heuristic"``), as in :func:`course_lib.evaluation.evaluate`.
Episode ``k`` starts from ``reset(seed=seed + k)``, so two policies watched with the
same seed start from the same states.  ``on="single"`` (default) plays the PettingZoo
environment (mpe2's own for the MPE tasks); ``on="twin"`` plays environment 0 of the
batched twin (the MPE twin's actions are then replayed on mpe2 to draw them).

The MPE tasks are drawn by mpe2's ``render_mode="rgb_array"`` renderer; every other
task is drawn here with Pillow: agents are numbered discs, one colour each, with an
arrow for the move they choose; targets and goals are green (the sparse grid's goal
gold), prey green discs, cars carry their remaining route, levers turn green when
pulled by one agent and red when shared, T-mazes show the cued arm, the majority game
rings each agent green or red for its answer, and matrix games
and the two-step game show the payoff table with the joint action highlighted.  A
frame shows a state and the action taken from it; the last frame of an episode shows
where it ended.  Where the policy says who listens to whom (:meth:`Policy.links`),
lines join the agents, more opaque for larger weights.

Used by ``course watch`` and the experiment sections of notebooks 02-08.
"""
from __future__ import annotations

import copy
import functools
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from course_lib.evaluation import REFERENCE_KINDS, _policy_for
from course_lib.policy import batch_to_dict, dict_to_batch
from course_lib.tasks import Task, task as make_task

__all__ = ["frames", "side_by_side", "watch", "save", "animation_html"]

HEADER = 38  # pixels of the text band above every frame
PALETTE = [(31, 119, 180), (255, 127, 14), (148, 103, 189), (214, 39, 40), (23, 190, 207),
           (227, 119, 194), (140, 86, 75), (127, 127, 127), (188, 189, 34), (57, 59, 121)]
GREEN, GOLD, GREY = (44, 160, 44), (240, 190, 0), (200, 200, 200)
REFERENCE_NAMES = {"noop": "no-op"}  # how a reference kind reads in a default label
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])  # grid tasks: stay, up, down, left, right


# ------------------------------------------------------------------------ playing
def frames(policy: Any, task: "str | Task | None" = None, seed: int = 0, episodes: int = 1, *,
           greedy: bool = True, on: str = "single", size: int = 360, links: bool = True,
           label: str | None = None) -> list[np.ndarray]:
    """Pictures ``[H, W, 3]`` uint8 of ``episodes`` episodes of ``policy`` on ``task``:
    one per state, each with the action taken from it, and the final state.

    ``size``: pixels of the longer side of the drawing (the text band comes on top);
    ``links``: draw :meth:`Policy.links` where the policy has them; ``label``: first
    word of the text band (default: the task's name).
    """
    return [p for episode in _episodes(policy, task, seed, episodes, greedy, on, size, links, label) for p in episode]


def _episodes(policy, task, seed, episodes, greedy=True, on="single", size=360, links=True,
              label=None) -> list[list[np.ndarray]]:
    """The pictures of :func:`frames`, one list per episode."""
    policy, t = _resolve(policy, task)
    if on not in ("single", "mpe2", "twin"):
        raise ValueError(f"on must be 'single', 'mpe2' or 'twin', got {on!r}")
    if on == "mpe2" and not t.is_mpe:
        raise ValueError(f"on='mpe2' is for the MPE tasks; {t.name} plays on='single' or 'twin'")
    if int(episodes) < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    play = (_play_mpe_twin if on == "twin" else _play_mpe) if t.is_mpe else \
        (_play_twin if on == "twin" else _play_single)
    show = _Shower(label or t.name, int(episodes), size, links)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mpe2's deprecation notes
        play(policy, t, int(seed), int(episodes), greedy, show)
    return show.episodes_frames


def _resolve(policy: Any, task: Any) -> tuple[Any, Task]:
    """(policy or reference kind, Task); a ``Run`` gives both."""
    if hasattr(policy, "learner") and hasattr(policy, "policy"):  # a Run
        task = policy.task if task is None else task
        policy = policy.policy
    if task is None:
        raise ValueError("say which task to play, e.g. frames(policy, 'gridworld')")
    if isinstance(policy, str) and policy not in REFERENCE_KINDS:
        raise ValueError(f"a reference policy is one of {REFERENCE_KINDS}, got {policy!r}")
    return policy, make_task(task)


class _Shower:
    """Collects the frames of one call: the text band, the links, the episode's return."""

    def __init__(self, label: str, episodes: int, size: int, links: bool):
        self.label, self.episodes, self.size, self.links = label, episodes, int(size), links
        self.episodes_frames: list[list[np.ndarray]] = [[] for _ in range(episodes)]

    def links_of(self, pol: Any, obs: np.ndarray, info: Any) -> np.ndarray | None:
        weights = pol.links(obs, info) if self.links and hasattr(pol, "links") else None
        if weights is None:
            return None
        w = np.asarray(weights, dtype=float)
        return w[0] if w.ndim == 3 else w

    def add(self, body, episode: int, step: int, ret: float, end: str | None = None) -> None:
        line1 = f"{self.label}   episode {episode + 1}/{self.episodes}   step {step}"
        line2 = f"team return {ret:+.2f}" + (f"   {end}" if end else "")
        self.episodes_frames[episode].append(_with_header(body, line1, line2))


def _ending(info: dict) -> str:
    """How an episode ended, from its last info (``success`` where the task has one)."""
    if "success" in info:
        return "success" if bool(np.asarray(info["success"]).reshape(-1)[0]) else "no success"
    return "episode over"


def _play_single(policy, t: Task, seed, episodes, greedy, show: _Shower) -> None:
    env = t.single()
    pol, draw, core = _policy_for(policy, env, seed), _drawer(env.core), env.core
    for e in range(episodes):
        obs, infos = env.reset(seed=seed + e)
        pol.reset(1)
        ret, step, last = 0.0, 0, None
        while env.agents:
            actions = pol(obs, infos, greedy=greedy)
            act = np.array([int(actions[a]) for a in env.possible_agents])
            w = show.links_of(pol, *dict_to_batch(obs, pol.agents, pol.obs_dim, infos))
            show.add(draw(core, 0, act, last, w, show.size), e, step, ret)
            obs, rew, _, _, infos = env.step(actions)
            ret += sum(rew[pol.agents[i]] for i in pol.team)
            step, last = step + 1, act
        show.add(draw(core, 0, None, last, None, show.size), e, step, ret, _ending(infos[env.possible_agents[0]]))


def _play_twin(policy, t: Task, seed, episodes, greedy, show: _Shower) -> None:
    """Env 0 of the batched twin.  It resets a finished episode in the same step, so the
    final state is drawn from a copy of the dynamics stepped with the same actions."""
    env = t.batched(1, seed=seed)
    pol, draw = _policy_for(policy, env, seed), _drawer(env.core)
    for e in range(episodes):
        obs, info = env.reset(seed=seed + e)
        pol.reset(1)
        ret, step, last = 0.0, 0, None
        while True:
            act = np.asarray(pol.act(obs, info, greedy=greedy), dtype=np.int64).reshape(1, -1)
            show.add(draw(env.core, 0, act[0], last, show.links_of(pol, obs, info), show.size), e, step, ret)
            before = copy.deepcopy(env.core)
            obs, rew, _, _, info = env.step(act)
            ret += float(rew[0, pol.team].sum())
            step, last = step + 1, act[0]
            if info["done"][0]:
                before.step(act)
                show.add(draw(before, 0, None, last, None, show.size), e, step, ret, _ending(info))
                break


def _play_mpe(policy, t: Task, seed, episodes, greedy, show: _Shower) -> None:
    env = t.single(render_mode="rgb_array")
    pol = _policy_for(policy, env, seed)
    for e in range(episodes):
        obs, infos = env.reset(seed=seed + e)
        pol.reset(1)
        ret, step = 0.0, 0
        while env.agents:
            actions = pol(obs, infos, greedy=greedy)
            w = show.links_of(pol, *dict_to_batch(obs, pol.agents, pol.obs_dim, infos))
            show.add(_mpe_picture(env, w, show.size), e, step, ret)
            obs, rew, _, _, infos = env.step(actions)
            ret += sum(rew.get(pol.agents[i], 0.0) for i in pol.team)
            step += 1
        show.add(_mpe_picture(env, None, show.size), e, step, ret, "episode over")
    env.close()


def _play_mpe_twin(policy, t: Task, seed, episodes, greedy, show: _Shower) -> None:
    """The twin plays mpe2's episode ``seed + e``; mpe2 replays its actions to draw them."""
    twin, env = t.batched(1, seed=seed), t.single(render_mode="rgb_array")
    pol = _policy_for(policy, twin, seed)
    for e in range(episodes):
        obs, info = twin.reset_from_seeds([seed + e])
        pol.reset(1)
        played = []  # (actions [1, N(, 5)], links, team reward)
        while True:
            act = np.asarray(pol.act(obs, info, greedy=greedy))
            w = show.links_of(pol, obs, info)
            obs, rew, _, _, info = twin.step(act)
            played.append((act, w, float(rew[0, pol.team].sum())))
            if info["done"][0]:
                break
        env.reset(seed=seed + e)
        ret = 0.0
        for step, (act, w, r) in enumerate(played):
            show.add(_mpe_picture(env, w, show.size), e, step, ret)
            env.step(batch_to_dict(act, pol.agents, env.agents, pol.continuous))
            ret += r
        show.add(_mpe_picture(env, None, show.size), e, len(played), ret, "episode over")
    env.close()


# ------------------------------------------------------------------------ pictures
@functools.lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _with_header(body, line1: str, line2: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (body.width, body.height + HEADER), "white")
    img.paste(body, (0, HEADER))
    d = ImageDraw.Draw(img)
    d.text((6, 3), line1, fill=(0, 0, 0), font=_font(13))
    d.text((6, 20), line2, fill=(70, 70, 70), font=_font(13))
    return np.asarray(img, dtype=np.uint8).copy()


class _Canvas:
    """A Pillow picture with the few shapes the drawings need."""

    def __init__(self, width: int, height: int, background=(255, 255, 255), image=None):
        from PIL import Image, ImageDraw

        self.image = Image.new("RGB", (int(width), int(height)), background) if image is None else image
        self.draw = ImageDraw.Draw(self.image, "RGBA")

    def box(self, x0, y0, x1, y1, fill=None, outline=None, width=1):
        self.draw.rectangle([x0, y0, x1, y1], fill=fill, outline=outline, width=width)

    def disc(self, xy, r, fill, label=None, outline=(0, 0, 0), width=1):
        x, y = xy
        self.draw.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=outline, width=width)
        if label is not None:
            self.text((x, y), label, size=max(9, int(r * 1.1)), fill=(255, 255, 255) if fill else (0, 0, 0))

    def text(self, xy, s, size=12, fill=(0, 0, 0), anchor="mm"):
        self.draw.text(xy, str(s), fill=fill, font=_font(int(size)), anchor=anchor)

    def line(self, points, fill, width=2):
        self.draw.line([tuple(map(float, p)) for p in points], fill=fill, width=int(width))

    def arrow(self, xy, direction, length, fill=(0, 0, 0)):
        """An arrow from ``xy`` along ``direction`` (dx, dy in pixels, unit length)."""
        d = np.asarray(direction, dtype=float)
        if not d.any():
            return
        tip = np.asarray(xy, float) + d * length
        self.line([xy, tip], fill, width=2)
        head = min(length * 0.3, 6.0)
        side = np.array([-d[1], d[0]]) * head * 0.8
        self.draw.polygon([tuple(tip + d * head), tuple(tip + side), tuple(tip - side)], fill=fill)


def _colour(i: int, alpha: int | None = None):
    c = PALETTE[i % len(PALETTE)]
    return c if alpha is None else (*c, alpha)


def _draw_links(cv: _Canvas, centres: dict[int, tuple], w: np.ndarray | None) -> None:
    """Line j -> i for every weight ``w[i, j]`` (i listens to j), more opaque when larger."""
    if w is None:
        return
    w = np.where(np.eye(len(w), dtype=bool), 0.0, np.abs(w))
    top = w.max()
    if not top > 0:
        return
    for i, j in zip(*np.nonzero(w > 0.05 * top)):
        if i in centres and j in centres:
            strength = w[i, j] / top
            cv.line([centres[j], centres[i]], _colour(int(j), int(40 + 170 * strength)), width=1 + 4 * strength)


def _spread(cells: Sequence[tuple], radius: float) -> list[tuple[float, float]]:
    """Small offsets for agents that share a cell, so that every disc shows."""
    seen: dict[tuple, list[int]] = {}
    for i, c in enumerate(cells):
        seen.setdefault(tuple(c), []).append(i)
    out = [(0.0, 0.0)] * len(cells)
    for group in seen.values():
        for k, i in enumerate(group):
            if len(group) > 1:
                angle = 2 * np.pi * k / len(group)
                out[i] = (radius * np.cos(angle), radius * np.sin(angle))
    return out


class _Grid(_Canvas):
    """A rows x cols board; ``centre(r, c)`` in pixels."""

    def __init__(self, rows: int, cols: int, size: int, background=(255, 255, 255)):
        self.cell = max(10, int(size) // max(rows, cols))
        self.rows, self.cols = rows, cols
        super().__init__(cols * self.cell + 1, rows * self.cell + 1, background)

    def centre(self, r, c) -> tuple[float, float]:
        return ((c + 0.5) * self.cell, (r + 0.5) * self.cell)

    def fill(self, r, c, colour, inset=0):
        x, y, k = c * self.cell, r * self.cell, self.cell
        self.box(x + inset, y + inset, x + k - inset, y + k - inset, fill=colour)

    def lines(self):
        for r in range(self.rows + 1):
            self.line([(0, r * self.cell), (self.cols * self.cell, r * self.cell)], GREY, 1)
        for c in range(self.cols + 1):
            self.line([(c * self.cell, 0), (c * self.cell, self.rows * self.cell)], GREY, 1)

    def agents(self, cells, act, w=None, faded=None) -> None:
        """Numbered discs (spread where they share a cell), links under them, move arrows."""
        r = self.cell * 0.3
        offsets = _spread([tuple(c) for c in cells], r * 0.8)
        centres = {i: (self.centre(*c)[0] + dx, self.centre(*c)[1] + dy)
                   for i, (c, (dx, dy)) in enumerate(zip(cells, offsets))}
        _draw_links(self, centres, w)
        for i, xy in centres.items():
            alpha = 90 if faded is not None and faded[i] else 255
            self.disc(xy, r, _colour(i, alpha), label=i)
            if act is not None and (faded is None or not faded[i]):
                dr, dc = MOVES[int(act[i])] if int(act[i]) < len(MOVES) else (0, 0)
                self.arrow((xy[0] + dc * r, xy[1] + dr * r), (dc, dr), self.cell * 0.22)


# -------------------------------------------------------------- one drawing per task
def _gridworld(core, b, act, last, w, size):
    g = _Grid(core.size, core.size, size)
    if core.view_radius is not None:  # what each agent sees
        v = core.view_radius
        for r, c in core.pos[b]:
            for rr in range(max(0, r - v), min(core.size, r + v + 1)):
                for cc in range(max(0, c - v), min(core.size, c + v + 1)):
                    g.fill(rr, cc, (0, 0, 0, 18))
    for (r, c), present in zip(core.targets[b], core.present[b]):
        if present:
            g.fill(r, c, GREEN, inset=g.cell // 6)
    g.lines()
    g.agents(core.pos[b], act, w)
    return g.image


def _predator_prey(core, b, act, last, w, size):
    g = _Grid(core.size, core.size, size)
    v = core.vision
    for r, c in core.pred[b]:  # what each predator sees
        for rr in range(max(0, r - v), min(core.size, r + v + 1)):
            for cc in range(max(0, c - v), min(core.size, c + v + 1)):
                g.fill(rr, cc, (214, 39, 40, 36))
    g.lines()
    for (r, c), alive in zip(core.prey[b], core.alive[b]):
        if alive:
            x, y = g.centre(r, c)
            k = g.cell * 0.36
            g.draw.polygon([(x, y - k), (x + k, y), (x, y + k), (x - k, y)], fill=GREEN, outline=(0, 0, 0))
    g.agents(core.pred[b], act, w)
    return g.image


def _traffic_junction(core, b, act, last, w, size):
    S = core.size
    g = _Grid(S, S, size, background=(90, 110, 90))
    for r, c in zip(*np.nonzero(core.road)):
        g.fill(r, c, (228, 228, 228))
    cells = core.cells()[b]
    centres = {}
    for i in np.flatnonzero(core.active[b]):
        route = core.routes[core.route[b, i]][core.progress[b, i]:]  # cells still ahead of the car
        g.line([g.centre(*rc) for rc in route], _colour(i, 150), width=max(2, g.cell // 6))
        g.disc(g.centre(*route[-1]), g.cell * 0.12, _colour(i), outline=None)  # its exit
        centres[int(i)] = g.centre(*divmod(int(cells[i]), S))
    _draw_links(g, centres, w)
    for i, xy in centres.items():
        braking = act is not None and int(act[i]) == 0
        g.disc(xy, g.cell * 0.36, None if braking else _colour(i), outline=_colour(i), width=3)
        g.text(xy, i, size=max(9, g.cell * 0.4), fill=_colour(i) if braking else (255, 255, 255))
        if core.collided[b, i]:
            k = g.cell * 0.4
            g.line([(xy[0] - k, xy[1] - k), (xy[0] + k, xy[1] + k)], (220, 0, 0), 3)
            g.line([(xy[0] - k, xy[1] + k), (xy[0] + k, xy[1] - k)], (220, 0, 0), 3)
    return g.image


def _levers(core, b, act, last, w, size):
    N, L = core.num_agents, core.num_levers
    W = max(int(size), 40 * max(N, L))
    cv = _Canvas(W, int(size * 0.9))
    H = cv.image.height
    xs = (np.arange(N) + 0.5) * W / N
    agents = {i: (xs[i], H * (0.18 + 0.12 * ((2 * i / max(N - 1, 1) - 1) ** 2))) for i in range(N)}  # an arc
    levers = [((k + 0.5) * W / L, H * 0.7) for k in range(L)]
    pulls = act if act is not None else (core.last_pulled[b] if (core.last_pulled[b] >= 0).all() else None)
    _draw_links(cv, agents, w)
    counts = np.bincount(pulls, minlength=L) if pulls is not None else np.zeros(L, int)
    for k, (x, y) in enumerate(levers):
        colour = GREY if counts[k] == 0 else GREEN if counts[k] == 1 else (214, 39, 40)
        cv.box(x - 12, y - 18, x + 12, y + 18, fill=colour, outline=(0, 0, 0))
        cv.text((x, y + 28), f"lever {k}", size=11)
    for i, xy in agents.items():
        if pulls is not None:
            cv.line([xy, (levers[pulls[i]][0], levers[pulls[i]][1] - 18)], _colour(i, 200), 2)
        cv.disc(xy, 13, _colour(i), label=i)
        cv.text((xy[0], xy[1] - 22), f"id {int(core.ids[b, i])}", size=11)
    if pulls is not None:
        cv.text((W / 2, H * 0.93), f"{len(set(np.asarray(pulls).tolist()))} of {min(N, L)} levers distinct", size=13)
    return cv.image


def _navigation(core, b, act, last, w, size):
    cv = _Canvas(size, size)
    px = lambda p: ((p[0] + 1) / 2 * size, (1 - p[1]) / 2 * size)  # noqa: E731 - [-1, 1]^2, y up
    scale = size / 2
    goals = [core.goal[b, 0]] if core.shared_goal else list(core.goal[b])
    for k, g in enumerate(goals):
        x, y = px(g)
        r = core.goal_eps * scale
        cv.draw.ellipse([x - r, y - r, x + r, y + r], fill=(44, 160, 44, 50),
                        outline=GREEN if core.shared_goal else _colour(k), width=2)
        cv.disc((x, y), 4, GREEN if core.shared_goal else _colour(k), outline=None)
    centres = {i: px(p) for i, p in enumerate(core.pos[b])}
    _draw_links(cv, centres, w)
    moves = np.array([[0, 0], [0, -1], [0, 1], [-1, 0], [1, 0]])  # stay, up, down, left, right in pixels
    for i, (x, y) in centres.items():
        r = core.vision_radius * scale
        cv.draw.ellipse([x - r, y - r, x + r, y + r], outline=_colour(i, 70))
        cv.disc((x, y), max(8, size * 0.03), _colour(i), label=i)
        if act is not None:
            cv.arrow((x, y), moves[int(act[i])], core.step_size * scale * 0.8)
    return cv.image


def _cue_corridor(core, b, act, last, w, size):
    N, Lc = core.num_agents, core.length
    cell = max(10, min(int(size) // (4 * N), int(size) // (Lc + 3)))
    cv = _Canvas(4 * N * cell, (Lc + 3) * cell, background=(90, 90, 90))
    centres = {}
    for i in range(N):
        x0 = (4 * i + 0.5) * cell  # panel i: columns x0 .. x0 + 3 cells; row 0 holds the arms
        cell_xy = lambda r, c: (x0 + (c + 0.5) * cell, (r + 0.5) * cell)  # noqa: E731
        cued = 0 if core.cue[b, i] == 1 else 2
        for r, c in [(r, 1) for r in range(Lc + 1)] + [(0, 0), (0, 2)]:
            colour = (200, 240, 200) if (r, c) == (0, cued) else (240, 240, 240)
            cv.box(x0 + c * cell, r * cell, x0 + (c + 1) * cell - 1, (r + 1) * cell - 1, fill=colour, outline=GREY)
        seen = int(core.t[b]) == 0
        cv.text((x0 + 1.5 * cell, (Lc + 1.6) * cell), f"cue: {'left' if cued == 0 else 'right'}"
                + (" (seen now)" if seen else ""), size=max(9, cell // 3), fill=(255, 255, 255))
        if core.finished[b, i]:
            arm = cued if core.correct[b, i] else 2 - cued
            centres[i] = cell_xy(0, arm)
        else:
            centres[i] = cell_xy(Lc - int(core.height[b, i]), 1)
    _draw_links(cv, centres, w)
    for i, xy in centres.items():
        cv.disc(xy, cell * 0.3, _colour(i), label=i)
        if act is not None and not core.finished[b, i]:
            dr, dc = MOVES[int(act[i])]
            cv.arrow(xy, (dc, dr), cell * 0.35)
    return cv.image


def _sparse_goal_grid(core, b, act, last, w, size):
    g = _Grid(core.rows, core.size, size)
    g.fill(*core.start, (205, 225, 245))
    g.fill(*core.goal, GOLD)
    g.lines()
    g.agents(core.pos[b], act, w, faded=core.finished[b])
    return g.image


def _neighbour_majority(core, b, act, last, w, size):
    cv = _Canvas(size, size)
    m = 24  # margin around the unit square
    px = lambda p: (m + p[0] * (size - 2 * m), size - m - p[1] * (size - 2 * m))  # noqa: E731 - y up
    centres = {i: px(core.obs[b, i, 1:]) for i in range(core.num_agents)}
    for i, js in enumerate(core.neighbours[b]):  # each agent's neighbourhood
        for j in js:
            cv.line([centres[i], centres[int(j)]], (0, 0, 0, 35), 1)
    _draw_links(cv, centres, w)
    said = act if act is not None else last
    for i, xy in centres.items():
        ring = None if said is None else GREEN if int(said[i]) == core.target[b, i] else (214, 39, 40)
        cv.disc(xy, 13, _colour(i), label=int(core.bits[b, i]), outline=ring or (0, 0, 0), width=4 if ring else 1)
        if said is not None:
            cv.text((xy[0] + 22, xy[1] - 14), f"says {int(said[i])}", size=10)
    cv.text((size / 2, 10), "number: own bit; ring: right (green) or wrong (red) majority", size=10)
    return cv.image


def _payoff_table(cv: _Canvas, x0, y0, payoffs, names, highlight, title, cell_w, cell_h, active=True):
    n0, n1 = payoffs.shape[:2]
    cv.text((x0 + (n1 + 1) * cell_w / 2, y0 - 12), title, size=13)
    for a in range(n0):
        cv.text((x0 + cell_w / 2, y0 + (a + 1.5) * cell_h), names[0][a], size=11)
    for a in range(n1):
        cv.text((x0 + (a + 1.5) * cell_w, y0 + cell_h / 2), names[1][a], size=11)
    for a0 in range(n0):
        for a1 in range(n1):
            x, y = x0 + (a1 + 1) * cell_w, y0 + (a0 + 1) * cell_h
            lit = highlight is not None and (a0, a1) == tuple(int(a) for a in highlight)
            cv.box(x, y, x + cell_w, y + cell_h, fill=(255, 215, 0) if lit else (250, 250, 250),
                   outline=(0, 0, 0) if active else GREY, width=2 if lit else 1)
            pay = np.atleast_1d(payoffs[a0, a1])
            cv.text((x + cell_w / 2, y + cell_h / 2), ", ".join(f"{p:g}" for p in pay), size=12)


def _matrix_game(core, b, act, last, w, size):
    from course_lib.games import ACTION_NAMES

    joint = act if act is not None else last
    if core.num_agents != 2:  # a table only for two players
        cv = _Canvas(size, size // 3)
        if joint is not None:
            cv.text((size / 2, size / 6), f"joint action {tuple(int(a) for a in joint)} pays "
                    f"{tuple(float(p) for p in core.payoffs[tuple(int(a) for a in joint)])}", size=12)
        return cv.image
    n0, n1 = core.n_actions
    game = core.name.removeprefix("matrix_game_")
    names = [ACTION_NAMES.get(game, [str(a) for a in range(n)])[:n] for n in (n0, n1)]
    cell_w, cell_h = (int(size) - 2) // (n1 + 1), 36
    cv = _Canvas(size, (n0 + 1) * cell_h + 40)
    _payoff_table(cv, 0, 28, core.payoffs, names, joint,
                  f"{game}: player_0 picks the row, player_1 the column", cell_w, cell_h)
    return cv.image


def _two_step(core, b, act, last, w, size):
    stage = int(core.s[b])  # 0: state 1; 1: 2A; 2: 2B
    joint = act if act is not None else last
    cv = _Canvas(size, int(size * 0.62))
    first = stage == 0
    lit = "" if not first or joint is None else (" -> 2A" if int(joint[0]) == 0 else " -> 2B")
    cv.text((size / 2, 14), f"state 1: agent_0 picks 2A (action 0) or 2B (action 1){lit}", size=12,
            fill=(0, 0, 0) if first else GREY)
    names = [["0", "1"], ["0", "1"]]
    half = size / 2
    for k, title in enumerate(("state 2A", "state 2B")):
        here = stage == k + 1
        _payoff_table(cv, k * half + 8, 60, core._second[k], names, joint if here else None,
                      title + (" (here)" if here else ""), (half - 16) / 3, 40, active=here)
    return cv.image


def _drawer(core) -> Callable:
    """The drawing function of a task's core."""
    from course_lib.envs.gridworld import GridWorldCore
    from course_lib.envs.levers import LeversCore
    from course_lib.envs.majority import NeighbourMajorityCore
    from course_lib.envs.matrix_games import MatrixGameCore, TwoStepCore
    from course_lib.envs.memory import CueCorridorCore, SparseGoalGridCore
    from course_lib.envs.navigation import NavigationCore
    from course_lib.envs.predator_prey import PredatorPreyCore
    from course_lib.envs.traffic_junction import TrafficJunctionCore

    drawers = {GridWorldCore: _gridworld, PredatorPreyCore: _predator_prey, TrafficJunctionCore: _traffic_junction,
               LeversCore: _levers, NavigationCore: _navigation, CueCorridorCore: _cue_corridor,
               SparseGoalGridCore: _sparse_goal_grid, MatrixGameCore: _matrix_game, TwoStepCore: _two_step,
               NeighbourMajorityCore: _neighbour_majority}
    for cls, draw in drawers.items():
        if isinstance(core, cls):
            return draw
    raise ValueError(f"no drawing for {getattr(core, 'name', type(core).__name__)}")


def _mpe_picture(env, w: np.ndarray | None, size: int):
    """mpe2's own rgb_array picture, scaled to ``size``, with the links drawn over it."""
    from PIL import Image

    raw = env.unwrapped
    picture = np.asarray(env.render())
    H, W = picture.shape[:2]
    img = Image.fromarray(picture).resize((size, size), Image.BILINEAR)
    if w is not None:
        # mpe2's camera (SimpleEnv.draw): zoom to the farthest entity, y up, 0.9 margin
        poses = np.array([e.state.p_pos for e in raw.world.entities])
        cam = np.max(np.abs(poses))
        centres = {}
        for i, agent in enumerate(raw.world.agents):
            x, y = agent.state.p_pos
            x = (x / cam) * W // 2 * 0.9 + W // 2
            y = (-y / cam) * H // 2 * 0.9 + H // 2
            centres[i] = (x * size / W, y * size / H)
        _draw_links(_Canvas(size, size, image=img), centres, w)
    return img


# ------------------------------------------------------------------ side by side, files
def side_by_side(policy: Any, other: Any = "random", task: "str | Task | None" = None, seed: int = 0,
                 episodes: int = 1, labels: Sequence[str] | None = None, **options: Any) -> list[np.ndarray]:
    """Frames of ``policy`` (left) and ``other`` (right: a reference kind or a policy) on
    the same episodes; in each, the shorter side holds its last frame.  A reference kind plays
    ``policy``'s team against ``policy``'s own opponent, if it has one (simple_tag's prey)."""
    from course_lib.evaluation import reference_for

    policy, t = _resolve(policy, task)
    if labels is None:
        labels = ("your agents", f"{REFERENCE_NAMES.get(other, other)} agents" if isinstance(other, str)
                  else getattr(other, "name", "other"))
    if isinstance(other, str) and not isinstance(policy, str):
        other = reference_for(other, policy, t, seed)
    out = []
    for left, right in zip(_episodes(policy, t, seed, episodes, label=labels[0], **options),
                           _episodes(other, t, seed, episodes, label=labels[1], **options)):
        n = max(len(left), len(right))  # episode by episode, so that both sides start each one together
        left, right = left + left[-1:] * (n - len(left)), right + right[-1:] * (n - len(right))
        for a, b in zip(left, right):
            h = max(a.shape[0], b.shape[0])
            pad = lambda x: np.pad(x, ((0, h - x.shape[0]), (0, 0), (0, 0)), constant_values=255)  # noqa: E731
            out.append(np.concatenate([pad(a), np.full((h, 10, 3), 255, np.uint8), pad(b)], axis=1))
    return out


def _durations(n: int, fps: float) -> list[int]:
    step = int(round(1000 / fps))
    return [step] * (n - 1) + [max(step, 1500)]  # hold the last frame before the loop restarts


def save(pictures: Sequence[np.ndarray], path: "str | Path", fps: float = 4) -> Path:
    """Write ``pictures`` as an animated GIF (``.gif``) or an MP4 (``.mp4``, needs ffmpeg);
    written to a temporary file first, so a failure leaves no partial file."""
    from course_lib.learning import _atomic_write

    path = Path(path)
    if path.suffix.lower() not in (".gif", ".mp4"):
        raise ValueError(f"write a .gif or an .mp4, not {path.name!r}")
    if path.suffix.lower() == ".mp4":
        _ffmpeg()
    if not pictures:
        raise ValueError("no frames to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = _write_gif if path.suffix.lower() == ".gif" else _write_mp4
    _atomic_write(path, lambda tmp: writer(list(pictures), tmp, fps))
    return path


def _write_gif(pictures, target, fps: float) -> None:
    """An animated GIF into ``target`` (a path or a binary file)."""
    from PIL import Image

    # one fast palette per frame (Pillow's default quantizer took 3/4 of the time)
    images = [Image.fromarray(np.asarray(p, dtype=np.uint8)).quantize(
        255, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE) for p in pictures]
    images[0].save(target, format="GIF", save_all=True, append_images=images[1:],
                   duration=_durations(len(images), fps), loop=0)


def _ffmpeg() -> str:
    import shutil

    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("writing an .mp4 needs ffmpeg on the PATH (not found here); write a .gif instead")
    return exe


def _write_mp4(pictures, tmp: Path, fps: float) -> None:
    import subprocess

    h, w = pictures[0].shape[:2]
    cmd = [_ffmpeg(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", str(fps), "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p",
           "-f", "mp4", str(tmp)]
    data = b"".join(np.ascontiguousarray(p, dtype=np.uint8).tobytes() for p in pictures)
    subprocess.run(cmd, input=data, check=True)


def animation_html(pictures: Sequence[np.ndarray], fps: float = 4):
    """An inline animation for Jupyter (``IPython.display.HTML`` of an embedded GIF)."""
    import base64
    import io

    from IPython.display import HTML

    buffer = io.BytesIO()
    _write_gif(pictures, buffer, fps)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return HTML(f'<img src="data:image/gif;base64,{data}" alt="episode animation"/>')


def watch(policy: Any, task: "str | Task | None" = None, out: "str | Path | None" = None, seed: int = 0,
          episodes: int = 1, fps: float | None = None, beside: Any = None, labels: Sequence[str] | None = None,
          **options: Any):
    """Play ``episodes`` episodes of ``policy`` on ``task`` and show them.

    ``out``: a ``.gif`` or ``.mp4`` file to write (returns its path); None returns an
    inline animation for Jupyter.  ``beside``: a reference kind (``"random"``,
    ``"noop"``, ``"heuristic"``) or a policy played on the same episodes, on the right;
    ``labels``: the text above each side (default "your agents" and the other's name).
    ``fps``: frames per second (default 10 on the MPE tasks, 4 elsewhere).  Other
    options go to :func:`frames` (``greedy``, ``on``, ``size``, ``links``).
    """
    policy, t = _resolve(policy, task)
    if out is not None:  # fail before playing, not after
        suffix = Path(out).suffix.lower()
        if suffix not in (".gif", ".mp4"):
            raise ValueError(f"write a .gif or an .mp4, not {Path(out).name!r}")
        if suffix == ".mp4":
            _ffmpeg()
    if beside is None:
        pictures = frames(policy, t, seed, episodes, label=labels[0] if labels else None, **options)
    else:
        pictures = side_by_side(policy, beside, t, seed, episodes, labels=labels, **options)
    fps = fps or (10 if t.is_mpe else 4)
    return animation_html(pictures, fps) if out is None else save(pictures, out, fps)
