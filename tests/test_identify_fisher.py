"""jaxid.identify.fisher_information as a pure-JAX function: jit, vmap over designs, jacfwd.

The reference is the closed form of y = a exp(-b t) observed at times t with Gaussian noise s:
J = [exp(-b t), -a t exp(-b t)], F = J^T J / s^2.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxid
from jaxid.identify import Experiment, fisher_information

THETA = np.array([1.5, 0.7])
TS = np.linspace(0.0, 3.0, 7)


def decay(theta, ts):
    return theta[0] * jnp.exp(-theta[1] * ts)


def closed_form(theta, ts, noise):
    a, b = theta
    jac = np.stack([np.exp(-b * ts), -a * ts * np.exp(-b * ts)], -1)
    return jac.T @ jac / noise**2


def experiment(ts, noise=0.1, **kwargs):
    return Experiment(lambda th: decay(th, ts), noise, param_names=("a", "b"), **kwargs)


def test_jit_and_host_agree_with_the_closed_form():
    e = experiment(jnp.asarray(TS))
    want = closed_form(THETA, TS, 0.1)
    host = fisher_information(e, THETA)
    jitted = eqx.filter_jit(fisher_information)(e, jnp.asarray(THETA))
    assert isinstance(host, jax.Array)
    np.testing.assert_allclose(host, want, rtol=1e-12)
    np.testing.assert_allclose(jitted, want, rtol=1e-12)


def test_vmap_over_noise_levels_and_sampling_designs():
    e = experiment(jnp.asarray(TS))
    levels = jnp.array([0.05, 0.1, 0.3])
    by_noise = jax.vmap(lambda s: fisher_information(eqx.tree_at(lambda x: x.noise, e, s), THETA))(levels)
    for s, f in zip(np.asarray(levels), by_noise, strict=True):
        np.testing.assert_allclose(f, closed_form(THETA, TS, s), rtol=1e-12)

    designs = np.stack([TS, 2 * TS, TS[::-1] ** 2 / 3])
    by_design = jax.vmap(lambda ts: fisher_information(experiment(ts), THETA))(jnp.asarray(designs))
    for ts, f in zip(designs, by_design, strict=True):
        np.testing.assert_allclose(f, closed_form(THETA, ts, 0.1), rtol=1e-12)


def test_jacfwd_of_a_design_criterion_matches_finite_differences():
    def log_det(ts):
        return jnp.linalg.slogdet(fisher_information(experiment(ts), THETA))[1]

    grad = jax.jacfwd(log_det)(jnp.asarray(TS))
    h = 1e-6
    fd = [
        (
            np.linalg.slogdet(closed_form(THETA, TS + h * d, 0.1))[1]
            - np.linalg.slogdet(closed_form(THETA, TS - h * d, 0.1))[1]
        )
        / (2 * h)
        for d in np.eye(TS.size)
    ]
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_derivative_in_theta_and_noise():
    e = experiment(jnp.asarray(TS))
    d_theta = jax.jacfwd(lambda th: fisher_information(e, th))(jnp.asarray(THETA))
    h = 1e-6
    for j in range(2):
        step = h * np.eye(2)[j]
        fd = (closed_form(THETA + step, TS, 0.1) - closed_form(THETA - step, TS, 0.1)) / (2 * h)
        np.testing.assert_allclose(d_theta[..., j], fd, rtol=1e-6, atol=1e-6)
    d_noise = jax.grad(lambda s: fisher_information(eqx.tree_at(lambda x: x.noise, e, s), THETA)[1, 1])(0.1)
    np.testing.assert_allclose(d_noise, -2 * closed_form(THETA, TS, 0.1)[1, 1] / 0.1, rtol=1e-10)


def test_log_parameters_and_relative_noise_under_jit():
    e = experiment(jnp.asarray(TS), relative=True)
    f_log = eqx.filter_jit(lambda e, th: fisher_information(e, th, log=True))(e, jnp.asarray(THETA))
    y = np.asarray(decay(THETA, TS))
    sd = 0.1 * y.std()
    want = closed_form(THETA, TS, sd) * np.outer(THETA, THETA)
    np.testing.assert_allclose(f_log, want, rtol=1e-10)
    np.testing.assert_allclose(fisher_information(e, THETA, log=True), want, rtol=1e-10)


def test_a_non_finite_result_under_jit_is_an_error():
    e = Experiment(lambda th: jnp.log(th[0] - 1.0) * jnp.ones(3), 0.1, param_names=("a",))
    with pytest.raises(jaxid.NonFiniteError, match="theta"):
        fisher_information(e, np.array([0.5]))
    with pytest.raises(Exception, match="non-finite Fisher information"):
        jax.block_until_ready(eqx.filter_jit(fisher_information)(e, jnp.array([0.5])))


def test_a_model_experiment_under_jit_and_vmap():
    model = jaxid.models.Pendulum(m=1.0, L=1.0, b=0.3, g=9.81)
    ts = jnp.linspace(0.0, 2.0, 21)
    e = Experiment.from_model(model, jnp.array([0.5, 0.0]), ts, noise=0.01, params=("L", "b", "g"))
    theta = jnp.array([1.0, 0.3, 9.81])
    host = fisher_information(e, theta)
    by_noise = jax.vmap(lambda s: fisher_information(eqx.tree_at(lambda x: x.noise, e, s), theta))(
        jnp.array([0.01, 0.02])
    )
    np.testing.assert_allclose(by_noise[0], host, rtol=1e-10)
    np.testing.assert_allclose(by_noise[1], host / 4, rtol=1e-10)


def test_whitened_jacobians_result_and_its_finite_mask():
    """W = J / s against the closed form; with require_finite=False a failing point (b < 0 makes
    the function return NaN here) is marked in ``finite`` instead of raising."""
    from jaxid.identify import WhitenedJacobians, whitened_jacobians

    ts = jnp.asarray(TS)
    e = Experiment(
        lambda th: jnp.where(th[1] > 0, decay(th, ts), jnp.nan),
        0.1,
        param_names=("a", "b"),
        check_function=False,
    )
    wj = whitened_jacobians(e, THETA)
    assert isinstance(wj, WhitenedJacobians)
    a, b = THETA
    jac = np.stack([np.exp(-b * TS), -a * TS * np.exp(-b * TS)], -1)
    np.testing.assert_allclose(wj.w, jac / 0.1, rtol=1e-12)
    np.testing.assert_allclose(wj.ys[0], decay(THETA, TS), rtol=1e-12)
    assert wj.finite.shape == () and bool(wj.finite)
    pts = np.array([THETA, [1.0, -0.5], [2.0, 0.3]])
    with pytest.raises(jaxid.NonFiniteError, match=r"theta\[1\]"):
        whitened_jacobians(e, pts)
    wj = whitened_jacobians(e, pts, require_finite=False)
    assert wj.finite.tolist() == [True, False, True]
    assert wj.w.shape == (3, TS.size, 2)
    np.testing.assert_array_equal(wj.sigmas[0][1], 1.0)  # a failed point's noise
