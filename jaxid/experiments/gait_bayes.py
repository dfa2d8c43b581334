r"""The gait study's Bayes reference when the records are noisy.

With noise-free records the identifiability ceiling (:func:`jaxid.nn.scaling_ceiling`) is the
Bayes reference: the posterior given the record is the prior restricted to the scaling orbit
``(m, k) -> (s m, s k)``. With noise :math:`\sigma_c = f\,\mathrm{sd}_c` on each channel ``c``
(``f`` the study's ``noise`` fraction, :math:`\mathrm{sd}_c` the channel's sd over every record
and time, as :func:`jaxid.walker.data.add_noise` adds it) the posterior is wider than the orbit,
and the ceiling only bounds the Bayes limit's :math:`R^2` from above. This module samples it:

.. math::

    p(m, k, l_0 \mid y) \propto \pi(m, k, l_0) \prod_{t, c}
    \mathcal N\!\left(y_{tc};\ h_c(x(t; m, k, l_0)),\ \sigma_c^2\right),

with the uniform prior box of the data set, the kinematic channels ``x, y`` at the study's save
times, and every record starting on its own periodic gait (the initial state a function of the
parameters): the study pipeline's observer of :meth:`GaitStudyConfig.study_config`
(:func:`jaxid.study.make_observer`).
:func:`jaxid.inference.sample_posterior` samples it for the first ``bayes_records`` test records
(in log coordinates, where the scaling ridge is straight); :func:`jaxid.inference.bayes_risk` turns
the posterior means into the Bayes limit's :math:`R^2` per parameter, and
:func:`jaxid.inference.compare` sets the point network against it (recovered, limited by the data,
limited by learning, or inconclusive within the sampling error of the records). Records whose
chains fail their diagnostics are counted and left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import jax
import numpy as np
from jaxtyping import Float, Int

from ..identify import Experiment
from ..inference import bayes_risk, compare, sample_posterior
from .gait import GaitStudyConfig

PARAMS = ("m", "k", "l0")
KINEMATICS = ("x", "y")


def kinematic_experiment(config: GaitStudyConfig, noise_sd: Float[np.ndarray, " 2"]) -> Experiment:
    """The study's kinematic record as an experiment on ``(m, k, l0)``: the study pipeline's
    observer (:func:`jaxid.study.make_observer`: the walker started on its gait, Newton from a table
    of gaits over the priors' ``K = k l0 / (m g)``), observed through ``x, y`` at the save times
    with absolute noise ``noise_sd`` per channel."""
    from ..study.config import build_start, validate
    from ..study.pipeline import make_observer, observer_experiment

    study = config.study_config(KINEMATICS)
    resolved = build_start(study, validate(study))
    fn = make_observer(study, resolved)
    return observer_experiment(fn, np.asarray(noise_sd, float), param_names=PARAMS, name="x+y")


def bayes_reference(
    config: GaitStudyConfig,
    x_kin: Float[np.ndarray, "records time 2"],
    clean_kin: Float[np.ndarray, "records time 2"],
    params: Float[np.ndarray, "records 3"],
    test: Int[np.ndarray, " test"],
    predictions: Float[np.ndarray, "test 3"],
    priors: dict,
    *,
    combinations: tuple[Sequence[str], Sequence[Sequence[int]], Float[np.ndarray, "test c"]] | None = None,
    flow: tuple[Int[np.ndarray, " flow_test"], Float[np.ndarray, "flow_test 3"]] | None = None,
    say: Callable[..., None] = print,
) -> dict:
    """Sample the Bayes reference of the first ``config.bayes_records`` test records (module
    docstring) and compare the point network's ``predictions`` (for ``test``, in its order) with
    it; ``combinations``: ``(names, exponents, predictions)`` of the combination network (monomials
    of ``m, k, l0``, on the same test records), compared with the reference's posterior of each
    monomial; ``flow``: ``(records, means)``, the posterior network's means of those record
    indices, compared where they hold every sampled record. Returns the JSON-ready section of the
    study's results."""
    started = time.perf_counter()
    n = min(config.bayes_records, len(test))
    sub = np.asarray(test[:n])
    noise_sd = config.noise * np.std(np.asarray(clean_kin, np.float64), axis=(0, 1))
    exp = kinematic_experiment(config, noise_sd)
    say(f"  Bayes reference of {n} test records (noise sd {np.round(noise_sd, 4)} m)", flush=True)
    post = sample_posterior(
        exp,
        np.asarray(x_kin[sub], np.float64),
        {p: priors[p] for p in PARAMS},
        key=jax.random.fold_in(jax.random.key(config.seed), 13),
        draws=config.bayes_draws,
        warmup=config.bayes_warmup,
        coords="log",
        chunk_size=n,  # one chunk: no padding of a small subset
        progress=config.progress,
    )
    out = dict(
        records=n,
        records_used=int(post.ok.sum()),
        records_flagged=int((~post.ok).sum()),
        noise_sd=dict(zip(KINEMATICS, map(float, noise_sd), strict=True)),
        sampler=dict(
            method="rwm",
            chains=post.samples.shape[1],
            draws=config.bayes_draws,
            warmup="the sampler's default" if config.bayes_warmup is None else config.bayes_warmup,
        ),
        per_record=dict(
            index=[int(i) for i in sub],
            truth=params[sub].tolist(),
            mean=post.mean.tolist(),
            sd=post.sd.tolist(),
            ok=[bool(v) for v in post.ok],
            max_rhat=[float(v) for v in np.max(post.rhat, axis=1)],
            min_ess=[float(v) for v in np.min(post.ess, axis=1)],
        ),
    )
    if not post.ok.any():
        out["error"] = (
            "no record's posterior passed its diagnostics (R-hat <= 1.05, ESS >= 100, the chains' residuals "
            "at their noise); raise bayes_draws"
        )
    else:
        truth = params[sub]
        out["risk"] = bayes_risk(post, truth).as_dict()
        out["params"] = compare(post, truth, estimates=predictions[:n]).rows()
        if combinations is not None:
            names, exps, pred_c = combinations
            e = np.asarray(exps, float)
            post_c = post.transform(lambda s: np.exp(np.log(s) @ e.T), tuple(names))
            out["combinations"] = compare(post_c, np.exp(np.log(truth) @ e.T), estimates=pred_c[:n]).rows()
        if flow is not None:
            where = {int(i): j for j, i in enumerate(np.asarray(flow[0]))}
            if all(int(i) in where for i in sub):
                means = np.asarray(flow[1])[[where[int(i)] for i in sub]]
                out["flow"] = compare(post, truth, estimates=means).rows()
        out["posterior_sd"] = dict(
            zip(PARAMS, map(float, np.nanmedian(np.where(post.ok[:, None], post.sd, np.nan), 0)), strict=True)
        )
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out
