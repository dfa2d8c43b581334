r"""Amortized posterior networks: a conditional normalizing flow :math:`q(\theta \mid x)` on top of
an embedding network, trained by maximum likelihood on simulated pairs :math:`(\theta_n, x_n)`.

An embedding (summary) network :math:`h_\psi` (the MLP, CNN or GRU of :func:`make_network`) maps a
standardised trajectory :math:`\tilde x = (x - \mu_x)/\sigma_x` of shape ``(time, channel)`` to a
vector that conditions a normalizing flow from flowjax (a masked autoregressive or a coupling
flow, with affine or rational-quadratic-spline transformers) over standardised parameters
:math:`\tilde\theta = (\theta - \mu_\theta)/\sigma_\theta`. Both are trained together by
minimising the negative log-likelihood on a minibatch :math:`B`,

.. math::

    L(\psi, \phi) = -\frac{1}{|B|} \sum_{n \in B} \log q_\phi\big(\tilde\theta_n \mid
        h_\psi(\tilde x_n)\big),

whose expectation over the joint :math:`p(\theta)\,p(x \mid \theta)` is, up to a constant, the
expected KL divergence from the true posterior to :math:`q`: the minimiser is the posterior
(neural posterior estimation). In natural units
:math:`\log q(\theta \mid x) = \log q_\phi(\tilde\theta \mid h_\psi(\tilde x)) - \sum_j
\log \sigma_{\theta, j}`. A deep ensemble of ``members`` such pairs (different initialisation and
minibatch order, each stopped at its own best validation loss) is the equal-weight mixture
:math:`q(\theta \mid x) = \frac{1}{M} \sum_m q_m(\theta \mid x)`.

Training reuses :func:`jaxid.nn.fit_members`: one jitted ``lax.scan`` over the minibatches per
epoch, Adam, early stopping with best-checkpoint restore, data parallel over devices.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .. import io as jio
from ..priors import PriorLike, as_prior
from ..typing import Key
from .estimator import Estimator, check_init, check_inputs, standardisation
from .networks import ARCHITECTURES, make_network
from .streaming import LazyRecords, Streamed
from .training import (
    TrainConfig,
    check_train_options,
    check_training_data,
    fit_members,
    prepare_training,
)

# 3: the header may hold a support; 2: a checksummed framed file (jaxid.io); 1 had no checksum
FORMAT_VERSION = 3
KIND = "posterior estimator"
FLOWS = ("maf", "coupling")
TRANSFORMERS = ("affine", "spline")
_FLOW_DEFAULTS = dict(
    flow="maf",
    flow_layers=4,
    flow_width=32,
    flow_depth=1,
    transformer="affine",
    knots=8,
    interval=4.0,
    embed_dim=16,
)


def _flow_options(where: str, **given) -> dict:
    """The flow options with defaults filled in, checked."""
    opts = dict(_FLOW_DEFAULTS, **given)
    if opts["flow"] not in FLOWS:
        raise ValueError(f"{where}: unknown flow {opts['flow']!r}; choose one of {list(FLOWS)}")
    if opts["transformer"] not in TRANSFORMERS:
        raise ValueError(
            f"{where}: unknown transformer {opts['transformer']!r}; choose one of {list(TRANSFORMERS)}"
        )
    for name in ("flow_layers", "flow_width", "flow_depth", "knots", "embed_dim"):
        v = opts[name]
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            raise ValueError(f"{where}: {name} must be a positive int, got {v!r}")
    if not (isinstance(opts["interval"], int | float) and opts["interval"] > 0):
        raise ValueError(f"{where}: interval must be a positive number, got {opts['interval']!r}")
    opts["interval"] = float(opts["interval"])
    return opts


class ConditionalFlow(eqx.Module):
    """One posterior network: an embedding ``(time, channel) -> (embed_dim,)`` and a flowjax flow
    over standardised parameters conditioned on it."""

    embedding: eqx.Module
    flow: eqx.Module

    def log_prob(self, theta: Float[Array, " param"], x: Float[Array, "time channel"]) -> Float[Array, ""]:
        return self.flow.log_prob(theta, self.embedding(x))


def make_conditional_flow(
    arch: str,
    in_shape: tuple[int, int],
    n_params: int,
    *,
    key: Key,
    flow: str = "maf",
    flow_layers: int = 4,
    flow_width: int = 32,
    flow_depth: int = 1,
    transformer: str = "affine",
    knots: int = 8,
    interval: float = 4.0,
    embed_dim: int = 16,
    **arch_options,
) -> ConditionalFlow:
    """A fresh :class:`ConditionalFlow` (float32 weights): the ``arch`` embedding network
    (``arch_options`` as in :func:`make_network`) with ``embed_dim`` outputs, and a ``flow``
    (``"maf"``: masked autoregressive; ``"coupling"``) of ``flow_layers`` layers whose
    conditioners have ``flow_depth`` hidden layers of ``flow_width`` units, with ``"affine"`` or
    ``"spline"`` transformers (rational-quadratic, ``knots`` knots on ``[-interval, interval]``,
    the identity outside; in standardised units)."""
    opts = _flow_options(
        "make_conditional_flow",
        flow=flow,
        flow_layers=flow_layers,
        flow_width=flow_width,
        flow_depth=flow_depth,
        transformer=transformer,
        knots=knots,
        interval=interval,
        embed_dim=embed_dim,
    )
    return _build_flow(arch, in_shape, n_params, key, opts, arch_options, _transformer(opts))


def _transformer(opts: dict):
    """The flow's transformer template (flowjax's default for ``"affine"``)."""
    # flowjax is imported here, not at the top: `import jaxid` need not pay for it.
    from flowjax.bijections import RationalQuadraticSpline
    from flowjax.flows import _affine_with_min_scale

    if opts["transformer"] == "spline":
        return RationalQuadraticSpline(knots=opts["knots"], interval=opts["interval"])
    return _affine_with_min_scale()


def _concrete_constructors(model, template):
    """``model`` with each flowjax layer's transformer constructor made here, outside jit.

    A layer's constructor is a closure over the template's ravelled parameters
    (``flowjax.utils.get_ravelled_pytree_constructor``), not a pytree leaf: made under jit (one
    compiled program for every member's weights, instead of a small program per weight shape when
    built eagerly), it would hold a tracer. It depends on the template only."""
    import paramax
    from flowjax.bijections import Coupling, MaskedAutoregressive
    from flowjax.utils import get_ravelled_pytree_constructor

    constructor, _ = get_ravelled_pytree_constructor(
        template,
        filter_spec=eqx.is_inexact_array,
        is_leaf=lambda leaf: isinstance(leaf, paramax.NonTrainable),
    )

    def is_layer(x):
        return isinstance(x, (MaskedAutoregressive, Coupling))

    def where(m):
        return [x.transformer_constructor for x in jax.tree.leaves(m, is_leaf=is_layer) if is_layer(x)]

    return eqx.tree_at(where, model, [constructor] * len(where(model)))


def _build_flow(arch, in_shape, n_params, key, opts, arch_options, transformer) -> ConditionalFlow:
    from flowjax.distributions import Normal
    from flowjax.flows import coupling_flow, masked_autoregressive_flow

    k_embed, k_flow = jax.random.split(key)
    embedding = make_network(arch, in_shape, opts["embed_dim"], key=k_embed, **arch_options)
    builder = masked_autoregressive_flow if opts["flow"] == "maf" else coupling_flow
    dist = builder(
        k_flow,
        base_dist=Normal(jnp.zeros(n_params)),
        transformer=transformer,
        cond_dim=opts["embed_dim"],
        flow_layers=opts["flow_layers"],
        nn_width=opts["flow_width"],
        nn_depth=opts["flow_depth"],
    )
    dist = jax.tree.map(lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a, dist)
    return ConditionalFlow(embedding=embedding, flow=dist)


_RUN_ONCE = {"xla_backend_optimization_level": 0}
"""XLA options of programs that run once (a network's initialisation): compiled without the
optimisations that would pay off only over many runs."""


class PosteriorEstimator(eqx.Module):
    r"""An amortized posterior :math:`q(\theta \mid x)` over parameters ``names`` given a trajectory
    ``(time, channel)``: ``members`` :class:`ConditionalFlow` networks stacked along a leading
    axis (their equal-weight mixture), with the standardisation of inputs and parameters.

    :meth:`sample`, :meth:`log_prob` and :meth:`mean_sd` take a batch of records and run as one
    jitted call each, in natural units.

    ``support``: ``((low, high), ...)`` per parameter (the prior's support, from
    :func:`train_posterior`'s ``prior`` or :meth:`restrict`) or ``None``. A flow has unbounded
    support; the true posterior has none of its mass outside the prior's. With a support,
    :meth:`sample` and :meth:`mean_sd` draw from the flow truncated to it,
    :math:`q(\theta \mid x)\,[\theta \in S] / Q(S \mid x)`, by rejection (as sbi's
    ``DirectPosterior`` does); :meth:`log_prob` stays the flow's own density (inside the support
    the truncated one is larger by :math:`-\log Q(S \mid x)`).
    """

    model: ConditionalFlow
    x_mean: Float[Array, "time channel"]
    x_scale: Float[Array, "time channel"]
    theta_mean: Float[Array, " param"]
    theta_scale: Float[Array, " param"]
    arch: str = eqx.field(static=True)
    options: tuple = eqx.field(static=True)
    flow_options: tuple = eqx.field(static=True)
    in_shape: tuple[int, int] = eqx.field(static=True)
    names: tuple[str, ...] = eqx.field(static=True)
    members: int = eqx.field(static=True)
    support: tuple[tuple[float, float], ...] | None = eqx.field(static=True, default=None)

    @classmethod
    def init(
        cls,
        arch: str,
        in_shape: tuple[int, int],
        names: Sequence[str],
        *,
        key: Key,
        members: int = 1,
        x_mean: Float[ArrayLike, "time channel"] | None = None,
        x_scale: Float[ArrayLike, "time channel"] | None = None,
        theta_mean: Float[ArrayLike, " param"] | None = None,
        theta_scale: Float[ArrayLike, " param"] | None = None,
        flow_options: dict[str, Any] | None = None,
        support: PriorLike | Sequence[tuple[float, float]] | None = None,
        **options,
    ) -> PosteriorEstimator:
        """Fresh networks (``members`` of them, from ``key``) with the given standardisation
        (default: none); ``flow_options`` go to :func:`make_conditional_flow`, ``options`` to the
        embedding network; ``support``: a prior (or ``{name: (low, high)}`` box) whose support the
        draws are restricted to (class docstring)."""
        where = "PosteriorEstimator.init"
        names, in_shape = check_init(where, members, names, in_shape)
        fopts = _flow_options(where, **(flow_options or {}))
        keys = jax.random.split(key, members)
        # One compiled program for every member's weights (built eagerly, each random draw of the
        # layers would compile a small program of its own).
        template = _transformer(fopts)
        model = eqx.filter_jit(
            eqx.filter_vmap(lambda k: _build_flow(arch, in_shape, len(names), k, fopts, options, template)),
            compiler_options=_RUN_ONCE,
        )(keys)
        model = _concrete_constructors(model, template)
        x_mean, x_scale, theta_mean, theta_scale = standardisation(
            in_shape, len(names), x_mean, x_scale, theta_mean, theta_scale
        )
        return cls(
            model=model,
            x_mean=x_mean,
            x_scale=x_scale,
            theta_mean=theta_mean,
            theta_scale=theta_scale,
            arch=arch,
            options=tuple(sorted(options.items())),
            flow_options=tuple(sorted(fopts.items())),
            in_shape=in_shape,
            names=names,
            members=members,
            support=_support(where, support, names, "support"),
        )

    def restrict(self, prior: PriorLike | Sequence[tuple[float, float]] | None) -> PosteriorEstimator:
        """This estimator with its draws restricted to the support of ``prior`` (a
        :class:`jaxid.priors.Prior` or ``{name: (low, high)}`` box with every parameter of
        ``names``, or the support itself: one ``(low, high)`` pair per name, infinite bounds
        allowed; class docstring), or unrestricted with ``None``."""
        return dataclasses.replace(self, support=_support("PosteriorEstimator.restrict", prior, self.names))

    def _check_inputs(self, x, where: str) -> jax.Array:
        return jnp.asarray(check_inputs(x, self.in_shape, where))

    def sample(
        self,
        x: Float[ArrayLike, "records time channel"],
        n: int,
        *,
        key: Key,
        batch_size: int = 256,
        max_rounds: int = 100,
    ) -> Float[Array, "records sample param"]:
        """``n`` draws from the posterior of each record of ``x`` ``(records, time, channel)``, in
        natural units: ``(records, n, param)``. With several members each draw comes from a
        member chosen uniformly at random (the mixture). With a ``support`` (class docstring), draws
        outside it are rejected and drawn again, ``n`` at a time, at most ``max_rounds`` times; a
        record whose draws are not all inside by then is an error naming it (its posterior network
        puts less than about ``1 / max_rounds`` of its mass inside the prior's support); each
        record is then drawn on its own. ``batch_size`` records at a time (embeddings, and draws
        without a support)."""
        where = "PosteriorEstimator.sample"
        x = self._check_inputs(x, where)
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"{where}: n must be a positive int, got {n!r}")
        return _checked_sample(self, x, n, key, batch_size, max_rounds, where)

    def log_prob(
        self,
        theta: Float[ArrayLike, "records *n param"],
        x: Float[ArrayLike, "records time channel"],
        *,
        batch_size: int = 256,
    ) -> Float[Array, " records *n"]:
        r""":math:`\log q(\theta \mid x)` in natural units for ``theta`` ``(records, param)`` paired
        with the records of ``x`` ``(records, time, channel)``: ``(records,)``; or ``theta``
        ``(records, n, param)`` (``n`` values per record): ``(records, n)``."""
        where = "PosteriorEstimator.log_prob"
        x = self._check_inputs(x, where)
        theta = np.asarray(theta, dtype=np.float32)
        p = len(self.names)
        if theta.ndim not in (2, 3) or theta.shape[0] != x.shape[0] or theta.shape[-1] != p:
            raise ValueError(
                f"{where}: theta must have shape ({x.shape[0]}, {p}) or ({x.shape[0]}, n, {p}) "
                f"to match x {x.shape}, got {theta.shape}"
            )
        if not np.all(np.isfinite(theta)):
            raise ValueError(f"{where}: theta contains NaN or inf")
        lp = _log_prob(self, jnp.asarray(theta.reshape(theta.shape[0], -1, p)), x, batch_size)
        return lp[:, 0] if theta.ndim == 2 else lp

    def mean_sd(
        self,
        x: Float[ArrayLike, "records time channel"],
        n: int = 1000,
        *,
        key: Key,
        batch_size: int = 256,
        max_rounds: int = 100,
    ) -> tuple[Float[Array, "records param"], Float[Array, "records param"]]:
        """Posterior mean and standard deviation of each record, from the ``n`` draws that
        :meth:`sample` makes with the same ``key`` (Monte Carlo: the mean is off by about
        ``sd / sqrt(n)``)."""
        where = "PosteriorEstimator.mean_sd"
        x = self._check_inputs(x, where)
        if not (isinstance(n, int) and n >= 2):
            raise ValueError(f"{where}: n must be an int >= 2, got {n!r}")
        s = _checked_sample(self, x, n, key, batch_size, max_rounds, where)
        return s.mean(1), s.std(1, ddof=1)

    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> None:
        """Write to ``path`` atomically (:mod:`jaxid.io`): a JSON header line (architecture, flow,
        names, ``metadata``, the payload's length and SHA-256) then the arrays
        (``equinox.tree_serialise_leaves``); read back with :func:`load_posterior_estimator`."""
        header = dict(
            arch=self.arch,
            options=dict(self.options),
            flow_options=dict(self.flow_options),
            in_shape=list(self.in_shape),
            names=list(self.names),
            members=self.members,
            support=None if self.support is None else [list(b) for b in self.support],
            metadata=metadata or {},
        )
        jio.write_framed(path, header, jio.tree_to_bytes(self), kind=KIND, format=FORMAT_VERSION)


def load_posterior_estimator(path: str | os.PathLike) -> tuple[PosteriorEstimator, dict]:
    """Read a posterior estimator written by :meth:`PosteriorEstimator.save`; returns
    ``(estimator, metadata)``. Raises :class:`jaxid.io.CorruptFileError` naming the file if it is
    empty, truncated, not a posterior estimator file, or its bytes do not match their checksum."""

    def build(header):
        return PosteriorEstimator.init(
            header["arch"],
            tuple(header["in_shape"]),
            header["names"],
            key=jax.random.key(0),
            members=header["members"],
            flow_options=header["flow_options"],
            support=None if header.get("support") is None else [tuple(b) for b in header["support"]],
            **header["options"],
        )

    what = "a posterior estimator"
    est, header = jio.read_module(path, build, kind=KIND, what=what, formats=(2, FORMAT_VERSION))
    return est, header["metadata"]


def _embed(est: PosteriorEstimator, x, batch_size: int):
    """Embeddings of every record by every member: ``(records, members, embed_dim)``."""
    xs = (x - est.x_mean) / est.x_scale
    h = eqx.filter_vmap(lambda m: jax.lax.map(m.embedding, xs, batch_size=min(batch_size, xs.shape[0])))(
        est.model
    )
    return jnp.swapaxes(h, 0, 1)


@eqx.filter_jit
def _log_prob(est: PosteriorEstimator, theta, x, batch_size: int):
    h = _embed(est, x, batch_size)
    z = (theta - est.theta_mean) / est.theta_scale  # (records, n, param)
    flows = est.model.flow

    def one(args):
        zr, hr = args  # (n, param), (members, embed)
        lp = eqx.filter_vmap(lambda f, c: f.log_prob(zr, c))(flows, hr)  # (members, n)
        return jax.nn.logsumexp(lp, axis=0) - math.log(est.members)

    lp = jax.lax.map(one, (z, h), batch_size=min(batch_size, x.shape[0]))
    return lp - jnp.sum(jnp.log(est.theta_scale))


def _support(where: str, prior, names, arg: str = "prior") -> tuple[tuple[float, float], ...] | None:
    """``prior``'s support ``((low, high), ...)`` in ``names`` order, or ``None``; a sequence of
    ``(low, high)`` pairs, one per name, is taken as the support itself."""
    if prior is None:
        return None
    if isinstance(prior, (tuple, list)):
        try:
            pairs = tuple((float(a), float(b)) for a, b in prior)
        except (TypeError, ValueError):
            pairs = ()
        if len(pairs) != len(names) or not all(a < b for a, b in pairs):
            raise ValueError(
                f"{where}: {arg} must hold one (low, high) pair with low < high per name "
                f"{tuple(names)}, got {prior!r}"
            )
        return pairs
    lo, hi = as_prior(prior, names, where=f"{where}: {arg}").support
    return tuple((float(a), float(b)) for a, b in zip(lo, hi, strict=True))


def _checked_sample(est: PosteriorEstimator, x, n, key, batch_size, max_rounds, where):
    if isinstance(max_rounds, bool) or not (isinstance(max_rounds, int) and max_rounds >= 1):
        raise ValueError(f"{where}: max_rounds must be a positive int, got {max_rounds!r}")
    if est.support is None:  # nothing to check: the draws stay asynchronous, one program
        return _sample(est, x, n, key, batch_size, 1)[0]
    draws, filled = _sample(est, x, n, key, batch_size, max_rounds)
    short = np.flatnonzero(np.asarray(filled) < n)
    if short.size:
        raise ValueError(
            f"{where}: after {max_rounds} rounds of {n} draws, record(s) {short[:10].tolist()} "
            f"({short.size} of {x.shape[0]}) still lack draws inside the support {est.support}: "
            "their posterior network puts almost none of its mass there (raise max_rounds, or "
            "check the records against the prior)"
        )
    return draws


@eqx.filter_jit
def _sample(est: PosteriorEstimator, x, n: int, key, batch_size: int, max_rounds: int):
    """Draws ``(records, n, param)`` from the members' mixture, in natural units, truncated to
    ``est.support`` by rejection; and how many of each record's ``n`` slots are filled."""
    h = _embed(est, x, batch_size)
    flows = est.model.flow
    keys = jax.random.split(key, x.shape[0])

    def draw(kr, hr):
        k_pick, k_draw = jax.random.split(kr)
        draws = eqx.filter_vmap(lambda f, k, c: f.sample(k, (n,), condition=c))(
            flows, jax.random.split(k_draw, est.members), hr
        )  # (members, n, param)
        pick = jax.random.randint(k_pick, (n,), 0, est.members)
        return draws[pick, jnp.arange(n)] * est.theta_scale + est.theta_mean

    def one(args):
        kr, hr = args
        if est.support is None:
            return draw(kr, hr), jnp.asarray(n)
        dtype = jax.eval_shape(draw, kr, hr).dtype  # the flow's draws, after the standardisation
        lo, hi = (jnp.asarray(b, dtype=dtype) for b in zip(*est.support, strict=True))

        def more(state):
            return (state[2] < n) & (state[3] < max_rounds)

        def round_(state):
            k, buf, filled, rounds = state
            k, k_draw = jax.random.split(k)
            d = draw(k_draw, hr)
            ok = jnp.all((d >= lo) & (d <= hi), axis=-1)
            slot = filled + jnp.cumsum(ok) - 1
            buf = buf.at[jnp.where(ok & (slot < n), slot, n)].set(d, mode="drop")
            return k, buf, jnp.minimum(filled + ok.sum(), n), rounds + 1

        empty = jnp.full((n, len(est.names)), jnp.nan, dtype=dtype)
        _, buf, filled, _ = jax.lax.while_loop(more, round_, (kr, empty, jnp.asarray(0), jnp.asarray(0)))
        return buf, filled

    # with a support, one record at a time: vmapped, every record of a batch would run as many
    # rejection rounds as its batch's lowest acceptance needs (measured 11x slower at batch 256)
    per_map = 1 if est.support is not None else min(batch_size, x.shape[0])
    return jax.lax.map(one, (keys, h), batch_size=per_map)


def _nll(model: ConditionalFlow, xb, yb):
    """The minibatch loss (module docstring), standardised units."""
    return -jnp.mean(model.flow.log_prob(yb, jax.vmap(model.embedding)(xb)))


def _nll_val(model: ConditionalFlow, x_val, y_val):
    lp = jax.lax.map(
        lambda xy: model.log_prob(xy[1], xy[0]), (x_val, y_val), batch_size=min(1024, x_val.shape[0])
    )
    return -jnp.mean(lp)


@dataclass(frozen=True)
class PosteriorResult:
    """What :func:`train_posterior` returns.

    - ``estimator``: the best checkpoint of every member.
    - ``history``: ``train_loss`` (per epoch, mean over members), ``val_loss`` (per epoch and
      member), ``best_epoch`` and ``best_val_loss`` (per member), ``epochs_run``,
      ``stopped_early``; losses are mean negative log-likelihoods in standardised units.
    - ``split``: record indices of ``train``, ``val`` and ``test``.
    - ``seconds`` (all of training, compilation included), ``first_epoch_seconds`` and
      ``samples_per_second`` (member-samples per second after the first epoch).
    """

    estimator: PosteriorEstimator
    history: dict
    split: dict[str, np.ndarray]
    config: TrainConfig
    seconds: float
    first_epoch_seconds: float
    samples_per_second: float


def train_posterior(
    x: Float[ArrayLike, "records time channel"] | Streamed | LazyRecords,
    theta: Float[ArrayLike, "records param"],
    names: Sequence[str],
    *,
    arch: str = "mlp",
    config: TrainConfig | None = None,
    flow: str = "maf",
    flow_layers: int = 4,
    flow_width: int = 32,
    flow_depth: int = 1,
    transformer: str = "affine",
    knots: int = 8,
    interval: float = 4.0,
    embed_dim: int | None = None,
    embedding_from: Estimator | None = None,
    prior: PriorLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: bool = True,
    **arch_options,
) -> PosteriorResult:
    """Train an amortized posterior of ``names`` given trajectories ``x``
    ``(records, time, channel)`` from simulated pairs with parameters ``theta``
    ``(records, param)`` drawn from the prior (the flow learns the posterior under that prior).

    ``arch`` (``"mlp"``, ``"cnn"``, ``"gru"``) and ``arch_options`` build the embedding network
    (see :func:`make_network`), with ``embed_dim`` outputs; ``flow``, ``flow_layers``,
    ``flow_width``, ``flow_depth``, ``transformer``, ``knots`` and ``interval`` the flow (see
    :func:`make_conditional_flow`). ``config`` (a :class:`TrainConfig`) as for :func:`train`:
    seeded split, standardisation from the training split, Adam, early stopping on the
    validation negative log-likelihood, ``members`` trained together (their mixture);
    ``loss_weights`` and ``prior_weight`` do not apply and must be left unset.

    ``embedding_from``: a point estimator (:class:`jaxid.nn.Estimator` from :func:`train` with the
    same ``arch``, ``arch_options``, ``members``, records, split and seed) whose networks the
    embedding starts from: the flow is then conditioned on its standardised estimates of the
    parameters (``embed_dim`` is its number of outputs), and both are trained on. A flow that must
    find the data's features from its likelihood alone can settle on a partial posterior (the
    walker's ``(m, k)`` ridge when force plates would pin ``m``: the ridge's features are found
    first and the gradient towards the rest is weak); a point network's regression finds them.

    ``prior``: the prior ``theta`` was drawn from (a :class:`jaxid.priors.Prior` or a
    ``{name: (low, high)}`` box with every parameter of ``names``). Training is unchanged; the
    estimator's draws are restricted to the prior's support (:class:`PosteriorEstimator`'s
    ``support``), and every ``theta`` must lie inside it.

    ``checkpoint``, ``checkpoint_every``, ``resume``: as for :func:`train`, an atomic checkpoint
    of the whole training state from which an interrupted call resumes to a bit-identical result.
    """
    where = "train_posterior"
    config = check_train_options(where, config, checkpoint, checkpoint_every, resume)
    names = tuple(names)
    x, theta = check_training_data(x, theta, names, config, where=where, target="theta")
    if arch not in ARCHITECTURES:
        raise ValueError(f"{where}: unknown arch {arch!r}; choose one of {list(ARCHITECTURES)}")
    if config.loss_weights is not None or config.prior_weight != 0:
        raise ValueError(
            f"{where}: config.loss_weights and config.prior_weight apply to point estimators "
            "(train), not to posterior networks; leave them unset"
        )
    support = _support(where, prior, names)
    if support is not None:
        _check_inside(where, theta, support)
    fopts = _flow_options(
        where,
        flow=flow,
        flow_layers=flow_layers,
        flow_width=flow_width,
        flow_depth=flow_depth,
        transformer=transformer,
        knots=knots,
        interval=interval,
        embed_dim=_embed_dim(where, embed_dim, embedding_from),
    )
    split, devices, (x_mean, x_scale, t_mean, t_scale), (init_key, key), data = prepare_training(
        x, theta, config, where
    )
    if embedding_from is not None:
        _check_embedding_from(
            where, embedding_from, arch, arch_options, x.shape[1:], config.members, x_mean, x_scale
        )
    try:
        est = PosteriorEstimator.init(
            arch,
            x.shape[1:],
            names,
            key=init_key,
            members=config.members,
            x_mean=x_mean,
            x_scale=x_scale,
            theta_mean=t_mean,
            theta_scale=t_scale,
            flow_options=fopts,
            support=support,
            **arch_options,
        )
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    if embedding_from is not None:
        est = eqx.tree_at(lambda e: e.model.embedding, est, embedding_from.network)

    fit = fit_members(
        est.model,
        data,
        (_nll, _nll_val, ()),
        config,
        key=key,
        devices=devices,
        where=where,
        desc=f"posterior {arch}+{fopts['flow']}",
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        describe=dict(
            estimator="posterior",
            arch=arch,
            names=list(names),
            options=arch_options,
            flow=fopts,
            embedding_from=None if embedding_from is None else list(embedding_from.names),
        ),
    )
    return PosteriorResult(
        estimator=eqx.tree_at(lambda e: e.model, est, fit.network), **fit.outcome(split, config)
    )


def _check_inside(where: str, theta, support) -> None:
    """Every ``theta`` inside the prior's support (float32 rounding of each finite bound allowed)."""
    lo, hi = (np.asarray(b, dtype=np.float64) for b in zip(*support, strict=True))
    with np.errstate(invalid="ignore"):
        tol_lo = np.where(np.isfinite(lo), 1e-6 * np.abs(lo), 0.0)
        tol_hi = np.where(np.isfinite(hi), 1e-6 * np.abs(hi), 0.0)
    t = np.asarray(theta, dtype=np.float64)
    out = np.flatnonzero(np.any((t < lo - tol_lo) | (t > hi + tol_hi), axis=-1))
    if out.size:
        raise ValueError(
            f"{where}: {out.size} of {t.shape[0]} theta lie outside the prior's support "
            f"(first: record {out[0]}, {t[out[0]].tolist()}; support {list(support)}); "
            "give the prior the records were drawn from"
        )


def _embed_dim(where: str, embed_dim, embedding_from) -> int:
    """The embedding's width: ``embed_dim`` (default 16), or the outputs of ``embedding_from``."""
    if embedding_from is None:
        return 16 if embed_dim is None else embed_dim
    if not isinstance(embedding_from, Estimator):
        raise TypeError(
            f"{where}: embedding_from must be a jaxid.nn.Estimator (from nn.train), "
            f"got {type(embedding_from).__name__}"
        )
    if embed_dim is not None and embed_dim != len(embedding_from.names):
        raise ValueError(
            f"{where}: embed_dim={embed_dim} but embedding_from has {len(embedding_from.names)} outputs "
            "(the embedding is that network); leave embed_dim unset"
        )
    return len(embedding_from.names)


def _check_embedding_from(where, est, arch, arch_options, in_shape, members, x_mean, x_scale) -> None:
    """``embedding_from`` (an :class:`Estimator`, :func:`_embed_dim`) must fit this run's
    embedding and have this run's input standardisation (the same records, split and seed)."""
    mine = dict(
        arch=arch, options=tuple(sorted(arch_options.items())), in_shape=tuple(in_shape), members=members
    )
    theirs = dict(arch=est.arch, options=est.options, in_shape=est.in_shape, members=est.members)
    diff = [f"{k}: {theirs[k]!r} there, {v!r} here" for k, v in mine.items() if theirs[k] != v]
    if diff:
        raise ValueError(f"{where}: embedding_from does not fit this network ({'; '.join(diff)})")
    same = np.allclose(np.asarray(est.x_mean), x_mean, rtol=1e-5, atol=1e-6) and np.allclose(
        np.asarray(est.x_scale), x_scale, rtol=1e-5, atol=1e-6
    )
    if not same:
        raise ValueError(
            f"{where}: embedding_from was trained with another input standardisation (other records, "
            "split or seed); train it with nn.train on the same x and config"
        )
