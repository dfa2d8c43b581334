"""The chunked on-disk store (jaxid.data.store) and gait data sets in it (jaxid.walker.store)."""

import json

import jax
import numpy as np
import pytest

from jaxid import generate_gait_dataset, load_dataset
from jaxid.data.store import ConfigMismatchError, create_store, open_store
from jaxid.io import CorruptFileError
from jaxid.walker.store import open_gait_store

FIELDS = dict(a=((2, 3), "float32"), b=((), "float64"))
CONFIG = dict(seed=1, priors={"m": [1.0, 2.0]}, names=["x", "y"])


def _chunk(i, rows, kept):
    """Chunk i's rows: values that say where they came from (chunk, row)."""
    a = np.arange(rows * 6, dtype=np.float32).reshape(rows, 2, 3) + 1000 * i
    b = np.arange(rows, dtype=np.float64) + 100.0 * i
    return dict(a=a, b=b), kept


@pytest.fixture
def store(tmp_path):
    st = create_store(
        tmp_path / "s", config=CONFIG, fields=FIELDS, chunk_rows=5, capacity_chunks=10, inner_rows=2
    )
    kept = [5, 3, 0, 4]
    for i, k in enumerate(kept):
        arrays, _ = _chunk(i, 5, k)
        st.write_chunk(i, arrays, kept=k, meta=dict(rejected={"bad": 5 - k}))
    return st, kept


def test_round_trip_and_records(store):
    st, kept = store
    back = open_store(st.path)
    assert back.config == json.loads(json.dumps(CONFIG))
    markers = back.markers()
    assert sorted(markers) == [0, 1, 2, 3]
    assert sum(m["meta"]["rejected"]["bad"] for m in markers.values()) == 20 - sum(kept)
    # Independent answer: the kept rows of each chunk, concatenated in chunk order.
    want_b = np.concatenate([_chunk(i, 5, k)[0]["b"][:k] for i, k in enumerate(kept)])
    want_a = np.concatenate([_chunk(i, 5, k)[0]["a"][:k] for i, k in enumerate(kept)])
    k = back.kept_counts(4)
    records = np.array([11, 0, 7, 5, 5, 9])
    np.testing.assert_array_equal(back.read("b", back.rows(records, k)), want_b[records])
    np.testing.assert_array_equal(back.read("a", back.rows(records, k)), want_a[records])


def test_config_refused_naming_keys(store, tmp_path):
    st, _ = store
    other = dict(CONFIG, seed=2, priors={"m": [1.0, 3.0]})
    with pytest.raises(ConfigMismatchError, match=r"priors\.m.*seed|seed.*priors\.m"):
        create_store(st.path, config=other, fields=FIELDS, chunk_rows=5, capacity_chunks=10)
    with pytest.raises(ConfigMismatchError, match="chunk_rows"):
        create_store(st.path, config=CONFIG, fields=FIELDS, chunk_rows=4, capacity_chunks=10)
    same = create_store(st.path, config=CONFIG, fields=FIELDS, chunk_rows=5, capacity_chunks=10)
    assert sorted(same.markers()) == [0, 1, 2, 3]
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("x")
    with pytest.raises(CorruptFileError, match="not a jaxid store"):
        create_store(tmp_path / "junk", config=CONFIG, fields=FIELDS, chunk_rows=5, capacity_chunks=10)


def test_incomplete_and_corrupted_chunks(store):
    st, _ = store
    # A chunk whose arrays were written but whose marker was not (a writer killed in between).
    arrays, _ = _chunk(5, 5, 5)
    st.write_chunk(5, arrays, kept=5)
    st._marker(5).unlink()
    assert 5 not in st.markers() and st.complete_prefix() == 4
    assert st.verify() == []
    # Damage chunk 1's bytes on disk: its checksum no longer matches.
    shard = next(p for p in (st.path / "b").rglob("*") if p.is_file() and p.parts[-1] == "1")
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    assert st.verify() == [1]
    (st.path / "chunks" / "00000002.json").write_text("{not json")
    with pytest.raises(CorruptFileError, match=r"00000002\.json"):
        st.markers()


def test_bad_arguments(store):
    st, _ = store
    arrays, _ = _chunk(0, 5, 5)
    with pytest.raises(ValueError, match="outside"):
        st.write_chunk(10, arrays, kept=5)
    with pytest.raises(ValueError, match="kept"):
        st.write_chunk(0, arrays, kept=6)
    with pytest.raises(ValueError, match="field 'b'"):
        st.write_chunk(0, dict(arrays, b=arrays["b"][:4]), kept=4)


# ------------------------------------------------------------------------ gait data sets
KW = dict(seed=3, duration=2.0, save_dt=0.5, chunk_size=8, progress=False)
N = 20
RECORD_FIELDS = ("params", "obs", "initial_states", "gait_eigenvalue", "gait_step_time", "gait_step_length")


@pytest.fixture(scope="module")
def in_memory():
    return generate_gait_dataset(N, **KW)


@pytest.fixture(scope="module")
def stored(in_memory, tmp_path_factory):
    path = tmp_path_factory.mktemp("gait") / "store"
    return path, generate_gait_dataset(N, store=path, **KW)


def test_store_equals_in_memory_and_loads_lazily(in_memory, stored):
    path, _ = stored
    lazy = load_dataset(path)
    assert len(lazy) == N and lazy.obs.shape == in_memory.obs.shape
    for name in RECORD_FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(lazy, name)), getattr(in_memory, name), err_msg=name)
    idx = np.array([19, 3, 3, 0, 11])
    part = lazy[idx]
    for name in RECORD_FIELDS:
        np.testing.assert_array_equal(getattr(part, name), getattr(in_memory, name)[idx], err_msg=name)
    np.testing.assert_array_equal(lazy.obs[2:7, 1], in_memory.obs[2:7, 1])
    np.testing.assert_array_equal(lazy.obs[-1], in_memory.obs[-1])
    skip = {"seconds", "store", "versions"}
    assert {k: v for k, v in lazy.config.items() if k not in skip} == {
        k: v for k, v in in_memory.config.items() if k not in skip
    }
    assert lazy.rejected == in_memory.rejected
    # A small stored set still round-trips through .npz.
    back = load_dataset(lazy.to_memory().save(path.parent / "small.npz"))
    np.testing.assert_array_equal(back.obs, in_memory.obs)


def test_store_refuses_other_config_and_noise(stored, tmp_path):
    path, _ = stored
    with pytest.raises(ConfigMismatchError, match="seed"):
        generate_gait_dataset(N, store=path, **dict(KW, seed=4))
    with pytest.raises(ValueError, match="noise"):
        generate_gait_dataset(N, store=tmp_path / "n", noise=0.1, **KW)


def test_store_remakes_a_damaged_chunk(in_memory, stored, tmp_path):
    import shutil

    path, _ = stored
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    shard = next(p for p in (copy / "obs").rglob("*") if p.is_file() and p.parts[-4:] == ("c", "1", "0", "0"))
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match=r"chunks \[1\]"):
        open_gait_store(copy, verify=True)
    (copy / "chunks" / "00000002.json").unlink()  # an incomplete store: chunk 2 missing
    with pytest.raises(CorruptFileError, match="incomplete"):
        load_dataset(copy)
    again = generate_gait_dataset(N, store=copy, **KW)  # remakes chunks 1 and 2
    np.testing.assert_array_equal(np.asarray(again.obs), in_memory.obs)
    assert jax.config.jax_enable_x64


def test_default_blocks_hold_about_256_kib_of_rows(tmp_path):
    import zarr

    fields = dict(obs=((151, 2), "float32"), params=((3,), "float64"), e=((), "float64"))
    for chunk_rows, want in (
        (1024, dict(obs=128, params=1024, e=1024)),
        (1000, dict(obs=200, params=1000, e=1000)),
    ):
        st = create_store(
            tmp_path / f"d{chunk_rows}",
            config=CONFIG,
            fields=fields,
            chunk_rows=chunk_rows,
            capacity_chunks=2,
        )
        # zarr's own metadata: each field's shard is the chunk, its inner blocks as computed
        # (256 KiB / 1208 bytes = 217 rows, lowered to a divisor of chunk_rows).
        for name, rows in want.items():
            arr = zarr.open_array(str(st.path / name), mode="r")
            assert arr.shards[0] == chunk_rows and arr.chunks[0] == rows, (name, arr.shards, arr.chunks)
        a = np.random.default_rng(0).normal(size=(chunk_rows, 151, 2)).astype(np.float32)
        arrays = dict(obs=a, params=np.ones((chunk_rows, 3)), e=np.arange(chunk_rows, dtype=float))
        st.write_chunk(1, arrays, kept=chunk_rows)
        rows = st.rows(np.array([3, chunk_rows - 1]), np.array([0, chunk_rows]))
        np.testing.assert_array_equal(st.read("obs", rows), a[[3, chunk_rows - 1]])
    with pytest.raises(ValueError, match="inner_rows must be a positive int"):
        create_store(
            tmp_path / "bad", config=CONFIG, fields=fields, chunk_rows=8, capacity_chunks=1, inner_rows=0
        )
