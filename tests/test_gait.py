"""The gait finder: fixed points of the mid-stance return map, for the reference gait and the priors."""

import jax
import numpy as np
import pytest

from jaxid import Walker, find_gait
from jaxid.gait import return_map


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
    out, t_step, foot, status = return_map(one, np.asarray([gait.height[0], gait.vx[0], gait.vy[0]]))
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
