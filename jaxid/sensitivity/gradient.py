r"""Gradient-based sensitivity: local normalised coefficients and derivative-based global
sensitivity measures (DGSM).

- Local: :math:`s_{ij}(t) = \partial \log y_i(t) / \partial \log \theta_j
  = (\theta_j / y_i(t))\, \partial y_i(t)/\partial\theta_j` at one parameter point, by forward-mode
  AD (:func:`jaxid.identify.value_and_jacobian`).
- DGSM (Sobol and Kucherenko 2009): :math:`\nu_i = E[(\partial f/\partial x_i)^2]` over the prior,
  by ``vmap(jacfwd)`` over scrambled Sobol points. For a uniform prior on :math:`[a_i, b_i]` it
  bounds the total Sobol index: :math:`S_{T_i} \le (b_i - a_i)^2\, \nu_i / (\pi^2 V)`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from ..errors import NonFiniteError, check_user_function
from ..identify import value_and_jacobian
from ..typing import ParamVector, TimeGrid
from .sampling import Box, evaluate, sobol_points

if TYPE_CHECKING:  # annotations only: importing jaxid does not load matplotlib
    import matplotlib.axes
    import matplotlib.figure


def _forward(thunk, where: str):
    """Run a forward-mode computation; explain the usual failure (a diffrax solve whose adjoint
    is a custom VJP cannot be differentiated in forward mode)."""
    try:
        return thunk()
    except TypeError as err:
        if "custom_vjp" not in str(err):
            raise
        raise TypeError(
            f"{where}: fn must be differentiable in forward mode; for jaxid.simulate (or diffrax) "
            "pass adjoint=diffrax.ForwardMode()"
        ) from err


@dataclass
class LocalSensitivity:
    """``coefficients`` :math:`\\partial \\log y / \\partial \\log \\theta`, shape ``output_shape +
    (param,)``; ``values`` the outputs; ``jacobian`` :math:`\\partial y/\\partial\\theta`; ``mask``
    where ``|y|`` is too small for a logarithmic derivative (coefficients set to 0 there)."""

    names: tuple[str, ...]
    theta: Float[np.ndarray, " param"]
    values: Float[np.ndarray, "*out"]
    jacobian: Float[np.ndarray, "*out param"]
    coefficients: Float[np.ndarray, "*out param"]
    mask: Bool[np.ndarray | np.bool_, "*out"]

    def plot(
        self,
        ts: TimeGrid | None = None,
        channel_names: Sequence[str] | None = None,
        ax: "matplotlib.axes.Axes | Sequence[matplotlib.axes.Axes] | np.ndarray | None" = None,
    ) -> "matplotlib.figure.Figure":
        """Heat maps of the coefficients, time by parameter, one panel per output channel."""
        import matplotlib.pyplot as plt

        c = self.coefficients
        if c.ndim == 2:  # (time, param): one channel
            c = c[:, None, :]
        n_ch = c.shape[1]
        if ax is None:
            fig, axes = plt.subplots(1, n_ch, figsize=(3.6 * n_ch, 3.2), squeeze=False)
            axes = axes[0]
        else:
            axes, fig = np.atleast_1d(ax), np.atleast_1d(ax)[0].figure
        ts = np.arange(c.shape[0]) if ts is None else np.asarray(ts)
        lim = float(np.max(np.abs(c))) or 1.0
        for k, a in enumerate(axes):
            im = a.imshow(
                c[:, k, :].T,
                aspect="auto",
                cmap="RdBu_r",
                vmin=-lim,
                vmax=lim,
                extent=(ts[0], ts[-1], len(self.names) - 0.5, -0.5),
            )
            a.set_yticks(range(len(self.names)), self.names)
            a.set(xlabel="t", title=channel_names[k] if channel_names else f"output {k}")
        fig.colorbar(im, ax=list(axes), label="d log y / d log theta")
        return fig


def local_sensitivity(
    fn: Callable[[ParamVector], Array],
    theta: ParamVector,
    names: Sequence[str] | None = None,
    rtol: float = 1e-9,
) -> LocalSensitivity:
    """Normalised local sensitivities of ``fn`` (``theta -> outputs``; JAX, forward-mode
    differentiable) at ``theta`` (positive). Where ``|y| <= rtol * max|y|`` of its channel (last
    axis) the logarithmic derivative is undefined: ``mask`` is true and the coefficient 0."""
    theta = jnp.asarray(theta, dtype=float)
    if theta.ndim != 1 or not bool(jnp.all(theta > 0)):
        raise ValueError(f"local_sensitivity: theta must be a 1-D array of positive values, got {theta}")
    names = tuple(names) if names is not None else tuple(f"p{i + 1}" for i in range(theta.shape[0]))
    if len(names) != theta.shape[0]:
        raise ValueError(f"local_sensitivity: {len(names)} names for {theta.shape[0]} parameters")
    check_user_function(fn, theta, "local_sensitivity")
    y, jac = (np.asarray(v) for v in _forward(lambda: value_and_jacobian(fn, theta), "local_sensitivity"))
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(jac))):
        raise NonFiniteError(
            f"local_sensitivity: non-finite outputs or derivatives at theta = {np.asarray(theta)}"
        )
    scale = np.max(np.abs(y), axis=tuple(range(y.ndim - 1)), keepdims=True) if y.ndim else np.abs(y)
    mask = np.abs(y) <= rtol * scale
    safe = np.where(mask, 1.0, y)
    coef = np.where(mask[..., None], 0.0, jac * np.asarray(theta) / safe[..., None])
    return LocalSensitivity(names, np.asarray(theta), y, jac, coef, mask)


_WITH_GRADIENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _value_and_gradients(fn):
    """``theta -> [y, dy/dtheta_1, ..., dy/dtheta_p]`` stacked on a leading axis (the forward-mode
    pass of :func:`jaxid.identify.value_and_jacobian`), one per ``fn`` so that repeated analyses
    compile once."""
    try:
        return _WITH_GRADIENTS[fn]
    except (KeyError, TypeError):
        pass

    def stacked(theta):
        y, jac = value_and_jacobian(fn, theta)
        return jnp.concatenate([y[None], jnp.moveaxis(jac, -1, 0)])

    try:
        _WITH_GRADIENTS[fn] = stacked
    except TypeError:
        pass
    return stacked


@dataclass
class DGSM:
    """``nu`` :math:`E[(\\partial f/\\partial x_i)^2]` (``(param,) + output_shape``), ``variance``
    of the output over the samples, ``st_upper_bound`` the implied bound on the total Sobol
    index, ``names`` and ``n`` samples."""

    names: tuple[str, ...]
    nu: Float[np.ndarray, " param *out"]
    variance: Float[np.ndarray | np.floating, "*out"]
    st_upper_bound: Float[np.ndarray, " param *out"]
    n: int


def dgsm(
    fn: Callable[[ParamVector], Array],
    bounds: Mapping[str, Sequence[float]],
    n: int = 1024,
    *,
    seed: int = 0,
    chunk_size: int = 4096,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = False,
) -> DGSM:
    """Derivative-based global sensitivity measures of ``fn`` over uniform priors ``bounds`` from
    ``n`` scrambled Sobol points (values and forward-mode Jacobians in one batched pass)."""
    box = Box(bounds, "dgsm")
    if not (isinstance(n, int) and n >= 2):
        raise ValueError(f"dgsm: n must be an int >= 2, got {n!r}")
    x = box.scale(sobol_points(n, box.dim, seed))
    check_user_function(fn, jnp.asarray(x[0], dtype=float), "dgsm")

    out = _forward(
        lambda: evaluate(
            _value_and_gradients(fn),
            x,
            chunk_size=chunk_size,
            devices=devices,
            progress=progress,
            desc="dgsm",
            where="dgsm",
        ),
        "dgsm",
    )
    y, grads = out[:, 0], np.moveaxis(out[:, 1:], 1, 0)  # (n, ...), (d, n, ...)
    nu = np.mean(grads**2, axis=1)
    var = np.var(y, axis=0)
    width = (box.high - box.low).reshape((-1,) + (1,) * (nu.ndim - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(var > 0, width**2 * nu / (np.pi**2 * var), np.inf)
    return DGSM(box.names, nu, var, bound, n)
