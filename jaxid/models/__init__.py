"""jaxid models: equinox Modules holding their parameters as array fields."""

from .advection_diffusion import AdvectionDiffusion
from .base import AbstractModel
from .pendulum import DoublePendulum, ForcedDampedPendulum, Pendulum

__all__ = ["AbstractModel", "AdvectionDiffusion", "DoublePendulum", "ForcedDampedPendulum", "Pendulum"]
