"""Amortized posterior networks (conditional flows) on a linear-Gaussian model with a closed-form
posterior: mean, spread, density, calibration, save/load, mixtures and bad input.

One network is trained once (module fixture); the tests reuse the same record and sample shapes
so that sampling and the density compile once each (flowjax's construction and compilations
dominate the run time on a CPU)."""

import dataclasses

import equinox as eqx
import jax
import numpy as np
import pytest
from scipy import stats

from jaxid.inference import calibrate
from jaxid.nn import TrainConfig
from jaxid.nn.posterior import (
    _sample,
    load_posterior_estimator,
    train_posterior,
)
from jaxid.nn.training import _epoch

N, T = 3000, 10  # records, time steps
S = 1000  # posterior draws per test record
MU0, SD0, NOISE = np.array([0.5, -1.0]), np.array([1.0, 2.0]), 0.3
A = np.stack([np.ones(T), np.linspace(0.0, 1.0, T)], axis=1)  # y_t = a + b t + noise, (T, 2)
CONFIG = TrainConfig(epochs=30, batch_size=100, learning_rate=3e-3, patience=None, progress=False)


@pytest.fixture(scope="module")
def data():
    """theta ~ N(MU0, diag SD0^2), x = A theta + e with e ~ N(0, NOISE^2 I), one channel."""
    rng = np.random.default_rng(0)
    theta = MU0 + SD0 * rng.normal(size=(N, 2))
    x = theta @ A.T + NOISE * rng.normal(size=(N, T))
    return x[:, :, None], theta


@pytest.fixture(scope="module")
def trained(data):
    """The fitted network and how many compilations of the epoch step its training added."""
    x, theta = data
    before = _epoch._cached._cache_size()
    result = train_posterior(
        x, theta, ("a", "b"), config=CONFIG, depth=2, width=32, embed_dim=8, flow_layers=3, flow_width=32
    )
    return result, _epoch._cached._cache_size() - before


@pytest.fixture(scope="module")
def fit(trained):
    return trained[0]


@pytest.fixture(scope="module")
def draws(data, fit):
    """S = 1000 posterior draws for each of the 300 test records (never seen in training)."""
    x, _ = data
    te = fit.split["test"]
    return np.asarray(fit.estimator.sample(x[te], S, key=jax.random.key(1)))


def exact_posterior(x):
    """P = (P0^-1 + A^T S^-1 A)^-1, mean P (P0^-1 mu0 + A^T S^-1 y) (REFERENCE.md section 7)."""
    p0_inv = np.diag(1 / SD0**2)
    s_inv = np.eye(T) / NOISE**2
    cov = np.linalg.inv(p0_inv + A.T @ s_inv @ A)
    mean = (cov @ ((p0_inv @ MU0)[:, None] + A.T @ s_inv @ x[:, :, 0].T)).T
    return mean, cov


def test_training_reduces_the_negative_log_likelihood(fit):
    h = fit.history
    assert h["epochs_run"] == 30 and len(h["val_loss"]) == 30
    # Standardised prior: NLL ~ log(2 pi) + 1 = 2.84 nats at the start; the exact posterior's
    # entropy in standardised units is log(2 pi e) + log(0.172/1 * 0.291/2) = -1.5.
    assert h["train_loss"][0] > 1.0 and h["best_val_loss"][0] < -1.2


def test_posterior_mean_and_sd_match_the_closed_form(data, fit, draws):
    x, theta = data
    te = fit.split["test"]
    mean, cov = exact_posterior(x[te])
    sd = np.sqrt(np.diag(cov))  # 0.172, 0.291; the prior's are 1 and 2
    m_hat, sd_hat = (np.asarray(a) for a in fit.estimator.mean_sd(x[te], S, key=jax.random.key(1)))
    np.testing.assert_allclose(m_hat, draws.mean(1), rtol=1e-5, atol=1e-6)  # the same draws
    # The flow learned from 2400 records in 30 epochs: measured 0.25 posterior sd rms error on the
    # mean (its Monte Carlo part sd/sqrt(1000) = 0.03 sd) and 3 % on the sd. Tolerances 2x that:
    # a flow that ignored x (the prior: sd 6-7x wider) or mis-scaled theta fails by far.
    err = (m_hat - mean) / sd
    assert np.all(np.sqrt(np.mean(err**2, axis=0)) < 0.5), np.sqrt(np.mean(err**2, axis=0))
    assert np.all(np.abs(err) < 2.0)
    assert np.all(np.abs(np.mean(sd_hat, axis=0) / sd - 1) < 0.1), np.mean(sd_hat, axis=0) / sd
    # The density in natural units: E[log q(theta | x)] - E[log p(theta | x)] = -KL <= 0, near 0.
    # Measured -0.08 nats; a missing Jacobian of the standardisation (log 2 = 0.69) would fail.
    lq = np.asarray(fit.estimator.log_prob(theta[te], x[te]))
    lp = np.array([stats.multivariate_normal(mean[i], cov).logpdf(theta[te][i]) for i in range(len(te))])
    assert abs(np.mean(lq - lp)) < 0.25, np.mean(lq - lp)


def test_posterior_is_calibrated(data, fit, draws):
    _, theta = data
    te = fit.split["test"]
    res = calibrate(theta[te], draws, names=("a", "b"))
    # 300 records: a calibrated posterior's coverage is within sqrt(a (1 - a) / 300) <= 0.029 of
    # each level a (binomial sd); 4 sd over 19 levels x 2 parameters. Measured at most 1.6 sd.
    assert np.all(res.max_coverage_error() < 4), res.max_coverage_error()
    assert np.all(res.pvalue > 1e-3), res.pvalue
    # Over-confidence would show: the same draws squeezed by 2 about their mean are flagged.
    squeezed = draws.mean(1, keepdims=True) + 0.5 * (draws - draws.mean(1, keepdims=True))
    assert np.all(calibrate(theta[te], squeezed).max_coverage_error() > 4)


def test_one_compilation_and_shapes(data, trained, fit, draws):
    x, theta = data
    # 30 epochs, one compilation of the epoch step: the best validation loss is carried in the
    # flow loss's dtype (float64 under x64) from the start, not promoted by the first epoch
    assert trained[1] == 1
    te = fit.split["test"]
    est = fit.estimator
    before = _sample._cached._cache_size()
    again = np.asarray(est.sample(x[te], S, key=jax.random.key(2)))
    assert _sample._cached._cache_size() == before  # one jitted call, compiled once per shape
    assert again.shape == (len(te), S, 2) and not np.allclose(again, draws)
    lp2 = np.asarray(est.log_prob(theta[te], x[te]))
    lp3 = np.asarray(est.log_prob(theta[te][:, None, :], x[te]))  # n = 1 value per record
    assert lp2.shape == (len(te),) and lp3.shape == (len(te), 1)
    np.testing.assert_array_equal(lp2, lp3[:, 0])


def test_save_load_round_trip(tmp_path, data, fit, draws):
    x, theta = data
    te = fit.split["test"]
    path = tmp_path / "post.eqx"
    fit.estimator.save(path, metadata={"model": "linear"})
    est, meta = load_posterior_estimator(path)
    assert meta == {"model": "linear"} and est.names == ("a", "b") and est.members == 1
    np.testing.assert_array_equal(
        np.asarray(est.log_prob(theta[te], x[te])), np.asarray(fit.estimator.log_prob(theta[te], x[te]))
    )
    np.testing.assert_array_equal(np.asarray(est.sample(x[te], S, key=jax.random.key(1))), draws)
    bad = tmp_path / "bad.eqx"
    bad.write_bytes(b"\x00\x01 not json\n")
    with pytest.raises(ValueError, match="not a jaxid posterior estimator"):
        load_posterior_estimator(bad)


def test_members_form_an_equal_weight_mixture(data, fit):
    x, theta = data
    te = fit.split["test"]
    est = fit.estimator
    # A second member: the trained one with every weight scaled by 0.9 (a different flow).
    other = jax.tree.map(lambda a: 0.9 * a if eqx.is_inexact_array(a) else a, est.model)
    both = jax.tree.map(lambda a, b: np.concatenate([a, b]) if eqx.is_array(a) else a, est.model, other)
    mix = dataclasses.replace(est, model=both, members=2)
    lp = np.asarray(mix.log_prob(theta[te], x[te]))
    one = np.asarray(est.log_prob(theta[te], x[te]))
    two = np.asarray(dataclasses.replace(est, model=other).log_prob(theta[te], x[te]))
    assert np.mean(np.abs(one - two)) > 0.1  # two different members
    # log of the mean of the members' densities (natural units, one Jacobian for both).
    np.testing.assert_allclose(lp, np.logaddexp(one, two) - np.log(2), rtol=1e-5, atol=1e-5)


def test_bad_input_gives_clear_errors(data, fit):
    x, theta = data
    names = ("a", "b")
    with pytest.raises(ValueError, match=r"train_posterior: theta must have shape \(3000, param\)"):
        train_posterior(x, theta[:10], names)
    with pytest.raises(ValueError, match="3 names"):
        train_posterior(x, theta, ("a", "b", "c"))
    with pytest.raises(ValueError, match="finite"):
        train_posterior(np.where(x > 2, np.nan, x), theta, names)
    with pytest.raises(ValueError, match="unknown arch 'rnn'"):
        train_posterior(x, theta, names, arch="rnn")
    with pytest.raises(ValueError, match="unknown flow 'nsf'"):
        train_posterior(x, theta, names, flow="nsf")
    with pytest.raises(ValueError, match="flow_layers must be a positive int"):
        train_posterior(x, theta, names, flow_layers=0)
    with pytest.raises(ValueError, match="loss_weights"):
        train_posterior(x, theta, names, config=TrainConfig(loss_weights=(1.0, 2.0)))
    with pytest.raises(ValueError, match="unknown activation 'sigmoid'"):
        train_posterior(x, theta, names, activation="sigmoid")
    est = fit.estimator
    with pytest.raises(ValueError, match=r"x must have shape \(records, 10, 1\)"):
        est.sample(x[:, :5], 3, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"theta must have shape \(4, 2\) or \(4, n, 2\)"):
        est.log_prob(theta[:3], x[:4])
    with pytest.raises(ValueError, match="n must be a positive int"):
        est.sample(x[:2], 0, key=jax.random.key(0))


@pytest.mark.parametrize(("flow", "transformer"), [("maf", "affine"), ("coupling", "spline")])
def test_compiled_initialisation_equals_the_eager_one(flow, transformer):
    # PosteriorEstimator.init builds every member in one compiled program (XLA level 0) and swaps
    # in transformer constructors made outside jit; make_conditional_flow builds eagerly. Same
    # key: the same weights, bit for bit, and the same density.
    import jax.numpy as jnp

    from jaxid.nn.posterior import PosteriorEstimator, make_conditional_flow

    key = jax.random.key(3)
    opts = dict(flow=flow, transformer=transformer, flow_layers=2, flow_width=8, embed_dim=4)
    est = PosteriorEstimator.init(
        "mlp", (T, 1), ("a", "b"), key=key, members=2, flow_options=opts, depth=2, width=8
    )
    x = jnp.linspace(-1.0, 1.0, T, dtype=jnp.float32)[:, None]
    theta = jnp.array([0.3, -0.2], jnp.float32)
    for m, k in enumerate(jax.random.split(key, 2)):
        eager = make_conditional_flow("mlp", (T, 1), 2, key=k, **opts, depth=2, width=8)
        member = jax.tree.map(lambda a, m=m: a[m] if eqx.is_array(a) else a, est.model)
        a, b = eqx.filter(member, eqx.is_array), eqx.filter(eager, eqx.is_array)
        assert jax.tree.structure(a) == jax.tree.structure(b)
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
        np.testing.assert_array_equal(member.log_prob(theta, x), eager.log_prob(theta, x))


def test_embedding_started_from_a_point_network(data):
    """``embedding_from``: the flow's embedding is the point network's, and stays it at a learning
    rate too small to move it; a point network of another architecture or split is refused."""
    from jaxid.nn import train

    x, theta = data
    small = dataclasses.replace(CONFIG, epochs=1, learning_rate=1e-12, lr_decay=False)
    point = train(x, theta, ("a", "b"), config=small, depth=2, width=16)
    got = train_posterior(
        x, theta, ("a", "b"), config=small, depth=2, width=16, embedding_from=point.estimator
    )
    emb = got.estimator.model.embedding
    arrays = [jax.tree.leaves(eqx.filter(n, eqx.is_array)) for n in (emb, point.estimator.network)]
    for mine, theirs in zip(*arrays, strict=True):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-6, atol=1e-9)
    z = eqx.filter_vmap(lambda net: jax.vmap(net)(x[:5].astype(np.float32)))(emb)
    assert z.shape == (1, 5, 2)  # conditioned on the point network's two standardised estimates
    with pytest.raises(ValueError, match=r"embedding_from does not fit this network \(options"):
        train_posterior(x, theta, ("a", "b"), config=small, depth=2, width=32, embedding_from=point.estimator)
    other = dataclasses.replace(small, seed=5)
    with pytest.raises(ValueError, match="another input standardisation"):
        train_posterior(x, theta, ("a", "b"), config=other, depth=2, width=16, embedding_from=point.estimator)
    with pytest.raises(ValueError, match="embed_dim=8 but embedding_from has 2 outputs"):
        train_posterior(x, theta, ("a", "b"), config=small, embed_dim=8, embedding_from=point.estimator)
    with pytest.raises(TypeError, match=r"embedding_from must be a jaxid\.nn\.Estimator"):
        train_posterior(x, theta, ("a", "b"), config=small, depth=2, width=16, embedding_from=got.estimator)


def test_draws_restricted_to_the_prior_support(tmp_path, data, fit):
    """A support truncates the flow: the draws' mean equals the truncated density's mean by
    quadrature of ``log_prob`` (an independent path through the flow: its density, not its
    sampler); ``train_posterior(prior=...)`` sets it and refuses theta outside it."""
    from jaxid.priors import Normal, Prior

    x, theta = data
    rec = x[fit.split["test"][:1]]  # one test record
    free = np.asarray(fit.estimator.sample(rec, 4000, key=jax.random.key(4)))[0]
    m, s = free.mean(0), free.std(0)
    cut_a, cut_b = float(m[0] + 0.3 * s[0]), float(m[1] + 0.5 * s[1])  # keeps about 0.38 x 0.69
    est = fit.estimator.restrict([(cut_a, np.inf), (-np.inf, cut_b)])
    got = np.asarray(est.sample(rec, 4000, key=jax.random.key(5)))[0]
    assert np.all(got[:, 0] >= cut_a) and np.all(got[:, 1] <= cut_b) and np.all(np.isfinite(got))
    # trapezoid quadrature over the support: a in [cut_a, m + 7 s], b in [m - 7 s, cut_b]
    ga = np.linspace(cut_a, m[0] + 7 * s[0], 241)
    gb = np.linspace(m[1] - 7 * s[1], cut_b, 241)
    wa, wb = np.ones_like(ga), np.ones_like(gb)
    wa[[0, -1]] = wb[[0, -1]] = 0.5
    grid = np.stack(np.meshgrid(ga, gb, indexing="ij"), -1).reshape(1, -1, 2)
    w = np.exp(np.asarray(est.log_prob(grid, rec), np.float64))[0] * np.outer(wa, wb).ravel()
    exact = (w[:, None] * grid[0]).sum(0) / w.sum()
    mc = got.std(0) / np.sqrt(len(got))  # Monte Carlo error of the draws' mean
    assert np.all(np.abs(got.mean(0) - exact) < 4 * mc), (got.mean(0), exact, mc)
    # ... and differs from the untruncated mean by far more than that (the check can fail)
    assert np.all(np.abs(free.mean(0) - exact) > 10 * mc)
    assert (
        np.abs(np.asarray(est.restrict(None).sample(rec, 4000, key=jax.random.key(4)))[0] - free).max() == 0
    )
    # several records, each filled inside the support; saved and loaded with the estimator
    three = x[fit.split["test"][:3]]
    lo = float(np.asarray(fit.estimator.sample(three, 500, key=jax.random.key(7)))[..., 0].mean(1).min())
    wide = fit.estimator.restrict([(lo, np.inf), (-np.inf, np.inf)])  # keeps at least half of each
    d3 = np.asarray(wide.sample(three, 500, key=jax.random.key(6)))
    assert d3.shape == (3, 500, 2) and np.all(d3[..., 0] >= lo)
    wide.save(tmp_path / "restricted.eqx")
    back, _ = load_posterior_estimator(tmp_path / "restricted.eqx")
    assert back.support == wide.support
    np.testing.assert_array_equal(np.asarray(back.sample(three, 500, key=jax.random.key(6))), d3)
    with pytest.raises(ValueError, match=r"record\(s\) \[0\] \(1 of 1\) still lack draws"):
        fit.estimator.restrict([(m[0] + 12 * s[0], np.inf), (-np.inf, np.inf)]).sample(
            rec, 4000, key=jax.random.key(5), max_rounds=3
        )
    with pytest.raises(ValueError, match=r"restrict: prior: no prior for \['b'\]"):
        fit.estimator.restrict({"a": (0.0, 1.0)})
    # train_posterior: the prior's support is the estimator's; theta outside it is refused first
    small = dataclasses.replace(CONFIG, epochs=1)
    prior = Prior({"a": Normal(0.5, 1.0, low=-10.0, high=10.0), "b": Normal(-1.0, 2.0, low=-20.0, high=20.0)})
    res = train_posterior(x[:200], theta[:200], ("a", "b"), config=small, depth=1, width=8, prior=prior)
    assert res.estimator.support == ((-10.0, 10.0), (-20.0, 20.0))
    with pytest.raises(
        ValueError, match=r"train_posterior: \d+ of 3000 theta lie outside the prior's support"
    ):
        train_posterior(x, theta, ("a", "b"), prior={"a": (0.0, 1.0), "b": (-20.0, 20.0)})
