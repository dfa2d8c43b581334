r"""Experiment design criteria: how much a design (a list of experiments) tells about the parameters,
at one point or averaged over prior draws.

For a design whose experiments have whitened Jacobians :math:`W_e`
(:func:`~jaxid.identify.fisher.whitened_jacobians`, in natural parameters, or
:math:`W_e\,\mathrm{diag}(\theta)` in log parameters), the Fisher
information is :math:`F = \sum_e W_e^T W_e = W^T W` with :math:`W` the experiments stacked, and with
:math:`s_1 \ge \dots \ge s_p` the singular values of :math:`W` and :math:`r` its numerical rank
(:func:`~jaxid.identify.fisher.spectrum`):

- **E-optimality**, the smallest eigenvalue :math:`\lambda_{\min}(F) = s_p^2`, reported as ``0``
  when :math:`r < p` (the numerical rank says it is zero; what the SVD returns there is round-off);
- **D-optimality**, :math:`\log\det F = 2 \sum_{i=1}^p \log s_i`, reported as :math:`-\infty` when
  :math:`r < p`, together with the rank and the log pseudo-determinant on the identifiable
  subspace :math:`\log\mathrm{pdet} F = 2 \sum_{i \le r} \log s_i`;
- the **Cramer-Rao bound** of each target, a parameter :math:`\theta_i` or a direction
  :math:`a^T \theta`: :math:`\sqrt{a^T F^+ a}`, infinite when :math:`a` has a component in the null
  space (:func:`~jaxid.identify.fisher.direction_crb`); in log parameters it is a bound on the
  relative standard deviation.

Over prior draws :math:`\theta_1, \dots, \theta_D` (:class:`DesignCriteria`) a target is
identifiable when its bound is finite at every draw; the averages are arithmetic means over the
draws (:math:`-\infty` for the log determinant and :math:`\infty` for a bound as soon as one draw
has it).

Each experiment is first compressed to the triangular factor :math:`R_e` of
:math:`W_e = Q_e R_e` (:func:`information_root`): :math:`R_e^T R_e = F_e`, and the singular values of
:math:`[R_1; R_2; \dots]` equal those of :math:`[W_1; W_2; \dots]`, so designs combining many
experiments are compared on :math:`p \times p` blocks without squaring the condition number.
:func:`information_root`, :func:`log_det` and :func:`smallest_eigenvalue` are pure JAX functions
(jittable, and differentiable where :math:`F` is nonsingular); the rank decisions are made on the
host by :func:`~jaxid.identify.fisher.numerical_rank`, like every rank in :mod:`jaxid.identify`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Real

from ..typing import ParamBatch
from .experiment import Experiment, as_experiments
from .fisher import Spectrum, direction_crb, spectrum, whitened_jacobians

__all__ = [
    "DesignCriteria",
    "FisherCriteria",
    "criteria_over_draws",
    "design_criteria",
    "fisher_criteria",
    "information_root",
    "information_roots",
    "log_det",
    "smallest_eigenvalue",
    "target_directions",
]

Targets = str | int | Sequence[str | int] | Mapping[str, Real[ArrayLike, " param"] | Sequence[float]] | None
"""What a design should identify: ``None`` (every parameter), parameter names or positions, or a
mapping ``label -> direction`` (one coefficient per parameter); see :func:`target_directions`."""


# ---------------------------------------------------------------------------------------------
# pure JAX pieces


def information_root(w: Float[ArrayLike, "*batch obs param"]) -> Float[Array, "*batch param param"]:
    r"""The upper-triangular square root :math:`R` of the information of a whitened Jacobian
    :math:`W` (:math:`W = QR`, so :math:`R^T R = W^T W = F`), shape ``(..., p, p)``; batched over
    leading axes, padded with zero rows when :math:`W` has fewer rows than columns. Jittable."""
    w = jnp.asarray(w)
    n, p = w.shape[-2:]
    r = jnp.linalg.qr(w, mode="r")
    if n < p:
        r = jnp.concatenate([r, jnp.zeros((*r.shape[:-2], p - n, p), r.dtype)], axis=-2)
    return r


def log_det(w: Float[ArrayLike, "*batch obs param"]) -> Float[Array, "*batch"]:
    r""":math:`\log\det F = 2\sum_i \log s_i(W)` of the information :math:`F = W^T W` (D-optimality),
    ``-inf`` when a singular value is exactly zero or :math:`W` has fewer rows than columns.
    Jittable and differentiable where :math:`F` is nonsingular; it makes no rank decision (see
    :func:`fisher_criteria` for that)."""
    w = jnp.asarray(w)
    n, p = w.shape[-2:]
    s = jnp.linalg.svd(w, compute_uv=False)
    out = 2.0 * jnp.sum(jnp.log(s), axis=-1)
    return jnp.full_like(out, -jnp.inf) if n < p else out


def smallest_eigenvalue(w: Float[ArrayLike, "*batch obs param"]) -> Float[Array, "*batch"]:
    r""":math:`\lambda_{\min}(W^T W) = s_p(W)^2` (E-optimality), ``0`` when :math:`W` has fewer rows
    than columns. Jittable; no rank decision."""
    w = jnp.asarray(w)
    n, p = w.shape[-2:]
    s = jnp.linalg.svd(w, compute_uv=False)
    return jnp.zeros(s.shape[:-1], s.dtype) if n < p else s[..., -1] ** 2


_information_root = jax.jit(information_root)


# ---------------------------------------------------------------------------------------------
# targets


def target_directions(
    targets: Targets, names: Sequence[str]
) -> tuple[tuple[str, ...], Float[np.ndarray, "target param"]]:
    """Labels and direction vectors (rows, shape ``(targets, p)``) of the targets of a design.

    ``targets`` is ``None`` (every parameter), a sequence of parameter names (or positions), or a
    mapping ``label -> direction`` of length-``p`` vectors (a combination :math:`a^T\\theta`, in the
    coordinates of the analysis: in log parameters ``[1, -1]`` is the log of a ratio).
    """
    names = tuple(names)
    p = len(names)
    if targets is None:
        return names, np.eye(p)
    if isinstance(targets, Mapping):
        labels, rows = [], []
        for label, a in targets.items():
            a = np.asarray(a, dtype=float)
            if a.shape != (p,) or not np.all(np.isfinite(a)) or not np.any(a != 0):
                raise ValueError(
                    f"targets[{label!r}]: a direction must be a finite, nonzero vector of {p} numbers "
                    f"(one per parameter {names}), got {a.tolist()}"
                )
            labels.append(str(label))
            rows.append(a)
        if not rows:
            raise ValueError("targets: give at least one target")
        return tuple(labels), np.stack(rows)
    if isinstance(targets, (str, int)):
        targets = [targets]
    idx = []
    for t in targets:
        if isinstance(t, str):
            if t not in names:
                raise ValueError(f"targets: {t!r} is not a parameter (the parameters are {names})")
            idx.append(names.index(t))
        elif isinstance(t, int) and not isinstance(t, bool) and 0 <= t < p:
            idx.append(t)
        else:
            raise ValueError(f"targets: {t!r} is neither a parameter name of {names} nor a position < {p}")
    if not idx or len(set(idx)) != len(idx):
        raise ValueError(f"targets: give distinct parameters, got {list(targets)!r}")
    return tuple(names[i] for i in idx), np.eye(p)[idx]


# ---------------------------------------------------------------------------------------------
# one point


@dataclass(frozen=True)
class FisherCriteria:
    """The design criteria at one point (see the module docstring).

    - ``eigenvalues``: of :math:`F`, descending (:math:`s_i^2`); ``rank`` of ``num_params``;
    - ``lambda_min``: the smallest eigenvalue, ``0`` when ``rank < num_params``;
    - ``log_det``: :math:`\\log\\det F`, ``-inf`` when ``rank < num_params``; ``log_pdet`` on the
      identifiable subspace;
    - ``crb``: the Cramer-Rao bound of each target (``inf`` where not identifiable), ``targets``
      their labels; ``spectrum``: the :class:`~jaxid.identify.Spectrum` it came from.
    """

    eigenvalues: Float[np.ndarray, " param"]
    rank: int
    num_params: int
    lambda_min: float
    log_det: float
    log_pdet: float
    crb: Float[np.ndarray, " target"]
    targets: tuple[str, ...]
    spectrum: Spectrum = field(repr=False)


def fisher_criteria(
    w: Float[ArrayLike, "obs param"],
    *,
    targets: Targets = None,
    names: Sequence[str] | None = None,
    rule: str = "auto",
    rtol: float | None = None,
) -> FisherCriteria:
    """The criteria of a design from its whitened Jacobian ``w`` (shape ``(N, p)``: every
    experiment's rows stacked, or their :func:`information_root` blocks), with the numerical rank
    decided by ``rule``/``rtol`` (:func:`~jaxid.identify.numerical_rank`) and the bounds by
    :func:`~jaxid.identify.fisher.direction_crb`. ``targets`` as in :func:`target_directions`
    (``names`` default ``p0, p1, ...``)."""
    w = np.asarray(w, dtype=float)
    if w.ndim != 2 or w.shape[1] == 0 or not np.all(np.isfinite(w)):
        raise ValueError(f"fisher_criteria: w must be a finite (N, p) matrix, got shape {w.shape}")
    p = w.shape[1]
    names = tuple(names) if names is not None else tuple(f"p{i}" for i in range(p))
    if len(names) != p:
        raise ValueError(f"fisher_criteria: names has {len(names)} entries for {p} parameters")
    labels, dirs = target_directions(targets, names)
    spec = spectrum(w, rule=rule, rtol=rtol)
    s = spec.singular_values
    full = spec.rank == p
    with np.errstate(divide="ignore"):
        log_pdet = float(2.0 * np.sum(np.log(s[: spec.rank])))
    return FisherCriteria(
        eigenvalues=s**2,
        rank=spec.rank,
        num_params=p,
        lambda_min=float(s[-1] ** 2) if full else 0.0,
        log_det=log_pdet if full else -np.inf,
        log_pdet=log_pdet,
        crb=np.array([direction_crb(spec, a) for a in dirs]),
        targets=labels,
        spectrum=spec,
    )


# ---------------------------------------------------------------------------------------------
# over prior draws


@dataclass(frozen=True)
class DesignCriteria:
    """The design criteria at ``D`` prior draws (see the module docstring).

    - ``names``: the parameters; ``targets``: the target labels; ``thetas`` ``(D, p)``; ``log``:
      whether the criteria are on :math:`\\log\\theta` (bounds on relative standard deviations);
    - per draw: ``ranks`` ``(D,)``, ``eigenvalues`` ``(D, p)``, ``lambda_min`` ``(D,)``,
      ``log_det`` ``(D,)`` (``-inf`` where rank deficient), ``crb`` ``(D, targets)``.
    """

    names: tuple[str, ...]
    targets: tuple[str, ...]
    thetas: Float[np.ndarray, "draw param"]
    log: bool
    ranks: Int[np.ndarray, " draw"]
    eigenvalues: Float[np.ndarray, "draw param"]
    lambda_min: Float[np.ndarray, " draw"]
    log_det: Float[np.ndarray, " draw"]
    crb: Float[np.ndarray, "draw target"]

    @property
    def min_rank(self) -> int:
        """The smallest rank over the draws."""
        return int(self.ranks.min())

    @property
    def full_rank(self) -> bool:
        """Whether the information has full rank at every draw."""
        return self.min_rank == len(self.names)

    @property
    def identifiable(self) -> Bool[np.ndarray, " target"]:
        """Per target: a finite Cramer-Rao bound at every draw."""
        return np.all(np.isfinite(self.crb), axis=0)

    @property
    def mean_lambda_min(self) -> float:
        return float(np.mean(self.lambda_min))

    @property
    def mean_log_det(self) -> float:
        """Mean of :math:`\\log\\det F` over the draws (``-inf`` if singular at any draw)."""
        return float(np.mean(self.log_det))

    @property
    def mean_crb(self) -> Float[np.ndarray, " target"]:
        """Per target, the mean bound over the draws (``inf`` if unbounded at any draw)."""
        return np.mean(self.crb, axis=0)


def information_roots(
    experiments: Experiment | Sequence[Experiment], thetas: ParamBatch, *, log: bool = False
) -> tuple[Float[np.ndarray, "experiment draw param param"], Bool[np.ndarray, " draw"]]:
    r"""Each experiment's :func:`information_root` at each point: ``(roots, finite)`` with ``roots``
    of shape ``(experiments, D, p, p)`` and ``finite`` ``(D,)`` false where some experiment's
    observations or sensitivities were not finite (its roots there are zero). One forward-mode pass
    per experiment, batched over the points (:func:`~jaxid.identify.fisher.whitened_jacobians`);
    ``log=True`` takes the information on :math:`\log\theta` (``thetas`` must be positive)."""
    where = "information_roots"
    experiments = as_experiments(experiments, where)
    thetas = _check_thetas(thetas, experiments, where, log)
    roots, finite = [], np.ones(thetas.shape[0], dtype=bool)
    for e in experiments:
        wj = whitened_jacobians([e], thetas, where=where, require_finite=False)
        w, ok = wj.w, wj.finite
        if log:
            w = w * thetas[:, None, :]
        w = np.where(ok[:, None, None], w, 0.0)
        roots.append(np.asarray(_information_root(jnp.asarray(w))))
        finite &= ok
    return np.stack(roots), finite


def _check_thetas(thetas, experiments, where, log) -> np.ndarray:
    try:
        arr = np.asarray(thetas, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: thetas must be an array of parameter values") from None
    arr = arr[None] if arr.ndim == 1 else arr
    names = next((e.param_names for e in experiments if e.param_names is not None), None)
    if arr.ndim != 2 or arr.shape[0] == 0 or (names is not None and arr.shape[1] != len(names)):
        want = f"(draws, {len(names)})" if names is not None else "(draws, p)"
        raise ValueError(f"{where}: thetas must have shape {want}, got {np.shape(thetas)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}: thetas must be finite")
    if log and not np.all(arr > 0):
        raise ValueError(f"{where}: thetas must be positive for log-parameter criteria (log=True)")
    return arr


def criteria_over_draws(
    roots: Float[ArrayLike, "draw obs param"],
    thetas: Float[ArrayLike, "draw param"],
    *,
    names: Sequence[str],
    targets: Targets = None,
    log: bool = False,
    rule: str = "auto",
    rtol: float | None = None,
) -> DesignCriteria:
    """:class:`DesignCriteria` from the stacked roots (or whitened Jacobians) of a design at each
    draw, ``roots`` of shape ``(D, N, p)``."""
    roots = np.asarray(roots, dtype=float)
    thetas = np.asarray(thetas, dtype=float)
    per = [fisher_criteria(r, targets=targets, names=names, rule=rule, rtol=rtol) for r in roots]
    return DesignCriteria(
        names=tuple(names),
        targets=per[0].targets,
        thetas=thetas,
        log=bool(log),
        ranks=np.array([c.rank for c in per]),
        eigenvalues=np.stack([c.eigenvalues for c in per]),
        lambda_min=np.array([c.lambda_min for c in per]),
        log_det=np.array([c.log_det for c in per]),
        crb=np.stack([c.crb for c in per]),
    )


def design_criteria(
    experiments: Experiment | Sequence[Experiment],
    thetas: ParamBatch,
    *,
    targets: Targets = None,
    log: bool = False,
    rule: str = "auto",
    rtol: float | None = None,
) -> DesignCriteria:
    """The criteria of the design ``experiments`` (their information adds) at each of the points
    ``thetas`` (``(D, p)``, e.g. prior draws), on natural or (``log=True``) log parameters.
    ``targets``: parameter names or a mapping ``label -> direction`` (:func:`target_directions`).
    A point where a simulation fails raises a :class:`ValueError` naming it."""
    experiments = as_experiments(experiments, "design_criteria")
    thetas = _check_thetas(thetas, experiments, "design_criteria", log)
    roots, finite = information_roots(experiments, thetas, log=log)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        whitened_jacobians(experiments, thetas[i], where="design_criteria", single=True)  # raises, naming it
    names = experiments[0].param_names or tuple(f"p{i}" for i in range(thetas.shape[1]))
    stacked = np.concatenate(list(roots), axis=-2)  # (D, E p, p)
    return criteria_over_draws(stacked, thetas, names=names, targets=targets, log=log, rule=rule, rtol=rtol)
