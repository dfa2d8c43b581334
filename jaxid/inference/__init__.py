"""The Bayes limit: posterior samples of any experiment (the Bayes-optimal estimator and its
risk), and the calibration of posterior estimators.

- :func:`sample_posterior`: NUTS posterior samples for a batch of records of any
  :class:`jaxid.identify.Experiment`, with R-hat, ESS and divergences per record.
- :func:`bayes_risk`: the error of the posterior mean over a test split, the least error any
  estimator can reach.
- :func:`compare`: a learned point estimator or posterior against the reference: errors,
  posterior distances, the angle to the Fisher null direction, a verdict per parameter.
"""

from . import diagnostics, kernels
from .compare import AT_LIMIT, Comparison, compare, null_axis_angle, verdict
from .posterior import Posterior, sample_posterior
from .risk import BayesRisk, bayes_risk

__all__ = [
    "AT_LIMIT",
    "BayesRisk",
    "Comparison",
    "Posterior",
    "bayes_risk",
    "compare",
    "diagnostics",
    "kernels",
    "null_axis_angle",
    "sample_posterior",
    "verdict",
]
