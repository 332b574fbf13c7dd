"""The offline default on ConvAbuse: agreement per label of ``similarity`` (all 4,185 items, thresholds cross-fitted on
the annotators' majority) and ``local`` (a seeded sample of 200, stratified half abusive, half not, by the majority)
with the annotators' majority and with each annotator, beside the annotators' own agreement.

The annotators' own agreement is given two ways: Krippendorff's alpha among all of them per label (the ceiling), and,
for each annotator, Cohen's kappa with the majority of the *other* annotators (leave-one-out), which is the human
counterpart of "the model against the majority".

    python eval/bench/convabuse_bench.py [--sample 200] [--skip-local] [--json eval/bench/results/convabuse.json]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402
from convabuse import load_project, prepare  # noqa: E402

from assistcode.agreement.summary import estimate  # noqa: E402
from assistcode.evaluate import EvalOptions, evaluate, from_store  # noqa: E402
from assistcode.runs.engine import RunConfig, code_project  # noqa: E402
from assistcode.similarity import run_similarity  # noqa: E402


def _kappa(a: np.ndarray, b: np.ndarray, n_boot: int) -> list[float | None]:
    both = ~np.isnan(a) & ~np.isnan(b)
    if both.sum() < 2:
        return [None, None, None]
    try:
        e = estimate("cohen_kappa", np.vstack([a[both], b[both]]), n_boot=n_boot).as_dict()
    except Exception:  # a label one side never uses: kappa undefined
        return [None, None, None]
    return [e.get("value"), e.get("low"), e.get("high")]


def _majority(rows: np.ndarray) -> np.ndarray:
    seen = (~np.isnan(rows)).sum(axis=0)
    yes = np.nansum(rows, axis=0)
    out = np.where(seen > 0, (2 * yes > seen).astype(float), np.nan)
    return out


def score(project, model: str, n_boot: int) -> dict:
    """Per label: the model vs the majority (kappa, AC1 with intervals, from the harness), the model vs each
    annotator, and the annotators' own agreement."""
    codebook = project.codebook()
    data = from_store(project.db, codebook=codebook)
    humans = data.humans
    report = evaluate(data.subset(humans + [model]), EvalOptions(n_boot=n_boot, cluster=False))
    overall = {c["comparison"]: {e["statistic"]: [e.get("value"), e.get("low"), e.get("high")] for e in c["estimates"]}
               for c in report["overall"] if c["comparison"] in (f"{model} vs consensus", "humans (ceiling)")}
    labels = {}
    for row in report["per_code"]:
        code = row["code"]
        stats = {e["statistic"]: [e.get("value"), e.get("low"), e.get("high")] for e in row["estimates"]}
        binary = data.binary(code, humans + [model])
        people, m = binary[:-1], binary[-1]
        vs_each = {h: _kappa(m, people[i], 0)[0] for i, h in enumerate(humans)}
        loo = {}
        for i, h in enumerate(humans):
            others = _majority(np.delete(people, i, axis=0))
            loo[h] = _kappa(people[i], others, 0)[0]
        finite = [v for v in loo.values() if v is not None]
        ceiling = row.get("ceiling") or {}
        labels[code] = {
            "prevalence_majority": row["prevalence"],
            "model_vs_majority": {"cohen_kappa": stats.get("cohen_kappa"), "gwet_ac1": stats.get("gwet_ac1"),
                                  "precision": row.get("precision"), "recall": row.get("recall"), "f1": row.get("f1")},
            "model_vs_each_annotator_kappa": vs_each,
            "annotators_alpha": [ceiling.get("value"), ceiling.get("low"), ceiling.get("high")],
            "annotator_vs_others_majority_kappa": loo,
            "annotator_vs_others_median_kappa": float(np.median(finite)) if finite else None,
        }
    return {"overall": overall, "labels": labels, "coverage": data.coverage(model), "notes": report["notes"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sample", type=int, default=200)
    p.add_argument("--model", default="qwen2.5-coder-1.5b")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--skip-local", action="store_true")
    p.add_argument("--data", type=Path, help="Folder holding ConvAbuseEMNLPfull.csv (default: $ASSISTCODE_CONVABUSE, "
                   "else the development machine's data folder).")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    out: dict = {"data": "ConvAbuse (Cercas Curry et al. 2021, CC BY 4.0), ConvAbuseEMNLPfull.csv",
                 "segment": "the user's turn alone (the annotators also saw the three turns before it)"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        full = prepare(folder / "full-src", source=args.data)
        project = load_project(folder / "full", full)
        start = time.perf_counter()
        result, notes = run_similarity(project, calibrate_with="consensus")
        seconds = time.perf_counter() - start
        out["similarity_all"] = {"items": full.n_items, "repeats_left_out": full.repeats,
                                 "majority_abusive": full.majority_abusive, "seconds": seconds,
                                 "seconds_per_item": seconds / full.n_items, "notes": notes,
                                 **score(project, result.run.coder, args.n_boot)}
        project.close()
        sample = prepare(folder / "sample-src", sample=args.sample, source=args.data)
        project = load_project(folder / "sample", sample)
        result, _ = run_similarity(project, calibrate_with="consensus")
        out["sample"] = {"items": sample.n_items, "majority_abusive": sample.majority_abusive, "seed": 2021,
                         "stratified": "half the annotators' majority abusive, half not"}
        out["similarity_sample"] = score(project, result.run.coder, args.n_boot)
        if not args.skip_local:
            start = time.perf_counter()
            run = code_project(project, RunConfig(provider="local", model=args.model, concurrency=1, max_tokens=512))
            seconds = time.perf_counter() - start
            out["local_sample"] = {"model": args.model, "seconds": seconds, "seconds_per_item": seconds / sample.n_items,
                                   "ok": run.counts["ok"], "failed": run.counts["failed"],
                                   **score(project, run.run.coder, args.n_boot)}
        project.close()
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
