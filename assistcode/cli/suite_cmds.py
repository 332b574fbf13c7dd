"""``assistcode suite run|report|history``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .. import suites
from ..report import to_terminal
from .base import cli

suite_project = click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path),
                             help="Where the suite's project lives (default: .assistcode/suites/NAME).")


@cli.group("suite")
def suite_group() -> None:
    """Evaluation suites: configurations compared on a gold standard (eval/suites/*.yaml)."""


@suite_group.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The folder of the data set the suite prepares its gold standard from (e.g. ConvAbuse; default: "
                   "the suite's environment variable, such as ASSISTCODE_CONVABUSE).")
@suite_project
def run_cmd(file: Path, data: Path | None, project_dir: Path | None) -> None:
    """Run every configuration of the suite (cached and resumable: a finished suite makes no model call). Progress,
    per configuration and per segment, goes to stderr; the summary to stdout."""
    from ..inductive.suite import is_inductive
    from .base import progress_printer

    if is_inductive(file):  # kind: inductive (assistcode/inductive/suite.py): induce-compare, reported at once
        from ..inductive.suite import load_inductive_suite, print_summary, run_inductive_suite

        result = run_inductive_suite(load_inductive_suite(file), file, project_dir, data,
                                     echo=lambda m: click.echo(m, err=True))
        print_summary(result, click.echo)
        return
    suite = suites.load_suite(file)
    progress, update = progress_printer("coding")
    with progress:
        runs = suites.run_suite(suite, project_dir, echo=lambda m: click.echo(m, err=True), progress=update, data=data)
    calls = sum(r.calls for r in runs)
    click.echo(f"Suite {suite.name}: {len(runs)} configurations, {calls} model calls now. "
               f"Next: assistcode suite report {file}")
    # exit status as for `code` (README, Reliability): 3 some segments failed, 4 none coded; a re-run retries them
    ok, failed = (sum(r.counts.get(k, 0) for r in runs) for k in ("ok", "failed"))
    if failed:
        click.echo(f"assistcode: {failed} segments failed across the configurations; run the same command to retry "
                   "them (assistcode runs show RUN lists the reasons)", err=True)
        raise click.exceptions.Exit(3 if ok else 4)


@suite_group.command("report")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.md, report.html, report.json (default: the suite's project folder).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines) on stdout instead of text.")
@suite_project
def report_cmd(file: Path, output: Path | None, as_json: bool, project_dir: Path | None) -> None:
    """Compare the configurations: agreement with intervals, paired differences, ceiling, floor, cost."""
    from ..inductive.suite import is_inductive
    from ..suites.render import tables, write
    from ..suites.runner import default_project_dir

    if is_inductive(file):  # its report was written by `suite run`
        from ..errors import InputError
        from ..inductive.suite import load_inductive_suite, print_summary

        spec = load_inductive_suite(file)
        stored = (Path(project_dir) if project_dir else Path(".assistcode") / "suites" / spec.name) / "report.json"
        if not stored.exists():
            raise InputError(f"no report of suite {spec.name!r} yet", hint=f"assistcode suite run {file} --data DIR")
        result = json.loads(stored.read_text(encoding="utf-8"))
        click.echo(json.dumps(result, indent=2)) if as_json else print_summary(result, click.echo)
        return
    suite = suites.load_suite(file)
    folder = Path(project_dir) if project_dir else default_project_dir(suite)
    with suites.open_suite_project(suite, folder, echo=lambda m: click.echo(m, err=True)) as project:
        result = suites.compare(project, suite)
        suites.record(project, suite, result)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    else:
        to_terminal(tables(result), [])
    for path in write(result, output or folder):
        click.echo(f"Wrote {path}", err=True)


@suite_group.command("history")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines) on stdout instead of text.")
@suite_project
def history_cmd(file: Path, as_json: bool, project_dir: Path | None) -> None:
    """How agreement moved across reports as the codebook and the prompts were revised."""
    from ..report.tables import Table, num

    suite = suites.load_suite(file)
    with suites.open_suite_project(suite, project_dir, echo=lambda m: click.echo(m, err=True)) as project:
        rows = suites.history(project, suite.name)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    labels = list(dict.fromkeys(label for r in rows for label in r["alpha"]))
    table = Table(f"Suite {suite.name}: alpha against the gold, report by report",
                  ["#", "when", "codebook", "suite", *labels],
                  [[str(r["id"]), r["created_at"], r["codebook"]["hash"][:10], r["suite_hash"][:10],
                    *(num(r["alpha"].get(label)) for label in labels)] for r in rows],
                  ["templates and their hashes are in --json"])
    to_terminal([table], [])
