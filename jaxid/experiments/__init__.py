"""End-to-end studies behind the command line: ``jaxid gait`` (:mod:`jaxid.experiments.gait`) and
``jaxid hybrid`` (:mod:`jaxid.experiments.hybrid`, imported on demand: it builds the hybrid models)."""

from .gait import GaitStudyConfig, run_gait_study

__all__ = ["GaitStudyConfig", "run_gait_study"]
