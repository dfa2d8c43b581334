r"""Identifiability scores of learned latents.

The mean correlation coefficient (MCC) between true latents :math:`z \in \mathbb R^{N\times d}`
and inferred ones :math:`\hat z \in \mathbb R^{N\times e}` (``e >= d``):

.. math::
    C_{ij} = |\mathrm{corr}(z_{\cdot i}, \hat z_{\cdot j})|, \qquad
    \mathrm{MCC} = \max_{\pi} \frac1d \sum_{i=1}^{d} C_{i\,\pi(i)}

over one-to-one assignments :math:`\pi` (Hungarian algorithm,
:func:`scipy.optimize.linear_sum_assignment`). It is 1 when every true latent is an affine
function of its own inferred latent (any permutation, any sign) and near 0 for independent ones.
A column that never varies has correlation 0 with everything.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import ArrayLike, Float, Int
from scipy.optimize import linear_sum_assignment


def correlation_matrix(
    z_true: Float[ArrayLike, " sample *true"], z_est: Float[ArrayLike, " sample *estimated"]
) -> Float[np.ndarray, "true_latent estimated_latent"]:
    """Absolute Pearson correlations ``(d, e)`` between the columns of ``z_true`` and ``z_est``."""
    a = np.asarray(z_true, np.float64)
    b = np.asarray(z_est, np.float64)
    a = a[:, None] if a.ndim == 1 else a
    b = b[:, None] if b.ndim == 1 else b
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(
            f"mcc: z_true and z_est must be (N, d) and (N, e) with the same N, got {a.shape} and {b.shape}"
        )
    if a.shape[0] < 2:
        raise ValueError(f"mcc: need at least 2 samples, got {a.shape[0]}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("mcc: z_true and z_est must be finite (got NaN or inf)")
    a = a - a.mean(0)
    b = b - b.mean(0)
    na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    scale = np.outer(na, nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(scale > 0, np.abs(a.T @ b) / np.where(scale > 0, scale, 1.0), 0.0)
    return np.clip(c, 0.0, 1.0)


def mcc(
    z_true: Float[ArrayLike, " sample *true"],
    z_est: Float[ArrayLike, " sample *estimated"],
    *,
    return_matching: bool = False,
) -> float | tuple[float, Int[np.ndarray, " true_latent"]]:
    """The mean correlation coefficient (module docstring) of ``z_est`` ``(N, e)`` against
    ``z_true`` ``(N, d)``; needs ``e >= d``. With ``return_matching=True`` also returns the
    inferred column matched to each true column."""
    c = correlation_matrix(z_true, z_est)
    if c.shape[1] < c.shape[0]:
        raise ValueError(f"mcc: z_est has {c.shape[1]} columns, fewer than z_true's {c.shape[0]}")
    rows, cols = linear_sum_assignment(-c)
    value = float(c[rows, cols].mean())
    if return_matching:
        return value, cols[np.argsort(rows)]
    return value
