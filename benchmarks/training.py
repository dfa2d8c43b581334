"""Training throughput of the gait study's MLP: jaxid against an equivalent PyTorch loop.

The seed study's network (7 hidden layers of 50 units, ReLU) maps a (150, 2) trajectory (300
inputs) to 3 parameters. Both sides train on the same synthetic float32 data (``--records``,
80/10/10 split), with the same architecture, Adam at a constant learning rate of 1e-3, the same
minibatch size, a fresh shuffle each epoch and one validation pass per epoch:

- jaxid: :func:`jaxid.nn.train` (one jitted call per epoch: ``lax.scan`` over minibatches, then
  validation); throughput after the first epoch (which compiles);
- PyTorch 2.13 (CPU, ``torch.set_num_threads`` = cores): the textbook loop (``zero_grad``,
  forward, ``backward``, ``step`` per minibatch; validation under ``no_grad``), first epoch
  excluded as warm-up.

Samples/s = training samples processed per second of wall time (validation included), best of
``--repeats`` runs of ``--epochs`` epochs each, for each batch size, in one run.

    pip install torch==2.13.0   # benchmark only; not a jaxid dependency
    python benchmarks/training.py
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
import numpy as np

from jaxid import __version__, nn

DEPTH, WIDTH, TIME, CHANNELS, OUT = 7, 50, 150, 2, 3


def data(records: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(records, TIME, CHANNELS)).astype(np.float32)
    w = rng.normal(size=(TIME * CHANNELS, OUT)).astype(np.float32) / np.sqrt(TIME * CHANNELS)
    y = np.tanh(x.reshape(records, -1) @ w) + 0.1 * rng.normal(size=(records, OUT)).astype(np.float32)
    return x, y


def jaxid_throughput(x, y, batch, epochs):
    cfg = nn.TrainConfig(
        epochs=epochs, batch_size=batch, lr_decay=False, patience=None, progress=False, seed=1
    )
    res = nn.train(x, y, ("a", "b", "c"), arch="mlp", depth=DEPTH, width=WIDTH, config=cfg)
    return res.samples_per_second, res.history["train_loss"][-1]


def torch_throughput(x, y, batch, epochs):
    import torch

    torch.manual_seed(1)
    split = nn.split_indices(len(x), (0.8, 0.1, 0.1), 1)
    xt = torch.from_numpy(x[split["train"]].reshape(len(split["train"]), -1))
    yt = torch.from_numpy(y[split["train"]])
    xv = torch.from_numpy(x[split["val"]].reshape(len(split["val"]), -1))
    yv = torch.from_numpy(y[split["val"]])
    layers, width_in = [], TIME * CHANNELS
    for _ in range(DEPTH):
        layers += [torch.nn.Linear(width_in, WIDTH), torch.nn.ReLU()]
        width_in = WIDTH
    model = torch.nn.Sequential(*layers, torch.nn.Linear(WIDTH, OUT))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    n_batches = len(xt) // batch
    start = None
    for epoch in range(epochs):
        if epoch == 1:
            start = time.perf_counter()
        model.train()
        perm = torch.randperm(len(xt))
        for i in range(n_batches):
            idx = perm[i * batch : (i + 1) * batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = loss_fn(model(xv), yv).item()
    seconds = time.perf_counter() - start
    return (epochs - 1) * n_batches * batch / seconds, float(loss.item()), val


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "training-cpu.json"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    x, y = data(args.records)
    rows = []
    for batch in args.batches:
        j = max(jaxid_throughput(x, y, batch, args.epochs)[0] for _ in range(args.repeats))
        t = max(torch_throughput(x, y, batch, args.epochs)[0] for _ in range(args.repeats))
        rows.append(
            dict(batch=batch, jaxid_samples_per_s=round(j), torch_samples_per_s=round(t), ratio=j / t)
        )
        print(
            f"batch {batch:5d}: jaxid {j:12,.0f} samples/s   torch {t:12,.0f} samples/s   ratio {j / t:5.2f}x"
        )
    result = dict(
        benchmark="training throughput, MLP 7x50 relu on (150, 2) inputs, Adam, same data and batch",
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        machine=dict(
            platform=jax.devices()[0].platform,
            device_kind=jax.devices()[0].device_kind,
            cpu_count=os.cpu_count(),
            processor=platform.processor(),
            torch_threads=torch.get_num_threads(),
        ),
        versions=dict(jaxid=__version__, jax=jax.__version__, torch=torch.__version__, numpy=np.__version__),
        records=args.records,
        train_records=len(nn.split_indices(args.records, (0.8, 0.1, 0.1), 1)["train"]),
        epochs=args.epochs,
        repeats=args.repeats,
        rows=rows,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
