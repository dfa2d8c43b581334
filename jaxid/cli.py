"""The ``jaxid`` command line (also ``python -m jaxid``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _demo(args) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    from . import ForcedDampedPendulum, __version__, simulate_batch
    from .plots import plot_trajectories

    if args.records < 1:
        raise SystemExit("jaxid demo: --records must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key_params, key_y0 = jax.random.split(jax.random.PRNGKey(args.seed))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxid", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="simulate a batch of forced damped pendulums and plot them")
    demo.add_argument("--records", type=int, default=1000, help="number of records (default 1000)")
    demo.add_argument("--chunk-size", type=int, default=4096, help="records per compiled batch")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="jaxid-output/demo", help="output folder")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
