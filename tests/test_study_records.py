"""The study's data step in a store (jaxid.study.records): equal to the in-memory records,
resumed after an interruption, refused for another configuration."""

import jax
import numpy as np
import pytest
from study_user_models import TIMES

from jaxid.data.store import ConfigMismatchError, open_store
from jaxid.study import config_from_dict, pipeline
from jaxid.study.config import build_start, validate

HOLE = {
    "model": "study_user_models:decay_with_a_hole",  # NaN for a > 1.9: a tenth of the prior
    "params": {"a": [1.0, 2.0], "c": [0.5, 1.0]},
    "records": 100,
    "chunk_size": 8,  # blocks of 32 candidates: round 0 in four, round 1 in one
    "seed": 3,
}
ODE = {
    "model": "study_user_models:Elimination",
    "params": {"k": [0.1, 1.0]},
    "fixed": {"V": 2.0},
    "initial_state": {"x": [1.0, 2.0]},
    "observation": {"times": {"start": 0.0, "stop": 2.0, "num": 5}},
    "records": 40,
    "chunk_size": 8,
    "estimators": {"batch_size": 16},
}


def _data(config, store=None):
    resolved = build_start(config, validate(config))
    return pipeline.simulate_records(
        config, resolved, key=jax.random.key(0), progress=False, say=lambda *a, **k: None, store=store
    )


def _equal(a, b):
    for x, y in ((a.theta, b.theta), (a.y0, b.y0), (a.clean, b.clean)):
        if x is None or y is None:
            assert x is None and y is None
        else:
            np.testing.assert_array_equal(x, y)
    assert a.rejected == b.rejected and a.candidates == b.candidates


@pytest.fixture(scope="module")
def hole():
    config = config_from_dict(HOLE)
    return config, _data(config)


def test_records_rejections_and_the_closed_form(hole):
    _, recs = hole
    theta, y0, clean, rejected, candidates = recs.theta, recs.y0, recs.clean, recs.rejected, recs.candidates
    gait_data = recs.dataset
    assert gait_data is None  # not the walker on its gait
    assert theta.shape == (100, 2) and y0 is None and clean.shape == (100, len(TIMES), 1)
    a, c = theta.T
    assert np.all(a <= 1.9)
    np.testing.assert_allclose(
        clean[..., 0], a[:, None] * np.exp(-c[:, None] * np.asarray(TIMES)), rtol=1e-12
    )
    assert set(rejected) == {"non-finite observations"}
    n_rej = rejected["non-finite observations"]
    assert 100 + n_rej <= candidates  # extra candidates of the last round may go unused
    assert candidates > 100  # a second round was needed
    assert 0.03 < n_rej / candidates < 0.2  # a > 1.9 for a tenth of the uniform prior


def test_store_equals_memory_and_resumes(hole, tmp_path, monkeypatch):
    config, want = hole
    path = tmp_path / "records.zarr"
    real = pipeline._simulate
    calls = []

    def interrupted(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_simulate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _data(config, path)
    assert sorted(open_store(path).markers()) == [0, 1]  # two blocks made before the interruption

    counted = []

    def counting(*args, **kwargs):
        counted.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_simulate", counting)
    _equal(_data(config, path), want)
    blocks = len(open_store(path).markers())
    assert blocks >= 5 and len(counted) == blocks - 2  # only the missing blocks were simulated
    counted.clear()
    _equal(_data(config, path), want)  # complete: read back, nothing simulated
    assert counted == []
    with pytest.raises(ConfigMismatchError, match="seed"):
        _data(config.replace(seed=4), path)


def test_initial_states_are_stored_too(tmp_path):
    config = config_from_dict(ODE)
    want = _data(config)
    theta, y0, clean = want.theta, want.y0, want.clean
    assert y0.shape == (40, 1) and np.all((1.0 <= y0) & (y0 <= 2.0))
    t = np.linspace(0.0, 2.0, 5)
    np.testing.assert_allclose(clean[..., 0], y0 / 2.0 * np.exp(-theta * t), rtol=1e-6)
    _equal(_data(config, tmp_path / "s"), want)
    _equal(_data(config, tmp_path / "s"), want)
