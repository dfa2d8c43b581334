"""Training across two processes of a jax.distributed run (CPU, gloo collectives) against one
process with as many devices: the same networks, and one checkpoint writer."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxid import io as jio

pytestmark = pytest.mark.slow
CHILD = Path(__file__).with_name("train_child.py")


def _env(devices: int | None = None) -> dict:
    root = str(Path(__file__).resolve().parents[1])
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]), JAX_PLATFORMS="cpu"
    )
    flags = env.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count", "--ignored_count")
    flags = " ".join(f for f in flags.split() if not f.startswith("--ignored_count"))
    if devices:
        flags += f" --xla_force_host_platform_device_count={devices}"
    env["XLA_FLAGS"] = flags.strip()
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_train_the_one_process_model(tmp_path):
    ref_path = tmp_path / "one.json"
    subprocess.run(
        [sys.executable, str(CHILD), str(ref_path), "memory"], env=_env(2), check=True, timeout=1200
    )
    ref = json.loads(ref_path.read_text())
    assert ref["devices"] == 2
    ref = ref["memory"]

    port, ckpt = _free_port(), tmp_path / "ckpt.bin"
    out = tmp_path / "two.json"
    procs = [
        subprocess.Popen(
            [sys.executable, str(CHILD), str(out), "memory,streamed", str(i), "2", str(port), str(ckpt)],
            env=_env(),
        )
        for i in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=1200) == 0
    for i in range(2):
        got = json.loads(Path(f"{out}.{i}").read_text())
        assert got["devices"] == 2  # one device in each process, two in the run
        for mode in ("memory", "streamed"):
            np.testing.assert_allclose(got[mode]["val_loss"], ref["val_loss"], rtol=1e-5, err_msg=mode)
            np.testing.assert_allclose(got[mode]["pred"], ref["pred"], rtol=1e-5, atol=1e-6, err_msg=mode)
    # one checkpoint per training, finished, written by process 0 alone
    for mode in ("memory", "streamed"):
        header, _ = jio.read_framed(f"{ckpt}.{mode}", kind="training checkpoint")
        assert header["finished"] and header["epochs_run"] == 3
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ckpt"))
    assert names == ["ckpt.bin.memory", "ckpt.bin.streamed"]
