"""Geyer's walker: against an independent SciPy event loop, conservation, scaling, derivatives,
failure detection and the API's error paths."""

import math

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from references import walker_reference

import jaxid
from jaxid import Walker
from jaxid.simulate.events import status_counts

TS = np.linspace(0.0, 15.0, 151)
REF = dict(m=80.0, k=20000.0, l0=1.0)
REF_START = (0.9782, 1.090, 0.0)
ALPHA0 = math.radians(69.0)


@pytest.fixture(scope="module")
def sim15():
    """One compiled 15 s simulation shared by the tests (new parameter values do not retrace)."""
    return jax.jit(lambda w, y0: jaxid.simulate(w, y0, jnp.asarray(TS)))


@pytest.fixture(scope="module")
def reference_run(sim15):
    w = Walker(**REF, channels=("x", "y", "grf_x", "grf_y"))
    return w, sim15(w, w.initial_state(*REF_START))


def test_reference_gait_matches_scipy_event_loop(reference_run):
    _, sim = reference_run
    ref, phases, failure = walker_reference(
        80.0, 20000.0, 1.0, ALPHA0, 9.81, [0.0, *REF_START], TS, rtol=1e-12, atol=1e-13
    )
    assert failure is None and bool(sim.success)
    # REFERENCE.md: 64 phases, x(15) ~ 17.708 m, y(15) ~ 0.926 m.
    assert phases == 64 and int(sim.num_events) + 1 == 64
    assert abs(float(sim.ys[-1, 0]) - 17.708) < 1e-3 and abs(float(sim.ys[-1, 1]) - 0.926) < 1e-3
    # Measured 2.2e-11 m with Dopri8 at dt = 10 ms. The orbit amplifies errors by ~1.16 per step
    # (about 100x over the 32 steps), so 1e-8 m leaves room for platform rounding but still fails
    # for any event located at step resolution (errors of 1e-4 m and more).
    err = np.max(np.abs(np.asarray(sim.ys[:, :2]) - ref[:, :2]))
    assert err < 1e-8, err


def test_energy_is_conserved_through_all_switches(reference_run):
    w, sim = reference_run
    energy = np.asarray(w.energy(sim.ys))
    assert int(sim.num_events) == 63
    # Measured 1.3e-12 relative; the leg force is zero at each switch so nothing jumps.
    drift = np.max(np.abs(energy - energy[0])) / abs(energy[0])
    assert drift < 1e-10, drift


def test_mass_and_stiffness_scaling(sim15, reference_run):
    w, sim = reference_run
    scaled = Walker(m=3 * 80.0, k=3 * 20000.0, l0=1.0, channels=w.channels)
    sim3 = sim15(scaled, scaled.initial_state(*REF_START))
    # Same k/m: the same kinematics to rounding (measured ~1e-13 m); forces scale by 3.
    np.testing.assert_allclose(sim3.obs[:, :2], sim.obs[:, :2], rtol=0, atol=1e-10)
    np.testing.assert_allclose(sim3.obs[:, 2:], 3 * sim.obs[:, 2:], rtol=1e-9, atol=1e-6)
    # The weight is carried: mean vertical force over whole steps is close to m g.
    assert abs(float(jnp.mean(sim.obs[:, 3])) / (80.0 * 9.81) - 1.0) < 0.05


def test_ground_reaction_force_is_mass_times_acceleration_plus_weight(reference_run):
    w, sim = reference_run
    acc = jax.vmap(lambda y: w.vector_field(0.0, y))(sim.ys)[:, 2:4]
    np.testing.assert_allclose(sim.obs[:, 2], 80.0 * acc[:, 0], atol=1e-8)
    np.testing.assert_allclose(sim.obs[:, 3], 80.0 * (acc[:, 1] + 9.81), atol=1e-8)


@pytest.fixture(scope="module")
def short_obs():
    w = Walker(**REF)
    ts = jnp.linspace(0.0, 3.0, 31)
    y0 = w.initial_state(*REF_START)

    def obs(p, adjoint=None):
        return jaxid.simulate(w.with_params(p), y0, ts, adjoint=adjoint).obs

    return w, obs


def test_jacobian_matches_finite_differences(short_obs):
    w, obs = short_obs
    p = w.params
    jac = jax.jit(jax.jacfwd(obs))(p)
    f = jax.jit(obs)
    for i in (1, 2, 3):  # k, l0, alpha0
        eps = 1e-6 * float(p[i])
        fd = (f(p.at[i].add(eps)) - f(p.at[i].add(-eps))) / (2 * eps)
        scale = float(jnp.max(jnp.abs(fd)))
        # Central differences of a 3 s record at rtol ~1e-12 solves: truncation ~eps^2, rounding
        # ~1e-12/eps; measured relative differences 1e-9 to 1e-8.
        assert float(jnp.max(jnp.abs(jac[..., i] - fd))) < 1e-6 * scale, w.param_names[i]
    # Only k/m enters the kinematics: d/dm = -(k/m) d/dk.
    np.testing.assert_allclose(
        jac[..., 0], -(p[1] / p[0]) * jac[..., 1], atol=1e-9 * float(jnp.max(jnp.abs(jac[..., 1])))
    )


@pytest.mark.slow
def test_reverse_mode_matches_forward_mode(short_obs):
    w, obs = short_obs
    p = w.params
    grad = jax.jit(jax.grad(lambda p: jnp.sum(obs(p, dfx.RecursiveCheckpointAdjoint())[:, 1] ** 2)))(p)
    jac = jax.jit(jax.jacfwd(obs))(p)
    expected = jnp.einsum("t,tp->p", 2 * obs(p)[:, 1], jac[:, 1, :])
    np.testing.assert_allclose(grad, expected, rtol=1e-8)


def test_vmap_matches_loop_and_status_counts(sim15):
    w = Walker(
        m=jnp.asarray([80.0, 80.0, 80.0]), k=jnp.asarray([20000.0, 2000.0, 20000.0]), l0=1.0
    ).broadcast()
    y0 = jnp.stack([w.initial_state(*REF_START), w.initial_state(*REF_START), w.initial_state(0.9782, -0.1)])
    batch = jax.vmap(sim15)(w, y0)
    for i in range(3):
        one = sim15(jax.tree.map(lambda a, i=i: a[i], w), y0[i])
        np.testing.assert_array_equal(np.asarray(batch.status[i]), np.asarray(one.status))
        # Vectorised and scalar code round differently (measured 3e-10 after 15 s of amplification).
        np.testing.assert_allclose(batch.ys[i], one.ys, rtol=0, atol=1e-8, equal_nan=True)
    assert status_counts(w, batch.status) == {"ok": 1, "fall": 1, "stall": 1}


@pytest.mark.parametrize(
    ("params", "start", "reason"),
    [
        (dict(m=80.0, k=2000.0, l0=1.0), (0.9782, 1.09, 0.0), "fall"),  # the legs cannot carry the weight
        (dict(m=80.0, k=2000.0, l0=1.0), (0.9782, 0.5, 0.0), "stall"),  # too slow to vault over
        (REF, (0.9782, 1.09, 1.0), "flight"),  # thrown upwards: the stance leg reaches l0
        (REF, (0.9782, 1.09, -1.5), "front-leg lift-off"),
        (REF, (0.9782, -0.1, 0.0), "stall"),  # moving backwards from the start
    ],
)
def test_failures_are_detected_with_their_reason(sim15, params, start, reason):
    w = Walker(**params)
    sim = sim15(w, w.initial_state(*start))
    assert not bool(sim.success)
    assert w.status_names[int(sim.status)] == reason
    # Nothing after the failure is reported as data: the entries are NaN and flagged.
    ts, t_end = np.asarray(sim.ts), float(sim.t_final)
    assert np.all(np.isnan(np.asarray(sim.ys)[ts > t_end]))
    assert np.all(np.isfinite(np.asarray(sim.ys)[ts < t_end]))


def test_phase_time_out():
    w = Walker(**REF, phase_time_limit=0.1)
    sim = jaxid.simulate(w, w.initial_state(*REF_START), jnp.linspace(0.0, 1.0, 11))
    assert w.status_names[int(sim.status)] == "phase time-out"


def test_events_are_located_not_stepped(reference_run):
    """Event times come from root finding: a stopping event lands on its surface to rounding."""
    _, sim = reference_run
    ds = np.asarray(sim.ys)[:, 6] > 0.5
    assert ds.any() and (~ds).any()  # both phases seen on the save grid
    w1 = Walker(**REF, stop_at_midstance=True)
    end = jaxid.simulate(w1, w1.initial_state(*REF_START), jnp.asarray([5.0]), t0=0.0)
    assert int(end.num_events) == 2 and bool(end.success)  # touch-down, take-off, then mid-stance
    # x equals the stance foot at the stop (a 10 ms step would miss by up to ~1 cm).
    np.testing.assert_allclose(end.y_final[0], end.y_final[5], atol=1e-12)
    # The new foot was placed l0 cos(alpha0) ahead of the CoM at touch-down, whose height is
    # l0 sin(alpha0): both legs had rest length at that instant, which energy conservation checks.
    assert float(end.y_final[5] - end.y_final[4]) > 0.4


def test_walker_input_errors():
    with pytest.raises(ValueError, match="channels"):
        Walker(**REF, channels=("x", "z"))
    with pytest.raises(ValueError, match="alpha0"):
        Walker(**REF, alpha0=69.0)
    with pytest.raises(ValueError, match="'k' must be > 0"):
        Walker(m=80.0, k=-1.0, l0=1.0)
    with pytest.raises(ValueError, match="fall_height"):
        Walker(**REF, fall_height=1.5)
    w = Walker(**REF)
    with pytest.raises(ValueError, match="rtol, atol and stepsize_controller do not apply"):
        jaxid.simulate(w, w.initial_state(*REF_START), TS, rtol=1e-6)
    with pytest.raises(ValueError, match=r"y0 must have shape \(7,\)"):
        jaxid.simulate(w, jnp.zeros(4), TS)
    with pytest.raises(TypeError, match="explicit diffrax Runge-Kutta"):
        jaxid.simulate(w, w.initial_state(*REF_START), TS, solver=dfx.Kvaerno5())
    with pytest.raises(ValueError, match="dt0 must be a positive"):
        jaxid.simulate(w, w.initial_state(*REF_START), TS, dt0=-1.0)
