"""``assistcode agree``: every statistic, with its interval, for a file of codes and no project.

A file's codes become *variables* (one categorical value per coder and unit: a single-label code, or a group of
one-hot columns such as ``is_abuse.*`` read as one ordinal variable) and *labels* (binary: applied or not, per
code of a multi-label scheme, optionally defined only where a condition holds, e.g. only where the coder judged the
turn abusive).
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from .coding import CodingData
from .harness import EvalOptions, estimate_row

ALL_STATISTICS = ("percent_agreement", "fleiss_kappa", "gwet_ac1", "brennan_prediger", "krippendorff_alpha")
TWO_CODER = ("cohen_kappa", "scott_pi")


@dataclass
class Variable:
    """One-hot codes read as one categorical variable: each matching code's value is its text after ``prefix``."""

    name: str
    pattern: str
    level: str = "nominal"


@dataclass
class Condition:
    """Codes matching ``pattern`` are defined only where the coder applied one of ``when`` (else missing)."""

    pattern: str
    when: tuple[str, ...]


@dataclass
class AgreeOptions(EvalOptions):
    variables: list[Variable] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    level: str = "nominal"
    """Level for the single variable of a single-label file."""
    categories: Sequence[Any] | None = None


def _value(code: str, pattern: str) -> Any:
    prefix = pattern.split("*", 1)[0]
    text = code[len(prefix):] if code.startswith(prefix) else code
    try:
        number = float(text)
        return int(number) if number.is_integer() else number
    except ValueError:
        return text


def _numeric_if_possible(matrix: list[list[Any]]) -> tuple[list[list[Any]], bool]:
    """Codes that all read as numbers become numbers (for ordinal, interval, ratio and weighted kappa); a unit seen
    with no code then counts as not rated."""
    values = {v for row in matrix for v in row if v is not None and v != "(none)"}
    parsed = {v: _value(str(v), "") for v in values}
    if not values or not all(isinstance(p, (int, float)) for p in parsed.values()):
        return matrix, False
    return [[None if v is None or v == "(none)" else parsed[v] for v in row] for row in matrix], True


def _variable_matrix(data: CodingData, var: Variable) -> tuple[list[list[Any]], list[str]]:
    members = [c for c in data.codes if fnmatch.fnmatchcase(c, var.pattern)]
    if not members:
        raise InputError(f"variable {var.name!r}: no code matches {var.pattern!r}", field="--variable",
                         hint="codes: " + ", ".join(data.codes[:20]))
    matrix, problems = [], []
    for coder, row in zip(data.coders, data.sets):
        out = []
        for u, s in enumerate(row):
            hits = [c for c in members if s is not None and c in s]
            if s is None or not hits:
                out.append(None)
            elif len(hits) > 1:
                problems.append(f"{coder} gave unit {data.units[u][:40]!r} {len(hits)} values of {var.name}")
                out.append(None)
            else:
                out.append(_value(hits[0], var.pattern))
        matrix.append(out)
    return matrix, problems


def _label_matrix(data: CodingData, code: str, conditions: Sequence[Condition]) -> np.ndarray:
    binary = data.binary(code)
    for cond in conditions:
        if fnmatch.fnmatchcase(code, cond.pattern):
            for i, row in enumerate(data.sets):
                for u, s in enumerate(row):
                    if s is not None and not any(w in s for w in cond.when):
                        binary[i, u] = np.nan
    return binary


def _statistics(matrix: Any, n_coders: int, level: str, numeric: bool, binary: bool, opts: AgreeOptions,
                categories: Sequence[Any] | None) -> list[dict[str, Any]]:
    out = []
    for name in ALL_STATISTICS:
        kw: dict[str, Any] = {"categories": categories}
        if name == "krippendorff_alpha":
            kw["level"] = level
        out.append(estimate_row(name, matrix, opts, None, **kw))
    if n_coders == 2:
        for name in TWO_CODER:
            out.append(estimate_row(name, matrix, opts, None, categories=categories))
        if numeric and not binary:
            for w in ("linear", "quadratic"):
                e = estimate_row("weighted_kappa", matrix, opts, None, weights=w, categories=categories)
                e["statistic"] = f"weighted_kappa ({w})"
                out.append(e)
        if binary:
            out.append(estimate_row("pabak", matrix, opts, None))
    return out


def agree(data: CodingData, opts: AgreeOptions | None = None) -> dict[str, Any]:
    """Agreement of every kind the data supports, each with its bootstrap interval."""
    opts = opts or AgreeOptions()
    if len(data.coders) < 2:
        raise InputError(f"only {len(data.coders)} coder: agreement needs two or more")
    notes: list[str] = []
    variables: list[dict[str, Any]] = []
    grouped: set[str] = set()
    specs = list(opts.variables)
    single = data.single_label() if not specs else None
    if single is not None and not opts.conditions:
        specs = []
        matrix, numeric = _numeric_if_possible(single)
        variables.append({"variable": "code", "level": opts.level, "values": sorted({v for r in matrix for v in r if v is not None}, key=str),
                          "estimates": _statistics(matrix, len(data.coders), opts.level, numeric, False, opts, opts.categories)})
        grouped.update(data.codes)
    for var in specs:
        matrix, problems = _variable_matrix(data, var)
        notes.extend(problems[:10])
        if len(problems) > 10:
            notes.append(f"... and {len(problems) - 10} more units with several values of {var.name}")
        grouped.update(c for c in data.codes if fnmatch.fnmatchcase(c, var.pattern))
        values = sorted({v for r in matrix for v in r if v is not None}, key=lambda v: (isinstance(v, str), v))
        numeric = all(isinstance(v, (int, float)) for v in values)
        variables.append({"variable": var.name, "level": var.level, "values": values,
                          "estimates": _statistics(matrix, len(data.coders), var.level, numeric, False, opts, None)})
    labels = []
    for code in data.codes:
        if code in grouped:
            continue
        binary = _label_matrix(data, code, opts.conditions)
        rated = binary[~np.isnan(binary)]
        per_coder = (~np.isnan(binary)).sum(0)
        labels.append({"label": code, "prevalence": float(rated.mean()) if rated.size else None,
                       "units_defined": int((per_coder >= 2).sum()),
                       "estimates": _statistics(binary, len(data.coders), "nominal", True, True, opts, [0.0, 1.0])})
    multi = None
    label_codes = [c for c in data.codes if c not in grouped]
    if label_codes and single is None:
        keep = set(label_codes)
        sets = [[None if s is None else s & keep for s in row] for row in data.sets]
        multi = estimate_row("krippendorff_alpha", sets, opts, None, level="masi")
    coders_per_unit = np.array([[s is not None for s in row] for row in data.sets]).sum(0)
    return {
        "meta": {"n_units": len(data.units), "n_coders": len(data.coders), "coders": list(data.coders),
                 "coders_per_unit": {int(k): int(v) for k, v in zip(*np.unique(coders_per_unit, return_counts=True))},
                 "options": {"n_boot": opts.n_boot, "ci_level": opts.ci_level, "ci_method": opts.ci_method,
                             "seed": opts.seed}},
        "variables": variables,
        "labels": labels,
        "code_sets": multi,
        "notes": notes,
    }


def parse_variable(text: str) -> Variable:
    """``NAME=GLOB[:LEVEL]``, e.g. ``severity=is_abuse.*:ordinal``."""
    m = re.fullmatch(r"\s*([^=]+?)\s*=\s*([^:]+?)\s*(?::\s*(\w+))?\s*", text)
    if not m:
        raise InputError(f"expected NAME=GLOB[:LEVEL], got {text!r}", field="--variable")
    return Variable(m.group(1), m.group(2), m.group(3) or "nominal")


def parse_condition(text: str) -> Condition:
    """``GLOB:CODE|CODE...``, e.g. ``type.*:is_abuse.-1|is_abuse.-2|is_abuse.-3``."""
    if ":" not in text:
        raise InputError(f"expected GLOB:CODE|CODE..., got {text!r}", field="--defined-if")
    pattern, when = text.split(":", 1)
    codes = tuple(c.strip() for c in when.split("|") if c.strip())
    if not codes:
        raise InputError(f"no condition codes in {text!r}", field="--defined-if")
    return Condition(pattern.strip(), codes)
