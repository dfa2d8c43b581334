"""End-to-end studies behind the command line: ``jaxid gait`` (:mod:`jaxid.experiments.gait`)."""

from .gait import GaitStudyConfig, run_gait_study

__all__ = ["GaitStudyConfig", "run_gait_study"]
