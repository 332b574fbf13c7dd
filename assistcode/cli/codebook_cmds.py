"""``assistcode codebook validate|show|import|versions``."""
from __future__ import annotations

from pathlib import Path

import click

from ..codebook import load_codebook, parse_columns
from ..model import Codebook
from .base import cli, open_project, project_option

columns_option = click.option(
    "--columns", metavar="FIELD=COLUMN,...",
    help="CSV/XLSX: which column holds each field when the names differ, e.g. id=code,definition=description.")


@cli.group()
def codebook() -> None:
    """Validate, show and import codebooks (YAML, CSV, XLSX or REFI-QDA .qdc)."""


def _print_codebook(cb: Codebook) -> None:
    click.echo(f"{cb.name}  ({len(cb)} codes, version {cb.hash[:12]})")
    for code in cb.codes:
        indent = "  " * (cb.depth(code.id) - 1)
        click.echo(f"{indent}- {code.id}: {code.name}")
        if code.definition:
            click.echo(f"{indent}    {code.definition[:200]}{'...' if len(code.definition) > 200 else ''}")


@codebook.command()
@click.argument("file", type=click.Path(path_type=Path))
@columns_option
def validate(file: Path, columns: str | None) -> None:
    """Check a codebook file; print its version hash."""
    cb = load_codebook(file, columns=parse_columns(columns))
    click.echo(f"{file}: valid, {len(cb)} codes, version {cb.hash[:12]}")


@codebook.command()
@click.argument("file", type=click.Path(path_type=Path), required=False)
@columns_option
@project_option
def show(file: Path | None, columns: str | None, project_dir: Path) -> None:
    """Show a codebook file, or the project's current codebook."""
    if file is not None:
        _print_codebook(load_codebook(file, columns=parse_columns(columns)))
        return
    with open_project(project_dir) as project:
        _print_codebook(project.codebook())


@codebook.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@columns_option
@project_option
def import_codebook(file: Path, columns: str | None, project_dir: Path) -> None:
    """Import a codebook (YAML, CSV, XLSX or .qdc): it becomes the current version; earlier versions stay."""
    mapping = parse_columns(columns)
    source = load_codebook(file, columns=mapping) if mapping else file  # checked before the project is opened
    with open_project(project_dir) as project:
        cb, new = project.import_codebook(source)
    state = "new version" if new else "known version, now current"
    click.echo(f"Codebook {cb.name!r}: {len(cb)} codes, {state} {cb.hash[:12]}")


@codebook.command()
@project_option
def versions(project_dir: Path) -> None:
    """List the project's codebook versions."""
    with open_project(project_dir) as project:
        for v in project.codebook_versions():
            mark = "*" if v["current"] else " "
            click.echo(f"{mark} {v['seq']:>3} {v['hash'][:12]} {v['codes']:>4} codes  {v['name']}  ({v['created_at']})")


@codebook.command()
@click.option("--all", "show_all", is_flag=True, help="Include merged and rejected candidates.")
@click.option("--threshold", type=float, default=0.6, show_default=True, help="Name similarity that groups candidates.")
@click.option("--merge", "merge_ids", help="Comma-separated candidate ids to merge into one new code.")
@click.option("--as", "as_name", help="Name of the merged code (default: the first candidate's).")
@click.option("--definition", help="Definition of the merged code (default: the first candidate's).")
@click.option("--parent", help="Parent code of the merged code.")
@click.option("--reject", "reject_ids", help="Comma-separated candidate ids to reject.")
@project_option
def candidates(show_all: bool, threshold: float, merge_ids: str | None, as_name: str | None, definition: str | None,
               parent: str | None, reject_ids: str | None, project_dir: Path) -> None:
    """Codes proposed by inductive runs: grouped by similarity; merge a group into a new codebook version."""
    from ..candidates import group_candidates, list_candidates, merge_candidates, reject_candidates

    def ids(text: str) -> list[int]:
        try:
            return [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise click.BadParameter("expected comma-separated numbers") from None

    with open_project(project_dir) as project:
        if merge_ids:
            cb, code = merge_candidates(project, ids(merge_ids), as_name, definition, parent)
            click.echo(f"Added {code.id!r} ({code.name}); codebook version {cb.hash[:12]} is now current.")
            return
        if reject_ids:
            n = reject_candidates(project.db, ids(reject_ids))
            click.echo(f"Rejected {n} candidates.")
            return
        found = list_candidates(project.db, None if show_all else "new")
    if not found:
        click.echo("No candidate codes. Run an inductive template: assistcode code --template inductive ...")
        return
    for n, group in enumerate(group_candidates(found, threshold), start=1):
        click.echo(f"group {n} ({len(group)}):")
        for c in group:
            click.echo(f"  [{c.id}] {c.name}: {c.definition[:100]}  ({c.status}; segment {c.segment_id})")
