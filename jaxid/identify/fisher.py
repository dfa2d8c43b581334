r"""Sensitivities, Fisher information, numerical rank, Cramer-Rao bounds and collinearity.

For observations :math:`y(\theta)` with independent Gaussian noise of standard deviation
:math:`\sigma`, the whitened sensitivity matrix is :math:`W = \Sigma^{-1/2} J` with
:math:`J = \partial y / \partial \theta` (all channels and times flattened into rows), and the Fisher
information is

.. math:: F = J^T \Sigma^{-1} J = W^T W, \qquad F = \sum_e W_e^T W_e \text{ over experiments.}

In log parameters :math:`J_{\log} = J \,\mathrm{diag}(\theta)` and :math:`F_{\log} = D F D`,
:math:`D = \mathrm{diag}(\theta)`. Everything spectral is computed from the SVD of :math:`W`
(never from an eigen-decomposition of :math:`F`, which squares the condition number). Use float64
(``jax.config.update("jax_enable_x64", True)``): ranks are decided at relative singular values
near ``sqrt(eps)``, which is 1.5e-8 in float64 but 3.5e-4 in float32.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Real

from ..errors import NonFiniteError, check_user_function
from ..typing import ParamBatch, ParamVector
from .experiment import Experiment, as_experiments, value_and_jacobian

GAP_RATIO = 333.0
"""The smallest ratio between neighbouring singular values that the gap rule accepts as a rank gap."""
NULL_COMPONENT_TOL = 1e-6
"""A parameter whose unit vector has a component above this in the null space gets an infinite
Cramer-Rao bound."""


def sensitivities(
    fn: Callable[[ParamVector], Array] | Experiment,
    theta: ParamBatch,
    *,
    log: bool = False,
) -> Float[Array, "... param"]:
    r"""The Jacobian :math:`\partial y/\partial\theta` of ``fn`` at ``theta`` by forward-mode AD.

    ``theta`` of shape ``(p,)`` gives ``y.shape + (p,)``; a leading batch axis (``(B, p)``) is
    mapped with ``vmap`` and gives ``(B,) + y.shape + (p,)``. With ``log=True`` the Jacobian is
    with respect to :math:`\log\theta`: :math:`\partial y/\partial\log\theta_i = \theta_i\,
    \partial y/\partial\theta_i` (relative sensitivities; ``theta`` must be positive).
    """
    f = fn.fn if isinstance(fn, Experiment) else fn
    if not callable(f):
        raise TypeError(f"sensitivities: fn must be callable or an Experiment, got {type(fn).__name__}")
    theta = _check_theta(theta, None, "sensitivities", log=log)
    _, jac = value_and_jacobian(f, jnp.asarray(theta))
    if log:
        jac = jac * jnp.expand_dims(theta, tuple(range(theta.ndim - 1, jac.ndim - 1)))
    return jac


def _check_theta(theta, p, where, *, log=False, name="theta"):
    try:
        arr = np.asarray(theta, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"{where}: {name} must be an array of parameter values, got {type(theta).__name__}"
        ) from None
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
        raise ValueError(f"{where}: {name} must have shape (p,) or (batch, p), got {arr.shape}")
    if p is not None and arr.shape[-1] != p:
        raise ValueError(f"{where}: {name} must have {p} parameters in its last axis, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}: {name} must be finite, got {arr}")
    if log and not np.all(arr > 0):
        raise ValueError(
            f"{where}: {name} must be positive for log-parameter sensitivities, got {arr}; "
            "use scale='natural' (log=False) for parameters that may be zero or negative"
        )
    return arr


def _check_point(theta, p, experiments, names, where, *, log=False):
    """One parameter set ``theta`` ``(p,)`` and its names (``names``, else the first experiment's
    ``param_names``, else ``p0, p1, ...``), checked: ``(theta, names)``."""
    theta = _check_theta(theta, p, where, log=log)
    if theta.ndim != 1:
        raise ValueError(f"{where}: theta must be one parameter set of shape (p,), got {theta.shape}")
    p = theta.shape[0]
    names = tuple(names or experiments[0].param_names or [f"p{i}" for i in range(p)])
    if len(names) != p:
        raise ValueError(f"{where}: names has {len(names)} entries but theta has {p} parameters")
    return theta, names


@dataclass(frozen=True)
class WhitenedJacobians:
    r"""What :func:`whitened_jacobians` returns.

    - ``w``: the whitened Jacobians :math:`W = \Sigma^{-1/2} J`, shape ``(*batch, n_obs, p)``
      (experiments stacked along the rows, natural parameters);
    - ``ys``: per experiment, the noise-free observations;
    - ``sigmas``: per experiment, the noise levels (1 at a point that failed);
    - ``finite``: a boolean mask over the batch, the points whose observations and sensitivities
      are finite (all true unless ``require_finite`` let failures through).
    """

    w: Float[np.ndarray, "*batch obs param"]
    ys: list[np.ndarray]
    sigmas: list[np.ndarray]
    finite: Bool[np.ndarray, "*batch"]


def whitened_jacobians(
    experiments: Experiment | Sequence[Experiment],
    theta: ParamBatch,
    *,
    where: str = "whitened_jacobians",
    require_finite: bool | Bool[ArrayLike, "*batch"] = True,
    single: bool = False,
) -> WhitenedJacobians:
    r"""Whitened Jacobians :math:`W = \Sigma^{-1/2} J` of all experiments at one or more points.

    **Returns:** a :class:`WhitenedJacobians` (``w``, ``ys``, ``sigmas``, ``finite``). Raises
    :class:`jaxid.NonFiniteError` (a ``ValueError``) naming ``theta`` when any observation or
    sensitivity is not finite at a point that must be: every point by default,
    none with ``require_finite=False``, or those of a boolean mask over the batch (the others are
    marked in ``finite`` and their noise set to 1).
    """
    experiments = as_experiments(experiments, where)
    theta = np.asarray(theta, dtype=float)
    batch = theta.shape[:-1]
    blocks, ys, sigmas = [], [], []
    finite = np.ones(batch, dtype=bool)
    must = np.broadcast_to(np.asarray(require_finite, dtype=bool), batch)
    for e in experiments:
        if e.check_function:
            check_user_function(e.fn, theta, where, name=f"the function of experiment {e.name!r}")
        y, jac = jax.device_get(e.value_and_jacobian(theta))
        y, jac = np.asarray(y, dtype=float), np.asarray(jac, dtype=float)
        ok_y = np.isfinite(y).reshape(*batch, -1).all(-1)
        ok = ok_y & np.isfinite(jac).reshape(*batch, -1).all(-1)
        if np.any(must & ~ok):
            raise_nonfinite(e, theta, ok | ~must, ok_y | ~must, where, single=single)
        finite &= ok
        if batch:
            sig = np.stack(
                [e.sigma(y[i]) if ok[i] else np.ones(y.shape[len(batch) :]) for i in np.ndindex(*batch)]
            ).reshape(y.shape)
        else:
            sig = e.sigma(y)
        w = jac / sig[..., None]
        blocks.append(w.reshape(*batch, -1, theta.shape[-1]))
        ys.append(y)
        sigmas.append(sig)
    return WhitenedJacobians(w=np.concatenate(blocks, axis=-2), ys=ys, sigmas=sigmas, finite=finite)


def raise_nonfinite(e: Experiment, theta, ok, ok_y, where, *, single=False):
    """Raise the error for the first parameter set where ``ok`` is false."""
    batch = theta.shape[:-1]
    idx = tuple(np.argwhere(~np.atleast_1d(ok))[0]) if batch else ()
    point = theta[idx]
    what = "observations" if not np.atleast_1d(ok_y)[idx if batch else 0] else "sensitivities"
    detail = ""
    if e.describe_failure is not None and what == "observations":
        detail = f" ({e.describe_failure(point)})"
    shown = np.array2string(np.asarray(point), max_line_width=10**6, precision=6)
    at = f"theta[{', '.join(map(str, idx))}] = {shown}" if batch and not single else f"theta = {shown}"
    raise NonFiniteError(
        f"{where}: experiment {e.name!r} gave non-finite {what} at {at}{detail}; "
        "the simulation failed or the function returned NaN/inf there. Check theta (and the "
        "initial state), or drop this parameter set."
    )


def fisher_information(
    experiments: Experiment | Sequence[Experiment],
    theta: ParamBatch,
    *,
    log: bool = False,
) -> Float[Array, "*batch param param"]:
    r"""The Fisher information :math:`F = \sum_e J_e^T \Sigma_e^{-1} J_e` at ``theta``.

    ``theta`` of shape ``(p,)`` gives ``(p, p)``; ``(B, p)`` gives ``(B, p, p)`` (one forward-mode
    pass per experiment, vectorised over the batch). ``log=True`` gives the information on
    :math:`\log\theta`, :math:`F_{\log} = D F D`, :math:`D = \mathrm{diag}(\theta)`.

    Pure JAX: it can be jitted (``eqx.filter_jit``, the experiments being Modules), vmapped over
    parameter points or designs (an experiment's ``noise``, or sampling times that its function
    closes over) and differentiated in forward mode (``jax.jacfwd``, in ``theta`` or a design).
    Called on concrete values it first checks them on the host: ``theta``'s shape and finiteness,
    and non-finite observations or sensitivities raise :class:`jaxid.NonFiniteError` naming the
    parameter point and, for a jaxid model, the simulation's failure. Under a transformation the
    non-finite check is an ``equinox.error_if`` on the result.
    """
    where = "fisher_information"
    experiments = as_experiments(experiments, where)
    traced = any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((theta, experiments)))
    if not traced:
        theta = _check_theta(theta, _num_params(experiments), where, log=log)
        try:
            w = whitened_jacobians(experiments, theta, where=where).w
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            traced = True  # a function closing over a traced design (e.g. sampling times)
        else:
            check_unused_parameters(experiments, w, where)
            if log:
                w = w * theta[..., None, :]
            return jnp.asarray(np.swapaxes(w, -1, -2) @ w)
    return _fisher(experiments, jnp.asarray(theta), log=log, where=where)


def _fisher(experiments, theta, *, log, where):
    """:func:`fisher_information` in JAX operations only (its traced path)."""
    batch, p = theta.shape[:-1], theta.shape[-1]
    total = jnp.zeros((*batch, p, p), theta.dtype)
    finite = jnp.asarray(True)
    for e in experiments:
        y, jac = e.value_and_jacobian(theta)
        finite = finite & jnp.all(jnp.isfinite(y)) & jnp.all(jnp.isfinite(jac))
        if batch:
            flat = y.reshape(-1, *y.shape[len(batch) :])
            sig = jax.vmap(e.noise_sd)(flat).reshape(y.shape)
        else:
            sig = e.noise_sd(y)
        w = (jac / sig[..., None]).reshape(*batch, -1, p)
        total = total + jnp.swapaxes(w, -1, -2) @ w
    if log:
        total = total * theta[..., :, None] * theta[..., None, :]
    return eqx.error_if(
        total,
        ~(finite & jnp.all(jnp.isfinite(total))),
        f"{where}: non-finite Fisher information (an experiment gave non-finite observations or "
        "sensitivities; call it outside jit to have the failing point named)",
    )


def check_unused_parameters(experiments, w, where: str) -> None:
    """When nothing declares the number of parameters (plain functions without ``param_names`` or
    ``theta0``), a parameter with an exactly zero sensitivity column is taken for a ``theta``
    longer than the function's parameter vector, and refused naming ``theta``."""
    if _num_params(experiments) is not None:
        return
    cols = np.asarray(w).reshape(-1, w.shape[-2], w.shape[-1])
    unused = np.flatnonzero(np.all(cols == 0, axis=(0, 1)))
    if unused.size:
        raise ValueError(
            f"{where}: the observations do not depend on theta[{', '.join(map(str, unused))}] at all "
            f"(exactly zero sensitivity); theta has {w.shape[-1]} values: does the function take that "
            "many parameters? To analyse a parameter without effect, declare the parameters with "
            "Experiment(..., param_names=...)"
        )


def _num_params(experiments) -> int | None:
    for e in experiments:
        if e.param_names is not None:
            return len(e.param_names)
        if e.theta0 is not None:
            return e.theta0.shape[-1]
    return None


@dataclass(frozen=True)
class Spectrum:
    """The singular-value analysis of a whitened Jacobian ``W`` (see :func:`spectrum`).

    - ``singular_values``: descending, length ``p``.
    - ``rank``: the numerical rank; ``threshold``: singular values above it count.
    - ``rule``: the rule that decided (``"gap"``, ``"tolerance"`` or ``"rtol"``) and ``rule_detail``
      a sentence saying why.
    - ``vt``: right singular vectors as rows; ``null_space``: the last ``p - rank`` of them as
      columns, shape ``(p, p - rank)``, each signed so that its largest entry is positive.
    - ``condition_number``: ``s_max / s_min`` of ``W`` (``inf`` when ``s_min = 0``); the condition
      number of the Fisher matrix is its square.
    """

    singular_values: Float[np.ndarray, " param"]
    rank: int
    threshold: float
    rule: str
    rule_detail: str
    vt: Float[np.ndarray, "param param"]
    null_space: Float[np.ndarray, "param null"]
    condition_number: float


@dataclass(frozen=True)
class NumericalRank:
    """What :func:`numerical_rank` returns.

    - ``rank``: the numerical rank, the number of singular values above ``threshold``.
    - ``threshold``: the value the singular values are compared with.
    - ``rule``: the rule that decided (``"gap"``, ``"tolerance"`` or ``"rtol"``).
    - ``rule_detail``: a sentence saying why.
    """

    rank: int
    threshold: float
    rule: str
    rule_detail: str


def numerical_rank(
    s: Float[ArrayLike, " values"],
    shape: tuple[int, int],
    *,
    rule: str = "auto",
    rtol: float | None = None,
    eps: float | None = None,
) -> NumericalRank:
    r"""The numerical rank of a matrix of ``shape`` from its descending singular values ``s``.

    Rules (``eps`` is the machine epsilon of the data, :math:`s_1` the largest value):

    - ``"tolerance"``: :math:`s_i > s_1 \max(N, p)\,\epsilon` (NumPy's ``matrix_rank`` rule); right
      for exact arithmetic data, too strict for sensitivities from an ODE solver, whose noise sits
      near the solver tolerance.
    - ``"gap"``: split at the largest gap in :math:`\log_{10} s` when that gap is at least
      :data:`GAP_RATIO` (333x) and the value below it is under :math:`\sqrt{\epsilon}\, s_1`
      (values below :math:`\epsilon\, s_1` count as :math:`\epsilon\, s_1`: round-off, not a gap).
      Without such a gap the matrix has full rank (as far as this rule can tell).
    - ``"auto"`` (default): the gap rule when it finds a gap, else the tolerance rule.
    - ``rtol``: if given, overrides the rule: :math:`s_i > \mathrm{rtol}\; s_1`.

    **Returns:** a :class:`NumericalRank` (``rank``, ``threshold``, ``rule``, ``rule_detail``).
    The solver tolerance must sit orders of magnitude below the rank threshold for the answer to
    mean anything.
    """
    s = np.asarray(s, dtype=float)
    p = s.shape[0]
    eps = np.finfo(float).eps if eps is None else eps
    if rule not in ("auto", "gap", "tolerance"):
        raise ValueError(f"numerical_rank: rule must be 'auto', 'gap' or 'tolerance', got {rule!r}")
    if p == 0 or not s[0] > 0:
        return NumericalRank(0, 0.0, "tolerance", "all singular values are zero")
    s1 = s[0]
    if rtol is not None:
        if not (isinstance(rtol, (int, float)) and 0 < rtol < 1):
            raise ValueError(f"numerical_rank: rtol must be a number in (0, 1), got {rtol!r}")
        thr = rtol * s1
        r = int(np.sum(s > thr))
        return NumericalRank(r, thr, "rtol", f"s_i > {rtol:g} s_1")
    if rule in ("auto", "gap") and p > 1:
        # values below the round-off floor s_1 eps count as equal: an exact zero next to a
        # round-off value (a padded or stacked matrix) is no gap, the drop to the round-off is
        sc = np.maximum(s, s1 * eps)
        ratios = sc[:-1] / sc[1:]
        ok = (ratios >= GAP_RATIO) & (s[1:] < np.sqrt(eps) * s1)
        if np.any(ok):
            i = int(np.argmax(np.where(ok, ratios, -np.inf)))
            thr = float(np.sqrt(s[i] * s[i + 1])) if s[i + 1] > 0 else float(s[i] / GAP_RATIO)
            gap = "inf" if not np.isfinite(ratios[i]) else f"{ratios[i]:.3g}"
            return NumericalRank(
                i + 1,
                thr,
                "gap",
                f"largest gap {gap}x between s_{i + 1} and s_{i + 2} (s_{i + 2}/s_1 = {s[i + 1] / s1:.2g} "
                f"< sqrt(eps) = {np.sqrt(eps):.2g})",
            )
        if rule == "gap":
            return NumericalRank(
                p, float(s[-1]), "gap", f"no gap of {GAP_RATIO:g}x with a value below sqrt(eps) s_1"
            )
    thr = s1 * max(shape) * eps
    return NumericalRank(
        int(np.sum(s > thr)), float(thr), "tolerance", f"s_i > s_1 max(N, p) eps = {thr:.3g}"
    )


def spectrum(w: Float[ArrayLike, "obs param"], *, rule: str = "auto", rtol: float | None = None) -> Spectrum:
    """SVD, numerical rank (:func:`numerical_rank`), null space and condition number of ``w``
    (shape ``(N, p)``)."""
    w = np.asarray(w, dtype=float)
    n, p = w.shape
    # fewer observations than parameters: the full V, with zero singular values for the rest
    _, s, vt = np.linalg.svd(w, full_matrices=n < p)
    s = np.concatenate([s, np.zeros(p - s.shape[0])])
    nr = numerical_rank(s, w.shape, rule=rule, rtol=rtol)
    null = vt[nr.rank :].T.copy()
    for j in range(null.shape[1]):
        if null[np.argmax(np.abs(null[:, j])), j] < 0:
            null[:, j] *= -1
    cond = float(s[0] / s[-1]) if s[-1] > 0 else float("inf")
    return Spectrum(
        singular_values=s,
        rank=nr.rank,
        threshold=nr.threshold,
        rule=nr.rule,
        rule_detail=nr.rule_detail,
        vt=vt,
        null_space=null,
        condition_number=cond,
    )


def cramer_rao(spec: Spectrum) -> Float[np.ndarray, " param"]:
    r"""Cramer-Rao lower bounds :math:`\sqrt{(F^{-1})_{ii}}` from the spectrum of the whitened
    Jacobian, in the coordinates that Jacobian was taken in.

    With a rank-deficient :math:`F`, a parameter whose unit vector has a component above
    :data:`NULL_COMPONENT_TOL` in the null space has no finite bound (``inf``); the others are
    bounded by :math:`\sqrt{(F^+)_{ii}}` on the retained singular values (the bound for a parameter
    orthogonal to every unidentifiable direction is the same whatever the other parameters do).
    """
    return np.array([direction_crb(spec, e) for e in np.eye(spec.vt.shape[1])])


def direction_crb(spec: Spectrum, a: Real[ArrayLike, " param"] | Sequence[float]) -> float:
    r"""Cramer-Rao bound on :math:`a \cdot u` (``u`` the coordinates of ``spec``):
    :math:`\sqrt{a^T F^+ a}`, or ``inf`` when ``a`` has a component above
    :data:`NULL_COMPONENT_TOL` (relative to its length) in the null space."""
    a = np.asarray(a, dtype=float)
    r = spec.rank
    if np.linalg.norm(spec.null_space.T @ a) > NULL_COMPONENT_TOL * np.linalg.norm(a):
        return float("inf")
    return float(np.sqrt(np.sum(((spec.vt[:r] @ a) / spec.singular_values[:r]) ** 2)))


def collinearity_index(w: Float[ArrayLike, "obs param"], subset: Sequence[int] | None = None) -> float:
    r"""Collinearity index of the columns ``subset`` of ``w`` (Brun et al. 2001):
    :math:`\gamma_K = 1/\sqrt{\lambda_{\min}(\tilde S_K^T \tilde S_K)}` with the columns scaled to
    unit length. Values above about 10 to 20 flag near-collinearity; ``inf`` for exactly dependent
    columns (or a column of zeros)."""
    w = np.asarray(w, dtype=float)
    cols = w if subset is None else w[:, list(subset)]
    norms = np.linalg.norm(cols, axis=0)
    if np.any(norms == 0):
        return float("inf")
    s = np.linalg.svd(cols / norms, compute_uv=False)
    smin = s[-1] if s.shape[0] == cols.shape[1] else 0.0
    exact_zero = smin <= s[0] * max(cols.shape) * np.finfo(float).eps
    return float("inf") if exact_zero else float(1.0 / smin)


def collinearity(
    w: Float[ArrayLike, "obs param"], names: Sequence[str], *, max_size: int | None = None
) -> dict[tuple[str, ...], float]:
    """Collinearity indices of every subset of two or more parameters (up to ``max_size``
    parameters; all subsets by default, for at most 12 parameters)."""
    p = w.shape[1]
    max_size = p if max_size is None else max_size
    if p > 12 and max_size > 4:
        max_size = 4
    return {
        tuple(names[i] for i in sub): collinearity_index(w, sub)
        for size in range(2, max_size + 1)
        for sub in itertools.combinations(range(p), size)
    }
