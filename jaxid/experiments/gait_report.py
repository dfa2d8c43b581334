"""Tables, figures and the Markdown report of the gait study."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from jaxtyping import ArrayLike, Float, Int

from ..identify.report import IdentifiabilityReport
from ..nn.training import TrainResult
from ..plots import agg_pyplot
from ..walker.data import GaitDataset
from .results import save_figure

PARAMS = ("m", "k", "l0")
UNITS = {"m": "kg", "k": "N/m", "l0": "m", "k/m": "1/s^2"}
AT_CEILING = 0.05
"""A network whose R^2 is within this of the ceiling's is called "at the ceiling"."""


def verdict(r2: float, ceiling_r2: float | None) -> str:
    """In words: recovered, at the ceiling (the data's limit) or below it (the learner's)."""
    if ceiling_r2 is None or not math.isfinite(ceiling_r2):
        return "no ceiling"
    if r2 >= 0.99:
        return "recovered"
    if r2 >= ceiling_r2 - AT_CEILING:
        return "at the ceiling: limited by the data"
    return "below the ceiling: limited by the learner"


def main_table(results: dict, report: IdentifiabilityReport, mono_names: Sequence[str]) -> list[dict]:
    est = results["estimators"]
    ceil = est["ceiling"]["metrics"]
    fisher = results["fisher"]
    rows = []
    for p in PARAMS:
        m = est["params"]["metrics"][p]
        c = ceil[p] if ceil else None
        crb = fisher["crb_relative"][p]
        rows.append(
            dict(
                target=p,
                estimator="(m, k, l0)",
                r2=m["r2"],
                rmse=m["rmse"],
                ceiling_r2=c["r2"] if c else None,
                ceiling_rmse=c["rmse"] if c else None,
                crb_relative=crb,
                fim_identifiable=bool(math.isfinite(crb)),
                verdict=verdict(m["r2"], c["r2"] if c else None),
            )
        )
    for name, crb in zip(mono_names, fisher["monomial_crb_relative"], strict=False):
        m = est["combinations"]["metrics"][name]
        rows.append(
            dict(
                target=name,
                estimator=f"({', '.join(mono_names)})",
                r2=m["r2"],
                rmse=m["rmse"],
                ceiling_r2=1.0,
                ceiling_rmse=0.0,
                crb_relative=crb,
                fim_identifiable=bool(math.isfinite(crb)),
                verdict=verdict(m["r2"], 1.0),
            )
        )
    # The Bayes reference of noisy records (jaxid.experiments.gait_bayes), where it was sampled.
    bayes = results.get("bayes") or {}
    for key, estimator in (("params", "(m, k, l0)"), ("combinations", f"({', '.join(mono_names)})")):
        by_target = {b["target"]: b for b in bayes.get(key, [])}
        for row in rows:
            if row["estimator"] == estimator:
                b = by_target.get(row["target"])
                row["bayes_r2"] = b["bayes_r2"] if b else None
                row["bayes_network_r2"] = b["r2"] if b else None  # on the compared records
                row["bayes_verdict"] = b["verdict"] if b else None
    return rows


def _fmt(v, digits=4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if not math.isfinite(v):
        return "inf"
    return f"{v:.{digits}g}"


def _pct(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str) or not math.isfinite(v):
        return "inf"
    return f"{100 * v:.2g} %"


def markdown(results: dict) -> str:
    cfg, data, fisher = results["config"], results["data"], results["fisher"]
    est = results["estimators"]
    lines = [
        "# Gait identifiability study",
        "",
        f"jaxid {results['jaxid_version']}, devices {', '.join(results['devices'])}, "
        f"{results['seconds']} s in all.",
        "",
        "## Data",
        "",
        f"- {data['records']} records of Geyer's walker on their periodic gaits, {cfg['duration']} s "
        f"saved every {cfg['save_dt']} s, channels {', '.join(data['channels'])}; noise "
        f"{_pct(cfg['noise'])} of each channel's sd; seed {cfg['seed']}.",
        "- Priors: " + ", ".join(f"{p} ~ U[{lo:g}, {hi:g}]" for p, (lo, hi) in data["priors"].items()) + ".",
        f"- Rejected candidates: {sum(data['rejected'].values())} "
        f"({100 * data['rejection_rate']:.2f} %; {data['rejected']}). Generated in {data['seconds']} s.",
        "",
        "## Fisher information (one record at the centre of the priors)",
        "",
        "- Point: " + ", ".join(f"{p} = {v:g}" for p, v in fisher["theta"].items()) + f"; observations "
        f"(x, y) with noise {_pct(fisher['noise_fraction'])} of each channel's sd"
        + (" (the data are noise-free; this level gives finite bounds)" if cfg["noise"] == 0 else "")
        + ".",
        f"- FIM rank **{fisher['rank']} of 3** ({fisher['rank_rule']}); singular values of the whitened "
        "log-parameter Jacobian: " + ", ".join(f"{s:.3g}" for s in fisher["singular_values"]) + ".",
        f"- Scaling symmetries: {', '.join(fisher['scaling_text']) or 'none'}; identifiable combinations: "
        f"**{', '.join(fisher['monomials']) or 'none'}**.",
        "",
        f"## Estimators against the identifiability ceiling (test split, {est['test_records']} records)",
        "",
        f"Network: {cfg['arch'].upper()} (depth {cfg['depth']}, width {cfg['width']}, {cfg['activation']}), "
        f"{cfg['members']} member(s), up to {cfg['epochs']} epochs, batch {cfg['batch_size']}. Ceiling: "
        f"{est['ceiling']['method']}. CRB: Cramer-Rao bound on the relative sd from one record.",
        "",
        "| target | estimator | network R^2 | network RMSE | ceiling R^2 | ceiling RMSE | CRB (relative) "
        "| FIM identifiable | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["table"]:
        unit = UNITS.get(r["target"], "")
        lines.append(
            f"| {r['target']} | {r['estimator']} | {_fmt(r['r2'])} | {_fmt(r['rmse'])} {unit} | "
            f"{_fmt(r['ceiling_r2'])} | {_fmt(r['ceiling_rmse'])} {unit} | {_pct(r['crb_relative'])} | "
            f"{'yes' if r['fim_identifiable'] else 'no'} | {r['verdict']} |"
        )
    for key in ("params", "combinations"):
        t = est[key]["training"]
        lines.append("")
        lines.append(
            f"Training {tuple(est[key]['names'])}: {t['epochs_run']} epochs (best {t['best_epoch']}), "
            f"{t['seconds']} s, {_fmt(t['samples_per_second'], 3)} samples/s."
        )
    lines += ["", "Figures: " + ", ".join(f"![{f}]({f})" for f in results["figures"][:4]), ""]
    if results.get("bayes"):
        lines += _bayes_markdown(results["bayes"], results["table"])
    if "posterior" in results:
        lines += _posterior_markdown(results["posterior"])
    for name, sweep in results.get("sweeps", {}).items():
        lines += _sweep_markdown(name, sweep)
    return "\n".join(lines) + "\n"


def _bayes_markdown(bayes: dict, table: list[dict]) -> list[str]:
    """The Bayes reference's section: its R^2 per target next to the network's, and the verdict."""
    sd = ", ".join(f"{c} {v:.3g} m" for c, v in bayes["noise_sd"].items())
    lines = [
        f"## The Bayes reference at this noise ({bayes['records']} test records)",
        "",
        f"Exact posterior samples of (m, k, l0) given each record's x, y (noise sd {sd}; uniform prior "
        f"box; every record starting on its gait), by adaptive random-walk Metropolis: "
        f"{bayes['sampler']['chains']} chains of {bayes['sampler']['draws']} kept draws. "
        f"{bayes['records_used']} of {bayes['records']} records passed R-hat <= 1.05, ESS >= 100 and the "
        "chains' residuals at their noise "
        f"({bayes['records_flagged']} flagged and left out); {bayes['seconds']} s.",
        "",
    ]
    if "error" in bayes:
        return [*lines, f"Not compared: {bayes['error']}.", ""]
    lines += [
        "| target | estimator | network R^2 | Bayes R^2 | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in table:
        if r.get("bayes_r2") is not None:
            lines.append(
                f"| {r['target']} | {r['estimator']} | {_fmt(r['bayes_network_r2'])} | "
                f"{_fmt(r['bayes_r2'])} | {r['bayes_verdict']} |"
            )
    for r in bayes.get("flow", []):
        lines.append(
            f"| {r['target']} | posterior network (its mean) | {_fmt(r['r2'])} | {_fmt(r['bayes_r2'])} | "
            f"{r['verdict']} |"
        )
    lines += [
        "",
        "R^2 on the compared records only (the networks' here differ from the table above, which "
        "scores the whole test split, and so many fewer records make them noisier). The noise-free "
        "ceiling bounds the Bayes R^2 from above.",
        "",
    ]
    return lines


def _posterior_markdown(post: dict) -> list[str]:
    """The posterior network's section: R^2 of its means against the ceiling, coverage, the ridge."""
    lines = [
        f"## Posterior network (conditional flow, test split, {post['test_records']} records)",
        "",
        f"Bayes reference: {post['bayes_reference']}. Coverage: the fraction of true values inside "
        f"the central 90 % credible interval ({post['samples']} draws per record; binomial sd "
        f"{_fmt(post['coverage_sd'].get('0.9'), 2)}); rank p: the chi-square test of uniform SBC ranks."
        + (f" The flow's embedding {post['embedding']}." if post.get("embedding") else ""),
        "",
        "| target | posterior-mean R^2 | ceiling R^2 | coverage 90 % | worst coverage error (sd) "
        "| rank p | median posterior sd | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in PARAMS:
        r2, c2 = post["metrics"][p]["r2"], post["ceiling"][p]["r2"]
        lines.append(
            f"| {p} | {_fmt(r2)} | {_fmt(c2)} | {_fmt(post['coverage']['0.9'][p], 3)} | "
            f"{_fmt(post['max_coverage_error'][p], 2)} | {_fmt(post['rank_pvalue'][p], 2)} | "
            f"{_fmt(post['posterior_sd'][p], 3)} {UNITS.get(p, '')} | {verdict(r2, c2)} |"
        )
    if post.get("null_angle_deg") is not None:
        lines += [
            "",
            f"Median angle between the flow's principal axis in (log m, log k) and the Fisher null "
            f"direction (1, 1): {post['null_angle_deg']:.1f} degrees.",
        ]
    if "forces" in post:
        f = post["forces"]
        lines += [
            "",
            f"With the ground reaction forces the posterior sd of m is {_fmt(f['m_sd_ratio'], 2)} of the "
            "kinematics-only one (median over records; "
            + ("the ridge collapses" if f["m_sd_ratio"] < 0.2 else "the ridge has not collapsed")
            + f"); posterior-mean R^2 m {_fmt(f['metrics']['m']['r2'])}, k {_fmt(f['metrics']['k']['r2'])}.",
        ]
    return [
        *lines,
        "",
        "![posterior_pairs](posterior_pairs.png) ![posterior_calibration](posterior_calibration.png)",
        "",
    ]


def _r2_cells(metrics, ceiling=None) -> str:
    cells = [_fmt(metrics[p]["r2"], 3) for p in PARAMS]
    if ceiling is not None:
        cells += [_fmt(ceiling[p]["r2"], 3) for p in ("m", "k")]
    return " | ".join(cells)


def _sweep_markdown(name: str, sweep: dict) -> list[str]:
    head = "| R^2 m | R^2 k | R^2 l0 | ceiling m | ceiling k |"
    sep = "|---|---|---|---|---|"
    if name == "size":
        lines = [
            "## Sweep: data size",
            "",
            "| records " + head + " epochs | seconds |",
            "|---" + sep + "---|---|",
        ]
        for r in sweep["rows"]:
            t = r["training"]
            cells = _r2_cells(r["metrics"], r["ceiling"])
            lines.append(f"| {r['records']} | {cells} | {t['epochs_run']} | {t['seconds']} |")
    elif name == "noise":
        lines = ["## Sweep: observation noise", "", "| noise " + head, "|---" + sep]
        for r in sweep["rows"]:
            lines.append(f"| {_pct(r['noise'])} | {_r2_cells(r['metrics'], r['ceiling'])} |")
    elif name == "arch":
        lines = [
            "## Sweep: architecture",
            "",
            "| network | weights | R^2 m | R^2 k | R^2 l0 | epochs | seconds |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in sweep["rows"]:
            t = r["training"]
            cells = _r2_cells(r["metrics"])
            lines.append(f"| {r['label']} | {r['weights']} | {cells} | {t['epochs_run']} | {t['seconds']} |")
        if sweep.get("ceiling"):
            c = sweep["ceiling"]
            lines += ["", f"Ceiling R^2: m {_fmt(c['m']['r2'], 3)}, k {_fmt(c['k']['r2'], 3)}, l0 1."]
    else:
        lines = [
            "## Sweep: multimodal data (ground reaction forces added)",
            "",
            "| channels | FIM rank | identifiable | CRB m | CRB k " + head,
            "|---|---|---|---|---" + sep,
        ]
        for r in sweep["rows"]:
            crb = r["crb_relative"]
            lines.append(
                f"| {', '.join(r['channels'])} | {r['fim_rank']} | {', '.join(r['monomials'])} | "
                f"{_pct(crb['m'])} | {_pct(crb['k'])} | {_r2_cells(r['metrics'], r['ceiling'])} |"
            )
    return [*lines, "", f"![{name}](sweep_{name}.png)", ""]


def _save(fig, out: Path, name: str) -> list[str]:
    plt = agg_pyplot()
    save_figure(fig, out / name, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [name]


def main_figures(
    out: str | Path,
    data: GaitDataset,
    x_kin: Float[np.ndarray, "batch time channel"],
    params: Float[np.ndarray, "batch param"],
    te: Int[np.ndarray, " test"],
    pred_p: Float[ArrayLike, "test param"],
    ceil: Float[ArrayLike, "test param"] | None,
    te_c: Int[np.ndarray, " test_c"],
    targets_c: Float[ArrayLike, "batch combination"],
    pred_c: Float[ArrayLike, "test_c combination"],
    mono_names: Sequence[str],
    report: IdentifiabilityReport,
    res_p: TrainResult,
    res_c: TrainResult,
) -> list[str]:
    plt = agg_pyplot()
    out = Path(out)
    names = []
    # Predicted against true.
    n_panels = 3 + len(mono_names)
    fig, axes = plt.subplots(1, n_panels, figsize=(3.2 * n_panels, 3.2))
    for j, p in enumerate(PARAMS):
        ax = axes[j]
        ax.scatter(params[te, j], pred_p[:, j], s=4, alpha=0.5, label="network")
        if ceil is not None and p in ("m", "k"):
            ax.scatter(params[te, j], ceil[:, j], s=4, alpha=0.5, color="C3", label="ceiling")
        lo, hi = params[:, j].min(), params[:, j].max()
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set(title=p, xlabel="true", ylabel="predicted")
        if j == 0:
            ax.legend(fontsize=7, markerscale=3)
    for j, name in enumerate(mono_names):
        ax = axes[3 + j]
        ax.scatter(targets_c[te_c, j], pred_c[:, j], s=4, alpha=0.5, color="C2")
        lo, hi = targets_c[:, j].min(), targets_c[:, j].max()
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set(title=f"{name} (combination estimator)", xlabel="true", ylabel="predicted")
    fig.tight_layout()
    names += _save(fig, out, "predicted_vs_true.png")
    # FIM spectrum.
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    report.plot_spectrum(ax=ax)
    names += _save(fig, out, "fim_spectrum.png")
    # Training curves.
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for ax, res, title in ((axes[0], res_p, "(m, k, l0)"), (axes[1], res_c, f"({', '.join(mono_names)})")):
        h = res.history
        ep = np.arange(1, len(h["train_loss"]) + 1)
        ax.semilogy(ep, h["train_loss"], label="train")
        ax.semilogy(ep, np.mean(h["val_loss"], axis=1), label="validation")
        ax.set(title=title, xlabel="epoch", ylabel="loss (standardised MSE)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    names += _save(fig, out, "training_curves.png")
    # Example trajectories.
    chans = list(data.channels)
    fig, axes = plt.subplots(1, len(chans), figsize=(3.3 * len(chans), 3.0))
    axes = np.atleast_1d(axes)
    for i in range(min(4, len(data))):
        for c, ax in enumerate(axes):
            ax.plot(data.ts, data.obs[i, :, c], lw=0.9, label=f"m={params[i, 0]:.0f}, k={params[i, 1]:.0f}")
    for c, ax in enumerate(axes):
        ax.set(title=chans[c], xlabel="t (s)")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    names += _save(fig, out, "trajectories.png")
    return names


def sweep_figure(out: str | Path, name: str, sweep: dict) -> list[str]:
    plt = agg_pyplot()
    out = Path(out)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    rows = sweep["rows"]
    if name in ("size", "noise"):
        xs = [r["records"] if name == "size" else 100 * r["noise"] for r in rows]
        for j, p in enumerate(PARAMS):
            ax.plot(xs, [r["metrics"][p]["r2"] for r in rows], "o-", color=f"C{j}", label=p)
            if rows[0]["ceiling"] is not None and p in ("m", "k"):
                ax.plot(xs, [r["ceiling"][p]["r2"] for r in rows], "--", color=f"C{j}", label=f"ceiling {p}")
        if name == "size":
            ax.set_xscale("log")
        ax.set(xlabel="records" if name == "size" else "noise (% of channel sd)", ylabel="test R^2")
    else:
        labels = [r["label"] if name == "arch" else "+".join(r["channels"]) for r in rows]
        width = 0.8 / 3
        pos = np.arange(len(rows))
        for j, p in enumerate(PARAMS):
            ax.bar(pos + (j - 1) * width, [r["metrics"][p]["r2"] for r in rows], width, label=p)
        ceil = sweep.get("ceiling") if name == "arch" else rows[0]["ceiling"]
        if ceil is not None:
            ax.axhline(ceil["m"]["r2"], color="C0", ls="--", lw=0.8, label="ceiling m, (x, y)")
        ax.set_xticks(pos, labels, rotation=20, ha="right", fontsize=8)
        ax.set(ylabel="test R^2")
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.05)
    ax.set_title(f"sweep: {name}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, f"sweep_{name}.png")
