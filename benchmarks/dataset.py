"""Gait data set at scale: generate ``--records`` walker records into a chunked store on disk;
time and peak resident memory.

A child process runs :func:`jaxid.generate_gait_dataset` at its defaults (priors, 15 s saved every
0.1 s, x and y, chunks of 1024 records sharded over every local device; on a CPU each core is a
device) with ``store=``, so records go to disk chunk by chunk. The parent reports the child's wall
time (compilation included), its peak resident memory (``resource.getrusage(RUSAGE_CHILDREN)``,
the child being the only one), the store's size on disk, and reads the store back lazily, chunk
by chunk, checking every record is finite and the count is right. No peer: this checks that the
seed study's records can be made within bounded memory on the machine at hand.

    python benchmarks/dataset.py                              # 10^5 records
    python benchmarks/dataset.py --records 1000000            # 10^6 records
    python benchmarks/dataset.py --records 10000 --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model

CHILD = """
import os, sys, time, json
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
    + f" --xla_force_host_platform_device_count={os.cpu_count()}").strip()
import jax
jax.config.update("jax_enable_x64", True)
from jaxid import generate_gait_dataset
t0 = time.perf_counter()
ds = generate_gait_dataset(int(sys.argv[1]), seed=int(sys.argv[2]), store=sys.argv[3], progress=False)
print(json.dumps(dict(seconds=time.perf_counter() - t0, n_devices=jax.device_count(),
    platform=jax.devices()[0].platform, device_kind=jax.devices()[0].device_kind)))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--path", default=None, help="the store directory (default: a temporary one)")
    parser.add_argument("--out", default=None, help="JSON path (default results/dataset-<platform>.json)")
    args = parser.parse_args()
    if args.records < 1:
        parser.error("--records must be a positive int")

    tmp = tempfile.TemporaryDirectory() if args.path is None else None
    path = Path(tmp.name) / "gait" if tmp else Path(args.path)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(args.records), str(args.seed), str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: kilobytes

    import numpy as np

    from jaxid import load_dataset

    t0 = time.perf_counter()
    data = load_dataset(path)
    assert len(data) == args.records
    chunk = data.store.chunk_rows
    for start in range(0, len(data), chunk):
        block = data.obs[start : start + chunk]
        assert np.all(np.isfinite(block)), f"non-finite records in {start}..{start + chunk}"
    read_seconds = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    if tmp is not None:
        tmp.cleanup()

    result = {
        "benchmark": "gait data set into a chunked store (15 s at 0.1 s, x and y, default priors)",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": child["platform"],
            "device_kind": child["device_kind"],
            "n_devices": child["n_devices"],
            "cpu_count": os.cpu_count(),
            "processor": platform.machine(),
            "cpu": cpu_model(),
        },
        "versions": data.config["versions"],
        "records": len(data),
        "obs_shape": list(data.obs.shape),
        "obs_dtype": str(data.obs.dtype),
        "generation_seconds": round(child["seconds"], 1),
        "child_wall_seconds": round(wall, 1),
        "records_per_second": round(len(data) / child["seconds"], 1),
        "candidates": data.config["candidates"],
        "rejected": data.rejected,
        "rejection_rate": data.rejection_rate,
        "store_bytes": size,
        "read_back_seconds": round(read_seconds, 1),
        "peak_rss_bytes_generation": peak,
    }
    out = (
        Path(args.out)
        if args.out
        else Path(__file__).parent / "results" / f"dataset-{child['platform']}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
