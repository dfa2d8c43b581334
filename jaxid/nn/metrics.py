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

import numpy as np

METRICS = ("rmse", "mae", "r2", "relative_error")


def regression_metrics(y_true, y_pred, names: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Metrics of each column of ``y_pred`` against ``y_true`` (both ``(N, P)``, or ``(N,)``).

    Returns ``{name: {"rmse", "mae", "r2", "relative_error"}}`` (names default to ``p0, p1, ...``).
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
    out = {}
    for j, name in enumerate(names):
        out[name] = dict(
            rmse=float(np.sqrt(np.mean(err[:, j] ** 2))),
            mae=float(np.mean(np.abs(err[:, j]))),
            r2=float(1.0 - np.sum(err[:, j] ** 2) / sst[j]) if sst[j] > 0 else float("nan"),
            relative_error=float(np.mean(np.abs(err[:, j]) / np.abs(y_true[:, j]))),
        )
    return out
