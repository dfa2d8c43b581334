r"""The gait study's posterior network: a conditional flow for ``(m, k, l0)``, its calibration, and
the ``(m, k)`` ridge it learns, with and without force plates.

A point network can only report the posterior mean along the ``m, k`` ridge; a posterior network
(:func:`jaxid.nn.train_posterior`) reports the ridge itself. On the study's test split:

- its posterior means are scored like the point network's, against the identifiability ceiling.
  With noise-free data the ceiling *is* the Bayes reference (the posterior given ``k/m`` and
  ``l0`` is the prior restricted to the scaling orbit, :func:`jaxid.nn.scaling_ceiling`); with
  noisy data it is an upper bound on the Bayes limit's :math:`R^2`;
- its calibration (:func:`jaxid.inference.calibrate`): SBC ranks and the expected coverage of
  central credible intervals;
- the angle between its principal axis in ``(log m, log k)`` and the Fisher null direction
  ``(1, 1)`` (:func:`jaxid.inference.null_axis_angle`): near 0 when it has learned the ridge;
- with the ground reaction forces added, the same flow trained on all channels: the ridge must
  collapse, measured as the ratio of the posterior sds of ``m``.

Each flow's embedding starts from a point network of its channels (``embedding_from`` of
:func:`jaxid.nn.train_posterior`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
from jaxtyping import Float

from ..inference import calibrate, null_axis_angle
from ..nn import Estimator, TrainConfig, regression_metrics, scaling_ceiling, train, train_posterior
from ..plots import agg_pyplot
from .gait import GaitStudyConfig
from .results import save_figure

PARAMS = ("m", "k", "l0")


def _flow(x, params, config, desc, say, priors, point=None):
    """The flow of ``desc``, its embedding started from a point network of the same records
    (``point``, or one trained here): see :func:`jaxid.nn.train_posterior`'s ``embedding_from``;
    its draws are restricted to the prior box ``priors``."""
    from ..study.estimators import train_config  # (jaxid.study imports this package)

    split = TrainConfig().split  # the default split, as before the study's options were shared
    tc = train_config(
        config.estimator_options(), split=split, seed=config.seed, progress=config.progress, members=1
    )
    opts = dict(depth=config.depth, width=config.width, activation=config.activation)
    if point is None:
        say(f"  training the point network {desc} the flow's embedding starts from", flush=True)
        point = train(x, params, PARAMS, arch="mlp", config=tc, **opts).estimator
    say(f"  training the posterior network {desc} (mlp embedding, {x.shape[0]} records)", flush=True)
    return train_posterior(
        x,
        params,
        PARAMS,
        arch="mlp",
        config=tc,
        transformer="spline",
        embedding_from=point,
        prior=priors,
        **opts,
    )


def posterior_study(
    config: GaitStudyConfig,
    x_kin: Float[np.ndarray, "batch time channel"],
    x_all: Float[np.ndarray, "batch time all_channel"] | None,
    params: Float[np.ndarray, "batch param"],
    scaling: Sequence[int] | None,
    priors: dict[str, tuple[float, float]],
    out: Path,
    say: Callable[..., object] = print,
    point: Estimator | None = None,
    point_all: Estimator | None = None,
) -> tuple[dict, list[str], tuple[np.ndarray, np.ndarray]]:
    """Train and score the posterior network(s); returns ``(results, figures, (test, means))``
    with ``means`` the kinematic flow's posterior means of the ``test`` records (for the Bayes
    reference, :func:`jaxid.experiments.gait_bayes.bayes_reference`).

    ``x_all`` holds every channel (kinematics and forces) or is ``None``; ``scaling`` is the
    kinematic Fisher analysis's scaling symmetry (``[1, 1, 0]``) or ``None``; ``point`` the
    study's kinematic point network if it can start the flow's embedding (an MLP of one member
    trained on ``x_kin``), else one is trained. Each flow's embedding starts from a point network
    of its own channels: trained from scratch on its likelihood alone, the flow with forces kept
    the kinematic ridge (sd of m 0.99 of the kinematic one at 10^4 records, 200 epochs).
    """
    n = config.posterior_samples
    flow = _flow(x_kin, params, config, "(x, y)", say, priors, point)
    test = flow.split["test"]
    key = jax.random.fold_in(jax.random.key(config.seed), 11)
    draws = np.asarray(flow.estimator.sample(x_kin[test], n, key=key))
    truth = params[test]
    cal = calibrate(truth, draws, names=PARAMS)
    metrics = regression_metrics(truth, draws.mean(axis=1), PARAMS).to_dict()
    ceiling = scaling_ceiling(truth, scaling, priors, PARAMS) if scaling is not None else truth
    ceil_metrics = regression_metrics(truth, ceiling, PARAMS).to_dict()
    angle = null_axis_angle(draws[..., :2], [1.0, 1.0]) if scaling is not None else None
    results = dict(
        test_records=len(test),
        samples=n,
        metrics=metrics,
        ceiling=ceil_metrics,
        bayes_reference=(
            "the ceiling: with noise-free data the posterior given k/m and l0 is the prior on the orbit"
            if config.noise == 0
            else "not sampled here; the noise-free ceiling bounds the Bayes limit's R^2 from above"
        ),
        coverage={
            f"{lv:g}": dict(zip(PARAMS, map(float, cov), strict=True))
            for lv, cov in zip(cal.levels, cal.coverage, strict=True)
        },
        coverage_sd={f"{lv:g}": float(sd) for lv, sd in zip(cal.levels, cal.coverage_sd, strict=True)},
        max_coverage_error=dict(zip(PARAMS, map(float, cal.max_coverage_error()), strict=True)),
        rank_pvalue=dict(zip(PARAMS, map(float, cal.pvalue), strict=True)),
        null_angle_deg=None if angle is None else float(np.median(angle)),
        posterior_sd=dict(zip(PARAMS, map(float, np.median(draws.std(axis=1), axis=0)), strict=True)),
        training=dict(epochs_run=flow.history["epochs_run"], seconds=round(flow.seconds, 2)),
        embedding="started from a point network of the same channels",
    )
    forces_draws = None
    if x_all is not None:
        flow_f = _flow(x_all, params, config, "(x, y, grf_x, grf_y)", say, priors, point_all)
        forces_draws = np.asarray(flow_f.estimator.sample(x_all[test], n, key=key))
        sd_f = np.median(forces_draws.std(axis=1), axis=0)
        results["forces"] = dict(
            metrics=regression_metrics(truth, forces_draws.mean(axis=1), PARAMS).to_dict(),
            posterior_sd=dict(zip(PARAMS, map(float, sd_f), strict=True)),
            m_sd_ratio=float(np.median(forces_draws[..., 0].std(axis=1) / draws[..., 0].std(axis=1))),
            training=dict(epochs_run=flow_f.history["epochs_run"], seconds=round(flow_f.seconds, 2)),
            embedding="started from a point network of the same channels",
        )
    figures = _figures(out, cal, truth, draws, forces_draws, priors)
    return results, figures, (np.asarray(test), draws.mean(axis=1))


def _figures(out: Path, cal, truth, draws, forces_draws, priors) -> list[str]:
    plt = agg_pyplot()
    fig = cal.plot()
    save_figure(fig, out / "posterior_calibration.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    records = min(3, len(truth))
    fig, axes = plt.subplots(1, records, figsize=(4.2 * records, 3.8), squeeze=False)
    (m_lo, m_hi), (k_lo, k_hi) = priors["m"], priors["k"]
    for ax, r in zip(axes[0], range(records), strict=True):
        ax.scatter(draws[r, :, 0], draws[r, :, 1], s=3, alpha=0.3, label="flow, (x, y)")
        if forces_draws is not None:
            ax.scatter(forces_draws[r, :, 0], forces_draws[r, :, 1], s=3, alpha=0.5, label="flow, + forces")
        s = np.linspace(-0.5, 0.5, 200)
        orbit = truth[r, :2][None, :] * np.exp(s)[:, None]  # the Fisher null direction (1, 1) in logs
        ax.plot(orbit[:, 0], orbit[:, 1], "k--", lw=1, label="scaling orbit (null direction)")
        ax.plot(*truth[r, :2], "r*", ms=10, label="truth")
        ax.set(
            xlim=(m_lo, m_hi), ylim=(k_lo, k_hi), xlabel="m [kg]", ylabel="k [N/m]", title=f"test record {r}"
        )
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    save_figure(fig, out / "posterior_pairs.png", dpi=110)
    plt.close(fig)
    return ["posterior_calibration.png", "posterior_pairs.png"]
