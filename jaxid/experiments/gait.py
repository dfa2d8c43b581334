r"""The gait identifiability study (``jaxid gait``): is the failure to recover a walker's mass
``m`` and leg stiffness ``k`` from its centre-of-mass trajectory a limit of the data or of the
learner?

It runs through the study pipeline (:mod:`jaxid.study`): the configuration is a
:class:`jaxid.study.StudyConfig` (:meth:`GaitStudyConfig.study_config`, the ``gait`` preset's form)
and steps 1 to 3 are the study's own; the ceiling, the posterior network and the sweeps are what
this study adds. Steps, all written to one output folder:

1. **Data** (:func:`jaxid.study.simulate_records`, for the walker on its gait the gait data set,
   :func:`jaxid.generate_gait_dataset`): ``(m, k, l0)`` drawn from the priors and each record
   made on its own periodic gait (``(x, y)``, plus the ground reaction forces when the ``forces``
   sweep is asked for); noise as a fraction of each channel's sd.
2. **Fisher analysis** (:func:`jaxid.study.identifiability_at`) at the centre of the priors, for
   one record with the study's channels and noise (1 % of each channel's sd when the data are
   noise-free, so that the Cramer-Rao bounds are finite numbers): rank, scaling symmetries,
   identifiable monomials (``k/m``, ``l0``), Cramer-Rao bounds.
3. **Estimators** (:func:`jaxid.study.train_estimator`): one for ``(m, k, l0)`` and one for the
   identifiable monomials the analysis found, on an 80/10/10 split, scored on the test split.
4. **Ceiling** (:func:`jaxid.nn.scaling_ceiling`): the posterior mean of each parameter on its
   scaling orbit, the least error any estimator of data that carry only the monomials can have.
5. **Sweeps**: added force channels (by default), and as options data size, noise level and
   architecture; each adds a table and a figure.

The report (``report.md``), every figure (``*.png``), all numbers (``results.json``) and the
trained estimators (``models/*.eqx``) land in ``out``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from .. import __version__
from .. import io as jio
from ..errors import check_positive_int, check_real_number
from ..identify.combinations import monomial_values
from ..identify.report import IdentifiabilityReport
from ..nn import ACTIVATIONS, ARCHITECTURES, regression_metrics, scaling_ceiling

# jaxid.study.config does not import this module's package (jaxid.study.pipeline does, through
# jaxid.experiments.results): importing the configuration here at module level is cycle-free
from ..study.config import EstimatorOptions, StudyConfig
from ..walker.data import add_noise
from .results import jsonable

SWEEPS = ("size", "noise", "arch", "forces")
PARAMS = ("m", "k", "l0")
FORCE_CHANNELS = ("grf_x", "grf_y")
DEFAULT_ARCHITECTURES = (
    {"label": "MLP 7x50 relu", "arch": "mlp", "depth": 7, "width": 50, "activation": "relu"},
    {"label": "MLP 3x50 relu", "arch": "mlp", "depth": 3, "width": 50, "activation": "relu"},
    {"label": "MLP 7x100 relu", "arch": "mlp", "depth": 7, "width": 100, "activation": "relu"},
    {"label": "MLP 7x50 tanh", "arch": "mlp", "depth": 7, "width": 50, "activation": "tanh"},
    {"label": "CNN 4x32", "arch": "cnn", "depth": 4, "width": 32},
    {"label": "GRU 64", "arch": "gru", "width": 64},
)


@dataclass
class GaitStudyConfig:
    """Options of the gait study (the command line's flags map onto these).

    - ``records``, ``duration``, ``save_dt``, ``noise`` (fraction of each channel's sd), ``seed``.
    - The main estimator: ``arch`` (``mlp``, ``cnn``, ``gru``), ``depth``, ``width``,
      ``activation``, ``members`` (ensemble size); training ``epochs``, ``batch_size``,
      ``learning_rate``, ``patience``.
    - ``fisher_noise``: noise fraction for the Cramer-Rao bounds when ``noise`` is 0.
    - ``posterior``: also train a posterior network (a conditional flow) for ``(m, k, l0)``, with
      its calibration and the ``(m, k)`` ridge it learns, with and without forces;
      ``posterior_samples`` draws per test record.
    - ``bayes_records``: with ``noise`` above 0, the Bayes reference (exact posterior samples,
      :mod:`jaxid.experiments.gait_bayes`) of this many test records, the limit the point network
      is compared with (0: not sampled); ``bayes_draws`` kept draws per chain, after
      ``bayes_warmup`` adaptation steps (default: :func:`jaxid.inference.sample_posterior`'s).
    - ``sweeps``: any of ``size``, ``noise``, ``arch``, ``forces`` (default ``forces``: the
      comparison that shows what breaks the symmetry); ``sizes`` (default a tenth, a
      third and all of ``records``), ``noise_levels``, ``architectures``.
    """

    records: int = 10_000
    duration: float = 15.0
    save_dt: float = 0.1
    noise: float = 0.0
    seed: int = 0
    arch: str = "mlp"
    depth: int = 7
    width: int = 50
    activation: str = "relu"
    members: int = 1
    epochs: int = 200
    batch_size: int = 100
    learning_rate: float = 1e-3
    patience: int = 30
    fisher_noise: float = 0.01
    sweeps: tuple[str, ...] = ("forces",)
    sizes: tuple[int, ...] | None = None
    noise_levels: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1)
    architectures: tuple[dict, ...] = field(default=DEFAULT_ARCHITECTURES)
    posterior: bool = True
    posterior_samples: int = 500
    bayes_records: int = 10
    bayes_draws: int = 1000
    bayes_warmup: int | None = None
    progress: bool = True

    @classmethod
    def full(cls, **overrides) -> GaitStudyConfig:
        """The seed study's setting: 10^6 records, 500 epochs, batch 1000 (for a GPU), with the
        data-size sweep over 10^4, 10^5 and 10^6 records."""
        base = dict(records=1_000_000, epochs=500, batch_size=1000, patience=50, sizes=(10**4, 10**5, 10**6))
        base.update(overrides)
        return cls(**base)

    def validate(self) -> None:
        where = "GaitStudyConfig"
        for name in (
            "records",
            "epochs",
            "batch_size",
            "members",
            "patience",
            "depth",
            "width",
            "posterior_samples",
            "bayes_draws",
        ):
            check_positive_int(where, name, getattr(self, name))
        if self.bayes_warmup is not None:
            check_positive_int(where, "bayes_warmup", self.bayes_warmup, minimum=10)
        check_positive_int(where, "bayes_records", self.bayes_records, minimum=0)
        steps = self.duration / self.save_dt if self.save_dt > 0 else math.nan
        if not (steps >= 1 and abs(steps - round(steps)) <= 1e-9 * max(1.0, steps)):
            raise ValueError(
                f"{where}: save_dt ({self.save_dt}) must divide duration ({self.duration}) into whole steps"
            )
        for name in ("learning_rate", "duration"):
            check_real_number(where, name, getattr(self, name), low=0)
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"{where}: arch must be one of {sorted(ARCHITECTURES)}, got {self.arch!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"{where}: activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )
        unknown = [s for s in self.sweeps if s not in SWEEPS]
        if unknown:
            raise ValueError(f"{where}: unknown sweeps {unknown}; choose from {list(SWEEPS)}")
        if not (math.isfinite(self.noise) and self.noise >= 0 and self.fisher_noise > 0):
            raise ValueError(f"{where}: noise must be >= 0 and fisher_noise > 0")
        if any(not lv >= 0 for lv in self.noise_levels):
            raise ValueError(f"{where}: noise_levels must be >= 0, got {self.noise_levels}")
        n_train = self.records - 2 * max(1, round(0.1 * self.records))
        if self.batch_size > n_train:
            raise ValueError(
                f"{where}: batch_size ({self.batch_size}) is larger than the training split "
                f"({n_train} of {self.records} records)"
            )
        smallest = math.ceil(self.batch_size / 0.8)
        for s in self.sizes or ():
            if not (isinstance(s, int) and smallest <= s <= self.records):
                raise ValueError(
                    f"{where}: sizes must be ints in [batch_size / 0.8, records] = [{smallest}, "
                    f"{self.records}] (80 % of a size is its training split), got {s!r}"
                )

    def estimator_options(self) -> EstimatorOptions:
        """The main estimator's options as the study's :class:`jaxid.study.EstimatorOptions`."""
        return EstimatorOptions(
            arch=self.arch,
            depth=self.depth,
            width=self.width,
            activation=self.activation,
            members=self.members,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
        )

    def study_config(self, channels: Sequence[str] = ("x", "y")) -> StudyConfig:
        """This study as a :class:`jaxid.study.StudyConfig` (the gait preset's form): the walker on
        its gait, ``(m, k, l0)`` uniform on the data set's priors, ``alpha0`` 69 degrees, the save
        grid ``0, save_dt, ..., duration``, ``channels``, relative noise (``noise``, or
        ``fisher_noise`` where the records are noise-free), the main estimator. Its data step is
        the gait data set (:mod:`jaxid.study.gait_records`)."""
        from ..priors import Prior, Uniform
        from ..study.config import BayesOptions, IdentifiabilityOptions
        from ..walker.data import DEFAULT_PRIORS

        n = round(self.duration / self.save_dt) + 1
        return StudyConfig(
            model="walker",
            name="gait",
            params=Prior({p: Uniform(*DEFAULT_PRIORS[p]) for p in PARAMS}),
            fixed={"alpha0": math.radians(69.0), "g": 9.81},
            initial_state="gait",
            times=tuple(float(t) for t in np.linspace(0.0, self.duration, n)),
            channels=tuple(channels),
            noise=self.noise if self.noise > 0 else self.fisher_noise,
            relative=True,
            records=self.records,
            chunk_size=min(1024, self.records + self.records // 16 + 8),
            seed=self.seed,
            estimators=self.estimator_options(),
            identifiability=IdentifiabilityOptions(draws=1, check_points=3, spread=0.02),
            bayes=BayesOptions(records=0),
        )

    def size_grid(self) -> tuple[int, ...]:
        if self.sizes:
            return tuple(sorted(set(self.sizes)))
        smallest = math.ceil(self.batch_size / 0.8)
        grid = {max(self.records // 10, smallest), self.records // 3, self.records}
        return tuple(sorted(s for s in grid if smallest <= s <= self.records))


def fisher_analysis(config: GaitStudyConfig, channels: Sequence[str]) -> tuple[IdentifiabilityReport, float]:
    """The identifiability report of one record at the centre of the priors: the study's
    identifiability step (:func:`jaxid.study.pipeline.identifiability_at`) at that one point, with
    the study's channels, relative noise and its record started on the walker's gait."""
    from ..study.config import build_start, validate
    from ..study.pipeline import identifiability_at

    study = config.study_config(channels)
    resolved = build_start(study, validate(study))
    centre = np.array([[float(np.mean(study.params[p].support)) for p in PARAMS]])
    idm = identifiability_at(study, resolved, centre, progress=False)
    if idm.reports[0] is None:
        raise RuntimeError(
            f"gait study: the Fisher analysis failed at the centre of the priors: {idm.failures}"
        )
    return idm.reports[0], study.noise


def _ceiling(params, report, priors):
    """Ceiling estimates of (m, k, l0) for the test records ``params`` given the report's scaling
    symmetries, their metrics and how they were made (estimates and metrics ``None`` when there
    are several symmetries: not computed)."""
    scal = report.combinations.scaling if report.combinations is not None else []
    if not scal:
        est, how = params.copy(), "the data identify every parameter: the ceiling is exact recovery"
    elif len(scal) > 1:
        return (
            None,
            None,
            f"{len(scal)} scaling symmetries: ceiling not computed (one-dimensional orbits only)",
        )
    else:
        est, how = (
            scaling_ceiling(params, scal[0], priors, PARAMS),
            f"posterior mean on the orbit of scaling {scal[0]}",
        )
    return est, regression_metrics(params, est, PARAMS).to_dict(), how


def _train_eval(
    x, targets, names, config: GaitStudyConfig, *, arch_spec=None, desc="", split=(0.8, 0.1, 0.1)
):
    """The study's estimator step (:func:`jaxid.study.estimators.train_estimator`) on raw targets."""
    from ..study.estimators import train_estimator

    return train_estimator(
        x,
        targets,
        names,
        config.estimator_options(),
        split=split,
        seed=config.seed,
        network=arch_spec,
        progress=config.progress,
        say=print if config.progress else (lambda *a, **k: None),
        desc=desc,
    )


def _summary(res) -> dict:
    h = res.history
    return dict(
        epochs_run=h["epochs_run"],
        best_epoch=h["best_epoch"],
        stopped_early=h["stopped_early"],
        best_val_loss=h["best_val_loss"],
        seconds=round(res.seconds, 2),
        samples_per_second=round(res.samples_per_second, 1)
        if math.isfinite(res.samples_per_second)
        else None,
    )


def run_gait_study(config: GaitStudyConfig, out: str | Path) -> dict:
    """Run the study and write the report to ``out``; returns the results (also ``results.json``)."""
    from ..study.config import validate
    from ..study.pipeline import simulate_records
    from . import gait_report

    config.validate()
    out = Path(out)
    (out / "models").mkdir(parents=True, exist_ok=True)
    say = print if config.progress else (lambda *a, **k: None)
    started = time.perf_counter()
    results: dict = dict(jaxid_version=__version__, config=_config_dict(config), devices=_devices())

    # 1. Data.
    channels = ("x", "y") + (FORCE_CHANNELS if "forces" in config.sweeps else ())
    say(f"[1/5] generating {config.records} gait records ({', '.join(channels)})", flush=True)
    t0 = time.perf_counter()
    study = config.study_config(channels)
    data = simulate_records(
        study,
        validate(study),
        key=jax.random.key(config.seed),
        progress=config.progress,
        say=lambda *a, **k: None,
    ).dataset
    priors = {k: tuple(v) for k, v in data.config["priors"].items()}
    clean = data.obs
    noise_key = jax.random.fold_in(jax.random.key(config.seed), 7)
    obs_all = add_noise(clean, config.noise, key=noise_key) if config.noise > 0 else clean
    kin = [data.channels.index(c) for c in ("x", "y")]
    x_kin = obs_all[..., kin]
    params = data.params
    results["data"] = dict(
        records=len(data),
        channels=list(channels),
        rejected=data.rejected,
        rejection_rate=data.rejection_rate,
        priors={k: list(v) for k, v in priors.items()},
        seconds=round(time.perf_counter() - t0, 2),
    )

    # 2. Fisher analysis.
    say("[2/5] Fisher information analysis at the centre of the priors", flush=True)
    t0 = time.perf_counter()
    report, fisher_noise = fisher_analysis(config, ("x", "y"))
    comb = report.combinations
    exps = comb.monomials if comb is not None and comb.monomials else [[0, 0, 1]]
    mono_names = tuple(comb.monomial_text) if comb is not None and comb.monomials else ("l0",)
    results["fisher"] = _fisher_dict(report, fisher_noise, time.perf_counter() - t0)

    # 3. Estimators.
    say("[3/5] training the estimators", flush=True)
    res_p, te, pred_p, met_p = _train_eval(x_kin, params, PARAMS, config, desc="(m, k, l0)")
    targets_c = monomial_values(params, exps)
    res_c, te_c, pred_c, met_c = _train_eval(x_kin, targets_c, mono_names, config, desc=str(mono_names))
    res_p.estimator.save(out / "models" / "params.eqx", metadata=dict(channels=["x", "y"]))
    res_c.estimator.save(
        out / "models" / "combinations.eqx", metadata=dict(channels=["x", "y"], exponents=exps)
    )

    # 4. Ceiling.
    say("[4/5] identifiability ceiling", flush=True)
    ceil, met_ceil, ceil_how = _ceiling(params[te], report, priors)
    results["estimators"] = dict(
        params=dict(metrics=met_p, training=_summary(res_p), names=list(PARAMS)),
        combinations=dict(metrics=met_c, training=_summary(res_c), names=list(mono_names), exponents=exps),
        ceiling=dict(metrics=met_ceil, method=ceil_how),
        test_records=len(te),
    )
    # 4a. The posterior network, its calibration and the (m, k) ridge.
    post_figures, flow_means, forces_fit = [], None, None
    if config.posterior:
        from .gait_posterior import posterior_study

        say("[4/5] posterior network and its calibration", flush=True)
        scal = report.combinations.scaling if report.combinations is not None else []
        x_all = obs_all if "forces" in config.sweeps else None
        reuse = config.arch == "mlp" and config.members == 1  # the flow's embedding can start from it
        if reuse and x_all is not None:  # the forces sweep's network, trained once for both
            forces_fit = _train_eval(x_all, params, PARAMS, config, desc="+".join(channels))
        results["posterior"], post_figures, flow_means = posterior_study(
            config,
            x_kin,
            x_all,
            params,
            scal[0] if len(scal) == 1 else None,
            priors,
            out,
            say=say,
            point=res_p.estimator if reuse else None,
            point_all=forces_fit[0].estimator if forces_fit is not None else None,
        )

    # 4b. The Bayes reference of noisy records (noise-free: the ceiling is the reference), with
    # the point networks and the posterior network's means compared with it.
    if config.noise > 0 and config.bayes_records >= 2 and len(te) >= 2:
        from .gait_bayes import bayes_reference

        say("[4/5] the Bayes reference at the study's noise", flush=True)
        same_split = te_c is not None and np.array_equal(te, te_c) and pred_c is not None
        results["bayes"] = bayes_reference(
            config,
            x_kin,
            clean[..., kin],
            params,
            te,
            pred_p,
            priors,
            combinations=(mono_names, exps, pred_c) if same_split else None,
            flow=flow_means,
            say=say,
        )
        if "flow" in results["bayes"] and "posterior" in results:
            results["posterior"]["bayes_reference"] = (
                f"sampled on {results['bayes']['records_used']} test records, where the flow's means are "
                "compared with it (section above); the noise-free ceiling bounds the Bayes limit's R^2 "
                "from above"
            )
    results["table"] = gait_report.main_table(results, report, mono_names)
    figures = gait_report.main_figures(
        out, data, x_kin, params, te, pred_p, ceil, te_c, targets_c, pred_c, mono_names, report, res_p, res_c
    )
    figures += post_figures

    # 5. Sweeps (a setting equal to the main one reuses the main estimator).
    main = dict(result=res_p, test=te, metrics=met_p, forces=forces_fit)
    sweeps = {}
    if config.sweeps:
        say(f"[5/5] sweeps: {', '.join(config.sweeps)}", flush=True)
    for sweep in config.sweeps:
        if sweep == "size":
            sweeps["size"] = _sweep_size(config, x_kin, params, report, priors, te)
        elif sweep == "noise":
            sweeps["noise"] = _sweep_noise(config, clean[..., kin], params, report, priors, noise_key, main)
        elif sweep == "arch":
            sweeps["arch"] = _sweep_arch(config, x_kin, params, report, priors, main)
        elif sweep == "forces":
            sweeps["forces"] = _sweep_forces(config, obs_all, data.channels, params, report, priors, main)
        figures += gait_report.sweep_figure(out, sweep, sweeps[sweep])
    results["sweeps"] = sweeps
    results["figures"] = figures
    results["seconds"] = round(time.perf_counter() - started, 1)
    jio.atomic_write_text(out / "results.json", json.dumps(jsonable(results), indent=2))
    jio.atomic_write_text(out / "report.md", gait_report.markdown(results))
    say(f"wrote {out / 'report.md'}, {out / 'results.json'} and {len(figures)} figures", flush=True)
    return results


def _sweep_size(config, x, params, report, priors, test):
    """Train on growing subsets of the records outside the main test split (8:1 train and
    validation) and score every size on that same test split, so the sizes share one ceiling."""
    pool = np.setdiff1d(np.arange(len(params)), test)
    _, met_ceil, _ = _ceiling(params[test], report, priors)
    rows = []
    for n in config.size_grid():
        idx = pool[: max(2, round(0.9 * n))]
        res, _, _, _ = _train_eval(
            x[idx], params[idx], PARAMS, config, desc=f"size {n}", split=(8 / 9, 1 / 9, 0.0)
        )
        met = regression_metrics(params[test], res.estimator.predict(x[test]), PARAMS).to_dict()
        rows.append(dict(records=n, metrics=met, ceiling=met_ceil, training=_summary(res)))
    return dict(rows=rows, test_records=len(test))


def _sweep_noise(config, clean, params, report, priors, key, main):
    """One estimator per noise level; noise-free data in a noise-free study are the main
    estimator's own (reused, not retrained). Every level has the same split, so one ceiling."""
    _, met_ceil, _ = _ceiling(params[main["test"]], report, priors)
    rows = []
    for i, level in enumerate(config.noise_levels):
        if level == 0 and config.noise == 0:
            res, met = main["result"], main["metrics"]
        else:
            x = add_noise(clean, level, key=jax.random.fold_in(key, i + 1)) if level > 0 else clean
            res, _, _, met = _train_eval(x, params, PARAMS, config, desc=f"noise {level:g}")
        rows.append(dict(noise=level, metrics=met, ceiling=met_ceil, training=_summary(res)))
    return dict(rows=rows)


def _sweep_arch(config, x, params, report, priors, main):
    """One estimator per architecture; the main estimator's own architecture is reused."""
    from ..study.estimators import network_spec

    own = network_spec(config.estimator_options())
    rows = []
    for spec in config.architectures:
        if {k: v for k, v in spec.items() if k != "label"} == own:
            res, met = main["result"], main["metrics"]
        else:
            res, _, _, met = _train_eval(x, params, PARAMS, config, arch_spec=spec, desc=spec["label"])
        n_weights = sum(
            int(np.prod(a.shape)) for a in jax.tree.leaves(eqx.filter(res.estimator.network, eqx.is_array))
        )
        rows.append(
            dict(
                label=spec["label"],
                spec=dict(spec),
                weights=n_weights // res.estimator.members,
                metrics=met,
                training=_summary(res),
            )
        )
    _, met_ceil, _ = _ceiling(params[main["test"]], report, priors)
    return dict(rows=rows, ceiling=met_ceil)


def _sweep_forces(config, obs_all, channels, params, report_kin, priors, main):
    """Kinematics alone (the main estimator and analysis, reused) against kinematics plus forces."""
    rows = []
    for chans in (("x", "y"), ("x", "y", *FORCE_CHANNELS)):
        if chans == ("x", "y"):
            res, met, rep = main["result"], main["metrics"], report_kin
        else:
            idx = [channels.index(c) for c in chans]
            if main["forces"] is not None and chans == tuple(channels):  # trained for the posterior
                res, _, _, met = main["forces"]
            else:
                res, _, _, met = _train_eval(obs_all[..., idx], params, PARAMS, config, desc="+".join(chans))
            rep = fisher_analysis(config, chans)[0]
        _, met_ceil, how = _ceiling(params[main["test"]], rep, priors)
        rows.append(
            dict(
                channels=list(chans),
                fim_rank=rep.rank,
                monomials=list(rep.combinations.monomial_text) if rep.combinations else [],
                crb_relative=dict(zip(PARAMS, map(float, rep.crb_relative), strict=True)),
                metrics=met,
                ceiling=met_ceil,
                ceiling_method=how,
                training=_summary(res),
            )
        )
    return dict(rows=rows)


def _fisher_dict(report, noise, seconds) -> dict:
    comb = report.combinations
    return dict(
        theta=dict(zip(PARAMS, map(float, report.theta), strict=True)),
        noise_fraction=noise,
        rank=report.rank,
        singular_values=[float(s) for s in report.spectrum.singular_values],
        rank_rule=report.spectrum.rule,
        scaling=comb.scaling if comb else [],
        scaling_text=comb.scaling_text if comb else [],
        monomials=comb.monomial_text if comb else [],
        monomial_crb_relative=[float(v) for v in report.monomial_crb_relative],
        crb=dict(zip(PARAMS, map(float, report.crb), strict=True)),
        crb_relative=dict(zip(PARAMS, map(float, report.crb_relative), strict=True)),
        seconds=round(seconds, 2),
    )


def _config_dict(config: GaitStudyConfig) -> dict:
    d = asdict(replace(config))
    d["architectures"] = [dict(a) for a in config.architectures]
    d["sizes"] = list(config.size_grid()) if "size" in config.sweeps else d["sizes"]
    return d


def _devices() -> list[str]:
    return [f"{d.platform}:{d.device_kind}" for d in jax.local_devices()]
