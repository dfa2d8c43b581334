"""The Bayes reference on a multimodal likelihood: does it find the global mode, and does it say
so when it does not?

The forced damped pendulum preset of ``jaxid study`` (omega, gamma, A, f from the angle over
2.45 s, 50 samples, noise 1 % of each record's sd): its likelihood oscillates in the forcing
frequency f. ``--records`` test records are drawn from the preset's prior (``--seed``), simulated,
and made noisy as the study does; then :func:`jaxid.inference.sample_posterior` runs at the
preset's warm-up and draws with each ``(starts, fits)`` setting of ``--settings``. Per setting and
record: whether the posterior mean missed the truth (any parameter off by more than 5 % of its
prior width), whether the record was flagged (``ok``), R-hat, the chains' chi-square
(``Posterior.chi2``) and the chi-square at the true parameters; per setting, the Bayes limit's
R^2 over the records that passed. No peer: this checks the reference itself.

    python benchmarks/posterior_modes.py           # writes results/posterior-modes-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import jaxid  # noqa: E402
from jaxid.inference import sample_posterior  # noqa: E402
from jaxid.study import load_preset  # noqa: E402
from jaxid.study.config import build_start, resolve_model  # noqa: E402
from jaxid.study.pipeline import (  # noqa: E402
    _add_noise,
    _augmented_prior,
    _noise_sd,
    make_observer,
    observer_experiment,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=20)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--settings", default="64:4,256:16", help="starts:fits pairs, comma-separated")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "posterior-modes-cpu.json"))
    args = ap.parse_args()

    config = load_preset("forced_damped_pendulum")
    resolved = build_start(config, resolve_model(config))
    prior = _augmented_prior(config, resolved)  # the study's own prior, noise and observer
    fn = make_observer(config, resolved)
    exp = observer_experiment(fn, config.noise, relative=config.relative, param_names=prior.names)
    k_theta, k_noise = jax.random.split(jax.random.key(args.seed))
    theta = np.asarray(prior.sample(k_theta, args.records))
    clean = np.asarray(jax.vmap(fn)(jnp.asarray(theta)))
    y = _add_noise(config, clean, k_noise)
    width = prior.support[1] - prior.support[0]
    chi2_truth = np.sum(((clean - y) / _noise_sd(config, clean)) ** 2, axis=(1, 2))

    rows = []
    for pair in args.settings.split(","):
        starts, fits = (int(v) for v in pair.split(":"))
        t0 = time.perf_counter()
        post = sample_posterior(
            exp,
            y,
            prior,
            key=jax.random.key(1),
            warmup=config.bayes.warmup,
            draws=config.bayes.draws,
            starts=starts,
            fits=fits,
            coords="log",
            chunk_size=args.records,
            progress=False,
        )
        seconds = time.perf_counter() - t0
        missed = np.abs((post.mean - theta) / width).max(axis=1) > 0.05
        ok = post.ok
        mse = ((post.mean - theta) ** 2)[ok].mean(axis=0)
        r2 = 1 - mse / theta[ok].var(axis=0) if ok.sum() > 1 else np.full(len(prior.names), np.nan)
        row = dict(
            starts=starts,
            fits=fits,
            seconds_with_compilation=round(seconds, 1),
            missed=int(missed.sum()),
            flagged=int((~ok).sum()),
            missed_and_flagged=int((missed & ~ok).sum()),
            missed_not_flagged=int((missed & ok).sum()),
            flagged_not_missed=int((~missed & ~ok).sum()),
            bayes_r2_of_passing=dict(zip(prior.names, map(float, r2), strict=True)),
            per_record=dict(
                missed=missed.tolist(),
                ok=ok.tolist(),
                rhat_max=np.round(post.rhat.max(axis=1), 4).tolist(),
                chi2=np.round(post.chi2, 2).tolist(),
                chi2_pvalue=post.chi2_pvalue.tolist(),
            ),
        )
        print(
            f"starts {starts} fits {fits}: missed {row['missed']}, flagged {row['flagged']} "
            f"(missed and flagged {row['missed_and_flagged']}, "
            f"missed not flagged {row['missed_not_flagged']}, "
            f"flagged not missed {row['flagged_not_missed']}); R^2 of the passing records "
            f"{np.round(r2, 4).tolist()}; {seconds:.0f} s",
            flush=True,
        )
        rows.append(row)
    out = dict(
        benchmark="the Bayes reference on the forced damped pendulum preset's multimodal likelihood",
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        machine=dict(
            platform=jax.default_backend(), devices=jax.device_count(), processor=platform.machine()
        ),
        versions=dict(jaxid=jaxid.__version__, jax=jax.__version__),
        records=args.records,
        seed=args.seed,
        observations_per_record=int(np.prod(clean.shape[1:])),
        chi2_at_truth=np.round(chi2_truth, 2).tolist(),
        settings=rows,
    )
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
