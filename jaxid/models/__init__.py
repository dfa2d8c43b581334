"""jaxid models: equinox Modules holding their parameters as array fields."""

from .advection_diffusion import AdvectionDiffusion
from .base import AbstractHybridModel, AbstractModel, AbstractSwitchingModel, Status, status_code
from .pendulum import DoublePendulum, ForcedDampedPendulum, Pendulum

__all__ = [
    "AbstractHybridModel",
    "AbstractModel",
    "AbstractSwitchingModel",
    "AdvectionDiffusion",
    "DoublePendulum",
    "ForcedDampedPendulum",
    "Pendulum",
    "Status",
    "Walker",
    "status_code",
]


def __getattr__(name: str):
    # The walker moved to jaxid.walker (above this layer, so not imported with it); its old name
    # here still reads it, on first use.
    if name == "Walker":
        from ..walker.model import Walker

        return Walker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
