r"""The Bayes reference: posterior samples of any experiment, batched over records.

For experiments :math:`y_e = f_e(\theta) + \epsilon_e`, :math:`\epsilon_e \sim N(0,
\mathrm{diag}\,\sigma_e^2)` (:class:`jaxid.identify.Experiment`) and a prior :math:`p(\theta)`
(:class:`jaxid.priors.Prior`), the posterior of one record is

.. math::

    \log p(\theta \mid y) = \log p(\theta)
        - \tfrac12 \sum_e \big\| (y_e - f_e(\theta)) / \sigma_e \big\|^2 + \text{const}.

:func:`sample_posterior` draws from it by Markov chain Monte Carlo and returns samples with
their diagnostics. Three choices make it work on the posteriors that identifiability produces, a
ridge bounded only by the prior (a scaling symmetry such as the walker's ``m, k -> s m, s k``)
and a sum degeneracy (``p1 + p2``):

1. **Coordinates.** Each parameter is sampled in its natural coordinate :math:`u` (``log``
   :math:`\theta` for log-uniform and log-normal priors, or for every positive parameter with
   ``coords="log"``; :math:`\theta` itself otherwise). The random walk rejects a proposal outside
   the prior's support (density 0), so a ridge that ends at the prior's bounds is sampled as it
   is, without a transform that would bend it. For NUTS a bounded support :math:`[a, b]` is
   folded, :math:`u = a + w - |((z - a) \bmod 2w) - w|` with :math:`w = b - a`: trajectories
   move in unbounded :math:`z` and are reflected at a bound, exactly (the map has slope
   :math:`\pm 1`, so the density in :math:`z` is the posterior repeated by reflection). A scaling
   ridge is straight in log coordinates, a sum degeneracy in linear ones.
2. **Preconditioning from the Fisher information.** Per record, the ``fits`` best of ``starts``
   prior draws each start a Levenberg-Marquardt fit (optimistix) of the whitened residuals (under
   ``vmap``); at the best fit (highest posterior density) the
   Fisher information :math:`F = J^T J` (forward mode, :math:`J` the Jacobian of the whitened
   residuals in :math:`z`) plus the prior's precision :math:`D = \mathrm{diag}(1/\mathrm{var}_p(u))`
   gives the covariance :math:`C = (F + D)^{-1}`. The chains run in whitened coordinates
   :math:`z = z^* + L w`, :math:`L L^T = C`: along identifiable directions :math:`w` has unit
   scale, along a null direction of :math:`F` the scale of the prior. Chains start from
   :math:`w \sim N(0, I)`, spread along the ridge, which makes R-hat meaningful.
3. **The chains** (:mod:`jaxid.inference.kernels`): by default an adaptive random-walk
   Metropolis chain (``method="rwm"``), whose proposal covariance is re-estimated from warm-up
   draws and then fixed; or NUTS with window adaptation from blackjax (``method="nuts"``),
   gradients by forward mode. The kernels module gives the measurement behind the default.
   Chains and records run under ``vmap``, records in chunks over the local devices.

Diagnostics per record and parameter: rank-normalised split R-hat and bulk effective sample size
(Vehtari et al. 2021; :mod:`jaxid.inference.diagnostics`), the acceptance rate (random walk) or the number of
divergent transitions (NUTS; a trajectory that crosses a bound where a ridge meets it obliquely
counts as divergent, since the reflected ridge turns there: this costs efficiency, which the ESS
shows, not correctness). A record is flagged (``ok = False``) when R-hat exceeds ``rhat_max``,
the ESS is below ``ess_min``, or the chains explain the record far worse than its noise allows
(``chi2_pvalue_min``): every chain starts around one fit, so chains that all sit in a side mode
of a multimodal likelihood agree with each other and pass R-hat, but their whitened residuals
are too large. The statistic is the least :math:`\chi^2 = \sum_j r_j^2` among each chain's last
draw and the coordinate-wise posterior median (in the sampling coordinates), ``chains + 1``
evaluations of the model per record; its tail probability is read from :math:`\chi^2_{n - p}`
(``n`` observations, ``p`` parameters; a draw's :math:`\chi^2` exceeds the least one by about
:math:`\chi^2_p`, so this is lenient). It is not the least-squares fit's: on a rank-deficient
problem the fit may stop short of the data (100 Levenberg-Marquardt steps along a flat ridge)
while the chains, started around it, still find the posterior. :func:`bayes_risk` leaves flagged
records out and says how many.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import scipy.stats
from jaxtyping import ArrayLike, Bool, Float, Int

from ..errors import NonFiniteError, check_positive_int, require_float64
from ..identify.experiment import Experiment, as_experiments
from ..priors import Prior, PriorLike, as_prior
from ..simulate.chunking import map_chunked
from ..typing import Key
from . import diagnostics
from .kernels import nuts_chain, rwm_chain

__all__ = ["Posterior", "sample_posterior"]


@dataclass(frozen=True)
class Posterior:
    r"""Posterior samples of a batch of records and their diagnostics.

    - ``names``: the parameters, in the order of the last axis; ``prior``: their prior (``None``
      for the derived quantities of :meth:`transform`).
    - ``samples``: ``(records, chains, draws, param)`` in natural units.
    - ``mean``, ``sd``: ``(records, param)`` over all chains and draws.
    - ``rhat``, ``ess``: ``(records, param)``, rank-normalised split R-hat and bulk ESS.
    - ``acceptance``: ``(records,)`` mean acceptance rate of the kept random-walk steps (NaN for
      NUTS); ``divergences``: ``(records,)`` divergent NUTS transitions after warm-up (0 for the
      random walk).
    - ``ok``: ``(records,)`` whether R-hat, ESS and the chains' residuals passed (see the module
      docstring and ``sample_posterior``'s ``chi2_pvalue_min``).
    - ``start``: ``(records, param)`` the least-squares fit the chains were preconditioned at.
    - ``chi2``: ``(records,)`` the least sum of squared whitened residuals among each chain's last
      draw and the posterior median; ``chi2_pvalue``: ``(records,)`` its tail probability under
      :math:`\chi^2_{n - p}` (module docstring; ``sample_posterior``'s ``chi2_pvalue_min``).
    - ``scale``: ``(records, chains)`` the adapted proposal scale (random walk) or step size
      (NUTS); ``seconds``: wall time; ``settings``: the options used.
    """

    names: tuple[str, ...]
    prior: Prior | None
    samples: Float[np.ndarray, "records chain draw param"]
    mean: Float[np.ndarray, "records param"]
    sd: Float[np.ndarray, "records param"]
    rhat: Float[np.ndarray, "records param"]
    ess: Float[np.ndarray, "records param"]
    acceptance: Float[np.ndarray, " records"]
    divergences: Int[np.ndarray, " records"]
    ok: Bool[np.ndarray, " records"]
    start: Float[np.ndarray, "records param"]
    chi2: Float[np.ndarray, " records"]
    chi2_pvalue: Float[np.ndarray, " records"]
    scale: Float[np.ndarray, "records chain"]
    seconds: float
    settings: dict[str, Any]

    @property
    def n_records(self) -> int:
        return self.samples.shape[0]

    @property
    def flat_samples(self) -> Float[np.ndarray, "records sample param"]:
        """``(records, chains * draws, param)``."""
        r, c, d, p = self.samples.shape
        return self.samples.reshape(r, c * d, p)

    def interval(
        self, level: float = 0.9
    ) -> tuple[Float[np.ndarray, "records param"], Float[np.ndarray, "records param"]]:
        """Central credible interval at ``level``: ``(low, high)``, each ``(records, param)``."""
        if not 0 < level < 1:
            raise ValueError(f"Posterior.interval: level must lie in (0, 1), got {level!r}")
        q = np.quantile(self.flat_samples, [(1 - level) / 2, (1 + level) / 2], axis=1)
        return q[0], q[1]

    def transform(self, fn: Callable[[np.ndarray], np.ndarray], names: Sequence[str]) -> Posterior:
        """The posterior of derived quantities ``fn(theta)`` (e.g. ``k/m``), with their diagnostics.

        ``fn`` maps ``(..., param)`` to ``(..., len(names))`` (NumPy)."""
        new = np.asarray(fn(self.samples), dtype=np.float64)
        names = tuple(names)
        if new.shape != (*self.samples.shape[:-1], len(names)):
            raise ValueError(
                f"Posterior.transform: fn must map (..., {len(self.names)}) to (..., {len(names)}), "
                f"got {new.shape}"
            )
        rhat, ess = _diagnostics(new)
        start = np.asarray(fn(self.start[:, None, None, :]), dtype=np.float64)[:, 0, 0]
        return dataclasses.replace(
            self,
            names=names,
            prior=None,
            samples=new,
            mean=new.mean(axis=(1, 2)),
            sd=new.std(axis=(1, 2)),
            rhat=rhat,
            ess=ess,
            start=start,
        )

    def summary(self) -> str:
        """A Markdown table: per parameter, the mean over records of the posterior sd, the worst
        R-hat and the smallest ESS, and how many records passed."""
        rows = ["| parameter | mean posterior sd | max R-hat | min ESS |", "|---|---|---|---|"]
        for i, n in enumerate(self.names):
            rows.append(
                f"| {n} | {np.mean(self.sd[:, i]):.4g} | {np.max(self.rhat[:, i]):.3f} | "
                f"{np.min(self.ess[:, i]):.0f} |"
            )
        rows.append(f"\n{int(self.ok.sum())} of {self.n_records} records passed the diagnostics.")
        return "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# coordinates


def _fold(z, lo, hi):
    """Reflect ``z`` into ``[lo, hi]`` (either bound may be infinite), slope +-1."""
    width = hi - lo
    both = jnp.isfinite(lo) & jnp.isfinite(hi)
    safe_w = jnp.where(both, width, 1.0)
    safe_lo = jnp.where(jnp.isfinite(lo), lo, 0.0)
    safe_hi = jnp.where(jnp.isfinite(hi), hi, 0.0)
    periodic = safe_lo + safe_w - jnp.abs(jnp.mod(z - safe_lo, 2 * safe_w) - safe_w)
    low_only = safe_lo + jnp.abs(z - safe_lo)
    high_only = safe_hi - jnp.abs(safe_hi - z)
    return jnp.where(
        both,
        periodic,
        jnp.where(jnp.isfinite(lo), low_only, jnp.where(jnp.isfinite(hi), high_only, z)),
    )


@dataclass(frozen=True)
class _Coordinates:
    """Sampling coordinates: ``u = fold(z)`` (``reflect``) or ``u = z`` per parameter,
    ``theta = exp(u)`` where ``log``.

    The fields are tuples of Python numbers: the object is hashable and compares by value, so it
    is a static argument of the compiled sampler (:func:`_run_records`), and the same prior and
    ``coords`` reuse one compilation."""

    log: tuple[bool, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    var: tuple[float, ...]
    reflect: bool

    def theta(self, z):
        u = _fold(z, jnp.asarray(self.lo), jnp.asarray(self.hi)) if self.reflect else z
        return jnp.where(jnp.asarray(self.log), jnp.exp(u), u), u

    def log_jacobian(self, u):
        """``log |d theta / d u|`` summed over parameters (``u`` where log, else 0)."""
        return jnp.sum(jnp.where(jnp.asarray(self.log), u, 0.0), axis=-1)

    def to_u(self, theta):
        return jnp.where(jnp.asarray(self.log), jnp.log(jnp.where(jnp.asarray(self.log), theta, 1.0)), theta)


def _coordinates(prior: Prior, coords, where: str, *, reflect: bool) -> _Coordinates:
    lo, hi = prior.support
    if isinstance(coords, str):
        if coords == "auto":
            log = np.array([d.log_coordinate for d in prior.dists])
        elif coords == "log":
            log = lo >= 0
            if not np.all(log):
                bad = [n for n, ok in zip(prior.names, log, strict=True) if not ok]
                raise ValueError(f"{where}: coords='log' needs positive supports; {bad} can be negative")
        elif coords == "linear":
            log = np.zeros(len(prior), dtype=bool)
        else:
            raise ValueError(
                f"{where}: coords must be 'auto', 'log', 'linear' or a list of names, got {coords!r}"
            )
    else:
        names = list(coords)
        unknown = [n for n in names if n not in prior.names]
        if unknown:
            raise ValueError(f"{where}: coords names unknown parameters {unknown}; known {prior.names}")
        log = np.array([n in names for n in prior.names])
        bad = [n for n, lg, low in zip(prior.names, log, lo, strict=True) if lg and low < 0]
        if bad:
            raise ValueError(f"{where}: log coordinates need positive supports; {bad} can be negative")
    with np.errstate(divide="ignore"):
        ulo = np.where(log, np.log(np.maximum(lo, 0.0)), lo)
        uhi = np.where(log, np.log(hi), hi)
    # prior variance in u, from draws (closed forms would differ per distribution and coordinate)
    draws = np.asarray(prior.sample(jax.random.key(0), 4096), dtype=np.float64)
    u = np.where(log, np.log(np.where(log, draws, 1.0)), draws)
    var = u.var(axis=0)
    return _Coordinates(
        log=tuple(bool(v) for v in np.asarray(log, bool)),
        lo=tuple(float(v) for v in np.asarray(ulo, np.float64)),
        hi=tuple(float(v) for v in np.asarray(uhi, np.float64)),
        var=tuple(float(v) for v in np.asarray(var, np.float64)),
        reflect=reflect,
    )


# ---------------------------------------------------------------------------------------------
# the log-density


def _residuals(fns, coords, ys, sigmas, z):
    theta, _ = coords.theta(z)
    parts = [((fn(theta) - y) / s).ravel() for fn, y, s in zip(fns, ys, sigmas, strict=True)]
    return jnp.concatenate(parts), theta


def _log_target(fns, coords, prior, ys, sigmas, z):
    r, theta = _residuals(fns, coords, ys, sigmas, z)
    _, u = coords.theta(z)
    loglik = -0.5 * jnp.sum(r**2)
    value = prior.log_prob(theta) + coords.log_jacobian(u) + loglik
    return jnp.where(jnp.isfinite(value), value, -jnp.inf)


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    """The options that shape the compiled sampler (hashable: a static argument)."""

    method: str
    chains: int
    warmup: int
    draws: int
    thin: int
    starts: int
    fits: int
    target_accept: float
    max_doublings: int
    fit_steps: int


class _Same:
    """A callable as a static argument: equal to another ``_Same`` of the same object, hashable
    even when the callable is not. ``Experiment.fn`` is captured as it was in a closure: the same
    function object reuses the compiled sampler, a new one (a new experiment) compiles anew."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn

    def __eq__(self, other):
        return isinstance(other, _Same) and other.fn is self.fn

    def __hash__(self):
        return id(self.fn)


@eqx.filter_jit
def _predict(fn: _Same, theta):
    """``fn`` over a batch of parameter vectors, compiled once per function and shape."""
    return jax.vmap(fn.fn)(theta)


def _check_likelihood(experiments, prior, ys, sigmas, key, where):
    """Before the long work: the log-likelihood of the first record must be finite at some of 16
    prior draws, else the experiment (a failing simulation, a NaN in the user's function) is named."""
    theta = prior.sample(jax.random.fold_in(key, 7), 16)
    for e, y, s in zip(experiments, ys, sigmas, strict=True):
        pred = np.asarray(_predict(_Same(e.fn), theta))
        ll = -0.5 * np.sum(((pred - y[0]) / s[0]) ** 2, axis=tuple(range(1, pred.ndim)))
        if not np.any(np.isfinite(ll)):
            detail = ""
            if e.describe_failure is not None:
                detail = f" ({e.describe_failure(np.asarray(theta[0]))})"
            raise NonFiniteError(
                f"{where}: experiment {e.name!r} gives a non-finite likelihood at every one of 16 prior "
                f"draws{detail}; check that fn returns finite observations inside the prior's support"
            )


def _check_observations(experiments, y_obs, where):
    if isinstance(y_obs, (list, tuple)):
        ys = [np.asarray(y, dtype=np.float64) for y in y_obs]
    else:
        ys = [np.asarray(y_obs, dtype=np.float64)]
    if len(ys) != len(experiments):
        raise ValueError(
            f"{where}: y_obs must give one array per experiment ({len(experiments)}), got {len(ys)}"
        )
    return ys


def _one_record(fns, prior, coordinates, settings, rkey, ys_r, sigmas_r):
    """Start, preconditioner and chains of one record (see the module docstring)."""
    fns = tuple(f.fn for f in fns)
    method, chains, warmup, draws = settings.method, settings.chains, settings.warmup, settings.draws
    thin, starts, target_accept = settings.thin, settings.starts, settings.target_accept
    max_doublings, fit_steps = settings.max_doublings, settings.fit_steps
    p = len(coordinates.log)
    k_start, k_init, k_draw = jax.random.split(jax.random.wrap_key_data(rkey), 3)
    log_target = lambda z: _log_target(fns, coordinates, prior, ys_r, sigmas_r, z)  # noqa: E731

    # 1. start: the best `fits` prior draws, each the start of a least-squares fit of the
    # whitened residuals; the fit with the highest posterior density is kept (several fits find the
    # global mode of a multimodal likelihood, e.g. a forcing frequency, that one fit can miss)
    fits = min(settings.fits, starts)
    draws0 = prior.sample(k_start, starts)
    z0s = coordinates.to_u(draws0)
    vals = jax.vmap(log_target)(z0s)
    vals = jnp.where(jnp.isfinite(vals), vals, -jnp.inf)
    best = jnp.argsort(-vals)[:fits]
    z_starts, v_starts = z0s[best], vals[best]

    def residual(z, _):
        return _residuals(fns, coordinates, ys_r, sigmas_r, z)[0]

    if fit_steps > 0:

        def fit(z0):
            sol = optx.least_squares(
                residual,
                optx.LevenbergMarquardt(rtol=1e-8, atol=1e-8),
                z0,
                max_steps=fit_steps,
                throw=False,
            )
            v = log_target(sol.value)
            return sol.value, jnp.where(jnp.isfinite(v), v, -jnp.inf)

        z_fits, v_fits = jax.vmap(fit)(z_starts)
        z_cand = jnp.concatenate([z_fits, z_starts[:1]])
        v_cand = jnp.concatenate([v_fits, v_starts[:1]])
        z_fit = z_cand[jnp.argmax(v_cand)]
    else:
        z_fit = z_starts[0]
    z_fit = coordinates.to_u(coordinates.theta(z_fit)[0])

    # 2. the preconditioner: (F + D)^-1 at the fit
    jac = jax.jacfwd(lambda z: residual(z, None))(z_fit)
    fisher = jac.T @ jac + jnp.diag(1.0 / jnp.asarray(coordinates.var))
    cov = jnp.linalg.inv(fisher)
    chol = jnp.linalg.cholesky(0.5 * (cov + cov.T))

    def logdensity_w(w):
        return log_target(z_fit + chol @ w)

    # 3. warm-up and sampling, chains under vmap, from w ~ N(0, I): spread along the ridges
    # (the first of 8 draws per chain inside the support, else the fit itself)
    cand = jax.random.normal(k_init, (chains, 8, p))
    finite = jnp.isfinite(jax.vmap(jax.vmap(logdensity_w))(cand))
    first = jnp.argmax(finite, axis=1)
    w0 = jnp.where(finite.any(axis=1)[:, None], cand[jnp.arange(chains), first], 0.0)
    chain_keys = jax.random.split(k_draw, chains)
    if method == "rwm":
        run_chain = lambda k, w: rwm_chain(  # noqa: E731
            k, w, logdensity_w, warmup=warmup, draws=draws, thin=thin, target_accept=target_accept
        )
    else:
        run_chain = lambda k, w: nuts_chain(  # noqa: E731
            k, w, logdensity_w, warmup=warmup, draws=draws, target_accept=target_accept,
            max_doublings=max_doublings,
        )  # fmt: skip
    ws, stat, scale = jax.vmap(run_chain)(chain_keys, w0)
    zs = z_fit + ws @ chol.T
    # 4. the chains' fit to the record: the least chi^2 among each chain's last draw and the
    # coordinate-wise posterior median (module docstring; a chain stuck in a side mode has none low)
    probe = jnp.concatenate([zs[:, -1, :], jnp.median(zs.reshape(-1, p), axis=0)[None]])
    chi2s = jax.vmap(lambda z: jnp.sum(residual(z, None) ** 2))(probe)
    chi2 = jnp.min(jnp.where(jnp.isfinite(chi2s), chi2s, jnp.inf))  # a median where the model fails
    thetas, _ = coordinates.theta(zs)
    return thetas, stat, scale, coordinates.theta(z_fit)[0], chi2


@eqx.filter_jit
def _run_records(fns, prior, coordinates, settings, keys, ys, sigmas):
    """:func:`_one_record` over a chunk of records (the leading axis of ``keys``, ``ys`` and
    ``sigmas``). Compiled once per experiment functions, prior, coordinates, settings and chunk
    shape: ``fns`` (a tuple of :class:`_Same`), ``coordinates`` and ``settings`` are hashable static
    arguments, the prior's arrays (none for the built-in distributions) and the data are traced."""
    one = functools.partial(_one_record, fns, prior, coordinates, settings)
    return jax.vmap(one)(keys, ys, sigmas)


def sample_posterior(
    experiments: Experiment | Sequence[Experiment],
    y_obs: Float[ArrayLike, "..."] | Sequence[Float[ArrayLike, "..."]],
    prior: PriorLike,
    *,
    key: Key,
    method: str = "rwm",
    chains: int = 4,
    warmup: int | None = None,
    draws: int = 1000,
    thin: int = 5,
    starts: int = 64,
    fits: int = 4,
    coords: str | Sequence[str] = "auto",
    target_accept: float | None = None,
    max_doublings: int = 6,
    fit_steps: int = 100,
    rhat_max: float = 1.05,
    ess_min: float = 100.0,
    chi2_pvalue_min: float = 1e-6,
    chunk_size: int = 64,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
) -> Posterior:
    r"""Posterior samples of the experiments' parameters for one record or a batch of records.

    **Arguments:**

    - ``experiments``: one :class:`jaxid.identify.Experiment` or a list of them on the same
      parameters (their likelihoods multiply). The noise is each experiment's ``noise``; a relative
      noise is read against each record's observed channel standard deviations.
    - ``y_obs``: the observations: an array shaped like the experiment's output, or with a leading
      record axis; a list of such arrays for several experiments (the same records in each).
    - ``prior``: a :class:`jaxid.priors.Prior` or ``{name: (low, high)}`` (uniform) with an entry
      for every parameter of the experiments.
    - ``key``: a ``jax.random.key``; the result is deterministic given it.
    - ``method``: ``"rwm"`` (adaptive random-walk Metropolis, the default) or ``"nuts"``.
    - ``chains``, ``warmup``, ``draws``, ``thin``: chains per record, adaptation steps (default
      1000 for the random walk, 500 for NUTS), kept draws per chain, and steps per kept draw
      (random walk only).
    - ``target_accept``: the acceptance rate adapted to (default 0.3 random walk, 0.8 NUTS).
    - ``starts``: prior draws; the ``fits`` best of them (highest posterior density) each start
      a least-squares fit, and the best fit centres the chains' preconditioner.
    - ``coords``: ``"auto"`` (log for log-uniform and log-normal priors), ``"log"`` (every
      parameter, positive supports), ``"linear"``, or the names to sample in log coordinates.
      A scaling symmetry is a straight ridge in log coordinates, a sum degeneracy in linear ones.
    - ``max_doublings``: NUTS tree depth limit (``2**max_doublings - 1`` steps per draw at most).
    - ``fit_steps``: Levenberg-Marquardt iterations of the preconditioning fit.
    - ``rhat_max``, ``ess_min``: thresholds of the per-record ``ok`` flag.
    - ``chi2_pvalue_min``: a record is also flagged (not ``ok``) when the chains explain it far
      worse than its noise allows: the least sum of squared whitened residuals among the chains'
      last draws and the posterior median, :math:`\chi^2 = \sum_j r_j^2`, has the tail
      probability :math:`P(\chi^2_{n - p} \ge \chi^2) <` ``chi2_pvalue_min`` (``n``
      observations, ``p`` parameters). Every chain starts around one fit, so when the fits all
      miss the global mode (an oscillatory likelihood, e.g. a forcing frequency, with too few
      ``starts`` or ``fits``) the chains agree with each other and R-hat cannot see it; their
      residuals can. Raise ``starts`` and ``fits`` for such records. On data the model does not
      describe exactly (real measurements, a misjudged noise level) the test flags records for
      that reason too: set ``chi2_pvalue_min=0`` to switch it off.
    - ``chunk_size``, ``devices``, ``progress``: records per compiled chunk, the devices the chunk
      is split over, a progress bar.

    **Returns:** a :class:`Posterior`, always with a leading record axis.

    Needs float64 (``jax_enable_x64``): the whitened residuals of a precise experiment and the
    Fisher information lose their small directions in float32.

    **Compilation.** The sampler is compiled once per experiment functions (the same
    ``Experiment.fn`` objects), prior, coordinates, method and chain settings and chunk shape;
    a later call with the same reuses it, whatever the observations, noise levels and key (they
    are traced arguments). JAX's compilation cache keeps those functions alive
    (``jax.clear_caches()`` releases them).
    """
    where = "sample_posterior"
    require_float64(where)
    experiments = as_experiments(experiments, where)
    if method not in ("rwm", "nuts"):
        raise ValueError(f"{where}: method must be 'rwm' or 'nuts', got {method!r}")
    if warmup is None:
        warmup = 1000 if method == "rwm" else 500
    if target_accept is None:
        target_accept = 0.3 if method == "rwm" else 0.8
    for name, value, low in (
        ("chains", chains, 2),
        ("warmup", warmup, 10),
        ("draws", draws, 10),
        ("thin", thin, 1),
        ("starts", starts, 1),
        ("fits", fits, 1),
        ("max_doublings", max_doublings, 1),
        ("fit_steps", fit_steps, 0),
        ("chunk_size", chunk_size, 1),
    ):
        check_positive_int(where, name, value, minimum=low)
    if not 0 < target_accept < 1:
        raise ValueError(f"{where}: target_accept must lie in (0, 1), got {target_accept!r}")
    if not (rhat_max > 1 and ess_min > 0):
        raise ValueError(f"{where}: rhat_max must be > 1 and ess_min > 0, got {rhat_max}, {ess_min}")
    if not 0 <= chi2_pvalue_min < 1:
        raise ValueError(f"{where}: chi2_pvalue_min must lie in [0, 1), got {chi2_pvalue_min!r}")
    names = experiments[0].param_names
    if names is None:
        raise ValueError(f"{where}: the experiments need param_names to match them with the prior")
    prior = as_prior(prior, names, where=f"{where}: prior")
    coordinates = _coordinates(prior, coords, where, reflect=method == "nuts")
    p = len(names)

    ys = _check_observations(experiments, y_obs, where)
    out_shapes = []
    for e in experiments:
        try:
            shape = jax.eval_shape(e.fn, jax.ShapeDtypeStruct((p,), jnp.float64))
        except Exception as err:
            raise TypeError(
                f"{where}: experiment {e.name!r}: fn could not be traced with a ({p},) parameter vector "
                f"({type(err).__name__}: {err}); it must be a JAX function of theta, differentiable in "
                "forward mode"
            ) from None
        if not hasattr(shape, "shape") or not jnp.issubdtype(shape.dtype, jnp.floating):
            raise TypeError(f"{where}: experiment {e.name!r}: fn must return one floating-point array")
        out_shapes.append(tuple(shape.shape))
    batched = [y.shape == s for y, s in zip(ys, out_shapes, strict=True)]
    for y, s, e in zip(ys, out_shapes, experiments, strict=True):
        if y.shape != s and y.shape[1:] != s:
            raise ValueError(
                f"{where}: y_obs for {e.name!r} must have shape {s} or (records,) + {s}, got {y.shape}"
            )
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{where}: y_obs for {e.name!r} holds non-finite values")
    ys = [y[None] if b else y for y, b in zip(ys, batched, strict=True)]
    n = {y.shape[0] for y in ys}
    if len(n) != 1:
        raise ValueError(f"{where}: the experiments' y_obs have different record counts {sorted(n)}")
    n = n.pop()
    sigmas = [np.stack([e.sigma(yr) for yr in y]) for e, y in zip(experiments, ys, strict=True)]

    fns = tuple(e.fn for e in experiments)
    _check_likelihood(experiments, prior, ys, sigmas, key, where)
    n_keys = jax.random.key_data(jax.random.split(key, n))

    settings = _Settings(
        method=method,
        chains=chains,
        warmup=warmup,
        draws=draws,
        thin=thin,
        starts=starts,
        fits=fits,
        target_accept=float(target_accept),
        max_doublings=max_doublings,
        fit_steps=fit_steps,
    )
    run = functools.partial(_run_records, tuple(_Same(f) for f in fns), prior, coordinates, settings)
    t0 = time.perf_counter()
    thetas, stat, scale, start, chi2 = map_chunked(
        run,
        (n_keys, tuple(ys), tuple(sigmas)),
        chunk_size=chunk_size,
        devices=devices,
        progress=progress,
        desc="posterior",
    )
    seconds = time.perf_counter() - t0
    thetas = np.asarray(thetas, dtype=np.float64)
    if not np.all(np.isfinite(thetas)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(thetas), axis=(1, 2, 3)))[0])
        raise NonFiniteError(f"{where}: non-finite posterior samples for record {bad}")
    rhat, ess = _diagnostics(thetas)
    stat = np.asarray(stat)
    n_obs = sum(int(np.prod(s)) for s in out_shapes)
    chi2 = np.asarray(chi2, dtype=np.float64)
    chi2_pvalue = scipy.stats.chi2.sf(chi2, max(n_obs - p, 1))
    ok = (rhat.max(axis=1) <= rhat_max) & (ess.min(axis=1) >= ess_min) & (chi2_pvalue >= chi2_pvalue_min)
    return Posterior(
        names=tuple(names),
        prior=prior,
        samples=thetas,
        mean=thetas.mean(axis=(1, 2)),
        sd=thetas.std(axis=(1, 2)),
        rhat=rhat,
        ess=ess,
        acceptance=stat.mean(axis=1) if method == "rwm" else np.full(n, np.nan),
        divergences=stat.sum(axis=1) if method == "nuts" else np.zeros(n, int),
        ok=ok,
        start=np.asarray(start),
        chi2=chi2,
        chi2_pvalue=chi2_pvalue,
        scale=np.asarray(scale),
        seconds=seconds,
        settings=dict(
            method=method,
            thin=thin,
            chains=chains,
            warmup=warmup,
            draws=draws,
            starts=starts,
            fits=fits,
            coords=coords if isinstance(coords, str) else list(coords),
            target_accept=target_accept,
            max_doublings=max_doublings,
            rhat_max=rhat_max,
            ess_min=ess_min,
            chi2_pvalue_min=chi2_pvalue_min,
            observations=n_obs,
            prior=repr(prior),
        ),
    )


def _diagnostics(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-normalised split R-hat and bulk ESS per record and parameter of
    ``(records, chains, draws, param)`` samples."""
    x = np.moveaxis(np.asarray(samples, dtype=np.float64), -1, 1)  # (records, param, chains, draws)
    rhat, ess = diagnostics.rhat(x), diagnostics.ess_bulk(x)
    # a parameter that never moves (a point posterior) has undefined R-hat: report 1 and full ESS
    constant = np.all(x == x[..., :1, :1], axis=(-1, -2))
    return np.where(constant, 1.0, rhat), np.where(constant, x.shape[-1] * x.shape[-2], ess)
