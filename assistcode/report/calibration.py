"""The calibration part of an ``eval`` report: a table of Brier score and expected calibration error per run, one
per code, and a reliability diagram (inline SVG) per run."""
from __future__ import annotations

import html
from typing import Any

from .tables import Table, num


def esc(text: Any) -> str:
    return html.escape(str(text))


def calibration_tables(result: dict[str, Any]) -> list[Table]:
    """Brier and ECE per run, and per code, against the reference."""
    entries = result.get("calibration") or []
    if not entries:
        return []
    bins = entries[0].get("bins", 10)
    rows = [[e["coder"], e["probability"], num(e["n"]), num(e["brier"]), num(e["ece"]),
             num((e.get("uncalibrated") or {}).get("brier")), num((e.get("uncalibrated") or {}).get("ece")),
             e.get("calibrated_on") or "-"] for e in entries]
    notes = [f"Brier: mean squared difference of probability and outcome (0 best). ECE: expected calibration error, "
             f"{bins} equal-width bins, the pairs' share of each bin times |mean probability - frequency| (0 best).",
             "Scoring runs: every (segment, code) pair; generative runs: each proposal's confidence that its code is "
             "right. Raw: the same pairs, the run's scores before calibration (where they are probabilities)."] + [
        f"{e['coder']}: {e['note']}" for e in entries if e.get("note")] + [
        f"{e['coder']}: too few labels (under 3 positive or 3 negative) to calibrate, label-free instead, in "
        + ", ".join(f"{code} ({n} fold{'s' if n > 1 else ''})" for code, n in e["fallbacks"].items())
        for e in entries if e.get("fallbacks")]
    tables = [Table(f"Calibration against {entries[0]['reference']}",
                    ["run", "probability", "n pairs", "Brier", "ECE", "raw Brier", "raw ECE", "calibrated on"], rows,
                    notes)]
    per_code = [[e["coder"], c["code"], num(c["n"]), f"{c['prevalence']:.1%}", num(c["mean_prob"]), num(c["brier"]),
                 num(c["ece"])] for e in entries for c in e["per_code"]]
    if per_code:
        tables.append(Table("Calibration per code", ["run", "code", "n pairs", "prevalence", "mean probability",
                                                     "Brier", "ECE"], per_code))
    return tables


def reliability_svg(entry: dict[str, Any]) -> str:
    """Mean probability (x) against the observed frequency (y) per bin, dots sized by the pairs in the bin, beside
    the diagonal of perfect calibration; bars along the bottom count the pairs per bin."""
    left, top, size, bottom = 60, 40, 300, 70
    width, height = left + size + 40, top + size + bottom
    x = lambda v: left + v * size  # noqa: E731
    y = lambda v: top + (1 - v) * size  # noqa: E731
    title = (f"Reliability: {entry['coder']} vs {entry['reference']} (Brier {num(entry['brier'])}, "
             f"ECE {num(entry['ece'])}, {entry['n']} pairs)")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{max(width, 640)}" height="{height}" role="img" '
             f'aria-label="{esc(title)}">', f'<text x="0" y="16" font-weight="bold">{esc(title)}</text>']
    for t in (0, 0.2, 0.4, 0.6, 0.8, 1):
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{top + size}" stroke="#eee"/>')
        parts.append(f'<line x1="{left}" x2="{left + size}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{x(t):.1f}" y="{top + size + 16}" text-anchor="middle" fill="#666">{t:g}</text>')
        parts.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" fill="#666">{t:g}</text>')
    parts.append(f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#999" stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{left + size / 2}" y="{top + size + 32}" text-anchor="middle">mean probability in the bin</text>')
    parts.append(f'<text transform="translate(14,{top + size / 2}) rotate(-90)" text-anchor="middle">observed frequency</text>')
    bins = entry["reliability"]
    peak = max((b["n"] for b in bins), default=0) or 1
    points = []
    for b in bins:
        w = (b["upper"] - b["lower"]) * size
        h = 18 * b["n"] / peak
        parts.append(f'<rect x="{x(b["lower"]) + 1:.1f}" y="{top + size + 52 - h:.1f}" width="{w - 2:.1f}" height="{h:.1f}" '
                     f'fill="#c9d7e8"><title>[{b["lower"]:g}, {b["upper"]:g}): {b["n"]} pairs</title></rect>')
        if b["n"]:
            points.append((x(b["mean_prob"]), y(b["frequency"])))
            r = 3 + 5 * (b["n"] / peak) ** 0.5
            parts.append(f'<circle cx="{x(b["mean_prob"]):.1f}" cy="{y(b["frequency"]):.1f}" r="{r:.1f}" fill="#1f4e79">'
                         f'<title>[{b["lower"]:g}, {b["upper"]:g}): {b["n"]} pairs, mean probability '
                         f'{b["mean_prob"]:.3f}, frequency {b["frequency"]:.3f}</title></circle>')
    if len(points) > 1:
        parts.append('<polyline fill="none" stroke="#3a6ea5" stroke-width="1.5" points="'
                     + " ".join(f"{px:.1f},{py:.1f}" for px, py in points) + '"/>')
    parts.append("</svg>")
    return "".join(parts)


def calibration_plots(result: dict[str, Any]) -> list[str]:
    """One reliability diagram per run with pairs to check."""
    return [reliability_svg(e) for e in result.get("calibration") or [] if e["n"]]
