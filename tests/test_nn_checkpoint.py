"""Resumable training: ``checkpoint=`` in :func:`jaxid.nn.train` and :func:`jaxid.nn.train_posterior`
resumes to a bit-identical result after a real ``SIGKILL`` or a crash during a checkpoint write,
and refuses checkpoints of another problem or with damaged bytes."""

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from jaxid import io as jio
from jaxid import nn
from jaxid.nn import training

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("checkpoint_child", HERE / "checkpoint_child.py")
child = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child)


def _assert_same_tree(a, b):
    la, lb = (jax.tree.leaves(eqx.filter(t, eqx.is_array)) for t in (a, b))
    assert len(la) == len(lb) and len(la) > 0
    for u, v in zip(la, lb, strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))  # bit for bit


def _count_epochs(monkeypatch):
    calls = []
    real = training._epoch

    def counted(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(training, "_epoch", counted)
    return calls


def test_checkpoint_options_are_checked():
    x, y, names, config = child.problem()
    with pytest.raises(ValueError, match="train: checkpoint_every must be a positive int"):
        nn.train(x, y, names, config=config, checkpoint="c.ckpt", checkpoint_every=0)
    with pytest.raises(TypeError, match="train: resume must be True or False"):
        nn.train(x, y, names, config=config, checkpoint="c.ckpt", resume="yes")
    with pytest.raises(TypeError, match="train_posterior: checkpoint must be a path"):
        nn.train_posterior(x, y, names, config=config, checkpoint=3)
    with pytest.raises(IsADirectoryError, match=r"checkpoint .* is a directory"):
        nn.train(x, y, names, config=config, checkpoint=HERE)


@pytest.mark.slow
def test_train_resumes_bit_identically_after_sigkill(tmp_path, monkeypatch):
    """A training process killed with SIGKILL part-way, run again, ends exactly where an
    uninterrupted run ends: parameters, best epochs, early stopping and history."""
    ckpt = tmp_path / "train.ckpt"
    env = dict(os.environ, PYTHONPATH=str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "checkpoint_child.py"), str(ckpt)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 300
        while not ckpt.exists():  # the first checkpoint (epoch 1) appears atomically
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            time.sleep(0.02)
        time.sleep(0.6)  # a few epochs more: the kill lands at an arbitrary point of one
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    at_kill = jio.read_header(ckpt, kind=training.CHECKPOINT_KIND)
    assert not at_kill["finished"] and at_kill["epochs_run"] >= 1

    x, y, names, config = child.problem()
    full = nn.train(x, y, names, config=config, **child.NET)
    assert full.history["stopped_early"]  # the early-stopping state is part of what resumes
    assert at_kill["epochs_run"] < full.history["epochs_run"]  # the kill interrupted training
    epochs = _count_epochs(monkeypatch)
    resumed = nn.train(x, y, names, config=config, checkpoint=ckpt, **child.NET)
    assert len(epochs) == full.history["epochs_run"] - at_kill["epochs_run"]  # resumed, not restarted
    assert resumed.history == full.history
    _assert_same_tree(resumed.estimator, full.estimator)
    # a kill during a write may leave its temporary file (".train.ckpt.*.tmp"), never a damaged checkpoint
    others = [p.name for p in tmp_path.iterdir() if p.name != "train.ckpt"]
    assert all(re.fullmatch(r"\.train\.ckpt\..*\.tmp", n) for n in others), others

    # a finished checkpoint returns at once, with the same result
    again = nn.train(x, y, names, config=config, checkpoint=ckpt, **child.NET)
    assert len(epochs) == full.history["epochs_run"] - at_kill["epochs_run"]
    assert again.history == full.history
    _assert_same_tree(again.estimator, full.estimator)

    # another configuration, other data, other options: refused before any epoch
    other = nn.TrainConfig(**{**config.__dict__, "learning_rate": 1e-2})
    with pytest.raises(ValueError, match=r"train\.ckpt was written for another.*config\.learning_rate"):
        nn.train(x, y, names, config=other, checkpoint=ckpt, **child.NET)
    x2 = x.copy()
    x2[0, 0, 0] += 1.0
    with pytest.raises(ValueError, match=r"train\.ckpt was written for another.*other data"):
        nn.train(x2, y, names, config=config, checkpoint=ckpt, **child.NET)
    with pytest.raises(ValueError, match=r"train\.ckpt was written for another.*describe"):
        nn.train(x, y, names, config=config, checkpoint=ckpt, **{**child.NET, "activation": "tanh"})
    assert len(epochs) == full.history["epochs_run"] - at_kill["epochs_run"]

    # damaged checkpoint bytes are refused, naming the file
    raw = bytearray(ckpt.read_bytes())
    raw[-10] ^= 0xFF
    ckpt.write_bytes(bytes(raw))
    with pytest.raises(jio.CorruptFileError, match=re.escape(str(ckpt)) + " is corrupted: the SHA-256"):
        nn.train(x, y, names, config=config, checkpoint=ckpt, **child.NET)
    # resume=False starts over (and overwrites), to the same result; checkpoint_every=4 writes at
    # epochs 4, 8, ... and at the end
    real_write = jio.write_framed
    written = []

    def record(path, header, payload, **kw):
        written.append(header["epochs_run"])
        return real_write(path, header, payload, **kw)

    monkeypatch.setattr(jio, "write_framed", record)
    opts = dict(checkpoint=ckpt, checkpoint_every=4, resume=False)
    fresh = nn.train(x, y, names, config=config, **opts, **child.NET)
    n = full.history["epochs_run"]
    assert written == list(range(4, n + 1, 4)) + ([n] if n % 4 else [])
    assert fresh.history == full.history
    _assert_same_tree(fresh.estimator, full.estimator)


@pytest.mark.slow
def test_posterior_resumes_after_a_crash_while_writing_a_checkpoint(tmp_path, monkeypatch):
    """train_posterior (members with flows) interrupted as its third checkpoint is being written:
    the second stays whole, and the rerun ends bit-identical to an uninterrupted run."""
    x, theta, names, _ = child.problem()
    x, theta = x[:80], theta[:80]
    config = nn.TrainConfig(epochs=5, batch_size=20, members=2, patience=None, seed=1, progress=False)
    kw = dict(arch="mlp", width=8, depth=1, flow_layers=1, flow_width=8, embed_dim=4)
    full = nn.train_posterior(x, theta, names, config=config, **kw)
    ckpt = tmp_path / "posterior.ckpt"
    real = os.replace
    writes = []

    def crash_third(*args):
        writes.append(1)
        if len(writes) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(os, "replace", crash_third)
    with pytest.raises(KeyboardInterrupt):
        nn.train_posterior(x, theta, names, config=config, checkpoint=ckpt, **kw)
    monkeypatch.setattr(os, "replace", real)
    assert jio.read_header(ckpt, kind=training.CHECKPOINT_KIND)["epochs_run"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["posterior.ckpt"]
    epochs = _count_epochs(monkeypatch)
    resumed = nn.train_posterior(x, theta, names, config=config, checkpoint=ckpt, **kw)
    assert len(epochs) == 3
    assert resumed.history == full.history
    _assert_same_tree(resumed.estimator, full.estimator)
    with pytest.raises(ValueError, match=r"posterior\.ckpt was written for another.*describe"):
        nn.train_posterior(x, theta, names, config=config, checkpoint=ckpt, **{**kw, "flow_width": 4})
