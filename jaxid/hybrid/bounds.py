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

from ..errors import require_float64
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
    sys = get_system(system)
    require_float64("zp_bound")
    if len(sys.physics_names) != 1:
        raise ValueError(f"zp_bound: {sys.name} has {len(sys.physics_names)} physics latents, expected 1")
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
