r"""Profile likelihood (Raue et al. 2009), batched over parameters and combinations.

For Gaussian noise, :math:`-2\log L(\theta) = \chi^2(\theta) = \sum_e \|(y_e(\theta) - d_e)/\sigma_e\|^2`
up to a constant. The profile of a quantity :math:`c = a\cdot u` (``u`` the analysis coordinates:
:math:`\log\theta` by default, so :math:`c` is the log of a monomial, or of one parameter when
:math:`a` is a unit vector) is

.. math:: \mathrm{PL}(c) = \min_{u:\; a\cdot u = c} \chi^2(u) - \chi^2(\hat u),

computed on a grid of ``c`` by Levenberg-Marquardt (optimistix) over the other directions,
warm-started from the neighbouring grid point, outward from the estimate on both sides. All
profiles run at once under ``vmap``. Each is classified at the 95 % threshold
:math:`\chi^2_{1, 0.95} = 3.84`:

- *identifiable*: the profile exceeds the threshold on both sides (a finite confidence interval);
- *structurally non-identifiable*: flat (its largest rise stays below ``flat_tol``);
- *practically non-identifiable*: neither (open on at least one side);
- *undecided*: a re-optimisation that did not converge stands where the decision would fall.

Only converged points decide. Walking outward from the estimate, a side is *closed* at the first
converged point above the threshold, *open* when every point converged and none rose above it,
and *undecided* when a point failed first. Failed points are retried once with
:data:`RETRY_FACTOR` times ``max_steps``, cold-started from the estimate, before the
classification; a profile with an undecided side is classified only when the other side settles
it (an open side that rises by ``flat_tol`` or more proves practical non-identifiability).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import ArrayLike, Bool, Float, Real

from ..errors import require_float64
from ..typing import ParamVector, RealScalar
from .combinations import format_linear, format_monomial
from .experiment import Experiment, as_experiments
from .fisher import _check_point, whitened_jacobians

RETRY_FACTOR = 10
"""Failed profile points are retried once with this many times ``max_steps``."""
CHI2_95 = 3.841458820694124
"""The 95 % quantile of the chi-square distribution with one degree of freedom."""

Direction = str | dict[str, float] | Real[ArrayLike, " param"] | Sequence[float]
"""One profiled quantity: a parameter name, a monomial ``{name: exponent}`` (the coefficients of a
linear combination on the natural scale) or a vector of ``p`` coefficients."""

Directions = str | dict[str, float] | Sequence[Direction] | Float[ArrayLike, "direction param"]
"""The profiled quantities: one name or monomial, a sequence of :data:`Direction`, or the
directions as the rows of an array."""


@dataclass(frozen=True)
class Profile:
    """One profile likelihood.

    - ``name``: the profiled quantity (a parameter name or a combination such as ``k/m``);
      ``direction``: its exponent vector (log scale) or coefficient vector (natural scale).
    - ``values``: the grid of the quantity, in natural units; ``estimate``: its value at the
      estimate; ``delta_chi2``: the profile :math:`\\Delta\\chi^2` on the grid (NaN where the
      re-optimisation failed, e.g. a failed simulation).
    - ``theta``: the re-optimised parameters along the grid, shape ``(grid, p)``;
      ``converged``: whether each re-optimisation converged.
    - ``classification``: ``"identifiable"``, ``"practically non-identifiable"``,
      ``"structurally non-identifiable"`` or ``"undecided"`` (a re-optimisation that did not
      converge, even when retried, stands where the decision would fall); ``interval``: the 95 %
      profile-likelihood confidence interval ``(low, high)``, NaN on an open or undecided side.
    """

    name: str
    direction: Float[np.ndarray, " param"]
    values: Float[np.ndarray, " grid"]
    estimate: float
    delta_chi2: Float[np.ndarray, " grid"]
    theta: Float[np.ndarray, "grid param"]
    converged: Bool[np.ndarray, " grid"]
    threshold: float
    classification: str
    interval: tuple[float, float]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "direction": self.direction.tolist(),
            "values": self.values.tolist(),
            "estimate": float(self.estimate),
            "delta_chi2": [None if not np.isfinite(v) else float(v) for v in self.delta_chi2],
            "converged": self.converged.tolist(),
            "threshold": self.threshold,
            "classification": self.classification,
            "interval": [None if not np.isfinite(v) else float(v) for v in self.interval],
        }


def parse_directions(
    directions: Directions | None,
    names: tuple[str, ...],
    where: str,
) -> list[Float[np.ndarray, " param"]]:
    """Directions as vectors: a parameter name, a dict ``{name: exponent}`` or a length-``p``
    sequence of numbers."""
    p = len(names)
    if directions is None:
        return [np.eye(p)[i] for i in range(p)]
    if isinstance(directions, (str, dict)):
        directions = [directions]
    out = []
    for d in directions:
        if isinstance(d, str):
            if d not in names:
                raise ValueError(f"{where}: directions names unknown parameter {d!r}; known: {names}")
            vec = np.eye(p)[names.index(d)]
        elif isinstance(d, dict):
            bad = [k for k in d if k not in names]
            if bad:
                raise ValueError(f"{where}: directions names unknown parameter(s) {bad}; known: {names}")
            vec = np.array([float(d.get(n, 0)) for n in names])
        else:
            vec = np.asarray(d, dtype=float)
            if vec.shape != (p,):
                raise ValueError(
                    f"{where}: a direction must have {p} entries ({names}), got shape {vec.shape}"
                )
        if not np.all(np.isfinite(vec)) or not np.any(vec != 0):
            raise ValueError(f"{where}: a direction must be finite and non-zero, got {vec}")
        out.append(vec)
    return out


def _direction_name(a, names, scale):
    if np.count_nonzero(a) == 1 and a[np.flatnonzero(a)[0]] == 1:
        return names[int(np.flatnonzero(a)[0])]
    if np.allclose(a, np.round(a)):
        ints = [int(v) for v in np.round(a)]
        return format_monomial(ints, names) if scale == "log" else format_linear(ints, names)
    return "(" + ", ".join(f"{v:.3g}" for v in a) + ")"


def _complement(a):
    """Orthonormal basis (columns) of the orthogonal complement of ``a``."""
    q, _ = np.linalg.qr(np.column_stack([a / np.linalg.norm(a), np.eye(len(a))]))
    return q[:, 1:]


@eqx.filter_jit
def _run_profiles(fns, data, sigmas, u_hat, dirs, bases, steps, log, rtol, atol, max_steps):
    """``dirs`` (D, p), ``bases`` (D, p, p-1), ``steps`` (D, 2, K): profile coordinate offsets,
    outward on each side. Returns chi2 (D, 2, K), u (D, 2, K, p), converged (D, 2, K)."""

    def residuals(u):
        theta = jnp.exp(u) if log else u
        parts = [((fn(theta) - d) / s).ravel() for fn, d, s in zip(fns, data, sigmas, strict=True)]
        return jnp.concatenate(parts)

    solver = optx.LevenbergMarquardt(rtol=rtol, atol=atol)

    def one_side(a, basis, ts):
        shift = a / jnp.dot(a, a)

        def point(z, t):
            return u_hat + t * shift + basis @ z

        def step(z, t):
            if basis.shape[1] == 0:
                u = point(z, t)
                r = residuals(u)
                return z, (jnp.sum(r**2), u, jnp.all(jnp.isfinite(r)))
            sol = optx.least_squares(
                lambda zz, _: residuals(point(zz, t)), solver, z, max_steps=max_steps, throw=False
            )
            ok = sol.result == optx.RESULTS.successful
            u = point(sol.value, t)
            r = residuals(u)
            ok = ok & jnp.all(jnp.isfinite(r))
            z_next = jnp.where(ok, sol.value, z)
            return z_next, (jnp.sum(r**2), u, ok)

        z0 = jnp.zeros(basis.shape[1], dtype=u_hat.dtype)
        _, out = jax.lax.scan(step, z0, ts)
        return out

    per_dir = jax.vmap(one_side, in_axes=(None, None, 0))  # both sides
    return jax.vmap(per_dir)(dirs, bases, steps)


def profile_likelihood(
    experiments: Experiment | Sequence[Experiment],
    theta: ParamVector,
    *,
    directions: Directions | None = None,
    names: Sequence[str] | None = None,
    data: Float[ArrayLike, "..."] | Sequence[Float[ArrayLike, "..."]] | None = None,
    scale: str = "log",
    points: int = 21,
    span: RealScalar | Real[ArrayLike, " direction"] | Sequence[float] | None = None,
    crb: RealScalar | Real[ArrayLike, " direction"] | Sequence[float] | None = None,
    threshold: float = CHI2_95,
    flat_tol: float = 0.1,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 100,
) -> list[Profile]:
    r"""Profile likelihoods of parameters or combinations at ``theta``.

    **Arguments:**

    - ``experiments``: an :class:`~jaxid.identify.Experiment` or a list of them.
    - ``theta``: the estimate, shape ``(p,)``. Without ``data`` the data are the noise-free
      observations at ``theta`` (the expected profile, with its minimum 0 at ``theta``); with
      ``data`` (one array per experiment) ``theta`` is first refined to the least-squares fit.
    - ``directions``: what to profile: parameter names, dicts ``{name: exponent}`` (a monomial such
      as ``{"k": 1, "m": -1}`` for ``k/m``; coefficients of a linear combination when
      ``scale="natural"``) or vectors. Default: every parameter.
    - ``scale``: ``"log"`` (profile and re-optimise in log parameters; ``theta`` positive) or
      ``"natural"``.
    - ``points``: grid size (odd, centred on the estimate); ``span``: half-width of the grid in the
      profile coordinate (log units for ``scale="log"``), a number or one per direction. By default
      ``3 sqrt(threshold)`` Cramer-Rao standard deviations where ``crb`` (one per direction, in the
      profile coordinate) is given and finite, capped at ``log(2)`` (natural scale: half the
      estimate's magnitude).
    - ``threshold``: :data:`CHI2_95` (3.84); ``flat_tol``: the largest rise of a flat profile.
    - ``rtol``, ``atol``, ``max_steps``: of :class:`optimistix.LevenbergMarquardt`.

    **Returns:** one :class:`Profile` per direction.
    """
    where = "profile_likelihood"
    require_float64(where)
    experiments = as_experiments(experiments, where)
    if scale not in ("log", "natural"):
        raise ValueError(f"{where}: scale must be 'log' or 'natural', got {scale!r}")
    log = scale == "log"
    theta, names = _check_point(theta, None, experiments, names, where, log=log)
    p = theta.shape[0]
    if not (isinstance(points, int) and points >= 3):
        raise ValueError(f"{where}: points must be an int >= 3, got {points!r}")
    if not threshold > 0:
        raise ValueError(f"{where}: threshold must be > 0, got {threshold!r}")
    dirs = parse_directions(directions, names, where)
    wj = whitened_jacobians(experiments, theta, where=where)
    ys, sigmas = wj.ys, wj.sigmas
    if data is None:
        data = ys
    else:
        data = [np.asarray(d, dtype=float) for d in (data if isinstance(data, (list, tuple)) else [data])]
        if len(data) != len(experiments) or any(d.shape != y.shape for d, y in zip(data, ys, strict=True)):
            raise ValueError(
                f"{where}: data must be one array per experiment with the observations' shapes "
                f"{[y.shape for y in ys]}, got {[d.shape for d in data]}"
            )
    fns = tuple(e.fn for e in experiments)
    u0 = np.log(theta) if log else theta.copy()
    dtype = jnp.result_type(float)
    data_j = tuple(jnp.asarray(d, dtype) for d in data)
    sig_j = tuple(jnp.asarray(s, dtype) for s in sigmas)

    # refine the estimate when real data are given: one "profile" with every direction free
    y_hat = ys
    if any(not np.allclose(d, y) for d, y in zip(data, ys, strict=True)):
        _, fit_u, fit_ok = jax.device_get(
            _run_profiles(
                fns, data_j, sig_j, jnp.asarray(u0, dtype), jnp.zeros((1, p)).at[0, 0].set(1.0),
                jnp.asarray(np.eye(p)[None, :, :]), jnp.zeros((1, 1, 1)), log, rtol, atol, max_steps,
            )
        )  # fmt: skip
        if not fit_ok[0, 0, 0]:
            raise ValueError(f"{where}: fitting theta to the data did not converge; give a better theta")
        u0 = np.asarray(fit_u[0, 0, 0])
        y_hat = whitened_jacobians(experiments, np.exp(u0) if log else u0, where=where).ys

    k = points // 2
    halves = []
    for i, a in enumerate(dirs):
        if span is not None:
            h = float(np.broadcast_to(np.asarray(span, dtype=float), (len(dirs),))[i])
        else:
            cap = np.log(2.0) if log else 0.5 * max(abs(float(a @ u0)), 1e-12)
            c = None if crb is None else float(np.broadcast_to(np.asarray(crb, dtype=float), (len(dirs),))[i])
            h = cap if c is None or not np.isfinite(c) else min(cap, 3 * np.sqrt(threshold) * c)
        if not h > 0:
            raise ValueError(
                f"{where}: span must be > 0, got {h} for direction {_direction_name(a, names, scale)}"
            )
        halves.append(h)
    frac = np.arange(1, k + 1) / k
    steps = np.stack([np.stack([h * frac, -h * frac]) for h in halves])  # (D, 2, K)
    bases = np.stack([_complement(a) for a in dirs])
    chi2, us, ok = jax.device_get(
        _run_profiles(
            fns, data_j, sig_j, jnp.asarray(u0, dtype), jnp.asarray(np.stack(dirs), dtype),
            jnp.asarray(bases, dtype), jnp.asarray(steps, dtype), log, rtol, atol, max_steps,
        )
    )  # fmt: skip
    chi2, us, ok = np.array(chi2), np.array(us), np.array(ok)
    failed = [i for i in range(len(dirs)) if not np.all(ok[i])]
    if failed and max_steps > 0:
        # Retry the directions with a failed point: cold starts (no warm start carries a failure
        # along) with RETRY_FACTOR times the steps, one grid point per scan.
        idx = np.array(failed)
        steps_r = steps[idx]
        chi2_r, us_r, ok_r = jax.device_get(
            _run_profiles(
                fns, data_j, sig_j, jnp.asarray(u0, dtype),
                jnp.asarray(np.repeat(np.stack(dirs)[idx], 2 * k, axis=0), dtype),
                jnp.asarray(np.repeat(bases[idx], 2 * k, axis=0), dtype),
                jnp.asarray(np.repeat(steps_r.reshape(-1, 1, 1), 2, axis=1), dtype),
                log, rtol, atol, RETRY_FACTOR * max_steps,
            )
        )  # fmt: skip
        chi2_r = chi2_r[:, 0, 0].reshape(len(idx), 2, k)
        ok_r = ok_r[:, 0, 0].reshape(len(idx), 2, k)
        us_r = us_r[:, 0, 0].reshape(len(idx), 2, k, p)
        for j, i in enumerate(failed):
            take = ~ok[i] & ok_r[j]
            chi2[i] = np.where(take, chi2_r[j], chi2[i])
            us[i] = np.where(take[..., None], us_r[j], us[i])
            ok[i] = ok[i] | ok_r[j]
    chi2_hat = float(sum(np.sum(((y - d) / s) ** 2) for y, d, s in zip(y_hat, data, sigmas, strict=True)))

    profiles = []
    for i, a in enumerate(dirs):
        left, right = chi2[i, 1][::-1], chi2[i, 0]
        c = np.concatenate([left, [chi2_hat], right])
        conv = np.concatenate([ok[i, 1][::-1], [True], ok[i, 0]])
        c = np.where(conv, c, np.nan)
        u_path = np.concatenate([us[i, 1][::-1], u0[None], us[i, 0]])
        t = np.concatenate([-steps[i, 0][::-1], [0.0], steps[i, 0]])
        centre = float(a @ u0)
        values = np.exp(centre + t) if log else centre + t
        base = np.nanmin(np.append(c, chi2_hat))
        delta = c - base
        cls, interval = _classify(values, delta, conv, k, threshold, flat_tol)
        profiles.append(
            Profile(
                name=_direction_name(a, names, scale),
                direction=a,
                values=values,
                estimate=float(values[k]),
                delta_chi2=delta,
                theta=np.exp(u_path) if log else u_path,
                converged=conv,
                threshold=float(threshold),
                classification=cls,
                interval=interval,
            )
        )
    return profiles


def _side(values, delta, conv, idx, threshold):
    """Walk ``idx`` outward from the estimate: ``("closed", value)`` at the first converged point
    with ``delta >= threshold`` (the crossing interpolated linearly in ``sqrt(delta)``, exact for
    a quadratic profile), ``("open", nan)`` when every point converged below it, ``("undecided",
    nan)`` when an unconverged point comes first."""
    prev = idx[0]
    for j in idx[1:]:
        if not (conv[j] and np.isfinite(delta[j])):
            return "undecided", np.nan
        if delta[j] >= threshold:
            d0, d1 = np.sqrt(max(delta[prev], 0.0)), np.sqrt(delta[j])
            w = (np.sqrt(threshold) - d0) / (d1 - d0) if d1 != d0 else 1.0
            return "closed", float(values[prev] + w * (values[j] - values[prev]))
        prev = j
    return "open", np.nan


def _classify(values, delta, conv, k, threshold, flat_tol):
    """The classification from the converged points only (see the module docstring)."""
    n = len(values)
    sides = [_side(values, delta, conv, list(range(k, -1, -1)), threshold)]
    sides.append(_side(values, delta, conv, list(range(k, n)), threshold))
    interval = (sides[0][1], sides[1][1])
    kinds = [kind for kind, _ in sides]
    if kinds == ["closed", "closed"]:
        return "identifiable", interval
    halves = [slice(0, k + 1), slice(k, n)]
    if np.all(conv) and np.all(np.isfinite(delta)) and np.max(delta) < flat_tol:
        return "structurally non-identifiable", interval
    for kind, half in zip(kinds, halves, strict=True):
        # an open side that rises by flat_tol is not flat: practical, whatever the other side does
        if kind == "open" and np.max(delta[half]) >= flat_tol:
            return "practically non-identifiable", interval
    if "undecided" not in kinds:
        return "practically non-identifiable", interval
    return "undecided", interval
