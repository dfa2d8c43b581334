"""Estimators, training, metrics, the identifiability ceiling, save/load and bad input."""

import os
import subprocess
import sys

import numpy as np
import pytest

from jaxid import nn

LIN_CONFIG = nn.TrainConfig(epochs=60, batch_size=32, learning_rate=3e-3, patience=None, progress=False)


@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5, 2)).astype(np.float32)
    a = rng.normal(size=(10, 2))
    y = x.reshape(600, 10) @ a + np.array([3.0, -100.0])
    return x, y


@pytest.fixture(scope="module")
def linear_fit(linear_data):
    x, y = linear_data
    return nn.train(x, y, ("a", "b"), arch="mlp", depth=2, width=32, config=LIN_CONFIG)


def test_training_learns_a_linear_map(linear_data, linear_fit):
    x, y = linear_data
    hist = linear_fit.history
    # Standardised targets start at loss ~2 (two unit-variance targets); the map is learnable.
    assert hist["train_loss"][-1] < 0.02 * hist["train_loss"][0]
    te = linear_fit.split["test"]
    m = nn.regression_metrics(y[te], linear_fit.estimator.predict(x[te]), ("a", "b"))
    assert m.names == ("a", "b") and np.all(m.r2 > 0.98)
    assert np.isfinite(linear_fit.samples_per_second) and linear_fit.samples_per_second > 0


def test_split_is_80_10_10_and_disjoint(linear_fit):
    s = linear_fit.split
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (480, 60, 60)
    assert len(np.unique(np.concatenate(list(s.values())))) == 600


def test_best_checkpoint_is_restored(linear_data):
    x, y = linear_data
    cfg = nn.TrainConfig(epochs=40, batch_size=32, learning_rate=3e-2, patience=5, members=2, progress=False)
    res = nn.train(x, y, ("a", "b"), arch="mlp", depth=2, width=16, config=cfg)
    val = np.asarray(res.history["val_loss"])  # (epochs, members)
    best = val.min(0)
    # The returned networks are each member's best epoch: recompute their validation loss.
    vi = res.split["val"]
    preds = res.estimator.predict_members(x[vi])
    z = (preds - np.asarray(res.estimator.y_mean)) / np.asarray(res.estimator.y_scale)
    zt = (y[vi] - np.asarray(res.estimator.y_mean)) / np.asarray(res.estimator.y_scale)
    recomputed = np.mean(np.sum((z - zt) ** 2, -1), -1)
    np.testing.assert_allclose(recomputed, best, rtol=1e-4)
    assert res.history["best_epoch"] == [int(np.argmin(val[:, j])) + 1 for j in range(2)]
    if res.history["stopped_early"]:
        assert res.history["epochs_run"] - max(res.history["best_epoch"]) == 5


def test_same_seed_same_result_and_ensemble_spread(linear_data):
    x, y = linear_data
    cfg = nn.TrainConfig(epochs=3, batch_size=64, members=3, progress=False, seed=4)
    r1 = nn.train(x, y, ("a", "b"), arch="mlp", depth=1, width=8, config=cfg)
    r2 = nn.train(x, y, ("a", "b"), arch="mlp", depth=1, width=8, config=cfg)
    p1, sd = r1.estimator.predict(x[:20], return_std=True)
    np.testing.assert_array_equal(p1, r2.estimator.predict(x[:20]))
    assert np.all(sd > 0)  # members differ


@pytest.mark.parametrize("arch", ["cnn", "gru"])
def test_cnn_and_gru_train(arch):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 12, 2)).astype(np.float32)
    y = np.stack([x[:, :, 0].mean(1), x[:, -1, 1]], -1)
    cfg = nn.TrainConfig(epochs=15, batch_size=20, learning_rate=3e-3, patience=None, progress=False)
    res = nn.train(x, y, ("mean0", "last1"), arch=arch, width=16, config=cfg)
    assert res.history["train_loss"][-1] < 0.5 * res.history["train_loss"][0]
    assert res.estimator.predict(x[:5]).shape == (5, 2)


def test_save_load_round_trip(tmp_path, linear_data, linear_fit):
    x, _ = linear_data
    path = tmp_path / "est.eqx"
    linear_fit.estimator.save(path, metadata={"note": "linear"})
    est, meta = nn.load_estimator(path)
    assert meta == {"note": "linear"} and est.names == ("a", "b") and est.arch == "mlp"
    np.testing.assert_array_equal(est.predict(x[:10]), linear_fit.estimator.predict(x[:10]))
    (tmp_path / "junk").write_bytes(b"\x00\x01 not json\n")
    with pytest.raises(ValueError, match="not a jaxid estimator"):
        nn.load_estimator(tmp_path / "junk")


def test_metrics_against_hand_computed_values():
    y = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    p = np.array([[1.5, 10.0], [2.0, 22.0], [2.5, 30.0], [4.0, 38.0]])
    m = nn.regression_metrics(y, p, ("u", "v"))
    # u: errors (0.5, 0, -0.5, 0): MSE 0.125, SST 5; v: errors (0, 2, 0, -2): MSE 2, SST 500.
    assert m.names == ("u", "v")
    assert m.rmse[0] == pytest.approx(np.sqrt(0.125))
    assert m.mae[0] == pytest.approx(0.25)
    assert m.r2[0] == pytest.approx(1 - 0.5 / 5)
    assert m.relative_error[0] == pytest.approx((0.5 / 1 + 0.5 / 3) / 4)
    assert m.rmse[1] == pytest.approx(np.sqrt(2.0))
    assert m.r2[1] == pytest.approx(1 - 8 / 500)
    # to_dict(), the form written to results.json: {name: {metric: float}} in METRICS order
    d = m.to_dict()
    assert list(d) == ["u", "v"] and all(list(row) == list(nn.METRICS) for row in d.values())
    assert all(type(v) is float for row in d.values() for v in row.values())
    assert d["u"]["mae"] == pytest.approx(0.25) and d["v"]["r2"] == pytest.approx(1 - 8 / 500)
    # a constant column has no R^2
    assert np.isnan(nn.regression_metrics(np.ones(3), np.array([1.0, 2.0, 3.0])).r2[0])
    with pytest.raises(ValueError, match="same"):
        nn.regression_metrics(y, p[:, :1])


def _closed_form_mass(rho, m_range, k_range):
    """E[m | k/m = rho] for independent uniform m, k: density on the orbit is proportional to m
    on [max(m_lo, k_lo/rho), min(m_hi, k_hi/rho)], so E[m] = 2/3 (b^3 - a^3)/(b^2 - a^2)."""
    a = np.maximum(m_range[0], k_range[0] / rho)
    b = np.minimum(m_range[1], k_range[1] / rho)
    return 2.0 / 3.0 * (b**3 - a**3) / (b**2 - a**2)


def test_ceiling_exact_on_a_closed_form():
    priors = {"m": (60.0, 75.0), "k": (8000.0, 10000.0), "l0": (0.6, 0.8)}
    rng = np.random.default_rng(2)
    theta = np.stack(
        [rng.uniform(60, 75, 500), rng.uniform(8000, 10000, 500), rng.uniform(0.6, 0.8, 500)], -1
    )
    est = nn.scaling_ceiling(theta, [1, 1, 0], priors, ("m", "k", "l0"))
    rho = theta[:, 1] / theta[:, 0]
    exact = _closed_form_mass(rho, priors["m"], priors["k"])
    np.testing.assert_allclose(est[:, 0], exact, rtol=1e-12)
    np.testing.assert_allclose(est[:, 1], rho * exact, rtol=1e-12)  # k = rho m on the orbit
    np.testing.assert_array_equal(est[:, 2], theta[:, 2])  # l0 is identified
    # Opposite exponent signs (the same orbit written as m/k) give the same estimates.
    np.testing.assert_allclose(nn.scaling_ceiling(theta, [-2, -2, 0], priors, ("m", "k", "l0")), est)


def test_ceiling_with_a_prior_density_against_monte_carlo():
    # Log-uniform m (density 1/m) on [1, 4], uniform k on [1, 4]; data carry only k/m.
    priors = {"m": (1.0, 4.0), "k": (1.0, 4.0)}
    rng = np.random.default_rng(3)
    n = 2_000_000
    m = np.exp(rng.uniform(0, np.log(4), n))
    k = rng.uniform(1, 4, n)
    rho = k / m
    bins = np.quantile(rho, np.linspace(0, 1, 41))
    which = np.clip(np.searchsorted(bins, rho) - 1, 0, 39)
    mc = np.bincount(which, m, 40) / np.bincount(which, None, 40)
    centre = np.array([np.median(rho[which == i]) for i in range(40)])
    theta = np.stack([np.ones(40), centre], -1)  # m = 1 lies on each orbit rho = centre
    est = nn.scaling_ceiling(theta, [1, 1], priors, ("m", "k"), log_prior=lambda t: -np.log(t[..., 0]))
    # Bin averages vs the value at the bin median: agreement to about the bin width's effect.
    np.testing.assert_allclose(est[:, 0], mc, rtol=0.02)


def test_bad_configurations_give_clear_errors(linear_data):
    x, y = linear_data
    with pytest.raises(ValueError, match=r"batch_size \(1000\) is larger than the training split"):
        nn.train(x, y, ("a", "b"), config=nn.TrainConfig(batch_size=1000, progress=False))
    with pytest.raises(ValueError, match="empty"):
        nn.train(x[:0], y[:0], ("a", "b"))
    with pytest.raises(ValueError, match="3 names"):
        nn.train(x, y, ("a", "b", "c"))
    with pytest.raises(ValueError, match="unknown arch 'rnn'"):
        nn.train(x, y, ("a", "b"), arch="rnn")
    with pytest.raises(ValueError, match="unknown activation 'sigmoid'"):
        nn.train(x, y, ("a", "b"), activation="sigmoid")
    with pytest.raises(ValueError, match="NaN"):
        nn.train(np.where(x > 2, np.nan, x), y, ("a", "b"))
    with pytest.raises(ValueError, match="loss_weights"):
        nn.train(x, y, ("a", "b"), config=nn.TrainConfig(loss_weights=(1.0,)))
    with pytest.raises(ValueError, match="outside the priors"):
        nn.scaling_ceiling([[100.0, 1.0]], [1, 1], {"m": (1, 2), "k": (1, 2)}, ("m", "k"))


SHARDED_SCRIPT = """
import jax, numpy as np
from jaxid import nn
rng = np.random.default_rng(0)
x = rng.normal(size=(300, 4, 2)).astype(np.float32)
y = x.reshape(300, 8) @ rng.normal(size=(8, 2))
cfg = dict(epochs=5, batch_size=24, members=2, progress=False)
one = nn.train(x, y, ("a", "b"), depth=2, width=16, config=nn.TrainConfig(devices=jax.devices()[:1], **cfg))
two = nn.train(x, y, ("a", "b"), depth=2, width=16, config=nn.TrainConfig(devices=jax.devices()[:2], **cfg))
assert len(jax.devices()) == 2
diff = np.max(np.abs(one.estimator.predict(x) - two.estimator.predict(x)))
print("DIFF", diff)
assert diff < 1e-4 * np.max(np.abs(y)), diff
print("SHARDED-OK")
"""


def test_data_parallel_over_two_devices_matches_one():
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SHARDED_SCRIPT], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SHARDED-OK" in proc.stdout


def test_epochs_compile_once(linear_data):
    x, y = linear_data
    from jaxid.nn.training import _epoch

    cfg = nn.TrainConfig(epochs=2, batch_size=32, patience=None, progress=False)
    start = _epoch._cached._cache_size()
    nn.train(x, y, ("a", "b"), depth=1, width=4, config=cfg)
    # two epochs, one compilation: the state carried from the first epoch into the second keeps
    # its dtypes and structure (no other test trains this network, so the entry is new)
    assert _epoch._cached._cache_size() == start + 1
    before = _epoch._cached._cache_size()
    nn.train(x, y + 1.0, ("a", "b"), depth=1, width=4, config=cfg)
    assert _epoch._cached._cache_size() == before
