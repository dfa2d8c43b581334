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
    """Windows of 40 records (one minibatch of both members): every epoch in many windows, the
    validation split in one. The same minibatches and steps as in memory; the programs are
    compiled apart, so the results agree to float32 rounding (not necessarily bit for bit)."""
    x, theta = data
    got = nn.train(Streamed(x, window=40), theta, NAMES, config=CFG)
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


def test_streamed_checkpoint_resumes(data, in_memory, tmp_path):
    x, theta = data
    path = tmp_path / "ckpt.bin"
    short = nn.train(Streamed(x, window=40), theta, NAMES, config=CFG, checkpoint=path)
    again = nn.train(Streamed(x, window=40), theta, NAMES, config=CFG, checkpoint=path)
    np.testing.assert_array_equal(again.estimator.predict(x[:10]), short.estimator.predict(x[:10]))
    other = x.copy()
    other[0] += 1.0  # other data: the input statistics change, the checkpoint is refused
    with pytest.raises(ValueError, match="another training problem"):
        nn.train(Streamed(other, window=40), theta, NAMES, config=CFG, checkpoint=path)


def test_bad_streamed_input_is_named(data):
    x, theta = data
    bad = x.copy()
    split = nn.split_indices(N, CFG.split, CFG.seed)
    bad[split["train"][7]] = np.nan
    with pytest.raises(ValueError, match=r"train: x must be finite: record \d+ of the training split"):
        nn.train(Streamed(bad), theta, NAMES, config=CFG)
    with pytest.raises(ValueError, match="window must be a positive int"):
        Streamed(x, window=0)
    with pytest.raises(ValueError, match=r"shape \(records, time, channel\)"):
        Streamed(x[:, :, 0])
    with pytest.raises(TypeError, match="source must have a shape"):
        Streamed([1, 2, 3])
