r"""Gait data sets in a chunked on-disk store: resumable, bounded-memory, multi-process generation
and lazy reading (:func:`jaxid.generate_gait_dataset` with ``store=``; :func:`jaxid.load_dataset`
of a store directory).

**Chunks.** Generation chunk :math:`i` draws its ``chunk`` candidates from
``fold_in(key(seed), i)`` alone, so chunks can be made in any order, by any process, and again
after an interruption, with the same bytes. It is written to rows :math:`[i\,c, (i+1)\,c)` of the
store (:mod:`jaxid.data.store`): its ``kept`` records first (in candidate order), then its rejected
candidates (their ``params`` only), then its completion marker with the rejection counts by
reason. The data set's records are the first ``n`` records of chunks :math:`0, 1, \dots, k-1`,
where :math:`k` is the fewest chunks whose records reach ``n``: exactly the records the in-memory
generator returns.

**Resuming.** Run the same call again: complete chunks are checked against their markers' SHA-256
(a damaged chunk is made again) and skipped; a chunk whose writer was killed has no marker and is
made again. A store made with another configuration is refused
(:class:`jaxid.data.store.ConfigMismatchError`, naming the differing keys).

**Several processes.** Under ``jax.distributed`` (``jax.process_count()`` :math:`P > 1`, every
process calling ``generate_gait_dataset`` with the same arguments and the same ``store`` on a
shared file system) process :math:`p` makes the chunks :math:`i \equiv p \pmod P` on its local
devices. Process 0 creates the store; the others wait for it. A chunk past the
:math:`\lceil n / c \rceil` that are always needed is made only once the chunks before it are
complete and hold fewer than ``n`` records (needed only when candidates are rejected). Every
process returns once the store holds ``n`` records; process 0 writes the summary (rejection counts,
candidates, the worst period mismatch) to the store's attributes.

**Memory.** One chunk at a time is in memory (plus the gait table and the compiled functions):
the peak does not grow with ``n``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import numpy as np
from jaxtyping import Float
from tqdm.auto import tqdm

from .. import io as jio
from ..data.store import ChunkStore, StoredArray, create_store, open_store

if TYPE_CHECKING:  # jaxid.walker.data imports this module
    from .data import GaitDataset

__all__ = ["StoredDataset", "generate_into_store", "open_gait_store"]

_RECORD_FIELDS = (
    "params",
    "obs",
    "initial_states",
    "gait_eigenvalue",
    "gait_step_time",
    "gait_step_length",
    "mismatch",
)
_POLL = 0.2


@dataclass
class StoredDataset:
    """A gait data set read on demand from a store: the fields of :class:`jaxid.GaitDataset`
    (``params``, ``obs``, ``initial_states``, ``gait_eigenvalue``, ``gait_step_time``,
    ``gait_step_length`` as :class:`jaxid.data.store.StoredArray`; ``ts``, ``channels``,
    ``param_names``, ``rejected``, ``config`` and ``rejected_params`` in memory; ``obs_clean``
    ``None``), ``len``, and indexing by record: ``data[idx]`` (an int array, a slice or a boolean
    mask) is a :class:`jaxid.GaitDataset` of those records, read from disk. ``to_memory()`` reads
    all of it."""

    store: ChunkStore
    params: StoredArray
    obs: StoredArray
    ts: Float[np.ndarray, " time"]
    channels: tuple[str, ...]
    initial_states: StoredArray
    gait_eigenvalue: StoredArray
    gait_step_time: StoredArray
    gait_step_length: StoredArray
    rejected: dict[str, int]
    config: dict
    rejected_params: Float[np.ndarray, "rejected param"]
    obs_clean: None = None
    param_names: tuple[str, ...] = ("m", "k", "l0")

    def __len__(self) -> int:
        return len(self.params)

    @property
    def rejection_rate(self) -> float:
        """Rejected candidates as a fraction of all candidates drawn."""
        return sum(self.rejected.values()) / self.config["candidates"]

    def __getitem__(self, index) -> GaitDataset:
        from .data import GaitDataset

        if isinstance(index, (int, np.integer)):
            index = np.array([index])
        return GaitDataset(
            params=self.params[index],
            obs=self.obs[index],
            ts=self.ts,
            channels=self.channels,
            initial_states=self.initial_states[index],
            gait_eigenvalue=self.gait_eigenvalue[index],
            rejected=dict(self.rejected),
            config=dict(self.config),
            param_names=self.param_names,
            gait_step_time=self.gait_step_time[index],
            gait_step_length=self.gait_step_length[index],
            rejected_params=self.rejected_params,
        )

    def to_memory(self) -> GaitDataset:
        """The whole data set as a :class:`jaxid.GaitDataset` (its ``.save`` writes a ``.npz``)."""
        return self[:]


def _fields(n_save: int, n_channels: int) -> dict:
    return dict(
        params=((3,), "float64"),
        obs=((n_save, n_channels), "float32"),
        initial_states=((7,), "float64"),
        gait_eigenvalue=((), "float64"),
        gait_step_time=((), "float64"),
        gait_step_length=((), "float64"),
        mismatch=((), "float64"),
    )


def _chunks_needed(kept: list[int], n: int) -> int | None:
    """Fewest leading chunks whose ``kept`` reach ``n`` (``None`` if these do not)."""
    total = 0
    for i, k in enumerate(kept):
        total += k
        if total >= n:
            return i + 1
    return None


def _prefix_kept(markers: dict) -> list[int]:
    out = []
    while len(out) in markers:
        out.append(markers[len(out)]["kept"])
    return out


def generate_into_store(
    path: str | os.PathLike,
    make_chunk: Callable[[int], Mapping[str, np.ndarray]],
    *,
    config: dict,
    ts: Float[np.ndarray, " time"],
    chunk: int,
    max_rounds: int,
    versions: dict,
    started: float,
    progress: bool,
) -> StoredDataset:
    """Make the chunks of the data set described by ``config`` into the store at ``path`` (see the
    module docstring); ``make_chunk(i)`` returns chunk ``i``'s candidates. Called by
    :func:`jaxid.generate_gait_dataset`."""
    where = "generate_gait_dataset"
    path = Path(path)
    n = int(config["n"])
    n_proc, me = jax.process_count(), jax.process_index()
    identity = dict(config, chunk_rows=chunk)
    fields = _fields(len(ts), len(config["channels"]))
    kw = dict(config=identity, fields=fields, chunk_rows=chunk, capacity_chunks=max_rounds)
    if me == 0:
        st = create_store(path, **kw)
        if "ts" not in st.attrs:
            st.set_attrs(ts=np.asarray(ts).tolist(), versions=versions)
    else:
        open_store(path, wait=600.0)  # process 0 creates it
        st = create_store(path, **kw)  # opens it and checks the configuration
    markers = st.markers()
    mine = [i for i in markers if i % n_proc == me]
    for i in st.verify(mine):
        st.discard(i)  # damaged since it was written: make it again
        del markers[i]
    always = math.ceil(n / chunk)
    with tqdm(total=n, unit="rec", desc="gait data (store)", disable=not progress) as bar:
        bar.update(min(n, sum(_prefix_kept(markers))))
        for i in range(me, max_rounds, n_proc):
            if i >= always:
                # Needed only if the chunks before it hold fewer than n records: wait for them.
                # (or for the complete ones to reach n already: then chunk i is not needed either).
                while True:
                    markers = st.markers()
                    kept = _prefix_kept(markers)
                    if len(kept) >= i or _chunks_needed(kept, n) is not None:
                        break
                    time.sleep(_POLL)
                if _chunks_needed(kept[:i], n) is not None:
                    break
            if i in markers:
                continue
            c = make_chunk(i)
            ok = c["ok"]
            order = np.concatenate([np.flatnonzero(ok), np.flatnonzero(~ok)])
            rejected: dict[str, int] = {}
            for name in c["reason"][~ok]:
                rejected[str(name)] = rejected.get(str(name), 0) + 1
            rows = {f: c[f][order] for f in _RECORD_FIELDS}
            st.write_chunk(i, rows, kept=int(ok.sum()), meta=dict(rejected=rejected))
            bar.update(min(int(ok.sum()), max(0, n - bar.n)))
            bar.set_postfix(rejected=sum(rejected.values()))
        # Wait for the other processes' chunks.
        while True:
            markers = st.markers()
            kept = _prefix_kept(markers)
            k = _chunks_needed(kept, n)
            if k is not None:
                break
            if len(kept) >= max_rounds:
                raise RuntimeError(
                    f"{where}: only {sum(kept)} of {n} records after {max_rounds} chunks; check the priors, "
                    "alpha0_deg and height_ratio"
                )
            time.sleep(_POLL)
    if me == 0 and "summary" not in st.attrs:
        ds = _open(st, markers)
        worst = float(np.max(st.read("mismatch", st.rows(np.arange(n), np.array(kept[:k]))), initial=0.0))
        st.set_attrs(
            summary=dict(
                candidates=k * chunk,
                rejected=ds.rejected,
                max_mismatch=worst,
                seconds=time.perf_counter() - started,
            )
        )
    return _open(st, markers)


def _open(st: ChunkStore, markers: dict, *, path_for_errors=None) -> StoredDataset:
    config = dict(st.config)
    n = int(config["n"])
    chunk = st.chunk_rows
    kept = _prefix_kept(markers)
    k = _chunks_needed(kept, n)
    if k is None:
        raise jio.CorruptFileError(
            f"{st.path}: the store is incomplete ({sum(kept)} of {n} records in its first {len(kept)} "
            "complete chunks): run the same generate_gait_dataset(..., store=) call again to finish it"
        )
    kept_arr = np.array(kept[:k], dtype=np.int64)
    rejected: dict[str, int] = {}
    for i in range(k):
        for reason, count in markers[i]["meta"].get("rejected", {}).items():
            rejected[reason] = rejected.get(reason, 0) + count
    rej_rows = np.concatenate([np.arange(i * chunk + kept[i], (i + 1) * chunk) for i in range(k)])
    summary = st.attrs.get("summary", {})
    config.pop("chunk_rows", None)
    full = {kk: v for kk, v in config.items() if kk not in ("gait_mode", "table_nodes", "table_error")}
    full["candidates"] = k * chunk
    full.update({kk: config[kk] for kk in ("gait_mode", "table_nodes", "table_error") if kk in config})
    for kk in ("max_mismatch", "seconds"):
        if kk in summary:
            full[kk] = summary[kk]
    full["versions"] = st.attrs.get("versions")
    full["store"] = str(st.path)
    arr = {f: StoredArray(st, f, kept_arr, n) for f in _RECORD_FIELDS}
    return StoredDataset(
        store=st,
        params=arr["params"],
        obs=arr["obs"],
        ts=np.asarray(st.attrs["ts"]),
        channels=tuple(config["channels"]),
        initial_states=arr["initial_states"],
        gait_eigenvalue=arr["gait_eigenvalue"],
        gait_step_time=arr["gait_step_time"],
        gait_step_length=arr["gait_step_length"],
        rejected=rejected,
        config=full,
        rejected_params=st.read("params", rej_rows),
    )


def open_gait_store(path: str | os.PathLike, *, verify: bool = False) -> StoredDataset:
    """Open the gait data set in the store at ``path`` lazily (arrays are read on demand).

    ``verify``: check every chunk's bytes against its marker's SHA-256 first (reads the whole
    store). Raises :class:`jaxid.io.CorruptFileError` if the store is incomplete (a generation
    that has not finished: run it again) or, with ``verify``, names the damaged chunks."""
    st = open_store(path)
    markers = st.markers()
    if verify:
        bad = st.verify()
        if bad:
            raise jio.CorruptFileError(
                f"{st.path}: chunks {bad} do not match their checksums (damaged on disk); run the "
                "generation again with the same store= to make them again"
            )
    return _open(st, markers)
