"""Training throughput of the hybrid models' claims runs: one process on every core against one
pinned worker process per core (:func:`jaxid.experiments.workers.map_pinned`).

The job is what one run of ``jaxid hybrid --claims`` does between its validation calls: ``calls``
jitted calls of 25 Adam steps of Meta-Hybrid-VAE on the pendulum (the claims study's defaults:
40 training tasks of 20 sequences, batch 64, context 5, width 64), each followed by the validation
split's reconstruction error. Timed after a warm-up call (which compiles), in one run:

- **one process**: the job alone in this process, XLA using every core;
- **pinned workers**: the job in each of ``workers`` spawned processes at once, each pinned to one
  core, started together (the runs of the claims study, as it runs them).

Reported: milliseconds per training step (validation included) for each process, and steps per
second over all of them: the claims study's throughput either way.

    python benchmarks/hybrid_workers.py          # writes results/hybrid-workers-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from jaxid import __version__  # noqa: E402
from jaxid.experiments.workers import available_cores, map_pinned  # noqa: E402

try:
    from _machine import cpu_model
except ImportError:  # imported as benchmarks.hybrid_workers
    from benchmarks._machine import cpu_model


def job(item) -> dict:
    """Time ``calls`` calls of 25 steps and a validation each, after one warm-up call."""
    calls, kind = item
    import equinox as eqx
    import jax.numpy as jnp

    from jaxid.experiments.hybrid import _data
    from jaxid.experiments.hybrid_claims import HybridClaimsConfig
    from jaxid.hybrid import make_model
    from jaxid.hybrid.training import _Hyper, _optimizer, _run_steps, _val_recon

    config = HybridClaimsConfig(progress=False, workers=1)
    data = _data(config, 0, "pendulum")
    obs = jnp.asarray(data.train.obs[:, :, : data.system.n_train])
    h = _Hyper(steps=25, total=25 * (calls + 1), batch=64, context=5, lr=2e-3, clip=10.0)
    model = make_model(kind, data.system, data.scales(), key=jax.random.key(0), width=64, depth=2)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    state = (params, _optimizer(h).init(params), model.init_aux(), jax.random.key(0))
    n = jnp.asarray(data.train.n_tasks)

    def call(state):
        out = _run_steps(*state[:1], static, *state[1:], obs, n, h)
        _val_recon(eqx.combine(out[0], static), data.val, 5)
        return out[:4]

    state = call(state)  # compiles
    start = time.perf_counter()
    for _ in range(calls):
        state = call(state)
    seconds = time.perf_counter() - start
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"ms_per_step": 1e3 * seconds / (25 * calls), "seconds": seconds, "cores": cores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=40, help="timed calls of 25 steps per process")
    parser.add_argument("--kind", default="meta_hybrid_vae")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "hybrid-workers-cpu.json"))
    args = parser.parse_args()
    workers = len(available_cores())
    one = job((args.calls, args.kind))
    print(f"one process, {workers} cores: {one['ms_per_step']:.1f} ms/step", flush=True)
    pinned = [r for _, r in sorted(map_pinned(job, [(args.calls, args.kind)] * workers, workers=workers))]
    for r in pinned:
        print(f"pinned worker on core {r['cores']}: {r['ms_per_step']:.1f} ms/step", flush=True)
    steps_one = 1e3 / one["ms_per_step"]
    steps_pinned = sum(1e3 / r["ms_per_step"] for r in pinned)
    result = {
        "benchmark": "hybrid claims runs: one process on every core against one pinned worker per core",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
        "machine": {"cpu": cpu_model(), "cores": workers, "platform": platform.platform()},
        "versions": {"jaxid": __version__, "jax": jax.__version__},
        "job": f"{args.calls} calls of 25 steps of {args.kind} (pendulum, claims defaults) + validation each",
        "one_process": one,
        "pinned_workers": pinned,
        "steps_per_second": {"one_process": steps_one, "pinned_workers": steps_pinned},
        "throughput_ratio": steps_pinned / steps_one,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(
        f"steps/s: one process {steps_one:.1f}, pinned workers {steps_pinned:.1f} "
        f"({result['throughput_ratio']:.2f}x); wrote {args.out}"
    )


if __name__ == "__main__":
    main()
