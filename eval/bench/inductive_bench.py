"""Inductive coding, measured on LLMCode's games-as-art answers (issue 17).

The researchers' free-text codes of the 174 ``why_art`` answers are the reference. Two open coders build a
codebook from the same answers, with no codebook to start from:
- ``local``: the offline model with the ``inductive`` template proposes codes per answer; ``codebook induce``
  groups them (MiniLM clustering);
- ``embedding floor``: no model; the answers' sentences clustered by meaning, each cluster named by its most
  distinctive words.
Each is compared with the researchers' codes (``codebook compare``): coverage of the codes the researchers used in 3
or more answers, precision, and Krippendorff's alpha (MASI) after mapping, with a 95% interval; seconds and tokens
per answer.

    python eval/bench/inductive_bench.py [--data DIR] [--limit N] [--work DIR] [--out eval/bench/results/inductive.json]

``--work DIR`` keeps the model's project there: an interrupted run is resumed by the same command (the engine's
cache and settled segments), and seconds per answer add up the sessions that made calls (``sessions.jsonl``).

DIR defaults to ``$ASSISTCODE_GAMES_AS_ART`` (the folder holding ``bopp_test_why_art_coded.cp1252.csv``).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _report import emit  # noqa: E402

from assistcode.inductive import compare_codesets  # noqa: E402
from assistcode.inductive.codeset import CodeEntry, CodeSet, read_code_table, run_codeset, unit_key  # noqa: E402
from assistcode.inductive.induce import induce_from_texts  # noqa: E402
from assistcode.model import Codebook  # noqa: E402
from assistcode.project import Project  # noqa: E402
from assistcode.readers import ReadOptions  # noqa: E402
from assistcode.runs.engine import RunConfig, code_project  # noqa: E402

FILE = "bopp_test_why_art_coded.cp1252.csv"


def summary(c) -> dict:  # type: ignore[no-untyped-def]
    return {"coverage": c.coverage, "precision": c.precision, "counts": c.counts, "agreement": c.agreement,
            "threshold": c.threshold, "method": c.method,
            "unmatched_reference": [u["name"] for u in c.unmatched["reference"] if (u["units"] or 0) >= 3],
            "matches": [{"reference": m.reference_name, "other": m.other_name, "score": m.score} for m in c.matches]}


def open_project(work: Path, rows: list[dict[str, str]]) -> Project:
    """The answers imported as a corpus with an empty codebook, in ``work/p`` (opened again when it exists)."""
    if (work / "p").is_dir():
        return Project(work / "p")
    work.mkdir(parents=True, exist_ok=True)
    table = work / "answers.csv"
    with table.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["respondent", "why_art"])
        w.writerows([i, r["why_art"]] for i, r in enumerate(rows))
    project = Project.init(work / "p")
    project.import_corpus([table], segmenter="paragraph", options=ReadOptions(text_column="why_art",
                                                                              id_columns=("respondent",)))
    project.import_codebook(Codebook(name="open coding (empty)", codes=()))
    return project


def model_run(work: Path, rows: list[dict[str, str]], human: CodeSet, model: str) -> dict:
    """The local model's inductive run (resumed where it stopped), induced and compared with the researchers'."""
    project = open_project(work, rows)
    t0 = time.perf_counter()

    def progress(state: dict) -> None:
        if state.get("phase") or state["done"] % 10 == 0:
            print(f"[{time.perf_counter() - t0:7.0f}s] {state['done']}/{state['total']} answers, "
                  f"{state.get('failed', 0)} failed", file=sys.stderr, flush=True)

    run = code_project(project, RunConfig(provider="local", model=model, template="inductive", max_tokens=400,
                                          concurrency=1), progress=progress)
    seconds = time.perf_counter() - t0
    with (work / "sessions.jsonl").open("a") as fh:
        fh.write(json.dumps({"seconds": seconds, "calls": run.calls, "cache_hits": run.cache_hits,
                             "load_average": os.getloadavg()}) + "\n")
    sessions = [json.loads(line) for line in (work / "sessions.jsonl").read_text().splitlines() if line.strip()]
    paid = sum(s["calls"] for s in sessions)
    model_set = run_codeset(project, str(run.run.id))
    comparison = compare_codesets(human, model_set, min_units=3)
    counts = run.counts
    project.close()
    return {**summary(comparison), "model": model, "template": "inductive@1",
            "seconds_per_answer": sum(s["seconds"] for s in sessions) / max(paid, 1),
            "seconds_note": f"wall time of {len(sessions)} session(s) over the {paid} calls they made "
                            "(2 cores shared with other work; load averages in the work folder's sessions.jsonl)",
            "tokens_per_answer": (counts["prompt_tokens"] + counts["completion_tokens"]) / len(rows),
            "segments_ok": counts["ok"], "segments_failed": counts["failed"], "notes": model_set.notes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=os.environ.get("ASSISTCODE_GAMES_AS_ART"))
    ap.add_argument("--limit", type=int, help="only the first N answers (a quick check)")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--skip-model", action="store_true", help="the embedding floor only")
    ap.add_argument("--work", type=Path, help="keep the model's project here and resume it (default: a temporary folder)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.data is None or not (args.data / FILE).is_file():
        sys.exit(f"inductive_bench: give --data DIR (or ASSISTCODE_GAMES_AS_ART) holding {FILE}: "
                 "LLMCode's test_data (github.com/PerttuHamalainen/LLMCode, MIT)")
    source = args.data / FILE
    human = read_code_table(source, "human_codes", "why_art")
    with source.open(encoding="cp1252", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["why_art"].strip()]
    if args.limit:
        rows = rows[:args.limit]
        keep = {unit_key(r["why_art"]) for r in rows}
        human = CodeSet(human.label, human.kind, human.codes, {k: v for k, v in human.units.items() if k in keep},
                        human.notes)
    result: dict = {"data": FILE, "answers": len(rows), "reference": {"codes": len(human.codes), "notes": human.notes},
                    "methods": {}}

    t0 = time.perf_counter()
    floor = induce_from_texts([(unit_key(r["why_art"]), r["why_art"]) for r in rows])
    seconds = time.perf_counter() - t0
    units: dict[str, set[str]] = {unit_key(r["why_art"]): set() for r in rows}
    for code in floor:
        for u in code.segments:
            units[u].add(code.id)
    floor_set = CodeSet("embedding floor", "run", [CodeEntry(c.id, c.name, members=len(c.members)) for c in floor],
                        {k: frozenset(v) for k, v in units.items()})
    comparison = compare_codesets(human, floor_set, min_units=3)
    result["methods"]["embedding_floor"] = {**summary(comparison), "seconds_per_answer": seconds / len(rows),
                                            "tokens_per_answer": 0}

    if not args.skip_model:
        with tempfile.TemporaryDirectory() as tmp:
            work = args.work or Path(tmp)
            result["methods"]["local"] = model_run(work, rows, human, args.model)
    emit(result, args.out)


if __name__ == "__main__":
    main()
