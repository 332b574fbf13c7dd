"""Import speed: 10,000 transcripts (1,000,000 speaker turns) through ``Project.import_corpus``, beside a bare
``executemany`` of the same rows into a table of the same columns, measured in the same run (the physical limit of
SQLite on this machine). Each phase runs in its own process, so its peak memory is its own.

``--before REV`` also imports the same corpus with the code of git revision REV (its own import phase, from a
``git archive`` of it), in the same run, alternating with the current code ``--repeats`` times; the best time of
each counts: the speed of today's import against the speed before a change.

    python eval/bench/import_bench.py [--documents 10000 --turns 100] [--before REV --repeats 3]
                                      [--json eval/bench/results/import.json]
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
    later = [line.strip().rstrip(";") for name, sql in MIGRATIONS for line in sql.splitlines()
             if line.strip().startswith("ALTER TABLE segments ADD COLUMN")]
    from assistcode.store.db import CACHE_KIB

    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")  # the store's own settings: only the work differs
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA cache_size={CACHE_KIB}")
    db.execute(table)
    for statement in later:  # the columns later migrations add (start_time, role)
        db.execute(statement)
    columns = [r[1] for r in db.execute("PRAGMA table_info(segments)")]
    assert len(columns) == len(rows[0]), (columns, len(rows[0]))
    quoted = ", ".join(f'"{c}"' for c in columns)
    start = time.perf_counter()
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO segments ({quoted}) VALUES ({', '.join('?' * len(columns))})", rows)
    db.execute("COMMIT")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "segments": len(rows)}


def run_phase(name: str, corpus: Path, target: Path, script: Path = Path(__file__)) -> dict:
    out = subprocess.run([sys.executable, str(script), "--phase", name, str(corpus), str(target)],
                         capture_output=True, text=True, check=True, cwd=script.parents[2])
    return json.loads(out.stdout.strip().splitlines()[-1])


def checkout(rev: str, folder: Path) -> Path:
    """The tree of git revision ``rev`` under ``folder``; returns its import_bench.py."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "eval" / "bench" / "import_bench.py"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--documents", type=int, default=10_000)
    p.add_argument("--turns", type=int, default=100)
    p.add_argument("--json", type=Path)
    p.add_argument("--before", metavar="REV", help="Also import with the code of this git revision, in the same run.")
    p.add_argument("--repeats", type=int, default=1, help="Imports of each code, alternating; the best time counts.")
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
        old_script = checkout(args.before, tmp_path / "before") if args.before else None
        runs: list[dict] = []
        befores: list[dict] = []
        for i in range(max(args.repeats, 1)):
            if old_script is not None:
                befores.append(run_phase("import", corpus, tmp_path / f"before{i}", old_script))
            runs.append(run_phase("import", corpus, tmp_path / f"project{i}"))
        ours = min(runs, key=lambda r: r["seconds"])
        bare = run_phase("baseline", corpus, tmp_path / "bare.db")
    assert ours["segments"] == bare["segments"] == args.documents * args.turns, (ours, bare)
    result = {
        "documents": args.documents, "segments": ours["segments"],
        "assistcode_import": {**ours, "segments_per_s": ours["segments"] / ours["seconds"],
                              "seconds_each": [round(r["seconds"], 3) for r in runs]},
        "bare_executemany": {**bare, "segments_per_s": bare["segments"] / bare["seconds"]},
    }
    if befores:
        before = min(befores, key=lambda r: r["seconds"])
        assert before["segments"] == ours["segments"], (before, ours)
        result["before_import"] = {**before, "revision": args.before, "segments_per_s": before["segments"] / before["seconds"],
                                   "seconds_each": [round(r["seconds"], 3) for r in befores]}
        result["ratio_to_before"] = result["assistcode_import"]["segments_per_s"] / result["before_import"]["segments_per_s"]
        result["target_before"] = ">= 0.9 of the import rate before (same corpus, same run)"
    result["ratio_of_bare_speed"] = result["assistcode_import"]["segments_per_s"] / result["bare_executemany"]["segments_per_s"]
    result["target"] = ">= 0.5 of the bare executemany rate"
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
