"""Coverage of assistcode's 95% bootstrap intervals against a known true value.

Two coders label units of a binary code. Each unit's true class is 1 with probability ``prevalence``; each coder
reports it correctly with probability ``accuracy`` (independently), else the other class. The population joint
table is then known exactly, and with it the true Cohen's kappa and Scott's pi (the large-sample value of
Krippendorff's alpha). Each replication draws ``units`` units, computes the interval, and records whether it
covers the true value.

    python eval/coverage.py --replications 1000 --units 200 --json eval/results/coverage.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistcode.agreement.estimators import alpha, cohen  # noqa: E402
from assistcode.agreement._data import Ratings  # noqa: E402
from assistcode.agreement.coefficients import delta_for  # noqa: E402
from assistcode.agreement.uncertainty import bootstrap_interval  # noqa: E402


def true_values(prevalence: float, acc_a: float, acc_b: float) -> dict[str, float]:
    joint = np.zeros((2, 2))
    for truth, p_truth in ((1, prevalence), (0, 1 - prevalence)):
        for a in (0, 1):
            for b in (0, 1):
                pa = acc_a if a == truth else 1 - acc_a
                pb = acc_b if b == truth else 1 - acc_b
                joint[a, b] += p_truth * pa * pb
    po = np.trace(joint)
    pe_cohen = joint.sum(1) @ joint.sum(0)
    pooled = (joint.sum(1) + joint.sum(0)) / 2
    pe_scott = (pooled**2).sum()
    return {"cohen_kappa": (po - pe_cohen) / (1 - pe_cohen), "krippendorff_alpha": (po - pe_scott) / (1 - pe_scott)}


def simulate(replications: int, units: int, prevalence: float, acc_a: float, acc_b: float, n_boot: int,
             method: str, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    truth = true_values(prevalence, acc_a, acc_b)
    hits = {k: 0 for k in truth}
    widths = {k: [] for k in truth}
    skipped = 0
    for _ in range(replications):
        t = rng.random(units) < prevalence
        a = np.where(rng.random(units) < acc_a, t, ~t).astype(np.int64)
        b = np.where(rng.random(units) < acc_b, t, ~t).astype(np.int64)
        codes = np.vstack([a, b])
        if len(np.unique(codes)) < 2:
            skipped += 1
            continue
        r = Ratings(codes, (0, 1), True)
        for name, e in (("cohen_kappa", cohen(r)), ("krippendorff_alpha", alpha(codes, 2, delta_for("nominal", r)))):
            iv = bootstrap_interval(e, n_boot=n_boot, method=method, seed=rng)
            hits[name] += iv.low <= truth[name] <= iv.high
            widths[name].append(iv.high - iv.low)
    done = replications - skipped
    return {
        "replications": replications, "units": units, "prevalence": prevalence, "accuracy": [acc_a, acc_b],
        "n_boot": n_boot, "method": method, "seed": seed, "skipped_degenerate": skipped,
        "true": truth,
        "coverage": {k: hits[k] / done for k in hits},
        "mean_width": {k: float(np.mean(v)) for k, v in widths.items()},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replications", type=int, default=1000)
    p.add_argument("--units", type=int, default=200)
    p.add_argument("--prevalence", type=float, default=0.3)
    p.add_argument("--accuracy", type=float, nargs=2, default=[0.9, 0.85])
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--method", choices=["bca", "percentile"], default="bca")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    start = time.perf_counter()
    result = simulate(args.replications, args.units, args.prevalence, *args.accuracy, args.n_boot, args.method, args.seed)
    result["seconds"] = round(time.perf_counter() - start, 2)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
