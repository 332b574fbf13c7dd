"""Coercing user data into an integer-coded coders x units matrix.

Every statistic starts here: ``codes[i, u]`` is the index of coder ``i``'s value for unit ``u`` in
``categories``, or -1 where the coder did not rate the unit.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import AgreementError

MISSING = -1


class NoRatings(AgreementError):
    """Every value is missing: there is nothing to compute a coefficient from (the coefficients return NaN and
    warn; other callers see a one-line error)."""

    def __init__(self) -> None:
        super().__init__("every rating is missing (None or NaN): there is nothing to compare",
                         hint="check that the right columns were read")


def _refuse_non_finite(values: np.ndarray) -> None:
    """``inf`` is not a category: a rating is a finite number, a string, or missing (None / NaN)."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise AgreementError(f"value {float(values[bad][0])} is not a category: numeric ratings must be finite",
                             hint="use None or NaN for 'not rated'")


@dataclass(frozen=True)
class Ratings:
    """An integer-coded coders x units matrix and the categories its codes index."""

    codes: np.ndarray
    """int64, shape (coders, units), -1 = missing."""
    categories: tuple[Any, ...]
    numeric: bool
    """True when every category is a number (interval, ratio and weighted statistics need this)."""
    complete: bool = False
    """True when no rating is missing (lets two-coder statistics skip their masks)."""

    @property
    def n_coders(self) -> int:
        return self.codes.shape[0]

    @property
    def n_units(self) -> int:
        return self.codes.shape[1]

    @property
    def k(self) -> int:
        return len(self.categories)

    def counts(self) -> np.ndarray:
        """units x categories: how many coders gave each value to each unit."""
        c, u = self.codes.shape
        k = self.k
        flat = self.codes + np.arange(u)[None, :] * k
        valid = self.codes >= 0
        return np.bincount(flat[valid], minlength=u * k).reshape(u, k).astype(np.float64)

    def values(self) -> np.ndarray:
        """The numeric value of each category (for interval, ratio and weights)."""
        if not self.numeric:
            raise AgreementError("this statistic needs numeric values; the data holds text categories",
                                 hint="recode the categories as numbers, or use a nominal statistic")
        return np.asarray(self.categories, dtype=np.float64)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return value is pd.NA or value is pd.NaT


def _rows(data: Any) -> list[Any]:
    if isinstance(data, pd.DataFrame):
        return list(data.to_numpy(dtype=object))
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise AgreementError(f"expected a coders x units matrix, got an array of {data.ndim} dimension(s)")
        return list(data)
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        raise AgreementError("expected a coders x units matrix: a sequence of equal-length sequences")
    return list(data)


def _shape_checks(rows: list[Any]) -> int:
    if len(rows) < 2:
        raise AgreementError(f"agreement needs at least two coders; got {len(rows)}",
                             hint="data is coders x units: one row per coder")
    lengths = [len(r) for r in rows]
    if len(set(lengths)) != 1:
        bad = next(i for i, n in enumerate(lengths) if n != lengths[0])
        raise AgreementError(f"ragged rows: coder 0 rated {lengths[0]} units, coder {bad} rated {lengths[bad]}",
                             hint="pad with None where a coder did not rate a unit")
    if lengths[0] == 0:
        raise AgreementError("no units")
    return lengths[0]


def _check_pairable(codes: np.ndarray) -> None:
    if not (codes >= 0).any():
        raise NoRatings()
    if not ((codes >= 0).sum(axis=0) >= 2).any():
        raise AgreementError("no unit has ratings from two or more coders, so there is nothing to compare")


def _coerce_small_ints(data: np.ndarray) -> Ratings | None:
    """Integer matrices with a modest range: a lookup table instead of a sort (linear time)."""
    low, high = int(data.min()), int(data.max())
    if high - low > 10_000_000:
        return None
    shifted = data - low if low != 0 else data
    present = np.bincount(shifted.ravel(), minlength=high - low + 1) > 0
    values = np.flatnonzero(present)
    if len(values) == len(present):  # categories are every integer from low to high: the shift is the code
        codes = shifted.astype(np.int64, copy=False)
    else:
        lut = np.full(high - low + 1, MISSING, dtype=np.int64)
        lut[values] = np.arange(len(values))
        codes = lut[shifted]
    # integers cannot be missing, and there are two or more coders: every unit is pairable
    return Ratings(codes, tuple(int(v) + low for v in values), True, complete=True)


def _coerce_numeric(data: np.ndarray, categories: Sequence[Any] | None) -> Ratings:
    """The fast path for a numeric NumPy matrix (NaN = missing)."""
    _shape_checks(list(data))
    if categories is None and data.dtype.kind in "iu":
        fast = _coerce_small_ints(data)
        if fast is not None:
            return fast
    arr = data.astype(np.float64, copy=False)
    missing = np.isnan(arr)
    present = arr[~missing]
    _refuse_non_finite(present)
    if not present.size:
        raise NoRatings()
    if categories is None:
        lookup = np.unique(present)
        cats: list[Any] = lookup.tolist()
        perm = np.arange(len(lookup))
    else:
        cats = _categories([], categories, numeric=True)
        declared = np.asarray(cats, dtype=np.float64)
        perm = np.argsort(declared, kind="stable")
        lookup = declared[perm]
    idx = np.searchsorted(lookup, present).clip(0, max(len(lookup) - 1, 0))
    if len(lookup) == 0 or not np.array_equal(lookup[idx], present):
        bad = present[lookup[idx] != present][0] if len(lookup) else present[0]
        raise AgreementError(f"value {bad!r} is not among the declared categories", field="categories")
    codes = np.full(arr.shape, MISSING, dtype=np.int64)
    codes[~missing] = perm[idx]
    _check_pairable(codes)
    if data.dtype.kind in "iub":
        cats = [int(c) if float(c).is_integer() else c for c in cats]
    return Ratings(codes, tuple(cats), True)


def coerce(data: Any, categories: Sequence[Any] | None = None) -> Ratings:
    """Coders x units data (lists, tuples, a NumPy array, a DataFrame with a row per coder) -> :class:`Ratings`.

    ``None`` and NaN mean "not rated". Values are ints, floats or strings, one kind throughout. ``categories``, when
    given, fixes the set and order of categories (values outside it are an error).
    """
    if isinstance(data, np.ndarray) and data.ndim == 2 and data.dtype.kind in "iufb":
        return _coerce_numeric(data, categories)
    rows = _rows(data)
    n_units = _shape_checks(rows)
    obj = np.empty((len(rows), n_units), dtype=object)
    for i, r in enumerate(rows):
        obj[i, :] = list(r)
    missing = pd.isna(obj) if obj.size else np.zeros(obj.shape, bool)
    present = obj[~missing]
    kinds = set()
    for value in set(map(type, present)):
        if issubclass(value, (bool, np.bool_)):
            kinds.add("number")
        elif issubclass(value, (numbers.Number,)):
            kinds.add("number")
        elif issubclass(value, str):
            kinds.add("text")
        else:
            raise AgreementError(f"unsupported value type {value.__name__}",
                                 hint="values are ints, floats or strings (sets only for masi/jaccard)")
    if len(kinds) > 1:
        for u in range(n_units):
            col = [type(v) for v in obj[:, u] if not _is_missing(v)]
            if any(issubclass(t, str) for t in col) and any(not issubclass(t, str) for t in col):
                raise AgreementError(f"mixed types in unit {u}: numbers and text", field=f"unit {u}",
                                     hint="use one kind of value throughout")
        raise AgreementError("mixed types: some units hold numbers, others text", hint="use one kind of value throughout")
    numeric = kinds == {"number"}
    if not present.size:
        raise NoRatings()
    if numeric:
        _refuse_non_finite(present.astype(np.float64))
    observed = sorted(set(present.tolist()))
    cats = _categories(observed, categories, numeric)
    order = {v: i for i, v in enumerate(cats)}
    codes = np.full(obj.shape, MISSING, dtype=np.int64)
    try:
        codes[~missing] = [order[v] for v in present]
    except KeyError as exc:
        raise AgreementError(f"value {exc.args[0]!r} is not among the declared categories", field="categories") from None
    _check_pairable(codes)
    return Ratings(codes, tuple(cats), numeric)


def _categories(observed: list[Any], declared: Sequence[Any] | None, numeric: bool) -> list[Any]:
    if declared is None:
        return observed
    declared = list(declared)
    numbers_declared = [c for c in declared if isinstance(c, numbers.Real)]
    if numbers_declared:
        _refuse_non_finite(np.asarray(numbers_declared, dtype=np.float64))
    if len(set(declared)) != len(declared):
        raise AgreementError("declared categories repeat a value", field="categories")
    missing = set(observed) - set(declared)
    if missing:
        raise AgreementError(f"value {sorted(missing, key=str)[0]!r} is not among the declared categories", field="categories")
    return declared


def coerce_sets(data: Any) -> tuple[np.ndarray, list[frozenset]]:
    """Set-valued cells (set, frozenset, or a list read as a set) -> (codes, distinct sets). The empty set means
    "coded, no code applies" and is a category, not missing."""
    rows = _rows(data)
    n_units = _shape_checks(rows)
    fast = _frozensets(rows, n_units)
    if fast is not None:
        return fast
    index: dict[frozenset, int] = {}
    checked: dict[frozenset, int] = {}  # frozenset cells already checked: one dict lookup per repeated cell
    codes = np.full((len(rows), n_units), MISSING, dtype=np.int64)
    for i, row in enumerate(rows):
        out = []
        for u, cell in enumerate(row):
            if cell is None:
                out.append(MISSING)
                continue
            known = checked.get(cell) if type(cell) is frozenset else None
            if known is not None:
                out.append(known)
                continue
            if _is_missing(cell):
                out.append(MISSING)
                continue
            if isinstance(cell, (set, frozenset, list, tuple)):
                members = frozenset(cell)
            else:
                raise AgreementError(f"coder {i}, unit {u}: expected a set of codes, got {type(cell).__name__}",
                                     hint="each cell is a set (or list) of codes; None for not rated")
            if any(_is_missing(m) for m in members):
                raise AgreementError(f"coder {i}, unit {u}: a set holds a missing value (None or NaN)",
                                     hint="the empty set means no code applies; None means not rated")
            code = index.setdefault(members, len(index))
            if type(cell) is frozenset:
                checked[cell] = code
            out.append(code)
        codes[i, :] = out
    _check_pairable(codes)
    return codes, list(index)


def _frozensets(rows: list[Any], n_units: int) -> tuple[np.ndarray, list[frozenset]] | None:
    """Cells that are all frozensets or missing, numbered by hashing in pandas (first seen first, as the loop of
    :func:`coerce_sets` numbers them); ``None`` where any cell is something else, for that loop to check."""
    cells = np.empty(len(rows) * n_units, dtype=object)
    for i, row in enumerate(rows):
        cells[i * n_units:(i + 1) * n_units] = list(row)
    try:
        labels, uniques = pd.factorize(cells, use_na_sentinel=True)
    except TypeError:  # unhashable cells (lists, sets)
        return None
    uniques = list(uniques)
    if any(type(u) is not frozenset or any(_is_missing(m) for m in u) for u in uniques):
        return None
    codes = labels.astype(np.int64).reshape(len(rows), n_units)
    _check_pairable(codes)
    return codes, uniques
