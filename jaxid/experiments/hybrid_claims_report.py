"""Markdown and figures of the hybrid claims study (:mod:`jaxid.experiments.hybrid_claims`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..hybrid import MODEL_LABELS
from ..plots import agg_pyplot
from .hybrid_report import COLORS, _fmt, _save


def _ci(s: dict) -> str:
    return f"{_fmt(s['mean'])} [{_fmt(s['lo'])}, {_fmt(s['hi'])}]"


def _diff(d: dict) -> str:
    return f"{_fmt(d['diff'])} [{_fmt(d['lo'])}, {_fmt(d['hi'])}]"


def _label(kind: str) -> str:
    return MODEL_LABELS.get(kind, kind)


def all_runs(results: dict) -> Iterator[tuple[str, str, int, dict]]:
    """Every run of the study as ``(system, kind, tasks, run)``."""
    cfg = results["config"]
    for name, entry in results["systems"].items():
        for kind, m in entry["models"].items():
            for r in m["runs"]:
                yield name, kind, cfg["tasks"], r
        for kind, rows in results["task_sweep"].get(name, {}).items():
            for n, row in rows.items():
                if int(n) != cfg["tasks"]:
                    for r in row["runs"]:
                        yield name, kind, int(n), r


def _summaries(results: dict):
    """Every ``(label, summary)`` with an interval in the results."""
    for name, entry in results["systems"].items():
        for kind, m in entry["models"].items():
            for split in ("id", "ood"):
                for score in ("mcc", "z_p_mse"):
                    yield f"{name} {_label(kind)} {score} {split.upper()}", m[split][score]
        for kind, rows in results["task_sweep"].get(name, {}).items():
            for n, row in rows.items():
                yield f"{name} {_label(kind)} mcc at {n} tasks", row["mcc"]
        for kind, a in results["seed_agreement"].get(name, {}).items():
            yield f"{name} {_label(kind)} seed agreement", a


def outside_intervals(results: dict) -> list[str]:
    """The summaries whose mean lies outside their percentile interval."""
    return [f"{label} {_ci(s)}" for label, s in _summaries(results) if not (s["lo"] <= s["mean"] <= s["hi"])]


def diagnosis(results: dict) -> list[str]:
    """What limits the claims at this size, read off the results (convergence, tasks, test tasks)
    plus the differences from the paper's setting that bear on them."""
    cfg = results["config"]
    runs = list(all_runs(results))
    tol = cfg.get("settle_tol")
    late = [(n, k, t, r) for n, k, t, r in runs if not r["convergence"]["stopped"]]
    moving = [x for x in late if not x[3]["convergence"].get("settled", False)]
    lines = []
    if late:
        worst = max(late, key=lambda x: x[3]["convergence"]["late_gain"])
        lines.append(
            f"**Too few steps?** {len(late)} of {len(runs)} runs had their best validation error in the last "
            f"{cfg['late_fraction']:.0%} of the {cfg['steps']} steps (largest late gain "
            f"{worst[3]['convergence']['late_gain']:.1%}: {worst[0]} {_label(worst[1])}, {worst[2]} tasks, "
            f"seed {worst[3]['seed']})"
            + (
                f"; {len(late) - len(moving)} of them gained less than {tol:.0%} there (settled), "
                f"{len(moving)} more (still improving: their scores may still change with longer training)."
                if tol is not None
                else ". Their scores may still change with longer training."
            )
        )
    else:
        lines.append(
            f"**Steps:** every run's validation error had stopped improving before the last "
            f"{cfg['late_fraction']:.0%} of the {cfg['steps']} steps; longer training would not change them."
        )
    lines.append(
        f"**Test tasks:** z_n is constant within a task, so the MCC of z_n rests on {cfg['test_tasks']} "
        f"distinct values (ID test tasks; {cfg['ood_tasks']} OOD) however many sequences there are; the "
        "intervals, which resample whole tasks, are wide for that reason. More test tasks narrow them."
    )
    for name, entry in results["systems"].items():
        need = entry["condition"]["tasks_needed"]
        counts = sorted(int(n) for n in results["task_sweep"].get(name, {}).get("meta_hybrid_vae", {}))
        if counts:
            lines.append(
                f"**Tasks ({name}):** the condition asks for {need} tasks; the sweep ran {counts} "
                f"({sum(c < need for c in counts)} counts below it, "
                f"{sum(c >= need for c in counts)} at or above)."
            )
    lines.append(
        "**Implementation differences from the theorem's setting:** (i) iVAE's auxiliary variable u is "
        "observed; here it is the task's context code, itself inferred from K sequences, so two tasks' "
        "codes are only as distinct as the encoder makes them; (ii) the true z_n is a point mass "
        "given the task (shared by all its sequences), not an exponential-family distribution whose "
        "variance changes with u, so the data can identify z_n only through between-task differences; "
        "(iii) the decoder is an ODE whose network term may ignore part of z_a (the pendulum's forcing "
        "frequency and amplitude enter only through F_a's fit), and the MCC is read on z_a only; (iv) "
        "the paper's data sizes (1000 training sequences per setting, long training on a GPU) are "
        "larger than this run's."
    )
    return lines


def claims_markdown(results: dict) -> str:
    cfg = results["config"]
    lines = [
        "# Hybrid models: the claims of Ye et al. (2024) with seeds and intervals",
        "",
        f"jaxid {results['jaxid_version']}; {results['seconds']} s ({results['seconds'] / 60:.1f} min) "
        f"in all. Systems {', '.join(results['systems'])}; training tasks {cfg['tasks']} x "
        f"{cfg['per_task']} sequences; K = {cfg['context_size']}; {cfg['steps']} steps of batch "
        f"{cfg['batch_size']}, learning rate {cfg['learning_rate']}; networks {cfg['depth']}x{cfg['width']}; "
        f"seeds {list(cfg['seeds'])} (data drawn once with seed {cfg['seed']}); ID test "
        f"{cfg['test_tasks']} tasks, OOD {cfg['ood_tasks']} tasks.",
        "",
        f"Intervals: {results['interval']}. Every mean is over seeds of the score on the whole split; "
        "a difference is judged by its own paired interval (same test tasks, seeds resampled per "
        "model): **held** (interval on the claimed side of 0), **did not hold** (on the other side), "
        "**inconclusive at this size** (contains 0).",
        "",
        "## The condition tested",
        "",
    ]
    for name, entry in results["systems"].items():
        c = entry["condition"]
        lines += [f"- {name}: {c['statement']}. Source: {c['source']}."]
    lines += ["", "## Claims and verdicts", ""]
    lines += ["| system | claim | test | verdict | evidence |", "|---|---|---|---|---|"]
    for c in results["claims"]:
        ev = c["evidence"]
        if "diff" in ev:
            evidence = f"difference {_diff(ev)}"
        elif "plateau_from" in ev:
            evidence = f"plateau from {ev['plateau_from']} tasks; condition {ev['tasks_needed']}"
        else:
            evidence = f"{_ci(ev)}"
            if "minus_hybrid_vae" in ev:
                evidence += f"; minus Hybrid-VAE's {_diff(ev['minus_hybrid_vae'])}"
        lines.append(f"| {c['system']} | {c['claim']} | {c['test']} | **{c['verdict']}** | {evidence} |")
    lines += ["", "### Diagnosis", ""]
    lines += [f"- {d}" for d in diagnosis(results)]
    outside = outside_intervals(results)
    if outside:
        lines += [
            "- **Means outside their intervals:** "
            + "; ".join(outside)
            + ". MCC is biased upwards when the resampled test tasks repeat (fewer distinct values "
            "of z_n give larger chance correlations), so near chance the bootstrap distribution "
            "sits above the point estimate; read these as 'at chance level'."
        ]
    lines += ["", "Chance level of MCC (independent normal latents, mean / 97.5 % quantile): "]
    lines[-1] += "; ".join(
        f"{name} {split.upper()} {_fmt(c['mean'])} / {_fmt(c['q975'])}"
        for name, entry in results["systems"].items()
        for split, c in entry.get("mcc_chance", {}).items()
    )

    lines += [
        "",
        "## MCC of z_n and MSE of z_p per model (mean over seeds [95 % interval])",
        "",
        "| system | model | MCC ID | MCC OOD | MSE z_p ID | MSE z_p OOD | MCC ID per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in results["systems"].items():
        for kind, m in entry["models"].items():
            lines.append(
                f"| {name} | {_label(kind)} | {_ci(m['id']['mcc'])} | {_ci(m['ood']['mcc'])} | "
                f"{_ci(m['id']['z_p_mse'])} | {_ci(m['ood']['z_p_mse'])} | "
                + ", ".join(_fmt(v) for v in m["id"]["mcc"]["values"])
                + " |"
            )
    lines += [
        "",
        "### z_p against its limit",
        "",
        "The Cramer-Rao bound of z_p from one sequence with everything else known "
        "(`jaxid.hybrid.zp_bound`, mean over the same sequences) and the Bayes risk of the exact "
        "posterior with everything else known (`jaxid.hybrid.zp_posterior`, quadrature under the "
        "split's prior: the mean posterior variance, and in brackets the posterior means' squared "
        "error, the same risk's noisier estimate) next to each model's MSE of z_p. No encoder beats "
        "the Bayes risk on average; a model's ratio to it says how far it is from the data's limit.",
        "",
        "| system | split | CRB MSE z_p | Bayes risk z_p (MSE of the means) | model | MSE z_p [95 %] "
        "| ratio to CRB | ratio to Bayes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in results["systems"].items():
        for split in ("id", "ood"):
            crb = entry["z_p_bound"][split]["mse"]
            bayes = (entry.get("z_p_bayes") or {}).get(split)
            b_text = f"{_fmt(bayes['posterior_variance'])} ({_fmt(bayes['mse'])})" if bayes else "-"
            for kind, m in entry["models"].items():
                s = m[split]["z_p_mse"]
                ratio = _fmt(s["mean"] / bayes["posterior_variance"]) if bayes else "-"
                lines.append(
                    f"| {name} | {split.upper()} | {_fmt(crb)} | {b_text} | {_label(kind)} | {_ci(s)} | "
                    f"{_fmt(s['mean'] / crb)} | {ratio} |"
                )
    if results["task_sweep"]:
        lines += [
            "",
            "## MCC of z_n against the number of training tasks (ID test)",
            "",
            "Gap: MCC at the largest count minus MCC at this count, paired interval.",
            "",
            "| system | model | tasks | MCC [95 %] | gap to largest [95 %] | per seed |",
            "|---|---|---|---|---|---|",
        ]
        for name, sweep in results["task_sweep"].items():
            for kind, rows in sweep.items():
                for n, row in rows.items():
                    gap = _diff(row["gap_to_max"]) if "gap_to_max" in row else "-"
                    lines.append(
                        f"| {name} | {_label(kind)} | {n} | {_ci(row['mcc'])} | {gap} | "
                        + ", ".join(_fmt(v) for v in row["mcc"]["values"])
                        + " |"
                    )
    if results["seed_agreement"]:
        lines += [
            "",
            "## Agreement of z_a between seeds (ID test; interval over test tasks)",
            "",
            "| system | model | mean MCC over pairs [95 %] | pairs |",
            "|---|---|---|---|",
        ]
        for name, agree in results["seed_agreement"].items():
            for kind, a in agree.items():
                pairs = ", ".join(f"{p['seeds'][0]}-{p['seeds'][1]}: {_fmt(p['mcc'])}" for p in a["pairs"])
                lines.append(f"| {name} | {_label(kind)} | {_ci(a)} | {pairs} |")
    lines += [
        "",
        "## Convergence of every run",
        "",
        f"Stopped: the best validation reconstruction error came before the last {cfg['late_fraction']:.0%} "
        "of the steps. Late gain: relative improvement of the late calls over the best before them; "
        + (f"settled: stopped, or a late gain below {cfg['settle_tol']:.0%}." if "settle_tol" in cfg else ""),
        "",
        "| system | model | tasks | seed | best step / steps | stopped | late gain | settled | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, kind, n, r in all_runs(results):
        c = r["convergence"]
        lines.append(
            f"| {name} | {_label(kind)} | {n} | {r['seed']} | {c['best_step']} / {c['steps']} | "
            f"{'yes' if c['stopped'] else '**no**'} | {c['late_gain']:.1%} | "
            f"{'yes' if c.get('settled', c['stopped']) else '**no**'} | {r['train_seconds']} |"
        )
    if results.get("figures"):
        lines += ["", "## Figures", ""]
        lines += [f"![{f}]({f})" for f in results["figures"]]
    lines.append("")
    return "\n".join(lines)


def _bar(ax, x: float, s: dict, kind: str, first: bool) -> None:
    """One model's bar at ``x``: the mean of summary ``s`` with its interval (a mean outside its
    interval gets no bar below or above it); labelled with the model on the ``first`` group."""
    ax.bar(x, s["mean"], width=0.23, color=COLORS[kind], label=_label(kind) if first else None)
    err = [[max(s["mean"] - s["lo"], 0)], [max(s["hi"] - s["mean"], 0)]]
    ax.errorbar(x, s["mean"], yerr=err, color="k", capsize=3)


def claims_figures(results: dict, out: str | os.PathLike) -> list[str]:
    """MCC against tasks with interval bars, MCC per model (ID, OOD) with intervals and the seed
    agreement, each model's MSE of z_p against its Cramer-Rao bound and Bayes risk, and the
    validation curves of every run. Returns the file names."""
    plt = agg_pyplot()
    out = Path(out)
    names = []
    cfg = results["config"]
    if results["task_sweep"]:
        fig, axes = plt.subplots(
            1, len(results["task_sweep"]), figsize=(5.5 * len(results["task_sweep"]), 3.8), squeeze=False
        )
        for ax, (name, sweep) in zip(axes[0], results["task_sweep"].items(), strict=True):
            for j, (kind, rows) in enumerate(sweep.items()):
                counts = np.array([int(n) for n in rows], float) * (1 + 0.04 * (j - 0.5))
                mean = np.array([r["mcc"]["mean"] for r in rows.values()])
                lo = np.array([r["mcc"]["lo"] for r in rows.values()])
                hi = np.array([r["mcc"]["hi"] for r in rows.values()])
                ax.errorbar(
                    counts,
                    mean,
                    yerr=[np.maximum(mean - lo, 0), np.maximum(hi - mean, 0)],  # a mean may lie outside
                    fmt="o-",
                    capsize=3,
                    color=COLORS[kind],
                    label=_label(kind),
                )
                for x, r in zip(counts, rows.values(), strict=True):
                    values = r["mcc"]["values"]
                    ax.plot([x] * len(values), values, ".", color=COLORS[kind], alpha=0.4)
            aph = results["systems"][name]["models"].get("aphynity")
            if aph is not None:
                label = f"APHYNITY ({cfg['tasks']} tasks)"
                ax.axhline(aph["id"]["mcc"]["mean"], color=COLORS["aphynity"], ls=":", label=label)
            need = results["systems"][name]["condition"]["tasks_needed"]
            ax.axvline(need, color="0.4", ls="--", lw=1, label=f"n k + 1 = {need}")
            ax.set_xscale("log")
            ticks = sorted({int(n) for rows in sweep.values() for n in rows} | {need})
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("training tasks")
            ax.set_ylabel("MCC of z_n (ID test), 95 % interval")
            ax.set_title(name, fontsize=9)
            ax.set_ylim(0, 1.02)
            ax.legend(fontsize=7)
        fig.tight_layout()
        names += _save(fig, out, "claims_mcc_vs_tasks.png")

    systems = list(results["systems"])
    fig, axes = plt.subplots(1, len(systems), figsize=(6.0 * len(systems), 3.6), squeeze=False)
    for ax, name in zip(axes[0], systems, strict=True):
        entry = results["systems"][name]
        kinds = list(entry["models"])
        groups = [("ID", lambda m: m["id"]["mcc"]), ("OOD", lambda m: m["ood"]["mcc"])]
        agree = results["seed_agreement"].get(name, {})
        if agree:
            groups.append(("seed agreement", None))
        for g, (_, get) in enumerate(groups):
            for j, kind in enumerate(kinds):
                s = get(entry["models"][kind]) if get else agree.get(kind)
                if s is None:
                    continue
                _bar(ax, g + (j - (len(kinds) - 1) / 2) * 0.25, s, kind, first=g == 0)
        ax.set_xticks(range(len(groups)), [g[0] for g in groups])
        ax.set_ylabel("MCC, 95 % interval")
        ax.set_ylim(0, 1.02)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    names += _save(fig, out, "claims_mcc_by_model.png")

    fig, axes = plt.subplots(1, len(systems), figsize=(6.0 * len(systems), 3.6), squeeze=False)
    for ax, name in zip(axes[0], systems, strict=True):
        entry = results["systems"][name]
        kinds = list(entry["models"])
        limits = []
        for g, split in enumerate(("id", "ood")):
            for j, kind in enumerate(kinds):
                s = entry["models"][kind][split]["z_p_mse"]
                _bar(ax, g + (j - (len(kinds) - 1) / 2) * 0.25, s, kind, first=g == 0)
            crb = entry["z_p_bound"][split]["mse"]
            label = "Cramer-Rao bound" if g == 0 else None
            ax.hlines(crb, g - 0.45, g + 0.45, color="k", ls="--", label=label)
            limits.append(crb)
            bayes = (entry.get("z_p_bayes") or {}).get(split)
            if bayes:
                label = "Bayes risk (exact posterior)" if g == 0 else None
                risk = bayes["posterior_variance"]
                ax.hlines(risk, g - 0.45, g + 0.45, color="0.45", ls=":", lw=2, label=label)
                limits.append(risk)
        ax.set_yscale("log")
        _, high = ax.get_ylim()
        ax.set_ylim(min(limits) / 5, high * 100)  # the limits clear of the axis, the legend above
        ax.set_xticks([0, 1], ["ID", "OOD"])
        ax.set_ylabel("MSE of z_p, 95 % interval")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="upper center", ncol=2)
    fig.tight_layout()
    names += _save(fig, out, "claims_zp_bound.png")

    panels = []  # (title, [(label, color, history)])
    for name, entry in results["systems"].items():
        for kind, m in entry["models"].items():
            curves = [(f"seed {r['seed']}", None, r) for r in m["runs"]]
            panels.append((f"{name} {_label(kind)}, {cfg['tasks']} tasks", curves))
        for kind, rows in results["task_sweep"].get(name, {}).items():
            curves = [
                (f"{n} tasks" if i == 0 else None, n, r)
                for n, row in rows.items()
                if int(n) != cfg["tasks"]
                for i, r in enumerate(row["runs"])
            ]
            panels.append((f"{name} {_label(kind)}, task sweep", curves))
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, (title, curves) in zip(axes.ravel(), panels, strict=False):
        counts = sorted({c for _, c, _ in curves if c is not None}, key=int)
        for i, (label, count, r) in enumerate(curves):
            h = r["history"]
            color = cmap(counts.index(count) / max(len(counts) - 1, 1)) if count is not None else f"C{i}"
            ax.semilogy(h["step"], h["val_recon"], "-", lw=1, color=color, label=label)
            c = r["convergence"]
            face = "none" if c["stopped"] else color  # filled: still improving
            ax.plot(c["best_step"], min(h["val_recon"]), "o", ms=4, color=color, mfc=face)
        ax.axvline((1 - cfg["late_fraction"]) * cfg["steps"], color="0.5", ls=":", lw=1)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("step", fontsize=8)
        ax.legend(fontsize=6)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel("validation reconstruction MSE")
    fig.tight_layout()
    names += _save(fig, out, "claims_val_curves.png")
    return names
