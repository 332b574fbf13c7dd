"""Reports of agreement results: terminal tables, Markdown, one self-contained HTML file with plots, and JSON."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..exports import atomic_write
from .html import plots_for, to_html
from .render import to_json, to_markdown, to_terminal
from .tables import Table, agree_tables, eval_tables

__all__ = ["Table", "agree_tables", "eval_tables", "to_html", "to_json", "to_markdown", "to_terminal", "write_reports"]


def tables_for(result: dict[str, Any]) -> list[Table]:
    return agree_tables(result) if "variables" in result else eval_tables(result)


def write_reports(result: dict[str, Any], *, markdown: Path | None = None, html: Path | None = None,
                  json_path: Path | None = None, title: str = "Agreement report",
                  tables: Callable[[dict[str, Any]], list[Table]] = tables_for,
                  plots: Callable[[dict[str, Any]], list[str]] = plots_for) -> list[Path]:
    """Write the chosen report files atomically; return their paths. ``tables`` and ``plots`` build the content
    (agreement tables by default; span reports pass their own)."""
    notes = result.get("notes", [])
    written = []
    for path, text in ((markdown, lambda: to_markdown(tables(result), notes, title)),
                       (html, lambda: to_html(tables(result), notes, plots(result), title)),
                       (json_path, lambda: to_json(result))):
        if path is not None:
            with atomic_write(path, encoding="utf-8") as fh:
                fh.write(text())
            written.append(Path(path))
    return written
