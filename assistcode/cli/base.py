"""The root command group and options shared by commands."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import __version__

if TYPE_CHECKING:
    from ..project import Project

COMMAND_MODULES = ("agree_cmds", "codebook_cmds", "model_cmds", "project_cmds", "review_cmds", "run_cmds", "suite_cmds")
"""Modules under ``assistcode.cli`` whose import registers commands on :data:`cli`."""
WHERE = {"agree": "agree_cmds", "eval": "agree_cmds", "codebook": "codebook_cmds", "models": "model_cmds",
         "config": "model_cmds", "init": "project_cmds", "import": "project_cmds", "segments": "project_cmds",
         "import-gold": "project_cmds", "export": "project_cmds", "coders": "project_cmds", "demo": "project_cmds",
         "review": "review_cmds", "code": "run_cmds", "runs": "run_cmds", "prompts": "run_cmds", "suite": "suite_cmds"}
"""Which module defines each command, so that running one imports only its module (a command missing here is found
by importing them all)."""


class LazyGroup(click.Group):
    """The root group: a command's module (and the libraries it needs) is imported only when that command runs, so
    ``assistcode --version`` or ``assistcode segments`` never pay for scipy or a model SDK."""

    def _load(self, module: str) -> None:
        importlib.import_module(f"{__package__}.{module}")

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in WHERE:
            self._load(WHERE[cmd_name])
        if cmd_name not in self.commands:
            for module in COMMAND_MODULES:
                self._load(module)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in COMMAND_MODULES:
            self._load(module)
        return super().list_commands(ctx)

project_option = click.option(
    "--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True,
    help="Project directory (holding assistcode.db).",
)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="assistcode")
def cli() -> None:
    """assistcode: LLM-assisted qualitative coding with honest agreement statistics."""


def open_project(project_dir: Path) -> "Project":
    """The project in ``project_dir`` (imported here: the store pulls in pandas)."""
    from ..project import Project

    return Project(project_dir)


def echo_warnings(warnings: list[str]) -> None:
    """Each warning as one line on stderr."""
    for w in warnings:
        click.echo(f"warning: {w}", err=True)


def split_columns(values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Repeated and comma-separated option values as one tuple: ``--x a,b --x c`` -> ``("a", "b", "c")``."""
    return tuple(p.strip() for v in values for p in v.split(",") if p.strip())
