r"""Chunked, resumable data sets on disk (zarr v3).

A *store* is a directory holding a zarr v3 group: one array per record field, all with the same
number of rows, cut into *chunks* of ``chunk_rows`` rows that are written one at a time as they
are made. Why zarr: a well-kept chunked array format with a written specification (v3),
compression, reads of any rows without loading the rest, and writers in several processes at
once as long as each writes its own chunks (each chunk is one zarr *shard*, a file of its own).

Layout of a store at ``path``::

    path/zarr.json              the zarr group; its attributes hold the configuration
    path/<field>/...            one zarr array per field, shape (capacity_chunks * chunk_rows, ...)
    path/jaxid-store.json       written last when the store is created: format, configuration
    path/chunks/<i>.json        chunk i's completion marker, written after its arrays

A chunk holds ``chunk_rows`` row slots; the first ``kept`` of them are records, the rest are free
for whatever the producer keeps alongside (a generator keeps its rejected candidates there). The
marker of chunk :math:`i` is written atomically (:mod:`jaxid.io`) only after all of the chunk's
arrays are on disk, and records ``kept``, producer metadata (e.g. rejection counts by reason) and
the SHA-256 of every field's bytes over the chunk's rows. So a reader knows which chunks are
complete: a chunk without a marker is absent (a writer killed while writing it leaves no marker),
and a chunk whose bytes no longer match its marker is corrupt (:meth:`ChunkStore.verify`).

The records of a store are those of its complete chunks in chunk order: record :math:`j` is row
:math:`j - c_i` of chunk :math:`i`, where :math:`c_i = \sum_{i' < i} \mathrm{kept}_{i'}` and
:math:`c_i \le j < c_{i+1}` (:meth:`ChunkStore.rows`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from jaxtyping import ArrayLike, Int, Shaped

from .. import io as jio

__all__ = ["ChunkStore", "ConfigMismatchError", "StoredArray", "create_store", "open_store"]

FORMAT = 1
#: Default size of a compressed block of a field's rows inside a chunk (:func:`create_store`).
INNER_BYTES = 256 * 2**10
_HEADER = "jaxid-store.json"
_MARKERS = "chunks"


class ConfigMismatchError(ValueError):
    """A store exists at the path but was made with another configuration."""


def _normal(obj):
    """``obj`` as JSON gives it back (tuples become lists, keys strings), for comparisons."""
    return json.loads(json.dumps(obj))


def differing_keys(a: Mapping, b: Mapping, prefix: str = "") -> list[str]:
    """Dotted names of the keys whose values differ between two nested mappings."""
    out = []
    for k in sorted(set(a) | set(b)):
        name = f"{prefix}{k}"
        if k not in a or k not in b:
            out.append(name)
        elif isinstance(a[k], dict) and isinstance(b[k], dict):
            out += differing_keys(a[k], b[k], name + ".")
        elif a[k] != b[k]:
            out.append(name)
    return out


def _zarr():
    try:
        import zarr
    except ImportError as err:  # pragma: no cover - zarr is a dependency
        raise ImportError("jaxid's on-disk data sets need zarr>=3.1: pip install 'zarr>=3.1'") from err
    return zarr


class ChunkStore:
    """A store opened for reading and writing (see the module docstring); made by
    :func:`create_store` or :func:`open_store`.

    - ``path``; ``chunk_rows``; ``capacity_chunks``; ``fields``: ``{name: (row_shape, dtype)}``;
    - ``config``: the configuration the store was made with; ``attrs``: free-form attributes.
    """

    def __init__(self, path: Path, header: dict):
        zarr = _zarr()
        self.path = path
        self.chunk_rows = int(header["chunk_rows"])
        self.capacity_chunks = int(header["capacity_chunks"])
        self.fields = {k: (tuple(v[0]), np.dtype(v[1])) for k, v in header["fields"].items()}
        self.config = header["config"]
        self.attrs = header.get("attrs", {})
        self._group = zarr.open_group(str(path), mode="r+")
        self._arrays = {name: self._group[name] for name in self.fields}

    # ------------------------------------------------------------------ writing
    def write_chunk(
        self, index: int, arrays: Mapping[str, np.ndarray], *, kept: int, meta: dict | None = None
    ) -> None:
        """Write chunk ``index``: ``arrays`` gives every field's ``chunk_rows`` rows (the first
        ``kept`` of them records), then its completion marker with ``meta`` (JSON-able; e.g.
        ``{"rejected": {reason: count}}``) and the rows' SHA-256 digests."""
        if not (0 <= index < self.capacity_chunks):
            raise ValueError(
                f"write_chunk: index {index} outside the store's {self.capacity_chunks} chunks ({self.path})"
            )
        if set(arrays) != set(self.fields):
            raise ValueError(f"write_chunk: arrays {sorted(arrays)} must be the fields {sorted(self.fields)}")
        if not (0 <= kept <= self.chunk_rows):
            raise ValueError(f"write_chunk: kept must be in [0, {self.chunk_rows}], got {kept}")
        start = index * self.chunk_rows
        digests = {}
        for name, (row_shape, dtype) in self.fields.items():
            a = np.ascontiguousarray(arrays[name], dtype=dtype)
            if a.shape != (self.chunk_rows, *row_shape):
                raise ValueError(
                    f"write_chunk: field {name!r} has shape {a.shape}, "
                    f"expected {(self.chunk_rows, *row_shape)}"
                )
            self._arrays[name][start : start + self.chunk_rows] = a
            digests[name] = jio.sha256(a.tobytes())
        marker = dict(chunk=index, kept=int(kept), sha256=digests, meta=_normal(meta or {}))
        jio.atomic_write_text(self._marker(index), json.dumps(marker))

    def _marker(self, index: int) -> Path:
        return self.path / _MARKERS / f"{index:08d}.json"

    # ------------------------------------------------------------------ reading
    def markers(self) -> dict[int, dict]:
        """The completion markers of the complete chunks, by chunk index (read from disk each call;
        a marker that cannot be read raises :class:`jaxid.io.CorruptFileError`)."""
        out = {}
        directory = self.path / _MARKERS
        if not directory.is_dir():
            return out
        for p in directory.glob("*.json"):
            try:
                m = json.loads(p.read_text(encoding="utf-8"))
                out[int(m["chunk"])] = m
            except (ValueError, KeyError, TypeError) as err:
                raise jio.CorruptFileError(
                    f"{p}: chunk marker unreadable ({type(err).__name__}: {err})"
                ) from None
        return out

    def complete_prefix(self, markers: dict[int, dict] | None = None) -> int:
        """How many chunks from chunk 0 on are complete (the store's records are theirs)."""
        markers = self.markers() if markers is None else markers
        i = 0
        while i in markers:
            i += 1
        return i

    def kept_counts(self, n_chunks: int, markers: dict[int, dict] | None = None) -> Int[np.ndarray, " chunk"]:
        """``kept`` of chunks ``0 .. n_chunks - 1`` (all must be complete)."""
        markers = self.markers() if markers is None else markers
        missing = [i for i in range(n_chunks) if i not in markers]
        if missing:
            raise ValueError(f"{self.path}: chunks {missing[:10]} are not complete")
        return np.array([markers[i]["kept"] for i in range(n_chunks)], dtype=np.int64)

    def rows(
        self, records: Int[ArrayLike, "*records"], kept: Int[ArrayLike, " chunk"]
    ) -> Int[np.ndarray, "*records"]:
        """Physical rows of logical ``records`` given the chunks' ``kept`` counts (module docstring)."""
        starts = np.concatenate([[0], np.cumsum(kept)])
        records = np.asarray(records, dtype=np.int64)
        chunk = np.searchsorted(starts, records, side="right") - 1
        return chunk * self.chunk_rows + (records - starts[chunk])

    def read(self, name: str, rows: slice | Int[ArrayLike, " rows"]) -> Shaped[np.ndarray, "rows ..."]:
        """Rows ``rows`` (a slice or an integer array, any order, repeats allowed) of field ``name``."""
        a = self._arrays[name]
        if isinstance(rows, slice):
            return np.asarray(a[rows])
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.empty((0, *a.shape[1:]), dtype=a.dtype)
        order = np.unique(rows, return_inverse=True)
        return np.asarray(a.oindex[order[0]])[order[1]]

    def verify(self, chunks: Iterable[int] | None = None) -> list[int]:
        """Indices of complete chunks (default all) whose bytes no longer match their markers."""
        markers = self.markers()
        bad = []
        for i in sorted(markers if chunks is None else chunks):
            start = i * self.chunk_rows
            for name in self.fields:
                try:
                    data = np.ascontiguousarray(self.read(name, slice(start, start + self.chunk_rows)))
                    ok = jio.sha256(data.tobytes()) == markers[i]["sha256"][name]
                except Exception:
                    ok = False
                if not ok:
                    bad.append(i)
                    break
        return bad

    def discard(self, index: int) -> None:
        """Remove chunk ``index``'s marker (so it is made again)."""
        self._marker(index).unlink(missing_ok=True)

    def set_attrs(self, **attrs) -> None:
        """Update the store's free-form attributes (one writer at a time: call from one process)."""
        header = json.loads((self.path / _HEADER).read_text(encoding="utf-8"))
        header.setdefault("attrs", {}).update(_normal(attrs))
        jio.atomic_write_text(self.path / _HEADER, json.dumps(header))
        self.attrs = header["attrs"]


class StoredArray:
    """One field of a store's first ``len`` records, read on demand: ``shape``, ``dtype``,
    ``len``, indexing by record (an int, a slice or an integer array; further axes after it), and
    ``np.asarray`` (reads all of it)."""

    def __init__(self, store: ChunkStore, name: str, kept: np.ndarray, n: int):
        self._store, self._name, self._kept, self._n = store, name, kept, n
        row_shape, self.dtype = store.fields[name]
        self.shape = (n, *row_shape)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        rest = ()
        if isinstance(index, tuple):
            index, rest = index[0], index[1:]
        if isinstance(index, slice):
            records = np.arange(self._n)[index]
        elif np.isscalar(index) and np.issubdtype(type(index), np.integer):
            i = int(index) + (self._n if index < 0 else 0)
            if not 0 <= i < self._n:
                raise IndexError(f"record {index} out of range for {self._n} records")
            return self[np.array([i])][0][rest]
        else:
            records = np.asarray(index)
            if records.dtype == bool:
                records = np.flatnonzero(records)
            records = np.where(records < 0, records + self._n, records)
            if records.size and (records.min() < 0 or records.max() >= self._n):
                raise IndexError(f"records out of range for {self._n} records")
        out = self._store.read(self._name, self._store.rows(records, self._kept))
        return out[(slice(None), *rest)] if rest else out

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"StoredArray({self._name!r}, shape={self.shape}, dtype={self.dtype}, path={self._store.path})"


def create_store(
    path: str | os.PathLike,
    *,
    config: dict,
    fields: Mapping[str, tuple[tuple[int, ...], str]],
    chunk_rows: int,
    capacity_chunks: int,
    inner_rows: int | None = None,
    fill_value: float = float("nan"),
) -> ChunkStore:
    """Open the store at ``path`` made with ``config``, or create it there if there is none.

    ``fields``: ``{name: (row_shape, dtype)}``; ``chunk_rows``: rows per chunk (one zarr shard);
    ``capacity_chunks``: most chunks it can hold (rows are allocated lazily: an unwritten chunk
    costs nothing); ``inner_rows``: rows per compressed block inside a chunk (what a read of one
    record decompresses; a divisor of ``chunk_rows``, the largest not above the one asked for).
    By default each field's blocks hold about :data:`INNER_BYTES` (256 KiB) of rows, at least one
    row and at most a chunk: 128 rows of a record of 151 x 2 float32, a whole chunk of a scalar
    field. zarr's cost per block written is fixed (about 0.6 ms here), so blocks of 16 rows made
    a chunk's seven gait fields cost about 250 ms to write against about 30 ms now
    (``benchmarks/README.md``); a read of one record decompresses its block. A streamed epoch
    (:mod:`jaxid.nn.streaming`) whose windows each hold a fraction :math:`f` of the records
    touches a block of :math:`b` rows with probability :math:`1 - (1 - f)^b`: nearly every block
    at 10^6 records and 256 MB windows (:math:`f \approx 0.2`) whatever the block, but for a store
    much larger than a window (:math:`f = 0.02`) about 92 % of blocks of 128 rows against 28 % of
    blocks of 16: set ``inner_rows`` smaller there.

    Raises :class:`ConfigMismatchError` naming the differing keys if a store at ``path`` was made
    with another ``config`` (or other fields or chunk sizes), and :class:`jaxid.io.CorruptFileError`
    if ``path`` holds something else than a store.
    """
    if inner_rows is not None and not (isinstance(inner_rows, (int, np.integer)) and inner_rows >= 1):
        raise ValueError(f"create_store: inner_rows must be a positive int or None, got {inner_rows!r}")
    path = Path(path)
    config = _normal(config)
    want = dict(
        format=FORMAT,
        config=config,
        fields={k: [list(v[0]), np.dtype(v[1]).str] for k, v in fields.items()},
        chunk_rows=int(chunk_rows),
        capacity_chunks=int(capacity_chunks),
    )
    if (path / _HEADER).exists():
        store = open_store(path)
        header = json.loads((path / _HEADER).read_text(encoding="utf-8"))
        diff = differing_keys(header["config"], config)
        layout = [k for k in ("fields", "chunk_rows", "capacity_chunks") if header[k] != _normal(want[k])]
        if diff or layout:
            details = "; ".join(
                f"{k}: stored {_lookup(header['config'], k)!r}, given {_lookup(config, k)!r}"
                for k in diff[:8]
            )
            raise ConfigMismatchError(
                f"{path} holds a data set made with another configuration (differing keys: "
                f"{diff + layout}; {details}). Use another path, or delete the store to remake it."
            )
        return store
    if path.exists() and any(path.iterdir()):
        raise jio.CorruptFileError(
            f"{path} exists and is not a jaxid store (no {_HEADER}; a store whose creation was "
            "interrupted, or another directory): delete it or choose another path"
        )
    zarr = _zarr()
    from zarr.codecs import BloscCodec

    group = zarr.open_group(str(path), mode="w")
    group.attrs.update({"jaxid_store_format": FORMAT, "config": config})
    rows = chunk_rows * capacity_chunks
    for name, (row_shape, dtype) in fields.items():
        dtype = np.dtype(dtype)
        inner = _inner_rows(inner_rows, chunk_rows, int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize)
        group.create_array(
            name,
            shape=(rows, *row_shape),
            shards=(chunk_rows, *row_shape),
            chunks=(inner, *row_shape),
            dtype=dtype,
            fill_value=fill_value if dtype.kind == "f" else 0,
            compressors=BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"),
        )
    (path / _MARKERS).mkdir(exist_ok=True)
    jio.atomic_write_text(path / _HEADER, json.dumps(want))
    return ChunkStore(path, want)


def _inner_rows(asked: int | None, chunk_rows: int, row_bytes: int) -> int:
    """Rows per compressed block: ``asked``, or about :data:`INNER_BYTES` of rows, clipped to
    ``[1, chunk_rows]`` and lowered to a divisor of ``chunk_rows`` (zarr's shards need one)."""
    want = max(1, INNER_BYTES // max(row_bytes, 1)) if asked is None else int(asked)
    inner = max(1, min(want, chunk_rows))
    while chunk_rows % inner:
        inner -= 1
    return inner


def _lookup(d: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return "<absent>"
        d = d[part]
    return d


def open_store(path: str | os.PathLike, *, wait: float = 0.0) -> ChunkStore:
    """Open an existing store (waiting up to ``wait`` seconds for another process to create it)."""
    path = Path(path)
    deadline = time.monotonic() + wait
    while not (path / _HEADER).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if not (path / _HEADER).exists():
        raise jio.CorruptFileError(f"{path} is not a jaxid store: it has no {_HEADER}")
    try:
        header = json.loads((path / _HEADER).read_text(encoding="utf-8"))
        if header.get("format") != FORMAT:
            raise jio.CorruptFileError(f"{path}: store format {header.get('format')!r}, expected {FORMAT}")
        return ChunkStore(path, header)
    except (ValueError, KeyError, TypeError) as err:
        if isinstance(err, jio.CorruptFileError):
            raise
        raise jio.CorruptFileError(f"{path}: unreadable store header ({type(err).__name__}: {err})") from None


def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory holding a jaxid store."""
    return (Path(path) / _HEADER).is_file()
