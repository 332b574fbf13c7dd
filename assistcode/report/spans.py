"""Reports of span agreement (``eval --spans``): terminal and Markdown tables, JSON, and one HTML file with a strip
per document showing where each coder's spans fall."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .html import esc, forest_svg
from .tables import Table, comparison_name, interval, num, pct, per_code_groups

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _conventions(estimates: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, str] = {}
    for e in estimates:
        seen.setdefault(e["statistic"], e.get("convention", ""))
    first = next((e for e in estimates if e.get("n_boot")), None)
    out = [f"{k}: {v}" for k, v in seen.items()]
    if first:
        out.append(f"Intervals: {first['level']:.0%} percentile bootstrap, {first['n_boot']} resamples of documents.")
    return out


def span_tables(result: dict[str, Any]) -> list[Table]:
    """The tables every renderer shares: coders, overall unitizing agreement, per code, place among the humans."""
    meta = result["meta"]
    tables = [Table(f"Span coders ({meta['n_documents']} documents, {meta['n_spans']} spans)",
                    ["coder", "kind", "share of their documents compared"],
                    [[c["name"], c["kind"], pct(c["coverage"])] for c in meta["coders"]])]
    rows, ests = [], []
    for comp in result["overall"]:
        row = [comp["comparison"]]
        for e in comp["estimates"]:
            row.append(interval(e))
            ests.append(e)
        row.append(num(comp["estimates"][0].get("n_units")))
        rows.append(row)
    tables.append(Table("Overall span agreement", ["comparison", "u-alpha", "c|u-alpha", "Cu-alpha", "n documents"],
                        rows, _conventions(ests)))
    for group in per_code_groups(result):
        first = group[0]
        has_f1 = "f1" in first
        columns = ["code", "share coded", "|u-alpha [95% CI]"]
        if has_f1:
            columns += [f"span P (IoU {first['iou']:g})", "span R", "span F1"]
        if "ceiling" in first:
            columns.append("human ceiling |u-alpha")
        body, gests = [], []
        for r in group:
            row = [r["code"], pct(r["prevalence"]), interval(r["estimates"][0])]
            gests.extend(r["estimates"])
            if has_f1:
                row += [num(r.get("precision")), num(r.get("recall")), num(r.get("f1"))]
            if "ceiling" in first:
                row.append(interval(r["ceiling"]) if "ceiling" in r else "-")
            body.append(row)
        tables.append(Table(f"Per code, spans ({comparison_name(first['coders'])})", columns, body, _conventions(gests)))
    if result.get("place"):
        tables.append(Table("The model's place among the humans (mean pairwise u-alpha with the humans)",
                            ["coder", "kind", "mean u-alpha"],
                            [[p["coder"], p["kind"], num(p["mean_alpha_with_humans"])] for p in result["place"]]))
    return tables


def strip_svg(document: dict[str, Any], codes: list[str]) -> str:
    """One document as a bar per coder, each span a coloured block at its place (colour: code); hover for the code
    and offsets."""
    label_w, plot_w, row_h, top = 160, 760, 16, 24
    coders = list(document["coders"])
    height = top + row_h * len(coders) + 8
    length = max(document["length"], 1)
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(codes)}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + plot_w + 10}" height="{height}" role="img" '
             f'aria-label="spans in {esc(document["title"])}">',
             f'<text x="0" y="14" font-weight="bold">{esc(document["title"][:80])} ({document["length"]} characters)</text>']
    for i, coder in enumerate(coders):
        y = top + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 11}" text-anchor="end">{esc(coder[:24])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{plot_w}" height="{row_h - 4}" fill="#f1f1f1"/>')
        for start, end, code in document["coders"][coder]:
            x = label_w + start / length * plot_w
            w = max((end - start) / length * plot_w, 1.0)
            parts.append(f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row_h - 4}" fill="{colour.get(code, "#555")}" '
                         f'fill-opacity="0.75"><title>{esc(coder)}: {esc(code)} {start}-{end}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def legend_svg(codes: list[str]) -> str:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="920" height="{20 * ((len(codes) + 3) // 4) + 4}">']
    for i, code in enumerate(codes):
        x, y = (i % 4) * 230, (i // 4) * 20
        parts.append(f'<rect x="{x}" y="{y + 4}" width="12" height="12" fill="{PALETTE[i % len(PALETTE)]}"/>'
                     f'<text x="{x + 16}" y="{y + 14}">{esc(code[:30])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def span_plots(result: dict[str, Any]) -> list[str]:
    """Per-code |u-alpha with intervals (one plot per comparison), the colour legend, then a strip per document."""
    svgs = []
    for group in per_code_groups(result):
        rows = [(r["code"], r["estimates"][0].get("value"), r["estimates"][0].get("low"), r["estimates"][0].get("high"))
                for r in group]
        svgs.append(forest_svg(rows, f"Per-code |u-alpha with intervals: {comparison_name(group[0]['coders'])}"))
    codes = result["meta"]["codes"]
    docs = result.get("spans", {}).get("documents", [])
    if docs:
        svgs.append(legend_svg(codes))
        svgs += [strip_svg(d, codes) for d in docs]
    return svgs


def write_span_reports(result: dict[str, Any], *, markdown: Path | None = None, html: Path | None = None,
                       json_path: Path | None = None, title: str = "Span agreement") -> list[Path]:
    """Write the chosen span report files atomically; return their paths."""
    from . import write_reports

    return write_reports(result, markdown=markdown, html=html, json_path=json_path, title=title,
                         tables=span_tables, plots=span_plots)
