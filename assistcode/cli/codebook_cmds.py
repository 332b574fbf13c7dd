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


@codebook.command()
@click.argument("reference")
@click.argument("other")
@click.option("--codes-column", default="human_codes", show_default=True, help="codes:FILE: the column of ;-separated codes.")
@click.option("--text-column", help="codes:FILE: the column holding each unit's text, to line units up with a run's.")
@click.option("--threshold", type=float, help="Similarity a pair needs to match (default: 0.55 with embeddings, 0.6 on names).")
@click.option("--min-units", type=int, default=1, show_default=True, help="Coverage counts reference codes applied to at least this many units.")
@click.option("--embeddings/--no-embeddings", default=None, help="Judge meaning by MiniLM embeddings (default: when the similarity extra is installed).")
@click.option("--html", "html_path", type=click.Path(path_type=Path), help="Also write the matched pairs side by side as HTML.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (coverage, precision, matches, unmatched, near, agreement).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the report (text or JSON) to this file.")
@project_option
def compare(reference: str, other: str, codes_column: str, text_column: str | None, threshold: float | None,
            min_units: int, embeddings: bool | None, html_path: Path | None, as_json: bool, output: Path | None,
            project_dir: Path) -> None:
    """Set two codebooks against each other: REFERENCE (e.g. the researchers') and OTHER (e.g. a model's).

    Each is a codebook file (YAML, CSV, QDC), version:HASH, run:N (an inductive run's proposals, grouped) or
    codes:FILE (a table of free-text codes, one row per unit). Prints coverage, precision, the matches, what each
    side has alone and, where both coded the same units, alpha after mapping.
    """
    import json as jsonlib

    from ..inductive import compare_codesets, load_operand
    from ..inductive.compare import render_html, render_text
    from ..project import Project
    from ..store import DB_NAME
    from ..exports import atomic_write

    if min_units < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--min-units")
    project = Project(project_dir) if (project_dir / DB_NAME).exists() else None
    try:
        a = load_operand(reference, project, codes_column=codes_column, text_column=text_column)
        b = load_operand(other, project, codes_column=codes_column, text_column=text_column)
        result = compare_codesets(a, b, threshold=threshold, embeddings=embeddings, min_units=min_units)
    finally:
        if project is not None:
            project.close()
    text = jsonlib.dumps(result.as_dict(), indent=2, default=str) if as_json else render_text(result)
    if html_path is not None:
        with atomic_write(html_path) as fh:
            fh.write(render_html(result))
    if output is not None:
        with atomic_write(output) as fh:
            fh.write(text + "\n")
        click.echo(f"Wrote {output}", err=True)
    else:
        click.echo(text)


@codebook.command()
@click.argument("run")
@click.option("--distance", type=float, default=0.2, show_default=True, help="Cosine distance that cuts the clustering (embeddings): 0.2 merges near-paraphrases only; higher gives fewer, broader codes.")
@click.option("--embeddings/--no-embeddings", default=None, help="Group by meaning (MiniLM) or by the words of the names.")
@click.option("--rounds", type=int, default=1, show_default=True,
              help="Constant comparison: code the run's segments again N-1 times with the growing codebook "
                   "(template inductive-constant: apply its codes by name, propose new ones).")
@click.option("--names", type=click.Choice(["member", "model"]), default="member", show_default=True,
              help="Who names each group: its most frequent or central member, or the model from all its members.")
@click.option("--provider", help="Later rounds and --names model: the provider (default: the run's).")
@click.option("--model", help="Later rounds and --names model: the model (default: the run's).")
@click.option("--base-url", help="Later rounds and --names model: an OpenAI-compatible server's URL.")
@click.option("--carry-min", type=int, default=1, show_default=True,
              help="Later rounds: codes gathering fewer proposals are not shown to the model (they stay in the codebook).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the candidate codebook as YAML (members as examples).")
@click.option("--import", "do_import", is_flag=True, help="Make the candidate codebook the project's current codebook version.")
@click.option("--json", "as_json", is_flag=True, help="Print the groups with their member proposals as JSON.")
@project_option
def induce(run: str, distance: float, embeddings: bool | None, rounds: int, names: str, provider: str | None,
           model: str | None, base_url: str | None, carry_min: int, output: Path | None, do_import: bool,
           as_json: bool, project_dir: Path) -> None:
    """Group an inductive run's proposed codes into a candidate codebook; each code keeps its member proposals.

    With --rounds N, the run's segments are coded again with the codebook so far, N-1 times (constant comparison);
    with --names model, the model names and defines each group from its members.
    """
    import json as jsonlib

    from ..codebook import dump_yaml
    from ..exports import atomic_write
    from ..inductive.rounds import constant_comparison, to_codebook
    from ..runs.engine import RunConfig
    from ..runs.store import get_run

    if not 0 < distance <= 2:
        raise click.BadParameter("a cosine distance in (0, 2]", param_hint="--distance")
    if rounds < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--rounds")
    if carry_min < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--carry-min")

    def progress(state: dict) -> None:
        if state.get("phase") == "round":
            click.echo(f"round {state['round']}: coding with {state['codes']} codes", err=True)
        elif state.get("done") is not None and state["done"] % 25 == 0:
            click.echo(f"  {state['done']}/{state['total']} segments", err=True)

    with open_project(project_dir) as project:
        r = get_run(project.db, run)
        described = r.manifest.get("provider") or {}
        params = r.manifest.get("parameters") or {}
        config = RunConfig(provider=provider or described.get("provider") or "mock",
                           model=model or described.get("model") or "mock", base_url=base_url,
                           max_tokens=params.get("max_tokens") or 1024, concurrency=params.get("concurrency") or 1)
        config.validate()
        namer = None
        if names == "model":
            from ..inductive.naming import Namer
            from ..providers.base import build, check, settle

            settle(config)  # the provider's own endpoint and refusals, as `code` applies them
            check(config)
            namer = Namer(build(config), config.model, project.cache_dir / "induce-names.json")
        result = constant_comparison(project, run, rounds, distance=distance, embeddings=embeddings, namer=namer,
                                     carry_min=carry_min, config=config if rounds > 1 else None, progress=progress)
        induced = result.codes
        cb = to_codebook(induced, f"induced from run {r.id}" + (f" in {rounds} rounds" if rounds > 1 else ""))
        if do_import:
            project.import_codebook(cb)
    if as_json:
        click.echo(jsonlib.dumps({"codes": [{"id": c.id, "name": c.name, "definition": c.definition,
                                             "members": [{"candidate": m.id, "name": m.name, "segment_id": m.segment_id}
                                                         for m in c.members]} for c in induced],
                                  "rounds": [x.as_dict() for x in result.rounds]}, indent=2))
    else:
        for c in induced:
            click.echo(f"{c.id} ({len(c.members)} proposals, {len(c.segments)} segments): {c.definition[:100]}")
            others = sorted({m.name for m in c.members} - {c.name})
            if others:
                click.echo("    also: " + "; ".join(others[:8]) + (" ..." if len(others) > 8 else ""))
    if output is not None:
        with atomic_write(output) as fh:
            fh.write(dump_yaml(cb))
        click.echo(f"Wrote {output}", err=True)
    for x in result.rounds:
        naming = f"; {x.naming['groups_named']} named by the model" if x.naming else ""
        click.echo(f"round {x.number} (run {x.run_id}): {x.proposals} proposals, {x.applied} applied a code by name, "
                   f"{x.new_codes} new codes -> {x.codes} codes{naming}", err=True)
    click.echo(f"{len(induced)} candidate codes" + (" (imported as the current codebook)" if do_import else ""), err=True)
