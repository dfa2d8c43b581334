r"""The study's data step: candidates drawn in rounds, simulated block by block, rejected records
counted by reason; with a store, every block written to disk as it is made and a rerun resumed.

**Rounds.** Round :math:`r` draws :math:`n_r` candidates from ``fold_in(key, r)``
(:math:`n_0` = ``records``, then :math:`1.5\times` the records still missing, plus 8) until
``records`` are accepted (at most 5 rounds). A round's candidates are simulated in *blocks* of
``block`` candidates; the accepted records of a round are its accepted candidates in draw order,
and the data set is the first ``records`` of them over the rounds. Every candidate's rejection
reason is counted.

**The store** (:mod:`jaxid.data.store`, zarr v3, one chunk per block): chunk :math:`c` holds
block :math:`c` (counted over the rounds), its accepted records first (``theta``, the clean
``obs``, and ``y0`` where the model has initial states) and, in its marker, the round, the
number of candidates and the rejection counts. A rerun with the same data configuration
(:func:`data_config`) reads the complete chunks back and simulates only the others, so an
interrupted data step continues where it stopped, and gives the records of an uninterrupted run;
another configuration is refused (:class:`jaxid.data.store.ConfigMismatchError`, naming the keys).
The store holds clean records: noise is drawn afterwards from its own key, so one store serves
every noise level.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ..data.store import ChunkStore, create_store, is_store, open_store
from ..typing import Key
from .config import StudyConfig

__all__ = ["MAX_ROUNDS", "StudyRecords", "collect", "data_config"]

MAX_ROUNDS = 5


@dataclass(frozen=True)
class StudyRecords:
    """The study's records, as its data step returns them.

    - ``theta``: the studied parameters of the accepted records, ``(records, p)``;
    - ``y0``: their initial states ``(records, state)``, or ``None`` where the model draws none;
    - ``clean``: the noise-free observations, float64 ``(records, time, channel)``;
    - ``rejected``: the rejected candidates, counted by reason;
    - ``candidates``: the candidates simulated (accepted and rejected);
    - ``dataset``: for the walker on its gait, the :class:`jaxid.walker.GaitDataset` (or its
      store) the records come from, each record's gait with it; else ``None``.
    """

    theta: np.ndarray
    y0: np.ndarray | None
    clean: np.ndarray
    rejected: dict[str, int]
    candidates: int
    dataset: Any = None


def data_config(config: StudyConfig) -> dict:
    """The part of a :class:`~jaxid.study.StudyConfig` that decides the clean records (what a
    store is made with): the model, the priors, the fixed values, the initial state, the exact
    save times, the channels, ``records``, ``chunk_size`` and ``seed``."""
    d = config.to_dict()
    keep = ("model", "model_options", "params", "fixed", "initial_state", "channels", "records", "seed")
    out = {k: d[k] for k in keep}
    out["times"] = [float(t) for t in config.times]
    out["chunk_size"] = int(config.chunk_size)
    return out


def _round_size(need: int, round_: int) -> int:
    return need if round_ == 0 else int(need * 1.5) + 8


def collect(
    records: int,
    draw: Callable,
    simulate: Callable,
    *,
    key: Key,
    block: int,
    store: str | Path | None = None,
    config: dict | None = None,
    say: Callable = lambda *a, **k: None,
) -> StudyRecords:
    """Accepted records as in the module docstring.

    ``draw(key, n) -> (theta (n, p), y0 (n, s) or None)``; ``simulate(theta, y0) -> (obs
    (n, time, channel), reasons (None when accepted), y0)``. With ``store`` (a path), blocks are
    written there and complete ones read back; ``config`` (JSON-able, :func:`data_config`) is what
    the store is made with.

    **Returns:** a :class:`StudyRecords` (its ``dataset`` ``None``).
    """
    st, markers = _existing(store, config, block, records)
    need, round_, chunk = records, 0, 0
    thetas, y0s, obs, rejected, candidates = [], [], [], Counter(), 0
    while need > 0:
        if round_ == MAX_ROUNDS:
            raise RuntimeError(
                f"run: only {records - need} of {records} records simulated after {candidates} "
                f"candidates; rejected: {dict(rejected)}. Narrow the priors."
            )
        n = _round_size(need, round_)
        theta, y0 = draw(jax.random.fold_in(key, round_), n)
        kept = []
        for a in range(0, n, block):
            b = min(a + block, n)
            got = _read(st, markers.get(chunk), chunk, round_, b - a) if st is not None else None
            if got is None:
                clean, reasons, y0_out = simulate(theta[a:b], None if y0 is None else y0[a:b])
                ok = np.array([r is None for r in reasons], dtype=bool)
                counts = Counter(r for r in reasons if r is not None)
                got = (theta[a:b][ok], None if y0_out is None else np.asarray(y0_out)[ok], clean[ok], counts)
                if store is not None:
                    st = st or _create(store, config, got, block, records)
                    _write(st, chunk, round_, b - a, got)
            kept.append(got[:3])
            rejected.update(got[3])
            chunk += 1
        candidates += n
        t = np.concatenate([k[0] for k in kept])
        take = min(need, len(t))
        thetas.append(t[:take])
        y0s.append(None if kept[0][1] is None else np.concatenate([k[1] for k in kept])[:take])
        obs.append(np.concatenate([k[2] for k in kept])[:take])
        if take < need:
            say(f"  {n - len(t)} of {n} candidates rejected; drawing more", flush=True)
        need -= take
        round_ += 1
    y0_all = None if y0s[0] is None else np.concatenate(y0s)
    return StudyRecords(np.concatenate(thetas), y0_all, np.concatenate(obs), dict(rejected), candidates)


def _capacity(records: int, block: int) -> int:
    # the most candidates MAX_ROUNDS rounds can draw, in blocks (unwritten chunks cost nothing)
    most = records + (MAX_ROUNDS - 1) * (int(records * 1.5) + 8)
    return -(-most // block) + MAX_ROUNDS


def _existing(path, config, block, records) -> tuple[ChunkStore | None, dict]:
    """The store at ``path`` if there is one, checked against ``config``, and its markers."""
    if path is None or not is_store(path):
        return None, {}
    fields = {k: (shape, dtype.str) for k, (shape, dtype) in open_store(path).fields.items()}
    st = create_store(
        path,
        config=dict(config or {}),
        fields=fields,
        chunk_rows=block,
        capacity_chunks=_capacity(records, block),
    )  # raises ConfigMismatchError naming the keys if it was made with another configuration
    return st, st.markers()


def _create(path, config, got, block, records) -> ChunkStore:
    """A new store whose fields are shaped after the first block's records."""
    theta, y0, clean, _ = got
    fields = dict(theta=((theta.shape[1],), "float64"), obs=(tuple(clean.shape[1:]), "float64"))
    if y0 is not None:
        fields["y0"] = ((y0.shape[1],), "float64")
    return create_store(
        path,
        config=dict(config or {}),
        fields=fields,
        chunk_rows=block,
        capacity_chunks=_capacity(records, block),
    )


def _read(st: ChunkStore, m: dict | None, chunk: int, round_: int, n: int):
    """Chunk ``chunk``'s records and rejection counts, or ``None`` if it is not complete (or is
    damaged: it is then made again)."""
    if m is None:
        return None
    if m["meta"].get("round") != round_ or m["meta"].get("candidates") != n:
        raise RuntimeError(
            f"{st.path}: chunk {chunk} holds round {m['meta'].get('round')} with "
            f"{m['meta'].get('candidates')} candidates, expected round {round_} with {n}; delete the store"
        )
    if st.verify([chunk]):
        st.discard(chunk)
        return None
    rows = np.arange(chunk * st.chunk_rows, chunk * st.chunk_rows + m["kept"])
    y0 = st.read("y0", rows) if "y0" in st.fields else None
    return st.read("theta", rows), y0, st.read("obs", rows), Counter(m["meta"]["rejected"])


def _write(st: ChunkStore, chunk: int, round_: int, n: int, got) -> None:
    theta, y0, clean, counts = got
    k = len(theta)
    arrays = {}
    for name, value in (("theta", theta), ("obs", clean), ("y0", y0)):
        if name in st.fields:
            shape, dtype = st.fields[name]
            full = np.zeros((st.chunk_rows, *shape), dtype)
            full[:k] = value
            arrays[name] = full
    st.write_chunk(chunk, arrays, kept=k, meta=dict(round=round_, candidates=n, rejected=dict(counts)))
