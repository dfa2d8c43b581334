"""Sensitivity analysis of any JAX function ``params -> outputs`` (scalar or array) and of jaxid
models: local normalised coefficients (:func:`local_sensitivity`), derivative-based global
measures (:func:`dgsm`), Sobol first-order and total indices with bootstrap intervals
(:func:`sobol_indices`) and Morris elementary effects (:func:`morris_effects`). Priors are
independent uniform ranges ``{name: (low, high)}``; evaluations run under ``vmap`` in chunks,
split across local devices."""

from .gradient import DGSM, LocalSensitivity, dgsm, local_sensitivity
from .morris import MorrisEffects, morris_effects, morris_trajectories
from .sampling import Box, evaluate, sobol_points
from .sobol import SobolIndices, indices_from_evaluations, saltelli_samples, sobol_indices

__all__ = [
    "DGSM",
    "Box",
    "LocalSensitivity",
    "MorrisEffects",
    "SobolIndices",
    "dgsm",
    "evaluate",
    "indices_from_evaluations",
    "local_sensitivity",
    "morris_effects",
    "morris_trajectories",
    "saltelli_samples",
    "sobol_indices",
    "sobol_points",
]
