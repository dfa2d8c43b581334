"""Cost of a Fisher information matrix against one simulation: walker, (m, k, l0), 15 s.

Single record: Geyer's reference gait (m 80 kg, k 20 kN/m, l0 1 m, alpha0 69 deg, mid-stance start
y 0.9782 m, vx 1.090 m/s), observed through (x, y) every 0.1 s for 15 s with 1 mm noise. Timed, best
of ``--repeats`` after compilation, in one run:

- one simulation (the experiment's jitted ``theta -> observations``);
- the forward-mode sensitivities (``Experiment.value_and_jacobian``: observations and Jacobian in
  one pass), and the whole ``jaxid.identify.fisher_information`` call (including the host side);
- the peer: central finite differences with the SciPy ``solve_ivp`` event loop of the tests
  (DOP853, rtol 1e-12, relative step 1e-6; 2p + 1 = 7 solves), with its agreement to the AD
  Fisher matrix.

Batch: ``--batch`` parameter sets of the gait data set (default priors, each record on its own
gait), simulated and differentiated under ``vmap`` in one jitted call (one device), records/s.

    python benchmarks/fisher.py
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import time
from pathlib import Path

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy

jax.config.update("jax_enable_x64", True)

import jaxid  # noqa: E402
from jaxid import Walker, generate_gait_dataset, simulate  # noqa: E402
from jaxid.identify import Experiment, fisher_information  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from references import walker_reference  # noqa: E402

ALPHA0 = math.radians(69.0)
NOISE = 1e-3  # m
PARAMS = ("m", "k", "l0")


def best_of(fn, repeats):
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def scipy_fisher(theta, state, ts, rel_step=1e-6, rtol=1e-12):
    """Central-difference Fisher matrix with the SciPy event loop; returns (F, seconds)."""
    start = time.perf_counter()

    def obs(th):
        ys, _, fail = walker_reference(*th, ALPHA0, 9.81, state[:4], ts, rtol=rtol, atol=rtol / 10)
        if fail is not None:
            raise RuntimeError(f"reference walker failed: {fail}")
        return ys[:, :2].ravel()

    obs(theta)  # the nominal solve, as a FIM computation needs it
    cols = []
    for i in range(len(theta)):
        h = rel_step * theta[i]
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        cols.append((obs(up) - obs(down)) / (2 * h))
    j = np.stack(cols, -1) / NOISE
    return j.T @ j, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    ts = jnp.arange(0.0, 15.0 + 1e-9, 0.1)
    walker = Walker(m=80.0, k=20000.0, l0=1.0, channels=("x", "y"))
    y0 = walker.initial_state(0.9782, 1.090)
    theta = np.array([80.0, 20000.0, 1.0])
    exp = Experiment.from_model(walker, y0, ts, noise=NOISE, params=PARAMS, name="kinematics")

    sim = eqx.filter_jit(exp.fn)
    th = jnp.asarray(theta)
    t_sim = best_of(lambda: sim(th), args.repeats)
    t_jac = best_of(lambda: exp.value_and_jacobian(th), args.repeats)
    t_fim = best_of(lambda: fisher_information(exp, theta), args.repeats)
    # On a shared, noisy machine, also time them in alternation: the median of paired ratios
    paired = [best_of(lambda: fisher_information(exp, theta), 1) / best_of(lambda: sim(th), 1)
              for _ in range(args.repeats)]  # fmt: skip
    fim = fisher_information(exp, theta)
    f_ref, t_scipy = scipy_fisher(theta, np.asarray(y0), np.asarray(ts))
    agree = float(np.max(np.abs(fim - f_ref)) / np.max(np.abs(f_ref)))
    single = {
        "simulation_s": t_sim,
        "sensitivities_s": t_jac,
        "fisher_information_s": t_fim,
        "ratio_sensitivities_to_simulation": t_jac / t_sim,
        "ratio_fisher_to_simulation": t_fim / t_sim,
        "ratio_fisher_to_simulation_paired_median": float(np.median(paired)),
        "scipy_central_differences_s": t_scipy,
        "scipy_fd_vs_jaxid_fisher_max_rel_diff": agree,
        "speedup_vs_scipy_fd": t_scipy / t_fim,
    }
    print(f"one record: simulation {t_sim * 1e3:.2f} ms")
    print(f"  sensitivities {t_jac * 1e3:.2f} ms ({t_jac / t_sim:.2f}x)")
    print(f"  fisher_information {t_fim * 1e3:.2f} ms ({t_fim / t_sim:.2f}x)")
    print(f"  median of {args.repeats} paired ratios (FIM, then simulation): {np.median(paired):.2f}x")
    print(
        f"  SciPy central differences {t_scipy:.2f} s ({t_scipy / t_fim:.0f}x slower), rel diff {agree:.2e}"
    )

    # ---------------------------------------------------------------- batch of parameter sets
    data = generate_gait_dataset(args.batch, seed=0, duration=15.0, progress=False)
    params = jnp.asarray(data.params)
    states = jnp.asarray(data.initial_states)
    base = Walker(m=80.0, k=20000.0, l0=1.0, channels=("x", "y"))

    def observe(th, state):
        m = base.with_params(base.params.at[:3].set(th))
        return simulate(m, state, ts).obs

    batch_sim = jax.jit(jax.vmap(observe))
    batch_jac = jax.jit(jax.vmap(lambda th, s: jax.jacfwd(observe)(th, s)))
    tb_sim = best_of(lambda: batch_sim(params, states), max(2, args.repeats // 3))
    tb_jac = best_of(lambda: batch_jac(params, states), max(2, args.repeats // 3))
    jac = np.asarray(batch_jac(params, states))
    finite = int(np.sum(np.isfinite(jac).reshape(args.batch, -1).all(-1)))
    batch = {
        "records": args.batch,
        "simulation_records_per_s": args.batch / tb_sim,
        "fisher_records_per_s": args.batch / tb_jac,
        "ratio_fisher_to_simulation": tb_jac / tb_sim,
        "records_with_finite_jacobian": finite,
    }
    print(f"batch of {args.batch}: simulation {args.batch / tb_sim:.0f} rec/s")
    print(f"  Fisher {args.batch / tb_jac:.0f} rec/s ({tb_jac / tb_sim:.2f}x)")

    device = jax.devices()[0]
    result = {
        "benchmark": "fisher",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "problem": "walker (m, k, l0), 15 s at 0.1 s, (x, y), noise 1 mm; Dopri8 dt 0.01",
        "target": "Fisher information at most 5x one simulation",
        "single_record": single,
        "batch": batch,
        "device": f"{device.platform}: {getattr(device, 'device_kind', '')}",
        "cpu_count": __import__("os").cpu_count(),
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "diffrax": diffrax.__version__,
            "scipy": scipy.__version__,
            "jaxid": jaxid.__version__,
        },
    }
    out = args.out or Path(__file__).parent / "results" / f"fisher-{device.platform}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
