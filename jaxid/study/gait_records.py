r"""The study's data step for the walker started on its gait: the gait data set's own records.

A study of :class:`jaxid.Walker` with ``initial_state = "gait"`` asks for records that start on each
walker's periodic gait. Integrated forward for 15 s, a record on an unstable gait (eigenvalue of
its step map above 1) amplifies rounding at every step, so after about 40 steps it is whatever the
rounding made it, on this platform, integrator and step. :func:`jaxid.generate_gait_dataset` makes
each record its gait's periodic orbit instead, reproducible by any accurate integrator and about
20 times faster. So where it applies, the study's data step is that data set:

- the studied parameters are among ``m``, ``k``, ``l0``, each with a uniform prior (the data set
  draws uniformly; a parameter not studied has the degenerate range of its fixed value);
- ``alpha0`` and ``g`` are fixed (the table of gaits is made for one of each), and the walker has
  its default options (step ``dt``, fall height, phase time limit);
- the save times are ``0, dt, ..., T`` (the data set's save grid);

and the records, their parameters, initial states and rejections by reason are the data set's
with ``seed = config.seed``: ``jaxid gait`` and ``jaxid study`` with the same settings make the same
records. Otherwise (another prior, drawn ``alpha0``, another save grid) the study integrates each
record forward from its gait (:func:`jaxid.simulate_batch`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..priors import Uniform
from ..walker.model import Walker
from .config import ResolvedModel, StudyConfig
from .records import StudyRecords

__all__ = ["gait_dataset_options", "gait_records"]

_DRAWN = ("m", "k", "l0")


def gait_dataset_options(config: StudyConfig, resolved: ResolvedModel) -> dict[str, Any] | None:
    """The arguments of :func:`jaxid.generate_gait_dataset` that make this study's records, or
    ``None`` where it does not apply (see the module docstring)."""
    if resolved.kind != "model" or not isinstance(resolved.model, Walker) or resolved.start != "gait":
        return None
    if any(k != "channels" for k in config.model_options):
        return None  # the data set uses the walker's default step, fall height and phase limits
    names = config.params.names
    if any(n not in _DRAWN for n in names):
        return None
    if not all(isinstance(d, Uniform) for d in config.params.dists):
        return None
    times = np.asarray(config.times, dtype=np.float64)
    if len(times) < 2 or times[0] != 0.0:
        return None
    dt = float(times[1] - times[0])
    grid = np.linspace(0.0, float(times[-1]), len(times))
    if dt <= 0 or not np.allclose(times, grid, rtol=0, atol=1e-12 * max(1.0, times[-1])):
        return None
    model = resolved.model
    priors = {}
    for n in _DRAWN:
        if n in names:
            priors[n] = tuple(float(v) for v in config.params[n].support)
        else:
            v = float(np.asarray(getattr(model, n)))
            priors[n] = (v, v)
    return dict(
        priors=priors,
        alpha0_deg=math.degrees(float(np.asarray(model.alpha0))),
        g=float(np.asarray(model.g)),
        duration=float(times[-1]),
        save_dt=float(times[-1]) / (len(times) - 1),
        channels=tuple(resolved.channels),
        chunk_size=int(config.chunk_size),
        seed=int(config.seed),
    )


def gait_records(
    config: StudyConfig,
    options: dict[str, Any],
    *,
    progress: bool = True,
    store: str | Path | None = None,
) -> StudyRecords:
    """The study's records from :func:`jaxid.generate_gait_dataset` with ``options``
    (:func:`gait_dataset_options`; with ``store``, written there chunk by chunk and resumed).

    **Returns:** a :class:`~jaxid.study.records.StudyRecords` (``theta`` the studied parameters'
    columns, ``clean`` float64) whose ``dataset`` is the data set itself (with each record's gait:
    eigenvalue, step time and length)."""
    from ..walker.data import generate_gait_dataset

    data = generate_gait_dataset(config.records, progress=progress, store=store, **options)
    names = config.params.names
    theta = np.asarray(data.params, dtype=np.float64)[:, [_DRAWN.index(n) for n in names]]
    rejected = {str(k): int(v) for k, v in data.rejected.items()}
    clean = np.asarray(data.obs, dtype=np.float64)
    y0 = np.asarray(data.initial_states, dtype=np.float64)
    return StudyRecords(theta, y0, clean, rejected, int(len(data) + sum(rejected.values())), data)
