"""Gait data set at scale: generate, save and load ``--records`` walker records; time and memory.

Runs :func:`jaxid.generate_gait_dataset` at its defaults (priors, 15 s saved every 0.1 s, x and y,
chunks of 1024 records sharded over every local device; on a CPU each core is a device), writes
the data set to ``--path``, loads it back and checks that it round-trips. Reports wall time
(compilation included, and records/s after the first chunk), the rejection rate by reason, the
file size and the process's peak resident memory. No peer: this checks that the seed study's 10^6
records can be made on the machine at hand.

    python benchmarks/dataset.py --records 1000000            # about an hour on 2 CPU cores
    python benchmarks/dataset.py --records 10000 --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import os

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={os.cpu_count()}"
    ).strip()

import datetime
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import jaxid  # noqa: E402
from jaxid import generate_gait_dataset, load_dataset  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--path", default=None, help="where to write the .npz (default: a temporary file)")
    parser.add_argument("--out", default=None, help="JSON path (default results/dataset-<platform>.json)")
    args = parser.parse_args()
    if args.records < 1:
        parser.error("--records must be a positive int")

    dev = jax.devices()[0]
    started = time.perf_counter()
    data = generate_gait_dataset(args.records, seed=args.seed)
    gen_seconds = time.perf_counter() - started

    tmp = None
    if args.path is None:
        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / "gait.npz"
    else:
        path = Path(args.path)
    t0 = time.perf_counter()
    data.save(path)
    save_seconds = time.perf_counter() - t0
    size = path.stat().st_size
    t0 = time.perf_counter()
    back = load_dataset(path)
    load_seconds = time.perf_counter() - t0
    assert np.array_equal(back.obs, data.obs) and np.array_equal(back.params, data.params)
    assert back.config == data.config and back.rejected == data.rejected
    assert np.all(np.isfinite(back.obs))
    if tmp is not None:
        tmp.cleanup()

    result = {
        "benchmark": "gait data set: generate, save, load (15 s at 0.1 s, x and y, default priors)",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": dev.platform,
            "device_kind": dev.device_kind,
            "n_devices": jax.device_count(),
            "cpu_count": os.cpu_count(),
            "processor": platform.machine(),
        },
        "versions": data.config["versions"],
        "jaxid": jaxid.__version__,
        "records": len(data),
        "obs_shape": list(data.obs.shape),
        "obs_dtype": str(data.obs.dtype),
        "generation_seconds": round(gen_seconds, 1),
        "records_per_second": round(len(data) / gen_seconds, 1),
        "candidates": data.config["candidates"],
        "rejected": data.rejected,
        "rejection_rate": data.rejection_rate,
        "file_bytes": size,
        "save_seconds": round(save_seconds, 1),
        "load_seconds": round(load_seconds, 1),
        "round_trip_equal": True,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"dataset-{dev.platform}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
