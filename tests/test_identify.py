"""Identifiability analysis: known answers (closed forms, pendulum, walker, a non-scaling
degeneracy), profile likelihood, the report and the error paths."""

import json

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

import jaxid
from jaxid.identify import (
    CHI2_95,
    Experiment,
    analyze,
    collinearity_index,
    fisher_information,
    format_monomial,
    numerical_rank,
    profile_likelihood,
    sensitivities,
)

matplotlib.use("Agg")

# A linear-Gaussian model y = A theta + c, observed as 6 times x 2 channels.
A = np.array(
    [
        [[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]],
        [[1.5, 0.0, 1.0], [2.0, 1.0, -1.0]],
        [[0.2, 0.4, 0.1], [1.0, 1.0, 1.0]],
        [[-1.0, 0.5, 0.0], [0.0, 2.0, 0.3]],
        [[0.7, -0.7, 1.1], [0.5, 0.1, -0.4]],
        [[0.0, 1.0, 2.0], [1.2, -0.3, 0.9]],
    ]
)
SIGMA = np.array([0.1, 0.3])  # per channel
THETA_LIN = np.array([1.0, 2.0, 3.0])


def linear(theta):
    return jnp.einsum("tcp,p->tc", jnp.asarray(A), theta) + 1.0


def closed_form_fim(sigma):
    w = A / sigma[None, :, None]
    return np.einsum("tcp,tcq->pq", w, w)


@pytest.fixture(scope="module")
def linear_exp():
    return Experiment(linear, noise=SIGMA, param_names=("a", "b", "c"), name="linear")


def test_linear_gaussian_fim_matches_closed_form(linear_exp):
    f = fisher_information(linear_exp, THETA_LIN)
    np.testing.assert_allclose(f, closed_form_fim(SIGMA), rtol=1e-12)
    # log parameters: F_log = D F D
    d = np.diag(THETA_LIN)
    np.testing.assert_allclose(fisher_information(linear_exp, THETA_LIN, log=True), d @ f @ d, rtol=1e-12)
    # experiments add
    np.testing.assert_allclose(fisher_information([linear_exp, linear_exp], THETA_LIN), 2 * f, rtol=1e-12)


def test_linear_batched_fim_and_relative_noise(linear_exp):
    thetas = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [3.0, 0.1, 0.2]])
    batched = fisher_information(linear_exp, thetas)
    assert batched.shape == (3, 3, 3)
    for i, th in enumerate(thetas):
        np.testing.assert_allclose(batched[i], fisher_information(linear_exp, th), rtol=1e-12)
    # relative noise: a fraction of each channel's standard deviation over the records
    rel = Experiment(linear, noise=0.05, relative=True)
    sd = np.asarray(linear(jnp.asarray(THETA_LIN))).std(axis=0)
    np.testing.assert_allclose(fisher_information(rel, THETA_LIN), closed_form_fim(0.05 * sd), rtol=1e-12)


def test_linear_crb_and_sensitivities(linear_exp):
    report = analyze(linear_exp, THETA_LIN, scale="natural", check_points=0)
    f = closed_form_fim(SIGMA)
    np.testing.assert_allclose(report.crb, np.sqrt(np.diag(np.linalg.inv(f))), rtol=1e-10)
    assert report.rank == 3
    jac = sensitivities(linear, THETA_LIN)
    np.testing.assert_allclose(jac, A, rtol=1e-14)
    np.testing.assert_allclose(sensitivities(linear, THETA_LIN, log=True), A * THETA_LIN, rtol=1e-14)
    # jit and vmap agree with the eager single evaluation
    batch = np.stack([THETA_LIN, 2 * THETA_LIN])
    jb = sensitivities(linear, batch)
    np.testing.assert_allclose(jb[1], A, rtol=1e-14)


def test_linear_profile_is_the_closed_form_parabola(linear_exp):
    """For a linear model the profile of theta_i is exactly (t / sd_i)^2, sd_i^2 = (F^-1)_ii."""
    sd = np.sqrt(np.diag(np.linalg.inv(closed_form_fim(SIGMA))))
    profiles = profile_likelihood(linear_exp, THETA_LIN, scale="natural", points=9, span=4 * sd)
    for pr, s, th in zip(profiles, sd, THETA_LIN, strict=True):
        t = pr.values - th
        np.testing.assert_allclose(pr.delta_chi2, (t / s) ** 2, rtol=1e-6, atol=1e-8)
        assert pr.classification == "identifiable"
        half = np.sqrt(CHI2_95) * s
        # the crossing is interpolated in sqrt(delta chi^2), exact for a parabola
        np.testing.assert_allclose(pr.interval, (th - half, th + half), rtol=1e-6)


# ---------------------------------------------------------------------------- pendulum
@pytest.fixture(scope="module")
def pendulum_report():
    pend = jaxid.Pendulum(m=1.0, L=1.5, b=0.3, g=9.81)
    exp = Experiment.from_model(pend, jnp.array([0.5, 0.0]), jnp.linspace(0.0, 4.0, 41), noise=0.01)
    return analyze(exp, profiles=True, profile_options={"points": 9})


def test_pendulum_rank_and_combinations(pendulum_report):
    r = pendulum_report
    assert r.names == ("m", "L", "b", "g")
    assert r.rank == 2
    c = r.combinations
    assert sorted(c.monomial_text) == ["b/(L^2*m)", "g/L"]
    assert c.non_scaling == 0 and len(c.scaling) == 2
    # the scaling symmetries annihilate the log Jacobian: m, b together; L, g and b^2 together
    for s in c.scaling:
        assert np.linalg.norm(r.spectrum.vt[:2] @ np.asarray(s, float)) < 1e-8 * np.linalg.norm(s)
    assert np.all(np.isinf(r.crb))
    assert all(np.isfinite(r.monomial_crb_relative))


def test_pendulum_sensitivities_match_finite_differences():
    pend = jaxid.Pendulum(m=1.0, L=1.5, b=0.3, g=9.81)
    exp = Experiment.from_model(
        pend, jnp.array([0.5, 0.0]), jnp.linspace(0.0, 2.0, 21), noise=0.01, rtol=1e-10
    )
    theta = exp.theta0
    jac = np.asarray(sensitivities(exp, theta, log=True))
    f = jax.jit(exp.fn)
    for i in range(4):
        h = 1e-5
        up, down = theta.copy(), theta.copy()
        up[i] *= np.exp(h)
        down[i] *= np.exp(-h)
        fd = (np.asarray(f(jnp.asarray(up))) - np.asarray(f(jnp.asarray(down)))) / (2 * h)
        # central differences: truncation ~h^2, solver noise ~1e-10/h
        assert np.max(np.abs(jac[..., i] - fd)) < 1e-5 * np.max(np.abs(fd))


def test_pendulum_profiles_classify(pendulum_report):
    cls = {p.name: p.classification for p in pendulum_report.profiles}
    for name in ("m", "L", "b", "g"):
        assert cls[name] == "structurally non-identifiable"
    assert cls["g/L"] == "identifiable"
    assert cls["b/(L^2*m)"] == "identifiable"
    gl = next(p for p in pendulum_report.profiles if p.name == "g/L")
    lo, hi = gl.interval
    assert lo < 9.81 / 1.5 < hi
    # the interval matches the Cramer-Rao bound to first order (profile ~ quadratic here)
    rel = pendulum_report.monomial_crb_relative[pendulum_report.combinations.monomial_text.index("g/L")]
    np.testing.assert_allclose((hi - lo) / 2 / (9.81 / 1.5), np.sqrt(CHI2_95) * rel, rtol=0.02)


def test_report_views(pendulum_report, tmp_path):
    r = pendulum_report
    text = r.to_markdown()
    assert "Rank 2 of 4" in text and "g/L" in text and "structurally non-identifiable" in text
    data = json.loads(r.to_json(tmp_path / "report.json"))
    assert data["rank"] == 2 and data["crb"]["m"] == "inf"
    assert set(data["combinations"]["monomials"]) == {"g/L", "b/(L^2*m)"}
    assert json.loads((tmp_path / "report.json").read_text()) == data
    fig = r.plot()
    assert len(fig.axes) == 2 + len(r.profiles)
    matplotlib.pyplot.close("all")


# ---------------------------------------------------------------------------- walker
@pytest.fixture(scope="module")
def walker_setup():
    w = jaxid.Walker(m=80.0, k=20000.0, l0=1.0, channels=("x", "y", "grf_x", "grf_y"))
    y0 = w.initial_state(0.9782, 1.090)
    ts = jnp.arange(0.0, 2.0 + 1e-9, 0.1)
    kin = Experiment.from_model(w, y0, ts, noise=1e-3, params=("m", "k", "l0"), channels=("x", "y"))
    fp = Experiment.from_model(w, y0, ts, noise=10.0, params=("m", "k", "l0"), channels=("grf_x", "grf_y"))
    return w, kin, fp


def test_walker_kinematics_rank_two_with_k_over_m(walker_setup):
    _, kin, _ = walker_setup
    r = analyze(kin, spread=0.005)
    assert r.rank == 2
    v = r.spectrum.null_space[:, 0]
    assert abs(v @ np.array([1.0, 1.0, 0.0]) / np.sqrt(2)) > 1 - 1e-8
    assert sorted(r.combinations.monomial_text) == ["k/m", "l0"]
    assert r.combinations.scaling == [[1, 1, 0]]
    assert r.combinations.num_points == 4  # every check point simulated
    assert np.isinf(r.crb[0]) and np.isinf(r.crb[1]) and np.isfinite(r.crb[2])


def test_walker_with_forces_is_full_rank(walker_setup):
    _, kin, fp = walker_setup
    r = analyze([kin, fp], spread=0.005)
    assert r.rank == 3
    assert np.all(np.isfinite(r.crb))
    assert r.combinations.scaling == [] and r.combinations.non_scaling == 0
    # the force plate alone already separates m from k: forces scale with m at fixed k/m
    f_kin = fisher_information(kin, kin.theta0, log=True)
    f_all = fisher_information([kin, fp], kin.theta0, log=True)
    assert np.linalg.matrix_rank(f_all) == 3 and np.linalg.matrix_rank(f_kin, tol=1e-8 * f_kin.max()) == 2


def test_walker_failure_is_a_clear_error():
    w = jaxid.Walker(m=80.0, k=2000.0, l0=1.0)  # far too soft: falls
    exp = Experiment.from_model(w, w.initial_state(0.9782, 1.090), jnp.arange(0.0, 2.0, 0.1), noise=1e-3)
    with pytest.raises(ValueError, match=r"theta.*fall"):
        analyze(exp, check_points=0)


# ---------------------------------------------------------------------------- non-scaling
def test_non_scaling_degeneracy_gives_no_false_monomial():
    ts = jnp.linspace(0.0, 3.0, 30)
    exp = Experiment(
        lambda th: jnp.sin((th[0] + th[1]) * ts) + th[2] * ts, noise=0.01, param_names=("p1", "p2", "p3")
    )
    r = analyze(exp, np.array([1.0, 2.0, 0.5]))
    assert r.rank == 2
    c = r.combinations
    assert c.non_scaling == 1 and c.scaling == []
    assert c.monomial_text == ["p3"]  # nothing in p1 or p2
    assert "p1 + p2" in c.linear_text
    assert "not scaling symmetries" in c.statement
    assert np.isinf(r.crb[0]) and np.isinf(r.crb[1]) and np.isfinite(r.crb[2])


def test_check_points_from_key_and_deprecated_seed(linear_exp):
    # log scale (positive theta): theta_j = theta exp(spread u_j), u_j ~ U[-1, 1]^p
    spread = 0.1
    default = analyze(linear_exp, THETA_LIN, check_points=3, spread=spread)
    u0 = np.random.default_rng(0).uniform(-1.0, 1.0, size=(3, 3))  # the former default seed=0
    np.testing.assert_allclose(default.check_points, THETA_LIN * np.exp(spread * u0), rtol=1e-14)
    with pytest.warns(DeprecationWarning, match=r"key=jax\.random\.key"):
        seeded = analyze(linear_exp, THETA_LIN, check_points=3, spread=spread, seed=4)
    u4 = np.random.default_rng(4).uniform(-1.0, 1.0, size=(3, 3))
    np.testing.assert_allclose(seeded.check_points, THETA_LIN * np.exp(spread * u4), rtol=1e-14)
    key = jax.random.key(4)
    keyed = analyze(linear_exp, THETA_LIN, check_points=3, spread=spread, key=key)
    u = np.asarray(jax.random.uniform(key, (3, 3), dtype=float, minval=-1.0, maxval=1.0))
    np.testing.assert_allclose(keyed.check_points, THETA_LIN * np.exp(spread * u), rtol=1e-14)
    assert keyed.rank == seeded.rank == default.rank == 3  # the linear map has full rank everywhere
    with pytest.raises(TypeError, match="not both"):
        analyze(linear_exp, THETA_LIN, key=key, seed=1)
    with pytest.raises(TypeError, match=r"key must be a jax\.random\.key"):
        analyze(linear_exp, THETA_LIN, key=4)


# ---------------------------------------------------------------------------- building blocks
def test_numerical_rank_rules():
    s = np.array([10.0, 1.0, 1e-12, 1e-13])
    nr = numerical_rank(s, (100, 4))
    assert (nr.rank, nr.rule) == (2, "gap")
    assert s[2] < nr.threshold < s[1] and "gap" in nr.rule_detail
    # no gap below sqrt(eps): the tolerance rule decides, at s_1 max(N, p) eps
    s2 = np.array([1.0, 1e-3, 1e-6])
    nr2 = numerical_rank(s2, (50, 3))
    assert (nr2.rank, nr2.rule) == (3, "tolerance")
    assert nr2.threshold == pytest.approx(50 * np.finfo(float).eps)
    assert numerical_rank(s2, (50, 3), rtol=1e-4).rank == 2
    assert numerical_rank(np.zeros(3), (5, 3)).rank == 0
    with pytest.raises(ValueError, match="rule"):
        numerical_rank(s, (4, 4), rule="bogus")


def test_format_and_collinearity():
    assert format_monomial([-1, 1, 0], ("m", "k", "l0")) == "k/m"
    assert format_monomial([-1, -2, 1, 0], ("m", "L", "b", "g")) == "b/(L^2*m)"
    assert format_monomial([0, 0, 1], ("m", "k", "l0")) == "l0"
    assert format_monomial([-1, 0], ("a", "b")) == "1/a"
    w = np.array([[1.0, 2.0, 0.0], [1.0, 2.0, 1.0], [0.0, 0.0, 1.0]])
    assert np.isinf(collinearity_index(w, [0, 1]))
    assert collinearity_index(np.eye(3)) == pytest.approx(1.0)


# ---------------------------------------------------------------------------- bad input
def test_errors_name_the_argument(linear_exp):
    for bad in (0.0, -1.0, np.nan, [0.1, 0.0]):
        with pytest.raises(ValueError, match="noise"):
            Experiment(linear, noise=bad)
    with pytest.raises(ValueError, match="theta must have 3 parameters"):
        analyze(linear_exp, np.ones(4))
    with pytest.raises(ValueError, match="theta must have shape"):
        fisher_information(linear_exp, np.ones((2, 2, 3)))
    with pytest.raises(ValueError, match="theta must be positive"):
        analyze(linear_exp, np.array([1.0, -2.0, 3.0]))
    with pytest.raises(ValueError, match="names"):
        analyze(linear_exp, THETA_LIN, names=("a", "b"))
    nan_exp = Experiment(lambda th: jnp.log(th[0] - 2.0) * jnp.ones(3), noise=1.0)
    with pytest.raises(ValueError, match=r"non-finite observations at theta"):
        fisher_information(nan_exp, np.array([1.0]))
    with pytest.raises(ValueError, match=r"theta\[1\]"):
        fisher_information(nan_exp, np.array([[3.0], [1.0]]))
    flat = Experiment(lambda th: jnp.stack([th[0] * jnp.ones(4), jnp.ones(4)], -1), noise=0.1, relative=True)
    with pytest.raises(ValueError, match="relative noise"):
        fisher_information(flat, np.array([1.0]))
    with pytest.raises(ValueError, match="does not broadcast"):
        fisher_information(Experiment(linear, noise=np.ones(5)), THETA_LIN)
    with pytest.raises(ValueError, match="unknown parameter"):
        profile_likelihood(linear_exp, THETA_LIN, directions=["zz"])
    with pytest.raises(TypeError, match="Experiment"):
        analyze(linear, THETA_LIN)
    pend = jaxid.Pendulum(m=1.0, L=1.0)
    with pytest.raises(ValueError, match="params"):
        Experiment.from_model(pend, jnp.zeros(2), jnp.linspace(0, 1, 5), noise=0.1, params=("m", "q"))
    with pytest.raises(ValueError, match="channels"):
        Experiment.from_model(pend, jnp.zeros(2), jnp.linspace(0, 1, 5), noise=0.1, channels=("x",))
    with pytest.raises(ValueError, match="y0"):
        Experiment.from_model(pend, jnp.zeros(3), jnp.linspace(0, 1, 5), noise=0.1)
