"""Experiment design criteria (jaxid.identify.design) and the ranking of candidate additions
(jaxid.study.rank_designs) on linear-Gaussian models y = A theta + noise, whose Fisher information
A^T A / sigma^2 gives every criterion in closed form (computed here in NumPy)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxid.identify import (
    Experiment,
    design_criteria,
    fisher_criteria,
    information_root,
    log_det,
    smallest_eigenvalue,
)
from jaxid.study import rank_designs

NAMES = ("a", "b", "c")
RNG = np.random.default_rng(3)
A_BASE = RNG.normal(size=(8, 3))
SIGMA = 0.2
THETAS = np.array([[1.0, 2.0, 0.5], [0.7, 1.3, 2.2], [2.0, 0.4, 1.1]])


def linear(a, sigma, name):
    a = np.atleast_2d(np.asarray(a, dtype=float))
    return Experiment(lambda th: jnp.asarray(a) @ th, sigma, param_names=NAMES, name=name)


def closed_form(f):
    """E-, D-optimality and the Cramer-Rao bounds of a nonsingular information, by hand."""
    ev = np.sort(np.linalg.eigvalsh(f))[::-1]
    return ev, ev[-1], np.linalg.slogdet(f)[1], np.sqrt(np.diag(np.linalg.inv(f)))


def test_criteria_equal_the_closed_form_natural_and_log():
    exp = linear(A_BASE, SIGMA, "base")
    f = A_BASE.T @ A_BASE / SIGMA**2
    crit = design_criteria(exp, THETAS)
    ev, lmin, ld, crb = closed_form(f)
    # the information does not depend on theta: every draw has the closed form (SVD vs eigh: 1e-10)
    np.testing.assert_allclose(crit.eigenvalues, np.tile(ev, (3, 1)), rtol=1e-10)
    np.testing.assert_allclose(crit.lambda_min, lmin, rtol=1e-10)
    np.testing.assert_allclose(crit.log_det, ld, rtol=1e-10)
    np.testing.assert_allclose(crit.crb, np.tile(crb, (3, 1)), rtol=1e-10)
    assert crit.full_rank and crit.identifiable.all()
    # log parameters: F_log = D F D varies over the draws; the averages are the means of the closed forms
    crit_log = design_criteria(exp, THETAS, log=True)
    per = [closed_form(np.diag(t) @ f @ np.diag(t)) for t in THETAS]
    np.testing.assert_allclose(crit_log.mean_lambda_min, np.mean([c[1] for c in per]), rtol=1e-10)
    np.testing.assert_allclose(crit_log.mean_log_det, np.mean([c[2] for c in per]), rtol=1e-10)
    np.testing.assert_allclose(crit_log.mean_crb, np.mean([c[3] for c in per], axis=0), rtol=1e-10)
    # a direction target: the bound on a - b is sqrt(u^T F^-1 u)
    u = np.array([1.0, -1.0, 0.0])
    d = design_criteria(exp, THETAS[:1], targets={"a-b": u})
    np.testing.assert_allclose(d.crb[0, 0], np.sqrt(u @ np.linalg.solve(f, u)), rtol=1e-10)
    assert d.targets == ("a-b",)


def test_pure_jax_criteria_are_jittable_and_match():
    w = A_BASE / SIGMA
    f = w.T @ w
    r = jax.jit(information_root)(jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(r.T @ r), f, rtol=1e-10)
    np.testing.assert_allclose(float(jax.jit(log_det)(w)), np.linalg.slogdet(f)[1], rtol=1e-10)
    np.testing.assert_allclose(float(jax.jit(smallest_eigenvalue)(w)), np.linalg.eigvalsh(f)[0], rtol=1e-10)
    # the D-criterion is differentiable: d log det(W^T W) / dW = 2 W F^-1
    g = jax.grad(log_det)(jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(g), 2 * w @ np.linalg.inv(f), rtol=1e-8)
    # fewer rows than parameters: the root is padded, the information singular
    short = w[:2]
    assert information_root(short).shape == (3, 3)
    assert float(log_det(short)) == -np.inf and float(smallest_eigenvalue(short)) == 0.0


def test_singular_information_reports_rank_and_minus_inf():
    a = A_BASE[:, :2] @ np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])  # c-column = a-column + b-column
    c = fisher_criteria(a / SIGMA, names=NAMES)
    assert c.rank == 2 and c.log_det == -np.inf and c.lambda_min == 0.0
    f = a.T @ a / SIGMA**2
    ev = np.sort(np.linalg.eigvalsh(f))[::-1]
    np.testing.assert_allclose(c.log_pdet, np.sum(np.log(ev[:2])), rtol=1e-10)
    assert np.all(np.isinf(c.crb))  # null direction (1, 1, -1) touches every parameter
    # a direction orthogonal to the null space keeps a finite bound: sqrt(u^T F^+ u)
    u = np.array([1.0, -1.0, 0.0])
    cu = fisher_criteria(a / SIGMA, names=NAMES, targets={"a-b": u})
    np.testing.assert_allclose(cu.crb[0], np.sqrt(u @ np.linalg.pinv(f) @ u), rtol=1e-8)


# ----------------------------------------------------------------------------- the ranking
def test_ranking_equals_closed_form_and_one_candidate_fixes_the_rank():
    # base: c's column is a + b (null direction (1, 1, -1)); candidates observe one combination each
    a_base = A_BASE[:, :2] @ np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    rows = {"obs_c": [0.0, 0.0, 1.0], "obs_a_minus_b": [1.0, -1.0, 0.0], "obs_a": [1.0, 0.0, 0.0]}
    noise = {"obs_c": 0.5, "obs_a_minus_b": 0.01, "obs_a": 0.1}
    base = linear(a_base, SIGMA, "base")
    cands = {n: linear(r, noise[n], n) for n, r in rows.items()}
    ranking = rank_designs(base, cands, THETAS[:2])
    f_base = a_base.T @ a_base / SIGMA**2
    v = np.array([1.0, 1.0, -1.0]) / np.sqrt(3)  # the base null direction
    assert ranking.base.min_rank == 2 and not ranking.base.identifiable.any()
    # a - b is orthogonal to the null direction: adds information but no rank
    useless = ranking.row("obs_a_minus_b")
    assert useless.criteria.min_rank == 2 and useless.identified == () and useless.null_information == 0
    assert useless.null_resolved == 0 and ranking.row("obs_c").null_resolved == 1
    assert ranking.rows[-1].additions == ("obs_a_minus_b",)
    for n in ("obs_c", "obs_a"):
        r = np.asarray(rows[n])[None]
        f = f_base + r.T @ r / noise[n] ** 2
        ev, lmin, ld, crb = closed_form(f)
        row = ranking.row(n)
        np.testing.assert_allclose(row.criteria.eigenvalues[0], ev, rtol=1e-9)
        np.testing.assert_allclose(row.criteria.mean_lambda_min, lmin, rtol=1e-9)
        np.testing.assert_allclose(row.criteria.mean_log_det, ld, rtol=1e-9)
        np.testing.assert_allclose(row.criteria.mean_crb, crb, rtol=1e-9)
        # information along the base's null direction: v^T F v (one null direction: a 1x1 matrix)
        np.testing.assert_allclose(row.null_information, v @ f @ v, rtol=1e-9)
        assert row.identified == NAMES and np.all(np.isinf(row.tightening))
    # ranked by the information along the null direction: (1/0.1)^2/3 for obs_a beats (1/0.5)^2/3
    assert [r.additions[0] for r in ranking.rows] == ["obs_a", "obs_c", "obs_a_minus_b"]
    assert ranking.smallest_set == ("obs_a",)
    md = ranking.table()
    assert "+ obs_a" in md and "Smallest set of additions" in md and "obs_a" in ranking.summary()


def test_smallest_set_needs_two_and_is_searched_by_size():
    # base observes a + b + c only: rank 1; each candidate adds one direction
    base = linear([[1.0, 1.0, 1.0]], SIGMA, "base")
    rows = {"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.0], "a_minus_b": [1.0, -1.0, 0.0], "sum_again": [1, 1, 1]}
    cands = {n: linear(r, 0.1, n) for n, r in rows.items()}
    ranking = rank_designs(base, cands, THETAS[:1])
    assert all(r.criteria.min_rank == 2 or n == "sum_again" for r in ranking.rows for n in r.additions)
    assert ranking.row("sum_again").criteria.min_rank == 1 and ranking.row("sum_again").null_resolved == 0
    assert ranking.row("a").null_resolved == 1 and ranking.row("a").null_information == 0  # 1 of 2
    # by hand: the pairs whose rows with (1, 1, 1) span R^3, and the best of them by the order
    ok = [
        pair
        for pair in itertools.combinations(rows, 2)
        if np.linalg.matrix_rank(np.array([[1.0, 1, 1], rows[pair[0]], rows[pair[1]]])) == 3
    ]
    assert ranking.smallest_set in ok and len(ranking.smallest_set) == 2
    chosen = np.array([[1.0, 1, 1]] + [rows[n] for n in ranking.smallest_set])
    w = chosen / np.array([SIGMA, 0.1, 0.1])[:, None]
    _, _, ld, crb = closed_form(w.T @ w)
    np.testing.assert_allclose(ranking.smallest.criteria.mean_crb, crb, rtol=1e-9)
    np.testing.assert_allclose(ranking.smallest.criteria.mean_log_det, ld, rtol=1e-9)
    assert ranking.sets_searched == 4 + 6  # every single, then every pair
    # a target that one candidate settles: c is identifiable with {a, b}, but with a alone?
    only_a = rank_designs(base, cands, THETAS[:1], targets=["a"], max_size=1)
    assert only_a.smallest_set == ("a",) and only_a.rows[0].additions == ("a",)
    none = rank_designs(base, {"sum_again": cands["sum_again"]}, THETAS[:1])
    assert none.smallest_set is None and "No set" in none.summary()
    assert rank_designs(base, cands, THETAS[:1], targets={"sum": [1.0, 1, 1]}).smallest_set == ()


def test_ranking_json_and_plot(tmp_path):
    import json

    import matplotlib

    matplotlib.use("Agg")
    base = linear([[1.0, 1.0, 1.0]], SIGMA, "base")
    cands = {"a": linear([1.0, 0, 0], 0.1, "a"), "bc": linear([[0.0, 1, 0], [0, 0, 1]], 0.1, "bc")}
    ranking = rank_designs(base, cands, THETAS, log=True)
    data = json.loads(json.dumps(ranking.to_dict()))
    assert data["smallest_set"] == ["bc"] and data["base"]["mean_crb"]["a"] == "inf"
    fig = ranking.plot()
    fig.savefig(tmp_path / "design.png")
    matplotlib.pyplot.close(fig)


def test_bad_input_is_named():
    base = linear(A_BASE, SIGMA, "base")
    with pytest.raises(ValueError, match="targets: 'z' is not a parameter"):
        rank_designs(base, {"x": base}, THETAS, targets=["z"])
    with pytest.raises(TypeError, match="candidates must be a non-empty mapping"):
        rank_designs(base, {}, THETAS)
    with pytest.raises(TypeError, match=r"candidates\['x'\]"):
        rank_designs(base, {"x": "not an experiment"}, THETAS)
    with pytest.raises(ValueError, match="max_size"):
        rank_designs(base, {"x": base}, THETAS, max_size=2)
    with pytest.raises(ValueError, match="thetas must have shape"):
        design_criteria(base, np.ones((2, 4)))
    with pytest.raises(ValueError, match="positive"):
        design_criteria(base, -THETAS, log=True)
    other = Experiment(lambda th: th, 1.0, param_names=("x", "y", "z"))
    with pytest.raises(ValueError, match="different parameters"):
        rank_designs(base, {"o": other}, THETAS)
    with pytest.raises(ValueError, match=r"targets\['d'\]"):
        fisher_criteria(A_BASE, targets={"d": [1.0, 0.0]})
