"""Traffic junction (CommNet, Sukhbaatar et al. 2016; IC3Net, Singh et al. 2019).

Used in notebooks/05_communication.

Cars enter a grid of roads at the entry points, follow a fixed route to an exit and
leave.  Each car slot (``car_0 ... car_{N-1}``, N = ``max_cars``) is an agent; a slot
is empty until a car arrives in it and empties again when its car leaves, so the
number of cars on the grid varies (``info["active"]`` marks occupied slots,
``info["arrived"]`` the cars new in them; the actions of empty slots are ignored and
their obs and rewards are zero).

Versions (the table of CommNet / IC3Net; ``version=`` picks the defaults, any of
them can be overridden):

=======  =====  ========  =====  =======================  ===================
version  grid   max cars  steps  arrival prob. min -> max  roads
=======  =====  ========  =====  =======================  ===================
easy     7x7    5         20     0.1 -> 0.3                2 one-way (1 junction), straight routes
medium   14x14  10        40     0.05 -> 0.2               2 two-way (1 junction), 3 routes per entry
hard     18x18  20        80     0.02 -> 0.05              4 two-way (4 junctions), 7 routes per entry
=======  =====  ========  =====  =======================  ===================

(IC3Net uses 6x6 for easy; we keep CommNet's 7x7 so the one-way roads cross in
the middle cell.  Hard runs 40-80 steps in the papers; IC3Net's scripts use 80.)

Dynamics and reward
-------------------
* Actions: ``0 = brake`` (stay; the no-op) and ``1 = gas`` (advance one cell along
  the route).  Note IC3Net numbers them the other way round.
* Traffic drives on the right; a route is the shortest lane path from its entry to
  one of the exits (straight only in easy; no U-turns).
* After the moves, every car sharing a cell with another car is in a collision and
  gets ``-collision_penalty`` (10) -- in every step it stays there, as in IC3Net;
  every car on the grid also gets ``-time_penalty * tau`` (0.01 tau), tau = steps
  since the car arrived (cars leaving in this step pay it too).
* Then, at every entry point, a new car arrives with the current arrival
  probability if a slot is free and the entry cell is empty; its route is drawn
  uniformly among the entry's routes.  Arrivals are also drawn at reset.  The new cars
  take the first free slots, in entry order; with ``random_slots=True`` each takes a
  free slot at random, as in the CommNet code (``games/Traffic.lua``), so a slot's
  number tells nothing about its car.
* Episodes last ``max_steps`` steps (truncation).  An episode *fails* when any
  collision happened (``failure`` / ``success`` metrics); ``collisions`` counts
  car-steps spent in a collision (the penalties paid / 10), ``cars_completed`` the
  cars that reached their exit.
* Curriculum: ``set_curriculum(fraction)`` moves the arrival probability linearly
  from ``arrival_prob_min`` (fraction 0) to ``arrival_prob_max`` (fraction 1), as
  CommNet and IC3Net do over training epochs; ``set_arrival_prob(p)`` sets it.

Observation of a car (zeros for an empty slot), floats in [0, 1]:
``[active, row/(S-1), col/(S-1), route progress, tau/max_steps, last action,
one-hot entry (E), one-hot exit (E), other cars in the (2v+1)^2 view,
road cells in the view]`` with v the vision radius (default 1).  With ``see_routes=True``
the view also shows where each visible car comes from and goes to: per view cell, the
one-hot entry (E) and exit (E) of the other cars there, appended.  That is the CommNet
paper's observation (its cars see the route of every car in their 3x3 neighbourhood);
IC3Net's and TarMAC's junctions show only occupancy, the default here.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from .base import BatchCore, CoreBatchedEnv, CourseParallelEnv, upscale

__all__ = ["TrafficJunction", "VecTrafficJunction", "TrafficJunctionCore", "TJ_VERSIONS",
           "build_junction"]

# Defaults per version: CommNet (Sukhbaatar et al. 2016), Table 2 settings, and
# IC3Net (Singh et al. 2019) training scripts for the arrival-rate curriculum.
TJ_VERSIONS = {
    "easy": dict(size=7, max_cars=5, max_steps=20, arrival_prob_min=0.1, arrival_prob_max=0.3),
    "medium": dict(size=14, max_cars=10, max_steps=40, arrival_prob_min=0.05, arrival_prob_max=0.2),
    "hard": dict(size=18, max_cars=20, max_steps=80, arrival_prob_min=0.02, arrival_prob_max=0.05),
}

_DIRS = {"E": (0, 1), "W": (0, -1), "S": (1, 0), "N": (-1, 0)}


def _lanes(version: str, S: int) -> list[tuple[int, str, list[tuple[int, int]]]]:
    """``(road_id, direction, cells from entry to exit)`` for every lane."""
    lanes = []
    if version == "easy":
        if S < 3 or S % 2 == 0:
            raise ValueError(f"easy traffic junction needs an odd size >= 3, got {S}")
        m = S // 2
        lanes.append((0, "E", [(m, c) for c in range(S)]))
        lanes.append((1, "S", [(r, m) for r in range(S)]))
        return lanes
    if version == "medium":
        if S < 4 or S % 2:
            raise ValueError(f"medium traffic junction needs an even size >= 4, got {S}")
        starts = [S // 2 - 1]
    elif version == "hard":
        if S < 9 or S % 3:
            raise ValueError(f"hard traffic junction needs a size that is a multiple of 3 and >= 9, got {S}")
        starts = [S // 3 - 1, 2 * S // 3 - 1]
    else:
        raise ValueError(f"version must be one of {sorted(TJ_VERSIONS)}, got {version!r}")
    road = 0
    for r0 in starts:  # horizontal two-way roads: westbound on top, eastbound below
        lanes.append((road, "W", [(r0, c) for c in range(S - 1, -1, -1)]))
        lanes.append((road, "E", [(r0 + 1, c) for c in range(S)]))
        road += 1
    for c0 in starts:  # vertical two-way roads: southbound on the left, northbound right
        lanes.append((road, "S", [(r, c0) for r in range(S)]))
        lanes.append((road, "N", [(r, c0 + 1) for r in range(S - 1, -1, -1)]))
        road += 1
    return lanes


def build_junction(version: str, size: int):
    """Road mask ``[S, S]``, routes (lists of cells), each route's entry and exit index,
    and the entry cells, for a traffic-junction version and grid size."""
    S = int(size)
    lanes = _lanes(version, S)
    road = np.zeros((S, S), dtype=bool)
    succ: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for _, _, cells in lanes:
        for a, b in zip(cells[:-1], cells[1:]):
            succ.setdefault(a, []).append(b)
        for c in cells:
            road[c] = True
    entries = [cells[0] for _, _, cells in lanes]
    exits = [cells[-1] for _, _, cells in lanes]
    routes, route_entry, route_exit = [], [], []
    for e, (road_e, _, cells_e) in enumerate(lanes):
        # BFS over lane successors from the entry cell
        parent = {cells_e[0]: None}
        queue = deque([cells_e[0]])
        while queue:
            cur = queue.popleft()
            for nxt in succ.get(cur, []):
                if nxt not in parent:
                    parent[nxt] = cur
                    queue.append(nxt)
        for x, (road_x, _, cells_x) in enumerate(lanes):
            if version == "easy" and x != e:
                continue  # easy: straight routes only (CommNet)
            if version != "easy" and road_x == road_e and x != e:
                continue  # no U-turn onto the same road
            goal = cells_x[-1]
            if goal not in parent:
                continue
            path = [goal]
            while parent[path[-1]] is not None:
                path.append(parent[path[-1]])
            routes.append(path[::-1])
            route_entry.append(e)
            route_exit.append(x)
    return road, routes, np.array(route_entry), np.array(route_exit), entries, exits


class TrafficJunctionCore(BatchCore):
    agent_prefix = "car"
    noop_action = 0  # brake
    render_modes = ("ansi", "rgb_array")
    metric_fill = {"success": False, "failure": False, "collisions": 0, "cars_completed": 0}
    random_slots = False  # the default for a junction saved (pickled in a checkpoint) before the option existed

    def __init__(self, num_envs, rng, version: str = "easy", size: int | None = None,
                 max_cars: int | None = None, max_steps: int | None = None,
                 arrival_prob: float | None = None, arrival_prob_min: float | None = None,
                 arrival_prob_max: float | None = None, vision: int = 1,
                 collision_penalty: float = 10.0, time_penalty: float = 0.01, see_routes: bool = False,
                 random_slots: bool = False):
        super().__init__(num_envs, rng)
        if version not in TJ_VERSIONS:
            raise ValueError(f"version must be one of {sorted(TJ_VERSIONS)}, got {version!r}")
        d = TJ_VERSIONS[version]
        self.version = version
        self.name = f"traffic_junction_{version}"
        self.size = int(d["size"] if size is None else size)
        self.num_agents = int(d["max_cars"] if max_cars is None else max_cars)
        self.max_steps = int(d["max_steps"] if max_steps is None else max_steps)
        self.arrival_prob_min = float(d["arrival_prob_min"] if arrival_prob_min is None else arrival_prob_min)
        self.arrival_prob_max = float(d["arrival_prob_max"] if arrival_prob_max is None else arrival_prob_max)
        self.set_arrival_prob(self.arrival_prob_min if arrival_prob is None else arrival_prob)
        self.vision = int(vision)
        if self.vision < 0:
            raise ValueError(f"vision must be >= 0, got {vision}")
        if self.num_agents < 1:
            raise ValueError(f"max_cars must be >= 1, got {max_cars}")
        self.collision_penalty, self.time_penalty = float(collision_penalty), float(time_penalty)
        self.see_routes, self.random_slots = bool(see_routes), bool(random_slots)

        S = self.size
        road, routes, r_entry, r_exit, entries, exits = build_junction(version, S)
        self.road = road
        self.routes = routes
        self.num_routes = len(routes)
        self.route_entry, self.route_exit = r_entry, r_exit
        self.num_entries = len(entries)
        self.entry_cells = np.array([r * S + c for r, c in entries], dtype=np.int64)
        L = max(len(p) for p in routes)
        self.route_cells = np.full((self.num_routes, L + 1), -1, dtype=np.int64)
        for i, p in enumerate(routes):
            self.route_cells[i, : len(p)] = [r * S + c for r, c in p]
        self.route_len = np.array([len(p) for p in routes], dtype=np.int64)
        # routes of each entry, padded: [E, max_routes_per_entry]
        per_entry = [np.flatnonzero(r_entry == e) for e in range(self.num_entries)]
        self.entry_nroutes = np.array([len(p) for p in per_entry], dtype=np.int64)
        self.entry_routes = np.zeros((self.num_entries, self.entry_nroutes.max()), dtype=np.int64)
        for e, p in enumerate(per_entry):
            self.entry_routes[e, : len(p)] = p

        v = self.vision
        self.view = 2 * v + 1
        E = self.num_entries
        self.obs_dim = 6 + 2 * E + 2 * self.view ** 2 + (2 * E * self.view ** 2 if self.see_routes else 0)
        self.obs_low, self.obs_high = 0.0, 1.0
        self.n_actions = np.full(self.num_agents, 2, dtype=np.int64)
        # per cell: the padded flat cells of its view and the road mask there
        # (outside the grid is not road)
        Sp = S + 2 * v
        self._Sp2 = Sp * Sp
        road_pad = np.pad(road, v).astype(np.float32).ravel()
        dr, dc = np.meshgrid(np.arange(-v, v + 1), np.arange(-v, v + 1), indexing="ij")
        rr, cc = np.divmod(np.arange(S * S), S)
        self._view_table = ((rr[:, None] + v + dr.ravel()) * Sp + (cc[:, None] + v + dc.ravel()))
        self._road_table = road_pad[self._view_table]  # [S*S, V2]

        B, N = self.num_envs, self.num_agents
        self.active = np.zeros((B, N), dtype=bool)
        self.route = np.zeros((B, N), dtype=np.int64)
        self.progress = np.zeros((B, N), dtype=np.int64)
        self.tau = np.zeros((B, N), dtype=np.int64)
        self.last_act = np.zeros((B, N), dtype=np.int64)
        self.t = np.zeros(B, dtype=np.int64)
        self.failed = np.zeros(B, dtype=bool)
        self.n_collisions = np.zeros(B, dtype=np.int64)
        self.n_completed = np.zeros(B, dtype=np.int64)
        self.collided = np.zeros((B, N), dtype=bool)

    # ----------------------------------------------------------------- curriculum
    def set_arrival_prob(self, p: float) -> None:
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"arrival probability must be in [0, 1], got {p}")
        self.arrival_prob = p

    def set_curriculum(self, fraction: float) -> float:
        """Arrival probability ``min + fraction (max - min)``, fraction clipped to [0, 1]."""
        f = float(np.clip(fraction, 0.0, 1.0))
        self.set_arrival_prob(self.arrival_prob_min + f * (self.arrival_prob_max - self.arrival_prob_min))
        return self.arrival_prob

    # ---------------------------------------------------------------------- state
    def cells(self) -> np.ndarray:
        """``[B, N]`` flat cell id of every car, -1 for empty slots."""
        c = self.route_cells[self.route, self.progress]
        return np.where(self.active, c, -1)

    def next_cells(self) -> np.ndarray:
        """``[B, N]`` the cell each car would enter with gas; -1 when it would leave
        the grid or the slot is empty."""
        c = self.route_cells[self.route, np.minimum(self.progress + 1, self.route_cells.shape[1] - 1)]
        return np.where(self.active, c, -1)

    def place_car(self, b: int, slot: int, route: int, progress: int = 0, tau: int = 0) -> None:
        """Put a car on ``route`` at ``progress`` in slot ``slot`` of env ``b`` (for
        tests and demonstrations)."""
        if not 0 <= route < self.num_routes:
            raise ValueError(f"route must be in [0, {self.num_routes - 1}], got {route}")
        if not 0 <= progress < self.route_len[route]:
            raise ValueError(f"progress must be in [0, {self.route_len[route] - 1}], got {progress}")
        self.active[b, slot] = True
        self.route[b, slot] = route
        self.progress[b, slot] = progress
        self.tau[b, slot] = tau

    def _reset(self, idx):
        self.active[idx] = False
        self.route[idx] = 0
        self.progress[idx] = 0
        self.tau[idx] = 0
        self.last_act[idx] = 0
        self.t[idx] = 0
        self.failed[idx] = False
        self.n_collisions[idx] = 0
        self.n_completed[idx] = 0
        self.collided[idx] = False
        self._arrive(idx)

    def _arrive(self, idx: np.ndarray) -> None:
        """New cars at the entry points of the envs ``idx``."""
        k, E, N = idx.size, self.num_entries, self.num_agents
        u_arrive = self.rng.random((k, E))
        u_route = self.rng.random((k, E))
        active = self.active[idx]
        cells = np.where(active, self.route_cells[self.route[idx], self.progress[idx]], -1)
        occupied = (cells[:, None, :] == self.entry_cells[None, :, None]).any(axis=2)  # [k, E]
        want = (u_arrive < self.arrival_prob) & ~occupied
        free = ~active
        # the j-th arriving car (in entry order) takes the j-th free slot: in slot order, or
        # in a random order of the free slots (random_slots; drawn only then, so the default
        # junction's random stream is unchanged)
        rank_arr = np.cumsum(want, axis=1) - 1
        if self.random_slots:  # the rank of each slot in a random order of the free ones (taken ones last)
            rank_free = np.argsort(np.argsort(np.where(free, self.rng.random((k, N)), 2.0), axis=1), axis=1)
        else:
            rank_free = np.cumsum(free, axis=1) - 1
        n_free = free.sum(axis=1)
        want &= rank_arr < n_free[:, None]
        if not want.any():
            return
        match = want[:, :, None] & free[:, None, :] & (rank_free[:, None, :] == rank_arr[:, :, None])
        env_i, entry_i, slot_i = np.nonzero(match)
        choice = np.minimum((u_route[env_i, entry_i] * self.entry_nroutes[entry_i]).astype(np.int64),
                            self.entry_nroutes[entry_i] - 1)
        rows = idx[env_i]
        self.active[rows, slot_i] = True
        self.route[rows, slot_i] = self.entry_routes[entry_i, choice]
        self.progress[rows, slot_i] = 0
        self.tau[rows, slot_i] = 0
        self.last_act[rows, slot_i] = 0

    # ----------------------------------------------------------------------- step
    def step(self, actions):
        B, N = self.num_envs, self.num_agents
        was_active = self.active.copy()
        gas = (actions == 1) & was_active
        self.last_act = np.where(was_active, actions, 0)
        self.progress = self.progress + gas
        leaving = was_active & (self.progress >= self.route_len[self.route])
        self.n_completed += leaving.sum(axis=1)
        self.active = was_active & ~leaving
        self.progress = np.where(self.active, self.progress, 0)
        self.tau = np.where(was_active, self.tau + 1, 0)
        cells = self.cells()
        same = (cells[:, :, None] == cells[:, None, :]) & self.active[:, :, None] & self.active[:, None, :]
        same &= ~np.eye(N, dtype=bool)[None]
        self.collided = same.any(axis=2)
        rewards = 0.0 - self.time_penalty * self.tau * was_active - self.collision_penalty * self.collided
        rewards += 0.0  # no negative zeros for empty slots
        self.n_collisions += self.collided.sum(axis=1)
        self.failed |= self.collided.any(axis=1)
        self.tau = np.where(self.active, self.tau, 0)
        self._arrive(np.arange(B))
        self.t += 1
        truncated = self.t >= self.max_steps
        metrics = {
            "success": ~self.failed,
            "failure": self.failed.copy(),
            "collisions": self.n_collisions.copy(),
            "cars_completed": self.n_completed.copy(),
        }
        return rewards.astype(np.float32), np.zeros(B, dtype=bool), truncated, metrics

    def observe(self):
        B, N, S, E = self.num_envs, self.num_agents, self.size, self.num_entries
        act = self.active
        cells = self.cells()
        r, c = np.divmod(np.maximum(cells, 0), S)
        plen = np.maximum(self.route_len[self.route] - 1, 1)
        obs = np.zeros((B, N, self.obs_dim), dtype=np.float32)
        obs[..., 0] = act
        obs[..., 1] = r / (S - 1)
        obs[..., 2] = c / (S - 1)
        obs[..., 3] = self.progress / plen
        obs[..., 4] = self.tau / self.max_steps
        obs[..., 5] = self.last_act
        bi, ni = np.nonzero(act)
        obs[bi, ni, 6 + self.route_entry[self.route[bi, ni]]] = 1.0
        obs[bi, ni, 6 + E + self.route_exit[self.route[bi, ni]]] = 1.0
        # other cars in view: occupancy grid per env minus the car itself
        V2, Sp2 = self.view ** 2, self._Sp2
        here = np.maximum(cells, 0)
        look = (np.arange(B) * Sp2)[:, None, None] + self._view_table[here]  # [B, N, V2]
        occ = np.bincount(look[..., V2 // 2].ravel(), weights=act.ravel().astype(np.float32),
                          minlength=B * Sp2)
        cars = occ[look]
        cars[..., V2 // 2] -= 1.0  # not oneself
        base = 6 + 2 * E
        np.minimum(cars, 1.0, out=obs[..., base: base + V2])
        obs[..., base + V2: base + 2 * V2] = self._road_table[here]
        if self.see_routes:  # the entry and exit one-hots of the other cars in each view cell
            mine = obs[..., 6: 6 + 2 * E]
            seen = np.zeros((B * Sp2, 2 * E), dtype=np.float32)
            np.add.at(seen, look[..., V2 // 2][act], mine[act])
            routes = seen[look]  # [B, N, V2, 2E]
            routes[:, :, V2 // 2] -= mine  # not oneself
            np.minimum(routes, 1.0, out=routes)
            obs[..., base + 2 * V2:] = routes.reshape(B, N, V2 * 2 * E)
        obs[~act] = 0.0
        return obs

    def state(self):
        """Occupancy grid ``[S*S]`` (cars per cell, capped at 1) and time fraction."""
        B, S = self.num_envs, self.size
        occ = np.zeros((B, S * S), dtype=np.float32)
        cells = self.cells()
        bi, ni = np.nonzero(self.active)
        occ[bi, cells[bi, ni]] = 1.0
        return np.concatenate([occ, (self.t / self.max_steps)[:, None]], axis=1).astype(np.float32)

    @property
    def state_dim(self):
        return self.size ** 2 + 1

    state_low, state_high = 0.0, 1.0

    def agent_info(self):
        """``active``: the slot holds a car; ``arrived``: a car that arrived in this step
        (a new agent, whose memory starts empty -- the slot may have held another car)."""
        return {"active": self.active.copy(), "arrived": self.active & (self.tau == 0)}

    # --------------------------------------------------------------------- render
    def render_text(self, b=0):
        S = self.size
        grid = np.where(self.road, ".", " ").astype(object)
        cells = self.cells()[b]
        for i in np.flatnonzero(self.active[b]):
            r, c = divmod(int(cells[i]), S)
            grid[r, c] = "X" if grid[r, c] not in (".", " ") else str(i % 10)
        head = (f"{self.name}: step {int(self.t[b])}/{self.max_steps}, "
                f"{int(self.active[b].sum())} cars, arrival p={self.arrival_prob:.3f}, "
                f"collisions {int(self.n_collisions[b])} (digits: car slots, X: crash)")
        return "\n".join([head] + ["".join(row) for row in grid])

    def render_rgb(self, b=0, px: int = 16):
        S = self.size
        img = np.where(self.road[..., None], np.uint8(225), np.uint8(70)).astype(np.uint8)
        img = np.repeat(img, 3, axis=2)
        cells = self.cells()[b]
        for i in np.flatnonzero(self.active[b]):
            r, c = divmod(int(cells[i]), S)
            img[r, c] = (214, 39, 40) if self.collided[b, i] else (31, 119, 180)
        return upscale(img, px)


class _CurriculumMixin:
    core: TrafficJunctionCore

    @property
    def arrival_prob(self) -> float:
        return self.core.arrival_prob

    def set_arrival_prob(self, p: float) -> None:
        """Set the arrival probability used from the next arrival draw on."""
        self.core.set_arrival_prob(p)

    def set_curriculum(self, fraction: float) -> float:
        """Move the arrival probability from its min (0) to its max (1); returns it."""
        return self.core.set_curriculum(fraction)


class TrafficJunction(_CurriculumMixin, CourseParallelEnv):
    """Traffic junction (PettingZoo ParallelEnv); see the module docstring.

    Args:
        version: "easy" (default), "medium" or "hard" -- picks the defaults below.
        size, max_cars, max_steps, arrival_prob_min, arrival_prob_max: override them.
        arrival_prob: starting arrival probability (default: the minimum).
        vision: view radius in cells (default 1, a 3x3 view).
        collision_penalty (10), time_penalty (0.01): reward weights.
        see_routes: the view also shows the visible cars' entries and exits (the CommNet
            paper's observation; default False: occupancy only, as IC3Net and TarMAC).
        random_slots: a new car takes a random free slot, as in the CommNet code (default
            False: the first free slot).
    """

    core_cls = TrafficJunctionCore

    def __init__(self, version: str = "easy", size: int | None = None, max_cars: int | None = None,
                 max_steps: int | None = None, arrival_prob: float | None = None,
                 arrival_prob_min: float | None = None, arrival_prob_max: float | None = None,
                 vision: int = 1, collision_penalty: float = 10.0, time_penalty: float = 0.01,
                 see_routes: bool = False, random_slots: bool = False, render_mode=None):
        super().__init__(render_mode=render_mode, version=version, size=size, max_cars=max_cars,
                         max_steps=max_steps, arrival_prob=arrival_prob,
                         arrival_prob_min=arrival_prob_min, arrival_prob_max=arrival_prob_max,
                         vision=vision, collision_penalty=collision_penalty,
                         time_penalty=time_penalty, see_routes=see_routes, random_slots=random_slots)


class VecTrafficJunction(_CurriculumMixin, CoreBatchedEnv):
    """Batched twin of :class:`TrafficJunction` (same arguments, plus num_envs and seed).

    ``info["active"]`` ``[B, N]`` marks the car slots occupied in the returned obs.
    """

    core_cls = TrafficJunctionCore

    def __init__(self, num_envs: int, version: str = "easy", size: int | None = None,
                 max_cars: int | None = None, max_steps: int | None = None,
                 arrival_prob: float | None = None, arrival_prob_min: float | None = None,
                 arrival_prob_max: float | None = None, vision: int = 1,
                 collision_penalty: float = 10.0, time_penalty: float = 0.01,
                 see_routes: bool = False, random_slots: bool = False, seed: int | None = None):
        super().__init__(num_envs, seed=seed, version=version, size=size, max_cars=max_cars,
                         max_steps=max_steps, arrival_prob=arrival_prob,
                         arrival_prob_min=arrival_prob_min, arrival_prob_max=arrival_prob_max,
                         vision=vision, collision_penalty=collision_penalty,
                         time_penalty=time_penalty, see_routes=see_routes, random_slots=random_slots)
