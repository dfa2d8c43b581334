"""A tiny training problem for the checkpoint tests, importable and runnable as a script.

``python checkpoint_child.py CHECKPOINT`` trains it with ``checkpoint=CHECKPOINT`` and every epoch
slowed by ``SLOW`` seconds (outside the jitted epoch: the numbers are untouched), so that a test
can kill it with ``SIGKILL`` part-way through.
"""

import sys
import time

import jax

jax.config.update("jax_enable_x64", True)  # as tests/conftest.py: the same numbers in both processes

import numpy as np  # noqa: E402

from jaxid import nn  # noqa: E402
from jaxid.nn import training  # noqa: E402

SLOW = 0.25  # seconds added to every epoch in the child
NET = dict(arch="mlp", width=8, depth=1)


def problem():
    """Data (two linear functionals of a random walk, 2 channels) and a configuration whose
    members stop early on their own (patience 3, a large step) within the epoch budget."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 6, 2)).astype(np.float32)
    y = np.stack([x[..., 0].mean(1), x[:, -1, 1] - x[:, 0, 0]], 1)
    config = nn.TrainConfig(
        epochs=40, batch_size=20, learning_rate=3e-2, patience=3, members=2, seed=3, progress=False
    )
    return x, y, ("a", "b"), config


def main(checkpoint: str) -> None:
    real = training._epoch

    def slow_epoch(*args):
        time.sleep(SLOW)
        return real(*args)

    training._epoch = slow_epoch
    x, y, names, config = problem()
    nn.train(x, y, names, config=config, checkpoint=checkpoint, **NET)


if __name__ == "__main__":
    main(sys.argv[1])
