"""The gait data set generator: records that any accurate integrator reproduces, rejections by
reason, determinism, noise and the on-disk round trip."""

import math

import numpy as np
import pytest
from references import tile_period, walker_find_gait_reference, walker_gait_reference, walker_period_reference

from jaxid import Walker, generate_gait_dataset, load_dataset
from jaxid.walker.data import (
    DEFAULT_DT,
    NO_GAIT,
    TABLE_DT,
    _block_size,
    _gait_table,
    _max_abs_eigenvalue_2x2,
    add_noise,
    periodic_records,
)

SMALL = dict(n=24, chunk_size=32, duration=3.0, progress=False)
ALPHA0, G = math.radians(69.0), 9.81


@pytest.fixture(scope="module")
def dataset():
    return generate_gait_dataset(seed=5, channels=("x", "y", "grf_y"), noise=0.05, **SMALL)


@pytest.fixture(scope="module")
def gait_records():
    """640 records of 15 s (default priors, one chunk: integrated in blocks of 160 sorted by
    period) and six of them across the gait eigenvalue range."""
    data = generate_gait_dataset(640, seed=4242, chunk_size=640, progress=False)
    assert _block_size(640) == 160
    order = np.argsort(data.gait_eigenvalue)
    return data, order[[0, 160, 320, 480, 560, 639]]


def test_dataset_shapes_and_config(dataset):
    d = dataset
    assert len(d) == 24 and d.obs.shape == (24, 31, 3) and d.obs.dtype == np.float32
    assert d.channels == ("x", "y", "grf_y") and d.param_names == ("m", "k", "l0")
    lo = np.asarray([60.0, 8000.0, 0.6])
    hi = np.asarray([75.0, 10000.0, 0.8])
    assert np.all((d.params >= lo) & (d.params <= hi))
    assert d.config["seed"] == 5 and d.config["noise"] == 0.05 and "jax" in d.config["versions"]
    # Every record starts at mid-stance on its gait at 0.94 l0 with the foot under the CoM.
    np.testing.assert_allclose(d.initial_states[:, 1], 0.94 * d.params[:, 2], rtol=1e-12)
    np.testing.assert_allclose(d.obs_clean[:, 0, 1], 0.94 * d.params[:, 2], rtol=1e-6)
    assert np.all(np.isfinite(d.obs))
    assert d.gait_eigenvalue.shape == (24,) and np.all(np.isfinite(d.gait_eigenvalue))
    # Froude-like sanity of the stored gaits: about 0.3 to 0.5 s per step, 0.2 to 0.4 m per step.
    assert np.all((d.gait_step_time > 0.25) & (d.gait_step_time < 0.6))
    assert np.all((d.gait_step_length > 0.15) & (d.gait_step_length < 0.45))
    # Under the default priors every K has a gait: the table is exact and nothing is rejected, so
    # the records' parameters follow the priors as stated.
    assert d.config["gait_mode"] == "table" and d.config["table_error"] < 1e-9
    assert d.rejected == {} and d.rejected_params.shape == (0, 3)
    assert d.config["candidates"] % SMALL["chunk_size"] == 0 and d.rejection_rate == 0.0


def test_gait_eigenvalue_closed_form_matches_numpy():
    """The chunk's closed-form ``max |lambda|`` of the 2x2 return-map Jacobian against NumPy's
    eigenvalues: real pairs, complex pairs, a repeated root and a singular matrix."""
    rng = np.random.default_rng(0)
    j = rng.normal(size=(500, 4)) * rng.uniform(0.1, 3.0, size=(500, 1))
    j = np.concatenate([j, [[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, -1.0, 0.0], [1.0, 2.0, 2.0, 4.0]]])
    want = np.max(np.abs(np.linalg.eigvals(j.reshape(-1, 2, 2))), axis=-1)
    got = np.asarray(_max_abs_eigenvalue_2x2(j))
    disc = 0.25 * (j[:, 0] + j[:, 3]) ** 2 - (j[:, 0] * j[:, 3] - j[:, 1] * j[:, 2])
    assert (disc < 0).sum() > 50 and (disc > 0).sum() > 50  # both kinds of pairs are covered
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_block_size_divides_each_devices_records():
    assert _block_size(1024) == 256 and _block_size(512) == 256 and _block_size(1000) == 250
    assert _block_size(640) == 160 and _block_size(300) == 150
    assert _block_size(256) is None and _block_size(100) is None  # one block: no lax.map
    assert _block_size(257) is None  # a prime: blocks of one record would be slower than none


def test_chunk_gaits_equal_the_host_side_table(gait_records):
    """The compiled chunk's gaits (JAX interpolation, closed-form eigenvalue, in blocks sorted by
    period) against the same table evaluated on the host (NumPy's barycentric formula and
    ``numpy.linalg.eigvals``), record by record."""
    data, _ = gait_records
    m, k, l0 = data.params.T
    priors = data.config["priors"]
    k_range = (
        priors["k"][0] * priors["l0"][0] / (priors["m"][1] * G),
        priors["k"][1] * priors["l0"][1] / (priors["m"][0] * G),
    )
    table = _gait_table(k_range, ALPHA0, G, 0.94, TABLE_DT)
    gait = table(k * l0 / (m * G))
    root = np.sqrt(G * l0)
    np.testing.assert_allclose(data.initial_states[:, 2], gait[:, 0] * root, rtol=1e-13)
    np.testing.assert_allclose(data.gait_step_time, gait[:, 2] * l0 / root, rtol=1e-13)
    eig = np.max(np.abs(np.linalg.eigvals(gait[:, 4:].reshape(-1, 2, 2))), axis=-1)
    np.testing.assert_allclose(data.gait_eigenvalue, eig, rtol=1e-12)


def test_records_are_their_periodic_gaits_in_scipy(gait_records):
    """Each record, float32 as stored, is within 2e-6 m over its 15 s of the periodic gait that
    SciPy finds by itself (root finding on its own event loop at rtol 1e-12, then one period tiled).
    Records span the eigenvalue range, the most unstable above 1.5 (forward integration would leave
    these gaits by up to a millimetre, and differ between integrators by up to 0.22 m)."""
    data, pick = gait_records
    eig = data.gait_eigenvalue[pick]
    assert eig.min() < 1.0 and eig.max() > 1.5 and np.sum(eig > 1.3) >= 2, eig
    for i in pick:
        m, k, l0 = data.params[i]
        ref = walker_gait_reference(m, k, l0, ALPHA0, G, 0.94 * l0, data.initial_states[i, 2:4])
        assert ref is not None
        vx, _, period, length, states = ref
        # The gaits agree (Newton at both ends converges to ~1e-13; the step times and lengths
        # inherit the table's interpolation error, measured 1e-10 and below).
        assert abs(data.initial_states[i, 2] - vx) < 1e-9
        assert abs(data.gait_step_time[i] - period) < 1e-9 and abs(data.gait_step_length[i] - length) < 1e-9
        # float32 storage rounds x (up to ~17 m) to about 1e-6 m; measured 4.8e-7 m at most.
        err = np.max(np.abs(data.obs[i] - tile_period(states, period, length, data.ts)))
        assert err < 2e-6, (data.gait_eigenvalue[i], err)


def test_every_step_matches_an_independent_integrator(gait_records):
    """Every step of a record (mid-stance to mid-stance, in float64 as the generator makes it)
    agrees to 1e-7 m with SciPy DOP853 (rtol 1e-12) started at that step's state."""
    data, pick = gait_records
    walkers = Walker(m=data.params[pick, 0], k=data.params[pick, 1], l0=data.params[pick, 2])
    rec = periodic_records(
        walkers, data.initial_states[pick], data.gait_step_time[pick], data.ts, dt0=DEFAULT_DT
    )
    ys, obs, status, mismatch, length = rec.ys, rec.obs, rec.status, rec.mismatch, rec.step_length
    ys, obs = np.asarray(ys), np.asarray(obs)
    assert np.all(np.asarray(status) == 0) and np.all(np.asarray(mismatch) < 1e-8)
    # The stored float32 observations are these records, rounded.
    np.testing.assert_allclose(data.obs[pick], obs, rtol=1e-6, atol=1e-6)
    ts = data.ts
    for j, i in enumerate(pick):
        m, k, l0 = data.params[i]
        period, step = data.gait_step_time[i], float(length[j])
        n_steps = int(np.ceil(ts[-1] / period))
        worst = 0.0
        for n in range(n_steps):
            # The step's state is the gait's mid-stance state, n step lengths ahead (SciPy starts
            # on a foot at x = 0; its x is shifted back).
            out = walker_period_reference(m, k, l0, ALPHA0, G, data.initial_states[i, 1:4])
            assert out is not None
            inside = (ts >= n * period) & (ts <= (n + 1) * period)
            if not inside.any():
                continue
            ref = out[3](ts[inside] - n * period)[:, :2]
            ref[:, 0] += n * step
            worst = max(worst, float(np.max(np.abs(ys[j][inside, :2] - ref))))
        # Measured below 3e-9 m at the default 25 ms step (1e-11 m at 10 ms).
        assert worst < 1e-7, (data.gait_eigenvalue[i], worst)


@pytest.mark.slow
def test_rejections_are_counted_by_reason():
    """A prior whose low-K end has no gait at 0.94 l0 (K = k l0/(m g) from 3 to 6; the family
    ends near K = 3.8): the generator falls back to per-record Newton and rejects exactly the
    candidates without a gait. Checked independently: SciPy confirms every kept record's gait (its
    own root finding from the record's speeds), finds no gait for any rejected candidate from its
    own speed scan, and the rejected ones lie below every kept one in K."""
    priors = dict(m=(70.0, 70.0), l0=(0.7, 0.7), k=(3.0 * 70 * G / 0.7, 6.0 * 70 * G / 0.7))
    d = generate_gait_dataset(8, seed=3, chunk_size=16, duration=3.0, priors=priors, progress=False)
    assert d.config["gait_mode"] == "newton"
    assert set(d.rejected) == {NO_GAIT} and d.rejected[NO_GAIT] == len(d.rejected_params) > 0
    assert d.config["candidates"] == 16 and len(d) == 8
    k_ratio = d.params[:, 1] * d.params[:, 2] / (d.params[:, 0] * G)
    k_rejected = d.rejected_params[:, 1] * d.rejected_params[:, 2] / (d.rejected_params[:, 0] * G)
    assert k_rejected.max() < k_ratio.min()
    for (m, k, l0), s in zip(d.params, d.initial_states, strict=True):
        assert walker_gait_reference(m, k, l0, ALPHA0, G, 0.94 * l0, s[2:4], rtol=1e-11) is not None
    for m, k, l0 in d.rejected_params:
        assert walker_find_gait_reference(m, k, l0, ALPHA0, G, 0.94 * l0) is None


def test_noise_is_a_fraction_of_each_channel_sd(dataset):
    d = dataset
    resid = d.obs - d.obs_clean
    ratio = resid.std(axis=(0, 1)) / d.obs_clean.std(axis=(0, 1))
    np.testing.assert_allclose(ratio, 0.05, rtol=0.1)
    with pytest.raises(ValueError, match="fraction must be >= 0"):
        add_noise(d.obs, -0.1, key=None)


def test_same_seed_same_data_and_round_trip(dataset, tmp_path):
    again = generate_gait_dataset(seed=5, channels=("x", "y", "grf_y"), noise=0.05, **SMALL)
    np.testing.assert_array_equal(again.params, dataset.params)
    np.testing.assert_array_equal(again.obs, dataset.obs)
    assert again.rejected == dataset.rejected
    other = generate_gait_dataset(seed=6, channels=("x", "y", "grf_y"), noise=0.05, **SMALL)
    assert not np.array_equal(other.params, dataset.params)

    path = tmp_path / "gait.npz"
    dataset.save(path)
    back = load_dataset(path)
    for name in (
        "params",
        "obs",
        "obs_clean",
        "ts",
        "initial_states",
        "gait_eigenvalue",
        "gait_step_time",
        "gait_step_length",
        "rejected_params",
    ):
        np.testing.assert_array_equal(getattr(back, name), getattr(dataset, name))
    assert back.channels == dataset.channels and back.rejected == dataset.rejected
    assert back.config == dataset.config


def test_generator_errors():
    with pytest.raises(ValueError, match="n must be a positive int"):
        generate_gait_dataset(0)
    with pytest.raises(ValueError, match="unknown parameter 'g'"):
        generate_gait_dataset(4, priors={"g": (9.0, 10.0)})
    with pytest.raises(ValueError, match="channels"):
        generate_gait_dataset(4, channels=("x", "speed"))
    with pytest.raises(ValueError, match="noise must be >= 0"):
        generate_gait_dataset(4, noise=-1.0)
    with pytest.raises(ValueError, match="dt0 must be a positive"):
        generate_gait_dataset(4, dt0=-0.01)
