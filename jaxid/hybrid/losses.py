r"""The loss terms and regularisers of the hybrid models, each a small pure function.

The models' losses in :mod:`jaxid.hybrid.models` are weighted sums of these terms (and return
each term as a statistic), so that every term can be checked against its equation on its own.
All terms are for one sequence; squared norms are sums over every element.

- :func:`gaussian_kl`: :math:`\mathrm{KL}(\mathcal N(\mu, e^{v}) \,\|\, \mathcal N(\mu_0, e^{v_0}))
  = \frac12\sum_i \big(v_{0,i} - v_i + (e^{v_i} + (\mu_i - \mu_{0,i})^2) e^{-v_{0,i}} - 1\big)`
  (diagonal Gaussians, log-variances ``v``).
- :func:`gaussian_nll`: :math:`-\sum_i \log \mathcal N(x_i; m_i, s_i^2)
  = \sum_i \big(\frac12 ((x_i - m_i)/s_i)^2 + \log s_i + \frac12 \log 2\pi\big)`.
- :func:`squared_distance`: :math:`\|a - b\|^2`, Hybrid-VAE's *unmixing*
  :math:`\|\tilde y - h(x^P)\|^2`, *least-action* :math:`\|y^{hyb} - h(x^P)\|^2` and
  *augmentation* :math:`\|\mu_u(h(x^P(z^*))) - u^*\|^2` terms.
- :func:`trajectory_mse`: APHYNITY's :math:`\mathcal L_{traj} = \frac1{TC}\sum_{t,c}
  (\hat y_{tc} - y_{tc})^2`.
- :func:`network_norm`: APHYNITY's :math:`\|F_a\|^2 = \frac1T\sum_t \|F_a(x_t)\|^2`, the squared
  norm of the network term averaged over the ``T`` save times.
- :func:`multiplier_update`: APHYNITY's :math:`\lambda_{j+1} = \lambda_j + \tau\,\mathcal
  L_{traj,j}` (Yin et al. 2021, Algorithm 1, with the batch's trajectory loss of step ``j``).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ..typing import RealScalar

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl(
    mu: Float[ArrayLike, "*shape"],
    logvar: Float[ArrayLike, "*shape"],
    mu_prior: Float[ArrayLike, "*#shape"] = 0.0,
    logvar_prior: Float[ArrayLike, "*#shape"] = 0.0,
) -> Float[Array, ""]:
    """KL(N(mu, e^logvar) || N(mu_prior, e^logvar_prior)) of diagonal Gaussians, summed over
    dimensions (module docstring). The prior's arguments broadcast against ``mu``."""
    return 0.5 * jnp.sum(
        logvar_prior - logvar + (jnp.exp(logvar) + (mu - mu_prior) ** 2) / jnp.exp(logvar_prior) - 1.0
    )


def gaussian_nll(
    x: Float[ArrayLike, "*shape"], mean: Float[ArrayLike, "*shape"], sd: Float[ArrayLike, "*#shape"]
) -> Float[Array, ""]:
    """Negative log-density of ``x`` under independent ``N(mean, sd^2)``, summed over elements
    (with its constant, so it equals ``-sum(scipy.stats.norm.logpdf(x, mean, sd))``)."""
    z = (x - mean) / sd
    return jnp.sum(0.5 * z**2 + jnp.log(sd) + 0.5 * LOG_2PI)


def squared_distance(a: Float[ArrayLike, "*shape"], b: Float[ArrayLike, "*shape"]) -> Float[Array, ""]:
    """``sum((a - b)^2)`` over every element."""
    return jnp.sum((a - b) ** 2)


def trajectory_mse(pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"]) -> Float[Array, ""]:
    """``mean((pred - y)^2)`` over every element: APHYNITY's trajectory loss."""
    return jnp.mean((pred - y) ** 2)


def network_norm(f_a: Float[ArrayLike, "time state"]) -> Float[Array, ""]:
    """``mean_t sum_i f_a[t, i]^2``: APHYNITY's squared norm of the network term along a trajectory."""
    return jnp.mean(jnp.sum(f_a**2, -1))


def multiplier_update(lam: RealScalar, traj: RealScalar, rate: RealScalar) -> RealScalar:
    """APHYNITY's multiplier after one step: ``lam + rate * traj`` (a Python number for Python
    numbers, else an array)."""
    return lam + rate * traj
