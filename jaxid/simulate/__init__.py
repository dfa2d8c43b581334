"""Simulation of jaxid models: :func:`simulate` (one record) and :func:`simulate_batch` (many).

- :mod:`jaxid.simulate.smooth`: :func:`simulate`, :func:`simulate_batch` and the smooth engine
  (diffrax's adaptive solvers); a switching model is handed to the event engine.
- :mod:`jaxid.simulate.events`: the event-switching engine for switching models
  (:func:`simulate_switching`, :func:`integrate_knots`, :func:`status_counts`).
- :mod:`jaxid.simulate.chunking`: the padded, sharded chunk loop (:func:`map_chunked`) behind
  :func:`simulate_batch` and the batched evaluations of the higher layers.

``jaxid.simulate`` is also the name of the function that :mod:`jaxid` re-exports: after
``import jaxid``, the attribute ``jaxid.simulate`` is the function, while ``from jaxid.simulate
import ...`` and ``from jaxid.simulate.events import ...`` read this package.
"""

from .chunking import batch_sharding, chunk_length, map_chunked
from .events import (
    HybridSimulation,
    Knots,
    SwitchingSimulation,
    integrate_knots,
    simulate_hybrid,
    simulate_switching,
    states_at,
    status_counts,
)
from .smooth import DEFAULT_ATOL, DEFAULT_MAX_STEPS, DEFAULT_RTOL, Simulation, simulate, simulate_batch

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_RTOL",
    "HybridSimulation",
    "Knots",
    "Simulation",
    "SwitchingSimulation",
    "batch_sharding",
    "chunk_length",
    "integrate_knots",
    "map_chunked",
    "simulate",
    "simulate_batch",
    "simulate_hybrid",
    "simulate_switching",
    "states_at",
    "status_counts",
]
