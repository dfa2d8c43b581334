"""Training streamed from an on-disk store against in-memory training: time per epoch, peak
resident memory, and agreement of the two.

The parent writes ``--records`` gait-shaped records (150 samples of 2 channels, float32: damped
oscillations with random amplitude and frequency, the two targets) into a chunked store
(:func:`jaxid.data.store.create_store`, chunks of 4096 records, its default blocks), then
runs two child processes on one core each, the same training in both (an MLP, ``--epochs``
epochs, batch 1000, patience off):

- *memory*: the store read whole into a NumPy array, then :func:`jaxid.nn.train`;
- *streamed*: :func:`jaxid.nn.train` on the store's field itself, ``--window-mb`` MB of
  records read at a time (:mod:`jaxid.nn.streaming`: the in-memory permutation, read out of core).

Each child reports its wall time, the first epoch (compilation included) and the later epochs
apart, its peak resident memory (``ru_maxrss``) and its validation losses; the parent checks that
the two agree. No peer: this measures what streaming costs and saves on the machine at hand.

    python benchmarks/streaming.py                        # 10^6 records (1.1 GB), 3 epochs
    python benchmarks/streaming.py --records 20000 --epochs 2 --out /tmp/s.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

T, C, ROWS = 150, 2, 4096

CHILD = """
import json, os, resource, sys, time
import numpy as np
from jaxid import nn
from jaxid.data.store import StoredArray, open_store
mode, path, epochs, window_mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
st = open_store(path)
kept = st.kept_counts(st.complete_prefix())
n = int(kept.sum())
x = StoredArray(st, "x", kept, n)
y = np.asarray(StoredArray(st, "y", kept, n), dtype=np.float64)
t0 = time.perf_counter()
if mode == "memory":
    src = np.asarray(x)
else:
    src = nn.Streamed(x, window=max(1, int(window_mb * 2**20) // (4 * x.shape[1] * x.shape[2])))
read = time.perf_counter() - t0
cfg = nn.TrainConfig(epochs=epochs, batch_size=1000, patience=None, progress=False, seed=0)
res = nn.train(src, y, ["a", "w"], config=cfg, width=128, depth=2)
print(json.dumps(dict(
    read_seconds=read,
    train_seconds=res.seconds,
    first_epoch_seconds=res.first_epoch_seconds,
    later_epoch_seconds=(res.seconds - res.first_epoch_seconds) / max(epochs - 1, 1),
    peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    val_loss=res.history["val_loss"],
    train_loss=res.history["train_loss"],
    window_records=None if mode == "memory" else src.records(),
)))
"""


def write_store(path: Path, records: int, seed: int) -> float:
    from jaxid.data.store import create_store

    chunks = -(-records // ROWS)
    st = create_store(
        path,
        config=dict(kind="streaming benchmark", records=records, seed=seed),
        fields=dict(x=((T, C), "float32"), y=((2,), "float64")),
        chunk_rows=ROWS,
        capacity_chunks=chunks,
    )
    done = st.complete_prefix()
    t = np.linspace(0.0, 15.0, T)
    start = time.perf_counter()
    for i in range(done, chunks):
        rng = np.random.default_rng([seed, i])
        kept = min(ROWS, records - i * ROWS)
        a, w = rng.uniform(0.5, 2.0, ROWS), rng.uniform(1.0, 3.0, ROWS)
        decay = np.exp(-0.05 * t)[None, :]
        s = a[:, None] * np.sin(w[:, None] * t[None, :]) * decay
        c = a[:, None] * np.cos(w[:, None] * t[None, :]) * decay
        x = np.stack([s, c], -1).astype(np.float32) + 0.01 * rng.standard_normal((ROWS, T, C)).astype(
            np.float32
        )
        st.write_chunk(i, dict(x=x, y=np.stack([a, w], -1)), kept=kept)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--window-mb", type=float, default=256.0)
    parser.add_argument("--path", default=None, help="the store directory (default: a temporary one)")
    parser.add_argument("--out", default=None, help="JSON path (default results/streaming-<platform>.json)")
    args = parser.parse_args()
    if args.records < 2000 or args.epochs < 2 or args.window_mb <= 0:
        parser.error("--records >= 2000, --epochs >= 2 and --window-mb > 0 are needed")

    tmp = tempfile.TemporaryDirectory() if args.path is None else None
    path = Path(tmp.name) / "store" if tmp else Path(args.path)
    write_seconds = write_store(path, args.records, 0)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    runs = {}
    for mode in ("memory", "streamed"):
        cmd = [sys.executable, "-c", CHILD, mode, str(path), str(args.epochs), str(args.window_mb)]
        if hasattr(os, "sched_setaffinity"):
            cmd = ["taskset", "-c", "0", *cmd]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
        runs[mode] = json.loads(out.strip().splitlines()[-1])
        print(mode, {k: v for k, v in runs[mode].items() if "loss" not in k}, flush=True)
    m, s = runs["memory"], runs["streamed"]
    val_m, val_s = np.asarray(m["val_loss"]), np.asarray(s["val_loss"])
    result = dict(
        benchmark="streaming",
        date=datetime.date.today().isoformat(),
        machine=dict(platform=platform.platform(), cpus=os.cpu_count(), python=platform.python_version()),
        cores="one per run (taskset -c 0, one XLA device)",
        records=args.records,
        x_gb=args.records * T * C * 4 / 2**30,
        store_gb=sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**30,
        write_seconds=write_seconds,
        epochs=args.epochs,
        window_mb=args.window_mb,
        memory=m,
        streamed=s,
        max_rel_val_loss_difference=float(np.max(np.abs(val_s - val_m) / np.abs(val_m))),
        later_epoch_ratio=s["later_epoch_seconds"] / m["later_epoch_seconds"],
        peak_rss_ratio=s["peak_rss_gb"] / m["peak_rss_gb"],
    )
    if result["max_rel_val_loss_difference"] > 1e-4:  # the same training, to float32 rounding
        raise SystemExit(
            f"streamed and in-memory training disagree: {result['max_rel_val_loss_difference']:.3g}"
        )
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / "streaming-cpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("memory", "streamed")}, indent=2))
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
