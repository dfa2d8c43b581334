r"""The training loop, checkpoints and evaluation shared by every hybrid model.

:func:`fit` runs Adam (cosine-decayed, gradient norm clipped, non-finite steps skipped) with
``steps_per_call`` steps scanned inside one jitted call. Each step draws a minibatch of
(task, sequence) pairs from the training split and, for models that use one, a context set of
``K`` other draws from the same task. After every call the reconstruction error of the
validation split is measured and the best model so far is kept; with ``checkpoint=`` the whole
state is written to disk after every call and ``resume=True`` continues from it.

:func:`evaluate` infers latents (posterior means) for a split and decodes over the full window.
The context set of every sequence of a task is the task's first ``K`` sequences. Scores:

- ``z_p_mse``: mean of :math:`(\hat z_p - z_p)^2` over sequences (physical units);
- ``mcc``: :func:`jaxid.hybrid.mcc` between the true unmodelled factors and the latent ``z_a``
  of the network inside the ODE;
- ``recon_mse``: mean squared error of the decoded sequence against the noise-free truth over the
  training window; ``pred_mse``: the same over the prediction window beyond it.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Float
from tqdm.auto import tqdm

from .. import io as jio
from ..errors import NonFiniteError, check_positive_int
from ..simulate.chunking import map_chunked
from .datasets import HybridData, HybridSplit
from .metrics import mcc
from .models import HybridModel, make_model
from .systems import get_system

MODEL_KIND = "hybrid model"
CHECKPOINT_KIND = "hybrid checkpoint"


@dataclass(frozen=True)
class HybridTrainConfig:
    """Options of :func:`fit`: ``steps``, ``batch_size``, ``learning_rate`` (peak of a cosine decay
    to a tenth), ``context_size`` (``K``), ``steps_per_call`` (steps per jitted call, and how often
    the validation split is scored), ``clip`` (global gradient-norm clip), ``seed``, ``progress``."""

    steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 1e-3
    context_size: int = 5
    steps_per_call: int = 100
    clip: float = 10.0
    seed: int = 0
    progress: bool = True

    @property
    def call_steps(self) -> int:
        """Steps per jitted call: ``steps_per_call``, or ``steps`` when that is smaller."""
        return min(self.steps_per_call, self.steps)

    def validate(self, per_task: int | None = None) -> None:
        for name in ("steps", "batch_size", "context_size", "steps_per_call"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"HybridTrainConfig: {name} must be a positive int, got {value!r}")
        for name in ("learning_rate", "clip"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"HybridTrainConfig: {name} must be a positive number, got {value!r}")
        if self.steps % self.call_steps:
            raise ValueError(
                f"HybridTrainConfig: steps ({self.steps}) must be a multiple of steps_per_call "
                f"({self.steps_per_call}) when larger; training runs whole calls of steps_per_call steps"
            )
        if per_task is not None and self.context_size > per_task:
            raise ValueError(
                f"HybridTrainConfig: context_size ({self.context_size}) exceeds the sequences per task "
                f"({per_task})"
            )


@dataclass
class HybridFitResult:
    """What :func:`fit` returns: the best ``model`` (by validation reconstruction error), its
    ``best_step``, the ``history`` (``step``; ``train_loss`` and ``train_traj``, the loss and the
    trajectory MSE in units of the observation scale, averaged over each call's finite steps;
    ``val_recon``), ``seconds`` of training and the models' auxiliary state ``aux`` (APHYNITY's
    multiplier)."""

    model: HybridModel
    best_step: int
    history: dict[str, list] = field(default_factory=dict)
    seconds: float = 0.0
    aux: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Hyper:
    steps: int
    total: int
    batch: int
    context: int
    lr: float
    clip: float


def _optimizer(h: _Hyper):
    schedule = optax.cosine_decay_schedule(h.lr, max(h.total, 1), alpha=0.1)
    inner = optax.chain(optax.clip_by_global_norm(h.clip), optax.adam(schedule))
    return optax.apply_if_finite(inner, max_consecutive_errors=50)


@eqx.filter_jit
def _run_steps(params, static, opt_state, aux, key, obs, n_tasks, h: _Hyper):
    """``h.steps`` Adam steps; returns the new state, each step's batch loss and its loss terms
    (batch means), the multiplier-style ``aux`` updated by the model's ``update_aux`` after every
    finite step."""
    optimizer = _optimizer(h)
    model0 = eqx.combine(params, static)
    uses_context = model0.uses_context
    per_task = obs.shape[1]

    def body(carry, _):
        params, opt_state, aux, key = carry
        key, k_t, k_s, k_c, k_l = jax.random.split(key, 5)
        t = jax.random.randint(k_t, (h.batch,), 0, n_tasks)
        s = jax.random.randint(k_s, (h.batch,), 0, per_task)
        y = obs[t, s]
        if uses_context:
            order = jnp.argsort(jax.random.uniform(k_c, (h.batch, per_task)), -1)[:, : h.context]
            ctx = obs[t[:, None], order]
        else:
            ctx = None
        keys = jax.random.split(k_l, h.batch)

        def loss_fn(p):
            m = eqx.combine(p, static)
            losses, stats = jax.vmap(m.loss, in_axes=(0, 0, 0 if uses_context else None, None))(
                keys, y, ctx, aux
            )
            return jnp.mean(losses), jax.tree.map(jnp.mean, stats)

        (loss, stats), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        new_aux = model0.update_aux(aux, stats)
        ok = jnp.isfinite(loss)
        aux = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new_aux, aux)
        return (params, opt_state, aux, key), (loss, stats)

    (params, opt_state, aux, key), (losses, stats) = jax.lax.scan(
        body, (params, opt_state, aux, key), None, length=h.steps
    )
    return params, opt_state, aux, key, losses, stats


def context_sets(split: HybridSplit, k: int) -> Float[np.ndarray, "sequence context time channel"]:
    """Every sequence's context set: its task's first ``k`` sequences (training window),
    shape ``(sequence, k, time, channel)`` with tasks and sequences merged."""
    check_positive_int("context_sets", "context_size", k)
    if k > split.per_task:
        raise ValueError(f"context_sets: context size {k} exceeds the sequences per task ({split.per_task})")
    ctx = split.obs[:, :k]
    return np.repeat(ctx[:, None], split.per_task, axis=1).reshape(-1, *ctx.shape[1:])


@eqx.filter_jit
def _infer(model, y, ctx, n_train: int, n_steps: int):
    def one(yi, ci):
        latents = model.encode(yi[:n_train], None if ci is None else ci[:, :n_train])
        return latents, model.decode(yi, latents, n_steps)

    return jax.vmap(one, in_axes=(0, 0 if ctx is not None else None))(y, ctx)


@dataclass(frozen=True)
class HybridInference:
    """What :func:`infer` returns, as NumPy arrays with tasks and sequences merged into the first
    axis (``n`` sequences).

    - ``z_p``: posterior means of the physical latents, shape ``(n, n_physics)``;
    - ``z_a``: posterior means of the latents of the network inside the ODE, ``(n, n_latent)``;
    - ``z_b``: posterior means of the latents of the output correction ``G``, ``(n, n_b)`` (``n_b = 0``
      for APHYNITY);
    - ``decoded``: the decoded sequences over ``n_steps`` save times, ``(n, n_steps, channels)``.
    """

    z_p: Float[np.ndarray, "sequence physics"]
    z_a: Float[np.ndarray, "sequence latent_a"]
    z_b: Float[np.ndarray, "sequence latent_b"]
    decoded: Float[np.ndarray, "sequence step channel"]


@dataclass(frozen=True)
class HybridEvaluation:
    """What :func:`evaluate` returns: the scores of a model on a split (module docstring) and the
    arrays behind them, with tasks and sequences merged into the first axis.

    - ``z_p_mse``: mean of :math:`(\\hat z_p - z_p)^2` over sequences (physical units);
    - ``mcc``: :func:`jaxid.hybrid.mcc` between the true unmodelled factors and ``z_a``;
    - ``recon_mse``: MSE of the decoded sequences against the noise-free truth over the training
      window;
    - ``pred_mse``: the same over the prediction window beyond it;
    - ``z_p``: posterior means of the physical latents, ``(n, n_physics)``;
    - ``z_a``: posterior means of the latents of the network inside the ODE, ``(n, n_latent)``;
    - ``decoded``: the decoded sequences over the full window, ``(n, n_full, channels)``.
    """

    z_p_mse: float
    mcc: float
    recon_mse: float
    pred_mse: float
    z_p: Float[np.ndarray, "sequence physics"]
    z_a: Float[np.ndarray, "sequence latent_a"]
    decoded: Float[np.ndarray, "sequence step channel"]


def infer(
    model: HybridModel,
    split: HybridSplit,
    *,
    context_size: int = 5,
    n_steps: int | None = None,
    chunk_size: int = 256,
    chunk: int | None = None,
) -> HybridInference:
    """Posterior means and decodings over ``n_steps`` save times (default: the full window) for
    every sequence of ``split``, ``chunk_size`` sequences at a time across the local devices
    (``chunk``: the former name of ``chunk_size``, deprecated).

    **Returns:** a :class:`HybridInference` (``z_p``, ``z_a``, ``z_b``, ``decoded``).
    """
    if chunk is not None:
        warnings.warn("infer: chunk is deprecated; pass chunk_size", DeprecationWarning, stacklevel=2)
        chunk_size = chunk
    sys = model.decoder.system
    n_steps = sys.n_full if n_steps is None else n_steps
    if not (isinstance(n_steps, int) and 2 <= n_steps <= sys.n_full):
        raise ValueError(f"infer: n_steps must be an int in [2, {sys.n_full}], got {n_steps!r}")
    obs = split.flat("obs")[:, : sys.n_train]
    ctx = context_sets(split, context_size)[:, :, : sys.n_train] if model.uses_context else None
    (z_p, z_a, z_b), dec = map_chunked(
        lambda y, c: _infer(model, y, c, sys.n_train, n_steps), (obs, ctx), chunk_size=chunk_size
    )
    return HybridInference(z_p=z_p, z_a=z_a, z_b=z_b, decoded=dec)


def evaluate(model: HybridModel, split: HybridSplit, *, context_size: int = 5) -> HybridEvaluation:
    """Scores of ``model`` on ``split`` (see the module docstring) and the arrays behind them.

    **Returns:** a :class:`HybridEvaluation` (``z_p_mse``, ``mcc``, ``recon_mse``, ``pred_mse``,
    ``z_p``, ``z_a``, ``decoded``). Raises if the model decodes a non-finite value.
    """
    check_positive_int("evaluate", "context_size", context_size)
    if not isinstance(split, HybridSplit):
        raise TypeError(f"evaluate: split must be a HybridSplit (e.g. data.test), got {type(split).__name__}")
    sys = model.decoder.system
    inferred = infer(model, split, context_size=context_size)
    z_p, z_a, dec = inferred.z_p, inferred.z_a, inferred.decoded
    if not np.all(np.isfinite(dec)) or not np.all(np.isfinite(z_p)):
        bad = int(np.sum(~np.all(np.isfinite(dec.reshape(dec.shape[0], -1)), -1)))
        raise NonFiniteError(f"evaluate: {bad} sequences decoded to non-finite values")
    clean = split.flat("clean")
    err = (dec - clean) ** 2
    return HybridEvaluation(
        z_p_mse=float(np.mean((z_p - split.flat("z_p")) ** 2)),
        mcc=mcc(split.flat("z_n"), z_a),
        recon_mse=float(np.mean(err[:, : sys.n_train])),
        pred_mse=float(np.mean(err[:, sys.n_train :])),
        z_p=z_p,
        z_a=z_a,
        decoded=dec,
    )


def _val_recon(model, split: HybridSplit, k: int) -> float:
    sys = model.decoder.system
    dec = infer(model, split, context_size=k, n_steps=sys.n_train).decoded
    err = (dec - split.flat("clean")[:, : sys.n_train]) ** 2
    value = float(np.mean(err))
    return value if math.isfinite(value) else math.inf


def fit(
    model: HybridModel,
    data: HybridData,
    config: HybridTrainConfig = HybridTrainConfig(),
    *,
    tasks: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    desc: str | None = None,
) -> HybridFitResult:
    """Train ``model`` on ``data.train``, keeping the best model on ``data.val`` (module docstring).

    ``tasks``: train on the first ``tasks`` training tasks only (default all); the compiled steps
    are shared between task counts.

    ``checkpoint``: a file written after every call (model, optimiser, key, best model and
    history in one checksummed file, replaced atomically: an interruption at any point leaves the
    previous checkpoint or the new one, whatever its name); with ``resume=True`` an existing
    checkpoint of the same configuration is continued, to the same result as an uninterrupted
    run. A damaged checkpoint raises :class:`jaxid.io.CorruptFileError`.
    Raises :class:`jaxid.NonFiniteError` (a :class:`FloatingPointError`) if training ends with a
    non-finite loss.
    """
    if not isinstance(config, HybridTrainConfig):
        raise TypeError(
            f"fit: config must be a jaxid.hybrid.HybridTrainConfig, got {type(config).__name__}; "
            "build one with HybridTrainConfig(**options)"
        )
    if not isinstance(data, HybridData):
        what = "a split (pass the whole HybridData)" if isinstance(data, HybridSplit) else type(data).__name__
        raise TypeError(f"fit: data must be the jaxid.hybrid.HybridData of make_hybrid_data, got {what}")
    config.validate(data.train.per_task)
    sys = data.system
    if model.decoder.system != sys:
        raise ValueError(f"fit: model is for {model.decoder.system.name!r}, data are {sys.name!r}")
    obs = jnp.asarray(data.train.obs[:, :, : sys.n_train])
    if tasks is None:
        tasks = data.train.n_tasks
    if not (isinstance(tasks, int) and 1 <= tasks <= data.train.n_tasks):
        raise ValueError(f"fit: tasks must be an int in [1, {data.train.n_tasks}], got {tasks!r}")
    n_tasks = jnp.asarray(tasks)
    n_calls = config.steps // config.call_steps
    h = _Hyper(
        steps=config.call_steps,
        total=n_calls * config.call_steps,
        batch=config.batch_size,
        context=config.context_size,
        lr=float(config.learning_rate),
        clip=float(config.clip),
    )
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = _optimizer(h).init(params)
    aux = model.init_aux()
    key = jax.random.key(config.seed)
    history = {"step": [], "train_loss": [], "train_traj": [], "val_recon": []}
    best, best_val, best_step, done = params, math.inf, 0, 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    meta_ckpt = dict(config=asdict(config), system=sys.name, kind=model.kind, tasks=tasks)
    if ckpt is not None and resume and ckpt.exists():
        header, payload = jio.read_framed(ckpt, kind=CHECKPOINT_KIND)
        if header.get("meta") != json.loads(json.dumps(meta_ckpt)):
            raise ValueError(f"fit: checkpoint {ckpt} was written with another configuration")
        # the key is stored as its raw uint32 data (a typed key array has no NumPy form)
        template = (params, opt_state, aux, jax.random.key_data(key), best)
        params, opt_state, aux, key_data, best = jio.tree_from_bytes(payload, template, path=ckpt)
        key = jax.random.wrap_key_data(key_data, impl=jax.random.key_impl(key))
        history, best_val, best_step, done = (
            header["history"],
            header["best_val"],
            header["best_step"],
            header["done"],
        )
    start = time.perf_counter()
    label = desc or f"fit {model.kind}"
    with tqdm(
        total=n_calls * h.steps, initial=done * h.steps, unit="step", desc=label, disable=not config.progress
    ) as bar:
        for call in range(done, n_calls):
            params, opt_state, aux, key, losses, terms = _run_steps(
                params, static, opt_state, aux, key, obs, n_tasks, h
            )
            losses, traj = np.asarray(losses), np.asarray(terms["traj"], np.float64)
            current = eqx.combine(params, static)
            val = _val_recon(current, data.val, config.context_size)
            step = (call + 1) * h.steps
            history["step"].append(step)
            finite = losses[np.isfinite(losses)]
            history["train_loss"].append(float(finite.mean()) if finite.size else math.nan)
            kept = traj[np.isfinite(losses)]
            history["train_traj"].append(float(kept.mean()) if kept.size else math.nan)
            history["val_recon"].append(val)
            if val < best_val:
                best, best_val, best_step = params, val, step
            bar.update(h.steps)
            bar.set_postfix(loss=f"{history['train_loss'][-1]:.4g}", val=f"{val:.3g}")
            if ckpt is not None:  # one file, header and arrays together, replaced atomically
                header = dict(
                    meta=meta_ckpt, history=history, best_val=best_val, best_step=best_step, done=call + 1
                )
                payload = jio.tree_to_bytes((params, opt_state, aux, jax.random.key_data(key), best))
                jio.write_framed(ckpt, header, payload, kind=CHECKPOINT_KIND)
    if not math.isfinite(best_val):
        raise NonFiniteError(
            f"fit: {model.kind} on {sys.name} never decoded the validation split to finite values; "
            "try a smaller learning_rate"
        )
    seconds = time.perf_counter() - start
    return HybridFitResult(
        model=eqx.combine(best, static),
        best_step=best_step,
        history=history,
        seconds=seconds,
        aux={k: float(v) for k, v in aux.items()},
    )


def save_model(path: str | os.PathLike, model: HybridModel, spec: dict[str, Any]) -> None:
    """Write ``model`` and the ``spec`` that rebuilds it (``kind``, ``system``, ``scales``,
    ``options``) atomically (:mod:`jaxid.io`): a JSON header line with the spec and the payload's
    length and SHA-256, then the equinox leaves. Read back with :func:`load_model`."""
    jio.write_framed(path, dict(spec=spec), jio.tree_to_bytes(model), kind=MODEL_KIND)


def load_model(path: str | os.PathLike) -> tuple[HybridModel, dict[str, Any]]:
    """Read a model written by :func:`save_model`. **Returns:** ``(model, spec)``. Raises
    :class:`jaxid.io.CorruptFileError` naming the file if it is empty, truncated, not a hybrid
    model file, or its bytes do not match their checksum."""

    def build(header):
        spec = header["spec"]
        return make_model(
            spec["kind"],
            get_system(spec["system"]),
            tuple(np.asarray(s, np.float32) for s in spec["scales"]),
            key=jax.random.key(0),
            **spec.get("options", {}),
        )

    model, header = jio.read_module(path, build, kind=MODEL_KIND, what="a hybrid model")
    return model, header["spec"]
