"""Project commands: init, import, segments, import-gold, export, coders, demo."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..exports import annotations_frame, atomic_write, matrix_frame, write_frame, write_segments
from ..errors import InputError
from ..gold import import_adding_codes, read_gold
from ..project import Project
from ..readers import ReadOptions
from ..transcripts import FORMATS as TRANSCRIPT_FORMATS
from .base import cli, echo_warnings, open_project, output_option, project_option


def _split_columns(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--x a,b --x c`` -> (a, b, c)."""
    return tuple(c.strip() for v in values for c in v.split(",") if c.strip())


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
def init(directory: Path) -> None:
    """Create a project in DIRECTORY (default: here)."""
    existed = (directory / "assistcode.db").exists()
    Project.init(directory).close()
    click.echo(f"{'Already a project' if existed else 'Created project'}: {directory.resolve()}")


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--segment", "segmenter", type=click.Choice(["turn", "paragraph", "sentence", "window", "row"]),
              help="How to cut documents into segments [default: row for tables (one row, one segment), turn for "
                   "transcripts].")
@click.option("--transcript-format", type=click.Choice(list(TRANSCRIPT_FORMATS)),
              help="Force a transcript format (default: detected from the text): otter, teams, zoom, rev, trint, "
                   "descript, nvivo, maxqda, or plain `Name:` turns.")
@click.option("--interviewer", "interviewers", multiple=True, metavar="NAME",
              help="Speaker whose turns are the interviewer's (repeatable; default: inferred, the speaker who asks "
                   "the most questions, reported with the evidence).")
@click.option("--speaker-pattern", help="Regex with a (?P<speaker>...) group, matched at line starts (turn, sentence).")
@click.option("--window-size", type=int, default=100, show_default=True, help="Words per window (window).")
@click.option("--window-overlap", type=int, default=20, show_default=True, help="Words shared by neighbouring windows.")
@click.option("--encoding", help="Override encoding detection (e.g. latin-1).")
@click.option("--text-column", help="Tables: the column holding the text.")
@click.option("--id-column", multiple=True, help="Tables: column(s) that identify a row (repeat or comma-separate).")
@click.option("--meta-columns", multiple=True, help="Tables: columns kept as metadata (default: all but the text).")
@click.option("--sheet", help="XLSX: the sheet to read (default: the active one).")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata added to every document imported.")
@click.option("--metadata", "metadata_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Table with a 'source' column of file names and a column per metadata field.")
@click.option("--skip-bad", is_flag=True, help="Import the good files; count and report the bad ones.")
@click.option("--segment-uncoded", type=click.Choice(["turn", "paragraph", "sentence", "window"]),
              help=".qdpx: also cut the text no one coded into segments this way (default: coded selections only).")
@click.option("--sources", "sources_dir", type=click.Path(file_okay=False, path_type=Path),
              help=".qdpx: the folder holding its external sources (default: the archive's folder).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@project_option
def import_(paths: tuple[Path, ...], segmenter: str | None, transcript_format: str | None,
            interviewers: tuple[str, ...], speaker_pattern: str | None, window_size: int, window_overlap: int,
            encoding: str | None, text_column: str | None, id_column: tuple[str, ...], meta_columns: tuple[str, ...],
            sheet: str | None, meta: tuple[str, ...], metadata_file: Path | None, skip_bad: bool,
            segment_uncoded: str | None, sources_dir: Path | None, as_json: bool, project_dir: Path) -> None:
    """Import transcripts (.txt .md .docx .vtt .srt), tables of responses (.csv .tsv .jsonl .parquet .xlsx), or a
    REFI-QDA project (.qdpx from NVivo, ATLAS.ti, MAXQDA, QualCoder: sources, codebook, users and their codings)."""
    if any(p.suffix.lower() == ".qdpx" for p in paths):
        if len(paths) > 1:
            raise InputError("import one .qdpx at a time, and on its own", hint="run `assistcode import` once per file")
        from ..refi import import_qdpx

        with open_project(project_dir) as project:
            r = import_qdpx(project, paths[0], segment_uncoded=segment_uncoded, sources_dir=sources_dir)
        echo_warnings(r.warnings)
        if as_json:
            click.echo(json.dumps(r.__dict__, indent=2))
            return
        kinds = ", ".join(f"{c} ({k})" for c, k in r.coders.items()) or "none"
        click.echo(f"Imported {r.documents_added} documents ({r.documents_present} already here), {r.segments_added} "
                   f"segments, {r.codings} codings by {kinds}; {r.spans} span codings.")
        for what, n in r.skipped.items():
            click.echo(f"  left out: {n} {what}", err=True)
        return
    extra = {}
    for item in meta:
        if "=" not in item:
            raise InputError(f"expected KEY=VALUE, got {item!r}", field="--meta")
        k, v = item.split("=", 1)
        extra[k.strip()] = v
    seg_options: dict[str, object] = {}
    if segmenter in ("turn", "sentence", None) and speaker_pattern:
        seg_options["pattern"] = speaker_pattern
    if segmenter in ("turn", "sentence", None):
        if transcript_format:
            seg_options["transcript_format"] = transcript_format
        if interviewers:
            seg_options["interviewers"] = tuple(interviewers)
    if segmenter == "window":
        seg_options = {"size": window_size, "overlap": window_overlap}
    options = ReadOptions(encoding=encoding, text_column=text_column, id_columns=_split_columns(id_column),
                          meta_columns=_split_columns(meta_columns) or None, sheet=sheet, metadata=extra)
    with open_project(project_dir) as project:
        report = project.import_corpus(paths, segmenter=segmenter, segmenter_options=seg_options, options=options,
                                       skip_bad=skip_bad, metadata_file=metadata_file)
    echo_warnings(report.warnings)
    for line in report.roles[:10]:
        click.echo(f"note: {line}", err=True)
    if len(report.roles) > 10:
        click.echo(f"note: {len(report.roles) - 10} more documents with an inferred interviewer "
                   "(each document's metadata 'roles' holds the evidence)", err=True)
    if as_json:
        click.echo(json.dumps({**report.as_dict(), "bad_files": report.bad_files, "roles": report.roles}, indent=2))
        return
    formats = ", ".join(f"{n} {f}" for f, n in sorted(report.formats.items()))
    how = f"{segmenter} segments" if segmenter else "speaker turns; a table row is one segment"
    click.echo(f"Imported {report.documents_added} documents, {report.segments_added} segments "
               f"from {report.files} files ({how}" + (f"; formats: {formats}" if formats else "") + ").")
    if report.documents_present:
        click.echo(f"{report.documents_present} documents were already in the project: left unchanged.")
    if report.rows_skipped:
        click.echo(f"Skipped {report.rows_skipped} table rows with no text.")
    for path, error in report.bad_files:
        click.echo(f"skipped file: {error}", err=True)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), default="csv", show_default=True,
              help="Table format (parquet needs --output).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout).")
@project_option
def segments(fmt: str, output: Path | None, project_dir: Path) -> None:
    """List every segment: segment_id, document_id, start, end, speaker, text (and more)."""
    with open_project(project_dir) as project:
        if fmt == "parquet" or output is not None:
            if fmt == "parquet":
                n = write_segments(project.db, fmt, path=output)
            else:
                with atomic_write(output, encoding="utf-8", newline="") as fh:
                    n = write_segments(project.db, fmt, out=fh)
            click.echo(f"Wrote {n} segments to {output}", err=True)
        else:
            write_segments(project.db, fmt, out=sys.stdout)


@cli.command("import-gold")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "layout", type=click.Choice(["long", "wide", "onehot", "spans"]), default="long",
              show_default=True, help="long: unit,coder,code rows; wide: a column per coder; onehot: a 0/1 column per "
              "code; spans: document,start,end,coder,code rows (document id or title, offsets in code points; or a "
              "quote column instead of start,end).")
@click.option("--unit-column", multiple=True, help="Column(s) identifying the unit [default: segment_id].")
@click.option("--coder-column", default="coder", show_default=True, help="long, onehot: the coder column.")
@click.option("--code-column", default="code", show_default=True, help="long: the code column.")
@click.option("--code-columns", multiple=True, help="onehot: the code columns (globs like 'type.*' work).")
@click.option("--coders", multiple=True, help="wide: the coder columns (default: all but the unit columns).")
@click.option("--split", help="Separator of several codes in one cell (wide default ';').")
@click.option("--empty", type=click.Choice(["missing", "uncoded"]), default="missing", show_default=True,
              help="wide: an empty cell means not coded (missing) or seen with no code (uncoded).")
@click.option("--encoding", help="Override encoding detection.")
@click.option("--skip-bad", is_flag=True, help="Import the good rows; count and report the bad ones.")
@click.option("--replace", is_flag=True, help="A coder already imported: the file's codes replace that coder's on the "
              "segments it names (without it, a file that codes them differently is refused).")
@click.option("--add-codes", is_flag=True, help="Codes not in the codebook (inductive coding) are added to a new "
              "codebook version instead of refused.")
@project_option
def import_gold(file: Path, layout: str, unit_column: tuple[str, ...], coder_column: str, code_column: str,
                code_columns: tuple[str, ...], coders: tuple[str, ...], split: str | None, empty: str,
                encoding: str | None, skip_bad: bool, replace: bool, add_codes: bool, project_dir: Path) -> None:
    """Import human codes, checked against the project's segments and current codebook. Importing a coder again
    adds the segments new to that coder; codes that differ on segments already imported are refused unless
    --replace, which makes them the file's and reports what changed."""
    if layout == "spans":
        _import_spans(file, coder_column, code_column, encoding, replace, project_dir)
        return
    units = _split_columns(unit_column) or ("segment_id",)
    options: dict[str, object] = {"unit_columns": units, "encoding": encoding}
    if layout == "long":
        options.update(coder_column=coder_column, code_column=code_column, split=split)
    elif layout == "wide":
        options.update(coders=_split_columns(coders) or None, split=split if split is not None else ";", empty=empty)
    else:
        options.update(coder_column=coder_column, code_columns=_split_columns(code_columns) or None)
    with open_project(project_dir) as project:
        table = read_gold(file, layout, **options)  # type: ignore[arg-type]
        added: list[str] = []
        if add_codes:
            report, added = import_adding_codes(project, table, skip_bad=skip_bad, replace=replace)
        else:
            report = project.import_gold(table, skip_bad=skip_bad, replace=replace)
    if added:
        click.echo(f"Added {len(added)} code{'s' if len(added) != 1 else ''} to a new codebook version: "
                   + ", ".join(added[:20]) + (" ..." if len(added) > 20 else ""), err=True)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"Imported {report.annotations_added} codes on {report.seen_added} segment views "
               f"from {len(report.coders)} coders ({', '.join(report.coders)}).")
    if report.replaced:
        who = ", ".join(f"{c}'s codes on {n} segment{'s' if n != 1 else ''}" for c, n in report.replaced.items())
        click.echo(f"Replaced {who}: {report.codes_added} code{'s' if report.codes_added != 1 else ''} added, "
                   f"{report.codes_removed} code{'s' if report.codes_removed != 1 else ''} removed.")
    if report.unchanged:
        click.echo(f"{report.unchanged} segment views were already imported with the same codes: unchanged.")
    if report.rows_skipped:
        click.echo(f"Skipped {report.rows_skipped} bad rows:", err=True)
        for p in report.problems[:20]:
            click.echo(f"  {p}", err=True)


def _import_spans(file: Path, coder_column: str, code_column: str, encoding: str | None, replace: bool,
                  project_dir: Path) -> None:
    from ..spans import import_span_file

    with open_project(project_dir) as project:
        report = import_span_file(project, file, encoding=encoding, replace=replace, coder_column=coder_column,
                                  code_column=code_column)
    echo_warnings(report.warnings)
    for q in report.quotes_not_found[:20]:
        click.echo(f"  not located: {q}", err=True)
    if len(report.quotes_not_found) > 20:
        click.echo(f"  ... and {len(report.quotes_not_found) - 20} more", err=True)
    click.echo(f"Imported {report.spans_added} span codings on {report.documents} documents from "
               f"{len(report.coders)} coders ({', '.join(report.coders)})"
               + (f"; {report.spans_present} already imported" if report.spans_present else "")
               + (f"; replaced {report.replaced}" if report.replaced else "") + ".")


@cli.group()
def export() -> None:
    """Export annotations (and, later, REFI-QDA projects)."""


@export.command("qdpx")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File: the .qdpx project to write.")
@click.option("--coders", multiple=True, help="Coders to include (default: all: humans, model runs, reviewers).")
@click.option("--segments", type=click.Choice(["coded", "all"]), default="coded", show_default=True,
              help="all: also write uncoded segments as selections without codes (keeps the segmentation).")
@project_option
def export_qdpx_cmd(output: Path, coders: tuple[str, ...], segments: str, project_dir: Path) -> None:
    """A REFI-QDA project for NVivo, ATLAS.ti, MAXQDA, QualCoder: each coder a User, model rationale as Notes."""
    from ..refi import export_qdpx

    with open_project(project_dir) as project:
        r = export_qdpx(project, output, coders=_split_columns(coders) or None, segments=segments)
    click.echo(f"Wrote {output}: {r.documents} documents, {r.selections} selections, {r.codings} codings by "
               f"{len(r.users)} users (valid QDA-XML 1.0)")


@export.command("qdc")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File: the .qdc codebook to write.")
@project_option
def export_qdc_cmd(output: Path, project_dir: Path) -> None:
    """The current codebook as a REFI-QDA codebook (.qdc)."""
    from ..refi import write_qdc

    with open_project(project_dir) as project:
        codebook = project.codebook()
    write_qdc(codebook, output)
    click.echo(f"Wrote {output}: {len(codebook)} codes (valid QDA-XML 1.0)")


@export.command("annotations")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "xlsx", "parquet"]), default="csv", show_default=True,
              help="Table format (xlsx and parquet need --output).")
@click.option("--matrix", is_flag=True, help="Segments x codes per coder (1 applied, 0 seen and not applied).")
@click.option("--coders", multiple=True, help="Only these coders (repeat or comma-separate).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write (csv/jsonl: default stdout).")
@project_option
def export_annotations(fmt: str, matrix: bool, coders: tuple[str, ...], output: Path | None, project_dir: Path) -> None:
    """Write annotations in long form (an empty code: seen, no code) or as a matrix."""
    with open_project(project_dir) as project:
        frame = annotations_frame(project.db, _split_columns(coders) or None)
        if matrix:
            frame = matrix_frame(frame, [c.id for c in project.codebook().codes])
    if output is None:
        if fmt in ("xlsx", "parquet"):
            raise InputError(f"{fmt} needs a file", field="--output")
        if fmt == "csv":
            frame.to_csv(sys.stdout, index=False)
        else:
            frame.to_json(sys.stdout, orient="records", lines=True, force_ascii=False)
        return
    write_frame(frame, output, fmt)
    click.echo(f"Wrote {len(frame)} rows to {output}", err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines) on stdout instead of text.")
@project_option
@output_option
def coders(as_json: bool, project_dir: Path) -> None:
    """List the coders in the project (humans, model runs, reviewers)."""
    with open_project(project_dir) as project:
        rows = project.coders()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['name']:30} {r['kind']:9} {r['segments_seen']:>7} seen {r['annotations']:>7} codes")


@cli.command()
@click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default="assistcode-demo",
              show_default=True, help="Where to put the demo project.")
@click.option("--model", default=None, help="Offline model (catalogued name or .gguf path); default: the catalogue's default.")
@click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap resamples for the intervals.")
@click.option("--max-tokens", type=int, default=512, show_default=True, help="Reply length cap per segment.")
def demo(project_dir: Path, model: str | None, n_boot: int, max_tokens: int) -> None:
    """The whole loop on the shipped seed gold standard: import, code with the offline model, evaluate, report."""
    from ..demo import run_demo
    from ..localmodels import DEFAULT_MODEL
    from ..report import tables_for, to_terminal
    from .base import progress_printer

    progress, update = progress_printer("coding")  # the bar on stderr; the steps and the report on stdout

    def show(report: dict) -> None:
        to_terminal(tables_for(report), report.get("notes", []))

    with progress:
        project, _, _ = run_demo(project_dir, echo=click.echo,
                                 model=model or DEFAULT_MODEL, n_boot=n_boot, max_tokens=max_tokens,
                                 progress=update, show_report=show)
    project.close()
