r"""Geyer's bipedal spring-mass walker (Geyer, Seyfarth and Blickhan 2006).

A point mass ``m`` (the centre of mass, CoM) walks on two massless linear leg springs of stiffness
``k`` and rest length ``l0``. A leg on the ground at ``x = f`` has length
``l = sqrt((x - f)^2 + y^2)`` and pushes the CoM along the leg with force ``k (l0 - l)``:

.. math::
    m \ddot x = \sum_{i \in \text{contact}} k \Big(\frac{l_0}{l_i} - 1\Big)(x - f_i), \qquad
    m \ddot y = \sum_{i \in \text{contact}} k \Big(\frac{l_0}{l_i} - 1\Big)\, y - m g.

The gait alternates single support (one leg, the *front* leg, on the ground) and double support
(both legs). Switches:

* **touch-down** (single -> double): the swing leg is held at the angle of attack ``alpha0`` from
  the horizontal and lands when ``y`` falls through ``l0 sin(alpha0)`` after mid-stance
  (``x > f_front``), at ``f = x + l0 cos(alpha0)``; it becomes the front leg;
* **take-off** (double -> single): the rear leg leaves when its length reaches ``l0``.

The leg force is zero at both switches, so the vector field is continuous and the energy

.. math::
    E = \tfrac{m}{2}(\dot x^2 + \dot y^2) + m g y + \sum_{i \in \text{contact}} \tfrac{k}{2}(l_0 - l_i)^2

is conserved through every phase and switch. Dividing the equations by ``m`` leaves only
``k/m``, ``l0``, ``alpha0`` and ``g``: from CoM kinematics alone ``m`` and ``k`` are identifiable
only through ``k/m``; the ground reaction forces (in newtons) scale with ``k`` and break that.

Failures, each reported with its own status code (never a NaN): **fall** (``y`` below
``fall_height * l0``), **stall** (``vx`` reaches 0), **flight** (the stance leg reaches ``l0``
in single support: the walker would leave the ground), **front-leg lift-off** (the front leg
reaches ``l0`` in double support) and **phase time-out** (a phase longer than ``phase_time_limit``).

The state carries the discrete part with zero time derivative:
``(x, y, vx, vy, foot_rear, foot_front, double_support)``. In single support ``foot_rear`` is the
previous foot (equal to ``foot_front`` before the first step); build starting states with
:meth:`Walker.initial_state`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Real

from ..errors import check_real_number
from ..models.base import (
    BASE_STATUS_NAMES,
    STATUS_OK,
    SWITCH,
    AbstractSwitchingModel,
    Status,
    as_param,
    param_field,
    status_code,
)
from ..typing import ParamField, RealScalar

ALPHA0_DEG = 69.0
"""The default angle of attack in degrees (Geyer-style walking)."""

CHANNELS = (
    "x",
    "y",
    "vx",
    "vy",
    "grf_x",
    "grf_y",
    "foot_rear",
    "foot_front",
    "double_support",
)
"""Observation channels a :class:`Walker` can report (``channels=``)."""


class WalkerStatus(Status):
    """The walker's status codes: :class:`jaxid.models.base.Status` and its own failures."""

    fall = "fall: the centre of mass dropped below fall_height * l0."
    stall = "stall: the forward speed vx reached 0 (too slow to vault over the stance leg)."
    flight = "flight: the stance leg reached l0 in single support (the walker would leave the ground)."
    front_leg_liftoff = "front-leg lift-off: the front leg reached l0 in double support."


FALL, STALL, FLIGHT, FRONT_LIFTOFF = (
    status_code(WalkerStatus.fall),
    status_code(WalkerStatus.stall),
    status_code(WalkerStatus.flight),
    status_code(WalkerStatus.front_leg_liftoff),
)
STATUS_NAMES = (*BASE_STATUS_NAMES, "fall", "stall", "flight", "front-leg lift-off")
"""Short names of the walker's status codes, indexed by code (as in reports and data sets)."""
TOUCH_DOWN, TAKE_OFF = 0, 1

_X, _Y, _VX, _VY, _FR, _FF, _DS = range(7)


class Walker(AbstractSwitchingModel):
    r"""Geyer's bipedal spring-mass walker (see the module docstring for the equations).

    **Parameters** (array fields; scalars for one record, 1-D for a batch): ``m`` [kg], ``k``
    [N/m], ``l0`` [m], ``alpha0`` [rad] (default 69 degrees), ``g`` [m/s^2] (default 9.81).
    Default priors are those of the gait study: ``m ~ U[60, 75]``, ``k ~ U[8000, 10000]``,
    ``l0 ~ U[0.6, 0.8]``, with ``alpha0`` and ``g`` fixed.

    **Options** (static): ``channels``, the observation channels (default the CoM ``("x", "y")``;
    any of :data:`CHANNELS`; ``grf_x``/``grf_y`` are the ground reaction forces summed over the legs
    in contact, in newtons); ``fall_height``, the CoM height (as a fraction of ``l0``) below which
    the walker has fallen (default 0.5); ``phase_time_limit`` in seconds (default 2.0);
    ``stop_at_midstance``, end the record successfully at the first mid-stance (stance leg vertical,
    ``x = foot_front``) after a step, which gives the step-to-step return map used by
    :func:`jaxid.find_gait`; ``dt``, the internal step of the event-aware integrator (default 10 ms).
    """

    m: ParamField = eqx.field(converter=param_field)
    k: ParamField = eqx.field(converter=param_field)
    l0: ParamField = eqx.field(converter=param_field)
    alpha0: ParamField = eqx.field(converter=param_field, default=math.radians(ALPHA0_DEG))
    g: ParamField = eqx.field(converter=param_field, default=9.81)
    channels: tuple[str, ...] = eqx.field(static=True, default=("x", "y"))
    fall_height: float = eqx.field(static=True, default=0.5)
    phase_time_limit: float = eqx.field(static=True, default=2.0)
    stop_at_midstance: bool = eqx.field(static=True, default=False)
    dt: float = eqx.field(static=True, default=0.01)

    param_names: ClassVar = ("m", "k", "l0", "alpha0", "g")
    param_units: ClassVar = ("kg", "N/m", "m", "rad", "m/s^2")
    default_priors: ClassVar = {
        "m": (60.0, 75.0),
        "k": (8000.0, 10000.0),
        "l0": (0.6, 0.8),
        "alpha0": (math.radians(ALPHA0_DEG), math.radians(ALPHA0_DEG)),
        "g": (9.81, 9.81),
    }
    positive_params: ClassVar = frozenset({"m", "k", "l0", "alpha0", "g"})

    event_names: ClassVar = (
        "touch-down",
        "take-off",
        "flight",
        "front-leg lift-off",
        "fall",
        "stall",
        "midstance",
    )
    event_actions: ClassVar = (SWITCH, SWITCH, FLIGHT, FRONT_LIFTOFF, FALL, STALL, STATUS_OK)
    status_names: ClassVar = STATUS_NAMES
    status_enum: ClassVar = WalkerStatus

    def __check_init__(self):
        if isinstance(self.channels, str) or not self.channels:
            raise ValueError(f"Walker: channels must be a non-empty tuple of names from {CHANNELS}")
        unknown = [c for c in self.channels if c not in CHANNELS]
        if unknown:
            raise ValueError(f"Walker: channels {unknown} unknown; choose from {CHANNELS}")
        check_real_number("Walker", "fall_height", self.fall_height)
        check_real_number("Walker", "phase_time_limit", self.phase_time_limit, low=0)
        # dt = inf would fail later as "flight"
        check_real_number("Walker", "dt", self.dt, low=0)
        if not isinstance(self.stop_at_midstance, (bool, np.bool_)):
            raise TypeError(f"Walker: stop_at_midstance must be a bool, got {self.stop_at_midstance!r}")
        if not 0.0 < self.fall_height < 1.0:
            raise ValueError(
                f"Walker: fall_height must lie in (0, 1) (a fraction of l0), got {self.fall_height}"
            )
        if not self.phase_time_limit > 0:
            raise ValueError(f"Walker: phase_time_limit must be > 0 seconds, got {self.phase_time_limit}")
        if not self.dt > 0:
            raise ValueError(f"Walker: dt must be > 0 seconds, got {self.dt}")
        if (
            isinstance(self.alpha0, jax.Array)
            and not isinstance(self.alpha0, jax.core.Tracer)
            and not np.all(np.asarray(self.alpha0) < math.pi / 2)
        ):
            raise ValueError(
                f"Walker: alpha0 must be an angle in radians in (0, pi/2), got {np.asarray(self.alpha0)} "
                "(degrees given? use math.radians)"
            )

    def params_valid(self) -> Bool[Array, ""]:
        return super().params_valid() & jnp.all(self.alpha0 < math.pi / 2)

    # ------------------------------------------------------------------ declarations
    @property
    def state_names(self) -> tuple[str, ...]:
        return ("x", "y", "vx", "vy", "foot_rear", "foot_front", "double_support")

    @property
    def obs_names(self) -> tuple[str, ...]:
        return self.channels

    @property
    def continuous_size(self) -> int:
        return 4

    @property
    def max_phase_time(self) -> float:
        return self.phase_time_limit

    @property
    def default_dt(self) -> float:
        return self.dt

    # ------------------------------------------------------------------ physics
    def initial_state(
        self,
        y: Real[ArrayLike, "*#batch"],
        vx: Real[ArrayLike, "*#batch"],
        vy: Real[ArrayLike, "*#batch"] = 0.0,
        *,
        x: Real[ArrayLike, "*#batch"] = 0.0,
        foot: Real[ArrayLike, "*#batch"] | None = None,
    ) -> Float[Array, "*#batch 7"]:
        """A single-support starting state: CoM at ``(x, y)`` moving at ``(vx, vy)``, stance foot at
        ``foot`` (default ``x``: the leg vertical, i.e. mid-stance). Broadcasts over batches."""
        x = as_param(x)
        foot = x if foot is None else as_param(foot)
        parts = jnp.broadcast_arrays(x, as_param(y), as_param(vx), as_param(vy), foot)
        zero = jnp.zeros_like(parts[0])
        return jnp.stack([*parts, parts[-1], zero], axis=-1)

    def leg_lengths(
        self, y: Float[ArrayLike, "*batch 7"]
    ) -> tuple[Float[Array, "*batch"], Float[Array, "*batch"]]:
        """``(l_rear, l_front)``: the distances from the CoM to the two feet."""
        # sqrt rather than hypot: lengths are O(1) m (no overflow to guard) and hypot's scaling
        # costs several times more inside the integrator's inner loop.
        y2 = y[..., _Y] ** 2
        return jnp.sqrt((y[..., _X] - y[..., _FR]) ** 2 + y2), jnp.sqrt((y[..., _X] - y[..., _FF]) ** 2 + y2)

    def ground_reaction_force(self, y: Float[ArrayLike, "*batch 7"]) -> Float[Array, "*batch 2"]:
        r"""``(F_x, F_y)`` in newtons: :math:`\sum_{contact} k (l_0/l_i - 1) (x - f_i, y)`."""
        l_rear, l_front = self.leg_lengths(y)
        c_front = self.k * (self.l0 / l_front - 1.0)
        c_rear = y[..., _DS] * self.k * (self.l0 / l_rear - 1.0)
        fx = c_front * (y[..., _X] - y[..., _FF]) + c_rear * (y[..., _X] - y[..., _FR])
        fy = (c_front + c_rear) * y[..., _Y]
        return jnp.stack([fx, fy], axis=-1)

    def energy(self, y: Float[ArrayLike, "*batch 7"]) -> Float[Array, "*batch"]:
        """Total mechanical energy in joules (conserved)."""
        l_rear, l_front = self.leg_lengths(y)
        kinetic = 0.5 * self.m * (y[..., _VX] ** 2 + y[..., _VY] ** 2)
        springs = 0.5 * self.k * ((self.l0 - l_front) ** 2 + y[..., _DS] * (self.l0 - l_rear) ** 2)
        return kinetic + self.m * self.g * y[..., _Y] + springs

    def vector_field(self, t: RealScalar, y: Float[Array, " state"]) -> Float[Array, " state"]:
        l_rear, l_front = self.leg_lengths(y)
        w = self.k / self.m
        c_front = w * (self.l0 / l_front - 1.0)
        c_rear = y[_DS] * w * (self.l0 / l_rear - 1.0)
        ax = c_front * (y[_X] - y[_FF]) + c_rear * (y[_X] - y[_FR])
        ay = (c_front + c_rear) * y[_Y] - self.g
        zero = jnp.zeros_like(ax)
        return jnp.stack([y[_VX], y[_VY], ax, ay, zero, zero, zero])

    def observe(self, t: RealScalar, y: Float[Array, " state"]) -> Float[Array, " channel"]:
        values = {
            "x": y[_X],
            "y": y[_Y],
            "vx": y[_VX],
            "vy": y[_VY],
            "foot_rear": y[_FR],
            "foot_front": y[_FF],
            "double_support": y[_DS],
        }
        if "grf_x" in self.channels or "grf_y" in self.channels:
            grf = self.ground_reaction_force(y)
            values["grf_x"], values["grf_y"] = grf[0], grf[1]
        return jnp.stack([values[c] for c in self.channels])

    # ------------------------------------------------------------------ events
    def event_functions(
        self, t: RealScalar, y: Float[Array, " state"]
    ) -> tuple[Float[Array, " event"], Bool[Array, " event"]]:
        l_rear, l_front = self.leg_lengths(y)
        single = y[_DS] < 0.5
        h = jnp.stack(
            [
                self.l0 * jnp.sin(self.alpha0) - y[_Y],  # touch-down: y falls through l0 sin(alpha0)
                l_rear - self.l0,  # take-off: rear leg reaches l0
                l_front - self.l0,  # flight: stance leg reaches l0 in single support
                l_front - self.l0,  # front leg reaches l0 in double support
                self.fall_height * self.l0 - y[_Y],  # fall
                -y[_VX],  # stall
                y[_X] - y[_FF],  # mid-stance of the new stance leg
            ]
        )
        after_midstance = y[_X] > y[_FF]
        stepped = y[_FF] > y[_FR]
        enabled = jnp.stack(
            [
                single & after_midstance,
                ~single,
                single,
                ~single,
                jnp.asarray(True),
                jnp.asarray(True),
                single & stepped & jnp.asarray(self.stop_at_midstance),
            ]
        )
        return h, enabled

    def apply_event(
        self, index: Int[ArrayLike, ""], t: RealScalar, y: Float[Array, " state"]
    ) -> Float[Array, " state"]:
        touch_down = index == TOUCH_DOWN
        new_foot = y[_X] + self.l0 * jnp.cos(self.alpha0)
        foot_rear = jnp.where(touch_down, y[_FF], y[_FR])
        foot_front = jnp.where(touch_down, new_foot, y[_FF])
        ds = jnp.where(touch_down, 1.0, 0.0).astype(y.dtype)
        return jnp.stack([y[_X], y[_Y], y[_VX], y[_VY], foot_rear, foot_front, ds])
