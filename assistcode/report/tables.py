"""Results (from :func:`assistcode.evaluate.evaluate` or :func:`assistcode.evaluate.agree.agree`) as plain tables
that every renderer (terminal, Markdown, HTML) shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..agreement.summary import CONVENTIONS
from ..evaluate.result import EstimateRow, EvalResult, PerCodeRow


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


SHORT = {"percent_agreement": "% agree", "fleiss_kappa": "Fleiss k", "gwet_ac1": "AC1", "brennan_prediger": "BP",
         "krippendorff_alpha": "alpha", "cohen_kappa": "Cohen k", "scott_pi": "Scott pi", "pabak": "PABAK"}


def short(name: str) -> str:
    return SHORT.get(name, name)


def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def interval(e: EstimateRow) -> str:
    if e.get("value") is None:
        return e.get("note") or "undefined"
    if e.get("low") is None:
        return num(e["value"])
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _conventions(estimates: list[EstimateRow]) -> list[str]:
    seen = {}
    for e in estimates:
        name = e["statistic"].split(" ")[0]
        seen.setdefault(name, e.get("convention") or CONVENTIONS.get(name, ""))
    first = next((e for e in estimates if e.get("n_boot")), None)
    ci = ""
    if first:
        ci = (f"Intervals: {first['level']:.0%} {first['ci_method'].upper() if first['ci_method'] == 'bca' else first['ci_method']} "
              f"bootstrap, {first['n_boot']} resamples{' of documents' if first.get('clustered') else ' of units'}.")
    return [f"{k}: {v}" for k, v in seen.items()] + ([ci] if ci else [])


def eval_tables(result: EvalResult) -> list[Table]:
    meta = result["meta"]
    tables = []
    coders = Table("Coders", ["coder", "kind", "coverage"],
                   [[c["name"], c["kind"], pct(c["coverage"])] for c in meta["coders"]])
    tables.append(coders)
    rows, all_estimates = [], []
    for comp in result["overall"]:
        for e in comp["estimates"]:
            level = (e.get("convention") or "").split("level ")[-1]  # an undefined estimate has no convention
            rows.append([comp["comparison"], e["statistic"] + (f" ({level})" if e["statistic"] == "krippendorff_alpha" and level else ""),
                         interval(e), num(e.get("n_units")), num(e.get("n_coders"))])
            all_estimates.append(e)
    tables.append(Table("Overall agreement", ["comparison", "statistic", "value [95% CI]", "n units", "n coders"], rows,
                        _conventions(all_estimates)))
    for group in per_code_groups(result):
        tables.append(_per_code_table(group))
    if result["place"]:
        tables.append(Table("The model's place among the humans (mean pairwise MASI alpha with the humans)",
                            ["coder", "kind", "mean alpha"],
                            [[p["coder"], p["kind"], num(p["mean_alpha_with_humans"])] for p in result["place"]]))
    if result["breakdown"]:
        tables.append(Table("By document metadata (MASI alpha)", ["field", "value", "coders", "alpha [95% CI]", "n units"],
                            [[b["field"], b["value"], " vs ".join(b["coders"]), interval(b["estimate"]), num(b["n_units"])]
                             for b in result["breakdown"]]))
    for conf in confusions(result):
        tables.append(Table(f"Co-occurrence: {conf['rows']} (rows) x {conf['cols']} (columns)",
                            ["", *conf["labels"]], [[label, *map(str, row)] for label, row in zip(conf["labels"], conf["matrix"])]))
    from .calibration import calibration_tables  # Brier, ECE per run and per code

    tables.extend(calibration_tables(result))
    return tables


def per_code_groups(result: EvalResult) -> list[list[PerCodeRow]]:
    """Per-code rows grouped by the coders they compare (one group per run set against the reference), in order."""
    groups: dict[tuple[str, ...], list[PerCodeRow]] = {}
    for r in result.get("per_code") or []:
        groups.setdefault(tuple(r["coders"]), []).append(r)
    return list(groups.values())


def comparison_name(coders: list[str]) -> str:
    """What a per-code group compares: ``run vs reference``, or how many coders."""
    return " vs ".join(coders) if len(coders) == 2 else f"{len(coders)} coders: " + ", ".join(coders)


def confusions(result: EvalResult) -> list[dict[str, Any]]:
    """Every co-occurrence matrix of a result: one per run compared (older results hold one, ``confusion``)."""
    if result.get("confusions"):
        return list(result["confusions"])
    return [result["confusion"]] if result.get("confusion") else []


def _per_code_table(group: list[dict[str, Any]]) -> Table:
    first = group[0]
    has_prf = "precision" in first
    stat_names = [e["statistic"] for e in first["estimates"]]
    columns = ["code", "prevalence", *map(short, stat_names)]
    if has_prf:
        columns += ["precision", "recall", "F1", "p (Holm)"]
    if "ceiling" in first:
        columns.append("human ceiling (alpha)")
    columns.append("n units")
    rows, ests = [], []
    for r in group:
        row = [r["code"], pct(r["prevalence"]), *[interval(e) for e in r["estimates"]]]
        ests.extend(r["estimates"])
        if has_prf:
            row += [num(r.get("precision")), num(r.get("recall")), num(r.get("f1")), num(r.get("p_holm"), 4)]
        if "ceiling" in first:
            row.append(interval(r["ceiling"]) if "ceiling" in r else "-")
        row.append(num(r["estimates"][0].get("n_units")))
        rows.append(row)
    notes = _conventions(ests)
    if has_prf:
        notes.append("p: one-sided exact permutation test that the model beats chance on the code, Holm-adjusted across codes.")
    return Table(f"Per code ({comparison_name(first['coders'])})", columns, rows, notes)


def agree_tables(result: dict[str, Any]) -> list[Table]:
    meta = result["meta"]
    tables = [Table("Data", ["units", "coders", "coders per unit"],
                    [[str(meta["n_units"]), str(meta["n_coders"]),
                      ", ".join(f"{k}: {v}" for k, v in meta["coders_per_unit"].items())]])]
    for v in result["variables"]:
        rows = [[e["statistic"], interval(e), num(e.get("se")), e.get("se_method") or "-", num(e.get("n_units")), num(e.get("n_coders"))]
                for e in v["estimates"]]
        tables.append(Table(f"Variable {v['variable']} ({v['level']}; values {', '.join(map(str, v['values']))})",
                            ["statistic", "value [95% CI]", "analytic SE", "SE formula", "n units", "n coders"], rows,
                            _conventions(v["estimates"])))
    if result["labels"]:
        names = [e["statistic"] for e in result["labels"][0]["estimates"]]
        rows, ests = [], []
        for lab in result["labels"]:
            rows.append([lab["label"], pct(lab["prevalence"]), str(lab["units_defined"]), *[interval(e) for e in lab["estimates"]]])
            ests.extend(lab["estimates"])
        tables.append(Table("Labels (binary: applied or not)", ["label", "prevalence", "n units", *map(short, names)], rows,
                            _conventions(ests)))
    if result.get("code_sets"):
        e = result["code_sets"]
        tables.append(Table("Whole code sets", ["statistic", "value [95% CI]", "n units", "n coders"],
                            [["krippendorff_alpha (masi)", interval(e), num(e.get("n_units")), num(e.get("n_coders"))]],
                            _conventions([e])))
    return tables
