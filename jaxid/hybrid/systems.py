r"""The three systems of the hybrid-model benchmark: what is simulated and what the physics knows.

Each :class:`System` pairs a *truth* (a jaxid model with every effect, used to make the data)
with a *physics part* (the same model with the unmodelled effects switched off, used inside the
hybrid models' decoders). Per sequence the truth has

- ``z_p``: the physics latent, a parameter of the physics part (drawn per sequence);
- ``z_n``: the unmodelled factors, shared by all sequences of a task;
- an initial state (drawn per sequence), which the decoders read from the first observation.

Systems (ranges are the in-distribution priors; :mod:`jaxid.hybrid.datasets` shifts them for the
out-of-distribution split):

- ``pendulum`` (Phys-VAE's forced damped pendulum):
  :math:`\ddot\theta = -\omega^2\sin\theta - \gamma\dot\theta + A\omega^2\cos(2\pi f t)`;
  observe :math:`\theta`; ``z_p = omega ~ U[0.785, 3.14]``; ``z_n = (gamma, A, f)`` with
  ``gamma ~ U[0, 0.8]``, ``A ~ U[0, 40]``, ``f ~ U[3.14, 6.28]``; :math:`\theta_0 \sim U[-1.57, 1.57]`,
  :math:`\dot\theta_0 = 0`; dt 0.05, noise sd 0.01. Physics part: the frictionless pendulum.
  The network may act on the acceleration only and sees time (the forcing is external).
- ``double_pendulum``: point masses 1 kg on rods of equal length ``L``, g = 9.81; observe both
  angles; ``z_p = L ~ U[0.6, 1.2]`` m; ``z_n = (b1, b2) ~ U[0, 0.5]`` N m s, the joint damping at
  the pivot and at the elbow (the unmodelled effect); angles ``~ U[-0.9, 0.9]`` at rest; dt 0.05,
  noise sd 0.01. Physics part: the frictionless double pendulum. The network acts on the
  angular accelerations.
- ``advection_diffusion`` (Phys-VAE): :math:`u_t = D u_{xx} - c u_x` on 20 points, dx 0.1, zero
  boundaries; :math:`u_0 = a \sin(\pi x / x_{last})`, ``a ~ U[0.5, 1.5]``; ``z_p = D ~ U[0.01, 0.1]``,
  ``z_n = c ~ U[0.01, 0.1]``; dt 0.02, noise sd 1e-3. Physics part: diffusion only.

The physics parts run in the dtype of their latent (float32 in training) whatever
``jax_enable_x64`` says.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..models import AdvectionDiffusion, DoublePendulum, ForcedDampedPendulum
from ..models.base import AbstractModel
from ..typing import Key, RealScalar


@dataclass(frozen=True)
class System:
    """A benchmark system. Subclasses define the truth, the physics part and the initial states.

    **Fields** (all static): ``name``; ``dt`` (save interval [s]); ``n_train`` (saved steps in the
    training window, the first at t = 0); ``n_full`` (saved steps up to the end of the prediction
    window); ``noise`` (observation noise sd); ``substeps`` (fixed solver steps per save interval
    inside the hybrid decoders); ``physics_names`` / ``physics_ranges``; ``factor_names`` /
    ``factor_ranges``; ``feasible`` (the physics latent's feasible range, wider than its prior, on
    which the models' physics latents live); ``aug_mask`` (state components the network term may
    change); ``time_input`` (whether the network term sees t).
    """

    name: str
    dt: float
    n_train: int
    n_full: int
    noise: float
    substeps: int
    physics_names: tuple[str, ...]
    physics_ranges: tuple[tuple[float, float], ...]
    factor_names: tuple[str, ...]
    factor_ranges: tuple[tuple[float, float], ...]
    feasible: tuple[tuple[float, float], ...]
    aug_mask: tuple[bool, ...]
    time_input: bool

    @property
    def state_size(self) -> int:
        return len(self.aug_mask)

    @property
    def ts(self) -> Float[np.ndarray, " time"]:
        return np.arange(self.n_full) * self.dt

    def truth(
        self, z_p: Float[ArrayLike, "*batch physics"], z_n: Float[ArrayLike, "*batch factor"]
    ) -> AbstractModel:
        """The model that makes the data (``z_p``, ``z_n`` with matching leading axes)."""
        raise NotImplementedError

    def physics(self, z_p: Float[ArrayLike, " physics"]) -> AbstractModel:
        """The physics part for one sequence, in the dtype of ``z_p``."""
        raise NotImplementedError

    def initial_states(self, key: Key, n: int) -> Float[Array, "sequence state"]:
        """``n`` initial states of the truth."""
        raise NotImplementedError

    def state_from_obs(self, y0: Float[ArrayLike, " channel"]) -> Float[ArrayLike, " state"]:
        """The decoders' initial state from the first observation (a JAX array for a JAX array)."""
        raise NotImplementedError

    def observe(self, x: Float[ArrayLike, "*batch state"]) -> Float[ArrayLike, "*batch channel"]:
        """Observation of (a stack of) states (a JAX array for a JAX array, NumPy for NumPy)."""
        raise NotImplementedError

    def physics_field(
        self, z_p: Float[ArrayLike, " physics"], t: RealScalar, x: Float[ArrayLike, " state"]
    ) -> Float[Array, " state"]:
        """The physics part's vector field ``F_p(x; z_p)`` at time ``t``."""
        return self.physics(z_p).vector_field(t, x)

    def scales(
        self, obs: Float[ArrayLike, "*batch time channel"]
    ) -> tuple[Float[np.ndarray, " state"], Float[np.ndarray, " state"]]:
        """Per-component scales of the state and of its time derivative, from observations alone.

        ``obs`` has shape ``(..., time, channel)``. For the pendulums the state is
        (angles, angular velocities): the angles' sd, the sd of their finite-difference velocity,
        and of its finite-difference acceleration. For a fully observed state, the sd of the
        observations and of their finite-difference rate. The networks work in these units.
        """
        obs = np.asarray(obs, np.float64)
        flat = obs.reshape(-1, obs.shape[-1])
        rate = np.diff(obs, axis=-2) / self.dt
        rate2 = np.diff(rate, axis=-2) / self.dt
        sd = lambda a: np.maximum(a.reshape(-1, a.shape[-1]).std(0), 1e-6)  # noqa: E731
        if self.state_size == obs.shape[-1]:
            return np.full(self.state_size, flat.std()), np.full(self.state_size, sd(rate).mean())
        return np.concatenate([sd(obs), sd(rate)]), np.concatenate([sd(rate), sd(rate2)])


def _zeros_like(z):
    return jnp.zeros((), z.dtype)


@dataclass(frozen=True)
class PendulumSystem(System):
    name: str = "pendulum"
    dt: float = 0.05
    n_train: int = 50
    n_full: int = 100
    noise: float = 0.01
    substeps: int = 3
    physics_names: tuple[str, ...] = ("omega",)
    physics_ranges: tuple[tuple[float, float], ...] = ((0.785, 3.14),)
    factor_names: tuple[str, ...] = ("gamma", "A", "f")
    factor_ranges: tuple[tuple[float, float], ...] = ((0.0, 0.8), (0.0, 40.0), (3.14, 6.28))
    feasible: tuple[tuple[float, float], ...] = ((0.2, 4.5),)
    aug_mask: tuple[bool, ...] = (False, True)
    time_input: bool = True

    def truth(
        self, z_p: Float[ArrayLike, "*batch physics"], z_n: Float[ArrayLike, "*batch factor"]
    ) -> AbstractModel:
        return ForcedDampedPendulum(omega=z_p[..., 0], gamma=z_n[..., 0], A=z_n[..., 1], f=z_n[..., 2])

    def physics(self, z_p: Float[ArrayLike, " physics"]) -> AbstractModel:
        zero = _zeros_like(z_p)
        return ForcedDampedPendulum(omega=z_p[0], gamma=zero, A=zero, f=zero + 1)

    def initial_states(self, key: Key, n: int) -> Float[Array, "sequence state"]:
        theta0 = jax.random.uniform(key, (n,), minval=-1.57, maxval=1.57)
        return jnp.stack([theta0, jnp.zeros_like(theta0)], -1)

    def state_from_obs(self, y0: Float[ArrayLike, " channel"]) -> Float[ArrayLike, " state"]:
        return jnp.stack([y0[0], jnp.zeros_like(y0[0])])

    def observe(self, x: Float[ArrayLike, "*batch state"]) -> Float[ArrayLike, "*batch channel"]:
        return x[..., :1]


@dataclass(frozen=True)
class DoublePendulumSystem(System):
    name: str = "double_pendulum"
    dt: float = 0.05
    n_train: int = 50
    n_full: int = 100
    noise: float = 0.01
    substeps: int = 2
    physics_names: tuple[str, ...] = ("L",)
    physics_ranges: tuple[tuple[float, float], ...] = ((0.6, 1.2),)
    factor_names: tuple[str, ...] = ("b1", "b2")
    factor_ranges: tuple[tuple[float, float], ...] = ((0.0, 0.5), (0.0, 0.5))
    feasible: tuple[tuple[float, float], ...] = ((0.3, 1.8),)
    aug_mask: tuple[bool, ...] = (False, False, True, True)
    time_input: bool = False

    def truth(
        self, z_p: Float[ArrayLike, "*batch physics"], z_n: Float[ArrayLike, "*batch factor"]
    ) -> AbstractModel:
        L = z_p[..., 0]
        one = jnp.ones_like(L)
        return DoublePendulum(m1=one, m2=one, l1=L, l2=L, g=9.81 * one, b1=z_n[..., 0], b2=z_n[..., 1])

    def physics(self, z_p: Float[ArrayLike, " physics"]) -> AbstractModel:
        L, zero = z_p[0], _zeros_like(z_p)
        return DoublePendulum(m1=zero + 1, m2=zero + 1, l1=L, l2=L, g=zero + 9.81, b1=zero, b2=zero)

    def initial_states(self, key: Key, n: int) -> Float[Array, "sequence state"]:
        angles = jax.random.uniform(key, (n, 2), minval=-0.9, maxval=0.9)
        return jnp.concatenate([angles, jnp.zeros_like(angles)], -1)

    def state_from_obs(self, y0: Float[ArrayLike, " channel"]) -> Float[ArrayLike, " state"]:
        return jnp.concatenate([y0[:2], jnp.zeros_like(y0[:2])])

    def observe(self, x: Float[ArrayLike, "*batch state"]) -> Float[ArrayLike, "*batch channel"]:
        return x[..., :2]


N_GRID = 20


@dataclass(frozen=True)
class AdvectionDiffusionSystem(System):
    name: str = "advection_diffusion"
    dt: float = 0.02
    n_train: int = 50
    n_full: int = 100
    noise: float = 1e-3
    substeps: int = 1
    physics_names: tuple[str, ...] = ("D",)
    physics_ranges: tuple[tuple[float, float], ...] = ((0.01, 0.1),)
    factor_names: tuple[str, ...] = ("c",)
    factor_ranges: tuple[tuple[float, float], ...] = ((0.01, 0.1),)
    feasible: tuple[tuple[float, float], ...] = ((0.001, 0.15),)
    aug_mask: tuple[bool, ...] = (True,) * N_GRID
    time_input: bool = False

    def truth(
        self, z_p: Float[ArrayLike, "*batch physics"], z_n: Float[ArrayLike, "*batch factor"]
    ) -> AbstractModel:
        return AdvectionDiffusion(D=z_p[..., 0], c=z_n[..., 0], n_grid=N_GRID)

    def physics(self, z_p: Float[ArrayLike, " physics"]) -> AbstractModel:
        return AdvectionDiffusion(D=z_p[0], c=_zeros_like(z_p), n_grid=N_GRID)

    def initial_states(self, key: Key, n: int) -> Float[Array, "sequence state"]:
        a = jax.random.uniform(key, (n,), minval=0.5, maxval=1.5)
        return jax.vmap(AdvectionDiffusion(D=0.05, n_grid=N_GRID).initial_state)(a)

    def state_from_obs(self, y0: Float[ArrayLike, " channel"]) -> Float[ArrayLike, " state"]:
        return y0

    def observe(self, x: Float[ArrayLike, "*batch state"]) -> Float[ArrayLike, "*batch channel"]:
        return x


SYSTEMS: dict[str, System] = {
    s.name: s for s in (PendulumSystem(), DoublePendulumSystem(), AdvectionDiffusionSystem())
}
"""The benchmark systems by name: ``pendulum``, ``double_pendulum``, ``advection_diffusion``."""


def get_system(name: str | System) -> System:
    """A :class:`System` by name (or the system itself)."""
    if isinstance(name, System):
        return name
    if name not in SYSTEMS:
        raise ValueError(f"unknown system {name!r}; choose one of {sorted(SYSTEMS)}")
    return SYSTEMS[name]
