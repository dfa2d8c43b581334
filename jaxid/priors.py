r"""Prior distributions over named parameters: independent, one distribution per parameter.

A :class:`Prior` maps parameter names to one-dimensional distributions:

- :class:`Uniform` ``(low, high)``: density :math:`1/(b - a)` on :math:`[a, b]`;
- :class:`LogUniform` ``(low, high)``: :math:`\log\theta` uniform on :math:`[\log a, \log b]`,
  density :math:`1/(\theta \log(b/a))`;
- :class:`Normal` ``(mean, sd, low=-inf, high=inf)``: a normal distribution, truncated to
  ``[low, high]`` when either bound is finite;
- :class:`LogNormal` ``(mu, sigma, low=0, high=inf)``: :math:`\log\theta \sim N(\mu, \sigma^2)`,
  truncated likewise.

Every distribution has ``sample(key, n)``, ``log_prob(x)`` (``-inf`` outside the support) and
``support``; :class:`Prior` has the same for parameter vectors in its name order. A plain
``{name: (low, high)}`` box, the form of every model's ``default_priors``, is read as independent
uniform priors by :func:`as_prior`, so it keeps working wherever a prior is accepted.

The densities and draws are those of ``jax.scipy.stats`` and ``jax.random`` (truncated normals
by ``jax.random.truncated_normal``); the classes add names, supports and the natural coordinate
(``log`` for the log-distributions) that the posterior sampler in :mod:`jaxid.inference` uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import stats
from jaxtyping import Array, ArrayLike, Bool, Float
from scipy import special

from .typing import Key

__all__ = ["Distribution", "LogNormal", "LogUniform", "Normal", "Prior", "Uniform", "as_prior"]


def _real(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a real number, got {value!r}")
    return float(value)


class Distribution(eqx.Module):
    """A one-dimensional distribution with a support ``[low, high]`` (either may be infinite)."""

    log_coordinate: bool = eqx.field(static=True, default=False)

    @property
    def support(self) -> tuple[float, float]:
        raise NotImplementedError

    def sample(self, key: Key, n: int) -> Float[Array, " sample"]:
        raise NotImplementedError

    def log_prob(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        raise NotImplementedError

    def quantile(self, u: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """The inverse distribution function: the value below which a fraction ``u`` in ``(0, 1)``
        of the mass lies (maps uniform draws to draws of this distribution)."""
        raise NotImplementedError

    def mean_sd(self) -> tuple[float, float]:
        """Mean and standard deviation (by quadrature-free closed forms or, for truncated
        distributions, from 20,000 quasi-random draws)."""
        x = np.asarray(self.sample(jax.random.key(0), 20_000), dtype=np.float64)
        return float(x.mean()), float(x.std())


class Uniform(Distribution):
    """Uniform on ``[low, high]``."""

    low: float = eqx.field(static=True)
    high: float = eqx.field(static=True)

    def __init__(self, low: float, high: float):
        self.low, self.high = _real(low, "Uniform: low"), _real(high, "Uniform: high")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"Uniform: needs finite low < high, got ({low}, {high})")
        self.log_coordinate = False

    @property
    def support(self) -> tuple[float, float]:
        return self.low, self.high

    def sample(self, key: Key, n: int) -> Float[Array, " sample"]:
        return jax.random.uniform(key, (n,), minval=self.low, maxval=self.high)

    def log_prob(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        x = jnp.asarray(x)
        inside = (x >= self.low) & (x <= self.high)
        return jnp.where(inside, -math.log(self.high - self.low), -jnp.inf)

    def mean_sd(self) -> tuple[float, float]:
        return 0.5 * (self.low + self.high), (self.high - self.low) / math.sqrt(12.0)

    def quantile(self, u: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """``low + u (high - low)``."""
        return self.low + jnp.asarray(u) * (self.high - self.low)

    def __repr__(self):
        return f"Uniform({self.low:g}, {self.high:g})"


class LogUniform(Distribution):
    """``log(theta)`` uniform on ``[log(low), log(high)]``, ``0 < low < high``."""

    low: float = eqx.field(static=True)
    high: float = eqx.field(static=True)

    def __init__(self, low: float, high: float):
        self.low, self.high = _real(low, "LogUniform: low"), _real(high, "LogUniform: high")
        if not (0 < self.low < self.high < math.inf):
            raise ValueError(f"LogUniform: needs finite 0 < low < high, got ({low}, {high})")
        self.log_coordinate = True

    @property
    def support(self) -> tuple[float, float]:
        return self.low, self.high

    def sample(self, key: Key, n: int) -> Float[Array, " sample"]:
        u = jax.random.uniform(key, (n,), minval=math.log(self.low), maxval=math.log(self.high))
        return jnp.exp(u)

    def log_prob(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        x = jnp.asarray(x)
        inside = (x >= self.low) & (x <= self.high)
        safe = jnp.where(inside, x, 1.0)
        return jnp.where(inside, -jnp.log(safe) - math.log(math.log(self.high / self.low)), -jnp.inf)

    def quantile(self, u: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """``low (high / low)^u``."""
        return jnp.exp(math.log(self.low) + jnp.asarray(u) * math.log(self.high / self.low))

    def __repr__(self):
        return f"LogUniform({self.low:g}, {self.high:g})"


def _truncated(loc, scale, low, high, what):
    loc, scale = _real(loc, f"{what}: location"), _real(scale, f"{what}: scale")
    low, high = _real(low, f"{what}: low"), _real(high, f"{what}: high")
    if not (math.isfinite(loc) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"{what}: needs a finite location and a finite scale > 0, got ({loc}, {scale})")
    if not low < high:
        raise ValueError(f"{what}: needs low < high, got ({low}, {high})")
    a, b = (low - loc) / scale, (high - loc) / scale
    # log of the standard normal mass inside [a, b], stable in either tail
    la, lb = float(special.log_ndtr(a)), float(special.log_ndtr(b))
    log_mass = lb + math.log(-math.expm1(la - lb)) if la < lb else -math.inf
    if not math.isfinite(log_mass):
        raise ValueError(f"{what}: [low, high] = [{low}, {high}] holds no mass of the distribution")
    return loc, scale, low, high, log_mass


def _truncated_ndtri(u, low, high, loc, scale):
    """Standard-normal quantile of ``u`` rescaled to the mass between the standardised bounds."""
    from jax.scipy.special import ndtr, ndtri

    pa = 0.0 if math.isinf(low) else float(ndtr((low - loc) / scale))
    pb = 1.0 if math.isinf(high) else float(ndtr((high - loc) / scale))
    return ndtri(pa + jnp.asarray(u) * (pb - pa))


class Normal(Distribution):
    """Normal with ``mean`` and ``sd``, truncated to ``[low, high]`` when either is finite."""

    mean: float = eqx.field(static=True)
    sd: float = eqx.field(static=True)
    low: float = eqx.field(static=True)
    high: float = eqx.field(static=True)
    log_mass: float = eqx.field(static=True)

    def __init__(self, mean: float, sd: float, low: float = -math.inf, high: float = math.inf):
        self.mean, self.sd, self.low, self.high, self.log_mass = _truncated(mean, sd, low, high, "Normal")
        self.log_coordinate = False

    @property
    def support(self) -> tuple[float, float]:
        return self.low, self.high

    def sample(self, key: Key, n: int) -> Float[Array, " sample"]:
        a, b = (self.low - self.mean) / self.sd, (self.high - self.mean) / self.sd
        return self.mean + self.sd * jax.random.truncated_normal(key, a, b, (n,))

    def log_prob(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        x = jnp.asarray(x)
        inside = (x >= self.low) & (x <= self.high)
        lp = stats.norm.logpdf(x, self.mean, self.sd) - self.log_mass
        return jnp.where(inside, lp, -jnp.inf)

    def mean_sd(self) -> tuple[float, float]:
        if math.isinf(self.low) and math.isinf(self.high):
            return self.mean, self.sd
        return super().mean_sd()

    def quantile(self, u: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        r"""``mean + sd Phi^{-1}(Phi(a) + u (Phi(b) - Phi(a)))``, ``a, b`` the standardised bounds."""
        return self.mean + self.sd * _truncated_ndtri(u, self.low, self.high, self.mean, self.sd)

    def __repr__(self):
        cut = "" if math.isinf(self.low) and math.isinf(self.high) else f", [{self.low:g}, {self.high:g}]"
        return f"Normal({self.mean:g}, {self.sd:g}{cut})"


class LogNormal(Distribution):
    """``log(theta) ~ N(mu, sigma^2)``, truncated to ``[low, high]`` (``0 <= low``)."""

    mu: float = eqx.field(static=True)
    sigma: float = eqx.field(static=True)
    low: float = eqx.field(static=True)
    high: float = eqx.field(static=True)
    log_mass: float = eqx.field(static=True)

    def __init__(self, mu: float, sigma: float, low: float = 0.0, high: float = math.inf):
        low, high = _real(low, "LogNormal: low"), _real(high, "LogNormal: high")
        if low < 0:
            raise ValueError(f"LogNormal: low must be >= 0, got {low}")
        log_low = -math.inf if low == 0 else math.log(low)
        log_high = math.inf if math.isinf(high) else math.log(high)
        self.mu, self.sigma, _, _, self.log_mass = _truncated(mu, sigma, log_low, log_high, "LogNormal")
        self.low, self.high = low, high
        self.log_coordinate = True

    @property
    def support(self) -> tuple[float, float]:
        return self.low, self.high

    def sample(self, key: Key, n: int) -> Float[Array, " sample"]:
        lo = -math.inf if self.low == 0 else math.log(self.low)
        hi = math.log(self.high) if math.isfinite(self.high) else math.inf
        a, b = (lo - self.mu) / self.sigma, (hi - self.mu) / self.sigma
        return jnp.exp(self.mu + self.sigma * jax.random.truncated_normal(key, a, b, (n,)))

    def log_prob(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        x = jnp.asarray(x)
        inside = (x > 0) & (x >= self.low) & (x <= self.high)
        safe = jnp.where(inside, x, 1.0)
        lp = stats.norm.logpdf(jnp.log(safe), self.mu, self.sigma) - jnp.log(safe) - self.log_mass
        return jnp.where(inside, lp, -jnp.inf)

    def quantile(self, u: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        r"""``exp(mu + sigma Phi^{-1}(Phi(a) + u (Phi(b) - Phi(a))))`` on the log bounds ``a, b``."""
        lo = -math.inf if self.low == 0 else math.log(self.low)
        hi = math.log(self.high) if math.isfinite(self.high) else math.inf
        return jnp.exp(self.mu + self.sigma * _truncated_ndtri(u, lo, hi, self.mu, self.sigma))

    def __repr__(self):
        return f"LogNormal({self.mu:g}, {self.sigma:g})"


class Prior(eqx.Module):
    """Independent priors on named parameters, in the order of ``names``.

    ``Prior({"m": Uniform(60, 75), "k": LogUniform(8e3, 1e4)})``; a ``(low, high)`` tuple stands
    for :class:`Uniform`. Vectors ``theta`` have the parameters on their last axis in ``names``
    order.
    """

    names: tuple[str, ...] = eqx.field(static=True)
    dists: tuple[Distribution, ...]

    def __init__(self, dists: Mapping[str, Distribution | tuple[float, float]]):
        if not isinstance(dists, Mapping) or not dists:
            raise TypeError(
                "Prior: give a non-empty mapping {name: distribution or (low, high)}, "
                f"got {type(dists).__name__}"
            )
        names, out = [], []
        for name, d in dists.items():
            if not isinstance(name, str):
                raise TypeError(f"Prior: parameter names must be strings, got {name!r}")
            if isinstance(d, Distribution):
                out.append(d)
            elif isinstance(d, (tuple, list)) and len(d) == 2:
                try:
                    out.append(Uniform(*d))
                except (TypeError, ValueError) as err:
                    raise ValueError(f"Prior: the range for {name!r}: {err}") from None
            else:
                raise TypeError(
                    f"Prior: {name!r} must be a distribution (Uniform, LogUniform, Normal, LogNormal) "
                    f"or a (low, high) range, got {d!r}"
                )
            names.append(name)
        self.names = tuple(names)
        self.dists = tuple(out)

    def __repr__(self):
        return "Prior(" + ", ".join(f"{n}={d!r}" for n, d in zip(self.names, self.dists, strict=True)) + ")"

    def __len__(self):
        return len(self.names)

    def __getitem__(self, name: str) -> Distribution:
        return self.dists[self.index(name)]

    def index(self, name: str) -> int:
        if name not in self.names:
            raise KeyError(f"the prior has no parameter {name!r}; it has {self.names}")
        return self.names.index(name)

    def subset(self, names: Sequence[str]) -> Prior:
        """The prior of ``names`` only, in that order."""
        return Prior({n: self[n] for n in names})

    @property
    def support(self) -> tuple[Float[np.ndarray, " param"], Float[np.ndarray, " param"]]:
        """``(low, high)`` arrays in ``names`` order."""
        lo, hi = zip(*(d.support for d in self.dists), strict=True)
        return np.array(lo, dtype=float), np.array(hi, dtype=float)

    def sample(self, key: Key, n: int) -> Float[Array, "sample param"]:
        """``n`` independent draws, shape ``(n, len(names))``."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"Prior.sample: n must be a positive int, got {n!r}")
        keys = jax.random.split(key, len(self.dists))
        return jnp.stack([d.sample(k, int(n)) for d, k in zip(self.dists, keys, strict=True)], axis=-1)

    def log_prob(self, theta: Float[ArrayLike, "*batch param"]) -> Float[Array, "*batch"]:
        """The joint log-density (``-inf`` outside the support)."""
        theta = jnp.asarray(theta)
        if theta.shape[-1:] != (len(self.names),):
            raise ValueError(
                f"Prior.log_prob: theta needs a last axis of {len(self.names)} ({self.names}), "
                f"got shape {theta.shape}"
            )
        return sum(d.log_prob(theta[..., i]) for i, d in enumerate(self.dists))

    def contains(self, theta: Float[ArrayLike, "*batch param"]) -> Bool[np.ndarray | np.bool_, "*batch"]:
        """Whether each vector lies inside the support."""
        lo, hi = self.support
        theta = np.asarray(theta, dtype=float)
        return np.all((theta >= lo) & (theta <= hi), axis=-1)

    def quantile(self, u: Float[ArrayLike, "*batch param"]) -> Float[Array, "*batch param"]:
        """Each marginal's :meth:`Distribution.quantile` along the last axis: maps points of the
        unit cube to parameter vectors with this prior's distribution."""
        u = jnp.asarray(u)
        return jnp.stack([d.quantile(u[..., i]) for i, d in enumerate(self.dists)], axis=-1)

    def mean_sd(self) -> tuple[Float[np.ndarray, " param"], Float[np.ndarray, " param"]]:
        """Means and standard deviations of the marginals."""
        m, s = zip(*(d.mean_sd() for d in self.dists), strict=True)
        return np.array(m), np.array(s)

    def boxes(self) -> dict[str, tuple[float, float]]:
        """``{name: (low, high)}`` supports, the form :func:`jaxid.nn.scaling_ceiling` takes."""
        return {n: d.support for n, d in zip(self.names, self.dists, strict=True)}


PriorLike = Prior | Mapping[str, Distribution | tuple[float, float]]
"""A :class:`Prior` or a ``{name: distribution or (low, high)}`` mapping (what :func:`as_prior`
reads)."""


def as_prior(prior: PriorLike, names: Sequence[str] | None = None, *, where: str = "prior") -> Prior:
    """A :class:`Prior` from a Prior or a ``{name: distribution or (low, high)}`` mapping,
    restricted to and ordered by ``names`` when given (every name must have a prior)."""
    if not isinstance(prior, Prior):
        if not isinstance(prior, Mapping):
            raise TypeError(
                f"{where}: give a jaxid.priors.Prior or a {{name: (low, high)}} mapping, "
                f"got {type(prior).__name__}"
            )
        prior = Prior(prior)
    if names is not None:
        names = tuple(names)
        missing = [n for n in names if n not in prior.names]
        if missing:
            raise ValueError(f"{where}: no prior for {missing}; the prior has {prior.names}")
        prior = prior.subset(names)
    return prior
