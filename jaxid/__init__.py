"""jaxid: a JAX-native differentiable simulation toolkit for parameter identifiability."""

from . import identify, nn, sensitivity
from ._version import __version__
from .data import GaitDataset, generate_gait_dataset, load_dataset
from .errors import NonFiniteError
from .gait import Gait, find_gait
from .models import (
    AbstractHybridModel,
    AbstractModel,
    AdvectionDiffusion,
    DoublePendulum,
    ForcedDampedPendulum,
    Pendulum,
    Walker,
)
from .simulate import Simulation, simulate, simulate_batch
from .switching import HybridSimulation, status_counts

__all__ = [
    "AbstractHybridModel",
    "AbstractModel",
    "AdvectionDiffusion",
    "DoublePendulum",
    "ForcedDampedPendulum",
    "Gait",
    "GaitDataset",
    "HybridSimulation",
    "NonFiniteError",
    "Pendulum",
    "Simulation",
    "Walker",
    "__version__",
    "find_gait",
    "generate_gait_dataset",
    "identify",
    "load_dataset",
    "nn",
    "sensitivity",
    "simulate",
    "simulate_batch",
    "status_counts",
]
