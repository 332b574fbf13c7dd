"""The shape of an evaluation's result, as :func:`assistcode.evaluate.evaluate` hands it to the reports, the history
of evaluations and ``eval --json``: plain JSON-ready data, typed here so that every reader names the same keys."""
from __future__ import annotations

from typing import Any, TypedDict


class EstimateRow(TypedDict, total=False):
    """One coefficient with its interval (:meth:`assistcode.agreement.summary.Estimate.as_dict`); ``value`` None
    and a ``note`` where it cannot be computed."""

    statistic: str
    value: float | None
    low: float | None
    high: float | None
    se: float | None
    n_units: int
    n_coders: int
    convention: str
    note: str


class Comparison(TypedDict):
    """Overall agreement of a group of coders."""

    comparison: str
    coders: list[str]
    estimates: list[EstimateRow]


class PerCodeRow(TypedDict, total=False):
    """One code, for one group of coders (a run against the reference): its coefficients, and for a model its
    precision, recall and F1 and a permutation p-value (Holm-adjusted across codes)."""

    code: str
    coders: list[str]
    prevalence: float | None
    estimates: list[EstimateRow]
    ceiling: EstimateRow
    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None
    f1: float | None
    p_value: float | None
    p_holm: float | None


class EvalMeta(TypedDict, total=False):
    n_units: int
    coders: list[dict[str, Any]]
    """``name``, ``kind`` (human, model, reviewer) and ``coverage`` of each coder."""
    codes: list[str]
    reference: str | None
    options: dict[str, Any]
    clustered_by_document: bool


class EvalResult(TypedDict, total=False):
    """What :func:`assistcode.evaluate.evaluate` returns; ``since_previous`` is added by
    :func:`assistcode.evaluate.history.record`."""

    meta: EvalMeta
    overall: list[Comparison]
    per_code: list[PerCodeRow]
    place: list[dict[str, Any]]
    breakdown: list[dict[str, Any]]
    confusion: dict[str, Any] | None
    confusions: list[dict[str, Any]]
    notes: list[str]
    since_previous: dict[str, Any]


__all__ = ["Comparison", "EstimateRow", "EvalMeta", "EvalResult", "PerCodeRow"]
