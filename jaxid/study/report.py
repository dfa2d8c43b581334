"""The study's table, Markdown report and figures.

One row per studied parameter and per identifiable combination:

- ``identifiable``: ``yes`` (a finite Cramer-Rao bound at every analysed prior draw), ``no``
  (at none) or ``partly``, and ``why`` (the scaling symmetry that moves it, a non-scaling null
  direction, or the share of draws where the rank drops);
- ``crb_relative``: the median over the draws of the Cramer-Rao bound on the relative standard
  deviation from one record (``inf`` where not identifiable), with its range over the draws;
- ``sobol_total``: the aggregated total Sobol index (parameters only);
- ``network_r2``, ``network_rmse``: the learned estimator on the test split;
- ``bayes_r2``, ``bayes_rmse`` and ``network_r2_bayes``: the Bayes reference's and the
  network's on the records the reference was sampled for;
- ``verdict``: :func:`jaxid.inference.compare`'s (recovered, limited by the data, limited by
  learning, above the Bayes limit: the reference failed, or inconclusive where the difference
  from the limit is within the sampling error of the reference's records).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float

from ..inference import verdict
from .config import StudyConfig
from .pipeline import IdentifiabilityMap, StudyResult


def _finite_stats(values: np.ndarray) -> tuple[float, float, float]:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    return float(np.median(v)), float(np.min(v)), float(np.max(v))


def table(
    config: StudyConfig,
    idm: IdentifiabilityMap,
    combos: Sequence[tuple[str, Sequence[int]]],
    estimators: dict[str, Any],
    bayes: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The rows of the study table (see the module docstring)."""
    rows = []
    frac = idm.identifiable_fraction
    by_name = {r["target"]: r for r in (bayes or {}).get("params", [])}
    by_name_c = {r["target"]: r for r in (bayes or {}).get("combinations", [])}
    ceiling = (estimators.get("ceiling") or {}).get("metrics")
    for i, n in enumerate(idm.names):
        med, lo, hi = _finite_stats(idm.crb_relative[:, i])
        row = _row(n, "parameter", frac[n], idm.why(n), (med, lo, hi), idm.sobol_total.get(n),
                   estimators["params"]["metrics"][n], by_name.get(n))  # fmt: skip
        if ceiling is not None:
            _at_ceiling(row, ceiling[n]["r2"])
        rows.append(row)
    for n, _ in combos:
        k = idm.monomial_text.index(n)
        crb = idm.monomial_crb_relative[:, k]
        f = float(np.mean(np.isfinite(crb[~np.isnan(crb)]))) if np.any(~np.isnan(crb)) else 0.0
        why = "identifiable monomial: orthogonal to every null direction" + (
            "" if f == 1 else f" (not at {1 - f:.0%} of the draws)"
        )
        rows.append(
            _row(n, "combination", f, why, _finite_stats(crb), None,
                 estimators["combinations"]["metrics"][n], by_name_c.get(n))
        )  # fmt: skip
    return rows


def _at_ceiling(row: dict, ceiling_r2: float) -> None:
    """Add the scaling ceiling's R^2 on the test split to ``row``; where the Bayes reference did
    not decide (inconclusive on its few records, or not sampled) and the network is at the ceiling
    on the whole test split (:func:`jaxid.inference.verdict`'s at-limit rule), the network is at
    the limit: the ceiling's R^2 bounds the Bayes limit's from above."""
    row["ceiling_r2"] = ceiling_r2
    undecided = row["verdict"].startswith("inconclusive") or row["verdict"] == "no limit"
    if undecided and verdict(row["network_r2"], ceiling_r2) == "limited by the data":
        row["verdict"] = (
            f"limited by the data (at the scaling ceiling, R^2 {ceiling_r2:.3g} on the test split)"
        )


def _row(name, kind, frac, why, crb, sobol, metrics, cmp) -> dict:
    ident = "yes" if frac == 1 else "no" if frac == 0 else "partly"
    bayes_r2 = None if cmp is None else cmp["bayes_r2"]
    return dict(
        target=name,
        kind=kind,
        identifiable=ident,
        why=why,
        crb_relative=crb[0],
        crb_relative_range=[crb[1], crb[2]],
        sobol_total=sobol,
        network_r2=metrics["r2"],
        network_rmse=metrics["rmse"],
        network_r2_bayes=None if cmp is None else cmp["r2"],
        bayes_r2=bayes_r2,
        bayes_rmse=None if cmp is None else cmp["bayes_rmse"],
        verdict=cmp["verdict"] if cmp is not None else verdict(metrics["r2"], None),
    )


def _fmt(v, digits=3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "inf"
    return f"{v:.{digits}g}"


def _pct(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return "inf" if math.isinf(v) else f"{100 * v:.2g} %"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The study table in Markdown."""
    lines = [
        "| target | identifiable | why | CRB (1 record, median over draws) | total Sobol | network R^2 "
        "| Bayes limit R^2 | network R^2 (same records) | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['target']} | {r['identifiable']} | {r['why']} | {_pct(r['crb_relative'])} | "
            f"{_fmt(r['sobol_total'])} | {_fmt(r['network_r2'], 4)} | {_fmt(r['bayes_r2'], 4)} | "
            f"{_fmt(r['network_r2_bayes'], 4)} | {r['verdict']} |"
        )
    return "\n".join(lines)


def markdown(result: StudyResult) -> str:
    """The whole report."""
    c, idm, d = result.config, result.identifiability, result.data
    lines = [f"# Identifiability study: {c.name}", ""]
    lines.append(
        f"Model `{c.model}`; studied parameters {', '.join(idm.names)} (priors: "
        + ", ".join(f"{n} ~ {dist!r}" for n, dist in zip(c.params.names, c.params.dists, strict=True))
        + "); "
        + (f"fixed {', '.join(f'{k} = {v:g}' for k, v in c.fixed.items())}; " if c.fixed else "")
        + f"channels {', '.join(d['channels'])}, noise {c.noise:g} "
        + ("(fraction of each channel's sd)" if c.relative else "(absolute sd)")
        + f"; seed {c.seed}."
    )
    lines += ["", "## Summary", "", markdown_table(result.table), ""]
    lines += ["## Data", ""]
    rej = ", ".join(f"{k}: {v}" for k, v in d["rejected"].items()) or "none"
    lines.append(
        f"{d['records']} records of shape {tuple(d['obs_shape'])} (time, channel) from {d['candidates']} "
        f"candidates; rejected: {rej}. Simulated in {d['seconds']} s"
        + (
            " by `jaxid.generate_gait_dataset`: each record is its gait's periodic orbit."
            if d.get("records_from") == "jaxid.generate_gait_dataset"
            else "."
        )
    )
    lines += ["", "## Identifiability across the prior", ""]
    ok = idm.ranks >= 0
    counts = {int(r): int(np.sum(idm.ranks == r)) for r in np.unique(idm.ranks[ok])}
    lines.append(
        f"Fisher rank of one record at {int(ok.sum())} prior draws ({idm.scale} parameters): "
        + ", ".join(f"rank {r} of {len(idm.names)} at {k}" for r, k in counts.items())
        + (f"; {int((~ok).sum())} draws failed to simulate" if not ok.all() else "")
        + "."
    )
    if idm.scaling_text:
        lines.append(f"Scaling symmetries: {'; '.join(idm.scaling_text)}.")
    if idm.non_scaling:
        lines.append(f"Non-scaling null directions: {idm.non_scaling} (no monomial describes them).")
    if idm.monomial_text:
        lines.append(f"Identifiable monomials: {', '.join(idm.monomial_text)}.")
    lines += ["", "| draw | " + " | ".join(idm.names) + " | rank |", "|---" * (len(idm.names) + 2) + "|"]
    for i in range(len(idm.ranks)):
        vals = " | ".join(_fmt(v, 4) for v in idm.thetas[i])
        lines.append(f"| {i} | {vals} | {idm.ranks[i] if idm.ranks[i] >= 0 else 'failed'} |")
    lines += ["", "Relative Cramer-Rao bounds over the draws (median [min, max]):", ""]
    lines += ["| target | median | min | max |", "|---|---|---|---|"]
    for r in result.table:
        lo, hi = r["crb_relative_range"]
        lines.append(f"| {r['target']} | {_pct(r['crb_relative'])} | {_pct(lo)} | {_pct(hi)} |")
    if idm.sobol_error is not None:
        lines += ["", f"Total Sobol indices: not computed ({idm.sobol_error})."]
    else:
        lines += ["", "Total Sobol indices (aggregated over the observations, variance-weighted):", ""]
        lines += ["| input | S_T |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in idm.sobol_total.items()]
    if result.design is not None:
        lines += ["", "## What would make it identifiable", ""]
        dz = result.design
        lines.append(
            f"Candidate additions to one record, ranked by the targets they make identifiable, the rank, "
            f"the information they add along the base's null directions and the Cramer-Rao bounds "
            f"({'relative, on log parameters' if dz.log else 'natural parameters'}), at "
            f"{dz.thetas.shape[0]} prior draws (`jaxid.study.design`):"
        )
        lines += ["", dz.table()]
    lines += ["", "## Estimators", ""]
    est = c.estimators
    lines.append(
        f"`jaxid.nn.train` ({est.arch}, depth {est.depth}, width {est.width}, at most {est.epochs} epochs, "
        f"batch {est.batch_size}) on {'log ' if idm.scale == 'log' else ''}targets; test split of "
        f"{result.estimators['test_records']} records."
    )
    for key in ("params", "combinations"):
        if key in result.estimators:
            e = result.estimators[key]
            lines.append(
                f"- ({', '.join(e['names'])}): {e['training']['epochs_run']} epochs, "
                f"{e['training']['seconds']} s; "
                + ", ".join(f"{n} R^2 {_fmt(m['r2'], 4)}" for n, m in e["metrics"].items())
            )
    pn = result.estimators.get("posterior")
    if pn is not None:
        level = "0.9" if "0.9" in pn["coverage"] else next(iter(pn["coverage"]))
        cover = pn["coverage"][level]
        lines.append(
            f"- Posterior network (`jaxid.nn.train_posterior`, {pn['training']['epochs_run']} epochs; "
            f"{pn['samples']} draws per test record): its mean's "
            + ", ".join(f"{n} R^2 {_fmt(m['r2'], 4)}" for n, m in pn["metrics"].items())
            + f"; coverage of the central {float(level):.0%} interval "
            + ", ".join(f"{n} {v:.3f}" for n, v in cover.items())
            + "; SBC rank uniformity p "
            + ", ".join(f"{n} {_fmt(v)}" for n, v in pn["rank_pvalue"].items())
        )
    ceil = result.estimators.get("ceiling")
    if ceil is not None and "metrics" in ceil:
        lines.append(
            f"- Scaling ceiling (`jaxid.nn.scaling_ceiling`: the posterior mean on the orbit of "
            f"{ceil['scaling']}, the identifiable monomials known exactly; it bounds the Bayes limit from "
            f"above) on the {ceil['records']} test records: "
            + ", ".join(f"{n} R^2 {_fmt(m['r2'], 4)}" for n, m in ceil["metrics"].items())
        )
    elif ceil is not None:
        lines.append(f"- Scaling ceiling not computed: {ceil['error']}")
    lines += ["", "## The Bayes limit", ""]
    b = result.bayes
    if b is None:
        lines.append("Not computed (bayes.records < 2).")
    else:
        lines.append(
            f"`jaxid.inference.sample_posterior` on {b['records']} test records ({b['records_used']} passed "
            f"their diagnostics, {b['records_flagged']} flagged, of which {b.get('records_misfit', 0)} "
            f"because the chains' residuals were far above the noise) in {b['seconds']} s; the Bayes risk "
            "(posterior-mean error) is the least error any estimator can reach from these records."
        )
        if "error" in b:
            lines.append(f"Not usable: {b['error']}.")
        if "posterior_network" in b:
            lines += ["", "The posterior network's mean against the limit on the same records:", ""]
            lines += ["| target | flow-mean R^2 | Bayes limit R^2 | median Wasserstein (sds) | verdict |"]
            lines += ["|---|---|---|---|---|"]
            for r in b["posterior_network"]:
                lines.append(
                    f"| {r['target']} | {_fmt(r['r2'], 4)} | {_fmt(r['bayes_r2'], 4)} | "
                    f"{_fmt(r.get('wasserstein_sd'))} | {r['verdict']} |"
                )
    if result.figures:
        lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in result.figures]
    lines += ["", f"Total time {result.seconds} s."]
    return "\n".join(lines) + "\n"


def figures(
    out: Path,
    result: StudyResult,
    truth: Float[np.ndarray, "record param"],
    pred: Float[np.ndarray, "record param"],
    truth_c: Float[np.ndarray, "record combination"] | None,
    pred_c: Float[np.ndarray, "record combination"] | None,
) -> list[str]:
    """``identifiability.png`` (rank per draw, relative bounds per draw), ``estimates.png``
    (network estimates against the truth on the test split) and, with a design ranking,
    ``design.png`` (:meth:`~jaxid.study.DesignRanking.plot`)."""
    from ..experiments.results import save_figure
    from ..plots import agg_pyplot

    plt = agg_pyplot()

    idm = result.identifiability
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    draws = np.arange(len(idm.ranks))
    axes[0].bar(draws, idm.ranks, color="tab:blue")
    axes[0].axhline(len(idm.names), color="k", ls="--", lw=1, label="full rank")
    axes[0].set(xlabel="prior draw", ylabel="Fisher rank", title="rank across the prior")
    axes[0].legend(fontsize=8)
    for i, n in enumerate(idm.names):
        v = idm.crb_relative[:, i]
        finite = np.isfinite(v)
        axes[1].semilogy(draws[finite], v[finite], "o-", label=n)
    for k, n in enumerate(idm.monomial_text):
        v = idm.monomial_crb_relative[:, k]
        finite = np.isfinite(v)
        axes[1].semilogy(draws[finite], v[finite], "s--", label=n)
    axes[1].set(xlabel="prior draw", ylabel="relative CRB (finite only)", title="Cramer-Rao bounds")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "identifiability.png", dpi=110)
    plt.close(fig)

    names = list(idm.names) + [n for n, _ in result.combinations]
    t = truth if truth_c is None else np.concatenate([truth, truth_c], axis=1)
    pr = pred if pred_c is None else np.concatenate([pred, pred_c], axis=1)
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 3.0), squeeze=False)
    for j, (ax, n) in enumerate(zip(axes[0], names, strict=True)):
        ax.scatter(t[:, j], pr[:, j], s=5, alpha=0.6)
        lo, hi = float(np.min(t[:, j])), float(np.max(t[:, j]))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set(title=n, xlabel="true", ylabel="network" if j == 0 else None)
    fig.tight_layout()
    save_figure(fig, out / "estimates.png", dpi=110)
    plt.close(fig)
    names = ["identifiability.png", "estimates.png"]
    if result.design is not None:
        fig = result.design.plot()
        save_figure(fig, out / "design.png", dpi=110)
        plt.close(fig)
        names.append("design.png")
    return names
