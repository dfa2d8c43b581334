r"""Event-aware integration of event-switching models in lock step.

A switching model (:class:`jaxid.models.base.AbstractSwitchingModel`) declares event functions
``h_i(t, y)``; event ``i`` fires when ``h_i`` crosses from ``< 0`` to ``>= 0`` while armed. The
integrator takes steps of a diffrax Runge-Kutta solver of fixed size ``dt`` (shortened to land
exactly on the save times), and after each step checks every armed event for a crossing:

1. the earliest crossing (ranked by linear interpolation of ``h`` over the step) is located by a
   safeguarded Newton iteration on the solver's dense output, giving the event time ``tau``;
2. the step is redone from its start to ``tau`` exactly, so the state at the switch is a true
   Runge-Kutta state rather than an interpolated one, and ``tau`` is polished by one Newton step
   on that state (moving the state along ``f`` to first order);
3. the model's action is applied: switch and go on, stop, or fail with a status code.

Every record takes the same kind of step at every iteration, which is what ``vmap`` wants: lanes
never diverge into different code paths, and a batch costs about as many iterations as its
slowest record. The event time is differentiable by the implicit function theorem
(``d tau = -dh / h'``; the Newton iterations themselves carry no derivative), so ``jax.jacfwd``
(and, with ``adjoint=diffrax.RecursiveCheckpointAdjoint()``, ``jax.grad``) differentiate through
the switches.

**Code layout.** The loop carries a :class:`_State` (an equinox Module with one documented field
per quantity, as diffrax's ``State``); one iteration (:func:`_body`) is the attempt
(:func:`_attempt`: the step, :func:`_step`, and the earliest armed event crossed in it), the
location of that event (:func:`_location`, with :func:`_locate` the root), the polish of an
event located in the previous iteration (:func:`_polish`), and the new state (:func:`_finish`:
the event's action, :func:`_apply`, and the shared failures, :func:`_update_status`).
:func:`simulate_switching` runs the stages in a ``fori_loop`` (:func:`_rk_step_looped` says why);
:func:`integrate_knots` and :func:`integrate_knots_batch` unroll them (:func:`_rk_step`), and the
batched loop runs the location and the polish only in iterations where a record needs them.
:func:`_check_inputs` checks the arguments before any work.

**Status codes.** How a record ended is an enumeration with a message per code, as diffrax's
``RESULTS``: :class:`jaxid.models.base.Status` (an ``equinox.internal.Enumeration``) holds the codes
every model shares (``ok``, ``iteration_limit``, ``phase_timeout``, ``nonfinite_state``), and a
model with failures of its own subclasses it (:class:`jaxid.walker.model.WalkerStatus` adds
``fall``, ``stall``, ``flight``, ``front_leg_liftoff``); the subclass keeps the base codes' values
and numbers its own after them, and the model names it in ``status_enum``. The arrays keep the
plain int codes (:func:`jaxid.models.base.status_code` of an item): an int ``status`` field
batches under ``vmap``, is stored as is in data sets, and lets a model's ``event_actions`` name
its failure codes as ints. The enumeration gives the words: ``model.status_message(code)`` (one
record's message), ``model.status_item(status)`` (the codes as items of ``status_enum``, to compare
with its members or to ``error_if``), and ``throw=True`` raises the failed record's message. The
short names of ``model.status_names`` (``"fall"``) stay the keys of :func:`status_counts` and of
the data sets' rejection counts.
"""

from __future__ import annotations

import dataclasses
import math

import diffrax as dfx
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from ..models.base import (
    STATUS_ITERATION_LIMIT,
    STATUS_NONFINITE,
    STATUS_OK,
    STATUS_TIMEOUT,
    SWITCH,
    AbstractSwitchingModel,
    status_messages,
)
from ..typing import RealScalar

_RUNNING = -1
MAX_DEFAULT_STEPS = 10**8
"""The most iterations the default step limit of :func:`simulate_switching` allows (a larger need is
refused before any work, naming ``dt0``)."""


class SwitchingSimulation(eqx.Module):
    """The result of :func:`jaxid.simulate` for a switching model (batch axes added by ``vmap``).

    **Fields:**

    - ``ts``, ``ys``, ``obs``, ``success``, ``num_steps``: as in :class:`jaxid.Simulation`.
      Saved entries after the record ended (by a failure or a ``STOP`` event) are NaN; ``success``
      and ``status`` say why.
    - ``status``: ``0`` when the record reached ``ts[-1]`` (or a stopping event); otherwise a failure
      code, named by ``model.status_names[status]`` (see :func:`status_counts`).
    - ``num_events``: the number of switches (phase changes) taken.
    - ``t_final``, ``y_final``: the time and state where the record ended.
    - ``max_error``: the largest embedded error estimate of any step, a check on ``dt``.
    """

    ts: Float[Array | np.ndarray, "*batch time"]
    ys: Float[Array | np.ndarray, "*batch time state"]
    obs: Float[Array | np.ndarray, "*batch time channel"]
    success: Bool[Array | np.ndarray, "*batch"]
    num_steps: Int[Array | np.ndarray, "*batch"]
    status: Int[Array | np.ndarray, "*batch"]
    num_events: Int[Array | np.ndarray, "*batch"]
    t_final: Float[Array | np.ndarray, "*batch"]
    y_final: Float[Array | np.ndarray, "*batch state"]
    max_error: Float[Array | np.ndarray, "*batch"]


def status_counts(model: AbstractSwitchingModel, status: Int[ArrayLike, "*batch"]) -> dict[str, int]:
    """How many records ended with each status, by name (only the names that occur)."""
    status = np.asarray(status).ravel()
    codes, counts = np.unique(status, return_counts=True)
    return {model.status_names[int(c)]: int(n) for c, n in zip(codes, counts, strict=True)}


def _messages(model: AbstractSwitchingModel) -> tuple[str, ...]:
    """The message of each of ``model``'s status codes, checked against its tables."""
    messages = status_messages(model.status_enum)
    name = type(model).__name__
    if len(model.status_names) != len(messages):
        raise ValueError(
            f"simulate: {name}.status_names has {len(model.status_names)} names but "
            f"{name}.status_enum ({model.status_enum.__name__}) has {len(messages)} codes; give "
            "one name per code"
        )
    bad = [a for a in model.event_actions if not (a == SWITCH or 0 <= a < len(messages))]
    if bad:
        raise ValueError(
            f"simulate: {name}.event_actions has {bad}, which are neither SWITCH nor a code of "
            f"{model.status_enum.__name__} (0 to {len(messages) - 1})"
        )
    return messages


def _rk_step(tableau, f, t0, t1, y0):
    """One explicit Runge-Kutta step with the stages unrolled (so XLA fuses them).

    Returns ``(y1, y_error, k)`` with ``k[i] = (t1 - t0) f_i`` the scaled stages, the form diffrax's
    dense-output classes take.
    """
    h = t1 - t0
    ks = [h * f(t0, y0)]
    yi = y0
    for a_row, c in zip(tableau.a_lower, tableau.c, strict=True):
        yi = y0 + sum(float(a) * k for a, k in zip(a_row, ks, strict=False) if a != 0)
        ks.append(h * f(t0 + float(c) * h, yi))
    if tableau.ssal:
        y1 = yi
    else:
        y1 = y0 + sum(float(b) * k for b, k in zip(tableau.b_sol, ks, strict=True) if b != 0)
    y_error = sum(float(b) * k for b, k in zip(tableau.b_error, ks, strict=True) if b != 0)
    return y1, y_error, jnp.stack(ks)


rk_step = _rk_step
"""Public name of the unrolled Runge-Kutta step (``y0`` may hold any trailing batch axes)."""


def _rk_step_looped(tableau, f, t0, t1, y0):
    """:func:`_rk_step` with the stages in a ``lax.fori_loop``: stage ``i`` is
    ``k_i = h f(t0 + c_i h, y0 + sum_j a_ij k_j)``, the sum a row of the tableau's (zero-padded)
    matrix against the stages so far. The same step as the unrolled one up to rounding (the sums
    run over every column in another order).

    The integrator's loop body holds one vector field instead of one per stage, so every program
    that contains the loop is about half as large to trace, transform and compile. Measured on the
    walker (Dopri8, 13 stages, two cores): a batched :func:`jaxid.walker.find_gait` builds in 20 s
    instead of 39 s, ``vmap(jacfwd)`` of a 3 s ``simulate`` in 8 s instead of 15 s, with the
    same run time (2,000 records of 15 s: 11.3 against 11.7 s on one core; one record within the
    machine's noise).
    """
    h = t1 - t0
    n = len(tableau.c) + 1
    a = np.zeros((n, n))
    for i, row in enumerate(tableau.a_lower):
        a[i + 1, : i + 1] = row
    c = np.concatenate([[0.0], np.asarray(tableau.c, dtype=float)])
    k0 = h * f(t0, y0)
    a, c = jnp.asarray(a, k0.dtype), jnp.asarray(c, k0.dtype)
    ks = jnp.zeros((n, *k0.shape), k0.dtype).at[0].set(k0)

    def stage(i, ks):
        return ks.at[i].set(h * f(t0 + c[i] * h, y0 + jnp.tensordot(a[i], ks, axes=1)))

    ks = jax.lax.fori_loop(1, n, stage, ks)
    if tableau.ssal:
        y1 = y0 + jnp.tensordot(a[n - 1], ks, axes=1)
    else:
        y1 = y0 + jnp.tensordot(jnp.asarray(tableau.b_sol, k0.dtype), ks, axes=1)
    y_error = jnp.tensordot(jnp.asarray(tableau.b_error, k0.dtype), ks, axes=1)
    return y1, y_error, ks


def _locate(model, interp, y_discrete, t0, t1, onehot, frac, iterations):
    """Root of the selected event function on the dense output, bracketed by (t0, t1].

    A safeguarded Newton iteration (a Newton step that leaves the shrinking bracket is replaced
    by bisection) of ``iterations`` steps, then one implicit-function step for the derivative.
    ``optimistix.root_find`` with ``optx.Newton(rtol=0, atol=0)``, ``lower``/``upper`` options,
    ``max_steps=iterations`` and ``throw=False`` was measured in its place and not kept: on the
    walker's 15 s ``simulate`` it made the lowered program 6.6 % larger (2927 against 2746
    StableHLO operations; 2953 with ``lineax.Diagonal`` and ``cauchy_termination=False``) and
    its trace and compile about 15 % slower, and ``jax.jacfwd`` of a 3 s record 12 to 50 % slower
    (a shared machine, two alternating runs each). Its bounds only clip the iterate to the
    initial bracket, whereas this loop shrinks the bracket and bisects.
    """

    def h(tau, interp, model, y_discrete):
        y = jnp.concatenate([interp.evaluate(tau), y_discrete])
        return jnp.dot(onehot, model.event_functions(tau, y)[0])

    # The Newton iterations are cut from differentiation, every input included: a derivative
    # leaking in would differentiate (and under jacfwd, batch) every iteration.
    sg = jax.lax.stop_gradient
    interp_c, model_c, yd_c, lo, hi = sg(interp), sg(model), sg(y_discrete), sg(t0), sg(t1)
    tau = lo + jnp.clip(sg(frac), 0.0, 1.0) * (hi - lo)

    def newton(_, carry):
        tau, lo, hi = carry
        val, der = jax.jvp(lambda s: h(s, interp_c, model_c, yd_c), (tau,), (jnp.ones_like(tau),))
        lo = jnp.where(val < 0, tau, lo)
        hi = jnp.where(val >= 0, tau, hi)
        step = tau - val / jnp.where(der == 0, 1.0, der)
        # Inclusive: a converged iterate (a correction below one ulp) stays where it is. A
        # non-finite derivative would make a zero correction: bisect instead.
        inside = (step >= lo) & (step <= hi) & jnp.isfinite(step) & jnp.isfinite(der)
        return jnp.where(inside, step, 0.5 * (lo + hi)), lo, hi

    tau, _, _ = jax.lax.fori_loop(0, iterations, newton, (tau, lo, hi))
    # One implicit-function step carries the derivatives: d tau = -(dh/dtheta) / h'(tau). (The
    # polish after the redone step needs it: its own correction is exact only at the true root.)
    # One forward-mode pass gives both (the derivative's own derivatives are stopped below).
    val, der = jax.jvp(lambda s: h(s, interp, model, y_discrete), (tau,), (jnp.ones_like(tau),))
    safe = jnp.where(jnp.abs(der) > 0, der, 1.0)
    return tau - jnp.where(jnp.abs(der) > 0, val / sg(safe), 0.0)


class _State(eqx.Module):
    """The state the integrator's loop carries for one record (batch axes added by ``vmap``).

    **Fields:**

    - ``t``, ``y``: the time and state reached.
    - ``t_phase``: the time of the last switch (the start of the current phase).
    - ``status``: ``_RUNNING`` (-1) while the record goes on, then its final status code.
    - ``pending``: whether the last iteration located an event in its step (instead of taking
      it); the next iteration then redoes the step to ``t_pending``, the located event time,
      and applies event ``event`` there.
    - ``t_pending``: the located event time (meaningful while ``pending``).
    - ``event``: the index of the located event (meaningful while ``pending``).
    - ``num_events``: the switches taken; ``num_steps``: the iterations taken.
    - ``max_error``: the largest embedded error estimate of an accepted step.
    """

    t: Float[Array, ""]
    y: Float[Array, " state"]
    t_phase: Float[Array, ""]
    status: Int[Array, ""]
    pending: Bool[Array, ""]
    t_pending: Float[Array, ""]
    event: Int[Array, ""]
    num_events: Int[Array, ""]
    num_steps: Int[Array, ""]
    max_error: Float[Array, ""]


@dataclasses.dataclass(frozen=True)
class _Engine:
    """What every iteration reads: the model, the solver's tableau and the fixed settings (built
    once per trace by :func:`_engine`; not a pytree, it never crosses a ``jit`` boundary)."""

    model: AbstractSwitchingModel
    tableau: dfx.ButcherTableau
    fsal_last: bool  # the tableau's last stage is f(t1, y1) (Dopri8, Tsit5, ...)
    step_dt: Array  # the fixed step, in the run's dtype
    dtype: jnp.dtype
    root_iterations: int
    limit: Int[Array, ""] | int  # the most iterations
    actions: Array  # the events' actions (SWITCH or a status code)
    unrolled: bool = False  # the Runge-Kutta stages unrolled (_rk_step) rather than looped

    @property
    def n_events(self) -> int:
        return len(self.model.event_actions)

    @property
    def nc(self) -> int:
        return self.model.continuous_size

    def f(self, t, yc, y_discrete):
        """The vector field of the continuous part, the discrete part held fixed."""
        return self.model.vector_field(t, jnp.concatenate([yc, y_discrete]))[: self.nc]


def _engine(model, solver, dt, root_iterations, dtype, limit, unrolled=False) -> _Engine:
    tableau = solver.tableau
    return _Engine(
        model=model,
        tableau=tableau,
        fsal_last=bool(tableau.fsal and tableau.ssal and float(tableau.c[-1]) == 1.0),
        step_dt=jnp.asarray(dt, dtype),
        dtype=dtype,
        root_iterations=root_iterations,
        limit=limit,
        actions=jnp.asarray(model.event_actions),
        unrolled=unrolled,
    )


def _initial_state(eng: _Engine, t_start, y0) -> _State:
    """The loop state at ``(t_start, y0)``: a record that starts past a failure threshold (or
    non-finite) fails at once."""
    h_init, enabled_init = eng.model.event_functions(t_start, y0)
    failed_init = enabled_init & (eng.actions > STATUS_OK) & (h_init >= 0)
    status0 = jnp.where(
        jnp.any(failed_init),
        eng.actions[jnp.argmax(failed_init)],
        jnp.where(jnp.all(jnp.isfinite(y0)), _RUNNING, STATUS_NONFINITE),
    )
    return _State(
        t=t_start,
        y=y0,
        t_phase=t_start,
        status=status0.astype(jnp.int32),
        pending=jnp.asarray(False),
        t_pending=t_start,
        event=jnp.asarray(0, jnp.int32),
        num_events=jnp.asarray(0, jnp.int32),
        num_steps=jnp.asarray(0, jnp.int32),
        max_error=jnp.zeros((), eng.dtype),
    )


def _step(eng: _Engine, s: _State, yd, t_save):
    """The iteration's Runge-Kutta step: to the pending event time, else one fixed step shortened
    to end at ``t_save`` (``yd``: the discrete part of ``s.y``, held fixed). Returns
    ``(t_next, y1c, y_error, ks)`` (``y1c`` the continuous part)."""
    t_next = jnp.where(s.pending, s.t_pending, jnp.minimum(s.t + eng.step_dt, t_save))
    rk = _rk_step if eng.unrolled else _rk_step_looped
    y1c, y_err, ks = rk(eng.tableau, lambda t, yc: eng.f(t, yc, yd), s.t, t_next, s.y[: eng.nc])
    return t_next, y1c, y_err, ks


class _Attempt(eqx.Module):
    """An iteration's step and the events crossed in it, before any event is located (batch axes
    added by ``vmap``): ``yd`` the discrete part of the state, held fixed; the step to ``t_next``
    (``y1c`` its continuous part, ``y1`` the whole state, ``y_err`` the embedded error estimate,
    ``ks`` the scaled stages); ``found`` whether an armed event was crossed (never in a step that
    ends at a pending event), ``first`` the earliest one, ``frac`` its linear-interpolation guess
    (as a fraction of the step)."""

    yd: Array
    t_next: Array
    y1c: Array
    y1: Array
    y_err: Array
    ks: Array
    found: Array
    first: Array
    frac: Array


def _attempt(eng: _Engine, s: _State, t_save) -> _Attempt:
    """The iteration's step (:func:`_step`) and the earliest armed event crossed in it, ranked by
    linear interpolation of ``h`` over the step."""
    yd = s.y[eng.nc :]
    t_next, y1c, y_err, ks = _step(eng, s, yd, t_save)
    y1 = jnp.concatenate([y1c, yd])
    h0, _ = eng.model.event_functions(s.t, s.y)
    h1, enabled = eng.model.event_functions(t_next, y1)
    crossed = enabled & (h0 < 0) & (h1 >= 0) & ~s.pending
    inf = jnp.asarray(jnp.inf, eng.dtype)
    frac = jnp.where(crossed, h0 / (h0 - jnp.where(crossed, h1, h0 - 1)), inf)
    first = jnp.argmin(frac).astype(jnp.int32)
    return _Attempt(yd, t_next, y1c, y1, y_err, ks, jnp.any(crossed), first, frac[first])


def _location(eng: _Engine, solver, s: _State, a: _Attempt):
    """The time of the attempt's crossed event, located on the step's dense output (``t_next``
    when none was crossed)."""
    onehot = (jnp.arange(eng.n_events) == a.first).astype(eng.dtype)
    interp = solver.interpolation_cls(t0=s.t, t1=a.t_next, y0=s.y[: eng.nc], y1=a.y1c, k=a.ks)
    tau = _locate(eng.model, interp, a.yd, s.t, a.t_next, onehot, a.frac, eng.root_iterations)
    return jnp.where(a.found, jnp.clip(tau, s.t, a.t_next), a.t_next)


def _polish(eng: _Engine, s: _State, a: _Attempt):
    """For a step that ended at a located event: one Newton step on the true Runge-Kutta state
    (the dense output only approximates it, and near-grazing crossings magnify that error),
    moving the state along ``f`` to first order. Returns the polished ``(t, y)``."""
    yd, t_next, y1c, ks = a.yd, a.t_next, a.y1c, a.ks
    h_step = t_next - s.t
    if eng.fsal_last:
        f_end = ks[-1] / jnp.where(h_step > 0, h_step, 1.0)
    else:
        f_end = eng.f(t_next, y1c, yd)
    ev_onehot = (jnp.arange(eng.n_events) == s.event).astype(eng.dtype)

    def h_event(tt, yc):
        return jnp.dot(ev_onehot, eng.model.event_functions(tt, jnp.concatenate([yc, yd]))[0])

    h_val, h_dot = jax.jvp(h_event, (t_next, y1c), (jnp.ones_like(t_next), f_end))
    ok = s.pending & (jnp.abs(h_dot) > 0) & (h_step > 0)
    delta = jnp.where(ok, -h_val / jnp.where(ok, h_dot, 1.0), 0.0)
    delta = jnp.clip(delta, -0.5 * h_step, 0.5 * eng.step_dt)
    return t_next + delta, jnp.concatenate([y1c + delta * f_end, yd])


def _apply(eng: _Engine, s: _State, t, y):
    """Apply the pending event's action at ``(t, y)``. Returns ``(y_new, switched, status)``:
    the state after a switch, whether one was taken, and the status (``_RUNNING``, or the action's
    code for a stopping or failing event)."""
    action = eng.actions[s.event]
    switched = s.pending & (action == SWITCH)
    y_new = jnp.where(switched, eng.model.apply_event(s.event, t, y), y)
    status = jnp.where(s.pending & (action != SWITCH), action, _RUNNING)
    return y_new, switched, status


def _update_status(eng: _Engine, s: _State, status, t_new, t_phase, finite):
    """The failures every model shares: phase time-out, non-finite state, iteration limit."""
    max_phase = eng.model.max_phase_time
    if max_phase is not None:
        status = jnp.where((status == _RUNNING) & (t_new - t_phase > max_phase), STATUS_TIMEOUT, status)
    status = jnp.where(finite, status, STATUS_NONFINITE)
    status = jnp.where((status == _RUNNING) & (s.num_steps + 1 >= eng.limit), STATUS_ITERATION_LIMIT, status)
    return status.astype(jnp.int32)


def _finish(eng: _Engine, s: _State, a: _Attempt, tau, polished) -> _State:
    """The iteration's new state from its attempt, the located event time ``tau``
    (:func:`_location`) and the polished event state (:func:`_polish`; used only where ``s``
    was pending)."""
    # Accept the step unless an event was found in it (then redo it to tau next iteration).
    accept = ~a.found
    t_new = jnp.where(accept, a.t_next, s.t)
    y_acc = jnp.where(accept, a.y1, s.y)
    error = jnp.where(accept, jnp.max(jnp.abs(jax.lax.stop_gradient(a.y_err))), 0.0)

    # A step that ended at an event location: the polished event time, then the action.
    t_event, y_event = polished
    t_new = jnp.where(s.pending, t_event, t_new)
    y_acc = jnp.where(s.pending, y_event, y_acc)
    y_new, switched, status = _apply(eng, s, t_new, y_acc)
    t_phase = jnp.where(switched, t_new, s.t_phase)
    status = _update_status(eng, s, status, t_new, t_phase, jnp.all(jnp.isfinite(a.y1)))
    return _State(
        t=t_new,
        y=y_new,
        t_phase=t_phase,
        status=status,
        pending=a.found,
        t_pending=tau,
        event=jnp.where(a.found, a.first, s.event),
        num_events=s.num_events + switched.astype(jnp.int32),
        num_steps=s.num_steps + 1,
        max_error=jnp.maximum(s.max_error, error),
    )


def _body(eng: _Engine, solver, s: _State, t_save) -> _State:
    """One iteration: one fixed step (shortened to end at ``t_save``), one event location, or the
    redone step that ends at an event and applies it (see the module docstring)."""
    a = _attempt(eng, s, t_save)
    return _finish(eng, s, a, _location(eng, solver, s, a), _polish(eng, s, a))


def _stepper(model, solver, dt, root_iterations, dtype, t_start, y0, limit, unrolled=False):
    """The integrator's loop state at ``(t_start, y0)`` (a :class:`_State`) and its iteration
    ``body(state, t_save)`` (:func:`_body`). ``limit`` bounds the iterations."""
    eng = _engine(model, solver, dt, root_iterations, dtype, limit, unrolled)
    return _initial_state(eng, t_start, y0), lambda s, t_save: _body(eng, solver, s, t_save)


@dataclasses.dataclass(frozen=True)
class _Inputs:
    """The checked inputs of :func:`simulate_switching` (see :func:`_check_inputs`)."""

    y0: Array  # in dtype
    ts: Array  # in dtype
    t_start: Array
    dtype: jnp.dtype
    solver: dfx.AbstractERK
    dt: float
    kind: str  # eqxi.while_loop's kind: "lax" or "checkpointed"
    interval_steps: int | None  # the checkpointed loop's static bound per save interval
    messages: tuple[str, ...]  # the model's status messages, by code


def _check_inputs(model, y0, ts, t0, *, solver, dt, max_steps, adjoint, root_iterations) -> _Inputs:
    """Check the arguments of :func:`simulate_switching` before any work, raising an error that names
    the argument and the fix; fill in the defaults and cast ``y0``, ``ts`` and ``t0`` to one dtype."""
    where = "simulate"
    messages = _messages(model)
    solver = dfx.Dopri8() if solver is None else solver
    if not isinstance(solver, dfx.AbstractERK):
        raise TypeError(
            f"{where}: solver for a switching model must be an explicit diffrax Runge-Kutta solver "
            f"(e.g. diffrax.Dopri8(), diffrax.Tsit5()), got {type(solver).__name__}"
        )
    dt = model.default_dt if dt is None else dt
    if isinstance(dt, bool) or not (isinstance(dt, (int, float)) and 0 < dt < math.inf):
        raise ValueError(f"{where}: dt0 must be a positive number of seconds, got {dt!r}")
    if adjoint is None or isinstance(adjoint, dfx.ForwardMode):
        kind = "lax"
    elif isinstance(adjoint, dfx.RecursiveCheckpointAdjoint):
        kind = "checkpointed"
    else:
        raise ValueError(
            f"{where}: adjoint for a switching model must be None, diffrax.ForwardMode() or "
            f"diffrax.RecursiveCheckpointAdjoint(), got {type(adjoint).__name__}"
        )
    if not (isinstance(root_iterations, int) and root_iterations >= 1):
        raise ValueError(f"{where}: root_iterations must be a positive int, got {root_iterations!r}")

    ts_in = ts
    dtype = jnp.result_type(y0.dtype, ts.dtype)
    y0 = y0.astype(dtype)
    ts = ts.astype(dtype)
    t_start = ts[0] if t0 is None else jnp.asarray(t0, dtype=dtype)
    if max_steps is not None and not (isinstance(max_steps, int) and max_steps >= 1):
        raise ValueError(f"{where}: max_steps must be a positive int, got {max_steps!r}")
    if max_steps is None and not isinstance(ts, jax.core.Tracer) and not isinstance(t_start, jax.core.Tracer):
        needed = 2 * math.ceil(float(ts[-1] - t_start) / dt) + 2 * ts.shape[0] + 256
        if needed > MAX_DEFAULT_STEPS:
            raise ValueError(
                f"{where}: dt0={dt!r} needs about {needed:.3g} steps over "
                f"[{float(t_start)}, {float(ts[-1])}] "
                f"(more than {MAX_DEFAULT_STEPS:.0e}); use a larger dt0 (default model.default_dt = "
                f"{model.default_dt}) or pass max_steps explicitly"
            )
    interval_steps = None
    if kind == "checkpointed":
        # The checkpointed loop needs a static bound on the steps between two save times.
        try:
            points = (
                np.asarray(ts_in, float)
                if t0 is None
                else np.concatenate([[float(t0)], np.asarray(ts_in, float)])
            )
        except (jax.errors.ConcretizationTypeError, TypeError):
            raise ValueError(
                f"{where}: a checkpointed switching solve needs concrete (not traced) ts and t0"
            ) from None
        interval_steps = math.ceil(np.diff(points, prepend=points[0]).max() / dt) + 64
    return _Inputs(y0, ts, t_start, dtype, solver, dt, kind, interval_steps, messages)


def simulate_switching(
    model: AbstractSwitchingModel,
    y0: Float[Array, " state"],
    ts: Float[Array, " time"],
    *,
    t0: RealScalar | None = None,
    solver: dfx.AbstractSolver | None = None,
    dt0: float | None = None,
    max_steps: int | None = None,
    adjoint: dfx.AbstractAdjoint | None = None,
    root_iterations: int = 6,
    throw: bool = False,
) -> SwitchingSimulation:
    """Integrate a switching model across its events; called by :func:`jaxid.simulate`.

    Options (keyword-only): ``solver`` (any explicit diffrax Runge-Kutta solver with dense output;
    default :class:`diffrax.Dopri8`), ``dt0`` (the fixed internal step; default
    ``model.default_dt``), ``max_steps`` (the most iterations, one step or one event location each;
    default ``2 (T - t0)/dt0 + 2 len(ts) + 256``), ``adjoint`` (``None`` or
    :class:`diffrax.ForwardMode`: a ``lax.while_loop``, differentiable by ``jax.jacfwd``/``jax.jvp``;
    :class:`diffrax.RecursiveCheckpointAdjoint`: a checkpointed loop for ``jax.grad``),
    ``root_iterations`` (safeguarded Newton iterations per event), ``throw`` (raise the failed
    record's status message).
    """
    inp = _check_inputs(
        model,
        y0,
        ts,
        t0,
        solver=solver,
        dt=dt0,
        max_steps=max_steps,
        adjoint=adjoint,
        root_iterations=root_iterations,
    )
    ts, t_start = inp.ts, inp.t_start
    # in floating point, then clipped: a tiny dt would overflow int32 and stop at once
    limit = 2 * jnp.ceil((ts[-1] - t_start) / inp.dt) + 2 * ts.shape[0] + 256
    limit = jnp.minimum(limit, np.iinfo(np.int32).max - 1).astype(jnp.int32)
    limit = limit if max_steps is None else max_steps
    state0, body = _stepper(model, inp.solver, inp.dt, root_iterations, inp.dtype, t_start, inp.y0, limit)

    def advance(s: _State, t_save):
        """Integrate (across events) until the save time ``t_save``; output the state there."""
        s = eqxi.while_loop(
            lambda s: (s.status == _RUNNING) & (s.t < t_save),
            lambda s: body(s, t_save),
            s,
            max_steps=inp.interval_steps,
            kind=inp.kind,
        )
        return s, jnp.where(s.status == _RUNNING, s.y, jnp.nan)

    # Scanning over the save times keeps the saved trajectory out of the loop carry (under vmap a
    # while loop copies its whole carry at every iteration).
    final, ys = jax.lax.scan(advance, state0, ts)
    status = jnp.where(final.status == _RUNNING, STATUS_OK, final.status)
    success = status == STATUS_OK
    obs = jax.vmap(model.observe)(ts, ys)
    if throw:
        # The message of the record's status (of the largest code in a vmapped batch).
        suffix = " (read .status, or call with throw=False to inspect)"
        messages = [f"simulate: the switching simulation failed: {m}{suffix}" for m in inp.messages]
        obs = eqx.branched_error_if(obs, ~success, status, messages)
    return SwitchingSimulation(
        ts=ts,
        ys=ys,
        obs=obs,
        success=success,
        num_steps=final.num_steps,
        status=status,
        num_events=final.num_events,
        t_final=final.t,
        y_final=final.y,
        max_error=final.max_error,
    )


class Knots(eqx.Module):
    """The loop states of :func:`integrate_knots` (batch axes added by ``vmap``).

    **Fields:** ``ts`` and ``ys``, the time and state after each iteration (``ts[0]``, ``ys[0]``:
    the start; an iteration that only located an event repeats its predecessor); ``status`` (0
    when ``t_end`` was reached, else a failure code as in :class:`SwitchingSimulation`);
    ``num_events``; ``t_final``, ``y_final``.
    """

    ts: Float[Array, "*batch knot"]
    ys: Float[Array, "*batch knot state"]
    status: Int[Array, "*batch"]
    num_events: Int[Array, "*batch"]
    t_final: Float[Array, "*batch"]
    y_final: Float[Array, "*batch state"]


def _knots_inputs(where, model, y0, t_end, t0, solver, dt0, iterations):
    """The checked inputs of :func:`integrate_knots` and :func:`integrate_knots_batch`:
    ``(solver, dt, dtype, y0, t_end, t_start)``, the arrays cast to one dtype."""
    solver = dfx.Dopri8() if solver is None else solver
    if not isinstance(solver, dfx.AbstractERK):
        raise TypeError(f"{where}: solver must be an explicit diffrax Runge-Kutta solver, got {solver!r}")
    dt = model.default_dt if dt0 is None else dt0
    if not (isinstance(iterations, int) and iterations >= 1):
        raise ValueError(f"{where}: iterations must be a positive int, got {iterations!r}")
    dtype = jnp.result_type(y0.dtype, jnp.asarray(t_end).dtype)
    return solver, dt, dtype, y0.astype(dtype), jnp.asarray(t_end, dtype), jnp.asarray(t0, dtype)


def _knots_result(final: _State, t_end, ts, ys) -> Knots:
    """The :class:`Knots` of a finished loop: its status is the loop's failure code, else
    ``STATUS_OK`` at ``t_end`` and ``STATUS_ITERATION_LIMIT`` short of it."""
    status = jnp.where(
        final.status == _RUNNING,
        jnp.where(final.t >= t_end, STATUS_OK, STATUS_ITERATION_LIMIT),
        final.status,
    )
    return Knots(
        ts=ts,
        ys=ys,
        status=status.astype(jnp.int32),
        num_events=final.num_events,
        t_final=final.t,
        y_final=final.y,
    )


def integrate_knots(
    model: AbstractSwitchingModel,
    y0: Float[Array, " state"],
    t_end: RealScalar,
    iterations: int,
    *,
    t0: RealScalar = 0.0,
    solver: dfx.AbstractSolver | None = None,
    dt0: float | None = None,
    root_iterations: int = 6,
) -> Knots:
    """Integrate a switching model from ``(t0, y0)`` to ``t_end`` in exactly ``iterations`` loop
    iterations (a ``lax.scan``; iterations after ``t_end`` or a failure change nothing), keeping
    the state after every iteration.

    The steps and events are those of :func:`simulate_switching` with no save times before
    ``t_end``: fixed steps of ``dt0`` (the last one shortened to end at ``t_end``), events located
    and applied. :func:`states_at` then gives the state at any time in ``[t0, t_end]`` by one
    Runge-Kutta step from the last knot before it, so a batch needs no lock-step iteration per
    save time. ``status`` is ``STATUS_ITERATION_LIMIT`` when ``iterations`` did not reach ``t_end``.
    The stages are unrolled (:func:`_rk_step`: faster per step, a larger program to compile; the
    same step as :func:`simulate_switching`'s up to rounding).
    """
    solver, dt, dtype, y0, t_end, t_start = _knots_inputs(
        "integrate_knots", model, y0, t_end, t0, solver, dt0, iterations
    )
    state0, body = _stepper(
        model, solver, dt, root_iterations, dtype, t_start, y0, iterations + 2, unrolled=True
    )

    def one(s: _State, _):
        go = (s.status == _RUNNING) & (s.t < t_end)
        new = body(s, t_end)
        s = jax.tree.map(lambda a, b: jnp.where(go, a, b), new, s)
        return s, (s.t, s.y)

    final, (ts, ys) = jax.lax.scan(one, state0, None, length=iterations)
    return _knots_result(final, t_end, jnp.concatenate([t_start[None], ts]), jnp.concatenate([y0[None], ys]))


LOCATE_LANES = 64
"""Records whose event :func:`integrate_knots_batch` locates together (gathered from the batch);
read when a call is traced, so a change reaches programs compiled after it."""


def integrate_knots_batch(
    model: AbstractSwitchingModel,
    y0: Float[Array, "batch state"],
    t_end: Float[Array, " batch"],
    iterations: int,
    *,
    t0: RealScalar = 0.0,
    solver: dfx.AbstractSolver | None = None,
    dt0: float | None = None,
    root_iterations: int = 6,
) -> Knots:
    """``jax.vmap(integrate_knots)`` over a batch (``model``'s parameters, ``y0`` and ``t_end``
    with a leading batch axis), with the loop stopped as soon as every record of the batch has
    reached its ``t_end`` or failed: at most ``iterations`` iterations, as many as the batch's
    slowest record needs. The knots after a record's last iteration repeat its final state, as in
    :func:`integrate_knots`, and each record's numbers are the same.

    The batch's records run in lock step (a ``lax.while_loop`` whose body is the vmapped
    iteration), so records of similar length batched together waste the fewest iterations. The
    event location (``root_iterations`` Newton iterations on the dense output) and the polish
    run only in the iterations where some record crossed an event or has one pending (a
    ``lax.cond`` on the batch; lanes cannot skip work under ``vmap``): a batch of walker records
    sorted by period locates events in about 5 of its 18 iterations. The location runs on the
    records that need it only, :data:`LOCATE_LANES` at a time (gathered from the batch, their
    event times scattered back): on 256 walker records (one period at 25 ms, one core, 3 Newton
    iterations), 1.45 ms against 1.55 ms for the whole batch (32 lanes: 1.50, 128: 1.52), and
    4.1 ms with the stages looped and the location in every iteration. The stages are unrolled
    (:func:`_rk_step`), as in :func:`integrate_knots`.

    Differentiable in forward mode only (a ``while_loop``). Under an outer ``vmap`` the loop runs
    until every batch is done, and the predicate is batched: the ``lax.cond`` becomes a select and
    the location and the polish run in every iteration (run the batches with ``shard_map`` or one
    after another instead, as :func:`jaxid.generate_gait_dataset` does).
    """
    if y0.ndim != 2 or jnp.ndim(t_end) != 1 or y0.shape[0] != jnp.shape(t_end)[0]:
        raise ValueError(
            "integrate_knots_batch: y0 must be (batch, state) and t_end (batch,), got "
            f"{y0.shape} and {jnp.shape(t_end)}"
        )
    solver, dt, dtype, y0, t_end, t_start = _knots_inputs(
        "integrate_knots_batch", model, y0, t_end, t0, solver, dt0, iterations
    )
    n = y0.shape[0]
    limit = iterations + 2

    def eng(m):
        return _engine(m, solver, dt, root_iterations, dtype, limit, unrolled=True)

    def init(m, y):
        return _initial_state(eng(m), t_start, y)

    def cond(carry):
        i, s, _, _ = carry
        return (i < iterations) & jnp.any((s.status == _RUNNING) & (s.t < t_end))

    lanes = max(1, min(n, LOCATE_LANES))

    def _locate_lanes(model, s, a, need):
        """The event times of the records that need one, ``lanes`` at a time (gathered, located,
        scattered back); the others keep ``a.t_next``."""

        def body(carry):
            tau, left = carry
            idx = jnp.nonzero(left, size=lanes, fill_value=n)[0]
            valid = idx < n
            sub = jax.tree.map(lambda x: x[jnp.where(valid, idx, 0)], (model, s, a))
            found = jax.vmap(lambda m, s, a: _location(eng(m), solver, s, a))(*sub)
            tau = tau.at[idx].set(found, mode="drop")
            return tau, left.at[idx].set(False, mode="drop")

        return jax.lax.while_loop(lambda c: jnp.any(c[1]), body, (a.t_next, need))[0]

    def body(carry):
        i, s, ts, ys = carry
        go = (s.status == _RUNNING) & (s.t < t_end)
        a = jax.vmap(lambda m, s, te: _attempt(eng(m), s, te))(model, s, t_end)
        # The event location (on the records that need it) and the polish (on the whole batch)
        # run only in the iterations where some record needs them: lanes cannot skip work under
        # vmap.
        need = a.found & go
        tau = jax.lax.cond(jnp.any(need), lambda: _locate_lanes(model, s, a, need), lambda: a.t_next)
        polished = jax.lax.cond(
            jnp.any(s.pending & go),
            lambda: jax.vmap(lambda m, s, a: _polish(eng(m), s, a))(model, s, a),
            lambda: (a.t_next, a.y1),
        )
        new = jax.vmap(lambda m, s, a, tau, p: _finish(eng(m), s, a, tau, p))(model, s, a, tau, polished)
        s = jax.tree.map(lambda x, y: jnp.where(go.reshape(go.shape + (1,) * (x.ndim - 1)), x, y), new, s)
        return i + 1, s, ts.at[i].set(s.t), ys.at[i].set(s.y)

    carry = (
        jnp.asarray(0),
        jax.vmap(init)(model, y0),
        jnp.zeros((iterations, n), dtype),
        jnp.zeros((iterations, *y0.shape), dtype),
    )
    done, final, ts, ys = jax.lax.while_loop(cond, body, carry)
    filled = (jnp.arange(iterations) < done)[:, None]
    ts = jnp.where(filled, ts, final.t[None])
    ys = jnp.where(filled[..., None], ys, final.y[None])
    return _knots_result(
        final,
        t_end,
        jnp.concatenate([jnp.broadcast_to(t_start, (n, 1)), ts.T], axis=1),
        jnp.concatenate([y0[:, None], jnp.swapaxes(ys, 0, 1)], axis=1),
    )


def states_at(
    model: AbstractSwitchingModel,
    knots: Knots,
    ts: Float[Array, " time"],
    *,
    solver: dfx.AbstractSolver | None = None,
) -> Float[Array, "time state"]:
    """The states at times ``ts`` (within the knots' span) of an :func:`integrate_knots` run: from
    the last knot at or before each time, one step of ``solver`` (the run's) to that time.

    Every step lies inside one of the run's own steps, so no event falls within it, and the result
    is a true Runge-Kutta state of the same order as the run's, not an interpolation.
    """
    solver = dfx.Dopri8() if solver is None else solver
    nc = model.continuous_size
    idx = jnp.clip(jnp.searchsorted(knots.ts, ts, side="right") - 1, 0, knots.ts.shape[0] - 1)

    def one(t, i):
        t_k, y_k = knots.ts[i], knots.ys[i]
        yd = y_k[nc:]

        def f(tt, yc):
            return model.vector_field(tt, jnp.concatenate([yc, yd]))[:nc]

        y1c, _, _ = _rk_step(solver.tableau, f, t_k, t, y_k[:nc])
        return jnp.concatenate([y1c, yd])

    return jax.vmap(one)(ts, idx)


HybridSimulation = SwitchingSimulation
"""The former name of :class:`SwitchingSimulation` (kept for existing code and pickles)."""
simulate_hybrid = simulate_switching
"""The former name of :func:`simulate_switching`."""
