"""Inductive suites (``kind: inductive``): open coders build codebooks from a table of answers and each is set
against the researchers' own free-text codes of the same answers, through the whole induce-compare loop.

    assistcode suite run eval/suites/games-as-art.yaml --data DIR      # or the suite's environment variable

The suite names the data file inside DIR (never a path outside the repository), its text and codes columns, the
models (each: an ``inductive`` run, ``codebook induce`` with member or model names, optionally rounds of constant
comparison) and the floor (``embedding-clusters``: the answers' sentences clustered by meaning, no model). The
project (default ``.assistcode/suites/NAME``) keeps every run, so a second ``suite run`` makes no model call. The
report (``report.json``, ``report.md`` in the project folder) gives, per coder: coverage of the researchers' codes
applied to ``min_units`` answers or more, precision, mapped alpha with its interval, every unmatched code, and
seconds and tokens per answer.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import safeyaml
from ..errors import InputError, from_validation


class DataSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str
    """The table's file name inside the data folder."""
    text_column: str
    codes_column: str = "human_codes"
    separator: str = ";"
    encoding: str | None = None
    env: str | None = None
    """The environment variable naming the data folder when --data is not given."""
    source: str = ""
    """Where to get the data (shown when it is missing)."""


class CoderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str
    model: str
    base_url: str | None = None
    template: str = "inductive"
    max_tokens: int = Field(400, ge=1)
    names: Literal["member", "model"] = "member"
    rounds: int = Field(1, ge=1)
    options: dict[str, Any] = {}


class InductiveSuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["inductive"]
    description: str = ""
    data: DataSpec
    coders: list[CoderSpec] = []
    floor: Literal["embedding-clusters"] | None = "embedding-clusters"
    min_units: int = Field(3, ge=1)
    distance: float = Field(0.2, gt=0, le=2)
    embeddings: bool | None = None
    """Group and match by MiniLM meaning (default: when the similarity extra is installed)."""
    n_boot: int = Field(1000, ge=0)


def is_inductive(path: str | Path) -> bool:
    """Whether a suite file declares ``kind: inductive`` (read cheaply; a broken file is the loader's to report)."""
    try:
        data, _ = safeyaml.load_file(Path(path))
    except InputError:
        return False
    return isinstance(data, dict) and data.get("kind") == "inductive"


def load_inductive_suite(path: str | Path) -> InductiveSuiteSpec:
    path = Path(path)
    data, _ = safeyaml.load_file(path)
    try:
        return InductiveSuiteSpec.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, path) from exc


def _table(spec: InductiveSuiteSpec, data_dir: Path | None, suite_path: Path) -> Path:
    folder = data_dir or (Path(os.environ[spec.data.env]) if spec.data.env and os.environ.get(spec.data.env) else None)
    if folder is None:
        raise InputError(f"suite {spec.name!r} needs its data: give --data DIR" +
                         (f" (or {spec.data.env}=DIR)" if spec.data.env else "") + f", DIR holding {spec.data.file}",
                         path=suite_path, hint=spec.data.source or None)
    table = Path(folder) / spec.data.file
    if not table.is_file():
        raise InputError(f"no {spec.data.file} in {folder}", path=suite_path, field="data.file",
                         hint=spec.data.source or None)
    return table


def _answers(table: Path, spec: InductiveSuiteSpec) -> list[str]:
    from ..textio import decode_bytes

    text = decode_bytes(table.read_bytes(), path=table, encoding=spec.data.encoding).text
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if spec.data.text_column not in (reader.fieldnames or []):
        raise InputError(f"no column {spec.data.text_column!r}", path=table, field="data.text_column",
                         hint="columns: " + ", ".join(reader.fieldnames or []))
    return [r[spec.data.text_column] for r in reader if (r[spec.data.text_column] or "").strip()]


def answers_project(folder: Path, answers: list[str]) -> Any:
    """The answers imported as a corpus (a document each, paragraphs as segments) with an empty codebook, in
    ``folder``; the project there when it exists (a resumed or repeated run)."""
    from ..model import Codebook
    from ..project import Project
    from ..readers import ReadOptions

    if (folder / "assistcode.db").exists():
        return Project(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "answers.csv"
    with table.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["answer_id", "answer"])
        w.writerows([i, a] for i, a in enumerate(answers))
    project = Project.init(folder)
    project.import_corpus([table], segmenter="paragraph", options=ReadOptions(text_column="answer",
                                                                              id_columns=("answer_id",)))
    project.import_codebook(Codebook(name="open coding (empty)", codes=()))
    return project


def comparison_summary(c: Any, min_units: int) -> dict[str, Any]:
    """What a report keeps of a :class:`~assistcode.inductive.compare.Comparison`: the figures with their intervals,
    the matches, and every unmatched code (the researchers' ones used in ``min_units`` answers or more)."""
    return {"coverage": c.coverage, "coverage_interval": c.coverage_interval, "precision": c.precision,
            "precision_interval": c.precision_interval, "agreement": c.agreement, "counts": c.counts,
            "method": c.method, "threshold": c.threshold,
            "matches": [{"reference": m.reference_name, "other": m.other_name, "score": m.score} for m in c.matches],
            "unmatched_reference": [u["name"] for u in c.unmatched["reference"] if (u["units"] or 0) >= min_units],
            "unmatched_other": [u["name"] for u in c.unmatched["other"]]}


def run_inductive_suite(spec: InductiveSuiteSpec, suite_path: Path, project_dir: Path | None = None,
                        data_dir: Path | None = None, echo: Callable[[str], None] = print,
                        progress: Callable[[dict[str, Any]], None] | None = None,
                        provider: Any = None) -> dict[str, Any]:
    """Run every coder and the floor, compare each with the researchers' codes, write the report; its dict."""
    from ..runs.engine import RunConfig, code_project
    from .codeset import CodeEntry, CodeSet, induced_codeset, read_code_table, unit_key
    from .compare import compare_codesets
    from .induce import induce_from_texts
    from .rounds import constant_comparison

    table = _table(spec, data_dir, suite_path)
    human = read_code_table(table, spec.data.codes_column, spec.data.text_column, spec.data.separator,
                            spec.data.encoding)
    answers = _answers(table, spec)
    folder = Path(project_dir) if project_dir else Path(".assistcode") / "suites" / spec.name
    result: dict[str, Any] = {"suite": spec.name, "data": spec.data.file, "answers": len(answers),
                              "reference": {"codes": len(human.codes), "notes": human.notes,
                                            "min_units": spec.min_units}, "coders": {}}
    cmp = dict(min_units=spec.min_units, n_boot=spec.n_boot, embeddings=spec.embeddings)
    project = answers_project(folder, answers)
    try:
        for i, c in enumerate(spec.coders, 1):
            label = f"{c.model} / {c.template}, {c.names} names" + (f", {c.rounds} rounds" if c.rounds > 1 else "")
            echo(f"- [{i}/{len(spec.coders) + bool(spec.floor)}] {label}")
            config = RunConfig(provider=c.provider, model=c.model, base_url=c.base_url, template=c.template,
                               max_tokens=c.max_tokens, concurrency=1, provider_options=dict(c.options))
            t0 = time.perf_counter()
            run = code_project(project, config, progress=progress, provider=provider)
            seconds = time.perf_counter() - t0
            echo(f"  {run.counts.get('ok', 0)} coded, {run.counts.get('failed', 0)} failed; "
                 + ("already done, no call" if run.already_finished else f"{run.calls} calls, {seconds:.1f} s"))
            namer = None
            if c.names == "model":
                from ..providers.base import build, check, settle
                from .naming import Namer

                naming = RunConfig(provider=c.provider, model=c.model, base_url=c.base_url,
                                   provider_options=dict(c.options))
                settle(naming)  # the same endpoint rules as the coding run
                check(naming)
                namer = Namer(provider or build(naming),
                              c.model, project.cache_dir / "induce-names.json")
            later = RunConfig(provider=c.provider, model=c.model, base_url=c.base_url, max_tokens=c.max_tokens,
                              concurrency=1, provider_options=dict(c.options))
            induced = constant_comparison(project, str(run.run.id), c.rounds, distance=spec.distance,
                                          embeddings=spec.embeddings, namer=namer, config=later, provider=provider)
            model_set = induced_codeset(project, induced.last_run, induced.codes, label, [])
            tokens = sum(project.db.execute("SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) FROM "
                                            "run_segments WHERE run_id = ?", (x.run_id,)).fetchone()[0]
                         for x in induced.rounds)
            result["coders"][label] = {
                **comparison_summary(compare_codesets(human, model_set, **cmp), spec.min_units),
                "run": run.run.id, "rounds": [x.as_dict() for x in induced.rounds],
                "tokens_per_answer": tokens / max(len(answers), 1),
                "seconds_per_answer": seconds / run.calls if run.calls and not run.cache_hits else None,
                "seconds_note": _seconds_note(run.calls, run.cache_hits, seconds)}
        if spec.floor:
            echo(f"- [{len(spec.coders) + 1}/{len(spec.coders) + 1}] embedding clusters (floor)")
            t0 = time.perf_counter()
            floor = induce_from_texts([(unit_key(a), a) for a in answers])
            seconds = time.perf_counter() - t0
            units: dict[str, set[str]] = {unit_key(a): set() for a in answers}
            for code in floor:
                for u in code.segments:
                    units[u].add(code.id)
            floor_set = CodeSet("embedding clusters (floor)", "run",
                                [CodeEntry(f.id, f.name, members=len(f.members)) for f in floor],
                                {k: frozenset(v) for k, v in units.items()})
            result["coders"]["embedding clusters (floor)"] = {
                **comparison_summary(compare_codesets(human, floor_set, **cmp), spec.min_units),
                "tokens_per_answer": 0, "seconds_per_answer": seconds / max(len(answers), 1)}
    finally:
        project.close()
    (folder / "report.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    (folder / "report.md").write_text(render_markdown(result), encoding="utf-8")
    return result


def _seconds_note(calls: int, cache_hits: int, seconds: float) -> str:
    """What the seconds per answer are, or why there are none: a session that answered from the cache is not a cost."""
    if calls and not cache_hits:
        return "this session's calls"
    if not calls:
        return "no call now (cached): see the run's manifest"
    return (f"{cache_hits} replies from the cache and {calls} calls this session ({seconds:.0f} s): not a cost per "
            "answer; see the run's manifest")


def _ci(a: dict[str, Any] | None) -> str:
    if not a or a.get("value") is None:
        return "n/a"
    if a.get("low") is None:
        return f"{a['value']:.2f}"
    return f"{a['value']:.2f} [{a['low']:.2f}, {a['high']:.2f}]"


def render_markdown(result: dict[str, Any]) -> str:
    from .compare import interval_text

    n = result["reference"]["min_units"]
    lines = [f"# Suite {result['suite']}: induced codebooks against the researchers' codes", "",
             f"{result['answers']} answers; the researchers' codes: {'; '.join(result['reference']['notes'])}. "
             f"Coverage counts their codes applied to {n} answers or more.", "",
             "| coder | coverage [95%] | precision [95%] | mapped alpha (MASI) [95%] | s per answer | tokens per answer |",
             "|---|---|---|---|---|---|"]
    for label, r in result["coders"].items():
        sec = r.get("seconds_per_answer")
        lines.append(f"| {label} | {r['coverage']:.2f}{interval_text(r.get('coverage_interval'))} "
                     f"({r['counts'].get('reference_codes_covered')}/{r['counts'].get('reference_codes_considered')}) | "
                     f"{r['precision']:.2f}{interval_text(r.get('precision_interval'))} | {_ci(r['agreement'])} | "
                     f"{'n/a' if sec is None else f'{sec:.2f}'} | {r['tokens_per_answer']:.0f} |")
    for label, r in result["coders"].items():
        lines += ["", f"## {label}", "", "Matched: " + ("; ".join(f"{m['reference']} = {m['other']}" for m in r["matches"])
                                                       or "none"),
                  "", f"The researchers' codes ({n}+ answers) not found: " + ("; ".join(r["unmatched_reference"]) or "none")]
    return "\n".join(lines) + "\n"


def print_summary(result: dict[str, Any], echo: Callable[[str], None] = print) -> None:
    for line in render_markdown(result).splitlines():
        echo(line)
