"""``assistcode review`` (the full-screen reviewer) and its commands for scripts: queue, next, decide, undo,
status, export, merge, release."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .. import review as rv
from .base import cli, open_project, output_option, project_option

reviewer_option = click.option("--reviewer", envvar="ASSISTCODE_REVIEWER",
                               help="Who is reviewing (default: $ASSISTCODE_REVIEWER).")


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


@cli.group("review", invoke_without_command=True)
@reviewer_option
@click.option("--blind", is_flag=True, help="Code each item before seeing the suggestion, then decide.")
@click.option("--adjudicate", is_flag=True, help="Settle the items on which reviewers disagreed.")
@click.option("--context", type=int, default=2, show_default=True, help="Segments shown before and after.")
@project_option
@click.pass_context
def review_group(ctx: click.Context, reviewer: str | None, blind: bool, adjudicate: bool, context: int,
                 project_dir: Path) -> None:
    """Review suggested codes at the keyboard (with no subcommand), or script the review with the subcommands."""
    if ctx.invoked_subcommand is not None:
        return
    import sys

    from ..errors import InputError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InputError("the full-screen reviewer needs a terminal (input or output is a pipe or a file)",
                         hint="in a script or a notebook: assistcode review next --json, then assistcode review decide")
    from ..review.tui import run_review

    name = rv.reviewer_name(reviewer)
    with open_project(project_dir) as project:
        n = run_review(project, name, blind=blind, adjudicate=adjudicate, context=context)
        left = rv.open_items(project.db)
    click.echo(f"{n} decisions saved; {left} items open. Come back with the same command; "
               "`assistcode review status` for the totals.")


@review_group.command("queue")
@click.option("--run", "runs", multiple=True, required=True, help="Run (number or coder name) whose suggestions to queue.")
@click.option("--priority", default=",".join(rv.SIGNALS), show_default=True,
              help="Signals that put an item first: " + ", ".join(rv.SIGNALS) + "; and, asked for by name, "
                   "uncertainty (runs with per-code probabilities: the least sure first).")
@click.option("--audit", type=float, default=0.1, show_default=True,
              help="Share of the confident items drawn at random for review, to estimate their error rate.")
@click.option("--double", type=float, default=0.0, show_default=True, help="Share of items that two reviewers review.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random audit sample.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines) on stdout instead of text.")
@project_option
def queue_cmd(runs: tuple[str, ...], priority: str, audit: float, double: float, seed: int, as_json: bool,
              project_dir: Path) -> None:
    """Queue a run's suggestions for review (each segment once; queuing again adds nothing)."""
    signals = [s.strip() for s in priority.split(",") if s.strip()]
    with open_project(project_dir) as project:
        reports = [rv.enqueue(project.db, r, signals=signals, audit=audit, double=double, seed=seed) for r in runs]
    if as_json:
        _echo_json([r.__dict__ for r in reports])
        return
    for r in reports:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r.by_reason.items(), key=lambda kv: -kv[1]))
        click.echo(f"{r.run}: queued {r.queued} ({r.already_queued} already queued); flagged by {reasons or 'nothing'}; "
                   f"{r.confident} confident, {r.audit} of them drawn for the audit; {r.double} for double review")


@review_group.command("next")
@reviewer_option
@click.option("--adjudicate", is_flag=True, help="The next item waiting for adjudication.")
@click.option("--lease-minutes", type=float, default=30, show_default=True, help="How long the item stays yours.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines) on stdout instead of text.")
@project_option
def next_cmd(reviewer: str | None, adjudicate: bool, lease_minutes: float, as_json: bool, project_dir: Path) -> None:
    """Claim the next item and print it (the same item again until you decide it or the lease ends)."""
    name = rv.reviewer_name(reviewer)
    with open_project(project_dir) as project:
        item = rv.claim(project.db, name, lease_seconds=lease_minutes * 60, adjudicate=adjudicate)
        if item is not None:
            rv.describe(project.db, item, project.codebook(), reviewer=name)
    if item is None:
        if as_json:
            _echo_json(None)
        else:
            click.echo("nothing left to review for " + name)
        return
    if as_json:
        _echo_json(item.as_dict())
        return
    click.echo(f"item {item.uid}  ({item.document}; {', '.join(item.reasons) or 'confident'})")
    for t in item.before:
        click.echo(f"    {t}")
    click.echo(f">>> {item.text}")
    for t in item.after:
        click.echo(f"    {t}")
    click.echo("suggested: " + (", ".join(item.proposed) or "no code"))
    for s in item.suggestions:
        conf = f" [{s['confidence']:.2f}]" if s["confidence"] is not None else ""
        click.echo(f"  {s['code']}{conf}: {s['rationale'] or ''}" + (f" | \"{s['evidence']}\"" if s["evidence"] else ""))


@review_group.command("decide")
@click.argument("item")
@click.argument("action", type=click.Choice(["accept", "reject", "edit", "skip", "adjudicate"]))
@click.option("--codes", help="edit/adjudicate: the full code set, comma-separated ('' for none).")
@click.option("--memo", help="A note kept with the decision.")
@reviewer_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines) on stdout instead of text.")
@project_option
def decide_cmd(item: str, action: str, codes: str | None, memo: str | None, reviewer: str | None, as_json: bool,
               project_dir: Path) -> None:
    """Decide an item: accept or reject the suggestion, or edit the code set."""
    name = rv.reviewer_name(reviewer)
    code_list = None if codes is None else [c.strip() for c in codes.split(",") if c.strip()]
    with open_project(project_dir) as project:
        rec = rv.decide(project.db, item, name, action, codes=code_list, memo=memo, codebook=project.codebook(),
                        shown={"screen": "cli"})
    if as_json:
        _echo_json(rec.as_dict())
    else:
        click.echo(f"saved: {action} on {rec.item_id} -> {', '.join(rec.codes_after or []) or 'no code'} "
                   f"(item {rec.status})")


@review_group.command("undo")
@reviewer_option
@project_option
def undo_cmd(reviewer: str | None, project_dir: Path) -> None:
    """Take back your latest decision (recorded as a new entry; the item is yours again)."""
    name = rv.reviewer_name(reviewer)
    with open_project(project_dir) as project:
        rec = rv.undo(project.db, name)
    click.echo("nothing to undo" if rec is None else f"undid your {rec.undone_action} on {rec.item_id}")


@review_group.command("status")
@reviewer_option
@click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap resamples for the intervals.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines) on stdout instead of text.")
@project_option
@output_option
def status_cmd(reviewer: str | None, n_boot: int, as_json: bool, project_dir: Path) -> None:
    """Progress, pace, the audit estimate of errors among unreviewed items, and agreement between reviewers."""
    with open_project(project_dir) as project:
        st = rv.status(project.db, reviewer, n_boot=n_boot)
    if as_json:
        _echo_json(st)
        return
    click.echo(f"{st['items']} items: {st['open']} open, {st['done']} done, {st['adjudicate']} to adjudicate, "
               f"{st['leased_now']} claimed now")
    for r, counts in st["reviewers"].items():
        click.echo(f"  {r}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if st["pace_per_hour"]:
        click.echo(f"pace: {st['pace_per_hour']:.0f} decisions/hour")
    a = st["audit"]
    if a["reviewed"]:
        click.echo(f"audit: {a['changed']} of {a['reviewed']} confident items changed by the reviewer = "
                   f"{a['error_rate']:.1%} [{a['low']:.1%}, {a['high']:.1%}]; about "
                   f"{a['expected_errors_unreviewed']:.0f} errors expected among {a['confident_unreviewed']} unreviewed "
                   "confident items")
    elif a["sampled"]:
        click.echo(f"audit: {a['sampled']} confident items drawn, none reviewed yet")
    ag = st["agreement_between_reviewers"]
    if ag and ag.get("overall"):
        for comp in ag["overall"]:
            e = comp["estimates"][0]
            if e.get("value") is not None:
                click.echo(f"reviewers ({comp['comparison']}), {ag['units']} items: {e['statistic']} {e['value']:.3f} "
                           f"[{e.get('low') or float('nan'):.3f}, {e.get('high') or float('nan'):.3f}]")
    elif ag:
        click.echo(f"reviewers: {ag.get('note')}")


@review_group.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write the decisions to.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True,
              help="File format of the decisions.")
@project_option
def export_cmd(output: Path, fmt: str, project_dir: Path) -> None:
    """Write the audit trail (every decision, undo included) for a journal, or for `review merge` elsewhere."""
    with open_project(project_dir) as project:
        n = rv.export_log(project.db, output, fmt)
    click.echo(f"{output}: {n} decisions")


@review_group.command("merge")
@click.argument("logs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@project_option
def merge_cmd(logs: tuple[Path, ...], project_dir: Path) -> None:
    """Add the decisions from other machines' exported logs (JSON lines); every decision is kept, conflicts go to
    adjudication."""
    with open_project(project_dir) as project:
        for log in logs:
            r = rv.merge_log(project.db, log)
            click.echo(f"{log}: {r['added']} decisions added, {r['already_here']} already here, {r['skipped']} skipped; "
                       f"{r['waiting_for_adjudication']} items wait for adjudication")
            for why in r["skipped_why"]:
                click.echo(f"  skipped: {why}", err=True)


@review_group.command("release")
@reviewer_option
@project_option
def release_cmd(reviewer: str | None, project_dir: Path) -> None:
    """Give back the items you hold, so others can take them now."""
    name = rv.reviewer_name(reviewer)
    with open_project(project_dir) as project:
        n = rv.release(project.db, name)
    click.echo(f"released {n} items")
