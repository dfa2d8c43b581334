"""The gait data set generator: determinism, rejections, noise and the on-disk round trip."""

import numpy as np
import pytest

from jaxid import generate_gait_dataset, load_dataset
from jaxid.data import NO_GAIT, add_noise

SMALL = dict(n=24, chunk_size=32, duration=3.0, progress=False)


@pytest.fixture(scope="module")
def dataset():
    return generate_gait_dataset(seed=5, channels=("x", "y", "grf_y"), noise=0.05, **SMALL)


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
    assert d.gait_eigenvalue.shape == (24,) and np.all(d.gait_eigenvalue > 0)
    # Rejections are counted by reason and the rate is consistent with the counts.
    assert set(d.rejected) >= {NO_GAIT}
    n_rej = sum(d.rejected.values())
    # Candidates are whole chunks: kept + rejected + the unused tail of the last chunk.
    assert d.config["candidates"] % SMALL["chunk_size"] == 0 and d.config["candidates"] >= n_rej + 24
    assert d.rejection_rate == pytest.approx(n_rej / d.config["candidates"])


def test_noise_is_a_fraction_of_each_channel_sd(dataset):
    d = dataset
    resid = d.obs - d.obs_clean
    ratio = resid.std(axis=(0, 1)) / d.obs_clean.std(axis=(0, 1))
    np.testing.assert_allclose(ratio, 0.05, rtol=0.1)
    with pytest.raises(ValueError, match="fraction must be >= 0"):
        add_noise(d.obs, -0.1, None)


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
    for name in ("params", "obs", "obs_clean", "ts", "initial_states", "gait_eigenvalue"):
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
