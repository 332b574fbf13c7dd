"""Inductive coding, measured on LLMCode's games-as-art answers (issue 17).

The researchers' free-text codes of the 174 ``why_art`` answers are the reference. Two open coders build a
codebook from the same answers, with no codebook to start from:
- ``local``: the offline model with the ``inductive`` template proposes codes per answer; ``codebook induce``
  groups them (MiniLM clustering), each group named after its most frequent or central member;
- ``local_named`` (``--names model``): the same groups named and defined by the model from their members;
- ``local_N_rounds`` (``--rounds N``): constant comparison, the answers (``--rounds-sample K`` of them, seeded) coded
  again with the growing codebook, set against round 1 on the same answers;
- ``embedding floor``: no model; the answers' sentences clustered by meaning, each cluster named by its most
  distinctive words.
Each is compared with the researchers' codes (``codebook compare``): coverage of the codes the researchers used in 3
or more answers, precision, and Krippendorff's alpha (MASI) after mapping, with a 95% interval; seconds and tokens
per answer.

    python eval/bench/inductive_bench.py [--data DIR] [--limit N] [--work DIR] [--names model] [--rounds 2
        --rounds-sample 30] [--out eval/bench/results/inductive.json]

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
from assistcode.inductive.codeset import CodeEntry, CodeSet, induced_codeset, read_code_table, unit_key  # noqa: E402
from assistcode.inductive.induce import DISTANCE, induce_codebook, induce_from_texts  # noqa: E402
from assistcode.inductive.naming import Namer  # noqa: E402
from assistcode.inductive.rounds import constant_comparison, run_proposals  # noqa: E402
from assistcode.inductive.suite import answers_project, comparison_summary  # noqa: E402
from assistcode.project import Project  # noqa: E402
from assistcode.runs.engine import RunConfig, code_project  # noqa: E402

FILE = "bopp_test_why_art_coded.cp1252.csv"
SWEEP = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.45)


def summary(c) -> dict:  # type: ignore[no-untyped-def]
    return {k: v for k, v in comparison_summary(c, 3).items() if k != "unmatched_other"}


def open_project(work: Path, rows: list[dict[str, str]]) -> Project:
    """The answers as a corpus with an empty codebook, in ``work/p`` (as the suite builds it; opened again when it
    exists)."""
    return answers_project(work / "p", [r["why_art"] for r in rows])


def restrict(cs: CodeSet, keys: set[str]) -> CodeSet:
    """``cs`` on the units ``keys`` alone."""
    return CodeSet(cs.label, cs.kind, cs.codes, {k: v for k, v in (cs.units or {}).items() if k in keys}, cs.notes)


def model_run(work: Path, rows: list[dict[str, str]], human: CodeSet, model: str, names: bool = False,
              rounds: int = 1, rounds_sample: int | None = None, seed: int = 0) -> dict[str, dict]:
    """The local model's inductive run (resumed where it stopped), induced and compared with the researchers';
    with ``names``, the groups named by the model too; with ``rounds`` > 1, constant comparison on a seeded sample
    of ``rounds_sample`` answers (all with None), against round 1 on the same answers."""
    project = open_project(work, rows)
    t0 = time.perf_counter()

    def progress(state: dict) -> None:
        if state.get("phase") or state.get("done", 1) % 10 == 0:
            print(f"[{time.perf_counter() - t0:7.0f}s] {state}", file=sys.stderr, flush=True)

    run = code_project(project, RunConfig(provider="local", model=model, template="inductive", max_tokens=400,
                                          concurrency=1), progress=progress)
    seconds = time.perf_counter() - t0
    with (work / "sessions.jsonl").open("a") as fh:
        fh.write(json.dumps({"seconds": seconds, "calls": run.calls, "cache_hits": run.cache_hits,
                             "load_average": os.getloadavg()}) + "\n")
    sessions = [json.loads(line) for line in (work / "sessions.jsonl").read_text().splitlines() if line.strip()]
    paid = sum(s["calls"] for s in sessions)
    per_answer = sum(s["seconds"] for s in sessions) / max(paid, 1)
    counts = run.counts
    tokens = (counts["prompt_tokens"] + counts["completion_tokens"]) / len(rows)
    found = run_proposals(project, run.run.id)
    induced = induce_codebook(found)
    model_set = induced_codeset(project, run.run.id, induced, f"run:{run.run.id}",
                                [f"{len(found)} proposals grouped into {len(induced)} codes"])
    base = {"model": model, "template": "inductive@1", "segments_ok": counts["ok"], "segments_failed": counts["failed"],
            "proposals": len(found), "answers": len(rows),
            "seconds_note": f"wall time of {len(sessions)} session(s) over the {paid} calls they made "
                            "(2 cores shared with other work; load averages in the work folder's sessions.jsonl)"}
    out = {"local": {**summary(compare_codesets(human, model_set, min_units=3)), **base,
                     "names": "each group's most frequent or central member", "seconds_per_answer": per_answer,
                     "tokens_per_answer": tokens, "notes": model_set.notes, "distance": DISTANCE,
                     "distance_sweep": sweep(project, run.run.id, found, human)}}
    namer = None
    if names:
        from assistcode.providers.base import get_provider

        namer = Namer(get_provider("local", model), model, project.cache_dir / "induce-names.json")  # as the CLI and suite
        named = induce_codebook(found)
        report = namer.name(named)
        named_set = induced_codeset(project, run.run.id, named, f"run:{run.run.id}, model-named", model_set.notes)
        out["local_named"] = {**summary(compare_codesets(human, named_set, min_units=3)), **base,
                              "names": "written by the model from each group's members (induce-name@1)",
                              "naming": report.as_dict(),
                              "seconds_per_answer": per_answer + report.model_seconds / len(rows),
                              "tokens_per_answer": tokens + (report.prompt_tokens + report.completion_tokens) / len(rows),
                              "notes": model_set.notes + report.notes}
    if rounds > 1:
        import random

        ok = sorted(r[0] for r in project.db.execute(
            "SELECT segment_id FROM run_segments WHERE run_id = ? AND status = 'ok'", (run.run.id,)))
        sample = sorted(random.Random(seed).sample(ok, rounds_sample)) if rounds_sample and rounds_sample < len(ok) else ok
        t1 = time.perf_counter()
        result = constant_comparison(project, str(run.run.id), rounds, namer=namer, carry_min=2, segment_ids=sample,
                                     config=RunConfig(provider="local", model=model, max_tokens=400, concurrency=1),
                                     progress=progress)
        rounds_seconds = time.perf_counter() - t1
        final = induced_codeset(project, result.last_run, result.codes, f"{rounds} rounds", [])
        keys = set(final.units or {})
        first = restrict(named_set if names else model_set, keys)
        ref = restrict(human, keys)
        later = [x for x in result.rounds if x.number > 1]
        later_tokens = sum(sum(rs_counts(project, x.run_id)) for x in later)
        out[f"local_{rounds}_rounds"] = {
            **summary(compare_codesets(ref, final, min_units=3)), **base,
            "sample": {"answers": len(keys), "segments": len(sample), "seed": seed,
                       "of": "the run's coded segments (random.Random(seed).sample)"},
            "round_1_on_the_same_answers": summary(compare_codesets(ref, first, min_units=3)),
            "rounds": [x.as_dict() for x in result.rounds], "carry_min": 2,
            "names": "model" if names else "member",
            "later_rounds_seconds_per_answer": rounds_seconds / max(len(sample), 1),
            "later_rounds_tokens_per_answer": later_tokens / max(len(sample), 1)}
    project.close()
    return out


def sweep(project: Project, run_id: int, found: list, human: CodeSet) -> list[dict]:
    """Coverage, precision and mapped alpha of the same proposals grouped at each cut of the clustering: how much
    the figures hang on ``--distance`` (the default was chosen on this data, with no held-out set)."""
    rows = []
    for d in SWEEP:
        induced = induce_codebook(found, distance=d)
        c = compare_codesets(human, induced_codeset(project, run_id, induced, f"distance {d}", []), min_units=3)
        rows.append({"distance": d, "codes": len(induced), "coverage": c.coverage,
                     "coverage_interval": c.coverage_interval, "precision": c.precision,
                     "precision_interval": c.precision_interval, "alpha": c.agreement["value"],
                     "alpha_interval": [c.agreement["low"], c.agreement["high"]]})
    return rows


def rs_counts(project: Project, run_id: int) -> tuple[int, int]:
    row = project.db.execute("SELECT coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0) "
                             "FROM run_segments WHERE run_id = ?", (run_id,)).fetchone()
    return int(row[0]), int(row[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=os.environ.get("ASSISTCODE_GAMES_AS_ART"))
    ap.add_argument("--limit", type=int, help="only the first N answers (a quick check)")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--skip-model", action="store_true", help="the embedding floor only")
    ap.add_argument("--names", choices=["member", "model"], default="member",
                    help="model: also measure the groups named by the model from their members")
    ap.add_argument("--rounds", type=int, default=1, help="N > 1: also measure constant comparison over N rounds")
    ap.add_argument("--rounds-sample", type=int, help="later rounds on a seeded sample of this many answers")
    ap.add_argument("--seed", type=int, default=0)
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
            result["methods"].update(model_run(work, rows, human, args.model, args.names == "model", args.rounds,
                                               args.rounds_sample, args.seed))
    emit(result, args.out)


if __name__ == "__main__":
    main()
