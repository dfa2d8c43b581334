"""The data's limit on the hybrid models' physics latent ``z_p``, two ways: the Cramer-Rao bound
(:func:`jaxid.hybrid.zp_bound`, forward-mode sensitivities) and the Bayes risk of the exact
posterior (:func:`jaxid.hybrid.zp_posterior`, quadrature on a grid, no sampler), each from one
sequence of the training window with the unmodelled factors and the initial state known.

- ``python benchmarks/hybrid_zp_limits.py``: for each system of ``jaxid.hybrid.SYSTEMS``, the
  first ``--per-task`` sequences of each test task of the default study's data (seed 0; ID and
  OOD), both limits side by side, and the seconds each took; writes
  ``results/hybrid-zp-limits-cpu.json``.
- ``python benchmarks/hybrid_zp_limits.py --claims DIR [DIR ...]``: adds the Bayes reference
  (``z_p_bayes``, what ``jaxid hybrid --claims`` now computes itself) to claims runs made before
  it existed, on their own data (rebuilt from their ``results.json``'s config and seed), and
  rewrites their ``report.md`` and figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from jaxid import __version__  # noqa: E402
from jaxid.experiments.hybrid import HybridStudyConfig, _data  # noqa: E402
from jaxid.experiments.hybrid_claims import HybridClaimsConfig, _zp_bayes, write_outputs  # noqa: E402
from jaxid.hybrid import SYSTEMS, zp_bound, zp_posterior  # noqa: E402

try:
    from _machine import cpu_model
except ImportError:  # imported as benchmarks.hybrid_zp_limits
    from benchmarks._machine import cpu_model


def limits(per_task: int, nodes: int) -> dict:
    config = HybridStudyConfig(systems=tuple(SYSTEMS), progress=False)
    out = {}
    for s_index, name in enumerate(config.systems):
        data = _data(config, s_index, name)
        sys = data.system
        out[name] = {}
        for split, s_name in (("id", "test"), ("ood", "ood")):
            part = getattr(data, s_name).first(per_task)
            t0 = time.perf_counter()
            crb = zp_bound(sys, part)
            t1 = time.perf_counter()
            post = zp_posterior(
                sys, part, prior_range=data.physics_ranges(s_name)[0], nodes=nodes, progress=True
            )
            t2 = time.perf_counter()
            row = {
                "sequences": int(post.truth.size),
                "prior_range": list(post.prior_range),
                "crb_mse": crb.mse,
                "bayes_mse": post.mse,
                "posterior_variance": post.posterior_variance,
                "sd_over_sqrt_crb": {
                    "median": float(np.median(post.sd / np.sqrt(crb.variances))),
                    "min": float(np.min(post.sd / np.sqrt(crb.variances))),
                    "max": float(np.max(post.sd / np.sqrt(crb.variances))),
                },
                "seconds": {"crb": round(t1 - t0, 2), "bayes": round(t2 - t1, 2)},
            }
            out[name][split] = row
            print(
                f"{name} {split}: CRB {crb.mse:.3g}, Bayes MSE {post.mse:.3g} (posterior variance "
                f"{post.posterior_variance:.3g}), sd / sqrt(CRB) {row['sd_over_sqrt_crb']}, {row['seconds']}",
                flush=True,
            )
    return {
        "config": {"seed": config.seed, "ood_width": config.ood_width, "per_task": per_task},
        "systems": out,
    }


def add_to_claims(directory: Path) -> None:
    path = directory / "results.json"
    results = json.loads(path.read_text())
    fields = {f.name for f in dataclasses.fields(HybridClaimsConfig)}
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in results["config"].items() if k in fields}
    config = HybridClaimsConfig(**{**given, "progress": True, "workers": 1})
    for s_index, name in enumerate(config.systems):
        data = _data(config, s_index, name)
        results["systems"][name]["z_p_bayes"] = _zp_bayes(data.system, data, config)
        print(f"{directory} {name}: {results['systems'][name]['z_p_bayes']}", flush=True)
    results["config"]["zp_nodes"] = config.zp_nodes
    write_outputs(results, directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-task", type=int, default=20, help="sequences per test task (default 20: all)")
    parser.add_argument("--nodes", type=int, default=1001, help="quadrature nodes (default 1001)")
    parser.add_argument(
        "--claims", nargs="+", type=Path, help="claims run folders to add the Bayes reference to"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "hybrid-zp-limits-cpu.json"))
    args = parser.parse_args()
    if args.claims:
        for directory in args.claims:
            add_to_claims(directory)
        return
    result = {
        "benchmark": "the data's limit on z_p: Cramer-Rao bound against the exact posterior's Bayes risk",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
        "machine": {"cpu": cpu_model(), "platform": platform.platform()},
        "versions": {"jaxid": __version__, "jax": jax.__version__},
        "nodes": args.nodes,
        **limits(args.per_task, args.nodes),
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
