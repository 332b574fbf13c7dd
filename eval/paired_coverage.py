"""Coverage of the paired bootstrap interval for a difference in agreement (``assistcode suite report``).

Two synthetic model coders code the same units as a gold coder: each gives the gold code with its own accuracy and
otherwise one of the other codes at random, independently. The true difference of Krippendorff's alpha (each model
against the gold) is computed on a population of two million units; each replication draws a sample of units,
computes the paired interval (every bootstrap replicate resamples the same units for both models), and checks
whether it covers the truth. A second scenario resamples whole documents (clusters of units sharing a
document effect), as the suite report does.

    python eval/paired_coverage.py [--reps 1000] [--n 200] [--json eval/bench/results/paired_coverage.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistcode.agreement.coefficients import alpha_estimator, krippendorff_alpha  # noqa: E402
from assistcode.agreement.uncertainty import paired_difference  # noqa: E402

K = 4
PREVALENCE = np.array([0.4, 0.3, 0.2, 0.1])


def draw(rng: np.random.Generator, n: int, acc_a: float, acc_b: float, docs: int | None = None
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Gold codes and two coders; with ``docs``, units belong to documents whose difficulty varies (the
    accuracy of both coders moves together within a document), so units of one document are not independent."""
    gold = rng.choice(K, size=n, p=PREVALENCE)
    clusters = None
    shift = np.zeros(n)
    if docs:
        clusters = rng.integers(0, docs, n)
        shift = rng.normal(0, 0.08, docs)[clusters]

    def coder(acc: float) -> np.ndarray:
        right = rng.random(n) < np.clip(acc + shift, 0, 1)
        wrong = (gold + rng.integers(1, K, n)) % K
        return np.where(right, gold, wrong)

    return gold, coder(acc_a), coder(acc_b), clusters


def truth(acc_a: float, acc_b: float, docs: int | None, seed: int = 12345) -> float:
    rng = np.random.default_rng(seed)
    n = 2_000_000
    gold, a, b, _ = draw(rng, n, acc_a, acc_b, n // 20 if docs else None)
    return krippendorff_alpha(np.vstack([a, gold])) - krippendorff_alpha(np.vstack([b, gold]))


def scenario(reps: int, n: int, acc_a: float, acc_b: float, docs: int | None, n_boot: int, method: str,
             seed: int) -> dict:
    true = truth(acc_a, acc_b, docs)
    rng = np.random.default_rng(seed)
    covered = distinguishable = 0
    widths = []
    for r in range(reps):
        gold, a, b, clusters = draw(rng, n, acc_a, acc_b, docs)
        d = paired_difference(alpha_estimator(np.vstack([a, gold])), alpha_estimator(np.vstack([b, gold])),
                              n_boot=n_boot, method=method, clusters=clusters, seed=rng)
        covered += d.low <= true <= d.high
        distinguishable += d.distinguishable
        widths.append(d.high - d.low)
    return {"true_difference": true, "accuracy_a": acc_a, "accuracy_b": acc_b, "units": n,
            "documents": docs, "clustered": docs is not None, "reps": reps, "n_boot": n_boot, "method": method,
            "coverage": covered / reps, "power": distinguishable / reps, "mean_width": float(np.mean(widths))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=1000)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    results = []
    for i, (acc_a, acc_b, docs, method) in enumerate([(0.80, 0.70, None, "bca"), (0.80, 0.70, None, "percentile"),
                                                     (0.75, 0.75, None, "bca"), (0.80, 0.70, 20, "bca")]):
        r = scenario(args.reps, args.n, acc_a, acc_b, docs, args.n_boot, method, seed=100 + i)
        results.append(r)
        print(f"accuracy {acc_a:.2f} vs {acc_b:.2f}{', 20 documents' if docs else ''}, {method}: true difference "
              f"{r['true_difference']:+.4f}; coverage {r['coverage']:.3f}; interval excludes 0 in {r['power']:.1%}; "
              f"mean width {r['mean_width']:.3f}", flush=True)
    out = {"scenarios": results, "target": "coverage of the 95% interval between 0.93 and 0.97",
           "seconds": time.perf_counter() - t0}
    text = json.dumps(out, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    ok = all(0.93 <= r["coverage"] <= 0.97 for r in results)
    print("all within 0.93-0.97" if ok else "NOT all within 0.93-0.97")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
