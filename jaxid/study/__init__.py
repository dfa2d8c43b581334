"""The identifiability study for any model: a configuration (:class:`StudyConfig`, TOML via
:func:`load_config`), the pipeline (:func:`run`: data, identifiability across the prior, learned
estimators, the Bayes limit, one report), presets shipped as TOML files (:func:`preset_names`,
:func:`load_preset`) and experiment design (:mod:`jaxid.study.design`). Its steps are public for
studies that add their own (``jaxid gait`` does): :func:`simulate_records`,
:func:`identifiability_at`, :func:`train_estimator`."""

from importlib import resources
from importlib.resources.abc import Traversable

from . import design, report
from .config import (
    BUILTIN_MODELS,
    STARTS,
    BayesOptions,
    DesignCandidate,
    DesignOptions,
    EstimatorOptions,
    IdentifiabilityOptions,
    StudyConfig,
    config_from_dict,
    load_config,
    parse_prior,
    resolve_model,
)
from .design import DesignRanking, DesignRow, rank_designs, study_design
from .estimators import train_estimator
from .pipeline import (
    IdentifiabilityMap,
    StudyResult,
    identifiability_at,
    identifiability_map,
    make_observer,
    run,
    simulate_records,
)
from .records import StudyRecords


def preset_names() -> tuple[str, ...]:
    """The presets shipped with jaxid (``jaxid/study/presets/*.toml``)."""
    files = resources.files(__name__).joinpath("presets").iterdir()
    return tuple(sorted(f.name[:-5] for f in files if f.name.endswith(".toml")))


def preset_path(name: str) -> Traversable:
    """The TOML file of a preset; a ``ValueError`` names the known presets."""
    if name not in preset_names():
        raise ValueError(f"preset {name!r} not found; the presets are {', '.join(preset_names())}")
    return resources.files(__name__).joinpath("presets", f"{name}.toml")


def load_preset(name: str, *, check: bool = True) -> StudyConfig:
    """A preset's :class:`StudyConfig`."""
    with resources.as_file(preset_path(name)) as path:
        return load_config(path, check=check)


__all__ = [
    "BUILTIN_MODELS",
    "STARTS",
    "BayesOptions",
    "DesignCandidate",
    "DesignOptions",
    "DesignRanking",
    "DesignRow",
    "EstimatorOptions",
    "IdentifiabilityMap",
    "IdentifiabilityOptions",
    "StudyConfig",
    "StudyRecords",
    "StudyResult",
    "config_from_dict",
    "design",
    "identifiability_at",
    "identifiability_map",
    "load_config",
    "load_preset",
    "make_observer",
    "parse_prior",
    "preset_names",
    "preset_path",
    "rank_designs",
    "report",
    "resolve_model",
    "run",
    "simulate_records",
    "study_design",
    "train_estimator",
]
