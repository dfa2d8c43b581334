r"""What would make the parameters identifiable: candidate additions to an experiment, ranked.

A *design* is a base list of :class:`~jaxid.identify.Experiment` plus some candidate additions, each
a named list of experiments (more observation channels, a longer or denser record, another
initial state, a second experiment such as a known added mass). Independent experiments add their
Fisher information, :math:`F = F_{\mathrm{base}} + \sum_{c} F_c`. :func:`rank_designs` computes,
at every prior draw, the criteria of :mod:`jaxid.identify.design` for the base, for the base with
each candidate, and for sets of candidates, and ranks the single candidates by

1. the number of targets they make identifiable (a finite Cramer-Rao bound at every draw),
2. the smallest rank over the draws,
3. how much they shrink the base's non-identifiable directions: with :math:`N_d` an orthonormal
   basis of the base's null space at draw :math:`d`, the information of the combined design along
   it, :math:`\lambda_{\min}(N_d^T F N_d)` (``0`` when the combined design is still rank deficient
   there), averaged over the draws,
4. the geometric mean of the targets' finite Cramer-Rao bounds (smaller is better), then
   :math:`\log\det F` (D-optimality).

It then searches sets of candidates in increasing size and reports the smallest that makes every
target identifiable at every draw (among sets of that size, the best by the same order), or that
none up to ``max_size`` does. In a study, the ``[design]`` table of the configuration names the
candidates (:func:`study_design`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import jax
import numpy as np
from jaxtyping import Float

from ..identify import (
    DesignCriteria,
    Experiment,
    criteria_over_draws,
    information_roots,
    spectrum,
    target_directions,
    whitened_jacobians,
)
from ..identify.design import Targets
from ..typing import Key, ParamBatch
from .config import ResolvedModel, StudyConfig, build_start, validate

if TYPE_CHECKING:  # annotations only: importing jaxid does not load matplotlib
    import matplotlib.axes
    import matplotlib.figure

__all__ = ["DesignRanking", "DesignRow", "rank_designs", "study_design"]


@dataclass(frozen=True)
class DesignRow:
    """One design: the base plus ``additions`` (candidate names).

    - ``criteria``: its :class:`~jaxid.identify.DesignCriteria` over the draws;
    - ``null_resolved``: how many of the base's null directions the design resolves (the smallest
      rank gain over the draws);
    - ``null_information``: the mean over the draws of :math:`\\lambda_{\\min}(N_d^T F N_d)` on the
      base's null directions (``0`` at a draw where some stay unresolved; ``nan`` when the base
      has full rank at every draw);
    - ``tightening``: per target, the base's mean bound divided by this design's (``inf`` where
      the base has no finite bound and this design has one, ``nan`` where neither has).
    """

    additions: tuple[str, ...]
    criteria: DesignCriteria = field(repr=False)
    null_resolved: int
    null_information: float
    tightening: Float[np.ndarray, " target"]

    @property
    def identified(self) -> tuple[str, ...]:
        """The targets identifiable at every draw."""
        c = self.criteria
        return tuple(t for t, ok in zip(c.targets, c.identifiable, strict=True) if ok)

    def sort_key(self) -> tuple:
        """The ranking order (smaller first): targets identified, rank, information along the
        base's null directions, geometric mean of the finite target bounds, log det, size."""
        c = self.criteria
        crb = c.mean_crb[np.isfinite(c.mean_crb)]
        geo = float(np.exp(np.mean(np.log(crb)))) if crb.size else math.inf
        null = 0.0 if math.isnan(self.null_information) else self.null_information
        return (-len(self.identified), -c.min_rank, -null, geo, -c.mean_log_det, len(self.additions))


@dataclass(frozen=True)
class DesignRanking:
    """What :func:`rank_designs` returns.

    - ``names``: the parameters; ``targets``: the target labels; ``thetas``: the draws ``(D, p)``;
      ``log``: criteria on :math:`\\log\\theta` (relative bounds) or natural parameters;
    - ``base``: the base's :class:`~jaxid.identify.DesignCriteria`; ``candidates``: the candidate
      names, in the order given;
    - ``rows``: one :class:`DesignRow` per candidate, best first (the order of the module
      docstring);
    - ``smallest_set``: the smallest set of candidates that makes every target identifiable at
      every draw (``()`` when the base already does, ``None`` when no set up to ``max_size`` does)
      and ``smallest``: its row; ``sets_searched``: how many sets were evaluated;
    - ``draws_failed``: draws dropped because a simulation failed there.
    """

    names: tuple[str, ...]
    targets: tuple[str, ...]
    thetas: Float[np.ndarray, "draw param"]
    log: bool
    base: DesignCriteria = field(repr=False)
    candidates: tuple[str, ...]
    rows: tuple[DesignRow, ...]
    smallest_set: tuple[str, ...] | None
    smallest: DesignRow | None = field(repr=False)
    sets_searched: int
    max_size: int
    draws_failed: int = 0

    def row(self, name: str) -> DesignRow:
        """The row of one candidate."""
        for r in self.rows:
            if r.additions == (name,):
                return r
        raise KeyError(f"no candidate {name!r} (the candidates are {self.candidates})")

    def table(self) -> str:
        """The ranking as a Markdown table (bounds relative in log parameters), then the smallest set."""
        unit = _pct if self.log else _num
        head = (
            "| rank | design | identifiable targets | min rank | base null directions resolved "
            "| info on them | mean log det F | "
            + " | ".join(f"CRB {t} (tightening)" for t in self.targets)
            + " |"
        )
        lines = [head, "|---" * (7 + len(self.targets)) + "|"]
        base = self.base
        p = len(self.names)
        nullity = p - base.min_rank
        lines.append(
            f"| - | base | {', '.join(_identified(base)) or 'none'} | {base.min_rank} of {p} | "
            f"{nullity} null | - | {_num(base.mean_log_det)} | "
            + " | ".join(unit(v) for v in base.mean_crb)
            + " |"
        )
        for i, r in enumerate(self.rows, 1):
            c = r.criteria
            lines.append(
                f"| {i} | + {' + '.join(r.additions)} | {', '.join(r.identified) or 'none'} | "
                f"{c.min_rank} of {p} | {r.null_resolved} of {nullity} | {_num(r.null_information)} | "
                f"{_num(c.mean_log_det)} | "
                + " | ".join(
                    f"{unit(v)} ({_times(t)})" for v, t in zip(c.mean_crb, r.tightening, strict=True)
                )
                + " |"
            )
        lines.append("")
        lines.append(self.summary())
        return "\n".join(lines)

    def summary(self) -> str:
        """One sentence: the smallest set of additions that makes every target identifiable."""
        where = f"at all {self.thetas.shape[0]} prior draws"
        targets = ", ".join(self.targets)
        if self.smallest_set == ():
            return f"The base design already identifies {targets} {where}."
        if self.smallest_set is None:
            return (
                f"No set of up to {self.max_size} of the candidates identifies {targets} {where} "
                f"({self.sets_searched} sets searched)."
            )
        r = self.smallest
        bounds = ", ".join(f"{t} {_pct(v) if self.log else _num(v)}" for t, v in zip(r.criteria.targets,
                           r.criteria.mean_crb, strict=True))  # fmt: skip
        return (
            f"Smallest set of additions that identifies {targets} {where}: "
            f"{' + '.join(self.smallest_set)} (Cramer-Rao bounds {bounds}; "
            f"{self.sets_searched} sets searched)."
        )

    def to_markdown(self) -> str:
        return self.table()

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict:
        """Every number of the ranking, JSON-ready (``inf`` as the string ``"inf"``)."""

        def crit(c: DesignCriteria) -> dict:
            return dict(
                ranks=c.ranks.tolist(),
                min_rank=c.min_rank,
                identifiable=dict(zip(c.targets, c.identifiable.tolist(), strict=True)),
                mean_lambda_min=c.mean_lambda_min,
                mean_log_det=c.mean_log_det,
                mean_crb=dict(zip(c.targets, c.mean_crb.tolist(), strict=True)),
                crb=c.crb.tolist(),
            )

        rows = [
            dict(
                additions=list(r.additions),
                identified=list(r.identified),
                null_resolved=r.null_resolved,
                null_information=r.null_information,
                tightening=dict(zip(self.targets, r.tightening.tolist(), strict=True)),
                **crit(r.criteria),
            )
            for r in self.rows
        ]
        return _jsonable(
            dict(
                names=list(self.names),
                targets=list(self.targets),
                log=self.log,
                thetas=self.thetas.tolist(),
                base=crit(self.base),
                candidates=list(self.candidates),
                ranking=rows,
                smallest_set=None if self.smallest_set is None else list(self.smallest_set),
                smallest=None if self.smallest is None else crit(self.smallest.criteria),
                sets_searched=self.sets_searched,
                max_size=self.max_size,
                draws_failed=self.draws_failed,
                summary=self.summary(),
            )
        )

    def plot(self, ax: "matplotlib.axes.Axes | None" = None) -> "matplotlib.figure.Figure":
        """The mean Cramer-Rao bound of each target for the base and each candidate (log scale;
        an unbounded target is drawn as a hatched bar at the top, labelled ``inf``). Returns the
        figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(1.6 + 1.3 * (len(self.rows) + 1), 3.6))
        else:
            fig = ax.figure
        designs = ["base"] + ["+ " + " + ".join(r.additions) for r in self.rows]
        values = np.stack([self.base.mean_crb] + [r.criteria.mean_crb for r in self.rows])
        scale = 100.0 if self.log else 1.0
        finite = values[np.isfinite(values)] * scale
        top = float(finite.max()) * 10 if finite.size else 1.0
        bottom = float(finite.min()) / 10 if finite.size else 0.1
        width = 0.8 / len(self.targets)
        x = np.arange(len(designs))
        for j, t in enumerate(self.targets):
            v = values[:, j] * scale
            inf = ~np.isfinite(v)
            pos = x + (j - (len(self.targets) - 1) / 2) * width
            bars = ax.bar(pos, np.where(inf, top, v), width, label=t, bottom=0)
            for b, is_inf in zip(bars, inf, strict=True):
                if is_inf:
                    b.set_hatch("//")
                    b.set_alpha(0.4)
                    ax.text(b.get_x() + b.get_width() / 2, top, "inf", ha="center", va="bottom", fontsize=7)
        ax.set_yscale("log")
        ax.set_ylim(bottom, top * 3)
        ax.set_xticks(x, designs, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("relative CRB (%)" if self.log else "CRB")
        ax.set_title("Cramer-Rao bound of each target, mean over prior draws")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return fig


def _identified(c: DesignCriteria) -> tuple[str, ...]:
    return tuple(t for t, ok in zip(c.targets, c.identifiable, strict=True) if ok)


def _num(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.4g}"


def _pct(v) -> str:
    return "inf" if math.isinf(v) else f"{100 * v:.3g} %"


def _times(t) -> str:
    if math.isnan(t):
        return "-"
    if math.isinf(t):
        return "from inf"
    return f"{t:.3g}x"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _as_list(experiments, where: str) -> list[Experiment]:
    if isinstance(experiments, Experiment):
        return [experiments]
    try:
        out = list(experiments)
    except TypeError:
        raise TypeError(f"{where}: must be an Experiment or a list of them") from None
    if not out or not all(isinstance(e, Experiment) for e in out):
        raise TypeError(f"{where}: must be a non-empty list of jaxid.identify.Experiment")
    return out


def rank_designs(
    base: Experiment | Sequence[Experiment],
    candidates: Mapping[str, Experiment | Sequence[Experiment]],
    thetas: ParamBatch,
    *,
    targets: Targets = None,
    log: bool = False,
    max_size: int | None = None,
    rule: str = "auto",
    rtol: float | None = None,
) -> DesignRanking:
    """Rank candidate additions to the ``base`` experiments by what they add about ``targets``
    at the points ``thetas`` (order and search in the module docstring).

    **Arguments:**

    - ``base``: the experiments already planned (an :class:`~jaxid.identify.Experiment` or a list).
    - ``candidates``: ``{name: experiment or list of experiments}``, each an addition to the base.
    - ``thetas``: the prior draws, shape ``(D, p)`` (or one point ``(p,)``).
    - ``targets``: the parameters (names) or directions (``{label: vector}``) that should become
      identifiable; default every parameter.
    - ``log``: criteria on :math:`\\log\\theta` (bounds on relative standard deviations; ``thetas``
      positive) instead of natural parameters.
    - ``max_size``: the largest set of candidates searched for the smallest identifying set
      (default: all of them; at most :math:`2^{\\text{candidates}}` sets are evaluated, each a
      few SVDs of :math:`p \\times p` blocks).
    - ``rule``, ``rtol``: the numerical-rank rule (:func:`~jaxid.identify.numerical_rank`).

    Each experiment's Jacobian is computed once, batched over the draws; draws where any
    simulation fails are dropped (counted in ``draws_failed``; an error if all fail).
    """
    where = "rank_designs"
    base_list = _as_list(base, f"{where}: base")
    if not isinstance(candidates, Mapping) or not candidates:
        raise TypeError(f"{where}: candidates must be a non-empty mapping name -> experiment(s)")
    cand = {}
    for name, exps in candidates.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"{where}: candidate names must be non-empty strings, got {name!r}")
        cand[name] = _as_list(exps, f"{where}: candidates[{name!r}]")
    everything = base_list + [e for exps in cand.values() for e in exps]
    names = {e.param_names for e in everything if e.param_names is not None}
    if len(names) > 1:
        raise ValueError(f"{where}: the experiments name different parameters: {sorted(names)}")
    thetas = np.asarray(thetas, dtype=float)
    thetas = thetas[None] if thetas.ndim == 1 else thetas
    p = thetas.shape[-1]
    names = next(iter(names)) if names else tuple(f"p{i}" for i in range(p))
    labels, _ = target_directions(targets, names)  # checks targets before any simulation
    n_cand = len(cand)
    max_size = n_cand if max_size is None else max_size
    if isinstance(max_size, bool) or not isinstance(max_size, int) or not 1 <= max_size <= n_cand:
        raise ValueError(f"{where}: max_size must be an int in [1, {n_cand}], got {max_size!r}")

    roots, finite = information_roots(everything, thetas, log=log)
    if not finite.any():
        whitened_jacobians(everything, thetas[0], where=where, single=True)  # raises, naming the failure
    roots, thetas_ok = roots[:, finite], thetas[finite]
    n_base = len(base_list)
    blocks, start = {}, n_base
    for name, exps in cand.items():
        blocks[name] = roots[start : start + len(exps)]
        start += len(exps)
    base_roots = np.concatenate(list(roots[:n_base]), axis=-2)  # (D, n_base p, p)

    def crit(stack):
        return criteria_over_draws(
            stack, thetas_ok, names=names, targets=targets, log=log, rule=rule, rtol=rtol
        )

    base_crit = crit(base_roots)
    null_spaces = [spectrum(r, rule=rule, rtol=rtol).null_space for r in base_roots]

    def make_row(additions):
        added = [np.concatenate(list(blocks[a]), axis=-2) for a in additions]
        stack = np.concatenate([base_roots, *added], axis=-2)
        c = crit(stack)
        if all(n.shape[1] == 0 for n in null_spaces):
            null_info = math.nan
        else:
            vals = []
            for d, n in enumerate(null_spaces):
                if n.shape[1] == 0:
                    continue
                if c.ranks[d] < p:  # some base null direction is still unidentified
                    vals.append(0.0)
                else:
                    s = np.linalg.svd(stack[d] @ n, compute_uv=False)
                    vals.append(float(s[-1] ** 2))
            null_info = float(np.mean(vals))
        b, m = base_crit.mean_crb, c.mean_crb
        with np.errstate(invalid="ignore", divide="ignore"):
            tight = np.where(np.isfinite(b) & np.isfinite(m), b / m, np.where(np.isfinite(m), np.inf, np.nan))
        return DesignRow(
            additions=tuple(additions),
            criteria=c,
            null_resolved=int(np.min(c.ranks - base_crit.ranks)),
            null_information=null_info,
            tightening=tight,
        )

    rows = sorted((make_row((n,)) for n in cand), key=DesignRow.sort_key)
    by_name = {r.additions: r for r in rows}
    searched = len(rows)
    smallest_set, smallest = None, None
    if base_crit.identifiable.all():
        smallest_set = ()
    else:
        for size in range(1, max_size + 1):
            found = []
            for combo in itertools.combinations(cand, size):
                r = by_name.get(combo)
                if r is None:
                    r = make_row(combo)
                    searched += 1
                if r.criteria.identifiable.all():
                    found.append(r)
            if found:
                smallest = min(found, key=DesignRow.sort_key)
                smallest_set = smallest.additions
                break
    return DesignRanking(
        names=tuple(names),
        targets=labels,
        thetas=thetas_ok,
        log=bool(log),
        base=base_crit,
        candidates=tuple(cand),
        rows=tuple(rows),
        smallest_set=smallest_set,
        smallest=smallest,
        sets_searched=searched,
        max_size=max_size,
        draws_failed=int((~finite).sum()),
    )


# ---------------------------------------------------------------------------------------------
# the study's [design] table


def design_experiments(
    config: StudyConfig, resolved: ResolvedModel | None = None
) -> tuple[Experiment, dict[str, Experiment]]:
    """The base experiment (one record with the study's channels, times, noise and initial state,
    drawn initial-state components at their prior centre) and one experiment per candidate of
    ``config.design``. Channel-only candidates are views (:meth:`~jaxid.identify.Experiment.select`)
    of one simulation of every model channel, so they share its compilation."""
    from .pipeline import make_observer, observer_experiment

    resolved = build_start(config, validate(config) if resolved is None else resolved)
    opts = config.design
    if opts is None:
        raise ValueError("design: the configuration has no [design] table")
    names = config.params.names
    full_res = _all_channels(resolved)
    full = observer_experiment(
        make_observer(config, full_res),
        1.0,
        param_names=names,
        name=config.name,
        channels=full_res.channels,
    )
    base = full.select(resolved.channels, noise=config.noise, relative=config.relative, name="base")
    cands = {}
    for c in opts.candidates:
        channels = resolved.channels if c.channels is None else c.channels
        noise = config.noise if c.noise is None else c.noise
        relative = config.relative if c.relative is None else c.relative
        if c.times is None and not c.initial_state and not c.added:
            source = full
        else:
            y0 = np.array(resolved.y0, dtype=float)
            for s, v in c.initial_state.items():
                y0[resolved.state_names.index(s)] = v
            offset = np.zeros(len(resolved.model.param_names))
            for n, v in c.added.items():
                offset[resolved.model.param_names.index(n)] = v
            source = observer_experiment(
                make_observer(
                    config,
                    full_res,
                    y0=None if resolved.start is not None else y0,  # a start follows the parameters
                    times=c.times,
                    t0=config.times[0] if c.times is not None else None,
                    offset=offset if c.added else None,
                ),
                1.0,
                param_names=names,
                name=c.name,
                channels=full_res.channels,
            )
        cands[c.name] = source.select(channels, noise=noise, relative=relative, name=c.name)
    return base, cands


def _all_channels(resolved: ResolvedModel) -> ResolvedModel:
    from dataclasses import replace

    obs = tuple(resolved.model.obs_names)
    return replace(resolved, channels=obs, channel_index=tuple(range(len(obs))))


def study_design(
    config: StudyConfig, *, key: Key | None = None, resolved: ResolvedModel | None = None
) -> DesignRanking:
    """The ranking of the candidates of ``config.design`` (the study's ``[design]`` table) at
    ``design.draws`` prior draws (from ``key``, default from ``config.seed`` as in
    :func:`~jaxid.study.run`), on log parameters
    when every prior is positive; see :func:`rank_designs`."""
    resolved = validate(config) if resolved is None else resolved
    opts = config.design
    if opts is None:
        raise ValueError("design: the configuration has no [design] table")
    if key is None:  # the key jaxid.study.run uses: its rankings are the same
        key = jax.random.fold_in(jax.random.split(jax.random.key(config.seed), 4)[2], 1)
    draws = opts.draws if opts.draws is not None else config.identifiability.draws
    thetas = np.asarray(config.params.sample(key, draws), dtype=np.float64)
    log = bool(np.all(config.params.support[0] > 0))
    base, cands = design_experiments(config, resolved)
    return rank_designs(base, cands, thetas, targets=opts.targets, log=log, max_size=opts.max_size)
