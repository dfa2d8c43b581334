"""simulate(): accuracy against independent SciPy references, conservation laws, and JAX transforms."""

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import references as ref

from jaxid import AdvectionDiffusion, DoublePendulum, ForcedDampedPendulum, Pendulum, simulate

# The default tolerances (rtol 1e-7, atol 1e-9) give errors of about 1e-6 (pendulums over
# 10 s; measured 1.6e-6 to 2.6e-6) and 7e-6 (the double pendulum at large amplitude, whose
# chaotic dynamics amplify local errors). The asserted bounds sit about 5x above the measurements
# so that platform-dependent rounding cannot flip them, and far below any physical effect.
TS = np.linspace(0.0, 10.0, 201)


@pytest.mark.parametrize("m,L,b,theta0", [(1.0, 1.0, 0.0, 1.0), (2.0, 1.5, 0.3, 2.5), (0.7, 0.6, 0.05, 3.0)])
def test_pendulum_matches_scipy(m, L, b, theta0):
    sim = simulate(Pendulum(m=m, L=L, b=b), jnp.array([theta0, 0.5]), TS)
    expected = ref.solve(ref.pendulum_rhs(m, L, b, 9.81), [theta0, 0.5], TS)
    assert bool(sim.success)
    assert np.abs(np.asarray(sim.ys) - expected).max() < 1e-5


@pytest.mark.parametrize(
    "params", [(2.0, 0.3, 20.0, 5.0), (3.14, 0.8, 40.0, 6.28), (0.785, 0.0, 0.0, 3.14), (1.5, 0.1, 35.0, 3.5)]
)
def test_forced_damped_pendulum_matches_scipy(params):
    ts = np.arange(50) * 0.05  # the Phys-VAE grid
    sim = simulate(ForcedDampedPendulum(*params), jnp.array([1.2, 0.0]), ts)
    expected = ref.solve(ref.forced_pendulum_rhs(*params), [1.2, 0.0], ts)
    # measured: <= 2.8e-6 on the state, <= 1.5e-7 on theta
    assert np.abs(np.asarray(sim.ys) - expected).max() < 1.5e-5
    assert np.abs(np.asarray(sim.obs[:, 0]) - expected[:, 0]).max() < 1e-6


@pytest.mark.parametrize("y0", [[1.0, 2.0, 0.0, 0.0], [0.3, -0.2, 0.1, 0.0]])
def test_double_pendulum_matches_scipy_and_conserves_energy(y0):
    model = DoublePendulum(m1=1.2, m2=0.8, l1=1.0, l2=0.7)
    sim = simulate(model, jnp.array(y0), TS)
    expected = ref.solve(ref.double_pendulum_rhs(1.2, 0.8, 1.0, 0.7, 9.81), y0, TS)
    assert np.abs(np.asarray(sim.ys) - expected).max() < 5e-5  # measured 7.1e-6 (chaotic case)
    energy = np.asarray(model.energy(sim.ys))
    # relative drift measured 3e-7 over 10 s at the default tolerances
    assert np.abs(energy - energy[0]).max() / np.abs(energy[0]) < 3e-6


def test_damped_double_pendulum_matches_scipy_and_loses_energy():
    model = DoublePendulum(m1=1.2, m2=0.8, l1=1.0, l2=0.7, b1=0.2, b2=0.1)
    sim = simulate(model, jnp.array([1.0, 2.0, 0.0, 0.0]), TS)
    expected = ref.solve(ref.damped_double_pendulum_rhs(1.2, 0.8, 1.0, 0.7, 9.81, 0.2, 0.1), [1, 2, 0, 0], TS)
    assert np.abs(np.asarray(sim.ys) - expected).max() < 1e-5  # measured 9e-7
    energy = np.asarray(model.energy(sim.ys))
    assert np.all(np.diff(energy) <= 1e-9)  # dissipation never adds energy


def test_pendulum_conserves_energy_when_undamped():
    model = Pendulum(m=1.0, L=1.0)
    sim = simulate(model, jnp.array([2.5, 0.0]), np.linspace(0, 20, 401))
    energy = np.asarray(model.energy(sim.ys))
    assert np.abs(energy - energy[0]).max() / energy[0] < 4e-6  # measured 3.9e-7 over 20 s


def test_pendulum_small_angle_closed_form():
    # theta(t) = theta0 cos(w t), w = sqrt(g/L), up to the amplitude-dependent frequency shift
    # w theta0^2 / 16: over 10 s with theta0 = 1e-4 it moves the phase by 2.8e-8 rad, i.e. the
    # angle by 2.8e-12 rad, so 2e-11 bounds the closed-form error plus the solver's (atol 1e-15).
    model = Pendulum(m=1.0, L=0.5)
    sim = simulate(model, jnp.array([1e-4, 0.0]), TS, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(sim.obs[:, 0], 1e-4 * np.cos(np.sqrt(9.81 / 0.5) * TS), rtol=0, atol=2e-11)


def test_advection_diffusion_matches_matrix_exponential():
    ts = np.arange(50) * 0.02
    model = AdvectionDiffusion(D=0.05, c=0.08)
    u0 = np.asarray(model.initial_state(1.3))
    sim = simulate(model, u0, ts)
    expected = ref.advection_diffusion_exact(0.05, 0.08, 20, 0.1, u0, ts)
    assert np.abs(np.asarray(sim.obs) - expected).max() < 1e-7  # measured 6.5e-9
    # and against SciPy DOP853 on the same semi-discretisation (checks the reference itself too)
    A = ref.advection_diffusion_matrix(0.05, 0.08, 20, 0.1)
    dop853 = ref.solve(lambda t, u: A @ u, u0, ts)
    assert np.abs(dop853 - expected).max() < 1e-9
    assert np.abs(np.asarray(sim.obs) - dop853).max() < 1e-7


# ---------------------------------------------------------------- JAX transformations

FDP = ForcedDampedPendulum(omega=2.0, gamma=0.3, A=10.0, f=4.0)
FDP_TS = jnp.arange(50) * 0.05
Y0 = jnp.array([1.0, 0.0])


def test_jit_equals_eager():
    eager = simulate(FDP, Y0, FDP_TS)
    jitted = eqx.filter_jit(simulate)(FDP, Y0, FDP_TS)
    np.testing.assert_allclose(jitted.ys, eager.ys, rtol=0, atol=1e-12)


def test_vmap_equals_loop():
    batch = ForcedDampedPendulum.sample(jax.random.PRNGKey(1), 5)
    y0s = jnp.stack([jnp.linspace(-1, 1, 5), jnp.zeros(5)], -1)
    batched = jax.vmap(lambda m, y: simulate(m, y, FDP_TS))(batch, y0s)
    for i in range(5):
        one = jax.tree.map(lambda a, i=i: a[i], batch)
        single = simulate(one, y0s[i], FDP_TS)
        np.testing.assert_allclose(batched.obs[i], single.obs, rtol=0, atol=1e-12)
    assert batched.success.shape == (5,)


def _central_difference(f, x, rel_step=1e-6):
    cols = []
    for i in range(x.size):
        h = rel_step * max(abs(float(x[i])), 1.0)
        e = jnp.zeros_like(x).at[i].set(h)
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return jnp.stack(cols, -1)


# Gradients are checked at rtol = atol = 1e-12 so that solver noise (~1e-12 / 1e-6 step) is far
# below the finite-difference truncation error (~h^2 ~ 1e-12 relative).
TIGHT = dict(rtol=1e-12, atol=1e-12)


def test_grad_matches_finite_differences():
    model = Pendulum(m=1.3, L=0.8, b=0.2)
    ts = jnp.linspace(0, 3, 31)

    def loss(p):
        return jnp.sum(simulate(model.with_params(p), jnp.array([1.0, 0.0]), ts, **TIGHT).obs ** 2)

    grad = jax.grad(loss)(model.params)
    fd = _central_difference(loss, model.params)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "model,y0",
    [
        (ForcedDampedPendulum(omega=2.0, gamma=0.3, A=10.0, f=4.0), jnp.array([1.0, 0.0])),
        (
            DoublePendulum(m1=1.0, m2=0.5, l1=1.0, l2=0.8, b1=0.1, b2=0.05, observe_mode="both"),
            jnp.array([0.5, -0.3, 0.0, 0.0]),
        ),
        (AdvectionDiffusion(D=0.05, c=0.03), AdvectionDiffusion(D=0.05).initial_state(1.0)),
    ],
)
def test_jacfwd_matches_finite_differences(model, y0):
    ts = jnp.linspace(0, 1.0, 21)

    def obs(p):
        return simulate(model.with_params(p), y0, ts, adjoint=dfx.ForwardMode(), **TIGHT).obs

    jac = jax.jacfwd(obs)(model.params)
    fd = _central_difference(obs, model.params)
    scale = jnp.abs(fd).max()
    np.testing.assert_allclose(jac, fd, rtol=0, atol=1e-6 * scale)


def test_no_retrace_for_new_values_of_same_shape():
    traces = []

    @eqx.filter_jit
    def run(model, y0):
        traces.append(1)
        return simulate(model, y0, FDP_TS).obs

    run(ForcedDampedPendulum(omega=2.0, gamma=0.3, A=10.0, f=4.0), jnp.array([1.0, 0.0]))
    run(ForcedDampedPendulum(omega=1.0, gamma=0.1, A=5.0, f=3.5), jnp.array([0.5, 0.1]))
    assert len(traces) == 1


# ---------------------------------------------------------------- failures and bad input


def test_too_few_steps_is_reported_not_silent():
    sim = simulate(FDP, Y0, FDP_TS, max_steps=3)
    assert not bool(sim.success)
    with pytest.raises(Exception, match="the solve failed"):
        simulate(FDP, Y0, FDP_TS, max_steps=3, throw=True)


def test_non_finite_parameters_inside_jit_flag_failure():
    run = jax.jit(lambda p: simulate(FDP.with_params(p), Y0, FDP_TS).success)
    assert bool(run(FDP.params))
    assert not bool(run(FDP.params.at[0].set(jnp.nan)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(y0=jnp.zeros(3)), r"y0 must have shape \(2,\)"),
        (dict(y0=jnp.array([jnp.nan, 0.0])), "y0 must be finite"),
        (dict(ts=jnp.zeros((2, 2))), "ts must be a non-empty 1-D array"),
        (dict(ts=jnp.array([0.0, 1.0, 0.5])), "ts must be strictly increasing"),
        (dict(ts=jnp.array([0.0, jnp.inf])), "ts must be finite"),
        (dict(t0=1.0), "t0=1.0 must not be after"),
        (dict(rtol=0.0), "rtol must be a positive number"),
        (dict(atol=-1.0), "atol must be a positive number"),
        (dict(max_steps=0), "max_steps must be a positive int"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = dict(model=FDP, y0=Y0, ts=FDP_TS)
    args.update({k: v for k, v in kwargs.items() if k in args})
    options = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(ValueError, match=match):
        simulate(args["model"], args["y0"], args["ts"], **options)


def test_batched_model_or_wrong_type_raise():
    with pytest.raises(ValueError, match="holds a batch of parameters"):
        simulate(ForcedDampedPendulum.sample(jax.random.PRNGKey(0), 3), Y0, FDP_TS)
    with pytest.raises(TypeError, match="model must be a jaxid model"):
        simulate(lambda t, y: y, Y0, FDP_TS)


def test_float32_inputs_stay_float32():
    model = ForcedDampedPendulum(*[jnp.float32(v) for v in (2.0, 0.3, 10.0, 4.0)])
    ts = (jnp.arange(50) * 0.05).astype(jnp.float32)
    sim = simulate(model, jnp.array([1.0, 0.0], jnp.float32), ts, rtol=1e-5, atol=1e-7)
    assert sim.ys.dtype == sim.obs.dtype == jnp.float32
    assert bool(sim.success)
