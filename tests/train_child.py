"""Train a small estimator, runnable as a script (for ``tests/test_train_multiprocess.py``).

``python train_child.py OUT MODES [PROCESS_ID NUM_PROCESSES PORT CHECKPOINT]``: ``MODES`` is
``memory`` (the records in memory), ``streamed`` (the same records through ``nn.Streamed``, two
minibatches per window) or both, comma-separated (checkpoints ``CHECKPOINT.<mode>``). With the
process arguments the process joins a ``jax.distributed`` run on ``localhost:PORT`` (CPU
collectives through gloo) first. Writes the validation losses and the predictions on the first
records to ``OUT`` (``OUT.<process id>`` in a distributed run).
"""

import json
import sys

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

N, T, C = 240, 10, 2


def data():
    rng = np.random.default_rng(5)
    theta = rng.uniform(0.5, 2.0, (N, 2))
    t = np.linspace(0, 1, T)
    s = theta[:, :1] * np.sin(3 * theta[:, 1:2] * t)
    return np.stack([s, s**2], -1).astype(np.float32), theta


def main():
    out, mode = sys.argv[1], sys.argv[2]
    checkpoint = None
    if len(sys.argv) > 3:
        pid, nproc, port = (int(a) for a in sys.argv[3:6])
        checkpoint = sys.argv[6]
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"localhost:{port}", num_processes=nproc, process_id=pid
        )
        out = f"{out}.{pid}"
    from jaxid import nn

    x, theta = data()
    cfg = nn.TrainConfig(epochs=3, batch_size=16, members=2, patience=None, progress=False)
    got = dict(devices=len(jax.devices()))
    for m in mode.split(","):
        src = nn.Streamed(x, window=64) if m == "streamed" else x
        res = nn.train(src, theta, ["a", "b"], config=cfg, checkpoint=checkpoint and f"{checkpoint}.{m}")
        pred = np.asarray(res.estimator.predict(x[:16]))
        got[m] = dict(val_loss=res.history["val_loss"], pred=pred.tolist())
    with open(out, "w") as f:
        json.dump(got, f)
    if len(sys.argv) > 3:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
