r"""Calibration of posterior samples: simulation-based calibration ranks and expected coverage.

Given true parameters :math:`\theta_n` drawn from the prior, data :math:`x_n` simulated from them
and :math:`S` posterior samples :math:`\theta_n^{(s)} \sim q(\theta \mid x_n)` for each record,

- the SBC rank (Talts et al. 2018, arXiv:1804.06788) of parameter :math:`j` is
  :math:`r_{nj} = \#\{s : \theta_{nj}^{(s)} < \theta_{nj}\} \in \{0, \dots, S\}`; it is uniform on
  :math:`\{0, \dots, S\}` when :math:`q` is the true posterior. Over-confident posteriors (too
  narrow) pile ranks at both ends (a U shape), under-confident ones in the middle, biased ones
  on one side. :func:`rank_uniformity` tests uniformity with Pearson's chi-square on binned ranks.
- the expected coverage of the central credible interval of level :math:`\alpha` is the fraction
  of records whose true value lies between the :math:`(1-\alpha)/2` and :math:`(1+\alpha)/2`
  sample quantiles; it equals :math:`\alpha` for a calibrated posterior, up to the binomial
  Monte Carlo error :math:`\sqrt{\alpha(1-\alpha)/N}` over :math:`N` records. Below :math:`\alpha`
  is over-confidence, above is under-confidence.

The functions take arrays (``theta_true`` ``(records, param)``, ``samples``
``(records, sample, param)``) from any sampler: a posterior network's ``sample``, MCMC, or
:func:`gaussian_samples` from an ensemble's mean and spread. :func:`calibrate` runs all of them
and returns a :class:`CalibrationResult` that can plot itself (matplotlib is imported only then).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, Real
from scipy import stats

from ..typing import Key

if TYPE_CHECKING:
    import matplotlib.figure

__all__ = [
    "DEFAULT_LEVELS",
    "CalibrationResult",
    "calibrate",
    "expected_coverage",
    "gaussian_samples",
    "rank_uniformity",
    "sbc_ranks",
]

DEFAULT_LEVELS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05, 0.10, ..., 0.95


def _check(theta_true, samples, where: str) -> tuple[Array, Array]:
    theta_true = jnp.asarray(theta_true)
    samples = jnp.asarray(samples)
    if theta_true.ndim != 2:
        raise ValueError(f"{where}: theta_true must have shape (records, param), got {theta_true.shape}")
    n, p = theta_true.shape
    if samples.ndim != 3 or samples.shape[0] != n or samples.shape[2] != p:
        raise ValueError(
            f"{where}: samples must have shape ({theta_true.shape[0]}, sample, {theta_true.shape[1]}) "
            f"to match theta_true {theta_true.shape}, got {samples.shape}"
        )
    if theta_true.shape[0] == 0 or samples.shape[1] == 0:
        raise ValueError(f"{where}: need at least one record and one sample, got samples {samples.shape}")
    if not (bool(jnp.all(jnp.isfinite(theta_true))) and bool(jnp.all(jnp.isfinite(samples)))):
        raise ValueError(f"{where}: theta_true and samples must be finite (found NaN or inf)")
    return theta_true, samples


def _check_levels(levels, where: str, n_samples: int) -> np.ndarray:
    lv = np.asarray(levels, dtype=np.float64).reshape(-1)
    if lv.size == 0 or np.any(~np.isfinite(lv)) or np.any(lv <= 0) or np.any(lv >= 1):
        raise ValueError(f"{where}: levels must be credible levels strictly between 0 and 1, got {levels}")
    top = (n_samples - 1) / (n_samples + 1)
    if np.max(lv) > top + 1e-12:
        raise ValueError(
            f"{where}: {n_samples} samples per record resolve central intervals up to level "
            f"{top:.3g}, but levels go up to {np.max(lv):.3g}; draw at least "
            f"{int(np.ceil(2 / (1 - np.max(lv)) - 1))} samples or lower the levels"
        )
    return lv


def sbc_ranks(
    theta_true: Float[ArrayLike, "records param"], samples: Float[ArrayLike, "records sample param"]
) -> Int[Array, "records param"]:
    r"""SBC ranks: for each record and parameter, the number of posterior samples strictly below
    the true value, :math:`r_{nj} = \#\{s : \theta^{(s)}_{nj} < \theta_{nj}\}`, in ``0..S``.

    Ties (probability zero for a continuous posterior) count as not below."""
    theta_true, samples = _check(theta_true, samples, "sbc_ranks")
    return jnp.sum(samples < theta_true[:, None, :], axis=1)


def _default_bins(n_records: int, n_samples: int) -> int:
    # About 20 records per bin expected (the chi-square approximation wants >= 5), at most 20
    # bins and at most one bin per possible rank.
    return int(max(2, min(20, n_records // 20, n_samples + 1)))


def _bin_ranks(ranks: np.ndarray, n_samples: int, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts ``(bins, param)`` of ranks in ``bins`` groups of consecutive rank values, and the
    probability of each bin under uniform ranks (exact also when ``bins`` does not divide
    ``S + 1``)."""
    which = (ranks * bins) // (n_samples + 1)  # bin of each rank, 0..bins-1
    counts = np.stack([np.bincount(which[:, j], minlength=bins) for j in range(ranks.shape[1])], axis=1)
    per_bin = np.bincount((np.arange(n_samples + 1) * bins) // (n_samples + 1), minlength=bins)
    return counts, per_bin / (n_samples + 1)


def rank_uniformity(
    ranks: Real[ArrayLike, "records param"], n_samples: int, *, bins: int | None = None
) -> tuple[Float[np.ndarray, " param"], Float[np.ndarray, " param"]]:
    r"""Pearson chi-square test that the ranks ``(records, param)`` of each parameter are uniform on
    ``0..n_samples``: ranks are grouped in ``bins`` bins of consecutive values (default about 20
    records per bin, at most 20 bins), with expected counts :math:`N p_b`, and
    :math:`\chi^2 = \sum_b (O_b - N p_b)^2 / (N p_b)` on ``bins - 1`` degrees of freedom.

    Returns ``(chi2, pvalue)``, one of each per parameter. A small p-value says the posterior is
    miscalibrated; a large one only that this many records cannot tell."""
    ranks = np.asarray(ranks)
    if ranks.ndim != 2 or ranks.shape[0] == 0:
        raise ValueError(f"rank_uniformity: ranks must have shape (records, param), got {ranks.shape}")
    if not (isinstance(n_samples, int | np.integer) and n_samples >= 1):
        raise ValueError(f"rank_uniformity: n_samples must be a positive int, got {n_samples!r}")
    if np.any(ranks < 0) or np.any(ranks > n_samples) or not np.all(ranks == np.round(ranks)):
        raise ValueError(f"rank_uniformity: ranks must be integers in 0..{n_samples}")
    bins = _default_bins(ranks.shape[0], n_samples) if bins is None else bins
    if not (isinstance(bins, int) and 2 <= bins <= n_samples + 1):
        raise ValueError(f"rank_uniformity: bins must be an int in 2..{n_samples + 1}, got {bins!r}")
    counts, prob = _bin_ranks(ranks.astype(np.int64), n_samples, bins)
    expected = ranks.shape[0] * prob[:, None]
    chi2 = np.sum((counts - expected) ** 2 / expected, axis=0)
    return chi2, stats.chi2.sf(chi2, bins - 1)


def _quantiles(samples: Array, q: Array) -> Array:
    """Quantiles ``q`` over axis 1 at the plotting positions ``q (S + 1)`` (Weibull's, 1-based),
    linearly interpolated between order statistics: for exchangeable draws the true value falls
    below the ``q`` quantile with probability ``q`` (linear interpolation at ``q (S - 1) + 1``,
    NumPy's default, would make the intervals too narrow by about ``2/(S + 1)``)."""
    s = samples.shape[1]
    ordered = jnp.sort(samples, axis=1)
    pos = jnp.clip(q * (s + 1) - 1, 0, s - 1)  # 0-based
    below = jnp.floor(pos).astype(int)
    above = jnp.minimum(below + 1, s - 1)
    frac = (pos - below)[:, None, None]
    lower = jnp.take(ordered, below, axis=1).transpose(1, 0, 2)
    upper = jnp.take(ordered, above, axis=1).transpose(1, 0, 2)
    return lower + frac * (upper - lower)  # (q, records, param)


def expected_coverage(
    theta_true: Float[ArrayLike, "records param"],
    samples: Float[ArrayLike, "records sample param"],
    levels: Sequence[float] | Float[ArrayLike, " level"] = DEFAULT_LEVELS,
) -> Float[Array, "level param"]:
    r"""For each credible level :math:`\alpha` in ``levels`` and each parameter, the fraction of
    records whose true value lies in the central interval between the :math:`(1-\alpha)/2` and
    :math:`(1+\alpha)/2` quantiles of its ``S`` samples. Equals :math:`\alpha` for a calibrated
    posterior, within :math:`\sqrt{\alpha(1-\alpha)/N}` (one binomial standard deviation over
    ``N`` records).

    The quantiles are taken at the plotting positions :math:`p (S + 1)` between order statistics,
    which makes the coverage of exact posterior samples :math:`\alpha` at every ``S``; a level
    above :math:`(S - 1)/(S + 1)` cannot be resolved by ``S`` samples and is refused."""
    theta_true, samples = _check(theta_true, samples, "expected_coverage")
    lv = _check_levels(levels, "expected_coverage", samples.shape[1])
    lv = jnp.asarray(lv, samples.dtype)
    quant = _quantiles(samples, jnp.concatenate([(1 - lv) / 2, (1 + lv) / 2]))
    lo, hi = quant[: lv.shape[0]], quant[lv.shape[0] :]
    inside = (lo <= theta_true) & (theta_true <= hi)
    return jnp.mean(inside.astype(samples.dtype), axis=1)


def gaussian_samples(
    mean: Float[ArrayLike, "records param"], sd: Float[ArrayLike, "records param"], n: int, *, key: Key
) -> Float[Array, "records sample param"]:
    """``n`` draws per record from independent normals ``N(mean, sd^2)``: posterior samples from
    a point estimate and a spread (e.g. an ensemble's mean and standard deviation), to calibrate
    that spread as if it were a posterior."""
    mean, sd = jnp.asarray(mean), jnp.asarray(sd)
    if mean.ndim != 2 or sd.shape != mean.shape:
        raise ValueError(
            f"gaussian_samples: mean and sd must have the same shape (records, param), got "
            f"{mean.shape} and {sd.shape}"
        )
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"gaussian_samples: n must be a positive int, got {n!r}")
    if bool(jnp.any(sd < 0)):
        raise ValueError("gaussian_samples: sd must be non-negative")
    z = jax.random.normal(key, (mean.shape[0], n, mean.shape[1]), mean.dtype)
    return mean[:, None, :] + sd[:, None, :] * z


@dataclass(frozen=True)
class CalibrationResult:
    r"""What :func:`calibrate` returns.

    - ``names`` of the parameters; ``n_samples`` posterior samples per record (``S``).
    - ``ranks`` ``(records, param)`` in ``0..S``; ``bins``, ``chi2`` and ``pvalue`` (per
      parameter) of the chi-square test of uniform ranks.
    - ``levels`` ``(level,)``, ``coverage`` ``(level, param)`` and ``coverage_sd`` ``(level,)``:
      the binomial standard deviation :math:`\sqrt{\alpha(1-\alpha)/N}` of the coverage of a
      calibrated posterior.
    """

    names: tuple[str, ...]
    n_samples: int
    ranks: Int[np.ndarray, "records param"]
    bins: int
    chi2: Float[np.ndarray, " param"]
    pvalue: Float[np.ndarray, " param"]
    levels: Float[np.ndarray, " level"]
    coverage: Float[np.ndarray, "level param"]
    coverage_sd: Float[np.ndarray, " level"]

    @property
    def n_records(self) -> int:
        return int(self.ranks.shape[0])

    def max_coverage_error(self) -> Float[np.ndarray, " param"]:
        """Per parameter, the largest ``|coverage - level|`` in units of ``coverage_sd``."""
        return np.max(np.abs(self.coverage - self.levels[:, None]) / self.coverage_sd[:, None], axis=0)

    def plot(self, *, band: float = 0.99) -> "matplotlib.figure.Figure":
        """Rank histograms (one panel per parameter, with the ``band`` interval of each bin's count
        under uniform ranks shaded) and the coverage curves against the diagonal (shaded: two
        binomial standard deviations). Returns the matplotlib figure."""
        import matplotlib.pyplot as plt

        p = len(self.names)
        fig, axes = plt.subplots(1, p + 1, figsize=(3.2 * (p + 1), 3.0), squeeze=False)
        axes = axes[0]
        counts, prob = _bin_ranks(self.ranks.astype(np.int64), self.n_samples, self.bins)
        n = self.n_records
        lo = stats.binom.ppf((1 - band) / 2, n, prob)
        hi = stats.binom.ppf((1 + band) / 2, n, prob)
        edges = np.arange(self.bins + 1)
        for j, ax in enumerate(axes[:p]):
            ax.fill_between(edges, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post", color="0.85")
            ax.stairs(counts[:, j], edges, color="C0")
            ax.set_title(f"{self.names[j]}  (p = {self.pvalue[j]:.2g})")
            ax.set_xlabel(f"rank bin ({self.bins} bins of 0..{self.n_samples})")
        axes[0].set_ylabel("records")
        ax = axes[-1]
        lv = np.concatenate([[0.0], self.levels, [1.0]])
        sd = np.concatenate([[0.0], self.coverage_sd, [0.0]])
        ax.fill_between(lv, lv - 2 * sd, lv + 2 * sd, color="0.85")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        for j, name in enumerate(self.names):
            ax.plot(self.levels, self.coverage[:, j], "o-", ms=3, label=name)
        ax.set_xlabel("credible level")
        ax.set_ylabel("expected coverage")
        ax.legend(fontsize="small")
        fig.tight_layout()
        return fig


def calibrate(
    theta_true: Float[ArrayLike, "records param"],
    samples: Float[ArrayLike, "records sample param"],
    *,
    names: Sequence[str] | None = None,
    levels: Sequence[float] | Float[ArrayLike, " level"] = DEFAULT_LEVELS,
    bins: int | None = None,
) -> CalibrationResult:
    """SBC ranks, their uniformity test and the expected coverage of ``samples``
    ``(records, sample, param)`` given the true values ``theta_true`` ``(records, param)``
    (records drawn from the prior, one data set each)."""
    theta_true, samples = _check(theta_true, samples, "calibrate")
    p = theta_true.shape[1]
    names = tuple(f"theta{j}" for j in range(p)) if names is None else tuple(str(n) for n in names)
    if len(names) != p:
        raise ValueError(f"calibrate: {len(names)} names {list(names)} for {p} parameters")
    lv = _check_levels(levels, "calibrate", int(samples.shape[1]))
    n_samples = int(samples.shape[1])
    ranks = np.asarray(sbc_ranks(theta_true, samples))
    bins = _default_bins(ranks.shape[0], n_samples) if bins is None else bins
    chi2, pvalue = rank_uniformity(ranks, n_samples, bins=bins)
    coverage = np.asarray(expected_coverage(theta_true, samples, lv))
    return CalibrationResult(
        names=names,
        n_samples=n_samples,
        ranks=ranks,
        bins=bins,
        chi2=chi2,
        pvalue=pvalue,
        levels=lv,
        coverage=coverage,
        coverage_sd=np.sqrt(lv * (1 - lv) / ranks.shape[0]),
    )
