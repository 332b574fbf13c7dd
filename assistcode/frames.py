"""Tables in and out of the Python API: pandas DataFrames and Hugging Face ``datasets.Dataset`` objects.

Nothing here is imported at startup; pandas and ``datasets`` load when a table is converted.

>>> rows = [{"comparison": "model vs ann", "coders": ["model", "ann"], "estimates": [
...     {"statistic": "krippendorff_alpha", "value": 0.8, "low": 0.6, "high": 0.9, "level": 0.95, "n_units": 40,
...      "n_coders": 2, "convention": "coincidence matrix, Krippendorff (2011); level masi"}]}]
>>> overall_frame({"overall": rows})[["comparison", "statistic", "value", "lo", "hi"]]
     comparison           statistic  value   lo   hi
0  model vs ann  krippendorff_alpha    0.8  0.6  0.9
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    import datasets
    import pandas as pd

    from .evaluate.coding import CodingData

ESTIMATE_COLUMNS = ["statistic", "measure", "value", "lo", "hi", "ci_level", "se", "n_units", "n_coders", "note"]
OVERALL_COLUMNS = ["comparison", "coders", *ESTIMATE_COLUMNS]
PER_CODE_COLUMNS = ["code", "coders", "prevalence", *ESTIMATE_COLUMNS, "precision", "recall", "f1", "p_value",
                    "p_holm", "ceiling", "ceiling_lo", "ceiling_hi"]
PER_UNIT_COLUMNS = ["unit", "document", "coders_rated", "agree"]
"""Then one column per coder: the codes applied (``;``-separated, ``""`` seen and left uncoded, None not seen)."""


def _kind(obj: Any) -> str | None:
    """``pandas`` or ``datasets`` for a DataFrame or a Dataset (told apart without importing either), else None."""
    module = type(obj).__module__.split(".")[0]
    name = type(obj).__name__
    if module == "pandas" and name == "DataFrame":
        return "pandas"
    if module == "datasets" and name in ("Dataset", "IterableDataset"):
        return "datasets"
    return None


def is_table(obj: Any) -> bool:
    """Whether ``obj`` is a pandas DataFrame or a Hugging Face Dataset.

    >>> import pandas as pd
    >>> is_table(pd.DataFrame({"text": ["a"]})), is_table("interviews/")
    (True, False)
    """
    return _kind(obj) is not None


def as_frame(obj: Any) -> pd.DataFrame:
    """A DataFrame from a DataFrame (as is) or a ``datasets.Dataset`` (its rows, in order)."""
    kind = _kind(obj)
    if kind == "pandas":
        return obj
    if kind == "datasets":
        if type(obj).__name__ == "IterableDataset":
            import pandas as pd

            return pd.DataFrame(list(obj))
        return obj.to_pandas()
    raise TypeError(f"expected a pandas DataFrame or a datasets.Dataset, not {type(obj).__name__}")


def load_datasets() -> Any:
    """Import ``datasets`` offline (transcripts are confidential: nothing is fetched), progress bars off."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import datasets

    datasets.disable_progress_bars()
    return datasets


def to_dataset(frame: pd.DataFrame) -> datasets.Dataset:
    """A ``datasets.Dataset`` with the frame's columns and rows (the index dropped).

    >>> import pandas as pd
    >>> ds = to_dataset(pd.DataFrame({"segment_id": ["s1"], "code": ["safety"]}))
    >>> ds.num_rows, ds.column_names
    (1, ['segment_id', 'code'])
    """
    return load_datasets().Dataset.from_pandas(frame.reset_index(drop=True), preserve_index=False)


# -- evaluation results as tidy frames -----------------------------------------------------------------------------
def _measure(estimate: Mapping[str, Any]) -> str:
    """What the coefficient was computed on: code sets (MASI distance) or one label per unit ("" where unknown: an
    estimate that could not be computed says only why)."""
    convention = str(estimate.get("convention") or "")
    if not convention:
        return ""
    return "code sets (MASI)" if convention.endswith("level masi") else "single label"


def _estimate_row(estimate: Mapping[str, Any], measure: str | None = None) -> dict[str, Any]:
    """One estimate's columns; keys an estimate lacks (an undefined one carries a note) are None."""
    return {"statistic": estimate.get("statistic"), "measure": measure if measure is not None else _measure(estimate),
            "value": estimate.get("value"), "lo": estimate.get("low"), "hi": estimate.get("high"),
            "ci_level": estimate.get("level"), "se": estimate.get("se") if estimate.get("se") is not None
            else estimate.get("se_boot"), "n_units": estimate.get("n_units"), "n_coders": estimate.get("n_coders"),
            "note": estimate.get("note") or ""}


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(columns))
    for c in ("value", "lo", "hi", "ci_level", "se", "prevalence", "precision", "recall", "f1", "p_value", "p_holm",
              "ceiling", "ceiling_lo", "ceiling_hi"):
        if c in frame:
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    return frame


def result_dict(result: Any) -> dict[str, Any]:
    """The evaluation harness's result as a plain dict (it is one today; a typed result offers ``as_dict``)."""
    if isinstance(result, Mapping):
        return dict(result)
    for name in ("as_dict", "to_dict"):
        if callable(getattr(result, name, None)):
            return dict(getattr(result, name)())
    return dict(vars(result))


def overall_frame(result: Any) -> pd.DataFrame:
    """One row per comparison and statistic: ``value`` with its interval ``lo`` .. ``hi``."""
    rows = []
    for comparison in result_dict(result).get("overall") or []:
        for e in comparison.get("estimates") or []:
            rows.append({"comparison": comparison.get("comparison"), "coders": ", ".join(comparison.get("coders") or []),
                         **_estimate_row(e)})
    return _frame(rows, OVERALL_COLUMNS)


def per_code_frame(result: Any) -> pd.DataFrame:
    """One row per code, coders compared and statistic on the code's 0/1 ratings, with the code's prevalence,
    the model's precision, recall, F1 and p-values (against the reference) and the human ceiling's interval."""
    rows = []
    for r in result_dict(result).get("per_code") or []:
        ceiling = r.get("ceiling") or {}
        extra = {k: r.get(k) for k in ("precision", "recall", "f1", "p_value", "p_holm")}
        for e in r.get("estimates") or []:
            rows.append({"code": r.get("code"), "coders": ", ".join(r.get("coders") or []),
                         "prevalence": r.get("prevalence"), **_estimate_row(e, "code applied (0/1)"), **extra,
                         "ceiling": ceiling.get("value"), "ceiling_lo": ceiling.get("low"),
                         "ceiling_hi": ceiling.get("high")})
    return _frame(rows, PER_CODE_COLUMNS)


def per_unit_frame(data: CodingData | None) -> pd.DataFrame:
    """One row per unit: its document, how many coders rated it, whether they all gave the same codes, and each
    coder's codes (``;``-separated; ``""`` seen and left uncoded; None not seen)."""
    import pandas as pd

    if data is None:
        return pd.DataFrame(columns=PER_UNIT_COLUMNS)
    rows = []
    for u, unit in enumerate(data.units):
        sets = {c: data.sets[i][u] for i, c in enumerate(data.coders)}
        rated = [s for s in sets.values() if s is not None]
        rows.append({"unit": unit, "document": data.clusters[u] if data.clusters else None,
                     "coders_rated": len(rated), "agree": len(rated) >= 2 and all(s == rated[0] for s in rated),
                     **{c: None if s is None else ";".join(sorted(s)) for c, s in sets.items()}})
    return pd.DataFrame(rows, columns=PER_UNIT_COLUMNS + list(data.coders))
