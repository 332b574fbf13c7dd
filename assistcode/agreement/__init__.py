"""Inter-rater agreement: pure functions over a coders x units matrix, with bootstrap and analytic uncertainty.

:func:`estimate` gives any coefficient with its interval (``low``, ``high``) and standard error:

>>> e = estimate("cohen_kappa", [[1, 1, 0, 0, 1, 0], [1, 1, 0, 1, 1, 0]], n_boot=200, seed=0)
>>> round(e.value, 3), e.low <= e.value <= e.high, e.n_units
(0.667, True, 6)
"""
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
from .summary import STATISTICS, Estimate, estimate
from .overlap import character_kappa, quote_overlap, span_f1
from .unitizing import SpanCoding, SpanError, UnitizingResult, gamma, unitizing_alpha, unitizing_intervals

__all__ = [
    "LEVELS",
    "AgreementWarning",
    "Estimate",
    "STATISTICS",
    "SpanCoding",
    "SpanError",
    "UnitizingResult",
    "brennan_prediger",
    "character_kappa",
    "cohen_kappa",
    "estimate",
    "fleiss_kappa",
    "gamma",
    "gwet_ac1",
    "krippendorff_alpha",
    "pabak",
    "percent_agreement",
    "quote_overlap",
    "scott_pi",
    "set_distance",
    "span_f1",
    "unitizing_alpha",
    "unitizing_intervals",
    "weighted_kappa",
]
