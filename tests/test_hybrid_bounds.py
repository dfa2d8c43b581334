"""The Bayes reference of the hybrid models' physics latent (:func:`jaxid.hybrid.zp_posterior`):
the exact posterior of ``z_p`` by quadrature, checked against the Cramer-Rao bound computed by
another route (forward-mode sensitivities, :func:`jaxid.hybrid.zp_bound`) and against SciPy's
truncated normal for a prior narrower than the data's information."""

import jax
import numpy as np
import pytest
from scipy import stats

from jaxid.hybrid import get_system, make_hybrid_data, shifted_ranges, zp_bound, zp_posterior


@pytest.fixture(scope="module")
def pendulum_data():
    return make_hybrid_data(
        "pendulum",
        key=jax.random.key(0),
        tasks=1,
        per_task=2,
        val_tasks=1,
        test_tasks=1,
        ood_tasks=2,
        ood_width=0.5,
        progress=False,
    )


@pytest.fixture(scope="module")
def pendulum_test_split(pendulum_data):
    return pendulum_data.test


@pytest.fixture(scope="module")
def pendulum_ood_split(pendulum_data):
    return pendulum_data.ood


@pytest.fixture(scope="module")
def posterior(pendulum_test_split):
    return zp_posterior("pendulum", pendulum_test_split, nodes=1001)


def test_zp_posterior_sd_is_the_cramer_rao_bound_where_the_data_are_informative(
    pendulum_test_split, posterior
):
    """The pendulum's 50 noisy samples fix omega to about 0.1 % of its prior range: the posterior
    is then nearly Gaussian with the inverse Fisher information as variance (Bernstein-von Mises),
    so its sd by quadrature must match sqrt(CRB) from the sensitivities (to 5 %: the likelihood is
    not exactly Gaussian over the posterior's width; a wrong weight or a missed mode is off by far
    more); the mean must lie within a few sd of the truth (beyond 4.5 sd: probability 7e-6)."""
    post = posterior
    crb = zp_bound("pendulum", pendulum_test_split)
    assert post.sd.shape == post.truth.shape == (2,)
    np.testing.assert_allclose(post.sd, np.sqrt(crb.variances), rtol=0.05)  # within 0.04 % measured
    assert np.all(np.abs(post.mean - post.truth) < 4.5 * post.sd)


def test_zp_posterior_on_the_ood_split_under_its_shifted_prior(pendulum_ood_split):
    """The OOD split's omega lie beyond the ID range: the ID prior is refused, the shifted range
    (how the split was drawn) gives posteriors whose sd is sqrt(CRB) and whose means lie within
    4.5 sd of the truths (measured: 0.22 to 3.68 sd; the last a noise draw that favours another
    omega by 6.7 in log-likelihood, checked by simulating both)."""
    sys = get_system("pendulum")
    with pytest.raises(ValueError, match="outside prior_range"):
        zp_posterior(sys, pendulum_ood_split, nodes=1001)
    prior = shifted_ranges(sys.physics_ranges, 0.5)[0]
    post = zp_posterior(sys, pendulum_ood_split, prior_range=prior, nodes=1001)
    assert post.prior_range == prior and post.truth.shape == (4,)
    ratio = post.sd / np.sqrt(zp_bound(sys, pendulum_ood_split).variances)
    np.testing.assert_allclose(ratio, 1.0, rtol=0.05)  # 0.992 to 1.002 measured
    assert np.all(np.abs(post.mean - post.truth) < 4.5 * post.sd)


def test_zp_posterior_on_a_narrow_prior_is_the_wide_posterior_truncated(pendulum_test_split, posterior):
    """A prior one posterior sd wide around the truth: the posterior is the (Gaussian) posterior
    of the wide prior cut to that window, whose mean and sd SciPy's ``truncnorm`` gives in closed
    form; the quadrature on the window must find them. (The wide posterior is itself checked
    against the CRB above; this checks how the prior cuts it.)"""
    m, sd, truth = posterior.mean[0], posterior.sd[0], posterior.truth[0]
    lo, hi = truth - 0.5 * sd, truth + 0.5 * sd
    post = zp_posterior("pendulum", pendulum_test_split.first(1), prior_range=(lo, hi), nodes=201)
    cut = stats.truncnorm((lo - m) / sd, (hi - m) / sd, loc=m, scale=sd)
    assert post.mean[0] == pytest.approx(cut.mean(), abs=0.01 * sd)
    assert post.sd[0] == pytest.approx(cut.std(), rel=0.02)
    assert cut.std() < 0.35 * sd  # the window, not the data, sets the width here


def test_zp_posterior_refuses_a_prior_that_excludes_the_truth_and_too_coarse_a_grid(pendulum_test_split):
    truth = pendulum_test_split.flat("z_p")[:, 0]
    with pytest.raises(ValueError, match="outside prior_range"):
        zp_posterior("pendulum", pendulum_test_split, prior_range=(truth.max() + 0.1, 3.5))
    with pytest.raises(ValueError, match="nodes must be an int >= 101"):
        zp_posterior("pendulum", pendulum_test_split, nodes=10)
    with pytest.raises(ValueError, match="under 6; pass more nodes"):
        zp_posterior("pendulum", pendulum_test_split, nodes=101)
