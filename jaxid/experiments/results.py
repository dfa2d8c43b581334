"""What the studies share when they write their reports: JSON-able results, and figures written
atomically (a study interrupted while saving leaves no half-written file)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import io as jio

if TYPE_CHECKING:  # annotations only: importing jaxid does not import matplotlib
    import matplotlib.figure


def save_figure(fig: "matplotlib.figure.Figure", path: str | os.PathLike, **savefig_options) -> Path:
    """``fig.savefig`` to ``path`` atomically (:func:`jaxid.io.atomic_open`), the format from the
    suffix; returns the path."""
    path = Path(path)
    with jio.atomic_open(path, "wb") as f:
        fig.savefig(f, format=path.suffix.lstrip(".") or "png", **savefig_options)
    return path


def jsonable(obj: object) -> object:
    """``obj`` with NumPy scalars made Python numbers, tuples made lists, dict keys made strings,
    and non-finite floats written as strings (``"inf"``, ``"nan"``), which JSON lacks."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        v = float(obj)
        return v if math.isfinite(v) else str(v)
    return obj
