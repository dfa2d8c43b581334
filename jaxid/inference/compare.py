r"""Learned estimators against the Bayes reference: errors, posterior distances, the angle to the
Fisher null direction, and a verdict per parameter.

For test records with true parameters :math:`\theta_n`, a learned estimator's mean squared error
:math:`L_i` is compared with the Bayes risk :math:`R_i` of the reference posterior on the same
records (:func:`jaxid.inference.bayes_risk`), both as :math:`R^2 = 1 - \mathrm{MSE}/\mathrm{var}
(\theta_i)`. The verdict of parameter :math:`i`:

- **recovered**: the learned :math:`R^2 \ge 0.99`;
- **limited by the data**: at the limit: within ``tol`` (default 0.05) of the Bayes limit's
  :math:`R^2` *and* an error at most ``mse_ratio`` (default 2) times the Bayes risk,
  :math:`1 - R^2 \le 2\,(1 - R^2_{\mathrm{Bayes}})` (on the same records the ratio of the
  :math:`1 - R^2` is the ratio of the mean squared errors): no estimator could do much better from
  these data. The second condition matters where the limit is near 1: an :math:`R^2` of 0.97
  against a limit of 0.9998 is within 0.05 but 150 times the least error;
- **limited by learning**: further below it: the data hold more than the estimator extracted;
- **above the Bayes limit: reference failed**: more than ``tol`` above it, or an error less than
  the Bayes risk divided by ``mse_ratio`` (the same test the other way). The posterior mean is
  the least-error estimator, so no estimator beats it beyond Monte Carlo error: the reference
  posteriors missed the mass that matters (e.g. chains in a wrong mode of a multimodal
  likelihood) and the limit is not to be trusted;
- **inconclusive** (:func:`compare` only): the two rules above hold for the records' averages but
  not beyond their sampling error. On the same records the estimator's excess error is the mean
  of the paired differences :math:`d_n = (\hat\theta_n - \theta_n)^2 - (\bar\theta_n -
  \theta_n)^2` (:math:`\bar\theta_n` the posterior mean), and "limited by learning" needs
  :math:`\bar d - t_{0.975, N-1}\, s_d / \sqrt N` above the at-limit margin
  :math:`\min(\mathrm{tol}\,\mathrm{var}, (\mathrm{mse\_ratio} - 1)\,R)`, "above the Bayes
  limit" the same for :math:`-d` and the margin :math:`\min(\mathrm{tol}\,\mathrm{var},
  (1 - 1/\mathrm{mse\_ratio})\,R)`. An :math:`R^2` over ten records of a parameter the data
  barely identify has a sampling spread of several tenths: such a difference decides nothing.
  "Limited by the data" stays a verdict on the averages (the estimator is not shown to be below
  the limit); ``r2_gap_ci`` says how far below it could be.

For a learned *posterior* (samples per record) two more numbers: the 1-Wasserstein distance
between its marginal and the reference's, in units of the reference's sd (0 for the same
distribution, about :math:`|\Delta\mu|/\sigma` for a shifted one), and, where the Fisher
information is singular, the angle between the learned posterior's principal axis (largest
spread, in log coordinates) and the Fisher null direction: near 0 when the estimator has learned
the ridge, near 90 degrees when it spreads across it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import ArrayLike, Float
from scipy import stats

from .posterior import Posterior
from .risk import bayes_risk

__all__ = ["AT_LIMIT", "MSE_RATIO", "Comparison", "compare", "null_axis_angle", "verdict"]

AT_LIMIT = 0.05
"""R^2 within this of the Bayes limit's counts as at the limit (limited by the data), if the error
is also within :data:`MSE_RATIO` of the Bayes risk."""

MSE_RATIO = 2.0
r"""An error at most this many times the Bayes risk (on the same records) counts as at the limit,
if the R^2 is also within :data:`AT_LIMIT` of the limit's. With 20 records each mean squared error
has a relative sampling error of about :math:`\sqrt{2/20} \approx 0.3`, so their ratio is about
1 +- 0.45 for an estimator at the limit: 2 is about two of those above it."""


def verdict(r2: float, limit_r2: float | None, *, tol: float = AT_LIMIT, mse_ratio: float = MSE_RATIO) -> str:
    """Recovered, limited by the data (at the limit: within ``tol`` of the limit's R^2 and within
    ``mse_ratio`` of its error), limited by learning (below it), or, for an estimator more than
    ``tol`` above the limit or with less than its error over ``mse_ratio``, a failed reference (see
    the module docstring)."""
    if r2 >= 0.99:
        return "recovered"
    if limit_r2 is None or not np.isfinite(limit_r2):
        return "no limit"
    if r2 > limit_r2 + tol or mse_ratio * (1.0 - r2) < 1.0 - limit_r2:
        return "above the Bayes limit: reference failed"
    if r2 >= limit_r2 - tol and 1.0 - r2 <= mse_ratio * (1.0 - limit_r2):
        return "limited by the data"
    return "limited by learning"


NullDirection = Float[ArrayLike, " param"] | Float[ArrayLike, "records param"] | Sequence[float]
"""One null direction ``(param,)`` (an array or a list of numbers) or one per record
``(records, param)``."""


def null_axis_angle(
    samples: Float[ArrayLike, "records draw param"], null_direction: NullDirection, *, log: bool = True
) -> Float[np.ndarray, " records"]:
    """Angle in degrees (0 to 90) between the principal axis (largest spread) of each record's
    samples ``(records, draws, param)`` and a Fisher null direction.

    With ``log=True`` (a scaling symmetry, e.g. ``(1, 1, 0)`` for the walker's ``m, k``) the axis
    is taken in log coordinates and the samples must be positive; with ``log=False`` in natural
    ones (a sum degeneracy ``p1 + p2``: direction ``(1, -1)``). ``null_direction`` is one vector
    ``(param,)`` or one per record ``(records, param)``."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"null_axis_angle: samples must be (records, draws, param), got {x.shape}")
    if log and np.any(x <= 0):
        raise ValueError("null_axis_angle: samples must be positive with log=True (log coordinates)")
    c = np.broadcast_to(np.asarray(null_direction, dtype=np.float64), (x.shape[0], x.shape[-1]))
    norms = np.linalg.norm(c, axis=-1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"null_axis_angle: null_direction must be non-zero vectors of length {x.shape[-1]}")
    c = c / norms
    coords = np.log(x) if log else x
    angles = []
    for rec, direction in zip(coords, c, strict=True):
        _, vecs = np.linalg.eigh(np.cov(rec.T))
        cos = abs(float(vecs[:, -1] @ direction))
        angles.append(np.degrees(np.arccos(min(cos, 1.0))))
    return np.array(angles)


@dataclass(frozen=True)
class Comparison:
    """A learned estimator against the Bayes reference on the same test records.

    - ``names``; ``r2``, ``rmse``: the learned estimator's; ``limit_r2``, ``limit_rmse``,
      ``limit_se``: the Bayes reference's (``limit_se`` the standard error of its MSE);
    - ``verdicts``: ``{name: verdict}``;
    - ``wasserstein``: ``(records, param)`` distance of the learned marginals from the
      reference's in reference sds (``None`` for point estimates);
    - ``null_angle``: ``(records,)`` degrees between the learned posterior's principal axis and
      the Fisher null direction (``None`` unless asked for);
    - ``records``: how many records were compared (those whose reference passed its diagnostics);
    - ``r2_gap_ci``: ``(param, 2)``, the 95 % interval of the estimator's :math:`R^2` minus the
      limit's from the paired per-record errors (negative: below the limit).
    """

    names: tuple[str, ...]
    r2: Float[np.ndarray, " param"]
    rmse: Float[np.ndarray, " param"]
    limit_r2: Float[np.ndarray, " param"]
    limit_rmse: Float[np.ndarray, " param"]
    limit_se: Float[np.ndarray, " param"]
    verdicts: dict[str, str]
    wasserstein: Float[np.ndarray, "records param"] | None
    null_angle: Float[np.ndarray, " records"] | None
    records: int
    r2_gap_ci: Float[np.ndarray, "param 2"] | None = None

    def rows(self) -> list[dict[str, str | float]]:
        """One dict per parameter, for tables and JSON."""
        out = []
        for i, n in enumerate(self.names):
            row = dict(
                target=n,
                r2=float(self.r2[i]),
                rmse=float(self.rmse[i]),
                bayes_r2=float(self.limit_r2[i]),
                bayes_rmse=float(self.limit_rmse[i]),
                verdict=self.verdicts[n],
            )
            if self.r2_gap_ci is not None:
                row["r2_gap_ci"] = [float(v) for v in self.r2_gap_ci[i]]
            if self.wasserstein is not None:
                row["wasserstein_sd"] = float(np.median(self.wasserstein[:, i]))
            out.append(row)
        return out


def compare(
    reference: Posterior,
    theta_true: Float[ArrayLike, "records param"],
    *,
    estimates: Float[ArrayLike, "records param"] | None = None,
    samples: Float[ArrayLike, "records draw param"] | None = None,
    null_direction: NullDirection | None = None,
    log: bool = True,
) -> Comparison:
    """Compare a learned estimator with the Bayes reference posterior ``reference`` of the same
    records.

    Give ``estimates`` ``(records, param)`` (a point estimator) or ``samples``
    ``(records, draws, param)`` (a learned posterior; its mean is the point estimate), in
    ``reference.names`` order, and the true ``theta_true``. ``null_direction`` (log-parameter
    coordinates with ``log=True``, natural ones otherwise; see :func:`null_axis_angle`) adds the
    angle of the learned posterior's principal axis to it.
    """
    where = "compare"
    if (estimates is None) == (samples is None):
        raise ValueError(f"{where}: give exactly one of estimates (point) or samples (posterior)")
    risk = bayes_risk(reference, theta_true)
    used = risk.used
    theta = np.asarray(theta_true, dtype=np.float64)
    shape = reference.mean.shape
    if samples is not None:
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 3 or samples.shape[0] != shape[0] or samples.shape[2] != shape[1]:
            raise ValueError(
                f"{where}: samples must be (records, draws, param) = ({shape[0]}, draws, {shape[1]}), "
                f"got {samples.shape}"
            )
        estimates = samples.mean(axis=1)
    estimates = np.asarray(estimates, dtype=np.float64)
    if estimates.shape != shape:
        raise ValueError(f"{where}: estimates must be (records, param) = {shape}, got {estimates.shape}")
    if not np.all(np.isfinite(estimates)):
        raise ValueError(f"{where}: the learned estimates hold non-finite values")
    err = (estimates - theta)[used]
    var = theta[used].var(axis=0)
    mse = (err**2).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(var > 0, 1.0 - mse / var, np.nan)
    verdicts = {n: verdict(r2[i], risk.r2[i]) for i, n in enumerate(reference.names)}
    # paired per-record differences of the squared errors (the reference's corrected for its
    # Monte Carlo error: bayes_risk's terms): a verdict that is not beyond their sampling error is
    # inconclusive
    diff = err**2 - risk.terms
    n_used = diff.shape[0]
    half = (
        stats.t.ppf(0.975, n_used - 1) * diff.std(axis=0, ddof=1) / np.sqrt(n_used)
        if n_used > 1
        else np.full(shape[1], np.inf)
    )
    for i, name in enumerate(reference.names):
        v, excess, r = verdicts[name], diff[:, i].mean(), max(risk.mse[i], 0.0)
        if v == "limited by learning" and not excess - half[i] > min(AT_LIMIT * var[i], (MSE_RATIO - 1) * r):
            verdicts[name] = (
                f"inconclusive: below the limit, not beyond the sampling error of {n_used} records"
            )
        elif v.startswith("above the Bayes limit") and not -excess - half[i] > min(
            AT_LIMIT * var[i], (1 - 1 / MSE_RATIO) * r
        ):
            verdicts[name] = (
                f"inconclusive: above the limit, not beyond the sampling error of {n_used} records"
            )
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.stack([-(diff.mean(0) + half), -(diff.mean(0) - half)], axis=-1) / var[:, None]
    wasser = angle = None
    if samples is not None:
        ref = reference.flat_samples
        wasser = np.full(shape, np.nan)
        for n in np.flatnonzero(used):
            for i in range(shape[1]):
                sd = max(reference.sd[n, i], 1e-300)
                wasser[n, i] = stats.wasserstein_distance(samples[n, :, i], ref[n, :, i]) / sd
        wasser = wasser[used]
        if null_direction is not None:
            direction = np.asarray(null_direction, dtype=np.float64)
            direction = direction[used] if direction.ndim == 2 else direction
            angle = null_axis_angle(samples[used], direction, log=log)
    return Comparison(
        names=reference.names,
        r2=r2,
        rmse=np.sqrt(mse),
        limit_r2=risk.r2,
        limit_rmse=risk.rmse,
        limit_se=risk.se,
        verdicts=verdicts,
        wasserstein=wasser,
        null_angle=angle,
        records=int(used.sum()),
        r2_gap_ci=gap,
    )
