r"""The data's limit on the physics latent: the Cramer-Rao bound of ``z_p`` from one sequence.

A hybrid model reads ``z_p`` from one sequence of the training window with Gaussian noise of the
system's sd. Even knowing everything else (the unmodelled factors ``z_n`` and the initial state),
no unbiased estimator of ``z_p`` from that sequence has a variance below

.. math::
    \mathrm{CRB}(z_p) = I(z_p)^{-1}, \qquad
    I(z_p) = \frac{1}{\sigma^2} \sum_{t, c} \Big(\frac{\partial y_{tc}}{\partial z_p}\Big)^2

(the truth model's sensitivities, by forward-mode differentiation through the float64 simulation,
:func:`jaxid.identify.fisher_information`). :func:`zp_bound` averages these variances over the
sequences of a split (or over sequences drawn from the data's ranges): that mean is what a
model's ``z_p_mse`` would be if it estimated ``z_p`` of every sequence as well as the data allow
with the other latents known. The models also have to infer ``z_n`` and are biased towards their
prior, so this is a reference scale, not a strict floor on their MSE.
"""

from __future__ import annotations

from dataclasses import dataclass

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from ..errors import NonFiniteError, require_float64
from ..identify import Experiment, fisher_information
from ..simulate import simulate
from ..typing import Key
from .datasets import HybridSplit
from .systems import System, get_system


@dataclass(frozen=True)
class ZpBound:
    """What :func:`zp_bound` returns: the ``system``'s name, each sequence's Cramer-Rao
    ``variances`` of ``z_p`` and their mean ``mse`` (comparable to ``z_p_mse``) and ``rms``."""

    system: str
    variances: Float[np.ndarray, " sequence"]

    @property
    def mse(self) -> float:
        return float(np.mean(self.variances))

    @property
    def rms(self) -> float:
        return float(np.sqrt(self.mse))


def zp_experiment(system: str | System) -> Experiment:
    """The truth model of ``system`` over its training window as an :class:`Experiment` of
    ``theta = (z_p, z_n, x0)`` with the data's noise sd (one parameter vector per sequence, so that
    a batch of sequences is one vectorised Fisher computation; ``z_p``'s information is
    ``F[0, 0]``, the other parameters being known). Needs float64 (``jax_enable_x64``)."""
    sys = get_system(system)
    n_p, n_f = len(sys.physics_names), len(sys.factor_names)
    ts = jnp.asarray(sys.ts[: sys.n_train])

    def fn(theta):
        model = sys.truth(theta[:n_p], theta[n_p : n_p + n_f])
        x0 = theta[n_p + n_f :]
        return simulate(model, x0, ts, adjoint=dfx.ForwardMode(), max_steps=100_000).obs

    names = (*sys.physics_names, *sys.factor_names, *(f"x0[{i}]" for i in range(sys.state_size)))
    return Experiment(fn, sys.noise, name=f"{sys.name} truth", param_names=names)


def _scalar_physics(where: str, system: str | System) -> System:
    """The system, checked to have one physics latent, with float64 on."""
    sys = get_system(system)
    require_float64(where)
    if len(sys.physics_names) != 1:
        raise ValueError(f"{where}: {sys.name} has {len(sys.physics_names)} physics latents, expected 1")
    return sys


def zp_bound(
    system: str | System,
    split: HybridSplit | None = None,
    *,
    key: Key | None = None,
    n: int = 64,
) -> ZpBound:
    """Cramer-Rao bounds of ``z_p`` from one sequence each (module docstring).

    With ``split``: its sequences (their true ``z_p``, ``z_n`` and initial states). Otherwise
    ``n`` sequences drawn with ``key`` from the system's in-distribution ranges, as
    :func:`jaxid.hybrid.make_hybrid_data` draws them. Needs float64 (``jax_enable_x64``).
    """
    sys = _scalar_physics("zp_bound", system)
    if split is not None:
        z_p, z_n = split.flat("z_p"), split.flat("z_n")
        x0 = split.x0.reshape(-1, split.x0.shape[-1])
    else:
        if key is None:
            raise ValueError("zp_bound: pass a split or a key (jax.random.key) to draw sequences")
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"zp_bound: n must be a positive int, got {n!r}")
        k_p, k_n, k_x0 = jax.random.split(key, 3)

        def draw(k, ranges):
            lo, hi = np.array(ranges).T
            return lo + (hi - lo) * np.asarray(jax.random.uniform(k, (n, len(ranges)), jnp.float64))

        z_p, z_n = draw(k_p, sys.physics_ranges), draw(k_n, sys.factor_ranges)
        x0 = np.asarray(sys.initial_states(k_x0, n))
    theta = np.concatenate([np.asarray(a, np.float64) for a in (z_p, z_n, x0)], -1)
    info = fisher_information(zp_experiment(sys), jnp.asarray(theta))[:, 0, 0]
    return ZpBound(system=sys.name, variances=1.0 / np.asarray(info))


@dataclass(frozen=True)
class ZpPosterior:
    """What :func:`zp_posterior` returns, per sequence of the split: the posterior ``mean`` and
    ``sd`` of ``z_p``, its true value ``truth`` and the refined grid's node ``spacing``; and the
    ``prior_range``. ``mse``: the mean squared error of the posterior means (the Bayes risk of ``z_p``
    on these sequences, comparable to a model's ``z_p_mse``); ``posterior_variance``: the mean
    posterior variance (the same risk's other estimate, with no noise from the truths)."""

    system: str
    prior_range: tuple[float, float]
    mean: Float[np.ndarray, " sequence"]
    sd: Float[np.ndarray, " sequence"]
    truth: Float[np.ndarray, " sequence"]
    spacing: Float[np.ndarray, " sequence"]

    @property
    def mse(self) -> float:
        return float(np.mean((self.mean - self.truth) ** 2))

    @property
    def posterior_variance(self) -> float:
        return float(np.mean(self.sd**2))


def zp_posterior(
    system: str | System,
    split: HybridSplit,
    *,
    prior_range: tuple[float, float] | None = None,
    nodes: int = 1001,
    batch_size: int = 1001,
    progress: bool = False,
) -> ZpPosterior:
    r"""The Bayes reference for ``z_p`` from one sequence, every other latent known: the exact
    posterior of the scalar ``z_p`` by quadrature, for each sequence of ``split``.

    For a sequence with noisy observations :math:`y` (the training window, as the models see it)
    and known unmodelled factors and initial state, the posterior of ``z_p`` under a uniform prior
    on ``prior_range = (a, b)`` is

    .. math::
        p(z_p \mid y) \propto \exp\Big(-\frac{1}{2\sigma^2}\sum_{t,c}
        \big(y_{tc} - \hat y_{tc}(z_p)\big)^2\Big), \qquad a \le z_p \le b,

    with :math:`\hat y` the truth simulation and :math:`\sigma` the data's noise sd. It is
    evaluated on ``nodes`` equally spaced nodes over ``[a, b]`` (every node simulated: no
    sampler, no assumption of one mode; the pendulum's likelihood in its frequency has side
    modes), then on ``nodes`` more over the span of the nodes within :math:`e^{-40}` of the
    largest value (two spacings wider on each side), where the trapezoid rule gives the posterior
    mean and sd. A mode is found when the first grid has a node near enough to it to stand out:
    one much narrower than the first grid's spacing (a few percent of it) can be missed, so pass
    more ``nodes`` for very informative data; the refined grid must put at least 6 nodes on the
    tallest peak's upper half (checked). The truth model and noise are :func:`zp_experiment`'s,
    those of :func:`zp_bound`. The mean is the estimator of least expected squared error, so the
    mean of its squared errors over the split estimates the Bayes risk: what no encoder can beat
    on average, even knowing ``z_n``. Where the data are informative the posterior is nearly
    Gaussian with the Cramer-Rao variance; it differs where it is not Gaussian, mostly narrower
    near the prior's ends, which cut it.

    **Arguments:** ``prior_range`` (default: the system's in-distribution range of ``z_p``; for an
    OOD split pass the range its ``z_p`` were drawn from,
    ``shifted_ranges(system.physics_ranges, ood_width)[0]``); ``nodes`` (at least 101);
    ``batch_size`` (simulations per vectorised batch).

    **Raises:** ``ValueError`` when a true ``z_p`` lies outside ``prior_range`` (the wrong prior),
    or when the tallest peak spans fewer than 6 nodes of the refined grid (pass more ``nodes``);
    :class:`jaxid.errors.NonFiniteError` for a non-finite likelihood. Needs float64 (``jax_enable_x64``).
    """
    from tqdm.auto import tqdm

    sys = _scalar_physics("zp_posterior", system)
    if not isinstance(split, HybridSplit):
        raise TypeError(f"zp_posterior: split must be a HybridSplit, got {type(split).__name__}")
    for name, value, low in (("nodes", nodes, 101), ("batch_size", batch_size, 1)):
        if not (isinstance(value, int) and value >= low):
            raise ValueError(f"zp_posterior: {name} must be an int >= {low}, got {value!r}")
    lo, hi = sys.physics_ranges[0] if prior_range is None else prior_range
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(
            f"zp_posterior: prior_range must be finite (low, high) with low < high, got {prior_range!r}"
        )
    truth = split.flat("z_p")[:, 0]
    outside = (truth < lo) | (truth > hi)
    if np.any(outside):
        raise ValueError(
            f"zp_posterior: {int(outside.sum())} of {truth.size} true z_p lie outside prior_range "
            f"({lo}, {hi}); pass the range the split was drawn from"
        )
    z_n = split.flat("z_n")
    x0 = split.x0.reshape(-1, split.x0.shape[-1])
    y = split.flat("obs")[:, : sys.n_train].astype(np.float64)
    experiment = zp_experiment(sys)  # the truth model and noise of zp_bound's information

    @jax.jit
    def log_likelihood(grid, zn, x, obs):
        def one(zp):
            pred = experiment.fn(jnp.concatenate([zp[None], zn, x]))
            return -0.5 * jnp.sum(((obs - pred) / experiment.noise) ** 2)

        return jax.lax.map(one, grid, batch_size=batch_size)

    def log_density(i, grid, args):
        ll = np.asarray(log_likelihood(jnp.asarray(grid), *args))
        if not np.all(np.isfinite(ll)):
            raise NonFiniteError(f"zp_posterior: sequence {i}: a non-finite likelihood on the grid")
        return ll

    def moments(grid, ll):
        w = np.exp(ll - ll.max())
        w[[0, -1]] *= 0.5  # trapezoid rule on equal spacings
        m = np.sum(w * grid) / np.sum(w)
        return m, np.sqrt(max(np.sum(w * (grid - m) ** 2) / np.sum(w), 0.0))

    coarse = np.linspace(lo, hi, nodes)
    mean, sd, spacing = np.empty(truth.size), np.empty(truth.size), np.empty(truth.size)
    for i in tqdm(range(truth.size), desc=f"{sys.name} z_p posterior", unit="seq", disable=not progress):
        args = (jnp.asarray(z_n[i]), jnp.asarray(x0[i]), jnp.asarray(y[i]))
        ll = log_density(i, coarse, args)
        # Refine over the nodes that carry the posterior (within exp(-40) of the largest), two
        # coarse spacings beyond them on each side.
        h = coarse[1] - coarse[0]
        mass = np.flatnonzero(ll > ll.max() - 40.0)
        a, b = max(coarse[mass[0]] - 2 * h, lo), min(coarse[mass[-1]] + 2 * h, hi)
        fine = np.linspace(a, b, nodes)
        ll_fine = log_density(i, fine, args)
        mean[i], sd[i] = moments(fine, ll_fine)
        spacing[i] = fine[1] - fine[0]
        # The tallest peak must be resolved: at least 6 nodes within 0.5 of its log density (a
        # Gaussian peak's +-1 sd), whatever the spread between several peaks makes the sd.
        top = int(np.sum(ll_fine > ll_fine.max() - 0.5))
        if top < 6:
            raise ValueError(
                f"zp_posterior: sequence {i}: the posterior's peak spans {top} nodes of the refined "
                f"grid on [{a:.6g}, {b:.6g}] (spacing {spacing[i]:.3g}), under 6; pass more nodes"
            )
    return ZpPosterior(sys.name, (float(lo), float(hi)), mean, sd, truth, spacing)
