r"""Convergence diagnostics of Markov chains in NumPy: rank-normalised split R-hat and bulk
effective sample size (Vehtari, Gelman, Simpson, Carpenter and Burkner 2021).

For ``M`` chains of ``N`` draws, each chain is split in half (``2M`` chains of ``N/2``), the
draws pooled and replaced by their normal scores :math:`z = \Phi^{-1}((r - 3/8)/(S + 1/4))`
(ranks :math:`r` among all :math:`S` draws). With :math:`W` the mean within-chain variance and
:math:`B/n` the variance of the chain means,

.. math::

    \hat R = \sqrt{\frac{\frac{n-1}{n} W + B/n}{W}},

computed on the normal scores and on the normal scores of :math:`|x - \mathrm{median}(x)|`
(folded); the larger is reported. The bulk ESS is
:math:`S / (1 + 2\sum_t \hat\rho_t)` on the normal scores, with the autocorrelations
:math:`\hat\rho_t = 1 - (W - \overline{\mathrm{acov}}_t)/\mathrm{var}^+` summed over Geyer's
initial monotone positive sequence. These are the formulas of ArviZ, Stan and blackjax (the tests
compare with blackjax); they are computed here in NumPy because they run once per result, on the
host, where compiling them costs more than evaluating them.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import ArrayLike, Float
from scipy import special, stats

__all__ = ["ess_bulk", "rhat"]


def _split(x: np.ndarray) -> np.ndarray:
    """``(..., chains, draws)`` -> ``(..., 2 chains, draws // 2)`` (a middle draw of an odd count
    is dropped)."""
    n = x.shape[-1] // 2
    return np.concatenate([x[..., :n], x[..., x.shape[-1] - n :]], axis=-2)


def _normal_scores(x: np.ndarray) -> np.ndarray:
    shape = x.shape
    flat = x.reshape((*shape[:-2], -1))
    ranks = stats.rankdata(flat, axis=-1, method="average")
    size = flat.shape[-1]
    return special.ndtri((ranks - 0.375) / (size + 0.25)).reshape(shape)


def _rhat_basic(x: np.ndarray) -> np.ndarray | np.floating:
    n = x.shape[-1]
    within = x.var(axis=-1, ddof=1).mean(axis=-1)
    between = n * x.mean(axis=-1).var(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(((n - 1) / n * within + between / n) / within)


def rhat(x: Float[ArrayLike, "*batch chain draw"]) -> Float[np.ndarray | np.floating, "*batch"]:
    """Rank-normalised split R-hat of ``(..., chains, draws)`` draws, over the last two axes."""
    x = _split(np.asarray(x, dtype=np.float64))
    bulk = _rhat_basic(_normal_scores(x))
    folded = np.abs(x - np.median(x, axis=(-2, -1), keepdims=True))
    tail = _rhat_basic(_normal_scores(folded))
    return np.maximum(bulk, tail)


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of ``(..., chains, draws)`` (Geyer's initial monotone sequence)."""
    m, n = x.shape[-2], x.shape[-1]
    centred = x - x.mean(axis=-1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centred, n=size, axis=-1)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=-1)[..., :n] / n  # biased autocovariance
    chain_var = acov[..., 0] * n / (n - 1.0)
    within = chain_var.mean(axis=-1)
    var_plus = within * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + x.mean(axis=-1).var(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (within[..., None] - acov.mean(axis=-2)) / var_plus[..., None]  # (..., n)
    rho[..., 0] = 1.0
    out = np.empty(rho.shape[:-1])
    for idx in np.ndindex(out.shape):
        r = rho[idx]
        if not np.all(np.isfinite(r)):
            out[idx] = np.nan
            continue
        # pair sums P_k = rho_2k + rho_2k+1, kept while positive, made monotone non-increasing
        pairs = r[: 2 * (n // 2)].reshape(-1, 2).sum(axis=1)
        stop = np.flatnonzero(pairs <= 0)
        pairs = pairs[: stop[0]] if stop.size else pairs
        pairs = np.minimum.accumulate(pairs)
        tau = -1.0 + 2.0 * pairs.sum()
        out[idx] = m * n / max(tau, 1.0 / np.log10(m * n))
    return out


def ess_bulk(x: Float[ArrayLike, "*batch chain draw"]) -> Float[np.ndarray, "*batch"]:
    """Bulk effective sample size of ``(..., chains, draws)`` draws (rank-normalised, split)."""
    return _ess(_normal_scores(_split(np.asarray(x, dtype=np.float64))))
