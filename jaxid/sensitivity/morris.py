r"""Morris elementary effects.

In the unit cube of the prior, each of ``r`` trajectories starts at a random point of a
``levels``-level grid and moves one input at a time by :math:`\pm\Delta`,
:math:`\Delta = \text{levels} / (2(\text{levels} - 1))`, in a random order. The elementary effect
of input ``i`` is :math:`EE_i = (f(x + \Delta e_i) - f(x))/\Delta` (signed with the move).
Reported: :math:`\mu = \overline{EE_i}`, :math:`\mu^* = \overline{|EE_i|}` (importance) and
:math:`\sigma = \operatorname{sd}(EE_i)` (non-linearity or interactions), in output units per
unit of the normalised input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ..errors import check_user_function
from ..typing import ParamVector
from .sampling import Box, evaluate


@dataclass
class MorrisEffects:
    """``mu``, ``mu_star``, ``sigma`` (``(param,) + output_shape``), ``effects`` (``(r, param) +
    output_shape``), ``names``, ``trajectories``."""

    names: tuple[str, ...]
    mu: Float[np.ndarray, " param *out"]
    mu_star: Float[np.ndarray, " param *out"]
    sigma: Float[np.ndarray, " param *out"]
    effects: Float[np.ndarray, "trajectory param *out"]
    trajectories: int


def morris_trajectories(
    d: int, r: int, levels: int, seed: int
) -> tuple[
    Float[np.ndarray, "trajectory point param"],
    Int[np.ndarray, "trajectory param"],
    Float[np.ndarray, "trajectory param"],
]:
    """Unit-cube points ``(r, d + 1, d)`` and, per trajectory, the input moved at each step and
    its signed step ``(r, d)``."""
    rng = np.random.default_rng(seed)
    delta = levels / (2 * (levels - 1))
    grid = np.arange(levels) / (levels - 1)
    points = np.empty((r, d + 1, d))
    order = np.empty((r, d), dtype=int)
    steps = np.empty((r, d))
    for t in range(r):
        x = rng.choice(grid, size=d)
        points[t, 0] = x
        order[t] = rng.permutation(d)
        for k, i in enumerate(order[t]):
            step = delta if x[i] + delta <= 1 + 1e-12 else -delta
            x = x.copy()
            x[i] += step
            points[t, k + 1] = x
            steps[t, k] = step
    return points, order, steps


def morris_effects(
    fn: Callable[[ParamVector], Array],
    bounds: Mapping[str, Sequence[float]],
    trajectories: int = 50,
    *,
    levels: int = 4,
    seed: int = 0,
    chunk_size: int = 8192,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = False,
) -> MorrisEffects:
    """Morris screening of ``fn`` over uniform priors ``bounds``: ``trajectories (d + 1)`` runs."""
    box = Box(bounds, "morris_effects")
    if not (isinstance(levels, int) and levels >= 2 and levels % 2 == 0):
        raise ValueError(f"morris_effects: levels must be an even int >= 2, got {levels!r}")
    if not (isinstance(trajectories, int) and trajectories >= 2):
        raise ValueError(f"morris_effects: trajectories must be an int >= 2, got {trajectories!r}")
    check_user_function(fn, jnp.asarray(box.low, dtype=float), "morris_effects", forward=False)
    d, r = box.dim, trajectories
    points, order, steps = morris_trajectories(d, r, levels, seed)
    y = evaluate(
        fn,
        box.scale(points.reshape(-1, d)),
        chunk_size=chunk_size,
        devices=devices,
        progress=progress,
        desc="morris",
        where="morris_effects",
    )
    y = y.reshape((r, d + 1, *y.shape[1:]))
    effects = np.empty((r, d, *y.shape[2:]))
    for t in range(r):
        for k, i in enumerate(order[t]):
            effects[t, i] = (y[t, k + 1] - y[t, k]) / steps[t, k]
    return MorrisEffects(
        box.names, effects.mean(0), np.abs(effects).mean(0), effects.std(0, ddof=1), effects, r
    )
