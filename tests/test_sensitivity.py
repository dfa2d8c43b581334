"""Sensitivity analysis: closed forms (Ishigami, linear), SALib on the same samples, DGSM, Morris,
local coefficients and bad input."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxid import sensitivity as sa

A, B = 7.0, 0.1
PI = np.pi
ISHIGAMI_BOUNDS = {"x1": (-PI, PI), "x2": (-PI, PI), "x3": (-PI, PI)}


def ishigami(x):
    return jnp.sin(x[0]) + A * jnp.sin(x[1]) ** 2 + B * x[2] ** 4 * jnp.sin(x[0])


def ishigami_exact():
    """Closed forms (Ishigami and Homma 1990; Sobol and Levitan 1999)."""
    v1 = B * PI**4 / 5 + B**2 * PI**8 / 50 + 0.5
    v2 = A**2 / 8
    v13 = B**2 * PI**8 * (1 / 18 - 1 / 50)
    v = v1 + v2 + v13
    return np.array([v1, v2, 0.0]) / v, np.array([v1 + v13, v2, v13]) / v


@pytest.fixture(scope="module")
def ishigami_indices():
    return sa.sobol_indices(ishigami, ISHIGAMI_BOUNDS, 2**13, seed=1, bootstrap=300, level=0.99)


def test_ishigami_indices_match_closed_forms_within_the_bootstrap_interval(ishigami_indices):
    s1, st = ishigami_exact()
    r = ishigami_indices
    # 99 % intervals with a fixed seed: deterministic; the closed forms must lie inside.
    assert np.all(r.S1_ci[0] <= s1) and np.all(s1 <= r.S1_ci[1]), (r.S1, r.S1_ci, s1)
    assert np.all(r.ST_ci[0] <= st) and np.all(st <= r.ST_ci[1]), (r.ST, r.ST_ci, st)
    np.testing.assert_allclose(r.S1, s1, atol=0.03)
    np.testing.assert_allclose(r.ST, st, atol=0.03)
    assert "| x1 |" in r.table()


def test_linear_model_indices_are_normalised_squared_coefficients():
    c = np.array([1.0, 2.0, 3.0, 0.5])
    r = sa.sobol_indices(lambda x: jnp.dot(jnp.asarray(c), x), {f"p{i}": (0.0, 1.0) for i in range(4)}, 2**12)
    np.testing.assert_allclose(r.S1, c**2 / np.sum(c**2), atol=0.01)
    np.testing.assert_allclose(r.ST, c**2 / np.sum(c**2), atol=0.01)


def test_same_samples_same_indices_as_salib():
    from SALib.analyze import sobol as salib_analyze
    from SALib.sample import sobol as salib_sample

    problem = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-PI, PI]] * 3}
    x = salib_sample.sample(problem, 1024, calc_second_order=False, seed=3)
    y = sa.evaluate(ishigami, x)
    ref = salib_analyze.analyze(problem, y, calc_second_order=False, num_resamples=10, seed=3)
    # SALib's layout: blocks of d + 2 rows per base sample: A, AB_1..AB_d, B.
    blocks = y.reshape(-1, 5)
    ours = sa.indices_from_evaluations(blocks[:, 0], blocks[:, 4], blocks[:, 1:4].T, bootstrap=10)
    np.testing.assert_allclose(ours.S1, ref["S1"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.ST, ref["ST"], rtol=1e-10, atol=1e-12)


def test_time_resolved_indices_have_the_output_shape():
    ts = jnp.linspace(0.0, 1.0, 5)
    r = sa.sobol_indices(lambda p: p[0] * ts + p[1] * ts**2, {"a": (0, 1), "b": (0, 1)}, 2**9, bootstrap=20)
    assert r.S1.shape == (2, 5) and r.ST_ci.shape == (2, 2, 5)
    assert r.constant.tolist() == [True, False, False, False, False]  # y(0) = 0 for all samples
    assert np.all(r.ST[:, 0] == 0) and np.all(np.isfinite(r.ST_ci))
    # At t = 1 both terms have the same spread: equal shares; for small t, a dominates.
    np.testing.assert_allclose(r.ST[:, -1], [0.5, 0.5], atol=0.03)
    assert r.ST[0, 1] > r.ST[1, 1]


def test_dgsm_of_a_linear_model_and_its_sobol_bound(ishigami_indices):
    c = np.array([1.0, -2.0, 0.0])
    d = sa.dgsm(lambda x: jnp.dot(jnp.asarray(c), x), {"p": (0, 1), "q": (0, 2), "r": (0, 1)}, 256)
    np.testing.assert_allclose(d.nu, c**2, rtol=1e-12)  # the gradient is constant
    # V = c_p^2/12 + c_q^2 * 4/12; bound (b - a)^2 nu / (pi^2 V).
    v = 1 / 12 + 4 * 4 / 12
    np.testing.assert_allclose(d.st_upper_bound, np.array([1, 4, 1]) * c**2 / (PI**2 * v), rtol=0.05)
    dg = sa.dgsm(ishigami, ISHIGAMI_BOUNDS, 2**12)
    assert np.all(dg.st_upper_bound >= ishigami_indices.ST - 0.02)


def test_morris_effects_of_a_linear_model():
    c = np.array([2.0, -1.0, 0.0])
    m = sa.morris_effects(lambda x: jnp.dot(jnp.asarray(c), x), {"p": (0, 1), "q": (0, 3), "r": (0, 1)}, 20)
    # Per unit of the normalised input: c_i times the range width, the same on every trajectory.
    np.testing.assert_allclose(m.mu, c * np.array([1, 3, 1]), atol=1e-12)
    np.testing.assert_allclose(m.mu_star, np.abs(c) * np.array([1, 3, 1]), atol=1e-12)
    np.testing.assert_allclose(m.sigma, 0.0, atol=1e-12)
    ish = sa.morris_effects(ishigami, ISHIGAMI_BOUNDS, 100)
    assert ish.mu_star[1] > ish.mu_star[2] and ish.sigma[2] > 0  # x3 acts only through x1


def test_local_coefficients_of_an_exponential_decay():
    ts = jnp.linspace(0.0, 2.0, 9)
    r = sa.local_sensitivity(lambda p: p[0] * jnp.exp(-p[1] * ts), jnp.array([2.0, 0.5]), ("A", "k"))
    np.testing.assert_allclose(r.coefficients[:, 0], 1.0, rtol=1e-12)  # d log y / d log A
    np.testing.assert_allclose(r.coefficients[:, 1], -0.5 * np.asarray(ts), atol=1e-12)
    assert not r.mask.any()
    fig = r.plot(ts)
    assert fig is not None


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"bounds\['b'\] = \(1.0, 1.0\).*zero-width"):
        sa.sobol_indices(ishigami, {"a": (0, 1), "b": (1, 1), "c": (0, 1)}, 64)
    with pytest.raises(ValueError, match=r"non-finite outputs .* the first at"):
        sa.sobol_indices(lambda x: jnp.log(x[0]), {"a": (-1.0, 1.0)}, 64)
    with pytest.raises(ValueError, match="levels must be an even int"):
        sa.morris_effects(ishigami, ISHIGAMI_BOUNDS, 10, levels=3)
    with pytest.raises(ValueError, match="theta must be a 1-D array of positive values"):
        sa.local_sensitivity(ishigami, jnp.array([-1.0, 1.0, 1.0]))


@pytest.mark.slow
def test_walker_mass_has_no_kinematic_sensitivity_at_fixed_k_over_m():
    """The walker parameterised as (k/m, m, l0), started near its gait (speeds interpolated from a
    table of dimensionless gaits, a function of k l0/(m g) = (k/m) l0/g and l0 only): m changes no
    CoM position, so its total Sobol index and DGSM vanish for (x, y), but not for the forces."""
    import math

    import jaxid
    from jaxid.walker.data import TABLE_DT, _gait_table

    g, alpha0 = 9.81, math.radians(69.0)
    table = _gait_table((6.0, 14.0), alpha0, g, 0.94, TABLE_DT)
    order = np.argsort(table.nodes)
    ks, vx_t, vy_t = (jnp.asarray(v[order]) for v in (table.nodes, table.values[:, 0], table.values[:, 1]))
    ts = jnp.linspace(0.0, 1.0, 11)[1:]

    def observe(p):
        rho, m, l0 = p[0], p[1], p[2]
        w = jaxid.Walker(m=m, k=rho * m, l0=l0, channels=("x", "y", "grf_x", "grf_y"))
        kk, scale = rho * l0 / g, jnp.sqrt(g * l0)
        y0 = w.initial_state(0.94 * l0, jnp.interp(kk, ks, vx_t) * scale, jnp.interp(kk, ks, vy_t) * scale)
        return jaxid.simulate(w, y0, jnp.concatenate([jnp.zeros(1), ts])).obs[1:]

    bounds = {"k/m": (130.0, 160.0), "m": (60.0, 75.0), "l0": (0.65, 0.8)}
    s = sa.sobol_indices(observe, bounds, 32, bootstrap=20)
    kin, forces = s.ST[:, :, :2], s.ST[:, :, 2:]
    assert np.max(np.abs(kin[1])) < 1e-8  # m: exactly no effect on (x, y)
    assert np.max(kin[0]) > 0.1 and np.max(kin[2]) > 0.1
    assert np.max(forces[1]) > 0.3  # forces are in newtons: they scale with m
    dg = sa.dgsm(observe, bounds, 8)
    nu_kin = dg.nu[:, :, :2].reshape(3, -1).max(1)
    assert nu_kin[1] < 1e-12 * nu_kin[0]
    assert dg.nu[1, :, 2:].max() > 1e-6


def test_reverse_mode_only_functions_get_a_hint():
    import jaxid

    def theta(p):  # jaxid.simulate's default adjoint is reverse mode only
        return jaxid.simulate(
            jaxid.Pendulum(m=p[0], L=1.0, b=0.1), jnp.array([0.5, 0.0]), jnp.linspace(0, 1, 5)
        ).obs[:, 0]

    with pytest.raises(TypeError, match=r"adjoint=diffrax\.ForwardMode"):
        sa.local_sensitivity(theta, jnp.array([1.0]))


SHARDED_SCRIPT = """
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
from jaxid import sensitivity as sa
f = lambda x: jnp.sin(x[0]) + 7 * jnp.sin(x[1]) ** 2 + 0.1 * x[2] ** 4 * jnp.sin(x[0])
b = {"x1": (-3.0, 3.0), "x2": (-3.0, 3.0), "x3": (-3.0, 3.0)}
assert len(jax.devices()) == 2
one = sa.sobol_indices(f, b, 256, chunk_size=100, devices=jax.devices()[:1], bootstrap=10)
two = sa.sobol_indices(f, b, 256, chunk_size=100, devices=jax.devices(), bootstrap=10, progress=True)
np.testing.assert_allclose(one.ST, two.ST, rtol=1e-12)
np.testing.assert_allclose(one.S1_ci, two.S1_ci, rtol=1e-12)
print("SHARDED-OK")
"""


def test_chunked_evaluation_sharded_over_two_devices_matches_one():
    import os
    import subprocess
    import sys

    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SHARDED_SCRIPT], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SHARDED-OK" in proc.stdout
