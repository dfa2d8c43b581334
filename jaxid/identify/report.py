r"""One call, one report: :func:`analyze` runs the whole identifiability analysis of a set of
experiments at a parameter point and returns an :class:`IdentifiabilityReport`."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from jaxtyping import Float

from ..errors import require_float64
from ..io import atomic_write_text
from ..typing import Key, ParamVector
from . import plots
from .combinations import Combinations, analyze_null_spaces
from .experiment import Experiment, as_experiments
from .fisher import (
    Spectrum,
    _check_point,
    _num_params,
    check_unused_parameters,
    collinearity,
    cramer_rao,
    direction_crb,
    spectrum,
    whitened_jacobians,
)
from .profile import Directions, Profile, parse_directions, profile_likelihood

if TYPE_CHECKING:  # annotations only: importing jaxid does not load matplotlib
    import matplotlib.axes
    import matplotlib.figure


def _json(x):
    if isinstance(x, dict):
        return {str(k): _json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return _json(x.tolist())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        if np.isnan(x):
            return None
        return x if np.isfinite(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _fmt(x: float) -> str:
    return "inf" if np.isinf(x) else "nan" if np.isnan(x) else f"{x:.4g}"


@dataclass
class IdentifiabilityReport:
    r"""The result of :func:`analyze`.

    **Fields:**

    - ``names``, ``theta``, ``scale`` (``"log"`` or ``"natural"``: the coordinates of the spectrum,
      rank and null vectors), ``experiments`` (name, number of observations, noise description).
    - ``spectrum``: a :class:`~jaxid.identify.fisher.Spectrum` of the whitened Jacobian (singular
      values, ``rank``, ``threshold``, ``rule``, ``null_space``, ``condition_number``).
    - ``fim`` / ``fim_log``: Fisher information in natural and log parameters.
    - ``crb`` / ``crb_relative``: Cramer-Rao lower bounds on the standard deviation of each
      parameter, absolute and relative to its value (``inf`` where it is not identifiable).
    - ``combinations``: :class:`~jaxid.identify.combinations.Combinations` (scaling symmetries,
      identifiable monomials, non-scaling null directions, the structural check);
      ``monomial_values`` and ``monomial_crb_relative``: each monomial's value and Cramer-Rao
      bound on its relative standard deviation.
    - ``collinearity``: collinearity index of each parameter subset.
    - ``profiles``: :class:`~jaxid.identify.profile.Profile` objects, if requested.

    **Views:** :meth:`to_markdown` (also ``str(report)`` and the notebook display), :meth:`to_dict`,
    :meth:`to_json`, :meth:`plot_spectrum`, :meth:`plot_null_vectors`, :meth:`plot_profiles` and
    :meth:`plot` (all panels).
    """

    names: tuple[str, ...]
    theta: Float[np.ndarray, " param"]
    scale: str
    experiments: list[dict]
    spectrum: Spectrum
    fim: Float[np.ndarray, "param param"]
    fim_log: Float[np.ndarray, "param param"] | None
    crb: Float[np.ndarray, " param"]
    crb_relative: Float[np.ndarray, " param"]
    combinations: Combinations | None
    monomial_values: list[float] = field(default_factory=list)
    monomial_crb_relative: list[float] = field(default_factory=list)
    collinearity: dict[tuple[str, ...], float] = field(default_factory=dict)
    check_points: Float[np.ndarray, "check param"] | None = None
    check_ranks: list[int] = field(default_factory=list)
    profiles: list[Profile] | None = None

    # ------------------------------------------------------------------ summaries
    @property
    def rank(self) -> int:
        return self.spectrum.rank

    @property
    def num_params(self) -> int:
        return len(self.names)

    @property
    def identifiable(self) -> dict[str, bool]:
        """Whether each parameter has a finite Cramer-Rao bound (is locally identifiable)."""
        return {n: bool(np.isfinite(c)) for n, c in zip(self.names, self.crb, strict=True)}

    def to_dict(self) -> dict:
        """Every figure of the report as JSON-ready Python types (``"inf"`` for infinite bounds)."""
        s = self.spectrum
        out = {
            "names": list(self.names),
            "theta": self.theta,
            "scale": self.scale,
            "experiments": self.experiments,
            "singular_values": s.singular_values,
            "rank": s.rank,
            "num_params": self.num_params,
            "rank_threshold": s.threshold,
            "rank_rule": s.rule,
            "rank_rule_detail": s.rule_detail,
            "condition_number": s.condition_number,
            "null_space": s.null_space,
            "fim": self.fim,
            "fim_log": self.fim_log,
            "crb": dict(zip(self.names, self.crb, strict=True)),
            "crb_relative": dict(zip(self.names, self.crb_relative, strict=True)),
            "collinearity": {"*".join(k): v for k, v in self.collinearity.items()},
            "check_points": self.check_points,
            "check_ranks": self.check_ranks,
        }
        c = self.combinations
        if c is not None:
            out["combinations"] = {
                "monomials": dict(zip(c.monomial_text, c.monomials, strict=True)),
                "monomial_values": dict(zip(c.monomial_text, self.monomial_values, strict=True)),
                "monomial_crb_relative": dict(zip(c.monomial_text, self.monomial_crb_relative, strict=True)),
                "scaling_symmetries": c.scaling_text,
                "non_scaling_directions": c.non_scaling,
                "translation_symmetries": c.translation_text,
                "linear_combinations": c.linear_text,
                "exact": c.exact,
                "statement": c.statement,
            }
        if self.profiles is not None:
            out["profiles"] = [pr.to_dict() for pr in self.profiles]
        return _json(out)

    def to_json(self, path: str | Path | None = None) -> str:
        """The :meth:`to_dict` form as a JSON string, also written to ``path`` (atomically) if given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            atomic_write_text(path, text)
        return text

    def to_markdown(self) -> str:
        """A readable summary: rank, spectrum, null vectors, bounds, combinations and profiles."""
        s = self.spectrum
        n = self.names
        lines = ["# Identifiability analysis", ""]
        lines.append(
            "Parameters " + ", ".join(f"{a} = {_fmt(v)}" for a, v in zip(n, self.theta, strict=True))
            + f"; spectrum in {self.scale} parameters."
        )  # fmt: skip
        for e in self.experiments:
            lines.append(f"- experiment *{e['name']}*: {e['observations']} observations, noise {e['noise']}")
        lines += ["", f"**Rank {s.rank} of {self.num_params}** ({s.rule} rule: {s.rule_detail}).", ""]
        lines.append(f"Condition number of the whitened Jacobian: {_fmt(s.condition_number)}.")
        lines += ["", "| i | singular value | relative |", "|---|---|---|"]
        for i, v in enumerate(s.singular_values):
            rel = v / s.singular_values[0] if s.singular_values[0] > 0 else np.nan
            lines.append(f"| {i + 1} | {_fmt(v)} | {_fmt(rel)} |")
        if s.null_space.shape[1]:
            lines += ["", f"Null directions ({self.scale} parameters):", ""]
            lines.append("| | " + " | ".join(n) + " |")
            lines.append("|---" * (len(n) + 1) + "|")
            for j in range(s.null_space.shape[1]):
                lines.append(f"| v{j + 1} | " + " | ".join(f"{x:.3f}" for x in s.null_space[:, j]) + " |")
        lines += ["", "Cramer-Rao lower bounds (standard deviation):", ""]
        lines += ["| parameter | value | sd | relative sd |", "|---|---|---|---|"]
        for a, v, c, r in zip(n, self.theta, self.crb, self.crb_relative, strict=True):
            lines.append(f"| {a} | {_fmt(v)} | {_fmt(c)} | {_fmt(r)} |")
        c = self.combinations
        if c is not None:
            lines += ["", "## Identifiable combinations", "", c.statement]
            if self.check_points is not None:
                lines.append(
                    f"(Null spaces compared at {c.num_points} points: the analysed one and "
                    f"{c.num_points - 1} perturbed ones, with ranks {self.check_ranks}.)"
                )
            if c.monomials:
                lines += ["", "| combination | value | relative sd (CRB) |", "|---|---|---|"]
                for t, v, r in zip(
                    c.monomial_text, self.monomial_values, self.monomial_crb_relative, strict=True
                ):
                    lines.append(f"| {t} | {_fmt(v)} | {_fmt(r)} |")
        if self.collinearity:
            worst = sorted(self.collinearity.items(), key=lambda kv: -kv[1])[:5]
            lines += ["", "Largest collinearity indices (above 10-20: near-collinear):", ""]
            lines += ["| subset | index |", "|---|---|"]
            lines += [f"| {', '.join(k)} | {_fmt(v)} |" for k, v in worst]
        if self.profiles:
            lines += ["", "## Profile likelihood (95 %, threshold 3.84)", ""]
            lines += ["| quantity | classification | estimate | 95 % interval |", "|---|---|---|---|"]
            for pr in self.profiles:
                lo, hi = pr.interval
                lines.append(
                    f"| {pr.name} | {pr.classification} | {_fmt(pr.estimate)} | "
                    f"[{'open' if np.isnan(lo) else _fmt(lo)}, {'open' if np.isnan(hi) else _fmt(hi)}] |"
                )
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    # ------------------------------------------------------------------ plots
    def plot_spectrum(self, ax: "matplotlib.axes.Axes | None" = None) -> "matplotlib.figure.Figure":
        """Singular values relative to the largest, with the rank threshold."""
        return plots.plot_spectrum(self, ax=ax)

    def plot_null_vectors(self, ax: "matplotlib.axes.Axes | None" = None) -> "matplotlib.figure.Figure":
        """The null directions as grouped bars over the parameters."""
        return plots.plot_null_vectors(self, ax=ax)

    def plot_profiles(
        self, axes: "Sequence[matplotlib.axes.Axes] | np.ndarray | None" = None
    ) -> "matplotlib.figure.Figure":
        """One panel per profile: delta chi-square against the profiled quantity."""
        return plots.plot_profiles(self.profiles or [], axes=axes, scale=self.scale)

    def plot(self) -> "matplotlib.figure.Figure":
        """Spectrum, null vectors and (if computed) profiles in one figure."""
        return plots.plot_report(self)


def _noise_text(e: Experiment) -> str:
    vals = np.unique(e.noise)
    v = (
        _fmt(float(vals[0]))
        if vals.size == 1
        else f"{vals.size} values in [{_fmt(vals.min())}, {_fmt(vals.max())}]"
    )
    return f"{v} ({'fraction of channel sd' if e.relative else 'absolute'})"


def _is_key(key) -> bool:
    import jax

    if not isinstance(key, jax.Array):
        return False
    legacy = key.dtype == np.uint32 and key.shape == (2,)  # a jax.random.PRNGKey
    return legacy or jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)


def _check_points(theta, n, spread, key, seed, log):
    if key is not None:
        import jax

        u = np.asarray(jax.random.uniform(key, (n, theta.shape[0]), dtype=float, minval=-1.0, maxval=1.0))
    else:
        u = np.random.default_rng(0 if seed is None else seed).uniform(-1.0, 1.0, size=(n, theta.shape[0]))
    if log:
        return theta * np.exp(spread * u)
    scale = np.where(theta != 0, np.abs(theta), 1.0)
    return theta + spread * scale * u


def analyze(
    experiments: Experiment | Sequence[Experiment],
    theta: ParamVector | None = None,
    *,
    names: Sequence[str] | None = None,
    scale: str = "log",
    rank_rule: str = "auto",
    rank_rtol: float | None = None,
    check_points: int = 3,
    spread: float = 0.1,
    key: Key | None = None,
    seed: int | None = None,
    profiles: bool | Directions = False,
    profile_options: dict[str, Any] | None = None,
    collinearity_max_size: int | None = None,
) -> IdentifiabilityReport:
    r"""Identifiability analysis of ``experiments`` at ``theta``.

    Computes the whitened sensitivity matrix of every experiment by forward-mode AD (one pass, all
    points batched), its SVD, the numerical rank by ``rank_rule`` (see
    :func:`~jaxid.identify.fisher.numerical_rank`; ``rank_rtol`` fixes a relative threshold
    instead), the Fisher information, Cramer-Rao bounds, null directions and collinearity indices;
    then compares the log-parameter null spaces at ``check_points`` further points
    (:math:`\theta_j = \theta\, e^{\mathrm{spread}\; u_j}`, :math:`u_j \sim U[-1, 1]^p` drawn
    with ``key``) to separate scaling symmetries from local accidents and non-scaling degeneracies,
    and reads off identifiable monomials (:mod:`~jaxid.identify.combinations`).

    **Arguments:**

    - ``experiments``: an :class:`~jaxid.identify.Experiment` or a list of them (their Fisher
      information adds).
    - ``theta``: the parameter point, shape ``(p,)``; default the experiments' ``theta0`` (the
      model's values for :meth:`Experiment.from_model`).
    - ``names``: parameter names (default from the experiments, else ``p0, p1, ...``).
    - ``scale``: ``"log"`` (default; relative sensitivities, needs positive parameters) or
      ``"natural"``: the coordinates of the spectrum, rank, null vectors and profiles.
    - ``check_points``: how many perturbed points the structural check uses (0 to skip it; then
      every local null direction is reported as if it were a scaling). Points where a simulation
      fails are dropped with a warning.
    - ``key``: a :func:`jax.random.key` for the check points; default ``None``, fixed draws (the
      same on every call, those of the former default ``seed=0``).
    - ``seed``: deprecated, pass ``key``; an int seeding NumPy's generator for the check points, as
      before.
    - ``profiles``: ``True`` to profile every parameter and every identified monomial, or a list
      of directions for :func:`~jaxid.identify.profile_likelihood` (``"m"``, ``{"k": 1, "m": -1}``);
      ``profile_options`` go to that function.

    **Returns:** an :class:`IdentifiabilityReport`. Raises a :class:`ValueError` naming the
    argument for non-positive noise, a wrong ``theta`` shape, or a failed simulation at ``theta``.
    """
    where = "analyze"
    require_float64(where)
    experiments = as_experiments(experiments, where)
    if scale not in ("log", "natural"):
        raise ValueError(f"{where}: scale must be 'log' or 'natural', got {scale!r}")
    p = _num_params(experiments)
    if theta is None:
        theta = next((e.theta0 for e in experiments if e.theta0 is not None), None)
        if theta is None:
            raise ValueError(f"{where}: theta is required (the experiments carry no default theta0)")
    theta, names = _check_point(theta, p, experiments, names, where, log=scale == "log")
    p = theta.shape[0]
    if not (isinstance(check_points, int) and check_points >= 0):
        raise ValueError(f"{where}: check_points must be an int >= 0, got {check_points!r}")
    if not (isinstance(spread, (int, float)) and spread > 0):
        raise ValueError(f"{where}: spread must be a positive number, got {spread!r}")
    if key is not None and seed is not None:
        raise TypeError("analyze: pass key (a jax.random.key) or the deprecated seed, not both")
    if key is not None and not _is_key(key):
        raise TypeError(f"analyze: key must be a jax.random.key, got {type(key).__name__}")
    if seed is not None:
        warnings.warn(
            "analyze: seed is deprecated and will be removed in the next release; pass "
            "key=jax.random.key(seed) instead (it draws other check points)",
            DeprecationWarning,
            stacklevel=2,
        )
    positive = bool(np.all(theta > 0))

    pts = np.concatenate([theta[None], _check_points(theta, check_points, spread, key, seed, positive)])
    must = np.arange(len(pts)) == 0  # the analysed point must simulate; check points may fail
    wj = whitened_jacobians(experiments, pts, where=where, require_finite=must, single=True)
    w_all, ys, finite = wj.w, wj.ys, wj.finite
    if not np.all(finite):
        warnings.warn(
            f"{where}: {int(np.sum(~finite))} of {check_points} check points failed to simulate and "
            "were dropped; use a smaller spread",
            stacklevel=2,
        )
    pts, w_all = pts[finite], w_all[finite]
    check_unused_parameters(experiments, w_all, where)
    w_log_all = w_all * pts[:, None, :] if positive else None
    w0 = w_log_all[0] if scale == "log" else w_all[0]
    spec = spectrum(w0, rule=rank_rule, rtol=rank_rtol)
    crb_scale = cramer_rao(spec)
    if scale == "log":
        crb_rel, crb = crb_scale, crb_scale * theta
    else:
        crb = crb_scale
        with np.errstate(divide="ignore", invalid="ignore"):
            crb_rel = crb / np.abs(theta)

    combos, mono_vals, mono_crb, check_ranks = None, [], [], []
    if positive:
        # (the analysed point's log spectrum is spec itself when scale == "log")
        log_specs = [spec if i == 0 and scale == "log" else spectrum(w, rule=rank_rule, rtol=rank_rtol)
                     for i, w in enumerate(w_log_all)]  # fmt: skip
        nat_specs = [spectrum(w, rule=rank_rule, rtol=rank_rtol) for w in w_all]
        check_ranks = [sp.rank for sp in log_specs]
        # At every point, compare the same number of smallest directions as the analysed point has
        # null directions: a check point whose own rule misses a weak gap still shows whether the
        # direction stayed put (scaling) or turned.
        r_log, r_nat = log_specs[0].rank, nat_specs[0].rank
        combos = analyze_null_spaces(
            [sp.vt[r_log:].T for sp in log_specs], names, [sp.vt[r_nat:].T for sp in nat_specs]
        )
        for a in combos.monomials:
            mono_vals.append(float(np.exp(np.asarray(a, float) @ np.log(theta))))
            mono_crb.append(direction_crb(log_specs[0], a))

    report = IdentifiabilityReport(
        names=names,
        theta=theta,
        scale=scale,
        experiments=[
            {"name": e.name, "observations": int(np.size(y[0])), "noise": _noise_text(e)}
            for e, y in zip(experiments, ys, strict=True)
        ],
        spectrum=spec,
        fim=w_all[0].T @ w_all[0],
        fim_log=None if w_log_all is None else w_log_all[0].T @ w_log_all[0],
        crb=crb,
        crb_relative=crb_rel,
        combinations=combos,
        monomial_values=mono_vals,
        monomial_crb_relative=mono_crb,
        collinearity=collinearity(w_all[0], names, max_size=collinearity_max_size),
        check_points=pts[1:] if check_points else None,
        check_ranks=check_ranks,
    )
    if profiles:
        opts = dict(profile_options or {})
        if profiles is True:
            dirs = [np.eye(p)[i] for i in range(p)]
            if combos is not None and scale == "log":
                dirs += [np.asarray(a, float) for a in combos.monomials if np.count_nonzero(a) > 1]
            crbs = [direction_crb(spec, d) for d in dirs]
        else:
            dirs = parse_directions(profiles, names, where)
            crbs = [direction_crb(spec, d) for d in dirs]
        opts.setdefault("crb", crbs)
        report.profiles = profile_likelihood(
            experiments, theta, directions=dirs, names=names, scale=scale, **opts
        )
    return report
