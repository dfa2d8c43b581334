"""One-dimensional advection-diffusion by the method of lines."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import check_positive_int, check_real_number
from ..typing import ParamField, RealScalar
from .base import AbstractModel, param_field


class AdvectionDiffusion(AbstractModel):
    r"""Advection-diffusion ``u_t = D u_xx - c u_x`` on a uniform 1-D grid.

    The state is ``u`` at the grid points ``x_i = i dx``, ``i = 0 .. n_grid-1``. Derivatives are
    second-order central differences with zero Dirichlet values at ghost nodes just outside
    the grid (``u_{-1} = u_{n} = 0``):

    .. math::
        \dot u_i = D\,\frac{u_{i+1} - 2u_i + u_{i-1}}{dx^2} - c\,\frac{u_{i+1} - u_{i-1}}{2\,dx}

    The observation is the whole field (one channel per grid point). Defaults follow the
    Phys-VAE data set: 20 points, ``dx = 0.1``, ``D, c ~ U[0.01, 0.1]``; a typical initial state
    is :meth:`initial_state` ``a sin(pi x / x_last)``.

    **Arguments:** ``D`` [m^2/s] (diffusivity, > 0), ``c`` [m/s] (advection speed, any sign);
    ``n_grid`` (static, >= 3), ``dx`` [m] (static, > 0).
    """

    D: ParamField = eqx.field(converter=param_field)
    c: ParamField = eqx.field(converter=param_field, default=0.0)
    n_grid: int = eqx.field(static=True, default=20)
    dx: float = eqx.field(static=True, default=0.1)

    param_names: ClassVar = ("D", "c")
    param_units: ClassVar = ("m^2/s", "m/s")
    default_priors: ClassVar = {"D": (0.01, 0.1), "c": (0.01, 0.1)}
    positive_params: ClassVar = frozenset({"D"})

    def __check_init__(self):
        check_positive_int("AdvectionDiffusion", "n_grid", self.n_grid, minimum=3)
        # dx = inf would switch diffusion off silently (u_xx = 0)
        check_real_number("AdvectionDiffusion", "dx", self.dx, low=0)

    @property
    def grid(self) -> Float[Array, " n_grid"]:
        return jnp.arange(self.n_grid) * self.dx

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(f"u{i}" for i in range(self.n_grid))

    @property
    def obs_names(self) -> tuple[str, ...]:
        return self.state_names

    def initial_state(self, a: RealScalar) -> Float[Array, " n_grid"]:
        """The sine profile ``a sin(pi x / x_last)`` (zero at both ends)."""
        x = self.grid
        return a * jnp.sin(jnp.pi * x / x[-1])

    def vector_field(self, t: RealScalar, y: Float[Array, " state"]) -> Float[Array, " state"]:
        padded = jnp.pad(y, 1)  # zero ghost nodes
        left, right = padded[:-2], padded[2:]
        u_xx = (right - 2 * y + left) / self.dx**2
        u_x = (right - left) / (2 * self.dx)
        return self.D * u_xx - self.c * u_x

    def observe(self, t: RealScalar, y: Float[Array, " state"]) -> Float[Array, " channel"]:
        return y
