r"""The Bayes risk: the least mean squared error any estimator can reach on a test split.

Under squared error the Bayes-optimal estimate of :math:`\theta_i` from a record :math:`y` is
the posterior mean :math:`E[\theta_i \mid y]`, and its risk over records drawn from the prior
predictive,

.. math::

    R_i = E\big[(\theta_i - E[\theta_i \mid y])^2\big],

is the floor of every point estimator's mean squared error on the same records. It is estimated
by the mean over test records of :math:`(\theta_i - \bar\theta_i)^2` with :math:`\bar\theta_i`
the sampled posterior mean. The Monte Carlo error of :math:`\bar\theta_i` adds
:math:`\mathrm{sd}_i^2 / \mathrm{ESS}_i` to each term in expectation; :func:`bayes_risk`
subtracts it and reports the standard error of the estimate over records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import ArrayLike, Bool, Float

from .posterior import Posterior

__all__ = ["BayesRisk", "bayes_risk"]


@dataclass(frozen=True)
class BayesRisk:
    """The Bayes risk per parameter over a test split.

    - ``names``; ``mse`` (corrected for the Monte Carlo error of the posterior means), ``rmse``,
      ``se`` (standard error of ``mse`` over records), ``r2`` (``1 - mse / var(theta)`` over the
      records used), ``mc_variance`` (the subtracted term).
    - ``estimates``: ``(records, param)`` posterior means (NaN for flagged records).
    - ``used``: ``(records,)`` records whose posterior passed its diagnostics; ``n_flagged``.
    - ``terms``: ``(used records, param)`` the per-record squared errors of the posterior means,
      less their Monte Carlo variance (``mse`` is their mean).
    """

    names: tuple[str, ...]
    mse: Float[np.ndarray, " param"]
    rmse: Float[np.ndarray, " param"]
    se: Float[np.ndarray, " param"]
    r2: Float[np.ndarray, " param"]
    mc_variance: Float[np.ndarray, " param"]
    estimates: Float[np.ndarray, "records param"]
    used: Bool[np.ndarray, " records"]
    n_flagged: int
    terms: Float[np.ndarray, "used param"] | None = None

    def as_dict(self) -> dict[str, dict[str, float] | int]:
        return {
            n: dict(
                mse=float(self.mse[i]),
                rmse=float(self.rmse[i]),
                se=float(self.se[i]),
                r2=float(self.r2[i]),
                mc_variance=float(self.mc_variance[i]),
            )
            for i, n in enumerate(self.names)
        } | {"records_used": int(self.used.sum()), "records_flagged": self.n_flagged}


def bayes_risk(
    posterior: Posterior, theta_true: Float[ArrayLike, "records param"], *, include_flagged: bool = False
) -> BayesRisk:
    """The Bayes risk estimated from ``posterior`` (one per test record) and the true parameters
    ``theta_true`` ``(records, param)`` in ``posterior.names`` order.

    Records whose posterior failed its diagnostics (``posterior.ok``) are left out and counted,
    unless ``include_flagged``; with none left a ``ValueError`` is raised.
    """
    where = "bayes_risk"
    if not isinstance(posterior, Posterior):
        raise TypeError(f"{where}: posterior must be a Posterior, got {type(posterior).__name__}")
    theta = np.asarray(theta_true, dtype=np.float64)
    if theta.shape != posterior.mean.shape:
        raise ValueError(
            f"{where}: theta_true must be (records, param) = {posterior.mean.shape} in the order "
            f"{posterior.names}, got {theta.shape}"
        )
    if not np.all(np.isfinite(theta)):
        raise ValueError(f"{where}: theta_true holds non-finite values")
    if posterior.prior is not None:
        inside = posterior.prior.contains(theta)
        if not np.all(inside):
            bad = int(np.flatnonzero(~inside)[0])
            raise ValueError(
                f"{where}: theta_true of record {bad} ({theta[bad]}) lies outside the prior's support "
                f"{posterior.prior.boxes()}: the posterior cannot be its Bayes estimate"
            )
    used = np.ones(theta.shape[0], bool) if include_flagged else np.asarray(posterior.ok, bool)
    if not used.any():
        raise ValueError(f"{where}: no record passed its posterior diagnostics; nothing to average")
    err2 = (theta - posterior.mean)[used] ** 2
    mc = (posterior.sd**2 / np.maximum(posterior.ess, 1.0))[used]
    terms = err2 - mc
    mse = terms.mean(axis=0)
    se = (
        terms.std(axis=0, ddof=1) / np.sqrt(terms.shape[0])
        if terms.shape[0] > 1
        else np.full(len(mse), np.inf)
    )
    var = theta[used].var(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(var > 0, 1.0 - mse / var, np.nan)
    estimates = np.where(used[:, None], posterior.mean, np.nan)
    return BayesRisk(
        names=posterior.names,
        mse=mse,
        rmse=np.sqrt(np.maximum(mse, 0.0)),
        se=se,
        r2=r2,
        mc_variance=mc.mean(axis=0),
        estimates=estimates,
        used=used,
        n_flagged=int((~np.asarray(posterior.ok, bool)).sum()),
        terms=terms,
    )
