"""Degenerate inputs to the statistics: no rating at all, infinite values, one category."""
from __future__ import annotations

import math

import numpy as np
import pytest

from assistcode.agreement import (
    AgreementWarning, brennan_prediger, cohen_kappa, fleiss_kappa, gwet_ac1, krippendorff_alpha, pabak,
    percent_agreement, scott_pi, weighted_kappa,
)
from assistcode.agreement.summary import STATISTICS, estimate
from assistcode.errors import AgreementError

COEFFICIENTS = [percent_agreement, cohen_kappa, scott_pi, weighted_kappa, pabak, fleiss_kappa, gwet_ac1,
                brennan_prediger, krippendorff_alpha]
NO_RATINGS = [np.full((2, 5), np.nan), np.full((2, 5), np.nan, dtype=np.float32), [[None] * 4, [None] * 4],
              [[float("nan")] * 3, [None] * 3]]


@pytest.mark.parametrize("data", NO_RATINGS, ids=["float64", "float32", "None", "mixed"])
@pytest.mark.parametrize("fn", COEFFICIENTS, ids=lambda f: f.__name__)
def test_no_rating_at_all_is_nan_with_a_warning(fn, data) -> None:  # noqa: ANN001
    with pytest.warns(AgreementWarning, match=rf"{fn.__name__} is undefined here: every rating is missing"):
        assert math.isnan(fn(data))


def test_no_rating_sets_are_nan_with_a_warning() -> None:
    with pytest.warns(AgreementWarning, match="every rating is missing"):
        assert math.isnan(krippendorff_alpha([[None, None], [None, None]], "masi"))


@pytest.mark.parametrize("statistic", STATISTICS)
def test_estimate_on_no_ratings_warns_and_says_why(statistic: str) -> None:
    with pytest.warns(AgreementWarning, match="every rating is missing"):
        e = estimate(statistic, np.full((2, 6), np.nan), n_boot=50)
    assert math.isnan(e.value) and math.isnan(e.low) and e.n_units == 0
    assert e.note == "undefined: every rating is missing (None or NaN)"
    assert e.as_dict()["value"] is None


@pytest.mark.parametrize("bad", [math.inf, -math.inf])
def test_infinity_is_not_a_category(bad: float) -> None:
    for data in (np.array([[1.0, bad, 2.0], [1.0, 2.0, 2.0]]), [[1, bad, 2], [1, 2, 2]]):
        for fn in (cohen_kappa, fleiss_kappa, krippendorff_alpha):
            with pytest.raises(AgreementError, match=r"value -?inf is not a category: numeric ratings must be finite"):
                fn(data)
    with pytest.raises(AgreementError, match="value inf is not a category"):
        cohen_kappa([[1, 2], [1, 2]], categories=[1, 2, math.inf])


def test_undefined_notes_name_the_real_reason() -> None:
    """One category: the kappas' chance agreement is 1; alpha's expected disagreement is 0 (alpha has no chance
    agreement, so its note must not say so); percent agreement and PABAK stay defined."""
    same = [[1, 1, 1, 1], [1, 1, 1, 1]]
    for statistic in ("cohen_kappa", "fleiss_kappa", "scott_pi"):
        with pytest.warns(AgreementWarning, match="expected .chance. agreement is 1"):
            e = estimate(statistic, same, n_boot=20)
        assert math.isnan(e.value) and "single category" in e.note
    with pytest.warns(AgreementWarning, match="only one category"):
        assert "q = 1" in estimate("gwet_ac1", same, n_boot=20).note
    with pytest.warns(AgreementWarning, match="expected disagreement is 0"):
        e = estimate("krippendorff_alpha", same, n_boot=20)
    assert e.note == "undefined: expected disagreement is 0: every pairable value is the same"
    assert "agreement is 1" not in e.note
    for statistic in ("percent_agreement", "pabak"):
        e = estimate(statistic, same, n_boot=20)
        assert e.value == 1.0 and e.note == ""
    interval = [[1.5, 1.5, 1.5], [1.5, 1.5, None]]
    with pytest.warns(AgreementWarning, match="every pairable value is the same"):
        assert "every pairable value is the same" in estimate("krippendorff_alpha", interval, level="interval").note


def test_some_ratings_but_no_pairable_unit_is_still_an_error() -> None:
    with pytest.raises(AgreementError, match="no unit has ratings from two or more coders"):
        fleiss_kappa([[1, None], [None, 2]])
