"""``assistcode codebook validate|show|import|versions``."""
from __future__ import annotations

from pathlib import Path

import click

from ..codebook import load_codebook
from ..model import Codebook
from .base import cli, open_project, project_option


@cli.group()
def codebook() -> None:
    """Validate, show and import codebooks (YAML or CSV)."""


def _print_codebook(cb: Codebook) -> None:
    click.echo(f"{cb.name}  ({len(cb)} codes, version {cb.hash[:12]})")
    for code in cb.codes:
        indent = "  " * (cb.depth(code.id) - 1)
        click.echo(f"{indent}- {code.id}: {code.name}")
        if code.definition:
            click.echo(f"{indent}    {code.definition[:200]}{'...' if len(code.definition) > 200 else ''}")


@codebook.command()
@click.argument("file", type=click.Path(path_type=Path))
def validate(file: Path) -> None:
    """Check a codebook file; print its version hash."""
    cb = load_codebook(file)
    click.echo(f"{file}: valid, {len(cb)} codes, version {cb.hash[:12]}")


@codebook.command()
@click.argument("file", type=click.Path(path_type=Path), required=False)
@project_option
def show(file: Path | None, project_dir: Path) -> None:
    """Show a codebook file, or the project's current codebook."""
    if file is not None:
        _print_codebook(load_codebook(file))
        return
    with open_project(project_dir) as project:
        _print_codebook(project.codebook())


@codebook.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@project_option
def import_codebook(file: Path, project_dir: Path) -> None:
    """Import a codebook: it becomes the current version; earlier versions stay."""
    with open_project(project_dir) as project:
        cb, new = project.import_codebook(file)
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
