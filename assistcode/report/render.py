"""Renderers: terminal (rich), Markdown, JSON. HTML is in :mod:`assistcode.report.html`."""
from __future__ import annotations

import json
from typing import Any

from .tables import Table


def to_terminal(tables: list[Table], notes: list[str], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)  # a file or pipe: do not wrap tables at 80 columns
    for t in tables:
        rt = RichTable(title=t.title, title_justify="left", show_lines=False, header_style="bold")
        for i, c in enumerate(t.columns):
            rt.add_column(c, justify="left" if i == 0 else "right", overflow="fold")
        for row in t.rows:
            rt.add_row(*row)
        console.print(rt)
        for n in t.notes:
            console.print(f"  [dim]{n}[/dim]", highlight=False)
        console.print()
    for n in notes:
        console.print(f"[yellow]note:[/yellow] {n}", highlight=False)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(tables: list[Table], notes: list[str], title: str = "Agreement report") -> str:
    out = [f"# {title}", ""]
    for t in tables:
        out += [f"## {t.title}", "", "| " + " | ".join(map(_md_cell, t.columns)) + " |",
                "|" + "|".join("---" for _ in t.columns) + "|"]
        out += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in t.rows]
        out += [""] + [f"- {n}" for n in t.notes] + ([""] if t.notes else [])
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2, ensure_ascii=False, default=str)
