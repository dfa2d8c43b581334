r"""The claims study of the hybrid models (``jaxid hybrid --claims``): the questions of Ye et al.
(NeurIPS 2024) asked with seeds, intervals and a convergence check.

1. **MCC against the number of training tasks.** Meta-Hybrid-VAE (and Hybrid-VAE as a control,
   whose prior ignores the task) retrained on the first ``n`` training tasks for each ``n`` of
   ``task_counts``, ``len(seeds)`` seeds each. The condition tested (:func:`ivae_condition`): the
   identifiability theorem of iVAE (Khemakhem et al. 2020, Theorem 1; Hyvarinen et al. 2019), on
   which Ye et al. build, asks for at least :math:`n k + 1` distinct values of the auxiliary
   variable (here: the task, through its context code) for :math:`n` conditionally independent
   latents whose conditional prior is an exponential family with :math:`k` sufficient statistics.
   Meta-Hybrid-VAE's prior :math:`\mathcal N(\mu(c), \mathrm{diag}\,\sigma^2(c))` over
   :math:`(z_a, z_b)` has :math:`k = 2` and :math:`n = ` ``latent_a + latent_b``, so MCC should rise
   with the tasks and level off from :math:`n k + 1` of them.
2. **Meta-Hybrid-VAE against Hybrid-VAE and APHYNITY**, MCC of ``z_n``, ID and OOD.
3. **Agreement across seeds**: MCC between the neural latents ``z_a`` of every pair of seeds on the
   ID test split (Meta-Hybrid-VAE; the other models for reference).
4. **Convergence**: per run, whether the validation reconstruction error had stopped improving
   (its best call is not in the last ``late_fraction`` of the steps) or had settled (the late
   calls improve on the best before them by less than ``settle_tol``, relative: with the learning
   rate decaying to the last step a run keeps gaining a little to the end).
5. **z_p against its limit**: each model's MSE of ``z_p`` next to the Cramer-Rao bound
   (:func:`jaxid.hybrid.zp_bound`) and the Bayes risk of the exact posterior
   (:func:`jaxid.hybrid.zp_posterior`), both from one sequence with everything else known.

Intervals (:func:`run_task_bootstrap`): every mean over seeds gets a 95 % percentile interval from a
two-level bootstrap that resamples the seeds (runs) *and* the test tasks (whole tasks, the unit
that carries ``z_n``); a score is recomputed on every resample. Differences (Meta-Hybrid-VAE minus
another model, MCC at the largest task count minus a smaller one) resample both settings with the
same test tasks and independent seeds; a claim *held* when the difference's interval lies on the
claimed side of 0, *did not hold* when it lies on the other side, and is *inconclusive at this
size* when it contains 0. The agreement between seeds resamples test tasks only (pairs of runs are
fixed). The data (one draw per system, from ``seed``) are the same for every run; seeds change the
networks' initialisation and the minibatches.

Training, scoring and the data are :mod:`jaxid.experiments.hybrid`'s (``_train``, ``evaluate``,
``make_hybrid_data``, ``zp_bound``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from jaxtyping import ArrayLike, Float, Real
from tqdm.auto import tqdm

from .. import __version__
from .. import io as jio
from ..hybrid import HybridEvaluation, evaluate, get_system, mcc, zp_bound, zp_posterior
from ..hybrid.systems import System
from .hybrid import SCORES, HybridStudyConfig, _data, _scores, _train
from .results import jsonable
from .workers import available_cores, map_pinned

CONDITION_SOURCE = (
    "Khemakhem, Kingma, Monti, Hyvarinen (2020), Variational autoencoders and nonlinear ICA: a "
    "unifying framework, AISTATS, Theorem 1 (after Hyvarinen, Sasaki, Turner 2019, AISTATS); the "
    "basis of Ye et al. (NeurIPS 2024)"
)


@dataclass
class HybridClaimsConfig(HybridStudyConfig):
    """Options of the claims study: those of :class:`HybridStudyConfig` (data, training, networks;
    ``seed`` draws the data and is the first run's seed) plus

    - ``seeds``: the runs' seeds (at least 2; the claims need 3 or more);
    - ``sweep_models``: the models of the task sweep (Meta-Hybrid-VAE at every count of
      ``task_counts`` and ``tasks``; the Hybrid-VAE control at the smallest and the largest);
    - ``n_boot``: bootstrap resamples; ``level``: interval level;
    - ``late_fraction``: a run whose best validation call is in the last ``late_fraction`` of its
      steps has not stopped improving; ``settle_tol``: it has settled when its late calls gain less
      than this (relative) on the best before them;
    - ``workers``: the runs are shared out over this many processes, one CPU core each
      (:func:`jaxid.experiments.workers.map_pinned`; twice the runs per hour of one process on two
      cores, ``benchmarks/hybrid_workers.py``); ``None``: one per available core, 1: all in this
      process;
    - ``zp_nodes``: quadrature nodes of the Bayes reference of ``z_p``
      (:func:`jaxid.hybrid.zp_posterior` on the ID and OOD test splits); 0: none.

    The defaults are sized for about an hour on two CPU cores (a Meta-Hybrid-VAE step of batch 64
    takes 50 ms on one core of a 2-core Intel Xeon, so 18 runs of 6000 steps over two workers take
    about 45 minutes, plus the data, the Bayes reference of ``z_p`` (about 4 minutes) and the
    scoring): the pendulum only, 40 training tasks of 20 sequences, 6000 steps of batch 64
    (validation every 25), three seeds, task counts 3, 9 (the
    condition's ``n k + 1`` for the pendulum) and 40, and 20 ID and 20 OOD test tasks (the
    intervals resample them). Fewer steps leave the runs at 40 tasks undertrained (at 400 steps the
    seeds of Meta-Hybrid-VAE do not agree); at 10000 their validation error gains under 3 % over
    the last 2000 steps and the MCC of ``z_n`` moves by 0.02.
    """

    systems: tuple[str, ...] = ("pendulum",)
    test_tasks: int = 20
    ood_tasks: int = 20
    steps: int = 6000
    steps_per_call: int = 25
    task_counts: tuple[int, ...] = (3, 9)
    task_sweep_systems: tuple[str, ...] = ("pendulum",)
    seed_systems: tuple[str, ...] = ("pendulum",)
    seeds: tuple[int, ...] = (0, 1, 2)
    sweep_models: tuple[str, ...] = ("hybrid_vae", "meta_hybrid_vae")
    n_boot: int = 2000
    level: float = 0.95
    late_fraction: float = 0.2
    settle_tol: float = 0.01
    workers: int | None = None
    zp_nodes: int = 1001

    def __post_init__(self) -> None:
        if self.workers is None:
            self.workers = len(available_cores())

    def latent_a_of(self, system: System) -> int:
        """Columns of ``z_a`` (the models' default: one per unmodelled factor)."""
        return len(system.factor_names)

    def counts_for(self, kind: str) -> tuple[int, ...]:
        """The task counts ``kind`` is trained at: all of the sweep for Meta-Hybrid-VAE; the smallest
        and the largest for a control model."""
        counts = self.sweep_counts()
        return counts if kind == "meta_hybrid_vae" else tuple(sorted({counts[0], counts[-1]}))

    def validate(self) -> None:
        super().validate()
        where = "HybridClaimsConfig"
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"{where}: seeds must be at least 2 distinct ints, got {list(self.seeds)}")
        bad = [m for m in self.sweep_models if m not in self.models]
        if bad:
            raise ValueError(
                f"{where}: sweep_models {bad} are not among the models run ({list(self.models)})"
            )
        if not (isinstance(self.n_boot, int) and self.n_boot >= 100):
            raise ValueError(f"{where}: n_boot must be an int >= 100, got {self.n_boot!r}")
        if not (0.5 <= self.level < 1):
            raise ValueError(f"{where}: level must be in [0.5, 1), got {self.level!r}")
        if not (0 < self.late_fraction < 1):
            raise ValueError(f"{where}: late_fraction must be in (0, 1), got {self.late_fraction!r}")
        if not (0 < self.settle_tol < 1):
            raise ValueError(f"{where}: settle_tol must be in (0, 1), got {self.settle_tol!r}")
        if not (isinstance(self.workers, int) and self.workers >= 1):
            raise ValueError(f"{where}: workers must be a positive int, got {self.workers!r}")
        if not (isinstance(self.zp_nodes, int) and (self.zp_nodes == 0 or self.zp_nodes >= 101)):
            raise ValueError(
                f"{where}: zp_nodes must be 0 (no Bayes reference) or an int >= 101, got {self.zp_nodes!r}"
            )


# ---------------------------------------------------------------------------------------------
# the condition


def ivae_condition(system: str | System, latent_a: int | None = None, latent_b: int = 1, k: int = 2) -> dict:
    r"""The number of distinct tasks iVAE's Theorem 1 asks for: :math:`n k + 1` with :math:`n` the
    conditionally modelled latents (``latent_a`` inside the ODE, default the system's unmodelled
    factors, plus ``latent_b`` at the output) and :math:`k` the sufficient statistics of the
    conditional prior (2 for a Gaussian whose mean and variance depend on the task)."""
    sys = get_system(system)
    a = len(sys.factor_names) if latent_a is None else latent_a
    n = a + latent_b
    return {
        "statement": (
            f"z_n = (z_a, z_b) of Meta-Hybrid-VAE is identifiable up to permutation and component-wise "
            f"transform once the conditional prior N(mu(c), diag sigma^2(c)) has been seen at >= n k + 1 "
            f"= {n}*{k}+1 = {n * k + 1} tasks in general position (n = {n} latents: {a} in the ODE + "
            f"{latent_b} at the output; k = {k} sufficient statistics: mean and variance)"
        ),
        "source": CONDITION_SOURCE,
        "n": n,
        "k": k,
        "tasks_needed": n * k + 1,
    }


# ---------------------------------------------------------------------------------------------
# bootstrap


def percentile_interval(
    draws: Real[ArrayLike, " draw"] | Sequence[float], level: float = 0.95
) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap ``draws`` (NumPy's linear quantiles)."""
    draws = np.asarray(draws, np.float64)
    a = (1 - level) / 2
    lo, hi = np.quantile(draws, [a, 1 - a])
    return float(lo), float(hi)


def bootstrap_interval(
    values: Real[ArrayLike, " sample"] | Sequence[float],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    stat: Callable = np.mean,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` of a one-dimensional sample ``values``."""
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(
            f"bootstrap_interval: values must be 1-D with >= 2 entries, got shape {values.shape}"
        )
    rng = np.random.default_rng(0) if rng is None else rng
    idx = rng.integers(0, values.size, (n_boot, values.size))
    return percentile_interval([stat(values[i]) for i in idx], level)


def run_task_bootstrap(
    settings: Sequence[Sequence[Callable]],
    n_tasks: int,
    *,
    n_boot: int = 2000,
    rng: np.random.Generator | None = None,
) -> Float[np.ndarray, "boot setting"]:
    r"""Two-level bootstrap draws of several settings evaluated on the same test tasks.

    ``settings[s][r]`` is run ``r`` of setting ``s``: a function of an integer array of task
    indices (a resample of ``range(n_tasks)``) returning a score. Draw ``b`` resamples the tasks
    once, :math:`T_b`, and for each setting its runs with replacement, :math:`R_{b,s}`; its value
    is :math:`\frac{1}{|R|}\sum_{r \in R_{b,s}} f_{s,r}(T_b)`. Settings share :math:`T_b` (so
    differences between them are paired on the tasks) and resample their runs independently.

    **Returns:** draws, shape ``(n_boot, len(settings))``.
    """
    if not (isinstance(n_tasks, int) and n_tasks >= 2):
        raise ValueError(f"run_task_bootstrap: n_tasks must be an int >= 2, got {n_tasks!r}")
    if not settings or any(len(runs) < 1 for runs in settings):
        raise ValueError("run_task_bootstrap: settings must be a non-empty list of non-empty run lists")
    rng = np.random.default_rng(0) if rng is None else rng
    out = np.empty((n_boot, len(settings)))
    for b in range(n_boot):
        tasks = rng.integers(0, n_tasks, n_tasks)
        for s, runs in enumerate(settings):
            pick = rng.integers(0, len(runs), len(runs))
            cache = {}
            for r in pick:
                if r not in cache:
                    cache[r] = runs[r](tasks)
            out[b, s] = np.mean([cache[r] for r in pick])
    return out


def chance_mcc(
    z_true: Float[ArrayLike, "sequence ..."],
    n_latents: int,
    *,
    n: int = 200,
    rng: np.random.Generator | None = None,
) -> dict:
    """The MCC of latents that know nothing: ``n`` draws of independent standard-normal latents
    (``n_latents`` columns, one row per sequence) scored against ``z_true``. Its mean and 97.5 %
    quantile are the chance level of a split (|corr| over few distinct tasks is far from 0)."""
    rng = np.random.default_rng(0) if rng is None else rng
    z_true = np.asarray(z_true)
    values = [mcc(z_true, rng.standard_normal((len(z_true), n_latents))) for _ in range(n)]
    return {"mean": float(np.mean(values)), "q975": float(np.quantile(values, 0.975))}


def _rows(tasks, per_task: int) -> np.ndarray:
    return (np.asarray(tasks)[:, None] * per_task + np.arange(per_task)).ravel()


def _score_fn(score: str, truth: dict, run: HybridEvaluation, per_task: int) -> Callable:
    """A run's score on a resample of test tasks: ``mcc`` of ``z_n`` or ``z_p_mse``."""
    if score == "mcc":
        return lambda t: mcc(truth["z_n"][_rows(t, per_task)], run.z_a[_rows(t, per_task)])
    if score == "z_p_mse":
        return lambda t: float(np.mean((run.z_p - truth["z_p"])[_rows(t, per_task)] ** 2))
    raise ValueError(f"unknown score {score!r}")


def _summary(values, draws_col, level) -> dict:
    lo, hi = percentile_interval(draws_col, level)
    return {"mean": float(np.mean(values)), "lo": lo, "hi": hi, "values": [float(v) for v in values]}


def _diff(draws_a, draws_b, point: float, level: float, side: int) -> dict:
    """Interval of a - b from paired draws and the verdict for the claim ``side * (a - b) > 0``."""
    lo, hi = percentile_interval(draws_a - draws_b, level)
    if (side > 0 and lo > 0) or (side < 0 and hi < 0):
        verdict = "held"
    elif (side > 0 and hi < 0) or (side < 0 and lo > 0):
        verdict = "did not hold"
    else:
        verdict = "inconclusive at this size"
    return {"diff": float(point), "lo": lo, "hi": hi, "verdict": verdict}


# ---------------------------------------------------------------------------------------------
# convergence


def convergence(history: dict, late_fraction: float = 0.2, settle_tol: float = 0.01) -> dict:
    """Whether a run's validation error had stopped improving: the best call's step against the
    last ``late_fraction`` of the steps (``stopped``), and the relative gain of the late calls over
    the best before them (``late_gain``; ``settled`` when it is below ``settle_tol``)."""
    steps = np.asarray(history["step"], float)
    val = np.asarray(history["val_recon"], float)
    last = steps[-1]
    best = int(steps[int(np.argmin(val))])
    early = val[steps <= (1 - late_fraction) * last]
    late = val[steps > (1 - late_fraction) * last]
    gain = float((early.min() - late.min()) / early.min()) if early.size and late.size else math.nan
    return {
        "best_step": best,
        "steps": int(last),
        "stopped": bool(best <= (1 - late_fraction) * last),
        "late_gain": gain,
        "settled": bool(best <= (1 - late_fraction) * last or gain < settle_tol),
    }


# ---------------------------------------------------------------------------------------------
# the study


def _run_entry(kind, seed, fitted, evs, config: HybridClaimsConfig) -> dict:
    return {
        "kind": kind,
        "seed": seed,
        "id": _scores(evs["test"]),
        **({"ood": _scores(evs["ood"])} if "ood" in evs else {}),
        "train_seconds": round(fitted.seconds, 2),
        "convergence": convergence(fitted.history, config.late_fraction, config.settle_tol),
        "history": {k: fitted.history[k] for k in ("step", "val_recon", "train_loss")},
    }


def _claims_job(item) -> tuple[dict, dict]:
    """One run of the study: train ``kind`` with ``seed`` on the first ``n`` training tasks, score
    it on the ID test split (and, on all the tasks, the OOD split)."""
    data, config, name, kind, seed, n = item
    tasks = None if n == config.tasks else n
    label = f"{name} {kind} seed {seed}" if tasks is None else f"{name} {kind} {n} tasks seed {seed}"
    fitted, _ = _train(kind, data, config, seed, label, tasks)
    splits = ("test", "ood") if tasks is None else ("test",)
    evs = {
        split: evaluate(fitted.model, getattr(data, split), context_size=config.context_size)
        for split in splits
    }
    return _run_entry(kind, seed, fitted, evs, config), evs


def _zp_bayes(sys, data, config: HybridClaimsConfig) -> dict | None:
    """The Bayes reference of ``z_p`` on the ID and OOD test splits (:func:`zp_posterior`, the
    prior each split was drawn from), or None where ``zp_nodes`` is 0."""
    if not config.zp_nodes:
        return None
    out = {}
    for split, s_name in (("id", "test"), ("ood", "ood")):
        post = zp_posterior(
            sys,
            getattr(data, s_name),
            prior_range=data.physics_ranges(s_name)[0],
            nodes=config.zp_nodes,
            progress=config.progress,
        )
        out[split] = {
            "mse": post.mse,
            "posterior_variance": post.posterior_variance,
            "prior_range": list(post.prior_range),
            "nodes": config.zp_nodes,
        }
    return out


def _save_partial(out, name: str, runs: dict) -> None:
    """Every finished run's scores so far (``runs-partial.json``), for a run that is interrupted;
    ``runs``: ``(kind, seed, n_tasks) -> [(entry, evs)]``."""
    done = {f"{kind} {n} tasks seed {seed}": [r for r, _ in rs] for (kind, seed, n), rs in runs.items()}
    jio.atomic_write_text(out / f"runs-partial-{name}.json", json.dumps(jsonable(done)))


def run_hybrid_claims(config: HybridClaimsConfig, out: str | os.PathLike) -> dict:
    """Run the claims study (module docstring); write ``results.json``, ``report.md`` and the figures
    to ``out``; return the results."""
    config.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    say = print if config.progress else (lambda *a, **k: None)
    rng = np.random.default_rng(config.seed)
    level = config.level
    results: dict = {
        "jaxid_version": __version__,
        "config": asdict(config),
        "interval": (
            f"{level:.0%} percentile bootstrap, {config.n_boot} resamples of the seeds (runs) and of the "
            "test tasks together; seed agreement: test tasks only"
        ),
        "systems": {},
        "task_sweep": {},
        "seed_agreement": {},
        "claims": [],
    }
    for s_index, name in enumerate(config.systems):
        t0 = time.perf_counter()
        data = _data(config, s_index, name)
        sys = data.system
        per = data.test.per_task
        truth = {
            split: {"z_n": getattr(data, split).flat("z_n"), "z_p": getattr(data, split).flat("z_p")}
            for split in ("test", "ood")
        }
        data_seconds = round(time.perf_counter() - t0, 2)
        t_zp = time.perf_counter()
        bound = {"id": zp_bound(sys, data.test), "ood": zp_bound(sys, data.ood)}
        bayes = _zp_bayes(sys, data, config)
        zp_seconds = round(time.perf_counter() - t_zp, 2)
        entry = {
            "mcc_chance": {
                split: chance_mcc(truth[s_name]["z_n"], config.latent_a_of(sys), rng=rng)
                for split, s_name in (("id", "test"), ("ood", "ood"))
            },
            "data": dict(data.config, seconds=data_seconds),
            "physics": list(sys.physics_names),
            "factors": list(sys.factor_names),
            "z_p_bound": {split: {"mse": b.mse, "rms": b.rms} for split, b in bound.items()},
            "z_p_bayes": bayes,
            "z_p_seconds": zp_seconds,
            "condition": ivae_condition(sys),
            "models": {},
        }
        runs: dict = {}  # (kind, n_tasks) -> list of (entry, evs)
        sweep_counts = config.sweep_counts() if name in config.task_sweep_systems else ()
        jobs = [(kind, seed, config.tasks) for kind in config.models for seed in config.seeds]
        jobs += [
            (kind, seed, n)
            for kind in (config.sweep_models if sweep_counts else ())
            for n in config.counts_for(kind)
            if n != config.tasks
            for seed in config.seeds
        ]
        worker_config = replace(config, progress=False) if config.workers > 1 else config
        items = [(data, worker_config, name, *job) for job in jobs]
        done = {}
        # in worker processes the runs show no step bars: one bar over the runs instead
        quiet = not config.progress or config.workers == 1
        with tqdm(total=len(jobs), unit="run", desc=f"{name} runs", disable=quiet) as bar:
            for i, (run, evs) in map_pinned(_claims_job, items, workers=config.workers):
                done[i] = (run, evs)
                kind, seed, n = jobs[i]
                mccs = " ".join(f"{s.upper()} {run[s]['mcc']:.3f}" for s in ("id", "ood") if s in run)
                line = (
                    f"{name} {kind} on {n} tasks seed {seed}: MCC {mccs}, best step "
                    f"{run['convergence']['best_step']}/{config.steps}, {run['train_seconds']:.0f} s"
                )
                if config.progress:
                    bar.write(line)
                bar.update(1)
                _save_partial(out, name, {jobs[j]: [done[j]] for j in sorted(done)})
        for i, (kind, _, n) in enumerate(jobs):  # in the jobs' order, whatever order they finished in
            runs.setdefault((kind, n), []).append(done[i])

        # intervals: one shared two-level bootstrap per split (settings paired on the test tasks)
        boot = {}
        for split, key in (("test", "id"), ("ood", "ood")):
            settings = [k for k, v in runs.items() if split in v[0][1]]
            fns = [
                [_score_fn(score, truth[split], evs[split], per) for _, evs in runs[k]]
                for k in settings
                for score in ("mcc", "z_p_mse")
            ]
            draws = run_task_bootstrap(
                fns, data.test.n_tasks if split == "test" else data.ood.n_tasks, n_boot=config.n_boot, rng=rng
            )
            boot[key] = {
                (k, score): draws[:, 2 * i + j]
                for i, k in enumerate(settings)
                for j, score in enumerate(("mcc", "z_p_mse"))
            }
        for kind in config.models:
            rs = [r for r, _ in runs[(kind, config.tasks)]]
            entry["models"][kind] = {
                split: {
                    score: _summary(
                        [r[split][score] for r in rs], boot[split][((kind, config.tasks), score)], level
                    )
                    for score in ("mcc", "z_p_mse")
                }
                | {
                    score: {"mean": float(np.mean([r[split][score] for r in rs]))}
                    for score in SCORES
                    if score not in ("mcc", "z_p_mse")
                }
                for split in ("id", "ood")
            }
            entry["models"][kind]["runs"] = rs
        # Meta-Hybrid-VAE against the others, ID and OOD
        comparisons = []
        if "meta_hybrid_vae" in config.models:
            for split in ("id", "ood"):
                for other in config.models:
                    if other == "meta_hybrid_vae":
                        continue
                    a = boot[split][(("meta_hybrid_vae", config.tasks), "mcc")]
                    b = boot[split][((other, config.tasks), "mcc")]
                    ma = entry["models"]["meta_hybrid_vae"][split]["mcc"]["mean"]
                    mb = entry["models"][other][split]["mcc"]["mean"]
                    comparisons.append({"split": split, "other": other, **_diff(a, b, ma - mb, level, +1)})
        entry["meta_vs_others"] = comparisons
        # the task sweep
        if sweep_counts:
            sweep = {}
            for kind in config.sweep_models:
                rows = {}
                top = max(sweep_counts)
                for n in config.counts_for(kind):
                    rs = [r for r, _ in runs[(kind, n)]]
                    rows[str(n)] = {
                        score: _summary([r["id"][score] for r in rs], boot["id"][((kind, n), score)], level)
                        for score in ("mcc", "z_p_mse")
                    }
                    rows[str(n)]["runs"] = rs
                    if n != top:  # the largest count minus this one, paired on the test tasks
                        pt = np.mean([r["id"]["mcc"] for r, _ in runs[(kind, top)]])
                        rows[str(n)]["gap_to_max"] = _diff(
                            boot["id"][((kind, top), "mcc")],
                            boot["id"][((kind, n), "mcc")],
                            pt - rows[str(n)]["mcc"]["mean"],
                            level,
                            +1,
                        )
                sweep[kind] = rows
            results["task_sweep"][name] = sweep
        # agreement between seeds on z_a (ID test): every pair, bootstrap over test tasks
        if name in config.seed_systems:
            agree = {}
            n_t = data.test.n_tasks
            for kind in config.models:
                evs = [e["test"] for _, e in runs[(kind, config.tasks)]]
                seeds = [r["seed"] for r, _ in runs[(kind, config.tasks)]]
                pairs = [(i, j) for i in range(len(evs)) for j in range(i + 1, len(evs))]
                fns = [
                    [lambda t, a=evs[i].z_a, b=evs[j].z_a, per=per: mcc(a[_rows(t, per)], b[_rows(t, per)])]
                    for i, j in pairs
                ]
                draws = run_task_bootstrap(fns, n_t, n_boot=config.n_boot, rng=rng).mean(1)
                values = [mcc(evs[i].z_a, evs[j].z_a) for i, j in pairs]
                agree[kind] = {
                    "pairs": [
                        {"seeds": [seeds[i], seeds[j]], "mcc": v}
                        for (i, j), v in zip(pairs, values, strict=True)
                    ],
                    **_summary(values, draws, level),
                    "draws": draws,
                }
            results["seed_agreement"][name] = agree
        results["systems"][name] = entry
        say(f"{name}: done in {time.perf_counter() - t0:.0f} s")
    results["claims"] = judge(results, config)
    for agree in results["seed_agreement"].values():
        for a in agree.values():
            a.pop("draws", None)
    results["seconds"] = round(time.perf_counter() - start, 1)
    write_outputs(results, out)
    say(f"wrote {out / 'report.md'} ({results['seconds']} s)")
    return results


def write_outputs(results: dict, out: str | os.PathLike) -> None:
    """The figures, ``results.json`` and ``report.md`` of a claims study's ``results`` in ``out``
    (also to redraw them from a ``results.json`` read back)."""
    from .hybrid_claims_report import claims_figures, claims_markdown

    out = Path(out)
    results["figures"] = claims_figures(results, out)
    jio.atomic_write_text(out / "results.json", json.dumps(jsonable(results), indent=2))
    jio.atomic_write_text(out / "report.md", claims_markdown(results))


AGREE_THRESHOLD = 0.8


def judge(results: dict, config: HybridClaimsConfig) -> list[dict]:
    """The claims with their verdicts and the evidence behind them (the report adds diagnoses)."""
    claims = []
    for name, sweep in results["task_sweep"].items():
        cond = results["systems"][name]["condition"]
        meta = sweep.get("meta_hybrid_vae")
        if meta is None:
            continue
        counts = sorted(int(n) for n in meta)
        top, low = counts[-1], counts[0]
        rise = meta[str(low)]["gap_to_max"]
        claims.append(
            {
                "system": name,
                "claim": f"MCC of z_n rises with the number of training tasks ({low} -> {top})",
                "test": f"MCC({top}) - MCC({low}) for Meta-Hybrid-VAE, interval above 0",
                "verdict": rise["verdict"],
                "evidence": rise,
            }
        )
        # from how many tasks: the smallest count from which no count differs from the largest
        plateau = top
        for n in reversed(counts[:-1]):
            if meta[str(n)]["gap_to_max"]["lo"] <= 0:
                plateau = n
            else:
                break
        need = cond["tasks_needed"]
        below = [n for n in counts if n < need]
        at_or_above = [n for n in counts if n >= need]
        if not below or not at_or_above:
            verdict = "inconclusive at this size"
        elif plateau <= need and meta[str(max(below))]["gap_to_max"]["verdict"] == "held":
            verdict = "held"
        elif plateau > need:
            verdict = "did not hold"
        else:
            verdict = "inconclusive at this size"
        claims.append(
            {
                "system": name,
                "claim": (
                    f"MCC levels off from the condition's n k + 1 = {need} tasks (below it lower, from "
                    "it on no different from the largest count)"
                ),
                "test": (
                    "plateau = smallest count from which every count's MCC gap to the largest count has an "
                    f"interval reaching 0; held if plateau <= {need} and the largest count below {need} is "
                    "lower than the largest count"
                ),
                "verdict": verdict,
                "evidence": {"plateau_from": plateau, "tasks_needed": need},
            }
        )
        hvae = sweep.get("hybrid_vae")
        if hvae is not None:
            claims.append(
                {
                    "system": name,
                    "claim": f"control: Hybrid-VAE's MCC does not rise with the tasks ({low} -> {top})",
                    "test": f"MCC({top}) - MCC({low}) for Hybrid-VAE, interval containing 0",
                    "verdict": {
                        "inconclusive at this size": "held",
                        "held": "did not hold",
                        "did not hold": "did not hold",
                    }[hvae[str(low)]["gap_to_max"]["verdict"]],
                    "evidence": hvae[str(low)]["gap_to_max"],
                }
            )
    for name, entry in results["systems"].items():
        for c in entry.get("meta_vs_others", []):
            claims.append(
                {
                    "system": name,
                    "claim": (
                        f"Meta-Hybrid-VAE's MCC of z_n is higher than {c['other']}'s ({c['split'].upper()})"
                    ),
                    "test": "MCC difference, interval above 0",
                    "verdict": c["verdict"],
                    "evidence": {k: c[k] for k in ("diff", "lo", "hi")},
                }
            )
    for name, agree in results["seed_agreement"].items():
        if "meta_hybrid_vae" not in agree:
            continue
        a = agree["meta_hybrid_vae"]
        verdict = (
            "held"
            if a["lo"] > AGREE_THRESHOLD
            else "did not hold"
            if a["hi"] < AGREE_THRESHOLD
            else "inconclusive at this size"
        )
        ev = {"mean": a["mean"], "lo": a["lo"], "hi": a["hi"], "threshold": AGREE_THRESHOLD}
        if "hybrid_vae" in agree:
            h = agree["hybrid_vae"]
            d = _diff(a["draws"], h["draws"], a["mean"] - h["mean"], config.level, +1)
            ev["minus_hybrid_vae"] = d
        claims.append(
            {
                "system": name,
                "claim": "two seeds of Meta-Hybrid-VAE agree on z_n (MCC between runs' z_a near 1)",
                "test": f"mean MCC over all seed pairs, interval above {AGREE_THRESHOLD}",
                "verdict": verdict,
                "evidence": ev,
            }
        )
    return claims
