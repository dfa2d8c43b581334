"""The Bayes limit: posterior samples of any experiment (the Bayes-optimal estimator and its
risk), and the calibration of posterior estimators.

- :func:`sample_posterior`: posterior samples (adaptive random-walk Metropolis or NUTS,
  Fisher-preconditioned) for a batch of records of any :class:`jaxid.identify.Experiment`, with
  R-hat and ESS per record.
- :func:`bayes_risk`: the error of the posterior mean over a test split, the least error any
  estimator can reach.
- :func:`compare`: a learned point estimator or posterior against the reference: errors,
  posterior distances, the angle to the Fisher null direction, a verdict per parameter.
- :func:`calibrate`, :func:`sbc_ranks`, :func:`expected_coverage`: simulation-based calibration
  and coverage of any posterior estimator, with plots.
"""

from . import diagnostics, kernels
from .calibration import (
    DEFAULT_LEVELS,
    CalibrationResult,
    calibrate,
    expected_coverage,
    gaussian_samples,
    rank_uniformity,
    sbc_ranks,
)
from .compare import AT_LIMIT, MSE_RATIO, Comparison, compare, null_axis_angle, verdict
from .posterior import Posterior, sample_posterior
from .risk import BayesRisk, bayes_risk

__all__ = [
    "AT_LIMIT",
    "DEFAULT_LEVELS",
    "MSE_RATIO",
    "BayesRisk",
    "CalibrationResult",
    "Comparison",
    "Posterior",
    "bayes_risk",
    "calibrate",
    "compare",
    "diagnostics",
    "expected_coverage",
    "gaussian_samples",
    "kernels",
    "null_axis_angle",
    "rank_uniformity",
    "sample_posterior",
    "sbc_ranks",
    "verdict",
]
