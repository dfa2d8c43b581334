r"""The study configuration: a frozen :class:`StudyConfig`, read from TOML by :func:`load_config`.

A study asks, for one model and one kind of record: which parameters the records determine, do
learned estimators reach that limit, and how far it is from the Bayes-optimal estimate. The TOML
form (every table but ``[params]`` optional)::

    name = "pendulum"
    seed = 0                      # an int seed: file-backed configurations only
    records = 2000
    split = [0.8, 0.1, 0.1]       # train / validation / test

    [model]
    name = "pendulum"             # built-in, or "package.module:Name" (a jaxid model class or a
    options = { observe_mode = "angle" }    #  function theta -> observations)

    [params]                      # the studied parameters and their priors
    m = [0.5, 2.0]                # a box: uniform
    b = { log_uniform = [0.05, 0.5] }
    g = { normal = [9.81, 0.5], low = 8.0, high = 12.0 }   # truncated normal
    # also { uniform = [a, b] } and { log_normal = [mu, sigma], low = .., high = .. }

    [fixed]                       # every other model parameter, at a known value
    [initial_state]               # one entry per state: a number (fixed) or a prior (drawn); or,
                                  #   before the first table, initial_state = "gait" (the walker
                                  #   on its own periodic gait) or "package.module:function"
                                  #   (model -> initial state): a function of the parameters
    theta = 0.5
    omega = 0.0

    [observation]
    times = { start = 0.0, stop = 4.0, num = 41 }   # or a list of save times
    channels = ["theta"]          # a subset of the model's observation channels
    noise = 0.01                  # standard deviation of the Gaussian noise ...
    relative = false              # ... or a fraction of each channel's sd in each record

    [estimators]                  # jaxid.nn.train: the network and its training
    arch = "mlp"  depth = 3  width = 64  activation = "relu"  members = 1
    epochs = 100  batch_size = 64  learning_rate = 1e-3  patience = 20
    posterior = false  posterior_samples = 500   # also a posterior network (a conditional flow)

    [identifiability]             # Fisher analysis at `draws` prior draws; Sobol with `sobol_samples`
    draws = 8  sobol_samples = 256

    [bayes]                       # jaxid.inference.sample_posterior on test records
    records = 20  draws = 400  warmup = 400  chains = 4

    [design]                      # what would make it identifiable (jaxid.study.design)
    targets = ["m", "L"]          # default: every studied parameter
    draws = 4                     # prior draws (default identifiability.draws)
    max_size = 2                  # the largest set of candidates searched (default: all)
    [design.candidates.velocity]  # each candidate: a record added to the base, with the base's
    channels = ["omega"]          #   channels, times, noise and initial state unless given
    noise = 0.05
    [design.candidates.longer]
    times = { start = 4.1, stop = 8.0, num = 40 }   # added save times; the record starts at the
    [design.candidates.second_start]                #   base's first save time
    initial_state = { theta = 1.2 }
    [design.candidates.added_mass]
    added = { m = 0.5 }           # a known amount added to parameters in this record

Everything is checked by :func:`validate` before any work starts: an unknown key (named, with
the closest known one), a model parameter without a prior or a value, a parameter with both, a
prior that reaches values the model refuses (a mass prior below zero), a model that does not
import, channels the model lacks. Errors are :class:`ValueError` or :class:`TypeError` whose
message starts with the key, e.g. ``params.m``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..models import AbstractModel, AdvectionDiffusion, DoublePendulum, ForcedDampedPendulum, Pendulum
from ..priors import Distribution, LogNormal, LogUniform, Normal, Prior, Uniform
from ..walker.model import CHANNELS as WALKER_CHANNELS
from ..walker.model import Walker

__all__ = [
    "BUILTIN_MODELS",
    "STARTS",
    "BayesOptions",
    "DesignCandidate",
    "DesignOptions",
    "EstimatorOptions",
    "IdentifiabilityOptions",
    "ResolvedModel",
    "StudyConfig",
    "build_start",
    "config_from_dict",
    "load_config",
    "parse_prior",
    "resolve_model",
]

BUILTIN_MODELS: dict[str, tuple[type[AbstractModel], dict]] = {
    "pendulum": (Pendulum, {"observe_mode": "both"}),
    "forced_damped_pendulum": (ForcedDampedPendulum, {"observe_mode": "state"}),
    "double_pendulum": (DoublePendulum, {"observe_mode": "both"}),
    "advection_diffusion": (AdvectionDiffusion, {}),
    "walker": (Walker, {"channels": WALKER_CHANNELS}),
}
"""Built-in model names, their classes and the default options (every channel observable, so
``observation.channels`` picks any of them)."""


def _did_you_mean(name: str, known) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known`` to ``name``, or ``""``."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_known(where: str, owner: str, what: str, name: str, known, listing: str = "it has") -> None:
    """A ``ValueError`` at ``where`` when ``owner`` has no ``what`` called ``name`` among ``known``."""
    if name not in known:
        raise ValueError(
            f"{where}: {owner} has no {what} {name!r}{_did_you_mean(name, known)} ({listing} {known})"
        )


def _check_keys(given: Mapping, known, where: str) -> None:
    for key in given:
        if key not in known:
            hint = _did_you_mean(key, known)
            raise ValueError(
                f"{where}{'.' if where else ''}{key}: unknown key{hint} (known: {', '.join(sorted(known))})"
            )


def _positive_int(value, where: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{where}: must be an int >= {low}, got {value!r}")
    return value


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class EstimatorOptions:
    """The learned point estimators (:func:`jaxid.nn.train`): network ``arch`` (``mlp``, ``cnn``,
    ``gru``), ``depth``, ``width``, ``activation``, ensemble ``members``; ``epochs`` (at most),
    ``batch_size``, ``learning_rate``, early-stopping ``patience``; ``posterior``: also a posterior
    network (:func:`jaxid.nn.train_posterior`, a conditional flow on the same embedding network,
    its draws restricted to the prior), scored by ``posterior_samples`` draws per test record."""

    arch: str = "mlp"
    depth: int = 3
    width: int = 64
    activation: str = "relu"
    members: int = 1
    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 20
    posterior: bool = False
    posterior_samples: int = 500


@dataclass(frozen=True)
class IdentifiabilityOptions:
    """The identifiability map: :func:`jaxid.identify.analyze` at ``draws`` prior draws (with
    ``check_points`` perturbed points each, at relative ``spread``), and total Sobol indices from
    ``sobol_samples`` base samples (a power of 2)."""

    draws: int = 8
    check_points: int = 3
    spread: float = 0.05
    sobol_samples: int = 256


@dataclass(frozen=True)
class BayesOptions:
    """The Bayes reference (:func:`jaxid.inference.sample_posterior`) on the first ``records``
    test records: ``chains``, ``warmup`` and ``draws`` per chain, ``thin`` (random-walk steps per
    kept draw), ``method`` (``rwm``, ``nuts``), ``starts`` and ``fits`` (prior draws, and the best
    of them that start a least-squares fit: raise both for a multimodal likelihood, e.g. a
    forcing frequency), and ``ess_min``, the bulk effective sample size a record needs to count.
    ``records = 0`` skips it."""

    records: int = 20
    chains: int = 4
    warmup: int = 500
    draws: int = 500
    thin: int = 5
    method: str = "rwm"
    starts: int = 64
    fits: int = 4
    ess_min: float = 100.0


@dataclass(frozen=True)
class DesignCandidate:
    """One candidate addition of the ``[design]`` table: a record added to the base, with the
    base's value for every field left ``None`` (or empty).

    - ``channels``: observed channels; ``times``: save times (the simulation starts at the base's
      first save time, so ``times`` after the base's make a longer record); ``noise``, ``relative``;
    - ``initial_state``: ``{state: value}`` replacing the base's; ``added``: ``{parameter: amount}``
      added to the model's parameters in this record (a known added mass).
    """

    name: str
    channels: tuple[str, ...] | None = None
    times: tuple[float, ...] | None = None
    noise: float | None = None
    relative: bool | None = None
    initial_state: Mapping[str, float] = field(default_factory=dict)
    added: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DesignOptions:
    """The ``[design]`` table: the ``candidates`` (:class:`DesignCandidate`), the ``targets``
    that should become identifiable (``None``: every studied parameter), the prior ``draws``
    (``None``: ``identifiability.draws``) and ``max_size``, the largest set of candidates searched
    (``None``: all). See :func:`jaxid.study.design.rank_designs`."""

    candidates: tuple[DesignCandidate, ...]
    targets: tuple[str, ...] | None = None
    draws: int | None = None
    max_size: int | None = None


@dataclass(frozen=True)
class StudyConfig:
    """One study (see the module docstring for the TOML form and its checks).

    - ``model``: a built-in name (:data:`BUILTIN_MODELS`) or ``"package.module:Name"``;
      ``model_options``: static options of the model's constructor.
    - ``params``: a :class:`jaxid.priors.Prior` of the studied parameters; ``fixed``: the values of
      the other model parameters.
    - ``initial_state``: ``{state: value or Distribution}`` (a drawn state is unknown to the
      estimators and marginalised by the Bayes reference); empty for a function model. Or a
      function of the parameters (:data:`STARTS`): ``"gait"``, the walker's own periodic gait
      (:func:`jaxid.walker.gait_initial_state`, as the gait data set starts its records; a
      parameter set without a gait is a rejected record), or ``"package.module:function"``, a
      JAX function ``model -> y0``.
    - ``times``: save times; ``channels``: observed channels (``None``: all); ``noise``, ``relative``.
    - ``records``, ``split``, ``chunk_size``, ``seed``; ``estimators``, ``identifiability``,
      ``bayes``: the options of each step; ``design``: the candidate additions to rank
      (:class:`DesignOptions`, ``None``: no design step).
    """

    model: str
    params: Prior
    name: str = "study"
    model_options: Mapping = field(default_factory=dict)
    fixed: Mapping[str, float] = field(default_factory=dict)
    initial_state: Mapping[str, float | Distribution] | str = field(default_factory=dict)
    times: tuple[float, ...] = ()
    channels: tuple[str, ...] | None = None
    noise: float = 0.01
    relative: bool = False
    records: int = 2000
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    chunk_size: int = 1024
    seed: int = 0
    estimators: EstimatorOptions = field(default_factory=EstimatorOptions)
    identifiability: IdentifiabilityOptions = field(default_factory=IdentifiabilityOptions)
    bayes: BayesOptions = field(default_factory=BayesOptions)
    design: DesignOptions | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.params.names

    def replace(self, **changes) -> StudyConfig:
        """A copy with fields changed, checked again (``records``, ``seed``, ...)."""
        new = replace(self, **changes)
        validate(new)
        return new

    def to_dict(self) -> dict:
        """A JSON-ready description (priors by their ``repr``)."""
        return dict(
            name=self.name,
            model=self.model,
            model_options=dict(self.model_options),
            params={n: repr(d) for n, d in zip(self.params.names, self.params.dists, strict=True)},
            fixed=dict(self.fixed),
            initial_state=self.initial_state
            if isinstance(self.initial_state, str)
            else {k: v if isinstance(v, float) else repr(v) for k, v in self.initial_state.items()},
            times=dict(start=self.times[0], stop=self.times[-1], num=len(self.times)) if self.times else None,
            channels=None if self.channels is None else list(self.channels),
            noise=self.noise,
            relative=self.relative,
            records=self.records,
            split=list(self.split),
            seed=self.seed,
            estimators=_asdict(self.estimators),
            identifiability=_asdict(self.identifiability),
            bayes=_asdict(self.bayes),
            design=None if self.design is None else _design_dict(self.design),
        )


def _design_dict(d: DesignOptions) -> dict:
    return dict(
        targets=None if d.targets is None else list(d.targets),
        draws=d.draws,
        max_size=d.max_size,
        candidates={
            c.name: {
                k: (list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, Mapping) else v)
                for k, v in _asdict(c).items()
                if k != "name" and v is not None and v != {}
            }
            for c in d.candidates
        },
    )


def _asdict(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


# ---------------------------------------------------------------------------------------------
# priors


_PRIOR_KINDS = {"uniform": Uniform, "log_uniform": LogUniform, "normal": Normal, "log_normal": LogNormal}


def parse_prior(spec: Distribution | Sequence[float] | Mapping[str, Any], where: str) -> Distribution:
    """A distribution from its TOML form: ``[low, high]`` (uniform), ``{uniform = [a, b]}``,
    ``{log_uniform = [a, b]}``, ``{normal = [mean, sd], low = .., high = ..}`` or
    ``{log_normal = [mu, sigma], low = .., high = ..}``; a :class:`Distribution` passes through."""
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, (list, tuple)):
        spec = {"uniform": list(spec)}
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"{where}: a prior is [low, high] or a table such as {{ log_uniform = [a, b] }}, got {spec!r}"
        )
    kinds = [k for k in spec if k in _PRIOR_KINDS]
    if len(kinds) != 1:
        _check_keys(spec, [*_PRIOR_KINDS, "low", "high"], where)
        raise ValueError(f"{where}: give exactly one of {', '.join(_PRIOR_KINDS)}, got {sorted(spec)}")
    kind = kinds[0]
    bounds = ("low", "high") if kind in ("normal", "log_normal") else ()
    _check_keys(spec, [kind, *bounds], where)
    args = spec[kind]
    if not isinstance(args, (list, tuple)) or len(args) != 2:
        raise ValueError(f"{where}.{kind}: give two numbers, got {args!r}")
    args = [_number(a, f"{where}.{kind}") for a in args]
    extra = {b: _number(spec[b], f"{where}.{b}") for b in bounds if b in spec}
    try:
        return _PRIOR_KINDS[kind](*args, **extra)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


# ---------------------------------------------------------------------------------------------
# the model


@dataclass(frozen=True)
class ResolvedModel:
    """What the study needs of the configured model.

    - ``kind``: ``"model"`` (a jaxid model class) or ``"function"`` (``theta -> observations``).
    - ``model``: for a model, an instance with the fixed values and the studied parameters at the
      centre of their priors; ``fn`` for a function.
    - ``param_index``: position of each studied parameter in ``model.param_names``;
      ``channel_index``: positions of the observed channels; ``channels``: their names.
    - ``state_names``, ``y0``: the initial state with drawn components at their prior centre;
      ``drawn_states``: names of the drawn components.
    - ``obs_shape``: ``(time, channel)`` of one record.
    - ``start``: the name of an initial state that is a function of the parameters (``"gait"`` or
      ``"package.module:function"``), else ``None``; ``start_fn``: that function
      ``model -> y0``, and ``y0`` its value at the centre of the priors, once built by
      :func:`build_start` (the gait's table of starting speeds takes seconds, so
      :func:`validate` checks the name only and ``y0`` is NaN until then).
    """

    kind: str
    model: AbstractModel | None
    fn: Callable | None
    param_index: tuple[int, ...]
    channels: tuple[str, ...]
    channel_index: tuple[int, ...]
    state_names: tuple[str, ...]
    y0: np.ndarray | None
    drawn_states: tuple[str, ...]
    obs_shape: tuple[int, int]
    start: str | None = None
    start_fn: Callable | None = None


def _neither(where: str, name: str, known, what: str, form: str) -> ValueError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ValueError(
        f"{where}: {name!r} is neither a built-in {what} ({', '.join(known)}){hint} nor an "
        f"import path '{form}'"
    )


def _import_model(path: str, where: str):
    if path in BUILTIN_MODELS:
        return BUILTIN_MODELS[path][0]
    if ":" not in path:
        raise _neither(where, path, BUILTIN_MODELS, "model", "package.module:Name")
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:
        raise ValueError(
            f"{where}: cannot import module {module_name!r} of {path!r} ({type(err).__name__}: {err}); "
            "check that it is on the Python path"
        ) from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{where}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, type):
        if not issubclass(obj, AbstractModel):
            raise TypeError(
                f"{where}: {path!r} is a class but not a jaxid model "
                "(a subclass of jaxid.models.AbstractModel)"
            )
        return obj
    if not callable(obj):
        raise TypeError(
            f"{where}: {path!r} is neither a jaxid model class nor a function theta -> observations"
        )
    return obj


def _centre(d: Distribution) -> float:
    lo, hi = d.support
    if math.isfinite(lo) and math.isfinite(hi):
        return float(np.sqrt(lo * hi)) if d.log_coordinate and lo > 0 else 0.5 * (lo + hi)
    return float(np.median(np.asarray(d.sample(jax.random.key(0), 201))))


STARTS: dict[str, str] = {
    "gait": "the walker's own periodic gait at mid-stance (jaxid.walker.gait_initial_state)",
}
"""Built-in initial states that are functions of the parameters (``initial_state = "gait"``);
any other is a ``"package.module:function"`` path to a JAX function ``model -> y0``."""


def _walker_k_range(config: StudyConfig) -> tuple[float, float] | None:
    """``k_range`` of :func:`jaxid.walker.gait_initial_state` over the prior box, or ``None`` (a
    speed-grid scan per walker) where a prior is unbounded or ``alpha0`` or ``g`` is not the
    default the table of gaits is made for."""
    defaults = {"alpha0": Walker.default_priors["alpha0"][0], "g": Walker.default_priors["g"][0]}
    for n, v in defaults.items():
        if n in config.params.names or not math.isclose(config.fixed.get(n, v), v, rel_tol=1e-12):
            return None
    bounds = {}
    for n in ("m", "k", "l0"):
        bounds[n] = (config.fixed[n],) * 2 if n in config.fixed else tuple(config.params[n].support)
    if not all(math.isfinite(v) and v > 0 for b in bounds.values() for v in b):
        return None
    from ..walker.gait import stiffness_range

    return stiffness_range({**bounds, "g": (defaults["g"],) * 2})


@functools.lru_cache(maxsize=8)
def _gait_start(k_range: tuple[float, float] | None) -> Callable:
    """One gait start per stiffness range and process: its table of gaits is made once, and
    the programs compiled on it (keyed on the function) are shared by the command line's check,
    :func:`jaxid.study.run` and :func:`jaxid.study.study_design`."""
    from ..walker.gait import gait_initial_state

    return gait_initial_state(k_range=k_range)


def _start_function(name: str, target: type, config: StudyConfig | None = None) -> Callable | None:
    """Check the name of a start (``config=None``) or build its function ``model -> y0``."""
    if name == "gait":
        if not issubclass(target, Walker):
            raise ValueError(
                f"initial_state: 'gait' is the walker's periodic gait; {target.__name__} has none "
                "(give the initial state as a table of values or priors)"
            )
        return None if config is None else _gait_start(_walker_k_range(config))
    if ":" not in name:
        raise _neither("initial_state", name, STARTS, "start", "package.module:function")
    fn = _import_model(name, "initial_state")
    if isinstance(fn, type):
        raise TypeError(f"initial_state: {name!r} is a class; give a function model -> initial state")
    return fn


def build_start(config: StudyConfig, resolved: ResolvedModel) -> ResolvedModel:
    """``resolved`` with its start function built and ``y0`` its value at the centre of the
    priors (unchanged when the initial state is not a function of the parameters)."""
    if resolved.start is None or resolved.start_fn is not None:
        return resolved
    try:
        fn = _start_function(resolved.start, type(resolved.model), config)
    except RuntimeError as err:  # e.g. no gait anywhere in the priors' stiffness range
        raise ValueError(f"initial_state: {resolved.start!r} could not be built: {err}") from None
    try:
        y0 = np.asarray(fn(resolved.model), dtype=np.float64)
    except Exception as err:
        raise ValueError(
            f"initial_state: {resolved.start!r} failed on the model at the centre of the priors "
            f"({type(err).__name__}: {err})"
        ) from None
    if y0.shape != (len(resolved.state_names),):
        raise ValueError(
            f"initial_state: {resolved.start!r} returned shape {y0.shape}; the model's state is "
            f"{resolved.state_names}"
        )
    if not np.all(np.isfinite(y0)):
        raise ValueError(
            f"initial_state: {resolved.start!r} gives no finite initial state at the centre of the "
            f"priors ({y0}); check the priors and fixed values"
        )
    return replace(resolved, start_fn=fn, y0=y0)


def resolve_model(config: StudyConfig) -> ResolvedModel:
    """Import and instantiate the configured model and check parameters, state and channels
    against it (errors name the configuration key)."""
    target = _import_model(config.model, "model.name")
    studied = config.params.names
    if isinstance(target, type):
        options = dict(BUILTIN_MODELS.get(config.model, (None, {}))[1])
        options.update(config.model_options)
        names = target.param_names
        for n in studied:
            _check_known(f"params.{n}", target.__name__, "parameter", n, names)
        for n in config.fixed:
            _check_known(f"fixed.{n}", target.__name__, "parameter", n, names)
            if n in studied:
                lo, hi = config.params[n].support
                inside = lo <= config.fixed[n] <= hi
                raise ValueError(
                    f"fixed.{n}: {n!r} is given both a prior (params.{n}) and a fixed value"
                    + ("" if inside else f", and the prior [{lo:g}, {hi:g}] excludes {config.fixed[n]:g}")
                    + "; a parameter is either studied or fixed"
                )
        missing = [n for n in names if n not in studied and n not in config.fixed]
        if missing:
            raise ValueError(
                f"params.{missing[0]}: no prior and no fixed value for {missing} of {target.__name__}; "
                f"give each a prior in [params] or a value in [fixed]"
            )
        for n in studied:
            lo, hi = config.params[n].support
            if (n in target.positive_params and not lo > 0) or (
                n in target.nonnegative_params and not lo >= 0
            ):
                sign = "> 0" if n in target.positive_params else ">= 0"
                raise ValueError(
                    f"params.{n}: the prior's support [{lo:g}, {hi:g}] includes values that "
                    f"{target.__name__} refuses ({n} must be {sign}); "
                    "the prior excludes the model's valid range"
                )
        values = {n: (config.fixed[n] if n in config.fixed else _centre(config.params[n])) for n in names}
        try:
            model = target(**values, **options)
        except (TypeError, ValueError) as err:
            raise ValueError(f"model: {target.__name__}(...) refused the configuration: {err}") from None
        state_names = tuple(model.state_names)
        start = None
        if isinstance(config.initial_state, str):
            start = config.initial_state
            _start_function(start, target)  # checks the name; built by build_start
            y0 = np.full(len(state_names), np.nan)
            drawn = ()
        else:
            _check_keys(config.initial_state, state_names, "initial_state")
            absent = [s for s in state_names if s not in config.initial_state]
            if absent:
                raise ValueError(
                    f"initial_state.{absent[0]}: no value or prior for state(s) {absent} of "
                    f"{target.__name__} (its state is {state_names})"
                )
            y0 = np.array(
                [
                    v if isinstance(v, float) else _centre(v)
                    for v in (config.initial_state[s] for s in state_names)
                ]
            )
            drawn = tuple(s for s in state_names if not isinstance(config.initial_state[s], float))
        obs_names = tuple(model.obs_names)
        channels = obs_names if config.channels is None else tuple(config.channels)
        bad = [c for c in channels if c not in obs_names]
        if bad or not channels:
            raise ValueError(
                f"observation.channels: {target.__name__} has no channel(s) {bad or channels} "
                f"(its channels are {obs_names})"
            )
        if not config.times:
            raise ValueError("observation.times: a model needs save times")
        return ResolvedModel(
            kind="model",
            model=model,
            fn=None,
            param_index=tuple(names.index(n) for n in studied),
            channels=channels,
            channel_index=tuple(obs_names.index(c) for c in channels),
            state_names=state_names,
            y0=y0,
            drawn_states=drawn,
            obs_shape=(len(config.times), len(channels)),
            start=start,
        )
    # a function theta -> observations
    for key, given in (
        ("fixed", config.fixed),
        ("initial_state", config.initial_state),
        ("observation.times", config.times),
        ("observation.channels", config.channels),
    ):
        if given:
            raise ValueError(
                f"{key}: {config.model!r} is a function theta -> observations; it takes only the "
                "studied parameters [params], so leave out [fixed], [initial_state], times and channels"
            )
    theta = jnp.array([_centre(d) for d in config.params.dists])
    try:
        shape = jax.eval_shape(target, theta)
    except Exception as err:
        raise TypeError(
            f"model.name: {config.model!r} could not be traced with a ({len(studied)},) parameter vector "
            f"({type(err).__name__}: {err}); it must be a JAX function of theta"
        ) from None
    if not hasattr(shape, "shape") or len(shape.shape) not in (1, 2):
        raise TypeError(
            f"model.name: {config.model!r} must return one array of shape (time,) or (time, channel)"
        )
    obs_shape = tuple(shape.shape) if len(shape.shape) == 2 else (shape.shape[0], 1)
    return ResolvedModel(
        kind="function",
        model=None,
        fn=target,
        param_index=tuple(range(len(studied))),
        channels=tuple(f"y{i}" for i in range(obs_shape[1])),
        channel_index=tuple(range(obs_shape[1])),
        state_names=(),
        y0=None,
        drawn_states=(),
        obs_shape=obs_shape,
    )


# ---------------------------------------------------------------------------------------------
# reading and checking


_TOP = ("name", "seed", "records", "split", "chunk_size", "model", "params", "fixed", "initial_state",
        "observation", "estimators", "identifiability", "bayes", "design")  # fmt: skip
_DESIGN = ("targets", "draws", "max_size", "candidates")
_CANDIDATE = ("channels", "times", "noise", "relative", "initial_state", "added")
_MODEL = ("name", "options")
_OBSERVATION = ("times", "channels", "noise", "relative")


def _options(cls, given, where):
    if not isinstance(given, Mapping):
        raise TypeError(f"{where}: must be a table, got {given!r}")
    known = {f.name: f for f in fields(cls)}
    _check_keys(given, known, where)
    out = {}
    defaults = cls()
    for k, v in given.items():
        default = getattr(defaults, k)
        if isinstance(default, bool):
            if not isinstance(v, bool):
                raise TypeError(f"{where}.{k}: must be true or false, got {v!r}")
        elif isinstance(default, str):
            if not isinstance(v, str):
                raise TypeError(f"{where}.{k}: must be a string, got {v!r}")
        elif isinstance(default, int):
            v = _positive_int(v, f"{where}.{k}", low=0 if k == "records" else 1)
        else:
            v = _number(v, f"{where}.{k}")
            if not v > 0:
                raise ValueError(f"{where}.{k}: must be > 0, got {v!r}")
        out[k] = v
    return cls(**out)


def _names(value, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(c, str) for c in value):
        raise TypeError(f"{where}: must be a non-empty list of names, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{where}: names repeat: {list(value)!r}")
    return tuple(value)


def _numbers(table, where: str) -> dict[str, float]:
    if not isinstance(table, Mapping):
        raise TypeError(f"{where}: must be a table of numbers, got {table!r}")
    return {k: _number(v, f"{where}.{k}") for k, v in table.items()}


def _design(spec) -> DesignOptions:
    where = "design"
    if not isinstance(spec, Mapping):
        raise TypeError(f"{where}: must be a table, got {spec!r}")
    _check_keys(spec, _DESIGN, where)
    cands = spec.get("candidates")
    if not isinstance(cands, Mapping) or not cands:
        raise ValueError(
            f"{where}.candidates: missing; give at least one table [design.candidates.NAME] with "
            f"any of {', '.join(_CANDIDATE)}"
        )
    out = []
    for name, c in cands.items():
        w = f"{where}.candidates.{name}"
        if not isinstance(c, Mapping):
            raise TypeError(f"{w}: must be a table, got {c!r}")
        _check_keys(c, _CANDIDATE, w)
        noise = None
        if "noise" in c:
            noise = _number(c["noise"], f"{w}.noise")
            if not noise > 0:
                raise ValueError(f"{w}.noise: must be > 0, got {noise}")
        relative = c.get("relative")
        if relative is not None and not isinstance(relative, bool):
            raise TypeError(f"{w}.relative: must be true or false, got {relative!r}")
        out.append(
            DesignCandidate(
                name=str(name),
                channels=_names(c["channels"], f"{w}.channels") if "channels" in c else None,
                times=_times(c["times"], f"{w}.times") if "times" in c else None,
                noise=noise,
                relative=relative,
                initial_state=_numbers(c.get("initial_state", {}), f"{w}.initial_state"),
                added=_numbers(c.get("added", {}), f"{w}.added"),
            )
        )
    draws = spec.get("draws")
    max_size = spec.get("max_size")
    return DesignOptions(
        candidates=tuple(out),
        targets=_names(spec["targets"], f"{where}.targets") if "targets" in spec else None,
        draws=None if draws is None else _positive_int(draws, f"{where}.draws"),
        max_size=None if max_size is None else _positive_int(max_size, f"{where}.max_size"),
    )


def _check_design(config: StudyConfig, resolved: ResolvedModel) -> None:
    d = config.design
    if not isinstance(d, DesignOptions):
        raise TypeError(f"design: must be a DesignOptions, got {type(d).__name__}")
    if not d.candidates:
        raise ValueError("design.candidates: give at least one candidate")
    studied = config.params.names
    for t in d.targets or ():
        if t not in studied:
            raise ValueError(f"design.targets: {t!r} is not a studied parameter (they are {studied})")
    if d.max_size is not None and d.max_size > len(d.candidates):
        raise ValueError(f"design.max_size: {d.max_size} is more than the {len(d.candidates)} candidate(s)")
    names = [c.name for c in d.candidates]
    if len(set(names)) != len(names):
        raise ValueError(f"design.candidates: names repeat: {names}")
    if resolved.kind == "function":
        raise ValueError(
            f"design: {config.model!r} is a function theta -> observations, which has no channels, "
            "times or initial state to vary; rank your own experiments with "
            "jaxid.study.design.rank_designs instead"
        )
    model = resolved.model
    obs = tuple(model.obs_names)
    for c in d.candidates:
        w = f"design.candidates.{c.name}"
        bad = [ch for ch in c.channels or () if ch not in obs]
        if bad:
            raise ValueError(f"{w}.channels: {type(model).__name__} has no channel(s) {bad} (it has {obs})")
        if c.times is not None and c.times[0] < config.times[0]:
            raise ValueError(
                f"{w}.times: the record starts at the base's first save time {config.times[0]:g}; "
                f"save times before it ({c.times[0]:g}) are not allowed"
            )
        if c.initial_state and resolved.start is not None:
            raise ValueError(
                f"{w}.initial_state: the record starts at {resolved.start!r}, a function of the "
                "parameters; a candidate cannot set its initial state"
            )
        for s in c.initial_state:
            name = type(model).__name__
            _check_known(f"{w}.initial_state.{s}", name, "state", s, resolved.state_names, "its state is")
        for n in c.added:
            _check_known(f"{w}.added.{n}", type(model).__name__, "parameter", n, model.param_names)


def _times(spec, where: str = "observation.times") -> tuple[float, ...]:
    if isinstance(spec, Mapping):
        _check_keys(spec, ("start", "stop", "num"), where)
        for k in ("start", "stop", "num"):
            if k not in spec:
                raise ValueError(f"{where}.{k}: missing (give start, stop and num)")
        start, stop = _number(spec["start"], f"{where}.start"), _number(spec["stop"], f"{where}.stop")
        num = _positive_int(spec["num"], f"{where}.num", low=2)
        times = np.linspace(start, stop, num)
    elif isinstance(spec, (list, tuple)):
        times = np.array([_number(t, where) for t in spec])
    else:
        raise TypeError(f"{where}: give {{ start, stop, num }} or a list of save times, got {spec!r}")
    if times.size < 2 or np.any(np.diff(times) <= 0):
        raise ValueError(f"{where}: the save times must be at least two and strictly increasing")
    return tuple(float(t) for t in times)


def config_from_dict(data: Mapping, *, check: bool = True) -> StudyConfig:
    """A :class:`StudyConfig` from the parsed TOML mapping (the same keys), checked by
    :func:`validate` unless ``check=False``."""
    if not isinstance(data, Mapping):
        raise TypeError(f"study configuration: expected a table, got {type(data).__name__}")
    _check_keys(data, _TOP, "")
    if "model" not in data:
        raise ValueError("model: missing; give [model] name = 'pendulum' or 'package.module:Name'")
    model = data["model"]
    if isinstance(model, str):
        model = {"name": model}
    if not isinstance(model, Mapping):
        raise TypeError(f"model: must be a table or a name, got {model!r}")
    _check_keys(model, _MODEL, "model")
    if not isinstance(model.get("name"), str):
        raise ValueError("model.name: missing; a built-in name or 'package.module:Name'")
    options = model.get("options", {})
    if not isinstance(options, Mapping):
        raise TypeError(f"model.options: must be a table, got {options!r}")
    params = data.get("params")
    if not isinstance(params, Mapping) or not params:
        raise ValueError("params: missing; give each studied parameter a prior, e.g. m = [0.5, 2.0]")
    prior = Prior({n: parse_prior(spec, f"params.{n}") for n, spec in params.items()})
    fixed = data.get("fixed", {})
    if not isinstance(fixed, Mapping):
        raise TypeError(f"fixed: must be a table of numbers, got {fixed!r}")
    fixed = {n: _number(v, f"fixed.{n}") for n, v in fixed.items()}
    init = data.get("initial_state", {})
    if isinstance(init, str):
        initial = init
    elif not isinstance(init, Mapping):
        raise TypeError(
            f"initial_state: must be a table or the name of a start ({', '.join(STARTS)} or "
            f"'package.module:function'), got {init!r}"
        )
    else:
        initial = {
            s: (
                _number(v, f"initial_state.{s}")
                if isinstance(v, (int, float))
                else parse_prior(v, f"initial_state.{s}")
            )
            for s, v in init.items()
        }
    obs = data.get("observation", {})
    if not isinstance(obs, Mapping):
        raise TypeError(f"observation: must be a table, got {obs!r}")
    _check_keys(obs, _OBSERVATION, "observation")
    channels = obs.get("channels")
    if channels is not None:
        if isinstance(channels, str):
            channels = [channels]
        if not isinstance(channels, (list, tuple)) or not all(isinstance(c, str) for c in channels):
            raise TypeError(f"observation.channels: must be a list of channel names, got {channels!r}")
        channels = tuple(channels)
    noise = _number(obs.get("noise", 0.01), "observation.noise")
    if not noise > 0:
        raise ValueError(
            f"observation.noise: must be > 0 (the Bayes reference needs a likelihood), got {noise}"
        )
    relative = obs.get("relative", False)
    if not isinstance(relative, bool):
        raise TypeError(f"observation.relative: must be true or false, got {relative!r}")
    split = data.get("split", [0.8, 0.1, 0.1])
    if (
        not isinstance(split, (list, tuple))
        or len(split) != 3
        or any(isinstance(s, bool) or not isinstance(s, (int, float)) or s < 0 for s in split)
        or not math.isclose(sum(split), 1.0, abs_tol=1e-9)
        or not split[0] > 0
        or not split[2] > 0
    ):
        raise ValueError(f"split: three fractions summing to 1 with train and test > 0, got {split!r}")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed: must be an int, got {seed!r}")
    name = data.get("name", model["name"])
    if not isinstance(name, str):
        raise TypeError(f"name: must be a string, got {name!r}")
    config = StudyConfig(
        name=name,
        model=model["name"],
        model_options=dict(options),
        params=prior,
        fixed=fixed,
        initial_state=initial,
        times=_times(obs["times"]) if "times" in obs else (),
        channels=channels,
        noise=noise,
        relative=relative,
        records=_positive_int(data.get("records", 2000), "records", low=10),
        split=tuple(float(s) for s in split),
        chunk_size=_positive_int(data.get("chunk_size", 1024), "chunk_size"),
        seed=seed,
        estimators=_options(EstimatorOptions, data.get("estimators", {}), "estimators"),
        identifiability=_options(IdentifiabilityOptions, data.get("identifiability", {}), "identifiability"),
        bayes=_options(BayesOptions, data.get("bayes", {}), "bayes"),
        design=_design(data["design"]) if "design" in data else None,
    )
    if check:
        validate(config)
    return config


def validate(config: StudyConfig) -> ResolvedModel:
    """Every check that needs no simulation; returns the resolved model."""
    if not isinstance(config, StudyConfig):
        raise TypeError(f"config: must be a StudyConfig, got {type(config).__name__}")
    if not isinstance(config.params, Prior):
        raise TypeError(f"params: must be a jaxid.priors.Prior, got {type(config.params).__name__}")
    est = config.estimators
    if est.arch not in ("mlp", "cnn", "gru"):
        raise ValueError(f"estimators.arch: must be 'mlp', 'cnn' or 'gru', got {est.arch!r}")
    if config.bayes.method not in ("rwm", "nuts"):
        raise ValueError(f"bayes.method: must be 'rwm' or 'nuts', got {config.bayes.method!r}")
    if config.identifiability.sobol_samples < 8:
        raise ValueError(
            "identifiability.sobol_samples: must be >= 8 (a power of 2), got "
            f"{config.identifiability.sobol_samples}"
        )
    _positive_int(config.records, "records", low=10)
    n_train = (
        config.records - round(config.split[1] * config.records) - round(config.split[2] * config.records)
    )
    if est.batch_size > n_train:
        raise ValueError(
            f"estimators.batch_size: {est.batch_size} is larger than the training split ({n_train} of "
            f"{config.records} records); lower it or raise records"
        )
    resolved = resolve_model(config)
    if config.design is not None:
        _check_design(config, resolved)
    return resolved


def load_config(path: str | Path, *, check: bool = True) -> StudyConfig:
    """Read and check a study configuration from a TOML file (``tomllib``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config: no such file {str(path)!r}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config: {path} is not valid TOML ({err})") from None
    return config_from_dict(data, check=check)
