"""The Bayes reference against closed forms: a linear-Gaussian model, a sum degeneracy bounded by
a uniform prior, the walker's scaling ridge against ``scaling_ceiling`` and the pendulum's
two-dimensional ridge against a quadrature."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as ss
from references import pendulum_ridge_moments

import jaxid
from jaxid.identify import Experiment
from jaxid.inference import bayes_risk, sample_posterior
from jaxid.nn import scaling_ceiling
from jaxid.priors import Normal, Prior

# ---------------------------------------------------------------- linear-Gaussian: closed form
A = np.array([[1.0, 0.5], [0.2, 1.0], [1.0, -1.0]])
TS = np.linspace(0.0, 1.0, 4)
DESIGN = np.einsum("ij,t->itj", A, 1.0 + TS).reshape(-1, 2)  # y.ravel() = DESIGN @ theta
NOISE = 0.3
MU0, SD0 = np.array([0.5, -0.2]), np.array([1.0, 0.5])
CALLS = [0]  # Python calls of linear_fn: one per trace under jit (and per eager call)


def linear_fn(theta):
    CALLS[0] += 1
    return (jnp.asarray(A) @ theta)[:, None] * (1.0 + jnp.asarray(TS))[None, :]


def linear_prior():
    return Prior({"a": Normal(MU0[0], SD0[0]), "b": Normal(MU0[1], SD0[1])})


@pytest.fixture(scope="module")
def linear_exp():
    return Experiment(linear_fn, NOISE, param_names=("a", "b"))


@pytest.fixture(scope="module")
def linear_case(linear_exp):
    theta = np.array([[1.2, 0.3], [-0.4, -0.9]])
    rng = np.random.default_rng(0)
    y = np.stack([np.asarray(linear_fn(jnp.asarray(t))) for t in theta])
    y = y + NOISE * rng.normal(size=y.shape)
    post = sample_posterior(linear_exp, y, linear_prior(), key=jax.random.key(0), chains=4, progress=False)
    return post, y, theta


def test_linear_gaussian_mean_and_covariance(linear_case):
    post, y, _ = linear_case
    p0inv = np.diag(1 / SD0**2)
    cov = np.linalg.inv(p0inv + DESIGN.T @ DESIGN / NOISE**2)
    for r in range(y.shape[0]):
        mean = cov @ (p0inv @ MU0 + DESIGN.T @ y[r].ravel() / NOISE**2)
        sd = np.sqrt(np.diag(cov))
        # Monte Carlo error of a mean: sd / sqrt(ESS); of an sd: about sd / sqrt(2 ESS). 4 of them.
        assert np.all(np.abs(post.mean[r] - mean) < 4 * sd / np.sqrt(post.ess[r])), (post.mean[r], mean)
        assert np.all(np.abs(post.sd[r] - sd) < 4 * sd / np.sqrt(2 * post.ess[r])), (post.sd[r], sd)
        emp = np.cov(post.flat_samples[r].T)
        corr, emp_corr = cov[0, 1] / sd.prod(), emp[0, 1] / np.sqrt(np.diag(emp)).prod()
        assert abs(corr - emp_corr) < 0.1, (corr, emp_corr)  # |corr| = 0.37; MC error ~ 0.02
    assert np.all(post.ok) and np.all(post.rhat < 1.05)
    assert post.samples.shape == (2, 4, 1000, 2)
    assert np.all((post.acceptance > 0.15) & (post.acceptance < 0.5))  # adapted towards 0.3
    lo, hi = post.interval(0.9)
    assert np.all(lo < post.mean) and np.all(post.mean < hi)


def test_nuts_agrees_with_the_closed_form(linear_case):
    _, y, _ = linear_case
    exp = Experiment(linear_fn, NOISE, param_names=("a", "b"))
    prior = Prior({"a": Normal(MU0[0], SD0[0]), "b": Normal(MU0[1], SD0[1])})
    nuts = sample_posterior(
        exp, y[:1], prior, key=jax.random.key(5), method="nuts", chains=2, warmup=100, draws=200,
        max_doublings=3, progress=False,
    )  # fmt: skip
    p0inv = np.diag(1 / SD0**2)
    cov = np.linalg.inv(p0inv + DESIGN.T @ DESIGN / NOISE**2)
    mean = cov @ (p0inv @ MU0 + DESIGN.T @ y[0].ravel() / NOISE**2)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(nuts.mean[0] - mean) < 4 * sd / np.sqrt(nuts.ess[0]))
    assert np.all(np.abs(nuts.sd[0] - sd) < 4 * sd / np.sqrt(2 * nuts.ess[0]))
    assert np.isnan(nuts.acceptance[0]) and nuts.divergences[0] == 0


def test_a_second_call_reuses_the_compiled_sampler(linear_case, linear_exp):
    """The sampler is compiled once per experiment function, prior, coordinates and settings: a
    second call with new data, a new key and an equal (new) prior traces the model no more, and
    its samples are those of a fresh compilation (a new function object, the same model)."""
    post, y, _ = linear_case

    def run(exp, y_obs, k):
        return sample_posterior(exp, y_obs, linear_prior(), key=jax.random.key(k), chains=4, progress=False)

    before = CALLS[0]
    again = run(linear_exp, y, 0)
    other = run(linear_exp, y[::-1] + 0.1, 3)
    assert CALLS[0] == before  # no trace: the compiled sampler (and the likelihood check) reused
    np.testing.assert_array_equal(again.samples, post.samples)  # deterministic given the key
    fresh = run(Experiment(lambda th: linear_fn(th), NOISE, param_names=("a", "b")), y[::-1] + 0.1, 3)
    assert CALLS[0] > before  # another function object: compiled anew, not taken from the cache
    np.testing.assert_array_equal(fresh.samples, other.samples)
    assert not np.allclose(other.mean, post.mean)  # other data, other posterior


def test_bayes_risk_and_transform(linear_case):
    post, _, theta = linear_case
    risk = bayes_risk(post, theta)
    np.testing.assert_allclose(risk.mse, ((post.mean - theta) ** 2).mean(0) - risk.mc_variance)
    assert risk.used.sum() == 2 and risk.n_flagged == 0
    total = post.transform(lambda t: t[..., :1] + t[..., 1:], ("a+b",))
    np.testing.assert_allclose(total.mean[:, 0], post.mean.sum(1), rtol=1e-10)
    with pytest.raises(ValueError, match="outside the prior's support"):
        bayes_risk(post.__class__(**{**post.__dict__, "prior": Prior({"a": (0, 1), "b": (0, 1)})}), theta)
    with pytest.raises(ValueError, match=r"theta_true must be \(records, param\)"):
        bayes_risk(post, theta[:1])


def test_chains_chi2_lies_between_least_squares_and_the_median(linear_case):
    post, y, _ = linear_case
    for r in range(y.shape[0]):
        # Independent: ordinary least squares by NumPy, the least chi^2 of any parameters (the fit
        # maximises the likelihood, so it is also the start) ...
        coef, *_ = np.linalg.lstsq(DESIGN, y[r].ravel(), rcond=None)
        rss = np.sum((y[r].ravel() - DESIGN @ coef) ** 2) / NOISE**2
        np.testing.assert_allclose(post.start[r], coef, rtol=1e-6)
        # ... and the chi^2 at the posterior median by hand: the statistic is the least of it and
        # the chains' last draws, each at least the least-squares one (by about chi^2_2 more)
        med = np.median(post.flat_samples[r], axis=0)
        at_median = np.sum((y[r].ravel() - DESIGN @ med) ** 2) / NOISE**2
        assert rss - 1e-9 <= post.chi2[r] <= at_median + 1e-9, (rss, post.chi2[r], at_median)
        assert post.chi2[r] < rss + ss.chi2.ppf(0.999, 2)
        assert post.chi2_pvalue[r] > 1e-3  # data from the model at its noise
    assert post.settings["observations"] == DESIGN.shape[0] and post.ok.all()


# ---------------------------------------------------------------- a missed global mode
def test_a_fit_that_misses_the_global_mode_is_flagged():
    """sin(f t) over 10 s: the likelihood in f has a basin about 0.3 wide every 0.6, over a prior
    of width 9. Started from one prior draw, the fit of most records lands in a side basin whose
    residuals are far above the noise: flagged by the chains' chi^2 whatever R-hat says (on the
    forced damped pendulum preset the chains of such records agreed, R-hat about 1.01); from 512
    draws and 16 fits every record finds the truth."""
    ts = jnp.linspace(0.0, 10.0, 41)
    noise = 0.05
    exp = Experiment(lambda th: th[1] * jnp.sin(th[0] * ts), noise, param_names=("f", "a"))
    prior = {"f": (1.0, 10.0), "a": (0.5, 2.0)}
    theta = np.array([[2.3, 1.0], [4.1, 1.5], [6.7, 0.8], [8.8, 1.2]])
    rng = np.random.default_rng(3)
    y = theta[:, 1:] * np.sin(theta[:, :1] * np.asarray(ts)[None]) + noise * rng.normal(size=(4, 41))
    kw = dict(key=jax.random.key(2), warmup=200, draws=200, coords="linear", progress=False)
    one = sample_posterior(exp, y, prior, starts=1, fits=1, **kw)
    many = sample_posterior(exp, y, prior, starts=512, fits=16, **kw)
    # the statistic is at most the chi^2 at the posterior median (computed here with NumPy)
    for post in (one, many):
        med = np.median(post.flat_samples, axis=1)
        f, a = med[:, :1], med[:, 1:]
        chi2 = np.sum(((a * np.sin(f * np.asarray(ts)[None]) - y) / noise) ** 2, axis=1)
        assert np.all(post.chi2 <= chi2 + 1e-9), (post.chi2, chi2)
    missed = np.abs(one.mean[:, 0] - theta[:, 0]) > 0.1
    assert missed.sum() >= 2, one.mean
    assert np.all(one.chi2_pvalue[missed] < 1e-6) and not one.ok[missed].any()
    assert many.ok.all() and np.all(many.chi2_pvalue > 1e-3)
    np.testing.assert_allclose(many.mean[:, 0], theta[:, 0], atol=4 * noise)


# ---------------------------------------------------------------- a sum degeneracy at small noise
def test_sum_degeneracy_marginal_is_the_uniform_interval():
    ts = jnp.linspace(0.1, 1.0, 10)
    exp = Experiment(lambda th: (th[0] + th[1]) * ts, 1e-3, param_names=("p1", "p2"))
    theta = np.array([[0.3, 0.4], [0.9, 0.6]])
    y = theta.sum(1)[:, None] * np.asarray(ts)[None]
    post = sample_posterior(
        exp, y, {"p1": (0.0, 1.0), "p2": (0.0, 1.0)}, key=jax.random.key(1), progress=False
    )
    for r in range(2):
        s = theta[r].sum()
        lo, hi = max(0.0, s - 1.0), min(1.0, s)  # p1 | p1 + p2 = s under U[0,1]^2 priors
        x = post.flat_samples[r, :, 0]
        assert abs(x.mean() - (lo + hi) / 2) < 4 * (hi - lo) / np.sqrt(12 * post.ess[r, 0])
        assert abs(x.std() - (hi - lo) / np.sqrt(12)) < 0.1 * (hi - lo) / np.sqrt(12)
        # Kolmogorov-Smirnov on draws thinned to about the ESS: uniform on [lo, hi]
        thin = x[:: max(1, int(x.size / post.ess[r, 0]))]
        assert ss.kstest(thin, ss.uniform(lo, hi - lo).cdf).pvalue > 1e-3
        np.testing.assert_allclose(post.flat_samples[r].sum(1), s, atol=5e-3)  # the ridge p1 + p2 = s


# ---------------------------------------------------------------- errors
def test_errors_name_the_argument():
    exp = Experiment(lambda th: th * jnp.ones(3), 0.1, param_names=("a",))
    y = np.ones(3)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="no prior for"):
        sample_posterior(exp, y, {"b": (0.0, 1.0)}, key=key)
    with pytest.raises(ValueError, match=r"y_obs for .* must have shape \(3,\)"):
        sample_posterior(exp, np.ones(4), {"a": (0.0, 2.0)}, key=key)
    with pytest.raises(ValueError, match="non-finite"):
        sample_posterior(exp, np.array([1.0, np.nan, 1.0]), {"a": (0.0, 2.0)}, key=key)
    with pytest.raises(ValueError, match="chains must be an int >= 2"):
        sample_posterior(exp, y, {"a": (0.0, 2.0)}, key=key, chains=1)
    with pytest.raises(ValueError, match="coords='log' needs positive supports"):
        sample_posterior(exp, y, {"a": (-1.0, 2.0)}, key=key, coords="log")
    with pytest.raises(ValueError, match="noise must be finite and > 0"):
        sample_posterior(Experiment(lambda th: th, 0.0, param_names=("a",)), y, {"a": (0, 1)}, key=key)
    nan_exp = Experiment(lambda th: th * jnp.nan * jnp.ones(3), 0.1, param_names=("a",))
    with pytest.raises(FloatingPointError, match="non-finite likelihood at every one of 16 prior draws"):
        sample_posterior(nan_exp, y, {"a": (0.0, 2.0)}, key=key)
    with pytest.raises(TypeError, match="must be a JAX function of theta"):
        sample_posterior(
            Experiment(lambda th: np.asarray(th) * np.ones(3), 0.1, param_names=("a",)),
            y,
            {"a": (0, 2)},
            key=key,
        )


# ---------------------------------------------------------------- the walker's scaling ridge
@pytest.mark.slow
def test_walker_ridge_matches_the_scaling_ceiling_and_force_plates_collapse_it():
    walker = jaxid.Walker(m=80.0, k=20000.0, l0=1.0, channels=("x", "y", "grf_x", "grf_y"))
    y0, ts = walker.initial_state(0.9782, 1.090), jnp.arange(0.0, 0.6, 0.1)  # one step and a half
    prior = {"m": (70.0, 90.0), "k": (17000.0, 23000.0)}
    # kinematics and force plate from one simulation: per-channel noise (x, y in m; forces in N)
    both = Experiment.from_model(walker, y0, ts, noise=[1e-4, 1e-4, 1.0, 1.0], params=("m", "k"))
    # the kinematics alone: the same experiment with forces known to 1e8 N, which carry no
    # information (a force changes by about 1e2 N along the prior: a log-likelihood term of 1e-12).
    # The noise is an array of the experiment, so both posteriors run one compiled sampler.
    kin = eqx.tree_at(lambda e: e.noise, both, jnp.asarray([1e-4, 1e-4, 1e8, 1e8]))
    assert kin.fn is both.fn
    truth = np.array([[72.0, 21000.0]])  # one record: each chain step is a walker simulation
    y_obs = np.stack([np.asarray(both.fn(jnp.asarray(t))) for t in truth])
    short = dict(warmup=400, draws=400, thin=1, progress=False)
    post = sample_posterior(kin, y_obs, prior, key=jax.random.key(0), **short)
    ceiling = scaling_ceiling(truth, [1, 1], prior, ("m", "k"))
    # the posterior mean on the orbit k/m = const is the ceiling, within 4 Monte Carlo errors
    assert np.all(np.abs(post.mean - ceiling) < 4 * post.sd / np.sqrt(post.ess)), (post.mean, ceiling)
    ratio = post.flat_samples[..., 1] / post.flat_samples[..., 0]
    np.testing.assert_allclose(ratio.mean(1), truth[:, 1] / truth[:, 0], rtol=1e-4)
    # spread along the ridge: on the orbit k = r m inside the box the density of m is
    # proportional to m (the ridge's width in k grows with m), on [max(70, 17000/r), min(90, 23000/r)]
    # (sd 2.6 here); 20 % is about four standard errors of an sd from this chain's ESS (> 100), and a
    # chain that had not crossed the ridge would have a far smaller sd
    for n, (m, k) in enumerate(truth):
        grid = np.linspace(max(70.0, 17000 * m / k), min(90.0, 23000 * m / k), 2001)
        sd = np.sqrt(np.average(grid**2, weights=grid) - np.average(grid, weights=grid) ** 2)
        assert post.ess[n, 0] > 100 and abs(post.sd[n, 0] - sd) < 0.2 * sd, (post.sd[n, 0], sd, post.ess)
    with_forces = sample_posterior(both, y_obs, prior, key=jax.random.key(1), **short)
    assert np.all(with_forces.sd[:, 0] < 0.05 * post.sd[:, 0])  # the ridge collapses
    assert np.all(np.abs(with_forces.mean - truth) < 5 * with_forces.sd)


def test_diagnostics_equal_blackjax_and_flag_a_stuck_chain():
    import blackjax

    from jaxid.inference.diagnostics import ess_bulk, rhat

    rng = np.random.default_rng(0)
    x = np.zeros((4, 400))
    for c in range(4):  # AR(1) chains, autocorrelation 0.8: ESS about 1600 (1 - 0.8) / (1 + 0.8)
        e = rng.normal(size=400)
        x[c, 0] = e[0]  # distinct starts: no tied ranks
        for t in range(1, 400):
            x[c, t] = 0.8 * x[c, t - 1] + e[t]
    np.testing.assert_allclose(rhat(x), float(blackjax.diagnostics.rhat(x)), rtol=1e-10)
    # the ESS agrees to 1e-3: the two truncate Geyer's sequence at slightly different lags
    np.testing.assert_allclose(ess_bulk(x), float(blackjax.diagnostics.ess_bulk(x)), rtol=1e-3)
    assert 100 < ess_bulk(x) < 300
    x[1] += 3.0  # one chain elsewhere
    assert rhat(x) > 1.2


def test_compare_verdicts_distances_and_null_angle(linear_case):
    from jaxid.inference import compare, null_axis_angle

    post, _, theta = linear_case
    at_limit = compare(post, theta, samples=post.flat_samples)
    assert np.all(at_limit.wasserstein < 1e-12)  # the same draws: distance 0
    assert set(at_limit.verdicts.values()) <= {"limited by the data", "recovered"}
    shifted = post.flat_samples + post.sd[:, None, :]  # one reference sd to the right
    far = compare(post, theta, samples=shifted)
    np.testing.assert_allclose(far.wasserstein, 1.0, rtol=1e-6)
    flat = compare(post, theta, estimates=np.zeros_like(theta) + theta.mean(0))  # ignores the data
    assert flat.r2.max() < 0.0 + 1e-12 and set(flat.verdicts.values()) == {"limited by learning"}
    with pytest.raises(ValueError, match="exactly one of"):
        compare(post, theta)
    rng = np.random.default_rng(0)
    s = rng.normal(size=(1, 500, 1))
    ridge = np.exp(np.concatenate([s, s + 0.01 * rng.normal(size=s.shape)], axis=-1))  # log m ~ log k
    assert null_axis_angle(ridge, [1, 1])[0] < 2.0
    assert null_axis_angle(ridge, [1, -1])[0] > 88.0


def test_verdict_flags_an_estimator_above_the_bayes_limit():
    """The posterior mean has the least error of any estimator: a learned estimator more than the
    tolerance above the reference's R^2 means the reference failed, not that the data limit it."""
    from jaxid.inference import AT_LIMIT, verdict

    assert verdict(0.9, 0.5) == "above the Bayes limit: reference failed"
    assert verdict(0.5 + 0.9 * AT_LIMIT, 0.5) == "limited by the data"
    assert verdict(0.5 - 0.9 * AT_LIMIT, 0.5) == "limited by the data"
    assert verdict(0.3, 0.5) == "limited by learning"
    # near a limit of 1, within the R^2 tolerance is not enough: the error must also be within
    # MSE_RATIO (2) of the Bayes risk; 1 - R^2 is the error over the variance on the same records
    assert verdict(0.97, 0.9998) == "limited by learning"  # 150 times the least error
    assert verdict(0.93, 0.97) == "limited by learning"  # 0.07 / 0.03: 2.3 times
    assert verdict(0.95, 0.97) == "limited by the data"  # 0.05 / 0.03: 1.7 times
    assert verdict(0.97, 0.9998, mse_ratio=200.0) == "limited by the data"
    # and the other way: less than half the least error is a failed reference, too
    assert verdict(0.98, 0.95) == "above the Bayes limit: reference failed"  # 0.02 / 0.05
    assert verdict(0.975, 0.95) == "limited by the data"  # 0.025 / 0.05: exactly half
    assert verdict(0.995, 0.2) == "recovered"
    assert verdict(0.5, None) == "no limit"


# ---------------------------------------------------------------- the pendulum's two-dimensional ridge
@pytest.mark.slow
def test_pendulum_ridge_posterior_matches_quadrature():
    # From the angle only g/L and b/(L^2 m) are identifiable: a plane in log coordinates through
    # the prior box, cut by the bounds of m and g (and, for the last record, obliquely by b = 0.05),
    # with a density along it that the quadrature above gives. At the study preset's 0.01 rad of
    # noise the pair is known to a few percent, far below the ridge's spread (tens of percent), so
    # the posterior's mean and sd are the quadrature's up to the Monte Carlo error and about a
    # percent. A density without the Jacobian g^3 m / c2^4 would move the means of m and b by about
    # 8 Monte Carlo errors. (At 1e-3 rad the plane is so thin that the random walk's chains of some
    # records mix slowly, ESS 10 to 20 of 2000 draws; R-hat flags those records.)
    from jaxid.models import Pendulum
    from jaxid.priors import LogUniform, Uniform

    model = Pendulum(m=1.0, L=1.0, b=0.1, g=9.8)
    exp = Experiment.from_model(model, jnp.array([0.5, 0.0]), jnp.linspace(0.0, 4.0, 41), noise=0.01)
    prior = Prior(
        {"m": Uniform(0.5, 2.0), "L": Uniform(0.5, 2.0), "b": LogUniform(0.05, 0.5), "g": Uniform(9.0, 10.6)}
    )
    truth = np.array(
        [[0.8, 1.3, 0.12, 9.4], [1.6, 0.7, 0.3, 10.2], [1.2, 1.0, 0.2, 9.8], [1.5, 0.6, 0.06, 9.5]]
    )
    rng = np.random.default_rng(0)
    y_obs = np.stack([np.asarray(exp.fn(jnp.asarray(t))) + 0.01 * rng.normal(size=(41, 1)) for t in truth])
    post = sample_posterior(
        exp, y_obs, prior, key=jax.random.key(3), warmup=500, draws=500, coords="log", progress=False
    )
    assert post.ok.all(), post.rhat
    for r, t in enumerate(truth):
        mean, sd = pendulum_ridge_moments(t)
        err = post.sd[r] / np.sqrt(post.ess[r])
        assert np.all(np.abs(post.mean[r] - mean) < 4 * err + 0.01 * mean), (r, post.mean[r], mean, err)
        np.testing.assert_allclose(post.sd[r], sd, rtol=0.15)  # the chains cross the whole ridge


def _gaussian_posterior(mean, sd, draws, key):
    """A Posterior of exact Gaussian draws (one chain per record), for the verdict tests."""
    from jaxid.inference.posterior import Posterior

    n, p = mean.shape
    s = mean[:, None, None, :] + sd[:, None, None, :] * np.asarray(jax.random.normal(key, (n, 1, draws, p)))
    ones = np.ones((n, p))
    return Posterior(
        names=tuple(f"p{i}" for i in range(p)),
        prior=None,
        samples=s,
        mean=s.mean(axis=(1, 2)),
        sd=s.std(axis=(1, 2)),
        rhat=ones,
        ess=ones * draws,
        acceptance=np.ones(n),
        divergences=np.zeros(n, int),
        ok=np.ones(n, bool),
        start=mean,
        chi2=np.zeros(n),
        chi2_pvalue=np.ones(n),
        scale=np.ones((n, 1)),
        seconds=0.0,
        settings={},
    )


def test_compare_calls_a_difference_within_the_records_sampling_error_inconclusive():
    from jaxid.inference import compare, verdict

    # theta ~ N(0, 1), y = theta + N(0, 1): the posterior is N(y / 2, 1/2), the limit's R^2 0.5.
    # The estimator y / 2 + e with e ~ N(0, 0.45^2) has an excess error of 0.2: R^2 0.3 in
    # expectation, beyond the at-limit margin min(0.05, 0.5) = 0.05 of the variance. The paired
    # differences d = e^2 + 2 e (y / 2 - theta) have sd 0.69: over 12 records the interval's
    # half-width is about 0.44, over 2000 about 0.03.
    rng = np.random.default_rng(1)
    for n, want in ((12, "inconclusive"), (2000, "limited by learning")):
        theta = rng.normal(size=(n, 1))
        y = theta + rng.normal(size=(n, 1))
        post = _gaussian_posterior(y / 2, np.full((n, 1), np.sqrt(0.5)), 4000, jax.random.key(n))
        est = y / 2 + 0.45 * rng.normal(size=(n, 1))
        c = compare(post, theta, estimates=est)
        assert c.verdicts["p0"].startswith(want), (n, c.verdicts, c.r2_gap_ci)
        # on the 12 records the averages alone say "limited by learning"
        assert verdict(float(c.r2[0]), float(c.limit_r2[0])) == "limited by learning"
        # an estimator that half knows theta (error sd 0.3 against the posterior's 0.71) beats the
        # posterior mean: over 2000 records beyond the sampling error, so the reference failed
        cheat = compare(post, theta, estimates=theta + 0.3 * rng.normal(size=(n, 1)))
        above = "above the Bayes limit: reference failed"
        assert cheat.verdicts["p0"] == above if n == 2000 else cheat.verdicts["p0"].endswith("records")
        assert verdict(float(cheat.r2[0]), float(cheat.limit_r2[0])) == above
        assert (cheat.r2_gap_ci[0, 0] > 0.05) == (n == 2000), cheat.r2_gap_ci
        # the interval is SciPy's paired t interval of the squared errors, in units of var(theta)
        mc = post.sd[:, 0] ** 2 / post.ess[:, 0]
        d = (est[:, 0] - theta[:, 0]) ** 2 - ((post.mean[:, 0] - theta[:, 0]) ** 2 - mc)
        lo, hi = ss.ttest_1samp(d, 0.0).confidence_interval(0.95)
        np.testing.assert_allclose(c.r2_gap_ci[0], np.array([-hi, -lo]) / theta[:, 0].var(), rtol=1e-10)
