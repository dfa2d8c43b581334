"""Gait data sets: each record is its walker's exact periodic gait, saved to and loaded from disk.

:func:`generate_gait_dataset` draws ``(m, k, l0)`` from uniform priors and makes every record the
periodic gait (:func:`jaxid.find_gait`) at mid-stance height ``height_ratio * l0``: one period is
integrated from the gait's mid-stance state and tiled over the record, ``x`` (and the feet)
shifted by the step length and ``t`` by the step time. Each save time ``t`` is mapped to its phase
``t - n T`` in the period (``n = floor(t / T)``). The period is integrated by the walker's
event-aware Dopri8 (:func:`jaxid.simulate.events.integrate_knots_batch`, fixed step :data:`DEFAULT_DT`,
events located), and the state at each phase is the quintic Hermite polynomial through the two
integrator steps around it (positions, velocities and accelerations; measured 2e-12 m from a
Dopri8 step to the same time at a 10 ms step; growing as the step's sixth power, about 6e-10 m at
25 ms, under the integrator's own error there).

**Why not integrate forward?** Most of these gaits are unstable (return-map eigenvalue up to about
2.7 per step under the default priors, above 1.3 for about a quarter of the records): integrated
forward for 15 s, a record amplifies its integrator's rounding by the eigenvalue at every step, so
that after about 40 steps it is set by rounding, not by the model. Forward records then differ
from any other accurate integrator's (by up to 0.22 m, one of them falling), and leave their own
periodic gait by up to a millimetre. The periodic orbit is periodic in exact arithmetic; tiled, it
stays within the one-period integration error of the gait for the whole record, and any step of it
(mid-stance to mid-stance) is what an independent integrator started at that step's state gives.
It also costs one period per record instead of about 35 (18x faster per core than the forward
records at their 10 ms step; ``benchmarks/walking.py``).

**Finding the gait.** In units of ``l0`` and ``sqrt(l0/g)`` the gait depends on
``K = k l0 / (m g)`` alone (with ``alpha0`` and the height ratio fixed), and smoothly where it
exists. The generator finds it by Newton (:func:`jaxid.find_gait`) at Chebyshev nodes of ``K``
over the priors' range and at the midpoints between them; when every node and midpoint has a
gait and the Chebyshev interpolant reproduces the midpoints' (``vx``, ``vy``, step time and
step length, in those units) to :data:`TABLE_TOL`, each record's gait is the interpolant at its
``K`` (*table* mode). Otherwise each record gets its own Newton solve from the table's guess
(*Newton* mode). Either way the integrated period is checked: the state at the step time must
return to the starting one (``y``; ``vx``, ``vy`` times the step time; and ``x`` to the new foot)
within :data:`PERIODIC_TOL` metres, or the record is rejected as ``"not periodic"``. The stored
observations are float32 (about 1e-6 m at 15 m).

**Prior.** Records are rejected only when their ``K`` has no gait at that height (``"no periodic
gait"``, Newton mode), when the period fails to integrate (the walker's status names) or is not
periodic. Under the default priors every ``K`` has a gait and none is rejected, so the records'
``(m, k, l0)`` follow the stated priors exactly; otherwise the kept distribution is the prior
restricted to the ``K`` that have gaits, and ``GaitDataset.rejected_params`` lists what was
dropped. The starting state depends on the parameters only through ``k/m``, ``l0`` (and
``alpha0``, ``g``): it carries no information on ``m`` that the dynamics do not.

Generation is deterministic given ``seed`` and ``chunk_size`` (chunk ``i`` draws from
``fold_in(key(seed), i)``), runs chunk by chunk with a progress bar and shards every chunk across
the local devices. In table mode a chunk is one compiled program (draws, table, period, samples,
float32 records: nothing is computed on the host between them), and each device integrates its
records in blocks of at most :data:`BLOCK` (see :func:`_block_size`), sorted by period so that each
block's loop stops early, and with a block's loop state in cache.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int
from tqdm.auto import tqdm

from .. import io as jio
from ..errors import check_real_number, require_float64
from ..simulate.chunking import batch_sharding
from ..simulate.events import integrate_knots_batch
from ..typing import Key, TimeGrid
from .gait import find_gait
from .model import STATUS_NAMES, Walker
from .store import StoredDataset, generate_into_store, open_gait_store

DEFAULT_PRIORS = {p: Walker.default_priors[p] for p in ("m", "k", "l0")}
"""The gait study's priors, taken from :attr:`Walker.default_priors`."""
DEFAULT_HEIGHT_RATIO = 0.94
"""Mid-stance height of the periodic gait as a fraction of ``l0`` (a dimensionless choice)."""
NO_GAIT = "no periodic gait"
NOT_PERIODIC = "not periodic"
TABLE_NODES = 32
"""Chebyshev nodes in ``K = k l0/(m g)`` at which the generator solves for the gait."""
TABLE_TOL = 1e-9
"""Largest interpolation error (in units of ``l0``, ``sqrt(g l0)``, ``sqrt(l0/g)``) at the
table's midpoints for the interpolated gaits to be used as they are (table mode)."""
DEFAULT_DT = 0.025
"""The records' integration step in seconds (Dopri8): one period's error against SciPy DOP853 at
rtol 1e-12 was below 3e-9 m at this step (40x below the 1e-7 m the records promise), 1e-11 m at
10 ms and 4e-8 m at 40 ms."""
TABLE_DT = 0.005
"""The gait table's integration step: fine enough that its gaits are those of exact arithmetic to
about 1e-12, so that they interpolate smoothly in ``K`` (a coarser step's error is not smooth in
``K``: the events move relative to the step grid)."""
PERIODIC_TOL = 1e-8
"""Largest return mismatch of a record's integrated period, in metres (see the module docstring)."""

_X, _Y, _VX, _VY, _FR, _FF, _DS = range(7)


@dataclass
class GaitDataset:
    """A gait data set.

    - ``params``: ``(N, 3)`` array of ``(m, k, l0)`` (columns named by ``param_names``).
    - ``obs``: ``(N, time, channel)`` observations (float32), noisy if ``config["noise"] > 0``.
    - ``obs_clean``: the noise-free observations when noise was added, else ``None``.
    - ``ts``: the save times; ``channels``: the channel names.
    - ``initial_states``: ``(N, 7)`` walker states at ``t = 0``: the gait's mid-stance state, foot
      at ``x = 0`` (the record is this state's periodic orbit; see the module docstring).
    - ``gait_eigenvalue``: ``(N,)`` the largest return-map eigenvalue modulus of each record's gait
      (above 1: unstable, so a forward integration would drift off it; the record does not).
    - ``gait_step_time`` [s], ``gait_step_length`` [m]: ``(N,)`` each record's period and the
      distance its CoM (and feet) advance per period.
    - ``rejected``: how many candidate records were rejected, by reason; ``rejected_params``:
      their ``(m, k, l0)``, ``(M, 3)``.
    - ``config``: everything needed to regenerate it (priors, seed, options, versions) and how the
      gaits were found (``config["gait_mode"]``: ``"table"`` or ``"newton"``).
    """

    params: Float[np.ndarray, "batch param"]
    obs: Float[np.ndarray, "batch time channel"]
    ts: Float[np.ndarray, " time"]
    channels: tuple[str, ...]
    initial_states: Float[np.ndarray, "batch 7"]
    gait_eigenvalue: Float[np.ndarray, " batch"]
    rejected: dict[str, int]
    config: dict
    obs_clean: Float[np.ndarray, "batch time channel"] | None = None
    param_names: tuple[str, ...] = field(default=("m", "k", "l0"))
    gait_step_time: Float[np.ndarray, " batch"] | None = None
    gait_step_length: Float[np.ndarray, " batch"] | None = None
    rejected_params: Float[np.ndarray, "rejected param"] | None = None

    def __len__(self) -> int:
        return self.params.shape[0]

    @property
    def rejection_rate(self) -> float:
        """Rejected candidates as a fraction of all candidates drawn (every record of every chunk;
        files written before ``config["candidates"]`` existed: kept plus rejected records)."""
        n_rej = sum(self.rejected.values())
        return n_rej / self.config.get("candidates", n_rej + len(self))

    def save(self, path: str | os.PathLike) -> Path:
        """Write to a ``.npz`` file (arrays plus the configuration as JSON), atomically (a write
        interrupted at any point leaves the previous file or the new one; :mod:`jaxid.io`).
        As :func:`numpy.savez`, ``.npz`` is appended to a ``path`` without it; returns the path
        written (which :func:`load_dataset` also finds from ``path`` itself). The archive's CRC-32
        of every array is checked on load."""
        path = _npz_path(path)
        arrays = dict(
            params=self.params,
            obs=self.obs,
            ts=self.ts,
            initial_states=self.initial_states,
            gait_eigenvalue=self.gait_eigenvalue,
        )
        for name in ("obs_clean", "gait_step_time", "gait_step_length", "rejected_params"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        meta = dict(
            channels=list(self.channels),
            rejected=self.rejected,
            config=self.config,
            param_names=list(self.param_names),
        )
        with jio.atomic_open(path, "wb") as f:
            np.savez(f, meta=np.asarray(json.dumps(meta)), **arrays)
        return path


def _npz_path(path: str | os.PathLike) -> Path:
    """``path`` with ``.npz`` appended when it lacks it (what :func:`numpy.savez` does)."""
    path = Path(path)
    return path if path.name.endswith(".npz") else path.with_name(path.name + ".npz")


_REQUIRED = ("meta", "params", "obs", "ts", "initial_states", "gait_eigenvalue")


def load_dataset(path: str | os.PathLike) -> GaitDataset | StoredDataset:
    """Load a data set written by :meth:`GaitDataset.save` (``path`` with or without the ``.npz``
    that ``save`` appends), or open a store directory written by ``generate_gait_dataset(...,
    store=path)`` lazily (a :class:`jaxid.walker.store.StoredDataset`, read on demand).

    Raises :class:`jaxid.io.CorruptFileError` naming the file if it is empty, truncated, not a
    ``.npz`` archive, an archive without the data set's arrays, or an array whose bytes fail the
    archive's CRC-32 check; ``FileNotFoundError`` if neither ``path`` nor ``path.npz`` exists."""
    given = Path(path)
    path = given
    if not path.exists() and _npz_path(path).exists():
        path = _npz_path(path)
    if not path.exists():
        also = f" (nor {_npz_path(given)})" if _npz_path(given) != given else ""
        raise FileNotFoundError(f"load_dataset: {given} does not exist{also}")
    if path.is_dir():
        from ..data.store import is_store

        if is_store(path):
            return open_gait_store(path)
        raise IsADirectoryError(f"load_dataset: {path} is a directory, not a data set file")
    size = path.stat().st_size
    if size == 0:
        raise jio.CorruptFileError(f"{path} is empty (0 bytes), not a jaxid gait data set (.npz)")
    try:
        f = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise jio.CorruptFileError(
            f"{path} is not a jaxid gait data set: not a readable .npz archive (truncated, corrupted "
            f"or another kind of file; {type(err).__name__}: {err})"
        ) from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise jio.CorruptFileError(
            f"{path} is not a jaxid gait data set: a single .npy array, not a .npz archive"
        )
    with f:
        missing = [name for name in _REQUIRED if name not in f.files]
        if missing:
            raise jio.CorruptFileError(
                f"{path} is not a jaxid gait data set: the archive lacks the arrays {missing} (another "
                "kind of .npz, or a damaged archive)"
            )
        try:
            meta = json.loads(str(f["meta"]))
            arrays = {name: f[name] for name in f.files if name != "meta"}
            channels = tuple(meta["channels"])
            rejected = dict(meta["rejected"])
            config = meta["config"]
            param_names = tuple(meta["param_names"])
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, TypeError) as err:
            raise jio.CorruptFileError(
                f"{path} is corrupted: {type(err).__name__}: {err} (an array or the configuration "
                "fails the archive's CRC-32 check or cannot be read)"
            ) from None
    n = arrays["params"].shape[0] if arrays["params"].ndim else -1
    for name, a in arrays.items():
        if name != "ts" and (a.ndim == 0 or (a.shape[0] != n and name != "rejected_params")):
            raise jio.CorruptFileError(
                f"{path} is corrupted: array {name!r} has shape {a.shape}, not one row per record ({n})"
            )
    return GaitDataset(
        params=arrays["params"],
        obs=arrays["obs"],
        ts=arrays["ts"],
        channels=channels,
        initial_states=arrays["initial_states"],
        gait_eigenvalue=arrays["gait_eigenvalue"],
        rejected=rejected,
        config=config,
        obs_clean=arrays.get("obs_clean"),
        param_names=param_names,
        gait_step_time=arrays.get("gait_step_time"),
        gait_step_length=arrays.get("gait_step_length"),
        rejected_params=arrays.get("rejected_params"),
    )


def add_noise(
    obs: Float[np.ndarray, "*batch time channel"], fraction: float, *, key: Key
) -> Float[np.ndarray, "*batch time channel"]:
    """Gaussian noise with standard deviation ``fraction`` times each channel's standard deviation
    (over all records and times)."""
    if not fraction >= 0:
        raise ValueError(f"add_noise: fraction must be >= 0, got {fraction}")
    sd = np.std(obs, axis=(0, 1), keepdims=True)
    noise = np.asarray(jax.random.normal(key, obs.shape, dtype=jnp.float32))
    return (obs + fraction * sd * noise).astype(obs.dtype)


# ---------------------------------------------------------------------------- the gait table


def _chebyshev(lo, hi, n):
    """Chebyshev points of the first kind on ``[lo, hi]`` and their barycentric weights."""
    j = np.arange(n)
    theta = np.pi * (2 * j + 1) / (2 * n)
    return 0.5 * (lo + hi) + 0.5 * (hi - lo) * np.cos(theta), (-1.0) ** j * np.sin(theta)


def _barycentric(x, nodes, weights, values):
    """The polynomial through ``(nodes, values)`` (values ``(n, q)``) at the points ``x``."""
    x = np.asarray(x, float)
    d = x[:, None] - nodes[None, :]
    hit = d == 0
    d = np.where(hit, 1.0, d)
    w = weights[None, :] / d
    out = (w @ values) / w.sum(axis=1, keepdims=True)
    rows, cols = np.nonzero(hit)
    out[rows] = values[cols]
    return out


@dataclass
class _Table:
    """Gaits of unit walkers (``l0 = 1``) over ``K``: ``(vx, vy) / sqrt(g)``, step time times
    ``sqrt(g)``, step length, and the energy-surface Jacobian (4 entries, scaling-invariant
    eigenvalues); ``exact``: the interpolant reproduced the midpoints (table mode)."""

    nodes: np.ndarray
    weights: np.ndarray
    values: np.ndarray  # (n, 8): vx, vy, T, L, J00, J01, J10, J11 (dimensionless)
    converged: np.ndarray
    exact: bool
    error: float

    def __call__(self, k_ratio):
        if self.exact:
            return _barycentric(k_ratio, self.nodes, self.weights, self.values)
        ok = self.converged
        order = np.argsort(self.nodes[ok])
        xs, vs = self.nodes[ok][order], self.values[ok][order]
        return np.stack([np.interp(k_ratio, xs, vs[:, i]) for i in range(vs.shape[1])], -1)


def _gait_table(k_range, alpha0, g, height_ratio, dt, n=TABLE_NODES) -> _Table:
    """Newton's gaits of unit walkers at ``n`` Chebyshev nodes of ``K`` and the midpoints between
    them (one batched :func:`find_gait` with its speed-grid scan)."""
    lo, hi = k_range
    if hi - lo < 1e-9 * hi:  # one K: widen a little so the nodes are distinct
        lo, hi = lo * (1 - 1e-6), hi * (1 + 1e-6)
    nodes, weights = _chebyshev(lo, hi, n)
    mids = 0.5 * (nodes[1:] + nodes[:-1])
    ks = np.concatenate([nodes, mids])
    m = len(ks)
    unit = Walker(m=np.ones(m), k=ks * g, l0=np.ones(m), alpha0=np.full(m, alpha0), g=np.full(m, g))
    gait = jax.device_get(find_gait(unit, height_ratio=height_ratio, dt0=dt))
    root = np.sqrt(g)
    values = np.stack(
        [
            gait.vx / root,
            gait.vy / root,
            gait.step_time * root,
            gait.step_length,
            *np.moveaxis(np.asarray(gait.energy_jacobian).reshape(m, 4), -1, 0),
        ],
        -1,
    )
    converged = np.asarray(gait.converged)
    if converged[:n].sum() < 2:
        raise RuntimeError(
            "generate_gait_dataset: no periodic gaits found for these priors, alpha0_deg and "
            f"height_ratio={height_ratio}; try another height_ratio (e.g. 0.93 to 0.97)"
        )
    error = math.inf
    if converged.all():
        fit = _barycentric(mids, nodes, weights, values[:n])
        error = float(np.max(np.abs(fit[:, :4] - values[n:, :4])))
    return _Table(nodes, weights, values[:n], converged[:n], bool(error <= TABLE_TOL), error)


# ---------------------------------------------------------------------------- the records


ROOT_ITERATIONS = 3
"""Newton iterations of each event location in the records' period (``root_iterations`` of
:func:`jaxid.simulate.integrate_knots_batch`; the default there is 6). From the linear
interpolation's guess they converge in two: on 8192 records of the default priors, 2, 3 and 4
iterations give the knots of 12 to 1.2e-15 s and 8.2e-15 in the states."""


def _knots(walker, state, step_time, dt, iterations):
    """One period per record: the batch's loop stops when its longest period is done."""
    return integrate_knots_batch(
        walker, state, step_time, iterations, dt0=dt, root_iterations=ROOT_ITERATIONS
    )


def _quintic(p0, p1, v0, v1, a0, a1, h):
    """Monomial coefficients ``(c0, ..., c5)`` in ``s = (t - t0) / h`` of the quintic Hermite
    polynomial through positions ``p``, velocities ``v`` and accelerations ``a`` at both ends of
    an interval of length ``h``: ``c0 = p0, c1 = h v0, c2 = h^2 a0 / 2`` and, with
    ``d = p1 - p0``, ``c3 = 10 d - 6 h v0 - 4 h v1 - (3 a0 - a1) h^2 / 2``,
    ``c4 = -15 d + 8 h v0 + 7 h v1 + (3 a0 - 2 a1) h^2 / 2``,
    ``c5 = 6 d - 3 h v0 - 3 h v1 - (a0 - a1) h^2 / 2``."""
    d, hv0, hv1, ha0, ha1 = p1 - p0, h * v0, h * v1, h * h * a0, h * h * a1
    return (
        p0,
        hv0,
        0.5 * ha0,
        10 * d - 6 * hv0 - 4 * hv1 - 1.5 * ha0 + 0.5 * ha1,
        -15 * d + 8 * hv0 + 7 * hv1 + 1.5 * ha0 - ha1,
        6 * d - 3 * hv0 - 3 * hv1 - 0.5 * ha0 + 0.5 * ha1,
    )


def _knot_accelerations(walker, knots):
    """The CoM acceleration ``(N, K, 2)`` at every knot, from the walker's vector field at the
    knot's own contact state.

    At an event knot this is the acceleration of the new contact state, equal to the old one's to
    the event location's precision: the walker's acceleration is continuous at its switches, where
    the leg that touches down or lifts off is at its rest length and carries no force.
    """

    def one(w, ys):
        return jax.vmap(lambda y: w.vector_field(0.0, y)[_VX : _VY + 1])(ys)

    return jax.vmap(one)(walker, knots.ys)


def _state_components(walker, knots, phase):
    """States at ``phase`` ``(N, S)`` within each record's knots, as the seven components
    ``(N, S)`` (``x, y, vx, vy, foot_rear, foot_front, double_support``), kept apart so that a
    compiled caller computes only those its observations use.

    Between two knots (consecutive integrator steps, never across an event) the position is the
    quintic Hermite polynomial through both knots' positions, velocities and accelerations (the
    walker's acceleration is continuous, also at the switches, where the leg force is zero), and
    the velocity is its derivative. Its error is about ``h^6 x^(6) / 46080``: measured 2e-12 m
    (positions) against a Runge-Kutta step to the same time at ``h = 10`` ms, so about 6e-10 m at
    the default 25 ms, at a small fraction of the cost of a Runge-Kutta step per sample. The
    accelerations are computed once per knot (:func:`_knot_accelerations`), and so are the
    polynomials' monomial coefficients (:func:`_quintic`), which each sample evaluates by Horner's
    rule.

    Each sample's interval comes from a binary search over its record's knot times, unrolled,
    and each quantity the sample needs is gathered on its own, one scalar per sample from a flat
    array: gathers that XLA fuses into the arithmetic that uses them, so that only the quantities
    of the components used are gathered. Measured on one core, the data set's compiled chunk of
    1024 records (151 samples of ``x`` and ``y``): 9.8 ms, against 11.0 ms with the Hermite basis
    evaluated per sample and 13.8 ms with ``jnp.searchsorted`` (a loop) and two gathers of each
    knot's whole row (a gather XLA does not fuse) besides; counting the knots at or before each
    sample (24 comparisons) took 0.25 ms per 256 records against the binary search's 0.17 ms.
    """
    kt = knots.ts
    n, k = kt.shape
    if n * k >= 2**31:  # the flat int32 indices below
        raise ValueError(
            f"periodic records: {n} records of {k} knots exceed the int32 index range; use fewer"
        )
    last = k - 1
    # The last knot at or before each phase, by a binary search unrolled (each probe a scalar
    # gather that XLA fuses with the others); the first knot is at t = 0 <= phase.
    base = (jnp.arange(n, dtype=jnp.int32) * k)[:, None]
    kt_flat = kt.reshape(-1)
    i0 = jnp.zeros(phase.shape, jnp.int32)
    for probe in 2 ** np.arange(int(np.ceil(np.log2(k))) - 1, -1, -1):
        cand = jnp.minimum(i0 + int(probe), last)
        i0 = jnp.where(kt_flat.at[base + cand].get(mode="promise_in_bounds") <= phase, cand, i0)
    flat = base + i0
    acc = _knot_accelerations(walker, knots)
    ys = knots.ys

    def after(values):  # each knot's successor's value (the last knot's own at the end)
        return jnp.concatenate([values[:, 1:], values[:, -1:]], axis=1)

    # Each interval's polynomials, formed once per knot; 1/h is 0 on the empty intervals (a
    # repeated knot, never the one the search picks, and the last knot, held past the period's
    # end), where the polynomial is then its constant term.
    h = after(kt) - kt
    inv_h = jnp.where(h > 0, 1.0 / jnp.where(h > 0, h, 1.0), 0.0)
    names = walker.state_names
    rows = {"t": kt, "inv_h": inv_h, **{name: ys[..., i] for i, name in enumerate(names)}}
    for pos, vel, comp in ((_X, _VX, 0), (_Y, _VY, 1)):
        coefs = _quintic(
            ys[..., pos],
            after(ys[..., pos]),
            ys[..., vel],
            after(ys[..., vel]),
            acc[..., comp],
            after(acc[..., comp]),
            h,
        )
        rows.update({f"{names[pos]}{j}": c for j, c in enumerate(coefs) if j})
    # One table, a row per quantity, formed once; a gather of one of its rows takes one scalar.
    quantities = tuple(rows)
    table = jnp.stack([rows[q] for q in quantities]).reshape(len(quantities), -1)
    row = dict(zip(quantities, table, strict=True))

    def at(name):
        return row[name].at[flat].get(mode="promise_in_bounds")

    inv = at("inv_h")
    u = (phase - at("t")) * inv
    out = [at(q) for q in names]
    for pos, vel in ((_X, _VX), (_Y, _VY)):
        c = [out[pos], *(at(f"{names[pos]}{j}") for j in range(1, 6))]
        position = c[5]
        for j in (4, 3, 2, 1, 0):
            position = position * u + c[j]
        slope = 5 * c[5]
        for j in (4, 3, 2, 1):
            slope = slope * u + j * c[j]
        out[pos] = position
        out[vel] = jnp.where(inv > 0, slope * inv, out[vel])
    return out


def _states(walker, knots, phase):
    """:func:`_state_components` stacked: the states ``(N, S, 7)``."""
    return jnp.stack(_state_components(walker, knots, phase), axis=-1)


def _phases(step_time, ts):
    """Each save time's whole periods ``n`` and phase ``ts - n T`` ``(N, S)`` (``T = step_time``)."""
    period = step_time[:, None]
    n = jnp.floor(ts[None, :] / period)
    return n, jnp.clip(ts[None, :] - n * period, 0.0, period)


def _periodic(walker, state, step_time, ts, dt, iterations, phases=None):
    """One period per record (knots), its states at each save time's phase, tiled. ``phases``:
    :func:`_phases` when computed already (outside a loop over blocks, so that XLA does not
    recompute them in every use)."""
    knots = _knots(walker, state, step_time, dt, iterations)
    end = knots.y_final
    length = end[:, _FF]
    mismatch = jnp.stack(
        [
            end[:, _X] - end[:, _FF],
            end[:, _Y] - state[:, _Y],
            step_time * (end[:, _VX] - state[:, _VX]),
            step_time * (end[:, _VY] - state[:, _VY]),
        ]
    )
    n, phase = _phases(step_time, ts) if phases is None else phases
    c = _state_components(walker, knots, phase)
    # Before the period's touch-down the rear foot is the previous step's, one step behind.
    step = length[:, None]
    first = (c[_DS] < 0.5) & (c[_FF] < 0.5 * step)
    c[_FR] = jnp.where(first, c[_FF] - step, c[_FR])
    shift = n * step
    for i in (_X, _FR, _FF):
        c[i] = c[i] + shift
    # Stacked last, so that the compiled program keeps only the components observed.
    ys = jnp.stack(c, axis=-1)
    obs = jax.vmap(lambda w, y: jax.vmap(w.observe)(ts, y))(walker, ys)
    return ys, obs, knots.status, jnp.max(jnp.abs(mismatch), axis=0), length


def _iterations(step_time_max, dt):
    """Loop iterations for one period: its fixed steps plus two per event, with room to spare."""
    return math.ceil(step_time_max / dt) + 6


@dataclass(frozen=True)
class PeriodicRecords:
    """What :func:`periodic_records` returns (JAX arrays, float64 where the run is).

    - ``ys``: the states ``(batch, time, 7)``;
    - ``obs``: the observations ``(batch, time, channel)``;
    - ``status``: the period's integration status ``(batch,)`` (0: ok);
    - ``mismatch``: the period's return mismatch ``(batch,)`` in metres (how far the end of the
      integrated period is from its start, shifted by one step);
    - ``step_length``: the step length ``(batch,)`` in metres.
    """

    ys: Float[Array, "batch time 7"]
    obs: Float[Array, "batch time channel"]
    status: Int[Array, " batch"]
    mismatch: Float[Array, " batch"]
    step_length: Float[Array, " batch"]


def periodic_records(
    walker: Walker,
    state: Float[ArrayLike, "batch 7"],
    step_time: Float[ArrayLike, " batch"],
    ts: TimeGrid,
    *,
    dt0: float | None = None,
    iterations: int | None = None,
) -> PeriodicRecords:
    """The records of a batch of walkers on their periodic gaits, as the data set makes them.

    ``walker`` holds 1-D parameters; ``state`` ``(N, 7)`` are mid-stance states on the gaits (foot
    at 0) and ``step_time`` ``(N,)`` their periods. One period is integrated (Dopri8, fixed step
    ``dt0``, default the data set's :data:`DEFAULT_DT`) and tiled over ``ts`` (see the module
    docstring).

    **Returns:** a :class:`PeriodicRecords` (``ys``, ``obs``, ``status``, ``mismatch``,
    ``step_length``).

    Differentiable in forward mode (``jax.jvp``, ``jax.jacfwd``) only: the batch's loop is a
    ``lax.while_loop`` that stops with the longest period.
    """
    dt = DEFAULT_DT if dt0 is None else dt0
    walker = walker.broadcast()
    if len(walker.batch_shape) != 1:
        raise ValueError(
            f"periodic_records: walker parameters must be 1-D, got batch shape {walker.batch_shape}"
        )
    step_time = np.asarray(step_time, float)
    if iterations is None:
        iterations = _iterations(float(np.max(step_time)), dt)
    out = _periodic_batch(walker, jnp.asarray(state), jnp.asarray(step_time), jnp.asarray(ts), dt, iterations)
    return PeriodicRecords(*out)


@eqx.filter_jit
def _periodic_batch(walker, state, step_time, ts, dt, iterations):
    return _periodic(walker, state, step_time, ts, dt, iterations)


@eqx.filter_jit
def _chunk_newton(walker, height_ratio, vx_guess, vy_guess, ts, dt, iterations):
    gait = find_gait(
        walker, height_ratio=height_ratio, vx_guess=vx_guess, vy_guess=vy_guess, max_iterations=12, dt0=dt
    )
    step_time = jnp.where(gait.converged, gait.step_time, 1.0)
    state = jnp.where(gait.converged[:, None], gait.state, walker.initial_state(walker.l0, 1.0))
    _, obs, status, mismatch, length = _periodic(walker, state, step_time, ts, dt, iterations)
    return gait.converged, gait.state, gait.max_abs_eigenvalue, step_time, obs, status, mismatch, length


def _barycentric_jnp(x, nodes, weights, values):
    """:func:`_barycentric` in JAX (inside the compiled chunk). The sums over the nodes run in a
    fixed order (not a matrix product, whose order may depend on the batch's layout), so that a
    record's gait does not depend on how the chunk is split over devices."""
    d = x[:, None] - nodes[None, :]
    hit = d == 0
    w = weights[None, :] / jnp.where(hit, 1.0, d)
    num = sum(w[:, j : j + 1] * values[j] for j in range(nodes.shape[0]))
    den = sum(w[:, j : j + 1] for j in range(nodes.shape[0]))
    out = num / den
    exact = jnp.argmax(hit, axis=1)
    return jnp.where(jnp.any(hit, axis=1)[:, None], values[exact], out)


def _max_abs_eigenvalue_2x2(j):
    """``max |lambda|`` of 2x2 matrices given as ``(..., 4)`` rows ``(a, b, c, d)``, closed form:
    ``lambda = tr/2 +- sqrt(tr^2/4 - det)``; a complex pair has ``|lambda|^2 = det``."""
    a, b, c, d = (j[..., i] for i in range(4))
    half = 0.5 * (a + d)
    det = a * d - b * c
    disc = half * half - det
    return jnp.where(disc >= 0, jnp.abs(half) + jnp.sqrt(jnp.maximum(disc, 0.0)), jnp.sqrt(jnp.abs(det)))


def _draw_params(key, lo, hi, chunk):
    """``(m, k, l0)``, ``chunk`` of each, uniform on ``[lo, hi]`` from ``split(key, 3)``."""
    return tuple(
        jax.random.uniform(kk, (chunk,), minval=lo[i], maxval=hi[i], dtype=jnp.float64)
        for i, kk in enumerate(jax.random.split(key, 3))
    )


BLOCK = 256
"""Records integrated together (vectorised) within a chunk: a block's loop state stays in the
core's cache (measured on one core: 42 us per record in blocks of 128 or 256, 52 us for the whole
chunk of 1024 at once, 48 us in blocks of 512)."""


def _block_size(per_device: int) -> int | None:
    """The largest block of at most :data:`BLOCK` records that divides ``per_device`` (``None``:
    no blocks, when that would be under a quarter of :data:`BLOCK`)."""
    if per_device <= BLOCK:
        return None
    parts = math.ceil(per_device / BLOCK)
    while per_device % parts:
        parts += 1
    block = per_device // parts
    return block if block >= BLOCK // 4 else None


@functools.partial(jax.jit, static_argnames=("chunk", "channels", "dt", "iterations", "sharding", "block"))
def _chunk_drawn(
    key, lo, hi, table, alpha0, g, height_ratio, ts, *, chunk, channels, dt, iterations, sharding, block=None
):
    """One chunk in table mode as one program: the draws (``uniform(lo, hi)`` for ``m, k, l0`` from
    ``split(key, 3)``), each record's gait from the table at its ``K``, its period and records
    (float32 observations). ``table``: ``(nodes, weights, values)``. With ``block``, each device's
    records are integrated ``block`` at a time (``lax.map``); a record's numbers do not depend on
    it beyond rounding."""
    m, k, l0 = (jax.lax.with_sharding_constraint(a, sharding) for a in _draw_params(key, lo, hi, chunk))
    kk = k * l0 / (m * g)
    root = jnp.sqrt(g * l0)
    gait = _barycentric_jnp(kk, *table)
    walker = Walker(m=m, k=k, l0=l0, alpha0=jnp.full(chunk, alpha0), g=jnp.full(chunk, g), channels=channels)
    state = walker.initial_state(height_ratio * l0, gait[:, 0] * root, gait[:, 1] * root)
    step_time = gait[:, 2] * l0 / root
    if block is None:
        _, obs, status, mismatch, length = _periodic(walker, state, step_time, ts, dt, iterations)
    else:
        n_dev = len(sharding.device_set)
        per = chunk // n_dev

        def per_device(w, s0, t0):
            # Records sorted by period: each block's loop stops at its own longest period.
            order = jnp.argsort(t0)

            def blocks(a):
                return a[order].reshape(per // block, block, *a.shape[1:])

            n, phase = _phases(t0, ts)
            out = jax.lax.map(
                lambda args: _periodic(*args[:3], ts, dt, iterations, args[3:])[1:],
                (jax.tree.map(blocks, w), blocks(s0), blocks(t0), blocks(n), blocks(phase)),
            )
            inverse = jnp.argsort(order)
            return tuple(a.reshape(per, *a.shape[2:])[inverse] for a in out)

        if n_dev == 1:
            obs, status, mismatch, length = per_device(walker, state, step_time)
        else:
            # One program per device (not a vmap over devices, under which the loop's conditional
            # event location would run on every iteration).
            spec = sharding.spec
            obs, status, mismatch, length = jax.shard_map(
                per_device, mesh=sharding.mesh, in_specs=spec, out_specs=spec, check_vma=False
            )(walker, state, step_time)
    return dict(
        params=jnp.stack([m, k, l0], -1),
        obs=obs.astype(jnp.float32),
        initial_states=state,
        gait_eigenvalue=_max_abs_eigenvalue_2x2(gait[:, 4:]),
        gait_step_time=step_time,
        gait_step_length=length,
        status=status,
        mismatch=mismatch,
    )


def _versions() -> dict:
    import diffrax
    import optax

    from .. import __version__

    return dict(
        jaxid=__version__,
        jax=jax.__version__,
        diffrax=diffrax.__version__,
        equinox=eqx.__version__,
        optax=optax.__version__,
        numpy=np.__version__,
        python=platform.python_version(),
    )


def generate_gait_dataset(
    n: int,
    *,
    seed: int = 0,
    priors: dict[str, tuple[float, float]] | None = None,
    alpha0_deg: float = 69.0,
    g: float = 9.81,
    height_ratio: float = DEFAULT_HEIGHT_RATIO,
    duration: float = 15.0,
    save_dt: float = 0.1,
    channels: Sequence[str] = ("x", "y"),
    noise: float = 0.0,
    chunk_size: int = 1024,
    dt0: float | None = None,
    max_rounds: int = 1000,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
    store: str | os.PathLike | None = None,
) -> GaitDataset | StoredDataset:
    """Generate ``n`` walker records on their periodic gaits (see the module docstring).

    **Arguments:** ``n`` records; ``seed``; ``priors`` for ``m``, ``k``, ``l0`` (uniform ranges;
    defaults :data:`DEFAULT_PRIORS`); ``alpha0_deg`` and ``g`` (shared); ``height_ratio`` (the gait's
    mid-stance height over ``l0``); ``duration`` and ``save_dt`` (the save grid ``0, save_dt, ...,
    duration``); ``channels`` (walker observation channels, e.g. ``("x", "y", "grf_x", "grf_y")``);
    ``noise`` (Gaussian noise sd as a fraction of each channel's sd); ``chunk_size`` (records per
    chunk; part of what makes the data reproducible); ``dt0`` (the records' fixed Dopri8 step,
    default :data:`DEFAULT_DT`, as ``dt0`` of :func:`jaxid.simulate`; the gait table uses
    ``min(dt0, TABLE_DT)``; recorded as ``config["dt"]``); ``max_rounds`` (give up after
    this many chunks); ``devices`` (default all local devices); ``progress``; ``store``: a
    directory to write the records to chunk by chunk (:mod:`jaxid.walker.store`): resumable, in
    bounded memory, and shared by the processes of a ``jax.distributed`` run; the data set is then
    returned as a lazy :class:`jaxid.walker.store.StoredDataset` (same fields, same records as without
    ``store``).

    **Returns:** a :class:`GaitDataset`. The records are reproducible by any accurate integrator:
    each is its gait's periodic orbit, and every step (mid-stance to mid-stance) is what an
    independent integrator started at that step's state gives, to the one-period integration error
    (measured below 3e-9 m at the default step; ``tests/test_data.py`` checks 1e-7 m against SciPy
    on records across the eigenvalue range, and the whole float32 record against SciPy's own gait
    to 2e-6 m).

    Needs float64: call ``jax.config.update("jax_enable_x64", True)`` first.
    """
    where = "generate_gait_dataset"
    require_float64(where)
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"{where}: n must be a positive int, got {n!r}")
    if not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise ValueError(f"{where}: chunk_size must be a positive int, got {chunk_size!r}")
    duration = check_real_number(where, "duration", duration, low=0)
    save_dt = check_real_number(where, "save_dt", save_dt, low=0)
    if save_dt > duration:
        raise ValueError(
            f"{where}: save_dt ({save_dt}) exceeds duration ({duration}); the record would be one sample"
        )
    steps = duration / save_dt
    if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
        raise ValueError(
            f"{where}: save_dt ({save_dt}) must divide duration ({duration}) into whole steps "
            f"(duration / save_dt = {steps:.6g}); the save grid is 0, save_dt, ..., duration"
        )
    noise = check_real_number(where, "noise", noise, low=0, low_open=False)
    if not noise >= 0:
        raise ValueError(f"{where}: noise must be >= 0 (a fraction of each channel's sd), got {noise}")
    if store is not None and noise > 0:
        raise ValueError(
            f"{where}: store= keeps noise-free records only (noise is scaled by each channel's sd over "
            f"the whole data set); got noise={noise}: pass noise=0 and add noise when reading"
        )
    ranges = dict(DEFAULT_PRIORS)
    for name, r in (priors or {}).items():
        if name not in ranges:
            raise ValueError(f"{where}: priors names unknown parameter {name!r}; known: {sorted(ranges)}")
        lo, hi = (float(v) for v in r)
        if not (0 < lo <= hi):
            raise ValueError(f"{where}: prior for {name!r} must satisfy 0 < low <= high, got {r}")
        ranges[name] = (lo, hi)
    # Validates channels, alpha0 and g with the walker's own messages.
    Walker(m=1.0, k=1.0, l0=1.0, alpha0=math.radians(alpha0_deg), g=g, channels=tuple(channels))

    n_save = round(duration / save_dt) + 1
    ts = jnp.linspace(0.0, duration, n_save)
    devices, sharding = batch_sharding(devices)
    chunk = len(devices) * math.ceil(chunk_size / len(devices))
    base_key = jax.random.key(seed)
    alpha0 = math.radians(alpha0_deg)
    k_lo = ranges["k"][0] * ranges["l0"][0] / (ranges["m"][1] * g)
    k_hi = ranges["k"][1] * ranges["l0"][1] / (ranges["m"][0] * g)
    dt = DEFAULT_DT if dt0 is None else dt0
    if not (isinstance(dt, (int, float)) and dt > 0):
        raise ValueError(f"{where}: dt0 must be a positive number of seconds, got {dt!r}")
    started = time.perf_counter()
    table = _gait_table((k_lo, k_hi), alpha0, g, height_ratio, min(dt, TABLE_DT))
    t_max = float(np.max(table.values[table.converged, 2])) * math.sqrt(ranges["l0"][1] / g)
    iterations = _iterations(t_max, dt)

    table_arrays = tuple(jnp.asarray(a) for a in (table.nodes, table.weights, table.values))
    lo = jnp.asarray([ranges[p][0] for p in ("m", "k", "l0")])
    hi = jnp.asarray([ranges[p][1] for p in ("m", "k", "l0")])
    block = _block_size(chunk // len(devices))

    def make_chunk(round_):
        """Chunk ``round_``'s ``chunk`` candidates, from ``fold_in(key(seed), round_)`` alone."""
        round_key = jax.random.fold_in(base_key, round_)
        if table.exact:
            drawn = _chunk_drawn(
                round_key,
                lo,
                hi,
                table_arrays,
                alpha0,
                g,
                height_ratio,
                ts,
                chunk=chunk,
                channels=tuple(channels),
                dt=dt,
                iterations=iterations,
                sharding=sharding,
                block=block,
            )
            # Views of the results (np.asarray; jax.device_get takes 0.2 ms more per chunk).
            c = {name: np.asarray(a) for name, a in drawn.items()}
            status, mismatch = c.pop("status"), c.pop("mismatch")
            converged = np.ones(chunk, bool)
        else:
            drawn = map(np.asarray, _draw_params(round_key, lo, hi, chunk))
            draw = dict(zip(("m", "k", "l0"), drawn, strict=True))
            walker = Walker(
                m=draw["m"],
                k=draw["k"],
                l0=draw["l0"],
                alpha0=np.full(chunk, alpha0),
                g=np.full(chunk, g),
                channels=tuple(channels),
            )
            root = np.sqrt(g * draw["l0"])
            gait = table(draw["k"] * draw["l0"] / (draw["m"] * g))
            guess = jax.device_put((walker, gait[:, 0] * root, gait[:, 1] * root), sharding)
            out = jax.device_get(_chunk_newton(guess[0], height_ratio, *guess[1:], ts, dt, iterations))
            converged, state, eig, step_time, o, status, mismatch, length = out
            c = dict(
                params=np.stack([draw["m"], draw["k"], draw["l0"]], -1),
                obs=np.asarray(o, np.float32),
                initial_states=np.asarray(state),
                gait_eigenvalue=np.asarray(eig),
                gait_step_time=np.asarray(step_time),
                gait_step_length=np.asarray(length),
            )
        periodic = mismatch <= PERIODIC_TOL
        ok = converged & (status == 0) & periodic
        reason = np.where(~converged, NO_GAIT, np.where(status != 0, "", NOT_PERIODIC)).astype(object)
        for code in np.unique(status[converged & (status != 0)]):
            reason[converged & (status == code)] = STATUS_NAMES[int(code)]
        return dict(c, ok=ok, reason=reason, mismatch=np.asarray(mismatch))

    config = dict(
        n=n,
        seed=seed,
        priors={k: list(v) for k, v in ranges.items()},
        alpha0_deg=alpha0_deg,
        g=g,
        height_ratio=height_ratio,
        duration=duration,
        save_dt=save_dt,
        channels=list(channels),
        noise=noise,
        chunk_size=chunk_size,
        dt=dt,
        gait_mode="table" if table.exact else "newton",
        table_nodes=len(table.nodes),
        table_error=table.error if math.isfinite(table.error) else None,
    )
    if store is not None:
        return generate_into_store(
            store,
            make_chunk,
            config=config,
            ts=np.asarray(ts),
            chunk=chunk,
            max_rounds=max_rounds,
            versions=_versions(),
            started=started,
            progress=progress,
        )

    params, obs, states, eigs, periods, lengths, dropped = [], [], [], [], [], [], []
    rejected: dict[str, int] = {}
    have = drawn = 0
    worst = 0.0
    with tqdm(total=n, unit="rec", desc="gait data", disable=not progress) as bar:
        for round_ in range(max_rounds):
            c = make_chunk(round_)
            ok = c["ok"]
            for name in c["reason"][~ok]:
                rejected[name] = rejected.get(name, 0) + 1
            drawn += chunk
            theta = c["params"]
            dropped.append(theta[~ok])
            take = np.flatnonzero(ok)[: n - have]
            kept = len(take)
            if kept and take[-1] == kept - 1:
                take = slice(0, kept)  # the kept records lead the chunk: views, one copy at the end
            worst = max(worst, float(np.max(c["mismatch"][take], initial=0.0)))
            params.append(theta[take])
            obs.append(c["obs"][take])
            states.append(c["initial_states"][take])
            eigs.append(c["gait_eigenvalue"][take])
            periods.append(c["gait_step_time"][take])
            lengths.append(c["gait_step_length"][take])
            have += kept
            bar.update(kept)
            bar.set_postfix(rejected=sum(rejected.values()))
            if have >= n:
                break
        else:
            raise RuntimeError(
                f"{where}: only {have} of {n} records after {max_rounds} chunks (rejected: {rejected}); "
                "check the priors, alpha0_deg and height_ratio"
            )
    obs_all = np.concatenate(obs)
    config = dict(
        **{k: v for k, v in config.items() if k not in ("gait_mode", "table_nodes", "table_error")},
        candidates=drawn,
        **{k: config[k] for k in ("gait_mode", "table_nodes", "table_error")},
        max_mismatch=worst,
        seconds=time.perf_counter() - started,
        versions=_versions(),
    )
    clean = None
    if noise > 0:
        clean = obs_all
        obs_all = add_noise(obs_all, noise, key=jax.random.fold_in(base_key, 2**31 - 1))
    return GaitDataset(
        params=np.concatenate(params),
        obs=obs_all,
        ts=np.asarray(ts),
        channels=tuple(channels),
        initial_states=np.concatenate(states),
        gait_eigenvalue=np.concatenate(eigs),
        rejected=rejected,
        config=config,
        obs_clean=clean,
        gait_step_time=np.concatenate(periods),
        gait_step_length=np.concatenate(lengths),
        rejected_params=np.concatenate(dropped),
    )
