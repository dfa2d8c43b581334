"""The Bayes limit: posterior samples of any experiment (the Bayes-optimal estimator and its
risk), and the calibration of posterior estimators.

- :func:`sample_posterior`: NUTS posterior samples for a batch of records of any
  :class:`jaxid.identify.Experiment`, with R-hat, ESS and divergences per record.
- :func:`bayes_risk`: the error of the posterior mean over a test split, the least error any
  estimator can reach.
"""

from .posterior import Posterior, sample_posterior
from .risk import BayesRisk, bayes_risk

__all__ = ["BayesRisk", "Posterior", "bayes_risk", "sample_posterior"]
