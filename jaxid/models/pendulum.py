"""Pendulum models: physical, forced damped and double pendulum.

Angles are measured from the downward vertical, counter-clockwise positive; the pivot is at the
origin with ``y`` pointing up, so a bob at angle ``theta`` on a rod of length ``L`` is at
``(L sin theta, -L cos theta)``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ..typing import ParamField, RealScalar
from .base import AbstractModel, check_choice, param_field


class Pendulum(AbstractModel):
    r"""Physical pendulum: a point mass ``m`` on a massless rod of length ``L``.

    .. math::
        \ddot\theta = -\frac{g}{L}\sin\theta - \frac{b}{m L^2}\dot\theta

    with viscous damping ``b`` (torque ``-b \dot\theta``). State ``(theta, omega)``.
    Only ``g/L`` and ``b/(m L^2)`` enter the angle dynamics, so from ``theta`` alone two of the
    four parameters are identifiable; the bob position (``observe_mode="position"``) also reveals ``L``.

    **Arguments:** ``m`` [kg], ``L`` [m], ``b`` [N m s] (default 0), ``g`` [m/s^2]
    (default 9.81); ``observe_mode``: ``"angle"`` (theta), ``"position"`` (bob x, y) or ``"both"``.
    """

    m: ParamField = eqx.field(converter=param_field)
    L: ParamField = eqx.field(converter=param_field)
    b: ParamField = eqx.field(converter=param_field, default=0.0)
    g: ParamField = eqx.field(converter=param_field, default=9.81)
    observe_mode: Literal["angle", "position", "both"] = eqx.field(static=True, default="angle")

    param_names: ClassVar = ("m", "L", "b", "g")
    param_units: ClassVar = ("kg", "m", "N m s", "m/s^2")
    default_priors: ClassVar = {"m": (0.5, 2.0), "L": (0.5, 2.0), "b": (0.0, 0.5), "g": (9.81, 9.81)}
    positive_params: ClassVar = frozenset({"m", "L", "g"})
    nonnegative_params: ClassVar = frozenset({"b"})

    def __check_init__(self):
        check_choice("Pendulum", "observe_mode", self.observe_mode, {"angle", "position", "both"})

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("theta", "omega")

    @property
    def obs_names(self) -> tuple[str, ...]:
        return {"angle": ("theta",), "position": ("x", "y"), "both": ("theta", "x", "y")}[self.observe_mode]

    def vector_field(self, t: RealScalar, y: Float[Array, " state"]) -> Float[Array, " state"]:
        theta, omega = y[0], y[1]
        domega = -(self.g / self.L) * jnp.sin(theta) - self.b / (self.m * self.L**2) * omega
        return jnp.stack([omega, domega])

    def observe(self, t: RealScalar, y: Float[Array, " state"]) -> Float[Array, " channel"]:
        theta = y[0]
        x, yy = self.L * jnp.sin(theta), -self.L * jnp.cos(theta)
        return {
            "angle": jnp.stack([theta]),
            "position": jnp.stack([x, yy]),
            "both": jnp.stack([theta, x, yy]),
        }[self.observe_mode]

    def energy(self, y: Float[ArrayLike, "*time 2"]) -> Float[Array, "*time"]:
        r"""Mechanical energy ``m L^2 omega^2 / 2 + m g L (1 - cos theta)`` [J] (conserved if b = 0)."""
        theta, omega = y[..., 0], y[..., 1]
        return 0.5 * self.m * self.L**2 * omega**2 + self.m * self.g * self.L * (1 - jnp.cos(theta))


class ForcedDampedPendulum(AbstractModel):
    r"""Forced damped pendulum, the hybrid-model benchmark of Phys-VAE and Meta-Hybrid-VAE.

    .. math::
        \ddot\theta = -\omega^2 \sin\theta - \gamma\dot\theta + A\,\omega^2 \cos(2\pi f t)

    State ``(theta, dtheta)``; observation ``theta`` (``observe_mode="angle"``) or the full state
    (``"state"``). Default priors follow the Phys-VAE data set: ``omega ~ U[0.785, 3.14]``,
    ``gamma ~ U[0, 0.8]``, ``A ~ U[0, 40]``, ``f ~ U[3.14, 6.28]``.
    """

    omega: ParamField = eqx.field(converter=param_field)
    gamma: ParamField = eqx.field(converter=param_field, default=0.0)
    A: ParamField = eqx.field(converter=param_field, default=0.0)
    f: ParamField = eqx.field(converter=param_field, default=1.0)
    observe_mode: Literal["angle", "state"] = eqx.field(static=True, default="angle")

    param_names: ClassVar = ("omega", "gamma", "A", "f")
    param_units: ClassVar = ("rad/s", "1/s", "1", "1/s")
    default_priors: ClassVar = {
        "omega": (0.785, 3.14),
        "gamma": (0.0, 0.8),
        "A": (0.0, 40.0),
        "f": (3.14, 6.28),
    }
    positive_params: ClassVar = frozenset({"omega", "f"})
    nonnegative_params: ClassVar = frozenset({"gamma", "A"})

    def __check_init__(self):
        check_choice("ForcedDampedPendulum", "observe_mode", self.observe_mode, {"angle", "state"})

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("theta", "dtheta")

    @property
    def obs_names(self) -> tuple[str, ...]:
        return ("theta",) if self.observe_mode == "angle" else self.state_names

    def vector_field(self, t: RealScalar, y: Float[Array, " state"]) -> Float[Array, " state"]:
        theta, dtheta = y[0], y[1]
        w2 = self.omega**2
        forcing = self.A * w2 * jnp.cos(2 * jnp.pi * self.f * t)
        return jnp.stack([dtheta, -w2 * jnp.sin(theta) - self.gamma * dtheta + forcing])

    def observe(self, t: RealScalar, y: Float[Array, " state"]) -> Float[Array, " channel"]:
        return y[:1] if self.observe_mode == "angle" else y


class DoublePendulum(AbstractModel):
    r"""Double pendulum: point masses ``m1``, ``m2`` on massless rods ``l1``, ``l2``.

    Absolute angles ``theta1``, ``theta2`` from the downward vertical; state
    ``(theta1, theta2, omega1, omega2)``. With ``Delta = theta1 - theta2`` the Lagrange equations
    read ``M(theta) [omega1', omega2'] = r`` with

    .. math::
        M = \begin{pmatrix} (m_1+m_2) l_1^2 & m_2 l_1 l_2 \cos\Delta \\
                            m_2 l_1 l_2 \cos\Delta & m_2 l_2^2 \end{pmatrix},\quad
        r = \begin{pmatrix} -m_2 l_1 l_2 \omega_2^2 \sin\Delta - (m_1+m_2) g l_1 \sin\theta_1
                            - b_1\omega_1 + b_2(\omega_2-\omega_1) \\
                            m_2 l_1 l_2 \omega_1^2 \sin\Delta - m_2 g l_2 \sin\theta_2
                            - b_2(\omega_2-\omega_1) \end{pmatrix}

    Joint damping: ``b1`` at the pivot, ``b2`` at the elbow (Rayleigh dissipation
    ``b1 omega1^2/2 + b2 (omega2 - omega1)^2/2``); both default to 0 (energy conserved).
    ``observe_mode``: ``"angle"`` (theta1, theta2), ``"position"`` (x1, y1, x2, y2) or ``"both"``.
    """

    m1: ParamField = eqx.field(converter=param_field)
    m2: ParamField = eqx.field(converter=param_field)
    l1: ParamField = eqx.field(converter=param_field)
    l2: ParamField = eqx.field(converter=param_field)
    g: ParamField = eqx.field(converter=param_field, default=9.81)
    b1: ParamField = eqx.field(converter=param_field, default=0.0)
    b2: ParamField = eqx.field(converter=param_field, default=0.0)
    observe_mode: Literal["angle", "position", "both"] = eqx.field(static=True, default="angle")

    param_names: ClassVar = ("m1", "m2", "l1", "l2", "g", "b1", "b2")
    param_units: ClassVar = ("kg", "kg", "m", "m", "m/s^2", "N m s", "N m s")
    default_priors: ClassVar = {
        "m1": (0.5, 2.0),
        "m2": (0.5, 2.0),
        "l1": (0.5, 1.5),
        "l2": (0.5, 1.5),
        "g": (9.81, 9.81),
        "b1": (0.0, 0.0),
        "b2": (0.0, 0.0),
    }
    positive_params: ClassVar = frozenset({"m1", "m2", "l1", "l2", "g"})
    nonnegative_params: ClassVar = frozenset({"b1", "b2"})

    def __check_init__(self):
        check_choice("DoublePendulum", "observe_mode", self.observe_mode, {"angle", "position", "both"})

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("theta1", "theta2", "omega1", "omega2")

    @property
    def obs_names(self) -> tuple[str, ...]:
        return {
            "angle": ("theta1", "theta2"),
            "position": ("x1", "y1", "x2", "y2"),
            "both": ("theta1", "theta2", "x1", "y1", "x2", "y2"),
        }[self.observe_mode]

    def vector_field(self, t: RealScalar, y: Float[Array, " state"]) -> Float[Array, " state"]:
        th1, th2, w1, w2 = y[0], y[1], y[2], y[3]
        m1, m2, l1, l2, g = self.m1, self.m2, self.l1, self.l2, self.g
        d = th1 - th2
        c, s = jnp.cos(d), jnp.sin(d)
        a11 = (m1 + m2) * l1**2
        a12 = m2 * l1 * l2 * c
        a22 = m2 * l2**2
        rel = w2 - w1
        r1 = -m2 * l1 * l2 * w2**2 * s - (m1 + m2) * g * l1 * jnp.sin(th1) - self.b1 * w1 + self.b2 * rel
        r2 = m2 * l1 * l2 * w1**2 * s - m2 * g * l2 * jnp.sin(th2) - self.b2 * rel
        det = a11 * a22 - a12**2  # = m2 l1^2 l2^2 (m1 + m2 sin^2 d) > 0
        dw1 = (a22 * r1 - a12 * r2) / det
        dw2 = (a11 * r2 - a12 * r1) / det
        return jnp.stack([w1, w2, dw1, dw2])

    def positions(self, y: Float[ArrayLike, "*time 4"]) -> Float[Array, "*time 4"]:
        """Bob positions ``(x1, y1, x2, y2)`` [m]."""
        th1, th2 = y[..., 0], y[..., 1]
        x1, y1 = self.l1 * jnp.sin(th1), -self.l1 * jnp.cos(th1)
        x2, y2 = x1 + self.l2 * jnp.sin(th2), y1 - self.l2 * jnp.cos(th2)
        return jnp.stack([x1, y1, x2, y2], -1)

    def observe(self, t: RealScalar, y: Float[Array, " state"]) -> Float[Array, " channel"]:
        if self.observe_mode == "angle":
            return y[:2]
        pos = self.positions(y)
        return pos if self.observe_mode == "position" else jnp.concatenate([y[:2], pos])

    def energy(self, y: Float[ArrayLike, "*time 4"]) -> Float[Array, "*time"]:
        """Mechanical energy ``T + V`` [J], zero potential at the pivot (conserved if b1 = b2 = 0)."""
        th1, th2, w1, w2 = (y[..., i] for i in range(4))
        m1, m2, l1, l2, g = self.m1, self.m2, self.l1, self.l2, self.g
        kin = 0.5 * (m1 + m2) * l1**2 * w1**2 + 0.5 * m2 * l2**2 * w2**2
        kin = kin + m2 * l1 * l2 * w1 * w2 * jnp.cos(th1 - th2)
        pot = -(m1 + m2) * g * l1 * jnp.cos(th1) - m2 * g * l2 * jnp.cos(th2)
        return kin + pot
