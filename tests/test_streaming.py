"""Training streamed from a lazy source (jaxid.nn.streaming) against in-memory training."""

import numpy as np
import pytest

from jaxid import nn
from jaxid.data.store import StoredArray, create_store
from jaxid.nn.streaming import Streamed, epoch_permutations, moments

N, T, C = 400, 12, 2
NAMES = ("a", "b")


def _data(seed=0):
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0.5, 2.0, (N, 2))
    t = np.linspace(0, 1, T)
    s = theta[:, :1] * np.sin(3 * theta[:, 1:2] * t)
    x = np.stack([s, s**2 + 5.0], -1).astype(np.float32)
    return x + 0.01 * rng.standard_normal(x.shape).astype(np.float32), theta


CFG = nn.TrainConfig(epochs=4, batch_size=16, members=2, patience=None, progress=False, split=(0.7, 0.2, 0.1))


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def in_memory(data):
    x, theta = data
    return nn.train(x, theta, NAMES, config=CFG)


@pytest.fixture(scope="module")
def stored(data, tmp_path_factory):
    """The records in an on-disk store, 64 rows per chunk, written chunk by chunk."""
    x, _ = data
    rows = 64
    st = create_store(
        tmp_path_factory.mktemp("stream") / "s",
        config=dict(test="streaming"),
        fields=dict(x=((T, C), "float32")),
        chunk_rows=rows,
        capacity_chunks=-(-N // rows),
    )
    kept = []
    for i in range(st.capacity_chunks):
        part = x[i * rows : (i + 1) * rows]
        block = np.full((rows, T, C), np.nan, np.float32)
        block[: len(part)] = part
        st.write_chunk(i, dict(x=block), kept=len(part))
        kept.append(len(part))
    return StoredArray(st, "x", np.array(kept), N)


def test_moments_against_numpy():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((103, 4, 3)) * [1.0, 1e3, 1e-3] + 1e4).astype(np.float32)
    mean, sd = moments(lambda sl: x[sl], len(x), 10)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(0), rtol=1e-14)
    np.testing.assert_allclose(sd, x64.std(0), rtol=1e-10)


def test_permutations_are_permutations():
    import jax

    p = np.asarray(epoch_permutations(jax.random.key(1), 50, 3, 16, 2))
    assert p.shape == (3, 2, 16)
    for m in range(2):
        assert len(set(p[:, m].ravel().tolist())) == 48  # distinct records: a permutation's prefix
    assert not np.array_equal(p[:, 0], p[:, 1])  # each member its own order


def test_streamed_training_equals_in_memory(data, in_memory):
    """Windows of 100 records (three minibatches of both members, the last window two): every
    epoch in six windows, the validation split in one. The same minibatches and steps as in
    memory; the programs are compiled apart, so the results agree to float32 rounding (not
    necessarily bit for bit)."""
    x, theta = data
    got = nn.train(Streamed(x, window=100), theta, NAMES, config=CFG)  # 3, 3, 3, 3, 3, 2 batches
    np.testing.assert_allclose(got.history["val_loss"], in_memory.history["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(got.history["train_loss"], in_memory.history["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(got.estimator.x_mean, in_memory.estimator.x_mean, rtol=1e-7)
    np.testing.assert_allclose(got.estimator.x_scale, in_memory.estimator.x_scale, rtol=1e-7)
    np.testing.assert_allclose(
        got.estimator.predict(x[:40]), in_memory.estimator.predict(x[:40]), rtol=1e-5, atol=1e-6
    )
    # a wrong order of minibatches (another seed) is far from it: the tolerance above can fail
    other = nn.train(
        Streamed(x, window=40), theta, NAMES, config=CFG.__class__(**{**CFG.to_dict(), "seed": 1})
    )
    assert np.abs(other.estimator.predict(x[:40]) - in_memory.estimator.predict(x[:40])).max() > 1e-3


def test_training_from_an_on_disk_store(data, stored, in_memory):
    """A store's field is streamed without being read whole; validation split in windows."""
    x, theta = data
    assert not isinstance(stored, np.ndarray)
    np.testing.assert_array_equal(stored[np.arange(N)], x)
    got = nn.train(Streamed(stored, window=50), theta, NAMES, config=CFG)  # 80 val records: 2 windows
    np.testing.assert_allclose(got.history["val_loss"], in_memory.history["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(
        got.estimator.predict(x[:40]), in_memory.estimator.predict(x[:40]), rtol=1e-5, atol=1e-6
    )
    # a lazy array passed as it is is streamed too (default window: the whole split fits)
    auto = nn.train(stored, theta, NAMES, config=CFG)
    np.testing.assert_allclose(
        auto.estimator.predict(x[:40]), in_memory.estimator.predict(x[:40]), rtol=1e-5, atol=1e-6
    )


def test_streamed_posterior_equals_in_memory(data):
    x, theta = data
    cfg = nn.TrainConfig(epochs=2, batch_size=32, patience=None, progress=False, split=(0.7, 0.2, 0.1))
    opts = dict(flow_layers=2, flow_width=16, embed_dim=8)
    a = nn.train_posterior(x, theta, NAMES, config=cfg, **opts)
    b = nn.train_posterior(Streamed(x, window=64), theta, NAMES, config=cfg, **opts)
    np.testing.assert_allclose(a.history["val_loss"], b.history["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(
        a.estimator.log_prob(theta[:20], x[:20]),
        b.estimator.log_prob(theta[:20], x[:20]),
        rtol=1e-4,
        atol=1e-5,
    )


def test_streamed_checkpoint_resumes_mid_run(data, tmp_path, monkeypatch):
    """Interrupted in the third epoch, resumed from the checkpoint of the second: bit for bit the
    uninterrupted streamed run."""
    from jaxid.nn import training

    x, theta = data
    whole = nn.train(Streamed(x, window=100), theta, NAMES, config=CFG)
    path = tmp_path / "ckpt.bin"
    real, calls = training._window_steps, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2 * 6 + 3:  # six windows an epoch: the third window of the third epoch
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "_window_steps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nn.train(Streamed(x, window=100), theta, NAMES, config=CFG, checkpoint=path)
    monkeypatch.setattr(training, "_window_steps", real)
    resumed = nn.train(Streamed(x, window=100), theta, NAMES, config=CFG, checkpoint=path)
    assert resumed.history["val_loss"] == whole.history["val_loss"]
    np.testing.assert_array_equal(resumed.estimator.predict(x[:10]), whole.estimator.predict(x[:10]))
    # other inputs with the same shapes, targets and (unstandardised) statistics: refused
    cfg = CFG.__class__(**{**CFG.to_dict(), "standardize_inputs": False})
    raw = tmp_path / "raw.bin"
    nn.train(Streamed(x, window=100), theta, NAMES, config=cfg, checkpoint=raw)
    other = x.copy()
    other[nn.split_indices(N, CFG.split, CFG.seed)["train"][0]] += 1.0
    with pytest.raises(ValueError, match="another training problem"):
        nn.train(Streamed(other, window=100), theta, NAMES, config=cfg, checkpoint=raw)


def test_a_zarr_array_is_streamed(data, tmp_path):
    import zarr

    x, theta = data
    z = zarr.create_array(store=str(tmp_path / "x.zarr"), shape=x.shape, chunks=(32, T, C), dtype="f4")
    z[:] = x
    got = nn.train(z, theta, NAMES, config=CFG)
    ref = nn.train(x, theta, NAMES, config=CFG)
    np.testing.assert_allclose(
        got.estimator.predict(x[:20]), ref.estimator.predict(x[:20]), rtol=1e-5, atol=1e-6
    )


def test_bad_streamed_input_is_named(data):
    x, theta = data
    bad = x.copy()
    split = nn.split_indices(N, CFG.split, CFG.seed)
    r = int(split["train"][7])
    bad[r] = np.nan
    with pytest.raises(ValueError, match=rf"^train: x must be finite: record {r} holds NaN or inf"):
        nn.train(Streamed(bad), theta, NAMES, config=CFG)
    bad = x.copy()
    r = int(split["val"][3])  # not in the statistics' read: found when the validation split is read
    bad[r, 2, 1] = np.inf
    with pytest.raises(ValueError, match=rf"^train_posterior: x must be finite: record {r} holds NaN or inf"):
        nn.train_posterior(Streamed(bad), theta, NAMES, config=CFG)
    with pytest.raises(ValueError, match="window must be a positive int"):
        Streamed(x, window=0)
    with pytest.raises(ValueError, match=r"shape \(records, time, channel\)"):
        Streamed(x[:, :, 0])
    with pytest.raises(TypeError, match="source must have a shape"):
        Streamed([1, 2, 3])
