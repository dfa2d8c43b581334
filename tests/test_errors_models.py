"""Bad input to the models: every case names the argument."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxid


@pytest.mark.parametrize("bad", ["heavy", None, True, 1j])
def test_non_real_parameters_name_the_parameter(bad):
    with pytest.raises(TypeError, match=r"Pendulum: parameter 'm' must be a real number"):
        jaxid.Pendulum(m=bad, L=1.0)
    with pytest.raises(TypeError, match=r"Walker: parameter 'k' must be a real number"):
        jaxid.Walker(m=70.0, k=bad, l0=0.7)


def test_non_finite_options_are_refused():
    with pytest.raises(ValueError, match="AdvectionDiffusion: dx must be finite"):
        jaxid.AdvectionDiffusion(D=0.05, dx=float("inf"))
    with pytest.raises(ValueError, match="Walker: dt must be finite"):
        jaxid.Walker(m=70.0, k=9000.0, l0=0.7, dt=float("inf"))
    with pytest.raises(TypeError, match="Walker: phase_time_limit must be a real number"):
        jaxid.Walker(m=70.0, k=9000.0, l0=0.7, phase_time_limit="2")


def test_invalid_parameters_inside_jit_fail_the_simulation():
    ts, y0 = jnp.linspace(0.0, 1.0, 4), jnp.array([0.1, 0.0])
    run = jax.jit(lambda m, L: jaxid.simulate(jaxid.Pendulum(m=m, L=L), y0, ts).success)
    assert bool(run(1.0, 1.0))
    assert not bool(run(-1.0, 1.0))
    assert not bool(run(1.0, jnp.inf))
    # under vmap only the bad record fails
    ok = jax.vmap(run)(jnp.array([1.0, -1.0]), jnp.array([1.0, 1.0]))
    np.testing.assert_array_equal(np.asarray(ok), [True, False])


def test_invalid_walker_parameters_inside_jit_stop_as_non_finite():
    w = jaxid.Walker(m=70.0, k=9000.0, l0=0.7)
    y0 = w.initial_state(0.66, 1.0)
    run = jax.jit(lambda m: jaxid.simulate(jaxid.Walker(m=m, k=9000.0, l0=0.7), y0, jnp.array([0.0, 0.05])))
    sim = run(-1.0)
    assert not bool(sim.success)
    assert w.status_names[int(sim.status)] == "non-finite state"
    assert int(sim.num_steps) == 0


def test_option_objects_must_be_instances():
    m, y0, ts = jaxid.Pendulum(m=1.0, L=1.0), jnp.array([0.1, 0.0]), jnp.linspace(0, 1, 3)
    with pytest.raises(TypeError, match=r"solver must be a diffrax.AbstractSolver instance.*'tsit5'"):
        jaxid.simulate(m, y0, ts, solver="tsit5")
    with pytest.raises(TypeError, match=r"solver must be .*the class Tsit5 \(not an instance\)"):
        jaxid.simulate(m, y0, ts, solver=diffrax.Tsit5)
    with pytest.raises(TypeError, match="stepsize_controller must be a diffrax"):
        jaxid.simulate(m, y0, ts, stepsize_controller="pid")
    with pytest.raises(TypeError, match="adjoint must be a diffrax"):
        jaxid.simulate(m, y0, ts, adjoint="forward")
