"""Shape-annotated array types used in jaxid's public signatures (jaxtyping).

The dimension names are shared across the package, so that one name means one axis everywhere:
``param`` the model parameters (in ``param_names`` order), ``state`` the state vector, ``time`` the
output times, ``channel`` the observed channels, and ``batch`` (or ``*batch``, any number of
leading axes) the records.

Inputs are array-like (a JAX array, a NumPy array, or for a scalar a Python number): jaxid
converts them. Outputs are JAX arrays (``jaxtyping.Float[Array, ...]``) unless a docstring says
NumPy. The test suite checks every annotated signature at run time (``tests/jaxid_typecheck.py``).
"""

from __future__ import annotations

from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

Key = PRNGKeyArray
"""A JAX random key (``jax.random.key(seed)``; the legacy ``PRNGKey`` arrays are accepted too)."""

RealScalar = Real[ArrayLike, ""]
"""A real scalar: a Python ``int`` or ``float``, or a 0-d array (traced under ``jit``/``vmap``)."""

ParamField = Float[Array, "*#batch"]
"""A model parameter as a model stores it: a float array that broadcasts against the model's
other parameters (a scalar, or one value per record of a batched model)."""

ParamVector = Float[ArrayLike, " param"]
"""One parameter vector ``theta``, shape ``(p,)``."""

ParamBatch = Float[ArrayLike, "*batch param"]
"""Parameter vectors along any number of leading axes, shape ``(..., p)``."""

StateVector = Float[ArrayLike, " state"]
"""One initial state ``y0``."""

StateBatch = Float[ArrayLike, "batch state"]
"""One initial state per record, shape ``(n, state)``."""

TimeGrid = Float[ArrayLike, " time"]
"""The output times ``ts``, increasing."""

Observations = Float[ArrayLike, "*batch time channel"]
"""Observed channels at the output times, for any number of records."""

__all__ = [
    "Key",
    "Observations",
    "ParamBatch",
    "ParamField",
    "ParamVector",
    "RealScalar",
    "StateBatch",
    "StateVector",
    "TimeGrid",
]
