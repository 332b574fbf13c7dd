"""The root command group and options shared by commands."""
from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def progress_printer(label: str = "coding"):  # type: ignore[no-untyped-def]
    """A progress bar on stderr (never in piped stdout) for the engine's updates: (rich Progress, update callback).
    Before the first reply it says so (a local model loads first: tens of seconds on a laptop)."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    console = Console(stderr=True)
    if not console.is_terminal:
        console = Console(stderr=True, width=200)  # a log file: whole lines, not 80 columns
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}/s"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        TextColumn("tok {task.fields[tokens]} fail {task.fields[failed]} calls {task.fields[calls]} "
                                   "cache {task.fields[cache]} ${task.fields[spent]}"),
                        console=console, transient=False,
                        # printing while the bar runs: on a terminal above the bar; piped, straight to stdout
                        redirect_stdout=sys.stdout.isatty(), redirect_stderr=False)
    state: dict[str, Any] = {"task": None, "label": None}

    def update(s: dict[str, Any]) -> None:
        name = s.get("label") or label
        if state["task"] is None or state["label"] != name:
            if state["task"] is not None:
                progress.stop_task(state["task"])
            state["task"] = progress.add_task(name, total=s["total"], completed=s["done"], rate="-", calls=0, cache=0,
                                              spent="0", tokens="0", failed=0)
            state["label"], state["start"], state["t0"] = name, s["done"], time.perf_counter()
        starting = s.get("phase") == "starting"
        elapsed = max(time.perf_counter() - state["t0"], 1e-9)
        progress.update(state["task"], completed=s["done"],
                        description=f"{name}: waiting for the first reply (a local model loads first)" if starting else name,
                        rate="-" if starting else f"{(s['done'] - state['start']) / elapsed:.1f}",
                        calls=s.get("calls", 0), cache=s.get("cache_hits", 0), spent=f"{s.get('spent', 0):.4f}",
                        tokens=f"{s.get('tokens', 0):,.0f}", failed=s.get("failed", 0))

    return progress, update


def output_option(f: Any) -> Any:
    """``-o/--output FILE``: what the command prints on stdout goes to FILE instead (written atomically, only when
    the command succeeds); messages stay on stderr."""
    import contextlib
    import functools

    @functools.wraps(f)
    def wrapper(*args: Any, output: Path | None = None, **kwargs: Any) -> Any:
        if output is None:
            return f(*args, **kwargs)
        from ..exports import atomic_write

        with atomic_write(output, encoding="utf-8") as fh, contextlib.redirect_stdout(fh):
            result = f(*args, **kwargs)
        click.echo(f"Wrote {output}", err=True)
        return result

    return click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                        help="Write what would be printed to this file instead.")(wrapper)


def split_columns(values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Repeated and comma-separated option values as one tuple: ``--x a,b --x c`` -> ``("a", "b", "c")``."""
    return tuple(p.strip() for v in values for p in v.split(",") if p.strip())
