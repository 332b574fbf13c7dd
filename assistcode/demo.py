"""``assistcode demo``: the whole loop on the seed gold standard, for a newcomer."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import gold_standards
from .project import Project

SEED = "leadership-quality-safety"


def run_demo(directory: str | Path, echo: Callable[[str], None] = print) -> Project:
    """Create (or reuse) a project in ``directory``, load the seed gold standard, and summarise it."""
    directory = Path(directory)
    echo(f"[1/2] Project: {directory.resolve()}")
    project = Project.init(directory)
    echo(f"[2/2] Importing the seed gold standard '{SEED}' (transcripts, codebook, human codes)")
    report = gold_standards.load_into(project, SEED)
    counts = project.counts()
    codebook = project.codebook()
    echo("")
    echo(f"  documents  {counts['documents']:>5}   ({report.corpus.documents_added} new)")
    echo(f"  segments   {counts['segments']:>5}")
    echo(f"  codebook   {len(codebook):>5} codes, version {codebook.hash[:12]}: {codebook.name}")
    for coder in project.coders():
        echo(f"  coder      {coder['name']} ({coder['kind']}): {coder['annotations']} codes on {coder['segments_seen']} segments")
    for g in report.gold:
        for note in g.notes:
            echo(f"  note: {note}")
    echo("")
    echo("Next:")
    echo(f"  assistcode segments --project {directory} --format jsonl      # the segments and their offsets")
    echo(f"  assistcode export annotations --project {directory} --matrix  # the human codes as a matrix")
    echo(f"  assistcode codebook show --project {directory}")
    return project
