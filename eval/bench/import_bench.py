"""Import speed: 10,000 transcripts (1,000,000 speaker turns) through ``Project.import_corpus``, beside a bare
``executemany`` of the same rows into a table of the same columns, measured in the same run (the physical limit of
SQLite on this machine). Each phase runs in its own process, so its peak memory is its own.

    python eval/bench/import_bench.py [--documents 10000 --turns 100] [--json eval/bench/results/import.json]
"""
from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402

WORDS = ("the ward team safety leadership matron quality board nurse chief executive patient trust change "
         "culture support everyone clinicians managers drive infrastructure values").split()


def make_corpus(folder: Path, documents: int, turns: int) -> None:
    import random

    rng = random.Random(7)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(documents):
        lines = []
        for t in range(turns):
            speaker = "Interviewer" if t % 2 == 0 else f"P{d % 50 + 1}"
            lines.append(f"{speaker}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))) + ".")
        (folder / f"interview_{d:05d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def phase_import(corpus: Path, project_dir: Path) -> dict:
    from assistcode.project import Project

    project = Project.init(project_dir)
    start = time.perf_counter()
    report = project.import_corpus([corpus], segmenter="turn")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "segments": report.segments_added, "documents": report.documents_added}


def phase_baseline(corpus: Path, db_path: Path) -> dict:
    """The same rows, built before the clock starts, then one executemany into a table of the same columns."""
    from assistcode.corpus import segment_rows
    from assistcode.model import Document
    from assistcode.store.migrations import MIGRATIONS
    from assistcode.textio import read_text

    rows = []
    for path in sorted(corpus.iterdir()):
        rows.extend(segment_rows(Document(read_text(path).text, title=path.stem), "turn", {}))
    ddl = next(sql for name, sql in MIGRATIONS if name == "001_core")
    table = ddl[ddl.index("CREATE TABLE segments"):]
    table = table[: table.index(");") + 2]
    from assistcode.store.db import CACHE_KIB

    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")  # the store's own settings: only the work differs
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA cache_size={CACHE_KIB}")
    db.execute(table)
    start = time.perf_counter()
    db.execute("BEGIN")
    db.executemany('INSERT INTO segments (id, document_id, position, start, "end", speaker, text) VALUES (?,?,?,?,?,?,?)', rows)
    db.execute("COMMIT")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "segments": len(rows)}


def run_phase(name: str, corpus: Path, target: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", name, str(corpus), str(target)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--documents", type=int, default=10_000)
    p.add_argument("--turns", type=int, default=100)
    p.add_argument("--json", type=Path)
    p.add_argument("--phase", nargs=3, metavar=("NAME", "CORPUS", "TARGET"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.phase:
        name, corpus, target = args.phase
        result = (phase_import if name == "import" else phase_baseline)(Path(corpus), Path(target))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        corpus = tmp_path / "corpus"
        t0 = time.perf_counter()
        make_corpus(corpus, args.documents, args.turns)
        print(f"corpus: {args.documents} files written in {time.perf_counter() - t0:.1f} s", flush=True)
        ours = run_phase("import", corpus, tmp_path / "project")
        bare = run_phase("baseline", corpus, tmp_path / "bare.db")
    assert ours["segments"] == bare["segments"] == args.documents * args.turns, (ours, bare)
    result = {
        "documents": args.documents, "segments": ours["segments"],
        "assistcode_import": {**ours, "segments_per_s": ours["segments"] / ours["seconds"]},
        "bare_executemany": {**bare, "segments_per_s": bare["segments"] / bare["seconds"]},
    }
    result["ratio_of_bare_speed"] = result["assistcode_import"]["segments_per_s"] / result["bare_executemany"]["segments_per_s"]
    result["target"] = ">= 0.5 of the bare executemany rate"
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
