"""``assistcode code``, ``assistcode runs list|show|delete`` and ``assistcode prompts list|show|render``."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ..codebook import load_codebook
from ..corpus import iter_segments
from ..model import REVIEWED
from ..providers.base import canonical as canonical_provider, factory_of, is_whole_run, settle, trait
from ..project import Project
from ..prompts import Template, codebook_context, get_template, list_templates
from ..runs import store as rs
from ..runs.engine import RunConfig, RunResult, code_project
from .base import cli, open_project, output_option, progress_printer, project_option


def _progress_printer(total_hint: int | None = None):  # type: ignore[no-untyped-def]
    """The progress bar of ``code`` (on stderr): see :func:`assistcode.cli.base.progress_printer`."""
    return progress_printer("coding")


def load_examples(project: Project, source: str, k: int) -> list[dict[str, Any]]:
    """Few-shot examples from the review (``reviewed``) or a JSON file of ``[{"text", "codes"}]``."""
    from ..errors import InputError

    if source == REVIEWED:
        from ..review import reviewed_examples

        examples = reviewed_examples(project.db, k)
        if not examples:
            raise InputError("no settled review decisions to draw examples from", field="--examples",
                             hint="review some items first (`assistcode review`)")
        return examples
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read examples: {exc}", path=path, field="--examples") from exc
    if not isinstance(data, list) or not all(isinstance(e, dict) and "text" in e and "codes" in e for e in data):
        raise InputError("expected a JSON list of {\"text\": ..., \"codes\": [...]}", path=path, field="--examples")
    return data


@cli.command("code")
@click.option("--provider", default="local", show_default=True,
              help="local (offline, in-process) | openai (needs --base-url or an API key) | similarity | trained | "
                   "langchain | mock | a plugin; case-insensitive. Nothing leaves the machine unless you name a remote endpoint.")
@click.option("--model", help="Model name as the endpoint knows it (local: a catalogued model or a .gguf path; "
                              "default: the catalogue's default).")
@click.option("--template", default=None, help="Prompt template name or YAML file (default: deductive; with --provider "
              "local, the best offline method measured in eval/bench: see README, Which method when).")
@click.option("--base-url", "base_urls", multiple=True, metavar="URL",
              help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL, else OpenAI). Repeat it for several servers "
                   "of the same model: calls go to the least loaded, a failing one is rested; the first names the run.")
@click.option("--executor", type=click.Choice(["process", "ray"]), default="process", show_default=True,
              help="process: calls made from this process; ray: by a Ray cluster's workers (pip install "
                   "'assistcode[ray]'), this process still the only one writing the store; similarity and trained "
                   "embed through Ray Data.")
@click.option("--ray-address", help="--executor ray: the cluster (host:port or ray://host:port); default: start a "
                                    "local one.")
@click.option("--api-key-env", default=None, help="Environment variable holding the API key (default: OPENAI_API_KEY).")
@click.option("--chat-model", help="langchain: MODULE:CLASS of the chat model, e.g. langchain_openai:ChatOpenAI.")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Calls in flight at once.")
@click.option("--samples", type=int, default=1, show_default=True, help="Self-consistency: samples per segment (majority vote).")
@click.option("--batch-size", type=int, default=10, show_default=True, help="Segments per call (batch templates).")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="Sampling temperature (0: the most likely reply).")
@click.option("--max-tokens", type=int, default=1024, show_default=True, help="Reply length cap per call.")
@click.option("--seed", type=int, help="Sampling seed, where the endpoint takes one.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per call before it counts as failed and is retried.")
@click.option("--max-attempts", type=int, default=6, show_default=True,
              help="Attempts per call on transient errors (429, 5xx, timeouts); malformed replies have their own 3.")
@click.option("--backoff-cap", type=float, default=30.0, show_default=True,
              help="Longest wait between attempts, seconds; a longer Retry-After is cut to it.")
@click.option("--max-cost", type=float, help="Stop cleanly before spending more than this (USD).")
@click.option("--price", help="IN,OUT: USD per million tokens (overrides the price table).")
@click.option("--context-window", type=int, default=32768, show_default=True, help="The model's context, in tokens: a longer prompt fails its segment.")
@click.option("--codebook", "codebook_file", type=click.Path(path_type=Path), help="Code against this file instead of the current codebook.")
@click.option("--local-only", is_flag=True, help="Refuse any endpoint not on this machine's loopback interface.")
@click.option("--dry-run", is_flag=True, help="Estimate calls, tokens and cost; call nothing.")
@click.option("--batch-api", is_flag=True, help="openai: send the calls through OpenAI's Batch API (half the price, "
              "results within 24 h): uploaded as JSONL files, polled, read back into the run. Killed, the same command "
              "resumes; `assistcode runs status N` shows the batches.")
@click.option("--batch-fallback", type=click.Choice(["resubmit", "sync"]), default=None,
              help="--batch-api: requests that expired or failed for a passing reason are sent again in a new batch "
                   "(resubmit, the default) or called synchronously at the full price (sync).")
@click.option("--no-wait", is_flag=True, help="--batch-api: return once the batches are sent; the same command reads "
              "them back later.")
@click.option("--calibrate-with", help="Per-code scores (similarity, scoring templates): the labels that calibrate "
              "thresholds and probabilities, cross-fitted by document: a coder, `consensus` (the human coders' "
              "majority) or `reviewed` (settled review decisions).")
@click.option("--calibration", type=click.Choice(["none", "contextual", "threshold", "platt", "isotonic"]),
              help="How per-code scores become probabilities and decisions: none | contextual (content-free "
                   "inputs) | threshold | platt | isotonic (these three need --calibrate-with). Default: platt with "
                   "--calibrate-with, else none (similarity).")
@click.option("--train-with", help="trained: the labels to learn from: a coder, `consensus` (the humans' majority) or "
              "`reviewed` (settled review decisions); labelled segments are scored cross-fitted by document.")
@click.option("--features", "features_run", help="trained: also learn from this scoring run's per-code probabilities.")
@click.option("--examples", "examples_from", help="Few-shot examples: `reviewed` (settled review decisions) or a JSON "
              "file of [{text, codes}]. Units used as examples are left out of that run's agreement.")
@click.option("--n-examples", type=int, default=6, show_default=True, help="How many reviewed examples at most.")
@click.option("--context-turns", type=click.IntRange(min=0), default=None,
              help="Preceding turns shown to the model as context, never coded [default: 1 for interviews, 0 else].")
@click.option("--skip-role", "skip_roles", multiple=True, metavar="ROLE",
              help="Leave this role's turns uncoded: interviewer, participant, or none to code every turn (repeatable) "
                   "[default: interviewer for interviews].")
@click.option("--skip-speaker", "skip_speakers", multiple=True, metavar="NAME",
              help="Leave this speaker's turns uncoded (repeatable, case-insensitive).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines) on stdout instead of text.")
@project_option
def code_cmd(provider: str, model: str, template: str | None, base_urls: tuple[str, ...], executor: str,
             ray_address: str | None, api_key_env: str | None,
             chat_model: str | None, concurrency: int, samples: int, batch_size: int, temperature: float,
             max_tokens: int, seed: int | None, timeout: float, max_attempts: int, backoff_cap: float, max_cost: float | None,
             price: str | None, context_window: int, codebook_file: Path | None, local_only: bool, dry_run: bool,
             calibrate_with: str | None, calibration: str | None, train_with: str | None, features_run: str | None,
             examples_from: str | None, n_examples: int, context_turns: int | None, skip_roles: tuple[str, ...],
             skip_speakers: tuple[str, ...], as_json: bool, project_dir: Path, batch_api: bool = False,
             batch_fallback: str | None = None, no_wait: bool = False) -> None:
    """Code the project's segments with a model. Re-running the same command resumes or reports; nothing is paid twice.

    Exit status: 0 every segment coded, 2 bad input, 3 some segments failed, 4 every segment failed (or nothing
    could be sent), 1 the store or the run is busy (another command holds it)."""
    provider = canonical_provider(provider)  # a misspelt provider is named before anything else is checked
    base_url = base_urls[0] if base_urls else None
    if len(base_urls) > 1 and not trait(provider, "pool"):
        raise click.UsageError("--base-url is repeatable with --provider openai only")
    if ray_address and executor != "ray":
        raise click.UsageError("--ray-address goes with --executor ray")
    api_key = os.environ.get(api_key_env) if api_key_env else None
    config = RunConfig(provider=provider, model=model or trait(provider, "default_model") or "",
                       template=template or "deductive", base_url=base_url,
                       api_key=api_key, timeout=timeout, temperature=temperature, max_tokens=max_tokens, seed=seed,
                       concurrency=concurrency, samples=samples, batch_size=batch_size, max_attempts=max_attempts,
                       backoff_cap=backoff_cap,
                       max_cost=max_cost, price=price, context_window=context_window, local_only=local_only,
                       provider_options={"chat_model": chat_model} if chat_model else {}, calibration=calibration,
                       calibrate_with=calibrate_with, train_with=train_with, features=features_run,
                       context_turns=context_turns, skip_roles=tuple(skip_roles) if skip_roles else None,
                       skip_speakers=tuple(skip_speakers), replicas=tuple(base_urls[1:]), executor=executor,
                       ray_address=ray_address)
    if batch_api:
        from ..runs.batch import BatchOptions, waited_line

        config.batch = BatchOptions(fallback=batch_fallback or "resubmit", wait=not no_wait,
                                    notify=None if as_json else waited_line())
    elif batch_fallback or no_wait:
        raise click.UsageError("--batch-fallback and --no-wait go with --batch-api")
    settle(config)  # each provider settles its own part (its endpoint, its labels) before the project is opened
    if is_whole_run(provider):  # similarity, trained: every segment scored at once, no model to call
        _code_whole_run(config, codebook_file, project_dir)
        return
    if not config.model:
        raise click.UsageError("--model is required (the name the endpoint knows the model by)")
    config.validate()  # one line naming the option, before the project is opened
    if n_examples < 1:
        from ..errors import InputError

        raise InputError(f"must be a whole number of 1 or more, not {n_examples!r}", field="--n-examples")
    with open_project(project_dir) as project:
        codebook = load_codebook(codebook_file) if codebook_file else None
        if template is None and trait(provider, "in_process", False):  # the best offline method measured (README: Which method when)
            from ..runs.scoring import best_local_template

            config.template = best_local_template(codebook or project.codebook())
        _warn_if_shadowed(get_template(config.template, project.path))
        if examples_from:
            config.examples = load_examples(project, examples_from, n_examples)
        if dry_run or as_json or batch_api:  # --batch-api: a progress line while it waits, no bar
            result = code_project(project, config, codebook=codebook, dry_run=dry_run)
        else:
            progress, update = _progress_printer()
            with progress:
                result = code_project(project, config, codebook=codebook, progress=update)
    if (config.skip_roles and not skip_roles) or (config.context_turns and context_turns is None):
        click.echo("note: interviews: " + " and ".join(
            [f"the {', '.join(config.skip_roles)} turns left uncoded (--skip-role none codes them)"] * bool(config.skip_roles)
            + [f"{config.context_turns} preceding turn shown as context (--context-turns 0: none)"]
            * bool(config.context_turns)), err=True)
    if as_json:
        click.echo(json.dumps({"run": result.run.coder if result.run else None, "already_finished": result.already_finished,
                               "resumed": result.resumed, "calls": result.calls, "cache_hits": result.cache_hits,
                               "seconds": result.seconds, "stopped": result.stopped, "counts": result.counts,
                               "estimate": result.estimate,
                               **({"batch": result.batch} if getattr(result, "batch", None) else {})}, indent=2))
        _exit_if_all_failed(result)
        return
    if dry_run:
        e = result.estimate or {}
        click.echo(f"Dry run: {e['segments']} segments in {e['calls']} calls ({e['cached_calls']} already cached, free).")
        click.echo(f"  prompt tokens      {e['prompt_tokens']:>10,}   ({e['tokenizer']})")
        click.echo(f"  completion tokens  {e['completion_tokens_typical']:>10,} typical, at most {e['completion_tokens_at_most']:,}")
        cost, most = e["cost_usd_typical"], e["cost_usd_at_most"]
        text = "unknown price: pass --price IN,OUT" if cost is None else f"${cost:.4f} typical, at most ${most:.4f}"
        click.echo(f"  cost               {text}")
        return
    c = result.counts
    if result.already_finished:
        click.echo(f"{result.run.coder}: already finished ({c['ok']} coded, {c['failed']} failed); no call made "
                   f"({result.seconds:.2f} s). Delete it with `assistcode runs delete` to run it again from the cache.")
        _exit_if_all_failed(result)
        return
    warning = ((result.run.manifest or {}).get("calibration") or {}).get("warning") if result.run else None
    if warning:
        click.echo(f"warning: {warning}", err=True)
    verb = "Resumed" if result.resumed else "Ran"
    click.echo(f"{verb} {result.run.coder}: {c['ok']} coded, {c['failed']} failed; {result.calls} calls, "
               f"{result.cache_hits} from cache; {c['prompt_tokens']:,} + {c['completion_tokens']:,} tokens"
               + (f", ${c['cost_usd']:.4f}" if c.get("cost_usd") is not None else "") + f"; {result.seconds:.1f} s.")
    if c["unknown_codes_dropped"] or c["quotes_not_found"]:
        click.echo(f"  {c['unknown_codes_dropped']} invented codes dropped, {c['quotes_not_found']} evidence quotes not found "
                   f"in their segment (raw replies kept: assistcode runs show {result.run.id} lists them, "
                   f"assistcode runs show {result.run.id} --raw SEGMENT prints one).")
    if getattr(result, "batch", None):
        from ..runs.batch import summary_line

        click.echo("  " + summary_line(result.batch))
    if result.stopped:
        click.echo(f"  {result.stopped}. Run the same command to continue.")
    if getattr(result, "batch", None) and result.batch.get("open") and not c["failed"]:
        raise click.exceptions.Exit(3)  # sent, not answered yet: not coded yet, nothing failed
    if c["failed"]:
        click.echo("  Failed segments are listed by `assistcode runs show " + str(result.run.id) + "`.")
    _exit_if_all_failed(result)


def _code_whole_run(config: RunConfig, codebook_file: Path | None, project_dir: Path) -> None:
    """A provider that scores every segment at once (``similarity``, ``trained``): its own run and summary line."""
    runner = factory_of(config.provider)
    with open_project(project_dir) as project:
        codebook = load_codebook(codebook_file) if codebook_file else None
        result, notes = runner.run(project, config, codebook)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo(runner.summary(result, config))


def _exit_if_all_failed(result: RunResult) -> None:
    """Exit status 3 when some segments failed or are not coded yet, 4 when none was coded (every one failed, or
    nothing could be sent), each with one line on stderr; 0 otherwise (see README, Reliability)."""
    status, c = result.exit_status, result.counts or {}
    if status == 0 or result.run is None:
        return
    if status == 4 and not result.stopped:
        click.echo(f"assistcode: error: every segment failed ({c.get('failed', 0)}); the reasons: "
                   f"assistcode runs show {result.run.id}", err=True)
    else:
        click.echo(f"assistcode: {c.get('ok', 0)} of {result.total} segments coded, {c.get('failed', 0)} failed"
                   + (f" ({result.stopped})" if result.stopped else "")
                   + f"; the same command retries those that had no reply; the reasons: assistcode runs show {result.run.id}",
                   err=True)
    raise click.exceptions.Exit(status)


@cli.group()
def runs() -> None:
    """List, show and delete model runs."""


@runs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines) on stdout instead of text.")
@project_option
@output_option
def runs_list(as_json: bool, project_dir: Path) -> None:
    """The project's runs: status and segments coded and failed."""
    with open_project(project_dir) as project:
        rows = [(r, rs.segment_counts(project.db, r.id)) for r in rs.list_runs(project.db)]
    if as_json:
        click.echo(json.dumps([{"id": r.id, "coder": r.coder, "status": r.status, "started_at": r.started_at,
                                "finished_at": r.finished_at, **c} for r, c in rows], indent=2))
        return
    for r, c in rows:
        click.echo(f"{r.id:>4}  {r.coder:40} {rs.shown_status(r):9} ok {c['ok']:>6} failed {c['failed']:>5}  {r.started_at}")


@runs.command("show")
@click.argument("run")
@click.option("--raw", "raw_segment", metavar="SEGMENT", help="Print the model's raw reply for this segment (kept where a "
              "code was dropped, a quote was not found, or the segment failed; listed under raw_kept).")
@project_option
@output_option
def runs_show(run: str, raw_segment: str | None, project_dir: Path) -> None:
    """A run's manifest, its failed segments and the segments whose raw reply was kept (JSON); or one raw reply."""
    from ..errors import InputError

    with open_project(project_dir) as project:
        r = rs.get_run(project.db, run)
        if raw_segment is not None:
            found = rs.raw_reply(project.db, r.id, raw_segment)
            if found is None:
                raise InputError(f"run {r.id} has no segment {raw_segment!r}", field="--raw",
                                 hint="the segments with a kept reply are listed under raw_kept by `assistcode runs show "
                                      f"{r.id}`")
            if found[1] is None:
                raise InputError(f"no raw reply kept for {raw_segment!r} in run {r.id} ({found[0]}: nothing was dropped)",
                                 field="--raw", hint=f"its codes: assistcode export annotations --coders {r.coder}")
            click.echo(found[1])
            return
        failed = rs.failed_segments(project.db, r.id)
        kept = rs.segments_with_raw(project.db, r.id)
    click.echo(json.dumps({"id": r.id, "coder": r.coder, "status": r.status, "started_at": r.started_at,
                           "finished_at": r.finished_at, "manifest": r.manifest,
                           "failed": [{"segment_id": s, "reason": why} for s, why in failed],
                           "raw_kept": kept}, indent=2))


@runs.command("status")
@click.argument("run")
@click.option("--offline", is_flag=True, help="Show what the store holds; ask no endpoint about open batches.")
@click.option("--api-key-env", default=None, help="Environment variable holding the API key (default: OPENAI_API_KEY).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines) on stdout instead of text.")
@project_option
@output_option
def runs_status(run: str, offline: bool, api_key_env: str | None, as_json: bool, project_dir: Path) -> None:
    """A run's progress: segments coded and failed, and its Batch API batches (asked about at their endpoint)."""
    from ..runs.batch import run_status, status_lines

    with open_project(project_dir) as project:
        r = rs.get_run(project.db, run)
        state = run_status(project.db, r, refresh=not offline, local_only=bool(project.config().get("local_only")),
                           api_key=os.environ.get(api_key_env) if api_key_env else None)
    if as_json:
        click.echo(json.dumps(state, indent=2))
        return
    for line in status_lines(state):
        click.echo(line)


@runs.command("delete")
@click.argument("run")
@project_option
def runs_delete(run: str, project_dir: Path) -> None:
    """Delete a run and its proposals (the call cache stays)."""
    with open_project(project_dir) as project:
        r = rs.delete_run(project.db, run)
    click.echo(f"Deleted {r.coder}.")


@cli.group()
def prompts() -> None:
    """List, show and render prompt templates."""


@prompts.command("list")
@project_option
def prompts_list(project_dir: Path) -> None:
    """Shipped and project templates: name, version, kind, hash."""
    for t in list_templates(project_dir if (project_dir / "assistcode.db").exists() else None):
        click.echo(f"{t.name:18} v{t.version}  {t.output:9} {t.hash[:12]}  {t.spec.description.split('.')[0]}")
        _warn_if_shadowed(t)


def _warn_if_shadowed(t: Template) -> None:
    """Say which file a template name resolved to when a project template hides a shipped one."""
    if t.shadowing:
        click.echo(f"warning: {t.shadowing}", err=True)


@prompts.command("show")
@click.argument("name")
def prompts_show(name: str) -> None:
    """Print a template's source."""
    t = get_template(name)
    click.echo(t.source)


@prompts.command("render")
@click.argument("name")
@click.option("--segment", "segment_id", help="Segment id (default: the first).")
@project_option
@output_option
def prompts_render(name: str, segment_id: str | None, project_dir: Path) -> None:
    """Render a template on one of the project's segments, exactly as a model would see it."""
    with open_project(project_dir) as project:
        t = get_template(name, project.path)
        _warn_if_shadowed(t)
        codebook = project.codebook()
        segs = [s for s in iter_segments(project.db) if segment_id is None or s.id == segment_id]
        if not segs:
            raise click.ClickException(f"no segment {segment_id!r}")
        seg = segs[0]
        seg_ctx = {"id": seg.id, "text": seg.text, "speaker": seg.speaker}
        rendered = t.render(codes=codebook_context(codebook), codebook_name=codebook.name, examples=[],
                            segment=seg_ctx, segments=[seg_ctx])
    click.echo(rendered.text)
    click.echo(f"-- {t.name} v{t.version}, template {t.hash[:12]}, rendered {rendered.hash[:12]}", err=True)
