"""Independent jobs over worker processes, one CPU core each.

A small compiled program (the hybrid models' training step: a few hundred tiny matrix products in
sequence) gains nothing from a second core: XLA:CPU has too little work in each operation to share
out. Measured on a 2-core Intel Xeon (``benchmarks/hybrid_workers.py``,
``benchmarks/results/hybrid-workers-cpu.json``), a Meta-Hybrid-VAE step (pendulum, batch 64, its
validation included) takes 50.0 ms in one process free to use both cores and 49.8 and 50.5 ms in
two processes pinned one core each and running at once: 2.0 times the steps per second.
:func:`map_pinned` runs independent jobs that way: ``workers`` processes started with ``spawn``
(JAX is not fork-safe), each pinned to its own core before JAX starts its backend.

A job's numbers are those of the same job run in the calling process: the claims study's runs
agree bit for bit (``tests/test_experiments_workers.py``), XLA:CPU splitting its work over threads
without changing the order of any sum in them.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any


def available_cores() -> list[int]:
    """The cores this process may run on (``os.sched_getaffinity``; all ``os.cpu_count()`` where
    the platform has no affinity)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _init(cores, x64: bool) -> None:
    core = cores.get()
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    import jax

    jax.config.update("jax_enable_x64", x64)


def map_pinned(fn: Callable[[Any], Any], items: Sequence[Any], *, workers: int) -> Iterator[tuple[int, Any]]:
    """``(index, fn(item))`` for every item, in the order the jobs finish.

    ``fn`` must be a module-level function (it is pickled by name) and ``items`` picklable. With
    ``workers == 1`` the jobs run here, in order. Otherwise ``workers`` spawned processes take
    them in turn, each pinned to one of :func:`available_cores` (unpinned when there are fewer
    cores than workers), with this process's ``jax_enable_x64``. An exception in a job is raised
    here.
    """
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"map_pinned: workers must be a positive int, got {workers!r}")
    if workers == 1 or len(items) <= 1:
        for i, item in enumerate(items):
            yield i, fn(item)
        return
    import jax

    ctx = multiprocessing.get_context("spawn")
    cores = ctx.Queue()
    free = available_cores()
    for w in range(workers):
        cores.put(free[w] if len(free) >= workers else None)
    try:
        with ctx.Pool(workers, initializer=_init, initargs=(cores, bool(jax.config.jax_enable_x64))) as pool:
            pending = dict(enumerate(pool.apply_async(fn, (item,)) for item in items))
            while pending:
                for i in [i for i, r in pending.items() if r.ready()]:
                    yield i, pending.pop(i).get()
                if pending:
                    next(iter(pending.values())).wait(0.5)
    finally:
        cores.close()
        cores.join_thread()
