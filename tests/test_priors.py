"""Priors against scipy.stats: densities, draws and supports."""

import jax
import numpy as np
import pytest
import scipy.stats as ss

from jaxid.priors import LogNormal, LogUniform, Normal, Prior, Uniform, as_prior

CASES = [
    (Uniform(2.0, 5.0), ss.uniform(2.0, 3.0)),
    (LogUniform(1.0, 100.0), ss.loguniform(1.0, 100.0)),
    (Normal(1.0, 2.0), ss.norm(1.0, 2.0)),
    (Normal(1.0, 2.0, low=0.0, high=4.0), ss.truncnorm(-0.5, 1.5, loc=1.0, scale=2.0)),
    (Normal(0.0, 1.0, low=3.0), ss.truncnorm(3.0, np.inf)),  # far tail: the mass is 1.3e-3
    (LogNormal(0.5, 0.4), ss.lognorm(0.4, scale=np.exp(0.5))),
]


@pytest.mark.parametrize(("dist", "ref"), CASES, ids=[repr(c[0]) for c in CASES])
def test_log_prob_matches_scipy(dist, ref):
    x = np.asarray(ref.rvs(size=50, random_state=1))
    np.testing.assert_allclose(np.asarray(dist.log_prob(x)), ref.logpdf(x), rtol=1e-10, atol=1e-12)
    lo, hi = dist.support
    for v in (lo - 1.0, hi + 1.0):
        if np.isfinite(v):
            assert float(dist.log_prob(np.array(v))) == -np.inf


@pytest.mark.parametrize(("dist", "ref"), CASES, ids=[repr(c[0]) for c in CASES])
def test_draws_follow_the_distribution(dist, ref):
    x = np.asarray(dist.sample(jax.random.key(3), 4000))
    lo, hi = dist.support
    assert np.all((x >= lo) & (x <= hi))
    # Kolmogorov-Smirnov against scipy's CDF: a wrong scale, shift or truncation gives p << 1e-3
    assert ss.kstest(x, ref.cdf).pvalue > 1e-3


def test_truncated_lognormal_against_scipy():
    d = LogNormal(0.0, 1.0, low=0.5, high=3.0)
    a, b = np.log(0.5), np.log(3.0)
    ref = ss.truncnorm(a, b)  # of log(theta), then the Jacobian 1/theta
    x = np.linspace(0.6, 2.9, 7)
    np.testing.assert_allclose(np.asarray(d.log_prob(x)), ref.logpdf(np.log(x)) - np.log(x), rtol=1e-10)


def test_prior_of_a_box_is_uniform_and_ordered():
    prior = as_prior({"k": (1.0, 3.0), "m": (10.0, 20.0)}, names=("m", "k"))
    assert prior.names == ("m", "k")
    np.testing.assert_allclose(prior.log_prob(np.array([15.0, 2.0])), -np.log(10.0) - np.log(2.0))
    assert prior.log_prob(np.array([25.0, 2.0])) == -np.inf
    theta = np.asarray(prior.sample(jax.random.key(0), 2000))
    assert theta.shape == (2000, 2)
    # four standard errors of the mean of a uniform: width / sqrt(12 n)
    assert np.all(np.abs(theta.mean(axis=0) - [15.0, 2.0]) < 4 * np.array([10, 2]) / np.sqrt(12 * 2000))
    mean, sd = prior.mean_sd()
    np.testing.assert_allclose(mean, [15.0, 2.0])
    np.testing.assert_allclose(sd, [10 / np.sqrt(12), 2 / np.sqrt(12)])
    assert prior.boxes() == {"m": (10.0, 20.0), "k": (1.0, 3.0)}


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="low < high"):
        Uniform(3.0, 1.0)
    with pytest.raises(TypeError, match="low must be a real number"):
        Uniform("a", 1.0)
    with pytest.raises(ValueError, match="0 < low"):
        LogUniform(0.0, 1.0)
    with pytest.raises(ValueError, match="scale > 0"):
        Normal(0.0, -1.0)
    with pytest.raises(ValueError, match="holds no mass"):
        Normal(0.0, 1.0, low=100.0, high=101.0)
    with pytest.raises(ValueError, match="no prior for"):
        as_prior({"m": (1.0, 2.0)}, names=("m", "k"))
    with pytest.raises(ValueError, match="range for 'm'"):
        Prior({"m": (2.0, 1.0)})
    with pytest.raises(TypeError, match="distribution"):
        Prior({"m": "wide"})
    with pytest.raises(ValueError, match="last axis of 2"):
        Prior({"a": (0.0, 1.0), "b": (0.0, 1.0)}).log_prob(np.zeros(3))
