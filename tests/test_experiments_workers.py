"""Jobs over pinned worker processes (jaxid.experiments.workers) and the claims study's runs in them."""

import os

import numpy as np
import pytest

from jaxid.experiments import hybrid_claims as hc
from jaxid.experiments.workers import available_cores, map_pinned


def where_and_square(x):
    import jax

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return x * x, os.getpid(), cores, bool(jax.config.jax_enable_x64)


def fail_on_three(x):
    if x == 3:
        raise ValueError("job three failed")
    return x


def test_map_pinned_returns_every_job_once_from_pinned_processes():
    items = list(range(6))
    got = dict(map_pinned(where_and_square, items, workers=2))
    assert sorted(got) == items
    assert [got[i][0] for i in items] == [i * i for i in items]
    pids = {v[1] for v in got.values()}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert all(v[3] for v in got.values())  # the caller's jax_enable_x64 (the suite runs in x64)
    if hasattr(os, "sched_getaffinity") and len(available_cores()) >= 2:
        assert all(len(v[2]) == 1 for v in got.values())  # one core each
        by_pid = {v[1]: v[2][0] for v in got.values()}
        assert len(set(by_pid.values())) == len(by_pid)  # different cores


def test_map_pinned_in_process_and_errors():
    assert list(map_pinned(where_and_square, [2, 3], workers=1))[1][1][1] == os.getpid()
    with pytest.raises(ValueError, match="job three failed"):
        dict(map_pinned(fail_on_three, [1, 2, 3, 4], workers=2))
    with pytest.raises(ValueError, match="workers"):
        list(map_pinned(where_and_square, [1], workers=0))
    with pytest.raises(ValueError, match="workers"):
        hc.HybridClaimsConfig(workers=0).validate()


@pytest.mark.slow
def test_claims_runs_in_workers_equal_the_same_runs_here():
    """Two real (tiny) runs of the claims study, in this process and in two pinned workers: the
    same validation curves, scores and latents, bit for bit."""
    from jaxid.experiments.hybrid import _data

    config = hc.HybridClaimsConfig(
        tasks=6,
        per_task=6,
        val_tasks=2,
        test_tasks=3,
        ood_tasks=3,
        steps=50,
        steps_per_call=25,
        batch_size=16,
        width=16,
        context_size=3,
        progress=False,
    )
    data = _data(config, 0, "pendulum")
    items = [
        (data, config, "pendulum", "meta_hybrid_vae", 0, 6),
        (data, config, "pendulum", "aphynity", 1, 3),
    ]
    here = [hc._claims_job(item) for item in items]
    there = dict(map_pinned(hc._claims_job, items, workers=2))
    for i, (run, evs) in enumerate(here):
        run2, evs2 = there[i]
        assert run2["history"] == run["history"]
        assert run2["id"] == run["id"]
        assert set(evs2) == set(evs) == ({"test", "ood"} if i == 0 else {"test"})
        np.testing.assert_array_equal(evs2["test"].z_a, evs["test"].z_a)
        np.testing.assert_array_equal(evs2["test"].z_p, evs["test"].z_p)
