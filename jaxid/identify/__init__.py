r"""Identifiability analysis: sensitivities, Fisher information, rank, Cramer-Rao bounds,
identifiable combinations and profile likelihood, for any jaxid model or any function
``theta -> observations``.

Typical use::

    exp = Experiment.from_model(model, y0, ts, noise=0.01, params=("m", "L", "b", "g"))
    report = analyze(exp)           # rank, spectrum, CRB, combinations such as g/L
    print(report)                   # Markdown summary; report.plot(), report.to_json()

Definitions follow Raue et al. (2009) for profiles and Brun et al. (2001) for collinearity; see
the module docstrings of :mod:`.fisher`, :mod:`.combinations` and :mod:`.profile`; experiment design
criteria (E- and D-optimality, Cramer-Rao bounds over prior draws) are in :mod:`.design`.
"""

from .combinations import Combinations, analyze_null_spaces, format_monomial, monomial_values
from .design import (
    DesignCriteria,
    FisherCriteria,
    criteria_over_draws,
    design_criteria,
    fisher_criteria,
    information_root,
    information_roots,
    log_det,
    smallest_eigenvalue,
    target_directions,
)
from .experiment import Experiment, value_and_jacobian
from .fisher import (
    NumericalRank,
    Spectrum,
    WhitenedJacobians,
    collinearity,
    collinearity_index,
    cramer_rao,
    fisher_information,
    numerical_rank,
    sensitivities,
    spectrum,
    whitened_jacobians,
)
from .profile import CHI2_95, Profile, profile_likelihood
from .report import IdentifiabilityReport, analyze

__all__ = [
    "CHI2_95",
    "Combinations",
    "DesignCriteria",
    "Experiment",
    "FisherCriteria",
    "IdentifiabilityReport",
    "NumericalRank",
    "Profile",
    "Spectrum",
    "WhitenedJacobians",
    "analyze",
    "analyze_null_spaces",
    "collinearity",
    "collinearity_index",
    "cramer_rao",
    "criteria_over_draws",
    "design_criteria",
    "fisher_criteria",
    "fisher_information",
    "format_monomial",
    "information_root",
    "information_roots",
    "log_det",
    "monomial_values",
    "numerical_rank",
    "profile_likelihood",
    "sensitivities",
    "smallest_eigenvalue",
    "spectrum",
    "target_directions",
    "value_and_jacobian",
    "whitened_jacobians",
]
