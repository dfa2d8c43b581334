"""Batched simulation throughput: jaxid against a SciPy solve_ivp loop at matched accuracy.

Problem: the forced damped pendulum of the Phys-VAE data set (omega, gamma, A, f from their
priors, theta0 ~ U[-1.57, 1.57], 50 samples every 0.05 s). Several jaxid configurations are timed
(solver, tolerance, float64 or float32). For each, accuracy is the max |theta error| over a subset
of records against SciPy DOP853 at rtol 1e-12, and SciPy gets the fastest of {RK45, DOP853} x
{rtol 1e-3 .. 1e-11 in half decades} whose error is no worse than that configuration's, so every
comparison is at matched (or better-for-SciPy) accuracy. jaxid is timed after compilation, best of
``--repeats`` runs with ``block_until_ready``, per core (jit+vmap in a subprocess with one XLA
device, pinned to one core with ``taskset -c 0``) and on every core (``simulate_batch`` sharded
over one XLA device per core, see XLA_FLAGS below). The SciPy loop is timed per core (one process,
``--scipy-records`` records; a loop's cost is linear in the record count) and on every core (as
many processes as cores, each with ``--scipy-records`` records). Ratios compare like with like:
jaxid on one core against one SciPy process, jaxid on all cores against all processes.

    python benchmarks/simulate.py                   # 10^2, 10^3, 10^4 records
    python benchmarks/simulate.py --sizes 100 1000 10000 100000 1000000   # e.g. on a GPU
"""

from __future__ import annotations

import argparse
import os

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={os.cpu_count()}"
    ).strip()

import datetime
import json
import multiprocessing
import platform
import subprocess
import sys
import time
from pathlib import Path

import diffrax
import equinox
import jax
import jax.numpy as jnp
import numpy as np
import scipy
from scipy.integrate import solve_ivp

jax.config.update("jax_enable_x64", True)

import jaxid  # noqa: E402
from jaxid import ForcedDampedPendulum, simulate, simulate_batch  # noqa: E402

TS = np.arange(50) * 0.05


# name: (solver, rtol, dtype, PID coefficients); atol = rtol / 100. "PI" uses pcoeff 0.3, icoeff 0.4,
# inside the range diffrax's PIDController documentation suggests tuning in; the others use the
# default I controller.
PI = dict(pcoeff=0.3, icoeff=0.4)
CONFIGS = {
    "tsit5-f64-1e-7": (diffrax.Tsit5, 1e-7, jnp.float64, {}),  # simulate()'s defaults
    "dopri8-f64-1e-7": (diffrax.Dopri8, 1e-7, jnp.float64, {}),
    "dopri8-PI-f64-1e-7": (diffrax.Dopri8, 1e-7, jnp.float64, PI),
    "tsit5-f32-1e-5": (diffrax.Tsit5, 1e-5, jnp.float32, {}),
}
SCIPY_RTOLS = [10.0 ** (-k / 2) for k in range(6, 23)]  # 1e-3 .. 1e-11, half decades


def make_problem(n, dtype=jnp.float64, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    model = ForcedDampedPendulum.sample(k1, n)
    theta0 = jax.random.uniform(k2, (n,), minval=-1.57, maxval=1.57)
    y0 = jnp.stack([theta0, jnp.zeros(n)], -1)
    return jax.tree.map(lambda a: a.astype(dtype), model), y0.astype(dtype)


def scipy_solve(params, y0, method, rtol):
    omega, gamma, A, f = params

    def rhs(t, y):
        return [y[1], -(omega**2) * np.sin(y[0]) - gamma * y[1] + A * omega**2 * np.cos(2 * np.pi * f * t)]

    sol = solve_ivp(rhs, (TS[0], TS[-1]), y0, method=method, t_eval=TS, rtol=rtol, atol=rtol * 1e-2)
    return sol.y[0]


def scipy_loop(P, Y0, method, rtol):
    return np.stack([scipy_solve(P[i], Y0[i], method, rtol) for i in range(len(P))])


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def matched_scipy(target_err, P, Y0, reference, Ps, Y0s, repeats):
    """Fastest SciPy method/tolerance whose max error on (P, Y0) is no worse than ``target_err``."""
    timed = []
    for method in ("RK45", "DOP853"):
        for rtol in SCIPY_RTOLS:  # loosest first: the first that is accurate enough is the fastest
            err = float(np.abs(scipy_loop(P, Y0, method, rtol) - reference).max())
            if err <= target_err:
                seconds = best_time(lambda m=method, r=rtol: scipy_loop(Ps, Y0s, m, r), repeats)
                timed.append(
                    dict(method=method, rtol=rtol, max_abs_error=err, records_per_s=len(Ps) / seconds)
                )
                break
    return max(timed, key=lambda r: r["records_per_s"]), timed


def _loop_part(job):
    P, Y0, method, rtol = job
    return scipy_loop(P, Y0, method, rtol)


def scipy_all_processes(method, rtol, n_per_process, repeats):
    """Records/s of the SciPy loop split over one process per core."""
    cores = os.cpu_count()
    model, y0 = make_problem(n_per_process * cores, seed=3)
    P, Y0 = np.asarray(model.params), np.asarray(y0)
    jobs = [(P[i::cores], Y0[i::cores], method, rtol) for i in range(cores)]
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        pool.map(_loop_part, [(j[0][:2], j[1][:2], method, rtol) for j in jobs])  # start the workers
        seconds = best_time(lambda: pool.map(_loop_part, jobs), repeats)
    return len(P) / seconds


def one_core_worker(args):
    """In a subprocess with one XLA device, pinned to one core: jit(vmap) records/s by config and size."""
    out = {}
    for name in args.configs:
        solver_cls, rtol, dtype, pid = CONFIGS[name]
        controller = diffrax.PIDController(rtol=rtol, atol=rtol * 1e-2, **pid)
        opts = dict(solver=solver_cls(), stepsize_controller=controller)
        ts = jnp.asarray(TS, dtype)
        one_device = jax.jit(lambda model, y0, ts=ts, opts=opts: jax.vmap(
            lambda mi, yi: simulate(mi, yi, ts, **opts).obs)(model, y0))  # fmt: skip
        out[name] = {}
        for n in args.sizes:
            model, y0 = make_problem(n, dtype)
            jax.block_until_ready(one_device(model, y0))
            out[name][n] = n / best_time(lambda f=one_device, m=model, y=y0: f(m, y), args.repeats)
    print("RESULT " + json.dumps(out), flush=True)


def one_core_rates(args):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    # The worker imports this checkout's jaxid, as the parent does when run from the repository.
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    cmd = [
        "taskset",
        "-c",
        "0",
        sys.executable,
        __file__,
        "--one-core-worker",
        "--repeats",
        str(args.repeats),
    ]
    cmd += ["--configs", *args.configs, "--sizes", *map(str, args.sizes)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"one-core worker failed:\n{proc.stdout}\n{proc.stderr[-4000:]}")
    return {name: {int(n): r for n, r in rows.items()} for name, rows in json.loads(lines[-1][7:]).items()}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scipy-records", type=int, default=200)
    parser.add_argument("--accuracy-records", type=int, default=100)
    parser.add_argument("--out", default=None, help="JSON path (default results/simulate-<platform>.json)")
    parser.add_argument("--one-core-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_core_worker:
        return one_core_worker(args)
    per_core = one_core_rates(args)

    model_a, y0_a = make_problem(args.accuracy_records, seed=1)
    P, Y0 = np.asarray(model_a.params), np.asarray(y0_a)
    reference = scipy_loop(P, Y0, "DOP853", 1e-12)
    model_s, y0_s = make_problem(args.scipy_records, seed=2)
    Ps, Y0s = np.asarray(model_s.params), np.asarray(y0_s)
    devices = jax.local_devices()

    results = []
    for name in args.configs:
        solver_cls, rtol, dtype, pid = CONFIGS[name]
        controller = diffrax.PIDController(rtol=rtol, atol=rtol * 1e-2, **pid)
        opts = dict(solver=solver_cls(), stepsize_controller=controller)
        ts = jnp.asarray(TS, dtype)

        def run_one_device(model, y0, ts=ts, opts=opts):
            return jax.vmap(lambda mi, yi: simulate(mi, yi, ts, **opts).obs)(model, y0)

        one_device = jax.jit(run_one_device)
        model_acc, y0_acc = make_problem(args.accuracy_records, dtype, seed=1)
        err = float(np.abs(np.asarray(one_device(model_acc, y0_acc)[..., 0], np.float64) - reference).max())
        scipy_best, scipy_all = matched_scipy(err, P, Y0, reference, Ps, Y0s, max(1, args.repeats - 1))
        scipy_best["records_per_s_all_processes"] = scipy_all_processes(
            scipy_best["method"], scipy_best["rtol"], args.scipy_records, max(1, args.repeats - 1)
        )
        rows = []
        for n in args.sizes:
            model, y0 = make_problem(n, dtype)

            def sharded(model=model, y0=y0, n=n, ts=ts, opts=opts):
                return simulate_batch(model, y0, ts, chunk_size=n, progress=False, **opts).obs

            sharded()
            t_all = best_time(sharded, args.repeats)
            rows.append(
                dict(
                    records=n,
                    jaxid_one_core_records_per_s=per_core[name][n],
                    jaxid_all_cores_records_per_s=n / t_all,
                    speedup_per_core=per_core[name][n] / scipy_best["records_per_s"],
                    speedup_all_cores=n / t_all / scipy_best["records_per_s_all_processes"],
                )
            )
        results.append(
            dict(
                config=name,
                solver=solver_cls.__name__,
                rtol=rtol,
                atol=rtol * 1e-2,
                dtype=jnp.dtype(dtype).name,
                controller=dict(pcoeff=pid.get("pcoeff", 0.0), icoeff=pid.get("icoeff", 1.0)),
                max_abs_theta_error=err,
                scipy_matched=scipy_best,
                scipy_candidates=scipy_all,
                rows=rows,
            )
        )

    kind = devices[0].device_kind
    print(f"\ndevices: {len(devices)} x {kind}; SciPy timed on {args.scipy_records} records per process")
    header = (
        f"{'config':<19} {'error':>8} {'scipy matched, 1 / all':>28} {'records':>8} {'jaxid 1 core':>12} "
        f"{'jaxid all':>10} {'x 1 core':>8} {'x all':>7}"
    )
    print(header + "\n" + "-" * len(header))
    for r in results:
        sc = r["scipy_matched"]
        rates = f"{sc['records_per_s']:.0f}/{sc['records_per_s_all_processes']:.0f}"
        sc_desc = f"{sc['method']} {sc['rtol']:.0e} {rates}"
        for row in r["rows"]:
            print(
                f"{r['config']:<19} {r['max_abs_theta_error']:>8.1e} {sc_desc:>28} {row['records']:>8} "
                f"{row['jaxid_one_core_records_per_s']:>12.0f} "
                f"{row['jaxid_all_cores_records_per_s']:>10.0f} "
                f"{row['speedup_per_core']:>8.1f} {row['speedup_all_cores']:>7.1f}"
            )

    platform_name = devices[0].platform
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"simulate-{platform_name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(
        benchmark="simulate: forced damped pendulum, 50 samples every 0.05 s, Phys-VAE priors",
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        machine=dict(
            platform=platform_name,
            device_kind=devices[0].device_kind,
            n_devices=len(devices),
            cpu_count=os.cpu_count(),
            processor=platform.processor() or platform.machine(),
        ),
        versions=dict(
            jaxid=jaxid.__version__,
            jax=jax.__version__,
            diffrax=diffrax.__version__,
            equinox=equinox.__version__,
            scipy=scipy.__version__,
            numpy=np.__version__,
        ),
        scipy_timed_records=args.scipy_records,
        accuracy_records=args.accuracy_records,
        results=results,
    )
    out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
