"""Priors, quasi-random samples and batched, chunked, sharded evaluation of ``params -> outputs``."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, ArrayLike, Float
from scipy.stats import qmc

from ..errors import NonFiniteError
from ..simulate.chunking import map_chunked
from ..typing import ParamVector


class Box:
    """Independent uniform priors ``{name: (low, high)}``, in the given order."""

    def __init__(self, bounds: Mapping[str, Sequence[float]], where: str = "Box"):
        if not bounds:
            raise ValueError(f"{where}: bounds must name at least one parameter")
        self.names = tuple(bounds)
        lo, hi = [], []
        for name, b in bounds.items():
            try:
                a, c = (float(v) for v in b)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: bounds[{name!r}] must be (low, high), got {b!r}") from None
            if not (math.isfinite(a) and math.isfinite(c)) or not c > a:
                raise ValueError(
                    f"{where}: bounds[{name!r}] = ({a}, {c}) must be finite with high > low "
                    "(a zero-width range has no sensitivity to measure; fix the parameter instead)"
                )
            lo.append(a)
            hi.append(c)
        self.low = np.array(lo)
        self.high = np.array(hi)

    @property
    def dim(self) -> int:
        return len(self.names)

    def scale(self, u: Float[ArrayLike, "*batch param"]) -> Float[np.ndarray, "*batch param"]:
        """Map unit-cube points to the box."""
        return self.low + (self.high - self.low) * u


def sobol_points(n: int, dim: int, seed: int) -> Float[np.ndarray, "sample param"]:
    """``n`` points of a scrambled Sobol sequence in ``[0, 1)^dim`` (``n`` a power of 2 keeps
    its balance properties)."""
    return qmc.Sobol(dim, scramble=True, seed=seed).random(n)


def evaluate(
    fn: Callable[[ParamVector], Array],
    x: Float[ArrayLike, "sample param"],
    *,
    chunk_size: int = 4096,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = False,
    desc: str = "evaluate",
    where: str = "evaluate",
) -> Float[np.ndarray, " sample *out"]:
    """``fn`` (one parameter vector -> an array) over the rows of ``x`` under ``vmap``, in chunks
    of ``chunk_size`` (the last one padded, so one compilation serves all), each chunk split
    across ``devices`` (default all local devices), results gathered to host memory.

    Raises :class:`jaxid.NonFiniteError` naming the first parameter vector whose outputs are not finite.
    """
    x = np.asarray(x, dtype=np.float64 if jax.config.jax_enable_x64 else np.float32)
    n = x.shape[0]
    y = map_chunked(
        _vmapped(fn), (x,), chunk_size=chunk_size, devices=devices, progress=progress, desc=desc, unit="eval"
    )
    bad = ~np.isfinite(y.reshape(n, -1)).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise NonFiniteError(
            f"{where}: the model returned non-finite outputs for {int(bad.sum())} of {n} parameter "
            f"vectors, the first at {x[i].tolist()}; narrow the prior ranges or fix the model there"
        )
    return y


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _vmapped(fn):
    """One jitted ``vmap(fn)`` per function (repeated analyses of ``fn`` compile once)."""
    try:
        return _CACHE[fn]
    except (KeyError, TypeError):
        run = eqx.filter_jit(jax.vmap(fn))
        try:
            _CACHE[fn] = run
        except TypeError:
            pass
        return run
