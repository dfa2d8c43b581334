"""SBC ranks, their uniformity test and expected coverage: hand-computed cases, and a conjugate
normal model whose exact posterior is calibrated, shrunk (over-confident) or widened
(under-confident)."""

import jax
import numpy as np
import pytest
from scipy import stats

from jaxid.inference import (
    DEFAULT_LEVELS,
    calibrate,
    expected_coverage,
    gaussian_samples,
    rank_uniformity,
    sbc_ranks,
)


def test_ranks_against_a_hand_computed_example():
    theta = np.array([[0.5, 2.0], [10.0, -1.0]])
    samples = np.array(
        [
            [[0.1, 3.0], [0.7, 1.0], [0.2, 2.5]],  # below 0.5: 0.1, 0.2; below 2.0: 1.0
            [[1.0, 0.0], [2.0, 0.5], [3.0, 1.5]],  # all below 10; none below -1
        ]
    )
    np.testing.assert_array_equal(np.asarray(sbc_ranks(theta, samples)), [[2, 1], [3, 0]])


def test_coverage_against_a_hand_computed_example():
    # Samples 1, 2, 3 (S = 3): the q quantile sits at position 4 q (1-based) between order
    # statistics. Level 0.5 -> positions 1 and 3 -> [1, 3]; level 0.4 -> 1.2 and 2.8 -> [1.2, 2.8].
    samples = np.array([[[1.0], [3.0], [2.0]]] * 4)
    theta = np.array([[2.5], [2.9], [1.1], [3.5]])
    cov = np.asarray(expected_coverage(theta, samples, (0.4, 0.5)))
    np.testing.assert_allclose(cov, [[1 / 4], [3 / 4]])  # 0.4: only 2.5; 0.5: 2.5, 2.9, 1.1


def test_rank_uniformity_against_scipy_chisquare():
    ranks = np.array([[0], [1], [1], [2], [3], [3], [3], [0], [2], [1]])
    # S = 3, 3 bins of the ranks 0..3: {0, 1}, {2}, {3} with probabilities 1/2, 1/4, 1/4.
    chi2, p = rank_uniformity(ranks, 3, bins=3)
    ref = stats.chisquare([5, 2, 3], [5.0, 2.5, 2.5])
    np.testing.assert_allclose(chi2, [ref.statistic])
    np.testing.assert_allclose(p, [ref.pvalue])


def test_gaussian_samples_have_the_given_moments():
    mean = np.array([[1.0, -2.0], [0.0, 5.0]])
    sd = np.array([[0.5, 2.0], [1.0, 0.1]])
    n = 20_000
    s = np.asarray(gaussian_samples(mean, sd, n, key=jax.random.key(1)))
    assert s.shape == (2, n, 2)
    # Sample mean within 4 standard errors sd/sqrt(n); sample sd within 4 of its standard error
    # sd/sqrt(2 n) (normal data).
    assert np.all(np.abs(s.mean(1) - mean) < 4 * sd / np.sqrt(n))
    assert np.all(np.abs(s.std(1) - sd) < 4 * sd / np.sqrt(2 * n))


N, S = 2000, 99  # records, posterior samples per record
MU0, SD0 = np.array([1.0, -3.0]), np.array([2.0, 0.5])  # prior of the two parameters
NOISE, M = 1.5, 4  # M observations per record, noise sd


@pytest.fixture(scope="module")
def conjugate():
    """theta ~ N(MU0, SD0^2); x_1..x_M ~ N(theta, NOISE^2); the exact posterior is normal with
    variance 1/(1/SD0^2 + M/NOISE^2) and mean var (MU0/SD0^2 + sum x / NOISE^2)."""
    rng = np.random.default_rng(0)
    theta = MU0 + SD0 * rng.normal(size=(N, 2))
    x = theta[:, None, :] + NOISE * rng.normal(size=(N, M, 2))
    var = 1 / (1 / SD0**2 + M / NOISE**2)
    mean = var * (MU0 / SD0**2 + x.sum(1) / NOISE**2)
    return theta, mean, np.broadcast_to(np.sqrt(var), mean.shape)


def _coverage_of_scaled(levels, c):
    """Coverage of central intervals of N(m, (c s)^2) for theta ~ N(m, s^2)."""
    z = stats.norm.ppf((1 + np.asarray(levels)) / 2)
    return 2 * stats.norm.cdf(c * z) - 1


@pytest.mark.parametrize("c", [1.0, 0.5, 2.0])  # exact, over-confident, under-confident
def test_conjugate_normal_calibration(conjugate, c):
    theta, mean, sd = conjugate
    samples = gaussian_samples(mean, c * sd, S, key=jax.random.key(2))
    res = calibrate(theta, samples, names=("a", "b"))
    assert res.ranks.shape == (N, 2) and res.ranks.min() >= 0 and res.ranks.max() <= S
    assert res.bins == 20  # N/20 = 100 bins would be allowed; capped at 20 (100 records a bin)
    sd_cov = np.sqrt(res.levels * (1 - res.levels) / N)[:, None]  # binomial sd, 0.005..0.011
    np.testing.assert_allclose(res.coverage_sd[:, None], sd_cov)
    # The coverage of posterior samples scaled by c is 2 Phi(c z_alpha) - 1 (= alpha at c = 1),
    # up to the binomial error sqrt(p (1 - p) / N) over N records at that coverage p: 4 sd over
    # 19 levels x 2 parameters.
    expected = _coverage_of_scaled(res.levels, c)[:, None]
    sd_p = np.sqrt(expected * (1 - expected) / N)
    assert np.all(np.abs(res.coverage - expected) < 4 * sd_p), np.abs(res.coverage - expected) / sd_p
    if c == 1.0:
        # Uniform ranks: with a fixed seed the p-values are fixed numbers; 0.01 would flag a
        # correct posterior 1 % of the time.
        assert np.all(res.pvalue > 0.01), res.pvalue
        assert np.all(res.max_coverage_error() < 4)
    else:
        # 2000 records see a factor of 2 in the spread beyond doubt (U or hump-shaped ranks).
        assert np.all(res.pvalue < 1e-10), res.pvalue
        assert np.all(res.max_coverage_error() > 10)
        # Over-confidence: every interval covers less than its level; under-: more.
        assert np.all((res.coverage < res.levels[:, None]) == (c < 1))


def test_biased_posterior_is_flagged(conjugate):
    theta, mean, sd = conjugate
    res = calibrate(theta, gaussian_samples(mean + sd, sd, S, key=jax.random.key(3)))
    assert res.names == ("theta0", "theta1")
    assert np.all(res.pvalue < 1e-10)
    # Shifted by one sd: ranks pile up low (true values below most samples).
    assert np.all(np.mean(res.ranks < S / 4, axis=0) > 0.5)


def test_plot(conjugate):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    theta, mean, sd = conjugate
    res = calibrate(theta[:200], gaussian_samples(mean[:200], sd[:200], 39, key=jax.random.key(4)))
    fig = res.plot()
    assert len(fig.axes) == 3
    plt.close(fig)


def test_bad_input_gives_clear_errors():
    theta = np.zeros((5, 2))
    samples = np.zeros((5, 9, 2))
    with pytest.raises(ValueError, match=r"samples must have shape \(5, sample, 2\)"):
        sbc_ranks(theta, samples[:, :, :1])
    with pytest.raises(ValueError, match="theta_true must have shape"):
        expected_coverage(theta[0], samples)
    with pytest.raises(ValueError, match="finite"):
        sbc_ranks(np.full((5, 2), np.nan), samples)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        expected_coverage(theta, samples, (0.5, 1.0))
    with pytest.raises(ValueError, match=r"9 samples per record resolve central intervals up to level 0\.8"):
        expected_coverage(theta, samples, DEFAULT_LEVELS)
    with pytest.raises(ValueError, match="3 names"):
        calibrate(theta, samples, names=("a", "b", "c"), levels=(0.5,))
    with pytest.raises(ValueError, match=r"ranks must be integers in 0\.\.9"):
        rank_uniformity(np.full((5, 2), 10), 9)
    with pytest.raises(ValueError, match=r"bins must be an int in 2\.\.10"):
        rank_uniformity(np.zeros((5, 2), int), 9, bins=11)
    with pytest.raises(ValueError, match="mean and sd must have the same shape"):
        gaussian_samples(theta, theta[:, :1], 3, key=jax.random.key(0))
