"""Plotting helpers (matplotlib, seaborn where it helps) shared by the notebooks.

matplotlib is imported inside the functions, so importing this module is cheap and
works headless (matplotlib falls back to the Agg backend without a display).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

# ------------------------------------------------------------------------------ games


def payoff_heatmap(
    payoffs,
    action_names: Sequence[str] | Sequence[Sequence[str]] | None = None,
    player_names: Sequence[str] | None = None,
    ax=None,
    highlight: Sequence[tuple[int, int]] | None = None,
    title: str | None = None,
):
    """Draw a two-player game as a grid; each cell reads "a, b" (row's, column's payoff).

    Cells are coloured by the sum of both payoffs (the team's payoff in common-payoff
    games) unless that is constant, as in zero-sum games; then by the row player's payoff.
    ``action_names`` is one list for both players or a pair of lists; ``highlight``
    outlines the given profiles (e.g. the pure Nash equilibria).
    Taught in notebooks/01_game_theory.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    from course_lib.games import validate_payoffs

    payoffs = validate_payoffs(payoffs)
    if payoffs.ndim != 3:
        raise ValueError(f"payoff_heatmap draws two-player games; got shape {payoffs.shape}")
    rows, cols = payoffs.shape[:2]
    if action_names is None:
        names = [[str(a) for a in range(rows)], [str(a) for a in range(cols)]]
    elif len(action_names) == 2 and not isinstance(action_names[0], str):
        names = [list(action_names[0]), list(action_names[1])]
    else:
        names = [list(action_names), list(action_names)]
    player_names = list(player_names or ["player 0 (rows)", "player 1 (columns)"])

    A, B = payoffs[..., 0], payoffs[..., 1]
    total = A + B
    colour, label = (total, "sum of payoffs") if np.ptp(total) > 1e-12 else (A, "row payoff")
    low, high = float(colour.min()), float(colour.max())
    # plain matplotlib (seaborn's heatmap redraws the whole figure per call: slow in grids)
    norm = TwoSlopeNorm(0.0, low, high) if low < 0 < high else None

    if ax is None:
        _, ax = plt.subplots(figsize=(1.3 * cols + 1.5, 1.0 * rows + 1.0))
    image = ax.imshow(colour, cmap="RdYlGn", norm=norm, vmin=None if norm else low - 1e-9,
                      vmax=None if norm else high + 1e-9, aspect="auto")
    ax.figure.colorbar(image, ax=ax, label=label)
    for r in range(rows):
        for c in range(cols):
            ax.text(c, r, f"{A[r, c]:g}, {B[r, c]:g}", ha="center", va="center", fontsize=10)
    ax.set_xticks(range(cols), names[1])
    ax.set_yticks(range(rows), names[0])
    ax.set_xticks(np.arange(cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    for r, c in highlight or []:
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=3))
    ax.set_xlabel(player_names[1])
    ax.set_ylabel(player_names[0])
    if title:
        ax.set_title(title)
    return ax


def strategy_field(payoffs, kind: str = "replicator", ax=None, grid: int = 15, title: str | None = None):
    """Vector field of a learning dynamic over mixed profiles (p, q) of a 2x2 game.

    ``p`` (x axis) is the probability that player 0 plays action 0, ``q`` (y axis) that
    player 1 plays action 0. ``kind`` is "replicator" or "best_response". Pure Nash
    equilibria are drawn as black dots, the fully mixed equilibrium (if any) as a star.
    Taught in notebooks/01_game_theory.
    """
    import matplotlib.pyplot as plt

    from course_lib import games

    fields = {"replicator": games.replicator_field_2x2, "best_response": games.best_response_field_2x2}
    if kind not in fields:
        raise ValueError(f"kind must be one of {sorted(fields)}; got {kind!r}")
    payoffs = games.validate_payoffs(payoffs)
    if payoffs.shape != (2, 2, 2):
        raise ValueError(f"strategy_field needs a 2x2 game of shape (2, 2, 2); got {payoffs.shape}")

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    ticks = np.linspace(0.0, 1.0, grid)
    P, Q = np.meshgrid(ticks, ticks)
    dP, dQ = fields[kind](payoffs, P, Q)
    speed = np.hypot(dP, dQ)
    scale = np.where(speed > 0, speed, 1.0)  # unit arrows, speed shown by colour
    ax.quiver(P, Q, dP / scale, dQ / scale, speed, cmap="viridis", angles="xy", pivot="mid")

    for a0, a1 in games.pure_nash_equilibria(payoffs):
        ax.plot(1.0 - a0, 1.0 - a1, "o", color="black", markersize=9, zorder=3)
    try:
        p, q = games.mixed_equilibrium_2x2(payoffs)
        ax.plot(p, q, "*", color="crimson", markersize=16, zorder=3, label=f"mixed NE ({p:.2f}, {q:.2f})")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    except ValueError:
        pass
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_aspect("equal")
    ax.set_xlabel("p = P(player 0 plays action 0)")
    ax.set_ylabel("q = P(player 1 plays action 0)")
    ax.set_title(title or f"{kind.replace('_', '-')} dynamics")
    return ax


# ------------------------------------------------------------------- learning curves


def plot_learning_curves(df, x: str, y: str, hue: str | None = None, ax=None, ci: float | None = 95,
                         title: str | None = None, units: str | None = None, **kwargs):
    """Mean of ``y`` over seeds against ``x`` with a confidence band (seaborn lineplot).

    ``df`` is a long DataFrame with one row per (seed, logged step), as ``train(...)``
    returns (concatenate runs with a ``seed`` column).  Rows with the same ``x`` (and
    ``hue``) are averaged; ``ci`` is the percentage of the bootstrap confidence band
    (``None`` for no band).  Logged steps that differ between seeds should be binned
    first (e.g. ``df["step"] // 1000 * 1000``).  Extra keyword arguments go to
    ``seaborn.lineplot``.
    Taught in notebooks/02_independent_learners.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    data = df.dropna(subset=[y])
    errorbar = ("ci", ci) if ci else None
    sns.lineplot(data=data, x=x, y=y, hue=hue, ax=ax, errorbar=errorbar, units=units,
                 estimator="mean" if units is None else None, n_boot=kwargs.pop("n_boot", 200),
                 seed=kwargs.pop("seed", 0), **kwargs)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if title:
        ax.set_title(title)
    return ax


def plot_action_frequencies(freqs, action_names: Sequence[str] | None = None, ax=None,
                            ci: float | None = 95, title: str | None = None, x: str = "episode"):
    """Probability of each action over time, mean over seeds with a confidence band.

    ``freqs`` is an array ``[seeds, T, n_actions]`` (e.g. the share of an agent's
    actions per episode block, or its policy) or a long DataFrame of ONE agent with
    columns ``seed``, ``x`` (default ``"episode"``), ``action``, ``frequency`` (a
    matrix-game run's ``run.learner.actions`` from ``iql.train``, filtered to one agent).
    The band is a normal-approximation ``ci``% interval of the mean over seeds.
    Taught in notebooks/02_independent_learners.
    """
    import matplotlib.pyplot as plt

    if hasattr(freqs, "pivot_table"):
        table = freqs.pivot_table(index=["seed", x], columns="action", values="frequency")
        seeds = table.index.get_level_values(0).unique()
        arr = np.stack([table.loc[s].to_numpy() for s in seeds])
        ts = table.loc[seeds[0]].index.to_numpy()
    else:
        arr = np.asarray(freqs, dtype=float)
        if arr.ndim == 2:
            arr = arr[None]
        ts = np.arange(arr.shape[1])
    S, _, A = arr.shape
    names = list(action_names or [str(a) for a in range(A)])
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    mean = arr.mean(axis=0)
    if ci and S > 1:
        from statistics import NormalDist

        z = NormalDist().inv_cdf(0.5 + ci / 200.0)
        half = z * arr.std(axis=0, ddof=1) / np.sqrt(S)
    else:
        half = None
    for a in range(A):
        line, = ax.plot(ts, mean[:, a], label=names[a])
        if half is not None:
            ax.fill_between(ts, np.clip(mean[:, a] - half[:, a], 0, 1),
                            np.clip(mean[:, a] + half[:, a], 0, 1), color=line.get_color(), alpha=0.2)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(x)
    ax.set_ylabel("frequency")
    ax.legend(title="action", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


# ------------------------------------------------------------------- competitive play


def win_rate_heatmap(table, ax=None, title: str | None = None, annotate: bool = True,
                     xlabel: str | None = None, ylabel: str | None = None, cbar_label: str = "win rate"):
    """A win-rate table (rows beat columns at rate ``table[r, c]`` in [0, 1]) as a heatmap.

    ``table``: a pandas DataFrame (its index and columns label the axes) or an array.
    Colours run from red (0) through yellow (0.5) to green (1); ``annotate`` writes the
    rates into the cells (skipped automatically beyond 12 x 12).
    Taught in notebooks/08_self_play.
    """
    import matplotlib.pyplot as plt

    values = np.asarray(table, dtype=float)
    rows = [str(r) for r in getattr(table, "index", range(values.shape[0]))]
    cols = [str(c) for c in getattr(table, "columns", range(values.shape[1]))]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.8 * len(cols) + 2.5, 0.5 * len(rows) + 1.5))
    image = ax.imshow(values, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    ax.figure.colorbar(image, ax=ax, label=cbar_label)
    if annotate and max(values.shape) <= 12:
        for r in range(values.shape[0]):
            for c in range(values.shape[1]):
                if np.isfinite(values[r, c]):
                    ax.text(c, r, f"{values[r, c]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(xlabel if xlabel is not None else str(getattr(getattr(table, "columns", None), "name", "") or ""))
    ax.set_ylabel(ylabel if ylabel is not None else str(getattr(getattr(table, "index", None), "name", "") or ""))
    if title:
        ax.set_title(title)
    return ax
