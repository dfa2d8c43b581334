"""jaxid models: equinox Modules holding their parameters as array fields."""

from .advection_diffusion import AdvectionDiffusion
from .base import AbstractHybridModel, AbstractModel
from .pendulum import DoublePendulum, ForcedDampedPendulum, Pendulum
from .walking import Walker

__all__ = [
    "AbstractHybridModel",
    "AbstractModel",
    "AdvectionDiffusion",
    "DoublePendulum",
    "ForcedDampedPendulum",
    "Pendulum",
    "Walker",
]
