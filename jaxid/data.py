"""Gait data sets: walker records started on their periodic gaits, saved to and loaded from disk.

:func:`generate_gait_dataset` draws ``(m, k, l0)`` from priors, finds each record's periodic gait
at mid-stance height ``height_ratio * l0`` (:func:`jaxid.find_gait`), simulates it and keeps the
records that walk the whole horizon. Records with no gait, or that fail before the end (the
gaits are mostly unstable, so tiny errors can grow into a fall), are rejected and replaced by new
draws; the data set counts them by reason. Rejection is not uniform over the prior: the gaits with
``K = k l0/(m g)`` near the low end of the default priors are the most unstable (return-map
eigenvalue up to about 2.7 per step) and fail most often (0.6 % of all candidates for 10^4 records
under the default priors). The starting state depends on the parameters only
through ``k/m``, ``l0`` (and ``alpha0``, ``g``): it carries no information on ``m`` that the
dynamics do not.

Generation is deterministic given ``seed`` and ``chunk_size`` (chunk ``i`` draws from
``fold_in(key(seed), i)``), runs chunk by chunk with a progress bar and shards every chunk across
the local devices.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from .chunking import batch_sharding
from .gait import find_gait
from .models.walking import STATUS_NAMES, Walker
from .simulate import simulate

DEFAULT_PRIORS = {p: Walker.default_priors[p] for p in ("m", "k", "l0")}
"""The gait study's priors, taken from :attr:`Walker.default_priors`."""
DEFAULT_HEIGHT_RATIO = 0.94
"""Mid-stance height of the periodic gait as a fraction of ``l0`` (a dimensionless choice)."""
NO_GAIT = "no periodic gait"


@dataclass
class GaitDataset:
    """A gait data set.

    - ``params``: ``(N, 3)`` array of ``(m, k, l0)`` (columns named by ``param_names``).
    - ``obs``: ``(N, time, channel)`` observations (float32), noisy if ``config["noise"] > 0``.
    - ``obs_clean``: the noise-free observations when noise was added, else ``None``.
    - ``ts``: the save times; ``channels``: the channel names.
    - ``initial_states``: ``(N, 7)`` walker states at ``t = 0`` (on the periodic gait).
    - ``gait_eigenvalue``: ``(N,)`` the largest return-map eigenvalue modulus of each record's gait
      (above 1: unstable; rounding errors grow by this factor per step, so records with values
      above about 2 drift visibly off their periodic gait within 15 s).
    - ``rejected``: how many candidate records were rejected, by reason.
    - ``config``: everything needed to regenerate it (priors, seed, options, versions).
    """

    params: np.ndarray
    obs: np.ndarray
    ts: np.ndarray
    channels: tuple[str, ...]
    initial_states: np.ndarray
    gait_eigenvalue: np.ndarray
    rejected: dict[str, int]
    config: dict
    obs_clean: np.ndarray | None = None
    param_names: tuple[str, ...] = field(default=("m", "k", "l0"))

    def __len__(self) -> int:
        return self.params.shape[0]

    @property
    def rejection_rate(self) -> float:
        """Rejected candidates as a fraction of all candidates drawn (every record of every chunk;
        files written before ``config["candidates"]`` existed: kept plus rejected records)."""
        n_rej = sum(self.rejected.values())
        return n_rej / self.config.get("candidates", n_rej + len(self))

    def save(self, path: str | os.PathLike) -> None:
        """Write to a ``.npz`` file (arrays plus the configuration as JSON)."""
        arrays = dict(
            params=self.params,
            obs=self.obs,
            ts=self.ts,
            initial_states=self.initial_states,
            gait_eigenvalue=self.gait_eigenvalue,
        )
        if self.obs_clean is not None:
            arrays["obs_clean"] = self.obs_clean
        meta = dict(
            channels=list(self.channels),
            rejected=self.rejected,
            config=self.config,
            param_names=list(self.param_names),
        )
        np.savez(path, meta=np.asarray(json.dumps(meta)), **arrays)


def load_dataset(path: str | os.PathLike) -> GaitDataset:
    """Load a data set written by :meth:`GaitDataset.save`."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        return GaitDataset(
            params=f["params"],
            obs=f["obs"],
            ts=f["ts"],
            channels=tuple(meta["channels"]),
            initial_states=f["initial_states"],
            gait_eigenvalue=f["gait_eigenvalue"],
            rejected=dict(meta["rejected"]),
            config=meta["config"],
            obs_clean=f["obs_clean"] if "obs_clean" in f.files else None,
            param_names=tuple(meta["param_names"]),
        )


def add_noise(obs: np.ndarray, fraction: float, key) -> np.ndarray:
    """Gaussian noise with standard deviation ``fraction`` times each channel's standard deviation
    (over all records and times)."""
    if not fraction >= 0:
        raise ValueError(f"add_noise: fraction must be >= 0, got {fraction}")
    sd = np.std(obs, axis=(0, 1), keepdims=True)
    noise = np.asarray(jax.random.normal(key, obs.shape, dtype=jnp.float32))
    return (obs + fraction * sd * noise).astype(obs.dtype)


def _gait_table(k_range, alpha0, g, height_ratio, dt, n=48):
    """Dimensionless gait speeds on a grid of ``K = k l0 / (m g)``.

    The walker's gait in units of ``l0`` and ``sqrt(l0/g)`` depends on ``K``, ``alpha0`` and the
    height ratio only, so a small table (found with the speed-grid scan) gives every record a
    Newton starting point a few iterations from its own gait.
    """
    ks = np.linspace(k_range[0], k_range[1], n)
    unit = Walker(m=np.ones(n), k=ks * g, l0=np.ones(n), alpha0=np.full(n, alpha0), g=np.full(n, g))
    gait = jax.device_get(find_gait(unit, height_ratio=height_ratio, dt=dt))
    ok = gait.converged
    if ok.sum() < 2:
        raise RuntimeError(
            "generate_gait_dataset: no periodic gaits found for these priors, alpha0_deg and "
            f"height_ratio={height_ratio}; try another height_ratio (e.g. 0.93 to 0.97)"
        )
    scale = np.sqrt(g)
    return ks[ok], gait.vx[ok] / scale, gait.vy[ok] / scale


@eqx.filter_jit
def _chunk(walker, height_ratio, vx_guess, vy_guess, ts, dt):
    gait = find_gait(
        walker, height_ratio=height_ratio, vx_guess=vx_guess, vy_guess=vy_guess, max_iterations=12, dt=dt
    )
    sim = jax.vmap(lambda w, y0: simulate(w, y0, ts, dt0=dt))(walker, gait.state)
    return gait.converged, gait.state, gait.max_abs_eigenvalue, sim.obs, sim.status


def _versions() -> dict:
    import diffrax
    import optax

    from . import __version__

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
    channels: tuple[str, ...] = ("x", "y"),
    noise: float = 0.0,
    chunk_size: int = 1024,
    dt: float | None = None,
    max_rounds: int = 1000,
    devices: list[jax.Device] | None = None,
    progress: bool = True,
) -> GaitDataset:
    """Generate ``n`` walker records on their periodic gaits (see the module docstring).

    **Arguments:** ``n`` records; ``seed``; ``priors`` for ``m``, ``k``, ``l0`` (uniform ranges;
    defaults :data:`DEFAULT_PRIORS`); ``alpha0_deg`` and ``g`` (shared); ``height_ratio`` (the gait's
    mid-stance height over ``l0``); ``duration`` and ``save_dt`` (the save grid ``0, save_dt, ...,
    duration``); ``channels`` (walker observation channels, e.g. ``("x", "y", "grf_x", "grf_y")``);
    ``noise`` (Gaussian noise sd as a fraction of each channel's sd); ``chunk_size`` (records per
    chunk; part of what makes the data reproducible); ``dt`` (walker integration step);
    ``max_rounds`` (give up after this many chunks); ``devices`` (default all local devices);
    ``progress``.

    Needs float64: call ``jax.config.update("jax_enable_x64", True)`` first.
    """
    where = "generate_gait_dataset"
    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            f'{where}: needs float64; call jax.config.update("jax_enable_x64", True) before using jaxid'
        )
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"{where}: n must be a positive int, got {n!r}")
    if not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise ValueError(f"{where}: chunk_size must be a positive int, got {chunk_size!r}")
    if not duration > 0 or not save_dt > 0:
        raise ValueError(f"{where}: duration and save_dt must be > 0, got {duration}, {save_dt}")
    if not noise >= 0:
        raise ValueError(f"{where}: noise must be >= 0 (a fraction of each channel's sd), got {noise}")
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
    table = _gait_table((k_lo, k_hi), alpha0, g, height_ratio, dt)

    params, obs, states, eigs = [], [], [], []
    rejected: dict[str, int] = {}
    have = drawn = 0
    started = time.perf_counter()
    with tqdm(total=n, unit="rec", desc="gait data", disable=not progress) as bar:
        for round_ in range(max_rounds):
            keys = jax.random.split(jax.random.fold_in(base_key, round_), 3)
            draw = {
                p: np.asarray(jax.random.uniform(kk, (chunk,), minval=ranges[p][0], maxval=ranges[p][1]))
                for p, kk in zip(("m", "k", "l0"), keys, strict=True)
            }
            walker = Walker(
                m=draw["m"],
                k=draw["k"],
                l0=draw["l0"],
                alpha0=np.full(chunk, alpha0),
                g=np.full(chunk, g),
                channels=tuple(channels),
            )
            kk = draw["k"] * draw["l0"] / (draw["m"] * g)
            scale = np.sqrt(g * draw["l0"])
            guess = (np.interp(kk, table[0], table[1]) * scale, np.interp(kk, table[0], table[2]) * scale)
            walker, guess = jax.device_put((walker, guess), sharding)
            converged, state, eig, o, status = jax.device_get(_chunk(walker, height_ratio, *guess, ts, dt))
            ok = converged & (status == 0)
            drawn += chunk
            rejected[NO_GAIT] = rejected.get(NO_GAIT, 0) + int(np.sum(~converged))
            for code in np.unique(status[converged & ~ok]):
                name = STATUS_NAMES[int(code)]
                rejected[name] = rejected.get(name, 0) + int(np.sum(converged & (status == code)))
            take = np.flatnonzero(ok)[: n - have]
            params.append(np.stack([draw["m"], draw["k"], draw["l0"]], -1)[take])
            obs.append(o[take].astype(np.float32))
            states.append(state[take])
            eigs.append(eig[take])
            have += len(take)
            bar.update(len(take))
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
        candidates=drawn,
        seconds=time.perf_counter() - started,
        versions=_versions(),
    )
    clean = None
    if noise > 0:
        clean = obs_all
        obs_all = add_noise(obs_all, noise, jax.random.fold_in(base_key, 2**31 - 1))
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
    )
