"""Figures of an identifiability analysis: spectrum, null vectors and profile likelihoods."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .profile import Profile

if TYPE_CHECKING:  # annotations only: the report module imports this one, and pyplot loads on use
    import matplotlib.axes
    import matplotlib.figure

    from .report import IdentifiabilityReport


def plot_spectrum(
    report: IdentifiabilityReport, ax: "matplotlib.axes.Axes | None" = None
) -> "matplotlib.figure.Figure":
    """Singular values of the whitened Jacobian relative to the largest (log scale), retained ones
    filled, with the rank threshold dashed. Returns the figure."""
    import matplotlib.pyplot as plt

    s = report.spectrum
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 3.2))
    fig = ax.figure
    rel = s.singular_values / s.singular_values[0]
    floor = np.finfo(float).eps
    rel = np.maximum(rel, floor)
    idx = np.arange(1, len(rel) + 1)
    ax.semilogy(idx[: s.rank], rel[: s.rank], "o", color="C0", label="retained")
    ax.semilogy(idx[s.rank :], rel[s.rank :], "o", mfc="none", color="C3", label="null")
    ax.axhline(
        max(s.threshold / s.singular_values[0], floor),
        ls="--",
        color="0.5",
        lw=1,
        label=f"threshold ({s.rule})",
    )
    ax.set_xticks(idx)
    ax.set_xlabel("index")
    ax.set_ylabel("s_i / s_1")
    ax.set_title(f"rank {s.rank} of {len(rel)} ({report.scale} parameters)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_null_vectors(
    report: IdentifiabilityReport, ax: "matplotlib.axes.Axes | None" = None
) -> "matplotlib.figure.Figure":
    """Each null direction as a group of bars over the parameters. Returns the figure."""
    import matplotlib.pyplot as plt

    null = report.spectrum.null_space
    labels = [f"v{j + 1}" for j in range(null.shape[1])]
    c = report.combinations
    if c is not None and c.scaling and len(c.scaling) == null.shape[1] and report.scale == "log":
        # the scaling symmetries span the same space and read better than an SVD basis
        null = np.array(c.scaling, dtype=float).T
        null = null / np.linalg.norm(null, axis=0)
        labels = c.scaling_text
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 3.2))
    fig = ax.figure
    names = report.names
    x = np.arange(len(names))
    d = null.shape[1]
    if d == 0:
        ax.text(0.5, 0.5, "no null direction:\nfull rank", ha="center", va="center", transform=ax.transAxes)
    width = 0.8 / max(d, 1)
    for j in range(d):
        ax.bar(x + (j - (d - 1) / 2) * width, null[:, j], width, label=labels[j])
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(x, names)
    ax.set_ylabel("component")
    ax.set_title(f"null directions ({report.scale} parameters)")
    if d:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_profiles(
    profiles: Sequence[Profile],
    axes: "Sequence[matplotlib.axes.Axes] | np.ndarray | None" = None,
    scale: str = "log",
) -> "matplotlib.figure.Figure":
    """One panel per profile: delta chi-square against the profiled quantity, the 95 % threshold
    dashed, the estimate marked, unconverged points as crosses. Returns the figure."""
    import matplotlib.pyplot as plt

    n = len(profiles)
    if n == 0:
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.text(0.5, 0.5, "no profiles computed", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    if axes is None:
        cols = min(n, 3)
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
        axes = axes.ravel()
        for ax in axes[n:]:
            ax.set_axis_off()
    else:
        axes = np.atleast_1d(axes).ravel()
    fig = axes[0].figure
    for pr, ax in zip(profiles, axes, strict=False):
        ok = pr.converged & np.isfinite(pr.delta_chi2)
        ax.plot(pr.values[ok], pr.delta_chi2[ok], "-o", ms=3)
        if np.any(~ok):
            bad = ~ok
            ax.plot(pr.values[bad], np.zeros(bad.sum()), "x", color="C3", label="not converged")
        ax.axhline(pr.threshold, ls="--", color="0.5", lw=1)
        ax.axvline(pr.estimate, color="0.7", lw=0.8)
        finite = pr.values[np.isfinite(pr.values)]
        if scale == "log" and finite.size and finite.min() > 0 and finite.max() / finite.min() > 4:
            ax.set_xscale("log")
        ax.set_xlabel(pr.name)
        ax.set_ylabel("delta chi^2")
        ax.set_title(pr.classification, fontsize=9)
    fig.tight_layout()
    return fig


def plot_report(report: IdentifiabilityReport) -> "matplotlib.figure.Figure":
    """Spectrum and null vectors side by side, profiles below when computed. Returns the figure."""
    import matplotlib.pyplot as plt

    n_prof = len(report.profiles or [])
    cols = max(2, min(n_prof, 3))
    rows = 1 + math.ceil(n_prof / cols)
    fig = plt.figure(figsize=(3.8 * cols, 3.1 * rows))
    gs = fig.add_gridspec(rows, cols)
    plot_spectrum(report, ax=fig.add_subplot(gs[0, 0]))
    plot_null_vectors(report, ax=fig.add_subplot(gs[0, 1]))
    if n_prof:
        axes = [fig.add_subplot(gs[1 + i // cols, i % cols]) for i in range(n_prof)]
        plot_profiles(report.profiles, axes=axes, scale=report.scale)
    fig.tight_layout()
    return fig
