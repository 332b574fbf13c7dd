"""``assistcode agree`` (a file, no project) and ``assistcode eval`` (a project's coders)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import click

from ..evaluate import EvalOptions, evaluate, from_store, from_table
from ..evaluate.agree import AgreeOptions, agree, parse_condition, parse_variable
from ..errors import GoldError
from ..gold import read_gold, read_records
from ..report import tables_for, to_terminal, write_reports
from ..evaluate import history
from .base import cli, open_project, project_option
from .base import split_columns as _split_columns


def stats_options(f: Callable) -> Callable:
    options = [
        click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap resamples (0: none)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap."),
        click.option("--ci", "ci_method", type=click.Choice(["bca", "percentile"]), default="bca", show_default=True,
                     help="Bootstrap interval: bias-corrected and accelerated, or percentile."),
        click.option("--ci-level", type=float, default=0.95, show_default=True, help="Confidence level of the intervals."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines) instead of tables."),
        click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), help="Also write a Markdown report."),
        click.option("--html", type=click.Path(dir_okay=False, path_type=Path), help="Also write a self-contained HTML report."),
        click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the JSON to a file."),
        click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                     help="Also write the report to this file, in the format its name ends with: .md, .html or .json."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _emit(result: dict[str, Any], as_json: bool, markdown: Path | None, html: Path | None, json_out: Path | None,
          title: str, output: Path | None = None) -> None:
    if output is not None:  # -o/--output: the format from the name
        from ..errors import InputError

        kind = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html", ".json": "json"}.get(
            output.suffix.lower())
        if kind is None:
            raise InputError(f"cannot tell the report format of {output.name!r}", field="--output",
                             hint="end the name with .md, .html or .json")
        markdown = output if kind == "markdown" else markdown
        html = output if kind == "html" else html
        json_out = output if kind == "json" else json_out
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    else:
        to_terminal(tables_for(result), result.get("notes", []))
    for path in write_reports(result, markdown=markdown, html=html, json_path=json_out, title=title):
        click.echo(f"Wrote {path}", err=True)


def _default_unit(file: Path, encoding: str | None) -> str:
    """The unit column when none is named: ``unit``, else ``segment_id`` (the tool's own export), else ``unit``
    (reported as missing, with the file's columns)."""
    try:
        header, rows = read_records(file, encoding)
    except GoldError:
        return "unit"  # the reader reports the problem with the file itself
    next(iter(rows), None)  # starting the reader and closing it closes the file
    getattr(rows, "close", lambda: None)()
    return next((c for c in ("unit", "segment_id") if c in header), "unit")


@cli.command("agree")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "layout", type=click.Choice(["long", "wide", "onehot"]), default="long", show_default=True,
              help="long: unit,coder,code rows; wide: a column per coder; onehot: a 0/1 column per code.")
@click.option("--unit-column", multiple=True, help="Column(s) identifying the unit [default: unit, else segment_id].")
@click.option("--coder-column", default="coder", show_default=True, help="long, onehot: the coder column.")
@click.option("--code-column", default="code", show_default=True, help="long: the code column.")
@click.option("--code-columns", multiple=True, help="onehot: code columns (globs).")
@click.option("--coders", multiple=True, help="wide: the coder columns.")
@click.option("--split", help="Separator of several codes in one cell.")
@click.option("--empty", type=click.Choice(["missing", "uncoded"]), default="missing", show_default=True,
              help="wide: an empty cell means not coded (missing) or seen with no code (uncoded).")
@click.option("--variable", multiple=True, metavar="NAME=GLOB[:LEVEL]",
              help="One-hot codes read as one variable, e.g. 'severity=is_abuse.*:ordinal'.")
@click.option("--defined-if", multiple=True, metavar="GLOB:CODE|CODE",
              help="Codes matching GLOB count only where the coder applied one of the CODEs, e.g. 'type.*:is_abuse.-1|is_abuse.-2'.")
@click.option("--level", type=click.Choice(["nominal", "ordinal", "interval", "ratio"]), default="nominal", show_default=True,
              help="Level of a single-label file's codes.")
@click.option("--categories", help="Comma-separated categories, in order (declares unused ones, fixes q).")
@click.option("--encoding", help="Override encoding detection (e.g. cp1252).")
@stats_options
def agree_cmd(file: Path, layout: str, unit_column: tuple[str, ...], coder_column: str, code_column: str,
              code_columns: tuple[str, ...], coders: tuple[str, ...], split: str | None, empty: str,
              variable: tuple[str, ...], defined_if: tuple[str, ...], level: str, categories: str | None,
              encoding: str | None, n_boot: int, seed: int, ci_method: str, ci_level: float, as_json: bool,
              markdown: Path | None, html: Path | None, json_out: Path | None, output: Path | None) -> None:
    """Every agreement statistic, with its interval, for a file of codes: long (unit, coder, code), wide (a
    column per coder) or one-hot (a 0/1 column per code). No project needed."""
    units = _split_columns(unit_column) or (_default_unit(file, encoding),)
    options: dict[str, Any] = {"encoding": encoding}
    if layout == "long":
        options.update(unit_columns=units, coder_column=coder_column, code_column=code_column, split=split)
    elif layout == "wide":
        options.update(unit_columns=units, coders=_split_columns(coders) or None,
                       split=split if split is not None else ";", empty=empty)
    else:
        options.update(unit_columns=units, coder_column=coder_column,
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
    _emit(result, as_json, markdown, html, json_out, f"Agreement: {file.name}", output)


def _learning_curve(project_dir: Path, train_with: str | None, sizes: str, code: str | None, seed: int, n_boot: int,
                    ci_level: float, as_json: bool, json_out: Path | None) -> None:
    from ..errors import InputError
    from ..evaluate.learning_curve import learning_curve, parse_sizes, to_lines

    if not train_with:
        raise InputError("--learning-curve needs the labels to learn from: --train-with CODER, consensus or reviewed",
                         field="--train-with")
    chosen = parse_sizes(sizes)
    with open_project(project_dir) as project:
        result = learning_curve(project, train_with, sizes=chosen, code=code, seed=seed, n_boot=n_boot, ci_level=ci_level)
    text = json.dumps(result, indent=2)
    if json_out:
        json_out.write_text(text + "\n", encoding="utf-8")
    click.echo(text if as_json else "\n".join(to_lines(result)))


def _eval_spans(project_dir: Path, coders: tuple[str, ...] | None, reference: str | None, n_boot: int, seed: int,
                ci_level: float, as_json: bool, markdown: Path | None, html: Path | None, json_out: Path | None,
                output: Path | None) -> None:
    from ..evaluate.spans import SpanEvalOptions, eval_spans
    from ..report.render import to_terminal
    from ..report.spans import span_tables, write_span_reports

    with open_project(project_dir) as project:
        codebook = project.codebook()
        result = eval_spans(project.db, codebook, coders,
                            SpanEvalOptions(n_boot=n_boot, ci_level=ci_level, seed=seed, reference=reference))
    if output is not None:  # -o/--output: the format from the name, as for eval
        from ..errors import InputError

        kind = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html", ".json": "json"}.get(
            output.suffix.lower())
        if kind is None:
            raise InputError(f"cannot tell the report format of {output.name!r}", field="--output",
                             hint="end the name with .md, .html or .json")
        markdown, html, json_out = (output if kind == k else v for k, v in
                                    (("markdown", markdown), ("html", html), ("json", json_out)))
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    else:
        to_terminal(span_tables(result), result.get("notes", []))
    for path in write_span_reports(result, markdown=markdown, html=html, json_path=json_out,
                                   title=f"Span agreement: {codebook.name}"):
        click.echo(f"Wrote {path}", err=True)


@cli.command("eval")
@click.option("--coders", multiple=True, help="Coders to compare (default: all).")
@click.option("--reference", help="Coder (or 'consensus') that models are compared against per code.")
@click.option("--rollup", type=int, help="Roll sub-codes up to this depth of the codebook (1 = themes).")
@click.option("--by", multiple=True, help="Break agreement down by a document metadata field (e.g. role).")
@click.option("--no-cluster", is_flag=True, help="Resample segments, not documents, in the bootstrap.")
@click.option("--learning-curve", is_flag=True, help="Train the `trained` provider on growing samples of documents "
              "labelled by --train-with and report its agreement on the labelled units left out.")
@click.option("--train-with", help="--learning-curve: the labels (a coder, `consensus` or `reviewed`).")
@click.option("--sizes", default="10,20,50,100,200,500", show_default=True, help="--learning-curve: labels per sample.")
@click.option("--code", help="--learning-curve: agreement on this code alone (default: on code sets).")
@click.option("--spans", is_flag=True, help="Agreement on where codes begin and end (unitizing alphas): span codings "
              "from .qdpx selections or import-gold --format spans, and model runs' located evidence quotes.")
@stats_options
@project_option
def eval_cmd(coders: tuple[str, ...], reference: str | None, rollup: int | None, by: tuple[str, ...], no_cluster: bool,
             learning_curve: bool, train_with: str | None, sizes: str, code: str | None, spans: bool,
             n_boot: int, seed: int, ci_method: str, ci_level: float, as_json: bool, markdown: Path | None,
             html: Path | None, json_out: Path | None, output: Path | None, project_dir: Path) -> None:
    """Compare the project's coders (humans and model runs) on the segments they share (--spans: on the spans
    they coded)."""
    if learning_curve:
        _learning_curve(project_dir, train_with, sizes, code, seed, n_boot, ci_level, as_json, json_out)
        return
    if spans:
        if rollup or by or no_cluster:
            from ..errors import InputError

            raise InputError("--spans compares spans on whole documents: --rollup, --by and --no-cluster do not apply",
                             field="--spans")
        _eval_spans(project_dir, _split_columns(coders) or None, reference, n_boot, seed, ci_level, as_json,
                    markdown, html, json_out, output)
        return
    opts = EvalOptions(n_boot=n_boot, seed=seed, ci_method=ci_method, ci_level=ci_level, cluster=not no_cluster,
                       reference=reference, by=_split_columns(by))
    with open_project(project_dir) as project:
        codebook = project.codebook()
        data = from_store(project.db, _split_columns(coders) or None, codebook)
        if rollup:
            data = data.rollup(rollup, codebook)
        result = evaluate(data, opts)
        if not rollup:  # probabilities are per code of the codebook, not per rolled-up theme
            from ..evaluate.calibration import calibration_report

            result["calibration"] = calibration_report(project.db, data, result["meta"]["reference"])
        history.record(project.db, result)
    _emit(result, as_json, markdown, html, json_out, f"Agreement: {codebook.name}", output)
