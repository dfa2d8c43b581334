"""Every loss term and regulariser of the hybrid models against its equation.

Each pure term of :mod:`jaxid.hybrid.losses` is checked against an independent computation
(closed forms, SciPy, a Monte Carlo estimate, NumPy), and each model's loss is rebuilt term by
term in NumPy from the model's networks and random draws, so that a term wired to the wrong
quantity, a missing weight or a wrong sign fails. The MCC is checked against a brute-force
search over every matching.
"""

import dataclasses
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxid import simulate
from jaxid.hybrid import get_system, make_model, mcc, zp_bound
from jaxid.hybrid.losses import (
    gaussian_kl,
    gaussian_nll,
    multiplier_update,
    network_norm,
    squared_distance,
    trajectory_mse,
)

# ---------------------------------------------------------------- the pure terms


def _kl_by_hand(mu, lv, mu0, lv0):
    """KL of diagonal Gaussians written with standard deviations: log(s0/s) + (s^2 + d^2)/(2 s0^2) - 1/2."""
    s, s0 = np.exp(0.5 * lv), np.exp(0.5 * lv0)
    return np.sum(np.log(s0 / s) + (s**2 + (mu - mu0) ** 2) / (2 * s0**2) - 0.5)


def test_gaussian_kl_matches_its_closed_form_and_a_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    mu, lv = rng.normal(size=3), rng.normal(scale=0.5, size=3)
    mu0, lv0 = rng.normal(size=3), rng.normal(scale=0.5, size=3)
    kl = float(gaussian_kl(jnp.asarray(mu), jnp.asarray(lv), jnp.asarray(mu0), jnp.asarray(lv0)))
    assert kl == pytest.approx(_kl_by_hand(mu, lv, mu0, lv0), rel=1e-12)
    # the default prior is the standard normal
    assert float(gaussian_kl(jnp.asarray(mu), jnp.asarray(lv))) == pytest.approx(
        _kl_by_hand(mu, lv, 0.0, 0.0), rel=1e-12
    )
    assert float(gaussian_kl(jnp.asarray(mu), jnp.asarray(lv), jnp.asarray(mu), jnp.asarray(lv))) == 0.0
    # Monte Carlo: E_q[log q(z) - log p(z)] over 2e5 draws; tolerance 5 standard errors
    n = 200_000
    z = mu + np.exp(0.5 * lv) * rng.standard_normal((n, 3))
    log_ratio = np.sum(
        stats.norm.logpdf(z, mu, np.exp(0.5 * lv)) - stats.norm.logpdf(z, mu0, np.exp(0.5 * lv0)), -1
    )
    assert abs(log_ratio.mean() - kl) < 5 * log_ratio.std() / np.sqrt(n)


def test_gaussian_nll_is_minus_scipy_logpdf():
    rng = np.random.default_rng(1)
    x, mean = rng.normal(size=(7, 2)), rng.normal(size=(7, 2))
    sd = np.array([0.3, 1.7])  # per channel, broadcast over time
    nll = float(gaussian_nll(jnp.asarray(x), jnp.asarray(mean), jnp.asarray(sd)))
    assert nll == pytest.approx(-np.sum(stats.norm.logpdf(x, mean, sd)), rel=1e-12)


def test_squared_distance_trajectory_mse_and_network_norm_by_hand():
    a = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    b = jnp.array([[0.0, 2.0], [5.0, 1.0]])
    # differences 1, 0, -2, 3: squares 1 + 0 + 4 + 9 = 14
    assert float(squared_distance(a, b)) == 14.0
    assert float(trajectory_mse(a, b)) == 14.0 / 4
    # rows (1, 0) and (-2, 3): squared norms 1 and 13, averaged over the two save times
    assert float(network_norm(a - b)) == 7.0


def test_multiplier_update_on_a_known_sequence_of_trajectory_losses():
    """lambda_{j+1} = lambda_j + tau L_j (models.py docstring; REFERENCE section 4: raised after
    each batch by the trajectory loss)."""
    losses = [0.5, 0.25, 2.0]
    lam = 1.0
    for loss in losses:
        lam = float(multiplier_update(lam, loss, 0.5))
    assert lam == 1.0 + 0.5 * (0.5 + 0.25 + 2.0)  # 2.375, exact in binary
    model = _model("aphynity", _short("pendulum"), 0, lambda0=2.0, tau=3.0)
    aux = model.init_aux()
    assert float(aux["lambda"]) == 2.0
    for loss in losses:
        aux = model.update_aux(aux, {"traj": jnp.float32(loss), "norm": jnp.float32(9.0)})
    assert float(aux["lambda"]) == 2.0 + 3.0 * (0.5 + 0.25 + 2.0)  # 10.25; the norm plays no part


# ---------------------------------------------------------------- the models' losses, term by term


def _short(name, n_train=8):
    """A system with a short training window: the terms' equations do not depend on its length."""
    return dataclasses.replace(get_system(name), n_train=n_train, n_full=n_train + 2)


@eqx.filter_jit
def _solve(dec, z_p, z_a, x0, n, hybrid):
    return dec.solve(z_p, z_a, x0, n, hybrid=hybrid)


def _model(kind, sys, seed, **options):
    """A model of ``make_model``'s structure with random weights drawn by NumPy (initialising it
    eagerly would compile every layer's draw, the slowest part of these tests) and its scales."""
    scales = _scales(sys)
    build = lambda key: make_model(kind, sys, scales, key=key, width=8, **options)  # noqa: E731
    shapes = eqx.filter_eval_shape(build, jax.random.PRNGKey(0))
    rng = np.random.default_rng(seed)
    model = jax.tree.map(
        lambda s: (
            jnp.asarray(0.4 * rng.standard_normal(s.shape), s.dtype)
            if isinstance(s, jax.ShapeDtypeStruct)
            else s
        ),
        shapes,
    )
    dec = lambda m: m.decoder  # noqa: E731
    return eqx.tree_at(
        lambda m: (dec(m).state_scale, dec(m).rate_scale, dec(m).obs_scale),
        model,
        tuple(jnp.asarray(v, jnp.float32) for v in scales),
    )


def _scales(sys):
    n_obs = len(sys.observe(np.zeros(sys.state_size)))
    state = np.linspace(0.5, 1.5, sys.state_size)
    return state, 2.0 * state, np.full(n_obs, 0.4)


def _sequence(sys, seed=0):
    """A smooth float32 sequence of the training window (only its shape and values matter here)."""
    rng = np.random.default_rng(seed)
    t = sys.ts[: sys.n_train, None]
    n_obs = len(sys.observe(np.zeros(sys.state_size)))
    y = 0.5 * np.cos(2.0 * t + rng.uniform(0, 3, n_obs)) + 0.01 * rng.standard_normal((sys.n_train, n_obs))
    return jnp.asarray(y, jnp.float32)


def _mlp(net, x):
    return np.asarray(_call(net, jnp.asarray(x, jnp.float32)), np.float64)


@eqx.filter_jit
def _call(net, x):
    return net(x)


def test_aphynity_loss_is_lambda_times_trajectory_mse_plus_network_norm():
    sys = _short("pendulum")
    model = _model("aphynity", sys, 1)
    dec = model.decoder
    y = _sequence(sys)
    aux = {"lambda": jnp.float32(2.5)}
    total, terms = eqx.filter_jit(model.loss)(jax.random.PRNGKey(0), y, None, aux)
    # by hand: the encoder's output split into u and z_a, z_p on the feasible range
    h = _mlp(model.encoder, np.asarray(y).ravel() / 0.4)
    (lo, hi), z_a = sys.feasible[0], h[1:]
    z_p = lo + (hi - lo) / (1 + np.exp(-h[0]))
    states = np.asarray(_solve(dec, jnp.float32([z_p]), jnp.float32(z_a), dec.x0(y), sys.n_train, True))
    traj = np.mean(((states[:, :1] - np.asarray(y)) / 0.4) ** 2)
    # the network term in rate-scale units, masked to the acceleration, at every save time
    state_scale = _scales(sys)[0]
    t_in = sys.ts[: sys.n_train] / (sys.dt * (sys.n_train - 1))
    fa = np.stack(
        [
            _mlp(dec.aug, np.concatenate([x / state_scale, [t], z_a]))
            for x, t in zip(states, t_in, strict=True)
        ]
    )
    fa[:, 0] = 0.0  # the mask: the network may act on the acceleration only
    norm = np.mean(np.sum(fa**2, -1))
    assert float(terms["traj"]) == pytest.approx(traj, rel=1e-5)
    assert float(terms["norm"]) == pytest.approx(norm, rel=1e-4)
    assert float(total) == pytest.approx(2.5 * traj + norm, rel=1e-5)


@pytest.mark.parametrize("meta", [False, True], ids=["hybrid_vae", "meta_hybrid_vae"])
def test_hybrid_vae_loss_is_the_weighted_sum_of_its_terms_each_as_documented(meta):
    sys = _short("double_pendulum")  # two channels: the per-channel sd matters
    weights = dict(kl=0.7, unmix=1.3, least_action=0.2, augment=0.9)
    kind = "meta_hybrid_vae" if meta else "hybrid_vae"
    model = _model(kind, sys, 2, code=4, **weights)
    model = eqx.tree_at(lambda m: m.raw_sigma, model, jnp.float32([0.3, -2.5]))
    dec, scale = model.decoder, 0.4
    y = _sequence(sys, 1)
    context = jnp.stack([_sequence(sys, s) for s in (2, 3, 4)])
    key = jax.random.PRNGKey(5)
    total, terms = eqx.filter_jit(model.loss)(key, y, context if meta else None, {})

    # by hand, with the model's networks and its four random draws
    k_n, k_u, k_aug, k_noise = jax.random.split(key, 4)
    flat = np.asarray(y, np.float64).ravel() / scale
    if meta:
        code = np.mean([_mlp(model.context_encoder, np.asarray(c).ravel() / scale) for c in context], 0)
        h = _mlp(model.aux_encoder, np.concatenate([flat, code]))
        hp = _mlp(model.prior_net, code)
        mu0, lv0 = hp[:3], hp[3:]
    else:
        h = _mlp(model.aux_encoder, flat)
        mu0 = lv0 = np.zeros(3)
    mu_n, lv_n = h[:3], h[3:]  # z_a (2 factors) and z_b (1)
    z_n = mu_n + np.exp(0.5 * lv_n) * np.asarray(jax.random.normal(k_n, (3,), jnp.float32))
    unmixed = flat - _mlp(model.unmixer, np.concatenate([flat, z_n]))
    hu = _mlp(model.phys_encoder, unmixed)
    mu_u, lv_u = hu[:1], hu[1:]
    u = mu_u + np.exp(0.5 * lv_u) * np.asarray(jax.random.normal(k_u, (1,), jnp.float32))
    lo, hi = sys.feasible[0]
    z_p = lo + (hi - lo) / (1 + np.exp(-u))
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    x0 = dec.x0(y)
    y_hyb = np.asarray(dec.output(_solve(dec, f32(z_p), f32(z_n[:2]), x0, sys.n_train, True), f32(z_n[2:])))
    y_phys = np.asarray(_solve(dec, f32(z_p), f32(z_n[:2]), x0, sys.n_train, False))[:, :2]
    sd = sys.noise / scale + np.log1p(np.exp(np.array([0.3, -2.5]) + 2.0))  # softplus, floored at the noise
    nll = -np.sum(stats.norm.logpdf(np.asarray(y) / scale, y_hyb / scale, sd))
    kl = _kl_by_hand(mu_n, lv_n, mu0, lv0) + _kl_by_hand(mu_u, lv_u, 0.0, 0.0)
    unmix = np.sum((unmixed - y_phys.ravel() / scale) ** 2)
    least_action = np.sum(((y_hyb - y_phys) / scale) ** 2)
    u_star = np.asarray(jax.random.normal(k_aug, (1,), jnp.float32))
    z_star = lo + (hi - lo) / (1 + np.exp(-u_star))
    y_star = np.asarray(_solve(dec, f32(z_star), f32(z_n[:2]), x0, sys.n_train, False))[:, :2]
    y_star = y_star + sys.noise * np.asarray(jax.random.normal(k_noise, y_star.shape))
    augment = np.sum((_mlp(model.phys_encoder, y_star.ravel() / scale)[:1] - u_star) ** 2)

    by_hand = dict(nll=nll, kl=kl, unmix=unmix, least_action=least_action, augment=augment)
    assert min(abs(v) for v in by_hand.values()) > 1e-3  # every term is in play
    for name, value in by_hand.items():
        assert float(terms[name]) == pytest.approx(value, rel=2e-4, abs=1e-4), name
    assert float(terms["traj"]) == pytest.approx(np.mean(((np.asarray(y) - y_hyb) / scale) ** 2), rel=1e-4)
    weighted = nll + sum(weights[k] * by_hand[k] for k in weights)
    assert float(total) == pytest.approx(weighted, rel=2e-5)


# ---------------------------------------------------------------- MCC against brute force


def _mcc_brute_force(z, e):
    """Mean |Pearson correlation| maximised over every one-to-one matching of z's columns to e's."""
    d, k = z.shape[1], e.shape[1]
    c = np.abs(np.corrcoef(z.T, e.T)[:d, d:])
    best = max(itertools.permutations(range(k), d), key=lambda p: sum(c[i, p[i]] for i in range(d)))
    return np.mean([c[i, best[i]] for i in range(d)]), list(best)


@pytest.mark.parametrize("seed", range(4))
def test_mcc_equals_a_brute_force_search_over_all_matchings(seed):
    rng = np.random.default_rng(seed)
    n, d, k = 40, 3, 4
    z = rng.standard_normal((n, d))
    # a mixture that favours a random non-identity matching, plus noise and an extra column
    perm = rng.permutation(k)
    while list(perm[:d]) == list(range(d)):
        perm = rng.permutation(k)
    mix = 0.6 * rng.standard_normal((d, k))
    mix[np.arange(d), perm[:d]] += 1.5
    e = z @ mix + 0.8 * rng.standard_normal((n, k))
    value, match = mcc(z, e, return_matching=True)
    expected, best = _mcc_brute_force(z, e)
    assert value == pytest.approx(expected, rel=1e-12)
    assert list(match) == best
    assert best != list(range(d))  # the identity is not the answer
    # and the identity matching scores lower: the search matters
    c = np.abs(np.corrcoef(z.T, e.T)[:d, d:])
    assert np.mean(np.diag(c)) < value


# ---------------------------------------------------------------- the z_p limit


def test_zp_bound_is_the_inverse_of_a_finite_difference_fisher_information():
    """The double pendulum's z_p is the length of both rods: its information, by forward mode
    through the simulation, against central differences of the truth simulated at tight
    tolerances (step 1e-5 L: truncation ~1e-10, solver error ~1e-12 / 1e-5; tolerance 1e-4)."""
    sys = get_system("double_pendulum")
    bound = zp_bound(sys, key=jax.random.PRNGKey(0), n=2)
    assert bound.variances.shape == (2,) and bound.mse == pytest.approx(np.mean(bound.variances))
    # the first of the two sequences, drawn as zp_bound draws them
    k_p, k_n, k_x0 = jax.random.split(jax.random.PRNGKey(0), 3)
    (lo, hi), (flo, fhi) = sys.physics_ranges[0], sys.factor_ranges[0]
    z_p = lo + (hi - lo) * float(jax.random.uniform(k_p, (2, 1), jnp.float64)[0, 0])
    z_n = flo + (fhi - flo) * np.asarray(jax.random.uniform(k_n, (2, 2), jnp.float64))[0]
    x0 = sys.initial_states(k_x0, 2)[0]
    ts = jnp.asarray(sys.ts[: sys.n_train])

    def obs(length):
        model = sys.truth(jnp.array([length]), jnp.asarray(z_n))
        return np.asarray(simulate(model, x0, ts, rtol=1e-12, atol=1e-12, max_steps=100_000).obs)

    h = 1e-5 * z_p
    dy = (obs(z_p + h) - obs(z_p - h)) / (2 * h)
    info = np.sum(dy**2) / sys.noise**2
    assert 1.0 / bound.variances[0] == pytest.approx(info, rel=1e-4)
