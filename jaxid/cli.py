"""The ``jaxid`` command line (also ``python -m jaxid``)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _arg_type(parse: Callable[[str], Any], ok: Callable[[Any], bool], expected: str, must: str):
    """An argparse ``type``: ``parse(text)`` (a ``ValueError``: "expected ``expected``"), then
    ``ok(value)`` (false: "must be ``must``")."""

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {must}, got {text}")
        return value

    return convert


_positive_int = _arg_type(int, lambda v: v >= 1, "a positive integer", "a positive integer")
_positive_float = _arg_type(
    float, lambda v: math.isfinite(v) and v > 0, "a positive number", "a positive finite number"
)
_nonnegative_int = _arg_type(int, lambda v: v >= 0, "an integer >= 0", "an integer >= 0")
_fraction = _arg_type(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0", "a finite number >= 0")


def _list_of(parse: Callable[[str], Any], what: str):
    """An argparse ``type`` for comma-separated values, each read by ``parse``."""

    def convert(text: str) -> tuple:
        try:
            return tuple(parse(v) for v in text.split(",") if v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from None

    return convert


_int_list = _list_of(lambda v: int(float(v)), "integers")
_float_list = _list_of(float, "numbers")


def _given(**options) -> dict:
    """The options given on the command line (those not ``None``)."""
    return {k: v for k, v in options.items() if v is not None}


def _run_study(command: str, make: Callable, run: Callable, args, given: dict) -> int:
    """Build the study's configuration (``make(seed=..., progress=..., **given)``, validated: a bad
    option ends the command with one line), run it into ``--out``, and say where the report is."""
    try:
        config = make(seed=args.seed, progress=not args.quiet, **given)
        config.validate()
    except (TypeError, ValueError) as err:
        raise SystemExit(f"jaxid {command}: {err}") from None
    results = run(config, args.out)
    if args.quiet:
        print(f"wrote {Path(args.out) / 'report.md'} ({results['seconds']} s)")
    return 0


def _writable_out(command: str, out: str) -> Path:
    """The output folder, created; an unwritable one ends the command with one line."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".jaxid-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or str(err)
        raise SystemExit(f"jaxid {command}: --out {out!r} is not a writable folder ({reason})") from None
    return path


def _demo(args) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    from . import ForcedDampedPendulum, __version__, simulate_batch
    from .plots import plot_trajectories

    out = _writable_out("demo", args.out)
    key_params, key_y0 = jax.random.split(jax.random.key(args.seed))
    model = ForcedDampedPendulum.sample(key_params, args.records)
    theta0 = jax.random.uniform(key_y0, (args.records,), minval=-1.57, maxval=1.57)
    y0 = jnp.stack([theta0, jnp.zeros_like(theta0)], -1)
    ts = jnp.arange(50) * 0.05
    start = time.perf_counter()
    sim = simulate_batch(model, y0, ts, chunk_size=args.chunk_size, progress=not args.quiet)
    seconds = time.perf_counter() - start
    fig = plot_trajectories(sim, model.obs_names, title="Forced damped pendulum: theta(t)")
    fig.savefig(out / "trajectories.png", dpi=120)
    summary = {
        "jaxid_version": __version__,
        "model": "ForcedDampedPendulum",
        "records": args.records,
        "failed": int(np.sum(~sim.success)),
        "seconds_including_compile": round(seconds, 3),
        "mean_solver_steps": float(np.mean(sim.num_steps)),
        "seed": args.seed,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"wrote {out / 'trajectories.png'} and {out / 'summary.json'}")
    return 0


def _gait(args) -> int:
    _writable_out("gait", args.out)
    import jax

    jax.config.update("jax_enable_x64", True)
    from .experiments.gait import SWEEPS, GaitStudyConfig, run_gait_study

    sweeps = tuple(s for s in args.sweep.split(",") if s)
    if sweeps == ("all",):
        sweeps = SWEEPS
    elif sweeps == ("none",):
        sweeps = ()
    given = _given(
        records=args.records,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        noise=args.noise,
        arch=args.arch,
        depth=args.depth,
        width=args.width,
        activation=args.activation,
        members=args.members,
        duration=args.duration,
        sizes=args.sizes,
        noise_levels=args.noise_levels,
        bayes_records=args.bayes_records,
        bayes_draws=args.bayes_draws,
        bayes_warmup=args.bayes_warmup,
    )
    make = GaitStudyConfig.full if args.full else GaitStudyConfig
    given.update(sweeps=sweeps, posterior=not args.no_posterior)
    return _run_study("gait", make, run_gait_study, args, given)


def _str_list(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _hybrid(args) -> int:
    if args.out is None:
        args.out = "jaxid-output/hybrid-claims" if args.claims else "jaxid-output/hybrid"
    _writable_out("hybrid", args.out)
    import jax

    jax.config.update("jax_enable_x64", True)  # the truth simulations; the models train in float32
    from .experiments.hybrid import HybridStudyConfig, run_hybrid_study

    given = _given(
        systems=args.systems,
        models=args.models,
        tasks=args.tasks,
        per_task=args.per_task,
        test_tasks=args.test_tasks,
        ood_tasks=args.ood_tasks,
        context_size=args.context_size,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        width=args.width,
        task_counts=args.task_counts,
        task_sweep_systems=args.task_sweep,
        seed_systems=args.seed_systems,
    )
    if args.claims and args.full:
        raise SystemExit("jaxid hybrid: --claims and --full are separate studies; pass one")
    if args.claims:
        from .experiments.hybrid_claims import HybridClaimsConfig, run_hybrid_claims

        if args.seeds is not None:
            given["seeds"] = args.seeds
        if args.n_boot is not None:
            given["n_boot"] = args.n_boot
        if args.workers is not None:
            given["workers"] = args.workers
        make, run = HybridClaimsConfig, run_hybrid_claims
    elif args.seeds is not None or args.n_boot is not None or args.workers is not None:
        raise SystemExit("jaxid hybrid: --seeds, --n-boot and --workers belong to --claims")
    else:
        make = HybridStudyConfig.full if args.full else HybridStudyConfig
        run = run_hybrid_study
    return _run_study("hybrid", make, run, args, given)


def _study(args) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from . import study

    if args.list_presets:
        for name in study.preset_names():
            print(f"{name}\t{study.preset_path(name)}")
        return 0
    if args.config is None:
        raise SystemExit("jaxid study: give a CONFIG.toml or a preset name (see --list-presets)")
    try:
        if args.config in study.preset_names() and not Path(args.config).is_file():
            config = study.load_preset(args.config)
        else:
            config = study.load_config(args.config)
        changes = _given(records=args.records, seed=args.seed)
        if changes:
            config = config.replace(**changes)
        study.config.build_start(config, study.config.validate(config))  # its errors, before any work
        if args.design:
            if config.design is None:
                raise ValueError("--design: the configuration has no [design] table of candidates")
            print(study.study_design(config).table())
            return 0
    except (TypeError, ValueError) as err:
        raise SystemExit(f"jaxid study: {err}") from None
    out = Path(args.out) if args.out else Path("jaxid-output") / "study" / config.name
    result = study.run(config, out=out, progress=not args.quiet)
    print(study.report.markdown_table(result.table))
    print(f"wrote {out / 'report.md'} ({result.seconds} s)")
    return 0


def _add_study_parser(sub) -> None:
    p = sub.add_parser(
        "study",
        help="the identifiability study of any model from a TOML configuration (or a preset)",
        description="Simulate records of a model, map its Fisher identifiability across the prior, "
        "train estimators for its parameters and identifiable combinations, compare them with the "
        "Bayes limit and write a Markdown/JSON/figure report.",
    )
    p.add_argument("config", nargs="?", help="a study TOML file or a preset name")
    p.add_argument("--list-presets", action="store_true", help="list the shipped presets and exit")
    p.add_argument("--out", help="output folder (default jaxid-output/study/NAME)")
    p.add_argument("--records", type=int, help="number of records (overrides the file)")
    p.add_argument("--seed", type=int, help="random seed (overrides the file)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument(
        "--design", action="store_true", help="only rank the [design] candidates (no records, no training)"
    )
    p.set_defaults(func=_study)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxid", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="simulate a batch of forced damped pendulums and plot them")
    demo.add_argument("--records", type=_positive_int, default=1000, help="number of records (default 1000)")
    demo.add_argument("--chunk-size", type=_positive_int, default=4096, help="records per compiled batch")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="jaxid-output/demo", help="output folder")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_demo)

    gait = sub.add_parser(
        "gait",
        help="the gait identifiability study: data, Fisher analysis, estimators, ceiling, report",
        description="Generate walker gait records, analyse their Fisher information, train (m, k, l0) "
        "and identifiable-combination estimators, compare them with the identifiability ceiling and "
        "write a Markdown/JSON/figure report. The default is small (10^4 records; minutes on a "
        "laptop CPU); --full is the seed study's setting (10^6 records, 500 epochs, batch 1000) for a GPU.",
    )
    gait.add_argument("--full", action="store_true", help="10^6 records, 500 epochs, batch 1000")
    gait.add_argument("--records", type=_positive_int, help="number of records (default 10000)")
    gait.add_argument("--duration", type=_positive_float, help="seconds per record (default 15)")
    gait.add_argument("--noise", type=_fraction, help="observation noise, fraction of each channel's sd")
    gait.add_argument("--epochs", type=_positive_int, help="maximum epochs (default 200)")
    gait.add_argument("--batch-size", type=_positive_int, help="minibatch size (default 100)")
    gait.add_argument("--learning-rate", type=_positive_float, help="Adam learning rate (default 1e-3)")
    gait.add_argument("--patience", type=_positive_int, help="early-stopping patience in epochs (default 30)")
    gait.add_argument("--arch", choices=("mlp", "cnn", "gru"), help="estimator network (default mlp)")
    gait.add_argument("--depth", type=_positive_int, help="hidden layers (default 7)")
    gait.add_argument("--width", type=_positive_int, help="units per layer (default 50)")
    gait.add_argument("--activation", help="activation (default relu)")
    gait.add_argument("--members", type=_positive_int, help="deep-ensemble members (default 1)")
    gait.add_argument(
        "--sweep",
        default="forces",
        help="comma-separated sweeps: size, noise, arch, forces; all; or none (default forces)",
    )
    gait.add_argument("--sizes", type=_int_list, help="data sizes of the size sweep, e.g. 1000,3000,10000")
    gait.add_argument("--noise-levels", type=_float_list, help="noise levels of the noise sweep (0,0.01,...)")
    gait.add_argument(
        "--bayes-records",
        type=_nonnegative_int,
        help="with --noise above 0: test records whose exact posterior is sampled as the Bayes limit "
        "(default 10; 0: none)",
    )
    gait.add_argument("--bayes-draws", type=_positive_int, help="kept draws per chain of it (default 1000)")
    gait.add_argument(
        "--bayes-warmup", type=_positive_int, help="adaptation steps per chain before them (default 1000)"
    )
    gait.add_argument(
        "--no-posterior", action="store_true", help="skip the posterior network and its calibration"
    )
    gait.add_argument("--seed", type=int, default=0)
    gait.add_argument("--out", default="jaxid-output/gait", help="output folder")
    gait.add_argument("--quiet", action="store_true", help="no progress output")
    gait.set_defaults(func=_gait)

    hybrid = sub.add_parser(
        "hybrid",
        help="APHYNITY, Hybrid-VAE and Meta-Hybrid-VAE side by side on three systems",
        description="Simulate task-structured data (forced damped pendulum, double pendulum, "
        "advection-diffusion), train APHYNITY, Hybrid-VAE and Meta-Hybrid-VAE, score their latents "
        "(MSE of z_p, MCC of z_n) and sequences (reconstruction, prediction) in and out of "
        "distribution, sweep the number of meta-learning tasks, compare two seeds, and write a "
        "Markdown/JSON/figure report. The default takes about ten minutes on a 2-core CPU; --full "
        "is a setting for a GPU.",
    )
    hybrid.add_argument("--full", action="store_true", help="200 tasks, 20,000 steps, sweeps on every system")
    hybrid.add_argument(
        "--claims",
        action="store_true",
        help="the claims study: three seeds per setting, bootstrap intervals, MCC against tasks with "
        "the Hybrid-VAE control, seed agreement, convergence checks and verdicts (about an hour on "
        "two CPU cores; defaults to the pendulum, 6000 steps)",
    )
    hybrid.add_argument("--seeds", type=_int_list, help="--claims: the runs' seeds (default 0,1,2)")
    hybrid.add_argument("--n-boot", type=_positive_int, help="--claims: bootstrap resamples (default 2000)")
    hybrid.add_argument(
        "--workers",
        type=_positive_int,
        help="--claims: processes the runs are shared out over, one CPU core each (default: one per core)",
    )
    hybrid.add_argument(
        "--systems", type=_str_list, help="comma-separated: pendulum,double_pendulum,advection_diffusion"
    )
    hybrid.add_argument(
        "--models", type=_str_list, help="comma-separated: aphynity,hybrid_vae,meta_hybrid_vae"
    )
    hybrid.add_argument("--tasks", type=_positive_int, help="training tasks (default 40)")
    hybrid.add_argument("--per-task", type=_positive_int, help="sequences per task (default 20)")
    hybrid.add_argument("--test-tasks", type=_positive_int, help="ID test tasks (default 10)")
    hybrid.add_argument("--ood-tasks", type=_positive_int, help="OOD test tasks (default 10)")
    hybrid.add_argument(
        "--context-size", type=_positive_int, help="context sequences per task, K (default 5)"
    )
    hybrid.add_argument("--steps", type=_positive_int, help="training steps per model (default 600)")
    hybrid.add_argument("--batch-size", type=_positive_int, help="minibatch size (default 64)")
    hybrid.add_argument("--learning-rate", type=_positive_float, help="Adam learning rate (default 2e-3)")
    hybrid.add_argument("--width", type=_positive_int, help="units per hidden layer (default 64)")
    hybrid.add_argument("--task-counts", type=_int_list, help="task counts of the MCC-vs-tasks sweep")
    hybrid.add_argument("--task-sweep", type=_str_list, help="systems of the task sweep (default pendulum)")
    hybrid.add_argument(
        "--seed-systems", type=_str_list, help="systems trained with a second seed (default pendulum)"
    )
    hybrid.add_argument("--seed", type=int, default=0)
    hybrid.add_argument(
        "--out", help="output folder (default jaxid-output/hybrid, with --claims jaxid-output/hybrid-claims)"
    )
    hybrid.add_argument("--quiet", action="store_true", help="no progress output")
    hybrid.set_defaults(func=_hybrid)
    _add_study_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
