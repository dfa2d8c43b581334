"""Walker records: jaxid's gait data set against SciPy doing the same job, per core and on all cores.

The job (what :func:`jaxid.generate_gait_dataset` does for every record at its defaults): draw
``(m, k, l0)`` from the priors, take the record's periodic gait at mid-stance height ``0.94 l0``
from a table of gaits over ``K = k l0/(m g)`` (Newton at 32 Chebyshev nodes of ``K``, checked at
the 31 midpoints), integrate one period from its mid-stance state and tile it over 15 s saved
every 0.1 s (151 samples of ``x``, ``y``).

- jaxid: ``generate_gait_dataset(--records)`` (Dopri8 at the data set's own 25 ms step, events
  located), run in a subprocess after a compiling call, best of ``--repeats``: once on one core
  (``XLA_FLAGS=--xla_force_host_platform_device_count=1`` and ``taskset -c 0``), once on every
  core (one XLA device per core). Its gait table is timed separately.
- SciPy: the same job written with ``solve_ivp`` (``tests/references.py``): its own table (SciPy's
  root finding on its own event loop at the same nodes and midpoints, rtol 1e-11), then per record
  the barycentric interpolant, one period with DOP853 (one ``solve_ivp`` call per phase, terminal
  events, dense output at the sample phases) and the tiling; in one process (per core), and split
  over as many processes as cores; best of ``--repeats`` too.

jaxid's per-record rate is ``(records - chunk) / (t(records) - t(chunk))`` (the gait table is a
fixed cost per call, reported apart). Accuracy, on the timed records themselves: the first
``--accuracy-records`` jaxid records (float64, as the generator computes them) and every SciPy-timed
record against SciPy DOP853 at rtol 1e-12 started at the same state and
tiled with its own step time and length (max |delta(x, y)| over the 15 s). SciPy gets the loosest
rtol (atol = rtol/10) whose error is no worse than jaxid's. Records that fail are not counted as
made (none did here).

    python benchmarks/walking.py                      # 32768 records; about 15 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy
from _machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from references import tile_period, walker_find_gait_reference, walker_period_reference  # noqa: E402

ALPHA0, G, HEIGHT = math.radians(69.0), 9.81, 0.94
SCIPY_RTOLS = [1e-8, 3e-9, 1e-9, 3e-10, 1e-10, 3e-11, 1e-11, 3e-12, 1e-12]


# ---------------------------------------------------------------------------- jaxid (subprocess)


def jaxid_worker(args):
    """Run in a fresh process: XLA_FLAGS is set before JAX is imported."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from jaxid import Walker, generate_gait_dataset
    from jaxid.walker.data import DEFAULT_DT, TABLE_DT, _gait_table, periodic_records

    kw = dict(seed=args.seed, chunk_size=args.chunk_size, progress=False)
    t0 = time.perf_counter()
    generate_gait_dataset(args.chunk_size, **kw)  # compiles the table and the chunk
    compile_s = time.perf_counter() - t0
    k_range = (8000 * 0.6 / (75 * G), 10000 * 0.8 / (60 * G))
    start = time.perf_counter()
    _gait_table(k_range, ALPHA0, G, HEIGHT, TABLE_DT)
    table_s = time.perf_counter() - start
    # The table is a fixed cost per call: the per-record rate comes from the difference between
    # a call with --records and one with a single chunk (same table, same compiled chunk).
    best, best_small, data = math.inf, math.inf, None
    for _ in range(args.repeats):
        start = time.perf_counter()
        generate_gait_dataset(args.chunk_size, **kw)
        best_small = min(best_small, time.perf_counter() - start)
        start = time.perf_counter()
        data = generate_gait_dataset(args.records, **kw)
        best = min(best, time.perf_counter() - start)
    out = dict(
        devices=len(jax.local_devices()),
        compile_seconds=compile_s,
        table_seconds=table_s,
        seconds=best,
        seconds_one_chunk=best_small,
        records_per_s=(args.records - args.chunk_size) / (best - best_small),
        records=len(data),
        rejected=data.rejected,
        gait_mode=data.config["gait_mode"],
        dt=DEFAULT_DT,
    )
    if args.save:
        out["profile"] = profile(data, args.chunk_size)
        data = generate_gait_dataset(args.accuracy_records, **kw)  # the first records of the timed set
        p = data.params
        rec = periodic_records(
            Walker(m=p[:, 0], k=p[:, 1], l0=p[:, 2]), data.initial_states, data.gait_step_time, data.ts
        )
        ys, status, mismatch = rec.ys, rec.status, rec.mismatch
        np.savez(
            args.save,
            params=p,
            initial_states=data.initial_states,
            step_time=data.gait_step_time,
            step_length=data.gait_step_length,
            eigenvalue=data.gait_eigenvalue,
            xy64=np.asarray(ys)[..., :2],
            obs=data.obs,
            ts=data.ts,
            status=np.asarray(status),
            mismatch=np.asarray(mismatch),
        )
    print("RESULT " + json.dumps(out), flush=True)


def profile(data, chunk):
    """Where one chunk's time goes on this core: the whole compiled chunk (draws, gait table,
    period, samples, float32 records), and within one block of records (as the generator
    integrates them) the period's steps (lock-step loop) and the samples (Hermite); XLA's flop
    estimates and the steps each record needed."""
    import jax
    import jax.numpy as jnp

    from jaxid import Walker
    from jaxid.simulate.chunking import batch_sharding
    from jaxid.walker import data as wd

    block = wd._block_size(chunk) or chunk
    p, s, t = data.params[:block], data.initial_states[:block], data.gait_step_time[:block]
    walker = Walker(m=p[:, 0], k=p[:, 1], l0=p[:, 2]).broadcast()
    iterations = wd._iterations(float(data.gait_step_time.max()), wd.DEFAULT_DT)
    ts = jnp.asarray(data.ts)
    knots_fn = jax.jit(lambda w, s, t: wd._knots(w, s, t, wd.DEFAULT_DT, iterations))

    def phases(t):
        n = jnp.floor(ts[None, :] / t[:, None])
        return jnp.clip(ts[None, :] - n * t[:, None], 0.0, t[:, None])

    states_fn = jax.jit(lambda w, k, t: wd._states(w, k, phases(t)))
    knots = jax.block_until_ready(knots_fn(walker, s, t))
    jax.block_until_ready(states_fn(walker, knots, t))

    cfg = data.config
    k_range = (
        cfg["priors"]["k"][0] * cfg["priors"]["l0"][0] / (cfg["priors"]["m"][1] * G),
        cfg["priors"]["k"][1] * cfg["priors"]["l0"][1] / (cfg["priors"]["m"][0] * G),
    )
    table = wd._gait_table(k_range, ALPHA0, G, HEIGHT, wd.TABLE_DT)
    arrays = tuple(jnp.asarray(a) for a in (table.nodes, table.weights, table.values))
    bounds = [jnp.asarray([cfg["priors"][q][i] for q in ("m", "k", "l0")]) for i in (0, 1)]
    _, sharding = batch_sharding()

    def chunk_fn(key):
        return wd._chunk_drawn(
            key,
            *bounds,
            arrays,
            ALPHA0,
            G,
            HEIGHT,
            ts,
            chunk=chunk,
            channels=("x", "y"),
            dt=wd.DEFAULT_DT,
            iterations=iterations,
            sharding=sharding,
            block=wd._block_size(chunk),
        )

    def best(f, *a):
        jax.block_until_ready(f(*a))
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            jax.block_until_ready(f(*a))
            times.append(time.perf_counter() - t0)
        return min(times)

    def flops(f, *a):
        cost = f.lower(*a).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        return float(cost.get("flops", float("nan"))) / block

    kts = np.asarray(knots.ts)
    needed = np.argmax(kts >= kts[:, -1:], axis=1)  # iterations each record used
    return dict(
        chunk=chunk,
        chunk_seconds=best(chunk_fn, jax.random.key(0)),
        records=block,
        loop_iterations=iterations,
        iterations_needed_mean=float(needed.mean()),
        iterations_needed_max=int(needed.max()),
        events_per_record=float(np.mean(np.asarray(knots.num_events))),
        knots_seconds=best(knots_fn, walker, s, t),
        samples_seconds=best(states_fn, walker, knots, t),
        knots_flops_per_record=flops(knots_fn, walker, s, t),
        samples_flops_per_record=flops(states_fn, walker, knots, t),
    )


def run_jaxid(args, devices, cache, save=None):
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_COMPILATION_CACHE_DIR"] = cache  # the two workers share what compiles the same
    # The worker imports this checkout's jaxid, as the parent does when run from the repository.
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, __file__, "--worker", "--records", str(args.records), "--seed", str(args.seed)]
    cmd += ["--chunk-size", str(args.chunk_size), "--repeats", str(args.repeats)]
    cmd += ["--accuracy-records", str(args.accuracy_records)]
    if save:
        cmd += ["--save", save]
    if devices == 1:
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"jaxid worker failed:\n{proc.stdout}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][7:])


# ---------------------------------------------------------------------------- SciPy: the same job


def chebyshev(lo, hi, n=32):
    j = np.arange(n)
    theta = np.pi * (2 * j + 1) / (2 * n)
    return 0.5 * (lo + hi) + 0.5 * (hi - lo) * np.cos(theta), (-1.0) ** j * np.sin(theta)


def barycentric(x, nodes, weights, values):
    d = np.asarray(x, float)[:, None] - nodes[None, :]
    d = np.where(d == 0, 1e-300, d)
    w = weights[None, :] / d
    return (w @ values) / w.sum(axis=1, keepdims=True)


def scipy_table():
    """SciPy's gait table: its own gait search at the Chebyshev nodes and midpoints of K."""
    lo, hi = 8000 * 0.6 / (75 * G), 10000 * 0.8 / (60 * G)
    nodes, weights = chebyshev(lo, hi)
    mids = 0.5 * (nodes[1:] + nodes[:-1])
    values = []
    for kk in np.concatenate([nodes, mids]):
        gait = walker_find_gait_reference(1.0, kk * G, 1.0, ALPHA0, G, HEIGHT, rtol=1e-11, atol=1e-12)
        if gait is None:
            raise SystemExit(f"SciPy found no gait at K = {kk}")
        vx, vy, period, _, _ = gait
        values.append([vx / math.sqrt(G), vy / math.sqrt(G), period * math.sqrt(G)])
    values = np.asarray(values)
    error = float(
        np.max(np.abs(barycentric(mids, nodes, weights, values[: len(nodes)]) - values[len(nodes) :]))
    )
    return nodes, weights, values[: len(nodes)], error


def scipy_record(theta, table, ts, rtol):
    """One record, as the data set makes it: gait from the table, one period, tiled. Returns
    ``(xy, initial (y, vx, vy))`` or ``(None, ...)`` when the period fails."""
    m, k, l0 = theta
    nodes, weights, values = table
    vx, vy, period = barycentric([k * l0 / (m * G)], nodes, weights, values)[0]
    root = math.sqrt(G * l0)
    state = (HEIGHT * l0, vx * root, vy * root)
    out = walker_period_reference(m, k, l0, ALPHA0, G, state, rtol=rtol, atol=rtol / 10)
    if out is None:
        return None, state
    return tile_period(out[3], period * l0 / root, out[2], ts), state


def scipy_loop(params, table, ts, rtol):
    xy, states = [], []
    for theta in params:
        r, s = scipy_record(theta, table, ts, rtol)
        xy.append(np.full((len(ts), 2), np.nan) if r is None else r)
        states.append(s)
    return np.stack(xy), np.asarray(states)


def _pool_part(job):
    params, table, ts, rtol = job
    return scipy_loop(params, table, ts, rtol)[0]


def reference(params, states, ts):
    """Tight reference records: one period at rtol 1e-12 from the given mid-stance states, tiled
    with their own step time and length."""
    out = []
    for (m, k, l0), s in zip(params, states, strict=True):
        r = walker_period_reference(m, k, l0, ALPHA0, G, s, rtol=1e-12, atol=1e-13)
        out.append(tile_period(r[3], r[1], r[2], ts))
    return np.stack(out)


# ---------------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=32768)
    parser.add_argument("--accuracy-records", type=int, default=2048, help="the first of the timed records")
    parser.add_argument("--scipy-records", type=int, default=64, help="per process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--save", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "walking-cpu.json"))
    args = parser.parse_args()
    if args.worker:
        return jaxid_worker(args)
    cores = os.cpu_count()

    with tempfile.TemporaryDirectory() as tmp:
        npz = str(Path(tmp) / "records.npz")
        one = run_jaxid(args, 1, tmp, save=npz)
        print(f"jaxid, 1 core: {one}", flush=True)
        every = run_jaxid(args, cores, tmp)
        print(f"jaxid, {cores} cores: {every}", flush=True)
        with np.load(npz) as f:
            rec = {k: f[k] for k in f.files}
    ts = rec["ts"]

    # jaxid's accuracy on every timed record.
    ref = reference(rec["params"], rec["initial_states"][:, 1:4], ts)
    jaxid_err = np.max(np.abs(rec["xy64"] - ref), axis=(1, 2))
    obs_err = float(np.max(np.abs(rec["obs"].astype(float) - ref)))
    print(f"jaxid max |dxy| (float64) {jaxid_err.max():.2e} m; stored float32 {obs_err:.2e} m", flush=True)
    print(f"profile (1 core): {one['profile']}", flush=True)

    # SciPy: its table, its tolerance for jaxid's accuracy, then the timings.
    start = time.perf_counter()
    nodes, weights, values, table_error = scipy_table()
    scipy_table_s = time.perf_counter() - start
    table = (nodes, weights, values)
    print(f"SciPy table: {scipy_table_s:.1f} s, interpolation error {table_error:.1e}", flush=True)
    probe = rec["params"][: args.scipy_records]
    errors, rates, rtol = {}, {}, None
    for r in SCIPY_RTOLS:
        start = time.perf_counter()
        xy, states = scipy_loop(probe, table, ts, r)
        rates[f"{r:.0e}"] = len(probe) / (time.perf_counter() - start)  # one process, as timed below
        err = float(np.nanmax(np.abs(xy - reference(probe, states, ts))))
        errors[f"{r:.0e}"] = err
        if err <= jaxid_err.max() and not np.isnan(xy).any():
            rtol = r
            break
    print(f"SciPy max |dxy| by rtol: {errors}", flush=True)
    print(f"SciPy records/s by rtol (one process, the accuracy scan): {rates}", flush=True)
    if rtol is None:
        raise SystemExit("no SciPy tolerance reached jaxid's accuracy")

    timed = rec["params"][: args.scipy_records]
    scipy_one_s = math.inf
    for _ in range(args.repeats):  # best of as many repeats as jaxid's
        start = time.perf_counter()
        xy, states = scipy_loop(timed, table, ts, rtol)
        scipy_one_s = min(scipy_one_s, time.perf_counter() - start)
    scipy_err = float(np.nanmax(np.abs(xy - reference(timed, states, ts))))
    scipy_ok = int(np.sum(~np.isnan(xy).any(axis=(1, 2))))
    many = rec["params"][: args.scipy_records * cores]
    parts = [(many[i::cores], table, ts, rtol) for i in range(cores)]
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        pool.map(_pool_part, [(p[0][:2], *p[1:]) for p in parts])  # start the workers
        scipy_all_s = math.inf
        for _ in range(args.repeats):
            start = time.perf_counter()
            pool.map(_pool_part, parts)
            scipy_all_s = min(scipy_all_s, time.perf_counter() - start)

    ok = int(np.sum((rec["status"] == 0) & (rec["mismatch"] <= 1e-8)))
    if every["records"] != args.records or one["records"] != args.records:
        raise SystemExit("jaxid made fewer records than asked")
    per_record = dict(
        jaxid_1_core=one["records_per_s"],
        jaxid_all_cores=every["records_per_s"],
        scipy_1_process=scipy_ok / scipy_one_s,
        scipy_all_processes=len(many) / scipy_all_s,
    )
    with_table = dict(
        jaxid_1_core=args.records / one["seconds"],
        jaxid_all_cores=args.records / every["seconds"],
    )
    ratios = dict(
        per_core=per_record["jaxid_1_core"] / per_record["scipy_1_process"],
        all_cores=per_record["jaxid_all_cores"] / per_record["scipy_all_processes"],
    )
    print("\nrecords/s (after the gait table; jaxid timed on", args.records, "records)")
    print(f"{'':<28}{'jaxid':>12}{'SciPy':>12}{'ratio':>9}")
    print(
        f"{'1 core / 1 process':<28}{per_record['jaxid_1_core']:>12,.0f}"
        f"{per_record['scipy_1_process']:>12,.1f}{ratios['per_core']:>8.0f}x"
    )
    print(
        f"{f'{cores} cores / {cores} processes':<28}{per_record['jaxid_all_cores']:>12,.0f}"
        f"{per_record['scipy_all_processes']:>12,.1f}{ratios['all_cores']:>8.0f}x"
    )
    million = 1e6 / per_record["jaxid_all_cores"] + every["table_seconds"]
    print(
        f"gait table: jaxid {one['table_seconds']:.1f} s (1 core), SciPy {scipy_table_s:.1f} s; "
        f"10^6 records on {cores} cores: jaxid {million:.0f} s"
    )
    payload = dict(
        benchmark="walking: the gait data set's job (gait table, one period, tiled; 15 s at 0.1 s), "
        "jaxid vs SciPy doing the same, per core and on all cores",
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        machine=dict(cpu_count=cores, processor=platform.processor() or platform.machine(), cpu=cpu_model()),
        versions=dict(scipy=scipy.__version__, numpy=np.__version__, python=platform.python_version()),
        jaxid_records=args.records,
        jaxid_accuracy_records=args.accuracy_records,
        jaxid_accuracy_records_ok=ok,
        jaxid_dt=one["dt"],
        jaxid_one_core=one,
        jaxid_all_cores=every,
        jaxid_max_abs_error_float64=float(jaxid_err.max()),
        jaxid_max_abs_error_stored_float32=obs_err,
        gait_eigenvalue_range=[float(rec["eigenvalue"].min()), float(rec["eigenvalue"].max())],
        scipy_table_seconds=scipy_table_s,
        scipy_table_interpolation_error=table_error,
        scipy_max_abs_error_by_rtol=errors,
        scipy_records_per_s_by_rtol=rates,
        scipy_rtol=rtol,
        scipy_atol=rtol / 10,
        scipy_timed_records_one_process=len(timed),
        scipy_records_ok=scipy_ok,
        scipy_max_abs_error=scipy_err,
        scipy_timed_records_all_processes=len(many),
        records_per_s=per_record,
        records_per_s_including_jaxid_table=with_table,
        ratio=ratios,
        extrapolated_1e6_seconds_all_cores=million,
    )
    Path(args.out).write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
