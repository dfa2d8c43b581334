"""Learned parameter maps: estimators (MLP, CNN, GRU), training, metrics and the
identifiability ceiling.

- :func:`train` fits an :class:`Estimator` (a deep ensemble with input and target
  standardisation) to trajectories, with Adam, minibatches scanned inside one jitted call per
  epoch, early stopping on a validation split and best-checkpoint restore.
- :func:`train_posterior` fits a :class:`PosteriorEstimator`: a conditional normalizing flow
  (flowjax) on an embedding network, an amortized posterior that samples in one jitted call.
- Both train on data larger than memory: a lazy ``x`` (a field of an on-disk store, a zarr
  array) or one wrapped in :class:`Streamed` is streamed window by window, to the same networks
  as in-memory training (:mod:`jaxid.nn.streaming`).
- :func:`regression_metrics`: RMSE, MAE, R^2 and relative error per parameter.
- :func:`scaling_ceiling`: the posterior mean of the parameters given only their identifiable
  combinations, the error floor of any estimator.
"""

from .ceiling import scaling_ceiling
from .estimator import Estimator, load_estimator
from .metrics import METRICS, RegressionMetrics, regression_metrics
from .networks import ACTIVATIONS, ARCHITECTURES, CNN, GRU, MLP, make_network
from .posterior import PosteriorEstimator, PosteriorResult, load_posterior_estimator, train_posterior
from .streaming import Streamed
from .training import TrainConfig, TrainResult, split_indices, train

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "CNN",
    "GRU",
    "METRICS",
    "MLP",
    "Estimator",
    "PosteriorEstimator",
    "PosteriorResult",
    "RegressionMetrics",
    "Streamed",
    "TrainConfig",
    "TrainResult",
    "load_estimator",
    "load_posterior_estimator",
    "make_network",
    "regression_metrics",
    "scaling_ceiling",
    "split_indices",
    "train",
    "train_posterior",
]
