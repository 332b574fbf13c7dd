"""One self-contained HTML file: the tables, plus inline SVG plots (per-code agreement with interval whiskers, a
co-occurrence heatmap). No scripts, no external files: it can be mailed or archived with a paper."""
from __future__ import annotations

import html
from typing import Any

from .tables import Table, comparison_name, confusions, per_code_groups

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #ddd;padding:.25rem .6rem;text-align:right}th:first-child,td:first-child{text-align:left}
th{background:#f5f5f5}ul.notes{color:#555;font-size:.9em}.warn{color:#8a5300}
svg text{font:12px system-ui,sans-serif}
"""


def esc(text: Any) -> str:
    return html.escape(str(text))


def forest_svg(rows: list[tuple[str, float | None, float | None, float | None]], title: str) -> str:
    """Dots with whiskers, one row per label, on a -1..1 axis (values outside are clipped)."""
    label_w, plot_w, row_h, top = 220, 520, 22, 36
    height = top + row_h * len(rows) + 30
    x = lambda v: label_w + (max(-1.0, min(1.0, v)) + 1) / 2 * plot_w  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + plot_w + 30}" height="{height}" role="img" '
             f'aria-label="{esc(title)}">', f'<text x="0" y="16" font-weight="bold">{esc(title)}</text>']
    for tick in (-1, -0.5, 0, 0.2, 0.4, 0.6, 0.8, 1):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top - 8}" y2="{height - 24}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{x(tick):.1f}" y="{height - 8}" text-anchor="middle" fill="#666">{tick:g}</text>')
    for i, (label, value, low, high) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        parts.append(f'<text x="{label_w - 8}" y="{y + 4:.1f}" text-anchor="end">{esc(label[:32])}</text>')
        if low is not None and high is not None:
            parts.append(f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#3a6ea5" stroke-width="2"/>')
        if value is not None:
            parts.append(f'<circle cx="{x(value):.1f}" cy="{y:.1f}" r="4.5" fill="#1f4e79"><title>{esc(label)}: {value:.3f}'
                         + (f" [{low:.3f}, {high:.3f}]" if low is not None else "") + "</title></circle>")
        else:
            parts.append(f'<text x="{x(0):.1f}" y="{y + 4:.1f}" fill="#999">undefined</text>')
    parts.append("</svg>")
    return "".join(parts)


def heatmap_svg(labels: list[str], matrix: list[list[int]], title: str) -> str:
    n = len(labels)
    cell, left, top = 34, 170, 150
    size_w, size_h = left + cell * n + 10, top + cell * n + 10
    peak = max((v for row in matrix for v in row), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size_w}" height="{size_h}" role="img" aria-label="{esc(title)}">',
             f'<text x="0" y="16" font-weight="bold">{esc(title)}</text>']
    for j, label in enumerate(labels):
        cx = left + j * cell + cell / 2
        parts.append(f'<text transform="translate({cx:.1f},{top - 6}) rotate(-60)">{esc(label[:22])}</text>')
    for i, label in enumerate(labels):
        y = top + i * cell
        parts.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4:.1f}" text-anchor="end">{esc(label[:22])}</text>')
        for j, v in enumerate(matrix[i]):
            shade = int(255 - 200 * v / peak)
            parts.append(f'<rect x="{left + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                         f'fill="rgb({shade},{shade + (255 - shade) // 3},255)"><title>{esc(labels[i])} / {esc(labels[j])}: {v}</title></rect>')
            parts.append(f'<text x="{left + j * cell + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" text-anchor="middle" '
                         f'fill="{"#fff" if v > peak * 0.6 else "#222"}">{v}</text>')
    parts.append("</svg>")
    return "".join(parts)


def plots_for(result: dict[str, Any]) -> list[str]:
    """The plots a result supports."""
    svgs = []
    for group in per_code_groups(result):  # one forest plot per run compared, titled with it
        first = group[0]["estimates"][0]["statistic"]
        rows = [(r["code"], r["estimates"][0].get("value"), r["estimates"][0].get("low"), r["estimates"][0].get("high"))
                for r in group]
        svgs.append(forest_svg(rows, f"Per-code {first} with 95% intervals: {comparison_name(group[0]['coders'])}"))
    for v in result.get("variables", []):
        rows = [(e["statistic"], e.get("value"), e.get("low"), e.get("high")) for e in v["estimates"]]
        svgs.append(forest_svg(rows, f"{v['variable']} ({v['level']}): every statistic with 95% intervals"))
    if result.get("labels"):
        stat = "krippendorff_alpha"
        rows = []
        for lab in result["labels"]:
            e = next(e for e in lab["estimates"] if e["statistic"] == stat)
            rows.append((lab["label"], e.get("value"), e.get("low"), e.get("high")))
        svgs.append(forest_svg(rows, "Labels: Krippendorff's alpha with 95% intervals"))
    for conf in confusions(result):
        if len(conf["labels"]) <= 30:
            svgs.append(heatmap_svg(conf["labels"], conf["matrix"], f"Co-occurrence: {conf['rows']} (rows) x {conf['cols']} (columns)"))
    from .calibration import calibration_plots  # a reliability diagram per run

    svgs.extend(calibration_plots(result))
    return svgs


def to_html(tables: list[Table], notes: list[str], plots: list[str], title: str = "Agreement report") -> str:
    out = ["<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    out += [f"<figure>{svg}</figure>" for svg in plots]
    for t in tables:
        out.append(f"<h2>{esc(t.title)}</h2><table><thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in t.columns) + "</tr></thead><tbody>")
        out += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in t.rows]
        out.append("</tbody></table>")
        if t.notes:
            out.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in t.notes) + "</ul>")
    if notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f'<li class="warn">{esc(n)}</li>' for n in notes) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out)
