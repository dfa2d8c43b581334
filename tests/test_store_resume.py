"""Resuming a killed generation into a store, and two processes of a jax.distributed run writing
one store: both equal the in-memory generator with the same seed (tests/store_child.py)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import store_child

from jaxid import generate_gait_dataset, load_dataset

pytestmark = pytest.mark.slow
CHILD = Path(__file__).with_name("store_child.py")
FIELDS = ("params", "obs", "initial_states", "gait_eigenvalue", "gait_step_time", "gait_step_length")


@pytest.fixture(scope="module")
def env():
    """The children import this checkout's jaxid and read the test run's persistent compilation
    cache (tests/conftest.py), where the in-process reference has put the generator's programs."""
    root = str(Path(__file__).resolve().parents[1])
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
        JAX_PLATFORMS="cpu",
    )


@pytest.fixture(scope="module")
def reference():
    return generate_gait_dataset(store_child.N, **store_child.KW)


def _assert_equal(path, reference):
    got = load_dataset(path)
    assert len(got) == len(reference)
    for name in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(got, name)), getattr(reference, name), err_msg=name)
    assert got.rejected == reference.rejected
    assert got.config["candidates"] == reference.config["candidates"]


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, env, reference):
    assert os.environ.get("JAX_COMPILATION_CACHE_DIR")  # set by tests/conftest.py
    path = tmp_path / "store"
    slow = dict(env, JAXID_STORE_CHILD_SLOW="2.0")
    proc = subprocess.Popen([sys.executable, str(CHILD), str(path)], env=slow)
    first = path / "chunks" / "00000000.json"
    deadline = time.monotonic() + 600
    while not first.exists():
        assert proc.poll() is None, "the child ended before writing its first chunk"
        assert time.monotonic() < deadline, "no chunk after 600 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in (path / "chunks").glob("*.json"))
    assert 1 <= len(done) < 6, done  # killed part-way: some chunks made, not all
    stamps = {name: (path / "chunks" / name).stat().st_mtime_ns for name in done}
    # resumed in this process (the child's call, with the reference's programs already compiled)
    resumed = generate_gait_dataset(store_child.N, store=path, **store_child.KW)
    assert len(resumed) == len(reference)
    # the chunks made before the kill were kept, not made again
    assert {name: (path / "chunks" / name).stat().st_mtime_ns for name in done} == stamps
    _assert_equal(path, reference)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_write_one_store(tmp_path, env, reference):
    path = tmp_path / "store"
    port = _free_port()
    procs = [
        subprocess.Popen([sys.executable, str(CHILD), str(path), str(i), "2", str(port)], env=env)
        for i in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=1200) == 0
    _assert_equal(path, reference)
