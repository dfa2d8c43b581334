r"""The identifiability ceiling: the best any estimator can do from data that carry only the
identifiable combinations of the parameters.

If the observations are invariant under a one-parameter scaling symmetry
:math:`\theta_i \to \theta_i e^{c_i s}` (a constant null vector :math:`c` of the log-parameter
Jacobian, e.g. :math:`c = (1, 1, 0)` for the walker's ``(m, k, l0)``: ``k/m`` and ``l0`` fixed),
a record tells an estimator only which orbit :math:`\{\theta e^{c s}: s \in \mathbb R\}` its
parameters lie on. The estimator with the least mean squared error is then the posterior mean on
the orbit,

.. math::

    \hat\theta_i = \mathbb E[\theta_i \mid \text{orbit}]
      = \frac{\int \theta_i e^{c_i s}\, p(\theta e^{c s})\, J(s)\, ds}{\int p(\theta e^{c s})\, J(s)\, ds},
    \qquad J(s) = \prod_j \theta_j e^{c_j s},

where :math:`p` is the prior density in natural parameters and :math:`J` the Jacobian of the
log-parameter change of variables (the conditional density along the orbit in :math:`s`). Its
error is the ceiling: a network close to it has extracted all the data hold; a network far from it
is limited by learning, not by the data.

:func:`scaling_ceiling` evaluates the ratio of integrals with Gauss-Legendre quadrature on the part
of the orbit inside the prior's support (independent uniform priors by default; any log-density
through ``log_prior``). For uniform priors the integrand is smooth on that interval, so the
quadrature converges exponentially.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from jaxtyping import ArrayLike, Float


def _orbit_interval(theta: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """``[s_lo, s_hi]`` where every ``theta_i exp(c_i s)`` lies in ``[lo_i, hi_i]``, per record."""
    s_lo = np.full(theta.shape[0], -np.inf)
    s_hi = np.full(theta.shape[0], np.inf)
    for i in np.flatnonzero(c):
        a = (np.log(lo[i]) - np.log(theta[:, i])) / c[i]
        b = (np.log(hi[i]) - np.log(theta[:, i])) / c[i]
        s_lo = np.maximum(s_lo, np.minimum(a, b))
        s_hi = np.minimum(s_hi, np.maximum(a, b))
    return s_lo, s_hi


def scaling_ceiling(
    params: Float[ArrayLike, "records param"],
    scaling: Sequence[float] | Float[ArrayLike, " param"],
    priors: Mapping[str, tuple[float, float]],
    names: Sequence[str],
    *,
    log_prior: Callable[[np.ndarray], np.ndarray] | None = None,
    points: int = 64,
) -> Float[np.ndarray, "records param"]:
    r"""The posterior mean of every parameter given only the scaling orbit each record lies on.

    - ``params``: ``(N, P)`` true parameters (positive), columns in ``names`` order.
    - ``scaling``: the exponent vector :math:`c` of the symmetry (length ``P``; e.g. ``[1, 1, 0]``
      from :attr:`jaxid.identify.Combinations.scaling`).
    - ``priors``: ``{name: (low, high)}`` support of each parameter; with ``log_prior=None`` the
      prior is uniform and independent on these ranges.
    - ``log_prior``: optional log-density of the prior, a function of an ``(..., P)`` array
      (vectorised), used inside the support.
    - ``points``: Gauss-Legendre nodes on each orbit.

    Returns ``(N, P)`` estimates. Parameters with ``c_i = 0`` are returned unchanged (the data
    identify them); a symmetry that leaves the record's orbit entirely outside the support raises.
    """
    where = "scaling_ceiling"
    theta = np.asarray(params, dtype=np.float64)
    names = list(names)
    if theta.ndim != 2 or theta.shape[1] != len(names):
        raise ValueError(f"{where}: params must be (N, {len(names)}) for names {names}, got {theta.shape}")
    if np.any(theta <= 0) or not np.all(np.isfinite(theta)):
        raise ValueError(f"{where}: params must be finite and positive (log coordinates)")
    c = np.asarray(scaling, dtype=np.float64).reshape(-1)
    if c.shape != (len(names),) or not np.any(c):
        raise ValueError(f"{where}: scaling must be a non-zero vector of length {len(names)}, got {scaling}")
    missing = [n for n, ci in zip(names, c, strict=True) if ci != 0 and n not in priors]
    if missing:
        raise ValueError(f"{where}: priors has no range for {missing} (they move along the symmetry)")
    if not (isinstance(points, int) and points >= 2):
        raise ValueError(f"{where}: points must be an int >= 2, got {points!r}")
    lo = np.array([priors[n][0] if n in priors else 0.0 for n in names], dtype=np.float64)
    hi = np.array([priors[n][1] if n in priors else np.inf for n in names], dtype=np.float64)
    for n, l, h, ci in zip(names, lo, hi, c, strict=True):
        if ci != 0 and not (0 < l < h):
            raise ValueError(f"{where}: prior for {n!r} must satisfy 0 < low < high, got ({l}, {h})")

    s_lo, s_hi = _orbit_interval(theta, c, lo, hi)
    if np.any(s_hi < s_lo):
        bad = int(np.flatnonzero(s_hi < s_lo)[0])
        raise ValueError(f"{where}: record {bad} (params {theta[bad]}) lies on an orbit outside the priors")
    nodes, weights = np.polynomial.legendre.leggauss(points)
    half = 0.5 * (s_hi - s_lo)[:, None]
    s = 0.5 * (s_hi + s_lo)[:, None] + half * nodes[None, :]  # (N, Q)
    orbit = theta[:, None, :] * np.exp(c[None, None, :] * s[..., None])  # (N, Q, P)
    log_w = np.sum(np.log(orbit), axis=-1)  # the Jacobian J(s)
    if log_prior is not None:
        log_w = log_w + np.asarray(log_prior(orbit), dtype=np.float64)
    log_w = log_w - log_w.max(axis=1, keepdims=True)
    w = weights[None, :] * np.exp(log_w)
    w = w / w.sum(axis=1, keepdims=True)
    est = np.einsum("nq,nqp->np", w, orbit)
    est[:, c == 0] = theta[:, c == 0]
    # A degenerate orbit (a single point inside the support) has only one value.
    point = (s_hi - s_lo) <= 0
    est[point] = theta[point]
    return est
