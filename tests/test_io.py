"""Atomic writes, checksummed framed files, and one clear error for every damaged file: framed
files, estimators, hybrid models and gait data sets (empty, truncated, foreign, corrupted)."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxid import io as jio
from jaxid import load_dataset, nn
from jaxid.hybrid import load_model
from jaxid.walker.data import GaitDataset

ROOT = Path(__file__).resolve().parents[1]


def _err(path, problem):
    """A ``match`` pattern: the file's name, then the problem, in one message."""
    return re.escape(str(path)) + ".*" + problem


def _flip(path, offset_from_end):
    raw = bytearray(path.read_bytes())
    raw[len(raw) - offset_from_end] ^= 0xFF
    path.write_bytes(bytes(raw))


# ------------------------------------------------------------------------------- atomic writes


def test_atomic_write_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "dir" / "f.txt"
    jio.atomic_write_text(path, "first")  # parents created
    assert path.read_text() == "first"
    jio.atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    with pytest.raises(RuntimeError, match="midway"), jio.atomic_open(path, "wb") as f:
        f.write(b"half of a third vers")
        raise RuntimeError("midway")
    assert path.read_bytes() == b"second"  # the old file, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.txt"]  # temporary removed
    with pytest.raises(ValueError, match="mode must be"), jio.atomic_open(path, "ab"):
        pass


WRITER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("jaxid_io", sys.argv[2])  # jaxid.io alone: quick
jio = importlib.util.module_from_spec(spec)
spec.loader.exec_module(jio)
atomic_open = jio.atomic_open
with atomic_open(sys.argv[1], "wb") as f:
    for _ in range(10_000):
        f.write(b"new" * 1000)
        f.flush()
        print("writing", flush=True)
        time.sleep(0.01)
"""


def test_sigkill_during_an_atomic_write_leaves_the_old_file(tmp_path):
    """A real kill of a writing process: the destination keeps its old bytes exactly."""
    path = tmp_path / "data.bin"
    old = os.urandom(4096)
    path.write_bytes(old)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(ROOT / "jaxid" / "io.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(3):  # three chunks written and flushed to the temporary file
            line = proc.stdout.readline()
            assert line == b"writing\n", proc.stderr.read().decode()
        temps = [p for p in tmp_path.iterdir() if p.name != "data.bin"]
        assert len(temps) == 1 and temps[0].stat().st_size >= 3000  # the write is under way
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == old


# ------------------------------------------------------------------------------ framed files


def test_framed_file_records_length_and_sha256_of_its_payload(tmp_path):
    path = tmp_path / "f.bin"
    payload = bytes(range(256)) * 3 + b"\n\x00tail"
    jio.write_framed(path, {"note": [1, 2]}, payload, kind="thing", format=3)
    raw = path.read_bytes()
    line, body = raw.split(b"\n", 1)
    header = json.loads(line)
    assert body == payload
    assert header["payload_sha256"] == hashlib.sha256(payload).hexdigest()  # independent digest
    assert header["payload_bytes"] == len(payload) and header["jaxid"] == "thing"
    got_header, got = jio.read_framed(path, kind="thing", formats=(3,))
    assert got == payload and got_header == {"note": [1, 2]}
    assert jio.read_header(path, kind="thing", formats=(3,)) == {"note": [1, 2]}
    with pytest.raises(ValueError, match="reserved"):
        jio.write_framed(path, {"format": 1}, b"", kind="thing")


@pytest.fixture
def framed(tmp_path):
    path = tmp_path / "state.ckpt"
    jio.write_framed(path, {"a": 1}, os.urandom(1000), kind="thing")
    return path


def test_framed_file_errors_name_the_file_and_the_problem(tmp_path, framed):
    raw = framed.read_bytes()
    framed.write_bytes(b"")
    with pytest.raises(jio.CorruptFileError, match=_err(framed, "is empty")):
        jio.read_framed(framed, kind="thing")
    framed.write_bytes(raw[:10])  # cut inside the header line
    with pytest.raises(jio.CorruptFileError, match=_err(framed, "no header line")):
        jio.read_framed(framed, kind="thing")
    framed.write_bytes(raw[:-1])  # one payload byte short
    with pytest.raises(jio.CorruptFileError, match=_err(framed, "is truncated: 999 of the 1000")):
        jio.read_framed(framed, kind="thing")
    framed.write_bytes(raw + b"x")
    with pytest.raises(jio.CorruptFileError, match=_err(framed, "1 bytes more")):
        jio.read_framed(framed, kind="thing")
    framed.write_bytes(raw)
    _flip(framed, 500)
    with pytest.raises(jio.CorruptFileError, match=_err(framed, "corrupted: the SHA-256 checksum")):
        jio.read_framed(framed, kind="thing")
    framed.write_bytes(b"\x89PNG\r\n\x1a\n binary\n")  # a foreign file
    with pytest.raises(jio.CorruptFileError, match=_err(framed, "not a jaxid thing file")):
        jio.read_framed(framed, kind="thing")
    framed.write_bytes(b'{"some": "json"}\n')  # JSON, but not ours
    with pytest.raises(jio.CorruptFileError, match=_err(framed, "no 'jaxid' kind")):
        jio.read_framed(framed, kind="thing")
    jio.write_framed(framed, {}, b"", kind="other")
    with pytest.raises(
        jio.CorruptFileError, match=_err(framed, "is a jaxid 'other' file, not a jaxid thing")
    ):
        jio.read_framed(framed, kind="thing")
    jio.write_framed(framed, {}, b"", kind="thing", format=9)
    with pytest.raises(
        jio.CorruptFileError, match=_err(framed, r"format 9; this jaxid reads format\(s\) \[1\]")
    ):
        jio.read_header(framed, kind="thing")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        jio.read_framed(tmp_path / "missing", kind="thing")
    assert issubclass(jio.CorruptFileError, ValueError)


def test_tree_payload_round_trip_and_layout_errors():
    tree = (np.arange(6.0).reshape(2, 3), {"b": np.array([1, 2], np.int32)})
    payload = jio.tree_to_bytes(tree)
    back = jio.tree_from_bytes(payload, tree)
    jax.tree.map(np.testing.assert_array_equal, back, tree)
    with pytest.raises(jio.CorruptFileError, match=r"m\.eqx: its arrays do not match.*shape"):
        jio.tree_from_bytes(payload, (np.zeros((3, 2)), {"b": np.zeros(2, np.int32)}), path="m.eqx")
    with pytest.raises(jio.CorruptFileError, match=r"m\.eqx: .*dtype"):
        jio.tree_from_bytes(
            payload, (np.zeros((2, 3), np.float32), {"b": np.zeros(2, np.int32)}), path="m.eqx"
        )
    with pytest.raises(jio.CorruptFileError, match=r"m\.eqx: .*bytes left over"):
        jio.tree_from_bytes(payload, (np.zeros((2, 3)),), path="m.eqx")
    with pytest.raises(jio.CorruptFileError, match=r"m\.eqx: its arrays do not match"):
        jio.tree_from_bytes(payload[:-5], tree, path="m.eqx")


def test_fingerprint_tells_arrays_and_values_apart():
    a = np.arange(4.0)
    base = jio.fingerprint({"x": 1}, a)
    assert base == jio.fingerprint({"x": 1}, a.copy())
    assert base != jio.fingerprint({"x": 2}, a)
    assert base != jio.fingerprint({"x": 1}, a.reshape(2, 2))  # same bytes, other shape
    assert base != jio.fingerprint({"x": 1}, a.astype(np.float32))
    b = a.copy()
    b[3] = np.nextafter(b[3], 10)
    assert base != jio.fingerprint({"x": 1}, b)


# -------------------------------------------------------------------------------- estimators


@pytest.fixture(scope="module")
def estimator():
    return nn.Estimator.init("mlp", (5, 2), ("a", "b"), key=jax.random.key(0), width=4, depth=1)


def test_estimator_file_is_checksummed(tmp_path, estimator):
    x = np.random.default_rng(0).normal(size=(3, 5, 2))
    path = tmp_path / "est.eqx"
    estimator.save(path, metadata={"m": 1})
    est, meta = nn.load_estimator(path)
    assert meta == {"m": 1}
    np.testing.assert_array_equal(est.predict(x), estimator.predict(x))
    raw = path.read_bytes()
    # a flipped exponent byte of the last weight: without the checksum this loads, predicting
    # garbage; with it, the load refuses
    _flip(path, 2)
    with pytest.raises(jio.CorruptFileError, match=_err(path, "corrupted: the SHA-256 checksum")):
        nn.load_estimator(path)
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(jio.CorruptFileError, match=_err(path, "is truncated")):
        nn.load_estimator(path)
    path.write_bytes(b"")
    with pytest.raises(jio.CorruptFileError, match=_err(path, "is empty")):
        nn.load_estimator(path)
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(jio.CorruptFileError, match=_err(tmp_path / "foreign.npz", "not a jaxid estimator")):
        nn.load_estimator(tmp_path / "foreign.npz")
    path.write_bytes(raw)
    with pytest.raises(
        jio.CorruptFileError, match=_err(path, "is a jaxid 'estimator' file, not a jaxid hybrid")
    ):
        load_model(path)
    with pytest.raises(jio.CorruptFileError, match=_err(path, "not a jaxid posterior estimator")):
        nn.load_posterior_estimator(path)


# ------------------------------------------------------------------------------ gait data sets


@pytest.fixture
def dataset():
    rng = np.random.default_rng(0)
    n = 4
    return GaitDataset(
        params=rng.random((n, 3)),
        obs=rng.random((n, 11, 2)).astype(np.float32),
        ts=np.linspace(0.0, 1.0, 11),
        channels=("x", "y"),
        initial_states=rng.random((n, 7)),
        gait_eigenvalue=rng.random(n),
        rejected={"no periodic gait": 1},
        config={"seed": 0},
        gait_step_time=rng.random(n),
    )


def test_dataset_save_without_suffix_then_load(tmp_path, dataset):
    written = dataset.save(tmp_path / "x")
    assert written == tmp_path / "x.npz" and written.exists()  # numpy's convention
    for given in (tmp_path / "x", tmp_path / "x.npz", str(tmp_path / "x")):
        back = load_dataset(given)
        np.testing.assert_array_equal(back.obs, dataset.obs)
        np.testing.assert_array_equal(back.gait_step_time, dataset.gait_step_time)
        assert back.rejected == dataset.rejected and back.obs_clean is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]  # no temporary left
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "y")) + r" does not exist \(nor"):
        load_dataset(tmp_path / "y")


def test_damaged_dataset_files_are_clear_errors(tmp_path, dataset):
    path = dataset.save(tmp_path / "d.npz")
    raw = path.read_bytes()
    start = raw.index(b"obs.npy") + 200  # inside the obs array's bytes
    bad = bytearray(raw)
    bad[start] ^= 0xFF
    path.write_bytes(bytes(bad))
    with pytest.raises(
        jio.CorruptFileError, match=_err(path, "is corrupted: BadZipFile: Bad CRC-32 for file 'obs")
    ):
        load_dataset(path)
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(jio.CorruptFileError, match=_err(path, r"not a readable \.npz archive \(truncated")):
        load_dataset(path)
    path.write_bytes(b"")
    with pytest.raises(jio.CorruptFileError, match=_err(path, "is empty")):
        load_dataset(path)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(jio.CorruptFileError, match=_err(path, r"not a readable \.npz archive")):
        load_dataset(path)
    np.savez(path, a=np.zeros(2))
    with pytest.raises(jio.CorruptFileError, match=_err(path, r"lacks the arrays \['meta', 'params'")):
        load_dataset(path)
    np.save(tmp_path / "single.npy", np.zeros(2))
    with pytest.raises(jio.CorruptFileError, match=_err(tmp_path / "single.npy", r"a single \.npy array")):
        load_dataset(tmp_path / "single.npy")


def test_study_figures_are_written_atomically(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxid.experiments.results import save_figure

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "figs" / "f.png", dpi=50)
    plt.close(fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["f.png"]
