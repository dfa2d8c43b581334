"""Memory-bounded, sharded evaluation of a batched function over many records.

:func:`map_chunked` is the loop behind :func:`jaxid.simulate_batch`,
:func:`jaxid.sensitivity.evaluate` and :func:`jaxid.hybrid.infer`: the records are cut into
chunks of a fixed length (a multiple of the device count), each chunk is split across the local
devices along its leading axis, run, and copied back to host memory before the next one starts.
The last chunk is padded by repeating the last record, so one compilation serves every chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import ArrayLike, PyTree
from tqdm.auto import tqdm


def _take(tree, idx):
    return jax.tree.map(lambda a: np.asarray(a)[idx], tree)


def batch_sharding(devices: Sequence[jax.Device] | None = None) -> tuple[list[jax.Device], NamedSharding]:
    """``devices`` (default: all local devices) and a sharding that splits the leading axis across them."""
    devices = jax.local_devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must name at least one device")
    return devices, NamedSharding(Mesh(np.array(devices), ("batch",)), PartitionSpec("batch"))


def chunk_length(chunk_size: int, n: int, n_devices: int) -> int:
    """``min(chunk_size, n)`` rounded up to a multiple of ``n_devices``."""
    return n_devices * math.ceil(min(chunk_size, n) / n_devices)


def map_chunked(
    run: Callable[..., PyTree[ArrayLike]],
    args: tuple[PyTree[ArrayLike], ...],
    *,
    chunk_size: int,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = False,
    desc: str = "evaluate",
    unit: str = "rec",
) -> PyTree[np.ndarray]:
    """``run(*args)`` over the leading axis of every array in ``args``, chunk by chunk.

    ``args`` is a tuple of pytrees whose array leaves all have the same leading length ``N``
    (``None`` leaves are passed through). ``run`` maps a chunk to a pytree of arrays with the
    same leading length; it should be jitted, and it sees the same shapes for every chunk.

    **Returns:** the outputs for all ``N`` records, concatenated, as NumPy arrays.
    """
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    leaves = jax.tree.leaves(args)
    if not leaves:
        raise ValueError("map_chunked: args hold no arrays")
    lengths = {np.shape(a)[0] if np.ndim(a) else None for a in leaves}
    if len(lengths) != 1 or None in lengths:
        raise ValueError(f"map_chunked: every array in args needs the same leading length, got {lengths}")
    n = lengths.pop()
    if n == 0:
        raise ValueError("map_chunked: there are no records (leading length 0)")
    devices, sharding = batch_sharding(devices)
    chunk = chunk_length(chunk_size, n, len(devices))
    outputs = []
    with tqdm(total=n, unit=unit, desc=desc, disable=not progress) as bar:
        for start in range(0, n, chunk):
            count = min(chunk, n - start)
            idx = np.minimum(np.arange(start, start + chunk), n - 1)  # pad with the last record
            part = jax.device_put(_take(args, idx), sharding)
            out = jax.device_get(run(*part))
            outputs.append(_take(out, slice(0, count)))
            bar.update(count)
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)
