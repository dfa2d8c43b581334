"""Bad input to jaxid.identify and the profile likelihood's convergence contract."""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxid
from jaxid.identify import Experiment, fisher_information, profile_likelihood

TS = jnp.linspace(0.0, 2.0, 20)


def decay(theta):
    return theta[0] * jnp.exp(-theta[1] * TS)


@pytest.mark.parametrize(
    "fn, error, match",
    [
        (lambda p: p[0] * p[2] * TS, ValueError, r"indexes past the end of its parameter vector"),
        (lambda p: (p[0] * TS, p[1] * TS), TypeError, "must return one array of observations, got a tuple"),
        (lambda p: jnp.arange(3), TypeError, "must return a floating-point array, got dtype int"),
        (lambda p: p * float(p[0]), TypeError, "must be traceable by JAX and differentiable in forward mode"),
    ],
)
def test_user_functions_are_checked_before_compilation(fn, error, match):
    with pytest.raises(error, match=f"fisher_information: the function of experiment 'experiment' {match}"):
        fisher_information(Experiment(fn, 0.1), np.array([1.0, 2.0]))


def test_more_values_than_the_function_reads():
    with pytest.raises(ValueError, match=r"do not depend on theta\[2\] at all"):
        fisher_information(Experiment(decay, 0.1), np.array([1.0, 1.0, 3.0]))


def test_non_finite_results_raise_the_shared_type():
    e = Experiment(lambda p: jnp.log(p[0] - 2.0) * TS, 0.1)
    with pytest.raises(jaxid.NonFiniteError, match="non-finite observations at theta"):
        fisher_information(e, np.array([1.0, 1.0]))
    assert issubclass(jaxid.NonFiniteError, FloatingPointError) and issubclass(
        jaxid.NonFiniteError, ValueError
    )


@pytest.fixture(scope="module")
def decay_profiles():
    e = Experiment(decay, 0.01, param_names=("a", "b"))
    theta = np.array([1.0, 1.0])
    return {ms: profile_likelihood(e, theta, points=5, max_steps=ms) for ms in (0, 1, 100)}


def test_max_steps_zero_classifies_nothing(decay_profiles):
    for pr in decay_profiles[0]:
        assert not pr.converged[[0, 1, 3, 4]].any()
        assert pr.classification == "undecided"
        assert np.all(np.isnan(pr.interval))


def test_unconverged_points_never_decide(decay_profiles):
    # The converged run is the reference: a exp(-b t) with 1 % noise pins both parameters.
    for pr in decay_profiles[100]:
        assert pr.converged.all() and pr.classification == "identifiable"
    for pr, ref in zip(decay_profiles[1], decay_profiles[100], strict=True):
        if pr.classification == "undecided":
            assert not pr.converged.all()
            continue
        # a decided profile was decided by converged points, and agrees with the converged run
        assert pr.classification == ref.classification
        ok = pr.converged
        np.testing.assert_allclose(pr.delta_chi2[ok], ref.delta_chi2[ok], rtol=1e-6)
