"""Model construction, validation, parameter vectors and observation functions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxid
from jaxid import AdvectionDiffusion, DoublePendulum, ForcedDampedPendulum, Pendulum

MODELS = [
    (Pendulum, dict(m=1.0, L=2.0, b=0.1)),
    (ForcedDampedPendulum, dict(omega=2.0, gamma=0.3, A=10.0, f=4.0)),
    (DoublePendulum, dict(m1=1.0, m2=0.5, l1=1.0, l2=0.8)),
    (AdvectionDiffusion, dict(D=0.05, c=0.02)),
]


@pytest.mark.parametrize("cls,kwargs", MODELS)
def test_declarations_are_consistent(cls, kwargs):
    model = cls(**kwargs)
    assert len(cls.param_names) == len(cls.param_units) == len(cls.default_priors)
    assert set(cls.default_priors) == set(cls.param_names)
    assert model.params.shape == (len(cls.param_names),)
    assert model.params.dtype == jnp.float64
    y = jnp.ones(model.state_size) * 0.1
    assert model.vector_field(0.0, y).shape == (model.state_size,)
    assert model.observe(0.0, y).shape == (len(model.obs_names),)


@pytest.mark.parametrize("cls,kwargs", MODELS)
def test_with_params_round_trip(cls, kwargs):
    model = cls(**kwargs)
    new = model.with_params(model.params * 1.5)
    np.testing.assert_allclose(new.params, model.params * 1.5)
    with pytest.raises(ValueError, match="params must have last axis"):
        model.with_params(jnp.ones(len(cls.param_names) + 1))


@pytest.mark.parametrize("cls,kwargs", MODELS)
def test_sample_respects_priors(cls, kwargs):
    model = cls.sample(jax.random.PRNGKey(0), 200)
    assert model.batch_shape == (200,)
    for i, p in enumerate(cls.param_names):
        lo, hi = cls.default_priors[p]
        assert np.all((model.params[:, i] >= lo) & (model.params[:, i] <= hi)), p


def test_sample_errors():
    with pytest.raises(ValueError, match="unknown parameter 'mass'"):
        Pendulum.sample(jax.random.PRNGKey(0), 3, priors={"mass": (1, 2)})
    with pytest.raises(ValueError, match="high < low"):
        Pendulum.sample(jax.random.PRNGKey(0), 3, priors={"m": (2, 1)})
    with pytest.raises(ValueError, match="n must be a positive int"):
        Pendulum.sample(jax.random.PRNGKey(0), 0)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: Pendulum(m=-1.0, L=1.0), "parameter 'm' must be > 0"),
        (lambda: Pendulum(m=1.0, L=0.0), "parameter 'L' must be > 0"),
        (lambda: Pendulum(m=1.0, L=1.0, b=-0.1), "parameter 'b' must be >= 0"),
        (lambda: Pendulum(m=1.0, L=float("nan")), "parameter 'L' must be finite"),
        (lambda: Pendulum(m=jnp.ones(3), L=jnp.ones(4)), "do not broadcast"),
        (lambda: Pendulum(m=1.0, L=1.0, observe_mode="angles"), "observe_mode='angles' is not one of"),
        (lambda: ForcedDampedPendulum(omega=0.0), "parameter 'omega' must be > 0"),
        (lambda: ForcedDampedPendulum(omega=1.0, A=float("inf")), "parameter 'A' must be finite"),
        (lambda: DoublePendulum(m1=1.0, m2=-2.0, l1=1.0, l2=1.0), "parameter 'm2' must be > 0"),
        (lambda: DoublePendulum(m1=1.0, m2=1.0, l1=1.0, l2=1.0, b2=-1.0), "parameter 'b2' must be >= 0"),
        (lambda: AdvectionDiffusion(D=0.0), "parameter 'D' must be > 0"),
        (lambda: AdvectionDiffusion(D=0.1, n_grid=2), "n_grid must be an int >= 3"),
        (lambda: AdvectionDiffusion(D=0.1, dx=-0.1), "dx must be a positive number"),
    ],
)
def test_bad_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_non_numeric_parameter_raises():
    with pytest.raises(TypeError, match="real number"):
        Pendulum(m=jnp.array([True]), L=1.0)


def test_pendulum_observation_modes():
    y = jnp.array([0.3, 0.0])
    model = Pendulum(m=1.0, L=2.0, observe_mode="both")
    np.testing.assert_allclose(model.observe(0.0, y), [0.3, 2 * np.sin(0.3), -2 * np.cos(0.3)])
    assert model.obs_names == ("theta", "x", "y")


def test_double_pendulum_positions():
    model = DoublePendulum(m1=1.0, m2=1.0, l1=1.0, l2=0.5, observe_mode="position")
    obs = model.observe(0.0, jnp.array([np.pi / 2, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(obs, [1.0, 0.0, 1.0, -0.5], atol=1e-15)


def test_advection_diffusion_initial_state_and_grid():
    model = AdvectionDiffusion(D=0.05, n_grid=11, dx=0.2)
    u0 = model.initial_state(1.5)
    assert u0.shape == (11,)
    np.testing.assert_allclose([u0[0], u0[-1]], 0.0, atol=1e-15)
    np.testing.assert_allclose(u0[5], 1.5)
    assert model.grid[-1] == pytest.approx(2.0)


def test_models_are_pytrees_with_params_as_leaves():
    model = Pendulum(m=1.0, L=2.0, b=0.1, observe_mode="both")
    leaves = jax.tree.leaves(model)
    assert len(leaves) == 4  # observe_mode is static
    assert jaxid.Pendulum.unit_of("b") == "N m s"
