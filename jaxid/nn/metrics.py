r"""Regression metrics per parameter.

For truths :math:`y_i` and predictions :math:`\hat y_i`, ``i = 1..N``:

- ``rmse`` :math:`= \sqrt{\tfrac1N\sum_i (\hat y_i - y_i)^2}`,
  ``mae`` :math:`= \tfrac1N\sum_i |\hat y_i - y_i|`;
- ``r2`` :math:`= 1 - \sum_i (\hat y_i - y_i)^2 / \sum_i (y_i - \bar y)^2` (1 is perfect, 0 is no
  better than predicting the mean, negative is worse);
- ``relative_error`` :math:`= \tfrac1N\sum_i |\hat y_i - y_i| / |y_i|` (mean absolute relative error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import ArrayLike, Float

METRICS = ("rmse", "mae", "r2", "relative_error")


@dataclass(frozen=True)
class RegressionMetrics:
    """What :func:`regression_metrics` returns: one value per parameter (column) for each metric of
    the module docstring, in the order of ``names``.

    - ``names``: the parameter names, a tuple of ``P`` strings;
    - ``rmse``: root mean squared error, float64 array of shape ``(P,)``;
    - ``mae``: mean absolute error, ``(P,)``;
    - ``r2``: coefficient of determination, ``(P,)`` (NaN for a column whose truth is constant);
    - ``relative_error``: mean absolute relative error, ``(P,)``.
    """

    names: tuple[str, ...]
    rmse: Float[np.ndarray, " param"]
    mae: Float[np.ndarray, " param"]
    r2: Float[np.ndarray, " param"]
    relative_error: Float[np.ndarray, " param"]

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{name: {"rmse", "mae", "r2", "relative_error"}}`` with Python floats, for JSON."""
        return {
            name: {metric: float(getattr(self, metric)[j]) for metric in METRICS}
            for j, name in enumerate(self.names)
        }


def regression_metrics(
    y_true: Float[ArrayLike, " records *param"],
    y_pred: Float[ArrayLike, " records *param"],
    names: Sequence[str] | None = None,
) -> RegressionMetrics:
    """Metrics of each column of ``y_pred`` against ``y_true`` (both ``(N, P)``, or ``(N,)``).

    **Returns:** a :class:`RegressionMetrics` (names default to ``p0, p1, ...``); its
    ``to_dict()`` is ``{name: {"rmse", "mae", "r2", "relative_error"}}``.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 1:
        y_true, y_pred = y_true[:, None], y_pred.reshape(-1, 1)
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise ValueError(
            f"regression_metrics: y_true and y_pred must have the same (N, P) shape, "
            f"got {y_true.shape} and {y_pred.shape}"
        )
    if y_true.shape[0] < 2:
        raise ValueError(f"regression_metrics: need at least 2 records, got {y_true.shape[0]}")
    if not (np.all(np.isfinite(y_true)) and np.all(np.isfinite(y_pred))):
        raise ValueError("regression_metrics: y_true and y_pred must be finite (got NaN or inf)")
    names = [f"p{i}" for i in range(y_true.shape[1])] if names is None else list(names)
    if len(names) != y_true.shape[1]:
        raise ValueError(f"regression_metrics: {len(names)} names for {y_true.shape[1]} columns")
    err = y_pred - y_true
    sst = np.sum((y_true - y_true.mean(0)) ** 2, axis=0)
    cols = range(len(names))
    return RegressionMetrics(
        names=tuple(names),
        rmse=np.array([np.sqrt(np.mean(err[:, j] ** 2)) for j in cols], dtype=np.float64),
        mae=np.array([np.mean(np.abs(err[:, j])) for j in cols], dtype=np.float64),
        r2=np.array(
            [1.0 - np.sum(err[:, j] ** 2) / sst[j] if sst[j] > 0 else np.nan for j in cols], dtype=np.float64
        ),
        relative_error=np.array(
            [np.mean(np.abs(err[:, j]) / np.abs(y_true[:, j])) for j in cols], dtype=np.float64
        ),
    )
