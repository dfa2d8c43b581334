"""Shape-annotated array types used in jaxid's public signatures (jaxtyping).

The dimension names are shared across the package, so that one name means one axis everywhere:
``param`` the model parameters (in ``param_names`` order), ``state`` the state vector, ``time`` the
output times, ``channel`` the observed channels, and ``batch`` (or ``*batch``, any number of
leading axes) the records.
"""

from __future__ import annotations

from jaxtyping import Array, Float

ParamVector = Float[Array, " param"]
"""One parameter vector ``theta``, shape ``(p,)``."""

ParamBatch = Float[Array, "*batch param"]
"""Parameter vectors along any number of leading axes, shape ``(..., p)``."""

StateVector = Float[Array, " state"]
"""One initial state ``y0``."""

StateBatch = Float[Array, "batch state"]
"""One initial state per record, shape ``(n, state)``."""

TimeGrid = Float[Array, " time"]
"""The output times ``ts``, increasing."""

Observations = Float[Array, "*batch time channel"]
"""Observed channels at the output times, for any number of records."""

__all__ = ["Observations", "ParamBatch", "ParamVector", "StateBatch", "StateVector", "TimeGrid"]
