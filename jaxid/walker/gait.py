r"""Periodic gaits of the walker: fixed points of the step-to-step return map.

The Poincare section is mid-stance: single support with the stance leg vertical (``x`` equal to
the stance foot's position). A state on it is ``s = (y, vx, vy)``; the return map ``P`` integrates
one full step (touch-down, double support, take-off) to the next mid-stance. Because energy is
conserved, periodic gaits form one-parameter families; :func:`find_gait` picks the member by its
mid-stance height ``y*`` (give it as a fraction of ``l0`` to keep the initial state free of any
information on ``m`` beyond ``k/m``) and solves

.. math::
    P_y(y^*, v_x, v_y) = y^*, \qquad P_{v_y}(y^*, v_x, v_y) = v_y

for ``(vx, vy)`` by Newton's method (:class:`optimistix.Newton`) through the differentiable
simulation (``jax.jacfwd`` through the events). Stability is read from the return map restricted to
the energy surface, parametrised by ``(y, vy)`` (the third eigenvalue of the full map is 1, along
the family): the gait is asymptotically stable when both eigenvalues lie inside the unit circle.
The map is not area-preserving, because each touch-down places the new foot where the state puts it.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Sequence

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, ArrayLike, Bool, Complex, Float, Int, Real

from ..errors import require_float64
from ..models.base import STATUS_OK
from ..simulate import simulate
from .model import Walker

DEFAULT_GRID = tuple(0.2 + 0.0125 * i for i in range(25))
"""Mid-stance speeds (in units of ``sqrt(g l0)``) scanned for Newton's starting point."""


class Gait(eqx.Module):
    """A periodic gait found by :func:`find_gait` (batch axes for a batch of walkers).

    **Fields:** ``state`` (the mid-stance starting state for :func:`jaxid.simulate`, foot at
    ``x = 0``), ``height``, ``vx``, ``vy`` (the fixed point), ``residual`` (the largest of
    ``|P(s) - s|`` over ``y``, ``vx``, ``vy`` after the solve), ``converged`` (Newton converged,
    the return step did not fail and the residual is below ``tol``), ``eigenvalues`` (of the return
    map on the energy surface; ``energy_jacobian`` is that map's 2x2 Jacobian in ``(y, vy)``),
    ``step_time`` [s], ``step_length`` [m] (foot to foot), ``speed``
    [m/s] (``step_length / step_time``) and ``status`` (the simulation status of the last return
    step; 0 is ok).
    """

    state: Float[Array, "*batch 7"]
    height: Float[Array, "*batch"]
    vx: Float[Array, "*batch"]
    vy: Float[Array, "*batch"]
    residual: Float[Array, "*batch"]
    converged: Bool[Array, "*batch"]
    eigenvalues: Complex[Array, "*batch 2"]
    energy_jacobian: Float[Array, "*batch 2 2"]
    step_time: Float[Array, "*batch"]
    step_length: Float[Array, "*batch"]
    speed: Float[Array, "*batch"]
    status: Int[Array, "*batch"]

    @property
    def max_abs_eigenvalue(self) -> Float[Array, "*batch"]:
        """The larger eigenvalue modulus: 1 for a (marginally) stable gait, above 1 if unstable."""
        return jnp.max(jnp.abs(self.eigenvalues), axis=-1)


class ReturnMap(eqx.Module):
    """What :func:`return_map` returns (an equinox Module, so it passes through ``jit``, ``vmap``
    and ``jacfwd(..., has_aux=True)``).

    **Fields:**

    - ``section``: the next mid-stance state ``(y, vx, vy)``, foot at its new position;
    - ``step_time``: the time of the step [s];
    - ``step_length``: the new foot's position, foot to foot [m];
    - ``status``: the simulation status of the step (0 is ok; a step that ran to the horizon
      without returning to mid-stance is reported as failed, 1).
    """

    section: Float[Array, " 3"]
    step_time: Float[Array, ""]
    step_length: Float[Array, ""]
    status: Int[Array, ""]


def return_map(model: Walker, section: Float[ArrayLike, " 3"], *, dt0: float | None = None) -> ReturnMap:
    """One step of the return map from mid-stance ``section = (y, vx, vy)``, foot at 0.

    ``dt0``: the fixed step of the walker's event-aware integrator (default ``model.default_dt``),
    as in :func:`jaxid.simulate`.

    **Returns:** a :class:`ReturnMap` (``section``, ``step_time``, ``step_length``, ``status``);
    differentiable (forward mode) in ``section`` and in the model's parameters.
    """
    walker = dataclasses.replace(model, stop_at_midstance=True)
    y0 = walker.initial_state(section[0], section[1], section[2])
    horizon = 4.0 * walker.phase_time_limit
    ts = jnp.asarray([horizon], dtype=y0.dtype)
    sim = simulate(walker, y0, ts, t0=0.0, dt0=dt0, adjoint=dfx.ForwardMode())
    yf = sim.y_final
    out = jnp.stack([yf[1], yf[2], yf[3]])
    # A return that ran to the horizon without a step is not a return: report it as failed.
    status = jnp.where((sim.status == STATUS_OK) & (sim.t_final >= horizon), 1, sim.status)
    return ReturnMap(section=out, step_time=sim.t_final, step_length=yf[5], status=status)


def _energy_surface_jacobian(model: Walker, section, jac):
    """The Jacobian of the return map restricted to the energy surface, in coordinates (y, vy)."""
    y, vx, vy = section[0], section[1], section[2]
    w = model.k / model.m
    # e = (vx^2 + vy^2)/2 + g y + (k/m)(l0 - y)^2/2 at mid-stance (leg length = y).
    de_dy = model.g - w * (model.l0 - y)
    dvx_dy = -de_dy / vx
    dvx_dvy = -vy / vx
    rows = jnp.asarray([0, 2])
    a = jac[rows][:, rows]
    b = jac[rows, 1]
    c = jnp.stack([dvx_dy, dvx_dvy])
    return a + jnp.outer(b, c)


def _scan_guess(model: Walker, height, grid, dt0):
    """The grid speed (with vy = 0) whose one-step return is closest to periodic."""
    scale = jnp.sqrt(model.g * model.l0)
    vxs = grid * scale

    def misfit(vx):
        section = jnp.stack([height, vx, jnp.zeros_like(vx)])
        ret = return_map(model, section, dt0=dt0)
        out, status = ret.section, ret.status
        d = jnp.abs(out - section) / jnp.stack([model.l0, scale, scale])
        return jnp.where(status == STATUS_OK, jnp.max(d), jnp.inf)

    return vxs[jnp.argmin(jax.vmap(misfit)(vxs))]


def _newton(model: Walker, height, vx_guess, vy_guess, grid, rtol, atol, max_iterations, dt0):
    """Newton's solve for the fixed point's ``(vx, vy)`` (:class:`optimistix.Newton`), on stopped
    gradients; the root's derivatives come from the implicit function theorem (:func:`_implicit`),
    so none flow through the starting point or the iterations."""
    if vx_guess is None:
        vx_guess = _scan_guess(*jax.lax.stop_gradient((model, height)), grid, dt0)

    def residual(u, args):
        m, h = args
        out = return_map(m, jnp.stack([h, u[0], u[1]]), dt0=dt0).section
        return jnp.stack([out[0] - h, out[2] - u[1]])

    args = (model, height)
    sol = optx.root_find(
        residual,
        optx.Newton(rtol=rtol, atol=atol),
        jax.lax.stop_gradient(jnp.stack([vx_guess, vy_guess])),
        args=jax.lax.stop_gradient(args),
        max_steps=max_iterations,
        throw=False,
    )
    return eqx.tree_at(lambda s: s.value, sol, _implicit(residual, sol.value, args))


def _implicit(residual, root, args):
    r"""``root``, a root of ``residual(., args)``, with the tangents of the implicit function
    theorem: :math:`\dot u = -J_u^{-1} \partial_a r\,\dot a`, :math:`J_u` the residual's Jacobian
    in ``u`` at the root (the same derivatives as optimistix's implicit adjoint). Where no root was
    found (NaN) the tangents are NaN: the linear solve is :func:`jax.numpy.linalg.solve`, which
    returns NaN for a NaN or singular system, where lineax's solve (optimistix's adjoint) raises
    at run time, which would end a whole batch, a sampler or an optimiser that steps where a
    parameter set has no gait."""

    @jax.custom_jvp
    def root_of(root, args):
        return root

    @root_of.defjvp
    def _(primals, tangents):
        u, a = primals
        _, t_a = tangents
        jac = jax.jacfwd(residual)(u, a)
        _, t_r = jax.jvp(lambda aa: residual(u, aa), (a,), (t_a,))
        return u, -jnp.linalg.solve(jac, t_r)

    return root_of(root, args)


def _is_converged(sol, status, resid, vx, tol):
    return (sol.result == optx.RESULTS.successful) & (status == STATUS_OK) & (resid < tol) & (vx > 0)


def _state_one(model: Walker, height, vx_guess, vy_guess, grid, rtol, atol, max_iterations, tol, dt0):
    """The gait's starting state and whether it converged, without the return-map Jacobian: the
    check step runs on stopped gradients, so the state's derivatives cost one implicit solve."""
    sol = _newton(model, height, vx_guess, vy_guess, grid, rtol, atol, max_iterations, dt0)
    vx, vy = sol.value[0], sol.value[1]
    section = jnp.stack([height, vx, vy])
    m_sg, s_sg = jax.lax.stop_gradient((model, section))
    ret = return_map(m_sg, s_sg, dt0=dt0)
    out, status = ret.section, ret.status
    converged = _is_converged(sol, status, jnp.max(jnp.abs(out - s_sg)), s_sg[1], tol)
    return model.initial_state(height, vx, vy), converged


def _find_one(model: Walker, height, vx_guess, vy_guess, grid, rtol, atol, max_iterations, tol, dt0):
    sol = _newton(model, height, vx_guess, vy_guess, grid, rtol, atol, max_iterations, dt0)
    vx, vy = sol.value[0], sol.value[1]
    section = jnp.stack([height, vx, vy])

    def with_aux(s):
        result = return_map(model, s, dt0=dt0)
        return result.section, result

    # One forward-mode pass gives the Jacobian and the primal return together.
    jac, ret = jax.jacfwd(with_aux, has_aux=True)(section)
    out, t_step, foot, status = ret.section, ret.step_time, ret.step_length, ret.status
    resid = jnp.max(jnp.abs(out - section))
    converged = _is_converged(sol, status, resid, vx, tol)
    energy_jac = _energy_surface_jacobian(model, section, jac)
    return Gait(
        state=model.initial_state(height, vx, vy),
        height=height,
        vx=vx,
        vy=vy,
        residual=resid,
        converged=converged,
        eigenvalues=jnp.linalg.eigvals(energy_jac),
        energy_jacobian=energy_jac,
        step_time=t_step,
        step_length=foot,
        speed=foot / t_step,
        status=status,
    )


@eqx.filter_jit
def _find(model, height, vx_guess, vy_guess, grid, rtol, atol, max_iterations, tol, dt0, state_only=False):
    one = _state_one if state_only else _find_one

    def fn(m, h, vx, vy):
        return one(m, h, vx, vy, grid, rtol, atol, max_iterations, tol, dt0)

    in_axes = (0, 0, None if vx_guess is None else 0, 0)
    for _ in range(len(model.batch_shape)):
        fn = jax.vmap(fn, in_axes=in_axes)
    return fn(model, height, vx_guess, vy_guess)


def find_gait(
    model: Walker,
    height: Real[ArrayLike, "*#batch"] | None = None,
    *,
    height_ratio: float | None = None,
    vx_guess: Real[ArrayLike, "*#batch"] | None = None,
    vy_guess: Real[ArrayLike, "*#batch"] = 0.0,
    speed_grid: Sequence[float] | Real[ArrayLike, " grid"] = DEFAULT_GRID,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    max_iterations: int = 30,
    tol: float = 1e-8,
    dt0: float | None = None,
) -> Gait:
    """Find the periodic gait of ``model`` with mid-stance height ``height`` (metres), or
    ``height_ratio * l0``.

    Batched: a walker with 1-D parameters gives a batch of gaits (``vmap`` inside). Without
    ``vx_guess``, the starting speed is the point of ``speed_grid`` (in units of ``sqrt(g l0)``,
    with ``vy = 0``) whose one-step return is closest to periodic. Newton
    (:class:`optimistix.Newton`, tolerances ``rtol``, ``atol``, at most ``max_iterations``) then
    solves for ``(vx, vy)``. ``Gait.converged`` also requires the return residual below ``tol``:
    a parameter set may have no gait at that height. ``dt0`` is the fixed step of the walker's
    event-aware integrator (default ``model.default_dt``), as in :func:`jaxid.simulate`. Needs
    float64 (``jax.config.update("jax_enable_x64", True)``).
    """
    return _run_find(
        model, height, height_ratio, vx_guess, vy_guess, speed_grid, rtol, atol, max_iterations, tol, dt0
    )


def _run_find(
    model,
    height,
    height_ratio,
    vx_guess,
    vy_guess,
    speed_grid,
    rtol,
    atol,
    max_iterations,
    tol,
    dt0,
    state_only=False,
):
    """:func:`find_gait`'s checks and call (``state_only``: the starting state and ``converged`` only)."""
    require_float64("find_gait")
    if not isinstance(model, Walker):
        raise TypeError(f"find_gait: model must be a jaxid.Walker, got {type(model).__name__}")
    if len(model.batch_shape) > 1:
        raise ValueError(
            f"find_gait: model parameters must be scalars or 1-D, got batch shape {model.batch_shape}"
        )
    if (height is None) == (height_ratio is None):
        raise ValueError("find_gait: give exactly one of height (m) or height_ratio (a fraction of l0)")
    if height_ratio is not None and not 0.0 < height_ratio < 1.0:
        raise ValueError(f"find_gait: height_ratio must lie in (0, 1), got {height_ratio}")
    if not tol > 0:
        raise ValueError(f"find_gait: tol must be > 0, got {tol}")
    model = model.broadcast()
    shape = model.batch_shape
    dtype = model.m.dtype
    for name, value in (("height", height), ("vx_guess", vx_guess), ("vy_guess", vy_guess)):
        got = jnp.shape(value) if value is not None else ()
        if got not in ((), shape):
            raise ValueError(
                f"find_gait: {name} must be a scalar or match the walker's batch shape {shape}, "
                f"got shape {got}"
            )
    height = (
        model.l0 * height_ratio if height is None else jnp.broadcast_to(jnp.asarray(height, dtype), shape)
    )
    if vx_guess is not None:
        vx_guess = jnp.broadcast_to(jnp.asarray(vx_guess, dtype), shape)
    vy_guess = jnp.broadcast_to(jnp.asarray(vy_guess, dtype), shape)
    grid_np = np.asarray(speed_grid, dtype=float)
    if grid_np.ndim != 1 or grid_np.shape[0] < 1 or not np.all(grid_np > 0):
        raise ValueError("find_gait: speed_grid must be a non-empty 1-D sequence of positive speeds")
    grid = jnp.asarray(grid_np, dtype)
    return _find(model, height, vx_guess, vy_guess, grid, rtol, atol, max_iterations, tol, dt0, state_only)


def gait_initial_state(
    height_ratio: float = 0.94, *, k_range: tuple[float, float] | None = None, **find_gait_kwargs
) -> Callable[[Walker], Float[Array, " 7"]]:
    r"""A function ``walker -> initial state`` that starts a (one-record) walker on its own periodic
    gait at mid-stance height ``height_ratio * l0`` (NaN when no gait is found, so a simulation from
    it is reported as failed).

    For :meth:`jaxid.identify.Experiment.from_model`: the initial state then follows the
    parameters, as in the gait data set, and the gait's dependence on them is differentiated
    through the Newton solve (implicit function theorem). Pass ``vx_guess`` to skip the speed-grid
    scan when the gaits are near a known one.

    ``k_range``: the range of the dimensionless stiffness :math:`K = k l_0 / (m g)` the walkers will
    have (e.g. over a prior box). The gait of a walker scaled to unit mass and leg length depends
    on ``K`` only (at fixed ``alpha0`` and ``height_ratio``), so the starting speeds of unit walkers
    are found once on 64 points of this range (with the speed-grid scan), and each call starts
    Newton from their interpolation at its ``K``, scaled by :math:`\sqrt{g l_0}`: a few Newton
    steps instead of the 25 return maps of the scan, for samplers and optimisers that call the
    function many times. The table is made here, for walkers with the default ``alpha0`` and ``g``
    (a walker with others still converges when its gait is near the table's, and is NaN otherwise).
    """
    if not 0.0 < height_ratio < 1.0:
        raise ValueError(f"gait_initial_state: height_ratio must lie in (0, 1), got {height_ratio}")

    options = {k: v.default for k, v in inspect.signature(find_gait).parameters.items() if k != "model"}
    allowed = set(options) - {"height", "height_ratio"}
    unknown = sorted(set(find_gait_kwargs) - allowed)
    if unknown:
        raise TypeError(f"gait_initial_state: unexpected options {unknown}; allowed: {sorted(allowed)}")
    if k_range is not None:
        lo, hi = (float(v) for v in k_range)
        if not (0 < lo < hi and math.isfinite(hi)):
            raise ValueError(f"gait_initial_state: k_range must be (low, high), 0 < low < high: {k_range}")
        if "vx_guess" in find_gait_kwargs:
            raise TypeError("gait_initial_state: give k_range or vx_guess, not both")
    options["height_ratio"] = height_ratio
    options.update(find_gait_kwargs)
    table = _speed_table(k_range, options) if k_range is not None else None

    def guesses(model: Walker):
        """The starting ``(vx, vy)`` interpolated at the walker's ``K``."""
        ks, vx, vy = table
        k = model.k * model.l0 / (model.m * model.g)
        root = jnp.sqrt(model.g * model.l0)
        return jnp.interp(k, ks, vx) * root, jnp.interp(k, ks, vy) * root

    def start(model: Walker) -> Float[Array, " 7"]:
        # Only the state and the convergence flag: with the return-map Jacobian and its
        # derivatives, which find_gait also computes, a differentiated program is 1.5x larger.
        opts = dict(options)
        if k_range is not None:
            opts["vx_guess"], opts["vy_guess"] = guesses(model)
        state, converged = _run_find(model, **opts, state_only=True)
        return jnp.where(converged, state, jnp.nan)

    return start


def stiffness_range(bounds: dict[str, tuple[float, float]], widen: float = 1.25) -> tuple[float, float]:
    r"""The range of :math:`K = k l_0 / (m g)` over a box ``bounds`` of ``m``, ``k``, ``l0`` and ``g``
    (``(low, high)`` each; ``g`` defaults to 9.81), widened by ``widen`` on each side (samplers and
    least-squares fits step outside a prior box): ``k_range`` for :func:`gait_initial_state`."""
    b = {"g": (9.81, 9.81), **bounds}
    values = [float(v) for n in ("m", "k", "l0", "g") for v in b[n]]
    if not all(0 < v < math.inf for v in values) or not widen >= 1:
        raise ValueError(
            f"stiffness_range: bounds must be positive and finite and widen >= 1, got {bounds}, {widen}"
        )
    lo = b["k"][0] * b["l0"][0] / (b["m"][1] * b["g"][1])
    hi = b["k"][1] * b["l0"][1] / (b["m"][0] * b["g"][0])
    return lo / widen, hi * widen


def _speed_table(k_range, options, n=64):
    """Starting speeds ``(K, vx, vy)`` (``v`` in units of :math:`\\sqrt{g l_0}`) of unit walkers with
    the default ``alpha0`` and ``g`` on ``n`` points of ``k_range`` (converged gaits only)."""
    ks = np.linspace(*k_range, n)
    g = float(Walker(m=1.0, k=1.0, l0=1.0).g)  # the default gravity
    unit = Walker(m=np.ones(n), k=ks * g, l0=np.ones(n))
    opts = {k: v for k, v in options.items() if k not in ("vx_guess", "vy_guess")}
    gait = jax.device_get(find_gait(unit, **opts))
    ok = np.asarray(gait.converged)
    if ok.sum() < 2:
        raise RuntimeError(f"gait_initial_state: fewer than two gaits found for K in {tuple(k_range)}")
    root = math.sqrt(g)
    return ks[ok], np.asarray(gait.vx)[ok] / root, np.asarray(gait.vy)[ok] / root
