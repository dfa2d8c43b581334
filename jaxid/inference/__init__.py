"""Posterior inference: calibration of posterior samples (simulation-based calibration ranks,
their uniformity test, expected coverage of credible intervals)."""

from .calibration import (
    DEFAULT_LEVELS,
    CalibrationResult,
    calibrate,
    expected_coverage,
    gaussian_samples,
    rank_uniformity,
    sbc_ranks,
)

__all__ = [
    "DEFAULT_LEVELS",
    "CalibrationResult",
    "calibrate",
    "expected_coverage",
    "gaussian_samples",
    "rank_uniformity",
    "sbc_ranks",
]
