r"""The hybrid-model comparison (``jaxid hybrid``): can APHYNITY, Hybrid-VAE and Meta-Hybrid-VAE
recover the physics latent and the unmodelled factors of their data, and does meta-learning over
tasks make the neural latents identifiable?

Steps, written to one output folder:

1. **Data** (:func:`jaxid.hybrid.make_hybrid_data`) for each system: task-structured train, val,
   in-distribution test and out-of-distribution splits.
2. **Models**: each model is trained with :func:`jaxid.hybrid.fit` (same steps, batch and
   learning rate for all) and scored with :func:`jaxid.hybrid.evaluate` on the ID and OOD splits:
   MSE of ``z_p``, MCC of ``z_n``, reconstruction and prediction MSE; next to the MSE of ``z_p``,
   the data's limit :func:`jaxid.hybrid.zp_bound` (the mean Cramer-Rao bound of ``z_p`` from one
   sequence with everything else known) on the same sequences.
3. **MCC against the number of tasks**: Meta-Hybrid-VAE retrained on the first ``n`` training
   tasks for each ``n`` of ``task_counts`` (systems in ``task_sweep_systems``).
4. **Agreement across seeds**: every model retrained with another seed (systems in
   ``seed_systems``); the MCC between the two runs' neural latents and the correlation of their
   physics latents on the test split.

The report (``report.md``), figures (``*.png``), all numbers (``results.json``) and the trained
models (``models/*.eqx``, read back with :func:`jaxid.hybrid.load_model`) land in ``out``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import numpy as np

from .. import __version__
from .. import io as jio
from ..errors import check_positive_int
from ..hybrid import (
    MODEL_KINDS,
    SYSTEMS,
    HybridEvaluation,
    HybridTrainConfig,
    evaluate,
    fit,
    make_hybrid_data,
    make_model,
    mcc,
    save_model,
    zp_bound,
)
from .results import jsonable

SCORES = ("z_p_mse", "mcc", "recon_mse", "pred_mse")


@dataclass
class HybridStudyConfig:
    """Options of the hybrid study (the command line's flags map onto these).

    - ``systems``, ``models``: which to run (default all three of each).
    - Data: ``tasks`` (training tasks), ``per_task``, ``val_tasks``, ``test_tasks``, ``ood_tasks``,
      ``ood_width``; ``context_size`` (``K``).
    - Training (the same for every model): ``steps``, ``batch_size``, ``learning_rate``,
      ``steps_per_call``; networks ``width``, ``depth``.
    - ``task_counts`` and ``task_sweep_systems``: the MCC-against-tasks sweep (counts above
      ``tasks`` are dropped; ``tasks`` itself reuses the main run).
    - ``seed_systems``: systems whose models are trained again with ``seed + 1``.
    """

    systems: tuple[str, ...] = tuple(SYSTEMS)
    models: tuple[str, ...] = MODEL_KINDS
    tasks: int = 40
    per_task: int = 20
    val_tasks: int = 4
    test_tasks: int = 10
    ood_tasks: int = 10
    ood_width: float = 0.5
    context_size: int = 5
    steps: int = 600
    batch_size: int = 64
    learning_rate: float = 2e-3
    steps_per_call: int = 100
    width: int = 64
    depth: int = 2
    task_counts: tuple[int, ...] = (2, 5, 10)
    task_sweep_systems: tuple[str, ...] = ("pendulum",)
    seed_systems: tuple[str, ...] = ("pendulum",)
    seed: int = 0
    progress: bool = True

    @classmethod
    def full(cls, **overrides) -> HybridStudyConfig:
        """A setting for a GPU: 200 training tasks of 25 sequences, 20,000 steps of batch 128, and
        both sweeps on every system."""
        base = dict(
            tasks=200,
            per_task=25,
            val_tasks=10,
            test_tasks=40,
            ood_tasks=40,
            steps=20_000,
            batch_size=128,
            learning_rate=1e-3,
            steps_per_call=500,
            width=128,
            task_counts=(2, 5, 10, 20, 50, 100),
            task_sweep_systems=tuple(SYSTEMS),
            seed_systems=tuple(SYSTEMS),
        )
        base.update(overrides)
        return cls(**base)

    def validate(self) -> None:
        where = "HybridStudyConfig"
        for name, known in (("systems", SYSTEMS), ("models", MODEL_KINDS)):
            chosen = getattr(self, name)
            bad = [v for v in chosen if v not in known]
            if bad or not chosen:
                raise ValueError(
                    f"{where}: {name} must be a non-empty list from {list(known)}, got {list(chosen)}"
                )
        for name in ("task_sweep_systems", "seed_systems"):
            bad = [v for v in getattr(self, name) if v not in self.systems]
            if bad:
                raise ValueError(
                    f"{where}: {name} {bad} are not among the systems run ({list(self.systems)})"
                )
        for name in (
            "tasks",
            "val_tasks",
            "test_tasks",
            "ood_tasks",
            "steps",
            "batch_size",
            "width",
            "depth",
        ):
            check_positive_int(where, name, getattr(self, name))
        check_positive_int(where, "per_task", self.per_task, minimum=2)
        if any(not (isinstance(n, int) and n >= 1) for n in self.task_counts):
            raise ValueError(f"{where}: task_counts must be positive ints, got {self.task_counts}")
        self.train_config().validate(self.per_task)

    def train_config(self, seed: int | None = None) -> HybridTrainConfig:
        return HybridTrainConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            context_size=self.context_size,
            steps_per_call=min(self.steps_per_call, self.steps),
            seed=self.seed if seed is None else seed,
            progress=self.progress,
        )

    def sweep_counts(self) -> tuple[int, ...]:
        return tuple(sorted({n for n in self.task_counts if n < self.tasks} | {self.tasks}))


def _data(config: HybridStudyConfig, s_index: int, name: str):
    """The study's data for system ``name``, the ``s_index``-th of ``config.systems`` (its key
    follows the seed and the position, so every study with the same seed sees the same data)."""
    return make_hybrid_data(
        name,
        key=jax.random.key(config.seed * 1000 + s_index),
        tasks=config.tasks,
        per_task=config.per_task,
        val_tasks=config.val_tasks,
        test_tasks=config.test_tasks,
        ood_tasks=config.ood_tasks,
        ood_width=config.ood_width,
        progress=config.progress,
    )


def _scores(ev: HybridEvaluation) -> dict:
    return {k: getattr(ev, k) for k in SCORES}


def _train(kind, data, config: HybridStudyConfig, seed: int, desc: str, tasks: int | None = None):
    key = jax.random.key(seed)
    scales = data.scales()
    options = dict(width=config.width, depth=config.depth)
    model = make_model(kind, data.system, scales, key=key, **options)
    result = fit(model, data, config.train_config(seed), tasks=tasks, desc=desc)
    spec = dict(
        kind=kind,
        system=data.system.name,
        scales=[s.tolist() for s in scales],
        options=options,
        seed=seed,
        jaxid_version=__version__,
    )
    return result, spec


def _agreement(ev1: HybridEvaluation, ev2: HybridEvaluation) -> dict:
    """How well two runs' latents agree: MCC of the neural latents, |corr| of the physics latents."""
    z1, z2 = ev1.z_a, ev2.z_a
    k = min(z1.shape[1], z2.shape[1])
    p1, p2 = ev1.z_p[:, 0], ev2.z_p[:, 0]
    corr = float(np.abs(np.corrcoef(p1, p2)[0, 1])) if p1.std() > 0 and p2.std() > 0 else 0.0
    return {
        "mcc_z_n": mcc(z1[:, :k], z2),
        "corr_z_p": corr,
        "z_p_mse_between": float(np.mean((p1 - p2) ** 2)),
    }


def run_hybrid_study(config: HybridStudyConfig, out: str | Path) -> dict:
    """Run the study (module docstring); write the report to ``out``; return the results."""
    from .hybrid_report import figures, markdown

    config.validate()
    out = Path(out)
    (out / "models").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    say = print if config.progress else (lambda *a, **k: None)
    results: dict = {
        "jaxid_version": __version__,
        "config": asdict(config),
        "systems": {},
        "task_sweep": {},
        "seed_agreement": {},
    }
    keep: dict = {}  # arrays for the figures
    for s_index, name in enumerate(config.systems):
        t0 = time.perf_counter()
        data = _data(config, s_index, name)
        sys = data.system
        entry = {
            "data": dict(data.config, seconds=round(time.perf_counter() - t0, 2)),
            "physics": list(sys.physics_names),
            "factors": list(sys.factor_names),
            "z_p_bound": {
                split: {"mse": b.mse, "rms": b.rms}
                for split, b in (("id", zp_bound(sys, data.test)), ("ood", zp_bound(sys, data.ood)))
            },
            "models": {},
        }
        keep[name] = {"data": data, "models": {}}
        for kind in config.models:
            fitted, spec = _train(kind, data, config, config.seed, f"{name} {kind}")
            save_model(out / "models" / f"{name}-{kind}.eqx", fitted.model, spec)
            evs = {
                split: evaluate(fitted.model, getattr(data, split), context_size=config.context_size)
                for split in ("test", "ood")
            }
            entry["models"][kind] = {
                "id": _scores(evs["test"]),
                "ood": _scores(evs["ood"]),
                "train_seconds": round(fitted.seconds, 2),
                "best_step": fitted.best_step,
                "history": fitted.history,
                "aux": fitted.aux,
            }
            keep[name]["models"][kind] = evs
            say(f"{name} {kind}: ID {_fmt_scores(evs['test'])} | OOD {_fmt_scores(evs['ood'])}")
            if name in config.seed_systems:
                again, _ = _train(
                    kind, data, config, config.seed + 1, f"{name} {kind} seed {config.seed + 1}"
                )
                ev2 = evaluate(again.model, data.test, context_size=config.context_size)
                agree = _agreement(evs["test"], ev2)
                agree["second_seed_id"] = _scores(ev2)
                results["seed_agreement"].setdefault(name, {})[kind] = agree
                keep[name].setdefault("second_seed", {})[kind] = ev2
        if name in config.task_sweep_systems and "meta_hybrid_vae" in config.models:
            sweep = {}
            for n in config.sweep_counts():
                if n == config.tasks:
                    ev = keep[name]["models"]["meta_hybrid_vae"]["test"]
                else:
                    fitted, _ = _train(
                        "meta_hybrid_vae", data, config, config.seed, f"{name} meta, {n} tasks", n
                    )
                    ev = evaluate(fitted.model, data.test, context_size=config.context_size)
                sweep[str(n)] = _scores(ev)
                say(f"{name} Meta-Hybrid-VAE on {n} tasks: MCC {ev.mcc:.3f}, z_p MSE {ev.z_p_mse:.4g}")
            results["task_sweep"][name] = sweep
        results["systems"][name] = entry
    results["seconds"] = round(time.perf_counter() - start, 1)
    results["figures"] = figures(results, keep, out)
    jio.atomic_write_text(out / "results.json", json.dumps(jsonable(results), indent=2))
    jio.atomic_write_text(out / "report.md", markdown(results))
    say(f"wrote {out / 'report.md'} ({results['seconds']} s)")
    return results


def _fmt_scores(ev: HybridEvaluation) -> str:
    return ", ".join(f"{k} {getattr(ev, k):.4g}" for k in SCORES)
