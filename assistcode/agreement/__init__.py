"""Inter-rater agreement: pure functions over a coders x units matrix, with bootstrap and analytic uncertainty."""
from .coefficients import (
    LEVELS,
    AgreementWarning,
    brennan_prediger,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    pabak,
    percent_agreement,
    scott_pi,
    set_distance,
    weighted_kappa,
)

__all__ = [
    "LEVELS",
    "AgreementWarning",
    "brennan_prediger",
    "cohen_kappa",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "pabak",
    "percent_agreement",
    "scott_pi",
    "set_distance",
    "weighted_kappa",
]
