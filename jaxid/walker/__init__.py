"""Geyer's spring-mass walker: the model, its periodic gaits and the gait data set.

- :mod:`jaxid.walker.model`: :class:`Walker`, a hybrid (event-switching) model.
- :mod:`jaxid.walker.gait`: periodic gaits as fixed points of the step-to-step return map.
- :mod:`jaxid.walker.data`: the gait data set: generation, noise, save and load.
- :mod:`jaxid.walker.store`: gait data sets in a chunked on-disk store (:mod:`jaxid.data.store`).
"""

from .data import (
    GaitDataset,
    PeriodicRecords,
    add_noise,
    generate_gait_dataset,
    load_dataset,
    periodic_records,
)
from .gait import Gait, ReturnMap, find_gait, gait_initial_state, return_map, stiffness_range
from .model import Walker, WalkerStatus
from .store import StoredDataset, generate_into_store, open_gait_store

__all__ = [
    "Gait",
    "GaitDataset",
    "PeriodicRecords",
    "ReturnMap",
    "StoredDataset",
    "Walker",
    "WalkerStatus",
    "add_noise",
    "find_gait",
    "gait_initial_state",
    "generate_gait_dataset",
    "generate_into_store",
    "load_dataset",
    "open_gait_store",
    "periodic_records",
    "return_map",
    "stiffness_range",
]
