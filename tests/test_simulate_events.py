"""The event-switching engine (jaxid.simulate.events) on switching models with closed-form answers:
status codes and their messages, event times and post-event states, derivatives of event times."""

from typing import ClassVar

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxid
from jaxid import Walker
from jaxid.models.base import (
    BASE_STATUS_NAMES,
    STATUS_ITERATION_LIMIT,
    STATUS_NONFINITE,
    STATUS_OK,
    STATUS_TIMEOUT,
    SWITCH,
    AbstractSwitchingModel,
    Status,
    param_field,
    status_code,
)
from jaxid.simulate.events import _State, _stepper
from jaxid.walker.model import FALL, FLIGHT, FRONT_LIFTOFF, STALL, STATUS_NAMES, WalkerStatus

# ------------------------------------------------------------------ status codes


def test_base_status_codes_keep_their_int_values_and_have_messages():
    # The int codes are stored in data sets: they must not move.
    assert (STATUS_OK, STATUS_ITERATION_LIMIT, STATUS_TIMEOUT, STATUS_NONFINITE) == (0, 1, 2, 3)
    items = (Status.ok, Status.iteration_limit, Status.phase_timeout, Status.nonfinite_state)
    assert [status_code(i) for i in items] == [0, 1, 2, 3]
    assert len(Status) == len(BASE_STATUS_NAMES) == 4
    assert "max_steps" in Status[Status.iteration_limit]
    assert "max_phase_time" in Status[Status.phase_timeout]
    assert "NaN" in Status[Status.nonfinite_state]


def test_walker_status_extends_the_base_codes():
    # The subclass keeps the base codes and numbers its own after them, in STATUS_NAMES's order.
    assert (FALL, STALL, FLIGHT, FRONT_LIFTOFF) == (4, 5, 6, 7)
    assert len(WalkerStatus) == len(STATUS_NAMES) == len(Walker.status_names)
    assert status_code(WalkerStatus.ok) == STATUS_OK
    assert status_code(WalkerStatus.promote(Status.phase_timeout)) == STATUS_TIMEOUT
    for code, name in enumerate(STATUS_NAMES[len(BASE_STATUS_NAMES) :], start=len(BASE_STATUS_NAMES)):
        assert Walker.status_message(code).startswith(name + ":"), (code, name)
    assert Walker.status_message(STATUS_NONFINITE) == Status[Status.nonfinite_state]
    with pytest.raises(ValueError, match="not a status code of WalkerStatus"):
        Walker.status_message(8)
    with pytest.raises(TypeError, match="expected an item of a Status enumeration"):
        status_code(3)


def test_status_item_compares_with_the_members():
    codes = jnp.asarray([STATUS_OK, FALL, STALL])
    items = Walker.status_item(codes)
    np.testing.assert_array_equal(items == WalkerStatus.fall, [False, True, False])
    np.testing.assert_array_equal(jax.jit(Walker.status_item)(codes) == WalkerStatus.ok, [True, False, False])


def test_throw_raises_the_failure_message():
    w = Walker(m=80.0, k=2000.0, l0=1.0)  # the legs cannot carry the weight: a fall
    y0, ts = w.initial_state(0.9782, 1.09), jnp.linspace(0.0, 3.0, 4)
    sim = jaxid.simulate(w, y0, ts)
    assert int(sim.status) == FALL
    with pytest.raises(Exception, match="fall: the centre of mass dropped"):
        jaxid.simulate(w, y0, ts, throw=True)


def test_inconsistent_status_tables_are_refused():
    class Bad(Walker):
        status_names = (*STATUS_NAMES, "extra")

    w = Bad(m=80.0, k=20000.0, l0=1.0)
    with pytest.raises(ValueError, match=r"status_names has 9 names but Bad\.status_enum"):
        jaxid.simulate(w, w.initial_state(0.9782, 1.09), jnp.linspace(0.0, 1.0, 3))


# ------------------------------------------------------------------ a bouncing ball


class BallStatus(Status):
    ceiling = "ceiling: the ball rose above the ceiling."


class Ball(AbstractSwitchingModel):
    """A ball under gravity ``g`` bouncing on the floor ``x = 0`` with restitution ``e``: state
    ``(x, v, bounces)``, the bounce count a discrete component. Touching the ceiling ``x = H`` is a
    failure of the model's own (:class:`BallStatus`); ``stop_at_floor`` makes the first floor
    contact end the record instead (its time is then ``t_final``)."""

    g: jax.Array = eqx.field(converter=param_field)
    e: jax.Array = eqx.field(converter=param_field)
    ceiling: float = eqx.field(static=True, default=10.0)
    stop_at_floor: bool = eqx.field(static=True, default=False)

    param_names: ClassVar = ("g", "e")
    param_units: ClassVar = ("m/s^2", "1")
    default_priors: ClassVar = {"g": (9.0, 10.0), "e": (0.5, 0.9)}
    event_names: ClassVar = ("floor", "ceiling")
    status_names: ClassVar = (*BASE_STATUS_NAMES, "ceiling")
    status_enum: ClassVar = BallStatus

    @property
    def event_actions(self):
        return (STATUS_OK if self.stop_at_floor else SWITCH, status_code(BallStatus.ceiling))

    @property
    def state_names(self):
        return ("x", "v", "bounces")

    @property
    def obs_names(self):
        return ("x",)

    @property
    def continuous_size(self):
        return 2

    @property
    def default_dt(self):
        return 0.05

    def vector_field(self, t, y):
        return jnp.stack([y[1], -self.g, jnp.zeros_like(y[1])])

    def observe(self, t, y):
        return y[:1]

    def event_functions(self, t, y):
        return jnp.stack([-y[0], y[0] - self.ceiling]), jnp.stack([y[1] < 0, jnp.asarray(True)])

    def apply_event(self, index, t, y):
        return jnp.stack([y[0], -self.e * y[1], y[2] + 1])


def first_contact(x0, v0, g):
    """The closed form: the first time ``x0 + v0 t - g t^2 / 2`` reaches 0, and the velocity then."""
    t_star = (v0 + jnp.sqrt(v0**2 + 2 * g * x0)) / g
    return t_star, v0 - g * t_star


def after_bounce(x0, v0, g, e, t):
    """The closed form of ``(x, v)`` at ``t`` between the first and the second bounce."""
    t_star, v_minus = first_contact(x0, v0, g)
    s = t - t_star
    return jnp.stack([-e * v_minus * s - 0.5 * g * s**2, -e * v_minus - g * s])


X0, V0, G, E = 1.3, 0.7, 9.81, 0.8
TS_BALL = jnp.linspace(0.0, 1.0, 11)  # one bounce (t* = 0.6 s), the second at about 1.5 s


@pytest.fixture(scope="module")
def ball_sim():
    return jax.jit(lambda ball, y0: jaxid.simulate(ball, y0, TS_BALL))


def test_bounce_time_and_state_match_the_closed_form(ball_sim):
    ball = Ball(g=G, e=E)
    sim = ball_sim(ball, jnp.asarray([X0, V0, 0.0]))
    assert int(sim.status) == STATUS_OK and int(sim.num_events) == 1
    t_star, _ = first_contact(X0, V0, G)
    assert 0.5 < float(t_star) < 0.7
    # Dopri8 is exact on a quadratic, so what remains is rounding (measured ~1e-15): 1e-10 fails
    # for an event time taken from a step or a linear interpolation (errors ~1e-3).
    ts = np.asarray(TS_BALL)
    before = ts < float(t_star)
    x_before = X0 + V0 * ts[before] - 0.5 * G * ts[before] ** 2
    np.testing.assert_allclose(sim.ys[before, 0], x_before, rtol=0, atol=1e-10)
    expected = jax.vmap(lambda t: after_bounce(X0, V0, G, E, t))(TS_BALL[~before])
    np.testing.assert_allclose(sim.ys[~before, :2], expected, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(sim.ys[:, 2], np.where(before, 0.0, 1.0))


def test_stopping_event_ends_at_the_closed_form_time_and_state():
    ball = Ball(g=G, e=E, stop_at_floor=True)
    sim = jaxid.simulate(ball, jnp.asarray([X0, V0, 0.0]), TS_BALL)
    t_star, v_minus = first_contact(X0, V0, G)
    assert int(sim.status) == STATUS_OK and bool(sim.success) and int(sim.num_events) == 0
    assert abs(float(sim.t_final) - float(t_star)) < 1e-10
    np.testing.assert_allclose(sim.y_final[:2], [0.0, float(v_minus)], rtol=0, atol=1e-10)
    assert np.all(np.isnan(np.asarray(sim.ys)[np.asarray(TS_BALL) > float(t_star)]))


def test_event_time_derivatives_match_the_closed_form():
    # The event time is differentiated by the implicit function theorem; compare d t* / d(x0, v0, g)
    # with the derivative of the closed form.
    def t_final(p):
        ball = Ball(g=p[2], e=E, stop_at_floor=True)
        return jaxid.simulate(ball, jnp.stack([p[0], p[1], 0.0]), TS_BALL).t_final

    p = jnp.asarray([X0, V0, G])
    jac = jax.jacfwd(t_final)(p)
    expected = jax.jacfwd(lambda p: first_contact(p[0], p[1], p[2])[0])(p)
    # exact arithmetic but for rounding, amplified by 1/h' ~ 0.2 s^2/m: 1e-9 relative
    np.testing.assert_allclose(jac, expected, rtol=1e-9, atol=0)


def test_post_bounce_state_derivatives_match_the_closed_form(ball_sim):
    def ys(p):
        return ball_sim(Ball(g=p[2], e=p[3]), jnp.stack([p[0], p[1], 0.0])).ys[-1, :2]

    p = jnp.asarray([X0, V0, G, E])
    jac = jax.jacfwd(ys)(p)
    expected = jax.jacfwd(lambda p: after_bounce(p[0], p[1], p[2], p[3], TS_BALL[-1]))(p)
    np.testing.assert_allclose(jac, expected, rtol=1e-9, atol=1e-12)


def test_model_failure_code_and_message():
    ball = Ball(g=G, e=E, ceiling=1.32)  # rises to x0 + v0^2/(2g) = 1.325 m
    sim = jaxid.simulate(ball, jnp.asarray([X0, V0, 0.0]), TS_BALL)
    assert not bool(sim.success) and int(sim.status) == status_code(BallStatus.ceiling)
    assert ball.status_names[int(sim.status)] == "ceiling"
    assert ball.status_message(sim.status) == BallStatus[BallStatus.ceiling]
    # the crossing of x = 1.32 on the way up, in closed form
    t_cross = (V0 - np.sqrt(V0**2 - 2 * G * (1.32 - X0))) / G
    assert abs(float(sim.t_final) - t_cross) < 1e-10
    with pytest.raises(Exception, match="ceiling: the ball rose above the ceiling"):
        jaxid.simulate(ball, jnp.asarray([X0, V0, 0.0]), TS_BALL, throw=True)


def test_iteration_limit_and_nonfinite_status():
    ball = Ball(g=G, e=E)
    sim = jaxid.simulate(ball, jnp.asarray([X0, V0, 0.0]), TS_BALL, max_steps=3)
    assert int(sim.status) == STATUS_ITERATION_LIMIT and int(sim.num_steps) == 3
    assert "max_steps" in ball.status_message(sim.status)
    # a traced start state escapes simulate's host check: the record fails at once
    bad = jax.jit(lambda y0: jaxid.simulate(ball, y0, TS_BALL))(jnp.asarray([X0, jnp.inf, 0.0]))
    assert int(bad.status) == STATUS_NONFINITE and int(bad.num_steps) == 0


def test_the_loop_carries_the_state_module():
    ball = Ball(g=G, e=E)
    y0 = jnp.asarray([X0, V0, 0.0])
    state0, body = _stepper(ball, dfx.Dopri8(), 0.05, 6, y0.dtype, jnp.asarray(0.0), y0, jnp.asarray(100))
    assert isinstance(state0, _State)
    new = body(state0, jnp.asarray(1.0))
    assert isinstance(new, _State)
    # a while loop needs the body to return the carry's exact structure, shapes and dtypes
    assert jax.tree.structure(new) == jax.tree.structure(state0)
    assert [(a.shape, a.dtype) for a in jax.tree.leaves(new)] == [
        (a.shape, a.dtype) for a in jax.tree.leaves(state0)
    ]
    # one fixed step from the start, no event in it
    assert float(new.t) == pytest.approx(0.05) and int(new.num_steps) == 1 and not bool(new.pending)


# ------------------------------------------------------------------ the looped Runge-Kutta step
@pytest.mark.parametrize("solver", [dfx.Dopri8(), dfx.Dopri5(), dfx.Tsit5(), dfx.Bosh3(), dfx.Heun()])
def test_looped_stages_equal_the_unrolled_step(solver):
    """The engine's step (stages in a fori_loop) is the unrolled step up to rounding, for tableaus
    with and without ``ssal`` and of 2 to 13 stages; and it has the solver's order: halving the
    step divides the one-step error against the exact solution by about 2^(order + 1)."""
    from jaxid.simulate.events import _rk_step_looped, rk_step

    def f(t, y):  # y'' = -y from (1, 0): y = (cos t, -sin t)
        return jnp.stack([y[1], -y[0]])

    y0 = jnp.asarray([1.0, 0.0])
    looped = jax.jit(lambda h: _rk_step_looped(solver.tableau, f, 0.0, h, y0))
    errors = []
    for h in (1.0, 0.5):
        y1, err, ks = rk_step(solver.tableau, f, 0.0, h, y0)
        y1_l, err_l, ks_l = looped(h)
        np.testing.assert_allclose(y1_l, y1, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(err_l, err, rtol=1e-12, atol=1e-14)  # a sum that cancels: |k| ~ 1
        np.testing.assert_allclose(ks_l, ks, rtol=1e-14, atol=1e-15)
        errors.append(np.linalg.norm(np.asarray(y1_l) - np.array([np.cos(h), -np.sin(h)])))
    order = solver.order(None)
    # measured: 7.9 (Heun, 8), 15.8 (Bosh3, 16), 77 and 120 (Dopri5, Tsit5, 64), 954 (Dopri8, 512);
    # one order less would halve the ratio
    assert 0.75 * 2 ** (order + 1) < errors[0] / errors[1] < 4 * 2 ** (order + 1), (errors, order)


def test_batched_knots_equal_the_vmapped_ones():
    """``integrate_knots_batch`` (a ``while_loop`` that ends when the batch's slowest record is
    done) gives ``vmap(integrate_knots)``'s numbers bit for bit, also under an outer ``vmap`` (as
    over devices): the knots after a record's end repeat its final state, which is the closed
    form after one bounce; a record that the iterations cannot finish is flagged by both."""
    from jaxid.simulate.events import integrate_knots, integrate_knots_batch

    balls = Ball(g=jnp.asarray([9.0, 9.81, 10.0, 9.5]), e=jnp.asarray([0.5, 0.8, 0.9, 0.7]))
    y0 = jnp.asarray([[X0, V0, 0.0]] * 4)
    t_end = jnp.asarray([0.7, 0.9, 1.0, 0.65])  # each past its first bounce, before the second
    iterations = 40  # the slowest record needs about 22 (20 steps of 0.05 s, two for the event)

    def one_by_one(n):
        return jax.jit(jax.vmap(lambda b, y, t: integrate_knots(b, y, t, n)))(balls, y0, t_end)

    batch = jax.jit(lambda b, y, t: integrate_knots_batch(b, y, t, iterations))(balls, y0, t_end)
    want = one_by_one(iterations)
    pairs = jax.tree.map(lambda a: a.reshape(2, 2, *a.shape[1:]), (balls, y0, t_end))
    grouped = jax.jit(jax.vmap(lambda b, y, t: integrate_knots_batch(b, y, t, iterations)))(*pairs)
    for name in ("ts", "ys", "status", "num_events", "t_final", "y_final"):
        np.testing.assert_array_equal(getattr(batch, name), getattr(want, name), err_msg=name)
        flat = np.asarray(getattr(grouped, name)).reshape(np.shape(getattr(want, name)))
        np.testing.assert_array_equal(flat, getattr(want, name), err_msg=name)
    assert np.all(np.asarray(batch.status) == STATUS_OK) and np.all(np.asarray(batch.num_events) == 1)
    expected = jax.vmap(lambda g, e, t: after_bounce(X0, V0, g, e, t))(balls.g, balls.e, t_end)
    np.testing.assert_allclose(batch.y_final[:, :2], expected, atol=1e-10)
    short = jax.jit(lambda b, y, t: integrate_knots_batch(b, y, t, 10))(balls, y0, t_end)
    np.testing.assert_array_equal(short.status, one_by_one(10).status)
    assert np.all(np.asarray(short.status) == STATUS_ITERATION_LIMIT)
    with pytest.raises(ValueError, match="y0 must be"):
        integrate_knots_batch(balls, y0[0], t_end, iterations)


def test_batched_knots_derivatives_match_the_closed_form():
    """Forward-mode derivatives through ``integrate_knots_batch``, whose event location and polish
    run under a ``lax.cond`` on the batch (skipped in the iterations without an event): the final
    state after one bounce against the closed form's derivative in ``(x0, v0, g, e)``, for three
    records whose bounces fall in three different steps (t* = 0.44, 0.59, 0.80 s), and equal (to
    rounding) to the derivatives of ``vmap(integrate_knots)``, which runs both in every
    iteration. (The ball's trajectory is a polynomial that Dopri8's dense output reproduces
    exactly, so the polish changes nothing here; skipping it is caught bit for bit by
    ``test_batched_knots_equal_the_vmapped_ones``.)"""
    from jaxid.simulate.events import integrate_knots, integrate_knots_batch

    scale = jnp.asarray([1.0, 0.5, 2.0])  # of the drop height x0

    def setup(p):
        balls = Ball(g=p[2] * jnp.ones(3), e=p[3] * jnp.ones(3))
        y0 = jnp.stack([p[0] * scale, p[1] * jnp.ones(3), jnp.zeros(3)], axis=-1)
        return balls, y0, 0.9 * jnp.ones(3)

    def batched(p):
        return integrate_knots_batch(*setup(p), 40).y_final[:, :2]

    def one_by_one(p):
        return jax.vmap(lambda b, y, t: integrate_knots(b, y, t, 40))(*setup(p)).y_final[:, :2]

    def closed(p):
        return jax.vmap(lambda s: after_bounce(p[0] * s, p[1], p[2], p[3], 0.9))(scale)

    p = jnp.asarray([X0, V0, G, E])
    t_star = jax.vmap(lambda s: first_contact(X0 * s, V0, G)[0])(scale)
    assert len(set(np.floor(np.asarray(t_star) / 0.05).astype(int).tolist())) == 3
    jac = jax.jit(jax.jacfwd(batched))(p)  # (3, 2, 4)
    np.testing.assert_allclose(jac, jax.jacfwd(closed)(p), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(jac, jax.jit(jax.jacfwd(one_by_one))(p), rtol=1e-13, atol=1e-13)
    # the primal too (it matches the closed form only after exactly one bounce)
    np.testing.assert_allclose(batched(p), closed(p), rtol=0, atol=1e-10)


def test_located_lanes_give_the_whole_batch_numbers(monkeypatch):
    """The event location gathers the records that need it, ``LOCATE_LANES`` at a time: with one
    lane (four rounds for four balls bouncing in the same step) the knots are those of
    ``vmap(integrate_knots)`` bit for bit."""
    from jaxid.simulate import events

    balls = Ball(g=jnp.asarray([9.0, 9.81, 10.0, 9.5]), e=jnp.asarray([0.5, 0.8, 0.9, 0.7]))
    y0 = jnp.asarray([[X0, V0, 0.0]] * 4)
    t_end = jnp.asarray([0.7, 0.9, 1.0, 0.65])
    monkeypatch.setattr(events, "LOCATE_LANES", 1)
    batch = jax.jit(lambda b, y, t: events.integrate_knots_batch(b, y, t, 40))(balls, y0, t_end)
    want = jax.jit(jax.vmap(lambda b, y, t: events.integrate_knots(b, y, t, 40)))(balls, y0, t_end)
    for name in ("ts", "ys", "status", "num_events"):
        np.testing.assert_array_equal(getattr(batch, name), getattr(want, name), err_msg=name)


def test_event_location_stays_at_its_root():
    """A converged Newton iterate stays put: the walker's touch-down and take-off times are the
    same (to 2e-15 s) whether the location takes 2, 3, 4, 6 or 12 Newton iterations. (An
    iterate one ulp from the root used to fail the bracket's strict test and jump to the
    bracket's midpoint; on this record 4 iterations then put the touch-down 2e-10 s off.)"""
    from jaxid.simulate.events import integrate_knots

    walker = Walker(m=61.96844790957103, k=9173.988600413944, l0=0.6364530726518604)
    y0 = jnp.asarray([0.0, 0.5982658882927487, 0.7693966530697836, 2.9874652443326427e-15, 0.0, 0.0, 0.0])
    period = 0.3392227490374457

    def knots(n):
        return jax.jit(lambda y: integrate_knots(walker, y, period, 24, dt0=0.025, root_iterations=n))(y0)

    want = knots(12)
    assert int(want.num_events) == 2 and int(want.status) == STATUS_OK
    for n in (2, 3, 4, 6):
        np.testing.assert_allclose(knots(n).ts, want.ts, rtol=0, atol=2e-15, err_msg=f"{n} iterations")
