"""The ``trained`` provider on ConvAbuse: all 4,185 user turns, labels = the annotators' strict majority.

1. Per label: Cohen's kappa of ``trained`` (cross-fitted by document: every turn is scored and thresholded by models
   that never saw its label) with the majority, 95% BCa interval, beside the annotators' own agreement (median kappa
   of an annotator with the majority of the others, as in ``convabuse_bench.py``).
2. The learning curve on "abusive": trained on nested seeded samples of 50, 100, 200, 500 and 1,000 labelled turns,
   kappa on the same held-out turns (those outside the largest sample), for several seeds; the target is 0.8 of the
   annotators' median kappa.

    python eval/bench/trained_bench.py [--data DIR] [--seeds 0,1,2] [--json eval/bench/results/trained.json]
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
from convabuse import data_dir, load_project, prepare  # noqa: E402
from convabuse_bench import score  # noqa: E402

from assistcode.calibration import brier, expected_calibration_error  # noqa: E402
from assistcode.evaluate.learning_curve import learning_curve  # noqa: E402
from assistcode.runs.scores import load_scores  # noqa: E402
from assistcode.similarity import Embedder  # noqa: E402
from assistcode.trained import C, HEAD, label_matrix, run_trained  # noqa: E402

SIZES = (50, 100, 200, 500, 1000)


class CachedEmbedder:
    """Embeds each text once across the run and the learning curves (the embedding is the slow part)."""

    def __init__(self) -> None:
        self.inner = Embedder()
        self.cache: dict[str, np.ndarray] = {}
        self.seconds = 0.0

    def embed(self, texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if todo:
            start = time.perf_counter()
            for t, v in zip(todo, self.inner.embed(todo)):
                self.cache[t] = v
            self.seconds += time.perf_counter() - start
        return np.array([self.cache[t] for t in texts])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="Folder holding ConvAbuseEMNLPfull.csv (default: %(default)s "
                   "= $ASSISTCODE_CONVABUSE or ../shared/data/convabuse).")
    p.add_argument("--code", default="abusive")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    source = args.data or data_dir()
    out: dict = {"data": "ConvAbuse (Cercas Curry et al. 2021, CC BY 4.0), ConvAbuseEMNLPfull.csv",
                 "segment": "the user's turn alone (the annotators also saw the three turns before it)",
                 "labels": "the annotators' strict majority (consensus)",
                 "classifier": {"head": HEAD, "C": C, "class_weight": "balanced", "features": "MiniLM int8 embeddings, standardised",
                                "calibration": "platt + F1 threshold, cross-fitted by document"}}
    embedder = CachedEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        full = prepare(folder / "full-src", source=source)
        project = load_project(folder / "full", full)
        start = time.perf_counter()
        result, notes = run_trained(project, train_with="consensus", embedder=embedder)
        seconds = time.perf_counter() - start
        out["trained_all"] = {"items": full.n_items, "repeats_left_out": full.repeats, "majority_abusive": full.majority_abusive,
                              "run": result.run.coder, "seconds": seconds, "embedding_seconds": embedder.seconds,
                              "notes": notes, "cross_fitting": result.run.manifest.get("cross_fitting"),
                              **score(project, result.run.coder, args.n_boot)}
        scores = load_scores(project.db, result.run.id)
        labels = label_matrix(project.db, "consensus", project.codebook(), scores.segment_ids)
        codes = [c.id for c in project.codebook().codes]
        for j, code in enumerate(scores.codes):  # every probability cross-fitted: never fitted on its own label
            y = labels[:, codes.index(code)]
            out["trained_all"]["labels"][code]["calibration"] = {
                "ece_10_bins": expected_calibration_error(scores.prob[:, j], y), "brier": brier(scores.prob[:, j], y)}
        median = out["trained_all"]["labels"][args.code]["annotator_vs_others_median_kappa"]
        target = 0.8 * median
        curves = []
        for seed in [int(s) for s in args.seeds.split(",")]:
            start = time.perf_counter()
            curve = learning_curve(project, "consensus", sizes=SIZES, code=args.code, seed=seed, n_boot=args.n_boot,
                                   embedder=embedder)
            curve["seconds"] = time.perf_counter() - start
            curve["reached_bench_target_at"] = next((pt["size"] for pt in curve["points"]
                                                     if (pt["kappa"]["value"] or -1) >= target), None)
            curves.append(curve)
        by_size = {str(n): [next(pt["kappa"]["value"] for pt in c["points"] if pt["size"] == n) for c in curves]
                   for n in SIZES}
        out["learning_curve"] = {"code": args.code, "sizes": list(SIZES),
                                 "annotators_median_kappa": median, "target": target,
                                 "target_rule": "0.8 x the median kappa of an annotator with the others' majority",
                                 "mean_kappa_by_size": {n: float(np.mean(v)) for n, v in by_size.items()},
                                 "kappa_by_size_and_seed": by_size, "curves": curves}
        project.close()
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
