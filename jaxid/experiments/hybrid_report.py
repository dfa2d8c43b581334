"""Markdown and figures of the hybrid-model comparison (:mod:`jaxid.experiments.hybrid`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..hybrid import MODEL_LABELS, mcc
from ..plots import agg_pyplot
from .results import save_figure

BETTER_LOW = {"z_p_mse": True, "mcc": False, "recon_mse": True, "pred_mse": True}
HEADERS = {"z_p_mse": "MSE z_p", "mcc": "MCC z_n", "recon_mse": "MSE rec", "pred_mse": "MSE pred"}
COLORS = {"aphynity": "tab:orange", "hybrid_vae": "tab:blue", "meta_hybrid_vae": "tab:green"}


def _fmt(v) -> str:
    if isinstance(v, str):
        return v
    if v is None or not np.isfinite(v):
        return str(v)
    return f"{v:.3f}" if 0.01 <= abs(v) < 100 else f"{v:.3g}"


def comparison_rows(results: dict) -> list[dict]:
    """One row per (system, model, split) with the four scores; the best of each column within a
    system and split is marked."""
    rows = []
    for name, entry in results["systems"].items():
        for split in ("id", "ood"):
            models = entry["models"]
            best = {}
            for score, low in BETTER_LOW.items():
                values = {k: m[split][score] for k, m in models.items()}
                best[score] = (min if low else max)(values, key=values.get)
            for kind, m in models.items():
                rows.append(
                    dict(
                        system=name,
                        model=kind,
                        split=split.upper(),
                        **{s: m[split][s] for s in BETTER_LOW},
                        best=[s for s in BETTER_LOW if best[s] == kind],
                    )
                )
    return rows


def meta_shortfalls(results: dict) -> list[str]:
    """Every (system, split, score) where Meta-Hybrid-VAE is not the best of the models run."""
    notes = []
    for name, entry in results["systems"].items():
        models = entry["models"]
        if "meta_hybrid_vae" not in models or len(models) < 2:
            continue
        for split in ("id", "ood"):
            for score, low in BETTER_LOW.items():
                meta = models["meta_hybrid_vae"][split][score]
                others = {k: m[split][score] for k, m in models.items() if k != "meta_hybrid_vae"}
                best_kind = (min if low else max)(others, key=others.get)
                if (meta > others[best_kind]) if low else (meta < others[best_kind]):
                    notes.append(
                        f"{name}, {split.upper()}, {HEADERS[score]}: Meta-Hybrid-VAE {_fmt(meta)} against "
                        f"{MODEL_LABELS[best_kind]} {_fmt(others[best_kind])}"
                    )
    return notes


def markdown(results: dict) -> str:
    cfg = results["config"]
    lines = [
        "# Hybrid physics+neural generative models: APHYNITY, Hybrid-VAE, Meta-Hybrid-VAE",
        "",
        f"jaxid {results['jaxid_version']}; {results['seconds']} s in all. Training tasks {cfg['tasks']} x "
        f"{cfg['per_task']} sequences; context K = {cfg['context_size']}; {cfg['steps']} steps of batch "
        f"{cfg['batch_size']}, learning rate {cfg['learning_rate']}; networks {cfg['depth']}x{cfg['width']}; "
        f"seed {cfg['seed']}. ID test: {cfg['test_tasks']} new tasks; OOD: {cfg['ood_tasks']} tasks with "
        f"every latent drawn from [b, b + {cfg['ood_width']} (b - a)] for an ID range [a, b].",
        "",
        "Scores: MSE of the physics latent z_p (physical units); MCC of the unmodelled factors z_n "
        "against the latent of the network inside the ODE (absolute Pearson correlations, Hungarian "
        "matching, mean); MSE of the decoded sequence against the noise-free truth over the training "
        "window (rec) and beyond it (pred). **Bold**: best of the models on that system and split.",
        "",
        "## Comparison",
        "",
        "| system | model | split | " + " | ".join(HEADERS.values()) + " |",
        "|---|---|---|" + "---|" * len(HEADERS),
    ]
    for r in comparison_rows(results):
        cells = [f"**{_fmt(r[s])}**" if s in r["best"] else _fmt(r[s]) for s in HEADERS]
        lines.append(
            f"| {r['system']} | {MODEL_LABELS[r['model']]} | {r['split']} | " + " | ".join(cells) + " |"
        )
    bounds = {name: e["z_p_bound"] for name, e in results["systems"].items() if "z_p_bound" in e}
    if bounds:
        lines += [
            "",
            "### The data's limit on z_p",
            "",
            "Cramer-Rao bound of z_p from one sequence of the training window at the data's noise, "
            "with the unmodelled factors and the initial state known (`jaxid.hybrid.zp_bound`), "
            "averaged over the same sequences: the MSE of z_p an unbiased estimator that knew "
            "everything else could reach. The models must also infer z_n; a model below the bound "
            "is biased (towards its prior), not better than the data allow.",
            "",
            "| system | split | CRB MSE z_p | CRB RMS z_p | best model MSE z_p | ratio |",
            "|---|---|---|---|---|---|",
        ]
        for name, bound in bounds.items():
            models = results["systems"][name]["models"]
            for split in ("id", "ood"):
                best = min(models, key=lambda k: models[k][split]["z_p_mse"])
                mse, crb = models[best][split]["z_p_mse"], bound[split]
                lines.append(
                    f"| {name} | {split.upper()} | {_fmt(crb['mse'])} | {_fmt(crb['rms'])} | "
                    f"{_fmt(mse)} ({MODEL_LABELS[best]}) | {_fmt(mse / crb['mse'])} |"
                )
    lines += ["", "### Where Meta-Hybrid-VAE does not beat the others", ""]
    shortfalls = meta_shortfalls(results)
    lines += [f"- {s}" for s in shortfalls] if shortfalls else ["- nowhere in this run."]
    lines += ["", "### Data and training", ""]
    for name, entry in results["systems"].items():
        d = entry["data"]
        lines.append(
            f"- {name}: physics latent {', '.join(entry['physics'])}; "
            f"unmodelled {', '.join(entry['factors'])}; data {d['seconds']} s; "
            + "; ".join(
                f"{MODEL_LABELS[k]} {m['train_seconds']} s (best step {m['best_step']})"
                for k, m in entry["models"].items()
            )
        )
    if results["task_sweep"]:
        lines += ["", "## MCC against the number of training tasks (Meta-Hybrid-VAE, ID test)", ""]
        lines += ["| system | tasks | MCC z_n | MSE z_p | MSE rec | MSE pred |", "|---|---|---|---|---|---|"]
        for name, sweep in results["task_sweep"].items():
            for n, s in sweep.items():
                lines.append(
                    f"| {name} | {n} | {_fmt(s['mcc'])} | {_fmt(s['z_p_mse'])} | {_fmt(s['recon_mse'])} | "
                    f"{_fmt(s['pred_mse'])} |"
                )
    if results["seed_agreement"]:
        lines += [
            "",
            f"## Agreement across two seeds ({cfg['seed']} and {cfg['seed'] + 1}, ID test)",
            "",
            "MCC between the two runs' neural latents; |corr| and mean squared difference of their "
            "physics latents; the second run's own scores.",
            "",
            "| system | model | MCC run 1 vs run 2 | corr z_p | MSE z_p between | run 2 MCC z_n "
            "| run 2 MSE z_p |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, models in results["seed_agreement"].items():
            for kind, a in models.items():
                lines.append(
                    f"| {name} | {MODEL_LABELS[kind]} | {_fmt(a['mcc_z_n'])} | {_fmt(a['corr_z_p'])} | "
                    f"{_fmt(a['z_p_mse_between'])} | {_fmt(a['second_seed_id']['mcc'])} | "
                    f"{_fmt(a['second_seed_id']['z_p_mse'])} |"
                )
    if results.get("figures"):
        lines += ["", "## Figures", ""]
        lines += [f"![{f}]({f})" for f in results["figures"]]
    lines.append("")
    return "\n".join(lines)


def _save(fig, out: Path, name: str) -> list[str]:
    plt = agg_pyplot()
    save_figure(fig, out / name, dpi=110)
    plt.close(fig)
    return [name]


def _channel(system) -> int:
    return system.state_size // 2 if system.name == "advection_diffusion" else 0


def figures(results: dict, keep: dict, out: Path) -> list[str]:
    """Reconstructions and extrapolations (ID and OOD), latent-vs-truth scatter, training curves,
    MCC against tasks and seed agreement. Returns the file names."""
    plt = agg_pyplot()
    out = Path(out)
    names = []
    systems = list(keep)
    # reconstructions and extrapolations: one ID and one OOD test sequence per system
    fig, axes = plt.subplots(len(systems), 2, figsize=(11, 2.8 * len(systems)), squeeze=False)
    for i, name in enumerate(systems):
        data = keep[name]["data"]
        sys = data.system
        ch = _channel(sys)
        ts = sys.ts
        for j, split in enumerate(("test", "ood")):
            ax = axes[i, j]
            clean = getattr(data, split).flat("clean")
            obs = getattr(data, split).flat("obs")
            ax.plot(ts[: sys.n_train], obs[0, : sys.n_train, ch], ".", ms=3, color="0.5", label="observed")
            ax.plot(ts, clean[0, :, ch], color="k", lw=1.5, label="truth")
            for kind, evs in keep[name]["models"].items():
                ax.plot(
                    ts, evs[split].decoded[0, :, ch], color=COLORS[kind], lw=1.1, label=MODEL_LABELS[kind]
                )
            ax.axvline(ts[sys.n_train - 1], color="0.3", ls=":", lw=1)
            ax.set_title(
                f"{name} ({'ID' if split == 'test' else 'OOD'}): reconstruction | prediction", fontsize=9
            )
            ax.set_xlabel("t [s]")
        axes[i, 0].set_ylabel(
            "u (mid grid)"
            if sys.name == "advection_diffusion"
            else "theta" + ("1" if sys.name == "double_pendulum" else "")
        )
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    names += _save(fig, out, "reconstructions.png")

    # latents against truth (ID test): z_p and the best-matched neural latent of the first factor
    kinds = list(next(iter(keep.values()))["models"])
    fig, axes = plt.subplots(
        len(systems), 2 * len(kinds), figsize=(3.0 * 2 * len(kinds), 2.7 * len(systems)), squeeze=False
    )
    for i, name in enumerate(systems):
        data = keep[name]["data"]
        zp, zn = data.test.flat("z_p")[:, 0], data.test.flat("z_n")
        for j, kind in enumerate(kinds):
            ev = keep[name]["models"][kind]["test"]
            ax = axes[i, 2 * j]
            ax.plot(zp, ev.z_p[:, 0], ".", ms=3, color=COLORS[kind])
            lims = [min(zp.min(), ev.z_p.min()), max(zp.max(), ev.z_p.max())]
            ax.plot(lims, lims, "k--", lw=0.8)
            ax.set_title(f"{name}\n{MODEL_LABELS[kind]}: {data.system.physics_names[0]}", fontsize=8)
            ax.set_xlabel("true", fontsize=8)
            ax.set_ylabel("inferred", fontsize=8)
            _, match = mcc(zn, ev.z_a, return_matching=True)
            ax = axes[i, 2 * j + 1]
            ax.plot(zn[:, 0], ev.z_a[:, match[0]], ".", ms=3, color=COLORS[kind])
            ax.set_title(f"{MODEL_LABELS[kind]}: {data.system.factor_names[0]} vs z_a{match[0]}", fontsize=8)
            ax.set_xlabel("true", fontsize=8)
    fig.tight_layout()
    names += _save(fig, out, "latents.png")

    # training curves
    fig, axes = plt.subplots(1, len(systems), figsize=(4.2 * len(systems), 3.2), squeeze=False)
    for i, name in enumerate(systems):
        for kind, m in results["systems"][name]["models"].items():
            h = m["history"]
            axes[0, i].semilogy(
                h["step"], h["val_recon"], "o-", ms=3, color=COLORS[kind], label=MODEL_LABELS[kind]
            )
        axes[0, i].set_title(name, fontsize=9)
        axes[0, i].set_xlabel("step")
    axes[0, 0].set_ylabel("validation reconstruction MSE")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    names += _save(fig, out, "training_curves.png")

    if results["task_sweep"]:
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for name, sweep in results["task_sweep"].items():
            counts = [int(n) for n in sweep]
            line = ax.plot(counts, [s["mcc"] for s in sweep.values()], "o-", label=f"{name}: Meta-Hybrid-VAE")
            for kind, m in results["systems"][name]["models"].items():
                if kind != "meta_hybrid_vae":
                    ls = "--" if kind == "hybrid_vae" else ":"
                    ax.axhline(
                        m["id"]["mcc"],
                        color=line[0].get_color(),
                        ls=ls,
                        lw=1,
                        label=f"{name}: {MODEL_LABELS[kind]}",
                    )
        ax.set_xscale("log")
        ax.set_xlabel("training tasks")
        ax.set_ylabel("MCC of z_n (ID test)")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        fig.tight_layout()
        names += _save(fig, out, "mcc_vs_tasks.png")

    pairs = [(n, k) for n in systems for k in keep[n].get("second_seed", {})]
    if pairs:
        fig, axes = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs), 3.0), squeeze=False)
        for j, (name, kind) in enumerate(pairs):
            z1 = keep[name]["models"][kind]["test"].z_a
            z2 = keep[name]["second_seed"][kind].z_a
            _, match = mcc(z1, z2, return_matching=True)
            axes[0, j].plot(z1[:, 0], z2[:, match[0]], ".", ms=3, color=COLORS[kind])
            axes[0, j].set_title(f"{name}\n{MODEL_LABELS[kind]}", fontsize=8)
            axes[0, j].set_xlabel("run 1: z_a0", fontsize=8)
            axes[0, j].set_ylabel(f"run 2: z_a{match[0]}", fontsize=8)
        fig.tight_layout()
        names += _save(fig, out, "seed_agreement.png")
    return names
