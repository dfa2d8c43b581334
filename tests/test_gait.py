"""The gait finder: fixed points of the mid-stance return map, for the reference gait and the priors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxid import Walker, find_gait
from jaxid.walker.gait import gait_initial_state, return_map


@pytest.fixture(scope="module")
def gaits():
    """One batched solve: the reference gait (height 0.9782 m), the same with m and k doubled, and
    six draws from the priors (height 0.94 l0); one compilation serves all the tests."""
    prior = Walker.sample(jax.random.key(3), 6)
    m = np.concatenate([[80.0, 160.0], np.asarray(prior.m)])
    k = np.concatenate([[20000.0, 40000.0], np.asarray(prior.k)])
    l0 = np.concatenate([[1.0, 1.0], np.asarray(prior.l0)])
    walkers = Walker(m=m, k=k, l0=l0)
    height = np.concatenate([[0.9782, 0.9782], 0.94 * l0[2:]])
    return walkers, find_gait(walkers, height)


def test_reference_gait_is_a_fixed_point(gaits):
    walkers, gait = gaits
    assert bool(gait.converged[0])
    # Newton converges to rounding (measured 3e-15); the return map is evaluated independently.
    assert float(gait.residual[0]) < 1e-10
    one = jax.tree.map(lambda a: a[0], walkers.broadcast())
    ret = return_map(one, np.asarray([gait.height[0], gait.vx[0], gait.vy[0]]))
    out, t_step, foot, status = ret.section, ret.step_time, ret.step_length, ret.status
    assert int(status) == 0
    np.testing.assert_allclose(out, [gait.height[0], gait.vx[0], gait.vy[0]], atol=1e-10)
    # REFERENCE.md: vx about 1.090 at mid-stance height 0.9782 m; unstable, |eigenvalue| about 1.16.
    assert abs(float(gait.vx[0]) - 1.090) < 2e-3
    assert abs(float(gait.vy[0])) < 1e-10
    assert abs(float(gait.max_abs_eigenvalue[0]) - 1.16) < 0.01
    assert float(gait.step_time[0]) == pytest.approx(float(t_step))
    assert float(gait.step_length[0]) == pytest.approx(float(foot))
    assert float(gait.speed[0]) == pytest.approx(float(foot / t_step))


def test_prior_draws_have_gaits(gaits):
    walkers, gait = gaits
    assert np.all(np.asarray(gait.converged))
    assert np.all(np.asarray(gait.residual) < 1e-8)
    # The gait's speed scales like sqrt(g l0) (Froude number about 0.1 for these priors).
    froude = np.asarray(gait.speed) ** 2 / (9.81 * np.asarray(walkers.l0))
    assert np.all((froude > 0.02) & (froude < 0.5)), froude
    assert np.all(np.isfinite(np.asarray(gait.eigenvalues)))


def test_gait_depends_on_mass_only_through_k_over_m(gaits):
    _, gait = gaits
    np.testing.assert_allclose(gait.state[1], gait.state[0], atol=1e-10)
    np.testing.assert_allclose(gait.eigenvalues[1], gait.eigenvalues[0], atol=1e-8)


def test_find_gait_errors():
    w = Walker(m=80.0, k=20000.0, l0=1.0)
    with pytest.raises(ValueError, match="exactly one of height"):
        find_gait(w, 0.97, height_ratio=0.97)
    with pytest.raises(ValueError, match="height_ratio must lie"):
        find_gait(w, height_ratio=1.5)
    with pytest.raises(ValueError, match="speed_grid"):
        find_gait(w, 0.97, speed_grid=[-1.0])
    with pytest.raises(TypeError, match=r"jaxid\.Walker"):
        find_gait("walker", 0.97)


@pytest.mark.slow
def test_gait_initial_state_derivatives_match_finite_differences(gaits):
    """The starting state of gait_initial_state (find_gait's state, without the Jacobian pass)
    differentiated through Newton's solve, against central differences of the solve itself."""
    start = gait_initial_state(0.94)
    theta = np.array([70.0, 9000.0, 0.7])

    def state(th):
        return start(Walker(m=th[0], k=th[1], l0=th[2]))

    def with_value(th):
        y = state(th)
        return y, y

    jac, value = jax.jit(jax.jacfwd(with_value, has_aux=True))(jnp.asarray(theta))
    jac = np.asarray(jac)
    # Central differences from one batched find_gait of 8 walkers (the shape the gaits fixture
    # compiled, so no new compilation): theta twice, then theta +- steps.
    steps = 1e-4 * theta
    batch = np.concatenate([theta[None], theta[None], theta + np.diag(steps), theta - np.diag(steps)])
    gaits = find_gait(Walker(m=batch[:, 0], k=batch[:, 1], l0=batch[:, 2]), 0.94 * batch[:, 2])
    states = np.asarray(gaits.state)
    np.testing.assert_allclose(value, states[0], rtol=1e-14, atol=1e-14)
    fd = (states[2:5] - states[5:]).T / (2 * steps)
    # Measured: the differences' truncation error (about 1e-8 of each column's scale at steps of
    # 1e-4, falling as the step squared) dominates; Newton's 1e-10 stopping error is far below it.
    scale = np.abs(fd).max(axis=0)
    assert np.all(np.abs(jac - fd) <= 1e-7 * scale), np.abs(jac - fd).max(axis=0) / scale
    # The state depends on m only through k/m: d/dm = -(k/m) d/dk.
    np.testing.assert_allclose(jac[:, 0] * theta[0], -jac[:, 1] * theta[1], atol=1e-10)
    assert np.abs(jac[2, 1]) > 1e-5  # vx moves with k
    # Where no gait exists (a soft leg) the state is NaN and its derivatives do not raise (the
    # same compiled function): a sampler or optimiser stepping there carries on.
    jac_bad, value_bad = jax.jit(jax.jacfwd(with_value, has_aux=True))(jnp.array([80.0, 2000.0, 1.0]))
    assert np.all(np.isnan(value_bad)) and np.all(np.isfinite(jac_bad))
    # Newton started from the table of unit-walker gaits over K = k l0 / (m g): the same root
    k = theta[1] * theta[2] / (theta[0] * 9.81)
    tabled = gait_initial_state(0.94, k_range=(0.9 * k, 1.1 * k))
    jac_t, value_t = jax.jit(
        jax.jacfwd(lambda th: (lambda y: (y, y))(tabled(Walker(m=th[0], k=th[1], l0=th[2]))), has_aux=True)
    )(jnp.asarray(theta))
    np.testing.assert_allclose(value_t, value, rtol=1e-12, atol=1e-12)
    assert np.all(np.abs(np.asarray(jac_t) - jac) <= 1e-9 * scale)


def test_gait_initial_state_errors():
    with pytest.raises(ValueError, match="height_ratio must lie"):
        gait_initial_state(1.2)
    with pytest.raises(TypeError, match=r"unexpected options \['height', 'speed'\]"):
        gait_initial_state(0.94, height=0.7, speed=1.0)


def test_stiffness_range_covers_every_corner_of_the_box():
    import itertools

    from jaxid.walker import stiffness_range

    box = {"m": (60.0, 75.0), "k": (8000.0, 10000.0), "l0": (0.6, 0.8), "g": (9.7, 9.9)}
    lo, hi = stiffness_range(box, widen=1.0)
    corners = [
        k * l0 / (m * g) for m, k, l0, g in itertools.product(*(box[n] for n in ("m", "k", "l0", "g")))
    ]
    assert np.isclose(lo, min(corners)) and np.isclose(hi, max(corners))
    wide = stiffness_range(box)
    assert np.isclose(wide[0] * 1.25, lo) and np.isclose(wide[1] / 1.25, hi)
    with pytest.raises(ValueError, match="stiffness_range: bounds must be positive"):
        stiffness_range({**box, "m": (0.0, 75.0)})
