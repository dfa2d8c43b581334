"""jaxid: a JAX-native differentiable simulation toolkit for parameter identifiability."""

from .models import AbstractModel, AdvectionDiffusion, DoublePendulum, ForcedDampedPendulum, Pendulum
from .simulate import Simulation, simulate, simulate_batch

__version__ = "0.1.0"

__all__ = [
    "AbstractModel",
    "AdvectionDiffusion",
    "DoublePendulum",
    "ForcedDampedPendulum",
    "Pendulum",
    "Simulation",
    "__version__",
    "simulate",
    "simulate_batch",
]
