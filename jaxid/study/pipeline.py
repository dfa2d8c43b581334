r"""The study for any model: :func:`run` takes a :class:`~jaxid.study.StudyConfig` and returns a
:class:`StudyResult` (and, with ``out``, writes ``report.md``, ``results.json``, figures and the
records).

Steps (each reuses the library's own function):

1. **Data.** Parameters from the prior (and initial states, where drawn), simulated in chunks by
   :func:`jaxid.simulate_batch` (a function model by :func:`jaxid.simulate.chunking.map_chunked`;
   the walker on its gait by :func:`jaxid.generate_gait_dataset`, each record its gait's periodic
   orbit: :mod:`jaxid.study.gait_records`); failed
   records are rejected and counted by reason, and new candidates drawn until ``records`` are
   accepted (:mod:`jaxid.study.records`; with ``out``, written block by block to the store
   ``records.zarr`` and resumed from it). Gaussian noise of standard deviation :math:`\sigma` (absolute), or
   :math:`\sigma \cdot \mathrm{sd}_c` with :math:`\mathrm{sd}_c` the record's own channel sd over
   time (relative, :meth:`jaxid.identify.Experiment.sigma`'s convention), is added.
2. **Identifiability across the prior.** :func:`jaxid.identify.analyze` at ``draws`` prior draws
   (one record with the study's channels and noise, the initial state known): the Fisher rank at
   each draw, null directions, scaling symmetries, identifiable monomials and Cramer-Rao bounds
   (the *identifiability map*: where the rank drops, how the bounds spread); and total Sobol
   indices (:func:`jaxid.sensitivity.sobol_indices` on the prior's quantile transform of the unit
   cube), aggregated over the outputs as :math:`S_{T,i} = \sum_k V_k S_{T,ik} / \sum_k V_k`.
3. **Learned estimators.** :func:`jaxid.nn.train` for the raw parameters and for the
   identifiable combinations of step 2 (the monomials with two or more factors of the modal
   analysis), on :math:`\log\theta` (where every prior is positive; a monomial is linear there,
   :math:`\log \prod \theta_i^{a_i} = a \cdot \log\theta`), scored on the test split.
4. **The limit.** :func:`jaxid.inference.sample_posterior` on the first ``bayes.records`` test
   records (drawn initial-state components are sampled too and marginalised), the Bayes risk
   (:func:`jaxid.inference.bayes_risk`) and each network against it
   (:func:`jaxid.inference.compare`: R^2 against the limit and the verdict).
5. **Report.** A table per parameter and per combination: identifiable or not (and why), the
   Cramer-Rao bound, the total Sobol index, the network's error, the Bayes limit and the verdict;
   with a ``[design]`` table, the ranking of its candidate additions
   (:func:`jaxid.study.design.study_design`: what would make the rest identifiable).
"""

from __future__ import annotations

import json
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .. import __version__
from .. import io as jio
from ..errors import NonFiniteError
from ..experiments.results import jsonable
from ..identify import Experiment, IdentifiabilityReport, analyze, monomial_values
from ..inference import bayes_risk, compare, sample_posterior
from ..models.base import AbstractSwitchingModel
from ..nn import regression_metrics, scaling_ceiling
from ..priors import Prior, Uniform
from ..sensitivity import sobol_indices
from ..simulate import simulate, simulate_batch
from ..simulate.chunking import map_chunked
from ..typing import Key, ParamVector, StateVector, TimeGrid
from .config import ResolvedModel, StudyConfig, build_start, validate
from .design import DesignRanking
from .estimators import network_spec, train_config, train_estimator
from .gait_records import gait_dataset_options, gait_records
from .records import StudyRecords, collect, data_config

__all__ = [
    "IdentifiabilityMap",
    "StudyResult",
    "identifiability_at",
    "identifiability_map",
    "make_observer",
    "run",
    "simulate_records",
]


# ---------------------------------------------------------------------------------------------
# the map theta -> observations


class _Observe(eqx.Module):
    """``theta -> observations (time, channel)`` of the configured model: the studied parameters
    (then the drawn initial-state components, if ``augmented``) set into the model and its
    initial state ``y0``, or ``start(model)`` where the initial state is a function of the
    parameters (the walker's gait). An equinox Module, so ``y0`` is an array leaf: experiments that
    differ only in their initial state share one compilation."""

    model: object
    y0: Array
    ts: Array
    param_index: tuple[int, ...] = eqx.field(static=True)
    state_index: tuple[int, ...] = eqx.field(static=True)
    channel_index: tuple[int, ...] = eqx.field(static=True)
    t0: float | None = eqx.field(static=True, default=None)
    offset: Array | None = None
    start: Callable | None = eqx.field(static=True, default=None)

    def __call__(self, theta):
        p = len(self.param_index)
        base = self.model.params
        params = base.at[jnp.array(self.param_index)].set(theta[:p])
        if self.offset is not None:
            params = params + self.offset
        m = self.model.with_params(params)
        y0 = self.y0 if self.start is None else self.start(m)
        if self.state_index:
            y0 = y0.at[jnp.array(self.state_index)].set(theta[p:])
        kwargs = {} if isinstance(m, AbstractSwitchingModel) else {"adjoint": dfx.ForwardMode()}
        if self.t0 is not None:
            kwargs["t0"] = self.t0
        sim = simulate(m, y0, self.ts, **kwargs)
        obs = sim.obs[:, jnp.array(self.channel_index)]
        return jnp.where(sim.success, obs, jnp.nan)


class _ObserveFunction(eqx.Module):
    fn: object = eqx.field(static=True)

    def __call__(self, theta):
        y = jnp.asarray(self.fn(theta))
        return y[:, None] if y.ndim == 1 else y


def observer_experiment(observer, noise, **kwargs) -> Experiment:
    """An :class:`jaxid.identify.Experiment` on ``observer`` (from :func:`make_observer`).

    An observer of a jaxid model is jaxid's own simulation, so the check that a user function
    traces and returns one float array before first use (one more trace of the model for every
    experiment, and the identifiability map builds one per prior draw) is skipped; a user's
    function ``theta -> y`` keeps it."""
    return Experiment(observer, noise, check_function=not isinstance(observer, _Observe), **kwargs)


def make_observer(
    config: StudyConfig,
    resolved: ResolvedModel,
    *,
    y0: StateVector | None = None,
    augmented: bool = False,
    times: TimeGrid | Sequence[float] | None = None,
    t0: float | None = None,
    offset: Float[ArrayLike, " model_param"] | None = None,
) -> Callable[[ParamVector], Float[Array, "time channel"]]:
    """The map ``theta -> observations (time, channel)`` of one record.

    ``theta`` holds the studied parameters in ``config.params`` order, followed, with
    ``augmented=True``, by the drawn initial-state components; otherwise the initial state is
    ``y0`` (default: the configured one with drawn components at their prior centre; where the
    initial state is a function of the parameters, that function, unless ``y0`` is given). Forward-mode
    differentiable (``Experiment``); a failed simulation gives NaN observations. For experiment
    design: ``times`` replaces the configured save times, ``t0`` the start time (default the first
    save time), and ``offset`` (one value per model parameter) is added to the model's parameters
    (a known added mass)."""
    if resolved.kind == "function":
        return _ObserveFunction(resolved.fn)
    drawn = resolved.drawn_states if augmented else ()
    if resolved.start is not None and resolved.start_fn is None:
        raise ValueError(
            f"make_observer: the initial state {resolved.start!r} is not built yet; pass the "
            "resolved model through jaxid.study.config.build_start first"
        )
    return _Observe(
        model=resolved.model,
        y0=jnp.asarray(resolved.y0 if y0 is None else y0, dtype=float),
        ts=jnp.asarray(config.times if times is None else times, dtype=float),
        param_index=resolved.param_index,
        state_index=tuple(resolved.state_names.index(s) for s in drawn),
        channel_index=resolved.channel_index,
        t0=None if t0 is None else float(t0),
        offset=None if offset is None else jnp.asarray(offset, dtype=float),
        start=resolved.start_fn if y0 is None else None,
    )


def _augmented_prior(config: StudyConfig, resolved: ResolvedModel) -> Prior:
    dists = dict(zip(config.params.names, config.params.dists, strict=True))
    for s in resolved.drawn_states:
        dists[f"{s}(0)"] = config.initial_state[s]
    return Prior(dists)


# ---------------------------------------------------------------------------------------------
# 1. data


def _draw(config, resolved, key, n):
    """``n`` candidate parameter vectors and initial states."""
    k_theta, k_y0 = jax.random.split(key)
    theta = np.asarray(config.params.sample(k_theta, n), dtype=np.float64)
    if resolved.kind == "function" or resolved.start is not None:
        return theta, None  # a start's states follow the parameters (_simulate)
    y0 = np.broadcast_to(resolved.y0, (n, len(resolved.y0))).copy()
    keys = jax.random.split(k_y0, max(len(resolved.drawn_states), 1))
    for s, k in zip(resolved.drawn_states, keys, strict=False):
        y0[:, resolved.state_names.index(s)] = np.asarray(config.initial_state[s].sample(k, n))
    return theta, y0


@eqx.filter_jit
def _start_batch(start, model, full):
    # one compilation per start function and chunk shape, shared by the data step's rounds
    return jax.vmap(lambda p: start(model.with_params(p)))(full)


def _start_states(config, resolved, full, progress):
    """The initial states ``start(model)`` of a batch of model parameter vectors, and a mask of
    those that are finite (a walker without a gait gives NaN)."""
    model, start = resolved.model, resolved.start_fn
    y0 = np.asarray(
        map_chunked(
            lambda f: _start_batch(start, model, f),
            (full,),
            chunk_size=config.chunk_size,
            progress=progress,
            desc="start",
        ),
        dtype=np.float64,
    )
    return y0, np.isfinite(y0).all(axis=1)


def _simulate(config, resolved, theta, y0, progress, observe=None):
    """Clean observations ``(n, time, channel)``, the rejection reason of each record (``None``
    when accepted) and the initial states (``y0``, or those of the start function)."""
    n = theta.shape[0]
    no_start = np.zeros(n, dtype=bool)
    if resolved.kind == "function":
        obs = map_chunked(
            observe or jax.jit(jax.vmap(make_observer(config, resolved))),
            (theta,),
            chunk_size=config.chunk_size,
            progress=progress,
            desc="simulate",
        )
        obs = np.asarray(obs, dtype=np.float64)
        reasons = [None] * n
    else:
        model = resolved.model
        full = np.broadcast_to(np.asarray(model.params), (n, len(model.param_names))).copy()
        full[:, list(resolved.param_index)] = theta
        if resolved.start is not None:
            y0, found = _start_states(config, resolved, full, progress)
            no_start = ~found
            y0 = np.where(found[:, None], y0, resolved.y0)  # simulated, then rejected below
        batch = model.with_params(jnp.asarray(full))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # failures are counted by reason below
            sims = simulate_batch(
                batch,
                jnp.asarray(y0),
                jnp.asarray(config.times),
                chunk_size=config.chunk_size,
                progress=progress,
            )
        obs = np.asarray(sims.obs, dtype=np.float64)[..., list(resolved.channel_index)]
        ok = np.asarray(sims.success)
        if isinstance(model, AbstractSwitchingModel):
            status = np.asarray(sims.status)
            reasons = [None if ok[i] else model.status_names[int(status[i])] for i in range(n)]
        else:
            reasons = [None if ok[i] else "solver failure or non-finite state" for i in range(n)]
    finite = np.isfinite(obs).reshape(n, -1).all(axis=1)
    reasons = [r if r is not None or finite[i] else "non-finite observations" for i, r in enumerate(reasons)]
    lost = f"no initial state from {resolved.start!r}"  # e.g. a walker without a gait
    reasons = [lost if no_start[i] else r for i, r in enumerate(reasons)]
    return obs, reasons, y0


def _noise_sd(config, clean):
    """The noise's standard deviation for each record and channel, ``(N, 1, ...)``: ``noise``
    times the record's channel sd over time when the noise is relative, else ``noise``."""
    if config.relative:
        return config.noise * clean.std(axis=1, keepdims=True)
    return np.full_like(clean[:, :1], config.noise, dtype=np.float64)


def _add_noise(config, clean, key):
    eps = np.asarray(jax.random.normal(key, clean.shape, dtype=jnp.float64))
    return clean + _noise_sd(config, clean) * eps


def simulate_records(
    config: StudyConfig,
    resolved: ResolvedModel,
    *,
    key: Key,
    progress: bool = True,
    say: Callable[..., None] = print,
    store: str | Path | None = None,
) -> StudyRecords:
    """The study's data step: the accepted clean records.

    ``resolved`` comes from :func:`jaxid.study.config.validate`; ``key`` draws the parameters
    (the gait data set draws from ``config.seed`` instead). For the walker on its gait the records
    are the gait data set's own (:mod:`jaxid.study.gait_records`), else they are simulated in
    blocks of ``4 * chunk_size`` candidates (:func:`jaxid.study.records.collect`); with
    ``store``, written there and resumed.

    **Returns:** a :class:`~jaxid.study.records.StudyRecords` (``theta``, ``y0``, ``clean``,
    ``rejected``, ``candidates``, and ``dataset``: the :class:`jaxid.walker.data.GaitDataset`, each
    record's gait with it, or ``None``).
    """
    gait = gait_dataset_options(config, resolved)
    if gait is not None:
        say("  records on their periodic gaits (jaxid.generate_gait_dataset)", flush=True)
        return gait_records(config, gait, progress=progress, store=store)
    # a function model's program, built once: compiled once for every block
    observe = jax.jit(jax.vmap(make_observer(config, resolved))) if resolved.kind == "function" else None
    return collect(
        config.records,
        lambda k, n: _draw(config, resolved, k, n),
        lambda theta, y0: _simulate(config, resolved, theta, y0, progress, observe),
        key=key,
        block=4 * config.chunk_size,
        store=store,
        config=data_config(config),
        say=say,
    )


# ---------------------------------------------------------------------------------------------
# 2. identifiability


@dataclass(frozen=True)
class IdentifiabilityMap:
    """The Fisher analysis at prior draws.

    - ``names``; ``thetas`` ``(draws, param)``; ``ranks`` ``(draws,)`` (``-1`` where the
      simulation failed); ``crb_relative`` ``(draws, param)`` (``inf`` where not identifiable);
    - ``rank``: the most common rank; ``scaling``, ``scaling_text``: the scaling symmetries and
      ``monomials``, ``monomial_text``: the identifiable monomials of the most common analysis
      (``exponents`` as integer rows); ``monomial_crb_relative`` ``(draws, monomial)``;
    - ``non_scaling``: null directions that are not scaling symmetries (no monomial describes
      them); ``scale``: ``"log"`` or ``"natural"``; ``reports``: the
      :class:`~jaxid.identify.IdentifiabilityReport` of each successful draw;
    - ``sobol_total``: ``{name: aggregated total Sobol index}``; empty, with the reason in
      ``sobol_error``, where the model fails somewhere in the prior (the Saltelli estimator needs
      every sample; a walker parameter set without a gait or one that falls is such a failure).
    """

    names: tuple[str, ...]
    thetas: Float[np.ndarray, "draw param"]
    ranks: Int[np.ndarray, " draw"]
    crb_relative: Float[np.ndarray, "draw param"]
    rank: int
    scaling: list[list[int]]
    scaling_text: list[str]
    monomials: list[list[int]]
    monomial_text: list[str]
    monomial_crb_relative: Float[np.ndarray, "draw monomial"]
    non_scaling: int
    scale: str
    reports: list[IdentifiabilityReport | None] = field(repr=False)
    sobol_total: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    sobol_error: str | None = None

    @property
    def identifiable_fraction(self) -> dict[str, float]:
        """Per parameter, the fraction of analysed draws with a finite Cramer-Rao bound."""
        ok = self.ranks >= 0
        return {n: float(np.mean(np.isfinite(self.crb_relative[ok, i]))) for i, n in enumerate(self.names)}

    def why(self, name: str) -> str:
        """Why a parameter is or is not identifiable, in words."""
        i = self.names.index(name)
        frac = self.identifiable_fraction[name]
        if frac == 1.0:
            return "identifiable at every draw"
        moved = [t for c, t in zip(self.scaling, self.scaling_text, strict=True) if c[i] != 0]
        if moved:
            reason = "scaling symmetry " + "; ".join(moved)
        elif self.non_scaling:
            reason = f"{self.non_scaling} non-scaling null direction(s)"
        else:
            reason = "rank deficient at some draws"
        return reason if frac == 0 else f"{reason} at {1 - frac:.0%} of the draws"


def identifiability_at(
    config: StudyConfig,
    resolved: ResolvedModel,
    theta_draws: Float[np.ndarray, "draw param"],
    y0_draws: Float[np.ndarray, "draw state"] | None = None,
    *,
    progress: bool = False,
    say: Callable[..., None] = print,
) -> IdentifiabilityMap:
    """The study's identifiability step at given parameter points: :func:`jaxid.identify.analyze`
    of one record (the study's channels, save times and noise; initial states ``y0_draws`` or the
    configured start, from :func:`jaxid.study.config.build_start`) at each row of
    ``theta_draws``, aggregated into an :class:`IdentifiabilityMap` (without Sobol indices).
    :func:`identifiability_map` calls it at prior draws."""
    opts = config.identifiability
    names = config.params.names
    lo, _ = config.params.support
    scale = "log" if np.all(lo > 0) else "natural"
    reports, ranks, crbs, failures = [], [], [], Counter()
    for i, theta in enumerate(theta_draws):
        fn = make_observer(config, resolved, y0=None if y0_draws is None else y0_draws[i])
        exp = observer_experiment(
            fn, config.noise, relative=config.relative, param_names=names, name=config.name
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rep = analyze(
                    exp,
                    theta,
                    scale=scale,
                    check_points=opts.check_points,
                    spread=opts.spread,
                    key=jax.random.key(i),
                )
        except ValueError as err:
            failures[str(err).split(";")[0][-120:]] += 1
            reports.append(None)
            ranks.append(-1)
            crbs.append(np.full(len(names), np.nan))
            continue
        reports.append(rep)
        ranks.append(rep.rank)
        crbs.append(np.asarray(rep.crb_relative, dtype=float))
        if progress:
            say(f"  draw {i + 1}/{len(theta_draws)}: rank {rep.rank} of {len(names)}", flush=True)
    ranks = np.array(ranks)
    good = [r for r in reports if r is not None]
    if not good:
        raise RuntimeError(f"run: the Fisher analysis failed at every prior draw: {dict(failures)}")
    modal_rank = Counter(r.rank for r in good).most_common(1)[0][0]

    def key(r):
        c = r.combinations
        return (r.rank, tuple(c.monomial_text) if c else ())

    modal = Counter(key(r) for r in good if r.rank == modal_rank).most_common(1)[0][0]
    rep0 = next(r for r in good if key(r) == modal)
    comb = rep0.combinations
    mono_text = list(comb.monomial_text) if comb else []
    mono_crb = np.full((len(reports), len(mono_text)), np.nan)
    for i, r in enumerate(reports):
        if r is not None and r.combinations is not None:
            values = dict(zip(r.combinations.monomial_text, r.monomial_crb_relative, strict=True))
            mono_crb[i] = [values.get(t, np.inf) for t in mono_text]
    return IdentifiabilityMap(
        names=names,
        thetas=np.asarray(theta_draws),
        ranks=ranks,
        crb_relative=np.array(crbs),
        rank=int(modal_rank),
        scaling=[list(c) for c in comb.scaling] if comb else [],
        scaling_text=list(comb.scaling_text) if comb else [],
        monomials=[list(map(int, m)) for m in comb.monomials] if comb else [],
        monomial_text=mono_text,
        monomial_crb_relative=mono_crb,
        non_scaling=int(comb.non_scaling) if comb else 0,
        scale=scale,
        reports=reports,
        failures=dict(failures),
    )


def identifiability_map(
    config: StudyConfig, *, key: Key | None = None, sobol: bool = True, progress: bool = False
) -> IdentifiabilityMap:
    """Step 2 alone: :func:`jaxid.identify.analyze` at ``config.identifiability.draws`` prior draws
    (from ``key``, default from ``config.seed``) and, with ``sobol``, the aggregated total Sobol
    indices (``sobol_total``; where the model fails somewhere in the prior they are not computed
    and ``sobol_error`` says why, instead of raising)."""
    return _identifiability_map(config, build_start(config, validate(config)), key, sobol, progress)


def _identifiability_map(config, resolved, key, sobol, progress) -> IdentifiabilityMap:
    key = jax.random.split(jax.random.key(config.seed), 4)[2] if key is None else key
    say = print if progress else (lambda *a, **k: None)
    draws_theta, draws_y0 = _draw(config, resolved, key, config.identifiability.draws)
    idm = identifiability_at(config, resolved, draws_theta, draws_y0, progress=progress, say=say)
    if sobol:
        try:
            idm = replace(idm, sobol_total=_sobol(config, resolved, progress=False))
        except NonFiniteError as err:  # reported, and the rest of the study goes on
            idm = replace(idm, sobol_error=str(err))
            say(f"  total Sobol indices not computed: {err}", flush=True)
    return idm


def _sobol(config, resolved, progress) -> dict[str, float]:
    """Aggregated total Sobol indices of every unknown (studied parameters and drawn initial
    states) on the noise-free observations, under the prior (through its quantile transform)."""
    prior = _augmented_prior(config, resolved)
    fn = make_observer(config, resolved, augmented=True)
    eps = 1e-9

    def on_cube(u):
        return fn(prior.quantile(jnp.clip(u, eps, 1 - eps))).ravel()

    n = 1 << max(3, int(np.ceil(np.log2(config.identifiability.sobol_samples))))
    bounds = {name: (0.0, 1.0) for name in prior.names}
    idx = sobol_indices(
        on_cube, bounds, n, seed=config.seed, bootstrap=50, chunk_size=config.chunk_size, progress=progress
    )
    var = np.asarray(idx.variance, dtype=float).ravel()
    st = np.asarray(idx.ST, dtype=float).reshape(len(prior.names), -1)
    weights = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
    return {name: float(st[i] @ weights) for i, name in enumerate(prior.names)}


# ---------------------------------------------------------------------------------------------
# 3. estimators


def _train(config, x, targets, names, log, progress, say, desc):
    out = train_estimator(
        x,
        targets,
        names,
        config.estimators,
        split=config.split,
        seed=config.seed,
        log=log,
        progress=progress,
        say=say,
        desc=desc,
    )
    if out[3] is None:
        raise ValueError(
            f"run: the test split holds {len(out[1])} record(s), too few to score an estimator; raise "
            "records or the split's test fraction"
        )
    return out


def _posterior_network(config, x, theta, test, progress, say):
    """The optional posterior network (:func:`jaxid.nn.train_posterior`, the point networks'
    embedding and split, draws restricted to the prior): its mean's metrics and its calibration
    (:func:`jaxid.inference.calibrate`) on the test split, and the draws ``(test, sample, param)``."""
    from ..inference import calibrate
    from ..nn import train_posterior

    est, names = config.estimators, config.params.names
    spec = network_spec(est)
    arch = spec.pop("arch")
    tc = train_config(est, split=config.split, seed=config.seed, progress=progress, members=1)
    say(f"  training the posterior network ({arch} embedding, conditional flow)", flush=True)
    res = train_posterior(x, theta, names, arch=arch, config=tc, prior=config.params, **spec)
    if not np.array_equal(res.split["test"], test):
        raise RuntimeError("run: the posterior network's test split differs from the point networks'")
    key = jax.random.fold_in(jax.random.key(config.seed), 11)
    draws = np.asarray(res.estimator.sample(x[test], est.posterior_samples, key=key), dtype=np.float64)
    cal = calibrate(theta[test], draws, names=names)
    out = dict(
        names=list(names),
        metrics=regression_metrics(theta[test], draws.mean(axis=1), names).to_dict(),
        coverage={
            f"{lv:g}": dict(zip(names, map(float, cal.coverage[i]), strict=True))
            for i, lv in enumerate(cal.levels)
        },
        rank_pvalue=dict(zip(names, map(float, cal.pvalue), strict=True)),
        samples=est.posterior_samples,
        training=dict(
            epochs_run=res.history["epochs_run"],
            best_epoch=res.history["best_epoch"],
            seconds=round(res.seconds, 2),
        ),
    )
    return out, draws


def _ceiling(config, idm, resolved, theta_test, rejected) -> dict | None:
    """The scaling ceiling (:func:`jaxid.nn.scaling_ceiling`) on the test records where it
    applies: one scaling symmetry and no other null direction, no drawn initial-state component,
    every moving parameter on a bounded positive support. It is the posterior mean given the
    identifiable monomials known exactly, so its R^2 bounds the Bayes limit's from above; an
    estimator at the ceiling is at the limit."""
    if len(idm.scaling) != 1 or idm.non_scaling or resolved.drawn_states or idm.scale != "log":
        return None
    # the symmetry must hold at every analysed draw (where the rank is higher the data carry more
    # than the monomials there), and the kept records must follow the prior (no rejections)
    good = [r for r in idm.reports if r is not None]
    same = all(
        r.rank == idm.rank and r.combinations is not None and r.combinations.scaling == idm.scaling
        for r in good
    )
    if not same or np.any(idm.ranks < 0):
        return dict(error="the scaling symmetry does not hold at every analysed prior draw")
    if rejected:
        return dict(
            error=f"{sum(rejected.values())} records were rejected: the kept records do not follow the prior"
        )
    names = config.params.names
    moving = [n for n, c in zip(names, idm.scaling[0], strict=True) if c != 0]
    boxes = {n: tuple(float(v) for v in config.params[n].support) for n in names}
    if not all(0 < boxes[n][0] and np.isfinite(boxes[n][1]) for n in moving):
        return None
    uniform = all(isinstance(d, Uniform) for d in config.params.dists)
    log_prior = None if uniform else (lambda t: np.asarray(config.params.log_prob(jnp.asarray(t))))
    try:
        est = scaling_ceiling(theta_test, idm.scaling[0], boxes, names, log_prior=log_prior)
    except ValueError as err:
        return dict(error=str(err))
    return dict(
        scaling=idm.scaling_text[0],
        records=int(theta_test.shape[0]),
        metrics=regression_metrics(theta_test, est, names).to_dict(),
    )


# ---------------------------------------------------------------------------------------------
# the result


@dataclass(frozen=True)
class StudyResult:
    """What :func:`run` returns (and writes to ``out``).

    - ``config``; ``data``: records, candidates, rejected records by reason, seconds;
    - ``identifiability``: the :class:`IdentifiabilityMap` (with ``sobol_total``);
    - ``combinations``: ``(name, exponents)`` of the combinations estimated;
    - ``estimators``: per estimator (``params``, ``combinations``) the test metrics and training
      summary; ``bayes``: the Bayes reference's risk and the comparisons (``None`` if skipped);
    - ``table``: one row per parameter and per combination (see :mod:`jaxid.study.report`);
    - ``seconds``; ``out``: the folder written, or ``None``; ``figures``: their file names;
    - ``design``: the :class:`~jaxid.study.DesignRanking` of the ``[design]`` candidates, or ``None``.
    """

    config: StudyConfig
    data: dict[str, Any]
    identifiability: IdentifiabilityMap
    combinations: tuple[tuple[str, tuple[int, ...]], ...]
    estimators: dict[str, Any]
    bayes: dict[str, Any] | None
    table: tuple[dict[str, Any], ...]
    seconds: float
    out: Path | None = None
    figures: tuple[str, ...] = ()
    design: DesignRanking | None = None

    def to_dict(self) -> dict:
        """Every number of the study, JSON-ready."""
        idm = self.identifiability
        return jsonable(
            dict(
                jaxid_version=__version__,
                config=self.config.to_dict(),
                data=self.data,
                identifiability=dict(
                    names=list(idm.names),
                    scale=idm.scale,
                    thetas=idm.thetas.tolist(),
                    ranks=idm.ranks.tolist(),
                    rank=idm.rank,
                    num_params=len(idm.names),
                    crb_relative=idm.crb_relative.tolist(),
                    scaling=idm.scaling,
                    scaling_text=idm.scaling_text,
                    monomials=dict(zip(idm.monomial_text, idm.monomials, strict=True)),
                    monomial_crb_relative=idm.monomial_crb_relative.tolist(),
                    non_scaling=idm.non_scaling,
                    identifiable_fraction=idm.identifiable_fraction,
                    sobol_total=idm.sobol_total,
                    sobol_error=idm.sobol_error,
                    failures=idm.failures,
                ),
                combinations={n: list(e) for n, e in self.combinations},
                estimators=self.estimators,
                bayes=self.bayes,
                table=list(self.table),
                figures=list(self.figures),
                seconds=self.seconds,
                design=None if self.design is None else self.design.to_dict(),
            )
        )

    def to_markdown(self) -> str:
        from .report import markdown

        return markdown(self)

    def __str__(self) -> str:
        return self.to_markdown()


def run(config: StudyConfig, *, out: str | Path | None = None, progress: bool = True) -> StudyResult:
    """Run the study of ``config`` (steps in the module docstring) and return a
    :class:`StudyResult`; with ``out``, write ``report.md``, ``results.json``, the figures and
    ``records.npz`` (the records, their parameters and the configuration) there. The clean
    records are also written to the store ``records.zarr`` there block by block as they are
    simulated (:mod:`jaxid.study.records`): run the same call again after an interruption and the
    data step continues from the complete blocks, to the same records; a store made with another
    data configuration is refused (:class:`jaxid.data.store.ConfigMismatchError`).

    Needs float64 (``jax.config.update("jax_enable_x64", True)``): Fisher ranks and the Bayes
    reference are decided at relative precisions float32 does not have. Every configuration
    check runs before any simulation (an initial state that is a function of the parameters is
    built and evaluated at the centre of the priors first).
    """
    from . import report as report_mod

    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            "run: needs float64; call jax.config.update('jax_enable_x64', True) first (Fisher ranks "
            "and the Bayes reference need it)"
        )
    resolved = build_start(config, validate(config))
    say = print if progress else (lambda *a, **k: None)
    started = time.perf_counter()
    key = jax.random.key(config.seed)
    k_data, k_noise, k_id, k_bayes = jax.random.split(key, 4)
    names = config.params.names
    p = len(names)

    # 1. data
    say(f"[1/5] simulating {config.records} records of {config.model}", flush=True)
    t0 = time.perf_counter()
    store = None if out is None else Path(out) / "records.zarr"
    recs = simulate_records(config, resolved, key=k_data, progress=progress, say=say, store=store)
    theta, y0, clean, rejected, candidates = recs.theta, recs.y0, recs.clean, recs.rejected, recs.candidates
    gait_data = recs.dataset
    x = _add_noise(config, clean, k_noise)
    data = dict(
        records=int(theta.shape[0]),
        candidates=int(candidates),
        rejected=rejected,
        channels=list(resolved.channels),
        obs_shape=list(x.shape[1:]),
        records_from="jaxid.simulate_batch" if gait_data is None else "jaxid.generate_gait_dataset",
        seconds=round(time.perf_counter() - t0, 2),
    )

    # 2. identifiability across the prior, and global sensitivity
    say(f"[2/5] identifiability at {config.identifiability.draws} prior draws, Sobol indices", flush=True)
    t0 = time.perf_counter()
    idm = _identifiability_map(config, resolved, k_id, True, progress)
    data["identifiability_seconds"] = round(time.perf_counter() - t0, 2)
    combos = tuple(
        (t, tuple(e))
        for t, e in zip(idm.monomial_text, idm.monomials, strict=True)
        if np.count_nonzero(e) > 1
    )
    design = None
    if config.design is not None:
        from .design import study_design

        say(f"  experiment design: {len(config.design.candidates)} candidate addition(s)", flush=True)
        t0 = time.perf_counter()
        design = study_design(config, key=jax.random.fold_in(k_id, 1), resolved=resolved)
        data["design_seconds"] = round(time.perf_counter() - t0, 2)

    # 3. estimators
    say("[3/5] training the estimators", flush=True)
    log = idm.scale == "log"
    res_p, test, pred_p, met_p = _train(config, x, theta, names, log, progress, say, f"({', '.join(names)})")
    estimators = dict(
        params=dict(names=list(names), metrics=met_p, training=_summary(res_p)), test_records=len(test)
    )
    pred_c = targets_c = None
    if combos:
        c_names = tuple(n for n, _ in combos)
        targets_c = monomial_values(theta, [e for _, e in combos])
        res_c, test_c, pred_c, met_c = _train(
            config, x, targets_c, c_names, True, progress, say, f"({', '.join(c_names)})"
        )
        assert np.array_equal(test, test_c)  # one seeded split for both
        estimators["combinations"] = dict(
            names=list(c_names),
            exponents=[list(e) for _, e in combos],
            metrics=met_c,
            training=_summary(res_c),
        )

    estimators["ceiling"] = _ceiling(config, idm, resolved, theta[test], rejected)
    flow_draws = None
    if config.estimators.posterior:
        estimators["posterior"], flow_draws = _posterior_network(config, x, theta, test, progress, say)

    # 4. the Bayes limit
    bayes = None
    n_bayes = min(config.bayes.records, len(test))
    if n_bayes >= 2:
        say(f"[4/5] the Bayes reference on {n_bayes} test records", flush=True)
        t0 = time.perf_counter()
        sub = test[:n_bayes]
        prior = _augmented_prior(config, resolved)
        exp = observer_experiment(
            make_observer(config, resolved, augmented=True),
            config.noise,
            relative=config.relative,
            param_names=prior.names,
            name=config.name,
        )
        post = sample_posterior(
            exp,
            x[sub],
            prior,
            key=k_bayes,
            method=config.bayes.method,
            chains=config.bayes.chains,
            warmup=config.bayes.warmup,
            draws=config.bayes.draws,
            thin=config.bayes.thin,
            starts=config.bayes.starts,
            fits=config.bayes.fits,
            ess_min=config.bayes.ess_min,
            chunk_size=min(n_bayes, 64),  # no padding of a small subset to a full chunk
            coords="log" if np.all(prior.support[0] > 0) else "auto",  # scaling ridges are straight in logs
            progress=progress,
        )
        truth_aug = (
            theta[sub]
            if y0 is None or not resolved.drawn_states
            else np.concatenate(
                [theta[sub], y0[sub][:, [resolved.state_names.index(s) for s in resolved.drawn_states]]],
                axis=1,
            )
        )
        bayes = dict(
            records=n_bayes,
            records_flagged=int((~post.ok).sum()),
            records_used=int(post.ok.sum()),
            # of the flagged: the chains explain the record far worse than its noise allows
            # (a missed global mode; raise bayes.starts and bayes.fits)
            records_misfit=int((post.chi2_pvalue < post.settings["chi2_pvalue_min"]).sum()),
        )
        if not post.ok.any():
            bayes["error"] = (
                "no record's posterior passed its diagnostics "
                f"(R-hat <= 1.05, ESS >= {config.bayes.ess_min:g}, the chains' residuals at their noise); "
                "raise bayes.draws or bayes.warmup, or bayes.starts and bayes.fits if the fits missed"
            )
            say(f"  {bayes['error']}", flush=True)
        else:
            risk = bayes_risk(post, truth_aug)
            post_p = post.transform(lambda s: s[..., :p], names)
            cmp_p = compare(post_p, theta[sub], estimates=pred_p[:n_bayes])
            bayes.update(risk=risk.as_dict(), params=cmp_p.rows())
            if flow_draws is not None:
                bayes["posterior_network"] = compare(post_p, theta[sub], samples=flow_draws[:n_bayes]).rows()
        bayes["seconds"] = round(time.perf_counter() - t0, 2)
        if combos and post.ok.any():
            exps = np.array([e for _, e in combos], dtype=float)
            post_c = post.transform(lambda s: np.exp(np.log(s[..., :p]) @ exps.T), [n for n, _ in combos])
            cmp_c = compare(post_c, targets_c[sub], estimates=pred_c[:n_bayes])
            bayes["combinations"] = cmp_c.rows()
    else:
        say("[4/5] the Bayes reference: skipped (bayes.records < 2)", flush=True)

    # 5. report
    say("[5/5] report", flush=True)
    table = report_mod.table(config, idm, combos, estimators, bayes)
    result = StudyResult(
        config=config,
        data=data,
        identifiability=idm,
        combinations=combos,
        estimators=estimators,
        bayes=bayes,
        table=tuple(table),
        seconds=round(time.perf_counter() - started, 1),
        design=design,
    )
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        figures = report_mod.figures(
            out, result, theta[test], pred_p, targets_c[test] if combos else None, pred_c
        )
        result = replace(result, out=out, figures=tuple(figures))
        with jio.atomic_open(out / "records.npz", "wb") as f:
            np.savez_compressed(
                f,
                obs=x,
                clean=clean,
                params=theta,
                param_names=np.array(names),
                y0=np.zeros((0,)) if y0 is None else y0,
                config=json.dumps(jsonable(config.to_dict())),
            )
        jio.atomic_write_text(out / "results.json", json.dumps(result.to_dict(), indent=2))
        jio.atomic_write_text(out / "report.md", result.to_markdown())
        say(f"wrote {out / 'report.md'}, {out / 'results.json'} and {len(figures)} figure(s)", flush=True)
    return result


def _summary(res) -> dict:
    h = res.history
    return dict(epochs_run=h["epochs_run"], best_epoch=h["best_epoch"], seconds=round(res.seconds, 2))
