"""jaxid: a JAX-native differentiable simulation toolkit for parameter identifiability."""

from . import identify, nn, sensitivity
from ._version import __version__
from .errors import NonFiniteError
from .models import (
    AbstractHybridModel,
    AbstractModel,
    AbstractSwitchingModel,
    AdvectionDiffusion,
    DoublePendulum,
    ForcedDampedPendulum,
    Pendulum,
)
from .simulate import (
    HybridSimulation,
    Simulation,
    SwitchingSimulation,
    simulate,
    simulate_batch,
    status_counts,
)
from .walker import Gait, GaitDataset, Walker, find_gait, generate_gait_dataset, load_dataset

__all__ = [
    "AbstractHybridModel",
    "AbstractModel",
    "AbstractSwitchingModel",
    "AdvectionDiffusion",
    "DoublePendulum",
    "ForcedDampedPendulum",
    "Gait",
    "GaitDataset",
    "HybridSimulation",
    "NonFiniteError",
    "Pendulum",
    "Simulation",
    "SwitchingSimulation",
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
