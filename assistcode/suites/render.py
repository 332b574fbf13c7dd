"""A suite comparison as tables (terminal, Markdown, HTML with a plot of agreement against cost) and JSON."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..exports import atomic_write
from ..report.html import esc, forest_svg, to_html
from ..report.render import to_markdown
from ..report.tables import Table, interval, num

AXIS = {"cost_usd": "cost (USD)", "seconds_per_segment": "seconds per segment"}


def tables(result: dict[str, Any]) -> list[Table]:
    axis = result["pareto"]["axis"]
    front = set(result["pareto"]["front"])
    rows = []
    for c in result["configurations"]:
        rows.append([c["label"] + (" *" if c["label"] in front else ""), interval(c["alpha"]), str(c["units"]),
                     f"{c['coverage']:.0%}", num(c["tokens_per_segment"], 0),
                     "-" if c["cost_usd"] is None else f"{c['cost_usd']:.4f}", num(c["seconds_per_segment"], 2),
                     str(c["failed"])])
    if result.get("ceiling"):
        rows.append(["humans (ceiling)", interval(result["ceiling"]), str(result["units"]), "", "", "", "", ""])
    notes = [f"alpha: Krippendorff's alpha (MASI distance on code sets) against {result['reference']}, with 95% "
             "bootstrap intervals" + (" resampling documents" if result["units"] else ""),
             f"* on the Pareto front of agreement against {AXIS[axis]}: no other configuration is both better and cheaper"]
    if not result.get("ceiling"):
        notes.append("one gold coder: no human ceiling to show (add a second coder's codes to measure it)")
    if result.get("split"):
        notes.append(f"evaluated on the test split ({result['split']['test']:.0%} of the {result['split']['by']}s, "
                     f"seed {result['split']['seed']}); few-shot examples come only from the training split")
    out = [Table(f"Suite {result['suite']}: agreement with the gold, cost and time",
                 ["configuration", "alpha [95% CI]", "units", "coverage", "tokens/seg", "cost USD", "s/seg", "failed"],
                 rows, notes)]
    def cell(e: dict[str, Any]) -> str:
        return interval(e) if e.get("value") is not None else "undefined"

    configs = result["configurations"]
    out.append(Table("Per code: Cohen's kappa against the gold [95% CI]", ["code", *(c["label"] for c in configs)],
                     [[k, *(cell(c["per_code_kappa"][k]) for c in configs)] for k in result["codes"]],
                     ["undefined: the code never occurs (or always occurs) in both rows, so kappa has no value; "
                      "the JSON says why"]))
    paired = [[p["a"], p["b"], interval(p) if p.get("value") is not None else p.get("note", "-"),
               str(p.get("units", "-")), p.get("verdict", "")] for p in result["paired"]]
    out.append(Table("Paired differences in alpha (a - b), same units, paired bootstrap",
                     ["a", "b", "difference [95% CI]", "units", "verdict"], paired,
                     ["each bootstrap replicate draws the same units for both configurations, so what they share "
                      "cancels; an interval that excludes zero is a difference this sample can show"]))
    return out


def pareto_svg(result: dict[str, Any]) -> str:
    """Agreement (alpha) against cost, the Pareto front joined by a line."""
    axis = result["pareto"]["axis"]
    pts = [(c["label"], c["alpha"].get("value"), c["alpha"].get("low"), c["alpha"].get("high"), c.get(axis) or 0.0)
           for c in result["configurations"] if c["alpha"].get("value") is not None]
    w, h, left, top, bottom = 640, 340, 60, 30, 50
    if not pts:
        return ""
    xmax = max(p[4] for p in pts) or 1.0
    ylo = min(-0.2, min((p[2] if p[2] is not None else p[1]) for p in pts))
    x = lambda v: left + v / (xmax * 1.1) * (w - left - 20)  # noqa: E731
    y = lambda v: top + (1 - (v - ylo) / (1 - ylo)) * (h - top - bottom)  # noqa: E731
    title = f"Agreement with the gold against {AXIS[axis]}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{esc(title)}">',
             f'<text x="0" y="16" font-weight="bold">{esc(title)}</text>',
             f'<line x1="{left}" x2="{left}" y1="{top}" y2="{h - bottom}" stroke="#888"/>',
             f'<line x1="{left}" x2="{w - 10}" y1="{h - bottom}" y2="{h - bottom}" stroke="#888"/>',
             f'<text x="{(w + left) / 2}" y="{h - 12}" text-anchor="middle" fill="#444">{esc(AXIS[axis])}</text>',
             f'<text x="14" y="{(h - bottom + top) / 2}" fill="#444" transform="rotate(-90 14 {(h - bottom + top) / 2})" '
             'text-anchor="middle">alpha</text>']
    for tick in (0.0, 0.5, 1.0) + ((ylo,) if ylo < 0 else ()):
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#666">{tick:.1f}</text>')
        parts.append(f'<line x1="{left}" x2="{w - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>')
    for tick in (0, xmax / 2, xmax):
        parts.append(f'<text x="{x(tick):.1f}" y="{h - bottom + 16}" text-anchor="middle" fill="#666">{tick:.3g}</text>')
    front = sorted((p for p in pts if p[0] in set(result["pareto"]["front"])), key=lambda p: p[4])
    if len(front) > 1:
        parts.append('<polyline fill="none" stroke="#c0504d" stroke-dasharray="4 3" points="'
                     + " ".join(f"{x(p[4]):.1f},{y(p[1]):.1f}" for p in front) + '"/>')
    for label, a, lo, hi, cost in pts:
        if lo is not None and hi is not None:
            parts.append(f'<line x1="{x(cost):.1f}" x2="{x(cost):.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}" stroke="#3a6ea5"/>')
        parts.append(f'<circle cx="{x(cost):.1f}" cy="{y(a):.1f}" r="5" fill="#1f4e79"><title>{esc(label)}: alpha '
                     f'{a:.3f}, {esc(AXIS[axis])} {cost:.3g}</title></circle>')
        right = x(cost) > (w + left) / 2  # labels of points on the right run leftwards, inside the plot
        parts.append(f'<text x="{x(cost) + (-8 if right else 8):.1f}" y="{y(a) - 6:.1f}" font-size="11" '
                     f'text-anchor="{"end" if right else "start"}">{esc(label[:40])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def write(result: dict[str, Any], folder: Path) -> list[Path]:
    """report.md, report.html (with the plots) and report.json in ``folder``, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    t = tables(result)
    title = f"assistcode suite {result['suite']}"
    forest = forest_svg([(c["label"], c["alpha"].get("value"), c["alpha"].get("low"), c["alpha"].get("high"))
                         for c in result["configurations"]], "alpha against the gold, 95% CI")
    paths = []
    for name, text in (("report.md", to_markdown(t, [], title)),
                       ("report.html", to_html(t, [], [pareto_svg(result), forest], title)),
                       ("report.json", json.dumps(result, indent=2, default=str))):
        with atomic_write(folder / name, encoding="utf-8") as fh:
            fh.write(text)
        paths.append(folder / name)
    return paths
