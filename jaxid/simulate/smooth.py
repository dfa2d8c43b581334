"""Simulation of jaxid models: one record with :func:`simulate`, many with :func:`simulate_batch`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ..models.base import AbstractModel, AbstractSwitchingModel, as_param
from ..typing import RealScalar, StateBatch, StateVector, TimeGrid
from .chunking import map_chunked
from .events import SwitchingSimulation, simulate_switching

DEFAULT_RTOL = 1e-7
DEFAULT_ATOL = 1e-9
DEFAULT_MAX_STEPS = 16384


class Simulation(eqx.Module):
    """The result of :func:`simulate` (leading batch axes added by ``vmap`` or :func:`simulate_batch`).

    **Fields:**

    - ``ts``: the save times, shape ``(time,)``.
    - ``ys``: the state at the save times, shape ``(time, state)``.
    - ``obs``: the observations ``model.observe(t, y)`` at the save times, shape ``(time, channel)``.
    - ``success``: ``True`` when the solver finished and every saved value is finite. A failed
      record keeps whatever the solver produced (``inf`` after the failure); never use its values.
    - ``num_steps``: the number of accepted and rejected solver steps.
    """

    ts: Float[Array | np.ndarray, "*batch time"]
    ys: Float[Array | np.ndarray, "*batch time state"]
    obs: Float[Array | np.ndarray, "*batch time channel"]
    success: Bool[Array | np.ndarray, "*batch"]
    num_steps: Int[Array | np.ndarray, "*batch"]


def _vector_field(t, y, model):
    return model.vector_field(t, y)


def _check_common(model, ts, rtol, atol, max_steps, where):
    if not isinstance(model, AbstractModel):
        raise TypeError(f"{where}: model must be a jaxid model (AbstractModel), got {type(model).__name__}")
    ts = jnp.asarray(ts)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"{where}: ts must be a non-empty 1-D array of save times, got shape {ts.shape}")
    if not isinstance(ts, jax.core.Tracer):
        t_np = np.asarray(ts)
        if not np.all(np.isfinite(t_np)):
            raise ValueError(f"{where}: ts must be finite")
        if np.any(np.diff(t_np) <= 0):
            raise ValueError(f"{where}: ts must be strictly increasing")
    for name, value in (("rtol", rtol), ("atol", atol)):
        # rtol = inf would accept every step: "success" with a large error
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 < value < np.inf):
            raise ValueError(f"{where}: {name} must be a positive number and finite, got {value!r}")
    if isinstance(max_steps, bool) or not (isinstance(max_steps, int) and max_steps >= 1):
        raise ValueError(f"{where}: max_steps must be a positive int, got {max_steps!r}")
    return ts


def _check_objects(where, solver, stepsize_controller, adjoint, dt0, switching=False):
    """Options that take objects get objects (an instance, not a string or a class)."""
    pid = "diffrax.PIDController(rtol=1e-7, atol=1e-9)"
    for name, value, kind, example in (
        ("solver", solver, dfx.AbstractSolver, "diffrax.Tsit5()"),
        ("stepsize_controller", stepsize_controller, dfx.AbstractStepSizeController, pid),
        ("adjoint", adjoint, dfx.AbstractAdjoint, "diffrax.ForwardMode()"),
    ):
        if value is None or isinstance(value, kind):
            continue
        what = f"the class {value.__name__} (not an instance)" if isinstance(value, type) else repr(value)
        raise TypeError(
            f"{where}: {name} must be a {kind.__module__.split('.')[0]}.{kind.__name__} instance such as "
            f"{example}, got {what}"
        )
    if dt0 is not None and not switching and not isinstance(dt0, jax.core.Tracer):  # switching: checked as dt
        if isinstance(dt0, bool) or not (isinstance(dt0, (int, float, np.floating)) and 0 < dt0 < np.inf):
            raise ValueError(f"{where}: dt0 must be a positive number and finite, got {dt0!r}")


def simulate(
    model: AbstractModel,
    y0: StateVector,
    ts: TimeGrid,
    *,
    t0: RealScalar | None = None,
    solver: dfx.AbstractSolver | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    stepsize_controller: dfx.AbstractStepSizeController | None = None,
    dt0: RealScalar | None = None,
    max_steps: int | None = None,
    adjoint: dfx.AbstractAdjoint | None = None,
    throw: bool = False,
    **switching_options,
) -> Simulation | SwitchingSimulation:
    r"""Integrate ``dy/dt = model.vector_field(t, y)`` from ``y0`` and observe at ``ts``.

    One record: the model's parameters must be scalars. Batch with :func:`jax.vmap` (over a model
    whose parameters have a leading batch axis, see :meth:`AbstractModel.broadcast`) or with
    :func:`simulate_batch` (chunked, sharded, with a progress bar).

    **Arguments:**

    - ``model``: a jaxid model with scalar parameters.
    - ``y0``: the initial state at ``t0``, shape ``(state,)``.
    - ``ts``: strictly increasing save times, shape ``(time,)``.
    - ``t0``: start time; defaults to ``ts[0]``.
    - ``solver``: any diffrax solver; default :class:`diffrax.Tsit5`.
    - ``rtol``, ``atol``: tolerances of the default :class:`diffrax.PIDController`. The defaults
      (1e-7, 1e-9) assume float64 (``jax.config.update("jax_enable_x64", True)``); in float32 use
      about 1e-5.
    - ``stepsize_controller``, ``dt0``: override the controller (e.g. ``ConstantStepSize`` with a
      ``dt0``); ``dt0=None`` lets diffrax pick the first step. For large batches at tight
      tolerances, ``solver=diffrax.Dopri8()`` with
      ``diffrax.PIDController(rtol=..., atol=..., pcoeff=0.3, icoeff=0.4)`` took 2.6x fewer steps
      and ran 1.7x faster than the defaults on the forced damped pendulum
      (``benchmarks/simulate.py``).
    - ``max_steps``: the most solver steps; a solve that needs more is reported as failed.
    - ``adjoint``: how to differentiate. The default :class:`diffrax.RecursiveCheckpointAdjoint`
      supports reverse mode (``jax.grad``); pass :class:`diffrax.ForwardMode` for forward mode
      (``jax.jacfwd``, ``jax.jvp``), which is also the cheaper way to get a full Jacobian with
      respect to a few parameters.
    - ``throw``: raise (through :func:`equinox.error_if`) when the solve fails instead of returning
      ``success=False``. Under ``vmap`` one failed record raises for the whole batch.

    **Switching models** (:class:`jaxid.Walker`): integrated across their events by
    :func:`jaxid.simulate.events.simulate_switching` with a fixed internal step ``dt0`` (default
    ``model.default_dt``) of ``solver`` (default :class:`diffrax.Dopri8`); ``rtol``, ``atol`` and
    ``stepsize_controller`` do not apply. ``adjoint=None`` or :class:`diffrax.ForwardMode` allows
    ``jax.jacfwd``; :class:`diffrax.RecursiveCheckpointAdjoint` allows ``jax.grad``. Extra option:
    ``root_iterations``.

    **Returns:** a :class:`Simulation`, or a :class:`jaxid.simulate.events.SwitchingSimulation` (with failure
    status codes and event counts) for a switching model.
    """
    where = "simulate"
    switching = isinstance(model, AbstractSwitchingModel)
    if switching_options and not switching:
        raise TypeError(f"{where}: unexpected keyword arguments {sorted(switching_options)}")
    if switching and (rtol is not None or atol is not None or stepsize_controller is not None):
        raise ValueError(
            f"{where}: rtol, atol and stepsize_controller do not apply to the switching model "
            f"{type(model).__name__}; it steps with a fixed dt0 (default model.default_dt)"
        )
    _check_objects(where, solver, stepsize_controller, adjoint, dt0, switching)
    rtol = DEFAULT_RTOL if rtol is None else rtol
    atol = DEFAULT_ATOL if atol is None else atol
    ts = _check_common(model, ts, rtol, atol, DEFAULT_MAX_STEPS if max_steps is None else max_steps, where)
    if model.batch_shape != ():
        raise ValueError(
            f"{where}: model holds a batch of parameters (batch shape {model.batch_shape}); "
            "simulate one record at a time under jax.vmap, or call jaxid.simulate_batch"
        )
    y0 = as_param(y0)
    if y0.shape != (model.state_size,):
        raise ValueError(
            f"{where}: y0 must have shape ({model.state_size},) for {type(model).__name__} "
            f"(state {', '.join(model.state_names)}), got {y0.shape}"
        )
    if not isinstance(y0, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(y0))):
        raise ValueError(f"{where}: y0 must be finite, got {y0}")
    t_start = ts[0] if t0 is None else jnp.asarray(t0, dtype=ts.dtype)
    concrete = not isinstance(ts, jax.core.Tracer) and not isinstance(t0, jax.core.Tracer)
    # NumPy on the concrete values: a jnp index would be staged out under an outer trace
    if t0 is not None and concrete and not float(np.asarray(t0)) <= (ts_first := float(np.asarray(ts)[0])):
        raise ValueError(f"{where}: t0={t0} must not be after the first save time ts[0]={ts_first}")

    # Parameters checked on construction are concrete; traced ones (a model built inside jit or
    # vmap) are checked here and fold into success: a switching record starts non-finite and stops at
    # once ("non-finite state"), a smooth record reports success=False.
    valid = model.params_valid()
    if switching:
        if isinstance(valid, jax.core.Tracer) or not bool(valid):
            y0 = jnp.where(valid, y0, jnp.nan)
        return simulate_switching(
            model,
            y0,
            ts,
            t0=t0,
            solver=solver,
            dt0=dt0,
            max_steps=max_steps,
            adjoint=adjoint,
            throw=throw,
            **switching_options,
        )
    max_steps = DEFAULT_MAX_STEPS if max_steps is None else max_steps
    solver = dfx.Tsit5() if solver is None else solver
    if stepsize_controller is None:
        stepsize_controller = dfx.PIDController(rtol=rtol, atol=atol)
    sol = dfx.diffeqsolve(
        dfx.ODETerm(_vector_field),
        solver,
        t_start,
        ts[-1],
        dt0,
        y0,
        args=model,
        saveat=dfx.SaveAt(ts=ts),
        stepsize_controller=stepsize_controller,
        max_steps=max_steps,
        adjoint=dfx.RecursiveCheckpointAdjoint() if adjoint is None else adjoint,
        throw=False,
    )
    ys = sol.ys
    obs = jax.vmap(model.observe)(ts, ys)
    success = (sol.result == dfx.RESULTS.successful) & jnp.all(jnp.isfinite(ys)) & jnp.all(jnp.isfinite(obs))
    success = success & valid
    if throw:
        obs = eqx.error_if(
            obs,
            ~success,
            "simulate: the solve failed (max_steps reached, step size collapsed or a non-finite "
            "state); raise max_steps, loosen the tolerances or check the parameters",
        )
    return Simulation(ts=ts, ys=ys, obs=obs, success=success, num_steps=sol.stats["num_steps"])


@eqx.filter_jit
def _run_chunk(model, y0, ts, simulate_kwargs):
    # filter_jit keys the cache on the (hashable) options, so repeated calls do not recompile.
    return jax.vmap(lambda m, y: simulate(m, y, ts, **simulate_kwargs))(model, y0)


def _batch_size(model: AbstractModel, y0) -> int:
    shape = model.batch_shape
    if len(shape) > 1:
        raise ValueError(f"simulate_batch: model parameters must be scalars or 1-D, got batch shape {shape}")
    if 0 in shape or (y0.ndim == 2 and y0.shape[0] == 0):
        raise ValueError(
            f"simulate_batch: the batch is empty (model batch shape {shape}, y0 shape {y0.shape}); "
            "give at least one record"
        )
    sizes = {s for s in (shape[0] if shape else None, y0.shape[0] if y0.ndim == 2 else None) if s}
    if len(sizes) > 1:
        raise ValueError(
            f"simulate_batch: model has {shape[0]} records but y0 has {y0.shape[0]}; they must agree"
        )
    if not sizes:
        raise ValueError("simulate_batch: nothing to batch over; give 1-D parameters or a 2-D y0")
    return sizes.pop()


def simulate_batch(
    model: AbstractModel,
    y0: StateBatch | StateVector,
    ts: TimeGrid,
    *,
    chunk_size: int = 4096,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
    **simulate_kwargs,
) -> Simulation | SwitchingSimulation:
    """Simulate many records in memory-bounded chunks, sharded across devices, with a progress bar.

    Parameters with a leading axis of length ``N`` (and/or ``y0`` of shape ``(N, state)``) give
    ``N`` records; scalar parameters and a 1-D ``y0`` are shared by all of them. Each chunk of
    ``chunk_size`` records (rounded up to a multiple of the device count) is split across
    ``devices`` (default: all local devices) along the record axis with :mod:`jax.sharding`, and
    its result is copied to host memory before the next chunk runs, so device memory holds one
    chunk at a time. The last chunk is padded, so one compilation serves every chunk.

    On a CPU, run with ``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>`` (set before
    JAX is imported) to spread the chunks over all cores.

    ``simulate_kwargs`` go to :func:`simulate` (solver, tolerances, ...; ``throw`` is not allowed:
    failures are reported per record). Warns with the count of failed records.

    **Returns:** a :class:`Simulation` (a :class:`jaxid.simulate.events.SwitchingSimulation` for a
    switching model) of NumPy arrays with a leading axis of length ``N``.
    """
    where = "simulate_batch"
    _check_objects(
        where, simulate_kwargs.get("solver"), simulate_kwargs.get("stepsize_controller"),
        simulate_kwargs.get("adjoint"), simulate_kwargs.get("dt0"),
    )  # fmt: skip
    if "throw" in simulate_kwargs:
        raise ValueError(f"{where}: throw is not supported; failed records are flagged in .success")
    ts = _check_common(
        model,
        ts,
        simulate_kwargs.get("rtol") or DEFAULT_RTOL,
        simulate_kwargs.get("atol") or DEFAULT_ATOL,
        simulate_kwargs.get("max_steps") or DEFAULT_MAX_STEPS,
        where,
    )
    y0 = as_param(y0)
    if y0.ndim not in (1, 2) or y0.shape[-1] != model.state_size:
        raise ValueError(
            f"{where}: y0 must have shape (N, {model.state_size}) or ({model.state_size},), got {y0.shape}"
        )
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"{where}: chunk_size must be a positive int, got {chunk_size!r}")
    n = _batch_size(model, y0)
    model = jax.tree.map(lambda a: np.broadcast_to(np.asarray(a), (n,)), model)
    y0 = np.broadcast_to(np.asarray(y0), (n, model.state_size))
    result = map_chunked(
        lambda m, y: _run_chunk(m, y, ts, simulate_kwargs),
        (model, y0),
        chunk_size=chunk_size,
        devices=devices,
        progress=progress,
        desc="simulate",
    )
    n_failed = int(np.sum(~result.success))
    if n_failed:
        warnings.warn(f"{where}: {n_failed} of {n} records failed (success=False)", stacklevel=2)
    return result
