"""Hybrid physics+neural generative models: APHYNITY, Hybrid-VAE and Meta-Hybrid-VAE.

- :mod:`~jaxid.hybrid.systems`: the forced damped pendulum, double pendulum and advection-diffusion
  systems, each a truth and a physics part.
- :func:`make_hybrid_data`: task-structured train/val/test/OOD splits with every latent kept.
- :mod:`~jaxid.hybrid.models`: the three models on one hybrid ODE decoder.
- :func:`fit`, :func:`evaluate`: the shared training loop (jitted, scanned, checkpointed) and scores
  (MSE of ``z_p``, :func:`mcc` of the neural latents, reconstruction and prediction MSE).
- :mod:`~jaxid.hybrid.losses`: every loss term as a pure function.
- :func:`zp_bound`: the Cramer-Rao bound of ``z_p`` from one sequence, the data's limit;
  :func:`zp_posterior`: the Bayes reference, the exact posterior of ``z_p`` by quadrature.
"""

from .bounds import ZpBound, ZpPosterior, zp_bound, zp_experiment, zp_posterior
from .datasets import HybridData, HybridSplit, make_hybrid_data, shifted_ranges
from .metrics import correlation_matrix, mcc
from .models import MODEL_KINDS, MODEL_LABELS, Aphynity, HybridDecoder, HybridVAE, make_model
from .systems import SYSTEMS, System, get_system
from .training import (
    HybridEvaluation,
    HybridFitResult,
    HybridInference,
    HybridTrainConfig,
    context_sets,
    evaluate,
    fit,
    infer,
    load_model,
    save_model,
)

__all__ = [
    "MODEL_KINDS",
    "MODEL_LABELS",
    "SYSTEMS",
    "Aphynity",
    "HybridData",
    "HybridDecoder",
    "HybridEvaluation",
    "HybridFitResult",
    "HybridInference",
    "HybridSplit",
    "HybridTrainConfig",
    "HybridVAE",
    "System",
    "ZpBound",
    "ZpPosterior",
    "context_sets",
    "correlation_matrix",
    "evaluate",
    "fit",
    "get_system",
    "infer",
    "load_model",
    "make_hybrid_data",
    "make_model",
    "mcc",
    "save_model",
    "shifted_ranges",
    "zp_bound",
    "zp_experiment",
    "zp_posterior",
]
