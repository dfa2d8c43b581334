"""The error contract shared by every jaxid module.

- :class:`NonFiniteError`: the one exception type for a non-finite result (a simulation, a
  sensitivity, a training loss, a posterior sample that came out NaN or inf). It derives from
  :class:`FloatingPointError` and :class:`ValueError`, so code written against either keeps
  working.
- :func:`require_float64`: refuse clearly to run a computation whose answer float32 would change
  (ranks, profiles, gaits), rather than return that answer silently.
- :func:`check_real_number`, :func:`check_positive_int`: option checks that name the argument.
- :func:`check_user_function`: check, before any compilation, that a user function
  ``theta -> outputs`` can be traced, returns one floating array and reads no parameter past the
  end of ``theta``.
"""

from __future__ import annotations

import math
import numbers
import weakref
from collections.abc import Callable

import jax
import jax.extend.core as jax_core
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float


class NonFiniteError(FloatingPointError, ValueError):
    """A computation produced NaN or inf (a failed simulation, a diverged training run, ...).

    The message names the function and the argument (or record) where it happened."""


def require_float64(where: str) -> None:
    """Raise a :class:`RuntimeError` prefixed by ``where`` unless ``jax_enable_x64`` is on.

    Numerical ranks are decided at relative singular values near ``sqrt(eps)`` (1.5e-8 in float64,
    3.5e-4 in float32), profile likelihoods at solver tolerances of 1e-8, and periodic gaits at
    Newton residuals of 1e-8: in float32 these answers change without any other sign."""
    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            f'{where}: needs float64; call jax.config.update("jax_enable_x64", True) before using jaxid '
            "(in float32 the answer changes silently: ranks, bounds and profiles are decided at "
            "precisions float32 cannot reach)"
        )


def check_real_number(
    where: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    low_open: bool = True,
    finite: bool = True,
) -> float:
    """``value`` as a float, or a ``TypeError``/``ValueError`` naming ``name``.

    Refuses strings, ``None``, booleans and complex numbers; with ``finite`` also NaN and inf;
    with ``low`` a value ``<= low`` (``low_open``) or ``< low``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        bound = "a positive number" if low == 0 and low_open else f"{'>' if low_open else '>='} {low}"
        raise ValueError(f"{where}: {name} must be {bound}, got {value!r}")
    return value


def check_positive_int(where: str, name: str, value: object, *, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``, or a ``ValueError`` naming ``name`` (booleans refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{where}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_user_function(
    fn: Callable,
    theta: Float[ArrayLike, "*batch param"],
    where: str,
    *,
    name: str = "fn",
    index_check: bool = True,
    forward: bool = True,
) -> None:
    """Check a user function ``theta -> outputs`` at one parameter vector before any real work.

    1. ``fn`` must trace (``jax.eval_shape``): a ``float(theta[0])``, a Python ``if`` on a
       parameter or a host callback is reported as "must be traceable and differentiable in
       forward mode" instead of JAX's own message.
    2. It must return one floating array (not a tuple, a dict or an integer array), and with
       ``forward`` have a forward-mode derivative (no ``jax.pure_callback``).
    3. With ``index_check`` it must not read past the end of ``theta``: JAX clamps an
       out-of-bounds index (``theta[2]`` of a 2-vector reads ``theta[1]``), which would silently
       analyse another function. Checked once per function and shape by running ``fn`` under
       :func:`jax.experimental.checkify.checkify` with index checks (skipped for functions that
       hold a ``while`` loop, such as an ODE solve: the check would compile them twice).
    """
    theta = jnp.asarray(theta)
    if theta.ndim > 1:  # a batch of points: the function takes one
        theta = theta.reshape(-1, theta.shape[-1])[0]
    key = (tuple(theta.shape), str(theta.dtype), index_check, forward)
    try:
        if key in _CHECKED.get(fn, ()):
            return
    except TypeError:
        pass
    try:
        jaxpr, out = jax.make_jaxpr(fn, return_shape=True)(theta)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError) as err:
        raise TypeError(
            f"{where}: {name} must be traceable by JAX and differentiable in forward mode: it converts "
            f"a traced parameter to a Python value (float(theta[i]), an if on a parameter, ...); use "
            f"jax.numpy operations and jnp.where instead ({type(err).__name__})"
        ) from err
    except jax.errors.TracerArrayConversionError as err:
        raise TypeError(
            f"{where}: {name} must be traceable by JAX and differentiable in forward mode: it converts "
            "a traced parameter to a NumPy array; use jax.numpy instead of numpy inside it"
        ) from err
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise TypeError(
            f"{where}: {name} must return one array of observations, got a {type(out).__name__}; "
            "stack the outputs into one array (jnp.stack or jnp.concatenate)"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(
            f"{where}: {name} must return a floating-point array, got dtype {out.dtype}; an integer or "
            "boolean output has no derivative (cast it, or compute it in floating point)"
        )
    if forward:
        try:
            jax.eval_shape(lambda t: jax.jvp(fn, (t,), (t,)), theta)
        except ValueError as err:
            if "callback" not in str(err).lower():
                raise
            raise TypeError(
                f"{where}: {name} must be traceable by JAX and differentiable in forward mode; a host "
                "callback (jax.pure_callback) has no forward-mode derivative (give it a jax.custom_jvp "
                "rule or write it in jax.numpy)"
            ) from err
    if index_check and theta.ndim >= 1 and not _has_loop(jaxpr.jaxpr):
        # a function with a loop (an ODE solve) is not checked: the check would compile it a
        # second time, and its own (deliberately clamped) indexing cannot be told from fn's
        _check_indexing(fn, theta, where, name)
    try:
        _CHECKED.setdefault(fn, set()).add(key)
    except TypeError:
        pass


def _check_indexing(fn, theta, where, name):
    from jax.experimental import checkify

    point = theta
    try:
        err, _ = jax.jit(checkify.checkify(fn, errors=checkify.index_checks))(point)
        message = err.get()
    except Exception as exc:  # a host callback or custom rule checkify cannot trace
        if "callback" in str(exc).lower():
            raise TypeError(
                f"{where}: {name} must be traceable by JAX and differentiable in forward mode; a host "
                "callback (jax.pure_callback, io_callback) has no forward-mode derivative"
            ) from exc
        return
    if message and f"array of shape {tuple(point.shape)}" in message:
        raise ValueError(
            f"{where}: {name} indexes past the end of its parameter vector (theta has "
            f"{point.shape[-1]} entries): {message.splitlines()[0].strip()}; JAX would clamp the index "
            "and analyse another function. Give theta all the parameters fn reads."
        )


def _has_loop(jaxpr) -> bool:
    """Whether a jaxpr (or one nested in it) holds a ``while`` loop."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "while":
            return True
        for sub in jax_core.jaxprs_in_params(eqn.params):
            if _has_loop(sub):
                return True
    return False
