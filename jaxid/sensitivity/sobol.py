r"""Variance-based (Sobol) sensitivity indices with Saltelli sampling.

With independent inputs :math:`X_i` and output :math:`Y = f(X)` of variance :math:`V`, the
first-order index :math:`S_i = V[E(Y|X_i)]/V` is the share of the variance explained by
:math:`X_i` alone, the total index :math:`S_{T_i} = E[V(Y|X_{\sim i})]/V` its share including all
interactions. From two independent sample matrices :math:`A`, :math:`B` (``N`` rows) and the
matrices :math:`A_B^{(i)}` (:math:`A` with column ``i`` from :math:`B`):

.. math::

    S_i \approx \frac{\tfrac1N \sum_j f(B)_j \big(f(A_B^{(i)})_j - f(A)_j\big)}{V} \quad
    \text{(Saltelli et al. 2010)}, \qquad
    S_{T_i} \approx \frac{\tfrac1{2N} \sum_j \big(f(A)_j - f(A_B^{(i)})_j\big)^2}{V} \quad
    \text{(Jansen 1999)},

with :math:`V` the variance of :math:`f(A)` and :math:`f(B)` together and :math:`f` centred on
the mean of all runs: :math:`N (d + 2)` model
runs for ``d`` inputs. :math:`A` and :math:`B` are the two halves of a scrambled Sobol sequence
in :math:`2d` dimensions. Confidence intervals come from a bootstrap over the ``N`` rows. Outputs
may be arrays (a time series, several channels): every output element gets its own indices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from ..errors import check_positive_int, check_real_number, check_user_function
from ..typing import ParamVector
from .sampling import Box, evaluate, sobol_points


@dataclass
class SobolIndices:
    """First-order ``S1`` and total ``ST`` indices, shape ``(param,) + output_shape``, with bootstrap
    confidence intervals ``S1_ci``/``ST_ci`` (``(2, param) + output_shape``: low and high), the
    output variance ``variance`` (``output_shape``), ``names``, ``n`` base samples, ``level`` and
    ``constant``: outputs that do not vary over the samples (their indices are set to 0)."""

    names: tuple[str, ...]
    S1: Float[np.ndarray, " param *out"]
    ST: Float[np.ndarray, " param *out"]
    S1_ci: Float[np.ndarray, "2 param *out"]
    ST_ci: Float[np.ndarray, "2 param *out"]
    variance: Float[np.ndarray | np.floating, "*out"]
    n: int
    level: float
    constant: Bool[np.ndarray | np.bool_, "*out"] | None = None

    def table(self, index: tuple[int, ...] = ()) -> str:
        """A Markdown table of the indices of one output element (default the scalar output)."""
        lines = ["| parameter | S1 | S1 CI | ST | ST CI |", "|---|---|---|---|---|"]
        for i, name in enumerate(self.names):
            s1, st = self.S1[(i, *index)], self.ST[(i, *index)]
            c1, ct = self.S1_ci[(slice(None), i, *index)], self.ST_ci[(slice(None), i, *index)]
            lines.append(
                f"| {name} | {s1:.4f} | [{c1[0]:.4f}, {c1[1]:.4f}] | {st:.4f} | [{ct[0]:.4f}, {ct[1]:.4f}] |"
            )
        return "\n".join(lines)


def saltelli_samples(
    box: Box, n: int, seed: int = 0
) -> tuple[
    Float[np.ndarray, "sample param"],
    Float[np.ndarray, "sample param"],
    Float[np.ndarray, "param sample param"],
]:
    """``A`` and ``B`` (``(n, d)``, in the box) and ``AB`` (``(d, n, d)``: ``AB[i]`` is ``A`` with
    column ``i`` taken from ``B``)."""
    u = sobol_points(n, 2 * box.dim, seed)
    a, b = box.scale(u[:, : box.dim]), box.scale(u[:, box.dim :])
    ab = np.repeat(a[None], box.dim, axis=0)
    for i in range(box.dim):
        ab[i, :, i] = b[:, i]
    return a, b, ab


def check_bootstrap(bootstrap, level, where: str) -> None:
    """``bootstrap`` an int >= 2 (a percentile interval needs resamples), ``level`` in (0, 1)."""
    check_positive_int(where, "bootstrap", bootstrap, minimum=2)
    level = check_real_number(where, "level", level, low=0)
    if not level < 1:
        raise ValueError(f"{where}: level must lie in (0, 1) (e.g. 0.95), got {level!r}")


def indices_from_evaluations(
    f_a: Float[ArrayLike, " sample *out"],
    f_b: Float[ArrayLike, " sample *out"],
    f_ab: Float[ArrayLike, "param sample *out"],
    *,
    names: Sequence[str] | None = None,
    bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> SobolIndices:
    """Sobol indices from model outputs on ``A`` (``(n, ...)``), ``B`` (``(n, ...)``) and ``AB``
    (``(d, n, ...)``), with a bootstrap over rows (``bootstrap`` resamples, ``level`` interval)."""
    check_bootstrap(bootstrap, level, "indices_from_evaluations")
    f_a, f_b, f_ab = (np.asarray(v, dtype=np.float64) for v in (f_a, f_b, f_ab))
    d, n = f_ab.shape[:2]
    if f_a.shape != f_b.shape or f_ab.shape[1:] != f_a.shape:
        raise ValueError(f"indices_from_evaluations: shapes {f_a.shape}, {f_b.shape}, {f_ab.shape} disagree")
    names = tuple(names) if names is not None else tuple(f"x{i + 1}" for i in range(d))
    # Centre on the mean of all runs: the first-order estimator is not shift invariant in a finite
    # sample, and centring lowers its variance (as SALib does).
    centre = (f_a.sum(0) + f_b.sum(0) + f_ab.sum((0, 1))) / ((d + 2) * n)
    f_a, f_b, f_ab = f_a - centre, f_b - centre, f_ab - centre

    out_shape = f_a.shape[1:]
    # Per-row terms, flattened: a bootstrap resample is a vector of row counts, and each estimate a
    # weighted mean, so all resamples are one matrix product.
    t1 = np.moveaxis(f_b[None] * (f_ab - f_a[None]), 1, 0).reshape(n, -1)  # (n, d * out)
    t2 = np.moveaxis((f_a[None] - f_ab) ** 2, 1, 0).reshape(n, -1)
    fa, fb = f_a.reshape(n, -1), f_b.reshape(n, -1)

    def estimate(w):  # w: (R, n) row counts, each row summing to n
        mean = (w @ fa + w @ fb) / (2 * n)
        var = (w @ fa**2 + w @ fb**2) / (2 * n) - mean**2  # (R, out)
        r = len(w)
        with np.errstate(divide="ignore", invalid="ignore"):
            s1 = (w @ t1).reshape(r, d, -1) / n / var[:, None]
            st = 0.5 * (w @ t2).reshape(r, d, -1) / n / var[:, None]
        return s1.reshape(r, d, *out_shape), st.reshape(r, d, *out_shape), var.reshape(r, *out_shape)

    s1, st, var = (v[0] for v in estimate(np.ones((1, n))))
    constant = var <= 1e-14 * max(float(np.max(var)), 1e-300)
    if np.all(constant):
        raise ValueError(
            "indices_from_evaluations: the outputs do not vary over the samples (zero variance): "
            "no sensitivity to apportion"
        )
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=max(bootstrap, 1)).astype(np.float64)
    b1, bt, _ = estimate(counts)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    s1_ci = np.percentile(b1, q, axis=0)
    st_ci = np.percentile(bt, q, axis=0)
    # Outputs that do not vary (e.g. a trajectory's fixed initial state) have no indices: 0, flagged.
    s1, st, s1_ci, st_ci = (np.where(constant, 0.0, np.nan_to_num(v)) for v in (s1, st, s1_ci, st_ci))
    return SobolIndices(names, s1, st, s1_ci, st_ci, var, n, level, constant)


def sobol_indices(
    fn: Callable[[ParamVector], Array],
    bounds: Mapping[str, Sequence[float]],
    n: int = 4096,
    *,
    seed: int = 0,
    bootstrap: int = 200,
    level: float = 0.95,
    chunk_size: int = 8192,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = False,
) -> SobolIndices:
    """First-order and total Sobol indices of ``fn`` (a JAX function of one parameter vector,
    ordered as ``bounds``, returning a scalar or an array) under independent uniform priors
    ``bounds``, from ``n`` base samples (a power of 2): ``n (d + 2)`` evaluations, batched with
    ``vmap`` in chunks of ``chunk_size`` across ``devices``, with a progress bar if ``progress``.
    """
    box = Box(bounds, "sobol_indices")
    if not (isinstance(n, int) and n >= 8):
        raise ValueError(f"sobol_indices: n must be an int >= 8 (a power of 2), got {n!r}")
    check_bootstrap(bootstrap, level, "sobol_indices")
    check_user_function(fn, jnp.asarray(box.low, dtype=float), "sobol_indices", forward=False)
    a, b, ab = saltelli_samples(box, n, seed)
    x = np.concatenate([a, b, ab.reshape(-1, box.dim)])
    y = evaluate(
        fn, x, chunk_size=chunk_size, devices=devices, progress=progress, desc="sobol", where="sobol_indices"
    )
    f_a, f_b, f_ab = y[:n], y[n : 2 * n], y[2 * n :].reshape((box.dim, n, *y.shape[1:]))
    return indices_from_evaluations(
        f_a, f_b, f_ab, names=box.names, bootstrap=bootstrap, level=level, seed=seed
    )
