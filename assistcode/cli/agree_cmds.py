"""``assistcode agree`` (a file, no project) and ``assistcode eval`` (a project's coders)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import click

from ..evaluate import EvalOptions, evaluate, from_store, from_table
from ..evaluate.agree import AgreeOptions, agree, parse_condition, parse_variable
from ..gold import read_gold
from ..report import tables_for, to_terminal, write_reports
from ..evaluate import history
from .base import cli, open_project, project_option
from .project_cmds import _split_columns


def stats_options(f: Callable) -> Callable:
    options = [
        click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap resamples (0: none)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap."),
        click.option("--ci", "ci_method", type=click.Choice(["bca", "percentile"]), default="bca", show_default=True),
        click.option("--ci-level", type=float, default=0.95, show_default=True),
        click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines) instead of tables."),
        click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), help="Also write a Markdown report."),
        click.option("--html", type=click.Path(dir_okay=False, path_type=Path), help="Also write a self-contained HTML report."),
        click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the JSON to a file."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _emit(result: dict[str, Any], as_json: bool, markdown: Path | None, html: Path | None, json_out: Path | None,
          title: str) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    else:
        to_terminal(tables_for(result), result.get("notes", []))
    for path in write_reports(result, markdown=markdown, html=html, json_path=json_out, title=title):
        click.echo(f"Wrote {path}", err=True)


@cli.command("agree")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "layout", type=click.Choice(["long", "wide", "onehot"]), default="long", show_default=True)
@click.option("--unit-column", multiple=True, help="Column(s) identifying the unit [long: unit or segment_id; wide: unit].")
@click.option("--coder-column", default="coder", show_default=True)
@click.option("--code-column", default="code", show_default=True)
@click.option("--code-columns", multiple=True, help="onehot: code columns (globs).")
@click.option("--coders", multiple=True, help="wide: the coder columns.")
@click.option("--split", help="Separator of several codes in one cell.")
@click.option("--empty", type=click.Choice(["missing", "uncoded"]), default="missing", show_default=True)
@click.option("--variable", multiple=True, metavar="NAME=GLOB[:LEVEL]",
              help="One-hot codes read as one variable, e.g. 'severity=is_abuse.*:ordinal'.")
@click.option("--defined-if", multiple=True, metavar="GLOB:CODE|CODE",
              help="Codes matching GLOB count only where the coder applied one of the CODEs, e.g. 'type.*:is_abuse.-1|is_abuse.-2'.")
@click.option("--level", type=click.Choice(["nominal", "ordinal", "interval", "ratio"]), default="nominal", show_default=True,
              help="Level of a single-label file's codes.")
@click.option("--categories", help="Comma-separated categories, in order (declares unused ones, fixes q).")
@click.option("--encoding")
@stats_options
def agree_cmd(file: Path, layout: str, unit_column: tuple[str, ...], coder_column: str, code_column: str,
              code_columns: tuple[str, ...], coders: tuple[str, ...], split: str | None, empty: str,
              variable: tuple[str, ...], defined_if: tuple[str, ...], level: str, categories: str | None,
              encoding: str | None, n_boot: int, seed: int, ci_method: str, ci_level: float, as_json: bool,
              markdown: Path | None, html: Path | None, json_out: Path | None) -> None:
    """Every agreement statistic, with its interval, for a file of codes: long (unit, coder, code), wide (a
    column per coder) or one-hot (a 0/1 column per code). No project needed."""
    units = _split_columns(unit_column)
    options: dict[str, Any] = {"encoding": encoding}
    if layout == "long":
        options.update(unit_columns=units or ("unit",), coder_column=coder_column, code_column=code_column, split=split)
    elif layout == "wide":
        options.update(unit_columns=units or ("unit",), coders=_split_columns(coders) or None,
                       split=split if split is not None else ";", empty=empty)
    else:
        options.update(unit_columns=units or ("unit",), coder_column=coder_column,
                       code_columns=_split_columns(code_columns) or None)
    table = read_gold(file, layout, **options)  # type: ignore[arg-type]
    cats = None
    if categories:
        cats = [c.strip() for c in categories.split(",")]
        try:
            cats = [float(c) if "." in c else int(c) for c in cats]  # type: ignore[misc]
        except ValueError:
            pass
    opts = AgreeOptions(n_boot=n_boot, seed=seed, ci_method=ci_method, ci_level=ci_level, cluster=False,
                        variables=[parse_variable(v) for v in variable],
                        conditions=[parse_condition(c) for c in defined_if], level=level, categories=cats)
    result = agree(from_table(table), opts)
    result["notes"] = table.notes + result["notes"]
    _emit(result, as_json, markdown, html, json_out, f"Agreement: {file.name}")


@cli.command("eval")
@click.option("--coders", multiple=True, help="Coders to compare (default: all).")
@click.option("--reference", help="Coder (or 'consensus') that models are compared against per code.")
@click.option("--rollup", type=int, help="Roll sub-codes up to this depth of the codebook (1 = themes).")
@click.option("--by", multiple=True, help="Break agreement down by a document metadata field (e.g. role).")
@click.option("--no-cluster", is_flag=True, help="Resample segments, not documents, in the bootstrap.")
@stats_options
@project_option
def eval_cmd(coders: tuple[str, ...], reference: str | None, rollup: int | None, by: tuple[str, ...], no_cluster: bool,
             n_boot: int, seed: int, ci_method: str, ci_level: float, as_json: bool, markdown: Path | None,
             html: Path | None, json_out: Path | None, project_dir: Path) -> None:
    """Compare the project's coders (humans and model runs) on the segments they share."""
    opts = EvalOptions(n_boot=n_boot, seed=seed, ci_method=ci_method, ci_level=ci_level, cluster=not no_cluster,
                       reference=reference, by=_split_columns(by))
    with open_project(project_dir) as project:
        codebook = project.codebook()
        data = from_store(project.db, _split_columns(coders) or None, codebook)
        if rollup:
            data = data.rollup(rollup, codebook)
        result = evaluate(data, opts)
        history.record(project.db, result)
    _emit(result, as_json, markdown, html, json_out, f"Agreement: {codebook.name}")
