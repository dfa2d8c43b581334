"""What the studies share when they write ``results.json``."""

from __future__ import annotations

import math

import numpy as np


def jsonable(obj):
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
