r"""Training on data larger than memory: minibatches streamed from a lazy record source.

A *lazy source* is an object with a three-axis ``shape`` ``(records, time, channel)`` whose
``source[rows]``, for a sorted integer array ``rows``, returns those records as an array: a field
of an on-disk store (:class:`jaxid.data.StoredArray`, e.g. ``load_dataset(store).obs``), a zarr
array, or any array whose integer-array indexing reads only those records.
:func:`jaxid.nn.train` and :func:`jaxid.nn.train_posterior` stream from such a source (or from any
source wrapped in :class:`Streamed`) instead of reading it into memory, and
give **the same networks as in-memory training of the same records** (same seed, same split):

- *input statistics*: the per-feature mean :math:`\mu` and standard deviation
  :math:`\sigma = \sqrt{\frac1n \sum_i (x_i - \mu)^2}` of the training split, accumulated in float64
  window by window in two passes (:func:`moments`); in-memory training uses the same function
  over its array, so the two differ by float64 rounding only, far below float32;
- *minibatches*: every epoch draws the same permutations as in-memory training
  (:func:`epoch_permutations`, one per ensemble member). The epoch runs window by window: the
  records of ``window // (members * batch)`` consecutive minibatches are read (sorted, each once),
  standardised in float32 as in memory, gathered into minibatches, and the window's Adam steps run
  in one compiled scan (the same step as in memory). The next window is read in a background
  thread while the current one trains;
- *validation*: the loss of the whole validation split, kept in memory when it fits one window
  (read once); otherwise the record-weighted mean of per-window losses (equal to the in-memory
  value up to float32 rounding of the sums).

The cost of an exact shuffle out of core: a window's records lie all over the source, so each
window reads about ``window`` records from everywhere; a store whose compressed blocks hold
``b`` records (``create_store``'s ``inner_rows``; about 256 KiB of rows by default) decompresses
up to ``b`` times the records it uses (a window holding a fraction :math:`f` of the records
touches a block with probability :math:`1 - (1 - f)^b`, nearly every block once :math:`f b` is a
few). Memory is bounded by the window (default
:data:`WINDOW_BYTES` of float32 inputs), the targets (all in memory: ``records x params``) and the
index arrays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

#: Default window: this many bytes of float32 inputs are read and trained on at a time.
WINDOW_BYTES = 256 * 2**20


@runtime_checkable
class LazyRecords(Protocol):
    """A lazy record source (module docstring): a ``shape`` and ``source[rows]``."""

    shape: tuple

    def __getitem__(self, index): ...


class Streamed:
    """Mark a record source to be streamed by :func:`jaxid.nn.train` and
    :func:`jaxid.nn.train_posterior` (module docstring): ``Streamed(source, window=None)``.

    ``source``: a lazy source (module docstring) or an in-memory array (then streamed all the same;
    useful to check streaming against in-memory training). ``window``: records read at a time
    (default: :data:`WINDOW_BYTES` of float32 inputs, at least one minibatch of every member).
    """

    def __init__(self, source: LazyRecords, window: int | None = None):
        shape = getattr(source, "shape", None)
        if shape is None or not callable(getattr(source, "__getitem__", None)):
            raise TypeError(
                f"Streamed: source must have a shape and support source[rows], got {type(source).__name__}"
            )
        if len(shape) != 3:
            raise ValueError(f"Streamed: source must have shape (records, time, channel), got {tuple(shape)}")
        if window is not None and not (
            isinstance(window, int) and not isinstance(window, bool) and window >= 1
        ):
            raise ValueError(f"Streamed: window must be a positive int (records) or None, got {window!r}")
        self.source = source
        self.shape = tuple(int(s) for s in shape)
        self.ndim = 3
        self.window = window

    def __len__(self) -> int:
        return self.shape[0]

    def records(self) -> int:
        """Records read at a time (``window``, or the :data:`WINDOW_BYTES` default)."""
        if self.window is not None:
            return self.window
        return max(1, WINDOW_BYTES // (4 * self.shape[1] * self.shape[2]))

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Records ``rows`` (any order, repeats allowed) as float32, read sorted and once each."""
        rows = np.asarray(rows, dtype=np.int64)
        unique, inverse = np.unique(rows, return_inverse=True)
        out = np.asarray(self.source[unique], dtype=np.float32)
        if out.shape != (len(unique), *self.shape[1:]):
            raise ValueError(
                f"Streamed: source[rows] returned shape {out.shape} for {len(unique)} rows, "
                f"expected {(len(unique), *self.shape[1:])}"
            )
        return out[inverse.reshape(rows.shape)]

    def __repr__(self) -> str:
        return f"Streamed({type(self.source).__name__}, shape={self.shape}, window={self.window})"


def as_streamed(x) -> Streamed | None:
    """``x`` as a :class:`Streamed` source if it is one or is lazy (has a three-axis ``shape`` and
    ``__getitem__`` but is not a NumPy or JAX array); ``None`` for in-memory data."""
    if isinstance(x, Streamed):
        return x
    if isinstance(x, (np.ndarray, jax.Array, list, tuple)) or np.isscalar(x):
        return None
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) == 3 and callable(getattr(x, "__getitem__", None)):
        return Streamed(x)
    return None


def moments(
    read: Callable[[slice], np.ndarray],
    n: int,
    window: int,
    where: str = "train",
    *,
    records: np.ndarray | None = None,
    digest=None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-feature mean and standard deviation (float64) of ``n`` records read ``window`` at a
    time by ``read(slice)``: two passes, :math:`\mu = \frac1n\sum_i x_i`, then
    :math:`\sigma^2 = \frac1n \sum_i (x_i - \mu)^2` (no cancellation of a one-pass formula).
    Raises ``ValueError`` naming the first non-finite record (``records[k]`` for the ``k``-th read,
    when given). ``digest`` (a ``hashlib`` object) is fed the records' bytes in the first pass."""
    total = None
    for a in range(0, n, window):
        block = check_finite(read(slice(a, min(a + window, n))), a, where, records)
        if digest is not None:
            digest.update(np.ascontiguousarray(block).tobytes())
        s = block.sum(axis=0, dtype=np.float64)
        total = s if total is None else total + s
    mean = total / n
    sq = None
    for a in range(0, n, window):
        block = np.asarray(read(slice(a, min(a + window, n))), dtype=np.float64) - mean
        s = np.einsum("i...,i...->...", block, block)
        sq = s if sq is None else sq + s
    return mean, np.sqrt(sq / n)


def check_finite(block, start: int, where: str, records: np.ndarray | None = None) -> np.ndarray:
    """``block`` (records ``start ..`` of a read, or the ``records`` they are) after checking that
    every value is finite; raises ``ValueError`` naming the first record that is not."""
    block = np.asarray(block)
    bad = ~np.isfinite(block).reshape(len(block), -1).all(axis=1)
    if bad.any():
        k = start + int(np.argmax(bad))
        which = f"record {int(records[k])}" if records is not None else f"record {k} of the training split"
        raise ValueError(f"{where}: x must be finite: {which} holds NaN or inf")
    return block


def scan_inputs(data: StreamedData, standardize: bool, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One read of a streamed training split in record order (few chunks per window): its mean
    and sd (:func:`moments`, when ``standardize``), every value checked finite, and the SHA-256 of
    its bytes (``data.x_digest``, what identifies the inputs for a checkpoint)."""
    order = np.sort(data.train)
    n, window, shape = len(order), data.source.records(), data.source.shape[1:]

    def read(sl):
        return data.source.read(order[sl])

    digest = hashlib.sha256()
    if standardize:
        mean, sd = moments(read, n, window, where, records=order, digest=digest)
    else:
        for a in range(0, n, window):
            digest.update(check_finite(read(slice(a, min(a + window, n))), a, where, order).tobytes())
        mean, sd = np.zeros(shape), np.ones(shape)
    data.x_digest = digest.hexdigest()
    return mean, sd


def epoch_permutations(key, n_train: int, n_batches: int, batch: int, members: int) -> jax.Array:
    """Each member's minibatch indices of one epoch, ``(n_batches, members, batch)``: member ``m``
    takes the first ``n_batches * batch`` of a permutation of ``n_train`` drawn with the ``m``-th
    of ``jax.random.split(key, members)``."""
    keys = jax.random.split(key, members)
    perms = jax.vmap(lambda k: jax.random.permutation(k, n_train)[: n_batches * batch])(keys)
    return perms.reshape(members, n_batches, batch).transpose(1, 0, 2)


_permutations = jax.jit(epoch_permutations, static_argnums=(1, 2, 3, 4))


@dataclass
class StreamedData:
    """Standardised training data read window by window (module docstring): what
    ``prepare_training`` gives :func:`jaxid.nn.fit_members` in place of in-memory arrays."""

    source: Streamed
    y: np.ndarray  # float32 standardised targets of every record
    train: np.ndarray  # record indices of the training split (in split order)
    val: np.ndarray
    x_mean: np.ndarray | None = None  # set once computed from the training split
    x_scale: np.ndarray | None = None
    x_digest: str | None = None  # SHA-256 of the training inputs (scan_inputs)
    where: str = "train"  # the calling function, for messages

    @property
    def n_train(self) -> int:
        return len(self.train)

    def shapes(self) -> list[list[int]]:
        """The shapes of the in-memory ``(x_train, y_train, x_val, y_val)`` this stands for."""
        rest, p = list(self.source.shape[1:]), self.y.shape[1]
        return [[len(self.train), *rest], [len(self.train), p], [len(self.val), *rest], [len(self.val), p]]

    def fingerprint_parts(self) -> tuple:
        """What identifies the data for a checkpoint: the shapes, the split, the SHA-256 of the
        training inputs (from the read that made the statistics), the statistics, the targets,
        and the window (another window regroups the steps: equal to float32 rounding, not bit for
        bit)."""
        return (
            np.asarray(self.source.shape),
            self.train,
            self.val,
            str(self.x_digest),
            self.x_mean,
            self.x_scale,
            self.y,
            np.asarray(self.source.records()),
        )

    def x_val_spec(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((len(self.val), *self.source.shape[1:]), jnp.float32)

    def y_val_spec(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((len(self.val), self.y.shape[1]), jnp.float32)

    def _standard(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.source.read(rows)
        check_finite(x.reshape(rows.size, *x.shape[rows.ndim :]), 0, self.where, rows.reshape(-1))
        return ((x - self.x_mean) / self.x_scale).astype(np.float32), self.y[rows]

    def window_batches(self, members: int, batch: int) -> int:
        """Minibatches per window (at least one)."""
        return max(1, self.source.records() // (members * batch))

    def train_windows(self, perms: np.ndarray, per_window: int):
        """The standardised minibatches ``(x, y)`` of ``perms`` ``(n_batches, members, batch)``,
        ``per_window`` minibatches at a time, the next window read while the last is used."""
        starts = list(range(0, perms.shape[0], per_window))
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._standard, self.train[perms[starts[0] : starts[0] + per_window]])
            for i in range(len(starts)):
                window = pending.result()
                if i + 1 < len(starts):
                    a = starts[i + 1]
                    pending = pool.submit(self._standard, self.train[perms[a : a + per_window]])
                yield window

    _val_cache: tuple | None = field(default=None, repr=False)

    def val_windows(self):
        """The validation split, standardised, as ``(x, y)`` windows (one, cached, if it fits)."""
        window = self.source.records()
        if len(self.val) <= window:
            if self._val_cache is None:
                self._val_cache = self._standard(self.val)
            yield self._val_cache
            return
        for a in range(0, len(self.val), window):
            yield self._standard(self.val[a : a + window])


def member_losses(params, fixed, static, x_val, y_val, objective):
    """The validation loss of every member (stacked ``params`` and ``fixed`` arrays): in-memory
    epochs (``jaxid.nn.training._epoch``) and streamed windows alike."""
    _, val_fn, args = objective
    return jax.vmap(lambda p, f: val_fn(eqx.combine(p, f, static), x_val, y_val, *args))(params, fixed)


@eqx.filter_jit
def _member_losses(network, x_val, y_val, objective):
    """The validation loss of every member on one window."""
    params, rest = eqx.partition(network, eqx.is_inexact_array)
    fixed, static = eqx.partition(rest, eqx.is_array)
    return member_losses(params, fixed, static, x_val, y_val, objective)


def streamed_epoch(
    network, opt_state, best, best_val, key, data: StreamedData, hyper, objective, sharding, steps, keep_best
):
    """One epoch on streamed data (module docstring); returns what ``_epoch`` returns.

    ``steps(network, opt_state, xw, yw, hyper, objective, sharding)`` runs a window's Adam steps
    (``xw``: ``(batches, members, batch, ...)``); ``keep_best(network, best, best_val, val)`` the
    best-checkpoint update. Both are :mod:`jaxid.nn.training`'s, shared with in-memory epochs."""
    n_batches, batch, members = hyper[4:7]
    perms = np.asarray(_permutations(key, data.n_train, n_batches, batch, members))
    losses = []
    for xw, yw in data.train_windows(perms, data.window_batches(members, batch)):
        if losses:  # at most one window computing and one being read: memory bounded by the window
            losses[-1].block_until_ready()
        network, opt_state, loss = steps(network, opt_state, xw, yw, hyper, objective, sharding)
        losses.append(loss)
    windows = [(_member_losses(network, xv, yv, objective), len(xv)) for xv, yv in data.val_windows()]
    if len(windows) == 1:  # the whole split at once: the in-memory value itself
        val = windows[0][0]
    else:
        val = sum(v * n for v, n in windows) / sum(n for _, n in windows)
    best, best_val = keep_best(network, best, best_val, val)
    return network, opt_state, best, best_val, jnp.concatenate(losses).mean(0), val
