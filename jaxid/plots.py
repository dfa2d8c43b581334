"""Matplotlib figures shared by the command line, the experiments and the notebooks.

pyplot is imported inside the functions that draw, so that ``import jaxid`` does not load matplotlib.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from jaxtyping import ArrayLike

if TYPE_CHECKING:  # annotations only: importing jaxid does not load matplotlib
    import matplotlib.axes
    import matplotlib.figure


@runtime_checkable
class Records(Protocol):
    """What :func:`plot_trajectories` reads of a :class:`jaxid.Simulation` (or a
    :class:`jaxid.SwitchingSimulation`): the save times ``ts`` ``(records, time)``, the
    observations ``obs`` ``(records, time, channel)`` and ``success`` ``(records,)``, or one record
    without the leading axis."""

    ts: ArrayLike
    obs: ArrayLike
    success: ArrayLike


def plot_trajectories(
    sim: Records,
    channel_names: Sequence[str],
    *,
    max_records: int = 8,
    title: str | None = None,
    ax: "matplotlib.axes.Axes | Sequence[matplotlib.axes.Axes] | np.ndarray | None" = None,
) -> "matplotlib.figure.Figure":
    """Plot observations of up to ``max_records`` records, one panel per channel.

    ``sim`` is a batched :class:`jaxid.Simulation` (leading record axis). Failed records are
    drawn dashed in grey. Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    obs, ts, ok = np.asarray(sim.obs), np.asarray(sim.ts), np.asarray(sim.success)
    if obs.ndim == 2:  # one record
        obs, ts, ok = obs[None], ts[None], ok[None]
    n_ch = obs.shape[-1]
    if ax is None:
        fig, axes = plt.subplots(n_ch, 1, figsize=(7, 2.2 * n_ch + 0.6), sharex=True, squeeze=False)
        axes = axes[:, 0]
    else:
        axes = np.atleast_1d(ax)
        fig = axes[0].figure
    for c in range(n_ch):
        for r in range(min(max_records, obs.shape[0])):
            style = dict(lw=1.2) if ok[r] else dict(lw=1.0, ls="--", color="0.6")
            axes[c].plot(ts[r], obs[r, :, c], **style)
        axes[c].set_ylabel(channel_names[c])
    axes[-1].set_xlabel("t [s]")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return fig


def agg_pyplot() -> types.ModuleType:
    """``matplotlib.pyplot`` on the file-writing Agg backend, imported on first use.

    For code that only saves figures to files (the studies' reports): importing it at module level
    would load matplotlib, and switch its backend, whenever the module is imported.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt
