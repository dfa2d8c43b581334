"""Bad input to jaxid.sensitivity."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxid import sensitivity as sa

TS = jnp.linspace(0.0, 1.0, 4)
BOUNDS = {"a": (0.5, 1.0), "b": (1.0, 2.0)}


def test_function_reading_past_its_parameters():
    with pytest.raises(ValueError, match=r"sobol_indices: fn indexes past the end .*index 2 is out"):
        sa.sobol_indices(lambda p: p[0] * p[2] * TS, BOUNDS, 8)
    with pytest.raises(ValueError, match="local_sensitivity: fn indexes past the end"):
        sa.local_sensitivity(lambda p: p[0] * p[2] * TS, np.array([1.0, 2.0]))


def test_tuple_integer_and_untraceable_outputs():
    with pytest.raises(TypeError, match="dgsm: fn must return one array of observations, got a tuple"):
        sa.dgsm(lambda p: (p[0], p[1]), BOUNDS, 8)
    with pytest.raises(TypeError, match="morris_effects: fn must return a floating-point array"):
        sa.morris_effects(lambda p: jnp.arange(3), BOUNDS, 4)
    with pytest.raises(TypeError, match="local_sensitivity: fn must be traceable"):
        sa.local_sensitivity(lambda p: p * float(p[0]), np.array([1.0, 2.0]))


def test_host_callback_is_named():
    import jax

    def fn(p):
        return jax.pure_callback(lambda x: np.asarray(x) * 2, jax.ShapeDtypeStruct(p.shape, p.dtype), p)

    with pytest.raises(TypeError, match=r"local_sensitivity: fn must be traceable .* host callback"):
        sa.local_sensitivity(fn, np.array([1.0, 2.0]))


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(bootstrap=0), "bootstrap must be an int >= 2"),
        (dict(bootstrap=-5), "bootstrap must be an int >= 2"),
        (dict(level=0), "level must be a positive number"),
        (dict(level=1.0), r"level must lie in \(0, 1\)"),
    ],
)
def test_sobol_options(options, match):
    with pytest.raises(ValueError, match=f"sobol_indices: {match}"):
        sa.sobol_indices(lambda p: p[0] * TS, BOUNDS, 8, **options)
