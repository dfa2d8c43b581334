r"""The study's learned point estimators: one :func:`jaxid.nn.train` call per target set, scored on
the test split. Shared by :func:`jaxid.study.run` and the gait study (``jaxid gait``).

Targets that are positive may be learned as :math:`\log\theta` (``log=True``): an identifiable
monomial :math:`\prod_i \theta_i^{a_i}` is then linear in the network's outputs,
:math:`a \cdot \log\theta`, and the predictions are :math:`\exp` of the network's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..nn import TrainConfig, TrainResult, regression_metrics, train
from .config import EstimatorOptions

__all__ = ["network_spec", "train_config", "train_estimator"]


def network_spec(options: EstimatorOptions) -> dict[str, Any]:
    """The network of ``options`` as ``{"arch": ..., ...}`` (the keyword arguments of
    :func:`jaxid.nn.train`'s network): depth, width and activation for an MLP or a CNN, the width
    for a GRU."""
    if options.arch == "gru":
        return dict(arch="gru", width=options.width)
    return dict(arch=options.arch, depth=options.depth, width=options.width, activation=options.activation)


def train_config(
    options: EstimatorOptions,
    *,
    split: Sequence[float],
    seed: int,
    progress: bool,
    members: int | None = None,
) -> TrainConfig:
    """The :class:`jaxid.nn.TrainConfig` of ``options`` with the study's ``split`` and ``seed``
    (``members``: ensemble members, default ``options.members``)."""
    return TrainConfig(
        epochs=options.epochs,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        patience=options.patience,
        members=options.members if members is None else members,
        split=tuple(split),
        seed=seed,
        progress=progress,
    )


def train_estimator(
    x: np.ndarray,
    targets: np.ndarray,
    names: Sequence[str],
    options: EstimatorOptions,
    *,
    split: Sequence[float],
    seed: int,
    log: bool = False,
    network: Mapping[str, Any] | None = None,
    progress: bool = True,
    say: Callable[..., None] = print,
    desc: str = "",
) -> tuple[TrainResult, np.ndarray, np.ndarray | None, dict | None]:
    """Train one estimator of ``targets`` (``(records, target)``) from ``x`` and score it.

    - ``options``: the training options (epochs, batch size, learning rate, patience, ensemble
      members) and, unless ``network`` is given, the network (:func:`network_spec`);
    - ``network``: another network, ``{"arch": ..., ...}`` (a ``"label"`` key is ignored);
    - ``split``, ``seed``: the seeded train/validation/test split of :func:`jaxid.nn.train`;
    - ``log``: learn ``log(targets)`` (positive targets) and predict ``exp`` of the output.

    **Returns:** ``(result, test, predictions, metrics)``: the :class:`jaxid.nn.TrainResult`, the
    test indices, the float64 predictions on them and :func:`jaxid.nn.regression_metrics` as a
    dict (both ``None`` with fewer than two test records).
    """
    spec = dict(network_spec(options) if network is None else network)
    spec.pop("label", None)
    arch = spec.pop("arch")
    if arch == "gru":
        spec.pop("depth", None)
        spec.pop("activation", None)
    config = train_config(options, split=split, seed=seed, progress=progress)
    if desc:
        say(f"  training {desc} ({arch}, {x.shape[0]} records)", flush=True)
    result = train(x, np.log(targets) if log else targets, names, arch=arch, config=config, **spec)
    test = result.split["test"]
    if len(test) < 2:
        return result, test, None, None
    pred = np.asarray(result.estimator.predict(x[test]), dtype=np.float64)
    pred = np.exp(pred) if log else pred
    return result, test, pred, regression_metrics(targets[test], pred, names).to_dict()
