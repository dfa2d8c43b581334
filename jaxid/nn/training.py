r"""Training estimators: Adam (optax) on a weighted mean squared error in standardised units.

For standardised targets :math:`\tilde y` and predictions :math:`\hat{\tilde y}` of ``P``
parameters, the loss on a minibatch :math:`B` is

.. math::

    L = \frac{1}{|B|}\sum_{n \in B} \sum_{j=1}^{P} w_j\,(\hat{\tilde y}_{nj} - \tilde y_{nj})^2
        + \lambda\, \frac{1}{|B|}\sum_{n \in B} \sum_j \hat{\tilde y}_{nj}^2 ,

with per-parameter weights :math:`w_j` (``loss_weights``, normalised to sum to ``P``) and an
optional prior regulariser :math:`\lambda` (``prior_weight``): a Gaussian prior centred on the
targets' mean with their standard deviation, which pulls predictions the data cannot pin down
towards the prior mean.

One epoch is one jitted call: a ``lax.scan`` over all minibatches of a fresh permutation, every
ensemble member updated under ``vmap`` (each with its own permutation), then the validation loss
of each member; the best parameters of each member by validation loss are kept inside the call.
Training stops when no member has improved for ``patience`` epochs, and the best checkpoint is
returned. With several devices each minibatch is split across them (data parallel).

**Several processes.** Under ``jax.distributed`` (one process per host of a cluster, every
process running the same script on the same data) the default devices are those of every
process: one mesh, each minibatch split across all devices, the gradients summed across
processes inside the compiled step (XLA collectives; on CPU hosts set
``jax.config.update("jax_cpu_collectives_implementation", "gloo")`` before
``jax.distributed.initialize``). Every process ends with the same networks, equal to a one-process
run on as many devices; only process 0 writes checkpoints and shows progress. Streamed data
(:mod:`jaxid.nn.streaming`) are read by every process from a shared store.

The loop itself, :func:`fit_members`, takes any per-minibatch loss; :func:`train` gives it the
loss above and ``jaxid.nn.train_posterior`` a negative log-likelihood.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import ArrayLike, Float
from tqdm.auto import tqdm

from .. import io as jio
from ..errors import NonFiniteError
from ..typing import Key
from .estimator import Estimator
from .streaming import (
    LazyRecords,
    Streamed,
    StreamedData,
    as_streamed,
    epoch_permutations,
    member_losses,
    moments,
    scan_inputs,
    streamed_epoch,
)


@dataclass(frozen=True)
class TrainConfig:
    """Training options.

    - ``epochs`` (at most), ``batch_size``, ``learning_rate`` (Adam; cosine decay to 1 % of it over
      ``epochs`` when ``lr_decay``), ``weight_decay`` (AdamW when > 0).
    - ``patience``: stop after this many epochs without a better validation loss (``None``: never).
    - ``members``: ensemble size (members differ in initialisation and minibatch order).
    - ``loss_weights``: one weight per target (default equal); ``prior_weight``: the prior
      regulariser (0: off).
    - ``split``: train/validation/test fractions; ``standardize_inputs``; ``seed``; ``progress``.
    - ``devices``: devices to split minibatches across (default ``jax.devices()``: every local
      device, and under ``jax.distributed`` every device of every process; the processes then
      train one model together, each minibatch split across all of them and the gradients summed
      across processes by XLA).
    """

    epochs: int = 200
    batch_size: int = 100
    learning_rate: float = 1e-3
    lr_decay: bool = True
    weight_decay: float = 0.0
    patience: int | None = 30
    members: int = 1
    loss_weights: tuple[float, ...] | None = None
    prior_weight: float = 0.0
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    standardize_inputs: bool = True
    seed: int = 0
    progress: bool = True
    devices: Sequence[jax.Device] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("devices")
        return d


@dataclass
class TrainResult:
    """What :func:`train` returns.

    - ``estimator``: the best checkpoint of every member.
    - ``history``: ``train_loss`` (per epoch, mean over members), ``val_loss`` (per epoch and
      member), ``best_epoch`` (per member), ``epochs_run``, ``stopped_early``.
    - ``split``: record indices of ``train``, ``val`` and ``test``.
    - ``seconds`` (all of training, compilation included), ``first_epoch_seconds`` (includes
      compilation) and ``samples_per_second`` (member-samples per second after the first epoch).
    """

    estimator: Estimator
    history: dict
    split: dict[str, np.ndarray]
    config: TrainConfig
    seconds: float
    first_epoch_seconds: float
    samples_per_second: float


def split_indices(n: int, fractions: Sequence[float], seed: int) -> dict[str, np.ndarray]:
    """A seeded random split of ``range(n)`` into train/val/test by ``fractions``."""
    fr = [float(f) for f in fractions]
    if len(fr) != 3 or any(f < 0 for f in fr) or not math.isclose(sum(fr), 1.0, abs_tol=1e-9) or fr[0] == 0:
        raise ValueError(
            f"split must be three non-negative fractions summing to 1 (train > 0), got {fractions}"
        )
    perm = np.random.default_rng(seed).permutation(n)
    n_val, n_test = round(fr[1] * n), round(fr[2] * n)
    if fr[1] > 0:
        n_val = max(n_val, 1)
    if fr[2] > 0:
        n_test = max(n_test, 1)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"split {fractions} of {n} records leaves no training records")
    return dict(
        train=np.sort(perm[:n_train]),
        val=np.sort(perm[n_train : n_train + n_val]),
        test=np.sort(perm[n_train + n_val :]),
    )


def safe_scale(sd: np.ndarray) -> np.ndarray:
    """Standard deviations with constant features mapped to 1 (no division by ~0)."""
    tiny = 1e-6 * max(float(np.max(sd)), 1e-30)
    return np.where(sd > tiny, sd, 1.0).astype(np.float32)


def _optimizer(lr: float, decay_steps: int, lr_decay: bool, weight_decay: float):
    schedule = optax.cosine_decay_schedule(lr, decay_steps, alpha=0.01) if lr_decay else lr
    if weight_decay > 0:
        return optax.adamw(schedule, weight_decay=weight_decay)
    return optax.adam(schedule)


def _mse_loss(model, xb, yb, weights, prior_weight):
    """:func:`train`'s minibatch loss (module docstring), standardised units."""
    pred = jax.vmap(model)(xb)
    loss = jnp.mean(jnp.sum(jnp.asarray(weights, xb.dtype) * (pred - yb) ** 2, axis=-1))
    if prior_weight:
        loss = loss + prior_weight * jnp.mean(jnp.sum(pred**2, axis=-1))
    return loss


def _mse_val(model, x_val, y_val, weights, prior_weight):
    """:func:`train`'s validation loss: the weighted squared error, without the prior term."""
    pred = jax.lax.map(model, x_val, batch_size=min(1024, x_val.shape[0]))
    return jnp.mean(jnp.sum(jnp.asarray(weights, x_val.dtype) * (pred - y_val) ** 2, axis=-1))


def _step_fn(opt, loss_fn, args, fixed, static, sharding):
    """One Adam step of every member on its minibatch ``(xb, yb)`` ``(members, batch, ...)``: the
    scan body of in-memory and streamed epochs alike."""

    def member_step(p, s, f, xb, yb):
        loss, grads = jax.value_and_grad(lambda q: loss_fn(eqx.combine(q, f, static), xb, yb, *args))(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    def step(carry, batch):
        p, s = carry
        xb, yb = batch
        if sharding is not None:
            xb = jax.lax.with_sharding_constraint(xb, sharding)
        p, s, loss = jax.vmap(member_step)(p, s, fixed, xb, yb)
        return (p, s), loss

    return step


def _select_best(params, best, best_val, val):
    """Each member's best parameters and validation loss after an epoch with losses ``val``."""
    improved = val < best_val
    best = jax.tree.map(
        lambda b, p: jnp.where(improved.reshape((-1,) + (1,) * (p.ndim - 1)), p, b),
        best,
        params,
    )
    return best, jnp.where(improved, val, best_val)


@eqx.filter_jit
def _epoch(
    network, opt_state, best, best_val, key, x_train, y_train, x_val, y_val, hyper, objective, sharding
):
    """One epoch for all members: scanned minibatch steps, then validation and best-checkpoint.

    ``objective = (loss, val_loss, args)``: module-level functions ``loss(model, xb, yb, *args)``
    and ``val_loss(model, x_val, y_val, *args)`` of one member (hashable, so epochs compile once).
    The trained leaves are the floating-point arrays; other arrays (masks) ride along per member.
    """
    lr, decay_steps, lr_decay, weight_decay, n_batches, batch, members = hyper
    loss_fn, _, args = objective
    opt = _optimizer(lr, decay_steps, lr_decay, weight_decay)
    params, rest = eqx.partition(network, eqx.is_inexact_array)
    fixed, static = eqx.partition(rest, eqx.is_array)
    perms = epoch_permutations(key, x_train.shape[0], n_batches, batch, members)
    step = _step_fn(opt, loss_fn, args, fixed, static, sharding)
    (params, opt_state), losses = jax.lax.scan(
        lambda carry, idx: step(carry, (x_train[idx], y_train[idx])), (params, opt_state), perms
    )
    val = member_losses(params, fixed, static, x_val, y_val, objective)
    best, best_val = _select_best(params, best, best_val, val)
    return eqx.combine(params, rest), opt_state, best, best_val, losses.mean(0), val


@eqx.filter_jit
def _window_steps(network, opt_state, xw, yw, hyper, objective, sharding):
    """A streamed epoch's Adam steps on one window of gathered minibatches ``xw``
    ``(batches, members, batch, ...)`` (:mod:`jaxid.nn.streaming`); the same step as :func:`_epoch`."""
    lr, decay_steps, lr_decay, weight_decay = hyper[:4]
    loss_fn, _, args = objective
    opt = _optimizer(lr, decay_steps, lr_decay, weight_decay)
    params, rest = eqx.partition(network, eqx.is_inexact_array)
    fixed, static = eqx.partition(rest, eqx.is_array)
    step = _step_fn(opt, loss_fn, args, fixed, static, sharding)
    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (xw, yw))
    return eqx.combine(params, rest), opt_state, losses


@eqx.filter_jit
def _keep_best(network, best, best_val, val):
    return _select_best(eqx.filter(network, eqx.is_inexact_array), best, best_val, val)


def _val_dtype(network, objective, x_val, y_val):
    """The dtype of ``val_loss`` on one member (traced abstractly: nothing runs)."""
    _, val_fn, args = objective
    arrays, static = eqx.partition(network, eqx.is_array)

    def one(arrays, x_val, y_val):
        member = eqx.combine(jax.tree.map(lambda a: a[0], arrays), static)
        return val_fn(member, x_val, y_val, *args)

    return jax.eval_shape(one, arrays, x_val, y_val).dtype


def check_training_data(
    x: Float[ArrayLike, "records time channel"] | Streamed | LazyRecords,
    y: Float[ArrayLike, "records param"],
    names: Sequence[str],
    config: TrainConfig,
    *,
    where: str = "train",
    target: str = "y",
) -> tuple[Float[np.ndarray, "records time channel"] | Streamed, Float[np.ndarray, "records param"]]:
    """Check trajectories ``x`` ``(records, time, channel)``, targets ``y`` ``(records, param)``
    (called ``target`` in messages), ``names`` and ``config``; return ``x`` as float32 and ``y``
    as float64 arrays (a lazy ``x``, :mod:`jaxid.nn.streaming`, is returned as a
    :class:`~jaxid.nn.streaming.Streamed` source; its records are checked as they are read).
    Raises ``ValueError`` prefixed by ``where`` naming the bad argument."""
    lazy = as_streamed(x)
    x = np.asarray(x, dtype=np.float32) if lazy is None else lazy
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"{where}: x must have shape (records, time, channel), got {np.shape(x)}")
    if x.shape[0] == 0:
        raise ValueError(f"{where}: the data set is empty (x has 0 records)")
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{where}: {target} must have shape ({x.shape[0]}, param), got {y.shape}")
    if len(names) != y.shape[1]:
        raise ValueError(f"{where}: {len(names)} names {list(names)} for {y.shape[1]} {target} columns")
    if not ((lazy is not None or np.all(np.isfinite(x))) and np.all(np.isfinite(y))):
        raise ValueError(f"{where}: x and {target} must be finite (found NaN or inf)")
    for attr in ("epochs", "batch_size", "members"):
        v = getattr(config, attr)
        if not (isinstance(v, int) and v >= 1):
            raise ValueError(f"{where}: config.{attr} must be a positive int, got {v!r}")
    if config.patience is not None and not (isinstance(config.patience, int) and config.patience >= 1):
        raise ValueError(f"{where}: config.patience must be a positive int or None, got {config.patience!r}")
    if not config.learning_rate > 0:
        raise ValueError(f"{where}: config.learning_rate must be > 0, got {config.learning_rate}")
    if not config.prior_weight >= 0 or not config.weight_decay >= 0:
        raise ValueError(f"{where}: config.prior_weight and weight_decay must be >= 0")
    if config.loss_weights is not None:
        w = np.asarray(config.loss_weights, dtype=np.float64)
        if w.shape != (y.shape[1],) or np.any(w < 0) or not np.any(w > 0):
            raise ValueError(
                f"{where}: config.loss_weights must be {y.shape[1]} non-negative weights, "
                f"not all zero, got {config.loss_weights}"
            )
    return x, y


def input_statistics(x_train, config: TrainConfig, where: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale (float32) of the training split ``x_train``, an array or a
    :class:`~jaxid.nn.streaming.StreamedData` (zeros and ones when ``config.standardize_inputs`` is
    off): float64 sums window by window (:func:`jaxid.nn.streaming.moments`), the same for
    in-memory and streamed data."""
    if isinstance(x_train, StreamedData):  # read once in record order, hashed and checked too
        mean, sd = scan_inputs(x_train, config.standardize_inputs, where)
    elif not config.standardize_inputs:
        return np.zeros(x_train.shape[1:], np.float32), np.ones(x_train.shape[1:], np.float32)
    else:
        window = max(1, 2**25 // max(x_train[0].size, 1))
        mean, sd = moments(lambda sl: x_train[sl], x_train.shape[0], window, where)
    if not config.standardize_inputs:
        return mean.astype(np.float32), sd.astype(np.float32)
    return mean.astype(np.float32), safe_scale(sd.astype(np.float32))


def check_split(n: int, config: TrainConfig, where: str = "train") -> tuple[dict[str, np.ndarray], list]:
    """The seeded split of ``n`` records and the devices to train on, after checking that the
    split has validation records and that ``config.batch_size`` fits the training split and the
    devices."""
    split = split_indices(n, config.split, config.seed)
    if len(split["val"]) == 0:
        raise ValueError(f"{where}: config.split leaves no validation records (needed for early stopping)")
    n_train = len(split["train"])
    # every process's devices: under jax.distributed the processes train one model together
    devices = jax.devices() if config.devices is None else list(config.devices)
    batch = config.batch_size
    if batch > n_train:
        raise ValueError(
            f"{where}: config.batch_size ({batch}) is larger than the training split ({n_train} of "
            f"{n} records); use a smaller batch or more data"
        )
    if len(devices) > 1 and batch % len(devices):
        raise ValueError(
            f"{where}: config.batch_size ({batch}) must be a multiple of the {len(devices)} devices"
        )
    return split, devices


@dataclass(frozen=True)
class Fit:
    """What :func:`fit_members` returns: the best ``network`` of every member, the ``history``
    (as in :class:`TrainResult`) and the timings (of this call only when it resumed a
    checkpoint)."""

    network: eqx.Module
    history: dict
    seconds: float
    first_epoch_seconds: float
    samples_per_second: float

    def outcome(self, split: dict, config: TrainConfig) -> dict:
        """The fields a training result shares (:class:`TrainResult`, ``PosteriorResult``)
        besides its estimator."""
        return dict(
            history=self.history,
            split=split,
            config=config,
            seconds=self.seconds,
            first_epoch_seconds=self.first_epoch_seconds,
            samples_per_second=self.samples_per_second,
        )


CHECKPOINT_KIND = "training checkpoint"


def prepare_training(
    x: np.ndarray | Streamed, y: np.ndarray, config: TrainConfig, where: str = "train"
) -> tuple:
    """What :func:`train` and :func:`jaxid.nn.train_posterior` do before building the networks:
    the seeded split and its devices (:func:`check_split`), the standardisation from the
    training split (inputs by :func:`input_statistics`, targets by their mean and sd), the
    initialisation and training keys from ``config.seed``, and the standardised float32
    ``(x_train, y_train, x_val, y_val)`` (for a :class:`~jaxid.nn.streaming.Streamed` ``x``, a
    :class:`~jaxid.nn.streaming.StreamedData` that reads them while training).

    **Returns:** ``(split, devices, (x_mean, x_scale, y_mean, y_scale), (init_key, key), data)``.
    """
    split, devices = check_split(x.shape[0], config, where)
    yt = y[split["train"]]
    y_mean, y_scale = yt.mean(0), safe_scale(yt.std(0))
    init_key, key = jax.random.split(jax.random.key(config.seed))
    if isinstance(x, np.ndarray):
        xt = x[split["train"]]
        x_mean, x_scale = input_statistics(xt, config, where)

        def standardise(xs, ys):
            return ((xs - x_mean) / x_scale).astype(np.float32), ((ys - y_mean) / y_scale).astype(np.float32)

        data = (*standardise(xt, yt), *standardise(x[split["val"]], y[split["val"]]))
    else:  # a Streamed source (check_training_data): read window by window while training
        y_std = ((y - y_mean) / y_scale).astype(np.float32)
        data = StreamedData(x, y_std, split["train"], split["val"], where=where)
        x_mean, x_scale = input_statistics(data, config, where)
        data.x_mean, data.x_scale = x_mean, x_scale
    return split, devices, (x_mean, x_scale, y_mean, y_scale), (init_key, key), data


def check_train_options(where: str, config, checkpoint, checkpoint_every, resume) -> TrainConfig:
    """``config`` (default :class:`TrainConfig()`) after checking it and the checkpoint options."""
    config = TrainConfig() if config is None else config
    check_checkpoint_options(where, checkpoint, checkpoint_every, resume)
    if not isinstance(config, TrainConfig):
        raise TypeError(
            f"{where}: config must be a jaxid.nn.TrainConfig, got {type(config).__name__}; "
            "build one with TrainConfig(**options)"
        )
    return config


def check_checkpoint_options(where: str, checkpoint, checkpoint_every, resume) -> Path | None:
    """Check the ``checkpoint``, ``checkpoint_every`` and ``resume`` options of the training
    functions; return the checkpoint path (or ``None``)."""
    if checkpoint is not None and not isinstance(checkpoint, str | os.PathLike):
        raise TypeError(
            f"{where}: checkpoint must be a path (str or os.PathLike) or None, got {checkpoint!r}"
        )
    every = checkpoint_every
    if not (isinstance(every, int) and not isinstance(every, bool) and every >= 1):
        raise ValueError(f"{where}: checkpoint_every must be a positive int (epochs), got {every!r}")
    if not isinstance(resume, bool):
        raise TypeError(f"{where}: resume must be True or False, got {resume!r}")
    if checkpoint is None:
        return None
    path = Path(checkpoint)
    if path.is_dir():
        raise IsADirectoryError(f"{where}: checkpoint {path} is a directory; give a file path")
    return path


def _is_typed_key(key) -> bool:
    return jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


def _checkpoint_identity(network, data, objective, config, hyper, n_devices, describe) -> tuple[str, dict]:
    """The fingerprint a checkpoint must match to be resumed (SHA-256 of the configuration, the
    objective, the initial network's arrays, the data's shapes and bytes, the device count and
    ``describe``) and the readable part of it stored beside it for error messages."""
    loss_fn, val_fn, args = objective
    cfg = config.to_dict()
    cfg.pop("progress")
    streamed = isinstance(data, StreamedData)
    readable = dict(
        config=cfg,
        data_shapes=data.shapes() if streamed else [list(np.shape(a)) for a in data],
        describe=describe or {},
        devices=n_devices,
    )
    names = [f"{f.__module__}.{f.__qualname__}" for f in (loss_fn, val_fn)]
    fp = jio.fingerprint(
        readable,
        list(hyper),
        names,
        repr(args),
        jio.sha256(jio.tree_to_bytes(network)),
        *(data.fingerprint_parts() if streamed else data),
    )
    return fp, json.loads(json.dumps(readable, default=repr))


def _mismatch(where: str, path: Path, stored: dict, readable: dict) -> ValueError:
    diffs = [
        f"config.{k}: {stored.get('config', {}).get(k)!r} there, {v!r} here"
        for k, v in readable["config"].items()
        if stored.get("config", {}).get(k) != v
    ]
    for name in ("data_shapes", "describe", "devices"):
        if stored.get(name) != readable[name]:
            diffs.append(f"{name}: {stored.get(name)!r} there, {readable[name]!r} here")
    what = "; ".join(diffs) if diffs else "the same options and shapes, but other data, network or objective"
    return ValueError(
        f"{where}: checkpoint {path} was written for another training problem ({what}); delete it, "
        "choose another checkpoint path, or pass resume=False to start over"
    )


def fit_members(
    network: eqx.Module,
    data: tuple | StreamedData,
    objective: tuple,
    config: TrainConfig,
    *,
    key: Key,
    devices: Sequence[jax.Device],
    where: str = "train",
    desc: str = "train",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: bool = True,
    describe: dict | None = None,
) -> Fit:
    """Train ``config.members`` stacked networks (leading member axis on every array) on
    standardised ``data = (x_train, y_train, x_val, y_val)``: Adam, one jitted scan over the
    minibatches per epoch (:func:`_epoch`), early stopping on the validation loss, and each
    member's best checkpoint returned. ``data`` may instead be a
    :class:`~jaxid.nn.streaming.StreamedData` (from :func:`prepare_training` on a lazy source):
    each epoch then reads its minibatches window by window, to the same result (``val_loss`` must
    then be a mean over records: a validation split larger than a window is scored as the
    record-weighted mean of its windows' losses).

    ``objective = (loss, val_loss, args)``: module-level functions ``loss(model, xb, yb, *args)``
    (a minibatch mean) and ``val_loss(model, x_val, y_val, *args)`` of one member, with hashable
    ``args``. Floating-point arrays are trained; other arrays are kept as they are.

    ``checkpoint``: a file that holds the whole training state (networks, optimiser state, random
    key, best networks and validation losses, early-stopping counter, history and epoch count),
    written atomically (:mod:`jaxid.io`) every ``checkpoint_every`` epochs and when training
    ends. With ``resume`` (the default) an existing checkpoint is continued: the result is
    bit-identical to an uninterrupted run, wherever the interruption fell (a finished
    checkpoint returns at once). A checkpoint of another problem (its fingerprint: the SHA-256
    of ``config``, the objective, the initial networks, the data and ``describe``, a JSON-able
    description of the problem) raises ``ValueError``; a damaged one
    :class:`jaxid.io.CorruptFileError`. ``resume=False`` starts over and overwrites it.
    """
    ckpt = check_checkpoint_options(where, checkpoint, checkpoint_every, resume)
    streamed = isinstance(data, StreamedData)
    n_train = data.n_train if streamed else data[0].shape[0]
    batch = config.batch_size
    n_batches = n_train // batch
    hyper = (
        float(config.learning_rate),
        int(config.epochs * n_batches),
        bool(config.lr_decay),
        float(config.weight_decay),
        n_batches,
        batch,
        config.members,
    )
    opt = _optimizer(*hyper[:4])
    params = eqx.filter(network, eqx.is_inexact_array)
    opt_state = jax.vmap(opt.init)(params)
    best = params
    # in the validation loss's own dtype (float64 for a flow's log-density under x64): a float32
    # start would be promoted by the first epoch and make the second compile _epoch again
    val_data = (data.x_val_spec(), data.y_val_spec()) if streamed else (data[2], data[3])
    best_val = jnp.full(config.members, jnp.inf, _val_dtype(network, objective, *val_data))
    initial = network
    history = dict(train_loss=[], val_loss=[])
    best_epoch = np.zeros(config.members, dtype=int)
    stall, start_epoch, finished = 0, 0, False
    typed_key = _is_typed_key(key)
    if ckpt is not None:
        fp, readable = _checkpoint_identity(network, data, objective, config, hyper, len(devices), describe)
    if ckpt is not None and resume and ckpt.exists():
        header, payload = jio.read_framed(ckpt, kind=CHECKPOINT_KIND)
        if header.get("fingerprint") != fp:
            raise _mismatch(where, ckpt, header.get("problem", {}), readable)
        key_data = jax.random.key_data(key) if typed_key else key
        network, opt_state, best, key_data = jio.tree_from_bytes(
            payload, (network, opt_state, best, key_data), path=ckpt
        )
        # the validation losses in the header: their dtype is the objective's (float64 under x64)
        best_val = jnp.asarray(np.asarray(header["best_val"], dtype=header["best_val_dtype"]))
        key = jax.random.wrap_key_data(key_data, impl=jax.random.key_impl(key)) if typed_key else key_data
        history = dict(train_loss=header["train_loss"], val_loss=header["val_loss"])
        best_epoch = np.asarray(header["best_epoch"], dtype=int)
        stall, start_epoch, finished = header["stall"], header["epochs_run"], header["finished"]
    if ckpt is not None and jax.process_count() > 1:  # every process must resume the same state
        from jax.experimental import multihost_utils

        starts = np.asarray(multihost_utils.process_allgather(np.array([start_epoch]))).ravel()
        if np.unique(starts).size > 1:
            raise RuntimeError(
                f"{where}: the processes would resume checkpoint {ckpt} at different epochs "
                f"({starts.tolist()}); it must be on a file system every process reads (process 0 writes it)"
            )

    def save_checkpoint(epochs_run: int, done: bool) -> None:
        header = dict(
            fingerprint=fp,
            problem=readable,
            epochs_run=epochs_run,
            finished=done,
            stall=stall,
            best_epoch=best_epoch.tolist(),
            train_loss=history["train_loss"],
            val_loss=history["val_loss"],
            best_val=np.asarray(best_val).tolist(),  # floats: exact through JSON
            best_val_dtype=np.asarray(best_val).dtype.str,
        )
        state = (network, opt_state, best, jax.random.key_data(key) if typed_key else key)
        jio.write_framed(ckpt, header, jio.tree_to_bytes(jax.device_get(state)), kind=CHECKPOINT_KIND)

    sharding = None
    if len(devices) > 1:
        mesh = Mesh(np.array(devices), ("batch",))
        sharding = NamedSharding(mesh, PartitionSpec(None, "batch"))
        replicated = NamedSharding(mesh, PartitionSpec())
        held = (network, opt_state, best, best_val) + (() if streamed else (data,))
        dynamic, static = eqx.partition(held, eqx.is_array)
        held = eqx.combine(jax.device_put(dynamic, replicated), static)
        network, opt_state, best, best_val = held[:4]
        data = data if streamed else held[4]

    start = time.perf_counter()
    first = 0.0
    epochs_run = start_epoch
    with tqdm(
        total=config.epochs,
        initial=start_epoch,
        unit="epoch",
        desc=desc,
        disable=not config.progress or jax.process_index() != 0,
    ) as bar:
        for epoch in range(start_epoch, config.epochs if not finished else start_epoch):
            key, sub = jax.random.split(key)
            if streamed:
                out = streamed_epoch(
                    network,
                    opt_state,
                    best,
                    best_val,
                    sub,
                    data,
                    hyper,
                    objective,
                    sharding,
                    _window_steps,
                    _keep_best,
                )
            else:
                out = _epoch(network, opt_state, best, best_val, sub, *data, hyper, objective, sharding)
            network, opt_state, best, best_val, tr, val = out
            tr, val = np.asarray(tr), np.asarray(val)
            if not np.all(np.isfinite(tr)):
                raise NonFiniteError(
                    f"{where}: the training loss became non-finite at epoch {epoch + 1} ({tr}); "
                    "lower config.learning_rate"
                )
            epochs_run = epoch + 1
            if epoch == start_epoch:
                first = time.perf_counter() - start
            improved = val <= np.asarray(best_val)
            best_epoch[improved] = epoch + 1
            history["train_loss"].append(float(tr.mean()))
            history["val_loss"].append(val.tolist())
            stall = 0 if improved.any() else stall + 1
            bar.update(1)
            bar.set_postfix(train=f"{tr.mean():.3g}", val=f"{val.mean():.3g}")
            stop = config.patience is not None and stall >= config.patience
            done = stop or epochs_run == config.epochs
            # one writer: under jax.distributed every process holds the same replicated state
            if ckpt is not None and jax.process_index() == 0 and (done or epochs_run % checkpoint_every == 0):
                save_checkpoint(epochs_run, done)
            if stop:
                break
    seconds = time.perf_counter() - start
    later = max(epochs_run - start_epoch - 1, 0)
    samples = later * n_batches * batch * config.members
    history.update(
        best_epoch=best_epoch.tolist(),
        epochs_run=epochs_run,
        stopped_early=epochs_run < config.epochs,
        best_val_loss=np.asarray(best_val).tolist(),
    )
    final = eqx.combine(jax.device_get(best), eqx.filter(initial, eqx.is_inexact_array, inverse=True))
    return Fit(
        network=final,
        history=history,
        seconds=seconds,
        first_epoch_seconds=first,
        samples_per_second=samples / (seconds - first) if later and seconds > first else float("nan"),
    )


def train(
    x: Float[ArrayLike, "records time channel"] | Streamed | LazyRecords,
    y: Float[ArrayLike, "records param"],
    names: Sequence[str],
    *,
    arch: str = "mlp",
    config: TrainConfig | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: bool = True,
    **arch_options,
) -> TrainResult:
    """Train an estimator of ``names`` from trajectories ``x`` ``(records, time, channel)`` to
    targets ``y`` ``(records, param)``.

    ``arch`` is ``"mlp"``, ``"cnn"`` or ``"gru"`` with ``arch_options`` (see
    :func:`jaxid.nn.make_network`); ``config`` a :class:`TrainConfig`. The data are split by
    ``config.split`` (seeded); standardisation statistics come from the training split only.
    Deterministic given ``config.seed`` (on the same devices).

    ``checkpoint``: a file the whole training state is written to, atomically, every
    ``checkpoint_every`` epochs and at the end; run the same call again after an interruption
    (``resume=True``, the default) and it continues from there to a bit-identical result. A
    checkpoint of another configuration or data set is refused with a ``ValueError``
    (:func:`fit_members`).
    """
    config = check_train_options("train", config, checkpoint, checkpoint_every, resume)
    names = tuple(names)
    x, y = check_training_data(x, y, names, config)
    split, devices, (x_mean, x_scale, y_mean, y_scale), (init_key, key), data = prepare_training(x, y, config)
    est = Estimator.init(
        arch,
        x.shape[1:],
        names,
        key=init_key,
        members=config.members,
        x_mean=x_mean,
        x_scale=x_scale,
        y_mean=y_mean,
        y_scale=y_scale,
        **arch_options,
    )

    weights = (
        np.ones(len(names))
        if config.loss_weights is None
        else np.asarray(config.loss_weights, dtype=np.float64)
    )
    weights = tuple(float(w) for w in weights * len(names) / weights.sum())
    objective = (_mse_loss, _mse_val, (weights, float(config.prior_weight)))
    fit = fit_members(
        est.network,
        data,
        objective,
        config,
        key=key,
        devices=devices,
        desc=f"train {arch}",
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        describe=dict(estimator="point", arch=arch, names=list(names), options=arch_options),
    )
    return TrainResult(
        estimator=eqx.tree_at(lambda e: e.network, est, fit.network), **fit.outcome(split, config)
    )
