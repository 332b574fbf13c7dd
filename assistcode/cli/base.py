"""The root command group and options shared by commands."""
from __future__ import annotations

from pathlib import Path

import click

from .. import __version__
from ..project import Project

project_option = click.option(
    "--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True,
    help="Project directory (holding assistcode.db).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="assistcode")
def cli() -> None:
    """assistcode: LLM-assisted qualitative coding with honest agreement statistics."""


def open_project(project_dir: Path) -> Project:
    return Project(project_dir)


def echo_warnings(warnings: list[str]) -> None:
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
